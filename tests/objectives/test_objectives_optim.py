"""objectives.optim: the config's optimizer and schedule, built with lars."""

import math

import pytest
import torch

import lars
from objectives.config import validate_config
from objectives.models import build_model
from objectives.optim import build_optimizer, schedule_in_steps
from objectives.registry import OPTIMIZERS

BASES = {
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
}


def test_every_registered_optimizer_is_tested_here():
    assert set(OPTIMIZERS) == set(BASES)


def test_epoch_units_become_steps():
    assert schedule_in_steps("step", {"step_size": 2.5, "gamma": 0.5}, 10) == {"step_size": 25, "gamma": 0.5}
    assert schedule_in_steps("multistep", {"milestones": [1.0, 2.5], "gamma": 0.1}, 10) == {
        "milestones": [10, 25],
        "gamma": 0.1,
    }
    assert schedule_in_steps("exponential", {"gamma": 0.5}, 4) == {"gamma": 0.5**0.25}
    assert schedule_in_steps("cosine", {"final_lr_ratio": 0.1}, 7) == {"final_lr_ratio": 0.1}
    assert schedule_in_steps("step", {"step_size": 0.01, "gamma": 0.5}, 10) == {"step_size": 1, "gamma": 0.5}


def test_milestones_on_one_step_stay_repeated_for_lars_to_reject():
    assert schedule_in_steps("multistep", {"milestones": [1.0, 1.04]}, 10) == {"milestones": [10, 10]}
    with pytest.raises(ValueError, match=r"milestones must be a strictly increasing list"):
        lars.schedules.check_schedule("multistep", total_steps=20, milestones=[10, 10])


def test_step_and_multistep_count_from_the_start_of_training_in_epochs():
    # 4 steps per epoch, 1 epoch of warm-up: step_size 1.5 epochs = 6 steps, decays at steps 6 and 12,
    # the same as milestones [1.5, 3] epochs; warm-up moves neither
    model = build_model("vgg11", in_channels=1, width=0.0625)
    traces = []
    for schedule, params in (("step", {"step_size": 1.5, "gamma": 0.5}), ("multistep", {"milestones": [1.5, 3]})):
        config = validate_config(
            {
                "lr": 1.0,
                "epochs": 4,
                "warmup_epochs": 1,
                "schedule": schedule,
                "schedule_params": {"gamma": 0.5, **params},
            }
        )
        opt, sched = build_optimizer(model, config, steps_per_epoch=4)
        lrs = []
        for _ in range(16):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        traces.append(lrs)
    assert (
        traces[0]
        == traces[1]
        == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25])
    )


@pytest.mark.parametrize("name", list(BASES))
@pytest.mark.parametrize("use_lars", [False, True], ids=["plain", "lars"])
def test_each_optimizer_is_built_with_lars_param_groups(name, use_lars):
    model = build_model("vgg11", in_channels=1, width=0.0625)
    config = validate_config(
        {
            "optimizer": name,
            "lars": use_lars,
            "lr": 0.2,
            "weight_decay": 1e-3,
            "trust_coefficient": 0.02,
            "epochs": 2,
            "schedule": "constant",
        }
    )
    opt, sched = build_optimizer(model, config, steps_per_epoch=5)
    base = opt.optimizer if use_lars else opt
    assert isinstance(base, BASES[name]) and isinstance(opt, lars.LARS) is use_lars
    decays = sorted(g["weight_decay"] for g in opt.param_groups)
    assert decays == [0.0, 1e-3]  # biases and BN parameters: no decay
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]
    n_vectors = sum(p.numel() for p in model.parameters() if p.dim() < 2)
    excluded = next(g for g in opt.param_groups if g["weight_decay"] == 0.0)
    assert sum(p.numel() for p in excluded["params"]) == n_vectors
    for key in OPTIMIZERS[name].params:  # the config keys the registry says the class takes
        assert base.param_groups[0][key] == config[key]
    if name == "sgd":
        assert base.param_groups[0]["momentum"] == 0.9
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)


@pytest.mark.parametrize("form", ["torch", "paper"])
def test_momentum_form_reaches_every_adapted_group(form):
    model = build_model("vgg11", in_channels=1, width=0.0625)
    config = validate_config({"lars": True, "epochs": 2, "lars_momentum_form": form})
    opt, _ = build_optimizer(model, config, steps_per_epoch=5)
    assert {g["lars_momentum_form"] for g in opt.param_groups} == {form}


def test_schedule_runs_in_steps_with_warmup_in_epochs():
    model = build_model("vgg11", in_channels=1, width=0.0625)
    config = validate_config({"lr": 0.4, "epochs": 2, "warmup_epochs": 0.5, "schedule": "cosine"})
    opt, sched = build_optimizer(model, config, steps_per_epoch=8)  # 16 steps, 4 of warm-up
    lrs = []
    for _ in range(16):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    # cosine over the 12 steps after warm-up: at step 10, p = 6/12, lr = 0.4 * (1 + cos(pi/2)) / 2
    assert lrs[10] == pytest.approx(0.2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_exponential_gamma_per_epoch_holds_after_each_epoch():
    model = build_model("vgg11", in_channels=1, width=0.0625)
    config = validate_config({"lr": 1.0, "epochs": 3, "schedule": "exponential", "schedule_params": {"gamma": 0.5}})
    opt, sched = build_optimizer(model, config, steps_per_epoch=4)
    for _ in range(8):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25, rel=1e-12)
    assert math.isclose(0.5**0.25, schedule_in_steps("exponential", {"gamma": 0.5}, 4)["gamma"])
