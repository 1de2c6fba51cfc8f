"""Comparing images: correlation, cosine similarity, distance to the training set; softmax spread;
whether samples read as digits (the digit reader's verdict and a Frechet distance).

The comparisons take batches [B, C, H, W] and compare image i of one batch with image i of the
other, returning one number per image ([B] tensors); ``recognisable`` and ``frechet_distance``
judge whole sets of digit images and return one number.
"""

from __future__ import annotations

import torch

from .checks import check_images, check_number, check_positive_int, is_integer


def _pair(a: torch.Tensor, b: torch.Tensor):
    check_images(a, "a")
    check_images(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a.flatten(1).double(), b.to(a.device).flatten(1).double()


def pearson_r(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each pair of images over their pixels: [B] in [-1, 1].

    This is what the paper's Table 1 reports (it calls it r^2, but its code computes r);
    square it yourself for r^2, and always say which one you report.
    """
    a, b = _pair(a, b)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)).float()


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle between each pair of images seen as vectors: [B] (used to calibrate)."""
    a, b = _pair(a, b)
    return ((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)).float()


def nearest_neighbours(x: torch.Tensor, train: torch.Tensor, chunk: int = 4096):
    """For each image in x, the closest training image in RMS pixel distance.

    Returns (distances [B] = sqrt(mean squared difference over pixels), indices [B]). A sample
    that copies a training image has distance ~0; on MNIST in [-1, 1], two different digits
    are typically 0.5 or more apart.
    """
    check_images(x, "x")
    check_images(train, "train", channels=x.shape[1], size=tuple(x.shape[-2:]))
    if len(train) == 0:
        raise ValueError("train must hold at least one image, got an empty batch")
    chunk = check_positive_int(chunk, "chunk")
    q = x.flatten(1).double()
    best = torch.full((len(q),), float("inf"), dtype=torch.float64, device=q.device)
    index = torch.zeros(len(q), dtype=torch.long, device=q.device)
    for start in range(0, len(train), chunk):
        k = train[start : start + chunk].flatten(1).double().to(q.device)
        d2 = (q * q).sum(1, keepdim=True) - 2 * q @ k.T + (k * k).sum(1)[None, :]
        d, i = d2.min(dim=1)
        better = d < best
        best = torch.where(better, d, best)
        index = torch.where(better, i + start, index)
    # |q|^2 - 2 q.k + |k|^2 loses digits to cancellation (a copy would come out at ~1e-8, not 0):
    # the GEMM finds the nearest image, the distance to it is then computed directly.
    nearest = train[index.to(train.device)].flatten(1).double().to(q.device)
    return ((q - nearest) ** 2).mean(dim=1).sqrt().float(), index


def effective_number(weights: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """How many candidates a set of softmax weights really uses: exp(entropy of the weights).

    weights: any shape, summing to 1 along `dim`; returns that shape without `dim` (float64).
    Equal weights on k candidates give k; all weight on one candidate gives 1. This is the same
    count as the ``n_eff`` of a machine's ``explain``.
    """
    try:
        w = torch.as_tensor(weights).double()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"weights must be a tensor of softmax weights, got {type(weights).__name__}") from err
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and >= 0 (softmax weights), got negative or non-finite entries")
    dims = max(w.dim(), 1)
    if not is_integer(dim) or not -dims <= dim < dims:
        raise ValueError(f"dim must be an axis of weights (from {-dims} to {dims - 1}), got {dim!r}")
    total = w.sum(dim=dim)
    if ((total - 1.0).abs() > 1e-3).any():
        worst = float(total[(total - 1.0).abs().argmax()] if total.dim() else total)
        raise ValueError(f"weights must sum to 1 along dim={dim} (softmax weights), got a sum of {worst:.4g}")
    entropy = -(w * torch.log(w.clamp_min(1e-300))).sum(dim=dim)
    return torch.exp(entropy)


def recognisable(images: torch.Tensor, threshold: float | None = None, reader=None) -> float:
    """The fraction of digit images [B, 1, 32, 32] that the shipped digit reader (:mod:`elslib.reader`)
    assigns to one class with probability above `threshold` (default 0.8, ``reader.THRESHOLD``).

    Real digits the reader never saw set the scale: ``reader.metadata()["held_out_recognisable"]``.
    """
    from . import reader as _reader

    threshold = _reader.THRESHOLD if threshold is None else check_number(threshold, "threshold", low=0.0)
    if threshold >= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1), got {threshold!r}")
    if isinstance(images, torch.Tensor) and images.dim() == 4 and len(images) == 0:
        raise ValueError("images must hold at least one image: the fraction of an empty set is undefined")
    _, confidence = _reader.read(images, reader)
    return float((confidence > threshold).double().mean())


def frechet_distance(a: torch.Tensor, b: torch.Tensor, reader=None) -> float:
    """Frechet distance between the digit reader's features of two sets of images [N, 1, 32, 32].

    Each set's features are summarised by their mean mu and covariance S (a Gaussian), and
    FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the 2-Wasserstein distance between
    the two Gaussians: 0 for the same set, larger the more the sets differ. Like the FID (which
    uses Inception features), it depends on the number of images: compare sets of equal size.
    """
    from . import reader as _reader

    fa, fb = _reader.features(a, reader, name="a"), _reader.features(b, reader, name="b")
    for f, name in ((fa, "a"), (fb, "b")):
        if f.shape[0] < 2:
            raise ValueError(f"{name} must hold at least 2 images to estimate a covariance, got {f.shape[0]}")
    return gaussian_frechet(fa.mean(0), torch.cov(fa.T), fb.mean(0), torch.cov(fb.T))


def gaussian_frechet(mu_a, cov_a, mu_b, cov_b) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) in float64, for PSD covariances [D, D].

    tr (S_a S_b)^(1/2) = sum of the square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2),
    a symmetric matrix with the same eigenvalues as S_a S_b (two symmetric eigendecompositions,
    no general matrix square root).
    """
    mu_a, mu_b, cov_a, cov_b = (torch.as_tensor(v, dtype=torch.float64) for v in (mu_a, mu_b, cov_a, cov_b))
    d = mu_a.shape[0] if mu_a.dim() == 1 else -1
    for value, name, shape in (
        (mu_a, "mu_a", (d,)),
        (mu_b, "mu_b", (d,)),
        (cov_a, "cov_a", (d, d)),
        (cov_b, "cov_b", (d, d)),
    ):
        if tuple(value.shape) != shape or d < 1:
            want = "a vector [D]" if len(shape) == 1 else f"a covariance matrix [{d}, {d}] (D = len(mu_a))"
            raise ValueError(f"{name} must be {want}, got shape {tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    lam, vec = torch.linalg.eigh(cov_a)
    root_a = (vec * lam.clamp_min(0).sqrt()) @ vec.T
    middle = root_a @ cov_b @ root_a
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)
