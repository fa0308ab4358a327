"""Gradient mode's two momentum forms against a float64 reference written from the formulas,
under a learning rate that changes every step (a warm-up then a decay)."""

import pytest
import torch

from lars import LARS

LRS = [0.0, 0.4, 0.8, 1.2, 0.6, 0.3]  # the lr of steps 0..5 (a warm-up from 0, then decay)


def reference(form, w, grads, *, lrs=LRS, momentum, dampening=0.0, nesterov=False, weight_decay, trust, eps):
    """The formulas, one step at a time (tensors in float64)."""
    w, v = w.clone(), None
    for lr, g in zip(lrs, grads):
        r = trust * w.norm() / (g.norm() + weight_decay * w.norm() + eps)
        d = r * (g + weight_decay * w)
        if form == "paper":
            d = lr * d  # lr inside the buffer
        v = d.clone() if v is None else momentum * v + (1 - dampening) * d
        step = d + momentum * v if nesterov else v
        w = w - (step if form == "paper" else lr * step)
    return w


@pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "reference"])
@pytest.mark.parametrize(
    "sgd",
    [dict(momentum=0.9), dict(momentum=0.9, dampening=0.2), dict(momentum=0.9, nesterov=True), dict(momentum=0.0)],
    ids=["momentum", "dampening", "nesterov", "no-momentum"],
)
@pytest.mark.parametrize("form", ["torch", "paper"])
def test_momentum_form_matches_its_formula_in_float64(form, sgd, foreach):
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    grads = [torch.randn(6, 4, generator=gen, dtype=torch.float64) for _ in LRS]
    expected = reference(
        form, w0, grads, weight_decay=1e-2, trust=0.05, eps=1e-3, **{"dampening": 0.0, "nesterov": False, **sgd}
    )
    w = torch.nn.Parameter(w0.clone())
    opt = LARS(
        torch.optim.SGD([w], lr=LRS[0], weight_decay=1e-2, **sgd),
        trust_coefficient=0.05,
        eps=1e-3,
        momentum_form=form,
        foreach=foreach,
    )
    for lr, g in zip(LRS, grads):
        opt.param_groups[0]["lr"] = lr
        w.grad = g.clone()
        opt.step()
    torch.testing.assert_close(w.detach(), expected, rtol=1e-13, atol=1e-14)


def test_forms_differ_under_a_changing_lr_and_agree_under_a_constant_one():
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    grads = [torch.randn(6, 4, generator=gen, dtype=torch.float64) for _ in LRS]
    changing = [
        reference(f, w0, grads, momentum=0.9, weight_decay=0.0, trust=0.05, eps=1e-3) for f in ("torch", "paper")
    ]
    assert (changing[0] - changing[1]).norm() > 1e-2 * (changing[0] - w0).norm()
    same = [
        reference(f, w0, grads, lrs=[0.5] * 6, momentum=0.9, weight_decay=0.0, trust=0.05, eps=1e-3)
        for f in ("torch", "paper")
    ]
    torch.testing.assert_close(same[0], same[1], rtol=1e-14, atol=1e-14)


def test_paper_form_keeps_its_buffer_apart_from_sgds():
    w = torch.nn.Parameter(torch.ones(3, 2, dtype=torch.float64))
    opt = LARS(torch.optim.SGD([w], lr=0.5, momentum=0.9), momentum_form="paper")
    w.grad = torch.ones(3, 2, dtype=torch.float64)
    opt.step()
    assert set(opt.state[w]) == {"lars_momentum_buffer"}  # lr inside: not SGD's units
    grad = w.grad
    opt.step()
    assert w.grad is grad  # hidden from the base during its step, then put back


def test_group_key_selects_the_form_per_group():
    a = torch.nn.Parameter(torch.ones(2, 2, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(2, 2, dtype=torch.float64))
    opt = LARS(torch.optim.SGD([{"params": [a]}, {"params": [b], "lars_momentum_form": "paper"}], lr=0.5, momentum=0.9))
    a.grad, b.grad = torch.ones(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)
    opt.step()
    assert "momentum_buffer" in opt.state[a] and "lars_momentum_buffer" in opt.state[b]


def test_paper_form_needs_gradient_mode_and_sgd():
    w = torch.nn.Parameter(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"momentum_form must be 'torch' or 'paper', got 'nesterov'"):
        LARS(torch.optim.SGD([w], lr=0.1), momentum_form="nesterov")
    with pytest.raises(ValueError, match=r"param group 0: lars_momentum_form 'paper' needs lars_mode 'gradient'"):
        LARS(torch.optim.SGD([w], lr=0.1), mode="update", momentum_form="paper")
    with pytest.raises(
        ValueError, match=r"param group 0: lars_momentum_form 'paper' needs a torch\.optim\.SGD base, got RMSprop"
    ):
        LARS(torch.optim.RMSprop([w], lr=0.1), mode="gradient", momentum_form="paper")
