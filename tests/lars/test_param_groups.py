"""lars.param_groups: the default 1-D split, overrides, and its errors."""

import pytest
import torch

import lars


def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 2)
    )


def test_default_split_excludes_vectors_from_adaptation_and_decay():
    model = net()
    adapted, excluded = lars.param_groups(model, weight_decay=5e-4)
    assert [tuple(p.shape) for p in adapted["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert [tuple(p.shape) for p in excluded["params"]] == [(4,), (4,), (4,), (2,)]
    assert adapted["weight_decay"] == 5e-4 and "lars_exclude" not in adapted
    assert excluded["weight_decay"] == 0.0 and excluded["lars_exclude"] is True


def test_groups_feed_lars_with_exclusion_honoured():
    model = net()
    opt = lars.LARS(torch.optim.SGD(lars.param_groups(model, weight_decay=5e-4), lr=0.1))
    assert [g["lars_exclude"] for g in opt.param_groups] == [False, True]
    assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]


def test_exclude_none_adapts_every_tensor_in_one_group():
    groups = lars.param_groups(net(), weight_decay=1e-4, exclude=None)
    assert len(groups) == 1 and len(groups[0]["params"]) == 6


def test_custom_exclude_rule_and_extra_keys():
    groups = lars.param_groups(
        net(),
        exclude=lambda name, p: name.startswith("3."),
        excluded_weight_decay=1e-3,
        adapted={"lars_trust_coefficient": 0.02, "lr": 2.0},
        excluded={"lr": 0.1},
    )
    adapted, excluded = groups
    assert len(adapted["params"]) == 4 and len(excluded["params"]) == 2
    assert adapted["lars_trust_coefficient"] == 0.02 and adapted["lr"] == 2.0
    assert excluded["weight_decay"] == 1e-3 and excluded["lr"] == 0.1


def test_frozen_and_shared_parameters_are_left_out_or_listed_once():
    model = net()
    model[0].weight.requires_grad_(False)
    shared = torch.nn.Sequential(model, model)
    adapted, excluded = lars.param_groups(shared)
    assert len(adapted["params"]) == 1 and len(excluded["params"]) == 4


def test_group_without_members_is_dropped():
    groups = lars.param_groups(torch.nn.Linear(3, 2, bias=False))
    assert len(groups) == 1 and "lars_exclude" not in groups[0]


def test_non_module_is_rejected():
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module, got list"):
        lars.param_groups([torch.nn.Parameter(torch.ones(2))])


def test_negative_weight_decay_is_rejected():
    with pytest.raises(ValueError, match=r"weight_decay must be a finite number >= 0, got -0\.1"):
        lars.param_groups(net(), weight_decay=-0.1)


def test_non_callable_exclude_is_rejected():
    with pytest.raises(TypeError, match=r"exclude must be callable\(name, param\) or None, got 1"):
        lars.param_groups(net(), exclude=1)


def test_extra_keys_may_not_set_params():
    with pytest.raises(ValueError, match=r"adapted must not set 'params'"):
        lars.param_groups(net(), adapted={"params": []})


def test_model_without_trainable_parameters_is_rejected():
    with pytest.raises(ValueError, match=r"model has no trainable parameters"):
        lars.param_groups(torch.nn.ReLU())


class _Tokens(torch.nn.Module):
    """A timm-style model naming its own no-decay tensors."""

    def __init__(self):
        super().__init__()
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 4, 8))
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, 8))
        self.proj = torch.nn.Linear(8, 8)
        self.blocks = torch.nn.ModuleList(torch.nn.Linear(8, 8) for _ in range(2))

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}


def names_of(model, group):
    ids = {id(p) for p in group["params"]}
    return [n for n, p in model.named_parameters() if id(p) in ids]


def test_model_no_weight_decay_names_are_excluded():
    model = _Tokens()
    adapted, excluded = lars.param_groups(model, weight_decay=0.05)
    assert names_of(model, adapted) == ["proj.weight", "blocks.0.weight", "blocks.1.weight"]
    assert names_of(model, excluded) == ["pos_embed", "cls_token", "proj.bias", "blocks.0.bias", "blocks.1.bias"]


def test_name_patterns_are_excluded_too():
    model = _Tokens()
    adapted, excluded = lars.param_groups(model, weight_decay=0.05, no_weight_decay=["blocks.*.weight"])
    assert names_of(model, adapted) == ["proj.weight"]
    assert "blocks.1.weight" in names_of(model, excluded)


def test_a_single_string_is_not_taken_for_a_list_of_patterns():
    with pytest.raises(TypeError, match=r"no_weight_decay must be an iterable of names or patterns, not a str"):
        lars.param_groups(_Tokens(), no_weight_decay="pos_embed")


def test_warns_when_no_tensor_is_left_to_adapt():
    with pytest.warns(UserWarning, match=r"no tensor is left to adapt: all 6 trainable tensors are excluded"):
        groups = lars.param_groups(net(), no_weight_decay=["*.weight"])
    assert len(groups) == 1 and groups[0]["lars_exclude"] is True
