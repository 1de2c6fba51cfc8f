"""How good are a network's samples? Read rates and Frechet distances, beside real digits.

    python -m elslib quality                    # every shipped network, 256 seeds each
    python -m elslib quality --seeds 64 --record
    python -m elslib quality --checkpoints training-runs/unet-zeros   # along a training run

For a denoiser, :func:`measure` draws DDIM samples (20 steps) from seeds 0 .. n - 1 and reports
what fraction the digit reader reads confidently (``metrics.recognisable``) and the Frechet
distance between the reader's features of the samples and of as many real digits the reader
never saw (``metrics.frechet_distance``). :func:`real_digits` gives the same two numbers for
real held-out digits against other real held-out digits: the scale a network is judged on.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import torch

from . import data, metrics, networks, pretrained, reader, records, sampling, training
from .checks import check_positive_int

SEEDS = 256  # the Frechet distance needs many images: its covariance has 128 x 128 entries


def samples(denoiser, n: int, steps: int = 20, batch: int = 64) -> torch.Tensor:
    """DDIM samples [n, 1, 32, 32] of a denoiser from the seeds 0 .. n - 1 (one seed per image)."""
    n = check_positive_int(n, "n")
    out = []
    for lo in range(0, n, batch):
        noise = torch.cat([sampling.noise_like((1, 1, 32, 32), seed=s) for s in range(lo, min(n, lo + batch))])
        out.append(sampling.ddim(denoiser, noise, steps=steps, progress=False))
    return torch.cat(out)


def judge(images: torch.Tensor, reference: torch.Tensor) -> dict:
    """Read rate of `images` and their Frechet distance to `reference` (real digits)."""
    return {
        "recognisable": metrics.recognisable(images),
        "frechet": metrics.frechet_distance(images, reference),
        "images": len(images),
    }


def reference(n: int) -> torch.Tensor:
    """The first n of the reader's 1,000 held-out real digits (class-balanced order)."""
    held, _ = reader.held_out()
    if n > len(held) // 2:
        raise ValueError(f"n must be at most {len(held) // 2} (half the held-out digits), got {n}")
    return held[:n]


def real_digits(n: int = SEEDS) -> dict:
    """The scale: the second n held-out digits judged against the first n."""
    held, _ = reader.held_out()
    return judge(held[n : 2 * n], reference(n))


def measure(denoiser, n: int = SEEDS) -> dict:
    """Samples of a denoiser from n seeds, judged against n real held-out digits."""
    start = time.perf_counter()
    row = judge(samples(denoiser, n), reference(n))
    return {**row, "seconds": round(time.perf_counter() - start, 1)}


def run(names=None, n: int = SEEDS, record: bool = False, progress: bool = True) -> str:
    """Measure every shipped network (and real digits); a Markdown table; with `record`, keep it in records/quality/."""
    n = check_positive_int(n, "seeds", minimum=2)
    names = pretrained.check_names(names) or pretrained.available()  # before any sampling
    if record:
        records.folder()  # fail now, not after the sampling
    rows = {"real held-out digits": real_digits(n)}
    for name in names:
        if progress:
            print(f"{name}: sampling {n} seeds", flush=True)
        rows[name] = measure(networks.as_denoiser(pretrained.load(name, device="cpu")), n)
        if record:
            stored = records.read("quality", name)
            stored[f"seeds-{n}"] = {
                **rows[name],
                "command": f"python -m elslib quality --seeds {n} --record",
                "weights_steps": pretrained.metadata(name).get("steps"),
                "date": time.strftime("%Y-%m-%d"),
            }
            records.write("quality", name, stored)
    return table(rows, n)


def table(rows: dict, n: int) -> str:
    """A Markdown table of read rates and Frechet distances."""
    lines = [
        f"| images | read as a digit (p > {reader.THRESHOLD}) | Frechet distance to real digits |",
        "|---|---|---|",
    ]
    for who, row in rows.items():
        lines.append(f"| {who} | {row['recognisable']:.0%} | {row['frechet']:.2f} |")
    note = (
        f"\n{n} images each (seeds 0 .. {n - 1}, DDIM 20 steps); real digits: {n} held-out digits against {n} others."
    )
    return "\n".join(lines) + note + "\n"


def along_training(folder, n: int = SEEDS, progress: bool = True) -> dict[int, dict]:
    """The records a training run kept (``NAME-stepN.pt``, see ``training.train(keep_at=...)``),
    each judged like a shipped network, plus its novelty: the median RMS distance of its samples
    to the nearest training digit (a copy is at 0). Returns {step: row}, in order of steps."""
    files = sorted(Path(folder).glob("*-step*.pt"), key=_step_of)
    if not files:
        raise FileNotFoundError(f"no training records (NAME-stepN.pt) in {folder}")
    train, _ = data.load("mnist")
    ref = reference(n)
    rows = {}
    for path in files:
        if progress:
            print(f"{path.name}: sampling {n} seeds", flush=True)
        net, _ = training.load_checkpoint(path, device="cpu")
        x = samples(networks.as_denoiser(net), n)
        rows[_step_of(path)] = {**judge(x, ref), "nn_distance": float(metrics.nearest_neighbours(x, train)[0].median())}
    return rows


def _step_of(path: Path) -> int:
    return int(re.search(r"-step(\d+)\.pt$", path.name).group(1))


def training_table(rows: dict[int, dict]) -> str:
    """A Markdown table of :func:`along_training`'s rows."""
    lines = ["| training steps | read as a digit | Frechet distance | median NN distance |", "|---|---|---|---|"]
    for step, row in rows.items():
        lines.append(f"| {step} | {row['recognisable']:.0%} | {row['frechet']:.2f} | {row['nn_distance']:.3f} |")
    return "\n".join(lines) + "\n"
