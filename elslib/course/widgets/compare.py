"""MachineComparer: the score machines and a trained network, sampled from the same seed."""

from __future__ import annotations

import ipywidgets as widgets

from ... import data, machines
from ...checks import check_choice, check_positive_int, check_sequence
from ...denoisers import schedule_of
from ...metrics import pearson_r
from . import helpers
from .base import LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, WINDOW, Explorer, as_array, labelled, note

NETWORK = "network"


class MachineComparer(Explorer):
    r"""One seed, several denoisers side by side: which machine predicts what the network makes?

    Every panel is the final DDIM sample of one denoiser from the *same* initial noise:
    the trained network (when there is one for the dataset), the ideal machine IS (a copy of a
    training image), the local machine LS, the equivariant machine ES and the ELS machine. Each
    machine's title and the bar chart give its Pearson correlation r with the network's sample
    over pixels (the statistic the paper's Table 1 reports; r^2 is given beside it).

    Controls: ``seed`` (BoundedIntText), ``patch_size`` (IntSlider, odd P for LS and ELS),
    ``padding`` (ToggleButtons, "zeros" or "circular", for ELS), ``dataset`` (Dropdown) and
    ``n_images`` (Dropdown, how many training images the machines may use). A setting not seen
    before samples the machines it affects (seconds; a progress bar shows it, and panels fill in
    as each machine finishes); every setting is cached, so going back is instant.

    ``shown``: one [H, W] (or [H, W, 3]) array per denoiser, keyed "network", "IS", "LS", "ES",
    "ELS" (missing when not computed), and ``r``: dict denoiser -> Pearson r with the network.

    Args:
        network: "auto" (the shipped "resnet-zeros" if its weights are present), a shipped
            network's name, a network of the library (``nn.Module`` with a ``target``, eps or v), a denoiser, or None.
        network_dataset: the dataset the network was trained on; it is shown only for that one.
        dataset, n_images: the training set of the machines (its first n images; more than the
            dataset holds means all of it).
        seed, patch_size, padding: initial control values (seed from 0 to 1,000,000; an odd P from
            1 to the image side, the slider's range; "zeros" or "circular").
        machines: which machines to show, a subset of ("IS", "LS", "ES", "ELS").
        steps, schedule: DDIM settings (the paper: 20 steps, cosine).
        image_counts: the choices offered by the ``n_images`` control (integers >= 1).

    Raises ValueError, before anything loads, for an argument outside these ranges. (Switching to a
    dataset of smaller images later clips P to the largest the slider then offers.)
    """

    title = "Machine comparer: one seed, several denoisers"
    hint = "change P, padding or the seed; which machine looks like the network?"

    def __init__(
        self,
        network="auto",
        network_dataset=helpers.NETWORK_DATASET,
        dataset="mnist",
        n_images=200,
        seed=0,
        patch_size=7,
        padding="zeros",
        machines=helpers.MACHINES,
        steps=20,
        schedule=None,
        image_counts=(50, 100, 200, 500, 1000),
        progress=True,
    ):
        # every argument is checked before a network or data loads, or any control is built
        helpers.check_network(network)
        check_choice(network_dataset, "network_dataset", list(data.DATASETS))
        helpers.check_dataset(dataset)
        n_images, seed = helpers.check_n_images(n_images), helpers.check_seed(seed)
        patch_size = helpers.check_patch(patch_size)
        helpers.check_padding(padding)
        kinds = check_sequence(machines, "machines", nonempty=False)
        unknown = [k for k in kinds if k not in helpers.MACHINES]
        if unknown or not kinds:
            raise ValueError(f"machines must be a non-empty subset of {helpers.MACHINES}, got {machines!r}")
        steps = helpers.check_steps(steps)
        helpers.check_schedule(schedule)
        counts = check_sequence(image_counts, "image_counts", nonempty=False)
        try:
            counts = [check_positive_int(c, "image_counts") for c in counts]
        except ValueError:
            allowed = "image_counts must hold integers >= 1 (training-set sizes)"
            raise ValueError(f"{allowed}, got {image_counts!r}") from None
        images, _ = helpers.training_set(dataset, n_images)
        top = helpers.largest_patch(tuple(images.shape[-2:]))
        h, w = images.shape[-2:]
        helpers.check_patch(patch_size, top=top, where=f"the {h}x{w} {dataset} images (the slider's range)")
        super().__init__(progress)
        self.kinds = [k for k in helpers.MACHINES if k in kinds]
        self.network, self.network_name = helpers.resolve_network(network, schedule)
        # the network's own schedule (an explicit one must agree); the machines are built with it
        self.schedule = schedule_of(self.network, schedule)
        self.network_dataset, self.steps = network_dataset, int(steps)
        self._machines = helpers.LRU(6)  # machines hold key tables that take seconds to build
        self._samples = helpers.LRU(256)  # final samples, one [1, C, H, W] tensor per setting

        self.seed = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=10**6,
            description="noise seed",
            layout=widgets.Layout(width="160px"),
            style=SLIDER_STYLE,
        )
        self.patch_size = widgets.IntSlider(
            value=patch_size,
            min=1,
            max=31,
            step=2,
            description="patch size P",
            continuous_update=False,
            style=SLIDER_STYLE,
        )
        self.padding = widgets.ToggleButtons(
            options=["zeros", "circular"], value=padding, style={"button_width": "70px"}
        )
        self.dataset = widgets.Dropdown(
            options=helpers.DATASETS,
            value=dataset,
            description="dataset",
            layout=widgets.Layout(width="170px"),
            style=SLIDER_STYLE,
        )
        counts = sorted(set(counts) | {n_images})
        self.n_images = widgets.Dropdown(
            options=counts,
            value=int(n_images),
            description="training images",
            layout=widgets.Layout(width="200px"),
            style=SLIDER_STYLE,
        )
        self.controls = [
            (self.seed, self.dataset, self.n_images),
            (self.patch_size, labelled("ELS padding", self.padding)),
        ]
        for c in (self.seed, self.patch_size, self.padding, self.n_images):
            self._on(c, self._compute)
        self._on(self.dataset, self._dataset_changed)
        self._fit_patch_slider()

        panels = len(self.kinds) + 1  # the network, then the machines; then a bar chart of r
        width = 1.62 * panels + 2.6
        self.fig = self._figure(width, 2.75)
        split = 1.62 * panels / width
        gs = self.fig.add_gridspec(1, panels, left=0.01, right=split, top=0.78, bottom=0.17, wspace=0.12)
        self.axes = {k: self.fig.add_subplot(gs[0, i]) for i, k in enumerate([NETWORK, *self.kinds])}
        self.ax_r = self.fig.add_subplot(
            self.fig.add_gridspec(1, 1, left=split + 0.35 / width, right=0.97, top=0.78, bottom=0.17)[0, 0]
        )
        self._compute()
        self._finish_init()

    # ------------------------------------------------------------------------- computing
    def _fit_patch_slider(self):
        images, _ = self._training_set()
        top = helpers.largest_patch(tuple(images.shape[-2:]))
        with self.hold():
            self.patch_size.max = top
            self.patch_size.value = helpers.odd(self.patch_size.value, top)

    def _dataset_changed(self):
        self._fit_patch_slider()
        self._compute()

    def _training_set(self):
        return helpers.training_set(self.dataset.value, self.n_images.value)

    def _has_network(self) -> bool:
        return self.network is not None and self.dataset.value == self.network_dataset

    def _key(self, kind: str) -> tuple:
        """What a denoiser's sample depends on (besides the seed): its cache key."""
        if kind == NETWORK:
            return (NETWORK, self.dataset.value)
        key = (kind, self.dataset.value, self.n_images.value)
        if kind in machines.PATCH_KINDS:
            key += (self.patch_size.value,)
        if kind == "ELS":
            key += (self.padding.value,)
        return key

    def _denoiser(self, kind: str):
        if kind == NETWORK:
            return self.network
        images, _ = self._training_set()
        p, padding = self.patch_size.value, self.padding.value
        return self._machines.get_or(
            self._key(kind), lambda: helpers.make_machine(kind, images, p, padding, self.schedule)
        )

    def _compute(self):
        """Sample every denoiser whose result for the current setting is not cached yet."""
        kinds = ([NETWORK] if self._has_network() else []) + self.kinds
        missing = [k for k in kinds if (self._key(k), self.seed.value) not in self._samples]
        if not missing:
            return
        images, _ = self._training_set()
        shape = tuple(images.shape[1:])
        with self.busy(f"sampling seed {self.seed.value}: {', '.join(missing)}", self.steps * len(missing)) as tick:
            for kind in missing:
                who = machines.title(kind) if kind in machines.KINDS else kind
                self.status.value = f"sampling seed {self.seed.value} with {who} ..."
                sample, _ = helpers.trajectory(
                    self._denoiser(kind), shape, self.seed.value, self.steps, self.schedule, tick
                )
                self._samples[(self._key(kind), self.seed.value)] = sample
                if self._live:  # fill the panels in as they come
                    self.refresh()

    def sample(self, kind: str):
        """The cached final sample [1, C, H, W] of `kind` ("network", "IS", ...) for the current setting, or None."""
        return self._samples.get((self._key(kind), self.seed.value))

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        net = self.sample(NETWORK) if self._has_network() else None
        shown, r = {}, {}
        ax = self.axes[NETWORK]
        if net is not None:
            shown[NETWORK] = as_array(net[0])
            self._show(ax, NETWORK, net[0], f"network\n({self.network_name})")
        else:
            why = "no network given" if self.network is None else f"the network was\ntrained on {self.network_dataset}"
            self._note(ax, NETWORK, why, "network")
        p, padding = self.patch_size.value, self.padding.value
        for kind in self.kinds:
            ax, x = self.axes[kind], self.sample(kind)
            name = machines.title(kind) + {"LS": f" P={p}", "ELS": f" P={p}, {padding}"}.get(kind, "")
            if x is None:
                self._note(ax, kind, "computing ...", name)
                continue
            shown[kind] = as_array(x[0])
            if net is not None:
                r[kind] = float(pearson_r(x, net)[0])
            self._show(ax, kind, x[0], name + (f"\nr = {r[kind]:.2f}" if kind in r else ""))
        self.shown = {**shown, "r": r, "seed": self.seed.value}
        self._draw_bars(r)
        n = len(self._training_set()[0])
        self.fig.suptitle(
            f"Final DDIM samples from noise seed {self.seed.value} ({self.steps} steps; machines use "
            f"{n} {self.dataset.value} images)",
            fontsize=TITLE_SIZE + 0.5,
        )

    def _draw_bars(self, r: dict):
        ax = self.ax_r
        ax.clear()
        ax.set_title("r with the network", fontsize=TITLE_SIZE)
        if not r:
            note(ax, "nothing to compare:\nno network sample" if not self._has_network() else "computing ...")
            return
        names = list(r)
        values = [r[k] for k in names]
        colours = [MARK if k == "ELS" else WINDOW for k in names]
        ax.barh(range(len(names)), values, color=colours, height=0.6)
        for i, v in enumerate(values):
            ax.text(max(v, 0) + 0.02, i, f"{v:.2f} (r$^2$ {v * v:.2f})", va="center", fontsize=LABEL_SIZE - 1)
        ax.set_yticks(range(len(names)), names, fontsize=LABEL_SIZE)
        ax.set_xlim(min(0.0, min(values) - 0.05), 1.55)
        ax.set_xticks([0, 0.5, 1.0])
        ax.invert_yaxis()
        ax.set_xlabel("Pearson r over pixels", fontsize=LABEL_SIZE)
        ax.tick_params(labelsize=LABEL_SIZE - 1)
        ax.axvline(0, color="#999999", lw=0.8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    @property
    def correlations(self) -> dict:
        """Pearson r with the network of each machine shown now."""
        return dict(self.shown.get("r", {}))
