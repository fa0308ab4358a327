"""The plain config dict of one training run: defaults and validation.

A config is a flat ``dict`` of JSON-able values (the keys below). ``search`` builds one
per Optuna trial; the CLI builds one from a study file. :func:`validate_config` fills the
defaults from :data:`DEFAULT_CONFIG`, rejects unknown keys and checks every value, and
raises :class:`ConfigError` naming the key, the rule and the value.

Keys (units in the comments; ``schedule_params`` are in EPOCHS, converted to optimizer
steps by :mod:`objectives.optim`). The choices of ``optimizer``, ``lars_mode``, ``schedule``
and ``dataset``, each schedule's parameters and their rules come from
:mod:`objectives.registry`::

    dataset          "fashion_mnist" | "cifar10"
    data_dir         None | str    (else $LARS_SEARCH_DATA, ~/.cache/torchvision, Debian's dir)
    n_train          None | int    images of the training split used (after the validation hold-out),
                                   at most the data set's training images minus val_size
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
    lars_momentum_form "torch" | "paper"  where lr sits in gradient mode: outside the momentum
                                   buffer (torch's SGD) or inside it (the paper's); "paper"
                                   only with lars (and, as lars.LARS says, gradient mode on SGD)
    schedule         "constant" | "step" | "multistep" | "exponential" | "cosine" | "polynomial"
    schedule_params  dict          step: {step_size (epochs), gamma}; multistep: {milestones
                                   (epochs, each < epochs, on distinct steps), gamma};
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

from .errors import ConfigError
from .registry import DATASETS, LARS_MODES, OPTIMIZERS, SCHEDULES, Rule, is_number

__all__ = [
    "ConfigError",
    "check_value",
    "coerce",
    "DEFAULT_CONFIG",
    "DATASETS",
    "MODELS",
    "MOMENTUM_FORMS",
    "OPTIMIZERS",
    "RULES",
    "SCHEDULES",
    "steps_per_epoch",
    "validate_config",
]


MODELS = ("vgg11", "vgg13", "vgg16", "vgg19")
PRECISIONS = ("auto", "fp32", "bf16")
MOMENTUM_FORMS = ("torch", "paper")


def _choices(values) -> Rule:
    return Rule("str", "one of " + ", ".join(repr(v) for v in values), values=tuple(values))


def _floats(text: str, ok) -> Rule:
    return Rule("float", text, ok)


#: The rule of every config key whose value stands alone (``None`` where allowed is
#: handled by :func:`validate_config`). ``search.spec.space`` checks a study's values with
#: these same rules.
RULES: dict[str, Rule] = {
    "dataset": _choices(DATASETS),
    "n_train": Rule("int", "an integer >= 1", lambda v: v >= 1),
    "val_size": Rule("int", "an integer >= 1", lambda v: v >= 1),
    "model": _choices(MODELS),
    "width": _floats("a number > 0", lambda v: v > 0.0),
    "epochs": Rule("int", "an integer >= 1", lambda v: v >= 1),
    # Batch norm needs two images per batch to estimate a variance.
    "batch_size": Rule("int", "an integer >= 2", lambda v: v >= 2),
    "optimizer": _choices(OPTIMIZERS),
    "lr": _floats("a number > 0", lambda v: v > 0.0),
    "momentum": _floats("a number in [0, 1)", lambda v: 0.0 <= v < 1.0),
    "nesterov": Rule("bool", "true or false"),
    "weight_decay": _floats("a number >= 0", lambda v: v >= 0.0),
    "lars": Rule("bool", "true or false"),
    "trust_coefficient": _floats("a number > 0", lambda v: v > 0.0),
    "lars_eps": _floats("a number >= 0", lambda v: v >= 0.0),
    "lars_mode": Rule("str", "one of None, " + ", ".join(repr(m) for m in LARS_MODES), values=tuple(LARS_MODES)),
    "lars_clip": Rule("bool", "true or false"),
    "lars_momentum_form": _choices(MOMENTUM_FORMS),
    "schedule": _choices(SCHEDULES),
    "warmup_epochs": _floats("a number of epochs >= 0", lambda v: v >= 0.0),
    "seed": Rule("int", "an integer >= 0", lambda v: v >= 0),
    "precision": _choices(PRECISIONS),
    "compile": Rule("bool", "true or false"),
    "evaluate_test": Rule("bool", "true or false"),
    "progress": Rule("bool", "true or false"),
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
    "lr": OPTIMIZERS["sgd"].lr,
    "momentum": OPTIMIZERS["sgd"].params["momentum"],
    "nesterov": OPTIMIZERS["sgd"].params["nesterov"],
    "weight_decay": 5e-4,
    "lars": False,
    "trust_coefficient": 1e-3,
    "lars_eps": 1e-8,
    "lars_mode": None,
    "lars_clip": False,
    "lars_momentum_form": "torch",
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


def coerce(value: Any, rule: Rule) -> Any:
    """``value`` typed and checked against ``rule``: the one check of a value, for configs and study files.

    A float rule takes ints and returns a float; a list of numbers comes back as a list.

    Raises:
        ValueError: ``"must be <rule>, got <value>"`` (the caller names the key).
    """
    kind = rule.kind
    if kind == "float":
        ok = is_number(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"must be a finite number ({rule.text}), got {value!r}")
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = not isinstance(value, bool) and value in rule.values
    elif kind == "float_list":
        ok = isinstance(value, (list, tuple)) and all(is_number(v) for v in value)
        value = list(value) if ok else value
    else:  # pragma: no cover - a registry entry with an unknown kind
        raise TypeError(f"unknown rule kind {kind!r}")
    if not ok or not rule.check(value):
        raise ValueError(f"must be {rule.text}, got {list(value) if isinstance(value, tuple) else value!r}")
    return value


def check_value(key: str, value: Any, rule: Rule) -> Any:
    """:func:`coerce` for config key ``key``; raises :class:`ConfigError` naming it."""
    try:
        return coerce(value, rule)
    except ValueError as exc:
        raise ConfigError(f"config key {key!r} {exc}") from None


def steps_per_epoch(config: Mapping[str, Any]) -> int:
    """Optimizer steps per epoch of a validated config: its training images // batch_size.

    The training images are ``n_train``, or all the data set's training images but the
    validation hold-out (the last, partial batch is dropped).
    """
    images = config["n_train"]
    if images is None:
        images = DATASETS[config["dataset"]].train_size - config["val_size"]
    return images // config["batch_size"]


def _schedule_params(c: dict[str, Any]) -> dict[str, Any]:
    """The schedule's parameters with defaults filled, checked in epochs and once in steps."""
    schedule, params = c["schedule"], c["schedule_params"]
    key = "schedule_params"
    if not isinstance(params, Mapping):
        raise _fail(key, "a mapping", params)
    info = SCHEDULES[schedule]
    for name in params:
        if name not in info.params:
            known = ", ".join(info.params) or "none"
            raise ConfigError(
                f"config key 'schedule_params.{name}' is not a parameter of schedule {schedule!r} "
                f"(its parameters: {known})"
            )
    for name in info.required:
        if name not in params:
            raise ConfigError(f"config key 'schedule_params.{name}' is required by schedule {schedule!r}")
    out = info.defaults
    out.update(params)
    for name, value in out.items():
        out[name] = check_value(f"schedule_params.{name}", value, info.params[name].rule)
    if "milestones" in out:
        sub, stones, written = "schedule_params.milestones", out["milestones"], params["milestones"]
        if stones[-1] >= c["epochs"]:
            rule = f"a list of epochs each < epochs={c['epochs']} (a decay at the end never happens)"
            raise _fail(sub, rule, written)
        per_epoch = steps_per_epoch(c)
        steps = info.params["milestones"].to_steps(stones, per_epoch)
        if len(set(steps)) < len(steps):
            raise _fail(
                sub,
                f"epochs that fall on distinct optimizer steps ({per_epoch} steps per epoch: "
                f"{written} -> steps {steps}, so a decay would be lost)",
                written,
            )
    return out


def _check_data_sizes(c: dict[str, Any]) -> None:
    """``val_size`` and ``n_train`` within the data set's training images, a full batch per epoch."""
    info = DATASETS[c["dataset"]]
    if c["val_size"] >= info.train_size:
        raise _fail("val_size", f"< the {info.train_size} training images of {info.name}", c["val_size"])
    left = info.train_size - c["val_size"]
    if c["n_train"] is not None and c["n_train"] > left:
        raise _fail(
            "n_train",
            f"<= the {left} images of {info.name} left after the val_size={c['val_size']} hold-out",
            c["n_train"],
        )
    if c["n_train"] is not None and c["n_train"] < c["batch_size"]:
        raise ConfigError(
            f"config key 'n_train' must be >= batch_size ({c['batch_size']}) so that an epoch has "
            f"at least one full batch, got {c['n_train']!r}"
        )


def _check_optimizer(c: dict[str, Any]) -> None:
    """The optimizer's own rules, as torch and lars state them at run time."""
    info = OPTIMIZERS[c["optimizer"]]
    if c["nesterov"] and ("nesterov" not in info.params or c["momentum"] == 0.0):
        raise ConfigError(
            f"config key 'nesterov' can only be true with optimizer 'sgd' and momentum > 0, "
            f"got optimizer {c['optimizer']!r} and momentum {c['momentum']!r}"
        )
    if c["lars_momentum_form"] != "torch" and not c["lars"]:  # with lars, lars.LARS judges it below
        raise ConfigError(
            f"config key 'lars_momentum_form' can only be {c['lars_momentum_form']!r} with lars true, got lars false"
        )
    from .optim import check_optimizer  # builds what this checks: torch is loaded by a validation, not an import

    try:
        check_optimizer(c, steps_per_epoch(c))
    except (ValueError, TypeError) as exc:
        keys = "'optimizer', 'weight_decay' and the lars_* keys" if c["lars"] else "'optimizer' and its keys"
        who = "lars.LARS" if c["lars"] else OPTIMIZERS[c["optimizer"]].torch_name
        raise ConfigError(f"config keys {keys} make an optimizer that {who} rejects: {exc}") from None


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a complete, checked copy of ``config`` with defaults from :data:`DEFAULT_CONFIG`.

    Every key is checked against its rule (:data:`RULES`), then the rules between keys:
    the data set's size, nesterov and momentum, the schedule's parameters in epochs and
    in steps, and the optimizer as torch and :class:`lars.LARS` build it (on a dummy
    tensor, so that what they would reject at run time is rejected here).

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
    c = {**DEFAULT_CONFIG, **config}  # scalars but schedule_params, copied below
    c["schedule_params"] = copy.deepcopy(c["schedule_params"])

    for key, rule in RULES.items():
        if c[key] is None and key in ("n_train", "lars_mode"):
            continue
        c[key] = check_value(key, c[key], rule)
    if c["data_dir"] is not None and (not isinstance(c["data_dir"], str) or not c["data_dir"]):
        raise _fail("data_dir", "null or a non-empty path string", c["data_dir"])
    if not isinstance(c["device"], str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", c["device"]):
        raise _fail("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", c["device"])
    _check_data_sizes(c)
    if c["warmup_epochs"] > c["epochs"]:
        raise _fail("warmup_epochs", f"a number in [0, epochs={c['epochs']}]", c["warmup_epochs"])
    c["schedule_params"] = _schedule_params(c)
    _check_optimizer(c)
    return c
