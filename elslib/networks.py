r"""Small convolutional denoisers: the paper's minimal ResNet and a 3-level UNet.

Both take the time t (a float or a [B] tensor in [0, 1]) and optionally a class label. Their
output is a prediction of `target`, fixed when the network is built:

- ``"eps"`` (the paper's): the noise in x_t = a x0 + s eps, so x0_hat = (x_t - s eps_hat) / a;
- ``"v"``: the velocity v = a eps - s x0 (Salimans & Ho, 2022), so x0_hat = a x_t - s v_hat.

They teach the same denoiser (the optimum of either loss is E[x0 | x_t]); what differs is how a
small error of the network shows in x0_hat. Near t = 1, a -> 0.012 with the cosine schedule, so
an eps error of 0.01 becomes an x0 error of 0.8, and a network trained for minutes on a CPU
starts DDIM with a wildly wrong x0_hat. With v, x0_hat stays bounded, and the shipped networks
use it. Either way :func:`as_denoiser` turns the network into ``D(x_t, t) -> x0_hat``.

The ResNet is the network the ELS theory describes: every layer is a 3x3 convolution, nothing
normalises over space, so it is *local* (receptive field 2L + 5 pixels across for L blocks)
and *equivariant* (with circular padding it commutes with every circular shift; with zero
padding, with shifts away from the border).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import schedules as _schedules
from .checks import batch_times, check_choice, check_images, check_positive_int, is_integer

PADDINGS = ("zeros", "circular")
TARGETS = ("eps", "v")


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of t in [0, 1]: [B] -> [B, dim], angular frequencies 1 .. 1000 rad per
    unit of t (log-spaced). The slowest one turns less than a radian over [0, 1], so the features
    tell t = 0 from t = 1."""
    half = dim // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), half, device=t.device, dtype=t.dtype))
    angles = t[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Conditioning(nn.Module):
    """Maps (t, label) to one [B, C] vector per block, added to the state before each conv.

    Label -1 means "no label", so one network serves both with and without class conditioning
    (training hides a fraction of the labels for that).
    """

    def __init__(self, channels: int, blocks: int, num_classes: int | None, features: int = 64):
        super().__init__()
        self.features, self.channels, self.blocks, self.num_classes = features, channels, blocks, num_classes
        self.time = nn.Sequential(
            nn.Linear(features, 4 * channels), nn.SiLU(), nn.Linear(4 * channels, channels * blocks)
        )
        self.label = nn.Embedding(num_classes + 1, channels * blocks) if num_classes else None

    def forward(self, t: torch.Tensor, label: torch.Tensor | None) -> torch.Tensor:
        emb = self.time(time_features(t, self.features))
        if self.label is not None:
            if label is None:
                label = torch.full_like(t, -1, dtype=torch.long)
            # row num_classes of the table is the learned "no label" embedding
            emb = emb + self.label(torch.where(label < 0, self.num_classes, label))
        return emb.view(-1, self.blocks, self.channels)


def _check_config(in_channels, channels, padding, num_classes, target) -> tuple:
    """The constructor arguments every network shares, checked: (in_channels, channels, num_classes)."""
    in_channels = check_positive_int(in_channels, "in_channels")
    channels = check_positive_int(channels, "channels")
    check_choice(padding, "padding", PADDINGS)
    check_choice(target, "target", TARGETS)
    if num_classes is not None:
        if not is_integer(num_classes) or num_classes < 1:
            raise ValueError(f"num_classes must be None (unconditional) or an integer >= 1, got {num_classes!r}")
        num_classes = int(num_classes)
    return in_channels, channels, num_classes


def _input(net: nn.Module, x, first: nn.Conv2d) -> torch.Tensor:
    """A network's input x checked (a finite [B, C, H, W] batch with the network's channels, on its device)
    and cast to the network's dtype (a float64 batch runs through float32 weights)."""
    check_images(x, "x", channels=net.config["in_channels"])
    if x.device != first.weight.device:
        raise ValueError(f"x is on {x.device} but the network is on {first.weight.device}; move one of them")
    return x.to(first.weight.dtype)


def _times(x: torch.Tensor, t) -> torch.Tensor:
    """A float or [B] tensor of times -> a [B] tensor in x's dtype, on x's device."""
    return batch_times(t, x.shape[0]).to(x)


def _labels(x: torch.Tensor, label, num_classes: int | None):
    if label is None:
        return None
    if not num_classes:
        raise ValueError("label was given but this network was built without num_classes")
    try:
        label = torch.as_tensor(label)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"label must be an int or one int per image, got {label!r}") from err
    if label.dtype == torch.bool or label.is_floating_point() or label.is_complex():
        raise ValueError(f"label must hold integers (classes), got {label.tolist()!r} of dtype {label.dtype}")
    label = label.to(device=x.device, dtype=torch.long)
    label = label.expand(x.shape[0]) if label.dim() == 0 else label
    if label.shape != (x.shape[0],) or int(label.min()) < -1 or int(label.max()) >= num_classes:
        raise ValueError(f"label must be in [0, {num_classes}) (or -1 for none), one per image; got {label.tolist()}")
    return label


class ResNet(nn.Module):
    """The paper's minimal ResNet: project up, L residual 3x3 blocks, project down.

        h = conv_in(x)
        h = h + relu(conv_l(h + emb_l(t, label)))      for l = 1..L
        eps_hat = conv_out(h)

    Args:
        in_channels: image channels (1 for MNIST).
        channels: width C of the hidden state.
        blocks: number L of residual blocks (the paper: 6, receptive field 17).
        padding: "zeros" or "circular", used by every convolution.
        num_classes: build a class-conditional network (None: unconditional).
        target: what the output predicts, "eps" (the paper's) or "v" (see the module's notes).
    """

    def __init__(self, in_channels=1, channels=64, blocks=6, padding="zeros", num_classes=None, target="eps"):
        super().__init__()
        in_channels, channels, num_classes = _check_config(in_channels, channels, padding, num_classes, target)
        blocks = check_positive_int(blocks, "blocks")
        self.config = dict(
            in_channels=in_channels,
            channels=channels,
            blocks=blocks,
            padding=padding,
            num_classes=num_classes,
            target=target,
        )
        self.target = target
        conv = lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding)
        self.conv_in = conv(in_channels, channels)
        self.convs = nn.ModuleList(conv(channels, channels) for _ in range(blocks))
        self.conv_out = conv(channels, in_channels)
        self.cond = Conditioning(channels, blocks, num_classes)
        self.num_classes = num_classes

    @property
    def receptive_field(self) -> int:
        """Pixels across that one output pixel sees: 3x3 in, L 3x3 blocks, 3x3 out = 2L + 5."""
        return 2 * len(self.convs) + 5

    def forward(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        h = _input(self, x, self.conv_in)
        emb = self.cond(_times(h, t), _labels(h, label, self.num_classes))
        h = self.conv_in(h)
        for i, conv in enumerate(self.convs):
            h = h + F.relu(conv(h + emb[:, i, :, None, None]))
        return self.conv_out(h).to(x.dtype)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all positions of a feature map (no positional code, so it
    commutes with any permutation of positions, circular shifts included)."""

    HEADS = 4

    def __init__(self, channels: int, heads: int = HEADS):
        super().__init__()
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = h.shape
        seq = h.flatten(2).transpose(1, 2)
        out, _ = self.attn(seq, seq, seq, need_weights=False)
        return h + out.transpose(1, 2).view(b, c, hh, ww)


class UNet(nn.Module):
    """A 3-level UNet: two 3x3 convs per level, 2x average-pool down, nearest 2x up, skips by
    concatenation, optional self-attention at the bottleneck. H and W must be divisible by 4.

    With circular padding (and average pooling) it commutes with circular shifts by multiples
    of 4, its downsampling factor. `target` is "eps" or "v", as for the ResNet.
    """

    def __init__(self, in_channels=1, channels=32, padding="zeros", attention=False, num_classes=None, target="eps"):
        super().__init__()
        in_channels, channels, num_classes = _check_config(in_channels, channels, padding, num_classes, target)
        if attention and (2 * channels) % SelfAttention.HEADS:
            raise ValueError(
                f"channels must be even with attention=True (the bottleneck's {2 * channels} channels are split "
                f"over {SelfAttention.HEADS} heads), got {channels}"
            )
        self.config = dict(
            in_channels=in_channels,
            channels=channels,
            padding=padding,
            attention=attention,
            num_classes=num_classes,
            target=target,
        )
        self.target = target
        conv = lambda cin, cout: nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding)
        c1, c2, c3 = channels, 2 * channels, 2 * channels
        widths = [(in_channels, c1), (c1, c2), (c2, c3), (c3 + c2, c2), (c2 + c1, c1)]
        self.first = nn.ModuleList(conv(cin, cout) for cin, cout in widths)
        self.second = nn.ModuleList(conv(cout, cout) for _, cout in widths)
        self.cond = Conditioning(max(c for _, c in widths), len(widths), num_classes)
        self.widths = [cout for _, cout in widths]
        self.attention = SelfAttention(c3) if attention else None
        self.conv_out = conv(c1, in_channels)
        self.num_classes = num_classes

    def _level(self, i: int, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.first[i](h))
        h = h + emb[:, i, : self.widths[i], None, None]
        return F.silu(self.second[i](h))

    def forward(self, x: torch.Tensor, t, label=None) -> torch.Tensor:
        h0 = _input(self, x, self.first[0])
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"UNet needs H and W divisible by 4, got x of shape {tuple(x.shape)}")
        emb = self.cond(_times(h0, t), _labels(h0, label, self.num_classes))
        h1 = self._level(0, h0, emb)
        h2 = self._level(1, F.avg_pool2d(h1, 2), emb)
        h3 = self._level(2, F.avg_pool2d(h2, 2), emb)
        if self.attention is not None:
            h3 = self.attention(h3)
        h = self._level(3, torch.cat([F.interpolate(h3, scale_factor=2.0), h2], dim=1), emb)
        h = self._level(4, torch.cat([F.interpolate(h, scale_factor=2.0), h1], dim=1), emb)
        return self.conv_out(h).to(x.dtype)


def bottleneck_attention(net: nn.Module, x_t: torch.Tensor, t, label=None) -> tuple[torch.Tensor, torch.Tensor]:
    """What the bottleneck self-attention of a UNet built with ``attention=True`` does on the input `x_t`
    [B, C, H, W] at time `t` (and `label`, for a class-conditional one).

    Returns its input sequence [B, L, 2 * channels] (L = (H / 4) (W / 4) bottleneck positions, row by row;
    each stands for a 4 x 4 block of pixels) and its weights [B, heads, L, L]: row u holds how much query
    position u takes from each key position v (each row sums to 1).
    """
    if isinstance(net, NetworkDenoiser):
        raise ValueError(
            "net must be a UNet built with attention=True, got a denoiser: pass the network itself (its .net)"
        )
    layer = getattr(net, "attention", None)
    if not isinstance(layer, SelfAttention):
        raise ValueError(f"net must be a UNet built with attention=True, got {type(net).__name__} without attention")
    captured = {}
    hook = layer.register_forward_hook(lambda module, inputs, output: captured.update(h=inputs[0].detach()))
    try:
        with torch.no_grad():
            net(x_t, t, label=label)
    finally:
        hook.remove()
    seq = captured["h"].flatten(2).transpose(1, 2)
    with torch.no_grad():
        _, weights = layer.attn(seq, seq, seq, need_weights=True, average_attn_weights=False)
    return seq, weights


ARCHITECTURES = {"resnet": ResNet, "unet": UNet}


def build(kind: str, **config) -> nn.Module:
    """Build a network by name ("resnet" or "unet") from its config dict."""
    check_choice(kind, "kind", list(ARCHITECTURES))
    return ARCHITECTURES[kind](**config)


def regression_target(x0: torch.Tensor, eps: torch.Tensor, a, s, target: str) -> torch.Tensor:
    """What a network with this `target` is trained to output: eps, or v = a eps - s x0."""
    check_choice(target, "target", TARGETS)
    return eps if target == "eps" else a * eps - s * x0


def split_output(out: torch.Tensor, x_t: torch.Tensor, a, s, target: str):
    """A network's raw output -> (eps_hat, x0_hat), both [B, C, H, W], using x_t = a x0 + s eps."""
    check_choice(target, "target", TARGETS)
    if target == "eps":
        return out, (x_t - s * out) / a
    return s * x_t + a * out, a * x_t - s * out


class NetworkDenoiser:
    """A trained network seen as a denoiser (:mod:`elslib.denoisers`): ``D(x_t, t, label=None) -> x0_hat``.

    Whatever the network predicts (its `target`, eps or v), x0_hat and eps_hat follow from
    x_t = a x0 + s eps, with a and s from ``schedule`` (the one the network was trained with;
    the samplers read it from here). Runs without gradients, in eval mode, on the network's device.
    """

    def __init__(self, net: nn.Module, schedule=None):
        if not isinstance(net, nn.Module) or getattr(net, "target", None) not in TARGETS:
            raise ValueError(
                f"net must be a network with a `target` in {TARGETS} (a networks.ResNet or UNet), got "
                f"{type(net).__name__}"
            )
        self.net = net
        self.schedule = _schedules.get(schedule)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def predict(self, x_t: torch.Tensor, t, label=None):
        """(eps_hat, x0_hat) for x_t [B, C, H, W] at time(s) t."""
        check_images(x_t, "x_t", channels=getattr(self.net, "config", {}).get("in_channels"))
        self.net.eval()
        with torch.no_grad():
            out = self.net(x_t.to(self.device), t, label=label).to(x_t.device)
        a, s = self.schedule.coefficients(t, like=x_t)
        return split_output(out, x_t, a, s, self.net.target)

    def eps(self, x_t: torch.Tensor, t, label=None) -> torch.Tensor:
        """The network's noise prediction eps_hat, [B, C, H, W]."""
        return self.predict(x_t, t, label)[0]

    def __call__(self, x_t: torch.Tensor, t, label=None) -> torch.Tensor:
        return self.predict(x_t, t, label)[1]


def as_denoiser(net: nn.Module, schedule=None) -> NetworkDenoiser:
    """Wrap a trained network (eps or v target) as a denoiser ``D(x_t, t, label=None) -> x0_hat``."""
    return NetworkDenoiser(net, schedule)
