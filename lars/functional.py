r"""LARS's math over lists of tensors, in torch/optim's layout.

Each function has a reference path (``foreach=False``: ``_single_tensor_*``, one
tensor at a time in plain torch, the definition) and a fast path (``foreach=True``:
``_multi_tensor_*``, ``torch._foreach_*`` over the lists, the per-tensor factors kept
on the device as 0-d tensors, so a GPU step never waits for the host). Tests check
that the two agree to rounding.

The fast path runs over *chunks* of each list: on the CPU about ``CPU_CHUNK_NUMEL``
elements at a time, so that the passes over a chunk after its first read find it in
cache (the norms of ``w`` and ``g``, then the scaled gradient, all within one chunk);
elsewhere one chunk per dtype, since a GPU pays per kernel launch rather than per pass.
The chunks change the order of the work, never the math. Both paths work on complex
tensors through their real views (``torch.view_as_real``).

The three operations, for one tensor ``w`` with gradient ``g`` in a group with learning
rate α, weight decay β, trust coefficient λ and ε (see :mod:`lars.trust_ratio`):

* gradient mode, torch's momentum form (:func:`scale_gradients`): the base optimizer
  gets ``X`` as the gradient and applies its own weight decay; ``X`` is chosen so that
  what the base steps with is ``r·(g + β·w)`` (L2) or ``r·g`` (decoupled decay)::

      r = λ‖w‖ / (‖g‖ + β‖w‖ + ε)   (β only for L2 decay; LARC: min(r/α, 1))
      X = r·g + (r − 1)·β·w       = lerp(−β·w, g, r)        (L2 decay)
      X = r·g                                                (decoupled decay, or β = 0)

  (with ``maximize`` the base negates X before adding β·w, so ``X = lerp(β·w, g, r)``);
  for bfloat16/float16 tensors, whose ``X`` would cancel against the base's ``+ β·w``,
  :func:`scale_decayed_gradients` hands over the whole direction instead and the base
  steps with its L2 decay off::

      X = r·(g + β·w)        (g + β·w with the base's own add; maximize: r·(g − β·w))

* gradient mode, the paper's momentum form (:func:`paper_momentum_step`, SGD's
  hyperparameters, LARS steps the tensor itself)::

      d = r·(g + β·w);   V ← μ·V + (1 − δ)·α·d  (first step: V = α·d);   w ← w − V
      (Nesterov: w ← w − (α·d + μ·V))

* update mode (:func:`save_weights` before the base step, :func:`rescale_updates`
  after it): the base steps ``w`` as it would alone, ``Δ = w_new − w_old``, and::

      r = update_factor(‖w_old‖, ‖Δ‖)   (lars.trust_ratio: α·λ‖w‖/(‖Δ‖ + α·ε))
      w ← lerp(w_old, w_new, r) = w_old + r·Δ

A zero ‖w‖ or ‖g‖ (‖Δ‖) gives r = 1, and at r = 1 each operation hands the base exactly
what it would have had (``lerp`` at weight 1 returns its end bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .trust_ratio import local_lr, tensor_norms, update_factor

__all__ = [
    "CPU_CHUNK_NUMEL",
    "scale_gradients",
    "scale_decayed_gradients",
    "paper_momentum_step",
    "save_weights",
    "rescale_updates",
]

#: Elements per chunk of the fast path on the CPU: about 1 MiB of float32 per list, so
#: that a chunk's two or three lists stay in a core's L2 cache between passes.
CPU_CHUNK_NUMEL = 1 << 20


# ---- gradient mode, torch's momentum form ---------------------------------------------


def scale_gradients(
    params: list[Tensor],
    grads: list[Tensor],
    out: list[Tensor],
    *,
    lr: float | Tensor,
    trust_coefficient: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    clip: bool,
    maximize: bool = False,
    foreach: bool = True,
) -> list[tuple[list[Tensor], Tensor]]:
    """Write into ``out`` the gradient ``X`` that makes the base step ``r·(g + β·w)``.

    ``grads`` are only read. ``decoupled=True`` (AdamW's kind of decay) leaves β out
    of both ``X`` and the ratio: the base applies its decoupled decay unscaled.
    Returns ``(params, rates)`` pairs: the factor ``r`` of each tensor (a 1-D tensor
    per chunk).
    """
    decay = 0.0 if decoupled else weight_decay
    kw = dict(
        lr=lr,
        trust_coefficient=trust_coefficient,
        eps=eps,
        weight_decay=decay,
        clip=clip,
        start=decay if maximize else -decay,
    )
    paths = (_single_tensor_scale_gradients, _multi_tensor_scale_gradients)
    return _write_directions(paths, params, grads, out, foreach, kw)


def _write_directions(paths, params, grads, out, foreach, kw) -> list[tuple[list[Tensor], Tensor]]:
    """Run the reference path (``paths[0]``) over the whole lists or the fast path (``paths[1]``) per chunk,
    on real views; ``(params, rates)`` pairs, as :func:`scale_gradients` and :func:`scale_decayed_gradients` return."""
    single, multi = paths
    if not foreach:
        return [(params, single(*map(_real, (params, grads, out)), **kw))]
    return [
        (chunk_params, multi(*map(_real, (chunk_params, chunk_grads, chunk_out)), **kw))
        for chunk_params, chunk_grads, chunk_out in _chunks(params, grads, out)
    ]


def _multi_tensor_ratios(params, grads, lr, trust_coefficient, weight_decay, eps, clip):
    """The fast paths' factors of a chunk (:func:`lars.trust_ratio.local_lr` on foreach norms), one per tensor."""
    return local_lr(
        tensor_norms(params),
        tensor_norms(grads),
        lr=lr,
        trust_coefficient=trust_coefficient,
        weight_decay=weight_decay,
        eps=eps,
        clip=clip,
    )


def _single_tensor_ratio(w, g, lr, trust_coefficient, weight_decay, eps, clip):
    """The reference paths' factor of one tensor (:func:`lars.trust_ratio.local_lr` on its norms)."""
    return local_lr(
        tensor_norms([w], foreach=False)[0],
        tensor_norms([g], foreach=False)[0],
        lr=lr,
        trust_coefficient=trust_coefficient,
        weight_decay=weight_decay,
        eps=eps,
        clip=clip,
    )


def _single_tensor_scale_gradients(params, grads, out, *, lr, trust_coefficient, eps, weight_decay, clip, start):
    rates = []
    for w, g, x in zip(params, grads, out):
        r = _single_tensor_ratio(w, g, lr, trust_coefficient, weight_decay, eps, clip)
        if start != 0:
            x.copy_(torch.lerp(w * start, g, r.to(x.dtype)))
        else:
            x.copy_(g * r)
        rates.append(r)
    return torch.stack(rates)


def _multi_tensor_scale_gradients(params, grads, out, *, lr, trust_coefficient, eps, weight_decay, clip, start):
    rates = _multi_tensor_ratios(params, grads, lr, trust_coefficient, weight_decay, eps, clip)
    factors = rates.to(out[0].dtype).unbind()
    if start != 0:
        torch._foreach_copy_(out, params)
        torch._foreach_mul_(out, start)
        torch._foreach_lerp_(out, grads, factors)
    else:
        torch._foreach_copy_(out, grads)
        torch._foreach_mul_(out, factors)
    return rates


def scale_decayed_gradients(
    params: list[Tensor],
    grads: list[Tensor],
    out: list[Tensor],
    *,
    lr: float | Tensor,
    trust_coefficient: float,
    eps: float,
    weight_decay: float,
    clip: bool,
    maximize: bool = False,
    foreach: bool = True,
) -> list[tuple[list[Tensor], Tensor]]:
    """Write into ``out`` the whole direction ``X = r·(g + β·w)``, for a base whose L2
    decay is off during its step: the form for bfloat16 and float16 tensors.

    Why: :func:`scale_gradients` hands the base ``X = r·g + (r − 1)·β·w`` and the base
    adds ``β·w`` back. When ``β‖w‖`` dominates ``‖g‖`` (β ≫ λ, so r is small), ``X`` is
    nearly ``−β·w`` and the sum cancels: ``X`` rounded to bfloat16 carries an error of
    about ``2⁻⁹·|β·w|`` against a result of size ``r·|β·w|`` (β 5e-2, λ 1e-3: the
    step direction 15-18% off). Here nothing cancels: ``g + β·w`` is the base's own
    sum (the same ``add`` with ``alpha=β`` in the parameter's dtype, so at ``r = 1``
    ``X`` is what the base would have computed, bit for bit) and the product with
    ``r`` rounds once more. With ``maximize`` the base negates ``X``, so
    ``X = r·(g − β·w)``. Returns ``(params, rates)`` pairs as :func:`scale_gradients`.
    """
    kw = dict(
        lr=lr,
        trust_coefficient=trust_coefficient,
        eps=eps,
        weight_decay=weight_decay,
        clip=clip,
        decay=-weight_decay if maximize else weight_decay,
    )
    paths = (_single_tensor_scale_decayed, _multi_tensor_scale_decayed)
    return _write_directions(paths, params, grads, out, foreach, kw)


def _single_tensor_scale_decayed(params, grads, out, *, lr, trust_coefficient, eps, weight_decay, clip, decay):
    rates = []
    for w, g, x in zip(params, grads, out):
        r = _single_tensor_ratio(w, g, lr, trust_coefficient, weight_decay, eps, clip)
        x.copy_(g.add(w, alpha=decay).mul_(r.to(x.dtype)))
        rates.append(r)
    return torch.stack(rates)


def _multi_tensor_scale_decayed(params, grads, out, *, lr, trust_coefficient, eps, weight_decay, clip, decay):
    rates = _multi_tensor_ratios(params, grads, lr, trust_coefficient, weight_decay, eps, clip)
    torch._foreach_copy_(out, grads)
    torch._foreach_add_(out, params, alpha=decay)
    torch._foreach_mul_(out, rates.to(out[0].dtype).unbind())
    return rates


# ---- gradient mode, the paper's momentum form -----------------------------------------


def paper_momentum_step(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: float | Tensor,
    trust_coefficient: float,
    eps: float,
    weight_decay: float,
    clip: bool,
    momentum: float,
    dampening: float,
    nesterov: bool,
    maximize: bool,
    foreach: bool = True,
) -> tuple[list[tuple[list[Tensor], Tensor]], list[Tensor | None]]:
    """SGD with the rate inside the buffer: ``V ← μV + (1−δ)·α·r·(g + βw); w ← w − V``.

    ``momentum_buffers[i]`` is None before a tensor's first step; the returned list
    holds the buffers to keep (new ones where there were none; all None without
    momentum). Returns ``((params, rates) pairs, buffers)``.
    """
    kw = dict(
        lr=lr,
        trust_coefficient=trust_coefficient,
        eps=eps,
        weight_decay=weight_decay,
        clip=clip,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        sign=-1.0 if maximize else 1.0,
    )
    if not foreach:
        real_buffers = _real_or_none(momentum_buffers)
        rates = _single_tensor_paper_momentum(_real(params), _real(grads), real_buffers, **kw)
        return [(params, rates)], _complex_like(params, real_buffers)
    pairs, buffers = [], []
    for chunk_params, chunk_grads, chunk_buffers in _chunks(params, grads, momentum_buffers):
        real_buffers = _real_or_none(chunk_buffers)
        rates = _multi_tensor_paper_momentum(_real(chunk_params), _real(chunk_grads), real_buffers, **kw)
        pairs.append((chunk_params, rates))
        buffers.extend(_complex_like(chunk_params, real_buffers))
    return pairs, buffers


def _single_tensor_paper_momentum(
    params, grads, buffers, *, lr, trust_coefficient, eps, weight_decay, clip, momentum, dampening, nesterov, sign
):
    rates = []
    for i, (w, g) in enumerate(zip(params, grads)):
        r = _single_tensor_ratio(w, g, lr, trust_coefficient, weight_decay, eps, clip)
        d = (sign * g + weight_decay * w) * (lr * r).to(w.dtype)
        if momentum != 0:
            if buffers[i] is None:
                buffers[i] = d.clone()
            else:
                buffers[i].mul_(momentum).add_(d, alpha=1.0 - dampening)
            d = d.add(buffers[i], alpha=momentum) if nesterov else buffers[i]
        w.sub_(d)
        rates.append(r)
    return torch.stack(rates)


def _multi_tensor_paper_momentum(
    params, grads, buffers, *, lr, trust_coefficient, eps, weight_decay, clip, momentum, dampening, nesterov, sign
):
    rates = _multi_tensor_ratios(params, grads, lr, trust_coefficient, weight_decay, eps, clip)
    steps = torch._foreach_mul(grads, sign)
    if weight_decay != 0:
        torch._foreach_add_(steps, params, alpha=weight_decay)
    torch._foreach_mul_(steps, (lr * rates).to(params[0].dtype).unbind())
    if momentum != 0:
        started = [i for i, b in enumerate(buffers) if b is not None]
        for i, b in enumerate(buffers):
            if b is None:
                buffers[i] = steps[i].clone()
        if started:
            old = [buffers[i] for i in started]
            torch._foreach_mul_(old, momentum)
            torch._foreach_add_(old, [steps[i] for i in started], alpha=1.0 - dampening)
        if nesterov:
            torch._foreach_add_(steps, buffers, alpha=momentum)
        else:
            steps = buffers
    torch._foreach_sub_(params, steps)
    return rates


# ---- update mode ------------------------------------------------------------------------


def save_weights(params: list[Tensor], out: list[Tensor], *, foreach: bool = True) -> Tensor:
    """Before the base step: copy each ``w`` into ``out``; return ‖w‖ (1-D)."""
    if not foreach:
        for w, saved in zip(params, out):
            saved.copy_(w)
        return tensor_norms(out, foreach=False)
    norms = []
    for chunk_params, chunk_out in _chunks(params, out):
        torch._foreach_copy_(_real(chunk_out), _real(chunk_params))
        norms.append(tensor_norms(chunk_out))
    return torch.cat(norms) if len(norms) > 1 else norms[0]


def rescale_updates(
    params: list[Tensor],
    saved: list[Tensor],
    weight_norms: Tensor,
    *,
    lr: float | Tensor,
    trust_coefficient: float,
    eps: float,
    clip: bool,
    foreach: bool = True,
    workspace: dict[Any, Tensor] | None = None,
) -> list[tuple[list[Tensor], Tensor]]:
    """After the base step: ``w ← lerp(w_old, w_new, r)`` with ``Δ = w_new − w_old``.

    ``params`` hold ``w_new``, ``saved`` hold ``w_old`` (from :func:`save_weights`),
    ``weight_norms`` ‖w_old‖. The base's step is read as a difference: its own
    arithmetic, weight decay and state stay exactly the base's. ``lerp`` from
    ``w_old`` (rather than ``w_new − (1−r)·Δ``) keeps a small ``r`` from amplifying the
    rounding of ``w_new`` when the base's step is large against ``w`` (bfloat16).

    The fast path works in a chunk-sized scratch area; ``workspace`` (a dict the caller
    keeps, used for CPU chunks) saves allocating it every step. Returns
    ``(params, rates)`` pairs.
    """
    kw = dict(lr=lr, trust_coefficient=trust_coefficient, eps=eps, clip=clip)
    if not foreach:
        return [(params, _single_tensor_rescale(_real(params), _real(saved), weight_norms, **kw))]
    pairs, start = [], 0
    for chunk_params, chunk_saved in _chunks(params, saved):
        end = start + len(chunk_params)
        real_params, real_saved = _real(chunk_params), _real(chunk_saved)
        work = _scratch_views(real_params, workspace)
        rates = _multi_tensor_rescale(real_params, real_saved, weight_norms[start:end], work, **kw)
        pairs.append((chunk_params, rates))
        start = end
    return pairs


def _single_tensor_rescale(params, saved, weight_norms, *, lr, trust_coefficient, eps, clip):
    rates = []
    for w, old, w_norm in zip(params, saved, weight_norms.unbind()):
        r = update_factor(
            w_norm,
            tensor_norms([w - old], foreach=False)[0],
            lr=lr,
            trust_coefficient=trust_coefficient,
            eps=eps,
            clip=clip,
        )
        w.copy_(torch.lerp(old, w, r.to(w.dtype)))
        rates.append(r)
    return torch.stack(rates)


def _multi_tensor_rescale(params, saved, weight_norms, work, *, lr, trust_coefficient, eps, clip):
    torch._foreach_copy_(work, params)
    torch._foreach_sub_(work, saved)  # Δ
    rates = update_factor(
        weight_norms, tensor_norms(work), lr=lr, trust_coefficient=trust_coefficient, eps=eps, clip=clip
    )
    torch._foreach_lerp_(saved, params, rates.to(params[0].dtype).unbind())
    torch._foreach_copy_(params, saved)
    return rates


def _scratch_views(tensors: list[Tensor], workspace: dict[Any, Tensor] | None) -> list[Tensor]:
    """Contiguous scratch tensors shaped like ``tensors`` (one dtype and device), carved
    from one flat buffer: kept in ``workspace`` for CPU chunks (allocating and faulting in
    fresh pages every step costs more than the work), allocated anew elsewhere."""
    first = tensors[0]
    total = sum(t.numel() for t in tensors)
    key = (first.device, first.dtype)
    flat = workspace.get(key) if workspace is not None and first.device.type == "cpu" else None
    if flat is None or flat.numel() < total:
        flat = torch.empty(total, dtype=first.dtype, device=first.device)
        if workspace is not None and first.device.type == "cpu":
            workspace[key] = flat
    views, offset = [], 0
    for t in tensors:
        views.append(flat[offset : offset + t.numel()].view(t.shape))
        offset += t.numel()
    return views


def _real(tensors: list[Tensor]) -> list[Tensor]:
    """Complex tensors as their real views, on both paths: the factors are real, the two
    paths then do the same real arithmetic (a complex ``lerp`` rounds unlike its real
    view's), and the CPU compiler's foreach kernels take no complex tensors (an Inductor
    assertion in torch 2.14)."""
    return [torch.view_as_real(t) if t.is_complex() else t for t in tensors]


def _real_or_none(tensors: list[Tensor | None]) -> list[Tensor | None]:
    """:func:`_real` over a list of momentum buffers, where None (not started) stays None."""
    return [None if t is None else _real([t])[0] for t in tensors]


def _complex_like(params: list[Tensor], buffers: list[Tensor | None]) -> list[Tensor | None]:
    """Real-view buffers back in their parameter's dtype (None stays None: no momentum)."""
    return [torch.view_as_complex(b) if b is not None and p.is_complex() else b for p, b in zip(params, buffers)]


# ---- chunks -------------------------------------------------------------------------------


def _chunks(first: list[Tensor], *others: Sequence[Any]) -> list[tuple[list, ...]]:
    """Consecutive runs of the lists, split where ``first``'s device or dtype changes and,
    on the CPU, after about ``CPU_CHUNK_NUMEL`` elements (a larger tensor alone)."""
    runs: list[tuple[list, ...]] = []
    begin, size = 0, 0
    for i, t in enumerate(first):
        if i > begin:
            prev = first[i - 1]
            limit = CPU_CHUNK_NUMEL if t.device.type == "cpu" else None
            if t.device != prev.device or t.dtype != prev.dtype or (limit is not None and size + t.numel() > limit):
                runs.append(tuple(list(x[begin:i]) for x in (first, *others)))
                begin, size = i, 0
        size += t.numel()
    if begin < len(first):
        runs.append(tuple(list(x[begin:]) for x in (first, *others)))
    return runs
