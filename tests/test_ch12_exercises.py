"""Chapter 12's exercises: the InfoNCE reference is the loss the text encoder trains with, and typical
mistakes get a targeted hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from elslib import data
from elslib.course import exercises
from elslib.text_to_image import captions, pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("ELS_STRICT_CHECKS", raising=False)


def test_the_infonce_reference_is_the_loss_clip_trains_with():
    pipe = pipeline.load()
    images, labels = data.load("mnist")
    batch, batch_labels = images[-12:], labels[-12:]
    ids = pipe.tokenizer.encode([c[0] for c in captions.captions(batch, batch_labels, per_image=1, seed=3)])
    with torch.no_grad():
        scale = pipe.clip.log_scale.exp().clamp(max=100.0)
        sims = scale * pipe.clip.image(batch) @ pipe.clip.text(ids).T
        library = float(pipe.clip.loss(batch, ids))
    assert exercises.reference("12.1")(sims) == pytest.approx(library, abs=1e-5)


def test_a_torch_answer_passes_and_large_similarities_do_not_overflow():
    def mine(sims):  # returns a tensor, not a float: accepted
        target = torch.arange(len(sims))
        return (F.cross_entropy(sims, target) + F.cross_entropy(sims.T, target)) / 2

    assert exercises.check("12.1", mine, quiet=True).passed
    huge = torch.tensor([[500.0, 0.0], [0.0, 500.0]])
    assert exercises.reference("12.1")(huge) == pytest.approx(0.0, abs=1e-12)
    assert exercises.reference("12.1")(torch.zeros(4, 4)) == pytest.approx(float(torch.log(torch.tensor(4.0))))


@pytest.mark.parametrize(
    "wrong,words",
    [
        (lambda s: F.cross_entropy(s, torch.arange(len(s))), "only half the loss"),
        (lambda s: F.cross_entropy(s.T, torch.arange(len(s))), "only the captions' half"),
        (
            lambda s: F.cross_entropy(s, torch.arange(len(s))) + F.cross_entropy(s.T, torch.arange(len(s))),
            "Average the two directions",
        ),
        (lambda s: -s.diagonal().mean(), "log-softmax"),
        (
            lambda s: (
                (
                    F.cross_entropy(s, torch.arange(len(s)), reduction="sum")
                    + F.cross_entropy(s.T, torch.arange(len(s)), reduction="sum")
                )
                / 2
            ),
            "mean over the B pairs",
        ),
    ],
)
def test_typical_infonce_mistakes_get_their_hint(wrong, words):
    result = exercises.check("12.1", wrong, quiet=True)
    assert not result.passed and words in result.message, result.message


def test_the_guidance_check_still_knows_the_other_convention():
    result = exercises.check("12.2", lambda u, c, w: c + w * (c - u), quiet=True)
    assert not result.passed and "other convention" in result.message
