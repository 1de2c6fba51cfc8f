"""A training run judged record by record, with the machines' r: the machines' samples are made once
(reproduce.compare) and serve every record, because they do not depend on the network."""

import shutil
import subprocess
import sys

import pytest
import torch

from elslib import networks, pretrained, quality, reproduce, training

pytestmark = pytest.mark.usefixtures("one_thread")

N_IMAGES = 40  # a small training set for the machines: seconds, not minutes


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """Two records of "resnet-zeros": the shipped weights (as step 3000) and an untrained network (step 1)."""
    folder = tmp_path_factory.mktemp("run")
    shutil.copy(pretrained.weights_path("resnet-zeros"), folder / "resnet-zeros-step3000.pt")
    torch.manual_seed(1)
    fresh = networks.build("resnet", **pretrained.RECIPES["resnet-zeros"]["config"])
    training.save_checkpoint(folder / "resnet-zeros-step1.pt", fresh)
    return folder


@pytest.fixture(scope="module")
def machines():
    return reproduce.compare("resnet-zeros", range(2), progress=False, n_images=N_IMAGES)


def test_r_along_training_is_the_reproductions_r_for_the_shipped_weights(run_folder, machines):
    rows = quality.along_training(run_folder, n=4, progress=False, machines=machines)
    assert list(rows) == [1, 3000]
    shipped = rows[3000]
    for kind in ("ELS", "LS", "IS"):
        # the same network from the same noise: the reproduction's own r (batching changes ~1e-6)
        assert shipped[f"r_{kind}"] == pytest.approx(float(machines.r[kind].median()), abs=1e-4)
    assert shipped["r_seeds"] == 2
    # the untrained record: r recomputed from its own samples, from the definition of Pearson's r
    fresh, _ = training.load_checkpoint(run_folder / "resnet-zeros-step1.pt")
    x = quality.samples(networks.as_denoiser(fresh), 2).flatten(1)
    y = machines.samples["ELS"].flatten(1)
    xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    r = (xc * yc).sum(1) / (xc.norm(dim=1) * yc.norm(dim=1))
    assert rows[1]["r_ELS"] == pytest.approx(float(r.median()), abs=1e-4)
    assert rows[1]["r_ELS"] < shipped["r_ELS"]  # an untrained network is not what the machine predicts
    table = quality.training_table(rows)
    assert "r(ELS, CNN)" in table and f"{shipped['r_ELS']:.3f}" in table
    fig = quality.training_figure(rows)
    assert len(fig.axes) == 4 and fig.axes[-1].get_legend() is not None


def test_without_machines_the_table_has_no_r_columns(run_folder):
    rows = quality.along_training(run_folder, n=2, progress=False)
    assert "r_ELS" not in rows[1] and "r(ELS" not in quality.training_table(rows)
    assert len(quality.training_figure(rows).axes) == 3


def test_machines_must_hold_the_first_seeds(run_folder, machines):
    with pytest.raises(ValueError, match="at most n = 1"):
        quality.along_training(run_folder, n=1, progress=False, machines=machines)
    shifted = reproduce.Comparison("resnet-zeros", [1, 2], machines.samples)
    with pytest.raises(ValueError, match="seeds 0 .. m - 1"):
        quality.along_training(run_folder, n=4, progress=False, machines=shifted)


def test_the_rows_are_recorded_and_read_back(run_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ELS_RECORDS_DIR", str(tmp_path / "records"))
    rows = quality.run_along_training(run_folder, n=2, record=True)
    stored = quality.stored_along_training("resnet-zeros")
    assert stored == rows and list(stored) == [1, 3000]
    kept = quality.records.read("quality", "resnet-zeros")["along-training"]
    assert kept["seeds"] == 2 and kept["command"].endswith("--seeds 2 --record") and kept["scales"] is None
    with pytest.raises(ValueError, match="r_seeds must be at most"):
        quality.run_along_training(run_folder, n=2, r_seeds=3)
    assert quality.stored_along_training("unet-zeros") == {}


def test_records_of_two_runs_or_an_unshipped_name_are_refused(run_folder, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(run_folder, mixed)
    shutil.copy(run_folder / "resnet-zeros-step1.pt", mixed / "other-step5.pt")
    with pytest.raises(ValueError, match="several runs"):
        quality.run_along_training(mixed, n=2)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(run_folder / "resnet-zeros-step1.pt", alone / "tiny-step5.pt")
    with pytest.raises(ValueError, match="'tiny' is not a network of the course"):
        quality.run_along_training(alone, n=2, r_seeds=2)


def test_the_command_line_refuses_r_seeds_without_checkpoints():
    out = subprocess.run(
        [sys.executable, "-m", "elslib", "quality", "--r-seeds", "4"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "--checkpoints" in out.stderr and "Traceback" not in out.stderr
