"""Exercises of chapter 11: counting patches, and the Gray-Scott model of morphogenesis."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ... import combinatorics, morphogenesis
from .framework import Case, CheckResult, Exercise
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 11.1 distinct patches


def _ref_distinct_patches_at(images, patch_size):
    return combinatorics.distinct_patches_per_position(images, patch_size)


def _with_duplicates(shape, seed: int, copies: int) -> torch.Tensor:
    """Random images in which the first `copies` are repeated, and rounded to a few grey levels
    so that equal patches also occur by chance, as in real digits with their blank background."""
    x = (_images(shape, seed) * 2).clamp(-1, 1)
    x = torch.where(x.abs() < 0.35, torch.full_like(x, -1.0), (x * 2).round() / 2)
    return torch.cat([x, x[:copies]])


def check_distinct_patches_at(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 11.1: ``distinct_patches_at(images, patch_size) -> [H, W]``: at each pixel, how many
    different P x P patches (zero padded, centred on the pixel) the images have. Compared with
    ``elslib.combinatorics.distinct_patches_per_position``."""
    grey = _with_duplicates((5, 1, 5, 6), 80, 2)
    blank_top = grey.clone()
    blank_top[:, :, :2] = -1.0  # every image blank in the top two rows
    colour = _with_duplicates((4, 3, 4, 4), 81, 1)
    colour[:, 0] = colour[0, 0]  # every image has the same first channel: only the others tell them apart
    hint = (
        "Pad each image with P // 2 zeros on every side (F.pad(images, (r, r, r, r))), cut the P x P patch "
        "centred on pixel (i, j) of every image, flatten each to a vector (all channels), and count the distinct "
        "rows with torch.unique(patches, dim=0).shape[0]. The result has one count per pixel, shape [H, W]."
    )
    cases = []
    for what, x, p in [
        ("P = 1: distinct pixel values at each pixel", grey, 1),
        ("5 grey images + 2 copies, P = 3", grey, 3),
        ("the same images with a blank top: few distinct patches up there", blank_top, 3),
        ("colour images (3 channels) that differ only in channels 2 and 3, P = 3", colour, 3),
    ]:
        n, _, h, w = x.shape
        counts = _ref_distinct_patches_at(x, p)
        r = p // 2
        no_pad = counts[r : h - r, r : w - r] if r else counts
        mistakes = [
            (torch.full((h, w), float(n)), "Count the *distinct* patches: copies of the same patch count once."),
            (
                no_pad.double(),
                "Pad the images first: with P // 2 pixels of zeros around them every pixel, the border too, "
                "has a patch, and the result is [H, W].",
            ),
        ]
        if x.shape[1] > 1:
            first = _ref_distinct_patches_at(x[:, :1].contiguous(), p).double()
            mistakes.append((first, "A patch holds all channels: flatten the [C, P, P] patch, not one channel."))
        cases.append(Case(what, (x, p), counts.double(), hint, atol=1e-9, rtol=0.0, mistakes=mistakes))
    return _run("11.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 11.2 laplacian


def _ref_laplacian(f):
    out = morphogenesis.laplacian(torch.as_tensor(f, dtype=torch.float64).numpy())
    return torch.from_numpy(out)


def _zero_padded_laplacian(f):
    f = torch.as_tensor(f, dtype=torch.float64)
    p = F.pad(f[None, None], (1, 1, 1, 1))[0, 0]
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * f


def check_laplacian(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 11.2: ``laplacian(f) -> [H, W]``, the 5-point Laplacian on a periodic grid:
    f[i+1, j] + f[i-1, j] + f[i, j+1] + f[i, j-1] - 4 f[i, j], indices wrapping around."""
    h, w = 8, 10
    i, j = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    wave = torch.cos(2 * math.pi * (2 * i / h + 3 * j / w))
    eig = 2 * math.cos(2 * math.pi * 2 / h) + 2 * math.cos(2 * math.pi * 3 / w) - 4
    corner = torch.zeros(5, 6, dtype=torch.float64)
    corner[0, 0] = 1.0
    noise = torch.from_numpy(np.random.default_rng(82).standard_normal((6, 7)))
    hint = (
        "Add the four neighbours and subtract 4 times the centre. Periodic means the grid wraps around: "
        "torch.roll(f, shifts=1, dims=0) is f[i - 1, j] with row -1 taken from the last row."
    )
    cases = []
    for what, f, expected in [
        (
            "a plane wave cos(2 pi (2i/8 + 3j/10)): the answer is (2cos(2pi 2/8) + 2cos(2pi 3/10) - 4) f",
            wave,
            eig * wave,
        ),
        ("a single 1 in the corner (its neighbours wrap around)", corner, _ref_laplacian(corner)),
        ("random values on a 6 x 7 grid", noise, _ref_laplacian(noise)),
    ]:
        mistakes = [
            (_zero_padded_laplacian(f), "The grid is periodic: wrap around (torch.roll), do not pad with zeros."),
            (-expected, "Mind the sign: neighbours count +1 each, the centre -4."),
            (expected + 4 * f, "Subtract 4 times the centre value (the Laplacian of a constant is 0)."),
        ]
        cases.append(Case(what, (f,), expected, hint, atol=1e-9, rtol=1e-9, mistakes=mistakes))
    return _run("11.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 11.3 gray-scott step


def _ref_gray_scott_step(u, v, feed, kill, du, dv, dt):
    u2, v2 = morphogenesis.step(
        torch.as_tensor(u, dtype=torch.float64).numpy(),
        torch.as_tensor(v, dtype=torch.float64).numpy(),
        feed,
        kill,
        du,
        dv,
        dt,
    )
    return torch.from_numpy(u2), torch.from_numpy(v2)


def check_gray_scott_step(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 11.3: ``gray_scott_step(u, v, feed, kill, du, dv, dt) -> (u_next, v_next)``: one
    explicit Euler step of the Gray-Scott equations on a periodic grid. Compared with
    ``elslib.morphogenesis.step``."""
    rng = np.random.default_rng(83)
    u = torch.from_numpy(rng.uniform(0.3, 1.0, (6, 7)))
    v = torch.from_numpy(rng.uniform(0.0, 0.4, (6, 7)))
    u_flat, v_flat = torch.full((5, 5), 0.6, dtype=torch.float64), torch.full((5, 5), 0.2, dtype=torch.float64)
    hint = (
        "u_next = u + dt (du lap(u) - u v^2 + F (1 - u)) and v_next = v + dt (dv lap(v) + u v^2 - (F + k) v), "
        "with the periodic 5-point Laplacian of exercise 11.2 written inside the function (torch.roll)."
    )
    cases = []
    for what, args in [
        ("random fields, the stripes preset, dt = 1", (u, v, 0.04, 0.06, 0.16, 0.08, 1.0)),
        ("uniform fields: no diffusion, only the reaction", (u_flat, v_flat, 0.03, 0.062, 0.16, 0.08, 1.0)),
        ("random fields, other rates and dt = 0.5", (u, v, 0.025, 0.05, 0.2, 0.1, 0.5)),
    ]:
        uu, vv, f, k, du, dv, dt = args
        expected = _ref_gray_scott_step(*args)
        uvv = uu * vv * vv
        lap = lambda a: _ref_laplacian(a)
        mistakes = [
            (
                (uu + dt * (du * lap(uu) - uvv + f * (1 - uu)), vv + dt * (dv * lap(vv) + uvv - f * vv)),
                "v is removed at rate F + k (feed plus kill), not F alone.",
            ),
            (
                (uu + dt * (du * lap(uu) + uvv + f * (1 - uu)), vv + dt * (dv * lap(vv) - uvv - (f + k) * vv)),
                "Signs of the reaction: u + 2v -> 3v uses up u (-u v^2 in u) and makes v (+u v^2 in v).",
            ),
            (
                (uu + du * lap(uu) - uvv + f * (1 - uu), vv + dv * lap(vv) + uvv - (f + k) * vv),
                "Multiply the whole rate by dt: x_next = x + dt * (rate of x).",
            ),
            (
                (
                    uu + dt * (du * _zero_padded_laplacian(uu) - uvv + f * (1 - uu)),
                    vv + dt * (dv * _zero_padded_laplacian(vv) + uvv - (f + k) * vv),
                ),
                "The grid is periodic: the Laplacian wraps around (torch.roll), it does not pad with zeros.",
            ),
        ]
        cases.append(Case(what, args, expected, hint, atol=1e-9, rtol=1e-9, mistakes=mistakes))
    return _run("11.3", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "11.1": Exercise(
        "count the distinct training patches centred on each pixel", check_distinct_patches_at, _ref_distinct_patches_at
    ),
    "11.2": Exercise("the 5-point Laplacian on a periodic grid", check_laplacian, _ref_laplacian),
    "11.3": Exercise("one Euler step of the Gray-Scott model", check_gray_scott_step, _ref_gray_scott_step),
}
