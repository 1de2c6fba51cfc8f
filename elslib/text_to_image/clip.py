r"""A text encoder trained CLIP-style: words and digit images brought into one space.

Two encoders map into the same D-dimensional space, each output normalised to length 1:

- the text encoder: token embeddings plus position embeddings, a small Transformer encoder
  (self-attention over the words of the prompt, padding masked), the mean over the words, a
  linear map;
- the image encoder: three 3x3 convolutions with stride 2 (32 -> 16 -> 8 -> 4), a linear map.

Training (Radford et al. 2021) takes a batch of B (image, caption) pairs, computes all B x B
cosine similarities, scaled by a learned temperature, and asks each image to pick out its own
caption among the B and each caption its own image: the symmetric InfoNCE loss

    L = ( CE(S, diag) + CE(S^T, diag) ) / 2,   S_ij = exp(tau) cos(image_i, text_j).

Nothing tells the encoders what a "seven" is; they learn it because captions with "seven" come
with images of sevens. Zero-shot classification then needs no classifier: embed one prompt per
class ("a handwritten seven") and give each image the class of the closest prompt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_images, check_positive_int, check_seed
from .tokenizer import PAD, Tokenizer


class TextEncoder(nn.Module):
    """Token ids [B, L] (int64, 0 = padding) -> unit vectors [B, dim]."""

    def __init__(self, vocabulary: int, dim: int = 64, width: int = 64, layers: int = 2, length: int = 16):
        super().__init__()
        self.tokens = nn.Embedding(vocabulary, width, padding_idx=0)
        self.positions = nn.Parameter(torch.randn(length, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=2 * width, batch_first=True, dropout=0.0)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == 0
        h = self.body(self.tokens(ids) + self.positions[: ids.shape[1]], src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).float()
        pooled = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)  # the mean over real words
        return F.normalize(self.out(pooled), dim=-1)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The per-token states [B, L, width] before pooling (for cross-attention conditioning)."""
        return self.body(self.tokens(ids) + self.positions[: ids.shape[1]], src_key_padding_mask=ids == 0)


class ImageEncoder(nn.Module):
    """Images [B, 1, 32, 32] in [-1, 1] -> unit vectors [B, dim]."""

    def __init__(self, dim: int = 64, channels: int = 32):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(2 * c * 16, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.body(x), dim=-1)


class Clip(nn.Module):
    """The two encoders and the learned temperature (log scale, starting at log(1 / 0.07))."""

    def __init__(self, tokenizer: Tokenizer, dim: int = 64):
        super().__init__()
        self.config = dict(dim=dim)
        self.tokenizer = tokenizer
        self.text = TextEncoder(len(tokenizer), dim=dim, length=tokenizer.length)
        self.image = ImageEncoder(dim=dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embed_text(self, prompts) -> torch.Tensor:
        """Unit vectors [B, dim] for a prompt or a list of prompts (unknown words: ValueError)."""
        return self.text(self.tokenizer.encode(prompts).to(self.log_scale.device))

    def loss(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The symmetric InfoNCE loss of a batch of B matching (image, caption ids) pairs."""
        sims = self.log_scale.exp().clamp(max=100.0) * self.image(images) @ self.text(ids).T  # [B, B]
        target = torch.arange(len(images), device=images.device)
        return (F.cross_entropy(sims, target) + F.cross_entropy(sims.T, target)) / 2


def class_prompts(template: str = "a handwritten {}") -> list[str]:
    """One prompt per digit 0-9, with the digit as a word."""
    from .captions import DIGIT_WORDS

    if "{}" not in template:
        raise ValueError(f"template must hold '{{}}' where the digit goes, got {template!r}")
    return [template.format(w) for w in DIGIT_WORDS]


@torch.no_grad()
def zero_shot(model: Clip, images: torch.Tensor, prompts=None) -> torch.Tensor:
    """The class whose prompt is most similar to each image [B, 1, 32, 32]: int64 [B].

    prompts: one per class, in class order (default: ``class_prompts()``).
    """
    check_images(images, "images", channels=1, size=(32, 32))
    model.eval()
    text = model.embed_text(class_prompts() if prompts is None else list(prompts))
    return (model.image(images.to(text.device)) @ text.T).argmax(1)


@dataclass
class History:
    """Losses per step and the wall-clock seconds of a training run."""

    losses: list = field(default_factory=list)
    seconds: float = 0.0


def train(
    images: torch.Tensor,
    captions: list[list[str]],
    tokenizer: Tokenizer,
    steps: int = 1500,
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Clip, History]:
    """Train a Clip on images [N, 1, 32, 32] with captions[n] (a list of captions per image).

    Each step draws a batch of images and one of each image's captions at random (from `seed`).
    A batch must not hold two images with the same caption as "wrong" matches for each other
    any more than chance allows; with several phrasings per digit that is rare enough not to
    matter. Adam with a cosine decay; stops with a clear error at the first non-finite loss.
    """
    check_images(images, "images", channels=1, size=(32, 32))
    if len(captions) != len(images) or not all(isinstance(c, list) and c for c in captions):
        raise ValueError(f"captions must hold a non-empty list of captions for each of the {len(images)} images")
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size", minimum=2)
    gen = torch.Generator().manual_seed(check_seed(seed))
    torch.manual_seed(check_seed(seed))
    model = Clip(tokenizer)
    ids = [tokenizer.encode(c) for c in captions]  # per image: [K, L]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history, start = History(), time.perf_counter()
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="CLIP training")
    model.train()
    for step in iterator:
        batch = torch.randperm(len(images), generator=gen)[: min(batch_size, len(images))]
        pick = [int(torch.randint(len(ids[i]), (1,), generator=gen)) for i in batch.tolist()]
        text = torch.stack([ids[i][k] for i, k in zip(batch.tolist(), pick, strict=True)])
        loss = model.loss(images[batch], text)
        if not torch.isfinite(loss):
            raise ValueError(f"the loss became {loss.item()} at step {step + 1} (lr={lr!r} may be too large)")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.losses.append(loss.item())
    history.seconds = time.perf_counter() - start
    model.eval()
    return model, history


__all__ = ["Clip", "History", "ImageEncoder", "PAD", "TextEncoder", "class_prompts", "train", "zero_shot"]
