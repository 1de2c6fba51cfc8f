"""What every score machine shares: argument checks, diffusion time, class labels, batching.

A machine is called as ``den(x_t, t, label=None) -> x0_hat``. This module turns those three
arguments into what the maths needs -- the signal scale a = alpha(t) and the noise variance
s^2 = sigma(t)^2 for each image of the batch, and the class each image is conditioned on --
and splits the batch into groups that share one candidate set (same label, same patch size),
so that each machine only implements ``_denoise`` for one such group.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral

import torch

from .. import schedules
from ..checks import batch_times, check_callable, check_images, check_odd, check_positive_int
from ..device import resolve
from .explain import Explanation

# Score elements (query x candidate) held in memory at once. 2**21 float32 scores are 8 MiB:
# small enough to stay in the CPU's last-level cache, large enough for an efficient GEMM.
DEFAULT_CHUNK = 2**21

# sigma(0) = 0 makes the softmax temperature 2 s^2 vanish. Flooring s^2 keeps every score
# finite (float32 holds up to 3e38), and because each softmax subtracts its running maximum
# the weights become the exact hard choice of the nearest candidate(s) at t = 0.
S2_FLOOR = 1e-20

# The largest |value| a machine takes, in its training images and in x_t. Images live in [-1, 1]
# and noisy ones within a few units; at t = 0 a score divides a squared distance by 2 S2_FLOOR,
# which overflows float32 for values much beyond this (the result would silently be NaN).
MAX_VALUE = 1e6


class Machine:
    """Base class of the closed-form denoisers (the table in docs/architecture.md).

    Args:
        images: training set, float tensor [N, C, H, W] with values in [-1, 1].
        schedule: a :class:`elslib.schedules.Schedule`, its name, or None (cosine).
        labels: optional int64 [N] class of each training image; enables ``label=`` at call time.
        device: where the training set lives and the work is done (None: cuda if available).
        chunk_size: how many (query, candidate) scores are held at once; bounds the memory.
    """

    def __init__(self, images, schedule=None, labels=None, device=None, chunk_size: int = DEFAULT_CHUNK):
        check_images(images, "images", largest=MAX_VALUE)
        if images.shape[0] < 1:
            raise ValueError(f"images must hold at least one training image, got shape {tuple(images.shape)}")
        self.device = resolve(device)
        self.images = images.detach().to(self.device, torch.float32).contiguous()
        self.schedule = schedules.get(schedule)
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")
        self.labels = _check_labels(labels, images.shape[0], self.device)
        # Training-image indices of each class, for class-conditional candidate sets.
        self._members: dict[int, torch.Tensor] = {}
        if self.labels is not None:
            for c in torch.unique(self.labels).tolist():
                self._members[int(c)] = torch.nonzero(self.labels == c).flatten()

    # ----------------------------------------------------------------------- public API
    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the training images, and of every image the machine accepts."""
        return tuple(self.images.shape[-2:])

    def __call__(self, x_t: torch.Tensor, t, label=None) -> torch.Tensor:
        """Denoise a batch: x_t [B, C, H, W] at time t (float or [B] tensor) -> x0_hat [B, C, H, W].

        ``label``: None (all training images are candidates), an int (every image of the batch
        conditioned on that class) or a [B] list/tensor of classes. The result has x_t's dtype
        and device.
        """
        x, a, s2, labels, tt = self._inputs(x_t, t, label)
        out = torch.empty_like(x)
        for idx, p, lab in _groups(self, tt, labels):
            out[idx] = self._denoise(x[idx], a[idx], s2[idx], p, lab)
        return out.to(device=x_t.device, dtype=x_t.dtype)

    def explain(self, x_t: torch.Tensor, t, label=None) -> Explanation:
        """Per output pixel: the winning candidate, its weight, and the effective candidate count.

        Same arguments as calling the machine; returns an :class:`Explanation` of [B, H, W]
        tensors on x_t's device, like the denoised image (so that they index x_t's tensors).
        """
        x, a, s2, labels, tt = self._inputs(x_t, t, label)
        parts = []
        for idx, p, lab in _groups(self, tt, labels):
            parts.append((idx, self._explain(x[idx], a[idx], s2[idx], p, lab)))
        return Explanation.gather(parts, x.shape[0], self.size, self.device).to(x_t.device)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        extra = "".join(f", {k}={v!r}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}(N={n}, C={c}, H={h}, W={w}{extra}, schedule={self.schedule!r})"

    # ------------------------------------------------------------------ for subclasses
    def _denoise(self, x, a, s2, patch_size, label) -> torch.Tensor:  # pragma: no cover - abstract
        """x [b, C, H, W] float32 on device; a, s2 [b] float64; one patch size and label for all."""
        raise NotImplementedError

    def _explain(self, x, a, s2, patch_size, label) -> dict:  # pragma: no cover - abstract
        """Same inputs as _denoise; returns a dict of Explanation fields, each [b, H, W]."""
        raise NotImplementedError

    def _patch_size_at(self, t: float) -> int | None:
        """The patch size used at time t (None for the machines that look at whole images)."""
        return None

    def _repr_fields(self) -> dict:
        return {}

    def _candidates(self, label: int | None) -> torch.Tensor | None:
        """Training-image indices a class-conditional call may use (None: all of them)."""
        return None if label is None else self._members[label]

    # ------------------------------------------------------------------------ helpers
    def _inputs(self, x_t, t, label):
        """Checked inputs: x float32 on device, a and s^2 float64 [B], labels list or None, t [B]."""
        check_images(x_t, "x_t", channels=self.channels, size=self.size, largest=MAX_VALUE)
        b = x_t.shape[0]
        x = x_t.detach().to(self.device, torch.float32)
        tt = batch_times(t, b)
        a = self.schedule.alpha(tt).to(self.device)
        s2 = (self.schedule.sigma(tt) ** 2).clamp_min(S2_FLOOR).to(self.device)
        return x, a, s2, self._check_label(label, b), tt

    def _check_label(self, label, b: int) -> list | None:
        if label is None:
            return None
        if self.labels is None:
            raise ValueError("label was given but the machine was built without labels; pass labels=... to it")
        if not isinstance(label, (torch.Tensor, list, tuple, Integral)) and hasattr(label, "tolist"):
            label = torch.as_tensor(label)  # a numpy array or scalar
        if isinstance(label, torch.Tensor):
            if label.dim() > 1:
                raise ValueError(f"label must be an int or a 1-d sequence of ints, got shape {tuple(label.shape)}")
            if label.is_floating_point() or label.is_complex():
                raise ValueError(f"label must hold integers, got dtype {label.dtype}")
            label = label.tolist()
        if isinstance(label, Integral) and not isinstance(label, bool):
            label = [int(label)] * b
        if not isinstance(label, (list, tuple)) or not all(
            isinstance(v, Integral) and not isinstance(v, bool) for v in label
        ):
            raise ValueError(f"label must be an int or a sequence of ints, got {label!r}")
        if len(label) != b:
            raise ValueError(f"label has {len(label)} entries but x_t has {b} images")
        for v in label:
            if int(v) not in self._members:
                present = sorted(self._members)
                raise ValueError(f"label {int(v)} does not occur in labels (present: {present})")
        return [int(v) for v in label]


def _groups(machine: Machine, tt: torch.Tensor, labels: list | None):
    """Split the batch into (indices, patch size, label) groups that share one candidate set."""
    sizes: dict[float, int | None] = {}
    keys = []
    for i in range(tt.shape[0]):
        ti = float(tt[i])
        if ti not in sizes:
            sizes[ti] = machine._patch_size_at(ti)
        keys.append((sizes[ti], None if labels is None else labels[i]))
    groups: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    for (p, lab), idx in groups.items():
        yield torch.tensor(idx, device=machine.device), p, lab


def _check_labels(labels, n: int, device) -> torch.Tensor | None:
    if labels is None:
        return None
    try:
        lab = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"labels must be an int64 tensor [N] of classes, got {type(labels).__name__}") from err
    if lab.dim() != 1 or lab.shape[0] != n:
        raise ValueError(f"labels must have shape [{n}] (one class per training image), got {tuple(lab.shape)}")
    if lab.is_floating_point() or lab.is_complex() or lab.dtype == torch.bool:
        raise ValueError(f"labels must hold integers, got dtype {lab.dtype}")
    return lab.to(device, torch.int64)


def check_patch_size(p, size: tuple[int, int], circular: bool, name: str = "patch_size") -> int:
    """Validate an odd patch size P for images of `size` (H, W).

    Zero padding: any odd P up to 2 max(H, W) - 1 (the largest window that still differs from a
    bigger one: it covers the whole image from every pixel). Circular padding wraps the image,
    so a patch may not be larger than the image: P <= min(H, W).
    """
    h, w = size
    top = min(h, w) if circular else 2 * max(h, w) - 1
    if top % 2 == 0:
        top -= 1
    where = f"{h}x{w} images with {'circular' if circular else 'zero'} padding"
    return check_odd(p, name, largest=top, where=where)


class PatchMachine(Machine):
    """A machine whose queries are P x P patches; P is an odd int or a callable t -> odd int."""

    circular = False

    def __init__(self, images, patch_size: int | Callable[[float], int] = 7, **kwargs):
        super().__init__(images, **kwargs)
        if callable(patch_size):
            self.patch_size = check_callable(patch_size, "patch_size", (0.5,), call="patch_size(t) -> odd int")
        else:
            self.patch_size = check_patch_size(patch_size, self.size, self.circular)

    def _patch_size_at(self, t: float) -> int:
        if not callable(self.patch_size):
            return self.patch_size
        p = self.patch_size(t)
        return check_patch_size(p, self.size, self.circular, name=f"patch_size({t:g})")

    def _repr_fields(self) -> dict:
        return {"patch_size": self.patch_size}
