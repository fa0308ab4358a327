"""Helpers for the objectives tests: data files in their genuine formats, a synthetic problem."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import torch

from objectives.data import Splits


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 8, seed: int = 0) -> dict:
    """Write a tiny CIFAR-10 in the genuine python format under ``root/cifar-10-batches-py``.

    Like the originals, each batch is a protocol-2 pickle of a dict with ``data`` (uint8,
    ``(n, 3072)``, the red plane, then green, then blue, each row-major 32x32),
    ``labels`` (list of int), ``batch_label`` and ``filenames``; ``batches.meta`` holds
    ``label_names``. Returns the arrays written, as ``(N, 3, 32, 32)`` uint8 and labels.
    """
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    written = {"train_images": [], "train_labels": []}
    for b in range(1, 6):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=per_batch)]
        entry = {
            "batch_label": f"training batch {b} of 5",
            "labels": labels,
            "data": data,
            "filenames": [f"img_{b}_{i}.png" for i in range(per_batch)],
        }
        (d / f"data_batch_{b}").write_bytes(pickle.dumps(entry, protocol=2))
        written["train_images"].append(data.reshape(-1, 3, 32, 32))
        written["train_labels"] += labels
    data = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 10, size=n_test)]
    (d / "test_batch").write_bytes(
        pickle.dumps(
            {
                "batch_label": "testing batch 1 of 1",
                "labels": labels,
                "data": data,
                "filenames": [f"t_{i}.png" for i in range(n_test)],
            },
            protocol=2,
        )
    )
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (d / "batches.meta").write_bytes(
        pickle.dumps({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, protocol=2)
    )
    return {
        "train_images": np.concatenate(written["train_images"]),
        "train_labels": written["train_labels"],
        "test_images": data.reshape(-1, 3, 32, 32),
        "test_labels": labels,
    }


def _idx(array: np.ndarray) -> bytes:
    """IDX encoding: magic (0, 0, 0x08 = ubyte, ndim), big-endian int32 dims, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion_mnist(directory: Path, n_train: int = 40, n_test: int = 10, gz: bool = True, seed: int = 0) -> dict:
    """Write the four Fashion-MNIST IDX files (gzipped like Debian's, or plain) into ``directory``."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test, dtype=np.uint8) * 3) % 10,
    }
    for name, array in arrays.items():
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(_idx(array)))
        else:
            (directory / name).write_bytes(_idx(array))
    return arrays


def synthetic_splits(
    n_train: int = 256, n_val: int = 128, n_test: int = 128, num_classes: int = 4, seed: int = 0
) -> Splits:
    """A separable problem: class k is a bright horizontal band at rows 8k..8k+7, plus noise."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        labels = torch.arange(n) % num_classes
        images = torch.randint(0, 64, (n, 1, 32, 32), generator=g)
        for k in range(num_classes):
            images[labels == k, :, 8 * k : 8 * k + 8, :] += 160
        return images.to(torch.uint8), labels

    tr, va, te = make(n_train), make(n_val), make(n_test)
    return Splits(
        name="synthetic",
        train_images=tr[0],
        train_labels=tr[1],
        val_images=va[0],
        val_labels=va[1],
        num_classes=num_classes,
        mean=(0.3,),
        std=(0.3,),
        crop_padding=2,
        flip=False,
        test_images=te[0],
        test_labels=te[1],
    )
