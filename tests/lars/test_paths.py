"""The fast path (``foreach=True``: ``torch._foreach_*`` over chunks, ratios on device)
against the reference (``foreach=False``: one tensor at a time), and a compiled step
against the eager one, over bases x modes x layouts x dtypes.

Layouts: contiguous, a non-dense view (every other element of a larger tensor) and
channels_last. Dtypes: float32, bfloat16, float16 and complex64 (every base here takes
complex tensors). "To rounding" is a few units in the last place of the dtype. Adam's and
RMSprop's eps is 1e-3 here: their default 1e-8 is 0 in float16, and the bare base then
divides 0 by 0 wherever a squared gradient underflows.
"""

import pytest
import torch

import lars
from lars import LARS

CASES = {  # name: (base, LARS options)
    "sgd-gradient": (lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, weight_decay=1e-2), {}),
    "sgd-nesterov-maximize": (
        lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, nesterov=True, maximize=True, weight_decay=1e-2),
        {},
    ),
    "sgd-paper": (lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, weight_decay=1e-2), {"momentum_form": "paper"}),
    "sgd-update": (
        lambda g: torch.optim.SGD(g, lr=0.5, momentum=0.9, weight_decay=1e-2),
        {"mode": "update", "clip": True},
    ),
    "adam-update": (lambda g: torch.optim.Adam(g, lr=0.5, eps=1e-3, weight_decay=1e-2), {}),
    "adamw-update": (lambda g: torch.optim.AdamW(g, lr=0.5, eps=1e-3, weight_decay=1e-2), {}),
    "adamw-gradient": (lambda g: torch.optim.AdamW(g, lr=0.5, eps=1e-3, weight_decay=1e-2), {"mode": "gradient"}),
    "rmsprop-update": (lambda g: torch.optim.RMSprop(g, lr=0.05, momentum=0.9, eps=1e-3, weight_decay=1e-2), {}),
}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "complex64": torch.complex64}
TOLERANCE = {torch.float32: 1e-5, torch.complex64: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}
LAYOUTS = ["contiguous", "non-dense", "channels_last"]


def make_tensor(layout, dtype, gen, scale=1.0):
    t = torch.randn(4, 3, 3, 2, 2, generator=gen, dtype=torch.float64) * scale
    t = t.to(dtype) if not dtype.is_complex else torch.complex(t, t.flip(0) * 0.5).to(dtype)
    if layout == "non-dense":
        return t[..., 0]
    t = t[..., 0].contiguous()
    if layout == "channels_last":
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def run(case, layouts, dtypes, *, foreach=True, compiled=False, steps=3, grad_scale=0.1):
    make, options = CASES[case]
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(make_tensor(layout, dtype, gen)) for dtype in dtypes for layout in layouts]
    grads = [
        [make_tensor(layout, p.dtype, gen, grad_scale) for p, layout in zip(params, layouts * len(dtypes))]
        for _ in range(steps)
    ]
    groups = [{"params": params[i : i + len(layouts)]} for i in range(0, len(params), len(layouts))]
    opt = LARS(make(groups), trust_coefficient=0.02, foreach=foreach, **options)
    step = torch.compile(opt.step) if compiled else opt.step
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g
        step()
    return [p.detach().clone() for p in params], [r.clone() for _, r in opt.trust_ratios()]


def assert_to_rounding(actual, expected):
    for a, b in zip(actual, expected):
        tol = TOLERANCE[a.dtype]
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_matches_reference(case, layout, dtype):
    dtype = DTYPES[dtype]
    fast, fast_ratios = run(case, [layout], [dtype], foreach=True)
    slow, slow_ratios = run(case, [layout], [dtype], foreach=False)
    assert_to_rounding(fast, slow)
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(torch.stack(fast_ratios), torch.stack(slow_ratios), rtol=tol, atol=0)
    start, _ = run(case, [layout], [dtype], steps=0)
    assert not torch.equal(fast[0], start[0])  # it moved


@pytest.mark.parametrize("case", ["sgd-gradient", "adam-update"])
def test_parameters_keep_their_layout(case):
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(make_tensor(layout, torch.float32, gen)) for layout in LAYOUTS]
    strides = [p.stride() for p in params]
    opt = LARS(CASES[case][0](params))
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    assert [p.stride() for p in params] == strides
    assert not params[1].is_contiguous()
    assert params[2].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("case", ["sgd-gradient", "sgd-nesterov-maximize", "adam-update"])
def test_float64_fast_path_matches_reference_closely(case):
    fast, _ = run(case, LAYOUTS, [torch.float64], steps=4)
    slow, _ = run(case, LAYOUTS, [torch.float64], foreach=False, steps=4)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)


def test_chunks_split_on_dtype_and_size(monkeypatch):
    monkeypatch.setattr(lars.functional, "CPU_CHUNK_NUMEL", 7)
    ts = [torch.empty(n) for n in (3, 4, 10, 2, 2)] + [torch.empty(1, dtype=torch.float64)]
    sizes = [[t.numel() for t in run_[0]] for run_ in lars.functional._chunks(ts)]
    assert sizes == [[3, 4], [10], [2, 2], [1]]


@pytest.mark.parametrize("chunk", [1, 100, 1 << 20], ids=["per-tensor", "split", "one-chunk"])
def test_chunking_changes_nothing(chunk, monkeypatch):
    expected, _ = run("adam-update", LAYOUTS, [torch.float64], foreach=False)
    expected_sgd, _ = run("sgd-gradient", LAYOUTS, [torch.float64], foreach=False)
    monkeypatch.setattr(lars.functional, "CPU_CHUNK_NUMEL", chunk)
    for case, reference in (("adam-update", expected), ("sgd-gradient", expected_sgd)):
        got, _ = run(case, LAYOUTS, [torch.float64])
        for a, b in zip(got, reference):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.slow  # one compilation each, ~20-60 s on 2 busy cores
@pytest.mark.parametrize("case", ["sgd-gradient", "sgd-paper", "adam-update"])
def test_compiled_step_matches_eager(case):
    dtypes = [torch.float32, torch.bfloat16, torch.float16, torch.complex64]
    # Gradients of about 1: with 0.1, Adam's (1 − β2)·g² falls below float16's normal
    # range, where eager Adam (float16 arithmetic) and compiled Adam (float32 inside)
    # round the base's own step differently.
    eager, eager_ratios = run(case, LAYOUTS, dtypes, grad_scale=1.0)
    compiled, compiled_ratios = run(case, LAYOUTS, dtypes, compiled=True, grad_scale=1.0)
    assert_to_rounding(compiled, eager)
    torch.testing.assert_close(torch.stack(compiled_ratios), torch.stack(eager_ratios), rtol=2e-2, atol=0)
