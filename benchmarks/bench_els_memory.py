"""Does a call of the ELS machine need more memory for a larger batch? Seconds and peak memory per call.

    python benchmarks/bench_els_memory.py                      # N = 500 digits, batches 1, 64, 256
    python benchmarks/bench_els_memory.py --n 5000 --batches 1 8

Each (batch, t) row runs in a fresh process: build the zero-padded ELS machine (P = 7) on the first
N MNIST digits, make one warm-up call (so that the key tables exist), then reset the peak-memory
counter and time one call. "extra MB" is the peak resident memory during the call minus the memory
before it: the call's own scratch. Linux only (it reads /proc/self/status and resets the peak
through /proc/self/clear_refs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(n: int, batch: int, t: float) -> dict:
    import torch

    from elslib import data, machines, sampling, schedules

    torch.set_num_threads(2)
    images, _ = data.load("mnist", n=n)
    den = machines.ELSDenoiser(images, patch_size=7, padding="zeros")
    x = schedules.cosine().add_noise(images[:1].repeat(batch, 1, 1, 1), t, sampling.noise_like((batch, 1, 32, 32)))
    den(x[:1], t)  # builds the key tables
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    start = time.perf_counter()
    den(x, t)
    seconds = time.perf_counter() - start
    return {"batch": batch, "t": t, "seconds": seconds, "rss_before": before, "extra": _status_mb("VmHWM") - before}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="training digits (default 500)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--times", type=float, nargs="+", default=[0.5, 0.05])
    parser.add_argument("--one", nargs=3, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        n, batch, t = args.one
        print(json.dumps(one(int(n), int(batch), t)))
        return 0
    print("| N | batch | t | s / call | RSS before call MB | extra MB in call |\n|---|---|---|---|---|---|")
    for t in args.times:
        for batch in args.batches:
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(args.n), str(batch), str(t)], capture_output=True, text=True
            )
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {args.n} | {batch} | {t} | {r['seconds']:.2f} | {r['rss_before']:.0f} | {r['extra']:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
