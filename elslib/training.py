r"""Training a noise-predicting network, with checkpoints that are safe to load.

The objective is the usual one: draw an image x0, a time t ~ U(0, 1) and noise eps, form
x_t = a(t) x0 + s(t) eps, and minimise the mean squared error between eps and the network's
prediction. Checkpoints hold only tensors, numbers and strings, and are read with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from numbers import Real
from os import PathLike
from pathlib import Path

import torch
import torch.nn.functional as F

from . import device as _device
from . import networks, records
from . import schedules as _schedules
from .checks import check_images, check_number, check_positive_int, check_seed


@dataclass
class History:
    """What a training run did: the loss at every step, and how long it took."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.losses)

    def smoothed(self, window: int = 50) -> torch.Tensor:
        """Running mean of the loss over `window` steps (for a readable loss curve)."""
        window = check_positive_int(window, "window")
        losses = torch.tensor(self.losses)
        if len(losses) < window:
            return losses
        kernel = torch.ones(1, 1, window) / window
        return F.conv1d(losses.view(1, 1, -1), kernel).view(-1)

    def plot(self, ax=None, title: str = "Training loss"):
        """Loss per step (faint) and its running mean, on a log scale."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(self.losses, alpha=0.3, label="per step")
        smooth = self.smoothed()
        ax.plot(range(len(self.losses) - len(smooth), len(self.losses)), smooth, label="running mean")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("MSE on the target (eps or v)")
        ax.set_title(title)
        ax.legend()
        return ax


def diffusion_loss(net, x0, schedule, generator, labels=None, label_dropout: float = 0.0):
    """One Monte-Carlo estimate of E ||target - net(x_t, t)||^2 over t ~ U(0, 1) and eps ~ N(0, I),
    where the target is eps or v = a eps - s x0, as the network was built to predict.

    With labels, a fraction `label_dropout` of them is hidden (set to -1, "no label"), so the same
    network also learns the unconditional denoiser.
    """
    b = x0.shape[0]
    t = torch.rand(b, generator=generator).to(x0)
    eps = torch.randn(x0.shape, generator=generator).to(x0)
    a, s = schedule.coefficients(t, like=x0)
    if labels is not None and label_dropout > 0:
        hide = (torch.rand(b, generator=generator) < label_dropout).to(labels.device)
        labels = labels.masked_fill(hide, -1)
    target = networks.regression_target(x0, eps, a, s, net.target)
    return F.mse_loss(net(a * x0 + s * eps, t, label=labels), target)


def kind_of(net) -> str:
    for kind, cls in networks.ARCHITECTURES.items():
        if isinstance(net, cls):
            return kind
    raise ValueError(f"net must be one of {list(networks.ARCHITECTURES)}, got {type(net).__name__}")


class WeightAverage:
    """An exponential moving average of a network's weights, bias-corrected as in Adam.

    The running sum starts at zero, so after n updates it holds (1 - decay^n) of the weights seen;
    dividing by that factor gives a proper weighted average of the trained weights. (Starting the
    average from the random initial weights instead leaves decay^n of the initialisation in it:
    5% after 3000 steps at decay 0.999, enough to darken every sample.) Integer buffers are copied.
    """

    def __init__(self, net, decay: float):
        if isinstance(decay, bool) or not isinstance(decay, Real) or not 0.0 < float(decay) < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1) or be None, got {decay!r}")
        self.decay = float(decay)
        self.updates = 0
        self.total = {
            k: torch.zeros_like(v) if v.is_floating_point() else v.detach().clone() for k, v in net.state_dict().items()
        }

    @torch.no_grad()
    def update(self, net) -> None:
        for k, v in net.state_dict().items():
            if v.is_floating_point():
                self.total[k].mul_(self.decay).add_(v.detach(), alpha=1.0 - self.decay)
            else:
                self.total[k].copy_(v)
        self.updates += 1

    def average(self) -> dict:
        """The bias-corrected average, a state dict for the network."""
        if self.updates == 0:
            raise ValueError("the weight average has had no updates yet")
        scale = 1.0 - self.decay**self.updates
        return {k: v / scale if v.is_floating_point() else v.clone() for k, v in self.total.items()}

    def restore(self, state: dict, device) -> None:
        """Continue from a working checkpoint's running sum and update count."""
        self.updates = int(state["ema_updates"])
        self.total = {k: v.to(device) for k, v in state["ema_sum"].items()}


def save_checkpoint(
    path, net, optimizer=None, history: History | None = None, meta=None, generator=None, ema=None
) -> Path:
    """Write a checkpoint: architecture name and config, weights (and their moving average),
    optimiser and generator state, losses, metadata. Pass only `net` (and `meta`, `history`) for
    a small file to ship."""
    state = {
        "format": "elslib-checkpoint-1",
        "kind": kind_of(net),
        "config": dict(net.config),
        "weights": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "losses": list(history.losses) if history else [],
        "seconds": float(history.seconds) if history else 0.0,
        # plain JSON values only (a TorchVersion, say, is a class the safe loader refuses)
        "meta": json.loads(json.dumps(meta or {}, default=str)),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if generator is not None:
        state["generator"] = generator.get_state()
    if ema is not None and ema.updates:
        state["ema"] = {k: v.detach().cpu() for k, v in ema.average().items()}
        state["ema_sum"] = {k: v.detach().cpu() for k, v in ema.total.items()}
        state["ema_updates"] = ema.updates
        state["ema_decay"] = ema.decay
    return records.save_whole(state, path)


def read_checkpoint(path) -> dict:
    """Read a checkpoint safely (tensors and plain values only) and check its layout: an
    architecture `kind`, its `config` and its `weights` (a ValueError naming the file otherwise)."""
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"path must be a str or a pathlib.Path to a checkpoint file, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors, truncated files, foreign formats
        raise ValueError(f"checkpoint {path} could not be read safely ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != "elslib-checkpoint-1":
        raise ValueError(f"checkpoint {path} is not an elslib checkpoint (no 'format': 'elslib-checkpoint-1')")
    if state.get("kind") not in networks.ARCHITECTURES:
        kinds = list(networks.ARCHITECTURES)
        raise ValueError(f"checkpoint {path} is damaged: its 'kind' is {state.get('kind')!r}, not one of {kinds}")
    if not isinstance(state.get("config"), dict):
        raise ValueError(f"checkpoint {path} is damaged: its 'config' is missing or not a dict")
    weights = state.get("weights")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ValueError(f"checkpoint {path} is damaged: its 'weights' are missing or not a dict of tensors")
    return state


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes, as hex: shipped weights carry theirs in their metadata."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path, expected: str | None) -> None:
    """Raise ValueError naming the file when its bytes do not match the recorded checksum (None: none recorded)."""
    if expected is not None and file_sha256(path) != expected:
        raise ValueError(
            f"{path} does not match the SHA-256 recorded in its metadata: the file is damaged or was replaced; "
            "reinstall the package, or retrain it"
        )


def load_checkpoint(path, device=None, use_ema: bool = True):
    """Rebuild the network of a checkpoint, in eval mode. Returns (net, the checkpoint's dict).

    use_ema: take the moving-average weights when the checkpoint has them.
    Raises ValueError naming the file when it was tampered with or does not fit its architecture.
    """
    state = read_checkpoint(path)
    try:
        net = networks.build(state["kind"], **state["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"checkpoint {path} is damaged: its config {state['config']} does not build a network ({err})"
        ) from err
    try:
        net.load_state_dict(state["ema"] if use_ema and "ema" in state else state["weights"])
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} does not fit a {state['kind']} with {state['config']}: {err}") from err
    if not all(torch.isfinite(p).all() for p in net.state_dict().values() if p.is_floating_point()):
        raise ValueError(f"checkpoint {path} is damaged: it holds NaN or infinite weights")
    return net.to(_device.resolve(device)).eval(), state


def learning_rate(step: int, lr: float, steps: int, warmup: int = 0) -> float:
    """The learning rate at `step` (0-based) of a run of `steps`: linear warm-up, then one cosine to 0."""
    if not steps > warmup >= 0:
        raise ValueError(f"need 0 <= warmup < steps, got warmup={warmup!r} and steps={steps!r}")
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))


def _keep_record(checkpoint: Path, step: int, net, ema, history: History, meta) -> Path:
    """A small record of the run at `step`: the averaged (or raw) weights and the losses so far."""
    snapshot = copy.deepcopy(net)
    if ema is not None and ema.updates:
        snapshot.load_state_dict(ema.average())
    path = checkpoint.with_name(f"{checkpoint.stem}-step{step}.pt")
    return save_checkpoint(path, snapshot, history=history, meta={**(meta or {}), "step": step})


def _check_labels(net, labels, n: int):
    """Training labels: None, or one class per image for a class-conditional net (-1: no label)."""
    if labels is None:
        return None
    classes = getattr(net, "num_classes", None)
    if not classes:
        raise ValueError("labels were given but net was built without num_classes: it cannot be conditioned on them")
    if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be an int64 tensor [{n}], one class per image, got {got}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must hold integers, got dtype {labels.dtype}")
    if n and (int(labels.min()) < -1 or int(labels.max()) >= classes):
        raise ValueError(
            f"labels must lie in [0, {classes}) (or -1: no label), got values from {int(labels.min())} to "
            f"{int(labels.max())}"
        )
    return labels


def _resume(checkpoint, state: dict, net, opt, ema, gen, dev) -> History:
    """Load a working checkpoint into the run (weights, optimiser, average, generator); its History."""
    try:
        net.load_state_dict(state["weights"])
        if "optimizer" in state:
            opt.load_state_dict(state["optimizer"])
        if ema is not None and "ema_sum" in state:
            ema.restore(state, dev)
        losses, seconds = state["losses"], state["seconds"]
        if not isinstance(losses, list) or not all(isinstance(v, float) and math.isfinite(v) for v in losses):
            raise ValueError("'losses' is not a list of finite numbers")
        history = History(list(losses), float(seconds))
        if "generator" in state:  # so that a resumed run draws what an unbroken one would have
            gen.set_state(state["generator"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        what = f"no {err}" if isinstance(err, KeyError) else str(err).splitlines()[0]
        raise ValueError(
            f"checkpoint {checkpoint} is damaged or belongs to another network ({kind_of(net)} with {net.config}); "
            f"it cannot be resumed: {what}"
        ) from err
    return history


def train(
    net,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 1e-3,
    schedule=None,
    device=None,
    seed: int = 0,
    checkpoint=None,
    resume: bool = False,
    save_every: int = 500,
    label_dropout: float = 0.1,
    ema_decay: float | None = 0.999,
    progress: bool = True,
    meta: dict | None = None,
    warmup: int = 0,
    keep_at=(),
) -> History:
    """Train `net` to predict its target (eps or v), with Adam, a linear warm-up and a cosine decay.

    Args:
        net: a ResNet or UNet (trained in place).
        images: [N, C, H, W] training set in [-1, 1]; labels: int64 [N] for class-conditional
            training (a fraction `label_dropout` of each batch is trained without its label).
        steps, batch_size, lr: the optimisation (the total number of steps, resume included).
        checkpoint: a path to save to every `save_every` steps and at the end; with
            `resume=True` training continues from it when it exists.
        seed: batches and noise come from this seed: same seed, same run.
        ema_decay: keep an exponential moving average of the weights (smoother, better samples;
            bias-corrected, see `WeightAverage`) and leave it in `net` at the end; None trains
            and keeps the raw weights.
        warmup: the learning rate rises linearly from lr / warmup to lr over the first `warmup`
            steps (Adam's first steps are large while its moment estimates are young), then
            follows one cosine from lr down to 0 at `steps`.
        keep_at: step counts (e.g. 500, 1000, 2000) at which to keep a record of the run beside
            `checkpoint`: ``NAME-step{N}.pt``, the averaged weights and the losses so far, small
            files for studying a network as it trains (not for resuming).

    Training stops with a ValueError at the first loss that is not finite (NaN or infinite),
    naming the step, before anything is saved. Returns the History (losses of all steps,
    resumed ones included).
    """
    kind_of(net)
    check_images(images, "images", channels=net.config["in_channels"])
    if len(images) == 0:
        raise ValueError(f"images must hold at least one training image, got shape {tuple(images.shape)}")
    labels = _check_labels(net, labels, len(images))
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_number(lr, "lr", low=0.0)
    save_every = check_positive_int(save_every, "save_every")
    seed = check_seed(seed)
    label_dropout = check_number(label_dropout, "label_dropout", low=0.0)
    if label_dropout > 1.0:
        raise ValueError(f"label_dropout must be a fraction in [0, 1], got {label_dropout!r}")
    if ema_decay is not None:
        ema_decay = check_number(ema_decay, "ema_decay")
    warmup = check_positive_int(warmup, "warmup", minimum=0)
    if warmup >= steps:
        raise ValueError(f"warmup must be smaller than steps={steps}, got {warmup}")
    keep_at = sorted({check_positive_int(k, "keep_at entry") for k in keep_at})
    if keep_at and checkpoint is None:
        raise ValueError("keep_at needs a checkpoint path: the records are written beside it")
    dev = _device.resolve(device)
    sched = _schedules.get(schedule)
    net.to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    history = History()
    gen = torch.Generator().manual_seed(int(seed))
    ema = WeightAverage(net, ema_decay) if ema_decay else None
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = read_checkpoint(checkpoint)
        if ema is not None and "ema" in state and "ema_sum" not in state:
            raise ValueError(
                f"checkpoint {checkpoint} holds a weight average without its running sum (an older format): "
                "it cannot be resumed exactly; start again with resume=False"
            )
        history = _resume(checkpoint, state, net, opt, ema, gen, dev)
    lr_at = lambda step: learning_rate(step, lr, steps, warmup)
    x_all = images.to(dev)
    y_all = labels.to(dev) if labels is not None else None
    iterator = range(history.steps, steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="training", initial=history.steps, total=steps)
    start = time.perf_counter()
    for step in iterator:
        idx = torch.randint(len(images), (batch_size,), generator=gen).to(dev)
        y = y_all[idx] if y_all is not None else None
        loss = diffusion_loss(net, x_all[idx], sched, gen, y, label_dropout if y is not None else 0.0)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.item()
        if not math.isfinite(value):
            raise ValueError(
                f"the training loss became {value} at step {step} (lr {lr_at(step):.3g}); nothing was saved from "
                f"this step on: lower lr (got {lr}) or lengthen the warm-up"
            )
        opt.step()
        if ema is not None:
            ema.update(net)
        history.losses.append(value)
        if progress and step % 20 == 0:
            iterator.set_postfix(
                loss=f"{history.smoothed(20)[-1]:.4f}" if history.steps >= 20 else f"{loss.item():.4f}"
            )
        if checkpoint is not None and (step + 1) % save_every == 0:
            history.seconds += time.perf_counter() - start
            start = time.perf_counter()
            save_checkpoint(checkpoint, net, opt, history, meta, gen, ema)
        if step + 1 in keep_at:
            _keep_record(Path(checkpoint), step + 1, net, ema, history, meta)
    history.seconds += time.perf_counter() - start
    if checkpoint is not None:
        save_checkpoint(checkpoint, net, opt, history, meta, gen, ema)
    if ema is not None and ema.updates:
        net.load_state_dict(ema.average())
    net.eval()
    return history
