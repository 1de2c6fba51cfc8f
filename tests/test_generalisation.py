"""Chapter 09's networks on fewer digits: their training sets, and `elslib.generalisation` on tiny
networks, checked against direct computations from the definitions."""

import json

import numpy as np
import pytest
import torch

from elslib import data, generalisation, machines, networks, pretrained, sampling, training
from elslib.__main__ import main

TINY = dict(in_channels=1, channels=8, blocks=1, padding="zeros", target="v")
NAMES = ("resnet-n10-a", "resnet-n10-b")


def test_small_data_recipes_are_resnet_zeros_on_disjoint_balanced_subsets():
    zeros = pretrained.RECIPES["resnet-zeros"]
    for name in generalisation.NETWORKS:
        recipe = pretrained.RECIPES[name]
        assert recipe["kind"] == zeros["kind"] and recipe["config"] == zeros["config"]
        assert (recipe["lr"], recipe["warmup"]) == (zeros["lr"], zeros["warmup"])
    a, _ = pretrained.training_set("resnet-n10-a")
    b, labels_b = pretrained.training_set("resnet-n10-b")
    assert torch.equal(b, data.load("mnist", n=20)[0][10:]) and sorted(labels_b.tolist()) == list(range(10))
    assert torch.cdist(a.flatten(1), b.flatten(1)).min() > 0  # disjoint
    half_a, _ = pretrained.training_set("resnet-n2500-a")
    half_b, _ = pretrained.training_set("resnet-n2500-b")
    assert torch.equal(torch.cat([half_a, half_b]), pretrained.training_set("resnet-zeros")[0])
    assert len(pretrained.training_set("resnet-n1000")[0]) == 1000


def test_available_lists_the_main_networks_unless_asked_for_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    for name in ("resnet-zeros", "resnet-n100"):
        (tmp_path / f"{name}.pt").write_bytes(b"")
    assert pretrained.available() == ["resnet-zeros"]
    assert pretrained.available(everything=True) == ["resnet-zeros", "resnet-n100"]


def test_train_uses_the_recipes_subset_and_says_so(tmp_path, monkeypatch):
    seen = {}
    real_train = training.train

    def spy(net, images, **kwargs):
        seen["images"] = images
        return real_train(net, images, **kwargs)

    monkeypatch.setattr(training, "train", spy)
    monkeypatch.setitem(
        pretrained.RECIPES, "resnet-n10-b", {**pretrained.RECIPES["resnet-n10-b"], "config": TINY, "warmup": 1}
    )
    path = pretrained.train("resnet-n10-b", steps=2, out_dir=tmp_path, progress=False)
    assert torch.equal(seen["images"], data.load("mnist", n=10, skip=10)[0])
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["data"] == {"n": 10, "skip": 10} and meta["steps"] == 2
    with pytest.raises(ValueError, match="steps=1 ends within resnet-n10-b's learning-rate warm-up of 1 steps"):
        pretrained.train("resnet-n10-b", steps=1, out_dir=tmp_path, progress=False)


@pytest.fixture
def tiny_study(tmp_path, monkeypatch):
    """Two tiny untrained ResNets shipped as the N = 10 pair, resnet-zeros' P(t) a constant 3, and
    an empty records folder; the study narrowed to that pair."""
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setenv("ELS_RECORDS_DIR", str(tmp_path / "records"))
    (tmp_path / "records").mkdir()
    for k, name in enumerate(NAMES):
        monkeypatch.setitem(pretrained.RECIPES, name, {**pretrained.RECIPES[name], "config": TINY})
        torch.manual_seed(k)
        training.save_checkpoint(tmp_path / f"{name}.pt", networks.build("resnet", **TINY), meta={"name": name})
    scales = {"times": [round(1 - i / 20, 6) for i in range(20)], "patch_sizes": [3] * 20}
    (tmp_path / "resnet-zeros.json").write_text(json.dumps({"name": "resnet-zeros", "scales": scales}))
    monkeypatch.setattr(generalisation, "NETWORKS", NAMES)
    monkeypatch.setattr(generalisation, "SWEEP", NAMES[:1])
    monkeypatch.setattr(generalisation, "PAIRS", (NAMES,))
    return tmp_path


def _direct(name, seeds):
    """The network's and the ELS machine's samples, built here from the public pieces."""
    images = data.load("mnist", n=10, skip=10 if name.endswith("-b") else 0)[0]
    noise = torch.cat([sampling.noise_like((1, 1, 32, 32), seed=s) for s in seeds])
    net = networks.as_denoiser(pretrained.load(name))
    els = machines.ELSDenoiser(images, patch_size=3, padding="zeros")
    return (
        images,
        sampling.ddim(net, noise, steps=20, progress=False),
        sampling.ddim(els, noise, steps=20, progress=False),
    )


def _rms_to_nearest(x, images):
    d = ((x.flatten(1).double()[:, None] - images.flatten(1).double()[None]) ** 2).mean(-1).sqrt()
    return d.min(1)


def test_measure_against_direct_computations(tiny_study):
    seeds = [0, 5, 2]
    images, net_samples, els_samples = _direct("resnet-n10-b", seeds)
    nn_direct, nearest_direct = _rms_to_nearest(net_samples, images)
    threshold = float(nn_direct.median())  # so that both verdicts occur
    row, samples = generalisation.measure("resnet-n10-b", seeds, threshold)
    torch.testing.assert_close(samples["network"], net_samples)
    torch.testing.assert_close(samples["ELS"], els_samples)
    assert row["n"] == 10 and row["seeds"] == seeds
    np.testing.assert_allclose(row["nn_network"], nn_direct.numpy(), atol=1e-4)
    assert row["nearest_network"] == nearest_direct.tolist()
    assert row["copies_network"] == [bool(d < threshold) for d in row["nn_network"]]
    assert sum(row["copies_network"]) == 1  # below the median of three: exactly one
    for k in range(len(seeds)):
        expected = np.corrcoef(els_samples[k].flatten().double(), net_samples[k].flatten().double())[0, 1]
        assert row["r_ELS"][k] == pytest.approx(expected, abs=1e-4)
    brief = generalisation.summary(row)
    assert brief["copy_fraction_network"] == pytest.approx(1 / 3)
    assert brief["median_r_ELS"] == pytest.approx(float(np.median(row["r_ELS"])))
    assert generalisation.median([4.0, 1.0, 3.0, 2.0]) == 2.5  # the mean of the middle two, as numpy


def test_run_records_network_by_network_and_pairs_them(tiny_study):
    first = generalisation.run(seeds=2, only=[NAMES[0]], record=True, progress=False)
    assert list(first["networks"]) == [NAMES[0]] and first["pairs"] == {}
    second = generalisation.run(seeds=2, only=[NAMES[1]], record=True, progress=False)
    assert set(second["networks"]) == set(NAMES)  # the first network's row was kept
    _, a, els_a = _direct(NAMES[0], [0, 1])
    _, b, els_b = _direct(NAMES[1], [0, 1])
    row = second["pairs"][f"{NAMES[0]} / {NAMES[1]}"]
    for k in range(2):
        direct = np.corrcoef(a[k].flatten(), b[k].flatten())[0, 1]
        assert row["r_networks"][k] == pytest.approx(direct, abs=2e-3)  # the first's samples were stored as float16
        assert row["r_ELS"][k] == pytest.approx(np.corrcoef(els_a[k].flatten(), els_b[k].flatten())[0, 1], abs=2e-3)
    assert generalisation.stored(seeds=2)["pairs"] == second["pairs"]
    kept = generalisation.stored_samples()
    torch.testing.assert_close(kept[NAMES[1]]["network"].float(), b, atol=1e-3, rtol=0)
    table = generalisation.table(second)
    assert "| resnet-n10-a | 10 |" in table and "resnet-n10-a / resnet-n10-b" in table
    per_seed = generalisation.pair_table(second).splitlines()
    assert len(per_seed) == 2 + 2  # a header, a rule, one row per seed
    assert per_seed[3] == f"| 1 | {row['r_networks'][1]:.3f} | {row['r_ELS'][1]:.3f} |"
    assert generalisation.pair_table(first) == "no pair measured yet\n"


def test_figures_draw_every_network_and_mark_the_copies(tiny_study):
    import matplotlib

    matplotlib.use("Agg")
    result = generalisation.run(seeds=2, record=True, progress=False)
    for name in NAMES:  # pretend the second seed of each copies
        result["networks"][name]["copies_network"] = [False, True]
    fig = generalisation.samples_figure(result, generalisation.stored_samples(), cols=5)
    axes = np.array(fig.axes).reshape(3, 2)  # two networks and the nearest digits; cols capped at 2 seeds
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["n10-a", "nearest to n10-a", "n10-b"]
    assert [[ax.get_title() for ax in row] for row in axes] == [["", "copy"], ["", ""], ["", "copy"]]
    shown = axes[1, 0].images[0].get_array()
    nearest = pretrained.training_set(NAMES[0])[0][result["networks"][NAMES[0]]["nearest_network"][0]]
    np.testing.assert_allclose(np.asarray(shown).squeeze(), ((nearest[0] + 1) / 2).clamp(0, 1).numpy(), atol=1e-6)
    fig = generalisation.numbers_figure(result)
    assert len(fig.axes) == 2 and "r within the pair, N = 10" in [t.get_text() for t in fig.axes[1].get_legend().texts]


def test_a_damaged_samples_file_is_named(tiny_study):
    generalisation.run(seeds=1, only=[NAMES[0]], record=True, progress=False)
    path = tiny_study / "records" / "generalisation" / "samples.pt"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="samples.pt is damaged"):
        generalisation.run(seeds=1, only=[NAMES[1]], record=True, progress=False)


def test_bad_arguments_name_themselves(tiny_study, capsys):
    with pytest.raises(ValueError, match="not networks of this study"):
        generalisation.run(seeds=1, only=["resnet-zeros"], progress=False)
    with pytest.raises(ValueError, match="seeds"):
        generalisation.run(seeds=0, progress=False)
    with pytest.raises(FileNotFoundError, match="resnet-n100"):
        generalisation.measure("resnet-n100", [0], threshold=0.1)
    with pytest.raises(SystemExit):
        main(["generalisation", "--seeds", "1", "--names", "unet-attention"])
    assert "unet-attention" in capsys.readouterr().err
