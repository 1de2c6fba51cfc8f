"""elslib.schedules against their closed forms."""

import math

import pytest
import torch

from elslib import schedules


def test_cosine_is_the_papers_schedule():
    s = schedules.cosine()
    assert s.alpha_bar(0.0) == 1.0
    assert s.alpha_bar(1.0) == pytest.approx(math.cos(math.pi / 2 / 1.008) ** 2, rel=1e-9)
    assert s.alpha_bar(1.0) == pytest.approx(1.55e-4, rel=0.01)
    for t in [0.1, 0.37, 0.9]:
        ab = math.cos(t / 1.008 * math.pi / 2) ** 2
        assert s.alpha_bar(t) == pytest.approx(ab, rel=1e-12)
        assert s.alpha(t) == pytest.approx(math.sqrt(ab), rel=1e-12)
        assert s.sigma(t) == pytest.approx(math.sqrt(1 - ab), rel=1e-12)
        assert s.snr(t) == pytest.approx(ab / (1 - ab), rel=1e-9)


def test_linear_schedule_closed_form():
    s = schedules.linear()
    t = 0.3
    assert s.alpha_bar(t) == pytest.approx(math.exp(-(0.1 * t + 0.5 * 19.9 * t * t)), rel=1e-12)
    assert s.alpha_bar(0.0) == 1.0 and s.alpha_bar(1.0) < 1e-4


@pytest.mark.parametrize("make", [schedules.cosine, schedules.linear])
def test_monotone_and_variance_preserving(make):
    s = make()
    t = torch.linspace(0, 1, 101)
    ab = s.alpha_bar(t)
    assert ab.shape == t.shape and ab.dtype == t.dtype
    assert (ab[1:] < ab[:-1]).all()
    assert torch.allclose(s.alpha(t) ** 2 + s.sigma(t) ** 2, torch.ones_like(t), atol=1e-6)
    assert isinstance(s.alpha_bar(0.5), float)


def test_add_noise_matches_the_formula_per_image_times():
    s = schedules.cosine()
    x0 = torch.randn(3, 2, 4, 5)
    eps = torch.randn(3, 2, 4, 5)
    t = torch.tensor([0.0, 0.5, 1.0])
    out = s.add_noise(x0, t, eps)
    for i in range(3):
        a, sig = s.alpha(float(t[i])), s.sigma(float(t[i]))
        assert torch.allclose(out[i], a * x0[i] + sig * eps[i], atol=1e-6)
    assert torch.equal(s.add_noise(x0, 0.0, eps), x0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), torch.tensor([0.2, 1.2]), "half"])
def test_bad_times_are_refused(bad):
    with pytest.raises(ValueError, match="t"):
        schedules.cosine().alpha_bar(bad)


def test_add_noise_checks_shapes():
    s = schedules.cosine()
    with pytest.raises(ValueError, match="noise"):
        s.add_noise(torch.zeros(2, 1, 4, 4), 0.5, torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match="x0"):
        s.add_noise(torch.zeros(1, 4, 4), 0.5, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        s.add_noise(torch.full((1, 1, 2, 2), float("nan")), 0.5, torch.zeros(1, 1, 2, 2))


def test_get_by_name():
    assert isinstance(schedules.get(None), schedules.CosineSchedule)
    assert isinstance(schedules.get("linear"), schedules.LinearSchedule)
    with pytest.raises(ValueError, match="schedule"):
        schedules.get("quadratic")
