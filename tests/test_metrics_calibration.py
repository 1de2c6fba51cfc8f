"""elslib.metrics against numpy, and calibration recovering a known patch size."""

import numpy as np
import pytest
import torch

from elslib import calibration, metrics, sampling
from elslib.machines import IdealDenoiser


def test_pearson_and_cosine_match_numpy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 1, 5, 6, generator=g), torch.randn(4, 1, 5, 6, generator=g)
    b[0] = 2 * a[0] + 1  # a perfect linear relation: r = 1, cosine < 1
    r, cos = metrics.pearson_r(a, b), metrics.cosine_similarity(a, b)
    for i in range(4):
        x, y = a[i].flatten().numpy(), b[i].flatten().numpy()
        assert r[i] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-6)
        assert cos[i] == pytest.approx(x @ y / np.linalg.norm(x) / np.linalg.norm(y), abs=1e-6)
    assert r[0] == pytest.approx(1.0, abs=1e-6) and cos[0] < 0.999


def test_nearest_neighbours_brute_force():
    g = torch.Generator().manual_seed(1)
    train = torch.rand(50, 1, 4, 4, generator=g) * 2 - 1
    x = torch.cat([train[[7, 31]], torch.rand(3, 1, 4, 4, generator=g)])
    d, idx = metrics.nearest_neighbours(x, train, chunk=16)  # several chunks
    assert idx[:2].tolist() == [7, 31] and d[:2].max() == 0.0  # copies are exactly 0, no cancellation
    for i in range(2, 5):
        rms = ((train - x[i]) ** 2).flatten(1).mean(1).sqrt()
        assert int(idx[i]) == int(rms.argmin()) and float(d[i]) == pytest.approx(float(rms.min()), abs=1e-5)


def test_metric_shapes_are_checked():
    with pytest.raises(ValueError, match="same shape"):
        metrics.pearson_r(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="train"):
        metrics.nearest_neighbours(torch.zeros(1, 1, 2, 2), torch.zeros(3, 3, 2, 2))


def test_scale_schedule_lookup_and_validation():
    s = calibration.ScaleSchedule([1.0, 0.5, 0.25], [9, 5, 3])
    assert s(1.0) == 9 and s(0.5) == 5 and s(0.3) == 3 and s(torch.tensor([0.9, 0.9])) == 9
    assert calibration.ScaleSchedule.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="odd"):
        calibration.ScaleSchedule([1.0], [4])
    with pytest.raises(ValueError, match="same length"):
        calibration.ScaleSchedule([1.0, 0.5], [3])


def test_calibration_recovers_the_patch_size_of_a_machine_network():
    from elslib.machines import ELSDenoiser

    g = torch.Generator().manual_seed(2)
    images = (torch.rand(12, 1, 8, 8, generator=g) > 0.6).float() * 2 - 1
    network = ELSDenoiser(images, patch_size=3, padding="circular")  # a "network" of known scale
    make = lambda p: ELSDenoiser(images, patch_size=p, padding="circular")
    sched = calibration.calibrate(network, make, (1, 8, 8), seeds=range(3), patch_sizes=[1, 3, 5, 7], steps=6)
    assert len(sched.times) == 6 and sched.times[0] == 1.0
    middle = [p for t, p in zip(sched.times, sched.patch_sizes, strict=True) if 0.1 < t < 0.9]
    assert middle and all(p == 3 for p in middle)
    assert sched.similarity.shape == (3, 6, 4)


def test_calibration_of_a_class_conditional_network_asks_both_for_each_seeds_label():
    from elslib.machines import ELSDenoiser

    g = torch.Generator().manual_seed(3)
    images = (torch.rand(12, 1, 8, 8, generator=g) > 0.6).float() * 2 - 1
    labels = torch.arange(12) % 2
    network = ELSDenoiser(images, labels=labels, patch_size=5, padding="circular")
    asked = []

    def make(p):
        machine = ELSDenoiser(images, labels=labels, patch_size=p, padding="circular")

        def spy(x, t, label=None):
            asked.append(label)
            return machine(x, t, label=label)

        spy.schedule = machine.schedule
        return spy

    sched = calibration.calibrate(
        network, make, (1, 8, 8), seeds=range(3), patch_sizes=[1, 3, 5, 7], steps=6, labels=[1, 0, 1]
    )
    assert asked and all(a == [1, 0, 1] for a in asked)
    middle = [p for t, p in zip(sched.times, sched.patch_sizes, strict=True) if 0.1 < t < 0.9]
    assert middle and all(p == 5 for p in middle)
    with pytest.raises(ValueError, match="one class per seed"):
        calibration.calibrate(network, make, (1, 8, 8), seeds=range(3), patch_sizes=[3], steps=2, labels=[1, 0])


class PeakedMachine:
    """A stand-in machine of size P whose output resembles the network's most when P is the
    true scale at that t (the network's estimate plus a perturbation growing with |P - P_true|)."""

    calls = 0

    def __init__(self, network, p, true_scale):
        self.network, self.p, self.true_scale = network, p, true_scale

    def __call__(self, x, t):
        PeakedMachine.calls += 1
        out = self.network(x, t)
        g = torch.Generator().manual_seed(7)
        return out + 0.3 * abs(self.p - self.true_scale(t)) * torch.randn(out.shape, generator=g)


def test_local_search_finds_what_the_full_search_finds_with_fewer_calls():
    g = torch.Generator().manual_seed(3)
    images = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    network = IdealDenoiser(images)
    true_scale = lambda t: 2 * int(round(1 + 5 * float(t))) + 1  # 13 at t = 1 down to 3 at t = 0
    make = lambda p: PeakedMachine(network, p, true_scale)
    sizes = list(range(1, 16, 2))
    found = {}
    for search in ("full", "local"):
        PeakedMachine.calls = 0
        sched = calibration.calibrate(
            network, make, (1, 8, 8), seeds=range(2), patch_sizes=sizes, steps=10, search=search, progress=False
        )
        found[search] = (sched.patch_sizes, PeakedMachine.calls)
        assert sched.patch_sizes == [true_scale(t) for t in sched.times]
    assert found["local"][0] == found["full"][0]
    assert found["local"][1] < found["full"][1] / 2
    with pytest.raises(ValueError, match="search"):
        calibration.calibrate(network, make, (1, 8, 8), seeds=[0], patch_sizes=sizes, steps=2, search="greedy")


def test_calibration_takes_any_similarity_and_records_what_it_measured():
    from elslib.machines import ELSDenoiser

    g = torch.Generator().manual_seed(2)
    images = (torch.rand(12, 1, 8, 8, generator=g) > 0.6).float() * 2 - 1
    network = ELSDenoiser(images, patch_size=3, padding="circular")
    make = lambda p: ELSDenoiser(images, patch_size=p, padding="circular")
    kw = dict(seeds=range(2), patch_sizes=[1, 3, 5], steps=4, progress=False)
    by_r = calibration.calibrate(network, make, (1, 8, 8), similarity=metrics.pearson_r, **kw)
    by_cos = calibration.calibrate(network, make, (1, 8, 8), **kw)
    # the stored similarities are the chosen measure's, recomputed here from the definitions
    _, traj = sampling.ddim(
        network,
        torch.cat([sampling.noise_like((1, 1, 8, 8), seed=s) for s in (0, 1)]),
        steps=4,
        return_trajectory=True,
        progress=False,
    )
    for i in range(4):
        out = make(5)(traj.x[i], float(traj.times[i]))
        assert torch.allclose(by_r.similarity[:, i, 2], metrics.pearson_r(out, traj.x0_hat[i]).float(), atol=1e-5)
        assert torch.allclose(
            by_cos.similarity[:, i, 2], metrics.cosine_similarity(out, traj.x0_hat[i]).float(), atol=1e-5
        )
    with pytest.raises(TypeError, match="similarity"):
        calibration.calibrate(network, make, (1, 8, 8), similarity="pearson", **kw)


def test_last_step_with_patches_reads_the_schedule_step_by_step():
    times = [1.0, 0.75, 0.5, 0.25, 0.0]
    schedule = calibration.ScaleSchedule(times[:-1], [9, 5, 3, 1])
    assert calibration.last_step_with_patches(schedule, times, at_least=5) == (1, 5)
    assert calibration.last_step_with_patches(schedule, times, at_least=3) == (2, 3)
    assert calibration.last_step_with_patches(7, times, at_least=5) == (3, 7)  # a fixed size: the last step
    with pytest.raises(ValueError, match="at least 11"):
        calibration.last_step_with_patches(schedule, times, at_least=11)
