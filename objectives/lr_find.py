"""The learning-rate range test: up to where a config's loss stops falling, for a search to sample.

Smith, *Cyclical Learning Rates for Training Neural Networks* (arXiv:1506.01186, 2017),
section 3.3, and fastai's ``lr_find``: train for a few hundred steps while the learning
rate rises exponentially from ``low`` to ``high``, record each step's training loss, and
read a range off the smoothed curve::

    scale_k   = low * (high / low) ** (k / (steps - 1))          step k = 0 .. steps-1
    e_k       = a_k / (1 - beta ** (k + 1)),  a_k = beta a_{k-1} + (1 - beta) loss_k
                (fastai's debiased exponential moving average; beta = 0.9)
    stop      = the first k whose loss is NaN/inf or with e_k > 4 min(e_0 .. e_{k-1})
    s         = exp of the same average of log(loss), run forwards and then backwards, up
                to the stop: a smoothed curve without e's lag (about beta / (1 - beta)
                steps, which would move every point below to a larger scale), in which
                the huge losses just before the stop do not leak backwards
    lowest    = argmin s_k before the stop                       (the loss stops falling)
    steepest  = argmin ds/dlog(scale) over k < lowest            (it falls fastest)
    diverged  = the first k > lowest with s_k > s_0              (worse than the untrained model),
                else the stop, else the last step                (reported, not searched)
    range     = [max(scale_0, min(scale_steepest, scale_lowest / 10)), scale_lowest]

The range ends where the loss stops falling (Smith, *A disciplined approach to neural
network hyper-parameters*, arXiv:1803.09820, 2018: the largest lr at which the loss still
falls) and starts at fastai's ``minimum`` suggestion (a tenth of it) or lower where the fall
is steepest. A trial trains for many epochs, not a few hundred steps at a rising lr, so it
wants less than a sweep can take: the range used to end where the sweep diverges, and far
more of the trials drawn there ended below 50% validation accuracy, while this one still
holds the best trials found (the figures: ``benchmarks/RESULTS.md``, Search efficiency,
2026-12-02, "Why the range was the problem").

What is swept is the *step scale*: the lr for a plain config, and the product lr * lambda
for a LARS config (the layer's relative step ``||dw|| / ||w||`` in both LARS modes). For a
LARS config the lr stays the config's, since it is also the lr of the tensors LARS leaves
alone (biases, batch norm), and lambda is swept: ``lambda_k = scale_k / lr``.

A curve with no usable range raises :class:`RangeNotFound` with one line saying what
happened and what to try: the loss diverged within the first ``EARLY`` steps (every lr
tried is too large), diverged later without having fallen (the sweep is too short for
this objective), or never fell by ``min_drop`` (the objective does not learn at any lr
tried).

Example::

    from objectives.lr_find import lr_sweep, pick_range
    sweep = lr_sweep({"dataset": "fashion_mnist", "n_train": 2000, "width": 0.125, "lars": True})
    found = pick_range(sweep.scales, sweep.losses, name="lr*lambda")
    print(found.low, found.high, sweep.trial_epochs)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .config import validate_config
from .data import Splits
from .train import prepare_run, train_step

__all__ = ["LrRange", "RangeNotFound", "Sweep", "lr_sweep", "pick_range", "smooth", "smooth_centred", "step_scale"]

SMOOTHING = 0.9  # beta of the moving average (fastai: 0.98, a lag of ~50 steps in a sweep of a few hundred)
DIVERGE_FACTOR = 4.0  # fastai's stop_div: the smoothed loss above 4x its minimum so far
MIN_DROP = 0.05  # the smoothed loss must fall 5% below its first value to count as learning
EARLY = 10  # a divergence within the first EARLY steps: every lr tried was too large


class RangeNotFound(ValueError):
    """A range test whose loss curve has no usable range; the message says what to try."""


@dataclass(frozen=True)
class Sweep:
    """One range test: the step scale and training loss of every step taken."""

    scales: list[float]
    losses: list[float]  # NaN/inf where the loss diverged; the sweep stops there
    steps_per_epoch: int

    @property
    def trial_epochs(self) -> float:
        """The sweep's cost in epochs of training (no validation is run)."""
        return len(self.losses) / self.steps_per_epoch


@dataclass(frozen=True)
class LrRange:
    """The range picked from a sweep: ``low`` a tenth of ``high`` or where the loss falls fastest, ``high``
    where it is lowest; ``diverged`` where the sweep stopped learning (see the module docstring)."""

    low: float
    high: float
    steepest: int  # index of the steepest fall of the smoothed loss
    lowest: int  # index of the lowest smoothed loss: high
    diverged: int  # index where the smoothed loss is back above its start, or the sweep stopped


def step_scale(config: dict[str, Any]) -> float:
    """What the range test sweeps: ``lr``, or ``lr * trust_coefficient`` for a LARS config."""
    return config["lr"] * config["trust_coefficient"] if config["lars"] else config["lr"]


def smooth(losses: Sequence[float], beta: float = SMOOTHING) -> list[float]:
    """fastai's debiased exponential moving average ``a_k / (1 - beta ** (k + 1))``."""
    out, avg = [], 0.0
    for k, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (k + 1)))
    return out


def smooth_centred(losses: Sequence[float], beta: float = SMOOTHING) -> list[float]:
    """:func:`smooth` forwards, then backwards over the result: the same smoothing without its lag."""
    return smooth(smooth(losses, beta)[::-1], beta)[::-1]


def _divergence(losses: Sequence[float], smoothed: Sequence[float], factor: float) -> int | None:
    """The first step whose loss is not finite or whose smoothed loss exceeds ``factor`` x its minimum so far."""
    low = math.inf
    for k, (loss, s) in enumerate(zip(losses, smoothed)):
        if not math.isfinite(loss) or not math.isfinite(s) or s > factor * low:
            return k
        low = min(low, s)
    return None


def pick_range(
    scales: Sequence[float],
    losses: Sequence[float],
    *,
    smoothing: float = SMOOTHING,
    diverge_factor: float = DIVERGE_FACTOR,
    min_drop: float = MIN_DROP,
    name: str = "lr",
) -> LrRange:
    """The range ``[min(scale where the smoothed loss falls fastest, a tenth of high), scale where it is lowest]``.

    See the module docstring for the rule. ``name`` names the swept quantity in messages.

    Raises:
        RangeNotFound: the loss did not fall by ``min_drop`` before it diverged, or at all.
    """
    if len(scales) != len(losses):
        raise ValueError(f"scales and losses must have the same length, got {len(scales)} and {len(losses)}")
    if not losses:
        raise RangeNotFound(f"the {name} range test took no step: nothing to read a range from")
    end = _divergence(losses, smooth([x if math.isfinite(x) else math.inf for x in losses], smoothing), diverge_factor)
    curve = [math.exp(x) for x in smooth_centred([math.log(max(x, 1e-300)) for x in losses[:end]], smoothing)]
    lowest = min(range(len(curve)), key=curve.__getitem__, default=0)
    if lowest == 0 or curve[lowest] > (1 - min_drop) * curve[0]:
        if end is not None and end < EARLY:
            raise RangeNotFound(
                f"the loss never fell before it diverged at {name} {scales[end]:.3g} (swept from "
                f"{scales[0]:.3g}): every {name} tried is too large; try a smaller lowest {name} or give "
                f"{name} a fixed range"
            )
        if end is not None:
            raise RangeNotFound(
                f"the loss never fell by {min_drop:.0%} before it diverged at {name} {scales[end]:.3g} after "
                f"{end} steps (swept from {scales[0]:.3g}): it learns too slowly for a sweep this short; sweep "
                f"more steps, or give {name} a fixed range"
            )
        raise RangeNotFound(
            f"the loss never fell by {min_drop:.0%} over {name} {scales[0]:.3g}..{scales[-1]:.3g} in "
            f"{len(losses)} steps: the objective does not learn at any {name} tried; check the data and "
            f"model, sweep more steps or higher, or give {name} a fixed range"
        )
    logs = [math.log(s) for s in scales]

    def slope(k: int) -> float:  # central difference of the smoothed loss over log(scale), one-sided at 0
        lo, hi = max(0, k - 1), k + 1  # k < lowest, so k + 1 is on the curve
        return (curve[hi] - curve[lo]) / (logs[hi] - logs[lo])

    steepest = min(range(lowest), key=slope)
    worse = next((k for k in range(lowest + 1, len(curve)) if curve[k] > curve[0]), None)
    diverged = worse if worse is not None else end if end is not None else len(curve) - 1
    low = max(scales[0], min(scales[steepest], scales[lowest] / 10))  # not below what was swept
    return LrRange(low=low, high=scales[lowest], steepest=steepest, lowest=lowest, diverged=diverged)


class _Sweeping:
    """The run's scheduler during a sweep: step k sets the step scale ``scales[k]`` (from 0, at creation)."""

    def __init__(self, optimizer: torch.optim.Optimizer, scales: list[float], *, lars: bool):
        self.optimizer, self.scales, self.lars, self.k = optimizer, scales, lars, 0
        self._set(scales[0])

    def _set(self, scale: float) -> None:
        for group in self.optimizer.param_groups:
            if self.lars:
                group["lars_trust_coefficient"] = scale / group["lr"]
            else:
                group["lr"] = scale

    def step(self) -> None:
        self.k = min(self.k + 1, len(self.scales) - 1)
        self._set(self.scales[self.k])


def lr_sweep(
    config: dict[str, Any],
    *,
    data: Splits | None = None,
    low: float = 1e-6,
    high: float = 10.0,
    steps: int = 200,
    diverge_factor: float = DIVERGE_FACTOR,
    check_every: int = 10,
) -> Sweep:
    """Train ``config`` for up to ``steps`` steps with the step scale rising from ``low`` to ``high``.

    The config's model, data, optimizer and seed are used as :func:`objectives.train`
    uses them; its schedule and warm-up are not (the sweep is the schedule: each step
    sets the lr, or for a LARS config the trust coefficient ``scale / lr``). The losses
    stay on the device and are read every ``check_every`` steps, and the sweep stops at
    the first read where the loss diverged (as :func:`pick_range` defines it).
    """
    if not 0 < low < high:
        raise ValueError(f"the sweep needs 0 < low < high, got low={low!r}, high={high!r}")
    if steps < 3:
        raise ValueError(f"steps must be >= 3, got {steps!r}")
    config = validate_config(
        {**config, "schedule": "constant", "schedule_params": {}, "warmup_epochs": 0.0, "evaluate_test": False}
    )
    run = prepare_run(config, data)
    gamma = (high / low) ** (1 / (steps - 1))
    scales = [low * gamma**k for k in range(steps)]
    run.scheduler = _Sweeping(run.optimizer, scales, lars=config["lars"])
    losses: list[float] = []
    pending: list[torch.Tensor] = []
    run.model.train()
    b, order = run.batch_size, None
    for k in range(steps):
        position = k % run.steps_per_epoch
        if position == 0:  # a new pass over the shuffled training split
            order = torch.randperm(run.data.train_images.shape[0], generator=run.generator, device=run.device)
        pending.append(train_step(run, order[position * b : (position + 1) * b]))
        if len(pending) == check_every or k == steps - 1:
            losses += torch.stack(pending).tolist()  # one host read per check_every steps
            pending.clear()
            if _divergence(losses, smooth(losses), diverge_factor) is not None:
                break
    return Sweep(scales=scales[: len(losses)], losses=losses, steps_per_epoch=run.steps_per_epoch)
