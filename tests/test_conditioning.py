"""Does the label win? The obedience of class-conditional denoisers, judged by the digit reader."""

import pytest
import torch

from elslib import conditioning, data, machines, metrics, reader, sampling

pytestmark = pytest.mark.usefixtures("one_thread")

IDEAL = "ideal machine (copies a digit of the class)"


@pytest.fixture(scope="module")
def a_three():
    """One real 3 that the reader reads confidently as a 3."""
    images, labels = reader.held_out()
    read, confidence = reader.read(images)
    k = int(((labels == 3) & (read == 3) & (confidence > 0.99)).nonzero()[0])
    return images[k]


def test_a_denoiser_that_ignores_its_label_obeys_only_for_that_label(a_three):
    def always_three(x_t, t, label=None):  # the same x0_hat whatever is asked: DDIM ends on it
        return a_three.expand_as(x_t).clone()

    row = conditioning.obedience(always_three, seeds=[0, 1], labels=range(10))
    assert row["samples"].shape == (20, 1, 32, 32)
    assert row["requested"].tolist() == list(range(10)) * 2
    assert row["obeys"] == pytest.approx(0.1)  # only label 3 of the ten is obeyed
    assert row["per_label"] == [1.0 if k == 3 else 0.0 for k in range(10)]
    assert row["reads_as_digit"] == 1.0
    assert torch.allclose(row["samples"], a_three.expand(20, 1, 32, 32), atol=1e-5)


def test_the_ideal_machine_obeys_because_it_copies_a_digit_of_the_class():
    images, labels = data.load("mnist", n=50)  # five of each digit
    ideal = machines.IdealDenoiser(images, labels=labels)
    row = conditioning.obedience(ideal, seeds=[0], labels=range(10))
    d, i = metrics.nearest_neighbours(row["samples"], images)
    assert float(d.max()) < 1e-3  # copies ...
    assert labels[i].tolist() == list(range(10))  # ... of a training digit of the requested class
    read, confidence = reader.read(row["samples"])  # the fraction from its definition
    mine = ((read == torch.arange(10)) & (confidence > reader.THRESHOLD)).double().mean()
    assert row["obeys"] == pytest.approx(float(mine)) and row["obeys"] >= 0.8


def test_run_measures_the_named_rows_and_records_them(tmp_path, monkeypatch):
    monkeypatch.setenv("ELS_RECORDS_DIR", str(tmp_path / "records"))
    results = conditioning.run(seeds=1, per_class=5, record=True, progress=False, only=[IDEAL, "ELS, constant P = 25"])
    assert list(results) == [IDEAL, "ELS, constant P = 25"]
    assert set(results[IDEAL]) == {"obeys", "reads_as_digit", "per_label", "obeyed", "seconds"}
    assert len(results[IDEAL]["obeyed"]) == 10 and sum(results[IDEAL]["obeyed"]) / 10 == results[IDEAL]["obeys"]
    assert conditioning.stored(seeds=1, per_class=5) == results
    assert conditioning.stored() == {}
    more = conditioning.run(seeds=1, per_class=5, record=True, progress=False, only=["ELS, constant P = 15"])
    assert conditioning.stored(seeds=1, per_class=5) == {**results, **more}  # a run of some rows adds them
    text = conditioning.table(results, 1, 5)
    assert "| ELS, constant P = 25 |" in text and "the machines hold 5 training digits of each class" in text


def test_every_setting_is_named_and_the_shipped_calibrations_appear():
    rows = conditioning.settings()
    assert IDEAL in rows and "ELS, constant P = 15" in rows
    assert any(name.startswith("ELS, P(t) of resnet-zeros") and rows[name]["weight"] == 1.0 for name in rows)
    assert any(rows[name]["weight"] == conditioning.GUIDANCE for name in rows)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(seeds=0), "seeds"),
        (dict(per_class=501), "per_class must be at most 500"),
        (dict(per_class=0), "per_class"),
        (dict(only=["no such row"]), "only: unknown rows"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conditioning.run(progress=False, **kwargs)


def test_obedience_needs_seeds_and_labels(a_three):
    with pytest.raises(ValueError, match="at least one"):
        conditioning.obedience(lambda x, t, label=None: x, seeds=[], labels=range(10))


def test_guidance_sweep_follows_the_formula_weight_by_weight():
    images, labels = data.load("mnist", n=30)  # three of each digit
    ideal = machines.IdealDenoiser(images, labels=labels)
    els = machines.ELSDenoiser(images, patch_size=9, padding="zeros", labels=labels)
    sweep = conditioning.guidance_sweep({"ideal": ideal, "ELS": els}, seed=2, label=7, weights=[0, 1, 2.5], steps=6)
    assert sweep["weights"] == [0.0, 1.0, 2.5] and sweep["label"] == 7
    noise = sampling.noise_like((1, 1, 32, 32), seed=2)
    for name, den in (("ideal", ideal), ("ELS", els)):
        got = sweep["samples"][name]
        assert got.shape == (3, 1, 32, 32)
        # w = 0: the unconditional sampler; w = 1: the conditional one; w = 2.5: x0_u + 2.5 (x0_c - x0_u) by hand
        assert torch.allclose(got[0:1], sampling.ddim(den, noise, steps=6, progress=False), atol=1e-5)
        assert torch.allclose(got[1:2], sampling.ddim(den, noise, steps=6, label=7, progress=False), atol=1e-5)

        def by_hand(x_t, t, label=None, den=den):
            uncond = den(x_t, t)
            return uncond + 2.5 * (den(x_t, t, label=label) - uncond)

        assert torch.allclose(got[2:3], sampling.ddim(by_hand, noise, steps=6, label=7, progress=False), atol=1e-5)
        read, confidence = reader.read(got)
        assert torch.equal(sweep["read"][name], read) and torch.allclose(sweep["confidence"][name], confidence)
        assert torch.equal(sweep["obeys"][name], (read == 7) & (confidence > reader.THRESHOLD))
    r = metrics.pearson_r(sweep["samples"]["ideal"], sweep["samples"]["ELS"])
    assert torch.allclose(sweep["r"], r)
    alone = conditioning.guidance_sweep({"ELS": els}, seed=2, label=7, weights=[1], steps=6)
    assert "r" not in alone and torch.allclose(alone["samples"]["ELS"], sweep["samples"]["ELS"][1:2], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(denoisers_by_name={}), "denoisers_by_name"),
        (dict(label=10), "label must be a digit"),
        (dict(label=-1), "label"),
        (dict(weights=[]), "weights"),
        (dict(weights=["big"]), "guidance weight"),
        (dict(seed=-3), "seed"),
    ],
)
def test_guidance_sweep_names_bad_arguments(kwargs, message):
    images, labels = data.load("mnist", n=10)
    args = dict(denoisers_by_name={"ideal": machines.IdealDenoiser(images, labels=labels)}, seed=0, label=3)
    with pytest.raises(ValueError, match=message):
        conditioning.guidance_sweep(**{**args, **kwargs})


def test_a_shipped_conditional_network_gets_its_rows_and_is_sampled_as_a_network(monkeypatch):
    """The network rows call the network (here a stand-in that draws a clean digit of the requested class)."""
    images, labels = reader.held_out()
    read, confidence = reader.read(images)
    clean = torch.stack(
        [images[int(((labels == k) & (read == k) & (confidence > 0.99)).nonzero()[0])] for k in range(10)]
    )

    def draws_its_label(x_t, t, label=None):
        if label is None:
            return torch.zeros_like(x_t)
        chosen = clean[torch.as_tensor(label).expand(len(x_t))]
        return chosen.clone()

    monkeypatch.setattr(conditioning.pretrained, "available", lambda everything=False: ["resnet-conditional"])
    monkeypatch.setattr(conditioning.pretrained, "load", lambda name: name)
    monkeypatch.setattr(conditioning.networks, "as_denoiser", lambda net: draws_its_label)
    real_metadata = conditioning.pretrained.metadata
    stand_in = {"name": "resnet-conditional", "sha256": "5" * 64}
    monkeypatch.setattr(
        conditioning.pretrained,
        "metadata",
        lambda name: stand_in if name == "resnet-conditional" else real_metadata(name),
    )
    rows = conditioning.settings()
    guided = f"network resnet-conditional, guidance w = {conditioning.GUIDANCE:g}"
    assert rows["network resnet-conditional"]["kind"] == "network" and guided in rows
    assert "network unet-conditional" not in rows  # not installed: no row
    result = conditioning.run(seeds=1, per_class=5, progress=False, only=["network resnet-conditional"])
    assert result["network resnet-conditional"]["obeys"] == 1.0
    assert result["network resnet-conditional"]["weights_sha256"] == "5" * 64  # what the row was measured with


def _row(obeyed, labels=1):
    """A stored row's verdicts, for `labels` labels per seed (per_label's values do not matter here)."""
    return {"obeyed": list(obeyed), "per_label": [0.0] * labels}


def test_agreement_counts_the_samples_both_judge_alike_against_chance():
    a = _row([1, 1, 0, 0, 1, 0, 1, 1])
    b = _row([1, 0, 0, 1, 1, 0, 0, 1])
    same = sum(x == y for x, y in zip(a["obeyed"], b["obeyed"], strict=True)) / 8  # 5 of 8
    p, q = 5 / 8, 4 / 8
    assert conditioning.agreement(a, b) == pytest.approx((same, p * q + (1 - p) * (1 - q)))
    assert conditioning.agreement(a, a)[0] == 1.0
    with pytest.raises(
        ValueError, match=r"row_a and row_b .* same seeds and labels, got \[seeds, labels\] \[8, 1\] and \[3, 1\]"
    ):
        conditioning.agreement(a, _row([1, 0, 1]))


@pytest.mark.parametrize(
    "row, message",
    [
        ({"obeyed": [1, 0, 1], "per_label": [0.0, 0.0]}, "whole seeds of the labels in 'per_label', got 3 verdicts"),
        ({"obeyed": [1, 0]}, "got 2 verdicts and per_label None"),
        ({"obeyed": [], "per_label": [0.0]}, "got 0 verdicts"),
        ({"obeyed": 1, "per_label": [0.0]}, "hold 'obeyed', a list"),
    ],
)
def test_rows_that_are_not_whole_seeds_of_their_labels_are_named(row, message):
    for check in (conditioning.agreement, conditioning.rare_agreement, conditioning.guidance_turned):
        with pytest.raises(ValueError, match=f"row_a must .*{message}"):
            check(row, _row([1, 0]))
        with pytest.raises(ValueError, match=f"row_b must .*{message}"):
            check(_row([1, 0]), row)


def test_rare_agreement_counts_the_rarer_verdict_of_the_first_row_in_both():
    a = _row([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])  # 2 of 10 obey: obeying is the rarer verdict
    b = _row([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    out = conditioning.rare_agreement(a, b)
    assert out == {"verdict": "obey", "a": 2, "b": 3, "both": 1, "chance": 0.6, "beyond_chance": False}
    flipped = _row([1 - v for v in a["obeyed"]])  # 8 of 10 obey: failing is the rarer verdict
    out = conditioning.rare_agreement(flipped, b)
    assert out == {"verdict": "fail", "a": 2, "b": 7, "both": 1, "chance": pytest.approx(1.4), "beyond_chance": False}
    assert conditioning.rare_agreement(_row([1, 0]), _row([1, 0]))["verdict"] == "fail"  # half: not the rarer
    # 3 rare samples shared of 3 and 5 among 200: chance 0.075, so far beyond it; 2 of 20 and 20 are not
    rare = _row([1] * 5 + [0] * 195)
    assert conditioning.rare_agreement(rare, _row([1] * 3 + [0] * 197))["beyond_chance"]
    assert not conditioning.rare_agreement(_row([1] * 20 + [0] * 180), _row([1] * 2 + [0] * 18 + [1] * 18 + [0] * 162))[
        "beyond_chance"
    ]
    one = _row([1] + [0] * 199)  # one shared sample, chance 0.005: still not enough to call
    assert not conditioning.rare_agreement(one, one)["beyond_chance"]


def test_rare_agreement_expects_chance_label_by_label():
    # 10 seeds x 2 labels: both rows obey only on label 0, on 3 and 4 of its 10 seeds, sharing 2
    a = _row([1, 0] * 3 + [0, 0] * 7, labels=2)
    b = _row([1, 0] * 2 + [0, 0] + [1, 0] * 2 + [0, 0] * 5, labels=2)
    out = conditioning.rare_agreement(a, b)
    # independent within label 0: 3 * 4 / 10 = 1.2 (over all 20 samples it would be 3 * 4 / 20 = 0.6)
    assert (out["both"], out["chance"]) == (2, pytest.approx(1.2))
    assert not out["beyond_chance"]


def test_guidance_turned_finds_the_first_seed_and_label_that_guidance_made_obey():
    plain = _row([0, 1, 0, 0, 0, 0, 1, 0], labels=4)  # 2 seeds x 4 labels, seed-major
    guided = _row([0, 1, 0, 0, 1, 0, 1, 1], labels=4)
    assert conditioning.guidance_turned(plain, guided) == (1, 0)  # sample 4: seed 1, label 0
    assert conditioning.guidance_turned(guided, plain) is None  # guidance lost samples, turned none
    assert conditioning.guidance_turned(plain, plain) is None
    with pytest.raises(ValueError, match=r"\[2, 4\] and \[4, 2\]"):
        conditioning.guidance_turned(plain, _row(guided["obeyed"], labels=2))


def test_stored_rows_of_retrained_weights_or_a_new_calibration_are_left_out(tmp_path, monkeypatch):
    monkeypatch.setenv("ELS_RECORDS_DIR", str(tmp_path / "records"))
    sha = conditioning.pretrained.metadata("resnet-zeros")["sha256"]
    sizes = list(conditioning.pretrained.calibrated_scales("resnet-zeros").patch_sizes)
    rows = {
        "machine": {"obeys": 0.5},
        "network, current weights": {"obeys": 0.5, "network": "resnet-zeros", "weights_sha256": sha},
        "network, old weights": {"obeys": 0.5, "network": "resnet-zeros", "weights_sha256": "0" * 64},
        "P(t), current": {"obeys": 0.5, "scales_of": "resnet-zeros", "patch_sizes": sizes},
        "P(t), old": {"obeys": 0.5, "scales_of": "resnet-zeros", "patch_sizes": [3] * len(sizes)},
    }
    conditioning.records.write("conditioning", "label-wins", {"seeds-1-per-class-5": {"rows": rows}})
    kept = conditioning.stored(seeds=1, per_class=5)
    assert list(kept) == ["machine", "network, current weights", "P(t), current"]


def test_which_obeys_more_orders_the_networks_by_their_rows_and_by_the_machines():
    def rows(resnet, els_resnet, unet, els_unet):
        return {
            "network resnet-conditional": {"obeys": resnet},
            "ELS, P(t) of resnet-conditional (largest 15)": {"obeys": els_resnet},
            "ELS, P(t) of resnet-conditional, guidance w = 3": {"obeys": 0.99},  # not the P(t) row: ignored
            "network unet-conditional": {"obeys": unet},
            "ELS, P(t) of unet-conditional (largest 31)": {"obeys": els_unet},
            "ELS, constant P = 25": {"obeys": 0.96},
        }

    out = conditioning.which_obeys_more(rows(0.02, 0.05, 0.6, 0.5))
    assert out == {
        "networks": {"resnet-conditional": 0.02, "unet-conditional": 0.6},
        "machines": {"resnet-conditional": 0.05, "unet-conditional": 0.5},
        "verdict": "same order",
    }
    assert conditioning.which_obeys_more(rows(0.02, 0.5, 0.6, 0.05))["verdict"] == "different order"
    assert conditioning.which_obeys_more(rows(0.02, 0.05, 0.1, 0.08))["verdict"] == "all tied"
    # the networks tie, the machines do not: the machine predicts a difference that is not there
    assert conditioning.which_obeys_more(rows(0.02, 0.05, 0.1, 0.5))["verdict"] == "different order"
    assert conditioning.which_obeys_more(rows(0.02, 0.05, 0.1, 0.5), margin=0.5)["verdict"] == "all tied"
    assert conditioning.which_obeys_more(rows(0.02, 0.05, 0.1, 0.5), margin=0)["verdict"] == "same order"
    assert conditioning.which_obeys_more({}) is None
    assert conditioning.own_machine_row(rows(0, 0, 0, 0), "unet-conditional") == (
        "ELS, P(t) of unet-conditional (largest 31)"
    )
    assert conditioning.own_machine_row(rows(0, 0, 0, 0), "unet-zeros") is None
    one_network = {k: v for k, v in rows(0.02, 0.05, 0.6, 0.5).items() if k != "network unet-conditional"}
    assert conditioning.which_obeys_more(one_network) is None
    with pytest.raises(ValueError, match="margin"):
        conditioning.which_obeys_more(rows(0.02, 0.05, 0.6, 0.5), margin=1)
