r"""When does the ideal sampler decide? Speciation and collapse along a reverse trajectory.

Biroli, Bonnaire, de Bortoli and Mezard (2024) describe two moments of the reverse process of a
diffusion model that memorises: first the *class* of the final image is decided (speciation),
later the sampler commits to one training image (collapse). The ideal machine (chapter 03) makes
both measurable, because its prediction is a softmax over the N training images,

    w_n(x_t, t) = softmax_n( -|x_t - a y_n|^2 / (2 s^2) ),

and its weights say at every step how far it has committed. Operational definitions (the
course's, stated in design.md):

- collapse time: the largest t on the DDIM grid at which the top weight max_n w_n is >= 0.5;
- speciation time: the largest t from which the final class (the class with the most weight at
  the last step) holds >= 0.9 of the weight at that step and at every later one.

Both are measured on the sampler's own trajectory (DDIM of the ideal machine from the given
noise), on the grid of times at which the denoiser is called (1, 1 - 1/steps, ..., 1/steps).
They are NaN where the event never happens.
"""

from __future__ import annotations

import torch

from . import sampling
from .checks import check_images, check_number, check_positive_int
from .machines import IdealDenoiser


def ideal_weights(images, x_t, t: float, schedule=None) -> torch.Tensor:
    """The ideal machine's softmax weights over the training images: [B, N] float64, rows sum to 1.

    images: [N, C, H, W] training set; x_t: [B, C, H, W] noisy images at time t (a float in
    [0, 1)). Computed in float64 from |x_t|^2 - 2 a x_t.y_n + a^2 |y_n|^2 (float64 leaves no
    cancellation worth the name at these sizes).
    """
    from .schedules import get

    check_images(images, "images")
    check_images(x_t, "x_t", channels=images.shape[1], size=tuple(images.shape[2:]))
    t = check_number(t, "t", low=0.0)
    if not t < 1.0 + 1e-12:
        raise ValueError(f"t must lie in [0, 1], got {t!r}")
    sched = get(schedule)
    a = float(sched.alpha(t))
    s2 = float(sched.sigma(t)) ** 2
    if s2 <= 0.0:
        raise ValueError(f"t must be > 0: at t = {t!r} there is no noise and the weights are a hard choice")
    y = images.flatten(1).double()
    x = x_t.flatten(1).double().to(y.device)
    sq = (x * x).sum(1, keepdim=True) - 2.0 * a * (x @ y.T) + a * a * (y * y).sum(1)[None]
    return torch.softmax(-sq / (2.0 * s2), dim=1)


def weights_along(images, noise, steps: int = 20, schedule=None):
    """The ideal machine's DDIM trajectory from `noise`, and its weights at every call.

    Returns (times [steps] float64: the times the denoiser is called at, 1 down to 1/steps;
    weights [steps, B, N] float64: ``ideal_weights`` of the state at each of those times).
    """
    check_images(images, "images")
    check_images(noise, "noise", channels=images.shape[1], size=tuple(images.shape[2:]))
    steps = check_positive_int(steps, "steps")
    den = IdealDenoiser(images, schedule=schedule)
    _, traj = sampling.ddim(den, noise, steps=steps, return_trajectory=True, progress=False)
    times = traj.times[:-1]
    weights = torch.stack([ideal_weights(images, traj.x[i], float(t), den.schedule) for i, t in enumerate(times)])
    return times, weights


def _threshold(value, name: str) -> float:
    value = check_number(value, name, low=0.0, strict=True)
    if not value <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return value


def collapse_times(images, noise, steps: int = 20, schedule=None, threshold: float = 0.5) -> torch.Tensor:
    """When the ideal sampler commits to one training image: [B] times (NaN where it never does).

    For each noise image [B, C, H, W], the largest t on the DDIM grid of `steps` steps at which
    the ideal machine's top softmax weight along its own trajectory is >= `threshold`.
    """
    threshold = _threshold(threshold, "threshold")
    times, weights = weights_along(images, noise, steps, schedule)
    return _first_time(times, weights.amax(2) >= threshold)


def speciation_times(images, labels, noise, steps: int = 20, schedule=None, threshold: float = 0.9) -> torch.Tensor:
    """When the ideal sampler's class is decided: [B] times (NaN where it never is).

    labels: [N] int class of each training image. The final class is the one with the most weight
    at the last step; the speciation time is the largest t on the DDIM grid from which that class
    holds >= `threshold` of the weight at every later step.
    """
    threshold = _threshold(threshold, "threshold")
    check_images(images, "images")
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or len(labels) != len(images) or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"labels must be a 1-D integer tensor with one label per image ({len(images)}), "
            f"got {labels.dtype} of shape {tuple(labels.shape)}"
        )
    times, weights = weights_along(images, noise, steps, schedule)
    classes = torch.unique(labels)
    onehot = (labels[None, :] == classes[:, None]).double()  # [K, N]
    mass = weights @ onehot.T  # [steps, B, K]
    final = mass[-1].argmax(1)  # [B]
    held = mass.gather(2, final.view(1, -1, 1).expand(len(times), -1, 1))[..., 0]  # [steps, B]
    # "from t on, at every later step": the condition must hold on a suffix of the grid
    suffix = held >= threshold
    suffix = torch.flip(torch.cumprod(torch.flip(suffix, [0]).to(torch.int8), 0), [0]).bool()
    return _first_time(times, suffix)


def _first_time(times: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
    """Per column of hit [steps, B] (times decreasing down the rows): the largest t that hits, else NaN."""
    out = torch.full((hit.shape[1],), float("nan"), dtype=torch.float64)
    any_hit = hit.any(0)
    first = hit.to(torch.int8).argmax(0)  # the first row (largest t) that hits
    out[any_hit] = times.double()[first[any_hit]]
    return out


def commitment_along(denoiser, noise, steps: int = 20, every: int = 1, ink: float = 0.0, progress: bool = False):
    """How far a machine has committed, step by step along its own DDIM trajectory, from its ``explain``.

    The ideal machine commits to one training image for the whole picture; a patch machine (ELS)
    commits pixel by pixel, each pixel to a patch of its own. For each noise image [B, C, H, W]
    and every `every`-th time the denoiser is called at (the last one always included), over the
    pixels of the final sample whose mean over channels is above `ink` (its strokes; all pixels
    where there are none), this measures:

    - ``top_weight`` [K, B]: the median over those pixels of the winning candidate's softmax weight;
    - ``top_source_share`` [K, B]: the share of those pixels whose winner comes from the training
      image that wins the most of them (1 for the ideal machine: one image wins everywhere);
    - ``sources`` [K, B] int64: how many different training images win at least one of them.

    Returns a dict with those, ``times`` [K] float64 and the final ``sample`` [B, C, H, W].
    """
    check_images(noise, "noise")
    steps = check_positive_int(steps, "steps")
    every = check_positive_int(every, "every")
    ink = check_number(ink, "ink")
    if not callable(getattr(denoiser, "explain", None)):
        raise ValueError(f"denoiser must be a machine with an explain() method, got {type(denoiser).__name__}")
    sample, traj = sampling.ddim(denoiser, noise, steps=steps, return_trajectory=True, progress=False)
    calls = sorted(set(range(0, steps, every)) | {steps - 1})
    strokes = sample.mean(1) > ink  # [B, H, W]
    strokes[strokes.flatten(1).sum(1) == 0] = True  # a blank sample: all of its pixels
    iterator = calls
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(calls, desc="explain along the trajectory")
    top, share, sources = [], [], []
    for i in iterator:
        ex = denoiser.explain(traj.x[i], float(traj.times[i]))
        row_top, row_share, row_sources = [], [], []
        for b in range(len(noise)):
            mask = strokes[b].to(ex.weight.device)
            winners = ex.image[b][mask]
            counts = torch.bincount(winners)
            row_top.append(float(ex.weight[b][mask].double().median()))
            row_share.append(float(counts.max()) / len(winners))
            row_sources.append(int((counts > 0).sum()))
        top.append(row_top)
        share.append(row_share)
        sources.append(row_sources)
    return {
        "times": traj.times[calls].double(),
        "top_weight": torch.tensor(top, dtype=torch.float64),
        "top_source_share": torch.tensor(share, dtype=torch.float64),
        "sources": torch.tensor(sources, dtype=torch.int64),
        "sample": sample,
    }
