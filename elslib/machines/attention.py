r"""The fast backend of the ELS machines: a softmax over patches is attention.

For one query patch q (noisy, at time t) and a candidate training patch k,

    score = -|q - a k|^2 / (2 s^2) + log(count)
          = (a q.k - a^2 |k|^2 / 2) / s^2 + log(count)  -  |q|^2 / (2 s^2).

The last term is the same for every candidate, so it cancels in the softmax. What is left is a
dot product between an augmented query and an augmented key (see patches.KeyTable):

    q' = [ c1 (q - a mu),  c2,  1,  -m ]        c1 = a / s^2,  c2 = -a^2 / (2 s^2)
    k' = [ k - mu,  |k - mu|^2,  log count,  1 ]

(mu, the mean patch, centres both sides so the cancelling terms are small and float32 stays
accurate.) So queries x keys is one GEMM -- the fastest thing a CPU or GPU does -- and the
per-query constants (the time t, hence a and s) all live in q', so one key table serves every
t. Values are the keys' centre pixels; a row of ones among them yields the normaliser.

Numerics and speed, all exact to float32 resolution:

- scores are in log2 units (c1, c2 carry a factor log2(e); counts are stored as log2) because
  ``exp2`` runs ~1.7x faster than ``exp`` in PyTorch on CPU;
- the running maximum m of the online softmax (softmax.py explains it) is folded into the GEMM
  through the last column, so no "find the max, subtract it" passes run over the scores. m is
  only raised when a chunk's sums overflow (checked on the small [L, C + 1] result), which after
  the first chunk is rare. Sums are kept in float64 and *added* across chunks. At huge scores
  (t -> 0, s^2 tiny) float32 cannot hold m finely enough, and each chunk gets the classic
  explicit max-subtraction instead;
- the expansion cancels: its float32 error grows like |c1 q| |k|, i.e. like 1 / s^2. Where the
  estimated error is too large (small t: on MNIST t <~ 0.07), a query block's scores are
  computed in float64 (slower GEMM, same everything else);
- weights are floored at 2^-64 of the maximum, keeping subnormal floats -- ~100x slower on
  x86 -- out of exp2 and out of the value product.

Keys are streamed chunk by chunk (each read once per call, for all query blocks), and a chunk
holds at most ``chunk_size`` scores per query block, so memory stays bounded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .softmax import OnlineSoftmax

LOG2E = 1.0 / math.log(2.0)
LN2 = math.log(2.0)

# Queries per block: large enough for an efficient GEMM, small enough that a block of scores
# (QUERY_BLOCK x chunk_size / QUERY_BLOCK) is reused from cache by the exp and value passes.
QUERY_BLOCK = 1024

# Weights below 2^-64 relative to the current maximum are raised to 2^-64. Two reasons, both
# about subnormal floats, which x86 CPUs handle ~100x slower: exp2 of arguments below -126 takes
# a slow path, and products weight x value below 2^-126 (e.g. 2^-126 x 0.5) slow down the value
# GEMM. The bias this adds is < (number of keys) x 2^-64 of the largest weight: with up to 2^30
# keys, below float32's resolution.
EXP2_FLOOR = -64.0

# The running maximum is folded into the GEMM only while |m| < 2^20 (log2 units), where float32
# holds it to 2^-3: the rescaling stays exact and no entry can overflow by rounding.
LAZY_LIMIT = 2.0**20

# The expanded score c1 q.k + c2 |k|^2 cancels: its float32 rounding error is about
# 2^-24 (|c1 q| |k| + |c2| |k|^2), large at small t where c1 = a / s^2 is large. A query block
# whose estimate exceeds this (log2 units; 2^-10 moves a weight by < 0.07%) gets a float64 GEMM.
# On MNIST with the cosine schedule that is t <~ 0.07: one step of a 20-step DDIM.
FLOAT64_ABOVE = 2.0**-10


def augment(queries: torch.Tensor, a: torch.Tensor, s2: torch.Tensor, mu: torch.Tensor, counts: bool = True):
    """Augmented queries q' [L, D + 3] of queries' dtype (last column, -m, starts at 0).

    queries: [L, D] patches; a, s2: [L] float64 signal scale and noise variance per query.
    counts=False zeroes the log-count coefficient: scores of single candidates (for explain).
    """
    n, d = queries.shape
    c1 = (a / s2 * LOG2E).to(queries.dtype)
    c2 = (-a * a / (2.0 * s2) * LOG2E).to(queries.dtype)
    q = torch.empty(n, d + 3, dtype=queries.dtype, device=queries.device)
    torch.mul(queries - a.to(queries.dtype)[:, None] * mu, c1[:, None], out=q[:, :d])
    q[:, d] = c2
    q[:, d + 1] = 1.0 if counts else 0.0
    q[:, d + 2] = 0.0
    return q


def attend(queries, a, s2, keys, label, chunk_size: int) -> torch.Tensor:
    """Softmax-weighted centre pixels: [L, D] query patches -> [L, C] denoised pixels.

    keys: a KeyTable or StreamedKeys (anything with ``mu`` and ``chunks(label, step)``);
    label: the class whose keys are candidates (None: all); a, s2: [L] float64.
    """
    q = augment(queries, a, s2, keys.mu)
    d = queries.shape[1]
    err = (q[:, :d].norm(dim=1) * keys.kmax + q[:, d].abs() * keys.kmax**2) * 2.0**-24
    block = min(q.shape[0], QUERY_BLOCK)
    scratch = _Scratch()  # one set of score buffers for the whole call: the blocks take turns
    blocks = []
    for i in range(0, q.shape[0], block):
        if float(err[i : i + block].max()) > FLOAT64_ABOVE:
            q64 = augment(queries[i : i + block].double(), a[i : i + block], s2[i : i + block], keys.mu.double())
            blocks.append(_Block(q64, scratch, exact=True))
        else:
            blocks.append(_Block(q[i : i + block], scratch))
    for kc, vc, _ in keys.chunks(label, max(1, chunk_size // block)):
        kt = kc.T
        for b in blocks:
            b.add(kt, vc)
    return torch.cat([b.result() for b in blocks])


class _Scratch:
    """Score buffers shared by all query blocks of one call. The blocks take turns on each chunk of
    keys and keep nothing of their scores between turns, so one [QUERY_BLOCK, step] buffer (and
    one float64 twin for the exact blocks) serves them all: a call's scratch memory does not grow
    with the batch, and ``chunk_size`` bounds it."""

    def __init__(self):
        self.f32 = self.f64 = None

    def take(self, rows: int, n: int, like: torch.Tensor, wide: bool = False) -> torch.Tensor:
        """A [rows, n] view of the float32 (or, wide, float64) buffer, grown when too small."""
        name = "f64" if wide else "f32"
        buf = getattr(self, name)
        if buf is None or buf.shape[0] < rows or buf.shape[1] < n:
            shape = (max(rows, 0 if buf is None else buf.shape[0]), max(n, 0 if buf is None else buf.shape[1]))
            buf = torch.empty(shape, dtype=torch.float64 if wide else torch.float32, device=like.device)
            setattr(self, name, buf)
        return buf[:rows, :n]


class _Block:
    """Online softmax state of one block of queries (see the module docstring)."""

    def __init__(self, q: torch.Tensor, scratch: _Scratch, exact: bool = False):
        self.q = q  # [L, D + 3]; q[:, -1] holds -m while lazy
        self.acc = None  # [L, C + 1] float64: weighted values, then the normaliser
        self.m = None  # [L] float64: the reference (log2 units) acc is relative to
        self.exact = exact  # float64 GEMM (q is float64), explicit max subtraction
        self.lazy = not exact  # fold -m into the GEMM
        self.scratch = scratch  # score buffers, shared with the call's other blocks

    def add(self, kt: torch.Tensor, vc: torch.Tensor):
        """Add one chunk of keys kt [D + 3, m] with values vc [C + 1, m]."""
        n = kt.shape[1]
        s = self.scratch.take(self.q.shape[0], n, self.q)
        if self.exact:
            # Scores in float64, shifted by the running maximum, then float32 for exp2 (shifted
            # scores are small numbers: float32 holds them finely).
            wide, kt = self.scratch.take(self.q.shape[0], n, self.q, wide=True), kt.double()
            kt[-3] = kt[:-3].square().sum(0)  # |k - mu|^2 in float64 too (the stored one is float32)
            torch.mm(self.q, kt, out=wide)
            cm = wide.amax(1)
            new = cm if self.m is None else torch.maximum(self.m, cm)
            s.copy_(wide.sub_(new[:, None]))
            part = _weigh(s, vc)
            self.acc = part if self.m is None else self.acc * torch.exp2(self.m - new)[:, None] + part
            self.m = new
            return
        torch.mm(self.q, kt, out=s)  # scores minus q[:, -1]
        if self.m is None or not self.lazy:
            # Exact running maximum of this chunk; subtracting it in place makes the largest
            # entry exactly 0 (max-subtraction inside the GEMM carries the GEMM's rounding).
            cm = s.amax(1).double()
            new = cm if self.m is None else torch.maximum(self.m, cm)
            s.sub_(new.to(s.dtype)[:, None])
            part = _weigh(s, vc)
            if self.m is None:
                self.acc = part
                # Folding m into the GEMM needs float32 to hold m finely: its error enters the
                # exponent. Huge scores (t ~ 0) keep the explicit subtraction.
                self.lazy = bool(new.abs().max() < LAZY_LIMIT)
                if self.lazy:
                    self.q[:, -1] = -new.to(self.q.dtype)
            else:
                self.acc = self.acc * torch.exp2(self.m - new)[:, None] + part
            self.m = new
            return
        part = _weigh(s, vc)
        if torch.isfinite(part).all():
            self.acc += part
            return
        # Some score exceeded m by more than float32's range: recompute this chunk shifted by its
        # own maximum, and move the reference m up to it.
        torch.mm(self.q, kt, out=s)
        shift = s.amax(1).clamp_min(0.0)
        s.sub_(shift[:, None])
        target = self.m + shift.double()
        acc = self.acc * torch.exp2(-shift.double())[:, None] + _weigh(s, vc)
        new = target.to(self.q.dtype)  # what the GEMM column can hold
        self.acc = acc * torch.exp2(target - new.double())[:, None]
        self.m = new.double()
        self.q[:, -1] = -new

    def result(self) -> torch.Tensor:
        return (self.acc[:, :-1] / self.acc[:, -1:]).float()


def _weigh(s, vc):
    """exp2 of shifted scores (in place) times values: [L, K] x [C + 1, K] -> [L, C + 1] float64."""
    s.clamp_(min=EXP2_FLOOR).exp2_()
    if s.device.type != "cpu" or torch.get_num_threads() == 1:
        return F.linear(s, vc).double()
    # A product with so few output columns is split over K (the keys) by the CPU's BLAS when it
    # has several threads, and the partial sums then meet in another order: the last bits of a
    # sample would depend on the thread count. On one thread the order is fixed; this product
    # is a small part of the work (the scores' GEMM is (D + 3) / (C + 1) times larger).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return F.linear(s, vc).double()
    finally:
        torch.set_num_threads(threads)


def attend_explain(queries, a, s2, keys, label, chunk_size: int):
    """Softmax statistics for explain: (OnlineSoftmax with winners tracked, winner source [L]).

    Scores are per single candidate (natural log), computed and summed in float64 (explain is
    the slow, careful path); keys[:, D + 1] holds log2 of each key's count. The winner's source
    is the flat place n * H * W + i * W + j of its centre. Queries go in blocks of QUERY_BLOCK,
    each over all keys.
    """
    d = queries.shape[1]
    q = augment(queries.double(), a, s2, keys.mu.double(), counts=False)
    fields, winners = [], []
    for q0 in range(0, q.shape[0], QUERY_BLOCK):
        qb = q[q0 : q0 + QUERY_BLOCK]
        sm = OnlineSoftmax(explain=True)
        sources = []
        for kc, _, src in keys.chunks(label, max(1, chunk_size // qb.shape[0])):
            kc = kc.double()
            kc[:, d] = kc[:, :d].square().sum(1)
            sm.add((qb @ kc.T) * LN2, None, log_counts=kc[:, d + 1][None] * LN2)
            sources.append(src)
        winners.append(torch.cat(sources)[sm.arg[:, 0]])
        fields.append((sm.winner_weight()[:, 0], sm.n_eff()[:, 0]))
    weight = torch.cat([f[0] for f in fields])
    n_eff = torch.cat([f[1] for f in fields])
    return torch.cat(winners), weight, n_eff
