"""elslib.morphogenesis: the Gray-Scott toy of chapter 11 against properties known in advance."""

import math

import numpy as np
import pytest

from elslib import morphogenesis as mg


def test_laplacian_of_a_plane_wave_is_its_discrete_eigenvalue():
    # On a periodic grid, cos(2 pi (m i / H + n j / W)) is an eigenfunction of the 5-point Laplacian
    # with eigenvalue 2 cos(2 pi m / H) + 2 cos(2 pi n / W) - 4 (exactly, not only approximately).
    h, w, m, n = 24, 30, 3, 2
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    f = np.cos(2 * np.pi * (m * i / h + n * j / w))
    eig = 2 * math.cos(2 * math.pi * m / h) + 2 * math.cos(2 * math.pi * n / w) - 4
    np.testing.assert_allclose(mg.laplacian(f), eig * f, atol=1e-12)


def test_laplacian_approximates_the_continuous_one_on_a_fine_grid():
    # f = sin(k x) with k = 2 pi / H: the continuous Laplacian is -k^2 f; the 5-point one is
    # (2 cos k - 2) f = -k^2 f (1 - k^2 / 12 + ...).
    h = 200
    k = 2 * math.pi / h
    f = np.sin(k * np.arange(h))[:, None] * np.ones((1, 5))
    np.testing.assert_allclose(mg.laplacian(f), -(k**2) * f, atol=k**4 / 12 * 1.01)


def test_laplacian_wraps_around_and_conserves_the_total():
    f = np.zeros((5, 6))
    f[0, 0] = 1.0
    lap = mg.laplacian(f)
    assert lap[0, 0] == -4.0
    for r, c in [(1, 0), (4, 0), (0, 1), (0, 5)]:  # the neighbours, two of them across the edge
        assert lap[r, c] == 1.0
    rng = np.random.default_rng(0)
    g = rng.standard_normal((3, 7, 9))
    assert abs(mg.laplacian(g).sum()) < 1e-12  # diffusion moves material, never makes it


def test_laplacian_of_a_constant_is_zero_and_batches_work():
    assert np.all(mg.laplacian(np.full((4, 4), 2.5)) == 0)
    batch = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    np.testing.assert_allclose(mg.laplacian(batch)[1, 2], mg.laplacian(batch[1, 2]))


def test_one_step_matches_the_formula():
    rng = np.random.default_rng(2)
    u, v = rng.uniform(0, 1, (6, 7)), rng.uniform(0, 0.5, (6, 7))
    f, k, du, dv, dt = 0.04, 0.06, 0.16, 0.08, 0.5
    u2, v2 = mg.step(u, v, f, k, du, dv, dt)
    lap = lambda a: np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1) - 4 * a
    np.testing.assert_allclose(u2, u + dt * (du * lap(u) - u * v * v + f * (1 - u)))
    np.testing.assert_allclose(v2, v + dt * (dv * lap(v) + u * v * v - (f + k) * v))


@pytest.mark.parametrize("feed,kill", [(0.04, 0.06), (0.03, 0.062), (0.01, 0.01)])
def test_uniform_steady_states_stay_put(feed, kill):
    states = mg.uniform_states(feed, kill)
    assert states[0] == (1.0, 0.0)
    for u0, v0 in states:
        frames = mg.simulate(
            feed=feed, kill=kill, steps=50, n_frames=2, init=(np.full((8, 8), u0), np.full((8, 8), v0))
        )
        np.testing.assert_allclose(frames.u[-1], u0, atol=1e-10)
        np.testing.assert_allclose(frames.v[-1], v0, atol=1e-10)


def test_nontrivial_uniform_states_exist_only_below_the_saddle_node():
    assert len(mg.uniform_states(0.01, 0.01)) == 3  # F >= 4 (F + k)^2
    assert len(mg.uniform_states(0.04, 0.08)) == 1  # too much kill: only (1, 0)


def test_frames_have_the_promised_shapes_and_stay_bounded():
    frames = mg.simulate("spots", size=(20, 24), steps=300, n_frames=4, seed=1)
    assert frames.u.shape == frames.v.shape == (4, 20, 24)
    assert list(frames.steps) == [0, 100, 200, 300] and len(frames) == 4
    assert (frames.feed, frames.kill) == mg.PRESETS["spots"]
    assert np.isfinite(frames.u).all() and np.isfinite(frames.v).all()
    assert frames.u.min() >= 0 and frames.v.min() >= 0 and frames.u.max() <= 1.0 + 1e-9


def test_first_frame_is_the_initial_state_and_last_is_after_all_steps():
    init = mg.initial_state(16, seed=3)
    frames = mg.simulate("stripes", size=16, steps=7, n_frames=2, seed=3)
    np.testing.assert_array_equal(frames.u[0], init[0])
    u, v = init
    for _ in range(7):
        u, v = mg.step(u, v, *mg.PRESETS["stripes"])
    np.testing.assert_allclose(frames.u[-1], u)
    np.testing.assert_allclose(frames.v[-1], v)


def test_same_seed_same_pattern_other_seed_other_pattern():
    a = mg.simulate("spots", size=32, steps=200, n_frames=1, seed=5)
    b = mg.simulate("spots", size=32, steps=200, n_frames=1, seed=5)
    c = mg.simulate("spots", size=32, steps=200, n_frames=1, seed=6)
    np.testing.assert_array_equal(a.v, b.v)
    assert not np.allclose(a.v, c.v)


def test_without_reaction_diffusion_conserves_mass():
    u, v = mg.initial_state(24, seed=4)
    frames = mg.simulate(feed=0.0, kill=0.0, steps=100, n_frames=2, init=(u, v * 0))
    # F = k = 0 and v = 0: no reaction at all, only diffusion of u, which keeps its total.
    assert abs(frames.u[-1].sum() - u.sum()) < 1e-9
    assert frames.u[-1].std() < u.std()  # and smooths it


def test_presets_make_patterns():
    frames = mg.simulate("spots", size=48, steps=2500, n_frames=1, seed=0)
    v = frames.v[-1]
    assert v.std() > 0.05  # far from uniform: structure has formed out of a few small seeds
    assert (v > 0.2).mean() > 0.02


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(feed=-0.01, kill=0.06), "feed must be >= 0"),
        (dict(feed=0.04, kill=float("nan")), "kill must be a finite number"),
        (dict(feed=0.04, kill=0.06, du=0.0), "du must be > 0"),
        (dict(feed=0.04, kill=0.06, dt=2.0), "unstable"),
        (dict(feed=0.04, kill=0.06, steps=-1), "steps must be an integer"),
        (dict(feed=0.04, kill=0.06, n_frames=0), "n_frames must be an integer"),
        (dict(feed=0.04), "both feed= and kill="),
        (dict(pattern="leopard"), "pattern must be one of"),
        (dict(feed=0.04, kill=0.06, size=4), "height must be an integer >= 8"),
        (dict(feed=True, kill=0.06), "feed must be a finite number"),
    ],
)
def test_bad_parameters_get_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mg.simulate(**{"steps": 1, **kwargs})


def test_bad_fields_get_clear_errors():
    with pytest.raises(ValueError, match="H, W >= 3"):
        mg.laplacian(np.zeros(5))
    with pytest.raises(ValueError, match="same shape"):
        mg.step(np.zeros((4, 4)), np.zeros((5, 4)), 0.04, 0.06)
