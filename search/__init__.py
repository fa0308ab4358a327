"""Optuna machinery of lars-search: study files, search space, arms, studies, reports, the CLI.

Only this package imports optuna; ``lars`` and ``objectives`` know nothing of it.

    from search.spec import load_spec
    from search.study import run_studies
    spec = load_spec("studies/quickstart.yaml")
    run_studies(spec, "sqlite:///lars-search.db")      # round robin over the arms, then the final evaluation

Modules: ``spec`` (study-file schema), ``arms`` (arms and their spaces, defaults),
``space`` (dimensions, trial -> config), ``trial`` (one trial: report/prune, faults),
``study`` (per-arm studies, samplers, pruners, the round-robin loop), ``recipe``
(published recipes as trial 0; the ``evaluation``/``replicates``/``recipe`` keys),
``evaluation`` (each incumbent retrained with fresh seeds on the test set), ``verdict``
(the statistics), ``report`` (status/compare, the verdict read from the storage),
``publish`` (the verdict as a study attr and dashboard note), ``export`` (the verdict's
best config as YAML), ``cli`` (the ``lars-search`` command); ``storage``, ``budget``,
``workers`` (shared storage, exact budgets, many workers); ``dashboard``, ``plot``.
"""

__all__: list[str] = []
