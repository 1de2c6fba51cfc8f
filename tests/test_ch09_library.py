"""The library behind chapter 09: merging and reading a stored phase diagram, and commitment along a trajectory."""

from __future__ import annotations

import json

import pytest
import torch

from elslib import data, dynamics, machines, memorisation, sampling

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A small grid in two runs: 3 seeds for N = 2, 2 seeds for N = 8 (as the course's record does for large N)."""
    base = tmp_path_factory.mktemp("phase")
    kw = dict(patches=[3, None], steps=4, threshold=0.1, progress=False)
    small = memorisation.phase_diagram(sizes=[2], seeds=3, out_dir=base / "small", **kw)
    large = memorisation.phase_diagram(sizes=[8], seeds=2, out_dir=base / "large", **kw)
    load = lambda name: torch.load(base / name / "samples.pt", weights_only=True)  # noqa: E731
    return base, [(small, load("small")), (large, load("large"))]


def test_merge_keeps_every_cell_and_says_its_seeds(two_runs):
    base, runs = two_runs
    merged = memorisation.merge(runs, out_dir=base / "merged")
    assert merged["sizes"] == [2, 8] and merged["patches"] == ["3", "whole"]
    assert merged["seeds"] == 2 and merged["seeds_by_size"] == {"2": 3, "8": 2}
    assert merged["cells"]["2,3"]["seeds"] == 3 and merged["cells"]["8,whole"]["seeds"] == 2
    for key in ("2,3", "8,whole"):
        source = runs[0][0] if key.startswith("2,") else runs[1][0]
        assert merged["cells"][key]["nn"] == source["cells"][key]["nn"]
    assert json.loads((base / "merged" / "phase-diagram.json").read_text()) == merged
    record = memorisation.load_record(base / "merged")
    assert record["missing"] == [] and record["samples"]["8,3"].shape == (2, 1, 32, 32)
    assert torch.equal(record["samples"]["2,whole"], runs[0][1]["2,whole"])
    assert "| 8 | 0% | 100% |" in memorisation.table(record)


def test_merge_refuses_runs_that_disagree(two_runs):
    _, runs = two_runs
    other = dict(runs[1][0], threshold=0.2)
    with pytest.raises(ValueError, match="threshold"):
        memorisation.merge([runs[0], (other, None)])
    with pytest.raises(ValueError, match="at least one"):
        memorisation.merge([])


def test_a_partial_or_absent_record_is_handled(two_runs, tmp_path):
    base, runs = two_runs
    assert memorisation.load_record(tmp_path) is None
    partial = dict(runs[0][0], sizes=[2, 8])  # a grid whose N = 8 row is not computed yet
    (tmp_path / "phase-diagram.json").write_text(json.dumps(partial))
    record = memorisation.load_record(tmp_path)
    assert record["missing"] == ["8,3", "8,whole"] and record["samples"] == {}
    assert "| 8 | - | - |" in memorisation.table(record, "median_nn")
    (tmp_path / "phase-diagram.json").write_text("{damaged")
    with pytest.raises(ValueError, match="damaged"):
        memorisation.load_record(tmp_path)


def test_the_course_record_reads_back_when_present():
    record = memorisation.load_record()
    if record is None:
        pytest.skip("no records/phase-diagram in this checkout")
    for key, cell in record["cells"].items():
        assert len(cell["nn"]) == cell.get("seeds", record["seeds"]) >= record["seeds"]
        if key.endswith(",whole"):
            assert cell["copy_fraction"] == 1.0  # the ideal machine only copies
        if key in record["samples"]:
            assert len(record["samples"][key]) == len(cell["nn"])


@pytest.fixture(scope="module")
def small_set():
    images, labels = data.load("mnist")
    idx = torch.cat([torch.nonzero(labels == k)[:4, 0] for k in (1, 3, 7)])
    noise = torch.cat([sampling.noise_like((1, 1, 32, 32), seed=s) for s in range(3)])
    return images[idx], noise


def test_the_ideal_machine_commits_to_one_image_everywhere(small_set):
    images, noise = small_set
    ideal = machines.IdealDenoiser(images)
    got = dynamics.commitment_along(ideal, noise, steps=6, every=2)
    times, weights = dynamics.weights_along(images, noise, steps=6)
    keep = [0, 2, 4, 5]  # every other call, and the last one
    assert torch.allclose(got["times"], times[keep])
    assert torch.allclose(got["top_weight"], weights[keep].amax(2), atol=1e-4)
    assert (got["top_source_share"] == 1).all() and (got["sources"] == 1).all()
    assert got["sample"].shape == noise.shape


def test_a_patch_machine_commits_pixel_by_pixel(small_set):
    images, noise = small_set
    els = machines.ELSDenoiser(images, patch_size=3, padding="zeros")
    got = dynamics.commitment_along(els, noise, steps=4)
    assert got["top_weight"].shape == got["top_source_share"].shape == got["sources"].shape == (4, 3)
    assert ((got["top_weight"] > 0) & (got["top_weight"] <= 1)).all()
    assert ((got["top_source_share"] > 0) & (got["top_source_share"] <= 1)).all()
    assert (got["sources"] >= 1).all() and (got["sources"][-1] > 1).any()  # more than one image pieced in


def test_commitment_needs_a_machine_and_good_arguments(small_set):
    images, noise = small_set
    with pytest.raises(ValueError, match="explain"):
        dynamics.commitment_along(lambda x, t: x, noise, steps=2)
    ideal = machines.IdealDenoiser(images)
    for kwargs, match in ((dict(every=0), "every"), (dict(steps=0), "steps"), (dict(ink=float("nan")), "ink")):
        with pytest.raises(ValueError, match=match):
            dynamics.commitment_along(ideal, noise, **kwargs)
