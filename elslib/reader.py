"""The digit reader: a small CNN classifier that says whether a generated image reads as a digit.

Looking at samples is the first check of a generative model, and the course does it everywhere;
this gives the look a number. The reader is trained on the first 4,000 of the bundled 5,000
MNIST digits (the seeded, class-balanced order of ``data.load("mnist")``: 400 per class) and
tested on the other 1,000; its weights ship in ``elslib/weights/digit-reader.pt``.

- :func:`read`: the reader's class and its probability for each image;
- ``metrics.recognisable(images)``: the fraction of images it reads as one class with
  probability above a threshold (0.8): real digits set the scale (see :func:`held_out`);
- ``metrics.frechet_distance(a, b)``: the Frechet distance between the reader's features of
  two sets of images (the idea of the FID, with this small reader in place of Inception).

Training augments each batch with random shifts of up to 2 pixels, so that a digit drawn a
little off centre (as samples often are) is still read. A classifier trained on digits alone
reads *anything* as some digit, noise included, often with probability near 1; so the reader
has an eleventh class, "not a digit", trained on images that are not digits: noise (smoothed
or not), digits cut into 8 x 8 tiles and shuffled (every piece is a digit's piece, the whole is
not), two different digits drawn over each other, and fragments (one piece of a digit on a
blank page, or a blank page: an unfinished sample is not a digit). An image reads as a digit
when one of the ten digit classes gets probability above the threshold.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data, symmetry, training
from .checks import check_images, check_positive_int, check_seed

WEIGHTS = Path(__file__).resolve().parent / "weights" / "digit-reader.pt"
N_TRAIN = 4000  # the first 4,000 digits train it, the other 1,000 test it
THRESHOLD = 0.8  # "reads as a digit": the top class has probability above this
FEATURES = 128
NOT_A_DIGIT = 10  # the eleventh class


class DigitReader(nn.Module):
    """Conv 3x3 blocks (with batch norm) 32 -> 64 -> 128 channels, two 2x poolings, global average,
    linear to 10.

    ``features(x)`` [B, 128] is what the Frechet distance compares; ``forward(x)`` gives logits
    [B, 11]: the ten digits, then "not a digit". Input: [B, 1, H, W] in [-1, 1] (32 x 32 for MNIST).
    """

    def __init__(self, width: int = 32, classes: int = 11):
        super().__init__()
        self.config = dict(width=width, classes=classes)
        w = width

        def block(cin, cout):  # conv 3x3, batch norm (steadier, faster training on few digits), ReLU
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, w),
            *block(w, w),
            nn.MaxPool2d(2),
            *block(w, 2 * w),
            *block(2 * w, 2 * w),
            nn.MaxPool2d(2),
            *block(2 * w, 4 * w),
            nn.Dropout(0.2),
        )
        self.head = nn.Linear(4 * w, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _shift(x: torch.Tensor, gen: torch.Generator, most: int = 2) -> torch.Tensor:
    """Each image moved by its own random shift of up to `most` pixels (the border filled with -1, blank)."""
    b = x.shape[0]
    dy = most - torch.randint(0, 2 * most + 1, (b,), generator=gen)
    dx = most - torch.randint(0, 2 * most + 1, (b,), generator=gen)
    return torch.stack([symmetry.shift(x[i], dy[i], dx[i], mode="zeros", fill=-1.0) for i in range(b)])


def not_digits(x: torch.Tensor, y: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """n images [n, 1, 32, 32] that are not digits, made from the digits x (labels y), a quarter of each
    kind: noise (blurred over 1, 3 or 5 pixels), tile-shuffled digits, overlays of two different
    digits, and fragments (one 8 x 8 to 14 x 14 piece of a digit on a blank page; or a blank page)."""
    b, _, h, w = x.shape
    kinds = torch.arange(n) % 4
    out = torch.empty(n, 1, h, w)
    for k in range(n):
        i = int(torch.randint(b, (1,), generator=gen))
        if kinds[k] == 0:
            blur = [1, 3, 5][int(torch.randint(3, (1,), generator=gen))]
            z = torch.randn((1, 1, h, w), generator=gen)
            z = F.avg_pool2d(z, blur, stride=1, padding=blur // 2) * blur if blur > 1 else z
            out[k] = z.clamp(-1, 1)[0]
        elif kinds[k] == 1:
            tiles = x[i, 0].reshape(h // 8, 8, w // 8, 8).permute(0, 2, 1, 3).reshape(-1, 8, 8)
            tiles = tiles[torch.randperm(len(tiles), generator=gen)]
            out[k, 0] = tiles.reshape(h // 8, w // 8, 8, 8).permute(0, 2, 1, 3).reshape(h, w)
        elif kinds[k] == 3:
            out[k] = -1.0
            side = int(torch.randint(0, 15, (1,), generator=gen))  # below 8: a blank page
            if side >= 8:
                r0, c0 = (int(v) for v in torch.randint(0, h - side + 1, (2,), generator=gen))
                out[k, :, r0 : r0 + side, c0 : c0 + side] = x[i, :, r0 : r0 + side, c0 : c0 + side]
        else:
            others = torch.nonzero(y != y[i]).flatten()
            j = int(others[int(torch.randint(len(others), (1,), generator=gen))])
            out[k] = torch.maximum(x[i], x[j])
    return out


def train(steps: int = 2500, batch_size: int = 128, lr: float = 2e-3, seed: int = 0, progress: bool = True):
    """Train a reader on the first N_TRAIN digits; returns (reader in eval mode, metadata dict).

    Adam with a cosine decay, shifted batches; the metadata holds the held-out accuracy. Same
    seed, same reader (on the same torch build and CPU).
    """
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    gen = torch.Generator().manual_seed(check_seed(seed))
    torch.manual_seed(seed)
    images, labels = data.load("mnist")
    x, y = images[:N_TRAIN], labels[:N_TRAIN]
    reader = DigitReader()
    opt = torch.optim.Adam(reader.parameters(), lr=lr)
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="training the digit reader")
    start = time.perf_counter()
    reader.train()
    for step in iterator:
        for group in opt.param_groups:
            group["lr"] = training.learning_rate(step, lr, steps)
        idx = torch.randint(len(x), (batch_size,), generator=gen)
        extra = not_digits(x, y, batch_size // 4, gen)
        batch = torch.cat([_shift(x[idx], gen), extra])
        target = torch.cat([y[idx], torch.full((len(extra),), NOT_A_DIGIT)])
        loss = F.cross_entropy(reader(batch), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    reader.eval()
    test_x, test_y = held_out()
    digit, confidence = read(test_x, reader)
    negatives = not_digits(test_x, test_y, 300, torch.Generator().manual_seed(seed + 1))
    meta = {
        "accuracy": float((digit == test_y).float().mean()),
        "held_out_recognisable": float((confidence > THRESHOLD).float().mean()),
        "not_digits_recognisable": float((read(negatives, reader)[1] > THRESHOLD).float().mean()),
        "threshold": THRESHOLD,
        "trained_on": f"the first {N_TRAIN} digits of data.load('mnist'); tested on the other {len(test_y)}",
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "train_seconds": round(time.perf_counter() - start, 1),
        "command": "python -m elslib train-reader",
        "torch": str(torch.__version__),
    }
    return reader, meta


def held_out() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,000 real digits the reader never saw (100 per class): the scale for generated ones."""
    images, labels = data.load("mnist")
    return images[N_TRAIN:], labels[N_TRAIN:]


def save(reader: DigitReader, meta: dict, path=WEIGHTS) -> Path:
    """Write the reader's weights (and its metadata, in a JSON beside them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "elslib-reader-1", "config": reader.config, "weights": reader.state_dict()}, path)
    meta = {**meta, "sha256": training.file_sha256(path)}  # checked on every load
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


_LOADED: dict[str, DigitReader] = {}


def load(path=WEIGHTS) -> DigitReader:
    """The shipped reader (cached after the first call), on the CPU, in eval mode."""
    path = Path(path)
    key = str(path)
    if key not in _LOADED:
        if not path.exists():
            raise FileNotFoundError(f"no digit reader at {path}; train one with `python -m elslib train-reader`")
        if path.with_suffix(".json").exists():
            training.verify_sha256(path, metadata(path).get("sha256"))
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            reader = DigitReader(**state["config"])
            reader.load_state_dict(state["weights"])
        except Exception as err:  # truncated, foreign or tampered files
            raise ValueError(f"the digit reader {path} could not be read ({type(err).__name__}: {err})") from err
        _LOADED[key] = reader.eval()
    return _LOADED[key]


def metadata(path=WEIGHTS) -> dict:
    """How the shipped reader was trained, and its accuracy on the held-out digits."""
    return json.loads(Path(path).with_suffix(".json").read_text())


def _probabilities(reader: DigitReader, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([F.softmax(reader(images[i : i + batch]), 1) for i in range(0, len(images), batch)])


def _check_digits(images, name: str = "images") -> torch.Tensor:
    check_images(images, name, channels=1, size=(32, 32))
    return images.detach().to("cpu", torch.float32)


def _reader(reader) -> DigitReader:
    """The given reader, or the shipped one for None."""
    if reader is None:
        return load()
    if not isinstance(reader, DigitReader):
        raise TypeError(f"reader must be a reader.DigitReader (or None: the shipped one), got {type(reader).__name__}")
    return reader


def read(images: torch.Tensor, reader: DigitReader | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The reader's verdict on images [B, 1, 32, 32] in [-1, 1]: the most likely digit [B] int64 and
    its probability [B] (what is left goes to the other digits and to "not a digit")."""
    reader, images = _reader(reader), _check_digits(images)
    if len(images) == 0:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    top = _probabilities(reader, images)[:, :NOT_A_DIGIT].max(1)
    return top.indices, top.values


def features(
    images: torch.Tensor, reader: DigitReader | None = None, batch: int = 512, name: str = "images"
) -> torch.Tensor:
    """The reader's features [B, 128] (float64) of digit images [B, 1, 32, 32] (`name`: the argument, for errors)."""
    reader, images = _reader(reader), _check_digits(images, name)
    batch = check_positive_int(batch, "batch")
    if len(images) == 0:
        return torch.zeros(0, reader.head.in_features, dtype=torch.float64)
    with torch.no_grad():
        return torch.cat([reader.features(images[i : i + batch]) for i in range(0, len(images), batch)]).double()
