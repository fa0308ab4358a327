"""The search space: conditional scheduler params, arm-specific params, only valid configs."""

from __future__ import annotations

import optuna
import pytest
from search_fakes import write_study

from objectives import validate_config
from search.spec.space import suggest_config
from search.spec.study_file import load_spec

FULL = """\
name: space
objective: {dataset: fashion_mnist, model: vgg11, width: 0.25, epochs: 6, n_train: 500, val_size: 100}
space:
  nesterov: [true, false]
  lars_mode: [gradient, update]
  lars_clip: [true, false]
  warmup_epochs: {low: 0, high: 2}
  schedule:
    type: [constant, step, multistep, exponential, cosine, polynomial]
    step: {step_size: {low: 1, high: 4}, gamma: {low: 0.1, high: 0.9}}
    multistep: {milestones: [[2, 4], [3], [1, 2, 5]], gamma: [0.1, 0.5]}
    exponential: {gamma: {low: 0.5, high: 0.99, log: true}}
    cosine: {final_lr_ratio: {low: 0.0, high: 0.1}}
    polynomial: {power: {low: 1, high: 3}, final_lr_ratio: 0.0}
"""


def sample(spec, arm, n, seed=0):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        config = suggest_config(trial, spec.objective, arm.optimizer, arm.lars, arm.space)
        out.append((trial.params, config))
        study.tell(trial, 0.5)
    return out


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return load_spec(write_study(tmp_path_factory.mktemp("space"), FULL))


def test_every_sampled_config_is_valid_for_objectives(spec):
    seen = set()
    for arm in spec.arms:
        for _, config in sample(spec, arm, 60):
            validated = validate_config(config)  # raises ConfigError on any invalid key or value
            assert validated["optimizer"] == arm.optimizer and validated["lars"] == arm.lars
            assert validated["evaluate_test"] is False  # tuning never sees the test set
            seen.add(config["schedule"])
    assert seen == {"constant", "step", "multistep", "exponential", "cosine", "polynomial"}


def test_only_the_chosen_schedule_type_has_parameters(spec):
    own = {
        "constant": set(),
        "step": {"step_size", "gamma"},
        "multistep": {"milestones", "gamma"},
        "exponential": {"gamma"},
        "cosine": {"final_lr_ratio"},
        "polynomial": {"power", "final_lr_ratio"},
    }
    for params, config in sample(spec, spec.arm("sgd"), 80):
        kind = config["schedule"]
        assert params["schedule"] == kind
        assert set(config["schedule_params"]) == own[kind]
        sched_params = {k for k in params if k.startswith("schedule.")}
        # fixed values (polynomial final_lr_ratio) are not Optuna parameters
        searched = {
            "step": {"step_size", "gamma"},
            "multistep": {"milestones", "gamma"},
            "exponential": {"gamma"},
            "cosine": {"final_lr_ratio"},
            "polynomial": {"power"},
            "constant": set(),
        }[kind]
        assert sched_params == {f"schedule.{kind}.{p}" for p in searched}
        if kind == "multistep":
            assert config["schedule_params"]["milestones"] in ([2, 4], [3], [1, 2, 5])
        if kind == "step":
            assert 1 <= config["schedule_params"]["step_size"] <= 4  # epochs, fractional allowed


def test_lambda_and_epsilon_only_in_lars_arms_and_momentum_only_where_it_exists(spec):
    for arm in spec.arms:
        params, config = sample(spec, arm, 1)[0]
        lars_keys = {"trust_coefficient", "lars_mode", "lars_clip"}
        assert (lars_keys <= set(params)) is arm.lars
        assert ("lars_eps" in config) is arm.lars  # fixed 1e-8 by default: in the config, not a param
        assert ("trust_coefficient" in params) is arm.lars
        assert ("momentum" in config) is (arm.optimizer in ("sgd", "rmsprop"))
        assert ("nesterov" in params) is (arm.optimizer == "sgd")


def test_ranges_are_respected(spec):
    for _, config in sample(spec, spec.arm("adam+lars"), 50):
        assert 1e-5 <= config["lr"] <= 1e-1
        # lars_mode [gradient, update] is searched: lambda spans both modes' default ranges
        assert 1e-4 <= config["trust_coefficient"] <= 100.0
        assert 0.0 <= config["warmup_epochs"] <= 2.0
        assert config["lars_eps"] == 1e-8


def test_rules_and_schedules_are_read_from_objectives():
    import search.spec.space as space
    from objectives.config import RULES
    from objectives.registry import SCHEDULES as REGISTERED

    assert all(space.PARAM_RULES[key] is RULES[key] for key in space.SPACE_KEYS)
    assert space.SCHEDULES == tuple(REGISTERED)
    for kind, info in REGISTERED.items():
        assert all(space.SCHEDULE_RULES[kind][name] is param.rule for name, param in info.params.items())


def test_which_arms_a_key_applies_to_comes_from_the_registry():
    from search.spec.space import why_not

    assert why_not("momentum", "adam", False) == "sgd, rmsprop arms only"
    assert why_not("nesterov", "rmsprop", False) == "sgd arms only"
    assert why_not("trust_coefficient", "sgd", False) == "LARS arms only"
    assert why_not("lars_momentum_form", "adam", True) == "LARS arms in gradient mode only"
    assert why_not("lars_momentum_form", "adam", True, ("gradient",)) is None
    assert why_not("lr", "adagrad", False) is None


def test_fractional_milestone_choices_come_back_as_numbers(tmp_path):
    spec = load_spec(
        write_study(
            tmp_path,
            """\
        name: frac
        objective: {dataset: fashion_mnist, epochs: 2, n_train: 500, val_size: 100, batch_size: 50}
        arms: [sgd]
        space: {schedule: {type: multistep, multistep: {milestones: [[0.5, 1.5], [1]]}}}
        """,
        )
    )
    drawn = {tuple(config["schedule_params"]["milestones"]) for _, config in sample(spec, spec.arms[0], 20)}
    assert drawn == {(0.5, 1.5), (1,)}
