"""Study files: the YAML schema, its defaults, and validation before any database is touched.

A study file (``studies/*.yaml``) is read with :func:`load_yaml` (``yaml.safe_load`` with
YAML 1.2's numbers, so ``1e-3`` is a number, and a repeated key is an error; ``lars-search
train`` reads its config files with it too) and validated in full by :func:`load_spec`;
every error is a :class:`SpecError` whose message names the file, the key and what is
wrong, e.g.::

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
      seed: 0                        # one training seed for every trial of a search (replicate r: + 1000 r)
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
    budget: {trials: 20, timeout: 2h}   # FINISHED trials per arm; wall-clock limit of one run (> 0)
    sampler: {type: tpe, seed: 0}       # tpe | random | qmc | cmaes | gp; seed in [0, 2**31 - 1]
    pruner: {type: median}              # median | hyperband | none (or false); median also takes
                                        # n_startup_trials, n_warmup_steps (< epochs), interval_steps
                                        # (default: judged every epochs // 3); hyperband min_resource
                                        # (<= epochs) and reduction_factor
    storage: sqlite:///lars-search.db   # any SQLAlchemy URL

Keys left out of ``space`` take the default space (:func:`default_space`), so a file
that names only ``lr``, or no ``space`` at all, still tunes every key below. An arm's own
``space`` overrides the shared one for that arm only, key by key (an arm that picks
another schedule type keeps that type's default parameters).

The default space, wide ranges from the literature for a model nobody has tuned
(E = ``objective.epochs``; the usual lr and λ come from ``objectives.registry``)::

    key                 default                                   why
    lr                  log [usual/100, usual*100]: sgd 1e-3..10, four decades around the usual lr:
                        rmsprop, adam, adamw 1e-5..0.1,           SGD 0.1 (VGG on CIFAR-10), Adam
                        adagrad 1e-4..1                           and RMSprop 1e-3, Adagrad 1e-2
    weight_decay (β)    log 1e-6..1e-2                            5e-4 (VGG), 1e-4 (MLPerf LARS) inside
    momentum            0.9 (sgd, rmsprop)                        the usual value, fixed
    warmup_epochs       0..min(5, E)                              LARS paper, Goyal et al.: up to 5
    trust_coefficient   gradient mode: log 1e-4..1 (around 1e-2); four decades around the mode's usual λ:
      (λ, LARS arms)    update mode: log 1e-2..100 (around 1);    the paper's 1e-3 scales gradients,
                        both when lars_mode is searched           LAMB's effective 1 scales updates
    lars_eps (ε)        1e-8                                      fixed
    schedule.type       all six: constant, step, multistep,       (multistep left out when its two
                        exponential, cosine, polynomial           milestones fall on one step)
    schedule params     step: step_size E/3, gamma 0.1; multistep: milestones [E/2, 3E/4], gamma 0.1;
                        exponential: gamma 0.01**(1/E) per epoch (lr/100 at the end);
                        cosine: final_lr_ratio 0; polynomial: power 2 (the LARS paper's), final_lr_ratio 0

``lars_mode``, ``lars_clip``, ``lars_momentum_form`` (LARS arms in gradient mode) and
``nesterov`` (sgd) are not searched unless a file names them: their config defaults hold.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from objectives.config import DEFAULT_CONFIG, RULES, ConfigError, check_value
from search.errors import first_line
from search.names import StudyName, axis_name
from search.seeds import SAMPLER_SEED_MAX
from search.spec._draws import check_with_objectives
from search.spec.arms import (
    DEFAULT_ARMS,
    NAME_RE,
    Arm,
    SpecError,
    _check_keys,
    _got,
    _int,
    _mapping,
    _type_name,
    default_space,
    parse_arm,
)
from search.spec.batch_axis import AxisSpec, lr_factor, parse_axis, scale_dimension
from search.spec.recipe import FinalSpec, parse_final
from search.spec.space import SPACE_KEYS

__all__ = [
    "SPEC_VERSION",
    "TIMEOUT_RULE",
    "DEFAULT_ARMS",
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
    "load_yaml",
    "parse_spec",
    "default_space",
    "parse_duration",
]


SPEC_VERSION = 1
SAMPLERS = ("tpe", "random", "qmc", "cmaes", "gp")
PRUNERS = ("median", "hyperband", "none")
TOP_KEYS = (
    "name",
    "description",
    "objective",
    "arms",
    "space",
    "budget",
    "sampler",
    "pruner",
    "storage",
    "evaluation",
    "replicates",
    "recipe",
    "axis",
)  # evaluation, replicates, recipe: search.spec.recipe.parse_final; axis: search.spec.batch_axis
# objectives config keys a study fixes for all arms; the rest come from the arm and the space.
OBJECTIVE_KEYS = (
    "dataset", "data_dir", "n_train", "val_size", "model", "width", "epochs", "batch_size",
    "seed", "device", "precision", "compile",
)  # fmt: skip
# the rule of budget.timeout, --timeout and run_studies(timeout=...)
TIMEOUT_RULE = "must be > 0 seconds (0 would run nothing; leave it out for no limit)"
# objective keys that change how a trial runs, not what it measures (free to change on resume)
RUNTIME_KEYS = ("device", "data_dir", "compile")


@dataclass(frozen=True)
class Budget:
    """``trials``: finished trials per arm (None: until the timeout); ``timeout``: seconds per run."""

    trials: int | None = 20
    timeout: float | None = None


@dataclass(frozen=True)
class SamplerSpec:
    type: str = "tpe"
    seed: int = 0
    n_startup_trials: int | None = None  # None: chosen from the budget (see search.run._samplers)
    multivariate: bool = False


@dataclass(frozen=True)
class PrunerSpec:
    type: str = "median"
    n_startup_trials: int | None = None  # None: chosen from the budget
    n_warmup_steps: int = 0  # epochs never judged, on top of each trial's own LR warm-up
    interval_steps: int | None = None  # judge every N epochs; None: chosen from the epochs (see search.run._samplers)
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
    final: FinalSpec = field(default_factory=FinalSpec)  # evaluation, replicates, recipe (search.spec.recipe)
    axis: AxisSpec | None = None  # the batch-size axis (search.spec.batch_axis)
    per_batch: tuple[StudySpec, ...] = ()  # with an axis: one study per batch size, in axis order

    def runs(self) -> tuple[StudySpec, ...]:
        """The studies a run of this file trains: one per axis value, or the study itself."""
        return self.per_batch or (self,)

    def timed_runs(self, timeout: float | None) -> Iterator[tuple[StudySpec, float | None]]:
        """:meth:`runs`, each with the seconds left of one limit for them all (``timeout``, else
        ``budget.timeout``; None: no limit). A run whose turn comes when the time is up gets 0: stop there."""
        total = timeout or self.budget.timeout
        deadline = time.monotonic() + total if total else None
        for one in self.runs():
            yield one, None if deadline is None else max(0.0, deadline - time.monotonic())

    def arm(self, name: str) -> Arm:
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r} in study {self.name!r}; arms: {', '.join(a.name for a in self.arms)}")

    def study_name(self, arm: Arm | str) -> str:
        return StudyName(self.name, arm if isinstance(arm, str) else arm.name).format()

    def identity(self, arm: Arm) -> dict[str, Any]:
        """What makes trials of an arm comparable: objective (minus runtime keys), arm, space."""
        objective = {k: v for k, v in sorted(self.objective.items()) if k not in RUNTIME_KEYS}
        return {"objective": objective, "optimizer": arm.optimizer, "lars": arm.lars, "space": arm.space.describe()}


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


# --------------------------------------------------------------------------- YAML


def _float_pattern() -> re.Pattern:
    """YAML 1.2's floats: 1e-3 and 1E5 are numbers (YAML 1.1, PyYAML's, wants a dot)."""
    return re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    )


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load`` with YAML 1.2's floats, refusing a key written twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader says so itself
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice (first on line {first}); YAML would keep only the "
                    "last value", key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _float_pattern(), list("-+0123456789."))


def load_yaml(text: str, source: str) -> Any:
    """Parse a study file's or a config file's text; raises :class:`SpecError` naming the file and line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise SpecError(source, "", f"not valid YAML: {where}{problem}") from None


# --------------------------------------------------------------------------- sections


def _parse_objective(raw: Any, source: str) -> dict[str, Any]:
    """The fixed keys, each checked by objectives' own rule (the one ``lars-search train`` applies).

    The rules between keys (the data set's size, a full batch per epoch) are judged with
    the arms, by :func:`search.spec._draws.check_with_objectives`.
    """
    data = _mapping(raw, source, "objective")
    _check_keys(data, OBJECTIVE_KEYS, source, "objective")
    if "epochs" not in data:
        raise SpecError(source, "objective.epochs", "required (epochs per trial)")
    objective = dict(data)
    for key, value in data.items():
        if key in RULES and not (value is None and key == "n_train"):
            try:
                objective[key] = check_value(key, value, RULES[key])
            except ConfigError as exc:
                raise SpecError(source, f"objective.{key}", str(exc)) from None
    return objective


def _parse_budget(raw: Any, source: str) -> Budget:
    data = _mapping(raw, source, "budget")
    _check_keys(data, ("trials", "timeout"), source, "budget")
    trials = data.get("trials", None if "timeout" in data else Budget.trials)
    if trials is not None:
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise SpecError(source, "budget.trials", f"must be a positive integer (trials per arm), got {trials!r}")
    timeout = parse_duration(data.get("timeout"), source, "budget.timeout")
    if timeout == 0:
        raise SpecError(source, "budget.timeout", TIMEOUT_RULE)
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
    seed = _int(data.get("seed", 0), source, "sampler.seed", minimum=0, maximum=SAMPLER_SEED_MAX)
    startup = data.get("n_startup_trials")
    if startup is not None:
        if kind in ("random", "qmc"):
            raise SpecError(source, "sampler.n_startup_trials", f"not used by the {kind!r} sampler")
        startup = _int(startup, source, "sampler.n_startup_trials", minimum=0)
    multivariate = data.get("multivariate", False)
    if not isinstance(multivariate, bool) or (multivariate and kind != "tpe"):
        raise SpecError(
            source, "sampler.multivariate", f"must be true or false, and only for tpe; got {multivariate!r}"
        )
    return SamplerSpec(type=kind, seed=seed, n_startup_trials=startup, multivariate=multivariate)


def _parse_pruner(raw: Any, source: str, epochs: int) -> PrunerSpec:
    if raw is None:
        raw = {}
    if raw is False:  # `pruner: false` (YAML also reads off and no as false): no pruner
        raw = "none"
    if raw is True:
        raise SpecError(source, "pruner", f"must be a pruner type ({', '.join(PRUNERS)}), false or a mapping, got true")
    data = _mapping({"type": raw} if isinstance(raw, str) else raw, source, "pruner")
    kind = data.get("type", "median")
    if kind is False:
        kind = "none"
    if kind not in PRUNERS:
        raise SpecError(source, "pruner.type", f"unknown pruner {kind!r}; choose from {', '.join(PRUNERS)}")
    allowed = {
        "median": ("n_startup_trials", "n_warmup_steps", "interval_steps"),
        "hyperband": ("min_resource", "reduction_factor"),
        "none": (),
    }
    _check_keys(data, ("type",) + allowed[kind], source, "pruner", none="the 'none' pruner takes no options")
    out: dict[str, Any] = {"type": kind}
    for key in ("n_startup_trials", "n_warmup_steps"):
        if key in data:
            out[key] = _int(data[key], source, f"pruner.{key}", minimum=0)
    if "interval_steps" in data:
        out["interval_steps"] = _int(data["interval_steps"], source, "pruner.interval_steps", minimum=1)
    if "n_warmup_steps" in data and out["n_warmup_steps"] >= epochs:
        raise SpecError(
            source, "pruner.n_warmup_steps",
            f"must be < objective.epochs={epochs} (else no trial is ever judged), got {out['n_warmup_steps']!r}",
        )  # fmt: skip
    if "min_resource" in data:
        out["min_resource"] = _int(data["min_resource"], source, "pruner.min_resource", minimum=1, maximum=epochs)
    if "reduction_factor" in data:
        out["reduction_factor"] = _int(data["reduction_factor"], source, "pruner.reduction_factor", minimum=2)
    return PrunerSpec(**out)


def _scale_lr(arm: Arm, factor: float) -> Arm:
    params = dict(arm.space.params)
    if "lr" in params:
        params["lr"] = scale_dimension(params["lr"], factor)
    return replace(arm, space=replace(arm.space, params=params))


def _per_batch(data: dict, axis: AxisSpec, source: str, text: str) -> tuple[StudySpec, ...]:
    """One study per batch size: the file with that batch and its lrs scaled (:mod:`search.spec.batch_axis`)."""
    specs = []
    for batch in axis.batch_sizes:
        one = {k: v for k, v in data.items() if k != "axis"}
        one["name"] = axis_name(data["name"], batch)
        one["objective"] = {**data["objective"], "batch_size": batch}

        def factor(optimizer: str, batch: int = batch) -> float:
            return lr_factor(axis.lr_scaling, optimizer, batch, axis.reference)

        try:
            specs.append(parse_spec(one, source=source, text=text, _lr_factor=factor))
        except SpecError as exc:
            where = f"{exc.key}: " if exc.key and exc.key != "objective.batch_size" else ""
            raise SpecError(source, "axis.batch_size", f"at batch size {batch}: {where}{exc.message}") from None
    return tuple(specs)


def parse_spec(data: Any, *, source: str = "<study>", text: str = "", _lr_factor: Any = None) -> StudySpec:
    """Validate a loaded study file (a mapping) into a :class:`StudySpec`; raises :class:`SpecError`.

    ``_lr_factor(optimizer)``: what every lr of an arm is multiplied by (one value of a batch-size axis).
    """
    if not isinstance(data, dict):
        raise SpecError(source, "", f"a study file must be a YAML mapping, got {_type_name(data)}")
    _check_keys(data, TOP_KEYS, source, "")
    if "name" not in data:
        raise SpecError(source, "name", "required (studies are stored as <name>/<arm>)")
    name = data["name"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise SpecError(source, "name", f"must be letters, digits and _.+- (no '/'), got {name!r}")
    if "objective" not in data:
        raise SpecError(source, "objective", "required (at least objective.epochs)")
    objective = _parse_objective(data["objective"], source)
    epochs = objective["epochs"]
    shared = _mapping(data.get("space") or {}, source, "space")
    _check_keys(shared, SPACE_KEYS + ("schedule",), source, "space")
    arms_raw = data.get("arms", list(DEFAULT_ARMS))
    if not isinstance(arms_raw, list) or not arms_raw:
        raise SpecError(source, "arms", f"must be a non-empty list, got {_got(arms_raw)}")
    arms = tuple(parse_arm(raw, i, shared, objective, source) for i, raw in enumerate(arms_raw))
    if _lr_factor is not None:
        arms = tuple(_scale_lr(arm, _lr_factor(arm.optimizer)) for arm in arms)
    names = [a.name for a in arms]
    for arm_name in names:
        if names.count(arm_name) > 1:
            raise SpecError(
                source, "arms", f"arm names must be distinct, {arm_name!r} appears {names.count(arm_name)} times"
            )
    check_with_objectives(objective, arms, source)
    storage = data.get("storage")
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise SpecError(source, "storage", f"must be an SQLAlchemy URL like sqlite:///lars-search.db, got {storage!r}")
    description = data.get("description") or ""
    axis = None
    if data.get("axis") is not None:
        axis = parse_axis(data["axis"], source, objective.get("batch_size", DEFAULT_CONFIG["batch_size"]))
    text = text or yaml.safe_dump(data, sort_keys=False)  # a spec built in code is stored too
    return StudySpec(
        name=name,
        objective=objective,
        arms=arms,
        budget=_parse_budget(data.get("budget") or {}, source),
        sampler=_parse_sampler(data.get("sampler") or {}, source),
        pruner=_parse_pruner(data.get("pruner"), source, epochs),
        storage=storage,
        description=str(description),
        text=text,
        source=source,
        final=parse_final(data, arms, epochs, source, lr_factor=_lr_factor),
        axis=axis,
        per_batch=_per_batch(data, axis, source, text) if axis else (),
    )


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file; raises :class:`SpecError` naming the file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(source, "", f"cannot read the study file ({exc.strerror or exc})") from None
    return parse_spec(load_yaml(text, source), source=source, text=text)
