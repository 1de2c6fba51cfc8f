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

from collections.abc import Callable
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


def row_hash(
    block: torch.Tensor, coef: torch.Tensor, scratch: torch.Tensor, elementwise: bool | None = None
) -> torch.Tensor:
    """64-bit hash of each row of quantised values: [R, D] float32 -> [R] int64.

    Values are quantised to multiples of 2^-20 and hashed as sum_i q_i c_i mod 2^64, with one
    random odd 64-bit constant c_i per position (an exact integer product, wrapping). Equal rows
    get equal hashes; unequal rows rarely collide, and every merge is verified bit for bit anyway
    (rows closer than 2^-20 collide here and are kept apart there). Quantising, rather than
    hashing the float bits, matters: flipping a float's sign changes its bits by exactly 2^31,
    and such power-of-two steps cancel far too easily in a sum mod 2^64.
    Overwrites `block`; scratch: an int64 buffer of block's shape. elementwise: sum the products
    without a matrix product (default: off the CPU, since CUDA has no int64 matrix product).
    """
    block.mul_(QUANT).round_()  # exact in float32 for |values| < 8
    scratch.copy_(block)
    if elementwise is None:
        elementwise = scratch.device.type != "cpu"
    if not elementwise:
        return scratch @ coef
    return scratch.mul_(coef).sum(dim=1)  # the same wrapping sum: addition mod 2^64 is associative


QUANT = 2.0**20


def build_key_table(
    images: torch.Tensor,
    p: int,
    padding: str,
    rows: torch.Tensor,
    cols: torch.Tensor,
    labels: torch.Tensor | None = None,
    dedup: bool = True,
    max_bytes: float | Callable[[int], float] = float("inf"),
    padded: torch.Tensor | None = None,
) -> KeyTable | None:
    """Key table of every training patch centred on the grid rows x cols (all images).

    images: [N, C, H, W] float32; rows, cols: int64 centre coordinates; labels: [N] or None.
    With dedup, bit-identical patches of the same class are merged into one key with a count.
    Returns None, having stored nothing, when the table would take more than max_bytes.
    max_bytes may also be a function: given the bytes the table needs, it returns the bytes
    available (it may free some first; it is called once, before the table is stored).
    padded: the images already padded by P // 2 (saves a copy when building many groups).

    Patches are cut in (image, row, col) order, one chunk of images at a time, in two passes:
    hash them all; then write each distinct patch into its row of the table and compare every
    later copy with that row, bit for bit. (Reading rows in place is fast; gathering scattered
    patches from the images is not.)
    """
    n, c, h, w = images.shape
    d = c * p * p
    device = images.device
    rows, cols = rows.to(device), cols.to(device)
    padded = pad(images, p // 2, padding) if padded is None else padded
    win = windows(padded, p)
    per_image = len(rows) * len(cols)
    total = n * per_image
    step = max(1, ELEMS_PER_CHUNK // (per_image * d))  # images per chunk
    chunks = [(i0, min(n, i0 + step)) for i0 in range(0, n, step)]
    cls_of_row = None if labels is None else labels.to(device).repeat_interleave(per_image)  # [total]

    if dedup:
        # Pass 1: hash every patch (preallocated buffers: fresh large tensors cost page faults).
        coef = torch.randint(-(2**62), 2**62, (d,), generator=torch.Generator().manual_seed(20241226))
        coef = (coef | 1).to(device)
        hashes = torch.empty(total, dtype=torch.int64, device=device)
        buf = torch.empty(step * per_image, d, dtype=torch.float32, device=device)
        scratch = torch.empty(step * per_image, d, dtype=torch.int64, device=device)
        for i0, i1 in chunks:
            lo, hi = i0 * per_image, i1 * per_image
            block = buf[: hi - lo]
            patches_at(win[i0:i1], rows, cols, out=block)
            hashes[lo:hi] = row_hash(block, coef, scratch[: hi - lo])
        del buf, scratch
        if cls_of_row is not None:  # never merge across classes (also verified below)
            hashes += cls_of_row * 0x5851F42D4C957F2D
        _, inverse, counts = torch.unique(hashes, return_inverse=True, return_counts=True)
        del hashes
        first = torch.full((counts.shape[0],), total, dtype=torch.int64, device=device)
        first.scatter_reduce_(0, inverse, torch.arange(total, device=device), "amin")
    else:
        inverse, first = None, torch.arange(total, device=device)
        counts = torch.ones(total, dtype=torch.int64, device=device)
    need = first.shape[0] * row_bytes(d, c)
    if need > (max_bytes(need) if callable(max_bytes) else max_bytes):
        return None

    # Keys sorted by (class, place): each class is one contiguous span. rank: unique -> key row.
    cls = cls_of_row[first] if cls_of_row is not None else torch.zeros_like(first)
    order = torch.argsort(cls * (total + 1) + first)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=device)
    first, counts, cls = first[order], counts[order], cls[order]

    # Pass 2: write each key's first copy into the table; check every later copy against it.
    keys = torch.empty(first.shape[0], d + 3, dtype=torch.float32, device=device)
    buf = torch.empty(step * per_image, d + 3, dtype=torch.float32, device=device)
    bad, bad_keys = [], []
    for i0, i1 in chunks:
        lo, hi = i0 * per_image, i1 * per_image
        block = buf[: hi - lo]
        patches_at(win[i0:i1], rows, cols, out=block)
        key = rank[inverse[lo:hi]] if dedup else rank[lo:hi]
        is_first = first[key] == torch.arange(lo, hi, device=device)
        firsts = torch.nonzero(is_first).flatten()
        keys.index_copy_(0, key[firsts], block.index_select(0, firsts))
        later = torch.nonzero(~is_first).flatten()
        if len(later):
            k = key[later]
            mine = block.index_select(0, later)[:, :d].view(torch.int32)
            same = (mine == keys.index_select(0, k)[:, :d].view(torch.int32)).all(1)
            if cls_of_row is not None:
                same &= cls_of_row[later + lo] == cls[k]
            bad.append(later[~same] + lo)
            bad_keys.append(k[~same])
    del buf
    del inverse, rank
    bad = torch.cat(bad) if bad else first[:0]
    if len(bad):
        # Hash collisions: those patches differ from the key they were merged into. They leave
        # it (its count drops) and become keys of their own (count 1); re-sort by (class, place).
        counts = counts - torch.bincount(torch.cat(bad_keys), minlength=counts.shape[0])
        img, rest = bad // per_image, bad % per_image
        extra = win[img, :, rows[rest // len(cols)], cols[rest % len(cols)]].reshape(len(bad), d)
        keys = torch.cat([keys, torch.empty(len(bad), d + 3, device=device)])
        keys[-len(bad) :, :d] = extra
        counts = torch.cat([counts, torch.ones_like(bad)])
        first = torch.cat([first, bad])
        cls = torch.cat([cls, cls_of_row[bad] if cls_of_row is not None else torch.zeros_like(bad)])
        order = torch.argsort(cls * (total + 1) + first)
        keys, first, counts, cls = keys[order], first[order], counts[order], cls[order]

    spans = None
    if labels is not None:
        spans = {}
        for k in torch.unique(labels).tolist():
            spans[int(k)] = (int(torch.searchsorted(cls, k)), int(torch.searchsorted(cls, k, right=True)))

    # Finish the table in place: values (raw centre pixels), then centre the keys and add the
    # augmentation columns.
    m = keys.shape[0]
    centre = torch.arange(c, device=device) * p * p + (p // 2) * p + p // 2
    values_t = torch.ones(c + 1, m, dtype=torch.float32, device=device)
    values_t[:c] = keys[:, centre].T
    mu = mean_patch(padded, p, rows, cols)
    for lo in range(0, m, max(1, ELEMS_PER_CHUNK // d)):
        part = keys[lo : lo + max(1, ELEMS_PER_CHUNK // d)]
        part[:, :d] -= mu
        part[:, d] = sq_norms(part[:, :d])
    keys[:, d + 1] = torch.log2(counts.double()).float()
    keys[:, d + 2] = 1.0
    img, rest = first // per_image, first % per_image
    source = img * (h * w) + rows[rest // len(cols)] * w + cols[rest % len(cols)]
    kmax = float(keys[:, d].max().sqrt()) if m else 0.0
    return KeyTable(keys=keys, values_t=values_t, source=source, counts=counts, mu=mu, spans=spans, kmax=kmax)
