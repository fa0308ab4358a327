"""The figures of the search-efficiency benchmark, from the curves of stored runs (pure: no I/O, no Optuna).

A *run* is one search of one arm: a variant of the study-file settings (e.g. (a) the
lars-search defaults, (b) random search without pruning), a sampler seed, an arm. Its
curve (:class:`search.results.plot.ArmCurve`: one entry per finished trial, in completion order)
gives, after trial k, the compute spent ``C_k`` (trial-epochs) and the best-so-far
validation accuracy of complete trials ``B_k``. Here ``C_k`` also counts

* the arm's LR range test (``lr: auto``), in trial-epochs, before the first trial, and
* every epoch of a diverged trial: a NaN loss is pruned at once, and its history holds only
  the epochs before the NaN, but the epoch that diverged was trained too.

With ``G`` the best accuracy any compared run of the arm found::

    compute-to-target = C_k at the first k with B_k >= G - tolerance

censored at the run's total when it never gets there (a lower bound, printed ">="). The
figure of merit is (b)/(a) of that cost per seed; the second is what a user gets at equal
compute: the *test* accuracy of each run's incumbent (its best complete trial by
validation accuracy so far) once both runs have spent the same compute.

``G`` is a maximum over every trial of every run, and one trial's validation accuracy on
``n`` images has a binomial standard error of ``sqrt(G (1 - G) / n)`` (1.1 points at 0.85
on 1,000 images): when that is near the tolerance, ``G`` is a lucky draw more than a
better config. :func:`tested` gives the same figures on what a run hands back instead:
its incumbent's test accuracy (10,000 images), with the cost read by
:func:`settled_compute_to_target` (from when on the incumbent stays within the tolerance).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "TOLERANCE",
    "Run",
    "costed",
    "compute_to_target",
    "settled_compute_to_target",
    "standard_error",
    "tested",
    "best_at",
    "incumbents",
    "incumbent_curve",
    "incumbent_test_at",
    "truncated",
    "summarise",
    "equal_compute",
    "diverged_cost",
    "ratio_line",
]

TOLERANCE = 0.01  # 1 accuracy point


@dataclass
class Run:
    """One stored search of one arm, and what the benchmark measured beside it."""

    variant: str
    seed: int
    arm: str
    curve: Any  # search.results.plot.ArmCurve, compute already costed (see costed)
    budget: int
    wall_s: float = 0.0  # sum of the trials' durations
    range_cost: float = 0.0  # trial-epochs of the LR range test (0 without lr: auto)
    lr_range: dict | None = None
    diverged: dict[int, int] = field(default_factory=dict)  # trial number -> the epoch whose loss was NaN
    test: dict[int, float] = field(default_factory=dict)  # trial number -> test accuracy (complete trials)

    @property
    def total_compute(self) -> float:
        return self.curve.compute[-1] if self.curve.compute else self.range_cost

    @property
    def best(self) -> float:
        return self.curve.best[-1] if self.curve.best else math.nan


def costed(curve: Any, *, offset: float = 0.0, diverged: dict[int, int] | None = None) -> Any:
    """``curve`` with ``compute`` counting ``offset`` first and every epoch of a diverged trial.

    ``diverged`` maps trial number -> the epoch whose loss was NaN: that trial trained
    ``epoch`` epochs (its ``epochs`` entry, from its history, holds ``epoch - 1``).
    """
    diverged = diverged or {}
    epochs = [max(e, diverged.get(n, 0)) for n, e in zip(curve.numbers, curve.epochs)]
    compute, spent = [], offset
    for e in epochs:
        spent += e
        compute.append(spent)
    return replace(curve, epochs=epochs, compute=compute)


def diverged_cost(run: Run) -> tuple[int, float]:
    """(diverged trials, the trial-epochs they cost) of one run."""
    epochs = {n: e for n, e in zip(run.curve.numbers, run.curve.epochs)}
    return len(run.diverged), float(sum(epochs.get(n, e) for n, e in run.diverged.items()))


def compute_to_target(curve: Any, target: float) -> tuple[float, bool]:
    """(compute until the best-so-far reaches ``target``, reached?); censored at the total."""
    for compute, best in zip(curve.compute, curve.best):
        if best >= target:  # NaN (no complete trial yet) compares False
            return compute, True
    return (curve.compute[-1] if curve.compute else 0), False


def settled_compute_to_target(curve: Any, target: float) -> tuple[float, bool]:
    """(compute from which the curve stays at or above ``target`` to the run's end, reached?).

    For a curve that can fall (:func:`incumbent_curve`): stopping the run anywhere after
    that compute hands back a result within the target. Censored at the total when the
    run ends below it.
    """
    settled = None
    for compute, value in zip(curve.compute, curve.best):
        if value >= target:  # NaN compares False
            settled = compute if settled is None else settled
        else:
            settled = None
    if settled is None:
        return (curve.compute[-1] if curve.compute else 0), False
    return settled, True


def standard_error(accuracy: float, n: int) -> float:
    """Binomial standard error of an accuracy measured on ``n`` images: sqrt(p (1 - p) / n)."""
    return math.sqrt(accuracy * (1 - accuracy) / n)


def best_at(curve: Any, compute: float) -> float:
    """Best-so-far accuracy once ``compute`` trial-epochs are spent (trials finished by then)."""
    best = math.nan
    for spent, value in zip(curve.compute, curve.best):
        if spent > compute:
            break
        best = value
    return best


def incumbents(curve: Any) -> list[int]:
    """Indices k of ``curve`` whose complete trial raised the best-so-far (the run's incumbents)."""
    out, best = [], -math.inf
    for k, (state, value) in enumerate(zip(curve.states, curve.values)):
        if state == "COMPLETE" and value is not None and value > best:
            out.append(k)
            best = value
    return out


def incumbent_curve(curve: Any, test: dict[int, float]) -> Any:
    """``curve`` with ``best`` replaced by the test accuracy of the incumbent after each trial.

    ``test`` maps trial number -> test accuracy of that trial's config (NaN where missing).
    Not monotone: a new incumbent (higher validation accuracy) can test lower than the
    one it replaced.
    """
    marks = set(incumbents(curve))
    current, best = math.nan, []
    for k, number in enumerate(curve.numbers):
        if k in marks:
            current = test.get(number, math.nan)
        best.append(current)
    return replace(curve, best=best)


def incumbent_test_at(run: Run, compute: float) -> float:
    """Test accuracy of the run's incumbent once ``compute`` trial-epochs are spent (NaN before one)."""
    return best_at(incumbent_curve(run.curve, run.test), compute)


def tested(run: Run) -> Run:
    """``run`` with its curve replaced by :func:`incumbent_curve`: ``best`` is what the run hands back, on test."""
    return replace(run, curve=incumbent_curve(run.curve, run.test))


def truncated(curve: Any, compute: float) -> Any:
    """The trials of ``curve`` finished within ``compute`` trial-epochs (an equal compute budget)."""
    n = sum(1 for spent in curve.compute if spent <= compute)
    return replace(
        curve,
        numbers=curve.numbers[:n],
        states=curve.states[:n],
        epochs=curve.epochs[:n],
        compute=curve.compute[:n],
        values=curve.values[:n],
        best=curve.best[:n],
    )


def summarise(
    runs: Sequence[Run],
    a: str,
    b: str,
    tolerance: float = TOLERANCE,
    best_all: float | None = None,
    to_target: Any = compute_to_target,
) -> dict[str, Any]:
    """G (default: the best of ``runs``), each run's compute to G - tolerance, the ratios (b)/(a) per seed.

    ``runs`` are of one arm; ``to_target(curve, target)`` reads a run's cost (for
    :func:`tested` runs, :func:`settled_compute_to_target`). A censored cost is a bound: (b) censored -> ratio ">=",
    (a) censored -> "<=", both -> "~" (neither got within the tolerance: no information).
    """
    if best_all is None:
        best_all = max((r.best for r in runs if not math.isnan(r.best)), default=math.nan)
    target = best_all - tolerance
    cost = {(r.variant, r.seed): to_target(r.curve, target) for r in runs}
    seeds = sorted({r.seed for r in runs if (a, r.seed) in cost and (b, r.seed) in cost and cost[(a, r.seed)][0] > 0})
    ratios = [cost[(b, s)][0] / cost[(a, s)][0] for s in seeds]
    bounds = [
        {(True, True): "", (False, True): ">=", (True, False): "<=", (False, False): "~"}[
            (cost[(b, s)][1], cost[(a, s)][1])
        ]
        for s in seeds
    ]
    mean = {m: statistics.fmean(cost[(m, s)][0] for s in seeds) if seeds else math.nan for m in (a, b)}
    return {
        "best_all": best_all,
        "target": target,
        "cost": cost,
        "seeds": seeds,
        "ratios": ratios,
        "bounds": bounds,
        "mean_cost": mean,
        "a": a,
        "b": b,
    }


def equal_compute(runs: Sequence[Run], a: str, b: str) -> list[dict[str, Any]]:
    """Per seed: both runs' incumbents at the compute both spent (the smaller total), val and test.

    Returns one dict per seed that has both runs: ``seed``, ``compute``, and for each of
    ``a`` and ``b`` the best validation accuracy and its incumbent's test accuracy then.
    """
    by = {(r.variant, r.seed): r for r in runs}
    out = []
    for seed in sorted({s for (_, s) in by}):
        if (a, seed) not in by or (b, seed) not in by:
            continue
        ra, rb = by[(a, seed)], by[(b, seed)]
        compute = min(ra.total_compute, rb.total_compute)
        out.append(
            {
                "seed": seed,
                "compute": compute,
                "val": {a: best_at(ra.curve, compute), b: best_at(rb.curve, compute)},
                "test": {a: incumbent_test_at(ra, compute), b: incumbent_test_at(rb, compute)},
            }
        )
    return out


def ratio_line(summary: dict[str, Any]) -> str:
    """The ratios of :func:`summarise` in one line: per seed, mean +- std, min, max, ratio of means."""
    ratios = summary["ratios"]
    if not ratios:
        return "no seed has both runs: no ratio"
    spread = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
    a, b = summary["mean_cost"][summary["a"]], summary["mean_cost"][summary["b"]]
    per_seed = ", ".join(f"{bd}{x:.2f}" for bd, x in zip(summary["bounds"], ratios))
    censored = sum(1 for bd in summary["bounds"] if bd)
    return (
        f"per seed {per_seed}; mean {statistics.fmean(ratios):.2f} +- {spread:.2f} (std), "
        f"min {min(ratios):.2f}, max {max(ratios):.2f}; ratio of means {b:.1f} / {a:.1f} = {b / a:.2f}"
        + (f"; {censored} of {len(ratios)} seeds censored" if censored else "")
    )
