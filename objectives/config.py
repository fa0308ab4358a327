"""The plain config dict of one training run: defaults and validation.

A config is a flat ``dict`` of JSON-able values (the keys below). ``search`` builds one
per Optuna trial; the CLI builds one from a study file. :func:`validate_config` fills the
defaults from :data:`DEFAULT_CONFIG`, rejects unknown keys and checks every value, and
raises :class:`ConfigError` naming the key, the rule and the value.

Keys (units in the comments; ``schedule_params`` are in EPOCHS, converted to optimizer
steps by :mod:`objectives.optim`)::

    dataset          "fashion_mnist" | "cifar10"
    data_dir         None | str    (else $LARS_SEARCH_DATA, ~/.cache/torchvision, Debian's dir)
    n_train          None | int    images of the training split used (after the validation hold-out)
    val_size         int           images held out of the training set for validation
    model            "vgg11" | "vgg13" | "vgg16" | "vgg19"
    width            float         channel multiplier (1.0 = the paper's VGG)
    epochs           int
    batch_size       int           (the last, partial batch of an epoch is dropped)
    optimizer        "sgd" | "rmsprop" | "adam" | "adamw" | "adagrad"
    lr               float         base learning rate alpha
    momentum         float         SGD and RMSprop only, in [0, 1)
    nesterov         bool          SGD only
    weight_decay     float         beta (torch's ``weight_decay`` of the decayed group)
    lars             bool          wrap the optimizer in lars.LARS
    trust_coefficient float        lambda
    lars_eps         float         epsilon
    lars_mode        None | "gradient" | "update"
    lars_clip        bool
    schedule         "constant" | "step" | "multistep" | "exponential" | "cosine" | "polynomial"
    schedule_params  dict          step: {step_size, gamma}; multistep: {milestones, gamma};
                                   exponential: {gamma (per epoch)}; cosine: {final_lr_ratio};
                                   polynomial: {power, final_lr_ratio}
    warmup_epochs    float         linear warm-up length
    seed             int
    device           "auto" | "cpu" | "cuda" | "cuda:N"
    precision        "auto" | "fp32" | "bf16"   (auto: bf16 autocast on CUDA, fp32 on CPU)
    compile          bool          torch.compile the model
    evaluate_test    bool          also measure test accuracy at the end
    progress         bool          tqdm bars (False in workers)
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ConfigError",
    "DEFAULT_CONFIG",
    "DATASETS",
    "MODELS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SCHEDULE_PARAMS",
    "validate_config",
]


class ConfigError(ValueError):
    """A config key is unknown, missing a required part, or has a value outside its rule."""


DATASETS = ("fashion_mnist", "cifar10")
MODELS = ("vgg11", "vgg13", "vgg16", "vgg19")
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw", "adagrad")
SCHEDULES = ("constant", "step", "multistep", "exponential", "cosine", "polynomial")
PRECISIONS = ("auto", "fp32", "bf16")
LARS_MODES = (None, "gradient", "update")

#: For each schedule: (required params, optional params with their defaults). Units: epochs.
SCHEDULE_PARAMS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": ((), {}),
    "step": (("step_size",), {"gamma": 0.1}),
    "multistep": (("milestones",), {"gamma": 0.1}),
    "exponential": (("gamma",), {}),
    "cosine": ((), {"final_lr_ratio": 0.0}),
    "polynomial": ((), {"power": 2.0, "final_lr_ratio": 0.0}),
}

#: The seed's experiment (VGG-16 with batch norm, CIFAR-10, SGD) with the usual recipe
#: (lr 0.1, momentum 0.9, weight decay 5e-4, batch 128) and the LARS paper's lambda.
DEFAULT_CONFIG: dict[str, Any] = {
    "dataset": "cifar10",
    "data_dir": None,
    "n_train": None,
    "val_size": 5000,
    "model": "vgg16",
    "width": 1.0,
    "epochs": 100,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-4,
    "lars": False,
    "trust_coefficient": 1e-3,
    "lars_eps": 1e-8,
    "lars_mode": None,
    "lars_clip": False,
    "schedule": "cosine",
    "schedule_params": {},
    "warmup_epochs": 0.0,
    "seed": 0,
    "device": "auto",
    "precision": "auto",
    "compile": False,
    "evaluate_test": False,
    "progress": True,
}


def _fail(key: str, rule: str, value: Any) -> ConfigError:
    return ConfigError(f"config key {key!r} must be {rule}, got {value!r}")


def _int(key: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(key, f"an integer >= {minimum}", value)
    return int(value)


def _number(key: str, value: Any, rule: str, ok) -> float:
    """A finite real number (ints accepted, bools and NaN rejected) for which ``ok`` holds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, rule, value)
    value = float(value)
    if not math.isfinite(value) or not ok(value):
        raise _fail(key, rule, value)
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "true or false", value)
    return value


def _choice(key: str, value: Any, choices: tuple) -> Any:
    if value not in choices or isinstance(value, bool):
        raise _fail(key, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _schedule_params(schedule: str, params: Any) -> dict[str, Any]:
    key = "schedule_params"
    if not isinstance(params, Mapping):
        raise _fail(key, "a mapping", params)
    required, optional = SCHEDULE_PARAMS[schedule]
    allowed = set(required) | set(optional)
    for name in params:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(
                f"config key 'schedule_params.{name}' is not a parameter of schedule {schedule!r} "
                f"(its parameters: {known})"
            )
    for name in required:
        if name not in params:
            raise ConfigError(f"config key 'schedule_params.{name}' is required by schedule {schedule!r}")
    out = dict(optional)
    out.update(params)
    for name, value in out.items():
        sub = f"schedule_params.{name}"
        if name == "gamma":
            out[name] = _number(sub, value, "a number in (0, 1]", lambda v: 0.0 < v <= 1.0)
        elif name == "step_size":
            out[name] = _number(sub, value, "a number of epochs > 0", lambda v: v > 0.0)
        elif name == "final_lr_ratio":
            out[name] = _number(sub, value, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)
        elif name == "power":
            out[name] = _number(sub, value, "a number > 0", lambda v: v > 0.0)
        elif name == "milestones":
            rule = "a non-empty, strictly increasing list of epochs > 0"
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
                raise _fail(sub, rule, value)
            stones = [_number(sub, v, rule, lambda v: v > 0.0) for v in value]
            if any(b <= a for a, b in zip(stones, stones[1:])):
                raise _fail(sub, rule, list(value))
            out[name] = stones
    return out


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a complete, checked copy of ``config`` with defaults from :data:`DEFAULT_CONFIG`.

    Raises:
        ConfigError: for an unknown key (with the closest known key, if any) or a value
            outside its rule; the message names the key, the rule and the value.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"config must be a mapping of keys to values, got {type(config).__name__}")
    for key in config:
        if key not in DEFAULT_CONFIG:
            close = difflib.get_close_matches(str(key), DEFAULT_CONFIG, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"config key {key!r} is not a known key{hint}")
    c = copy.deepcopy(DEFAULT_CONFIG)
    c.update(copy.deepcopy(dict(config)))

    c["dataset"] = _choice("dataset", c["dataset"], DATASETS)
    if c["data_dir"] is not None and (not isinstance(c["data_dir"], str) or not c["data_dir"]):
        raise _fail("data_dir", "null or a non-empty path string", c["data_dir"])
    if c["n_train"] is not None:
        c["n_train"] = _int("n_train", c["n_train"], minimum=1)
    c["val_size"] = _int("val_size", c["val_size"], minimum=1)
    c["model"] = _choice("model", c["model"], MODELS)
    c["width"] = _number("width", c["width"], "a number > 0", lambda v: v > 0.0)
    c["epochs"] = _int("epochs", c["epochs"], minimum=1)
    # Batch norm needs two images per batch to estimate a variance.
    c["batch_size"] = _int("batch_size", c["batch_size"], minimum=2)
    if c["n_train"] is not None and c["n_train"] < c["batch_size"]:
        raise ConfigError(
            f"config key 'n_train' must be >= batch_size ({c['batch_size']}) so that an epoch has "
            f"at least one full batch, got {c['n_train']!r}"
        )

    c["optimizer"] = _choice("optimizer", c["optimizer"], OPTIMIZERS)
    c["lr"] = _number("lr", c["lr"], "a number > 0", lambda v: v > 0.0)
    c["momentum"] = _number("momentum", c["momentum"], "a number in [0, 1)", lambda v: 0.0 <= v < 1.0)
    c["nesterov"] = _bool("nesterov", c["nesterov"])
    if c["nesterov"] and (c["optimizer"] != "sgd" or c["momentum"] == 0.0):
        raise ConfigError(
            f"config key 'nesterov' can only be true with optimizer 'sgd' and momentum > 0, "
            f"got optimizer {c['optimizer']!r} and momentum {c['momentum']!r}"
        )
    c["weight_decay"] = _number("weight_decay", c["weight_decay"], "a number >= 0", lambda v: v >= 0.0)

    c["lars"] = _bool("lars", c["lars"])
    c["trust_coefficient"] = _number(
        "trust_coefficient", c["trust_coefficient"], "a number > 0", lambda v: v > 0.0
    )
    c["lars_eps"] = _number("lars_eps", c["lars_eps"], "a number >= 0", lambda v: v >= 0.0)
    c["lars_mode"] = _choice("lars_mode", c["lars_mode"], LARS_MODES)
    c["lars_clip"] = _bool("lars_clip", c["lars_clip"])

    c["schedule"] = _choice("schedule", c["schedule"], SCHEDULES)
    c["schedule_params"] = _schedule_params(c["schedule"], c["schedule_params"])
    c["warmup_epochs"] = _number(
        "warmup_epochs", c["warmup_epochs"], f"a number in [0, epochs={c['epochs']}]",
        lambda v: 0.0 <= v <= c["epochs"],
    )

    c["seed"] = _int("seed", c["seed"], minimum=0)
    if not isinstance(c["device"], str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", c["device"]):
        raise _fail("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", c["device"])
    c["precision"] = _choice("precision", c["precision"], PRECISIONS)
    c["compile"] = _bool("compile", c["compile"])
    c["evaluate_test"] = _bool("evaluate_test", c["evaluate_test"])
    c["progress"] = _bool("progress", c["progress"])
    return c
