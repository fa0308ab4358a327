"""benchmarks/verdict_design.py: the spread of replicate means and the design comparison, against hand numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import verdict_design as vd  # noqa: E402

# the README's published batch-1024 replicate means (2 replicates x 12 trials x 3 seeds per arm)
PUBLISHED = vd.Design("published", 12, 3, {"sgd": [79.89, 81.05], "sgd+lars": [81.53, 82.15]})


def test_pooled_sd_pools_each_arms_spread_around_its_own_mean():
    # sgd: 2 x 0.58^2 = 0.6728; sgd+lars: 2 x 0.31^2 = 0.1922; (0.6728 + 0.1922) / 2 = 0.4325
    sd, df = vd.pooled_sd(PUBLISHED.means)
    assert df == 2 and sd == pytest.approx(math.sqrt(0.4325), abs=1e-12)
    assert vd.pooled_sd({"a": [1.0], "b": [2.0, 4.0, 6.0]}) == (pytest.approx(2.0), 2)  # one replicate: no df
    assert vd.pooled_sd({"a": [1.0]})[1] == 0


def test_sd_interval_is_the_chi_square_interval():
    # chi2(2) quantiles 0.025 / 0.975: 0.0506356 / 7.3777589
    low, high = vd.sd_interval(math.sqrt(0.4325), 2)
    assert low == pytest.approx(math.sqrt(0.865 / 7.3777589), rel=1e-6)
    assert high == pytest.approx(math.sqrt(0.865 / 0.0506356), rel=1e-5)


def test_ratio_interval_of_equal_df_is_symmetric_on_the_log_scale():
    low, high = vd.ratio_interval(1.0, 6, 6)
    assert low * high == pytest.approx(1.0) and low < 1 < high
    assert vd.ratio_interval(2.0, 6, 6) == pytest.approx((2 * low, 2 * high))


def test_report_compares_designs_at_their_own_and_a_common_budget():
    four_by_six = vd.Design("4x6x1", 6, 1, {"sgd": [80.0, 81.0, 79.0, 80.5], "sgd+lars": [81.0, 82.0, 80.0, 83.0]})
    assert vd.replicates_at(30, PUBLISHED) == 2 and vd.replicates_at(30, four_by_six) == 4
    assert vd.replicates_at(10, PUBLISHED) == 2  # never below 2
    lines = vd.report([PUBLISHED, four_by_six], budget=30)
    # the README's figure for the published design: SD 0.66, 3.72 points with 80% power
    assert lines[1].split()[1:] == ["12", "x", "3", "2", "0.66", "[0.34,", "4.13]", "2", "6.49", "3.72", "3.72"]
    # 4x6x1: s^2 = (2.1875 + 5.0) / 6 = 1.19792 -> SD 1.09; cost 1.19792 x 7 = 8.39; 8.385 / 6.4875 = 1.29
    assert lines[2].split()[1:5] == ["6", "x", "1", "4"] and lines[2].split()[5] == "1.09"
    assert lines[2].split()[9] == "8.39"
    assert lines[3].startswith("  variance per training against published: x1.29 [")
