r"""Networks trained on few and on many digits (chapter 09): when does a trained network copy?

Kadkhodaie, Guth, Simoncelli and Mallat (ICLR 2024) trained denoisers on N images and found that
small N gives networks that reproduce their training images, while large N gives networks that
make new ones, so alike that two networks trained on *disjoint* halves of the data draw nearly the
same image from the same seed. This module asks the same of the course's ResNet, trained by
resnet-zeros' recipe on N = 10, 100, 1000, 2500 and 5000 digits (``pretrained.RECIPES``), with
chapter 09's copy rule (``memorisation.copy_threshold``: closer to a training image than the 1st
percentile of real digits' distances to their nearest other digit), and whether the ELS machine,
built on each network's *own* training set at resnet-zeros' calibrated P(t), predicts the samples.

``run`` samples every network from the same seeds and keeps, per network, each seed's distance to
the nearest training digit, the copy verdict and r(ELS, network); per pair, each seed's r between
the two networks and between their two ELS machines. With ``record`` the numbers go to
records/generalisation/networks.json and the samples to records/generalisation/samples.pt, one
network at a time (a long run can stop and continue with ``only``).
"""

from __future__ import annotations

import time

import torch

from . import machines, memorisation, metrics, networks, pretrained, records, sampling
from .checks import check_positive_int
from .reproduce import table_budget

SWEEP = ("resnet-n10-a", "resnet-n100", "resnet-n1000", "resnet-n2500-a", "resnet-zeros")
PAIRS = (("resnet-n10-a", "resnet-n10-b"), ("resnet-n2500-a", "resnet-n2500-b"))
NETWORKS = tuple(dict.fromkeys([*SWEEP, *(name for pair in PAIRS for name in pair)]))
SCALES_FROM = "resnet-zeros"  # the same architecture and recipe on all the data: its P(t) serves them all
SEEDS = 16  # the ELS machine on 2,500-5,000 digits takes ~50 s a seed on a 2-core CPU
STEPS = 20
RECORD = "networks"


def median(values) -> float:
    """The median of `values` (the mean of the middle two for an even count, as numpy)."""
    return float(torch.quantile(torch.as_tensor(values, dtype=torch.float64), 0.5))


def measure(name: str, seeds, threshold: float, scales=None, progress: bool = False) -> tuple[dict, dict]:
    """Sample network `name` and the ELS machine on its own training set from `seeds`.

    threshold: the copy rule's RMS distance (``memorisation.copy_threshold()``); scales: the ELS
    machine's P(t) (default: resnet-zeros' calibration). Returns (row, samples): the row holds per
    seed the RMS distance of the network's sample to its nearest training digit (``nn``), whether
    that is a copy, the same for the ELS sample, and r(ELS, network); samples holds both [S, 1, 32, 32].
    """
    pretrained.check_names([name])
    scales = pretrained.calibrated_scales(SCALES_FROM) if scales is None else scales
    if scales is None:
        raise ValueError(f"scales: {SCALES_FROM!r} has no calibrated P(t) installed; pass scales=")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    images, _ = pretrained.training_set(name)
    noise = sampling.seeded_noise(seeds, images.shape[1:])
    start = time.perf_counter()
    net = networks.as_denoiser(pretrained.load(name, device="cpu"))
    samples = {"network": sampling.ddim(net, noise, steps=STEPS, progress=False)}
    seconds = {"network": round(time.perf_counter() - start, 1)}
    start = time.perf_counter()
    padding = pretrained.RECIPES[name]["config"]["padding"]
    els = machines.ELSDenoiser(images, patch_size=scales, padding=padding, table_budget=table_budget(0.4, None))
    samples["ELS"] = sampling.ddim(els, noise, steps=STEPS, progress=progress)
    seconds["ELS"] = round(time.perf_counter() - start, 1)
    row = {"n": len(images), "seeds": seeds, "seconds": seconds}
    for who, x in samples.items():
        nn, nearest = metrics.nearest_neighbours(x, images)
        row[f"nn_{who}"] = [round(float(d), 5) for d in nn]
        row[f"nearest_{who}"] = [int(i) for i in nearest]
        row[f"copies_{who}"] = [bool(d < threshold) for d in nn]
    row["r_ELS"] = [round(float(r), 5) for r in metrics.pearson_r(samples["ELS"], samples["network"])]
    return row, samples


def summary(row: dict) -> dict:
    """A network's row in brief: the copy fractions, the median distances and the median r."""
    out = {"n": row["n"], "seeds": len(row["seeds"])}
    for who in ("network", "ELS"):
        out[f"copy_fraction_{who}"] = sum(row[f"copies_{who}"]) / len(row["seeds"])
        out[f"median_nn_{who}"] = median(row[f"nn_{who}"])
    out["median_r_ELS"] = median(row["r_ELS"])
    return out


def first_of_pair(result: dict, pair_name: str) -> dict:
    """The row of the first network of the pair "A / B" (its N and seeds are the pair's)."""
    return result["networks"][pair_name.split(" / ")[0]]


def pair(samples_a: dict, samples_b: dict) -> dict:
    """Per seed, r between the two networks' samples and between their two ELS machines' samples."""
    return {
        "r_networks": [round(float(r), 5) for r in metrics.pearson_r(samples_a["network"], samples_b["network"])],
        "r_ELS": [round(float(r), 5) for r in metrics.pearson_r(samples_a["ELS"], samples_b["ELS"])],
    }


def _samples_path():
    return records.path("generalisation", RECORD).with_name("samples.pt")


def stored(seeds: int = SEEDS) -> dict:
    """The recorded run for seeds 0 .. seeds - 1: {"networks": {name: row}, "pairs": {...}, ...}
    ({} when none was recorded)."""
    return records.read("generalisation", RECORD).get(f"seeds-{seeds}", {})


def stored_samples() -> dict:
    """The recorded samples, {name: {"network": [S, 1, 32, 32], "ELS": ...}} ({} when none)."""
    try:
        path = _samples_path()
    except FileNotFoundError:
        return {}
    if not path.exists():
        return {}
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file is named, never half-read
        raise ValueError(f"the samples file {path} is damaged ({err}); restore it from the repository") from err


def run(seeds: int = SEEDS, only=None, record: bool = False, progress: bool = True) -> dict:
    """Measure every network of :data:`NETWORKS` (or those in `only`) on seeds 0 .. seeds - 1, and
    every pair whose two networks are measured (now or, with `record`, by an earlier run of the same
    seeds). Returns {"networks": {name: row}, "pairs": {"A / B": row}, "threshold", "scales"}."""
    seeds = check_positive_int(seeds, "seeds")
    names = list(NETWORKS) if only is None else ([only] if isinstance(only, str) else list(only))
    unknown = [name for name in names if name not in NETWORKS]
    if unknown or not names:
        raise ValueError(f"only: {unknown or names} are not networks of this study; choose from {list(NETWORKS)}")
    pretrained.check_names(names, "only")  # every weight file present before any sampling
    if record:
        records.folder()  # fail now, not after the sampling
    threshold = memorisation.copy_threshold()
    scales = pretrained.calibrated_scales(SCALES_FROM)
    if scales is None:
        raise ValueError(
            f"{SCALES_FROM!r} has no calibrated P(t) installed: calibrate it first (python -m elslib reproduce)"
        )
    key = f"seeds-{seeds}"
    book = records.read("generalisation", RECORD) if record else {}
    result = book.get(key, {"networks": {}, "pairs": {}})
    if result.get("scales") not in (None, scales.to_dict()) or result.get("threshold") not in (None, threshold):
        result = {"networks": {}, "pairs": {}}  # measured with other scales or another rule: start afresh
    result.update(threshold=threshold, scales=scales.to_dict(), scales_from=SCALES_FROM)
    samples = stored_samples() if record else {}
    for name in names:
        if progress:
            print(f"{name}: sampling {seeds} seeds (network, then ELS on its own training set)", flush=True)
        row, samples[name] = measure(name, range(seeds), threshold, scales, progress)
        result["networks"][name] = row
        for a, b in PAIRS:  # a recorded row always has its samples kept beside it
            if name in (a, b) and {a, b} <= result["networks"].keys():
                result["pairs"][f"{a} / {b}"] = pair(samples[a], samples[b])
        if record:  # after every network: a stopped run keeps what it measured
            result.update(
                command=f"python -m elslib generalisation --seeds {seeds} --record",
                date=time.strftime("%Y-%m-%d"),
                machine=f"{pretrained.cpu_name()}, {torch.get_num_threads()} threads",
            )
            book[key] = result
            records.save_whole({k: {w: x.half() for w, x in v.items()} for k, v in samples.items()}, _samples_path())
            records.write("generalisation", RECORD, book)
    return result


def table(result: dict) -> str:
    """Markdown: the N sweep (copy fractions, median distance, median r(ELS, network)) and the pairs."""
    lines = [
        "| network | N | copies (network) | copies (ELS) | median NN distance (network) | median r(ELS, network) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in sorted(result["networks"].items(), key=lambda kv: (kv[1]["n"], kv[0])):
        s = summary(row)
        lines.append(
            f"| {name} | {s['n']} | {s['copy_fraction_network']:.0%} | {s['copy_fraction_ELS']:.0%} "
            f"| {s['median_nn_network']:.3f} | {s['median_r_ELS']:.3f} |"
        )
    if result["pairs"]:
        lines += ["", "| pair (disjoint training sets) | median r(network A, network B) | median r(ELS A, ELS B) |"]
        lines.append("|---|---|---|")
        for name, row in result["pairs"].items():
            lines.append(f"| {name} | {median(row['r_networks']):.3f} | {median(row['r_ELS']):.3f} |")
    return "\n".join(lines) + "\n"


def pair_table(result: dict) -> str:
    """Markdown, one row per seed: r between the two networks of every pair (and between their ELS
    machines), the test of Kadkhodaie et al. seed by seed."""
    if not result.get("pairs"):
        return "no pair measured yet\n"
    names = list(result["pairs"])
    seeds = first_of_pair(result, names[0])["seeds"]
    head = " | ".join(f"r({name}) | r(ELS machines)" for name in names)
    lines = [f"| seed | {head} |", "|---" * (1 + 2 * len(names)) + "|"]
    for k, seed in enumerate(seeds):
        cells = " | ".join(
            f"{result['pairs'][n]['r_networks'][k]:.3f} | {result['pairs'][n]['r_ELS'][k]:.3f}" for n in names
        )
        lines.append(f"| {seed} | {cells} |")
    return "\n".join(lines) + "\n"


def by_size(result: dict) -> list[str]:
    """The names of the measured networks, fewest training digits first."""
    return sorted(result["networks"], key=lambda name: (result["networks"][name]["n"], name))


def samples_figure(result: dict, samples: dict, cols: int = 8, path=None):
    """One row per network (by N), seeds 0 .. cols - 1, copies titled in red; under the first
    network, the training digits nearest to its samples. Saved to `path` when given."""
    import matplotlib.pyplot as plt

    from .plots import show_image

    names = by_size(result)
    cols = min(check_positive_int(cols, "cols"), len(samples[names[0]]["network"]))
    first = result["networks"][names[0]]
    rows = [(name, samples[name]["network"], result["networks"][name]["copies_network"]) for name in names]
    nearest = pretrained.training_set(names[0])[0][first["nearest_network"][:cols]]
    rows.insert(1, (f"nearest to {names[0].removeprefix('resnet-')}", nearest, [False] * cols))
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.2 * cols, 1.25 * len(rows)), squeeze=False)
    for i, (label, images, copies) in enumerate(rows):
        for j in range(cols):
            show_image(axes[i, j], images[j].float(), "copy" if copies[j] else None)
            if copies[j]:
                axes[i, j].title.set_color("#c0392b")
        axes[i, 0].set_ylabel(label.removeprefix("resnet-"), fontsize=8)
    fig.suptitle(f"Seeds 0 to {cols - 1}, one row per network (n10: 10 digits, ..., zeros: all 5000)", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def numbers_figure(result: dict, path=None):
    """Against N: the share of seeds that copy (network, ELS) and r per seed, between ELS and the
    network and between the two networks of each pair (big markers: medians)."""
    import matplotlib.pyplot as plt

    names = by_size(result)
    brief = {name: summary(result["networks"][name]) for name in names}
    ns = [brief[name]["n"] for name in names]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for who, style, colour in (("network", "o-", "#c0392b"), ("ELS", "s--", "#27ae60")):
        label = "network" if who == "network" else "ELS on its training set"
        axes[0].plot(ns, [brief[name][f"copy_fraction_{who}"] for name in names], style, color=colour, label=label)
    axes[0].set(xscale="log", xlabel="training digits N", ylabel="share of seeds that copy", ylim=(-0.05, 1.05))
    for name in names:
        r = result["networks"][name]["r_ELS"]
        axes[1].plot([brief[name]["n"]] * len(r), r, ".", color="#27ae60", alpha=0.35)
    axes[1].plot(ns, [brief[name]["median_r_ELS"] for name in names], "s-", color="#27ae60", label="r(ELS, network)")
    for (pair_name, row), marker in zip(result["pairs"].items(), "oD", strict=False):
        n = first_of_pair(result, pair_name)["n"]
        axes[1].plot([n] * len(row["r_networks"]), row["r_networks"], marker, color="#8e44ad", alpha=0.35, ms=4)
        axes[1].plot(n, median(row["r_networks"]), marker, color="#8e44ad", ms=9, label=f"r within the pair, N = {n}")
    axes[1].set(xscale="log", xlabel="training digits N", ylabel="r per seed (big: median)", ylim=(-0.3, 1.05))
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
