r"""LocalityProbe: which input pixels does a CNN's output pixel depend on? Next to the LS window."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib as mpl
import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.patches import Rectangle

from ... import networks, receptive
from ...denoisers import schedule_of
from . import helpers
from .base import FIELD, LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, WINDOW, Explorer, as_array
from .picking import PixelPicker

T_MIN = 0.02  # the time slider's lowest t: at t = 0, x0_hat = x_t and the gradient map is a single pixel


class LocalityProbe(Explorer):
    r"""The gradient map of a CNN denoiser for one output pixel, beside the local machine's window.

    For a noisy image x_t and an output pixel u, the gradient |d x0_hat[u] / d x_t| says how much
    each input pixel moves the network's estimate at u. A convolutional network is *local*: the
    map is exactly zero outside its receptive field (dashed yellow square: 2L + 5 pixels for the
    minimal ResNet with L blocks) and in practice concentrated on a much smaller region. The
    local score machine (LS) with patch size P looks at exactly the P x P window around u (blue).

    Shows: x_t with u and both squares; the gradient map (log colour scale) with both squares;
    and the share of the gradient's total absolute size inside the P x P window, for every P,
    with the current P marked -- where that curve levels off is the network's effective patch size.

    Controls: ``row``, ``col`` (IntSliders: the output pixel u), ``t`` (FloatSlider: noise level;
    the effective window shrinks as t goes to 0), ``patch_size`` (IntSlider, odd P of the LS
    window), ``index`` (IntSlider: which MNIST image is noised), ``seed``. Every change takes one
    forward and backward pass of the network (milliseconds). With ipyevents installed, a click on
    x_t or the gradient map chooses u there (the sliders follow; ``select(row, col)`` does it from
    code), and the arrow keys move u while the mouse is over the figure.

    ``shown``: ``x_t`` ([H, W]), ``gradient`` ([H, W] absolute gradient, summed over channels),
    ``inside`` (share of the gradient inside the P x P window, float), ``share_by_p`` (that share
    for P = 1, 3, ...), ``receptive_field`` (int or None), ``pixel``, ``patch_size``, ``t``.

    Args:
        network: "auto" (the shipped "resnet-zeros" when present, else a randomly initialised
            minimal ResNet -- locality does not need training), a shipped network's name, an
            ``nn.Module`` of the library (predicting eps or v), or a ``networks.NetworkDenoiser``.
        dataset: the images to noise (default "mnist", what the shipped networks know).
        index, t, row, col, patch_size, seed: initial control values: index one of the n_images
            images, t in [0.02, 1] (the slider's range), row and col inside the image, patch_size an
            odd P from 1 to the image side, seed from 0 to 1,000,000.
        schedule: the noise schedule (the network's own by default); n_images: how many images the
            image slider offers (more than the dataset holds means all of it).

    Raises ValueError, before anything loads, for an argument outside these ranges.
    """

    title = "Locality probe: what a CNN output pixel looks at"
    hint = (
        "click a pixel of x_t or of the gradient map (arrow keys move it while the mouse is over the "
        "figure), move t; the gradient never leaves the receptive field"
    )

    def __init__(
        self,
        network="auto",
        dataset="mnist",
        index=0,
        t=0.5,
        row=None,
        col=None,
        patch_size=7,
        seed=0,
        schedule=None,
        n_images=100,
        progress=True,
    ):
        # every argument is checked before a network or data loads, or any control is built
        helpers.check_network(network)
        helpers.check_dataset(dataset)
        n_images = helpers.check_n_images(n_images)
        index = helpers.check_index(index, "index", n_images, f" (one of the first n_images={n_images} images)")
        t = helpers.check_time(t, low=T_MIN, why=" (the slider's range: at t = 0 the gradient is one pixel)")
        row = None if row is None else helpers.check_index(row, "row")
        col = None if col is None else helpers.check_index(col, "col")
        patch_size, seed = helpers.check_patch(patch_size), helpers.check_seed(seed)
        helpers.check_schedule(schedule)
        denoiser, name = helpers.resolve_network(network, schedule)
        if denoiser is None:
            torch.manual_seed(0)
            denoiser = networks.as_denoiser(networks.ResNet(channels=32, blocks=6), schedule)
            name = "ResNet, random weights"
        self.net = helpers.network_module(denoiser)
        if self.net is None:
            raise ValueError("LocalityProbe needs a network (an nn.Module), to take gradients through it")
        self.denoiser, self.schedule = denoiser, schedule_of(denoiser, schedule)
        self.network_name = name
        self.receptive_field = getattr(self.net, "receptive_field", None)
        self.images, _ = helpers.training_set(dataset, n_images)
        c, h, w = self.images.shape[1:]
        self.top = helpers.largest_patch((h, w))
        count = len(self.images)  # n_images may exceed a small dataset
        helpers.check_index(index, "index", count, f" (the {count} images of {dataset!r})")
        for arg, value, side, what in (("row", row, h, "row"), ("col", col, w, "column")):
            if value is not None:
                helpers.check_index(value, arg, side, f" (a pixel {what} of the {h}x{w} images)")
        helpers.check_patch(patch_size, top=self.top, where=f"the {h}x{w} {dataset} images (the slider's range)")
        super().__init__(progress)

        self.row = widgets.IntSlider(
            value=h // 2 if row is None else row, min=0, max=h - 1, description="pixel row", style=SLIDER_STYLE
        )
        self.col = widgets.IntSlider(
            value=w // 2 if col is None else col, min=0, max=w - 1, description="column", style=SLIDER_STYLE
        )
        self.t = widgets.FloatSlider(
            value=t, min=T_MIN, max=1.0, step=0.02, description="time t", readout_format=".2f", style=SLIDER_STYLE
        )
        self.patch_size = widgets.IntSlider(
            value=patch_size,
            min=1,
            max=self.top,
            step=2,
            description="LS patch P",
            style=SLIDER_STYLE,
        )
        self.index = widgets.IntSlider(
            value=index, min=0, max=len(self.images) - 1, description="image", style=SLIDER_STYLE
        )
        self.seed = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=10**6,
            description="noise seed",
            layout=widgets.Layout(width="160px"),
            style=SLIDER_STYLE,
        )
        self.controls = [(self.row, self.col, self.patch_size), (self.t, self.index, self.seed)]
        for control in (self.row, self.col, self.t, self.patch_size, self.index, self.seed):
            self._on(control)
        self._grads = helpers.LRU(64)

        self.fig = self._figure(8.4, 3.3)
        gs = self.fig.add_gridspec(
            1, 3, width_ratios=[1, 1.2, 1.15], left=0.02, right=0.98, top=0.8, bottom=0.16, wspace=0.5
        )
        self.ax_x, self.ax_grad, self.ax_share = (self.fig.add_subplot(gs[0, i]) for i in range(3))
        self._finish_init()
        # Click-to-pick on the two H x W panels; after the first drawing, so the axes have their places.
        self.picker = PixelPicker(self, [self.ax_x, self.ax_grad], (h, w))

    def select(self, row: int, col: int) -> None:
        """Choose the output pixel u = (row, col) and redraw once."""
        with self.hold():
            self.row.value, self.col.value = int(row), int(col)
        self.refresh()

    def close(self) -> None:
        """Close the widgets, the click and key listener included."""
        self.picker.close()
        super().close()

    # ------------------------------------------------------------------------- computing
    def gradient(self, row: int, col: int, t: float, index: int, seed: int):
        """(x_t [C, H, W], |d x0_hat[row, col] / d x_t| summed over channels, float64 [H, W]); cached.

        The gradient map is receptive.gradient_map's: x0_hat is the network's, whatever it predicts.
        """

        def compute():
            x0 = self.images[index : index + 1]
            x_t = self.schedule.add_noise(x0, t, helpers.noise(tuple(x0.shape[1:]), seed))
            grad = receptive.gradient_map(self.denoiser, x_t, t, (row, col))
            return x_t[0], receptive.gradient_mass(grad[0])

        return self._grads.get_or((row, col, t, index, seed), compute)

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        r, c, p, t = self.row.value, self.col.value, self.patch_size.value, float(self.t.value)
        x_t, grad = self.gradient(r, c, t, self.index.value, self.seed.value)
        sizes = np.arange(1, self.top + 1, 2)
        share = receptive.share_by_window(grad, (r, c), sizes.tolist()).numpy()
        inside = float(share[sizes == p][0])
        grad = grad.numpy()
        self.shown = {
            "x_t": as_array(x_t),
            "gradient": grad,
            "inside": inside,
            "share_by_p": share,
            "sizes": sizes,
            "receptive_field": self.receptive_field,
            "pixel": (r, c),
            "patch_size": p,
            "t": t,
        }
        if not self._art:
            self._setup_axes(sizes)
        art = self._art
        self._show(self.ax_x, "x", x_t, f"noisy input x$_t$, t = {t:.2f}\noutput pixel u = ({r}, {c})")
        positive = grad[grad > 0]
        top = float(grad.max()) if grad.max() > 0 else 1.0
        low = max(float(positive.min()) if positive.size else top * 1e-6, top * 1e-4)
        art["grad"].set_data(np.where(grad > 0, grad, np.nan))
        art["grad"].set_norm(LogNorm(vmin=low, vmax=top))
        rf = "whole image" if self.receptive_field is None else f"{self.receptive_field}x{self.receptive_field}"
        self.ax_grad.set_title(
            f"gradient |$\\partial\\hat{{x}}_0$[u] / $\\partial$x$_t$| of {self.network_name}\n"
            f"receptive field {rf}; grey: exactly 0",
            fontsize=TITLE_SIZE,
        )
        for ax in (self.ax_x, self.ax_grad):
            key = id(ax)
            art[("pix", key)].set_xy((c - 0.5, r - 0.5))
            art[("win", key)].set_bounds(c - p / 2, r - p / 2, p, p)
            if self.receptive_field is not None:
                q = self.receptive_field
                art[("rf", key)].set_bounds(c - q / 2, r - q / 2, q, q)
        art["share"].set_data(sizes, share)
        art["now"].set_data([p], [inside])
        art["now_text"].set_text(f"P = {p}: {inside:.0%} inside")
        art["now_text"].xy = (p, inside)
        art["now_text"].set_ha("left" if p < self.top * 0.6 else "right")
        art["now_text"].set_position((6 if p < self.top * 0.6 else -6, -14))

    def _setup_axes(self, sizes):
        art = self._art
        h, w = self.images.shape[-2:]
        cmap = mpl.colormaps["magma"].with_extremes(bad="#d9d9d9")
        art["grad"] = self.ax_grad.imshow(np.ones((h, w)), cmap=cmap, interpolation="nearest")
        self.ax_grad.set_xticks([])
        self.ax_grad.set_yticks([])
        cax = self.ax_grad.inset_axes([1.04, 0.0, 0.05, 1.0])
        bar = self.fig.colorbar(art["grad"], cax=cax)
        bar.ax.tick_params(labelsize=LABEL_SIZE - 2)
        for ax in (self.ax_x, self.ax_grad):
            key = id(ax)
            art[("pix", key)] = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec=MARK, lw=1.5, zorder=4))
            art[("win", key)] = ax.add_patch(
                Rectangle((0, 0), 1, 1, fill=False, ec=WINDOW, lw=1.6, zorder=3, label="LS window P x P")
            )
            if self.receptive_field is not None:
                art[("rf", key)] = ax.add_patch(
                    Rectangle((0, 0), 1, 1, fill=False, ec=FIELD, lw=1.4, ls="--", zorder=3, label="receptive field")
                )
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
        self.ax_x.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.02),
            ncol=2,
            fontsize=LABEL_SIZE - 1.5,
            frameon=False,
            handlelength=1.2,
            columnspacing=0.8,
        )
        ax = self.ax_share
        art["share"] = ax.plot(sizes, np.zeros(len(sizes)), "-o", color=WINDOW, ms=3, lw=1.6)[0]
        art["now"] = ax.plot([1], [0], "o", color=MARK, ms=8, zorder=3)[0]
        art["now_text"] = ax.annotate(
            "", (1, 0), textcoords="offset points", xytext=(6, -14), fontsize=LABEL_SIZE, color=MARK
        )
        if self.receptive_field is not None:
            ax.axvline(self.receptive_field, color=FIELD, ls="--", lw=1.2)
        ax.set_xlim(0, self.top + 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("window size P", fontsize=LABEL_SIZE)
        ax.set_ylabel("share of |gradient| in the P x P window", fontsize=LABEL_SIZE)
        ax.set_title("how local is the network?", fontsize=TITLE_SIZE)
        ax.tick_params(labelsize=LABEL_SIZE - 1)
        ax.grid(alpha=0.3)
