"""Malformed extracts (issue 19): every kind ends in one DataValidationError naming the table or
file, column and rows, never a traceback from pandas, pyarrow, json or the standard library,
and never silent acceptance. Each kind is built from the small valid bundle of test_casedata;
the property-based corpus at the end damages valid bundles by every kind (two random
bundles per kind each run; 60 with the kind drawn at random under ``slow``).

Every test here fails on the code before issue 19 (crash, silent acceptance, misleading
message or missing API; checked: 29 of 29); lines marked "(regression guard)" check what must
keep working.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmst_eval import schema
from dmst_eval.casedata import (CaseData, DataValidationError, generator_record,
                                infer_study_end, load, neutralise_formulas)
from tests.test_casedata import META, valid_bundle, valid_frames, write_csv_bundle

T = pd.Timestamp
CHILD_IDS = ["C1", "C2", "C3"]


def _problems(d) -> list[dict]:
    with pytest.raises(DataValidationError) as ei:
        load(d)
    _no_identifying_text(str(ei.value))
    return ei.value.problems


def _no_identifying_text(text: str) -> None:
    """No child id, birth date or exact event date of valid_frames() in a message."""
    f = valid_frames()
    for cid in CHILD_IDS:
        assert f"[{cid}" not in text and f" {cid}," not in text and f"'{cid}'" not in text, text
    for d in f["children"]["birth_date"]:
        assert str(d.date()) not in text, text
    for d in f["episodes"]["began_at"]:
        assert str(d.date()) not in text, text


def _where(problems) -> set[tuple]:
    return {(p["table"], p["column"]) for p in problems}


def _set(df, row, col, value):
    df[col] = df[col].astype(object)
    df.loc[row, col] = value


# ---- file-level kinds ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["meta.json", "truth.json"])
def test_json_file_that_is_a_folder(tmp_path, name):
    d = write_csv_bundle(valid_frames(), tmp_path / "b", meta=None)
    (d / name).mkdir()
    (p,) = _problems(d)
    assert p["table"] == name and "found a folder" in p["expected"]


@pytest.mark.parametrize("name", ["meta.json", "truth.json"])
def test_json_nested_too_deep(tmp_path, name):
    d = write_csv_bundle(valid_frames(), tmp_path / "b", meta=None)
    (d / name).write_text("[" * 100_000 + "]" * 100_000)   # RecursionError in json
    (p,) = _problems(d)
    assert p["table"] == name and "nested at most" in p["expected"]
    (d / name).write_text("[" * 200 + "]" * 200)           # parses, but deeper than allowed
    (p,) = _problems(d)
    assert "nested at most" in p["expected"]


def test_empty_parquet_folder_shadowing_a_csv(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "b")
    (d / "episodes.parquet").mkdir()
    (p,) = _problems(d)
    assert p["table"] == "episodes" and "found both" in p["expected"]
    (d / "episodes.csv").unlink()
    (p,) = _problems(d)
    assert p["table"] == "episodes.parquet" and "empty folder" in p["expected"]


def test_both_csv_and_parquet_refused(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "b")
    valid_frames()["trainings"].to_parquet(d / "trainings.parquet", index=False)
    (p,) = _problems(d)
    assert (p["table"], p["column"]) == ("trainings", None)
    assert "trainings.parquet or trainings.csv (found both" in p["expected"]


def test_symlinks_loops_dangling_and_devices(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "b")
    (d / "children.csv").unlink()
    os.symlink("children.csv", d / "children.csv")          # a link to itself
    (p,) = _problems(d)
    assert p["table"] == "children.csv" and "symbolic link loop" in p["expected"]
    (d / "children.csv").unlink()
    os.symlink("gone.csv", d / "children.csv")
    (p,) = _problems(d)
    assert "does not exist" in p["expected"]
    (d / "children.csv").unlink()
    os.symlink("/dev/null", d / "children.csv")              # never read a device
    (p,) = _problems(d)
    assert "not a regular file" in p["expected"]
    # a link to a regular file is followed (regression guard)
    (d / "children.csv").unlink()
    write_csv_bundle({"children": valid_frames()["children"]}, tmp_path / "elsewhere", meta=None)
    os.symlink(tmp_path / "elsewhere" / "children.csv", d / "children.csv")
    assert load(d).children.shape[0] == 3
    # the bundle folder itself a loop
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    with pytest.raises(DataValidationError, match="symbolic link loop"):
        load(tmp_path / "loop")


def test_csv_not_utf8_names_file_and_line(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "b")
    raw = (d / "facilities.csv").read_bytes().replace(b"Facility 002", b"Facility \xff02")
    (d / "facilities.csv").write_bytes(raw)
    (p,) = _problems(d)
    assert p["table"] == "facilities.csv" and "line 3 is not valid UTF-8" in p["expected"]


# ---- value-level kinds -----------------------------------------------------------------------
def test_dates_at_pandas_limits(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "a", meta={**META, "study_end": "2262-04-11"})
    (p,) = _problems(d)
    assert (p["table"], p["column"]) == ("meta.json", "study_end")
    f = valid_frames()
    f["trainings"].loc[0, "date"] = T("2262-04-11")          # latest date, no meta.json
    f["children"].loc[1, "birth_date"] = T("2262-01-01")
    d = write_csv_bundle(f, tmp_path / "b", meta=None)
    assert _where(_problems(d)) >= {("trainings", "date"), ("children", "birth_date")}
    # beyond the nanosecond range, in CSV text and in a Parquet microsecond column
    f = valid_frames()
    _set(f["trainings"], 0, "date", "9999-12-31")
    d = write_csv_bundle(f, tmp_path / "c")
    assert _where(_problems(d)) == {("trainings", "date")}
    d = valid_bundle().save(tmp_path / "pq")
    tab = pa.table({**{c: valid_frames()["trainings"][c] for c in
                       schema.TABLES["trainings"].column_names if c != "date"},
                    "date": pa.array([np.datetime64("3000-01-01", "us"),
                                      np.datetime64("2012-01-01", "us")])})
    pq.write_table(tab, d / "trainings.parquet")
    (p,) = _problems(d)
    assert (p["table"], p["column"], p["rows"]) == ("trainings", "date", ["T1"])


def test_far_future_typo_without_meta_does_not_stretch_the_window(tmp_path):
    f = valid_frames()
    f["trainings"].loc[0, "date"] = T("2203-01-01")
    d = write_csv_bundle(f, tmp_path / "b", meta=None)
    (p,) = _problems(d)
    assert (p["table"], p["column"], p["rows"]) == ("trainings", "date", ["T1"])


def test_plausible_typo_is_an_outlier_of_the_inferred_window(tmp_path):
    """Without meta.json, one date years after the bulk is reported, not taken as the end."""
    f = valid_frames()
    n = 40
    f["trainings"] = pd.DataFrame({
        "session_id": [f"T{i}" for i in range(n)],
        "date": pd.date_range("2012-01-01", periods=n, freq="MS"),
        "curriculum": "dmst_1hr", "audience": "police", "region": "Region 4",
        "attendees": 5, "hours": 1.0})
    f["training_attendance"]["session_id"] = ["T1", "T1", "T2"]
    f["trainings"].loc[5, "date"] = T("2024-05-01")   # typo for 2014-05-01
    d = write_csv_bundle(f, tmp_path / "b", meta=None)
    (p,) = _problems(d)
    assert (p["table"], p["column"], p["rows"]) == ("trainings", "date", ["T5"])
    assert "inferred from the dates in the data" in p["expected"]
    f["trainings"].loc[5, "date"] = T("2014-05-01")
    cd = load(write_csv_bundle(f, tmp_path / "c", meta=None))
    assert cd.meta["study_end"] == "2015-04-01"  # the latest date of the bulk
    # with the window given, the same late date is simply after the study end
    f["trainings"].loc[5, "date"] = T("2024-05-01")
    d = write_csv_bundle(f, tmp_path / "e", meta={**META, "study_end": "2015-12-31"})
    (p,) = _problems(d)
    assert p["expected"] == "date not after the study end (2015-12-31)"


def test_infer_study_end_known_answers():
    days = lambda xs: pd.to_datetime(xs).to_numpy().astype("datetime64[D]").astype("int64")  # noqa: E731
    assert infer_study_end(days([])) == (None, 0)
    # too few dates to tell an outlier: the latest date is the end
    assert infer_study_end(days(["2010-01-01", "2019-01-01"])) == (T("2019-01-01"), 0)
    bulk = [f"2015-{m:02d}-01" for m in range(1, 13)] * 10
    assert infer_study_end(days(bulk + ["2017-06-01"])) == (T("2015-12-01"), 1)
    # a gap of less than a year is not an outlier
    assert infer_study_end(days(bulk + ["2016-11-01"])) == (T("2016-11-01"), 0)
    # more than 1% of the dates after the gap: a real later period, not typos
    assert infer_study_end(days(bulk + ["2017-06-01"] * 3)) == (T("2017-06-01"), 0)


@pytest.mark.parametrize("value", ["2019-05", "2019", "20190501", "2019-5-1", "2019-05-01T10"])
def test_partial_or_incomplete_dates_refused(tmp_path, value):
    f = valid_frames()
    _set(f["trainings"], 1, "date", value)
    (p,) = _problems(write_csv_bundle(f, tmp_path / "b"))
    assert (p["table"], p["column"], p["rows"]) == ("trainings", "date", ["T2"])
    assert "complete date" in p["expected"]


def test_nul_byte_and_control_characters(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "b")
    raw = (d / "facilities.csv").read_bytes().replace(b"Facility 001", b"Faci\x00lity 001")
    (d / "facilities.csv").write_bytes(raw)
    raw = (d / "placements.csv").read_bytes().replace(b"P2,", b"P\x002,")
    (d / "placements.csv").write_bytes(raw)
    probs = _problems(d)
    by = {(p["table"], p["column"]): p for p in probs}
    assert by[("facilities", "name")]["rows"] == ["F1"]
    assert "control characters" in by[("facilities", "name")]["expected"]
    assert by[("placements", "placement_id")]["rows"] == ["row 2"]
    # in memory too (a bell character inside an id; surrounding whitespace is trimmed)
    f = valid_frames()
    f["facilities"].loc[1, "facility_id"] = "F\x072"
    f["placements"].loc[2, "facility_id"] = "F\x072"
    f["episodes"].loc[1, "facility_id"] = "F\x072"
    with pytest.raises(DataValidationError) as ei:
        CaseData(f, meta=META).validate()
    assert {(p["table"], p["column"]) for p in ei.value.problems} == {
        ("facilities", "facility_id"), ("placements", "facility_id"), ("episodes", "facility_id")}


def test_child_aged_175(tmp_path):
    f = valid_frames()
    extra = f["children"].iloc[[1]].assign(child_id="C4", birth_date=T("1851-01-01"))
    f["children"] = pd.concat([f["children"], extra], ignore_index=True)  # no events at all
    (p,) = _problems(write_csv_bundle(f, tmp_path / "b"))
    assert (p["table"], p["column"], p["rows"]) == ("children", "birth_date", ["row 4"])
    assert "from 1990-01-01" in p["expected"]


def test_false_synthetic_claim(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "b", meta={**META, "source": "synthetic"})
    (p,) = _problems(d)
    assert (p["table"], p["column"]) == ("meta.json", "source")
    assert "generator record" in p["expected"] and '"source": "extract"' in p["expected"]


def test_generator_record_contract(tmp_path):
    """Synthetic = the generator's record (config and truth with their hashes, data hash)."""
    from dmst_eval.synthetic import generate

    cd = generate(scale=0.05, seed=3)
    rec = generator_record(cd.meta["config"], cd.truth)
    assert {k: cd.meta[k] for k in rec} == rec
    d = cd.save(tmp_path / "syn")
    assert load(d).is_synthetic
    # a copied record on other data: the data hash does not match
    real = write_csv_bundle(valid_frames(), tmp_path / "real")
    for name in ("meta.json", "truth.json"):
        (real / name).write_bytes((d / name).read_bytes())
    (p,) = _problems(real)
    assert "data_hash matches the tables" in p["expected"]
    # an edited truth or config breaks the record
    truth = json.loads((d / "truth.json").read_text())
    truth["awol"]["multiplier"] = 9.0
    (d / "truth.json").write_text(json.dumps(truth))
    (p,) = _problems(d)
    assert "truth_sha256 matching truth.json" in p["expected"]
    (d / "truth.json").unlink()
    (p,) = _problems(d)
    assert "truth.json with the ground truth" in p["expected"]


def test_saved_files_skip_rehashing_but_an_edit_is_caught(tmp_path, monkeypatch):
    """A bundle loaded from the very files CaseData.save wrote takes its content hashes from
    meta.json (file_sha256 matches); a table rewritten with other data is hashed again and the
    synthetic record refused."""
    from dmst_eval import casedata
    from dmst_eval.synthetic import generate

    d = generate(scale=0.05, seed=3).save(tmp_path / "syn")
    meta = json.loads((d / "meta.json").read_text())
    assert sorted(meta["file_sha256"]) == sorted(schema.TABLES)
    real_hash = casedata.content_hash
    calls = []
    monkeypatch.setattr(casedata, "content_hash",
                        lambda df, t: calls.append(t) or real_hash(df, t))
    cd = load(d)
    assert cd.is_synthetic and calls == []          # no table hashed again
    assert cd.meta["content_hashes"] == meta["content_hashes"]
    monkeypatch.setattr(casedata, "content_hash", real_hash)
    assert cd.data_hash == meta["data_hash"]        # and they are the tables' hashes

    # the same rows written by another writer: other bytes, so the tables are hashed (and match)
    t = pq.read_table(d / "trainings.parquet")
    pq.write_table(t, d / "trainings.parquet", compression="snappy")
    assert load(d).is_synthetic
    # one value changed: hashed, and the record no longer matches
    ch = pq.read_table(d / "children.parquet").to_pandas()
    ch.loc[0, "child_welfare_involved"] = not bool(ch.loc[0, "child_welfare_involved"])
    pq.write_table(pa.Table.from_pandas(ch, preserve_index=False), d / "children.parquet")
    (p,) = _problems(d)
    assert "data_hash matches the tables" in p["expected"]


def test_spreadsheet_formula_accepted_and_neutralised(tmp_path):
    f = valid_frames()
    f["facilities"].loc[0, "name"] = '=HYPERLINK("http://example.org","Facility 001")'
    cd = load(write_csv_bundle(f, tmp_path / "b"))            # accepted (regression guard)
    out = neutralise_formulas(cd.facilities)
    assert out["name"].tolist() == ["'" + f["facilities"].loc[0, "name"], "Facility 002"]
    assert cd.facilities["name"].iloc[0].startswith("=")        # the data are not changed
    for v in ("+1+1", "-2+3", "@SUM(A1)", "\t=1"):
        assert neutralise_formulas(pd.DataFrame({"x": [v]}))["x"].iloc[0] == "'" + v
    df = pd.DataFrame({"n": [-1.5, 2.0], "when": pd.to_datetime(["2012-01-01", None]),
                       "cat": pd.Categorical(["a", "-b"])})
    got = neutralise_formulas(df)
    assert got["n"].tolist() == [-1.5, 2.0] and got["cat"].tolist() == ["a", "'-b"]


def test_huge_text_cell(tmp_path):
    f = valid_frames()
    f["facilities"].loc[0, "name"] = "x" * 2_000_000          # (200 MB behaves the same)
    _set(f["reports"], 1, "report_id", "R" * 500)
    f["episodes"].loc[1, "report_id"] = None
    (p, q) = sorted(_problems(write_csv_bundle(f, tmp_path / "b")), key=lambda p: p["table"])
    assert (p["table"], p["column"], p["rows"]) == ("facilities", "name", ["F1"])
    assert p["expected"] == "text of at most 1,000 characters"
    assert (q["table"], q["column"], q["rows"]) == ("reports", "report_id", ["row 2"])


def test_invalid_utf8_in_parquet_string_column(tmp_path):
    d = valid_bundle().save(tmp_path / "b")
    for t, col in (("facilities", "name"), ("children", "child_id")):
        tab = pq.read_table(d / f"{t}.parquet")
        vals = [v.encode() for v in valid_frames()[t][col]]
        vals[0] = vals[0][:1] + b"\xff" + vals[0][1:]
        i = tab.schema.get_field_index(col)
        tab = tab.set_column(i, col, pa.array(vals, type=pa.binary()).view(pa.string()))
        pq.write_table(tab, d / f"{t}.parquet")
    probs = _problems(d)
    # one problem per damaged column; no cascade of foreign-key errors into children
    assert [(p["table"], p["column"], p["rows"], p["expected"]) for p in probs] == [
        ("children", "child_id", ["row 1"], "valid UTF-8 text"),
        ("facilities", "name", ["F1"], "valid UTF-8 text")]


def test_binary_child_ids_one_message_per_column(tmp_path):
    d = valid_bundle().save(tmp_path / "b")
    f = valid_frames()
    for t in ("children", "placements", "awol_episodes", "reports", "episodes", "services"):
        df = f[t].copy()
        df["child_id"] = df["child_id"].map(lambda s: b"\x8f\x00" + s.encode())
        df.to_parquet(d / f"{t}.parquet", index=False)
    probs = _problems(d)
    assert sorted((p["table"], p["column"]) for p in probs) == sorted(
        (t, "child_id") for t in ("children", "placements", "awol_episodes", "reports",
                                  "episodes", "services"))
    assert all("binary data" in p["expected"] for p in probs)


def test_no_child_id_or_dates_in_messages(tmp_path):
    """Rows of children are numbered; ids, free text and dates are never quoted."""
    f = valid_frames()
    f["children"].loc[2, "child_id"] = "C1"                     # duplicate child id
    _set(f["children"], 0, "birth_date", "2000-01")             # partial birth date
    f["placements"].loc[1, "child_id"] = "C9"                   # dangling
    _set(f["episodes"], 0, "began_at", "2012-05-02T10:00+02:00")
    with pytest.raises(DataValidationError) as ei:
        load(write_csv_bundle(f, tmp_path / "b"))
    text = str(ei.value)
    _no_identifying_text(text)
    assert "C9" not in text and "2000-01" not in text and "2012-05-02" not in text
    assert "row 1, row 3" in text


def test_meta_and_argument_dates_checked(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "b", meta={
        **META, "extracted_at": "2014-06-30", "study_end": "2019-05"})
    probs = _problems(d)
    assert ("meta.json", "study_end") in _where(probs)
    # dates after the extract date are implausible
    assert ("trainings", "date") in _where(probs)               # T2 is 2015-09-10
    with pytest.raises(DataValidationError) as ei:
        load(write_csv_bundle(valid_frames(), tmp_path / "c"), study_end="1989-12-31")
    assert _where(ei.value.problems) == {("arguments", "study_end")}


# ---- the property-based corpus ---------------------------------------------------------------
ID_COLS = [(t, c.name) for t, s in schema.TABLES.items() for c in s.columns if c.kind == "id"]
DATE_COLS = [(t, c.name) for t, s in schema.TABLES.items() for c in s.columns
             if c.kind == "datetime"]
KINDS = ["meta_folder", "truth_folder", "deep_json", "date_beyond_pandas", "meta_end_beyond",
         "birth_beyond", "invalid_utf8_parquet", "future_typo_no_meta", "partial_date",
         "nul_byte", "control_char", "age_175", "false_synthetic", "huge_cell",
         "shadowing_parquet_folder", "both_files", "symlink_loop", "binary_ids"]


@st.composite
def malformed(draw, kinds=tuple(KINDS)):
    """(kind, builder(folder) -> bundle path, expected (table, column) — any is acceptable)."""
    kind = draw(st.sampled_from(kinds))
    f = valid_frames()
    meta = dict(META)
    t, c = draw(st.sampled_from(DATE_COLS))
    rows = f[t].index[f[t][c].notna()].tolist()
    row = draw(st.sampled_from(rows))
    it, ic = draw(st.sampled_from(ID_COLS))
    irow = draw(st.sampled_from(f[it].index[f[it][ic].notna()].tolist()))
    table = draw(st.sampled_from(list(schema.TABLE_NAMES)))
    post = None
    expected: set = set()
    if kind in ("meta_folder", "truth_folder"):
        name = "meta.json" if kind == "meta_folder" else "truth.json"
        post = lambda d: (d / name).unlink(missing_ok=True) or (d / name).mkdir()  # noqa: E731
        expected = {(name, None)}
    elif kind == "deep_json":
        depth = draw(st.sampled_from([100, 5000, 200_000]))
        post = lambda d: (d / "meta.json").write_text("{\"a\":" * depth + "1" + "}" * depth)  # noqa: E731
        expected = {("meta.json", None)}
    elif kind == "date_beyond_pandas":
        _set(f[t], row, c, draw(st.sampled_from(["2262-04-11", "2262-04-12", "9999-12-31",
                                                 "1677-09-21", "0001-01-01"])))
        meta = draw(st.sampled_from([meta, None]))
        expected = {(t, c)}
    elif kind == "meta_end_beyond":
        meta["study_end"] = draw(st.sampled_from(["2262-04-11", "9999-12-31", "2262-04-11 23:59"]))
        expected = {("meta.json", "study_end")}
    elif kind == "birth_beyond":
        _set(f["children"], draw(st.integers(0, 2)), "birth_date",
             draw(st.sampled_from(["2262-01-01", "2200-06-01", "2100-01-01"])))
        expected = {("children", "birth_date")}
    elif kind == "future_typo_no_meta":
        _set(f[t], row, c, draw(st.sampled_from(["2203-01-01", "2099-07-04", "2040-12-31"])))
        meta = None
        expected = {(t, c)}
    elif kind == "partial_date":
        v = f[t].loc[row, c]
        _set(f[t], row, c, draw(st.sampled_from([v.strftime("%Y-%m"), v.strftime("%Y"),
                                                 v.strftime("%Y%m%d")])))
        expected = {(t, c)}
    elif kind in ("nul_byte", "control_char"):
        ch = "\x00" if kind == "nul_byte" else draw(st.sampled_from(["\x07", "\x1b", "\x7f"]))
        v = str(f[it].loc[irow, ic])
        _set(f[it], irow, ic, v[:1] + ch + v[1:])
        expected = {(it, ic)}
    elif kind == "age_175":
        extra = f["children"].iloc[[0]].assign(child_id="C9", birth_date=T(
            draw(st.sampled_from(["1851-01-01", "1900-01-01", "1989-12-31"]))))
        f["children"] = pd.concat([f["children"], extra], ignore_index=True)
        expected = {("children", "birth_date")}
    elif kind == "false_synthetic":
        meta["source"] = "synthetic"
        if draw(st.booleans()):
            meta.update({"config": {"seed": 1}, "generator": schema.SYNTHETIC_GENERATOR,
                         **generator_record({"seed": 1}, {"x": 1})})
            post = lambda d: (d / "truth.json").write_text('{"x": 1}')  # noqa: E731
        expected = {("meta.json", "source")}
    elif kind == "huge_cell":
        _set(f[it], irow, ic, "x" * draw(st.sampled_from([101, 5000, 300_000])))
        expected = {(it, ic)}
    elif kind == "shadowing_parquet_folder":
        post = lambda d: (d / f"{table}.parquet").mkdir()  # noqa: E731
        expected = {(table, None)}
    elif kind == "both_files":
        post = lambda d: valid_frames()[table].to_parquet(d / f"{table}.parquet", index=False)  # noqa: E731
        expected = {(table, None)}
    elif kind == "symlink_loop":
        def post(d):
            (d / f"{table}.csv").unlink()
            os.symlink(f"{table}.csv", d / f"{table}.csv")
        expected = {(f"{table}.csv", None)}
    elif kind == "invalid_utf8_parquet":
        expected = {(it, ic)}
    elif kind == "binary_ids":
        expected = {(it, ic)}
    else:  # pragma: no cover
        raise AssertionError(kind)

    def build(folder: Path) -> Path:
        if kind in ("invalid_utf8_parquet", "binary_ids"):
            d = CaseData.from_frames(meta=META, **valid_frames()).save(folder)
            vals = [None if pd.isna(v) else str(v).encode() for v in f[it][ic]]
            if kind == "invalid_utf8_parquet":
                vals[irow] = vals[irow] + b"\xc3"
                arr = pa.array(vals, type=pa.binary()).view(pa.string())
            else:
                arr = pa.array(vals, type=pa.binary())
            tab = pa.Table.from_pandas(f[it], preserve_index=False)
            tab = tab.set_column(tab.schema.get_field_index(ic), ic, arr)
            pq.write_table(tab, d / f"{it}.parquet")
            return d
        d = write_csv_bundle(f, folder, meta=meta)
        if post is not None:
            post(d)
        return d

    return kind, build, expected


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_malformed_kind_gives_one_clear_error(kind, data):
    """Every kind, each run: two random bundles damaged by it."""
    _one_clear_error(data.draw(malformed(kinds=(kind,))))


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=malformed())
def test_malformed_kinds_at_random_give_one_clear_error(case):
    """The wider corpus: 60 bundles, each damaged by a kind drawn at random."""
    _one_clear_error(case)


def _one_clear_error(case):
    kind, build, expected = case
    with tempfile.TemporaryDirectory() as tmp:
        d = build(Path(tmp) / "b")
        try:
            load(d)
        except DataValidationError as e:
            assert _where(e.problems) & expected, (kind, expected, str(e))
            assert all(set(p) >= {"table", "column", "rows", "expected"} for p in e.problems)
            _no_identifying_text(str(e))
            return
        raise AssertionError(f"{kind} was silently accepted")


def test_age_at_every_dated_event_is_plausible():
    """Dates that are not listed life events (report responses) still fall at ages 0-25."""
    f = valid_frames()
    f["reports"].loc[0, "first_response_at"] = T("2026-01-01")    # C1 (born 2000) aged 26
    f["reports"].loc[1, "received_at"] = T("2009-03-05")
    with pytest.raises(DataValidationError) as ei:
        CaseData(f, meta={**META, "study_end": "2026-06-30"}).validate()
    assert [(p["table"], p["column"], p["rows"]) for p in ei.value.problems] == [
        ("reports", "first_response_at", ["R1"])]
    assert "0 to 25 years" in ei.value.problems[0]["expected"]
