"""The cheaper paths of ``load`` give the same results as the general ones.

- pandera runs without its per-column dtype check when every column already has its schema
  dtype (``_coerce_column`` casts them all); a column of another dtype brings the full check
  back, and both give the same problems;
- ``geography.normalise_towns`` fetches the town-name index once per call, and still follows
  ``DMST_EVAL_REFERENCE`` and a reference file edited in place;
- ``content_hash`` (and ``save``) skip the cast of a categorical column that already has the
  schema's levels in the schema's order; the hash does not depend on the order of the levels;
- text booleans and dates are cast as the schema says (known answers, by hand).
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from dmst_eval import casedata, geography, schema
from dmst_eval.casedata import DataValidationError, load
from tests.test_casedata import valid_bundle, valid_frames, write_csv_bundle


def _set(df, row, col, value):
    df[col] = df[col].astype(object)
    df.loc[row, col] = value


def _damaged(kind: str) -> dict[str, pd.DataFrame]:
    f = valid_frames()
    if kind == "duplicate_key":
        _set(f["placements"], 1, "placement_id", "P1")
    elif kind == "empty_required":
        _set(f["children"], 1, "sex", None)
        _set(f["reports"], 0, "accepted", None)
    elif kind == "out_of_range":
        _set(f["facilities"], 0, "capacity", -1)
        _set(f["trainings"], 1, "attendees", -3)
    elif kind == "duplicate_composite_key":
        _set(f["training_attendance"], 1, "attendee_id", "X1")
    elif kind == "several":
        _set(f["services"], 1, "service_id", "S1")
        _set(f["facilities"], 1, "capacity", 0)
        _set(f["episodes"], 0, "confirmed", None)
    return f


@pytest.mark.parametrize("kind", ["duplicate_key", "empty_required", "out_of_range",
                                  "duplicate_composite_key", "several"])
def test_pandera_without_dtype_check_reports_what_the_full_check_reports(tmp_path, monkeypatch,
                                                                       kind):
    d = write_csv_bundle(_damaged(kind), tmp_path / "b")
    used = []
    real = casedata._cached_pandera_schema

    def spy(table, present, dtypes=True):
        used.append(dtypes)
        return real(table, present, dtypes)

    monkeypatch.setattr(casedata, "_cached_pandera_schema", spy)
    with pytest.raises(DataValidationError) as fast:
        load(d)
    assert used and not any(used)  # every table took the path without the dtype check
    # no dtype counts as the schema's: pandera checks every dtype as well
    monkeypatch.setattr(casedata, "_schema_dtypes", lambda table: {
        c.name: np.dtype(object) for c in schema.TABLES[table].columns})
    used.clear()
    with pytest.raises(DataValidationError) as full:
        load(d)
    assert used and all(used)
    assert fast.value.problems == full.value.problems
    assert str(fast.value) == str(full.value)
    expected = {"duplicate_key": {("placements", "placement_id")},
                "empty_required": {("children", "sex"), ("reports", "accepted")},
                "out_of_range": {("facilities", "capacity"), ("trainings", "attendees")},
                "duplicate_composite_key": {("training_attendance", None)},
                "several": {("services", "service_id"), ("facilities", "capacity"),
                            ("episodes", "confirmed")}}[kind]
    assert {(p["table"], p["column"]) for p in fast.value.problems} == expected


def test_a_column_of_another_dtype_brings_the_dtype_check_back():
    df = valid_bundle().validate().children.copy()
    df["child_id"] = pd.Series([1, 2, 3], dtype=object)  # not the schema's string dtype
    df.loc[1, "sex"] = None
    problems: list = []
    casedata._pandera_problems(casedata._Ctx("children", df), df, list(df.columns), problems)
    assert [(p["column"], p["expected"], p["n_rows"]) for p in problems] == [
        ("child_id", "dtype('string[python]')", 3),
        ("sex", "a value (this column may not be empty)", 1)]


def test_valid_bundle_loads_the_same_through_every_storage(tmp_path):
    cd = valid_bundle()
    a = load(write_csv_bundle(valid_frames(), tmp_path / "csv"))
    b = load(cd.save(tmp_path / "pq"))
    for t in schema.TABLE_NAMES:
        pd.testing.assert_frame_equal(a.tables[t], b.tables[t])
        assert {c: str(v) for c, v in a.tables[t].dtypes.items()} == {
            c.name: str(c.dtype) for c in schema.TABLES[t].columns}
    assert a.meta["data_hash"] == b.meta["data_hash"] == cd.validate().data_hash


# ---- towns -----------------------------------------------------------------------------------
def test_normalise_towns_fetches_the_name_index_once(monkeypatch):
    calls = []
    real = geography._name_index

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(geography, "_name_index", counting)
    names = geography.town_names()[:40] + ["hartford", " W. Hartford ", "Willimantic",
                                           "Springfield", None, np.nan, pd.NA, "hartford"]
    s = pd.Series(names, dtype=object, index=range(10, 10 + len(names)), name="town")
    out = geography.normalise_towns(s)
    assert len(calls) == 1
    assert str(out.dtype) == "string" and out.name == "town" and out.index.equals(s.index)
    assert out.tolist()[-8:] == ["Hartford", "West Hartford", "Windham", pd.NA, pd.NA, pd.NA,
                                 pd.NA, "Hartford"]
    assert out.tolist()[:40] == geography.town_names()[:40]
    assert out.tolist() == [pd.NA if v is None else v for v in map(geography.normalise_town, names)]
    assert geography.normalise_towns(pd.Series([], dtype="string")).tolist() == []


def test_normalise_towns_follows_the_reference_folder_and_edits(tmp_path, monkeypatch):
    ref = tmp_path / "reference"
    shutil.copytree(geography.reference_dir(), ref)
    towns = ref / "ct_towns.csv"
    tab = pd.read_csv(towns, dtype=str)
    tab.loc[tab.town == "Andover", "town"] = "Andover Lake"
    tab.to_csv(towns, index=False)
    s = pd.Series(["andover lake", "Andover"])
    assert geography.normalise_towns(s).tolist() == [pd.NA, "Andover"]
    monkeypatch.setenv("DMST_EVAL_REFERENCE", str(ref))
    assert geography.normalise_towns(s).tolist() == ["Andover Lake", pd.NA]
    tab.loc[tab.town == "Andover Lake", "town"] = "Andover"  # edited in place
    tab.to_csv(towns, index=False)
    os.utime(towns, ns=(towns.stat().st_atime_ns, towns.stat().st_mtime_ns + 10**9))
    assert geography.normalise_towns(s).tolist() == [pd.NA, "Andover"]
    monkeypatch.delenv("DMST_EVAL_REFERENCE")


# ---- categoricals in content_hash and save -----------------------------------------------------
def test_categoricals_hash_by_value_and_validated_ones_are_not_cast():
    cd = valid_bundle().validate()
    ch = cd.children.copy()
    levels = list(schema.TABLES["children"].column("sex").levels)
    ch["sex"] = ch["sex"].cat.reorder_categories(levels[::-1])
    assert list(ch["sex"].cat.categories) != levels
    assert casedata.content_hash(ch, "children") == casedata.content_hash(cd.children, "children")
    ch["sex"] = ch["sex"].cat.add_categories(["unknown"])  # other levels: cast (and hashed so)
    assert casedata._canonical(ch, "children")["sex"].dtype == schema.TABLES["children"].column(
        "sex").dtype
    assert casedata.content_hash(ch, "children") == casedata.content_hash(cd.children, "children")
    ch.loc[0, "sex"] = "male"
    assert casedata.content_hash(ch, "children") != casedata.content_hash(cd.children, "children")
    # a validated categorical column is hashed as it is (no cast, no copy)
    assert casedata._canonical(cd.children, "children")["sex"].array is cd.children["sex"].array


# ---- text booleans and dates (known answers) ---------------------------------------------------
def test_text_booleans_cast_by_hand():
    col = schema.TABLES["children"].column("lgbtq")
    s = pd.Series(["Yes", " n ", "1.0", "ja", None, "FALSE", "t", ""], dtype=object)
    vals, bad, exp = casedata._coerce_column(s, col)
    assert str(vals.dtype) == "boolean"
    assert vals.tolist() == [True, False, True, pd.NA, pd.NA, False, True, pd.NA]
    assert bad.tolist() == [False, False, False, True, False, False, False, True]
    assert exp == schema.expectation(col)


def test_text_dates_cast_by_hand():
    col = schema.TABLES["placements"].column("start")
    s = pd.Series(["2012-05-01", "2012-05", " 2012-05-01 10:30 ", "1989-12-31", None,
                   "2012-02-30", "2012-05-01T08:00:00.5", "2300-01-01", "20120501"],
                  dtype=object)
    dates = (schema.DATE_MIN, pd.Timestamp("2026-01-01"))
    vals, bad, exp = casedata._coerce_column(s, col, dates=dates)
    assert str(vals.dtype) == "datetime64[ns]"
    T = pd.Timestamp
    assert vals.tolist()[:4] == [T("2012-05-01"), pd.NaT, T("2012-05-01 10:30"), T("1989-12-31")]
    assert vals.tolist()[4:] == [pd.NaT, pd.NaT, T("2012-05-01 08:00:00.5"), pd.NaT, pd.NaT]
    # (2300-01-01 is beyond the safe range: reported, then dropped)
    assert bad.tolist() == [False, True, False, True, False, True, False, True, True]
    assert "from 1990-01-01 to the extract date (2025-12-31)" in exp
    parsed = pd.Series(pd.to_datetime(["2011-01-01", "2012-01-01"]))  # already dates: a copy
    out, bad, _ = casedata._coerce_column(parsed, col, dates=dates)
    assert out.tolist() == parsed.tolist() and not bad.any() and out is not parsed
