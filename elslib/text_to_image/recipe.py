"""How the shipped text-to-image pipeline is trained: ``python -m elslib train text-to-image``.

Four stages on MNIST-5000 (the first 4,000 digits; the other 1,000 are held out for the
zero-shot test), each seeded: captions (4 per digit), the CLIP encoders, the VAE, then the latent
denoiser on the VAE's latents with the frozen text encoder. The metadata records each stage's
time and the zero-shot accuracy on the held-out digits.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from .. import data, pretrained
from ..checks import check_positive_int
from . import autoencoder, captions, clip, latent, pipeline
from .tokenizer import Tokenizer

NAME = "text-to-image"
N_TRAIN = 4000
RECIPE = dict(captions_per_image=4, clip_steps=500, vae_steps=1500, denoiser_steps=3000, seed=0)


def train(out_dir=None, record: bool = False, progress: bool = True, scale: float = 1.0) -> Path:
    """Train every stage and write ``text-to-image.pt`` and ``.json`` to `out_dir`.

    out_dir: default ./trained-networks; record: write the package's shipped weights instead (for
    whoever updates the course). scale: multiply every stage's steps (a quick look: 0.05).
    """
    if record and out_dir is not None:
        raise ValueError("give out_dir or record, not both: record writes the package's shipped weights")
    if not (isinstance(scale, (int, float)) and 0 < scale <= 10):
        raise ValueError(f"scale must be a number in (0, 10], got {scale!r}")
    path = pipeline.WEIGHTS if record else Path(out_dir or "trained-networks") / f"{NAME}.pt"
    steps = {k: check_positive_int(max(1, round(RECIPE[k] * scale)), k) for k in RECIPE if k.endswith("_steps")}
    seed = RECIPE["seed"]
    images, labels = data.load("mnist")
    train_x, train_y = images[:N_TRAIN], labels[:N_TRAIN]
    caps = captions.captions(train_x, train_y, per_image=RECIPE["captions_per_image"], seed=seed)
    tok = Tokenizer.from_captions([c for row in caps for c in row])
    seconds = {}
    start = time.perf_counter()
    encoders, _ = clip.train(train_x, caps, tok, steps=steps["clip_steps"], seed=seed, progress=progress)
    seconds["clip"] = round(time.perf_counter() - start, 1)
    accuracy = float((clip.zero_shot(encoders, images[N_TRAIN:]) == labels[N_TRAIN:]).float().mean())
    start = time.perf_counter()
    vae, history = autoencoder.train(train_x, steps=steps["vae_steps"], seed=seed, progress=progress)
    seconds["vae"] = round(time.perf_counter() - start, 1)
    held = vae.to_image(vae.to_latent(images[N_TRAIN:]))
    rmse = float((held - images[N_TRAIN:]).square().mean().sqrt())
    start = time.perf_counter()
    ids = [tok.encode(c) for c in caps]
    net, losses = latent.train(
        vae.to_latent(train_x), ids, encoders.text, steps=steps["denoiser_steps"], seed=seed, progress=progress
    )
    seconds["denoiser"] = round(time.perf_counter() - start, 1)
    meta = {
        "name": NAME,
        "command": f"python -m elslib train {NAME}" + (" --record" if record else ""),
        "recipe": {**RECIPE, **steps},
        "train_images": N_TRAIN,
        "zero_shot_accuracy_held_out": round(accuracy, 4),
        "vae_rmse_held_out": round(rmse, 4),
        "final_denoiser_loss": round(sum(losses.losses[-100:]) / len(losses.losses[-100:]), 4),
        "train_seconds": seconds,
        "trained_on": f"{pretrained.cpu_name()}, {torch.get_num_threads()} threads",
        "torch": str(torch.__version__),
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d"),
    }
    return pipeline.save(pipeline.Pipeline(tok, encoders, vae, net), path, meta)
