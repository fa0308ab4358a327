"""lars.LARS on a CUDA device: the same steps as on the CPU, AMP's GradScaler, state_dict.

On the CPU the fast path runs over cache-sized chunks; on CUDA over one chunk per dtype,
with the per-tensor ratios as 0-d device tensors, so these tests are the only check of
that arrangement with real device tensors (and of "no host synchronisation in step()").
They run where CUDA is (the project's GPU machine) and are skipped elsewhere.
"""

import copy

import pytest
import torch

import lars
from lars import LARS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

BASES = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, weight_decay=1e-3),
    "sgd_fused": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9, weight_decay=1e-3, fused=True),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-2, momentum=0.9, weight_decay=1e-3),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "adam_fused": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, fused=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
}


def conv_model(device, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 5),
    )
    return model.to(device=device, dtype=dtype)


def run(device, name, *, foreach=True, steps=6, dtype=torch.float64, mode=None):
    model = conv_model(device, dtype)
    base = BASES[name](lars.param_groups(model, weight_decay=1e-3))
    if name == "adamw":  # decoupled decay cannot be carried by the gradient-mode trust ratio
        mode = "update"
    opt = LARS(base, trust_coefficient=0.02, mode=mode, foreach=foreach)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 3, 6, 6, generator=gen, dtype=dtype).to(device)
        y = torch.randint(0, 5, (16,), generator=gen).to(device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().cpu() for p in model.parameters()], opt


@pytest.mark.parametrize("name", list(BASES))
def test_cuda_steps_match_cpu_steps_in_float64(name):
    on_cpu, _ = run("cpu", name)
    on_cuda, _ = run("cuda", name)
    # CPU and CUDA kernels round differently in the last bits; six steps through batch norm
    # amplify that to ~1e-8 relative (RMSprop, seen on an H200). A wrong trust ratio is off by >1e-3.
    for a, b in zip(on_cpu, on_cuda):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mode", ["gradient", "update"])
def test_cuda_foreach_path_matches_the_reference_loop(mode):
    fast, _ = run("cuda", "sgd", foreach=True, mode=mode)
    slow, _ = run("cuda", "sgd", foreach=False, mode=mode)
    for a, b in zip(slow, fast):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_cuda_bfloat16_parameters_step_and_stay_finite(name):
    params, _ = run("cuda", name, dtype=torch.bfloat16, steps=3)
    start = [p.detach().cpu() for p in conv_model("cuda", torch.bfloat16).parameters()]
    assert all(torch.isfinite(p.float()).all() for p in params)
    assert any(not torch.equal(a, b) for a, b in zip(start, params))


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_cuda_state_dict_round_trip_continues_bit_identically(name):
    model = conv_model("cuda", torch.float32)
    opt = LARS(BASES[name](lars.param_groups(model, weight_decay=1e-3)), trust_coefficient=0.02)
    gen = torch.Generator().manual_seed(3)
    data = [
        (torch.randn(16, 3, 6, 6, generator=gen).cuda(), torch.randint(0, 5, (16,), generator=gen).cuda())
        for _ in range(6)
    ]

    def steps(m, o, part):
        for x, y in part:
            loss = torch.nn.functional.cross_entropy(m(x), y)
            o.zero_grad()
            loss.backward()
            o.step()

    steps(model, opt, data[:3])
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    steps(model, opt, data[3:])
    resumed = conv_model("cuda", torch.float32, seed=9)
    resumed.load_state_dict(saved_model)
    opt2 = LARS(BASES[name](lars.param_groups(resumed, weight_decay=1e-3)), trust_coefficient=0.02)
    opt2.load_state_dict(saved_opt)
    steps(resumed, opt2, data[3:])
    for a, b in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_cuda_grad_scaler_skips_inf_step_and_matches_unscaled_step(name):
    model = conv_model("cuda", torch.float32)
    plain = copy.deepcopy(model)
    opt = LARS(BASES[name](lars.param_groups(model, weight_decay=1e-3)), trust_coefficient=0.02)
    plain_opt = LARS(BASES[name](lars.param_groups(plain, weight_decay=1e-3)), trust_coefficient=0.02)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10)
    x = torch.randn(16, 3, 6, 6, device="cuda")
    y = torch.randint(0, 5, (16,), device="cuda")

    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    next(model.parameters()).grad[0].fill_(float("inf"))
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert opt.state == {} or all(not s for s in opt.state.values())
    assert scaler.get_scale() == 2.0**9

    opt.zero_grad()
    scaler.scale(torch.nn.functional.cross_entropy(model(x), y)).backward()
    scaler.step(opt)
    scaler.update()
    plain_opt.zero_grad()
    torch.nn.functional.cross_entropy(plain(x), y).backward()
    plain_opt.step()
    for a, b in zip(plain.parameters(), model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, mode", [("sgd", "gradient"), ("sgd", "update"), ("adam", "update")])
def test_cuda_step_does_not_synchronise_with_the_host(name, mode):
    model = conv_model("cuda", torch.float32)
    base = BASES[name](lars.param_groups(model, weight_decay=1e-3))
    opt = LARS(base, trust_coefficient=0.02, mode=mode)
    x = torch.randn(16, 3, 6, 6, device="cuda")
    torch.nn.functional.cross_entropy(model(x), torch.zeros(16, dtype=torch.long, device="cuda")).backward()
    opt.step()  # first step: state and work tensors are created
    torch.cuda.synchronize()
    bare = copy.deepcopy(base)
    torch.cuda.set_sync_debug_mode("error")
    try:
        try:
            bare.step()
        except RuntimeError:
            pytest.skip(f"the bare {name} step itself synchronises")
        opt.step()  # raises RuntimeError on any synchronising call
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(opt.trust_ratios()) == 2
