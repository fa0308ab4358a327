"""export -> train round trip, and the lars code snippet in the export's comments."""

from __future__ import annotations

import copy

import optuna
import pytest
import torch
import yaml
from search_fakes import FakeTrain, write_study

import lars
from objectives import validate_config
from objectives.optim import build_optimizer
from search.cli.command import main
from search.results.export import code_snippet
from search.run.loop import run_studies
from search.spec.study_file import load_spec
from search.storage.database import open_storage

STUDY = """\
name: e
objective: {dataset: fashion_mnist, epochs: 3, width: 0.125, seed: 7}
arms: [sgd, sgd+lars]
budget: {trials: 3}
pruner: none
"""


@pytest.fixture
def finished(tmp_path):
    db = f"sqlite:///{tmp_path / 'e.db'}"
    run_studies(load_spec(write_study(tmp_path, STUDY)), db, train_fn=FakeTrain(), progress=False)
    return db


def test_export_then_train_reproduces_the_exported_config_exactly(tmp_path, finished, capsys):
    out = tmp_path / "best.yaml"
    assert main(["export", "e", "--arm", "sgd+lars", "--storage", finished, "-o", str(out), "-q"]) == 0
    text = out.read_text()
    exported = yaml.safe_load(text)
    study = optuna.load_study(study_name="e/sgd+lars", storage=open_storage(finished, heartbeat=False))
    assert exported == study.best_trial.user_attrs["config"]  # bit-exact floats through YAML
    assert text.startswith(
        f"# lars-search export: best trial of e/sgd+lars (trial {study.best_trial.number}), "
        f"validation accuracy {100 * study.best_value:.2f}%\n"
    )
    fake = FakeTrain()
    assert main(["train", str(out), "--seeds", "2", "-q"], train_fn=fake) == 0
    assert fake.calls[0] == {**exported, "seed": 7, "evaluate_test": True, "progress": False}
    assert fake.calls[1] == {**exported, "seed": 8, "evaluate_test": True, "progress": False}
    final = fake(fake.calls[0]).val_accuracy  # the fake's test accuracy is val - 0.01 * seed
    assert final == pytest.approx(study.best_value)
    lines = capsys.readouterr().out.splitlines()
    mean = 100 * (final - 0.075)
    assert lines[-1] == (
        f"test accuracy: {mean:.2f} +- 0.71% over 2 seeds "
        f"(validation {100 * final:.2f} +- 0.00%; std is the sample std)"
    )


def test_export_follows_the_verdicts_best_arm_by_default(finished, capsys):
    from search.results.read import load_verdict

    assert main(["export", "e", "--storage", finished]) == 0
    text = capsys.readouterr().out
    storage = open_storage(finished, heartbeat=False)
    verdict = load_verdict(storage, "e")
    best = optuna.load_study(study_name=f"e/{verdict.best_arm}", storage=storage)
    assert yaml.safe_load(text) == best.best_trial.user_attrs["config"]
    assert text.startswith(f"# lars-search export: best trial of {best.study_name} ")
    assert f"# study: e   arm: {verdict.best_arm} (the verdict's best arm)   replicate: 0   trial: " in text
    assert main(["export", "e", "--arm", "adam", "--storage", finished]) == 2
    assert capsys.readouterr().err == "lars-search: error: study 'e' has no arm 'adam'; arms: sgd, sgd+lars\n"


def test_export_header_makes_the_file_traceable(finished, tmp_path):
    from search.results.export import export_document
    from search.results.read import load_verdict

    storage = open_storage(finished, heartbeat=False)
    verdict = load_verdict(storage, "e")
    out = str(tmp_path / "best.yaml")
    text, _ = export_document(storage, "e", "sgd+lars", storage_label="sqlite:///e.db", output=out)
    header = [line[2:] for line in text.splitlines() if line.startswith("# ")]
    study = optuna.load_study(study_name="e/sgd+lars", storage=storage)
    test = verdict.arm("sgd+lars").test
    chosen = "the verdict's best arm" if verdict.best_arm == "sgd+lars" else "chosen with --arm"
    assert header[1] == f"study: e   arm: sgd+lars ({chosen})   replicate: 0   trial: {study.best_trial.number}"
    assert header[2] == (
        f"test accuracy (final evaluation): {100 * test.mean:.2f}% [{100 * test.low:.2f}, "
        f"{100 * test.high:.2f}] (95% interval, training noise only; 1 replicate x 3 seeds)"
    )
    assert header[3] == f"measured: {verdict.lines[0]}" and header[3].startswith("measured: sgd+lars vs sgd: ")
    # one replicate: the same measured line as compare and the note, no verdict word
    assert header[3].endswith(
        "the search's luck is not covered: no verdict on the arms (replicates: 2 or more for one)"
    )
    assert not any(word in header[3] for word in ("helps", "hurts", "no detectable difference"))
    assert header[4] == "data: fashion_mnist, n_train None, val_size 5000, batch_size 128, epochs 3"
    assert header[5].startswith("lars-search ") and ", git commit " in header[5]
    assert header[6] == "from storage sqlite:///e.db"
    assert header[7] == (
        f"Re-run (the test set on, seeds 8..10 of this trial's final evaluation):  lars-search train {out} --seeds 3 "
        "--first-seed 8"
    )


def test_export_of_a_study_whose_trials_all_diverged_says_so(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    spec = load_spec(write_study(tmp_path, STUDY.replace("[sgd, sgd+lars]", "[sgd]")))
    run_studies(spec, db, train_fn=FakeTrain(lambda config, epoch: float("nan")), progress=False)
    assert main(["export", "e", "--arm", "sgd", "--storage", db]) == 2
    assert capsys.readouterr().err == (
        "lars-search: error: arm 'sgd' of 'e' has no complete trial: all 3 trials "
        "failed or diverged (see lars-search compare for the reasons)\n"
    )


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 3)
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "optimizer": "sgd",
            "lars": True,
            "schedule": "multistep",
            "schedule_params": {"milestones": [1, 2], "gamma": 0.5},
            "warmup_epochs": 0.5,
            "trust_coefficient": 0.02,
            "lars_eps": 1e-6,
        },
        {
            "optimizer": "adam",
            "lars": True,
            "lars_mode": "update",
            "lars_clip": True,
            "lr": 1e-3,
            "schedule": "exponential",
            "schedule_params": {"gamma": 0.5},
        },
        {"optimizer": "rmsprop", "lars": False, "schedule": "step", "schedule_params": {"step_size": 1, "gamma": 0.3}},
        {
            "optimizer": "sgd",
            "lars": False,
            "nesterov": True,
            "schedule": "polynomial",
            "schedule_params": {"power": 2.0, "final_lr_ratio": 0.01},
            "warmup_epochs": 1.0,
        },
    ],
)
def test_snippet_builds_the_same_optimizer_and_schedule_as_objectives(overrides):
    config = validate_config({"epochs": 3, **overrides})
    steps_per_epoch = 4
    namespace = {"model": small_model(), "steps_per_epoch": steps_per_epoch}
    exec(code_snippet(config), namespace)  # noqa: S102 (the snippet is ours, the test runs it)
    ours, our_sched = namespace["optimizer"], namespace["scheduler"]
    ref, ref_sched = build_optimizer(small_model(), config, steps_per_epoch)
    assert type(ours) is type(ref) and isinstance(ours, lars.LARS) is config["lars"]
    strip = lambda groups: [{k: v for k, v in g.items() if k != "params"} for g in groups]  # noqa: E731
    assert strip(ours.param_groups) == strip(ref.param_groups)
    lrs, ref_lrs = [], []
    for _ in range(3 * steps_per_epoch):
        lrs.append(copy.deepcopy(our_sched.get_last_lr()))
        ref_lrs.append(copy.deepcopy(ref_sched.get_last_lr()))
        ours.step(), ref.step(), our_sched.step(), ref_sched.step()
    assert lrs == ref_lrs


def test_the_printed_train_command_reproduces_the_headers_test_accuracy(finished, tmp_path, capsys):
    """#26 item 11: `--seeds 3` whatever the study's seeds, from the search's seed, not the evaluation's."""
    out = tmp_path / "best.yaml"
    assert main(["export", "e", "--arm", "sgd", "--storage", finished, "-o", str(out)]) == 0
    command = f"lars-search train {out} --seeds 3 --first-seed 8"  # objective.seed 7: evaluation seeds 8, 9, 10
    assert capsys.readouterr().out == f"wrote {out}; reproduce with: {command}\n"
    header = [line[2:] for line in out.read_text().splitlines() if line.startswith("# ")]
    assert header[7] == f"Re-run (the test set on, seeds 8..10 of this trial's final evaluation):  {command}"
    shown = header[2].removeprefix("test accuracy (final evaluation): ").split("%")[0]
    assert main(command.split()[1:], train_fn=FakeTrain()) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"test accuracy: {shown} +- ")
