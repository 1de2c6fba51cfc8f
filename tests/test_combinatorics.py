"""elslib.combinatorics: patch counts and mosaic counts against hand counts and brute force."""

import itertools
import math

import numpy as np
import pytest
import torch

from elslib import combinatorics as cb


def images_from(rows):
    """[N, 1, H, W] float images from nested lists."""
    return torch.tensor(rows, dtype=torch.float32)[:, None]


# --------------------------------------------------------------------------- distinct grey patches


def test_distinct_patches_per_position_by_hand():
    a = [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
    b = [[0.0, 1.0, 0.0], [1.0, 0.5, 1.0], [0.0, 1.0, 0.0]]  # differs from a only in the centre
    x = images_from([a, a, b])
    # P = 1: distinct values at each pixel: 2 at the centre, 1 elsewhere.
    expected = torch.ones(3, 3, dtype=torch.int64)
    expected[1, 1] = 2
    assert torch.equal(cb.distinct_patches_per_position(x, 1), expected)
    # P = 3: every window contains the centre, so every pixel sees 2 distinct patches.
    assert torch.equal(cb.distinct_patches_per_position(x, 3), torch.full((3, 3), 2, dtype=torch.int64))


def test_distinct_patches_per_position_counts_copies_once_and_uses_all_channels():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 5, 5, generator=gen)
    x = torch.cat([x, x[:2]])  # two copies
    assert torch.equal(cb.distinct_patches_per_position(x, 3), torch.full((5, 5), 4, dtype=torch.int64))
    y = x.clone()
    y[0, 2, 2, 2] = 7.0  # change one channel of one copy: that copy is now different near the pixel
    counts = cb.distinct_patches_per_position(y, 3)
    assert counts[2, 2] == 5 and counts[0, 0] == 4


def test_distinct_patches_anywhere_by_hand_and_against_brute_force():
    blank = [[0.0] * 4 for _ in range(4)]
    x = images_from([blank, blank])
    assert cb.distinct_patches(x, 3) == 1  # all-zero everywhere, padding included
    gen = torch.Generator().manual_seed(1)
    y = (torch.rand(6, 1, 6, 5, generator=gen) * 3).round() / 3  # few grey levels: many repeats
    for p in (1, 3, 5):
        r = p // 2
        padded = torch.nn.functional.pad(y, (r, r, r, r))
        brute = {
            tuple(padded[n, 0, i : i + p, j : j + p].flatten().tolist())
            for n in range(6)
            for i in range(6)
            for j in range(5)
        }
        assert cb.distinct_patches(y, p) == len(brute)


def test_distinct_patches_per_position_against_unique_at_every_pixel():
    gen = torch.Generator().manual_seed(3)
    y = (torch.rand(40, 2, 6, 7, generator=gen) * 2).round() / 2  # few levels: many repeats
    for p in (1, 3, 5):
        r = p // 2
        padded = torch.nn.functional.pad(y, (r, r, r, r))
        expected = torch.tensor(
            [
                [torch.unique(padded[:, :, i : i + p, j : j + p].reshape(40, -1), dim=0).shape[0] for j in range(7)]
                for i in range(6)
            ]
        )
        assert torch.equal(cb.distinct_patches_per_position(y, p), expected)


def test_distinct_patches_survive_hash_collisions(monkeypatch):
    # Force every hash to collide: the exact comparison must still count correctly.
    gen = torch.Generator().manual_seed(2)
    y = (torch.rand(3, 1, 4, 4, generator=gen) * 2).round()
    honest = cb.distinct_patches(y, 3)
    honest_map = cb.distinct_patches_per_position(y, 3)
    real = cb.hash_coefficients
    monkeypatch.setattr(cb, "hash_coefficients", lambda d, seed: real(d, seed) * (seed != 8))  # first hash: 0
    assert cb.distinct_patches(y, 3) == honest
    assert torch.equal(cb.distinct_patches_per_position(y, 3), honest_map)


# --------------------------------------------------------------------------- binary windows


def test_window_codes_are_reading_order_bits():
    b = np.zeros((1, 3, 3), np.int64)
    b[0, 0, 0] = 1  # top-left pixel
    codes = cb.window_codes(b, 3)
    # Around pixel (1, 1) the top-left pixel is window pixel 0; around (0, 0) it is the centre, pixel 4.
    assert codes[0, 1, 1] == 1 and codes[0, 0, 0] == 1 << 4
    assert np.array_equal(cb.decode_window(codes[0, 0, 0], 3), np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]]))
    assert cb.window_codes(b, 1)[0].tolist() == b[0].tolist()


def test_binarise_thresholds_grey_digits():
    x = torch.tensor([[[[-1.0, 0.5], [0.0, 0.2]]]])
    assert cb.binarise(x).tolist() == [[[False, True], [False, True]]]


def brute_force(allowed, p, h, w):
    allowed = set(int(a) for a in allowed)
    total = 0
    for bits in itertools.product((0, 1), repeat=h * w):
        img = np.array(bits, np.int64).reshape(1, h, w)
        total += all(int(c) in allowed for c in cb.window_codes(img, p).ravel())
    return total


def test_count_consistent_limits():
    everything = np.arange(2**9)
    assert cb.count_consistent(everything, 3, 3, 3) == 2**9  # every window allowed: every image
    assert cb.count_consistent(np.array([0]), 3, 3, 4) == 1  # only the blank window: only the blank image


def test_count_consistent_matches_a_slow_brute_force():
    gen = np.random.default_rng(3)
    digits = (gen.random((4, 6, 6)) < 0.3).astype(np.int64)
    allowed = cb.allowed_windows(digits, 3)
    assert cb.count_consistent(allowed, 3, 3, 3) == brute_force(allowed, 3, 3, 3)
    # every training image is consistent with its own windows
    assert cb.is_consistent(digits, allowed, 3).all()


def _random_allowed(gen, p, n_images=8, density=0.45):
    """The allowed windows of a few random binary 'digits': 4x4 of ink in a blank 10x10 frame."""
    images = np.zeros((n_images, 10, 10), np.int64)
    images[:, 3:7, 3:7] = gen.random((n_images, 4, 4)) < density
    return cb.allowed_windows(images, p)


def _every_piece(h, w):
    return ((np.arange(2 ** (h * w))[:, None] >> np.arange(h * w)) & 1).reshape(-1, h, w)


def test_consistent_pieces_are_those_whose_whole_tile_is_consistent():
    gen = np.random.default_rng(4)
    for trial in range(40):
        p = (3, 5)[trial % 2]
        r = p // 2
        allowed = _random_allowed(gen, p, n_images=int(gen.integers(2, 10)), density=float(gen.uniform(0.2, 0.7)))
        h, w = (int(gen.integers(1, 4)), int(gen.integers(1, 4)))
        found = {tuple(x.ravel()) for x in cb.consistent_pieces(allowed, p, h, w)}
        # brute force from the definition: pad each piece by r blank pixels, then r more (the zero
        # padding of a window), and look up the window around every pixel of the tile
        padded_codes = set(allowed.tolist())
        expected = set()
        for piece in _every_piece(h, w):
            tile = np.zeros((h + 4 * r, w + 4 * r), np.int64)
            tile[2 * r : 2 * r + h, 2 * r : 2 * r + w] = piece
            ok = all(
                int((tile[i - r : i + r + 1, j - r : j + r + 1].ravel() << np.arange(p * p)).sum()) in padded_codes
                for i in range(r, h + 3 * r)
                for j in range(r, w + 3 * r)
            )
            if ok:
                expected.add(tuple(piece.ravel()))
        assert found == expected, (trial, p, h, w)


def test_every_tiling_of_counted_pieces_is_consistent():
    gen = np.random.default_rng(5)
    strict = 0
    for trial in range(30):
        p = (3, 5)[trial % 2]
        allowed = _random_allowed(gen, p, n_images=int(gen.integers(2, 8)), density=float(gen.uniform(0.2, 0.7)))
        h, w = (int(gen.integers(1, 4)), int(gen.integers(1, 4)))
        pieces = cb.consistent_pieces(allowed, p, h, w)
        bound = cb.tiling_lower_bound(allowed, p, piece=(h, w), size=(3 * (h + p - 1), 2 * (w + p - 1) + 1))
        assert bound.pieces == len(pieces) >= 1 and bound.tiles == 6
        # every piece in every slot, and random mixtures of them: all consistent
        for piece in pieces:
            assert cb.is_consistent(cb.tile_image([piece] * 6, p, size=bound_size(bound, 3, 2, 1))[None], allowed, p)[0]
        for k in range(10):
            chosen = pieces[gen.integers(0, len(pieces), 6)]  # an array [6, h, w], or a list of [h, w]
            chosen = chosen if k % 2 else list(chosen)
            assert cb.is_consistent(cb.tile_image(list(chosen), p, size=bound_size(bound, 3, 2, 1))[None], allowed, p)[
                0
            ]
        # the old count (pieces consistent on their own) can be larger: it let margin windows go unchecked
        strict += int(cb.count_consistent(allowed, p, h, w) > len(pieces))
    assert strict > 0, "no allowed set separated the two counts: the test would not catch the old bound"


def bound_size(bound, rows, cols, extra):
    th, tw = bound.tile
    return (rows * th, cols * tw + extra)


def test_tiling_lower_bound_is_below_the_exact_count_on_small_canvases():
    gen = np.random.default_rng(6)
    for trial in range(12):
        allowed = _random_allowed(gen, 3, n_images=int(gen.integers(2, 8)), density=float(gen.uniform(0.2, 0.7)))
        for piece, size in [((1, 1), (3, 6)), ((2, 1), (4, 3)), ((1, 1), (6, 3)), ((2, 2), (4, 4))]:
            bound = cb.tiling_lower_bound(allowed, 3, piece=piece, size=size)
            exact = cb.count_consistent(allowed, 3, *size)
            assert exact >= bound.pieces**bound.tiles, (trial, piece, size)
            assert bound.log10 == pytest.approx(bound.tiles * math.log10(bound.pieces))


def test_knuth_estimate_agrees_with_the_exact_count():
    from elslib import data

    digits = cb.binarise(data.load("mnist", n=300)[0])
    for p, runs in ((3, 1000), (5, 3000)):
        allowed = cb.allowed_windows(digits, p)
        exact = cb.count_consistent(allowed, p, 4, 4)
        est = cb.knuth_estimate(allowed, p, 4, 4, runs=runs, seed=0)
        assert est.log10_runs.shape == (runs,) and est.images.shape == (runs, 4, 4)
        assert 0 < est.alive <= 1
        alive = np.isfinite(est.log10_runs)
        assert cb.is_consistent(est.images[alive], allowed, p).all()  # a run that lives built a consistent image
        assert not cb.is_consistent(est.images[~alive], allowed, p).any()
        assert 10**est.log10_count == pytest.approx(exact, rel=0.15)


def test_knuth_estimate_is_exact_when_every_window_is_allowed():
    est = cb.knuth_estimate(np.arange(2**9), 3, 5, 6, runs=3)
    assert est.alive == 1.0 and est.log10_count == pytest.approx(30 * math.log10(2))
    only_blank = cb.knuth_estimate(np.array([0]), 3, 5, 6, runs=3)
    assert only_blank.log10_count == pytest.approx(0.0)  # exactly one image: the blank one


def test_knuth_estimate_same_seed_same_answer():
    allowed = cb.allowed_windows((np.random.default_rng(6).random((5, 6, 6)) < 0.4).astype(np.int64), 3)
    a = cb.knuth_estimate(allowed, 3, 6, 6, runs=20, seed=1)
    b = cb.knuth_estimate(allowed, 3, 6, 6, runs=20, seed=1)
    assert np.array_equal(a.log10_runs, b.log10_runs)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: cb.window_codes(np.zeros((1, 4, 4)), 9), "odd integer from 1 to 7"),
        (lambda: cb.window_codes(np.zeros((1, 4, 4)), 4), "odd integer"),
        (lambda: cb.window_codes(np.full((1, 4, 4), 2), 3), "only 0 and 1"),
        (lambda: cb.window_codes(np.zeros((4, 4)), 3), r"\[N, H, W\]"),
        (lambda: cb.count_consistent(np.array([0]), 3, 5, 5), "knuth_estimate"),
        (lambda: cb.tiling_lower_bound(np.array([1]), 3), "blank window"),
        (lambda: cb.tiling_lower_bound(np.array([0]), 7, piece=(4, 4), size=(8, 8)), "does not fit"),
        (lambda: cb.knuth_estimate(np.array([0]), 3, 4, 4, runs=0), "runs must be"),
        (lambda: cb.distinct_patches_per_position(torch.zeros(2, 1, 4, 4), 2), "odd integer"),
        (lambda: cb.binarise(torch.zeros(2, 3, 4, 4)), "channels"),
    ],
)
def test_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
