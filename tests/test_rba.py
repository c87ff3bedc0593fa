"""rba.scorecard on the hand-built bundle (hand-counted), the registry, and the forecast."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import yaml

from dmst_eval import rba
from dmst_eval.casedata import CaseData
from tests.test_tracking import hand_bundle


@pytest.fixture(scope="module")
def sc():
    return rba.scorecard(hand_bundle(), start="2012-01-01", end="2012-12-31",
                         baseline=(2010, 2011))


# reporting period 2012 vs baseline 2010-2011 (counts per year; shares pooled) — see the
# docstring of tests.test_tracking.hand_bundle for the data
HAND = {
    "reports_received": (2, 2.0),                # r4, r6 | r1, r2, r3, r7 over 2 years
    "mdt_referrals": (1, 1.0),                   # r4 | r1, r7
    "accepted_without_guardian": (1, 1.0),       # r4 | r1, r3
    "first_response_24h": (1.0, 0.75),           # r4 5h | r1 2h, r2 49h, r3 12h, r7 23h
    "mdt_referral_share": (1.0, 0.5),
    "identified_within_30d": (1.0, 0.75),        # e5 11d | e1 4d, e2 40d, e3 7d, e4 7d
    "sessions_delivered": (1, 1.5),
    "people_trained": (25, 22.5),
    "people_trained_police": (0, 7.5),
    "people_trained_dcf_staff": (25, 10.0),
    "people_trained_congregate_staff": (0, 0.0),
    "post_test_pass": (1.0, 0.6),                # 90 | 80, 65, 75, 70, 60 (pass mark 70)
    "knowledge_gain": (40.0, 16.0),              # 40 | 30, 5, 35, 15, -5
    "gained_10_points": (1.0, 0.6),
    "service_referrals": (1, 1.5),
    "children_referred": (1, 1.5),
    "referred_within_30d": (1.0, 0.5),           # c4 2d | c1 15d, c1-2011 none, c2 75d, c3 1d
    "service_completion": (np.nan, 2 / 3),       # s4 ongoing | s1 yes, s2 no, s3 yes
    # c4 (May 2012) has < 12 months of follow-up, so is left out even though she was
    # victimized again in October | c1-2010 again in 2011; c1-2011, c2, c3 not
    "no_revictimization_12m": (np.nan, 0.75),
}


@pytest.mark.parametrize("key", sorted(HAND))
def test_hand_counted_values(sc, key):
    value, base = HAND[key]
    r = sc.row(key)
    np.testing.assert_allclose([r["value"], r["baseline_value"]], [value, base], rtol=1e-12)
    if not np.isnan(value):
        assert r["change"] == pytest.approx(value - base)


def test_registry_structure():
    reg = rba.measures()
    assert reg["key"].is_unique
    for strat in rba.STRATEGIES:
        sub = reg[reg.strategy == strat]
        assert len(sub) >= 3
        assert set(sub["question"]) == set(rba.QUESTIONS)
    assert set(reg["polarity"]) <= {"higher", "lower"}


def test_scorecard_layout_and_targets(sc):
    s = sc.summary
    order = [(rba.STRATEGIES.index(a), rba.QUESTIONS.index(b))
             for a, b in zip(s.strategy, s.question)]
    assert order == sorted(order)
    for c in ("value", "baseline_value", "change", "polarity", "target", "forecast",
              "forecast_lower", "forecast_upper", "verdict"):
        assert c in s.columns
    r = sc.row("first_response_24h")
    assert r["target"] == pytest.approx(0.90) and r["target_met"] == True  # noqa: E712
    # two baseline years are too few for a trend
    assert r["verdict"] == "baseline too short to forecast"
    assert sc.row("service_completion")["verdict"] == "no data"
    html = sc.style().to_html()
    assert "RBA scorecard" in html and "75%" in html
    assert sc.plot("knowledge_gain").get_ylabel() == "test points"
    assert sc.plot_all() is not None


def test_region_and_custom_registry_and_targets():
    cd = hand_bundle()
    extra = [{"key": "police_reports", "label": "Reports made by police",
              "strategy": "Identification & Response", "question": "How much did we do?",
              "frame": "reports", "kind": "count", "where": "reporter_type == 'police'",
              "polarity": "higher", "unit": "reports per year"}]
    sc = rba.scorecard(cd, region="Region 4", start="2010-01-01", end="2012-12-31",
                       baseline=(2010, 2010), measures=extra, targets={"police_reports": 1})
    r = sc.row("police_reports")
    assert r["value"] == pytest.approx(1 / 3)  # r1 only (region 4) over three years
    assert r["target_met"] == False  # noqa: E712
    assert len(sc.summary) == 1
    with pytest.raises(rba.RBAInputError, match="kind"):
        rba.scorecard(cd, measures=[{**extra[0], "kind": "median"}])
    with pytest.raises(rba.RBAInputError, match="column"):
        rba.scorecard(cd, measures=[{**extra[0], "kind": "share"}])
    with pytest.raises(rba.RBAInputError, match="number"):
        rba.scorecard(cd, targets={"x": "high"})
    with pytest.raises(ValueError, match="Region 7"):
        rba.scorecard(cd, region="Region 7")


def _sessions_bundle(per_year: dict[int, int]) -> CaseData:
    rows = []
    for y, k in per_year.items():
        for i in range(k):
            rows.append({"session_id": f"s{y}_{i}", "date": pd.Timestamp(f"{y}-06-01"),
                         "curriculum": "dmst_1hr", "audience": "dcf_staff",
                         "region": "Region 1", "attendees": 10, "hours": 1.0})
    return CaseData.from_frames(trainings=pd.DataFrame(rows),
                                meta={"study_start": "2010-01-01", "study_end": "2017-12-31"})


SESSIONS = [{"key": "sessions_delivered", "label": "Sessions", "strategy": "Awareness & Education",
             "question": "How much did we do?", "frame": "trainings", "kind": "count",
             "polarity": "higher", "unit": "sessions per year"}]


def test_turn_the_curve_on_a_straight_line():
    # sessions 2 + 3 (year - 2010): the baseline trend (2010-2014) predicts 2015-2017 exactly
    line = {y: 2 + 3 * (y - 2010) for y in range(2010, 2018)}
    sc = rba.scorecard(_sessions_bundle(line), start="2015-01-01", end="2017-12-31",
                       baseline=(2010, 2014), measures=SESSIONS)
    r = sc.row("sessions_delivered")
    assert r["value"] == pytest.approx(20.0)         # mean of 17, 20, 23
    assert r["baseline_value"] == pytest.approx(8.0)  # mean of 2, 5, 8, 11, 14
    assert r["forecast"] == pytest.approx(20.0)
    assert r["forecast_upper"] - r["forecast_lower"] == pytest.approx(0.0, abs=1e-9)
    assert r["verdict"] == "on the baseline trend"
    turned = {**line, 2016: 35}
    sc2 = rba.scorecard(_sessions_bundle(turned), start="2015-01-01", end="2017-12-31",
                        baseline=(2010, 2014), measures=SESSIONS)
    assert sc2.row("sessions_delivered")["verdict"] == "curve turned: better than forecast"
    lower = [{**SESSIONS[0], "polarity": "lower"}]
    sc3 = rba.scorecard(_sessions_bundle(turned), start="2015-01-01", end="2017-12-31",
                        baseline=(2010, 2014), measures=lower)
    assert sc3.row("sessions_delivered")["verdict"] == "worse than forecast"
    a = sc.annual.set_index("year")["value"]
    assert a.loc[2013] == 11


def test_forecast_interval_matches_statsmodels_prediction_interval():
    import statsmodels.api as sm

    years = np.arange(2010, 2017)
    vals = np.array([3.0, 5.5, 4.0, 7.5, 8.0, 7.0, 11.0])
    annual = pd.DataFrame({"year": years, "value": vals})
    mean, lo, hi, _ = rba._forecast(annual, list(years), [2019])
    X = sm.add_constant(years.astype(float))
    pred = sm.OLS(vals, X).fit().get_prediction(np.array([[1.0, 2019.0]]))
    f = pred.summary_frame(alpha=0.05)
    assert mean == pytest.approx(float(f["mean"].iloc[0]))
    assert lo == pytest.approx(float(f["obs_ci_lower"].iloc[0]))
    assert hi == pytest.approx(float(f["obs_ci_upper"].iloc[0]))


def test_empty_bundle_scorecard():
    sc = rba.scorecard(CaseData({}), start="2010-01-01", end="2010-12-31", baseline=(2008, 2009))
    r = sc.summary.set_index("measure")
    assert r.loc["reports_received", "value"] == 0
    assert np.isnan(r.loc["first_response_24h", "value"])
    assert r.loc["first_response_24h", "verdict"] == "no data"


def test_outcomes_not_yet_observable_are_left_out():
    # x1 identified 2012-12-15 and referred 2012-12-20: fewer than 30 days of data after her
    # identification, so she is left out of the referral share (counting her would count only
    # the children referred quickly); x2 identified in June, never referred -> 0 / 1
    cd = CaseData.from_frames(
        children=pd.DataFrame({"child_id": ["x1", "x2"], "sex": ["female", "female"],
                               "birth_date": pd.to_datetime(["1996-01-01", "1996-01-01"]),
                               "region": ["Region 2", "Region 2"],
                               "child_welfare_involved": [True, True]}),
        episodes=pd.DataFrame({"episode_id": ["e1", "e2"], "child_id": ["x1", "x2"],
                               "began_at": pd.to_datetime(["2012-12-01", "2012-05-20"]),
                               "identified_at": pd.to_datetime(["2012-12-15", "2012-06-01"]),
                               "confirmed": [True, True], "status_at_time": ["home", "home"],
                               "town": ["Hartford", "Hartford"]}),
        services=pd.DataFrame({"service_id": ["s1"], "child_id": ["x1"], "episode_id": ["e1"],
                               "service": ["mentor"],
                               "referred_at": pd.to_datetime(["2012-12-20"])}),
        meta={"study_start": "2010-01-01", "study_end": "2012-12-31"})
    sc = rba.scorecard(cd, start="2012-01-01", end="2012-12-31", baseline=(2010, 2011))
    r = sc.row("referred_within_30d")
    assert r["value"] == 0.0 and r["denominator"] == 1
    assert np.isnan(sc.row("no_revictimization_12m")["value"])  # nobody followed for a year


def test_registry_cache_never_returns_a_stale_registry(tmp_path):
    path = tmp_path / "measures.yaml"
    entry = {**SESSIONS[0]}
    text = yaml.safe_dump([entry])
    path.write_text(text)
    first = rba.load_measures(path)
    assert first[0].label == "Sessions" and rba.load_measures(path) == first
    first.append("x")  # callers get their own list
    assert len(rba.load_measures(path)) == 1
    # same path, same size, same modification time: only the content changed
    st = os.stat(path)
    path.write_text(text.replace("Sessions", "Sittings"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size
    assert rba.load_measures(path)[0].label == "Sittings"
    # targets likewise
    tpath = tmp_path / "targets.yaml"
    tpath.write_text("sessions_delivered: 4\n")
    assert rba.load_targets(tpath) == {"sessions_delivered": 4.0}
    tpath.write_text("sessions_delivered: 5\n")
    assert rba.load_targets(tpath) == {"sessions_delivered": 5.0}
    rba.load_targets(tpath)["x"] = 1.0
    assert rba.load_targets(tpath) == {"sessions_delivered": 5.0}
    # a bad file raises every time (errors are not cached)
    tpath.write_text("sessions_delivered: high\n")
    for _ in range(2):
        with pytest.raises(rba.RBAInputError, match="number"):
            rba.load_targets(tpath)


def test_shipped_registry_parses_the_same_with_the_c_and_python_yaml_parsers():
    from importlib import resources

    for name in ("rba_measures.yaml", "rba_targets.yaml"):
        text = resources.files("dmst_eval").joinpath(name).read_text("utf-8")
        assert rba._yaml_load(text) == yaml.load(text, Loader=yaml.SafeLoader)
    assert rba.load_measures() == rba._parse_measures(
        yaml.safe_load(resources.files("dmst_eval").joinpath("rba_measures.yaml")
                       .read_text("utf-8")), "rba_measures.yaml")


def test_yearly_sums_of_fractional_values_use_the_compensated_groupby_sum():
    code = np.array([0, 0, 1, 2, 0, 2])
    whole = np.array([1.0, 0.0, 3.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(rba._sum_by_year(code, whole, 4), [2.0, 3.0, 1.0, 0.0])
    frac = np.array([0.1, 0.2, 1e16, 0.3, 1.0, -1e16])
    want = pd.Series(frac).groupby(code).sum().reindex(range(4), fill_value=0.0).to_numpy()
    np.testing.assert_array_equal(rba._sum_by_year(code, frac, 4), want)
