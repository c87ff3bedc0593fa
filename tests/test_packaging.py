"""Packaging checks: pyproject.toml lists exactly the packages the library imports;
environment.yml and pyproject.toml list the same packages; the committed data dictionary is up to
date with the schema. (tests/test_wheel.py builds and installs the wheel.)"""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

import yaml

from dmst_eval import schema
from tests.conftest import REPO

# conda-forge package names that differ from the PyPI name
CONDA_TO_PYPI: dict[str, str] = {}

# Runtime dependencies the package uses without importing them itself.
USED_WITHOUT_IMPORT = {
    "ipykernel": "the Jupyter kernel that runs the brief notebook",
    "pyogrio": "geopandas' engine for reading the boundary files",
    "folium": "geopandas' GeoDataFrame.explore() (the interactive maps)",
}


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


def _imported_top_level() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in dmst_eval/ -> the files importing them."""
    found: dict[str, set[str]] = {}
    for f in sorted((REPO / "dmst_eval").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                if top != "dmst_eval" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(f.relative_to(REPO)))
    return found


def _extras() -> set[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {_norm(d) for deps in data["project"].get("optional-dependencies", {}).values()
            for d in deps}


def test_every_import_is_a_declared_dependency():
    core, _ = _pyproject_names()
    dists = importlib.metadata.packages_distributions()
    undeclared = {}
    for mod, files in _imported_top_level().items():
        names = {_norm(d) for d in dists.get(mod, [mod])}
        if not names & (core | _extras()):
            undeclared[mod] = sorted(files)
    assert not undeclared, ("imported by dmst_eval but not in pyproject.toml (dependencies or an "
                            f"extra; and environment.yml): {undeclared}")


def test_every_dependency_is_used():
    core, _ = _pyproject_names()
    dists = importlib.metadata.packages_distributions()
    imported = {_norm(d) for mod in _imported_top_level() for d in dists.get(mod, [mod])}
    unused = core - imported - set(USED_WITHOUT_IMPORT)
    assert not unused, (f"pyproject.toml dependencies that dmst_eval never imports: "
                        f"{sorted(unused)} (move them to an extra, or say in USED_WITHOUT_IMPORT "
                        "how the package uses them)")
    assert set(USED_WITHOUT_IMPORT) <= core


def test_notebook_tooling_is_an_extra():
    core, dev = _pyproject_names()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    lab = {_norm(d) for d in data["project"]["optional-dependencies"]["lab"]}
    assert "jupyterlab" in lab and "jupyterlab" not in core
    assert "lifelines" not in core and "lifelines" in dev
    assert "playwright" in dev
    assert re.search(r"-e '\.\[dev,lab\]'", (REPO / "Makefile").read_text()), \
        "make setup should install the dev and lab extras"


def test_environment_yml_and_pyproject_agree():
    core, dev = _pyproject_names()
    env, pip = _environment_names()
    assert env == core, (f"only in environment.yml: {sorted(env - core)}; "
                         f"only in pyproject: {sorted(core - env)}")
    assert any(re.fullmatch(r"-e\s+\.\[dev,lab\]", p.strip()) for p in pip), \
        "environment.yml should install the package with `pip: -e .[dev,lab]`"
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


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_is_short_and_its_make_targets_exist():
    text = _readme()
    assert len(text.splitlines()) < 150
    targets = set(re.findall(r"^([a-z-]+):", (REPO / "Makefile").read_text(), re.M))
    used = set(re.findall(r"`make ([a-z-]+)`", text))
    assert {"brief", "test", "test-fast", "lab"} <= used and used <= targets, used - targets
    for doc in re.findall(r"\]\((docs/[\w./-]+)\)", text):
        assert (REPO / doc).exists(), doc


def test_readme_tour_runs(tmp_path, monkeypatch):
    """The README's ten-line tour runs as printed (in a folder with the repository's data)."""
    block = re.search(r"## A ten-line tour.*?```python\n(.*?)```", _readme(), re.S)[1]
    assert len(block.strip().splitlines()) <= 12
    (tmp_path / "data").symlink_to(REPO / "data", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(block, "README.md (tour)", "exec"), ns)
    o = ns["fit"].odds_ratios.set_index("term")
    # the generator plants higher odds for a prior runaway and for AWOL (docs/ground_truth.md)
    assert o.loc["prior_runaway", "ci_lower"] > 1 and o.loc["awol_before", "ci_lower"] > 1
    assert (tmp_path / "risk_factors.png").stat().st_size > 10_000
