"""status / compare numbers on hand-built studies."""

from __future__ import annotations

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.report import (
    StudyNotFoundError,
    arm_stats,
    beats,
    format_compare,
    format_status,
    load_arms,
)

LR = {"lr": FloatDistribution(1e-4, 1.0, log=True)}


def add(study, state, value=None, ran=4, epochs=4, seconds=10.0, lr=0.1, **attrs):
    history = [{"epoch": e, "val_accuracy": 0.5} for e in range(1, ran + 1)]
    user_attrs = {"config": {"epochs": epochs, "lr": lr}, "history": history, "wall_time_s": seconds, **attrs}
    study.add_trial(create_trial(state=state, value=value, params={"lr": lr}, distributions=LR,
                                 intermediate_values={e: 0.5 for e in range(1, ran + 1)}, user_attrs=user_attrs))


@pytest.fixture
def storage():
    storage = optuna.storages.InMemoryStorage()
    text = yaml.safe_dump({"name": "r", "objective": {"epochs": 4}, "arms": ["sgd+lars", "sgd"]})
    sgd = optuna.create_study(storage=storage, study_name="r/sgd", direction="maximize")
    lars = optuna.create_study(storage=storage, study_name="r/sgd+lars", direction="maximize")
    for study, arm in ((sgd, "sgd"), (lars, "sgd+lars")):
        study.set_user_attr("study_file", text)
        study.set_user_attr("arm", arm)
    for value in (0.80, 0.85, 0.70, 0.90, 0.60, 0.75):
        add(sgd, TrialState.COMPLETE, value)
    add(sgd, TrialState.PRUNED, ran=1, seconds=3.0, fail_reason="pruned at epoch 1: ...")
    add(sgd, TrialState.FAIL, ran=2, seconds=5.0, fail_reason="ValueError: boom")
    add(sgd, TrialState.PRUNED, ran=1, seconds=1.0, fail_reason="diverged: non-finite training loss at epoch 2",
        diverged_epoch=2)
    add(lars, TrialState.COMPLETE, 0.91, lr=0.5)
    add(lars, TrialState.COMPLETE, 0.86)
    return storage


def test_arm_stats_count_compute_spent_and_saved(storage):
    s = arm_stats("sgd", optuna.load_study(study_name="r/sgd", storage=storage))
    assert (s.complete, s.pruned, s.failed, s.running, s.trials) == (6, 2, 1, 0, 9)
    assert s.best_value == 0.90 and s.best_trial.number == 3
    assert s.top5_median == 0.80  # median of 0.90, 0.85, 0.80, 0.75, 0.70
    assert s.trial_epochs == 6 * 4 + 1 + 2 + 1
    assert s.seconds == pytest.approx(6 * 10 + 3 + 5 + 1)
    assert s.saved_epochs == 3  # only the pruner's trial; the diverged one saved nothing by pruning
    assert s.saved_seconds == pytest.approx(9.0)  # 3 epochs at its own 3 s per epoch
    assert s.saved_share == pytest.approx(3 / 31)
    assert s.reasons == {"ValueError": 1, "diverged": 1}


def test_which_arm_beats_which(storage):
    (a1, s1), (a2, s2) = load_arms(storage, "r")
    assert (a1, a2) == ("sgd+lars", "sgd")  # the study file's order
    lars, sgd = arm_stats(a1, s1), arm_stats(a2, s2)
    assert lars.top5_median == pytest.approx(0.885)
    assert beats(lars, sgd) == "beats" and beats(sgd, lars) is None
    sgd.top5_median = 0.95
    assert beats(lars, sgd) == "mixed" and beats(sgd, lars) == "mixed"


def test_compare_table_lines(storage):
    text = format_compare(storage, "r")
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("sgd  "))
    assert row.split()[:7] == ["sgd", "6/2/1", "90.00", "80.00", "28", "69", "3"]
    assert "(10%, ~9 s)" in row and "#3 lr=0.1" in row
    assert "  sgd+lars vs sgd: +1.00 points best, +8.50 points top-5 median" in lines
    assert "  sgd+lars beats: sgd" in lines and "  sgd beats: none" in lines
    assert lines[-2:] == ["failed/diverged trials by reason:", "  sgd: ValueError x1, diverged x1"]
    assert "winner: sgd+lars (91.00% best validation accuracy)" in lines


def test_status_lists_every_arm_and_ignores_other_studies(storage):
    optuna.create_study(storage=storage, study_name="not-ours")
    lines = format_status(storage).splitlines()
    assert lines[0] == "r"
    assert lines[3].split() == ["sgd+lars", "2", "0", "0", "0", "91.00"]
    assert lines[4].split() == ["sgd", "6", "2", "1", "0", "90.00"]


def test_unknown_study_lists_the_known_ones(storage):
    with pytest.raises(StudyNotFoundError, match=r"no study named 'q' in the storage \(studies there: r\)"):
        format_compare(storage, "q")
