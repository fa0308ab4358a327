"""Running a study file: opening its studies, the round-robin loop, one trial, the evaluation, workers.

Public:

* ``loop``: ``run_studies(spec, storage, settings)`` (the round robin over the arms, then the
  final evaluation; ``RunSettings``, the run's settings as one value);
* ``studies``: create or load the Optuna studies of a study file, the recipe as trial 0;
* ``trial``: the one lifecycle every run goes through (``run_lifecycle``: faults,
  Ctrl-C, OOM, user errors), and one search trial (``run_trial``);
* ``evaluation``: each incumbent retrained with fresh seeds on the test set;
* ``lr_range``: ``lr: auto``, the learning-rate range test before the search;
* ``workers``: several worker processes on one storage (``run --workers``, ``worker``);
* ``preflight``: the data set and the device checked before the first trial.

Private: ``_samplers`` (Optuna's samplers and pruners from the study file). A study file
goes ``cli`` -> ``loop`` -> ``studies`` -> ``trial``, a worker ``workers`` -> ``loop``:
both stay in this room. Training starts here, so this room imports torch
(``objectives.train``, ``objectives.lr_find``); it imports ``spec``, ``storage`` and
``results``, never ``cli``.
"""

__all__ = ["evaluation", "loop", "lr_range", "preflight", "studies", "trial", "workers"]
