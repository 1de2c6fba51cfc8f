r"""Receptive fields: which input pixels a network's output pixel *can* see, and which it *does* see.

Three ways to answer, used in chapter 05 (locality):

- from the layers: a stack of convolutions with kernel sizes k_i, dilations d_i and strides s_i
  sees :func:`conv_receptive_field` = 1 + sum_i (k_i - 1) d_i prod_{j<i} s_j pixels across
  (the minimal ResNet with L blocks: L + 2 convolutions 3x3, so 2 L + 5);
- by gradients: :func:`gradient_map` is d x0_hat[u] / d x_t for one output pixel u. It is
  *exactly* zero outside the receptive field, so :func:`measured_receptive_field` can read the
  field off it;
- by how the gradient's mass spreads: :func:`share_by_window` is the share of |d x0_hat[u] / d x_t|
  inside the P x P window around u, for every P; :func:`effective_window` is the smallest P
  that holds a given share. That is the network's *effective* patch size, much smaller than its
  receptive field, and it shrinks as the noise falls.

Windows are cut at the image border, as zero padding cuts a convolution's view (and as the
local machine LS cuts its patches).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from . import networks
from . import schedules as _schedules
from .checks import (
    check_callable,
    check_images,
    check_number,
    check_odd,
    check_positive_int,
    check_seed,
    check_sequence,
    check_size,
    is_integer,
)
from .denoisers import schedule_of

# --------------------------------------------------------------------------- from the layers


def conv_receptive_field(kernel_sizes: Sequence[int], dilations=None, strides=None) -> int:
    """Pixels across that one output pixel of a stack of convolutions sees (along one axis).

    Layer i (first = closest to the input) with kernel k_i, dilation d_i and stride s_i widens
    the field by (k_i - 1) d_i pixels of its *input*, and one input pixel of layer i is
    prod_{j<i} s_j pixels of the image:  field = 1 + sum_i (k_i - 1) d_i prod_{j<i} s_j.
    Pointwise layers (ReLU, 1x1 convs, adding a per-channel embedding) do not widen it; a skip
    connection around a layer does not either (the field of a sum is the larger of the two).
    """
    ks = [check_positive_int(k, "kernel_sizes entry") for k in check_sequence(kernel_sizes, "kernel_sizes", False)]
    ds = [1] * len(ks) if dilations is None else dilations
    ss = [1] * len(ks) if strides is None else strides
    ds = [check_positive_int(d, "dilations entry") for d in check_sequence(ds, "dilations", False)]
    ss = [check_positive_int(s, "strides entry") for s in check_sequence(ss, "strides", False)]
    if not len(ks) == len(ds) == len(ss):
        raise ValueError(
            f"kernel_sizes, dilations and strides must have the same length, got {len(ks)}, {len(ds)}, {len(ss)}"
        )
    field, jump = 1, 1
    for k, d, s in zip(ks, ds, ss, strict=True):
        field += (k - 1) * d * jump
        jump *= s
    return field


# --------------------------------------------------------------------------- by gradients


def _network_parts(model):
    """(nn.Module, schedule or None): what to differentiate through."""
    if isinstance(model, networks.NetworkDenoiser):
        return model.net, model.schedule
    if isinstance(model, nn.Module):
        return model, None
    return None, None


def x0_hat(model, x_t: torch.Tensor, t, schedule=None) -> torch.Tensor:
    """The denoiser's x0_hat, *with* gradients (NetworkDenoiser.__call__ runs without them).

    model: a ``networks.NetworkDenoiser``; a network module with a ``target`` ("eps" or "v",
    like ``networks.ResNet``), called as ``net(x_t, t)``; or any differentiable callable
    ``D(x_t, t) -> x0_hat``. (The score machines detach their input: use finite differences
    for them.)
    """
    net, sched = _network_parts(model)
    if net is None:
        check_callable(model, "model", (x_t, t), call="D(x_t, t) -> x0_hat")
        return model(x_t, t)
    if not hasattr(net, "target"):
        raise ValueError(
            f"model is a {type(net).__name__} without a `target` ('eps' or 'v'): wrap it with networks.as_denoiser "
            "or call gradient_map with a function D(x_t, t) -> x0_hat"
        )
    sched = _schedules.get(schedule) if sched is None else schedule_of(model, schedule)
    a, s = sched.coefficients(t, like=x_t)
    out = net(x_t, t)
    return networks.split_output(out, x_t, a, s, net.target)[1]


def _check_pixel(pixel, size) -> tuple[int, int]:
    if isinstance(pixel, (torch.Tensor, np.ndarray)):
        pixel = pixel.tolist()
    if isinstance(pixel, (tuple, list)):  # entries may be 0-d integer tensors, e.g. from torch.nonzero
        pixel = [v.item() if isinstance(v, torch.Tensor) and v.dim() == 0 else v for v in pixel]
    pair = isinstance(pixel, (tuple, list)) and len(pixel) == 2
    if not pair or not all(is_integer(v) for v in pixel):
        raise ValueError(f"pixel must be a pair (row, col) of integers, got {pixel!r}")
    row, col = (int(v) for v in pixel)
    h, w = size
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"pixel must lie in the {h}x{w} image, got {(row, col)}")
    return row, col


def gradient_map(model, x_t: torch.Tensor, t, pixel, schedule=None) -> torch.Tensor:
    """d x0_hat[b, :, row, col] / d x_t for each image b of the batch: [B, C, H, W], signed.

    The output's channels at the pixel are summed (one channel for MNIST). Each image of the
    batch gets its own map: the networks treat images independently (no batch normalisation).
    model: as in :func:`x0_hat`. The network is put in eval mode; its weights get no gradients.
    """
    check_images(x_t, "x_t")
    row, col = _check_pixel(pixel, x_t.shape[-2:])
    net, _ = _network_parts(model)
    if net is not None:
        net.eval()
        x_t = x_t.to(next(net.parameters()).device)
    x = x_t.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = x0_hat(model, x, t, schedule)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape or not out.requires_grad:
            raise ValueError(
                "model must return x0_hat shaped like x_t and differentiable in x_t (the score machines detach "
                "their input: use finite differences for them)"
            )
        (grad,) = torch.autograd.grad(out[:, :, row, col].sum(), x)
    return grad.detach()


def _as_function(net):
    """net -> (f(x) -> output image, input channels) for measuring a field."""
    if isinstance(net, networks.NetworkDenoiser) or (isinstance(net, nn.Module) and hasattr(net, "target")):
        module = net.net if isinstance(net, networks.NetworkDenoiser) else net
        return (lambda x: x0_hat(net, x, 0.5)), module.config["in_channels"]
    if not isinstance(net, nn.Module):
        raise ValueError(f"net must be a network (an nn.Module or a NetworkDenoiser), got {type(net).__name__}")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"net (a {type(net).__name__}) has no Conv2d layer to measure a receptive field of")
    return net, convs[0].in_channels


def measured_receptive_field(net, size: int = 64, seeds=(0, 1, 2)) -> int:
    """The receptive field of `net`, read off its gradients: 2 r + 1, with r the largest distance
    (max over rows and columns) from the centre output pixel to an input pixel whose gradient is
    not zero, over a few random inputs (one input may hide a path behind a ReLU that is off).

    net: a shipped-style network (``networks.ResNet``/``UNet`` or a ``NetworkDenoiser``; its
    x0_hat at t = 0.5 is differentiated) or any module mapping images [B, C, H, W] to images,
    e.g. an ``nn.Sequential`` of convolutions. size: the side of the square test input; it must
    exceed the field (an error says so otherwise).
    """
    fn, channels = _as_function(net)
    size = check_positive_int(size, "size", minimum=3)
    seeds = [check_seed(s, "seeds entry") for s in check_sequence(seeds, "seeds")]
    centre = size // 2
    reach = torch.zeros(size, size, dtype=torch.bool)
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((1, channels, size, size), generator=gen)
        module = net.net if isinstance(net, networks.NetworkDenoiser) else net
        params = list(module.parameters())
        if params:
            x = x.to(params[0])  # the network's device and dtype
        x.requires_grad_(True)
        with torch.enable_grad():
            out = fn(x)
            if out.shape[-2:] != x.shape[-2:]:
                raise ValueError(
                    f"net must keep the image size (got {tuple(out.shape[-2:])} from {size}x{size}); "
                    "use conv_receptive_field for strided stacks"
                )
            (grad,) = torch.autograd.grad(out[:, :, centre, centre].sum(), x)
        reach |= (grad.detach().abs().sum((0, 1)) > 0).cpu()
    rows, cols = torch.nonzero(reach, as_tuple=True)
    r = int(torch.maximum((rows - centre).abs(), (cols - centre).abs()).max())
    if r >= centre:
        raise ValueError(f"the field reaches the border of the {size}x{size} test input: pass a larger size")
    return 2 * r + 1


# --------------------------------------------------------------------------- how local, in practice


def window_mask(size, pixel, patch_size: int) -> torch.Tensor:
    """bool [H, W]: the P x P window centred on `pixel` (row, col), cut at the image border."""
    h, w = check_size(size, "size")
    row, col = _check_pixel(pixel, size)
    r = check_odd(patch_size, "patch_size") // 2
    rows = (torch.arange(h) - row).abs() <= r
    cols = (torch.arange(w) - col).abs() <= r
    return rows[:, None] & cols[None, :]


def gradient_mass(grad: torch.Tensor) -> torch.Tensor:
    """|grad| summed over channels: [H, W] or [C, H, W] -> [H, W]; [B, C, H, W] -> [B, H, W]."""
    if not isinstance(grad, torch.Tensor) or grad.dim() not in (2, 3, 4):
        got = tuple(grad.shape) if isinstance(grad, torch.Tensor) else type(grad).__name__
        raise ValueError(f"grad must be a tensor [H, W], [C, H, W] or [B, C, H, W], got {got}")
    if not torch.isfinite(grad).all():
        raise ValueError("grad contains NaN or infinite values")
    a = grad.detach().abs().double().cpu()
    if a.dim() == 2:
        return a
    return a.sum(-3)


def share_inside_window(grad: torch.Tensor, pixel, patch_size: int):
    """Share of the gradient's total absolute size inside the P x P window around `pixel`.

    grad: [H, W] or [C, H, W] (channels summed) -> a float in [0, 1]; [B, C, H, W] -> one share
    per image, a float64 tensor [B]. An all-zero gradient has share 0.
    """
    mass = gradient_mass(grad)
    inside = (mass * window_mask(mass.shape[-2:], pixel, patch_size)).sum((-2, -1))
    share = inside / mass.sum((-2, -1)).clamp_min(1e-300)
    return share if grad.dim() == 4 else float(share)


def share_by_window(grad: torch.Tensor, pixel, sizes=None) -> torch.Tensor:
    """:func:`share_inside_window` for every odd P in `sizes` (default 1, 3, ... up to 2 max(H, W) - 1,
    the window that covers the image from any pixel): [len(sizes)], or [B, len(sizes)] for a batch."""
    h, w = gradient_mass(grad).shape[-2:]
    sizes = list(range(1, 2 * max(h, w), 2)) if sizes is None else check_sequence(sizes, "sizes")
    sizes = [check_odd(p, "sizes entry") for p in sizes]
    shares = [torch.as_tensor(share_inside_window(grad, pixel, p), dtype=torch.float64) for p in sizes]
    return torch.stack(shares, dim=-1)


def effective_window(shares, sizes, level: float = 0.9) -> int:
    """The smallest P in `sizes` whose window holds at least `level` of the gradient (shares: [len(sizes)],
    as from :func:`share_by_window`, increasing with P). The largest size when none does."""
    try:
        shares = torch.as_tensor(shares, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"shares must be a sequence of shares in [0, 1], got {type(shares).__name__}") from err
    if not torch.isfinite(shares).all():
        raise ValueError("shares contains NaN or infinite values")
    sizes = check_sequence(sizes, "sizes")
    if len(sizes) != len(shares):
        raise ValueError(f"shares and sizes must have the same length, got {len(shares)} and {len(sizes)}")
    level = check_number(level, "level")
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must be in (0, 1], got {level}")
    above = torch.nonzero(shares >= level - 1e-12).flatten()
    return int(sizes[int(above[0])]) if len(above) else int(sizes[-1])
