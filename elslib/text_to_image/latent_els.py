r"""The open question, measured: does the ELS machine predict the latent denoiser?

The course showed that a trained CNN on pixels draws, from a seed, nearly what the ELS machine
draws from that seed: a mosaic of training patches, with the patch size P(t) calibrated on the
network. A text-to-image system's denoiser works on the VAE's latents instead. Nothing in the
theory needs pixels: the machine only needs training images, and the latents of the training
digits [N, 4, 8, 8] are images too (4 channels, 8 x 8). So we can ask the same question there.

``compare`` does the whole measurement:

1. the latents of the pipeline's 4,000 training digits (``training_latents``);
2. P(t) calibrated on the latent denoiser's own DDIM trajectories (``calibration.calibrate``,
   zero padding as the denoiser pads, P = 1, 3, ..., 15: at 15 every patch of an 8 x 8 latent
   covers the whole latent), from calibration seeds that are not the evaluation seeds;
3. from each evaluation seed, the latent denoiser's sample and the ELS machine's, the local
   machine's (LS, same P(t)) and the ideal machine's (IS), all on the same noise;
4. the median over seeds of Pearson's r between each machine's sample and the network's, in
   latent space and after decoding both to pixels.

Unconditional: the denoiser with the empty prompt (what guidance 0 asks for) against machines
on all training latents. Conditional: the denoiser with the prompt "a handwritten <digit>"
(guidance 1) against class-conditional machines, which draw patches from that digit's latents
only; seed i asks for digit i mod 10.
"""

from __future__ import annotations

import time

import torch

from .. import calibration, data, denoisers, machines, metrics, networks, sampling
from ..checks import check_positive_int, check_seed, check_sequence
from .captions import DIGIT_WORDS
from .recipe import N_TRAIN

PATCH_SIZES = (1, 3, 5, 7, 9, 11, 13, 15)
SEEDS = tuple(range(32))
CALIBRATION_SEEDS = tuple(range(1000, 1008))


def training_latents(pipe) -> tuple[torch.Tensor, torch.Tensor]:
    """The unit-variance latents [N_TRAIN, 4, 8, 8] of the digits the pipeline was trained on, and their labels."""
    images, labels = data.load("mnist")
    with torch.no_grad():
        return pipe.vae.to_latent(images[:N_TRAIN]), labels[:N_TRAIN]


def prompt_ids(pipe, digits) -> torch.Tensor:
    """Token ids [B, L] of "a handwritten <digit>" for each digit."""
    return pipe.tokenizer.encode([f"a handwritten {DIGIT_WORDS[int(d)]}" for d in digits])


def compare(
    seeds=SEEDS,
    calibration_seeds=CALIBRATION_SEEDS,
    conditional: bool = False,
    steps: int = 20,
    pipe=None,
    progress: bool = True,
) -> dict:
    """Calibrate P(t) on the latent denoiser, sample it and the machines from `seeds`, compare.

    Returns {"conditional", "seeds", "steps", "scales" (P per step, as ScaleSchedule.to_dict),
    "r_latent" and "r_pixels" (machine name -> per-seed r, [S] lists), "median_latent",
    "median_pixels" (machine name -> median r), "samples" (name -> decoded images [S, 1, 32, 32],
    "CNN" for the latent denoiser), "seconds"}.
    """
    from .pipeline import load

    pipe = pipe if pipe is not None else load()
    seeds = [check_seed(s, "seeds") for s in check_sequence(seeds, "seeds")]
    cal_seeds = [check_seed(s, "calibration_seeds") for s in check_sequence(calibration_seeds, "calibration_seeds")]
    if set(seeds) & set(cal_seeds):
        raise ValueError(f"seeds and calibration_seeds must not overlap, got {sorted(set(seeds) & set(cal_seeds))}")
    steps = check_positive_int(steps, "steps")
    if not isinstance(conditional, bool):
        raise ValueError(f"conditional must be True or False, got {conditional!r}")
    start = time.perf_counter()
    latents, labels = training_latents(pipe)
    net = networks.as_denoiser(pipe.denoiser)
    shape = tuple(latents.shape[1:])

    def digits(n: int) -> torch.Tensor:
        return torch.arange(n) % 10

    def network_for(n: int):
        return denoisers.Conditioned(net, prompt_ids(pipe, digits(n))) if conditional else net

    def machine_for(kind: str, n: int, patch_size=None):
        kwargs = {"labels": labels} if conditional else {}
        if kind == "IS":
            den = machines.IdealDenoiser(latents, **kwargs)
        elif kind == "LS":
            den = machines.LocalDenoiser(latents, patch_size=patch_size, **kwargs)
        else:
            den = machines.ELSDenoiser(latents, patch_size=patch_size, padding="zeros", **kwargs)
        return denoisers.Conditioned(den, digits(n).tolist()) if conditional else den

    scales = calibration.calibrate(
        network_for(len(cal_seeds)),
        lambda p: machine_for("ELS", len(cal_seeds), p),
        shape,
        seeds=cal_seeds,
        patch_sizes=PATCH_SIZES,
        steps=steps,
        progress=progress,
    )
    noise = sampling.seeded_noise(seeds, shape)
    found = {"CNN": sampling.ddim(network_for(len(seeds)), noise, steps=steps, progress=False)}
    for kind in ("ELS", "LS", "IS"):
        found[kind] = sampling.ddim(machine_for(kind, len(seeds), scales), noise, steps=steps, progress=progress)
    with torch.no_grad():
        pictures = {k: pipe.vae.to_image(z) for k, z in found.items()}
    r_latent = {k: metrics.pearson_r(found[k], found["CNN"]) for k in ("ELS", "LS", "IS")}
    r_pixels = {k: metrics.pearson_r(pictures[k], pictures["CNN"]) for k in ("ELS", "LS", "IS")}
    return {
        "conditional": conditional,
        "seeds": seeds,
        "steps": steps,
        "scales": scales.to_dict(),
        "r_latent": {k: [round(float(v), 4) for v in r] for k, r in r_latent.items()},
        "r_pixels": {k: [round(float(v), 4) for v in r] for k, r in r_pixels.items()},
        "median_latent": {k: round(float(r.median()), 3) for k, r in r_latent.items()},
        "median_pixels": {k: round(float(r.median()), 3) for k, r in r_pixels.items()},
        "samples": pictures,
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(results: list[dict]) -> str:
    """A Markdown table of the median r, one row per result of ``compare``."""
    lines = [
        "| denoiser asked | seeds | ELS r (latent) | LS r | IS r | ELS r (pixels) | LS r | IS r |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        asked = "a handwritten <digit> (w = 1)" if res["conditional"] else "empty prompt (w = 0)"
        lat, pix = res["median_latent"], res["median_pixels"]
        lines.append(
            f"| {asked} | {len(res['seeds'])} | "
            + " | ".join(f"{d[k]:.2f}" for d in (lat, pix) for k in ("ELS", "LS", "IS"))
            + " |"
        )
    return "\n".join(lines)
