"""The registry: every optimizer, LARS mode, schedule and data set, written once.

Every other module reads these tables: :mod:`objectives.config` (validation),
:mod:`objectives.optim` (building), :mod:`objectives.data` (files and sizes), and in
``search`` the arms, the search space and its defaults, export and the plots. Adding an
optimizer or a schedule is one entry here plus its tests.

* :data:`OPTIMIZERS`: name -> :class:`OptimizerInfo` (the ``torch.optim`` class, the
  config keys it takes with their defaults, its weight-decay kind, the LARS mode
  :class:`lars.LARS` gives it by default, and its usual base lr, the centre of the
  default search range).
* :data:`LARS_MODES`: where the trust ratio acts, with the usual trust coefficient λ
  of that mode (the centre of the default λ range).
* :data:`SCHEDULES`: kind -> :class:`ScheduleInfo`, its parameters in a config's units
  (epochs), with defaults, rules and the conversion to optimizer steps. The unit-free
  rules (γ, ``final_lr_ratio``, ``power``) are :data:`lars.schedules.PARAMS`' own; the
  rules in epochs are stated here, and the rules in steps stay in :mod:`lars.schedules`.
* :data:`DATASETS`: name -> :class:`DatasetInfo` (sizes, classes, augmentation, where
  to get it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from lars.schedules import PARAMS as _STEP_PARAMS
from lars.schedules import REQUIRED

__all__ = [
    "REQUIRED",
    "Rule",
    "OptimizerInfo",
    "OPTIMIZERS",
    "LarsModeInfo",
    "LARS_MODES",
    "ScheduleParamInfo",
    "ScheduleInfo",
    "SCHEDULES",
    "DatasetInfo",
    "DATASETS",
    "is_number",
]


def is_number(value: Any) -> bool:
    """A finite real number: ints and floats, not bools, not NaN or infinity."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """What values a config key or a schedule parameter takes.

    ``kind``: ``"float"`` (any finite number), ``"int"``, ``"bool"``, ``"str"`` (one of
    ``values``) or ``"float_list"`` (a list of finite numbers); ``text``: the rule in
    words for error messages (``"a number > 0"``); ``check(value) -> bool`` on a value
    of that kind.
    """

    kind: str
    text: str
    check: Callable[[Any], bool] = lambda v: True
    values: tuple = ()


# --------------------------------------------------------------------------- optimizers


@dataclass(frozen=True)
class OptimizerInfo:
    """One base optimizer.

    Attributes:
        name: the config's ``optimizer`` value and the arm name's prefix.
        cls: the ``torch.optim`` class, built as ``cls(groups, lr=lr, **{key: config[key]})``.
        params: config keys passed to ``cls`` under the same name, with their defaults
            (besides ``lr``; ``weight_decay`` goes in the parameter groups).
        decay: ``"l2"`` (β·w added to the gradient) or ``"decoupled"`` (AdamW's w -= lr·β·w).
        lars_mode: the mode :class:`lars.LARS` picks for this base when none is given.
        lr: its usual base lr (SGD 0.1 for VGG on CIFAR-10; Adam's, AdamW's and RMSprop's
            1e-3; Adagrad's 1e-2), the centre of the default search range.
    """

    name: str
    cls: type[torch.optim.Optimizer]
    params: dict[str, Any]
    decay: str
    lars_mode: str
    lr: float


OPTIMIZERS: dict[str, OptimizerInfo] = {
    info.name: info
    for info in (
        OptimizerInfo("sgd", torch.optim.SGD, {"momentum": 0.9, "nesterov": False}, "l2", "gradient", 0.1),
        OptimizerInfo("rmsprop", torch.optim.RMSprop, {"momentum": 0.9}, "l2", "update", 1e-3),
        OptimizerInfo("adam", torch.optim.Adam, {}, "l2", "update", 1e-3),
        OptimizerInfo("adamw", torch.optim.AdamW, {}, "decoupled", "update", 1e-3),
        OptimizerInfo("adagrad", torch.optim.Adagrad, {}, "l2", "update", 1e-2),
    )
}


@dataclass(frozen=True)
class LarsModeInfo:
    """Where the trust ratio acts, and the usual trust coefficient λ there.

    ``gradient``: it scales the gradient, ``λ‖w‖/‖g‖``; the LARS paper's λ = 1e-3 goes
    with lrs of several units, and our objectives' best SGD+LARS runs sit near 1e-2.
    ``update``: it scales the base optimizer's update, whose norm is about ``sqrt(n)``
    for Adam-like bases, so λ sits near LAMB's effective 1.
    """

    name: str
    trust_coefficient: float


LARS_MODES: dict[str, LarsModeInfo] = {
    "gradient": LarsModeInfo("gradient", 1e-2),
    "update": LarsModeInfo("update", 1.0),
}

# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ScheduleParamInfo:
    """One schedule parameter in a config's units.

    ``unit``: ``"epochs"``, ``"per epoch"`` or ``""``; ``rule``: its rule in those units;
    ``to_steps(value, steps_per_epoch)``: the value :func:`lars.schedules.warmup_schedule`
    takes; ``for_epochs(epochs)``: the value of the default search space for a run of that
    many epochs (None: ``default``).
    """

    name: str
    default: Any
    unit: str
    rule: Rule
    to_steps: Callable[[Any, int], Any] = lambda value, steps_per_epoch: value
    for_epochs: Callable[[int], Any] | None = None

    def default_for(self, epochs: int) -> Any:
        """The default search space's value for a run of ``epochs`` epochs."""
        return self.default if self.for_epochs is None else self.for_epochs(epochs)


@dataclass(frozen=True)
class ScheduleInfo:
    """One schedule kind: its parameters (name -> :class:`ScheduleParamInfo`)."""

    name: str
    params: dict[str, ScheduleParamInfo] = field(default_factory=dict)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(n for n, p in self.params.items() if p.default is REQUIRED)

    @property
    def defaults(self) -> dict[str, Any]:
        return {n: p.default for n, p in self.params.items() if p.default is not REQUIRED}


def _unit_free(kind: str, name: str) -> ScheduleParamInfo:
    """A parameter without a unit: default and rule are lars.schedules' own."""
    p = _STEP_PARAMS[kind][name]
    return ScheduleParamInfo(name, p.default, "", Rule("float", p.rule, p.check))


def _epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
    return max(1, round(epochs * steps_per_epoch))


def _increasing_epochs(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(is_number(m) and m > 0 for m in value)
        and all(b > a for a, b in zip(value, value[1:]))
    )


def _epochs(value: float) -> float | int:
    """A number of epochs as a study file would hold it: an int when whole, else 3 decimals."""
    return int(value) if float(value).is_integer() else round(value, 3)


# Search-space defaults: the classic recipes scaled to the run's length.
_STEP_SIZE = ScheduleParamInfo(
    "step_size",
    REQUIRED,
    "epochs",
    Rule("float", "a number of epochs > 0", lambda v: v > 0),
    _epochs_to_steps,
    for_epochs=lambda epochs: _epochs(epochs / 3),  # two decays, at a third and two thirds
)
_MILESTONES = ScheduleParamInfo(
    "milestones",
    REQUIRED,
    "epochs",
    Rule("float_list", "a non-empty, strictly increasing list of epochs > 0", _increasing_epochs),
    lambda ms, steps_per_epoch: [_epochs_to_steps(m, steps_per_epoch) for m in ms],
    for_epochs=lambda epochs: [_epochs(epochs * 0.5), _epochs(epochs * 0.75)],  # as ResNet's 150/225 of 300
)
_GAMMA_PER_EPOCH = ScheduleParamInfo(
    "gamma",
    REQUIRED,
    "per epoch",
    Rule("float", _STEP_PARAMS["exponential"]["gamma"].rule, _STEP_PARAMS["exponential"]["gamma"].check),
    lambda gamma, steps_per_epoch: math.pow(gamma, 1.0 / steps_per_epoch),
    for_epochs=lambda epochs: 0.01 ** (1 / epochs),  # lr / 100 at the end
)


def _schedule(kind: str, *params: ScheduleParamInfo) -> ScheduleInfo:
    return ScheduleInfo(kind, {p.name: p for p in params})


SCHEDULES: dict[str, ScheduleInfo] = {
    s.name: s
    for s in (
        _schedule("constant"),
        _schedule("step", _STEP_SIZE, _unit_free("step", "gamma")),
        _schedule("multistep", _MILESTONES, _unit_free("multistep", "gamma")),
        _schedule("exponential", _GAMMA_PER_EPOCH),
        _schedule("cosine", _unit_free("cosine", "final_lr_ratio")),
        _schedule("polynomial", _unit_free("polynomial", "power"), _unit_free("polynomial", "final_lr_ratio")),
    )
}

# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class DatasetInfo:
    """One data set: sizes, classes, channels, training augmentation, where to get it.

    ``crop_padding`` (pixels) and ``flip`` are the augmentation; ``host`` is where
    torchvision downloads from; ``how`` says how to get the files by hand.
    """

    name: str
    train_size: int
    test_size: int
    num_classes: int
    in_channels: int
    crop_padding: int
    flip: bool
    host: str
    how: str


DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", 60_000, 10_000, num_classes=10, in_channels=1, crop_padding=2, flip=False,
        host="fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        how=("`apt-get install dataset-fashion-mnist` (Debian; installs "
             "/usr/share/datasets/fashion-mnist), or put the four IDX files "
             "(train-images-idx3-ubyte.gz ...) from https://github.com/zalandoresearch/fashion-mnist "
             "into one of these places, or run once where the host is reachable and torchvision "
             "downloads them"),
    ),
    "cifar10": DatasetInfo(
        "cifar10", 50_000, 10_000, num_classes=10, in_channels=3, crop_padding=4, flip=True,
        host="www.cs.toronto.edu",
        how=("download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and unpack it "
             "into one of these places (it makes cifar-10-batches-py/), or run once where the "
             "host is reachable and torchvision downloads it"),
    ),
}  # fmt: skip
