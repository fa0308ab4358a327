"""What the storage holds, read back: search statistics, the verdict, its text, plot, note and export.

Public:

* ``stored``: the facts a run stores (the incumbent, an evaluation's result, the
  ``lr_range`` and ``final`` attrs), read back for runs and reports alike;
* ``read``: a study file's arms and searches read from the storage (``load_arms``,
  ``arm_stats``, ``load_verdict``);
* ``verdict``: the statistics (intervals, power, Holm, ranking);
* ``report``: ``status`` and ``compare`` as text;
* ``plot``: best validation accuracy against compute, test accuracy (``compare --plot``);
* ``publish``: the verdict as a study attr and an optuna-dashboard note;
* ``export``: the verdict's best config as YAML;
* ``axis_report``: a batch-size axis read back (table, verdicts, critical batch sizes);
* ``dashboard``: optuna-dashboard served for a storage.

Nothing here trains or imports torch: ``status``, ``compare`` and ``export`` start without
it. This room imports ``storage`` and ``spec``, never ``run`` or ``cli``.
"""

__all__ = ["axis_report", "dashboard", "export", "plot", "publish", "read", "report", "stored", "verdict"]
