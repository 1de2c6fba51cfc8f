r"""NoiseExplorer: the forward process x_t = a(t) x0 + s(t) eps, one image at a time."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from matplotlib.ticker import NullLocator

from ... import data, schedules
from ...checks import check_choice
from . import helpers
from .base import LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, WINDOW, Explorer, as_array, labelled

SCHEDULES = ("cosine", "linear")


class NoiseExplorer(Explorer):
    r"""Noise an image with the forward process and see what survives.

    Shows, for one training image x0 and one draw of noise eps:

    - the clean image x0, the noise eps (its values shown from -3 to 3) and
      x_t = a(t) x0 + s(t) eps (a = sqrt(alpha_bar(t)), s = sqrt(1 - alpha_bar(t)));
    - the signal-to-noise ratio SNR(t) = alpha_bar / (1 - alpha_bar) of the chosen schedule over
      all t (the other schedule dashed), with the current t marked;
    - what noise destroys first: the power of the signal a^2 |X0(f)|^2 at each spatial frequency
      f against the flat power s^2 of the noise. Frequencies below the noise line are drowned:
      fine detail goes first, coarse shape last.

    Controls (ipywidgets, settable from code as ``explorer.t.value = 0.7`` etc.):
    ``dataset`` (Dropdown), ``index`` (IntSlider, which image), ``t`` (FloatSlider, 0..1),
    ``schedule`` (ToggleButtons, "cosine" or "linear"), ``seed`` (BoundedIntText: same seed, same
    noise).

    ``shown``: ``x0``, ``noise``, ``x_t`` ([H, W] or [H, W, 3] arrays in model units), ``t``,
    ``alpha``, ``sigma``, ``snr`` (floats), ``freqs``, ``signal_power`` (arrays, the spectrum
    panel) and ``noise_power`` (float).

    Args:
        dataset: "mnist", "digits", "faces" or "photos".
        index: which image of the dataset's seeded, class-balanced order.
        t: diffusion time in [0, 1].
        schedule: "cosine" (the paper's) or "linear".
        seed: the noise seed, an integer from 0 to 1,000,000.
        n_images: how many images of the dataset the picker offers (an integer >= 1; more than a
            dataset holds means all of it).

    Raises ValueError, before anything loads, for an argument outside these ranges.
    """

    title = "Noise explorer: the forward process"
    hint = "move t to add noise; a new seed draws new noise; watch which frequencies drown first"

    def __init__(self, dataset="mnist", index=0, t=0.3, schedule="cosine", seed=0, n_images=100, progress=True):
        # every argument is checked before anything loads or any control is built
        helpers.check_dataset(dataset)
        n_images = helpers.check_n_images(n_images)
        index = helpers.check_index(index, "index", n_images, f" (one of the first n_images={n_images} images)")
        t, seed = helpers.check_time(t), helpers.check_seed(seed)
        check_choice(schedule, "schedule", SCHEDULES)
        count = len(helpers.training_set(dataset, n_images)[0])  # n_images may exceed a small dataset
        helpers.check_index(index, "index", count, f" (the {count} images of {dataset!r})")
        super().__init__(progress)
        self.n_images = n_images
        self.dataset = widgets.Dropdown(
            options=helpers.DATASETS,
            value=dataset,
            description="dataset",
            layout=widgets.Layout(width="170px"),
            style=SLIDER_STYLE,
        )
        self.index = widgets.IntSlider(
            value=index, min=0, max=self.n_images - 1, description="image", style=SLIDER_STYLE
        )
        self.t = widgets.FloatSlider(
            value=t, min=0.0, max=1.0, step=0.01, description="time t", readout_format=".2f", style=SLIDER_STYLE
        )
        self.schedule = widgets.ToggleButtons(options=SCHEDULES, value=schedule, style={"button_width": "70px"})
        self.seed = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=10**6,
            description="noise seed",
            layout=widgets.Layout(width="160px"),
            style=SLIDER_STYLE,
        )
        self.controls = [(self.dataset, self.index, self.seed), (self.t, labelled("schedule", self.schedule))]
        for c in (self.index, self.t, self.schedule, self.seed):
            self._on(c)
        self._on(self.dataset, self._dataset_changed)
        self._dataset_changed()

        self.fig = self._figure(8.4, 5.6)
        gs = self.fig.add_gridspec(
            2, 6, height_ratios=[1.0, 0.95], left=0.08, right=0.98, top=0.92, bottom=0.1, wspace=1.2, hspace=0.42
        )
        self.ax_x0, self.ax_eps, self.ax_xt = (self.fig.add_subplot(gs[0, 2 * i : 2 * i + 2]) for i in range(3))
        self.ax_snr = self.fig.add_subplot(gs[1, 0:3])
        self.ax_spec = self.fig.add_subplot(gs[1, 3:6])
        self._finish_init()

    def _dataset_changed(self):
        images, _ = helpers.training_set(self.dataset.value, self.n_images)
        self.index.max = images.shape[0] - 1

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        images, labels = helpers.training_set(self.dataset.value, self.n_images)
        sched = schedules.get(self.schedule.value)
        t = float(self.t.value)
        x0 = images[self.index.value]
        eps = helpers.noise(tuple(x0.shape), self.seed.value)[0]
        x_t = sched.add_noise(x0[None], t, eps[None])[0]
        a, s, snr = sched.alpha(t), sched.sigma(t), sched.snr(t)
        freqs, power = radial_power(as_array(x0))
        self.shown = {
            "x0": as_array(x0),
            "noise": as_array(eps),
            "x_t": as_array(x_t),
            "t": t,
            "alpha": a,
            "sigma": s,
            "snr": snr,
            "freqs": freqs,
            "signal_power": a * a * power,
            "noise_power": s * s,
        }
        if not self._art:
            self._setup_axes()
        art = self._art
        name = data.class_names(self.dataset.value)[int(labels[self.index.value])]
        self._show(self.ax_x0, "x0", x0, f"clean image x$_0$\n{self.dataset.value} #{self.index.value} ({name})")
        self._show(self.ax_eps, "eps", eps, f"noise $\\varepsilon$ (seed {self.seed.value})\nshown from -3 to 3", -3, 3)
        self._show(self.ax_xt, "xt", x_t, f"x$_t$ = {a:.2f} x$_0$ + {s:.2f} $\\varepsilon$\nat t = {t:.2f}")

        # SNR panel: the chosen schedule solid, the other dashed; the current t marked.
        for name_, line in art["snr"].items():
            mine = name_ == self.schedule.value
            line.set(
                color=WINDOW if mine else "#999999",
                lw=2 if mine else 1.2,
                ls="-" if mine else "--",
                zorder=2 if mine else 1,
            )
        shown_snr = min(max(snr, 1e-5), 1e5)
        art["dot"].set_data([t], [shown_snr])
        left = t > 0.6
        art["snr_text"].set_text(f"SNR = {snr:.3g}" if np.isfinite(snr) else "SNR = inf")
        art["snr_text"].set_ha("right" if left else "left")
        art["snr_text"].xy = (t, shown_snr)
        art["snr_text"].set_position((-8 if left else 8, 6))
        self.ax_snr.set_title(f"signal-to-noise ratio ({self.schedule.value} schedule)", fontsize=TITLE_SIZE)
        for handle, line in zip(self.ax_snr.get_legend().legend_handles, art["snr"].values(), strict=True):
            handle.set(color=line.get_color(), ls=line.get_linestyle(), lw=line.get_linewidth())

        # Spectrum panel: signal power per frequency against the flat noise power.
        floor = 1e-9
        signal = np.maximum(a * a * power, floor)
        bottom = max(floor, min(1e-3, float(signal.min()) / 3, s * s / 3))
        art["signal"].set_data(freqs, signal)
        art["noise"].set_ydata([max(s * s, floor)] * 2)
        lost = signal < s * s
        if art.get("fill") is not None:
            art["fill"].remove()
        art["fill"] = self.ax_spec.fill_between(
            freqs, bottom, signal, where=lost, color=MARK, alpha=0.15, label="drowned by noise"
        )
        self.ax_spec.set_xlim(freqs[0], freqs[-1])
        self.ax_spec.set_ylim(bottom, max(10.0, float(power.max()) * 3))
        art["kept"].set_text(f"{float((~lost).mean()):.0%} of frequencies above the noise")

    def _setup_axes(self):
        """Create the artists once; _draw only updates their data (much faster than redrawing)."""
        art = self._art
        art["snr"] = {}
        ax = self.ax_snr
        grid = np.linspace(0.0, 1.0, 201)[1:]
        for name in SCHEDULES:
            sched = schedules.get(name)
            art["snr"][name] = ax.plot(grid, [sched.snr(float(u)) for u in grid], label=name)[0]
        ax.axhline(1.0, color="#bbbbbb", lw=0.8, zorder=0)
        art["dot"] = ax.plot([0.5], [1.0], "o", color=MARK, ms=7, zorder=3)[0]
        art["snr_text"] = ax.annotate(
            "", (0.5, 1.0), textcoords="offset points", xytext=(8, 6), fontsize=LABEL_SIZE, color=MARK
        )
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1e5)
        ax.set_xlim(0, 1)
        ax.set_xlabel("diffusion time t", fontsize=LABEL_SIZE)
        ax.set_ylabel("SNR = $\\bar\\alpha$ / (1 - $\\bar\\alpha$)", fontsize=LABEL_SIZE)
        ax.legend(fontsize=LABEL_SIZE - 1, loc="upper right", frameon=False)

        ax = self.ax_spec
        art["signal"] = ax.plot([1, 2], [1, 1], color=WINDOW, lw=2, label="signal a$^2$|X$_0$(f)|$^2$")[0]
        art["noise"] = ax.axhline(1.0, color=MARK, lw=1.5, ls="--", label="noise s$^2$")
        ax.fill_between([], [], [], color=MARK, alpha=0.15, label="drowned by noise")
        ax.set_yscale("log")
        ax.set_xlabel("spatial frequency f (cycles per image)", fontsize=LABEL_SIZE)
        ax.set_ylabel("power", fontsize=LABEL_SIZE)
        ax.set_title("what noise destroys first", fontsize=TITLE_SIZE)
        ax.legend(fontsize=LABEL_SIZE - 1, loc="upper right", frameon=False)
        art["kept"] = ax.text(0.03, 0.04, "", transform=ax.transAxes, fontsize=LABEL_SIZE, color="#333333")
        for ax in (self.ax_snr, self.ax_spec):
            ax.tick_params(labelsize=LABEL_SIZE - 1)
            ax.yaxis.set_minor_locator(NullLocator())


def radial_power(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of an image [H, W] or [H, W, C] (mean removed).

    Normalised so that white noise of unit variance has power 1 at every frequency. Returns
    (frequencies 1 .. min(H, W) / 2 in cycles per image, power at each).
    """
    x = image if image.ndim == 3 else image[..., None]
    h, w, _ = x.shape
    x = x - x.mean(axis=(0, 1), keepdims=True)
    power = (np.abs(np.fft.fft2(x, axes=(0, 1))) ** 2).mean(axis=2) / (h * w)
    fy, fx = np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w
    radius = np.rint(np.hypot(fy[:, None], fx[None, :])).astype(int)
    top = min(h, w) // 2
    freqs = np.arange(1, top + 1)
    sums = np.bincount(radius.ravel(), weights=power.ravel(), minlength=top + 1)
    counts = np.bincount(radius.ravel(), minlength=top + 1)
    return freqs.astype(float), sums[1 : top + 1] / np.maximum(counts[1 : top + 1], 1)
