"""Optuna machinery of lars-search: study files, search space, arms, studies, reports, the CLI.

Only this package imports optuna; ``lars`` and ``objectives`` know nothing of it.

    from search.spec import load_spec
    from search.study import run_studies
    spec = load_spec("studies/quickstart.yaml")
    run_studies(spec, "sqlite:///lars-search.db")      # round robin over the arms, then the final evaluation

Modules: ``spec`` (study-file schema), ``arms`` (arms and their spaces, defaults),
``draws`` (every config a trial can draw, checked up front), ``space`` (dimensions, trial
-> config), ``trial`` (one trial: report/prune, faults), ``samplers`` (Optuna samplers and
pruners), ``studies`` (per-arm studies, conflicts, the recipe as trial 0), ``study`` (the
round-robin loop, then the final evaluation), ``recipe`` (published recipes; the
``evaluation``/``replicates``/``recipe`` keys), ``lr_range`` (``lr: auto``),
``evaluation`` (each incumbent retrained with fresh seeds on the test set), ``verdict``
(the statistics), ``results`` (search statistics and the verdict read from the storage),
``report`` (status/compare text), ``publish`` (the verdict as a study attr and dashboard
note), ``export`` (the verdict's best config as YAML), ``cli`` (the ``lars-search``
command; its verbs in ``run_verbs`` and ``verbs``); ``storage``, ``storage_url``,
``retry``, ``budget``, ``workers`` (shared storage, exact budgets, many workers);
``optuna_internals`` (the only use of Optuna's private names); ``dashboard``, ``plot``,
``batch_axis`` and ``axis_report`` (the batch-size axis).

One home for each concept every module uses: ``errors`` (every exception; the user's under
``SearchError``), ``exit_codes``, ``names`` (study names ``<name>/<arm>[/rN][/eval]``,
``<name>-b<B>``), ``seeds`` (which seed drives what), ``signals`` (Ctrl-C and SIGTERM),
``text`` (shared wording). None of these imports Optuna or torch, nor does ``cli`` at import
time: ``lars-search --help`` starts without them.
"""

__all__: list[str] = []
