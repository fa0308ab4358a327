"""float32 steps pinned bit for bit, as they were before issue 27 changed the step.

Issue 27 moved the base's step out of torch's hook wrapper, folded the weight decay of
half-precision tensors into float32 and added real views to the reference paths; none of
that may change a float32 parameter (or an AMP run's float32 master weights) by one bit.
Each case runs a few steps on small float32 tensors and compares a SHA-256 of the final
weights and ratios with the digest recorded on the tree before those changes
(x86_64, torch 2.14.1). A digest that differs on another CPU or torch build is a
question for that build (its kernels round differently), not necessarily a bug here:
regenerate with ``python tests/lars/test_pinned_fp32.py`` on the old tree to compare.
"""

import hashlib

import pytest
import torch

from lars import LARS

CASES = {  # name: (base, LARS options)
    "sgd-gradient": (lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, weight_decay=5e-2), {}),
    "sgd-gradient-loop": (
        lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, weight_decay=5e-2),
        {"foreach": False},
    ),
    "sgd-nesterov-maximize": (
        lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, nesterov=True, maximize=True, weight_decay=5e-2),
        {},
    ),
    "sgd-fused-clip": (
        lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, weight_decay=5e-2, fused=True),
        {"clip": True},
    ),
    "sgd-paper": (lambda g: torch.optim.SGD(g, lr=0.3, momentum=0.9, weight_decay=5e-2), {"momentum_form": "paper"}),
    "sgd-paper-loop": (
        lambda g: torch.optim.SGD(g, lr=0.3, momentum=0.9, weight_decay=5e-2),
        {"momentum_form": "paper", "foreach": False},
    ),
    "adam-update": (lambda g: torch.optim.Adam(g, lr=0.5, weight_decay=5e-2), {}),
    "adam-update-loop": (lambda g: torch.optim.Adam(g, lr=0.5, weight_decay=5e-2), {"foreach": False}),
    "adamw-gradient": (lambda g: torch.optim.AdamW(g, lr=0.5, weight_decay=5e-2), {"mode": "gradient"}),
}

PINNED = {
    "sgd-gradient": "a10a6913275e693e",
    "sgd-gradient-loop": "a10a6913275e693e",
    "sgd-nesterov-maximize": "87b597c89e7caa38",
    "sgd-fused-clip": "691cbba16ae206db",
    "sgd-paper": "3e3a6c87f00037d9",
    "sgd-paper-loop": "e759eafbdba7fece",
    "adam-update": "a4b5f05332b67d4c",
    "adam-update-loop": "a4b5f05332b67d4c",
    "adamw-gradient": "29f2d875f9375ab7",
    "amp-sgd": "72feb0eee9a398fe",
    "amp-adam": "52e8fbeaf6b20a59",
}


def digest(tensors):
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().view(torch.int32).numpy().tobytes())
    return h.hexdigest()[:16]


def run_case(name, steps=3):
    make, options = CASES[name]
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in ((4, 3), (6,), (2, 3, 2))]
    opt = LARS(make(params), trust_coefficient=0.02, **options)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen) * 0.1
        opt.step()
    return digest([*params, *(r for _, r in opt.trust_ratios())])


def run_amp(base, steps=3):
    """bfloat16 autocast on the CPU, float32 master weights, a GradScaler."""
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    make = {
        "sgd": lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, weight_decay=5e-2),
        "adam": lambda g: torch.optim.Adam(g, lr=0.5, weight_decay=5e-2),
    }[base]
    opt = LARS(make(model.parameters()), trust_coefficient=0.02)
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    for _ in range(steps):
        x = torch.randn(16, 5, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x).float().square().mean()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return digest([*model.parameters(), *(r for _, r in opt.trust_ratios())])


def compute(name):
    return run_amp(name[4:]) if name.startswith("amp-") else run_case(name)


# Where the digests were recorded: torch's kernels round differently with another vector width or build.
PINNED_ON = ("2.14.1", "AVX512")


def _build() -> tuple[str, str]:
    return torch.__version__.split("+")[0], torch.backends.cpu.get_cpu_capability()


@pytest.mark.skipif(_build() != PINNED_ON, reason=f"digests recorded with torch {PINNED_ON[0]} on {PINNED_ON[1]}")
@pytest.mark.parametrize("name", list(PINNED))
def test_float32_step_is_bit_for_bit_as_pinned(name):
    assert compute(name) == PINNED[name]


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in PINNED:
        print(f'    "{name}": "{compute(name)}",')
