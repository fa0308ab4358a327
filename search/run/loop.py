"""Optuna studies of a study file: one per arm and replicate, run round robin, then the final evaluation.

Data flow of one trial (see DESIGN.md)::

    arm with the fewest finished trials -> search.storage.budget.claim_trial(study, budget)
      -> search.spec.space.suggest_config(trial, ...)  -> objectives.validate_config
      -> train_fn(config, report)                 report(epoch, metrics):
                                                     trial.report(val_accuracy, epoch)
                                                     prune only after the trial's own warm-up
      -> study.tell(trial, value | PRUNED | FAIL) with the reason in user attrs

Arms advance evenly: every time a worker needs a trial it asks the arm that has the
fewest finished trials (ties: study-file order), so with one worker the arms go round
robin, and with many workers no arm gets ahead. Every arm uses the same sampler
settings, pruner and per-arm budget: no arm wins by getting more tuning.

When a search (an arm in one replicate, ``replicates: N``) has its budget, its incumbent
is retrained with K fresh seeds on the test set (:mod:`search.run.evaluation`); when every
evaluation is done, the verdict (:mod:`search.results.verdict`) is stored on the arms' studies.

Faults inside a trial never stop the study: see :mod:`search.run.trial`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import optuna

from objectives.train import train_reusing_data
from search.names import unit_key
from search.results.publish import mark_outdated, publish_verdict
from search.results.read import ArmStats, arm_stats
from search.results.stored import evaluation_result, incumbent
from search.run.evaluation import (
    claim_evaluation,
    enqueue_seeds,
    open_evaluation,
    run_evaluation_trial,
)
from search.run.lr_range import needs_range_test, resolve_ranges
from search.run.studies import enqueue_recipe, open_studies
from search.run.trial import TrainFn, default_validate, run_trial
from search.seeds import evaluation_seed
from search.spec.study_file import TIMEOUT_RULE, Arm, StudySpec
from search.storage.budget import (
    claim_trial,
    is_complete,
    slot_counts,  # slots, waiting and running in one SQL statement
)
from search.storage.database import open_storage
from search.storage.url import resolve_storage_url  # one rule for the storage URL

__all__ = ["RunSettings", "run_studies"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunSettings:
    """How one :func:`run_studies` call runs a study file: what the CLI's flags and a worker decide.

    Attributes:
        n_trials: finished trials per arm (overrides ``budget.trials``).
        timeout: seconds for this call (overrides ``budget.timeout``); no new search trial starts
            after it (with ``budget.trials`` unset, the incumbents are evaluated after it).
        device: overrides ``objective.device`` (e.g. ``"cpu"``, ``"cuda"``).
        train_fn: ``train(config, report) -> Result``; default ``objectives.train`` (data loaded once).
        validate: config check/fill; default ``objectives.validate_config``.
        worker_id: this worker's index when several share the storage (varies sampler seeds).
        storage_url: the URL the storage was opened from (for messages; masked).
        progress: a study-level tqdm bar on stderr.
        log: called with one line per finished trial or evaluation run.
        poll_s: when every slot is taken but trials still run elsewhere (they may become
            retries after a dead worker's heartbeat expires), seconds between checks.
        evaluate: run the final evaluation (:mod:`search.run.evaluation`) of every search that
            has its budget; False for benchmarks that measure the search alone.
    """

    n_trials: int | None = None
    timeout: float | None = None
    device: str | None = None
    train_fn: TrainFn | None = None
    validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    worker_id: int | None = None
    storage_url: str | None = None
    progress: bool = True
    log: Log | None = None
    poll_s: float = 5.0
    evaluate: bool = True


# --------------------------------------------------------------------------- budget / storage


def _claim(study: optuna.Study, budget: int | None) -> optuna.trial.Trial | None:
    """One trial of the arm if it has budget left (``search.storage.budget``: exact under many workers)."""
    return claim_trial(study, sys.maxsize if budget is None else budget)


def _open(storage: Any) -> optuna.storages.BaseStorage:
    if storage is None or isinstance(storage, str):
        return open_storage(storage)
    return storage


# --------------------------------------------------------------------------- the loop


@dataclass
class _Unit:
    """One search (an arm in one replicate) and its final evaluation."""

    key: str
    arm: Arm
    replicate: int
    study: optuna.Study
    evaluation: optuna.Study | None = None
    enqueued_for: int | None = None  # the incumbent whose seeds this process has enqueued
    done: bool = False  # evaluated (or nothing to evaluate) for its current incumbent

    def seeds(self, spec: StudySpec) -> list[int]:
        base = int(spec.objective.get("seed", 0))
        return [evaluation_seed(base, self.replicate, k) for k in range(spec.final.seeds)]


@dataclass
class _Run:
    """What one ``run_studies`` call works with (built by :func:`_prepare_run`)."""

    spec: StudySpec
    storage: Any
    units: list[_Unit]
    settings: RunSettings  # train_fn and validate filled in with objectives' defaults
    budget: int | None  # finished trials per search: settings.n_trials, else the file's
    deadline: float | None  # time.monotonic() at which no new search trial starts
    bar: Any = None
    ran: dict[str, int] = field(default_factory=dict)
    marked: bool = False  # an earlier verdict note was marked outdated (search.results.publish.mark_outdated)

    def say(self, line: str) -> None:
        log = self.settings.log
        if self.bar is not None:
            self.bar.update(1)
            if log is not None:
                self.bar.write(line)
        elif log is not None:
            log(line)


def _prepare_run(spec: StudySpec, storage: Any, settings: RunSettings) -> _Run:
    """Check the limits, open the storage and every search, pick the objective."""
    budget = settings.n_trials if settings.n_trials is not None else spec.budget.trials
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ValueError(f"n_trials must be a positive integer, got {budget!r}")
    limit = settings.timeout if settings.timeout is not None else spec.budget.timeout
    if limit is not None and not limit > 0:
        raise ValueError(f"timeout {TIMEOUT_RULE}, got {limit!r}")
    storage_url, log = settings.storage_url, settings.log
    if isinstance(storage, str) or storage is None:
        storage_url = storage_url or storage or resolve_storage_url(None, spec)
        storage = _open(storage_url)
    train_fn = settings.train_fn
    if train_fn is None:  # objectives.train, reading the data set once for all trials of this call
        train_fn = train_reusing_data()
    settings = replace(settings, train_fn=train_fn, validate=settings.validate or default_validate())
    studies = open_studies(spec, storage, worker_id=settings.worker_id, url=storage_url or "<storage>")
    tested = {arm.name for arm in spec.arms if needs_range_test(arm)}
    spec = resolve_ranges(spec, studies, device=settings.device, log=log)  # lr: auto -> the range test's range
    for r in range(spec.final.replicates):  # recipes of lr: auto arms, now that their range is known
        for arm in spec.arms:
            enqueue_recipe(spec, arm, studies[unit_key(arm.name, r)], tested=arm.name in tested, log=log)
    units = [_Unit(unit_key(a.name, r), a, r, studies[unit_key(a.name, r)])
             for r in range(spec.final.replicates) for a in spec.arms]  # fmt: skip
    deadline = None if limit is None else time.monotonic() + limit
    return _Run(spec, storage, units, settings, budget, deadline, ran={u.key: 0 for u in units})


def _next_search(run: _Run) -> tuple[_Unit, optuna.trial.Trial] | None:
    """A trial of the search with the fewest finished trials (ties: replicate, then file order)."""
    counts = {u.key: _started(u.study) for u in run.units}
    for unit in sorted(run.units, key=lambda u: counts[u.key]):  # stable: file order within a count
        trial = _claim(unit.study, run.budget)
        if trial is not None:
            return unit, trial
    return None


def _started(study: optuna.Study) -> int:
    """Budget slots taken by trials that have started (an enqueued recipe has not)."""
    counts = slot_counts(study)
    return counts.slots - counts.waiting


def _searched(run: _Run, unit: _Unit) -> bool:
    return run.budget is None or is_complete(unit.study, run.budget)


def _next_evaluation(run: _Run, *, ignore_budget: bool = False) -> tuple[_Unit, optuna.trial.Trial] | None:
    """A waiting evaluation seed of a search that has its budget (enqueuing its incumbent's seeds first)."""
    for unit in run.units:
        if unit.done or not (ignore_budget or (run.budget is not None and _searched(run, unit))):
            continue
        trials = unit.study.get_trials(deepcopy=False)
        best = incumbent(trials)
        if best is None:
            unit.done = True  # nothing to evaluate: no complete trial
            continue
        if unit.evaluation is None:
            unit.evaluation = open_evaluation(run.storage, unit.study, arm=unit.arm.name, replicate=unit.replicate)
        if unit.enqueued_for != best.number:
            enqueue_seeds(unit.evaluation, best, unit.seeds(run.spec))
            unit.enqueued_for = best.number
        trial = claim_evaluation(unit.evaluation)
        if trial is not None:
            return unit, trial
        result = evaluation_result(trials, unit.evaluation.get_trials(deepcopy=False), unit.seeds(run.spec),
                                   unit.replicate)  # fmt: skip
        unit.done = result.done
    return None


def _mark_outdated_once(run: _Run) -> None:
    """Before this call's first trial or evaluation run: an earlier verdict note no longer describes the arms."""
    if not run.marked:
        run.marked = True
        mark_outdated(run.storage, run.spec.name)


def _run_search_trial(run: _Run, unit: _Unit, trial: optuna.trial.Trial) -> None:
    _mark_outdated_once(run)
    if run.bar is not None:
        run.bar.set_postfix_str(f"{unit.key} #{trial.number}")
    s = run.settings
    outcome = run_trial(
        unit.study,
        trial,
        unit.arm,
        run.spec,
        train_fn=s.train_fn,
        replicate=unit.replicate,
        device=s.device,
        validate=s.validate,
    )
    run.ran[unit.key] += 1
    run.say(
        f"{unit.study.study_name} trial {outcome.number}: {outcome.state.name}"
        + (f" val_accuracy={outcome.value:.4f}" if outcome.value is not None else "")
        + (f" ({outcome.reason})" if outcome.reason else "")
        + f" [{outcome.epochs} epochs, {outcome.seconds:.1f} s]"
    )


def _run_evaluation(run: _Run, unit: _Unit, trial: optuna.trial.Trial) -> None:
    _mark_outdated_once(run)
    if run.bar is not None:
        run.bar.set_postfix_str(f"{unit.key} final evaluation")
    s = run.settings
    state, value, reason, seconds = run_evaluation_trial(
        unit.evaluation, trial, unit.study, train_fn=s.train_fn, device=s.device, validate=s.validate
    )
    run.ran[unit.key] += 1
    run.say(
        f"{unit.evaluation.study_name} trial {trial.number} (seed {trial.params.get('seed')} of trial "
        f"{trial.params.get('incumbent_trial')}): {state.name}"
        + (f" test_accuracy={value:.4f}" if value is not None else "")
        + (f" ({reason})" if reason else "")
        + f" [{seconds:.1f} s]"
    )


def _all_done(run: _Run) -> bool:
    if run.budget is None:
        return True  # only the timeout ends an unbounded search
    if not all(is_complete(u.study, run.budget) for u in run.units):
        return False
    return not run.settings.evaluate or all(u.done for u in run.units)


def _loop(run: _Run) -> None:
    """Search trials first (arms kept even), then evaluation seeds of searches with their budget."""
    while run.deadline is None or time.monotonic() < run.deadline:
        step = _next_search(run)
        if step is not None:
            _run_search_trial(run, *step)
            continue
        step = _next_evaluation(run) if run.settings.evaluate else None
        if step is not None:
            _run_evaluation(run, *step)
            continue
        if _all_done(run):
            return
        # Every slot is taken. Trials still RUNNING elsewhere may yet turn into
        # retries (a dead worker's heartbeat expires), so wait for them.
        if run.bar is not None:
            run.bar.set_postfix_str("waiting for trials running in other workers")
        time.sleep(run.settings.poll_s)
    if run.budget is None and run.settings.evaluate:  # searched until the timeout: evaluate what it found
        while (step := _next_evaluation(run, ignore_budget=True)) is not None:
            _run_evaluation(run, *step)


def _progress_bar(run: _Run) -> Any:
    from tqdm.auto import tqdm

    total = None
    if run.budget is not None:
        total = sum(max(0, run.budget - _started(u.study)) for u in run.units)
        if run.settings.evaluate:
            total += len(run.units) * run.spec.final.seeds
    return tqdm(total=total, desc=run.spec.name, unit="run", dynamic_ncols=True)


def run_studies(
    spec: StudySpec, storage: Any, settings: RunSettings | None = None, **options: Any
) -> dict[str, ArmStats]:
    """Run every arm and replicate of ``spec`` until each has its budget, then its final evaluation.

    Args:
        spec: a validated study file.
        storage: an Optuna storage, or a URL / None (opened with ``search.storage.database.open_storage``).
        settings: how to run (:class:`RunSettings`; default: its defaults).
        options: fields of :class:`RunSettings` that replace those of ``settings``
            (``run_studies(spec, url, n_trials=4, progress=False)``).

    Returns:
        :func:`search.names.unit_key` (``sgd``, ``sgd/r1``, ...) -> :class:`search.results.read.ArmStats` of that
        search (counts over the whole stored study, and ``ran_here``: search trials and
        evaluation runs this call ran).
        When every evaluation is done, the verdict is stored on the arms' studies
        (:func:`search.results.publish.publish_verdict`).
    """
    settings = replace(settings or RunSettings(), **options)
    run = _prepare_run(spec, storage, settings)
    run.bar = _progress_bar(run) if settings.progress else None
    try:
        _loop(run)
    finally:
        if run.bar is not None:
            run.bar.close()
    summary = {}
    for unit in run.units:
        summary[unit.key] = arm_stats(unit.arm.name, unit.study)
        summary[unit.key].ran_here = run.ran[unit.key]
    if settings.evaluate and all(u.done for u in run.units):
        publish_verdict(run.storage, spec.name)
    return summary
