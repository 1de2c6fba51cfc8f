r"""The denoiser contract: what every machine, network wrapper and sampler agrees on.

A *denoiser* is an object with

- a ``schedule`` attribute: the :class:`elslib.schedules.Schedule` that says what its time t
  means (x_t = a(t) x0 + s(t) eps), and
- ``__call__(x_t, t, label=None) -> x0_hat``: x_t [B, C, H, W], t a float or a [B] tensor in
  [0, 1], label None, an int or one int per image; x0_hat has x_t's shape.

The denoiser *owns* its schedule: the score machines and ``networks.NetworkDenoiser`` are built
with one, and the samplers read it from them (:func:`schedule_of`) instead of keeping a second
copy that could disagree. A plain function ``D(x_t, t)`` without a ``schedule`` attribute is
still a denoiser; then the sampler's ``schedule=`` argument (or the cosine default) is used.

Wrappers that change what a denoiser returns keep its schedule, so they are denoisers too:

- :class:`Conditioned`: the denoiser with a class label fixed;
- :class:`Guided`: classifier-free guidance, x0_hat_w = x0_hat(no label) + w (x0_hat(label) -
  x0_hat(no label)) (Ho & Salimans, 2022): w = 0 ignores the label, w = 1 is the conditional
  denoiser, w > 1 pushes further towards the class.

docs/architecture.md follows one sample through this contract, from the sampler to the kernel.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from . import schedules as _schedules
from .checks import check_callable, check_number


@runtime_checkable
class Denoiser(Protocol):
    """The contract (a typing Protocol: any object with these two members satisfies it)."""

    schedule: _schedules.Schedule

    def __call__(self, x_t: torch.Tensor, t, label=None) -> torch.Tensor: ...


def schedule_of(denoiser, schedule=None) -> _schedules.Schedule:
    """The schedule to run `denoiser` under: its own, or, for a plain function, `schedule`.

    schedule: None, a Schedule or a name ("cosine", "linear"). When the denoiser has a schedule
    of its own, a different explicit one is an error (the denoiser would be asked about a time
    that means something else to it); the same one, or None, gives the denoiser's. For a
    callable without a ``schedule`` attribute, `schedule` (None: the paper's cosine) is used.
    """
    own = getattr(denoiser, "schedule", None)
    if own is None:
        return _schedules.get(schedule)
    if not isinstance(own, _schedules.Schedule):
        raise ValueError(
            f"the denoiser's schedule attribute must be an elslib Schedule, got {type(own).__name__}: {own!r}"
        )
    if schedule is None:
        return own
    given = _schedules.get(schedule)
    if given != own:
        raise ValueError(
            f"schedule={given!r} differs from the denoiser's own schedule {own!r}; leave schedule out "
            "(the sampler uses the denoiser's), or build the denoiser with the schedule you want"
        )
    return own


def _own_schedule(denoiser):
    """A wrapper's schedule: the wrapped denoiser's (checked), or None for a plain function."""
    return None if getattr(denoiser, "schedule", None) is None else schedule_of(denoiser)


class Conditioned:
    """A denoiser with its class label fixed: ``Conditioned(den, 3)(x_t, t) == den(x_t, t, label=3)``.

    label: an int (every image) or one int per image, as the wrapped denoiser accepts. A label
    given at call time as well is an error: the wrapper exists so that none is needed.
    """

    def __init__(self, denoiser, label):
        if label is None:
            raise ValueError("label must be a class (an int or one int per image), got None")
        check_callable(denoiser, "denoiser", call="D(x_t, t, label=...)")
        self.denoiser, self.label = denoiser, label
        self.schedule = _own_schedule(denoiser)

    def __call__(self, x_t: torch.Tensor, t, label=None) -> torch.Tensor:
        if label is not None:
            raise ValueError(f"this denoiser is conditioned on label={self.label!r} already; got label={label!r}")
        return self.denoiser(x_t, t, label=self.label)

    def __repr__(self) -> str:
        return f"Conditioned({self.denoiser!r}, label={self.label!r})"


class Guided:
    """Classifier-free guidance of a class-conditional denoiser, with guidance weight `weight`.

    Called with a label, it returns x0_hat(no label) + weight (x0_hat(label) - x0_hat(no label));
    weight 0 returns the unconditional prediction exactly and weight 1 the conditional one (the
    denoiser is then called once). Without a label it is the unconditional denoiser. The wrapped
    denoiser must accept ``label=`` (a machine built with labels, a class-conditional network).
    """

    def __init__(self, denoiser, weight: float):
        check_callable(denoiser, "denoiser", call="D(x_t, t, label=...)")
        self.denoiser, self.weight = denoiser, check_number(weight, "weight (0: no guidance, 1: conditional)")
        self.schedule = _own_schedule(denoiser)

    def __call__(self, x_t: torch.Tensor, t, label=None) -> torch.Tensor:
        if label is None or self.weight == 0.0:
            return self.denoiser(x_t, t)
        cond = self.denoiser(x_t, t, label=label)
        if self.weight == 1.0:
            return cond
        uncond = self.denoiser(x_t, t)
        return uncond + self.weight * (cond - uncond)

    def __repr__(self) -> str:
        return f"Guided({self.denoiser!r}, weight={self.weight:g})"
