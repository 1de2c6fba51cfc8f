"""elslib.course.exercises: every check passes the reference, and answers a wrong or missing one in words."""

import pytest
import torch

from elslib import sampling, schedules
from elslib.course import exercises


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("ELS_STRICT_CHECKS", raising=False)


@pytest.mark.parametrize("number", list(exercises.EXERCISES))
def test_reference_passes_its_own_check(number):
    result = exercises.check(number, exercises.reference(number), quiet=True)
    assert result.passed, result.message
    assert result.cases_passed == result.cases_total >= 2


def not_yet(*args):
    raise NotImplementedError("Exercise: implement me")


@pytest.mark.parametrize("number", list(exercises.EXERCISES))
def test_a_blank_is_not_implemented_yet(number, capsys):
    result = exercises.check(number, not_yet)
    assert not result.passed and not result.implemented
    assert "not implemented yet" in result.message and f"Exercise {number}" in result.message
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("number", list(exercises.EXERCISES))
def test_a_wrong_answer_gets_expected_got_and_a_hint(number):
    reference = exercises.reference(number)

    def off_by_a_bit(*args):
        out = reference(*args)
        if isinstance(out, tuple):
            return tuple(o + 0.5 if isinstance(o, float) or o.is_floating_point() else o for o in out)
        if isinstance(out, float):
            return out + 0.5
        return out + 0.5

    result = exercises.check(number, off_by_a_bit, quiet=True)
    assert not result.passed and result.implemented
    for word in ("expected:", "got:", "hint:"):
        assert word in result.message, result.message


def test_known_mistakes_get_a_targeted_hint():
    def no_square_roots(x0, t, noise, schedule):
        ab = schedule.alpha_bar(t)
        return ab * x0 + (1 - ab) * noise

    result = exercises.check_add_noise(no_square_roots, quiet=True)
    assert "square roots" in result.message

    def forgot_a(x_t, t, train, schedule):
        s = schedule.sigma(t)
        d2 = torch.cdist(x_t.flatten(1).double(), train.flatten(1).double()) ** 2
        return (torch.softmax(-d2 / (2 * s * s), 1) @ train.flatten(1).double()).float().view_as(x_t)

    result = exercises.check_ideal_denoiser(forgot_a, quiet=True)
    assert "a x_n" in result.message


def test_an_exception_is_reported_with_the_case_and_hint():
    def broken(x0, t, noise, schedule):
        return schedule.alpha(t) * x0 + schedule.sigma(t) * noise  # fails for a tensor of times

    result = exercises.check_add_noise(broken, quiet=True)
    assert not result.passed and "raised RuntimeError" in result.message and "[B, 1, 1, 1]" in result.message


def test_naive_softmax_underflow_is_caught():
    def naive(x_t, t, train, schedule):
        a, s = schedule.alpha(t), schedule.sigma(t)
        d2 = torch.cdist(x_t.flatten(1), a * train.flatten(1)) ** 2
        w = torch.exp(-d2 / (2 * s * s))
        return ((w / w.sum(1, keepdim=True)) @ train.flatten(1)).view_as(x_t)

    result = exercises.check_ideal_denoiser(naive, quiet=True)
    assert not result.passed and "NaN" in result.message


def test_not_a_function():
    result = exercises.check_add_noise(torch.zeros(3), quiet=True)
    assert not result.passed and "expected a function" in result.message


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("ELS_STRICT_CHECKS", "1")
    with pytest.raises(exercises.CheckFailed, match="not implemented yet"):
        exercises.check_add_noise(not_yet, quiet=True)
    assert exercises.check_add_noise(exercises.reference("1.1"), quiet=True)


def test_use_falls_back_to_the_reference(capsys):
    stand_in = exercises.use("1.1", not_yet)
    assert isinstance(stand_in, exercises.StandIn) and stand_in.reference is exercises.reference("1.1")
    assert "not solved yet" in capsys.readouterr().out
    x0 = sampling.noise_like((2, 1, 4, 4), seed=1)
    noise = sampling.noise_like((2, 1, 4, 4), seed=2)
    cos = schedules.cosine()
    assert torch.equal(stand_in(x0, 0.3, noise, cos), exercises.reference("1.1")(x0, 0.3, noise, cos))
    assert exercises.whose(stand_in) == "the reference" and "standing in" in repr(stand_in)

    def mine(x0, t, noise, schedule):
        return schedules.get(schedule).add_noise(x0, t, noise)

    assert exercises.use("1.1", mine) is mine and exercises.whose(mine) == "your"


def test_use_never_raises_in_strict_mode(monkeypatch):
    monkeypatch.setenv("ELS_STRICT_CHECKS", "1")
    assert exercises.use("2.3", not_yet).reference is exercises.reference("2.3")


def test_rechecking_the_stand_in_says_to_rerun_the_definition(capsys):
    def add_noise(x0, t, noise, schedule):  # a wrong answer: no square roots
        ab = schedule.alpha_bar(t)
        return ab * x0 + (1 - ab) * noise

    add_noise = exercises.use("1.1", add_noise)  # what the chapter's cell does
    result = exercises.check("1.1", add_noise)  # the learner runs the check cell again, unchanged
    assert not result.passed and "Well done" not in result.message
    assert "reference" in result.message and "define add_noise again" in result.message
    again = exercises.use("1.1", add_noise)  # and the use line again: still the reference, still said
    assert isinstance(again, exercises.StandIn) and again.__name__ == "add_noise"


def test_hints_are_graded_what_is_wrong_first_the_method_on_a_repeat():
    from elslib.course.exercises import framework

    framework._FAILURES.pop("8.2", None)

    def doubled(a, b):  # twice Pearson's r: no known mistake, but a simple relation to the answer
        return 2 * exercises.reference("8.2")(a, b)

    first = exercises.check("8.2", doubled, quiet=True).message
    assert "2 times the expected one" in first and "subtract each image's own mean" not in first
    second = exercises.check("8.2", doubled, quiet=True).message
    assert "subtract each image's own mean" in second  # the method, now
    assert exercises.check("8.2", exercises.reference("8.2"), quiet=True).passed
    assert "8.2" not in framework._FAILURES  # a pass starts the grading afresh


def test_an_integer_answer_is_not_passed_by_rounding_a_fraction():
    def mean_not_median(similarity, sizes):
        best = torch.tensor(sizes)[torch.nan_to_num(similarity, nan=-float("inf")).argmax(dim=2)]
        return best.double().mean(dim=0) + 0.25  # fractional

    message = exercises.check("8.1", mean_not_median, quiet=True).message
    assert "whole numbers" in message and "int64" in message


def test_unknown_exercise():
    with pytest.raises(ValueError, match="unknown exercise"):
        exercises.check("9.9", not_yet)
