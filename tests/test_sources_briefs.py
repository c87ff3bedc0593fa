"""Briefs from a database URL and through a mapping (issue 21, point 5).

A brief rendered from ``duckdb:///…`` or from PostgreSQL through the agency mapping shows the
same numbers as the brief from the folder; its provenance names the kind of source and the
hash of the data read; no password reaches the brief's files, the executed notebook, the
messages, or the private copy's path; nothing is left in the temporary folders afterwards.
"""
from __future__ import annotations

import json
import re
import stat
import tempfile
from pathlib import Path

import nbformat
import pytest
import yaml
from typer.testing import CliRunner

import dmst_eval
from dmst_eval import briefs, sources
from dmst_eval.briefs import batch, bundle, runner
from dmst_eval.cli import app
from tests.agency import agency_mapping, agency_tables, to_postgres
from tests.conftest import REPO

DATA = REPO / "data" / "synthetic"
SECRET = "Sup3rSecretPw"
pytestmark = pytest.mark.xdist_group("sources_briefs")  # the folder brief and the database built once


@pytest.fixture(scope="module")
def cd():
    return dmst_eval.load(DATA)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The brief notebook cut to a few sections (the data path is what is tested here)."""
    nb = nbformat.read(briefs.BRIEF_NOTEBOOK, as_version=4)
    keep = ("sections.header", "sections.victims", "sections.towns", "sections.provenance")
    nb.cells = [c for c in nb.cells
                if c.cell_type != "code" or "sections." not in c.source
                or "from_params" in c.source or c.source.startswith(keep)]
    p = tmp_path_factory.mktemp("tpl") / "brief.ipynb"
    nbformat.write(nb, p)
    return p


def _tables(html: str) -> list[str]:
    """The brief's tables (their HTML) except provenance, which names the source."""
    tabs = re.findall(r'<table class="dmst-table[^"]*".*?</table>', html, re.S)
    return [t for t in tabs if "dmst-provenance" not in t]


def _provenance(html: str) -> dict[str, str]:
    t = re.search(r'<table class="dmst-table dmst-provenance".*?</table>', html, re.S)[0]
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", t, re.S)
    rows = {}
    for k in range(0, len(cells) - 1, 2):
        rows[re.sub("<[^>]+>", "", cells[k]).strip()] = re.sub("<[^>]+>", "", cells[k + 1]).strip()
    return rows


@pytest.fixture(scope="module")
def folder_brief(default_cd, with_plan):
    """The folder's numbers: the template's sections built in process from the folder (a
    rendered brief embeds exactly their HTML; the folder is rendered end to end elsewhere)."""
    from dmst_eval.briefs import Brief

    b = with_plan(Brief(default_cd, {"data_path": str(DATA), "figures_dir": None}, strict=True))
    return "".join(b.section(m).html for m in ("header", "victims", "towns", "provenance"))


def _private_tmp(monkeypatch, tmp_path) -> Path:
    """Point every temporary folder (this process and the kernel) at a folder of the test."""
    t = tmp_path / "tmp"
    t.mkdir(mode=0o700)
    monkeypatch.setenv("TMPDIR", str(t))
    monkeypatch.setattr(tempfile, "tempdir", str(t))
    return t


def _no_leftovers(out: Path, tmp: Path) -> None:
    assert not list(out.glob(".brief_*")), "the private copy or a work folder was left behind"
    left = [p for p in tmp.rglob("*") if p.is_file() and p.suffix in
            (".parquet", ".json", ".csv", ".duckdb", ".ipynb", ".html")]
    assert left == [], left


# ---- DuckDB ------------------------------------------------------------------------------------
def test_brief_from_duckdb_has_the_folders_numbers(cd, template, folder_brief, tmp_path,
                                                   monkeypatch):
    db = sources.import_bundle(DATA, tmp_path / "cases.duckdb")
    tmp = _private_tmp(monkeypatch, tmp_path)
    out = tmp_path / "reports"
    res = briefs.render({"data_path": f"duckdb:///{db}", "figures_dir": None}, out_dir=out,
                        template=template, pdf=False, strict=True)
    html = res.html.read_text()
    assert res.audit.passed and len(_tables(html)) >= 2 and "dmst-count" in _tables(html)[0]
    assert _tables(html) == _tables(folder_brief)  # the same numbers, cell for cell
    prov = _provenance(html)
    assert prov["Data read from"] == "DuckDB file cases.duckdb"
    assert prov["Data hash (SHA-256)"] == cd.data_hash == _provenance(folder_brief)[
        "Data hash (SHA-256)"]
    assert _provenance(folder_brief)["Data folder"] == "synthetic"
    assert "Data folder" not in prov
    # the executed notebook reads the private copy by a relative path, never the URL
    nb = res.notebook.read_text()
    assert "duckdb://" not in nb and "duckdb://" not in html
    assert re.search(r"\.brief_data_p\d+_[a-z0-9_]+/duckdb", nb)  # the copy, named by its kind
    assert stat.S_IMODE(res.html.stat().st_mode) == 0o600
    _no_leftovers(out, tmp)


def test_invalid_database_brief_fails_without_data_or_leftovers(cd, tmp_path, monkeypatch):
    import duckdb

    db = tmp_path / "partial.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE children AS SELECT * FROM (VALUES ('C0001234')) t(child_id)")
    con.close()
    out = tmp_path / "reports"
    with pytest.raises(briefs.BriefError, match=r"failed validation \(\d+ problem"):
        briefs.render({"data_path": f"duckdb:///{db}"}, out_dir=out, pdf=False)
    assert not list(out.glob(".brief_*")) and not list(out.glob("*.html"))


def test_batch_private_copy_from_a_url_names_no_secret(cd, tmp_path):
    db = sources.import_bundle(DATA, tmp_path / "cases.duckdb")
    out = runner.prepare_out_dir(tmp_path / "reports")
    holder, copy, err = batch._private_copy(f"duckdb:///{db}", out)
    try:
        assert err == "" and copy.name == "duckdb"
        assert stat.S_IMODE(copy.stat().st_mode) == 0o700
        assert {stat.S_IMODE(f.stat().st_mode) for f in copy.iterdir()} == {0o600}
        origin = json.loads((copy / bundle.ORIGIN).read_text())
        assert origin == {"kind": "duckdb", "source": "DuckDB file cases.duckdb",
                          "name": "cases.duckdb"}
        back = bundle.load_bundle(copy)
        assert back.data_hash == cd.data_hash and back.origin["kind"] == "duckdb"
    finally:
        import shutil

        shutil.rmtree(holder, ignore_errors=True)


def test_describe_source_and_mask_never_show_secrets():
    url = f"postgresql+psycopg://analyst:{SECRET}@db.agency.local:5432/cases?sslmode=require"
    d = sources.describe_source(url)
    assert d == {"kind": "postgresql", "name": "cases", "label": "PostgreSQL database cases"}
    assert SECRET not in sources.mask_url(url)
    q = f"mssql+pyodbc://analyst@CASES_DSN?driver=x&PWD={SECRET}"
    assert SECRET not in sources.mask_url(q) and "PWD=***" in sources.mask_url(q)
    assert sources.describe_source(q)["kind"] == "mssql"
    assert SECRET not in json.dumps(sources.describe_source(q))


# ---- PostgreSQL through the mapping, from the command line ------------------------------------
def test_cli_brief_from_postgresql_with_mapping(cd, template, folder_brief, postgres, tmp_path,
                                                monkeypatch):
    to_postgres(postgres, agency_tables(cd))
    mapping = agency_mapping()
    mapping["meta"] = {k: cd.meta[k] for k in ("study_start", "study_end")}
    mfile = tmp_path / "agency.yaml"
    mfile.write_text(yaml.safe_dump(mapping))
    # the local server trusts local connections: the password is never checked, only carried
    url = postgres.replace("postgres@", f"postgres:{SECRET}@", 1)
    assert SECRET in url
    tmp = _private_tmp(monkeypatch, tmp_path)
    monkeypatch.setattr(runner, "BRIEF_NOTEBOOK", template)
    out = tmp_path / "reports"
    res = CliRunner().invoke(app, ["brief", "--data", url, "--mapping", str(mfile),
                                   "--out-dir", str(out), "--no-pdf"])
    assert res.exit_code == 0, res.output
    assert SECRET not in res.output
    html = (out / "brief_statewide_internal.html").read_text()
    nb = (out / "brief_statewide_internal.ipynb").read_text()
    assert _tables(html) == _tables(folder_brief)
    prov = _provenance(html)
    assert prov["Data read from"] == "PostgreSQL database postgres"
    assert prov["Data hash (SHA-256)"] == cd.data_hash
    assert prov["Mapping file"].startswith("agency.yaml (SHA-256 ")
    for f in out.rglob("*"):
        assert SECRET not in str(f)
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET not in nb and "127.0.0.1" not in html and "127.0.0.1" not in nb
    assert re.search(r"\.brief_data_p\d+_[a-z0-9_]+/postgresql", nb)  # read from the copy
    _no_leftovers(out, tmp)
    # a wrong password or an unreachable server: one line, masked
    bad = url.rsplit(":", 1)[0] + ":1/postgres"
    res = CliRunner().invoke(app, ["brief", "--data", bad, "--mapping", str(mfile),
                                   "--out-dir", str(out), "--no-pdf"])
    assert res.exit_code == 1 and SECRET not in res.output
    assert "could not load the data" in res.output
    _no_leftovers(out, tmp)
    assert not [f for f in out.rglob("*") if f.is_file() and SECRET.encode() in f.read_bytes()]


def test_provenance_when_the_notebook_itself_loads_a_url(tmp_path):
    """Someone sets ``data_path`` to a URL in the notebook: provenance still shows only the
    kind of source and the file's name (not the path, user or host)."""
    from dmst_eval.briefs import Brief

    db = sources.import_bundle(DATA, tmp_path / "cases.duckdb")
    url = f"duckdb:///{db}"
    b = Brief(dmst_eval.load(url), {"data_path": url, "figures_dir": None})
    prov = b.section("provenance").tables["provenance"].set_index("item")["value"]
    assert prov["Data read from"] == "DuckDB file cases.duckdb"
    assert not prov.str.contains(str(tmp_path)).any() and "Data folder" not in prov.index


def test_batch_from_an_unreachable_server_fails_every_brief_in_one_masked_line(tmp_path):
    url = f"postgresql+psycopg://analyst:{SECRET}@127.0.0.1:1/cases"
    s = briefs.render_batch(regions="statewide,Region 1", data_path=url, out_dir=tmp_path,
                            workers=1)
    assert (s["status"] == "failed").all()
    assert s["error"].str.contains("could not load the data: InputError").all()
    assert s["error"].str.contains("cannot connect to the database").all()
    assert s["error"].str.contains("analyst:***@", regex=False).all()
    assert not s["error"].str.contains(SECRET).any()
    assert not list(tmp_path.glob(".brief_*"))
    assert not [f for f in tmp_path.rglob("*") if f.is_file() and SECRET.encode() in f.read_bytes()]


def test_cli_briefs_passes_the_url_and_mapping(tmp_path, monkeypatch):
    import pandas as pd

    seen = {}

    def fake(**kw):
        seen.update(kw)
        return pd.DataFrame({"region": ["statewide"], "audience": ["internal"], "status": ["ok"],
                             "path": ["x"], "seconds": [0.0], "error": [""]})

    monkeypatch.setattr(briefs, "render_batch", fake)
    m = tmp_path / "agency.yaml"
    m.write_text(yaml.safe_dump(agency_mapping()))
    url = "duckdb:///cases.duckdb"
    res = CliRunner().invoke(app, ["briefs", "--data", url, "--mapping", str(m),
                                   "--out-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert seen["data_path"] == url and Path(seen["mapping"]) == m
