"""benchmarks/search_efficiency.py: the cost of a run, its incumbents and their test accuracy."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

from search.plot import ArmCurve

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "search_efficiency.py"
_spec = importlib.util.spec_from_file_location("search_efficiency", _PATH)
se = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = se  # its dataclasses look their module up there
_spec.loader.exec_module(se)

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
    assert se.incumbents(run_curve()) == [0, 2, 5]  # not the pruned 0.75, not the 0.78 below 0.80


def test_incumbent_curve_carries_the_test_accuracy_of_the_current_incumbent():
    tested = se.incumbent_curve(run_curve(), {0: 0.69, 2: 0.81, 5: 0.79, 3: 0.99})
    assert tested.best == [0.69, 0.69, 0.81, 0.81, 0.81, 0.79]  # trial 3 never led: its 0.99 is not seen
    assert tested.compute == run_curve().compute
    assert se.compute_to_target(tested, 0.80) == (23, True)  # reached with trial 2, though it later drops


def test_incumbent_curve_before_any_complete_trial_is_nan():
    curve = ArmCurve("a", [0, 1], ["PRUNED", "COMPLETE"], [2, 10], [2, 12], [0.3, 0.6], [NAN, 0.6])
    tested = se.incumbent_curve(curve, {1: 0.58})
    assert math.isnan(tested.best[0]) and tested.best[1] == 0.58
    assert se.compute_to_target(tested, 0.59) == (12, False)  # never reached: censored at the total


def test_compute_budget_keeps_the_trials_finished_within_it():
    cut = se._truncated(run_curve(), 33)
    assert cut.numbers == [0, 1, 2, 3] and cut.compute[-1] == 33
    assert se.best_at(run_curve(), 33) == 0.80
    assert math.isnan(se.best_at(run_curve(), 9))


def test_config_key_ignores_what_the_benchmark_sets():
    a = {"lr": 0.1, "seed": 0, "evaluate_test": False, "device": "cpu"}
    assert se._config_key(a) == se._config_key(dict(a, evaluate_test=True, device="cuda"))
    assert se._config_key(a) != se._config_key(dict(a, lr=0.2))
