"""Recorded runs: what long commands measured, kept in committed files outside the package.

A run of ``python -m elslib reproduce`` takes minutes to hours; the chapters show what it
measured beside what they recompute. Those measurements are *records*, not part of a shipped
network: they live in ``records/KIND/NAME.json`` at the top of the repository (``KIND`` is
"reproduction", for example), never in ``elslib/weights/``, and only an explicit option writes
them (``python -m elslib reproduce --record``). A user's run writes its results into its own
output folder and changes nothing else.

The folder is ``$ELS_RECORDS_DIR`` when set, else the repository's ``records/`` (found beside
the package in a source checkout, or from the current directory or its parent, where the
chapters run).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .checks import check_choice

KINDS = ("reproduction", "quality", "text-to-image", "conditioning", "generalisation")


def folder() -> Path:
    """The records folder (see the module's notes); FileNotFoundError when there is none."""
    env = os.environ.get("ELS_RECORDS_DIR")
    if env:
        return Path(env)
    for base in (Path(__file__).resolve().parents[1], Path.cwd(), Path.cwd().parent):
        if (base / "records").is_dir():
            return base / "records"
    raise FileNotFoundError(
        "no records/ folder found (it comes with the course's repository, beside chapters/); "
        "run from a checkout of the repository or set ELS_RECORDS_DIR"
    )


def path(kind: str, name: str) -> Path:
    """Where the records of `kind` for `name` (a shipped network, say) are kept."""
    check_choice(kind, "kind", KINDS)
    return folder() / kind / f"{name}.json"


def read(kind: str, name: str) -> dict:
    """The records of `kind` for `name`: a dict (empty when nothing was recorded, or when there is
    no records folder, as in an installed package without the repository)."""
    try:
        file = path(kind, name)
    except FileNotFoundError:
        return {}
    if not file.exists():
        return {}
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"the record file {file} is damaged ({err}); restore it from the repository") from err


def save_whole(obj, path) -> Path:
    """``torch.save`` `obj` to `path` whole or not at all (a new file, then renamed), so that a run
    stopped mid-write never leaves a half file for the next one to read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


def write(kind: str, name: str, records: dict) -> Path:
    """Replace the records of `kind` for `name` (written whole: a new file, then renamed)."""
    file = path(kind, name)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    tmp.replace(file)
    return file
