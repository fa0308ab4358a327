"""Would a sequential verdict design (``replicates: {min: 2, max: R}``) pay? Simulated (issue 23 item 3, optional part).

A sequential design adds one replicate per arm after each look and stops as soon as the
LARS-vs-plain line is decided: the verdict's pooled two-sided t test on replicate means
(``search.verdict.difference``) below a per-look level ``alpha'``. ``alpha'`` is calibrated
here by simulation under "no difference" so that the chance of any false "helps/hurts" over
all looks stays 5%. Against it: the fixed design with the same power at each effect. The
verdict's unit is the replicate mean, normal with SD ``sd`` per arm; effects are in units of
that SD, so the table holds for any spread.

A look is free only if replicates run one at a time. Printed per effect: power and expected
replicates per arm of the sequential design, the replicates a fixed design needs for the same
power, and the ratio (below 1: the sequential design saves trainings). Under "no difference"
(the verdicts measured so far) it runs to its maximum unless it errs.

    python benchmarks/sequential_design.py              # 20,000 studies per cell, about a minute
    python benchmarks/sequential_design.py --max 12 --studies 50000

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


def fixed_replicates(effect: float, power: float) -> int | None:
    """Replicates per arm of the fixed design (one look, 5%) with ``power`` at ``effect`` SDs."""
    return replicates_for(effect, 1.0, power=power) if effect > 0 and power > 0.05 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=int, default=2, dest="r_min")
    parser.add_argument("--max", type=int, default=8, dest="r_max")
    parser.add_argument("--studies", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    level = calibrate(args.r_min, args.r_max, args.studies, rng)
    print(f"looks at R = {args.r_min}..{args.r_max} per arm; per-look level {level:.4f} "
          f"(any false helps/hurts 5% under no difference, {args.studies:,} studies)")  # fmt: skip
    print(f"{'effect (SD)':>11}  {'power':>6}  {'E[R] seq':>8}  {'fixed R, same power':>19}  {'E[R] / fixed':>12}")
    for effect in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0):
        power, mean_r = run(effect, level, args.r_min, args.r_max, args.studies, rng)
        fixed = fixed_replicates(effect, power)
        ratio = f"{mean_r / fixed:.2f}" if fixed else "-"
        print(f"{effect:>11.1f}  {power:>6.3f}  {mean_r:>8.2f}  {fixed if fixed else '-':>19}  {ratio:>12}")


if __name__ == "__main__":
    main()
