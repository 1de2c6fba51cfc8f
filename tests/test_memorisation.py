"""The phase diagram of copying: distances from the definitions, the copy rule, resuming."""

from __future__ import annotations

import json

import pytest
import torch

from elslib import data, memorisation

pytestmark = pytest.mark.usefixtures("one_thread")


def test_leave_one_out_distances_match_brute_force():
    images, _ = data.load("mnist", n=60)
    got = memorisation.leave_one_out_distances(images, chunk=7)
    y = images.flatten(1).double()
    for i in (0, 13, 59):
        others = torch.cat([y[:i], y[i + 1 :]])
        assert got[i].item() == pytest.approx(((others - y[i]) ** 2).mean(1).sqrt().min().item(), abs=1e-12)
    twins = torch.cat([images[:3], images[:1]])  # a duplicate is at distance 0 from its twin
    assert memorisation.leave_one_out_distances(twins)[0] == 0


def test_copy_threshold_is_a_percentile_of_real_digits():
    images, _ = data.load("mnist", n=200)
    d = memorisation.leave_one_out_distances(images)
    assert memorisation.copy_threshold(images, 50) == pytest.approx(float(d.median()), abs=0.01)
    assert memorisation.copy_threshold(images, 1) < memorisation.copy_threshold(images, 50)
    for bad in (0, 100, -1, float("nan")):
        with pytest.raises(ValueError, match="percentile"):
            memorisation.copy_threshold(images, bad)
    with pytest.raises(ValueError, match="at least 2 images"):
        memorisation.copy_threshold(images[:1])


def test_the_diagram_copies_with_the_ideal_machine_and_resumes(tmp_path, monkeypatch):
    calls = []
    real = memorisation.sample_cell

    def counted(n, p, seeds, steps):
        calls.append((n, p))
        return real(n, p, seeds, steps)

    monkeypatch.setattr(memorisation, "sample_cell", counted)
    kw = dict(sizes=[2, 20], patches=[3, None], seeds=3, steps=6, out_dir=tmp_path, threshold=0.1, progress=False)
    first = memorisation.phase_diagram(**kw)
    assert calls == [(2, 3), (2, None), (20, 3), (20, None)]
    for n in (2, 20):
        assert first["cells"][f"{n},whole"]["copy_fraction"] == 1.0  # the ideal machine only copies
        assert first["cells"][f"{n},whole"]["median_nn"] < 1e-3
        assert first["cells"][f"{n},3"]["copy_fraction"] == 0.0  # 3 x 3 patches make new images
    assert json.loads((tmp_path / "phase-diagram.json").read_text()) == first
    samples = torch.load(tmp_path / "samples.pt", weights_only=True)
    assert samples["20,3"].shape == (3, 1, 32, 32)
    # a second run reads every cell back; a damaged cell is sampled again
    calls.clear()
    damaged = sorted(tmp_path.glob("N20-P3-*.pt"))[0]
    damaged.write_bytes(b"not a cell")
    again = memorisation.phase_diagram(**kw)
    assert calls == [(20, 3)]

    def untimed(diagram):  # a cell sampled again takes its own time; everything else must match
        return {**diagram, "cells": {k: {**v, "seconds": None} for k, v in diagram["cells"].items()}}

    assert untimed(again) == untimed(first)  # same seeds, same samples, same numbers
    assert {k: v["seconds"] for k, v in again["cells"].items() if k != "20,3"} == {
        k: v["seconds"] for k, v in first["cells"].items() if k != "20,3"
    }  # the cells read back keep their recorded times
    text = memorisation.table(again)
    assert text.splitlines()[0] == "| N | P = 3 | P = whole |" and "| 2 | 0% | 100% |" in text


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sizes=[0]), "sizes must be an integer >= 1"),
        (dict(sizes=[6000]), "sizes must be at most 5000"),
        (dict(patches=[4]), "patches must be an odd integer"),
        (dict(patches=[]), "patches"),
        (dict(seeds=0), "seeds must be an integer >= 1"),
        (dict(threshold=-1.0), "threshold must be >= 0"),
    ],
)
def test_bad_arguments_are_named_before_any_sampling(kwargs, match, tmp_path, monkeypatch):
    monkeypatch.setattr(memorisation, "sample_cell", lambda *a: pytest.fail("sampled before checking"))
    with pytest.raises(ValueError, match=match):
        memorisation.phase_diagram(**{"out_dir": tmp_path, "threshold": 0.1, **kwargs})


def test_the_command_refuses_a_bad_patch_in_one_line(capsys):
    from elslib.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["phase-diagram", "--patches", "7", "all"])
    assert stop.value.code == 2 and "--patches takes odd integers or 'whole', got 'all'" in capsys.readouterr().err
