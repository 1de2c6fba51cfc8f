"""ScaleScheduleEditor: the ELS machine's patch size P(t), calibrated or drawn, and its sample."""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np

from ... import calibration, data, pretrained
from ...checks import check_callable, check_choice, check_positive_int
from ...denoisers import schedule_of
from ...metrics import pearson_r
from . import helpers
from .base import LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, WINDOW, Explorer, as_array, labelled

MODES = ("calibrated", "constant", "drawn")


class ScaleScheduleEditor(Explorer):
    r"""Edit the patch-size schedule P(t) of the ELS machine and see what it samples.

    A trained CNN looks at large regions while the noise is high and at small ones near the end;
    the ELS machine follows it when its patch size P changes with t the same way. Shows:

    - the P(t) curve in use, one value per DDIM step (the calibrated curve, when known, in grey);
    - the ELS sample made with that P(t) from one seed, and its Pearson r with the network's
      sample from the same seed (when a network is given);
    - the network's sample.

    Controls: ``mode`` (ToggleButtons: "calibrated" -- measured against the network, when
    known --, "constant", or "drawn"), ``constant`` (IntSlider, the P of "constant"), ``knots``
    (a list of vertical IntSliders, one P per band of t, for "drawn"; switching to "drawn" starts
    from the current curve), ``sample_button`` (Button: sample with the P(t) shown), ``auto``
    (Checkbox: sample on every change) and ``seed``. Editing the curve is instant; sampling takes
    seconds (a progress bar shows it). Sampling is cached step by step: a DDIM step depends only on
    the P of the steps before it, so changing P at small t re-runs only the last few steps.

    ``shown``: ``times`` and ``p`` (the P at each DDIM step, arrays), ``sample`` and ``network``
    ([H, W] arrays, when computed), ``r`` (float or None), ``stale`` (True when the sample was made
    with another P(t) than the one shown). ``scale_schedule()`` returns the current P(t) as a
    :class:`elslib.calibration.ScaleSchedule` (pass it as ``patch_size=`` to a machine);
    ``sample()`` samples it now.

    Args:
        network: "auto" (the shipped "resnet-zeros" if present), a shipped network's name, an
            ``nn.Module``, a denoiser, or None; network_dataset: what it was trained on (it is
            shown only when ``dataset`` is that one).
        calibrated: a :class:`ScaleSchedule` (or any callable t -> odd P); default: the one stored
            with the shipped network. Its P at every DDIM step must fit the sliders (odd, at most
            the image side).
        dataset, n_images: the ELS machine's training set (more images than the dataset holds means
            all of it); padding: its padding, "zeros" or "circular".
        seed, steps, schedule: the DDIM run (noise schedule; not to confuse with P(t)); seed from 0
            to 1,000,000, the seed box's range.
        mode, constant: the starting curve (mode one of "calibrated" -- only with a calibrated
            P(t) --, "constant", "drawn"; constant an odd P from 1 to the image side); bands: how
            many knots the drawn curve has (an integer >= 1).

    Raises ValueError, before anything loads, for an argument outside these ranges (the image side
    and the calibrated P(t) are checked as soon as the training set and the network are there).
    """

    title = "Scale-schedule editor: the ELS patch size P(t)"
    hint = "pick or draw a P(t) curve, then sample; compare with the network"

    def __init__(
        self,
        network="auto",
        calibrated=None,
        dataset="mnist",
        n_images=200,
        padding="zeros",
        seed=0,
        steps=20,
        schedule=None,
        mode=None,
        constant=7,
        bands=5,
        network_dataset=helpers.NETWORK_DATASET,
        progress=True,
    ):
        # every argument is checked before a network or data loads, or any control is built
        helpers.check_network(network)
        if calibrated is not None:
            check_callable(calibrated, "calibrated", (0.5,), call="calibrated(t) -> odd P")
        helpers.check_dataset(dataset)
        check_choice(network_dataset, "network_dataset", list(data.DATASETS))
        n_images, seed = helpers.check_n_images(n_images), helpers.check_seed(seed)
        helpers.check_padding(padding)
        steps = helpers.check_steps(steps)
        helpers.check_schedule(schedule)
        if mode is not None:
            check_choice(mode, "mode", MODES)
        constant = helpers.check_patch(constant, "constant")
        bands = check_positive_int(bands, "bands")
        self.network, self.network_name = helpers.resolve_network(network, schedule)
        # the network's own schedule (an explicit one must agree); the machine is built with it
        self.noise_schedule = schedule_of(self.network, schedule)
        self._no_network = "no network given" if self.network is None else ""
        if dataset != network_dataset and self.network is not None:
            self.network, self.network_name = None, None
            self._no_network = f"the network was\ntrained on {network_dataset}"
        if calibrated is None and isinstance(network, str) and self.network is not None:
            calibrated = stored_scales(self.network_name)
        if mode == "calibrated" and calibrated is None:
            who = network if network is None or isinstance(network, str) else type(network).__name__
            raise ValueError(
                "mode='calibrated' needs a calibrated P(t): pass calibrated=, or a shipped network that stores one "
                f"(got calibrated=None, and network={who!r} gives none for dataset {dataset!r})"
            )
        self.calibrated = calibrated
        self.images, _ = helpers.training_set(dataset, n_images)
        self.dataset, self.padding, self.steps = dataset, padding, steps
        self.times = helpers.step_times(self.steps)[:-1]  # the times the denoiser is called at
        self.top = helpers.largest_patch(tuple(self.images.shape[-2:]))
        h, w = self.images.shape[-2:]
        where = f"the {h}x{w} {dataset} images (the sliders' range)"
        helpers.check_patch(constant, "constant", self.top, where)
        if calibrated is not None:  # shown as it is: a P the sliders cannot hold is refused, not rounded
            for t in self.times:
                helpers.check_patch(calibrated(t), f"calibrated({t:g})", self.top, where)
        super().__init__(progress)
        self.machine = helpers.make_machine("ELS", self.images, self._p_now, padding, self.noise_schedule)
        self._ps: list[int] = []  # the P at each step of the run in progress
        self._calls = helpers.LRU(4096)  # (seed, P prefix) -> x0_hat of that step
        self._samples = helpers.LRU(64)  # (seed, P per step) -> final ELS sample
        self._net_samples = helpers.LRU(64)  # seed -> the network's sample

        modes = [m for m in MODES if m != "calibrated" or calibrated is not None]
        self.mode = widgets.ToggleButtons(options=modes, value=mode or modes[0], style={"button_width": "90px"})
        self.constant = widgets.IntSlider(
            value=constant,
            min=1,
            max=self.top,
            step=2,
            description="constant P",
            style=SLIDER_STYLE,
        )
        self.knots = [
            widgets.IntSlider(
                value=constant,
                min=1,
                max=self.top,
                step=2,
                orientation="vertical",
                description=f"t≈{(j + 0.5) / bands:.1f}",
                layout=widgets.Layout(height="150px", width="62px"),
            )
            for j in range(int(bands))
        ]
        self.sample_button = widgets.Button(
            description="sample with this P(t)",
            button_style="primary",
            icon="play",
            layout=widgets.Layout(width="190px"),
        )
        self.sample_button.on_click(lambda _: self._clicked())
        self.auto = widgets.Checkbox(value=False, description="sample on every change", indent=False)
        self.seed = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=10**6,
            description="noise seed",
            layout=widgets.Layout(width="160px"),
            style=SLIDER_STYLE,
        )
        knot_box = widgets.HBox([widgets.HTML("<small>drawn P(t):<br>one P per<br>band of t</small>"), *self.knots])
        self.controls = [
            (labelled("P(t)", self.mode), self.constant),
            knot_box,
            (self.sample_button, self.auto, self.seed),
        ]
        self._on(self.mode, self._mode_changed)
        for c in (self.constant, *self.knots, self.auto):
            self._on(c, self._edited)
        self._on(self.seed, self._seed_changed)
        self._mode_changed()

        self.fig = self._figure(8.4, 3.2)
        gs = self.fig.add_gridspec(
            1, 3, width_ratios=[1.6, 1, 1], left=0.07, right=0.99, top=0.83, bottom=0.16, wspace=0.15
        )
        self.ax_curve, self.ax_els, self.ax_net = (self.fig.add_subplot(gs[0, i]) for i in range(3))
        self._sampled_ps: tuple | None = None
        self.sample(refresh=False)
        self._network_sample()
        self._finish_init()

    # ----------------------------------------------------------------------- the curve
    def scale_schedule(self) -> calibration.ScaleSchedule:
        """The P(t) shown now, as a ScaleSchedule (pass it as ``patch_size=`` to a machine)."""
        return calibration.ScaleSchedule(list(self.times), self.patch_sizes())

    def patch_sizes(self) -> list[int]:
        """The P at each DDIM step under the current mode and controls."""
        if self.mode.value == "calibrated":
            return [helpers.odd(self.calibrated(t), self.top) for t in self.times]
        if self.mode.value == "constant":
            return [self.constant.value] * len(self.times)
        return [self.knots[self._band(t)].value for t in self.times]

    def _band(self, t: float) -> int:
        """Which knot of the drawn curve holds time t: band j is (j / bands, (j + 1) / bands], so
        the DDIM times 1/steps ... 1 fill the bands evenly."""
        bands = len(self.knots)
        return min(max(math.ceil(t * bands - 1e-9) - 1, 0), bands - 1)

    def _p_now(self, t: float) -> int:
        """The machine's patch_size callable: the P of the step being sampled."""
        k = min(range(len(self.times)), key=lambda i: abs(self.times[i] - t))
        return self._ps[k]

    def _mode_changed(self):
        mode = self.mode.value
        for knot in self.knots:
            knot.disabled = mode != "drawn"
        self.constant.disabled = mode != "constant"
        self._edited()

    def _edited(self):
        if self.mode.value != "drawn":
            self._sync_knots()
        if self._live and self.auto.value:
            self.sample(refresh=False)

    def _sync_knots(self):
        """Show the current curve on the knots too (so "drawn" starts from it): the median P per band."""
        ps = self.patch_sizes()
        with self.hold():
            for j, knot in enumerate(self.knots):
                inside = [p for p, t in zip(ps, self.times, strict=True) if self._band(t) == j]
                if inside:
                    knot.value = helpers.odd(round(float(np.median(inside))), self.top)

    def _seed_changed(self):
        self._network_sample()
        if self.auto.value or (self.seed.value, tuple(self.patch_sizes())) in self._samples:
            self.sample(refresh=False)

    def _clicked(self):
        self.sample()

    # -------------------------------------------------------------------------- sampling
    def sample(self, refresh: bool = True):
        """Sample the ELS machine with the P(t) shown now (cached step by step); returns [1, C, H, W]."""
        seed, ps = self.seed.value, tuple(self.patch_sizes())
        if (seed, ps) not in self._samples:
            self._ps = list(ps)
            cached = sum((seed, ps[: k + 1]) in self._calls for k in range(self.steps))
            new_sizes = sorted(set(ps) - set(getattr(self.machine, "_layouts", ps)))
            what = f"sampling seed {seed} with this P(t) ({cached} of {self.steps} steps cached"
            what += f"; building patch tables for P = {', '.join(map(str, new_sizes))})" if new_sizes else ")"
            with self.busy(what, self.steps) as tick:
                x, _ = helpers.trajectory(
                    self._cached_machine(seed),
                    tuple(self.images.shape[1:]),
                    seed,
                    self.steps,
                    self.noise_schedule,
                    tick,
                )
            self._samples[(seed, ps)] = x
        self._sampled_ps = ps
        if refresh:
            self.refresh()
        return self._samples[(seed, ps)]

    def _cached_machine(self, seed: int):
        """The ELS machine as a denoiser whose calls are cached by (seed, P of this and earlier steps)."""

        def denoise(x, t):
            k = min(range(len(self.times)), key=lambda i: abs(self.times[i] - t))
            key = (seed, tuple(self._ps[: k + 1]))
            return self._calls.get_or(key, lambda: self.machine(x, t))

        return denoise

    def _network_sample(self):
        seed = self.seed.value
        if self.network is None or seed in self._net_samples:
            return
        with self.busy(f"sampling seed {seed} with the network", self.steps) as tick:
            x, _ = helpers.trajectory(
                self.network, tuple(self.images.shape[1:]), seed, self.steps, self.noise_schedule, tick
            )
        self._net_samples[seed] = x

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        seed, ps = self.seed.value, tuple(self.patch_sizes())
        els = self._samples.get((seed, ps))
        stale = els is None
        if stale and self._sampled_ps is not None:  # show the last sample, marked as out of date
            els = self._samples.get((seed, self._sampled_ps))
        net = self._net_samples.get(seed)
        r = float(pearson_r(els, net)[0]) if els is not None and net is not None else None
        self.shown = {"times": np.array(self.times), "p": np.array(ps), "stale": stale, "r": r, "seed": seed}
        if els is not None:
            self.shown["sample"] = as_array(els[0])
        if net is not None:
            self.shown["network"] = as_array(net[0])
        self._draw_curve(ps)

        if els is None:
            self._note(self.ax_els, "els", "press 'sample'", "ELS sample")
        else:
            title = f"ELS sample, seed {seed}" + (f"\nr = {r:.2f} with the network" if r is not None else "")
            if stale:
                title = "ELS sample for an earlier P(t):\npress 'sample' to update"
            self._show(self.ax_els, "els", els[0], title)
            self.ax_els.title.set_color(MARK if stale else "black")
        if net is None:
            self._note(self.ax_net, "net", self._no_network, "network")
        else:
            self._show(self.ax_net, "net", net[0], f"network ({self.network_name})\nseed {seed}")

    def _draw_curve(self, ps):
        ax = self.ax_curve
        ax.clear()
        if self.calibrated is not None:
            cal = [helpers.odd(self.calibrated(t), self.top) for t in self.times]
            ax.step(self.times, cal, where="mid", color="#999999", ls="--", lw=1.3, label="calibrated")
        ax.step(self.times, ps, where="mid", color=WINDOW, lw=2.2, label=f"in use ({self.mode.value})")
        ax.plot(self.times, ps, "o", color=WINDOW, ms=3.5)
        if self.mode.value == "drawn":
            bands = len(self.knots)
            for j in range(1, bands):
                ax.axvline(j / bands, color="#dddddd", lw=0.8, zorder=0)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, self.top + 2)
        ax.set_xlabel("diffusion time t (sampling runs from t = 1 down to 0)", fontsize=LABEL_SIZE)
        ax.set_ylabel("patch size P (pixels)", fontsize=LABEL_SIZE)
        ax.set_title(f"P(t): ELS patch size at each of the {self.steps} steps", fontsize=TITLE_SIZE)
        ax.legend(fontsize=LABEL_SIZE - 1, loc="upper left", frameon=False)
        ax.tick_params(labelsize=LABEL_SIZE - 1)
        ax.grid(alpha=0.25)


def stored_scales(name: str):
    """The calibrated ScaleSchedule stored with a shipped network (None when there is none)."""
    try:
        return pretrained.calibrated_scales(name)
    except ValueError:
        return None
