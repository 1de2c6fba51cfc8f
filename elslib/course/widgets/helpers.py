"""The non-drawing parts the explorers share: training sets, networks, machines, caches.

Everything here is cached, because the explorers must answer within a second: a training set
is loaded once per (name, size); a machine (whose key tables take seconds to build) is built
once per setting; a DDIM trajectory is computed once per (denoiser, seed).
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from numbers import Real

import torch

from ... import checks, data, machines, networks, pretrained, sampling, schedules
from ...machines.base import MAX_VALUE
from ...machines.els import PADDINGS
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
    check_network(network)
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


# ------------------------------------------------------------------------ argument checks
# The explorers check every argument with these before they load data or build a control, so a
# bad one gets one clear sentence (the argument, the value, what is allowed) instead of a control
# that silently clips it or a traitlets error that names neither.

MAX_SEED = 10**6  # the largest value the explorers' noise-seed boxes (BoundedIntText) take


def check_seed(seed, name: str = "seed") -> int:
    """A noise seed for an explorer's seed box: an integer from 0 to MAX_SEED (the box would clip more)."""
    ok = isinstance(seed, Real) and not isinstance(seed, bool) and math.isfinite(seed) and float(seed).is_integer()
    if not ok or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED:,} (the noise-seed box's range), got {seed!r}")
    return int(seed)


def check_steps(steps, name: str = "steps") -> int:
    """A number of DDIM steps: an integer from 1 to sampling.MAX_STEPS."""
    steps = checks.check_positive_int(steps, name)
    if steps > sampling.MAX_STEPS:
        raise ValueError(f"{name} must be at most {sampling.MAX_STEPS:,} (the paper uses 20), got {steps:,}")
    return steps


def check_dataset(dataset, name: str = "dataset") -> str:
    """One of the offline datasets the explorers' pickers offer."""
    return checks.check_choice(dataset, name, DATASETS)


def check_n_images(n, name: str = "n_images") -> int:
    """How many training images: an integer >= 1 (more than a dataset holds means all of it)."""
    return checks.check_positive_int(n, name)


def check_padding(padding, name: str = "padding") -> str:
    """A machine's padding: "zeros" or "circular"."""
    return checks.check_choice(padding, name, PADDINGS)


def check_schedule(schedule, name: str = "schedule"):
    """A noise schedule as the samplers take it: a Schedule, "cosine", "linear" or None (cosine)."""
    if schedule is not None:
        schedules.get(schedule)
    return schedule


def check_time(t, name: str = "t", low: float = 0.0, why: str = "") -> float:
    """A diffusion time for a time slider: a real number in [low, 1] (the slider would clip others)."""
    ok = isinstance(t, Real) and not isinstance(t, bool) and not math.isnan(t)
    if not ok or not low <= t <= 1.0:
        raise ValueError(f"{name} must be a number in [{low:g}, 1]{why}, got {t!r}")
    return float(t)


def check_index(value, name: str, count: int | None = None, what: str = "") -> int:
    """An integer from 0 to count - 1 (an image, a pixel row, a step), for a slider that would clip it.

    Without `count`, only "an integer >= 0" is checked (before the data that sets the bound loads).
    """
    if count is None:
        return checks.check_integer(value, name, low=0)
    if not checks.is_integer(value) or not 0 <= value < count:
        raise ValueError(f"{name} must be an integer from 0 to {count - 1}{what}, got {value!r}")
    return int(value)


def check_patch(p, name: str = "patch_size", top: int | None = None, where: str = "") -> int:
    """An odd patch size >= 1, at most `top` (the largest the slider offers) when given. Never rounded."""
    return checks.check_odd(p, name, largest=top, where=where)


def check_network(network, name: str = "network"):
    """What the `network` argument of an explorer may be (see resolve_network); nothing is loaded."""
    if isinstance(network, str):
        checks.check_choice(network, name, ["auto", *pretrained.RECIPES])
    elif network is not None and not callable(network):
        raise ValueError(
            f"{name} must be 'auto', a shipped network's name, an nn.Module or a denoiser, got {network!r}"
        )
    return network


def check_label(label, name: str = "label"):
    """None or one class label (an int) for the one image an explorer samples; returned unchanged."""
    if label is None:
        return None
    try:
        lab = torch.as_tensor(label)
    except (TypeError, ValueError, RuntimeError):
        lab = None
    if lab is None or lab.dtype == torch.bool or lab.is_floating_point() or lab.is_complex() or lab.numel() != 1:
        raise ValueError(f"{name} must be None or one integer class label, got {label!r}")
    return label


def check_shape(shape, name: str = "shape") -> tuple[int, int, int]:
    """An image shape (C, H, W) of three integers >= 1."""
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    ok = isinstance(shape, (tuple, list)) and len(shape) == 3 and all(checks.is_integer(s) and s >= 1 for s in shape)
    if not ok:
        raise ValueError(f"{name} must be (C, H, W), three integers >= 1, got {shape!r}")
    return tuple(int(s) for s in shape)


def check_training_images(images, labels, name: str = "images"):
    """A training set of one's own: images [N, C, H, W] (N >= 1, values near [-1, 1]) and labels
    (None, or N integer classes >= 0)."""
    checks.check_images(images, name, largest=MAX_VALUE)
    n = images.shape[0]
    if n < 1:
        raise ValueError(f"{name} must hold at least one training image, got shape {tuple(images.shape)}")
    if labels is None:
        return images, None
    try:
        lab = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        lab = None
    if lab is None or lab.dim() != 1 or lab.shape[0] != n:
        got = f"shape {tuple(lab.shape)}" if lab is not None else type(labels).__name__
        raise ValueError(f"labels must be None or {n} integer classes, one per image of {name}, got {got}")
    if lab.dtype == torch.bool or lab.is_floating_point() or lab.is_complex():
        raise ValueError(f"labels must hold integer classes >= 0, got dtype {lab.dtype}")
    if int(lab.min()) < 0:
        raise ValueError(f"labels must hold integer classes >= 0, got {int(lab.min())}")
    return images, labels
