"""Packaging checks: environment.yml and pyproject.toml list the same packages; the committed
data dictionary is up to date with the schema."""
from __future__ import annotations

import re
import tomllib

import yaml

from dmst_eval import schema
from tests.conftest import REPO

# conda-forge package names that differ from the PyPI name
CONDA_TO_PYPI: dict[str, str] = {}


def _norm(spec: str) -> str:
    name = re.split(r"[\s<>=!~;\[]", spec.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_names() -> tuple[set[str], set[str]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    deps = data["project"]["dependencies"]
    dev = data["project"].get("optional-dependencies", {}).get("dev", [])
    return {_norm(d) for d in deps}, {_norm(d) for d in dev}


def _environment_names() -> tuple[set[str], list[str]]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda, pip = set(), []
    for d in env["dependencies"]:
        if isinstance(d, dict):
            pip.extend(d.get("pip", []))
        else:
            conda.add(CONDA_TO_PYPI.get(_norm(d), _norm(d)))
    conda -= {"python", "pip"}
    pip_names = {_norm(p) for p in pip if not p.strip().startswith("-e")}
    return conda | pip_names, pip


def test_environment_yml_and_pyproject_agree():
    core, dev = _pyproject_names()
    env, pip = _environment_names()
    assert env == core, (f"only in environment.yml: {sorted(env - core)}; "
                         f"only in pyproject: {sorted(core - env)}")
    assert any(re.fullmatch(r"-e\s+\.\[dev\]", p.strip()) for p in pip), \
        "environment.yml should install the package with `pip: -e .[dev]`"
    assert {"pytest", "hypothesis", "nbval", "pytest-xdist"} <= dev


def test_pandas_major_pinned_in_both():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    pandas_spec = [d for d in data["project"]["dependencies"] if _norm(d) == "pandas"][0]
    assert "<3" in pandas_spec.replace(" ", "")
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda_pandas = [d for d in env["dependencies"] if isinstance(d, str) and _norm(d) == "pandas"]
    assert conda_pandas and "<3" in conda_pandas[0].replace(" ", "")


def test_data_dictionary_is_current():
    committed = (REPO / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert committed == schema.data_dictionary(), (
        "docs/data_dictionary.md is stale: run `dmst-eval dictionary` and commit the result")
