"""Which verdict design buys most power per training? The spread between searches, measured (issue 23 item 3).

A verdict's unit is the replicate mean: one search of ``T`` trials, its incumbent retrained with ``K``
seeds, ``T + K`` trainings per replicate and arm. Its variance is the search's luck at ``T`` trials plus
the seed noise over ``K``; which design wins at a fixed compute depends on how that variance grows when
``T`` and ``K`` shrink, which only a real run can say. For each design this prints the pooled SD of a
replicate mean (each arm's replicates around that arm's own mean, pooled over the arms) with its 95%
interval (chi-square), the cost ``s^2 (T + K)`` (variance of a replicate mean times its trainings: the
variance one training buys, lower is better), the 80%-power detectable difference of a LARS-vs-plain line
at this design's own replicates and at a common budget of ``--budget`` trainings per arm, and for each
design after the first its cost ratio to the first with a 95% interval (F distribution).

A design comes from a storage (a study name; every arm's replicate means, as ``compare`` computes them)
or from literal replicate means (``--means``, e.g. the published figures of a storage that is gone)::

    python benchmarks/verdict_design.py \\
        --means "published 2x12x3" 12 3 "sgd=79.89,81.05" "sgd+lars=81.53,82.15" \\
        --storage sqlite:///design.db fashion-mnist-verdict-b1024-4x6x1

Measured figures: ``benchmarks/RESULTS.md`` (section Verdict design).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from scipy import stats

from search.results.verdict import detectable_difference


@dataclass
class Design:
    label: str
    trials: int  # per search
    seeds: int  # evaluation seeds per incumbent
    means: dict[str, list[float]]  # arm -> replicate means, in points

    @property
    def cost(self) -> int:
        """Trainings per replicate and arm."""
        return self.trials + self.seeds


def pooled_sd(means: dict[str, list[float]]) -> tuple[float, int]:
    """``(s, df)``: ``s^2 = sum over arms and replicates of (x - arm mean)^2 / df``, ``df = sum (R_arm - 1)``."""
    ss, df = 0.0, 0
    for values in means.values():
        if len(values) < 2:
            continue
        mean = sum(values) / len(values)
        ss += sum((v - mean) ** 2 for v in values)
        df += len(values) - 1
    return (math.sqrt(ss / df), df) if df else (math.nan, 0)


def sd_interval(sd: float, df: int, confidence: float = 0.95) -> tuple[float, float]:
    """The chi-square interval of a normal SD: ``sqrt(df s^2 / chi2_{1-a/2})`` .. ``sqrt(df s^2 / chi2_{a/2})``."""
    a = 1 - confidence
    return (math.sqrt(df * sd**2 / stats.chi2.ppf(1 - a / 2, df)), math.sqrt(df * sd**2 / stats.chi2.ppf(a / 2, df)))


def ratio_interval(ratio: float, df_top: int, df_bottom: int, confidence: float = 0.95) -> tuple[float, float]:
    """The F interval of a variance ratio ``s1^2 / s2^2`` (so also of ``s1^2 c / (s2^2 c)`` for known costs)."""
    a = 1 - confidence
    return (ratio / stats.f.ppf(1 - a / 2, df_top, df_bottom), ratio / stats.f.ppf(a / 2, df_top, df_bottom))


def replicates_at(budget: int, design: Design) -> int:
    """Replicates per arm that ``budget`` trainings per arm buy at this design (at least 2)."""
    return max(2, budget // design.cost)


def report(designs: list[Design], budget: int) -> list[str]:
    w = max(6, *(len(d.label) for d in designs))
    lines = [
        f"{'design':<{w}} {'T x K':>7} {'R/arm':>5} {'SD of a replicate mean [95%]':>30} {'df':>3} "
        f"{'s^2 (T+K)':>9} {'MDD own':>7} {f'MDD at {budget}':>9}",
    ]
    first = None
    for d in designs:
        sd, df = pooled_sd(d.means)
        low, high = sd_interval(sd, df) if df else (math.nan, math.nan)
        r = min(len(v) for v in d.means.values())
        own = detectable_difference(sd, r, r)
        at_budget = detectable_difference(sd, replicates_at(budget, d), replicates_at(budget, d))
        cost = sd**2 * d.cost
        lines.append(
            f"{d.label:<{w}} {f'{d.trials} x {d.seeds}':>7} {r:>5} {f'{sd:.2f} [{low:.2f}, {high:.2f}]':>30} {df:>3} "
            f"{cost:>9.2f} {own:>7.2f} {at_budget:>9.2f}"
        )
        if first is None:
            first = (d, cost, df)
            continue
        ratio = cost / first[1]
        lo, hi = ratio_interval(ratio, df, first[2])
        lines.append(
            f"  variance per training against {first[0].label}: x{ratio:.2f} [{lo:.2f}, {hi:.2f}] "
            f"({'fewer' if ratio < 1 else 'more'} trainings for the same power)"
        )
    return lines


def _means_from_storage(url: str, name: str) -> Design:
    from search.results.read import load_verdict
    from search.storage.database import open_storage

    verdict = load_verdict(open_storage(url, heartbeat=False), name)
    means = {a.arm: [100 * sum(v) / len(v) for v in a.values if v] for a in verdict.arms}
    trials = max(s.trials for a in verdict.arms for s in a.searches)
    label = f"{name} ({verdict.replicates}x{trials}x{verdict.seeds})"
    return Design(label, trials, verdict.seeds, means)


def _means_from_text(label: str, trials: str, seeds: str, *arms: str) -> Design:
    means = {}
    for item in arms:
        arm, _, values = item.partition("=")
        means[arm] = [float(v) for v in values.split(",")]
    return Design(label, int(trials), int(seeds), means)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--means", nargs="+", action="append", default=[], metavar="ITEM",
                        help='LABEL TRIALS SEEDS ARM=m1,m2,... [ARM=...]: replicate means in points')  # fmt: skip
    parser.add_argument("--storage", nargs=2, action="append", default=[], metavar=("URL", "STUDY"))
    parser.add_argument("--budget", type=int, default=30, help="trainings per arm for the common-budget MDD")
    args = parser.parse_args()
    designs = [_means_from_text(*m) for m in args.means] + [_means_from_storage(u, n) for u, n in args.storage]
    for d in designs:
        for arm, values in d.means.items():
            print(f"{d.label}: {arm} replicate means " + ", ".join(f"{v:.2f}" for v in values))
    print("\n".join(report(designs, args.budget)))


if __name__ == "__main__":
    main()
