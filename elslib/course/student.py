"""Student versions of the chapters: the same notebooks with the exercise solutions blanked.

Solutions are written once, in the chapters themselves, between markers::

    def add_noise(x0, t, noise, schedule):
        \"\"\"...\"\"\"
        # BEGIN SOLUTION
        a, s = schedule.alpha(t), schedule.sigma(t)
        return a * x0 + s * noise
        # END SOLUTION

and, for written answers in Markdown cells, between ``<!-- BEGIN SOLUTION -->`` and
``<!-- END SOLUTION -->``. In the public chapters both are folded away until asked for: a solution
cell is collapsed (``"jupyter": {"source_hidden": true}`` in its metadata, so JupyterLab and Jupyter
Book show a bar to click), and a written answer sits in a ``<details>`` block.
``python -m elslib student [--out DIR]`` writes a copy of every
chapter in which each marked block is replaced by ``raise NotImplementedError("Exercise 1.1: ...")``
(or, in Markdown, by a prompt for the learner's answer), with all outputs cleared. The exercise
number is taken from the nearest "Exercise N.M" heading above the cell.

``python -m elslib student --nbgrader [--out DIR]`` writes instead an nbgrader *source* version of
each chapter (DIR/source/NN_name/NN_name.ipynb, DIR being the nbgrader course folder), which
``nbgrader generate_assignment`` turns into the release; see :func:`nbgrader_notebook`.
"""

from __future__ import annotations

import re
from pathlib import Path

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
MD_BEGIN, MD_END = "<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"
EXERCISE_HEADING = re.compile(r"^#+\s*Exercise\s+(\d+\.\d+)", re.MULTILINE)
DEF_LINE = re.compile(r"^\s*def\s+(\w+)\s*\(")
MD_PROMPT = "*Your answer here.* (The worked answer is in the original chapter, for after you have tried.)"


class MarkerError(ValueError):
    """A BEGIN SOLUTION without its END (or the reverse), or a solution outside any function."""


def default_chapters_dir() -> Path:
    """``chapters/`` under the current directory if there is one, else the repository's."""
    here = Path.cwd() / "chapters"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "chapters"


def chapter_paths(chapters: str | Path | None = None) -> list[Path]:
    """The chapter notebooks, in order: ``NN_name.ipynb`` files."""
    folder = Path(chapters) if chapters is not None else default_chapters_dir()
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def _blank_code(source: str, exercise: str, where: str) -> tuple[str, int]:
    """Replace each BEGIN..END block in a code cell by a NotImplementedError at the same indent."""
    lines = source.split("\n")
    out, count, i = [], 0, 0
    current_def = None
    while i < len(lines):
        line = lines[i]
        match = DEF_LINE.match(line)
        if match:
            current_def = match.group(1)
        stripped = line.strip()
        if stripped.startswith(END):
            raise MarkerError(f"{where}: '{END}' without a '{BEGIN}' above it (line {i + 1})")
        if not stripped.startswith(BEGIN):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if not indent:
            raise MarkerError(
                f"{where}: a solution must sit inside a function (line {i + 1} is not indented), so that the "
                "student version still runs from top to bottom"
            )
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(END):
            if lines[j].strip().startswith(BEGIN):
                raise MarkerError(f"{where}: '{BEGIN}' inside another solution block (line {j + 1})")
            j += 1
        if j == len(lines):
            raise MarkerError(f"{where}: '{BEGIN}' on line {i + 1} has no '{END}' after it")
        what = f"implement {current_def}" if current_def else "write this part"
        out.append(f"{indent}# Your code here: {what} (Exercise {exercise}; the exercise text is above this cell).")
        out.append(f'{indent}raise NotImplementedError("Exercise {exercise}: {what} (see the exercise above)")')
        count += 1
        i = j + 1
    return "\n".join(out), count


def _blank_markdown(source: str, where: str) -> tuple[str, int]:
    count = 0
    while MD_BEGIN in source:
        start = source.index(MD_BEGIN)
        end = source.find(MD_END, start)
        if end < 0:
            raise MarkerError(f"{where}: '{MD_BEGIN}' has no '{MD_END}' after it")
        source = source[:start] + MD_PROMPT + source[end + len(MD_END) :]
        count += 1
    if MD_END in source:
        raise MarkerError(f"{where}: '{MD_END}' without a '{MD_BEGIN}' before it")
    return source, count


def solution_cells(nb) -> list[tuple[int, str]]:
    """(cell index, exercise number) of every code cell holding a solution block, in order."""
    found, exercise = [], None
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            headings = EXERCISE_HEADING.findall(cell.source)
            if headings:
                exercise = headings[-1]
        elif cell.cell_type == "code" and BEGIN in cell.source:
            found.append((k, exercise or "?"))
    return found


def student_notebook(nb, name: str = "notebook"):
    """A copy of notebook `nb` (nbformat) with solutions blanked and outputs cleared.

    Returns (new notebook, number of blanked blocks).
    """
    import copy

    import nbformat

    new = copy.deepcopy(nb)
    exercise, blanked = "?", 0
    for k, cell in enumerate(new.cells):
        where = f"{name}, cell {k}"
        if cell.cell_type == "markdown":
            headings = EXERCISE_HEADING.findall(cell.source)
            if headings:
                exercise = headings[-1]
            cell.source, n = _blank_markdown(cell.source, where)
            blanked += n
        elif cell.cell_type == "code":
            cell.source, n = _blank_code(cell.source, exercise, where)
            blanked += n
            cell.outputs = []
            cell.execution_count = None
            if n:  # the public chapter folds its worked solutions away; the learner's blank is shown
                cell.metadata.get("jupyter", {}).pop("source_hidden", None)
                if not cell.metadata.get("jupyter", True):
                    cell.metadata.pop("jupyter")
    note = nbformat.v4.new_markdown_cell(
        f"> **Student version** of `chapters/{name}`, made by `python -m elslib student`. The exercise cells "
        "raise `NotImplementedError` until you fill them in; each check below an exercise tells you how you are "
        "doing. Worked solutions are in the original chapter, for after you have tried."
    )
    new.cells.insert(0, note)
    return new, blanked


def make_student_versions(chapters: str | Path | None = None, out: str | Path | None = None) -> list[Path]:
    """Write the student version of every chapter notebook into `out` (default: ``student/``
    next to the chapters folder). Returns the paths written."""
    import nbformat

    paths = chapter_paths(chapters)
    if not paths:
        raise FileNotFoundError(f"no chapter notebooks (NN_name.ipynb) in {chapters or default_chapters_dir()}")
    out_dir = Path(out) if out is not None else paths[0].parent.parent / "student"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        new, _ = student_notebook(nb, path.name)
        target = out_dir / path.name
        nbformat.write(new, target)
        written.append(target)
    return written


# --------------------------------------------------------------------------- nbgrader

NB_BEGIN, NB_END = "### BEGIN SOLUTION", "### END SOLUTION"  # nbgrader's markers in code
SCHEMA_VERSION = 3  # nbgrader's cell metadata schema (nbgrader 0.6 and later)
CHECK_CALL = re.compile(r"^exercises\.check(_\w+)?\(")
ASSERT_NOTE = "# nbgrader: this cell earns its points when the check above passes; its message says why not."


def nbgrader_meta(grade_id: str, *, solution: bool, grade: bool, locked: bool, points: float | None = None) -> dict:
    """The ``nbgrader`` cell metadata of one cell, in nbgrader's schema version 3."""
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return meta


def _grade_id(exercise: str, what: str) -> str:
    # nbgrader allows letters, digits, "_" and "-" in a grade_id: "1.1" becomes "ex1_1"
    return f"ex{exercise.replace('.', '_')}-{what}"


def _nbgrader_code(source: str, exercise: str, where: str) -> str:
    """A solution cell with nbgrader's markers: each BEGIN/END line rewritten at its own indent."""
    _blank_code(source, exercise, where)  # the same marker checks as the student version (MarkerError)
    lines = []
    for line in source.split("\n"):
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip().startswith(BEGIN):
            line = indent + NB_BEGIN
        elif line.strip().startswith(END):
            line = indent + NB_END
        lines.append(line)
    return "\n".join(lines)


def _nbgrader_check(source: str, exercise: str, where: str) -> str:
    """A check cell as an nbgrader test: keep the verdict of its check call and assert it at the end.

    The check still prints its message and ``exercises.use`` still puts the reference in place,
    so the cells below run; the final ``assert`` makes the cell fail, as nbgrader's autograder
    needs, when the exercise does not pass (the assertion message is the check's own).
    """
    lines = source.split("\n")
    calls = [k for k, line in enumerate(lines) if CHECK_CALL.match(line)]
    if not calls:
        raise MarkerError(
            f"{where}: the cell after the solution of Exercise {exercise} must start with its check, "
            f"exercises.check(...) or exercises.check_NAME(...); it starts {lines[0][:60]!r}"
        )
    k = calls[0]
    lines[k] = f"_verdict = {lines[k]}"
    lines += [
        ASSERT_NOTE,
        f'assert _verdict, f"Exercise {exercise} does not pass its check yet:\\n{{_verdict.message}}"',
    ]
    return "\n".join(lines)


def _split_written_answer(source: str, where: str) -> tuple[str, str, str]:
    """(text before the answer, the answer, text after it) of a Markdown cell with one marked answer.

    The answer loses its ``<details>`` wrapper: in nbgrader it is its own cell, which the release
    replaces by "YOUR ANSWER HERE" and the grader reads in full.
    """
    _blank_markdown(source, where)  # marker checks
    if source.count(MD_BEGIN) != 1:
        raise MarkerError(f"{where}: an nbgrader version needs one written answer per Markdown cell")
    before, rest = source.split(MD_BEGIN, 1)
    answer, after = rest.split(MD_END, 1)
    answer = re.sub(r"^\s*<details>\s*(<summary>.*?</summary>)?", "", answer.strip(), flags=re.S)
    answer = re.sub(r"</details>\s*$", "", answer).strip()
    return before.rstrip(), answer, after.strip()


def nbgrader_notebook(nb, name: str = "notebook", points: float = 1):
    """An nbgrader source version of chapter `nb` (nbformat), outputs cleared.

    - each solution cell is an nbgrader "autograded answer" (``solution: true, grade: false``),
      its ``# BEGIN SOLUTION`` / ``# END SOLUTION`` lines turned into nbgrader's
      ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (the release replaces what lies between by
      ``raise NotImplementedError()``, which the course's checks report as "not implemented");
    - the check cell right after it is an "autograder tests" cell (``grade: true``,
      ``locked: true``, `points` points) that asserts the check's verdict;
    - each written answer becomes its own "manually graded answer" Markdown cell
      (``solution: true, grade: true``, `points` points), cut out of the cell that asks.

    Returns (new notebook, {"solutions": n, "checks": n, "written": n}).
    """
    import copy

    import nbformat

    old = copy.deepcopy(nb)
    cells, exercise, counts, used = [], "?", {"solutions": 0, "checks": 0, "written": 0}, set()
    pending = None  # the exercise whose check cell comes next

    def unique(grade_id: str) -> str:
        k, found = 1, grade_id
        while found in used:
            k += 1
            found = f"{grade_id}{k}"
        used.add(found)
        return found

    for k, cell in enumerate(old.cells):
        where = f"{name}, cell {k}"
        if cell.cell_type == "markdown":
            headings = EXERCISE_HEADING.findall(cell.source)
            if headings:
                exercise = headings[-1]
            if MD_BEGIN not in cell.source and MD_END not in cell.source:
                cells.append(cell)
                continue
            before, answer, after = _split_written_answer(cell.source, where)
            base_id = cell.get("id") or f"cell{k}"
            cell.source = before
            answer_cell = nbformat.v4.new_markdown_cell(answer)
            answer_cell["id"] = f"{base_id}-answer"[:64]
            counts["written"] += 1
            meta = nbgrader_meta(unique(f"written{counts['written']}"), solution=True, grade=True, locked=False)
            answer_cell.metadata["nbgrader"] = {**meta, "points": points}
            cells += [cell, answer_cell]
            if after:
                rest = nbformat.v4.new_markdown_cell(after)
                rest["id"] = f"{base_id}-after"[:64]
                cells.append(rest)
            continue
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        cell.outputs, cell.execution_count = [], None
        if BEGIN in cell.source or END in cell.source:
            if pending is not None:
                raise MarkerError(f"{where}: Exercise {pending} has a solution but no check cell after it")
            cell.source = _nbgrader_code(cell.source, exercise, where)
            cell.metadata["nbgrader"] = nbgrader_meta(
                unique(_grade_id(exercise, "solution")), solution=True, grade=False, locked=False
            )
            # the public chapter folds its worked solution away; the release shows the learner's blank
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
            if not cell.metadata.get("jupyter", True):
                cell.metadata.pop("jupyter")
            counts["solutions"] += 1
            pending = exercise
        elif pending is not None:
            cell.source = _nbgrader_check(cell.source, pending, where)
            cell.metadata["nbgrader"] = nbgrader_meta(
                unique(_grade_id(pending, "check")), solution=False, grade=True, locked=True, points=points
            )
            counts["checks"] += 1
            pending = None
        cells.append(cell)
    if pending is not None:
        raise MarkerError(f"{name}: Exercise {pending} has a solution but no check cell after it")
    note = nbformat.v4.new_markdown_cell(
        f"> **nbgrader version** of `chapters/{name}`, made by `python -m elslib student --nbgrader`. Worked "
        "solutions are in the code between nbgrader's solution markers; `nbgrader generate_assignment` blanks "
        "them. Each check cell is an autograded test; each written answer is graded by hand."
    )
    old.cells = [note, *cells]
    return old, counts


def make_nbgrader_versions(chapters: str | Path | None = None, out: str | Path | None = None) -> list[Path]:
    """Write the nbgrader source version of every chapter: ``out/source/NN_name/NN_name.ipynb``.

    `out` is the nbgrader course folder (default: ``student/nbgrader`` next to the chapters
    folder); each chapter is one assignment, named after its file. Returns the paths written.
    """
    import nbformat

    paths = chapter_paths(chapters)
    if not paths:
        raise FileNotFoundError(f"no chapter notebooks (NN_name.ipynb) in {chapters or default_chapters_dir()}")
    root = Path(out) if out is not None else paths[0].parent.parent / "student" / "nbgrader"
    written = []
    for path in paths:
        new, _ = nbgrader_notebook(nbformat.read(path, as_version=4), path.name)
        target = root / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(new, target)
        written.append(target)
    return written
