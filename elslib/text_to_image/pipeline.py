r"""The whole chain: prompt -> tokens -> text encoder -> DDIM in latent space -> decoder -> image.

``generate(prompts, seeds, steps=20, guidance=3.0)`` runs it:

1. the tokenizer turns each prompt into ids (an unknown word is an error that names it);
2. the seed fixes the starting latent noise [4, 8, 8] (``sampling.noise_like``: same seed, same
   noise, on any device);
3. DDIM walks `steps` steps down the latent denoiser's schedule, each step asking the denoiser
   twice -- with the prompt and with the empty prompt -- and moving by the guided prediction
   x0_hat_w = x0_hat(empty) + w (x0_hat(prompt) - x0_hat(empty));
4. the VAE's decoder turns the final latent into a 32 x 32 image.

Same prompt, seed, steps, guidance and weights: the same image, to the last bit, on one machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import denoisers, networks, records, sampling
from ..checks import check_number, check_positive_int, check_seed
from .autoencoder import VAE
from .clip import Clip
from .latent import LatentDenoiser
from .tokenizer import Tokenizer


@dataclass
class Pipeline:
    """The trained pieces: tokenizer, CLIP encoders, VAE and latent denoiser."""

    tokenizer: Tokenizer
    clip: Clip
    vae: VAE
    denoiser: LatentDenoiser

    def guided(self, guidance: float) -> denoisers.Guided:
        """The latent denoiser as a denoiser (label = token ids) under classifier-free guidance."""
        return denoisers.Guided(networks.as_denoiser(self.denoiser), guidance)


def _check_request(pipeline, prompts, seeds, steps, guidance):
    if not isinstance(pipeline, Pipeline):
        raise ValueError(f"pipeline must be a text_to_image.Pipeline, got {type(pipeline).__name__}")
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    seeds = [check_seed(s, "seeds") for s in seeds]
    if len(prompts) == 1 and len(seeds) > 1:
        prompts = prompts * len(seeds)  # one prompt, several seeds
    if len(seeds) == 1 and len(prompts) > 1:
        seeds = seeds * len(prompts)  # several prompts, one seed
    if len(prompts) != len(seeds) or not prompts:
        raise ValueError(
            f"give one seed per prompt (or one of either), got {len(prompts)} prompts and {len(seeds)} seeds"
        )
    steps = check_positive_int(steps, "steps")
    guidance = check_number(guidance, "guidance", low=0.0)
    ids = pipeline.tokenizer.encode(prompts)  # names unknown words before any work
    c = pipeline.vae.latent_channels
    noise = sampling.seeded_noise(seeds, (c, 8, 8))
    return ids, noise, steps, guidance


def generate(prompts, seeds, steps: int = 20, guidance: float = 3.0, pipeline: Pipeline | None = None):
    """Images [B, 1, 32, 32] in [-1, 1] for `prompts` (a string or a list) from `seeds`.

    One seed per prompt, or one prompt for several seeds, or one seed for several prompts.
    guidance: 0 ignores the prompt, 1 is the plain conditional model, larger follows it harder.
    pipeline: the trained pieces (default: the shipped ones).
    """
    pipeline = pipeline if pipeline is not None else load()
    ids, noise, steps, guidance = _check_request(pipeline, prompts, seeds, steps, guidance)
    latents = sampling.ddim(pipeline.guided(guidance), noise, steps=steps, label=ids, progress=False)
    return pipeline.vae.to_image(latents)


def predictions(prompt: str, seed: int, steps: int = 20, guidance: float = 3.0, pipeline: Pipeline | None = None):
    """What the image looks like along the way: the decoded x0_hat after each step, [steps, 1, 32, 32].

    Row i is the decoder's picture of the denoiser's prediction at step i + 1. The last row is
    the image ``generate`` returns, up to float rounding (about 1e-6).
    """
    pipeline = pipeline if pipeline is not None else load()
    ids, noise, steps, guidance = _check_request(pipeline, [prompt], [seed], steps, guidance)
    _, traj = sampling.ddim(
        pipeline.guided(guidance), noise, steps=steps, label=ids, progress=False, return_trajectory=True
    )
    return pipeline.vae.to_image(traj.x0_hat[:, 0])


WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "text-to-image.pt"
FORMAT = "elslib-text-to-image-1"


def save(pipe: Pipeline, path, meta: dict | None = None) -> Path:
    """Write the pipeline (configs, weights, vocabulary) to `path` and its metadata, with the file's
    SHA-256, to the .json beside it."""
    state = {
        "format": FORMAT,
        "vocabulary": pipe.tokenizer.vocabulary[3:],
        "length": pipe.tokenizer.length,
        "clip": {
            "config": pipe.clip.config,
            "weights": {k: v.detach().cpu() for k, v in pipe.clip.state_dict().items()},
        },
        "vae": {"config": pipe.vae.config, "weights": {k: v.detach().cpu() for k, v in pipe.vae.state_dict().items()}},
        "denoiser": {
            "config": pipe.denoiser.config,
            "weights": {k: v.detach().cpu() for k, v in pipe.denoiser.state_dict().items()},
        },
    }
    return write_checked(state, path, meta)


def write_checked(state: dict, path, meta: dict | None) -> Path:
    """Save `state` to `path` whole (a new file, then renamed) and `meta` with the file's SHA-256
    to the .json beside it."""
    from ..training import file_sha256

    path = records.save_whole(state, path)
    info = {**(meta or {}), "sha256": file_sha256(path)}
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return path


def read_checked(path: Path, fmt: str, what: str, train_hint: str) -> dict:
    """The state stored at `path` by ``write_checked``, checked against its recorded SHA-256 and
    its format. FileNotFoundError (with `train_hint`) when missing; ValueError naming the file
    when damaged."""
    from ..training import verify_sha256

    if not path.exists():
        raise FileNotFoundError(f"no {what} at {path}; {train_hint}")
    meta = path.with_suffix(".json")
    verify_sha256(path, json.loads(meta.read_text()).get("sha256") if meta.exists() else None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != fmt:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"format {found!r}, not {fmt!r}")
    except Exception as err:
        raise ValueError(f"{what} {path} are damaged: {err}") from err
    return state


def load(path=None) -> Pipeline:
    """The pipeline stored at `path` (default: the shipped one), checked against its SHA-256."""
    path = WEIGHTS if path is None else Path(path)
    hint = (
        "train them with `python -m elslib train text-to-image` (or build a Pipeline from clip.train, "
        "autoencoder.train and latent.train and pass it as pipeline=)"
    )
    state = read_checked(path, FORMAT, "text-to-image weights", hint)
    try:
        tok = Tokenizer(state["vocabulary"], state["length"])
        encoders = Clip(tok, **state["clip"]["config"])
        encoders.load_state_dict(state["clip"]["weights"])
        vae = VAE(**state["vae"]["config"])
        vae.load_state_dict(state["vae"]["weights"])
        net = LatentDenoiser(encoders.text, **state["denoiser"]["config"])
        net.load_state_dict(state["denoiser"]["weights"])
    except Exception as err:  # any layout problem: name the file, never half-load it
        raise ValueError(f"text-to-image weights {path} are damaged: {err}") from err
    return Pipeline(tok, encoders.eval(), vae.eval(), net.eval())
