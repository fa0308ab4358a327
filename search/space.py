"""Search space: parameter rules, dimensions, and one Optuna trial -> one plain config.

A dimension is one of three forms, written in a study file as::

    lr: 0.1                                  # fixed value (not an Optuna parameter)
    lr: [0.01, 0.1, 1.0]                     # choice list  -> trial.suggest_categorical
    lr: {low: 1e-3, high: 1.0, log: true}    # (log-)range  -> trial.suggest_float / suggest_int
    step_size: {low: 5, high: 30, step: 5}   # integer range with a step

The scheduler space is *conditional* (define-by-run): the trial first chooses the
schedule type, then only that type's own parameters are suggested, named
``schedule.<type>.<param>`` so that two types never share an Optuna parameter.
Scheduler parameters are in EPOCHS, as :mod:`objectives` expects them.

:func:`suggest_config` knows nothing of training: it returns the plain dict that
``objectives.train`` receives, built from the study's fixed ``objective`` section,
the arm (optimizer x LARS on/off) and the sampled values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

__all__ = [
    "Fixed",
    "Choice",
    "Range",
    "Auto",
    "Dimension",
    "Rule",
    "PARAM_RULES",
    "SCHEDULES",
    "SCHEDULE_RULES",
    "ArmSpace",
    "applies_to",
    "suggest_config",
    "suggest_value",
    "warmup_epochs_of",
]

SCHEDULES = ("constant", "step", "multistep", "exponential", "cosine", "polynomial")


@dataclass(frozen=True)
class Fixed:
    """A value every trial uses; not an Optuna parameter."""

    value: Any

    def describe(self) -> Any:
        return self.value


@dataclass(frozen=True)
class Choice:
    """One of ``choices`` (``trial.suggest_categorical``)."""

    choices: tuple

    def describe(self) -> Any:
        return list(self.choices)


@dataclass(frozen=True)
class Range:
    """A value in ``[low, high]``, log-uniform if ``log``, on a grid of ``step`` if given."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False
    per: str | None = None  # a range of value * config[per] (lr: auto on a LARS arm: trust_coefficient * lr)

    def describe(self) -> Any:
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        if self.per is not None:
            out["per"] = self.per
        return out


@dataclass(frozen=True)
class Auto:
    """``lr: auto``: before the search, :mod:`search.range_test` replaces it with the range it found."""

    def describe(self) -> Any:
        return "auto"


Dimension = Fixed | Choice | Range | Auto


@dataclass(frozen=True)
class Rule:
    """What one parameter may be: its type, its valid set, and which arms it applies to.

    ``kind`` is ``"float"``, ``"int"``, ``"bool"``, ``"str"`` or ``"int_list"`` (a list of
    epochs, e.g. multistep milestones; a choice of such lists is a list of lists).
    ``check(value) -> bool`` and ``text`` (the rule in words, e.g. ``"> 0"``).
    ``optimizers``: the base optimizers it applies to (None: all); ``lars_only``.
    """

    kind: str
    check: Callable[[Any], bool]
    text: str
    optimizers: tuple[str, ...] | None = None
    lars_only: bool = False
    values: tuple | None = None  # allowed values of a "str" rule


def _in(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            return False
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    return check


_ANY = lambda v: True  # noqa: E731 (bool/str rules check the type only)

# Space keys are objectives config keys, so that a sampled value goes into the config
# under its own name. lr = alpha (base lr), weight_decay = beta, trust_coefficient = lambda,
# lars_eps = epsilon (You, Gitman, Ginsburg, "Large Batch Training of Convolutional
# Networks", arXiv:1708.03888, 2017).
PARAM_RULES: dict[str, Rule] = {
    "lr": Rule("float", _in(0, math.inf, lo_open=True), "> 0"),
    "weight_decay": Rule("float", _in(0, math.inf), ">= 0"),
    "momentum": Rule("float", _in(0, 1, hi_open=True), "in [0, 1)", optimizers=("sgd", "rmsprop")),
    "nesterov": Rule("bool", _ANY, "true or false", optimizers=("sgd",)),
    "warmup_epochs": Rule("float", _in(0, math.inf), ">= 0"),
    "trust_coefficient": Rule("float", _in(0, math.inf, lo_open=True), "> 0", lars_only=True),
    "lars_eps": Rule("float", _in(0, math.inf), ">= 0", lars_only=True),
    "lars_mode": Rule("str", _ANY, "'gradient' or 'update'", lars_only=True, values=("gradient", "update")),
    "lars_clip": Rule("bool", _ANY, "true or false", lars_only=True),
}

_GAMMA = Rule("float", _in(0, 1, lo_open=True), "in (0, 1]")
_RATIO = Rule("float", _in(0, 1), "in [0, 1]")
SCHEDULE_RULES: dict[str, dict[str, Rule]] = {
    "constant": {},
    "step": {"step_size": Rule("int", _in(1, math.inf), ">= 1 epoch"), "gamma": _GAMMA},
    "multistep": {
        "milestones": Rule(
            "int_list",
            lambda v: all(isinstance(m, int) and m >= 1 for m in v) and list(v) == sorted(set(v)) and len(v) > 0,
            "a non-empty, strictly increasing list of epochs >= 1",
        ),
        "gamma": _GAMMA,
    },
    "exponential": {"gamma": _GAMMA},
    "cosine": {"final_lr_ratio": _RATIO},
    "polynomial": {"power": Rule("float", _in(0, math.inf, lo_open=True), "> 0"), "final_lr_ratio": _RATIO},
}


def applies_to(rule: Rule, optimizer: str, lars: bool) -> bool:
    """Whether a space parameter is used by an arm (e.g. lambda only for LARS arms)."""
    if rule.lars_only and not lars:
        return False
    return rule.optimizers is None or optimizer in rule.optimizers


@dataclass(frozen=True)
class ArmSpace:
    """The parsed space of one arm.

    ``params``: space key -> dimension, only keys that apply to this arm.
    ``schedule``: the dimension of the schedule type (a Fixed or a Choice of names).
    ``schedule_params``: type -> {param -> dimension} for every type the schedule may take.
    """

    params: dict[str, Dimension]
    schedule: Dimension
    schedule_params: dict[str, dict[str, Dimension]]

    def describe(self) -> dict[str, Any]:
        """A plain, comparable dict of the space (YAML form)."""
        out: dict[str, Any] = {k: d.describe() for k, d in sorted(self.params.items())}
        sched: dict[str, Any] = {"type": self.schedule.describe()}
        for kind, dims in self.schedule_params.items():
            sched[kind] = {k: d.describe() for k, d in sorted(dims.items())}
        out["schedule"] = sched
        return out


def _encode_choice(value: Any) -> Any:
    """Optuna choices must be None/bool/int/float/str: a list of epochs becomes "30,60,90"."""
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def _decode_choice(value: Any, rule_kind: str) -> Any:
    if rule_kind == "int_list":
        return [int(v) for v in str(value).split(",")]
    return value


def suggest_value(trial: Any, name: str, dim: Dimension, rule_kind: str) -> Any:
    """Draw one value of a dimension from an Optuna trial (fixed values are returned as is)."""
    if isinstance(dim, Fixed):
        return list(dim.value) if rule_kind == "int_list" else dim.value
    if isinstance(dim, Auto):
        raise ValueError(f"{name}: auto must be resolved by search.range_test before a trial is sampled")
    if isinstance(dim, Choice):
        encoded = [_encode_choice(c) for c in dim.choices]
        return _decode_choice(trial.suggest_categorical(name, encoded), rule_kind)
    if dim.integer:
        return trial.suggest_int(name, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)
    return trial.suggest_float(name, float(dim.low), float(dim.high), step=dim.step, log=dim.log)


def suggest_config(
    trial: Any, objective: dict[str, Any], optimizer: str, lars: bool, space: ArmSpace
) -> dict[str, Any]:
    """One trial -> the plain config dict for ``objectives.train``.

    ``objective`` holds the study's fixed keys (dataset, model, width, epochs, ...);
    the arm sets ``optimizer`` and ``lars``; the space adds the sampled keys and the
    conditional scheduler (``schedule`` and its ``schedule_params`` in epochs).
    The tuning loop never sees the test set (``evaluate_test`` is False).
    """
    config: dict[str, Any] = dict(objective)
    config["optimizer"] = optimizer
    config["lars"] = bool(lars)
    products = {}
    for name, dim in space.params.items():
        if isinstance(dim, Range) and dim.per is not None:  # a range of name * per: sampled, divided below
            products[name] = (suggest_value(trial, "*".join(sorted((name, dim.per))), dim, "float"), dim.per)
            continue
        config[name] = suggest_value(trial, name, dim, PARAM_RULES[name].kind)
    for name, (product, per) in products.items():
        config[name] = product / config[per]
    kind = suggest_value(trial, "schedule", space.schedule, "str")
    config["schedule"] = kind
    params = {}
    for pname, dim in space.schedule_params.get(kind, {}).items():
        params[pname] = suggest_value(trial, f"schedule.{kind}.{pname}", dim, SCHEDULE_RULES[kind][pname].kind)
    config["schedule_params"] = params
    config["evaluate_test"] = False
    config["progress"] = False
    return config


def warmup_epochs_of(config: dict[str, Any]) -> float:
    """The trial's own LR warm-up length in epochs (0 when it has none)."""
    value = config.get("warmup_epochs") or 0.0
    return float(value)
