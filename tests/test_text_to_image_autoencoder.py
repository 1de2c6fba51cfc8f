"""The VAE: its KL term from the closed form of torch.distributions, shapes, a short training."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from elslib import data
from elslib.text_to_image import autoencoder

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_loss_is_reconstruction_plus_beta_times_the_gaussian_kl():
    torch.manual_seed(0)
    vae = autoencoder.VAE(channels=8)
    x = data.load("mnist", n=4)[0]
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (4, autoencoder.LATENT_CHANNELS, 8, 8)
    kl = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean()
    gen = torch.Generator().manual_seed(1)
    total, rec, got = vae.loss(x, beta=0.25, generator=gen)
    assert got.item() == pytest.approx(kl.item(), rel=1e-5)
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=torch.Generator().manual_seed(1))
    assert rec.item() == pytest.approx(((vae.decode(z) - x) ** 2).mean().item(), rel=1e-5)
    assert total.item() == pytest.approx(rec.item() + 0.25 * kl.item(), rel=1e-5)


def test_a_short_training_reconstructs_and_sets_unit_variance_latents():
    images = data.load("mnist", n=600)[0]
    vae, history = autoencoder.train(images[:500], steps=150, batch_size=64, channels=16, progress=False)
    assert sum(history.reconstruction[-5:]) < 0.5 * sum(history.reconstruction[:5])
    z = vae.to_latent(images[:500])
    assert z.shape == (500, 4, 8, 8) and z.std().item() == pytest.approx(1.0, abs=1e-3)
    out = vae.to_image(vae.to_latent(images[500:]))
    assert out.shape == (100, 1, 32, 32) and out.abs().max() <= 1.0
    blank = ((images[500:] - images[:500].mean(0)) ** 2).mean()  # error of the mean training image
    assert ((out - images[500:]) ** 2).mean() < 0.5 * blank


def test_bad_arguments_are_named():
    images = data.load("mnist", n=8)[0]
    with pytest.raises(ValueError, match="beta must be >= 0"):
        autoencoder.train(images, steps=1, beta=-1.0, progress=False)
    with pytest.raises(ValueError, match="the loss became"):
        autoencoder.train(images, steps=20, lr=1e12, channels=8, progress=False)
    vae = autoencoder.VAE(channels=8)
    with pytest.raises(ValueError, match="latents"):
        vae.to_image(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="images"):
        vae.to_latent(torch.zeros(1, 1, 28, 28))
