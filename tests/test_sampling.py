"""elslib.sampling: DDIM and DDPM checked on problems with known answers."""

import math

import pytest
import torch

from elslib import sampling, schedules


def gaussian_denoiser(variance: float, schedule):
    """The exact denoiser E[x0 | x_t] when x0 ~ N(0, variance I): a linear shrinkage."""

    def denoise(x, t):
        a, s = schedule.alpha(t), schedule.sigma(t)
        return a * variance / (a * a * variance + s * s) * x

    return denoise


def ddim_gain(variance: float, schedule, steps: int) -> float:
    """The factor DDIM multiplies a 1-d Gaussian's noise by, in float64 from the closed forms."""
    gain = 1.0
    for i in range(steps):
        t, t_next = 1 - i / steps, 1 - (i + 1) / steps
        a, s = schedule.alpha(t), schedule.sigma(t)
        a2, s2 = schedule.alpha(t_next), schedule.sigma(t_next)
        k = a * variance / (a * a * variance + s * s)
        gain *= a2 * k + s2 * (1 - a * k) / s
    return gain


def test_ddim_on_a_gaussian_matches_the_closed_form():
    sched = schedules.cosine()
    noise = sampling.noise_like((4000, 1, 1, 1), seed=0)
    out = sampling.ddim(gaussian_denoiser(0.25, sched), noise, steps=10, progress=False)
    assert torch.allclose(out, noise * ddim_gain(0.25, sched, 10), rtol=1e-4, atol=1e-6)


def test_ddim_with_many_steps_reaches_the_data_distribution():
    sched = schedules.cosine()
    noise = sampling.noise_like((20000, 1, 1, 1), seed=1)
    out = sampling.ddim(gaussian_denoiser(0.25, sched), noise, steps=200, progress=False)
    assert float(out.std()) == pytest.approx(0.5, rel=0.03)


def test_ddpm_on_a_gaussian_reaches_the_data_distribution():
    sched = schedules.cosine()
    noise = sampling.noise_like((20000, 1, 1, 1), seed=2)
    out = sampling.ddpm(gaussian_denoiser(0.25, sched), noise, steps=200, seed=0, progress=False)
    assert float(out.std()) == pytest.approx(0.5, rel=0.03)
    assert abs(float(out.mean())) < 0.02


def test_ddim_returns_the_single_training_image():
    # With one training image the posterior is a point mass: the exact denoiser returns it.
    image = torch.rand(1, 1, 6, 5) * 2 - 1
    exact = lambda x, t: image.expand_as(x)
    out = sampling.ddim(exact, sampling.noise_like((3, 1, 6, 5), seed=0), steps=20, progress=False)
    assert (out - image).abs().max() < 1e-4


def test_same_seed_same_image_and_ddpm_seed_matters():
    sched = schedules.cosine()
    den = gaussian_denoiser(0.3, sched)
    noise = sampling.noise_like((2, 1, 3, 3), seed=7)
    assert torch.equal(noise, sampling.noise_like((2, 1, 3, 3), seed=7))
    assert torch.equal(sampling.ddim(den, noise, progress=False), sampling.ddim(den, noise, progress=False))
    a = sampling.ddpm(den, noise, seed=1, progress=False)
    assert torch.equal(a, sampling.ddpm(den, noise, seed=1, progress=False))
    assert not torch.equal(a, sampling.ddpm(den, noise, seed=2, progress=False))


def test_trajectory_and_callback():
    sched = schedules.cosine()
    den = gaussian_denoiser(0.3, sched)
    noise = sampling.noise_like((2, 1, 3, 3), seed=0)
    seen = []
    out, traj = sampling.ddim(
        den, noise, steps=5, return_trajectory=True, progress=False, callback=lambda i, t, x, x0: seen.append((i, t))
    )
    assert traj.times.tolist() == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    assert traj.x.shape == (6, 2, 1, 3, 3) and traj.x0_hat.shape == (5, 2, 1, 3, 3)
    assert torch.equal(traj.x[0], noise) and torch.equal(traj.x[-1], out)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    # each recorded prediction is the denoiser applied to the state at that time
    for i in range(5):
        assert torch.allclose(traj.x0_hat[i], den(traj.x[i], float(traj.times[i])))


def test_labels_are_passed_on():
    calls = []

    def conditional(x, t, label=None):
        calls.append(label)
        return torch.zeros_like(x)

    sampling.ddim(conditional, torch.zeros(1, 1, 2, 2), steps=3, label=4, progress=False)
    assert calls == [4, 4, 4]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(noise=torch.zeros(1, 2, 2)), "noise"),
        (dict(noise=torch.full((1, 1, 2, 2), float("nan"))), "noise"),
        (dict(schedule="nope"), "schedule"),
    ],
)
def test_bad_input(kwargs, word):
    args = dict(denoiser=lambda x, t: x, noise=torch.zeros(1, 1, 2, 2), steps=3, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        sampling.ddim(**args)


def test_a_denoiser_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match="denoiser"):
        sampling.ddim(lambda x, t: x[:, :, :1], torch.zeros(1, 1, 2, 2), progress=False)


def test_noise_is_standard_normal():
    n = sampling.noise_like((100, 1, 10, 10), seed=3)
    assert abs(float(n.mean())) < 0.03 and float(n.std()) == pytest.approx(1.0, abs=0.03)
    assert not math.isnan(float(n.sum()))


def test_ddim_with_the_ideal_machine_of_one_image_returns_it():
    from elslib.machines import IdealDenoiser

    image = torch.rand(1, 1, 7, 6) * 2 - 1
    out = sampling.ddim(IdealDenoiser(image), sampling.noise_like((4, 1, 7, 6), seed=5), steps=20, progress=False)
    assert (out - image).abs().max() < 1e-4
