"""benchmarks/sequential_design.py: its t test is scipy's pooled t test; its calibration holds the 5% level."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import sequential_design as sd  # noqa: E402


def test_p_values_are_scipys_pooled_two_sided_t_test():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)) + 0.7
    expected = [stats.ttest_ind(b[i], a[i], equal_var=True).pvalue for i in range(5)]
    assert sd.t_p_values(a, b) == pytest.approx(expected, rel=1e-10)


def test_calibrated_level_keeps_the_chance_of_any_false_claim_at_five_percent():
    level = sd.calibrate(2, 6, 20_000, np.random.default_rng(2))
    assert 0.01 < level < 0.05  # five looks: below the one-look 5%, above Bonferroni's 1%
    power, mean_r = sd.run(0.0, level, 2, 6, 20_000, np.random.default_rng(3))
    # fresh studies: the calibration's and this run's binomial errors, SD 0.0022 together; 4 SDs
    assert power == pytest.approx(0.05, abs=0.009)
    assert 5.7 < mean_r <= 6.0  # under no difference it runs to its maximum unless it errs


def test_one_look_is_the_fixed_design():
    level = sd.calibrate(4, 4, 20_000, np.random.default_rng(4))
    assert level == pytest.approx(0.05, abs=0.004)
    assert sd.run(1.5, 0.05, 4, 4, 1, np.random.default_rng(5))[1] == 4.0


def test_sequential_maximum_keeps_the_fixed_designs_power_at_the_target():
    rng = np.random.default_rng(6)
    r_max, level = sd.sequential_max(2.5, 2, 5000, rng)
    assert r_max >= 4  # the fixed design's 4 replicates (80% power at 2.5 SDs) or more, never fewer
    assert sd.run(2.5, level, 2, r_max, 20_000, np.random.default_rng(7))[0] >= 0.78
