"""Larger datasets that are downloaded once and cached: full MNIST, Fashion-MNIST, CIFAR-10.

They are optional: the course runs on the offline sets. The cache folder is
``$ELS_DATA_DIR`` if set, else ``~/.cache/elslib``. Files are checked against their published
MD5 sums and parsed from their simple binary formats (IDX for the MNISTs, the fixed-length
"binary version" for CIFAR-10), so nothing is ever unpickled.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"

# name -> (base url, {file: md5}, class names)
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
}
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
}
CIFAR_FILES = {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# dataset name -> the files it needs in its cache folder
REMOTE_FILES = {"mnist-full": MNIST_FILES, "fashion-mnist": FASHION_FILES, "cifar10": CIFAR_FILES}


class DatasetUnavailable(RuntimeError):
    """A download-only dataset is neither cached nor reachable."""


def cache_dir() -> Path:
    """Where downloads are kept: ``$ELS_DATA_DIR`` or ``~/.cache/elslib``."""
    return Path(os.environ.get("ELS_DATA_DIR") or Path.home() / ".cache" / "elslib")


def is_cached(dataset: str) -> bool:
    """Whether every file of a download-only dataset is already in the cache (nothing is fetched)."""
    return all((cache_dir() / dataset / name).exists() for name in REMOTE_FILES[dataset])


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(dataset: str, base_url: str, files: dict[str, str], verify: bool = True) -> Path:
    """Make sure every file of `files` is in ``cache_dir()/dataset``; download what is missing.

    A cached file is trusted as it is when `verify` is False (tests write small files of the
    real format); downloads are always checked against their MD5 sums.
    """
    folder = cache_dir() / dataset
    for name, md5 in files.items():
        path = folder / name
        if path.exists() and (not verify or _md5(path) == md5):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        try:
            with urllib.request.urlopen(base_url + name, timeout=30) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise DatasetUnavailable(
                f"dataset {dataset!r} is not cached and could not be downloaded ({err}). "
                f"Either connect to the internet, or put {name} (from {base_url}) into {folder}. "
                f"The offline datasets 'mnist', 'digits', 'faces' and 'photos' always work."
            ) from err
        if _md5(partial) != md5:
            partial.unlink(missing_ok=True)
            raise DatasetUnavailable(f"{name} downloaded for {dataset!r} has the wrong checksum; try again")
        partial.replace(path)
    return folder


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped or not, into a numpy array.

    Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then each
    dimension as a big-endian uint32; the data follows in C order.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def read_cifar_binary(archive: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the five training batches of the CIFAR-10 binary archive without extracting it.

    Each record is 1 label byte then 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major).
    Returns images uint8 [N, 32, 32, 3] and labels int64 [N].
    """
    images, labels = [], []
    with tarfile.open(archive, "r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile() and Path(m.name).name.startswith("data_batch_")),
            key=lambda m: m.name,
        )
        if not members:
            raise ValueError(f"{archive} holds no data_batch_*.bin files")
        for member in members:
            raw = np.frombuffer(tar.extractfile(member).read(), dtype=np.uint8)
            if raw.size % 3073:
                raise ValueError(f"{member.name} is not a whole number of 3073-byte records")
            records = raw.reshape(-1, 3073)
            labels.append(records[:, 0].astype(np.int64))
            images.append(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(images), np.concatenate(labels)


def _mnist_like(dataset, base_url, files, classes):
    folder = fetch(dataset, base_url, files, verify=False)
    images = read_idx(folder / "train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz").astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"cached {dataset} files in {folder} are damaged: {images.shape} images but {labels.shape} labels; "
            "delete the folder and load again"
        )
    return images, labels, classes


def mnist_full():
    """All 60,000 MNIST training digits (download, about 10 MB)."""
    return _mnist_like("mnist-full", MNIST_URL, MNIST_FILES, [str(d) for d in range(10)])


def fashion_mnist():
    """The 60,000 Fashion-MNIST training images (download, about 30 MB)."""
    return _mnist_like("fashion-mnist", FASHION_URL, FASHION_FILES, FASHION_CLASSES)


def cifar10():
    """The 50,000 CIFAR-10 training images (download, about 160 MB)."""
    folder = fetch("cifar10", CIFAR_URL, CIFAR_FILES, verify=False)
    images, labels = read_cifar_binary(folder / "cifar-10-binary.tar.gz")
    return images.astype(np.float32) / 255.0, labels, CIFAR_CLASSES
