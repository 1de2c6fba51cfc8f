"""Figures: image grids with labels, and the small helpers every chapter uses.

Images come in as tensors [N, C, H, W] in [-1, 1] (as everywhere in elslib) or numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def to_display(image) -> np.ndarray:
    """One image [C, H, W] (or [H, W]) in [-1, 1] -> numpy [H, W] or [H, W, 3] in [0, 1]."""
    from .data import denormalise

    x = image.detach().float().cpu() if isinstance(image, torch.Tensor) else torch.as_tensor(image, dtype=torch.float32)
    if x.dim() == 3:
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    return denormalise(x).numpy()


def show_image(ax, image, title: str | None = None, cmap: str = "gray") -> None:
    """Draw one [-1, 1] image on a matplotlib axis, without ticks."""
    ax.imshow(to_display(image), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)


def show_grid(images, labels=None, ncols: int | None = None, title: str | None = None, cell: float = 1.2, axes=None):
    """Show a batch of images [N, C, H, W] in [-1, 1] as a grid, each captioned by its label.

    labels: None, a sequence of N captions (numbers or strings), or a tensor of N ints.
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    n = len(images)
    if n == 0:
        raise ValueError("images is empty: nothing to show")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries but there are {n} images")
    ncols = ncols or min(n, 10)
    nrows = math.ceil(n / ncols)
    if axes is None:
        # constrained layout keeps multi-line captions clear of the row above (tight_layout lets them overlap)
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if title else 0)), layout="constrained"
        )
    else:
        fig = np.ravel(axes)[0].figure
    axes = np.ravel(np.atleast_1d(axes))
    for i, ax in enumerate(axes):
        if i < n:
            caption = None if labels is None else str(labels[i].item() if hasattr(labels[i], "item") else labels[i])
            show_image(ax, images[i], caption)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title)
    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):  # the caller's own figure
        fig.tight_layout()
    return fig


def source_colours(n_sources: int, seed: int = 0) -> np.ndarray:
    """A fixed, well spread RGB colour for each training image index: float [n_sources, 3] in [0, 1]."""
    import matplotlib as mpl

    base = np.concatenate([mpl.colormaps["tab20"](np.arange(20))[:, :3], mpl.colormaps["tab20b"](np.arange(20))[:, :3]])
    if n_sources <= len(base):
        return base[:n_sources]
    rng = np.random.default_rng(seed)
    return np.concatenate([base, rng.uniform(0.15, 0.95, size=(n_sources - len(base), 3))])


def mosaic_image(source_index, n_sources: int | None = None, seed: int = 0, mask=None) -> np.ndarray:
    """Colour each pixel by the training image its winning patch came from.

    source_index: int [H, W] (tensor or array), the winning training image per pixel (as from a
    machine's ``explain``). Returns RGB float [H, W, 3]. Colours are assigned to the distinct
    sources in order of how many pixels they win, so the biggest pieces get the clearest colours.
    mask: optional bool [H, W]; pixels outside it are drawn dark grey and take no colour (use it
    to colour only the ink of a digit: the background's winner is an arbitrary blank patch).
    """
    idx = np.asarray(source_index.cpu() if isinstance(source_index, torch.Tensor) else source_index)
    if idx.ndim != 2:
        raise ValueError(f"source_index must be [H, W], got shape {idx.shape}")
    keep = (
        np.ones(idx.shape, bool) if mask is None else np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask)
    )
    rgb = np.full(idx.shape + (3,), 0.12)
    if keep.any():
        values, counts = np.unique(idx[keep], return_counts=True)
        order = values[np.argsort(-counts, kind="stable")]
        palette = source_colours(len(order), seed)
        rank = {int(v): i for i, v in enumerate(order)}
        rgb[keep] = palette[[rank[int(v)] for v in idx[keep]]]
    return rgb


def ink_mask(image, threshold: float | None = None) -> np.ndarray:
    """The strokes of grey [-1, 1] images: pixels brighter than `threshold` (default ``data.INK``, mid-grey).

    image: one image [1, H, W] or [H, W] -> bool [H, W]; a batch [B, 1, H, W] -> bool [B, H, W].
    """
    from .data import INK

    x = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.as_tensor(image)
    if x.ndim >= 3:
        if x.shape[-3] != 1:
            raise ValueError(f"image must have one (grey) channel, got shape {tuple(x.shape)}")
        x = x.select(-3, 0)
    return (x > (INK if threshold is None else threshold)).numpy()


def show_mosaic(ax, source_index, title: str | None = None, image=None) -> None:
    """Draw a patch mosaic on a matplotlib axis: each pixel coloured by its source training image.

    image: optional [1, H, W] sample; when given, only its ink (``ink_mask``) is coloured.
    """
    mask = None if image is None else ink_mask(image)
    ax.imshow(mosaic_image(source_index, mask=mask), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
