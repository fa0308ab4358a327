"""CIFAR-10 and Fashion-MNIST as uint8 tensors on the training device.

The files are read by torchvision's own dataset classes (``torchvision.datasets.CIFAR10``,
``torchvision.datasets.FashionMNIST``) in their genuine on-disk formats: CIFAR-10's
pickled batches (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``,
``batches.meta``, checked against torchvision's MD5 sums) and Fashion-MNIST's IDX files.

Where the data is looked for (each place a *root*):

1. a location the user names: the explicit ``data_dir`` (config key), else
   ``$LARS_SEARCH_DATA``; it is the only place looked, so that a named location that
   does not hold the data is an error rather than a silent fall back to other files;
2. otherwise torchvision's cache root ``$XDG_CACHE_HOME/torchvision``
   (``~/.cache/torchvision``), then, for Fashion-MNIST, Debian's
   ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).

Inside a root, torchvision's layout is accepted (``<root>/cifar-10-batches-py/``,
``<root>/FashionMNIST/raw/``), and so is a directory that holds the files themselves
(``<root>/data_batch_1 ...``; ``<root>/train-images-idx3-ubyte[.gz] ...``, Debian's
layout). Gzipped IDX files are decompressed with torchvision's ``extract_archive`` into a
temporary directory that is removed after loading. When nothing is found and the dataset
host answers within a few seconds, the data is downloaded by torchvision into the first
root of the list; otherwise one :class:`DataNotFoundError` names every place looked and
how to get the data. Nothing ever waits on a network that is not there.

Images are kept as uint8 ``(N, C, 32, 32)`` (Fashion-MNIST is zero-padded from 28x28 to
32x32 when loaded). :func:`augment` and :func:`normalize` run per batch on the device,
in the manner of airbench (Keller Jordan, ``airbench94.py``): no DataLoader workers.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

from .errors import ConfigError, DataNotFoundError
from .registry import DATASETS

__all__ = [
    "DataNotFoundError",
    "DATASET_INFO",
    "DEBIAN_FASHION_MNIST",
    "Splits",
    "augment",
    "candidate_roots",
    "load_dataset",
    "load_splits",
    "normalize",
    "split_indices",
    "torchvision_cache_root",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SPLIT_SEED = 0  # the validation hold-out is the same for every trial and every training seed

_CIFAR_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)
_FMNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: Per dataset: sizes, classes, channels, augmentation, download host, how to get it
#: (:data:`objectives.registry.DATASETS`).
DATASET_INFO = DATASETS


def torchvision_cache_root() -> Path:
    """torchvision's usual dataset root: ``$XDG_CACHE_HOME/torchvision`` (``~/.cache/torchvision``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "torchvision"


def candidate_roots(dataset: str, data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The roots looked in, in order, each with where it came from.

    A named location (``data_dir``, else ``$LARS_SEARCH_DATA``) is the only root.
    """
    if data_dir is not None:
        return [("data_dir", Path(data_dir).expanduser())]
    if os.environ.get("LARS_SEARCH_DATA"):
        return [("$LARS_SEARCH_DATA", Path(os.environ["LARS_SEARCH_DATA"]).expanduser())]
    roots = [("torchvision cache", torchvision_cache_root())]
    if dataset == "fashion_mnist":
        roots.append(("Debian dataset-fashion-mnist", DEBIAN_FASHION_MNIST))
    return roots


def _find_cifar(root: Path) -> Path | None:
    """The directory that holds all the CIFAR-10 batch files: ``root/cifar-10-batches-py`` or ``root``."""
    for batches in (root / "cifar-10-batches-py", root):
        if all((batches / f).is_file() for f in _CIFAR_FILES):
            return batches
    return None


def _find_fashion(root: Path) -> dict[str, Path] | None:
    """The four IDX files (plain or .gz) under ``root/FashionMNIST/raw`` or ``root``."""
    for d in (root / "FashionMNIST" / "raw", root):
        found = {}
        for name in _FMNIST_FILES:
            for candidate in (d / name, d / f"{name}.gz"):
                if candidate.is_file():
                    found[name] = candidate
                    break
        if len(found) == len(_FMNIST_FILES):
            return found
    return None


def _host_answers(host: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:443`` opens within ``timeout`` (DNS included)."""
    ok = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def _read_cifar(torchvision_root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        ds = torchvision.datasets.CIFAR10(str(torchvision_root), train=train, download=False)
    except RuntimeError as e:  # torchvision's "not found or corrupted" (MD5 mismatch)
        raise DataNotFoundError(
            f"CIFAR-10 files under {torchvision_root / 'cifar-10-batches-py'} failed torchvision's "
            f"check ({e}); remove them and get the data again: {DATASET_INFO['cifar10'].how}"
        ) from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW, uint8
    return images, torch.as_tensor(ds.targets, dtype=torch.int64)


def _read_fashion(files: dict[str, Path], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage the IDX files in torchvision's layout (link, or decompress .gz), then read them."""
    with tempfile.TemporaryDirectory(prefix="lars-search-fmnist-") as tmp:
        raw = Path(tmp) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for name, path in files.items():  # torchvision checks that all four are there
            if path.suffix == ".gz":
                torchvision.datasets.utils.extract_archive(str(path), str(raw))  # -> raw/<name>
            else:
                (raw / name).symlink_to(path.resolve())
        ds = torchvision.datasets.FashionMNIST(tmp, train=train, download=False)
        images, labels = ds.data, ds.targets
    images = F.pad(images.unsqueeze(1), (2, 2, 2, 2))  # (N, 1, 28, 28) -> (N, 1, 32, 32), zeros
    return images.contiguous(), labels.to(torch.int64)


def _not_found(dataset: str, looked: list[str], extra: str = "") -> DataNotFoundError:
    places = "\n".join(f"  - {p}" for p in looked)
    return DataNotFoundError(
        f"{dataset} data not found. Looked in:\n{places}\n{extra}To get it: {DATASET_INFO[dataset].how}."
    )


def _not_in_named_place(dataset: str, roots: list[tuple[str, Path]]) -> str:
    """Why nothing else was looked in, when the user named the location ("" otherwise)."""
    label, root = roots[0]
    if label not in ("data_dir", "$LARS_SEARCH_DATA"):
        return ""
    return (
        f"{label} names {root}, the only place looked once a location is named; "
        f"fix it or unset it to use the default places.\n"
    )


def load_dataset(
    dataset: str, *, train: bool, data_dir: str | os.PathLike | None = None, download: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, C, 32, 32)`` uint8 and labels ``(N,)`` int64 of one split, on the CPU.

    Args:
        dataset: ``"cifar10"`` or ``"fashion_mnist"``.
        train: the training split (50,000 / 60,000 images) or the test split (10,000).
        data_dir: the only place looked when given (see the module docstring).
        download: ``None`` (default) downloads with torchvision when the data is nowhere and
            the host answers within 3 s (and ``$LARS_SEARCH_OFFLINE`` is unset);
            ``False`` never; ``True`` tries even without the probe.

    Raises:
        DataNotFoundError: naming every place looked and how to get the data.
    """
    if dataset not in DATASET_INFO:
        raise ConfigError(f"config key 'dataset' must be one of {', '.join(DATASET_INFO)}, got {dataset!r}")
    roots = candidate_roots(dataset, data_dir)
    looked = []
    for label, root in roots:
        if dataset == "cifar10":
            batches = _find_cifar(root)
            looked.append(f"{root}/cifar-10-batches-py/ or {root}/ ({label})")
            if batches is not None:
                if batches.name == "cifar-10-batches-py":
                    return _read_cifar(batches.parent, train)
                with tempfile.TemporaryDirectory(prefix="lars-search-cifar-") as tmp:  # torchvision's layout
                    (Path(tmp) / "cifar-10-batches-py").symlink_to(batches.resolve())
                    return _read_cifar(Path(tmp), train)
        else:
            files = _find_fashion(root)
            looked.append(f"{root}/FashionMNIST/raw/ or {root}/ ({label})")
            if files is not None:
                return _read_fashion(files, train)

    host = DATASET_INFO[dataset].host
    named = _not_in_named_place(dataset, roots)
    if download is False or (download is None and os.environ.get("LARS_SEARCH_OFFLINE")):
        raise _not_found(dataset, looked, named + "Download is off.\n")
    if download is None and not _host_answers(host):
        raise _not_found(dataset, looked, named + f"No network: {host} did not answer, so nothing was downloaded.\n")
    target = roots[0][1]
    try:
        target.mkdir(parents=True, exist_ok=True)
        if dataset == "cifar10":
            torchvision.datasets.CIFAR10(str(target), train=True, download=True)
        else:
            torchvision.datasets.FashionMNIST(str(target), train=True, download=True)
    except Exception as e:  # noqa: BLE001 - any failure becomes the one clear error
        raise _not_found(dataset, looked, named + f"Downloading into {target} failed: {e}\n") from None
    return load_dataset(dataset, train=train, data_dir=target, download=False)


def split_indices(labels: torch.Tensor, size: int, *, seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(len(labels))`` into ``size`` stratified indices and the rest.

    Each class is shuffled with a fixed-seed generator; an image at rank ``r`` of its
    class of ``n_c`` images gets the key ``(r + 1/2) / n_c``, and the ``size`` smallest keys
    are taken (ties in class order). Every class thus gives ``size * n_c / N`` images,
    rounded up or down by at most one. Both parts come back sorted; same seed, same split.
    """
    n = labels.numel()
    if not 0 <= size <= n:
        raise ValueError(f"size must be in [0, {n}], got {size!r}")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    by_class = perm[torch.argsort(labels[perm], stable=True)]  # grouped by class, shuffled within
    sorted_labels = labels[by_class]
    counts = torch.bincount(sorted_labels)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(n) - starts[sorted_labels]
    key = (rank.double() + 0.5) / counts[sorted_labels].double()
    order = by_class[torch.argsort(key, stable=True)]
    return order[:size].sort().values, order[size:].sort().values


@dataclass(frozen=True)
class Splits:
    """One data set, split, as uint8 images and int64 labels on one device.

    ``test_images``/``test_labels`` are ``None`` unless the test set was asked for.
    ``mean``/``std`` (per channel, in [0, 1] units) normalise the images; ``crop_padding``
    and ``flip`` are the training augmentation (see :func:`augment`).
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    flip: bool = False
    test_images: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def in_channels(self) -> int:
        return self.train_images.shape[1]

    def to(self, device: torch.device | str) -> Splits:
        move = {
            k: getattr(self, k)
            for k in ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")
        }
        return replace(self, **{k: (v.to(device) if v is not None else None) for k, v in move.items()})


def _channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units (float64 sums)."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, images.shape[0], chunk):
        x = images[i : i + chunk].to(torch.float64) / 255.0
        s += x.sum(dim=(0, 2, 3))
        s2 += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = s / n
    std = (s2 / n - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def load_splits(
    dataset: str,
    *,
    val_size: int,
    n_train: int | None = None,
    data_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    with_test: bool = False,
    download: bool | None = None,
) -> Splits:
    """Load ``dataset`` once and split it: validation hold-out, optional training subset.

    The validation set is ``val_size`` images held out of the training split with
    :func:`split_indices` (fixed seed :data:`SPLIT_SEED`); ``n_train`` then takes a
    stratified subset of the remaining images (same rule). Normalisation statistics come
    from the training images that are used. The test split is read only if ``with_test``.

    Raises:
        ConfigError: ``val_size`` or ``n_train`` larger than the data allows.
        DataNotFoundError: see :func:`load_dataset`.
    """
    images, labels = load_dataset(dataset, train=True, data_dir=data_dir, download=download)
    if val_size >= labels.numel():
        raise ConfigError(
            f"config key 'val_size' must be < the {labels.numel()} training images of {dataset}, got {val_size!r}"
        )
    val_idx, rest = split_indices(labels, val_size)
    if n_train is not None:
        if n_train > rest.numel():
            raise ConfigError(
                f"config key 'n_train' must be <= the {rest.numel()} images left after the val_size="
                f"{val_size} hold-out, got {n_train!r}"
            )
        sub, _ = split_indices(labels[rest], n_train, seed=SPLIT_SEED + 1)
        rest = rest[sub]
    train_images = images[rest]
    mean, std = _channel_stats(train_images)
    info = DATASET_INFO[dataset]
    test_images = test_labels = None
    if with_test:
        test_images, test_labels = load_dataset(dataset, train=False, data_dir=data_dir, download=download)
    return Splits(
        name=dataset,
        train_images=train_images,
        train_labels=labels[rest],
        val_images=images[val_idx],
        val_labels=labels[val_idx],
        num_classes=info.num_classes,
        mean=mean,
        std=std,
        crop_padding=info.crop_padding,
        flip=info.flip,
        test_images=test_images,
        test_labels=test_labels,
    ).to(device)


def augment(
    images: torch.Tensor, *, crop_padding: int, flip: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, on a uint8 batch.

    Each image ``(C, H, W)`` is padded by ``crop_padding`` pixels on every side and an
    ``H x W`` window at a uniform offset ``(dy, dx) in [0, 2p]^2`` is kept (a shift of up to
    ``p`` pixels); with ``flip`` it is then mirrored left-right with probability 1/2. All on
    the images' device, one gather for the whole batch; ``generator`` (on that device)
    makes it repeatable.
    """
    b, c, h, w = images.shape
    dev = images.device
    if crop_padding > 0:
        p = crop_padding
        padded = F.pad(images, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=dev)
        rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        batch = torch.arange(b, device=dev)[:, None, None, None]
        chan = torch.arange(c, device=dev)[None, :, None, None]
        images = padded[batch, chan, rows, cols]
    if flip:
        mirror = torch.rand(b, generator=generator, device=dev) < 0.5
        images = torch.where(mirror[:, None, None, None], images.flip(3), images)
    return images


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """``(x / 255 - mean) / std`` per channel, as float32.

    ``mean`` and ``std`` are per-channel sequences in [0, 1] units, or float32 tensors of
    shape ``(1, C, 1, 1)`` already on the device (what the training loop passes, so that no
    small host-to-device copy happens per batch).
    """
    m = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float().div_(255.0) - m).div_(s)
