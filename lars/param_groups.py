"""Split a model's parameters into LARS-ready param groups.

Bias and normalisation tensors (1-D) are usually left out of both the trust ratio and
weight decay (the LARS paper's solvers, MLPerf's ResNet-50 LARS, nanoGPT's
``dim() >= 2`` rule). :func:`param_groups` makes that the default and an explicit,
visible choice. Models that name their own no-decay tensors the way timm's do
(``model.no_weight_decay()``: position embeddings, class tokens, ...) have those left
out too, as are names matching the caller's patterns.
"""

from __future__ import annotations

import fnmatch
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor, nn

__all__ = ["param_groups", "is_vector"]


def is_vector(name: str, param: Tensor) -> bool:
    """The default exclusion rule: tensors with fewer than 2 dimensions (biases, norms)."""
    return param.dim() < 2


def param_groups(
    model: nn.Module,
    *,
    weight_decay: float = 0.0,
    exclude: Callable[[str, Tensor], bool] | None = is_vector,
    excluded_weight_decay: float = 0.0,
    no_weight_decay: Iterable[str] = (),
    adapted: dict[str, Any] | None = None,
    excluded: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Param groups for a torch optimizer wrapped by :class:`lars.LARS`.

    Args:
        model: the module whose trainable parameters (``requires_grad``) are grouped;
            a parameter shared by several submodules appears once.
        weight_decay: β for the adapted group (LARS applies it, see ``LARS``).
        exclude: ``exclude(name, param) -> bool`` picks the tensors that get no
            adaptation; default :func:`is_vector` (``dim() < 2``). ``None`` adapts all.
        excluded_weight_decay: the excluded group's ``weight_decay``, applied by the
            base optimizer itself (default 0: no decay on biases and norms).
        no_weight_decay: parameter names or ``fnmatch`` patterns (``"*.pos_embed"``,
            ``"blocks.*.gamma"``) to exclude as well. Names the model lists in its own
            ``no_weight_decay()`` (timm's convention) are always added. Excluded means
            no decay *and* no adaptation, which is what timm's ``Lars`` does with them
            (it adapts only tensors that have weight decay).
        adapted, excluded: extra keys for each group, e.g.
            ``{"lars_trust_coefficient": 0.02, "lr": 0.5}``.

    Returns:
        ``[{"params": [...], "weight_decay": β, ...},
        {"params": [...], "weight_decay": 0.0, "lars_exclude": True, ...}]``, without
        a group that would be empty. Warns (``UserWarning``) when no tensor is left to
        adapt: LARS would then step exactly as its base.

    Example:
        >>> import torch, lars
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
        >>> groups = lars.param_groups(model, weight_decay=5e-4)
        >>> [(len(g["params"]), g["weight_decay"], g.get("lars_exclude", False)) for g in groups]
        [(1, 0.0005, False), (3, 0.0, True)]
        >>> opt = lars.LARS(torch.optim.SGD(groups, lr=1.0, momentum=0.9))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, value in (
        ("weight_decay", weight_decay),
        ("excluded_weight_decay", excluded_weight_decay),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < math.inf):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if exclude is not None and not callable(exclude):
        raise TypeError(f"exclude must be callable(name, param) or None, got {exclude!r}")
    for name, extra in (("adapted", adapted), ("excluded", excluded)):
        if extra is not None and "params" in extra:
            raise ValueError(f"{name} must not set 'params', got keys {sorted(extra)}")
    if isinstance(no_weight_decay, str):
        raise TypeError(
            f"no_weight_decay must be an iterable of names or patterns, not a str: "
            f"got {no_weight_decay!r} (write [{no_weight_decay!r}])"
        )
    patterns = set(no_weight_decay) | _model_no_weight_decay(model)

    kept, skipped = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        out = (exclude is not None and exclude(name, param)) or any(
            fnmatch.fnmatchcase(name, pattern) for pattern in patterns
        )
        (skipped if out else kept).append(param)

    groups = []
    if kept:
        groups.append({"params": kept, "weight_decay": float(weight_decay), **(adapted or {})})
    if skipped:
        groups.append(
            {
                "params": skipped,
                "weight_decay": float(excluded_weight_decay),
                "lars_exclude": True,
                **(excluded or {}),
            }
        )
    if not groups:
        raise ValueError("model has no trainable parameters (none with requires_grad)")
    if not kept:
        warnings.warn(
            f"lars.param_groups: no tensor is left to adapt: all {len(skipped)} trainable "
            "tensors are excluded (by exclude=, no_weight_decay= or the model's "
            "no_weight_decay()); LARS will step exactly as its base optimizer",
            UserWarning,
            stacklevel=2,
        )
    return groups


def _model_no_weight_decay(model: nn.Module) -> set[str]:
    """The names a model lists in ``no_weight_decay()`` (timm's convention), else none."""
    method = getattr(model, "no_weight_decay", None)
    if not callable(method):
        return set()
    names = method()
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise TypeError(f"{type(model).__name__}.no_weight_decay() must return a set of parameter names, got {names!r}")
    return set(names)
