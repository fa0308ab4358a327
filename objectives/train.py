"""Train one config and measure it: ``train(config, report=None) -> Result``.

One readable loop, top to bottom (in the manner of airbench and nanoGPT); each step is a
small function below it::

    config = validate_config(config)                  defaults, ConfigError naming the bad key
    run = prepare_run(config, data)                   device, data, model, optimizer, schedule
    for epoch in 1..epochs:
        stats = train_epoch(run, epoch)               shuffle; per batch train_step: augment +
                                                      normalise on the device, forward, backward,
                                                      step, lr step; loss summed on the device;
                                                      LARS trust ratios kept (TrustRatioLog)
        stop if stats.train_loss is not finite        (read every CHECK_EVERY steps and at the end)
        val_accuracy, val_loss = run.evaluate(...)    stop if val_loss is not finite
        report(epoch, metrics)                        (an exception from report propagates)
    test accuracy only if evaluate_test -> Result

Example::

    from objectives import train
    r = train({"dataset": "fashion_mnist", "n_train": 4000, "model": "vgg16", "width": 0.25,
               "epochs": 3, "lr": 0.05, "lars": True},
              report=lambda epoch, m: print(epoch, m["val_accuracy"], m.get("trust_ratio")))
    print(r.val_accuracy, r.images_per_s)
"""

from __future__ import annotations

import contextlib
import copy
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from tqdm.auto import tqdm

from .config import ConfigError, validate_config
from .data import Splits, augment, load_splits, normalize
from .models import build_model
from .optim import build_optimizer

__all__ = [
    "EpochStats",
    "Result",
    "Run",
    "TrustRatioLog",
    "evaluate",
    "prepare_run",
    "resolve_device",
    "train",
    "train_epoch",
    "train_reusing_data",
    "train_step",
]

CHECK_EVERY = 100  # steps between host-side checks that the summed training loss is finite
EVAL_BATCH_SIZE = 1024

Report = Callable[[int, dict[str, Any]], Any]


@dataclass
class Result:
    """What one training run measured.

    ``val_accuracy``/``val_loss`` are those of the last epoch; ``None`` when the run
    diverged (then ``diverged_epoch`` is the epoch whose training or validation loss was
    NaN/inf, and ``history`` holds the epochs before it). ``history`` holds one dict per
    epoch: ``epoch`` and the metrics given to ``report`` (see :func:`train`).
    ``images_per_s`` counts training images over the time spent in the training phase
    of the epochs (validation excluded); ``wall_time_s`` is the whole call, data loading
    included.
    """

    val_accuracy: float | None
    val_loss: float | None
    test_accuracy: float | None
    history: list[dict[str, Any]]
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
        x = _to_input(images[i : i + batch_size], mean, std, channels_last)
        y = labels[i : i + batch_size]
        with autocast():
            logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(dim=1) == y).sum()
    n = images.shape[0]
    return correct.item() / n, loss_sum.item() / n


class TrustRatioLog:
    """The per-tensor trust ratios of a LARS optimizer over the steps of one epoch.

    After every step :meth:`record` reads ``optimizer.trust_ratios()`` (a list of
    ``(parameter, 0-d ratio tensor)``, see :class:`lars.LARS`) and keeps them as one
    stacked tensor on the device: no host synchronisation per step. :meth:`summary` reads
    them once, as ``{parameter name: [min, median, max]}`` over the steps recorded (the
    median interpolates between the two middle steps of an even count), and starts over.
    An optimizer without ``trust_ratios`` (a plain arm) records nothing.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, model: torch.nn.Module):
        self._read = getattr(optimizer, "trust_ratios", None)
        self._names = {id(p): name for name, p in model.named_parameters()}
        self._steps: dict[tuple[int, ...], list[torch.Tensor]] = {}  # parameters -> one row per step

    def record(self) -> None:
        if self._read is None:
            return
        pairs = self._read()
        if pairs:
            key = tuple(id(p) for p, _ in pairs)
            self._steps.setdefault(key, []).append(torch.stack([ratio for _, ratio in pairs]))

    def summary(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for key, rows in self._steps.items():
            table = torch.stack(rows).float()  # (steps, tensors)
            q = torch.tensor([0.0, 0.5, 1.0], device=table.device)
            for pid, row in zip(key, torch.quantile(table, q, dim=0).T.tolist()):  # one host read
                out[self._names[pid]] = row
        self._steps.clear()
        return out


@dataclass
class Run:
    """Everything one training run works with, built once by :func:`prepare_run`."""

    config: dict[str, Any]
    device: torch.device
    data: Splits
    mean: torch.Tensor  # (1, C, 1, 1) float32 on the device
    std: torch.Tensor
    model: torch.nn.Module
    forward: torch.nn.Module  # the model, or its torch.compile'd form
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # data order and augmentation, on the device
    bf16: bool
    channels_last: bool
    steps_per_epoch: int

    @property
    def batch_size(self) -> int:
        return self.config["batch_size"]

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        """Accuracy and mean loss of the model on one split (see :func:`evaluate`)."""
        return evaluate(
            self.forward, images, labels, self.mean, self.std, autocast=self.autocast, channels_last=self.channels_last
        )


def _data_on(device: torch.device, config: dict[str, Any], data: Splits | None) -> Splits:
    """The config's data set as uint8 tensors on ``device``; the test split only when it will be used."""
    if data is None:
        return load_splits(
            config["dataset"],
            val_size=config["val_size"],
            n_train=config["n_train"],
            data_dir=config["data_dir"],
            device=device,
            with_test=config["evaluate_test"],
        )
    return data.to(device)


def _steps_per_epoch(config: dict[str, Any], data: Splits) -> int:
    """Full batches per epoch (the last, partial batch is dropped); checks the run-level keys."""
    n_train, batch_size = data.train_images.shape[0], config["batch_size"]
    if n_train // batch_size == 0:
        raise ConfigError(f"config key 'batch_size' must be <= the {n_train} training images, got {batch_size!r}")
    if config["evaluate_test"] and data.test_images is None:
        raise ConfigError("config key 'evaluate_test' is true but the given data has no test split")
    return n_train // batch_size


def prepare_run(config: dict[str, Any], data: Splits | None = None) -> Run:
    """Device, data, model, optimizer and schedule of a validated ``config``.

    On CUDA: channels_last, bf16 autocast under ``precision: auto``, cuDNN autotuning.
    The seed fixes the initial weights, the data order and the augmentation.
    """
    device = resolve_device(config["device"])
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN pick its fastest kernels
    data = _data_on(device, config, data)
    steps_per_epoch = _steps_per_epoch(config, data)
    model = build_model(
        config["model"],
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        width=config["width"],
        generator=torch.Generator().manual_seed(config["seed"]),
    )
    model = model.to(device, memory_format=torch.channels_last if on_cuda else torch.preserve_format)
    optimizer, scheduler = build_optimizer(model, config, steps_per_epoch)
    return Run(
        config=config, device=device, data=data,
        mean=torch.tensor(data.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        std=torch.tensor(data.std, dtype=torch.float32, device=device).view(1, -1, 1, 1),
        model=model, forward=torch.compile(model) if config["compile"] else model,
        optimizer=optimizer, scheduler=scheduler,
        generator=torch.Generator(device=device).manual_seed(config["seed"]),
        bf16=config["precision"] == "bf16" or (config["precision"] == "auto" and on_cuda),
        channels_last=on_cuda, steps_per_epoch=steps_per_epoch,
    )  # fmt: skip


def train_step(run: Run, idx: torch.Tensor) -> torch.Tensor:
    """One optimizer step on the training images ``idx``; returns the batch loss (a device tensor)."""
    data = run.data
    images = augment(data.train_images[idx], crop_padding=data.crop_padding, flip=data.flip, generator=run.generator)
    x = _to_input(images, run.mean, run.std, run.channels_last)
    with run.autocast():
        loss = F.cross_entropy(run.forward(x), data.train_labels[idx])
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.scheduler.step()
    return loss.detach().float()


@dataclass
class EpochStats:
    """What :func:`train_epoch` measured: ``train_loss`` is NaN when the loss diverged."""

    train_loss: float
    steps: int  # optimizer steps taken (fewer than an epoch's when the loss diverged)
    trust_ratio: dict[str, list[float]]  # {parameter name: [min, median, max]}; {} for plain runs


def train_epoch(run: Run, epoch: int) -> EpochStats:
    """One pass over the shuffled training split.

    The loss is summed on the device and read every :data:`CHECK_EVERY` steps (to stop a
    diverged run early) and once at the end: one host synchronisation per epoch.
    """
    run.model.train()
    order = torch.randperm(run.data.train_images.shape[0], generator=run.generator, device=run.device)
    loss_sum = torch.zeros((), dtype=torch.float32, device=run.device)
    ratios = TrustRatioLog(run.optimizer, run.model)
    b = run.batch_size
    with tqdm(
        total=run.steps_per_epoch, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not run.config["progress"]
    ) as bar:
        for step in range(run.steps_per_epoch):
            loss_sum += train_step(run, order[step * b : (step + 1) * b])
            ratios.record()
            bar.update()
            if (step + 1) % CHECK_EVERY == 0 and not torch.isfinite(loss_sum).item():
                return EpochStats(math.nan, step + 1, {})
    return EpochStats(loss_sum.item() / run.steps_per_epoch, run.steps_per_epoch, ratios.summary())


def train(config: dict[str, Any], report: Report | None = None, *, data: Splits | None = None) -> Result:
    """Train ``config`` (see :mod:`objectives.config`) and return what it measured.

    Args:
        config: a plain config dict; missing keys take :data:`objectives.DEFAULT_CONFIG`.
        report: called as ``report(epoch, metrics)`` after every epoch (epochs count from 1)
            with ``val_accuracy`` (fraction), ``val_loss`` and ``train_loss`` (mean cross-entropy),
            ``lr`` (the first group's lr after the epoch's last step), ``epoch_time_s``
            (seconds of the epoch, training and validation), ``images_per_s`` (so far,
            training phase only), all floats, and for LARS runs ``trust_ratio``:
            ``{parameter name: [min, median, max]}`` of each adapted tensor's trust ratio
            over the epoch's steps. An exception raised in it (``optuna.TrialPruned``)
            ends training and propagates unchanged.
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
    run = prepare_run(config, data)
    history: list[dict[str, Any]] = []
    train_time, images_trained, diverged_epoch = 0.0, 0, None
    with tqdm(range(1, config["epochs"] + 1), desc="epochs", unit="ep", disable=not config["progress"]) as bar:
        for epoch in bar:
            t0 = time.perf_counter()
            stats = train_epoch(run, epoch)
            train_time += time.perf_counter() - t0
            images_trained += stats.steps * run.batch_size
            train_loss = stats.train_loss
            if not math.isfinite(train_loss):
                diverged_epoch = epoch
                break
            val_accuracy, val_loss = run.evaluate(run.data.val_images, run.data.val_labels)
            if not math.isfinite(val_loss):
                diverged_epoch = epoch
                break
            metrics: dict[str, Any] = {
                "val_accuracy": val_accuracy,
                "val_loss": val_loss,
                "train_loss": train_loss,
                "lr": float(run.optimizer.param_groups[0]["lr"]),
                "epoch_time_s": time.perf_counter() - t0,
                "images_per_s": images_trained / train_time,
            }
            if stats.trust_ratio:
                metrics["trust_ratio"] = stats.trust_ratio
            history.append({"epoch": epoch, **metrics})
            bar.set_postfix(val_acc=f"{val_accuracy:.4f}", loss=f"{train_loss:.3f}")
            if report is not None:
                report(epoch, copy.deepcopy(metrics))
    test_accuracy = None
    if config["evaluate_test"] and diverged_epoch is None:
        test_accuracy, _ = run.evaluate(run.data.test_images, run.data.test_labels)
    return _result(
        run,
        history,
        diverged_epoch,
        test_accuracy,
        time.perf_counter() - t_start,
        images_trained / train_time if train_time > 0 else 0.0,
    )


def _result(
    run: Run,
    history: list[dict[str, Any]],
    diverged_epoch: int | None,
    test_accuracy: float | None,
    wall_time_s: float,
    images_per_s: float,
) -> Result:
    last = history[-1] if history and diverged_epoch is None else None
    return Result(
        val_accuracy=last["val_accuracy"] if last else None,
        val_loss=last["val_loss"] if last else None,
        test_accuracy=test_accuracy,
        history=history,
        epochs_completed=len(history),
        diverged=diverged_epoch is not None,
        diverged_epoch=diverged_epoch,
        wall_time_s=wall_time_s,
        images_per_s=images_per_s,
        device=_describe(run.device),
        config=run.config,
        versions={"python": sys.version.split()[0], "torch": torch.__version__, "torchvision": torchvision.__version__},
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
        key = (
            config["dataset"],
            config["val_size"],
            config["n_train"],
            config["data_dir"],
            str(device),
            config["evaluate_test"],
        )
        if kept["key"] != key:
            kept["key"], kept["splits"] = None, None  # free the old data set before loading the next
            kept["splits"] = _data_on(device, config, None)
            kept["key"] = key
        return train(config, report, data=kept["splits"])

    return train_fn
