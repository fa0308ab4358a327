"""Study files: the YAML schema, its defaults, and validation before any database is touched.

A study file (``studies/*.yaml``) is read with ``yaml.safe_load`` and validated in full
by :func:`load_spec`; every error is a :class:`SpecError` whose message names the file,
the key and what is wrong, e.g.::

    studies/q.yaml: space.lr: log range must have low > 0, got low=0

Schema (all keys but ``name`` and ``objective.epochs`` optional)::

    name: quickstart                 # studies are named <name>/<arm> in the storage
    description: free text
    objective:                       # fixed objectives config keys, shared by every arm
      dataset: fashion_mnist         # fashion_mnist | cifar10
      model: vgg16                   # vgg11 | vgg13 | vgg16 | vgg19
      width: 0.125                   # channel multiplier
      n_train: 3000                  # training subset (after the validation hold-out)
      val_size: 1000                 # images held out of the training split
      epochs: 3
      batch_size: 128
      seed: 0                        # the same training seed for every trial
      device: auto                   # auto | cpu | cuda ; precision: auto | fp32 | bf16
    arms: [sgd, sgd+lars, rmsprop, rmsprop+lars, adam, adam+lars]   # the default
      # or mappings: {name: adam-wide, optimizer: adam, lars: false, space: {lr: ...}}
    space:                           # each key: value | [choices] | {low, high, log, step}
      lr: {low: 1.0e-3, high: 1.0, log: true}
      weight_decay: {low: 1.0e-6, high: 1.0e-2, log: true}
      momentum: 0.9                  # sgd and rmsprop arms
      trust_coefficient: {low: 1.0e-3, high: 1.0, log: true}   # lambda, LARS arms only
      lars_eps: 1.0e-8               # epsilon, LARS arms only
      warmup_epochs: {low: 0, high: 1}
      schedule:
        type: [constant, step, multistep, exponential, cosine, polynomial]
        step: {step_size: {low: 1, high: 3}, gamma: 0.1}       # each type's own params, in epochs
        multistep: {milestones: [[1, 2], [2]], gamma: 0.1}
        exponential: {gamma: {low: 0.5, high: 0.95}}
        cosine: {final_lr_ratio: 0.0}
        polynomial: {power: 2.0, final_lr_ratio: 0.0}
    budget: {trials: 20, timeout: 2h}   # FINISHED trials per arm; wall-clock limit of one run
    sampler: {type: tpe, seed: 0}       # tpe | random | qmc | cmaes | gp
    pruner: {type: median}              # median | hyperband | none
    storage: sqlite:///lars-search.db   # any SQLAlchemy URL

Keys left out of ``space`` take the default space (:func:`default_space`), so a file
that names only ``lr`` still tunes beta, lambda, epsilon and the scheduler. An arm's own
``space`` overrides the shared one for that arm only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from search.space import (
    PARAM_RULES,
    SCHEDULE_RULES,
    SCHEDULES,
    ArmSpace,
    Choice,
    Dimension,
    Fixed,
    Range,
    Rule,
    applies_to,
)

__all__ = [
    "SPEC_VERSION",
    "DEFAULT_ARMS",
    "OPTIMIZERS",
    "SAMPLERS",
    "PRUNERS",
    "OBJECTIVE_KEYS",
    "SpecError",
    "Arm",
    "Budget",
    "SamplerSpec",
    "PrunerSpec",
    "StudySpec",
    "load_spec",
    "parse_spec",
    "default_space",
    "parse_duration",
]

SPEC_VERSION = 1
DEFAULT_ARMS = ("sgd", "sgd+lars", "rmsprop", "rmsprop+lars", "adam", "adam+lars")
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw", "adagrad")
SAMPLERS = ("tpe", "random", "qmc", "cmaes", "gp")
PRUNERS = ("median", "hyperband", "none")
TOP_KEYS = ("name", "description", "objective", "arms", "space", "budget", "sampler", "pruner", "storage")
# objectives config keys a study fixes for all arms; the rest come from the arm and the space.
OBJECTIVE_KEYS = (
    "dataset", "data_dir", "n_train", "val_size", "model", "width", "epochs", "batch_size",
    "seed", "device", "precision", "compile",
)  # fmt: skip
# objective keys that change how a trial runs, not what it measures (free to change on resume)
RUNTIME_KEYS = ("device", "data_dir", "compile")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


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


@dataclass(frozen=True)
class Budget:
    """``trials``: finished trials per arm (None: until the timeout); ``timeout``: seconds per run."""

    trials: int | None = 20
    timeout: float | None = None


@dataclass(frozen=True)
class SamplerSpec:
    type: str = "tpe"
    seed: int = 0
    n_startup_trials: int | None = None  # None: chosen from the budget (see search.study)
    multivariate: bool = False


@dataclass(frozen=True)
class PrunerSpec:
    type: str = "median"
    n_startup_trials: int | None = None  # None: chosen from the budget
    n_warmup_steps: int = 0  # epochs never judged, on top of each trial's own LR warm-up
    min_resource: int = 1
    reduction_factor: int = 3


@dataclass(frozen=True)
class StudySpec:
    """A validated study file. ``text`` is the file as written (stored with each study)."""

    name: str
    objective: dict[str, Any]
    arms: tuple[Arm, ...]
    budget: Budget = field(default_factory=Budget)
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    storage: str | None = None
    description: str = ""
    text: str = ""
    source: str = "<study>"

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r} in study {self.name!r}; arms: {', '.join(a.name for a in self.arms)}")

    def study_name(self, arm: Arm | str) -> str:
        return f"{self.name}/{arm if isinstance(arm, str) else arm.name}"

    def identity(self, arm: Arm) -> dict[str, Any]:
        """What makes trials of an arm comparable: objective (minus runtime keys), arm, space."""
        objective = {k: v for k, v in sorted(self.objective.items()) if k not in RUNTIME_KEYS}
        return {"objective": objective, "optimizer": arm.optimizer, "lars": arm.lars, "space": arm.space.describe()}


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


def parse_duration(value: Any, source: str, key: str) -> float | None:
    """Seconds from a number or a string like ``"90s"``, ``"15m"``, ``"2h"``; None stays None."""
    if value is None:
        return None
    seconds: Any = value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([smhd]?)\s*", value)
        if not match:
            raise SpecError(source, key, f"must be seconds >= 0 or a duration like '90s', '15m', '2h', got {value!r}")
        seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0 or math.isinf(seconds):
        raise SpecError(source, key, f"must be seconds >= 0, got {value!r}")
    return float(seconds)


# --------------------------------------------------------------------------- default space


def default_space(optimizer: str, lars: bool, epochs: int) -> dict[str, Any]:
    """The space an arm gets for keys a study file leaves out (YAML form).

    Base lr ranges follow common practice (SGD around 0.1, adaptive optimizers around
    1e-3); lambda spans the LARS paper's 1e-3 up to LAMB's effective 1; the scheduler
    type is searched over all six with each type's parameters fixed at classic values
    scaled to ``epochs`` (step: a third of training, gamma 0.1; multistep: 50% and 75%;
    exponential: lr / 100 at the end; polynomial power 2, as in the LARS paper).
    """
    plain_sgd_like = optimizer == "sgd"
    space: dict[str, Any] = {
        "lr": {"low": 1e-3, "high": 1.0, "log": True} if plain_sgd_like else {"low": 1e-5, "high": 1e-1, "log": True},
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
        "momentum": 0.9,
        "trust_coefficient": {"low": 1e-3, "high": 1.0, "log": True},
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


# --------------------------------------------------------------------------- sections


def _parse_objective(raw: Any, source: str) -> dict[str, Any]:
    data = _mapping(raw, source, "objective")
    _check_keys(data, OBJECTIVE_KEYS, source, "objective")
    if "epochs" not in data:
        raise SpecError(source, "objective.epochs", "required (epochs per trial)")
    objective = dict(data)
    objective["epochs"] = _int(data["epochs"], source, "objective.epochs", minimum=1)
    if "batch_size" in data:
        _int(data["batch_size"], source, "objective.batch_size", minimum=1)
    if data.get("n_train") is not None:
        _int(data["n_train"], source, "objective.n_train", minimum=1)
    if "val_size" in data:
        _int(data["val_size"], source, "objective.val_size", minimum=1)
    if "width" in data:
        width = data["width"]
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise SpecError(source, "objective.width", f"must be a number > 0, got {width!r}")
    return objective


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
                raise SpecError(source, f"{where}.multistep.milestones", f"every milestone must be < objective.epochs={epochs}, got {dim.describe()!r}")
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


def _parse_arm(raw: Any, i: int, shared: dict, epochs: int, source: str) -> Arm:
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
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(source, f"{where}.name", f"must be letters, digits and _.+- (no '/'), got {name!r}")
    return Arm(name, optimizer, lars, _parse_space(shared, own, optimizer, lars, epochs, source, f"{where}.space"))


def _parse_budget(raw: Any, source: str) -> Budget:
    data = _mapping(raw, source, "budget")
    _check_keys(data, ("trials", "timeout"), source, "budget")
    trials = data.get("trials", None if "timeout" in data else Budget.trials)
    if trials is not None:
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise SpecError(source, "budget.trials", f"must be a positive integer (trials per arm), got {trials!r}")
    timeout = parse_duration(data.get("timeout"), source, "budget.timeout")
    return Budget(trials=trials, timeout=timeout)


def _parse_sampler(raw: Any, source: str) -> SamplerSpec:
    data = _mapping({"type": raw} if isinstance(raw, str) else raw, source, "sampler")
    _check_keys(data, ("type", "seed", "n_startup_trials", "multivariate"), source, "sampler")
    kind = data.get("type", "tpe")
    if kind not in SAMPLERS:
        raise SpecError(source, "sampler.type", f"unknown sampler {kind!r}; choose from {', '.join(SAMPLERS)}")
    if kind == "cmaes":
        try:
            import cmaes  # noqa: F401 (Optuna's CmaEsSampler needs it)
        except ImportError:
            raise SpecError(source, "sampler.type", "'cmaes' needs the cmaes package: pip install cmaes") from None
    seed = _int(data.get("seed", 0), source, "sampler.seed", minimum=0)
    startup = data.get("n_startup_trials")
    if startup is not None:
        if kind in ("random", "qmc"):
            raise SpecError(source, "sampler.n_startup_trials", f"not used by the {kind!r} sampler")
        startup = _int(startup, source, "sampler.n_startup_trials", minimum=0)
    multivariate = data.get("multivariate", False)
    if not isinstance(multivariate, bool) or (multivariate and kind != "tpe"):
        raise SpecError(source, "sampler.multivariate", f"must be true or false, and only for tpe; got {multivariate!r}")
    return SamplerSpec(type=kind, seed=seed, n_startup_trials=startup, multivariate=multivariate)


def _parse_pruner(raw: Any, source: str) -> PrunerSpec:
    data = _mapping({"type": raw} if isinstance(raw, str) else raw, source, "pruner")
    kind = data.get("type", "median")
    if kind not in PRUNERS:
        raise SpecError(source, "pruner.type", f"unknown pruner {kind!r}; choose from {', '.join(PRUNERS)}")
    allowed = {"median": ("n_startup_trials", "n_warmup_steps"), "hyperband": ("min_resource", "reduction_factor"), "none": ()}
    _check_keys(data, ("type",) + allowed[kind], source, "pruner")
    out: dict[str, Any] = {"type": kind}
    for key in ("n_startup_trials", "n_warmup_steps"):
        if key in data:
            out[key] = _int(data[key], source, f"pruner.{key}", minimum=0)
    if "min_resource" in data:
        out["min_resource"] = _int(data["min_resource"], source, "pruner.min_resource", minimum=1)
    if "reduction_factor" in data:
        out["reduction_factor"] = _int(data["reduction_factor"], source, "pruner.reduction_factor", minimum=2)
    return PrunerSpec(**out)


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


def _check_with_objectives(objective: dict[str, Any], arms: tuple[Arm, ...], source: str) -> None:
    """Let ``objectives.validate_config`` judge one config per arm and schedule type."""
    try:
        from objectives import ConfigError, validate_config
    except ImportError:  # objectives absent: its checks run when a trial starts
        return
    from search.space import suggest_config

    for i, arm in enumerate(arms):
        kinds = arm.space.schedule.choices if isinstance(arm.space.schedule, Choice) else (arm.space.schedule.value,)
        for kind in kinds:
            config = suggest_config(_FirstValues(kind), objective, arm.optimizer, arm.lars, arm.space)
            try:
                validate_config(config)
            except ConfigError as exc:
                match = re.search(r"config key '([^']+)'", str(exc))
                key = match.group(1) if match else ""
                where = f"objective.{key}" if key in objective else f"arms[{i}] ({arm.name})"
                raise SpecError(source, where, str(exc)) from None


def parse_spec(data: Any, *, source: str = "<study>", text: str = "") -> StudySpec:
    """Validate a loaded study file (a mapping) into a :class:`StudySpec`; raises :class:`SpecError`."""
    if not isinstance(data, dict):
        raise SpecError(source, "", f"a study file must be a YAML mapping, got {_type_name(data)}")
    _check_keys(data, TOP_KEYS, source, "")
    if "name" not in data:
        raise SpecError(source, "name", "required (studies are stored as <name>/<arm>)")
    name = data["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(source, "name", f"must be letters, digits and _.+- (no '/'), got {name!r}")
    if "objective" not in data:
        raise SpecError(source, "objective", "required (at least objective.epochs)")
    objective = _parse_objective(data["objective"], source)
    epochs = objective["epochs"]
    shared = _mapping(data.get("space") or {}, source, "space")
    _check_keys(shared, tuple(PARAM_RULES) + ("schedule",), source, "space")
    arms_raw = data.get("arms", list(DEFAULT_ARMS))
    if not isinstance(arms_raw, list) or not arms_raw:
        raise SpecError(source, "arms", f"must be a non-empty list, got {arms_raw!r}")
    arms = tuple(_parse_arm(raw, i, shared, epochs, source) for i, raw in enumerate(arms_raw))
    names = [a.name for a in arms]
    for arm_name in names:
        if names.count(arm_name) > 1:
            raise SpecError(source, "arms", f"arm names must be distinct, {arm_name!r} appears {names.count(arm_name)} times")
    _check_with_objectives(objective, arms, source)
    storage = data.get("storage")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise SpecError(source, "storage", f"must be an SQLAlchemy URL like sqlite:///lars-search.db, got {storage!r}")
    description = data.get("description") or ""
    return StudySpec(
        name=name,
        objective=objective,
        arms=arms,
        budget=_parse_budget(data.get("budget") or {}, source),
        sampler=_parse_sampler(data.get("sampler") or {}, source),
        pruner=_parse_pruner(data.get("pruner") or {}, source),
        storage=storage,
        description=str(description),
        text=text,
        source=source,
    )


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file; raises :class:`SpecError` naming the file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(source, "", f"cannot read the study file ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, "", f"not valid YAML: {where}{problem}") from None
    return parse_spec(data, source=source, text=text)
