r"""Reproducing the paper's headline result: the ELS machine predicts what a trained CNN makes.

For each shipped network and each seed, the network samples an image with DDIM (20 steps) from
the seed's noise; the ideal (IS), local (LS) and equivariant local (ELS) machines sample from
the *same* noise; and we correlate each machine's final image with the network's. A
class-conditional network draws seed s as the digit s mod 10 (every class equally often), and
the machines are the class-conditional ones, asked for the same digit. The summary
is a table like the paper's Table 1 (median Pearson r over seeds, and its square), the fraction
of seeds on which ELS beats IS, and how far the samples are from their nearest training image.

    python -m elslib reproduce --quick      # a few seeds, minutes on a laptop CPU
    python -m elslib reproduce              # 100 seeds, as in the paper
    python -m elslib reproduce --seeds 24   # any number; finished chunks of 8 seeds are kept in
                                            # reproduce-results/chunks, so a stopped run resumes
    python -m elslib reproduce --record     # also keep the summary in records/reproduction/NAME.json
                                            # (and a new calibration in the weights' metadata)

A run writes into its output folder only; the committed records (:mod:`elslib.records`) and the
shipped metadata change only with ``--record``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import calibration, machines, metrics, networks, pretrained, records, sampling
from . import device as _device
from .checks import check_choice, check_positive_int
from .machines.els import TABLE_BUDGET

MACHINES = ("IS", "LS", "ELS")
QUICK_SEEDS, FULL_SEEDS = range(8), range(100)  # the noise seeds of `reproduce --quick` and of the full run
# odd patch sizes tried by the calibration, up to the network's receptive field where it has one (the
# ResNets: 17 pixels; a larger patch shows the machine what the network cannot see); the local
# search (see calibration.calibrate) only visits the large ones where the network needs them. Up to 31,
# nearly the whole 32-pixel image: the first calibration of unet-zeros stopped at 25 and chose 25 at its
# first four steps, a measurement capped by the sizes tried (its metadata keeps the sizes it tried)
CALIBRATION_SIZES = (1, 3, 5, 7, 9, 11, 13, 15, 17, 21, 25, 29, 31)


@dataclass
class Comparison:
    """Samples of one network and of the machines from the same seeds, and their agreement."""

    name: str
    seeds: list[int]
    samples: dict[str, torch.Tensor] = field(default_factory=dict)  # "network", "IS", ... -> [S, C, H, W]
    r: dict[str, torch.Tensor] = field(default_factory=dict)  # machine -> Pearson r per seed [S]
    novelty: dict[str, torch.Tensor] = field(default_factory=dict)  # who -> nearest-neighbour RMS [S]
    seconds: dict[str, float] = field(default_factory=dict)
    # who -> the prediction x0_hat made at each DDIM step [steps, S, C, H, W] (the last is the sample)
    predictions: dict[str, torch.Tensor] = field(default_factory=dict)
    times: list = field(default_factory=list)  # the time of each prediction (t = 1.00, 0.95, ..., 0.05)
    labels: list | None = None  # the class each seed was drawn as (class-conditional networks), else None

    def r_along(self, machine: str) -> torch.Tensor:
        """Pearson r between the machine's and the network's predictions, at every step and seed: [steps, S]."""
        if machine not in self.predictions or "network" not in self.predictions:
            raise ValueError(f"this comparison holds no step-by-step predictions of {machine!r} (a cached part?)")
        mine, net = self.predictions[machine], self.predictions["network"]
        return torch.stack([metrics.pearson_r(mine[i], net[i]) for i in range(len(net))])

    def summary(self) -> dict:
        row = {"network": self.name, "seeds": len(self.seeds)}
        for m in MACHINES:
            row[f"r_{m}"] = float(self.r[m].median())
            row[f"r2_{m}"] = float((self.r[m] ** 2).median())
        row["ELS_beats_IS"] = float((self.r["ELS"] > self.r["IS"]).float().mean())
        row["nn_network"] = float(self.novelty["network"].median())
        row["nn_IS"] = float(self.novelty["IS"].median())
        # per seed too, so that a chapter running some of the same seeds can compare seed by seed
        row["per_seed"] = {
            "seed": list(self.seeds),
            **{f"r_{m}": [round(float(v), 4) for v in self.r[m]] for m in MACHINES},
        }
        if self.labels is not None:
            row["per_seed"]["label"] = list(self.labels)
        return row


def table_budget(share: float, device) -> int:
    """Key-table memory for an ELS machine of a long run: `share` of what is free, at least the default.

    Stored tables make a call ~2.5x faster than patches cut from the images at every call, and
    the circular machine's tables at large P take several GB (P = 13 on MNIST-5000: 2.5 GB).
    """
    free = _device.free_memory(device)
    return max(TABLE_BUDGET, int(share * free)) if free else TABLE_BUDGET


def labels_of(name: str, seeds) -> list[int] | None:
    """The class each seed is drawn as by the class-conditional network `name`: seed mod the number of
    classes, so that every label is drawn equally often; None for an unconditional network."""
    classes = pretrained.RECIPES[name]["config"].get("num_classes")
    return None if not classes else [int(s) % classes for s in seeds]


def calibration_sizes(net) -> list[int]:
    """The patch sizes the calibration tries for a network: CALIBRATION_SIZES up to its receptive field."""
    limit = getattr(net, "receptive_field", None)
    return [p for p in CALIBRATION_SIZES if limit is None or p <= limit]


def scale_schedule(
    name: str, images, padding: str, seeds: int, progress: bool, cache_dir=None, record: bool = False, labels=None
) -> calibration.ScaleSchedule:
    """The calibrated P(t) of a shipped network: from its metadata, from `cache_dir` (a run's own
    folder, where an earlier run left it), or measured now and kept in `cache_dir`. Only with
    `record` does a new calibration go into the network's shipped metadata. labels: the training
    images' classes, for a class-conditional network (its machines are then conditional too)."""
    meta = pretrained.metadata(name)
    if "scales" in meta:
        return calibration.ScaleSchedule.from_dict(meta["scales"])
    cached = None if cache_dir is None else Path(cache_dir) / f"calibration-{name}.json"
    if cached is not None and cached.exists():
        scales = json.loads(cached.read_text())
        if record:
            _store_scales(name, scales)
        return calibration.ScaleSchedule.from_dict(scales)
    start = time.perf_counter()
    module = pretrained.load(name, device="cpu")
    sizes = calibration_sizes(module)
    # the local search keeps up to 3 machines (sizes around the current one): a fifth of the memory each
    budget = table_budget(0.2, None)  # on the device the machines use
    conditional = {} if labels is None else {"labels": labels}
    make = lambda p: machines.build("ELS", images, patch_size=p, padding=padding, table_budget=budget, **conditional)
    calibration_seeds = range(1000, 1000 + seeds)
    sched = calibration.calibrate(
        networks.as_denoiser(module),
        make,
        tuple(images.shape[1:]),
        seeds=calibration_seeds,
        patch_sizes=sizes,
        search="local",
        progress=progress,
        labels=labels_of(name, calibration_seeds) if labels is not None else None,
    )
    scales = {
        **sched.to_dict(),
        "seeds": seeds,
        "machine": f"ELS {padding}" + ("" if labels is None else ", class-conditional (seed s drawn as s mod 10)"),
        "sizes_tried": sizes,
        "search": "local",
        "best_per_seed": sched.best_per_seed(),
        "seconds": round(time.perf_counter() - start, 1),
    }
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(scales, indent=2) + "\n")
    if record:
        _store_scales(name, scales)
    return sched


def _store_scales(name: str, scales: dict) -> None:
    """Keep a calibration in the shipped metadata of `name` (``--record``, in a source checkout)."""
    meta = pretrained.metadata(name)
    meta["scales"] = scales
    pretrained.metadata_path(name).write_text(json.dumps(meta, indent=2) + "\n")


# Seeds are sampled (and, given a cache folder, stored) in chunks of this many: a long run that is
# stopped loses at most one chunk and resumes where it left off.
CHUNK = 8


def compare(
    name: str,
    seeds,
    calibration_seeds: int = 8,
    progress: bool = True,
    n_images: int | None = None,
    cache_dir=None,
    record: bool = False,
) -> Comparison:
    """Sample network `name` and the IS, LS and ELS machines from the same seeds; correlate.

    The machines use the network's whole training set (`pretrained.training_set`: MNIST-5000 for
    the main networks), unless `n_images` asks for a smaller class-balanced subset of it (quicker;
    a weaker prediction of the network, for fast mode).
    The calibrated scales come from the network's metadata (measured and stored when absent).
    cache_dir: keep each chunk of `CHUNK` seeds there as it finishes, and reuse chunks found
    there (only those made by the same weights, scales and training set), so that an interrupted
    run resumes; a calibration measured now is kept there too. record: store a new calibration
    in the network's shipped metadata.
    """
    images, labels = pretrained.training_set(name)
    padding = pretrained.RECIPES[name]["config"]["padding"]
    conditional = labels_of(name, [0]) is not None
    labels = labels if conditional else None
    scales = scale_schedule(name, images, padding, calibration_seeds, progress, cache_dir, record, labels)
    if n_images is not None:
        images = images[: check_positive_int(n_images, "n_images")]
        labels = None if labels is None else labels[: len(images)]
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    stamp = _fingerprint(name, scales, len(images))
    denoisers, parts = None, []
    chunks = [seeds[i : i + CHUNK] for i in range(0, len(seeds), CHUNK)]
    for k, chunk in enumerate(chunks):
        path = None if cache_dir is None else Path(cache_dir) / f"{name}-{stamp}-seeds-{chunk[0]}-{chunk[-1]}.pt"
        part = _read_part(path, name, chunk)
        if part is None:
            if progress and len(chunks) > 1:
                print(f"{name}: seeds {chunk[0]}-{chunk[-1]} (chunk {k + 1} of {len(chunks)})", flush=True)
            if denoisers is None:  # built once: the ELS key tables are reused by every chunk
                budget = {"ELS": {"table_budget": table_budget(0.4, None)}}
                denoisers = {"network": networks.as_denoiser(pretrained.load(name, device="cpu"))}
                for kind in MACHINES:
                    denoisers[kind] = machines.build(
                        kind, images, patch_size=scales, padding=padding, labels=labels, **budget.get(kind, {})
                    )
            part = _sample_part(name, chunk, denoisers, images, progress, labels_of(name, chunk))
            _write_part(path, part)
        parts.append(part)
    return _merge(name, seeds, parts)


def _sample_part(name, seeds, denoisers, images, progress, labels=None) -> Comparison:
    noise = sampling.seeded_noise(seeds, images.shape[1:])
    out = Comparison(name, list(seeds), labels=labels)
    for who, den in denoisers.items():
        start = time.perf_counter()
        out.samples[who], traj = sampling.ddim(
            den, noise, steps=20, label=labels, progress=progress, return_trajectory=True
        )
        out.seconds[who] = time.perf_counter() - start
        out.predictions[who] = traj.x0_hat
        out.times = [float(t) for t in traj.times[:-1]]
    for m in MACHINES:
        out.r[m] = metrics.pearson_r(out.samples[m], out.samples["network"])
    for who in ("network", "IS", "ELS"):
        out.novelty[who] = metrics.nearest_neighbours(out.samples[who], images)[0]
    return out


def _fingerprint(name: str, scales, n_images: int) -> str:
    """What a stored chunk depends on: the weights' bytes, the scales, the training set's size."""
    digest = hashlib.sha256(pretrained.weights_path(name).read_bytes())
    subset = pretrained.RECIPES[name].get("data")  # chapter 09's networks on fewer digits
    digest.update(json.dumps([scales.to_dict(), n_images, pretrained.DATASET, *([subset] if subset else [])]).encode())
    return digest.hexdigest()[:12]


def _write_part(path, part: Comparison) -> None:
    """Keep a finished chunk (nothing when there is no cache folder); written whole or not at all."""
    if path is None:
        return
    fields = ("seeds", "samples", "r", "novelty", "seconds", "predictions", "times")
    records.save_whole({f: getattr(part, f) for f in fields}, path)


def _read_part(path, name: str, seeds) -> Comparison | None:
    """A stored chunk for these seeds, or None when there is none or it cannot be trusted.

    Anything short of a well-formed chunk (truncated, foreign, wrong types, missing fields, other
    seeds, tensors of the wrong length) is treated as missing: the chunk is sampled again and the
    bad file overwritten, so a damaged cache can cost time but never a wrong number.
    """
    if path is None or not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a truncated or foreign file: sample this chunk again
        return None
    if not _well_formed(state, list(seeds)):
        return None
    return Comparison(
        name,
        list(seeds),
        state["samples"],
        state["r"],
        state["novelty"],
        state["seconds"],
        state.get("predictions", {}),  # parts cached before predictions were kept have none
        state.get("times", []),
        labels_of(name, seeds),
    )


def _well_formed(state, seeds: list) -> bool:
    """Whether a loaded chunk has every field, for exactly these seeds, with one row per seed."""
    if not isinstance(state, dict) or state.get("seeds") != seeds:
        return False
    n = len(seeds)

    def tensors(field, rows_axis=0, needed=()):
        value = state.get(field)
        if not isinstance(value, dict) or not set(needed) <= set(value):
            return False
        return all(
            isinstance(v, torch.Tensor) and v.dim() > rows_axis and v.shape[rows_axis] == n and v.is_floating_point()
            for v in value.values()
        )

    who = ("network", *MACHINES)
    seconds = state.get("seconds")
    return (
        tensors("samples", needed=who)
        and tensors("r", needed=MACHINES)
        and tensors("novelty", needed=("network", "IS", "ELS"))
        and isinstance(seconds, dict)
        and set(who) <= set(seconds)
        and all(isinstance(v, (int, float)) for v in seconds.values())
        and (not state.get("predictions") or tensors("predictions", rows_axis=1, needed=who))
        and isinstance(state.get("times", []), list)
    )


def _merge(name: str, seeds, parts) -> Comparison:
    out = Comparison(name, list(seeds), labels=labels_of(name, seeds))
    out.samples = {k: torch.cat([p.samples[k] for p in parts]) for k in parts[0].samples}
    out.r = {k: torch.cat([p.r[k] for p in parts]) for k in parts[0].r}
    out.novelty = {k: torch.cat([p.novelty[k] for p in parts]) for k in parts[0].novelty}
    out.seconds = {k: sum(p.seconds[k] for p in parts) for k in parts[0].seconds}
    if all(p.predictions for p in parts):  # [steps, S, ...]: seeds on the second axis
        out.predictions = {k: torch.cat([p.predictions[k] for p in parts], dim=1) for k in parts[0].predictions}
        out.times = list(parts[0].times)
    return out


def run_key(quick: bool, n_seeds: int) -> str:
    """Where a run is kept in the metadata: "quick" (8 seeds), "full" (100) or "seeds-N"."""
    if quick:
        return "quick"
    return "full" if n_seeds == len(FULL_SEEDS) else f"seeds-{n_seeds}"


def record(name: str, row: dict, quick: bool) -> None:
    """Keep a run's summary in records/reproduction/NAME.json, under "quick", "full" or "seeds-N",
    so that the chapters can show what the command measured beside what they measure."""
    runs = records.read("reproduction", name)
    key = run_key(quick, row["seeds"])
    option = {"quick": " --quick", "full": ""}.get(key, f" --seeds {row['seeds']}")
    entry = {
        **row,
        "command": "python -m elslib reproduce" + option + f" --names {name}",
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "weights_sha256": pretrained.metadata(name).get("sha256"),  # which weights: see stored_runs
    }
    runs[key] = entry
    records.write("reproduction", name, runs)


def stored_runs(name: str) -> dict[str, dict]:
    """The runs `record` kept for the shipped weights of `name`, {"quick" | "seeds-N" | "full": summary},
    fewest seeds first. A run recorded for other weights (its ``weights_sha256`` differs: the network was
    retrained since) is left out: its numbers say nothing about the shipped network."""
    shipped = pretrained.metadata(name).get("sha256")
    runs = {
        key: run
        for key, run in records.read("reproduction", name).items()
        if run.get("weights_sha256", shipped) == shipped
    }
    return _fewest_seeds_first(runs)


def first_edition_runs(name: str) -> dict[str, dict]:
    """The runs recorded for the first edition's weights of `name` (records/reproduction/NAME-first-edition.json),
    kept beside the retrained network's for comparison; {} for a network not retrained. Fewest seeds first."""
    pretrained.check_names([name])
    return _fewest_seeds_first(records.read("reproduction", f"{name}-first-edition"))


def largest_run(runs: dict[str, dict]) -> dict | None:
    """The run with the most seeds of `runs` (as :func:`stored_runs` returns them; the first such on a tie),
    None when there is none: the one chapters quote."""
    return max(runs.values(), key=lambda run: run["seeds"], default=None)


def r_by_seed(run: dict, machine: str = "ELS") -> dict[int, float]:
    """A stored run's r between the machine and the network, seed by seed: ``{seed: r}``."""
    check_choice(machine, "machine", list(MACHINES))
    if not isinstance(run, dict) or "per_seed" not in run:
        raise ValueError(f"run must be a stored run with its per_seed rows (reproduce.stored_runs), got {run!r:.80}")
    return dict(zip(run["per_seed"]["seed"], run["per_seed"][f"r_{machine}"], strict=True))


def seed_by_seed(run_a: dict, run_b: dict, machine: str = "ELS") -> dict:
    """Two stored runs (of two networks) compared on the seeds both hold: is the machine's r with network a
    lower than with network b on most of them? A 16-seed median moves by a few hundredths with the seeds,
    so a gap between two medians is a weak verdict; the count of seeds is a sign test.

    Returns ``seeds`` (how many both hold), ``lower`` and ``higher`` (on how many r is lower, higher for a),
    ``median_a`` and ``median_b`` (the median r over those seeds) and ``verdict``: "lower" or "higher" when
    at least three quarters of the shared seeds say so (with 16 seeds, 12 or more: a one-sided sign test at
    about p = 0.04), else "no clear difference"."""
    r_a, r_b = r_by_seed(run_a, machine), r_by_seed(run_b, machine)
    shared = sorted(set(r_a) & set(r_b))
    if not shared:
        raise ValueError(f"run_a and run_b share no seed (run_a: {sorted(r_a)[:5]}..., run_b: {sorted(r_b)[:5]}...)")
    lower = sum(r_a[s] < r_b[s] for s in shared)
    higher = sum(r_a[s] > r_b[s] for s in shared)
    verdict = (
        "lower" if lower >= 0.75 * len(shared) else "higher" if higher >= 0.75 * len(shared) else "no clear difference"
    )
    median_a, median_b = (float(torch.tensor([r[s] for s in shared]).median()) for r in (r_a, r_b))
    return {
        "seeds": len(shared),
        "lower": lower,
        "higher": higher,
        "median_a": median_a,
        "median_b": median_b,
        "verdict": verdict,
    }


def _fewest_seeds_first(runs: dict[str, dict]) -> dict[str, dict]:
    return dict(sorted(runs.items(), key=lambda kv: kv[1]["seeds"]))


def _machine() -> str:
    """Where the machines ran (they take the GPU when there is one), for the record."""
    where = _device.describe()
    cpu = f"{pretrained.cpu_name()}, {torch.get_num_threads()} threads"
    return cpu if where.startswith("cpu") else f"{where}; CPU {cpu}"


def table(rows: list[dict]) -> str:
    """A Markdown table of summaries (median over seeds)."""
    head = (
        "| network | seeds | r ELS | r LS | r IS | r^2 ELS | r^2 LS | r^2 IS | ELS beats IS "
        "| NN dist. network | NN dist. IS |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['network']} | {r['seeds']} | {r['r_ELS']:.3f} | {r['r_LS']:.3f} | {r['r_IS']:.3f} "
        f"| {r['r2_ELS']:.3f} | {r['r2_LS']:.3f} | {r['r2_IS']:.3f} | {100 * r['ELS_beats_IS']:.0f}% "
        f"| {r['nn_network']:.3f} | {r['nn_IS']:.3f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def figure(comparison: Comparison, path, columns: int = 8):
    """Network samples above the ELS machine's predictions from the same noise, and the IS
    machine's (which copy training images); each ELS column is titled with its r, each network
    column with its seed (and the digit asked for, for a class-conditional network)."""
    import matplotlib.pyplot as plt

    from .plots import show_image

    n = min(columns, len(comparison.seeds))
    rows = [("network", "CNN"), ("ELS", "ELS machine"), ("IS", "ideal machine")]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.3 * n, 1.45 * len(rows) + 0.5), squeeze=False)
    for i, (who, label) in enumerate(rows):
        for j in range(n):
            title = f"r={float(comparison.r[who][j]):.2f}" if who != "network" else f"seed {comparison.seeds[j]}"
            if who == "network" and comparison.labels is not None:
                title += f", a {comparison.labels[j]}"  # the digit a class-conditional network was asked for
            show_image(axes[i, j], comparison.samples[who][j], title)
        axes[i, 0].set_ylabel(label)
    fig.suptitle(f"{comparison.name}: same noise, three denoisers (r = Pearson correlation with the CNN)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def default_names() -> list[str]:
    """The shipped networks whose P(t) is calibrated (calibrating one takes long); all shipped
    ones when none is."""
    shipped = pretrained.available()
    return [n for n in shipped if "scales" in pretrained.metadata(n)] or shipped


def run(
    quick: bool = False,
    names=None,
    out_dir="reproduce-results",
    progress: bool = True,
    seeds: int | None = None,
    record_runs: bool = False,
) -> str:
    """Compare every shipped network with the machines; write RESULTS.md, a JSON and figures to `out_dir`.

    seeds: how many noise seeds (0, 1, ..., seeds - 1); default 8 with `quick`, else 100.
    record_runs: also keep each summary in the committed records (and a new calibration in the
    weights' metadata): the ``--record`` of the command, for whoever updates the course.
    """
    names = pretrained.check_names(names)  # before any data loads or sampling starts
    if record_runs:
        records.folder()  # before hours of work: where would the records go? (raises if nowhere)
    names = names or default_names()
    if not names:
        raise FileNotFoundError("no shipped network weights found; train one with `python -m elslib train NAME`")
    if seeds is None:
        seeds = QUICK_SEEDS if quick else FULL_SEEDS
    else:
        seeds = range(check_positive_int(seeds, "seeds"))
        quick = quick and len(seeds) == len(QUICK_SEEDS)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    start = time.perf_counter()
    for name in names:
        comparison = compare(
            name,
            seeds,
            calibration_seeds=4 if quick else 8,
            progress=progress,
            cache_dir=out / "chunks",
            record=record_runs,
        )
        rows.append({**comparison.summary(), "seconds": {k: round(v, 1) for k, v in comparison.seconds.items()}})
        figure(comparison, out / f"{name}.png")
        if record_runs:
            record(name, rows[-1], quick)
    text = table(rows) + (
        f"\nMedian over seeds of the Pearson correlation r between each machine's final sample and the network's "
        f"(the paper's Table 1 reports r, calling it r^2); r^2 is the median of the squares. NN dist. = RMS "
        f"distance to the nearest training image. {len(seeds)} seeds, DDIM 20 steps, "
        f"{time.perf_counter() - start:.0f} s in all.\n"
    )
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "RESULTS.md").write_text(text)
    return text
