"""Would a sequential verdict design (``replicates: {min: 2, max: R}``) pay? Simulated (issue 23 item 3, optional part).

A sequential design adds one replicate per arm after each look and stops as soon as the
LARS-vs-plain line is decided: the verdict's pooled two-sided t test on replicate means
(``search.results.verdict.difference``) below a per-look level ``alpha'``, calibrated here by simulation
under "no difference" so that the chance of any false "helps/hurts" over all looks stays 5%.
Against it: the fixed design sized for 80% power at a target difference (``--target``, in SDs
of a replicate mean: at the measured SD of 0.40 points, 1 point is 2.5 SDs). The sequential
design gets the smallest maximum that keeps 80% power at the target; printed, for true effects
from none to twice the target, the power and the expected replicates per arm of both, and their
ratio (below 1: the sequential design saves trainings). Effects are in SD units, so the table
holds for any spread; a look is free only if replicates run one at a time.

    python benchmarks/sequential_design.py              # 20,000 studies per cell, under a minute
    python benchmarks/sequential_design.py --target 1.5 --studies 50000

Measured figures: ``benchmarks/RESULTS.md`` (section Verdict design).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from search.results.verdict import replicates_for


def t_p_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two-sided pooled t test p-values per row: ``a`` and ``b`` are (studies, R) replicate means."""
    r = a.shape[1]
    diff = b.mean(axis=1) - a.mean(axis=1)
    pooled = (a.var(axis=1, ddof=1) + b.var(axis=1, ddof=1)) / 2
    t = diff / np.sqrt(pooled * 2 / r)
    return 2 * stats.t.sf(np.abs(t), 2 * r - 2)


def min_p_by_look(effect: float, r_min: int, r_max: int, studies: int, rng: np.random.Generator) -> np.ndarray:
    """(studies, looks) p-values of the looks at R = r_min .. r_max replicates per arm."""
    a = rng.standard_normal((studies, r_max))
    b = rng.standard_normal((studies, r_max)) + effect
    return np.stack([t_p_values(a[:, :r], b[:, :r]) for r in range(r_min, r_max + 1)], axis=1)


def calibrate(r_min: int, r_max: int, studies: int, rng: np.random.Generator, alpha: float = 0.05) -> float:
    """The per-look level whose chance of any rejection under "no difference" is ``alpha``."""
    p = min_p_by_look(0.0, r_min, r_max, studies, rng).min(axis=1)
    return float(np.quantile(p, alpha))


def run(effect: float, level: float, r_min: int, r_max: int, studies: int, rng: np.random.Generator):
    """``(power, expected replicates per arm)`` of the sequential design at ``effect`` SDs."""
    p = min_p_by_look(effect, r_min, r_max, studies, rng)
    hit = p < level
    decided = hit.any(axis=1)
    stop = np.where(decided, hit.argmax(axis=1) + r_min, r_max)
    return float(decided.mean()), float(stop.mean())


def sequential_max(target: float, r_min: int, studies: int, rng: np.random.Generator,
                   power: float = 0.8) -> tuple[int, float]:  # fmt: skip
    """``(R_max, level)``: the smallest maximum whose calibrated design has ``power`` at ``target``."""
    r_max = max(r_min, replicates_for(target, 1.0, power=power) or r_min)
    while True:
        level = calibrate(r_min, r_max, studies, rng)
        if run(target, level, r_min, r_max, studies, rng)[0] >= power:
            return r_max, level
        r_max += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=2.5, help="difference to detect, in SDs of a replicate mean")
    parser.add_argument("--min", type=int, default=2, dest="r_min")
    parser.add_argument("--studies", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    fixed = replicates_for(args.target, 1.0)
    r_max, level = sequential_max(args.target, args.r_min, args.studies, rng)
    print(f"target {args.target:g} SDs: fixed design {fixed} replicates per arm (80% power, 5%); sequential "
          f"{args.r_min}..{r_max}, per-look level {level:.4f} (any false helps/hurts 5%; {args.studies:,} studies)")  # fmt: skip
    print(f"{'effect (SD)':>11}  {'power fixed':>11}  {'power seq':>9}  {'E[R] seq':>8}  {'E[R] / fixed':>12}")
    for factor in (0.0, 0.5, 1.0, 1.5, 2.0):
        effect = factor * args.target
        power_fixed = run(effect, 0.05, fixed, fixed, args.studies, rng)[0]
        power, mean_r = run(effect, level, args.r_min, r_max, args.studies, rng)
        print(f"{effect:>11.2f}  {power_fixed:>11.3f}  {power:>9.3f}  {mean_r:>8.2f}  {mean_r / fixed:>12.2f}")


if __name__ == "__main__":
    main()
