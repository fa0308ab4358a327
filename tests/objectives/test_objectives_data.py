"""objectives.data: genuine file formats through torchvision's readers, look-up order,
the missing-data error, splits, augmentation and normalisation."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from objectives_fixtures import write_cifar10, write_fashion_mnist

from objectives.config import ConfigError
from objectives.data import (
    DATASET_INFO,
    DEBIAN_FASHION_MNIST,
    DataNotFoundError,
    augment,
    candidate_roots,
    load_dataset,
    load_splits,
    normalize,
    split_indices,
)

# --- file formats -------------------------------------------------------------------------


def test_cifar10_pickled_batches_read_back_through_torchvision(tmp_path, cifar_md5_relaxed):
    written = write_cifar10(tmp_path, per_batch=6, n_test=8)
    images, labels = load_dataset("cifar10", train=True, data_dir=tmp_path, download=False)
    assert images.shape == (30, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == written["train_labels"]
    assert torch.equal(images, torch.from_numpy(written["train_images"]))  # planes R, G, B -> channels
    test_images, test_labels = load_dataset("cifar10", train=False, data_dir=tmp_path, download=False)
    assert test_images.shape == (8, 3, 32, 32) and test_labels.tolist() == written["test_labels"]
    assert torch.equal(test_images, torch.from_numpy(written["test_images"]))


def test_cifar10_batch_files_directly_in_the_data_dir_are_found(tmp_path, cifar_md5_relaxed):
    written = write_cifar10(tmp_path / "parent", per_batch=2, n_test=2)
    images, labels = load_dataset(
        "cifar10", train=True, data_dir=tmp_path / "parent" / "cifar-10-batches-py", download=False
    )
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == written["train_labels"]


def test_cifar10_files_failing_torchvisions_md5_check_are_a_clear_error(tmp_path):
    write_cifar10(tmp_path, per_batch=2, n_test=2)  # genuine format, but not the real files' MD5 sums
    with pytest.raises(
        DataNotFoundError, match=r"CIFAR-10 files under .*cifar-10-batches-py failed torchvision's check"
    ):
        load_dataset("cifar10", train=True, data_dir=tmp_path, download=False)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped-debian-layout", "plain"])
def test_fashion_mnist_idx_files_read_back_padded_to_32x32(tmp_path, gz):
    written = write_fashion_mnist(tmp_path / "fm", n_train=40, n_test=10, gz=gz)
    images, labels = load_dataset("fashion_mnist", train=True, data_dir=tmp_path / "fm", download=False)
    assert images.shape == (40, 1, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == (np.arange(40) % 10).tolist()
    assert torch.equal(images[:, 0, 2:30, 2:30], torch.from_numpy(written["train-images-idx3-ubyte"]))
    border = images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.sum() == 0  # the 2-pixel frame is zeros
    test_images, test_labels = load_dataset("fashion_mnist", train=False, data_dir=tmp_path / "fm", download=False)
    assert test_images.shape == (10, 1, 32, 32) and test_labels.tolist() == [0, 3, 6, 9, 2, 5, 8, 1, 4, 7]


def test_fashion_mnist_torchvision_layout_under_the_cache_root_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_fashion_mnist(tmp_path / "cache" / "torchvision" / "FashionMNIST" / "raw", n_train=20, n_test=10, gz=False)
    images, _ = load_dataset("fashion_mnist", train=True, download=False)
    assert images.shape == (20, 1, 32, 32)


# --- where the data is looked for -----------------------------------------------------------


def test_a_named_location_is_the_only_root_else_torchvision_cache_then_debian(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert candidate_roots("fashion_mnist") == [
        ("torchvision cache", tmp_path / "xdg" / "torchvision"),
        ("Debian dataset-fashion-mnist", DEBIAN_FASHION_MNIST),
    ]
    assert [label for label, _ in candidate_roots("cifar10")] == ["torchvision cache"]
    monkeypatch.setenv("LARS_SEARCH_DATA", str(tmp_path / "env"))
    assert candidate_roots("fashion_mnist") == [("$LARS_SEARCH_DATA", tmp_path / "env")]
    assert candidate_roots("fashion_mnist", tmp_path / "explicit") == [("data_dir", tmp_path / "explicit")]


def test_explicit_data_dir_wins_over_the_environment(tmp_path, monkeypatch):
    write_fashion_mnist(tmp_path / "a", n_train=20, n_test=10)
    write_fashion_mnist(tmp_path / "b", n_train=30, n_test=10)
    monkeypatch.setenv("LARS_SEARCH_DATA", str(tmp_path / "b"))
    assert load_dataset("fashion_mnist", train=True, data_dir=tmp_path / "a", download=False)[0].shape[0] == 20
    assert load_dataset("fashion_mnist", train=True, download=False)[0].shape[0] == 30


@pytest.mark.parametrize("named", ["data_dir", "env"])
def test_a_named_location_without_the_data_is_an_error_not_a_fall_back(tmp_path, monkeypatch, named):
    # #16 item 10: the system's Fashion-MNIST (or any other place) is not used instead
    write_fashion_mnist(tmp_path / "debian", n_train=20, n_test=10)
    monkeypatch.setattr("objectives.data.DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setenv("LARS_SEARCH_OFFLINE", "1")
    data_dir = None
    if named == "env":
        monkeypatch.setenv("LARS_SEARCH_DATA", "/nonexistent")
        label = "$LARS_SEARCH_DATA"
    else:
        data_dir, label = "/nonexistent", "data_dir"
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", train=True, data_dir=data_dir)
    message = str(info.value)
    assert f"/nonexistent/FashionMNIST/raw/ or /nonexistent/ ({label})" in message
    assert f"{label} names /nonexistent, the only place looked once a location is named" in message
    assert str(tmp_path / "debian") not in message


def test_missing_data_is_one_error_naming_every_place_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("objectives.data.DEBIAN_FASHION_MNIST", tmp_path / "debian")
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", train=True, download=False)
    message = str(info.value)
    assert "torchvision/FashionMNIST/raw/ or " in message and "(torchvision cache)" in message
    assert (
        f"{tmp_path / 'debian'}/FashionMNIST/raw/ or {tmp_path / 'debian'}/ (Debian dataset-fashion-mnist)" in message
    )
    assert "apt-get install dataset-fashion-mnist" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_cifar10_without_network_names_the_host_and_the_archive(tmp_path, monkeypatch):
    monkeypatch.setattr("objectives.data._host_answers", lambda host, timeout=3.0: False)
    with pytest.raises(
        DataNotFoundError,
        match=r"(?s)cifar10 data not found\. Looked in:\n  - .*mine/cifar-10-batches-py/ "
        r".*No network: www\.cs\.toronto\.edu did not answer.*cifar-10-python\.tar\.gz",
    ):
        load_dataset("cifar10", train=True, data_dir=tmp_path / "mine")


def test_offline_environment_variable_turns_download_off(tmp_path, monkeypatch):
    monkeypatch.setenv("LARS_SEARCH_OFFLINE", "1")
    monkeypatch.setattr("objectives.data._host_answers", lambda *a, **k: pytest.fail("probed the network"))
    with pytest.raises(DataNotFoundError, match="Download is off"):
        load_dataset("cifar10", train=True, data_dir=tmp_path)


def test_when_the_host_answers_torchvision_downloads_into_the_first_root(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr("objectives.data._host_answers", lambda host, timeout=3.0: True)
    downloads = []

    def fake_download(self):  # stands in for the network: writes what torchvision would fetch
        downloads.append(self.root)
        write_fashion_mnist(Path(self.raw_folder), n_train=20, n_test=10, gz=False)

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", fake_download)
    monkeypatch.setattr("objectives.data.DEBIAN_FASHION_MNIST", tmp_path / "debian")
    images, labels = load_dataset("fashion_mnist", train=True, data_dir=tmp_path / "new")
    assert downloads == [str(tmp_path / "new")] and images.shape == (20, 1, 32, 32)


def test_a_failed_download_is_the_same_clear_error(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr("objectives.data._host_answers", lambda host, timeout=3.0: True)

    def broken(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", broken)
    monkeypatch.setattr("objectives.data.DEBIAN_FASHION_MNIST", tmp_path / "debian")
    with pytest.raises(DataNotFoundError, match=r"(?s)Looked in:.*Downloading into .*new failed: Error downloading"):
        load_dataset("fashion_mnist", train=True, data_dir=tmp_path / "new")


# --- splits ---------------------------------------------------------------------------------


def test_split_is_stratified_sized_disjoint_and_reproducible():
    labels = torch.arange(1000) % 10
    labels[:100] = 3  # unbalanced: class 3 has 190 images, the others 90 each
    val, rest = split_indices(labels, 200)
    assert val.numel() == 200 and rest.numel() == 800
    assert set(val.tolist()).isdisjoint(rest.tolist())
    assert sorted(val.tolist() + rest.tolist()) == list(range(1000))
    counts = torch.bincount(labels[val], minlength=10)
    assert counts[3] == 38 and all(abs(int(counts[k]) - 18) <= 1 for k in range(10) if k != 3)  # 200 * n_c / 1000
    again, _ = split_indices(labels, 200)
    assert torch.equal(val, again)
    other, _ = split_indices(labels, 200, seed=1)
    assert not torch.equal(val, other)


def test_split_size_outside_the_data_is_rejected():
    with pytest.raises(ValueError, match=r"size must be in \[0, 10\], got 11"):
        split_indices(torch.zeros(10, dtype=torch.int64), 11)


def test_load_splits_holds_out_validation_and_takes_the_training_subset(tmp_path):
    write_fashion_mnist(tmp_path, n_train=100, n_test=10)
    s = load_splits("fashion_mnist", val_size=20, n_train=50, data_dir=tmp_path, download=False)
    assert s.train_images.shape == (50, 1, 32, 32) and s.val_images.shape == (20, 1, 32, 32)
    assert torch.bincount(s.val_labels).tolist() == [2] * 10 and torch.bincount(s.train_labels).tolist() == [5] * 10
    assert s.test_images is None  # the test split is not read unless asked
    all_images, _ = load_dataset("fashion_mnist", train=True, data_dir=tmp_path, download=False)
    flat = all_images.flatten(1)
    index = {bytes(row.numpy()): i for i, row in enumerate(flat)}
    train_rows = {index[bytes(r.numpy())] for r in s.train_images.flatten(1)}
    val_rows = {index[bytes(r.numpy())] for r in s.val_images.flatten(1)}
    assert len(train_rows) == 50 and len(val_rows) == 20 and train_rows.isdisjoint(val_rows)
    again = load_splits("fashion_mnist", val_size=20, n_train=50, data_dir=tmp_path, download=False)
    assert torch.equal(again.train_images, s.train_images) and torch.equal(again.val_labels, s.val_labels)
    # the validation set does not depend on n_train
    full = load_splits("fashion_mnist", val_size=20, data_dir=tmp_path, download=False, with_test=True)
    assert torch.equal(full.val_images, s.val_images) and full.train_images.shape[0] == 80
    assert full.test_images.shape == (10, 1, 32, 32)
    assert s.num_classes == 10 and s.in_channels == 1 and s.crop_padding == 2 and s.flip is False
    x = s.train_images.double() / 255
    assert s.mean[0] == pytest.approx(x.mean().item(), rel=1e-9)
    assert s.std[0] == pytest.approx(x.std(unbiased=False).item(), rel=1e-9)


def test_load_splits_rejects_sizes_the_data_cannot_give(tmp_path):
    write_fashion_mnist(tmp_path, n_train=100, n_test=10)
    with pytest.raises(ConfigError, match=r"'val_size' must be < the 100 training images of fashion_mnist, got 100"):
        load_splits("fashion_mnist", val_size=100, data_dir=tmp_path, download=False)
    with pytest.raises(
        ConfigError, match=r"'n_train' must be <= the 80 images left after the val_size=20 hold-out, got 81"
    ):
        load_splits("fashion_mnist", val_size=20, n_train=81, data_dir=tmp_path, download=False)


# --- augmentation and normalisation ---------------------------------------------------------


def test_crop_keeps_shape_and_shifts_each_image_by_at_most_the_padding():
    images = torch.arange(4 * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).view(4, 3, 32, 32)
    images[:, :, :, :] = images[:1]  # the same image four times
    out = augment(images, crop_padding=4, flip=False, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images[0], (4, 4, 4, 4))
    for b in range(4):
        matches = [
            (dy, dx) for dy in range(9) for dx in range(9) if torch.equal(out[b], padded[:, dy : dy + 32, dx : dx + 32])
        ]
        assert len(matches) == 1
    assert not all(torch.equal(out[b], images[b]) for b in range(4))


def test_flip_mirrors_about_half_of_the_images():
    images = torch.randint(0, 256, (400, 1, 4, 4), generator=torch.Generator().manual_seed(1)).to(torch.uint8)
    out = augment(images, crop_padding=0, flip=True, generator=torch.Generator().manual_seed(0))
    flipped = [torch.equal(out[i], images[i].flip(2)) for i in range(400)]
    kept = [torch.equal(out[i], images[i]) for i in range(400)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 150 < sum(flipped) < 250


def test_augmentation_is_repeatable_under_a_seed_and_changes_pixels():
    images = torch.randint(0, 256, (16, 3, 32, 32), generator=torch.Generator().manual_seed(2)).to(torch.uint8)
    a = augment(images, crop_padding=4, flip=True, generator=torch.Generator().manual_seed(5))
    b = augment(images, crop_padding=4, flip=True, generator=torch.Generator().manual_seed(5))
    c = augment(images, crop_padding=4, flip=True, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, images)


def test_normalize_is_per_channel_standardisation():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    out = normalize(images, (0.0, 0.2, 0.5), (1.0, 0.5, 0.25))
    assert out.dtype == torch.float32
    assert out.flatten().tolist() == pytest.approx([0.0, 0.0, 2.0])


# --- the real data (CI installs Debian's dataset-fashion-mnist) --------------------------------


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_MNIST), reason="needs apt-get install dataset-fashion-mnist")
def test_debian_fashion_mnist_is_the_real_data_set():
    images, labels = load_dataset("fashion_mnist", train=False, download=False)
    assert images.shape == (10000, 1, 32, 32) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [1000] * 10
    assert labels[:5].tolist() == [9, 2, 1, 1, 6]  # the first five test labels of Fashion-MNIST
    assert images.shape[0] == DATASET_INFO["fashion_mnist"].test_size  # the registry's sizes are the files'
    assert (
        load_dataset("fashion_mnist", train=True, download=False)[1].numel() == DATASET_INFO["fashion_mnist"].train_size
    )
