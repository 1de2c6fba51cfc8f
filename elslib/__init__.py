"""elslib: the helper library of the course on how diffusion models create.

Submodules, one concern each:

- ``data``: offline datasets as float32 tensors in [-1, 1];
- ``schedules``: the forward noising process (the paper's cosine schedule by default);
- ``sampling``: DDIM and DDPM samplers over any denoiser ``D(x_t, t) -> x0_hat``;
- ``machines``: the closed-form score machines (ideal, local, equivariant, ELS);
- ``networks``, ``training``, ``pretrained``: small CNN denoisers, how to train them, shipped weights;
- ``calibration``, ``metrics``: the patch-size schedule P(t); comparing images;
- ``plots``: image grids, patch mosaics and labelled figures;
- ``receptive``, ``symmetry``: measuring locality (gradient maps) and shift equivariance;
- ``combinatorics``: counting patches and the images a patch mosaic can make;
- ``morphogenesis``: a Gray-Scott reaction-diffusion toy (local rules, global form);
- ``reproduce``: the paper's headline comparison, CNN vs machines (imported on demand);
- ``course``, ``exercises``: fast mode and checked exercises for the chapters;
- ``device``: CPU or GPU.

The interactive explorers are imported on demand: ``from elslib import widgets``.
"""

from . import (
    calibration,
    checks,
    combinatorics,
    course,
    data,
    device,
    exercises,
    machines,
    metrics,
    morphogenesis,
    networks,
    plots,
    pretrained,
    receptive,
    sampling,
    schedules,
    symmetry,
    training,
)

__version__ = "0.1.0"

__all__ = [
    "calibration",
    "checks",
    "combinatorics",
    "course",
    "data",
    "device",
    "exercises",
    "machines",
    "metrics",
    "morphogenesis",
    "networks",
    "plots",
    "pretrained",
    "receptive",
    "sampling",
    "schedules",
    "symmetry",
    "training",
    "__version__",
]
