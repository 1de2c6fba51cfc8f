"""Exercises of chapter 08: ELS predicts the CNN (the calibration rule, Pearson r)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ... import sampling
from ...calibration import best_patch_sizes
from .ch07 import _case
from .framework import CheckResult, Exercise
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 8.1 the calibration rule


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
    """Exercise 8.1: ``calibrated_patch_sizes(similarity, sizes) -> int64 [steps]``. similarity is
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
        # int64, as the exercise asks; a fractional answer (a mean) is reported, never rounded
        expected = _ref_calibrated_patch_sizes(sim, sizes)
        cases.append(_case(what, (sim, list(sizes)), expected, hint, mistakes, atol=1e-9, rtol=0.0))
    return _run("8.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 8.2 Pearson r


def _ref_pearson_r(a, b):
    from ...metrics import pearson_r

    return pearson_r(a, b)


def check_pearson_r(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 8.2: ``pearson_r(a, b) -> [B]``, the Pearson correlation of image i of `a` with image i of
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
    return _run("8.2", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "8.1": Exercise(
        "the calibration rule: best patch size per seed, median over seeds",
        check_calibrated_patch_sizes,
        _ref_calibrated_patch_sizes,
    ),
    "8.2": Exercise("Pearson correlation between images", check_pearson_r, _ref_pearson_r),
}
