"""objectives.train: the training loop on a synthetic problem, and once on the real Fashion-MNIST."""

import importlib
import json
import math
import os

import pytest
import torch
from objectives_fixtures import write_cifar10

from objectives import ConfigError
from objectives.data import DEBIAN_FASHION_MNIST
from objectives.models import build_model
from objectives.train import Result, evaluate, train

# A tiny VGG-11 (4..32 channels) on 256 images of a separable 4-class problem (see
# objectives_fixtures.synthetic_splits): 8 steps per epoch, seconds on one CPU core.
TINY = {
    "model": "vgg11",
    "width": 0.0625,
    "batch_size": 32,
    "lr": 0.05,
    "weight_decay": 0.0,
    "schedule": "constant",
    "progress": False,
    "device": "cpu",
}


def test_tiny_config_learns_the_synthetic_problem_far_above_chance(synthetic):
    result = train({**TINY, "epochs": 3, "evaluate_test": True}, data=synthetic())
    assert isinstance(result, Result)
    assert result.val_accuracy >= 0.9 and result.test_accuracy >= 0.9  # chance is 0.25
    assert result.epochs_completed == 3 and not result.diverged and result.diverged_epoch is None
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.images_per_s > 0 and result.wall_time_s > 0 and result.device.startswith("cpu")
    assert result.config["epochs"] == 3 and result.config["dataset"] == "cifar10"  # validated, defaults filled
    assert set(result.versions) == {"python", "torch", "torchvision"}
    as_dict = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert as_dict["val_accuracy"] == result.val_accuracy and len(as_dict["history"]) == 3


def test_report_is_called_once_per_epoch_with_the_metrics(synthetic):
    calls = []
    result = train(
        {**TINY, "epochs": 2, "schedule": "cosine"}, report=lambda e, m: calls.append((e, m)), data=synthetic()
    )
    assert [e for e, _ in calls] == [1, 2]
    for epoch, metrics in calls:
        assert set(metrics) == {"val_accuracy", "val_loss", "train_loss", "lr", "epoch_time_s", "images_per_s"}
        assert all(isinstance(v, float) for v in metrics.values())
        assert 0.0 <= metrics["val_accuracy"] <= 1.0
        assert result.history[epoch - 1] == {"epoch": epoch, **metrics}
    # cosine over 16 steps from 0.05: after 8 steps 0.05 * (1 + cos(pi/2)) / 2, after 16 steps 0
    assert calls[0][1]["lr"] == pytest.approx(0.025) and calls[1][1]["lr"] == pytest.approx(0.0, abs=1e-15)
    assert calls[-1][1]["val_accuracy"] == result.val_accuracy
    assert calls[-1][1]["images_per_s"] == pytest.approx(result.images_per_s)  # both count all epochs


class Pruned(Exception):
    pass


def test_an_exception_from_report_stops_training_and_propagates_unchanged(synthetic):
    signal = Pruned("prune at epoch 1")
    epochs_seen = []

    def report(epoch, metrics):
        epochs_seen.append(epoch)
        raise signal

    with pytest.raises(Pruned) as info:
        train({**TINY, "epochs": 5}, report=report, data=synthetic())
    assert info.value is signal and epochs_seen == [1]


def test_lr_1e6_is_reported_as_diverged_not_raised(synthetic):
    calls = []
    # with the default weight decay 5e-4 each step multiplies the weights by about 1 - 1e6 * 5e-4
    result = train(
        {**TINY, "epochs": 3, "lr": 1e6, "weight_decay": 5e-4, "evaluate_test": True},
        report=lambda e, m: calls.append(e),
        data=synthetic(),
    )
    assert result.diverged is True and result.diverged_epoch == 1
    assert result.val_accuracy is None and result.val_loss is None and result.test_accuracy is None
    assert result.history == [] and result.epochs_completed == 0 and calls == []
    json.dumps(result.to_dict(), allow_nan=False)


def test_same_seed_repeats_a_cpu_run_and_leaves_the_global_rng_alone(synthetic):
    data = synthetic(n_train=64, n_val=32)
    state = torch.random.get_rng_state()
    a = train({**TINY, "epochs": 1, "seed": 7}, data=data)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = train({**TINY, "epochs": 1, "seed": 7}, data=data)
    c = train({**TINY, "epochs": 1, "seed": 8}, data=data)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"]
    assert a.history[0]["val_loss"] == b.history[0]["val_loss"]
    assert c.history[0]["train_loss"] != a.history[0]["train_loss"]


def test_lars_changes_the_run(synthetic):
    data = synthetic(n_train=64, n_val=32)
    plain = train({**TINY, "epochs": 1}, data=data)
    wrapped = train({**TINY, "epochs": 1, "lars": True, "trust_coefficient": 0.02, "lr": 1.0}, data=data)
    assert wrapped.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert wrapped.config["lars"] is True


def test_progress_false_is_silent_and_true_draws_bars(synthetic, capfd):
    data = synthetic(n_train=64, n_val=32)
    train({**TINY, "epochs": 1}, data=data)
    assert capfd.readouterr().err == ""
    train({**TINY, "epochs": 1, "progress": True}, data=data)
    err = capfd.readouterr().err
    assert "epochs" in err and "epoch 1" in err


def test_run_level_config_errors(synthetic):
    data = synthetic(n_train=64, n_val=32)
    with pytest.raises(ConfigError, match=r"'batch_size' must be <= the 64 training images, got 128"):
        train({**TINY, "batch_size": 128}, data=data)
    no_test = synthetic(n_train=64, n_val=32)
    no_test = type(no_test)(**{**no_test.__dict__, "test_images": None, "test_labels": None})
    with pytest.raises(ConfigError, match=r"'evaluate_test' is true but the given data has no test split"):
        train({**TINY, "evaluate_test": True}, data=no_test)
    with pytest.raises(ConfigError, match=r"config key 'lr' must be a number > 0, got -1.0"):
        train({**TINY, "lr": -1.0}, data=data)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda_is_a_config_error(synthetic):
    with pytest.raises(ConfigError, match=r"config key 'device' is 'cuda' but CUDA is not available"):
        train({**TINY, "device": "cuda"}, data=synthetic(n_train=64, n_val=32))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_MNIST), reason="needs apt-get install dataset-fashion-mnist")
def test_slim_vgg16_learns_real_fashion_mnist_in_one_epoch():
    """The quickstart shape: VGG-16 at width 0.25 on 2,000 Fashion-MNIST images, one epoch."""
    result = train(
        {
            "dataset": "fashion_mnist",
            "n_train": 2000,
            "val_size": 1000,
            "model": "vgg16",
            "width": 0.25,
            "epochs": 1,
            "batch_size": 64,
            "lr": 0.05,
            "progress": False,
            "device": "cpu",
        }
    )
    assert result.val_accuracy > 0.45  # chance is 0.10
    assert result.history[0]["train_loss"] < 2.302  # below ln(10), the loss of a uniform guess


def test_a_non_finite_loss_stops_the_epoch_at_the_next_check(synthetic, monkeypatch):
    module = importlib.import_module("objectives.train")  # the module, not the function of that name
    calls = []
    augment = module.augment
    monkeypatch.setattr(module, "augment", lambda *a, **k: calls.append(1) or augment(*a, **k))
    monkeypatch.setattr(module, "CHECK_EVERY", 2)
    result = train({**TINY, "batch_size": 16, "epochs": 2, "lr": 1e6, "weight_decay": 5e-4}, data=synthetic())
    assert result.diverged and result.diverged_epoch == 1
    assert len(calls) < 16 and len(calls) % 2 == 0  # 16 steps per epoch; stopped at a check


class ConstantLogits(torch.nn.Module):
    """Logits (0, ln 3) for every image: probabilities (1/4, 3/4), prediction class 1."""

    def forward(self, x):
        return torch.tensor([0.0, math.log(3.0)]).expand(x.shape[0], 2)


def test_evaluate_gives_exact_accuracy_and_mean_cross_entropy_over_batches():
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    labels = torch.tensor([1, 1, 0, 1])
    accuracy, loss = evaluate(ConstantLogits(), images, labels, (0.0,), (1.0,), batch_size=3)
    assert accuracy == 0.75
    assert loss == pytest.approx((3 * -math.log(0.75) - math.log(0.25)) / 4, rel=1e-6)  # 0.562335...


def test_train_reads_cifar10_files_from_data_dir_end_to_end(tmp_path, cifar_md5_relaxed):
    write_cifar10(tmp_path, per_batch=20, n_test=16)  # 100 training images of noise, 3 channels
    calls = []
    result = train(
        {
            **TINY,
            "dataset": "cifar10",
            "data_dir": str(tmp_path),
            "val_size": 20,
            "n_train": 64,
            "epochs": 1,
            "evaluate_test": True,
        },
        report=lambda e, m: calls.append(e),
    )
    assert calls == [1] and result.epochs_completed == 1
    assert 0.0 <= result.val_accuracy <= 1.0 and result.test_accuracy in {k / 16 for k in range(17)}
    assert result.val_accuracy in {k / 20 for k in range(21)}


def test_train_reusing_data_loads_once_and_trains_exactly_as_train(tmp_path, cifar_md5_relaxed, monkeypatch):
    import importlib

    write_cifar10(tmp_path, per_batch=20, n_test=16)
    module = importlib.import_module("objectives.train")
    loads = []
    real_load = module.load_splits
    monkeypatch.setattr(module, "load_splits", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    config = {**TINY, "dataset": "cifar10", "data_dir": str(tmp_path), "val_size": 20, "n_train": 64, "epochs": 1}
    reusing = module.train_reusing_data()
    first, second = reusing(config), reusing({**config, "lr": config.get("lr", 0.1) / 2})
    assert loads == [("cifar10",)]  # the second config trains on the data the first loaded
    plain = train(config)
    assert (first.val_accuracy, first.val_loss, first.history[0]["train_loss"]) == (
        plain.val_accuracy,
        plain.val_loss,
        plain.history[0]["train_loss"],
    )
    assert second.config["lr"] != first.config["lr"]
    reusing({**config, "val_size": 30})  # other data: loaded again
    assert len(loads) == 3


# --- the trust-ratio summary of LARS runs ------------------------------------------------------------


def _adapted_names(config):
    """Names of the tensors LARS adapts in the TINY model: those of dim >= 2 (lars.param_groups)."""
    model = build_model(config["model"], in_channels=1, num_classes=4, width=config["width"])
    return {name for name, p in model.named_parameters() if p.dim() >= 2}


def _stand_in_trust_ratios(self):
    """A stand-in for ``lars.LARS.trust_ratios`` with known values: step k (from 1) gives every
    adapted tensor the ratio k (the real method returns the ratios of the latest step)."""
    self._stand_in_steps = getattr(self, "_stand_in_steps", 0) + 1
    return [
        (p, torch.tensor(float(self._stand_in_steps)))
        for g in self.param_groups
        if not g["lars_exclude"]
        for p in g["params"]
    ]


def test_lars_history_summarises_each_epochs_trust_ratios_as_min_median_max(synthetic, monkeypatch):
    import lars

    monkeypatch.setattr(lars.LARS, "trust_ratios", _stand_in_trust_ratios, raising=False)
    config = {**TINY, "epochs": 2, "lars": True, "trust_coefficient": 0.02, "lr": 1.0}
    calls = []
    result = train(config, report=lambda e, m: calls.append(m), data=synthetic())  # 8 steps per epoch
    first, second = (h["trust_ratio"] for h in result.history)
    assert set(first) == _adapted_names(config)
    assert all(v == [1.0, 4.5, 8.0] for v in first.values())  # steps 1..8: median of an even count interpolates
    assert all(v == [9.0, 12.5, 16.0] for v in second.values())  # steps 9..16: a new summary per epoch
    assert [m["trust_ratio"] for m in calls] == [first, second]  # report sees it too
    calls[0]["trust_ratio"].clear()
    assert result.history[0]["trust_ratio"] == first  # a copy: what report does to it stays there


def test_plain_runs_have_no_trust_ratio(synthetic):
    result = train({**TINY, "epochs": 1}, data=synthetic(n_train=64, n_val=32))
    assert "trust_ratio" not in result.history[0]


def test_lars_history_carries_the_real_trust_ratios(synthetic):
    config = {**TINY, "epochs": 1, "lars": True, "trust_coefficient": 0.02, "lr": 1.0}
    result = train(config, data=synthetic(n_train=64, n_val=32))
    summary = result.history[0]["trust_ratio"]
    assert set(summary) == _adapted_names(config)
    for low, median, high in summary.values():
        assert 0 < low <= median <= high and math.isfinite(high)
