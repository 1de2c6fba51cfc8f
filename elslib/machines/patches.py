r"""Patches: padding, extraction, and the deduplicated key tables of the patch machines.

A P x P patch "around" pixel (i, j) is the window of rows i - r .. i + r and columns
j - r .. j + r, r = P // 2, flattened channel-major to a vector of length D = C * P * P.
Outside the image the window reads

- ``zeros``: the value 0, as a conv layer with zero padding would. Note that 0 is mid-grey in the
  [-1, 1] value space, *not* the background -1 of MNIST digits;
- ``circular``: the image wrapped around (torus), as a conv layer with circular padding would.

The ELS machines compare each noisy query patch with every training patch of a candidate set.
Many training patches are identical (blank background above all), and identical keys have
identical scores, so a set of k identical patches is stored once with weight log(k) -- an exact
reduction. Identical means bit-identical float32 rows. Finding them with ``torch.unique(dim=0)``
sorts rows lexicographically, which is slow; instead each row gets a 64-bit hash of its
(quantised) values, the 1-d hashes are uniqued, and every merge is then *verified* bit for bit
against the stored row: a row whose hash collided with a different row stays a key of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Patch elements extracted at once while building or streaming keys (2**23 floats: 32 MB).
ELEMS_PER_CHUNK = 2**23


def pad(images: torch.Tensor, r: int, padding: str) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, H + 2r, W + 2r], padded with zeros or wrapped around."""
    if r == 0:
        return images
    if padding == "circular":
        return F.pad(images, (r, r, r, r), mode="circular")
    return F.pad(images, (r, r, r, r), value=0.0)


def windows(padded: torch.Tensor, p: int) -> torch.Tensor:
    """View [N, C, H, W, P, P] of every P x P window of a padded batch (no copy)."""
    return padded.unfold(2, p, 1).unfold(3, p, 1)


def patches_at(win: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, out: torch.Tensor | None = None):
    """Patches centred on the grid rows x cols of every image: [N * len(rows) * len(cols), D].

    Row order is (image, row, col); each row is the patch flattened as (channel, dy, dx).
    out: optional [N * R * K, >= D] buffer whose first D columns receive the patches.
    """
    n, c, p = win.shape[0], win.shape[1], win.shape[-1]
    r, k, d = len(rows), len(cols), c * p * p
    block = win[:, :, _index(rows), _index(cols)]  # [N, C, R, K, P, P], a view for ranges
    block = block.permute(0, 2, 3, 1, 4, 5)
    if out is None:
        return block.reshape(n * r * k, d)
    out[:, :d].view(n, r, k, c, p, p).copy_(block)
    return out[:, :d]


def _index(idx: torch.Tensor):
    """A slice when idx is a run of consecutive coordinates (a view, no gather), else idx."""
    first = int(idx[0])
    if int(idx[-1]) - first == len(idx) - 1 and bool((idx.diff() == 1).all()):
        return slice(first, first + len(idx))
    return idx


@dataclass
class KeyTable:
    """Candidate patches of one group of pixels, ready for the attention backend.

    Layout chosen so that one GEMM with the augmented queries (see attention.py) yields the
    scores directly: ``keys`` [M, D + 3] float32 holds, per distinct training patch k,

        [ k - mu,  |k - mu|^2,  log2(count),  1 ]

    where mu is the mean patch (centring shrinks the numbers that cancel in |q - a k|^2, which
    keeps float32 accurate) and count is how many training patches are bit-identical to k.

    values_t: [C + 1, M] float32, the centre pixel of each key per channel, then a row of ones
        (so one product gives both the weighted sum and the softmax normaliser).
    source: [M] int64, flat place n * H * W + i * W + j of one training patch equal to the key
        (the first in (image, row, col) order), (i, j) being its centre.
    counts: [M] int64 copies of each key.
    mu: [D] float32 mean patch.
    spans: class -> (start, end) rows of the keys from that class's images (keys are sorted by
        class, and never merged across classes), or None without labels.
    kmax: the largest |k - mu| (sizes the float32 rounding error, see attention.py).
    """

    keys: torch.Tensor
    values_t: torch.Tensor
    source: torch.Tensor
    counts: torch.Tensor
    mu: torch.Tensor
    spans: dict | None
    kmax: float = 0.0

    def span(self, label: int | None) -> tuple[int, int]:
        """Rows of the keys a call conditioned on `label` may use (None: all of them)."""
        if label is None or self.spans is None:
            return 0, self.keys.shape[0]
        return self.spans[label]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values_t, self.source, self.counts))

    def chunks(self, label: int | None, step: int):
        """Yield (keys [m, D + 3], values_t [C + 1, m], source [m]) slices of at most `step` keys."""
        lo, hi = self.span(label)
        for k0 in range(lo, hi, step):
            k1 = min(hi, k0 + step)
            yield self.keys[k0:k1], self.values_t[:, k0:k1], self.source[k0:k1]


def row_bytes(d: int, c: int) -> int:
    """Bytes a stored key table spends per key: keys, values, source and count."""
    return 4 * (d + 3) + 4 * (c + 1) + 8 + 8


class StreamedKeys:
    """The same keys as a KeyTable, cut from the training images at every call instead of stored.

    For candidate sets too large to keep in memory: no deduplication (every count is 1), so the
    result is the same and only the speed differs. Same ``chunks`` interface as KeyTable.
    """

    def __init__(self, images: torch.Tensor, p: int, padding: str, rows, cols, labels=None, padded=None):
        n, c, h, w = images.shape
        self.size, self.p, self.d = (h, w), p, c * p * p
        self.rows, self.cols = rows.to(images.device), cols.to(images.device)
        padded = pad(images, p // 2, padding) if padded is None else padded
        self.win = windows(padded, p)
        self.mu = mean_patch(padded, p, self.rows, self.cols)
        self.per_image = len(rows) * len(cols)
        self.members = {}
        if labels is not None:
            for k in torch.unique(labels).tolist():
                self.members[int(k)] = torch.nonzero(labels == k).flatten().to(images.device)
        self.centre = torch.arange(c, device=images.device) * p * p + (p // 2) * p + p // 2
        # A bound on |k - mu| (sizes the float32 rounding error, see attention.py).
        self.kmax = float(images.abs().max()) * self.d**0.5 + float(self.mu.norm())

    def chunks(self, label: int | None, step: int):
        members = self.members.get(label) if label is not None else None
        count = (self.win.shape[0] if members is None else len(members)) * self.per_image
        h, w = self.size
        for lo in range(0, count, step):
            flat = torch.arange(lo, min(count, lo + step), device=self.mu.device)
            img, rest = flat // self.per_image, flat % self.per_image
            if members is not None:
                img = members[img]
            i, j = self.rows[rest // len(self.cols)], self.cols[rest % len(self.cols)]
            raw = self.win[img, :, i, j].reshape(len(flat), self.d)
            keys = torch.empty(len(flat), self.d + 3, dtype=raw.dtype, device=raw.device)
            torch.sub(raw, self.mu, out=keys[:, : self.d])
            keys[:, self.d] = sq_norms(keys[:, : self.d])
            keys[:, self.d + 1] = 0.0  # log2(count) with count = 1
            keys[:, self.d + 2] = 1.0
            values_t = torch.ones(len(self.centre) + 1, len(flat), dtype=raw.dtype, device=raw.device)
            values_t[:-1] = raw[:, self.centre].T
            yield keys, values_t, img * (h * w) + i * w + j


def sq_norms(k: torch.Tensor) -> torch.Tensor:
    """|k|^2 of each row, float32 (one formula for stored and streamed keys: identical bits)."""
    return k.square().sum(1)


def mean_patch(padded: torch.Tensor, p: int, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """[D] float32 mean of all patches centred on rows x cols, from the summed padded images.

    Entry (c, dy, dx) averages padded[:, c, i + dy, j + dx] over images and centres (i, j).
    """
    summed = windows(padded.sum(0, keepdim=True, dtype=torch.float64), p)[0]  # [C, H, W, P, P]
    total = padded.shape[0] * len(rows) * len(cols)
    return (summed[:, rows][:, :, cols].sum((1, 2)) / total).flatten().to(torch.float32)


def hash_coefficients(d: int, seed: int, device=None) -> torch.Tensor:
    """The multipliers of one patch hash: [d] random odd int64 constants, the same for a seed everywhere."""
    coef = torch.randint(-(2**62), 2**62, (d,), generator=torch.Generator().manual_seed(seed), dtype=torch.int64)
    return (coef | 1).to(device) if device is not None else coef | 1


def row_hash(
    block: torch.Tensor, coef: torch.Tensor, scratch: torch.Tensor | None = None, elementwise: bool | None = None
) -> torch.Tensor:
    """64-bit hash of each row of quantised values: [R, D] float32 -> [R] int64 (coef [D]), or
    [R, k] for k independent hashes at once (coef [D, k], columns from :func:`hash_coefficients`).

    The one patch hash of the library: the ELS key tables merge identical training patches with
    it, and combinatorics counts distinct patches with it. Values are quantised to multiples of
    2^-20 and hashed as sum_i q_i c_i mod 2^64, with one random odd 64-bit constant c_i per
    position (an exact integer product, wrapping). Equal rows get equal hashes; rows that differ
    in one value by at least 2^-20 never collide (an odd c_i times a small nonzero integer is not
    0 mod 2^64); other unequal rows rarely do, and both users verify their merges. Quantising,
    rather than hashing the float bits, matters: flipping a float's sign changes its bits by
    exactly 2^31, and such power-of-two steps cancel far too easily in a sum mod 2^64 (and -0.0
    quantises to the same 0 as 0.0).
    Overwrites `block`; scratch: an optional int64 buffer of block's shape. elementwise: sum the
    products without a matrix product (default: off the CPU, since CUDA has no int64 matrix product).
    """
    block.mul_(QUANT).round_()  # exact in float32 for |values| < 8
    if scratch is None:
        scratch = torch.empty(block.shape, dtype=torch.int64, device=block.device)
    scratch.copy_(block)
    if elementwise is None:
        elementwise = scratch.device.type != "cpu"
    if not elementwise:
        return scratch @ coef
    if coef.dim() == 2:
        return torch.stack([(scratch * c).sum(dim=1) for c in coef.T], dim=1)
    return scratch.mul_(coef).sum(dim=1)  # the same wrapping sum: addition mod 2^64 is associative


QUANT = 2.0**20
KEY_HASH_SEED = 20241226  # the key tables' hash (any seed works: merges are verified)


@dataclass
class KeyPlan:
    """The first step of a key table: every training patch of a group hashed and counted.

    Made by :func:`plan_keys`; :attr:`nbytes` says what the table will take, before anything is
    stored, so that the caller (the ELS machine) can decide: make room and :func:`build_keys`,
    or stream the keys instead (:class:`StreamedKeys`).

    first: [M] index (in (image, row, col) order) of the first copy of each distinct patch;
    counts: [M] how many copies it has; inverse: [total] the distinct patch of every patch (None
    without dedup); cls_of_row: [total] the class of every patch (None without labels).
    """

    images: torch.Tensor
    p: int
    rows: torch.Tensor
    cols: torch.Tensor
    labels: torch.Tensor | None
    padded: torch.Tensor
    step: int  # images per chunk
    first: torch.Tensor
    counts: torch.Tensor
    inverse: torch.Tensor | None
    cls_of_row: torch.Tensor | None

    @property
    def per_image(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def d(self) -> int:
        return self.images.shape[1] * self.p * self.p

    @property
    def nbytes(self) -> int:
        """Bytes the finished table will take (before any hash collision splits a key)."""
        return self.first.shape[0] * row_bytes(self.d, self.images.shape[1])

    def chunks(self):
        """(first image, end image, window view) per chunk of `step` images."""
        win = windows(self.padded, self.p)
        n = self.images.shape[0]
        for i0 in range(0, n, self.step):
            i1 = min(n, i0 + self.step)
            yield i0, i1, win[i0:i1]


def plan_keys(
    images: torch.Tensor,
    p: int,
    padding: str,
    rows: torch.Tensor,
    cols: torch.Tensor,
    labels: torch.Tensor | None = None,
    dedup: bool = True,
    padded: torch.Tensor | None = None,
) -> KeyPlan:
    """Hash and count every training patch centred on the grid rows x cols (all images).

    images: [N, C, H, W] float32; rows, cols: int64 centre coordinates; labels: [N] or None.
    With dedup, patches whose hashes agree (and of the same class) are counted as one key; the
    merge is verified bit for bit when the table is built. padded: the images already padded by
    P // 2 (saves a copy when planning many groups). Patches are cut in (image, row, col) order,
    one chunk of images at a time, into preallocated buffers (fresh large tensors cost page faults).
    """
    n, c = images.shape[:2]
    d = c * p * p
    device = images.device
    rows, cols = rows.to(device), cols.to(device)
    padded = pad(images, p // 2, padding) if padded is None else padded
    per_image = len(rows) * len(cols)
    total = n * per_image
    step = max(1, ELEMS_PER_CHUNK // (per_image * d))
    cls_of_row = None if labels is None else labels.to(device).repeat_interleave(per_image)
    plan = KeyPlan(images, p, rows, cols, labels, padded, step, None, None, None, cls_of_row)
    if not dedup:
        plan.first = torch.arange(total, device=device)
        plan.counts = torch.ones(total, dtype=torch.int64, device=device)
        return plan
    coef = hash_coefficients(d, KEY_HASH_SEED, device)
    hashes = torch.empty(total, dtype=torch.int64, device=device)
    buf = torch.empty(step * per_image, d, dtype=torch.float32, device=device)
    scratch = torch.empty(step * per_image, d, dtype=torch.int64, device=device)
    for i0, i1, win in plan.chunks():
        lo, hi = i0 * per_image, i1 * per_image
        block = buf[: hi - lo]
        patches_at(win, rows, cols, out=block)
        hashes[lo:hi] = row_hash(block, coef, scratch[: hi - lo])
    del buf, scratch
    if cls_of_row is not None:  # never merge across classes (also verified when building)
        hashes += cls_of_row * 0x5851F42D4C957F2D
    _, plan.inverse, plan.counts = torch.unique(hashes, return_inverse=True, return_counts=True)
    del hashes
    plan.first = torch.full((plan.counts.shape[0],), total, dtype=torch.int64, device=device)
    plan.first.scatter_reduce_(0, plan.inverse, torch.arange(total, device=device), "amin")
    return plan


def build_keys(plan: KeyPlan) -> KeyTable:
    """The key table of a plan: sort the keys by (class, place), write and verify them, finish.

    Pass 2 writes each key's first copy into its row of the table and compares every later copy
    with that row, bit for bit (reading rows in place is fast; gathering scattered patches from
    the images is not). A patch whose hash collided with a different patch leaves that key and
    becomes a key of its own.
    """
    total = plan.images.shape[0] * plan.per_image
    cls = plan.cls_of_row[plan.first] if plan.cls_of_row is not None else torch.zeros_like(plan.first)
    order = torch.argsort(cls * (total + 1) + plan.first)
    rank = torch.empty_like(order)  # distinct patch -> its row in the table
    rank[order] = torch.arange(len(order), device=order.device)
    first, counts, cls = plan.first[order], plan.counts[order], cls[order]
    keys, bad, bad_keys = _write_and_verify(plan, rank, first, cls)
    del rank
    if len(bad):
        keys, first, counts, cls = _split_collisions(plan, keys, first, counts, cls, bad, bad_keys)
    return _finish(plan, keys, first, counts, cls)


def _write_and_verify(plan: KeyPlan, rank, first, cls):
    """Pass 2: the table's patch columns, and the patches (with their key) that differ from their key."""
    d, per_image, device = plan.d, plan.per_image, first.device
    keys = torch.empty(first.shape[0], d + 3, dtype=torch.float32, device=device)
    buf = torch.empty(plan.step * per_image, d + 3, dtype=torch.float32, device=device)
    bad, bad_keys = [], []
    for i0, i1, win in plan.chunks():
        lo, hi = i0 * per_image, i1 * per_image
        block = buf[: hi - lo]
        patches_at(win, plan.rows, plan.cols, out=block)
        key = rank[plan.inverse[lo:hi]] if plan.inverse is not None else rank[lo:hi]
        is_first = first[key] == torch.arange(lo, hi, device=device)
        firsts = torch.nonzero(is_first).flatten()
        keys.index_copy_(0, key[firsts], block.index_select(0, firsts))
        later = torch.nonzero(~is_first).flatten()
        if len(later):
            k = key[later]
            mine = block.index_select(0, later)[:, :d].view(torch.int32)
            same = (mine == keys.index_select(0, k)[:, :d].view(torch.int32)).all(1)
            if plan.cls_of_row is not None:
                same &= plan.cls_of_row[later + lo] == cls[k]
            bad.append(later[~same] + lo)
            bad_keys.append(k[~same])
    bad = torch.cat(bad) if bad else first[:0]
    return keys, bad, (torch.cat(bad_keys) if bad_keys else first[:0])


def _split_collisions(plan: KeyPlan, keys, first, counts, cls, bad, bad_keys):
    """Hash collisions: those patches leave the key they were merged into (its count drops) and
    become keys of their own (count 1); the table is re-sorted by (class, place)."""
    d, per_image, total = plan.d, plan.per_image, plan.images.shape[0] * plan.per_image
    counts = counts - torch.bincount(bad_keys, minlength=counts.shape[0])
    img, rest = bad // per_image, bad % per_image
    win = windows(plan.padded, plan.p)
    extra = win[img, :, plan.rows[rest // len(plan.cols)], plan.cols[rest % len(plan.cols)]].reshape(len(bad), d)
    keys = torch.cat([keys, torch.empty(len(bad), d + 3, device=keys.device)])
    keys[-len(bad) :, :d] = extra
    counts = torch.cat([counts, torch.ones_like(bad)])
    first = torch.cat([first, bad])
    cls = torch.cat([cls, plan.cls_of_row[bad] if plan.cls_of_row is not None else torch.zeros_like(bad)])
    order = torch.argsort(cls * (total + 1) + first)
    return keys[order], first[order], counts[order], cls[order]


def _finish(plan: KeyPlan, keys, first, counts, cls) -> KeyTable:
    """Values (raw centre pixels), class spans, then the keys centred and augmented in place."""
    c, h, w = plan.images.shape[1:]
    p, d, per_image, device = plan.p, plan.d, plan.per_image, keys.device
    spans = None
    if plan.labels is not None:
        spans = {}
        for k in torch.unique(plan.labels).tolist():
            spans[int(k)] = (int(torch.searchsorted(cls, k)), int(torch.searchsorted(cls, k, right=True)))
    m = keys.shape[0]
    centre = torch.arange(c, device=device) * p * p + (p // 2) * p + p // 2
    values_t = torch.ones(c + 1, m, dtype=torch.float32, device=device)
    values_t[:c] = keys[:, centre].T
    mu = mean_patch(plan.padded, p, plan.rows, plan.cols)
    rows_per_step = max(1, ELEMS_PER_CHUNK // d)
    for lo in range(0, m, rows_per_step):
        part = keys[lo : lo + rows_per_step]
        part[:, :d] -= mu
        part[:, d] = sq_norms(part[:, :d])
    keys[:, d + 1] = torch.log2(counts.double()).float()
    keys[:, d + 2] = 1.0
    img, rest = first // per_image, first % per_image
    source = img * (h * w) + plan.rows[rest // len(plan.cols)] * w + plan.cols[rest % len(plan.cols)]
    kmax = float(keys[:, d].max().sqrt()) if m else 0.0
    return KeyTable(keys=keys, values_t=values_t, source=source, counts=counts, mu=mu, spans=spans, kmax=kmax)
