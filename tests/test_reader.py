"""The digit reader and the two measures built on it: read rates and the Frechet distance."""

import numpy as np
import pytest
import scipy.linalg
import torch

from elslib import data, metrics, reader, sampling

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def held_out():
    return reader.held_out()


def test_the_shipped_reader_reads_the_digits_it_never_saw(held_out):
    images, labels = held_out
    assert len(images) == 1000 and torch.bincount(labels).tolist() == [100] * 10
    predicted, confidence = reader.read(images)
    accuracy = float((predicted == labels).float().mean())
    assert accuracy >= 0.97, accuracy
    assert accuracy == pytest.approx(reader.metadata()["accuracy"], abs=1e-6)  # the stored number is this one
    # the training digits and the held-out ones do not overlap
    train, _ = data.load("mnist")
    assert not any(torch.equal(train[: reader.N_TRAIN][k], images[0]) for k in range(reader.N_TRAIN))
    assert metrics.recognisable(images) == pytest.approx(float((confidence > reader.THRESHOLD).float().mean()))


def test_noise_and_broken_digits_do_not_read_as_digits(held_out):
    noise = sampling.noise_like((200, 1, 32, 32), seed=0).clamp(-1, 1)
    assert metrics.recognisable(noise) < 0.05
    blank = torch.full((10, 1, 32, 32), -1.0)
    assert metrics.recognisable(blank) < 0.5
    # digits the reader never saw, cut into shuffled tiles or drawn over each other (fresh draws)
    images, labels = held_out
    broken = reader.not_digits(images, labels, 300, torch.Generator().manual_seed(12345))
    assert metrics.recognisable(broken) < 0.2
    assert metrics.recognisable(broken) == pytest.approx(reader.metadata()["not_digits_recognisable"], abs=0.1)
    assert metrics.recognisable(held_out[0]) > 0.85
    assert metrics.recognisable(held_out[0], threshold=0.0) == 1.0  # every image has a top class
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match="threshold"):
            metrics.recognisable(noise, threshold=bad)
    with pytest.raises(ValueError, match="channels"):
        metrics.recognisable(torch.zeros(2, 3, 32, 32))


def test_frechet_distance_against_closed_forms():
    gen = torch.Generator().manual_seed(1)
    d, f64 = 6, torch.float64
    # diagonal covariances: FD = |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    mu_a, mu_b = torch.randn(d, generator=gen, dtype=f64), torch.randn(d, generator=gen, dtype=f64)
    va, vb = torch.rand(d, generator=gen, dtype=f64) + 0.1, torch.rand(d, generator=gen, dtype=f64) + 0.1
    expected = float((mu_a - mu_b).square().sum() + (va.sqrt() - vb.sqrt()).square().sum())
    assert metrics.gaussian_frechet(mu_a, torch.diag(va), mu_b, torch.diag(vb)) == pytest.approx(expected, rel=1e-9)
    # full covariances: against scipy's general matrix square root
    ma, mb = (
        torch.randn(d, d, generator=gen, dtype=torch.float64),
        torch.randn(d, d, generator=gen, dtype=torch.float64),
    )
    sa, sb = ma @ ma.T, mb @ mb.T + 0.1 * torch.eye(d, dtype=torch.float64)
    root = scipy.linalg.sqrtm(sa.numpy() @ sb.numpy()).real
    expected = float((mu_a - mu_b).square().sum()) + float(np.trace(sa.numpy() + sb.numpy() - 2 * root))
    assert metrics.gaussian_frechet(mu_a, sa, mu_b, sb) == pytest.approx(expected, rel=1e-7)
    assert metrics.gaussian_frechet(mu_a, sa, mu_a, sa) == pytest.approx(0.0, abs=1e-9)
    assert metrics.gaussian_frechet(mu_a, sa, mu_b, sb) == pytest.approx(metrics.gaussian_frechet(mu_b, sb, mu_a, sa))


def test_frechet_distance_of_digit_sets(held_out):
    images, _ = held_out
    a, b = images[:500], images[500:]
    same_kind = metrics.frechet_distance(a, b)
    noise = sampling.noise_like((500, 1, 32, 32), seed=2).clamp(-1, 1)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert same_kind < 0.2 * metrics.frechet_distance(a, noise)
    feats = reader.features(a)
    assert feats.shape == (500, reader.FEATURES) and feats.dtype == torch.float64
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(a[:1], b)


def test_same_seed_same_reader():
    one, meta = reader.train(steps=3, batch_size=8, progress=False)
    two, _ = reader.train(steps=3, batch_size=8, progress=False)
    for (k, v), (_, w) in zip(one.state_dict().items(), two.state_dict().items(), strict=True):
        assert torch.equal(v, w), k
    assert 0.0 <= meta["accuracy"] <= 1.0 and meta["steps"] == 3


def test_a_damaged_reader_file_is_named(tmp_path):
    bad = tmp_path / "digit-reader.pt"
    bad.write_bytes(reader.WEIGHTS.read_bytes()[:1000])
    with pytest.raises(ValueError, match="digit-reader.pt"):
        reader.load(bad)
    with pytest.raises(FileNotFoundError, match="train-reader"):
        reader.load(tmp_path / "missing.pt")


def test_quality_of_a_copying_machine_is_that_of_real_digits(held_out):
    from elslib import machines, quality

    images, _ = held_out
    copies = quality.measure(machines.IdealDenoiser(images[:100]), n=16)  # samples are held-out digits
    real = quality.real_digits(16)
    assert copies["images"] == 16 and copies["recognisable"] >= 0.8 and real["recognisable"] >= 0.8
    samples = quality.samples(machines.IdealDenoiser(images[:100]), 16)
    assert float(metrics.nearest_neighbours(samples, images[:100])[0].max()) < 1e-3  # they are copies indeed
    blank = quality.measure(lambda x, t: torch.full_like(x, -1.0), n=16)  # blank pages
    assert blank["recognisable"] == 0.0 and blank["frechet"] > 5 * copies["frechet"]
    text = quality.table({"real": real, "copies": copies}, 16)
    assert "| copies |" in text and "16 images each" in text
    with pytest.raises(ValueError, match="at most 500"):
        quality.reference(501)


def test_a_recorded_quality_row_is_read_back(tmp_path, monkeypatch):
    from elslib import networks, pretrained, quality

    monkeypatch.setenv("ELS_RECORDS_DIR", str(tmp_path / "records"))
    assert quality.stored("resnet-zeros", n=2) == {}
    quality.run(names=["resnet-zeros"], n=2, record=True, progress=False)
    row = quality.stored("resnet-zeros", n=2)
    mine = quality.measure(networks.as_denoiser(pretrained.load("resnet-zeros")), n=2)  # from the definition
    assert row["recognisable"] == mine["recognisable"] and row["frechet"] == pytest.approx(mine["frechet"])
    assert row["weights_sha256"] == pretrained.metadata("resnet-zeros")["sha256"] and row["images"] == 2
    assert quality.stored("resnet-zeros", n=4) == {}


def test_a_training_run_is_judged_record_by_record(tmp_path):
    from elslib import networks, quality, training

    images, _ = data.load("mnist", n=64)
    torch.manual_seed(0)
    net = networks.ResNet(channels=4, blocks=1, target="v")
    training.train(
        net, images, steps=4, batch_size=8, checkpoint=tmp_path / "tiny.ckpt", keep_at=(4, 2), progress=False
    )
    rows = quality.along_training(tmp_path, n=4, progress=False)
    assert list(rows) == [2, 4]
    four, _ = training.load_checkpoint(tmp_path / "tiny-step4.pt")
    x = quality.samples(networks.as_denoiser(four), 4)
    assert rows[4]["recognisable"] == metrics.recognisable(x)
    train, _ = data.load("mnist")
    assert rows[4]["nn_distance"] == pytest.approx(float(metrics.nearest_neighbours(x, train)[0].median()))
    assert "| 2 |" in quality.training_table(rows)
    with pytest.raises(FileNotFoundError, match="no training records"):
        quality.along_training(tmp_path / "empty")
