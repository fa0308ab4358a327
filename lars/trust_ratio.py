"""The trust ratio: LARS's layer-wise local learning rate, as tiny pure functions.

For one parameter tensor ``w`` (a "layer") with direction ``g``::

    local_lr = λ · ‖w‖ / (‖g‖ + β · ‖w‖ + ε)        1 where ‖w‖ = 0 or ‖g‖ = 0

λ is the trust coefficient, β the weight decay and ε a small term that keeps the
denominator away from zero. With LARC clipping the ratio becomes an absolute rate
capped by the base learning rate α: ``local_lr = min(local_lr / α, 1)``, so the
effective per-tensor rate ``α · local_lr`` is ``min(λ‖w‖/(‖g‖ + β‖w‖ + ε), α)``; at
α = 0 (a warm-up's first step) it is 1, the limit, with nothing divided by zero.

A zero norm gives a ratio of exactly 1 (the paper's rule, as optax does it), not a
skipped tensor (apex LARC's behaviour) and not 0: a freshly zero-initialised tensor
still moves, and a tensor whose gradient vanished keeps its weight decay. The choice
is made with ``torch.where`` on device, never with ``.item()`` or a Python ``if``,
so a step never waits for the accelerator.

References:
    Y. You, I. Gitman, B. Ginsburg, "Large Batch Training of Convolutional
    Networks", arXiv:1708.03888, 2017 (LARS; eq. for the local LR, Algorithm 1).
    Y. You et al., "Large Batch Optimization for Deep Learning: Training BERT in
    76 minutes", arXiv:1904.00962, 2019 (LAMB: the ratio on an optimizer's update).
    B. Ginsburg et al., NVIDIA apex ``LARC`` (the clipping variant).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["trust_ratio", "local_lr", "update_factor", "tensor_norms", "norm_dtype"]


def trust_ratio(
    weight_norm: Tensor,
    direction_norm: Tensor,
    *,
    trust_coefficient: float,
    weight_decay: float = 0.0,
    eps: float = 0.0,
) -> Tensor:
    """``λ·‖w‖ / (‖g‖ + β·‖w‖ + ε)`` elementwise over norms, 1 where a norm is 0.

    Args:
        weight_norm: ‖w‖, one entry per tensor (any shape; a 0-d tensor for one).
        direction_norm: ‖g‖, same shape: the gradient's norm in gradient mode, the
            norm of the base optimizer's update direction in update mode.
        trust_coefficient: λ (the paper's η, default there 0.001).
        weight_decay: β, the weight decay whose term ``β·‖w‖`` joins the denominator.
        eps: ε, added to the denominator.

    Returns:
        The ratio, same shape and dtype as ``weight_norm``; exactly 1 where
        ``weight_norm == 0`` or ``direction_norm == 0``.

    Example:
        >>> trust_ratio(torch.tensor(3.0), torch.tensor(4.0), trust_coefficient=0.5,
        ...             weight_decay=0.0, eps=0.0)
        tensor(0.3750)
    """
    ratio = trust_coefficient * weight_norm / (direction_norm + weight_decay * weight_norm + eps)
    nonzero = (weight_norm > 0) & (direction_norm > 0)
    return torch.where(nonzero, ratio, torch.ones_like(ratio))


def local_lr(
    weight_norm: Tensor,
    direction_norm: Tensor,
    *,
    lr: float | Tensor,
    trust_coefficient: float,
    weight_decay: float = 0.0,
    eps: float = 0.0,
    clip: bool = False,
) -> Tensor:
    """The factor LARS multiplies a tensor's gradient by (its base rate ``lr`` stays outside).

    Without clipping this is :func:`trust_ratio`. With ``clip=True`` (LARC) it is
    ``min(trust_ratio / lr, 1)``, so ``lr · local_lr = min(trust_ratio, lr)``; with
    ``lr = 0`` that is 1 (``trust_ratio / 0`` is +inf, no error). Either way it is
    exactly 1 where ``‖w‖ = 0`` or ``‖g‖ = 0``.

    Example:
        >>> local_lr(torch.tensor(3.0), torch.tensor(4.0), lr=0.5,
        ...          trust_coefficient=0.5, clip=True)          # min(0.375/0.5, 1)
        tensor(0.7500)
    """
    ratio = trust_coefficient * weight_norm / (direction_norm + weight_decay * weight_norm + eps)
    if clip:
        ratio = torch.clamp(ratio / lr, max=1.0)
    nonzero = (weight_norm > 0) & (direction_norm > 0)
    return torch.where(nonzero, ratio, torch.ones_like(ratio))


def update_factor(
    weight_norm: Tensor,
    step_norm: Tensor,
    *,
    lr: float | Tensor,
    trust_coefficient: float,
    eps: float = 0.0,
    clip: bool = False,
) -> Tensor:
    """Update mode's factor ``r`` on the base optimizer's whole step ``Δ = −α·u``.

    The step ``Δ`` carries the base's own weight decay (L2 inside ``u``, or the
    decoupled ``α·β·w``), so β enters through ``‖u‖`` and not as a separate
    ``β·‖w‖`` term: this is LAMB's ``‖u + β·w‖`` for decoupled decay. With
    ``‖u‖ = ‖Δ‖/α`` the rule ``r = λ‖w‖ / (‖u‖ + ε)`` is written without dividing by
    α, so a step at ``lr = 0`` is well defined::

        r = α·λ·‖w‖ / (‖Δ‖ + α·ε)              (clip=False)
        r = min(λ·‖w‖ / (‖Δ‖ + α·ε), 1)         (clip=True, LARC: min(r/α, 1))
        r = 1 where ‖w‖ = 0 or ‖Δ‖ = 0

    Example:
        >>> update_factor(torch.tensor(3.0), torch.tensor(2.0), lr=0.5,
        ...               trust_coefficient=0.5)               # 0.5·0.5·3 / 2
        tensor(0.3750)
    """
    scaled = trust_coefficient * weight_norm / (step_norm + lr * eps)
    factor = torch.clamp(scaled, max=1.0) if clip else lr * scaled
    nonzero = (weight_norm > 0) & (step_norm > 0)
    return torch.where(nonzero, factor, torch.ones_like(factor))


def tensor_norms(tensors: list[Tensor], *, foreach: bool = True) -> Tensor:
    """The L2 norm of every tensor in ``tensors``, stacked into one 1-D real tensor.

    ``foreach=True`` is the fast path (one ``torch._foreach_norm`` over the list),
    ``foreach=False`` the reference (one ``torch.linalg.vector_norm`` per tensor).
    Half-precision tensors are reduced in float32, float64 in float64; a complex
    tensor's norm is its real view's (``torch.view_as_real``), a real number. Any
    layout works (non-dense views, channels_last). All tensors must share a device.
    """
    if not tensors:
        return torch.empty(0)
    dtype = norm_dtype(tensors)
    real = [torch.view_as_real(t) if t.is_complex() else t for t in tensors]
    if not foreach:
        return torch.stack([torch.linalg.vector_norm(t, dtype=dtype) for t in real])
    if all(t.dtype == dtype for t in real):
        return torch.stack(torch._foreach_norm(real))
    return torch.stack(torch._foreach_norm(real, 2, dtype=dtype))


def norm_dtype(tensors: list[Tensor]) -> torch.dtype:
    """The real dtype norms of ``tensors`` are taken in: float64 if any is 64-bit, else float32."""
    if any(t.dtype in (torch.float64, torch.complex128) for t in tensors):
        return torch.float64
    return torch.float32
