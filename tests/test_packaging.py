"""The project's own files agree with each other: pyproject, environment.yml, README, CI."""

import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # pip name -> conda-forge name where they differ
VERSION = r"\s*(==|>=|<=|!=|>|<|=)\s*[0-9][0-9A-Za-z.*+!]*"
CONDA_SPEC = re.compile(rf"^[A-Za-z0-9_.\-]+({VERSION}(,{VERSION})*)?$")


def pyproject_requirements(text=None):
    project = tomllib.loads(text or (ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def environment_problems(env_text: str, pyproject_text: str | None = None) -> list[str]:
    """Every way environment.yml disagrees with pyproject.toml (empty list: equivalent)."""
    env = yaml.safe_load(env_text)
    problems, conda, pip = [], {}, []
    if "conda-forge" not in env.get("channels", []):
        problems.append("conda-forge is not a channel")
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep.get("pip", [])
        elif not isinstance(dep, str) or not CONDA_SPEC.match(dep):
            problems.append(f"malformed conda spec {dep!r}")
        else:
            name = re.split(r"[<>=!\s]", dep, maxsplit=1)[0].lower()
            conda[name] = dep[len(name) :].replace(" ", "")
    if "python" not in conda:
        problems.append("python is not pinned")
    if "-e ." not in pip:
        problems.append("the project itself is not installed editable (pip: -e .)")
    pip_names = {Requirement(p).name.lower() for p in pip if not p.startswith("-")}
    for req in pyproject_requirements(pyproject_text):
        if req.marker is not None:  # e.g. tomli on Python 3.10 only: conda's python decides
            continue
        name = CONDA_NAMES.get(req.name.lower(), req.name.lower())
        if name in conda:
            if conda[name] != str(req.specifier):
                problems.append(f"{name}: environment.yml says {conda[name]!r}, pyproject says {str(req.specifier)!r}")
        elif req.name.lower() not in pip_names:
            problems.append(f"{req.name} is missing (pyproject: {req})")
    return problems


def test_environment_yml_is_equivalent_to_pyproject():
    assert environment_problems((ROOT / "environment.yml").read_text()) == []


def test_the_equivalence_check_catches_drift():
    env = (ROOT / "environment.yml").read_text()
    assert any("tqdm" in p for p in environment_problems(env.replace("  - tqdm>=4.60\n", "")))
    assert any("malformed" in p for p in environment_problems(env.replace("tqdm>=4.60", "tqdm>=>4.60")))
    assert any("pytorch" in p for p in environment_problems(env.replace("pytorch>=2.2", "pytorch>=2.0")))
    assert any("editable" in p for p in environment_problems(env.replace("-e .", "elslib")))


def test_pyproject_keeps_the_user_facing_torch_requirement():
    reqs = {r.name: r for r in pyproject_requirements()}
    assert str(reqs["torch"].specifier) == ">=2.2"
    assert "torchvision" not in reqs


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    test_commands = [c for c in readme_commands() if "pytest" in c]
    assert len(test_commands) == 1, "README.md must show exactly one test command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_commands[0] in ci.splitlines()
    assert "torch==2.13.0" in ci


def test_readme_images_exist():
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (ROOT / "README.md").read_text()):
        assert (ROOT / path).exists(), f"README.md shows {path}, which does not exist"


def test_info_command_runs():
    out = subprocess.run([sys.executable, "-m", "elslib", "info"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch" in out.stdout and "mnist" in out.stdout and "FAILED" not in out.stdout
