r"""Calibrating the ELS machine's patch size P(t) against a trained network.

A network's effective receptive field is not fixed: at high noise it integrates over large
regions, at low noise it looks at small neighbourhoods. The paper measures this as follows,
and so do we:

1. run the network's own DDIM trajectory from a seed;
2. at every step, give the *same* noisy image x_t to the machine with each odd patch size P;
3. keep the P whose output is most similar (cosine similarity) to the network's prediction;
4. over several seeds, take the median P at each step.

The result is a :class:`ScaleSchedule`: a function t -> P to pass as ``patch_size=``. It is
defined at the times it was calibrated at (those of a DDIM run with the same number of steps);
a calibrated scale must be used at the same t it was measured at, so between those times it
holds the value of the nearest calibrated time.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import sampling
from .checks import (
    check_callable,
    check_choice,
    check_odd,
    check_positive_int,
    check_seed,
    check_sequence,
    check_time,
    is_integer,
)
from .denoisers import schedule_of
from .metrics import cosine_similarity


def best_patch_sizes(similarity: torch.Tensor, sizes) -> torch.Tensor:
    """Each seed's best patch size at each step: int64 [seeds, steps].

    similarity: [seeds, steps, len(sizes)] cosine similarities, NaN where a size was not tried
    (NaN never wins); sizes: the patch sizes in the order of the last axis. Ties go to the first.
    """
    sizes = torch.as_tensor(check_sequence(sizes, "sizes"), dtype=torch.int64)
    similarity = torch.as_tensor(similarity)
    if similarity.dim() != 3 or similarity.shape[2] != len(sizes):
        shape = tuple(similarity.shape)
        raise ValueError(f"similarity must have shape [seeds, steps, {len(sizes)}] (one per size), got {shape}")
    return sizes[torch.nan_to_num(similarity, nan=-float("inf")).argmax(dim=2)]


@dataclass
class ScaleSchedule:
    """A patch size for each diffusion time: call it as ``schedule(t) -> odd int``.

    times: the calibrated times, descending as DDIM visits them; patch_sizes: the P at each;
    similarity: [seeds, steps, sizes] the cosine similarities measured (None when loaded).
    """

    times: list[float]
    patch_sizes: list[int]
    similarity: torch.Tensor | None = None
    candidates: list[int] | None = None

    def __post_init__(self):
        self.times = [float(check_time(t, "times entry")) for t in check_sequence(self.times, "times")]
        self.patch_sizes = [check_odd(p, "patch_sizes entry") for p in check_sequence(self.patch_sizes, "patch_sizes")]
        if len(self.times) != len(self.patch_sizes):
            raise ValueError(
                f"times and patch_sizes must have the same length, got {len(self.times)} and {len(self.patch_sizes)}"
            )

    def __call__(self, t) -> int:
        if isinstance(t, torch.Tensor):
            t = check_time(t.flatten())
            if not t.numel() or bool((t != t[0]).any()):
                raise ValueError(
                    f"t must be one time (a float, or a tensor whose times are all equal), got {t.tolist()}"
                )
            t = t[0]
        t = float(check_time(t))
        nearest = min(range(len(self.times)), key=lambda i: abs(self.times[i] - t))
        return int(self.patch_sizes[nearest])

    def best_per_seed(self) -> list[list[int]] | None:
        """[seeds][steps]: the best P of each calibration seed at each step (None when loaded)."""
        if self.similarity is None or self.candidates is None:
            return None
        return best_patch_sizes(self.similarity, self.candidates).tolist()

    def to_dict(self) -> dict:
        return {"times": [round(t, 6) for t in self.times], "patch_sizes": [int(p) for p in self.patch_sizes]}

    @classmethod
    def from_dict(cls, d: dict) -> ScaleSchedule:
        """The schedule written by :meth:`to_dict` (a dict with 'times' and 'patch_sizes')."""
        if not isinstance(d, dict) or not {"times", "patch_sizes"} <= set(d):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"ScaleSchedule.from_dict needs a dict with keys 'times' and 'patch_sizes', got {got}")
        return cls(d["times"], d["patch_sizes"])

    def plot(self, ax=None, title: str = "Calibrated patch size P(t)"):
        """Step plot of P against t, with the spread over seeds when it was measured here."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.5))
        ax.step(self.times, self.patch_sizes, where="mid", marker="o", label="median over seeds")
        if self.similarity is not None and self.candidates is not None:
            best = best_patch_sizes(self.similarity, self.candidates)
            lo, hi = best.float().quantile(0.25, dim=0), best.float().quantile(0.75, dim=0)
            ax.fill_between(self.times, lo, hi, step="mid", alpha=0.25, label="25-75% of seeds")
        ax.set_xlabel("diffusion time t (noise grows to the right)")
        ax.set_ylabel("patch size P (pixels)")
        ax.set_title(title)
        ax.legend()
        return ax


def last_step_with_patches(patch_size, times, at_least: int) -> tuple[int, int]:
    """The last sampling step whose patch size is at least `at_least`, and that size: (step, P).

    patch_size: an odd int or a schedule t -> P (a :class:`ScaleSchedule`); times: the sampler's times,
    t_0 = 1 down to the final 0 (a trajectory's ``times``), whose steps are all but the last. Explaining a
    mosaic wants real patches: at P = 1 a "patch" is one pixel, and identical pixel values tie.
    """
    sizes = [patch_size(float(t)) if callable(patch_size) else patch_size for t in list(times)[:-1]]
    steps = [i for i, p in enumerate(sizes) if p >= at_least]
    if not steps:
        raise ValueError(f"no step has a patch size of at least {at_least}: sizes {sizes}")
    return steps[-1], sizes[steps[-1]]


def calibrate(
    network,
    make_machine,
    shape,
    seeds=range(8),
    patch_sizes=None,
    steps: int = 20,
    schedule=None,
    search: str = "full",
    progress: bool = True,
    similarity=cosine_similarity,
    labels=None,
) -> ScaleSchedule:
    """Measure the patch-size schedule under which a machine best imitates a network.

    Args:
        network: the network as a denoiser ``D(x_t, t) -> x0_hat`` (see ``networks.as_denoiser``).
        make_machine: ``P -> denoiser``, e.g. ``lambda P: machines.build("ELS", images, patch_size=P)``,
            under the network's schedule.
        shape: (C, H, W) of one image.
        seeds: the noise seeds whose network trajectories are used.
        patch_sizes: the odd sizes to try (default 1, 3, ..., up to the image side).
        steps: DDIM steps; the schedule is defined at those times.
        search: "full" tries every size at every step. "local" tries every size at the first
            step only; at each later step it starts from the previous step's P and its two
            neighbours in `patch_sizes`, and walks on while the best lies at the edge of what it
            tried. P(t) changes slowly with t, so this finds the same answer as the full search
            whenever the similarity has a single peak in P, for a third of the machine calls.
            Sizes not tried are NaN in ``similarity``.
        similarity: ``(machine images [B, C, H, W], network images) -> [B]``, larger = more alike; the
            paper's rule, and the default, is the cosine similarity of the two predictions as vectors.
        labels: for a class-conditional network and machine, the class each seed is drawn as (one
            int per seed); both are then called with ``label=``. None: unconditional.

    Returns a :class:`ScaleSchedule` (median over seeds of the best P at each step).
    """
    steps = check_positive_int(steps, "steps")
    check_choice(search, "search", ("full", "local"))
    seeds = [check_seed(s, "seeds entry") for s in check_sequence(seeds, "seeds")]
    check_callable(network, "network", call="network(x_t, t) -> x0_hat")
    check_callable(make_machine, "make_machine", (1,), call="make_machine(P) -> denoiser")
    if not callable(similarity):
        raise TypeError(f"similarity must be a function (images, images) -> [B], got {type(similarity).__name__}")
    dims = check_sequence(shape, "shape")
    if len(dims) != 3 or not all(is_integer(d) and d >= 1 for d in dims):
        raise ValueError(f"shape must be (C, H, W), three integers >= 1, got {shape!r}")
    c, h, w = (int(d) for d in dims)
    if patch_sizes is None:
        sizes = list(range(1, max(h, w) + 1, 2))
    else:
        sizes = sorted(check_odd(p, "patch_sizes entry") for p in check_sequence(patch_sizes, "patch_sizes"))
    if labels is not None:
        labels = [check_positive_int(k, "labels entry", minimum=0) for k in check_sequence(labels, "labels")]
        if len(labels) != len(seeds):
            raise ValueError(f"labels must hold one class per seed ({len(seeds)}), got {len(labels)}")
    conditioning = {} if labels is None else {"label": labels}
    noise = sampling.seeded_noise(seeds, (c, h, w))
    sched = schedule_of(network, schedule)
    try:
        _, traj = sampling.ddim(
            network, noise, steps=steps, schedule=sched, return_trajectory=True, progress=False, **conditioning
        )
    except ValueError as err:
        raise ValueError(f"network: its DDIM trajectory failed: {err}") from err
    sim = torch.full((len(seeds), steps, len(sizes)), float("nan"))
    machines: dict[int, object] = {}  # the few most recent machines: their precomputations are large

    def measure(i: int, j: int) -> None:
        if not torch.isnan(sim[0, i, j]):
            return
        if j not in machines:
            if len(machines) >= (1 if search == "full" else 3):
                machines.pop(next(iter(machines)))
            machines[j] = make_machine(sizes[j])
            schedule_of(machines[j], sched)  # the machine must read t as the network does (raises if not)
        t = float(traj.times[i])
        try:
            guess = machines[j](traj.x[i], t, **conditioning)
            found = torch.as_tensor(similarity(guess, traj.x0_hat[i])).float().flatten()
        except ValueError as err:
            raise ValueError(f"make_machine({sizes[j]}) or similarity failed at t = {t:.4g}: {err}") from err
        if found.numel() != len(seeds) or not torch.isfinite(found).all():
            raise ValueError(
                f"make_machine({sizes[j]}) and similarity gave {found.tolist()} at t = {t:.4g}: the similarity "
                f"must be one finite number per seed ({len(seeds)})"
            )
        sim[:, i, j] = found

    def median_best(i: int) -> int:
        best = torch.nan_to_num(sim[:, i], nan=-float("inf")).argmax(dim=1)  # [seeds]
        return int(best.median())  # the lower median: always one of the sizes tried

    if search == "full":
        jobs = [(i, j) for j in range(len(sizes)) for i in range(steps)]  # size-major: one machine at a time
        for i, j in _progress(jobs, progress, "calibrating P(t)"):
            measure(i, j)
    else:
        centre = None
        for i in _progress(range(steps), progress, "calibrating P(t), local search"):
            tried = range(len(sizes)) if centre is None else range(max(centre - 1, 0), min(centre + 2, len(sizes)))
            for j in tried:
                measure(i, j)
            lo, hi = tried.start, tried.stop - 1
            while True:  # walk on while the best is at the edge of what was tried
                j = median_best(i)
                if j == lo and lo > 0:
                    lo -= 1
                    measure(i, lo)
                elif j == hi and hi < len(sizes) - 1:
                    hi += 1
                    measure(i, hi)
                else:
                    break
            centre = j
    median = best_patch_sizes(sim, sizes).median(dim=0).values  # the lower median: always one of the odd sizes tried
    return ScaleSchedule([float(t) for t in traj.times[:-1]], median.tolist(), sim, sizes)


def _progress(iterable, show: bool, desc: str):
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc)
