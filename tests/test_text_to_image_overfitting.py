"""The ten-digit latent denoiser: one digit per class, stored without the text encoder, checked on load."""

from __future__ import annotations

import json

import pytest
import torch

from elslib.text_to_image import latent, overfitting, pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def test_training_digits_are_one_per_class_among_the_pipelines_training_digits():
    from elslib import data

    images, labels = overfitting.training_digits()
    assert sorted(labels.tolist()) == list(range(10))
    everything, _ = data.load("mnist")
    assert torch.equal(images, everything[:10])  # a prefix of the 4,000 the pipeline was trained on


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    shipped = pipeline.load()
    net = latent.LatentDenoiser(shipped.clip.text, **shipped.denoiser.config).eval()
    with torch.no_grad():
        net.out[-1].weight.normal_()  # something other than the zero initialisation
    path = overfitting.save(net, tmp_path_factory.mktemp("few") / "few.pt", {"name": "test"})
    return net, path


def test_a_stored_denoiser_loads_back_into_the_shipped_pipeline(stored):
    net, path = stored
    pipe = overfitting.load(path)
    x, t = torch.randn(2, 4, 8, 8), torch.tensor([0.3, 0.7])
    ids = pipe.tokenizer.encode(["a handwritten seven", "3"])
    assert torch.equal(pipe.denoiser(x, t, label=ids), net(x, t, label=ids))
    state = torch.load(path, weights_only=True)
    assert not any(k.startswith("text.") for k in state["weights"])  # the shipped pipeline holds the encoder


def test_a_damaged_file_is_named(stored, tmp_path):
    _, path = stored
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    meta = json.loads(path.with_suffix(".json").read_text())
    bad.with_suffix(".json").write_text(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))
    with pytest.raises(ValueError, match="bad.pt"):
        overfitting.load(bad)
    bad.with_suffix(".json").write_text(json.dumps(meta))  # a checksum that does not match
    with pytest.raises(ValueError, match="SHA-256"):
        overfitting.load(bad)


def test_a_missing_file_says_how_to_train_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m elslib train text-to-image-10"):
        overfitting.load(tmp_path / "none.pt")


def test_the_shipped_ten_digit_denoiser_copies_its_training_digits():
    from elslib import metrics
    from elslib.memorisation import copy_threshold
    from elslib.text_to_image import generate
    from elslib.text_to_image.captions import DIGIT_WORDS

    few = overfitting.load()
    images, labels = overfitting.training_digits()
    prompts = [f"a handwritten {DIGIT_WORDS[d]}" for d in range(10)]
    samples = generate(prompts, seeds=[0] * 10, pipeline=few)
    # what the decoder can draw of each training digit: its reconstruction through the VAE
    drawn = few.vae.to_image(few.vae.to_latent(images))
    nn, nearest = metrics.nearest_neighbours(samples, drawn)
    assert (labels[nearest] == torch.arange(10)).all()  # each prompt returns its digit's one image
    assert (nn < copy_threshold()).float().mean() >= 0.8
    full = generate(prompts, seeds=[0] * 10)  # the 4,000-digit pipeline, same prompts and seeds
    nn_full, _ = metrics.nearest_neighbours(full, drawn)
    assert nn_full.median() > 2 * nn.median()
