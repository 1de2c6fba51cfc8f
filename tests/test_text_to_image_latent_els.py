"""The latent-ELS comparison: its numbers are Pearson's r of the samples it returns, from the course's machines."""

from __future__ import annotations

import pytest
import torch

from elslib import machines, metrics, sampling
from elslib.text_to_image import latent_els, pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shipped():
    return pipeline.load()


@pytest.fixture(scope="module")
def result(shipped):
    return latent_els.compare(
        seeds=(0, 1, 2), calibration_seeds=(1000,), conditional=True, steps=6, pipe=shipped, progress=False
    )


def test_training_latents_are_the_vae_latents_of_the_training_digits(shipped):
    latents, labels = latent_els.training_latents(shipped)
    assert latents.shape == (4000, 4, 8, 8) and labels.shape == (4000,)
    assert abs(float(latents.std()) - 1.0) < 0.05  # unit variance, as the latent denoiser was trained


def test_pixel_r_is_pearson_r_of_the_decoded_samples(result):
    cnn = result["samples"]["CNN"]
    for kind in ("ELS", "LS", "IS"):
        again = metrics.pearson_r(result["samples"][kind], cnn)
        assert torch.allclose(again, torch.tensor(result["r_pixels"][kind]), atol=1e-4)
        assert result["median_pixels"][kind] == pytest.approx(float(again.median()), abs=1e-3)


def test_the_ideal_machines_sample_is_its_own_from_the_same_noise(shipped, result):
    # an independent run of the class-conditional ideal machine on the same latents and seeds
    latents, labels = latent_els.training_latents(shipped)
    ideal = machines.IdealDenoiser(latents, labels=labels)
    noise = torch.cat([sampling.noise_like((1, 4, 8, 8), seed=s) for s in (0, 1, 2)])
    z = sampling.ddim(ideal, noise, steps=6, label=[0, 1, 2], progress=False)
    assert torch.allclose(shipped.vae.to_image(z), result["samples"]["IS"], atol=1e-5)


def test_the_calibrated_sizes_are_odd_and_on_the_grid(result):
    sizes = result["scales"]["patch_sizes"]
    assert len(sizes) == 6 and set(sizes) <= set(latent_els.PATCH_SIZES)


def test_overlapping_seeds_are_refused(shipped):
    with pytest.raises(ValueError, match="must not overlap"):
        latent_els.compare(seeds=(0, 1), calibration_seeds=(1,), pipe=shipped, progress=False)
    with pytest.raises(ValueError, match="conditional must be True or False"):
        latent_els.compare(seeds=(0,), conditional="yes", pipe=shipped, progress=False)


def test_the_table_has_a_row_per_result(result):
    text = latent_els.table([result])
    assert text.count("\n") == 2 and "a handwritten <digit>" in text
