"""Chapter 09's exercises: the references are the library's rules, and typical mistakes get a targeted hint."""

from __future__ import annotations

import pytest
import torch

from elslib import data, dynamics, memorisation, sampling
from elslib.course import exercises

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("ELS_STRICT_CHECKS", raising=False)


@pytest.fixture(scope="module")
def trajectory():
    images, labels = data.load("mnist", n=40)
    noise = torch.cat([sampling.noise_like((1, 1, 32, 32), seed=s) for s in range(5)])
    times, weights = dynamics.weights_along(images, noise, steps=10)
    return images, labels, noise, times, weights


def test_the_references_give_the_library_times(trajectory):
    images, labels, noise, times, weights = trajectory
    collapse = exercises.reference("9.2")(times, weights.amax(2), 0.5)
    speciation = exercises.reference("9.3")(times, weights, labels, 0.9)
    assert torch.allclose(collapse, dynamics.collapse_times(images, noise, steps=10), atol=0, equal_nan=True)
    assert torch.allclose(
        speciation, dynamics.speciation_times(images, labels, noise, steps=10), atol=0, equal_nan=True
    )
    d = exercises.reference("9.1")(images)
    assert torch.equal(d, memorisation.leave_one_out_distances(images))


def test_typical_mistakes_get_their_hint():
    def with_itself(images):
        y = images.flatten(1).double()
        return torch.cdist(y, y).min(1).values / y.shape[1] ** 0.5

    assert "nearest to itself" in exercises.check("9.1", with_itself, quiet=True).message

    def smallest_t(times, top_weight, threshold):
        hit = top_weight >= threshold
        return torch.stack([times[hit[:, b]].min() for b in range(hit.shape[1])])

    assert "the largest one" in exercises.check("9.2", smallest_t, quiet=True).message

    def first_crossing(times, weights, labels, threshold):
        classes = torch.unique(labels)
        mass = weights @ (labels[None, :] == classes[:, None]).double().T
        held = mass.gather(2, mass[-1].argmax(1).view(1, -1, 1).expand(len(times), -1, 1))[..., 0]
        return dynamics._first_time(times, held >= threshold)

    assert "EVERY later step" in exercises.check("9.3", first_crossing, quiet=True).message
