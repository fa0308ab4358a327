"""Search space: parameter rules, dimensions, and one Optuna trial -> one plain config.

A dimension is one of three forms, written in a study file as::

    lr: 0.1                                  # fixed value (not an Optuna parameter)
    lr: [0.01, 0.1, 1.0]                     # choice list  -> trial.suggest_categorical
    lr: {low: 1e-3, high: 1.0, log: true}    # (log-)range  -> trial.suggest_float / suggest_int
    step_size: {low: 5, high: 30, step: 5}   # a range on a grid of step (the step must divide it)

The scheduler space is *conditional* (define-by-run): the trial first chooses the
schedule type, then only that type's own parameters are suggested, named
``schedule.<type>.<param>`` so that two types never share an Optuna parameter.
Scheduler parameters are in EPOCHS, as :mod:`objectives` expects them.

Every fact about a key comes from :mod:`objectives`: the rule of a value is
``objectives.config.RULES`` (schedule parameters: ``objectives.registry.SCHEDULES``),
and which arms a key applies to is read from the registry (``momentum`` where the
optimizer takes it, the LARS keys on LARS arms, ``lars_momentum_form`` on LARS arms in
gradient mode). A new optimizer or schedule in the registry is searchable as it is.

:func:`suggest_config` knows nothing of training: it returns the plain dict that
``objectives.train`` receives, built from the study's fixed ``objective`` section,
the arm (optimizer x LARS on/off) and the sampled values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from objectives.config import RULES
from objectives.registry import OPTIMIZERS, Rule
from objectives.registry import SCHEDULES as REGISTERED_SCHEDULES

__all__ = [
    "Fixed",
    "Choice",
    "Range",
    "Auto",
    "Dimension",
    "SPACE_KEYS",
    "LARS_KEYS",
    "ArmSpace",
    "PARAM_RULES",
    "SCHEDULE_RULES",
    "SCHEDULES",
    "why_not",
    "suggest_config",
    "suggest_value",
    "warmup_epochs_of",
]


@dataclass(frozen=True)
class Fixed:
    """A value every trial uses; not an Optuna parameter."""

    value: Any

    def describe(self) -> Any:
        return self.value

    def values(self) -> tuple:
        """The values a trial can draw."""
        return (self.value,)


@dataclass(frozen=True)
class Choice:
    """One of ``choices`` (``trial.suggest_categorical``)."""

    choices: tuple

    def describe(self) -> Any:
        return list(self.choices)

    def values(self) -> tuple:
        return self.choices


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

    def values(self) -> tuple:
        """Its two ends: every rule between keys is monotone in a number, so they stand for the range."""
        return (self.low, self.high)


@dataclass(frozen=True)
class Auto(Range):
    """``lr: auto``: :mod:`search.run.lr_range` replaces it before the search; until then it stands
    for the arm's default lr range ``[low, high]`` (log) where a range is read (checks, recipes),
    but is never sampled."""

    log: bool = True

    def describe(self) -> Any:
        return "auto"


Dimension = Fixed | Choice | Range | Auto

# Space keys are objectives config keys, so that a sampled value goes into the config
# under its own name. lr = alpha (base lr), weight_decay = beta, trust_coefficient = lambda,
# lars_eps = epsilon (You, Gitman, Ginsburg, "Large Batch Training of Convolutional
# Networks", arXiv:1708.03888, 2017).
SPACE_KEYS = (
    "lr", "weight_decay", "momentum", "nesterov", "warmup_epochs",
    "trust_coefficient", "lars_eps", "lars_mode", "lars_clip", "lars_momentum_form",
)  # fmt: skip
LARS_KEYS = ("trust_coefficient", "lars_eps", "lars_mode", "lars_clip", "lars_momentum_form")
_GRADIENT_MODE_KEYS = ("lars_momentum_form",)


#: Space key -> the rule of its values (``objectives.config.RULES``, objectives' own).
PARAM_RULES: dict[str, Rule] = {key: RULES[key] for key in SPACE_KEYS}
#: Schedule kind -> {parameter: the rule of its values, in epochs} (the registry's own).
SCHEDULE_RULES: dict[str, dict[str, Rule]] = {
    kind: {name: p.rule for name, p in info.params.items()} for kind, info in REGISTERED_SCHEDULES.items()
}
#: The schedule types, in the registry's order.
SCHEDULES: tuple[str, ...] = tuple(SCHEDULE_RULES)


def why_not(key: str, optimizer: str, lars: bool, modes: tuple[str, ...] = ()) -> str | None:
    """Why a space key does not apply to an arm (``"LARS arms only"``), or None when it does.

    ``modes``: the LARS modes the arm's trials can take (default: the optimizer's).
    """
    if key in LARS_KEYS and not lars:
        return "LARS arms only"
    if key in _GRADIENT_MODE_KEYS and "gradient" not in (modes or (OPTIMIZERS[optimizer].lars_mode,)):
        return "LARS arms in gradient mode only"
    takers = [name for name, info in OPTIMIZERS.items() if key in info.params]
    if takers and optimizer not in takers:
        return f"{', '.join(takers)} arms only"
    return None


@dataclass(frozen=True)
class ArmSpace:
    """The parsed space of one arm.

    ``params``: space key -> dimension, only keys that apply to this arm.
    ``schedule``: the dimension of the schedule type (a Fixed or a Choice of names).
    ``schedule_params``: type -> {param -> dimension} for every type the schedule may take.
    ``origins``: where each value was written (``"space"``, ``"arms[1].space"``,
    ``"default space"``), by space key and by ``"schedule"``; for error messages only.
    """

    params: dict[str, Dimension]
    schedule: Dimension
    schedule_params: dict[str, dict[str, Dimension]]
    origins: dict[str, str] = field(default_factory=dict, compare=False)

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
    if rule_kind == "float_list":
        return [int(v) if v.lstrip("-").isdigit() else float(v) for v in str(value).split(",")]
    return value


def suggest_value(trial: Any, name: str, dim: Dimension, rule_kind: str) -> Any:
    """Draw one value of a dimension from an Optuna trial (fixed values are returned as is)."""
    if isinstance(dim, Fixed):
        return list(dim.value) if rule_kind == "float_list" else dim.value
    if isinstance(dim, Auto):
        raise ValueError(f"{name}: auto must be resolved by search.run.lr_range before a trial is sampled")
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
    rules, sched_rules = PARAM_RULES, SCHEDULE_RULES
    products = {}
    for name, dim in space.params.items():
        if isinstance(dim, Range) and dim.per is not None:  # a range of name * per: sampled, divided below
            products[name] = (suggest_value(trial, "*".join(sorted((name, dim.per))), dim, "float"), dim.per)
            continue
        config[name] = suggest_value(trial, name, dim, rules[name].kind)
    for name, (product, per) in products.items():
        config[name] = product / config[per]
    kind = suggest_value(trial, "schedule", space.schedule, "str")
    config["schedule"] = kind
    params = {}
    for pname, dim in space.schedule_params.get(kind, {}).items():
        params[pname] = suggest_value(trial, f"schedule.{kind}.{pname}", dim, sched_rules[kind][pname].kind)
    config["schedule_params"] = params
    config["evaluate_test"] = False
    config["progress"] = False
    return config


def warmup_epochs_of(config: dict[str, Any]) -> float:
    """The trial's own LR warm-up length in epochs (0 when it has none)."""
    value = config.get("warmup_epochs") or 0.0
    return float(value)
