"""Loading from databases and through a mapping gives exactly the bundle a folder gives."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import dmst_eval
from dmst_eval import sources
from dmst_eval.cli import app
from dmst_eval.errors import DataValidationError, InputError
from tests.agency import agency_mapping, agency_tables, to_postgres
from tests.conftest import REPO

# one worker runs the module: the bundle below, its loaded copy and the PostgreSQL server are
# made once
pytestmark = pytest.mark.xdist_group("sources")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A small synthetic bundle (a tenth of the default's children, every table and code): the
    round trips below check equality of hashes, which does not need 89,000 children; the 1M
    benchmark covers size."""
    from dmst_eval.synthetic import generate

    return generate(scale=0.1, seed=5).save(tmp_path_factory.mktemp("bundle") / "b")


@pytest.fixture(scope="module")
def cd(data_dir):
    return dmst_eval.load(data_dir)


def _same(a, b):
    assert a.data_hash == b.data_hash
    assert a.meta == b.meta
    assert a.truth == b.truth


# ---- URLs and masking --------------------------------------------------------------------------
def test_mask_url_hides_the_password_only():
    assert sources.mask_url("postgresql+psycopg://me:p%40ss:w@db:5432/x") == \
        "postgresql+psycopg://me:***@db:5432/x"
    assert sources.mask_url("sqlite:///cases.db") == "sqlite:///cases.db"
    assert sources.is_url("duckdb:///c.duckdb") and not sources.is_url(str(REPO / "data" / "synthetic"))


def test_unreachable_server_error_never_prints_the_password():
    with pytest.raises(InputError) as ei:
        dmst_eval.load("postgresql+psycopg://analyst:Sup3rSecret@127.0.0.1:1/cases")
    assert "Sup3rSecret" not in str(ei.value)
    assert "analyst:***@127.0.0.1:1/cases" in str(ei.value)


# ---- DuckDB ------------------------------------------------------------------------------------
def test_duckdb_import_equals_folder_and_is_private(cd, data_dir, tmp_path):
    res = CliRunner().invoke(app, ["import", str(data_dir), "--to", str(tmp_path / "c.duckdb")])
    assert res.exit_code == 0, res.output
    db = tmp_path / "c.duckdb"
    assert db.stat().st_mode & 0o777 == 0o600
    got = dmst_eval.load(f"duckdb:///{db}")
    _same(got, cd)
    assert got.origin == {"kind": "duckdb", "source": f"duckdb:///{db}"}
    assert got.is_synthetic  # generator record travels with the data
    # and back out as a Parquet folder
    res = CliRunner().invoke(app, ["export", f"duckdb:///{db}", "--to", str(tmp_path / "back")])
    assert res.exit_code == 0, res.output
    _same(dmst_eval.load(tmp_path / "back"), cd)
    assert (tmp_path / "back").stat().st_mode & 0o777 == 0o700


def test_duckdb_missing_table_is_a_validation_error_naming_it(tmp_path):
    import duckdb

    db = tmp_path / "partial.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE children (child_id VARCHAR)")
    con.close()
    with pytest.raises(DataValidationError) as ei:
        dmst_eval.load(f"duckdb:///{db}")
    text = str(ei.value)
    assert "a table or view 'episodes'" in text and "duckdb:///" in text


# ---- mapping: SQLite and a folder of agency exports --------------------------------------------
def _sqlite(tmp_path, tables) -> str:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'agency.db'}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        for name, df in tables.items():
            df.to_sql(name, conn, index=False)
    eng.dispose()
    return url


def test_sqlite_through_mapping_equals_folder(cd, tmp_path):
    url = _sqlite(tmp_path, agency_tables(cd))
    mapping = agency_mapping()
    mapping["meta"] = {k: cd.meta[k] for k in ("study_start", "study_end")}
    got = dmst_eval.load(url, mapping=mapping)
    assert got.data_hash == cd.data_hash
    assert got.origin["kind"] == "sqlite"


def test_folder_of_agency_csvs_through_mapping_equals_folder(cd, tmp_path):
    for name, df in agency_tables(cd).items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    mfile = tmp_path / "agency.yaml"
    mapping = agency_mapping()
    mapping["meta"] = {k: cd.meta[k] for k in ("study_start", "study_end")}
    mfile.write_text(yaml.safe_dump(mapping))
    got = dmst_eval.load(tmp_path, mapping=mfile)
    assert got.data_hash == cd.data_hash


def test_unmapped_codes_are_listed_and_errors_name_source_columns(cd, tmp_path):
    tabs = agency_tables(cd)
    kids = tabs["cm_children"]
    kids.loc[kids.index[:3], "CHI_SEX"] = "U"
    kids.loc[kids.index[3:4], "CHI_SEX"] = "X"
    url = _sqlite(tmp_path, tabs)
    mfile = tmp_path / "agency.yaml"
    mfile.write_text(yaml.safe_dump(agency_mapping()))
    src = sources.read_source(url, sources.Mapping.from_yaml(mfile))
    assert src.unmapped.to_dict("records") == [
        {"table": "children", "column": "sex", "code": "U", "n_rows": 3},
        {"table": "children", "column": "sex", "code": "X", "n_rows": 1}]
    with pytest.raises(DataValidationError) as ei:
        dmst_eval.load(url, mapping=mfile)
    assert "children [cm_children].sex [CHI_SEX]" in str(ei.value)
    res = CliRunner().invoke(app, ["validate", url, "--mapping", str(mfile)])
    assert res.exit_code == 2
    assert "children.sex: 'U' × 3" in res.output


def test_bad_mapping_files_get_one_clear_error(tmp_path):
    bad = tmp_path / "m.yaml"
    bad.write_text("tables:\n  kids: {source: x}\n")
    with pytest.raises(InputError, match="unknown schema table 'kids'"):
        sources.Mapping.from_yaml(bad)
    bad.write_text("tables:\n  children: {columns: {child_no: X}}\n")
    with pytest.raises(InputError, match="child_no"):
        sources.Mapping.from_yaml(bad)
    bad.write_text("tables: [\n")
    with pytest.raises(InputError, match="cannot read the mapping file"):
        sources.Mapping.from_yaml(bad)


def test_docs_mapping_example_is_valid():
    text = (REPO / "docs" / "mapping.md").read_text()
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    m = sources.Mapping.from_dict(yaml.safe_load(block))
    assert m["children"].codes["sex"] == {"F": "female", "M": "male"}


# ---- PostgreSQL (a real local server) ----------------------------------------------------------
def test_postgresql_through_mapping_equals_folder(cd, postgres):
    to_postgres(postgres, agency_tables(cd))
    mapping = agency_mapping()
    mapping["meta"] = {k: cd.meta[k] for k in ("study_start", "study_end")}
    got = dmst_eval.load(postgres, mapping=mapping)
    from dmst_eval.casedata import content_hash
    assert {t: content_hash(got.tables[t], t) for t in got.tables} == \
        {t: content_hash(cd.tables[t], t) for t in cd.tables}
    assert got.data_hash == cd.data_hash
    assert got.origin["kind"] == "postgresql"
    assert pd.Timestamp(got.meta["study_end"]) == pd.Timestamp(cd.meta["study_end"])


def test_postgresql_copy_reader_keeps_types_nulls_and_text(postgres):
    """The COPY reader gives what a row-wise SQLAlchemy read gives: typed columns, NULL vs
    empty text, quotes, commas and newlines in text, time zones as the session's wall time."""
    import sqlalchemy as sa

    eng = sa.create_engine(postgres)
    with eng.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE typed (id text, n int, b bigint, f double precision, d numeric(6,2), "
            "ok boolean, day date, ts timestamp, tz timestamptz, s varchar(20), ch char(3))"))
        conn.execute(sa.text(
            "INSERT INTO typed VALUES ('a,1', 1, 10, 1.5, 2.25, true, '2019-03-04', "
            "'2019-03-04 10:11:12.5', '2019-03-04 10:00+02', 'he said \"hi\"', 'ab'), "
            "(E'line\\nbreak', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '', NULL), "
            "(NULL, -3, 2, 'NaN', 0, false, '1999-12-31', '2000-01-01', '2000-01-01 00:00+00', "
            "NULL, 'x')"))
    eng.dispose()
    m = sources.Mapping.from_dict(
        {"tables": {"children": {"query": "SELECT * FROM typed ORDER BY n NULLS FIRST;"}}})
    problems = []
    got, _ = sources._read_postgres(postgres, m, "pg", problems, 128)  # tiny blocks: a row per chunk
    assert [p["expected"] for p in problems if p["table"] == "children"] == []
    ref, _ = sources._read_sqlalchemy(postgres, m, "pg", [], 2)
    a, b = got["children"], ref["children"]
    for c in ["id", "n", "b", "f", "d", "ok", "ts", "tz", "s", "ch"]:
        pd.testing.assert_series_equal(a[c], b[c], check_exact=True)
    assert a["s"].iloc[0] == "" and pd.isna(a["s"].iloc[1])  # empty text is not NULL
    assert a["id"].iloc[0] == "line\nbreak" and a["s"].iloc[2] == 'he said "hi"'
    assert a["day"].dtype == "datetime64[ns]" and str(a["day"].iloc[2].date()) == "2019-03-04"
    assert a["n"].tolist()[1:] == [-3, 1] and a["ok"].tolist()[1:] == [False, True]
