"""Analysis frame and WISER-like items on a hand-built bundle: timing rules checked case by case."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dmst_eval.errors import InputError
from dmst_eval import risk
from dmst_eval.casedata import CaseData

T = pd.Timestamp
NA = pd.NA


def _bundle() -> CaseData:
    children = pd.DataFrame([
        # id, sex, birth, cw, psa, runaway, substance, jj, lgbtq
        ("C1", "female", "2000-01-01", True, True, False, False, False, NA),
        ("C2", "female", "1998-05-01", True, False, True, NA, False, False),
        ("C3", "male", "2001-07-01", True, False, False, False, True, False),
        ("C4", "female", "1999-01-01", True, False, False, False, False, False),
        ("C5", "female", "1996-01-01", True, True, True, True, True, True),   # victim in 2009
        ("C6", "female", "1999-03-01", True, False, False, False, False, False),
        ("C7", "female", "1998-01-01", False, False, False, False, False, False),  # not CW
        ("C8", "female", "1991-06-01", True, False, False, False, False, False),   # 18 at start
        ("C9", "male", "2014-01-01", True, False, False, False, False, False),     # infant
        ("C10", "female", "1997-06-01", True, False, False, False, False, False),
    ], columns=["child_id", "sex", "birth_date", "child_welfare_involved", "prior_sexual_abuse",
                "prior_runaway", "substance_use", "juvenile_justice", "lgbtq"])
    children["birth_date"] = pd.to_datetime(children["birth_date"])
    for c in ("prior_sexual_abuse", "prior_runaway", "substance_use", "juvenile_justice",
              "lgbtq", "child_welfare_involved"):
        children[c] = children[c].astype("boolean")
    children["home_town"] = "Hartford"
    children["region"] = "Region 4"
    children["race_ethnicity"] = "Unknown"

    placements = pd.DataFrame([
        ("P1", "C1", "foster_family", None, "2009-06-01", "2012-03-01"),
        ("P2", "C1", "group_home", "F1", "2012-03-01", None),          # before identification
        ("P3", "C2", "kinship", None, "2010-02-01", "2011-03-01"),
        ("P4", "C2", "shelter", "F2", "2011-03-01", None),             # after identification
        ("P5", "C3", "residential_treatment", "F3", "2012-07-01", None),
        ("P6", "C6", "foster_family", None, "2010-05-01", "2016-01-10"),
        ("P7", "C6", "group_home", "F1", "2016-01-10", None),          # after the window
        ("P8", "C9", "foster_family", None, "2015-01-01", None),
        ("P9", "C10", "foster_family", None, "2013-01-01", None),
    ], columns=["placement_id", "child_id", "setting", "facility_id", "start", "end"])
    placements["town"] = "Hartford"
    for c in ("start", "end"):
        placements[c] = pd.to_datetime(placements[c])

    awol = pd.DataFrame([
        ("A1", "C1", "P2", "2013-04-01"),            # before identification, age 13.2
        ("A2", "C2", "P4", "2011-02-01 09:00"),      # same instant as identification: not before
        ("A3", "C2", "P4", "2011-06-01"),            # after identification
        ("A4", "C3", "P5", "2015-03-01"),            # in the past year, age 13.7
        ("A5", "C3", "P5", "2016-03-01"),            # after the window
        ("A6", "C10", "P9", "2014-12-01"),           # 395 days before the window end
        ("A7", "C10", "P9", "2015-05-01"),           # past year, age 17.9
    ], columns=["awol_id", "child_id", "placement_id", "start"])
    awol["start"] = pd.to_datetime(awol["start"], format="ISO8601")
    awol["end"] = awol["start"] + pd.Timedelta(days=2)

    episodes = pd.DataFrame([
        ("E1", "C1", "2013-04-20", "2013-05-01", True),
        ("E2", "C2", "2011-01-20", "2011-02-01 09:00", True),
        ("E3", "C2", "2014-01-01", "2014-01-05", True),            # repeat: first one counts
        ("E4", "C4", "2012-01-01", "2012-01-05", False),           # not confirmed
        ("E5", "C5", "2009-01-01", "2009-02-01", True),            # before the window
        ("E6", "C6", "2016-04-01", "2016-05-01", True),            # after the window
        ("E7", "C7", "2012-01-01", "2012-02-01", True),            # not child-welfare
    ], columns=["episode_id", "child_id", "began_at", "identified_at", "confirmed"])
    for c in ("began_at", "identified_at"):
        episodes[c] = pd.to_datetime(episodes[c], format="ISO8601")
    episodes["status_at_time"] = "home"
    episodes["town"] = "Hartford"
    return CaseData.from_frames(children=children, placements=placements, awol_episodes=awol,
                                episodes=episodes,
                                meta={"study_start": "2010-01-01", "study_end": "2015-12-31"})


@pytest.fixture(scope="module")
def frame():
    return risk.analysis_frame(_bundle()).set_index("child_id")


def test_population_and_outcome(frame):
    # C5 prior victim, C7 not child-welfare, C8 adult at start: out
    assert sorted(frame.index) == sorted(["C1", "C2", "C3", "C4", "C6", "C9", "C10"])
    assert frame.victim.to_dict() == {"C1": 1, "C2": 1, "C3": 0, "C4": 0, "C6": 0, "C9": 0,
                                      "C10": 0}
    assert frame.loc["C2", "outcome_date"] == T("2011-02-01 09:00")  # first of two episodes
    assert frame.loc["C6", "covariates_until"] == T("2015-12-31")
    assert list(frame.columns[:3]) == ["victim", "outcome_date", "covariates_until"]
    assert set(risk.COVARIATES) <= set(frame.columns)
    every = risk.analysis_frame(_bundle(), population="all").set_index("child_id")
    assert every.loc["C7", "victim"] == 1 and "C5" not in every.index
    kept = risk.analysis_frame(_bundle(), exclude_prior_victims=False).set_index("child_id")
    assert kept.loc["C5", "victim"] == 0


def test_events_after_identification_do_not_count(frame):
    # C1: group home and AWOL before identification count
    assert frame.loc["C1", ["congregate_before", "awol_before"]].tolist() == [1, 1]
    # C2: shelter placement and AWOL after identification (or at the same instant) do not
    assert frame.loc["C2", ["congregate_before", "awol_before"]].tolist() == [0, 0]
    # non-victims: up to the window end only (C6's group home began after it)
    assert frame.loc["C3", ["congregate_before", "awol_before"]].tolist() == [1, 1]
    assert frame.loc["C6", ["congregate_before", "awol_before"]].tolist() == [0, 0]


def test_covariate_values(frame):
    assert frame.loc["C3", "male"] == 1 and frame.loc["C1", "male"] == 0
    assert np.isnan(frame.loc["C1", "lgbtq"]) and np.isnan(frame.loc["C2", "substance_use"])
    assert frame.loc["C1", "prior_sexual_abuse"] == 1.0 and frame.loc["C2", "prior_runaway"] == 1
    # age when the window opens: at the window start if already placed, else at entry to care
    assert frame.loc["C1", "age_at_start"] == pytest.approx((T("2010-01-01") - T("2000-01-01")).days
                                                            / 365.25)
    assert frame.loc["C3", "age_at_start"] == pytest.approx((T("2012-07-01") - T("2001-07-01")).days
                                                            / 365.25)
    assert frame.loc["C4", "age_at_start"] == pytest.approx((T("2010-01-01") - T("1999-01-01")).days
                                                            / 365.25)
    assert frame.loc["C1", "home_town"] == "Hartford" and frame.loc["C1", "region"] == "Region 4"


def test_min_age_and_window_argument():
    f = risk.analysis_frame(_bundle(), min_age=11).set_index("child_id")
    assert "C9" not in f.index and "C1" in f.index
    with pytest.warns(UserWarning, match="drops 1 victim"):
        risk.analysis_frame(_bundle(), min_age=16.5)
    # a narrower window: C1 (identified 2013) is no longer a victim, and her group home
    # placement (2012) still counts, but the 2013 AWOL is after the window end
    g = risk.analysis_frame(_bundle(), "2010-01-01", "2012-12-31").set_index("child_id")
    assert g.loc["C1", ["victim", "congregate_before", "awol_before"]].tolist() == [0, 1, 0]
    with pytest.raises(InputError, match="before start"):
        risk.analysis_frame(_bundle(), "2012-01-01", "2011-01-01")
    with pytest.raises(InputError, match="population"):
        risk.analysis_frame(_bundle(), population="everyone")


def test_bad_bundle_names_the_problem():
    cd = _bundle()
    cd.tables["children"] = cd.children.drop(columns=["lgbtq"])
    with pytest.raises(InputError, match=r"children\.lgbtq: column not found"):
        risk.analysis_frame(cd)


def test_screening_features_and_wiser_like_score(frame):
    f = risk.screening_features(_bundle(), frame.reset_index()).set_index("child_id")
    items = list(risk.WISER_LIKE_WEIGHTS)
    assert f.loc["C1", items].tolist() == [1, 0, 0, 0, 0]     # ran at 13 in the past year
    assert f.loc["C3", items].tolist() == [1, 0, 1, 0, 1]     # residential first placement
    assert f.loc["C10", items].tolist() == [0, 1, 0, 1, 0]    # placed at 15.6, ran at 17.9
    assert f.loc["C2", items].tolist() == [0, 0, 0, 0, 0]     # shelter/AWOL came after
    assert f.loc["C4", items].tolist() == [0, 0, 0, 0, 0]     # never placed
    score = risk.wiser_like_score(f)
    assert score[["C1", "C3", "C10", "C2"]].tolist() == [40, 61, 27, 0]
    perf = risk.screening_performance(f.victim, score, risk.WISER_LIKE_CUTOFF).iloc[0]
    assert (perf.tp, perf.fn, perf.fp, perf.tn) == (1, 1, 2, 3)


def test_first_event_per_child_matches_groupby_min():
    rng = np.random.default_rng(4)
    ids = rng.choice([f"k{i}" for i in range(40)], 300)
    start = pd.Series(pd.to_datetime("2010-01-01")
                      + pd.to_timedelta(rng.integers(0, 3000, 300), "D"))
    start[rng.random(300) < 0.2] = pd.NaT  # unknown dates never count as the first
    events = pd.DataFrame({"child_id": ids, "start": start})
    cid = np.array([f"k{i}" for i in range(0, 60, 2)] + ["k0"], dtype=object)  # some have none
    ref = (pd.Series(events["start"].to_numpy(), index=ids).groupby(level=0).min()
           .reindex(cid).to_numpy())
    ev = risk.frames._ChildEvents(events, cid)
    np.testing.assert_array_equal(ev.first(), ref)
    rows = rng.random(300) < 0.5
    ref_rows = (pd.Series(events["start"].to_numpy()[rows], index=ids[rows]).groupby(level=0)
                .min().reindex(cid).to_numpy())
    np.testing.assert_array_equal(ev.first(rows), ref_rows)
    empty = risk.frames._ChildEvents(events.iloc[:0], cid)
    assert np.isnat(empty.first()).all() and len(empty.first()) == len(cid)


@pytest.mark.parametrize("values", [
    pd.Categorical(["Region 1", None, "Region 3", "x"], categories=["x", "Region 3", "Region 1"]),
    pd.Categorical([1, None, 2], categories=[2, 1]),
    ["Region 1", None, "Region 6", np.nan],
])
def test_str_codes_match_astype_str(values):
    s = pd.Series(values)
    want = pd.Index(["Region 1", "Region 3", "Region 6", "1", "nan"]).get_indexer(s.astype(str))
    got = risk._util._str_codes(s, ["Region 1", "Region 3", "Region 6", "1", "nan"])
    np.testing.assert_array_equal(got, want)
