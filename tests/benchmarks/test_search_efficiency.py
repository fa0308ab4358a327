"""benchmarks/search_efficiency.py: every variant is a valid study file; test accuracies survive a killed
run; a stopped or failing benchmark says so in one line."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from search.run.studies import open_studies

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("search_efficiency", BENCHMARKS / "search_efficiency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_variant_is_a_valid_study_file_over_the_wide_default_space():
    se = _load_benchmark()
    for variant in se.VARIANTS:
        for size in se.SIZES.values():
            spec = se._spec(variant, 3, size, "cpu")
            assert [a.name for a in spec.arms] == ["sgd+lars", "adam+lars"] and spec.sampler.seed == 3
    assert se.study_data("random", 0, se.SIZES["smoke"], "cpu")["sampler"] == {"type": "random", "seed": 0}
    assert se.study_data("defaults", 0, se.SIZES["smoke"], "cpu")["space"] == {"lr": "auto"}
    assert "space" not in se.study_data("random", 0, se.SIZES["smoke"], "cpu")  # the wide default space
    assert se.study_data("random", 0, se.SIZES["smoke"], "cpu")["recipe"] is False  # random search from trial 0


def test_a_run_of_one_arm_writes_the_same_study_as_that_arm_of_a_run_of_both(tmp_path):
    se = _load_benchmark()
    size = se.SIZES["smoke"]
    one = se._spec("defaults", 4, size, "cpu", ["adam+lars"])
    both = se._spec("defaults", 4, size, "cpu")
    assert [a.name for a in one.arms] == ["adam+lars"] and one.name == both.name
    assert one.study_name(one.arm("adam+lars")) == both.study_name(both.arm("adam+lars"))
    assert one.identity(one.arm("adam+lars")) == both.identity(both.arm("adam+lars"))
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'e.db'}")
    open_studies(one, storage)
    assert set(open_studies(both, storage)) == {"sgd+lars", "adam+lars"}  # no conflict with the one-arm file


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_stopped_benchmark_says_so_in_one_line_even_with_sigint_ignored(monkeypatch, capsys, sig, code, word):
    se = _load_benchmark()

    def stopped(argv):  # the signal arrives while main runs, e.g. in a background job that ignores SIGINT
        os.kill(os.getpid(), sig)
        raise AssertionError("the signal did not interrupt")

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        monkeypatch.setattr(se, "main", stopped)
        assert se.interruptible_main([]) == code
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # what the process had is restored
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert err.startswith(f"# {word}: finished trials are stored") and err.count("\n") == 1


def _config(lr):
    return {"optimizer": "sgd", "lars": True, "lr": lr, "trust_coefficient": 0.01, "device": "cpu"}


def _stored_random_run(se, tmp_path, values):
    """A stored (b) run of smoke size whose SGD+LARS trials have ``values`` and no test accuracy."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'e.db'}")
    study = open_studies(se._spec("random", 0, se.SIZES["smoke"], "cpu"), storage)["sgd+lars"]
    for k, value in enumerate(values):
        study.add_trial(
            optuna.trial.create_trial(
                value=value, intermediate_values={1: value / 2, 2: value},
                user_attrs={"config": _config(0.1 * (k + 1)), "epochs_completed": 2},
            )
        )  # fmt: skip
    return storage, study


def test_a_trials_test_accuracy_is_found_by_its_config(tmp_path):
    se = _load_benchmark()
    storage, study = _stored_random_run(se, tmp_path, [0.5, 0.7])
    study.set_user_attr(se.tested_attr(dict(_config(0.2), evaluate_test=True, device="cuda")), 0.69)
    assert se.test_accuracies(study) == {1: 0.69}  # the keys the benchmark sets are not part of the config
    study.set_user_attr(se.TEST_ATTR, {"0": 0.48})  # how runs stored before 2026-12-02 kept them
    assert se.test_accuracies(study) == {0: 0.48, 1: 0.69}


def test_backfill_tests_the_incumbents_that_lost_their_test_accuracy(tmp_path, monkeypatch):
    se = _load_benchmark()
    storage, study = _stored_random_run(se, tmp_path, [0.5, 0.4, 0.7, 0.6])  # incumbents: trials 0 and 2
    trained = []

    def train(config, report=None):
        trained.append(config["lr"])
        val = {0.1: 0.5, 0.30000000000000004: 0.7}[config["lr"]]
        return SimpleNamespace(val_accuracy=val - (0.01 if config["lr"] == 0.1 else 0.0), test_accuracy=val - 0.02)

    monkeypatch.setattr(importlib.import_module("objectives.train"), "train_reusing_data", lambda: train)
    args, size = SimpleNamespace(device="cpu", arm=None), se.SIZES["smoke"]
    runs = [r for r in se.read_runs("random", 0, size, "cpu", storage) if r.arm == "sgd+lars"]
    assert se.backfill_tests(runs, "random", 0, size, args, storage) == 1
    assert trained == [0.1, 0.30000000000000004]
    # trial 0 retrained to another validation accuracy (0.49, not 0.5): not kept; trial 2 is
    assert se.test_accuracies(study) == {2: pytest.approx(0.68)}
    assert runs[0].test == {2: pytest.approx(0.68)}  # the runs in hand are updated too
    assert se.backfill_tests(runs, "random", 0, size, args, storage) == 0  # trial 0 is tried again
    assert trained == [0.1, 0.30000000000000004, 0.1]


def test_a_study_file_error_is_one_line(monkeypatch, capsys):
    from search.errors import RangeTestError

    se = _load_benchmark()

    def failing(argv):
        raise RangeTestError("<benchmark defaults>", "x/sgd+lars: lr: auto", "range test: the loss never fell")

    monkeypatch.setattr(se, "main", failing)
    assert se.interruptible_main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("search_efficiency: error: <benchmark defaults>: x/sgd+lars: lr: auto: range test")
    assert err.count("\n") == 1
