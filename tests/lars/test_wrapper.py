"""lars.LARS: the step by hand, every base optimizer, exclusion, state, schedulers, AMP."""

import copy
import math

import pytest
import torch

import lars
from lars import LARS

BASES = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, nesterov=True),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.5, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p, lr=0.5),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.5),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.5),
    "sgd_fused": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, fused=True),
    "adam_fused": lambda p: torch.optim.Adam(p, lr=0.5, fused=True),
}


def f64(x):
    return torch.tensor(x, dtype=torch.float64)


def small_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()


def batches(n=8, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(32, 6, generator=gen, dtype=torch.float64)
        yield x, x[:, :3].argmax(1)


def train(model, opt, n=8, seed=1, sched=None):
    losses = []
    for x, y in batches(n, seed):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    return losses


def one_param(values, grad):
    p = torch.nn.Parameter(f64(values))
    p.grad = f64(grad)
    return p


# ---- one step by hand ----------------------------------------------------------------


def test_gradient_mode_sgd_step_matches_hand_computation():
    # w = (3, 4), g = (0.6, 0.8): ‖w‖ = 5, ‖g‖ = 1; λ = 0.01, β = 0.1, ε = 0.5
    # r = 0.01*5 / (1 + 0.5 + 0.5) = 0.025;  d = r*(g + β w) = 0.025*(0.9, 1.2) = (0.0225, 0.03)
    # SGD momentum, first step: v = d;  w <- w - 0.5 v = (2.98875, 3.985)
    p = one_param([3.0, 4.0], [0.6, 0.8])
    base = torch.optim.SGD([p], lr=0.5, momentum=0.9, weight_decay=0.1)
    opt = LARS(base, trust_coefficient=0.01, eps=0.5)
    opt.step()
    torch.testing.assert_close(p.detach(), f64([2.98875, 3.985]), rtol=0, atol=1e-15)
    torch.testing.assert_close(opt.state[p]["momentum_buffer"], f64([0.0225, 0.03]), rtol=0, atol=1e-16)
    # second step with the same gradient: w = (2.98875, 3.985), ‖w‖ = sqrt(2.98875²+3.985²)
    w2 = f64([2.98875, 3.985])
    r2 = 0.01 * w2.norm() / (1.0 + 0.1 * w2.norm() + 0.5)
    v2 = 0.9 * f64([0.0225, 0.03]) + r2 * (f64([0.6, 0.8]) + 0.1 * w2)
    opt.step()
    torch.testing.assert_close(p.detach(), w2 - 0.5 * v2, rtol=0, atol=1e-15)


def test_update_mode_adam_keeps_l2_decay_and_matches_hand_computation():
    # Adam's weight_decay is L2: it sees g + βw = (0.9, 1.2). Eps 0, first step:
    # u = sign(g + βw) = (1, 1), Δ = −0.1·(1, 1), ‖Δ‖ = 0.1·√2.
    # r = α·λ‖w‖/‖Δ‖ = 0.1·0.01·5/(0.1·√2) = 0.05/√2;  w <- w + r·Δ
    p = one_param([3.0, 4.0], [0.6, 0.8])
    opt = LARS(torch.optim.Adam([p], lr=0.1, eps=0.0, weight_decay=0.1), trust_coefficient=0.01, eps=0.0)
    assert opt.param_groups[0]["lars_mode"] == "update"
    opt.step()
    r = 0.05 / math.sqrt(2.0)
    expected = f64([3.0 - 0.1 * r, 4.0 - 0.1 * r])
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-15)
    assert opt.param_groups[0]["weight_decay"] == 0.1
    assert [r.item() for _, r in opt.trust_ratios()] == pytest.approx([r], rel=1e-14)


def test_update_mode_adamw_keeps_decoupled_decay_and_matches_hand_computation():
    # AdamW: w(1 − αβ) − α·u with u = sign(g) = (1, 1): Δ = −0.1·(1 + 0.3, 1 + 0.4),
    # ‖Δ‖/α = ‖u + βw‖ = √3.65 (LAMB's norm); r = 0.01·5/√3.65;  w <- w + r·Δ
    p = one_param([3.0, 4.0], [0.6, 0.8])
    opt = LARS(torch.optim.AdamW([p], lr=0.1, eps=0.0, weight_decay=0.1), trust_coefficient=0.01, eps=0.0)
    opt.step()
    r = 0.05 / math.sqrt(3.65)
    expected = f64([3.0 - 0.1 * r * 1.3, 4.0 - 0.1 * r * 1.4])
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-15)


def test_adam_and_adamw_under_lars_keep_their_different_decay():
    # Issue #13 item 7: LARS(Adam(weight_decay)) was bit-identical to LARS(AdamW(...)).
    results = []
    for cls in (torch.optim.Adam, torch.optim.AdamW):
        p = one_param([3.0, 4.0], [0.6, 0.8])
        LARS(cls([p], lr=0.1, eps=0.0, weight_decay=0.1), trust_coefficient=0.01, eps=0.0).step()
        results.append(p.detach().clone())
    assert not torch.allclose(results[0], results[1], rtol=1e-6, atol=0)


# ---- zero norms ---------------------------------------------------------------------


def test_zero_weight_tensor_steps_like_the_base_optimizer():
    # ‖w‖ = 0 -> r = 1: gradient mode hands SGD exactly g (β·w = 0)
    p = one_param([0.0, 0.0], [0.6, 0.8])
    LARS(torch.optim.SGD([p], lr=0.5, weight_decay=0.1)).step()
    torch.testing.assert_close(p.detach(), f64([-0.3, -0.4]), rtol=0, atol=0)


def test_zero_gradient_tensor_still_decays_with_ratio_one():
    # ‖g‖ = 0 -> r = 1: d = 0 + β w = (0.3, 0.4); w <- w - 0.5 d
    p = one_param([3.0, 4.0], [0.0, 0.0])
    LARS(torch.optim.SGD([p], lr=0.5, weight_decay=0.1)).step()
    torch.testing.assert_close(p.detach(), f64([2.85, 3.8]), rtol=0, atol=1e-15)
    # update mode, zero gradient: AdamW's step is its decay alone, Δ = −αβw = −0.05·w,
    # ‖Δ‖ = 0.25; r = α·λ‖w‖/‖Δ‖ = 0.5·1e-3·5/0.25 = 0.01 -> w(1 − 0.01·0.05)
    q = one_param([3.0, 4.0], [0.0, 0.0])
    LARS(torch.optim.AdamW([q], lr=0.5, weight_decay=0.1), eps=0.0).step()
    torch.testing.assert_close(q.detach(), f64([3.0 * 0.9995, 4.0 * 0.9995]), rtol=0, atol=1e-15)
    # no decay and a zero gradient: Δ = 0 -> r = 1, w unchanged
    z = one_param([3.0, 4.0], [0.0, 0.0])
    LARS(torch.optim.Adam([z], lr=0.5)).step()
    assert z.tolist() == [3.0, 4.0]


# ---- every base optimizer ------------------------------------------------------------


@pytest.mark.parametrize("name", list(BASES))
def test_trust_coefficient_changes_the_trajectory(name):
    finals = []
    for trust in (1e-3, 1e-2):
        model = small_model()
        opt = LARS(BASES[name](lars.param_groups(model, weight_decay=1e-4)), trust_coefficient=trust)
        train(model, opt, n=3)
        finals.append(model[0].weight.detach().clone())
    bare = small_model()
    train(bare, BASES[name](lars.param_groups(bare, weight_decay=1e-4)), n=3)
    assert not torch.equal(finals[0], finals[1])
    assert not torch.equal(finals[0], bare[0].weight.detach())


class _TwoLosses(torch.nn.Module):
    """A matrix and a vector whose gradients do not depend on each other."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(4, 3, generator=gen, dtype=torch.float64))
        self.bias = torch.nn.Parameter(torch.randn(5, generator=gen, dtype=torch.float64))

    def forward(self, x, target):
        return (x @ self.weight.T).square().mean() + (self.bias - target).square().sum()


@pytest.mark.parametrize("name", list(BASES))
def test_excluded_tensors_step_bit_for_bit_like_the_bare_base(name):
    # The vector is excluded (default rule) but keeps a weight decay of its own, which
    # the base applies; the matrix is adapted. After 5 steps the vector must equal the
    # bare base's bit for bit, and the matrix must not.
    kw = dict(weight_decay=1e-3, excluded_weight_decay=1e-2)
    runs = []
    for wrap in (True, False):
        model = _TwoLosses()
        base = BASES[name](lars.param_groups(model, **kw))
        opt = LARS(base, trust_coefficient=1e-2) if wrap else base
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
            target = torch.randn(5, generator=gen, dtype=torch.float64)
            opt.zero_grad()
            model(x, target).backward()
            opt.step()
        runs.append(model)
    assert torch.equal(runs[0].bias, runs[1].bias)
    assert not torch.equal(runs[0].weight, runs[1].weight)


@pytest.mark.parametrize("name", list(BASES))
def test_small_model_loss_falls(name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(128, 6, generator=gen)
    y = x[:, :3].argmax(1)
    base = BASES[name](lars.param_groups(model, weight_decay=1e-4))
    base.param_groups[0]["lr"] = 1.0
    base.param_groups[1]["lr"] = 0.05 if name.startswith("sgd") else 0.01
    opt = LARS(base, trust_coefficient=0.02)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_foreach_matches_forloop_in_float64(name):
    results = []
    for foreach in (True, False):
        model = small_model()
        opt = LARS(
            BASES[name](lars.param_groups(model, weight_decay=1e-3)),
            trust_coefficient=1e-2,
            clip=(name == "rmsprop"),
            foreach=foreach,
        )
        train(model, opt, n=4)
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_update_mode_on_a_base_that_reads_the_weights_matches_the_exact_form():
    # ASGD reads w in its step, so LARS takes Δ as a difference; with lambd = alpha = 0
    # and t0 huge it is plain SGD, whose update mode LARS reads exactly: both must agree.
    outs = []
    for make in (
        lambda g: torch.optim.ASGD(g, lr=0.5, lambd=0.0, alpha=0.0, t0=1e9, weight_decay=1e-3),
        lambda g: torch.optim.SGD(g, lr=0.5, weight_decay=1e-3),
    ):
        model = small_model()
        opt = LARS(make(model.parameters()), trust_coefficient=1e-2, mode="update")
        train(model, opt, n=3)
        outs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ---- the Optimizer contract -----------------------------------------------------------


def test_wrapper_is_an_optimizer_sharing_groups_and_state():
    model = small_model()
    base = torch.optim.SGD(lars.param_groups(model, weight_decay=1e-4), lr=0.1, momentum=0.9)
    opt = LARS(base)
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups is base.param_groups
    assert opt.state is base.state
    assert [g["lars_exclude"] for g in opt.param_groups] == [False, True]
    assert opt.param_groups[0]["lars_mode"] == "gradient"
    assert opt.param_groups[0]["lars_trust_coefficient"] == 1e-3


def test_step_leaves_grad_objects_and_values_as_computed():
    model = small_model()
    opt = LARS(torch.optim.SGD(lars.param_groups(model, weight_decay=1e-3), lr=1.0, momentum=0.9))
    x, y = next(batches(1))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    grads = [p.grad for p in model.parameters()]
    copies = [g.clone() for g in grads]
    opt.step()
    for p, g, c in zip(model.parameters(), grads, copies):
        assert p.grad is g
        assert torch.equal(g, c)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_state_dict_round_trip_mid_training_continues_bit_identically(name):
    model = small_model()
    opt = LARS(BASES[name](lars.param_groups(model, weight_decay=1e-3)), trust_coefficient=1e-2)
    train(model, opt, n=3, seed=1)
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    train(model, opt, n=3, seed=2)

    resumed = small_model(seed=5)
    resumed.load_state_dict(saved_model)
    opt2 = LARS(BASES[name](lars.param_groups(resumed, weight_decay=0.5)), trust_coefficient=0.3)
    opt2.load_state_dict(saved_opt)
    assert opt2.param_groups is opt2.optimizer.param_groups
    assert opt2.state is opt2.optimizer.state
    assert opt2.param_groups[0]["lars_trust_coefficient"] == 1e-2
    assert opt2.param_groups[0]["weight_decay"] == 1e-3
    train(resumed, opt2, n=3, seed=2)
    for a, b in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_torch_scheduler_drives_the_wrapper_lr():
    p = one_param([3.0, 4.0], [0.6, 0.8])
    opt = LARS(torch.optim.SGD([p], lr=0.5), trust_coefficient=0.01, eps=0.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    assert opt.param_groups[0]["lr"] == 0.5
    opt.step()
    sched.step()
    assert opt.optimizer.param_groups[0]["lr"] == pytest.approx(0.05, rel=1e-15)
    # second step uses lr 0.05: r = 0.01 ‖w‖ / ‖g‖, w <- w - 0.05 r g
    w1 = p.detach().clone()
    opt.step()
    r = 0.01 * w1.norm() / 1.0
    torch.testing.assert_close(p.detach(), w1 - 0.05 * r * f64([0.6, 0.8]), rtol=0, atol=1e-15)


def test_add_param_group_fills_lars_keys_and_adapts_the_new_group():
    a, b = one_param([3.0, 4.0], [0.6, 0.8]), one_param([1.0, 0.0], [0.3, 0.4])
    opt = LARS(torch.optim.SGD([a], lr=0.5), trust_coefficient=0.01, eps=0.0)
    opt.add_param_group({"params": [b], "lars_trust_coefficient": 0.2})
    group = opt.param_groups[1]
    assert group["lars_trust_coefficient"] == 0.2 and group["lars_eps"] == 0.0
    opt.step()
    # ‖b‖ = 1, ‖g‖ = 0.5: r = 0.2 * 1 / 0.5 = 0.4 -> b - 0.5 * 0.4 * (0.3, 0.4)
    torch.testing.assert_close(b.detach(), f64([1.0 - 0.06, -0.08]), rtol=0, atol=1e-15)


def test_group_may_override_mode_trust_eps_and_exclusion():
    p, q = one_param([3.0, 4.0], [0.6, 0.8]), one_param([3.0, 4.0], [0.6, 0.8])
    base = torch.optim.SGD(
        [{"params": [p], "lars_exclude": True}, {"params": [q], "lars_trust_coefficient": 0.02, "lars_eps": 1.0}],
        lr=0.5,
    )
    LARS(base, trust_coefficient=0.01, eps=0.0).step()
    torch.testing.assert_close(p.detach(), f64([2.7, 3.6]), rtol=0, atol=1e-15)  # plain SGD
    r = 0.02 * 5 / (1 + 1.0)
    torch.testing.assert_close(q.detach(), f64([3 - 0.5 * r * 0.6, 4 - 0.5 * r * 0.8]), rtol=0, atol=1e-15)


def test_closure_is_evaluated_once_and_its_loss_returned():
    model = small_model()
    opt = LARS(torch.optim.SGD(model.parameters(), lr=0.1))
    x, y = next(batches(1))
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1 and loss.item() > 0


# ---- GradScaler -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adam", "sgd_fused", "adam_fused"])
def test_grad_scaler_skips_inf_step_and_leaves_weights_and_state_untouched(name):
    model = small_model()
    opt = LARS(BASES[name](lars.param_groups(model, weight_decay=1e-3)), trust_coefficient=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    x, y = next(batches(1))
    scaler.scale(torch.nn.functional.cross_entropy(model(x), y)).backward()
    scaler.step(opt)
    scaler.update()
    weights = [p.detach().clone() for p in model.parameters()]
    state = copy.deepcopy(opt.state_dict()["state"])

    opt.zero_grad()
    scaler.scale(torch.nn.functional.cross_entropy(model(x), y)).backward()
    model[0].weight.grad[0, 0] = float("inf")
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 512.0
    for p, w in zip(model.parameters(), weights):
        assert torch.equal(p, w)
    after = opt.state_dict()["state"]
    for key, entry in state.items():
        for k, v in entry.items():
            assert torch.equal(torch.as_tensor(after[key][k]), torch.as_tensor(v))


def test_grad_scaler_step_equals_unscaled_step():
    outs = []
    for scaled in (True, False):
        model = small_model()
        opt = LARS(
            torch.optim.SGD(lars.param_groups(model, weight_decay=1e-3), lr=1.0, momentum=0.9), trust_coefficient=1e-2
        )
        x, y = next(batches(1))
        loss = torch.nn.functional.cross_entropy(model(x), y)
        if scaled:
            scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
            scaler.scale(loss).backward()
            scaler.step(opt)
        else:
            loss.backward()
            opt.step()
        outs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-16)


# ---- bad arguments --------------------------------------------------------------------


def sgd():
    return torch.optim.SGD([torch.nn.Parameter(torch.ones(2, 2))], lr=0.1)


def test_negative_trust_coefficient_is_rejected():
    with pytest.raises(ValueError, match=r"trust_coefficient must be a finite number > 0, got -0\.1"):
        LARS(sgd(), trust_coefficient=-0.1)


def test_nan_trust_coefficient_is_rejected():
    with pytest.raises(ValueError, match=r"trust_coefficient must be .* got nan"):
        LARS(sgd(), trust_coefficient=float("nan"))


def test_negative_eps_is_rejected():
    with pytest.raises(ValueError, match=r"eps must be a finite number >= 0, got -1e-08"):
        LARS(sgd(), eps=-1e-8)


def test_non_optimizer_is_rejected():
    with pytest.raises(TypeError, match=r"optimizer must be a torch\.optim\.Optimizer .*got list"):
        LARS([torch.nn.Parameter(torch.ones(2))])


def test_lars_of_lars_is_rejected():
    with pytest.raises(TypeError, match=r"optimizer must be .*not a LARS.*got LARS"):
        LARS(LARS(sgd()))


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match=r"mode must be 'gradient' or 'update', got 'layer'"):
        LARS(sgd(), mode="layer")


def test_unknown_group_key_is_rejected():
    base = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(2))], "lars_trust": 1.0}], lr=0.1)
    with pytest.raises(ValueError, match=r"param group 0: unknown key 'lars_trust'"):
        LARS(base)


def test_bad_group_mode_is_rejected():
    base = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.ones(2))], "lars_mode": "grad"}], lr=0.1)
    with pytest.raises(ValueError, match=r"param group 0: lars_mode must be 'gradient' or 'update', got 'grad'"):
        LARS(base)


def test_gradient_mode_with_adamw_scales_the_gradient_and_keeps_decay_decoupled():
    # Allowed since the base applies its own decay: AdamW gets X = r·g, decays w by αβ
    # itself. r = λ‖w‖/(‖g‖ + ε) (no β: the decay is not scaled); Adam's first step with
    # eps 0 is sign(X)·α whatever r > 0 is: w <- w(1 − αβ) − α·(1, 1)
    p = one_param([3.0, 4.0], [0.6, 0.8])
    opt = LARS(
        torch.optim.AdamW([p], lr=0.1, eps=0.0, weight_decay=0.1), mode="gradient", trust_coefficient=0.01, eps=0.0
    )
    opt.step()
    torch.testing.assert_close(p.detach(), f64([3.0 * 0.99 - 0.1, 4.0 * 0.99 - 0.1]), rtol=0, atol=1e-15)
    assert [r.item() for _, r in opt.trust_ratios()] == pytest.approx([0.05], rel=1e-14)
    assert opt.state[p]["exp_avg"].tolist() == pytest.approx([0.1 * 0.05 * 0.6, 0.1 * 0.05 * 0.8], rel=1e-14)


def test_sparse_adam_is_rejected():
    with pytest.raises(TypeError, match=r"optimizer must not be SparseAdam"):
        LARS(torch.optim.SparseAdam([torch.nn.Parameter(torch.ones(2))]))


def test_lbfgs_is_rejected():
    with pytest.raises(TypeError, match=r"optimizer must not be LBFGS"):
        LARS(torch.optim.LBFGS([torch.nn.Parameter(torch.ones(2))]))


# ---- fast paths against the reference ----------------------------------------------------


@pytest.mark.parametrize(
    "sgd_kw",
    [
        dict(momentum=0.9),
        dict(momentum=0.9, dampening=0.3),
        dict(momentum=0.0),
        dict(momentum=0.9, maximize=True),
        dict(momentum=0.9, nesterov=True),
    ],
    ids=["momentum", "dampening", "no-momentum", "maximize", "nesterov"],
)
def test_sgd_gradient_mode_fast_path_matches_reference_path_in_float64(sgd_kw):
    results = []
    for foreach in (True, False):
        model = small_model()
        base = torch.optim.SGD(lars.param_groups(model, weight_decay=1e-2), lr=0.7, **sgd_kw)
        opt = LARS(base, trust_coefficient=2e-2, foreach=foreach)
        train(model, opt, n=4)
        results.append([p.detach().clone() for p in model.parameters()])
        if sgd_kw["momentum"]:
            assert all("momentum_buffer" in opt.state[p] for p in model.parameters())
        else:
            assert len(opt.state) == 0  # as bare SGD: no state without momentum
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


UPDATE_BASES = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad", "Adadelta", "Rprop"]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2], ids=["no-decay", "decay"])
@pytest.mark.parametrize("name", UPDATE_BASES)
def test_update_mode_fast_path_matches_reference_on_every_base(name, weight_decay):
    results = []
    for foreach in (True, False):
        model = small_model()
        lr = 0.05 if name == "Rprop" else 0.5
        opt = LARS(
            getattr(torch.optim, name)(lars.param_groups(model, weight_decay=weight_decay), lr=lr),
            trust_coefficient=1e-2,
            mode="update",
            foreach=foreach,
        )
        train(model, opt, n=4)
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "cls, mode",
    [
        (torch.optim.SGD, "gradient"),
        (torch.optim.Adam, "update"),
        (torch.optim.AdamW, "update"),
        (torch.optim.RMSprop, "update"),
        (torch.optim.Adagrad, "update"),
    ],
)
def test_default_mode_follows_the_base(cls, mode):
    opt = LARS(cls([torch.nn.Parameter(torch.ones(2, 2))], lr=0.1))
    assert opt.param_groups[0]["lars_mode"] == mode


def test_scratch_tensors_stay_out_of_the_state_dict():
    model = small_model()
    opt = LARS(torch.optim.Adam(lars.param_groups(model, weight_decay=1e-3), lr=0.1))
    train(model, opt, n=2)
    assert opt._work
    saved = opt.state_dict()["state"]
    assert all(set(entry) <= {"step", "exp_avg", "exp_avg_sq"} for entry in saved.values())


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_bfloat16_parameters_step(name):
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4).to(torch.bfloat16)
    before = model.weight.detach().clone()
    opt = LARS(BASES[name](lars.param_groups(model, weight_decay=1e-3)), trust_coefficient=0.1)
    model(torch.randn(16, 8, dtype=torch.bfloat16)).float().square().mean().backward()
    opt.step()
    assert model.weight.dtype == torch.bfloat16
    assert not torch.equal(model.weight, before)
    assert torch.isfinite(model.weight.float()).all()


# ---- trust_ratios() -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_trust_ratios_lists_each_adapted_tensor_of_the_latest_step(name):
    model = small_model()
    opt = LARS(BASES[name](lars.param_groups(model, weight_decay=1e-3)), trust_coefficient=1e-2)
    assert opt.trust_ratios() == []
    train(model, opt, n=1)
    first = opt.trust_ratios()
    assert [p for p, _ in first] == [model[0].weight, model[2].weight]  # biases are excluded
    assert all(r.dim() == 0 and r.device == p.device and 0 < r.item() < 1 for p, r in first)
    train(model, opt, n=1)
    second = opt.trust_ratios()
    assert [r.item() for _, r in first] != [r.item() for _, r in second]  # the latest step's


def test_trust_ratios_match_the_hand_computed_gradient_mode_ratio():
    p = one_param([3.0, 4.0], [0.6, 0.8])
    opt = LARS(torch.optim.SGD([p], lr=0.5, momentum=0.9, weight_decay=0.1), trust_coefficient=0.01, eps=0.5)
    opt.step()
    [(param, ratio)] = opt.trust_ratios()
    assert param is p and ratio.item() == pytest.approx(0.025, rel=1e-15)  # as in the first test


def test_the_step_keeps_only_references_for_trust_ratios(monkeypatch):
    # "Free when nobody reads": the step stores the rate tensors it computed, splitting
    # them only when trust_ratios() is called.
    model = small_model()
    opt = LARS(torch.optim.SGD(lars.param_groups(model, weight_decay=1e-3), lr=0.1, momentum=0.9))
    calls = []
    real = torch.Tensor.unbind
    monkeypatch.setattr(torch.Tensor, "unbind", lambda self, *a: calls.append(self.shape) or real(self, *a))
    train(model, opt, n=1)
    during_step = len(calls)
    opt.trust_ratios()
    assert len(calls) == during_step + 1


def test_deepcopy_drops_work_tensors_and_steps_identically():
    model = small_model()
    opt = LARS(torch.optim.Adam(lars.param_groups(model, weight_decay=1e-3), lr=0.1), trust_coefficient=1e-2)
    train(model, opt, n=2)
    assert opt._work
    twin_model, twin = copy.deepcopy((model, opt))
    assert twin._work == {} and twin._workspace == {} and twin.trust_ratios() == []
    assert twin.param_groups is twin.optimizer.param_groups and twin.state is twin.optimizer.state
    train(model, opt, n=2, seed=3)
    train(twin_model, twin, n=2, seed=3)
    for a, b in zip(model.parameters(), twin_model.parameters()):
        assert torch.equal(a, b)
