"""Draw docs/images/hero.png, the README's picture: noising a digit, then what three denoisers
make from the same noise (the CNN, the ELS machine and its patch mosaic, the ideal machine).

    python docs/make_hero.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import elslib  # noqa: E402
from elslib.plots import show_image, show_mosaic  # noqa: E402

OUT = Path(__file__).resolve().parent / "images" / "hero.png"
SEED = 3


def main():
    images, _ = elslib.data.load("mnist")
    sched = elslib.schedules.cosine()
    x0 = images[:1]
    eps = elslib.sampling.noise_like(x0.shape, seed=SEED)
    times = [0.0, 0.3, 0.55, 0.8, 1.0]

    noise = elslib.sampling.noise_like((1, 1, 32, 32), seed=SEED)
    meta = elslib.pretrained.metadata("resnet-zeros")
    scales = elslib.calibration.ScaleSchedule.from_dict(meta["scales"])
    cnn = elslib.networks.as_denoiser(elslib.pretrained.load("resnet-zeros", device="cpu"))
    els = elslib.machines.ELSDenoiser(images, patch_size=scales, padding="zeros")
    ideal = elslib.machines.IdealDenoiser(images)
    out = {name: elslib.sampling.ddim(den, noise, progress=False) for name, den in [("cnn", cnn), ("els", els)]}
    out["ideal"] = elslib.sampling.ddim(ideal, noise, progress=False)
    r = float(elslib.metrics.pearson_r(out["els"], out["cnn"])[0])
    explanation = els.explain(out["els"], 0.05)

    fig, axes = plt.subplots(1, 9, figsize=(13.5, 2.0), gridspec_kw=dict(width_ratios=[1] * 5 + [0.25, 1, 1, 1]))
    for ax, t in zip(axes[:5], times, strict=True):
        show_image(ax, sched.add_noise(x0, t, eps)[0], f"t = {t:g}")
    axes[5].axis("off")
    axes[5].annotate("", xy=(1, 0.5), xytext=(0, 0.5), xycoords="axes fraction", arrowprops=dict(arrowstyle="->"))
    show_image(axes[6], out["cnn"][0], "trained CNN")
    show_image(axes[7], out["els"][0], f"ELS machine (r={r:.2f})")
    show_mosaic(axes[8], explanation.image[0], "its patch sources", image=out["els"][0])
    fig.suptitle("Forward noising (left); the same noise denoised by a CNN and by the training-free ELS machine")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(
        f"wrote {OUT}; ideal machine copied training image at RMS "
        f"{float(elslib.metrics.nearest_neighbours(out['ideal'], images)[0][0]):.3f}"
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
