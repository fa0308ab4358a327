"""The facts a run stores in its studies' attrs and trials, read back: one reader each for runs and reports.

A run writes them (:mod:`search.run.loop`, :mod:`search.run.evaluation`, :mod:`search.run.lr_range`,
:mod:`search.run.studies`); ``status``, ``compare``, ``export`` and the plots read them here,
without importing what trains:

* :func:`incumbent`: a search's best COMPLETE trial (ties: the lower number);
* :func:`evaluation_result`: what the final evaluation of one search has measured for its
  current incumbent (:class:`EvalResult`);
* ``lr_range`` (:data:`RANGE_ATTR`), the arm's ``lr: auto`` range test: :func:`range_cost`,
  :func:`describe_range`, :func:`range_lines`;
* ``final`` (:data:`FINAL_ATTR`), the latest run's evaluation seeds and replicates:
  :func:`stored_final`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from search.storage.budget import RETRY_ATTR

__all__ = [
    "FINAL_ATTR",
    "RANGE_ATTR",
    "EvalResult",
    "incumbent",
    "evaluation_result",
    "range_cost",
    "describe_range",
    "range_lines",
    "stored_final",
]

RANGE_ATTR = "lr_range"
FINAL_ATTR = "final"  # {"seeds": K, "replicates": R}: the latest run's, where they differ from the study file's


def incumbent(trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The COMPLETE trial with the best value (ties: the lower number), or None."""
    best = None
    for t in trials:
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value):
            if best is None or t.value > best.value:
                best = t
    return best


@dataclass
class EvalResult:
    """The final evaluation of one search (one arm, one replicate), read from the storage.

    ``values``: test accuracy per finished seed (``{seed: accuracy}``); ``failed``: seeds
    whose last run failed or diverged; ``pending``: seeds without a finished run (enqueued,
    running, or not enqueued yet); ``seconds``: wall time of every evaluation run.
    """

    replicate: int
    incumbent: FrozenTrial | None
    values: dict[int, float] = field(default_factory=dict)
    failed: int = 0
    pending: int = 0
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return self.pending == 0


def evaluation_result(
    search_trials: list[FrozenTrial], eval_trials: list[FrozenTrial] | None, seeds: list[int], replicate: int
) -> EvalResult:
    """What the evaluation of one search has measured for its current incumbent."""
    best = incumbent(search_trials)
    out = EvalResult(replicate, best)
    if best is None:
        return out
    finished: dict[int, FrozenTrial] = {}
    for t in eval_trials or []:
        out.seconds += float(t.user_attrs.get("wall_time_s") or 0.0)
        if t.params.get("incumbent_trial") != best.number or t.state not in (TrialState.COMPLETE, TrialState.FAIL):
            continue
        seed = int(t.params["seed"])
        if seed not in finished or t.state == TrialState.COMPLETE:
            finished[seed] = t
    retried = {t.system_attrs.get(RETRY_ATTR) for t in eval_trials or [] if RETRY_ATTR in t.system_attrs}
    for seed in seeds:
        t = finished.get(seed)
        if t is None:
            out.pending += 1
        elif t.state == TrialState.COMPLETE:
            out.values[seed] = float(t.value)
        elif t.number in retried and not _retry_finished(eval_trials, t.number):
            out.pending += 1  # a failed run whose retry has not finished yet
        else:
            out.failed += 1
    return out


def _retry_finished(trials: list[FrozenTrial], number: int) -> bool:
    return any(t.system_attrs.get(RETRY_ATTR) == number and t.state.is_finished() for t in trials)


def describe_range(found: dict[str, Any]) -> str:
    """One line: ``lr range test: lr*trust_coefficient in [0.00215, 0.0572] (10 trial-epochs, 90 steps)``."""
    return (
        f"lr range test: {found['of']} in [{found['low']:.3g}, {found['high']:.3g}] "
        f"({found['trial_epochs']:.3g} trial-epochs, {found['steps']} steps)"
    )


def range_cost(study: optuna.Study) -> float:
    """Trial-epochs the arm's range test cost (0 without one): part of the arm's compute."""
    found = study.user_attrs.get(RANGE_ATTR)
    return float(found["trial_epochs"]) if found else 0.0


def range_lines(arms: list[tuple[str, optuna.Study]]) -> list[str]:
    """For ``status``/``compare``: one line per arm whose study holds a range test ([] when none does)."""
    found = [(arm, study.user_attrs.get(RANGE_ATTR)) for arm, study in arms]
    lines = [f"  {arm}: {describe_range(attr)}" for arm, attr in found if attr]
    if not lines:
        return []
    return ["lr: auto (a range test before the search; its trial-epochs are part of the arm's compute):", *lines]


def stored_final(attrs: dict[str, Any]) -> tuple[int, int]:
    """``(evaluation seeds, replicates)`` of a study file's latest run, from an arm study's user attrs:
    ``final`` when a run raised them, else the stored ``study_file``'s (defaults 3 and 1)."""
    final = attrs.get(FINAL_ATTR)
    if isinstance(final, dict):
        return int(final["seeds"]), int(final["replicates"])
    try:
        data = yaml.safe_load(attrs.get("study_file") or "") or {}
        return int((data.get("evaluation") or {}).get("seeds", 3)), int(data.get("replicates", 1))
    except (yaml.YAMLError, AttributeError, TypeError, ValueError):
        return 3, 1
