"""The eight failures of issue #13, each as a test (all failed on the wrapper before it).

1. ``torch.compile(opt.step)``: update mode corrupted the weights, gradient mode did not
   compile; 2. a non-dense parameter stepped unlike its contiguous copy; 3. a warm-up
   from lr 0 with ``clip=True`` raised ZeroDivisionError; 4. a bad ``add_param_group``
   was kept; 5. complex parameters failed; 6. fp16 overflowed where the base did not;
   7. the weight decay changed kind and hooks saw lr = 1/β and zeroed weights;
   8. the docstring called torch's momentum form the paper's.
"""

import pytest
import torch

import lars
from lars import LARS


@pytest.mark.slow  # one compilation
def test_compiled_update_mode_changes_weights_as_eager_does():
    # Issue text: ‖w‖ went from 1.63 to 0.069 where the change should be 1.6e-4.
    torch.manual_seed(0)
    w0, g = torch.randn(8, 6), torch.randn(8, 6)
    finals = []
    for compiled in (False, True):
        w = torch.nn.Parameter(w0.clone())
        w.grad = g.clone()
        o = LARS(torch.optim.Adam([w], lr=0.01), trust_coefficient=0.01)
        (torch.compile(o.step) if compiled else o.step)()
        finals.append(w.detach().clone())
    torch.testing.assert_close(finals[1], finals[0], rtol=1e-6, atol=1e-7)
    change = (finals[1] - w0).norm().item()
    assert change == pytest.approx(0.01 * 0.01 * w0.norm().item(), rel=1e-3)  # α·λ·‖w‖


@pytest.mark.slow  # one compilation, ~20-60 s on 2 busy cores
def test_compiled_gradient_mode_sgd_step_equals_eager():
    torch.manual_seed(0)
    w0, grads = torch.randn(8, 6), [torch.randn(8, 6) for _ in range(2)]
    finals = []
    for compiled in (False, True):
        w = torch.nn.Parameter(w0.clone())
        o = LARS(torch.optim.SGD([w], lr=1.0, momentum=0.9, weight_decay=1e-3), trust_coefficient=0.01)
        step = torch.compile(o.step) if compiled else o.step
        for g in grads:
            w.grad = g.clone()
            step()
        finals.append((w.detach().clone(), o.state[w]["momentum_buffer"].clone()))
    for a, b in zip(*finals):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)


def _non_dense_run(contiguous: bool, momentum: float, steps: int):
    gen = torch.Generator().manual_seed(0)
    full = torch.randn(10, 5, 2, generator=gen, dtype=torch.float64)
    view = full[..., 0]
    w = torch.nn.Parameter(view.contiguous() if contiguous else view)
    assert w.is_contiguous() == contiguous
    x = torch.randn(5, generator=gen, dtype=torch.float64)
    opt = LARS(torch.optim.SGD([w], lr=1.0, momentum=momentum), trust_coefficient=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        w.mv(x).pow(2).sum().backward()
        opt.step()
    return w.detach().clone()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_non_dense_parameter_steps_like_its_contiguous_copy(momentum):
    # Issue text: 6.7e-2 apart after 5 steps with momentum 0.9, apart from step 1 without.
    torch.testing.assert_close(
        _non_dense_run(False, momentum, 5), _non_dense_run(True, momentum, 5), rtol=1e-14, atol=1e-15
    )


def test_non_dense_least_squares_converges_like_its_contiguous_copy():
    # Issue text: the loss rose from 42 to 202 over 200 steps; the contiguous copy converged.
    losses = {}
    for contiguous in (False, True):
        gen = torch.Generator().manual_seed(0)
        full = torch.randn(10, 5, 2, generator=gen, dtype=torch.float64)
        w = torch.nn.Parameter(full[..., 0].contiguous() if contiguous else full[..., 0])
        b = torch.randn(10, generator=gen, dtype=torch.float64)
        x = torch.randn(5, generator=gen, dtype=torch.float64)
        opt = LARS(torch.optim.SGD([w], lr=1.0, momentum=0.9), trust_coefficient=1e-3)
        sched = torch.optim.lr_scheduler.StepLR(opt, 50, 0.5)
        run = []
        for _ in range(200):
            opt.zero_grad()
            loss = (w.mv(x) + b).pow(2).sum()
            loss.backward()
            opt.step()
            sched.step()
            run.append(loss.item())
        losses[contiguous] = run
    assert losses[False] == pytest.approx(losses[True], rel=1e-10)
    assert losses[False][-1] < 0.5 * losses[False][0]


@pytest.mark.parametrize(
    "base, mode",
    [
        (lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.05), "update"),
        (lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, weight_decay=0.05), "gradient"),
    ],
)
def test_warmup_from_lr_zero_with_clip(base, mode):
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    w.grad = torch.randn(4, 3)
    o = LARS(base([w]), clip=True)
    assert o.param_groups[0]["lars_mode"] == mode
    sched = torch.optim.lr_scheduler.LambdaLR(o, lambda t: t / 10)
    before = w.detach().clone()
    o.step()  # lr 0: raised ZeroDivisionError
    assert torch.equal(w, before)  # the base moved nothing at lr 0, and r = 1 keeps that
    assert [r.item() for _, r in o.trust_ratios()] == [1.0]
    sched.step()
    o.step()
    assert torch.isfinite(w).all() and not torch.equal(w, before)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"lars_trust": 1.0}, r"param group 1: unknown key 'lars_trust'"),
        (
            {"lars_trust_coefficient": -0.1},
            r"param group 1: lars_trust_coefficient must be a finite number > 0, got -0\.1",
        ),
        ({"lars_mode": "grad"}, r"param group 1: lars_mode must be 'gradient' or 'update', got 'grad'"),
    ],
)
def test_bad_param_group_raises_and_leaves_the_optimizer_unchanged(bad, message):
    a, b = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(3, 2))
    opt = LARS(torch.optim.SGD([a], lr=0.1))
    with pytest.raises(ValueError, match=message):
        opt.add_param_group({"params": [b], **bad})
    assert len(opt.param_groups) == len(opt.optimizer.param_groups) == 1
    a.grad = torch.ones(2, 2)
    opt.step()  # raised on every later step
    # and the parameter may be added properly afterwards
    opt.add_param_group({"params": [b]})
    assert len(opt.param_groups) == 2


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, weight_decay=1e-2),
        lambda p: torch.optim.Adam(p, lr=0.5, weight_decay=1e-2),
        lambda p: torch.optim.AdamW(p, lr=0.5, weight_decay=1e-2),
    ],
    ids=["sgd", "adam", "adamw"],
)
def test_complex_parameter_steps_as_its_real_view(make):
    # torch's SGD and Adam step a complex tensor as its real view (view_as_real):
    # LARS too, with ‖z‖ the norm of that view.
    gen = torch.Generator().manual_seed(0)
    z0 = torch.randn(4, 3, generator=gen, dtype=torch.complex128)
    grads = [torch.randn(4, 3, generator=gen, dtype=torch.complex128) for _ in range(3)]
    z = torch.nn.Parameter(z0.clone())
    r = torch.nn.Parameter(torch.view_as_real(z0).clone())
    opts = [LARS(make([z]), trust_coefficient=1e-2), LARS(make([r]), trust_coefficient=1e-2)]
    for g in grads:
        z.grad, r.grad = g.clone(), torch.view_as_real(g).clone()
        for o in opts:
            o.step()
    torch.testing.assert_close(torch.view_as_real(z.detach()), r.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make, grad_scale, mode",
    [
        (lambda p: torch.optim.RMSprop(p, lr=1e-2, weight_decay=1e-4), 1.0, None),
        (lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-5), 1.0, None),
        (lambda p: torch.optim.SGD(p, lr=1e-2, weight_decay=1e-4), 50.0, "update"),
    ],
    ids=["rmsprop", "adam", "sgd-update"],
)
def test_float16_stays_finite_where_the_base_does(make, grad_scale, mode):
    # A scratch tensor held −u/β: 1e4..1e5 times the update, past fp16's 65504.
    gen = torch.Generator().manual_seed(0)
    w0 = torch.randn(16, 8, generator=gen).half()
    grads = [(torch.randn(16, 8, generator=gen) * grad_scale).half() for _ in range(3)]
    finals = []
    for wrap in (False, True):
        w = torch.nn.Parameter(w0.clone())
        base = make([w])
        opt = LARS(base, trust_coefficient=1e-2, mode=mode) if wrap else base
        for g in grads:
            w.grad = g.clone()
            opt.step()
        finals.append(w.detach().float())
    assert torch.isfinite(finals[0]).all()
    assert torch.isfinite(finals[1]).all()
    assert not torch.equal(finals[1], w0.float())


def test_weight_decay_kind_is_kept_and_base_hooks_see_what_they_would_see():
    # LARS(Adam(weight_decay)) was LARS(AdamW(weight_decay)); hooks saw lr = 1/β and zeros.
    seen = []

    def hook(opt, args, kwargs):
        group = opt.param_groups[0]
        seen.append((group["lr"], group["weight_decay"], group["params"][0].detach().clone()))

    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]], dtype=torch.float64))
    w.grad = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    base = torch.optim.Adam([w], lr=0.1, weight_decay=0.1)
    base.register_step_pre_hook(hook)
    LARS(base, trust_coefficient=0.01).step()
    assert seen[0][:2] == (0.1, 0.1)
    assert seen[0][2].tolist() == [[3.0, 4.0]]
    assert base.param_groups[0]["decoupled_weight_decay"] is False


def test_docstring_names_the_momentum_form():
    doc = LARS.__doc__
    assert "exactly the paper's" not in doc
    assert "lr *outside* the buffer" in doc and "lr *inside* the buffer" in doc
    assert "momentum_form" in doc and lars.MOMENTUM_FORMS == ("torch", "paper")
