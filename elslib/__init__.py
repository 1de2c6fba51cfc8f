"""elslib: the helper library of the course on how diffusion models create.

Two layers (docs/architecture.md). The science, one concern per module:

- ``data``: offline datasets as float32 tensors in [-1, 1];
- ``schedules``: the forward noising process (the paper's cosine schedule by default);
- ``denoisers``: the contract every denoiser keeps (``schedule`` + ``D(x_t, t, label) -> x0_hat``),
  and the wrappers ``Conditioned`` and ``Guided``;
- ``sampling``: DDIM and DDPM samplers over any denoiser, under the denoiser's own schedule;
- ``machines``: the closed-form score machines (ideal, local, equivariant, ELS);
- ``networks``, ``training``, ``pretrained``: small CNN denoisers, how to train them, shipped weights;
- ``calibration``, ``metrics``: the patch-size schedule P(t); comparing images;
- ``plots``: image grids, patch mosaics and labelled figures;
- ``receptive``, ``symmetry``: measuring locality (gradient maps) and shift equivariance;
- ``combinatorics``: counting patches and the images a patch mosaic can make;
- ``dynamics``: when the ideal sampler decides its class (speciation) and its image (collapse);
- ``morphogenesis``: a Gray-Scott reaction-diffusion toy (local rules, global form);
- ``reader``: a small digit classifier, to tell whether samples read as digits;
- ``memorisation``: when the machines copy, over training-set size N and patch size P;
- ``quality``, ``reproduce``: do the networks' samples read as digits; the paper's headline
  comparison, CNN vs machines (both imported on demand); ``records``: what long runs measured;
- ``papers``: the figures the course cites from papers, each with its source;
- ``checks``, ``device``: argument checks; CPU or GPU.

The course on top, imported on demand: ``elslib.course`` (fast mode, the setup cell), with
``elslib.course.exercises``, ``elslib.course.student`` and ``elslib.course.widgets``.
"""

import importlib

from . import (
    calibration,
    checks,
    combinatorics,
    data,
    denoisers,
    device,
    dynamics,
    machines,
    metrics,
    morphogenesis,
    networks,
    papers,
    plots,
    pretrained,
    reader,
    receptive,
    records,
    sampling,
    schedules,
    symmetry,
    training,
)

__version__ = "0.1.0"

# Loaded on first use (``elslib.course.pick``), so that ``import elslib`` stays the science alone
# (and not listed in __all__: ``from elslib import *`` loads the science only).
_ON_DEMAND = ("course", "memorisation", "quality", "reproduce")


def __getattr__(name: str):
    if name in _ON_DEMAND:
        return importlib.import_module(f"elslib.{name}")
    raise AttributeError(f"module 'elslib' has no attribute {name!r}")


__all__ = [
    "calibration",
    "checks",
    "combinatorics",
    "data",
    "denoisers",
    "device",
    "dynamics",
    "machines",
    "metrics",
    "morphogenesis",
    "networks",
    "papers",
    "plots",
    "pretrained",
    "quality",
    "reader",
    "receptive",
    "records",
    "reproduce",
    "sampling",
    "schedules",
    "symmetry",
    "training",
    "__version__",
]
