"""A working miniature of a text-to-image system, on MNIST digits and a CPU (chapter 12).

The pieces of a large system, each small and real: captions made from each digit's label and
measured attributes (``captions``), a word-level tokenizer (``tokenizer``), a text encoder
trained CLIP-style with an image encoder (``clip``), a VAE between pixels and 4 x 8 x 8 latents
(``autoencoder``); the latent denoiser, ``generate`` and LoRA follow in later modules.
"""

from . import autoencoder, captions, clip, tokenizer
from .tokenizer import Tokenizer

__all__ = ["Tokenizer", "autoencoder", "captions", "clip", "tokenizer"]
