"""Studies of a study file: N trials per arm in SQLite, round robin, resume, pruning, faults."""

from __future__ import annotations

import math

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from search_fakes import FakeTrain, lr_curve, write_study

from search.errors import SpecConflictError
from search.run._samplers import (
    build_pruner,
    build_sampler,
    default_pruner_interval,
    default_pruner_startup,
    default_sampler_startup,
)
from search.run.loop import run_studies
from search.run.studies import open_studies
from search.spec.study_file import load_spec
from search.storage.database import open_storage

TWO_ARMS = """\
name: s
objective: {dataset: fashion_mnist, epochs: 3, width: 0.125}
arms: [sgd, sgd+lars]
space: {lr: {low: 1.0e-3, high: 1.0, log: true}, warmup_epochs: 0.0}
budget: {trials: 3}
sampler: {type: tpe, seed: 1}
pruner: none
"""


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'search.db'}"


def load(db, name):
    return optuna.load_study(study_name=name, storage=open_storage(db, heartbeat=False))


def test_runs_n_trials_per_arm_into_sqlite_with_full_records(tmp_path, db):
    spec = load_spec(write_study(tmp_path, TWO_ARMS))
    fake = FakeTrain()
    summary = run_studies(spec, db, train_fn=fake, progress=False, evaluate=False)
    assert {a: (p.complete, p.ran_here) for a, p in summary.items()} == {"sgd": (3, 3), "sgd+lars": (3, 3)}
    # round robin: the arms alternate
    assert [(c["optimizer"], c["lars"]) for c in fake.calls] == [("sgd", False), ("sgd", True)] * 3
    study = load(db, "s/sgd+lars")
    assert study.user_attrs == {"study_file": TWO_ARMS, "arm": "sgd+lars", "spec_version": 1}
    for trial in study.trials:
        config = trial.user_attrs["config"]
        assert config == fake.calls[2 * trial.number + 1]  # the full config objectives received
        assert config["lars"] is True and config["epochs"] == 3 and config["progress"] is False
        assert trial.value == pytest.approx(lr_curve(config, 3))
        assert trial.intermediate_values == {e: pytest.approx(lr_curve(config, e)) for e in (1, 2, 3)}
        assert trial.user_attrs["images_per_s"] == 1000.0 and trial.user_attrs["wall_time_s"] > 0
        assert [h["epoch"] for h in trial.user_attrs["history"]] == [1, 2, 3]
    assert summary["sgd+lars"].best_value == max(t.value for t in study.trials)


def test_second_run_resumes_without_duplicates_and_keeps_earlier_trials(tmp_path, db):
    spec = load_spec(write_study(tmp_path, TWO_ARMS))
    run_studies(spec, db, n_trials=2, train_fn=FakeTrain(), progress=False, evaluate=False)
    first = {t.number: (t.params, t.datetime_complete) for t in load(db, "s/sgd").trials}
    again = FakeTrain()
    summary = run_studies(spec, db, n_trials=2, train_fn=again, progress=False, evaluate=False)
    assert again.calls == [] and summary["sgd"].complete == 2  # budget already met: nothing new
    run_studies(spec, db, n_trials=4, train_fn=again, progress=False, evaluate=False)
    trials = load(db, "s/sgd").trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert {t.number: (t.params, t.datetime_complete) for t in trials[:2]} == first
    assert len(again.calls) == 4  # two more per arm
    lrs = [t.params["lr"] for t in trials]
    assert len(set(lrs)) == 4  # the resumed sampler did not replay the first run's draws


def test_median_pruner_prunes_a_losing_trial_but_never_inside_its_warmup(tmp_path, db):
    spec = load_spec(
        write_study(
            tmp_path,
            """\
        name: p
        objective: {epochs: 5}
        arms: [sgd]
        space: {lr: [0.03, 0.0001], warmup_epochs: [0.0, 2.0]}
        budget: {trials: 4}
        pruner: {type: median, n_startup_trials: 2}
        recipe: false
        """,
        )
    )
    studies = open_studies(spec, open_storage(db))
    for lr, warmup in [(0.03, 0.0), (0.03, 0.0), (0.0001, 2.0), (0.0001, 0.0)]:
        studies["sgd"].enqueue_trial({"lr": lr, "warmup_epochs": warmup})
    asked = []

    def curve(config, epoch):
        return lr_curve(config, epoch)

    fake = FakeTrain(curve)
    original = optuna.trial.Trial.should_prune

    def spy(self):
        asked.append((self.number, max(self.storage.get_trial(self._trial_id).intermediate_values)))
        return original(self)

    optuna.trial.Trial.should_prune = spy
    try:
        run_studies(spec, db, train_fn=fake, progress=False, evaluate=False)
    finally:
        optuna.trial.Trial.should_prune = original
    trials = load(db, "p/sgd").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED]
    # trial 2 (2 warm-up epochs) is only judged from epoch 3 on, and pruned there; trial 3 at epoch 1
    assert sorted(trials[2].intermediate_values) == [1, 2, 3]
    assert sorted(trials[3].intermediate_values) == [1]
    assert [e for n, e in asked if n == 2] == [3]
    assert trials[2].user_attrs["fail_reason"].startswith("pruned at epoch 3: val_accuracy 0.")
    assert trials[2].user_attrs["fail_reason"].endswith("below the median of earlier trials at that epoch")
    assert len(trials[2].user_attrs["history"]) == 3
    assert trials[2].user_attrs["images_per_s"] == 903.0  # a pruned trial: its last epoch's figure


@pytest.mark.parametrize(
    "pruner, pruned_after",
    [
        ("{type: median, n_startup_trials: 2}", [1, 2, 3]),
        ("{type: median, n_startup_trials: 2, interval_steps: 1}", [1, 2]),
    ],
)
def test_median_pruner_judges_every_third_of_training_by_default(tmp_path, db, pruner, pruned_after):
    # 9 epochs: judged at its first epoch, then at 3, 6 and 9 (Optuna's interval_steps=3), unless the
    # file says 1; the third trial leads at epoch 1 (0.5 vs 0.1) and loses from epoch 2 on (0.5 vs 0.9)
    spec = load_spec(
        write_study(
            tmp_path,
            f"""\
        name: p
        objective: {{epochs: 9}}
        arms: [sgd]
        space: {{lr: [0.03, 0.0001], warmup_epochs: 0.0}}
        budget: {{trials: 3}}
        pruner: {pruner}
        recipe: false
        """,
        )
    )
    studies = open_studies(spec, open_storage(db))
    for lr in (0.03, 0.03, 0.0001):
        studies["sgd"].enqueue_trial({"lr": lr})

    def curve(config, epoch):
        return (0.1 if epoch == 1 else 0.9) if config["lr"] == 0.03 else 0.5

    run_studies(spec, db, train_fn=FakeTrain(curve), progress=False, evaluate=False)
    trials = load(db, "p/sgd").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert sorted(trials[2].intermediate_values) == pruned_after


def test_faults_in_a_trial_do_not_stop_the_study(tmp_path, db, monkeypatch):
    import torch

    spec = load_spec(
        write_study(
            tmp_path, TWO_ARMS.replace("arms: [sgd, sgd+lars]", "arms: [sgd]").replace("trials: 3", "trials: 4")
        )
    )
    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    calls = {"n": 0}

    def curve(config, epoch):
        n = calls["n"] = calls["n"] + (epoch == 1)
        if n == 1 and epoch == 2:
            return math.nan  # diverged
        if n == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if n == 3 and epoch == 3:
            raise ValueError("user code broke\nsecond line")
        return lr_curve(config, epoch)

    summary = run_studies(spec, db, train_fn=FakeTrain(curve), progress=False, evaluate=False)
    trials = load(db, "s/sgd").trials
    assert [t.state for t in trials] == [TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[0].user_attrs["fail_reason"] == "diverged: non-finite training loss at epoch 2"
    assert trials[0].user_attrs["diverged_epoch"] == 2
    assert trials[1].user_attrs["fail_reason"] == "CUDA out of memory: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert emptied == [True]
    assert trials[2].user_attrs["fail_reason"] == "ValueError: user code broke"
    assert len(trials[2].user_attrs["history"]) == 2
    assert (summary["sgd"].complete, summary["sgd"].pruned, summary["sgd"].failed) == (1, 1, 2)


def test_ctrl_c_fails_the_running_trial_and_keeps_the_finished_ones(tmp_path, db):
    spec = load_spec(write_study(tmp_path, TWO_ARMS))
    calls = {"n": 0}

    def curve(config, epoch):
        calls["n"] += epoch == 1
        if calls["n"] == 3 and epoch == 2:
            raise KeyboardInterrupt
        return lr_curve(config, epoch)

    with pytest.raises(KeyboardInterrupt):
        run_studies(spec, db, train_fn=FakeTrain(curve), progress=False, evaluate=False)
    sgd, lars = load(db, "s/sgd").trials, load(db, "s/sgd+lars").trials
    assert [t.state for t in sgd] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert sgd[1].user_attrs["fail_reason"] == "interrupted (Ctrl-C) during epoch 2"
    assert sgd[2].params == sgd[1].params and sgd[2].system_attrs["failed_trial"] == 1
    assert [t.state for t in lars] == [TrialState.COMPLETE]
    # resuming: the interrupted configuration runs again in its slot, then the arms fill up to the budget
    run_studies(spec, db, train_fn=FakeTrain(), progress=False, evaluate=False)
    sgd = load(db, "s/sgd").trials
    assert [t.state for t in sgd] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert sgd[2].params == sgd[1].params and "fail_reason" not in sgd[2].user_attrs
    assert [t.state for t in load(db, "s/sgd+lars").trials] == [TrialState.COMPLETE] * 3


def test_a_conflicting_study_file_is_refused_before_anything_is_written(tmp_path, db):
    run_studies(
        load_spec(write_study(tmp_path, TWO_ARMS)), db, n_trials=1, train_fn=FakeTrain(), progress=False, evaluate=False
    )
    changed = load_spec(write_study(tmp_path, TWO_ARMS.replace("epochs: 3", "epochs: 5"), "changed.yaml"))
    with pytest.raises(
        SpecConflictError,
        match=r"arm 'sgd' conflicts with the stored study 's/sgd' in sqlite:///.*: "
        r"objective\.epochs was 3, now 5",
    ):
        run_studies(changed, db, train_fn=FakeTrain(), progress=False, evaluate=False)
    assert len(load(db, "s/sgd").trials) == 1
    # a bigger budget, another device or sampler is not a conflict
    bigger = load_spec(
        write_study(
            tmp_path,
            TWO_ARMS.replace("trials: 3", "trials: 2").replace("width: 0.125", "width: 0.125, device: cpu"),
            "b.yaml",
        )
    )
    assert run_studies(bigger, db, train_fn=FakeTrain(), progress=False, evaluate=False)["sgd"].complete == 2


def test_timeout_zero_is_refused_as_in_the_study_file(tmp_path, db):
    """#26 item 10: timeout 0 ran nothing, silently, while `budget.timeout: 0` is refused."""
    fake = FakeTrain()
    with pytest.raises(ValueError, match=r"^timeout must be > 0 seconds \(0 would run nothing; leave it out for no "
                       r"limit\), got 0$"):  # fmt: skip
        run_studies(load_spec(write_study(tmp_path, TWO_ARMS)), db, timeout=0, train_fn=fake, progress=False)
    assert fake.calls == []


def test_samplers_and_pruners_follow_the_file(tmp_path):
    spec = load_spec(write_study(tmp_path, TWO_ARMS))
    for kind, cls in [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("qmc", optuna.samplers.QMCSampler),
        ("gp", optuna.samplers.GPSampler),
    ]:
        s = load_spec(write_study(tmp_path, TWO_ARMS.replace("type: tpe", f"type: {kind}")))
        assert type(build_sampler(s)) is cls
    assert build_sampler(spec)._n_startup_trials == default_sampler_startup(3) == 3
    assert (default_sampler_startup(20), default_sampler_startup(100), default_pruner_startup(20)) == (6, 10, 4)
    assert type(build_pruner(spec)) is optuna.pruners.NopPruner
    median = build_pruner(load_spec(write_study(tmp_path, TWO_ARMS.replace("pruner: none", "pruner: median"))))
    assert (median._n_startup_trials, median._n_warmup_steps, median._interval_steps) == (2, 0, 1)  # 3 epochs
    assert [default_pruner_interval(e) for e in (1, 3, 5, 10, 90)] == [1, 1, 1, 3, 30]
    every_4 = build_pruner(
        load_spec(write_study(tmp_path, TWO_ARMS.replace("pruner: none", "pruner: {type: median, interval_steps: 4}")))
    )
    assert every_4._interval_steps == 4
    hyper = build_pruner(
        load_spec(
            write_study(tmp_path, TWO_ARMS.replace("pruner: none", "pruner: {type: hyperband, reduction_factor: 2}"))
        )
    )
    assert (hyper._min_resource, hyper._max_resource, hyper._reduction_factor) == (1, 3, 2)


def test_stored_study_file_round_trips(tmp_path, db):
    spec = load_spec(write_study(tmp_path, TWO_ARMS))
    run_studies(spec, db, n_trials=1, train_fn=FakeTrain(), progress=False, evaluate=False)
    assert yaml.safe_load(load(db, "s/sgd").user_attrs["study_file"]) == yaml.safe_load(TWO_ARMS)


def test_a_config_objectives_rejects_at_train_time_stops_the_run(tmp_path, db):
    from objectives import ConfigError

    spec = load_spec(write_study(tmp_path, TWO_ARMS))

    def curve(config, epoch):
        raise ConfigError("config key 'device' is 'cuda' but CUDA is not available on this machine")

    with pytest.raises(ConfigError, match="CUDA is not available"):
        run_studies(spec, db, train_fn=FakeTrain(curve), progress=False, evaluate=False)
    trials = load(db, "s/sgd").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]  # one trial, and its retry
    assert trials[0].user_attrs["fail_reason"].startswith("ConfigError: config key 'device' is 'cuda'")
    # the user's mistake uses up no budget: once fixed, the rerun trains every trial of each arm
    budget = spec.budget.trials
    run_studies(spec, db, train_fn=FakeTrain(), progress=False, evaluate=False)
    trials = load(db, "s/sgd").trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == budget
    assert trials[1].params == trials[0].params  # the retry trained the failed trial's parameters


def test_a_spec_built_in_code_is_stored_and_resumes(tmp_path, db):
    from search.spec.study_file import parse_spec

    data = yaml.safe_load(TWO_ARMS)
    run_studies(parse_spec(data), db, n_trials=1, train_fn=FakeTrain(), progress=False, evaluate=False)
    study = load(db, "s/sgd")
    assert yaml.safe_load(study.user_attrs["study_file"]) == data
    run_studies(parse_spec(data), db, n_trials=2, train_fn=FakeTrain(), progress=False, evaluate=False)  # no conflict
    assert len(load(db, "s/sgd").trials) == 2


def test_raised_replicates_and_seeds_are_used_everywhere(tmp_path, db):
    from search.results.export import export_document
    from search.results.read import load_verdict
    from search.results.report import format_compare

    first = TWO_ARMS.replace("budget: {trials: 3}", "budget: {trials: 2}\nevaluation: {seeds: 2}")
    run_studies(load_spec(write_study(tmp_path, first)), db, train_fn=FakeTrain(), progress=False)
    raised = first.replace("evaluation: {seeds: 2}", "evaluation: {seeds: 3}\nreplicates: 2")
    fake = FakeTrain()
    run_studies(load_spec(write_study(tmp_path, raised, "raised.yaml")), db, train_fn=fake, progress=False)
    # the new replicate's searches and evaluations (2 trials + 3 seeds per arm), one more seed per old incumbent
    assert len(fake.calls) == 2 * (2 + 3) + 2 * 1
    storage = open_storage(db, heartbeat=False)
    verdict = load_verdict(storage, "s")
    assert (verdict.replicates, verdict.seeds) == (2, 3)
    assert [[len(v) for v in a.values] for a in verdict.arms] == [[3, 3], [3, 3]]
    assert verdict.lines[0].startswith("sgd+lars vs sgd: ") and "no verdict on the arms" not in verdict.lines[0]
    assert "\nverdict (2 replicates x 2 trials x 3 seeds per arm;" in format_compare(storage, "s")
    note = load(db, "s/sgd").user_attrs["verdict"]
    assert note.startswith("verdict (2 replicates x 2 trials x 3 seeds per arm;")
    test_line = next(
        line for line in export_document(storage, "s", "sgd")[0].splitlines() if "final evaluation" in line
    )
    assert test_line.endswith("; 2 replicates x 3 seeds)")


def test_replicates_search_with_their_own_seed_and_export_names_the_evaluation_seeds(tmp_path, db):
    from search.results.export import export_document

    text = TWO_ARMS.replace("budget: {trials: 3}", "budget: {trials: 2}\nevaluation: {seeds: 2}\nreplicates: 3")
    text = text.replace("width: 0.125}", "width: 0.125, seed: 7}")
    fake = FakeTrain()
    run_studies(load_spec(write_study(tmp_path, text)), db, train_fn=fake, progress=False)
    searched = {(c["lars"], c["seed"]) for c in fake.calls if not c["evaluate_test"]}
    assert searched == {(lars, seed) for lars in (False, True) for seed in (7, 1007, 2007)}
    evaluated = sorted({c["seed"] for c in fake.calls if c["evaluate_test"]})
    assert evaluated == [8, 9, 1008, 1009, 2008, 2009]
    for r, name in enumerate(["s/sgd", "s/sgd/r1", "s/sgd/r2"]):
        assert {t.user_attrs["config"]["seed"] for t in load(db, name).trials} == {7 + 1000 * r}
    document, command = export_document(open_storage(db, heartbeat=False), "s", "sgd")
    replicate = int(next(line for line in document.splitlines() if "replicate: " in line).split("replicate: ")[1][0])
    assert command.endswith(f"--seeds 2 --first-seed {8 + 1000 * replicate}")


def test_lowered_replicates_or_seeds_are_refused_before_anything_is_written(tmp_path, db):
    first = TWO_ARMS.replace("budget: {trials: 3}", "budget: {trials: 1}\nevaluation: {seeds: 2}\nreplicates: 2")
    run_studies(load_spec(write_study(tmp_path, first)), db, train_fn=FakeTrain(), progress=False)
    storage = open_storage(db, heartbeat=False)

    def snapshot():
        return {s.study_name: (len(storage.get_all_trials(storage.get_study_id_from_name(s.study_name))),
                               s.user_attrs) for s in storage.get_all_studies()}  # fmt: skip

    before = snapshot()
    for old, new, key in (("replicates: 2", "replicates: 1", "replicates"),
                          ("seeds: 2", "seeds: 1", "evaluation.seeds")):  # fmt: skip
        lowered = load_spec(write_study(tmp_path, first.replace(old, new), "lowered.yaml"))
        fake = FakeTrain()
        with pytest.raises(
            SpecConflictError,
            match=rf"lowered\.yaml: {key} is 1, but the stored study 's/sgd' in sqlite:///.* ran with 2; lowering "
            rf"it would leave finished runs out of the verdict \(use {key}: 2 or more, or a new name\)$",
        ):
            run_studies(lowered, db, train_fn=fake, progress=False)
        assert fake.calls == []
        assert snapshot() == before  # storage untouched
