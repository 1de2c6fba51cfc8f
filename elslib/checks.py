"""Input validation shared by the whole library.

Every public function checks its arguments here so that a learner who passes the wrong thing
gets one clear sentence: which argument, what value came in, and what is allowed.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from numbers import Integral, Real

import numpy as np
import torch

TimeLike = float | torch.Tensor


def check_time(t: TimeLike, name: str = "t") -> TimeLike:
    """Check that a diffusion time (float, 0-d or 1-d tensor) lies in [0, 1] and is not NaN.

    Returns t unchanged (a python float stays a float, a tensor stays a tensor).
    """
    if isinstance(t, torch.Tensor):
        if t.dim() > 1:
            raise ValueError(f"{name} must be a float or a 1-d tensor of times, got shape {tuple(t.shape)}")
        check_not_meta(t, name)
        if t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"{name} must hold real times in [0, 1], got a tensor of dtype {t.dtype}")
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


def check_not_meta(x: torch.Tensor, name: str) -> torch.Tensor:
    """Refuse a tensor on the ``meta`` device: it has a shape but no values to compute with."""
    if x.device.type == "meta":
        raise ValueError(f"{name} is on the 'meta' device (a shape without values); give a tensor with data")
    return x


def check_images(
    x,
    name: str = "x",
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    largest: float | None = None,
):
    """Check an image batch: a finite floating tensor of shape [B, C, H, W].

    `channels` and `size` (H, W), when given, must match (e.g. the training set's); `largest`,
    when given, bounds the absolute values (images live in [-1, 1]).
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
    check_not_meta(x, name)
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if largest is not None and x.numel():
        top = float(x.detach().abs().max())
        if top > largest:
            raise ValueError(
                f"{name} holds values up to {top:.3g}, far outside the images' range [-1, 1]; at most {largest:g} "
                "is allowed"
            )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels but {channels} are expected (shape {tuple(x.shape)})")
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} has size {tuple(x.shape[-2:])} (H, W) but {tuple(size)} is expected")
    return x


def check_fits(nbytes: int, what: str, device=None) -> int:
    """Refuse, before allocating, a tensor that cannot fit in the memory free on `device`.

    `what` says which argument asked for it (for example "shape (10000000, 1, 32, 32)"). Without
    this check the allocator fails with its own message, or the system starts swapping.
    """
    from elslib.device import free_memory  # here: device imports this module

    free = free_memory(device)
    if free is not None and nbytes > free:
        where = "the CPU" if device is None else str(device)
        raise ValueError(
            f"{what} needs {nbytes / 2**30:,.1f} GiB, more than the {free / 2**30:,.1f} GiB free on {where}"
        )
    return nbytes


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Check an integer count (steps, seeds, images) is at least `minimum`.

    Integral floats (20.0) are accepted as the integer they equal; 2.5, True or "3" are not.
    """
    is_integral = isinstance(value, Real) and not isinstance(value, bool) and float(value).is_integer()
    if not is_integral or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


MAX_SEED = 2**64 - 1  # the largest seed torch's generators take


def check_seed(seed, name: str = "seed") -> int:
    """Check a random seed: an integer from 0 to 2^64 - 1 (the same seed always gives the same numbers)."""
    seed = check_positive_int(seed, name, minimum=0)
    if seed > MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to 2**64 - 1, got {seed!r}")
    return seed


def is_integer(value) -> bool:
    """An int or a numpy integer; not a bool, not a float that happens to be whole."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_integer(value, name: str, low: int | None = None) -> int:
    """Check an integer (an offset, an axis, a code): no bools, floats or strings; >= `low` when given."""
    if not is_integer(value) or (low is not None and value < low):
        allowed = "an integer" if low is None else f"an integer >= {low}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_size(value, name: str = "size", minimum: int = 1) -> tuple[int, int]:
    """Check an image size: an int (square) or a pair (H, W) of ints, each at least `minimum`."""
    hw = (value, value) if is_integer(value) else value
    pair = isinstance(hw, (tuple, list, torch.Size)) and len(hw) == 2
    if not pair or not all(is_integer(s) and s >= minimum for s in hw):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair (H, W) of them, got {value!r}")
    return int(hw[0]), int(hw[1])


def check_sequence(value, name: str, nonempty: bool = True) -> list:
    """A list, tuple, range, 1-d array or tensor of entries as a list (not a string, not a lone number)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.ndim != 1:
            raise ValueError(f"{name} must be a 1-d sequence, got an array of shape {tuple(value.shape)}")
        value = value.tolist()
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list or tuple, got {type(value).__name__}: {value!r}")
    value = list(value)
    if nonempty and not value:
        raise ValueError(f"{name} must hold at least one entry, got an empty {name}")
    return value


def check_callable(fn, name: str, args: tuple | None = None, kwargs: dict | None = None, call: str = ""):
    """Check that `fn` is callable and, when `args` are given, that its signature accepts
    ``fn(*args, **kwargs)``.

    Only the signature is tested (nothing is called); a TypeError names `name` and the call it
    must support (`call`, e.g. "D(x_t, t)"). Callables without a signature (some builtins) pass.
    """
    usage = f" as {call}" if call else ""
    if not callable(fn):
        raise TypeError(f"{name} must be callable{usage}, got {type(fn).__name__}: {fn!r}")
    if args is None:
        return fn
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn
    try:
        signature.bind(*args, **(kwargs or {}))
    except TypeError as err:
        raise TypeError(
            f"{name} must be callable{usage}, but its signature {signature} does not allow it: {err}"
        ) from None
    return fn


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
