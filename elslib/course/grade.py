"""Grading a class: run every submitted student notebook and say, per exercise, how it went.

    python -m elslib grade SUBMISSIONS/ --out grades.csv [--timeout 600] [--fast]

Each notebook (``*.ipynb`` anywhere under SUBMISSIONS; the student is the file's folder, or its
name when it sits at the top) runs top to bottom in a fresh kernel in its own process, with a time
limit, so that a notebook that hangs or crashes its kernel costs only its own rows. Every
exercise check the notebook runs appends its verdict to a log (``ELS_GRADE_LOG``), so the grade
is the check's own verdict, not a guess from printed text. Per student and exercise:

- ``passed``: the last run of its check passed;
- ``failed``: the check ran on the student's function and it did not pass (the message says why);
- ``not attempted``: the function still raises NotImplementedError;
- ``errored``: the check never gave a verdict, because a cell raised first, the kernel died or the
  time ran out (the message says which).

Which exercises a notebook holds is read from its "Exercise N.M" headings.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .exercises.framework import GRADE_LOG
from .student import EXERCISE_HEADING

STATUSES = ("passed", "failed", "not attempted", "errored")
FIELDS = ["student", "notebook", "exercise", "status", "message"]


@dataclass
class Grade:
    student: str
    notebook: str
    exercise: str
    status: str
    message: str = ""


def exercises_in(path: Path) -> list[str]:
    """The exercise numbers of a notebook, in order, from its "Exercise N.M" headings."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    found: list[str] = []
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for number in EXERCISE_HEADING.findall("".join(cell.get("source", []))):
                if number not in found:
                    found.append(number)
    return found


def _execute(path: str, log: str, fast: bool) -> int:
    """In the child process: run one notebook with the verdict log on; 0 if every cell ran, 1 if one raised."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    from .book import notebook_client  # waits in 1-second slices: see there why

    os.environ[GRADE_LOG] = log
    os.environ["ELS_FAST"] = "1" if fast else os.environ.get("ELS_FAST", "0")
    os.environ.setdefault("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    client = notebook_client(
        nb, timeout=None, allow_errors=True, resources={"metadata": {"path": str(Path(path).parent)}}
    )
    try:
        client.execute()
    except CellExecutionError:
        return 1
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        first = errors[0]
        Path(log + ".error").write_text(f"{first.get('ename')}: {first.get('evalue')}"[:500], encoding="utf-8")
        return 1
    return 0


def grade_notebook(path, student: str, timeout: float = 600, fast: bool = False) -> list[Grade]:
    """Run one submission in its own process (at most `timeout` seconds) and grade each of its exercises."""
    path = Path(path)
    expected = exercises_in(path)
    with tempfile.TemporaryDirectory() as tmp:
        log = str(Path(tmp) / "verdicts.jsonl")
        cmd = [sys.executable, "-m", "elslib.course.grade", "--one", str(path), log] + (["--fast"] if fast else [])
        why = ""
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if proc.returncode not in (0, 1):
                why = f"the notebook's kernel or process died (exit status {proc.returncode})"
        except subprocess.TimeoutExpired:
            why = f"the notebook did not finish within {timeout:g} s"
        error_file = Path(log + ".error")
        error = error_file.read_text(encoding="utf-8") if error_file.exists() else ""
        verdicts: dict[str, dict] = {}
        if Path(log).exists():
            for line in Path(log).read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                verdicts[entry["exercise"]] = entry  # the last check of an exercise is its grade
    grades = []
    for number in expected:
        v = verdicts.get(number)
        if v is None:
            reason = why or (f"a cell raised before its check gave a verdict ({error})" if error else "no check ran")
            grades.append(Grade(student, path.name, number, "errored", reason))
        elif v["passed"]:
            grades.append(Grade(student, path.name, number, "passed"))
        elif not v["implemented"]:
            grades.append(Grade(student, path.name, number, "not attempted"))
        else:
            grades.append(Grade(student, path.name, number, "failed", v["message"]))
    return grades


def grade(submissions, out, timeout: float = 600, fast: bool = False, progress: bool = True) -> list[Grade]:
    """Grade every notebook under `submissions` and write the CSV `out` (one row per student and exercise)."""
    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions folder {root} does not exist")
    paths = sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) under {root}")
    rows: list[Grade] = []
    for k, path in enumerate(paths):
        student = path.parent.name if path.parent != root else path.stem
        if progress:
            print(f"[{k + 1}/{len(paths)}] {student}: {path.name}", flush=True)
        rows += grade_notebook(path, student, timeout=timeout, fast=fast)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row.__dict__)
    return rows


if __name__ == "__main__":  # the child process of grade_notebook
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "--one":
        sys.exit(_execute(args[1], args[2], fast="--fast" in args[3:]))
    sys.exit("usage: python -m elslib.course.grade --one NOTEBOOK LOG [--fast] (internal; use python -m elslib grade)")
