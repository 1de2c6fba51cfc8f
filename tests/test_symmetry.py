"""elslib.symmetry: shifts, equivariance errors, border distances, shift-blind nearest neighbours."""

import pytest
import torch

from elslib import machines, networks, sampling, symmetry
from elslib.course.exercises.ch06 import _ref_nearest_shifted

pytestmark = pytest.mark.usefixtures("one_thread")


def images(shape, seed=0):
    return sampling.noise_like(shape, seed=seed).clamp(-2, 2) * 0.5


def test_circular_shift_is_roll_and_moves_pixels_down_and_right():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    for dy, dx in [(0, 0), (1, 2), (-1, 3), (5, -7)]:
        assert torch.equal(symmetry.shift(x, dy, dx), torch.roll(x, (dy, dx), (-2, -1)))
    assert symmetry.shift(x, 1, 0)[0, 0, 1, 0] == x[0, 0, 0, 0]  # pixel (0, 0) went to (1, 0)


def test_zero_shift_drops_and_fills():
    x = torch.arange(12.0).reshape(1, 1, 3, 4) + 1
    out = symmetry.shift(x, 1, -1, mode="zeros", fill=-1.0)
    assert torch.equal(out[0, 0, 1:, :3], x[0, 0, :2, 1:])
    assert (out[0, 0, 0] == -1).all() and (out[0, 0, :, 3] == -1).all()
    assert (symmetry.shift(x, 3, 0, mode="zeros") == 0).all()
    mask = symmetry.valid_mask((3, 4), 1, -1, mode="zeros")
    assert mask.sum() == 2 * 3 and torch.equal(mask, out[0, 0] != -1)
    assert symmetry.valid_mask((3, 4), 1, -1).all()
    with pytest.raises(ValueError, match="mode"):
        symmetry.shift(x, 1, 1, mode="reflect")


def test_distances_to_edges_and_seams():
    d = symmetry.distance_to_edge((5, 6))
    assert d[0].max() == 0 and d[2, 2] == 2 and d[2, 3] == 2 and d.max() == 2
    assert torch.equal(symmetry.border_distance((5, 6)), d)
    # a circular shift by 2 rows makes rows 2 and 1 a seam (edge of the original frame)
    b = symmetry.border_distance((8, 8), 2, 0)
    assert b[2, 4] == 0 and b[1, 4] == 0 and b[4, 4] == 2
    z = symmetry.border_distance((8, 8), 2, 0, mode="zeros")
    assert (z[:2] == -1).all() and z[2, 4] == 0 and z[5, 4] == 2


def test_convolution_commutes_with_circular_shifts_zero_padding_away_from_the_border():
    torch.manual_seed(0)
    x = images((2, 1, 12, 10))
    shifts = [(1, 0), (3, 7), (11, 9)]
    circ = torch.nn.Conv2d(1, 3, 5, padding=2, padding_mode="circular")
    zero = torch.nn.Conv2d(1, 3, 5, padding=2, padding_mode="zeros")
    assert symmetry.equivariance_error(circ, x, shifts).max() < 1e-5
    assert symmetry.equivariance_error(zero, x, shifts).min() > 1e-2
    assert symmetry.equivariance_error(zero, x, shifts, min_border=2).max() < 1e-5
    assert symmetry.equivariance_error(zero, x, [(1, 0), (-2, 3)], mode="zeros", min_border=2).max() < 1e-5
    position = torch.linspace(0, 1, 120).reshape(12, 10)
    assert symmetry.equivariance_error(lambda z: z * position, x, shifts).min() > 1e-2
    assert symmetry.equivariance_error(torch.tanh, x, shifts, mode="zeros").max() == 0


def test_resnet_commutes_within_its_receptive_field():
    torch.manual_seed(1)
    x = images((1, 1, 16, 16), 3)
    for padding in ("circular", "zeros"):
        net = networks.ResNet(channels=4, blocks=2, padding=padding).eval()
        den = networks.as_denoiser(net)
        f = lambda z, den=den: den(z, 0.5)
        radius = (net.receptive_field - 1) // 2
        err = symmetry.equivariance_error(f, x, [(2, 5), (3, 3)], batch=1)
        inner = symmetry.equivariance_error(f, x, [(2, 5), (3, 3)], min_border=radius)
        if padding == "circular":
            assert err.max() < 1e-5
        else:
            assert err.min() > 1e-4 and inner.max() < 1e-5
            outer = symmetry.equivariance_error(f, x, [(2, 5)], min_border=radius - 1)
            assert outer.max() > 0  # the radius is tight


def test_error_map_shape_and_progress_bar():
    x = images((2, 1, 6, 6))
    err, valid = symmetry.equivariance_map(torch.tanh, x, 1, 2, mode="zeros")
    assert err.shape == x.shape and valid.shape == (6, 6) and valid.sum() == 5 * 4
    assert symmetry.equivariance_error(torch.tanh, x, symmetry.all_shifts((6, 6)), progress=True).max() == 0
    assert len(symmetry.all_shifts((3, 4))) == 12 and symmetry.all_shifts((3, 4))[0] == (0, 0)


def test_nearest_shifted_matches_brute_force_and_finds_copies():
    train = images((5, 1, 6, 7), 4)
    copies = torch.stack([torch.roll(train[2], (4, 1), (-2, -1)), train[0]])
    new = images((3, 1, 6, 7), 5)
    d, i, s = symmetry.nearest_shifted(torch.cat([copies, new]), train)
    assert d[:2].max() == 0 and i[:2].tolist() == [2, 0] and s[:2].tolist() == [[4, 1], [0, 0]]
    rd, ri, rs = _ref_nearest_shifted(new, train)
    assert torch.allclose(d[2:], rd, atol=1e-6) and torch.equal(i[2:], ri) and torch.equal(s[2:], rs)
    d1, i1, s1 = symmetry.nearest_shifted(new, train, chunk=1)
    assert torch.equal(i1, ri) and torch.equal(s1, rs)


def test_equivariant_machine_commutes_and_reproduces_shifted_images():
    train = images((4, 1, 8, 8), 6) * 2
    es = machines.EquivariantDenoiser(train, device="cpu")
    x = images((2, 1, 8, 8), 7)
    assert symmetry.equivariance_error(lambda z: es(z, 0.4), x, [(1, 3), (5, 2)]).max() < 1e-5
    moved = torch.roll(train[3:], (2, 6), (-2, -1))
    out = es(moved * es.schedule.alpha(0.01), 0.01)
    d, i, s = symmetry.nearest_shifted(out, train)
    assert d[0] < 1e-4 and i.item() == 3 and s[0].tolist() == [2, 6]


def test_error_by_distance_agrees_with_min_border():
    torch.manual_seed(2)
    x = images((2, 1, 12, 10), 8)
    zero = torch.nn.Conv2d(1, 3, 5, padding=2, padding_mode="zeros")
    shifts = [(1, 0), (3, 4), (0, 0)]
    profile = symmetry.equivariance_by_distance(zero, x, shifts)
    assert profile.shape == (3, 6)
    assert torch.allclose(profile.nan_to_num(-1).amax(1), symmetry.equivariance_error(zero, x, shifts))
    assert torch.allclose(
        profile[:, 2:].nan_to_num(-1).amax(1), symmetry.equivariance_error(zero, x, shifts, min_border=2)
    )
    assert profile[:2, :2].min() > 1e-2 and profile[:, 2:].nan_to_num(0).max() < 1e-5
