"""ReverseProcessPlayer: step through a DDIM trajectory, watching x_t and the denoiser's x0_hat."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from ...checks import check_callable
from ...denoisers import schedule_of
from . import helpers
from .base import LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, WINDOW, Explorer, as_array


class ReverseProcessPlayer(Explorer):
    r"""Play a deterministic DDIM run of any denoiser, one step at a time.

    Shows, at step i (time t_i = 1 - i / steps):

    - the state x_t the sampler is in (step 0 is pure noise, the last step the final sample);
    - the denoiser's prediction x0_hat = D(x_t, t) made from it, "where it thinks it is heading";
    - the noise level s(t) of every step, the current one marked;
    - a strip of all the states x_t, the current one framed.

    Controls: ``play`` (Play: animates ``step``), ``step`` (IntSlider 0..steps), ``back`` and
    ``forward`` (Buttons: one step), ``seed`` (BoundedIntText: the initial noise; a new seed runs
    the sampler again, with a progress bar, and is cached).

    ``shown``: ``x_t``, ``x0_hat`` ([H, W] or [H, W, 3]), ``step``, ``t``, ``sigma``, ``seed``.
    ``trajectory``: the cached :class:`elslib.sampling.Trajectory` of the current seed.

    Args:
        denoiser: any ``D(x_t, t) -> x0_hat`` (a score machine, ``networks.as_denoiser(net)``, or an
            ``nn.Module`` of the library, eps or v target, which is wrapped). None: the shipped "resnet-zeros"
            when its weights are present, else the ideal machine on 500 MNIST digits.
        name: what to call the denoiser in titles (default: its class name).
        shape: (C, H, W) of the images (default: the machine's, else (1, 32, 32)).
        seed, steps, schedule, label: as for :func:`elslib.sampling.ddim` (seed from 0 to 1,000,000, the
            seed box's range; label one class, for a class-conditional denoiser).
        step: the step shown first, from 0 (the noise) to steps (the final sample; the default).

    Raises ValueError (TypeError for a denoiser that is not callable), before anything loads, for
    an argument outside these ranges.
    """

    title = "Reverse-process player: a DDIM run, step by step"
    hint = "press play or step; watch the prediction settle long before the noise is gone"

    def __init__(
        self,
        denoiser=None,
        name=None,
        shape=None,
        seed=0,
        steps=20,
        schedule=None,
        label=None,
        step=None,
        progress=True,
    ):
        # every argument is checked before a network or data loads, or any control is built
        if denoiser is not None and not isinstance(denoiser, torch.nn.Module):
            check_callable(denoiser, "denoiser", call="D(x_t, t)")
        if name is not None and not isinstance(name, str):
            raise ValueError(f"name must be None or a string (the denoiser's name in titles), got {name!r}")
        shape = None if shape is None else helpers.check_shape(shape)
        seed, steps = helpers.check_seed(seed), helpers.check_steps(steps)
        helpers.check_schedule(schedule)
        helpers.check_label(label)
        if step is not None:
            step = helpers.check_index(step, "step", steps + 1, f" (steps={steps}: 0 is the noise, {steps} the sample)")
        super().__init__(progress)
        if denoiser is None:
            denoiser, name = helpers.resolve_network("auto", schedule)
            if denoiser is None:
                images, _ = helpers.training_set("mnist", 500)
                denoiser, name = helpers.make_machine("IS", images, schedule=schedule), "ideal machine (500 digits)"
        elif isinstance(denoiser, torch.nn.Module):
            denoiser, name = helpers.resolve_network(denoiser, schedule)[0], name or type(denoiser).__name__
        self.denoiser = denoiser
        self.name = name or getattr(denoiser, "name", type(denoiser).__name__)
        self.shape = tuple(shape) if shape is not None else _shape_of(denoiser)
        # the denoiser's own schedule (an explicit one must agree with it)
        self.steps, self.schedule, self.label = int(steps), schedule_of(denoiser, schedule), label
        self._cache = helpers.LRU(32)

        self.step = widgets.IntSlider(
            value=self.steps if step is None else step, min=0, max=self.steps, description="step", style=SLIDER_STYLE
        )
        self.play = widgets.Play(value=self.step.value, min=0, max=self.steps, interval=600, description="play")
        widgets.jslink((self.play, "value"), (self.step, "value"))
        self.back = widgets.Button(description="◀ step", layout=widgets.Layout(width="80px"), tooltip="one step back")
        self.forward = widgets.Button(
            description="step ▶", layout=widgets.Layout(width="80px"), tooltip="one step forward"
        )
        self.back.on_click(lambda _: self._move(-1))
        self.forward.on_click(lambda _: self._move(+1))
        self.seed = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=10**6,
            description="noise seed",
            layout=widgets.Layout(width="160px"),
            style=SLIDER_STYLE,
        )
        self.controls = [(self.play, self.back, self.step, self.forward, self.seed)]
        self._on(self.step)
        self._on(self.seed, self._compute)
        self._compute()

        self.fig = self._figure(8.4, 4.6)
        gs = self.fig.add_gridspec(
            2,
            3,
            height_ratios=[1.0, 0.28],
            width_ratios=[1, 1, 1.25],
            left=0.04,
            right=0.97,
            top=0.9,
            bottom=0.04,
            wspace=0.3,
            hspace=0.35,
        )
        self.ax_x, self.ax_x0, self.ax_sigma = (self.fig.add_subplot(gs[0, i]) for i in range(3))
        self.ax_strip = self.fig.add_subplot(gs[1, :])
        self._finish_init()

    @property
    def trajectory(self):
        return self._cache[self.seed.value][1]

    def _move(self, delta: int):
        self.step.value = int(np.clip(self.step.value + delta, 0, self.steps))

    def _compute(self):
        """Sample the current seed's trajectory once (cached): progress shows while it runs."""
        seed = self.seed.value
        if seed not in self._cache:
            with self.busy(f"sampling seed {seed} with {self.name}", self.steps) as tick:
                self._cache[seed] = helpers.trajectory(
                    self.denoiser, self.shape, seed, self.steps, self.schedule, tick, self.label
                )
            self._art.pop("strip", None)
        self._cache.move_to_end(seed)

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        traj = self.trajectory
        i = int(self.step.value)
        t = float(traj.times[i])
        x_t = traj.x[i, 0]
        final = i == self.steps
        x0_hat = traj.x[-1, 0] if final else traj.x0_hat[i, 0]
        sigma = self.schedule.sigma(t)
        self.shown = {
            "x_t": as_array(x_t),
            "x0_hat": as_array(x0_hat),
            "step": i,
            "t": t,
            "sigma": sigma,
            "seed": self.seed.value,
        }
        if not self._art:
            self._setup_axes()
        state = "pure noise" if i == 0 else ("the final sample" if final else f"t = {t:.2f}")
        self._show(self.ax_x, "x", x_t, f"state x$_t$, step {i}/{self.steps}\n{state}")
        if final:
            self._show(self.ax_x0, "x0", x0_hat, "the final sample\n(no more noise to remove)")
        else:
            self._show(self.ax_x0, "x0", x0_hat, f"prediction $\\hat{{x}}_0$ = D(x$_t$, t)\nby {self.name}")
        self._art["dot"].set_data([i], [sigma])
        self._draw_strip(traj, i)

    def _setup_axes(self):
        ax = self.ax_sigma
        times = helpers.step_times(self.steps)
        ax.plot(range(self.steps + 1), [self.schedule.sigma(u) for u in times], "-o", color=WINDOW, ms=3, lw=1.5)
        self._art["dot"] = ax.plot([0], [1.0], "o", color=MARK, ms=8, zorder=3)[0]
        ax.set_xlim(-0.5, self.steps + 0.5)
        ax.set_ylim(-0.04, 1.06)
        ax.set_xlabel("DDIM step (t = 1 - step / steps)", fontsize=LABEL_SIZE)
        ax.set_ylabel("noise level s(t)", fontsize=LABEL_SIZE)
        ax.set_title("how much noise is left", fontsize=TITLE_SIZE)
        ax.tick_params(labelsize=LABEL_SIZE - 1)
        ax.grid(alpha=0.3)

    def _draw_strip(self, traj, i):
        """All states side by side (every other one when there are many), the current one framed."""
        ax = self.ax_strip
        if "strip" not in self._art:
            ax.clear()
            self._strip_steps = list(range(0, self.steps + 1, max(1, self.steps // 20)))
            if self._strip_steps[-1] != self.steps:
                self._strip_steps.append(self.steps)
            tiles = [np.clip((as_array(traj.x[k, 0]) + 1) / 2, 0, 1) for k in self._strip_steps]
            gap = np.ones_like(tiles[0][:, :2])
            row = np.concatenate([np.concatenate([tile, gap], axis=1) for tile in tiles], axis=1)
            self._art["strip"] = ax.imshow(row, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title("the whole run: x$_t$ from noise (left) to sample (right)", fontsize=TITLE_SIZE)
            from matplotlib.patches import Rectangle

            self._tile_w = tiles[0].shape[1] + 2
            self._art["frame"] = ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec=MARK, lw=2))
        nearest = min(range(len(self._strip_steps)), key=lambda k: abs(self._strip_steps[k] - i))
        h = self.shape[1]
        self._art["frame"].set_bounds(nearest * self._tile_w - 0.5, -0.5, self._tile_w - 2, h)


def _shape_of(denoiser) -> tuple:
    """(C, H, W) a denoiser works on: a machine knows its training images; else MNIST's."""
    if hasattr(denoiser, "images"):
        return tuple(denoiser.images.shape[1:])
    net = helpers.network_module(denoiser)
    channels = getattr(net, "config", {}).get("in_channels", 1) if net is not None else 1
    return (channels, 32, 32)
