r"""CopyingExplorer: the stored phase diagram of copying, one cell (N, P) and one seed at a time."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from ... import checks, memorisation
from . import helpers
from .base import LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, Explorer, as_array

COPY_COLOUR = "#c0392b"  # the verdict "a copy"
NEW_COLOUR = "#1e8449"  # the verdict "new"


def check_patch_choice(patch, name: str = "patch"):
    """A patch size as the diagram names it ("7", "whole"): an odd integer (or its name), "whole" or None."""
    if patch is None or patch == "whole":
        return "whole"
    if isinstance(patch, str) and patch.isdigit():
        patch = int(patch)  # the record's name of a patch size
    if isinstance(patch, str):
        raise ValueError(f"{name} must be an odd integer or 'whole' (the ideal machine), got {patch!r}")
    return str(checks.check_odd(patch, name))


class CopyingExplorer(Explorer):
    r"""Copy or create? Browse the stored phase diagram of the machines over N and P.

    The grid of ``python -m elslib phase-diagram`` (``elslib.memorisation``) holds, for every
    training-set size N and patch size P (ELS with zero padding; "whole": the ideal machine), the
    samples of a few seeds and each one's distance to its nearest training digit. Shows, for one
    cell and one seed, straight from the stored record (nothing is sampled, so a move takes
    milliseconds):

    - the sample;
    - its nearest training digit (among the N) and the RMS distance between them;
    - the verdict of the copy rule (a copy: closer than the record's threshold, the 1st percentile
      of the distances between real digits);
    - the whole diagram's copy fraction, with the current cell outlined.

    Controls: ``n`` (SelectionSlider over the record's N), ``patch`` (SelectionSlider over its P,
    "whole" last), ``seed`` (IntSlider over the seeds stored for the current cell).

    ``shown``: ``sample`` and ``nearest`` ([H, W] arrays), ``distance``, ``threshold``,
    ``copy_fraction`` (floats; NaN where the cell is missing), ``copy`` (bool, or None where the
    cell is missing), ``n``, ``patch``, ``seed``, ``index`` (the nearest digit's index).

    Args:
        record: the stored diagram: None (the course's, records/phase-diagram), a folder holding
            phase-diagram.json and samples.pt, or a dict as ``memorisation.load_record`` returns.
        n: the training-set size shown first (one of the record's sizes).
        patch: the patch size shown first: an odd integer of the record, or "whole" (or None) for
            the ideal machine.
        seed: the seed shown first: an integer from 0 to the number of seeds stored for that cell
            minus one.

    Raises ValueError, before anything loads, for an argument of the wrong kind, and, as soon as
    the record is read, for a value it does not hold (or when there is no record).
    """

    title = "Copy or create? The stored phase diagram"
    hint = "move N and P: one seed's sample, its nearest training digit, and the copy rule's verdict"

    def __init__(self, record=None, n=10, patch=7, seed=0, progress=True):
        # every argument is checked before anything loads or any control is built
        if record is not None and not isinstance(record, (dict, str, Path)):
            raise ValueError(f"record must be None, a folder or a dict from memorisation.load_record, got {record!r}")
        n = checks.check_positive_int(n, "n")
        patch = check_patch_choice(patch)
        seed = helpers.check_index(seed, "seed")
        if not isinstance(record, dict):
            where = "records/phase-diagram" if record is None else str(record)
            record = memorisation.load_record(record)
            if record is None:
                raise ValueError(
                    f"record: no stored phase diagram in {where} (make one with "
                    "`python -m elslib phase-diagram --out DIR`, then pass record=DIR)"
                )
        for key in ("threshold", "sizes", "patches", "cells"):
            if key not in record:
                raise ValueError(
                    f"record must hold {key!r}, as memorisation.load_record returns; it has {list(record)}"
                )
        self.record = record
        self.sizes, self.patches = list(record["sizes"]), list(record["patches"])
        if n not in self.sizes:
            raise ValueError(f"n must be one of the record's sizes {self.sizes}, got {n!r}")
        if patch not in self.patches:
            raise ValueError(f"patch must be one of the record's patch sizes {self.patches}, got {patch!r}")
        count = self._seeds(n, patch)
        if count:
            helpers.check_index(seed, "seed", count, f" (the seeds stored for N = {n}, P = {patch})")
        super().__init__(progress)
        self.threshold = float(record["threshold"])
        self.samples = record.get("samples") or {}
        self.n = widgets.SelectionSlider(
            options=self.sizes, value=n, description="training digits N", style=SLIDER_STYLE, continuous_update=False
        )
        self.patch = widgets.SelectionSlider(
            options=self.patches, value=patch, description="patch size P", style=SLIDER_STYLE, continuous_update=False
        )
        self.seed = widgets.IntSlider(
            value=seed, min=0, max=max(count - 1, 0), description="seed", style=SLIDER_STYLE, continuous_update=False
        )
        self.controls = [(self.n, self.patch), (self.seed,)]
        self._on(self.n, self._cell_changed)
        self._on(self.patch, self._cell_changed)
        self._on(self.seed)

        self.fig = self._figure(8.6, 3.7)
        gs = self.fig.add_gridspec(
            1, 3, width_ratios=[1, 1, 1.5], left=0.02, right=0.92, top=0.74, bottom=0.15, wspace=0.3
        )
        self.ax_sample, self.ax_nearest, self.ax_grid = (self.fig.add_subplot(gs[0, i]) for i in range(3))
        self._draw_grid()
        self._finish_init()

    # --------------------------------------------------------------------------- the record
    def _cell(self, n, patch) -> dict | None:
        return self.record["cells"].get(f"{n},{patch}")

    def _seeds(self, n, patch) -> int:
        cell = self._cell(n, patch)
        return 0 if cell is None else len(cell["nn"])

    def _cell_changed(self):
        count = self._seeds(self.n.value, self.patch.value)
        if count:
            self.seed.value = min(self.seed.value, count - 1)
            self.seed.max = count - 1

    def _draw_grid(self):
        grid = np.full((len(self.sizes), len(self.patches)), np.nan)
        for i, n in enumerate(self.sizes):
            for j, p in enumerate(self.patches):
                cell = self._cell(n, p)
                if cell is not None:
                    grid[i, j] = cell["copy_fraction"]
        ax = self.ax_grid
        cmap = colormaps["Reds"].with_extremes(bad="#dddddd")  # grey: a cell not stored
        im = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto", origin="lower")
        ax.set_xticks(range(len(self.patches)), self.patches, fontsize=LABEL_SIZE)
        ax.set_yticks(range(len(self.sizes)), [str(n) for n in self.sizes], fontsize=LABEL_SIZE)
        ax.set_xlabel("patch size P", fontsize=LABEL_SIZE)
        ax.set_ylabel("training digits N", fontsize=LABEL_SIZE)
        ax.set_title("share of seeds that copy (grey: not stored)", fontsize=TITLE_SIZE)
        bar = self.fig.colorbar(im, ax=ax, fraction=0.06, pad=0.03)
        bar.ax.tick_params(labelsize=LABEL_SIZE)
        self._frame = Rectangle((-0.5, -0.5), 1, 1, fill=False, ec=MARK, lw=2.2)
        ax.add_patch(self._frame)
        self._grid = grid

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        n, patch, seed = self.n.value, self.patch.value, int(self.seed.value)
        i, j = self.sizes.index(n), self.patches.index(patch)
        self._frame.set_xy((j - 0.5, i - 0.5))
        cell = self._cell(n, patch)
        machine = "the ideal machine" if patch == "whole" else f"ELS, P = {patch}"
        key = f"{n},{patch}"
        self.shown = {"n": n, "patch": patch, "seed": seed, "threshold": self.threshold}
        if cell is None or key not in self.samples or seed >= len(cell["nn"]):
            why = "this cell is not in the record (yet)" if cell is None else "its samples were not stored"
            self._note(self.ax_sample, "sample", why, f"{machine}, N = {n}")
            self._note(self.ax_nearest, "nearest", "", "nearest training digit")
            self.fig.suptitle(f"N = {n}, {machine}: no stored sample", fontsize=TITLE_SIZE + 1, color="#555555")
            self.shown.update(copy=None, distance=float("nan"), copy_fraction=float("nan"), index=None)
            return
        sample = self.samples[key][seed]
        index = int(cell["nearest"][seed])
        images, _ = helpers.training_set("mnist", n)
        nearest = images[index]
        distance = float(cell["nn"][seed])
        copy = distance < self.threshold
        self._show(self.ax_sample, "sample", sample, f"{machine}, N = {n}\nseed {seed}")
        self._show(self.ax_nearest, "nearest", nearest, f"nearest of the {n} training digits\n(#{index})")
        verdict = "a COPY" if copy else "NEW"
        sign = "<" if copy else ">="
        self.fig.suptitle(
            f"{verdict}: its RMS distance to the nearest training digit is {distance:.3f} {sign} "
            f"{self.threshold:.3f} (the copy rule)\n{cell['copy_fraction']:.0%} of this cell's "
            f"{len(cell['nn'])} seeds copy",
            fontsize=TITLE_SIZE + 1,
            color=COPY_COLOUR if copy else NEW_COLOUR,
        )
        self.shown.update(
            sample=as_array(sample),
            nearest=as_array(nearest),
            distance=distance,
            copy=bool(copy),
            copy_fraction=float(cell["copy_fraction"]),
            index=index,
        )
