"""Bad and edge inputs over the public API, generated from small tables (issue 14).

Every row is (callable, args, kwargs, expected outcome, substring). The outcome is VALID (the call
returns, and nothing in the result is NaN or infinite: the inputs are finite) or an exception
class: the call must raise exactly that kind of error, and its message must contain the
substring, the name of the argument at fault. Anything else fails the rule: a raw torch or numpy
error, a message that does not say which argument, a bad value silently clamped, rounded or
replaced, a NaN from finite inputs.

Tiny tensors (8 x 8 images, four training images, networks of a few channels): the module runs
in seconds on one CPU thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import numpy as np
import pytest
import torch
import torch.nn as nn

from elslib import (
    calibration,
    combinatorics,
    data,
    denoisers,
    machines,
    metrics,
    morphogenesis,
    networks,
    pretrained,
    reader,
    receptive,
    sampling,
    schedules,
    symmetry,
    training,
)

pytestmark = pytest.mark.usefixtures("one_thread")

VALID = "a valid result"
CLEAR = (ValueError, TypeError, FileNotFoundError, KeyError)
NAN, INF = math.nan, math.inf
_ids = itertools.count()


def _row(fn, args, kwargs, outcome, match):
    name = getattr(fn, "__qualname__", type(fn).__name__).replace(".<locals>", "")
    return pytest.param(fn, args, kwargs, outcome, match, id=f"{next(_ids):03d}-{name}")


def ok(fn, *args, check=None, **kwargs):
    """The call must return a valid result (and pass `check(result)` when given)."""
    return _row(fn, args, kwargs, VALID, check)


def bad(match, fn, *args, error=ValueError, **kwargs):
    """The call must raise `error` with `match` (the argument's name) in its message."""
    assert error in CLEAR
    return _row(fn, args, kwargs, error, match)


# --------------------------------------------------------------------------- small inputs


def _rand(*shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


TRAIN = _rand(4, 1, 8, 8)
LABELS = torch.tensor([0, 1, 0, 1])
X = _rand(2, 1, 8, 8, seed=1)
X_NAN = X.clone()
X_NAN[0, 0, 0, 0] = NAN
X_INF = X.clone()
X_INF[1, 0, 2, 3] = INF
META = torch.empty(2, 1, 8, 8, device="meta")
NOISE = sampling.noise_like((2, 1, 8, 8), seed=3)
DIGITS = _rand(3, 1, 32, 32, seed=4)


def zero_denoiser(x, t):
    return torch.zeros_like(x)


def half_denoiser(x, t, label=None):
    return 0.5 * x


def nan_denoiser(x, t):
    return x * NAN


def one_argument(x):
    return x


def tiny_resnet(num_classes=None, **config):
    torch.manual_seed(0)
    return networks.ResNet(**{"channels": 4, "blocks": 1, "num_classes": num_classes, **config})


def tiny_unet(**config):
    torch.manual_seed(0)
    return networks.UNet(**{"channels": 4, **config})


RES, CRES, UNET = tiny_resnet(), tiny_resnet(num_classes=2), tiny_unet()


def _finite(value, where="result"):
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            assert torch.isfinite(value).all(), f"{where} holds NaN or infinite values"
    elif isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating):
            assert np.isfinite(value).all(), f"{where} holds NaN or infinite values"
    elif isinstance(value, float):
        assert math.isfinite(value), f"{where} is {value}"
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}[{k!r}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _finite(getattr(value, f.name), f"{where}.{f.name}")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # checkpoint rows write their files here


def _outcome(fn, args, kwargs, outcome, match):
    if outcome is VALID:
        result = fn(*args, **kwargs)
        _finite(result)
        if match is not None:
            assert match(result), f"unexpected result {result!r}"
        return
    try:
        result = fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - the class is what is tested
        assert type(err) is outcome or (isinstance(err, outcome) and not isinstance(err, RuntimeError)), (
            f"expected {outcome.__name__}, got {type(err).__name__}: {err}"
        )
        named = (
            re.search(rf"(?<![A-Za-z0-9_]){re.escape(match)}(?![A-Za-z0-9_])", str(err))
            if match.isidentifier()
            else None
        )
        assert named or (not match.isidentifier() and match in str(err)), (
            f"the message does not name {match!r}: {type(err).__name__}: {err}"
        )
    else:
        pytest.fail(f"silently accepted: returned {type(result).__name__} instead of raising {outcome.__name__}")


def _table(rows):
    return pytest.mark.parametrize("fn,args,kwargs,outcome,match", rows)


# --------------------------------------------------------------------------- data

DATA = [
    ok(data.load, "digits", n=3, check=lambda r: r[0].shape == (3, 1, 8, 8)),
    ok(data.load, "digits", n=3.0, check=lambda r: len(r[0]) == 3),
    ok(data.load, "digits", n=2, seed=2**40),
    ok(data.load, "digits", n=2, size=4, check=lambda r: r[0].shape[-2:] == (4, 4)),
    ok(data.load, "digits", n=2, size=(4, 6), check=lambda r: r[0].shape[-2:] == (4, 6)),
    ok(data.load, "digits", n=2, size=np.int64(4), check=lambda r: r[0].shape[-2:] == (4, 4)),
    ok(data.load, "digits", n=2, classes=[3], check=lambda r: r[1].tolist() == [3, 3]),
    ok(data.load, "digits", n=2, classes=np.int64(3), check=lambda r: r[1].tolist() == [3, 3]),
    ok(data.load, "digits", n=2, device="cpu"),
    bad("name", data.load, "nope"),
    bad("name", data.load, 3),
    bad("name", data.load, None),
    bad("name", data.load, ["digits"]),
    bad("name", data.load, "Digits"),
    bad("n must", data.load, "digits", n=0),
    bad("n must", data.load, "digits", n=-1),
    bad("n must", data.load, "digits", n=2.5),
    bad("n must", data.load, "digits", n="3"),
    bad("n must", data.load, "digits", n=True),
    bad("n must", data.load, "digits", n=NAN),
    bad("n must", data.load, "digits", n=[3]),
    bad("n=", data.load, "digits", n=10**9),
    bad("seed", data.load, "digits", n=2, seed=-1),
    bad("seed", data.load, "digits", n=2, seed=1.5),
    bad("seed", data.load, "digits", n=2, seed=None),
    bad("seed", data.load, "digits", n=2, seed="0"),
    bad("seed", data.load, "digits", n=2, seed=True),
    bad("seed", data.load, "digits", n=2, seed=2**64),
    bad("seed", data.load, "digits", n=2, seed=NAN),
    bad("size", data.load, "digits", n=2, size=0),
    bad("size", data.load, "digits", n=2, size=-3),
    bad("size", data.load, "digits", n=2, size=2.5),
    bad("size", data.load, "digits", n=2, size=(4,)),
    bad("size", data.load, "digits", n=2, size=(0, 4)),
    bad("size", data.load, "digits", n=2, size="8"),
    bad("size", data.load, "digits", n=2, size=True),
    bad("size", data.load, "digits", n=2, size=(4, 4, 4)),
    bad("size", data.load, "digits", n=2, size=(4.5, 4)),
    bad("classes", data.load, "digits", n=2, classes=[42]),
    bad("classes", data.load, "digits", classes=[]),
    bad("classes", data.load, "digits", n=2, classes=True),
    bad("classes", data.load, "digits", n=2, classes=1.5),
    bad("classes", data.load, "digits", n=2, classes="a"),
    bad("classes", data.load, "digits", n=2, classes=[[1]]),
    bad("device", data.load, "digits", n=2, device="nope"),
    bad("device", data.load, "digits", n=2, device=5),
    ok(data.class_names, "digits", check=lambda r: len(r) == 10),
    bad("name", data.class_names, "nope"),
    ok(data.available, "digits", check=lambda r: r is True),
    bad("name", data.available, "nope"),
    ok(data.resize, X, 4, check=lambda r: r.shape == (2, 1, 4, 4)),
    bad("size", data.resize, X, 0),
    bad("images", data.resize, torch.zeros(8, 8), 4),
    bad("images", data.resize, [[0.0]], 4),
    ok(data.denormalise, X),
    bad("x", data.denormalise, [0.0]),
]


@_table(DATA)
def test_data(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- schedules

COS, LIN = schedules.cosine(), schedules.linear()


def snr_is_infinite_at(t):
    return COS.snr(t) == math.inf


BAD_TIMES = [
    -0.1,
    1.1,
    NAN,
    INF,
    -INF,
    "0.5",
    None,
    [0.5],
    True,
    torch.tensor([0.5, NAN]),
    torch.zeros(2, 2),
    torch.tensor([-0.5]),
    torch.tensor(True),
    torch.tensor(0.5 + 0.0j),
    torch.tensor(0.5, device="meta"),
]
GOOD_TIMES = [0.0, 1.0, 0.5, torch.tensor(0.5), torch.tensor([0.0, 1.0]), np.float64(0.3), torch.tensor(1)]

SCHEDULES = (
    [bad("t", getattr(s, m), t) for s in (COS, LIN) for m in ("alpha", "sigma", "alpha_bar", "snr") for t in BAD_TIMES]
    + [ok(getattr(s, m), t) for s in (COS, LIN) for m in ("alpha", "sigma", "alpha_bar") for t in GOOD_TIMES]
    + [
        ok(COS.snr, 0.5),
        ok(snr_is_infinite_at, 0.0, check=lambda r: r is True),  # documented: infinite at t = 0
        ok(COS.add_noise, X, 0.5, NOISE, check=lambda r: r.shape == X.shape),
        ok(COS.add_noise, X, torch.tensor([0.1, 0.9]), NOISE),
        ok(COS.add_noise, X.double(), 0.5, NOISE.double()),
        bad("x0", COS.add_noise, X[0], 0.5, NOISE),
        bad("x0", COS.add_noise, X.long(), 0.5, NOISE),
        bad("x0", COS.add_noise, X_NAN, 0.5, NOISE),
        bad("x0", COS.add_noise, [[0.0]], 0.5, NOISE),
        bad("x0", COS.add_noise, META, 0.5, NOISE),
        bad("noise", COS.add_noise, X, 0.5, NOISE[:1]),
        bad("noise", COS.add_noise, X, 0.5, X_INF),
        bad("noise", COS.add_noise, X, 0.5, None),
        bad("t", COS.add_noise, X, torch.tensor([0.1, 0.2, 0.3]), NOISE),
        bad("t", COS.add_noise, X, "0.5", NOISE),
        bad("t", COS.add_noise, X, 1.5, NOISE),
        ok(COS.coefficients, 0.5, like=X, check=lambda r: r[0].shape == (2, 1, 1, 1)),
        bad("like", COS.coefficients, 0.5, like=5),
        bad("like", COS.coefficients, 0.5, like=torch.tensor(1.0)),
        bad("t", COS.coefficients, torch.tensor([0.5, 0.5, 0.5]), like=X),
        ok(schedules.cosine, 0),
        ok(schedules.cosine, 0.5),
        bad("offset", schedules.cosine, -1),
        bad("offset", schedules.cosine, NAN),
        bad("offset", schedules.cosine, INF),
        bad("offset", schedules.cosine, "0.008"),
        bad("offset", schedules.cosine, True),
        bad("offset", schedules.cosine, None),
        ok(schedules.linear, 0.1, 0.1),
        ok(schedules.linear, 0, 5),
        bad("beta_min", schedules.linear, -1),
        bad("beta_min", schedules.linear, NAN),
        bad("beta_min", schedules.linear, "0.1"),
        bad("beta_max", schedules.linear, 0.1, INF),
        bad("beta_max", schedules.linear, 0.1, None),
        bad("beta_max", schedules.linear, 0.0, 0.0),
        bad("beta_min <= beta_max", schedules.linear, 2.0, 1.0),
        ok(schedules.get, "linear", check=lambda r: r == LIN),
        ok(schedules.get, None, check=lambda r: r == COS),
        bad("schedule", schedules.get, "nope"),
        bad("schedule", schedules.get, 3),
        bad("schedule", schedules.get, schedules.cosine),
    ]
)


@_table(SCHEDULES)
def test_schedules(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- sampling

LS_LABELLED = machines.LocalDenoiser(TRAIN, patch_size=3, labels=LABELS)
Q = dict(progress=False)


def _sampler_rows(sampler):
    rows = [
        ok(sampler, zero_denoiser, NOISE, steps=3, **Q, check=lambda r: r.shape == NOISE.shape),
        ok(sampler, half_denoiser, NOISE, times=[1.0, 0.5, 0.0], **Q),
        ok(sampler, half_denoiser, NOISE, times=torch.tensor([1.0, 0.3]), **Q),
        ok(sampler, half_denoiser, NOISE, times=np.array([0.9, 0.0]), **Q),
        ok(sampler, half_denoiser, NOISE.double(), steps=2, **Q),
        ok(sampler, LS_LABELLED, NOISE, steps=2, label=1, **Q),
        ok(sampler, LS_LABELLED, NOISE, steps=2, label=[0, 1], **Q),
        ok(sampler, zero_denoiser, NOISE, steps=2, callback=lambda *a: None, **Q),
        bad("denoiser", sampler, 5, NOISE, steps=2, error=TypeError, **Q),
        bad("denoiser", sampler, None, NOISE, steps=2, error=TypeError, **Q),
        bad("denoiser", sampler, "IS", NOISE, steps=2, error=TypeError, **Q),
        bad("denoiser", sampler, one_argument, NOISE, steps=2, error=TypeError, **Q),
        bad("denoiser", sampler, zero_denoiser, NOISE, steps=2, label=1, error=TypeError, **Q),
        bad("denoiser", sampler, lambda x, t: x[:, :, :4], NOISE, steps=2, **Q),
        bad("denoiser", sampler, lambda x, t: "x0", NOISE, steps=2, **Q),
        bad("denoiser", sampler, nan_denoiser, NOISE, steps=2, **Q),
        bad("noise", sampler, zero_denoiser, NOISE[0], steps=2, **Q),
        bad("noise", sampler, zero_denoiser, NOISE.long(), steps=2, **Q),
        bad("noise", sampler, zero_denoiser, X_NAN, steps=2, **Q),
        bad("noise", sampler, zero_denoiser, [[0.0]], steps=2, **Q),
        bad("noise", sampler, zero_denoiser, None, steps=2, **Q),
        bad("noise", sampler, zero_denoiser, META, steps=2, **Q),
        bad("steps", sampler, zero_denoiser, NOISE, steps=0, **Q),
        bad("steps", sampler, zero_denoiser, NOISE, steps=-1, **Q),
        bad("steps", sampler, zero_denoiser, NOISE, steps=2.5, **Q),
        bad("steps", sampler, zero_denoiser, NOISE, steps="3", **Q),
        bad("steps", sampler, zero_denoiser, NOISE, steps=True, **Q),
        bad("steps", sampler, zero_denoiser, NOISE, steps=10**9, **Q),
        bad("steps", sampler, zero_denoiser, NOISE, steps=3, times=[1.0, 0.5, 0.0], **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=[0.5], **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=[0.2, 0.5], **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=[1.0, 1.0, 0.0], **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=[1.5, 0.0], **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=[NAN, 0.0], **Q),
        bad("times", sampler, zero_denoiser, NOISE, times="1.0, 0.0", **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=5, **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=torch.zeros(2, 2), **Q),
        bad("times", sampler, zero_denoiser, NOISE, times=[1.0, "a"], **Q),
        bad("schedule", sampler, zero_denoiser, NOISE, steps=2, schedule="nope", **Q),
        bad("schedule", sampler, LS_LABELLED, NOISE, steps=2, schedule="linear", **Q),
        bad("callback", sampler, zero_denoiser, NOISE, steps=2, callback=5, error=TypeError, **Q),
        bad("eta", sampler, zero_denoiser, NOISE, steps=2, eta=0.5, error=TypeError, **Q),
        bad("label", sampler, LS_LABELLED, NOISE, steps=2, label=7, **Q),
        bad("label", sampler, LS_LABELLED, NOISE, steps=2, label=[0], **Q),
        bad("label", sampler, LS_LABELLED, NOISE, steps=2, label=1.5, **Q),
    ]
    return rows


SAMPLING = (
    _sampler_rows(sampling.ddim)
    + _sampler_rows(sampling.ddpm)
    + [
        ok(sampling.ddpm, zero_denoiser, NOISE, steps=2, seed=2**40, **Q),
        bad("seed", sampling.ddpm, zero_denoiser, NOISE, steps=2, seed=-1, **Q),
        bad("seed", sampling.ddpm, zero_denoiser, NOISE, steps=2, seed=1.5, **Q),
        bad("seed", sampling.ddpm, zero_denoiser, NOISE, steps=2, seed=None, **Q),
        bad("seed", sampling.ddpm, zero_denoiser, NOISE, steps=2, seed="0", **Q),
        bad("seed", sampling.ddpm, zero_denoiser, NOISE, steps=2, seed=2**64, **Q),
        ok(sampling.noise_like, (2, 7, 8), seed=3, check=lambda r: r.shape == (2, 7, 8)),
        ok(sampling.noise_like, torch.Size([1, 1, 4, 4]), seed=np.int64(3)),
        ok(sampling.noise_like, (1, 1, 2, 2), dtype=torch.float64, check=lambda r: r.dtype == torch.float64),
        bad("shape", sampling.noise_like, (1, -1, 4, 4)),
        bad("shape", sampling.noise_like, "abc"),
        bad("shape", sampling.noise_like, (2.5, 1)),
        bad("shape", sampling.noise_like, None),
        bad("shape", sampling.noise_like, 4),
        bad("seed", sampling.noise_like, (1, 1, 4, 4), seed=-1),
        bad("seed", sampling.noise_like, (1, 1, 4, 4), seed=1.5),
        bad("seed", sampling.noise_like, (1, 1, 4, 4), seed="0"),
        bad("seed", sampling.noise_like, (1, 1, 4, 4), seed=None),
        bad("dtype", sampling.noise_like, (1, 1, 2, 2), dtype=torch.int64),
        bad("dtype", sampling.noise_like, (1, 1, 2, 2), dtype="float32"),
        ok(sampling.step_times, 4, check=lambda r: r == [1.0, 0.75, 0.5, 0.25, 0.0]),
        bad("steps", sampling.step_times, 0),
        ok(sampling.time_grid, None, [1, 0], check=lambda r: r == [1.0, 0.0]),
        bad("times", sampling.time_grid, None, [1.0, -0.5]),
    ]
)


@_table(SAMPLING)
def test_sampling(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- denoisers

DENOISERS = [
    ok(denoisers.Conditioned(LS_LABELLED, 1), X, 0.5),
    ok(denoisers.Guided(LS_LABELLED, 2.0), X, 0.5, label=1),
    bad("label", denoisers.Conditioned, LS_LABELLED, None),
    bad("denoiser", denoisers.Conditioned, 5, 1, error=TypeError),
    bad("label", denoisers.Conditioned(LS_LABELLED, 1), X, 0.5, label=0),
    bad("weight", denoisers.Guided, LS_LABELLED, "2"),
    bad("weight", denoisers.Guided, LS_LABELLED, NAN),
    bad("denoiser", denoisers.Guided, None, 1.0, error=TypeError),
    ok(denoisers.schedule_of, zero_denoiser, "linear", check=lambda r: r == LIN),
    bad("schedule", denoisers.schedule_of, zero_denoiser, "nope"),
    bad("schedule", denoisers.schedule_of, LS_LABELLED, LIN),
    bad("schedule", denoisers.schedule_of, type("D", (), {"schedule": "cosine"})()),
]


@_table(DENOISERS)
def test_denoisers(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- machines

KINDS = {
    "IS": dict(kind="IS"),
    "LS": dict(kind="LS", patch_size=3),
    "ES": dict(kind="ES"),
    "ELS": dict(kind="ELS", patch_size=3),
    "ELS-circular": dict(kind="ELS", patch_size=3, padding="circular"),
}


def build(kind, images=TRAIN, **options):
    return machines.build(images=images, **{**KINDS[kind], **options})


def denoise(kind, x_t=X, t=0.5, label=None, images=TRAIN, **options):
    return build(kind, images, **options)(x_t, t, label=label)


def explain(kind, x_t=X, t=0.5, label=None, **options):
    return build(kind, **options).explain(x_t, t, label=label)


def _machine_rows(kind):
    big = TRAIN * 1e7
    rows = [
        ok(denoise, kind, check=lambda r: r.shape == X.shape and r.dtype == torch.float32),
        ok(denoise, kind, X.double(), check=lambda r: r.dtype == torch.float64),
        ok(denoise, kind, t=0.0),
        ok(denoise, kind, t=1.0),
        ok(denoise, kind, t=torch.tensor([0.2, 0.8])),
        ok(denoise, kind, t=np.float32(0.5)),
        ok(denoise, kind, X * 1e4, t=0.0),
        ok(denoise, kind, X[:0], check=lambda r: r.shape == (0, 1, 8, 8)),
        ok(denoise, kind, label=1, labels=LABELS),
        ok(denoise, kind, label=[0, 1], labels=LABELS),
        ok(denoise, kind, label=torch.tensor([1, 1]), labels=LABELS),
        ok(denoise, kind, label=np.int64(0), labels=LABELS),
        ok(explain, kind),
        # building
        bad("images", build, kind, torch.empty(0, 1, 8, 8)),
        bad("images", build, kind, torch.rand(8)),
        bad("images", build, kind, TRAIN[0]),
        bad("images", build, kind, TRAIN.long()),
        bad("images", build, kind, X_NAN),
        bad("images", build, kind, X_INF),
        bad("images", build, kind, TRAIN.tolist()),
        bad("images", build, kind, None),
        bad("images", build, kind, torch.empty(4, 1, 8, 8, device="meta")),
        bad("images", denoise, kind, images=big, t=0.0),
        bad("labels", build, kind, labels=LABELS[:2]),
        bad("labels", build, kind, labels=LABELS.float()),
        bad("labels", build, kind, labels=LABELS[None]),
        bad("labels", build, kind, labels=["a", "b", "a", "b"]),
        bad("labels", build, kind, labels=LABELS.bool()),
        bad("chunk_size", build, kind, chunk_size=0),
        bad("chunk_size", build, kind, chunk_size=-1),
        bad("chunk_size", build, kind, chunk_size=2.5),
        bad("schedule", build, kind, schedule="nope"),
        bad("device", build, kind, device="nope"),
        # calling
        bad("x_t", denoise, kind, _rand(2, 1, 4, 4)),
        bad("x_t", denoise, kind, _rand(2, 3, 8, 8)),
        bad("x_t", denoise, kind, X[0]),
        bad("x_t", denoise, kind, X.long()),
        bad("x_t", denoise, kind, X_NAN),
        bad("x_t", denoise, kind, X_INF),
        bad("x_t", denoise, kind, X.tolist()),
        bad("x_t", denoise, kind, META),
        bad("x_t", denoise, kind, X * 1e20, t=0.0),
        bad("t", denoise, kind, t=-0.1),
        bad("t", denoise, kind, t=1.5),
        bad("t", denoise, kind, t=NAN),
        bad("t", denoise, kind, t="0.5"),
        bad("t", denoise, kind, t=None),
        bad("t", denoise, kind, t=torch.tensor([0.5, 0.5, 0.5])),
        bad("t", denoise, kind, t=torch.full((2, 1), 0.5)),
        bad("label", denoise, kind, label=1),
        bad("label", denoise, kind, label=7, labels=LABELS),
        bad("label", denoise, kind, label=[0], labels=LABELS),
        bad("label", denoise, kind, label=1.5, labels=LABELS),
        bad("label", denoise, kind, label="1", labels=LABELS),
        bad("label", denoise, kind, label=True, labels=LABELS),
        bad("label", denoise, kind, label=torch.tensor([0.0, 1.0]), labels=LABELS),
        bad("x_t", explain, kind, X_NAN),
        bad("t", explain, kind, t=2.0),
        bad("label", explain, kind, label=5, labels=LABELS),
    ]
    if KINDS[kind].get("patch_size"):
        top = 7 if KINDS[kind].get("padding") == "circular" else 15
        rows += [
            ok(denoise, kind, patch_size=top),
            ok(denoise, kind, patch_size=np.int64(1)),
            ok(denoise, kind, patch_size=lambda t: 3 if t > 0.5 else 1, t=torch.tensor([0.2, 0.8])),
            bad("patch_size", build, kind, patch_size=4),
            bad("patch_size", build, kind, patch_size=0),
            bad("patch_size", build, kind, patch_size=-1),
            bad("patch_size", build, kind, patch_size=2.5),
            bad("patch_size", build, kind, patch_size=3.0),
            bad("patch_size", build, kind, patch_size="3"),
            bad("patch_size", build, kind, patch_size=True),
            bad("patch_size", build, kind, patch_size=None),
            bad("patch_size", build, kind, patch_size=top + 2),
            bad("patch_size", denoise, kind, patch_size=lambda t: 4),
            bad("patch_size", denoise, kind, patch_size=lambda t: 3.0),
            bad("patch_size", denoise, kind, patch_size=lambda t: top + 2),
            bad("patch_size", build, kind, patch_size=lambda: 3, error=TypeError),
            bad("patch_size", build, kind, patch_size=lambda t, label: 3, error=TypeError),
        ]
    if KINDS[kind]["kind"] == "ELS":
        rows += [
            bad("padding", build, kind, padding="reflect"),
            bad("padding", build, kind, padding=None),
            bad("padding", build, kind, padding="Zeros"),
            bad("table_budget", build, kind, table_budget=-1),
            bad("table_budget", build, kind, table_budget="1e9"),
            bad("table_budget", build, kind, table_budget=NAN),
            bad("dedup", build, kind, dedup="no"),
            ok(denoise, kind, table_budget=0),
            ok(build(kind).prepare, 5),
            bad("patch_size", build(kind).prepare, 4),
            bad("patch_size", build(kind).prepare, 3.0),
        ]
    return rows


MACHINES = [row for kind in KINDS for row in _machine_rows(kind)] + [
    bad("kind", machines.build, "XX", TRAIN),
    bad("kind", machines.build, "els", TRAIN),
    bad("kind", machines.title, "XX"),
    ok(machines.title, "ELS"),
    bad("patch_size", machines.IdealDenoiser, TRAIN, patch_size=3, error=TypeError),
    bad("padding", machines.LocalDenoiser, TRAIN, padding="zeros", error=TypeError),
]


@_table(MACHINES)
def test_machines(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- metrics

CONST = torch.zeros(2, 1, 8, 8)

METRICS = [
    *[
        row
        for f in (metrics.pearson_r, metrics.cosine_similarity)
        for row in (
            ok(f, X, TRAIN[:2], check=lambda r: r.shape == (2,) and bool((r.abs() <= 1 + 1e-6).all())),
            ok(f, CONST, X),  # an undefined correlation or angle comes out as 0, not NaN
            ok(f, X[:0], X[:0]),
            ok(f, X.double(), TRAIN[:2]),
            bad("a", f, X[0], TRAIN[0]),
            bad("b", f, X, TRAIN[:2, 0]),
            bad("same shape", f, X, TRAIN),
            bad("a", f, X.long(), TRAIN[:2]),
            bad("a", f, X_NAN, TRAIN[:2]),
            bad("b", f, X, X_INF),
            bad("a", f, X.tolist(), TRAIN[:2]),
            bad("b", f, X, None),
        )
    ],
    ok(metrics.nearest_neighbours, X, TRAIN, check=lambda r: r[1].tolist() == [int(i) for i in r[1]]),
    ok(metrics.nearest_neighbours, TRAIN, TRAIN, chunk=1, check=lambda r: r[1].tolist() == [0, 1, 2, 3]),
    bad("chunk", metrics.nearest_neighbours, X, TRAIN, chunk=0),
    bad("chunk", metrics.nearest_neighbours, X, TRAIN, chunk=-1),
    bad("chunk", metrics.nearest_neighbours, X, TRAIN, chunk=2.5),
    bad("chunk", metrics.nearest_neighbours, X, TRAIN, chunk="4"),
    bad("train", metrics.nearest_neighbours, X, TRAIN[:0]),
    bad("train", metrics.nearest_neighbours, X, _rand(4, 3, 8, 8)),
    bad("train", metrics.nearest_neighbours, X, _rand(4, 1, 4, 4)),
    bad("x", metrics.nearest_neighbours, X[0], TRAIN),
    bad("x", metrics.nearest_neighbours, X_NAN, TRAIN),
    ok(metrics.effective_number, torch.tensor([0.5, 0.5]), check=lambda r: abs(float(r) - 2) < 1e-9),
    ok(metrics.effective_number, torch.tensor([[1.0, 0.0], [0.5, 0.5]]), dim=1),
    ok(metrics.effective_number, [0.25, 0.75]),
    ok(metrics.effective_number, torch.tensor([0, 1])),
    bad("weights", metrics.effective_number, torch.tensor([-0.5, 1.5])),
    bad("weights", metrics.effective_number, torch.tensor([NAN, 1.0])),
    bad("weights", metrics.effective_number, torch.tensor([0.2, 0.2])),
    bad("weights", metrics.effective_number, torch.zeros(3)),
    bad("weights", metrics.effective_number, "abc"),
    bad("weights", metrics.effective_number, None),
    bad("dim", metrics.effective_number, torch.tensor([0.5, 0.5]), dim=5),
    bad("dim", metrics.effective_number, torch.tensor([0.5, 0.5]), dim=1.5),
    ok(metrics.recognisable, DIGITS, check=lambda r: 0.0 <= r <= 1.0),
    ok(metrics.recognisable, DIGITS, threshold=0.0),
    bad("threshold", metrics.recognisable, DIGITS, threshold=1.5),
    bad("threshold", metrics.recognisable, DIGITS, threshold=1.0),
    bad("threshold", metrics.recognisable, DIGITS, threshold=-0.1),
    bad("threshold", metrics.recognisable, DIGITS, threshold=NAN),
    bad("threshold", metrics.recognisable, DIGITS, threshold="0.5"),
    bad("threshold", metrics.recognisable, DIGITS, threshold=True),
    bad("images", metrics.recognisable, X),
    bad("images", metrics.recognisable, DIGITS[:0]),
    bad("images", metrics.recognisable, DIGITS[0]),
    bad("reader", metrics.recognisable, DIGITS, reader="x", error=TypeError),
    ok(metrics.frechet_distance, DIGITS, DIGITS.flip(-1), check=lambda r: r >= 0.0),
    bad("a", metrics.frechet_distance, DIGITS[:1], DIGITS),
    bad("b", metrics.frechet_distance, DIGITS, DIGITS[:1]),
    bad("a", metrics.frechet_distance, X, DIGITS),
    bad("b", metrics.frechet_distance, DIGITS, DIGITS.double() * NAN),
    bad("a", metrics.frechet_distance, DIGITS[0], DIGITS),
    bad("a", metrics.frechet_distance, DIGITS[:0], DIGITS),
    bad("reader", metrics.frechet_distance, DIGITS, DIGITS, reader=5, error=TypeError),
    ok(metrics.gaussian_frechet, torch.zeros(2), torch.eye(2), torch.ones(2), torch.eye(2), check=lambda r: r == 2.0),
    bad("cov_a", metrics.gaussian_frechet, torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2)),
    bad("mu_b", metrics.gaussian_frechet, torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(2)),
    bad("cov_b", metrics.gaussian_frechet, torch.zeros(2), torch.eye(2), torch.zeros(2), torch.ones(2)),
    bad("mu_a", metrics.gaussian_frechet, torch.tensor([NAN, 0.0]), torch.eye(2), torch.zeros(2), torch.eye(2)),
]


@_table(METRICS)
def test_metrics(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- calibration


def els_maker(p):
    return machines.ELSDenoiser(TRAIN, patch_size=p)


def nan_maker(p):
    return nan_denoiser


def calibrate(**kwargs):
    args = dict(network=half_denoiser, make_machine=els_maker, shape=(1, 8, 8), seeds=[0], patch_sizes=[1, 3], steps=2)
    return calibration.calibrate(**{**args, **kwargs}, progress=False)


def calibrated_sizes(**kwargs):
    return calibrate(**kwargs).patch_sizes


SCALE = calibration.ScaleSchedule([1.0, 0.5], [5, 3])

CALIBRATION = [
    ok(calibrate, check=lambda r: len(r.patch_sizes) == 2 and set(r.patch_sizes) <= {1, 3}),
    ok(calibrated_sizes, search="local", patch_sizes=[1, 3, 5]),  # sizes not tried are NaN in .similarity
    ok(calibrate, patch_sizes=(np.int64(3),)),
    bad("patch_sizes", calibrate, patch_sizes=[]),
    bad("patch_sizes", calibrate, patch_sizes=[4]),
    bad("patch_sizes", calibrate, patch_sizes=[3.5]),
    bad("patch_sizes", calibrate, patch_sizes=["a", 3]),
    bad("patch_sizes", calibrate, patch_sizes=5),
    bad("seeds", calibrate, seeds=[]),
    bad("seeds", calibrate, seeds=[-1]),
    bad("seeds", calibrate, seeds=5),
    bad("seeds", calibrate, seeds=[0.5]),
    bad("steps", calibrate, steps=0),
    bad("steps", calibrate, steps=2.5),
    bad("shape", calibrate, shape=(8, 8)),
    bad("shape", calibrate, shape=(1, 0, 8)),
    bad("shape", calibrate, shape="abc"),
    bad("shape", calibrate, shape=(1, 8.5, 8)),
    bad("search", calibrate, search="greedy"),
    bad("similarity", calibrate, similarity=5, error=TypeError),
    bad("network", calibrate, network=5, error=TypeError),
    bad("network", calibrate, network=nan_denoiser),
    bad("make_machine", calibrate, make_machine=5, error=TypeError),
    bad("make_machine", calibrate, make_machine=nan_maker),
    bad("schedule", calibrate, schedule="nope"),
    ok(SCALE, 0.7, check=lambda r: r in (5, 3) and isinstance(r, int)),
    ok(SCALE, torch.tensor(0.5), check=lambda r: r == 3),
    ok(SCALE, 0.0, check=lambda r: r == 3),
    bad("t", SCALE, "x"),
    bad("t", SCALE, 2.0),
    bad("t", SCALE, NAN),
    bad("t", SCALE, torch.tensor([1.0, 0.0])),
    bad("t", SCALE, None),
    ok(calibration.ScaleSchedule, [1.0, 0.5], [np.int64(5), 3]),
    bad("times", calibration.ScaleSchedule, [1.0, 0.5], [3]),
    bad("times", calibration.ScaleSchedule, [], []),
    bad("times", calibration.ScaleSchedule, [NAN], [3]),
    bad("times", calibration.ScaleSchedule, [2.0], [3]),
    bad("times", calibration.ScaleSchedule, 1.0, [3]),
    bad("times", calibration.ScaleSchedule, ["1.0"], [3]),
    bad("patch_sizes", calibration.ScaleSchedule, [1.0], [4]),
    bad("patch_sizes", calibration.ScaleSchedule, [1.0], 3),
    bad("patch_sizes", calibration.ScaleSchedule, [1.0], [3.0]),
    ok(calibration.ScaleSchedule.from_dict, SCALE.to_dict(), check=lambda r: r.patch_sizes == [5, 3]),
    bad("times", calibration.ScaleSchedule.from_dict, {}),
    bad("patch_sizes", calibration.ScaleSchedule.from_dict, {"times": [1.0]}),
    bad("from_dict", calibration.ScaleSchedule.from_dict, "x"),
    bad("from_dict", calibration.ScaleSchedule.from_dict, None),
    bad("patch_sizes", calibration.ScaleSchedule.from_dict, {"times": [1.0], "patch_sizes": [4]}),
    ok(calibration.best_patch_sizes, torch.rand(2, 3, 2), [1, 3], check=lambda r: r.shape == (2, 3)),
    bad("similarity", calibration.best_patch_sizes, torch.zeros(2, 3), [1, 3]),
    bad("similarity", calibration.best_patch_sizes, torch.zeros(1, 2, 3), [1, 3]),
    ok(calibration.best_patch_sizes, [[[0.1, 0.2]]], [1, 3], check=lambda r: r.tolist() == [[3]]),
    bad("sizes", calibration.best_patch_sizes, torch.zeros(1, 2, 1), 5),
]


@_table(CALIBRATION)
def test_calibration(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- networks


def forward(net, x=X, t=0.5, label=None):
    return net(x, t, label=label)


NETWORKS = [
    ok(networks.ResNet, channels=4, blocks=1),
    ok(networks.ResNet, in_channels=3, channels=2, blocks=2, padding="circular", num_classes=3, target="v"),
    *[bad("channels", networks.ResNet, channels=c) for c in (0, -1, 2.5, "8", None)],
    *[bad("in_channels", networks.ResNet, in_channels=c) for c in (0, -1, 1.5)],
    *[bad("blocks", networks.ResNet, blocks=b) for b in (0, -1, 2.5, "6")],
    *[bad("padding", networks.ResNet, padding=p) for p in ("reflect", "same", None, 1)],
    *[bad("target", networks.ResNet, target=t) for t in ("x0", None, "EPS")],
    *[bad("num_classes", networks.ResNet, num_classes=k) for k in (0, -1, 2.5, True, "10")],
    ok(networks.UNet, channels=4),
    ok(networks.UNet, channels=4, attention=True),
    *[bad("channels", networks.UNet, channels=c) for c in (0, 2.5, "4")],
    bad("channels", networks.UNet, channels=3, attention=True),  # heads must divide the width
    bad("in_channels", networks.UNet, in_channels=0),
    bad("padding", networks.UNet, padding="same"),
    bad("target", networks.UNet, target="x0"),
    bad("num_classes", networks.UNet, num_classes=0),
    ok(forward, RES, check=lambda r: r.shape == X.shape),
    ok(forward, RES, X.double(), check=lambda r: r.dtype == torch.float64 and r.shape == X.shape),
    ok(forward, RES, X.half()),
    ok(forward, RES, t=torch.tensor([0.1, 0.9])),
    ok(forward, CRES, label=1),
    ok(forward, CRES, label=[0, -1]),
    ok(forward, UNET, check=lambda r: r.shape == X.shape),
    ok(forward, UNET, X.double()),
    bad("channels", forward, RES, _rand(2, 3, 8, 8)),
    bad("channels", forward, UNET, _rand(2, 3, 8, 8)),
    bad("x", forward, RES, X.long()),
    bad("x", forward, RES, X[0]),
    bad("x", forward, RES, X.tolist()),
    bad("x", forward, RES, X_NAN),
    bad("x", forward, RES, META),
    bad("x", forward, UNET, X[0]),
    bad("x", forward, UNET, _rand(2, 1, 6, 6)),
    bad("t", forward, RES, t=-0.1),
    bad("t", forward, RES, t="0.5"),
    bad("t", forward, RES, t=torch.tensor([0.5, 0.5, 0.5])),
    bad("t", forward, UNET, t=NAN),
    bad("label", forward, RES, label=1),
    bad("label", forward, CRES, label=5),
    bad("label", forward, CRES, label=-2),
    bad("label", forward, CRES, label=1.5),
    bad("label", forward, CRES, label="a"),
    bad("label", forward, CRES, label=True),
    bad("label", forward, CRES, label=[0]),
    bad("label", forward, CRES, label=torch.tensor([0.0, 1.0])),
    ok(networks.as_denoiser(RES), X, 0.5, check=lambda r: r.shape == X.shape),
    ok(networks.as_denoiser(RES, "linear"), X.double(), torch.tensor([0.3, 0.6])),
    ok(networks.as_denoiser(CRES).eps, X, 0.5, label=0),
    bad("net", networks.as_denoiser, 5),
    bad("net", networks.as_denoiser, nn.Linear(2, 2)),
    bad("net", networks.as_denoiser, zero_denoiser),
    bad("schedule", networks.as_denoiser, RES, "nope"),
    bad("x_t", networks.as_denoiser(RES), _rand(2, 3, 8, 8), 0.5),
    bad("x_t", networks.as_denoiser(RES), X_NAN, 0.5),
    bad("x_t", networks.as_denoiser(RES), X[0], 0.5),
    bad("t", networks.as_denoiser(RES), X, 1.5),
    bad("label", networks.as_denoiser(CRES), X, 0.5, label=9),
    bad("kind", networks.build, "vit"),
    bad("foo", networks.build, "resnet", foo=1, error=TypeError),
    ok(networks.regression_target, X, NOISE, 0.6, 0.8, "v"),
    bad("target", networks.regression_target, X, NOISE, 0.6, 0.8, "x0"),
    bad("target", networks.split_output, X, NOISE, 0.6, 0.8, "x0"),
]


@_table(NETWORKS)
def test_networks(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- training


def fit(net=None, images=TRAIN, **kwargs):
    net = tiny_resnet(num_classes=kwargs.pop("num_classes", None)) if net is None else net
    return training.train(net, images, **{"steps": 2, "batch_size": 2, "progress": False, **kwargs})


def _checkpoint(kind="resnet", edit=None, path="run.ckpt"):
    net = tiny_resnet() if kind == "resnet" else tiny_unet()
    opt = torch.optim.Adam(net.parameters())
    training.save_checkpoint(path, net, opt, training.History([0.5], 1.0), {"note": 1}, torch.Generator(), None)
    if edit is not None:
        state = torch.load(path, weights_only=True)
        edit(state)
        torch.save(state, path)
    return path


def read_edited(edit):
    return training.read_checkpoint(_checkpoint(edit=edit))


def load_edited(edit):
    return training.load_checkpoint(_checkpoint(edit=edit))


def resume_edited(edit=None, kind="resnet"):
    return fit(checkpoint=_checkpoint(kind, edit), resume=True, steps=3)


def write_text(text="hello", path="note.pt"):
    with open(path, "w") as f:
        f.write(text)
    return training.read_checkpoint(path)


def save_plain(obj, path="plain.pt"):
    torch.save(obj, path)
    return training.read_checkpoint(path)


def drop(*keys):
    def edit(state):
        for k in keys:
            state.pop(k)

    return edit


def put(key, value):
    def edit(state):
        state[key] = value

    return edit


def put_config(**changes):
    def edit(state):
        state["config"] = {**state["config"], **changes}

    return edit


def nan_weights(state):
    state["weights"]["conv_in.weight"][0, 0, 0, 0] = NAN


def bad_optimizer(state):
    state["optimizer"]["param_groups"][0]["params"] = [0]


def bad_generator(state):
    state["generator"] = torch.zeros(3, dtype=torch.uint8)


TRAINING = [
    ok(fit, check=lambda r: r.steps == 2),
    ok(fit, num_classes=2, labels=LABELS),
    ok(fit, lr=0.0),
    ok(fit, ema_decay=None),
    ok(fit, images=TRAIN.double()),
    ok(fit, checkpoint="a.ckpt", save_every=1, keep_at=[1]),
    ok(resume_edited, check=lambda r: r.steps == 3),
    *[bad("lr", fit, lr=v) for v in (-1e-3, NAN, INF, "0.001", None)],
    *[bad("save_every", fit, checkpoint="a.ckpt", save_every=v) for v in (0, -1, 1.5)],
    bad("images", fit, images=TRAIN[:0]),
    bad("images", fit, images=TRAIN[0]),
    bad("images", fit, images=X_NAN),
    bad("images", fit, images=TRAIN.long()),
    bad("images", fit, images=_rand(4, 3, 8, 8)),
    bad("labels", fit, num_classes=2, labels=LABELS[:2]),
    bad("labels", fit, num_classes=2, labels=LABELS.float()),
    bad("labels", fit, num_classes=2, labels=torch.tensor([0, 1, 2, 3])),
    ok(fit, num_classes=2, labels=torch.tensor([0, 1, -1, 0])),  # -1: "no label", as the networks take it
    bad("labels", fit, labels=LABELS),
    bad("net", training.train, "resnet", TRAIN, steps=1, progress=False),
    bad("net", training.train, nn.Linear(2, 2), TRAIN, steps=1, progress=False),
    *[bad("steps", fit, steps=v) for v in (0, -1, 2.5)],
    *[bad("batch_size", fit, batch_size=v) for v in (0, 2.5)],
    bad("warmup", fit, warmup=-1),
    bad("warmup", fit, warmup=5, steps=2),
    *[bad("seed", fit, seed=v) for v in (-1, 1.5, None, "0")],
    *[bad("label_dropout", fit, num_classes=2, labels=LABELS, label_dropout=v) for v in (1.5, -0.1, NAN, "0.1")],
    *[bad("ema_decay", fit, ema_decay=v) for v in (1.5, 1.0, -0.5, "0.9", NAN)],
    bad("keep_at", fit, keep_at=[0], checkpoint="a.ckpt"),
    bad("keep_at", fit, keep_at=[1]),
    bad("schedule", fit, schedule="nope"),
    bad("device", fit, device="nope"),
    bad("checkpoint", resume_edited, kind="unet"),
    bad("checkpoint", resume_edited, drop("weights")),
    bad("checkpoint", resume_edited, drop("losses")),
    bad("checkpoint", resume_edited, bad_optimizer),
    bad("checkpoint", resume_edited, bad_generator),
    bad("checkpoint", resume_edited, put("losses", "many")),
    bad("does not exist", training.read_checkpoint, "missing.ckpt", error=FileNotFoundError),
    bad("path", training.read_checkpoint, None, error=TypeError),
    bad("path", training.read_checkpoint, 5, error=TypeError),
    bad("note.pt", write_text),
    bad("not an elslib checkpoint", save_plain, [1, 2, 3]),
    bad("not an elslib checkpoint", save_plain, {"weights": {}}),
    ok(read_edited, None, check=lambda r: r["kind"] == "resnet"),
    bad("kind", read_edited, drop("kind")),
    bad("kind", read_edited, put("kind", "vit")),
    bad("config", read_edited, drop("config")),
    bad("config", read_edited, put("config", [1, 2])),
    bad("weights", read_edited, drop("weights")),
    bad("weights", read_edited, put("weights", 5)),
    ok(load_edited, None, check=lambda r: isinstance(r[0], networks.ResNet)),
    bad("config", load_edited, put_config(colour=True)),
    bad("checkpoint", load_edited, put_config(channels=0)),
    bad("checkpoint", load_edited, put_config(channels=8)),
    bad("NaN", load_edited, nan_weights),
    bad("net", training.save_checkpoint, "x.pt", "net"),
    ok(training.learning_rate, 3, 1e-3, 10, 2),
    bad("steps", training.learning_rate, 0, 1e-3, 0),
    bad("warmup", training.learning_rate, 0, 1e-3, 10, 10),
    ok(training.History([1.0, 2.0, 3.0]).smoothed, 2, check=lambda r: r.tolist() == [1.5, 2.5]),
    bad("window", training.History([1.0, 2.0, 3.0]).smoothed, 0),
    bad("window", training.History([1.0, 2.0, 3.0]).smoothed, 1.5),
]


@_table(TRAINING)
def test_training(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- combinatorics

STROKES = torch.full((2, 1, 8, 8), -1.0)
STROKES[0, 0, 2:5, 3] = 1.0
STROKES[1, 0, 4, 1:6] = 1.0
BINARY = combinatorics.binarise(STROKES)
ALLOWED = combinatorics.allowed_windows(BINARY, 3)
ALLOWED_1 = combinatorics.allowed_windows(BINARY, 1)

COMBINATORICS = [
    ok(combinatorics.distinct_patches, TRAIN, 3, check=lambda r: 1 <= r <= 4 * 64),
    ok(combinatorics.distinct_patches_per_position, TRAIN, 1, check=lambda r: r.shape == (8, 8)),
    *[bad("patch_size", combinatorics.distinct_patches, TRAIN, p) for p in (4, 0, -1, 2.5, "3", 17, None)],
    bad("images", combinatorics.distinct_patches, TRAIN[0], 3),
    bad("images", combinatorics.distinct_patches, X_NAN, 3),
    bad("images", combinatorics.distinct_patches_per_position, TRAIN.long(), 3),
    ok(combinatorics.binarise, TRAIN, 0.5),
    bad("images", combinatorics.binarise, _rand(2, 3, 8, 8)),
    bad("threshold", combinatorics.binarise, TRAIN, "x"),
    bad("threshold", combinatorics.binarise, TRAIN, NAN),
    ok(combinatorics.window_codes, BINARY, 3, check=lambda r: r.shape == (2, 8, 8)),
    ok(combinatorics.window_codes, BINARY.numpy().astype(int), 1),
    bad("binary", combinatorics.window_codes, BINARY[0], 3),
    bad("binary", combinatorics.window_codes, np.full((1, 4, 4), 2), 3),
    bad("patch_size", combinatorics.window_codes, BINARY, 9),
    bad("patch_size", combinatorics.window_codes, BINARY, 2),
    ok(combinatorics.decode_window, 5, 3, check=lambda r: r.sum() == 2),
    bad("code", combinatorics.decode_window, -1, 3),
    bad("code", combinatorics.decode_window, 2**9, 3),
    bad("code", combinatorics.decode_window, 1.5, 3),
    bad("patch_size", combinatorics.decode_window, 1, 4),
    ok(combinatorics.is_consistent, BINARY, ALLOWED, 3, check=lambda r: r.all()),
    bad("allowed", combinatorics.is_consistent, BINARY, [1.5], 3),
    bad("allowed", combinatorics.is_consistent, BINARY, np.zeros((2, 2), int), 3),
    ok(combinatorics.count_consistent, ALLOWED_1, 1, 2, 2, check=lambda r: r == 16),
    bad("height", combinatorics.count_consistent, ALLOWED, 3, 0, 4),
    bad("width", combinatorics.count_consistent, ALLOWED, 3, 4, 2.5),
    bad("height*width", combinatorics.count_consistent, ALLOWED, 3, 5, 5),
    bad("patch_size", combinatorics.count_consistent, ALLOWED, 4, 2, 2),
    ok(combinatorics.consistent_pieces, ALLOWED_1, 1, 2, 2, check=lambda r: r.shape == (16, 2, 2)),
    bad("height", combinatorics.consistent_pieces, ALLOWED, 3, -1, 2),
    ok(combinatorics.tiling_lower_bound, ALLOWED, 3, piece=2, size=8),
    bad("allowed", combinatorics.tiling_lower_bound, np.array([5]), 3, piece=2, size=8),
    bad("piece", combinatorics.tiling_lower_bound, ALLOWED, 3, piece=(0, 2), size=8),
    bad("piece", combinatorics.tiling_lower_bound, ALLOWED, 3, piece="ab", size=8),
    bad("piece", combinatorics.tiling_lower_bound, ALLOWED, 3, piece=(2, 2, 2), size=8),
    bad("size", combinatorics.tiling_lower_bound, ALLOWED, 3, piece=2, size=3),
    bad("size", combinatorics.tiling_lower_bound, ALLOWED, 3, piece=2, size=(8, -1)),
    ok(combinatorics.tile_image, [np.ones((2, 2), int)], 3, size=8, check=lambda r: r.sum() == 4),
    bad("pieces", combinatorics.tile_image, [], 3, size=8),
    bad("pieces", combinatorics.tile_image, [np.ones((2, 2)), np.ones((3, 3))], 3, size=8),
    bad("pieces", combinatorics.tile_image, [np.ones(2)], 3, size=8),
    bad("pieces", combinatorics.tile_image, [np.ones((2, 2))] * 5, 3, size=8),
    bad("size", combinatorics.tile_image, [np.ones((2, 2))], 3, size=0),
    ok(
        combinatorics.knuth_estimate,
        ALLOWED_1,
        1,
        3,
        3,
        runs=4,
        check=lambda r: abs(r.log10_count - 9 * math.log10(2)) < 1e-9,
    ),
    bad("runs", combinatorics.knuth_estimate, ALLOWED, 3, 4, 4, runs=0),
    bad("seed", combinatorics.knuth_estimate, ALLOWED, 3, 4, 4, runs=2, seed=-1),
    bad("height", combinatorics.knuth_estimate, ALLOWED, 3, 0, 4, runs=2),
    bad("patch_size", combinatorics.knuth_estimate, ALLOWED, 9, 4, 4, runs=2),
]


@_table(COMBINATORICS)
def test_combinatorics(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- morphogenesis

U0, V0 = np.ones((16, 16)), np.zeros((16, 16))
U_NAN = U0.copy()
U_NAN[3, 4] = NAN
SIM = dict(size=16, steps=3, n_frames=2)


def simulate(*args, **kwargs):
    return morphogenesis.simulate(*args, **{**SIM, **kwargs})


MORPHOGENESIS = [
    ok(simulate, "spots", check=lambda r: r.v.shape == (2, 16, 16)),
    ok(simulate, feed=0.03, kill=0.06),
    ok(simulate, "spots", size=(16, 12), check=lambda r: r.u.shape[1:] == (16, 12)),
    ok(simulate, "spots", steps=0, n_frames=1),
    ok(simulate, "spots", init=(U0, V0)),
    ok(simulate, "spots", size=np.int64(16)),
    bad("pattern", simulate, "nope"),
    bad("pattern", simulate, 3),
    bad("pattern", simulate, ["spots"]),
    bad("pattern", simulate),
    bad("kill", simulate, feed=0.03),
    *[bad("feed", simulate, feed=v, kill=0.06) for v in (-1, NAN, "0.03", INF)],
    bad("kill", simulate, feed=0.03, kill=-0.1),
    *[bad("size", simulate, "spots", size=v) for v in (-4, 4, (16,), 2.5, "16", (16, 0), None, (16, 2.5))],
    *[bad("steps", simulate, "spots", steps=v) for v in (-1, 2.5, "3")],
    bad("n_frames", simulate, "spots", n_frames=0),
    bad("seed", simulate, "spots", seed=-1),
    bad("du", simulate, "spots", du=0.5),
    bad("du", simulate, "spots", du=0.0),
    bad("dt", simulate, "spots", dt=0),
    bad("dt", simulate, "spots", dt=NAN),
    bad("init", simulate, "spots", init=(U_NAN, V0)),
    bad("init", simulate, "spots", init=(U0, V0 + INF)),
    bad("init", simulate, "spots", init=(U0,)),
    bad("init", simulate, "spots", init=(U0, V0[:8])),
    bad("init", simulate, "spots", init=(U0[0], V0[0])),
    bad("init", simulate, "spots", init="ab"),
    bad("init", simulate, "spots", init=5),
    ok(morphogenesis.step, U0, V0, 0.03, 0.06),
    bad("u", morphogenesis.step, U_NAN, V0, 0.03, 0.06),
    bad("v", morphogenesis.step, U0, V0[:8], 0.03, 0.06),
    bad("feed", morphogenesis.step, U0, V0, -0.03, 0.06),
    ok(morphogenesis.laplacian, U0, check=lambda r: (r == 0).all()),
    bad("field", morphogenesis.laplacian, np.ones(5)),
    bad("field", morphogenesis.laplacian, [["a"]]),
    ok(morphogenesis.uniform_states, 0.03, 0.06),
    bad("feed", morphogenesis.uniform_states, -0.03, 0.06),
    bad("kill", morphogenesis.uniform_states, 0.03, "0.06"),
    ok(morphogenesis.initial_state, 16),
    bad("size", morphogenesis.initial_state, 4),
    bad("size", morphogenesis.initial_state, (16, 4)),
    bad("n_seeds", morphogenesis.initial_state, 16, n_seeds=0),
    bad("noise", morphogenesis.initial_state, 16, noise=-1),
    bad("seed_size", morphogenesis.initial_state, 16, seed_size=0),
    bad("seed", morphogenesis.initial_state, 16, seed=1.5),
]


@_table(MORPHOGENESIS)
def test_morphogenesis(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- receptive

GRAD = _rand(1, 1, 8, 8, seed=5)
SHARES, SIZES = torch.tensor([0.2, 0.6, 1.0]), [1, 3, 5]
CONVS = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 1, 3, padding=1))

RECEPTIVE = [
    ok(receptive.conv_receptive_field, [3, 3], check=lambda r: r == 5),
    ok(receptive.conv_receptive_field, [], check=lambda r: r == 1),
    ok(receptive.conv_receptive_field, (3, 3), strides=[2, 1], check=lambda r: r == 7),
    bad("kernel_sizes", receptive.conv_receptive_field, [0]),
    bad("kernel_sizes", receptive.conv_receptive_field, 3),
    bad("kernel_sizes", receptive.conv_receptive_field, [2.5]),
    bad("dilations", receptive.conv_receptive_field, [3], dilations=[1, 1]),
    bad("dilations", receptive.conv_receptive_field, [3], dilations=[0]),
    bad("strides", receptive.conv_receptive_field, [3], strides=[0]),
    bad("strides", receptive.conv_receptive_field, [3], strides=2),
    ok(receptive.gradient_map, RES, X, 0.5, (3, 3), check=lambda r: r.shape == X.shape),
    ok(receptive.gradient_map, networks.as_denoiser(RES), X, 0.5, (0, 7)),
    ok(receptive.gradient_map, lambda x, t: x * 2, X, 0.5, (1, 1), check=lambda r: float(r.sum()) == 4.0),
    ok(receptive.gradient_map, RES, X, 0.5, (np.int64(2), 3)),
    bad("pixel", receptive.gradient_map, RES, X, 0.5, (9, 9)),
    bad("pixel", receptive.gradient_map, RES, X, 0.5, (-1, 0)),
    bad("pixel", receptive.gradient_map, RES, X, 0.5, (1,)),
    bad("pixel", receptive.gradient_map, RES, X, 0.5, (1.5, 2)),
    bad("pixel", receptive.gradient_map, RES, X, 0.5, "ab"),
    bad("pixel", receptive.gradient_map, RES, X, 0.5, 3),
    bad("x_t", receptive.gradient_map, RES, X[0], 0.5, (3, 3)),
    bad("x_t", receptive.gradient_map, RES, X_NAN, 0.5, (3, 3)),
    bad("t", receptive.gradient_map, RES, X, 1.5, (3, 3)),
    bad("model", receptive.gradient_map, 5, X, 0.5, (3, 3), error=TypeError),
    bad("model", receptive.gradient_map, machines.IdealDenoiser(TRAIN), X, 0.5, (3, 3)),
    bad("model", receptive.gradient_map, CONVS, X, 0.5, (3, 3)),
    ok(receptive.measured_receptive_field, RES, size=16, check=lambda r: r == 7),
    ok(receptive.measured_receptive_field, CONVS, size=8, check=lambda r: r == 5),
    bad("net", receptive.measured_receptive_field, 5),
    bad("net", receptive.measured_receptive_field, nn.Linear(2, 2)),
    bad("size", receptive.measured_receptive_field, RES, size=2),
    bad("size", receptive.measured_receptive_field, RES, size=6),
    bad("seeds", receptive.measured_receptive_field, RES, size=16, seeds=[]),
    bad("seeds", receptive.measured_receptive_field, RES, size=16, seeds=[-1]),
    bad("seeds", receptive.measured_receptive_field, RES, size=16, seeds=3),
    ok(receptive.window_mask, (8, 8), (3, 3), 3, check=lambda r: int(r.sum()) == 9),
    bad("patch_size", receptive.window_mask, (8, 8), (3, 3), 4),
    bad("pixel", receptive.window_mask, (8, 8), (9, 3), 3),
    bad("size", receptive.window_mask, (8,), (3, 3), 3),
    bad("size", receptive.window_mask, (0, 8), (0, 0), 3),
    ok(receptive.gradient_mass, GRAD, check=lambda r: r.shape == (1, 8, 8)),
    bad("grad", receptive.gradient_mass, torch.zeros(8)),
    bad("grad", receptive.gradient_mass, [[0.0]]),
    bad("grad", receptive.gradient_mass, torch.zeros(1, 1, 1, 8, 8)),
    ok(receptive.share_inside_window, GRAD[0], (3, 3), 3, check=lambda r: 0.0 <= r <= 1.0),
    ok(receptive.share_inside_window, torch.zeros(8, 8), (3, 3), 3, check=lambda r: r == 0.0),
    bad("patch_size", receptive.share_inside_window, GRAD[0], (3, 3), 4),
    bad("pixel", receptive.share_inside_window, GRAD[0], (3, 30), 3),
    bad("grad", receptive.share_inside_window, GRAD[0] * NAN, (3, 3), 3),
    ok(receptive.share_by_window, GRAD[0], (3, 3), check=lambda r: r.shape == (8,)),
    ok(receptive.share_by_window, GRAD, (3, 3), [1, 3], check=lambda r: r.shape == (1, 2)),
    bad("sizes", receptive.share_by_window, GRAD[0], (3, 3), [2]),
    bad("sizes", receptive.share_by_window, GRAD[0], (3, 3), []),
    bad("sizes", receptive.share_by_window, GRAD[0], (3, 3), 3),
    ok(receptive.effective_window, SHARES, SIZES, check=lambda r: r == 5),
    ok(receptive.effective_window, SHARES, SIZES, level=0.5, check=lambda r: r == 3),
    bad("level", receptive.effective_window, SHARES, SIZES, level=0),
    bad("level", receptive.effective_window, SHARES, SIZES, level=NAN),
    bad("level", receptive.effective_window, SHARES, SIZES, level="0.5"),
    bad("level", receptive.effective_window, SHARES, SIZES, level=1.5),
    bad("sizes", receptive.effective_window, SHARES, [1, 3]),
    bad("sizes", receptive.effective_window, [], []),
    bad("shares", receptive.effective_window, [NAN, 1.0], [1, 3]),
    bad("shares", receptive.effective_window, "ab", [1, 3]),
]


@_table(RECEPTIVE)
def test_receptive(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- symmetry


def identity(x):
    return x.clone()


SHIFTS = [(1, 0), (2, -3)]


def seen_distances(*args, **kwargs):
    profile = symmetry.equivariance_by_distance(*args, **kwargs)
    assert profile.shape == (len(args[2]), 5)
    return profile[~profile.isnan()]


SYMMETRY = [
    ok(symmetry.shift, X, 1, -2, check=lambda r: torch.equal(r, torch.roll(X, (1, -2), (-2, -1)))),
    ok(symmetry.shift, X, 3, 3, mode="zeros", fill=-1.0),
    ok(symmetry.shift, X, np.int64(1), 0),
    ok(symmetry.shift, X[0, 0], 1, 1),
    ok(symmetry.shift, X, 20, 0, mode="zeros", check=lambda r: (r == 0).all()),
    bad("dy", symmetry.shift, X, 1.5, 0),
    bad("dy", symmetry.shift, X, "1", 0),
    bad("dx", symmetry.shift, X, 0, "a"),
    bad("dx", symmetry.shift, X, 0, None),
    bad("x", symmetry.shift, "x", 1, 1),
    bad("x", symmetry.shift, torch.zeros(8), 1, 1),
    bad("mode", symmetry.shift, X, 1, 1, mode="reflect"),
    bad("fill", symmetry.shift, X, 1, 1, mode="zeros", fill="x"),
    bad("fill", symmetry.shift, X, 1, 1, mode="zeros", fill=NAN),
    ok(symmetry.valid_mask, (8, 8), 1, 1, mode="zeros", check=lambda r: int(r.sum()) == 49),
    bad("mode", symmetry.valid_mask, (8, 8), 1, 1, mode="x"),
    bad("dy", symmetry.valid_mask, (8, 8), 1.5, 1, mode="zeros"),
    ok(symmetry.border_distance, (8, 8), 1, 2),
    bad("mode", symmetry.border_distance, (8, 8), 1, 1, mode="x"),
    bad("dx", symmetry.border_distance, (8, 8), 1, 0.5),
    bad("size", symmetry.distance_to_edge, (8,)),
    ok(symmetry.all_shifts, (2, 3), check=lambda r: len(r) == 6),
    bad("size", symmetry.all_shifts, (2, -3)),
    ok(symmetry.equivariance_error, identity, X, SHIFTS, check=lambda r: r.tolist() == [0.0, 0.0]),
    ok(symmetry.equivariance_error, identity, X, SHIFTS, mode="zeros", min_border=1),
    bad("shifts", symmetry.equivariance_error, identity, X, [(1,)]),
    bad("shifts", symmetry.equivariance_error, identity, X, 5),
    bad("shifts", symmetry.equivariance_error, identity, X, [(1.5, 0)]),
    bad("f", symmetry.equivariance_error, 5, X, SHIFTS, error=TypeError),
    bad("f", symmetry.equivariance_error, lambda x: x[..., :4], X, SHIFTS),
    bad("f", symmetry.equivariance_error, lambda x: x[:1], X, SHIFTS),
    bad("batch", symmetry.equivariance_error, identity, X, SHIFTS, batch=0),
    bad("batch", symmetry.equivariance_error, identity, X, SHIFTS, batch=-1),
    bad("min_border", symmetry.equivariance_error, identity, X, SHIFTS, min_border=-1),
    bad("min_border", symmetry.equivariance_error, identity, X, SHIFTS, min_border=1.5),
    bad("x", symmetry.equivariance_error, identity, X[0], SHIFTS),
    bad("mode", symmetry.equivariance_error, identity, X, SHIFTS, mode="x"),
    ok(symmetry.equivariance_map, identity, X, 1, 1, check=lambda r: float(r[0].max()) == 0.0),
    bad("f", symmetry.equivariance_map, 5, X, 1, 1, error=TypeError),
    bad("dy", symmetry.equivariance_map, identity, X, 1.5, 0),
    bad("x", symmetry.equivariance_map, identity, X_NAN, 1, 0),
    ok(seen_distances, identity, X, SHIFTS, check=lambda r: (r == 0).all()),  # NaN: distances that do not occur
    bad("shifts", symmetry.equivariance_by_distance, identity, X, [(1, 2, 3)]),
    bad("batch", symmetry.equivariance_by_distance, identity, X, SHIFTS, batch=-3),
    bad("f", symmetry.equivariance_by_distance, lambda x: x.sum(), X, SHIFTS),
    ok(
        symmetry.nearest_shifted,
        torch.roll(TRAIN[:2], (1, 2), (-2, -1)),
        TRAIN,
        check=lambda r: r[1].tolist() == [0, 1],
    ),
    ok(symmetry.nearest_shifted, X, TRAIN, chunk=1),
    bad("chunk", symmetry.nearest_shifted, X, TRAIN, chunk=0),
    bad("chunk", symmetry.nearest_shifted, X, TRAIN, chunk=-1),
    bad("chunk", symmetry.nearest_shifted, X, TRAIN, chunk=1.5),
    bad("train", symmetry.nearest_shifted, X, TRAIN[:0]),
    bad("train", symmetry.nearest_shifted, X, _rand(4, 3, 8, 8)),
    bad("x", symmetry.nearest_shifted, X[0], TRAIN),
]


@_table(SYMMETRY)
def test_symmetry(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)


# --------------------------------------------------------------------------- pretrained and the reader

PRETRAINED = [
    ok(pretrained.available, check=lambda r: isinstance(r, list)),
    ok(pretrained.metadata, "resnet-zeros", check=lambda r: "sha256" in r),
    ok(pretrained.load, "resnet-zeros", device="cpu", check=lambda r: isinstance(r, nn.Module)),
    *[bad("name", f, n) for f in (pretrained.load, pretrained.metadata) for n in ("nope", 3, None, "ResNet-Zeros")],
    bad("name", pretrained.weights_path, "nope"),
    bad("device", pretrained.load, "resnet-zeros", device="nope"),
    bad("name", pretrained.train, "nope"),
    bad("steps", pretrained.train, "resnet-zeros", steps=0),
    bad("steps", pretrained.train, "resnet-zeros", steps=2.5),
    bad("out_dir", pretrained.train, "resnet-zeros", out_dir="x", record=True),
    ok(reader.read, DIGITS, check=lambda r: r[0].shape == (3,) and bool(((r[1] >= 0) & (r[1] <= 1)).all())),
    ok(reader.read, DIGITS.double()),
    ok(reader.read, DIGITS[:0], check=lambda r: r[0].shape == (0,) and r[1].shape == (0,)),
    ok(reader.features, DIGITS, check=lambda r: r.shape == (3, reader.FEATURES)),
    ok(reader.features, DIGITS[:0], check=lambda r: r.shape == (0, reader.FEATURES)),
    bad("images", reader.read, X),
    bad("images", reader.read, _rand(2, 3, 32, 32)),
    bad("images", reader.read, DIGITS * NAN),
    bad("images", reader.read, DIGITS.long()),
    bad("images", reader.read, DIGITS[0]),
    bad("images", reader.read, DIGITS.tolist()),
    bad("reader", reader.read, DIGITS, reader="x", error=TypeError),
    bad("reader", reader.read, DIGITS, reader=RES, error=TypeError),
    bad("images", reader.features, X),
    bad("batch", reader.features, DIGITS, batch=0),
    bad("no digit reader", reader.load, "missing-reader.pt", error=FileNotFoundError),
]


@_table(PRETRAINED)
def test_pretrained_and_reader(fn, args, kwargs, outcome, match):
    _outcome(fn, args, kwargs, outcome, match)
