"""``LARS``: layer-wise adaptive rate scaling around any ``torch.optim.Optimizer``.

The wrapper is itself a ``torch.optim.Optimizer`` that *shares* ``param_groups`` and
``state`` with the optimizer it wraps, so LR schedulers, per-group lr changes,
``state_dict``/``load_state_dict``, hooks and ``torch.amp.GradScaler`` all see one
optimizer. Momentum and every other buffer stay the base optimizer's own, and the
base steps the real parameters with its own lr and weight decay: at a trust ratio of
1 the wrapper *is* its base, which is what makes "LARS vs. plain" a fair comparison.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from . import _torch_step
from . import functional as F
from .validation import (
    GROUP_KEYS,
    MODES,
    MOMENTUM_FORMS,
    check_eps,
    check_group,
    check_mode,
    check_momentum_form,
    check_trust_coefficient,
)

__all__ = ["LARS", "GROUP_KEYS", "MODES", "MOMENTUM_FORMS"]

# Bases whose default placement is gradient mode; every other base gets update mode.
_GRADIENT_BASES = (torch.optim.SGD, torch.optim.ASGD)

# Bases LARS cannot wrap, and why.
_REFUSED = {
    torch.optim.LBFGS: "it re-evaluates the closure inside its step, which a per-step trust ratio cannot follow",
    torch.optim.SparseAdam: "it takes sparse gradients, whose norms LARS does not take",
}


# Parameter dtypes whose L2 decay LARS folds into the direction it hands the base
# (gradient mode, torch's momentum form): see F.scale_decayed_gradients.
_HALF = (torch.bfloat16, torch.float16)


def _ratio_settings(group: dict[str, Any]) -> dict[str, Any]:
    """The group's keys every LARS operation reads: α, λ, ε and LARC clipping.

    A tensor lr of any 1-element shape is taken as 0-d, as torch's optimizers take it
    (``(1, 1)`` times the 1-D ratios would broadcast to ``(1, n)``).
    """
    lr = group["lr"]
    return {
        "lr": lr.reshape(()) if isinstance(lr, Tensor) and lr.dim() != 0 else lr,
        "trust_coefficient": group["lars_trust_coefficient"],
        "eps": group["lars_eps"],
        "clip": group["lars_clip"],
    }


class LARS(Optimizer):
    r"""Layer-wise Adaptive Rate Scaling around any torch optimizer.

    For each parameter tensor ``w`` with gradient ``g`` in a group with learning rate
    ``α`` (``lr``), weight decay ``β`` (the group's own ``weight_decay``), trust
    coefficient ``λ`` and ``ε``, LARS computes a factor ``r`` per tensor and applies
    it in one of two places, chosen per group:

    * ``"gradient"`` (the paper's LARS: You, Gitman, Ginsburg, "Large Batch Training of
      Convolutional Networks", arXiv:1708.03888, 2017, Algorithm 1)::

          r = λ‖w‖ / (‖g‖ + β‖w‖ + ε)         the base then steps with r·(g + β·w)

      The base optimizer is handed, as ``p.grad`` for its step, the tensor ``X``
      that its own weight decay turns into ``r·(g + β·w)`` (``X = r·g + (r−1)·β·w``).
      For a group whose adapted tensors are all bfloat16/float16 and whose decay is
      L2, that ``X`` would cancel against the base's ``+ β·w`` (β ≫ λ: the direction
      15-18% off in bfloat16), so the base gets ``X = r·(g + β·w)`` whole, summed with
      its own ``add``, and steps with that group's weight decay at 0 (its hooks, which
      run outside that moment, still see β). At ``r = 1`` both are the base's own step.
      Default for ``SGD`` and ``ASGD``. Two momentum forms (``momentum_form``):

      - ``"torch"`` (default): torch.optim.SGD's ``v ← μv + r(g + βw); w ← w − α·v``,
        lr *outside* the buffer. It is SGD itself at ``r = 1``.
      - ``"paper"``: ``v ← μv + α·r(g + βw); w ← w − v``, lr *inside* the buffer, as
        the paper, MLPerf's reference and optax write it. Needs a ``torch.optim.SGD``
        base, whose momentum, dampening, Nesterov and maximize it uses; LARS steps
        these tensors itself (SGD's buffer cannot hold lr) and keeps the buffer in
        ``state[p]["lars_momentum_buffer"]`` (no state entry at all without momentum).
        A ``fused=True`` SGD base is unused there; LARS warns at construction.

      The two differ only while α changes: a warm-up or decay reweights the past in
      the paper's form (each gradient keeps the lr of its own step) but not in torch's
      (the whole buffer moves with today's lr).
    * ``"update"`` (as LAMB does it: You et al., "Large Batch Optimization for Deep
      Learning: Training BERT in 76 minutes", arXiv:1904.00962, 2019): the base takes
      its own step ``Δ = w_new − w_old = −α·u`` on ``w`` (Adam: ``u = m̂/(√v̂ + ε_adam)``),
      and LARS keeps the fraction ``r`` of it::

          r = λ‖w‖ / (‖u‖ + ε)                 w ← w_old + r·Δ

      Default for every other base (Adam, AdamW, RMSprop, Adagrad, ...): their
      per-coordinate normalisation would cancel a scaled gradient, so gradient mode
      there is nearly a no-op.

    With LARC clipping (``clip=True``) ``r ← min(r/α, 1)``: the per-tensor rate
    ``α·r`` is capped at α (at α = 0, the first step of a warm-up, r is 1). A zero
    ``‖w‖`` or ``‖g‖`` (``‖u‖``) gives ``r = 1``. In both modes the per-tensor step has
    size about ``α·λ·‖w‖``, so a useful ``lr`` with ``λ = 1e-3`` is large (the paper
    trains with α of 2 to 30).

    **Weight decay keeps its kind, and how β enters the ratio.** The base applies
    its own weight decay, as it would without LARS: L2 (``g + β·w`` inside SGD, Adam,
    RMSprop, ...) stays L2, decoupled (AdamW, ``decoupled_weight_decay=True``) stays
    decoupled, and LARS never zeroes or re-applies β. So the plain arm and its LARS
    twin differ by the ratio alone. β enters the ratio through the direction it
    scales:

    - gradient mode, L2 decay: the paper's ``‖g‖ + β‖w‖`` (a bound on
      ``‖g + β·w‖``, the direction the ratio scales);
    - gradient mode, decoupled decay: ``‖g‖`` alone; the ratio scales ``g`` and the
      decay stays outside it, unscaled, as the base applies it;
    - update mode, either kind: ``‖u‖`` of the base's whole step, decay included
      (``‖Δ‖/α``). With decoupled decay that is LAMB's ``‖u + β·w‖``; with L2 decay β
      acts through ``u`` (Adam normalises ``g + β·w``). Adding ``β‖w‖`` again would
      count it twice.

    A group's ``weight_decay`` is a base hyperparameter: LARS reads it, never writes it.
    Adaptation never depends on β (β = 0 still adapts, unlike timm's ``Lars``).

    **The invariant.** With ``r`` forced to 1 (e.g. ``clip=True`` and a huge λ),
    ``LARS(base)`` steps exactly as ``base``: the same values, state, decay kind, and
    the base's hooks see the same lr, weight decay and weights (in gradient mode
    ``p.grad`` is, during the base step, another tensor holding the same values).

    How a step is carried out:

    * ``p.grad`` is never changed: gradient mode puts the caller's tensor back after
      the base step. LARS keeps one work tensor per adapted parameter (``X``, or
      ``w_old`` in update mode), outside ``state_dict``.
    * Two paths, as torch/optim has them: ``foreach=False`` is the reference, one
      tensor at a time (the definition); ``foreach=True`` (default) runs
      ``torch._foreach_*`` over each group's tensors, with the ratios as device tensors
      (no ``.item()``, no host synchronisation) and, on the CPU, over cache-sized
      chunks. Both compile with ``torch.compile(opt.step)``.
    * torch's global step hooks (``torch.optim.optimizer.register_optimizer_step_pre_hook``
      and ``_post_hook``) fire once per LARS step, around it, with the caller's
      gradients; the base steps through its bare ``step`` between its own instance
      hooks (:mod:`lars._torch_step`, the one place that relies on how torch wraps
      ``Optimizer.step``).
    * ``lr`` may be a float or a 1-element tensor of any shape (``()``, ``(1,)``,
      ``(1, 1)``), taken as 0-d as torch's optimizers take it.
    * Complex parameters are stepped as their real views (``torch.view_as_real``) on
      both paths.
    * ``trust_ratios()`` returns the factors of the latest step; keeping them costs
      nothing beyond references to tensors the step computed anyway.

    Per-group keys (any group may override the constructor's value):
    ``lars_trust_coefficient`` (λ), ``lars_eps`` (ε), ``lars_mode``,
    ``lars_momentum_form``, ``lars_clip``, ``lars_exclude``; β is the group's
    ``weight_decay``. Excluded groups are the base's alone.

    Args:
        optimizer: the base optimizer, built on the parameters already (e.g. from
            :func:`lars.param_groups`). ``LBFGS`` and ``SparseAdam`` are not supported.
        trust_coefficient: λ (> 0), default 1e-3 (the paper's η).
        eps: ε (>= 0) in the ratio's denominator, default 1e-8.
        mode: ``"gradient"``, ``"update"`` or ``None`` (the base's default, above).
        momentum_form: ``"torch"`` (default) or ``"paper"`` (gradient mode with SGD).
        clip: LARC clipping, ``r ← min(r/α, 1)``.
        foreach: the ``torch._foreach_*`` path (default) or the reference loop.

    Example:
        >>> import torch, lars
        >>> model = torch.nn.Linear(4, 2)
        >>> base = torch.optim.SGD(lars.param_groups(model, weight_decay=5e-4),
        ...                        lr=2.0, momentum=0.9)
        >>> opt = LARS(base, trust_coefficient=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step(); opt.zero_grad()
        >>> [tuple(r.shape) for p, r in opt.trust_ratios()]     # one 0-d ratio per adapted tensor
        [()]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        trust_coefficient: float = 1e-3,
        eps: float = 1e-8,
        mode: str | None = None,
        momentum_form: str = "torch",
        clip: bool = False,
        foreach: bool = True,
    ) -> None:
        if not isinstance(optimizer, Optimizer) or isinstance(optimizer, LARS):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer (not a LARS), got {type(optimizer).__name__}")
        for refused, why in _REFUSED.items():
            if isinstance(optimizer, refused):
                raise TypeError(f"optimizer must not be {refused.__name__}: {why}")
        check_trust_coefficient("trust_coefficient", trust_coefficient)
        check_eps("eps", eps)
        if mode is not None:
            check_mode("mode", mode)
        check_momentum_form("momentum_form", momentum_form)
        if not isinstance(clip, bool):
            raise TypeError(f"clip must be a bool, got {clip!r}")

        self.optimizer = optimizer
        self.foreach = bool(foreach)
        default_mode = mode or ("gradient" if isinstance(optimizer, _GRADIENT_BASES) else "update")
        self._lars_defaults = {
            "lars_trust_coefficient": float(trust_coefficient),
            "lars_eps": float(eps),
            "lars_mode": default_mode,
            "lars_momentum_form": momentum_form,
            "lars_clip": clip,
            "lars_exclude": False,
        }
        self._work: dict[Tensor, Tensor] = {}
        self._workspace: dict[Any, Tensor] = {}
        self._ratios: list[tuple[list[Tensor], Tensor]] = []
        # Optimizer.__init__ hands each of the base's groups to add_param_group,
        # which adopts them (fills LARS's keys) instead of adding them again.
        super().__init__(list(optimizer.param_groups), {**optimizer.defaults, **self._lars_defaults})
        self.state = optimizer.state
        self.param_groups = optimizer.param_groups

    # ---- sharing with the base optimizer ------------------------------------------

    def _filled(self, group: dict[str, Any]) -> dict[str, Any]:
        """``group`` with LARS's missing (or None) keys set to the constructor's values."""
        missing = {k: v for k, v in self._lars_defaults.items() if group.get(k) is None}
        return {**group, **missing} if missing else group

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the base optimizer and fill LARS's keys, or raise and add nothing.

        LARS's keys are checked before the base sees the group, and the base checks
        its own before appending, so a rejected group leaves both optimizers unchanged.
        """
        groups = self.optimizer.param_groups
        if any(param_group is g for g in groups):  # adopting the base's own group
            index = next(i for i, g in enumerate(groups) if g is param_group)
            filled = self._filled(param_group)
            check_group({**self.optimizer.defaults, **filled}, index, base=self.optimizer)
            param_group.update(filled)
            _warn_unused_fused(param_group, index, self.optimizer)
            return
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        filled = self._filled(param_group)
        check_group({**self.optimizer.defaults, **filled}, len(groups), base=self.optimizer)
        self.optimizer.add_param_group(filled if filled is not param_group else param_group)
        _warn_unused_fused(groups[-1], len(groups) - 1, self.optimizer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load into the base optimizer, then share its new ``state``/``param_groups``."""
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        self.optimizer.load_state_dict(state_dict)
        self.state = self.optimizer.state
        self.param_groups = self.optimizer.param_groups
        for index, group in enumerate(self.param_groups):
            group.update(self._filled(group))
            check_group(group, index, base=self.optimizer)
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_work"] = {}
        state["_workspace"] = {}
        state["_ratios"] = []
        return state

    def __repr__(self) -> str:
        settings = ", ".join(f"{k[5:]}={v!r}" for k, v in self._lars_defaults.items())
        return f"LARS({settings},\n{self.optimizer!r})"

    # ---- what LARS did ----------------------------------------------------------------

    def trust_ratios(self) -> list[tuple[Tensor, Tensor]]:
        """``(parameter, 0-d ratio)`` for every tensor LARS adapted in the latest step.

        The ratio is the factor ``r`` the step applied: to the gradient in gradient mode,
        to the base's step in update mode (after LARC clipping, 1 for a zero norm), on
        the parameter's device. Empty before the first step. The step keeps references
        to the tensors it computed anyway; only this call splits them.
        """
        return [(p, r) for params, rates in self._ratios for p, r in zip(params, rates.unbind())]

    # ---- the step -----------------------------------------------------------------

    def _work_tensors(self, params: list[Tensor], like: list[Tensor]) -> list[Tensor]:
        """One persistent work tensor per parameter, shaped (and strided) like ``like``."""
        out = []
        for p, t in zip(params, like):
            work = self._work.get(p)
            if work is None or work.shape != t.shape or work.dtype != t.dtype:
                work = self._work[p] = torch.empty_like(t, memory_format=torch.preserve_format)
            out.append(work)
        return out

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One step of the base optimizer with the trust ratio applied per tensor.

        ``closure`` (optional) is evaluated once, with grad enabled, before the step.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        jobs = []
        for index, group in enumerate(self.param_groups):
            group.update(self._filled(group))
            check_group(group, index, base=self.optimizer)
            if group["lars_exclude"]:
                continue
            params = [p for p in group["params"] if p.grad is not None]
            if any(p.grad.is_sparse for p in params):
                raise ValueError(f"param group {index}: LARS does not support sparse gradients")
            if params:
                jobs.append((group, params))

        ratios: list[tuple[list[Tensor], Tensor]] = []
        updates = []
        swapped: list[tuple[Tensor, Tensor | None]] = []
        folded: list[dict[str, Any]] = []  # groups handed r·(g + β·w) whole
        try:
            for group, params in jobs:
                if group["lars_mode"] == "update":
                    saved = self._work_tensors(params, params)
                    norms = F.save_weights(params, saved, foreach=self.foreach)
                    updates.append((group, params, saved, norms))
                elif group["lars_momentum_form"] == "paper":
                    ratios += self._paper_step(group, params)
                    for p in params:  # stepped already: the base must skip them
                        swapped.append((p, p.grad))
                        p.grad = None
                else:
                    grads = [p.grad for p in params]
                    out = self._work_tensors(params, grads)
                    decoupled = bool(group.get("decoupled_weight_decay", False))
                    weight_decay = group.get("weight_decay", 0.0)
                    common = dict(maximize=bool(group.get("maximize", False)), foreach=self.foreach)
                    if weight_decay != 0 and not decoupled and all(p.dtype in _HALF for p in params):
                        ratios += F.scale_decayed_gradients(
                            params, grads, out, **_ratio_settings(group), weight_decay=weight_decay, **common
                        )
                        folded.append(group)
                    else:
                        ratios += F.scale_gradients(
                            params,
                            grads,
                            out,
                            **_ratio_settings(group),
                            weight_decay=weight_decay,
                            decoupled=decoupled,
                            **common,
                        )
                    for p, x in zip(params, out):
                        swapped.append((p, p.grad))
                        p.grad = x
            # The base steps through its bare step between its own hooks: torch's global
            # step hooks fired once already, around this LARS step (lars/_torch_step.py).
            bare = _torch_step.bare_step(self.optimizer)
            if folded:
                bare = functools.partial(_without_weight_decay, folded, bare)
            _torch_step.step_base(self.optimizer, bare)
        finally:
            for p, grad in reversed(swapped):
                p.grad = grad

        for group, params, saved, norms in updates:
            ratios += F.rescale_updates(
                params,
                saved,
                norms,
                **_ratio_settings(group),
                foreach=self.foreach,
                workspace=self._workspace,
            )
        self._ratios = ratios
        return loss

    def _paper_step(self, group: dict[str, Any], params: list[Tensor]) -> list:
        """Gradient mode, the paper's momentum form, on SGD's hyperparameters."""
        momentum = group.get("momentum", 0.0)
        # state.get: without momentum no parameter gets a state entry, not even an empty one
        buffers = [self.state.get(p, {}).get("lars_momentum_buffer") for p in params]
        ratios, buffers = F.paper_momentum_step(
            params,
            [p.grad for p in params],
            buffers,
            **_ratio_settings(group),
            weight_decay=group.get("weight_decay", 0.0),
            momentum=momentum,
            dampening=group.get("dampening", 0.0),
            nesterov=bool(group.get("nesterov", False)),
            maximize=bool(group.get("maximize", False)),
            foreach=self.foreach,
        )
        if momentum != 0:
            for p, buffer in zip(params, buffers):
                self.state[p]["lars_momentum_buffer"] = buffer
        return ratios


def _without_weight_decay(groups: list[dict[str, Any]], bare: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run the base's bare step with ``groups``' L2 decay off (LARS handed them the whole
    direction ``r·(g + β·w)``); the base's hooks, outside this call, see the group's β."""
    saved = [group["weight_decay"] for group in groups]
    for group in groups:
        group["weight_decay"] = 0.0
    try:
        return bare(*args, **kwargs)
    finally:
        for group, weight_decay in zip(groups, saved):
            group["weight_decay"] = weight_decay


def _warn_unused_fused(group: dict[str, Any], index: int, base: Optimizer) -> None:
    """The paper's momentum form steps its tensors itself, so the base's fused kernel is unused."""
    if group.get("fused") and group["lars_momentum_form"] == "paper" and not group["lars_exclude"]:
        warnings.warn(
            f"param group {index}: fused=True on the {type(base).__name__} base is unused under "
            f"lars_momentum_form 'paper' (LARS steps these tensors itself, with torch._foreach_* ops)",
            UserWarning,
            stacklevel=3,
        )
