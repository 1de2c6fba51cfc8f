"""Figures: image grids with labels, and the small helpers every chapter uses.

Images come in as tensors [N, C, H, W] in [-1, 1] (as everywhere in elslib) or numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def to_display(image) -> np.ndarray:
    """One image [C, H, W] (or [H, W]) in [-1, 1] -> numpy [H, W] or [H, W, 3] in [0, 1]."""
    x = image.detach().float().cpu() if isinstance(image, torch.Tensor) else torch.as_tensor(image, dtype=torch.float32)
    if x.dim() == 3:
        x = x[0] if x.shape[0] == 1 else x.permute(1, 2, 0)
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0).numpy()


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

    n = len(images)
    if n == 0:
        raise ValueError("images is empty: nothing to show")
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries but there are {n} images")
    ncols = ncols or min(n, 10)
    nrows = math.ceil(n / ncols)
    if axes is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if title else 0)))
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
    fig.tight_layout()
    return fig
