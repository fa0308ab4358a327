"""Train one config and measure it: ``train(config, report=None) -> Result``.

One readable loop, top to bottom (in the manner of airbench and nanoGPT)::

    config  -> validate_config (defaults, ConfigError naming the bad key)
    data    -> uint8 tensors on the device, validation held out of the training split
    model   -> VGG (BN), seeded; channels_last and bf16 autocast on CUDA, fp32 on CPU
    optim   -> lars.param_groups + torch optimizer (+ lars.LARS) + lars.schedules
    for epoch in 1..epochs:
        shuffle; per batch: augment + normalise on the device, forward, backward, step, lr step
        train loss summed on the device (finiteness checked every 100 steps and at epoch end)
        validation accuracy / loss -> report(epoch, metrics)   (an exception from report propagates)
    test accuracy only if evaluate_test -> Result

Example::

    from objectives import train
    r = train({"dataset": "fashion_mnist", "n_train": 4000, "model": "vgg16", "width": 0.25,
               "epochs": 3, "lr": 0.05, "lars": True},
              report=lambda epoch, m: print(epoch, m["val_accuracy"]))
    print(r.val_accuracy, r.images_per_s)
"""

from __future__ import annotations

import contextlib
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
import torchvision
from tqdm.auto import tqdm

from .config import ConfigError, validate_config
from .data import Splits, augment, load_splits, normalize
from .models import build_model
from .optim import build_optimizer

__all__ = ["Result", "train", "evaluate", "resolve_device", "train_reusing_data"]

CHECK_EVERY = 100  # steps between host-side checks that the summed training loss is finite
EVAL_BATCH_SIZE = 1024

Report = Callable[[int, dict[str, float]], Any]


@dataclass
class Result:
    """What one training run measured.

    ``val_accuracy``/``val_loss`` are those of the last epoch; ``None`` when the run
    diverged (then ``diverged_epoch`` is the epoch whose training or validation loss was
    NaN/inf, and ``history`` holds the epochs before it). ``images_per_s`` counts training
    images over the time spent in the training phase of the epochs (validation excluded);
    ``wall_time_s`` is the whole call, data loading included.
    """

    val_accuracy: float | None
    val_loss: float | None
    test_accuracy: float | None
    history: list[dict[str, float]]
    epochs_completed: int
    diverged: bool
    diverged_epoch: int | None
    wall_time_s: float
    images_per_s: float
    device: str
    config: dict[str, Any]
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; ``"cuda"`` without CUDA is a ConfigError.

    A CUDA device always comes back with its index (``cuda`` -> ``cuda:0`` under the
    current device), so that results say which GPU of the machine ran them.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"config key 'device' is {name!r} but CUDA is not available on this machine")
        index = torch.device(name).index or 0
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"config key 'device' must name one of the {torch.cuda.device_count()} CUDA devices, got {name!r}"
            )
        if torch.device(name).index is None:
            return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def _to_input(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels_last: bool) -> torch.Tensor:
    x = normalize(images, mean, std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    channels_last: bool = False,
    batch_size: int = EVAL_BATCH_SIZE,
) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` (in eval mode) on uint8 ``images``."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    for i in range(0, images.shape[0], batch_size):
        x = _to_input(images[i:i + batch_size], mean, std, channels_last)
        y = labels[i:i + batch_size]
        with autocast():
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    n = images.shape[0]
    return correct.item() / n, loss_sum.item() / n


def train(config: dict[str, Any], report: Report | None = None, *, data: Splits | None = None) -> Result:
    """Train ``config`` (see :mod:`objectives.config`) and return what it measured.

    Args:
        config: a plain config dict; missing keys take :data:`objectives.DEFAULT_CONFIG`.
        report: called as ``report(epoch, metrics)`` after every epoch (epochs count from 1)
            with ``val_accuracy`` (fraction), ``val_loss`` and ``train_loss`` (mean cross-entropy),
            ``lr`` (the first group's lr after the epoch's last step) and ``epoch_time_s``
            (seconds of the epoch, training and validation). An
            exception raised in it (``optuna.TrialPruned``) ends training and propagates
            unchanged.
        data: already-loaded :class:`~objectives.data.Splits` to train on instead of
            loading ``config["dataset"]`` (then ``dataset``, ``data_dir``, ``n_train`` and
            ``val_size`` are not used). For tests (a synthetic problem) and for callers
            that keep one data set for many runs in one process.

    Returns:
        a :class:`Result`; a NaN/inf loss gives ``diverged=True`` rather than an exception.

    Raises:
        ConfigError: a bad config key (also ``n_train``/``val_size`` too large for the data,
            ``device="cuda"`` without CUDA).
        DataNotFoundError: the data set is in none of the places looked.
    """
    t_start = time.perf_counter()
    config = validate_config(config)
    device = resolve_device(config["device"])
    on_cuda = device.type == "cuda"
    bf16 = config["precision"] == "bf16" or (config["precision"] == "auto" and on_cuda)
    channels_last = on_cuda
    if on_cuda:
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN pick its fastest kernels

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    # Data: uint8 on the device, once. The test split is read only when it will be used.
    if data is None:
        data = load_splits(
            config["dataset"], val_size=config["val_size"], n_train=config["n_train"],
            data_dir=config["data_dir"], device=device, with_test=config["evaluate_test"],
        )
    else:
        data = data.to(device)
    n_train, batch_size = data.train_images.shape[0], config["batch_size"]
    steps_per_epoch = n_train // batch_size  # the last, partial batch is dropped
    if steps_per_epoch == 0:
        raise ConfigError(f"config key 'batch_size' must be <= the {n_train} training images, got {batch_size!r}")
    if config["evaluate_test"] and data.test_images is None:
        raise ConfigError("config key 'evaluate_test' is true but the given data has no test split")
    mean = torch.tensor(data.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    # Model and optimizer; the seed fixes the initial weights, the data order and the augmentation.
    model = build_model(config["model"], in_channels=data.in_channels, num_classes=data.num_classes,
                        width=config["width"], generator=torch.Generator().manual_seed(config["seed"]))
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    forward = torch.compile(model) if config["compile"] else model
    optimizer, scheduler = build_optimizer(model, config, steps_per_epoch)
    generator = torch.Generator(device=device).manual_seed(config["seed"])

    history: list[dict[str, float]] = []
    train_time, images_trained = 0.0, 0
    diverged_epoch = None
    progress = config["progress"]
    with tqdm(range(1, config["epochs"] + 1), desc="epochs", unit="ep", disable=not progress) as epoch_bar:
        for epoch in epoch_bar:
            # --- training phase ---
            t0 = time.perf_counter()
            model.train()
            order = torch.randperm(n_train, generator=generator, device=device)
            loss_sum = torch.zeros((), dtype=torch.float32, device=device)
            finite = True
            with tqdm(total=steps_per_epoch, desc=f"epoch {epoch}", unit="batch", leave=False,
                      disable=not progress) as batch_bar:
                for step in range(steps_per_epoch):
                    idx = order[step * batch_size:(step + 1) * batch_size]
                    images = augment(data.train_images[idx], crop_padding=data.crop_padding,
                                     flip=data.flip, generator=generator)
                    x = _to_input(images, mean, std, channels_last)
                    with autocast():
                        loss = F.cross_entropy(forward(x), data.train_labels[idx])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    loss_sum += loss.detach().float()
                    images_trained += batch_size
                    batch_bar.update()
                    if (step + 1) % CHECK_EVERY == 0 and not torch.isfinite(loss_sum).item():
                        finite = False
                        break
            train_loss = loss_sum.item() / steps_per_epoch  # one host sync per epoch
            train_time += time.perf_counter() - t0
            if not finite or not math.isfinite(train_loss):
                diverged_epoch = epoch
                break

            # --- validation phase, then report ---
            val_accuracy, val_loss = evaluate(forward, data.val_images, data.val_labels, mean, std,
                                              autocast=autocast, channels_last=channels_last)
            if not math.isfinite(val_loss):
                diverged_epoch = epoch
                break
            metrics = {
                "val_accuracy": val_accuracy,
                "val_loss": val_loss,
                "train_loss": train_loss,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "epoch_time_s": time.perf_counter() - t0,
                "images_per_s": images_trained / train_time,  # so far, training phase only
            }
            history.append({"epoch": epoch, **metrics})
            epoch_bar.set_postfix(val_acc=f"{val_accuracy:.4f}", loss=f"{train_loss:.3f}")
            if report is not None:
                report(epoch, dict(metrics))

    diverged = diverged_epoch is not None
    test_accuracy = None
    if config["evaluate_test"] and not diverged:
        test_accuracy, _ = evaluate(forward, data.test_images, data.test_labels, mean, std,
                                    autocast=autocast, channels_last=channels_last)
    last = history[-1] if history and not diverged else None
    return Result(
        val_accuracy=last["val_accuracy"] if last else None,
        val_loss=last["val_loss"] if last else None,
        test_accuracy=test_accuracy,
        history=history,
        epochs_completed=len(history),
        diverged=diverged,
        diverged_epoch=diverged_epoch,
        wall_time_s=time.perf_counter() - t_start,
        images_per_s=images_trained / train_time if train_time > 0 else 0.0,
        device=_describe(device),
        config=config,
        versions={"python": sys.version.split()[0], "torch": torch.__version__,
                  "torchvision": torchvision.__version__},
    )


def train_reusing_data() -> Callable[..., Result]:
    """A :func:`train` that loads its data set once for all the runs it makes.

    A search trains many configs on the same data; reading and splitting it again for
    every trial costs about 0.7 s of a 6 s quickstart trial. The returned function keeps
    the last :class:`~objectives.data.Splits` it loaded (one entry, so memory stays that
    of one data set) and reloads only when a config names other data (dataset, split
    sizes, directory, device, test split). It lives as long as the caller holds it: no
    module-level cache.
    """
    kept: dict[str, Any] = {"key": None, "splits": None}

    def train_fn(config: dict[str, Any], report: Report | None = None) -> Result:
        config = validate_config(config)
        device = resolve_device(config["device"])
        key = (config["dataset"], config["val_size"], config["n_train"], config["data_dir"], str(device),
               config["evaluate_test"])
        if kept["key"] != key:
            kept["key"], kept["splits"] = None, None  # free the old data set before loading the next
            kept["splits"] = load_splits(
                config["dataset"], val_size=config["val_size"], n_train=config["n_train"],
                data_dir=config["data_dir"], device=device, with_test=config["evaluate_test"],
            )
            kept["key"] = key
        return train(config, report, data=kept["splits"])

    return train_fn
