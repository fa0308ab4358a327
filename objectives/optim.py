"""The optimizer and learning-rate schedule of a config, built with :mod:`lars` only.

* parameter groups: ``lars.param_groups(model, weight_decay=beta)`` (biases and BN
  parameters get no weight decay and no adaptation), for the plain arms as well, so that
  "LARS vs plain" differs only in the trust ratio;
* base optimizer: the registry's ``torch.optim`` class (:data:`objectives.registry.OPTIMIZERS`,
  by name: :func:`optimizer_class`) at the
  base lr alpha, with the config keys it takes (SGD: momentum, nesterov; RMSprop: momentum);
* with ``lars``: ``lars.LARS(base, trust_coefficient=lambda, eps=epsilon, mode,
  momentum_form, clip)``;
* schedule: ``lars.schedules.warmup_schedule`` stepped once per optimizer step, with the
  config's epoch units turned into steps by :func:`schedule_in_steps`.
"""

from __future__ import annotations

from typing import Any

import torch

import lars

from .registry import OPTIMIZERS, SCHEDULES

__all__ = [
    "build_optimizer",
    "check_optimizer",
    "make_optimizer",
    "optimizer_class",
    "schedule_arguments",
    "schedule_in_steps",
]


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """The ``torch.optim`` class of the registry's optimizer ``name`` (``"sgd"`` -> ``torch.optim.SGD``)."""
    return getattr(torch.optim, OPTIMIZERS[name].torch_name)


def schedule_in_steps(schedule: str, params: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """Convert a schedule's epoch-valued params to optimizer steps (the registry's ``to_steps``).

    ``step_size`` and each milestone (epochs) become ``max(1, round(epochs * steps_per_epoch))``
    steps (milestones that land on the same step stay repeated, and lars rejects them;
    :func:`objectives.config.validate_config` says so first, in epochs); an exponential
    ``gamma`` per epoch becomes ``gamma ** (1 / steps_per_epoch)`` per step, so that the lr
    after one epoch is the same; ``final_lr_ratio`` and ``power`` have no unit.
    """
    info = SCHEDULES[schedule].params
    return {name: info[name].to_steps(value, steps_per_epoch) for name, value in params.items()}


def schedule_arguments(config: dict[str, Any], steps_per_epoch: int) -> dict[str, Any]:
    """The keyword arguments of ``lars.schedules.warmup_schedule`` (after the optimizer) for ``config``."""
    total_steps = config["epochs"] * steps_per_epoch
    return {
        "kind": config["schedule"],
        "total_steps": total_steps,
        "warmup_steps": min(total_steps, round(config["warmup_epochs"] * steps_per_epoch)),
        **schedule_in_steps(config["schedule"], config["schedule_params"], steps_per_epoch),
    }


def make_optimizer(groups: list[dict[str, Any]], config: dict[str, Any]) -> torch.optim.Optimizer:
    """The registry's base optimizer over ``groups``, wrapped in :class:`lars.LARS` when ``config["lars"]``."""
    info = OPTIMIZERS[config["optimizer"]]
    optimizer = optimizer_class(info.name)(groups, lr=config["lr"], **{key: config[key] for key in info.params})
    if config["lars"]:
        optimizer = lars.LARS(
            optimizer,
            trust_coefficient=config["trust_coefficient"],
            eps=config["lars_eps"],
            mode=config["lars_mode"],
            momentum_form=config["lars_momentum_form"],
            clip=config["lars_clip"],
        )
    return optimizer


def check_optimizer(config: dict[str, Any], steps_per_epoch: int = 1) -> None:
    """Build ``config``'s optimizer and schedule on one dummy matrix: raises what torch or lars would.

    The dummy gets the config's weight decay, as a decayed, adapted tensor of a real model does.
    """
    weight = torch.nn.Parameter(torch.zeros(2, 2))
    optimizer = make_optimizer([{"params": [weight], "weight_decay": config["weight_decay"]}], config)
    lars.schedules.check_schedule(**schedule_arguments(config, steps_per_epoch))
    del optimizer


def build_optimizer(
    model: torch.nn.Module, config: dict[str, Any], steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimizer (LARS-wrapped when ``config["lars"]``) and its per-step schedule.

    ``config`` is a validated config (:func:`objectives.config.validate_config`).
    """
    optimizer = make_optimizer(lars.param_groups(model, weight_decay=config["weight_decay"]), config)
    arguments = schedule_arguments(config, steps_per_epoch)
    scheduler = lars.schedules.warmup_schedule(optimizer, arguments.pop("kind"), **arguments)
    return optimizer, scheduler
