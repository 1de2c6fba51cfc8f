"""``python -m elslib student --nbgrader``: nbgrader source versions of the chapters.

Always checked (no nbgrader needed): the cell metadata nbgrader reads, the solution markers, one
locked autograder test per exercise that fails unless the exercise passes, written answers as
manually graded cells. Where nbgrader is installed (it is optional, not a dev dependency:
``pip install nbgrader``), its own tools must accept every chapter and, on chapter 01, its
autograder must give a blank submission 0 points and the worked solutions every check's points.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from elslib.course import exercises, student

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
KEYS = {"grade", "grade_id", "locked", "schema_version", "solution", "task"}


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("ELS_STRICT_CHECKS", raising=False)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The nbgrader course folder the command writes (one assignment per chapter)."""
    out = tmp_path_factory.mktemp("nbgrader")
    proc = subprocess.run(
        [sys.executable, "-m", "elslib", "student", "--nbgrader", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nbgrader generate_assignment" in proc.stdout
    return out


def tagged(nb):
    return [(k, c, c.metadata["nbgrader"]) for k, c in enumerate(nb.cells) if "nbgrader" in c.metadata]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_carry_the_metadata_nbgrader_expects(course, path):
    original = nbformat.read(path, as_version=4)
    nb = nbformat.read(course / "source" / path.stem / path.name, as_version=4)
    numbers = [number for _, number in student.solution_cells(original)]
    cells = tagged(nb)
    solutions = [(k, c, m) for k, c, m in cells if m["solution"] and not m["grade"]]
    checks = [(k, c, m) for k, c, m in cells if m["grade"] and not m["solution"]]
    written = [(k, c, m) for k, c, m in cells if m["grade"] and m["solution"]]
    assert len(solutions) == len(checks) == len(numbers) and len(written) >= 1
    ids = [m["grade_id"] for _, _, m in cells]
    assert len(set(ids)) == len(ids), "grade ids are unique in a notebook"
    for (k, cell, meta), (j, check, check_meta), number in zip(solutions, checks, numbers, strict=True):
        assert cell.cell_type == "code" and j == k + 1, "each solution cell is followed by its test cell"
        assert set(meta) == KEYS and meta["schema_version"] == 3
        assert meta == {**meta, "grade": False, "locked": False, "solution": True, "task": False}
        assert meta["grade_id"] == f"ex{number.replace('.', '_')}-solution"
        lines = [line.strip() for line in cell.source.splitlines()]
        assert lines.count("### BEGIN SOLUTION") == lines.count("### END SOLUTION") == 1
        assert "# BEGIN SOLUTION" not in lines and "# END SOLUTION" not in lines
        assert not cell.metadata.get("jupyter", {}).get("source_hidden"), "the release must show the blank"
        assert set(check_meta) == KEYS | {"points"} and check_meta["points"] == 1
        assert check_meta == {**check_meta, "grade": True, "locked": True, "solution": False, "task": False}
        assert check_meta["grade_id"] == f"ex{number.replace('.', '_')}-check"
        assert "_verdict = exercises.check" in check.source
        assert check.source.rstrip().splitlines()[-1].startswith("assert _verdict")
    for _, cell, meta in written:
        assert cell.cell_type == "markdown" and meta["points"] == 1 and not meta["locked"]
        assert "SOLUTION" not in cell.source and "<details>" not in cell.source and cell.source.strip()
    # nothing but tagged cells may hold a solution marker (nbgrader refuses that)
    for cell in nb.cells:
        if "nbgrader" not in cell.metadata:
            assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert len({c["id"] for c in nb.cells}) == len(nb.cells), "cell ids stay unique"
    assert {c["id"] for c in original.cells} <= {c["id"] for c in nb.cells}, "the chapter's cell ids are kept"


def run_cells(*sources):
    namespace = {"torch": torch, "math": math, "exercises": exercises}
    for source in sources:
        exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


def release(source: str) -> str:
    """What nbgrader's release makes of a solution cell: the marked region replaced by its stub."""
    out, inside = [], False
    for line in source.split("\n"):
        if line.strip() == "### BEGIN SOLUTION":
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + "# YOUR CODE HERE", indent + "raise NotImplementedError()"]
        elif line.strip() == "### END SOLUTION":
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def test_a_test_cell_passes_only_when_the_exercise_passes(capsys):
    nb, _ = student.nbgrader_notebook(nbformat.read(CHAPTERS / "01_noise.ipynb", as_version=4), "01_noise.ipynb")
    k, solution, _ = next((k, c, m) for k, c, m in tagged(nb) if m["grade_id"] == "ex1_1-solution")
    check = nb.cells[k + 1].source
    run_cells(solution.source, check)  # the worked solution: the test cell runs through
    with pytest.raises(AssertionError, match="Exercise 1.1 does not pass its check yet:\n.*not implemented"):
        run_cells(release(solution.source), check)
    wrong = solution.source.replace("return a * x0 + s * noise", "return a**2 * x0 + s**2 * noise")
    assert wrong != solution.source
    with pytest.raises(AssertionError, match="square roots"):
        run_cells(wrong, check)
    assert "add_noise" in capsys.readouterr().out  # the check printed its verdict before the assert


def test_a_solution_without_its_check_cell_is_refused():
    nb = nbformat.read(CHAPTERS / "01_noise.ipynb", as_version=4)
    k = next(k for k, _ in student.solution_cells(nb))
    nb.cells[k + 1].source = "print('no check here')"
    with pytest.raises(student.MarkerError, match="must start with its check"):
        student.nbgrader_notebook(nb, "01_noise.ipynb")
    del nb.cells[k + 1 :]
    with pytest.raises(student.MarkerError, match="no check cell after it"):
        student.nbgrader_notebook(nb, "01_noise.ipynb")


# --------------------------------------------------------------------- with nbgrader itself


def nbgrader_env():
    """Environment for nbgrader's command line: it calls `alembic`, which lives beside nbgrader's scripts."""
    nbgrader = pytest.importorskip("nbgrader", reason="nbgrader is optional: pip install nbgrader")
    scripts = [Path(sys.executable).parent, Path(nbgrader.__file__).resolve().parents[1] / "bin"]
    path = os.pathsep.join([*(str(p) for p in scripts if p.is_dir()), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "ELS_FAST": "1", "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbgraders_own_checks_accept_every_chapter(course, path):
    pytest.importorskip("nbgrader", reason="nbgrader is optional: pip install nbgrader")
    from nbgrader.preprocessors import CheckCellMetadata, ClearSolutions

    nb = nbformat.read(course / "source" / path.stem / path.name, as_version=4)
    CheckCellMetadata().preprocess(nb, {})  # nbgrader's schema validation: raises on bad metadata
    released, _ = ClearSolutions().preprocess(nb, {})  # raises on a marker outside a solution cell
    CheckCellMetadata().preprocess(released, {})
    text = "\n".join(c.source for c in released.cells)
    assert "BEGIN SOLUTION" not in text and text.count("raise NotImplementedError()") >= 1


def test_nbgrader_autogrades_a_blank_and_a_solved_submission(course):
    env = nbgrader_env()

    def nbgrader(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-2500:]

    nbgrader("generate_assignment", "01_noise", "--force")
    released = course / "release" / "01_noise" / "01_noise.ipynb"
    for who, source in (("blank", released), ("solved", course / "source" / "01_noise" / "01_noise.ipynb")):
        target = course / "submitted" / who / "01_noise"
        target.mkdir(parents=True)
        target.joinpath("01_noise.ipynb").write_bytes(source.read_bytes())
    nbgrader("autograde", "01_noise", "--create", "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {}
        for who in ("blank", "solved"):
            sub = gb.find_submission("01_noise", who)
            scores[who] = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
    assert scores["blank"] == {"ex1_1-check": 0, "ex1_2-check": 0, "written1": 0}
    assert scores["solved"]["ex1_1-check"] == 1 and scores["solved"]["ex1_2-check"] == 1
