"""lars.trust_ratio: the ratio, the LARC clip, zero norms, and the two norm paths."""

import math

import pytest
import torch

from lars.trust_ratio import local_lr, tensor_norms, trust_ratio, update_factor


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_trust_ratio_matches_hand_computation():
    # ‖w‖ = ‖(3, 4)‖ = 5, ‖g‖ = ‖(0.6, 0.8)‖ = 1; λ = 0.01, β = 0.1, ε = 0.5:
    # 0.01 * 5 / (1 + 0.1 * 5 + 0.5) = 0.05 / 2 = 0.025
    w, g = t([3.0, 4.0]), t([0.6, 0.8])
    ratio = trust_ratio(w.norm(), g.norm(), trust_coefficient=0.01, weight_decay=0.1, eps=0.5)
    assert ratio.item() == pytest.approx(0.025, rel=1e-15)


def test_trust_ratio_is_elementwise_over_many_tensors():
    ratio = trust_ratio(t([5.0, 2.0]), t([1.0, 4.0]), trust_coefficient=0.5)
    assert ratio.tolist() == [2.5, 0.25]


@pytest.mark.parametrize("w_norm, g_norm", [(0.0, 3.0), (3.0, 0.0), (0.0, 0.0)])
def test_zero_norm_gives_exactly_one(w_norm, g_norm):
    ratio = trust_ratio(t(w_norm), t(g_norm), trust_coefficient=1e-3, weight_decay=0.0, eps=0.0)
    assert ratio.item() == 1.0
    rate = local_lr(t(w_norm), t(g_norm), lr=5.0, trust_coefficient=1e-3, clip=True)
    assert rate.item() == 1.0


def test_adaptation_does_not_depend_on_weight_decay():
    # timm's Lars adapts only when weight_decay != 0; here β = 0 still gives λ‖w‖/(‖g‖+ε)
    ratio = trust_ratio(t(5.0), t(1.0), trust_coefficient=0.01, weight_decay=0.0, eps=0.0)
    assert ratio.item() == pytest.approx(0.05, rel=1e-15)


def test_larc_clip_is_min_of_ratio_over_lr_and_one():
    # ratio 0.375; lr 0.5 -> min(0.75, 1) = 0.75; lr 0.25 -> min(1.5, 1) = 1
    kw = dict(trust_coefficient=0.5, weight_decay=0.0, eps=0.0, clip=True)
    assert local_lr(t(3.0), t(4.0), lr=0.5, **kw).item() == pytest.approx(0.75, rel=1e-15)
    assert local_lr(t(3.0), t(4.0), lr=0.25, **kw).item() == 1.0
    unclipped = local_lr(t(3.0), t(4.0), lr=0.25, trust_coefficient=0.5)
    assert unclipped.item() == pytest.approx(0.375, rel=1e-15)


def test_tensor_norms_hand_values_and_paths_agree_in_float64():
    tensors = [t([[3.0, 4.0]]), t([0.0, 0.0, 0.0]), t([[1.0], [2.0], [2.0]])]
    for foreach in (True, False):
        assert tensor_norms(tensors, foreach=foreach).tolist() == [5.0, 0.0, 3.0]
    gen = torch.Generator().manual_seed(0)
    many = [torch.randn(s, generator=gen, dtype=torch.float64) for s in [(7, 3), (11,), (2, 3, 4)]]
    torch.testing.assert_close(tensor_norms(many, foreach=True), tensor_norms(many, foreach=False), rtol=1e-14, atol=0)


def test_tensor_norms_reduce_half_precision_in_float32():
    x = torch.full((4,), 3.0, dtype=torch.bfloat16)
    for foreach in (True, False):
        norms = tensor_norms([x, x.float()], foreach=foreach)
        assert norms.dtype == torch.float32
        assert norms.tolist() == [6.0, 6.0]


def test_ratio_has_no_nan_with_eps_zero_and_zero_norms():
    ratio = trust_ratio(t([0.0, 2.0]), t([0.0, 1.0]), trust_coefficient=1.0)
    assert ratio.tolist() == [1.0, 2.0]
    assert not math.isnan(ratio.sum().item())


def test_clip_at_lr_zero_is_one_not_an_error():
    # a warm-up's first step: min(ratio / 0, 1) = 1, as the limit
    assert local_lr(t(3.0), t(4.0), lr=0.0, trust_coefficient=0.5, clip=True).item() == 1.0
    assert update_factor(t(3.0), t(0.5), lr=0.0, trust_coefficient=0.5, eps=1e-8, clip=True).item() == 1.0


def test_update_factor_matches_hand_computation():
    # ‖w‖ = 3, ‖Δ‖ = 2, α = 0.5, λ = 0.5, ε = 1: ‖u‖ = ‖Δ‖/α = 4, r = 0.5·3/(4 + 1) = 0.3
    r = update_factor(t(3.0), t(2.0), lr=0.5, trust_coefficient=0.5, eps=1.0)
    assert r.item() == pytest.approx(0.3, rel=1e-15)
    # LARC: min(r/α, 1) = min(0.6, 1)
    r = update_factor(t(3.0), t(2.0), lr=0.5, trust_coefficient=0.5, eps=1.0, clip=True)
    assert r.item() == pytest.approx(0.6, rel=1e-15)
    # zero norms and lr = 0 without clipping: ratio 1 for a zero norm, 0 for a step at α = 0
    assert update_factor(t([0.0, 3.0]), t([1.0, 0.0]), lr=0.5, trust_coefficient=0.5).tolist() == [1.0, 1.0]
    assert update_factor(t(3.0), t(2.0), lr=0.0, trust_coefficient=0.5).item() == 0.0


def test_tensor_norms_of_complex_and_non_dense_tensors():
    z = torch.tensor([3.0 + 4.0j, 0.0 + 0.0j], dtype=torch.complex64)
    view = torch.arange(12.0, dtype=torch.float64).reshape(3, 4)[:, ::2]  # non-dense
    for foreach in (True, False):
        norms = tensor_norms([z], foreach=foreach)
        assert norms.dtype == torch.float32 and norms.tolist() == [5.0]
        torch.testing.assert_close(
            tensor_norms([view], foreach=foreach)[0], view.contiguous().norm(), rtol=1e-15, atol=0
        )
