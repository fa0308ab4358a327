"""One matrix of LARS configurations, in the spirit of torch's ``OptimizerInfo``.

torch's generic optimizer suite (``TestOptimRenewed``, driven by the ``OptimizerInfo``
entries of ``torch.testing._internal.common_optimizers``) found what issue 27 lists:
global step hooks fired twice, a ``(1, 1)`` tensor lr crashed, the paper momentum form
crashed on complex tensors without momentum, half-precision gradient mode lost the
step's direction at β ≫ λ, and a fused base was silently unused by the paper form.
Each ``Info`` below is one configuration (base, mode, momentum form, LARC); the tests
run every one of them over foreach on/off, tensor-lr shapes, complex tensors, dtypes
and hooks. Exact numbers where the math is known; float64 where two paths are compared.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from lars import LARS, _torch_step
from lars import functional as F


@dataclasses.dataclass(frozen=True)
class Info:
    """A LARS configuration: ``base(params, lr)`` builds the base, ``options`` go to LARS."""

    name: str
    base: Callable[..., torch.optim.Optimizer]
    options: dict = dataclasses.field(default_factory=dict)


INFOS = [
    Info("sgd-gradient", lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=1e-2)),
    Info(
        "sgd-nesterov-maximize",
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, maximize=True, weight_decay=1e-2),
    ),
    Info("sgd-larc", lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=1e-2), {"clip": True}),
    Info(
        "sgd-paper",
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=1e-2),
        {"momentum_form": "paper"},
    ),
    Info("sgd-paper-no-momentum", lambda p, lr: torch.optim.SGD(p, lr=lr), {"momentum_form": "paper"}),
    Info(
        "sgd-update",
        lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=1e-2),
        {"mode": "update"},
    ),
    Info("adam-update", lambda p, lr: torch.optim.Adam(p, lr=lr, weight_decay=1e-2)),
    Info("adam-update-larc", lambda p, lr: torch.optim.Adam(p, lr=lr), {"clip": True}),
    Info("adam-gradient", lambda p, lr: torch.optim.Adam(p, lr=lr, weight_decay=1e-2), {"mode": "gradient"}),
    Info("adamw-update", lambda p, lr: torch.optim.AdamW(p, lr=lr, weight_decay=1e-2)),
    Info("rmsprop-update", lambda p, lr: torch.optim.RMSprop(p, lr=lr / 10, momentum=0.9, weight_decay=1e-2)),
]
IDS = [info.name for info in INFOS]
FOREACH = pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "forloop"])
MATRIX = pytest.mark.parametrize("info", INFOS, ids=IDS)


def make_params(dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = ((4, 3), (5,), (2, 3, 2))
    params = []
    for shape in shapes:
        t = torch.randn(shape, generator=gen, dtype=torch.float64)
        if dtype.is_complex:
            t = torch.complex(t, torch.randn(shape, generator=gen, dtype=torch.float64))
        params.append(torch.nn.Parameter(t.to(dtype)))
    return params


def run(info, params, *, lr=0.5, foreach=True, steps=3, seed=1, grad_scale=0.1):
    gen = torch.Generator().manual_seed(seed)
    opt = LARS(info.base(params, lr), trust_coefficient=0.02, foreach=foreach, **info.options)
    for _ in range(steps):
        for p in params:
            g = torch.randn(torch.view_as_real(p).shape if p.is_complex() else p.shape, generator=gen)
            g = (g.double() * grad_scale).to(p.real.dtype)
            p.grad = torch.view_as_complex(g) if p.is_complex() else g
        opt.step()
    return opt


# ---- paths --------------------------------------------------------------------------------


@MATRIX
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128], ids=["float64", "complex128"])
def test_foreach_matches_forloop_in_float64(info, dtype):
    fast, slow = make_params(dtype), make_params(dtype)
    run(info, fast, foreach=True)
    run(info, slow, foreach=False)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    assert not torch.equal(fast[0], make_params(dtype)[0])


@MATRIX
@FOREACH
def test_complex_parameter_steps_as_its_real_view(info, foreach):
    # LARS works on real views in both paths, so its own arithmetic is the real view's bit
    # for bit. In gradient mode with L2 decay the base then adds β·w to X in complex
    # arithmetic (β·w rounded, then added; the real kernel fuses them), which near the
    # cancellation in X can differ in the last place or two: there the test allows a few ulp.
    complex_params = make_params(torch.complex128)
    real_params = [torch.nn.Parameter(torch.view_as_real(p.detach()).clone()) for p in complex_params]
    gen_c, gen_r = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    opt_c = LARS(info.base(complex_params, 0.5), trust_coefficient=0.02, foreach=foreach, **info.options)
    opt_r = LARS(info.base(real_params, 0.5), trust_coefficient=0.02, foreach=foreach, **info.options)
    for _ in range(3):
        for pc, pr in zip(complex_params, real_params):
            g = torch.randn(pr.shape, generator=gen_c, dtype=torch.float64) * 0.1
            assert torch.equal(g, torch.randn(pr.shape, generator=gen_r, dtype=torch.float64) * 0.1)
            pc.grad, pr.grad = torch.view_as_complex(g.clone()), g
        opt_c.step()
        opt_r.step()
    base_adds_decay = info.options.get("mode", "gradient" if info.name.startswith("sgd") else "update") == "gradient"
    base_adds_decay = base_adds_decay and info.options.get("momentum_form") != "paper"
    for pc, pr in zip(complex_params, real_params):
        if base_adds_decay:
            torch.testing.assert_close(torch.view_as_real(pc.detach()), pr.detach(), rtol=1e-15, atol=0)
        else:
            assert torch.equal(torch.view_as_real(pc.detach()), pr.detach())


@FOREACH
@pytest.mark.parametrize("trust_coefficient", [0.02, 0.1], ids=["r<0.5", "r>0.5"])  # lerp's two formulas
@pytest.mark.parametrize("scale", [F.scale_gradients, F.scale_decayed_gradients], ids=["lerp", "decayed"])
def test_gradient_mode_arithmetic_on_complex_is_its_real_views_bit_for_bit(scale, trust_coefficient, foreach):
    # Issue 27 found the reference path's complex lerp one ulp off the real view's (torch's
    # complex lerp has one formula, the real one two); both paths use real views now.
    cplx = make_params(torch.complex64)
    grads = [torch.randn(p.shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(2)) for p in cplx]
    real, real_grads = [torch.view_as_real(p.detach()) for p in cplx], [torch.view_as_real(g) for g in grads]
    kw = dict(lr=0.5, trust_coefficient=trust_coefficient, eps=1e-8, weight_decay=5e-2, clip=False, foreach=foreach)
    if scale is F.scale_gradients:
        kw["decoupled"] = False
    out_c, out_r = [torch.empty_like(g) for g in grads], [torch.empty_like(g) for g in real_grads]
    rates_c = torch.cat([r for _, r in scale([p.detach() for p in cplx], grads, out_c, **kw)])
    rates_r = torch.cat([r for _, r in scale(real, real_grads, out_r, **kw)])
    assert torch.equal(rates_c, rates_r)
    for c, r in zip(out_c, out_r):
        assert torch.equal(torch.view_as_real(c), r)


def test_paper_form_on_complex_tensors_without_momentum_keeps_no_buffer():
    # It crashed on the foreach path: torch.view_as_complex(None) on a buffer that never existed.
    info = INFOS[IDS.index("sgd-paper-no-momentum")]
    for foreach in (True, False):
        params = make_params(torch.complex64)
        opt = run(info, params, foreach=foreach)
        assert len(opt.state) == 0
        assert all(torch.isfinite(torch.view_as_real(p)).all() for p in params)


# ---- tensor lr ------------------------------------------------------------------------------

LR_SHAPES = pytest.mark.parametrize("shape", [(), (1,), (1, 1)], ids=["0-d", "1", "1x1"])


@MATRIX
@FOREACH
@LR_SHAPES
def test_tensor_lr_of_any_one_element_shape_steps_as_a_0d_one(info, foreach, shape):
    # torch's own optimizers squeeze a 1-element lr (optimizer._to_scalar); so does LARS.
    if info.name.startswith("adam") and foreach:
        pytest.skip("torch's Adam refuses a tensor lr with foreach=True unless capturable")
    shaped, scalar, plain = make_params(), make_params(), make_params()
    run(info, shaped, lr=torch.full(shape, 0.5, dtype=torch.float64), foreach=foreach)
    run(info, scalar, lr=torch.tensor(0.5, dtype=torch.float64), foreach=foreach)
    run(info, plain, lr=0.5, foreach=foreach)
    for a, b, c in zip(shaped, scalar, plain):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-14, atol=1e-16)


@LR_SHAPES
def test_torch_bases_take_the_same_tensor_lr_shapes(shape):
    # The behaviour LARS follows: the bare bases accept the shape and step as with 0-d.
    for make in (torch.optim.SGD, torch.optim.Adam):
        shaped, scalar = make_params(), make_params()
        for params, lr in (
            (shaped, torch.full(shape, 0.5, dtype=torch.float64)),
            (scalar, torch.tensor(0.5, dtype=torch.float64)),
        ):
            opt = make(params, lr=lr)
            for p in params:
                p.grad = torch.ones_like(p)
            opt.step()
        for a, b in zip(shaped, scalar):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, [2.4, 3.2]),  # r = λ‖w‖/‖g‖ = 0.1·5/1 = 0.5; w − α·r·g = w − g
        ({"momentum_form": "paper"}, [2.4, 3.2]),  # V = α·r·g, w − V: the same first step
        ({"mode": "update"}, [2.4, 3.2]),  # Δ = −2g, r = α·λ‖w‖/‖Δ‖ = 2·0.1·5/2 = 0.5
        ({"clip": True}, [2.7, 3.6]),  # r = min(0.5/α, 1) = 0.25: w − 0.5·g
    ],
    ids=["gradient", "paper", "update", "larc"],
)
@FOREACH
def test_one_by_one_tensor_lr_step_by_hand(options, expected, foreach):
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    w.grad = torch.tensor([0.6, 0.8], dtype=torch.float64)
    lr = torch.tensor([[2.0]], dtype=torch.float64)
    opt = LARS(torch.optim.SGD([w], lr=lr), trust_coefficient=0.1, eps=0.0, foreach=foreach, **options)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.tensor(expected, dtype=torch.float64), rtol=1e-15, atol=0)


def test_tensor_lr_with_more_than_one_element_is_rejected():
    w = torch.nn.Parameter(torch.ones(2))
    opt = LARS(torch.optim.SGD([w], lr=0.1))
    opt.param_groups[0]["lr"] = torch.tensor([0.1, 0.2])
    w.grad = torch.ones(2)
    with pytest.raises(ValueError, match=r"param group 0: a tensor lr must have 1 element, got shape \(2,\)"):
        opt.step()


# ---- global and instance step hooks -----------------------------------------------------------


@MATRIX
@FOREACH
def test_global_step_hooks_fire_once_with_the_users_gradient_and_base_hooks_still_run(info, foreach):
    params = make_params()
    for p in params:
        p.grad = torch.full_like(p, 0.25)
    user_grads = [p.grad for p in params]
    seen = []

    def global_pre(opt, args, kwargs):
        seen.append(("global pre", type(opt).__name__))
        assert all(p.grad is g for p, g in zip(params, user_grads))

    def global_post(opt, args, kwargs):
        seen.append(("global post", type(opt).__name__))
        assert all(p.grad is g for p, g in zip(params, user_grads))
        assert all(torch.equal(g, torch.full_like(g, 0.25)) for g in user_grads)

    base = info.base(params, 0.5)
    opt = LARS(base, trust_coefficient=0.02, foreach=foreach, **info.options)
    base.register_step_pre_hook(lambda o, a, k: seen.append(("base pre", type(o).__name__)))
    base.register_step_post_hook(lambda o, a, k: seen.append(("base post", type(o).__name__)))
    opt.register_step_pre_hook(lambda o, a, k: seen.append(("lars pre", type(o).__name__)))
    handles = [register_optimizer_step_pre_hook(global_pre), register_optimizer_step_post_hook(global_post)]
    try:
        opt.step()
    finally:
        for handle in handles:
            handle.remove()
    name = type(base).__name__
    assert seen == [
        ("global pre", "LARS"),
        ("lars pre", "LARS"),
        ("base pre", name),
        ("base post", name),
        ("global post", "LARS"),
    ]


def test_base_pre_hook_may_replace_the_step_arguments():
    # torch's contract for instance pre-hooks: return (args, kwargs) to replace them.
    w = torch.nn.Parameter(torch.ones(2, 2))
    w.grad = torch.ones(2, 2)
    base = torch.optim.SGD([w], lr=0.1)
    calls = []
    base.register_step_pre_hook(lambda o, a, k: ((o,), {"closure": lambda: calls.append(1)}))
    LARS(base).step()
    assert calls == [1]


def test_torch_still_wraps_optimizer_step_the_way_lars_relies_on():
    # If this fails, torch changed how Optimizer.step calls hooks: update lars/_torch_step.py.
    base = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    step = type(base).step
    assert getattr(step, "hooked", False) is True, "Optimizer.step is no longer marked 'hooked'"
    assert callable(getattr(step, "__wrapped__", None)), "Optimizer.step's wrapper has no __wrapped__"
    assert step.__wrapped__ is not step
    for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks"):
        assert isinstance(getattr(base, name, None), dict), f"Optimizer has no {name} dict"
    assert callable(getattr(base, "_optimizer_step_code", None)), "Optimizer has no _optimizer_step_code"
    assert _torch_step.bare_step(base) is step.__wrapped__


def test_lr_scheduler_built_on_the_base_sees_it_stepped():
    # torch's schedulers mark the optimizer they were built on as stepped through an
    # instance-level wrapper of step(), which the bare step bypasses; step_base sets the mark.
    w = torch.nn.Parameter(torch.ones(2, 2))
    w.grad = torch.ones(2, 2)
    base = torch.optim.SGD([w], lr=0.1)
    opt = LARS(base)
    sched = torch.optim.lr_scheduler.StepLR(base, step_size=1, gamma=0.5)
    assert getattr(base.step, "_wrapped_by_lr_sched", False), "lr_scheduler no longer marks step()"
    opt.step()
    assert base._opt_called is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()
    assert opt.param_groups[0]["lr"] == 0.05


def test_an_unwrapped_step_is_a_loud_error(monkeypatch):
    class Bare(torch.optim.SGD):
        pass

    base = Bare([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    monkeypatch.setattr(Bare, "step", lambda self, closure=None: None)
    with pytest.raises(RuntimeError, match=r"Bare.step is not wrapped by .*lars/_torch_step.py needs updating"):
        _torch_step.bare_step(base)


# ---- half precision ------------------------------------------------------------------------


def direction_error(dtype, *, use_lars, foreach=True, weight_decay=5e-2, trust_coefficient=1e-3):
    """Relative error of the first momentum buffer (the step's direction, SGD's v = d)
    against the exact ``r·(g + β·w)`` from the same rounded w and g, in float64."""
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter((torch.randn(256, 256, generator=gen) * 0.05).to(dtype))
    w.grad = (torch.randn(256, 256, generator=gen) * 1e-3).to(dtype)
    w64, g64 = w.detach().double(), w.grad.double()
    base = torch.optim.SGD([w], lr=1.0, momentum=0.9, weight_decay=weight_decay)
    ratio = 1.0
    if use_lars:
        LARS(base, trust_coefficient=trust_coefficient, eps=0.0, foreach=foreach).step()
        ratio = trust_coefficient * w64.norm() / (g64.norm() + weight_decay * w64.norm())
    else:
        base.step()
    exact = ratio * (g64 + weight_decay * w64)
    got = base.state[w]["momentum_buffer"].double()
    return ((got - exact).norm() / exact.norm()).item()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@FOREACH
def test_half_precision_gradient_mode_keeps_the_direction_at_large_weight_decay(dtype, foreach):
    # β 5e-2 against λ 1e-3: the step was 15-18% off in bfloat16 (X = r·g + (r−1)·β·w cancelled
    # against the base's + β·w). Now within a rounding or two of plain SGD in the same dtype.
    plain = direction_error(dtype, use_lars=False)
    got = direction_error(dtype, use_lars=True, foreach=foreach)
    unit = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}[dtype]
    assert plain < unit
    assert got < 2 * unit


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@FOREACH
@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.3, momentum=0.9, weight_decay=5e-2),
        lambda p: torch.optim.SGD(p, lr=0.3, momentum=0.9, weight_decay=5e-2, foreach=False),
        lambda p: torch.optim.SGD(p, lr=0.3, momentum=0.9, nesterov=True, maximize=True, weight_decay=5e-2),
        lambda p: torch.optim.Adam(p, lr=0.1, eps=1e-3, weight_decay=5e-2),
        lambda p: torch.optim.RMSprop(p, lr=0.01, eps=1e-3, weight_decay=5e-2),
    ],
    ids=["sgd", "sgd-forloop-base", "sgd-nesterov-maximize", "adam-gradient", "rmsprop-gradient"],
)
def test_half_precision_at_ratio_one_is_the_base_bit_for_bit(dtype, foreach, make):
    # LARS folds β·w into what it hands the base with the base's own add, so r = 1
    # (LARC clipping, huge λ) changes nothing. (A fused base keeps g + β·w in float32
    # inside its kernel: there the twins differ by that one rounding.)
    finals = []
    for wrapped in (False, True):
        gen = torch.Generator().manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(shape, generator=gen).to(dtype)) for shape in ((16, 9), (7,))]
        base = make(params)
        opt = LARS(base, trust_coefficient=1e6, clip=True, mode="gradient", foreach=foreach) if wrapped else base
        for _ in range(3):
            for p in params:
                p.grad = (torch.randn(p.shape, generator=gen) * 0.1).to(dtype)
            opt.step()
        finals.append([p.detach().clone() for p in params])
    for a, b in zip(*finals):
        assert torch.equal(a, b)


def test_half_precision_fold_leaves_the_groups_weight_decay_as_it_was():
    w = torch.nn.Parameter(torch.ones(3, 3, dtype=torch.bfloat16))
    w.grad = torch.ones(3, 3, dtype=torch.bfloat16)
    base = torch.optim.SGD([w], lr=0.1, weight_decay=5e-2)
    seen = []
    base.register_step_pre_hook(lambda o, a, k: seen.append(o.param_groups[0]["weight_decay"]))
    base.register_step_post_hook(lambda o, a, k: seen.append(o.param_groups[0]["weight_decay"]))
    LARS(base).step()
    assert seen == [5e-2, 5e-2] and base.param_groups[0]["weight_decay"] == 5e-2


# ---- fused bases and the paper form's state -------------------------------------------------


def test_fused_base_under_the_paper_form_says_so_at_construction():
    params = make_params(torch.float32)
    with pytest.warns(
        UserWarning, match=r"param group 0: fused=True on the SGD base is unused under lars_momentum_form"
    ):
        LARS(torch.optim.SGD(params, lr=0.1, momentum=0.9, fused=True), momentum_form="paper")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LARS(torch.optim.SGD(make_params(torch.float32), lr=0.1, momentum=0.9, fused=True))
        LARS(torch.optim.SGD(make_params(torch.float32), lr=0.1, momentum=0.9), momentum_form="paper")


def test_fused_base_warns_for_an_added_paper_form_group():
    opt = LARS(torch.optim.SGD(make_params(torch.float32)[:1], lr=0.1, fused=True))
    with pytest.warns(UserWarning, match=r"param group 1: fused=True"):
        opt.add_param_group({"params": make_params(torch.float32)[1:], "lars_momentum_form": "paper"})


@FOREACH
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_paper_form_state_holds_only_its_buffer(foreach, momentum):
    params = make_params()
    opt = run(
        Info("paper", lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=momentum), {"momentum_form": "paper"}),
        params,
        foreach=foreach,
    )
    if momentum == 0:
        assert len(opt.state) == 0 and opt.state_dict()["state"] == {}
    else:
        assert [sorted(opt.state[p]) for p in params] == [["lars_momentum_buffer"]] * 3
