"""The CLIP-style encoders: the loss from its definition, a short training that learns digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from elslib import data
from elslib.text_to_image import Tokenizer, captions, clip

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def corpus():
    images, labels = data.load("mnist", n=1500)
    caps = captions.captions(images, labels, per_image=3)
    return images, labels, caps, Tokenizer.from_captions([c for r in caps for c in r])


def test_the_loss_is_the_symmetric_infonce(corpus):
    images, _, caps, tok = corpus
    torch.manual_seed(0)
    model = clip.Clip(tok)
    ids = tok.encode([c[0] for c in caps[:6]])
    a, b = model.image(images[:6]), model.text(ids)
    assert torch.allclose(a.norm(dim=1), torch.ones(6)) and torch.allclose(b.norm(dim=1), torch.ones(6))
    s = 1 / 0.07 * a @ b.T
    by_hand = 0.0
    for i in range(6):  # each image picks its caption among the 6, each caption its image
        by_hand -= F.log_softmax(s[i], 0)[i] / 12 + F.log_softmax(s[:, i], 0)[i] / 12
    assert model.loss(images[:6], ids).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_padding_does_not_change_a_prompts_embedding(corpus):
    _, _, _, tok = corpus
    model = clip.Clip(tok)
    longer = Tokenizer(tok.vocabulary[3:], length=24)
    model_long = clip.Clip(longer)
    state = {k: v for k, v in model.state_dict().items() if k != "text.positions"}
    model_long.load_state_dict(state, strict=False)
    with torch.no_grad():
        model_long.text.positions[:16] = model.text.positions
    short, long = model.embed_text("a thick seven"), model_long.embed_text("a thick seven")
    torch.testing.assert_close(short, long, atol=1e-5, rtol=0)


def test_a_short_training_classifies_held_out_digits_zero_shot(corpus):
    images, labels, caps, tok = corpus
    model, history = clip.train(images[:1000], caps[:1000], tok, steps=150, batch_size=128, progress=False)
    assert history.losses[-1] < history.losses[0]
    accuracy = (clip.zero_shot(model, images[1000:]) == labels[1000:]).float().mean().item()
    assert accuracy > 0.6  # chance is 0.1; the shipped encoder trains longer
    # same seed, same weights
    again, _ = clip.train(images[:1000], caps[:1000], tok, steps=3, batch_size=128, progress=False)
    twice, _ = clip.train(images[:1000], caps[:1000], tok, steps=3, batch_size=128, progress=False)
    for p, q in zip(again.parameters(), twice.parameters(), strict=True):
        assert torch.equal(p, q)


def test_bad_arguments_are_named(corpus):
    images, _, caps, tok = corpus
    with pytest.raises(ValueError, match="captions must hold a non-empty list"):
        clip.train(images[:10], caps[:9], tok, steps=1, progress=False)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2"):
        clip.train(images[:10], caps[:10], tok, steps=1, batch_size=1, progress=False)
    with pytest.raises(ValueError, match="the loss became"):
        clip.train(images[:64], caps[:64], tok, steps=30, lr=1e9, progress=False)
    with pytest.raises(ValueError, match="template must hold"):
        clip.class_prompts("a digit")
