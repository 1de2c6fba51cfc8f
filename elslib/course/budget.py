r"""Does a chapter fit its 90-minute session? The countable parts of the course's chapter budget.

A session is about 60 minutes of reading and running and 30 of exercises. What can be counted:

- **prose**: words of the Markdown cells, without maths (``$...$``, ``$$...$$``), code (fenced
  blocks and ``code spans``), HTML tags and the written answers (between the solution markers);
  sections whose heading says "(optional)" are counted apart. At most ``MAX_WORDS``.
- **exercises**: checked exercises (a ``### Exercise N.M`` heading), between ``MIN_EXERCISES`` and
  ``MAX_EXERCISES``; at least one written **Question.** and one **Stretch.**;
- learning goals at the top, a ``## Recap``, and a **Predict first.** prompt before a main experiment;
- every written answer folded away in a ``<details>`` block, inside the solution markers, so that
  the public chapter does not give it away at a glance and the student version still blanks it;
- no **unbacked number**: a decimal, a percentage or a duration in plain prose looks measured, and
  a measured number must be printed by the notebook (or cited from ``elslib.papers``), not typed.
  Definitions, thresholds and formulas go in maths (``$0.8$``, ``$95\%$``), where they read as
  such; exercise and section numbers, arXiv identifiers and the durations of the **Time.** line
  are not measurements.

``python -m elslib budget`` prints the table; the tests hold every chapter to it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .student import MD_BEGIN, MD_END, chapter_paths

MAX_WORDS = 2300
MIN_EXERCISES, MAX_EXERCISES = 2, 4

_SOLUTION = re.compile(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END), re.S)
_STRIP = [
    re.compile(r"```.*?```", re.S),  # fenced code
    re.compile(r"\$\$.*?\$\$", re.S),  # display maths
    re.compile(r"\$[^$\n]*\$"),  # inline maths
    re.compile(r"`[^`\n]*`"),  # code spans
    re.compile(r"<[^>\n]+>"),  # HTML tags (the tags only)
]
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_NOT_MEASURED = [
    re.compile(r"[Ee]xercises?\s+\d+\.\d+(?:\s*(?:,|and|to|-)\s*\d+\.\d+)*"),  # exercise numbers
    re.compile(r"^#+\s+\d+(?:\.\d+)*", re.M),  # numbered headings
    re.compile(r"arXiv:\d+\.\d+"),
]
_MEASURED_LOOKING = re.compile(
    r"(?<![\w.])(?:\d+\.\d+|\d+(?:[.,]\d+)?\s?%|\d+(?:[.,]\d+)?\s*(?:seconds?|minutes?|hours?|ms)\b)"
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.M)
_EXERCISE = re.compile(r"^#+\s*Exercise\s+(\d+\.\d+)", re.M)


def prose_words(markdown: str) -> int:
    """Words of prose in a Markdown text: no maths, code, tags or written answers."""
    text = _SOLUTION.sub(" ", markdown)
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    return len(_WORD.findall(text))


def unbacked_numbers(markdown: str) -> list[str]:
    """Measured-looking numbers typed in plain prose (see the module's docstring): each with its context."""
    text = _SOLUTION.sub(" ", markdown)
    for pattern in _STRIP + _NOT_MEASURED:
        text = pattern.sub(" ", text)
    found = []
    for paragraph in text.split("\n\n"):
        if paragraph.lstrip().startswith("**Time.**"):
            continue
        for match in _MEASURED_LOOKING.finditer(paragraph):
            context = paragraph[max(0, match.start() - 40) : match.end() + 20].replace("\n", " ").strip()
            found.append(f"{match.group(0)!r} in '...{context}...'")
    return found


@dataclass
class Budget:
    """The countable parts of one chapter (see the module's docstring for the rules)."""

    chapter: str
    words: int = 0  # prose outside optional sections
    optional_words: int = 0  # prose of sections marked "(optional)"
    exercises: list = field(default_factory=list)  # the exercise numbers, in order
    questions: int = 0
    stretch: int = 0
    predict_first: int = 0
    goals: bool = False
    recap: bool = False
    unfolded_answers: int = 0  # written answers not inside a <details> block
    numbers: list = field(default_factory=list)  # measured-looking numbers typed in prose

    def problems(self) -> list[str]:
        """What is outside the budget, one sentence each (empty when the chapter fits)."""
        out = []
        if self.words > MAX_WORDS:
            out.append(f"{self.words} words of prose, more than {MAX_WORDS} (trim, or mark a section optional)")
        if not MIN_EXERCISES <= len(self.exercises) <= MAX_EXERCISES:
            out.append(f"{len(self.exercises)} checked exercises, not {MIN_EXERCISES}-{MAX_EXERCISES}")
        for what, n in (("**Question.**", self.questions), ("**Stretch.**", self.stretch)):
            if n < 1:
                out.append(f"no {what}")
        if self.predict_first < 1:
            out.append("no **Predict first.** prompt")
        if not self.goals:
            out.append("no **Learning goals.**")
        if not self.recap:
            out.append("no ## Recap")
        if self.unfolded_answers:
            out.append(f"{self.unfolded_answers} written answer(s) not folded in a <details> block")
        for number in self.numbers:
            out.append(f"unbacked number {number}: print it from the notebook, or write a definition in maths")
        return out


def measure(path: str | Path) -> Budget:
    """Count the budget's parts in one chapter notebook."""
    path = Path(path)
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path} is not a readable notebook ({type(err).__name__}: {err})") from err
    budget = Budget(path.stem)
    optional_level = None  # the heading level of the optional section we are in, if any
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell.get("source", []))
        budget.exercises += _EXERCISE.findall(text)
        budget.questions += text.count("**Question.**")
        budget.stretch += text.count("**Stretch.**")
        budget.predict_first += text.count("**Predict first.**")
        budget.goals |= "**Learning goals.**" in text
        budget.recap |= bool(re.search(r"^## Recap", text, re.M))
        budget.unfolded_answers += sum("<details>" not in block for block in _SOLUTION.findall(text))
        budget.numbers += unbacked_numbers(text)
        # split the cell at its headings, so that an optional section is counted apart
        pieces, start, level = [], 0, None
        for match in _HEADING.finditer(text):
            pieces.append((level, text[start : match.start()]))
            start, level = match.start(), (len(match.group(1)), "(optional)" in match.group(2).lower())
        pieces.append((level, text[start:]))
        for heading, piece in pieces:
            if heading is not None:
                depth, optional = heading
                if optional:
                    optional_level = depth
                elif optional_level is not None and depth <= optional_level:
                    optional_level = None
            n = prose_words(piece)
            if optional_level is None:
                budget.words += n
            else:
                budget.optional_words += n
    return budget


def report(chapters=None) -> str:
    """A Markdown table of every chapter's budget, with what is outside it."""
    rows = ["| chapter | words | optional | exercises | question | stretch | predict first | outside the budget |"]
    rows.append("|---|---|---|---|---|---|---|---|")
    for path in chapter_paths(chapters):
        b = measure(path)
        problems = "; ".join(b.problems()) or "fits"
        rows.append(
            f"| {b.chapter} | {b.words} | {b.optional_words} | {len(b.exercises)} | {b.questions} | {b.stretch} "
            f"| {b.predict_first} | {problems} |"
        )
    return "\n".join(rows)
