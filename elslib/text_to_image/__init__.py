"""A working miniature of a text-to-image system, on MNIST digits and a CPU (chapter 12).

The pieces of a large system, each small and real:

- ``captions``: English captions from each digit's label and attributes measured on the image;
- ``tokenizer``: a word-level tokenizer that names unknown words;
- ``clip``: a text encoder trained CLIP-style with an image encoder (zero-shot classification);
- ``autoencoder``: a VAE between 32 x 32 pixels and 4 x 8 x 8 latents;
- ``latent``: the latent denoiser, conditioned on the prompt by cross-attention and FiLM;
- ``pipeline``: ``generate(prompts, seeds, steps=20, guidance=3.0)``, the whole chain;
- ``lora``: low-rank adapters to fine-tune the latent denoiser on a few images.

The shipped pipeline (elslib/weights/text-to-image.pt, 4 MB) is trained by `python -m elslib train
text-to-image` (``recipe``); chapter 12 is to run it.
"""

from . import autoencoder, captions, clip, latent, lora, pipeline, tokenizer
from .pipeline import Pipeline, generate
from .tokenizer import Tokenizer

__all__ = [
    "Pipeline",
    "Tokenizer",
    "autoencoder",
    "captions",
    "clip",
    "generate",
    "latent",
    "lora",
    "pipeline",
    "tokenizer",
]
