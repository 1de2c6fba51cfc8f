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
        noise = sampling.seeded_noise(range(lo, min(n, lo + batch)), (1, 32, 32))
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
            stored, meta = records.read("quality", name), pretrained.metadata(name)
            stored[f"seeds-{n}"] = {
                **rows[name],
                "command": f"python -m elslib quality --seeds {n} --record",
                "weights_steps": meta.get("steps"),
                "weights_sha256": meta.get("sha256"),
                "date": time.strftime("%Y-%m-%d"),
            }
            records.write("quality", name, stored)
    return table(rows, n)


def stored(name: str, n: int = SEEDS) -> dict:
    """The row `run(record=True)` kept for the shipped network `name` over n seeds ({} when none):
    recognisable, frechet, images, command, weights_steps, weights_sha256, date."""
    return records.read("quality", name).get(f"seeds-{check_positive_int(n, 'n')}", {})


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


def along_training(folder, n: int = SEEDS, progress: bool = True, machines=None) -> dict[int, dict]:
    """The records a training run kept (``NAME-stepN.pt``, see ``training.train(keep_at=...)``),
    each judged like a shipped network, plus its novelty: the median RMS distance of its samples
    to the nearest training digit (a copy is at 0). Returns {step: row}, in order of steps.

    machines: a ``reproduce.Comparison`` for the seeds 0 .. m - 1 (m <= n), the machines' samples
    of the finished network's reproduction. The machines do not depend on the network, only on
    the training digits and the calibrated P(t), so their samples serve every record: each row
    then also holds ``r_ELS``, ``r_LS`` and ``r_IS``, the median over those seeds of the Pearson r
    between the machine's sample and the record's (and ``r_seeds``, m). Whether the patch-mosaic
    account holds better or worse as a network trains, with the finished network's P(t)."""
    files = sorted(Path(folder).glob("*-step*.pt"), key=_step_of)
    if not files:
        raise FileNotFoundError(f"no training records (NAME-stepN.pt) in {folder}")
    n = check_positive_int(n, "n")
    if machines is not None and list(machines.seeds) != list(range(len(machines.seeds))):
        raise ValueError(f"machines must hold the seeds 0 .. m - 1 in order, got {list(machines.seeds)[:8]}")
    if machines is not None and len(machines.seeds) > n:
        raise ValueError(f"machines holds {len(machines.seeds)} seeds; at most n = {n} (the records' samples)")
    train, _ = data.load("mnist")
    ref = reference(n)
    rows = {}
    for path in files:
        if progress:
            print(f"{path.name}: sampling {n} seeds", flush=True)
        net, _ = training.load_checkpoint(path, device="cpu")
        x = samples(networks.as_denoiser(net), n)
        rows[_step_of(path)] = row = {
            **judge(x, ref),
            "nn_distance": float(metrics.nearest_neighbours(x, train)[0].median()),
        }
        if machines is not None:
            m = len(machines.seeds)
            for kind in ("ELS", "LS", "IS"):
                row[f"r_{kind}"] = float(metrics.pearson_r(machines.samples[kind], x[:m]).median())
            row["r_seeds"] = m
    return rows


def run_along_training(folder, n: int | None = None, r_seeds: int | None = None, record: bool = False) -> dict:
    """``python -m elslib quality --checkpoints DIR [--r-seeds M] [--record]``: :func:`along_training`
    over a run's records. With `r_seeds`, the machines' samples come from ``reproduce.compare`` for
    the shipped network the records are named after (kept in reproduce-results/chunks, so a
    reproduction run already made is reused). With `record`, the rows are kept in
    records/quality/NAME.json under "along-training"."""
    n = SEEDS if n is None else check_positive_int(n, "seeds", minimum=2)
    names = {_name_of(path) for path in Path(folder).glob("*-step*.pt")}
    if len(names) > 1:
        raise ValueError(f"--checkpoints {folder} holds the records of several runs ({', '.join(sorted(names))})")
    name = names.pop() if names else None
    machines = None
    if r_seeds is not None:
        r_seeds = check_positive_int(r_seeds, "r_seeds")
        if r_seeds > n:
            raise ValueError(f"r_seeds must be at most the seeds judged ({n}), got {r_seeds}")
        if name is not None:
            pretrained.check_names([name], argument=f"the records in {folder}")  # a shipped network: its P(t)
            from . import reproduce

            machines = reproduce.compare(name, range(r_seeds), cache_dir=Path("reproduce-results") / "chunks")
    if record and name is not None:
        records.folder()  # fail now, not after the sampling
    rows = along_training(folder, n, machines=machines)
    if record:
        stored = records.read("quality", name)
        stored["along-training"] = {
            "rows": {str(step): row for step, row in rows.items()},
            "seeds": n,
            "command": f"python -m elslib quality --checkpoints {folder}"
            + ("" if n == SEEDS else f" --seeds {n}")
            + ("" if r_seeds is None else f" --r-seeds {r_seeds}")
            + " --record",
            "scales": None if machines is None else pretrained.metadata(name).get("scales"),
            "date": time.strftime("%Y-%m-%d"),
        }
        records.write("quality", name, stored)
    return rows


def stored_along_training(name: str) -> dict[int, dict]:
    """The rows `run_along_training(record=True)` kept for `name`, {step: row} in order of the steps ({} when none)."""
    stored = records.read("quality", name).get("along-training")
    return {} if not stored else dict(sorted((int(step), row) for step, row in stored["rows"].items()))


def _name_of(path: Path) -> str:
    return re.sub(r"-step\d+\.pt$", "", path.name)


def _step_of(path: Path) -> int:
    return int(re.search(r"-step(\d+)\.pt$", path.name).group(1))


def training_table(rows: dict[int, dict]) -> str:
    """A Markdown table of :func:`along_training`'s rows (with the r columns when they hold them)."""
    with_r = all("r_ELS" in row for row in rows.values())
    head = "| training steps | read as a digit | Frechet distance | median NN distance |"
    rule = "|---|---|---|---|"
    if with_r:
        head += " r(ELS, CNN) | r(LS, CNN) | r(IS, CNN) |"
        rule += "---|---|---|"
    lines = [head, rule]
    for step, row in rows.items():
        line = f"| {step} | {row['recognisable']:.0%} | {row['frechet']:.2f} | {row['nn_distance']:.3f} |"
        if with_r:
            line += f" {row['r_ELS']:.3f} | {row['r_LS']:.3f} | {row['r_IS']:.3f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def training_figure(rows: dict[int, dict], path=None, title: str = "a network as it trains"):
    """Read rate, Frechet distance, NN novelty (and r with the machines, when the rows hold it)
    against training steps, one panel each, steps on a log axis. Saved to `path` when given."""
    import matplotlib.pyplot as plt

    steps = list(rows)
    panels = [
        ("recognisable", "read as a digit", False),
        ("frechet", "Frechet distance to real digits", True),
        ("nn_distance", "median distance to nearest training digit", False),
    ]
    with_r = all("r_ELS" in row for row in rows.values())
    fig, axes = plt.subplots(1, len(panels) + with_r, figsize=(3.4 * (len(panels) + with_r), 3.0))
    for ax, (key, label, log) in zip(axes[: len(panels)], panels, strict=True):
        ax.plot(steps, [rows[s][key] for s in steps], "o-")
        ax.set(xscale="log", xlabel="training steps", title=label)
        if log:
            ax.set_yscale("log")
    if with_r:
        for kind in ("ELS", "LS", "IS"):
            axes[-1].plot(steps, [rows[s][f"r_{kind}"] for s in steps], "o-", label=kind)
        axes[-1].set(xscale="log", xlabel="training steps", title="median r(machine, network)", ylim=(0, 1))
        axes[-1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
