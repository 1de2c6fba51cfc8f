"""Choosing a pixel by clicking on an explorer's figure, and moving it with the arrow keys.

An explorer's figure is a PNG in an ``ipywidgets.Image``; the browser only knows where on that
PNG the mouse was. `ipyevents <https://github.com/mwcraig/ipyevents>`_ (a maintained, small
ipywidgets extension for DOM mouse and keyboard events) reports a click on an ``Image`` as
``dataX``/``dataY``: the position in the PNG's own pixels (it undoes the browser's scaling of the
image, so a figure shrunk to fit a projector still maps right). From there, :func:`pixel_at` goes
through matplotlib's own transforms: PNG pixel -> display coordinates of the figure -> data
coordinates of the axes the click fell in -> (row, col) of the image shown there. That accounts for
the figure's layout (gridspec margins, the equal-aspect shrinking imshow does) without any
constants that could drift from the drawing code.

ipyevents is optional: without it (or where no widget front end runs) the explorers work as
before, with their row and column sliders.
"""

from __future__ import annotations

import math

# Arrow keys -> (d_row, d_col): one pixel per press, as the row and column sliders step.
ARROWS = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1)}


def pixel_at(fig, axes, x: float, y: float, shape: tuple[int, int]):
    """The (row, col) of the image under PNG pixel (x, y), or None when the click is elsewhere.

    Args:
        fig: the matplotlib Figure the PNG was saved from (at ``fig.dpi``, no tight bounding box:
            then one PNG pixel is one display unit).
        axes: the Axes that show an image of `shape` with ``imshow`` (pixel centres at integers).
        x, y: the click in PNG pixels, from the left and from the top (ipyevents' dataX, dataY).
        shape: (H, W) of the images those axes show.

    The figure must have been drawn (the explorer renders it on every refresh), so that the axes'
    positions include the aspect adjustment done at draw time.
    """
    if not all(math.isfinite(v) for v in (x, y)):
        return None
    _, height_px = fig.canvas.get_width_height()
    display = (float(x), height_px - float(y))  # PNG rows run down, display y runs up
    h, w = shape
    for ax in axes:
        if not ax.get_visible() or not ax.bbox.contains(*display):
            continue
        col, row = ax.transData.inverted().transform(display)
        r, c = math.floor(row + 0.5), math.floor(col + 0.5)  # pixel k covers [k - 0.5, k + 0.5)
        if 0 <= r < h and 0 <= c < w:
            return r, c
    return None


def available() -> bool:
    """Whether ipyevents can be imported (click-to-pick and arrow keys need it)."""
    try:
        import ipyevents  # noqa: F401
    except ImportError:
        return False
    return True


class PixelPicker:
    """Click on `axes` of `explorer`'s figure to choose a pixel; arrow keys move it by one.

    `explorer` must have ``row`` and ``col`` IntSliders and ``select(row, col)``, which sets both
    and redraws once. Hovering over the figure gives it the keyboard (ipyevents' behaviour), so
    the arrows move the pixel without scrolling the page. ``event`` is the ipyevents ``Event``
    (None without ipyevents); ``on_event`` is what it calls, and what tests call with a message.
    """

    def __init__(self, explorer, axes, shape: tuple[int, int]):
        self.explorer, self.axes, self.shape = explorer, list(axes), (int(shape[0]), int(shape[1]))
        self.event = None
        if available():
            from ipyevents import Event

            self.event = Event(
                source=explorer.image,
                watched_events=["click", "keydown"],
                prevent_default_action=True,  # arrows must not scroll the page
            )
            self.event.on_dom_event(self.on_event)

    def on_event(self, event: dict):
        """Handle one ipyevents message; returns the pixel chosen, or None when it chose none."""
        kind = event.get("type")
        row, col = self.explorer.row.value, self.explorer.col.value
        if kind == "click":
            try:
                x, y = float(event["dataX"]), float(event["dataY"])
            except (KeyError, TypeError, ValueError):
                return None  # a message without image coordinates: nothing to map
            found = pixel_at(self.explorer.fig, self.axes, x, y, self.shape)
            if found is None:
                return None
            row, col = found
        elif kind == "keydown" and event.get("key") in ARROWS:
            dr, dc = ARROWS[event["key"]]
            row = min(max(row + dr, 0), self.shape[0] - 1)
            col = min(max(col + dc, 0), self.shape[1] - 1)
        else:
            return None
        if (row, col) != (self.explorer.row.value, self.explorer.col.value):
            self.explorer.select(row, col)
        return row, col

    def close(self) -> None:
        if self.event is not None:
            self.event.close()
