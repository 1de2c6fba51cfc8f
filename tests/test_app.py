"""The explorers app without a browser: its page, the files it writes, its command line errors.

tests/test_app_browser.py runs the real thing in Chromium.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from elslib.course import app
from elslib.course import widgets as explorers

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]


def test_every_explorer_of_the_course_has_a_tab():
    names = [name for _, name in app.TABS]
    everything = [n for n in explorers.__all__ if n != "Explorer"]
    assert sorted(names) == sorted(everything), "a new explorer needs a tab in elslib.course.app.TABS"
    for fast in (True, False):
        args = app.settings(fast)
        assert set(args) == set(names)
        assert all(a.get("n_images", 0) <= 300 and a.get("steps", 0) <= 20 for a in args.values())


def test_the_page_builds_each_explorer_when_its_tab_opens():
    tab = app.tabs(fast=True)
    assert list(tab.titles) == [title for title, _ in app.TABS]
    assert list(tab.explorers) == ["NoiseExplorer"], "only the first tab is built while the page loads"
    tab.selected_index = [name for _, name in app.TABS].index("MosaicInspector")
    mosaic = tab.explorers["MosaicInspector"]
    assert isinstance(mosaic, explorers.MosaicInspector) and len(mosaic.images) == 60
    assert tab.children[tab.selected_index].children == (mosaic.widget,)
    tab.selected_index = 0  # going back builds nothing new
    assert list(tab.explorers) == ["NoiseExplorer", "MosaicInspector"]
    for e in tab.explorers.values():
        e.close()


def test_the_app_files_go_to_the_folder_given(tmp_path):
    notebook = app.write_app(tmp_path)
    assert notebook.parent == tmp_path
    nb = nbformat.read(notebook, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["code"] and "tabs()" in nb.cells[0].source
    spec = json.loads((tmp_path / "kernels" / app.KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable and nb.metadata["kernelspec"]["name"] == app.KERNEL
    command = app.voila_command(notebook, 1234)
    assert "--Voila.ip=127.0.0.1" in command and "--strip_sources=True" in command and "--port=1234" in command


def run(*args):
    return subprocess.run([sys.executable, "-m", "elslib", "explorers", *args], capture_output=True, text=True)


def test_bad_ports_are_one_line_errors():
    for port, words in (("70000", "0 (any free port) or 1 to 65535, got 70000"), ("-3", "got -3")):
        proc = run("--port", port)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run("--port", str(port))
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "--port 0" in proc.stderr
    with pytest.raises(ValueError, match="must be an integer"):
        app.check_port("8866")
    assert app.check_port(0) > 0


def test_an_explorer_that_fails_to_build_says_why_on_its_tab(monkeypatch, capsys):
    good = app.settings(True)
    monkeypatch.setattr(app, "settings", lambda fast: {**good, "LocalityProbe": {"n_images": -1}})
    tab = app.tabs(fast=True)
    k = [name for _, name in app.TABS].index("LocalityProbe")
    tab.selected_index = k
    message = tab.children[k].children[0].value
    assert "could not build LocalityProbe" in message and "n_images" in message
    assert "LocalityProbe" not in tab.explorers and "Traceback" in capsys.readouterr().err
    tab.explorers["NoiseExplorer"].close()
