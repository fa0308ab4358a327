"""A batch-size axis read from the storage: the table batch x arm, the verdicts, critical batch sizes.

Each value of the axis is its own study ``<name>-b<B>`` (:mod:`search.spec.batch_axis`), with its
own verdict (:func:`search.results.read.load_verdict`). This module puts them side by side:

* per batch and arm, the test accuracy of the final evaluation with its 95% interval;
* per batch, each LARS arm against its plain twin (the verdict lines of that batch's study) and what
  that batch's design could detect (its power lines);
* every batch's LARS-vs-plain lines as one family (:func:`search.results.verdict.family_lines`): a
  per-comparison "helps" at one of four batch sizes is not yet "LARS helps at some batch size";
* per arm, the critical batch size (:func:`search.spec.batch_axis.critical_batch_size`), with the
  drop from the smallest batch's accuracy and its interval taken by the verdict's own
  two-sample rule (:func:`search.results.verdict.difference`); per LARS arm, whether it extends its
  twin's (:func:`search.spec.batch_axis.compare_critical`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from search.errors import StudyNotFoundError
from search.names import StudyName, axis_name
from search.results.read import Verdict, load_verdict, study_names
from search.results.report import format_table, interval_text
from search.results.verdict import Interval, difference, family_lines, pair_arms
from search.spec.batch_axis import (
    AxisSpec,
    CriticalBatch,
    compare_critical,
    critical_batch_size,
    parse_axis,
)

__all__ = ["AxisResult", "find_axis", "load_axis", "format_axis", "axis_family"]


@dataclass
class AxisResult:
    """``verdicts[B]``: the verdict of batch B's study (None: not run yet); per arm its critical batch size."""

    name: str
    axis: AxisSpec
    verdicts: dict[int, Verdict | None]
    arms: list[tuple[str, str, bool]] = field(default_factory=list)  # (arm, optimizer, lars) in file order
    drops: dict[str, list[tuple[int, Interval]]] = field(default_factory=dict)
    critical: dict[str, CriticalBatch] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every batch has its verdict: each arm's final evaluation is done."""
        return all(v is not None and all(a.evaluated for a in v.arms) for v in self.verdicts.values())


def find_axis(storage: Any, name: str) -> AxisSpec | None:
    """The axis of study file ``name`` when its per-batch studies ``<name>-b<B>`` are in the storage."""
    names = study_names(storage)
    found = sorted(n for n in names if re.fullmatch(re.escape(name) + r"-b[0-9]+", n))
    if not found:
        return None
    import optuna

    first = optuna.load_study(study_name=StudyName(found[0], names[found[0]][0]).format(), storage=storage)
    try:
        data = yaml.safe_load(first.user_attrs.get("study_file") or "") or {}
        if data.get("name") != name or not data.get("axis"):
            return None
        objective = data.get("objective") or {}
        return parse_axis(data["axis"], f"stored study file of {name!r}", int(objective.get("batch_size", 128)))
    except (yaml.YAMLError, AttributeError, TypeError, ValueError):
        return None


def load_axis(storage: Any, name: str, axis: AxisSpec) -> AxisResult:
    """Every batch's verdict, each arm's drops from the smallest batch, critical batch sizes."""
    verdicts: dict[int, Verdict | None] = {}
    for batch in axis.batch_sizes:
        try:
            verdicts[batch] = load_verdict(storage, axis_name(name, batch))
        except StudyNotFoundError:
            verdicts[batch] = None
    result = AxisResult(name, axis, verdicts)
    seen = []
    for verdict in verdicts.values():
        for a in verdict.arms if verdict else []:
            if a.arm not in [s[0] for s in seen]:
                seen.append((a.arm, a.optimizer, a.lars))
    result.arms = seen
    smallest = verdicts[axis.batch_sizes[0]]
    replicates = min((v.replicates for v in verdicts.values() if v), default=1)
    for arm, _, _ in seen:
        base = _values(smallest, arm)
        drops = []
        for batch in axis.batch_sizes:
            values = _values(verdicts[batch], arm)
            nothing = Interval(math.nan, math.nan, math.nan, 0)
            drops.append((batch, difference(base, values, replicates) if any(base) and any(values) else nothing))
        result.drops[arm] = drops
        if not any(base):  # every drop is measured from the smallest batch
            result.critical[arm] = CriticalBatch("no data")
            continue
        if replicates < 2:  # seeds alone do not cover the searches' luck: no claim about the arm
            result.critical[arm] = CriticalBatch("one replicate")
            continue
        # in points, as the tolerance is written; the smallest batch is kept by definition
        points = [(b, 100 * d.low, 100 * d.high) for b, d in drops[1:]]
        result.critical[arm] = critical_batch_size([(axis.batch_sizes[0], 0.0, 0.0), *points], axis.tolerance)
    return result


def _values(verdict: Verdict | None, arm: str) -> list[list[float]]:
    if verdict is None or arm not in [a.arm for a in verdict.arms]:
        return []
    result = verdict.arm(arm)
    return result.values if result.evaluated else []


def format_axis(result: AxisResult) -> str:
    """The axis (:func:`load_axis`) as text: test accuracy per batch and arm, verdict lines per batch, critical
    batch sizes."""
    name, axis = result.name, result.axis
    arms = [a for a, _, _ in result.arms]
    lines = [
        f"compare {name}: batch-size axis {', '.join(map(str, axis.batch_sizes))} (each its own study "
        f"{axis_name(name, axis.batch_sizes[0])}, ...; lr ranges and recipes scaled '{axis.lr_scaling}' from "
        f"batch {axis.reference}); test % [95% CI] of each arm's final evaluation",
    ]
    rows = []
    for batch in axis.batch_sizes:
        verdict = result.verdicts[batch]
        if verdict is None:
            rows.append([str(batch)] + ["not run yet"] * len(arms))
            continue
        by_arm = {a.arm: a for a in verdict.arms}
        rows.append([str(batch)] + [interval_text(by_arm[a].test if a in by_arm else None) for a in arms])
    lines.append(format_table(["batch", *arms], rows))
    lines += ["", "verdict per batch size (LARS minus plain, test points):"]
    for batch in axis.batch_sizes:
        verdict = result.verdicts[batch]
        for text in (verdict.lines if verdict else []) or ["no verdict yet"]:
            lines.append(f"  batch {batch}: {text}")
    power = [(b, line) for b, v in result.verdicts.items() for line in (v.power if v else [])]
    if power:
        lines.append("power per batch size (two-sided 5% test, from that batch's spread of replicate means):")
        lines += [f"  batch {b}: {line}" for b, line in power]
    family = axis_family(result)
    if family:
        lines.append("every batch size's lines as a family:")
        lines += [f"  {line}" for line in family]
    lines += [
        "",
        f"critical batch size (largest batch whose test accuracy stays within {axis.tolerance:g} point"
        f"{'' if axis.tolerance == 1 else 's'} of batch {axis.batch_sizes[0]}'s, judged on the 95% interval of "
        "the drop):",
    ]
    for arm in arms:
        drops = ", ".join(f"{b} {_drop(d)}" for b, d in result.drops[arm][1:])
        lines.append(f"  {arm}: {result.critical[arm].describe()} (drop from {axis.batch_sizes[0]}: {drops})")
    kinds = {a: (o, lars) for a, o, lars in result.arms}
    for lars_arm, plain_arm in pair_arms(kinds):
        verdict = compare_critical(result.critical[lars_arm], result.critical[plain_arm])
        lines.append(f"  {lars_arm} vs {plain_arm}: {verdict}")
    return "\n".join(lines)


def axis_family(result: AxisResult) -> list[str]:
    """The LARS-vs-plain lines of every batch (those with an interval) as one family, with Holm's word on
    "LARS helps/hurts at some batch size" (:func:`search.results.verdict.family_lines`)."""
    lines = [(b, pair, d) for b, v in result.verdicts.items() if v for pair, d in v.judged.items()]
    judged = {f"batch {b}: {la} vs {pa}": d for b, (la, pa), d in lines}
    pairs = {pair for _, pair, _ in lines}
    claim = "at some batch size" if len(pairs) < 2 else "some optimizer at some batch size"
    return family_lines(judged, claim, lines="LARS-vs-plain lines over the batch sizes")


def _drop(d: Interval) -> str:
    if d.n == 0 or not math.isfinite(d.mean):
        return "-"
    if not d.known:
        return f"{100 * d.mean:+.2f}"
    return f"{100 * d.mean:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"
