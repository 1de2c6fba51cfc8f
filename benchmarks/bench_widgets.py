"""Benchmark the explorers of elslib.course.widgets: how long each interaction takes, on the CPU.

    python benchmarks/bench_widgets.py                 # default sizes, Markdown table on stdout
    python benchmarks/bench_widgets.py --write         # also put the table in benchmarks/RESULTS.md
    python benchmarks/bench_widgets.py --quick         # tiny sizes: a smoke test of this script

An interaction is setting a control's value from code, exactly what a slider or button does in
the browser; its time (``explorer.last_seconds``) covers the computation, drawing the figure and
encoding the PNG -- everything except sending the PNG to the page. Cheap interactions are
repeated and the median reported; they must stay under 1 s. Long work (sampling a new
trajectory with a score machine) is timed once and marked "progress bar": it shows one.

The explorers use the shipped network "resnet-zeros" when its weights are present, otherwise
a randomly initialised ResNet of the same shape (same cost; the samples are then meaningless).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from elslib import networks, pretrained  # noqa: E402
from elslib.course import widgets as W  # noqa: E402
from elslib.course.widgets import base  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
START, END = "<!-- widgets:start -->", "<!-- widgets:end -->"
LIMIT = 1.0  # seconds an interaction may take


def network():
    if "resnet-zeros" in pretrained.available():
        return "resnet-zeros", "shipped resnet-zeros"
    torch.manual_seed(0)
    return networks.ResNet(**pretrained.RECIPES["resnet-zeros"]["config"]).eval(), "untrained ResNet (no weights yet)"


def timed(explorer, control, values) -> list[float]:
    """Set the control to each value in turn; the time of each interaction."""
    out = []
    for v in values:
        control.value = v
        out.append(explorer.last_seconds)
    return out


def clicked(explorer, action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(quick: bool):
    n, steps = (20, 4) if quick else (200, 20)
    net, net_name = network()
    rows = []

    def row(widget, interaction, seconds, long=False):
        seconds = seconds if isinstance(seconds, list) else [seconds]
        med = statistics.median(seconds)
        verdict = "progress bar" if long else ("yes" if med < LIMIT else "**no**")
        if interaction.startswith("build"):  # running the cell, not an interaction
            verdict = "cell run" + (", progress bar" if long else "")
        rows.append((widget, interaction, med, len(seconds), verdict))
        print(f"  {widget:22s} {interaction:48s} {med:7.3f} s  {verdict}", file=sys.stderr, flush=True)

    def build(make):
        start = time.perf_counter()
        e = make()
        return e, time.perf_counter() - start

    e, s = build(lambda: W.NoiseExplorer(progress=False))
    row("NoiseExplorer", "build (default state drawn)", s)
    row("NoiseExplorer", "move t", timed(e, e.t, [0.1, 0.3, 0.5, 0.7, 0.9, 0.6]))
    row("NoiseExplorer", "new noise seed", timed(e, e.seed, [1, 2, 3]))
    row("NoiseExplorer", "new image", timed(e, e.index, [1, 2, 3]))
    row("NoiseExplorer", "switch schedule", timed(e, e.schedule, ["linear", "cosine", "linear"]))
    row("NoiseExplorer", "switch dataset", timed(e, e.dataset, ["photos", "faces", "mnist"]))

    e, s = build(lambda: W.ReverseProcessPlayer(net, steps=steps, progress=False))
    row("ReverseProcessPlayer", f"build (network, {steps} DDIM steps)", s)
    row("ReverseProcessPlayer", "move the step slider / play", timed(e, e.step, [0, 5, 10, 15, 19, 3][:steps]))
    e.step.value = 0
    row("ReverseProcessPlayer", "step button", [clicked(e, e.forward.click) for _ in range(3)])
    row("ReverseProcessPlayer", "new seed (network trajectory)", timed(e, e.seed, [1, 2]))
    row("ReverseProcessPlayer", "back to a seed seen before", timed(e, e.seed, [0]))
    images = W.helpers.training_set("mnist", n)[0]
    e, s = build(lambda: W.ReverseProcessPlayer(W.helpers.make_machine("ELS", images), steps=steps, progress=False))
    row("ReverseProcessPlayer", f"build (ELS on {n} digits)", s, long=True)

    e, s = build(lambda: W.MachineComparer(net, n_images=n, steps=steps, progress=False))
    row("MachineComparer", f"build (IS, LS, ES, ELS on {n} digits + net)", s, long=True)
    row("MachineComparer", "new seed (5 trajectories)", timed(e, e.seed, [1]), long=True)
    row("MachineComparer", "back to a seed seen before", timed(e, e.seed, [0, 1, 0]))
    row("MachineComparer", "new patch size (LS + ELS)", timed(e, e.patch_size, [5]), long=True)
    row("MachineComparer", "back to a patch size seen before", timed(e, e.patch_size, [7, 5, 7]))
    row("MachineComparer", "new padding (ELS)", timed(e, e.padding, ["circular"]), long=True)

    e, s = build(lambda: W.MosaicInspector(n_images=n, steps=steps, progress=False))
    row("MosaicInspector", f"build (ELS sample + explain, {n} digits)", s, long=True)
    row("MosaicInspector", "choose a pixel", timed(e, e.col, [3, 10, 16, 22, 28]))
    row("MosaicInspector", "explain another step", timed(e, e.step, [steps // 2]), long=True)
    row("MosaicInspector", "back to a step seen before", timed(e, e.step, [steps - 1, steps // 2]))

    e, s = build(lambda: W.ScaleScheduleEditor(net, n_images=n, steps=steps, progress=False))
    row("ScaleScheduleEditor", f"build (constant P, {n} digits + net)", s, long=True)
    row("ScaleScheduleEditor", "switch mode", timed(e, e.mode, ["drawn", "constant", "drawn"]))
    row("ScaleScheduleEditor", "drag a knot of the curve", timed(e, e.knots[2], [9, 11, 5]))
    # A step depends only on the P of the steps before it: changing the knot of t in (0.4, 0.6]
    # re-runs the steps from t = 0.6 down; the knot of t in (0, 0.2] only the last fifth.
    row("ScaleScheduleEditor", "sample after the t≈0.5 knot (first 40% cached)", clicked(e, e.sample), long=True)
    e.knots[0].value = 3
    row("ScaleScheduleEditor", "sample after the t≈0.1 knot (first 80% cached)", clicked(e, e.sample), long=True)

    e, s = build(lambda: W.LocalityProbe(net, progress=False))
    row("LocalityProbe", "build", s)
    row("LocalityProbe", "move the pixel", timed(e, e.col, [3, 8, 20, 28, 16]))
    row("LocalityProbe", "move t", timed(e, e.t, [0.1, 0.3, 0.9]))
    row("LocalityProbe", "change P", timed(e, e.patch_size, [3, 9, 15]))
    return rows, net_name, n, steps, threads_table(net, images)


def threads_table(net, images) -> list[tuple]:
    """Why the explorers compute with one torch thread: the same work with 1 and 2 threads."""
    from elslib import sampling

    if isinstance(net, str):
        net = pretrained.load(net, device="cpu")
    els = W.helpers.make_machine("ELS", images)
    x = sampling.noise_like((1, 1, 32, 32), 0)
    els(x, 0.5)  # build the key tables first

    def gradient():
        xx = x.clone().requires_grad_(True)
        torch.autograd.grad(net(xx, 0.5)[0, 0, 16, 16], xx)

    out, before = [], torch.get_num_threads()
    for name, work in [
        ("ResNet forward + backward (LocalityProbe)", gradient),
        ("one ELS call, P = 7", lambda: els(x, 0.5)),
    ]:
        times = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            work()
            start = time.perf_counter()
            for _ in range(3):
                work()
            times[threads] = (time.perf_counter() - start) / 3
        out.append((name, times[1], times[2]))
        print(f"  {name:42s} 1 thread {times[1]:.3f} s, 2 threads {times[2]:.3f} s", file=sys.stderr, flush=True)
    torch.set_num_threads(before)
    return out


def table(rows, net_name, n, steps, threads) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "## Widgets",
        "",
        f"`python benchmarks/bench_widgets.py --write`, {time.strftime('%Y-%m-%d')}: {pretrained.cpu_name()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__} with {base.THREADS or torch.get_num_threads()} thread(s) "
        f"for the explorers' work, Python {platform.python_version()}; network: {net_name}; machines on {n} MNIST "
        f"digits, {steps} DDIM steps. Load average at the end: {load:.1f} (the CPU was shared).",
        "",
        "Seconds per interaction (median of the repeats), computation + drawing + PNG encoding. "
        '"yes": under 1 s; "progress bar": long work that shows one and is cached afterwards; '
        '"cell run": building the explorer (the first load of a dataset included), not an interaction.',
        "",
        "| explorer | interaction | seconds | repeats | under 1 s |",
        "|---|---|---:|---:|---|",
    ]
    lines += [f"| {w} | {i} | {s:.3f} | {k} | {v} |" for w, i, s, k, v in rows]
    lines += [
        "",
        "Why one thread (`elslib.course.widgets.base.THREADS = 1`): the same work with torch's 1 and 2 threads on this "
        "shared CPU (seconds per call, mean of 3). Threads that wait for each other on a busy CPU cost far more "
        "than they save on one image.",
        "",
        "| work | 1 thread | 2 threads |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {one:.3f} | {two:.3f} |" for name, one, two in threads]
    return "\n".join(lines) + "\n"


def write(section: str) -> None:
    """Put the section between its markers in RESULTS.md (appended the first time); nothing else changes."""
    block = f"{START}\n{section}{END}\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END) + r"\n?", lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test of this script)")
    ap.add_argument("--write", action="store_true", help="write the table into benchmarks/RESULTS.md")
    args = ap.parse_args()
    section = table(*run(args.quick))
    print(section)
    if args.write and not args.quick:
        write(section)


if __name__ == "__main__":
    main()
