r"""Automatic checks for the chapters' exercises.

Each exercise asks the learner to write one function. Its check calls that function on several
small cases, compares with the truth (the library's own implementation wherever there is one, so
that chapter and library cannot drift apart) and answers in words: which case, what was expected,
what came back, and a hint. A function that still raises ``NotImplementedError`` (as in the
student versions) gets a friendly "not implemented yet".

In a chapter::

    from elslib.course import exercises
    exercises.check_add_noise(add_noise)            # prints the verdict, returns a CheckResult
    noisy = exercises.use("1.1", add_noise)         # yours if it passes, else the reference

``use`` lets a student notebook run from top to bottom before every exercise is solved: the
reference stands in (a :class:`StandIn`, which a check recognises), and ``whose(fn)`` says whose
function a later cell is using.
Set ``ELS_STRICT_CHECKS=1`` to make a failing check raise (the tests do, on the solutions).
"""

from __future__ import annotations

from . import basics, ch00, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, ch12
from .basics import (
    check_add_noise,
    check_ddim_step,
    check_eps_and_score,
    check_gaussian_denoiser,
    check_ideal_denoiser,
    check_nearest_mean_accuracy,
    check_nearest_training_image,
)
from .framework import REGISTRY as EXERCISES
from .framework import CheckFailed, CheckResult, StandIn, check, reference, use, whose

for _module in (ch00, basics, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11, ch12):
    EXERCISES.update(_module.EXERCISES)

__all__ = [
    "EXERCISES",
    "CheckFailed",
    "CheckResult",
    "StandIn",
    "check",
    "check_add_noise",
    "check_ddim_step",
    "check_eps_and_score",
    "check_gaussian_denoiser",
    "check_ideal_denoiser",
    "check_nearest_mean_accuracy",
    "check_nearest_training_image",
    "reference",
    "use",
    "whose",
]
