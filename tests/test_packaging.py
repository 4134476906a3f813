"""environment.yml and pyproject.toml list the same dependencies; .ci/run is the README command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()


def test_environment_yml_agrees_with_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip_section) == sorted(wanted), "same requirement strings, pins included"
    assert {_name(r) for r in wanted} >= {"torch", "timm", "kornia", "matplotlib", "ipywidgets",
                                           "jupyterlab", "jupytext", "nbval", "pytest"}


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^make test$", readme, flags=re.M)
    assert command, "README must show the test command `make test` on its own line"
    commands = [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert commands[-1] == "make test", ".ci/run must end with the README's test command"
    # before it, only the system packages of the browser tests, installed when missing
    assert all(line.startswith("command -v chromium >/dev/null || ") for line in commands[:-1]), commands
