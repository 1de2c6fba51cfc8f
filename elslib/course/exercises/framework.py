"""The machinery every exercise check shares: cases, comparisons, verdicts in words, the registry.

A chapter's module (``basics``, ``ch04`` ...) writes one ``check_NAME(fn, quiet=False)`` per
exercise out of :class:`Case` objects run by :func:`run_cases`, and lists its exercises in a
dict ``EXERCISES = {"4.1": Exercise(title, check, reference), ...}``; the package merges them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ... import sampling
from .. import env_flag


class CheckFailed(AssertionError):
    """Raised by a failing check when ELS_STRICT_CHECKS=1 (in the tests), with the full message."""


@dataclass
class CheckResult:
    """The verdict of one check. ``bool(result)`` is whether it passed; ``message`` says why."""

    exercise: str
    passed: bool
    message: str
    implemented: bool = True
    cases_passed: int = 0
    cases_total: int = 0

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        # The check printed its message already; do not show it a second time as the cell's value.
        pass


@dataclass
class Case:
    """One input to try: positional `args`, what the function should return, and a hint."""

    description: str
    args: tuple
    expected: object
    hint: str
    atol: float = 1e-5
    rtol: float = 1e-4
    # (wrong answer, targeted hint): if the learner's result matches a known mistake, say so.
    mistakes: list = field(default_factory=list)


# --------------------------------------------------------------------------- describing values


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().reshape(-1)
        head = ", ".join(f"{float(v):.4g}" for v in flat[:4])
        more = ", ..." if flat.numel() > 4 else ""
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}, values [{head}{more}]"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return "(" + "; ".join(_describe(v) for v in value) + ")"
    return f"{type(value).__name__}: {value!r}"[:200]


def _as_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except Exception:  # not convertible: the comparison below reports the type
        return None


def _difference(expected, got, atol: float, rtol: float) -> str | None:
    """None when `got` matches `expected`; otherwise one sentence saying how they differ."""
    if isinstance(expected, tuple):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} values, got {_describe(got)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            problem = _difference(e, g, atol, rtol)
            if problem:
                return f"in returned value #{i + 1}: {problem}"
        return None
    if isinstance(expected, float):
        try:
            g = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {_describe(got)}"
        if math.isnan(g) or abs(g - expected) > atol + rtol * abs(expected):
            return f"expected {expected:.6g}, got {g:.6g}"
        return None
    g = _as_tensor(got)
    if g is None:
        return f"expected a tensor of shape {tuple(expected.shape)}, got {_describe(got)}"
    if tuple(g.shape) != tuple(expected.shape):
        return f"expected shape {tuple(expected.shape)}, got shape {tuple(g.shape)}"
    if not expected.is_floating_point():
        if g.is_floating_point():
            fractional = g[g != g.round()]
            if len(fractional):
                return (
                    f"expected whole numbers (dtype {expected.dtype}), got fractional values such as "
                    f"{float(fractional[0]):.4g}"
                )
        g = g.long()
        wrong = (g.cpu() != expected.cpu()).nonzero()
        if len(wrong):
            where = tuple(int(i) for i in wrong[0])
            return (
                f"{len(wrong)} of {expected.numel()} entries differ; first at index {where}: "
                f"expected {int(expected[where])}, got {int(g[where])}"
            )
        return None
    g = g.detach().to(torch.float64).cpu()
    e = expected.to(torch.float64).cpu()
    if not torch.isfinite(g).all():
        return "your result contains NaN or infinite values (an overflow? see the hint)"
    err = (g - e).abs()
    bad = err > atol + rtol * e.abs()
    if bad.any():
        where = tuple(int(i) for i in bad.nonzero()[0])
        return (
            f"max difference {float(err.max()):.3g}; first wrong entry at index {where}: "
            f"expected {float(e[where]):.5g}, got {float(g[where]):.5g}"
        )
    return None


def _matches(wrong, got, atol=1e-5, rtol=1e-4) -> bool:
    try:
        return _difference(wrong, got, atol, rtol) is None
    except Exception:
        return False


def _strict() -> bool:
    return env_flag("ELS_STRICT_CHECKS")


GRADE_LOG = "ELS_GRADE_LOG"  # when set, every check also appends its verdict to this file (elslib.course.grade)


def _finish(result: CheckResult, quiet: bool) -> CheckResult:
    if not quiet:
        print(result.message)
    log = os.environ.get(GRADE_LOG)
    if log:
        verdict = {"exercise": result.exercise, "passed": result.passed, "implemented": result.implemented}
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({**verdict, "message": result.message}) + "\n")
    if _strict() and not result.passed:
        raise CheckFailed(result.message)
    return result


class StandIn:
    """The course's reference solution, standing in for a learner's function that does not pass yet.

    ``use`` returns one, so that the cells below run; a check that is handed one says so instead of
    passing it, and ``whose`` lets a chapter say "the reference's" instead of "your".
    """

    def __init__(self, exercise: str, reference: Callable, name: str):
        self.exercise, self.reference, self.__name__ = exercise, reference, name

    def __call__(self, *args, **kwargs):
        return self.reference(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<the course's reference {self.__name__}, standing in for yours (exercise {self.exercise})>"


def whose(fn) -> str:
    """ "your" for the learner's own function, "the reference" while the reference stands in for it."""
    return "the reference" if isinstance(fn, StandIn) else "your"


# failed checks per exercise in this session: the first failure says what is wrong, a repeated one the method
_FAILURES: dict[str, int] = {}


def _diagnose(expected, got) -> str | None:
    """What is wrong, in words, when a wrong answer has a simple relation to the right one."""
    if isinstance(expected, tuple):  # the first returned value that is wrong
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return None
        for k, (e, g) in enumerate(zip(expected, got, strict=True)):
            if _difference(e, g, 1e-5, 1e-4) is not None:
                found = _diagnose(e, g)
                return None if found is None else f"in returned value #{k + 1}, {found}"
        return None
    if not isinstance(expected, torch.Tensor):
        return None
    g = _as_tensor(got)
    if g is None or tuple(g.shape) != tuple(expected.shape) or not expected.is_floating_point():
        return None
    e, g = expected.detach().double().cpu().flatten(), g.detach().double().cpu().flatten()
    if not torch.isfinite(g).all() or e.numel() < 2:
        return None
    if torch.allclose(g, -e, atol=1e-5, rtol=1e-4):
        return "your answer is the expected one with the sign flipped."
    scale = float((g @ e) / (e @ e)) if float(e @ e) > 0 else float("nan")
    if math.isfinite(scale) and abs(scale - 1) > 1e-3 and torch.allclose(g, scale * e, atol=1e-5, rtol=1e-4):
        return (
            f"every entry is {scale:.4g} times the expected one: a scale factor is off (a square or a square "
            "root, a factor 2, a missing a or s?)."
        )
    shift = float((g - e).mean())
    if abs(shift) > 1e-6 and torch.allclose(g, e + shift, atol=1e-5, rtol=1e-4):
        return f"every entry is off by the same constant {shift:.4g}: a missing or extra offset?"
    right = torch.isclose(g, e, atol=1e-5, rtol=1e-4)
    if right.any():
        return f"{int(right.sum())} of {e.numel()} entries are right: look at where the others are."
    return None


def _run(exercise: str, fn: Callable, cases: list[Case], quiet: bool = False) -> CheckResult:
    name = getattr(fn, "__name__", "your function")
    title = REGISTRY[exercise].title if exercise in REGISTRY else ""
    head = f"Exercise {exercise} ({name})"
    if isinstance(fn, StandIn):
        msg = (
            f"↺ {head}: this is the course's reference {name}, which exercises.use put in place of yours after your "
            f"function failed its check.\n  Run the cell where you define {name} again (with your fix), then this "
            "check: it will test your function."
        )
        return _finish(CheckResult(exercise, False, msg, cases_total=len(cases)), quiet)
    if not callable(fn):
        msg = f"✗ {head}: expected a function, got {_describe(fn)}. Pass the function itself, without calling it."
        return _finish(CheckResult(exercise, False, msg, cases_total=len(cases)), quiet)
    for k, case in enumerate(cases):
        try:
            got = fn(*case.args)
        except NotImplementedError:
            msg = (
                f"… {head} is not implemented yet: {title}.\n"
                f"  Replace the line `raise NotImplementedError(...)` in its cell with your code, run that cell,\n"
                f"  then run this check again. (The cells below use the reference solution meanwhile.)"
            )
            return _finish(CheckResult(exercise, False, msg, implemented=False, cases_total=len(cases)), quiet)
        except Exception as err:  # report any error as feedback, never crash the check
            msg = (
                f"✗ {head} raised {type(err).__name__} on case {k + 1} of {len(cases)} ({case.description}):\n"
                f"  {err}\n  hint: {case.hint}"
            )
            return _finish(CheckResult(exercise, False, msg, cases_passed=k, cases_total=len(cases)), quiet)
        problem = _difference(case.expected, got, case.atol, case.rtol)
        if problem:
            tries = _FAILURES[exercise] = _FAILURES.get(exercise, 0) + 1
            hint = next((targeted for wrong, targeted in case.mistakes if _matches(wrong, got)), None)
            if hint is None and tries == 1:  # say what is wrong first; the method comes on a repeated failure
                hint = (_diagnose(case.expected, got) or "compare your steps with the exercise text, one by one.") + (
                    " Fix it and run this check again; if it still fails, the check then spells out the method."
                )
            elif hint is None:
                hint = case.hint
            msg = (
                f"✗ {head}: case {k + 1} of {len(cases)} ({case.description}) is not right yet.\n"
                f"  expected: {_describe(case.expected)}\n"
                f"  got:      {_describe(got)}\n"
                f"  {problem}\n"
                f"  hint: {hint}"
            )
            return _finish(CheckResult(exercise, False, msg, cases_passed=k, cases_total=len(cases)), quiet)
    _FAILURES.pop(exercise, None)
    msg = f"✓ {head}: all {len(cases)} cases pass. Well done!"
    return _finish(CheckResult(exercise, True, msg, cases_passed=len(cases), cases_total=len(cases)), quiet)


def softmax_average(queries, keys, values, scale, temperature) -> torch.Tensor:
    """sum_n softmax_n(-|q - scale k_n|^2 / temperature) v_n, in float64, straight from the formula.

    queries [B, D], keys [N, D], values [N, V] -> [B, V]. The ideal, local and equivariant machines
    of chapters 03, 05 and 06 are this one average over different candidates; the checks build
    their references and known mistakes (a wrong scale or temperature) from it.
    """
    q, k = queries.double(), keys.double()
    d2 = ((q[:, None, :] - scale * k[None]) ** 2).sum(-1)  # direct differences: no cancellation
    w = torch.softmax(-d2 / temperature, dim=1)
    return w @ values.double()


def image_softmax_average(x_t, candidates, scale, temperature) -> torch.Tensor:
    """The ideal denoiser's average over whole candidate images: x_t [B, C, H, W] -> [B, C, H, W]."""
    flat = candidates.reshape(len(candidates), -1)
    return softmax_average(x_t.reshape(len(x_t), -1), flat, flat, scale, temperature).to(x_t.dtype).view_as(x_t)


def _images(shape, seed: int) -> torch.Tensor:
    return sampling.noise_like(shape, seed=seed).clamp(-2, 2) * 0.5


@dataclass(frozen=True)
class Exercise:
    title: str
    check: Callable
    reference: Callable


# exercise number -> Exercise, filled by the package from every chapter's module
REGISTRY: dict[str, Exercise] = {}

run_cases = _run
random_images = _images


def _get(exercise: str) -> Exercise:
    if exercise not in REGISTRY:
        raise ValueError(f"unknown exercise {exercise!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[exercise]


def check(exercise: str, fn: Callable, quiet: bool = False) -> CheckResult:
    """Check `fn` for exercise `exercise` (e.g. "1.1"): the same as the named check function."""
    return _get(exercise).check(fn, quiet=quiet)


def reference(exercise: str) -> Callable:
    """The reference implementation the check compares with (same signature as the exercise)."""
    return _get(exercise).reference


def use(exercise: str, fn: Callable) -> Callable:
    """Your `fn` if it passes exercise `exercise`'s check, otherwise the reference (with a note).

    Lets later cells run before an exercise is solved; never raises because of the learner's code.
    """
    try:
        passed = bool(_get(exercise).check(fn, quiet=True))
    except CheckFailed:
        passed = False
    name = getattr(fn, "__name__", "your function")
    if passed:
        print(f"Using your {name} from exercise {exercise}.")
        return fn
    print(
        f"Exercise {exercise} is not solved yet, so the cells below use the course's reference {name} in its place "
        f"(they say 'the reference' where they would say 'your')."
    )
    return StandIn(exercise, _get(exercise).reference, name)
