r"""English captions for digit images, built from the label and from what is measured on the image.

A text-to-image system learns from (image, caption) pairs. Ours are made, not scraped: the
digit's name comes from its label, and three attributes are measured on the image itself, on the
ink pixels (brighter than mid-grey, ``data.INK``):

- stroke **thickness**: ink area / skeleton length (pixels; the skeleton is the one-pixel-wide
  centre line of the strokes), i.e. the mean width of a stroke. "thin" below 2.4, "thick" above
  3.4 (about the 25th and 75th percentiles of MNIST-5000);
- **slant**: how far the ink leans right as it rises, the shear cov(x, -y) / var(y) of the ink
  pixels' coordinates (0: upright; 1: 45 degrees to the right). "slanted" above 0.33 (about the
  75th percentile), "upright" between -0.05 and 0.05;
- **size**: the height of the ink's bounding box in pixels. MNIST scales most digits to 20
  pixels high, so only "small" is said, at 17 pixels or fewer (about one digit in twenty).

An attribute between its thresholds is not mentioned. Each image gets several phrasings (digit
as a word or a numeral, attributes in a fixed order or none, "bold" for "thick" and "tilted" for
"slanted" now and then), chosen by a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import data
from ..checks import check_images, check_seed

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

THIN_BELOW, THICK_ABOVE = 2.4, 3.4  # pixels of stroke width
SLANTED_ABOVE, UPRIGHT_WITHIN = 0.33, 0.05  # shear of the ink
SMALL_AT_MOST = 17  # pixels of ink height

# Each measured attribute may be said in other words too, as people write prompts ("a bold 3").
SYNONYMS = {"thick": ("thick", "bold"), "slanted": ("slanted", "tilted")}

VOWEL_SOUNDS = {"eight", "8", "upright"}  # the words of captions that take "an" ("a one": a consonant sound)

TEMPLATES = (
    "a {attrs}{digit}",
    "a {attrs}handwritten {digit}",
    "handwritten digit {digit}",
    "the digit {digit}, {attrs_words}",
    "{digit}",
)


@dataclass
class Attributes:
    """What is measured on a batch of digit images: each field a float64 array [B]."""

    thickness: np.ndarray  # mean stroke width in pixels
    slant: np.ndarray  # shear of the ink: 0 upright, > 0 leaning right
    height: np.ndarray  # ink bounding-box height in pixels (0 for a blank image)

    def words(self, i: int) -> list[str]:
        """The attribute words of image i, in the order captions use: size, thickness, slant."""
        out = []
        if self.height[i] == 0:
            return out  # a blank image: nothing to say about strokes that are not there
        if self.height[i] <= SMALL_AT_MOST:
            out.append("small")
        if self.thickness[i] < THIN_BELOW:
            out.append("thin")
        elif self.thickness[i] > THICK_ABOVE:
            out.append("thick")
        if self.slant[i] > SLANTED_ABOVE:
            out.append("slanted")
        elif abs(self.slant[i]) < UPRIGHT_WITHIN:
            out.append("upright")
        return out


def measure(images: torch.Tensor) -> Attributes:
    """Stroke thickness, slant and height of each image [B, 1, H, W] in [-1, 1] (see the module's notes).

    A blank image (no ink) has thickness 0, slant 0 and height 0.
    """
    from skimage.morphology import skeletonize

    check_images(images, "images", channels=1)
    ink = (images[:, 0] > data.INK).cpu().numpy()
    h, w = ink.shape[1:]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    thickness, slant, height = (np.zeros(len(ink)) for _ in range(3))
    for i, m in enumerate(ink):
        area = m.sum()
        if area == 0:
            continue
        thickness[i] = area / max(int(skeletonize(m).sum()), 1)
        y0, x0 = ys[m].mean(), xs[m].mean()
        var_y = ((ys[m] - y0) ** 2).mean()
        # rows grow downwards: leaning right as the digit rises means x grows as y falls
        slant[i] = ((xs[m] - x0) * (y0 - ys[m])).mean() / var_y if var_y > 0 else 0.0
        rows = np.nonzero(m.any(1))[0]
        height[i] = rows[-1] - rows[0] + 1
    return Attributes(thickness, slant, height)


def caption(label: int, words: list[str], phrasing: int = 0, numeral: bool = False) -> str:
    """One caption: the digit `label` (0-9) with attribute `words`, in template `phrasing`."""
    if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0-9, got {label!r}")
    if not isinstance(phrasing, (int, np.integer)) or not 0 <= int(phrasing) < len(TEMPLATES):
        raise ValueError(f"phrasing must be an integer from 0 to {len(TEMPLATES) - 1}, got {phrasing!r}")
    digit = str(int(label)) if numeral else DIGIT_WORDS[int(label)]
    template = TEMPLATES[int(phrasing)]
    if "{attrs_words}" in template and not words:
        template = "the digit {digit}"
    attrs = "".join(w + ", " for w in words[:-1]) + (words[-1] + " " if words else "")
    text = template.format(digit=digit, attrs=attrs, attrs_words=", ".join(words))
    first, _, rest = text.partition(" ")
    if first == "a" and rest.split(" ")[0].rstrip(",") in VOWEL_SOUNDS:
        text = "an " + rest  # "an eight", "an upright 8"
    return text


def captions(images: torch.Tensor, labels, per_image: int = 3, seed: int = 0) -> list[list[str]]:
    """`per_image` distinct-as-possible captions for each image [B, 1, H, W] with its label [B].

    The phrasings and the choice of word or numeral are drawn from `seed`; the attribute words
    are the image's own (``measure``). Returns a list of B lists of captions.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or len(labels) != len(images):
        raise ValueError(f"labels must hold one digit per image ({len(images)}), got shape {tuple(labels.shape)}")
    if not isinstance(per_image, int) or isinstance(per_image, bool) or per_image < 1:
        raise ValueError(f"per_image must be an integer >= 1, got {per_image!r}")
    attrs = measure(images)
    rng = np.random.default_rng(check_seed(seed))
    out = []
    for i, label in enumerate(labels.tolist()):
        words = [str(rng.choice(SYNONYMS.get(w, (w,)))) for w in attrs.words(i)]
        phrasings = rng.permutation(len(TEMPLATES))
        numerals = rng.random(per_image) < 0.3
        out.append(
            [caption(label, words, int(phrasings[k % len(TEMPLATES)]), bool(numerals[k])) for k in range(per_image)]
        )
    return out
