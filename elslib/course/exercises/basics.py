"""Exercises of chapters 01-03: noise, denoising, the ideal denoiser."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ... import sampling, schedules
from .framework import Case, CheckResult, Exercise, StandIn, image_softmax_average
from .framework import random_images as _images
from .framework import run_cases as _run

# --------------------------------------------------------------------------- 1.1 add_noise


def _ref_add_noise(x0, t, noise, schedule):
    return schedules.get(schedule).add_noise(x0, t, noise)


def check_add_noise(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 1.1: ``add_noise(x0, t, noise, schedule) -> x_t = a(t) x0 + s(t) noise``."""
    cos, lin = schedules.cosine(), schedules.linear()
    x0, eps = _images((1, 1, 4, 4), 1), sampling.noise_like((1, 1, 4, 4), seed=2)
    xb, eb = _images((3, 1, 4, 4), 3), sampling.noise_like((3, 1, 4, 4), seed=4)
    tb = torch.tensor([0.1, 0.5, 0.9])
    base_hint = "x_t = a x0 + s noise with a = sqrt(alpha_bar(t)) and s = sqrt(1 - alpha_bar(t)): schedule.alpha(t)."

    def no_sqrt(x, t, n, sched):
        ab = sched.alpha_bar(t)
        ab = ab.view(-1, 1, 1, 1) if isinstance(ab, torch.Tensor) else ab
        return ab * x + (1 - ab) * n

    cases = [
        Case("one image, t = 0.5", (x0, 0.5, eps, cos), _ref_add_noise(x0, 0.5, eps, cos), base_hint),
        Case("t = 0: no noise at all", (x0, 0.0, eps, cos), x0.clone(), "At t = 0, alpha_bar = 1: x_t must be x0."),
        Case(
            "t = 0.999: almost pure noise",
            (x0, 0.999, eps, cos),
            _ref_add_noise(x0, 0.999, eps, cos),
            "Near t = 1 almost nothing of x0 survives; x_t should be very close to the noise.",
        ),
        Case(
            "the linear schedule, t = 0.3",
            (x0, 0.3, eps, lin),
            _ref_add_noise(x0, 0.3, eps, lin),
            "Use the schedule you are given (schedule.alpha(t), schedule.sigma(t)), not a fixed one.",
        ),
        Case(
            "a batch of 3 images with one time each, t = tensor([0.1, 0.5, 0.9])",
            (xb, tb, eb, cos),
            _ref_add_noise(xb, tb, eb, cos),
            "With a tensor t of shape [B], reshape a and s to [B, 1, 1, 1] so each image gets its own time.",
        ),
    ]
    for case in cases:
        if not (isinstance(case.args[1], float) and case.args[1] == 0.0):
            case.mistakes.append(
                (no_sqrt(*case.args), "It looks like alpha_bar was used as the scale: a and s are square roots.")
            )
    x, t, n, _ = cases[3].args  # the linear schedule: a function that ignores its schedule answers cosine
    cases[3].mistakes.append(
        (cos.add_noise(x, t, n), "That is the cosine schedule's answer: use the schedule you are given.")
    )
    return _run("1.1", fn, cases, quiet)


# --------------------------------------------------------------------------- 1.2 nearest_mean_accuracy


def _ref_nearest_mean_accuracy(x_t, labels, means, a):
    d = torch.cdist(x_t.reshape(len(x_t), -1).double(), (a * means).reshape(len(means), -1).double())
    return float((d.argmin(dim=1).cpu() == labels.cpu()).double().mean())


def check_nearest_mean_accuracy(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 1.2: ``nearest_mean_accuracy(x_t, labels, means, a) -> fraction classified right``.

    Each x_t is given the label of the closest scaled class mean a * means[k].
    """
    means = _images((3, 1, 4, 4), 10) * 2
    gen = torch.Generator().manual_seed(11)
    labels = torch.randint(0, 3, (30,), generator=gen)
    clean = means[labels] + 0.3 * torch.randn((30, 1, 4, 4), generator=gen)
    noisy_a, noisy_s = 0.4, math.sqrt(1 - 0.16)
    noisy = noisy_a * clean + noisy_s * torch.randn((30, 1, 4, 4), generator=gen)
    hint = (
        "For each image, compute the squared distance to a * means[k] for every class k (flatten the pixels), "
        "take the argmin over k, and return the fraction of images whose argmin equals their label, as a float."
    )

    def unscaled(x, y, m, a):
        return _ref_nearest_mean_accuracy(x, y, m, 1.0)

    cases = [
        Case(
            "clean images, a = 1",
            (clean, labels, means, 1.0),
            _ref_nearest_mean_accuracy(clean, labels, means, 1.0),
            hint,
        ),
        Case(
            "noisy images, a = 0.4",
            (noisy, labels, means, noisy_a),
            _ref_nearest_mean_accuracy(noisy, labels, means, noisy_a),
            hint,
            mistakes=[
                (
                    unscaled(noisy, labels, means, noisy_a),
                    "The noisy image's signal is a * x0: compare x_t with a * means[k], not means[k].",
                )
            ],
        ),
        Case(
            "a single image that is exactly a class mean",
            (means[1:2].clone(), torch.tensor([1]), means, 1.0),
            1.0,
            "An image equal to means[1] is nearest to means[1]: accuracy 1.0. Did you use argmax instead of argmin?",
        ),
    ]
    return _run("1.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 2.2 eps and score


def _ref_eps_and_score(x_t, x0_hat, t, schedule):
    sched = schedules.get(schedule)
    a, s = sched.alpha(t), sched.sigma(t)
    return (x_t - a * x0_hat) / s, (a * x0_hat - x_t) / s**2


def check_eps_and_score(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 2.2: ``eps_and_score(x_t, x0_hat, t, schedule) -> (eps_hat, score)`` for a float t."""
    cos, lin = schedules.cosine(), schedules.linear()
    x0, x = _images((2, 1, 3, 3), 20), sampling.noise_like((2, 1, 3, 3), seed=21)
    hint = "eps_hat = (x_t - a x0_hat) / s and score = (a x0_hat - x_t) / s^2 = -eps_hat / s."
    cases = []
    for t, sched, what in [(0.5, cos, "t = 0.5"), (0.9, cos, "t = 0.9"), (0.2, lin, "the linear schedule, t = 0.2")]:
        eps, score = _ref_eps_and_score(x, x0, t, sched)
        mistakes = [
            (
                (eps, -score),
                "The score points from x_t towards a x0_hat: score = (a x0_hat - x_t) / s^2 (mind the sign).",
            ),
            ((eps, -eps), "The score is -eps_hat / s, not -eps_hat: divide once more by s."),
        ]
        cases.append(Case(what, (x, x0, t, sched), (eps, score), hint, mistakes=mistakes))
    return _run("2.2", fn, cases, quiet)


# --------------------------------------------------------------------------- 2.1 gaussian denoiser


def _ref_gaussian_denoiser(x_t, t, mu, cov, schedule):
    sched = schedules.get(schedule)
    a, s = sched.alpha(t), sched.sigma(t)
    d = mu.numel()
    x = x_t.reshape(len(x_t), d).double()
    m, c = mu.reshape(d).double(), cov.double()
    gain = a * c @ torch.linalg.inv(a * a * c + s * s * torch.eye(d, dtype=torch.float64))
    out = m + (x - a * m) @ gain.T
    return out.to(x_t.dtype).reshape(x_t.shape)


def _toy_gaussian(d: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    root = torch.randn((d, d), generator=gen, dtype=torch.float64) * 0.5
    cov = root @ root.T + 0.05 * torch.eye(d, dtype=torch.float64)
    mu = torch.randn((d,), generator=gen, dtype=torch.float64)
    return mu.float(), cov.float()


def check_gaussian_denoiser(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 2.1: ``gaussian_denoiser(x_t, t, mu, cov, schedule)``, the exact E[x0 | x_t] for
    x0 ~ N(mu, cov). x_t: [B, C, H, W]; mu: [C, H, W]; cov: [D, D] with D = C*H*W."""
    cos = schedules.cosine()
    mu2, cov2 = _toy_gaussian(2, 30)
    mu2 = mu2.reshape(2, 1, 1)
    x2 = sampling.noise_like((5, 2, 1, 1), seed=31)
    mu4, cov4 = _toy_gaussian(4, 32)
    mu4 = mu4.reshape(1, 2, 2)
    x4 = sampling.noise_like((3, 1, 2, 2), seed=33)
    hint = (
        "D(x_t) = mu + a Sigma (a^2 Sigma + s^2 I)^{-1} (x_t - a mu), with each x_t flattened to a vector of "
        "length D; torch.linalg.solve or torch.linalg.inv help. Reshape the result back to x_t's shape."
    )
    cases = []
    for what, x, t, mu, cov in [
        ("2-D toy, t = 0.5", x2, 0.5, mu2, cov2),
        ("2-D toy, t = 0.98 (mostly noise: the answer is close to mu)", x2, 0.98, mu2, cov2),
        ("2-D toy, t = 0.02 (little noise: the answer is close to x_t / a)", x2, 0.02, mu2, cov2),
        ("a 2x2 image (D = 4), t = 0.4", x4, 0.4, mu4, cov4),
    ]:
        expected = _ref_gaussian_denoiser(x, t, mu, cov, cos)
        a = cos.alpha(t)
        forgot_a_mu = _ref_gaussian_denoiser(x + a * mu - mu, t, mu, cov, cos)
        mistakes = [(forgot_a_mu, "The mean of x_t is a mu, not mu: use (x_t - a mu) in the formula.")]
        mistakes.append((_gaussian_with(x, t, mu, cov, cos, noise_var=cos.sigma(t)), _S_NOT_S2))
        mistakes.append((_gaussian_with(x, t, mu, cov, cos, gain_a=1.0), _GAIN_A))
        cases.append(Case(what, (x, t, mu, cov, cos), expected, hint, atol=1e-4, rtol=1e-3, mistakes=mistakes))
    return _run("2.1", fn, cases, quiet)


_S_NOT_S2 = (
    "The noise adds its VARIANCE to the covariance of x_t: Cov(x_t) = a^2 Sigma + s^2 I, with s^2 = 1 - abar, "
    "not s (schedule.sigma(t) is the standard deviation s)."
)
_GAIN_A = "Cov(x0, x_t) = a Sigma: the factor a in front of Sigma (the gain) is missing."


def _gaussian_with(x_t, t, mu, cov, sched, noise_var=None, gain_a=None):
    """The Gaussian denoiser with one ingredient replaced: the known mistakes of exercise 2.1."""
    a, s = sched.alpha(t), sched.sigma(t)
    d = mu.numel()
    x = x_t.reshape(len(x_t), d).double()
    m, c = mu.reshape(d).double(), cov.double()
    var = s * s if noise_var is None else noise_var
    gain = (a if gain_a is None else gain_a) * c @ torch.linalg.inv(a * a * c + var * torch.eye(d, dtype=torch.float64))
    return (m + (x - a * m) @ gain.T).to(x_t.dtype).reshape(x_t.shape)


# --------------------------------------------------------------------------- 2.3 ddim step


def _ref_ddim_step(x_t, x0_hat, t, t_next, schedule):
    sched = schedules.get(schedule)
    a, s = sched.alpha(t), sched.sigma(t)
    a2, s2 = sched.alpha(t_next), sched.sigma(t_next)
    eps = (x_t - a * x0_hat) / s
    return a2 * x0_hat + s2 * eps


def _recorded_ddim(denoiser, noise, steps, schedule):
    """Run elslib.sampling.ddim and record, for each step, (x_t, x0_hat, t, t_next, x_next)."""
    records, state = [], {"x": noise}
    times = sampling.step_times(steps)

    def callback(i, t, x_next, x0_hat):
        records.append((state["x"], x0_hat, times[i], times[i + 1], x_next))
        state["x"] = x_next

    final = sampling.ddim(denoiser, noise, steps=steps, schedule=schedule, progress=False, callback=callback)
    return records, final


def check_ddim_step(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 2.3: ``ddim_step(x_t, x0_hat, t, t_next, schedule) -> x_{t_next}``.

    Compared with the steps that ``elslib.sampling.ddim`` takes on the Gaussian toy."""
    cos = schedules.cosine()
    mu, cov = _toy_gaussian(2, 40)
    mu = mu.reshape(2, 1, 1)
    den = lambda x, t: _ref_gaussian_denoiser(x, t, mu, cov, cos)
    noise = sampling.noise_like((6, 2, 1, 1), seed=41)
    records, final = _recorded_ddim(den, noise, 4, cos)
    hint = (
        "First recover the noise that explains x_t, eps_hat = (x_t - a x0_hat) / s, then move to the next time: "
        "x_next = a_next x0_hat + s_next eps_hat, with a_next = schedule.alpha(t_next) and "
        "s_next = schedule.sigma(t_next)."
    )
    cases = []
    for x, x0, t, t_next, x_next in records:
        a2 = cos.alpha(t_next)
        mistakes = [
            (a2 * x0 + cos.sigma(t_next) * x, "Do not carry x_t itself forward: carry the noise estimate eps_hat.")
        ]
        desc = f"one step of elslib.sampling.ddim from t = {t:g} to t = {t_next:g}"
        if t_next == 0.0:
            desc += " (the last step must return x0_hat)"
        cases.append(Case(desc, (x, x0, t, t_next, cos), x_next, hint, mistakes=mistakes))

    # A last case: the whole 4-step loop, driven by the learner's step, lands where ddim lands.
    loop = "__four_steps__"
    cases.append(
        Case(
            "four steps in a row from the same noise, as elslib.sampling.ddim(den, noise, steps=4) takes them",
            (loop,),
            final,
            "Each step must only use its own arguments; check the single-step cases above first.",
        )
    )

    def run_case(*args):
        if args != (loop,):
            return fn(*args)
        x = noise
        for _, _, t, t_next, _ in records:
            x = fn(x, den(x, t), t, t_next, cos)
        return x

    run_case.__name__ = getattr(fn, "__name__", "ddim_step")
    wrap = callable(fn) and not isinstance(fn, StandIn)  # a stand-in goes to _run as it is, to be recognised
    return _run("2.3", run_case if wrap else fn, cases, quiet)


# --------------------------------------------------------------------------- 3.1 ideal denoiser


def _ref_ideal_denoiser(x_t, t, train, schedule):
    """The reference: elslib.machines.IdealDenoiser."""
    from ...machines import IdealDenoiser

    return IdealDenoiser(train, schedule=schedule)(x_t, t)


def check_ideal_denoiser(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 3.1: ``ideal_denoiser(x_t, t, train, schedule)``: the optimal denoiser of a finite
    training set, a softmax-weighted average of the training images. Compared with
    ``elslib.machines.IdealDenoiser``."""
    cos = schedules.cosine()
    train = _images((5, 1, 4, 4), 50) * 2
    x_mid = cos.add_noise(train[[0, 2, 4]], 0.5, sampling.noise_like((3, 1, 4, 4), seed=51))
    x_far = sampling.noise_like((2, 1, 4, 4), seed=52) * 3
    hint = (
        "w_n = softmax_n(-||x_t - a x_n||^2 / (2 s^2)) over the training images n, and x0_hat = sum_n w_n x_n. "
        "Flatten the pixels; torch.cdist gives distances; torch.softmax is numerically safe."
    )
    cases = []
    for what, x, t in [
        ("3 noisy training images at t = 0.5", x_mid, 0.5),
        ("t = 0.9: many images share the weight", x_mid, 0.9),
        ("t = 0.05, far from every training image (naive exp() underflows here)", x_far, 0.05),
    ]:
        a, s = cos.alpha(t), cos.sigma(t)
        mistakes = [
            (
                image_softmax_average(x, train, 1.0, 2 * s * s),
                "Compare x_t with a x_n (the signal shrinks by a), not x_n.",
            ),
            (image_softmax_average(x, train, a, s * s), "The exponent is -d^2 / (2 s^2): the factor 2 is missing."),
            (
                image_softmax_average(x, train, a, 2 * s),
                "The exponent divides by 2 s^2, the noise *variance*, not by 2 s.",
            ),
            (_softmax_over_batch(x, t, train, cos), _WRONG_AXIS),
        ]
        expected = _ref_ideal_denoiser(x, t, train, cos)
        cases.append(Case(what, (x, t, train, cos), expected, hint, atol=1e-4, rtol=1e-3, mistakes=mistakes))
    cases.append(
        Case(
            "a training image at t = 0.01 is (almost) a fixed point",
            (train[1:2].clone() * cos.alpha(0.01), 0.01, train, cos),
            train[1:2].clone(),
            "At tiny t one weight is ~1: the answer is that training image itself.",
            atol=1e-3,
        )
    )
    return _run("3.1", fn, cases, quiet)


_WRONG_AXIS = (
    "The softmax ran over the wrong axis: for each noisy image, the weights of the N training images must sum to "
    "1 (torch.softmax(..., dim=1) on the [B, N] distances), not the weights of the B noisy images."
)


def _softmax_over_batch(x_t, t, train, sched):
    """The ideal denoiser with its softmax taken across the batch (dim 0) instead of the training set."""
    a, s = sched.alpha(t), sched.sigma(t)
    flat = train.reshape(len(train), -1).double()
    d2 = ((x_t.reshape(len(x_t), -1).double()[:, None] - a * flat[None]) ** 2).sum(-1)
    return (torch.softmax(-d2 / (2 * s * s), dim=0) @ flat).to(x_t.dtype).view_as(x_t)


# --------------------------------------------------------------------------- 3.2 nearest training image


def _ref_nearest_training_image(samples, train):
    from ...metrics import nearest_neighbours

    return nearest_neighbours(samples, train)


def check_nearest_training_image(fn: Callable, quiet: bool = False) -> CheckResult:
    """Exercise 3.2: ``nearest_training_image(samples, train) -> (distances [B], indices [B])``:
    the root-mean-square pixel distance to the closest training image, and its index. Compared
    with ``elslib.metrics.nearest_neighbours``."""
    train = _images((6, 1, 4, 4), 60) * 2
    copies = train[[4, 0]].clone()
    new = _images((3, 1, 4, 4), 61) * 2
    many = _images((40, 1, 16, 16), 62) * 2 + 0.5  # bright images: large norms, where cancellation bites
    many_copies = many[torch.arange(39, -1, -1)][:30].clone()  # 30 exact copies: more than 25 rows each
    hint = (
        "For each sample, the distance to training image n is sqrt(mean over pixels of (sample - train[n])^2); "
        "return the minimum over n and where it is (e.g. torch.cdist on flattened images, with "
        "compute_mode='donot_use_mm_for_euclid_dist', divided by sqrt(number of pixels), then .min(dim=1))."
    )
    cases = []
    for what, s, tr, atol in [
        ("two samples that are copies of training images", copies, train, 1e-4),
        ("three new images", new, train, 1e-4),
        ("30 exact copies among 40 training images (an exact copy is at distance 0)", many_copies, many, 1e-6),
    ]:
        d, i = _ref_nearest_training_image(s, tr)
        fast = torch.cdist(s.flatten(1), tr.flatten(1)) / math.sqrt(s[0].numel())  # the matrix-product formula
        cases.append(
            Case(
                what,
                (s, tr),
                (d, i),
                hint,
                atol=atol,
                mistakes=[
                    ((d**2, i), "Return the distance, not its square."),
                    ((d * math.sqrt(s[0].numel()), i), "Average over the pixels: divide the summed squares by C*H*W."),
                    (
                        tuple(fast.min(dim=1)),
                        "The numerical trap of the text: with more than 25 rows torch.cdist switches to "
                        "|u|^2 + |v|^2 - 2 u.v, which cancels for near-identical images, so an exact copy comes out "
                        "a little away from 0. Pass compute_mode='donot_use_mm_for_euclid_dist'.",
                    ),
                ],
            )
        )
    return _run("3.2", fn, cases, quiet)


EXERCISES: dict[str, Exercise] = {
    "1.1": Exercise("add noise to images (the forward process)", check_add_noise, _ref_add_noise),
    "1.2": Exercise(
        "classify noisy digits by the nearest scaled class mean",
        check_nearest_mean_accuracy,
        _ref_nearest_mean_accuracy,
    ),
    "2.1": Exercise("the exact denoiser of a Gaussian", check_gaussian_denoiser, _ref_gaussian_denoiser),
    "2.2": Exercise(
        "convert an x0 prediction into a noise and a score prediction", check_eps_and_score, _ref_eps_and_score
    ),
    "2.3": Exercise("one deterministic DDIM step", check_ddim_step, _ref_ddim_step),
    "3.1": Exercise("the ideal denoiser of a finite training set", check_ideal_denoiser, _ref_ideal_denoiser),
    "3.2": Exercise(
        "distance to the nearest training image", check_nearest_training_image, _ref_nearest_training_image
    ),
}
