"""The chapters: clean notebooks, one template, and every chapter runs in fast mode.

Each chapter is executed top to bottom in a fresh kernel with ELS_FAST=1 (and
ELS_STRICT_CHECKS=1, so a worked solution that fails its own check fails here). Its wall time
is printed; `--durations` lists the chapters among the slowest tests as well. Each executed
notebook is kept in the session's `executed_chapters` folder (tests/conftest.py), from which
tests/test_book.py builds the course's website without running the chapters again.
"""

import os
import time
from pathlib import Path

import nbformat
import pytest
import torch

from elslib import course, metrics, plots
from elslib.course import book

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
TIMES: dict[str, float] = {}


def read(path):
    return nbformat.read(path, as_version=4)


def test_the_first_chapters_exist():
    prefixes = {p.name[:2] for p in NOTEBOOKS}
    assert {"00", "01", "02", "03"} <= prefixes, f"chapters found: {[p.name for p in NOTEBOOKS]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = read(path)
    nbformat.validate(nb)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {k} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {k} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_follows_the_template(path):
    nb = read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# Chapter"), "first cell: the title"
    for part in ("Learning goals", "Time.", "Prerequisites."):
        assert part in first.source, f"{path.name}: the title cell must state {part!r}"
    setup = next(c for c in nb.cells if c.cell_type == "code" and book.COLAB_TAG not in c.metadata.get("tags", []))
    assert "%matplotlib inline" in setup.source and "course.setup()" in setup.source, (
        f"{path.name}: the first code cell after the Colab one must select the inline backend and call course.setup()"
    )
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Recap" in text and "## Further reading" in text, f"{path.name}: recap and further reading"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_worked_solutions_are_folded_away(path):
    nb = read(path)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "# BEGIN SOLUTION" in cell.source:
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
                f"{path.name} cell {k}: a solution cell is collapsed in the public chapter "
                '(metadata "jupyter": {"source_hidden": true})'
            )
        if cell.cell_type == "markdown" and "<!-- BEGIN SOLUTION -->" in cell.source:
            for block in cell.source.split("<!-- BEGIN SOLUTION -->")[1:]:
                assert "<details>" in block.split("<!-- END SOLUTION -->")[0], f"{path.name} cell {k}: fold the answer"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_is_checked_right_after_it(path):
    nb = read(path)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "# BEGIN SOLUTION" in cell.source:
            following = nb.cells[k + 1]
            assert following.cell_type == "code" and "exercises.check" in following.source, (
                f"{path.name} cell {k}: the cell after an exercise must run its check"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_runs_in_fast_mode(path, monkeypatch, capsys, executed_chapters):
    monkeypatch.setenv("ELS_FAST", "1")
    monkeypatch.setenv("ELS_STRICT_CHECKS", "1")
    monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "Agg"))
    nb = read(path)
    # nbclient with the wait for a widget cell's reply made robust (see book.notebook_client)
    client = book.notebook_client(nb, timeout=600, resources={"metadata": {"path": str(CHAPTERS)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    TIMES[path.stem] = elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    nbformat.write(nb, executed_chapters / path.name)  # the site test (tests/test_book.py) builds from these
    with capsys.disabled():
        print(f"\n[chapter timing] {path.stem}: {elapsed:.1f} s in fast mode", end="")


# --------------------------------------------------------------------------- elslib.course


def test_pick_follows_fast_mode(monkeypatch):
    monkeypatch.setattr(course, "FAST", True)
    assert course.pick(fast=1, full=2) == 1
    monkeypatch.setattr(course, "FAST", False)
    assert course.pick(fast=1, full=2) == 2


def test_fast_flag_reads_the_environment(monkeypatch):
    for value, expected in [("1", True), ("true", True), ("0", False), ("", False)]:
        monkeypatch.setenv("ELS_FAST", value)
        assert course.env_flag("ELS_FAST") is expected


def test_effective_number_counts_candidates():
    assert float(metrics.effective_number(torch.full((8,), 1 / 8))) == pytest.approx(8)
    assert float(metrics.effective_number(torch.tensor([1.0, 0.0, 0.0]))) == pytest.approx(1)


def test_mosaic_colours_each_source_alike():
    index = torch.tensor([[0, 0, 5], [5, 9, 9]])
    rgb = plots.mosaic_image(index)
    assert rgb.shape == (2, 3, 3)
    assert (rgb[0, 0] == rgb[0, 1]).all() and (rgb[0, 2] == rgb[1, 0]).all() and not (rgb[0, 0] == rgb[1, 1]).all()
