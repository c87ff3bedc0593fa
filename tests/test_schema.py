"""Schema v1: the nine tables, enumerations defined once, pandera schemas built from them."""
from __future__ import annotations

import pandas as pd
import pandera.errors as pae
import pytest

from dmst_eval import schema

EXPECTED_TABLES = ("children", "facilities", "placements", "awol_episodes", "reports", "episodes",
                   "services", "trainings", "training_attendance")


def test_nine_tables_with_keys_present():
    assert set(schema.TABLE_NAMES) == set(EXPECTED_TABLES)
    for t in schema.TABLES.values():
        assert all(k in t.column_names for k in t.key), t.name
        assert len(set(t.column_names)) == len(t.column_names), t.name
        for c in t.columns:
            if c.kind == "category":
                assert c.levels and len(set(c.levels)) == len(c.levels)
            if c.references:
                pt, pc = c.references
                assert pc in schema.TABLES[pt].key, (t.name, c.name)
        for a, b in t.date_order:
            assert t.column(a).kind == t.column(b).kind == "datetime"
        for c in t.life_events:
            assert t.column(c).kind == "datetime" and "child_id" in t.column_names


def test_enums_defined_once_and_used():
    assert schema.CONGREGATE_SETTINGS == ("group_home", "residential_treatment", "shelter")
    assert set(schema.CONGREGATE_SETTINGS) <= set(schema.SETTINGS)
    assert schema.REGIONS == tuple(f"Region {i}" for i in range(1, 7))
    assert schema.TABLES["children"].column("sex").levels is schema.SEX
    assert schema.TABLES["reports"].column("region").levels is schema.REGIONS
    for t, cols in schema.WINDOW_COLUMNS.items():
        for c in cols:
            assert schema.TABLES[t].column(c).kind == "datetime"


def test_empty_frame_and_coerce_dtypes():
    for t in schema.TABLE_NAMES:
        df = schema.empty_frame(t)
        assert list(df.columns) == schema.TABLES[t].column_names and len(df) == 0
        assert dict(df.dtypes) == schema.TABLES[t].dtypes
        schema.pandera_schema(t).validate(df)
    raw = pd.DataFrame({"session_id": ["T1"], "date": ["2012-01-01"], "curriculum": ["nope"],
                        "audience": ["police"], "region": ["Region 2"], "attendees": [3],
                        "hours": [2]})
    out = schema.coerce_dtypes(raw, "trainings")
    assert out["curriculum"].isna().all() and out["date"].iloc[0] == pd.Timestamp("2012-01-01")
    with pytest.raises(KeyError):
        schema.coerce_dtypes(raw.drop(columns="hours"), "trainings")


def test_pandera_schema_checks_ranges_keys_levels_nulls():
    df = schema.coerce_dtypes(pd.DataFrame({
        "session_id": ["T1", "T1", "T2"], "attendee_id": ["A", "A", None],
        "role": ["police", "police", "youth"], "pre_score": [-5.0, 50.0, 101.0],
        "post_score": [None, 1.0, 2.0]}), "training_attendance")
    with pytest.raises(pae.SchemaErrors) as ei:
        schema.pandera_schema("training_attendance").validate(df, lazy=True)
    fc = ei.value.failure_cases
    checks = set(zip(fc["column"], fc["check"]))
    assert ("pre_score", "greater_than_or_equal_to(0)") in checks
    assert ("pre_score", "less_than_or_equal_to(100)") in checks
    assert ("attendee_id", "not_nullable") in checks
    assert any(c == "multiple_fields_uniqueness" for _, c in checks)
    sub = schema.pandera_schema("facilities", columns=["facility_id", "capacity"])
    assert sorted(sub.columns) == ["capacity", "facility_id"]
    assert sub.columns["facility_id"].unique and not sub.columns["capacity"].nullable


def test_expectations_are_plain_language():
    col = schema.TABLES["trainings"].column("hours")
    assert schema.expectation(col) == "a finite number between 0.25 and 40"
    assert schema.expectation(schema.TABLES["facilities"].column("capacity")) == "a whole number >= 1"
    assert schema.expectation(schema.TABLES["children"].column("sex")) == "one of female, male"
    assert "ISO 8601" in schema.expectation(schema.TABLES["children"].column("birth_date"))


def test_data_dictionary_covers_every_column():
    md = schema.data_dictionary()
    for t in schema.TABLES.values():
        assert f"## `{t.name}`" in md
        for c in t.columns:
            assert f"| `{c.name}` |" in md
    assert "`residential_treatment`" in md and "a `child_id` in `children`" in md
