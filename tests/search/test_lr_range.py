"""search.run.lr_range: ``lr: auto`` found once per arm, stored in the arm's study, sampled in its range."""

import functools
import math

import optuna
import pytest
from search_fakes import FakeTrain

import objectives.lr_find as lr_find
from search.errors import SpecError
from search.results.read import arm_stats
from search.results.stored import RANGE_ATTR, describe_range, range_cost
from search.run.loop import run_studies
from search.run.lr_range import (
    RangeTestError,
    default_lr,
    needs_range_test,
    reference_config,
    resolve_ranges,
)
from search.run.studies import open_studies
from search.spec.space import Auto, Range, suggest_config
from search.spec.study_file import parse_spec

SPEC = {
    "name": "auto",
    "objective": {
        "dataset": "fashion_mnist",
        "n_train": 300,
        "val_size": 100,
        "width": 0.125,
        "epochs": 2,
        "batch_size": 32,
        "device": "cpu",
    },
    "arms": ["sgd", "sgd+lars"],
    "space": {
        "lr": "auto",
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "trust_coefficient": {"low": 1e-3, "high": 1e-1, "log": True},
        "schedule": "constant",
    },
    "budget": {"trials": 3},
}
SCALES = [10.0 ** (k - 6) for k in range(8)]  # 1e-6 .. 10
LOSSES = [2.3, 2.3, 2.2, 2.0, 1.4, 0.9, 2.5, 9.0]  # steepest at k=4 (1e-2), lowest k=5 (1e-1): [1e-2, 1e-1]


@pytest.fixture
def sweeps(monkeypatch):
    """lr_sweep replaced by a synthetic curve (2 steps per epoch); records the configs it got."""
    calls = []

    def fake_sweep(config, **kwargs):
        calls.append((config, kwargs))
        return lr_find.Sweep(scales=SCALES, losses=LOSSES, steps_per_epoch=2)

    monkeypatch.setattr(lr_find, "lr_sweep", fake_sweep)
    monkeypatch.setattr(lr_find, "pick_range", functools.partial(lr_find.pick_range, smoothing=0.0))  # exact indices
    return calls


def test_lr_auto_parses_to_auto_and_only_for_lr():
    spec = parse_spec(SPEC)
    assert all(isinstance(a.space.params["lr"], Auto) and needs_range_test(a) for a in spec.arms)
    assert spec.identity(spec.arms[0])["space"]["lr"] == "auto"
    with pytest.raises(SpecError, match=r"space.weight_decay: must be a number >= 0, got 'auto'"):
        parse_spec({**SPEC, "space": {**SPEC["space"], "weight_decay": "auto"}})


def test_reference_config_puts_every_dimension_at_its_middle():
    spec = parse_spec(SPEC)
    arm = spec.arm("sgd+lars")
    config = reference_config(spec, arm)
    assert config["weight_decay"] == pytest.approx(1e-4) and config["trust_coefficient"] == pytest.approx(1e-2)
    lr = default_lr(spec, arm)
    assert lr.log and config["lr"] == pytest.approx(math.sqrt(lr.low * lr.high))  # the default lr range's middle
    assert config["lars"] is True and config["schedule"] == "constant"


def test_range_is_tested_once_per_arm_stored_and_resolved(sweeps, capsys):
    storage = optuna.storages.InMemoryStorage()
    spec = parse_spec(SPEC)
    studies = open_studies(spec, storage)
    resolved = resolve_ranges(spec, studies)
    assert len(sweeps) == 2
    plain, lars = (studies[a].user_attrs[RANGE_ATTR] for a in ("sgd", "sgd+lars"))
    assert plain == {"low": 1e-2, "high": 1e-1, "trial_epochs": 4.0, "of": "lr", "steps": 8}
    assert lars == {**plain, "of": "lr*trust_coefficient"}
    assert resolved.arm("sgd").space.params["lr"] == Range(1e-2, 1e-1, log=True)
    lars_space = resolved.arm("sgd+lars").space.params
    assert lars_space["trust_coefficient"] == Range(1e-2, 1e-1, log=True, per="lr")  # lr * lambda, found
    assert lars_space["lr"] == default_lr(spec, spec.arm("sgd+lars"))  # the lr of biases and batch norm
    assert capsys.readouterr().out.splitlines() == [
        "auto/sgd: lr range test: lr in [0.01, 0.1] (4 trial-epochs, 8 steps)",
        "auto/sgd+lars: lr range test: lr*trust_coefficient in [0.01, 0.1] (4 trial-epochs, 8 steps)",
    ]
    assert range_cost(studies["sgd"]) == 4.0
    stats = arm_stats("sgd", studies["sgd"])  # the recipe is enqueued, nothing has trained yet
    assert (stats.trial_epochs, stats.range_epochs, stats.compute) == (0, 4.0, 4.0)
    again = resolve_ranges(spec, open_studies(spec, storage))  # a resumed run: stored, not tested again
    assert len(sweeps) == 2 and again.arms == resolved.arms


def test_a_lars_arm_samples_lr_times_lambda_and_lr_and_trains_lambda_as_their_quotient():
    spec = parse_spec(SPEC)
    arm = spec.arm("sgd+lars")
    params = {
        **arm.space.params,
        "lr": Range(1e-3, 1.0, log=True),
        "trust_coefficient": Range(1e-2, 1.0, log=True, per="lr"),
    }
    space = type(arm.space)(params, arm.space.schedule, arm.space.schedule_params)
    trial = optuna.trial.FixedTrial(
        {"lr*trust_coefficient": 0.05, "lr": 0.5, "weight_decay": 1e-4, "warmup_epochs": 0.0}
    )
    config = suggest_config(trial, spec.objective, "sgd", True, space)
    assert config["lr"] == 0.5 and config["trust_coefficient"] == 0.05 / 0.5


def test_an_unresolved_auto_is_never_sampled():
    spec = parse_spec(SPEC)
    with pytest.raises(ValueError, match=r"lr: auto must be resolved by search.run.lr_range"):
        suggest_config(optuna.trial.FixedTrial({}), spec.objective, "sgd", False, spec.arm("sgd").space)


@pytest.mark.parametrize(
    "losses, says",
    [
        ([2.3, 2.5, 3.0, 12.0, 30.0, 50.0, 90.0, 99.0], r"the loss never fell before it diverged at lr 0\.001"),
        ([2.3, 2.31, 2.29, 2.3, 2.28, 2.3, 2.3, 2.3], r"the loss never fell by 5% over lr 1e-06\.\.10 in 8 steps"),
    ],
)
def test_no_usable_range_ends_the_arm_with_one_line(sweeps, monkeypatch, losses, says):
    monkeypatch.setattr(lr_find, "lr_sweep", lambda config, **kw: lr_find.Sweep(SCALES, losses, 2))
    spec = parse_spec({**SPEC, "arms": ["sgd"]})
    studies = open_studies(spec, optuna.storages.InMemoryStorage())
    with pytest.raises(RangeTestError, match=r"^<study>: auto/sgd: lr: auto: range test: " + says) as info:
        resolve_ranges(spec, studies)
    assert "\n" not in str(info.value) and RANGE_ATTR not in studies["sgd"].user_attrs


def test_run_studies_tests_the_range_then_samples_inside_it(sweeps):
    storage = optuna.storages.InMemoryStorage()
    fake = FakeTrain()
    run_studies(parse_spec(SPEC), storage, train_fn=fake, progress=False)
    searched = [c for c in fake.calls if not c["evaluate_test"]]  # not the final evaluation's runs
    plain = [c for c in searched if not c["lars"]]
    lars = [c for c in searched if c["lars"]]
    assert len(plain) == len(lars) == 3
    assert all(1e-2 <= c["lr"] <= 1e-1 for c in plain)
    assert all(1e-2 <= c["lr"] * c["trust_coefficient"] <= 1e-1 + 1e-12 for c in lars)
    lr = default_lr(parse_spec(SPEC), parse_spec(SPEC).arm("sgd+lars"))
    assert all(lr.low <= c["lr"] <= lr.high for c in lars)


def test_describe_range():
    found = {"low": 0.00215443, "high": 0.0572237, "trial_epochs": 10.0, "of": "lr*trust_coefficient", "steps": 90}
    assert describe_range(found) == (
        "lr range test: lr*trust_coefficient in [0.00215, 0.0572] (10 trial-epochs, 90 steps)"
    )


def test_status_and_compare_show_the_found_range(sweeps):
    from search.results.report import format_compare, format_status

    storage = optuna.storages.InMemoryStorage()
    run_studies(parse_spec(SPEC), storage, train_fn=FakeTrain(), progress=False)
    line = "  sgd+lars: lr range test: lr*trust_coefficient in [0.01, 0.1] (4 trial-epochs, 8 steps)"
    for text in (format_status(storage, "auto"), format_compare(storage, "auto")):
        assert "lr: auto (a range test before the search" in text and line in text.splitlines()


@pytest.mark.slow
def test_local_workers_read_one_range_test_run_before_they_start(sweeps, tmp_path):
    """``run --workers 2``: the parent tests each auto arm once; workers started together do not
    each run their own (they would pay the cost twice while the compute counts it once)."""
    import yaml
    from worker_harness import worker_env

    from search.run import workers as W

    study = tmp_path / "auto.yaml"
    study.write_text(yaml.safe_dump({**SPEC, "budget": {"trials": 2}}))
    url = f"sqlite:///{tmp_path}/auto.db"
    lines = []
    code = W.launch_workers(str(study), storage_url=url, n_workers=2, objective="fake_objective:train",
                            env=worker_env(tmp_path), log=lines.append)  # fmt: skip
    assert code == 0, lines
    assert [c["lars"] for c, _ in sweeps] == [False, True]  # once per arm, in this process
    starting = lines.index(f"auto: starting 2 workers on {url}")
    tested = [i for i, line in enumerate(lines) if "lr range test:" in line]
    assert len(tested) == 2 and max(tested) < starting, lines
    storage = optuna.storages.RDBStorage(url)
    for arm in ("sgd", "sgd+lars"):
        assert optuna.load_study(study_name=f"auto/{arm}", storage=storage).user_attrs[RANGE_ATTR]["steps"] == 8


def test_a_lars_arms_recipe_keeps_its_lr_and_lambda_when_their_product_is_in_the_found_range(sweeps):
    storage = optuna.storages.InMemoryStorage()
    fake = FakeTrain()
    run_studies(parse_spec({**SPEC, "budget": {"trials": 1}}), storage, train_fn=fake, progress=False)
    [recipe] = optuna.load_study(study_name="auto/sgd+lars", storage=storage).trials
    assert recipe.user_attrs["recipe"] == "published"
    assert recipe.params["lr"] == 10.0 and recipe.params["lr*trust_coefficient"] == pytest.approx(0.01)  # in range
    lars = [c for c in fake.calls if c["lars"] and not c["evaluate_test"]]
    assert (lars[0]["lr"], lars[0]["trust_coefficient"]) == (10.0, pytest.approx(1e-3))  # the published lambda


def test_a_study_files_own_recipe_is_trial_0_of_an_lr_auto_arm_clamped_into_the_found_range(sweeps):
    """#26 item 4: the file's recipe lr was dropped (trial 0 trained a random draw labelled `study file`)."""
    recipe = {"sgd": {"lr": 0.05}, "sgd+lars": {"lr": 2.0, "trust_coefficient": 0.1}}
    storage = optuna.storages.InMemoryStorage()
    fake, lines = FakeTrain(), []
    spec = parse_spec({**SPEC, "budget": {"trials": 1}, "recipe": recipe})
    run_studies(spec, storage, train_fn=fake, progress=False, log=lines.append)
    searched = [c for c in fake.calls if not c["evaluate_test"]]
    plain, lars = (next(c for c in searched if c["lars"] is flag) for flag in (False, True))
    assert plain["lr"] == 0.05  # inside the found [0.01, 0.1]: trained as written
    assert lars["lr"] == 2.0 and lars["lr"] * lars["trust_coefficient"] == pytest.approx(0.1)  # 0.2 -> the top, 0.1
    sgd, sgd_lars = (optuna.load_study(study_name=f"auto/{a}", storage=storage).trials[0] for a in ("sgd", "sgd+lars"))
    assert sgd.user_attrs["recipe"] == sgd_lars.user_attrs["recipe"] == "study file"
    assert "recipe_clamped" not in sgd.user_attrs
    note = "lr*trust_coefficient 0.2 clamped to 0.1 (the top of the range test's [0.01, 0.1])"
    assert sgd_lars.user_attrs["recipe_clamped"] == [note]
    assert f"auto/sgd+lars: recipe (study file): {note}" in lines


def test_compare_and_the_plot_count_the_range_test_in_the_arms_compute(sweeps):
    """#26 item 5: compare's trial-epochs column and the plot's x axis left the range test out."""
    from search.results.plot import compare_curves
    from search.results.read import load_verdict

    storage = optuna.storages.InMemoryStorage()
    run_studies(parse_spec({**SPEC, "budget": {"trials": 2}}), storage, train_fn=FakeTrain(), progress=False)
    verdict = load_verdict(storage, "auto")
    for arm in ("sgd", "sgd+lars"):
        [search] = verdict.arm(arm).searches
        assert (search.trial_epochs, search.range_epochs, search.compute) == (4, 4.0, 8.0)  # 2 trials x 2 + 8 steps / 2
        curve = compare_curves(storage, "auto")[arm]
        assert curve.start == 4.0 and curve.compute == [6.0, 8.0]  # the search starts after the range test


def test_ctrl_c_during_the_range_test_does_not_claim_a_trial_was_marked_fail(tmp_path, monkeypatch, capsys):
    """#26 item 13: it said "the running trial was marked FAIL" when no trial had started."""
    import yaml

    from search.cli.command import main

    def interrupted_sweep(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lr_find, "lr_sweep", interrupted_sweep)
    study = tmp_path / "auto.yaml"
    study.write_text(yaml.safe_dump(SPEC))
    db = f"sqlite:///{tmp_path}/auto.db"
    assert main(["run", str(study), "--storage", db, "-q"], train_fn=FakeTrain()) == 130
    assert capsys.readouterr().err == (
        "lars-search: interrupted during the lr range test of auto/sgd (no trial was running; the next run tests "
        f"it again); finished trials are kept in {db}; run the same command again to resume\n"
    )


# --- the range test goes through the one lifecycle of every run (issue 25 item 2) ---------------------------------


def _failing_sweep(exc):
    def sweep(config, **kwargs):
        raise exc

    return sweep


def test_a_range_test_out_of_cuda_memory_fails_as_a_trial_does_and_releases_the_memory(monkeypatch):
    """Before, the OOM left the range test as a raw traceback and the CUDA cache was never emptied."""
    import torch

    import search.run.trial

    released = []
    monkeypatch.setattr(search.run.trial, "_release_cuda_memory", lambda: released.append(True))
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(lr_find, "lr_sweep", _failing_sweep(oom))
    spec = parse_spec({**SPEC, "arms": ["sgd"]})
    studies = open_studies(spec, optuna.storages.InMemoryStorage())
    with pytest.raises(RangeTestError) as info:
        resolve_ranges(spec, studies)
    assert str(info.value) == (
        "<study>: auto/sgd: lr: auto: range test failed: CUDA out of memory: CUDA out of memory. Tried to allocate "
        "2.00 GiB (nothing was stored; the next run tests it again)"
    )
    assert released == [True] and RANGE_ATTR not in studies["sgd"].user_attrs


def test_a_range_test_fault_is_one_line_with_the_reason_a_trial_would_record(monkeypatch, tmp_path, capsys):
    """The same reason a failed trial records ("<Type>: <first line>"), and the CLI's one line, exit 2."""
    import yaml

    from search.cli.command import main

    monkeypatch.setattr(lr_find, "lr_sweep", _failing_sweep(RuntimeError("boom\nat line 2")))
    study = tmp_path / "auto.yaml"
    study.write_text(yaml.safe_dump({**SPEC, "arms": ["sgd"]}))
    db = f"sqlite:///{tmp_path}/auto.db"
    assert main(["run", str(study), "--storage", db, "-q"], train_fn=FakeTrain()) == 2
    assert capsys.readouterr().err == (
        f"lars-search: error: {study}: auto/sgd: lr: auto: range test failed: RuntimeError: boom (nothing was stored; "
        "the next run tests it again)\n"
    )
    assert RANGE_ATTR not in optuna.load_study(study_name="auto/sgd", storage=db).user_attrs


def test_a_user_error_in_the_range_test_propagates_as_from_a_trial(monkeypatch):
    from objectives.errors import DataNotFoundError

    monkeypatch.setattr(lr_find, "lr_sweep", _failing_sweep(DataNotFoundError("no fashion_mnist here")))
    spec = parse_spec({**SPEC, "arms": ["sgd"]})
    studies = open_studies(spec, optuna.storages.InMemoryStorage())
    with pytest.raises(DataNotFoundError, match="no fashion_mnist here"):
        resolve_ranges(spec, studies)
    assert RANGE_ATTR not in studies["sgd"].user_attrs
