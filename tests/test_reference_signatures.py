"""A reference solution stands in for a learner's unsolved exercise (``exercises.use``), and the cells
below call it as they would call the learner's function. So each reference must accept every call the
chapter's own function accepts: the same parameters, in the same order, with the same defaults. Read
statically from the chapters' solution cells, so that a student version that would crash is caught
without running it."""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

from elslib.course import exercises

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
USE = re.compile(r"""exercises\.use\(\s*["']([\d.]+)["']\s*,\s*(\w+)\s*\)""")


def _solutions():
    """(chapter, exercise, the def node of the chapter's function) for every exercises.use in the chapters."""
    found = []
    for path in sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb")):
        code = "\n".join(
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"
        )
        defs = {}
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            try:
                tree = ast.parse(
                    "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
                )
            except SyntaxError:
                continue
            defs.update({node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)})
        for exercise, name in USE.findall(code):
            found.append(pytest.param(path.stem, exercise, defs.get(name), name, id=f"{path.stem}-{exercise}"))
    return found


def _signature_of(node: ast.FunctionDef) -> list[tuple[str, str | None]]:
    args = node.args.posonlyargs + node.args.args
    defaults = [None] * (len(args) - len(node.args.defaults)) + [ast.unparse(d) for d in node.args.defaults]
    return [(a.arg, d) for a, d in zip(args, defaults, strict=True)]


SOLUTIONS = _solutions()


def test_the_chapters_use_exercises():
    assert len(SOLUTIONS) >= 20  # the scan finds them (a broken pattern would make every check below vacuous)


@pytest.mark.parametrize("chapter, exercise, node, name", SOLUTIONS)
def test_a_reference_accepts_the_calls_its_chapter_makes(chapter, exercise, node, name):
    assert node is not None, f"{chapter}: exercises.use({exercise!r}, {name}) but no def {name} in the chapter"
    theirs = _signature_of(node)
    ref = inspect.signature(exercises.reference(exercise))
    ours = [
        (p.name, None if p.default is inspect.Parameter.empty else repr(p.default))
        for p in ref.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert [n for n, _ in ours] == [n for n, _ in theirs], f"{chapter} {name}: parameters {theirs} vs reference {ours}"
    for (n, mine), (_, ref_default) in zip(theirs, ours, strict=True):
        if mine is None:
            continue
        assert ref_default is not None, (
            f"{chapter} {name}: {n} has a default ({mine}) in the chapter, not the reference"
        )
        if _literal(mine) and _literal(ref_default):  # a default like `cos` names an object: its name is enough
            assert ast.literal_eval(ref_default) == ast.literal_eval(mine), (
                f"{chapter} {name}: default of {n} is {mine} in the chapter, {ref_default} in the reference"
            )


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return False
    return True
