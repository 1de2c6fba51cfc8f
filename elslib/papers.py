"""Figures the course cites from papers: one table, each figure with its source.

A chapter never types a paper's number into its prose; it prints it from here, so that every cited
figure has one owner and one reference::

    from elslib import papers
    papers.table1("MNIST", "ResNet")        # {"ELS": 0.94, "LS": 0.82, "IS": 0.61}
    print(papers.cite("table1", "CIFAR10", "UNet + attention", "ELS"))
"""

from __future__ import annotations

from dataclasses import dataclass

KAMB_GANGULI = (
    "M. Kamb, S. Ganguli, An analytic theory of creativity in convolutional diffusion models, ICML 2025, "
    "arXiv:2412.20292"
)


@dataclass(frozen=True)
class Figure:
    """One cited number: its value, what it measures, and where it is printed."""

    value: float
    what: str
    source: str

    def __str__(self) -> str:
        return f"{self.value:g} ({self.what}; {self.source})"


_TABLE1_WHAT = "median over 100 seeds of the Pearson r between the machine's and the network's samples"
_TABLE1_SOURCE = KAMB_GANGULI + ", Table 1 (labelled r^2 there; the paper's code computes Pearson r)"

# (dataset, network) -> machine -> median r, as printed in the paper's Table 1
_TABLE1 = {
    ("MNIST", "ResNet"): {"ELS": 0.94, "LS": 0.82, "IS": 0.61},
    ("MNIST", "UNet"): {"ELS": 0.89, "LS": 0.88, "IS": 0.70},
    ("CIFAR10", "ResNet"): {"ELS": 0.95},
    ("FashionMNIST", "ResNet"): {"ELS": 0.94},
    ("CelebA", "ResNet"): {"ELS": 0.96},
    ("CIFAR10", "UNet + attention"): {"ELS": 0.77},
}

FIGURES: dict[tuple, Figure] = {
    ("table1", dataset, network, machine): Figure(
        r, f"{_TABLE1_WHAT}: {machine}, {network} on {dataset}", _TABLE1_SOURCE
    )
    for (dataset, network), row in _TABLE1.items()
    for machine, r in row.items()
}
"""Every cited figure, keyed ("table1", dataset, network, machine)."""


def cite(*key) -> Figure:
    """The cited figure under `key`, e.g. ``cite("table1", "MNIST", "UNet", "LS")``."""
    if key not in FIGURES:
        known = ", ".join(repr(k) for k in FIGURES)
        raise KeyError(f"no cited figure {key!r}; the table holds {known}")
    return FIGURES[key]


def table1(dataset: str, network: str) -> dict[str, float]:
    """The paper's Table 1 row for `network` trained on `dataset`: machine -> median Pearson r."""
    if (dataset, network) not in _TABLE1:
        raise KeyError(f"the paper's Table 1 has no row ({dataset!r}, {network!r}); rows: {sorted(_TABLE1)}")
    return dict(_TABLE1[(dataset, network)])
