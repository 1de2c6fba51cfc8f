"""Command line: ``python -m elslib info``."""

from __future__ import annotations

import argparse
import platform
import sys
import time


def info() -> int:
    """Print versions, the device, and which datasets load right now."""
    import numpy
    import torch

    import elslib
    from elslib import data, device

    print(f"elslib      {elslib.__version__}")
    print(f"python      {platform.python_version()} ({platform.system()} {platform.machine()})")
    print(f"torch       {torch.__version__}")
    print(f"numpy       {numpy.__version__}")
    print(f"device      {device.describe()}")
    print("datasets:")
    for name, (_, description) in data.DATASETS.items():
        if not data.available(name):
            print(f"  {name:<14} {'not cached: downloads on first load':<40} {description}")
            continue
        start = time.perf_counter()
        try:
            images, _ = data.load(name)
            status = f"ok   {tuple(images.shape)} ({time.perf_counter() - start:.1f} s)"
        except Exception as err:  # report, do not crash: this command is for diagnosing setups
            status = f"FAILED: {type(err).__name__}: {err}"
        print(f"  {name:<14} {status:<40} {description}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elslib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, device and which datasets load offline")
    args = parser.parse_args(argv)
    if args.command == "info":
        return info()
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
