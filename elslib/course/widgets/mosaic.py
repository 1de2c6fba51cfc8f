"""MosaicInspector: an ELS sample as a mosaic of training patches, opened up one pixel at a time."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from ... import data, schedules
from ...checks import check_callable
from ...machines.base import check_patch_size
from ...machines.patches import pad, windows
from ...plots import mosaic_image
from . import helpers
from .base import LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, WINDOW, Explorer, as_array
from .picking import PixelPicker


class MosaicInspector(Explorer):
    r"""Where does each pixel of an ELS sample come from? Choose a pixel and see its training patch.

    The ELS machine sets each output pixel to a softmax-weighted average of the centres of
    training patches; late in sampling one patch wins almost all the weight, so the sample is a
    mosaic of training patches. Shows, for one seed and one DDIM step (default: the last, whose
    prediction is the final sample):

    - the ELS prediction x0_hat, the chosen pixel and its P x P window marked;
    - the mosaic: each pixel coloured by the training image its winning patch came from (grey
      where no single patch decides: the winner has under half the weight, or is a blank patch,
      which many training images share);
    - the weight spread: the winning patch's softmax weight at every pixel (1: one patch decides;
      small: a blend of many), with the effective number of patches n_eff at the chosen pixel;
    - the winning training patch (P x P, padded as the machine pads), and the training image
      it was cut from with its place marked.

    Controls: ``row`` and ``col`` (IntSliders: the pixel; instant), ``step`` (IntSlider: which DDIM
    step to explain; a new step costs one ``explain`` call, cached), ``seed`` (BoundedIntText: a
    new ELS sample, seconds with a progress bar, cached). ``select(row, col)`` sets both at once.
    With ipyevents installed, a click on the sample, the mosaic or the weight map chooses that pixel
    (the sliders follow), and the arrow keys move it while the mouse is over the figure
    (``picker``: a :class:`~elslib.course.widgets.picking.PixelPicker`).

    ``shown``: ``sample`` (x0_hat at the step), ``mosaic`` ([H, W, 3] colours), ``source``,
    ``source_row``, ``source_col`` (int [H, W]: winning training image and patch centre per pixel),
    ``weight``, ``n_eff`` ([H, W]), ``blank`` ([H, W] bool: shown grey, no single source), and for
    the chosen pixel ``pixel`` (row, col), ``image_index``,
    ``centre`` (row, col in that training image), ``patch`` ([P, P] or [P, P, C]), ``train_image``,
    ``pixel_weight``, ``pixel_n_eff``, ``patch_size``; ``step``, ``t``.

    Args:
        dataset, n_images: the training set (its first n images), unless ``images`` is given.
        images, labels: a training set of your own ([N, C, H, W] in [-1, 1]; labels optional, one
            integer class per image).
        patch_size: odd P (up to what ``ELSDenoiser`` takes for the images and padding), or a
            callable t -> P (a scale schedule).
        padding: "zeros" or "circular", as for ``ELSDenoiser``.
        seed, steps, schedule: the DDIM run (seed from 0 to 1,000,000, the seed box's range); step:
            the step explained first, from 0 to steps - 1 (default: the last).
        row, col: the pixel chosen first, inside the image (default: the centre).

    Raises ValueError, before anything loads, for an argument outside these ranges.
    """

    title = "Mosaic inspector: where each pixel of an ELS sample comes from"
    hint = (
        "click a pixel of the sample, mosaic or weight map (or use row and column; arrow keys move it "
        "while the mouse is over the figure); earlier steps show the weight spread wide"
    )

    def __init__(
        self,
        dataset="mnist",
        n_images=200,
        patch_size=7,
        padding="zeros",
        seed=0,
        steps=20,
        step=None,
        row=None,
        col=None,
        schedule=None,
        images=None,
        labels=None,
        progress=True,
    ):
        # every argument is checked before data loads, the machine is built or any control is made
        helpers.check_dataset(dataset)
        n_images = helpers.check_n_images(n_images)
        if callable(patch_size):
            check_callable(patch_size, "patch_size", (0.5,), call="patch_size(t) -> odd int")
        else:
            helpers.check_patch(patch_size)
        helpers.check_padding(padding)
        seed, steps = helpers.check_seed(seed), helpers.check_steps(steps)
        if step is not None:
            step = helpers.check_index(step, "step", steps, f" (the steps={steps} DDIM steps are 0 to {steps - 1})")
        row = None if row is None else helpers.check_index(row, "row")
        col = None if col is None else helpers.check_index(col, "col")
        helpers.check_schedule(schedule)
        own = images is not None
        if own:
            helpers.check_training_images(images, labels)
        elif labels is not None:
            raise ValueError(
                f"labels must be None without images= (the dataset's own labels are used), got {type(labels).__name__}"
            )
        else:
            images, labels = helpers.training_set(dataset, n_images)
        h, w = images.shape[-2:]
        if not callable(patch_size):
            check_patch_size(patch_size, (h, w), circular=padding == "circular")
        for name, value, side, what in (("row", row, h, "row"), ("col", col, w, "column")):
            if value is not None:
                helpers.check_index(value, name, side, f" (a pixel {what} of the {h}x{w} images)")
        super().__init__(progress)
        if own:
            self.source_name, self.class_names = f"{len(images)} training images", None
        else:
            self.source_name = f"{len(images)} {dataset} images"
            self.class_names = data.class_names(dataset)
        self.images, self.labels = images, labels
        self.steps, self.schedule, self.padding = int(steps), schedules.get(schedule), padding
        self.machine = helpers.make_machine("ELS", images, patch_size, padding, self.schedule)
        self.patch_size = patch_size
        self._trajectories = helpers.LRU(16)
        self._explained = helpers.LRU(64)
        c, h, w = images.shape[1:]

        self.row = widgets.IntSlider(
            value=h // 2 if row is None else row, min=0, max=h - 1, description="pixel row", style=SLIDER_STYLE
        )
        self.col = widgets.IntSlider(
            value=w // 2 if col is None else col, min=0, max=w - 1, description="column", style=SLIDER_STYLE
        )
        self.step = widgets.IntSlider(
            value=self.steps - 1 if step is None else step,
            min=0,
            max=self.steps - 1,
            description="DDIM step",
            continuous_update=False,
            style=SLIDER_STYLE,
        )
        self.seed = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=10**6,
            description="noise seed",
            layout=widgets.Layout(width="160px"),
            style=SLIDER_STYLE,
        )
        self.controls = [(self.row, self.col), (self.step, self.seed)]
        self._on(self.row)
        self._on(self.col)
        self._on(self.step, self._compute)
        self._on(self.seed, self._compute)

        self.fig = self._figure(8.4, 6.0)
        gs = self.fig.add_gridspec(2, 3, left=0.03, right=0.93, top=0.9, bottom=0.04, wspace=0.28, hspace=0.42)
        self.ax_sample, self.ax_mosaic, self.ax_weight = (self.fig.add_subplot(gs[0, i]) for i in range(3))
        self.ax_patch, self.ax_train, self.ax_text = (self.fig.add_subplot(gs[1, i]) for i in range(3))
        self._compute()
        self._finish_init()
        # Click-to-pick on the three panels that show the H x W sample grid (not the training image,
        # whose pixels are another image's); after the first drawing, so the axes have their places.
        self.picker = PixelPicker(self, [self.ax_sample, self.ax_mosaic, self.ax_weight], (h, w))

    def select(self, row: int, col: int) -> None:
        """Choose the pixel (row, col) and redraw once."""
        with self.hold():
            self.row.value, self.col.value = int(row), int(col)
        self.refresh()

    def close(self) -> None:
        """Close the widgets, the click and key listener included."""
        self.picker.close()
        super().close()

    # ------------------------------------------------------------------------- computing
    def _p_at(self, t: float) -> int:
        return int(self.patch_size(t)) if callable(self.patch_size) else int(self.patch_size)

    def _compute(self):
        """The seed's ELS trajectory and the explanation of the chosen step (both cached)."""
        seed, i = self.seed.value, self.step.value
        if seed not in self._trajectories:
            with self.busy(f"sampling seed {seed} with the ELS machine", self.steps) as tick:
                self._trajectories[seed] = helpers.trajectory(
                    self.machine, tuple(self.images.shape[1:]), seed, self.steps, self.schedule, tick
                )[1]
        if (seed, i) not in self._explained:
            traj = self._trajectories[seed]
            with self.busy(f"explaining step {i} (which patch won at each pixel)", 1) as tick:
                self._explained[(seed, i)] = self.machine.explain(traj.x[i], float(traj.times[i]))[0]
                tick()

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        seed, i = self.seed.value, self.step.value
        traj, ex = self._trajectories[seed], self._explained[(seed, i)]
        t = float(traj.times[i])
        p = self._p_at(t)
        r, c = self.row.value, self.col.value
        source, s_row, s_col = (ex.image.cpu().numpy(), ex.row.cpu().numpy(), ex.col.cpu().numpy())
        weight, n_eff = ex.weight.float().cpu().numpy(), ex.n_eff.float().cpu().numpy()
        k, kr, kc = int(source[r, c]), int(s_row[r, c]), int(s_col[r, c])
        sample = traj.x0_hat[i, 0]
        patch = helpers.patch_at(self.images[k], kr, kc, p, self.padding)
        # Grey where no single patch decides: a blank winner (identical blank patches tie) or a
        # winner with less than half the weight (a blend of many patches).
        blank = blank_winners(self.images, source, s_row, s_col, p, self.padding) | (weight < DECIDES)
        mosaic = mosaic_image(source, mask=~blank)
        last = i == self.steps - 1
        self.shown = {
            "sample": as_array(sample),
            "mosaic": mosaic,
            "source": source,
            "source_row": s_row,
            "source_col": s_col,
            "weight": weight,
            "n_eff": n_eff,
            "blank": blank,
            "pixel": (r, c),
            "image_index": k,
            "centre": (kr, kc),
            "patch": as_array(patch),
            "train_image": as_array(self.images[k]),
            "pixel_weight": float(weight[r, c]),
            "pixel_n_eff": float(n_eff[r, c]),
            "patch_size": p,
            "step": i,
            "t": t,
        }
        if not self._art:
            self._setup_axes()
        art = self._art

        what = "the final ELS sample" if last else f"ELS prediction $\\hat{{x}}_0$ at t = {t:.2f}"
        self._show(self.ax_sample, "sample", sample, f"{what}\n(seed {seed}, step {i + 1}/{self.steps})")
        used = len(np.unique(source[~blank]))
        self._show(
            self.ax_mosaic,
            "mosaic",
            mosaic,
            f"mosaic: colour = source image\n({used} training images used)",
            vmin=0,
            vmax=1,
        )
        art["weight"].set_data(weight)
        self.ax_weight.set_title(
            f"weight spread: winner's weight\n(here {weight[r, c]:.2f}, n$_{{eff}}$ = {n_eff[r, c]:.1f})",
            fontsize=TITLE_SIZE,
        )
        for name in ("pix_s", "pix_m", "pix_w"):
            art[name].set_xy((c - 0.5, r - 0.5))
        art["win_s"].set_bounds(c - p / 2, r - p / 2, p, p)

        label = ""
        if self.labels is not None and self.class_names is not None:
            label = f" ({self.class_names[int(self.labels[k])]})"
        self._show(self.ax_patch, "patch", patch, f"winning training patch\n{p}x{p}, centre marked")
        art["centre"].set_xy((p // 2 - 0.5, p // 2 - 0.5))
        self.ax_patch.set_xlim(-0.5, p - 0.5)
        self.ax_patch.set_ylim(p - 0.5, -0.5)
        self._show(self.ax_train, "train", self.images[k], f"training image #{k}{label}\npatch centred at ({kr}, {kc})")
        art["win_t"].set_bounds(kc - p / 2, kr - p / 2, p, p)
        art["pix_t"].set_xy((kc - 0.5, kr - 0.5))

        value = as_array(sample)[r, c]
        centre_value = as_array(self.images[k])[kr, kc]
        fmt = (lambda v: f"{float(v):+.2f}") if np.ndim(value) == 0 else (lambda v: ", ".join(f"{u:+.2f}" for u in v))
        art["text"].set_text(
            f"pixel ({r}, {c}) of the sample\n"
            f"  value {fmt(value)}\n\n"
            f"winner: training image #{k}{label}\n"
            f"  patch centre ({kr}, {kc}), value {fmt(centre_value)}\n"
            f"  weight {weight[r, c]:.3f} of the softmax\n"
            f"  n$_{{eff}}$ = {n_eff[r, c]:.2f} patches share the rest\n\n"
            f"P = {p}, {self.padding} padding\n"
            f"{self.source_name}, t = {t:.2f}\n\n"
            f"red: the chosen pixel; blue: its P x P patch\n"
            f"dark grey in the mosaic: no single patch\ndecides (winner's weight < {DECIDES}, or blank)"
        )

    def _setup_axes(self):
        from matplotlib.patches import Rectangle

        art = self._art
        h, w = self.images.shape[-2:]
        art["weight"] = self.ax_weight.imshow(np.zeros((h, w)), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        self.ax_weight.set_xticks([])
        self.ax_weight.set_yticks([])
        cax = self.ax_weight.inset_axes([1.04, 0.0, 0.05, 1.0])
        bar = self.fig.colorbar(art["weight"], cax=cax)
        bar.ax.tick_params(labelsize=LABEL_SIZE - 1)
        for name, ax in (
            ("pix_s", self.ax_sample),
            ("pix_m", self.ax_mosaic),
            ("pix_w", self.ax_weight),
            ("pix_t", self.ax_train),
            ("centre", self.ax_patch),
        ):
            art[name] = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec=MARK, lw=1.6, zorder=4))
        art["win_s"] = self.ax_sample.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec=WINDOW, lw=1.4, zorder=3))
        art["win_t"] = self.ax_train.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec=WINDOW, lw=1.4, zorder=3))
        self.ax_text.axis("off")
        art["text"] = self.ax_text.text(
            0.0,
            0.98,
            "",
            va="top",
            ha="left",
            fontsize=LABEL_SIZE,
            transform=self.ax_text.transAxes,
            family="DejaVu Sans",
        )
        self.ax_text.set_title("the chosen pixel", fontsize=TITLE_SIZE)


DECIDES = 0.5  # a winning patch with at least this weight decides its pixel


def blank_winners(images, source, rows, cols, p: int, padding: str) -> np.ndarray:
    """[H, W] bool: pixels whose winning training patch is constant (e.g. all background).

    Such patches occur in many training images at once and tie exactly, so which image "won" is
    arbitrary; the mosaic shows them grey instead of pretending to know a source.
    """
    win = windows(pad(images, p // 2, padding), p)  # [N, C, H, W, P, P] view
    idx = [torch.as_tensor(a).reshape(-1) for a in (source, rows, cols)]
    patches = win[idx[0], :, idx[1], idx[2]].reshape(len(idx[0]), -1)
    flat = (patches.amax(1) == patches.amin(1)).cpu().numpy()
    return flat.reshape(np.shape(source))
