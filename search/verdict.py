"""The verdict's statistics: per-arm test accuracy with a 95% interval, LARS vs its plain twin, ranking.

Input: for each arm, the test accuracies of its final evaluation, one list per replicate
(``values[r][k]``: replicate r's incumbent retrained with seed k; see
:mod:`search.evaluation`). Nothing here reads a storage or trains.

Method (Student t intervals, quantiles from ``scipy.stats``):

* The unit of an arm is a replicate: ``m_r`` = mean of replicate r's seeds, so that the
  interval includes the search's own luck (which incumbent it found), not only training
  noise. With one replicate (``replicates: 1``) the units are the seeds themselves, and
  the interval covers training noise only (the output says so).
* Per arm: mean of the units ``m = mean(u)`` and the t interval
  ``m +- t_{0.975, n-1} * s / sqrt(n)`` (``scipy.stats.t.ppf``; s the sample standard
  deviation, n the number of units; no interval when n < 2).
* LARS arm A vs its plain twin B (paired by optimizer: the arm with the same base
  optimizer and LARS off): ``d = mean(u_A) - mean(u_B)`` with Student's two-sample t
  interval, ``d +- t_{0.975, n_A+n_B-2} * s_p * sqrt(1/n_A + 1/n_B)``, s_p the pooled
  standard deviation (what ``scipy.stats.ttest_ind(..., equal_var=True).confidence_interval``
  gives; the quantile from ``scipy.stats.t.ppf``).
  Pooled rather than Welch: with 2-3 units per arm Welch's estimated degrees of freedom
  cost too much power (a 2-point effect at sd 0.5 with 3 seeds: "LARS helps" in 86% of
  simulated studies with Welch, 94% pooled), and under "no difference" the two arms'
  spreads are equal, which is what the pooled interval assumes.
  Verdict: the interval above 0 -> "LARS helps"; below 0 -> "LARS hurts"; containing 0
  -> "no detectable difference at this budget". Calibrated in
  ``tests/search/test_verdict.py`` (200 simulated studies per design: same distribution
  -> no detectable difference in >= 90%; a 2-point shift at sd 0.5 -> "LARS helps" in
  >= 90%; designs 1x3, 2x3, 3x3 and 3x5 replicates x seeds). Two replicates with five
  seeds and search luck (sd 0.3 points) find a 2-point shift in only 75%: the per-arm
  unit count, not the seeds, limits the power.
* Ranking: arms by mean test accuracy; arm i is tied with every arm whose interval
  overlaps its own, and its rank is 1 + the number of arms whose interval lies wholly
  above its own.
* Boundary: an incumbent's value in the outer 5% of a searched range (measured on the
  log scale where the range is log) gets a warning, and verdict lines of that arm are
  marked provisional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

__all__ = [
    "CONFIDENCE",
    "EDGE",
    "Interval",
    "arm_interval",
    "difference",
    "units",
    "verdict_word",
    "verdict_line",
    "ranking",
    "pair_arms",
    "boundary_warnings",
]

CONFIDENCE = 0.95
EDGE = 0.05  # the outer share of a searched range that triggers a boundary warning


@dataclass(frozen=True)
class Interval:
    """``mean`` with a ``low``/``high`` 95% interval (NaN when there are too few units), over ``n`` units."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def known(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def units(values: list[list[float]]) -> list[float]:
    """Per-replicate means when there are two replicates or more, else the seeds' values."""
    filled = [list(v) for v in values if v]
    if len(filled) >= 2:
        return [sum(v) / len(v) for v in filled]
    return filled[0] if filled else []


def arm_interval(values: list[list[float]]) -> Interval:
    """Mean and 95% t interval of an arm's test accuracies (see the module docstring)."""
    u = units(values)
    n = len(u)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(u) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((x - mean) ** 2 for x in u) / (n - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def difference(a: list[list[float]], b: list[list[float]]) -> Interval:
    """``mean(a) - mean(b)`` with Student's pooled 95% interval over their units; ``n`` is the smaller count."""
    ua, ub = units(a), units(b)
    if not ua or not ub:
        return Interval(math.nan, math.nan, math.nan, 0)
    d = sum(ua) / len(ua) - sum(ub) / len(ub)
    if len(ua) < 2 or len(ub) < 2:
        return Interval(d, math.nan, math.nan, min(len(ua), len(ub)))
    na, nb = len(ua), len(ub)
    ma, mb = sum(ua) / na, sum(ub) / nb
    pooled = (sum((x - ma) ** 2 for x in ua) + sum((x - mb) ** 2 for x in ub)) / (na + nb - 2)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, na + nb - 2)) * math.sqrt(pooled * (1 / na + 1 / nb))
    return Interval(d, d - half, d + half, min(na, nb))


def verdict_word(diff: Interval) -> str:
    if not diff.known:
        return "not enough runs for an interval"
    if diff.low > 0:
        return "LARS helps"
    if diff.high < 0:
        return "LARS hurts"
    return "no detectable difference at this budget"


def verdict_line(lars_arm: str, plain_arm: str, diff: Interval, *, provisional: str = "") -> str:
    """``sgd+lars vs sgd: +1.20 points [+0.40, +2.00]: LARS helps`` (accuracies as fractions in)."""
    text = f"{lars_arm} vs {plain_arm}: {100 * diff.mean:+.2f} points"
    if diff.known:
        text += f" [{100 * diff.low:+.2f}, {100 * diff.high:+.2f}]"
    text += f": {verdict_word(diff)}"
    if provisional:
        text += f" (provisional: {provisional})"
    return text


def ranking(intervals: dict[str, Interval]) -> list[tuple[int, str, list[str]]]:
    """``(rank, arm, tied_with)`` by mean, best first (see the module docstring); arms without a mean are left out."""
    known = {a: i for a, i in intervals.items() if i.n > 0 and math.isfinite(i.mean)}

    def span(i: Interval) -> tuple[float, float]:
        return (i.low, i.high) if i.known else (i.mean, i.mean)

    out = []
    for arm in sorted(known, key=lambda a: -known[a].mean):
        lo, hi = span(known[arm])
        above = sum(1 for b in known if b != arm and span(known[b])[0] > hi)
        tied = [b for b in sorted(known, key=lambda a: -known[a].mean)
                if b != arm and not (span(known[b])[0] > hi or span(known[b])[1] < lo)]  # fmt: skip
        out.append((1 + above, arm, tied))
    return out


def pair_arms(kinds: dict[str, tuple[str, bool]]) -> list[tuple[str, str]]:
    """``(lars arm, plain twin)`` for each LARS arm with a plain arm of the same base optimizer.

    ``kinds``: arm -> (optimizer, lars), in the study file's order. When several plain
    arms share the optimizer, the one named after it wins, else the first.
    """
    out = []
    for arm, (optimizer, lars) in kinds.items():
        if not lars:
            continue
        plain = [a for a, (o, lr) in kinds.items() if o == optimizer and not lr]
        if plain:
            out.append((arm, optimizer if optimizer in plain else plain[0]))
    return out


def _position(value: float, low: float, high: float, log: bool) -> float:
    if log:
        value, low, high = math.log(value), math.log(low), math.log(high)
    return (value - low) / (high - low)


def boundary_warnings(label: str, params: dict, distributions: dict) -> list[str]:
    """One line per searched range whose ends hold the incumbent's value (outer 5%).

    ``params``/``distributions``: an Optuna trial's (a distribution with ``low``,
    ``high`` and ``log``; categorical ones are skipped).
    """
    out = []
    for name, dist in distributions.items():
        low, high = getattr(dist, "low", None), getattr(dist, "high", None)
        if low is None or high is None or not high > low or name not in params:
            continue
        u = _position(float(params[name]), float(low), float(high), bool(getattr(dist, "log", False)))
        short = name.rsplit(".", 1)[-1] if name.startswith("schedule.") else name
        if u >= 1 - EDGE - 1e-12:
            out.append(
                f"{label}: best {short} {params[name]:.3g} is at the top of [{low:g}, {high:g}]; widen the range"
            )
        elif u <= EDGE + 1e-12:
            out.append(
                f"{label}: best {short} {params[name]:.3g} is at the bottom of [{low:g}, {high:g}]; widen the range"
            )
    return out
