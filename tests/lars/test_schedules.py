"""lars.schedules: literal lr values per kind, resume, the wrapper, and bad arguments."""

import math

import pytest
import torch

import lars
from lars.schedules import SCHEDULES, warmup_schedule

TOTAL, WARMUP = 10, 2


def wrapped(lrs=(1.0,)):
    params = [torch.nn.Parameter(torch.ones(2, 2)) for _ in lrs]
    base = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=1.0)
    return lars.LARS(base)


def lr_trace(kind, steps=TOTAL, lrs=(1.0,), **params):
    opt = wrapped(lrs)
    sched = warmup_schedule(opt, kind, total_steps=TOTAL, warmup_steps=WARMUP, **params)
    trace = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        trace.append(opt.param_groups[0]["lr"])
    return trace


# (kind, params, {step t: lr}); warm-up: t=0 -> 1/2, t=1 (end of warm-up) -> 1
CASES = [
    ("constant", {}, {0: 0.5, 1: 1.0, 6: 1.0, 10: 1.0}),
    # step and multistep count from step 0: decays at t = 3, 6, 9 (the first one shows at t = 3)
    ("step", {"step_size": 3, "gamma": 0.5}, {0: 0.5, 1: 1.0, 2: 1.0, 3: 0.5, 5: 0.5, 6: 0.25, 9: 0.125, 10: 0.125}),
    ("multistep", {"milestones": [4, 8], "gamma": 0.1}, {0: 0.5, 1: 1.0, 3: 1.0, 4: 0.1, 6: 0.1, 10: 0.01}),
    ("exponential", {"gamma": 0.5}, {0: 0.5, 1: 1.0, 2: 1.0, 6: 0.0625, 10: 0.00390625}),
    (
        "cosine",
        {"final_lr_ratio": 0.1},
        {0: 0.5, 1: 1.0, 2: 1.0, 4: 0.1 + 0.45 * (1 + math.cos(math.pi / 4)), 6: 0.55, 10: 0.1},
    ),
    ("polynomial", {"power": 2.0}, {0: 0.5, 1: 1.0, 2: 1.0, 4: 0.5625, 6: 0.25, 10: 0.0}),
]


def test_schedule_names():
    assert SCHEDULES == ("constant", "step", "multistep", "exponential", "cosine", "polynomial")
    assert {case[0] for case in CASES} == set(SCHEDULES)


@pytest.mark.parametrize("kind, params, expected", CASES, ids=[c[0] for c in CASES])
def test_lr_at_literal_steps(kind, params, expected):
    trace = lr_trace(kind, **params)
    for step, lr in expected.items():
        assert trace[step] == pytest.approx(lr, rel=1e-12, abs=1e-15), f"step {step}"


def test_schedule_scales_each_group_from_its_own_lr():
    opt = wrapped((1.0, 0.1))
    sched = warmup_schedule(opt, "polynomial", total_steps=TOTAL, warmup_steps=WARMUP)
    for _ in range(6):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.25, 0.025], rel=1e-12)
    assert [g["lr"] for g in opt.optimizer.param_groups] == pytest.approx([0.25, 0.025], rel=1e-12)


def test_beyond_total_steps_cosine_stays_at_its_floor():
    trace = lr_trace("cosine", steps=14, final_lr_ratio=0.2)
    assert trace[10:] == pytest.approx([0.2] * 5, rel=1e-12)


def test_no_warmup_starts_at_full_lr():
    opt = wrapped()
    warmup_schedule(opt, "cosine", total_steps=4)
    assert opt.param_groups[0]["lr"] == 1.0


@pytest.mark.parametrize("kind, params", [(c[0], c[1]) for c in CASES], ids=[c[0] for c in CASES])
def test_state_dict_resume_continues_the_same_lrs(kind, params):
    full = lr_trace(kind, **params)
    opt = wrapped()
    sched = warmup_schedule(opt, kind, total_steps=TOTAL, warmup_steps=WARMUP, **params)
    for _ in range(4):
        opt.step()
        sched.step()
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()

    opt2 = wrapped()
    sched2 = warmup_schedule(opt2, "constant", total_steps=99)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    resumed = []
    for _ in range(6):
        opt2.step()
        sched2.step()
        resumed.append(opt2.param_groups[0]["lr"])
    assert resumed == pytest.approx(full[5:], rel=1e-12, abs=1e-15)


def test_schedule_is_a_torch_lr_scheduler():
    sched = warmup_schedule(wrapped(), "step", total_steps=TOTAL, step_size=2)
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    assert sched.kind == "step"


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError, match=r"kind must be one of constant, step, .*got 'linear'"):
        warmup_schedule(wrapped(), "linear", total_steps=TOTAL)


def test_missing_parameter_is_rejected():
    with pytest.raises(ValueError, match=r"schedule 'step' needs the parameter 'step_size'"):
        warmup_schedule(wrapped(), "step", total_steps=TOTAL)


def test_unknown_parameter_is_rejected():
    with pytest.raises(ValueError, match=r"schedule 'cosine' got unknown parameter 'gamma'"):
        warmup_schedule(wrapped(), "cosine", total_steps=TOTAL, gamma=0.5)


def test_warmup_longer_than_total_is_rejected():
    with pytest.raises(ValueError, match=r"warmup_steps must be an int in \[0, total_steps=10\], got 11"):
        warmup_schedule(wrapped(), "constant", total_steps=TOTAL, warmup_steps=11)


def test_non_positive_total_is_rejected():
    with pytest.raises(ValueError, match=r"total_steps must be an int >= 1, got 0"):
        warmup_schedule(wrapped(), "constant", total_steps=0)


def test_non_positive_gamma_is_rejected():
    with pytest.raises(ValueError, match=r"gamma must be a number in \(0, 1\], got 0"):
        warmup_schedule(wrapped(), "exponential", total_steps=TOTAL, gamma=0)


def test_gamma_above_one_is_rejected():
    with pytest.raises(ValueError, match=r"gamma must be a number in \(0, 1\], got 1\.5"):
        warmup_schedule(wrapped(), "step", total_steps=TOTAL, step_size=2, gamma=1.5)


def test_step_is_multistep_at_multiples_of_step_size_with_or_without_warmup():
    for warmup in (0, 2, 5):
        opt_a, opt_b = wrapped(), wrapped()
        a = warmup_schedule(opt_a, "step", total_steps=TOTAL, warmup_steps=warmup, step_size=3, gamma=0.5)
        b = warmup_schedule(opt_b, "multistep", total_steps=TOTAL, warmup_steps=warmup, milestones=[3, 6, 9], gamma=0.5)
        for _ in range(TOTAL):
            assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"]
            opt_a.step(), opt_b.step(), a.step(), b.step()


def test_a_decay_inside_the_warmup_shows_when_it_ends():
    trace = lr_trace("multistep", milestones=[3], gamma=0.1)  # warm-up 2 steps: the decay shows at t = 3
    assert trace[2:5] == pytest.approx([1.0, 0.1, 0.1])
    # warm-up 5 steps, decay at step 3: t = 3, 4 are still warm-up (4/5, 5/5), t = 5 has the decay
    opt = wrapped()
    sched = warmup_schedule(opt, "multistep", total_steps=TOTAL, warmup_steps=5, milestones=[3], gamma=0.1)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 0.1, 0.1])


def test_repeated_milestones_are_rejected():
    with pytest.raises(
        ValueError,
        match=r"milestones must be a strictly increasing list of ints >= 0 \(steps\), "
        r"got \[4, 4\]",
    ):
        warmup_schedule(wrapped(), "multistep", total_steps=TOTAL, milestones=[4, 4])


def test_params_table_names_every_kind_and_its_defaults():
    from lars.schedules import PARAMS, REQUIRED

    assert {k: {n: p.default for n, p in v.items()} for k, v in PARAMS.items()} == {
        "constant": {},
        "step": {"step_size": REQUIRED, "gamma": 0.1},
        "multistep": {"milestones": REQUIRED, "gamma": 0.1},
        "exponential": {"gamma": REQUIRED},
        "cosine": {"final_lr_ratio": 0.0},
        "polynomial": {"power": 2.0, "final_lr_ratio": 0.0},
    }


def test_unsorted_milestones_are_rejected():
    with pytest.raises(ValueError, match=r"milestones must be a strictly increasing list of ints"):
        warmup_schedule(wrapped(), "multistep", total_steps=TOTAL, milestones=[5, 2])


def test_final_lr_ratio_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError, match=r"final_lr_ratio must be a number in \[0, 1\], got 1\.5"):
        warmup_schedule(wrapped(), "polynomial", total_steps=TOTAL, final_lr_ratio=1.5)


def test_non_optimizer_is_rejected():
    with pytest.raises(TypeError, match=r"opt must be a torch\.optim\.Optimizer, got dict"):
        warmup_schedule({}, "constant", total_steps=TOTAL)
