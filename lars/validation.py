"""Validation of LARS's arguments and per-group keys: errors name the key, rule and value."""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = [
    "GROUP_KEYS",
    "MODES",
    "MOMENTUM_FORMS",
    "check_trust_coefficient",
    "check_eps",
    "check_mode",
    "check_momentum_form",
    "check_group",
]

MODES = ("gradient", "update")

#: ``"torch"``: lr outside the momentum buffer (torch.optim.SGD's form);
#: ``"paper"``: lr inside it (the LARS paper's, MLPerf's and optax's form).
MOMENTUM_FORMS = ("torch", "paper")

#: Per-group keys LARS reads; namespaced so they never collide with a base
#: optimizer's own keys (Adam's ``eps``, for one).
GROUP_KEYS = (
    "lars_trust_coefficient",
    "lars_eps",
    "lars_mode",
    "lars_momentum_form",
    "lars_clip",
    "lars_exclude",
)


def check_trust_coefficient(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_eps(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < math.inf):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_mode(name: str, value: Any) -> None:
    if value not in MODES:
        raise ValueError(f"{name} must be 'gradient' or 'update', got {value!r}")


def check_momentum_form(name: str, value: Any) -> None:
    if value not in MOMENTUM_FORMS:
        raise ValueError(f"{name} must be 'torch' or 'paper', got {value!r}")


def check_group(group: dict[str, Any], index: int, *, base: torch.optim.Optimizer) -> None:
    """Check one param group's LARS keys (all present) and its weight decay.

    ``base`` is the wrapped optimizer: the paper's momentum form needs
    ``torch.optim.SGD``, whose hyperparameters (momentum, dampening, Nesterov) it uses.
    """
    where = f"param group {index}"
    for key in group:
        if key.startswith("lars_") and key not in GROUP_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}; LARS's keys are {', '.join(GROUP_KEYS)}")
    check_trust_coefficient(f"{where}: lars_trust_coefficient", group["lars_trust_coefficient"])
    check_eps(f"{where}: lars_eps", group["lars_eps"])
    check_mode(f"{where}: lars_mode", group["lars_mode"])
    check_momentum_form(f"{where}: lars_momentum_form", group["lars_momentum_form"])
    for key in ("lars_clip", "lars_exclude"):
        if not isinstance(group[key], bool):
            raise TypeError(f"{where}: {key} must be a bool, got {group[key]!r}")
    lr = group.get("lr")
    if isinstance(lr, torch.Tensor) and lr.numel() != 1:
        raise ValueError(f"{where}: a tensor lr must have 1 element, got shape {tuple(lr.shape)}")
    weight_decay = group.get("weight_decay", 0.0)
    if not (isinstance(weight_decay, (int, float)) and 0.0 <= weight_decay < math.inf):
        raise ValueError(f"{where}: weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if group["lars_momentum_form"] == "paper" and not group["lars_exclude"]:
        if group["lars_mode"] != "gradient":
            raise ValueError(
                f"{where}: lars_momentum_form 'paper' needs lars_mode 'gradient' (the "
                f"momentum form is the placement of lr in SGD's buffer), got "
                f"{group['lars_mode']!r}"
            )
        if not isinstance(base, torch.optim.SGD):
            raise ValueError(
                f"{where}: lars_momentum_form 'paper' needs a torch.optim.SGD base, got {type(base).__name__}"
            )
