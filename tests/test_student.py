"""Student versions: generated from the chapters, exercise cells blanked, checks fail on the blanks
(saying so clearly) and pass on the worked solutions."""

import math
import re
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


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("ELS_STRICT_CHECKS", raising=False)


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = student.make_student_versions(CHAPTERS, out)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    return out


def exercise_cells():
    """(chapter, cell index, exercise number) for every solution cell of every chapter."""
    found = []
    for path in NOTEBOOKS:
        for k, number in student.solution_cells(nbformat.read(path, as_version=4)):
            found.append((path, k, number))
    return found


CELLS = exercise_cells()


def defined_function(source: str):
    """Run a cell that defines one function; return that function."""
    namespace = {"torch": torch, "math": math, "re": re}
    exec(compile(source, "<exercise cell>", "exec"), namespace)
    functions = [v for k, v in namespace.items() if callable(v) and getattr(v, "__module__", None) is None]
    functions = [f for f in functions if f.__code__.co_filename == "<exercise cell>"]
    assert len(functions) == 1, "an exercise cell defines exactly one function"
    return functions[0]


def test_every_exercise_of_the_library_is_in_a_chapter():
    numbers = sorted(number for _, _, number in CELLS)
    assert numbers == sorted(exercises.EXERCISES), "each exercise appears once in the chapters, and has a check"


@pytest.mark.parametrize("path,k,number", CELLS, ids=lambda v: v.stem if isinstance(v, Path) else str(v))
def test_solution_passes_and_blank_fails_clearly(path, k, number, student_dir):
    original = nbformat.read(path, as_version=4)
    blanked = nbformat.read(student_dir / path.name, as_version=4)
    # The student notebook has one extra note cell at the top.
    assert blanked.cells[0].cell_type == "markdown" and "Student version" in blanked.cells[0].source
    student_cell = blanked.cells[k + 1]
    assert "BEGIN SOLUTION" not in student_cell.source
    assert f'raise NotImplementedError("Exercise {number}:' in student_cell.source
    # folded away in the public chapter, shown in the student's
    assert original.cells[k].metadata.get("jupyter", {}).get("source_hidden") is True
    assert not student_cell.metadata.get("jupyter", {}).get("source_hidden", False)

    solution = defined_function(original.cells[k].source)
    passed = exercises.check(number, solution, quiet=True)
    assert passed.passed, passed.message

    blank = defined_function(student_cell.source)
    failed = exercises.check(number, blank, quiet=True)
    assert not failed.passed and not failed.implemented
    assert f"Exercise {number}" in failed.message and "not implemented yet" in failed.message


def test_student_notebooks_are_clean_and_keep_everything_else(student_dir):
    for path in NOTEBOOKS:
        original = nbformat.read(path, as_version=4)
        blanked = nbformat.read(student_dir / path.name, as_version=4)
        assert len(blanked.cells) == len(original.cells) + 1
        for a, b in zip(original.cells, blanked.cells[1:], strict=True):
            assert a.cell_type == b.cell_type
            if "<!-- BEGIN SOLUTION" not in a.source and not (a.cell_type == "code" and "# BEGIN SOLUTION" in a.source):
                assert a.source == b.source
            if b.cell_type == "code":
                assert b.outputs == [] and b.execution_count is None
                assert "# BEGIN SOLUTION" not in b.source and "# END SOLUTION" not in b.source
            else:
                assert student.MD_BEGIN not in b.source and student.MD_END not in b.source


def test_command_line_writes_student_versions(tmp_path):
    out = tmp_path / "mine"
    proc = subprocess.run(
        [sys.executable, "-m", "elslib", "student", "--out", str(out), "--chapters", str(CHAPTERS)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    assert "wrote" in proc.stdout


def test_info_command_still_works():
    from elslib.__main__ import main

    assert callable(main)
    with pytest.raises(SystemExit):
        main(["--help"])


def test_markdown_answers_are_blanked():
    nb = nbformat.v4.new_notebook()
    text = "### Exercise 9.1: think\n<!-- BEGIN SOLUTION -->\nsecret\n<!-- END SOLUTION -->"
    nb.cells = [nbformat.v4.new_markdown_cell(text)]
    new, count = student.student_notebook(nb, "x.ipynb")
    assert count == 1 and "secret" not in new.cells[1].source and "Your answer here" in new.cells[1].source


@pytest.mark.parametrize(
    "source,problem",
    [
        ("def f():\n    # BEGIN SOLUTION\n    return 1\n", "no '# END SOLUTION'"),
        ("def f():\n    return 1\n    # END SOLUTION\n", "without a"),
        ("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "inside a function"),
    ],
)
def test_broken_markers_are_reported(source, problem):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("### Exercise 9.2: x"), nbformat.v4.new_code_cell(source)]
    with pytest.raises(student.MarkerError, match=problem):
        student.student_notebook(nb, "broken.ipynb")


def test_blanked_code_keeps_the_signature_and_docstring():
    source = 'def f(x):\n    """Doc."""\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n'
    new, count = student._blank_code(source, "4.2", "here")
    assert count == 1
    assert new.startswith('def f(x):\n    """Doc."""\n')
    assert 'raise NotImplementedError("Exercise 4.2: implement f' in new
    namespace = {}
    exec(new, namespace)
    with pytest.raises(NotImplementedError, match="Exercise 4.2"):
        namespace["f"](1)


def test_a_student_version_runs_top_to_bottom(student_dir, monkeypatch):
    """Blank exercises do not stop a student notebook: checks say so, later cells use the reference."""
    from nbclient import NotebookClient

    monkeypatch.setenv("ELS_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = student_dir / "01_noise.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(student_dir)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert text.count("not implemented yet") == 2 and "use the reference" in text
