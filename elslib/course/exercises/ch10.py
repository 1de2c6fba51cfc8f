"""Exercises of chapter 10: attention (its weights, and how many positions they really use)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ...metrics import effective_number
from .ch07 import _case
from .framework import CheckResult, Exercise
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 10.1 attention weights


def _ref_attention_weights(q, k):
    """Read off PyTorch's own attention: attending to the identity matrix returns the weights themselves."""
    q, k = q.double(), k.double()
    eye = torch.eye(k.shape[-2], dtype=torch.float64).expand(*k.shape[:-1], k.shape[-2])
    return F.scaled_dot_product_attention(q, k, eye)


def _queries_keys(b: int, length: int, d: int, seed: int, spread: float = 1.0):
    gen = torch.Generator().manual_seed(seed)
    q = spread * torch.randn(b, length, d, generator=gen)
    k = spread * torch.randn(b, length, d, generator=gen)
    return q, k


def check_attention_weights(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 10.1: ``attention_weights(q, k) -> [B, L, L]``: row u holds softmax_v(q_u . k_v / sqrt(d)) for
    queries and keys [B, L, d]. Compared with ``torch.nn.functional.scaled_dot_product_attention``."""
    hint = (
        "Score every query against every key: scores = q @ k.transpose(-2, -1), shape [B, L, L], entry (u, v) = "
        "q_u . k_v. Divide by sqrt(d), the size of the last axis, then softmax over the keys v (the last axis), "
        "so that each row sums to 1."
    )
    cases = []
    for what, (q, k) in [
        ("one image, 4 positions, d = 2", _queries_keys(1, 4, 2, 100)),
        ("two images, 6 positions, d = 8", _queries_keys(2, 6, 8, 101)),
        ("large scores (a sharp softmax), 5 positions, d = 4", _queries_keys(1, 5, 4, 102, spread=6.0)),
        ("16 positions (a 4x4 feature map), d = 16", _queries_keys(1, 16, 16, 103)),
    ]:
        d = q.shape[-1]
        scores = q.double() @ k.double().transpose(-2, -1)
        mistakes = [
            (torch.softmax(scores, dim=-1), "Divide the scores by sqrt(d) before the softmax."),
            (torch.softmax(scores / d, dim=-1), "Divide by sqrt(d), not by d."),
            (
                torch.softmax(scores / math.sqrt(d), dim=-2),
                "The softmax runs over the keys v, the LAST axis: each row (one query) must sum to 1.",
            ),
            (
                torch.softmax(scores.transpose(-2, -1) / math.sqrt(d), dim=-1),
                "Row u belongs to query u: scores = q @ k^T, not k @ q^T.",
            ),
        ]
        cases.append(_case(what, (q, k), _ref_attention_weights(q, k), hint, mistakes, atol=1e-6, rtol=1e-5))
    return _run("10.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 10.2 effective number


def _ref_effective_positions(weights):
    return effective_number(weights, dim=-1)


def check_effective_positions(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 10.2: ``effective_positions(weights) -> [...]``: exp(entropy) of each row of weights that sum to
    1 along the last axis (k for equal weights on k positions, 1 for all weight on one). Compared with
    ``elslib.metrics.effective_number``."""
    hint = (
        "For each row w (the last axis): entropy H = -sum_v w_v log w_v, with 0 log 0 = 0, and the answer is "
        "exp(H). Equal weights on k positions give exactly k."
    )
    gen = torch.Generator().manual_seed(104)
    uniform = torch.full((2, 8), 1 / 8)
    spiky = torch.softmax(4 * torch.randn(3, 10, generator=gen), dim=-1)
    half = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    cases = []
    for what, w in [
        ("two rows of equal weights on 8 positions (the answer is 8)", uniform),
        ("rows with exact zeros (0 log 0 counts as 0)", half),
        ("three sharp softmax rows", spiky),
        ("a batch of 2 x 3 rows of attention weights", torch.softmax(torch.randn(2, 3, 6, generator=gen), dim=-1)),
    ]:
        w64 = w.double()
        entropy = -(w64 * torch.log(w64.clamp_min(1e-300))).sum(-1)
        mistakes = [
            (entropy, "That is the entropy itself; the effective number is exp(entropy)."),
            (
                1 / (w64**2).sum(-1),
                "That is the participation ratio 1 / sum w^2, another way to count; here we use exp(entropy), the "
                "count of the chapters' n_eff.",
            ),
            (2**entropy, "Undo the logarithm you took: exp of a natural-log entropy (2 ** H goes with log2)."),
        ]
        cases.append(_case(what, (w,), _ref_effective_positions(w), hint, mistakes, atol=1e-6, rtol=1e-5))
    return _run("10.2", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "10.1": Exercise(
        "attention weights: a softmax of scaled dot products", check_attention_weights, _ref_attention_weights
    ),
    "10.2": Exercise(
        "the effective number of positions an attention row uses", check_effective_positions, _ref_effective_positions
    ),
}
