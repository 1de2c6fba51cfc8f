r"""PromptExplorer: type a prompt, get a digit, from the course's text-to-image miniature (chapter 12)."""

from __future__ import annotations

from numbers import Real

import ipywidgets as widgets
import numpy as np

from ... import checks, reader
from . import helpers
from .base import LABEL_SIZE, MARK, SLIDER_STYLE, TITLE_SIZE, Explorer, as_array

MAX_STEPS = 50  # the steps slider's top: 20 is the default, beyond 50 nothing visible changes
MAX_GUIDANCE = 10.0  # the guidance slider's top
SHOWN_STEPS = 5  # how many of the decoded predictions along the way the strip shows

_PIPELINE = {}  # the shipped pipeline, loaded once per process


def shipped_pipeline():
    """The shipped text-to-image pipeline (``text_to_image.pipeline.load()``), loaded once."""
    if "shipped" not in _PIPELINE:
        from ...text_to_image import pipeline

        _PIPELINE["shipped"] = pipeline.load()
    return _PIPELINE["shipped"]


def check_prompt(prompt, name: str = "prompt") -> str:
    """A prompt for the text box: a string (its words are checked against the vocabulary later, on screen)."""
    if not isinstance(prompt, str):
        raise ValueError(f"{name} must be a string, such as 'a thick seven', got {type(prompt).__name__}: {prompt!r}")
    return prompt


def check_guidance(guidance, name: str = "guidance") -> float:
    """A guidance weight for the slider: a number from 0 to MAX_GUIDANCE."""
    ok = isinstance(guidance, Real) and not isinstance(guidance, bool) and np.isfinite(guidance)
    if not ok or not 0.0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(f"{name} must be a number from 0 to {MAX_GUIDANCE:g} (the slider's range), got {guidance!r}")
    return float(guidance)


def strip_steps(steps: int, count: int = SHOWN_STEPS) -> list[int]:
    """Which steps (1-based) the strip of predictions shows: `count` of them, evenly spread, the last included."""
    picks = np.unique(np.round(np.linspace(1, steps, min(count, steps))).astype(int))
    return [int(k) for k in picks]


class PromptExplorer(Explorer):
    r"""Type a prompt, get a digit: the whole text-to-image chain of ``elslib.text_to_image``.

    The prompt is cut into words (tokens), the text encoder turns them into vectors, and DDIM walks
    the latent denoiser from the seed's noise down `steps` steps under classifier-free guidance;
    the VAE's decoder draws the final latent as a 32 x 32 digit. Shows:

    - the image ``text_to_image.generate`` returns for the prompt, seed, steps and guidance (the
      same bits: same prompt, seed, steps, guidance and weights, the same image);
    - a strip of the decoded predictions x0_hat along the way (five of the steps, the last one
      included);
    - the course's digit reader's verdict on the image (its digit and probability);
    - for a prompt with words the model never saw, the tokenizer's message naming them (and the
      nearest known words) instead of an image.

    Controls: ``prompt`` (Text; the image follows when you press Enter or leave the box),
    ``seed`` (BoundedIntText), ``steps`` (IntSlider, 1 to 50), ``guidance`` (FloatSlider, 0 to 10).

    ``shown``: ``prompt``, ``seed``, ``steps``, ``guidance``; ``image`` ([32, 32] array) and
    ``predictions`` ([k, 32, 32] array, the strip) and ``strip_steps`` (their step numbers),
    ``digit`` and ``probability`` (the reader's verdict), ``error`` (None, or the tokenizer's
    message, when there is no image).

    Args:
        prompt: the first prompt, a string ("a thick, slanted seven").
        seed: the noise seed, an integer from 0 to 1,000,000.
        steps: DDIM steps, an integer from 1 to 50.
        guidance: the classifier-free guidance weight, a number from 0 to 10 (0: the prompt is
            ignored; 1: the plain conditional model).
        pipeline: the trained pieces (``text_to_image.Pipeline``); None: the shipped ones.

    Raises ValueError, before anything loads, for an argument outside these ranges.
    """

    title = "Prompt explorer: type a prompt, get a digit"
    hint = "type a prompt (Enter to draw); change the seed, the steps, the guidance; try a word it never saw"

    def __init__(self, prompt="a thick, slanted seven", seed=0, steps=20, guidance=3.0, pipeline=None, progress=True):
        # every argument is checked before anything loads or any control is built
        prompt = check_prompt(prompt)
        seed = helpers.check_seed(seed)
        steps = checks.check_positive_int(steps, "steps")
        if steps > MAX_STEPS:
            raise ValueError(f"steps must be an integer from 1 to {MAX_STEPS} (the slider's range), got {steps!r}")
        guidance = check_guidance(guidance)
        if pipeline is not None:
            from ...text_to_image import Pipeline

            if not isinstance(pipeline, Pipeline):
                got = type(pipeline).__name__
                raise ValueError(f"pipeline must be a text_to_image.Pipeline or None (the shipped one), got {got}")
        self.pipeline = pipeline if pipeline is not None else shipped_pipeline()
        super().__init__(progress)
        self._cache = helpers.LRU(64)
        self.prompt = widgets.Text(
            value=prompt,
            description="prompt",
            continuous_update=False,
            layout=widgets.Layout(width="420px"),
            style=SLIDER_STYLE,
        )
        self.seed = widgets.BoundedIntText(
            value=seed,
            min=0,
            max=helpers.MAX_SEED,
            description="seed",
            layout=widgets.Layout(width="150px"),
            style=SLIDER_STYLE,
        )
        self.steps = widgets.IntSlider(
            value=steps, min=1, max=MAX_STEPS, description="steps", style=SLIDER_STYLE, continuous_update=False
        )
        self.guidance = widgets.FloatSlider(
            value=guidance,
            min=0.0,
            max=MAX_GUIDANCE,
            step=0.5,
            description="guidance",
            readout_format=".1f",
            style=SLIDER_STYLE,
            continuous_update=False,
        )
        self.controls = [(self.prompt, self.seed), (self.steps, self.guidance)]
        for c in (self.prompt, self.seed, self.steps, self.guidance):
            self._on(c)

        self.fig = self._figure(8.2, 3.6)
        gs = self.fig.add_gridspec(
            3, SHOWN_STEPS + 2, height_ratios=[0.5, 1, 0.5], left=0.02, right=0.98, top=0.8, bottom=0.04, wspace=0.15
        )
        self.ax_image = self.fig.add_subplot(gs[:, 0:2])
        self.ax_strip = [self.fig.add_subplot(gs[1, 2 + k]) for k in range(SHOWN_STEPS)]
        self._finish_init()

    # --------------------------------------------------------------------------- the work
    def _sample(self, prompt: str, seed: int, steps: int, guidance: float):
        """(final image [1, 32, 32], decoded predictions [steps, 1, 32, 32]) for one setting, cached."""
        from ...text_to_image import generate, pipeline

        def make():
            with self.busy("drawing", 1) as tick:
                image = generate([prompt], [seed], steps=steps, guidance=guidance, pipeline=self.pipeline)[0]
                along = pipeline.predictions(prompt, seed, steps=steps, guidance=guidance, pipeline=self.pipeline)
                tick()
            return image, along

        return self._cache.get_or((prompt, seed, steps, guidance), make)

    # --------------------------------------------------------------------------- drawing
    def _draw(self):
        prompt, seed = self.prompt.value, int(self.seed.value)
        steps, guidance = int(self.steps.value), float(self.guidance.value)
        self.shown = {"prompt": prompt, "seed": seed, "steps": steps, "guidance": guidance, "error": None}
        self.status.value = ""  # a message about an earlier prompt no longer applies
        error = None
        try:
            self.pipeline.tokenizer.encode(prompt)  # names unknown words before any work
        except ValueError as err:
            error = str(err)
        if error is not None:
            self.shown["error"] = error
            short = error.split(". Known words:")[0]
            self._note(self.ax_image, "image", "no image:\n" + _wrap(short, 34), "")
            for k, ax in enumerate(self.ax_strip):
                self._note(ax, f"strip{k}", "", "")
            self.fig.suptitle(
                f"{prompt!r}: the tokenizer refuses it\n(the words it knows are listed in the status line)",
                fontsize=TITLE_SIZE + 1,
                color=MARK,
            )
            known = " ".join(self.pipeline.tokenizer.vocabulary[3:])
            self.status.value = f"<span style='color:{MARK}'>{_escape(short)}</span><br>known words: {_escape(known)}"
            return
        image, along = self._sample(prompt, seed, steps, guidance)
        digit, probability = reader.read(image[None])
        digit, probability = int(digit[0]), float(probability[0])
        picks = strip_steps(steps)
        self._show(self.ax_image, "image", image, f"seed {seed}, {steps} steps, guidance {guidance:g}")
        for k, ax in enumerate(self.ax_strip):
            if k < len(picks):
                self._show(ax, f"strip{k}", along[picks[k] - 1], f"x0_hat, step {picks[k]}")
                ax.title.set_fontsize(LABEL_SIZE)
            else:
                self._note(ax, f"strip{k}", "", "")
        reads = "reads it as" if probability > reader.THRESHOLD else "is unsure; best guess"
        self.fig.suptitle(
            f"{prompt!r}\nthe digit reader {reads} {digit} (p = {probability:.2f})",
            fontsize=TITLE_SIZE + 1,
        )
        self.shown.update(
            image=as_array(image),
            predictions=np.stack([as_array(along[k - 1]) for k in picks]),
            strip_steps=picks,
            digit=digit,
            probability=probability,
        )


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _escape(text: str) -> str:
    import html

    return html.escape(text)
