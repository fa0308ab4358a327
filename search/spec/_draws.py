"""Every config a trial of an arm can draw, judged by ``objectives.validate_config`` up front.

A study file's ranges are checked key by key in :mod:`search.spec.arms`; a rule between keys
(nesterov with momentum 0, a milestone past the end of training) only shows in a whole
config. :func:`check_with_objectives` builds the configs that stand for all a trial can
draw (every value of every choice, both ends of every range, and every pair of them) and
lets ``objectives`` judge each, so that such a file fails with one line naming its key,
before any database is touched, and not in a trial.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Any

from objectives.config import ConfigError, validate_config
from search.errors import SpecError
from search.spec.arms import Arm
from search.spec.space import ArmSpace, Auto, Range, suggest_config

__all__ = ["check_with_objectives"]


class _Draw:
    """A stand-in trial that returns given values by Optuna parameter name."""

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def suggest_categorical(self, name: str, choices: list) -> Any:
        value = self.values[name]
        return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return self.values[name]

    suggest_int = suggest_float


def _draws(space: ArmSpace) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """Assignments of every searched dimension (by Optuna name) that stand for all a trial can draw.

    Each value of a choice and both ends of a range, alone and in every pair with another
    dimension's, the rest at their first value; each with the names of the dimensions
    varied. Schedule types after the first are paired among their own parameters and the
    warm-up only (the rules that involve a schedule involve nothing else).
    """
    out, seen = [], set()
    kinds = space.schedule.values()
    for n, kind in enumerate(kinds):
        dims = {name: d.values() for name, d in space.params.items()}
        dims.update({f"schedule.{kind}.{p}": d.values() for p, d in space.schedule_params.get(kind, {}).items()})
        first = {name: values[0] for name, values in dims.items()}
        first["schedule"] = kind
        varied = [name for name, values in dims.items() if len(values) > 1]
        if n > 0:
            varied = [v for v in varied if v.startswith("schedule.") or v == "warmup_epochs"]
        for group in itertools.chain([()], ((v,) for v in varied), itertools.combinations(varied, 2)):
            for values in itertools.product(*(dims[name] for name in group)):
                draw = {**first, **dict(zip(group, values))}
                key = tuple(sorted((k, repr(v)) for k, v in draw.items()))
                if key not in seen:
                    seen.add(key)
                    out.append((draw, group))
    return out


def _where(key: str, objective: dict[str, Any], arm: Arm, kind: str, i: int) -> str:
    """The study-file key a config key of an arm's trial came from."""
    if key in objective:
        return f"objective.{key}"
    if key in arm.space.origins:
        return arm.space.origins[key]
    if key.startswith("schedule_params."):
        return arm.space.origins.get(f"schedule.{kind}.{key.split('.', 1)[1]}", f"arms[{i}] ({arm.name})")
    if key == "schedule":
        return arm.space.origins.get("schedule", f"arms[{i}] ({arm.name})")
    return f"arms[{i}] ({arm.name})"


def check_with_objectives(objective: dict[str, Any], arms: tuple[Arm, ...], source: str) -> None:
    """Let ``objectives.validate_config`` judge every config a trial of each arm can draw (see :func:`_draws`)."""
    for i, arm in enumerate(arms):
        params = {k: Range(d.low, d.high, log=True) if isinstance(d, Auto) else d for k, d in arm.space.params.items()}
        space = replace(arm.space, params=params)
        for draw, varied in _draws(space):
            config = suggest_config(_Draw(draw), objective, arm.optimizer, arm.lars, space)
            try:
                validate_config(config)
            except ConfigError as exc:
                match = re.search(r"config keys? '([^']+)'", str(exc))
                where = _where(match.group(1) if match else "", objective, arm, draw["schedule"], i)
                drawn = ", ".join(f"{name.rsplit('.', 1)[-1]}={draw[name]!r}" for name in varied)
                when = f" (a trial of arm {arm.name!r} can draw {drawn})" if drawn else ""
                raise SpecError(source, where, f"{exc}{when}") from None
