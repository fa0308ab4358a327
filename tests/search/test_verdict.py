"""search.results.verdict: statistics against hand-computed numbers, calibration on simulated studies, boundaries.

The calibration simulations draw 4,000 studies per design at once (numpy, seeded) and run them through the
vectorised functions the product's list API is built on (``unit_array``, ``t_interval``,
``pooled_difference``; ``test_list_api_matches_the_vectorised_functions`` ties the two together).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.results.verdict import (
    Interval,
    arm_interval,
    boundary_warnings,
    clip,
    detectable_difference,
    difference,
    holm,
    p_value,
    pair_arms,
    pooled_difference,
    ranking,
    replicates_for,
    t_interval,
    unit_array,
    units,
    verdict_line,
    verdict_word,
)


def test_units_are_replicate_means_with_two_replicates_or_more():
    assert units([[0.80, 0.82, 0.84]], 1) == [0.80, 0.82, 0.84]  # one replicate: the seeds
    assert units([[0.80, 0.82], [0.90, 0.94]], 2) == pytest.approx([0.81, 0.92])
    assert units([], 1) == [] and units([], 2) == []


def test_a_replicate_without_results_never_changes_the_units():
    # the design has 2 replicates; r1 has no result: one replicate mean is left, not replicate 0's seeds
    assert units([[0.80, 0.82], []], 2) == pytest.approx([0.81])
    assert units([[], [0.80, 0.82], [0.90, 0.92]], 3) == pytest.approx([0.81, 0.91])
    lone = arm_interval([[0.80, 0.82, 0.84], []], 2)
    assert (lone.mean, lone.n, lone.known) == (pytest.approx(0.82), 1, False)  # no interval from one unit
    d = difference([[0.80, 0.82, 0.84], []], [[0.70, 0.72], [0.74, 0.76]], 2)
    assert (d.mean, d.n, d.known) == (pytest.approx(0.82 - 0.73), 1, False)
    assert verdict_word(d) == "not enough replicates with results for an interval"


def test_arm_interval_by_hand():
    # replicate means 0.81, 0.83, 0.85: mean 0.83, sd 0.02; t(0.975, 2) = 4.302653
    i = arm_interval([[0.80, 0.82], [0.83, 0.83], [0.84, 0.86]], 3)
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert (i.mean, i.n, i.df) == (pytest.approx(0.83), 3, 2)
    assert (i.low, i.high) == (pytest.approx(0.83 - half, abs=1e-7), pytest.approx(0.83 + half, abs=1e-7))
    one = arm_interval([[0.9]], 1)
    assert one.mean == 0.9 and one.n == 1 and not one.known and math.isnan(one.low)
    assert arm_interval([], 1).n == 0


def test_difference_is_students_pooled_interval_by_hand():
    # a: 0.80 0.82 0.84 (mean 0.82, var 4e-4); b: 0.79 0.80 0.81 (mean 0.80, var 1e-4)
    # pooled var (2 * 4e-4 + 2 * 1e-4) / 4 = 2.5e-4; se = sqrt(2.5e-4 * (1/3 + 1/3)) = 0.0129099;
    # t(0.975, 4) = 2.776445 -> half width 0.0358438
    d = difference([[0.80, 0.82, 0.84]], [[0.79, 0.80, 0.81]], 1)
    assert d.mean == pytest.approx(0.02) and d.se == pytest.approx(0.0129099, abs=1e-7) and d.df == 4
    assert (d.low, d.high) == (pytest.approx(0.02 - 0.0358438, abs=1e-6), pytest.approx(0.02 + 0.0358438, abs=1e-6))
    # with replicates the units are the replicate means: 0.81, 0.83 (var 2e-4) vs 0.80, 0.80 (var 0);
    # pooled var (2e-4 + 0) / 2 = 1e-4, se = sqrt(1e-4 * (1/2 + 1/2)) = 0.01, t(0.975, 2) = 4.302653
    r = difference([[0.80, 0.82], [0.83, 0.83]], [[0.80, 0.80], [0.79, 0.81]], 2)
    assert r.mean == pytest.approx(0.02) and r.n == 2 and r.sd == pytest.approx(0.01)
    assert r.high - r.mean == pytest.approx(0.04302653, abs=1e-7)
    assert verdict_word(r) == "no detectable difference at this budget"


def test_p_value_by_hand():
    # d = 0.02, se = 0.01, df = 2: t = 2, p = 2 * (1 - F_t2(2)) = 1 - 2 / sqrt(6) = 0.1835034 (t with 2 df)
    r = difference([[0.80, 0.82], [0.83, 0.83]], [[0.80, 0.80], [0.79, 0.81]], 2)
    assert p_value(r) == pytest.approx(1 - 2 / math.sqrt(6), abs=1e-9)
    assert math.isnan(p_value(Interval(0.01, math.nan, math.nan, 1)))


def test_holm_by_hand():
    # m = 3: sorted p 0.01 <= 0.05/3, 0.02 <= 0.05/2, 0.04 <= 0.05/1: all three
    assert holm({"a": 0.04, "b": 0.01, "c": 0.02}) == pytest.approx({"b": 0.05 / 3, "c": 0.025, "a": 0.05})
    # 0.02 > 0.05/3: none, although 0.02 and 0.03 are below 0.05 each (step-down stops at the first failure)
    assert holm({"a": 0.02, "b": 0.03, "c": 0.5}) == {}
    assert holm({"a": 0.01, "b": 0.03, "c": 0.5}) == pytest.approx({"a": 0.05 / 3})
    assert holm({"a": 0.01, "b": math.nan}) == pytest.approx({"a": 0.05})  # NaN: no test, not in the family


def test_detectable_difference_and_replicates_by_hand():
    # the published design: SD 0.66 points of a replicate mean, 2 + 2 replicates: 3.73 points
    # (non-central t, df 2, se 0.66: ncp 5.6535 solves P(|T| > 4.3027) = 0.8)
    assert 100 * detectable_difference(0.0066, 2, 2) == pytest.approx(3.7313, abs=1e-3)
    # a normal approximation would say (1.96 + 0.8416) * 0.66 = 1.849: the t quantiles at 2 df double it
    assert 100 * detectable_difference(0.0066, 4, 4) == pytest.approx(1.5713, abs=1e-3)
    need = replicates_for(0.01, 0.0066)
    assert need == 8
    assert detectable_difference(0.0066, need, need) <= 0.01 < detectable_difference(0.0066, need - 1, need - 1)
    assert replicates_for(0.01, 0.0) == 2 and replicates_for(0.01, 1.0, limit=100) is None


def test_clip_to_the_possible_range():
    shown, clipped = clip(Interval(0.2318, -1.2955, 1.7591, 2))
    assert (shown.low, shown.high, clipped) == (0.0, 1.0, True)
    inside = Interval(0.5, 0.4, 0.6, 3)
    assert clip(inside) == (inside, False)
    line = verdict_line("a+lars", "a", Interval(0.5, -1.5, 2.5, 2), replicates=2)
    assert line == "a+lars vs a: +50.00 points [-100.00, +100.00]: no detectable difference at this budget"


def test_verdict_lines_with_replicates():
    helps = Interval(0.012, 0.004, 0.020, 3)
    assert (
        verdict_line("sgd+lars", "sgd", helps, replicates=3)
        == "sgd+lars vs sgd: +1.20 points [+0.40, +2.00]: LARS helps"
    )
    none = Interval(0.0015, -0.006, 0.009, 3)
    assert (
        verdict_line("a+lars", "a", none, replicates=2)
        == "a+lars vs a: +0.15 points [-0.60, +0.90]: no detectable difference at this budget"
    )
    hurts = Interval(-0.02, -0.03, -0.01, 3)
    assert verdict_line("a+lars", "a", hurts, replicates=4, provisional="a+lars at the edge of the searched range") == (
        "a+lars vs a: -2.00 points [-3.00, -1.00]: LARS hurts (provisional: a+lars at the edge of the searched range)"
    )


@pytest.mark.parametrize("diff", [Interval(0.012, 0.004, 0.020, 3), Interval(-0.06, -0.11, -0.01, 3),
                                  Interval(0.001, -0.01, 0.012, 3), Interval(0.03, math.nan, math.nan, 1)])  # fmt: skip
def test_one_replicate_never_prints_a_verdict_word(diff):
    line = verdict_line("sgd+lars", "sgd", diff, replicates=1, seeds=diff.n, provisional="sgd at the edge")
    for word in ("helps", "hurts", "no detectable difference", "provisional"):
        assert word not in line
    assert line.startswith("sgd+lars vs sgd: the two incumbents differ by ")
    assert line.endswith(
        " in training noise"
        + (" (3 seeds each)" if diff.n == 3 else " (1 seed each)")
        + "; the search's luck is not covered: no verdict on the arms (replicates: 2 or more for one)"
    )
    assert ("[" in line) == diff.known  # one seed: no interval


def test_one_replicate_line_by_hand():
    d = difference([[0.80, 0.82, 0.84]], [[0.79, 0.80, 0.81]], 1)
    assert verdict_line("sgd+lars", "sgd", d, replicates=1, seeds=3) == (
        "sgd+lars vs sgd: the two incumbents differ by +2.00 points [-1.58, +5.58] in training noise (3 seeds each); "
        "the search's luck is not covered: no verdict on the arms (replicates: 2 or more for one)"
    )


def test_ranking_comes_from_the_pairwise_test_and_is_monotone():
    # the case: A [89, 91], B [86.5, 87.5], C [80, 92] ranked 1, 2, 1 by overlapping intervals.
    values = {
        "a": [[0.895], [0.900], [0.905]],
        "b": [[0.868], [0.870], [0.872]],
        "c": [[0.80], [0.86], [0.92]],
    }
    assert ranking(values, 3) == [(1, "a", ["c"]), (2, "b", ["c"]), (2, "c", ["a", "b"])]
    # one seed, one replicate: no interval, so no strict ranks
    assert ranking({"a": [[0.9]], "b": [[0.8]]}, 1) == [(1, "a", ["b"]), (1, "b", ["a"])]
    assert ranking({"a": [[0.9, 0.91]], "z": []}, 1) == [(1, "a", [])]  # an arm without results is left out


def test_ranks_are_monotone_and_ties_hold_zero_on_random_studies():
    rng = np.random.default_rng(5)
    for _ in range(60):
        arms = {f"a{i}": [list(rng.normal(0.85 + rng.normal(0, 0.01), rng.uniform(0.001, 0.02), 3)) for _ in
                          range(int(rng.integers(2, 5)))] for i in range(5)}  # fmt: skip
        ranks = ranking(arms, 4)
        assert [r for r, _, _ in ranks] == sorted(r for r, _, _ in ranks)  # never rises down the list
        for r, arm, ties in ranks:
            for other_rank, other, _ in ranks:
                if other != arm and other_rank == r:
                    assert other in ties
                    d = difference(arms[arm], arms[other], 4)
                    assert d.low <= 0 <= d.high


def test_pairs_go_by_optimizer_not_by_name():
    kinds = {
        "plain-sgd": ("sgd", False),
        "fast": ("sgd", True),
        "adam": ("adam", False),
        "lamb": ("adam", True),
        "rmsprop+lars": ("rmsprop", True),
    }
    assert pair_arms(kinds) == [("fast", "plain-sgd"), ("lamb", "adam")]
    two_plain = {"sgd-wide": ("sgd", False), "sgd": ("sgd", False), "sgd+lars": ("sgd", True)}
    assert pair_arms(two_plain) == [("sgd+lars", "sgd")]


LR = FloatDistribution(0.05, 0.5, log=True)
WD = FloatDistribution(0.0, 1.0)


@pytest.mark.parametrize(
    "lr, wd, expected",
    [
        (0.5, 0.5, ["x: best lr 0.5 is at the top of [0.05, 0.5]; widen the range"]),
        (0.05, 0.5, ["x: best lr 0.05 is at the bottom of [0.05, 0.5]; widen the range"]),
        (
            0.05 * 10**0.05,
            0.5,
            ["x: best lr 0.0561 is at the bottom of [0.05, 0.5]; widen the range"],
        ),  # 5% on the log scale
        (0.05 * 10**0.06, 0.06, []),  # 6% inside on the log scale, 6% inside on the linear one
        (0.2, 1.0, ["x: best weight_decay 1 is at the top of [0, 1]; widen the range"]),
        (0.2, 0.0, ["x: best weight_decay 0 is at the bottom of [0, 1]; widen the range"]),
    ],
)
def test_boundary_warning_at_the_literal_edges_and_not_inside(lr, wd, expected):
    params = {"lr": lr, "weight_decay": wd, "schedule": "cosine", "steps": 3}
    dists = {
        "lr": LR,
        "weight_decay": WD,
        "schedule": CategoricalDistribution(["cosine", "step"]),
        "steps": IntDistribution(3, 3),
    }
    assert boundary_warnings("x", params, dists) == expected


# --------------------------------------------------------------------------- calibration

N = 4000  # simulated studies per design; the coverage of a 95% method then has SE 0.0034
THRESHOLD = 0.935  # a 95% method passes (z = 4.4 above it), a 92% one fails (z = 3.5 below)
SEEDS = 3
# (sd of the search's luck, sd of seed noise), in accuracy: the realistic case (luck 0.8 points,
# seeds 0.4) and the reverse (luck 0.2, seeds 0.6)
NOISE = {"luck > seeds": (0.008, 0.004), "seeds > luck": (0.002, 0.006)}
DESIGNS = [(r, name) for r in (2, 3, 4, 6) for name in NOISE]


def _arm(rng, mean, replicates, noise):
    """``values[study, r, k]`` = mean + luck_r + seed noise_rk."""
    luck, seed = noise
    return mean + rng.normal(0, luck, (N, replicates, 1)) + rng.normal(0, seed, (N, replicates, SEEDS))


def arm_coverage(unit_fn, replicates, noise, confidence=0.95, seed=1):
    rng = np.random.default_rng(seed)
    _, low, high = t_interval(unit_fn(_arm(rng, 0.85, replicates, noise)), confidence)
    return float(np.mean((low <= 0.85) & (0.85 <= high)))


def difference_coverage(unit_fn, replicates, noise, shift, confidence=0.95, seed=2):
    """Coverage of the true shift; with a shift, LARS also changes the search's luck (its sd x 1.5)."""
    rng = np.random.default_rng(seed)
    lars_noise = (noise[0] * (1.5 if shift else 1.0), noise[1])
    lars, plain = _arm(rng, 0.85 + shift, replicates, lars_noise), _arm(rng, 0.85, replicates, noise)
    _, low, high, _, _, _ = pooled_difference(unit_fn(lars), unit_fn(plain), confidence)
    return float(np.mean((low <= shift) & (shift <= high)))


def seeds_as_units(values):
    """The mutation: every seed an independent unit (R x K units instead of R replicate means)."""
    return values.reshape(*values.shape[:-2], -1)


@pytest.mark.parametrize("replicates, noise", DESIGNS)
def test_calibration_per_arm_coverage(replicates, noise):
    assert arm_coverage(unit_array, replicates, NOISE[noise]) >= THRESHOLD


@pytest.mark.parametrize("shift", [0.0, 0.015])
@pytest.mark.parametrize("replicates, noise", DESIGNS)
def test_calibration_difference_coverage_at_zero_and_nonzero_effect(replicates, noise, shift):
    # at zero effect, coverage = the share of studies that say "no detectable difference"
    assert difference_coverage(unit_array, replicates, NOISE[noise], shift) >= THRESHOLD


@pytest.mark.parametrize("replicates", [2, 3, 4, 6])
def test_calibration_threshold_fails_a_92_percent_method(replicates):
    for noise in NOISE.values():
        assert arm_coverage(unit_array, replicates, noise, confidence=0.92) < THRESHOLD
        assert difference_coverage(unit_array, replicates, noise, 0.015, confidence=0.92) < THRESHOLD


@pytest.mark.parametrize("replicates", [2, 3, 4, 6])
def test_calibration_fails_seeds_taken_as_units(replicates):
    # where search luck dominates, treating the R x K seeds as independent units undercovers badly
    noise = NOISE["luck > seeds"]
    assert arm_coverage(seeds_as_units, replicates, noise) < 0.80
    assert difference_coverage(seeds_as_units, replicates, noise, 0.0) < 0.80
    assert difference_coverage(seeds_as_units, replicates, noise, 0.015) < 0.80


def test_one_replicate_covers_the_incumbents_not_the_arms():
    # R = 1: the interval over seeds covers the two incumbents' difference (training noise) ...
    rng = np.random.default_rng(4)
    luck, seed = NOISE["luck > seeds"]
    incumbents = 0.85 + rng.normal(0, luck, (N, 2))
    values = incumbents[:, :, None, None] + rng.normal(0, seed, (N, 2, 1, SEEDS))
    _, low, high, _, _, _ = pooled_difference(unit_array(values[:, 0]), unit_array(values[:, 1]))
    truth = incumbents[:, 0] - incumbents[:, 1]
    assert np.mean((low <= truth) & (truth <= high)) >= THRESHOLD
    # ... and says "helps" or "hurts" about two equal arms in about half the studies: hence no verdict word
    wrong = np.mean((low > 0) | (high < 0))
    assert 0.35 < wrong < 0.65


@pytest.mark.parametrize("replicates", [2, 4])
def test_power_by_simulation_matches_detectable_difference(replicates):
    # a true effect of exactly the detectable difference (from the true SD of a replicate mean) says
    # "LARS helps" in 80% of studies (SE 0.006 at N = 4000)
    luck, seed = NOISE["luck > seeds"]
    sd = math.sqrt(luck**2 + seed**2 / SEEDS)
    delta = detectable_difference(sd, replicates, replicates)
    rng = np.random.default_rng(6)
    lars, plain = _arm(rng, 0.85 + delta, replicates, (luck, seed)), _arm(rng, 0.85, replicates, (luck, seed))
    _, low, _, _, _, _ = pooled_difference(unit_array(lars), unit_array(plain))
    assert np.mean(low > 0) == pytest.approx(0.80, abs=0.025)


def test_list_api_matches_the_vectorised_functions():
    rng = np.random.default_rng(3)
    for replicates in (1, 2, 5):
        a, b = rng.normal(0.85, 0.01, (replicates, 3)), rng.normal(0.84, 0.01, (replicates, 3))
        mean, low, high = t_interval(unit_array(a))
        i = arm_interval(a.tolist(), replicates)
        assert (i.mean, i.low, i.high) == pytest.approx((mean, low, high), abs=1e-15)
        d, low, high, *_ = pooled_difference(unit_array(a), unit_array(b))
        j = difference(a.tolist(), b.tolist(), replicates)
        assert (j.mean, j.low, j.high) == pytest.approx((d, low, high), abs=1e-15)


def test_difference_equals_scipys_pooled_two_sample_interval():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = list(rng.normal(0.85, 0.01, 4)), list(rng.normal(0.84, 0.01, 5))
    ci = stats.ttest_ind(a, b, equal_var=True).confidence_interval(0.95)
    d = difference([a], [b], 1)
    assert (d.low, d.high) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    assert p_value(d) == pytest.approx(stats.ttest_ind(a, b, equal_var=True).pvalue, abs=1e-12)
