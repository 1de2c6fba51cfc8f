"""The non-drawing parts the explorers share: training sets, networks, machines, caches.

Everything here is cached, because the explorers must answer within a second: a training set
is loaded once per (name, size); a machine (whose key tables take seconds to build) is built
once per setting; a DDIM trajectory is computed once per (denoiser, seed).
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch

from ... import data, machines, networks, pretrained, sampling
from ...machines.patches import pad

DATASETS = list(data.OFFLINE)  # the offline datasets the pickers offer
MACHINES = tuple(machines.KINDS)
NETWORK_DATASET = "mnist"  # what the shipped networks were trained on


class LRU(OrderedDict):
    """A dict that forgets its least recently used entries beyond `size`."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make):
        """The cached value of `key`, or make() stored under it."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)
        return value


@functools.lru_cache(maxsize=16)
def training_set(name: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n images of dataset `name` (seeded, class-balanced order) and their labels.

    n larger than the dataset means all of it (the small sets have 100 to 1,797 images).
    """
    images, labels = data.load(name)
    if n is not None and n < images.shape[0]:
        images, labels = data.load(name, n=n)
    return images, labels


def resolve_network(network, schedule=None):
    """Turn the `network` argument of an explorer into (denoiser or None, a short name).

    "auto": the shipped "resnet-zeros" when its weights are present, else None. A string: that
    shipped network. An ``nn.Module``: wrapped with ``networks.as_denoiser``. Any other callable
    is taken to be a denoiser already. None: no network.
    """
    if network is None:
        return None, None
    if isinstance(network, str):
        name = "resnet-zeros" if network == "auto" else network
        if network == "auto" and name not in pretrained.available():
            return None, None
        return networks.as_denoiser(pretrained.load(name), schedule), name
    if isinstance(network, torch.nn.Module):
        return networks.as_denoiser(network, schedule), type(network).__name__
    if isinstance(network, networks.NetworkDenoiser):
        return network, type(network.net).__name__
    if callable(network):
        return network, getattr(network, "name", type(network).__name__)
    raise ValueError(f"network must be 'auto', a shipped network's name, an nn.Module or a denoiser, got {network!r}")


def network_module(denoiser):
    """The nn.Module behind a network denoiser (None for anything else)."""
    return denoiser.net if isinstance(denoiser, networks.NetworkDenoiser) else None


def make_machine(kind: str, images, patch_size=7, padding: str = "zeros", schedule=None):
    """Build the machine `kind` ("IS", "LS", "ES", "ELS") on a training set (machines.build)."""
    return machines.build(kind, images, patch_size=patch_size, padding=padding, schedule=schedule)


def largest_patch(size: tuple[int, int]) -> int:
    """The largest odd patch size the sliders offer for images of `size`: the image side.

    (Zero-padded machines accept more, up to 2 max(H, W) - 1, but beyond the side they change
    little; circular machines accept at most the smaller side.)
    """
    p = min(size)
    return p if p % 2 else p - 1


def odd(p: int, top: int) -> int:
    """p made odd (rounding up) and clipped to [1, top]."""
    p = int(p) + (1 - int(p) % 2)
    return max(1, min(p, top))


def patch_at(image: torch.Tensor, row: int, col: int, p: int, padding: str = "zeros") -> torch.Tensor:
    """The P x P patch [C, P, P] of one image [C, H, W] centred on (row, col), padded as a machine pads."""
    r = p // 2
    padded = pad(image[None], r, padding)[0]
    return padded[:, row : row + p, col : col + p]


def noise(shape, seed: int) -> torch.Tensor:
    """One image of standard Gaussian noise [1, C, H, W] from a seed (the same on every device)."""
    return sampling.noise_like((1, *shape), seed=seed)


def trajectory(denoiser, shape, seed: int, steps: int, schedule=None, tick=None, label=None):
    """DDIM from the noise of `seed`: (final sample [1, C, H, W], Trajectory), ticking once per step."""
    callback = None if tick is None else (lambda *_: tick())
    return sampling.ddim(
        denoiser,
        noise(shape, seed),
        steps=steps,
        schedule=schedule,
        label=label,
        return_trajectory=True,
        progress=False,
        callback=callback,
    )


step_times = sampling.step_times  # the sampler's own time grid: caches keyed on it stay in step
