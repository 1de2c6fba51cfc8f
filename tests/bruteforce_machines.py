"""Brute-force score machines, written straight from the definitions (table: docs/architecture.md).

Plain Python loops over output pixels and candidates, float64 numpy, no cleverness: no
expansion of squares, no FFT, no deduplication, no chunking. Slow; for tiny problems only.

``brute(kind, train, x_t, t, ...)`` returns the output [B, C, H, W] and, per batch element and
pixel, a dict {place: weight} over the candidates, where place = (training image, row, col) of
the pixel whose value the candidate contributes. Identical candidates at different places keep
separate entries; the same place is never reached twice for one pixel.
"""

from __future__ import annotations

import math

import numpy as np


def patch(img: np.ndarray, i: int, j: int, p: int, padding: str) -> np.ndarray:
    """The P x P patch of img [C, H, W] centred on (i, j), flattened (channel, dy, dx)."""
    c, h, w = img.shape
    r = p // 2
    out = np.zeros((c, p, p))
    for di in range(p):
        for dj in range(p):
            ii, jj = i + di - r, j + dj - r
            if padding == "circular":
                out[:, di, dj] = img[:, ii % h, jj % w]
            elif 0 <= ii < h and 0 <= jj < w:
                out[:, di, dj] = img[:, ii, jj]
            # else: zero padding, the value 0
    return out.ravel()


def softmax_weights(dist2: list[float], s2: float) -> np.ndarray:
    """w = softmax(-dist2 / (2 s2)); at s2 = 0 the limit: uniform over the nearest candidates."""
    d = np.asarray(dist2, dtype=np.float64)
    if s2 == 0.0:
        w = (d == d.min()).astype(np.float64)
        return w / w.sum()
    z = -d / (2.0 * s2)
    z = z - z.max()
    w = np.exp(z)
    return w / w.sum()


def allowed_images(n: int, labels, label) -> list[int]:
    if label is None:
        return list(range(n))
    return [k for k in range(n) if int(labels[k]) == int(label)]


def candidates(kind: str, train: np.ndarray, images: list[int], i: int, j: int, p, padding, cache: dict):
    """Yield (key, value, place) of every candidate of output pixel (i, j).

    `cache` memoises training patches and shifted images (the same ones recur for every pixel).
    """
    _, _, h, w = train.shape

    def train_patch(n, ii, jj, pad):
        key = ("patch", n, ii, jj, pad)
        if key not in cache:
            cache[key] = patch(train[n], ii, jj, p, pad)
        return cache[key]

    if kind == "ideal":
        for n in images:
            yield train[n].ravel(), train[n][:, i, j], (n, i, j)
    elif kind == "local":
        for n in images:
            yield train_patch(n, i, j, "zeros"), train[n][:, i, j], (n, i, j)
    elif kind == "equivariant":
        for n in images:
            for di in range(h):
                for dj in range(w):
                    key = ("roll", n, di, dj)
                    if key not in cache:
                        cache[key] = np.roll(train[n], (di, dj), axis=(1, 2))  # shifted[u] = y[u - d]
                    shifted = cache[key]
                    yield shifted.ravel(), shifted[:, i, j], (n, (i - di) % h, (j - dj) % w)
    elif kind == "els":
        r = p // 2
        if padding == "circular":
            rows, cols = range(h), range(w)
        else:
            rows = [i] if (i < r or i > h - 1 - r) else range(r, h - r)
            cols = [j] if (j < r or j > w - 1 - r) else range(r, w - r)
        for n in images:
            for ii in rows:
                for jj in cols:
                    yield train_patch(n, ii, jj, padding), train[n][:, ii, jj], (n, ii, jj)
    else:
        raise ValueError(kind)


def query(kind: str, x: np.ndarray, i: int, j: int, p: int | None, padding: str | None) -> np.ndarray:
    if kind in ("ideal", "equivariant"):
        return x.ravel()
    return patch(x, i, j, p, "zeros" if kind == "local" else padding)


def brute(kind, train, x_t, t, schedule, p=None, padding=None, labels=None, label=None):
    """Reference output [B, C, H, W] (float64) and per-pixel {place: weight} dicts [B][H][W].

    train, x_t: numpy or torch arrays; t: float or sequence (one per batch element);
    label: None, an int, or one per batch element.
    """
    train = np.asarray(train, dtype=np.float64)
    x_t = np.asarray(x_t, dtype=np.float64)
    b, c, h, w = x_t.shape
    ts = [float(t)] * b if np.ndim(t) == 0 else [float(v) for v in t]
    labs = [label] * b if (label is None or np.ndim(label) == 0) else list(label)
    out = np.zeros_like(x_t)
    places, cache = [], {}
    for k in range(b):
        a, s = schedule.alpha(ts[k]), schedule.sigma(ts[k])
        s2 = s * s
        images = allowed_images(train.shape[0], labels, labs[k])
        per_pixel = []
        for i in range(h):
            row = []
            for j in range(w):
                q = query(kind, x_t[k], i, j, p, padding)
                dist2, values, where = [], [], []
                for key, value, place in candidates(kind, train, images, i, j, p, padding, cache):
                    dist2.append(float(np.sum((q - a * key) ** 2)))
                    values.append(value)
                    where.append(place)
                wts = softmax_weights(dist2, s2)
                out[k, :, i, j] = np.sum(wts[:, None] * np.asarray(values), axis=0)
                assert len(set(where)) == len(where)
                row.append(dict(zip(where, wts, strict=True)))
            per_pixel.append(row)
        places.append(per_pixel)
    return out, places


def n_eff(weights: dict) -> float:
    """exp(entropy) of one pixel's candidate weights."""
    w = np.asarray(list(weights.values()))
    w = w[w > 0]
    return math.exp(-float(np.sum(w * np.log(w))))
