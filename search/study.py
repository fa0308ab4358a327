"""Optuna studies of a study file: one per arm, run round robin, each trial guarded against faults.

Data flow of one trial (see DESIGN.md)::

    arm with the fewest finished trials -> search.budget.claim_trial(study, budget)
      -> search.space.suggest_config(trial, ...)  -> objectives.validate_config
      -> train_fn(config, report)                 report(epoch, metrics):
                                                     trial.report(val_accuracy, epoch)
                                                     prune only after the trial's own warm-up
      -> study.tell(trial, value | PRUNED | FAIL) with the reason in user attrs

Arms advance evenly: every time a worker needs a trial it asks the arm that has the
fewest finished trials (ties: study-file order), so with one worker the arms go round
robin, and with many workers no arm gets ahead. Every arm uses the same sampler
settings, pruner and per-arm budget: no arm wins by getting more tuning.

Faults inside a trial never stop the study: see :mod:`search.trial`.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from search.budget import claim_trial, count_finished, is_complete
from search.range_test import resolve_ranges
from search.report import arm_stats
from search.spec import SPEC_VERSION, SpecError, StudySpec, load_yaml, parse_spec
from search.trial import TrainFn, TrialOutcome, default_validate, run_trial

__all__ = [
    "SpecConflictError",
    "TrialOutcome",
    "ArmProgress",
    "build_sampler",
    "build_pruner",
    "default_sampler_startup",
    "default_pruner_startup",
    "default_pruner_interval",
    "open_studies",
    "run_trial",
    "run_studies",
    "resolve_storage_url",
    "stored_spec",
]

Log = Callable[[str], None]


class SpecConflictError(ValueError):
    """The study file disagrees with the studies already stored under its name."""


@dataclass
class ArmProgress:
    """Per-arm counts after a run (what ``run_studies`` returns for each arm)."""

    study_name: str
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best_value: float | None = None
    ran_here: int = 0  # trials this call ran

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed


# --------------------------------------------------------------------------- budget / storage


def _claim(study: optuna.Study, budget: int | None) -> optuna.trial.Trial | None:
    """One trial of the arm if it has budget left (``search.budget``: exact under many workers)."""
    return claim_trial(study, sys.maxsize if budget is None else budget)


def resolve_storage_url(flag: str | None, spec: StudySpec | None = None) -> str:
    """``--storage`` flag, else the study file's ``storage``, else $LARS_SEARCH_STORAGE / the SQLite default."""
    from search.storage import default_storage_url

    if flag:
        return flag
    if spec is not None and spec.storage:
        return spec.storage
    return default_storage_url()


def _open(storage: Any) -> optuna.storages.BaseStorage:
    if storage is None or isinstance(storage, str):
        from search.storage import open_storage

        return open_storage(storage)
    return storage


# --------------------------------------------------------------------------- sampler / pruner


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
    overtake the rest only once the lr decays. Replayed on 22 stored random-search runs
    (``benchmarks/pruner_replay.py``), judging every third epoch instead of every epoch
    saved 1.97x instead of 2.27x of the compute and lost 0.39 instead of 0.72 points of the
    run's best accuracy (the best trial survived in 16 of 22 runs instead of 13).
    """
    return max(1, epochs // 3)


def build_sampler(spec: StudySpec, *, seed_offset: int = 0, trials: int | None = None) -> optuna.samplers.BaseSampler:
    """The arm's sampler (same settings for every arm); ``seed_offset`` varies the stream per resume/worker."""
    s = spec.sampler
    seed = s.seed + seed_offset
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
    LR warm-up is handled per trial in :func:`run_trial` (it is a sampled value).
    """
    p = spec.pruner
    trials = spec.budget.trials if trials is None else trials
    if p.type == "median":
        startup = p.n_startup_trials if p.n_startup_trials is not None else default_pruner_startup(trials)
        interval = p.interval_steps if p.interval_steps is not None else default_pruner_interval(spec.objective["epochs"])
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup, n_warmup_steps=p.n_warmup_steps, interval_steps=interval
        )
    if p.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource, max_resource=spec.objective["epochs"], reduction_factor=p.reduction_factor
        )
    return optuna.pruners.NopPruner()


# --------------------------------------------------------------------------- studies


def stored_spec(storage: Any, study_name: str) -> StudySpec | None:
    """The study file stored with ``study_name`` (parsed), or None when no such study exists."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    text = storage.get_study_user_attrs(study_id).get("study_file")
    if text is None:
        return None
    return parse_spec(load_yaml(text, study_name), source=f"stored study file of {study_name!r}", text=text)


def _first_difference(old: Any, new: Any, path: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            diff = _first_difference(old.get(key, "<absent>"), new.get(key, "<absent>"), f"{path}.{key}" if path else str(key))
            if diff:
                return diff
        return None
    return None if old == new else f"{path} was {old!r}, now {new!r}"


def _check_conflicts(spec: StudySpec, storage: Any, url: str) -> None:
    from search.storage import mask_url

    for arm in spec.arms:
        name = spec.study_name(arm)
        try:
            old = stored_spec(storage, name)
        except SpecError as exc:
            raise SpecConflictError(
                f"{spec.source}: stored study {name!r} in {mask_url(url)} has a study file that no longer "
                f"validates ({exc.message}); use a new name"
            ) from None
        if old is None:
            continue
        try:
            old_arm = old.arm(arm.name)
        except KeyError:
            raise SpecConflictError(
                f"{spec.source}: stored study {name!r} in {mask_url(url)} has no arm {arm.name!r} in its study "
                "file; use a new name"
            ) from None
        diff = _first_difference(old.identity(old_arm), spec.identity(arm), "")
        if diff:
            raise SpecConflictError(
                f"{spec.source}: arm {arm.name!r} conflicts with the stored study {name!r} in {mask_url(url)}: "
                f"{diff} (trials would not be comparable; use a new name or the original file)"
            )


def open_studies(
    spec: StudySpec, storage: Any, *, worker_id: int | None = None, url: str = "<storage>"
) -> dict[str, optuna.Study]:
    """Create or load the study of every arm (``<name>/<arm>``), after checking for conflicts.

    Nothing is written when the file conflicts with stored studies. A new study gets the
    user attrs ``study_file`` (the YAML text), ``arm`` and ``spec_version``. Each arm's
    sampler seed is ``sampler.seed + len(existing trials) + 100003 * worker_id`` so a
    resumed or parallel run does not replay the same random configurations. Arms share
    the seed, so their random start-up trials are largely paired: in trial k, parameters
    drawn in the same order get the same quantile of each arm's own range (the quickstart
    drew lr 0.0647 in [0.01, 0.3] for SGD and 0.000647 in [1e-4, 3e-3] for RMSprop),
    which makes the comparison of arms less noisy.
    """
    _check_conflicts(spec, storage, url)
    studies = {}
    for arm in spec.arms:
        name = spec.study_name(arm)
        try:
            existing = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
        except KeyError:
            existing = 0
        offset = existing + 100003 * (worker_id or 0)
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", load_if_exists=True,
            sampler=build_sampler(spec, seed_offset=offset), pruner=build_pruner(spec),
        )  # fmt: skip
        if "study_file" not in study.user_attrs:
            study.set_user_attr("study_file", spec.text)
            study.set_user_attr("arm", arm.name)
            study.set_user_attr("spec_version", SPEC_VERSION)
        studies[arm.name] = study
    return studies


# --------------------------------------------------------------------------- the loop


def _progress_of(spec: StudySpec, studies: dict[str, optuna.Study]) -> dict[str, ArmProgress]:
    """Counts per arm, read the way ``compare`` reads them (:func:`search.report.arm_stats`)."""
    out = {}
    for arm in spec.arms:
        s = arm_stats(arm.name, studies[arm.name])
        out[arm.name] = ArmProgress(s.study_name, s.complete, s.pruned, s.failed, s.running, s.best_value)
    return out


def run_studies(
    spec: StudySpec,
    storage: Any,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    device: str | None = None,
    train_fn: TrainFn | None = None,
    progress: bool = True,
    worker_id: int | None = None,
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    log: Log | None = None,
    storage_url: str | None = None,
    poll_s: float = 5.0,
) -> dict[str, ArmProgress]:
    """Run every arm of ``spec`` round robin until each has its budget of finished trials.

    Args:
        spec: a validated study file.
        storage: an Optuna storage, or a URL / None (opened with ``search.storage.open_storage``).
        n_trials: finished trials per arm (overrides ``budget.trials``).
        timeout: seconds for this call (overrides ``budget.timeout``); no new trial starts after it.
        device: overrides ``objective.device`` (e.g. ``"cpu"``, ``"cuda"``).
        train_fn: ``train(config, report) -> Result``; default ``objectives.train`` (data loaded once).
        progress: a study-level tqdm bar on stderr.
        worker_id: this worker's index when several share the storage (varies sampler seeds).
        validate: config check/fill; default ``objectives.validate_config``.
        log: called with one line per finished trial.
        storage_url: the URL ``storage`` was opened from (for messages; masked).
        poll_s: when every slot is taken but trials still run elsewhere (they may become
            retries after a dead worker's heartbeat expires), seconds between checks.

    Returns:
        arm name -> :class:`ArmProgress` (counts over the whole stored study, and ``ran_here``).
    """
    if isinstance(storage, str) or storage is None:
        storage_url = storage_url or storage or resolve_storage_url(None, spec)
        storage = _open(storage_url)
    if train_fn is None:  # objectives.train, reading the data set once for all trials of this call
        from objectives import train_reusing_data

        train_fn = train_reusing_data()
    if validate is None:
        validate = default_validate()
    budget = n_trials if n_trials is not None else spec.budget.trials
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ValueError(f"n_trials must be a positive integer, got {budget!r}")
    limit = timeout if timeout is not None else spec.budget.timeout
    if limit is not None and not limit >= 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {limit!r}")
    deadline = None if limit is None else time.monotonic() + limit
    studies = open_studies(spec, storage, worker_id=worker_id, url=storage_url or "<storage>")
    spec = resolve_ranges(spec, studies, device=device, log=log)  # lr: auto -> the range test's range
    order = {arm.name: i for i, arm in enumerate(spec.arms)}
    ran = {arm.name: 0 for arm in spec.arms}

    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = None
        if budget is not None:
            total = sum(max(0, budget - count_finished(s)) for s in studies.values())
        bar = tqdm(total=total, desc=spec.name, unit="trial", dynamic_ncols=True)
    try:
        while deadline is None or time.monotonic() < deadline:
            counts = {name: count_finished(study) for name, study in studies.items()}
            claimed = None
            for name in sorted(studies, key=lambda n: (counts[n], order[n])):
                trial = _claim(studies[name], budget)
                if trial is not None:
                    claimed = (spec.arm(name), trial)
                    break
            if claimed is None:
                # Every slot is taken. Trials still RUNNING elsewhere may yet turn into
                # retries (a dead worker's heartbeat expires), so wait for them.
                if budget is None or all(is_complete(s, budget) for s in studies.values()):
                    break
                if bar is not None:
                    bar.set_postfix_str("waiting for trials running in other workers")
                time.sleep(poll_s)
                continue
            arm, trial = claimed
            if bar is not None:
                bar.set_postfix_str(f"{arm.name} #{trial.number}")
            outcome = run_trial(studies[arm.name], trial, arm, spec, train_fn=train_fn, device=device, validate=validate)
            ran[arm.name] += 1
            line = (
                f"{spec.study_name(arm)} trial {outcome.number}: {outcome.state.name}"
                + (f" val_accuracy={outcome.value:.4f}" if outcome.value is not None else "")
                + (f" ({outcome.reason})" if outcome.reason else "")
                + f" [{outcome.epochs} epochs, {outcome.seconds:.1f} s]"
            )
            if bar is not None:
                bar.update(1)
                if log is not None:
                    bar.write(line)
            elif log is not None:
                log(line)
    finally:
        if bar is not None:
            bar.close()
    summary = _progress_of(spec, studies)
    for name, p in summary.items():
        p.ran_here = ran[name]
    return summary
