"""Exercises of chapter 07: the ELS machine (the boundary rule of the zero-padded machine, one output
pixel of circular ELS)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ... import sampling, schedules
from .framework import Case, CheckResult, Exercise, _matches, softmax_average
from .framework import random_images as _images
from .framework import run_cases as _run


def _case(description, args, expected, hint, mistakes, **tolerance) -> Case:
    """A Case keeping only the known mistakes that give a different answer from the right one here
    (compared as floats, so that a fractional answer never passes by rounding to an integer)."""
    as_float = lambda v: v.double() if isinstance(v, torch.Tensor) else v  # noqa: E731
    kept = [(as_float(w), h) for w, h in mistakes if not _matches(as_float(w), expected)]
    return Case(description, args, expected, hint, mistakes=kept, **tolerance)


# --------------------------------------------------------------------------- 7.2 one pixel of circular ELS


def _ref_els_pixel(x_t, t, train, patch_size, row, col, schedule):
    """The library's circular ELS machine, read at one pixel: [B, C]."""
    from ...machines import ELSDenoiser

    den = ELSDenoiser(train, patch_size=int(patch_size), padding="circular", schedule=schedule, device="cpu")
    return den(x_t, t)[:, :, int(row), int(col)].clone()


def _els_pixel_brute(
    x_t, t, train, p, row, col, schedule, mode="circular", same_place=False, scale=None, temp=None, corner=False, axis=1
):
    """Brute force in float64: every P x P patch of every training image is a candidate key, its
    centre the value; also builds the wrong answers (zero padding, one place only, no a, no 2)."""
    sched = schedules.get(schedule)
    a, s = sched.alpha(t), sched.sigma(t)
    scale = a if scale is None else scale
    temp = 2 * s * s if temp is None else temp
    r = p // 2
    h, w = train.shape[-2:]
    c = train.shape[1]

    def cut(x):  # [B, C, H, W] -> [B, H*W, C*P*P]: the window around every pixel
        padded = F.pad(x.double(), (r, r, r, r), mode="circular" if mode == "circular" else "constant")
        return F.unfold(padded, p).transpose(1, 2)

    # corner: the mistake of taking the window whose top-left (not centre) is (row, col)
    qr, qc = ((row + r) % h, (col + r) % w) if corner else (row, col)
    query = cut(x_t)[:, qr * w + qc]  # [B, C*P*P]
    keys = cut(train)  # [N, H*W, C*P*P]
    values = train.double().permute(0, 2, 3, 1).reshape(len(train), h * w, c)  # centres
    if same_place:
        keys, values = keys[:, row * w + col], values[:, row * w + col]
    keys, values = keys.reshape(-1, keys.shape[-1]), values.reshape(-1, c)
    if axis == 0:  # the mistake of a softmax across the batch instead of across the candidates
        d2 = ((query[:, None, :] - scale * keys[None]) ** 2).sum(-1)
        return (torch.softmax(-d2 / temp, dim=0) @ values.double()).to(x_t.dtype)
    return softmax_average(query, keys, values, scale, temp).to(x_t.dtype)


def check_els_pixel(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 7.2: ``els_pixel(x_t, t, train, patch_size, row, col, schedule) -> [B, C]``, the circular ELS
    machine's output at one pixel: a softmax over every wrapped P x P patch of every training image, at
    every position. Compared with ``elslib.machines.ELSDenoiser(train, patch_size, padding="circular")``."""
    cos = schedules.cosine()
    train = _images((4, 1, 6, 6), 80) * 2
    x_mid = cos.add_noise(torch.roll(train[[1, 3]], (2, -1), (-2, -1)), 0.5, sampling.noise_like((2, 1, 6, 6), seed=81))
    x_far = sampling.noise_like((2, 1, 6, 6), seed=82) * 3
    colour = _images((3, 2, 5, 7), 83) * 2
    x_colour = cos.add_noise(colour[:2], 0.4, sampling.noise_like((2, 2, 5, 7), seed=84))
    hint = (
        "Cut the P x P window around (row, col) out of x_t, wrapping around the edges (the query). The candidates "
        "are the wrapped P x P windows around EVERY pixel of EVERY training image (N H W of them), and each one's "
        "value is its centre pixel. Then w = softmax(-||query - a key||^2 / (2 s^2)) over the candidates and the "
        "answer is sum_c w_c value_c, one value per channel. torch.nn.functional.pad(x, (r, r, r, r), "
        "mode='circular') and torch.nn.functional.unfold(padded, P) cut every window at once."
    )
    cases = []
    for what, args in [
        ("an interior pixel (2, 3) of 6x6 images, P = 3, t = 0.5", (x_mid, 0.5, train, 3, 2, 3, cos)),
        (
            "the corner pixel (0, 5): its window wraps around two edges, P = 3, t = 0.5",
            (x_mid, 0.5, train, 3, 0, 5, cos),
        ),
        ("P = 5 at the edge pixel (5, 2), t = 0.9 (many patches share the weight)", (x_mid, 0.9, train, 5, 5, 2, cos)),
        ("t = 0.05, far from every patch (naive exp() underflows here)", (x_far, 0.05, train, 3, 1, 1, cos)),
        ("two channels, 5x7 images, pixel (4, 6), P = 3, t = 0.4", (x_colour, 0.4, colour, 3, 4, 6, cos)),
    ]:
        x, t, tr, p, row, col, sched = args
        s = sched.sigma(t)
        brute = lambda **kw: _els_pixel_brute(x, t, tr, p, row, col, sched, **kw)  # noqa: B023
        mistakes = [
            (
                brute(same_place=True),
                "Only the patches at the same place (row, col) took part: that is the local machine of chapter 05. "
                "Equivariance makes every position of every training image a candidate.",
            ),
            (
                brute(mode="zeros"),
                "The windows were zero padded. This is the circular machine: windows wrap around the edges, for the "
                "query and for the training patches alike (the wrapped training patches are candidates too).",
            ),
            (brute(scale=1.0), "Compare the query with a * key (the signal shrinks by a), not with the key itself."),
            (
                brute(corner=True),
                "Your query window is not centred on (row, col): after padding by r, the window whose top-left "
                "corner is (row, col) is the one centred on (row, col); unfold's window number row * W + col is it.",
            ),
            (
                brute(axis=0),
                "The softmax ran over the wrong axis: for each noisy image the weights of all N H W candidate "
                "patches must sum to 1 (softmax over the candidates, dim=1), not across the batch.",
            ),
            (brute(temp=s * s), "The exponent is -d^2 / (2 s^2): the factor 2 is missing."),
        ]
        cases.append(_case(what, args, _ref_els_pixel(*args), hint, mistakes, atol=1e-4, rtol=1e-3))
    cases.append(
        Case(
            "a shifted training image at t = 0.01 gives back its own pixel",
            (torch.roll(train[2:3], (1, 2), (-2, -1)) * cos.alpha(0.01), 0.01, train, 3, 3, 4, cos),
            torch.roll(train[2:3], (1, 2), (-2, -1))[:, :, 3, 4].clone(),
            "At tiny t one patch takes all the weight: the patch of the (shifted) training image itself. "
            "Return the centre values, one per channel, shape [B, C].",
            atol=1e-3,
        )
    )
    return _run("7.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 7.1 the boundary rule


def _ref_candidate_positions(row, col, patch_size, size):
    """The library's rule (machines.els.axis_classes), one axis at a time: [H, W] bool."""
    from ...machines.els import axis_classes

    r = int(patch_size) // 2

    def axis(i: int, n: int) -> torch.Tensor:
        own = next(c for c in axis_classes(n, r) if i in c)
        out = torch.zeros(n, dtype=torch.bool)
        out[own] = True
        return out

    h, w = size
    return axis(int(row), h)[:, None] & axis(int(col), w)[None, :]


def _positions_brute(row, col, p, size, inner=lambda i, n, r: r <= i < n - r, edge_own=True):
    """Straight from the definition, with switches that build the known mistakes."""
    h, w = size
    r = p // 2

    def axis(i, n):
        if inner(i, n, r):
            return [inner(j, n, r) for j in range(n)]
        return [j == i if edge_own else inner(j, n, r) or j == i for j in range(n)]

    return torch.tensor(axis(row, h))[:, None] & torch.tensor(axis(col, w))[None, :]


def check_candidate_positions(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 7.1: ``candidate_positions(row, col, patch_size, size) -> bool [H, W]``: where the training
    patches that compete for output pixel (row, col) of the boundary-broken (zero-padded) ELS machine may be
    centred. Per axis: a coordinate closer than P // 2 to an edge allows only itself; an interior one allows
    every interior coordinate. Compared with the rule of ``elslib.machines.ELSDenoiser(padding="zeros")``."""
    hint = (
        "Decide each axis on its own, then combine them: mask = rows[:, None] & cols[None, :]. On an axis of "
        "length n with r = P // 2, a coordinate i with r <= i < n - r is interior and allows every interior "
        "coordinate; any other coordinate allows only itself."
    )
    cases = []
    for what, args in [
        ("an interior pixel (16, 12) of a 32x32 image, P = 7", (16, 12, 7, (32, 32))),
        ("pixel (1, 20): near the top edge, interior across, P = 7", (1, 20, 7, (32, 32))),
        ("the corner pixel (30, 2), P = 7: only its own position", (30, 2, 7, (32, 32))),
        ("the first interior row, pixel (3, 3) of a 12x9 image, P = 7", (3, 3, 7, (12, 9))),
        ("P = 1: every pixel is interior", (0, 8, 1, (6, 9))),
        ("P = 13 on a 10x10 image: no interior at all", (5, 4, 13, (10, 10))),
    ]:
        row, col, p, size = args
        mistakes = [
            (
                torch.ones(size, dtype=torch.double),
                "Every position is allowed here: that is the circular machine. With zero padding a pixel near an "
                "edge can tell where it is, so it may use only patches at its own coordinate on that axis.",
            ),
            (
                _positions_brute(row, col, p, size, edge_own=False).double(),
                "A coordinate near an edge allows ONLY itself, not the interior as well.",
            ),
            (
                _positions_brute(row, col, p, size, inner=lambda i, n, r: r < i < n - 1 - r).double(),
                "Off by one: the interior of an axis is r <= i < n - r (the window just fits inside the frame).",
            ),
            (
                _positions_brute(row, col, p, size, inner=lambda i, n, r: 2 * r + 1 <= i < n - 2 * r - 1).double(),
                "The distance to the edge is compared with the radius r = P // 2, not with P.",
            ),
        ]
        expected = _ref_candidate_positions(*args).double()
        cases.append(_case(what, args, expected, hint, mistakes, atol=0.0, rtol=0.0))
    return _run("7.1", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "7.1": Exercise(
        "where the candidate patches of the boundary-broken ELS machine may be centred",
        check_candidate_positions,
        _ref_candidate_positions,
    ),
    "7.2": Exercise("one output pixel of the circular ELS machine", check_els_pixel, _ref_els_pixel),
}
