r"""How many images can a patch mosaic make? Counting patches, and counting mosaics.

The ELS machine builds each image from training patches, one per pixel, and the patches of
neighbouring pixels must agree where they overlap (each pixel is shared by P^2 windows). Two
kinds of counts make the size of that space concrete:

**Distinct patches** (grey values). :func:`distinct_patches_per_position` counts, at each
pixel, how many different P x P training patches are centred there: the candidates of the local
(LS) machine. :func:`distinct_patches` counts them over all positions at once: the candidates of
an interior pixel of the ELS machine.

**Locally consistent images** (black-and-white digits, so that "the same patch" is exact).
Binarise the training digits, collect every P x P window that occurs in them (zero padded, at any
position): the *allowed* windows. A binary image is *locally consistent* when every one of its
P x P windows is allowed -- the black-and-white version of "every patch of it is a training
patch", which is what an ELS sample is at t -> 0. How many such H x W images are there?

- :func:`count_consistent` counts them exactly, by trying all 2^(H W) images (tiny H x W only);
- :func:`tiling_lower_bound`: take the K pieces of h x w that are consistent as tiles (the piece
  with a blank margin r = P // 2 wide around it, every window of the tile allowed, those centred
  in the margin included: :func:`consistent_pieces`) and place them on a grid; every window then
  sees one tile's piece and blank, so every tiling is consistent, and different choices give
  different images: at least K^(tiles);
- :func:`knuth_estimate` estimates the count for a full-size image (Knuth, 1975): fill the
  pixels in reading order; at each pixel count the values (0 or 1) that keep every window it
  touches extendable to an allowed window, and follow one of them at random. The product of the
  counts along the path is an unbiased estimate of the number of consistent images (a dead end
  counts 0). Its logarithm is what matters here; the spread over runs shows the uncertainty.

Windows of up to 7 x 7 are coded as integers (bit k = pixel k of the window in reading order).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .checks import (
    check_images,
    check_integer,
    check_number,
    check_odd,
    check_positive_int,
    check_seed,
    check_sequence,
    check_size,
)
from .data import INK
from .machines.patches import hash_coefficients, row_hash

MAX_BITS = 49  # windows of up to 7 x 7 pixels fit into an int64 code (with room for a length)
MAX_BRUTE_PIXELS = 22  # count_consistent tries 2^(H W) images: at most about 4 million


# --------------------------------------------------------------------------- argument checks


def _binary_array(binary) -> np.ndarray:
    arr = binary.detach().cpu().numpy() if isinstance(binary, torch.Tensor) else np.asarray(binary)
    if arr.ndim != 3:
        raise ValueError(f"binary images must have shape [N, H, W], got {arr.shape}")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise ValueError("binary images must hold only 0 and 1 (or True and False); binarise() makes them")
    return arr.astype(np.int64)


def _check_allowed(allowed) -> np.ndarray:
    arr = allowed.detach().cpu().numpy() if isinstance(allowed, torch.Tensor) else np.asarray(allowed)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"allowed must be a 1-d array of integer window codes, got shape {arr.shape}, {arr.dtype}")
    return np.unique(arr.astype(np.int64))


# --------------------------------------------------------------------------- distinct grey patches


def distinct_patches_per_position(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """How many different P x P patches the training images have at each pixel: int64 [H, W].

    Patches are centred on the pixel and zero padded (value 0, as the machines pad); two patches
    are the same when they are equal value for value (all channels), at the patch hash's
    resolution of 2^-20 (about 1e-6; any two grey levels of 8-bit images are far apart). At a pixel where every
    training image is blank the count is 1; it is at most N. These are the candidates the local
    (LS) machine chooses from at that pixel. See :func:`distinct_patches` for how they are found.
    """
    return _count_distinct(images, patch_size, per_position=True)


def distinct_patches(images: torch.Tensor, patch_size: int) -> int:
    """How many different P x P patches occur anywhere in the training images (zero padded).

    These are the candidates of an ELS machine that may take any training patch anywhere.
    Patches are grouped by the library's patch hash (``machines.patches.row_hash``, which
    compares values at a resolution of 2^-20: any two grey levels of 8-bit images are far
    apart); a second, independent 64-bit hash checks every group, and a group whose second hashes
    disagree (a collision of the first) is counted row by row. Equal patches always get equal
    hashes, and two patches that differ in a single value by 2^-20 or more never collide (the
    multipliers are odd), so the count can only be wrong if two different patches collided in
    both hashes at once: vanishingly unlikely.
    """
    return int(_count_distinct(images, patch_size, per_position=False))


def _count_distinct(images: torch.Tensor, patch_size: int, per_position: bool, chunk: int = 2**16):
    check_images(images, "images")
    p = check_odd(patch_size, "patch_size", 2 * max(images.shape[-2:]) - 1)
    x = images.detach().float().cpu()
    n, c, h, w = x.shape
    r, d, per = p // 2, c * p * p, h * w
    win = F.pad(x, (r, r, r, r), value=0.0).unfold(2, p, 1).unfold(3, p, 1)  # [N, C, H, W, P, P], a view
    coef = torch.stack([hash_coefficients(d, 8), hash_coefficients(d, 9)], dim=1)  # [D, 2]: two hashes
    hashes = torch.empty(n * per, 2, dtype=torch.int64)
    step = max(1, chunk // per)  # images per chunk
    for s in range(0, n, step):
        block = win[s : s + step].permute(0, 2, 3, 1, 4, 5).reshape(-1, d).clone()  # row_hash overwrites it
        hashes[s * per : s * per + len(block)] = row_hash(block, coef)
    order = torch.sort(hashes[:, 0], stable=True).indices
    if per_position:  # group by (position, first hash): sort by position, keeping the hash order within
        order = order[torch.sort(order % per, stable=True).indices]
    key_h, key_p = hashes[order, 0], (order % per if per_position else torch.zeros_like(order))
    starts = torch.ones(len(order), dtype=torch.bool)
    starts[1:] = (key_h[1:] != key_h[:-1]) | (key_p[1:] != key_p[:-1])
    group = torch.cumsum(starts, 0) - 1
    counts = torch.bincount(key_p[starts], minlength=per if per_position else 1)
    second = hashes[order, 1]
    suspicious = torch.unique(group[second != second[starts][group]])  # groups whose second hashes disagree
    for g in suspicious.tolist():  # (practically never) count such a group row by row
        members = order[group == g]
        patches = win[members // per, :, (members // w) % h, members % w].reshape(len(members), d)
        counts[key_p[group == g][0]] += torch.unique(patches, dim=0).shape[0] - 1
    return counts.view(h, w) if per_position else counts[0]


# --------------------------------------------------------------------------- binary windows


def binarise(images: torch.Tensor, threshold: float = INK) -> torch.Tensor:
    """Grey images [N, 1, H, W] in [-1, 1] -> bool [N, H, W]: True where the pixel is above threshold
    (the course's ink threshold ``data.INK`` by default)."""
    check_images(images, "images", channels=1)
    return images[:, 0] > check_number(threshold, "threshold")


def window_codes(binary, patch_size: int) -> np.ndarray:
    """The code of the zero-padded P x P window around every pixel: int64 [N, H, W].

    Bit k of a code is pixel k of the window, counted in reading order (row by row, from the top
    left). P <= 7, so that a code fits into 49 bits.
    """
    b = _binary_array(binary)
    p = check_odd(patch_size, "patch_size", 7)
    r = p // 2
    n, h, w = b.shape
    padded = np.zeros((n, h + 2 * r, w + 2 * r), np.int64)
    padded[:, r : r + h, r : r + w] = b
    code = np.zeros((n, h, w), np.int64)
    for k in range(p * p):
        di, dj = divmod(k, p)
        code |= padded[:, di : di + h, dj : dj + w] << k
    return code


def allowed_windows(binary, patch_size: int) -> np.ndarray:
    """Sorted codes of the distinct P x P windows that occur anywhere in binary images [N, H, W]."""
    return np.unique(window_codes(binary, patch_size))


def decode_window(code: int, patch_size: int) -> np.ndarray:
    """The P x P 0/1 window of a code (inverse of :func:`window_codes` for one window)."""
    p = check_odd(patch_size, "patch_size", 7)
    code = check_integer(code, "code", low=0)
    if code >= 1 << (p * p):
        raise ValueError(f"code must be below 2^(P*P) = {1 << (p * p)} for P = {p}, got {code}")
    return ((code >> np.arange(p * p)) & 1).reshape(p, p)


def is_consistent(binary, allowed, patch_size: int) -> np.ndarray:
    """For each binary image [N, H, W]: is every one of its P x P windows (zero padded) allowed? bool [N]."""
    codes = window_codes(binary, patch_size)
    return np.isin(codes.reshape(len(codes), -1), _check_allowed(allowed)).all(axis=1)


def count_consistent(allowed, patch_size: int, height: int, width: int) -> int:
    """Exact number of binary height x width images whose every P x P window is allowed.

    Tries all 2^(height * width) images, so height * width may be at most 22.
    """
    h, w = check_positive_int(height, "height"), check_positive_int(width, "width")
    if h * w > MAX_BRUTE_PIXELS:
        raise ValueError(
            f"count_consistent tries all 2^(height*width) images; height*width = {h * w} is more than "
            f"{MAX_BRUTE_PIXELS}. Use knuth_estimate for larger images."
        )
    allowed = _check_allowed(allowed)
    total = 0
    block = 1 << min(h * w, 16)
    for start in range(0, 1 << (h * w), block):
        idx = np.arange(start, start + block, dtype=np.int64)
        images = ((idx[:, None] >> np.arange(h * w)) & 1).reshape(-1, h, w)
        total += int(is_consistent(images, allowed, patch_size).sum())
    return total


def consistent_pieces(allowed, patch_size: int, height: int, width: int) -> np.ndarray:
    """Every binary height x width piece that is consistent *as a tile*: int64 [K, height, width].

    The tile is the piece with a blank margin r = P // 2 wide on every side. Every window centred
    anywhere in the tile must be allowed, the windows centred in the margin (which see the piece's
    edge) included, not only those centred on the piece. Tries all 2^(height * width) pieces, so
    height * width may be at most 22.
    """
    h, w = check_positive_int(height, "height"), check_positive_int(width, "width")
    if h * w > MAX_BRUTE_PIXELS:
        raise ValueError(
            f"consistent_pieces tries all 2^(height*width) pieces; height*width = {h * w} is more than "
            f"{MAX_BRUTE_PIXELS}"
        )
    p = check_odd(patch_size, "patch_size", 7)
    allowed = _check_allowed(allowed)
    r = p // 2
    found = []
    block = 1 << min(h * w, 14)
    for start in range(0, 1 << (h * w), block):
        idx = np.arange(start, min(start + block, 1 << (h * w)), dtype=np.int64)
        pieces = ((idx[:, None] >> np.arange(h * w)) & 1).reshape(-1, h, w)
        tiles = np.zeros((len(pieces), h + 2 * r, w + 2 * r), np.int64)
        tiles[:, r : r + h, r : r + w] = pieces
        found.append(pieces[is_consistent(tiles, allowed, p)])
    return np.concatenate(found)


@dataclass
class TilingBound:
    """A lower bound on the number of consistent images: ``pieces ** tiles`` (see tiling_lower_bound)."""

    pieces: int  # pieces that are consistent as a tile (piece plus blank margins)
    tiles: int  # tiles placed on the image
    tile: tuple  # (height, width) of one tile
    log10: float  # log10(pieces ** tiles)


def tiling_lower_bound(allowed, patch_size: int, piece=(4, 4), size=(32, 32)) -> TilingBound:
    """A proven lower bound on the number of consistent images of `size`, built from small pieces.

    Each piece is surrounded by a blank margin r = P // 2 wide, and these tiles are laid side by
    side (what is left at the right and bottom stays blank). A window of the result centred in a
    tile reaches at most r pixels beyond the tile, so at most 2r beyond its piece, and the next
    piece is 2r + 1 pixels away: it is a window of that one tile, blank beyond; a window centred in
    the leftover blank reaches at most r pixels into a margin, so it sees only blank. So the tiling is
    consistent exactly when every tile is, margins included (:func:`consistent_pieces`; counting the pieces that are
    consistent on their own would miss the windows centred in the margins). Pieces are chosen
    independently, so the tilings number pieces^tiles, and different choices give different images.
    Needs the blank window (code 0) to be allowed, as it is for digits.
    """
    p = check_odd(patch_size, "patch_size", 7)
    allowed = _check_allowed(allowed)
    if 0 not in allowed:
        raise ValueError("the blank window (code 0) is not allowed, so blank margins are not consistent")
    ph, pw = check_size(piece, "piece")
    hh, ww = check_size(size, "size")
    r = p // 2
    th, tw = ph + 2 * r, pw + 2 * r
    if th > hh or tw > ww:
        raise ValueError(f"a tile of {th}x{tw} (piece plus margins) does not fit into size {hh}x{ww}")
    if ph * pw > MAX_BRUTE_PIXELS:
        raise ValueError(f"piece has {ph * pw} pixels; its pieces are tried one by one, so at most {MAX_BRUTE_PIXELS}")
    pieces = len(consistent_pieces(allowed, p, ph, pw))  # at least the blank piece
    tiles = (hh // th) * (ww // tw)
    return TilingBound(pieces, tiles, (th, tw), tiles * math.log10(pieces))


def tile_image(pieces, patch_size: int, size=(32, 32)) -> np.ndarray:
    """Place binary pieces on a grid of tiles with blank margins, as tiling_lower_bound counts.

    pieces: a list of [h, w] arrays, or one array [K, h, w] (as :func:`consistent_pieces` returns).
    """
    p = check_odd(patch_size, "patch_size", 7)
    r = p // 2
    hh, ww = check_size(size, "size")
    if isinstance(pieces, (np.ndarray, torch.Tensor)) and pieces.ndim == 3:
        pieces = list(np.asarray(pieces))
    shapes = {np.shape(piece) for piece in check_sequence(pieces, "pieces")}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"pieces must be 2-d arrays [h, w] all of one shape, got shapes {sorted(shapes)}")
    ph, pw = next(iter(shapes))
    th, tw = ph + 2 * r, pw + 2 * r
    out = np.zeros((hh, ww), np.int64)
    slots = [(i, j) for i in range(hh // th) for j in range(ww // tw)]
    if len(pieces) > len(slots):
        raise ValueError(f"{len(pieces)} pieces given but only {len(slots)} tiles fit")
    for piece, (i, j) in zip(pieces, slots, strict=False):
        out[i * th + r : i * th + r + ph, j * tw + r : j * tw + r + pw] = np.asarray(piece)
    return out


def _prefix_keys(allowed: np.ndarray, p: int) -> np.ndarray:
    """Sorted (length << 50 | prefix) keys: every first-L-pixels prefix of an allowed window."""
    keys = [
        (np.int64(length) << 50) | np.unique(allowed & ((np.int64(1) << length) - 1)) for length in range(1, p * p + 1)
    ]
    return np.unique(np.concatenate(keys))


@dataclass
class KnuthEstimate:
    """Knuth's estimate of the number of consistent images.

    log10_runs: log10 of each run's product of counts (-inf for a dead end);
    log10_count: log10 of their mean, the estimate itself; alive: share of runs without a dead end.
    """

    log10_runs: np.ndarray
    log10_count: float
    alive: float
    images: np.ndarray  # int64 [runs, H, W]: the image each run built (consistent where alive)


def knuth_estimate(allowed, patch_size: int, height: int, width: int, runs: int = 200, seed: int = 0) -> KnuthEstimate:
    """Estimate the number of binary height x width images whose every P x P window is allowed.

    Knuth's (1975) estimator, all runs at once: pixels are set in reading order; at each, the
    values that keep every window through the pixel a prefix of some allowed window are counted
    (a window's pixels already set are exactly a prefix of it in reading order), one is chosen at
    random, and the run's weight is multiplied by the count. The mean weight is an unbiased
    estimate of the count; with few runs it tends to fall short (rare heavy runs are missed).
    """
    p = check_odd(patch_size, "patch_size", 7)
    h, w = check_positive_int(height, "height"), check_positive_int(width, "width")
    runs = check_positive_int(runs, "runs")
    seed = check_seed(seed)
    allowed = _check_allowed(allowed)
    keys = _prefix_keys(allowed, p)
    rng = np.random.default_rng(seed)
    r = p // 2
    code = np.zeros((runs, h, w), np.int64)  # bits set so far of the window around every pixel
    image = np.zeros((runs, h, w), np.int64)
    log_w = np.zeros(runs)
    alive = np.ones(runs, bool)
    for a in range(h):
        for b in range(w):
            ii, jj = np.meshgrid(
                np.arange(max(a - r, 0), min(a + r, h - 1) + 1),
                np.arange(max(b - r, 0), min(b + r, w - 1) + 1),
                indexing="ij",
            )
            ii, jj = ii.ravel(), jj.ravel()  # windows (by centre) that contain pixel (a, b)
            bit = (a - ii + r) * p + (b - jj + r)  # where (a, b) sits in each of them
            length = bit + 1  # pixels of each window known after this one (reading order)
            last = (np.minimum(ii + r, h - 1) == a) & (np.minimum(jj + r, w - 1) == b)
            length = np.where(last, p * p, length)  # the rest of such a window is blank margin
            current = code[:, ii, jj]
            ok = []
            for v in (0, 1):
                key = (length.astype(np.int64) << 50) | current | (np.int64(v) << bit)
                pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
                ok.append((keys[pos] == key).all(axis=1))
            count = ok[0].astype(np.int64) + ok[1]
            alive &= count > 0
            log_w += np.log(np.maximum(count, 1))
            one = np.where(count == 2, rng.random(runs) < 0.5, ok[1])
            code[:, ii, jj] |= one.astype(np.int64)[:, None] << bit
            image[:, a, b] = one
    log10_runs = np.where(alive, log_w / math.log(10), -np.inf)
    if alive.any():
        top = log10_runs[alive].max()
        log10_count = float(top + math.log10(np.sum(10.0 ** (log10_runs[alive] - top)) / runs))
    else:
        log10_count = -math.inf
    return KnuthEstimate(log10_runs, log10_count, float(alive.mean()), image)
