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

import functools
import json
import time
from pathlib import Path

import torch

from . import data, machines, metrics, records, sampling
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
    percentile = check_number(percentile, "percentile", low=0.0, strict=True)
    if not percentile < 100.0:
        raise ValueError(f"percentile must lie in (0, 100), got {percentile!r}")
    if images is None:
        return _mnist_threshold(percentile)
    if len(images) < 2:
        raise ValueError(f"images must hold at least 2 images to measure distances between them, got {len(images)}")
    return float(torch.quantile(leave_one_out_distances(images), percentile / 100.0))


@functools.lru_cache(maxsize=4)
def _mnist_threshold(percentile: float) -> float:
    """copy_threshold on all of MNIST-5000, computed once per process (25 million distances)."""
    return copy_threshold(data.load("mnist")[0], percentile)


def sample_cell(n: int, p: int | None, seeds, steps: int = 20) -> dict:
    """One cell of the diagram: the machine on the first n digits, sampled from `seeds`.

    Returns samples [S, 1, 32, 32], nn (RMS distance to the nearest of the n training digits,
    [S]), nearest (its index, [S]) and seconds.
    """
    images, _ = data.load("mnist", n=n)
    seeds = [int(s) for s in seeds]
    noise = sampling.seeded_noise(seeds, images.shape[1:])
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
            records.save_whole(cell, path)
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
    records.save_whole(samples, out / "samples.pt")
    return result


def table(result: dict, field: str = "copy_fraction") -> str:
    """A Markdown table of one field ("copy_fraction" or "median_nn"): N down, P across ("-": no such cell)."""
    if field not in ("copy_fraction", "median_nn"):
        raise ValueError(f"field must be 'copy_fraction' or 'median_nn', got {field!r}")
    head = "| N | " + " | ".join(f"P = {p}" for p in result["patches"]) + " |"
    lines = [head, "|" + "---|" * (len(result["patches"]) + 1)]
    for n in result["sizes"]:
        cells = [result["cells"].get(f"{n},{p}") for p in result["patches"]]  # None: not computed (yet)
        values = [None if c is None else c[field] for c in cells]
        text = ["-" if v is None else f"{v:.0%}" if field == "copy_fraction" else f"{v:.3f}" for v in values]
        lines.append(f"| {n} | " + " | ".join(text) + " |")
    return "\n".join(lines)


RECORD = "phase-diagram"  # the folder of records/ that keeps the course's stored grid


def merge(results, out_dir=None) -> dict:
    """One diagram out of several runs of ``phase_diagram`` (say, fewer seeds for the large N).

    results: a list of (result, samples) pairs, ``samples`` the dict of samples.pt (or None).
    Their thresholds and steps must agree; a cell present in several runs is taken from the last.
    Returns a result like ``phase_diagram``'s, in which ``seeds`` is the number of seeds every cell
    has (seeds 0 .. seeds - 1), ``seeds_by_size`` maps each N (a string) to its cells' seed count,
    and each cell also says its own ``seeds``. With `out_dir`, writes phase-diagram.json and
    samples.pt there, as ``phase_diagram`` does.
    """
    results = list(results)
    if not results:
        raise ValueError("results must hold at least one (result, samples) pair, got none")
    first = results[0][0]
    cells, samples, sizes, patches = {}, {}, [], []
    for result, stored in results:
        if abs(result["threshold"] - first["threshold"]) > 1e-9 or result["steps"] != first["steps"]:
            raise ValueError(
                "results must share the copy threshold and the number of steps, got "
                f"{first['threshold']!r} / {first['steps']} and {result['threshold']!r} / {result['steps']}"
            )
        for key, cell in result["cells"].items():
            cells[key] = {**cell, "seeds": len(cell["nn"])}
            if stored is not None and key in stored:
                samples[key] = stored[key]
        sizes += [n for n in result["sizes"] if n not in sizes]
        patches += [p for p in result["patches"] if p not in patches]
    sizes = sorted(sizes)
    patches = [p for p in (patch_name(q) for q in PATCHES) if p in patches] + [
        p for p in patches if p not in {patch_name(q) for q in PATCHES}
    ]
    by_size = {str(n): min(c["seeds"] for k, c in cells.items() if k.split(",")[0] == str(n)) for n in sizes}
    merged = {
        "threshold": first["threshold"],
        "seeds": min(by_size.values()),
        "seeds_by_size": by_size,
        "steps": first["steps"],
        "sizes": sizes,
        "patches": patches,
        "cells": {f"{n},{p}": cells[f"{n},{p}"] for n in sizes for p in patches if f"{n},{p}" in cells},
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "phase-diagram.json").write_text(json.dumps(merged, indent=1) + "\n")
        records.save_whole(samples, out / "samples.pt")
    return merged


def load_record(folder=None) -> dict | None:
    """The stored diagram: the result (as ``phase_diagram`` returns it) plus ``samples``, or None.

    folder: where phase-diagram.json (and samples.pt) lie; default: the repository's
    records/phase-diagram (see ``elslib.records``). None when there is no such file. A grid may be
    partial (a run still under way): ``missing`` lists the cells "N,P" of its sizes and patches
    that it lacks, and ``samples`` holds only the cells whose samples were stored.
    """
    from . import records

    if folder is None:
        try:
            folder = records.folder() / RECORD
        except FileNotFoundError:
            return None
    folder = Path(folder)
    file = folder / "phase-diagram.json"
    if not file.exists():
        return None
    try:
        result = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"the record file {file} is damaged ({err}); restore it from the repository") from err
    samples_file = folder / "samples.pt"
    result["samples"] = torch.load(samples_file, weights_only=True) if samples_file.exists() else {}
    result["missing"] = [
        f"{n},{p}" for n in result["sizes"] for p in result["patches"] if f"{n},{p}" not in result["cells"]
    ]
    return result
