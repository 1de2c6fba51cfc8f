"""`python -m elslib reproduce` on a tiny network: the table's numbers against independent ones."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from elslib import data, networks, pretrained, reproduce, sampling, training
from elslib.__main__ import main
from elslib.machines import IdealDenoiser


@pytest.fixture
def tiny_shipped(tmp_path, monkeypatch):
    """A small untrained ResNet shipped as "resnet-zeros" in a temporary weights folder, with a
    stored constant scale schedule (so no calibration runs), and an empty records folder."""
    recipe = dict(kind="resnet", config=dict(in_channels=1, channels=8, blocks=1, padding="zeros", target="v"))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setenv("ELS_RECORDS_DIR", str(tmp_path / "records"))
    monkeypatch.setitem(pretrained.RECIPES, "resnet-zeros", {**recipe, "steps": 1, "lr": 1e-3})
    torch.manual_seed(0)
    net = networks.build(recipe["kind"], **recipe["config"])
    training.save_checkpoint(tmp_path / "resnet-zeros.pt", net, meta={"name": "resnet-zeros"})
    scales = {"times": [round(1 - i / 20, 6) for i in range(20)], "patch_sizes": [3] * 20}
    (tmp_path / "resnet-zeros.json").write_text(json.dumps({"name": "resnet-zeros", "scales": scales}))
    return tmp_path


def test_compare_correlates_each_machine_with_the_network(tiny_shipped):
    cmp = reproduce.compare("resnet-zeros", [0, 3], progress=False, n_images=30)
    images, _ = data.load("mnist", n=30)
    noise = torch.cat([sampling.noise_like((1, 1, 32, 32), seed=s) for s in (0, 3)])
    # the network's samples are its own DDIM run from those seeds, the IS ones the ideal machine's
    net = networks.as_denoiser(pretrained.load("resnet-zeros"))
    torch.testing.assert_close(cmp.samples["network"], sampling.ddim(net, noise, steps=20, progress=False))
    torch.testing.assert_close(cmp.samples["IS"], sampling.ddim(IdealDenoiser(images), noise, steps=20, progress=False))
    for m in reproduce.MACHINES:
        expected = [
            np.corrcoef(
                cmp.samples[m][k].flatten().double().numpy(), cmp.samples["network"][k].flatten().double().numpy()
            )[0, 1]
            for k in range(2)
        ]
        np.testing.assert_allclose(cmp.r[m].numpy(), expected, atol=1e-5)
    # the ideal machine copies: its samples sit on training images
    assert float(cmp.novelty["IS"].max()) < 1e-3
    d = torch.cdist(cmp.samples["network"].flatten(1).double(), images.flatten(1).double()).min(dim=1).values
    np.testing.assert_allclose(cmp.novelty["network"].numpy(), (d / 32).numpy(), rtol=1e-4)
    row = cmp.summary()
    assert row["seeds"] == 2
    assert row["r_ELS"] == pytest.approx(float(cmp.r["ELS"].median()))
    assert row["r2_LS"] == pytest.approx(float((cmp.r["LS"] ** 2).median()))
    assert row["ELS_beats_IS"] == pytest.approx(float((cmp.r["ELS"] > cmp.r["IS"]).double().mean()))
    assert row["per_seed"]["seed"] == [0, 3]
    np.testing.assert_allclose(row["per_seed"]["r_ELS"], cmp.r["ELS"].numpy(), atol=1e-4)
    # step by step: the network's predictions are its own trajectory's, the last one its sample
    _, traj = sampling.ddim(net, noise, steps=20, progress=False, return_trajectory=True)
    torch.testing.assert_close(cmp.predictions["network"], traj.x0_hat)
    assert cmp.times == [float(t) for t in traj.times[:-1]] and len(cmp.times) == 20
    along = cmp.r_along("ELS")
    assert along.shape == (20, 2)
    np.testing.assert_allclose(along[-1].numpy(), cmp.r["ELS"].numpy(), atol=1e-5)  # the last step is the sample


def test_a_class_conditional_network_is_compared_with_the_conditional_machines(tiny_shipped, monkeypatch):
    """Seed s is drawn as the digit s mod 10, by the network and by machines holding the class labels."""
    recipe = dict(
        kind="resnet", config=dict(in_channels=1, channels=8, blocks=1, padding="zeros", target="v", num_classes=10)
    )
    monkeypatch.setitem(pretrained.RECIPES, "resnet-conditional", {**recipe, "steps": 1, "lr": 1e-3})
    torch.manual_seed(1)
    net = networks.build(recipe["kind"], **recipe["config"])
    training.save_checkpoint(tiny_shipped / "resnet-conditional.pt", net, meta={"name": "resnet-conditional"})
    scales = json.loads((tiny_shipped / "resnet-zeros.json").read_text())["scales"]
    (tiny_shipped / "resnet-conditional.json").write_text(json.dumps({"name": "resnet-conditional", "scales": scales}))
    seeds = [0, 3, 17]
    cmp = reproduce.compare("resnet-conditional", seeds, progress=False, n_images=30)
    assert cmp.labels == [0, 3, 7] == reproduce.labels_of("resnet-conditional", seeds)
    assert reproduce.labels_of("resnet-zeros", seeds) is None
    images, labels = data.load("mnist", n=30)
    noise = sampling.seeded_noise(seeds, (1, 32, 32))
    own = networks.as_denoiser(pretrained.load("resnet-conditional"))
    torch.testing.assert_close(
        cmp.samples["network"], sampling.ddim(own, noise, steps=20, label=[0, 3, 7], progress=False)
    )
    ideal = IdealDenoiser(images, labels=labels)
    torch.testing.assert_close(
        cmp.samples["IS"], sampling.ddim(ideal, noise, steps=20, label=[0, 3, 7], progress=False)
    )
    # the conditional ideal machine copies a training digit of the requested class
    nearest = torch.cdist(cmp.samples["IS"].flatten(1), images.flatten(1)).argmin(dim=1)
    assert labels[nearest].tolist() == [0, 3, 7]
    assert cmp.summary()["per_seed"]["label"] == [0, 3, 7]
    # without stored scales, the calibration asks network and machines for each calibration seed's digit
    (tiny_shipped / "resnet-conditional.json").write_text(json.dumps({"name": "resnet-conditional"}))
    seen = {}

    def spy(network, make, shape, seeds, labels=None, **kw):
        seen.update(seeds=list(seeds), labels=labels, machine=make(3))
        return reproduce.calibration.ScaleSchedule.from_dict(scales)

    monkeypatch.setattr(reproduce.calibration, "calibrate", spy)
    reproduce.scale_schedule("resnet-conditional", images, "zeros", 4, False, labels=labels)
    assert seen["seeds"] == [1000, 1001, 1002, 1003] and seen["labels"] == [0, 1, 2, 3]
    assert seen["machine"].labels is not None


def test_runs_are_recorded_under_their_own_key(tiny_shipped):
    row = {"network": "resnet-zeros", "seeds": 8, "r_ELS": 0.5}
    reproduce.record("resnet-zeros", {**row, "seeds": 100}, quick=False)
    reproduce.record("resnet-zeros", row, quick=True)
    reproduce.record("resnet-zeros", {**row, "seeds": 24}, quick=False)
    assert list(reproduce.stored_runs("resnet-zeros")) == ["quick", "seeds-24", "full"]  # fewest seeds first
    runs = json.loads((tiny_shipped / "records" / "reproduction" / "resnet-zeros.json").read_text())
    assert set(runs) == {"quick", "seeds-24", "full"}
    assert "reproduction" not in pretrained.metadata("resnet-zeros")  # records live outside the package
    assert runs["quick"]["command"] == "python -m elslib reproduce --quick --names resnet-zeros"
    assert runs["seeds-24"]["command"] == "python -m elslib reproduce --seeds 24 --names resnet-zeros"
    assert runs["full"]["command"] == "python -m elslib reproduce --names resnet-zeros"
    assert "scales" in pretrained.metadata("resnet-zeros")  # the calibration is kept


def test_runs_of_retrained_weights_are_kept_apart(tiny_shipped):
    meta_path = tiny_shipped / "resnet-zeros.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "sha256": "a" * 64}))
    reproduce.record("resnet-zeros", {"network": "resnet-zeros", "seeds": 8, "r_ELS": 0.5}, quick=True)
    runs = json.loads((tiny_shipped / "records" / "reproduction" / "resnet-zeros.json").read_text())
    assert runs["quick"]["weights_sha256"] == "a" * 64  # which weights the run measured
    assert list(reproduce.stored_runs("resnet-zeros")) == ["quick"]
    meta_path.write_text(json.dumps({**meta, "sha256": "b" * 64}))  # retrained: the old run no longer applies
    assert reproduce.stored_runs("resnet-zeros") == {}
    assert reproduce.first_edition_runs("resnet-zeros") == {}
    first = {"quick": {"network": "resnet-zeros (first edition)", "seeds": 8}, "full": {"seeds": 100}}
    (tiny_shipped / "records" / "reproduction" / "resnet-zeros-first-edition.json").write_text(json.dumps(first))
    assert list(reproduce.first_edition_runs("resnet-zeros")) == ["quick", "full"]
    with pytest.raises(ValueError, match="resnet-zero"):
        reproduce.first_edition_runs("resnet-zero")


def test_a_run_writes_its_own_folder_and_records_only_when_asked(tiny_shipped, tmp_path, monkeypatch):
    real = reproduce.compare
    monkeypatch.setattr(reproduce, "compare", lambda name, seeds, **kw: real(name, seeds, **kw, n_images=20))
    shipped = {p.name: p.read_bytes() for p in tiny_shipped.glob("resnet-zeros.*")}
    out = tmp_path / "run"
    main(["reproduce", "--seeds", "1", "--names", "resnet-zeros", "--out", str(out)])
    assert {p.name: p.read_bytes() for p in tiny_shipped.glob("resnet-zeros.*")} == shipped  # package untouched
    assert not (tiny_shipped / "records").exists() and reproduce.stored_runs("resnet-zeros") == {}
    assert (out / "RESULTS.md").exists() and (out / "resnet-zeros.png").exists()
    main(["reproduce", "--seeds", "1", "--names", "resnet-zeros", "--out", str(out), "--record"])
    assert list(reproduce.stored_runs("resnet-zeros")) == ["seeds-1"]
    assert {p.name: p.read_bytes() for p in tiny_shipped.glob("resnet-zeros.*")} == shipped  # scales were shipped


def test_a_damaged_record_file_is_named(tiny_shipped):
    path = tiny_shipped / "records" / "reproduction" / "resnet-zeros.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"quick": {"seeds": 8,')
    with pytest.raises(ValueError, match="resnet-zeros.json"):
        reproduce.stored_runs("resnet-zeros")


def test_table_prints_medians_and_percentages():
    row = dict(
        network="net",
        seeds=3,
        r_ELS=0.9,
        r_LS=0.8,
        r_IS=0.6,
        r2_ELS=0.81,
        r2_LS=0.64,
        r2_IS=0.36,
        ELS_beats_IS=2 / 3,
        nn_network=0.3,
        nn_IS=0.0,
    )
    lines = reproduce.table([row]).splitlines()
    assert lines[0].startswith("| network | seeds | r ELS")
    assert lines[2] == "| net | 3 | 0.900 | 0.800 | 0.600 | 0.810 | 0.640 | 0.360 | 67% | 0.300 | 0.000 |"


@pytest.mark.parametrize("labels", [None, [3, 7]])
def test_the_figure_names_each_seed_and_the_digit_a_conditional_network_was_asked_for(labels, tmp_path, monkeypatch):
    import elslib.plots

    titles = []
    monkeypatch.setattr(elslib.plots, "show_image", lambda ax, image, title: titles.append(title))
    samples = {who: torch.rand(2, 1, 8, 8) for who in ("network", "ELS", "IS")}
    r = {who: torch.tensor([0.5, 0.25]) for who in ("ELS", "IS")}
    comparison = reproduce.Comparison("net", [4, 9], samples=samples, r=r, labels=labels)
    reproduce.figure(comparison, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
    asked = ["seed 4, a 3", "seed 9, a 7"] if labels else ["seed 4", "seed 9"]
    assert titles == [*asked, "r=0.50", "r=0.25", "r=0.50", "r=0.25"]


def test_the_command_rejects_a_bad_seed_count(tiny_shipped, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["reproduce", "--seeds", "0", "--names", "resnet-zeros"])
    assert stop.value.code == 2 and "seeds must be an integer >= 1" in capsys.readouterr().err


def test_chunks_are_kept_and_a_stopped_run_resumes(tiny_shipped, tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "CHUNK", 2)
    cache = tmp_path / "chunks"
    whole = reproduce.compare("resnet-zeros", [0, 1, 2], progress=False, n_images=20)
    calls = []
    real = reproduce._sample_part

    def sample_then_stop(name, seeds, *args):
        calls.append(list(seeds))
        if len(calls) == 2:
            raise KeyboardInterrupt  # stopped during the second chunk
        return real(name, seeds, *args)

    monkeypatch.setattr(reproduce, "_sample_part", sample_then_stop)
    with pytest.raises(KeyboardInterrupt):
        reproduce.compare("resnet-zeros", [0, 1, 2], progress=False, n_images=20, cache_dir=cache)
    assert len(list(cache.glob("*.pt"))) == 1
    resumed = reproduce.compare("resnet-zeros", [0, 1, 2], progress=False, n_images=20, cache_dir=cache)
    assert calls == [[0, 1], [2], [2]]  # the first chunk was read back, not sampled again
    for m in ("network", *reproduce.MACHINES):
        torch.testing.assert_close(resumed.samples[m], whole.samples[m])
    for m in reproduce.MACHINES:
        torch.testing.assert_close(resumed.r[m], whole.r[m])
    # other weights: the stored chunks do not apply
    net = pretrained.load("resnet-zeros")
    with torch.no_grad():
        next(net.parameters()).add_(0.1)
    training.save_checkpoint(pretrained.weights_path("resnet-zeros"), net)
    calls.clear()
    reproduce.compare("resnet-zeros", [0, 1], progress=False, n_images=20, cache_dir=cache)
    assert calls == [[0, 1]]


def test_a_malformed_chunk_is_treated_as_missing_and_sampled_again(tiny_shipped, tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "CHUNK", 2)
    cache = tmp_path / "chunks"
    whole = reproduce.compare("resnet-zeros", [0, 1], progress=False, n_images=20, cache_dir=cache)
    (path,) = cache.glob("*.pt")
    good = torch.load(path, weights_only=True)
    calls = []
    real = reproduce._sample_part

    def counted(name, seeds, *args):
        calls.append(list(seeds))
        return real(name, seeds, *args)

    monkeypatch.setattr(reproduce, "_sample_part", counted)
    broken = {
        "a list, not a dict": [1, 2, 3],
        "a tensor": torch.zeros(3),
        "no samples": {k: v for k, v in good.items() if k != "samples"},
        "samples not a dict": {**good, "samples": torch.zeros(2, 1, 32, 32)},
        "a machine missing": {**good, "samples": {"network": good["samples"]["network"]}},
        "one row short": {**good, "r": {k: v[:1] for k, v in good["r"].items()}},
        "r as strings": {**good, "r": {k: "0.9" for k in good["r"]}},
        "seconds missing": {k: v for k, v in good.items() if k != "seconds"},
        "other seeds": {**good, "seeds": [5, 6]},
    }
    for why, state in broken.items():
        torch.save(state, path)
        calls.clear()
        again = reproduce.compare("resnet-zeros", [0, 1], progress=False, n_images=20, cache_dir=cache)
        assert calls == [[0, 1]], why
        for m in reproduce.MACHINES:
            torch.testing.assert_close(again.r[m], whole.r[m])
    calls.clear()  # the last resample rewrote a good chunk: it is read back
    reproduce.compare("resnet-zeros", [0, 1], progress=False, n_images=20, cache_dir=cache)
    assert calls == []


def test_by_default_only_calibrated_networks_are_compared(tiny_shipped):
    net = networks.build("resnet", in_channels=1, channels=8, blocks=1, padding="circular", target="v")
    training.save_checkpoint(tiny_shipped / "resnet-circular.pt", net)
    (tiny_shipped / "resnet-circular.json").write_text(json.dumps({"name": "resnet-circular"}))
    assert reproduce.default_names() == ["resnet-zeros"]
    (tiny_shipped / "resnet-zeros.json").write_text(json.dumps({"name": "resnet-zeros"}))
    assert reproduce.default_names() == ["resnet-zeros", "resnet-circular"]  # none calibrated: all


def test_calibration_tries_no_patch_larger_than_the_receptive_field():
    """A patch wider than what the network sees cannot be what it does (ResNet: 2L + 5 pixels)."""
    assert reproduce.calibration_sizes(networks.ResNet(channels=4, blocks=2)) == [1, 3, 5, 7, 9]
    assert reproduce.calibration_sizes(networks.ResNet(channels=4, blocks=6))[-1] == 17
    unet = networks.UNet(channels=4)  # sees the whole image: every size is tried
    assert reproduce.calibration_sizes(unet) == list(reproduce.CALIBRATION_SIZES)


def test_key_tables_get_a_share_of_free_memory_but_never_less_than_the_default(monkeypatch):
    from elslib import device
    from elslib.machines.els import TABLE_BUDGET

    free = device.free_memory("cpu")
    assert free is None or 0 < free < 2**50  # bytes, read from the kernel where it says
    for said, share, expected in [(10 * 2**30, 0.4, 4 * 2**30), (2**30, 0.4, TABLE_BUDGET), (None, 0.4, TABLE_BUDGET)]:
        monkeypatch.setattr(device, "free_memory", lambda dev, said=said: said)
        assert reproduce.table_budget(share, "cpu") == expected


def test_train_follows_the_recipe_and_never_writes_the_package_unasked(tmp_path, monkeypatch):
    seen = {}

    def fake_train(net, images, **kwargs):
        seen.update(kwargs)
        return training.History(losses=[1.0] * kwargs["steps"], seconds=0.0)

    monkeypatch.setattr(training, "train", fake_train)
    monkeypatch.chdir(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in pretrained.WEIGHTS_DIR.iterdir()}
    path = pretrained.train("unet-zeros", steps=501, progress=False)
    recipe = pretrained.RECIPES["unet-zeros"]
    assert path.resolve() == tmp_path / pretrained.TRAIN_DIR / "unet-zeros.pt" and path.exists()
    assert seen["warmup"] == recipe["warmup"] and tuple(seen["keep_at"]) == recipe["keep_at"]
    assert (
        seen["lr"] == recipe["lr"]
        and Path(seen["checkpoint"]).resolve() == tmp_path / pretrained.TRAIN_DIR / "unet-zeros.ckpt"
    )
    assert {p.name: p.stat().st_mtime_ns for p in pretrained.WEIGHTS_DIR.iterdir()} == before
    with pytest.raises(ValueError, match="not both"):
        pretrained.train("unet-zeros", out_dir=tmp_path, record=True)


@pytest.mark.parametrize("kind", ["reproduction", "quality"])
def test_every_stored_first_edition_row_names_its_weights_and_they_are_not_the_shipped_ones(kind):
    """Chapters 04 and 08 title these rows by their training steps; a row of the shipped weights would be no
    first edition at all."""
    folder = Path(reproduce.__file__).resolve().parents[1] / "records" / kind
    files = sorted(folder.glob("*-first-edition.json"))
    assert files, f"no first-edition records in {folder}"
    for path in files:
        name = path.name.removesuffix("-first-edition.json")
        for key, row in json.loads(path.read_text()).items():
            assert isinstance(row.get("weights_steps"), int), (path.name, key)
            assert row["weights_sha256"] != pretrained.metadata(name)["sha256"], (path.name, key)


def test_the_stored_rows_of_every_shipped_network_are_of_its_weights_and_ask_for_every_digit_alike():
    """The README's table reads these rows: each must have been measured with the shipped weights, and a
    class-conditional network's seeds must have asked for the digit seed mod 10 (every label equally often)."""
    folder = Path(reproduce.__file__).resolve().parents[1] / "records" / "reproduction"
    for name in pretrained.available():
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        meta = pretrained.metadata(name)
        for key, row in json.loads(path.read_text()).items():
            assert row["weights_sha256"] == meta["sha256"], (name, key)
            per = row["per_seed"]
            assert len(per["seed"]) == row["seeds"] == len(per["r_ELS"]), (name, key)
            if meta["config"].get("num_classes"):
                assert per["label"] == [s % meta["config"]["num_classes"] for s in per["seed"]], (name, key)
            else:
                assert "label" not in per, (name, key)


def test_the_largest_run_is_the_one_with_the_most_seeds_and_none_without_runs():
    runs = {"quick": {"seeds": 8, "tag": "a"}, "full": {"seeds": 100, "tag": "b"}, "seeds-32": {"seeds": 32}}
    assert reproduce.largest_run(runs)["tag"] == "b"
    assert reproduce.largest_run({}) is None


def _run(r_by_seed: dict) -> dict:
    return {"per_seed": {"seed": list(r_by_seed), "r_ELS": list(r_by_seed.values())}}


def test_r_by_seed_pairs_each_seed_with_its_r_and_names_a_bad_machine():
    run = {"per_seed": {"seed": [3, 1, 7], "r_ELS": [0.1, 0.2, 0.3], "r_IS": [0.9, 0.8, 0.7]}}
    assert reproduce.r_by_seed(run) == {3: 0.1, 1: 0.2, 7: 0.3}
    assert reproduce.r_by_seed(run, "IS") == {3: 0.9, 1: 0.8, 7: 0.7}
    with pytest.raises(ValueError, match="machine"):
        reproduce.r_by_seed(run, "XS")
    with pytest.raises(ValueError, match="run must be a stored run"):
        reproduce.r_by_seed(None)  # what largest_run gives when nothing is stored


def test_seed_by_seed_counts_the_shared_seeds_and_calls_three_quarters_a_difference():
    # seeds 0-7 shared: a below b on 6 of 8 (three quarters), above on 1, tied on 1; seeds 8-9 in one run only
    a = _run({s: 0.5 for s in range(10)})
    b = _run({0: 0.6, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.6, 5: 0.6, 6: 0.4, 7: 0.5, 11: 0.1})
    out = reproduce.seed_by_seed(a, b)
    assert (out["seeds"], out["lower"], out["higher"], out["verdict"]) == (8, 6, 1, "lower")
    assert (out["median_a"], out["median_b"]) == pytest.approx((0.5, 0.6))  # torch: the lower middle value
    assert reproduce.seed_by_seed(b, a)["verdict"] == "higher"
    five_of_eight = _run({**{s: 0.6 for s in range(5)}, **{s: 0.4 for s in range(5, 8)}})
    assert reproduce.seed_by_seed(a, five_of_eight)["verdict"] == "no clear difference"
    assert reproduce.seed_by_seed(a, a) | {"median_a": 0, "median_b": 0} == {
        "seeds": 10,
        "lower": 0,
        "higher": 0,
        "median_a": 0,
        "median_b": 0,
        "verdict": "no clear difference",
    }
    with pytest.raises(ValueError, match="share no seed"):
        reproduce.seed_by_seed(a, _run({20: 0.5}))
    with pytest.raises(ValueError, match="machine"):
        reproduce.seed_by_seed(a, b, machine="XS")
