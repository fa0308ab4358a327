"""objectives.lr_find: the range picked from synthetic loss curves, exactly; one real sweep."""

import math
import os

import pytest

from objectives.data import DEBIAN_FASHION_MNIST
from objectives.lr_find import RangeNotFound, lr_sweep, pick_range, smooth, smooth_centred, step_scale

DECADES = [10.0 ** (k - 6) for k in range(8)]  # 1e-6, 1e-5, ..., 10
L = math.log(10.0)


def test_smooth_is_the_debiased_moving_average():
    # beta 0.5: a = 0.5*0 + 0.5*4 = 2 -> 2/0.5 = 4; a = 1 + 1 = 2 -> 2/0.75; a = 1 + 0.5 = 1.5 -> 1.5/0.875
    assert smooth([4.0, 2.0, 1.0], 0.5) == pytest.approx([4.0, 8 / 3, 12 / 7])
    assert smooth([3.0, 1.0], 0.0) == [3.0, 1.0]  # beta 0: the raw curve
    # backwards over [4, 8/3, 12/7]: 12/7; (0.5 * 0.5 * 12/7 + 0.5 * 8/3) / 0.75; (0.5 * 1.7619 + 0.5 * 4) / 0.875
    assert smooth_centred([4.0, 2.0, 1.0], 0.5) == pytest.approx([3.292517, 2.349206, 12 / 7])


def test_range_runs_from_the_steepest_fall_to_where_the_loss_is_lowest():
    losses = [2.3, 2.2, 1.9, 1.1, 0.9, 0.8, 5.0, math.nan]
    # unsmoothed: 5.0 > 4 x 0.8 stops the curve at k=6; lowest at k=5; slopes over log(scale) (central):
    # k=0 -0.1/L (one-sided), k=1 -0.4/2L, k=2 -1.1/2L, k=3 -1.0/2L, k=4 -0.3/2L -> steepest k=2
    found = pick_range(DECADES, losses, smoothing=0.0)
    assert (found.steepest, found.lowest, found.diverged) == (2, 5, 6)
    assert (found.low, found.high) == (1e-4, 1e-1)  # not up to where it diverges (1.0)


def test_the_sweep_diverges_where_the_loss_climbs_back_above_its_start():
    losses = [2.3, 2.2, 1.9, 1.1, 0.9, 1.8, 2.4, 3.0]  # 2.4 > 2.3 at k=6, before any 4x stop
    found = pick_range(DECADES, losses, smoothing=0.0)
    assert (found.steepest, found.lowest, found.diverged) == (2, 4, 6)
    assert (found.low, found.high) == (1e-4, 1e-2)
    never = pick_range(DECADES[:5], losses[:5], smoothing=0.0)  # still falling at the last step
    assert (never.lowest, never.diverged, never.high) == (4, 4, 1e-2)


QUARTERS = [10.0 ** (k / 4 - 3) for k in range(9)]  # 1e-3 .. 1e-1, four steps a decade


def test_range_starts_a_decade_below_its_end_when_the_steepest_fall_is_closer():
    losses = [2.3, 2.3, 2.3, 2.3, 2.3, 2.3, 1.5, 1.0, 4.0]
    # lowest k=7 (10^-1.25); slopes (central, over log steps of L/4): k=5 -0.8, k=6 -1.3 -> steepest k=6
    # (10^-1.5), less than a decade below: the range starts at a tenth of 10^-1.25
    found = pick_range(QUARTERS, losses, smoothing=0.0)
    assert (found.steepest, found.lowest, found.diverged) == (6, 7, 8)
    assert found.low == pytest.approx(10**-2.25) and found.high == pytest.approx(10**-1.25)


def test_range_does_not_start_below_the_first_scale_swept():
    found = pick_range(QUARTERS[:4], [2.3, 1.0, 0.5, 4.0], smoothing=0.0)  # lowest k=2 (10^-2.5)
    assert (found.steepest, found.lowest) == (0, 2)
    assert found.low == 1e-3 and found.high == pytest.approx(10**-2.5)  # a tenth would be 10^-3.5


def test_range_on_a_smoothed_curve():
    scales = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    # stop: beta 0.5 forwards gives 4, 8/3, 12/7, 4/3, 4.774 (not above 4 x 4/3: no stop); the curve read
    # is exp of the log-losses smoothed forwards and backwards: 2.871, 2.015, 1.561, 1.667, 3.199 ->
    # lowest at k=2; slopes k=0 -0.856/L, k=1 -1.310/2L -> k=0; above the first value 2.871 at k=4
    logs = smooth_centred([math.log(x) for x in [4.0, 2.0, 1.0, 1.0, 8.0]], 0.5)
    assert [math.exp(x) for x in logs] == pytest.approx([2.870678, 2.015134, 1.560872, 1.666611, 3.198553], abs=1e-6)
    found = pick_range(scales, [4.0, 2.0, 1.0, 1.0, 8.0], smoothing=0.5)
    assert (found.low, found.high, found.steepest, found.lowest, found.diverged) == (1e-3, 1e-1, 0, 2, 4)


def test_a_loss_that_rises_from_the_first_step_is_diverged_at_every_lr():
    with pytest.raises(
        RangeNotFound,
        match=r"^the loss never fell before it diverged at lr 0\.001 "
        r"\(swept from 1e-06\): every lr tried is too large; try a smaller",
    ):
        pick_range(DECADES[:5], [2.3, 2.5, 3.0, 12.0, 30.0], smoothing=0.0)  # 12 > 4 x 2.3 at k=3
    with pytest.raises(RangeNotFound, match=r"diverged at lr\*lambda 1e-06 "):
        pick_range(DECADES[:2], [math.nan, 2.0], name="lr*lambda")  # NaN from the first step


def test_a_loss_that_never_falls_by_five_percent_is_not_a_range():
    flat = [2.30, 2.31, 2.29, 2.30, 2.20]  # lowest 2.20 > 0.95 x 2.30 = 2.185
    with pytest.raises(
        RangeNotFound,
        match=r"^the loss never fell by 5% over lr 1e-06\.\.0\.01 in 5 steps: the "
        r"objective does not learn at any lr tried; check the data and model",
    ):
        pick_range(DECADES[:5], flat, smoothing=0.0)
    assert pick_range(DECADES[:5], flat[:4] + [2.18], smoothing=0.0).lowest == 4  # 2.18 <= 2.185: it learns


def test_pick_range_input_errors():
    with pytest.raises(ValueError, match=r"same length, got 2 and 1"):
        pick_range([1.0, 2.0], [1.0])
    with pytest.raises(RangeNotFound, match=r"took no step"):
        pick_range([], [])


def test_step_scale_is_lr_or_lr_times_lambda():
    assert step_scale({"lr": 0.5, "lars": False, "trust_coefficient": 0.01}) == 0.5
    assert step_scale({"lr": 0.5, "lars": True, "trust_coefficient": 0.01}) == 0.005


def test_the_sweep_sets_the_lr_of_a_plain_optimizer_and_lambda_of_a_lars_one():
    import torch

    import lars
    from objectives.lr_find import _Sweeping

    w = torch.nn.Parameter(torch.ones(2, 2))
    plain = torch.optim.SGD([w], lr=0.5)
    sweep = _Sweeping(plain, [1e-3, 1e-2, 1e-1], lars=False)
    assert plain.param_groups[0]["lr"] == 1e-3
    sweep.step()
    assert plain.param_groups[0]["lr"] == 1e-2
    wrapped = lars.LARS(torch.optim.SGD([w], lr=0.5), trust_coefficient=1.0)
    sweep = _Sweeping(wrapped, [1e-3, 1e-2, 1e-1], lars=True)
    sweep.step()
    sweep.step()
    sweep.step()  # past the end: stays at the last scale
    group = wrapped.param_groups[0]
    assert group["lr"] == 0.5 and group["lars_trust_coefficient"] == 1e-1 / 0.5  # lr * lambda = the scale


def test_sweep_arguments_are_checked():
    with pytest.raises(ValueError, match=r"0 < low < high, got low=1\.0, high=0\.1"):
        lr_sweep({}, low=1.0, high=0.1)
    with pytest.raises(ValueError, match=r"steps must be >= 3, got 2"):
        lr_sweep({}, steps=2)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_MNIST), reason="needs apt-get install dataset-fashion-mnist")
def test_a_real_sweep_on_fashion_mnist_finds_a_range_and_stops_where_it_diverges():
    """VGG-16 at width 0.125 on 300 images, batch 32 (9 steps per epoch), LARS on SGD, lr*lambda 1e-5 .. 10."""
    config = {
        "dataset": "fashion_mnist",
        "n_train": 300,
        "val_size": 100,
        "width": 0.125,
        "batch_size": 32,
        "device": "cpu",
        "lars": True,
        "trust_coefficient": 0.01,
    }
    sweep = lr_sweep(config, low=1e-5, high=10.0, steps=80)
    assert sweep.scales[0] == 1e-5 and sweep.scales[1] == pytest.approx(1e-5 * 1e6 ** (1 / 79))
    assert len(sweep.losses) % 10 == 0 and max(sweep.losses) > 10 * sweep.losses[0]  # read every 10; diverged
    assert sweep.trial_epochs == len(sweep.losses) / 9
    assert sweep.losses[0] == pytest.approx(math.log(10), abs=0.1)  # a 10-class guess at first
    found = pick_range(sweep.scales, sweep.losses)
    assert 1e-3 < found.low < found.high < 10.0  # LARS's relative step: a decade up to where the loss is lowest
    assert found.high == sweep.scales[found.lowest] < sweep.scales[found.diverged]
    assert found.low == min(sweep.scales[found.steepest], found.high / 10)


def test_a_loss_that_diverges_late_without_falling_says_the_sweep_is_too_short():
    scales = [10.0 ** (-5 + k / 4) for k in range(13)]  # 1e-5 .. 1e-2
    losses = [2.3] * 12 + [10.0]  # flat, then 10 > 4 x 2.3 at k=12 (not within the first 10 steps)
    with pytest.raises(
        RangeNotFound,
        match=r"^the loss never fell by 5% before it diverged at lr 0\.01 after 12 steps "
        r"\(swept from 1e-05\): it learns too slowly for a sweep this short",
    ):
        pick_range(scales, losses, smoothing=0.0)
