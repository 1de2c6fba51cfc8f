"""The explorers app in a real browser: ``python -m elslib explorers`` driven by headless Chromium.

One app (fast sizes) on 127.0.0.1 and a free port, started as a user starts it, stopped with
SIGINT (Ctrl-C) at the end, which must leave nothing listening. Checked: every tab builds and
shows its figure, no code is on the page, a slider moves a figure, and a click on the mosaic
inspector's sample chooses that pixel (the row and column readouts and the figure change; an
arrow key then moves it).

Same conventions as tests/test_browser.py: Debian's /usr/bin/chromium (never ``playwright
install``), its helpers and pixel signature. Needs Voilà and ipyevents (the ``app`` extra, also
in ``dev``); skipped, saying why, where those or chromium cannot be had.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

try:
    from test_browser import CHROMIUM, CHROMIUM_ARGS, IMAGE_SIGNATURE, ensure_chromium, free_port, signature
except ImportError:  # run as a package module (python -m pytest from another folder)
    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, IMAGE_SIGNATURE, ensure_chromium, free_port, signature

ROOT = Path(__file__).resolve().parents[1]
STARTUP = 90  # seconds for the app to print its URL (Voilà starts in a few)


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright", reason="playwright is a dev dependency: pip install -e '.[dev]'")
    why = ensure_chromium()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app():
    """The app as a user runs it; yields its URL; Ctrl-C (SIGINT) at the end must stop it cleanly."""
    pytest.importorskip("voila", reason="the app needs Voila: pip install -e '.[app]'")
    pytest.importorskip("ipyevents", reason="click-to-pick needs ipyevents: pip install -e '.[app]'")
    port = free_port()
    cmd = [sys.executable, "-m", "elslib", "explorers", "--port", str(port), "--fast"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + STARTUP
        while not any("http://" in line for line in lines):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the app did not print its URL:\n" + "".join(lines)[-2000:])
            time.sleep(0.2)
        url = re.search(r"http://\S+", "".join(lines)).group(0)
        assert url == f"http://127.0.0.1:{port}/", url
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError("the app did not stop within 30 s of Ctrl-C") from None
            assert code == 0, "".join(lines)[-2000:]
            assert "stopping" in "".join(lines)
            with socket.socket() as s:  # Voilà is gone too: the port is free again
                s.bind(("127.0.0.1", port))


def explorer_box(page, title: str):
    return page.locator(".elslib-explorer", has_text=title).first


def wait_for_figure(page, box, timeout: float = 60):
    """The explorer's <img> once its pixels can be read."""
    img = box.locator("img").first
    img.wait_for(state="visible", timeout=timeout * 1000)
    page.wait_for_function(
        f"(img) => ({IMAGE_SIGNATURE})(img) !== null", arg=img.element_handle(), timeout=timeout * 1000
    )
    return img


def wait_for_change(page, img, before, timeout: float = 30):
    deadline = time.monotonic() + timeout
    after = signature(img)
    while after == before and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        after = signature(img)
    return after


def readout(box, label: str):
    slider = box.locator(".widget-hslider", has=box.page.locator("label", has_text=label)).first
    return slider.locator(".widget-readout")


@pytest.fixture(scope="module")
def page(browser, app):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(app, wait_until="domcontentloaded", timeout=90_000)
    yield page
    page.close()


def test_every_tab_shows_its_explorer_and_no_code(page):
    from elslib.course import app
    from elslib.course import widgets as explorers

    tabs = page.locator(".lm-TabBar-tab")
    tabs.first.wait_for(timeout=90_000)
    assert tabs.all_inner_texts() == [title for title, _ in app.TABS]
    for k, (title, name) in enumerate(app.TABS):
        tabs.nth(k).click()
        img = wait_for_figure(page, explorer_box(page, getattr(explorers, name).title))
        width = signature(img)[0]
        assert width >= 500, f"tab {title!r}: the figure is {width} px wide"
    assert page.locator("text=could not build").count() == 0
    assert page.locator("text=Error displaying widget").count() == 0
    assert page.locator(".jp-InputArea, .jp-CodeMirrorEditor").count() == 0, "the app shows no code"
    assert "from elslib.course.app import" not in page.content()


def test_a_slider_moves_the_noise_figure(page):
    page.locator(".lm-TabBar-tab", has_text="Noise").first.click()
    box = explorer_box(page, "Noise explorer")
    img = wait_for_figure(page, box)
    before = signature(img)
    slider = box.locator(".widget-hslider", has=page.locator("label", has_text="time t")).first
    handle, track = slider.locator(".noUi-handle"), slider.locator(".noUi-target")
    handle.scroll_into_view_if_needed()
    h, tr = handle.bounding_box(), track.bounding_box()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    page.mouse.down()
    page.mouse.move(tr["x"] + 0.9 * tr["width"], h["y"] + h["height"] / 2, steps=6)
    page.mouse.up()
    after = wait_for_change(page, img, before)
    assert float(slider.locator(".widget-readout").inner_text()) > 0.6, "the slider did not move"
    assert after != before and after[:2] == before[:2], "moving the slider did not redraw the figure"


def where_pixel_is_drawn(row: int, col: int) -> tuple[float, float]:
    """(x, y) of pixel (row, col) of the inspector's sample panel, as a fraction of the PNG's size.

    The layout does not depend on the data, so a tiny inspector made here has the app's geometry.
    """
    import torch

    from elslib.course.widgets import MosaicInspector

    images = torch.rand(4, 1, 32, 32) * 2 - 1
    ins = MosaicInspector(images=images, patch_size=5, steps=2, progress=False)
    width, height = ins.fig.canvas.get_width_height()
    x, y = ins.ax_sample.transData.transform((col, row))
    ins.close()
    return x / width, 1 - y / height


def test_a_click_on_the_mosaic_inspector_chooses_that_pixel(page):
    page.locator(".lm-TabBar-tab", has_text="Mosaic").first.click()
    box = explorer_box(page, "Mosaic inspector")
    img = wait_for_figure(page, box)
    row, col = readout(box, "pixel row"), readout(box, "column")
    assert (row.inner_text(), col.inner_text()) == ("16", "16")
    before = signature(img)
    fx, fy = where_pixel_is_drawn(9, 21)
    img.scroll_into_view_if_needed()
    b = img.bounding_box()
    page.mouse.click(b["x"] + fx * b["width"], b["y"] + fy * b["height"])
    deadline = time.monotonic() + 30
    while (row.inner_text(), col.inner_text()) != ("9", "21") and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert (row.inner_text(), col.inner_text()) == ("9", "21"), "the click did not choose pixel (9, 21)"
    after = wait_for_change(page, img, before)
    assert after != before, "the figure did not follow the click"
    page.keyboard.press("ArrowDown")  # the mouse is over the figure, which then has the keyboard
    deadline = time.monotonic() + 20
    while row.inner_text() != "10" and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert (row.inner_text(), col.inner_text()) == ("10", "21"), "the arrow key did not move the pixel"
