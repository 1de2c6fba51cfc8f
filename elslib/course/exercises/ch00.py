"""Exercises of chapter 00: the notation crosswalk (one time in every notation; back from a noise level)."""

from __future__ import annotations

import math
from collections.abc import Callable

from ... import schedules
from .framework import Case, CheckResult, Exercise
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 0.1 one time, every notation


def _ref_notations(t, schedule):
    """(alpha_bar, a, s, sigma, log SNR) at time t, from the schedule's own methods."""
    sched = schedules.get(schedule)
    ab, a, s = float(sched.alpha_bar(t)), float(sched.alpha(t)), float(sched.sigma(t))
    return ab, a, s, s / a, math.log(float(sched.snr(t)))


def check_notations(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 0.1: ``notations(t, schedule) -> (alpha_bar, a, s, sigma, log_snr)``, five floats: the signal
    variance left, the signal and noise scales, the noise level sigma = s / a and the natural log of the SNR."""
    hint = (
        "Start from alpha_bar = schedule.alpha_bar(t). Then a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar), "
        "sigma = s / a and log SNR = log(a^2 / s^2) (natural logarithm). Return the five as a tuple of floats."
    )
    cases = []
    for sched, name in ((schedules.cosine(), "cosine"), (schedules.linear(), "linear")):
        for t in (0.25, 0.5, 0.9):
            ab, a, s, sigma, log_snr = _ref_notations(t, sched)
            mistakes = [
                ((ab, ab, 1 - ab, (1 - ab) / ab, log_snr), "a and s are square roots: a = sqrt(alpha_bar)."),
                ((ab, a, s, s, log_snr), "sigma is the noise level of x_t / a: sigma = s / a, not s."),
                ((ab, a, s, sigma, math.log10(a * a / (s * s))), "log SNR uses the natural logarithm (math.log)."),
                ((ab, a, s, sigma, math.log(a / s)), "SNR = a^2 / s^2: the ratio of the variances, not of the scales."),
            ]
            cases.append(
                Case(f"t = {t}, {name} schedule", (t, sched), (ab, a, s, sigma, log_snr), hint, mistakes=mistakes)
            )
    return _run("0.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 0.2 back from a noise level


def _ref_time_of_sigma(sigma, offset=0.008):
    """The cosine schedule's time at noise level sigma = s / a = tan(t / (1 + offset) * pi / 2)."""
    return (1 + offset) * 2 / math.pi * math.atan(sigma)


def check_time_of_sigma(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 0.2: ``time_of_sigma(sigma, offset=0.008) -> t``: the time at which the paper's cosine schedule
    reaches the noise level sigma (as EDM-style papers and tools quote it). Checked by going back: the
    schedule's own s / a at the returned t must be sigma."""
    hint = (
        "With alpha_bar(t) = cos^2(t / (1 + offset) * pi / 2), a = cos(...) and s = sin(...), so sigma = s / a = "
        "tan(t / (1 + offset) * pi / 2). Solve for t: t = (1 + offset) * (2 / pi) * atan(sigma)."
    )
    cases = []
    for sigma, offset in ((1.0, 0.008), (0.05, 0.008), (14.6, 0.008), (3.0, 0.0), (80.0, 0.008)):
        expected = _ref_time_of_sigma(sigma, offset)
        sched = schedules.cosine(offset)
        assert abs(float(sched.sigma(expected) / sched.alpha(expected)) - sigma) < 1e-6 * max(1.0, sigma)
        mistakes = [
            (2 / math.pi * math.atan(sigma), "Keep the offset: the schedule divides t by (1 + offset)."),
            ((1 + offset) * 2 / math.pi * math.asin(min(sigma, 1.0)), "sigma is s / a, not s: use atan, not asin."),
            ((1 + offset) * 2 / math.pi * math.atan(sigma * sigma), "sigma = s / a is a ratio of scales: no square."),
        ]
        cases.append(
            Case(f"sigma = {sigma:g}, offset = {offset:g}", (sigma, offset), expected, hint, 1e-6, 1e-6, mistakes)
        )
    return _run("0.2", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "0.1": Exercise("one time in every notation (alpha_bar, a, s, sigma, log SNR)", check_notations, _ref_notations),
    "0.2": Exercise("the cosine schedule's time at a given noise level sigma", check_time_of_sigma, _ref_time_of_sigma),
}
