"""Optuna's samplers and pruners, built from a study file's ``sampler`` and ``pruner`` sections.

Every arm gets the same settings (only the seed differs per worker, resume and replicate:
:func:`search.run.studies.open_studies`), so no arm wins by getting a better-tuned search.
Defaults scale with the per-arm budget: a third of it (3 to 10) random start-up trials,
and the median pruner judging every third of training after a fifth of the budget (2 to 5)
has finished.
"""

from __future__ import annotations

import warnings

import optuna

from search.seeds import sampler_seed
from search.spec.study_file import StudySpec

__all__ = [
    "default_sampler_startup",
    "default_pruner_startup",
    "default_pruner_interval",
    "build_sampler",
    "build_pruner",
]


def default_sampler_startup(trials: int | None) -> int:
    """Random trials before the model-based sampler starts: a third of the budget, 3 to 10."""
    return 10 if trials is None else max(3, min(10, trials // 3))


def default_pruner_startup(trials: int | None) -> int:
    """Finished trials per arm before the median pruner judges: a fifth of the budget, 2 to 5."""
    return 5 if trials is None else max(2, min(5, trials // 5))


def default_pruner_interval(epochs: int) -> int:
    """Epochs between the median pruner's judgements (Optuna's ``interval_steps``): a third of training.

    With 10 epochs a trial is judged at epochs 3, 6 and 9 (and at 1 when its LR warm-up is
    under one epoch: Optuna also judges the first report of the first interval), instead
    of at every epoch.

    Every judgement is a chance to cut a trial that climbs slowly while its lr is high, and
    those include the best configs (high lr x lambda with a decaying schedule), which
    overtake the rest only once the lr decays. Replayed on stored random-search runs, judging
    every third epoch instead of every epoch saved a little less compute and lost about half
    as much of the run's best accuracy (the figures: ``benchmarks/RESULTS.md``, Pruner replay).
    """
    return max(1, epochs // 3)


def build_sampler(spec: StudySpec, *, seed_offset: int = 0, trials: int | None = None) -> optuna.samplers.BaseSampler:
    """The arm's sampler (same settings for every arm); ``seed_offset`` varies the stream per resume/worker."""
    s = spec.sampler
    seed = sampler_seed(s.seed, seed_offset)
    trials = spec.budget.trials if trials is None else trials
    startup = s.n_startup_trials if s.n_startup_trials is not None else default_sampler_startup(trials)
    if s.type == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=s.multivariate, group=s.multivariate
        )
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.type == "qmc":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    if s.type == "cmaes":
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=startup, warn_independent_sampling=False,
            independent_sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
        )  # fmt: skip
    if s.type == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    raise ValueError(f"sampler.type must be one of tpe, random, qmc, cmaes, gp, got {s.type!r}")


def build_pruner(spec: StudySpec, *, trials: int | None = None) -> optuna.pruners.BasePruner:
    """Median (default), Hyperband over epochs, or none.

    The median pruner judges every ``interval_steps`` epochs (default
    :func:`default_pruner_interval`). Its ``n_warmup_steps`` is the study's fixed floor; each trial's own
    LR warm-up is handled per trial in :func:`search.run.trial.run_trial` (it is a sampled value).
    """
    p = spec.pruner
    trials = spec.budget.trials if trials is None else trials
    if p.type == "median":
        startup = p.n_startup_trials if p.n_startup_trials is not None else default_pruner_startup(trials)
        interval = (
            p.interval_steps if p.interval_steps is not None else default_pruner_interval(spec.objective["epochs"])
        )
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup, n_warmup_steps=p.n_warmup_steps, interval_steps=interval
        )
    if p.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource, max_resource=spec.objective["epochs"], reduction_factor=p.reduction_factor
        )
    return optuna.pruners.NopPruner()
