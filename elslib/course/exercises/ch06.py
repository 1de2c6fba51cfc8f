"""Exercises of chapter 06: equivariance (circular shifts, the equivariant machine, shift-blind distances)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ... import sampling, schedules
from .framework import Case, CheckResult, Exercise, image_softmax_average
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 6.1 circular shift


def _ref_circular_shift(x, dy, dx):
    return torch.roll(x, (int(dy), int(dx)), (-2, -1))


def _shift_no_wrap(x, dy, dx):
    """The mistake of letting pixels fall off the edge (vacated pixels 0)."""
    from ...symmetry import shift

    return shift(x, dy, dx, mode="zeros", fill=0.0)


def check_circular_shift(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 6.1: ``circular_shift(x, dy, dx)`` -> out with out[..., i, j] = x[..., (i - dy) % H, (j - dx) % W].

    Compared with ``torch.roll(x, (dy, dx), dims=(-2, -1))``."""
    small = torch.arange(20, dtype=torch.float32).reshape(1, 1, 4, 5)
    batch = _images((2, 3, 4, 6), 70)
    hint = (
        "Pixel (i, j) moves to (i + dy, j + dx), wrapping around: out[..., i, j] = x[..., (i - dy) % H, (j - dx) % W]. "
        "Index with torch.arange(H).sub(dy).remainder(H) (and the same for the columns), or glue two slices "
        "together with torch.cat."
    )
    cases = []
    for what, x, dy, dx in [
        ("a 4x5 image of the numbers 0..19, shifted down 1 and right 2", small, 1, 2),
        ("the same image shifted up 1 and right 3 (a negative dy)", small, -1, 3),
        ("shifts larger than the image: dy = 7, dx = -6 on a 4x5 image", small, 7, -6),
        ("a batch of 2 images with 3 channels, 4x6, dy = 2, dx = 5", batch, 2, 5),
    ]:
        mistakes = [
            (
                _ref_circular_shift(x, -dy, -dx),
                "The shift goes the wrong way: a positive dy moves the picture *down*, so out[i] = x[i - dy].",
            ),
            (
                _ref_circular_shift(x, dx, dy),
                "dy and dx are swapped: dy moves along the rows (dimension -2), dx along the columns (dimension -1).",
            ),
            (
                _shift_no_wrap(x, dy, dx),
                "What leaves one side must come back on the other side (indices modulo H and W), not become 0.",
            ),
        ]
        cases.append(Case(what, (x, dy, dx), _ref_circular_shift(x, dy, dx), hint, mistakes=mistakes))
    return _run("6.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 6.2 equivariant denoiser


def _all_shifts_of(train):
    """Every circular shift of every training image: [N * H * W, C, H, W], image-major."""
    h, w = train.shape[-2:]
    return torch.stack(
        [torch.roll(y, (dy, dx), (-2, -1)) for y in train for dy in range(h) for dx in range(w)]
    ).contiguous()


def _ref_equivariant_denoiser(x_t, t, train, schedule):
    from ...machines import EquivariantDenoiser

    return EquivariantDenoiser(train, schedule=schedule, device="cpu")(x_t, t)


def check_equivariant_denoiser(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 6.2: ``equivariant_denoiser(x_t, t, train, schedule)``: the ideal denoiser of the
    training set enlarged by every circular shift of every image. Compared with
    ``elslib.machines.EquivariantDenoiser`` (which never builds the shifted images: it uses FFTs)."""
    cos = schedules.cosine()
    train = _images((3, 1, 5, 6), 72) * 2
    moved = torch.stack([torch.roll(train[0], (2, 3), (-2, -1)), torch.roll(train[2], (4, 1), (-2, -1))])
    x_mid = cos.add_noise(moved, 0.5, sampling.noise_like(moved.shape, seed=73))
    x_far = sampling.noise_like((2, 1, 5, 6), seed=74) * 3
    hint = (
        "List the candidates first: every circular shift torch.roll(y, (dy, dx), (-2, -1)) of every training image "
        "y, N * H * W of them. Then it is the ideal denoiser of chapter 03 on those candidates: "
        "w = softmax(-||x_t - a c||^2 / (2 s^2)) over the candidates c, and x0_hat = sum_c w_c c."
    )
    cases = []
    for what, x, t in [
        ("2 noisy shifted training images, 5x6, at t = 0.5", x_mid, 0.5),
        ("t = 0.9: many shifts share the weight", x_mid, 0.9),
        ("t = 0.05, far from every candidate (naive exp() underflows here)", x_far, 0.05),
    ]:
        a, s = cos.alpha(t), cos.sigma(t)
        shifted = _all_shifts_of(train)
        mistakes = [
            (
                image_softmax_average(x, train, a, 2 * s * s),
                "This is the ideal denoiser of chapter 03: the candidates must include every circular shift of every "
                "training image, not only the images as they are.",
            ),
            (
                image_softmax_average(x, shifted, 1.0, 2 * s * s),
                "Compare x_t with a c (the signal shrinks by a), not c.",
            ),
            (image_softmax_average(x, shifted, a, s * s), "The exponent is -d^2 / (2 s^2): the factor 2 is missing."),
        ]
        expected = _ref_equivariant_denoiser(x, t, train, cos)
        cases.append(Case(what, (x, t, train, cos), expected, hint, atol=1e-4, rtol=1e-3, mistakes=mistakes))
    cases.append(
        Case(
            "a *shifted* training image at t = 0.01 is (almost) a fixed point",
            (moved[:1] * cos.alpha(0.01), 0.01, train, cos),
            moved[:1].clone(),
            "At tiny t one candidate takes all the weight: the shifted training image itself. Did you include the "
            "shifts?",
            atol=1e-3,
        )
    )
    return _run("6.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 6.3 nearest shifted training image


def _ref_nearest_shifted(samples, train):
    """Brute force, one shift at a time: every training image shifted by (dy, dx), RMS distances."""
    h, w = train.shape[-2:]
    q = samples.flatten(1).double()
    best = torch.full((len(q),), float("inf"), dtype=torch.float64)
    index = torch.zeros(len(q), dtype=torch.long)
    shifts = torch.zeros(len(q), 2, dtype=torch.long)
    for dy in range(h):
        for dx in range(w):
            moved = torch.roll(train, (dy, dx), (-2, -1)).flatten(1).double()
            d, i = torch.cdist(q, moved, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1)
            better = d < best
            best = torch.where(better, d, best)
            index = torch.where(better, i, index)
            shifts[better] = torch.tensor([dy, dx])
    return (best / q.shape[1] ** 0.5).float(), index, shifts


def check_nearest_shifted_training_image(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 6.3: ``nearest_shifted_training_image(samples, train) -> (distances [B], indices [B],
    shifts [B, 2])``: the RMS distance to the closest circular shift of any training image, that
    image's index, and the shift (dy, dx) in [0, H) x [0, W) with sample ~ roll(train[index], (dy, dx)).
    Compared with a brute-force search over every shift."""
    train = _images((4, 1, 5, 6), 76) * 2
    copies = torch.stack([torch.roll(train[3], (2, 5), (-2, -1)), torch.roll(train[1], (0, 0), (-2, -1))])
    new = _images((3, 1, 5, 6), 77) * 2
    hint = (
        "Loop over the shifts (dy in range(H), dx in range(W)): shift every training image with torch.roll, compute "
        "the RMS distance sqrt(mean((sample - shifted)^2)) to each, and keep the smallest, which image it was and "
        "(dy, dx). Return distances [B], indices [B] and shifts [B, 2]."
    )
    cases = []
    for what, s in [
        ("two samples that are shifted copies of training images (one shifted by (0, 0))", copies),
        ("three new images", new),
    ]:
        d, i, sh = _ref_nearest_shifted(s, train)
        size = torch.tensor(s.shape[-2:])
        cases.append(
            Case(
                what,
                (s, train),
                (d, i, sh),
                hint,
                atol=1e-4,
                mistakes=[
                    ((d, i, (-sh) % size), "The shift goes the other way: report d with sample ~ roll(train[i], d)."),
                    ((d, i, sh.flip(1)), "Give the shift as (dy, dx): rows first, then columns."),
                    ((d**2, i, sh), "Return the distance, not its square."),
                    ((d * s[0].numel() ** 0.5, i, sh), "Average over the pixels: divide the summed squares by C*H*W."),
                ],
            )
        )
    return _run("6.3", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "6.1": Exercise("shift images circularly", check_circular_shift, _ref_circular_shift),
    "6.2": Exercise(
        "the equivariant denoiser: the ideal denoiser over every shift of every training image",
        check_equivariant_denoiser,
        _ref_equivariant_denoiser,
    ),
    "6.3": Exercise(
        "distance to the nearest circularly shifted training image",
        check_nearest_shifted_training_image,
        _ref_nearest_shifted,
    ),
}
