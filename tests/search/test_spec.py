"""Study files: defaults, and one test per class of schema error with its exact message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from search_fakes import write_study

from search.errors import SpecError
from search.spec.space import Choice, Fixed, Range
from search.spec.study_file import DEFAULT_ARMS, load_spec, parse_duration

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
    return message[len(f"{path}: ") :]


def test_minimal_file_gets_the_seed_six_arms_and_the_default_space(tmp_path):
    spec = load_spec(write_study(tmp_path, MINIMAL))
    assert [a.name for a in spec.arms] == list(DEFAULT_ARMS)
    assert [(a.optimizer, a.lars) for a in spec.arms] == [
        ("sgd", False),
        ("sgd", True),
        ("rmsprop", False),
        ("rmsprop", True),
        ("adam", False),
        ("adam", True),
    ]
    sgd, sgd_lars, rmsprop, _, adam, adam_lars = spec.arms
    # four decades around each optimizer's usual lr (the registry's)
    assert sgd.space.params["lr"] == Range(1e-3, 10.0, log=True)
    assert adam.space.params["lr"] == Range(1e-5, 1e-1, log=True)
    assert "trust_coefficient" not in sgd.space.params and "lars_eps" not in sgd.space.params
    # four decades of lambda, centred on each LARS mode's usual value
    assert sgd_lars.space.params["trust_coefficient"] == Range(1e-4, 1.0, log=True)  # scales the gradient
    assert adam_lars.space.params["trust_coefficient"] == Range(1e-2, 100.0, log=True)  # scales Adam's update
    assert sgd.space.params["weight_decay"] == Range(1e-6, 1e-2, log=True)
    assert sgd.space.params["warmup_epochs"] == Range(0.0, 4.0)  # 0..5 epochs, at most the epochs
    assert "momentum" not in adam.space.params  # Adam has no momentum argument
    assert sgd.space.params["momentum"] == rmsprop.space.params["momentum"] == Fixed(0.9)
    assert sgd.space.schedule == Choice(("constant", "step", "multistep", "exponential", "cosine", "polynomial"))
    # each type's own params, in epochs, scaled to 4 epochs
    assert sgd.space.schedule_params["step"] == {"step_size": Fixed(1.333), "gamma": Fixed(0.1)}
    assert sgd.space.schedule_params["multistep"]["milestones"] == Fixed([2, 3])
    assert sgd.space.schedule_params["exponential"]["gamma"] == Fixed(0.01**0.25)
    assert spec.budget.trials == 20 and spec.budget.timeout is None
    assert (spec.sampler.type, spec.sampler.seed, spec.pruner.type) == ("tpe", 0, "median")
    assert spec.text == MINIMAL


def test_value_choice_and_range_forms_and_arm_overrides(tmp_path):
    spec = load_spec(
        write_study(
            tmp_path,
            """\
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
        """,
        )
    )
    sgd, adam = spec.arms
    assert sgd.space.params["lr"] == Choice((0.01, 0.1))
    assert sgd.space.params["weight_decay"] == Fixed(5e-4)
    assert sgd.space.params["warmup_epochs"] == Range(0.0, 2.0, step=0.5)
    assert adam.name == "adam-small" and adam.space.params["lr"] == Range(
        1e-5, 1e-3, log=True
    )  # "1e-5" (no dot) is a number
    assert sgd.space.schedule_params["step"]["step_size"] == Range(2.0, 6.0, step=2.0)  # epochs, fractional allowed
    assert sgd.space.schedule_params["multistep"]["milestones"] == Choice(([5, 8], [3]))
    assert set(sgd.space.schedule_params) == {"step", "multistep"}
    assert spec.budget.trials == 3 and spec.budget.timeout == 900.0


@pytest.mark.parametrize("text, expected", [("2h", 7200.0), ("90s", 90.0), ("1.5m", 90.0), (30, 30.0), (None, None)])
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
    assert msg == "space.momentum[1]: must be a number in [0, 1), got 1.0"


def test_unknown_optimizer(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "arms: [sgd, lamb+lars]\n")
    assert msg == "arms[1]: unknown optimizer 'lamb'; choose from sgd, rmsprop, adam, adamw, adagrad"


def test_unknown_scheduler(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: [cosine, onecycle]}}\n")
    assert msg == (
        "space.schedule.type[1]: unknown scheduler 'onecycle'; choose from constant, step, "
        "multistep, exponential, cosine, polynomial"
    )


def test_unknown_scheduler_parameter(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: step, step: {decay: 0.5}}}\n")
    assert msg == "space.schedule.step.decay: unknown key; allowed: step_size, gamma"


def test_scheduler_params_for_a_type_not_searched(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: cosine, step: {gamma: 0.5}}}\n")
    assert msg == "space.schedule.step: parameters given for 'step', which is not among space.schedule.type ['cosine']"


def test_milestone_beyond_training(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: multistep, multistep: {milestones: [2, 4]}}}\n")
    assert msg == (
        "space.schedule.multistep.milestones: config key 'schedule_params.milestones' must be a list of "
        "epochs each < epochs=4 (a decay at the end never happens), got [2, 4]"
    )


def test_negative_budget(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "budget: {trials: -3}\n")
    assert msg == "budget.trials: must be a positive integer (trials per arm), got -3"


def test_negative_timeout(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "budget: {timeout: -60}\n")
    assert msg == "budget.timeout: must be seconds >= 0, got -60"


def test_unknown_sampler_and_pruner(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "sampler: {type: grid}\n") == (
        "sampler.type: unknown sampler 'grid'; choose from tpe, random, qmc, cmaes, gp"
    )
    assert spec_error(tmp_path, MINIMAL + "pruner: asha\n") == (
        "pruner.type: unknown pruner 'asha'; choose from median, hyperband, none"
    )
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: none, n_startup_trials: 3}\n") == (
        "pruner.n_startup_trials: unknown key; allowed: type"
    )
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: hyperband, interval_steps: 2}\n") == (
        "pruner.interval_steps: unknown key; allowed: type, min_resource, reduction_factor"
    )
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: median, interval_steps: 0}\n").startswith(
        "pruner.interval_steps: must be"
    )


def test_lars_parameters_on_a_plain_arm(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "arms: [{optimizer: sgd, space: {trust_coefficient: 0.01}}]\n")
    assert msg == "arms[0].space.trust_coefficient: does not apply to this arm (LARS arms only)"


def test_duplicate_arm_names_and_bad_names(tmp_path):
    assert (
        spec_error(tmp_path, MINIMAL + "arms: [sgd, sgd]\n")
        == "arms: arm names must be distinct, 'sgd' appears 2 times"
    )
    assert (
        spec_error(tmp_path, "name: a/b\nobjective: {epochs: 1}\n")
        == "name: must be letters, digits and _.+- (no '/'), got 'a/b'"
    )
    # #26 item 13: a block scalar ends in a newline, which `$` let through
    assert (
        spec_error(tmp_path, "name: |\n  q\nobjective: {epochs: 1}\n")
        == "name: must be letters, digits and _.+- (no '/'), got 'q\\n'"
    )
    assert spec_error(tmp_path, MINIMAL + 'arms: [{name: "x\\n", optimizer: sgd}]\n').endswith("got 'x\\n'")


def test_missing_required_keys(tmp_path):
    assert spec_error(tmp_path, "objective: {epochs: 1}\n") == "name: required (studies are stored as <name>/<arm>)"
    assert (
        spec_error(tmp_path, "name: t\nobjective: {dataset: cifar10}\n")
        == "objective.epochs: required (epochs per trial)"
    )


def test_warmup_longer_than_training(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {warmup_epochs: {low: 1, high: 8}}\n")
    assert msg == (
        "space.warmup_epochs: config key 'warmup_epochs' must be a number in [0, epochs=4], got 8.0 "
        "(a trial of arm 'sgd' can draw warmup_epochs=8.0)"
    )


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
            "sampler.type: 'cmaes' needs the cmaes package: pip install cmaes"
        )
    else:
        assert load_spec(write_study(tmp_path, MINIMAL + "sampler: cmaes\n")).sampler.type == "cmaes"


# --- a study file without a space (#14), and the default table ------------------------------

SCHEDULE_TYPES = ("constant", "step", "multistep", "exponential", "cosine", "polynomial")
NOSPACE = """\
name: nospace
objective: {dataset: fashion_mnist, model: vgg16, width: 0.125, n_train: 300, val_size: 100, epochs: 1,
            batch_size: 64, device: cpu}
arms: [sgd, sgd+lars]
budget: {trials: 1}
"""


def test_a_file_without_space_and_one_epoch_gets_every_schedule_type(tmp_path):
    # #14's opening bug: the built-in default space failed its own validation at epochs 1
    spec = load_spec(write_study(tmp_path, NOSPACE))
    sgd, sgd_lars = spec.arms
    assert sgd.space.schedule == Choice(("constant", "step", "multistep", "exponential", "cosine", "polynomial"))
    # 300 images / 64 = 4 steps per epoch: milestones 0.5 and 0.75 epochs fall on steps 2 and 3
    assert sgd.space.schedule_params["multistep"]["milestones"] == Fixed([0.5, 0.75])
    assert sgd.space.schedule_params["step"]["step_size"] == Fixed(0.333)
    assert sgd.space.params["warmup_epochs"] == Range(0.0, 1.0)  # 0..5 epochs, bounded by the epochs
    assert sgd_lars.space.origins["trust_coefficient"] == "default space.trust_coefficient"


def test_the_default_leaves_out_multistep_when_its_milestones_share_a_step(tmp_path):
    text = NOSPACE.replace("batch_size: 64", "batch_size: 256")  # one step per epoch
    sgd = load_spec(write_study(tmp_path, text)).arms[0]
    assert sgd.space.schedule == Choice(("constant", "step", "exponential", "cosine", "polynomial"))


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="needs apt-get install dataset-fashion-mnist"
)
def test_a_file_without_space_runs_end_to_end(tmp_path, capsys, monkeypatch):
    from search.cli.command import main

    monkeypatch.delenv("LARS_SEARCH_DATA", raising=False)
    import optuna

    study = write_study(tmp_path, NOSPACE)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert main(["run", str(study), "--storage", url, "-q"]) == 0
    for arm, lam in (("sgd", None), ("sgd+lars", (1e-4, 1.0))):
        (trial,) = optuna.load_study(study_name=f"nospace/{arm}", storage=url).trials
        assert trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # PRUNED: diverged
        config = trial.user_attrs["config"]
        assert 1e-3 <= config["lr"] <= 10.0 and 1e-6 <= config["weight_decay"] <= 1e-2
        assert 0.0 <= config["warmup_epochs"] <= 1.0 and config["schedule"] in SCHEDULE_TYPES
        if lam is None:
            assert "trust_coefficient" not in trial.params
        else:
            assert lam[0] <= config["trust_coefficient"] <= lam[1]
    assert "nospace" in capsys.readouterr().out


def test_lambda_default_covers_both_modes_when_the_mode_is_searched(tmp_path):
    spec = load_spec(write_study(tmp_path, MINIMAL + "arms: [sgd+lars]\nspace: {lars_mode: [gradient, update]}\n"))
    assert spec.arms[0].space.params["trust_coefficient"] == Range(1e-4, 100.0, log=True)
    spec = load_spec(write_study(tmp_path, MINIMAL + "arms: [sgd+lars]\nspace: {lars_mode: update}\n"))
    assert spec.arms[0].space.params["trust_coefficient"] == Range(1e-2, 100.0, log=True)


def test_defaults_for_a_new_optimizer_come_from_the_registry(tmp_path):
    spec = load_spec(write_study(tmp_path, MINIMAL + "arms: [adagrad, adamw+lars]\n"))
    adagrad, adamw_lars = spec.arms
    assert adagrad.space.params["lr"] == Range(1e-4, 1.0, log=True)  # around Adagrad's 1e-2
    assert adamw_lars.space.params["trust_coefficient"] == Range(1e-2, 100.0, log=True)  # update mode


# --- #16 item 7: a per-arm schedule keeps that schedule's defaults -----------------------------


@pytest.mark.parametrize("kind, param", [("step", "step_size"), ("multistep", "milestones"), ("exponential", "gamma")])
def test_an_arm_schedule_over_a_shared_one_keeps_its_defaults(tmp_path, kind, param):
    spec = load_spec(
        write_study(
            tmp_path,
            MINIMAL + f"arms: [sgd, {{optimizer: adam, space: {{schedule: {kind}}}}}]\nspace: {{schedule: cosine}}\n",
        )
    )
    sgd, adam = spec.arms
    assert sgd.space.schedule == Fixed("cosine") and adam.space.schedule == Fixed(kind)
    assert param in adam.space.schedule_params[kind]
    assert adam.space.origins[f"schedule.{kind}.{param}"] == f"default space.schedule.{kind}.{param}"


def test_an_arm_schedule_keeps_the_shared_parameters_of_its_type(tmp_path):
    arms = "arms: [sgd, {optimizer: adam, space: {schedule: step}}]\n"
    shared = "space: {schedule: {type: cosine, cosine: {final_lr_ratio: 0.1}}}\n"
    spec = load_spec(write_study(tmp_path, MINIMAL + arms + shared))
    adam = spec.arms[1]
    assert adam.space.schedule_params["step"] == {"step_size": Fixed(1.333), "gamma": Fixed(0.1)}
    shared = "space: {schedule: {type: [cosine, step], step: {step_size: 2}}}\n"
    spec = load_spec(write_study(tmp_path, MINIMAL + arms + shared))
    assert spec.arms[1].space.schedule_params["step"]["step_size"] == Fixed(2.0)


# --- #16 item 1: every value a trial can draw is checked before the database --------------------


def test_nesterov_with_a_momentum_choice_of_zero_is_rejected_whatever_comes_first(tmp_path):
    for momentum in ("[0.9, 0.0]", "[0.0, 0.9]", "{low: 0.0, high: 0.9}"):
        space = f"space: {{nesterov: true, momentum: {momentum}}}\n"
        msg = spec_error(tmp_path, MINIMAL + "arms: [sgd]\nsampler: random\n" + space)
        assert msg.startswith(
            "space.nesterov: config key 'nesterov' can only be true with optimizer 'sgd' and "
            "momentum > 0, got optimizer 'sgd' and momentum 0.0"
        ), msg
        if momentum == "[0.9, 0.0]":  # not the first value: the message says which draw
            assert msg.endswith("(a trial of arm 'sgd' can draw momentum=0.0)"), msg
    msg = spec_error(tmp_path, MINIMAL + "arms: [sgd]\nspace: {nesterov: [false, true], momentum: [0.9, 0.0]}\n")
    assert msg.endswith("(a trial of arm 'sgd' can draw momentum=0.0, nesterov=True)"), msg


@pytest.mark.parametrize(
    "key, value, expected",
    [
        (
            "n_train",
            10_000_000,
            "objective.n_train: config key 'n_train' must be <= the 55000 images of fashion_mnist "
            "left after the val_size=5000 hold-out, got 10000000",
        ),
        (
            "val_size",
            70_000,
            "objective.val_size: config key 'val_size' must be < the 60000 training images of fashion_mnist, got 70000",
        ),
    ],
)
def test_sizes_beyond_the_data_set_are_rejected_before_any_trial(tmp_path, key, value, expected):
    text = f"name: t\nobjective: {{dataset: fashion_mnist, epochs: 2, {key}: {value}}}\n"
    assert spec_error(tmp_path, text) == expected


def test_cuda_device_index_on_a_machine_without_it_is_one_line_before_any_trial(tmp_path, monkeypatch):
    import torch

    from search.errors import UserError
    from search.run.preflight import check_device

    spec = load_spec(write_study(tmp_path, "name: t\nobjective: {epochs: 2, device: 'cuda:0'}\n"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match=r"objective.device is 'cuda:0', but CUDA is not available on this machine"):
        check_device(spec, None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    spec = load_spec(write_study(tmp_path, "name: t\nobjective: {epochs: 2, device: 'cuda:1'}\n"))
    with pytest.raises(UserError, match=r"objective.device is 'cuda:1', but this machine has 1 CUDA device\(s\)"):
        check_device(spec, None)


def test_what_lars_rejects_at_run_time_is_rejected_here_in_lars_words(tmp_path):
    # the paper's momentum form needs an SGD base: lars.LARS's own check says so, before any trial
    space = "space: {lars_mode: gradient, lars_momentum_form: paper}\n"
    msg = spec_error(tmp_path, MINIMAL + "arms: [rmsprop+lars]\n" + space)
    assert msg.startswith(
        "arms[0] (rmsprop+lars): config keys 'optimizer', 'weight_decay' and the lars_* keys make "
        "an optimizer that lars.LARS rejects: param group 0: lars_momentum_form 'paper' needs a "
        "torch.optim.SGD base, got RMSprop"
    ), msg
    # adamw + gradient mode + weight decay: lars takes it now (decoupled decay stays decoupled), so the file passes
    load_spec(write_study(tmp_path, MINIMAL + "arms: [adamw+lars]\nspace: {lars_mode: gradient}\n"))


def test_milestones_the_user_wrote_are_named_in_the_message(tmp_path):
    msg = spec_error(
        tmp_path,
        "name: t\nobjective: {epochs: 1}\nspace: {schedule: {type: multistep, multistep: {milestones: [1]}}}\n",
    )
    assert msg.startswith(
        "space.schedule.multistep.milestones: config key 'schedule_params.milestones' must be a "
        "list of epochs each < epochs=1 (a decay at the end never happens), got [1]"
    ), msg


def test_milestones_that_round_to_one_step_are_an_error(tmp_path):
    objective = "objective: {dataset: fashion_mnist, epochs: 2, n_train: 300, batch_size: 128}\n"
    space = "space: {schedule: {type: multistep, multistep: {milestones: [[1], [0.5, 0.7]]}}}\n"
    msg = spec_error(tmp_path, "name: t\n" + objective + "arms: [sgd]\n" + space)
    assert msg.startswith(
        "space.schedule.multistep.milestones: config key 'schedule_params.milestones' must be "
        "epochs that fall on distinct optimizer steps (2 steps per epoch: [0.5, 0.7] -> "
        "steps [1, 1]"
    ), msg


def test_step_size_in_fractional_epochs_is_accepted_as_in_train_configs(tmp_path):
    space = "space: {schedule: {type: step, step: {step_size: 2.5}}}\n"
    spec = load_spec(write_study(tmp_path, MINIMAL + "arms: [sgd]\n" + space))
    assert spec.arms[0].space.schedule_params["step"]["step_size"] == Fixed(2.5)


# --- lars_momentum_form: searchable on LARS arms in gradient mode -------------------------------


def test_momentum_form_is_searchable_on_lars_arms_in_gradient_mode(tmp_path):
    spec = load_spec(
        write_study(
            tmp_path, MINIMAL + "arms: [sgd+lars, adam+lars, sgd]\nspace: {lars_momentum_form: [torch, paper]}\n"
        )
    )
    sgd_lars, adam_lars, sgd = spec.arms
    assert sgd_lars.space.params["lars_momentum_form"] == Choice(("torch", "paper"))
    assert "lars_momentum_form" not in adam_lars.space.params  # update mode: the shared key does not apply
    assert "lars_momentum_form" not in sgd.space.params
    msg = spec_error(tmp_path, MINIMAL + "arms: [{optimizer: adam, lars: true, space: {lars_momentum_form: paper}}]\n")
    assert msg == "arms[0].space.lars_momentum_form: does not apply to this arm (LARS arms in gradient mode only)"
    msg = spec_error(
        tmp_path, MINIMAL + "arms: [sgd+lars]\nspace: {lars_mode: [gradient, update], lars_momentum_form: paper}\n"
    )
    assert "lars.LARS rejects: param group 0: lars_momentum_form 'paper' needs lars_mode 'gradient'" in msg, msg


# --- #16 item 8: plausible YAML is not silently misread -----------------------------------------


@pytest.mark.parametrize("word", ["false", "off", "no", "{type: false}"])
def test_pruner_false_means_no_pruner(tmp_path, word):
    assert load_spec(write_study(tmp_path, MINIMAL + f"pruner: {word}\n")).pruner.type == "none"


def test_pruner_true_is_rejected(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "pruner: true\n") == (
        "pruner: must be a pruner type (median, hyperband, none), false or a mapping, got true"
    )


def test_a_repeated_key_is_an_error_naming_it(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {lr: 0.1}\nbudget: {trials: 2}\nspace: {lr: 0.2}\n")
    assert msg == (
        "not valid YAML: line 5, column 1: key 'space' is written twice (first on line 3); "
        "YAML would keep only the last value"
    )
    msg = spec_error(tmp_path, MINIMAL + "budget: {trials: 2, trials: 3}\n")
    assert "key 'trials' is written twice" in msg


def test_a_step_that_does_not_divide_the_range_is_one_line(tmp_path, recwarn):
    msg = spec_error(tmp_path, MINIMAL + "space: {lr: {low: 0.01, high: 0.1, step: 0.5}}\n")
    assert msg == (
        "space.lr.step: must divide high - low = 0.09 into whole steps, got 0.5 "
        "(e.g. {low: 0.01, high: 0.51, step: 0.5})"
    )
    msg = spec_error(tmp_path, MINIMAL + "space: {warmup_epochs: {low: 0, high: 1, step: 0.3}}\n")
    assert msg.startswith("space.warmup_epochs.step: must divide high - low = 1 into whole steps, got 0.3")
    assert not [w for w in recwarn.list if "optuna" in str(w.filename) or "divisible" in str(w.message)]
    spec = load_spec(write_study(tmp_path, MINIMAL + "space: {warmup_epochs: {low: 0, high: 0.9, step: 0.3}}\n"))
    assert spec.arms[0].space.params["warmup_epochs"] == Range(0.0, 0.9, step=0.3)


@pytest.mark.parametrize("bound", [".inf", "-.inf", ".nan"])
def test_infinite_or_nan_bounds_are_rejected(tmp_path, bound):
    msg = spec_error(tmp_path, MINIMAL + f"space: {{lr: {{low: 0.001, high: {bound}, log: true}}}}\n")
    assert msg.startswith("space.lr.high: must be a finite number (a number > 0), got "), msg


def test_lr_without_a_dot_is_a_number_in_study_and_train_files_alike(tmp_path):
    from objectives import validate_config
    from search.results.export import load_config_file

    spec = load_spec(write_study(tmp_path, MINIMAL + "space: {lr: 1e-3}\n"))
    assert spec.arms[0].space.params["lr"] == Fixed(0.001)
    path = write_study(tmp_path, "lr: 1e-3\nweight_decay: 5E-4\nepochs: 2\n", name="train.yaml")
    config = load_config_file(str(path))
    assert config["lr"] == 0.001 and config["weight_decay"] == 0.0005
    assert validate_config(config)["lr"] == 0.001


def test_a_train_config_with_a_repeated_key_is_an_error(tmp_path):
    from search.results.export import load_config_file

    path = write_study(tmp_path, "lr: 0.1\nlr: 0.2\n", name="train.yaml")
    with pytest.raises(ValueError, match=r"train\.yaml: not valid YAML: line 2, column 1: key 'lr' is written twice"):
        load_config_file(str(path))


# --- #16 item 13: the pruner's lengths against the epochs -----------------------------------------


def test_hyperband_min_resource_beyond_the_epochs_is_rejected(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: hyperband, min_resource: 5}\n") == (
        "pruner.min_resource: must be an integer in [1, 4], got 5"
    )


def test_median_warmup_of_all_epochs_is_rejected(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "pruner: {type: median, n_warmup_steps: 4}\n") == (
        "pruner.n_warmup_steps: must be < objective.epochs=4 (else no trial is ever judged), got 4"
    )


# --- #16 item 14: small things ----------------------------------------------------------------------


def test_timeout_zero_is_rejected_with_the_reason(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "budget: {timeout: 0}\n") == (
        "budget.timeout: must be > 0 seconds (0 would run nothing; leave it out for no limit)"
    )


def test_an_empty_section_is_named_null_once(tmp_path):
    assert spec_error(tmp_path, "name: t\nobjective:\n") == "objective: must be a mapping, got null (nothing written)"
    assert spec_error(tmp_path, MINIMAL + "arms:\n") == "arms: must be a non-empty list, got null (nothing written)"


def test_no_empty_allowed_list(tmp_path):
    msg = spec_error(tmp_path, MINIMAL + "space: {schedule: {type: constant, constant: {gamma: 0.5}}}\n")
    assert msg == "space.schedule.constant.gamma: unknown key; schedule 'constant' has no parameters"
    msg = spec_error(tmp_path, MINIMAL + "pruner: {type: none, n_startup_trials: 3}\n")
    assert msg == "pruner.n_startup_trials: unknown key; allowed: type"


def test_a_sampler_seed_numpy_cannot_take_is_one_line(tmp_path):
    assert spec_error(tmp_path, MINIMAL + "sampler: {seed: 4294967296}\n") == (
        "sampler.seed: must be an integer in [0, 2147483647], got 4294967296"
    )


def test_objective_values_are_checked_by_the_rule_train_uses(tmp_path):
    # objectives' rule: batch norm needs two images per batch (a study file once accepted 1)
    assert spec_error(tmp_path, "name: t\nobjective: {epochs: 2, batch_size: 1}\n") == (
        "objective.batch_size: config key 'batch_size' must be an integer >= 2, got 1"
    )
    assert spec_error(tmp_path, "name: t\nobjective: {epochs: 0}\n") == (
        "objective.epochs: config key 'epochs' must be an integer >= 1, got 0"
    )


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.yaml")), ids=str)
def test_every_shipped_study_file_loads(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    if spec.name.startswith("fashion-mnist-verdict"):  # the verdict design measured in issue 23
        assert (spec.final.replicates, spec.budget.trials, spec.final.seeds) == (4, 6, 1)
