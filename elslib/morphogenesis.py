r"""Morphogenesis in miniature: the Gray-Scott reaction-diffusion system on a periodic grid.

Two chemicals with concentrations u and v live on an H x W grid that wraps around (a torus).
Each grid cell follows a purely *local* rule: it reacts with itself and exchanges material with
its four neighbours. Yet from a nearly uniform start, spots, stripes and mazes appear whose size
and shape are properties of the whole (Turing, 1952; Pearson, 1993, for this system):

.. math::

    \partial_t u = D_u \nabla^2 u - u v^2 + F (1 - u), \qquad
    \partial_t v = D_v \nabla^2 v + u v^2 - (F + k)\, v .

u is fed in at rate F, v is removed at rate F + k, and the reaction u + 2v -> 3v turns u into v.
We discretise with the 5-point Laplacian (grid spacing 1, periodic boundaries),

.. math::

    (\nabla^2 f)_{i,j} = f_{i+1,j} + f_{i-1,j} + f_{i,j+1} + f_{i,j-1} - 4 f_{i,j},

and explicit Euler steps of size dt, which are stable for :math:`D\,dt \le 1/4`.

    frames = simulate("spots", size=96, steps=6000, seed=0)   # a preset, or feed=, kill=
    frames.v[-1]                                               # the final v field, [H, W]

Everything is numpy float64 and seeded: the same arguments give the same pattern, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import check_number, check_positive_int, check_seed, is_integer

# Diffusion constants in grid units (the ratio 2 : 1 is what makes patterns form).
DU, DV = 0.16, 0.08

# Named (feed F, kill k) pairs; each name says what v looks like with the defaults (DU, DV,
# dt = 1, initial_state) after a few thousand steps: checked by eye on 64x64 to 128x128 grids.
# Pearson (1993) maps the whole (F, k) plane.
PRESETS: dict[str, tuple[float, float]] = {
    "spots": (0.030, 0.062),
    "stripes": (0.040, 0.060),  # winding stripes, a labyrinth
    "holes": (0.039, 0.058),  # the negative of spots: dark holes in a bright sea
    "dividing spots": (0.0367, 0.0649),  # spots that grow, split in two, and fill the space
}


@dataclass
class Frames:
    """Snapshots of a simulation: ``u`` and ``v`` are float64 [n_frames, H, W]; ``steps`` [n_frames]
    says after how many Euler steps each snapshot was taken (the first is the initial state)."""

    u: np.ndarray
    v: np.ndarray
    steps: np.ndarray
    feed: float
    kill: float

    def __len__(self) -> int:
        return len(self.steps)


# --------------------------------------------------------------------------- checks


def _check_field(field, name: str) -> np.ndarray:
    try:
        arr = np.asarray(field, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of concentrations [..., H, W], got {type(field).__name__}") from err
    if arr.ndim < 2 or arr.shape[-1] < 3 or arr.shape[-2] < 3:
        raise ValueError(f"{name} must be an array [..., H, W] with H, W >= 3, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def check_parameters(feed, kill, du=DU, dv=DV, dt=1.0) -> tuple[float, float, float, float, float]:
    """Validate (feed, kill, du, dv, dt); raise ValueError saying what is wrong and what would do.

    Rates must be >= 0, diffusion constants and dt > 0, and the explicit scheme needs
    D dt <= 1/4 for both chemicals (beyond, the grid's finest checkerboard grows without bound).
    """
    feed = check_number(feed, "feed", low=0.0)
    kill = check_number(kill, "kill", low=0.0)
    du = check_number(du, "du", low=0.0, strict=True)
    dv = check_number(dv, "dv", low=0.0, strict=True)
    dt = check_number(dt, "dt", low=0.0, strict=True)
    for d, name in ((du, "du"), (dv, "dv")):
        if d * dt > 0.25:
            raise ValueError(
                f"{name} * dt = {d * dt:g} is above 1/4: explicit Euler steps of the 5-point Laplacian are then "
                f"unstable. Use dt <= {0.25 / d:g}."
            )
    return feed, kill, du, dv, dt


def resolve(pattern=None, feed=None, kill=None) -> tuple[float, float]:
    """(feed, kill) from a preset name, or from explicit numbers (which override the preset's)."""
    if pattern is not None:
        if not isinstance(pattern, str) or pattern not in PRESETS:
            raise ValueError(f"pattern must be one of {', '.join(map(repr, PRESETS))}, got {pattern!r}")
        f0, k0 = PRESETS[pattern]
        feed = f0 if feed is None else feed
        kill = k0 if kill is None else kill
    if feed is None or kill is None:
        raise ValueError("give a preset pattern name, or both feed= and kill=")
    return feed, kill


# --------------------------------------------------------------------------- the model


def laplacian(field) -> np.ndarray:
    """The 5-point Laplacian on a periodic grid (spacing 1) of an array [..., H, W]: the sum of the
    four neighbours minus four times the centre, wrapping around at the edges."""
    return _laplacian(_check_field(field, "field"))


def _laplacian(f: np.ndarray) -> np.ndarray:
    return np.roll(f, 1, axis=-2) + np.roll(f, -1, axis=-2) + np.roll(f, 1, axis=-1) + np.roll(f, -1, axis=-1) - 4.0 * f


def reaction(u, v, feed: float, kill: float) -> tuple[np.ndarray, np.ndarray]:
    """The local (no-diffusion) part of the rates: (-u v^2 + F (1 - u), u v^2 - (F + k) v)."""
    uvv = u * v * v
    return -uvv + feed * (1.0 - u), uvv - (feed + kill) * v


def step(u, v, feed: float, kill: float, du: float = DU, dv: float = DV, dt: float = 1.0):
    """One explicit Euler step of the Gray-Scott equations; returns new arrays (u, v)."""
    feed, kill, du, dv, dt = check_parameters(feed, kill, du, dv, dt)
    u, v = _check_field(u, "u"), _check_field(v, "v")
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same shape, got {u.shape} and {v.shape}")
    ru, rv = reaction(u, v, feed, kill)
    return u + dt * (du * _laplacian(u) + ru), v + dt * (dv * _laplacian(v) + rv)


def uniform_states(feed: float, kill: float) -> list[tuple[float, float]]:
    """The spatially uniform steady states (u, v): always (1, 0); and, when F >= 4 (F + k)^2, the two
    states with v = (F +- sqrt(F^2 - 4 F (F + k)^2)) / (2 (F + k)) and u = (F + k) / v."""
    feed = check_number(feed, "feed", low=0.0)
    kill = check_number(kill, "kill", low=0.0)
    states = [(1.0, 0.0)]
    g = feed + kill
    disc = feed * feed - 4.0 * feed * g * g
    if g > 0 and feed > 0 and disc >= 0:
        for sign in (1.0, -1.0):
            v = (feed + sign * math.sqrt(disc)) / (2.0 * g)
            states.append((g / v, v))
    return states


def initial_state(size, seed: int = 0, n_seeds: int = 6, seed_size: int | None = None, noise: float = 0.02):
    """The usual start: u = 1, v = 0 everywhere, except a few square "seeds" (u = 1/2, v = 1/4) at
    random places, plus a little noise. `size`: an int (square) or (H, W). Same seed, same state."""
    hw = (size, size) if is_integer(size) else size
    if isinstance(hw, (str, bytes)) or not hasattr(hw, "__len__") or len(hw) != 2:
        raise ValueError(f"size must be an int (a square grid) or a pair (H, W), got {size!r}")
    h, w = check_positive_int(hw[0], "size: height", 8), check_positive_int(hw[1], "size: width", 8)
    n_seeds = check_positive_int(n_seeds, "n_seeds", 1)
    side = max(2, min(h, w) // 10) if seed_size is None else check_positive_int(seed_size, "seed_size", 1)
    noise = check_number(noise, "noise", low=0.0)
    rng = np.random.default_rng(check_seed(seed))
    u, v = np.ones((h, w)), np.zeros((h, w))
    for _ in range(n_seeds):
        r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
        rows, cols = np.arange(r, r + side) % h, np.arange(c, c + side) % w
        u[np.ix_(rows, cols)] = 0.5
        v[np.ix_(rows, cols)] = 0.25
    u += noise * rng.standard_normal((h, w))
    v += noise * rng.standard_normal((h, w))
    return np.clip(u, 0.0, 1.0), np.clip(v, 0.0, 1.0)


def simulate(
    pattern: str | None = None,
    feed: float | None = None,
    kill: float | None = None,
    size=96,
    steps: int = 5000,
    n_frames: int = 6,
    seed: int = 0,
    du: float = DU,
    dv: float = DV,
    dt: float = 1.0,
    init=None,
    progress: bool = False,
) -> Frames:
    """Run the Gray-Scott model and keep `n_frames` evenly spaced snapshots (the first is the start,
    the last the state after `steps` steps).

    pattern: a name in :data:`PRESETS` (or give ``feed`` and ``kill``); size: int or (H, W);
    init: optional (u, v) arrays to start from instead of :func:`initial_state` (size, seed).
    """
    feed, kill = resolve(pattern, feed, kill)
    feed, kill, du, dv, dt = check_parameters(feed, kill, du, dv, dt)
    steps = check_positive_int(steps, "steps", 0)
    n_frames = check_positive_int(n_frames, "n_frames", 1)
    if init is None:
        u, v = initial_state(size, seed)
    else:
        if isinstance(init, (str, bytes)) or not hasattr(init, "__len__") or len(init) != 2:
            raise ValueError(f"init must be a pair (u, v) of arrays [H, W], got {type(init).__name__}")
        u, v = (_check_field(a, name).copy() for a, name in zip(init, ("init u", "init v"), strict=True))
        if u.shape != v.shape:
            raise ValueError(f"init: u and v must have the same shape, got {u.shape} and {v.shape}")
    marks = sorted(set(np.linspace(0, steps, n_frames).round().astype(int).tolist())) if n_frames > 1 else [steps]
    us, vs, done = [], [], []
    iterator = range(steps + 1)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="Gray-Scott", leave=False)
    for i in iterator:
        if i in marks:
            us.append(u.copy())
            vs.append(v.copy())
            done.append(i)
        if i < steps:
            with np.errstate(over="ignore", invalid="ignore"):  # a divergence is reported just below
                ru, rv = reaction(u, v, feed, kill)
                u, v = u + dt * (du * _laplacian(u) + ru), v + dt * (dv * _laplacian(v) + rv)
            if (i + 1) % 100 == 0 or i + 1 == steps:
                if not (np.isfinite(u).all() and np.isfinite(v).all()):
                    raise ValueError(
                        f"the simulation diverged (NaN or infinite concentrations) by step {i + 1}: feed={feed}, "
                        f"kill={kill}, dt={dt} are outside the range where explicit Euler steps stay stable "
                        "(the presets use feed and kill below 0.1)"
                    )
    return Frames(np.stack(us), np.stack(vs), np.array(done), feed, kill)
