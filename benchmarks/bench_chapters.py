"""How long each chapter runs, top to bottom in a fresh kernel, in full and in fast mode.

    python benchmarks/bench_chapters.py                    # every chapter, both modes, table on stdout
    python benchmarks/bench_chapters.py --write            # also put the table in chapters/README.md
    python benchmarks/bench_chapters.py --modes full 07 08 # some chapters, one mode

Each run executes a copy of the notebook (the chapter itself is never written) and reports the
wall time and the longest cell, from the kernel's own timestamps. The budget (design of the
course) is at most 10 minutes per chapter in full mode on a 2-core CPU, and no cell over about
90 s without a progress bar. Timings depend on the machine and on what else runs; the table names
the hardware and the load, and tests never assert them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from elslib.pretrained import cpu_name  # one owner of how the machine is named

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
README = CHAPTERS / "README.md"
START, END = "<!-- chapter-times:start -->", "<!-- chapter-times:end -->"


def _stamp(value) -> float:
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def run(path: Path, fast: bool) -> dict:
    """Execute one chapter in a fresh kernel; wall seconds, the longest cell and its seconds."""
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("ELS_FAST")
    os.environ["ELS_FAST"] = "1" if fast else "0"
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        client = NotebookClient(
            nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(CHAPTERS)}}
        )
        start = time.perf_counter()
        client.execute()
        wall = time.perf_counter() - start
    finally:
        if env_before is None:
            os.environ.pop("ELS_FAST", None)
        else:
            os.environ["ELS_FAST"] = env_before
    longest, where = 0.0, None
    for k, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            seconds = _stamp(timing["shell.execute_reply"]) - _stamp(timing["iopub.execute_input"])
            if seconds > longest:
                longest, where = seconds, k
    return {"wall": wall, "longest": longest, "cell": where}


def table(rows: dict, modes: list[str]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (
        f"Measured {dt.date.today().isoformat()} with `python benchmarks/bench_chapters.py --write` on "
        f"**{cpu_name()}, {os.cpu_count()} cores**, Python {platform.python_version()}, "
        f"torch {_torch_version()}, no GPU used; load average {load:.1f} at the end.\n\n"
    )
    cols = " | ".join(f"{m} mode: total | longest cell" for m in modes)
    lines = [head + f"| chapter | {cols} |", "|---|" + "---|---|" * len(modes)]
    for name, by_mode in rows.items():
        cells = []
        for m in modes:
            r = by_mode.get(m)
            cells.append("-- | --" if r is None else f"{_fmt(r['wall'])} | {_fmt(r['longest'])} (cell {r['cell']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge(stored: str, rows: dict, modes: list[str]) -> str:
    """The stored table with the rows of `rows` replaced (both modes must have been rerun) and a
    line under its header naming them, the date, the machine and the load."""
    if sorted(modes) != ["fast", "full"]:
        raise SystemExit("--write for some chapters needs both modes (the table has a column for each)")
    fresh = {line.split(" | ")[0][2:]: line for line in table(rows, modes).splitlines() if line.startswith("| ")}
    fresh.pop("chapter", None)
    lines = [
        fresh.get(line.split(" | ")[0][2:], line) if line.startswith("| ") else line for line in stored.splitlines()
    ]
    names = [line.split(" | ")[0][2:] for line in lines if line.startswith("| ")]
    missing = [name for name in fresh if name not in names]
    body = [i for i, line in enumerate(lines) if line.startswith("| ")]
    for name in missing:  # a new chapter: its row goes where its number sorts
        at = next((i for i in body[2:] if lines[i].split(" | ")[0][2:] > name), body[-1] + 1)
        lines.insert(at, fresh[name])
        body = [i for i, line in enumerate(lines) if line.startswith("| ")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    note = (
        f"Rows {', '.join(sorted(fresh))} re-measured {dt.date.today().isoformat()} on **{cpu_name()}, "
        f"{os.cpu_count()} cores** (load average {load:.1f} at the end)."
    )
    notes = []  # earlier notes keep the rows this run did not re-measure
    for line in (line for line in lines if line.startswith("Rows ")):
        rows_named, when = line.removeprefix("Rows ").split(" re-measured ", 1)
        kept = [name for name in rows_named.split(", ") if name not in fresh]
        if kept:
            notes += [f"Rows {', '.join(kept)} re-measured {when}", ""]
    lines = [line for line in lines if not line.startswith("Rows ")]
    head = [i for i, line in enumerate(lines) if line.startswith("| chapter")][0]
    top = lines[:head]
    while top and not top[-1].strip():  # the blank lines the old notes stood between
        top.pop()
    return "\n".join(top + [""] + notes + [note, ""] + lines[head:])


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _torch_version() -> str:
    import torch

    return torch.__version__


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers (default: all)")
    parser.add_argument("--modes", nargs="+", default=["full", "fast"], choices=["full", "fast"])
    parser.add_argument("--write", action="store_true", help="replace the table in chapters/README.md")
    args = parser.parse_args(argv)
    paths = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if p.name[:2] in {c.zfill(2) for c in args.chapters}]
    rows: dict = {}
    for path in paths:
        for mode in args.modes:
            result = run(path, fast=(mode == "fast"))
            rows.setdefault(path.stem, {})[mode] = result
            print(
                f"{path.stem:32s} {mode:4s} {result['wall']:7.1f} s, longest cell {result['longest']:.1f} s", flush=True
            )
    text = table(rows, args.modes)
    print(text)
    if args.write:
        readme = README.read_text(encoding="utf-8")
        if START not in readme or END not in readme:
            raise SystemExit(f"{README} has no {START} ... {END} markers to replace")
        before, rest = readme.split(START, 1)
        stored, after = rest.split(END, 1)
        if args.chapters:  # some chapters: update their rows, keep the others, say which were redone
            text = merge(stored.strip(), rows, args.modes)
        README.write_text(before + START + "\n" + text + "\n" + END + after, encoding="utf-8")
        print(f"wrote the table into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
