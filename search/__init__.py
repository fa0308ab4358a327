"""Optuna machinery of lars-search: study files, studies and trials, storage, results, the CLI.

Only this package imports optuna; ``lars`` and ``objectives`` know nothing of it.

    from search.spec.study_file import load_spec
    from search.run.loop import run_studies
    spec = load_spec("studies/quickstart.yaml")
    run_studies(spec, "sqlite:///lars-search.db")      # round robin over the arms, then the final evaluation

Rooms by role, lowest first (each room's ``__init__`` lists its modules; a room imports only
the rooms before it, which ``tests/search/test_layout.py`` checks):

* leaves, one home for each concept every room uses: ``errors`` (every exception; the user's
  under ``SearchError``), ``exit_codes``, ``names`` (study names ``<name>/<arm>[/rN][/eval]``,
  ``<name>-b<B>``), ``seeds`` (which seed drives what), ``signals`` (Ctrl-C and SIGTERM),
  ``text`` (shared wording);
* ``storage``: URLs, opening the shared SQL storage, retries, locks, exact budgets,
  heartbeats, Optuna's private names;
* ``spec``: a study file parsed and checked (schema, arms, space, recipes, the batch axis);
* ``results``: what the storage holds, read back (statistics, the verdict, status/compare
  text, plot, dashboard note, export, the axis, the dashboard);
* ``run``: running a study file (opening its studies, the loop, the one trial lifecycle, the
  final evaluation, the lr range test, workers); training, and torch, start here;
* ``cli``: the ``lars-search`` command (``search.cli:main``).

The leaves import neither Optuna nor torch, nor does ``cli`` at import time: ``lars-search
--help`` starts without them, and ``status``/``compare`` without torch.
"""

__all__: list[str] = []
