"""Click-to-pick in the mosaic inspector and the locality probe, without a browser.

The browser sends ipyevents messages; here the same messages are made by hand and handed to the
explorer's listener. Where to click is found from the rendered PNG itself (the red square that
marks the chosen pixel), not from the transforms the picker uses, so a wrong mapping fails.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from elslib import networks
from elslib.course.widgets import LocalityProbe, MosaicInspector, base, picking

pytestmark = pytest.mark.usefixtures("one_thread")

ipyevents = pytest.importorskip("ipyevents", reason="click-to-pick needs ipyevents: pip install -e '.[app]'")


def png_pixels(png: bytes) -> np.ndarray:
    """[H, W, 3] uint8 of a PNG."""
    rgb = imread(io.BytesIO(png), format="png")[..., :3]
    return np.round(rgb * 255).astype(np.int32)


def mark_centre(explorer, ax, elsewhere=None) -> tuple[float, float]:
    """(x, y) in PNG pixels of the centre of the red square marking the chosen pixel on `ax`.

    `elsewhere`: the PNG with another pixel chosen; red there too is the panel's own colour (the
    mosaic's palette has reds), not the mark, and is left out.
    """
    rgb = png_pixels(explorer.png)
    height = rgb.shape[0]
    box = ax.get_window_extent()  # only to crop the search to that panel
    x0, x1 = int(box.x0) + 1, int(box.x1) - 1
    y0, y1 = height - int(box.y1) + 1, height - int(box.y0) - 1
    red = np.array([int(base.MARK[i : i + 2], 16) for i in (1, 3, 5)])
    near = np.abs(rgb[y0:y1, x0:x1] - red).sum(-1) < 40
    if elsewhere is not None:
        near &= np.abs(png_pixels(elsewhere)[y0:y1, x0:x1] - red).sum(-1) >= 40
    ys, xs = np.nonzero(near)
    assert len(xs) > 8, "the chosen pixel's red square is not in the panel"
    return x0 + (xs.min() + xs.max()) / 2, y0 + (ys.min() + ys.max()) / 2


def click(explorer, x, y):
    """What ipyevents sends the kernel for a click on the figure (dataX/dataY: PNG pixels)."""
    message = {"type": "click", "dataX": int(round(x)), "dataY": int(round(y)), "button": 0}
    explorer.picker.event._handle_mouse_msg(None, message, [])


def key(explorer, name):
    explorer.picker.event._handle_mouse_msg(None, {"type": "keydown", "key": name}, [])


@pytest.fixture(scope="module")
def inspector():
    return MosaicInspector(n_images=24, steps=3, patch_size=5, progress=False)


@pytest.mark.parametrize("panel", ["ax_sample", "ax_mosaic", "ax_weight"])
def test_a_click_on_the_mosaic_inspector_selects_that_pixel(inspector, panel):
    ax = getattr(inspector, panel)
    inspector.select(20, 3)
    before = inspector.png
    inspector.select(5, 23)
    x, y = mark_centre(inspector, ax, elsewhere=before)  # where pixel (5, 23) is drawn on this panel
    inspector.select(20, 3)
    click(inspector, x, y)
    assert (inspector.row.value, inspector.col.value) == (5, 23), "the sliders follow the click"
    assert inspector.shown["pixel"] == (5, 23), "and so does what the figure shows"
    assert inspector.png != before


def test_clicks_off_the_sample_grid_change_nothing(inspector):
    inspector.select(7, 8)
    png = inspector.png
    click(inspector, 2, 2)  # the white margin
    x, y = mark_centre(inspector, inspector.ax_train)  # another image's pixels: not a sample pixel
    click(inspector, x, y)
    assert (inspector.row.value, inspector.col.value) == (7, 8) and inspector.png == png
    assert inspector.picker.on_event({"type": "click"}) is None  # no coordinates: ignored


def test_arrow_keys_move_the_pixel_and_stop_at_the_border(inspector):
    inspector.select(0, 30)
    key(inspector, "ArrowDown")
    key(inspector, "ArrowRight")
    assert inspector.shown["pixel"] == (1, 31)
    key(inspector, "ArrowRight")  # column 31 is the last of 32
    key(inspector, "ArrowUp")
    key(inspector, "ArrowUp")
    assert (inspector.row.value, inspector.col.value) == (0, 31)
    key(inspector, "a")  # not an arrow: nothing
    assert inspector.shown["pixel"] == (0, 31)


def test_the_mapping_follows_the_figure_layout_exactly():
    """Every pixel centre of a drawn imshow maps back to itself, including on a wide, letterboxed axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2), dpi=96)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.1, 0.1, 0.8, 0.8])  # wider than the 5 x 7 image: imshow shrinks it sideways
    ax.imshow(np.zeros((5, 7)), interpolation="nearest")
    fig.canvas.draw()
    height = fig.canvas.get_width_height()[1]
    for r in range(5):
        for c in range(7):
            xd, yd = ax.transData.transform((c, r))
            assert picking.pixel_at(fig, [ax], xd, height - yd, (5, 7)) == (r, c)
    width = fig.canvas.get_width_height()[0]
    # inside the box the axes were given, beside the image imshow shrank into it: no pixel
    assert ax.get_window_extent().x0 > 0.1 * width + 20, "the image is letterboxed"
    assert picking.pixel_at(fig, [ax], 0.1 * width + 5, height / 2, (5, 7)) is None
    assert picking.pixel_at(fig, [ax], float("nan"), 3.0, (5, 7)) is None


def test_a_click_on_the_locality_probe_moves_the_output_pixel():
    torch.manual_seed(0)
    probe = LocalityProbe(network=networks.ResNet(channels=8, blocks=2).eval(), n_images=3, progress=False)
    probe.select(16, 16)
    elsewhere = probe.png
    probe.select(4, 26)
    x, y = mark_centre(probe, probe.ax_grad, elsewhere)
    probe.select(16, 16)
    grad_before = probe.shown["gradient"].copy()
    click(probe, x, y)
    assert probe.shown["pixel"] == (4, 26) and (probe.row.value, probe.col.value) == (4, 26)
    assert not np.allclose(probe.shown["gradient"], grad_before), "a new pixel's gradient map is drawn"
    key(probe, "ArrowLeft")
    assert probe.shown["pixel"] == (4, 25)
    probe.close()
