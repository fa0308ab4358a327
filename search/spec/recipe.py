"""Published recipes as trial 0 of every arm, and the study-file keys of the verdict.

Study-file keys (parsed here, called from :func:`search.spec.study_file.parse_spec`)::

    evaluation: {seeds: 3}      # final evaluation: the incumbent retrained with K fresh seeds on the test set
    replicates: 1               # N independent searches per arm (sampler seeds differ)
    recipe: true                # trial 0 of each arm is its published recipe (the default), clamped
                                # into the arm's space; false: none; or per arm:
    recipe: {sgd: {lr: 0.1, weight_decay: 5.0e-4, schedule: cosine}, adam: false}

A recipe is a partial config in ``objectives`` terms (``lr``, ``momentum``, ``nesterov``,
``weight_decay``, ``trust_coefficient``, ``lars_eps``, ``lars_mode``, ``lars_clip``,
``warmup_epochs``, ``schedule``, ``schedule_params``). The published recipe of an arm is
clamped into its space (a range's ends, a choice's nearest value, a fixed value wins);
a recipe the study file gives must lie inside the arm's space, and each of its keys must
be one the recipe trial trains (a key of the arm's space, a parameter of the schedule it
trains), else the file is rejected with one line naming the key. Keys a given recipe leaves out come from the
published recipe.

The published recipes live with the optimizers in :mod:`objectives.registry` (each
``OptimizerInfo.recipe`` and ``lars_recipe``, and :data:`~objectives.registry.LARS_RECIPE`,
with their sources); :func:`published_recipe` puts an arm's together.

The recipe is enqueued with ``study.enqueue_trial`` when an arm's study is created, so it
is trial 0 of each arm and replicate (user attr ``recipe``: ``"published"`` or
``"study file"``; ``recipe_clamped``: what the clamp into the space moved, one line per
range); ``compare`` shows what tuning gained over it. An ``lr: auto`` arm's recipe, the
study file's own included, is enqueued once the range test has set its range, clamped
into it.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any

from objectives.registry import LARS_RECIPE, LARS_WARMUP_FRACTION, OPTIMIZERS
from search.errors import SpecError
from search.seeds import MAX_EVALUATION_SEEDS
from search.spec.arms import Arm, _int, _mapping
from search.spec.space import SPACE_KEYS, Auto, Choice, Dimension, Fixed, Range, why_not

__all__ = [
    "FinalSpec",
    "RECIPE_KEYS",
    "clamp_notes",
    "middle",
    "needs_recipe_later",
    "published_recipe",
    "parse_final",
    "recipe_params",
]

RECIPE_KEYS = (*SPACE_KEYS, "schedule", "schedule_params")


@dataclass(frozen=True)
class FinalSpec:
    """``seeds`` (evaluation.seeds), ``replicates`` and per-arm recipe params (None: no recipe).

    ``recipes[arm]`` is ``(params, source)``: the Optuna params of the recipe trial and
    ``"published"`` or ``"study file"``; ``configs[arm]``: a study file's own recipe as a
    partial config (the published recipe's keys where it names none), from which an
    ``lr: auto`` arm's params are made once its range is known.
    """

    seeds: int = 3
    replicates: int = 1
    recipes: dict[str, tuple[dict[str, Any], str] | None] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)


def published_recipe(optimizer: str, lars: bool, epochs: int) -> dict[str, Any]:
    """The published recipe of an arm (:mod:`objectives.registry`), as a partial config (a fresh copy)."""
    info = OPTIMIZERS[optimizer]
    recipe = dict(info.recipe)
    if lars:
        recipe.update({**info.lars_recipe, **LARS_RECIPE, "warmup_epochs": LARS_WARMUP_FRACTION * epochs})
    return copy.deepcopy(recipe)


# --------------------------------------------------------------------------- clamping


def needs_recipe_later(arm: Arm) -> bool:
    """``lr: auto``: the arm's recipe is computed and enqueued after the range test has set its range."""
    return any(isinstance(d, Auto) for d in arm.space.params.values())


def _clamp(dim: Dimension, value: Any) -> Any:
    """``value`` moved into ``dim``: the fixed value, the nearest choice, or the range's end."""
    if isinstance(dim, Fixed):
        return dim.value
    if isinstance(dim, Choice):
        if value in dim.choices:
            return value
        numeric = [c for c in dim.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value > 0 and all(c > 0 for c in numeric):
                return min(numeric, key=lambda c: abs(math.log(c) - math.log(value)))
            return min(numeric, key=lambda c: abs(c - value))
        return dim.choices[0]
    x = min(max(float(value), dim.low), dim.high)
    if dim.step is not None:
        x = min(dim.low + round((x - dim.low) / dim.step) * dim.step, dim.high)
    return int(round(x)) if dim.integer else x


def _inside(dim: Dimension, value: Any) -> bool:
    if isinstance(dim, Fixed):
        return value == dim.value
    if isinstance(dim, Choice):
        return value in dim.choices
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not dim.low <= value <= dim.high:
        return False
    return dim.step is None or math.isclose((value - dim.low) / dim.step, round((value - dim.low) / dim.step))


def middle(dim: Dimension) -> Any:
    """A dimension's middle, as a value a trial can draw: the fixed value, the first choice, a range's
    (geometric, for log) midpoint on its step grid."""
    if isinstance(dim, Fixed):
        return dim.value
    if isinstance(dim, Choice):
        return dim.choices[0]
    mid = math.sqrt(dim.low * dim.high) if dim.log else (dim.low + dim.high) / 2
    return _clamp(dim, mid)


def _encode(value: Any) -> Any:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def recipe_params(
    arm: Arm, recipe: dict[str, Any], *, strict: tuple[str, ...] = (), source: str = "<study>", where: str = "recipe"
) -> dict[str, Any]:
    """The Optuna params of ``recipe`` in ``arm``'s space (only the searched dimensions).

    Values are clamped into the space, except for the keys in ``strict`` (those a study
    file's own recipe names: a key, ``schedule``, or ``schedule_params.<name>``), where a
    value outside the space raises :class:`SpecError` naming ``<where>.<key>``. A
    dimension the recipe does not name takes its middle (a range's (geometric) middle,
    a choice list's first value).
    """
    space = arm.space
    params: dict[str, Any] = {}

    def place(dim: Dimension, value: Any, key: str) -> Any:
        if key in strict:
            if not _inside(dim, value):
                raise SpecError(
                    source, f"{where}.{key}", f"{value!r} is outside arm {arm.name!r}'s space ({dim.describe()!r})"
                )
            return value
        return _clamp(dim, value)

    chosen: dict[str, Any] = {}
    products = []
    for key, dim in space.params.items():
        if isinstance(dim, Auto):
            continue  # lr: auto: the range test sets the range; the recipe is enqueued after it
        if isinstance(dim, Range) and dim.per is not None:
            products.append((key, dim))
            continue
        value = place(dim, recipe[key], key) if key in recipe else middle(dim)
        chosen[key] = value
        if not isinstance(dim, Fixed):
            params[key] = _encode(value)
    for key, dim in products:  # a range of key * per (search.spec.space): the product is the Optuna param
        factor = chosen.get(dim.per, recipe.get(dim.per))
        value = recipe[key] * factor if key in recipe and factor is not None else None
        params["*".join(sorted((key, dim.per)))] = place(dim, value, key) if value is not None else middle(dim)
    kinds = space.schedule.choices if isinstance(space.schedule, Choice) else (space.schedule.value,)
    kind = place(space.schedule, recipe.get("schedule", kinds[0]), "schedule")
    if not isinstance(space.schedule, Fixed):
        params["schedule"] = kind
    given = recipe.get("schedule_params") or {}
    for pname, dim in space.schedule_params.get(kind, {}).items():
        value = place(dim, given[pname], f"schedule_params.{pname}") if pname in given else middle(dim)
        if not isinstance(dim, Fixed):
            params[f"schedule.{kind}.{pname}"] = _encode(value)
    return params


def clamp_notes(arm: Arm, recipe: dict[str, Any], params: dict[str, Any], *, tested: bool = False) -> list[str]:
    """One line per searched range that ``recipe`` (a partial config) lies outside of, as
    :func:`recipe_params` clamped it into ``params``: ``"lr 0.5 clamped to 0.1 (the top of the
    searched [0.01, 0.1])"``; ``tested``: the lr ranges came from the arm's range test."""
    notes = []
    for key, dim in arm.space.params.items():
        if not isinstance(dim, Range) or isinstance(dim, Auto) or key not in recipe:
            continue
        name, wanted = key, recipe[key]
        if dim.per is not None:
            factor = params.get(dim.per, recipe.get(dim.per))
            if factor is None:
                continue
            name, wanted = "*".join(sorted((key, dim.per))), recipe[key] * factor
        got = params.get(name)
        if got is None or isinstance(wanted, bool) or not isinstance(wanted, (int, float)):
            continue
        if not dim.low <= wanted <= dim.high:
            where = "the range test's" if tested and name in ("lr", "lr*trust_coefficient") else "the searched"
            notes.append(f"{name} {wanted:.3g} clamped to {got:.3g} (the {'top' if wanted > dim.high else 'bottom'} "
                         f"of {where} [{dim.low:.3g}, {dim.high:.3g}])")  # fmt: skip
    return notes


# --------------------------------------------------------------------------- the study-file keys


def _check_trained(arm: Arm, data: dict, params: dict[str, Any], source: str, where: str) -> None:
    """Every key of a study file's recipe must be one its trial trains, as a value outside the space must
    be inside it: a key of the arm's space, a parameter of the schedule the recipe trains."""
    space = arm.space
    for key in data:
        if key in SPACE_KEYS and key not in space.params:
            raise SpecError(
                source, f"{where}.{key}", f"not in arm {arm.name!r}'s space, so no trial trains it (the config default "
                f"holds); add it to the space (e.g. space: {{{key}: {json.dumps(data[key])}}}) or leave it out of the recipe",
            )  # fmt: skip
    kind = params.get("schedule", getattr(space.schedule, "value", None))
    own = space.schedule_params.get(kind, {})
    for name in data.get("schedule_params") or {}:
        if name not in own:
            raise SpecError(
                source, f"{where}.schedule_params.{name}", f"not a parameter of schedule {kind!r}, which the recipe "
                f"trains (its parameters: {', '.join(own) or 'none'})",
            )  # fmt: skip


def _parse_recipe(
    raw: Any, arms: tuple[Arm, ...], epochs: int, source: str, lr_factor: Any = None
) -> tuple[dict, dict]:
    recipes: dict[str, tuple[dict[str, Any], str] | None] = {}
    configs: dict[str, dict[str, Any]] = {}
    if raw is False:
        return {arm.name: None for arm in arms}, configs
    own: dict = {}
    if raw is not True and raw is not None:
        own = _mapping(raw, source, "recipe")
        names = [a.name for a in arms]
        for key in own:
            if key not in names:
                raise SpecError(source, f"recipe.{key}", f"no such arm; arms: {', '.join(names)}")
    for arm in arms:
        published = published_recipe(arm.optimizer, arm.lars, epochs)
        factor = lr_factor(arm.optimizer) if lr_factor is not None else 1.0
        published["lr"] *= factor  # a recipe is written for the reference batch (search.spec.batch_axis)
        given = own.get(arm.name, True)
        if given is False:
            recipes[arm.name] = None
            continue
        if given is True:
            recipes[arm.name] = (recipe_params(arm, published), "published")
            continue
        where = f"recipe.{arm.name}"
        data = _mapping(given, source, where)
        for key in data:
            if key not in RECIPE_KEYS:
                raise SpecError(source, f"{where}.{key}", f"unknown key; allowed: {', '.join(RECIPE_KEYS)}")
            why = why_not(key, arm.optimizer, arm.lars) if key in SPACE_KEYS else None
            if why is not None:
                raise SpecError(source, f"{where}.{key}", f"does not apply to this arm ({why})")
        if "schedule_params" in data:
            _mapping(data["schedule_params"], source, f"{where}.schedule_params")
        merged = {**published, **data}
        if "lr" in data:
            merged["lr"] = data["lr"] * factor
        if "schedule" in data and data["schedule"] != published["schedule"]:
            merged["schedule_params"] = dict(data.get("schedule_params") or {})
        strict = tuple(k for k in data if k != "schedule_params")
        strict += tuple(f"schedule_params.{p}" for p in data.get("schedule_params") or {})
        params = recipe_params(arm, merged, strict=strict, source=source, where=where)
        _check_trained(arm, data, params, source, where)
        recipes[arm.name] = (params, "study file")
        configs[arm.name] = merged
    return recipes, configs


def parse_final(data: dict, arms: tuple[Arm, ...], epochs: int, source: str, *, lr_factor: Any = None) -> FinalSpec:
    """``evaluation``, ``replicates`` and ``recipe`` of a study file; raises :class:`SpecError`.

    ``lr_factor(optimizer)``: what a recipe's lr is multiplied by (a value of a batch-size axis).
    """
    evaluation = _mapping(data.get("evaluation") or {}, source, "evaluation")
    for key in evaluation:
        if key != "seeds":
            raise SpecError(source, f"evaluation.{key}", "unknown key; allowed: seeds")
    seeds = _int(evaluation.get("seeds", 3), source, "evaluation.seeds", minimum=1)
    if seeds > MAX_EVALUATION_SEEDS:
        raise SpecError(source, "evaluation.seeds", f"must be an integer in [1, {MAX_EVALUATION_SEEDS}], got {seeds!r}")
    replicates = _int(data.get("replicates", 1), source, "replicates", minimum=1)
    raw = data.get("recipe", True)
    if not isinstance(raw, (bool, dict)) and raw is not None:
        raise SpecError(source, "recipe", f"must be true, false or a mapping of arm -> recipe, got {raw!r}")
    recipes, configs = _parse_recipe(raw, arms, epochs, source, lr_factor)
    return FinalSpec(seeds=seeds, replicates=replicates, recipes=recipes, configs=configs)
