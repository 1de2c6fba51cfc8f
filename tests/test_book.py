"""The course as a website (elslib.course.book): the pieces, the Colab setup cell, and the site itself.

The site test builds the site from the chapters that tests/test_chapters.py has just executed in
fast mode (the session's ``executed_chapters`` folder; a chapter missing there is executed here),
then opens every page in headless Chromium with every request outside 127.0.0.1 blocked, and
checks: no console error, every figure drawn, maths rendered, every internal link resolves, and
the search finds "equivariant". Chromium and playwright as in tests/test_browser.py.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
import types
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from elslib.__main__ import main
from elslib.course import book

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob(book.CHAPTER_GLOB))
WIDGET_MODEL = "application/vnd.jupyter.widget-view+json"


# --------------------------------------------------------------------------- the Colab setup cell


def run_colab_cell(monkeypatch, on_colab: bool, installed: bool = False) -> dict:
    """Execute the Colab cell's source with subprocess, chdir and the file system faked; what it did."""
    import subprocess

    calls, moved = [], []
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))  # never a real install
    monkeypatch.setattr(os, "chdir", moved.append)
    real_isdir = os.path.isdir
    monkeypatch.setattr(os.path, "isdir", lambda p: installed if p == book.COLAB_FOLDER else real_isdir(p))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(book.colab_cell(), "<colab cell>", "exec"), {})
    return {"calls": calls, "chdir": moved, "path": list(sys.path)}


def test_colab_cell_does_nothing_off_colab(monkeypatch):
    did = run_colab_cell(monkeypatch, on_colab=False)
    assert did["calls"] == [] and did["chdir"] == [] and book.COLAB_FOLDER not in did["path"]


def test_colab_cell_clones_and_installs_the_course_on_colab(monkeypatch):
    did = run_colab_cell(monkeypatch, on_colab=True)
    (clone, clone_kw), (pip, pip_kw) = did["calls"]
    assert clone[:2] == ["git", "clone"] and clone[-2:] == [book.repository_url(), book.COLAB_FOLDER]
    assert pip[:4] == [sys.executable, "-m", "pip", "install"] and pip[-2:] == ["-e", book.COLAB_FOLDER]
    assert clone_kw == pip_kw == {"check": True}  # a failed install stops the notebook there
    assert did["path"][0] == book.COLAB_FOLDER
    assert did["chdir"] == [f"{book.COLAB_FOLDER}/chapters"]


def test_colab_cell_installs_once_per_session(monkeypatch):
    did = run_colab_cell(monkeypatch, on_colab=True, installed=True)
    assert did["calls"] == [] and did["chdir"] == [f"{book.COLAB_FOLDER}/chapters"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_opens_with_the_colab_cell(path):
    cells = nbformat.read(path, as_version=4).cells
    code = [c for c in cells if c.cell_type == "code"]
    tagged = [c for c in cells if book.COLAB_TAG in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and code[0] is tagged[0], f"{path.name}: the first code cell must be the Colab cell"
    assert code[0].source == book.colab_cell(), (
        f"{path.name}: the Colab cell differs from elslib.course.book.colab_cell(): "
        "run `python -c 'from elslib.course import book; book.add_colab_cells()'`"
    )


def test_add_colab_cells_inserts_once_and_keeps_everything_else(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter 99"), nbformat.v4.new_code_cell("course.setup()")]
    nbformat.write(nb, tmp_path / "99_test.ipynb")
    ids = [c.id for c in nb.cells]
    assert book.add_colab_cells(tmp_path, repository="https://github.com/someone/course") == [
        tmp_path / "99_test.ipynb"
    ]
    cells = json.loads((tmp_path / "99_test.ipynb").read_text())["cells"]
    assert [c["id"] for c in cells] == [ids[0], "99-colab", ids[1]]
    assert "https://github.com/someone/course" in "".join(cells[1]["source"])
    assert book.add_colab_cells(tmp_path, repository="https://github.com/someone/course") == []  # up to date
    assert book.add_colab_cells(tmp_path, repository="https://github.com/other/course") == [tmp_path / "99_test.ipynb"]
    cells = json.loads((tmp_path / "99_test.ipynb").read_text())["cells"]
    assert len(cells) == 3 and "other/course" in "".join(cells[1]["source"])


def test_repository_url_comes_from_pyproject_or_the_constant(tmp_path):
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[project]\nname = "x"\n[project.urls]\nRepository = "https://github.com/a/b.git"\n')
    assert book.repository_url(toml) == "https://github.com/a/b"
    toml.write_text('[project]\nname = "x"\n')
    assert book.repository_url(toml) == book.REPOSITORY
    assert book.repository_url(tmp_path / "missing.toml") == book.REPOSITORY


# --------------------------------------------------------------------------- the pieces of the build


def test_a_missed_wake_up_costs_a_second_not_the_cell():
    """nbclient#312: a reply already there is only seen by a new wait; the sliced wait asks again."""
    import asyncio
    from queue import Empty

    calls = []

    async def get_msg(timeout=None):
        calls.append(timeout)
        if len(calls) < 3:  # the first waits miss the wake-up
            raise Empty
        return {"msg_type": "execute_reply"}

    reply = asyncio.run(book._in_slices(get_msg, slice_s=0.01)(timeout=600))
    assert reply == {"msg_type": "execute_reply"} and len(calls) == 3 and max(calls) <= 0.01

    async def silent(timeout=None):
        raise Empty

    start = time.perf_counter()
    with pytest.raises(Empty):  # a real timeout still ends the wait, on time
        asyncio.run(book._in_slices(silent, slice_s=0.01)(timeout=0.05))
    assert time.perf_counter() - start < 1


def test_widgets_become_their_static_pictures():
    png = "iVBORw0KGgo="
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
        "slider": {"model_name": "FloatSliderModel", "state": {"value": 0.5}},
        "out": {
            "model_name": "OutputModel",
            "state": {"outputs": [{"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}]},
        },
        "bar": {
            "model_name": "HBoxModel",
            "state": {"children": ["IPY_MODEL_left", "IPY_MODEL_prog", "IPY_MODEL_right"]},
        },
        "left": {"model_name": "HTMLModel", "state": {"value": "DDIM: 100%"}},
        "prog": {"model_name": "FloatProgressModel", "state": {"value": 20}},
        "right": {"model_name": "HTMLModel", "state": {"value": " 20/20 [00:01&lt;00:00]"}},
        "bare": {"model_name": "HBoxModel", "state": {"children": []}},
    }  # an explorer, ipywidgets.interact (its figure in an Output widget), a tqdm bar, a bare box

    def view(model, **extra):
        data = {WIDGET_MODEL: {"model_id": model}, "text/plain": f"{model}(children=...)", **extra}
        return {"output_type": "display_data", "data": data, "metadata": {}}

    nb = {
        "metadata": {"widgets": {book.WIDGET_STATE: {"state": state}}},
        "cells": [
            {"cell_type": "code", "outputs": [view("explorer", **{"image/png": png})]},
            {"cell_type": "code", "outputs": [view("box")]},
            {"cell_type": "code", "outputs": [view("bar"), {"output_type": "stream", "name": "stdout", "text": "hi"}]},
            {"cell_type": "code", "outputs": [view("bare")]},
        ],
    }
    out = book.static_widgets(nb)
    assert "widgets" not in out["metadata"] and "widgets" in nb["metadata"]  # a copy: the input is left alone
    explorer, interact, bar, bare = (c["outputs"] for c in out["cells"])
    assert explorer == [{"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}]
    assert interact[0]["data"] == {"image/png": png} and interact[1]["data"] == {"text/markdown": book.WIDGET_NOTE}
    assert bar[0] == {"output_type": "stream", "name": "stderr", "text": "DDIM: 100% 20/20 [00:01<00:00]\n"}
    assert bar[1]["text"] == "hi"
    assert [o["data"] for o in bare] == [{"text/markdown": book.WIDGET_NOTE}]
    assert WIDGET_MODEL not in json.dumps(out)


def test_links_point_into_the_site_or_at_the_repository():
    site = {"chapters/01_noise.ipynb", "chapters/README.md", "README.md"}
    repo = "https://github.com/o/r"
    text = "[a](01_noise.ipynb#goals) [b](../docs/architecture.md) [c](https://x.org) [d](#here) [e](../elslib/)"
    fixed = book._relink(text, "chapters/README.md", site, repo)
    assert fixed == (
        f"[a](01_noise.ipynb#goals) [b]({repo}/blob/main/docs/architecture.md) [c](https://x.org) [d](#here) "
        f"[e]({repo}/tree/main/elslib)"
    )


def test_external_references_finds_what_a_browser_would_fetch(tmp_path):
    (tmp_path / "a.html").write_text(
        '<script src="https://cdn.example/mathjax.js"></script><link rel="stylesheet" href="//fonts.example/f.css">'
        '<script src="_static/local.js"></script><a href="https://mybinder.org/v2/gh/o/r/main">Binder</a>'
    )
    (tmp_path / "s.css").write_text(
        "@font-face { src: url('https://fonts.example/x.woff2'); } a { background: url(i.png) }"
    )
    found = book.external_references(tmp_path)
    assert found == [
        "a.html: https://cdn.example/mathjax.js",
        "a.html: //fonts.example/f.css",
        "s.css: https://fonts.example/x.woff2",
    ]


def test_build_refuses_unexecuted_notebooks_and_unsafe_output_folders(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter 99"), nbformat.v4.new_code_cell("1 + 1")]
    (tmp_path / "ex").mkdir()
    nbformat.write(nb, tmp_path / "ex" / "99_test.ipynb")
    with pytest.raises(ValueError, match="has not been executed"):
        book.build(tmp_path / "ex", tmp_path / "site")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no chapter notebooks"):
        book.build(tmp_path / "empty", tmp_path / "site")
    (tmp_path / "file").write_text("x")
    nb.cells[1].execution_count = 1
    nbformat.write(nb, tmp_path / "ex" / "99_test.ipynb")
    with pytest.raises(ValueError, match="is a file"):
        book.build(tmp_path / "ex", tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "index.html").write_text("my own home page")
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a built site"):
        book.build(tmp_path / "ex", tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_book_command_reports_user_errors_in_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for argv, words in [
        (["book", "--out", str(tmp_path / "s"), "--chapters", str(tmp_path / "empty")], "no chapter notebooks"),
        (["book", "--out", str(tmp_path / "s"), "--chapters", str(tmp_path / "missing")], "does not exist"),
        (["book", "--out", str(tmp_path / "s"), "--timeout", "0"], "--timeout must be a positive"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["book"])  # --out is required
    assert "--out" in capsys.readouterr().err


# --------------------------------------------------------------------------- the site, built and browsed


@pytest.fixture(scope="module")
def site(executed_chapters, tmp_path_factory):
    """The site, built from the chapters that test_chapters.py executed (executing only those missing)."""
    pytest.importorskip("myst_nb", reason='the site needs the book tools: pip install -e ".[book]"')
    missing = [p for p in NOTEBOOKS if not (executed_chapters / p.name).exists()]
    if missing:
        print(f"\n[site] executing {len(missing)} chapters that test_chapters.py did not: {[p.stem for p in missing]}")
        book.execute(missing, executed_chapters, fast=True)
    out = tmp_path_factory.mktemp("site") / "html"
    start = time.perf_counter()
    book.build(executed_chapters, out)
    print(f"\n[site] built in {time.perf_counter() - start:.1f} s from {len(NOTEBOOKS)} executed chapters")
    if os.environ.get("ELS_SITE_DIR"):  # keep a copy to look at
        shutil.copytree(out, os.environ["ELS_SITE_DIR"], dirs_exist_ok=True)
    return out


def pages(site: Path) -> list[str]:
    return ["index.html", *[f"chapters/{p.stem}.html" for p in NOTEBOOKS], "chapters/README.html"]


@pytest.mark.after_chapters
def test_site_has_a_page_per_chapter_with_launch_links(site):
    repo = book.repository_url().removeprefix("https://github.com/")
    for page in pages(site):
        assert (site / page).is_file(), f"{page} was not built"
    for nb in NOTEBOOKS:
        text = (site / "chapters" / f"{nb.stem}.html").read_text()
        binder = f"https://mybinder.org/v2/gh/{repo}/{book.BRANCH}?urlpath=lab/tree/chapters/{nb.name}"
        colab = f"https://colab.research.google.com/github/{repo}/blob/{book.BRANCH}/chapters/{nb.name}"
        assert binder in text.replace("&amp;", "&"), f"{nb.stem}: no Binder link"
        assert colab in text, f"{nb.stem}: no Colab link"
        for raw in ("interactive(children", "HBox(children", "VBox(children", "widget-state+json", WIDGET_MODEL):
            assert raw not in text, f"{nb.stem}: a widget's raw repr {raw!r} is on the page"
        assert "google.colab" not in text, f"{nb.stem}: the Colab setup cell is shown on the site"
        folded = [
            c for c in nbformat.read(nb, as_version=4).cells if c.metadata.get("jupyter", {}).get("source_hidden")
        ]
        assert text.count("hide above-input") >= len(folded), f"{nb.stem}: a worked solution is not folded away"
    index = (site / "index.html").read_text()
    for nb in NOTEBOOKS:
        assert f'href="chapters/{nb.stem}.html"' in index, f"the landing page does not link to {nb.stem}"
    words = re.sub(r"<[^>]+>", "", index)  # the code blocks are highlighted: one span per word
    assert 'pip install -e ".[course]"' in words.replace("&quot;", '"'), "the landing page says how to install"
    assert 'href="chapters/README.html"' in index, "the landing page links to the instructor's guide"


@pytest.mark.after_chapters
def test_site_fetches_nothing_from_the_internet(site):
    assert book.external_references(site) == []
    for page in pages(site):
        html = (site / page).read_text()
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", html):
            assert "http" not in tag, f"{page}: {tag}"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000


@pytest.mark.after_chapters
def test_every_internal_link_resolves(site):
    ids: dict[Path, set[str]] = {}

    def anchors(path: Path) -> set[str]:
        if path not in ids:
            ids[path] = set(re.findall(r'\bid="([^"]+)"', path.read_text()))
        return ids[path]

    broken = []
    for page in site.rglob("*.html"):
        for href in re.findall(r'<a\b[^>]*\bhref="([^"]+)"', page.read_text()):
            url = urlsplit(href.replace("&amp;", "&"))
            if url.scheme or href.startswith(("//", "mailto:")):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {href}")
            elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in anchors(target):
                broken.append(f"{page.relative_to(site)} -> {href} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken[:20])


@pytest.mark.after_chapters
def test_previous_and_next_links_walk_the_course_in_order(site):
    order = pages(site)
    for k, name in enumerate(order):
        html = (site / name).read_text()
        for css, neighbour in (("left-prev", k - 1), ("right-next", k + 1)):
            link = re.search(rf'<a class="{css}"\s+href="([^"]+)"', html)
            if 0 <= neighbour < len(order):
                assert link, f"{name}: no {css} link"
                target = (site / name).parent.joinpath(link.group(1).split("#")[0]).resolve()
                assert target == (site / order[neighbour]).resolve(), f"{name}: {css} goes to {link.group(1)}"
            else:
                assert link is None, f"{name}: a {css} link past the end of the course"


@pytest.fixture(scope="module")
def served(site):
    """The site on a local http.server at 127.0.0.1 (a free port), shut down at the end."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a browser leaving a page hangs up: fine
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def offline_page(served):
    """A Chromium page that may only reach the local server: every other request is aborted and kept."""
    pytest.importorskip("playwright", reason="playwright is a dev dependency: pip install -e '.[dev]'")
    from test_browser import CHROMIUM, CHROMIUM_ARGS, ensure_chromium

    why = ensure_chromium()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    outside, problems = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def route(r):
            if r.request.url.startswith(served + "/"):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        yield page, served, outside, problems
        browser.close()


# Text of the page outside code, where an unrendered "$$" or "\(" would be left.
PROSE_TEXT = """() => {
    const body = document.querySelector('article') || document.body;
    const copy = body.cloneNode(true);
    copy.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
    return copy.innerText;
}"""
FIGURES = """() => Array.from(document.querySelectorAll('article img')).map(
    img => [img.getAttribute('src'), img.complete, img.naturalWidth, img.naturalHeight])"""


@pytest.mark.after_chapters
def test_every_page_loads_offline_with_figures_and_maths(offline_page):
    page, base, outside, problems = offline_page
    for name in pages(None):
        problems.clear()
        page.goto(f"{base}/{name}", wait_until="load")
        n_maths = page.locator("article .math").count()  # Sphinx's wrappers of $...$ and $$...$$
        if n_maths:
            page.wait_for_function(
                "n => document.querySelectorAll('article mjx-container').length >= n", arg=n_maths, timeout=30_000
            )
        figures = page.evaluate(FIGURES)
        bad = [src for src, done, w, h in figures if not (done and w > 0 and h > 0)]
        assert not bad, f"{name}: figures that did not load: {bad}"
        prose = page.evaluate(PROSE_TEXT)
        assert "$$" not in prose and "\\(" not in prose, f"{name}: unrendered maths left in the text"
        assert not re.search(r"\$[^$\s][^$]*\\[a-zA-Z]+[^$]*\$", prose), f"{name}: a $...$ formula was not rendered"
        page.wait_for_timeout(100)  # late console errors (fonts, lazy scripts) land before we look
        assert not problems, f"{name}: {problems}"
        if name.startswith("chapters/") and name != "chapters/README.html":
            assert n_maths > 0 or name.startswith("chapters/00"), f"{name}: no maths at all?"
            assert len(figures) > 0, f"{name}: no figure on the page"
            assert page.locator(".page-toc .toc-entry a").count() > 1, f"{name}: no table of contents on the page"
            assert page.locator("#search-input, .search-button-field").count() > 0, f"{name}: no search box"
    assert not outside, f"the pages tried to reach outside the site: {outside[:10]}"


@pytest.mark.after_chapters
def test_every_chapter_shows_each_figure_it_made(site, executed_chapters):
    """At least as many <img> in each chapter's page as figures in its executed notebook (widgets' too)."""
    for path in NOTEBOOKS:
        nb = book.static_widgets(json.loads((executed_chapters / path.name).read_text()))
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        made = sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outputs)
        html = (site / "chapters" / f"{path.stem}.html").read_text()
        article = html.split("<article", 1)[-1].split("</article>", 1)[0]
        shown = len(re.findall(r"<img\b", article))
        assert made > 0 and shown >= made, f"{path.stem}: {made} figures made, {shown} shown"


@pytest.mark.after_chapters
def test_search_finds_equivariant(offline_page):
    page, base, outside, problems = offline_page
    problems.clear()
    page.goto(f"{base}/search.html?q=equivariant", wait_until="load")
    page.wait_for_function("document.querySelectorAll('#search-results ul.search li').length > 0", timeout=30_000)
    hits = page.locator("#search-results ul.search li a").evaluate_all("links => links.map(a => a.href)")
    assert any("06_equivariance" in h for h in hits), hits
    assert not problems and not outside
