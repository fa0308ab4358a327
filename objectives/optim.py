"""The optimizer and learning-rate schedule of a config, built with :mod:`lars` only.

* parameter groups: ``lars.param_groups(model, weight_decay=beta)`` (biases and BN
  parameters get no weight decay and no adaptation), for the plain arms as well, so that
  "LARS vs plain" differs only in the trust ratio;
* base optimizer: ``torch.optim.SGD`` (momentum, nesterov), ``RMSprop`` (momentum),
  ``Adam``, ``AdamW`` (decoupled weight decay) or ``Adagrad``, at the base lr alpha;
* with ``lars``: ``lars.LARS(base, trust_coefficient=lambda, eps=epsilon, mode, clip)``;
* schedule: ``lars.schedules.warmup_schedule`` stepped once per optimizer step, with the
  config's epoch units turned into steps by :func:`schedule_in_steps`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

import lars

__all__ = ["build_optimizer", "schedule_in_steps"]


def schedule_in_steps(schedule: str, params: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """Convert a schedule's epoch-valued params to optimizer steps.

    ``step_size`` and ``milestones`` (epochs) become ``round(epochs * steps_per_epoch)``
    steps (at least 1, milestones kept strictly increasing); an exponential ``gamma`` per
    epoch becomes ``gamma ** (1 / steps_per_epoch)`` per step, so that the lr after one
    epoch is the same; ``final_lr_ratio`` and ``power`` have no unit.
    """
    out = dict(params)
    if schedule == "step":
        out["step_size"] = max(1, round(params["step_size"] * steps_per_epoch))
    elif schedule == "multistep":
        out["milestones"] = sorted({max(1, round(m * steps_per_epoch)) for m in params["milestones"]})
    elif schedule == "exponential":
        out["gamma"] = math.pow(params["gamma"], 1.0 / steps_per_epoch)
    return out


def build_optimizer(
    model: torch.nn.Module, config: dict[str, Any], steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimizer (LARS-wrapped when ``config["lars"]``) and its per-step schedule.

    ``config`` is a validated config (:func:`objectives.config.validate_config`).
    """
    groups = lars.param_groups(model, weight_decay=config["weight_decay"])
    lr, momentum = config["lr"], config["momentum"]
    name = config["optimizer"]
    if name == "sgd":
        base = torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=config["nesterov"])
    elif name == "rmsprop":
        base = torch.optim.RMSprop(groups, lr=lr, momentum=momentum)
    elif name == "adam":
        base = torch.optim.Adam(groups, lr=lr)
    elif name == "adamw":
        base = torch.optim.AdamW(groups, lr=lr)
    elif name == "adagrad":
        base = torch.optim.Adagrad(groups, lr=lr)
    else:
        raise ValueError(f"optimizer must be one of sgd, rmsprop, adam, adamw, adagrad, got {name!r}")
    optimizer = base
    if config["lars"]:
        optimizer = lars.LARS(
            base,
            trust_coefficient=config["trust_coefficient"],
            eps=config["lars_eps"],
            mode=config["lars_mode"],
            clip=config["lars_clip"],
        )
    total_steps = config["epochs"] * steps_per_epoch
    scheduler = lars.schedules.warmup_schedule(
        optimizer,
        config["schedule"],
        total_steps=total_steps,
        warmup_steps=min(total_steps, round(config["warmup_epochs"] * steps_per_epoch)),
        **schedule_in_steps(config["schedule"], config["schedule_params"], steps_per_epoch),
    )
    return optimizer, scheduler
