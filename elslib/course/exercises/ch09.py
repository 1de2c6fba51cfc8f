"""Exercises of chapter 09: when does a model copy? (the copy rule's scale, collapse and speciation times)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ... import data
from ...dynamics import _first_time
from ...memorisation import leave_one_out_distances
from .ch07 import _case
from .framework import CheckResult, Exercise
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 9.1 distance to the nearest other


def _ref_nearest_other_distances(images):
    """The library's leave-one-out distances (RMS, each image against all the others)."""
    return leave_one_out_distances(images)


def check_nearest_other_distances(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 9.1: ``nearest_other_distances(images) -> [N]``: for each image [N, C, H, W], the RMS
    distance to the nearest *other* image of the set. Compared with
    ``elslib.memorisation.leave_one_out_distances``."""
    hint = (
        "Flatten the images to [N, D]; all squared distances at once: d2[i, j] = sum over pixels of "
        "(y_i - y_j)^2 (torch.cdist squared, with compute_mode='donot_use_mm_for_euclid_dist' for exact zeros). "
        "Put +inf on the diagonal so that no image is its own neighbour, take the smallest of each row, divide "
        "by D and take the square root: the root-mean-square distance."
    )
    digits, _ = data.load("mnist", n=20)
    twins = torch.cat([_images((4, 1, 6, 6), 90), _images((1, 1, 6, 6), 90)[:1]])  # image 0 twice
    cases = []
    for what, images in [
        ("five random 1 x 4 x 4 images", _images((5, 1, 4, 4), 91)),
        ("a set holding the same image twice (those two are at distance 0)", twins),
        ("20 real digits, 32 x 32", digits),
        ("three colour images, 3 x 5 x 5", _images((3, 3, 5, 5), 92)),
    ]:
        y = images.flatten(1).double()
        d2 = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        no_self = d2 + torch.diag(torch.full((len(y),), float("inf"), dtype=torch.float64))
        mistakes = [
            (
                d2.min(1).values.sqrt() / y.shape[1] ** 0.5,
                "Every answer is 0: each image is nearest to itself. Leave it out (+inf on the diagonal).",
            ),
            (
                no_self.min(1).values.sqrt(),
                "That is the Euclidean distance; the course's distance is the root-MEAN-square one: divide the "
                "squared distance by the number of pixels D before the square root.",
            ),
            (
                no_self.min(1).values / y.shape[1],
                "That is the mean squared difference; take its square root.",
            ),
        ]
        cases.append(_case(what, (images,), _ref_nearest_other_distances(images), hint, mistakes, atol=1e-5))
    return _run("9.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 9.2 the collapse time


def _ref_collapse_time(times, top_weight, threshold):
    """The largest time at which the top weight reaches the threshold (the rule of elslib.dynamics)."""
    times = torch.as_tensor(times, dtype=torch.float64)
    return _first_time(times, torch.as_tensor(top_weight, dtype=torch.float64) >= threshold)


def _grid(steps: int) -> torch.Tensor:
    return torch.tensor([1.0 - i / steps for i in range(steps)], dtype=torch.float64)


def _rising(steps: int, b: int, seed: int) -> torch.Tensor:
    """Made-up top weights [steps, B] that rise from about 1/N towards 1 with a wobble, as along a DDIM run."""
    gen = torch.Generator().manual_seed(seed)
    centre = 0.3 * steps + 0.4 * steps * torch.rand(b, generator=gen)
    k = torch.arange(steps, dtype=torch.float64)[:, None]
    w = torch.sigmoid((k - centre[None, :].double()) / 1.5) + 0.08 * torch.randn(steps, b, generator=gen).double()
    w = w.clamp(0.001, 1.0)
    w[-1] = 1.0  # by the last step every run has committed, so every case has an answer
    return w


def check_collapse_time(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 9.2: ``collapse_time(times, top_weight, threshold) -> [B]``: times [K] decreasing (the DDIM
    grid), top_weight [K, B] (the largest softmax weight at each step, per seed); the largest t at which the
    top weight is >= threshold. Compared with the rule of ``elslib.dynamics.collapse_times``."""
    hint = (
        "hit = top_weight >= threshold, a [K, B] table of True/False. For each seed (column) you want the "
        "FIRST row that is True, because the rows run from t = 1 down: its time is the largest t. "
        "hit.to(torch.int8).argmax(0) gives the first True row of each column; index times with it."
    )
    cases = []
    exact = torch.tensor([[0.2, 0.1], [0.5, 0.3], [0.45, 0.8], [1.0, 1.0]], dtype=torch.float64)
    for what, (times, w, threshold) in [
        ("4 steps, 2 seeds, one weight exactly at the threshold 0.5", (_grid(4), exact, 0.5)),
        ("20 steps (the paper's grid), 6 seeds, threshold 0.5", (_grid(20), _rising(20, 6, 93), 0.5)),
        ("a weight that rises, falls back and rises again, threshold 0.5", (_grid(20), _rising(20, 8, 94), 0.5)),
        ("threshold 0.9", (_grid(10), _rising(10, 5, 95), 0.9)),
    ]:
        hit = w >= threshold
        last = torch.tensor([float(times[hit[:, b]].min()) for b in range(w.shape[1])], dtype=torch.float64)
        index = hit.to(torch.int8).argmax(0).double()
        mistakes = [
            (_first_time(times, w > threshold), "The rule says >= threshold: a weight exactly at it counts."),
            (last, "That is the smallest t that reaches the threshold; the collapse time is the largest one."),
            (index, "That is the step's index; return its time, times[index]."),
        ]
        expected = _ref_collapse_time(times, w, threshold)
        cases.append(_case(what, (times, w, threshold), expected, hint, mistakes, atol=1e-9))
    return _run("9.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 9.3 the speciation time


def _ref_speciation_time(times, weights, labels, threshold):
    """The rule of elslib.dynamics.speciation_times, from the weights along a trajectory."""
    times = torch.as_tensor(times, dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64)
    labels = torch.as_tensor(labels)
    classes = torch.unique(labels)
    mass = weights @ (labels[None, :] == classes[:, None]).double().T  # [K, B, classes]
    final = mass[-1].argmax(1)
    held = mass.gather(2, final.view(1, -1, 1).expand(len(times), -1, 1))[..., 0]  # [K, B]
    suffix = torch.flip(torch.cumprod(torch.flip(held >= threshold, [0]).to(torch.int8), 0), [0]).bool()
    return _first_time(times, suffix)


def _class_weights(steps: int, b: int, n: int, classes: int, seed: int):
    """Made-up weights [steps, B, N] that concentrate on one image, with a class that wavers on the way."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    logits = torch.randn(steps, b, n, generator=gen, dtype=torch.float64)
    winner = torch.randint(0, n, (b,), generator=gen)
    rival = (winner + 1) % n  # another class
    k = torch.arange(steps, dtype=torch.float64)[:, None]
    ramp = k / (steps - 1)  # 0 at t = 1, 1 at the last step
    logits[:, torch.arange(b), winner] += 12.0 * ramp
    wobble = torch.zeros(steps, 1, dtype=torch.float64)
    wobble[steps // 2] = 9.0  # halfway, the rival class takes over for one step
    logits[:, torch.arange(b), rival] += wobble + 3.0 * ramp
    return torch.softmax(logits, -1), labels


def check_speciation_time(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 9.3: ``speciation_time(times, weights, labels, threshold) -> [B]``: weights [K, B, N] along the
    trajectory, labels [N]; the final class is the one with the most weight at the last step, and the answer is
    the largest t from which that class holds >= threshold of the weight at that step and every later one.
    Compared with the rule of ``elslib.dynamics.speciation_times``."""
    hint = (
        "Class mass: for each class k, mass[..., k] = weights[..., labels == k].sum(-1). The final class of each "
        "seed is mass[-1].argmax(-1); held[step, b] = the mass of seed b's final class at that step. Then walk "
        "from the LAST step backwards while held >= threshold: the earliest step of that unbroken run (the "
        "largest t) is the answer. A flip, a cumulative product and a flip back do it for every seed at once."
    )
    cases = []
    for what, (steps, b, n, k, seed, threshold) in [
        ("6 steps, 2 seeds, 6 images of 3 classes", (6, 2, 6, 3, 96, 0.9)),
        ("20 steps, 4 seeds, 30 images of 10 classes, the class wavers halfway", (20, 4, 30, 10, 97, 0.9)),
        ("threshold 0.6", (12, 3, 12, 4, 98, 0.6)),
        ("two classes only", (10, 5, 8, 2, 99, 0.9)),
    ]:
        weights, labels = _class_weights(steps, b, n, k, seed)
        times = _grid(steps)
        classes = torch.unique(labels)
        mass = weights @ (labels[None, :] == classes[:, None]).double().T
        final = mass[-1].argmax(1)
        held = mass.gather(2, final.view(1, -1, 1).expand(steps, -1, 1))[..., 0]
        first_crossing = _first_time(times, held >= threshold)
        top_image = _first_time(times, weights.amax(2) >= threshold)
        mistakes = [
            (
                first_crossing,
                "That is the first time the final class reaches the threshold; it must also hold it at EVERY later "
                "step. Walk back from the last step and stop where it drops below.",
            ),
            (
                top_image,
                "That looks at single images (the top weight); speciation is about the class: add up the "
                "weights of each class's images first.",
            ),
        ]
        expected = _ref_speciation_time(times, weights, labels, threshold)
        cases.append(_case(what, (times, weights, labels, threshold), expected, hint, mistakes, atol=1e-9))
    return _run("9.3", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "9.1": Exercise(
        "the RMS distance from each image to the nearest other one",
        check_nearest_other_distances,
        _ref_nearest_other_distances,
    ),
    "9.2": Exercise("the collapse time: when one training image wins", check_collapse_time, _ref_collapse_time),
    "9.3": Exercise(
        "the speciation time: when the class is decided for good", check_speciation_time, _ref_speciation_time
    ),
}
