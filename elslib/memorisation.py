r"""When does a model copy? A phase diagram of the score machines over N and P.

The ideal machine can only return training images; the ELS machine with small patches makes
new mosaics. Between them lie two knobs: the number N of training images and the patch size P.
``phase_diagram`` samples the ELS machine (zero padding, as the course's ResNets pad) for every
pair (N, P), and the ideal machine (the whole image as one patch) for every N, from the same
seeds, and measures for each sample its RMS distance to the nearest of its N training images.

The copy rule. A sample is a **copy** when it is closer to a training image than almost any real
digit is to another one: its nearest-neighbour distance is below the 1st percentile of the
leave-one-out distances of the 5,000 real digits (each measured against the other 4,999;
``copy_threshold``). The rule is the same for every N (a ratio test, nearest against second
nearest, has no second nearest at N = 1).

The training set of size N is the class-balanced prefix ``data.load("mnist", n=N)``, so every
N contains the smaller ones.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from . import data, machines, metrics, sampling
from .checks import check_number, check_positive_int, check_sequence
from .machines.base import check_patch_size

SIZES = (1, 2, 5, 10, 30, 100, 300, 1000, 5000)
PATCHES = (3, 5, 7, 9, 11, 15, None)  # None: the whole image, i.e. the ideal machine
COPY_PERCENTILE = 1.0


def patch_name(p: int | None) -> str:
    """How tables name a patch size: "7", or "whole" for the ideal machine."""
    return "whole" if p is None else str(p)


def leave_one_out_distances(images: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """For each image [N, C, H, W], the RMS distance to its nearest *other* image: [N] float64."""
    y = images.flatten(1).double()
    sq = (y * y).sum(1)
    best = torch.empty(len(y), dtype=torch.float64)
    for i in range(0, len(y), chunk):
        d2 = sq[i : i + chunk, None] - 2.0 * y[i : i + chunk] @ y.T + sq[None]
        d2[torch.arange(len(d2)), torch.arange(i, i + len(d2))] = float("inf")  # not itself
        j = d2.argmin(1)
        best[i : i + chunk] = (y[i : i + chunk] - y[j]).square().mean(1).sqrt()  # direct: no cancellation
    return best


def copy_threshold(images: torch.Tensor | None = None, percentile: float = COPY_PERCENTILE) -> float:
    """The RMS distance below which a sample counts as a copy (see the module's notes).

    images: the real digits that set the scale (default: all of MNIST-5000); percentile: of
    their leave-one-out nearest-neighbour distances, in (0, 100).
    """
    if images is None:
        images, _ = data.load("mnist")
    percentile = check_number(percentile, "percentile", low=0.0, strict=True)
    if not percentile < 100.0:
        raise ValueError(f"percentile must lie in (0, 100), got {percentile!r}")
    if len(images) < 2:
        raise ValueError(f"images must hold at least 2 images to measure distances between them, got {len(images)}")
    return float(torch.quantile(leave_one_out_distances(images), percentile / 100.0))


def sample_cell(n: int, p: int | None, seeds, steps: int = 20) -> dict:
    """One cell of the diagram: the machine on the first n digits, sampled from `seeds`.

    Returns samples [S, 1, 32, 32], nn (RMS distance to the nearest of the n training digits,
    [S]), nearest (its index, [S]) and seconds.
    """
    images, _ = data.load("mnist", n=n)
    seeds = [int(s) for s in seeds]
    noise = torch.cat([sampling.noise_like((1, *images.shape[1:]), seed=s) for s in seeds])
    if p is None:
        den = machines.IdealDenoiser(images)
    else:
        den = machines.ELSDenoiser(images, patch_size=p, padding="zeros")
    start = time.perf_counter()
    samples = sampling.ddim(den, noise, steps=steps, progress=False)
    nn, nearest = metrics.nearest_neighbours(samples, images)
    return {
        "seeds": seeds,
        "samples": samples,
        "nn": nn,
        "nearest": nearest,
        "seconds": time.perf_counter() - start,
    }


def _cell_path(out: Path, n: int, p, seeds, steps: int) -> Path:
    return out / f"N{n}-P{patch_name(p)}-seeds{seeds[0]}-{seeds[-1]}x{len(seeds)}-steps{steps}.pt"


def _read_cell(path: Path, seeds) -> dict | None:
    """A finished cell stored by an earlier run, or None (missing, damaged or for other seeds)."""
    if not path.exists():
        return None
    try:
        cell = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a truncated or foreign file: sample the cell again
        return None
    ok = (
        isinstance(cell, dict)
        and cell.get("seeds") == list(seeds)
        and all(
            isinstance(cell.get(k), torch.Tensor) and len(cell[k]) == len(seeds) for k in ("samples", "nn", "nearest")
        )
        and isinstance(cell.get("seconds"), float)
    )
    return cell if ok else None


def phase_diagram(
    sizes=SIZES,
    patches=PATCHES,
    seeds: int = 8,
    steps: int = 20,
    out_dir="phase-diagram",
    threshold: float | None = None,
    progress: bool = True,
) -> dict:
    """Sample every cell (N, P) and summarise it; resumable through the cells kept in `out_dir`.

    sizes: training-set sizes N (class-balanced prefixes of MNIST-5000); patches: odd patch
    sizes for the ELS machine, None for the ideal machine; seeds: how many (0 .. seeds - 1),
    the same for every cell. Each finished cell is stored in `out_dir` at once, so a stopped
    run loses at most one cell. threshold: the copy rule's RMS distance (default:
    ``copy_threshold()``).

    Returns {"threshold", "seeds", "steps", "sizes", "patches", "cells"}, where cells maps
    "N,P" to {"copy_fraction", "median_nn", "nn" (per seed), "nearest", "seconds"}; also
    written to `out_dir`/phase-diagram.json, and the samples to samples.pt.
    """
    sizes = [check_positive_int(n, "sizes") for n in check_sequence(sizes, "sizes")]
    available = len(data.load("mnist")[0])
    if max(sizes) > available:
        raise ValueError(f"sizes must be at most {available} (the digits available), got {max(sizes)}")
    patches = list(check_sequence(patches, "patches"))
    for p in patches:
        if p is not None:
            check_patch_size(p, (32, 32), circular=False, name="patches")
    seeds = list(range(check_positive_int(seeds, "seeds")))
    steps = check_positive_int(steps, "steps")
    threshold = copy_threshold() if threshold is None else check_number(threshold, "threshold", low=0.0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells, samples = {}, {}
    grid = [(n, p) for n in sizes for p in patches]
    iterator = grid
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(grid, desc="phase diagram (N, P)")
    for n, p in iterator:
        path = _cell_path(out, n, p, seeds, steps)
        cell = _read_cell(path, seeds)
        if cell is None:
            cell = sample_cell(n, p, seeds, steps)
            tmp = path.with_name(path.name + ".tmp")
            torch.save(cell, tmp)
            tmp.replace(path)  # whole or not at all
        key = f"{n},{patch_name(p)}"
        samples[key] = cell["samples"]
        cells[key] = {
            "copy_fraction": float((cell["nn"] < threshold).double().mean()),
            "median_nn": float(cell["nn"].median()),
            "nn": [round(float(d), 4) for d in cell["nn"]],
            "nearest": [int(i) for i in cell["nearest"]],
            "seconds": round(cell["seconds"], 1),
        }
    result = {
        "threshold": threshold,
        "seeds": len(seeds),
        "steps": steps,
        "sizes": sizes,
        "patches": [patch_name(p) for p in patches],
        "cells": cells,
    }
    (out / "phase-diagram.json").write_text(json.dumps(result, indent=1) + "\n")
    torch.save(samples, out / "samples.pt")
    return result


def table(result: dict, field: str = "copy_fraction") -> str:
    """A Markdown table of one field ("copy_fraction" or "median_nn"): N down, P across."""
    if field not in ("copy_fraction", "median_nn"):
        raise ValueError(f"field must be 'copy_fraction' or 'median_nn', got {field!r}")
    head = "| N | " + " | ".join(f"P = {p}" for p in result["patches"]) + " |"
    lines = [head, "|" + "---|" * (len(result["patches"]) + 1)]
    for n in result["sizes"]:
        values = [result["cells"][f"{n},{p}"][field] for p in result["patches"]]
        text = [f"{v:.0%}" if field == "copy_fraction" else f"{v:.3f}" for v in values]
        lines.append(f"| {n} | " + " | ".join(text) + " |")
    return "\n".join(lines)
