"""Bad input to the machines: each raises a ValueError whose message names the argument."""

from __future__ import annotations

import pytest
import torch

import elslib.machines as M

TRAIN = torch.rand(4, 1, 6, 8) * 2 - 1
LABELS = torch.tensor([0, 1, 1, 0])
X = torch.zeros(2, 1, 6, 8)

MACHINES = {
    "ideal": lambda **k: M.IdealDenoiser(TRAIN, **k),
    "local": lambda **k: M.LocalDenoiser(TRAIN, patch_size=3, **k),
    "equivariant": lambda **k: M.EquivariantDenoiser(TRAIN, **k),
    "zeros": lambda **k: M.ELSDenoiser(TRAIN, patch_size=3, **k),
    "circular": lambda **k: M.ELSDenoiser(TRAIN, patch_size=3, padding="circular", **k),
}


@pytest.mark.parametrize(
    "maker,p",
    [
        (M.LocalDenoiser, 4),
        (M.LocalDenoiser, 0),
        (M.LocalDenoiser, -3),
        (M.LocalDenoiser, 17),  # > 2 * max(6, 8) - 1 = 15
        (M.LocalDenoiser, 3.0),
        (M.LocalDenoiser, True),
        (M.ELSDenoiser, 2),
        (M.ELSDenoiser, 17),
        (lambda tr, patch_size: M.ELSDenoiser(tr, patch_size=patch_size, padding="circular"), 7),  # > min(6, 8)
        (lambda tr, patch_size: M.ELSDenoiser(tr, patch_size=patch_size, padding="circular"), 6),
    ],
)
def test_bad_patch_size(maker, p):
    with pytest.raises(ValueError, match="patch_size") as err:
        maker(TRAIN, patch_size=p)
    assert repr(p) in str(err.value)


def test_largest_patch_sizes_are_allowed():
    M.LocalDenoiser(TRAIN, patch_size=15)
    M.ELSDenoiser(TRAIN, patch_size=15)
    M.ELSDenoiser(TRAIN, patch_size=5, padding="circular")


@pytest.mark.parametrize("kind", ["local", "zeros", "circular"])
def test_bad_patch_size_from_schedule(kind):
    den = {"local": M.LocalDenoiser, "zeros": M.ELSDenoiser}.get(kind)
    if den is None:
        den = M.ELSDenoiser(TRAIN, patch_size=lambda t: 7, padding="circular")
    else:
        den = den(TRAIN, patch_size=lambda t: 4)
    with pytest.raises(ValueError, match="patch_size"):
        den(X, 0.5)


@pytest.mark.parametrize("kind", list(MACHINES))
def test_channel_mismatch(kind):
    with pytest.raises(ValueError, match="x_t.*channels"):
        MACHINES[kind]()(torch.zeros(2, 3, 6, 8), 0.5)


@pytest.mark.parametrize("kind", list(MACHINES))
def test_size_mismatch(kind):
    with pytest.raises(ValueError, match="x_t.*size"):
        MACHINES[kind]()(torch.zeros(2, 1, 8, 6), 0.5)


@pytest.mark.parametrize("kind", list(MACHINES))
def test_label_without_labels(kind):
    with pytest.raises(ValueError, match="label"):
        MACHINES[kind]()(X, 0.5, label=1)


@pytest.mark.parametrize("kind", list(MACHINES))
@pytest.mark.parametrize("label", [5, [0, 7], torch.tensor([1, 2])])
def test_label_absent_from_labels(kind, label):
    with pytest.raises(ValueError, match="label"):
        MACHINES[kind](labels=LABELS)(X, 0.5, label=label)


@pytest.mark.parametrize("label", [[0], [0, 1, 1], 0.5, "1", torch.tensor([0.0, 1.0])])
def test_bad_label_shape_or_type(label):
    with pytest.raises(ValueError, match="label"):
        MACHINES["ideal"](labels=LABELS)(X, 0.5, label=label)


@pytest.mark.parametrize("labels", [torch.tensor([0, 1, 1]), torch.tensor([0.0, 1, 1, 0]), [[0, 1], [1, 0]]])
def test_bad_labels(labels):
    with pytest.raises(ValueError, match="labels"):
        M.IdealDenoiser(TRAIN, labels=labels)


@pytest.mark.parametrize("kind", list(MACHINES))
@pytest.mark.parametrize("t", [-0.1, 1.5, float("nan"), torch.tensor([0.5, 2.0]), torch.tensor([0.1, 0.2, 0.3])])
def test_bad_time(kind, t):
    with pytest.raises(ValueError, match="t "):
        MACHINES[kind]()(X, t)


@pytest.mark.parametrize("kind", list(MACHINES))
def test_nan_in_x(kind):
    x = X.clone()
    x[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="x_t"):
        MACHINES[kind]()(x, 0.5)
    with pytest.raises(ValueError, match="x_t"):
        MACHINES[kind]().explain(x, 0.5)


def test_bad_training_set_and_options():
    with pytest.raises(ValueError, match="images"):
        M.IdealDenoiser(torch.zeros(4, 6, 8))
    with pytest.raises(ValueError, match="images"):
        M.ELSDenoiser(torch.full((4, 1, 6, 8), float("nan")))
    with pytest.raises(ValueError, match="padding"):
        M.ELSDenoiser(TRAIN, padding="reflect")
    with pytest.raises(ValueError, match="chunk_size"):
        M.LocalDenoiser(TRAIN, chunk_size=0)
    with pytest.raises(ValueError, match="x_t"):
        M.IdealDenoiser(TRAIN)(X[0], 0.5)
