"""The copying explorer of chapter 09: what it shows comes from the stored grid, fast, and bad arguments are named."""

from __future__ import annotations

import base64
import io
import json
import time

import pytest

from elslib import data, memorisation
from elslib.course.widgets import CopyingExplorer, copying

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory):
    """A tiny grid: N = 2 and 8, ELS with P = 3 and the ideal machine, 3 seeds, 4 DDIM steps."""
    out = tmp_path_factory.mktemp("grid")
    memorisation.phase_diagram(
        sizes=[2, 8], patches=[3, None], seeds=3, steps=4, out_dir=out, threshold=0.1, progress=False
    )
    return out


def test_it_shows_the_stored_sample_its_nearest_digit_and_the_verdict(record_dir):
    record = memorisation.load_record(record_dir)
    e = CopyingExplorer(record=record_dir, n=8, patch="whole", seed=1, progress=False)
    cell = record["cells"]["8,whole"]
    assert e.shown["copy"] is True and e.shown["distance"] == cell["nn"][1] < e.shown["threshold"] == 0.1
    assert (e.shown["sample"] == record["samples"]["8,whole"][1, 0].numpy()).all()
    images, _ = data.load("mnist", n=8)
    assert (e.shown["nearest"] == images[cell["nearest"][1], 0].numpy()).all() and e.shown["index"] == cell["nearest"][
        1
    ]
    start = time.perf_counter()
    e.patch.value = "3"  # ELS with 3 x 3 patches: a new image
    assert time.perf_counter() - start < 1.0 and e.last_seconds < 1.0
    assert e.shown["copy"] is False and e.shown["patch"] == "3"
    assert e.shown["copy_fraction"] == record["cells"]["8,3"]["copy_fraction"] == 0.0
    e.n.value = 2
    assert e.shown["n"] == 2 and e.shown["distance"] == record["cells"]["2,3"]["nn"][1]
    e.close()


def test_a_cell_missing_from_a_partial_grid_says_so(record_dir, tmp_path):
    partial = json.loads((record_dir / "phase-diagram.json").read_text())
    del partial["cells"]["8,3"]
    (tmp_path / "phase-diagram.json").write_text(json.dumps(partial))
    (tmp_path / "samples.pt").write_bytes((record_dir / "samples.pt").read_bytes())
    e = CopyingExplorer(record=tmp_path, n=8, patch=3, progress=False)
    assert e.shown["copy"] is None and "sample" not in e.shown
    e.patch.value = "whole"
    assert e.shown["copy"] is True
    e.close()


def test_fewer_seeds_in_a_cell_clip_the_seed_slider(record_dir):
    record = memorisation.load_record(record_dir)
    for key in ("8,3", "8,whole"):  # as the course's record keeps fewer seeds for large N
        cell = record["cells"][key]
        record["cells"][key] = dict(cell, nn=cell["nn"][:2], nearest=cell["nearest"][:2])
    e = CopyingExplorer(record=record, n=2, patch=3, seed=2, progress=False)
    e.n.value = 8
    assert e.seed.max == 1 and e.seed.value == 1 and e.shown["seed"] == 1
    e.close()


def test_its_png_fallback_has_the_size_of_the_others(record_dir):
    from PIL import Image

    e = CopyingExplorer(record=record_dir, n=2, patch=3, progress=False)
    bundle = e._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    width, height = Image.open(io.BytesIO(png)).size
    assert png == e.png and 500 <= width <= 1100 and 200 <= height <= 700
    assert "Args:" in CopyingExplorer.__doc__
    e.close()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n=0), "n must be an integer >= 1"),
        (dict(n=2.5), "n must be"),
        (dict(patch=4), "patch must be an odd integer"),
        (dict(patch="all"), "patch must be an odd integer or 'whole'"),
        (dict(seed=-1), "seed must be an integer"),
        (dict(record=3), "record must be None, a folder"),
    ],
)
def test_a_bad_argument_is_refused_before_anything_loads(kwargs, match, monkeypatch):
    monkeypatch.setattr(memorisation, "load_record", lambda *a: pytest.fail("loaded the record first"))
    with pytest.raises(ValueError, match=match):
        CopyingExplorer(**kwargs, progress=False)


def test_a_value_the_record_lacks_is_named(record_dir, tmp_path):
    for kwargs, match in (
        (dict(n=5), r"n must be one of the record's sizes \[2, 8\], got 5"),
        (dict(n=2, patch=7), r"patch must be one of the record's patch sizes \['3', 'whole'\], got '7'"),
        (dict(n=2, patch=3, seed=3), r"seed must be an integer from 0 to 2"),
    ):
        with pytest.raises(ValueError, match=match):
            CopyingExplorer(record=record_dir, progress=False, **kwargs)
    with pytest.raises(ValueError, match="no stored phase diagram"):
        CopyingExplorer(record=tmp_path, progress=False)


def test_patch_names_follow_the_diagram():
    assert copying.check_patch_choice(None) == copying.check_patch_choice("whole") == "whole"
    assert copying.check_patch_choice(7) == copying.check_patch_choice("7") == "7"
    with pytest.raises(ValueError, match="odd"):
        copying.check_patch_choice("8")


def test_the_course_record_opens_when_present():
    record = memorisation.load_record()
    if record is None:
        pytest.skip("no records/phase-diagram in this checkout")
    n = 10 if 10 in record["sizes"] else record["sizes"][0]
    e = CopyingExplorer(n=n, patch="whole", progress=False)
    assert e.shown["copy"] is True  # the ideal machine copies
    e.close()
