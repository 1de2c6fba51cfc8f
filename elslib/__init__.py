"""elslib: the helper library of the course on how diffusion models create.

Submodules, one concern each:

- ``data``: offline datasets as float32 tensors in [-1, 1];
- ``schedules``: the forward noising process (the paper's cosine schedule by default);
- ``sampling``: DDIM and DDPM samplers over any denoiser ``D(x_t, t) -> x0_hat``;
- ``machines``: the closed-form score machines (ideal, local, equivariant, ELS);
- ``plots``: image grids and labelled figures;
- ``device``: CPU or GPU.
"""

from . import checks, data, device, plots, sampling, schedules

__version__ = "0.1.0"

__all__ = ["checks", "data", "device", "plots", "sampling", "schedules", "__version__"]
