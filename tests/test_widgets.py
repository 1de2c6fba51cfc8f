"""The explorers of elslib.course.widgets, driven from code: set a control's ``.value``, read ``.shown``.

Sizes are tiny (tens of training images, a few DDIM steps, a small untrained ResNet), so the
whole file runs in well under a minute; what is checked is that each explorer shows the right
thing and reacts to its controls as it should, not how good the samples are.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from elslib import calibration, data, networks, schedules
from elslib.course.widgets import (
    LocalityProbe,
    MachineComparer,
    MosaicInspector,
    NoiseExplorer,
    ReverseProcessPlayer,
    ScaleScheduleEditor,
    helpers,
)

ROOT = Path(__file__).resolve().parents[1]
N = 24  # training images for the machines
STEPS = 4


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    """A small untrained minimal ResNet with zero padding: receptive field 2 * 2 + 5 = 9."""
    torch.manual_seed(0)
    return networks.ResNet(channels=8, blocks=2, padding="zeros").eval()


class Counting:
    """A denoiser that counts its calls (to see what an explorer recomputes and what it caches)."""

    def __init__(self, den):
        self.den, self.calls = den, 0
        self.images = getattr(den, "images", None)

    def __call__(self, x, t, label=None):
        self.calls += 1
        return self.den(x, t) if label is None else self.den(x, t, label=label)


def is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n"


def corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


# --------------------------------------------------------------------------- NoiseExplorer


def test_noise_explorer_follows_time_seed_and_schedule():
    e = NoiseExplorer(n_images=10, progress=False)
    snrs, closeness = [], []
    for t in (0.1, 0.4, 0.7, 0.95):
        e.t.value = t
        s = e.shown
        assert s["t"] == pytest.approx(t)
        # exactly the forward process: x_t = a x0 + s eps
        np.testing.assert_allclose(s["x_t"], s["alpha"] * s["x0"] + s["sigma"] * s["noise"], atol=1e-5)
        snrs.append(s["snr"])
        closeness.append(corr(s["x_t"], s["x0"]))
    assert all(a > b for a, b in zip(snrs, snrs[1:], strict=False)), "a larger t must give a lower SNR"
    assert closeness[0] > 0.9 > closeness[-1], "x_t must drift from the image towards the noise"

    noise = e.shown["noise"].copy()
    e.seed.value = 1
    assert not np.allclose(e.shown["noise"], noise), "a new seed must draw new noise"
    e.seed.value = 0
    np.testing.assert_array_equal(e.shown["noise"], noise)  # same seed, same noise

    cosine_snr = e.shown["snr"]
    e.schedule.value = "linear"
    assert e.shown["snr"] == pytest.approx(schedules.linear().snr(0.95))
    assert e.shown["snr"] != pytest.approx(cosine_snr)
    # the spectrum panel: signal power a^2 |X0|^2 against the flat noise power s^2
    assert e.shown["noise_power"] == pytest.approx(e.shown["sigma"] ** 2)


def test_noise_explorer_picks_images_from_any_dataset():
    e = NoiseExplorer(n_images=10, progress=False)
    first = e.shown["x0"].copy()
    e.index.value = 3
    assert not np.array_equal(e.shown["x0"], first)
    np.testing.assert_array_equal(e.shown["x0"], data.load("mnist", n=10)[0][3, 0].numpy())
    e.dataset.value = "photos"
    assert e.shown["x0"].shape == (32, 32, 3) and e.shown["x_t"].shape == (32, 32, 3)
    e.dataset.value = "digits"
    assert e.shown["x0"].shape == (8, 8) and e.index.max == 9


# --------------------------------------------------------------------------- ReverseProcessPlayer


def test_reverse_player_steps_through_a_cached_trajectory():
    images, _ = helpers.training_set("mnist", N)
    den = Counting(helpers.make_machine("IS", images))
    p = ReverseProcessPlayer(den, name="IS", steps=STEPS, step=0, progress=False)
    assert den.calls == STEPS
    np.testing.assert_array_equal(p.shown["x_t"], helpers.noise((1, 32, 32), 0)[0, 0].numpy())  # step 0: the noise
    assert p.shown["t"] == 1.0

    seen = []
    for _ in range(STEPS):
        p.forward.click()
        seen.append(p.shown["x_t"].copy())
    assert p.step.value == STEPS and p.shown["t"] == 0.0
    assert den.calls == STEPS, "stepping must replay the cached trajectory, not sample again"
    final = p.shown["x_t"]
    # the ideal machine memorises: its sample is a training image
    dist = ((images[:, 0].numpy() - final) ** 2).mean(axis=(1, 2)).min()
    assert dist < 1e-3
    np.testing.assert_array_equal(p.shown["x0_hat"], final)  # at the end the prediction is the sample
    p.back.click()
    np.testing.assert_array_equal(p.shown["x_t"], seen[-2])
    assert not np.array_equal(p.shown["x0_hat"], p.shown["x_t"])

    p.step.value = 2
    before = p.shown["x_t"].copy()
    p.seed.value = 7
    assert den.calls == 2 * STEPS
    assert not np.allclose(p.shown["x_t"], before), "a new seed must give a new trajectory"
    p.seed.value = 0
    assert den.calls == 2 * STEPS  # back to a cached seed
    np.testing.assert_array_equal(p.shown["x_t"], before)


def test_reverse_player_takes_a_network_module(net):
    p = ReverseProcessPlayer(net, steps=3, step=1, progress=False)
    assert p.name == "ResNet" and p.shown["x_t"].shape == (32, 32)
    assert np.isfinite(p.shown["x0_hat"]).all()


# --------------------------------------------------------------------------- MachineComparer


@pytest.fixture(scope="module")
def comparer(net):
    return MachineComparer(network=net, n_images=N, steps=STEPS, patch_size=5, image_counts=(N,), progress=False)


def test_comparer_shows_every_machine_and_its_correlation(comparer):
    s = comparer.shown
    for kind in ("network", "IS", "LS", "ES", "ELS"):
        assert s[kind].shape == (32, 32)
    for kind in ("IS", "LS", "ES", "ELS"):
        assert s["r"][kind] == pytest.approx(corr(s[kind], s["network"]), abs=1e-4)
    images, _ = helpers.training_set("mnist", N)
    assert ((images[:, 0].numpy() - s["IS"]) ** 2).mean(axis=(1, 2)).min() < 1e-3  # IS copies a training image


def test_comparer_recomputes_only_what_a_control_affects(comparer):
    before = {k: comparer.shown[k].copy() for k in ("network", "IS", "LS", "ES", "ELS")}
    comparer.patch_size.value = 3
    after = comparer.shown
    for kind in ("network", "IS", "ES"):
        np.testing.assert_array_equal(after[kind], before[kind])
    assert not np.allclose(after["LS"], before["LS"]) and not np.allclose(after["ELS"], before["ELS"])
    comparer.padding.value = "circular"
    np.testing.assert_array_equal(comparer.shown["LS"], after["LS"])
    assert not np.allclose(comparer.shown["ELS"], after["ELS"])

    comparer.padding.value = "zeros"
    comparer.patch_size.value = 5  # back to a cached setting
    assert comparer.last_seconds < 2.0
    for kind in before:
        np.testing.assert_array_equal(comparer.shown[kind], before[kind])

    comparer.seed.value = 1
    for kind in before:
        assert not np.allclose(comparer.shown[kind], before[kind]), f"a new seed must change {kind}"
    comparer.seed.value = 0


def test_comparer_without_a_matching_network(comparer):
    comparer.dataset.value = "digits"
    try:
        s = comparer.shown
        assert "network" not in s and s["r"] == {}
        assert s["IS"].shape == (8, 8) and comparer.patch_size.value <= 7
    finally:
        comparer.dataset.value = "mnist"
    with pytest.raises(ValueError, match="machines"):
        MachineComparer(network=None, machines=("XS",), progress=False)


# --------------------------------------------------------------------------- MosaicInspector


@pytest.fixture(scope="module")
def inspector():
    return MosaicInspector(n_images=N, steps=STEPS, patch_size=5, progress=False)


def reference_patch(image: np.ndarray, row: int, col: int, p: int, padding: str) -> np.ndarray:
    """The P x P patch of a [H, W] image around (row, col), padded with numpy (independently of elslib)."""
    r = p // 2
    padded = np.pad(image, r, mode="wrap" if padding == "circular" else "constant")
    return padded[row : row + p, col : col + p]


def test_inspector_patch_matches_the_training_set(inspector):
    images = data.load("mnist", n=N)[0][:, 0].numpy()
    for row, col in [(16, 16), (0, 0), (5, 27), (31, 12)]:
        inspector.select(row, col)
        s = inspector.shown
        assert s["pixel"] == (row, col)
        k, (kr, kc) = s["image_index"], s["centre"]
        assert (k, kr, kc) == (s["source"][row, col], s["source_row"][row, col], s["source_col"][row, col])
        np.testing.assert_array_equal(s["train_image"], images[k])
        np.testing.assert_array_equal(s["patch"], reference_patch(images[k], kr, kc, 5, "zeros"))
        if min(row, col) < 2:  # zero padding: a border pixel only sees patches at its own coordinate
            assert (kr == row) if row < 2 else True
            assert (kc == col) if col < 2 else True


def test_inspector_pixels_are_close_to_their_winning_patch_centre(inspector):
    """x0_hat[u] = w v_winner + (1 - w) (average of the others), values in [-1, 1]:
    so |x0_hat[u] - v_winner| <= 2 (1 - w) at every pixel -- an exact bound."""
    images = data.load("mnist", n=N)[0][:, 0].numpy()
    s = inspector.shown
    centres = images[s["source"], s["source_row"], s["source_col"]]
    gap = np.abs(s["sample"] - centres)
    assert (gap <= 2 * (1 - s["weight"]) + 1e-3).all()
    assert (s["weight"] > 0).all() and (s["weight"] <= 1 + 1e-6).all() and (s["n_eff"] >= 1 - 1e-3).all()
    assert s["mosaic"].shape == (32, 32, 3)
    assert (s["mosaic"][s["blank"]] == s["mosaic"][s["blank"]][0]).all()  # no single source: one grey


def test_inspector_winner_is_the_nearest_patch_by_brute_force():
    """Circular padding: every wrapped patch of every training image competes for every pixel."""
    images = data.load("digits", n=12)[0]
    ins = MosaicInspector(images=images, patch_size=3, padding="circular", steps=3, progress=False)
    traj = ins._trajectories[0]
    i = ins.step.value
    x_t, t = traj.x[i], float(traj.times[i])
    a = schedules.cosine().alpha(t)
    candidates = F.unfold(F.pad(images, (1, 1, 1, 1), mode="circular"), 3).transpose(1, 2).reshape(-1, 9).double()
    for row, col in [(0, 0), (3, 4), (7, 2)]:
        ins.select(row, col)
        s = ins.shown
        query = torch.as_tensor(reference_patch(x_t[0, 0].numpy(), row, col, 3, "circular")).reshape(9).double()
        d2 = ((query - a * candidates) ** 2).sum(1)
        winner = torch.as_tensor(s["patch"]).reshape(9).double()
        assert float(((query - a * winner) ** 2).sum()) == pytest.approx(float(d2.min()), rel=1e-4, abs=1e-6)


def test_inspector_explains_other_steps_and_seeds(inspector):
    last = inspector.shown["n_eff"].copy()
    inspector.step.value = 0
    early = inspector.shown
    assert early["step"] == 0 and early["t"] == 1.0
    assert np.median(early["n_eff"]) > np.median(last), "at high noise the weight is spread over many patches"
    inspector.step.value = STEPS - 1
    sample = inspector.shown["sample"].copy()
    inspector.seed.value = 3
    assert not np.allclose(inspector.shown["sample"], sample)
    inspector.seed.value = 0


# --------------------------------------------------------------------------- ScaleScheduleEditor


@pytest.fixture(scope="module")
def editor(net):
    times = helpers.step_times(STEPS)[:-1]  # 1, 0.75, 0.5, 0.25
    cal = calibration.ScaleSchedule(times, [9, 7, 5, 3])
    e = ScaleScheduleEditor(network=net, calibrated=cal, n_images=N, steps=STEPS, bands=4, progress=False)
    return e


def test_editor_shows_the_curve_of_each_mode(editor):
    assert editor.mode.value == "calibrated"
    assert list(editor.shown["p"]) == [9, 7, 5, 3] and not editor.shown["stale"]
    assert editor.shown["sample"].shape == (32, 32) and editor.shown["r"] == pytest.approx(
        corr(editor.shown["sample"], editor.shown["network"]), abs=1e-4
    )
    editor.mode.value = "drawn"  # drawing starts from the curve shown
    assert [k.value for k in editor.knots] == [3, 5, 7, 9] and list(editor.shown["p"]) == [9, 7, 5, 3]
    assert not editor.shown["stale"]
    editor.mode.value = "constant"
    editor.constant.value = 5
    assert list(editor.shown["p"]) == [5] * STEPS and editor.shown["stale"]
    assert editor.scale_schedule()(0.5) == 5
    editor.mode.value = "calibrated"


def test_editor_samples_with_the_curve_and_caches_steps(editor):
    calibrated = editor.shown["sample"].copy()
    counter = Counting(editor.machine)
    editor.machine = counter
    try:
        editor.mode.value = "drawn"
        editor.knots[0].value = 1  # the band of the smallest t: only the last step changes
        assert editor.shown["stale"]
        editor.sample_button.click()
        assert counter.calls == 1 and not editor.shown["stale"]
        assert not np.allclose(editor.shown["sample"], calibrated)
        editor.knots[3].value = 11  # the band of t = 1: every step changes
        editor.sample()
        assert counter.calls == 1 + STEPS
        editor.knots[3].value, editor.knots[0].value = 9, 3  # back to the calibrated curve: all cached
        editor.sample()
        assert counter.calls == 1 + STEPS
        np.testing.assert_array_equal(editor.shown["sample"], calibrated)
        editor.auto.value = True
        editor.seed.value = 2  # a new seed, sampled at once with auto on
        assert counter.calls == 1 + 2 * STEPS and not editor.shown["stale"]
        assert not np.allclose(editor.shown["sample"], calibrated)
    finally:
        editor.auto.value = False
        editor.seed.value = 0
        editor.machine = counter.den
        editor.mode.value = "calibrated"


# --------------------------------------------------------------------------- LocalityProbe


def test_locality_probe_gradient_is_zero_outside_the_receptive_field(net):
    probe = LocalityProbe(network=net, n_images=5, progress=False)
    assert probe.receptive_field == 9
    for row, col in [(16, 16), (3, 28), (0, 0)]:
        probe.row.value, probe.col.value = row, col
        grad = probe.shown["gradient"]
        inside = np.zeros_like(grad, dtype=bool)
        inside[max(0, row - 4) : row + 5, max(0, col - 4) : col + 5] = True
        assert (grad[~inside] == 0).all(), "a conv net's output pixel cannot depend on pixels beyond its field"
        assert grad[row, col] > 0
    probe.row.value, probe.col.value = 16, 16
    share = probe.shown["share_by_p"]
    assert (np.diff(share) >= -1e-9).all() and share[probe.shown["sizes"] >= 9] == pytest.approx(1.0)
    probe.patch_size.value = 3
    assert probe.shown["inside"] == pytest.approx(share[1])


def test_locality_probe_changes_with_pixel_and_time(net):
    probe = LocalityProbe(network=net, n_images=5, progress=False)
    first = probe.shown["gradient"].copy()
    probe.t.value = 0.1
    assert not np.allclose(probe.shown["gradient"], first)
    with pytest.raises(ValueError, match="network"):
        LocalityProbe(network=helpers.make_machine("IS", helpers.training_set("mnist", 5)[0]), progress=False)
    unet = LocalityProbe(network=networks.UNet(channels=8), n_images=5, progress=False)
    assert unet.receptive_field is None and unet.shown["gradient"].shape == (32, 32)


# --------------------------------------------------------------------------- static fallback


def test_every_explorer_has_a_png_fallback(comparer, inspector, editor, net):
    from PIL import Image

    explorers = [
        NoiseExplorer(n_images=5, progress=False),
        comparer,
        inspector,
        editor,
        ReverseProcessPlayer(net, steps=2, progress=False),
        LocalityProbe(net, n_images=5, progress=False),
    ]
    for e in explorers:
        bundle = e._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle and "text/plain" in bundle
        png = base64.b64decode(bundle["image/png"])
        assert is_png(png) and png == e.png
        width, height = Image.open(io.BytesIO(png)).size
        assert 500 <= width <= 1100 and 200 <= height <= 700, f"{type(e).__name__}: {width}x{height}"
        assert type(e).__doc__ and "Args:" in type(e).__doc__


def test_a_notebook_run_without_a_frontend_keeps_a_png(tmp_path, monkeypatch):
    """nbclient (as CI and nbconvert run notebooks) has no widget frontend: the PNG must be there."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.v4.new_notebook()
    source = "from elslib.course.widgets import NoiseExplorer\nNoiseExplorer(progress=False)"
    nb.cells = [nbformat.v4.new_code_cell(source)]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert any(o.get("output_type") == "execute_result" and "image/png" in o.get("data", {}) for o in outputs)
    png = next(o["data"]["image/png"] for o in outputs if "image/png" in o.get("data", {}))
    assert is_png(base64.b64decode(png))
