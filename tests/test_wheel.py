"""The installable package: build the wheel, install it in a fresh virtual environment outside the
repository (no ``dmst-eval`` kernel, no source tree on the path) and render the default brief there.

It checks what a user who runs ``pip install dmst-eval`` gets: reference geography, the embedded
synthetic data and the brief notebook travel in the wheel, and ``dmst-eval brief`` runs in the
interpreter it was installed in when no ``dmst-eval`` kernel is registered (and says so).
Packages come from uv's cache that ``make setup`` filled, so the install takes seconds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # ~30 s with a warm uv cache (more on a cold one): not in test-fast


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, (f"{cmd[0]} {cmd[1]} failed ({r.returncode}):\n"
                               f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "uv", "build", "--wheel", "--out-dir", out, REPO])
    (whl,) = out.glob("dmst_eval-*.whl")
    return whl


def test_wheel_carries_data_and_notebook(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("dmst_eval/data/reference/ct_towns.csv", "dmst_eval/data/reference/ct_towns.geojson",
              "dmst_eval/data/reference/README.md", "dmst_eval/rba_measures.yaml",
              "dmst_eval/_embedded/notebooks/evaluation_brief.ipynb",
              "dmst_eval/_embedded/data/synthetic/meta.json"):
        assert f in names, f"{f} is missing from {wheel.name}"
    shipped = {f.name for f in (REPO / "data" / "synthetic").iterdir() if f.is_file()}
    assert {n.rsplit("/", 1)[1] for n in names if "/_embedded/data/synthetic/" in n} == shipped
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "data/"))]
    size = sum(i.file_size for i in zipfile.ZipFile(wheel).infolist())
    assert size < 10 * 2**20, f"the wheel unpacks to {size / 2**20:.1f} MB (budget 10 MB)"


def test_wheel_renders_brief_outside_the_repo(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "uv", "venv", "--quiet", "--python", sys.executable, venv])
    _run([sys.executable, "-m", "uv", "pip", "install", "--quiet",
          "--python", venv / "bin" / "python", wheel])
    home = tmp_path / "home"  # no user-level kernels or settings
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV", "DMST_EVAL_"))}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               MPLBACKEND="Agg", DMST_EVAL_CACHE=str(tmp_path / "cache"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    # the package imported is the wheel's, and it finds its own reference data
    r = _run([venv / "bin" / "python", "-c",
              "import dmst_eval, dmst_eval.geography as g, dmst_eval._files as f; "
              "print(dmst_eval.__file__); print(g.reference_dir()); print(f.example_data()); "
              "print(len(g.towns()))"], cwd=work, env=env)
    pkg, ref, data, n_towns = r.stdout.split()
    assert Path(pkg).is_relative_to(venv) and Path(ref).is_relative_to(venv)
    assert Path(data).is_relative_to(venv) and n_towns == "169"
    # the default brief, from the embedded synthetic data, with no dmst-eval kernel registered
    r = _run([venv / "bin" / "dmst-eval", "brief", "--no-pdf", "--out-dir", work / "reports"],
             cwd=work, env=env, timeout=600)
    assert f"running the brief in this interpreter ({venv / 'bin' / 'python'}" in r.stderr, r.stderr
    html = work / "reports" / "brief_statewide_internal.html"
    assert html.exists(), sorted(p.name for p in (work / "reports").iterdir())
    text = html.read_text(encoding="utf-8")
    assert "synthetic data" in text.lower() and "<img" in text
    assert not list((work / "reports").glob("*.FAILED.txt"))
