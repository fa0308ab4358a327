"""The invariant that makes "LARS vs. plain" fair: at a trust ratio of 1, LARS(base) is base.

The ratio is forced to exactly 1 through the public API: LARC clipping
(``r = min(r/α, 1)``) with a huge trust coefficient. Then, for every base the wrapper
accepts, in each mode and with and without weight decay (L2 and decoupled), the
weights and the state must equal the bare base's bit for bit over a few steps with a
changing lr, and hooks on the base must see the same lr, weight decay, weights and
gradient values.
"""

import pytest
import torch

from lars import LARS

BASES = {
    "SGD": lambda g, wd: torch.optim.SGD(g, lr=0.3, weight_decay=wd),
    "SGD-momentum": lambda g, wd: torch.optim.SGD(g, lr=0.3, momentum=0.9, dampening=0.1, weight_decay=wd),
    "SGD-nesterov-maximize": lambda g, wd: torch.optim.SGD(
        g, lr=0.3, momentum=0.9, nesterov=True, maximize=True, weight_decay=wd
    ),
    "SGD-fused": lambda g, wd: torch.optim.SGD(g, lr=0.3, momentum=0.9, weight_decay=wd, fused=True),
    "SGD-foreach": lambda g, wd: torch.optim.SGD(g, lr=0.3, momentum=0.9, weight_decay=wd, foreach=True),
    "Adam": lambda g, wd: torch.optim.Adam(g, lr=0.1, weight_decay=wd),
    "Adam-decoupled": lambda g, wd: torch.optim.Adam(g, lr=0.1, weight_decay=wd, decoupled_weight_decay=True),
    "Adam-fused": lambda g, wd: torch.optim.Adam(g, lr=0.1, weight_decay=wd, fused=True),
    "AdamW": lambda g, wd: torch.optim.AdamW(g, lr=0.1, weight_decay=wd),
    "AdamW-amsgrad-foreach": lambda g, wd: torch.optim.AdamW(g, lr=0.1, weight_decay=wd, amsgrad=True, foreach=True),
    "NAdam": lambda g, wd: torch.optim.NAdam(g, lr=0.1, weight_decay=wd),
    "NAdam-decoupled": lambda g, wd: torch.optim.NAdam(g, lr=0.1, weight_decay=wd, decoupled_weight_decay=True),
    "RAdam": lambda g, wd: torch.optim.RAdam(g, lr=0.1, weight_decay=wd),
    "RAdam-decoupled": lambda g, wd: torch.optim.RAdam(g, lr=0.1, weight_decay=wd, decoupled_weight_decay=True),
    "Adamax": lambda g, wd: torch.optim.Adamax(g, lr=0.1, weight_decay=wd),
    "RMSprop": lambda g, wd: torch.optim.RMSprop(g, lr=0.01, momentum=0.9, centered=True, weight_decay=wd),
    "Adagrad": lambda g, wd: torch.optim.Adagrad(g, lr=0.1, weight_decay=wd),
    "Adadelta": lambda g, wd: torch.optim.Adadelta(g, lr=1.0, weight_decay=wd),
    "ASGD": lambda g, wd: torch.optim.ASGD(g, lr=0.1, t0=2, weight_decay=wd),
    "Rprop": lambda g, wd: torch.optim.Rprop(g, lr=0.01),
}


def _params(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(*shape, generator=gen, dtype=torch.float64))
        for shape in ((5, 4), (3, 2, 2), (6,))
    ]


def _run(name, weight_decay, *, lars_mode=None):
    params = _params()
    base = BASES[name]([{"params": params[:2]}, {"params": params[2:], "lr": 0.05}], weight_decay)
    seen = []

    def hook(opt, args, kwargs):
        seen.append(
            [
                (
                    g["lr"],
                    g.get("weight_decay"),
                    [p.detach().clone() for p in g["params"]],
                    [p.grad.clone() for p in g["params"]],
                )
                for g in opt.param_groups
            ]
        )

    base.register_step_pre_hook(hook)
    opt = base if lars_mode is None else LARS(base, mode=lars_mode, clip=True, trust_coefficient=1e30)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (t + 1) / 3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        opt.step()
        sched.step()
    state = {
        i: {k: v.clone() if torch.is_tensor(v) else v for k, v in base.state[p].items()} for i, p in enumerate(params)
    }
    return params, state, seen, opt


def _assert_same(a, b):
    if torch.is_tensor(a):
        assert torch.equal(a, b), (a, b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    else:
        assert a == b


# Every base with and without weight decay, but Rprop, which has none.
CASES = [(name, wd) for name in BASES for wd in (0.0, 1e-2) if not (name == "Rprop" and wd)]


@pytest.mark.parametrize("mode", ["gradient", "update"])
@pytest.mark.parametrize("name, weight_decay", CASES, ids=[f"{n}-{'decay' if wd else 'no-decay'}" for n, wd in CASES])
def test_at_ratio_one_lars_is_its_base(name, mode, weight_decay):
    bare_params, bare_state, bare_seen, _ = _run(name, weight_decay)
    params, state, seen, opt = _run(name, weight_decay, lars_mode=mode)
    assert all(r.item() == 1.0 for _, r in opt.trust_ratios())
    assert len(opt.trust_ratios()) == 3
    _assert_same(bare_params, params)
    _assert_same(bare_state, state)
    _assert_same(bare_seen, seen)  # lr, weight decay, weights and gradient values the hooks saw


def test_ratio_one_is_what_changes_between_the_twins():
    # The same runs with the ratio free: LARS moves differently, so the test above is not vacuous.
    bare_params, *_ = _run("Adam", 1e-2)
    params = _params()
    opt = LARS(
        torch.optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.05}], lr=0.1, weight_decay=1e-2),
        trust_coefficient=1e-2,
    )
    gen = torch.Generator().manual_seed(1)
    for _ in range(4):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        opt.step()
    assert not torch.equal(bare_params[0], params[0])
