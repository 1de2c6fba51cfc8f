"""Input validation shared by the whole library.

Every public function checks its arguments here so that a learner who passes the wrong thing
gets one clear sentence: which argument, what value came in, and what is allowed.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

TimeLike = float | torch.Tensor


def check_time(t: TimeLike, name: str = "t") -> TimeLike:
    """Check that a diffusion time (float, 0-d or 1-d tensor) lies in [0, 1] and is not NaN.

    Returns t unchanged (a python float stays a float, a tensor stays a tensor).
    """
    if isinstance(t, torch.Tensor):
        if t.dim() > 1:
            raise ValueError(f"{name} must be a float or a 1-d tensor of times, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            t = t.to(torch.get_default_dtype())
        if torch.isnan(t).any():
            raise ValueError(f"{name} contains NaN; times must lie in [0, 1]")
        if t.numel() and (float(t.min()) < 0.0 or float(t.max()) > 1.0):
            lo, hi = float(t.min()), float(t.max())
            raise ValueError(f"{name} must lie in [0, 1], got values from {lo:g} to {hi:g}")
        return t
    if isinstance(t, bool) or not isinstance(t, Real):
        raise ValueError(f"{name} must be a float in [0, 1] or a tensor of them, got {type(t).__name__}")
    t = float(t)
    if math.isnan(t) or not 0.0 <= t <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {t!r}")
    return t


def batch_times(t: TimeLike, b: int, name: str = "t") -> torch.Tensor:
    """Checked times as a float64 CPU tensor [b], one per image of a batch of b.

    A float or 0-d tensor is shared by the whole batch; a 1-d tensor must hold b times.
    """
    t = check_time(t, name)
    if not isinstance(t, torch.Tensor):
        return torch.full((b,), t, dtype=torch.float64)
    t = t.detach().to("cpu", torch.float64)
    if t.dim() == 0:
        return t.expand(b).clone()
    if t.shape[0] != b:
        raise ValueError(f"{name} has {t.shape[0]} times but the batch has {b} images")
    return t.clone()


def check_images(x, name: str = "x", channels: int | None = None, size: tuple[int, int] | None = None):
    """Check an image batch: a finite floating tensor of shape [B, C, H, W].

    `channels` and `size` (H, W), when given, must match (e.g. the training set's).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape [B, C, H, W], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have 4 dimensions [B, C, H, W], got shape {tuple(x.shape)}"
            + (" (add a batch axis with x[None])" if x.dim() == 3 else "")
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels but {channels} are expected (shape {tuple(x.shape)})")
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} has size {tuple(x.shape[-2:])} (H, W) but {tuple(size)} is expected")
    return x


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Check an integer count (steps, seeds, images) is at least `minimum`.

    Integral floats (20.0) are accepted as the integer they equal; 2.5, True or "3" are not.
    """
    is_integral = isinstance(value, Real) and not isinstance(value, bool) and float(value).is_integer()
    if not is_integral or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed, name: str = "seed") -> int:
    """Check a random seed: an integer >= 0 (the same seed always gives the same numbers)."""
    return check_positive_int(seed, name, minimum=0)


def check_odd(value, name: str = "patch_size", largest: int | None = None, where: str = "") -> int:
    """Check an odd integer >= 1 (a patch or window size), at most `largest` when given.

    where: what the bound is for (e.g. "32x32 images with zero padding"), for the message.
    """
    odd = not isinstance(value, bool) and isinstance(value, Integral) and value >= 1 and value % 2 == 1
    if odd and (largest is None or value <= largest):
        return int(value)
    allowed = "an odd integer >= 1" if largest is None else f"an odd integer from 1 to {largest}"
    raise ValueError(f"{name} must be {allowed}{' for ' + where if where else ''}, got {value!r}")


def check_number(value, name: str, low: float | None = None, strict: bool = False) -> float:
    """Check a finite real number, >= `low` (or > `low` with strict) when `low` is given."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if low is not None and (value < low or (strict and value == low)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return value


def check_choice(value, name: str, allowed) -> str:
    """Check that `value` is one of `allowed` (a list of strings)."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value
