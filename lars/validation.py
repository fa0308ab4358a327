"""Validation of LARS's arguments and per-group keys: errors name the key, rule and value."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["GROUP_KEYS", "MODES", "check_trust_coefficient", "check_eps", "check_group"]

MODES = ("gradient", "update")

#: Per-group keys LARS reads; namespaced so they never collide with a base
#: optimizer's own keys (Adam's ``eps``, for one).
GROUP_KEYS = (
    "lars_trust_coefficient",
    "lars_eps",
    "lars_mode",
    "lars_clip",
    "lars_exclude",
)


def check_trust_coefficient(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0.0 < value < math.inf
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_eps(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0.0 <= value < math.inf
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_group(group: dict[str, Any], index: int, *, decoupled: bool) -> None:
    where = f"param group {index}"
    for key in group:
        if key.startswith("lars_") and key not in GROUP_KEYS:
            raise ValueError(
                f"{where}: unknown key {key!r}; LARS's keys are {', '.join(GROUP_KEYS)}"
            )
    check_trust_coefficient(f"{where}: lars_trust_coefficient", group["lars_trust_coefficient"])
    check_eps(f"{where}: lars_eps", group["lars_eps"])
    if group["lars_mode"] not in MODES:
        raise ValueError(
            f"{where}: lars_mode must be 'gradient' or 'update', got {group['lars_mode']!r}"
        )
    for key in ("lars_clip", "lars_exclude"):
        if not isinstance(group[key], bool):
            raise TypeError(f"{where}: {key} must be a bool, got {group[key]!r}")
    weight_decay = group.get("weight_decay", 0.0)
    if not (isinstance(weight_decay, (int, float)) and 0.0 <= weight_decay < math.inf):
        raise ValueError(
            f"{where}: weight_decay must be a finite number >= 0, got {weight_decay!r}"
        )
    if (
        decoupled
        and not group["lars_exclude"]
        and group["lars_mode"] == "gradient"
        and weight_decay != 0
    ):
        raise ValueError(
            f"{where}: lars_mode 'gradient' with a decoupled-weight-decay base (AdamW) "
            f"and weight_decay={weight_decay!r} would turn its decoupled decay into L2; "
            "use mode 'update' (the default for AdamW) or weight_decay=0"
        )
