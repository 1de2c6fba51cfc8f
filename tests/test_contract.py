"""The denoiser contract: a denoiser owns its schedule, samplers use it; and the two layers stay apart."""

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from elslib import data, denoisers, machines, networks, sampling, schedules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "elslib"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    images, labels = data.load("digits", n=40)
    return images, labels


def hand_ddim(denoiser, noise, schedule, times):
    """DDIM written out from the formulas in float64 scalars, step by step: the states x_t."""
    x, states = noise, [noise]
    for t, t_next in zip(times, times[1:], strict=False):
        x0 = denoiser(x, t)
        ab, ab_next = schedule.alpha_bar(t), schedule.alpha_bar(t_next)
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        x = math.sqrt(ab_next) * x0 + math.sqrt(1 - ab_next) * eps
        states.append(x)
    return states


def test_ddim_follows_the_schedule_of_the_denoiser(digits):
    images, _ = digits
    den = machines.IdealDenoiser(images, schedule="linear")
    noise = sampling.noise_like((2, *images.shape[1:]), seed=3)
    own, traj = sampling.ddim(den, noise, steps=5, return_trajectory=True, progress=False)
    # the intermediate states are linear-schedule DDIM steps, computed by hand
    expected = hand_ddim(den, noise, schedules.linear(), sampling.step_times(5))
    for k, state in enumerate(expected):
        torch.testing.assert_close(traj.x[k], state, rtol=1e-5, atol=1e-5)
    # and naming the same schedule changes nothing, bit for bit
    named = sampling.ddim(den, noise, steps=5, schedule="linear", progress=False)
    assert torch.equal(own, named)
    # the cosine schedule would give another image: the sampler did not fall back to its default
    cosine = sampling.ddim(machines.IdealDenoiser(images), noise, steps=5, progress=False)
    assert not torch.allclose(own, cosine)


def test_an_explicit_schedule_that_differs_from_the_denoisers_is_refused(digits):
    images, _ = digits
    den = machines.LocalDenoiser(images, patch_size=3, schedule="linear")
    noise = sampling.noise_like((1, *images.shape[1:]), seed=0)
    for sampler in (sampling.ddim, sampling.ddpm):
        with pytest.raises(ValueError, match=r"CosineSchedule.*LinearSchedule"):
            sampler(den, noise, steps=2, schedule="cosine", progress=False)
    with pytest.raises(ValueError, match="differs"):
        sampling.ddim(den, noise, steps=2, schedule=schedules.linear(beta_max=10.0), progress=False)
    sampling.ddim(den, noise, steps=2, schedule=schedules.linear(), progress=False)  # an equal one is fine


def test_a_plain_function_uses_the_given_or_the_default_schedule():
    calls = []

    def shrink(x, t):
        calls.append(t)
        return 0.5 * x

    noise = sampling.noise_like((3, 1, 2, 2), seed=1)
    for name in ("cosine", "linear"):
        out = sampling.ddim(shrink, noise, steps=4, schedule=name, progress=False)
        sched = schedules.get(name)
        torch.testing.assert_close(out, hand_ddim(shrink, noise, sched, sampling.step_times(4))[-1])
    default = sampling.ddim(shrink, noise, steps=4, progress=False)
    assert torch.equal(default, sampling.ddim(shrink, noise, steps=4, schedule="cosine", progress=False))


def test_networks_carry_their_schedule_into_the_sampler():
    torch.manual_seed(0)
    net = networks.ResNet(channels=4, blocks=1, target="v")
    den = networks.as_denoiser(net, "linear")
    assert isinstance(den, denoisers.Denoiser) and den.schedule == schedules.linear()
    noise = sampling.noise_like((1, 1, 8, 8), seed=2)
    assert torch.equal(
        sampling.ddim(den, noise, steps=3, progress=False),
        sampling.ddim(den, noise, steps=3, schedule="linear", progress=False),
    )
    with pytest.raises(ValueError, match="differs"):
        sampling.ddim(den, noise, steps=3, schedule="cosine", progress=False)


def test_schedules_compare_by_their_parameters():
    assert schedules.cosine() == schedules.cosine(0.008) and schedules.cosine() != schedules.cosine(0.01)
    assert schedules.linear() == schedules.get("linear") and schedules.linear() != schedules.cosine()
    assert len({schedules.cosine(), schedules.cosine(), schedules.linear()}) == 2


def test_coefficients_broadcast_a_and_s_to_the_batch():
    sched = schedules.cosine()
    like = torch.zeros(3, 2, 4, 4, dtype=torch.float64)
    t = torch.tensor([0.1, 0.5, 0.9])
    a, s = sched.coefficients(t, like=like)
    assert a.shape == s.shape == (3, 1, 1, 1) and a.dtype == torch.float64
    for k in range(3):
        assert float(a[k]) == pytest.approx(math.cos(float(t[k]) / 1.008 * math.pi / 2), rel=1e-6)
        assert float(a[k]) ** 2 + float(s[k]) ** 2 == pytest.approx(1.0)
    a1, _ = sched.coefficients(0.3, like=like)
    assert torch.equal(a1, torch.full((3, 1, 1, 1), sched.alpha(0.3), dtype=torch.float64))
    with pytest.raises(ValueError, match="3 images"):
        sched.coefficients(torch.tensor([0.1, 0.2]), like=like)


def test_an_explicit_time_grid(digits):
    images, _ = digits
    den = machines.IdealDenoiser(images)
    noise = sampling.noise_like((1, *images.shape[1:]), seed=4)
    grid = [1.0, 0.6, 0.25, 0.0]
    out, traj = sampling.ddim(den, noise, times=grid, return_trajectory=True, progress=False)
    assert traj.times.tolist() == grid and traj.x.shape[0] == 4
    torch.testing.assert_close(out, hand_ddim(den, noise, schedules.cosine(), grid)[-1], rtol=1e-5, atol=1e-5)
    uniform = sampling.ddim(den, noise, steps=4, progress=False)
    assert torch.equal(uniform, sampling.ddim(den, noise, times=sampling.step_times(4), progress=False))
    assert torch.equal(out, sampling.ddim(den, noise, times=torch.tensor(grid, dtype=torch.float64), progress=False))
    for bad, match in [
        ([1.0, 0.5, 0.5, 0.0], "decrease strictly"),
        ([0.0, 0.5, 1.0], "decrease strictly"),
        ([1.0], "at least two"),
        ([1.5, 0.0], r"\[0, 1\]"),
        ("fast", "floats"),
    ]:
        with pytest.raises(ValueError, match=match):
            sampling.ddim(den, noise, times=bad, progress=False)
    with pytest.raises(ValueError, match="steps=5 but times"):
        sampling.ddim(den, noise, steps=5, times=grid, progress=False)


def test_conditioned_and_guided_keep_the_contract(digits):
    images, labels = digits
    den = machines.IdealDenoiser(images, labels=labels, schedule="linear")
    x = sampling.noise_like((2, *images.shape[1:]), seed=5)
    t = 0.4
    uncond, cond = den(x, t), den(x, t, label=3)
    three = denoisers.Conditioned(den, 3)
    assert three.schedule == den.schedule and torch.equal(three(x, t), cond)
    with pytest.raises(ValueError, match="conditioned on label=3"):
        three(x, t, label=4)
    assert torch.equal(denoisers.Guided(den, 0.0)(x, t, label=3), uncond)
    assert torch.equal(denoisers.Guided(den, 1.0)(x, t, label=3), cond)
    guided = denoisers.Guided(den, 2.5)
    torch.testing.assert_close(guided(x, t, label=3), uncond + 2.5 * (cond - uncond))
    assert torch.equal(guided(x, t), uncond)  # no label: the unconditional denoiser
    # a sampler takes the wrapper's schedule (the machine's), and passes the label on
    noise = sampling.noise_like((1, *images.shape[1:]), seed=6)
    assert torch.equal(
        sampling.ddim(three, noise, steps=3, progress=False),
        sampling.ddim(den, noise, steps=3, label=3, progress=False),
    )
    for bad in (float("nan"), float("inf"), True, "2"):
        with pytest.raises(ValueError, match="weight"):
            denoisers.Guided(den, bad)


def test_a_foreign_schedule_attribute_is_refused():
    class Odd:
        schedule = "cosine"

        def __call__(self, x, t, label=None):
            return x

    with pytest.raises(ValueError, match="Schedule"):
        sampling.ddim(Odd(), torch.zeros(1, 1, 2, 2), steps=2, progress=False)


# --------------------------------------------------------------------------- the two layers


def test_import_elslib_loads_no_exercises_and_no_widgets():
    code = (
        "import sys, elslib\n"
        "bad = [m for m in sys.modules if 'exercises' in m or 'widgets' in m or m.startswith('elslib.course')]\n"
        "print(bad)\n"
        "assert not bad, bad\n"
        "assert elslib.course.pick(1, 2) in (1, 2)  # on demand\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the elslib modules a source file imports (relative imports resolved)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)  # elslib/a/__init__ -> elslib.a.__init__
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("elslib")}


def test_no_core_module_imports_the_course_layer():
    core = [p for p in PACKAGE.rglob("*.py") if "course" not in p.relative_to(PACKAGE).parts]
    deprecated_aliases = {PACKAGE / f"{name}.py" for name in ("exercises", "widgets", "student")}
    assert len(core) > 20
    offenders = {}
    for path in core:
        if path in deprecated_aliases or path == PACKAGE / "__main__.py":
            continue  # the aliases forward to the course layer; the command line serves both layers
        bad = sorted(n for n in imported_modules(path) if n.startswith("elslib.course"))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert not offenders, offenders


def test_the_import_scan_resolves_relative_imports():
    # the scan above is only as good as this: `from .. import schedules` in machines/base.py, say
    found = imported_modules(PACKAGE / "machines" / "base.py")
    assert {"elslib.schedules", "elslib.machines.explain"} <= found
    assert "elslib.sampling" in imported_modules(PACKAGE / "course" / "exercises" / "framework.py")


def test_old_paths_still_work_with_a_deprecation_warning():
    code = (
        "import warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n"
        "    import elslib.exercises\n"
        "except DeprecationWarning as w:\n"
        "    print('warned:', w)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        "from elslib import exercises, widgets, student\n"
        "import elslib.course.exercises as new\n"
        "assert exercises is new and hasattr(widgets, 'NoiseExplorer') and hasattr(student, 'student_notebook')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warned: elslib.exercises moved to elslib.course.exercises" in proc.stdout


def test_the_registry_builds_every_machine(digits):
    images, _ = digits
    x = sampling.noise_like((1, *images.shape[1:]), seed=7)
    direct = {
        "IS": machines.IdealDenoiser(images),
        "LS": machines.LocalDenoiser(images, patch_size=3),
        "ES": machines.EquivariantDenoiser(images),
        "ELS": machines.ELSDenoiser(images, patch_size=3, padding="circular"),
    }
    for kind, den in direct.items():
        built = machines.build(kind, images, patch_size=3, padding="circular")
        assert type(built) is type(den) and repr(built) == repr(den)
        assert torch.equal(built(x, 0.5), den(x, 0.5))
    with pytest.raises(ValueError, match="kind must be one of 'IS', 'LS', 'ES', 'ELS'"):
        machines.build("GS", images)


def test_wrappers_of_a_plain_function_take_the_samplers_schedule():
    def den(x, t, label=None):
        return 0.5 * x if label is None else 0.4 * x

    noise = sampling.noise_like((1, 1, 4, 4), seed=8)
    for wrapped in (denoisers.Guided(den, 2.0), denoisers.Conditioned(den, 1)):
        assert wrapped.schedule is None
        label = 1 if isinstance(wrapped, denoisers.Guided) else None
        linear = sampling.ddim(wrapped, noise, steps=3, schedule="linear", label=label, progress=False)
        cosine = sampling.ddim(wrapped, noise, steps=3, label=label, progress=False)
        assert not torch.allclose(linear, cosine)


def test_explorers_take_their_networks_schedule():
    from elslib.course.widgets import MachineComparer

    torch.manual_seed(0)
    den = networks.as_denoiser(networks.ResNet(channels=4, blocks=1, target="v"), "linear")
    widget = MachineComparer(network=den, machines=("IS",), n_images=50, steps=2, progress=False)
    assert widget.schedule == schedules.linear()
    with pytest.raises(ValueError, match="differs"):
        MachineComparer(network=den, schedule="cosine", machines=("IS",), n_images=50, steps=2, progress=False)


def test_without_a_records_folder_nothing_is_recorded(monkeypatch, tmp_path):
    from elslib import records, reproduce

    monkeypatch.delenv("ELS_RECORDS_DIR", raising=False)
    monkeypatch.setattr(records, "folder", lambda: (_ for _ in ()).throw(FileNotFoundError("no records/")))
    assert reproduce.stored_runs("resnet-zeros") == {}
    with pytest.raises(FileNotFoundError, match="no records"):
        reproduce.run(seeds=1, names=["resnet-zeros"], out_dir=tmp_path, record_runs=True, progress=False)
