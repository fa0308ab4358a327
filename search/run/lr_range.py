"""``lr: auto``: a learning-rate range test per arm before the search, stored in the arm's study.

An arm whose space says ``lr: auto`` gets its lr range from :mod:`objectives.lr_find`
(Smith 2017; fastai's ``lr_find``) instead of from the user::

    config  = reference_config(spec, arm)     the objective, the arm, every other dimension at its
                                              middle (log ranges: geometric), schedule constant
    sweep   = lr_sweep(config)                STEPS steps, step scale LOW -> HIGH exponentially
    found   = pick_range(sweep)               [steepest fall or a tenth of the lowest smoothed
                                              loss, the lowest smoothed loss]
    study.set_user_attr("lr_range", {"low", "high", "trial_epochs", "of", "steps"})
    plain arm:  lr                = Range(low, high, log)
    LARS arm:   lr * trust_coeff. = Range(low, high, log)     sampled as "lr*trust_coefficient",
                lr                = the default lr range      trust_coefficient = product / lr

For a LARS arm the swept and searched quantity is the product lr * lambda, the layer's
relative step in both LARS modes. The lr alone still sets the step of the tensors LARS
leaves alone (biases, batch norm), so it keeps the arm's default range (and its middle
during the sweep, which moves lambda), and lambda follows from the two: a trust
coefficient range in the space is not used by such an arm. The test runs once per arm,
in the arm's first search (replicate 0: the sweep does not depend on the sampler seed, so
every replicate searches the same range): an arm study that already holds ``lr_range``
(a resumed run, another worker) reuses it. Its cost, ``trial_epochs`` (steps taken /
steps per epoch), is part of that search's compute (:func:`range_cost`). A curve with no
usable range (the loss diverges at every lr tried, or never falls) stops the run with one
:class:`RangeTestError` line saying what to try. ``lars-search run --workers N`` runs the
tests in its own process before the workers start (:func:`search.run.workers.launch_workers`),
so they all read one stored range; workers started separately (``lars-search worker``, one
per machine) at the same moment, before any has stored it, each run it. A LARS arm's
recipe trial (:mod:`search.spec.recipe`) keeps its lr and its lr * lambda, clamped into the
found range: its lambda is the recipe's unless the found range excludes that product.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import optuna
from optuna.trial import TrialState

from objectives import lr_find
from search.errors import RangeTestError
from search.results.stored import RANGE_ATTR, describe_range
from search.run.trial import Ending, run_lifecycle
from search.spec.recipe import middle
from search.spec.space import Auto, Range
from search.spec.study_file import Arm, StudySpec

__all__ = [
    "needs_range_test",
    "default_lr",
    "reference_config",
    "range_test",
    "resolve_ranges",
]

STEPS = 200  # steps of the sweep
LOW, HIGH = 1e-5, 10.0  # the step scale swept (lr, or lr * lambda)


def needs_range_test(arm: Arm) -> bool:
    """Whether the arm's space says ``lr: auto``."""
    return isinstance(arm.space.params.get("lr"), Auto)


def default_lr(spec: StudySpec, arm: Arm) -> Range:
    """The arm's default lr range, which its ``Auto`` holds (what a LARS arm's lr keeps under ``lr: auto``)."""
    auto = arm.space.params["lr"]
    return Range(auto.low, auto.high, log=True)


def reference_config(spec: StudySpec, arm: Arm, *, device: str | None = None) -> dict[str, Any]:
    """The config the arm's range test trains: each dimension at its middle, no schedule.

    The lr (Auto in the space) is the middle of the arm's default lr range: the sweep
    sets it for a plain arm and keeps it for a LARS arm (see :func:`objectives.lr_find.lr_sweep`).
    """
    config = {
        **spec.objective,
        "optimizer": arm.optimizer,
        "lars": arm.lars,
        "progress": False,
        "schedule": "constant",
        "schedule_params": {},
        "warmup_epochs": 0.0,
    }
    config.update({k: middle(d) for k, d in arm.space.params.items() if k not in ("lr", "warmup_epochs")})
    config["lr"] = middle(default_lr(spec, arm))
    if device:
        config["device"] = device
    return config


def range_test(
    spec: StudySpec,
    arm: Arm,
    study: optuna.Study,
    *,
    device: str | None = None,
    steps: int = STEPS,
    log: Callable[[str], None] | None = print,
    data: Any = None,
) -> dict[str, Any]:
    """The arm's ``lr_range``: stored in ``study`` already, or measured now and stored.

    The sweep runs through the one lifecycle of every run (:func:`search.run.trial.run_lifecycle`),
    as a search trial does: a fault is FAIL with its reason (the CUDA cache emptied after an
    OOM), missing data or a config objectives rejects propagates as it does from a trial, and
    Ctrl-C propagates with a note saying where it came. Only a range found is stored, so the
    next run tests the arm again after any of them.

    Raises:
        RangeTestError: the sweep's loss curve has no usable range, or the sweep failed (the
            message says why and what to try).
    """
    stored = study.user_attrs.get(RANGE_ATTR)
    if stored is not None:
        return stored
    name = "lr*lambda" if arm.lars else "lr"
    result: dict[str, Any] = {}

    def sweep_and_pick(history: list[dict[str, Any]]) -> Ending:
        sweep = lr_find.lr_sweep(reference_config(spec, arm, device=device), data=data, low=LOW, high=HIGH, steps=steps)
        try:
            found = lr_find.pick_range(sweep.scales, sweep.losses, name=name)
        except lr_find.RangeNotFound as exc:
            return Ending(TrialState.FAIL, reason=f"range test: {exc}")
        result.update(low=found.low, high=found.high, trial_epochs=sweep.trial_epochs,
                      of="lr*trust_coefficient" if arm.lars else "lr", steps=len(sweep.losses))  # fmt: skip
        return Ending(TrialState.COMPLETE)

    def record(ending: Ending, history: list[dict[str, Any]], seconds: float) -> None:
        if ending.state == TrialState.COMPLETE:  # else nothing is stored: the next run tests the arm again
            study.set_user_attr(RANGE_ATTR, result)

    try:
        ending, _, _ = run_lifecycle(sweep_and_pick, record=record, retry=lambda: None)
    except KeyboardInterrupt as exc:  # what the CLI's interrupted line says instead of a FAIL trial
        exc.add_note(f"during the lr range test of {spec.study_name(arm)} (no trial was running; the next run tests "
                     "it again)")  # fmt: skip
        raise
    if ending.state != TrialState.COMPLETE:
        reason = ending.reason or "failed"
        if not reason.startswith("range test: "):
            reason = f"range test failed: {reason} (nothing was stored; the next run tests it again)"
        raise RangeTestError(spec.source, f"{spec.study_name(arm)}: lr: auto", reason)
    if log is not None:
        log(f"{spec.study_name(arm)}: {describe_range(result)}")
    return result


def resolve_ranges(
    spec: StudySpec,
    studies: dict[str, optuna.Study],
    *,
    device: str | None = None,
    log: Callable[[str], None] | None = print,
    data: Any = None,
) -> StudySpec:
    """``spec`` with every ``lr: auto`` replaced by its arm's range (tested once per arm, see :func:`range_test`)."""
    arms = []
    for arm in spec.arms:
        if needs_range_test(arm):
            found = range_test(spec, arm, studies[arm.name], device=device, log=log, data=data)
            params = {**arm.space.params, "lr": Range(found["low"], found["high"], log=True)}
            if arm.lars:
                params["lr"] = default_lr(spec, arm)
                params["trust_coefficient"] = Range(found["low"], found["high"], log=True, per="lr")
            arm = replace(arm, space=replace(arm.space, params=params))
        arms.append(arm)
    return replace(spec, arms=tuple(arms))
