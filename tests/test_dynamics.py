"""Speciation and collapse times against a brute-force float64 computation from the definitions.

The brute force runs its own DDIM of the ideal denoiser in numpy float64 (weights from direct
differences |x - a y_n|^2, a log-sum-exp softmax), then reads the two times off with plain loops.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elslib import data, dynamics, machines, sampling, schedules

pytestmark = pytest.mark.usefixtures("one_thread")


def brute_weights(train: np.ndarray, x: np.ndarray, t: float, sched) -> np.ndarray:
    """[B, N] softmax weights of the ideal denoiser, from the definition, in float64."""
    a, s = float(sched.alpha(t)), float(sched.sigma(t))
    d2 = ((x[:, None, :] - a * train[None, :, :]) ** 2).sum(2)  # [B, N], direct differences
    z = -d2 / (2 * s * s)
    z -= z.max(1, keepdims=True)
    w = np.exp(z)
    return w / w.sum(1, keepdims=True)


def brute_trajectory(train: np.ndarray, noise: np.ndarray, steps: int, sched):
    """Times the denoiser is called at, and its weights there, along a float64 DDIM."""
    times = [1.0 - i / steps for i in range(steps)] + [0.0]
    x, out = noise.copy(), []
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        w = brute_weights(train, x, t, sched)
        out.append(w)
        x0 = w @ train
        ab, ab_next = float(sched.alpha_bar(t)), float(sched.alpha_bar(t_next))
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        x = math.sqrt(ab_next) * x0 + math.sqrt(1 - ab_next) * eps
    return times[:-1], out


def brute_collapse(times, weights, threshold):
    result = []
    for b in range(weights[0].shape[0]):
        hits = [t for t, w in zip(times, weights, strict=True) if w[b].max() >= threshold]
        result.append(max(hits) if hits else math.nan)
    return result


def brute_speciation(times, weights, labels, threshold):
    result = []
    classes = sorted(set(labels.tolist()))
    for b in range(weights[0].shape[0]):
        mass = [{k: w[b][labels == k].sum() for k in classes} for w in weights]
        final = max(classes, key=lambda k: mass[-1][k])
        best = math.nan
        for i in range(len(times)):  # the largest t from which the condition holds at every later step
            if all(m[final] >= threshold for m in mass[i:]):
                best = times[i]
                break
        result.append(best)
    return result


@pytest.fixture(scope="module")
def problem():
    images, labels = data.load("mnist")
    idx = torch.cat([torch.nonzero(labels == k)[:4, 0] for k in (1, 3, 7)])  # 12 digits, 3 classes
    noise = torch.cat([sampling.noise_like((1, 1, 32, 32), seed=s) for s in range(6)])
    return images[idx], labels[idx], noise


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_collapse_and_speciation_times_match_the_brute_force(problem, schedule):
    images, labels, noise = problem
    sched = schedules.get(schedule)
    times, weights = brute_trajectory(images.flatten(1).double().numpy(), noise.flatten(1).double().numpy(), 20, sched)
    for threshold in (0.5, 0.9):
        got = dynamics.collapse_times(images, noise, steps=20, schedule=schedule, threshold=threshold)
        np.testing.assert_array_equal(got.numpy(), brute_collapse(times, weights, threshold))
    for threshold in (0.6, 0.9):
        got = dynamics.speciation_times(images, labels, noise, steps=20, schedule=schedule, threshold=threshold)
        np.testing.assert_array_equal(got.numpy(), brute_speciation(times, weights, labels.numpy(), threshold))
    # the test means something: the times spread over the grid, inside it
    for got in (
        dynamics.collapse_times(images, noise, steps=20, schedule=schedule),
        dynamics.speciation_times(images, labels, noise, steps=20, schedule=schedule),
    ):
        assert 0 < got.min() and got.max() < 1 and len(set(got.tolist())) > 1


def test_the_weights_are_the_ideal_machines(problem):
    """sum_n w_n y_n is the ideal denoiser's prediction; the brute force agrees to float64."""
    images, _, noise = problem
    sched = schedules.cosine()
    x_t = sched.add_noise(images[:6], 0.4, noise)
    w = dynamics.ideal_weights(images, x_t, 0.4)
    assert w.dtype == torch.float64 and w.shape == (6, 12)
    torch.testing.assert_close(w.sum(1), torch.ones(6, dtype=torch.float64))
    brute = brute_weights(images.flatten(1).double().numpy(), x_t.flatten(1).double().numpy(), 0.4, sched)
    np.testing.assert_allclose(w.numpy(), brute, rtol=1e-9, atol=1e-12)
    den = machines.IdealDenoiser(images)
    torch.testing.assert_close((w.float() @ images.flatten(1)).view_as(x_t), den(x_t, 0.4), atol=1e-5, rtol=0)


def test_one_training_image_is_chosen_from_the_start():
    images, labels = data.load("mnist")
    noise = sampling.noise_like((3, 1, 32, 32), seed=4)
    assert dynamics.collapse_times(images[:1], noise, steps=10).tolist() == [1.0] * 3
    assert dynamics.speciation_times(images[:1], labels[:1], noise, steps=10).tolist() == [1.0] * 3


def test_never_is_nan():
    """Two identical images share every weight: the top weight never exceeds 0.5."""
    images, _ = data.load("mnist")
    twins = images[:1].repeat(2, 1, 1, 1)
    got = dynamics.collapse_times(twins, sampling.noise_like((2, 1, 32, 32)), steps=5, threshold=0.75)
    assert torch.isnan(got).all()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda im, lb, nz: dynamics.collapse_times(im, nz, threshold=0.0), "threshold must be > 0"),
        (lambda im, lb, nz: dynamics.collapse_times(im, nz, threshold=1.5), r"threshold must lie in \(0, 1\]"),
        (lambda im, lb, nz: dynamics.collapse_times(im, nz, steps=0), "steps must be an integer >= 1"),
        (lambda im, lb, nz: dynamics.collapse_times(im, nz[:, :, :16]), "noise"),
        (lambda im, lb, nz: dynamics.speciation_times(im, lb[:3], nz), "labels must be a 1-D integer tensor"),
        (lambda im, lb, nz: dynamics.speciation_times(im, lb.float(), nz), "labels must be a 1-D integer tensor"),
        (lambda im, lb, nz: dynamics.ideal_weights(im, nz, 0.0), "t must be > 0"),
        (lambda im, lb, nz: dynamics.ideal_weights(im, nz, 1.5), r"t must lie in \[0, 1\]"),
    ],
)
def test_bad_arguments_are_named(problem, call, match):
    images, labels, noise = problem
    with pytest.raises(ValueError, match=match):
        call(images, labels, noise)
