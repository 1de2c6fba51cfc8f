"""Properties that follow from the machines' definitions (table: docs/architecture.md).

Symmetry (circular ELS commutes with shifts), locality (LS and ELS ignore pixels outside the
window), the limiting cases (LS with a whole-image patch is IS; circular ELS with a whole-image
patch is ES; IS returns a training image at t -> 0), and that the implementation's shortcuts
change nothing: uneven chunks (sums are added, not averaged), deduplication of patches, hash
collisions during deduplication.
"""

from __future__ import annotations

import pytest
import torch

import elslib.machines as M
from elslib import schedules
from elslib.machines import patches
from elslib.machines.softmax import OnlineSoftmax

SCHED = schedules.cosine()


pytestmark = pytest.mark.usefixtures("one_thread")


def data(n=6, c=1, h=7, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    train = torch.rand(n, c, h, w, generator=g) * 2 - 1
    train[torch.rand(n, 1, h, w, generator=g).expand_as(train) < 0.4] = -1.0
    x_t = SCHED.add_noise(torch.rand(3, c, h, w, generator=g) * 2 - 1, 0.4, torch.randn(3, c, h, w, generator=g))
    return train, x_t.float()


MAKERS = {
    "ideal": lambda tr, **k: M.IdealDenoiser(tr, **k),
    "local": lambda tr, **k: M.LocalDenoiser(tr, patch_size=3, **k),
    "equivariant": lambda tr, **k: M.EquivariantDenoiser(tr, **k),
    "zeros": lambda tr, **k: M.ELSDenoiser(tr, patch_size=3, padding="zeros", **k),
    "circular": lambda tr, **k: M.ELSDenoiser(tr, patch_size=3, padding="circular", **k),
}


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("p", [1, 3, 5])
def test_circular_els_commutes_with_shifts(c, p):
    train, x_t = data(c=c)
    den = M.ELSDenoiser(train, patch_size=p, padding="circular")
    for shift in [(1, 0), (0, 2), (3, 5)]:
        moved = den(torch.roll(x_t, shift, dims=(2, 3)), 0.4)
        assert torch.allclose(moved, torch.roll(den(x_t, 0.4), shift, dims=(2, 3)), atol=1e-5)


def test_equivariant_commutes_with_shifts():
    train, x_t = data(c=3)
    den = M.EquivariantDenoiser(train)
    moved = den(torch.roll(x_t, (2, 3), dims=(2, 3)), 0.4)
    assert torch.allclose(moved, torch.roll(den(x_t, 0.4), (2, 3), dims=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("kind", ["local", "zeros", "circular"])
@pytest.mark.parametrize("p", [1, 3, 5])
def test_output_ignores_pixels_outside_window(kind, p):
    train, x_t = data(c=3)
    den = M.LocalDenoiser(train, patch_size=p) if kind == "local" else M.ELSDenoiser(train, patch_size=p, padding=kind)
    h, w = train.shape[-2:]
    r = p // 2
    base = den(x_t, 0.3)
    g = torch.Generator().manual_seed(1)
    for i, j in [(0, 0), (3, 2), (6, 5), (1, 4)]:
        rows = torch.arange(i - r, i + r + 1) % h if kind == "circular" else torch.arange(max(0, i - r), i + r + 1)
        cols = torch.arange(j - r, j + r + 1) % w if kind == "circular" else torch.arange(max(0, j - r), j + r + 1)
        inside = torch.zeros(h, w, dtype=torch.bool)
        inside[rows[rows < h][:, None], cols[cols < w][None, :]] = True
        changed = torch.where(inside, x_t, torch.rand(x_t.shape, generator=g) * 4 - 2)
        assert torch.allclose(den(changed, 0.3)[:, :, i, j], base[:, :, i, j], atol=1e-5)


@pytest.mark.parametrize("size", [(5, 5), (7, 4), (4, 6)])
def test_local_with_whole_image_patch_is_ideal(size):
    train, x_t = data(c=3, h=size[0], w=size[1])
    p = 2 * max(size) - 1
    ideal = M.IdealDenoiser(train)
    for t in (0.05, 0.5, 0.9):
        assert torch.allclose(M.LocalDenoiser(train, patch_size=p)(x_t, t), ideal(x_t, t), atol=1e-4)
        assert torch.allclose(M.ELSDenoiser(train, patch_size=p)(x_t, t), ideal(x_t, t), atol=1e-4)


@pytest.mark.parametrize("n", [5, 7])
def test_circular_els_with_whole_image_patch_is_equivariant(n):
    train, x_t = data(c=2, h=n, w=n)
    es = M.EquivariantDenoiser(train)
    els = M.ELSDenoiser(train, patch_size=n, padding="circular")
    for t in (0.05, 0.5, 0.9):
        assert torch.allclose(els(x_t, t), es(x_t, t), atol=1e-4)


def test_ideal_returns_training_image_at_small_t():
    train, _ = data(c=3)
    den = M.IdealDenoiser(train)
    noise = torch.randn(2, *train.shape[1:], generator=torch.Generator().manual_seed(2))
    x0 = train[[4, 1]]
    for t in (0.0, 1e-3, 0.01):
        x_t = SCHED.add_noise(x0, t, noise)
        assert torch.allclose(den(x_t, t), x0, atol=1e-5)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_training_image_is_a_fixed_point_at_t0(kind):
    """At t = 0 a training image is its own nearest candidate, for every machine."""
    train, _ = data(c=2)
    den = MAKERS[kind](train)
    assert torch.allclose(den(train[2:4], 0.0), train[2:4], atol=1e-6)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_uneven_chunks_change_nothing(kind):
    """Softmax sums are added across chunks, not averaged: uneven chunks give the same answer."""
    train, x_t = data(n=11, c=2)
    one = MAKERS[kind](train, chunk_size=10**8)(x_t, 0.35)
    for chunk in (1, 7, 50, 333, 1000, 2500):
        assert torch.allclose(MAKERS[kind](train, chunk_size=chunk)(x_t, 0.35), one, atol=1e-5)


def test_online_softmax_adds_sums_across_uneven_chunks():
    """The pitfall: averaging per-chunk softmax means reweights candidates when chunks differ."""
    g = torch.Generator().manual_seed(0)
    scores, values = torch.randn(4, 100, generator=g).double() * 3, torch.randn(100, 2, generator=g).double()
    exact = torch.softmax(scores, 1) @ values
    for cuts in ([0, 1, 100], [0, 37, 38, 90, 100], [0, 99, 100]):
        sm = OnlineSoftmax()
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            sm.add(scores[:, lo:hi], lambda p, lo=lo, hi=hi: p @ values[lo:hi])
        assert torch.allclose(sm.result(), exact, atol=1e-12)
    means = [torch.softmax(scores[:, :1], 1) @ values[:1], torch.softmax(scores[:, 1:], 1) @ values[1:]]
    assert not torch.allclose((means[0] + means[1]) / 2, exact, atol=1e-2)  # what not to do


@pytest.mark.parametrize("padding", ["zeros", "circular"])
@pytest.mark.parametrize("p", [1, 3, 5])
def test_dedup_and_streaming_change_nothing(padding, p):
    train, x_t = data(n=8, c=1)
    train[:, :, :2] = -1.0  # plenty of identical patches
    train[5] = train[2]  # same class (2): every patch of image 5 has a twin in image 2
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    plain = M.ELSDenoiser(train, patch_size=p, padding=padding, dedup=False, labels=labels)
    merged = M.ELSDenoiser(train, patch_size=p, padding=padding, labels=labels)
    streamed = M.ELSDenoiser(train, patch_size=p, padding=padding, labels=labels, table_budget=0, chunk_size=300)
    assert all(isinstance(g.keys, patches.StreamedKeys) for g in streamed.prepare(p).groups)
    n_merged = sum(g.keys.keys.shape[0] for g in merged.prepare(p).groups)
    n_plain = sum(g.keys.keys.shape[0] for g in plain.prepare(p).groups)
    assert n_merged < n_plain  # duplicates were merged
    for t in (0.05, 0.5):
        for label in (None, 1):
            ref = plain(x_t, t, label=label)
            # float32 paths that differ in summation order only: the spec's 1e-4
            assert torch.allclose(merged(x_t, t, label=label), ref, atol=1e-4)
            assert torch.allclose(streamed(x_t, t, label=label), ref, atol=1e-4)
    ex_p = plain.explain(x_t, 0.5, label=1)
    for other in (merged, streamed):
        ex = other.explain(x_t, 0.5, label=1)
        assert torch.allclose(ex.n_eff, ex_p.n_eff, rtol=1e-3)
        assert torch.allclose(ex.weight, ex_p.weight, atol=1e-4)


def test_singleton_pixels_by_patches_or_whole_images(monkeypatch):
    """Corner pixels (candidates at the pixel itself) give the same from either code path."""
    train, x_t = data(n=6, c=2)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    by_patches = M.ELSDenoiser(train, patch_size=5, labels=labels)
    assert by_patches.prepare(5).single_patches is not None
    monkeypatch.setattr(M.els, "SINGLE_PATCH_BYTES", 0)
    by_images = M.ELSDenoiser(train, patch_size=5, labels=labels)
    assert by_images.prepare(5).single_patches is None
    for label in (None, 1):
        assert torch.allclose(by_patches(x_t, 0.3, label=label), by_images(x_t, 0.3, label=label), atol=1e-5)
        ex1, ex2 = by_patches.explain(x_t, 0.3, label=label), by_images.explain(x_t, 0.3, label=label)
        for name in ("image", "row", "col"):
            assert torch.equal(getattr(ex1, name), getattr(ex2, name))
        assert torch.allclose(ex1.n_eff, ex2.n_eff, rtol=1e-4)


def test_dedup_merges_only_identical_rows(monkeypatch):
    """With every hash colliding, verification must keep distinct patches apart."""
    train, x_t = data(n=6, c=2)
    train[:, :, :3] = -1.0
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    plain = M.ELSDenoiser(train, patch_size=3, dedup=False, labels=labels)
    monkeypatch.setattr(patches, "row_hash", lambda block, *rest: torch.zeros(block.shape[0], dtype=torch.int64))
    den = M.ELSDenoiser(train, patch_size=3, labels=labels)
    for label in (None, 0, 2):
        assert torch.allclose(den(x_t, 0.3, label=label), plain(x_t, 0.3, label=label), atol=1e-5)
    for g in den.prepare(3).groups:  # every key stands for identical training patches only
        assert int(g.keys.counts.sum()) == train.shape[0] * len(g.rows) * len(g.cols)
    # ... and still merges the patches equal to the first one (the blank ones here)
    assert den.prepare(3).groups[0].keys.keys.shape[0] < plain.prepare(3).groups[0].keys.keys.shape[0]


def test_key_counts_and_sources():
    """Each key's count is the number of training patches equal to it; its source is one of them."""
    train, _ = data(n=5, c=1)
    train[:, :, 3:] = -1.0
    den = M.ELSDenoiser(train, patch_size=3, padding="circular")
    table = den.prepare(3).groups[0].keys
    pt = patches.patches_at(patches.windows(patches.pad(train, 1, "circular"), 3), torch.arange(7), torch.arange(6)).to(
        table.keys.device
    )  # [N * H * W, D] in (image, row, col) order = the flat source index
    mu = table.mu
    for k in range(table.keys.shape[0]):
        key = pt[table.source[k]]
        assert torch.allclose(table.keys[k, :9] + mu, key, atol=1e-6)
        assert int((pt == key).all(1).sum()) == int(table.counts[k])


@pytest.mark.parametrize("padding", ["zeros", "circular"])
def test_explain_winner_patch_is_in_training_set(padding):
    """The reported winner's patch, read from the training set, matches the query at small t."""
    train, _ = data(n=5, c=2)
    den = M.ELSDenoiser(train, patch_size=3, padding=padding)
    x0 = train[1:2]
    ex = den.explain(x0, 1e-4)
    win = patches.windows(patches.pad(train, 1, padding), 3)
    mine = patches.windows(patches.pad(x0, 1, padding), 3)
    h, w = train.shape[-2:]
    for i in range(h):
        for j in range(w):
            n, r, c = int(ex.image[0, i, j]), int(ex.row[0, i, j]), int(ex.col[0, i, j])
            assert torch.equal(win[n, :, r, c], mine[0, :, i, j])
    assert (ex.weight * ex.n_eff <= 1 + 1e-4).all()


def test_explain_equivariant_source_pixel():
    """ES: the winner's source pixel holds the value the output pixel takes at t -> 0."""
    train, _ = data(n=4, c=1, h=5, w=5)
    den = M.EquivariantDenoiser(train)
    x0 = torch.roll(train[2:3], (1, 3), dims=(2, 3))
    ex = den.explain(x0, 0.0)
    assert (ex.image == 2).all()
    assert torch.equal(train[2, 0][ex.row[0], ex.col[0]], x0[0, 0])


@pytest.mark.parametrize("kind", list(MAKERS))
def test_stable_near_both_ends(kind):
    train, x_t = data(c=1)
    den = MAKERS[kind](train)
    for t in (0.0, 1e-7, 1e-4, 0.999, 1.0):
        out = den(x_t, t)
        assert torch.isfinite(out).all()
        assert out.abs().max() <= 1.0 + 1e-5  # a convex combination of values in [-1, 1]
        ex = den.explain(x_t, t)
        assert torch.isfinite(ex.n_eff).all() and torch.isfinite(ex.weight).all()


def test_dtype_and_device_follow_input():
    train, x_t = data(c=1)
    den = M.ELSDenoiser(train, patch_size=3)
    out = den(x_t.double(), 0.5)
    assert out.dtype == torch.float64 and out.device == x_t.device
    assert torch.allclose(out.float(), den(x_t, 0.5), atol=1e-6)
    assert torch.allclose(den(x_t, torch.tensor(0.5)), den(x_t, torch.full((3,), 0.5)))


def test_callable_patch_size_caches_per_size():
    train, x_t = data(c=1)
    den = M.ELSDenoiser(train, patch_size=lambda t: 5 if t > 0.5 else 3)
    den(x_t, torch.tensor([0.2, 0.9, 0.4]))
    assert sorted(den._layouts) == [3, 5]


def stored(den, p) -> bool:
    return all(isinstance(g.keys, patches.KeyTable) for g in den.prepare(p).groups)


@pytest.mark.parametrize("padding", ["zeros", "circular"])
def test_a_new_patch_size_takes_the_room_of_the_least_recently_used(padding):
    """Key tables are kept for the sizes used lately; a scale schedule must not end up streaming."""
    train, x_t = data(n=8, c=1, h=12, w=12)
    roomy = M.ELSDenoiser(train, padding=padding)
    need = {p: roomy.prepare(p).table_bytes for p in (3, 5, 7)}
    assert 0 < need[3] < need[5] < need[7]
    den = M.ELSDenoiser(train, padding=padding, table_budget=need[5] + need[7])  # any two fit, not three
    for p in (7, 5, 7, 3):
        den.patch_size = roomy.patch_size = p
        assert torch.equal(den(x_t, 0.5), roomy(x_t, 0.5))
    assert list(den._layouts) == [7, 3]  # 5 was used least recently: dropped; 7 was used again: kept
    assert stored(den, 3) and stored(den, 7)
    assert den.table_bytes == need[3] + need[7] <= den.table_budget

    # a schedule whose sizes fit only one at a time: every step still runs from stored tables
    schedule = lambda t: 7 if t > 0.6 else 5 if t > 0.3 else 3  # noqa: E731
    one = M.ELSDenoiser(train, patch_size=schedule, padding=padding, table_budget=need[7])
    for t in (0.9, 0.7, 0.5, 0.4, 0.2, 0.1):
        roomy.patch_size = schedule(t)
        assert torch.equal(one(x_t, t), roomy(x_t, t))
        assert stored(one, schedule(t)) and one.table_bytes <= need[7]


def test_a_table_too_large_for_the_budget_is_streamed_without_dropping_others():
    train, x_t = data(n=8, c=1, h=12, w=12)
    roomy = M.ELSDenoiser(train, patch_size=5, padding="circular")
    den = M.ELSDenoiser(train, patch_size=5, padding="circular", table_budget=roomy.prepare(3).table_bytes)
    den.prepare(3)
    assert isinstance(den.prepare(5).groups[0].keys, patches.StreamedKeys)
    assert list(den._layouts) == [3, 5] and stored(den, 3)
    assert torch.allclose(den(x_t, 0.5), roomy(x_t, 0.5), atol=1e-5)


def test_the_patch_hash_is_the_same_with_and_without_a_matrix_product():
    """CUDA has no int64 matrix product, so off the CPU the hash is summed elementwise: same bits."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(500, 49, generator=g) * 2 - 1
    x[::7] = x[3]  # some equal rows
    coef = torch.randint(-(2**62), 2**62, (49,), generator=g) * 2 + 1
    by_matmul = patches.row_hash(x.clone(), coef, torch.empty(500, 49, dtype=torch.int64), elementwise=False)
    by_sum = patches.row_hash(x.clone(), coef, torch.empty(500, 49, dtype=torch.int64), elementwise=True)
    assert torch.equal(by_matmul, by_sum)
    assert torch.equal(by_sum[::7], by_sum[3].expand(len(by_sum[::7])))
    assert len(by_sum.unique()) == 500 - len(range(0, 500, 7))  # rows 0, 7, 14, ... are copies of row 3
