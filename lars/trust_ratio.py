"""The trust ratio: LARS's layer-wise local learning rate, as tiny pure functions.

For one parameter tensor ``w`` (a "layer") with direction ``g``::

    local_lr = λ · ‖w‖ / (‖g‖ + β · ‖w‖ + ε)        1 where ‖w‖ = 0 or ‖g‖ = 0

λ is the trust coefficient, β the weight decay and ε a small term that keeps the
denominator away from zero. With LARC clipping the ratio becomes an absolute rate
capped by the base learning rate α: ``local_lr = min(local_lr / α, 1)``, so the
effective per-tensor rate ``α · local_lr`` is ``min(λ‖w‖/(‖g‖ + β‖w‖ + ε), α)``.

A zero norm gives a ratio of exactly 1 (the paper's rule, as optax does it), not a
skipped tensor (apex LARC's behaviour) and not 0: a freshly zero-initialised tensor
still moves, and a tensor whose gradient vanished keeps its weight decay. The choice
is made with ``torch.where`` on device, never with ``.item()`` or a Python ``if``,
so a step never waits for the accelerator.

References:
    Y. You, I. Gitman, B. Ginsburg, "Large Batch Training of Convolutional
    Networks", arXiv:1708.03888, 2017 (LARS; eq. for the local LR, Algorithm 1).
    B. Ginsburg et al., NVIDIA apex ``LARC`` (the clipping variant).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["trust_ratio", "local_lr", "local_lr_float", "tensor_norms"]


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
    ratio = trust_coefficient * weight_norm / (
        direction_norm + weight_decay * weight_norm + eps
    )
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
    """The factor LARS multiplies a tensor's step by (its base rate ``lr`` stays outside).

    Without clipping this is :func:`trust_ratio`. With ``clip=True`` (LARC) it is
    ``min(trust_ratio / lr, 1)``, so ``lr · local_lr = min(trust_ratio, lr)``. Either
    way it is exactly 1 where ``‖w‖ = 0`` or ``‖g‖ = 0``.

    Example:
        >>> local_lr(torch.tensor(3.0), torch.tensor(4.0), lr=0.5,
        ...          trust_coefficient=0.5, clip=True)          # min(0.375/0.5, 1)
        tensor(0.7500)
    """
    ratio = trust_coefficient * weight_norm / (
        direction_norm + weight_decay * weight_norm + eps
    )
    if clip:
        ratio = torch.clamp(ratio / lr, max=1.0)
    nonzero = (weight_norm > 0) & (direction_norm > 0)
    return torch.where(nonzero, ratio, torch.ones_like(ratio))


def local_lr_float(
    weight_norm: float,
    direction_norm: float,
    *,
    lr: float,
    trust_coefficient: float,
    weight_decay: float = 0.0,
    eps: float = 0.0,
    clip: bool = False,
) -> float:
    """:func:`local_lr` for one tensor, on host floats (double precision).

    Same formula and the same special cases (1 where a norm is 0 or NaN, LARC's
    ``min(r/lr, 1)``); for CPU paths where the norms are already host floats and a
    dozen tiny tensor ops per call would cost more than the arithmetic (see
    ``functional.lerp_decoupled_chunk``).

    Example:
        >>> local_lr_float(3.0, 4.0, lr=0.5, trust_coefficient=0.5, clip=True)
        0.75
    """
    if not (weight_norm > 0 and direction_norm > 0):
        return 1.0
    ratio = trust_coefficient * weight_norm / (
        direction_norm + weight_decay * weight_norm + eps
    )
    if clip:
        ratio = min(ratio / lr, 1.0)
    return ratio


def tensor_norms(tensors: list[Tensor], *, foreach: bool = True) -> Tensor:
    """The L2 norm of every tensor in ``tensors``, stacked into one 1-D tensor.

    ``foreach=True`` is the fast path: one ``torch._foreach_norm`` over the tensors, on
    CPU over their flat views (there ``_foreach_norm`` of a 4-D convolution kernel reads
    at less than half the speed of the same call on its flat view). ``foreach=False``
    is the reference, one ``torch.linalg.vector_norm`` per tensor. Half-precision
    tensors are reduced in float32. All tensors must share a device; mixed dtypes
    are promoted to the widest one.
    """
    if not tensors:
        return torch.empty(0)
    dtype = _norm_dtype(tensors)
    if not foreach:
        return torch.stack([torch.linalg.vector_norm(t, dtype=dtype) for t in tensors])
    if tensors[0].device.type == "cpu":
        flat = [t.view(-1) if t.is_contiguous() else t for t in tensors]
    else:  # on a GPU the views would only add host work: the kernels don't care about shape
        flat = tensors
    if all(t.dtype == dtype for t in tensors):
        return torch.stack(torch._foreach_norm(flat))
    return torch.stack(torch._foreach_norm(flat, 2, dtype=dtype))


def _norm_dtype(tensors: list[Tensor]) -> torch.dtype:
    dtypes = {t.dtype for t in tensors}
    if torch.float64 in dtypes:
        return torch.float64
    return torch.float32
