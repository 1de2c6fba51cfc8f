"""One realistic mistake per exercise of chapters 01, 02, 03 and 07, as a new student makes it: each check
fails, says which case and what is wrong in words, and never hands over the method on the first failure."""

import math

import pytest
import torch
import torch.nn.functional as F

from elslib.course import exercises
from elslib.course.exercises import framework


@pytest.fixture(autouse=True)
def fresh_grading(monkeypatch):
    monkeypatch.delenv("ELS_STRICT_CHECKS", raising=False)
    framework._FAILURES.clear()


def add_noise_fixed_cosine(x0, t, noise, schedule):  # ignores the schedule it is given
    import elslib

    return elslib.schedules.cosine().add_noise(x0, t, noise)


def accuracy_unscaled_means(x_t, labels, means, a):  # forgets a(t)
    d = torch.cdist(x_t.flatten(1), means.flatten(1))
    return float((d.argmin(1) == labels).float().mean())


def gaussian_s_not_s2(x_t, t, mu, cov, schedule):  # the noise *scale* where its variance belongs
    a, s = schedule.alpha(t), schedule.sigma(t)
    d = mu.numel()
    x, m = x_t.reshape(len(x_t), d), mu.reshape(d)
    gain = a * cov @ torch.linalg.inv(a * a * cov + s * torch.eye(d))
    return (m + (x - a * m) @ gain.T).reshape(x_t.shape)


def eps_and_score_sign(x_t, x0_hat, t, schedule):  # the score with the wrong sign
    a, s = schedule.alpha(t), schedule.sigma(t)
    eps = (x_t - a * x0_hat) / s
    return eps, eps / s


def ddim_step_no_rescale(x_t, x0_hat, t, t_next, schedule):  # keeps the old noise scale
    eps = (x_t - schedule.alpha(t) * x0_hat) / schedule.sigma(t)
    return schedule.alpha(t_next) * x0_hat + schedule.sigma(t) * eps


def ideal_softmax_over_batch(x_t, t, train, schedule):  # normalises across the wrong axis
    a, s = schedule.alpha(t), schedule.sigma(t)
    flat = train.reshape(len(train), -1)
    d2 = torch.cdist(x_t.reshape(len(x_t), -1), a * flat) ** 2
    return (torch.softmax(-d2 / (2 * s * s), dim=0) @ flat).view_as(x_t)


def nearest_with_fast_cdist(samples, train):  # the chapter's numerical trap
    d = torch.cdist(samples.flatten(1), train.flatten(1)) / math.sqrt(samples[0].numel())
    return d.min(dim=1)


def candidates_everywhere(row, col, patch_size, size):  # forgets the boundary rule
    return torch.ones(size, dtype=torch.bool)


def els_pixel_off_centre(x_t, t, train, patch_size, row, col, schedule):  # the window's corner, not its centre
    a, s = schedule.alpha(t), schedule.sigma(t)
    r, w = patch_size // 2, train.shape[-1]
    h = train.shape[-2]

    def windows(x):
        return F.unfold(F.pad(x, (r, r, r, r), mode="circular"), patch_size).transpose(1, 2)

    query = windows(x_t)[:, ((row + r) % h) * w + (col + r) % w]
    keys = windows(train).reshape(-1, query.shape[1])
    values = train.permute(0, 2, 3, 1).reshape(-1, train.shape[1])
    weights = torch.softmax(-(torch.cdist(query, a * keys) ** 2) / (2 * s * s), dim=1)
    return weights @ values


MISTAKES = [
    ("1.1", add_noise_fixed_cosine, "use the schedule you are given"),
    ("1.2", accuracy_unscaled_means, "compare x_t with a * means[k]"),
    ("2.1", gaussian_s_not_s2, "VARIANCE"),
    ("2.2", eps_and_score_sign, "mind the sign"),
    ("2.3", ddim_step_no_rescale, None),
    ("3.1", ideal_softmax_over_batch, "wrong axis"),
    ("3.2", nearest_with_fast_cdist, "compute_mode='donot_use_mm_for_euclid_dist'"),
    ("7.1", candidates_everywhere, "circular machine"),
    ("7.2", els_pixel_off_centre, "not centred on (row, col)"),
]


@pytest.mark.parametrize("number,mistake,targeted", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_realistic_mistake_is_answered_in_words(number, mistake, targeted):
    first = exercises.check(number, mistake, quiet=True)
    assert not first.passed and first.implemented
    assert "not right yet" in first.message and "expected:" in first.message and "got:" in first.message
    if targeted is not None:  # a known mistake: named at once
        assert targeted in first.message, first.message
    else:  # otherwise the first answer says what is wrong, and the method only comes on a repeat
        assert "run this check again" in first.message, first.message
        second = exercises.check(number, mistake, quiet=True)
        assert "run this check again" not in second.message and "hint:" in second.message


@pytest.mark.parametrize("number,mistake,targeted", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_the_reference_standing_in_is_never_passed_as_theirs(number, mistake, targeted, capsys):
    stand_in = exercises.use(number, mistake)
    assert isinstance(stand_in, exercises.StandIn)
    again = exercises.check(number, stand_in, quiet=True)
    assert not again.passed and "Well done" not in again.message and "again" in again.message
