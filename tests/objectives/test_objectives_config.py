"""objectives.config: defaults, and one ConfigError per validation rule, pinned by regex."""

import json
import math

import pytest

from objectives.config import DEFAULT_CONFIG, ConfigError, validate_config


def test_defaults_fill_every_key_and_the_result_is_json_able():
    c = validate_config({})
    assert set(c) == set(DEFAULT_CONFIG)
    assert c["model"] == "vgg16" and c["batch_size"] == 128 and c["lr"] == 0.1
    assert json.loads(json.dumps(c)) == c


def test_validating_a_validated_config_changes_nothing():
    once = validate_config({"schedule": "step", "schedule_params": {"step_size": 30}, "lr": 1, "n_train": 500})
    assert validate_config(once) == once


def test_validate_copies_and_does_not_mutate_the_input():
    given = {"schedule": "multistep", "schedule_params": {"milestones": [30, 60]}}
    c = validate_config(given)
    assert given == {"schedule": "multistep", "schedule_params": {"milestones": [30, 60]}}
    assert c["schedule_params"] == {"milestones": [30.0, 60.0], "gamma": 0.1}
    c["schedule_params"]["milestones"].append(90)
    assert given["schedule_params"]["milestones"] == [30, 60]


def test_ints_are_accepted_for_floats_and_become_floats():
    c = validate_config({"lr": 1, "width": 2, "weight_decay": 0, "warmup_epochs": 1})
    assert (c["lr"], c["width"], c["weight_decay"], c["warmup_epochs"]) == (1.0, 2.0, 0.0, 1.0)
    assert all(isinstance(c[k], float) for k in ("lr", "width", "weight_decay", "warmup_epochs"))


def test_schedule_optional_params_take_their_defaults():
    assert validate_config({"schedule": "polynomial"})["schedule_params"] == {"power": 2.0, "final_lr_ratio": 0.0}
    assert validate_config({"schedule": "step", "schedule_params": {"step_size": 30}})["schedule_params"] == {
        "step_size": 30.0,
        "gamma": 0.1,
    }


def test_valid_non_default_values_pass():
    c = validate_config(
        {
            "dataset": "fashion_mnist",
            "data_dir": "/data",
            "n_train": 4000,
            "val_size": 1000,
            "model": "vgg11",
            "optimizer": "adamw",
            "lars": True,
            "lars_mode": "update",
            "lars_clip": True,
            "lars_eps": 0,
            "device": "cuda:1",
            "precision": "bf16",
            "compile": True,
            "evaluate_test": True,
            "progress": False,
            "nesterov": False,
        }
    )
    assert c["device"] == "cuda:1" and c["lars_mode"] == "update" and c["lars_eps"] == 0.0


def test_config_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"config must be a mapping of keys to values, got list"):
        validate_config([("lr", 0.1)])


def test_unknown_key_is_named_with_the_closest_known_key():
    with pytest.raises(ConfigError, match=r"config key 'learning_rate' is not a known key"):
        validate_config({"learning_rate": 0.1})
    with pytest.raises(
        ConfigError, match=r"config key 'weight_decy' is not a known key \(did you mean 'weight_decay'\?\)"
    ):
        validate_config({"weight_decy": 0.1})


RULES = [
    ({"dataset": "mnist"}, r"'dataset' must be one of 'fashion_mnist', 'cifar10', got 'mnist'"),
    ({"data_dir": ""}, r"'data_dir' must be null or a non-empty path string, got ''"),
    ({"data_dir": 3}, r"'data_dir' must be null or a non-empty path string, got 3"),
    ({"n_train": 0}, r"'n_train' must be an integer >= 1, got 0"),
    ({"n_train": 10.0}, r"'n_train' must be an integer >= 1, got 10.0"),
    ({"val_size": 0}, r"'val_size' must be an integer >= 1, got 0"),
    ({"val_size": True}, r"'val_size' must be an integer >= 1, got True"),
    ({"model": "resnet18"}, r"'model' must be one of 'vgg11', 'vgg13', 'vgg16', 'vgg19', got 'resnet18'"),
    ({"width": 0}, r"'width' must be a number > 0, got 0.0"),
    ({"width": "1"}, r"'width' must be a number > 0, got '1'"),
    ({"epochs": 0}, r"'epochs' must be an integer >= 1, got 0"),
    ({"batch_size": 1}, r"'batch_size' must be an integer >= 2, got 1"),
    ({"n_train": 100, "batch_size": 128}, r"'n_train' must be >= batch_size \(128\) .* got 100"),
    ({"optimizer": "lamb"}, r"'optimizer' must be one of 'sgd', 'rmsprop', 'adam', 'adamw', 'adagrad', got 'lamb'"),
    ({"lr": 0.0}, r"'lr' must be a number > 0, got 0.0"),
    ({"lr": math.nan}, r"'lr' must be a finite number \(a number > 0\), got nan"),
    ({"lr": math.inf}, r"'lr' must be a finite number \(a number > 0\), got inf"),
    ({"lr": True}, r"'lr' must be a number > 0, got True"),
    ({"momentum": 1.0}, r"'momentum' must be a number in \[0, 1\), got 1.0"),
    ({"momentum": -0.1}, r"'momentum' must be a number in \[0, 1\), got -0.1"),
    ({"nesterov": 1}, r"'nesterov' must be true or false, got 1"),
    (
        {"nesterov": True, "optimizer": "adam"},
        r"'nesterov' can only be true with optimizer 'sgd' and momentum > 0, got optimizer 'adam'",
    ),
    ({"nesterov": True, "momentum": 0.0}, r"'nesterov' can only be true .* and momentum 0.0"),
    ({"weight_decay": -1e-4}, r"'weight_decay' must be a number >= 0, got -0.0001"),
    ({"lars": "yes"}, r"'lars' must be true or false, got 'yes'"),
    ({"trust_coefficient": 0.0}, r"'trust_coefficient' must be a number > 0, got 0.0"),
    ({"lars_eps": -1e-9}, r"'lars_eps' must be a number >= 0, got -1e-09"),
    ({"lars_mode": "trust"}, r"'lars_mode' must be one of None, 'gradient', 'update', got 'trust'"),
    ({"lars_clip": None}, r"'lars_clip' must be true or false, got None"),
    ({"schedule": "onecycle"}, r"'schedule' must be one of 'constant', 'step', .* got 'onecycle'"),
    ({"schedule_params": [1]}, r"'schedule_params' must be a mapping, got \[1\]"),
    (
        {"schedule": "cosine", "schedule_params": {"gamma": 0.5}},
        r"'schedule_params.gamma' is not a parameter of schedule 'cosine' \(its parameters: final_lr_ratio\)",
    ),
    ({"schedule": "step"}, r"'schedule_params.step_size' is required by schedule 'step'"),
    ({"schedule": "multistep"}, r"'schedule_params.milestones' is required by schedule 'multistep'"),
    ({"schedule": "exponential"}, r"'schedule_params.gamma' is required by schedule 'exponential'"),
    (
        {"schedule": "exponential", "schedule_params": {"gamma": 1.5}},
        r"'schedule_params.gamma' must be a number in \(0, 1\], got 1.5",
    ),
    (
        {"schedule": "step", "schedule_params": {"step_size": 0}},
        r"'schedule_params.step_size' must be a number of epochs > 0, got 0.0",
    ),
    (
        {"schedule": "cosine", "schedule_params": {"final_lr_ratio": 2}},
        r"'schedule_params.final_lr_ratio' must be a number in \[0, 1\], got 2.0",
    ),
    (
        {"schedule": "polynomial", "schedule_params": {"power": 0}},
        r"'schedule_params.power' must be a number > 0, got 0.0",
    ),
    (
        {"schedule": "multistep", "schedule_params": {"milestones": [60, 30]}},
        r"'schedule_params.milestones' must be a non-empty, strictly increasing list of epochs > 0, got \[60, 30\]",
    ),
    (
        {"schedule": "multistep", "schedule_params": {"milestones": []}},
        r"'schedule_params.milestones' must be a non-empty",
    ),
    ({"warmup_epochs": 11, "epochs": 10}, r"'warmup_epochs' must be a number in \[0, epochs=10\], got 11.0"),
    ({"seed": -1}, r"'seed' must be an integer >= 0, got -1"),
    ({"device": "gpu"}, r"'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ({"precision": "fp16"}, r"'precision' must be one of 'auto', 'fp32', 'bf16', got 'fp16'"),
    ({"compile": "no"}, r"'compile' must be true or false, got 'no'"),
    ({"evaluate_test": 0}, r"'evaluate_test' must be true or false, got 0"),
    ({"progress": None}, r"'progress' must be true or false, got None"),
    ({"lars_momentum_form": "sutskever"}, r"'lars_momentum_form' must be one of 'torch', 'paper', got 'sutskever'"),
    # #16 item 1: sizes beyond the data set are rejected before any data is read
    (
        {"dataset": "fashion_mnist", "n_train": 10_000_000},
        r"'n_train' must be <= the 55000 images of fashion_mnist left after the val_size=5000 hold-out, got 10000000",
    ),
    (
        {"dataset": "fashion_mnist", "val_size": 70_000},
        r"'val_size' must be < the 60000 training images of fashion_mnist, got 70000",
    ),
    ({"dataset": "cifar10", "val_size": 50_000}, r"'val_size' must be < the 50000 training images of cifar10"),
    # #16 item 13: a milestone at the end, and milestones that round to one step, are errors
    (
        {"schedule": "multistep", "schedule_params": {"milestones": [1]}, "epochs": 1},
        r"'schedule_params.milestones' must be a list of epochs each < epochs=1 .*, got \[1\]",
    ),
    (
        {
            "dataset": "fashion_mnist",
            "n_train": 300,
            "batch_size": 128,
            "epochs": 2,
            "schedule": "multistep",
            "schedule_params": {"milestones": [0.5, 0.7]},
        },
        r"'schedule_params.milestones' must be epochs that fall on distinct optimizer steps \(2 steps per epoch: "
        r"\[0.5, 0.7\] -> steps \[1, 1\], so a decay would be lost\), got \[0.5, 0.7\]",
    ),
    (
        {"lars_momentum_form": "paper", "lars": False},
        r"'lars_momentum_form' can only be 'paper' with lars true, got lars false",
    ),
    # #16 item 13: what lars rejects at run time is rejected here, by lars's own check, in its words
    (
        {"lars_momentum_form": "paper", "lars": True, "optimizer": "adam"},
        r"make an optimizer that lars.LARS rejects: param group 0: lars_momentum_form 'paper' needs lars_mode 'gradient'",
    ),
    (
        {"lars_momentum_form": "paper", "lars": True, "optimizer": "rmsprop", "lars_mode": "gradient"},
        r"make an optimizer that lars.LARS rejects: param group 0: lars_momentum_form 'paper' needs a torch.optim.SGD",
    ),
]


@pytest.mark.parametrize("overrides, match", RULES, ids=[next(iter(o)) + f"-{i}" for i, (o, _) in enumerate(RULES)])
def test_each_rule_raises_config_error_naming_key_rule_and_value(overrides, match):
    with pytest.raises(ConfigError, match=r"config key " + match if match.startswith("'") else match):
        validate_config(overrides)


def test_step_size_in_epochs_may_be_fractional():
    c = validate_config({"schedule": "step", "schedule_params": {"step_size": 2.5}})
    assert c["schedule_params"] == {"gamma": 0.1, "step_size": 2.5}


def test_adamw_with_lars_in_gradient_mode_and_weight_decay_passes_as_lars_now_takes_it():
    c = validate_config({"optimizer": "adamw", "lars": True, "lars_mode": "gradient", "weight_decay": 1e-4})
    assert c["lars_mode"] == "gradient"


def test_momentum_form_defaults_to_torch_and_paper_passes_with_sgd_lars():
    assert validate_config({})["lars_momentum_form"] == "torch"
    assert validate_config({"lars": True, "lars_momentum_form": "paper"})["lars_momentum_form"] == "paper"


def test_steps_per_epoch_counts_full_batches_of_the_training_images():
    from objectives.config import steps_per_epoch

    assert steps_per_epoch(validate_config({"dataset": "fashion_mnist", "n_train": 300, "batch_size": 128})) == 2
    # all of CIFAR-10's 50000 training images but the 5000 held out, in batches of 128
    assert steps_per_epoch(validate_config({})) == 45000 // 128


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)
