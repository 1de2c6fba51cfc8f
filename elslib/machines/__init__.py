"""Score machines: the closed-form optimal denoisers of Kamb & Ganguli (design.md, section 2).

Each machine is the best possible denoiser under one constraint, and each output pixel is a
softmax-weighted average of candidate values from the training set:

- :class:`IdealDenoiser` (IS): no constraint; candidates are whole training images. Memorises.
- :class:`LocalDenoiser` (LS): a pixel sees only its P x P patch; candidates are the patches at
  the same place in every training image.
- :class:`EquivariantDenoiser` (ES): commutes with shifts; candidates are all circular shifts
  of all training images.
- :class:`ELSDenoiser` (ELS): local and equivariant, as a CNN is; candidates are training
  patches from anywhere (with zero padding: limited near the border). Creates patch mosaics.

All are called as ``den(x_t, t, label=None) -> x0_hat`` and opened up with ``den.explain``.
Modules, one concern each: ``base`` (checks, time, labels, batching), ``softmax`` (streaming
log-sum-exp), ``patches`` (extraction, deduplicated key tables), ``attention`` (the fast
backend of ELS), ``explain`` (the per-pixel account), and one module per machine.
"""

from .els import ELSDenoiser
from .equivariant import EquivariantDenoiser
from .explain import Explanation
from .ideal import IdealDenoiser
from .local import LocalDenoiser

__all__ = ["IdealDenoiser", "LocalDenoiser", "EquivariantDenoiser", "ELSDenoiser", "Explanation"]
