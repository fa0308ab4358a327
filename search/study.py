"""Optuna studies of a study file: one per arm and replicate, run round robin, then the final evaluation.

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

When a search (an arm in one replicate, ``replicates: N``) has its budget, its incumbent
is retrained with K fresh seeds on the test set (:mod:`search.evaluation`); when every
evaluation is done, the verdict (:mod:`search.verdict`) is stored on the arms' studies.

Faults inside a trial never stop the study: see :mod:`search.trial`.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from search.budget import (
    arm_lock,
    claim_trial,
    is_complete,
    slot_counts,  # slots, waiting and running in one SQL statement
)
from search.evaluation import (
    claim_evaluation,
    enqueue_seeds,
    eval_seed,
    evaluation_result,
    incumbent,
    open_evaluation,
    run_evaluation_trial,
    search_study_name,
)
from search.publish import publish_verdict
from search.range_test import resolve_ranges
from search.recipe import needs_recipe_later, published_recipe, recipe_params
from search.report import ArmStats, arm_stats
from search.spec import SPEC_VERSION, Arm, SpecError, StudySpec, load_yaml, parse_spec
from search.storage import resolve_storage_url  # one rule for the storage URL; re-exported
from search.trial import TrainFn, TrialOutcome, default_validate, run_trial

__all__ = [
    "SpecConflictError",
    "TrialOutcome",
    "ArmStats",
    "unit_key",
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


# --------------------------------------------------------------------------- budget / storage


def _claim(study: optuna.Study, budget: int | None) -> optuna.trial.Trial | None:
    """One trial of the arm if it has budget left (``search.budget``: exact under many workers)."""
    return claim_trial(study, sys.maxsize if budget is None else budget)


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
    seed = (s.seed + seed_offset) % 2**32
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
            diff = _first_difference(
                old.get(key, "<absent>"), new.get(key, "<absent>"), f"{path}.{key}" if path else str(key)
            )
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


def unit_key(arm: str, replicate: int) -> str:
    """The key of one search in ``open_studies``/``run_studies`` results: ``sgd``, ``sgd/r1``, ..."""
    return arm if replicate == 0 else f"{arm}/r{replicate}"


def _enqueue_recipe(spec: StudySpec, arm: Arm, study: optuna.Study) -> None:
    """Trial 0 of a new search is the arm's recipe (``search.recipe``), enqueued once under the arm's lock."""
    recipe = spec.final.recipes.get(arm.name)
    if recipe is None or needs_recipe_later(arm):
        return  # no recipe, or lr: auto (enqueued by _prepare_run once the range test has set the range)
    params, source = recipe
    if source == "published":  # clamped into the arm's space as it is now (after a range test)
        params = recipe_params(arm, published_recipe(arm.optimizer, arm.lars, spec.objective["epochs"]))
    with arm_lock(study):
        if not study.get_trials(deepcopy=False):
            study.enqueue_trial(params, user_attrs={"recipe": source})


def open_studies(
    spec: StudySpec, storage: Any, *, worker_id: int | None = None, url: str = "<storage>"
) -> dict[str, optuna.Study]:
    """Create or load the search study of every arm and replicate, after checking for conflicts.

    Keys are :func:`unit_key` (the arm's name for replicate 0); study names are
    :func:`search.evaluation.search_study_name` (``<name>/<arm>``, ``<name>/<arm>/r1``, ...).
    Nothing is written when the file conflicts with stored studies. A new study gets the
    user attrs ``study_file`` (the YAML text), ``arm``, ``replicate`` and ``spec_version``,
    and its recipe as trial 0 (:mod:`search.recipe`). Each search's sampler seed is
    ``sampler.seed + len(existing trials) + 100003 * worker_id + 1000003 * replicate``
    (mod 2**32), so a resumed or parallel run does not replay the same random
    configurations and replicates are independent searches. Arms share the seed, so
    their random start-up trials are largely paired: in trial k, parameters drawn in the
    same order get the same quantile of each arm's own range (the quickstart drew lr
    0.0647 in [0.01, 0.3] for SGD and 0.000647 in [1e-4, 3e-3] for RMSprop), which makes
    the comparison of arms less noisy.
    """
    _check_conflicts(spec, storage, url)
    studies = {}
    for replicate in range(spec.final.replicates):
        for arm in spec.arms:
            name = search_study_name(spec.name, arm.name, replicate)
            try:
                existing = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
            except KeyError:
                existing = 0
            offset = existing + 100003 * (worker_id or 0) + 1000003 * replicate
            study = optuna.create_study(
                storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                sampler=build_sampler(spec, seed_offset=offset), pruner=build_pruner(spec),
            )  # fmt: skip
            if "study_file" not in study.user_attrs:
                study.set_user_attr("study_file", spec.text)
                study.set_user_attr("arm", arm.name)
                if replicate:
                    study.set_user_attr("replicate", replicate)
                study.set_user_attr("spec_version", SPEC_VERSION)
            if existing == 0:
                _enqueue_recipe(spec, arm, study)
            studies[unit_key(arm.name, replicate)] = study
    return studies


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
        return [eval_seed(base, self.replicate, k) for k in range(spec.final.seeds)]


@dataclass
class _Run:
    """What one ``run_studies`` call works with (built by :func:`_prepare_run`)."""

    spec: StudySpec
    storage: Any
    units: list[_Unit]
    train_fn: TrainFn
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    budget: int | None
    deadline: float | None
    device: str | None
    evaluate: bool
    log: Log | None
    bar: Any = None
    ran: dict[str, int] = field(default_factory=dict)

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if self.log is not None:
                self.bar.write(line)
        elif self.log is not None:
            self.log(line)


def _prepare_run(spec, storage, *, n_trials, timeout, train_fn, validate, worker_id, storage_url, device,
                 evaluate, log) -> _Run:  # fmt: skip
    """Check the limits, open the storage and every search, pick the objective."""
    budget = n_trials if n_trials is not None else spec.budget.trials
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ValueError(f"n_trials must be a positive integer, got {budget!r}")
    limit = timeout if timeout is not None else spec.budget.timeout
    if limit is not None and not limit >= 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {limit!r}")
    if isinstance(storage, str) or storage is None:
        storage_url = storage_url or storage or resolve_storage_url(None, spec)
        storage = _open(storage_url)
    if train_fn is None:  # objectives.train, reading the data set once for all trials of this call
        from objectives import train_reusing_data

        train_fn = train_reusing_data()
    studies = open_studies(spec, storage, worker_id=worker_id, url=storage_url or "<storage>")
    spec = resolve_ranges(spec, studies, device=device, log=log)  # lr: auto -> the range test's range
    for r in range(spec.final.replicates):  # recipes of lr: auto arms, now that their range is known
        for arm in spec.arms:
            _enqueue_recipe(spec, arm, studies[unit_key(arm.name, r)])
    units = [_Unit(unit_key(a.name, r), a, r, studies[unit_key(a.name, r)])
             for r in range(spec.final.replicates) for a in spec.arms]  # fmt: skip
    return _Run(spec, storage, units, train_fn, validate or default_validate(), budget,
                None if limit is None else time.monotonic() + limit, device, evaluate, log,
                ran={u.key: 0 for u in units})  # fmt: skip


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


def _run_search_trial(run: _Run, unit: _Unit, trial: optuna.trial.Trial) -> None:
    if run.bar is not None:
        run.bar.set_postfix_str(f"{unit.key} #{trial.number}")
    outcome = run_trial(unit.study, trial, unit.arm, run.spec, train_fn=run.train_fn, device=run.device,
                        validate=run.validate)  # fmt: skip
    run.ran[unit.key] += 1
    run.say(
        f"{unit.study.study_name} trial {outcome.number}: {outcome.state.name}"
        + (f" val_accuracy={outcome.value:.4f}" if outcome.value is not None else "")
        + (f" ({outcome.reason})" if outcome.reason else "")
        + f" [{outcome.epochs} epochs, {outcome.seconds:.1f} s]"
    )


def _run_evaluation(run: _Run, unit: _Unit, trial: optuna.trial.Trial) -> None:
    if run.bar is not None:
        run.bar.set_postfix_str(f"{unit.key} final evaluation")
    state, value, reason, seconds = run_evaluation_trial(
        unit.evaluation, trial, unit.study, train_fn=run.train_fn, device=run.device, validate=run.validate
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
    return not run.evaluate or all(u.done for u in run.units)


def _loop(run: _Run, poll_s: float) -> None:
    """Search trials first (arms kept even), then evaluation seeds of searches with their budget."""
    while run.deadline is None or time.monotonic() < run.deadline:
        step = _next_search(run)
        if step is not None:
            _run_search_trial(run, *step)
            continue
        step = _next_evaluation(run) if run.evaluate else None
        if step is not None:
            _run_evaluation(run, *step)
            continue
        if _all_done(run):
            return
        # Every slot is taken. Trials still RUNNING elsewhere may yet turn into
        # retries (a dead worker's heartbeat expires), so wait for them.
        if run.bar is not None:
            run.bar.set_postfix_str("waiting for trials running in other workers")
        time.sleep(poll_s)
    if run.budget is None and run.evaluate:  # searched until the timeout: evaluate what it found
        while (step := _next_evaluation(run, ignore_budget=True)) is not None:
            _run_evaluation(run, *step)


def _progress_bar(run: _Run) -> Any:
    from tqdm.auto import tqdm

    total = None
    if run.budget is not None:
        total = sum(max(0, run.budget - _started(u.study)) for u in run.units)
        if run.evaluate:
            total += len(run.units) * run.spec.final.seeds
    return tqdm(total=total, desc=run.spec.name, unit="run", dynamic_ncols=True)


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
    evaluate: bool = True,
) -> dict[str, ArmStats]:
    """Run every arm and replicate of ``spec`` until each has its budget, then its final evaluation.

    Args:
        spec: a validated study file.
        storage: an Optuna storage, or a URL / None (opened with ``search.storage.open_storage``).
        n_trials: finished trials per arm (overrides ``budget.trials``).
        timeout: seconds for this call (overrides ``budget.timeout``); no new search trial starts
            after it (with ``budget.trials`` unset, the incumbents are evaluated after it).
        device: overrides ``objective.device`` (e.g. ``"cpu"``, ``"cuda"``).
        train_fn: ``train(config, report) -> Result``; default ``objectives.train`` (data loaded once).
        progress: a study-level tqdm bar on stderr.
        worker_id: this worker's index when several share the storage (varies sampler seeds).
        validate: config check/fill; default ``objectives.validate_config``.
        log: called with one line per finished trial or evaluation run.
        storage_url: the URL ``storage`` was opened from (for messages; masked).
        poll_s: when every slot is taken but trials still run elsewhere (they may become
            retries after a dead worker's heartbeat expires), seconds between checks.
        evaluate: run the final evaluation (:mod:`search.evaluation`) of every search that
            has its budget; False for benchmarks that measure the search alone.

    Returns:
        :func:`unit_key` (``sgd``, ``sgd/r1``, ...) -> :class:`search.report.ArmStats` of that
        search (counts over the whole stored study, and ``ran_here``: search trials and
        evaluation runs this call ran).
        When every evaluation is done, the verdict is stored on the arms' studies
        (:func:`search.publish.publish_verdict`).
    """
    run = _prepare_run(
        spec,
        storage,
        n_trials=n_trials,
        timeout=timeout,
        train_fn=train_fn,
        validate=validate,
        worker_id=worker_id,
        storage_url=storage_url,
        device=device,
        evaluate=evaluate,
        log=log,
    )
    run.bar = _progress_bar(run) if progress else None
    try:
        _loop(run, poll_s)
    finally:
        if run.bar is not None:
            run.bar.close()
    summary = {}
    for unit in run.units:
        summary[unit.key] = arm_stats(unit.arm.name, unit.study)
        summary[unit.key].ran_here = run.ran[unit.key]
    if evaluate and all(u.done for u in run.units):
        publish_verdict(run.storage, spec.name)
    return summary
