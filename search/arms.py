"""Arms and their search spaces, parsed from a study file (see :mod:`search.spec` for the schema).

An arm is one base optimizer with LARS on or off (``sgd``, ``sgd+lars``, ...). Its space
is the study's shared ``space`` with the arm's own ``space`` on top, and
:func:`default_space` for every key neither names. Each value is checked against the
parameter's rule (:data:`search.space.PARAM_RULES`) so that a bad range is an error that
names the file and the key, before any database is touched; then one config per arm and
schedule type goes through ``objectives.validate_config``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from search.space import (
    PARAM_RULES,
    SCHEDULE_RULES,
    SCHEDULES,
    ArmSpace,
    Auto,
    Choice,
    Dimension,
    Fixed,
    Range,
    Rule,
    applies_to,
)

__all__ = [
    "DEFAULT_ARMS",
    "OPTIMIZERS",
    "SpecError",
    "Arm",
    "parse_dimension",
    "default_space",
    "parse_arm",
    "check_with_objectives",
]

DEFAULT_ARMS = ("sgd", "sgd+lars", "rmsprop", "rmsprop+lars", "adam", "adam+lars")
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw", "adagrad")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class SpecError(ValueError):
    """An invalid study file: ``"<file>: <key>: <what is wrong>"``."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key, self.message = source, key, message
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


@dataclass(frozen=True)
class Arm:
    """One arm: a base optimizer with LARS on or off, and its own space."""

    name: str
    optimizer: str
    lars: bool
    space: ArmSpace


# --------------------------------------------------------------------------- helpers


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(value: Any, source: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(source, key, f"must be a mapping, got {_type_name(value)} {value!r}")
    return value


def _check_keys(data: dict, allowed: tuple[str, ...], source: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            raise SpecError(source, path, f"unknown key; allowed: {', '.join(allowed)}")


def _int(value: Any, source: str, key: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(source, key, f"must be an integer >= {minimum}, got {value!r}")
    return value


def _coerce(value: Any, rule: Rule, source: str, key: str) -> Any:
    """One scalar (or list of epochs) of a parameter, typed and checked against its rule."""
    kind = rule.kind
    if kind == "float":
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise SpecError(source, key, f"must be a number {rule.text}, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(source, key, f"must be a number {rule.text}, got {value!r}")
        value = float(value)
    elif kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(source, key, f"must be an integer {rule.text}, got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(source, key, f"must be true or false, got {value!r}")
    elif kind == "str":
        if value not in (rule.values or ()):
            raise SpecError(source, key, f"must be {rule.text}, got {value!r}")
    elif kind == "int_list":
        if not isinstance(value, list):
            raise SpecError(source, key, f"must be {rule.text}, got {value!r}")
        value = [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
    if not rule.check(value):
        raise SpecError(source, key, f"must be {rule.text}, got {value!r}")
    return value


def parse_dimension(raw: Any, rule: Rule, source: str, key: str) -> Dimension:
    """A value, a choice list or a ``{low, high, log, step}`` range, checked against ``rule``."""
    if isinstance(raw, dict):
        if rule.kind not in ("float", "int"):
            raise SpecError(source, key, f"a range needs a numeric parameter; give a value or a choice list ({rule.text})")
        _check_keys(raw, ("low", "high", "log", "step"), source, key)
        for bound in ("low", "high"):
            if bound not in raw:
                raise SpecError(source, f"{key}.{bound}", "required in a range")
        low = _coerce(raw["low"], rule, source, f"{key}.low")
        high = _coerce(raw["high"], rule, source, f"{key}.high")
        log = raw.get("log", False)
        if not isinstance(log, bool):
            raise SpecError(source, f"{key}.log", f"must be true or false, got {log!r}")
        if low > high:
            raise SpecError(source, key, f"low must be <= high, got low={low!r} > high={high!r}")
        if log and low <= 0:
            raise SpecError(source, key, f"log range must have low > 0, got low={low!r}")
        step = raw.get("step")
        if step is not None:
            if isinstance(step, str):
                try:
                    step = float(step)
                except ValueError:
                    pass
            if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
                raise SpecError(source, f"{key}.step", f"must be a number > 0, got {step!r}")
            if log:
                raise SpecError(source, key, "a log range cannot have a step (Optuna samples one or the other)")
            if rule.kind == "int" and not float(step).is_integer():
                raise SpecError(source, f"{key}.step", f"must be an integer for an integer parameter, got {step!r}")
        if low == high:
            return Fixed(low)
        return Range(low, high, log=log, step=step, integer=rule.kind == "int")
    is_choice = isinstance(raw, list) and (rule.kind != "int_list" or any(isinstance(v, list) for v in raw))
    if is_choice:
        if not raw:
            raise SpecError(source, key, "a choice list must not be empty")
        values = tuple(_coerce(v, rule, source, f"{key}[{i}]") for i, v in enumerate(raw))
        hashable = [tuple(v) if isinstance(v, list) else v for v in values]
        if len(set(hashable)) != len(hashable):
            raise SpecError(source, key, f"choices must be distinct, got {raw!r}")
        return Fixed(values[0]) if len(values) == 1 else Choice(values)
    return Fixed(_coerce(raw, rule, source, key))


# --------------------------------------------------------------------------- default space


def default_space(optimizer: str, lars: bool, epochs: int) -> dict[str, Any]:
    """The space an arm gets for keys a study file leaves out (YAML form).

    Base lr ranges follow common practice (SGD around 0.1, adaptive optimizers around
    1e-3). Lambda: on SGD the trust ratio scales the gradient, ``lambda ||w|| / ||g||``,
    and the LARS paper's 1e-3 sits in [1e-3, 1e-1]; on Adam/RMSprop/Adagrad it scales the
    optimizer's update, whose norm is ~sqrt(n) (LAMB), so lambda is in [0.1, 10] around
    LAMB's effective 1. The scheduler
    type is searched over all six with each type's parameters fixed at classic values
    scaled to ``epochs`` (step: a third of training, gamma 0.1; multistep: 50% and 75%;
    exponential: lr / 100 at the end; polynomial power 2, as in the LARS paper).
    """
    plain_sgd_like = optimizer == "sgd"
    lam = {"low": 1e-3, "high": 1e-1, "log": True} if plain_sgd_like else {"low": 0.1, "high": 10.0, "log": True}
    space: dict[str, Any] = {
        "lr": {"low": 1e-3, "high": 1.0, "log": True} if plain_sgd_like else {"low": 1e-5, "high": 1e-1, "log": True},
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "momentum": 0.9,
        "trust_coefficient": lam,
        "lars_eps": 1e-8,
        "warmup_epochs": {"low": 0.0, "high": min(5.0, epochs / 4)} if epochs >= 2 else 0.0,
    }
    milestones = sorted({m for m in (round(epochs * 0.5), round(epochs * 0.75)) if 1 <= m < epochs})
    space["schedule"] = {
        "type": [k for k in SCHEDULES if k != "multistep" or milestones],
        "step": {"step_size": max(1, round(epochs / 3)), "gamma": 0.1},
        "multistep": {"milestones": milestones or [1], "gamma": 0.1},
        "exponential": {"gamma": 0.01 ** (1 / max(1, epochs))},
        "cosine": {"final_lr_ratio": 0.0},
        "polynomial": {"power": 2.0, "final_lr_ratio": 0.0},
    }
    return space


def _parse_schedule(raw: Any, source: str, where: str, base: dict[str, Any], epochs: int) -> tuple[Dimension, dict]:
    """The conditional scheduler space; ``base`` is the default/shared one it overrides."""
    if isinstance(raw, (str, list)):
        raw = {"type": raw}
    data = _mapping(raw, source, where)
    _check_keys(data, ("type",) + SCHEDULES, source, where)
    type_raw = data.get("type", base.get("type"))
    kinds = type_raw if isinstance(type_raw, list) else [type_raw]
    for i, kind in enumerate(kinds):
        if kind not in SCHEDULES:
            key = f"{where}.type[{i}]" if isinstance(type_raw, list) else f"{where}.type"
            raise SpecError(source, key, f"unknown scheduler {kind!r}; choose from {', '.join(SCHEDULES)}")
    rule = Rule("str", lambda v: True, "a scheduler name", values=SCHEDULES)
    schedule = parse_dimension(type_raw, rule, source, f"{where}.type")
    for kind in SCHEDULES:
        if kind in data and kind not in kinds:
            raise SpecError(source, f"{where}.{kind}", f"parameters given for {kind!r}, which is not among {where}.type {kinds}")
    params: dict[str, dict[str, Dimension]] = {}
    for kind in kinds:
        merged = dict(base.get(kind) or {})
        section = data.get(kind)
        if section is not None:
            merged.update(_mapping(section, source, f"{where}.{kind}"))
        rules = SCHEDULE_RULES[kind]
        _check_keys(merged, tuple(rules), source, f"{where}.{kind}")
        dims = {p: parse_dimension(v, rules[p], source, f"{where}.{kind}.{p}") for p, v in merged.items()}
        if kind == "multistep" and "milestones" in dims:
            dim = dims["milestones"]
            options = dim.choices if isinstance(dim, Choice) else (dim.value,)
            if any(m >= epochs for ms in options for m in ms):
                raise SpecError(
                    source, f"{where}.multistep.milestones",
                    f"every milestone must be < objective.epochs={epochs}, got {dim.describe()!r}",
                )  # fmt: skip
        params[kind] = dims
    return schedule, params


def _parse_space(
    shared: dict, own: dict | None, optimizer: str, lars: bool, epochs: int, source: str, where: str
) -> ArmSpace:
    defaults = default_space(optimizer, lars, epochs)
    if own:
        for key in own:
            rule = PARAM_RULES.get(key)
            if rule is not None and not applies_to(rule, optimizer, lars):
                what = "LARS arms only" if rule.lars_only and not lars else f"{', '.join(rule.optimizers or ())} arms only"
                raise SpecError(source, f"{where}.{key}", f"does not apply to this arm ({what})")
    params: dict[str, Dimension] = {}
    for key, rule in PARAM_RULES.items():
        if not applies_to(rule, optimizer, lars):
            continue
        if own and key in own:
            raw, at = own[key], where
        elif key in shared:
            raw, at = shared[key], "space"
        elif key in defaults:
            raw, at = defaults[key], "default space"
        else:
            continue
        if key == "lr" and raw == "auto":  # found by search.range_test before the search
            params[key] = Auto()
            continue
        params[key] = parse_dimension(raw, rule, source, f"{at}.{key}")
    warm = params.get("warmup_epochs")
    if warm is not None:
        top = warm.high if isinstance(warm, Range) else max(warm.choices) if isinstance(warm, Choice) else warm.value
        if top > epochs:
            raise SpecError(source, "space.warmup_epochs", f"must be <= objective.epochs={epochs}, got {warm.describe()!r}")
    base = defaults["schedule"]
    if "schedule" in shared:
        schedule, sched_params = _parse_schedule(shared["schedule"], source, "space.schedule", base, epochs)
        base = {"type": schedule.describe(), **{k: {p: d.describe() for p, d in v.items()} for k, v in sched_params.items()}}
    if own and "schedule" in own:
        schedule, sched_params = _parse_schedule(own["schedule"], source, f"{where}.schedule", base, epochs)
    elif "schedule" not in shared:
        schedule, sched_params = _parse_schedule(base, source, "default space.schedule", base, epochs)
    return ArmSpace(params=params, schedule=schedule, schedule_params=sched_params)


def parse_arm(raw: Any, i: int, shared: dict, epochs: int, source: str) -> Arm:
    where = f"arms[{i}]"
    own = None
    if isinstance(raw, str):
        name = raw
        optimizer, _, suffix = raw.partition("+")
        if suffix not in ("", "lars"):
            raise SpecError(source, where, f"arm names are <optimizer> or <optimizer>+lars, got {raw!r}")
        lars = suffix == "lars"
    else:
        data = _mapping(raw, source, where)
        _check_keys(data, ("name", "optimizer", "lars", "space"), source, where)
        if "optimizer" not in data:
            raise SpecError(source, f"{where}.optimizer", "required")
        optimizer = data["optimizer"]
        lars = data.get("lars", False)
        if not isinstance(lars, bool):
            raise SpecError(source, f"{where}.lars", f"must be true or false, got {lars!r}")
        name = data.get("name", f"{optimizer}+lars" if lars else optimizer)
        own = _mapping(data.get("space") or {}, source, f"{where}.space")
        _check_keys(own, tuple(PARAM_RULES) + ("schedule",), source, f"{where}.space")
    if optimizer not in OPTIMIZERS:
        raise SpecError(source, where, f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError(source, f"{where}.name", f"must be letters, digits and _.+- (no '/'), got {name!r}")
    return Arm(name, optimizer, lars, _parse_space(shared, own, optimizer, lars, epochs, source, f"{where}.space"))


class _FirstValues:
    """A stand-in trial that picks each dimension's first choice or low end (and a given schedule)."""

    def __init__(self, schedule: str):
        self.schedule = schedule

    def suggest_categorical(self, name: str, choices: list) -> Any:
        return self.schedule if name == "schedule" else choices[0]

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return low

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return low


def check_with_objectives(objective: dict[str, Any], arms: tuple[Arm, ...], source: str) -> None:
    """Let ``objectives.validate_config`` judge one config per arm and schedule type."""
    try:
        from objectives import ConfigError, validate_config
    except ImportError:  # objectives absent: its checks run when a trial starts
        return
    from search.space import suggest_config

    for i, arm in enumerate(arms):
        params = {k: Fixed(1e-3) if isinstance(d, Auto) else d for k, d in arm.space.params.items()}
        space = ArmSpace(params, arm.space.schedule, arm.space.schedule_params)
        kinds = arm.space.schedule.choices if isinstance(arm.space.schedule, Choice) else (arm.space.schedule.value,)
        for kind in kinds:
            config = suggest_config(_FirstValues(kind), objective, arm.optimizer, arm.lars, space)
            try:
                validate_config(config)
            except ConfigError as exc:
                match = re.search(r"config key '([^']+)'", str(exc))
                key = match.group(1) if match else ""
                where = f"objective.{key}" if key in objective else f"arms[{i}] ({arm.name})"
                raise SpecError(source, where, str(exc)) from None
