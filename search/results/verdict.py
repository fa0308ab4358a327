"""The verdict's statistics: per-arm test accuracy, LARS vs its plain twin, ranking, power.

Input: for each arm, the test accuracies of its final evaluation, one list per replicate
(``values[r][k]``: replicate r's incumbent retrained with seed k; see
:mod:`search.run.evaluation`), and the design's number of replicates R. Nothing here reads a
storage or trains. Accuracies are fractions in [0, 1].

Method (Student t, quantiles from ``scipy.stats``; every formula below is one small function):

* Units (:func:`units`). With R >= 2 the unit of an arm is a replicate: ``m_r`` = mean
  of replicate r's seeds, so that the interval includes the search's own luck (which
  incumbent it found), not only training noise. A replicate without results is missing
  (left out and reported by the caller), never replaced by seeds: the units stay
  replicate means. With R = 1 the units are the seeds of the one incumbent, and every
  interval covers training noise only: it describes two incumbents, not two arms, so
  :func:`verdict_line` then gives no verdict word (helps / hurts / no detectable
  difference), only what was measured.
* Per arm (:func:`t_interval`): ``m = mean(u)``, ``m +- t_{0.975, n-1} * s / sqrt(n)``
  (s the sample standard deviation, n the units; no interval when n < 2). Not pooled
  across arms: a LARS arm's search luck need not equal its twin's.
* LARS arm A vs its plain twin B (:func:`pooled_difference`): ``d = mean(u_A) - mean(u_B)``
  with Student's two-sample interval ``d +- t_{0.975, df} * se``, ``se = s_p * sqrt(1/n_A
  + 1/n_B)``, ``df = n_A + n_B - 2``, ``s_p^2 = (sum (u_A - m_A)^2 + sum (u_B - m_B)^2) / df``
  (``scipy.stats.ttest_ind(..., equal_var=True).confidence_interval``), and its two-sided
  p-value ``2 * t.sf(|d| / se, df)``. Pooled rather than Welch: with 2-4 units per arm
  Welch's estimated degrees of freedom cost too much power, and under "no difference"
  the arms' spreads are equal, which is what the pooled interval assumes.
  Verdict (R >= 2): the interval above 0 -> "LARS helps"; below 0 -> "LARS hurts";
  containing 0 -> "no detectable difference at this budget" (never a tie).
* The family (:func:`holm`): each line is a per-comparison 95% interval; with m lines
  the chance that at least one says helps/hurts by luck is up to ``1 - 0.95^m``. When a
  line claims helps or hurts, Holm's step-down (p-values sorted, ``p_(i) <= 0.05 / (m - i
  + 1)`` until the first failure) says whether "LARS helps some optimizer" holds at a
  family-wise 5%.
* Power (:func:`detectable_difference`, :func:`replicates_for`): the smallest |d| the
  design detects with 80% power in the same two-sided 5% test, from the observed
  pooled SD of replicate means s_p: the non-central t solution of ``P(|T| > t_{0.975,
  df}) = 0.8``, ``T ~ t'(df, d / se)``; and the fewest replicates per arm (same seeds, so
  the same s_p) that would detect 1 point.
* Ranking (:func:`ranking`): arm k *beats* arm j when the pairwise interval of k - j
  (the verdict's own test) lies above 0. Arms in order of mean; the rank of arm i is
  ``1 + |{k : k beats some arm m with mean_m >= mean_i}|``, which never rises with the
  mean (monotone), and two arms share a rank only where neither beats the other
  (their pairwise interval holds 0, or there is none, as with one seed).
* Display (:func:`clip`): t intervals can reach outside the possible range; what is
  shown is clipped to [0, 100]% (a difference to [-100, +100] points) and says so.
* Calibrated in ``tests/search/test_verdict.py`` on 4,000 simulated studies per design
  (R = 2, 3, 4, 6; search luck above and below seed noise): per-arm coverage and the
  difference's coverage at zero and non-zero effect stay at or above 93.5%, which a
  95% method passes and a 92% method, or seeds taken as units, fails.
* Boundary: an incumbent's value in the outer 5% of a searched range (measured on the
  log scale where the range is log) gets a warning, and verdict lines of that arm are
  marked provisional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "CONFIDENCE",
    "POWER",
    "EDGE",
    "Interval",
    "units",
    "unit_array",
    "t_interval",
    "pooled_difference",
    "arm_interval",
    "difference",
    "p_value",
    "holm",
    "family_lines",
    "detectable_difference",
    "replicates_for",
    "clip",
    "verdict_word",
    "verdict_line",
    "ranking",
    "pair_arms",
    "boundary_warnings",
]

CONFIDENCE = 0.95
POWER = 0.80
EDGE = 0.05  # the outer share of a searched range that triggers a boundary warning
NO_VERDICT_R1 = "the search's luck is not covered: no verdict on the arms (replicates: 2 or more for one)"


@dataclass(frozen=True)
class Interval:
    """``mean`` with a ``low``/``high`` 95% interval (NaN when there are too few units), over ``n`` units.

    ``se`` and ``df``: the standard error and degrees of freedom it came from (a
    difference: the pooled ones), for p-values and power; ``sd``: the (pooled) SD of a unit.
    """

    mean: float
    low: float
    high: float
    n: int
    se: float = math.nan
    df: int = 0
    sd: float = math.nan

    @property
    def known(self) -> bool:
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)


def units(values: list[list[float]], replicates: int) -> list[float]:
    """The units of an arm: replicate means ``m_r = mean_k values[r][k]`` when ``replicates >= 2``
    (an empty replicate is left out, never replaced by seeds), else replicate 0's seeds."""
    if replicates >= 2:
        return [sum(v) / len(v) for v in values if v]
    return list(values[0]) if values else []


def unit_array(values: np.ndarray) -> np.ndarray:
    """:func:`units` of many complete studies at once: ``values[..., r, k]`` -> replicate means
    ``values.mean(-1)`` when R >= 2, else the seeds ``values[..., 0, :]`` (the calibration tests use it)."""
    values = np.asarray(values, dtype=float)
    return values.mean(axis=-1) if values.shape[-2] >= 2 else values[..., 0, :]


def t_interval(u: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(m, m - h, m + h)`` over the last axis: ``m = mean(u)``, ``h = t_{(1+c)/2, n-1} * s / sqrt(n)``.

    Vectorised over leading axes (the calibration tests run 4,000 studies at once); n >= 2.
    """
    u = np.asarray(u, dtype=float)
    n = u.shape[-1]
    m = u.mean(axis=-1)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * u.std(axis=-1, ddof=1) / math.sqrt(n)
    return m, m - half, m + half


def pooled_difference(ua: np.ndarray, ub: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, ...]:
    """``(d, low, high, se, df, s_p)`` of ``mean(ua) - mean(ub)`` over the last axis (Student's pooled interval).

    ``s_p^2 = (SS_a + SS_b) / df``, ``df = n_a + n_b - 2``, ``se = s_p sqrt(1/n_a + 1/n_b)``,
    ``d +- t_{(1+c)/2, df} se``. Vectorised over leading axes; n_a, n_b >= 1 and df >= 1.
    """
    ua, ub = np.asarray(ua, dtype=float), np.asarray(ub, dtype=float)
    na, nb = ua.shape[-1], ub.shape[-1]
    df = na + nb - 2
    ma, mb = ua.mean(axis=-1), ub.mean(axis=-1)
    ss = ((ua - ma[..., None]) ** 2).sum(axis=-1) + ((ub - mb[..., None]) ** 2).sum(axis=-1)
    sp = np.sqrt(ss / df)
    se = sp * math.sqrt(1 / na + 1 / nb)
    d = ma - mb
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return d, d - half, d + half, se, df, sp


def arm_interval(values: list[list[float]], replicates: int) -> Interval:
    """Mean and 95% t interval of an arm's :func:`units` (see the module docstring)."""
    u = units(values, replicates)
    n = len(u)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if n < 2:
        return Interval(u[0], math.nan, math.nan, 1)
    m, low, high = (float(x) for x in t_interval(np.array(u)))
    sd = float(np.std(u, ddof=1))
    return Interval(m, low, high, n, se=sd / math.sqrt(n), df=n - 1, sd=sd)


def difference(a: list[list[float]], b: list[list[float]], replicates: int) -> Interval:
    """``mean(a) - mean(b)`` over their :func:`units` with Student's pooled 95% interval; ``n`` the smaller count."""
    ua, ub = units(a, replicates), units(b, replicates)
    if not ua or not ub:
        return Interval(math.nan, math.nan, math.nan, 0)
    d = sum(ua) / len(ua) - sum(ub) / len(ub)
    if len(ua) < 2 or len(ub) < 2:
        return Interval(d, math.nan, math.nan, min(len(ua), len(ub)))
    d, low, high, se, df, sp = (float(x) for x in pooled_difference(np.array(ua), np.array(ub)))
    return Interval(d, low, high, min(len(ua), len(ub)), se=se, df=int(df), sd=sp)


def p_value(diff: Interval) -> float:
    """Two-sided p-value of the pooled t test behind ``diff``: ``2 * t.sf(|d| / se, df)`` (NaN without one)."""
    if not diff.known:
        return math.nan
    if diff.se == 0:  # every unit equal within each arm
        return 0.0 if diff.mean != 0 else 1.0
    return float(2 * stats.t.sf(abs(diff.mean) / diff.se, diff.df))


def holm(pvalues: dict[str, float], alpha: float = 1 - CONFIDENCE) -> dict[str, float]:
    """Holm's step-down thresholds: ``{key: alpha / (m - i + 1)}`` for each p-value it rejects (i = 1, 2, ...
    in ascending order of p, stopping at the first ``p_(i) > alpha / (m - i + 1)``); NaN p-values are left out."""
    known = sorted((p, k) for k, p in pvalues.items() if math.isfinite(p))
    m, out = len(known), {}
    for i, (p, key) in enumerate(known):
        threshold = alpha / (m - i)
        if p > threshold:
            break
        out[key] = threshold
    return out


def family_lines(
    judged: dict[str, Interval], claim: str = "some optimizer", lines: str = "LARS-vs-plain lines"
) -> list[str]:
    """The LARS-vs-plain lines (``{label: difference}``) as a family: how often per-comparison 95% lines show
    helps/hurts by luck (``1 - 0.95^m``), and Holm's word (:func:`holm`) on "LARS helps/hurts ``claim``".
    One line is no family (``[]``)."""
    m = len(judged)
    if m < 2:
        return []
    out = [f"{m} {lines}, each a per-comparison 95% interval: with no true difference anywhere, "
           f"up to {100 * (1 - CONFIDENCE**m):.0f}% of studies would show at least one helps/hurts"]  # fmt: skip
    p = {label: p_value(d) for label, d in judged.items()}
    kept = holm(p)
    for word, claims in (("helps", [k for k, d in judged.items() if d.low > 0]),
                         ("hurts", [k for k, d in judged.items() if d.high < 0])):  # fmt: skip
        if not claims:
            continue
        held = [f"{k} (p {p[k]:.3g} <= {kept[k]:.3g})" for k in claims if k in kept]
        if held:
            out.append(f"Holm-adjusted (family-wise 5%): LARS {word} {claim}: holds, by {', '.join(held)}")
        else:
            smallest = min(p[k] for k in claims)
            out.append(f"Holm-adjusted (family-wise 5%): LARS {word} {claim}: not established "
                       f"(smallest p {smallest:.3g} > {(1 - CONFIDENCE) / m:.3g})")  # fmt: skip
    return out


def _power(ncp: float, df: int, alpha: float) -> float:
    """``P(|T| > t_{1-alpha/2, df})`` for ``T ~ t'(df, ncp)`` (non-central t)."""
    tc = stats.t.ppf(1 - alpha / 2, df)
    value = float(stats.nct.sf(tc, df, ncp) + stats.nct.cdf(-tc, df, ncp))
    return value if math.isfinite(value) else 1.0


def detectable_difference(sd: float, n_a: int, n_b: int, power: float = POWER, alpha: float = 1 - CONFIDENCE) -> float:
    """The smallest |d| the pooled two-sided t test detects with ``power``: ``delta = ncp * sd * sqrt(1/n_a + 1/n_b)``,
    ``ncp`` solving ``P(|T| > t_{1-alpha/2, df}) = power`` for ``T ~ t'(df, ncp)``, ``df = n_a + n_b - 2``."""
    from scipy.optimize import brentq

    df = n_a + n_b - 2
    if df < 1 or not sd >= 0:
        return math.nan
    high = 1.0
    while _power(high, df, alpha) < power:
        high *= 2
    ncp = brentq(lambda x: _power(x, df, alpha) - power, 0.0, high, xtol=1e-10)
    return ncp * sd * math.sqrt(1 / n_a + 1 / n_b)


def replicates_for(delta: float, sd: float, power: float = POWER, alpha: float = 1 - CONFIDENCE,
                   limit: int = 10_000) -> int | None:  # fmt: skip
    """The fewest replicates R per arm with :func:`detectable_difference` ``(sd, R, R) <= delta``
    (None when more than ``limit``); power rises with R, so a doubling then a bisection finds it."""
    if not (delta > 0 and sd >= 0):
        return None
    if sd == 0:
        return 2

    def enough(r: int) -> bool:
        return _power(delta / (sd * math.sqrt(2 / r)), 2 * r - 2, alpha) >= power

    high = 2
    while not enough(high):
        if high >= limit:
            return None
        high = min(2 * high, limit)
    low = high // 2 if high > 2 else 1  # enough(low) is False (or low < 2)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return max(high, 2)


def clip(interval: Interval, low: float = 0.0, high: float = 1.0) -> tuple[Interval, bool]:
    """``interval`` with its ends clipped to the possible range [low, high] (never past its own mean), and
    whether an end was clipped."""
    if not interval.known:
        return interval, False
    lo, hi = max(interval.low, min(low, interval.mean)), min(interval.high, max(high, interval.mean))
    clipped = (lo, hi) != (interval.low, interval.high)
    return Interval(interval.mean, lo, hi, interval.n, interval.se, interval.df, interval.sd), clipped


def verdict_word(diff: Interval) -> str:
    """helps / hurts / no detectable difference by where the interval lies (R >= 2 only: see :func:`verdict_line`)."""
    if not diff.known:
        return "not enough replicates with results for an interval"
    if diff.low > 0:
        return "LARS helps"
    if diff.high < 0:
        return "LARS hurts"
    return "no detectable difference at this budget"


def _points(diff: Interval) -> str:
    shown, _ = clip(diff, -1.0, 1.0)
    text = f"{100 * diff.mean:+.2f} points"
    if diff.known:
        text += f" [{100 * shown.low:+.2f}, {100 * shown.high:+.2f}]"
    return text


def verdict_line(lars_arm: str, plain_arm: str, diff: Interval, *, replicates: int, seeds: int = 0,
                 provisional: str = "") -> str:  # fmt: skip
    """One LARS-vs-plain line (accuracies as fractions in), e.g. with R >= 2
    ``sgd+lars vs sgd: +1.20 points [+0.40, +2.00]: LARS helps``; with R = 1 what was measured and no verdict word:
    ``sgd+lars vs sgd: the two incumbents differ by -4.71 points [-11.32, +1.90] in training noise (3 seeds each);
    the search's luck is not covered: no verdict on the arms (replicates: 2 or more for one)``."""
    if replicates < 2:
        measured = _points(diff) if diff.known else f"{100 * diff.mean:+.2f} points (no interval)"
        each = f" ({seeds} seed{'s' if seeds != 1 else ''} each)" if seeds else ""
        return f"{lars_arm} vs {plain_arm}: the two incumbents differ by {measured} in training noise{each}; " + (
            NO_VERDICT_R1
        )
    text = f"{lars_arm} vs {plain_arm}: {_points(diff)}: {verdict_word(diff)}"
    if provisional:
        text += f" (provisional: {provisional})"
    return text


def ranking(values: dict[str, list[list[float]]], replicates: int) -> list[tuple[int, str, list[str]]]:
    """``(rank, arm, not_distinguished_from)`` best mean first, from the pairwise test (see the module docstring).

    ``values``: arm -> its ``values[r][k]``; arms without a unit are left out.
    """
    means = {a: arm_interval(v, replicates).mean for a, v in values.items()}
    order = sorted((a for a in values if math.isfinite(means[a])), key=lambda a: -means[a])

    def beats(k: str, j: str) -> bool:
        d = difference(values[k], values[j], replicates)
        return d.known and d.low > 0

    out, beaten = [], set()
    for arm in order:
        beaten |= {k for k in order if k != arm and beats(k, arm)}  # the union over arms with mean >= this one
        ties = [b for b in order if b != arm and not beats(b, arm) and not beats(arm, b)]
        out.append((1 + len(beaten), arm, ties))
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
