"""A study file, parsed and checked before any database is touched: schema, arms, space, recipes, the axis.

Public:

* ``study_file``: the YAML schema and its defaults (``load_spec``, ``parse_spec``,
  ``StudySpec``, ``load_yaml``);
* ``arms``: arms (optimizer x LARS on/off) and their spaces, the default space;
* ``space``: dimensions and one Optuna trial -> one plain config (``suggest_config``);
* ``recipe``: the published recipe as trial 0 (the recipes themselves live with the
  optimizers in ``objectives.registry``), and the ``evaluation``/``replicates``/``recipe``
  keys;
* ``batch_axis``: the batch-size axis (``axis:``), the lr scaled with the batch.

Private: ``_draws`` (every config a trial can draw, judged by ``objectives.validate_config``
up front). This room reads ``objectives``' torch-free registry and config rules; it imports
nothing of storage, results, run or cli, and no torch.
"""

__all__ = ["arms", "batch_axis", "recipe", "space", "study_file"]
