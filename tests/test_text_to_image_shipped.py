"""The shipped text-to-image pipeline: it loads, it is deterministic, it draws what the prompt asks.

The digit reader (elslib.reader, trained on other digits) reads what `generate` makes for
prompts naming each digit; the measured stroke width separates "thick" from "thin" prompts.
"""

from __future__ import annotations

import pytest
import torch

from elslib import reader
from elslib.text_to_image import captions, generate, pipeline
from elslib.text_to_image.captions import DIGIT_WORDS

pytestmark = pytest.mark.usefixtures("one_thread")
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def shipped():
    return pipeline.load()


def test_prompts_naming_each_digit_are_read_as_that_digit(shipped):
    prompts = [f"a handwritten {DIGIT_WORDS[d]}" if s == 0 else f"the digit {d}" for d in range(10) for s in SEEDS]
    seeds = [s for _ in range(10) for s in SEEDS]
    images = generate(prompts, seeds, pipeline=shipped)
    assert images.shape == (20, 1, 32, 32) and images.abs().max() <= 1.0
    digit, _ = reader.read(images)
    assert (digit == torch.arange(10).repeat_interleave(len(SEEDS))).float().mean() >= 0.9


def test_thick_and_thin_move_the_measured_stroke_width(shipped):
    seeds = [s for _ in range(5) for s in SEEDS]
    digits = [d for d in (0, 2, 4, 7, 8) for _ in SEEDS]
    thick = generate([f"a thick {DIGIT_WORDS[d]}" for d in digits], seeds, pipeline=shipped)
    thin = generate([f"a thin {DIGIT_WORDS[d]}" for d in digits], seeds, pipeline=shipped)
    wider = captions.measure(thick).thickness > captions.measure(thin).thickness
    assert wider.mean() >= 0.8


def test_same_prompt_seed_steps_and_guidance_same_bits(shipped):
    a = generate(["a thick seven", "an 8"], [5, 6], steps=10, guidance=2.0, pipeline=shipped)
    b = generate(["a thick seven", "an 8"], [5, 6], steps=10, guidance=2.0, pipeline=shipped)
    assert torch.equal(a, b)
    assert not torch.equal(a, generate(["a thick seven", "an 8"], [5, 6], steps=10, guidance=1.0, pipeline=shipped))


def test_the_shipped_file_carries_its_checksum_and_recipe():
    meta = pipeline.WEIGHTS.with_suffix(".json").read_text()
    assert '"sha256"' in meta and "python -m elslib train text-to-image" in meta
