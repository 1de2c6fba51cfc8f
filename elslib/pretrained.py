"""The trained networks that ship with the course, and the recipes that made them.

    net = elslib.pretrained.load("resnet-zeros")          # a ResNet, eval mode
    info = elslib.pretrained.metadata("resnet-zeros")     # how it was trained, calibrated scales

Each network was trained on the bundled MNIST-5000 by ``python -m elslib train NAME``; the
weights (the moving average) and a JSON file of metadata live in ``elslib/weights/``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch

from . import data, networks, training
from .checks import check_choice, check_positive_int

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# name -> how to build and train it. Unconditional, on MNIST-5000 at 32x32. They predict v rather
# than the paper's eps: same optimum, but x0_hat stays sane near t = 1 after a short CPU training
# (see elslib.networks).
# The second edition trains every network by one recipe: a linear warm-up over 500 steps to lr 1e-3, one
# cosine to 0 over 20,000 steps, records kept along the way (records/training/NAME). resnet-zeros, unet-zeros and
# resnet-circular ship from those runs (first-edition measurements: records/*/NAME-first-edition.json).
_KEEP_AT = (500, 1000, 2000, 3000, 5000, 7500, 10000, 15000, 20000)
RECIPES = {
    "resnet-zeros": dict(
        kind="resnet",
        config=dict(in_channels=1, channels=32, blocks=6, padding="zeros", target="v"),
        steps=20000,
        lr=1e-3,
        warmup=500,
        keep_at=_KEEP_AT,
    ),
    "resnet-circular": dict(
        kind="resnet",
        config=dict(in_channels=1, channels=32, blocks=6, padding="circular", target="v"),
        steps=20000,
        lr=1e-3,
        warmup=500,
        keep_at=_KEEP_AT,
    ),
    # Shipped from the second edition's run. The first edition trained 1,500 steps at lr 2e-3: far from
    # converged (its samples read as digits 4% of the time; records/*/unet-zeros-first-edition.json).
    "unet-zeros": dict(
        kind="unet",
        config=dict(in_channels=1, channels=32, padding="zeros", target="v"),
        steps=20000,
        lr=1e-3,
        warmup=500,
        keep_at=_KEEP_AT,
    ),
}
DATASET, BATCH_SIZE, SEED = "mnist", 128, 0

# Chapter 09's networks on few and on many digits: resnet-zeros' architecture and second-edition recipe
# on the class-balanced training sets ``data.load("mnist", n=N, skip=S)``, two of them in pairs on
# disjoint sets (the test of Kadkhodaie et al. 2024). Each trains for 3,000 steps, not 20,000: some
# 16 minutes on a 2-core CPU each (train_seconds in its JSON), the same optimisation for every N, so that
# only the data differ between them (at N = 10, 3,000 steps of 128 show each digit 38,400 times: time
# enough to memorise, for a network that can).
SMALL_DATA_STEPS = 3000
_SMALL_DATA = {
    "resnet-n10-a": dict(n=10),
    "resnet-n10-b": dict(n=10, skip=10),
    "resnet-n100": dict(n=100),
    "resnet-n1000": dict(n=1000),
    "resnet-n2500-a": dict(n=2500),
    "resnet-n2500-b": dict(n=2500, skip=2500),
}
for _name, _subset in _SMALL_DATA.items():
    RECIPES[_name] = {**RECIPES["resnet-zeros"], "steps": SMALL_DATA_STEPS, "keep_at": (), "data": _subset}

# Chapters 08 and 10's networks: a UNet with self-attention at its bottleneck, and class-conditional
# networks trained with label dropout (one network serves labelled and unlabelled sampling, as
# classifier-free guidance needs). One cosine over 10,000 steps rather than 20,000: unet-zeros' run read
# 68% of its samples as digits at step 10,000 and no more at 20,000 (records/quality/unet-zeros.json,
# along training), and half the steps is some 3 hours less of a 2-core CPU per UNet.
LABEL_DROPOUT = 0.1
_SHORT = dict(steps=10000, lr=1e-3, warmup=500, keep_at=(500, 1000, 2000, 3000, 5000, 7500, 10000))
RECIPES["unet-attention"] = dict(
    kind="unet", config=dict(in_channels=1, channels=32, padding="zeros", attention=True, target="v"), **_SHORT
)
RECIPES["resnet-conditional"] = dict(
    kind="resnet",
    config={**RECIPES["resnet-zeros"]["config"], "num_classes": 10},
    label_dropout=LABEL_DROPOUT,
    **_SHORT,
)
RECIPES["unet-conditional"] = dict(
    kind="unet", config={**RECIPES["unet-zeros"]["config"], "num_classes": 10}, label_dropout=LABEL_DROPOUT, **_SHORT
)


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), for metadata and benchmarks."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def weights_path(name: str) -> Path:
    check_choice(name, "name", list(RECIPES))
    return WEIGHTS_DIR / f"{name}.pt"


def metadata_path(name: str) -> Path:
    check_choice(name, "name", list(RECIPES))
    return WEIGHTS_DIR / f"{name}.json"


def available(everything: bool = False) -> list[str]:
    """Names of the shipped networks whose weights are present: those trained on all of MNIST-5000
    (the course's main networks), or with `everything` also chapter 09's networks on fewer digits."""
    return [name for name in RECIPES if weights_path(name).exists() and (everything or "data" not in RECIPES[name])]


def training_set(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits network `name` was trained on (images [N, 1, 32, 32] in [-1, 1], labels [N]): all of
    MNIST-5000, or the class-balanced subset its recipe names (chapter 09's networks)."""
    check_choice(name, "name", list(RECIPES))
    return data.load(DATASET, **RECIPES[name].get("data", {}))


def check_names(names, argument: str = "names") -> list[str] | None:
    """`names` as a list of shipped networks, or None for "the default"; checked before any work.

    An empty list is refused (``--names`` given without a value is a mistake, not "all"), as is a
    name that is not a recipe or whose weights are not installed.
    """
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError(f"{argument} must name at least one network (shipped: {', '.join(available())})")
    for name in names:
        if name not in RECIPES:
            raise ValueError(f"{argument}: {name!r} is not a network of the course; choose from {', '.join(RECIPES)}")
        if not weights_path(name).exists():
            raise FileNotFoundError(
                f"{argument}: the weights of {name!r} are not installed at {weights_path(name)}; "
                f"train them with `python -m elslib train {name}`"
            )
    return names


def metadata(name: str) -> dict:
    """The JSON metadata of a shipped network: command, steps, final loss, seed, time, scales."""
    path = metadata_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no metadata for {name!r} at {path}; train it with `python -m elslib train {name}`")
    return json.loads(path.read_text())


def calibrated_scales(name: str):
    """The patch-size schedule P(t) calibrated for the shipped network `name` (chapter 08), as a
    ``calibration.ScaleSchedule``; None when its metadata holds none (or it is not installed)."""
    from .calibration import ScaleSchedule

    try:
        meta = metadata(name)
    except FileNotFoundError:
        return None
    return ScaleSchedule.from_dict(meta["scales"]) if "scales" in meta else None


def load(name: str, device=None):
    """The shipped network `name` ("resnet-zeros", "resnet-circular", "unet-zeros"), in eval mode."""
    path = weights_path(name)
    if not path.exists():
        raise FileNotFoundError(
            f"the weights of {name!r} are not at {path}; train them with `python -m elslib train {name}`"
        )
    training.verify_sha256(path, metadata(name).get("sha256") if metadata_path(name).exists() else None)
    net, _ = training.load_checkpoint(path, device=device)
    return net


TRAIN_DIR = "trained-networks"  # where `python -m elslib train` writes, under the current directory


def train(
    name: str,
    steps: int | None = None,
    out_dir=None,
    resume: bool = True,
    progress: bool = True,
    record: bool = False,
) -> Path:
    """Train the network `name` by its recipe and write ``NAME.pt`` and ``NAME.json`` to `out_dir`
    (default: ./trained-networks; the installed package is never written unless `record` asks to
    replace the shipped weights, which is for whoever updates the course, in a source checkout).
    A working checkpoint ``NAME.ckpt`` beside them makes the run resumable; it is removed at the
    end. Returns the path of the weights."""
    check_choice(name, "name", list(RECIPES))
    recipe = RECIPES[name]
    steps = recipe["steps"] if steps is None else check_positive_int(steps, "steps")
    if steps <= recipe.get("warmup", 0):
        raise ValueError(
            f"steps={steps} ends within {name}'s learning-rate warm-up of {recipe['warmup']} steps; "
            f"give more than {recipe['warmup']} steps"
        )
    if record and out_dir is not None:
        raise ValueError(f"give out_dir or record, not both: record writes the package's {WEIGHTS_DIR}")
    out_dir = WEIGHTS_DIR if record else Path(out_dir if out_dir is not None else TRAIN_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, labels = training_set(name)
    conditional = recipe["config"].get("num_classes") is not None
    torch.manual_seed(SEED)
    net = networks.build(recipe["kind"], **recipe["config"])
    work = out_dir / f"{name}.ckpt"
    command = f"python -m elslib train {name}" + (f" --steps {steps}" if steps != recipe["steps"] else "")
    command += " --record" if record else ""
    meta = dict(name=name, command=command, dataset=DATASET, seed=SEED, batch_size=BATCH_SIZE, lr=recipe["lr"])
    meta.update({k: recipe[k] for k in ("warmup", "data", "label_dropout") if k in recipe})
    history = training.train(
        net,
        images,
        labels=labels if conditional else None,
        label_dropout=recipe.get("label_dropout", 0.0),
        steps=steps,
        batch_size=BATCH_SIZE,
        lr=recipe["lr"],
        seed=SEED,
        device="cpu",
        checkpoint=work,
        resume=resume,
        progress=progress,
        meta=meta,
        warmup=recipe.get("warmup", 0),
        keep_at=recipe.get("keep_at", ()),
    )
    meta.update(
        kind=recipe["kind"],
        config=recipe["config"],
        steps=history.steps,
        final_loss=float(history.smoothed(100)[-1]),
        train_seconds=round(history.seconds, 1),
        trained_on=f"{cpu_name()}, {torch.get_num_threads()} threads",
        torch=str(torch.__version__),
        python=sys.version.split()[0],
        date=time.strftime("%Y-%m-%d"),
    )
    path = training.save_checkpoint(out_dir / f"{name}.pt", net, history=history, meta=meta)
    old = out_dir / f"{name}.json"
    if old.exists():  # keep what calibration added
        meta = {**json.loads(old.read_text()), **meta}
    meta["sha256"] = training.file_sha256(path)  # checked on every load of shipped weights
    old.write_text(json.dumps(meta, indent=2) + "\n")
    work.unlink(missing_ok=True)
    return path
