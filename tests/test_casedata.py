"""CaseData: construction, save/load round trips (Parquet and CSV), determinism, atomicity and
the validation rules, each checked on a small hand-built bundle.

``valid_frames()`` (the hand-built base bundle) is also used by test_validation_properties.py and
test_cli_validate.py.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dmst_eval
from dmst_eval import schema
from dmst_eval.casedata import CaseData, DataValidationError, load

T = pd.Timestamp
META = {"source": "extract", "study_start": "2008-01-01", "study_end": "2025-12-31"}


def valid_frames() -> dict[str, pd.DataFrame]:
    """A small valid bundle: every table has at least two rows; every rule is satisfied."""
    children = pd.DataFrame({
        "child_id": ["C1", "C2", "C3"], "sex": ["female", "male", "female"],
        "birth_date": [T("2000-01-01"), T("2001-06-01"), T("1998-03-15")],
        "race_ethnicity": ["White", "Black", "Hispanic"],
        "home_town": ["Hartford", "New Haven", "Windham"],
        "region": ["Region 4", "Region 2", "Region 3"],
        "child_welfare_involved": [True, False, True],
        "prior_sexual_abuse": [True, None, False], "prior_runaway": [False, True, True],
        "substance_use": [None, None, True], "juvenile_justice": [False, False, True],
        "lgbtq": [None, True, False]})
    facilities = pd.DataFrame({
        "facility_id": ["F1", "F2"], "name": ["Facility 001", "Facility 002"],
        "setting": ["group_home", "shelter"], "town": ["Hartford", "Norwich"],
        "capacity": [10, 4]})
    placements = pd.DataFrame({
        "placement_id": ["P1", "P2", "P3"], "child_id": ["C1", "C2", "C3"],
        "setting": ["group_home", "foster_family", "shelter"],
        "facility_id": ["F1", None, "F2"], "town": ["Hartford", "Milford", "Norwich"],
        "start": [T("2012-01-01"), T("2013-01-01"), T("2009-02-01")],
        "end": [T("2013-01-01"), None, T("2009-08-01")]})
    awol = pd.DataFrame({
        "awol_id": ["A1", "A2"], "child_id": ["C1", "C3"], "placement_id": ["P1", "P3"],
        "start": [T("2012-05-01 10:00"), T("2009-03-01")],
        "end": [T("2012-05-03"), None]})
    reports = pd.DataFrame({
        "report_id": ["R1", "R2"], "child_id": ["C1", "C3"],
        "received_at": [T("2012-05-04"), T("2009-03-05")],
        "reporter_type": ["police", "dcf_staff"], "guardian_perpetrator": [False, True],
        "accepted": [True, True], "region": ["Region 4", "Region 3"],
        "first_response_at": [T("2012-05-05"), None], "mdt_referral_at": [None, T("2009-03-10")],
        "disposition": ["confirmed", "pending"]})
    episodes = pd.DataFrame({
        "episode_id": ["E1", "E2"], "child_id": ["C1", "C3"], "report_id": ["R1", None],
        "began_at": [T("2012-05-02"), T("2009-03-02")],
        "identified_at": [T("2012-05-04"), T("2009-03-06")], "confirmed": [True, False],
        "status_at_time": ["awol", "awol"], "placement_id": ["P1", "P3"],
        "facility_id": ["F1", "F2"], "awol_id": ["A1", "A2"], "town": ["Hartford", "New London"]})
    services = pd.DataFrame({
        "service_id": ["S1", "S2"], "child_id": ["C1", "C3"], "episode_id": ["E1", None],
        "service": ["mentor", "mlmc_group"], "referred_at": [T("2012-05-10"), T("2009-04-01")],
        "started_at": [T("2012-05-20"), T("2009-04-15")], "ended_at": [None, T("2009-06-24")],
        "completed": [None, True]})
    trainings = pd.DataFrame({
        "session_id": ["T1", "T2"], "date": [T("2012-03-01"), T("2015-09-10")],
        "curriculum": ["dmst_1hr", "police_roll_call"], "audience": ["police", "police"],
        "region": ["Region 4", "Region 1"], "attendees": [2, 25], "hours": [1.0, 0.5]})
    attendance = pd.DataFrame({
        "session_id": ["T1", "T1", "T2"], "attendee_id": ["X1", "X2", "X1"],
        "role": ["police", "police", "police"], "pre_score": [50.0, None, 61.5],
        "post_score": [70.0, 80.0, 90.0]})
    return {"children": children, "facilities": facilities, "placements": placements,
            "awol_episodes": awol, "reports": reports, "episodes": episodes,
            "services": services, "trainings": trainings, "training_attendance": attendance}


def valid_bundle(**meta) -> CaseData:
    return CaseData.from_frames(meta={**META, **meta}, **valid_frames())


def write_csv_bundle(frames: dict[str, pd.DataFrame], path: Path, meta: dict | None = META):
    path.mkdir(parents=True, exist_ok=True)
    for t, df in frames.items():
        df.to_csv(path / f"{t}.csv", index=False)
    if meta is not None:
        (path / "meta.json").write_text(json.dumps(meta))
    return path


def problems_of(frames, meta=META, tmp=None) -> list[dict]:
    with pytest.raises(DataValidationError) as ei:
        CaseData(frames, meta=meta).validate()
    return ei.value.problems


def has(problems, table, column) -> bool:
    return any(p["table"] == table and p["column"] == column for p in problems)


# ------------------------------------------------------------------------------------------------
def test_valid_bundle_validates_and_has_attributes():
    cd = valid_bundle().validate()
    for t in schema.TABLE_NAMES:
        assert getattr(cd, t) is cd.tables[t]
        assert list(cd.tables[t].columns) == schema.TABLES[t].column_names
        assert dict(cd.tables[t].dtypes) == schema.TABLES[t].dtypes
    assert len(cd.children) == 3 and len(cd.training_attendance) == 3
    assert cd.meta["row_counts"]["placements"] == 3
    assert cd.meta["schema_version"] == schema.SCHEMA_VERSION
    assert not cd.is_synthetic
    assert CaseData({}, meta={"source": "synthetic"}).is_synthetic
    assert cd.truth is None
    text = cd.describe()
    assert "placements" in text and "2008-01-01 to 2025-12-31" in text


def test_constructor_rejects_unknown_table_and_from_frames_unknown_column():
    with pytest.raises(ValueError, match="unknown table"):
        CaseData({"kids": pd.DataFrame()})
    with pytest.raises(ValueError, match="unknown column"):
        CaseData.from_frames(children=pd.DataFrame({"child_id": ["C1"], "shoe_size": [3]}))


def test_from_frames_fills_missing_tables_and_columns():
    cd = CaseData.from_frames(trainings=pd.DataFrame({"session_id": ["T1"], "attendees": [3]}))
    assert len(cd.children) == 0 and list(cd.children.columns) == schema.TABLES["children"].column_names
    assert str(cd.trainings["attendees"].dtype) == "Int64"
    assert cd.trainings["curriculum"].isna().all()
    assert str(cd.trainings["date"].dtype) == "datetime64[ns]"


def test_parquet_round_trip_and_byte_identical(tmp_path):
    cd = valid_bundle(seed=7)
    cd.truth = {"null_world": False, "seed": 7, "risk": {"log_odds": {"male": -0.5}}}
    a = cd.save(tmp_path / "a")
    b = valid_bundle(seed=7)
    b.truth = {"null_world": False, "seed": 7, "risk": {"log_odds": {"male": -0.5}}}
    b.save(tmp_path / "b")
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted([f"{t}.parquet" for t in schema.TABLE_NAMES] + ["meta.json", "truth.json"])
    for f in files:
        assert (a / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    back = load(a)
    assert back.truth == cd.truth
    assert back.meta["seed"] == 7 and back.meta["data_hash"] == cd.data_hash
    assert back.data_hash == cd.data_hash
    for t in schema.TABLE_NAMES:
        pd.testing.assert_frame_equal(back.tables[t], cd.validate().tables[t])
    # a change in one value changes the hash and that table's file only
    c = valid_bundle(seed=7)
    c.tables["trainings"].loc[0, "hours"] = 2.0
    c.save(tmp_path / "c")
    assert c.data_hash != cd.data_hash
    assert (tmp_path / "c" / "children.parquet").read_bytes() == (a / "children.parquet").read_bytes()
    assert (tmp_path / "c" / "trainings.parquet").read_bytes() != (a / "trainings.parquet").read_bytes()


def test_meta_json_contents(tmp_path):
    cd = valid_bundle(seed=3, config={"scale": 1.0})
    cd.save(tmp_path / "x")
    meta = json.loads((tmp_path / "x" / "meta.json").read_text())
    assert meta["row_counts"] == {t: len(cd.tables[t]) for t in schema.TABLE_NAMES}
    assert set(meta["content_hashes"]) == set(schema.TABLE_NAMES)
    assert meta["data_hash"] == cd.data_hash
    assert meta["study_start"] == "2008-01-01" and meta["study_end"] == "2025-12-31"
    assert meta["config"] == {"scale": 1.0} and meta["seed"] == 3


def test_save_is_atomic_and_replaces(tmp_path, monkeypatch):
    target = tmp_path / "bundle"
    valid_bundle().save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    # a crash while writing leaves the old bundle untouched and no temporary folder behind
    import pyarrow.parquet as pq

    calls = {"n": 0}
    real = pq.write_table

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(pq, "write_table", flaky)
    cd = valid_bundle()
    cd.tables["trainings"].loc[0, "hours"] = 3.0
    with pytest.raises(OSError, match="disk full"):
        cd.save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    monkeypatch.setattr(pq, "write_table", real)
    cd.save(target)
    assert load(target).trainings["hours"].iloc[0] == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_csv_bundle_parsed_by_schema(tmp_path):
    frames = valid_frames()
    # ids that look like numbers stay text; towns written as variants are normalised
    frames["children"]["child_id"] = ["007", "C2", "C3"]
    for t in ("placements",):
        frames[t]["child_id"] = ["007", "C2", "C3"]
    frames["awol_episodes"]["child_id"] = ["007", "C3"]
    for t in ("reports", "episodes", "services"):
        frames[t]["child_id"] = ["007", "C3"]
    frames["children"]["home_town"] = ["  HARTFORD ", "New Haven city", "Willimantic"]
    frames["children"]["child_welfare_involved"] = ["yes", "N", "1"]
    write_csv_bundle(frames, tmp_path / "csv")
    cd = load(tmp_path / "csv")
    assert cd.children["child_id"].tolist() == ["007", "C2", "C3"]
    assert cd.children["home_town"].tolist() == ["Hartford", "New Haven", "Windham"]
    assert cd.children["child_welfare_involved"].tolist() == [True, False, True]
    assert cd.awol_episodes["start"].iloc[0] == T("2012-05-01 10:00")
    assert dict(cd.placements.dtypes) == schema.TABLES["placements"].dtypes
    assert pd.isna(cd.placements["end"].iloc[1])


def test_csv_without_meta_uses_default_window(tmp_path):
    write_csv_bundle(valid_frames(), tmp_path / "csv", meta=None)
    cd = load(tmp_path / "csv")
    # default start; the end is the latest date in the data (trainings T2, 2015-09-10)
    assert cd.meta["study_start"] == "2008-01-01" and cd.meta["study_end"] == "2015-09-10"
    assert cd.meta["study_end_inferred"] is True
    assert cd.meta["source"] == "extract"
    # explicit arguments take precedence over meta.json and inference
    cd = load(tmp_path / "csv", study_start="2009-01-01", study_end="2020-12-31 10:00")
    assert (cd.meta["study_start"], cd.meta["study_end"]) == ("2009-01-01", "2020-12-31")


def test_load_missing_folder_and_missing_tables(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError) as ei:
        load(tmp_path / "empty")
    assert {p["table"] for p in ei.value.problems} == set(schema.TABLE_NAMES)
    assert dmst_eval.load is load and dmst_eval.DataValidationError is DataValidationError


def test_unreadable_files_are_problems_not_crashes(tmp_path):
    d = write_csv_bundle(valid_frames(), tmp_path / "csv")
    (d / "trainings.csv").unlink()
    (d / "trainings.parquet").write_bytes(b"this is not parquet")
    (d / "meta.json").write_text("{not json")
    with pytest.raises(DataValidationError) as ei:
        load(d)
    assert has(ei.value.problems, "trainings", None)
    assert has(ei.value.problems, "meta.json", None)


# ---- each rule, with the exact problem expected ---------------------------------------------
def test_all_problems_listed_at_once_with_keys_and_expectations():
    f = valid_frames()
    f["children"] = f["children"].drop(columns=["lgbtq"])
    f["children"]["shoe"] = 1
    f["facilities"].loc[1, "capacity"] = -2                      # negative count
    f["placements"].loc[0, "end"] = T("2011-01-01")              # end before start
    f["placements"].loc[1, "child_id"] = "C99"                   # dangling FK
    f["reports"].loc[1, "report_id"] = "R1"                      # duplicate key
    f["trainings"]["hours"] = f["trainings"]["hours"].astype(object)
    f["trainings"].loc[1, "hours"] = "half an hour"              # text in a number column
    f["episodes"]["status_at_time"] = ["awol", "on the moon"]    # unknown level
    f["episodes"].loc[0, "town"] = "Springfield"                 # unknown town
    f["services"].loc[0, "referred_at"] = T("1999-01-01")        # before birth + before window
    f["trainings"].loc[0, "date"] = T("2026-06-01")              # after study end
    probs = problems_of(f)
    by = {(p["table"], p["column"]): p for p in probs}
    assert by[("children", "lgbtq")]["expected"] == "this column to be present"
    assert "no such column" in by[("children", "shoe")]["expected"]
    assert by[("facilities", "capacity")]["rows"] == ["F2"]
    assert by[("facilities", "capacity")]["expected"] == "a whole number >= 1"
    assert by[("placements", "end")]["rows"] == ["P1"] and "on or after start" in by[("placements", "end")]["expected"]
    assert by[("placements", "child_id")]["rows"] == ["P2"]
    assert by[("placements", "child_id")]["expected"] == "a child_id that exists in children"
    assert by[("reports", "report_id")]["rows"] == ["R1", "R1"]
    assert by[("trainings", "hours")]["rows"] == ["T2"] and by[("trainings", "hours")]["found"] == ["half an hour"]
    assert by[("episodes", "status_at_time")]["found"] == ["on the moon"]
    assert by[("episodes", "town")]["rows"] == ["E1"]
    services = [p for p in probs if p["table"] == "services" and p["column"] == "referred_at"]
    assert {p["expected"] for p in services} == {
        "referred_at on or after the child's birth_date",
        "referred_at not before the study start (2008-01-01)"}
    assert by[("trainings", "date")]["expected"] == "date not after the study end (2025-12-31)"
    text = str(DataValidationError(probs))
    assert text.splitlines()[0] == f"{len(probs)} problem(s) found:"
    assert "  - facilities.capacity: 1 row(s) [F2] expected a whole number >= 1; found '-2'" in text


def test_event_after_age_21():
    f = valid_frames()
    f["children"].loc[0, "birth_date"] = T("1985-01-01")  # C1's 2012 events are after age 21
    probs = problems_of(f)
    cols = {(p["table"], p["column"]) for p in probs if "21st birthday" in p["expected"]}
    assert cols == {("placements", "start"), ("placements", "end"), ("awol_episodes", "start"),
                    ("awol_episodes", "end"), ("reports", "received_at"),
                    ("episodes", "began_at"), ("episodes", "identified_at"),
                    ("services", "referred_at"), ("services", "started_at")}


def test_rows_listed_are_capped_at_ten():
    f = valid_frames()
    n = 25
    f["training_attendance"] = pd.DataFrame({
        "session_id": ["T1"] * n, "attendee_id": [f"X{i}" for i in range(n)],
        "role": ["police"] * n, "pre_score": [150.0] * n, "post_score": [50.0] * n})
    probs = problems_of(f)
    (p,) = [p for p in probs if p["column"] == "pre_score"]
    assert p["n_rows"] == n and len(p["rows"]) == 10 and p["rows"][0] == "T1/X0"
    assert p["expected"] == "a finite number between 0 and 100"
    assert "(+15 more)" in str(DataValidationError(probs))


def test_duplicate_composite_key_and_null_key():
    f = valid_frames()
    f["training_attendance"].loc[2, ["session_id", "attendee_id"]] = ["T1", "X2"]
    f["children"].loc[2, "child_id"] = None
    probs = problems_of(f)
    assert any(p["table"] == "training_attendance" and p["column"] is None
               and "unique combinations" in p["expected"] and p["n_rows"] == 2 for p in probs)
    (p,) = [p for p in probs if p["table"] == "children" and p["column"] == "child_id"]
    assert p["rows"] == ["row 3"] and "may not be empty" in p["expected"]


def test_facility_id_consistent_with_setting():
    f = valid_frames()
    f["placements"].loc[0, "facility_id"] = None       # group home without facility
    f["placements"].loc[1, "facility_id"] = "F1"       # foster family with facility
    probs = problems_of(f)
    fp = [p for p in probs if p["table"] == "placements" and p["column"] == "facility_id"]
    assert sorted(p["rows"][0] for p in fp) == ["P1", "P2"]


def test_timezone_and_bad_dates_in_csv(tmp_path):
    f = valid_frames()
    f["reports"]["received_at"] = ["2012-05-04T10:00:00+05:00", "2009-02-30"]
    f["awol_episodes"]["start"] = ["05/01/2012", "2009-03-01"]
    d = write_csv_bundle(f, tmp_path / "csv")
    with pytest.raises(DataValidationError) as ei:
        load(d)
    by = {(p["table"], p["column"]): p for p in ei.value.problems}
    assert by[("reports", "received_at")]["rows"] == ["R1", "R2"]
    assert by[("awol_episodes", "start")]["rows"] == ["A1"]
    # the unparseable dates are not reported a second time as empty
    assert sum(p["column"] == "received_at" for p in ei.value.problems) == 1


def test_meta_window_errors():
    probs = problems_of(valid_frames(), meta={"study_start": "2020-01-01", "study_end": "2010-01-01"})
    assert has(probs, "meta.json", "study_start")
    probs = problems_of(valid_frames(), meta={"study_start": "soon", "schema_version": "9"})
    assert has(probs, "meta.json", "study_start") and has(probs, "meta.json", "schema_version")
    probs = problems_of(valid_frames(), meta={"study_end": 2025, "source": "survey"})
    assert has(probs, "meta.json", "study_end") and has(probs, "meta.json", "source")


def test_study_window_respected():
    f = valid_frames()
    f["reports"].loc[1, "received_at"] = T("2007-12-31")
    f["episodes"].loc[1, "began_at"] = T("2007-06-01")  # history before the window is allowed
    probs = problems_of(f)
    assert [(p["table"], p["column"], p["rows"]) for p in probs] == [
        ("reports", "received_at", ["R2"])]
    # the end of the window is inclusive of the whole last day
    f = valid_frames()
    f["trainings"].loc[1, "date"] = T("2025-12-31 16:00")
    CaseData(f, meta=META).validate()


def test_validation_normalises_towns_on_large_tables():
    # speed is measured in benchmarks/bench_validate.py, not here
    rng = np.random.default_rng(1)
    n = 100_000
    kids = pd.DataFrame({
        "child_id": [f"C{i}" for i in range(n)], "sex": rng.choice(["female", "male"], n),
        "birth_date": pd.Timestamp("1995-01-01") + pd.to_timedelta(rng.integers(0, 5000, n), "D"),
        "race_ethnicity": "White", "home_town": rng.choice(["Hartford", "new haven", "Bristol"], n),
        "region": "Region 4", "child_welfare_involved": True, "prior_sexual_abuse": None,
        "prior_runaway": True, "substance_use": False, "juvenile_justice": None, "lgbtq": None})
    cd = CaseData({"children": kids}, meta=META).validate()
    assert set(cd.children["home_town"]) == {"Hartford", "New Haven", "Bristol"}


def test_links_are_consistent():
    f = valid_frames()
    f["awol_episodes"].loc[1, "placement_id"] = "P1"          # C3's AWOL from C1's placement
    f["placements"].loc[2, "setting"] = "group_home"          # F2 is a shelter
    f["episodes"].loc[0, "awol_id"] = None                    # status awol without AWOL episode
    f["episodes"].loc[1, "status_at_time"] = "home"           # home, yet placement/AWOL linked
    probs = problems_of(f)
    got = {(p["table"], p["column"], p["expected"], tuple(p["rows"])) for p in probs}
    assert ("awol_episodes", "placement_id",
            "a placement_id in placements that belongs to the same child_id", ("A2",)) in got
    assert ("awol_episodes", "start", "start between the placement's start and end", ("A2",)) in got
    assert ("placements", "setting",
            "the setting of the placement's facility (facilities.setting)", ("P3",)) in got
    assert ("episodes", "awol_id", "an awol_id when status_at_time is awol", ("E1",)) in got
    assert ("episodes", "awol_id", "no awol_id unless status_at_time is awol", ("E2",)) in got
    assert ("episodes", "placement_id", "no placement_id when status_at_time is home", ("E2",)) in got


def test_generated_default_bundle_is_valid(tmp_path):
    """The generator's default output passes every rule and survives a save/load round trip."""
    from dmst_eval.synthetic import generate

    cd = generate(scale=0.1, seed=5)
    cd.save(tmp_path / "syn")
    back = load(tmp_path / "syn")
    assert back.is_synthetic and back.truth is not None
    assert back.data_hash == cd.data_hash
    cd.save(tmp_path / "again")
    for p in (tmp_path / "syn").iterdir():
        assert p.read_bytes() == (tmp_path / "again" / p.name).read_bytes(), p.name
    # exported as CSV (how an extract arrives), it loads back to the same data
    csv = write_csv_bundle(back.tables, tmp_path / "csv", meta={
        "source": "extract", **{k: back.meta[k] for k in ("study_start", "study_end")}})
    again = load(csv)
    assert again.data_hash == cd.data_hash and not again.is_synthetic
    # claiming to be synthetic without the generator record (config, truth) is refused
    (csv / "meta.json").write_text(json.dumps({**json.loads((csv / "meta.json").read_text()),
                                               "source": "synthetic"}))
    with pytest.raises(DataValidationError, match="generator record"):
        load(csv)


def test_parquet_with_wrong_types_is_reported(tmp_path):
    d = valid_bundle().save(tmp_path / "pq")
    bad = valid_frames()["trainings"].astype({"hours": str, "attendees": str})
    bad.loc[0, "hours"] = "one hour"
    bad.loc[1, "attendees"] = "-3"
    bad.to_parquet(d / "trainings.parquet", index=False)
    kids = valid_frames()["children"]
    kids["birth_date"] = kids["birth_date"].dt.tz_localize("UTC")
    kids.to_parquet(d / "children.parquet", index=False)
    with pytest.raises(DataValidationError) as ei:
        load(d)
    by = {(p["table"], p["column"]): p for p in ei.value.problems}
    assert by[("trainings", "hours")]["rows"] == ["T1"]
    assert by[("trainings", "attendees")]["rows"] == ["T2"]
    assert by[("children", "birth_date")]["n_rows"] == 3
    assert "time zone" in by[("children", "birth_date")]["expected"]


def test_header_only_csv_stands_for_an_absent_table(tmp_path):
    f = valid_frames()
    f["trainings"] = f["trainings"].iloc[0:0]
    f["training_attendance"] = f["training_attendance"].iloc[0:0]
    d = write_csv_bundle(f, tmp_path / "csv")
    text = (d / "children.csv").read_text().splitlines()
    text[0] = ", ".join(text[0].split(","))  # spaces after commas in the header
    (d / "children.csv").write_text("\n".join(text) + "\n")
    cd = load(d)
    assert len(cd.trainings) == 0 and len(cd.training_attendance) == 0
    assert dict(cd.trainings.dtypes) == schema.TABLES["trainings"].dtypes
    assert len(cd.children) == 3


# ---- text storage: object, pandas string and Arrow-backed (Parquet) text validate alike -------
def _messy_text_frames() -> dict[str, pd.DataFrame]:
    """valid_frames() with surrounding whitespace and town variants in the text columns."""
    f = valid_frames()
    f["children"]["child_id"] = [" C1", "C2\t", "C3"]
    f["children"]["sex"] = ["female ", " male", "female"]
    f["children"]["home_town"] = [" hartford ", "NEW HAVEN", "Willimantic"]
    f["placements"]["setting"] = [" group_home", "foster_family ", "shelter"]
    f["placements"]["facility_id"] = ["F1 ", None, " F2"]
    f["facilities"]["name"] = ["  Facility 001 ", "Facility 002"]  # str: kept as written
    return f


def _with_text_storage(frames: dict[str, pd.DataFrame], dtype) -> dict[str, pd.DataFrame]:
    out = {}
    for t, df in frames.items():
        text = [c.name for c in schema.TABLES[t].columns
                if c.kind in ("id", "str", "town", "category")]
        df = df.astype({c: dtype for c in text})
        # concatenated halves: Arrow-backed columns then hold several chunks
        out[t] = pd.concat([df.iloc[:1], df.iloc[1:]], ignore_index=True)
    return out


def _arrow_text_storages():
    import pyarrow as pa

    return [object, "string", pd.ArrowDtype(pa.string())]


def test_text_is_trimmed_and_normalised_in_every_storage(tmp_path):
    ref = CaseData(_messy_text_frames(), meta=META).validate()
    assert ref.children["child_id"].tolist() == ["C1", "C2", "C3"]
    assert ref.children["sex"].tolist() == ["female", "male", "female"]
    assert ref.children["home_town"].tolist() == ["Hartford", "New Haven", "Windham"]
    assert ref.placements["setting"].tolist() == ["group_home", "foster_family", "shelter"]
    assert ref.placements["facility_id"].tolist()[::2] == ["F1", "F2"]
    assert pd.isna(ref.placements["facility_id"].iloc[1])
    assert ref.facilities["name"].tolist() == ["  Facility 001 ", "Facility 002"]
    assert dict(ref.children.dtypes) == schema.TABLES["children"].dtypes
    for dtype in _arrow_text_storages():
        cd = CaseData(_with_text_storage(_messy_text_frames(), dtype), meta=META).validate()
        for t in schema.TABLE_NAMES:
            pd.testing.assert_frame_equal(cd.tables[t], ref.tables[t], check_exact=True)
        assert cd.data_hash == ref.data_hash
    # the same frames written to Parquet (text and booleans are read Arrow-backed), in one
    # row group or in one row group per row (chunked Arrow columns)
    for row_group_size in (None, 1):
        d = valid_bundle().save(tmp_path / f"pq{row_group_size}")
        for t, df in _messy_text_frames().items():
            df.to_parquet(d / f"{t}.parquet", index=False, row_group_size=row_group_size)
        back = load(d)
        for t in schema.TABLE_NAMES:
            pd.testing.assert_frame_equal(back.tables[t], ref.tables[t], check_exact=True)
        assert back.data_hash == ref.data_hash


def test_text_problems_are_the_same_in_every_storage(tmp_path):
    f = _messy_text_frames()
    f["children"].loc[1, "sex"] = " Male"                     # unknown level
    f["children"].loc[2, "home_town"] = "Springfield "        # not a CT town
    f["placements"].loc[2, "facility_id"] = " F9"             # dangling foreign key
    f["children"]["region"] = f["children"]["region"].astype(object)
    f["children"].loc[0, "region"] = 4                         # not text at all
    runs = [problems_of(_with_text_storage(f, dtype)) for dtype in _arrow_text_storages()[:2]]
    f["children"]["region"] = f["children"]["region"].astype(str)  # Arrow text holds only text
    runs.append(problems_of(_with_text_storage(f, _arrow_text_storages()[2])))
    pq_dir = valid_bundle().save(tmp_path / "pq")
    for t, df in f.items():
        df.to_parquet(pq_dir / f"{t}.parquet", index=False, row_group_size=2)
    with pytest.raises(DataValidationError) as ei:
        load(pq_dir)
    runs.append(ei.value.problems)
    # rows are labelled and values quoted as written
    got = {(p["table"], p["column"]): (p["rows"], p.get("found")) for p in runs[0]}
    # (children's rows by number: a child id is never printed)
    assert got[("children", "sex")] == (["row 2"], [" Male"])
    assert got[("children", "home_town")] == (["row 3"], ["Springfield "])
    assert got[("children", "region")] == (["row 1"], ["4"])
    assert got[("placements", "facility_id")][0] == ["P3"]
    for other in runs[1:]:
        assert other == runs[0]


def test_links_use_the_first_row_of_a_duplicated_key():
    """Cross-table rules look a key up in its first row (among rows with a birth date, for
    births); the duplicates themselves are reported as such."""
    f = valid_frames()
    extra = f["placements"].iloc[[1]].assign(placement_id="P1", start=T("2001-01-01"))
    f["placements"] = pd.concat([f["placements"], extra], ignore_index=True)  # P1 of C2
    undated = f["children"].iloc[[0]].assign(birth_date=pd.NaT)               # C1, no birth date
    later = f["children"].iloc[[2]].assign(birth_date=T("2011-01-01"))         # C3, born 2011
    f["children"] = pd.concat([undated, f["children"], later], ignore_index=True)
    f["facilities"] = pd.concat([f["facilities"], f["facilities"].iloc[[0]].assign(
        setting="shelter")], ignore_index=True)                                # F1, a shelter
    with pytest.raises(DataValidationError) as ei:
        dmst_eval.casedata.validate(f)
    got = {(p["table"], p["column"], p["expected"], tuple(p["rows"])) for p in ei.value.problems}
    assert got == {
        ("children", "child_id", "unique values (this is the table's key)",
         ("row 1", "row 2", "row 4", "row 5")),
        ("children", "birth_date", "a value (this column may not be empty)", ("row 1",)),
        ("facilities", "facility_id", "unique values (this is the table's key)", ("F1", "F1")),
        ("placements", "placement_id", "unique values (this is the table's key)", ("P1", "P1")),
        # the second P1 (C2's) started before C2 was born; A1 and E1 link to the first P1
        ("placements", "start", "start on or after the child's birth_date", ("P1",)),
    }


def test_text_arrow_cannot_hold_is_still_checked():
    """Ids with lone surrogates (not valid UTF-8) are reported once per column, and take the
    pandas path of the key lookups (no cascade of foreign-key errors into children)."""
    f = valid_frames()
    for t in ("children", "placements", "awol_episodes"):
        f[t].loc[0, "child_id"] = "C\ud8001"
    f["trainings"].loc[0, "hours"] = 99.0
    with pytest.raises(DataValidationError) as ei:
        dmst_eval.casedata.validate(f)
    got = {(p["table"], p["column"], tuple(p["rows"])) for p in ei.value.problems}
    assert got == {("trainings", "hours", ("T1",)), ("children", "child_id", ("row 1",)),
                   ("placements", "child_id", ("P1",)), ("awol_episodes", "child_id", ("A1",)),
                   ("episodes", "placement_id", ("E1",)), ("episodes", "awol_id", ("E1",))}
    assert all("valid Unicode" in p["expected"] for p in ei.value.problems
               if p["column"] == "child_id")


def test_parquet_folder_dataset_and_unreadable_parquet(tmp_path):
    d = valid_bundle().save(tmp_path / "pq")
    # <table>.parquet may be a folder of part files (as Spark writes them)
    (d / "children.parquet").unlink()
    (d / "children.parquet").mkdir()
    valid_frames()["children"].to_parquet(d / "children.parquet" / "part-0.parquet", index=False)
    assert load(d).children["child_id"].tolist() == ["C1", "C2", "C3"]
    (d / "trainings.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataValidationError) as ei:
        load(d)
    (p,) = ei.value.problems
    assert p["table"] == "trainings" and p["column"] is None
    assert p["expected"].startswith("a readable Parquet/CSV file (ArrowInvalid: Could not open "
                                    "Parquet input source")


def test_casedata_constructor_raises_input_error_and_confirmed_is_one_rule():
    import pandas as pd
    import pytest

    from dmst_eval.casedata import CaseData, confirmed_mask
    from dmst_eval.errors import InputError

    with pytest.raises(InputError, match="unknown table"):
        CaseData({"kids": pd.DataFrame()})
    ep = pd.DataFrame({"confirmed": pd.array([True, None, False, True], "boolean")})
    assert confirmed_mask(ep).tolist() == [True, False, False, True]
    with pytest.raises(InputError, match="episodes.confirmed"):
        confirmed_mask(pd.DataFrame({"x": [1]}))
