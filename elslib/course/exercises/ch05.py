"""Exercises of chapter 05: gradient mass in a window, the local machine at one pixel, finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ... import sampling, schedules
from .framework import Case, CheckResult, Exercise, softmax_average
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 5.1 share of gradient in a window


def _ref_share_inside(grad, pixel, patch_size):
    from ...receptive import share_inside_window

    return share_inside_window(grad, pixel, patch_size)


def _brute_share(grad, pixel, p, absolute=True, radius=None, clip=True, normalise=True) -> float:
    """Pixel by pixel (independent of elslib.receptive), with switches that build known mistakes."""
    g = grad.double()
    g = g.abs() if absolute else g
    row, col = pixel
    r = p // 2 if radius is None else radius
    h, w = g.shape[-2:]
    total, inside = 0.0, 0.0
    if not clip:  # python slicing with a negative start: an empty (or wrong) window near the border
        inside = float(g[:, row - r : row + r + 1, col - r : col + r + 1].sum())
    for i in range(h):
        for j in range(w):
            v = float(g[:, i, j].sum())
            total += v
            if clip and abs(i - row) <= r and abs(j - col) <= r:
                inside += v
    return inside / total if normalise else inside


def check_share_inside(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 5.1: ``share_inside(grad, pixel, patch_size) -> float``: the share of sum |grad| (over
    channels and pixels) that lies in the P x P window centred on pixel = (row, col), cut at the border."""
    hint = (
        "Take |grad|, sum it over the channels, then divide its sum over the window rows row - P//2 .. row + P//2 "
        "and columns col - P//2 .. col + P//2 (kept inside the image) by its sum over the whole image."
    )
    g1 = sampling.noise_like((1, 9, 9), seed=70)
    g2 = sampling.noise_like((2, 7, 8), seed=71)
    cases = []
    for what, g, pixel, p in [
        ("a 9x9 map, centre pixel, P = 3", g1, (4, 4), 3),
        ("a 9x9 map, pixel (2, 6), P = 5", g1, (2, 6), 5),
        ("P = 1: the pixel alone", g1, (4, 4), 1),
        ("a corner pixel (0, 0), P = 5: the window is cut at the border", g1, (0, 0), 5),
        ("two channels (summed), pixel (5, 1), P = 3", g2, (5, 1), 3),
        ("P = 17 covers the whole 9x9 map from the centre", g1, (4, 4), 17),
    ]:
        expected = _brute_share(g, pixel, p)
        mistakes = [
            (_brute_share(g, pixel, p, absolute=False), "Use the absolute value |grad|: signs would cancel."),
            (
                _brute_share(g, pixel, p, radius=p),
                "The window is P pixels across: it reaches P // 2 pixels on each side, not P.",
            ),
            (_brute_share(g, pixel, p, normalise=False), "Divide by the total of |grad| over the whole image."),
        ]
        if pixel[0] < p // 2 or pixel[1] < p // 2:
            mistakes.append(
                (
                    _brute_share(g, pixel, p, clip=False),
                    "Near the border, row - P//2 is negative and python slicing then starts from the *end*: "
                    "clip the start at 0 with max(0, row - P//2).",
                )
            )
        mistakes = [(w, h) for w, h in mistakes if not math.isclose(w, expected, rel_tol=1e-6, abs_tol=1e-9)]
        cases.append(Case(what, (g, pixel, p), expected, hint, atol=1e-6, rtol=1e-5, mistakes=mistakes))
    return _run("5.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 5.2 the local machine at one pixel


def _ref_local_denoiser_at(x_t, t, train, pixel, patch_size, schedule):
    """elslib.machines.LocalDenoiser, read at one pixel: [B, C]."""
    from ...machines import LocalDenoiser

    row, col = pixel
    return LocalDenoiser(train, patch_size=patch_size, schedule=schedule, device="cpu")(x_t, t)[:, :, row, col]


def _window_softmax(x_t, train, pixel, p, scale, temperature):
    """sum_n softmax_n(-|window(x_t) - scale window(x_n)|^2 / temperature) x_n[pixel], float64 (for mistakes)."""
    row, col = pixel
    r = p // 2
    rows, cols = slice(max(row - r, 0), row + r + 1), slice(max(col - r, 0), col + r + 1)
    q = x_t[:, :, rows, cols].reshape(len(x_t), -1)
    k = train[:, :, rows, cols].reshape(len(train), -1)
    return softmax_average(q, k, train[:, :, row, col], scale, temperature).to(x_t.dtype)


def check_local_denoiser_at(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 5.2: ``local_denoiser_at(x_t, t, train, pixel, patch_size, schedule) -> [B, C]``: the local
    machine's x0_hat at one pixel, a softmax over the training images' patches at that same pixel.
    Compared with ``elslib.machines.LocalDenoiser``."""
    cos = schedules.cosine()
    train = _images((7, 1, 6, 6), 80) * 2
    x_mid = cos.add_noise(train[[1, 4]], 0.5, sampling.noise_like((2, 1, 6, 6), seed=81))
    x_far = sampling.noise_like((3, 1, 6, 6), seed=82) * 2
    train2 = _images((5, 2, 5, 5), 83) * 2
    x2 = cos.add_noise(train2[[0, 3]], 0.4, sampling.noise_like((2, 2, 5, 5), seed=84))
    hint = (
        "Cut the P x P window around the pixel out of x_t and out of every training image (rows and columns "
        "max(0, row - P//2) .. row + P//2, the same for all), w_n = softmax_n(-|window(x_t) - a window(x_n)|^2 / "
        "(2 s^2)), and return sum_n w_n x_n[:, row, col]."
    )
    cases = []
    for what, x, t, tr, pixel, p in [
        ("an interior pixel (2, 3), P = 3, t = 0.5", x_mid, 0.5, train, (2, 3), 3),
        ("P = 1: each pixel on its own", x_mid, 0.5, train, (3, 3), 1),
        ("a border pixel (0, 5), P = 5 (the window is cut, as zero padding does)", x_mid, 0.3, train, (0, 5), 5),
        ("P = 11 covers the 6x6 image from any pixel: the ideal machine", x_mid, 0.6, train, (4, 1), 11),
        ("t = 0.05, noise far from every training patch (a naive exp() underflows)", x_far, 0.05, train, (3, 2), 3),
        ("two channels, pixel (2, 2), P = 3, t = 0.4", x2, 0.4, train2, (2, 2), 3),
    ]:
        a, s = cos.alpha(t), cos.sigma(t)
        expected = _ref_local_denoiser_at(x, t, tr, pixel, p, cos)
        mistakes = [
            (
                _window_softmax(x, tr, pixel, p, 1.0, 2 * s * s),
                "Compare the window of x_t with a times the training window: the signal shrinks by a.",
            ),
            (_window_softmax(x, tr, pixel, p, a, s * s), "The exponent is -d^2 / (2 s^2): the factor 2 is missing."),
            (_window_softmax(x, tr, pixel, p, a, 2 * s), "Divide by 2 s^2 (the noise variance), not by 2 s."),
        ]
        if p < 2 * max(x.shape[-2:]) - 1:
            whole = 2 * max(x.shape[-2:]) - 1
            mistakes.append(
                (
                    _window_softmax(x, tr, pixel, whole, a, 2 * s * s),
                    "That is the ideal machine: compare only the P x P window around the pixel, not whole images.",
                )
            )
        cases.append(Case(what, (x, t, tr, pixel, p, cos), expected, hint, atol=1e-4, rtol=1e-3, mistakes=mistakes))
    return _run("5.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 5.3 a gradient map by finite differences


def _ref_finite_difference_map(denoiser, x_t, t, pixel, h):
    """Central differences, one input value at a time, all in one batch: [C, H, W]."""
    row, col = pixel
    n = x_t[0].numel()
    bump = h * torch.eye(n, dtype=x_t.dtype).reshape(n, *x_t.shape[1:])
    up = denoiser(x_t + bump, t)[:, :, row, col].sum(1)
    down = denoiser(x_t - bump, t)[:, :, row, col].sum(1)
    return ((up - down) / (2 * h)).reshape(x_t.shape[1:])


def _exact_map(denoiser, x_t, t, pixel):
    """The exact gradient by autograd (independent of finite differences)."""
    from ...receptive import gradient_map

    return gradient_map(denoiser, x_t, t, pixel)[0]


def _forward_map(denoiser, x_t, t, pixel, h):
    row, col = pixel
    n = x_t[0].numel()
    bump = h * torch.eye(n, dtype=x_t.dtype).reshape(n, *x_t.shape[1:])
    base = denoiser(x_t, t)[:, :, row, col].sum(1)
    return ((denoiser(x_t + bump, t)[:, :, row, col].sum(1) - base) / h).reshape(x_t.shape[1:])


def _response_map(denoiser, x_t, t, pixel, h):
    """The wrong way round: poke the input at `pixel`, watch every output (a column of the Jacobian)."""
    row, col = pixel
    bump = torch.zeros_like(x_t)
    bump[:, :, row, col] = h
    diff = (denoiser(x_t + bump, t) - denoiser(x_t - bump, t)) / (2 * h)
    return diff[0].sum(0, keepdim=True).expand(x_t.shape[1:]).clone()


def _tiny_resnet(in_channels: int, seed: int):
    from ... import networks

    torch.manual_seed(seed)
    net = networks.ResNet(in_channels=in_channels, channels=4, blocks=1, target="v").double().eval()
    return networks.as_denoiser(net)


def check_finite_difference_map(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 5.3: ``finite_difference_map(denoiser, x_t, t, pixel, h) -> [C, H, W]``: how x0_hat at
    ``pixel`` changes with each input value, by central differences, for one image x_t [1, C, H, W].
    Compared with the exact gradient (autograd) on small networks, and with central differences on the
    local machine (which autograd cannot see through)."""
    from ...machines import LocalDenoiser

    hint = (
        "For every input value v (C*H*W of them) make x_t + h e_v and x_t - h e_v (e_v: 1 at v, 0 elsewhere; "
        "a batch of them, e.g. from torch.eye), run the denoiser, keep the output at the pixel (channels summed), "
        "and return (up - down) / (2 h) reshaped to [C, H, W]."
    )
    kernel = torch.arange(1.0, 10.0, dtype=torch.float64).view(1, 1, 3, 3) / 10

    def smooth(x, t):  # a smooth (not piecewise linear) denoiser: one-sided differences are visibly off
        return torch.tanh(4 * t * torch.nn.functional.conv2d(x, kernel, padding=1))

    x_smooth = sampling.noise_like((1, 1, 5, 5), seed=90).double()
    x_net = sampling.noise_like((1, 1, 8, 8), seed=91).double()
    x_two = sampling.noise_like((1, 2, 6, 6), seed=92).double()
    train = _images((7, 1, 6, 6), 93) * 2
    x_ls = schedules.cosine().add_noise(train[2:3], 0.5, sampling.noise_like((1, 1, 6, 6), seed=94))
    ls = LocalDenoiser(train, patch_size=3, device="cpu")
    cases = [
        (
            "a smooth denoiser (tanh of a 3x3 convolution), pixel (2, 2), h = 0.01",
            smooth,
            x_smooth,
            0.5,
            (2, 2),
            1e-2,
            "smooth",
        ),
        ("a small ResNet (one block), pixel (3, 4)", _tiny_resnet(1, 95), x_net, 0.5, (3, 4), 1e-4, None),
        ("the same ResNet, corner pixel (0, 0)", _tiny_resnet(1, 95), x_net, 0.3, (0, 0), 1e-4, None),
        ("a ResNet on two-channel images, pixel (2, 3)", _tiny_resnet(2, 96), x_two, 0.6, (2, 3), 1e-4, None),
        ("the local machine LS (P = 3), pixel (1, 4)", ls, x_ls, 0.5, (1, 4), 1e-2, "fd"),
    ]
    out = []
    for what, den, x, t, pixel, h, kind in cases:
        if kind == "fd":
            expected, atol = _ref_finite_difference_map(den, x, t, pixel, h), 1e-3
        else:  # central differences are within O(h^2) of the exact gradient (exact for the piecewise linear ReLU nets)
            expected, atol = _exact_map(den, x, t, pixel).to(x.dtype), 1e-4 if kind == "smooth" else 1e-5
        mistakes = [
            (
                _response_map(den, x, t, pixel, h),
                "That is the *response* to poking the input at the pixel (how every "
                "output moves). We want the other direction: how the output at the pixel moves with every input.",
            ),
            (2 * expected, "Central differences divide by 2 h (the two points are 2 h apart), not by h."),
        ]
        if kind == "smooth":  # one-sided differences are off by O(h) there
            mistakes.append(
                (
                    _forward_map(den, x, t, pixel, h),
                    "Use central differences: (D(x + h e) - D(x - h e)) "
                    "/ (2 h); the one-sided (D(x + h e) - D(x)) / h is off by O(h).",
                )
            )
        mistakes = [(w, m) for w, m in mistakes if not torch.allclose(w.double(), expected.double(), atol=atol)]
        out.append(Case(what, (den, x, t, pixel, h), expected, hint, atol=atol, rtol=1e-3, mistakes=mistakes))
    return _run("5.3", fn, out, quiet)


EXERCISES: dict[str, Exercise] = {
    "5.1": Exercise("the share of the gradient inside a P x P window", check_share_inside, _ref_share_inside),
    "5.2": Exercise("the local machine (LS) at one pixel", check_local_denoiser_at, _ref_local_denoiser_at),
    "5.3": Exercise("a gradient map by finite differences", check_finite_difference_map, _ref_finite_difference_map),
}
