"""elslib.receptive: receptive fields from the layers and from gradients, checked by brute force."""

import pytest
import torch
import torch.nn as nn

from elslib import networks, receptive, schedules


def small_resnet(blocks, target="v", seed=0, padding="zeros"):
    torch.manual_seed(seed)
    return networks.ResNet(channels=8, blocks=blocks, padding=padding, target=target).double().eval()


@pytest.mark.parametrize("blocks", [1, 2, 4])
def test_measured_field_of_the_resnet_is_2L_plus_5(blocks):
    net = small_resnet(blocks)
    assert net.receptive_field == 2 * blocks + 5
    assert receptive.measured_receptive_field(net, size=32) == 2 * blocks + 5
    assert receptive.measured_receptive_field(networks.as_denoiser(net), size=32) == 2 * blocks + 5
    assert receptive.conv_receptive_field([3] * (blocks + 2)) == 2 * blocks + 5


@pytest.mark.parametrize(
    "kernels,dilations",
    [([3, 3, 3], [1, 1, 1]), ([5, 1, 7], [1, 1, 1]), ([3, 3, 3], [1, 2, 4]), ([3, 5], [3, 2])],
)
def test_formula_matches_a_measured_conv_stack(kernels, dilations):
    torch.manual_seed(1)
    layers = []
    for k, d in zip(kernels, dilations, strict=True):
        layers += [nn.Conv2d(2, 2, k, dilation=d, padding=d * (k // 2)), nn.Tanh()]
    stack = nn.Sequential(*layers).double()
    assert receptive.measured_receptive_field(stack, size=48) == receptive.conv_receptive_field(kernels, dilations)


def brute_strided_field(kernels, strides):
    """Positions of the input that one output of a 1-D valid strided stack reads, by enumeration."""
    reach = {0}
    for k, s in reversed(list(zip(kernels, strides, strict=True))):
        reach = {s * p + j for p in reach for j in range(k)}
    return max(reach) - min(reach) + 1


@pytest.mark.parametrize("kernels,strides", [([3, 3, 3], [2, 1, 1]), ([3, 3, 3, 3], [1, 2, 2, 1]), ([4, 2], [2, 2])])
def test_formula_with_strides_matches_enumeration(kernels, strides):
    assert receptive.conv_receptive_field(kernels, strides=strides) == brute_strided_field(kernels, strides)


def test_formula_checks_its_arguments():
    with pytest.raises(ValueError, match="same length"):
        receptive.conv_receptive_field([3, 3], dilations=[1])
    with pytest.raises(ValueError):
        receptive.conv_receptive_field([0])


@pytest.mark.parametrize("target", ["eps", "v"])
def test_gradient_map_matches_finite_differences(target):
    net = small_resnet(2, target=target, seed=3)
    sched = schedules.cosine()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn((2, 1, 12, 12), generator=gen, dtype=torch.float64)
    t, pixel = 0.4, (5, 7)
    grad = receptive.gradient_map(net, x, t, pixel)
    den = networks.as_denoiser(net, sched)
    h = 1e-6
    for i, j in [(5, 7), (4, 6), (1, 9), (8, 3), (0, 0), (11, 11)]:
        up, down = x.clone(), x.clone()
        up[:, 0, i, j] += h
        down[:, 0, i, j] -= h
        fd = (den(up, t)[:, 0, pixel[0], pixel[1]] - den(down, t)[:, 0, pixel[0], pixel[1]]) / (2 * h)
        assert torch.allclose(grad[:, 0, i, j], fd, atol=1e-6, rtol=1e-5), (i, j)


def test_gradient_is_exactly_zero_outside_the_field_and_outputs_do_not_move():
    net = small_resnet(2, seed=5).float()  # field 9: reaches 4 pixels
    gen = torch.Generator().manual_seed(6)
    x = torch.randn((3, 1, 20, 20), generator=gen)
    pixel = (10, 9)
    grad = receptive.gradient_map(net, x, 0.7, pixel)
    inside = receptive.window_mask((20, 20), pixel, net.receptive_field)
    assert (grad[:, :, ~inside] == 0).all()
    assert (grad[:, :, inside] != 0).float().mean() > 0.9
    den = networks.as_denoiser(net)
    moved = x.clone()
    moved[:, :, ~inside] += 3.0 * torch.randn(moved[:, :, ~inside].shape, generator=gen)
    assert torch.equal(den(moved, 0.7)[:, :, 10, 9], den(x, 0.7)[:, :, 10, 9])


def test_gradient_map_takes_a_plain_differentiable_function():
    weights = torch.arange(25.0).view(1, 1, 5, 5)
    grad = receptive.gradient_map(lambda x, t: t * x * weights, torch.ones(1, 1, 5, 5), 0.5, (2, 3))
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 2, 3] = 0.5 * weights[0, 0, 2, 3]
    assert torch.equal(grad, expected)


def brute_share(grad, pixel, p):
    g = grad.abs().double().sum(0) if grad.dim() == 3 else grad.abs().double()
    h, w = g.shape
    inside = sum(
        float(g[i, j])
        for i in range(h)
        for j in range(w)
        if abs(i - pixel[0]) <= p // 2 and abs(j - pixel[1]) <= p // 2
    )
    return inside / float(g.sum())


@pytest.mark.parametrize("pixel,p", [((4, 4), 3), ((0, 0), 5), ((6, 2), 1), ((3, 7), 7), ((4, 4), 99)])
def test_share_inside_window_by_brute_force(pixel, p):
    grad = torch.randn((2, 7, 9), generator=torch.Generator().manual_seed(7))
    assert receptive.share_inside_window(grad, pixel, p) == pytest.approx(brute_share(grad, pixel, p), abs=1e-12)
    batch = torch.stack([grad, -2 * grad, grad.flip(-1)])
    shares = receptive.share_inside_window(batch, pixel, p)
    assert shares.shape == (3,)
    assert shares[1] == pytest.approx(brute_share(grad, pixel, p), abs=1e-12)
    assert shares[2] == pytest.approx(brute_share(grad.flip(-1), pixel, p), abs=1e-12)


def test_share_by_window_grows_to_one_and_effective_window():
    grad = torch.zeros(1, 11, 11)
    grad[0, 5, 5], grad[0, 5, 6], grad[0, 8, 5] = 5.0, -3.0, 2.0  # shares 0.5, 0.8, 1.0 at P = 1, 3, 7
    sizes = [1, 3, 5, 7, 9]
    shares = receptive.share_by_window(grad, (5, 5), sizes)
    assert torch.allclose(shares, torch.tensor([0.5, 0.8, 0.8, 1.0, 1.0], dtype=torch.float64))
    assert receptive.effective_window(shares, sizes, 0.8) == 3
    assert receptive.effective_window(shares, sizes, 0.9) == 7
    assert receptive.effective_window(shares, sizes, 0.5) == 1
    full = receptive.share_by_window(grad, (5, 5))
    assert len(full) == 11 and float(full[-1]) == pytest.approx(1.0)


def test_window_mask_and_pixel_checks():
    m = receptive.window_mask((6, 8), (0, 7), 3)
    assert m.sum() == 4 and m[0, 6] and m[1, 7] and not m[2, 7]
    with pytest.raises(ValueError, match="odd"):
        receptive.window_mask((6, 8), (0, 0), 4)
    with pytest.raises(ValueError, match="pixel"):
        receptive.share_inside_window(torch.ones(6, 8), (6, 0), 3)


def test_measured_field_needs_a_large_enough_input():
    with pytest.raises(ValueError, match="larger size"):
        receptive.measured_receptive_field(small_resnet(6), size=12)
