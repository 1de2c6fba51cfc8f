"""Bad arguments to the explorers: one clear error naming the argument, before anything loads.

An explorer's controls would otherwise clip a bad value silently (an IntSlider clamps a row of 40
to 31, a seed box a seed of -1 to 0, a patch size of 4 was rounded up to 5) or fail with a
traitlets error that names neither the argument nor what is allowed. The checks come first: the
cases of ``BEFORE_LOADING`` run with data loading, network loading, machine building and the
explorer's own widgets all replaced by failures, so they pass only if the argument is refused
before any of that. Bounds that depend on the images (a pixel row, the largest patch) are
checked as soon as the training set is there, still before any control is built.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from elslib import data, networks, pretrained
from elslib.course import widgets as W
from elslib.course.widgets import base, helpers

pytestmark = pytest.mark.usefixtures("one_thread")

MAX_SEED = helpers.MAX_SEED


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return networks.ResNet(channels=8, blocks=2, padding="zeros").eval()


@pytest.fixture(scope="module")
def digits():
    """12 training images of 8x8 (the small sizes keep the ELS machine quick)."""
    return data.load("digits", n=12)


def base_kwargs(cls: str, net) -> dict:
    """Cheap valid arguments for each explorer, which a case then spoils one at a time."""
    return {
        "NoiseExplorer": dict(n_images=20),
        "ReverseProcessPlayer": dict(denoiser=net, steps=2),
        "MachineComparer": dict(network=None, machines=("IS",), n_images=20, steps=2, image_counts=(20,)),
        "MosaicInspector": dict(n_images=20, steps=2, patch_size=3),
        "ScaleScheduleEditor": dict(network=None, n_images=20, steps=2, bands=2),
        "LocalityProbe": dict(network=net, n_images=5),
    }[cls] | {"progress": False}


def _forbid(*_args, **_kwargs):
    raise AssertionError("loaded data, a network or a machine, or built a control, before checking the arguments")


@pytest.fixture
def nothing_loads(monkeypatch):
    for module, name in (
        (helpers, "training_set"),
        (data, "load"),
        (pretrained, "load"),
        (helpers, "make_machine"),
        (base.Explorer, "__init__"),
    ):
        monkeypatch.setattr(module, name, _forbid)


SEEDS = [("seed", -1), ("seed", 2.5), ("seed", None), ("seed", "0"), ("seed", MAX_SEED + 1), ("seed", True)]
DATASET = [("dataset", "mnsit"), ("dataset", None)]
N_IMAGES = [("n_images", 0), ("n_images", -3), ("n_images", 2.5), ("n_images", "20")]
STEPS = [("steps", 0), ("steps", 2.5), ("steps", "2"), ("steps", 10**6)]
SCHEDULE = [("schedule", "cosin"), ("schedule", 3)]
PADDING = [("padding", "mirror"), ("padding", None)]
PATCH = [("patch_size", p) for p in (4, 0, -1, 2.5, "7", True)]
PIXEL = [(arg, v) for arg in ("row", "col") for v in (-1, 1.5, "3")]
TIMES = [("t", t) for t in (-0.1, 1.5, math.nan, "0.5", None)]

BEFORE_LOADING = (
    [("NoiseExplorer", a, v) for a, v in DATASET + N_IMAGES + SEEDS + TIMES + SCHEDULE]
    + [("NoiseExplorer", "schedule", None), ("NoiseExplorer", "index", -1), ("NoiseExplorer", "index", 1.5)]
    + [("NoiseExplorer", "index", 20)]  # n_images=20: images 0 to 19
    + [("ReverseProcessPlayer", a, v) for a, v in SEEDS + STEPS + SCHEDULE]
    + [("ReverseProcessPlayer", "step", v) for v in (-1, 3, 1.5)]  # steps=2: steps 0, 1, 2
    + [("ReverseProcessPlayer", "shape", v) for v in ((32, 32), (1, 0, 32), "1x32x32", (1, 32.5, 32))]
    + [("ReverseProcessPlayer", "denoiser", "resnet"), ("ReverseProcessPlayer", "name", 3)]
    + [("ReverseProcessPlayer", "label", v) for v in (2.5, "3", True)]
    + [("MachineComparer", a, v) for a, v in DATASET + N_IMAGES + SEEDS + STEPS + SCHEDULE + PADDING + PATCH]
    + [("MachineComparer", "machines", v) for v in (None, "ELS", (), ("IS", "XS"))]
    + [("MachineComparer", "image_counts", v) for v in ((0,), (2.5,), None, "50")]
    + [("MachineComparer", "network_dataset", "mnsit"), ("MachineComparer", "network", 3)]
    + [("MachineComparer", "network", "no-such-network")]
    + [("MosaicInspector", a, v) for a, v in DATASET + N_IMAGES + SEEDS + STEPS + SCHEDULE + PADDING + PATCH]
    + [("MosaicInspector", a, v) for a, v in PIXEL]
    + [("MosaicInspector", "step", v) for v in (-1, 2, 1.5)]  # steps=2: steps 0 and 1
    + [("MosaicInspector", "patch_size", "a callable of no argument")]
    + [("MosaicInspector", "labels", torch.zeros(3, dtype=torch.int64))]  # labels without images
    + [("ScaleScheduleEditor", a, v) for a, v in DATASET + N_IMAGES + SEEDS + STEPS + SCHEDULE + PADDING]
    + [("ScaleScheduleEditor", "constant", p) for _, p in PATCH]
    + [("ScaleScheduleEditor", "bands", v) for v in (0, 2.5)]
    + [("ScaleScheduleEditor", "mode", "drawing"), ("ScaleScheduleEditor", "mode", "calibrated")]
    + [("ScaleScheduleEditor", "calibrated", v) for v in ("yes", 3)]
    + [("ScaleScheduleEditor", "network_dataset", "mnsit")]
    + [("LocalityProbe", a, v) for a, v in DATASET + N_IMAGES + SEEDS + SCHEDULE + PATCH + PIXEL + TIMES]
    + [("LocalityProbe", "t", 0.0), ("LocalityProbe", "t", 0.01)]  # below the slider's 0.02
    + [("LocalityProbe", "index", v) for v in (-1, 5, 1.5)]  # n_images=5: images 0 to 4
    + [("LocalityProbe", "network", v) for v in (3, "no-such-network")]
)


def _value(value):
    return (lambda: 7) if value == "a callable of no argument" else value


@pytest.mark.parametrize("cls,arg,value", BEFORE_LOADING, ids=lambda v: repr(v)[:30])
def test_a_bad_argument_is_refused_before_anything_loads(cls, arg, value, net, nothing_loads):
    value = _value(value)
    with pytest.raises((ValueError, TypeError)) as err:
        getattr(W, cls)(**(base_kwargs(cls, net) | {arg: value}))
    message = str(err.value)
    assert arg in message, f"the error must name {arg!r}: {message}"
    if not callable(value):  # (a callable's error shows its signature instead)
        shown = [repr(value), type(value).__name__] + ([f"{value:,}"] if type(value) is int else [])
        assert any(s in message for s in shown), f"the error must show {value!r}: {message}"


def test_the_errors_say_what_is_allowed(net, nothing_loads):
    cases = [
        (lambda: W.MachineComparer(network=None, padding="mirror"), "padding must be one of 'zeros', 'circular'"),
        (lambda: W.NoiseExplorer(t=1.5), r"t must be a number in \[0, 1\], got 1.5"),
        (lambda: W.NoiseExplorer(seed=-1), "seed must be an integer from 0 to 1,000,000"),
        (lambda: W.LocalityProbe(net, patch_size=4), "patch_size must be an odd integer >= 1, got 4"),
        (lambda: W.ScaleScheduleEditor(network=None, constant=6), "constant must be an odd integer >= 1, got 6"),
        (lambda: W.MosaicInspector(steps=5, step=5), "step must be an integer from 0 to 4"),
        (lambda: W.ReverseProcessPlayer(net, steps=5, step=6), "step must be an integer from 0 to 5"),
        (lambda: W.NoiseExplorer(n_images=0), "n_images must be an integer >= 1, got 0"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


# Bounds that depend on the images: checked once the training set is there, before any control.
AFTER_LOADING = [
    ("MachineComparer", dict(dataset="digits", patch_size=9), "patch_size", "from 1 to 7 for the 8x8 digits"),
    ("MachineComparer", dict(patch_size=33), "patch_size", "from 1 to 31 for the 32x32 mnist"),
    ("LocalityProbe", dict(patch_size=33), "patch_size", "from 1 to 31"),
    ("LocalityProbe", dict(row=32), "row", "from 0 to 31"),
    ("LocalityProbe", dict(dataset="digits", col=8), "col", "from 0 to 7"),
    ("NoiseExplorer", dict(dataset="faces", n_images=1000, index=100), "index", "from 0 to 99"),
    ("MosaicInspector", dict(row=32), "row", "from 0 to 31"),
    ("MosaicInspector", dict(col=40), "col", "from 0 to 31"),
    ("MosaicInspector", dict(patch_size=65), "patch_size", "from 1 to 63 for 32x32 images with zero padding"),
    ("MosaicInspector", dict(patch_size=33, padding="circular"), "patch_size", "from 1 to 31"),
    ("ScaleScheduleEditor", dict(dataset="digits", constant=9), "constant", "from 1 to 7 for the 8x8 digits"),
    ("ScaleScheduleEditor", dict(calibrated=lambda t: 8), "calibrated", "got 8"),
    ("ScaleScheduleEditor", dict(calibrated=lambda t: 33), "calibrated", "from 1 to 31"),
]


@pytest.mark.parametrize("cls,extra,arg,match", AFTER_LOADING, ids=lambda v: repr(v)[:30])
def test_a_bound_set_by_the_images_is_refused_before_any_control(cls, extra, arg, match, net, monkeypatch):
    for module, name in ((base.Explorer, "__init__"), (helpers, "make_machine")):
        monkeypatch.setattr(module, name, _forbid)
    with pytest.raises(ValueError, match=arg) as err:
        getattr(W, cls)(**(base_kwargs(cls, net) | extra))
    assert match in str(err.value)


@pytest.mark.parametrize(
    "images,labels",
    [
        ([1, 2], None),
        (torch.zeros(1, 8, 8), None),
        (torch.zeros(2, 1, 8, 8, dtype=torch.int64), None),
        (np.zeros((2, 1, 8, 8), np.float32), None),
        (torch.full((2, 1, 8, 8), math.nan), None),
        (torch.zeros(0, 1, 8, 8), None),
        ("digits", torch.zeros(5, dtype=torch.int64)),  # 12 images, 5 labels
        ("digits", torch.full((12,), 2.7)),  # a float label is not truncated to 2
        ("digits", torch.zeros(12, 1, dtype=torch.int64)),
        ("digits", -torch.ones(12, dtype=torch.int64)),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_a_training_set_of_ones_own_is_checked_first(images, labels, digits, nothing_loads):
    images = digits[0] if isinstance(images, str) else images
    named = "images" if labels is None else "labels"
    with pytest.raises(ValueError, match=named):
        W.MosaicInspector(images=images, labels=labels, progress=False)


# ----------------------------------------------------------------------- valid edges still work


def test_noise_explorer_edges():
    for t in (0.0, 1.0):
        e = W.NoiseExplorer(t=t, seed=MAX_SEED, index=4, n_images=5, progress=False)
        assert (e.t.value, e.seed.value, e.index.value) == (t, MAX_SEED, 4) and e.shown["t"] == t
        e.close()
    e = W.NoiseExplorer(dataset="faces", n_images=10**6, index=99, schedule="linear", progress=False)
    assert e.index.value == 99 and e.index.max == 99  # more images than the dataset holds: all of it
    e.close()


def test_comparer_edges(digits):
    for p in (1, 7):  # 7: the largest odd P of 8x8 images, kept as given
        e = W.MachineComparer(
            network=None, dataset="digits", machines=["LS"], n_images=12, patch_size=p, steps=2, progress=False
        )
        assert e.patch_size.value == p and e.seed.value == 0
        e.close()


def test_mosaic_edges(digits):
    images, labels = digits
    e = W.MosaicInspector(images=images, labels=labels, patch_size=15, steps=2, step=0, row=7, col=0, progress=False)
    assert (e.row.value, e.col.value, e.step.value) == (7, 0, 0) and e.shown["patch_size"] == 15
    e.close()
    e = W.MosaicInspector(images=images, patch_size=7, padding="circular", steps=2, step=1, seed=3.0, progress=False)
    assert e.step.value == 1 and e.seed.value == 3 and e.shown["patch_size"] == 7
    e.close()


def test_player_edges(net):
    for step in (0, 2):
        p = W.ReverseProcessPlayer(net, shape=(1, 8, 8), steps=2, step=step, seed=MAX_SEED, progress=False)
        assert p.step.value == step and p.shown["x_t"].shape == (8, 8) and p.seed.value == MAX_SEED
        p.close()


def test_probe_edges(net):
    for t, p, row, col in ((0.02, 1, 0, 31), (1.0, 31, 31, 0)):
        probe = W.LocalityProbe(net, t=t, patch_size=p, row=row, col=col, index=4, n_images=5, progress=False)
        assert (probe.t.value, probe.patch_size.value, probe.row.value, probe.col.value) == (t, p, row, col)
        assert probe.index.value == 4
        probe.close()


def test_editor_edges():
    e = W.ScaleScheduleEditor(
        network=None, dataset="digits", n_images=12, steps=2, constant=7, bands=1, mode="constant", progress=False
    )
    assert e.constant.value == 7 and list(e.shown["p"]) == [7, 7]
    e.close()
    e = W.ScaleScheduleEditor(
        network=None, dataset="digits", n_images=12, steps=2, calibrated=lambda t: 1, mode="calibrated", progress=False
    )
    assert e.mode.value == "calibrated" and list(e.shown["p"]) == [1, 1]
    e.close()
