"""Arms and their search spaces, parsed from a study file (see :mod:`search.spec.study_file` for the schema).

An arm is one base optimizer with LARS on or off (``sgd``, ``sgd+lars``, ...). Its space
is the study's shared ``space`` with the arm's own ``space`` on top, and
:func:`default_space` for every key neither names (the table of defaults is in
:mod:`search.spec.study_file`). Each value is checked against the key's rule in ``objectives``
(:data:`search.spec.space.PARAM_RULES`) so that a bad range is an error that names the file
and the key, before any database is touched; then :func:`search.spec._draws.check_with_objectives` lets
``objectives.validate_config`` judge the configs a trial can draw (every value of every
choice, both ends of every range, and every pair of them), so that a rule between keys
(nesterov with momentum 0, a milestone past the end) fails here and not in a trial.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from objectives.config import DEFAULT_CONFIG, ConfigError, coerce, steps_per_epoch, validate_config
from objectives.registry import LARS_MODES, OPTIMIZERS, SCHEDULES, Rule, is_number
from search.errors import SpecError
from search.spec.space import (
    PARAM_RULES,
    SCHEDULE_RULES,
    SPACE_KEYS,
    ArmSpace,
    Auto,
    Choice,
    Dimension,
    Fixed,
    Range,
    why_not,
)
from search.spec.space import (
    SCHEDULES as SCHEDULE_KINDS,
)

__all__ = [
    "DEFAULT_ARMS",
    "Arm",
    "parse_dimension",
    "default_space",
    "parse_arm",
]

DEFAULT_ARMS = ("sgd", "sgd+lars", "rmsprop", "rmsprop+lars", "adam", "adam+lars")


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # fullmatch: "$" would let a final newline through


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


def _got(value: Any) -> str:
    """How a wrong value is shown: ``null`` (an empty YAML value), else its type and value."""
    return "null (nothing written)" if value is None else f"{_type_name(value)} {value!r}"


def _mapping(value: Any, source: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(source, key, f"must be a mapping, got {_got(value)}")
    return value


def _check_keys(data: dict, allowed: tuple[str, ...], source: str, where: str, none: str = "") -> None:
    """Unknown keys are errors; ``none`` says why when nothing is allowed here."""
    for key in data:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            told = f"allowed: {', '.join(allowed)}" if allowed else (none or "no keys are allowed here")
            raise SpecError(source, path, f"unknown key; {told}")


def _int(value: Any, source: str, key: str, *, minimum: int, maximum: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        rule = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
        raise SpecError(source, key, f"must be {rule}, got {value!r}")
    return value


def _number(value: Any) -> Any:
    """YAML 1.1 reads 1e-3 (no dot) as a string; a study stored by an older version may hold one."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _coerce(value: Any, rule: Any, source: str, key: str) -> Any:
    """One scalar (or list of epochs) of a parameter, typed and checked by objectives' own check."""
    value = [_number(v) for v in value] if rule.kind == "float_list" and isinstance(value, list) else _number(value)
    try:
        return coerce(value, rule)
    except ValueError as exc:
        raise SpecError(source, key, str(exc)) from None


def _parse_range(raw: dict, rule: Any, source: str, key: str) -> Dimension:
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
    step = _number(raw.get("step"))
    if step is not None:
        if not is_number(step) or not step > 0:
            raise SpecError(source, f"{key}.step", f"must be a finite number > 0, got {step!r}")
        if log:
            raise SpecError(source, key, "a log range cannot have a step (Optuna samples one or the other)")
        if rule.kind == "int" and not float(step).is_integer():
            raise SpecError(source, f"{key}.step", f"must be an integer for an integer parameter, got {step!r}")
        whole = (high - low) / step
        if low < high and (whole < 1 or abs(whole - round(whole)) > 1e-9 * max(1.0, whole)):
            raise SpecError(
                source, f"{key}.step",
                f"must divide high - low = {high - low:.12g} into whole steps, got {step!r} "
                f"(e.g. {{low: {low!r}, high: {low + max(1, math.floor(whole)) * step:.12g}, step: {step!r}}})",
            )  # fmt: skip
    if low == high:
        return Fixed(low)
    return Range(low, high, log=log, step=step, integer=rule.kind == "int")


def parse_dimension(raw: Any, rule: Any, source: str, key: str) -> Dimension:
    """A value, a choice list or a ``{low, high, log, step}`` range, checked against ``rule``.

    ``rule``: an ``objectives.registry.Rule`` (kind, text, check, values).
    """
    if isinstance(raw, dict):
        return _parse_range(raw, rule, source, key)
    is_choice = isinstance(raw, list) and (rule.kind != "float_list" or any(isinstance(v, list) for v in raw))
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


def _decades(centre: float, decades: float = 2.0) -> dict[str, Any]:
    """A log range from ``centre / 10**decades`` to ``centre * 10**decades``."""
    return {"low": float(f"{centre / 10**decades:.3g}"), "high": float(f"{centre * 10**decades:.3g}"), "log": True}


def default_space(
    optimizer: str, lars: bool, epochs: int, *, modes: tuple[str, ...] = (), steps_per_epoch: int | None = None
) -> dict[str, Any]:
    """The space an arm gets for keys a study file leaves out (YAML form); see the table in :mod:`search.spec.study_file`.

    ``modes``: the LARS modes the arm can take (default: the optimizer's own, from the
    registry); the λ range covers each one's. Every schedule type of the registry, with
    its parameters' defaults for ``epochs`` (``ScheduleParamInfo.default_for``);
    ``steps_per_epoch``: when given, a type is left out if its default would lose a decay
    (two multistep milestones on one optimizer step).
    """
    info = OPTIMIZERS[optimizer]
    space: dict[str, Any] = {
        "lr": _decades(info.lr),
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "warmup_epochs": {"low": 0.0, "high": float(min(5, epochs))},
    }
    if "momentum" in info.params:
        space["momentum"] = info.params["momentum"]
    if lars:
        ranges = [_decades(LARS_MODES[m].trust_coefficient) for m in (modes or (info.lars_mode,))]
        space["trust_coefficient"] = {
            "low": min(r["low"] for r in ranges),
            "high": max(r["high"] for r in ranges),
            "log": True,
        }
        space["lars_eps"] = DEFAULT_CONFIG["lars_eps"]
    space["schedule"] = {"type": []}
    for kind, sched in SCHEDULES.items():
        params = {name: p.default_for(epochs) for name, p in sched.params.items()}
        if steps_per_epoch is not None and any(  # e.g. two milestones on one step: a decay lost
            isinstance(v, list) and len(set(sched.params[n].to_steps(v, steps_per_epoch))) < len(v)
            for n, v in params.items()
        ):
            continue
        space["schedule"]["type"].append(kind)
        space["schedule"][kind] = params
    return space


# --------------------------------------------------------------------------- parsing


# A schedule section as inherited: kind -> {param: (raw value, where it was written)},
# and "type" -> (raw, where).
_Inherited = dict[str, Any]


def _inherit(raw: Any, where: str, base: _Inherited) -> _Inherited:
    """``base`` with a written schedule section on top (type, and each kind's params one by one)."""
    out = {kind: dict(params) for kind, params in base.items() if kind != "type"}
    out["type"] = base["type"]
    data = {"type": raw} if isinstance(raw, (str, list)) else raw
    if "type" in data:
        out["type"] = (data["type"], f"{where}.type")
    for kind in SCHEDULE_KINDS:
        for name, value in (data.get(kind) or {}).items():
            out.setdefault(kind, {})[name] = (value, f"{where}.{kind}.{name}")
    return out


def _parse_schedule(
    raw: Any, source: str, where: str, base: _Inherited
) -> tuple[Dimension, dict[str, dict[str, Dimension]], _Inherited, dict[str, str]]:
    """The conditional scheduler space of a written section over the inherited ``base``.

    Returns the type's dimension, each type's parameter dimensions, the section as the
    next level inherits it, and where each value was written (by ``schedule`` and
    ``schedule.<type>.<param>``).
    """
    kinds_known, rules = SCHEDULE_KINDS, SCHEDULE_RULES
    data = _mapping({"type": raw} if isinstance(raw, (str, list)) else raw, source, where)
    _check_keys(data, ("type",) + kinds_known, source, where)
    for kind in kinds_known:
        if kind in data:
            _check_keys(
                _mapping(data[kind] if data[kind] is not None else {}, source, f"{where}.{kind}"),
                tuple(rules[kind]),
                source,
                f"{where}.{kind}",
                none=f"schedule {kind!r} has no parameters",
            )
    merged = _inherit(data, where, base)
    type_raw, type_at = merged["type"]
    kinds = type_raw if isinstance(type_raw, list) else [type_raw]
    for i, kind in enumerate(kinds):
        if kind not in kinds_known:
            key = f"{type_at}[{i}]" if isinstance(type_raw, list) else type_at
            raise SpecError(source, key, f"unknown scheduler {kind!r}; choose from {', '.join(kinds_known)}")
    for kind in kinds_known:
        if kind in data and kind not in kinds:  # only what this section wrote
            raise SpecError(
                source, f"{where}.{kind}", f"parameters given for {kind!r}, which is not among {type_at} {kinds}"
            )
    rule = Rule("str", "a scheduler name", values=kinds_known)
    schedule = parse_dimension(type_raw, rule, source, type_at)
    params: dict[str, dict[str, Dimension]] = {}
    origins = {"schedule": type_at}
    for kind in kinds:
        dims = {}
        for name, (value, at) in merged.get(kind, {}).items():
            dims[name] = parse_dimension(value, rules[kind][name], source, at)
            origins[f"schedule.{kind}.{name}"] = at
        params[kind] = dims
    return schedule, params, merged, origins


def _defaults_inherited(defaults: dict[str, Any]) -> _Inherited:
    sched = defaults["schedule"]
    out: _Inherited = {"type": (sched["type"], "default space.schedule.type")}
    for kind in SCHEDULE_KINDS:
        out[kind] = {n: (v, f"default space.schedule.{kind}.{n}") for n, v in (sched.get(kind) or {}).items()}
    return out


def _modes(raw: Any, optimizer: str) -> tuple[str, ...]:
    """The LARS modes a written ``lars_mode`` lets a trial take (unknown values are left to its rule)."""
    if raw is None:
        return (OPTIMIZERS[optimizer].lars_mode,)
    values = raw if isinstance(raw, list) else [raw]
    return tuple(v for v in values if v in LARS_MODES) or (OPTIMIZERS[optimizer].lars_mode,)


def _parse_space(
    shared: dict, own: dict | None, optimizer: str, lars: bool, objective: dict[str, Any], source: str, where: str
) -> ArmSpace:
    own = own or {}
    mode_raw = own.get("lars_mode", shared.get("lars_mode")) if lars else None
    modes = _modes(mode_raw, optimizer)
    for key in own:
        reason = why_not(key, optimizer, lars, modes) if key != "schedule" else None
        if reason:
            raise SpecError(source, f"{where}.{key}", f"does not apply to this arm ({reason})")
    defaults = default_space(optimizer, lars, objective["epochs"], modes=modes, steps_per_epoch=_steps(objective))
    params: dict[str, Dimension] = {}
    origins: dict[str, str] = {}
    for key in SPACE_KEYS:
        if why_not(key, optimizer, lars, modes):
            continue
        if key in own:
            raw, at = own[key], where
        elif key in shared:
            raw, at = shared[key], "space"
        elif key in defaults:
            raw, at = defaults[key], "default space"
        else:
            continue
        if key == "lr" and raw == "auto":  # search.run.lr_range finds it; the default range stands in until then
            lr = parse_dimension(defaults["lr"], PARAM_RULES["lr"], source, "default space.lr")
            params[key], origins[key] = Auto(lr.low, lr.high), f"{at}.{key}"
            continue
        params[key] = parse_dimension(raw, PARAM_RULES[key], source, f"{at}.{key}")
        origins[key] = f"{at}.{key}"
    base = _defaults_inherited(defaults)
    schedule, sched_params, _, sched_origins = _parse_schedule({}, source, "default space.schedule", base)
    if "schedule" in shared:
        schedule, sched_params, base, sched_origins = _parse_schedule(
            shared["schedule"], source, "space.schedule", base
        )
    if "schedule" in own:
        schedule, sched_params, _, sched_origins = _parse_schedule(own["schedule"], source, f"{where}.schedule", base)
    origins.update(sched_origins)
    return ArmSpace(params=params, schedule=schedule, schedule_params=sched_params, origins=origins)


def _steps(objective: dict[str, Any]) -> int | None:
    """Optimizer steps per epoch of the objective, or None when objectives rejects it (said later)."""
    try:
        return steps_per_epoch(validate_config(objective))
    except ConfigError:
        return None


def parse_arm(raw: Any, i: int, shared: dict, objective: dict[str, Any], source: str) -> Arm:
    """One entry of ``arms``: a name (``sgd+lars``) or a mapping with its own ``space``."""
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
        _check_keys(own, SPACE_KEYS + ("schedule",), source, f"{where}.space")
    if optimizer not in OPTIMIZERS:
        raise SpecError(source, where, f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise SpecError(source, f"{where}.name", f"must be letters, digits and _.+- (no '/'), got {name!r}")
    return Arm(name, optimizer, lars, _parse_space(shared, own, optimizer, lars, objective, source, f"{where}.space"))
