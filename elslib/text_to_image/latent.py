r"""The latent denoiser: a small CNN on 4 x 8 x 8 latents, conditioned on the prompt.

Its input is a noisy latent z_t = a z + s eps (z from the VAE, unit variance), the time t and the
prompt's token ids. The prompt reaches it in two ways, as in Stable Diffusion's UNet:

- **cross-attention**: every latent position asks (query) which words of the prompt matter to
  it, reading keys and values made from the frozen text encoder's per-word states;
- **a global nudge (FiLM)**: the prompt's pooled embedding is added to the time embedding, which
  scales and shifts the features of every block.

Condition dropout: during training a tenth of the prompts are replaced by the empty prompt (all
padding), for which the network learns its unconditional prediction. One network thus serves
both halves of classifier-free guidance, x0_hat_w = x0_hat(empty) + w (x0_hat(prompt) -
x0_hat(empty)) (``elslib.denoisers.Guided``).

The network follows the course's denoiser contract through ``networks.as_denoiser``: its
``label`` is the prompt's token ids [B, L] (None: the empty prompt), and it predicts v.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import networks, schedules
from ..checks import check_images, check_number, check_positive_int, check_seed
from .clip import TextEncoder


class _Block(nn.Module):
    """A residual block whose features are scaled and shifted by the condition (FiLM)."""

    def __init__(self, channels: int, cond: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(cond, 2 * channels)

    def forward(self, h, cond):
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        y = self.conv1(F.silu(self.norm1(h)))
        y = self.norm2(y) * (1 + scale) + shift
        return h + self.conv2(F.silu(y))


class _CrossAttention(nn.Module):
    """Latent positions [B, C, H, W] attend to the prompt's word states [B, L, width]."""

    def __init__(self, channels: int, width: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, kdim=width, vdim=width, batch_first=True)

    def forward(self, h, words, pad):
        b, c, hh, ww = h.shape
        q = self.norm(h).flatten(2).transpose(1, 2)  # [B, H W, C]
        out, _ = self.attn(q, words, words, key_padding_mask=pad, need_weights=False)
        return h + out.transpose(1, 2).reshape(b, c, hh, ww)


class LatentDenoiser(nn.Module):
    """v-prediction network on latents [B, 4, 8, 8], conditioned on prompts through ``label=ids``.

    text: the trained CLIP text encoder (copied and frozen: the denoiser never changes it).
    """

    target = "v"

    def __init__(self, text: TextEncoder, in_channels: int = 4, channels: int = 64, blocks: int = 4):
        super().__init__()
        self.config = dict(in_channels=in_channels, channels=channels, blocks=blocks)
        self.text = copy.deepcopy(text).requires_grad_(False).eval()
        width = self.text.tokens.embedding_dim
        cond = 4 * channels
        self.null = nn.Parameter(torch.zeros(1, 1, width))  # the word states of the empty prompt
        self.time = nn.Sequential(nn.Linear(64, cond), nn.SiLU(), nn.Linear(cond, cond))
        self.pooled = nn.Linear(width, cond)
        self.inp = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.blocks = nn.ModuleList(_Block(channels, cond) for _ in range(blocks))
        self.cross = nn.ModuleList(_CrossAttention(channels, width) for _ in range(blocks // 2))
        self.out = nn.Sequential(nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def train(self, mode: bool = True):
        super().train(mode)
        self.text.eval()  # frozen: no dropout, no statistics, in either mode
        return self

    def _words(self, ids: torch.Tensor | None, b: int, device):
        """Per-word states [B, L, width], padding mask [B, L] and pooled state [B, width]."""
        if ids is None:
            ids = torch.zeros(b, 1, dtype=torch.long, device=device)
        ids = torch.as_tensor(ids, device=device)
        if ids.dim() != 2 or ids.shape[0] != b or ids.is_floating_point():
            raise ValueError(f"label must be token ids [B, L] (int64, from the tokenizer) for {b} images, got {ids!r}")
        pad = ids == 0
        empty = pad.all(1)  # the empty prompt: the learned null state instead of words
        with torch.no_grad():
            words = self.text.features(ids)
        null = self.null.expand(b, words.shape[1], -1)
        first_only = torch.ones_like(pad)
        first_only[:, 0] = False
        words = torch.where(empty[:, None, None], null, words)
        pad = torch.where(empty[:, None], first_only, pad)  # the null state is read at one position
        keep = (~pad).unsqueeze(-1).float()
        pooled = (words * keep).sum(1) / keep.sum(1)
        return words, pad, pooled

    def forward(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        tt = torch.as_tensor(t, dtype=torch.float32, device=x.device).expand(x.shape[0])
        words, pad, pooled = self._words(label, x.shape[0], x.device)
        cond = self.time(networks.time_features(tt, 64)) + self.pooled(pooled)
        h = self.inp(x)
        for i, block in enumerate(self.blocks):
            h = block(h, cond)
            if i % 2 == 1:
                h = self.cross[i // 2](h, words, pad)
        return self.out(h)


@dataclass
class History:
    """Losses per step and the wall-clock seconds of a training run."""

    losses: list = field(default_factory=list)
    seconds: float = 0.0


def train(
    latents: torch.Tensor,
    ids: list[torch.Tensor],
    text: TextEncoder,
    steps: int = 6000,
    batch_size: int = 128,
    lr: float = 1e-3,
    drop: float = 0.1,
    seed: int = 0,
    progress: bool = True,
    **config,
) -> tuple[LatentDenoiser, History]:
    """Train a LatentDenoiser on unit-variance latents [N, 4, 8, 8], ids[n] = [K, L] caption ids of image n.

    Each step: a batch of latents, one caption each (a fraction `drop` replaced by the empty
    prompt), t ~ U(0, 1) on the cosine schedule, the v target a eps - s z. Adam with a cosine
    decay and a weight average (0.999) returned as the network; stops at the first non-finite loss.
    """
    check_images(latents, "latents", size=(8, 8), largest=1e4)
    if len(ids) != len(latents):
        raise ValueError(f"ids must hold the caption ids of each of the {len(latents)} latents, got {len(ids)}")
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    drop = check_number(drop, "drop", low=0.0)
    if not drop < 1.0:
        raise ValueError(f"drop must lie in [0, 1), the fraction of prompts dropped, got {drop!r}")
    gen = torch.Generator().manual_seed(check_seed(seed))
    torch.manual_seed(seed)
    net = LatentDenoiser(text, in_channels=latents.shape[1], **config)
    average = copy.deepcopy(net).requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    cosine = schedules.cosine()
    history, start = History(), time.perf_counter()
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="latent denoiser training")
    net.train()
    for step in iterator:
        batch = torch.randint(len(latents), (min(batch_size, len(latents)),), generator=gen)
        z = latents[batch]
        text_ids = torch.stack([ids[i][int(torch.randint(len(ids[i]), (1,), generator=gen))] for i in batch.tolist()])
        dropped = torch.rand(len(batch), generator=gen) < drop
        text_ids[dropped] = 0
        t = torch.rand(len(batch), generator=gen)
        eps = torch.randn(z.shape, generator=gen)
        a, s = cosine.coefficients(t, like=z)
        loss = F.mse_loss(net(a * z + s * eps, t, label=text_ids), a * eps - s * z)
        if not torch.isfinite(loss):
            raise ValueError(f"the loss became {loss.item()} at step {step + 1} (lr={lr!r} may be too large)")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))  # a short memory at first
            for p_avg, p in zip(average.parameters(), net.parameters(), strict=True):
                if p.requires_grad:
                    p_avg.lerp_(p, 1 - decay)
        history.losses.append(loss.item())
    history.seconds = time.perf_counter() - start
    return average.eval(), history
