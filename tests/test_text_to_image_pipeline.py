"""The latent denoiser and the whole prompt-to-image chain, on a pipeline trained for seconds."""

from __future__ import annotations

import json

import pytest
import torch

from elslib import data
from elslib.text_to_image import Tokenizer, autoencoder, captions, clip, latent, pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    images, labels = data.load("mnist", n=300)
    caps = captions.captions(images, labels, per_image=2)
    tok = Tokenizer.from_captions([c for r in caps for c in r])
    encoders, _ = clip.train(images, caps, tok, steps=20, batch_size=64, progress=False)
    vae, _ = autoencoder.train(images, steps=20, batch_size=64, channels=8, progress=False)
    z = vae.to_latent(images)
    ids = [tok.encode(c) for c in caps]
    net, history = latent.train(z, ids, encoders.text, steps=30, batch_size=64, channels=16, blocks=2, progress=False)
    assert len(history.losses) == 30
    return pipeline.Pipeline(tok, encoders, vae, net)


def test_the_empty_prompt_is_the_unconditional_prediction(tiny):
    net = tiny.denoiser
    with torch.no_grad():
        for p in net.null, net.out[-1].weight:  # make the output depend on the condition
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
        x = torch.randn(3, 4, 8, 8)
        empty = torch.zeros(3, 5, dtype=torch.long)
        torch.testing.assert_close(net(x, 0.5, label=empty), net(x, 0.5))
        ids = tiny.tokenizer.encode(["a seven", "a thick 3", "two"])
        assert (net(x, 0.5, label=ids) - net(x, 0.5)).abs().max() > 1e-4
        # more padding at the end does not change a prompt's prediction
        longer = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], dim=1)[:, :16]
        torch.testing.assert_close(net(x, 0.5, label=longer), net(x, 0.5, label=ids), atol=1e-5, rtol=0)


def test_the_text_encoder_stays_frozen(tiny):
    before = {k: v.clone() for k, v in tiny.clip.text.state_dict().items()}
    assert not any(p.requires_grad for p in tiny.denoiser.text.parameters())
    for k, v in tiny.clip.text.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_same_prompt_seed_steps_and_guidance_give_the_same_image(tiny):
    prompts = ["a thick seven", "handwritten digit 2"]
    a = pipeline.generate(prompts, [0, 1], steps=5, guidance=3.0, pipeline=tiny)
    b = pipeline.generate(prompts, [0, 1], steps=5, guidance=3.0, pipeline=tiny)
    assert a.shape == (2, 1, 32, 32) and a.abs().max() <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, pipeline.generate(prompts, [0, 2], steps=5, guidance=3.0, pipeline=tiny))
    # one prompt, several seeds; one seed, several prompts
    assert torch.equal(pipeline.generate("a thick seven", [0, 1], steps=5, pipeline=tiny)[0], a[0])
    # guidance 0 ignores the prompt
    g0 = pipeline.generate(prompts, 4, steps=5, guidance=0.0, pipeline=tiny)
    assert torch.equal(g0[0], g0[1])
    # the last decoded prediction is the image
    steps = pipeline.predictions("a thick seven", 0, steps=5, guidance=3.0, pipeline=tiny)
    assert steps.shape == (5, 1, 32, 32)
    torch.testing.assert_close(steps[-1], a[0])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(prompts="a purple seven", seeds=0), "'purple'"),
        (dict(prompts=["a seven", "a two"], seeds=[0, 1, 2]), "one seed per prompt"),
        (dict(prompts="a seven", seeds=-1), "seeds"),
        (dict(prompts="a seven", seeds=0, steps=0), "steps must be an integer >= 1"),
        (dict(prompts="a seven", seeds=0, guidance=-1.0), "guidance"),
    ],
)
def test_bad_requests_are_named(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipeline.generate(pipeline=tiny, **kwargs)


def test_a_saved_pipeline_loads_to_the_same_images_and_a_damaged_one_is_named(tiny, tmp_path):
    path = pipeline.save(tiny, tmp_path / "t2i.pt", meta={"note": "test"})
    again = pipeline.load(path)
    a = pipeline.generate(["a thick seven", "two"], [3, 4], steps=4, pipeline=tiny)
    b = pipeline.generate(["a thick seven", "two"], [3, 4], steps=4, pipeline=again)
    # the same weights; attention may take another kernel for freshly loaded (trainable) weights
    torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        pipeline.generate(["a thick seven", "two"], [3, 4], steps=4, pipeline=again), b, rtol=0, atol=0
    )
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        pipeline.load(path)
    path.with_suffix(".json").unlink()  # without a checksum the damage shows when reading
    path.write_bytes(b"not a pipeline")
    with pytest.raises(ValueError, match="t2i.pt are damaged"):
        pipeline.load(path)
    with pytest.raises(FileNotFoundError, match="python -m elslib train text-to-image"):
        pipeline.load(tmp_path / "none.pt")


def test_the_recipe_trains_every_stage_and_writes_a_loadable_pipeline(tmp_path):
    from elslib.text_to_image import recipe

    path = recipe.train(out_dir=tmp_path, scale=0.005, progress=False)
    assert path == tmp_path / "text-to-image.pt"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["recipe"]["denoiser_steps"] == 15 and set(meta["train_seconds"]) == {"clip", "vae", "denoiser"}
    assert 0.0 <= meta["zero_shot_accuracy_held_out"] <= 1.0 and len(meta["sha256"]) == 64
    images = pipeline.generate(["a seven", "a thick 2"], [0, 1], steps=3, pipeline=pipeline.load(path))
    assert images.shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="give out_dir or record"):
        recipe.train(out_dir=tmp_path, record=True)
