"""Exercises of chapter 12: from digits to text-to-image (the CLIP loss, classifier-free guidance)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...denoisers import Guided
from .ch07 import _case
from .framework import CheckResult, Exercise
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 12.1 the symmetric InfoNCE loss


def _log_softmax_diagonal(rows: np.ndarray) -> np.ndarray:
    """log( exp(S_ii) / sum_j exp(S_ij) ) of each row i, in float64, the largest entry subtracted first."""
    top = rows.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(rows - top).sum(axis=1)) + top[:, 0]
    return np.diag(rows) - log_sum


def _ref_infonce(sims):
    """The symmetric InfoNCE loss of a [B, B] matrix of (scaled) similarities, image i against caption j.

    Computed independently of torch's cross-entropy: numpy, float64, one log-softmax per row of S
    (each image picks its caption) and per row of S^T (each caption picks its image).
    """
    s = np.asarray(torch.as_tensor(sims).detach().cpu().double())
    images_pick = -_log_softmax_diagonal(s).mean()
    captions_pick = -_log_softmax_diagonal(s.T).mean()
    return float((images_pick + captions_pick) / 2)


def check_infonce(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 12.1: ``infonce(sims) -> float``: the symmetric InfoNCE loss of a square matrix of similarities
    (row i: image i, column j: caption j, the matching pairs on the diagonal), the mean of the cross-entropy of
    each row and of each column with its diagonal entry as the right answer, averaged over the two directions."""
    hint = (
        "Each image i must pick its own caption among the B in its row: -log softmax(S[i])[i]; each caption j must "
        "pick its own image in its column: -log softmax(S[:, j])[j]. Average each over the B pairs, then take the "
        "mean of the two. torch.log_softmax(sims, dim=1).diagonal() gives the first kind at once (dim=0 the second)."
    )
    cases = []
    gen = torch.Generator().manual_seed(1201)
    for description, sims in [
        (
            "a 4 x 4 matrix, matches clearly on the diagonal",
            3.0 * torch.eye(4) + 0.3 * torch.randn(4, 4, generator=gen),
        ),
        ("a 6 x 6 matrix of random similarities", 2.0 * torch.randn(6, 6, generator=gen)),
        ("a 5 x 5 matrix where images and captions disagree", 4.0 * torch.randn(5, 5, generator=gen).triu()),
        ("a 3 x 3 matrix of large similarities (scale 100)", 100.0 * torch.rand(3, 3, generator=gen)),
    ]:
        s = sims.double().numpy()
        rows, cols = -_log_softmax_diagonal(s).mean(), -_log_softmax_diagonal(s.T).mean()
        mistakes = [
            (
                float(rows),
                "That is only half the loss: each image picks its caption (rows). Add the other direction, "
                "each caption picking its image (the columns, i.e. the rows of sims.T), and average the two.",
            ),
            (float(cols), "That is only the captions' half (the columns); add the rows and average the two."),
            (float(rows + cols), "Average the two directions, (rows + columns) / 2, rather than adding them."),
            (
                float(-np.diag(s).mean()),
                "The diagonal alone is not a probability: subtract the log of the sum of "
                "exp over the row (or column), i.e. use a log-softmax.",
            ),
            (float(len(s) * (rows + cols) / 2), "Take the mean over the B pairs, not the sum."),
        ]
        expected = _ref_infonce(sims)
        cases.append(_case(description, (sims.float(),), expected, hint, mistakes, atol=1e-4, rtol=1e-4))
    return _run("12.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 12.2 classifier-free guidance


def _ref_guided(x0_uncond, x0_cond, weight):
    """The library's Guided, wrapped around a denoiser that returns the two given predictions."""

    def fixed(x_t, t, label=None):
        return x0_uncond if label is None else x0_cond

    return Guided(fixed, weight)(x0_uncond, 0.5, label=0)


def check_guided(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 12.2: ``guided(x0_uncond, x0_cond, weight) -> like x0_cond``: the classifier-free guided
    prediction, x0_uncond + weight (x0_cond - x0_uncond). Compared with ``elslib.denoisers.Guided``."""
    hint = (
        "Start from the unconditional prediction and move along the difference the condition makes: "
        "x0_uncond + weight * (x0_cond - x0_uncond). Weight 0 gives x0_uncond, weight 1 gives x0_cond."
    )
    uncond, cond = _images((2, 1, 4, 4), 110), _images((2, 1, 4, 4), 111)
    cases = []
    for weight in (0.0, 1.0, 3.0, 0.5, 7.5):
        mistakes = [
            (
                cond + weight * (cond - uncond),
                "That is the other convention (Ho and Salimans write (1 + w) cond - w uncond). Here the weight is "
                "measured from the UNconditional prediction: weight 1 must give x0_cond itself.",
            ),
            (uncond - weight * (cond - uncond), "Mind the sign: guidance moves TOWARDS the conditional prediction."),
            (uncond + weight * cond, "Guidance scales the DIFFERENCE x0_cond - x0_uncond, not x0_cond."),
        ]
        args = (uncond, cond, weight)
        cases.append(_case(f"weight {weight:g}", args, _ref_guided(*args), hint, mistakes, atol=1e-6, rtol=1e-5))
    return _run("12.2", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "12.1": Exercise("the symmetric InfoNCE (CLIP) loss of a similarity matrix", check_infonce, _ref_infonce),
    "12.2": Exercise("classifier-free guidance of two predictions", check_guided, _ref_guided),
}
