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
