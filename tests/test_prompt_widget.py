"""The prompt explorer of chapter 12: it shows what `generate` makes, names unknown words, and refuses bad arguments."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch

from elslib import reader
from elslib.course import app
from elslib.course.widgets import PromptExplorer, prompt
from elslib.text_to_image import generate, pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def explorer():
    e = PromptExplorer(prompt="a thick seven", seed=3, steps=6, guidance=3.0, progress=False)
    yield e
    e.close()


def test_it_shows_the_image_generate_makes_and_the_readers_verdict(explorer):
    e = explorer
    expected = generate(["a thick seven"], [3], steps=6, guidance=3.0)[0]
    assert np.array_equal(e.shown["image"], expected[0].numpy()) and e.shown["error"] is None
    digit, p = reader.read(expected[None])
    assert e.shown["digit"] == int(digit[0]) and e.shown["probability"] == pytest.approx(float(p[0]))
    along = pipeline.predictions("a thick seven", 3, steps=6, guidance=3.0)
    assert e.shown["strip_steps"][-1] == 6 and len(e.shown["predictions"]) == len(e.shown["strip_steps"])
    assert np.array_equal(e.shown["predictions"][-1], along[-1, 0].numpy())
    torch.testing.assert_close(along[-1], expected, atol=1e-4, rtol=0)  # the last prediction: the image


def test_its_controls_change_what_it_shows(explorer):
    e = explorer
    first = e.shown["image"].copy()
    e.seed.value = 4
    assert e.shown["seed"] == 4 and not np.array_equal(e.shown["image"], first)
    e.guidance.value = 0.0
    assert e.shown["guidance"] == 0.0
    assert np.array_equal(e.shown["image"], generate("a thick seven", 4, steps=6, guidance=0.0)[0, 0].numpy())
    e.steps.value = 2
    assert e.shown["strip_steps"] == [1, 2] and e.shown["predictions"].shape == (2, 32, 32)
    e.prompt.value = "a thin 1"
    e.steps.value, e.guidance.value, e.seed.value = 6, 3.0, 3
    assert e.shown["prompt"] == "a thin 1" and e.shown["digit"] == 1
    e.prompt.value = "a thick seven"  # back to a setting seen before: from the cache, the same bits
    assert np.array_equal(e.shown["image"], first) and e.last_seconds < 1.0


def test_an_unknown_word_is_named_on_screen_not_an_exception(explorer):
    e = explorer
    e.prompt.value = "a purple seven"
    assert "image" not in e.shown and "'purple'" in e.shown["error"]
    assert "purple" in e.status.value and "known words" in e.status.value
    e.prompt.value = "a thick seven"
    assert e.shown["error"] is None
    assert "purple" not in e.status.value


def test_its_png_fallback_has_the_size_of_the_others(explorer):
    from PIL import Image

    bundle = explorer._repr_mimebundle_()
    png = base64.b64decode(bundle["image/png"])
    width, height = Image.open(io.BytesIO(png)).size
    assert png == explorer.png and 500 <= width <= 1100 and 200 <= height <= 700
    assert "Args:" in PromptExplorer.__doc__


def test_a_prompt_with_an_unknown_word_can_come_first():
    e = PromptExplorer(prompt="a sevn", progress=False)
    assert "'sevn'" in e.shown["error"] and "seven" in e.shown["error"]  # did you mean seven?
    e.close()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(prompt=7), "prompt must be a string"),
        (dict(prompt=None), "prompt must be a string"),
        (dict(seed=-1), "seed must be an integer from 0"),
        (dict(seed=2.5), "seed must be an integer"),
        (dict(steps=0), "steps must be an integer >= 1"),
        (dict(steps=51), "steps must be an integer from 1 to 50"),
        (dict(steps="20"), "steps must be"),
        (dict(guidance=-1.0), "guidance must be a number from 0 to 10"),
        (dict(guidance=float("nan")), "guidance must be"),
        (dict(guidance=True), "guidance must be"),
        (dict(pipeline="shipped"), "pipeline must be a text_to_image.Pipeline"),
    ],
)
def test_a_bad_argument_is_refused_before_anything_loads(kwargs, match, monkeypatch):
    monkeypatch.setattr(prompt, "shipped_pipeline", lambda: pytest.fail("loaded the pipeline first"))
    with pytest.raises(ValueError, match=match):
        PromptExplorer(**kwargs, progress=False)


def test_the_strip_spreads_its_steps():
    assert prompt.strip_steps(20) == [1, 6, 10, 15, 20]
    assert prompt.strip_steps(1) == [1] and prompt.strip_steps(3) == [1, 2, 3]


def test_it_has_a_tab_in_the_app():
    assert ("12 Prompt", "PromptExplorer") in app.TABS
    assert all(a["steps"] <= 20 for a in (app.settings(True)["PromptExplorer"], app.settings(False)["PromptExplorer"]))
    assert torch.get_num_threads() == 1
