"""The registry: every optimizer, LARS mode, schedule and data set, written once.

Every other module reads these tables: :mod:`objectives.config` (validation),
:mod:`objectives.optim` (building), :mod:`objectives.data` (files and sizes), and in
``search`` the arms, the search space and its defaults, export and the plots. Adding an
optimizer or a schedule is one entry here plus its tests.

The registry is data: it imports neither torch nor :mod:`lars` (whose package loads
torch), so that ``search`` reads it at module level and ``lars-search --help``,
``status`` and ``compare`` start without torch. :mod:`objectives.optim` turns a name
into the ``torch.optim`` class where training starts.

* :data:`OPTIMIZERS`: name -> :class:`OptimizerInfo` (the ``torch.optim`` class's name, the
  config keys it takes with their defaults, its weight-decay kind, the LARS mode
  :class:`lars.LARS` gives it by default, and its usual base lr, the centre of the
  default search range).
* each optimizer's published recipe (``OptimizerInfo.recipe``, ``lars_recipe``) and what
  LARS adds to every recipe (:data:`LARS_RECIPE`, :data:`LARS_WARMUP_FRACTION`), the
  sources below; ``search`` enqueues them as trial 0 of every arm.
* :data:`LARS_MODES`: where the trust ratio acts, with the usual trust coefficient λ
  of that mode (the centre of the default λ range).
* :data:`SCHEDULES`: kind -> :class:`ScheduleInfo`, its parameters in a config's units
  (epochs), with defaults, rules and the conversion to optimizer steps. The rules in
  steps stay in :mod:`lars.schedules`; the unit-free ones (γ, ``final_lr_ratio``,
  ``power``) read the same there and here, which
  ``tests/objectives/test_objectives_registry.py`` checks value by value.
* :data:`DATASETS`: name -> :class:`DatasetInfo` (sizes, classes, augmentation, where
  to get it).

The published recipes (DESIGN.md, "Published recipes"):

* SGD: lr 0.1, momentum 0.9, weight decay 5e-4, cosine decay to 0, no warm-up
  (VGG-16-BN on CIFAR-10: kuangliu/pytorch-cifar, geifmany/cifar-vgg).
* SGD + LARS: trust coefficient 1e-3, epsilon 1e-8, polynomial decay of power 2 to 0,
  linear warm-up over the first 5% of training (5 of the paper's ~100 epochs), base lr
  10 (You, Gitman, Ginsburg, "Large Batch Training of Convolutional Networks",
  arXiv:1708.03888, 2017, and the MLPerf ResNet-50 reference, whose base rates with
  lambda = 1e-3 are of order 10), momentum 0.9, weight decay 5e-4.
* RMSprop, Adam: lr 1e-3, weight decay 5e-4, cosine; RMSprop momentum 0. AdamW: lr 1e-3,
  weight decay 1e-2 (torch's default). Adagrad: lr 1e-2.
* Adaptive + LARS (the ratio scales the update, as LAMB does: You et al., "Large Batch
  Optimization for Deep Learning: Training BERT in 76 minutes", arXiv:1904.00962, 2019):
  trust coefficient 1 (LAMB's ratio ||w|| / ||u||), the LARS schedule above.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "REQUIRED",
    "Rule",
    "OptimizerInfo",
    "OPTIMIZERS",
    "LARS_RECIPE",
    "LARS_WARMUP_FRACTION",
    "LarsModeInfo",
    "LARS_MODES",
    "ScheduleParamInfo",
    "ScheduleInfo",
    "SCHEDULES",
    "DatasetInfo",
    "DATASETS",
    "is_number",
]


class _Required:
    """The default of a parameter that has none: it must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


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
        torch_name: the ``torch.optim`` class's name (``"SGD"``); :func:`objectives.optim.make_optimizer`
            builds ``getattr(torch.optim, torch_name)(groups, lr=lr, **{key: config[key]})``.
        params: config keys passed to ``cls`` under the same name, with their defaults
            (besides ``lr``; ``weight_decay`` goes in the parameter groups).
        decay: ``"l2"`` (β·w added to the gradient) or ``"decoupled"`` (AdamW's w -= lr·β·w).
        lars_mode: the mode :class:`lars.LARS` picks for this base when none is given.
        lr: its usual base lr (SGD 0.1 for VGG on CIFAR-10; Adam's, AdamW's and RMSprop's
            1e-3; Adagrad's 1e-2), the centre of the default search range.
        recipe: its published recipe, a partial config (the module docstring's sources).
        lars_recipe: what the recipe of its LARS arm changes besides :data:`LARS_RECIPE`
            (the trust coefficient; SGD's base lr).
    """

    name: str
    torch_name: str
    params: dict[str, Any]
    decay: str
    lars_mode: str
    lr: float
    recipe: dict[str, Any] = field(default_factory=dict)
    lars_recipe: dict[str, Any] = field(default_factory=dict)


_COSINE = {"schedule": "cosine", "schedule_params": {"final_lr_ratio": 0.0}, "warmup_epochs": 0.0}
_LAMB = {"trust_coefficient": 1.0}  # LAMB's ratio ||w|| / ||u||

OPTIMIZERS: dict[str, OptimizerInfo] = {
    info.name: info
    for info in (
        OptimizerInfo("sgd", "SGD", {"momentum": 0.9, "nesterov": False}, "l2", "gradient", 0.1,
                      {"lr": 0.1, "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4, **_COSINE},
                      {"trust_coefficient": 1e-3, "lr": 10.0}),
        OptimizerInfo("rmsprop", "RMSprop", {"momentum": 0.9}, "l2", "update", 1e-3,
                      {"lr": 1e-3, "momentum": 0.0, "weight_decay": 5e-4, **_COSINE}, _LAMB),
        OptimizerInfo("adam", "Adam", {}, "l2", "update", 1e-3, {"lr": 1e-3, "weight_decay": 5e-4, **_COSINE}, _LAMB),
        OptimizerInfo("adamw", "AdamW", {}, "decoupled", "update", 1e-3,
                      {"lr": 1e-3, "weight_decay": 1e-2, **_COSINE}, _LAMB),
        OptimizerInfo("adagrad", "Adagrad", {}, "l2", "update", 1e-2,
                      {"lr": 1e-2, "weight_decay": 5e-4, **_COSINE}, _LAMB),
    )
}  # fmt: skip

#: What every LARS arm's recipe sets (the LARS paper's schedule), besides its optimizer's ``lars_recipe``.
LARS_RECIPE: dict[str, Any] = {
    "lars_eps": 1e-8,
    "schedule": "polynomial",
    "schedule_params": {"power": 2.0, "final_lr_ratio": 0.0},
}
#: A LARS recipe's linear warm-up, as a fraction of the run's epochs (5 of the paper's ~100).
LARS_WARMUP_FRACTION = 0.05


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


# The unit-free parameters, as lars.schedules.PARAMS states them in steps (the same in epochs).
_GAMMA = ScheduleParamInfo(
    "gamma", 0.1, "", Rule("float", "a number in (0, 1]", lambda v: is_number(v) and 0.0 < v <= 1.0)
)
_FINAL_LR_RATIO = ScheduleParamInfo(
    "final_lr_ratio", 0.0, "", Rule("float", "a number in [0, 1]", lambda v: is_number(v) and 0.0 <= v <= 1.0)
)
_POWER = ScheduleParamInfo("power", 2.0, "", Rule("float", "a number > 0", lambda v: is_number(v) and v > 0.0))


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
    _GAMMA.rule,
    lambda gamma, steps_per_epoch: math.pow(gamma, 1.0 / steps_per_epoch),
    for_epochs=lambda epochs: 0.01 ** (1 / epochs),  # lr / 100 at the end
)


def _schedule(kind: str, *params: ScheduleParamInfo) -> ScheduleInfo:
    return ScheduleInfo(kind, {p.name: p for p in params})


SCHEDULES: dict[str, ScheduleInfo] = {
    s.name: s
    for s in (
        _schedule("constant"),
        _schedule("step", _STEP_SIZE, _GAMMA),
        _schedule("multistep", _MILESTONES, _GAMMA),
        _schedule("exponential", _GAMMA_PER_EPOCH),
        _schedule("cosine", _FINAL_LR_RATIO),
        _schedule("polynomial", _POWER, _FINAL_LR_RATIO),
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
