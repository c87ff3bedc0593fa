"""recurrent_frame on a hand-built bundle with hand-derived counting-process rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dmst_eval.errors import InputError
from dmst_eval import recidivism as rc
from dmst_eval.casedata import CaseData

T = pd.Timestamp


def _bundle() -> CaseData:
    children = pd.DataFrame({
        "child_id": ["A", "B", "C", "D", "E", "F"],
        "sex": ["female", "male", "female", "female", "female", "male"],
        "birth_date": [T("2000-06-01"), T("2001-02-10"), T("1996-03-01"), T("1995-01-01"),
                       T("1992-01-01"), T("2003-01-01")],
        "substance_use": [True, False, None, True, False, False],
        "prior_runaway": [False, True, True, None, False, False],
        "prior_sexual_abuse": [None, None, True, False, False, False],
        "juvenile_justice": [False, False, False, False, False, False],
        "lgbtq": [True, None, False, False, False, False],
    })
    episodes = pd.DataFrame({
        "episode_id": ["A1", "A2", "A3", "B1", "B2", "C1", "C2", "D1", "E1"],
        "child_id": ["A", "A", "A", "B", "B", "C", "C", "D", "E"],
        "began_at": [T("2014-01-01"), T("2014-03-12"), T("2014-07-09"), T("2016-04-20"),
                     T("2016-04-25"), T("2014-01-20"), T("2014-04-01"), T("2013-06-01"),
                     T("2007-05-01")],
        "identified_at": [T("2014-01-11"), T("2014-03-20"), T("2014-07-15"), T("2016-05-01"),
                          T("2016-06-01"), T("2014-02-01"), T("2014-04-05"), T("2013-07-01"),
                          T("2007-06-01")],
        "confirmed": [True, True, False, True, True, True, True, True, True],
        "status_at_time": ["placement", "awol", "home", "home", "home", "home", "home", "home",
                           "home"],
    })
    placements = pd.DataFrame({
        "placement_id": ["P1", "P2"], "child_id": ["A", "A"],
        "setting": ["group_home", "foster_family"],
        "start": [T("2013-12-01"), T("2014-09-01")], "end": [T("2014-04-30"), pd.NaT],
    })
    awol = pd.DataFrame({"awol_id": ["W1"], "child_id": ["A"], "placement_id": ["P1"],
                         "start": [T("2014-03-01")], "end": [T("2014-03-20")]})
    services = pd.DataFrame({
        "service_id": ["S1", "S2", "S3"], "child_id": ["A", "A", "B"],
        "service": ["mentor", "mlmc_group", "mentor"],
        "referred_at": [T("2014-05-01"), T("2014-05-20"), T("2016-06-01")],
        "started_at": [T("2014-05-15"), T("2014-06-01"), pd.NaT],   # B never started
    })
    return CaseData.from_frames(children=children, episodes=episodes, placements=placements,
                                awol_episodes=awol, services=services,
                                meta={"study_start": "2008-01-01", "study_end": "2016-12-31"})


# (start, stop, event, event_number, gap_start, gap_stop, awol, in_placement, service, aged_out)
EXPECTED_A = [
    (0, 49, 0, 1, 0, 49, 0, 1, 0, 0),       # in group home (placed before identification)
    (49, 60, 1, 1, 49, 60, 1, 0, 0, 0),     # AWOL from 1 March; A2 begins 12 March, day 60
    (60, 68, 0, 2, 0, 8, 1, 0, 0, 0),       # still AWOL until 20 March
    (68, 109, 0, 2, 8, 49, 0, 1, 0, 0),     # back in the group home until 30 April
    (109, 124, 0, 2, 49, 64, 0, 0, 0, 0),   # at home
    (124, 179, 1, 2, 64, 119, 0, 0, 1, 0),  # mentor started 15 May; A3 begins 9 July
    (179, 233, 0, 3, 0, 54, 0, 0, 1, 0),    # at home until foster placement 1 Sep
    (233, 1086, 0, 3, 54, 907, 0, 1, 1, 0),  # censored at the end of 31 Dec 2016 (inclusive)
]
COLS = ["start", "stop", "event", "event_number", "gap_start", "gap_stop", "awol",
        "in_placement", "service", "aged_out"]


@pytest.fixture(scope="module")
def rf() -> pd.DataFrame:
    # every episode that came to light (A3 is not confirmed)
    return rc.recurrent_frame(_bundle(), confirmed_only=False)


def test_children_included(rf):
    # D identified after 18, E before the window, F never exploited
    assert sorted(rf["child_id"].unique()) == ["A", "B", "C"]


def test_rows_child_a(rf):
    a = rf[rf["child_id"] == "A"][COLS].to_numpy(dtype=float)
    np.testing.assert_allclose(a, np.array(EXPECTED_A, dtype=float))


def test_rows_child_b_overlapping_episode_is_not_a_repeat(rf):
    b = rf[rf["child_id"] == "B"][COLS].to_numpy(dtype=float)
    # B2 began before B's first identification: part of the first episode, not a repeat;
    # B's service was referred but never started
    np.testing.assert_allclose(b, [[0, 245, 0, 1, 0, 245, 0, 0, 0, 0]])  # to end of 31 Dec


def test_rows_child_c_censored_at_18(rf):
    c = rf[rf["child_id"] == "C"][COLS].to_numpy(dtype=float)
    # 18th birthday 1 March 2014, 28 days after identification; C2 (after 18) is not counted
    np.testing.assert_allclose(c, [[0, 28, 0, 1, 0, 28, 0, 0, 0, 1]])


def test_baseline_covariates(rf):
    first = rf.groupby("child_id").first()
    assert first.loc["A", "male"] == 0 and first.loc["B", "male"] == 1
    assert first.loc["A", "substance_use"] == 1 and np.isnan(first.loc["C", "substance_use"])
    assert np.isnan(first.loc["A", "prior_sexual_abuse"])
    assert first.loc["A", "age_at_entry"] == pytest.approx(
        (T("2014-01-11") - T("2000-06-01")).days / 365.25)
    assert (rf.groupby("child_id")["lgbtq"].nunique(dropna=False) == 1).all()


def test_censor_age_parameter():
    rf16 = rc.recurrent_frame(_bundle(), censor_age=16, confirmed_only=False)
    # A turns 16 on 1 June 2016 (day 872): censored there, aged out
    a = rf16[rf16["child_id"] == "A"]
    assert a["stop"].max() == (T("2016-06-01") - T("2014-01-11")).days
    assert a["aged_out"].iloc[-1] == 1 and a["aged_out"].iloc[:-1].eq(0).all()
    # C is 17 at identification: excluded when follow-up ends at 16
    assert "C" not in set(rf16["child_id"])


def test_window_and_confirmed_only():
    cd = _bundle()
    late = rc.recurrent_frame(cd, start="2015-01-01", confirmed_only=False)
    assert sorted(late["child_id"].unique()) == ["B"]
    conf = rc.recurrent_frame(cd)                 # default: confirmed episodes only
    a = conf[conf["child_id"] == "A"]
    assert a["event"].sum() == 1                  # A3 is not confirmed
    assert a["stop"].max() == 1086                # followed to the end of 31 Dec 2016


def test_intervals_are_contiguous_and_positive(rf):
    assert (rf["stop"] > rf["start"]).all()
    nxt = rf.groupby("child_id")["start"].shift(-1)
    same = nxt.notna()
    np.testing.assert_array_equal(rf.loc[same, "stop"], nxt[same])
    assert ((rf["awol"] + rf["in_placement"]) <= 1).all()


def test_first_event_frame(rf):
    fe = rc.first_event_frame(rf).set_index("child_id")
    assert fe.loc["A", "duration"] == 60 and fe.loc["A", "event"] == 1
    assert fe.loc["B", "cause"] == 0 and fe.loc["C", "cause"] == 2


def test_missing_table_column_clear_error():
    cd = _bundle()
    cd.tables["episodes"] = cd.episodes.drop(columns=["began_at"])
    with pytest.raises(InputError, match="episodes.*began_at"):
        rc.recurrent_frame(cd)


def test_episode_of_unknown_child_clear_error():
    cd = _bundle()
    eps = cd.episodes.copy()
    eps.loc[0, "child_id"] = "ZZ"
    cd.tables["episodes"] = eps
    with pytest.raises(InputError, match=r"episodes\.child_id: 1 child\(ren\) with episodes "
                                         r"are not in 'children' \(rows 0\)") as e:
        rc.recurrent_frame(cd)
    assert "ZZ" not in str(e.value)                  # messages never print a child id


def test_empty_window_gives_empty_frame():
    rf = rc.recurrent_frame(_bundle(), start="2016-12-01", end="2016-12-31")
    assert rf.empty and "event_number" in rf.columns


def test_birthday_feb29_and_fractional_age():
    birth = pd.Series([T("2000-02-29 13:30"), T("1996-02-29"), T("1999-07-31"), pd.NaT])
    # a 29 February birthday in a common year is 1 March; the time of day is dropped
    assert list(rc.frames._birthday(birth, 18)[:3]) == [T("2018-03-01"), T("2014-03-01"),
                                                 T("2017-07-31")]
    assert list(rc.frames._birthday(birth, 16)[:2]) == [T("2016-02-29"), T("2012-02-29")]
    assert pd.isna(rc.frames._birthday(birth, 18).iloc[3])
    half = pd.Timedelta(days=rc.DAYS_PER_YEAR / 2)
    assert rc.frames._birthday(birth, 17.5).iloc[0] == T("2017-03-01") + half


def test_follow_up_ends_on_1_march_for_a_29_february_birth():
    cd = CaseData.from_frames(
        children=pd.DataFrame({"child_id": ["L"], "sex": ["female"],
                               "birth_date": [T("2000-02-29")]}),
        episodes=pd.DataFrame({"episode_id": ["L1"], "child_id": ["L"],
                               "began_at": [T("2017-03-01")], "identified_at": [T("2017-03-01")],
                               "confirmed": [True]}),
        meta={"study_start": "2008-01-01", "study_end": "2020-12-31"})
    rf = rc.recurrent_frame(cd)
    assert rf[["start", "stop", "aged_out"]].values.tolist() == [[0.0, 365.0, 1]]


def test_child_listed_twice_clear_error():
    cd = _bundle()
    cd.tables["children"] = pd.concat([cd.children, cd.children.iloc[[0]]], ignore_index=True)
    with pytest.raises(InputError, match=r"children\.child_id: 1 child\(ren\) are listed more "
                                         r"than once \(rows 0, 6\)") as e:
        rc.recurrent_frame(cd)
    assert "'A'" not in str(e.value)
