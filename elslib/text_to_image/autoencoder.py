r"""The autoencoder: digits [1, 32, 32] <-> latents [C, 8, 8], where the latent denoiser works.

Large text-to-image systems do not diffuse pixels: a variational autoencoder (VAE) compresses
each image 8x per side into a few latent channels, the denoiser works there (64x fewer
positions), and the decoder turns the final latent back into pixels. Ours compresses 32x32
digits 4x per side into C = 4 channels of 8 x 8 (256 numbers for 1,024 pixels).

We use a VAE, as Stable Diffusion does, rather than a plain autoencoder: the encoder outputs a
mean m and a log-variance for each latent number, the decoder is trained on samples
z = m + exp(logvar / 2) eps, and a small KL term pulls q(z | x) towards N(0, I):

    loss = mean |decode(z) - x|^2 + beta * mean KL( N(m, exp(logvar)) || N(0, 1) ),
    KL = (m^2 + exp(logvar) - 1 - logvar) / 2   per latent number.

Why: a plain autoencoder may put nearby digits at scattered points and use any scale, and a
decoder that has only ever seen the exact encodings can turn a slightly-off latent (all a
denoiser ever produces) into garbage. The noise and the KL term make the decoder robust around
each encoding and keep the latents on one scale. beta is small (1e-3 by default) so the
reconstructions stay sharp. For diffusion the means m are used, divided by their overall
standard deviation over the training set (``scale``), so that latents have unit variance as
the noise schedule assumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_images, check_number, check_positive_int, check_seed

LATENT_CHANNELS = 4


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.SiLU())


class VAE(nn.Module):
    """Encoder 32 -> 16 -> 8 (two stride-2 convolutions) and a mirror-image decoder.

    ``encode(x)`` -> (mean, logvar), each [B, C, 8, 8]; ``decode(z)`` -> [B, 1, 32, 32] in
    [-1, 1] (tanh); ``scale``: the standard deviation of the training latents' means (a buffer,
    set by ``train``), so that ``to_latent(x) = mean / scale`` has unit variance.
    """

    def __init__(self, channels: int = 32, latent_channels: int = LATENT_CHANNELS):
        super().__init__()
        c = channels
        self.config = dict(channels=channels, latent_channels=latent_channels)
        self.latent_channels = latent_channels
        self.encoder = nn.Sequential(
            _block(1, c),
            nn.Conv2d(c, c, 3, stride=2, padding=1),  # 16 x 16
            _block(c, 2 * c),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1),  # 8 x 8
            _block(2 * c, 2 * c),
            nn.Conv2d(2 * c, 2 * latent_channels, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, 2 * c, 3, padding=1),
            _block(2 * c, 2 * c),
            nn.Upsample(scale_factor=2, mode="nearest"),  # 16 x 16
            _block(2 * c, c),
            nn.Upsample(scale_factor=2, mode="nearest"),  # 32 x 32
            _block(c, c),
            nn.Conv2d(c, 1, 3, padding=1),
            nn.Tanh(),
        )
        self.register_buffer("scale", torch.tensor(1.0))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)  # exp() stays finite; the loss keeps it far inside

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    @torch.no_grad()
    def to_latent(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 1, 32, 32] in [-1, 1] -> unit-variance latents [B, C, 8, 8] (the means)."""
        check_images(images, "images", channels=1, size=(32, 32))
        return self.encode(images)[0] / self.scale

    @torch.no_grad()
    def to_image(self, latents: torch.Tensor) -> torch.Tensor:
        """Unit-variance latents [B, C, 8, 8] -> images [B, 1, 32, 32] in [-1, 1]."""
        check_images(latents, "latents", channels=self.latent_channels, size=(8, 8), largest=1e4)
        return self.decode(latents * self.scale)

    def loss(self, x: torch.Tensor, beta: float, generator: torch.Generator | None = None) -> tuple:
        """(total, reconstruction, kl) for a batch, as in the module's notes."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator).to(mean)
        z = mean + (0.5 * logvar).exp() * eps
        rec = F.mse_loss(self.decode(z), x)
        kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()
        return rec + beta * kl, rec, kl


@dataclass
class History:
    """Per-step reconstruction and KL terms, and the wall-clock seconds of a training run."""

    reconstruction: list = field(default_factory=list)
    kl: list = field(default_factory=list)
    seconds: float = 0.0


def train(
    images: torch.Tensor,
    steps: int = 3000,
    batch_size: int = 128,
    lr: float = 2e-3,
    beta: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    **config,
) -> tuple[VAE, History]:
    """Train a VAE on images [N, 1, 32, 32] in [-1, 1]; sets its latent ``scale`` at the end.

    Adam with a cosine decay; stops with a clear error at the first non-finite loss. config:
    ``channels``, ``latent_channels`` for :class:`VAE`.
    """
    check_images(images, "images", channels=1, size=(32, 32))
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    beta = check_number(beta, "beta", low=0.0)
    lr = check_number(lr, "lr", low=0.0, strict=True)
    gen = torch.Generator().manual_seed(check_seed(seed))
    torch.manual_seed(seed)
    vae = VAE(**config)
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history, start = History(), time.perf_counter()
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="VAE training")
    vae.train()
    for step in iterator:
        batch = images[torch.randint(len(images), (min(batch_size, len(images)),), generator=gen)]
        total, rec, kl = vae.loss(batch, beta, gen)
        if not torch.isfinite(total):
            raise ValueError(f"the loss became {total.item()} at step {step + 1} (lr={lr!r} may be too large)")
        opt.zero_grad()
        total.backward()
        opt.step()
        sched.step()
        history.reconstruction.append(rec.item())
        history.kl.append(kl.item())
    vae.eval()
    with torch.no_grad():
        means = torch.cat([vae.encode(images[i : i + 512])[0] for i in range(0, len(images), 512)])
        vae.scale.fill_(float(means.std()))
    history.seconds = time.perf_counter() - start
    return vae, history
