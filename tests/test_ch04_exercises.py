"""Chapter 04's exercise checks: their references agree with independent computations, and common
mistakes get the targeted hint."""

import random

import pytest
import torch

from elslib import networks, receptive, sampling
from elslib.course import exercises
from elslib.course.exercises import ch04

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("ELS_STRICT_CHECKS", raising=False)


def test_receptive_field_measurement_matches_the_formula():
    rng = random.Random(0)
    for _ in range(30):
        layers = [(rng.choice([1, 2, 3, 5]), rng.choice([1, 1, 2])) for _ in range(rng.randint(1, 6))]
        formula = receptive.conv_receptive_field([k for k, _ in layers], strides=[s for _, s in layers])
        assert ch04._measured_receptive_field(layers) == formula, layers


def test_receptive_field_of_the_resnet_is_2L_plus_5():
    for blocks in (1, 3, 6):
        net = networks.ResNet(channels=4, blocks=blocks)
        assert ch04._measured_receptive_field([(3, 1)] * (blocks + 2)) == net.receptive_field == 2 * blocks + 5


def test_receptive_field_mistakes_get_their_hints():
    ignore_strides = lambda layers: 1 + sum(k - 1 for k, _ in layers)
    assert "stride" in exercises.check("4.1", ignore_strides, quiet=True).message
    plus_k = lambda layers: sum(k for k, _ in layers)
    assert "k - 1, not by k" in exercises.check("4.1", plus_k, quiet=True).message


def test_training_loss_targets_reconstruct_x0_and_eps():
    x0 = sampling.noise_like((2, 1, 4, 4), seed=1)
    eps = sampling.noise_like((2, 1, 4, 4), seed=2)
    a, s = 0.6, 0.8
    v = networks.regression_target(x0, eps, a, s, "v")
    x_t = a * x0 + s * eps
    assert torch.allclose(a * x_t - s * v, x0, atol=1e-6)
    assert torch.allclose(s * x_t + a * v, eps, atol=1e-6)
    # the reference is the plain mean squared error against that target
    out = sampling.noise_like((2, 1, 4, 4), seed=3)
    assert ch04._ref_training_loss(out, x0, eps, a, s, "v") == pytest.approx(float(((out - v) ** 2).mean()), rel=1e-6)
    assert ch04._ref_training_loss(out, x0, eps, a, s, "eps") == pytest.approx(float(((out - eps) ** 2).mean()))


def test_training_loss_mistakes_get_their_hints():
    def wrong_sign(output, x0, eps, a, s, target):
        y = eps if target == "eps" else s * x0 - a * eps
        return float(((output - y) ** 2).mean())

    assert "Mind the sign" in exercises.check("4.2", wrong_sign, quiet=True).message

    def summed(output, x0, eps, a, s, target):
        y = eps if target == "eps" else a * eps - s * x0
        return float(((output - y) ** 2).sum())

    assert "not the sum" in exercises.check("4.2", summed, quiet=True).message


def test_copy_fraction_reference_on_obvious_cases():
    train = sampling.noise_like((5, 1, 4, 4), seed=4)
    assert ch04._ref_copy_fraction(train.clone(), train, 1 / 3) == 1.0
    far = sampling.noise_like((4, 1, 4, 4), seed=5) * 10
    assert ch04._ref_copy_fraction(far, train, 1 / 3) == 0.0
    mixed = torch.cat([train[:1], far[:3]])
    assert ch04._ref_copy_fraction(mixed, train, 1 / 3) == 0.25


def test_copy_fraction_mistakes_get_their_hints():
    def count(samples, train, ratio):
        d = torch.cdist(samples.flatten(1).double(), train.flatten(1).double()) / samples[0].numel() ** 0.5
        two = d.topk(2, dim=1, largest=False).values
        return float((two[:, 0] < ratio * two[:, 1]).sum())

    assert "fraction of copies, not their number" in exercises.check("4.3", count, quiet=True).message
