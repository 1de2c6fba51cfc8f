"""An explorer in a real browser: headless Chromium drives JupyterLab 4 and Notebook 7.

For each front end, the test opens tests/notebooks/widgets_demo.ipynb (a NoiseExplorer), runs
all cells from the Run menu, waits for the widget's figure, drags the ``time t`` slider with the
mouse and checks that the pixels of the figure change. The Jupyter server listens on 127.0.0.1
only, on a free port, with a random token, in a temporary directory, and is shut down at the end.

Needs: playwright and jupyterlab/notebook (dev dependencies) and Debian's chromium at
/usr/bin/chromium (installed here with apt-get when missing and running as root; never
``playwright install``). Skipped, saying why, only where chromium cannot be had.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "notebooks" / "widgets_demo.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
SHOTS = Path(os.environ.get("ELS_BROWSER_SHOTS", "")) if os.environ.get("ELS_BROWSER_SHOTS") else None

# A checksum of the pixels an <img> shows (blob URLs are same-origin, so the canvas is readable).
IMAGE_SIGNATURE = """(img) => {
    if (!img.complete || img.naturalWidth === 0) return null;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i += 4) h = (Math.imul(h, 31) + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
    return [c.width, c.height, h];
}"""


def ensure_chromium() -> str | None:
    """None when /usr/bin/chromium is there (installing it with apt-get if need be), else why not."""
    if CHROMIUM.exists():
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "chromium is missing and cannot be installed here (needs root and apt-get): apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"could not install chromium ({' '.join(cmd)}: {err})"
        if proc.returncode != 0:
            return f"could not install chromium ({' '.join(cmd)} failed: {proc.stderr.strip()[-300:]})"
    return None if CHROMIUM.exists() else "apt-get installed chromium but /usr/bin/chromium is missing"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, token: str, method: str = "GET"):
    """(HTTP status, parsed JSON body or None) of a call to the Jupyter server's REST API."""
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body = resp.read()
        return resp.status, (json.loads(body) if body.strip().startswith((b"{", b"[")) else None)


def wait_for_idle_kernel(base: str, token: str, notebook: str, timeout: float = 60) -> None:
    """Wait until the notebook's kernel is up and idle (and give the page a moment to connect its
    widget manager: widgets made before it listens are lost -- "model not found")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, sessions = request(f"{base}/api/sessions", token)
        states = [s["kernel"]["execution_state"] for s in sessions or [] if s.get("path", "").endswith(notebook)]
        if "idle" in states:
            time.sleep(2)
            return
        time.sleep(0.5)
    raise AssertionError(f"the kernel of {notebook} did not start within {timeout} s")


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
def server(tmp_path_factory):
    """A Jupyter server (JupyterLab and Notebook 7 front ends) on 127.0.0.1, killed at the end."""
    pytest.importorskip("jupyterlab", reason="jupyterlab is a dev dependency: pip install -e '.[dev]'")
    pytest.importorskip("notebook", reason="notebook is a dev dependency: pip install -e '.[dev]'")
    home = tmp_path_factory.mktemp("jupyter")
    work = home / "work"
    work.mkdir()
    for name in ("lab.ipynb", "notebook.ipynb"):
        shutil.copy(DEMO, work / name)
    # No pop-ups over the page: no "would you like news?", no "select a kernel" dialog.
    for plugin, values in [
        ("apputils-extension/notification", {"fetchNews": "false", "checkForUpdates": False}),
        ("notebook-extension/tracker", {"autoStartDefaultKernel": True}),
    ]:
        path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
        "MPLBACKEND": "Agg",
    }
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if request(f"{base}/api/status", token)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Jupyter server did not start:\n{(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield base, token
    finally:
        try:
            request(f"{base}/api/shutdown", token, method="POST")  # also shuts the kernels down
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def run_all_cells(page) -> None:
    """Run > Run All Cells, from the menu bar (the same in JupyterLab 4 and Notebook 7); accept a
    kernel dialog if one comes up anyway, and try again if nothing started running."""
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count():
                dialog.first.click()
            prompts = " ".join(page.locator(".jp-InputPrompt").all_inner_texts())
            if "[*]" in prompts or re.search(r"\[\d+\]", prompts):
                return
            page.wait_for_timeout(300)
    raise AssertionError("Run All Cells did not start the cells")


def signature(img):
    return img.evaluate(IMAGE_SIGNATURE)


@pytest.mark.parametrize("front_end", ["lab", "notebook"])
def test_slider_changes_the_rendered_figure(browser, server, front_end, tmp_path):
    base, token = server
    name = {"lab": "lab.ipynb", "notebook": "notebook.ipynb"}[front_end]
    url = {"lab": f"{base}/lab/tree/{name}", "notebook": f"{base}/notebooks/{name}"}[front_end]
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        page.goto(f"{url}?token={token}", wait_until="domcontentloaded", timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        wait_for_idle_kernel(base, token, name)
        img = page.locator(".elslib-explorer img").first
        for attempt in range(2):
            run_all_cells(page)
            deadline = time.monotonic() + 120
            while not img.count() and time.monotonic() < deadline:
                if page.locator("text=Error displaying widget").count():  # a front-end race: run again
                    break
                page.wait_for_timeout(300)
            if img.count() or attempt:
                break
            print(f"[browser] {front_end}: the widget manager missed the first run (model not found); ran again")
        if not img.count():
            page.screenshot(path=str((SHOTS or Path(tmp_path)) / f"{front_end}-timeout.png"))
            raise AssertionError(f"no explorer figure appeared in {front_end} (screenshot in {SHOTS or tmp_path})")
        img.wait_for(state="visible", timeout=30_000)
        page.wait_for_function(f"(img) => ({IMAGE_SIGNATURE})(img) !== null", arg=img.element_handle(), timeout=30_000)
        before = signature(img)
        assert before[0] >= 500, f"the figure is {before[0]} px wide"
        slider = page.locator(".widget-hslider", has=page.locator("label", has_text="time t")).first
        readout = slider.locator(".widget-readout")
        assert readout.inner_text().strip() == "0.20"
        if SHOTS:
            page.locator(".elslib-explorer").first.screenshot(path=str(SHOTS / f"{front_end}-before.png"))

        # Drag the handle of "time t" to 90% of its track, as a person would.
        handle, track = slider.locator(".noUi-handle"), slider.locator(".noUi-target")
        handle.scroll_into_view_if_needed()
        h, tr = handle.bounding_box(), track.bounding_box()
        page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
        page.mouse.down()
        page.mouse.move(tr["x"] + 0.9 * tr["width"], h["y"] + h["height"] / 2, steps=8)
        page.mouse.up()

        deadline = time.monotonic() + 30
        after = signature(img)
        while after == before and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            after = signature(img)
        settled = time.monotonic() + 15  # continuous updates: wait for the last one to land
        while time.monotonic() < settled:
            page.wait_for_timeout(700)
            latest = signature(img)
            if latest == after:
                break
            after = latest
        moved_to = float(readout.inner_text())
        if SHOTS:
            page.locator(".elslib-explorer").first.screenshot(path=str(SHOTS / f"{front_end}-after.png"))
        assert moved_to > 0.6, f"the slider did not move (readout {moved_to})"
        assert after != before, "moving the slider did not change the rendered figure"
        assert after[:2] == before[:2]  # same figure size, new pixels
        assert page.locator("text=Error displaying widget").count() == 0
    finally:
        page.close()
