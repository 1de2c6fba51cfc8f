"""Exercises of chapter 07: the ELS machine (one output pixel of circular ELS, the calibration rule,
Pearson r)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ... import sampling, schedules
from ...calibration import best_patch_sizes
from .framework import Case, CheckResult, Exercise, _matches, softmax_average
from .framework import random_images as _images
from .framework import run_cases as _run


def _case(description, args, expected, hint, mistakes, **tolerance) -> Case:
    """A Case keeping only the known mistakes that give a different answer from the right one here
    (compared as floats, so that a fractional answer never passes by rounding to an integer)."""
    as_float = lambda v: v.double() if isinstance(v, torch.Tensor) else v  # noqa: E731
    kept = [(as_float(w), h) for w, h in mistakes if not _matches(as_float(w), expected)]
    return Case(description, args, expected, hint, mistakes=kept, **tolerance)


# --------------------------------------------------------------------------- 7.1 one pixel of circular ELS


def _ref_els_pixel(x_t, t, train, patch_size, row, col, schedule):
    """The library's circular ELS machine, read at one pixel: [B, C]."""
    from ...machines import ELSDenoiser

    den = ELSDenoiser(train, patch_size=int(patch_size), padding="circular", schedule=schedule, device="cpu")
    return den(x_t, t)[:, :, int(row), int(col)].clone()


def _els_pixel_brute(x_t, t, train, p, row, col, schedule, mode="circular", same_place=False, scale=None, temp=None):
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

    query = cut(x_t)[:, row * w + col]  # [B, C*P*P]
    keys = cut(train)  # [N, H*W, C*P*P]
    values = train.double().permute(0, 2, 3, 1).reshape(len(train), h * w, c)  # centres
    if same_place:
        keys, values = keys[:, row * w + col], values[:, row * w + col]
    keys, values = keys.reshape(-1, keys.shape[-1]), values.reshape(-1, c)
    return softmax_average(query, keys, values, scale, temp).to(x_t.dtype)


def check_els_pixel(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 7.1: ``els_pixel(x_t, t, train, patch_size, row, col, schedule) -> [B, C]``, the circular ELS
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
    return _run("7.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 7.2 the calibration rule


def _ref_calibrated_patch_sizes(similarity, sizes):
    """Plain Python: each seed's best size at each step (NaN = not tried), then the lower median."""
    sim = torch.as_tensor(similarity, dtype=torch.float64)
    n_seeds, n_steps, n_sizes = sim.shape
    out = []
    for i in range(n_steps):
        best = []
        for k in range(n_seeds):
            tried = [j for j in range(n_sizes) if not torch.isnan(sim[k, i, j])]
            j_best = max(tried, key=lambda j: float(sim[k, i, j]))  # first of equals, as argmax
            best.append(int(sizes[j_best]))
        best.sort()
        out.append(best[(len(best) - 1) // 2])
    return torch.tensor(out, dtype=torch.int64)


def _toy_similarity(seeds, steps, sizes, seed, holes=False):
    """Made-up cosine similarities with one peak per (seed, step), the peak drifting with the step."""
    gen = torch.Generator().manual_seed(seed)
    k = len(sizes)
    centre = torch.linspace(k - 1.5, 0.5, steps)[None, :] + 1.2 * torch.randn(seeds, steps, generator=gen)
    j = torch.arange(k, dtype=torch.float32)
    sim = (
        0.95 - 0.02 * (j[None, None, :] - centre[:, :, None]) ** 2 + 0.002 * torch.rand(seeds, steps, k, generator=gen)
    )
    if holes:  # a local search: far from the peak, nothing was measured
        tried = centre.round().clamp(0, k - 1)[:, :, None]
        sim[(j[None, None, :] - tried).abs() > 1] = float("nan")
    return sim


def check_calibrated_patch_sizes(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 7.2: ``calibrated_patch_sizes(similarity, sizes) -> int64 [steps]``. similarity is
    [seeds, steps, len(sizes)] (cosine similarity of the ELS output with each P to the network's, NaN
    where a size was not tried); for each seed and step pick the P with the largest similarity, then
    take the median over seeds (the lower middle value for an even number of seeds)."""
    sizes = [1, 3, 5, 7, 9, 11]
    hint = (
        "For each seed and step: the size whose similarity is largest (argmax over the last axis, then look the "
        "index up in sizes). Then, for each step, the median over the seeds of those sizes; with an even number "
        "of seeds take the lower of the two middle values (torch.median does), so the answer is always one of "
        "the sizes. Return an int64 tensor [steps]."
    )
    cases = []
    for what, seeds, steps, seed, holes in [
        ("one seed, 5 steps: the best size at each step", 1, 5, 90, False),
        ("three seeds, 6 steps: the median of the three best sizes", 3, 6, 91, False),
        ("four seeds, 8 steps: an even number of seeds takes the lower median", 4, 8, 92, False),
        ("five seeds, 10 steps, NaN where a size was not tried (a local search)", 5, 10, 93, True),
    ]:
        sim = _toy_similarity(seeds, steps, sizes, seed, holes)
        best = best_patch_sizes(sim, sizes)
        mistakes = [
            (
                torch.nan_to_num(sim, nan=-float("inf")).argmax(dim=2).median(dim=0).values,
                "These are positions in the list of sizes, not patch sizes: look them up, sizes[j].",
            ),
            (
                best.float().mean(dim=0),
                "That is the mean of the best sizes over seeds; the rule takes the median (robust to an odd seed, "
                "and always one of the sizes tried).",
            ),
            (
                torch.tensor(sizes)[torch.nan_to_num(sim.nanmean(dim=0), nan=-float("inf")).argmax(dim=1)],
                "You averaged the similarities over the seeds and then chose one size. The rule chooses a size for "
                "each seed first, then takes the median of those choices.",
            ),
            (
                torch.tensor(sizes)[torch.nan_to_num(sim, nan=float("inf")).argmin(dim=2)].median(dim=0).values,
                "The best size has the LARGEST cosine similarity (argmax), not the smallest.",
            ),
        ]
        if seeds % 2 == 0:
            upper = best.sort(dim=0).values[seeds // 2]
            mistakes.append((upper, "With an even number of seeds, take the LOWER of the two middle values."))
        if holes:
            mistakes.append(
                (
                    torch.tensor(sizes)[sim.argmax(dim=2)].median(dim=0).values,
                    "torch.argmax treats NaN as the largest value: replace NaN by -inf first "
                    "(torch.nan_to_num(similarity, nan=-float('inf'))).",
                )
            )
        # compared as floats, so that a fractional answer (a mean) cannot pass by rounding down
        expected = _ref_calibrated_patch_sizes(sim, sizes).double()
        cases.append(_case(what, (sim, list(sizes)), expected, hint, mistakes, atol=1e-9, rtol=0.0))
    return _run("7.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 7.3 Pearson r


def _ref_pearson_r(a, b):
    from ...metrics import pearson_r

    return pearson_r(a, b)


def check_pearson_r(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 7.3: ``pearson_r(a, b) -> [B]``, the Pearson correlation of image i of `a` with image i of
    `b` over their pixels (all channels). Compared with ``elslib.metrics.pearson_r``."""
    from ...metrics import cosine_similarity

    a = _images((4, 1, 6, 6), 95) * 2 - 0.6  # dark backgrounds, like digits: the mean matters
    noise = sampling.noise_like((4, 1, 6, 6), seed=96)
    b = 0.8 * a + 0.3 * noise - 0.2
    colour_a, colour_b = _images((3, 3, 4, 5), 97), _images((3, 3, 4, 5), 98)
    hint = (
        "For each pair of images: flatten both, subtract each image's own mean, then "
        "r = sum(a' b') / (||a'|| ||b'||). Return one r per image of the batch, shape [B]."
    )
    cases = []
    for what, x, y in [
        ("four noisy copies of images with dark backgrounds", a, b),
        ("b = 2 a + 3 (a perfect linear relation: r = 1)", a, 2 * a + 3),
        ("b = -a (r = -1)", a, -a),
        ("three pairs of unrelated 3-channel images", colour_a, colour_b),
    ]:
        expected = _ref_pearson_r(x, y)
        xf, yf = x.flatten(1).double(), y.flatten(1).double()
        xb, yb = xf - xf.mean(), yf - yf.mean()
        mistakes = [
            (
                cosine_similarity(x, y),
                "That is the cosine similarity (used to calibrate P): Pearson's r first subtracts each image's mean.",
            ),
            (expected**2, "That is r^2; return r itself (with its sign)."),
            (
                ((xb * yb).sum(1) / (xb.norm(dim=1) * yb.norm(dim=1))).float(),
                "Subtract each image's OWN mean (mean over its pixels, keepdim=True), not the mean of the whole batch.",
            ),
        ]
        cases.append(_case(what, (x, y), expected, hint, mistakes, atol=1e-5, rtol=1e-4))
    return _run("7.3", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "7.1": Exercise("one output pixel of the circular ELS machine", check_els_pixel, _ref_els_pixel),
    "7.2": Exercise(
        "the calibration rule: best patch size per seed, median over seeds",
        check_calibrated_patch_sizes,
        _ref_calibrated_patch_sizes,
    ),
    "7.3": Exercise("Pearson correlation between images", check_pearson_r, _ref_pearson_r),
}
