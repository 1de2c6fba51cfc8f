"""The machines agree with brute-force loops written straight from the definitions.

Small random problems (N = 5 training images of 6x7 or 7x5 pixels, non-square on purpose),
float32 machines against float64 loops, max abs error <= 1e-4, for every machine, channel
count, patch size (1, 3, 5, whole image), time (near 0, middle, near 1), padding, and with or
without class conditioning. explain() is checked against the same loops.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import elslib.machines as M
from elslib import schedules
from elslib.machines import patches

try:
    from bruteforce_machines import brute, n_eff
except ImportError:  # tests collected as a package
    from tests.bruteforce_machines import brute, n_eff

SCHED = schedules.cosine()


pytestmark = pytest.mark.usefixtures("one_thread")


LABELS = torch.tensor([0, 1, 0, 1, 2])
TIMES = [0.02, 0.5, 0.98]


def problem(c: int, seed: int = 0):
    """Training set [5, C, H, W] with repeated patches (a -1 background, like MNIST), and a
    noisy batch of 2 built from one training image and one new image."""
    h, w = (6, 7) if c == 1 else (7, 5)
    g = torch.Generator().manual_seed(seed)
    train = torch.rand(5, c, h, w, generator=g) * 2 - 1
    train[torch.rand(5, 1, h, w, generator=g).expand_as(train) < 0.4] = -1.0
    x0 = torch.stack([train[3], torch.rand(c, h, w, generator=g) * 2 - 1])
    noise = torch.randn(2, c, h, w, generator=g)
    return train, x0, noise


def noisy(x0, noise, t):
    return SCHED.add_noise(x0, t, noise).float()


def whole(kind: str, h: int, w: int) -> int:
    """The largest patch: covers the whole image under zero padding, or the image under wrapping."""
    if kind == "circular":
        m = min(h, w)
        return m if m % 2 else m - 1
    return 2 * max(h, w) - 1


def build(kind: str, train, p, labels):
    if kind == "ideal":
        return M.IdealDenoiser(train, labels=labels, chunk_size=37)
    if kind == "equivariant":
        return M.EquivariantDenoiser(train, labels=labels, chunk_size=97)
    if kind == "local":
        return M.LocalDenoiser(train, patch_size=p, labels=labels, chunk_size=211)
    return M.ELSDenoiser(train, patch_size=p, padding=kind, labels=labels, chunk_size=211)


def reference(kind, train, x_t, t, p, labels, label):
    if kind in ("zeros", "circular"):
        return brute("els", train, x_t, t, SCHED, p=p, padding=kind, labels=labels, label=label)
    return brute(kind, train, x_t, t, SCHED, p=p, labels=labels, label=label)


CASES = [(k, None) for k in ("ideal", "equivariant")] + [
    (k, p) for k in ("local", "zeros", "circular") for p in (1, 3, 5, "whole")
]


@pytest.mark.parametrize("conditional", [False, True], ids=["uncond", "cond"])
@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("kind,p", CASES, ids=[f"{k}-P{p}" if p else k for k, p in CASES])
def test_matches_bruteforce(kind, p, c, t, conditional):
    train, x0, noise = problem(c)
    h, w = train.shape[-2:]
    if p == "whole":
        p = whole(kind, h, w)
    labels = LABELS if conditional else None
    label = [1, 0] if conditional else None
    x_t = noisy(x0, noise, t)
    den = build(kind, train, p, labels)
    ref, places = reference(kind, train, x_t, t, p, labels, label)
    got = den(x_t, t, label=label)
    assert got.dtype == torch.float32 and got.shape == x_t.shape
    assert np.abs(got.double().numpy() - ref).max() <= 1e-4

    ex = den.explain(x_t, t, label=label)
    for b in range(2):
        for i in range(h):
            for j in range(w):
                weights = places[b][i][j]
                best = max(weights.values())
                place = (int(ex.image[b, i, j]), int(ex.row[b, i, j]), int(ex.col[b, i, j]))
                assert place in weights, (b, i, j, place)
                assert weights[place] >= best - 1e-4  # the reported candidate is a winner
                assert abs(float(ex.weight[b, i, j]) - best) <= 1e-4
                assert float(ex.n_eff[b, i, j]) == pytest.approx(n_eff(weights), rel=1e-3, abs=1e-3)


@pytest.mark.parametrize("kind", ["ideal", "local", "equivariant", "zeros", "circular"])
def test_per_element_times_and_labels(kind):
    """A batch with one t and one label per image equals the images denoised one by one."""
    train, x0, noise = problem(1, seed=3)
    ts = torch.tensor([0.3, 0.7])
    x_t = torch.stack([noisy(x0[k : k + 1], noise[k : k + 1], float(ts[k]))[0] for k in range(2)])
    den = build(kind, train, 3, LABELS)
    ref, _ = reference(kind, train, x_t, ts.tolist(), 3, LABELS, [2, 0])
    got = den(x_t, ts, label=torch.tensor([2, 0]))
    assert np.abs(got.double().numpy() - ref).max() <= 1e-4
    assert torch.equal(den(x_t, ts, label=np.array([2, 0])), got)  # numpy labels too
    one = den(x_t[1:], 0.7, label=0)
    assert torch.allclose(one, got[1:], atol=1e-6)


@pytest.mark.parametrize("kind", ["local", "zeros", "circular"])
def test_patch_size_schedule(kind):
    """patch_size may be a callable t -> odd int, evaluated per call at each image's t."""
    train, x0, noise = problem(1, seed=4)
    ts = torch.tensor([0.2, 0.8])
    x_t = torch.stack([noisy(x0[k : k + 1], noise[k : k + 1], float(ts[k]))[0] for k in range(2)])
    den = build(kind, train, lambda t: 1 if t < 0.5 else 3, None)
    got = den(x_t, ts)
    for k, p in ((0, 1), (1, 3)):
        ref, _ = reference(kind, train, x_t[k : k + 1], float(ts[k]), p, None, None)
        assert np.abs(got[k : k + 1].double().numpy() - ref).max() <= 1e-4


ZERO_CASES = [("ideal", None), ("local", 3), ("equivariant", None), ("zeros", 3), ("circular", 3)]


@pytest.mark.parametrize("kind,p", ZERO_CASES)
def test_zero_time_is_hard_nearest_choice(kind, p):
    """At t = 0 (sigma = 0) the softmax is the nearest candidate(s), with no NaN."""
    train, x0, _ = problem(1, seed=5)
    den = build(kind, train, p, None)
    got = den(x0.float(), 0.0)
    ref, _ = reference(kind, train, x0, 0.0, p, None, None)
    assert torch.isfinite(got).all()
    assert np.abs(got.double().numpy() - ref).max() <= 1e-4
    ex = den.explain(x0.float(), 0.0)
    assert torch.isfinite(ex.n_eff).all() and (ex.n_eff >= 1 - 1e-6).all()


def _mnist_crop():
    """MNIST-5000 cropped to 24x24 (only the machines are under test here)."""
    try:
        from elslib import data

        images = data.load("mnist")[0]
    except Exception as err:  # the dataset module is not this file's subject
        pytest.skip(f"MNIST not available: {err}")
    return images[:, :, 4:28, 4:28].contiguous()


@pytest.mark.parametrize("t", [0.03, 0.05])
def test_small_t_on_real_digits_stays_exact(t):
    """Real digits have many near-identical patches; at small t the float32 expansion
    c1 q.k + c2 |k|^2 would cancel to errors ~1e-4 here, so the backend must switch to float64.
    Reference: float64 direct differences over the interior pixels (which see every interior patch)."""
    images = _mnist_crop()
    train = images[:40]
    noise = torch.randn(3, 1, 24, 24, generator=torch.Generator().manual_seed(1))
    x_t = SCHED.add_noise(images[1000:1003], t, noise)
    got = M.ELSDenoiser(train, patch_size=7)(x_t, t)[:, 0, 3:21, 3:21].double()

    rows = torch.arange(3, 21)
    keys = patches.patches_at(patches.windows(patches.pad(train.double(), 3, "zeros"), 7), rows, rows)
    queries = patches.patches_at(patches.windows(patches.pad(x_t.double(), 3, "zeros"), 7), rows, rows)
    a, s = SCHED.alpha(t), SCHED.sigma(t)
    d2 = torch.cdist(queries, a * keys, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    ref = (torch.softmax(-d2 / (2 * s * s), 1) @ keys[:, 24]).view(3, 18, 18)
    assert (got - ref).abs().max() <= 2e-5
