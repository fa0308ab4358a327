"""benchmarks/efficiency_analysis.py: a run's cost, its incumbents and their test accuracy, exactly."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from search.results.plot import ArmCurve

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import efficiency_analysis as ea  # noqa: E402

NAN = math.nan


def run_curve() -> ArmCurve:
    # trials 0..5: complete 0.70, pruned (0.75 reported), complete 0.80, complete 0.78, failed, complete 0.82
    return ArmCurve(
        arm="sgd+lars",
        numbers=[0, 1, 2, 3, 4, 5],
        states=["COMPLETE", "PRUNED", "COMPLETE", "COMPLETE", "FAIL", "COMPLETE"],
        epochs=[10, 3, 10, 10, 1, 10],
        compute=[10, 13, 23, 33, 34, 44],
        values=[0.70, 0.75, 0.80, 0.78, None, 0.82],
        best=[0.70, 0.70, 0.80, 0.80, 0.80, 0.82],
    )


def test_incumbents_are_the_complete_trials_that_raised_the_best():
    assert ea.incumbents(run_curve()) == [0, 2, 5]  # not the pruned 0.75, not the 0.78 below 0.80


def test_incumbent_curve_carries_the_test_accuracy_of_the_current_incumbent():
    tested = ea.incumbent_curve(run_curve(), {0: 0.69, 2: 0.81, 5: 0.79, 3: 0.99})
    assert tested.best == [0.69, 0.69, 0.81, 0.81, 0.81, 0.79]  # trial 3 never led: its 0.99 is not seen
    assert tested.compute == run_curve().compute
    assert ea.compute_to_target(tested, 0.80) == (23, True)  # reached with trial 2, though it later drops


def test_incumbent_curve_before_any_complete_trial_is_nan():
    curve = ArmCurve("a", [0, 1], ["PRUNED", "COMPLETE"], [2, 10], [2, 12], [0.3, 0.6], [NAN, 0.6])
    tested = ea.incumbent_curve(curve, {1: 0.58})
    assert math.isnan(tested.best[0]) and tested.best[1] == 0.58
    assert ea.compute_to_target(tested, 0.59) == (12, False)  # never reached: censored at the total


def test_compute_budget_keeps_the_trials_finished_within_it():
    cut = ea.truncated(run_curve(), 33)
    assert cut.numbers == [0, 1, 2, 3] and cut.compute[-1] == 33
    assert ea.best_at(run_curve(), 33) == 0.80
    assert math.isnan(ea.best_at(run_curve(), 9))


def test_costed_counts_the_range_test_first_and_every_epoch_of_a_diverged_trial():
    curve = run_curve()
    # trial 1 diverged at epoch 4 (history: 3 epochs), trial 4 at epoch 1 (history: 1 here, kept)
    costed = ea.costed(curve, offset=5.5, diverged={1: 4, 4: 1})
    assert costed.epochs == [10, 4, 10, 10, 1, 10]
    assert costed.compute == [15.5, 19.5, 29.5, 39.5, 40.5, 50.5]
    run = ea.Run("defaults", 0, "sgd+lars", costed, budget=6, range_cost=5.5, diverged={1: 4, 4: 1})
    assert ea.diverged_cost(run) == (2, 5.0) and run.total_compute == 50.5


def _run(variant, seed, best, compute, test=None):
    n = len(best)
    curve = ArmCurve("sgd+lars", list(range(n)), ["COMPLETE"] * n, [10] * n, compute, best, best)
    return ea.Run(variant, seed, "sgd+lars", curve, budget=n, test=test or {})


def test_summarise_ratios_and_bounds_per_seed():
    runs = [
        _run("a", 0, [0.80, 0.85], [12, 20]),  # G = 0.85, target 0.84: reached at 20
        _run("b", 0, [0.70, 0.84, 0.84], [10, 60, 80]),  # reached at 60
        _run("a", 1, [0.70, 0.75], [10, 20]),  # never: censored at 20
        _run("b", 1, [0.845], [30]),  # reached at 30
    ]
    s = ea.summarise(runs, "a", "b")
    assert s["best_all"] == 0.85 and s["target"] == pytest.approx(0.84)
    assert s["cost"][("a", 0)] == (20, True) and s["cost"][("a", 1)] == (20, False)
    assert s["ratios"] == [3.0, 1.5] and s["bounds"] == ["", "<="]
    assert s["mean_cost"] == {"a": 20.0, "b": 45.0}
    assert ea.ratio_line(s) == (
        "per seed 3.00, <=1.50; mean 2.25 +- 1.06 (std), min 1.50, max 3.00; "
        "ratio of means 45.0 / 20.0 = 2.25; 1 of 2 seeds censored"
    )


def test_equal_compute_compares_the_incumbents_where_both_runs_got():
    runs = [
        _run("a", 0, [0.80, 0.85], [12, 20], test={0: 0.79, 1: 0.83}),
        _run("b", 0, [0.70, 0.84, 0.86], [10, 18, 80], test={0: 0.69, 1: 0.82, 2: 0.85}),
    ]
    (row,) = ea.equal_compute(runs, "a", "b")
    assert row["compute"] == 20 and row["val"] == {"a": 0.85, "b": 0.84}
    assert row["test"] == {"a": 0.83, "b": 0.82}


def test_settled_cost_is_from_when_the_curve_stays_at_the_target_to_the_end():
    curve = ArmCurve("a", [0, 1, 2, 3], ["COMPLETE"] * 4, [10] * 4, [10, 20, 30, 40], [0] * 4, [0.81, 0.79, 0.80, 0.82])
    assert ea.compute_to_target(curve, 0.80) == (10, True)  # first touch
    assert ea.settled_compute_to_target(curve, 0.80) == (30, True)  # it fell below at 20: from 30 on
    assert ea.settled_compute_to_target(curve, 0.815) == (40, True)
    dropped = replace(curve, best=[0.81, 0.82, 0.83, 0.79])
    assert ea.settled_compute_to_target(dropped, 0.80) == (40, False)  # ends below: censored at the total
    unknown = replace(curve, best=[NAN, 0.85, 0.85, 0.85])
    assert ea.settled_compute_to_target(unknown, 0.80) == (20, True)


def test_tested_runs_compare_what_each_run_hands_back_on_test():
    runs = [
        _run("a", 0, [0.80, 0.85], [12, 20], test={0: 0.79, 1: 0.83}),
        _run("b", 0, [0.70, 0.84, 0.86], [10, 60, 80], test={0: 0.69, 1: 0.82, 2: 0.81}),
    ]
    tested = [ea.tested(r) for r in runs]
    assert tested[1].curve.best == [0.69, 0.82, 0.81] and tested[1].best == 0.81  # the last incumbent's test
    s = ea.summarise(tested, "a", "b", to_target=ea.settled_compute_to_target)
    assert s["best_all"] == 0.83 and s["target"] == pytest.approx(0.82)
    assert s["cost"][("a", 0)] == (20, True) and s["cost"][("b", 0)] == (80, False)
    assert s["ratios"] == [4.0] and s["bounds"] == [">="]
    assert ea.standard_error(0.85, 1000) == pytest.approx(0.011291589790636213)
