"""The project's own files agree with each other: pyproject, environment.yml, README, CI."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # pip name -> conda-forge name where they differ
CONDA_SPEC = re.compile(r"^[A-Za-z0-9_.\-]+(\s*(==|>=|<=|!=|>|<|=)\s*[0-9][0-9A-Za-z.*+!]*(,\s*(==|>=|<=|!=|>|<)\s*[0-9][0-9A-Za-z.*+!]*)*)?$")


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def conda_dependencies():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
            continue
        assert CONDA_SPEC.match(dep), f"environment.yml: malformed conda spec {dep!r}"
        name = re.split(r"[<>=!\s]", dep, maxsplit=1)[0].lower()
        conda[name] = dep[len(name) :].strip()
    return conda, pip


def test_environment_yml_is_equivalent_to_pyproject():
    conda, pip = conda_dependencies()
    assert "conda-forge" in yaml.safe_load((ROOT / "environment.yml").read_text())["channels"]
    assert "python" in conda and "-e ." in pip, "environment.yml must pin python and install the project editable"
    for req in pyproject_requirements():
        name = CONDA_NAMES.get(req.name.lower(), req.name.lower())
        in_pip = any(Requirement(p).name.lower() == req.name.lower() for p in pip if not p.startswith("-"))
        assert name in conda or in_pip, f"environment.yml lacks {req.name} (pyproject: {req})"
        if name in conda:
            assert conda[name].replace(" ", "") == str(req.specifier), (
                f"{name}: environment.yml says {conda[name]!r}, pyproject says {str(req.specifier)!r}"
            )


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
