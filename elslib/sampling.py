r"""Samplers: turn noise into an image with any denoiser ``D(x_t, t) -> x0_hat``.

A denoiser is anything callable as ``D(x_t, t)`` (or ``D(x_t, t, label=...)`` for class-
conditional use) that returns its estimate of the clean image, with the same shape as x_t.
Score machines and wrapped networks are both denoisers, so one sampler serves all.

Both samplers walk the times t_i = i / steps from t = 1 down to t = 0. At each step, with
a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar):

    x0_hat = D(x_t, t)                      # where the denoiser thinks we are heading
    eps_hat = (x_t - a x0_hat) / s          # the noise that explains x_t
    x_next  = a' x0_hat + sqrt(s'^2 - c^2) eps_hat + c z

DDIM takes c = 0 (deterministic: same noise, same image); DDPM takes the posterior's
c^2 = (s'^2 / s^2) (1 - alpha_bar / alpha_bar') and fresh noise z each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import schedules as _schedules
from .checks import check_images, check_positive_int


@dataclass
class Trajectory:
    """What a sampler saw on its way down.

    times:  [steps + 1] the times visited, from 1.0 to 0.0;
    x:      [steps + 1, B, C, H, W] the state x_t at each of those times (x[0] is the noise,
            x[-1] the final sample);
    x0_hat: [steps, B, C, H, W] the denoiser's prediction made at times[i].
    """

    times: torch.Tensor
    x: torch.Tensor
    x0_hat: torch.Tensor


def noise_like(shape, seed: int = 0, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard Gaussian noise of `shape` [B, C, H, W] from a seed.

    Drawn on the CPU and then moved, so the same seed gives the same noise on every device.
    """
    gen = torch.Generator().manual_seed(int(seed))
    out = torch.randn(tuple(shape), generator=gen, dtype=dtype)
    return out if device is None else out.to(device)


def step_times(steps: int) -> list[float]:
    """The times DDIM and DDPM visit with `steps` steps: 1, 1 - 1/steps, ..., 0 (exactly 0 last)."""
    steps = check_positive_int(steps, "steps")
    times = [1.0 - i / steps for i in range(steps + 1)]
    times[-1] = 0.0
    return times


def _call(denoiser, x, t: float, label):
    out = denoiser(x, t) if label is None else denoiser(x, t, label=label)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the denoiser must return a tensor shaped like x_t {tuple(x.shape)}, got {got}")
    return out


def _sample(denoiser, noise, steps, schedule, label, eta, generator, return_trajectory, progress, callback, desc):
    check_images(noise, "noise")
    steps = check_positive_int(steps, "steps")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
    sched = _schedules.get(schedule)
    times = step_times(steps)

    x = noise
    xs, x0s = [x], []
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=desc, leave=False)
    with torch.no_grad():
        for i in iterator:
            t, t_next = times[i], times[i + 1]
            x0_hat = _call(denoiser, x, t, label)
            ab, ab_next = sched.alpha_bar(t), sched.alpha_bar(t_next)
            s, s_next = math.sqrt(1.0 - ab), math.sqrt(1.0 - ab_next)
            eps_hat = (x - math.sqrt(ab) * x0_hat) / max(s, 1e-12)
            c = eta * (s_next / max(s, 1e-12)) * math.sqrt(max(0.0, 1.0 - ab / ab_next)) if ab_next > 0 else 0.0
            x = math.sqrt(ab_next) * x0_hat + math.sqrt(max(s_next**2 - c**2, 0.0)) * eps_hat
            if c > 0.0:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
                x = x + c * z
            if callback is not None:
                callback(i, t, x, x0_hat)
            if return_trajectory:
                xs.append(x)
                x0s.append(x0_hat)
    if return_trajectory:
        traj = Trajectory(torch.tensor(times), torch.stack(xs), torch.stack(x0s))
        return x, traj
    return x


def ddim(
    denoiser,
    noise: torch.Tensor,
    steps: int = 20,
    schedule=None,
    label=None,
    return_trajectory: bool = False,
    progress: bool = True,
    callback=None,
):
    """Deterministic DDIM sampling (the paper's sampler: t = i/20, 20 steps).

    Args:
        denoiser: ``D(x_t, t) -> x0_hat`` (given ``label=`` too when `label` is not None).
        noise: [B, C, H, W] standard Gaussian noise, the state at t = 1 (see :func:`noise_like`).
        steps: number of denoiser calls.
        schedule: a Schedule or its name; None is the paper's cosine schedule.
        label: class label(s) passed on to a class-conditional denoiser.
        return_trajectory: also return a :class:`Trajectory`.
        progress: show a progress bar.
        callback: called as ``callback(step, t, x_next, x0_hat)`` after each step.

    Returns the sample [B, C, H, W] (and the trajectory when asked). Same noise, same image.
    """
    return _sample(denoiser, noise, steps, schedule, label, 0.0, None, return_trajectory, progress, callback, "DDIM")


def ddpm(
    denoiser,
    noise: torch.Tensor,
    steps: int = 20,
    schedule=None,
    label=None,
    seed: int = 0,
    return_trajectory: bool = False,
    progress: bool = True,
    callback=None,
):
    """Stochastic (ancestral, DDPM) sampling: fresh noise is injected at every step.

    The injected noise comes from a generator seeded by `seed` (drawn on the CPU), so the same
    (noise, seed) pair gives the same image. Other arguments as in :func:`ddim`.
    """
    gen = torch.Generator().manual_seed(int(seed))
    return _sample(denoiser, noise, steps, schedule, label, 1.0, gen, return_trajectory, progress, callback, "DDPM")
