"""Exercises of chapter 04: a trained CNN creates (receptive field, training loss, copy detection)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ... import networks, sampling
from .framework import Case, CheckResult, Exercise
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 4.1 receptive field


def _measured_receptive_field(layers) -> int:
    """Measure, by backpropagation, how many input positions one output unit of a stack of 1-D
    convolutions depends on. layers: [(kernel_size, stride), ...]. All weights are 1, so every
    input the unit sees gets a positive gradient and none cancels."""
    layers = [(int(k), int(s)) for k, s in layers]
    # an input long enough that the middle output unit sits far from both ends
    reach = 1
    for k, s in layers:
        reach = reach * s + k
    x = torch.zeros(1, 1, 4 * reach + 8, dtype=torch.float64, requires_grad=True)
    h = x
    for k, s in layers:
        h = F.conv1d(h, torch.ones(1, 1, k, dtype=torch.float64), stride=s)
    h[0, 0, h.shape[-1] // 2].backward()
    seen = (x.grad[0, 0] != 0).nonzero().view(-1)
    return int(seen.max() - seen.min() + 1)


def _ref_receptive_field(layers):
    return _measured_receptive_field(layers)


def check_receptive_field(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 4.1: ``receptive_field(layers) -> int``, the width (in input pixels) of what one
    output pixel of a stack of convolutions sees; ``layers`` lists (kernel_size, stride) from the
    input up. Compared with a measurement: backpropagate from one output unit of the stack built
    with all-one weights and count the input positions that receive a gradient."""
    hint = (
        "Walk up the stack keeping two numbers: the width r seen so far (start at 1) and the spacing J, in input "
        "pixels, between neighbouring units of the current layer (start at 1). A layer with kernel k and stride s "
        "does r += (k - 1) * J, then J *= s."
    )
    stride_hint = (
        "After a layer with stride 2, neighbouring units are 2 input pixels apart, so each later kernel tap reaches "
        "2 pixels further: multiply (k - 1) by the product of the strides of the layers *below* the current one."
    )
    cases_in = [
        ("the minimal ResNet with L = 6 blocks: 8 layers of 3x3, stride 1", [(3, 1)] * 8),
        ("a 5x5 then a 3x3 convolution", [(5, 1), (3, 1)]),
        ("one 1x1 convolution: each pixel sees only itself", [(1, 1)]),
        ("two 3x3, a 2x2 average pool (kernel 2, stride 2), two 3x3", [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1)]),
        ("a stride-2 2x2 layer first, then a 3x3", [(2, 2), (3, 1)]),
        (
            "the UNet's way down: 2 x (3x3), pool, 2 x (3x3), pool, 2 x (3x3)",
            [(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2), (3, 1), (3, 1)],
        ),
    ]
    cases = []
    for what, layers in cases_in:
        expected = float(_measured_receptive_field(layers))
        no_strides = float(1 + sum(k - 1 for k, _ in layers))
        own_stride, jump = 1, 1  # the stride applied one layer too early
        for k, stride in layers:
            jump *= stride
            own_stride += (k - 1) * jump
        mistakes = [
            (float(sum(k for k, _ in layers)), "Each layer widens the field by k - 1, not by k: start from 1."),
            (
                float(sum(k - 1 for k, _ in layers)),
                "Start from a width of 1 (the pixel itself), then add k - 1 per layer.",
            ),
        ]
        if no_strides != expected:
            mistakes.append((no_strides, stride_hint))
        if own_stride != expected:
            mistakes.append(
                (float(own_stride), "A layer's own stride does not widen its own field, only the layers above it.")
            )
        cases.append(Case(what, (layers,), expected, hint, atol=0.0, rtol=0.0, mistakes=mistakes))
    return _run("4.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 4.2 training loss


def _ref_training_loss(output, x0, eps, a, s, target):
    return float(F.mse_loss(output, networks.regression_target(x0, eps, a, s, target)))


def check_training_loss(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 4.2: ``training_loss(output, x0, eps, a, s, target) -> float``: the mean squared
    error between a network's output and its regression target, eps or v = a eps - s x0, for one
    batch. Compared with ``elslib.networks.regression_target`` and a mean squared error."""
    x0 = _images((3, 1, 4, 4), 70) * 2
    eps = sampling.noise_like((3, 1, 4, 4), seed=71)
    out = sampling.noise_like((3, 1, 4, 4), seed=72) * 0.7
    a_vec = torch.tensor([0.95, 0.6, 0.1]).view(-1, 1, 1, 1)
    s_vec = (1 - a_vec**2).sqrt()
    a1, s1 = 0.8, 0.6
    hint = (
        "Form the target first (eps itself, or v = a * eps - s * x0), then return the mean over all entries of "
        "(output - target)^2 as a float."
    )

    def mse(o, tgt):
        return float(((o - tgt) ** 2).mean())

    cases = []
    for what, args in [
        ("target 'eps', a = 0.8, s = 0.6", (out, x0, eps, a1, s1, "eps")),
        ("target 'v', a = 0.8, s = 0.6", (out, x0, eps, a1, s1, "v")),
        ("target 'v', one time per image: a and s of shape [3, 1, 1, 1]", (out, x0, eps, a_vec, s_vec, "v")),
        ("target 'eps', one time per image", (out, x0, eps, a_vec, s_vec, "eps")),
    ]:
        o, x, e, a, s, target = args
        right = e if target == "eps" else a * e - s * x
        mistakes = [
            (float(((o - right) ** 2).sum()), "Take the mean over all entries, not the sum."),
            (mse(o, right) ** 0.5, "The loss is the mean *squared* error: no square root."),
        ]
        if target == "v":
            mistakes += [
                (mse(o, s * x - a * e), "Mind the sign: v = a * eps - s * x0."),
                (mse(o, s * e - a * x), "a and s are swapped: v = a * eps - s * x0 (a multiplies the noise)."),
                (mse(o, e), "With target 'v' the network is trained to output v = a * eps - s * x0, not eps."),
                (mse(o, a * x + s * e), "That is x_t = a x0 + s eps; the v target is a * eps - s * x0."),
            ]
        else:
            mistakes.append((mse(o, a * e - s * x), "With target 'eps' the target is the noise eps itself."))
        mistakes = [(float(m), h) for m, h in mistakes]
        cases.append(Case(what, args, _ref_training_loss(*args), hint, atol=1e-6, rtol=1e-5, mistakes=mistakes))
    v_exact = a1 * eps - s1 * x0
    cases.append(
        Case(
            "an output equal to the v target: the loss is 0",
            (v_exact, x0, eps, a1, s1, "v"),
            0.0,
            "If the output is exactly a * eps - s * x0, every difference is 0 and so is the loss.",
            atol=1e-6,
        )
    )
    return _run("4.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 4.3 copy fraction


def _two_nearest(samples, train):
    """Distances (RMS over pixels, float64, computed as differences) to the nearest and second
    nearest training image: [B, 2]."""
    q = samples.reshape(len(samples), 1, -1).double()
    k = train.reshape(1, len(train), -1).double()
    d = ((q - k) ** 2).mean(dim=2).sqrt()
    return d.sort(dim=1).values[:, :2]


def _ref_copy_fraction(samples, train, ratio):
    d = _two_nearest(samples, train)
    return float((d[:, 0] < ratio * d[:, 1]).double().mean())


def check_copy_fraction(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 4.3: ``copy_fraction(samples, train, ratio) -> float``: the fraction of samples
    whose nearest training image is closer than ``ratio`` times the second nearest (RMS pixel
    distance). Compared with a direct float64 computation of all distances."""
    train = _images((6, 1, 4, 4), 80) * 2
    gen = torch.Generator().manual_seed(81)
    near_copies = train[[0, 3, 5]] + 0.01 * torch.randn((3, 1, 4, 4), generator=gen)
    between = 0.5 * (train[[1, 2]] + train[[4, 0]])  # halfway between two training images: not a copy
    new = _images((4, 1, 4, 4), 82) * 2
    mix = torch.cat([near_copies, between, new])
    hint = (
        "For each sample compute its RMS distance to every training image, sort, and compare the smallest d1 with "
        "the second smallest d2: it is a copy when d1 < ratio * d2. Return the fraction of copies as a float."
    )
    cases = []
    for what, s, ratio in [
        ("three near-copies of training images, ratio 1/3", near_copies, 1 / 3),
        ("two images halfway between two training images, ratio 1/3", between, 1 / 3),
        ("a mixture of near-copies, halfway images and new images, ratio 1/3", mix, 1 / 3),
        ("the same mixture with a lenient ratio of 0.9", mix, 0.9),
    ]:
        d = _two_nearest(s, train)
        mistakes = [
            (float((d[:, 0] < ratio * d[:, 1]).double().sum()), "Return the fraction of copies, not their number."),
            (float((d[:, 0] >= ratio * d[:, 1]).double().mean()), "That is the fraction of non-copies: flip the test."),
            (
                float((d[:, 1] < ratio * d[:, 0]).double().mean()),
                "Compare the nearest with the second nearest: copy when d1 < ratio * d2.",
            ),
        ]
        expected = _ref_copy_fraction(s, train, ratio)
        cases.append(Case(what, (s, train, ratio), expected, hint, atol=1e-9, rtol=0.0, mistakes=mistakes))
    return _run("4.3", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "4.1": Exercise("the receptive field of a stack of convolutions", check_receptive_field, _ref_receptive_field),
    "4.2": Exercise("the diffusion training loss for an eps or v target", check_training_loss, _ref_training_loss),
    "4.3": Exercise("the fraction of samples that copy a training image", check_copy_fraction, _ref_copy_fraction),
}
