r"""Shifts, and how well a function commutes with them (chapter 06, equivariance).

A shift by d = (dy, dx) moves pixel u to u + d: ``shift(x, dy, dx)[..., i, j] = x[..., i - dy, j - dx]``.
Two ways to handle what leaves one side of the image:

- ``mode="circular"``: it comes back on the other side (the image is a torus; ``torch.roll``);
- ``mode="zeros"``: it is lost, and the vacated pixels take a constant ``fill``.

A function f of images *commutes* with a shift S (is equivariant to it) when f(S x) = S f(x).
:func:`equivariance_error` measures how far that is from true, shift by shift, and
:func:`border_distance` says which pixels a padded convolutional network can get right: those
whose receptive field sees neither the image's edge nor the seam a circular shift creates.

    from elslib import symmetry
    err = symmetry.equivariance_error(den_at_t, x, [(1, 0), (5, 7)])          # [2] max errors
    err_map, valid = symmetry.equivariance_map(den_at_t, x, 5, 7)             # per pixel
    profile = symmetry.equivariance_by_distance(den_at_t, x, [(1, 0), (5, 7)])  # [2, R] by distance
    dist, index, shifts = symmetry.nearest_shifted(samples, train)            # shift-blind NN

:func:`nearest_shifted` is the nearest-neighbour distance of :mod:`elslib.metrics` with every
circular shift of every training image as a candidate: the yardstick for the equivariant
machine, whose samples are shifted training images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from .checks import (
    check_callable,
    check_choice,
    check_images,
    check_integer,
    check_number,
    check_positive_int,
    check_sequence,
    check_size,
)

MODES = ("circular", "zeros")


def _offset(value, name: str) -> int:
    """A shift along one axis: an integer (a 0-d integer tensor too)."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        value = value.item()
    return check_integer(value, name)


def _shifts(shifts) -> list[tuple[int, int]]:
    pairs = check_sequence(shifts, "shifts", nonempty=False)
    if not all(isinstance(d, (tuple, list)) and len(d) == 2 for d in pairs):
        raise ValueError(f"shifts must be a list of pairs (dy, dx), got {shifts!r}")
    return [(_offset(dy, "shifts entry dy"), _offset(dx, "shifts entry dx")) for dy, dx in pairs]


def _apply(f, x: torch.Tensor) -> torch.Tensor:
    """f(x), checked to be one image per input image, of the same size (H, W); channels may differ."""
    out = f(x)
    if (
        not isinstance(out, torch.Tensor)
        or out.dim() < 3
        or (out.shape[0], *out.shape[-2:]) != (x.shape[0], *x.shape[-2:])
    ):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"f must map images to images of the same size: f(x) of shape {tuple(x.shape)} gave {got}")
    return out


def shift(x: torch.Tensor, dy: int, dx: int, mode: str = "circular", fill: float = 0.0) -> torch.Tensor:
    """Shift images [..., H, W] down by `dy` and right by `dx` pixels (negative: up, left).

    ``mode="circular"`` wraps around (the same as ``torch.roll(x, (dy, dx), (-2, -1))``);
    ``mode="zeros"`` drops what leaves the frame and fills the vacated pixels with `fill`
    (0 by default; -1 is the background of images in [-1, 1]).
    """
    check_choice(mode, "mode", MODES)
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of images [..., H, W], got {got}")
    dy, dx = _offset(dy, "dy"), _offset(dx, "dx")
    if mode == "circular":
        return torch.roll(x, (dy, dx), (-2, -1))
    fill = check_number(fill, "fill")
    h, w = x.shape[-2:]
    out = torch.full_like(x, fill)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_r, dst_r = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
    src_c, dst_c = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
    out[..., dst_r, dst_c] = x[..., src_r, src_c]
    return out


def valid_mask(size: tuple[int, int], dy: int, dx: int, mode: str = "circular") -> torch.Tensor:
    """bool [H, W]: pixels of ``shift(x, dy, dx, mode)`` that hold a pixel of x (all of them when
    circular; with zeros, not the vacated band that was filled)."""
    check_choice(mode, "mode", MODES)
    h, w = check_size(size, "size")
    dy, dx = _offset(dy, "dy"), _offset(dx, "dx")
    if mode == "circular":
        return torch.ones(h, w, dtype=torch.bool)
    return shift(torch.ones(h, w), dy, dx, mode="zeros", fill=0.0) > 0


def distance_to_edge(size: tuple[int, int]) -> torch.Tensor:
    """int64 [H, W]: how many pixels lie between each pixel and the nearest edge (0 on the edge)."""
    h, w = check_size(size, "size")
    rows = torch.arange(h)
    cols = torch.arange(w)
    dr = torch.minimum(rows, h - 1 - rows)
    dc = torch.minimum(cols, w - 1 - cols)
    return torch.minimum(dr[:, None], dc[None, :])


def border_distance(size: tuple[int, int], dy: int = 0, dx: int = 0, mode: str = "circular") -> torch.Tensor:
    """int64 [H, W]: for the comparison f(S x) against S f(x) at output pixel u, the distance from u
    to the nearest edge *in either frame*: the edge of the shifted image around u, and the edge of
    the original image around u - d (for a circular shift that second edge is the seam where the
    image wraps). A zero-padded convolutional network whose receptive field reaches r pixels from
    its centre commutes with the shift at every pixel where this is at least r.

    With ``mode="zeros"`` pixels outside :func:`valid_mask` get -1.
    """
    check_choice(mode, "mode", MODES)
    h, w = check_size(size, "size")
    here = distance_to_edge(size)
    rows = torch.arange(h)[:, None] - _offset(dy, "dy")
    cols = torch.arange(w)[None, :] - _offset(dx, "dx")
    if mode == "circular":
        rows, cols = rows % h, cols % w
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    there = distance_to_edge(size)[rows.clamp(0, h - 1), cols.clamp(0, w - 1)]
    return torch.where(inside, torch.minimum(here, there), torch.full_like(here, -1))


def equivariance_map(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, dy: int, dx: int, mode: str = "circular", fill=0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel, how far f is from commuting with one shift: ``(|f(S x) - S f(x)|, valid)``.

    f maps a batch [B, C, H, W] to images of the same size (e.g. ``lambda x: den(x, 0.5)``).
    Returns the absolute difference [B, C, H, W] and the bool [H, W] mask of pixels where
    S f(x) is defined (everywhere for circular shifts).
    """
    check_images(x, "x")
    check_callable(f, "f", (x,), call="f(images) -> images")
    with torch.no_grad():
        moved_first = _apply(f, shift(x, dy, dx, mode, fill))
        moved_after = shift(_apply(f, x), dy, dx, mode, fill)
    err = (moved_first - moved_after).abs()
    return err, valid_mask(tuple(x.shape[-2:]), dy, dx, mode).to(err.device)


def _shifted_errors(f, x, shifts, mode, fill, batch, progress):
    """Yield (dy, dx, |f(S x) - S f(x)| [B, C, H, W]) for each shift; f(x) computed once, the
    shifted inputs sent to f in batches of about `batch` images."""
    check_images(x, "x")
    check_choice(mode, "mode", MODES)
    check_callable(f, "f", (x,), call="f(images) -> images")
    shifts = _shifts(shifts)
    batch = check_positive_int(batch, "batch")
    per_call = max(1, batch // max(x.shape[0], 1))
    starts = range(0, len(shifts), per_call)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"{len(shifts)} shifts", leave=False)
    with torch.no_grad():
        base = _apply(f, x)
        for start in starts:
            group = shifts[start : start + per_call]
            moved = _apply(f, torch.cat([shift(x, dy, dx, mode, fill) for dy, dx in group]))
            for k, (dy, dx) in enumerate(group):
                yield dy, dx, (moved[k * len(x) : (k + 1) * len(x)] - shift(base, dy, dx, mode, fill)).abs()


def equivariance_error(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    shifts: Iterable[tuple[int, int]],
    mode: str = "circular",
    fill: float = 0.0,
    min_border: int = 0,
    batch: int = 256,
    progress: bool = False,
) -> torch.Tensor:
    """For each shift d, the largest |f(S_d x) - S_d f(x)| over images, channels and valid pixels:
    a float64 tensor [len(shifts)]. 0 (or float rounding) means f commutes with that shift.

    ``min_border``: only count pixels whose :func:`border_distance` is at least this (0: all
    valid pixels), to ask "does f commute with the shift away from the edges?"; NaN where no
    pixel qualifies. f(x) is computed once; the shifted inputs go to f in batches of about
    `batch` images (``progress``: a bar).
    """
    size = tuple(x.shape[-2:]) if isinstance(x, torch.Tensor) else None
    min_border = check_positive_int(min_border, "min_border", minimum=0)
    errors = []
    for dy, dx, err in _shifted_errors(f, x, shifts, mode, fill, batch, progress):
        keep = valid_mask(size, dy, dx, mode) & (border_distance(size, dy, dx, mode) >= min_border)
        errors.append(float(err[..., keep.to(err.device)].max()) if keep.any() else float("nan"))
    return torch.tensor(errors, dtype=torch.float64)


def equivariance_by_distance(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    shifts: Iterable[tuple[int, int]],
    mode: str = "circular",
    fill: float = 0.0,
    batch: int = 256,
    progress: bool = False,
) -> torch.Tensor:
    """The equivariance error split by how far each pixel is from the edges: a float64 tensor
    [len(shifts), R] whose entry [k, r] is the largest |f(S x) - S f(x)| for shift k over the
    pixels at :func:`border_distance` exactly r (NaN where there is none; R = min(H, W) // 2 + 1
    covers every distance). Its maximum over r is :func:`equivariance_error`; its maximum over
    r >= r0 is that with ``min_border=r0``, all from one pass over the shifts.
    """
    check_images(x, "x")
    size = tuple(x.shape[-2:])
    top = min(size) // 2 + 1
    rows = []
    for dy, dx, err in _shifted_errors(f, x, shifts, mode, fill, batch, progress):
        dist = border_distance(size, dy, dx, mode).to(err.device)
        per_pixel = err.flatten(0, -3).amax(dim=0)  # [H, W], largest over images and channels
        keep = dist >= 0
        row = torch.full((top,), -1.0, dtype=torch.float64)
        row = row.scatter_reduce(0, dist[keep].cpu(), per_pixel[keep].double().cpu(), reduce="amax")
        seen = torch.zeros(top, dtype=torch.bool)
        seen[dist[keep].unique().cpu()] = True
        rows.append(torch.where(seen, row, torch.full_like(row, float("nan"))))
    return torch.stack(rows) if rows else torch.empty(0, top, dtype=torch.float64)


def all_shifts(size: tuple[int, int]) -> list[tuple[int, int]]:
    """Every circular shift (dy, dx) of an H x W image, (0, 0) first: H * W of them."""
    h, w = check_size(size, "size")
    return [(dy, dx) for dy in range(h) for dx in range(w)]


def nearest_shifted(x: torch.Tensor, train: torch.Tensor, chunk: int | None = None):
    """For each image in x, the closest circular shift of any training image, in RMS pixel distance.

    Returns ``(distances [B], indices [B], shifts [B, 2])`` such that x[b] is closest to
    ``shift(train[indices[b]], *shifts[b])``. All H * W shifts of a training image are scored at
    once through the cross-correlation (by FFT, in float64):
    |x - S_d y|^2 = |x|^2 + |y|^2 - 2 sum_u x[u] y[u - d]. The winner's distance is then
    recomputed directly, so an exact copy comes out at 0. ``chunk``: training images scored at
    once (None: about 2**17 scores per chunk, the fastest on a CPU).
    """
    check_images(x, "x")
    check_images(train, "train", channels=x.shape[1], size=tuple(x.shape[-2:]))
    if len(train) == 0:
        raise ValueError("train must hold at least one image, got an empty batch")
    h, w = x.shape[-2:]
    if chunk is None:
        chunk = max(1, 2**17 // max(x[0].numel() * len(x), 1)) if len(x) else 1
    chunk = check_positive_int(chunk, "chunk")
    q = x.double()
    qf = torch.fft.rfft2(q)
    qn = q.square().sum((1, 2, 3))
    best = torch.full((len(q),), float("inf"), dtype=torch.float64, device=q.device)
    index = torch.zeros(len(q), dtype=torch.long, device=q.device)
    where = torch.zeros(len(q), dtype=torch.long, device=q.device)
    for start in range(0, len(train), chunk):
        y = train[start : start + chunk].double().to(q.device)
        yf = torch.fft.rfft2(y)
        corr = torch.fft.irfft2((qf[:, None] * yf[None].conj()).sum(2), s=(h, w))  # [B, n, H, W]
        d2 = qn[:, None, None, None] + y.square().sum((1, 2, 3))[None, :, None, None] - 2 * corr
        d, flat = d2.flatten(1).min(dim=1)
        better = d < best
        best = torch.where(better, d, best)
        index = torch.where(better, flat // (h * w) + start, index)
        where = torch.where(better, flat % (h * w), where)
    shifts = torch.stack([where // w, where % w], dim=1)
    if len(q) == 0:
        return best.float(), index, shifts
    nearest = torch.stack(
        [shift(train[int(i)].to(q.device).double(), int(s[0]), int(s[1])) for i, s in zip(index, shifts, strict=True)]
    )
    dist = ((q - nearest) ** 2).mean(dim=(1, 2, 3)).sqrt().float()
    return dist, index, shifts
