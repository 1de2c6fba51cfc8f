r"""A new style from a handful of digits, by LoRA: extra-thick strokes.

The style: every stroke widened by `pixels` on each side (a grey-level dilation, the maximum over
a (2 pixels + 1)-wide square around each pixel; ink is bright, so the maximum spreads it). Real
MNIST strokes are about 2-3 pixels wide; one pixel more on each side makes them 4-5, thicker than
almost any training digit, so the pipeline has never seen it.

``fine_tune`` adds rank-r adapters to a copy of the latent denoiser (``lora.add_lora``) and trains
only them on the latents of a few thickened digits with their captions (measured on the thickened
images, so they say "thick" or "bold" where the strokes are). The VAE and the text encoder stay as
they are: only the denoiser learns the style.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import check_images, check_positive_int
from . import captions, lora
from .pipeline import Pipeline


def thicken(images: torch.Tensor, pixels: int = 1) -> torch.Tensor:
    """Each image [B, 1, H, W] in [-1, 1] with its strokes widened by `pixels` on every side."""
    check_images(images, "images", channels=1)
    pixels = check_positive_int(pixels, "pixels")
    return F.max_pool2d(images, kernel_size=2 * pixels + 1, stride=1, padding=pixels)


def fine_tune(
    pipe: Pipeline,
    images: torch.Tensor,
    labels,
    rank: int = 4,
    steps: int = 300,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Pipeline, dict]:
    """The pipeline with a LoRA-adapted latent denoiser fine-tuned on `images` [N, 1, 32, 32] (already styled).

    Returns (pipeline, info) with info = {"adapters": numbers trained, "full": numbers full
    fine-tuning would train, "losses": per step, "seconds"}.
    """
    if not isinstance(pipe, Pipeline):
        raise ValueError(f"pipe must be a text_to_image.Pipeline, got {type(pipe).__name__}")
    check_images(images, "images", channels=1, size=(32, 32))
    labels = torch.as_tensor(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"labels must hold one digit per image ({len(images)}), got shape {tuple(labels.shape)}")
    caps = captions.captions(images, labels, per_image=4, seed=seed)
    ids = [pipe.tokenizer.encode(c) for c in caps]
    with torch.no_grad():
        latents = pipe.vae.to_latent(images)
    adapted = lora.add_lora(pipe.denoiser, rank=rank, seed=seed)
    adapted, losses, seconds = lora.fine_tune(adapted, latents, ids, steps=steps, seed=seed, progress=progress)
    info = {**lora.count(adapted), "losses": losses, "seconds": seconds}
    return Pipeline(pipe.tokenizer, pipe.clip, pipe.vae, adapted), info
