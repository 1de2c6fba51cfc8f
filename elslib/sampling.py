r"""Samplers: turn noise into an image with any denoiser ``D(x_t, t) -> x0_hat``.

A denoiser (:mod:`elslib.denoisers`) is callable as ``D(x_t, t)`` (or ``D(x_t, t, label=...)``
for class-conditional use), returns its estimate of the clean image with the same shape as x_t,
and carries the schedule its t refers to. Score machines and wrapped networks are both
denoisers, so one sampler serves all, under the denoiser's own schedule.

Both samplers walk the times t_i = i / steps from t = 1 down to t = 0 (or an explicit grid
``times=``). At each step, with
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

from .checks import (
    check_callable,
    check_fits,
    check_images,
    check_positive_int,
    check_seed,
    check_sequence,
    check_time,
    is_integer,
)
from .denoisers import schedule_of


@dataclass
class Trajectory:
    """What a sampler saw on its way down.

    times:  [steps + 1] float64, the times visited (1.0 down to 0.0 unless a grid was given);
    x:      [steps + 1, B, C, H, W] the state x_t at each of those times (x[0] is the noise,
            x[-1] the final sample);
    x0_hat: [steps, B, C, H, W] the denoiser's prediction made at times[i].
    """

    times: torch.Tensor
    x: torch.Tensor
    x0_hat: torch.Tensor


def seeded_noise(seeds, shape) -> torch.Tensor:
    """One noise image per seed, stacked: [len(seeds), *shape]. Seed s always gives the same image,
    ``noise_like((1, *shape), seed=s)``, whichever seeds are drawn with it."""
    return torch.cat([noise_like((1, *shape), seed=s) for s in seeds])


def noise_like(shape, seed: int = 0, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard Gaussian noise of `shape` [B, C, H, W] from a seed.

    Drawn on the CPU and then moved, so the same seed gives the same noise on every device.
    """
    dims = check_sequence(shape, "shape", nonempty=False) if not isinstance(shape, int) else None
    if dims is None or not all(is_integer(d) and d >= 0 for d in dims):
        raise ValueError(f"shape must be a sequence of sizes >= 0 such as (B, C, H, W), got {shape!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype such as torch.float32, got {dtype!r}")
    dims = tuple(int(d) for d in dims)
    check_fits(math.prod(dims) * dtype.itemsize, f"shape {dims}")  # drawn on the CPU first
    gen = torch.Generator().manual_seed(check_seed(seed))
    out = torch.randn(dims, generator=gen, dtype=dtype)
    return out if device is None else out.to(device)


MAX_STEPS = 100_000  # far beyond any useful sampler; a larger count is a typo, not a request


def step_times(steps: int) -> list[float]:
    """The times DDIM and DDPM visit with `steps` steps: 1, 1 - 1/steps, ..., 0 (exactly 0 last)."""
    steps = check_positive_int(steps, "steps")
    if steps > MAX_STEPS:
        raise ValueError(f"steps must be at most {MAX_STEPS:,} (the paper uses 20), got {steps:,}")
    times = [1.0 - i / steps for i in range(steps + 1)]
    times[-1] = 0.0
    return times


def time_grid(steps: int | None = None, times=None) -> list[float]:
    """The sampler's times: the uniform grid of `steps` steps (default 20), or an explicit `times`.

    times: a strictly decreasing sequence of at least two times in [0, 1] (a list, tuple or 1-d
    tensor), e.g. ``[1.0, 0.5, 0.2, 0.0]`` for three steps; each step goes from one time to the
    next. Given both, `steps` must be len(times) - 1.
    """
    if times is None:
        return step_times(20 if steps is None else steps)
    if isinstance(times, torch.Tensor):
        if times.dim() != 1:
            raise ValueError(f"times must be a 1-d sequence of times, got a tensor of shape {tuple(times.shape)}")
        times = times.tolist()
    if isinstance(times, (str, bytes)) or not hasattr(times, "__iter__"):
        raise ValueError(f"times must be a sequence of floats in [0, 1], got {type(times).__name__}: {times!r}")
    grid = [float(check_time(t, "times")) for t in times]
    if len(grid) < 2:
        raise ValueError(f"times must hold at least two times (one step), got {grid}")
    if any(b >= a for a, b in zip(grid, grid[1:], strict=False)):
        raise ValueError(f"times must decrease strictly (from noise towards t = 0), got {grid}")
    if steps is not None and check_positive_int(steps, "steps") != len(grid) - 1:
        raise ValueError(f"steps={steps} but times has {len(grid)} entries ({len(grid) - 1} steps); give one of them")
    return grid


def _call(denoiser, x, t: float, label):
    out = denoiser(x, t) if label is None else denoiser(x, t, label=label)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the denoiser must return a tensor shaped like x_t {tuple(x.shape)}, got {got}")
    return out


def _sample(denoiser, noise, *, times, schedule, label, eta, generator, return_trajectory, progress, callback, desc):
    """The update shared by DDIM (eta = 0) and DDPM (eta = 1) over the time grid `times`."""
    check_images(noise, "noise")
    call = "D(x_t, t)" if label is None else "D(x_t, t, label=...)"
    check_callable(denoiser, "denoiser", (noise, times[0]), None if label is None else {"label": label}, call)
    if callback is not None:
        check_callable(callback, "callback", (0, times[0], noise, noise), call="callback(step, t, x_next, x0_hat)")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
    sched = schedule_of(denoiser, schedule)  # the denoiser's own: one owner of what t means
    if return_trajectory:  # every x_t and every x0_hat are kept: about 2 x steps x the batch
        check_fits(
            2 * len(times) * noise.numel() * noise.element_size(),
            f"a trajectory of {len(times) - 1} steps for this batch",
            noise.device,
        )

    x = noise
    xs, x0s = [x], []
    iterator = range(len(times) - 1)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=desc, leave=False)
    with torch.no_grad():
        for i in iterator:
            t, t_next = times[i], times[i + 1]
            x0_hat = _call(denoiser, x, t, label)
            if not torch.isfinite(x0_hat).all():
                raise ValueError(
                    f"the denoiser returned NaN or infinite values at step {i + 1} of {len(times) - 1} (t = {t:.4g}); "
                    "nothing finite can be sampled from them"
                )
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
        traj = Trajectory(torch.tensor(times, dtype=torch.float64), torch.stack(xs), torch.stack(x0s))
        return x, traj
    return x


def ddim(
    denoiser,
    noise: torch.Tensor,
    steps: int | None = None,
    schedule=None,
    label=None,
    return_trajectory: bool = False,
    progress: bool = True,
    callback=None,
    times=None,
):
    """Deterministic DDIM sampling (the paper's sampler: t = i/20, 20 steps).

    Args:
        denoiser: a denoiser (see :mod:`elslib.denoisers`): ``D(x_t, t) -> x0_hat``, given
            ``label=`` too when `label` is not None.
        noise: [B, C, H, W] standard Gaussian noise, the state at the first time (see
            :func:`noise_like`).
        steps: number of denoiser calls on the uniform grid 1, 1 - 1/steps, ..., 0 (default 20).
        schedule: a Schedule or its name, only for a denoiser without a schedule of its own (None:
            the paper's cosine); one that differs from the denoiser's own is an error.
        label: class label(s) passed on to a class-conditional denoiser.
        return_trajectory: also return a :class:`Trajectory`.
        progress: show a progress bar.
        callback: called as ``callback(step, t, x_next, x0_hat)`` after each step.
        times: an explicit, strictly decreasing time grid instead of `steps` (see :func:`time_grid`).

    Returns the sample [B, C, H, W] (and the trajectory when asked). Same noise, same image.
    """
    return _sample(
        denoiser,
        noise,
        times=time_grid(steps, times),
        schedule=schedule,
        label=label,
        eta=0.0,
        generator=None,
        return_trajectory=return_trajectory,
        progress=progress,
        callback=callback,
        desc="DDIM",
    )


def ddpm(
    denoiser,
    noise: torch.Tensor,
    steps: int | None = None,
    schedule=None,
    label=None,
    seed: int = 0,
    return_trajectory: bool = False,
    progress: bool = True,
    callback=None,
    times=None,
):
    """Stochastic (ancestral, DDPM) sampling: fresh noise is injected at every step.

    The injected noise comes from a generator seeded by `seed` (drawn on the CPU), so the same
    (noise, seed) pair gives the same image. Other arguments as in :func:`ddim`.
    """
    gen = torch.Generator().manual_seed(check_seed(seed))
    return _sample(
        denoiser,
        noise,
        times=time_grid(steps, times),
        schedule=schedule,
        label=label,
        eta=1.0,
        generator=gen,
        return_trajectory=return_trajectory,
        progress=progress,
        callback=callback,
        desc="DDPM",
    )
