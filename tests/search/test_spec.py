"""Study files: defaults, and one test per class of schema error with its exact message."""

from __future__ import annotations

import re

import pytest
from search_fakes import write_study

from search.space import Choice, Fixed, Range
from search.spec import DEFAULT_ARMS, SpecError, load_spec, parse_duration

MINIMAL = """\
name: tiny
objective: {dataset: fashion_mnist, epochs: 4}
"""


def spec_error(tmp_path, text: str) -> str:
    path = write_study(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message  # every error names the file
    return message[len(f"{path}: "):]


def test_minimal_file_gets_the_seed_six_arms_and_the_default_space(tmp_path):
    spec = load_spec(write_study(tmp_path, MINIMAL))
    assert [a.name for a in spec.arms] == list(DEFAULT_ARMS)
    assert [(a.optimizer, a.lars) for a in spec.arms] == [
        ("sgd", False), ("sgd", True), ("rmsprop", False), ("rmsprop", True), ("adam", False), ("adam", True)]
    sgd, sgd_lars, _, _, adam, adam_lars = spec.arms
    assert sgd.space.params["lr"] == Range(1e-3, 1.0, log=True)
    assert adam.space.params["lr"] == Range(1e-5, 1e-1, log=True)
    assert "trust_coefficient" not in sgd.space.params and "lars_eps" not in sgd.space.params
    assert sgd_lars.space.params["trust_coefficient"] == Range(1e-3, 1e-1, log=True)  # scales the gradient
    assert adam_lars.space.params["trust_coefficient"] == Range(0.1, 10.0, log=True)  # scales Adam's update
    assert "momentum" not in adam.space.params  # Adam has no momentum argument
    assert sgd.space.schedule == Choice(("constant", "step", "multistep", "exponential", "cosine", "polynomial"))
    # each type's own params, in epochs, scaled to 4 epochs
    assert sgd.space.schedule_params["step"] == {"step_size": Fixed(1), "gamma": Fixed(0.1)}
    assert sgd.space.schedule_params["multistep"]["milestones"] == Fixed([2, 3])
    assert sgd.space.schedule_params["exponential"]["gamma"] == Fixed(0.01 ** 0.25)
    assert spec.budget.trials == 20 and spec.budget.timeout is None
    assert (spec.sampler.type, spec.sampler.seed, spec.pruner.type) == ("tpe", 0, "median")
    assert spec.text == MINIMAL


def test_value_choice_and_range_forms_and_arm_overrides(tmp_path):
    spec = load_spec(write_study(tmp_path, """\
        name: forms
        objective: {epochs: 10}
        arms: [sgd, {name: adam-small, optimizer: adam, space: {lr: {low: 1e-5, high: 1e-3, log: true}}}]
        space:
          lr: [0.01, 0.1]
          weight_decay: 5.0e-4
          warmup_epochs: {low: 0, high: 2, step: 0.5}
          schedule:
            type: [step, multistep]
            step: {step_size: {low: 2, high: 6, step: 2}}
            multistep: {milestones: [[5, 8], [3]]}
        budget: {trials: 3, timeout: 15m}
        """))
    sgd, adam = spec.arms
    assert sgd.space.params["lr"] == Choice((0.01, 0.1))
    assert sgd.space.params["weight_decay"] == Fixed(5e-4)
    assert sgd.space.params["warmup_epochs"] == Range(0.0, 2.0, step=0.5)
    assert adam.name == "adam-small" and adam.space.params["lr"] == Range(1e-5, 1e-3, log=True)  # "1e-5" (no dot) is a number
    assert sgd.space.schedule_params["step"]["step_size"] == Range(2, 6, step=2, integer=True)
    assert sgd.space.schedule_params["multistep"]["milestones"] == Choice(([5, 8], [3]))
    assert set(sgd.space.schedule_params) == {"step", "multistep"}
    assert spec.budget.trials == 3 and spec.budget.timeout == 900.0


@pytest.mark.parametrize("text, expected", [
    ("2h", 7200.0), ("90s", 90.0), ("1.5m", 90.0), (30, 30.0), (None, None)])
def test_durations(text, expected):
    assert parse_duration(text, "f.yaml", "budget.timeout") == expected


def test_unknown_top_level_key(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "sampelr: tpe\n")
    assert msg.startswith("sampelr: unknown key; allowed: name, description, objective, arms")


def test_unknown_objective_key(tmp_path):
    msg = spec_error(tmp_path, "name: t\nobjective: {epochs: 2, optimiser: sgd}\n")
    assert msg.startswith("objective.optimiser: unknown key; allowed: dataset,")


def test_unknown_space_key(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {learning_rate: 0.1}\n")
    assert msg.startswith("space.learning_rate: unknown key; allowed: lr, weight_decay,")


def test_low_greater_than_high(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {lr: {low: 0.5, high: 0.1}}\n")
    assert msg == "space.lr: low must be <= high, got low=0.5 > high=0.1"


def test_log_range_including_zero(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {weight_decay: {low: 0, high: 0.01, log: true}}\n")
    assert msg == "space.weight_decay: log range must have low > 0, got low=0.0"


def test_value_outside_the_parameter_rule(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {momentum: [0.9, 1.0]}\n")
    assert msg == "space.momentum[1]: must be in [0, 1), got 1.0"


def test_unknown_optimizer(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "arms: [sgd, lamb+lars]\n")
    assert msg == "arms[1]: unknown optimizer 'lamb'; choose from sgd, rmsprop, adam, adamw, adagrad"


def test_unknown_scheduler(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: [cosine, onecycle]}}\n")
    assert msg == ("space.schedule.type[1]: unknown scheduler 'onecycle'; choose from constant, step, "
                   "multistep, exponential, cosine, polynomial")


def test_unknown_scheduler_parameter(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: step, step: {decay: 0.5}}}\n")
    assert msg == "space.schedule.step.decay: unknown key; allowed: step_size, gamma"


def test_scheduler_params_for_a_type_not_searched(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: cosine, step: {gamma: 0.5}}}\n")
    assert msg == "space.schedule.step: parameters given for 'step', which is not among space.schedule.type ['cosine']"


def test_milestone_beyond_training(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: multistep, multistep: {milestones: [2, 4]}}}\n")
    assert msg == "space.schedule.multistep.milestones: every milestone must be < objective.epochs=4, got [2, 4]"


def test_negative_budget(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "budget: {trials: -3}\n")
    assert msg == "budget.trials: must be a positive integer (trials per arm), got -3"


def test_negative_timeout(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "budget: {timeout: -60}\n")
    assert msg == "budget.timeout: must be seconds >= 0, got -60"


def test_unknown_sampler_and_pruner(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "sampler: {type: grid}\n") == (
        "sampler.type: unknown sampler 'grid'; choose from tpe, random, qmc, cmaes, gp")
    assert spec_error(tmp_path, MINIMAL + "pruner: asha\n") == (
        "pruner.type: unknown pruner 'asha'; choose from median, hyperband, none")
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: none, n_startup_trials: 3}\n") == (
        "pruner.n_startup_trials: unknown key; allowed: type")
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: hyperband, interval_steps: 2}\n") == (
        "pruner.interval_steps: unknown key; allowed: type, min_resource, reduction_factor")
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: median, interval_steps: 0}\n").startswith(
        "pruner.interval_steps: must be")


def test_lars_parameters_on_a_plain_arm(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "arms: [{optimizer: sgd, space: {trust_coefficient: 0.01}}]\n")
    assert msg == "arms[0].space.trust_coefficient: does not apply to this arm (LARS arms only)"


def test_duplicate_arm_names_and_bad_names(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "arms: [sgd, sgd]\n") == "arms: arm names must be distinct, 'sgd' appears 2 times"
    assert spec_error(tmp_path, "name: a/b\nobjective: {epochs: 1}\n") == "name: must be letters, digits and _.+- (no '/'), got 'a/b'"


def test_missing_required_keys(tmp_path):
    assert spec_error(tmp_path, "objective: {epochs: 1}\n") == "name: required (studies are stored as <name>/<arm>)"
    assert spec_error(tmp_path, "name: t\nobjective: {dataset: cifar10}\n") == "objective.epochs: required (epochs per trial)"


def test_warmup_longer_than_training(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {warmup_epochs: {low: 1, high: 8}}\n")
    assert msg == "space.warmup_epochs: must be <= objective.epochs=4, got {'low': 1.0, 'high': 8.0}"


def test_invalid_yaml_and_missing_file(tmp_path):
    msg = spec_error(tmp_path, "name: [unclosed\n")
    assert re.match(r"not valid YAML: line \d+, column \d+: ", msg), msg
    with pytest.raises(SpecError, match=r"nope\.yaml: cannot read the study file \(No such file or directory\)"):
        load_spec(tmp_path / "nope.yaml")


def test_objective_rejected_by_objectives_names_the_key(tmp_path):
    msg = spec_error(tmp_path, "name: t\nobjective: {epochs: 2, dataset: mnist}\n")
    assert msg.startswith("objective.dataset: "), msg


@pytest.mark.parametrize("name", ["quickstart.yaml", "vgg16-cifar10.yaml"])
def test_shipped_study_files_validate(name):
    from pathlib import Path

    spec = load_spec(Path(__file__).resolve().parents[2] / "studies" / name)
    assert [a.name for a in spec.arms] == list(DEFAULT_ARMS)
    assert spec.budget.trials >= 3 and spec.sampler.type == "tpe" and spec.pruner.type == "median"


def test_cmaes_sampler_needs_its_package(tmp_path):
    try:
        import cmaes  # noqa: F401
    except ImportError:
        assert spec_error(tmp_path, MINIMAL + "sampler: cmaes\n") == (
            "sampler.type: 'cmaes' needs the cmaes package: pip install cmaes")
    else:
        assert load_spec(write_study(tmp_path, MINIMAL + "sampler: cmaes\n")).sampler.type == "cmaes"
