r"""Overfitting, shown: the same latent denoiser trained on ten digits copies them.

Chapter 03 proved that the *ideal* denoiser of a training set can only return its training
images, and chapter 09 measured when machines copy. A network is pushed towards that ideal
denoiser by its loss; with 4,000 training digits it cannot get there and creates, but with ten
it can. ``train`` fits the shipped pipeline's latent denoiser architecture, with the same recipe
and the same frozen text encoder, to the first ten digits of the course's class-balanced order
(one of each class, all among the pipeline's 4,000 training digits) and their captions. Its
samples are then measured as chapters 03 and 09 measure copies: the RMS distance from each
sample to its nearest training digit.

Only the latent denoiser is new, so only its weights are stored (elslib/weights/
text-to-image-10.pt, its SHA-256 in the .json beside it); ``load`` puts it into the shipped
pipeline in place of the 4,000-digit one. Trained by `python -m elslib train text-to-image-10`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from .. import data, pretrained
from ..checks import check_positive_int
from . import captions, latent
from .pipeline import Pipeline, read_checked, write_checked
from .pipeline import load as load_pipeline

NAME = "text-to-image-10"
WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / f"{NAME}.pt"
FORMAT = "elslib-latent-denoiser-1"
RECIPE = dict(n_images=10, captions_per_image=4, steps=1500, seed=0)


def training_digits(n: int = RECIPE["n_images"]) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n digits of the class-balanced order [n, 1, 32, 32] and their labels (n = 10: one per class)."""
    return data.load("mnist", n=check_positive_int(n, "n"))


def train(out_dir=None, record: bool = False, progress: bool = True, steps: int | None = None) -> Path:
    """Train the latent denoiser on the ten digits; write its weights and metadata.

    out_dir: default ./trained-networks; record: write the package's shipped file instead.
    steps: the recipe's by default.
    """
    if record and out_dir is not None:
        raise ValueError("give out_dir or record, not both: record writes the package's shipped weights")
    steps = RECIPE["steps"] if steps is None else check_positive_int(steps, "steps")
    path = WEIGHTS if record else Path(out_dir or "trained-networks") / f"{NAME}.pt"
    pipe = load_pipeline()
    images, labels = training_digits()
    caps = captions.captions(images, labels, per_image=RECIPE["captions_per_image"], seed=RECIPE["seed"])
    ids = [pipe.tokenizer.encode(c) for c in caps]
    with torch.no_grad():
        latents = pipe.vae.to_latent(images)
    start = time.perf_counter()
    net, history = latent.train(
        latents, ids, pipe.clip.text, steps=steps, seed=RECIPE["seed"], progress=progress, **_architecture(pipe)
    )
    meta = {
        "name": NAME,
        "command": f"python -m elslib train {NAME}" + (" --record" if record else ""),
        "recipe": {**RECIPE, "steps": steps},
        "train_images": len(images),
        "final_denoiser_loss": round(sum(history.losses[-100:]) / len(history.losses[-100:]), 4),
        "train_seconds": round(time.perf_counter() - start, 1),
        "trained_on": f"{pretrained.cpu_name()}, {torch.get_num_threads()} threads",
        "torch": str(torch.__version__),
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d"),
    }
    return save(net, path, meta)


def _architecture(pipe: Pipeline) -> dict:
    config = dict(pipe.denoiser.config)
    config.pop("in_channels")
    return config


def save(net: latent.LatentDenoiser, path, meta: dict) -> Path:
    """Write a latent denoiser's config and weights (without its frozen text encoder, which the
    shipped pipeline holds) to `path`, and `meta` with the file's SHA-256 to the .json beside it."""
    weights = {k: v.detach().cpu() for k, v in net.state_dict().items() if not k.startswith("text.")}
    return write_checked({"format": FORMAT, "config": net.config, "weights": weights}, path, meta)


def load(path=None) -> Pipeline:
    """The shipped pipeline with its latent denoiser replaced by the ten-digit one stored at `path`."""
    path = WEIGHTS if path is None else Path(path)
    what = "ten-digit latent denoiser weights"
    state = read_checked(path, FORMAT, what, f"train them with `python -m elslib train {NAME}`")
    pipe = load_pipeline()
    try:
        net = latent.LatentDenoiser(pipe.clip.text, **state["config"])
        missing, unexpected = net.load_state_dict(state["weights"], strict=False)
        if unexpected or any(not k.startswith("text.") for k in missing):
            raise ValueError(f"weights do not fit the architecture (missing {missing}, unexpected {unexpected})")
    except Exception as err:  # name the file, never half-load it
        raise ValueError(f"{what} {path} are damaged: {err}") from err
    return Pipeline(pipe.tokenizer, pipe.clip, pipe.vae, net.eval())
