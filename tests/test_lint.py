"""ruff finds nothing in the chapters (notebooks included), the library or the tests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "chapters", "elslib", "tests"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"ruff check found problems:\n{proc.stdout}{proc.stderr}"
