"""lars: Layer-wise Adaptive Rate Scaling for any torch optimizer.

LARS (You, Gitman, Ginsburg, "Large Batch Training of Convolutional Networks",
arXiv:1708.03888, 2017) gives every parameter tensor ``w`` its own rate::

    local_lr = λ · ‖w‖ / (‖g‖ + β · ‖w‖ + ε)        (1 where ‖w‖ or ‖g‖ is 0)

with trust coefficient λ, weight decay β and a small ε. :class:`LARS` wraps any
``torch.optim`` optimizer and is one itself. For SGD it scales the gradient (the
paper's form, ``v ← μv + local_lr·(g + βw); w ← w − α·v``); for adaptive optimizers
(Adam, AdamW, RMSprop, Adagrad) it rescales their own update per tensor, as LAMB does
(You et al., arXiv:1904.00962, 2019), because their normalisation would cancel a
scaled gradient. Each tensor's step then has size about ``α·λ·‖w‖``.

Usage::

    import torch, lars

    groups = lars.param_groups(model, weight_decay=5e-4)  # 1-D tensors: no LARS, no decay
    base = torch.optim.SGD(groups, lr=2.0, momentum=0.9)  # any torch.optim optimizer
    opt = lars.LARS(base, trust_coefficient=1e-3, eps=1e-8)
    sched = lars.schedules.warmup_schedule(opt, "polynomial", total_steps=10_000,
                                           warmup_steps=500, power=2.0)
    for x, y in batches:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

Adam with LARS is the same with ``torch.optim.Adam(groups, lr=1.0)`` (update mode
by default: with λ = 1e-3 a per-tensor step is ``lr·1e-3·‖w‖``). Any group may set
``lars_trust_coefficient``, ``lars_eps``, ``lars_mode`` ("gradient"/"update"),
``lars_clip`` (LARC) or ``lars_exclude``; β is the group's ``weight_decay``.
"""

from . import functional, schedules
from .param_groups import is_vector, param_groups
from .schedules import SCHEDULES, warmup_schedule
from .trust_ratio import local_lr, tensor_norms, trust_ratio, update_factor
from .wrapper import GROUP_KEYS, LARS, MODES, MOMENTUM_FORMS

__all__ = [
    "LARS",
    "GROUP_KEYS",
    "MODES",
    "MOMENTUM_FORMS",
    "SCHEDULES",
    "functional",
    "is_vector",
    "local_lr",
    "param_groups",
    "schedules",
    "tensor_norms",
    "trust_ratio",
    "update_factor",
    "warmup_schedule",
]
