"""tracking.summary on a hand-built bundle with hand-counted answers."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from dmst_eval import geography, tracking
from dmst_eval.casedata import CaseData

T = pd.Timestamp


def hand_bundle() -> CaseData:
    """Five children, seven episodes, six reports, four services, four sessions (2010-2012).

    Confirmed episodes (identified): e1 c1 2010-03-05 placement F1 Hartford;
    e2 c1 2011-02-10 home Hartford; e3 c2 2011-06-01 awol (from F1) Hartford;
    e4 c3 2011-08-01 home Bridgeport; e5 c4 2012-05-01 placement F2 New Haven;
    e7 c4 2012-11-01 awol (from F2) New Haven. e6 (c5, 2012) is NOT confirmed.
    """
    children = pd.DataFrame({
        "child_id": ["c1", "c2", "c3", "c4", "c5"],
        "sex": ["female", "female", "male", "female", "female"],
        "birth_date": pd.to_datetime(["1996-06-01", "1998-01-01", "1994-03-01", "1995-01-01",
                                      "1997-01-01"]),
        "race_ethnicity": ["Black", "White", "Hispanic", "White", "Black"],
        "home_town": ["Hartford", "Hartford", "Bridgeport", "Bridgeport", "Hartford"],
        "region": ["Region 4", "Region 4", "Region 1", "Region 1", "Region 4"],
        "child_welfare_involved": [True, True, False, True, True],
    })
    facilities = pd.DataFrame({
        "facility_id": ["F1", "F2", "F3"], "name": ["Facility 001", "Facility 002", "Facility 003"],
        "setting": ["group_home", "residential_treatment", "shelter"],
        "town": ["Hartford", "New Haven", "Bridgeport"], "capacity": [10, 20, 5]})
    placements = pd.DataFrame({
        "placement_id": ["p1", "p2", "p4"], "child_id": ["c1", "c2", "c4"],
        "setting": ["group_home", "group_home", "residential_treatment"],
        "facility_id": ["F1", "F1", "F2"], "town": ["Hartford", "Hartford", "New Haven"],
        "start": pd.to_datetime(["2009-06-01", "2010-06-01", "2011-06-01"]),
        "end": pd.to_datetime([None, None, None])})
    awol = pd.DataFrame({
        "awol_id": ["a1", "a2"], "child_id": ["c2", "c4"], "placement_id": ["p2", "p4"],
        "start": pd.to_datetime(["2011-05-20", "2012-10-25"]),
        "end": pd.to_datetime(["2011-06-02", "2012-11-02"])})
    reports = pd.DataFrame({
        "report_id": ["r1", "r2", "r3", "r4", "r6", "r7"],
        "child_id": ["c1", "c2", "c3", "c4", "c5", "c1"],
        "received_at": pd.to_datetime(["2010-03-02 08:00", "2011-05-30 08:00", "2011-07-30 08:00",
                                       "2012-04-29 08:00", "2012-06-28 08:00",
                                       "2011-02-09 08:00"]),
        "reporter_type": ["police", "dcf_staff", "police", "congregate_provider", "school",
                          "medical"],
        "guardian_perpetrator": [False, True, False, False, False, True],
        "accepted": [True, True, True, True, False, True],
        "region": ["Region 4", "Region 4", "Region 1", "Region 1", "Region 4", "Region 4"],
        "first_response_at": pd.to_datetime(["2010-03-02 10:00", "2011-06-01 09:00",
                                             "2011-07-30 20:00", "2012-04-29 13:00", None,
                                             "2011-02-10 07:00"]),
        "mdt_referral_at": pd.to_datetime(["2010-03-04", None, None, "2012-05-02", None,
                                           "2011-02-12"]),
        "disposition": ["confirmed", "confirmed", "confirmed", "confirmed", "not_confirmed",
                        "confirmed"]})
    episodes = pd.DataFrame({
        "episode_id": ["e1", "e2", "e3", "e4", "e5", "e6", "e7"],
        "child_id": ["c1", "c1", "c2", "c3", "c4", "c5", "c4"],
        "report_id": ["r1", "r7", "r2", "r3", "r4", "r6", None],
        "began_at": pd.to_datetime(["2010-03-01", "2011-01-01", "2011-05-25", "2011-07-25",
                                    "2012-04-20", "2012-06-20", "2012-10-28"]),
        "identified_at": pd.to_datetime(["2010-03-05", "2011-02-10", "2011-06-01", "2011-08-01",
                                         "2012-05-01", "2012-07-01", "2012-11-01"]),
        "confirmed": [True, True, True, True, True, False, True],
        "status_at_time": ["placement", "home", "awol", "home", "placement", "home", "awol"],
        "placement_id": ["p1", None, "p2", None, "p4", None, "p4"],
        "facility_id": ["F1", None, "F1", None, "F2", None, "F2"],
        "awol_id": [None, None, "a1", None, None, None, "a2"],
        "town": ["Hartford", "Hartford", "Hartford", "Bridgeport", "New Haven", "Hartford",
                 "New Haven"]})
    services = pd.DataFrame({
        "service_id": ["s1", "s2", "s3", "s4"], "child_id": ["c1", "c2", "c3", "c4"],
        "episode_id": ["e1", "e3", "e4", "e5"],
        "service": ["mlmc_group", "mentor", "medical_assessment", "emergency_bed"],
        "referred_at": pd.to_datetime(["2010-03-20", "2011-08-15", "2011-08-02", "2012-05-03"]),
        "started_at": pd.to_datetime(["2010-04-01", "2011-08-20", "2011-08-02", "2012-05-03"]),
        "ended_at": pd.to_datetime(["2010-06-10", "2012-02-01", "2011-08-02", None]),
        "completed": [True, False, True, None]})
    trainings = pd.DataFrame({
        "session_id": ["t1", "t2", "t3", "t4"],
        "date": pd.to_datetime(["2010-05-01", "2011-03-01", "2011-09-01", "2012-02-01"]),
        "curriculum": ["dmst_full_day", "police_roll_call", "dmst_1hr", "dmst_full_day"],
        "audience": ["dcf_staff", "police", "ems", "dcf_staff"],
        "region": ["Region 4", "Region 1", "Region 4", "Region 1"],
        "attendees": [20, 15, 10, 25], "hours": [6.0, 1.0, 1.0, 6.0]})
    attendance = pd.DataFrame({
        "session_id": ["t1", "t1", "t1", "t2", "t2", "t4", "t4"],
        "attendee_id": ["x1", "x2", "x3", "x4", "x5", "x6", "x7"],
        "role": ["dcf_staff", "dcf_staff", "community_provider", "police", "police", "dcf_staff",
                 "dcf_staff"],
        "pre_score": [50, 60, 40, 55, 65, 50, 70],
        "post_score": [80, 65, 75, 70, 60, 90, None]})
    return CaseData.from_frames(
        children=children, facilities=facilities, placements=placements, awol_episodes=awol,
        reports=reports, episodes=episodes, services=services, trainings=trainings,
        training_attendance=attendance,
        meta={"study_start": "2010-01-01", "study_end": "2012-12-31"})


@pytest.fixture(scope="module")
def cd():
    return hand_bundle()


@pytest.fixture(scope="module")
def s(cd):
    return tracking.summary(cd, "2010-01-01", "2012-12-31")


def _v(tab, period, dim, level):
    r = tab[(tab.period == period) & (tab.dimension == dim) & (tab.level == level)]
    return int(r["n"].iloc[0]) if len(r) else 0


def test_confirmed_victims_by_year_and_period(s):
    # 2010: c1; 2011: c1, c2, c3; 2012: c4 (c5's episode is not confirmed); period: 4 children
    assert [s.value("confirmed_victims", p) for p in ("2010", "2011", "2012", "all")] == \
        [1, 3, 1, 4]
    v = s.victims
    assert _v(v, "all", "sex", "female") == 3 and _v(v, "all", "sex", "male") == 1
    assert _v(v, "2011", "sex", "male") == 1
    # age at first confirmed identification in the window: c1 13.8, c2 13.4, c3 17.4, c4 17.3
    assert _v(v, "all", "age_group", "12-13") == 2 and _v(v, "all", "age_group", "16-17") == 2
    # in 2011 c1 is 14.7 at her second identification
    assert _v(v, "2011", "age_group", "14-15") == 1
    assert _v(v, "all", "child_welfare", "child-welfare involved") == 3
    assert _v(v, "all", "child_welfare", "not child-welfare involved") == 1
    assert s.value("male_victims") == 1
    assert v[(v.period == "all") & (v.dimension == "sex")]["share"].sum() == pytest.approx(1)


def test_repeat_victims(s):
    r = s.repeat_victims.set_index("period")
    # 2010: c1 has one episode so far; 2011: c1 (2nd episode); 2012: c4 (2 episodes)
    assert r["repeat_victims"].tolist() == [0, 1, 1, 2]
    assert r.loc["all", "share"] == pytest.approx(0.5)
    lo, hi = tracking.wilson_ci(2, 4)
    assert r.loc["all", "ci_lower"] == pytest.approx(float(lo))
    # Wilson interval by hand for 2/4
    z = 1.959963984540054
    centre = (0.5 + z**2 / 8) / (1 + z**2 / 4)
    half = z * np.sqrt(0.25 / 4 + z**2 / 64) / (1 + z**2 / 4)
    assert r.loc["all", "ci_upper"] == pytest.approx(centre + half)


def test_awol_share(s):
    a = s.awol.set_index("period")
    # confirmed episodes: 2010 e1; 2011 e2 e3 e4; 2012 e5 e7; AWOL: e3, e7
    assert a["episodes"].tolist() == [1, 3, 2, 6]
    assert a["awol_episodes"].tolist() == [0, 1, 1, 2]
    assert a.loc["all", "share"] == pytest.approx(2 / 6)
    # in out-of-home care (placement or AWOL): e1, e3, e5, e7
    assert a.loc["all", "episodes_in_care"] == 4
    assert a.loc["all", "share_in_care"] == pytest.approx(0.5)
    assert s.value("awol_share", "2011") == pytest.approx(1 / 3)


def test_facilities_with_several_victims(s):
    f = s.facilities
    # F1: c1 (e1) and c2 (e3) -> 2 victims; F2: c4 twice -> 1 victim (not "several")
    assert f["facility_id"].tolist() == ["F1"]
    assert int(f.loc[0, "victims"]) == 2 and int(f.loc[0, "episodes"]) == 2
    assert f.loc[0, "victims_per_10_beds"] == pytest.approx(2.0)
    assert s.facilities_by_year["facilities_with_several_victims"].tolist() == [0, 0, 0, 1]


def test_town_rates(s):
    # the shared place definition: victims (each child once) by home town — c1, c2 live in
    # Hartford, c3, c4 in Bridgeport (not where the episodes happened: e5, e7 in New Haven)
    t = s.towns.set_index("town")
    assert int(t.loc["Hartford", "victims"]) == 2 and int(t.loc["Bridgeport", "victims"]) == 2
    assert "New Haven" not in t.index or int(t.loc["New Haven", "victims"]) == 0
    pop = pd.read_csv(geography.reference_dir() / "ct_towns.csv").set_index("town")
    u18 = pop.loc["Hartford", "population_under18_2010"]
    years = 1096 / 365.25  # 2010-01-01 to 2012-12-31, whole days
    assert t.loc["Hartford", "crude_rate"] == pytest.approx(1e4 * 2 / (u18 * years), rel=1e-9)
    # four victims in 169 towns show no variation beyond chance (Marshall's between-town
    # variance is 0), so every town's smoothed rate is the statewide rate
    overall = 1e4 * 4 / (pop["population_under18_2010"].sum() * years)
    np.testing.assert_allclose(s.towns["smoothed_rate"], overall, rtol=1e-9)
    assert list(s.towns["rank"]) == list(range(1, len(s.towns) + 1))
    assert s.towns["smoothed_rate"].is_monotonic_decreasing


def test_reports_by_reporter_type(s):
    r = s.reports.set_index(["period", "reporter_type"])
    assert r.loc[("all", "all"), "reports"] == 6
    assert r.loc[("all", "all"), "accepted"] == 5
    # accepted and no guardian perpetrator: r1, r3, r4
    assert r.loc[("all", "all"), "accepted_without_guardian"] == 3
    assert r.loc[("all", "police"), "reports"] == 2
    assert r.loc[("2011", "police"), "accepted_without_guardian"] == 1
    assert r.loc[("2012", "school"), "accepted"] == 0
    assert r.loc[("2010", "family"), "reports"] == 0  # every reporter type is listed
    assert s.value("accepted_without_guardian", "2012") == 1


def test_region_filter(cd):
    s4 = tracking.summary(cd, "2010-01-01", "2012-12-31", region="Region 4")
    # victims: children.region == Region 4 -> c1, c2 (c5 not confirmed)
    assert s4.value("confirmed_victims") == 2
    # reports: reports.region == Region 4 -> r1, r2, r6, r7
    assert s4.value("reports") == 4
    assert s4.value("accepted_without_guardian") == 1
    assert set(s4.towns["region"]) == {"Region 4"}
    s1 = tracking.summary(cd, "2010-01-01", "2012-12-31", region="Region 1")
    assert s1.value("awol_share") == pytest.approx(1 / 3)  # e4 home, e5 placement, e7 awol
    assert s1.facilities.empty


def test_window_and_errors(cd):
    s = tracking.summary(cd, "2011-01-01", "2011-12-31")
    assert list(s.repeat_victims["period"]) == ["2011", "all"]
    assert s.value("confirmed_victims") == 3
    with pytest.raises(tracking.TrackingInputError, match="Region 9"):
        tracking.summary(cd, region="Region 9")
    with pytest.raises(tracking.TrackingInputError, match="before start"):
        tracking.summary(cd, "2012-01-01", "2011-01-01")


def test_plots(s):
    assert s.plot().get_ylabel() == "children"
    assert s.plot_reports() is not None
    assert s.plot_towns() is not None


def test_missing_column_is_named():
    from dmst_eval import schema

    ep = schema.empty_frame("episodes").drop(columns=["town"])
    bad = CaseData({"episodes": ep})
    with pytest.raises(tracking.TrackingInputError, match=r"episodes.*town"):
        tracking.summary(bad, "2010-01-01", "2010-12-31")


def test_empty_bundle_gives_zeros():
    s = tracking.summary(CaseData({}), "2010-01-01", "2011-12-31")
    assert s.value("confirmed_victims") == 0 and s.value("reports") == 0
    assert np.isnan(s.value("awol_share"))
    assert s.facilities.empty


def test_town_population_cache_follows_the_reference_file(tmp_path, monkeypatch):
    geography.town_area_offices()  # geography's own tables stay those of the shipped data
    first = tracking._town_population()
    first.loc[0, "population_under18"] = -1  # callers get a copy: the cache is not touched
    assert tracking._town_population()["population_under18"].iloc[0] > 0
    src = geography.reference_dir() / "ct_towns.csv"
    ref = tmp_path / "reference"
    ref.mkdir()
    tab = pd.read_csv(src)
    tab.to_csv(ref / "ct_towns.csv", index=False)
    monkeypatch.setenv("DMST_EVAL_REFERENCE", str(ref))
    same = tracking._town_population()
    pd.testing.assert_frame_equal(same, tracking._town_population())
    # a changed file (same path, same size) is read again, whatever the file system's time
    # resolution
    st = os.stat(ref / "ct_towns.csv")
    old = _hartford_population(src)
    changed = int("9" * len(str(old))) if old != int("9" * len(str(old))) else old - 1
    tab.loc[tab["town"] == "Hartford", "population_under18_2010"] = changed
    tab.to_csv(ref / "ct_towns.csv", index=False)
    assert os.stat(ref / "ct_towns.csv").st_size == st.st_size
    os.utime(ref / "ct_towns.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    new = tracking._town_population().set_index("town")["population_under18"]
    assert new["Hartford"] == changed
    before = same.set_index("town")["population_under18"]
    assert new.drop("Hartford").equals(before.drop("Hartford"))
    monkeypatch.delenv("DMST_EVAL_REFERENCE")  # back to the shipped file
    back = tracking._town_population().set_index("town")["population_under18"]
    assert back["Hartford"] == old


def _hartford_population(path) -> int:
    t = pd.read_csv(path)
    return int(t.loc[t["town"] == "Hartford", "population_under18_2010"].iloc[0])


def test_town_ranking_alone_matches_summary_and_top_towns_zero_skips_it():
    from dmst_eval import tracking
    from dmst_eval.synthetic import generate

    cd = generate(seed=3)
    full = tracking.summary(cd, "2011-01-01", "2013-12-31", region="Region 2", top_towns=5)
    alone = tracking.town_ranking(cd, "2011-01-01", "2013-12-31", region="Region 2", top=5)
    pd.testing.assert_frame_equal(full.towns, alone)
    bare = tracking.summary(cd, "2011-01-01", "2013-12-31", region="Region 2", top_towns=0)
    assert bare.towns.empty and list(bare.towns.columns) == list(full.towns.columns)
    # everything else is the same table
    pd.testing.assert_frame_equal(bare.summary, full.summary)
    pd.testing.assert_frame_equal(bare.repeat_victims, full.repeat_victims)
    with pytest.raises(tracking.TrackingInputError, match="top_towns"):
        tracking.summary(cd, top_towns=-1)
    with pytest.raises(tracking.TrackingInputError, match="top must"):
        tracking.town_ranking(cd, top=0)


# ---------------------------------------------------------------------------------------------
# the five answers for one window (tracking.answers and friends), hand-computed on hand_bundle
# ---------------------------------------------------------------------------------------------
def _u18(region=None) -> float:
    pop = tracking._town_population()
    if region:
        pop = pop[pop["region"] == region]
    return float(pop["population_under18"].sum())


def test_victims_answer_count_rate_exact_ci_and_rate_ratio(cd):
    from scipy import stats

    r = tracking.victims_answer(cd, "2012-01-01", "2012-12-31",
                                comparison=("2011-01-01", "2011-12-31"))
    assert r.value("victims") == 1 and r.value("comparison_victims") == 3
    cy = _u18() * 366 / 365.25  # 2012 has 366 days
    assert r.value("child_years") == pytest.approx(cy)
    row = r.row("rate")
    assert row["value"] == pytest.approx(1e4 / cy)
    # Garwood interval for one event: chi2(0.025; 2)/2 and chi2(0.975; 4)/2
    assert row["ci_lower"] == pytest.approx(stats.chi2.ppf(0.025, 2) / 2 * 1e4 / cy)
    assert row["ci_upper"] == pytest.approx(stats.chi2.ppf(0.975, 4) / 2 * 1e4 / cy)
    rr = r.row("rate_ratio")
    assert rr["value"] == pytest.approx((1 / 366) / (3 / 365))
    # conditional: 1 of 4 events in 2012; Clopper-Pearson bounds on p transformed to RR
    p_lo, p_hi = stats.beta.ppf(0.025, 1, 4), stats.beta.ppf(0.975, 2, 3)
    k = 365 / 366
    assert rr["ci_lower"] == pytest.approx(p_lo / (1 - p_lo) * k)
    assert rr["ci_upper"] == pytest.approx(p_hi / (1 - p_hi) * k)
    assert "2012" in r.period and "2011" in rr["period"]
    # region: children of Region 4 (c1, c2), denominator the region's children
    r4 = tracking.victims_answer(cd, "2010-01-01", "2012-12-31", region="Region 4")
    assert r4.value("victims") == 2
    assert r4.value("child_years") == pytest.approx(_u18("Region 4") * 1096 / 365.25)


def test_repeat_answer_count_share_and_aalen_johansen_by_hand(cd):
    r = tracking.repeat_answer(cd, "2010-01-01", "2012-12-31")
    assert (r.value("victims"), r.value("repeat_victims")) == (4, 2)
    assert r.value("repeat_share") == pytest.approx(0.5)
    # first identification -> repeat / aging out / end of data (days):
    # c4 repeat at 180; c3 turns 18 at 213 (competing); c1 repeat at 302; c2 censored at 580
    # AJ: F(180) = 1/4; S = 3/4 then 1/2 after the aging out; F(302) = 1/4 + 1/2 * 1/2 = 1/2.
    # 1 - KM would give 1 - (3/4)(1/2) = 5/8 instead.
    assert r.value("cif_12m") == pytest.approx(0.5)
    assert np.isnan(r.value("cif_24m"))  # nobody followed 24 months
    assert r.value("children_followed") == 4 and r.value("aged_out_before_repeat") == 1
    assert r.at_risk.set_index("months")["at_risk"].to_dict() == {0: 4, 6: 3, 12: 1, 18: 1,
                                                                  24: 0}
    assert r.row("cif_12m")["period"] == "January 2010 to December 2012"
    # in 2011 only c1 is a repeat victim among c1, c2, c3
    r11 = tracking.repeat_answer(cd, "2011-01-01", "2011-12-31")
    assert (r11.value("victims"), r11.value("repeat_victims")) == (3, 1)


def test_awol_answer_shares_timing_by_hand(cd):
    a = tracking.awol_answer(cd, "2010-01-01", "2012-12-31")
    assert a.row("awol_share")[["numerator", "denominator"]].tolist() == [2, 6]
    # in care at the time (placement or AWOL): e1, e3, e5, e7
    assert a.row("awol_share_in_care")[["numerator", "denominator"]].tolist() == [2, 4]
    # e3 began 120 h after its AWOL started, e7 72 h: neither within 48 h, both within 7 days
    assert a.row("within_48h")[["numerator", "denominator"]].tolist() == [0, 2]
    assert a.row("within_7d")[["numerator", "denominator"]].tolist() == [2, 2]
    np.testing.assert_allclose(a.hours, [72, 120])
    lo, hi = tracking.wilson_ci(2, 4)
    assert a.row("awol_share_in_care")["ci_lower"] == pytest.approx(float(lo))
    assert np.isnan(a.value("hazard_ratio")) and "Too few" in a.note


def test_facilities_answer_by_hand(cd):
    f = tracking.facilities_answer(cd, "2010-01-01", "2012-12-31")
    # F1: c1 and c2 -> several; F2: c4 twice -> one victim; F3: none (3 congregate facilities)
    assert f.row("facilities_with_several_victims")[["value", "denominator"]].tolist() == [1, 3]
    assert f.facilities[["facility_id", "victims", "episodes"]].values.tolist() == \
        [["F1", 2, 2], ["F2", 1, 2]]
    assert f.value("facilities_with_victims") == 2
    assert tracking.facilities_answer(cd, "2011-01-01", "2011-12-31") \
        .value("facilities_with_several_victims") == 0
    # facilities located in Region 2 (New Haven): F2 only
    f2 = tracking.facilities_answer(cd, "2010-01-01", "2012-12-31", region="Region 2")
    assert f2.facilities["facility_id"].tolist() == ["F2"]
    assert set(f2.excess.summary["facility_id"]) <= {"F2"}


def test_answers_window_rule_and_errors(cd):
    # whole days, both inclusive: an episode identified on the last day counts
    assert tracking.victims_answer(cd, "2010-01-01", "2010-03-05").value("victims") == 1
    assert tracking.victims_answer(cd, "2010-01-01", "2010-03-04").value("victims") == 0
    with pytest.raises(tracking.TrackingInputError, match="Region 9"):
        tracking.victims_answer(cd, region="Region 9")
    from dmst_eval.errors import InputError

    with pytest.raises(InputError, match="before start"):
        tracking.awol_answer(cd, "2012-01-01", "2011-01-01")


def test_towns_answer_place_definition_and_statement():
    from dmst_eval import choices
    from dmst_eval.synthetic import generate

    cd = generate(seed=1)
    tw = tracking.towns_answer(cd, "2008-01-01", "2013-12-31")
    # victims by home town (the shared place definition), each child once
    ep = cd.episodes[cd.episodes["confirmed"].fillna(False).astype(bool)]
    ep = ep[(ep["identified_at"] >= "2008-01-01") & (ep["identified_at"] < "2014-01-01")]
    home = cd.children.set_index("child_id")["home_town"]
    direct = ep.drop_duplicates("child_id")["child_id"].map(home).value_counts()
    got = tw.towns.set_index("town")["victims"]
    assert got[got > 0].sort_index().to_dict() == direct.sort_index().to_dict()
    years = (pd.Timestamp("2014-01-01") - pd.Timestamp("2008-01-01")).days / 365.25
    hart = tw.towns.set_index("town").loc["Hartford"]
    assert hart["crude_rate"] == pytest.approx(
        1e4 * hart["victims"] / (hart["child_years"]))
    assert hart["child_years"] == pytest.approx(
        tracking._town_population().set_index("town").loc["Hartford", "population_under18"]
        * years)
    assert tw.place_definition == choices.load().place_definition
    text = tw.statement()
    if len(tw.significant):
        assert "No area stands out" not in text and tw.significant["centre"].iloc[0] in text
    # the regional view keeps the statewide ranks and clusters
    r1 = tracking.towns_answer(cd, "2008-01-01", "2013-12-31", region="Region 1")
    assert set(r1.in_scope()["region"]) == {"Region 1"}
    pd.testing.assert_frame_equal(r1.towns.drop(columns="in_scope"),
                                  tw.towns.drop(columns="in_scope"))
    # regional maps use the statewide colour breaks, so colours mean the same in every brief
    np.testing.assert_array_equal(r1.statewide_breaks(5), tw.statewide_breaks(5))
    assert len(tw.statewide_breaks(5)) >= 2
    ax = r1.plot(threshold=5)
    named = {t.get_text() for t in ax.texts}
    assert named == set(r1.top_towns(5, 5)) and named <= set(r1.in_scope()["town"])
