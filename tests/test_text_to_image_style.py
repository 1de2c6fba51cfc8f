"""LoRA style transfer: thickening is a dilation, fine-tuning trains only the adapters."""

from __future__ import annotations

import pytest
import torch

from elslib import data
from elslib.text_to_image import pipeline, style

pytestmark = pytest.mark.usefixtures("one_thread")


def test_thicken_is_the_maximum_over_a_square_neighbourhood():
    images = data.load("mnist", n=3)[0]
    out = style.thicken(images, pixels=1)
    h, w = images.shape[-2:]
    expected = torch.empty_like(images)
    for i in range(h):  # brute force from the definition, the border seeing only what exists
        for j in range(w):
            window = images[:, :, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2]
            expected[:, :, i, j] = window.amax(dim=(-1, -2))
    assert torch.equal(out, expected)
    assert (out >= images).all() and (out > data.INK).sum() > (images > data.INK).sum()


def test_thicken_refuses_bad_pixels():
    images = data.load("mnist", n=1)[0]
    with pytest.raises(ValueError, match="pixels"):
        style.thicken(images, pixels=0)


def test_fine_tune_trains_only_the_adapters_and_counts_them():
    pipe = pipeline.load()
    images, labels = data.load("mnist", n=4)
    before = {k: v.clone() for k, v in pipe.denoiser.state_dict().items()}
    adapted, info = style.fine_tune(pipe, style.thicken(images), labels, rank=2, steps=3, progress=False)
    assert 0 < info["adapters"] < info["full"] / 10 and len(info["losses"]) == 3
    after = pipe.denoiser.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shipped denoiser is untouched
    assert adapted.vae is pipe.vae and adapted.denoiser is not pipe.denoiser


def test_fine_tune_names_mismatched_labels():
    pipe = pipeline.load()
    images, labels = data.load("mnist", n=4)
    with pytest.raises(ValueError, match="labels must hold one digit per image"):
        style.fine_tune(pipe, images, labels[:3], steps=1, progress=False)
