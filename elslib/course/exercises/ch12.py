"""Exercises of chapter 12: from digits to text-to-image (a prompt read as a label, classifier-free guidance)."""

from __future__ import annotations

import re
from collections.abc import Callable

from ...denoisers import Guided
from .ch07 import _case
from .framework import Case, CheckResult, Exercise
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 12.1 a prompt read as a label

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _ref_prompt_to_label(prompt):
    """The digit a prompt names, by whole words ('seven' or '7'); -1 when it names none."""
    for token in re.findall(r"[a-z0-9]+", str(prompt).lower()):
        if token in DIGIT_WORDS:
            return DIGIT_WORDS.index(token)
        if len(token) == 1 and token.isdigit():
            return int(token)
    return -1


def _substring_label(prompt):
    low = str(prompt).lower()
    found = [(low.find(w), k) for k, w in enumerate(DIGIT_WORDS) if w in low]
    return min(found)[1] if found else -1


def check_prompt_to_label(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 12.1: ``prompt_to_label(prompt) -> int``: the digit a prompt names, as a word ('seven') or a
    numeral ('7'), in any case and with any punctuation; the first one if it names several; -1 if none."""
    hint = (
        "Lower-case the prompt and split it into words first (re.findall(r'[a-z0-9]+', prompt.lower())): a text "
        "encoder works on tokens, not on letters. Then the first token that is a digit word (DIGIT_WORDS.index) "
        "or a single numeral (int(token)) gives the label; return -1 when no token does."
    )
    cases = []
    for prompt in [
        "a handwritten seven",
        "Draw a 4, please!",
        "NINE.",
        "someone drew a three",
        "a photo of a phone",
        "two or three, whichever",
    ]:
        expected = float(_ref_prompt_to_label(prompt))
        mistakes = []
        if _substring_label(prompt) != expected:
            mistakes.append(
                (
                    float(_substring_label(prompt)),
                    "You matched letters, not words: 'someone' and 'phone' contain 'one'. Split the prompt into "
                    "words (tokens) first and compare whole words.",
                )
            )
        cases.append(Case(f"the prompt {prompt!r}", (prompt,), expected, hint, atol=0.0, rtol=0.0, mistakes=mistakes))
    return _run("12.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 12.2 classifier-free guidance


def _ref_guided(x0_uncond, x0_cond, weight):
    """The library's Guided, wrapped around a denoiser that returns the two given predictions."""

    def fixed(x_t, t, label=None):
        return x0_uncond if label is None else x0_cond

    return Guided(fixed, weight)(x0_uncond, 0.5, label=0)


def check_guided(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 12.2: ``guided(x0_uncond, x0_cond, weight) -> like x0_cond``: the classifier-free guided
    prediction, x0_uncond + weight (x0_cond - x0_uncond). Compared with ``elslib.denoisers.Guided``."""
    hint = (
        "Start from the unconditional prediction and move along the difference the condition makes: "
        "x0_uncond + weight * (x0_cond - x0_uncond). Weight 0 gives x0_uncond, weight 1 gives x0_cond."
    )
    uncond, cond = _images((2, 1, 4, 4), 110), _images((2, 1, 4, 4), 111)
    cases = []
    for weight in (0.0, 1.0, 3.0, 0.5, 7.5):
        mistakes = [
            (
                cond + weight * (cond - uncond),
                "That is the other convention (Ho and Salimans write (1 + w) cond - w uncond). Here the weight is "
                "measured from the UNconditional prediction: weight 1 must give x0_cond itself.",
            ),
            (uncond - weight * (cond - uncond), "Mind the sign: guidance moves TOWARDS the conditional prediction."),
            (uncond + weight * cond, "Guidance scales the DIFFERENCE x0_cond - x0_uncond, not x0_cond."),
        ]
        args = (uncond, cond, weight)
        cases.append(_case(f"weight {weight:g}", args, _ref_guided(*args), hint, mistakes, atol=1e-6, rtol=1e-5))
    return _run("12.2", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "12.1": Exercise("the digit a prompt names (a toy text encoder)", check_prompt_to_label, _ref_prompt_to_label),
    "12.2": Exercise("classifier-free guidance of two predictions", check_guided, _ref_guided),
}
