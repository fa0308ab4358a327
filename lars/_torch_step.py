"""Stepping the base optimizer without firing torch's *global* step hooks a second time.

Why: ``torch.optim.Optimizer.__init__`` wraps every optimizer class's ``step`` once
(``Optimizer.profile_hook_step``, marked ``step.hooked = True``); the wrapper calls the
global hooks (``torch.optim.optimizer.register_optimizer_step_pre_hook`` / ``_post_hook``)
and then the instance's own, around the real step. ``LARS.step`` is wrapped too, so
calling ``base.step()`` inside it would call every global hook twice, the second time
with LARS's work tensor in ``p.grad``. A global hook must see one optimizer step, with
the user's gradients; the base's own hooks (``base.register_step_pre_hook``) must still
run around the base's step.

How: the wrapper is made with ``functools.wraps``, so the class's bare step is
``type(base).step.__wrapped__``; :func:`step_base` calls it between the base's instance
hooks, in the profiler range torch would open. This is the one place LARS leans on how
torch builds ``Optimizer.step`` (``hooked``, ``__wrapped__``, the instance's hook dicts
``_optimizer_step_pre_hooks``/``_post_hooks``, ``_optimizer_step_code``, and an LR
scheduler's step mark on the base); ``tests/lars/test_optimizer_info.py`` (the hook tests)
fails, naming what changed, when torch changes it. Any other instance-level replacement
of ``base.step`` is bypassed: wrap or hook the LARS optimizer instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer

__all__ = ["bare_step", "step_base"]


def bare_step(optimizer: Optimizer) -> Callable[..., Any]:
    """The class's ``step`` as written, without torch's hook and profiler wrapper."""
    step = type(optimizer).step
    bare = getattr(step, "__wrapped__", None)
    if not getattr(step, "hooked", False) or bare is None:
        raise RuntimeError(
            f"{type(optimizer).__name__}.step is not wrapped by torch.optim.Optimizer.profile_hook_step "
            f"(no 'hooked'/'__wrapped__' on it, torch {torch.__version__}): lars/_torch_step.py needs updating"
        )
    return bare


def step_base(optimizer: Optimizer, bare: Callable[..., Any] | None = None) -> Any:
    """``optimizer.step()`` with its own pre/post hooks but not the global ones.

    ``bare`` is the step to run (default :func:`bare_step`); a caller may wrap it, e.g. to
    change a group's key around the bare step only, out of the hooks' sight.
    """
    step = bare if bare is not None else bare_step(optimizer)
    args: tuple[Any, ...] = (optimizer,)
    kwargs: dict[str, Any] = {}
    with torch.autograd.profiler.record_function(f"Optimizer.step#{type(optimizer).__name__}.step"):
        for hook in optimizer._optimizer_step_pre_hooks.values():
            result = hook(optimizer, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"{hook} must return None or a tuple of (new_args, new_kwargs), got {result}")
                args, kwargs = result
        out = step(*args, **kwargs)
        optimizer._optimizer_step_code()
        # An LR scheduler built on the base itself wraps the instance's ``step`` to mark it
        # stepped (torch.optim.lr_scheduler: ``_wrapped_by_lr_sched``, ``_opt_called``); the
        # bare step bypasses that wrapper, so set the mark as it would (else the scheduler
        # warns that it stepped before the optimizer).
        if getattr(vars(optimizer).get("step"), "_wrapped_by_lr_sched", False):
            optimizer._opt_called = True
        for hook in optimizer._optimizer_step_post_hooks.values():
            hook(optimizer, args, kwargs)
    return out
