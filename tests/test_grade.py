"""python -m elslib grade: each submission runs in its own process, each exercise gets its check's verdict.

One class of six, on chapter 01: alice solved everything, bob's add_noise is wrong, carol left it blank,
dave's notebook raises in a cell (he deleted the function), erin's function never returns, and frank's
raises an error; the CSV must tell each of them apart.
"""

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from elslib.course import student

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "chapters" / "01_noise.ipynb"
TIMEOUT = 45  # seconds per notebook: ample for chapter 01 in fast mode (about 10 s), short for the endless one


def _exercise_cell(nb, number):
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and f"Exercise {number}:" in cell.source:
            return k
    raise AssertionError(f"no cell for exercise {number}")


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    original = nbformat.read(CHAPTER, as_version=4)
    blank, _ = student.student_notebook(original, CHAPTER.name)
    people = {"alice": original}  # the worked solutions: everything passes
    bob = nbformat.from_dict(blank)  # a wrong add_noise: no square roots
    k = _exercise_cell(bob, "1.1")
    bob.cells[k].source = bob.cells[k].source.replace(
        'raise NotImplementedError("Exercise 1.1:',
        "ab = schedule.alpha_bar(t)\n    return ab * x0 + (1 - ab) * noise\n    "
        'raise NotImplementedError("Exercise 1.1:',
    )
    people["bob"] = bob
    people["carol"] = blank  # nothing attempted
    dave = nbformat.from_dict(blank)  # deleted the function: its check cell raises NameError
    dave.cells[_exercise_cell(dave, "1.1")].source = "# I removed this"
    people["dave"] = dave
    erin = nbformat.from_dict(blank)  # a function that never returns
    k = _exercise_cell(erin, "1.1")
    erin.cells[k].source = erin.cells[k].source.replace(
        'raise NotImplementedError("Exercise 1.1:',
        'while True:\n        pass\n    raise NotImplementedError("Exercise 1.1:',
    )
    people["erin"] = erin
    frank = nbformat.from_dict(blank)  # a function that raises (not NotImplementedError): the check reports it
    k = _exercise_cell(frank, "1.1")
    frank.cells[k].source = frank.cells[k].source.replace(
        'raise NotImplementedError("Exercise 1.1:',
        'return x0 * undefined_scale\n    raise NotImplementedError("Exercise 1.1:',
    )
    people["frank"] = frank
    for name, nb in people.items():
        (root / name).mkdir()
        nbformat.write(nb, root / name / CHAPTER.name)
    out = root / "grades.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "elslib", "grade", str(root), "--out", str(out), "--timeout", str(TIMEOUT), "--fast"],
        capture_output=True,
        text=True,
        timeout=10 * TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with out.open() as f:
        rows = list(csv.DictReader(f))
    return {(r["student"], r["exercise"]): r for r in rows}, proc.stdout


def test_each_student_and_exercise_gets_the_right_grade(submissions):
    rows, stdout = submissions
    status = {key: row["status"] for key, row in rows.items()}
    assert status == {
        ("alice", "1.1"): "passed",
        ("alice", "1.2"): "passed",
        ("bob", "1.1"): "failed",
        ("bob", "1.2"): "not attempted",
        ("carol", "1.1"): "not attempted",
        ("carol", "1.2"): "not attempted",
        ("dave", "1.1"): "errored",
        ("dave", "1.2"): "not attempted",
        ("erin", "1.1"): "errored",
        ("erin", "1.2"): "errored",
        ("frank", "1.1"): "failed",
        ("frank", "1.2"): "not attempted",
    }
    assert "square roots" in rows[("bob", "1.1")]["message"]  # the check's own words
    assert "NameError" in rows[("dave", "1.1")]["message"]
    assert f"did not finish within {TIMEOUT}" in rows[("erin", "1.1")]["message"]
    frank_says = rows[("frank", "1.1")]["message"]  # the error the function raised, named by the check
    assert "raised NameError" in frank_says and "undefined_scale" in frank_says
    assert "2 passed" in stdout and "3 errored" in stdout


def test_bad_arguments_are_one_line_errors(tmp_path):
    grade = [sys.executable, "-m", "elslib", "grade"]
    proc = subprocess.run([*grade, str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([*grade, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "no notebooks" in proc.stderr
