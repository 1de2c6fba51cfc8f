r"""Noise schedules: how much signal survives at diffusion time t in [0, 1].

The forward process mixes a clean image x0 with Gaussian noise eps:

    x_t = a(t) x0 + s(t) eps,     a = sqrt(alpha_bar(t)),  s = sqrt(1 - alpha_bar(t)).

t = 0 is the clean image, t = 1 is (almost) pure noise. A schedule is nothing more than the
function alpha_bar(t); everything else (a, s, the signal-to-noise ratio) follows from it.

Every method takes a python float (and returns a float) or a tensor of times (and returns a
tensor of the same shape, dtype and device).
"""

from __future__ import annotations

import math

import torch

from .checks import TimeLike, batch_times, check_images, check_time


class Schedule:
    """Base class: subclasses define :meth:`_alpha_bar` on tensors; the rest is derived here."""

    name = "schedule"

    def _alpha_bar(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply(self, fn, t: TimeLike, name: str = "t") -> TimeLike:
        t = check_time(t, name)
        if isinstance(t, torch.Tensor):
            # float64 inside so that alpha_bar near 1 keeps its digits; back to t's dtype outside.
            return fn(t.double()).to(t.dtype)
        return float(fn(torch.tensor(t, dtype=torch.float64)))

    def _ab(self, u: torch.Tensor) -> torch.Tensor:
        return self._alpha_bar(u).clamp(0.0, 1.0)

    def alpha_bar(self, t: TimeLike) -> TimeLike:
        """Fraction of signal *variance* left at time t: 1 at t=0, near 0 at t=1."""
        return self._apply(self._ab, t)

    def alpha(self, t: TimeLike) -> TimeLike:
        """Signal scale a(t) = sqrt(alpha_bar(t))."""
        return self._apply(lambda u: self._ab(u).sqrt(), t)

    def sigma(self, t: TimeLike) -> TimeLike:
        """Noise scale s(t) = sqrt(1 - alpha_bar(t))."""
        return self._apply(lambda u: (1.0 - self._ab(u)).sqrt(), t)

    def snr(self, t: TimeLike) -> TimeLike:
        """Signal-to-noise ratio alpha_bar / (1 - alpha_bar); infinite at t = 0."""
        return self._apply(lambda u: self._ab(u) / (1.0 - self._ab(u)), t)

    def coefficients(self, t: TimeLike, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a(t) and s(t) shaped to multiply the image batch `like` [B, C, H, W]: two [B, 1, 1, 1]
        tensors in like's dtype, on like's device.

        t: a float or 0-d tensor (shared by the batch) or a [B] tensor (one time per image). This
        is the one place where times become per-image factors; networks, training, gradient maps
        and the forward process all call it.
        """
        if not isinstance(like, torch.Tensor) or like.dim() < 1:
            got = tuple(like.shape) if isinstance(like, torch.Tensor) else type(like).__name__
            raise ValueError(f"like must be an image batch tensor [B, C, H, W], got {got}")
        b = like.shape[0]
        t = batch_times(t, b)  # float64 [B] on the CPU: one check, one conversion
        a, s = self.alpha(t), self.sigma(t)
        return a.to(like).view(b, 1, 1, 1), s.to(like).view(b, 1, 1, 1)

    def add_noise(self, x0: torch.Tensor, t: TimeLike, noise: torch.Tensor) -> torch.Tensor:
        """Forward process: x_t = a(t) x0 + s(t) noise.

        x0, noise: [B, C, H, W]; t: float, or a tensor of shape [B] (one time per image).
        """
        check_images(x0, "x0")
        check_images(noise, "noise")
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
        a, s = self.coefficients(t, like=x0)
        return a * x0 + s * noise

    def _params(self) -> tuple:
        """The numbers that define this schedule (two schedules are equal when class and these agree)."""
        return ()

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._params()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CosineSchedule(Schedule):
    """The paper's schedule: alpha_bar(t) = cos^2(t / (1 + offset) * pi / 2).

    With offset = 0.008, alpha_bar(0) = 1 and alpha_bar(1) = cos^2(pi/2 / 1.008) ~ 1.55e-4.
    """

    name = "cosine"

    def __init__(self, offset: float = 0.008):
        if not (isinstance(offset, (int, float)) and not isinstance(offset, bool) and 0.0 <= offset < math.inf):
            raise ValueError(f"offset must be a finite number >= 0 (the paper uses 0.008), got {offset!r}")
        self.offset = float(offset)

    def _alpha_bar(self, t):
        return torch.cos(t / (1.0 + self.offset) * (math.pi / 2)) ** 2

    def _params(self) -> tuple:
        return (self.offset,)

    def __repr__(self) -> str:
        return f"CosineSchedule(offset={self.offset})"


class LinearSchedule(Schedule):
    """DDPM's linear-beta schedule in continuous time (the variance-preserving SDE):

    alpha_bar(t) = exp(-(beta_min t + (beta_max - beta_min) t^2 / 2)).

    The defaults (0.1, 20) are the continuous limit of betas 1e-4..0.02 over 1000 steps.
    """

    name = "linear"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        numbers = all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in (beta_min, beta_max))
        if not (numbers and 0.0 <= beta_min <= beta_max < math.inf):
            raise ValueError(
                f"need finite numbers 0 <= beta_min <= beta_max (DDPM: 0.1 and 20), got beta_min={beta_min!r}, "
                f"beta_max={beta_max!r}"
            )
        if beta_max == 0:
            raise ValueError("beta_max must be > 0: with beta_min = beta_max = 0 no noise is ever added (DDPM: 20)")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def _alpha_bar(self, t):
        return torch.exp(-(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2))

    def _params(self) -> tuple:
        return (self.beta_min, self.beta_max)

    def __repr__(self) -> str:
        return f"LinearSchedule(beta_min={self.beta_min}, beta_max={self.beta_max})"


def cosine(offset: float = 0.008) -> CosineSchedule:
    """The paper's cosine schedule (the default everywhere in elslib)."""
    return CosineSchedule(offset)


def linear(beta_min: float = 0.1, beta_max: float = 20.0) -> LinearSchedule:
    """The linear-beta (DDPM) schedule, in continuous time."""
    return LinearSchedule(beta_min, beta_max)


SCHEDULES = {"cosine": cosine, "linear": linear}


def get(schedule: Schedule | str | None) -> Schedule:
    """Accept a Schedule, a name ("cosine", "linear") or None (the cosine default)."""
    if schedule is None:
        return cosine()
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str) and schedule in SCHEDULES:
        return SCHEDULES[schedule]()
    raise ValueError(f"schedule must be a Schedule or one of {sorted(SCHEDULES)}, got {schedule!r}")
