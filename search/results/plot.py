"""The LARS-vs-plain answer as a picture: best validation accuracy against compute spent, and test accuracy.

For each arm (Optuna study ``<name>/<arm>``) the finished trials are taken in the order
their results became known (completion time, then trial number). Trial ``i`` spent

    e_i = epochs it trained (its ``history`` user attr, else its reported epochs,
          ``len(trial.intermediate_values)``; :func:`search.results.read.epochs_run`)

trial-epochs, whether it completed, was pruned or failed (the same count as the
``trial-epochs`` column of ``lars-search compare``), and the arm's curve is

    C_k = R + e_1 + ... + e_k                               (compute spent, trial-epochs)
    B_k = max{ value_i : i <= k, trial i COMPLETE }         (best-so-far validation accuracy)

where R is the arm's ``lr: auto`` range test (:func:`search.run.lr_range.range_cost`, 0
without one), which the arm's compute counts as ``compare`` does, drawn as a step line
starting at R (B_k is undefined, and not drawn, before the first complete trial).
Completed trials are dots at (C_k, value_k); pruned trials are crosses at (C_k, their
last reported accuracy), so the compute pruning cut short is visible; failed trials are
triangles on the x axis. Plain and LARS arms of the same base optimizer share a colour
(dashed plain, solid LARS).

The x axis is compute, not the trial number of :func:`optuna.visualization.matplotlib.
plot_optimization_history`, because a pruned trial costs less than a complete one: two
arms are compared fairly at equal compute. That Optuna plot (all arms, trial-number axis)
is written as well when ``history_path`` is given.

Beside it, a second panel shows each arm's final evaluation (:mod:`search.run.evaluation`):
every seed's test accuracy as a point (replicates side by side) and the mean with its
95% interval (:mod:`search.results.verdict`) as a bar.

It renders with matplotlib's Agg backend (no display needed).

Example::

    from search.results.plot import plot_compare
    curves = plot_compare("sqlite:///lars-search.db", "quickstart", "compare.png")
    curves["sgd+lars"].best[-1]     # best validation accuracy of the SGD+LARS arm
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.registry import OPTIMIZERS
from search.errors import PlotError, StorageError, StudyNotFoundError
from search.names import StudyName
from search.results.read import epochs_run, load_arms, load_verdict
from search.results.stored import range_cost
from search.results.verdict import clip
from search.storage.database import open_reader

__all__ = ["ArmCurve", "arm_curve", "compare_curves", "plot_compare", "plot_axis"]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# one colour per optimizer of the registry, in its order (sgd blue, rmsprop green, adam red, ...)
_PALETTE = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


@dataclass
class ArmCurve:
    """One arm's compute/accuracy series; lists are indexed by finished trial, in completion order.

    Attributes:
        arm: the arm name (``sgd+lars``), the part of the study name after ``<name>/``.
        numbers: Optuna trial numbers.
        states: ``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``.
        epochs: e_i, epochs the trial trained (:func:`search.results.read.epochs_run`).
        compute: C_k, cumulative trial-epochs (the range test's included).
        values: the trial's accuracy (complete: its value; pruned: its last report; failed: None).
        best: B_k, best-so-far accuracy of complete trials (NaN before the first one).
        start: R, the range test's trial-epochs, spent before the first trial.
    """

    arm: str
    numbers: list[int] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    start: float = 0.0


def _completion_key(trial: FrozenTrial) -> tuple:
    finished = trial.datetime_complete or trial.datetime_start
    return (finished is None, finished or 0, trial.number)


def arm_curve(arm: str, trials: list[FrozenTrial], start: float = 0) -> ArmCurve:
    """The :class:`ArmCurve` of one arm's trials (unfinished trials are ignored) after ``start`` trial-epochs."""
    curve = ArmCurve(arm=arm, start=start)
    spent, best = start, -math.inf
    for trial in sorted((t for t in trials if t.state in _FINISHED), key=_completion_key):
        epochs = epochs_run(trial)
        spent += epochs
        if trial.state == TrialState.COMPLETE:
            value = float(trial.value)
            if not math.isnan(value):
                best = max(best, value)
        elif trial.state == TrialState.PRUNED and trial.intermediate_values:
            value = float(trial.intermediate_values[max(trial.intermediate_values)])
        else:
            value = None
        curve.numbers.append(trial.number)
        curve.states.append(trial.state.name)
        curve.epochs.append(epochs)
        curve.compute.append(spent)
        curve.values.append(value)
        curve.best.append(best if best > -math.inf else math.nan)
    return curve


def _open(storage: str | optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """URLs are opened read-only like every reading command (:func:`search.storage.database.open_reader`):
    reading never creates or alters a database."""
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str) or not storage:
        raise PlotError(f"storage must be a storage URL or an Optuna storage, got {storage!r}")

    try:
        return open_reader(storage)
    except StorageError as exc:
        raise PlotError(str(exc)) from None


def compare_curves(storage: str | optuna.storages.BaseStorage, name: str) -> dict[str, ArmCurve]:
    """Every arm's :class:`ArmCurve` (replicate 0's search ``<name>/<arm>``), in the study file's order.

    Raises:
        PlotError: no study in the storage is named ``<name>/<arm>``.
    """
    opened = _open(storage)
    try:
        arms = load_arms(opened, name)
    except StudyNotFoundError:
        raise PlotError(f"name {name!r}: no study named '{name}/<arm>' in the storage") from None

    return {arm: arm_curve(arm, study.get_trials(deepcopy=False), range_cost(study)) for arm, study in arms}


def _pyplot():
    import matplotlib  # a dependency; imported here because compare without --plot does not need it

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _style(arm: str, index: int) -> dict:
    base, _, extra = arm.partition("+")
    names = list(OPTIMIZERS)
    colour = _PALETTE[names.index(base) % len(_PALETTE)] if base in names else f"C{index % 10}"
    return {"color": colour, "linestyle": "-" if extra == "lars" else "--"}


def plot_compare(
    storage: str | optuna.storages.BaseStorage,
    name: str,
    path: str | os.PathLike,
    *,
    history_path: str | os.PathLike | None = None,
) -> dict[str, ArmCurve]:
    """Draw best-so-far validation accuracy against trial-epochs, one line per arm, to ``path``.

    Args:
        storage: storage URL or opened Optuna storage holding the ``<name>/<arm>`` studies.
        name: the study file's ``name``.
        path: output image; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).
        history_path: also write Optuna's ``plot_optimization_history`` of all arms there.

    Returns:
        the plotted series, ``{arm: ArmCurve}`` (see :func:`compare_curves`).

    Raises:
        PlotError: the SQLite file does not exist, or no arm of
            ``name`` is in the storage.
        search.errors.StorageError: the storage URL cannot be opened (one line, password masked).
    """
    plt = _pyplot()
    storage = _open(storage)
    curves = compare_curves(storage, name)

    verdict = load_verdict(storage, name)
    fig, (ax, tax) = plt.subplots(1, 2, figsize=(14, 5.5), layout="constrained", width_ratios=(3, 2))
    try:
        legend_done = {"pruned": False, "failed": False}
        for index, (arm, curve) in enumerate(curves.items()):
            style = _style(arm, index)
            ax.step(
                [curve.start, *curve.compute],
                [math.nan, *curve.best],
                where="post",
                linewidth=2,
                label=_legend(arm, curve),
                **style,
            )
            done = [(c, v) for c, v, s in zip(curve.compute, curve.values, curve.states) if s == "COMPLETE"]
            pruned = [
                (c, v) for c, v, s in zip(curve.compute, curve.values, curve.states) if s == "PRUNED" and v is not None
            ]
            failed = [c for c, s in zip(curve.compute, curve.states) if s == "FAIL"]
            if done:  # every complete trial's own accuracy
                ax.scatter(*zip(*done), s=14, color=style["color"], alpha=0.5, zorder=3)
            if pruned:
                ax.scatter(*zip(*pruned), marker="x", s=30, color=style["color"], zorder=3)
                legend_done["pruned"] = True
            if failed:
                ax.scatter(
                    failed,
                    [0.0] * len(failed),
                    marker="v",
                    s=30,
                    color=style["color"],
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    zorder=3,
                )
                legend_done["failed"] = True
        # Marker legend in grey: the colour of a marker is its arm's.
        for kind, marker, label in (
            ("pruned", "x", "pruned trial (its last report)"),
            ("failed", "v", "failed trial (on the x axis)"),
        ):
            if legend_done[kind]:
                ax.scatter([], [], marker=marker, s=30, color="grey", label=label)
        ax.set_xlabel("compute spent (trial-epochs)")
        ax.set_ylabel("best validation accuracy so far")
        ax.set_title(f"{name}: best-so-far validation accuracy per arm (dashed: plain, solid: LARS)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        _plot_test(tax, verdict)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    if history_path is not None:
        _plot_history(plt, storage, name, curves, history_path)
    return curves


def _legend(arm: str, curve: ArmCurve) -> str:
    best = curve.best[-1] if curve.best else math.nan
    return f"{arm} (no complete trial)" if math.isnan(best) else f"{arm} (best {best:.4f})"


def _plot_test(ax, verdict) -> None:
    """Test accuracy per arm: each seed a point (replicates side by side), mean and 95% interval as a bar
    (clipped to the possible [0, 1], and the title says so)."""
    clipped = False
    for x, result in enumerate(verdict.arms):
        style = _style(result.arm, x)
        for r, values in enumerate(result.values):
            offsets = [x - 0.15 + 0.3 * (r + 0.5) / max(1, len(result.values)) for _ in values]
            ax.scatter(offsets, values, s=16, color=style["color"], alpha=0.6, zorder=3)
        test = result.test
        if test is not None and test.n > 0:
            shown, was_clipped = clip(test)  # an interval end beyond [0, 1] is drawn at the end
            clipped |= was_clipped
            err = [[test.mean - shown.low], [shown.high - test.mean]] if test.known else None
            ax.errorbar(
                [x + 0.25], [test.mean], yerr=err, fmt="o", color=style["color"], capsize=5, markersize=6, zorder=4
            )
    ax.set_xticks(range(len(verdict.arms)), [a.arm for a in verdict.arms], rotation=30, ha="right")
    ax.set_ylabel("test accuracy (final evaluation)")
    ax.set_title(
        "test accuracy: seeds (points), mean and 95% interval (bar" + (", clipped to [0, 1])" if clipped else ")")
    )
    ax.grid(True, axis="y", alpha=0.3)
    if not any(result.values for result in verdict.arms):
        ax.text(0.5, 0.5, "no final evaluation yet", ha="center", va="center", transform=ax.transAxes)


def _plot_history(plt, storage, name: str, curves: dict[str, ArmCurve], path) -> None:
    """Optuna's own optimization-history plot (trial-number axis), all arms in one figure."""
    from optuna.visualization.matplotlib import plot_optimization_history

    opened = _open(storage)
    studies = [optuna.load_study(study_name=StudyName(name, arm).format(), storage=opened) for arm in curves]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_optimization_history(studies, target_name="validation accuracy")
    try:
        ax.figure.set_size_inches(9, 5.5)
        ax.figure.savefig(path, dpi=120)
    finally:
        plt.close(ax.figure)


def plot_axis(result: object, path: str | os.PathLike) -> dict[str, list[tuple[int, float, float, float]]]:
    """Test accuracy against batch size per arm, with 95% intervals, on a log (base 2) x axis, from the
    axis as :func:`search.results.axis_report.load_axis` read it.

    One line per arm over the axis values whose final evaluation is done (dashed plain with hollow
    markers, solid LARS with filled ones, twins in one colour, as in :func:`plot_compare`; arms drawn
    a little apart at each batch); the tolerance band of the critical batch size
    is drawn below each arm's accuracy at the smallest batch.

    Returns:
        ``{arm: [(batch, mean, low, high), ...]}``, the plotted points (NaN bounds: no interval).
    """
    plt = _pyplot()
    name, axis = result.name, result.axis
    series: dict[str, list[tuple[int, float, float, float]]] = {}
    fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
    try:
        for index, (arm, _, _) in enumerate(result.arms):
            points = []
            for batch, verdict in result.verdicts.items():
                found = [a for a in (verdict.arms if verdict else []) if a.arm == arm and a.evaluated and a.test]
                if found and found[0].test.n > 0:
                    t = found[0].test
                    points.append((batch, t.mean, t.low, t.high))
            series[arm] = points
            if not points:
                continue
            style = _style(arm, index)
            # arms side by side at each batch, so that overlapping intervals stay readable
            shift = 2 ** (0.04 * (index - (len(result.arms) - 1) / 2))
            xs, means = [p[0] * shift for p in points], [p[1] for p in points]
            err = [[m - (lo if math.isfinite(lo) else m) for _, m, lo, _ in points],
                   [(hi if math.isfinite(hi) else m) - m for _, m, _, hi in points]]  # fmt: skip
            # hollow markers for a plain arm, filled for LARS: twins share a colour
            face = style["color"] if style["linestyle"] == "-" else "white"
            ax.errorbar(xs, means, yerr=err, capsize=4, marker="o", markerfacecolor=face, linewidth=2, label=arm,
                        **style)  # fmt: skip
            if points[0][0] == axis.batch_sizes[0]:
                ax.axhline(points[0][1] - axis.tolerance / 100, color=style["color"], alpha=0.25, linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(axis.batch_sizes), [str(b) for b in axis.batch_sizes])
        ax.set_xlabel("batch size (log scale)")
        ax.set_ylabel("test accuracy (final evaluation), mean and 95% interval")
        ax.set_title(
            f"{name}: test accuracy against batch size (thin lines: {axis.tolerance:g} point below batch "
            f"{axis.batch_sizes[0]})"
        )
        ax.grid(True, alpha=0.3)
        if any(series.values()):
            ax.legend(loc="best", fontsize="small", handlelength=4)  # long enough to show the dashes
        else:
            ax.text(0.5, 0.5, "no final evaluation yet", ha="center", va="center", transform=ax.transAxes)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return series
