"""The course layer: what the chapters need on top of the science, and nothing the science needs.

- this module: fast mode and the setup cell every chapter starts with;
- :mod:`elslib.course.exercises`: the checked exercises (one module per chapter);
- :mod:`elslib.course.student`: student versions of the chapters (solutions blanked);
- :mod:`elslib.course.widgets`: the interactive explorers.

The science core (``elslib.data``, ``machines``, ``sampling`` ...) never imports this package,
and ``import elslib`` does not load it (docs/architecture.md draws the two layers).

Fast mode (``ELS_FAST=1`` in the environment) shrinks every chapter's work (fewer images,
steps and seeds) so that the whole course runs in a few minutes; the tests run it that way.
A chapter asks for its sizes with :func:`pick`::

    n_train = course.pick(fast=100, full=1000)
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str) -> bool:
    """Whether the environment variable `name` is set to 1, true, yes or on (any case)."""
    return os.environ.get(name, "").strip().lower() in _TRUE


FAST: bool = env_flag("ELS_FAST")
"""True when the environment variable ELS_FAST is 1/true/yes/on (read once, at import)."""


def pick(fast, full):
    """``fast`` in fast mode (ELS_FAST=1), ``full`` otherwise: one line per tunable size."""
    return fast if FAST else full


def seed_everything(seed: int = 0) -> None:
    """Seed python's, numpy's and torch's global generators (elslib itself takes explicit seeds)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, quiet: bool = False) -> dict:
    """The first code cell of every chapter: seeds, figure defaults, and one line saying how we run.

    Returns a dict with ``fast``, ``device`` and ``torch`` (version) for the curious.
    """
    import matplotlib as mpl

    import elslib

    seed_everything(seed)
    mpl.rcParams.update(
        {
            "figure.dpi": 90,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "axes.grid": False,
            "figure.max_open_warning": 0,
        }
    )
    info = {"fast": FAST, "device": elslib.device.describe(), "torch": torch.__version__}
    if not quiet:
        mode = "FAST (ELS_FAST=1: small sizes, for tests and a first look)" if FAST else "full"
        print(f"elslib {elslib.__version__} | torch {torch.__version__} | {info['device']} | mode: {mode}")
    return info
