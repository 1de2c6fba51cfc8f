"""Bad input to the rest of the public API: a clear error naming the argument, never a silently wrong result."""

import math

import pytest
import torch

from elslib import data, metrics, morphogenesis, pretrained, sampling, schedules


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: schedules.cosine(offset=math.inf), "offset must be a finite number"),
        (lambda: schedules.cosine(offset=math.nan), "offset must be a finite number"),
        (lambda: schedules.cosine(offset="0.008"), "offset must be a finite number"),
        (lambda: schedules.linear(beta_max=math.inf), "beta_max=inf"),
        (lambda: schedules.linear(beta_min=math.nan), "beta_min=nan"),
        (lambda: schedules.linear(beta_min=2.0, beta_max=1.0), "beta_min <= beta_max"),
        (lambda: sampling.step_times(10**9), "steps must be at most"),
        (lambda: sampling.ddim(lambda x, t: x, torch.zeros(1, 1, 4, 4), steps=10**9, progress=False), "at most"),
        (lambda: metrics.nearest_neighbours(torch.zeros(2, 1, 4, 4), torch.zeros(3, 1, 4, 4), chunk=-1), "chunk"),
        (lambda: metrics.nearest_neighbours(torch.zeros(2, 1, 4, 4), torch.zeros(0, 1, 4, 4)), "train must hold"),
        (lambda: metrics.effective_number(torch.tensor([-0.5, 1.5])), "weights must be finite and >= 0"),
        (lambda: metrics.effective_number(torch.tensor([math.nan, 1.0])), "weights must be finite and >= 0"),
        (lambda: data.load("digits", seed=None), "seed must be an integer"),
        (lambda: pretrained.train("resnet-zeros", steps=0), "steps must be an integer >= 1"),
        (lambda: morphogenesis.simulate(feed=1e6, kill=0.06, size=16, steps=200, n_frames=1), "diverged"),
        # absurd sizes are refused before the allocation, naming what asked for the memory
        (lambda: sampling.noise_like((10**9, 1, 32, 32)), r"shape \(1000000000, 1, 32, 32\) needs 3,814.7 GiB"),
        (
            lambda: sampling.ddim(
                lambda x, t: x, torch.zeros(10**4, 1, 32, 32), steps=10**5, return_trajectory=True, progress=False
            ),
            "a trajectory of 100000 steps for this batch needs",
        ),
    ],
)
def test_a_clear_error_names_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_denoiser_that_returns_nan_or_inf_is_named_with_its_step(bad):
    def broken(x, t):
        return x * bad if t < 0.6 else x  # fine at first, broken from t = 0.5 on

    for sampler in (sampling.ddim, sampling.ddpm):
        with pytest.raises(ValueError, match=r"step \d+ of 4 \(t = 0\.5\)"):
            sampler(broken, torch.ones(1, 1, 4, 4), steps=4, progress=False)


def test_valid_edges_still_work():
    assert schedules.cosine(offset=0).alpha_bar(1.0) == pytest.approx(0.0, abs=1e-12)
    assert len(sampling.step_times(sampling.MAX_STEPS)) == sampling.MAX_STEPS + 1
    w = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    assert metrics.effective_number(w).tolist() == pytest.approx([1.0, 2.0])
    d, i = metrics.nearest_neighbours(torch.zeros(2, 1, 4, 4), torch.ones(3, 1, 4, 4), chunk=1)
    assert d.tolist() == [1.0, 1.0] and i.tolist() == [0, 0]


def test_flipped_bytes_in_shipped_weights_are_refused(tmp_path, monkeypatch):
    import shutil

    from elslib import pretrained, reader

    for name in ("resnet-zeros.pt", "resnet-zeros.json", "digit-reader.pt", "digit-reader.json"):
        shutil.copy(pretrained.WEIGHTS_DIR / name, tmp_path / name)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    assert pretrained.load("resnet-zeros") is not None  # intact: loads
    for name in ("resnet-zeros.pt", "digit-reader.pt"):
        raw = bytearray((tmp_path / name).read_bytes())
        middle = len(raw) // 2
        raw[middle : middle + 64] = bytes(b ^ 0xFF for b in raw[middle : middle + 64])
        (tmp_path / name).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        pretrained.load("resnet-zeros")
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        reader.load(tmp_path / "digit-reader.pt")


def test_every_shipped_weight_file_carries_its_checksum():
    from elslib import pretrained, training

    for meta_path in pretrained.WEIGHTS_DIR.glob("*.json"):
        import json

        meta = json.loads(meta_path.read_text())
        assert meta.get("sha256") == training.file_sha256(meta_path.with_suffix(".pt")), meta_path.name


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    from elslib import networks, training

    net = networks.ResNet(channels=4, blocks=1)
    with torch.no_grad():
        next(net.parameters())[0] = math.nan
    path = training.save_checkpoint(tmp_path / "nan.pt", net)
    with pytest.raises(ValueError, match="nan.pt is damaged: it holds NaN"):
        training.load_checkpoint(path)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["train", "resnet-zeros", "--steps", "0"], "steps must be an integer >= 1"),
        (["reproduce", "--seeds", "0"], "seeds must be an integer >= 1"),
        (["reproduce", "--seeds", "-3"], "seeds must be an integer >= 1"),
        (["reproduce", "--names"], "names must name at least one network"),
        (["reproduce", "--names", "resnet-zeros", "unet-zero"], "'unet-zero' is not a network of the course"),
        (["quality", "--names"], "names must name at least one network"),
        (["quality", "--names", "vae"], "'vae' is not a network of the course"),
    ],
)
def test_the_command_line_says_a_user_error_in_one_line(argv, match, capsys, monkeypatch):
    from elslib import data
    from elslib.__main__ import main

    def no_data(*args, **kwargs):  # the arguments are checked before any data loads
        raise AssertionError("data loaded before the arguments were checked")

    monkeypatch.setattr(data, "load", no_data)

    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
