"""Exact small cases and error handling for dmst_eval.evaluation (fast)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dmst_eval import evaluation as ev
from dmst_eval.errors import InputError


# ---------------------------------------------------------------------------------------------
# IPTW: a hand-computed weighted mean
# ---------------------------------------------------------------------------------------------
def _tiny(reps: int = 1) -> pd.DataFrame:
    # stratum x=0: 1 treated (y=1), 3 untreated (y=0,0,1)  -> e(x=0) = 1/4
    # stratum x=1: 3 treated (y=1,1,0), 1 untreated (y=0)  -> e(x=1) = 3/4
    base = pd.DataFrame({
        "x": [0, 0, 0, 0, 1, 1, 1, 1],
        "t": [1, 0, 0, 0, 1, 1, 1, 0],
        "y": [1, 0, 0, 1, 1, 1, 0, 0],
    })
    return pd.concat([base] * reps, ignore_index=True)


def test_iptw_hand_computed_weighted_means_ate():
    # ATE weights 1/e (treated), 1/(1-e) (untreated); the stabilising constant cancels.
    # treated: (4*1 + 4/3*(1+1+0)) / (4 + 3*4/3) = (20/3)/8 = 5/6
    # untreated: (4/3*(0+0+1) + 4*0) / (3*4/3 + 4) = (4/3)/8 = 1/6
    r = ev.iptw_effect(_tiny(), "t", "y", ["x"], trim=None)
    np.testing.assert_allclose(r.propensity_[:4], 0.25, atol=1e-7)
    np.testing.assert_allclose(r.propensity_[4:], 0.75, atol=1e-7)
    iptw = r.estimate("iptw")
    assert iptw.mean_treated == pytest.approx(5 / 6, abs=1e-7)
    assert iptw.mean_control == pytest.approx(1 / 6, abs=1e-7)
    assert iptw.estimate == pytest.approx(2 / 3, abs=1e-7)
    assert r.estimate("iptw", "risk_ratio").estimate == pytest.approx(5.0, abs=1e-6)
    naive = r.estimate("naive")
    assert naive.estimate == pytest.approx(0.5)  # 3/4 - 1/4
    # after weighting the covariate is exactly balanced
    assert r.balance.loc[0, "smd_after"] == pytest.approx(0.0, abs=1e-7)
    # before: means 3/4 vs 1/4, both sample variances 1/4 -> pooled SD 1/2 -> SMD 1
    assert r.balance.loc[0, "smd_before"] == pytest.approx(1.0, rel=1e-9)


def test_iptw_hand_computed_att():
    # ATT: untreated weights e/(1-e): x=0 -> 1/3, x=1 -> 3; control mean = (1/3)/(1+3) = 1/12
    r = ev.iptw_effect(_tiny(), "t", "y", ["x"], estimand="ATT", trim=None)
    row = r.estimate("iptw")
    assert row.mean_treated == pytest.approx(3 / 4, abs=1e-7)
    assert row.mean_control == pytest.approx(1 / 12, abs=1e-7)


def test_iptw_sandwich_matches_stratified_variance_for_saturated_model():
    # With one binary covariate the IPTW (ATE) estimator equals the standardised estimator
    # sum_x P(x) (ybar1x - ybar0x); its sandwich variance must match the delta-method variance
    # of that estimator (strata means and the stratum share).
    d = _tiny(reps=40)
    r = ev.iptw_effect(d, "t", "y", ["x"], trim=None)
    n = len(d)
    var = 0.0
    px = d["x"].mean()
    diffs = []
    for xv, share in ((0, 1 - px), (1, px)):
        s = d[d.x == xv]
        y1, y0 = s.y[s.t == 1], s.y[s.t == 0]
        v1 = y1.var(ddof=0) / len(y1)
        v0 = y0.var(ddof=0) / len(y0)
        var += share**2 * (v1 + v0)
        diffs.append(y1.mean() - y0.mean())
    var += px * (1 - px) / n * (diffs[1] - diffs[0]) ** 2
    assert r.estimate("iptw").se == pytest.approx(np.sqrt(var), rel=1e-4)


def test_iptw_recovers_simulated_effect_naive_biased():
    rng = np.random.default_rng(11)
    n = 6000
    x1 = rng.binomial(1, 0.4, n)
    x2 = rng.normal(size=n)
    t = rng.binomial(1, 1 / (1 + np.exp(-(-0.5 + 1.2 * x1 + 0.8 * x2))))
    lp = -1 + 1.0 * x1 + 0.7 * x2
    p0, p1 = 1 / (1 + np.exp(-lp)), 1 / (1 + np.exp(-(lp - 0.6)))
    y = rng.binomial(1, np.where(t == 1, p1, p0))
    truth = (p1 - p0).mean()
    df = pd.DataFrame({"t": t, "y": y, "x1": x1, "x2": x2})
    r = ev.iptw_effect(df, "t", "y", ["x1", "x2"], method="aipw", trim=None)
    for m in ("iptw", "aipw"):
        row = r.estimate(m)
        assert row.ci_lower < truth < row.ci_upper
    naive = r.estimate("naive")
    assert naive.ci_lower > truth  # the naive comparison is biased upwards here
    assert r.max_smd_after < 0.1 < r.balance["smd_before"].abs().max()


def test_iptw_bad_input_messages():
    d = _tiny()
    with pytest.raises(InputError, match="nope"):
        ev.iptw_effect(d, "t", "y", ["nope"])
    d2 = d.assign(t=[0, 1, 2, 0, 1, 1, 0, 0])
    with pytest.raises(InputError, match="must be 0/1"):
        ev.iptw_effect(d2, "t", "y", ["x"])
    d3 = d.assign(x=["a"] * 8)
    with pytest.raises(InputError, match="numeric"):
        ev.iptw_effect(d3, "t", "y", ["x"])
    with pytest.raises(InputError, match="ATE"):
        ev.iptw_effect(d, "t", "y", ["x"], estimand="ATT", method="aipw")


def test_iptw_missing_rows_dropped_and_counted():
    d = _tiny(reps=5).astype(float)
    d.loc[[0, 9], "x"] = np.nan
    r = ev.iptw_effect(d, "t", "y", ["x"], trim=None, missing="drop")
    assert r.n_dropped == 2 and r.n_used == 38
    assert any("2 row(s) with missing values dropped" in n for n in r.notes)
    with pytest.raises(InputError, match="2 row") as e:        # missing="raise" is the default
        ev.iptw_effect(d, "t", "y", ["x"])
    assert e.value.column == "x" and e.value.rows == [0, 9]


def test_iptw_plots_return_axes():
    r = ev.iptw_effect(_tiny(reps=5), "t", "y", ["x"])
    assert r.plot().get_xlabel().startswith("absolute")
    assert r.plot_propensity() is not None
    assert r.plot_effects() is not None


# ---------------------------------------------------------------------------------------------
# ITS: a noiseless series is recovered exactly
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seasonality", [False, True])
def test_its_noiseless_exact(seasonality):
    idx = pd.date_range("2008-01-01", "2015-12-01", freq="MS")
    t = np.arange(len(idx))
    post = (idx >= "2011-10-01").astype(int)
    t0 = int(post.argmax())
    season = 0.3 * np.cos(2 * np.pi * idx.month / 12) if seasonality else 0.0
    mu = np.exp(2.0 + 0.01 * t + np.log(1.8) * post - 0.015 * (t - t0) * post + season)
    r = ev.interrupted_time_series(pd.Series(mu, index=idx), "2011-10-01",
                                   seasonality=seasonality)
    assert r.level_change == pytest.approx(1.8, rel=1e-6)
    assert r.slope_change == pytest.approx(-0.015, abs=1e-8)
    s = r.summary.set_index("term")
    assert s.loc["pre_slope", "estimate"] == pytest.approx(0.01, abs=1e-8)
    # counterfactual = pre-trend continued (with the same seasonality)
    cf = np.exp(2.0 + 0.01 * t + season)
    np.testing.assert_allclose(r.data["counterfactual"], cf, rtol=1e-6)
    np.testing.assert_allclose(r.data["fitted"], mu, rtol=1e-6)
    assert r.plot().get_ylabel() == "count per period"


def test_its_negbin_covers_truth_on_simulated_series():
    rng = np.random.default_rng(5)
    idx = pd.date_range("2008-01-01", "2025-12-01", freq="MS")
    t = np.arange(len(idx))
    post = (idx >= "2011-10-01").astype(int)
    t0 = int(post.argmax())
    mu = np.exp(1.5 + 0.002 * t + np.log(2.5) * post + 0.004 * (t - t0) * post
                + 0.2 * np.sin(2 * np.pi * idx.month / 12))
    y = pd.Series(rng.negative_binomial(8, 8 / (8 + mu)), index=idx)
    r = ev.interrupted_time_series(y, "2011-10-01", family="negbin")
    s = r.summary.set_index("term")
    assert s.loc["level_change", "ci_lower"] < 2.5 < s.loc["level_change", "ci_upper"]
    assert s.loc["slope_change", "ci_lower"] < 0.004 < s.loc["slope_change", "ci_upper"]
    assert r.alpha_ == pytest.approx(1 / 8, abs=0.08)


def test_its_auto_uses_hac_under_autocorrelation():
    rng = np.random.default_rng(8)
    idx = pd.date_range("2008-01-01", "2025-12-01", freq="MS")
    n = len(idx)
    z = np.zeros(n)
    for i in range(1, n):  # AR(1) latent log-rate, rho = 0.8
        z[i] = 0.8 * z[i - 1] + rng.normal(0, 0.25)
    post = (idx >= "2011-10-01").astype(int)
    y = pd.Series(rng.poisson(np.exp(2.0 + 0.5 * post + z)), index=idx)
    auto = ev.interrupted_time_series(y, "2011-10-01")
    assert auto.cov_type == "hac" and auto.autocorrelation_p < 0.05
    assert auto.result_.cov_type == "HAC"
    # independent counts: the Ljung-Box pre-test keeps model-based errors most of the time
    # (false-positive rate near its 5% level: at most 4 of 20 series)
    chosen = []
    for seed in range(20):
        r2 = np.random.default_rng(100 + seed)
        y2 = pd.Series(r2.poisson(np.exp(2.0 + 0.5 * post)), index=idx)
        chosen.append(ev.interrupted_time_series(y2, "2011-10-01").cov_type)
    assert chosen.count("model") >= 16
    with pytest.raises(InputError, match="cov"):
        ev.interrupted_time_series(y2, "2011-10-01", cov="newey")


def test_its_bad_input():
    idx = pd.date_range("2020-01-01", periods=30, freq="MS")
    with pytest.raises(InputError, match="before and after"):
        ev.interrupted_time_series(pd.Series(1.0, index=idx), "2030-01-01")
    y = pd.Series(1.0, index=idx)
    y.iloc[3] = np.nan
    with pytest.raises(InputError, match="missing"):
        ev.interrupted_time_series(y, "2021-01-01")
    with pytest.raises(InputError, match="family"):
        ev.interrupted_time_series(pd.Series(1.0, index=idx), "2021-01-01", family="gamma")


def test_monthly_counts():
    times = pd.Series(pd.to_datetime(["2020-01-05", "2020-01-31", "2020-03-01"]))
    c = ev.monthly_counts(times, "2020-01-01", "2020-04-30")
    assert c.tolist() == [2, 0, 1, 0]
    assert c.index[0] == pd.Timestamp("2020-01-01")


# ---------------------------------------------------------------------------------------------
# pre/post
# ---------------------------------------------------------------------------------------------
def _balanced_attendance():
    # three sessions x three attendees, one curriculum; session mean gains 10, 15, 5
    gains = [[8, 10, 12], [13, 15, 17], [3, 5, 7]]
    rows = []
    for s, g in enumerate(gains):
        for a, gv in enumerate(g):
            rows.append({"session_id": f"s{s}", "attendee_id": f"a{s}{a}", "curriculum": "dmst_1hr",
                         "pre_score": 50.0, "post_score": 50.0 + gv})
    return pd.DataFrame(rows)


def test_pre_post_paired_hand_computed():
    a = pd.DataFrame({"session_id": ["s1", "s1", "s2", "s2"], "curriculum": ["x"] * 4,
                      "pre_score": [50, 60, 55, 65], "post_score": [60, 70, 60, 80]})
    r = ev.pre_post(a, mixed=False)
    row = r.summary.iloc[0]
    sd = np.sqrt(50 / 3)  # gains 10, 10, 5, 15
    half = stats.t.ppf(0.975, 3) * sd / 2
    assert row.estimate == pytest.approx(10.0)
    assert row.ci_lower == pytest.approx(10 - half)
    assert row.ci_upper == pytest.approx(10 + half)
    assert row.mean_pre == pytest.approx(57.5) and row.mean_post == pytest.approx(67.5)


def test_pre_post_mixed_balanced_anova_identity():
    # balanced one-way random-effects design: REML mean = grand mean,
    # SE = sqrt(MSB / N) with MSB = 3 * (0 + 25 + 25) / 2 = 75, N = 9
    r = ev.pre_post(_balanced_attendance())
    row = r.summary[r.summary.method == "mixed"].iloc[0]
    assert row.estimate == pytest.approx(10.0, abs=1e-6)
    assert row.se == pytest.approx(np.sqrt(75 / 9), rel=1e-3)
    # variance components: residual MSW = 4, session (75 - 4) / 3
    assert r.variance_components["residual_sd"] == pytest.approx(2.0, rel=1e-3)
    assert r.variance_components["session_sd"] == pytest.approx(np.sqrt(71 / 3), rel=1e-3)


def test_pre_post_merges_sessions_and_counts_incomplete():
    a = _balanced_attendance().drop(columns="curriculum")
    a.loc[0, "post_score"] = np.nan
    sessions = pd.DataFrame({"session_id": ["s0", "s1", "s2"], "curriculum": ["c"] * 3})
    r = ev.pre_post(a, sessions=sessions)
    assert r.n_incomplete == 1
    assert set(r.summary.group) == {"c"}
    with pytest.raises(InputError, match="sessions"):
        ev.pre_post(a)
    with pytest.raises(InputError, match="not in the sessions"):
        ev.pre_post(a, sessions=sessions.iloc[:2])
    assert r.plot() is not None


def _dense_reml_loglik(d, s2, t2):
    """Restricted log-likelihood (up to a constant) computed with dense matrices."""
    y = d["gain"].to_numpy(float)
    X = pd.get_dummies(d["group"]).to_numpy(float)
    Z = pd.get_dummies(d["session"]).to_numpy(float)
    V = s2 * np.eye(len(y)) + t2 * Z @ Z.T
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    b = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ b
    return -0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + r @ Vi @ r), b


def test_pre_post_exact_reml_matches_statsmodels_mixedlm():
    rng = np.random.default_rng(3)
    rows = []
    for s in range(30):
        cur = ["a", "b", "c"][s % 3]
        m = int(rng.integers(2, 12))
        u = rng.normal(0, 4)
        pre = rng.normal(50, 10, m)
        post = pre + {"a": 10, "b": 15, "c": 5}[cur] + u + rng.normal(0, 5, m)
        for i in range(m):
            rows.append({"session_id": f"s{s}", "curriculum": cur, "pre_score": pre[i],
                         "post_score": post[i]})
    a = pd.DataFrame(rows)
    fast = ev.pre_post(a)
    ref = ev.pre_post(a, engine="statsmodels")
    assert ref.mixed_result_.converged
    f = fast.summary[fast.summary.method == "mixed"].set_index("group")
    r = ref.summary[ref.summary.method == "mixed"].set_index("group")
    np.testing.assert_allclose(f["estimate"], r["estimate"], atol=1e-3)
    np.testing.assert_allclose(f["se"], r["se"], rtol=2e-3)
    vf, vr = fast.variance_components, ref.variance_components
    assert vf["session_sd"] == pytest.approx(vr["session_sd"], rel=2e-3)
    assert vf["residual_sd"] == pytest.approx(vr["residual_sd"], rel=1e-3)
    # the exact fit maximises the restricted likelihood (dense-matrix check)
    ll_f, b_f = _dense_reml_loglik(fast.data_, vf["residual_sd"] ** 2, vf["session_sd"] ** 2)
    ll_r, _ = _dense_reml_loglik(fast.data_, vr["residual_sd"] ** 2, vr["session_sd"] ** 2)
    assert ll_f >= ll_r - 1e-8
    np.testing.assert_allclose(b_f, f["estimate"].to_numpy(), atol=1e-8)
    # grouping that cuts across sessions falls back to MixedLM
    a["grp2"] = np.where(np.arange(len(a)) % 2 == 0, "x", "y")
    with pytest.raises(InputError, match="one group"):
        ev.pre_post(a, group="grp2", engine="reml")
    assert set(ev.pre_post(a, group="grp2").summary.group) == {"x", "y"}


# ---------------------------------------------------------------------------------------------
# service_frame on a hand-built bundle
# ---------------------------------------------------------------------------------------------
def _service_bundle():
    from dmst_eval.casedata import CaseData

    T = pd.Timestamp
    children = pd.DataFrame({
        "child_id": ["c1", "c2", "c3", "c4", "c5"],
        "sex": ["male", "female", "female", "female", "male"],
        "birth_date": [T("1994-06-01"), T("2000-06-15"), T("1999-01-01"), T("2001-01-01"),
                       T("2001-01-01")],
        "region": ["Region 2", "Region 1", "Region 2", "Region 1", "Region 1"],
        "prior_sexual_abuse": [False, True, None, False, False],
        "prior_runaway": [True, False, False, False, False],
        "substance_use": [False, None, True, False, False],
        "juvenile_justice": [False, False, False, False, False],
        "lgbtq": [None, False, False, False, False],
    })
    episodes = pd.DataFrame({
        "episode_id": ["e1", "e2", "e3", "e4", "e5", "e6", "e7"],
        "child_id": ["c1", "c1", "c2", "c2", "c3", "c4", "c5"],
        # c1's second episode is within a year but after his 18th birthday; c2's counts
        "began_at": [T("2012-02-20"), T("2012-08-01"), T("2012-02-25"), T("2012-09-01"),
                     T("2014-12-20"), T("2015-06-01"), T("2012-01-01")],
        "identified_at": [T("2012-03-01"), T("2012-08-05"), T("2012-03-01"), T("2012-09-05"),
                          T("2014-12-31"), T("2015-06-01"), T("2012-01-02")],
        # c4 has less than a year of follow-up; c5 was never confirmed
        "confirmed": [True, True, True, True, True, True, False],
    })
    placements = pd.DataFrame({
        "placement_id": ["p1", "p2", "p3"], "child_id": ["c1", "c2", "c2"],
        "setting": ["foster_family", "group_home", "foster_family"],
        "start": [T("2011-06-01"), T("2009-05-01"), T("2013-01-01")],
        "end": [pd.NaT, T("2011-01-01"), pd.NaT],
    })
    awol = pd.DataFrame({"awol_id": ["w1", "w2"], "child_id": ["c1", "c2"],
                         "start": [T("2012-05-01"), T("2010-12-01")],
                         "end": [T("2012-05-02"), T("2010-12-03")]})
    services = pd.DataFrame({
        "service_id": ["s1", "s2"], "child_id": ["c1", "c2"], "service": ["mentor", "mentor"],
        "referred_at": [T("2012-04-15"), T("2012-03-20")],   # c1: 45 days, too late
        "started_at": [T("2012-04-20"), T("2012-03-25")],
    })
    return CaseData.from_frames(children=children, episodes=episodes, placements=placements,
                                awol_episodes=awol, services=services,
                                meta={"study_start": "2010-01-01", "study_end": "2015-12-31"})


def test_service_frame_hand_built():
    T = pd.Timestamp
    f = ev.service_frame(_service_bundle())
    # ordered by first identification, then child id; c3 (the last victim) has exactly a year
    assert f["child_id"].tolist() == ["c1", "c2", "c3"]
    assert f["first_identified"].tolist() == [T("2012-03-01"), T("2012-03-01"), T("2014-12-31")]
    assert f["year"].tolist() == [2012, 2012, 2014]
    assert f["region"].tolist() == ["Region 2", "Region 1", "Region 2"]
    assert f["referred"].tolist() == [0.0, 1.0, 0.0]
    assert f["started"].tolist() == [0.0, 1.0, 0.0]
    assert f["revictimized_12m"].tolist() == [0.0, 1.0, 0.0]
    assert f["male"].tolist() == [1.0, 0.0, 0.0]
    assert f["congregate_before"].tolist() == [0.0, 1.0, 0.0]
    assert f["awol_before"].tolist() == [0.0, 1.0, 0.0]
    # age on the later of the study start and the first placement (whole days / 365.25)
    ages = [(T("2011-06-01") - T("1994-06-01")).days, (T("2010-01-01") - T("2000-06-15")).days,
            (T("2010-01-01") - T("1999-01-01")).days]
    np.testing.assert_array_equal(f["age_at_start"], np.array(ages) / 365.25)
    np.testing.assert_array_equal(f["substance_use"], [0.0, np.nan, 1.0])
    np.testing.assert_array_equal(f["lgbtq"], [np.nan, 0.0, 0.0])
    assert list(f.columns[:7]) == ["child_id", "region", "first_identified", "year", "referred",
                                   "started", "revictimized_12m"]
    assert set(ev.SERVICE_COVARIATES) <= set(f.columns)
    # a region keeps its own children
    assert ev.service_frame(_service_bundle(), region="Region 1")["child_id"].tolist() == ["c2"]


def test_service_frame_without_victims_is_empty():
    cd = _service_bundle()
    full = ev.service_frame(cd)
    cd.tables["episodes"] = cd.episodes.assign(confirmed=False)
    f = ev.service_frame(cd)
    assert len(f) == 0
    assert list(f.columns) == list(full.columns)
    assert (f.dtypes == full.dtypes).all()


# ---------------------------------------------------------------------------------------------
# ITS offset: aligned by date, arrays in the series' order, shuffled input gives the same fit
# ---------------------------------------------------------------------------------------------
def _its_with_exposure():
    idx = pd.date_range("2008-01-01", "2015-12-01", freq="MS")
    t = np.arange(len(idx))
    post = (idx >= "2011-10-01").astype(int)
    t0 = int(post.argmax())
    pop = 50_000 + 400 * t + 3_000 * np.sin(t / 5.0)           # exposure that varies
    mu = pop * np.exp(-9.0 + 0.01 * t + np.log(1.8) * post - 0.015 * (t - t0) * post)
    return idx, pd.Series(mu, index=idx), pd.Series(np.log(pop), index=idx)


def _check_truth(r, idx_sorted_mu):
    assert r.level_change == pytest.approx(1.8, rel=1e-6)
    assert r.slope_change == pytest.approx(-0.015, abs=1e-8)
    s = r.summary.set_index("term")
    assert s.loc["pre_slope", "estimate"] == pytest.approx(0.01, abs=1e-8)
    np.testing.assert_allclose(r.data["fitted"].to_numpy(), idx_sorted_mu, rtol=1e-6)


def test_its_offset_aligned_by_date_and_shuffled_input_gives_same_fit():
    idx, y, off = _its_with_exposure()
    base = ev.interrupted_time_series(y, "2011-10-01", offset=off)
    _check_truth(base, y.to_numpy())
    perm = np.random.default_rng(3).permutation(len(y))
    # shuffled series, offset in date order (aligned by date)
    r1 = ev.interrupted_time_series(y.iloc[perm], "2011-10-01", offset=off)
    _check_truth(r1, y.to_numpy())
    # both shuffled, differently
    perm2 = np.random.default_rng(4).permutation(len(y))
    r2 = ev.interrupted_time_series(y.iloc[perm], "2011-10-01", offset=off.iloc[perm2])
    _check_truth(r2, y.to_numpy())
    np.testing.assert_allclose(r2.summary["estimate"], base.summary["estimate"], rtol=1e-10)


def test_its_offset_as_array_follows_the_series_order():
    idx, y, off = _its_with_exposure()
    _check_truth(ev.interrupted_time_series(y, "2011-10-01", offset=off.to_numpy()),
                 y.to_numpy())
    _check_truth(ev.interrupted_time_series(y, "2011-10-01",
                                            offset=pd.Series(off.to_numpy())), y.to_numpy())
    perm = np.random.default_rng(5).permutation(len(y))
    _check_truth(ev.interrupted_time_series(y.iloc[perm], "2011-10-01",
                                            offset=list(off.to_numpy()[perm])), y.to_numpy())
    with pytest.raises(InputError, match="offset has 10 value"):
        ev.interrupted_time_series(y, "2011-10-01", offset=np.zeros(10))
    with pytest.raises(InputError, match="no finite value for 1 period"):
        ev.interrupted_time_series(y, "2011-10-01", offset=off.iloc[1:])


# ---------------------------------------------------------------------------------------------
# IPTW: separation and positivity violations raise, naming the covariate, with no leaked warnings
# ---------------------------------------------------------------------------------------------
def _confounded(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.binomial(1, 0.5, n)
    z = rng.normal(size=n)
    t = rng.binomial(1, 0.5, n)
    return pd.DataFrame({"x": x, "z": z, "t": t, "y": rng.binomial(1, 0.3, n)}), rng


def _no_warnings(fn):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    assert [str(w.message) for w in caught] == []


def test_iptw_raises_on_complete_separation_naming_the_covariate():
    df, _ = _confounded()
    df["t"] = df["x"]                    # x predicts treatment perfectly
    def run():
        with pytest.raises(InputError, match=r"perfectly predicted by 'x'") as exc:
            ev.iptw_effect(df, "t", "y", ["z", "x"])
        assert exc.value.column == "x"
        assert isinstance(exc.value, InputError)
    _no_warnings(run)


def test_iptw_raises_on_quasi_separation_and_on_a_combination():
    df, rng = _confounded()
    # every child with x = 1 was treated; some with x = 0 too (quasi-complete separation)
    df["t"] = np.where(df["x"] == 1, 1, rng.binomial(1, 0.3, len(df)))
    def run():
        with pytest.raises(InputError, match="'x'"):
            ev.iptw_effect(df, "t", "y", ["z", "x"])
    _no_warnings(run)
    # neither a nor b separates alone, a + b > 1 does
    a, b = rng.normal(size=len(df)), rng.normal(size=len(df))
    df2 = df.assign(a=a, b=b, t=(a + b > 0.3).astype(int))
    with pytest.raises(InputError, match=r"'a', 'b'"):
        ev.iptw_effect(df2, "t", "y", ["a", "b", "x"])


def test_iptw_raises_on_near_positivity_violation():
    rng = np.random.default_rng(2)
    n = 3000
    x = rng.normal(size=n)
    x[:3] = [9.0, 9.5, 10.0]             # three children far out: propensity ~ 1 - 1e-8
    t = rng.binomial(1, 1 / (1 + np.exp(-2 * x)))
    t[:3] = 1
    t[3] = 0 if x[3] < 9 else t[3]
    df = pd.DataFrame({"x": x, "w": rng.normal(size=n), "t": t, "y": rng.binomial(1, 0.3, n)})
    with pytest.raises(InputError, match=r"within 1e-06 of 0 or 1, mostly because of 'x'"):
        ev.iptw_effect(df, "t", "y", ["w", "x"])
