"""objectives.train on a CUDA device: bf16 autocast, channels_last, torch.compile, real data.

Run on the project's GPU machine; skipped where there is no CUDA.
"""

import importlib
import os

import pytest
import torch

from objectives import ConfigError
from objectives.data import DEBIAN_FASHION_MNIST
from objectives.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
needs_fashion = pytest.mark.skipif(
    not os.path.isdir(DEBIAN_FASHION_MNIST), reason="needs apt-get install dataset-fashion-mnist"
)

TINY = {
    "model": "vgg11",
    "width": 0.0625,
    "batch_size": 32,
    "lr": 0.05,
    "weight_decay": 0.0,
    "schedule": "constant",
    "progress": False,
}


@pytest.fixture
def first_conv_seen(monkeypatch):
    """What the model's first convolution receives and returns during training."""
    module = importlib.import_module("objectives.train")
    build = module.build_model
    seen = []

    def spying_build(*args, **kwargs):
        model = build(*args, **kwargs)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(
            lambda m, inputs, output: seen.append(
                {
                    "channels_last": inputs[0].is_contiguous(memory_format=torch.channels_last),
                    "out_dtype": output.dtype,
                    "device": output.device.type,
                    "training": m.training,
                }
            )
        )
        return model

    monkeypatch.setattr(module, "build_model", spying_build)
    return seen


def test_auto_on_cuda_trains_in_bf16_autocast_with_channels_last(synthetic, first_conv_seen):
    result = train({**TINY, "epochs": 3, "device": "auto"}, data=synthetic())
    assert result.device.startswith("cuda:0 (")  # the GPU's name follows
    assert result.val_accuracy >= 0.9  # chance is 0.25
    assert first_conv_seen and all(s["device"] == "cuda" for s in first_conv_seen)
    assert all(s["out_dtype"] == torch.bfloat16 for s in first_conv_seen)
    assert all(s["channels_last"] for s in first_conv_seen if s["training"])


def test_fp32_precision_on_cuda_turns_autocast_off(synthetic, first_conv_seen):
    result = train({**TINY, "epochs": 1, "device": "cuda", "precision": "fp32"}, data=synthetic())
    assert result.val_accuracy is not None
    assert all(s["out_dtype"] == torch.float32 for s in first_conv_seen)


def test_lars_on_cuda_learns_the_synthetic_problem(synthetic):
    result = train(
        {**TINY, "epochs": 3, "device": "cuda", "optimizer": "sgd", "lars": True, "lr": 0.5, "trust_coefficient": 0.02},
        data=synthetic(),
    )
    assert result.val_accuracy >= 0.9


def test_compiled_model_trains_on_cuda(synthetic):
    result = train({**TINY, "epochs": 2, "device": "cuda", "compile": True}, data=synthetic())
    assert result.val_accuracy >= 0.8 and not result.diverged


def test_a_gpu_index_beyond_the_machine_is_a_config_error(synthetic):
    n = torch.cuda.device_count()
    with pytest.raises(ConfigError, match=rf"must name one of the {n} CUDA devices, got 'cuda:{n}'"):
        train({**TINY, "device": f"cuda:{n}"}, data=synthetic(n_train=64, n_val=32))


@pytest.mark.slow
@needs_fashion
def test_vgg16_on_real_fashion_mnist_reaches_85_percent_in_three_epochs_on_cuda():
    result = train(
        {
            "dataset": "fashion_mnist",
            "n_train": 10000,
            "val_size": 2000,
            "model": "vgg16",
            "width": 0.5,
            "epochs": 3,
            "batch_size": 128,
            "lr": 0.05,
            "device": "cuda",
            "progress": False,
        }
    )
    assert result.val_accuracy >= 0.85, result.history
    assert result.device.startswith("cuda") and result.images_per_s > 0
