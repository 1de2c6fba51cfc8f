r"""Streaming softmax: weights over a candidate set that arrives in chunks.

Every machine computes, for each output pixel,

    x0_hat = sum_c w_c v_c,   w_c = exp(score_c) / sum_c' exp(score_c'),

over far more candidates than fit in memory at once. The online log-sum-exp keeps three running
quantities per query: the largest score seen so far m, the normaliser z = sum exp(score - m)
and the weighted sum acc = sum exp(score - m) v. A new chunk with maximum m' > m rescales the old
sums by exp(m - m') and *adds* its own sums.

Adding sums is what makes chunking invisible. The pitfall this avoids (it is in the paper's
public code): averaging per-chunk softmax means weights every chunk equally, whatever its size
or how much of the total mass it holds, so uneven chunks silently reweight candidates.

Subtracting the running maximum also makes the zero-temperature limit exact: at t = 0 all weight
goes to the candidates whose score equals the maximum, with no overflow or NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# Floor of float32 weights, natural log relative to the maximum (e^-44 ~ 2^-64); see add().
EXP_FLOOR = -44.0


class OnlineSoftmax:
    """Running softmax-weighted sum over candidates that arrive in chunks along dim 1.

    Scores of a chunk have shape [Q, K, *rest]: Q queries (or batch), K candidates, and any
    trailing axes that are independent softmaxes (e.g. pixels). The running maximum m and the
    normaliser z have shape [Q, 1, *rest]; ``weigh(p)`` must return the chunk's contribution to
    the weighted sum, of any shape that broadcasts with m (e.g. [Q, C, *rest] or [Q, V]).

    With ``explain=True`` it also tracks, per softmax, the best candidate (its index in arrival
    order, first one on ties), its score, and sum_c w_c score_c for the entropy of the weights.
    """

    def __init__(self, explain: bool = False):
        self.explain = explain
        self.m = self.z = self.acc = None
        self.seen = 0  # candidates added so far: the offset of the next chunk's indices
        self.best = self.arg = self.ent = None

    def add(self, scores: torch.Tensor, weigh: Callable[[torch.Tensor], torch.Tensor] | None, log_counts=None):
        """Add one chunk of candidates.

        scores: [Q, K, *rest] natural-log weights of one candidate each. weigh: p -> contribution
        to the weighted sum (None: track only the weights, e.g. for explain). log_counts (optional,
        broadcastable to scores): log of how many identical candidates each entry stands for --
        they all have the same score, so one entry with weight count * exp(score) is exact.
        """
        full = scores if log_counts is None else scores + log_counts
        m = full.amax(1, keepdim=True)
        first = self.m is None
        if not first:
            m = torch.maximum(self.m, m)
        p = full - m
        if p.dtype == torch.float32:
            # Weights below e^-44 ~ 2^-64 of the maximum are raised to it: subnormal floats (from
            # exp, or from products weight x value) are ~100x slower on x86. The bias is below
            # (candidates) x 2^-64 of the total: far below float32's resolution.
            p.clamp_(min=EXP_FLOOR)
        p = p.exp_()
        contrib = None if weigh is None else weigh(p)
        zc = p.sum(1, keepdim=True)
        if first:
            self.acc, self.z = contrib, zc
        else:
            f = torch.exp(self.m - m)
            if contrib is not None:
                self.acc = self.acc * f + contrib
            z_old, self.z = self.z, self.z * f + zc
        if self.explain:
            # ent accumulates sum p * (score - m); when m moves, every old term shifts by (m_old - m).
            ec = (p * (scores - m)).sum(1, keepdim=True)
            best, arg = scores.max(1, keepdim=True)
            arg = arg + self.seen
            if first:
                self.ent, self.best, self.arg = ec, best, arg
            else:
                self.ent = f * (self.ent + (self.m - m) * z_old) + ec
                better = best > self.best  # strict: keep the earlier candidate on ties
                self.best = torch.where(better, best, self.best)
                self.arg = torch.where(better, arg, self.arg)
        self.m = m
        self.seen += scores.shape[1]

    def result(self) -> torch.Tensor:
        """The softmax-weighted sum, acc / z."""
        return self.acc / self.z

    def winner_weight(self) -> torch.Tensor:
        """[Q, 1, *rest] softmax weight of the single best candidate."""
        return torch.exp(self.best - self.m) / self.z

    def n_eff(self) -> torch.Tensor:
        """[Q, 1, *rest] effective number of candidates, exp(entropy of the weights).

        Entropy H = -sum w log w = log z - sum p (score - m) / z, with p = exp(score - m);
        identical candidates merged through log_counts count separately, as they should.
        """
        return torch.exp(torch.log(self.z) - self.ent / self.z)
