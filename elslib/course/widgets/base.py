"""What every explorer shares: a figure rendered into an image widget, controls, and a status bar.

An explorer is a row or two of ipywidgets controls above one matplotlib figure. The figure is
drawn off-screen (Agg, no pyplot, so nothing leaks into the notebook by itself) and its PNG is
put into an ``ipywidgets.Image``. That choice makes three things simple:

- only core widgets are used, so it works wherever ipywidgets 8 does (JupyterLab 4 and
  Notebook 7 are tested in a real browser: tests/test_browser.py);
- the same PNG is the static fallback: :meth:`Explorer._repr_mimebundle_` returns the widget
  *and* ``image/png``, so nbconvert, nbclient (CI) and static renderers show the figure of the
  explorer's current state where no widget frontend runs;
- tests read what is shown from ``explorer.shown`` (numpy arrays) and ``explorer.png``.

Long work (sampling a trajectory with a score machine takes seconds) runs inside
:meth:`Explorer.busy`, which shows a progress bar and a status line, so the kernel is never
silently frozen; results are cached, so going back to a setting seen before is instant.
"""

from __future__ import annotations

import base64
import io
import time
from contextlib import contextmanager

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# One look for every explorer: pixels per inch of the PNG, font sizes, colours of marks.
DPI = 96
TITLE_SIZE = 9.5
LABEL_SIZE = 8.5
MARK = "#e8432d"  # the selected pixel, the current time: warm red, visible on grey and colour
WINDOW = "#1f9bd7"  # a P x P window
FIELD = "#f2b705"  # a network's receptive field
SLIDER_STYLE = {"description_width": "initial"}

# Torch threads for the explorers' work (None: leave torch's setting alone). An explorer's work is
# small (one image at a time), and on a busy CPU -- a shared 2-core machine, or the browser and
# Jupyter server on the same laptop -- threads that spin waiting for each other make a forward
# pass or an ELS call 5-10x slower than one thread does (measured; see benchmarks/RESULTS.md).
# One thread gives a steady response time; set this to None (or more) on a big idle machine.
THREADS: int | None = 1


@contextmanager
def compute_threads():
    """Run torch with ``THREADS`` threads inside the block, then restore the previous setting."""
    if THREADS is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Explorer:
    """Base class: controls above a figure, a progress bar and status line below.

    Subclasses build their figure in ``__init__`` (``self.fig``, via :meth:`_figure`), put their
    controls in ``self.controls`` (rows of widgets), and implement :meth:`_draw`, which updates
    the figure and ``self.shown`` from the current control values. :meth:`refresh` draws and
    renders; control callbacks call it.

    Public attributes of every explorer:

    - ``shown``: dict of numpy arrays (and floats) that the figure shows right now;
    - ``png``: the PNG bytes of the figure right now;
    - ``widget``: the ipywidgets box (display the explorer itself to get the static fallback too);
    - ``status``: the status line (an ``ipywidgets.HTML``) and ``progress`` (an ``IntProgress``);
    - ``last_seconds``: how long the last interaction took, drawing included.
    """

    title = "explorer"
    hint = ""  # one line under the title: what to try

    def __init__(self, progress: bool = True):
        self.shown: dict = {}
        self.png = b""
        self.last_seconds = 0.0
        self.show_progress = bool(progress)
        self.controls: list = []
        self.fig: Figure | None = None
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.progress = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(width="220px", display="none"))
        self.status = widgets.HTML(value="", layout=widgets.Layout(margin="0 0 0 8px"))
        self._box = widgets.VBox(layout=widgets.Layout(width="fit-content", max_width="100%"))
        self._live = False  # False while __init__ runs: no callbacks, progress goes to tqdm
        self._art: dict = {}  # artists that _draw updates in place (faster than redrawing axes)
        self._hold = 0  # > 0: control changes made by the explorer itself trigger nothing

    # ----------------------------------------------------------------------- public
    @property
    def widget(self) -> widgets.VBox:
        """The explorer's widget tree (controls, figure, status)."""
        if not self._box.children:
            rows = [r if isinstance(r, widgets.Widget) else widgets.HBox(list(r)) for r in self.controls]
            status_row = widgets.HBox([self.progress, self.status], layout=widgets.Layout(align_items="center"))
            hint = f"<br><span style='color:#555; font-size:0.92em'>{self.hint}</span>" if self.hint else ""
            header = widgets.HTML(f"<b>{self.title}</b>{hint}", layout=widgets.Layout(margin="0 0 4px 4px"))
            self._box.children = [header, *rows, self.image, status_row]
            self._box.add_class("elslib-explorer")
        return self._box

    def refresh(self) -> None:
        """Redraw the figure from the current control values and update ``shown`` and ``png``."""
        start = time.perf_counter()
        with compute_threads():
            self._draw()
        self._render()
        self.last_seconds = time.perf_counter() - start

    def save(self, path) -> None:
        """Write the figure as shown now to a PNG file."""
        with open(path, "wb") as f:
            f.write(self.png)

    def close(self) -> None:
        """Close the widgets (frees them in the kernel and the page)."""
        for w in [*_leaves(self.controls), self.image, self.progress, self.status, self._box]:
            w.close()

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """The widget, plus a PNG of the current figure for places where no widget frontend runs."""
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
        bundle["text/plain"] = f"<{type(self).__name__}: {self.title}>"
        return bundle

    # ------------------------------------------------------------------ subclasses
    def _draw(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _figure(self, width: float, height: float) -> Figure:
        fig = Figure(figsize=(width, height), dpi=DPI, facecolor="white")
        FigureCanvasAgg(fig)
        return fig

    def _show(self, ax, key: str, image, title: str | None = None, vmin=-1.0, vmax=1.0, cmap="gray"):
        """Show an image on `ax`, reusing its AxesImage (stored as ``self._art[key]``) when the shape
        is unchanged: updating data is several times faster than clearing and redrawing an axis."""
        x = np.clip((as_array(image) - vmin) / (vmax - vmin), 0.0, 1.0)
        self._unnote(ax)
        im = self._art.get(key)
        if im is None or im.axes is not ax or im.get_array().shape != x.shape:
            if im is not None and im.axes is ax:
                im.remove()
            self._art[key] = im = show(ax, image, vmin=vmin, vmax=vmax, cmap=cmap)
        else:
            im.set_data(x)
            im.set_cmap(cmap)
        if title is not None:
            ax.set_title(title, fontsize=TITLE_SIZE)
        return im

    def _note(self, ax, key: str | None, text: str, title: str | None = None):
        """Replace the image `key` on `ax` (if any) by a short message, e.g. "computing ..."."""
        im = self._art.pop(key, None) if key is not None else None
        if im is not None and im.axes is ax:
            im.remove()
        self._unnote(ax)
        self._art[("note", id(ax))] = note(ax, text)
        if title is not None:
            ax.set_title(title, fontsize=TITLE_SIZE)

    def _unnote(self, ax):
        text = self._art.pop(("note", id(ax)), None)
        if text is not None:
            text.remove()
            for side in ax.spines.values():
                side.set_color("black")

    def _render(self) -> None:
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
        self.png = buf.getvalue()
        self.image.value = self.png

    def _finish_init(self) -> None:
        """Last line of a subclass's __init__: first drawing, then callbacks go live."""
        self.refresh()
        self._live = True

    def _on(self, control, callback=None) -> None:
        """Call `callback` (default: refresh) whenever the control's value changes."""
        callback = callback or (lambda: None)

        def handler(_change):
            if not self._live or self._hold:
                return
            start = time.perf_counter()
            try:
                with self.hold():
                    callback()
                self.refresh()
            except Exception as err:  # show it where the learner looks, then re-raise for the log
                self.status.value = f"<span style='color:{MARK}'>error: {type(err).__name__}: {err}</span>"
                raise
            self.last_seconds = time.perf_counter() - start

        control.observe(handler, names="value")

    @contextmanager
    def hold(self):
        """Change controls from code without each change redrawing (one refresh comes after)."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1

    @contextmanager
    def busy(self, message: str, total: int):
        """Show progress for long work: ``with self.busy("sampling", 20) as tick: ... tick()``.

        In the widget: a progress bar and a status line (and controls disabled meanwhile).
        While the explorer is being built (not yet on screen), a tqdm bar instead.
        """
        start = time.perf_counter()
        bar = None
        if not self._live and self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=message, leave=False)
        self.progress.max, self.progress.value = max(int(total), 1), 0
        self.progress.layout.display = None
        self.status.value = f"{message} ..."
        disabled = self._set_disabled(True)

        def tick(n: int = 1):
            self.progress.value = min(self.progress.value + n, self.progress.max)
            if bar is not None:
                bar.update(n)

        try:
            with compute_threads():
                yield tick
        finally:
            if bar is not None:
                bar.close()
            self._set_disabled(False, disabled)
            self.progress.layout.display = "none"
            self.status.value = f"{message}: done in {time.perf_counter() - start:.1f} s"

    def _set_disabled(self, flag: bool, only=None):
        """Disable (or re-enable) the controls that have a ``disabled`` trait; returns those changed."""
        changed = []
        for c in only if only is not None else _leaves(self.controls):
            if hasattr(c, "disabled") and (only is not None or not c.disabled):
                c.disabled = flag
                changed.append(c)
        return changed


def labelled(text: str, control) -> widgets.HBox:
    """A control with its label on its left, on one line (a ToggleButtons' own description wraps)."""
    label = widgets.Label(text, layout=widgets.Layout(margin="0 4px 0 8px"))
    return widgets.HBox([label, control], layout=widgets.Layout(align_items="center"))


def _leaves(rows):
    for r in rows:
        if isinstance(r, widgets.Box):
            yield from _leaves(r.children)
        elif isinstance(r, (list, tuple)):
            yield from _leaves(r)
        else:
            yield r


# --------------------------------------------------------------------------- drawing helpers


def as_array(image) -> np.ndarray:
    """An image as numpy for display: a tensor [C, H, W] -> [H, W] (grey) or [H, W, C]; a numpy
    array is taken to be [H, W] or [H, W, C] already. Values are unchanged (model units)."""
    if hasattr(image, "detach"):
        x = image.detach().float().cpu().numpy()
        if x.ndim == 3:
            x = x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)
        return np.array(x, dtype=np.float32)
    return np.array(image, dtype=np.float32)


def show(ax, image, title: str | None = None, vmin: float = -1.0, vmax: float = 1.0, cmap: str = "gray"):
    """Draw one image (values in [vmin, vmax]) without ticks; returns the AxesImage."""
    x = as_array(image)
    shown = np.clip((x - vmin) / (vmax - vmin), 0.0, 1.0)
    im = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=TITLE_SIZE)
    return im


def note(ax, text: str):
    """Make `ax` an empty panel that only says something (e.g. why it is empty); returns the Text."""
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("#bbbbbb")
    return ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        fontsize=LABEL_SIZE,
        color="#555555",
        wrap=True,
        transform=ax.transAxes,
    )
