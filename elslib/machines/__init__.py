"""Score machines: the closed-form optimal denoisers of Kamb & Ganguli (table: docs/architecture.md).

Each machine is the best possible denoiser under one constraint, and each output pixel is a
softmax-weighted average of candidate values from the training set:

- :class:`IdealDenoiser` (IS): no constraint; candidates are whole training images. Memorises.
- :class:`LocalDenoiser` (LS): a pixel sees only its P x P patch; candidates are the patches at
  the same place in every training image.
- :class:`EquivariantDenoiser` (ES): commutes with shifts; candidates are all circular shifts
  of all training images.
- :class:`ELSDenoiser` (ELS): local and equivariant, as a CNN is; candidates are training
  patches from anywhere (with zero padding: limited near the border). Creates patch mosaics.

Beside them, :class:`GaussianDenoiser`: the best *linear* denoiser, from the training set's mean
and covariance alone (a Wiener filter; not a softmax, so it has no ``explain``).

All are denoisers in the sense of :mod:`elslib.denoisers` -- called as ``den(x_t, t, label=None)
-> x0_hat``, carrying their ``schedule`` -- and are opened up with ``den.explain``;
:func:`build` makes any of them by its short name.
Modules, one concern each: ``base`` (checks, time, labels, batching), ``softmax`` (streaming
log-sum-exp), ``patches`` (extraction, deduplicated key tables), ``attention`` (the fast
backend of ELS), ``explain`` (the per-pixel account), and one module per machine.
"""

from ..checks import check_choice
from .els import ELSDenoiser
from .equivariant import EquivariantDenoiser
from .explain import Explanation
from .gaussian import GaussianDenoiser
from .ideal import IdealDenoiser
from .local import LocalDenoiser

# The registry: short name -> (class, title for figures). Widgets, reproduce and calibration
# build machines through `build`, so a new machine is added here once.
KINDS = {
    "IS": (IdealDenoiser, "ideal (IS)"),
    "LS": (LocalDenoiser, "local (LS)"),
    "ES": (EquivariantDenoiser, "equivariant (ES)"),
    "ELS": (ELSDenoiser, "ELS"),
}
PATCH_KINDS = ("LS", "ELS")  # the machines that take a patch_size


def build(kind: str, images, patch_size=7, padding: str = "zeros", **options):
    """The machine `kind` ("IS", "LS", "ES", "ELS") on the training set `images` [N, C, H, W].

    patch_size (an odd int, or a callable t -> odd int) is used by LS and ELS, padding
    ("zeros" or "circular") by ELS; the machines that have no such notion ignore them, so one
    call serves a loop over kinds. options: what every machine takes (schedule, labels, device,
    chunk_size) and ELS's own (dedup, table_budget).
    """
    check_choice(kind, "kind", list(KINDS))
    cls = KINDS[kind][0]
    if kind in PATCH_KINDS:
        options["patch_size"] = patch_size
    if kind == "ELS":
        options["padding"] = padding
    return cls(images, **options)


def title(kind: str) -> str:
    """How figures name the machine `kind`."""
    check_choice(kind, "kind", list(KINDS))
    return KINDS[kind][1]


__all__ = [
    "IdealDenoiser",
    "LocalDenoiser",
    "EquivariantDenoiser",
    "ELSDenoiser",
    "GaussianDenoiser",
    "Explanation",
    "KINDS",
    "build",
    "title",
]
