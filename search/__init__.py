"""Optuna machinery of lars-search: study files, search space, arms, studies, reports, the CLI.

Only this package imports optuna; ``lars`` and ``objectives`` know nothing of it.

    from search.spec import load_spec
    from search.study import run_studies
    spec = load_spec("studies/quickstart.yaml")
    run_studies(spec, "sqlite:///lars-search.db")      # round robin over the arms

Modules: ``spec`` (study-file schema), ``arms`` (arms and their spaces, defaults),
``space`` (dimensions, trial -> config), ``trial`` (one trial: report/prune, faults),
``study`` (per-arm studies, samplers, pruners, the round-robin loop), ``report``
(status/compare), ``export`` (best config as YAML), ``cli`` (the ``lars-search``
command); ``storage``, ``budget``, ``workers`` (shared storage, exact budgets, many
workers); ``dashboard``, ``plot``.
"""

__all__: list[str] = []
