"""Captions from measured attributes, and the word-level tokenizer."""

from __future__ import annotations

import pytest
import torch

from elslib import data
from elslib.text_to_image import Tokenizer, captions


def bar(width: int, height: int, shear: float = 0.0, size: int = 32) -> torch.Tensor:
    """A white bar on black, `width` pixels wide and `height` high, sheared right as it rises."""
    img = -torch.ones(1, 1, size, size)
    top = (size - height) // 2
    for r in range(top, top + height):
        x0 = size // 2 + round(shear * (top + height - 1 - r))  # rows grow downwards
        img[0, 0, r, x0 : x0 + width] = 1.0
    return img


def test_attributes_of_shapes_whose_answer_is_known():
    a = captions.measure(torch.cat([bar(3, 20), bar(1, 14), bar(5, 20, shear=0.5), -torch.ones(1, 1, 32, 32)]))
    assert a.height.tolist() == [20, 14, 20, 0]
    assert a.thickness[0] == pytest.approx(3.0, rel=0.2) and a.thickness[1] == pytest.approx(1.0)
    assert a.thickness[2] == pytest.approx(5.0, rel=0.25)
    assert abs(a.slant[0]) < 1e-12 and a.slant[2] == pytest.approx(0.5, abs=0.05)
    assert a.thickness[3] == a.slant[3] == 0  # blank
    assert a.words(0) == ["upright"]
    assert a.words(1) == ["small", "thin", "upright"]
    assert a.words(2) == ["thick", "slanted"]
    assert a.words(3) == []


def test_thresholds_sit_where_the_docstring_says_on_mnist():
    images, _ = data.load("mnist", n=1000)
    a = captions.measure(images)
    share = lambda m: float(m.mean())  # noqa: E731
    assert 0.18 < share(a.thickness < captions.THIN_BELOW) < 0.32
    assert 0.18 < share(a.thickness > captions.THICK_ABOVE) < 0.32
    assert 0.18 < share(a.slant > captions.SLANTED_ABOVE) < 0.32
    assert 0.01 < share((a.height > 0) & (a.height <= captions.SMALL_AT_MOST)) < 0.12


def test_captions_name_the_digit_and_its_measured_words():
    images, labels = data.load("mnist", n=200)
    caps = captions.captions(images, labels, per_image=4, seed=1)
    assert caps == captions.captions(images, labels, per_image=4, seed=1)  # same seed, same captions
    assert caps != captions.captions(images, labels, per_image=4, seed=2)
    attrs = captions.measure(images)
    for i, (label, cs) in enumerate(zip(labels.tolist(), caps, strict=True)):
        assert len(cs) == 4
        for c in cs:
            words = c.replace(",", " ").split()
            assert captions.DIGIT_WORDS[label] in words or str(label) in words, c
            said = {"bold": "thick", "tilted": "slanted"}
            for w in words:
                if w in ("thin", "thick", "bold", "slanted", "tilted", "small", "upright"):
                    assert said.get(w, w) in attrs.words(i), (c, attrs.words(i))
    assert captions.caption(8, ["upright"]) == "an upright eight"
    assert captions.caption(1, [], numeral=True) == "a 1"
    assert captions.caption(7, ["thick", "slanted"]) == "a thick, slanted seven"
    for bad, match in [
        (dict(label=10, words=[]), "label must be a digit"),
        (dict(label=3, words=[], phrasing=9), "phrasing"),
    ]:
        with pytest.raises(ValueError, match=match):
            captions.caption(**bad)


def test_the_tokenizer_round_trips_and_reports_unknown_words():
    tok = Tokenizer.from_captions(["a thick, slanted seven", "handwritten digit 3", "an eight"])
    ids = tok.encode(["a thick, slanted seven", "an 3"])
    assert ids.shape == (2, 16) and ids.dtype == torch.int64
    assert ids[0, 0] == tok.ids["<start>"] and ids[0, 6] == tok.ids["<end>"] and (ids[0, 7:] == 0).all()
    assert tok.decode(ids) == ["a thick, slanted seven", "an 3"]
    assert tok.encode("A Thick, SLANTED seven.").tolist() == tok.encode("a thick, slanted seven").tolist()
    with pytest.raises(ValueError, match=r"'sevn' \(did you mean seven\?\)") as err:
        tok.encode("a thick sevn")
    assert "Known words" in str(err.value)
    assert tok.unknown("a bold blue seven") == ["bold", "blue"]
    with pytest.raises(ValueError, match="has no words"):
        tok.encode("...")
    with pytest.raises(ValueError, match="at most 2 fit"):
        Tokenizer(["a", "seven"], length=4).encode("a seven a")
    with pytest.raises(ValueError, match="must be a string"):
        tok.encode([7])
