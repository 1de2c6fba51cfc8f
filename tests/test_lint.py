"""ruff finds nothing in the chapters (notebooks included), the library or the tests, and formats them as they are."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "chapters", "elslib", "tests"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}{proc.stderr}"


def test_ruff_format_leaves_everything_as_it_is():
    """The code is formatted by `ruff format` (the version pinned in pyproject): no hand layout to keep."""
    folders = ["chapters", "elslib", "tests", "benchmarks", "docs"]
    cmd = [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", *folders]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"run `ruff format {' '.join(folders)}`:\n{proc.stdout}{proc.stderr}"
