"""elslib.course.budget: the countable parts of a chapter's session budget, and every chapter within it."""

import json
from pathlib import Path

import pytest

from elslib.course import budget
from elslib.course.exercises import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def notebook(tmp_path, *markdown):
    """A notebook of Markdown cells (and one code cell), written to tmp_path."""
    cells = [{"cell_type": "markdown", "id": f"m{k}", "metadata": {}, "source": [m]} for k, m in enumerate(markdown)]
    cells.append(
        {"cell_type": "code", "id": "c", "metadata": {}, "source": ["x = 'many words in code'"], "outputs": []}
    )
    path = tmp_path / "99_test.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_prose_words_leave_out_maths_code_tags_and_answers():
    assert budget.prose_words("one two three") == 3
    assert budget.prose_words("one $a + b = c$ two $$\\int f\\,dx$$ three") == 3
    assert budget.prose_words("one `code span here` two\n```python\nlots of code words\n```\nthree") == 3
    assert budget.prose_words("<details><summary>Answer</summary> one</details>") == 2  # tags go, words stay
    hidden = "one <!-- BEGIN SOLUTION -->\nfour words of answer\n<!-- END SOLUTION --> two"
    assert budget.prose_words(hidden) == 2
    assert budget.prose_words("it's a well-known x-ray") == 4


def test_optional_sections_are_counted_apart(tmp_path):
    path = notebook(
        tmp_path,
        "# Chapter 99 · Test\n\n**Learning goals.** one two",
        "## 1. Main\n\nthree four five",
        "## 2. Extra (optional)\n\nsix seven\n\n### 2.1 Deeper\n\neight",
        "more optional nine ten",
        "## Recap\n\neleven",
    )
    b = budget.measure(path)
    assert b.optional_words == 2 + 2 + 1 + 1 + 4  # 'Extra optional', 'six seven', 'Deeper', 'eight', the cell
    assert b.words == 6 + 1 + 3 + 1 + 1  # title cell (Chapter, Test, Learning, goals, one, two), Main, ..., Recap
    assert b.goals and b.recap


def test_the_countable_parts_and_what_is_missing(tmp_path):
    path = notebook(
        tmp_path,
        "# Chapter 99 · Test\n\n**Learning goals.** goals",
        "### Exercise 99.1: a\n\ntext\n\n### Exercise 99.2: b",
        "**Predict first.** guess\n\n**Question.** why?\n\n<!-- BEGIN SOLUTION -->\n*Answer.* because\n"
        "<!-- END SOLUTION -->",
        "**Stretch.** more",
        "## Recap\n\ndone",
    )
    b = budget.measure(path)
    assert b.exercises == ["99.1", "99.2"] and (b.questions, b.stretch, b.predict_first) == (1, 1, 1)
    assert b.problems() == ["1 written answer(s) not folded in a <details> block"]
    bare = budget.measure(notebook(tmp_path, "# Chapter 99 · Test\n\nwords"))
    problems = " | ".join(bare.problems())
    for missing in ("0 checked exercises", "no **Question.**", "no **Stretch.**", "Predict first", "Learning goals"):
        assert missing in problems


def test_too_many_words_is_said_with_the_count(tmp_path):
    b = budget.measure(notebook(tmp_path, "word " * (budget.MAX_WORDS + 1)))
    assert f"{budget.MAX_WORDS + 1} words of prose" in b.problems()[0]


@pytest.mark.parametrize(
    "text,flagged",
    [
        ("the median r is 0.94 here", ["0.94"]),
        ("it reads 12% of the samples", ["12%"]),
        ("the cell takes about 3 minutes", ["3 minutes"]),
        ("the threshold $0.8$ and $95\\%$ are definitions", []),
        ("exercises 2.1 to 2.3, and exercise 7.1", []),
        ("see arXiv:2412.20292", []),
        ("### 1.2 Mosaics\n\nplain words", []),
        ("**Time.** One 90-minute session: 30 minutes of reading", []),
        ("a `print(0.5)` span and ```\nx = 0.25\n``` block", []),
        ("<!-- BEGIN SOLUTION -->\nr = 0.94 in an answer\n<!-- END SOLUTION -->", []),
    ],
)
def test_measured_looking_numbers_in_prose_are_flagged(text, flagged):
    found = budget.unbacked_numbers(text)
    assert [f.split("'")[1] for f in found] == flagged


def test_a_damaged_notebook_is_named(tmp_path):
    bad = tmp_path / "07_broken.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="07_broken.ipynb is not a readable notebook"):
        budget.measure(bad)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_fits_its_session(path):
    b = budget.measure(path)
    assert not b.problems(), f"{path.name}: " + "; ".join(b.problems())


def test_every_exercise_heading_is_a_checked_exercise():
    headings = [number for path in CHAPTERS for number in budget.measure(path).exercises]
    assert sorted(headings) == sorted(EXERCISES), "each '### Exercise N.M' has a check, and each check a heading"


def test_the_report_has_a_row_per_chapter():
    table = budget.report(ROOT / "chapters")
    assert table.count("\n| ") == len(CHAPTERS) + 0 and all(p.stem in table for p in CHAPTERS)
