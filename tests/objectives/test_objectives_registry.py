"""objectives.registry: its facts agree with what torch and lars do, and every module reads them."""

import subprocess
import sys

import pytest
import torch

import lars
from objectives import registry
from objectives.config import DEFAULT_CONFIG, RULES, validate_config
from objectives.optim import optimizer_class
from objectives.registry import DATASETS, LARS_MODES, OPTIMIZERS, REQUIRED, SCHEDULES


def _lars_over(info, weight_decay=0.0, **kwargs):
    w = torch.nn.Parameter(torch.zeros(2, 2))
    return lars.LARS(optimizer_class(info.name)([{"params": [w], "weight_decay": weight_decay}], lr=0.1), **kwargs)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_default_lars_mode_is_the_one_lars_picks(name):
    info = OPTIMIZERS[name]
    assert info.name == name and info.lars_mode in LARS_MODES
    assert _lars_over(info).param_groups[0]["lars_mode"] == info.lars_mode


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_decay_kind_is_the_one_torch_states(name):
    info = OPTIMIZERS[name]
    assert info.decay in ("l2", "decoupled")
    w = torch.nn.Parameter(torch.zeros(2, 2))
    assert bool(optimizer_class(info.name)([w], lr=0.1).defaults.get("decoupled_weight_decay", False)) == (
        info.decay == "decoupled"
    )
    _lars_over(info, weight_decay=1e-4, mode="gradient")  # lars takes either kind in either mode


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_parameters_are_keyword_arguments_of_the_class_and_config_keys(name):
    info = OPTIMIZERS[name]
    w = torch.nn.Parameter(torch.zeros(2, 2))
    built = optimizer_class(info.name)([w], lr=info.lr, **info.params)
    for key, default in info.params.items():
        assert key in DEFAULT_CONFIG and built.param_groups[0][key] == default


def test_config_choices_come_from_the_registry():
    assert RULES["optimizer"].values == tuple(OPTIMIZERS)
    assert RULES["schedule"].values == tuple(SCHEDULES)
    assert RULES["dataset"].values == tuple(DATASETS)
    assert RULES["lars_mode"].values == tuple(LARS_MODES)


# Values around every bound of the unit-free rules, and what is not a finite number.
_PROBES = (-1.0, 0, 0.0, 1e-9, 0.5, 1, 1.0, 1.5, 2.0, 1e9, float("nan"), float("inf"), True, "0.5", None)


def test_schedules_are_lars_schedules_with_the_same_unit_free_rules():
    """The registry states the unit-free rules without importing lars (which loads torch): they must read the same."""
    assert tuple(SCHEDULES) == lars.schedules.SCHEDULES
    for kind, info in SCHEDULES.items():
        assert set(info.params) == set(lars.schedules.PARAMS[kind])
        for name, param in info.params.items():
            low = lars.schedules.PARAMS[kind][name]
            required = low.default is lars.schedules.REQUIRED
            assert (param.default is REQUIRED) == required or kind == "exponential"
            if param.unit == "":
                assert param.rule.text == low.rule and (required or param.default == low.default)
                assert [param.rule.check(v) for v in _PROBES] == [low.check(v) for v in _PROBES], (kind, name)


def test_registry_and_config_import_without_torch_or_lars():
    code = "import sys, objectives.config, objectives.registry; print(sorted({'torch', 'lars'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_schedule_units():
    units = {k: {n: p.unit for n, p in v.params.items()} for k, v in SCHEDULES.items()}
    assert units == {
        "constant": {},
        "step": {"step_size": "epochs", "gamma": ""},
        "multistep": {"milestones": "epochs", "gamma": ""},
        "exponential": {"gamma": "per epoch"},
        "cosine": {"final_lr_ratio": ""},
        "polynomial": {"power": "", "final_lr_ratio": ""},
    }
    assert SCHEDULES["step"].required == ("step_size",) and SCHEDULES["step"].defaults == {"gamma": 0.1}


def test_gamma_rule_is_the_same_in_lars_and_in_configs():
    for gamma, ok in ((0.5, True), (1.0, True), (1.5, False), (0.0, False)):
        config = {"schedule": "exponential", "schedule_params": {"gamma": gamma}}
        if ok:
            validate_config(config)
            lars.schedules.check_schedule("exponential", total_steps=2, gamma=gamma)
        else:
            with pytest.raises(ValueError, match=r"gamma' must be a number in \(0, 1\]"):
                validate_config(config)
            with pytest.raises(ValueError, match=r"gamma must be a number in \(0, 1\]"):
                lars.schedules.check_schedule("exponential", total_steps=2, gamma=gamma)


def test_is_number_rejects_bools_nan_and_infinity():
    assert registry.is_number(1) and registry.is_number(0.5)
    assert not any(registry.is_number(v) for v in (True, float("nan"), float("inf"), "1", None))


def test_every_required_schedule_parameter_has_a_search_default_that_validates():
    for epochs in (1, 3, 100):
        for kind, info in SCHEDULES.items():
            params = {name: p.default_for(epochs) for name, p in info.params.items()}
            assert REQUIRED not in params.values(), (kind, params)
            validate_config({"epochs": epochs, "schedule": kind, "schedule_params": params})
    assert SCHEDULES["multistep"].params["milestones"].default_for(4) == [2, 3]
    assert SCHEDULES["step"].params["step_size"].default_for(100) == 33.333
    assert SCHEDULES["exponential"].params["gamma"].default_for(2) == pytest.approx(0.1)
