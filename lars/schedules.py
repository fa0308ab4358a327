"""Learning-rate schedules: linear warm-up, then one of six decays.

Each schedule is a ``torch.optim.lr_scheduler.LambdaLR`` (subclass
:class:`WarmupSchedule`) whose multiplier is a plain callable object, so it saves
and resumes through ``state_dict()``/``load_state_dict()`` like any torch scheduler
and drives :class:`lars.LARS` (a real ``torch.optim.Optimizer``) as well as a bare
optimizer. Call ``sched.step()`` once per optimizer step; every length is counted
in steps (count in epochs instead and step once per epoch for a per-epoch schedule).

With ``t`` the number of ``sched.step()`` calls so far, ``W`` the warm-up length,
``T`` the total and ``α`` each group's initial lr, the lr is ``α · f(t)``::

    warm-up      t < W:   f = (t + 1) / W          (reaches α at t = W − 1)
    after it     s = t − W,  D = T − W,  p = min(s / D, 1)
      constant     f = 1
      step         f = γ ** (t // step_size)                 (counts from step 0)
      multistep    f = γ ** #{m in milestones : m <= t}      (counts from step 0)
      exponential  f = γ ** s
      cosine       f = ρ + (1 − ρ) · (1 + cos(π p)) / 2      (ρ = final_lr_ratio)
      polynomial   f = ρ + (1 − ρ) · (1 − p) ** power        (the LARS paper's, power 2)

Where the decays count from: ``step`` and ``multistep`` count from step 0, the start of
training, as papers give them ("divide by 10 at epochs 30 and 60" names the same epochs
with or without a warm-up), so ``step_size=k`` is ``milestones=[k, 2k, ...]`` and the
warm-up length never moves a decay; a decay that falls inside the warm-up shows when it
ends. ``exponential``, ``cosine`` and ``polynomial`` run over the steps after the warm-up,
so that the lr is continuous where the warm-up ends.

:data:`PARAMS` holds each kind's parameters (in steps), their defaults and rules; it is
the lowest-level statement of those rules. ``objectives.registry`` states them in a
config's units without importing torch; its tests check that the unit-free ones read
the same as here.

References: Y. You, I. Gitman, B. Ginsburg, "Large Batch Training of Convolutional
Networks", arXiv:1708.03888, 2017 (warm-up and polynomial decay of power 2);
P. Goyal et al., "Accurate, Large Minibatch SGD", arXiv:1706.02677, 2017 (linear
warm-up); I. Loshchilov, F. Hutter, "SGDR", arXiv:1608.03983, 2016 (cosine).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = [
    "PARAMS",
    "REQUIRED",
    "SCHEDULES",
    "ScheduleParam",
    "WarmupSchedule",
    "check_schedule",
    "warmup_schedule",
]


class _Required:
    """The default of a parameter that has none: it must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ScheduleParam:
    """One parameter of a schedule kind, counted in steps.

    ``default`` (or :data:`REQUIRED`), ``rule`` (in words, for error messages) and
    ``check(value) -> bool``.
    """

    default: Any
    rule: str
    check: Callable[[Any], bool]


GAMMA = ScheduleParam(0.1, "a number in (0, 1]", lambda v: _is_number(v) and 0.0 < v <= 1.0)
FINAL_LR_RATIO = ScheduleParam(0.0, "a number in [0, 1]", lambda v: _is_number(v) and 0.0 <= v <= 1.0)
POWER = ScheduleParam(2.0, "a number > 0", lambda v: _is_number(v) and v > 0.0)
STEP_SIZE = ScheduleParam(REQUIRED, "an int >= 1 (steps)", lambda v: _is_int(v) and v >= 1)
MILESTONES = ScheduleParam(
    REQUIRED,
    "a strictly increasing list of ints >= 0 (steps)",
    lambda v: (
        isinstance(v, (list, tuple)) and all(_is_int(m) and m >= 0 for m in v) and all(b > a for a, b in zip(v, v[1:]))
    ),
)

#: kind -> {parameter: ScheduleParam}, every length in steps.
PARAMS: dict[str, dict[str, ScheduleParam]] = {
    "constant": {},
    "step": {"step_size": STEP_SIZE, "gamma": GAMMA},
    "multistep": {"milestones": MILESTONES, "gamma": GAMMA},
    "exponential": {"gamma": replace(GAMMA, default=REQUIRED)},
    "cosine": {"final_lr_ratio": FINAL_LR_RATIO},
    "polynomial": {"power": POWER, "final_lr_ratio": FINAL_LR_RATIO},
}
SCHEDULES = tuple(PARAMS)


class _Factor:
    """``f(t)`` as a callable object: LambdaLR saves its ``__dict__`` in state_dict."""

    def __init__(self, kind: str, total_steps: int, warmup_steps: int, params: dict):
        self.kind = kind
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.params = dict(params)

    def __call__(self, t: int) -> float:
        warmup, p = self.warmup_steps, self.params
        if t < warmup:
            return (t + 1) / warmup
        s = t - warmup
        span = self.total_steps - warmup
        progress = min(s / span, 1.0) if span > 0 else 1.0
        kind = self.kind
        if kind == "constant":
            return 1.0
        if kind == "step":
            return p["gamma"] ** (t // p["step_size"])
        if kind == "multistep":
            return p["gamma"] ** sum(1 for m in p["milestones"] if m <= t)
        if kind == "exponential":
            return p["gamma"] ** s
        floor = p["final_lr_ratio"]
        if kind == "cosine":
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return floor + (1.0 - floor) * (1.0 - progress) ** p["power"]

    def __repr__(self) -> str:
        return f"{self.kind}(total_steps={self.total_steps}, warmup_steps={self.warmup_steps}, {self.params})"


class WarmupSchedule(LambdaLR):
    """A ``LambdaLR`` whose multiplier is the warm-up-then-decay ``f(t)``; see module doc."""

    def __init__(
        self,
        optimizer: Optimizer,
        kind: str,
        *,
        total_steps: int,
        warmup_steps: int = 0,
        last_epoch: int = -1,
        **params: Any,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"opt must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        params = check_schedule(kind, total_steps=total_steps, warmup_steps=warmup_steps, **params)
        self.kind = kind
        super().__init__(optimizer, _Factor(kind, total_steps, warmup_steps, params), last_epoch=last_epoch)


def warmup_schedule(
    opt: Optimizer, kind: str, *, total_steps: int, warmup_steps: int = 0, **params: Any
) -> WarmupSchedule:
    """Linear warm-up over ``warmup_steps`` then the ``kind`` decay until ``total_steps``.

    Args:
        opt: a torch optimizer, :class:`lars.LARS` included.
        kind: one of :data:`SCHEDULES`.
        total_steps: steps of the whole run (>= 1); cosine and polynomial reach
            ``final_lr_ratio · lr`` there and stay.
        warmup_steps: linear warm-up length, 0 <= warmup_steps <= total_steps.
        **params: the kind's parameters, all in steps:
            step: ``step_size`` (steps, counted from step 0), ``gamma=0.1``;
            multistep: ``milestones`` (steps, counted from step 0), ``gamma=0.1``;
            exponential: ``gamma`` (per step);
            cosine: ``final_lr_ratio=0.0``;
            polynomial: ``power=2.0``, ``final_lr_ratio=0.0``.

    Returns:
        A :class:`WarmupSchedule` (a ``torch.optim.lr_scheduler.LambdaLR``).

    Example:
        >>> import torch, lars
        >>> w = torch.nn.Parameter(torch.ones(2, 2))
        >>> opt = lars.LARS(torch.optim.SGD([w], lr=0.1, momentum=0.9))
        >>> sched = warmup_schedule(opt, "polynomial", total_steps=1000,
        ...                         warmup_steps=50, power=2.0)
        >>> for step in range(50):  # per batch: loss.backward(); opt.step(); sched.step()
        ...     opt.step(); sched.step()
        >>> round(opt.param_groups[0]["lr"], 6)  # warm-up over: the full lr
        0.1
    """
    return WarmupSchedule(opt, kind, total_steps=total_steps, warmup_steps=warmup_steps, **params)


def check_schedule(kind: str, *, total_steps: Any, warmup_steps: Any = 0, **params: Any) -> dict[str, Any]:
    """The ``kind``'s parameters with their defaults filled, each checked against :data:`PARAMS`.

    Raises:
        ValueError: an unknown kind or parameter, a missing one, or a value outside its
            rule; the message names the parameter, the rule and the value.
    """
    if kind not in PARAMS:
        raise ValueError(f"kind must be one of {', '.join(SCHEDULES)}, got {kind!r}")
    if not _is_int(total_steps) or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1, got {total_steps!r}")
    if not _is_int(warmup_steps) or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be an int in [0, total_steps={total_steps}], got {warmup_steps!r}")
    spec = PARAMS[kind]
    for name in params:
        if name not in spec:
            known = ", ".join(spec) or "none"
            raise ValueError(f"schedule {kind!r} got unknown parameter {name!r}; its parameters: {known}")
    out = {}
    for name, param in spec.items():
        if name not in params and param.default is REQUIRED:
            raise ValueError(f"schedule {kind!r} needs the parameter {name!r}")
        value = params.get(name, param.default)
        if not param.check(value):
            raise ValueError(f"{name} must be {param.rule}, got {value!r}")
        out[name] = list(value) if isinstance(value, tuple) else value
    return out
