"""The Gaussian (Wiener) denoiser against a direct float64 linear solve and a closed form."""

from __future__ import annotations

import pytest
import torch

from elslib import data, machines, sampling, schedules

pytestmark = pytest.mark.usefixtures("one_thread")


def direct(images, x_t, t, schedule=None):
    """mu + a Sigma (a^2 Sigma + s^2 I)^-1 (x_t - a mu), one float64 solve, no eigendecomposition."""
    sched = schedules.get(schedule)
    a, s = float(sched.alpha(t)), float(sched.sigma(t))
    y = images.flatten(1).double()
    mu = y.mean(0)
    cov = (y - mu).T @ (y - mu) / len(y)
    eye = torch.eye(len(mu), dtype=torch.float64)
    rhs = (x_t.flatten(1).double() - a * mu).T
    return (mu[:, None] + a * cov @ torch.linalg.solve(a * a * cov + s * s * eye, rhs)).T.reshape(x_t.shape)


@pytest.mark.parametrize("shape", [(40, 1, 6, 6), (25, 3, 4, 5), (3, 2, 3, 3)])
@pytest.mark.parametrize("t", [0.05, 0.3, 0.7, 0.98])
def test_it_matches_a_direct_linear_solve(shape, t):
    gen = torch.Generator().manual_seed(sum(shape))
    images = torch.rand(shape, generator=gen) * 2 - 1
    x_t = torch.randn((4, *shape[1:]), generator=gen)
    den = machines.GaussianDenoiser(images)
    torch.testing.assert_close(den(x_t, t).double(), direct(images, x_t, t), atol=2e-5, rtol=1e-5)


def test_two_images_give_the_closed_form():
    """Two images y1, y2: mu = (y1 + y2)/2, Sigma = d d^T / 4 with d = y1 - y2 (rank one), so by
    Sherman-Morrison x0_hat = mu + d a d.(x - a mu) / (4 s^2 + a^2 |d|^2)."""
    gen = torch.Generator().manual_seed(3)
    y = torch.rand(2, 1, 5, 5, generator=gen) * 2 - 1
    x_t = torch.randn(3, 1, 5, 5, generator=gen)
    sched, t = schedules.cosine(), 0.4
    a, s = float(sched.alpha(t)), float(sched.sigma(t))
    mu, d = y.double().mean(0).flatten(), (y[0] - y[1]).double().flatten()
    r = x_t.flatten(1).double() - a * mu
    expected = mu + (a * (r @ d) / (4 * s * s + a * a * d @ d))[:, None] * d
    got = machines.GaussianDenoiser(y)(x_t, t)
    torch.testing.assert_close(got.flatten(1).double(), expected, atol=1e-6, rtol=1e-6)


def test_limits_in_time():
    images, _ = data.load("mnist")
    images = images[:300]
    den = machines.GaussianDenoiser(images)
    # nearly pure noise (a(1) = 0.012 on the cosine schedule): close to the mean image, far
    # closer than the training images are
    x_t = sampling.noise_like((2, 1, 32, 32), seed=1)
    mean = images.mean(0, keepdim=True)
    spread = (images - mean).flatten(1).norm(dim=1).mean()
    assert (den(x_t, 1.0) - mean).flatten(1).norm(dim=1).max() < 0.2 * spread
    # almost no noise, x_t = a y for a training image: y comes back (y - mu lies in Sigma's span)
    a = float(den.schedule.alpha(1e-4))
    torch.testing.assert_close(den(a * images[:2], 1e-4), images[:2], atol=2e-3, rtol=0)
    # a new image comes back only as its projection onto the span: not exactly
    held = data.load("mnist")[0][-2:]
    assert (den(a * held, 1e-4) - held).abs().max() > 0.05


def test_class_conditional_uses_the_class_alone():
    images, labels = data.load("mnist")
    images, labels = images[:400], labels[:400]
    den = machines.GaussianDenoiser(images, labels=labels)
    x_t = sampling.noise_like((3, 1, 32, 32), seed=2) * 0.6
    for k in (0, 7):
        alone = machines.GaussianDenoiser(images[labels == k])
        torch.testing.assert_close(den(x_t, 0.5, label=k), alone(x_t, 0.5), atol=1e-5, rtol=0)
    mixed = den(x_t, 0.5, label=[0, 7, 0])
    torch.testing.assert_close(mixed[1], den(x_t[1:2], 0.5, label=7)[0], atol=1e-5, rtol=0)
    assert (den(x_t, 0.5, label=0) - den(x_t, 0.5)).abs().max() > 0.1


def test_the_contract_of_a_machine():
    images, _ = data.load("mnist")
    den = machines.GaussianDenoiser(images[:100], schedule="linear")
    x_t = sampling.noise_like((2, 1, 32, 32))
    assert den(x_t.double(), 0.5).dtype == torch.float64
    out = sampling.ddim(den, x_t, steps=5, progress=False)  # the sampler takes the linear schedule
    assert out.shape == (2, 1, 32, 32) and torch.isfinite(out).all()
    assert torch.all(den.eigenvalues[:-1] >= den.eigenvalues[1:]) and den.eigenvalues.min() >= 0
    with pytest.raises(NotImplementedError, match="no candidates to explain"):
        den.explain(x_t, 0.5)
    with pytest.raises(ValueError, match="x_t"):
        den(torch.zeros(2, 1, 16, 16), 0.5)
    with pytest.raises(ValueError, match="label was given but the machine was built without labels"):
        den(x_t, 0.5, label=3)
    with pytest.raises(ValueError, match="images"):
        machines.GaussianDenoiser(torch.zeros(0, 1, 4, 4))


def test_its_gradient_map_is_the_exact_derivative():
    """Linear in x_t: x0_hat(x + h e_j) - x0_hat(x) = h (d x0_hat / d x_t)[:, j], for any x and h."""
    gen = torch.Generator().manual_seed(5)
    images = torch.rand(30, 2, 5, 4, generator=gen) * 2 - 1
    labels = torch.arange(30) % 3
    den = machines.GaussianDenoiser(images, labels=labels)
    x = torch.randn(1, 2, 5, 4, generator=gen, dtype=torch.float64)
    for label in (None, 2):
        grad = den.gradient_map(0.3, (3, 1), channel=1, label=label)
        assert grad.shape == (2, 5, 4) and grad.dtype == torch.float64
        for j in [(0, 0, 0), (1, 3, 1), (1, 4, 3)]:
            e = torch.zeros_like(x)
            e[(0, *j)] = 1.0
            step = (den(x + 0.5 * e, 0.3, label=label) - den(x, 0.3, label=label))[0, 1, 3, 1] / 0.5
            assert step.item() == pytest.approx(grad[j].item(), abs=1e-5)
    for bad, match in [((5, 0), "pixel must be"), ((1,), "pixel must be"), ((-1, 0), "pixel")]:
        with pytest.raises(ValueError, match=match):
            den.gradient_map(0.3, bad)
    with pytest.raises(ValueError, match="channel must be below 2"):
        den.gradient_map(0.3, (0, 0), channel=2)
