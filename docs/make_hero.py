"""Draw docs/images/hero.png, the README's picture: a digit being noised, then what two
training-free denoisers make from the same noise: the ideal machine (a copy of a training
image) and the ELS machine (a new digit), with the ELS sample's patch mosaic.

    python docs/make_hero.py        # under a minute on a laptop CPU
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
CLASS = 3
N_TRAIN = 1000  # a balanced tenth of each class, as in chapter 00: quick, and the same story


def patch_size(t):
    """Hand-picked P(t), as in chapter 00: large patches at high noise, small ones near the end."""
    return 11 if t > 0.6 else (7 if t > 0.3 else 5)


def main():
    images, labels = elslib.data.load("mnist", n=N_TRAIN)
    sched = elslib.schedules.cosine()
    x0 = images[labels == CLASS][:1]
    eps = elslib.sampling.noise_like(x0.shape, seed=SEED)
    times = [0.0, 0.3, 0.55, 0.8, 1.0]

    noise = elslib.sampling.noise_like((1, 1, 32, 32), seed=SEED)
    ideal = elslib.machines.IdealDenoiser(images, labels=labels)
    els = elslib.machines.ELSDenoiser(images, patch_size=patch_size, padding="zeros", labels=labels)
    copy = elslib.sampling.ddim(ideal, noise, label=CLASS, progress=False)
    new, path = elslib.sampling.ddim(els, noise, label=CLASS, return_trajectory=True, progress=False)
    sources = els.explain(path.x[-2], float(path.times[-2]), label=CLASS).image[0]
    d_copy = float(elslib.metrics.nearest_neighbours(copy, images)[0][0])
    d_new = float(elslib.metrics.nearest_neighbours(new, images)[0][0])

    widths = [1] * len(times) + [0.35, 1, 1, 1]
    fig, axes = plt.subplots(1, len(widths), figsize=(13.5, 2.25), gridspec_kw=dict(width_ratios=widths))
    for ax, t in zip(axes, times, strict=False):
        show_image(ax, sched.add_noise(x0, t, eps)[0], f"t = {t:g}")
    arrow = axes[len(times)]
    arrow.axis("off")
    arrow.annotate("", xy=(1, 0.5), xytext=(0, 0.5), xycoords="axes fraction", arrowprops=dict(arrowstyle="->", lw=2))
    show_image(axes[-3], copy[0], f"ideal machine:\na copy (distance {d_copy:.2f})")
    show_image(axes[-2], new[0], f"ELS machine: new\n(distance {d_new:.2f})")
    show_mosaic(axes[-1], sources, "its patches, coloured\nby source digit", image=new[0])
    fig.suptitle(
        "Noising a digit (left); denoising one noise sample two ways, with no training at all (right). "
        "Distance = RMS to the nearest training image."
    )
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
