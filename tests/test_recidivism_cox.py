"""Cox engine of dmst_eval.recidivism against R's survival package (bladder2) and hand checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmst_eval.errors import InputError
from dmst_eval import recidivism as rc

DATA = Path(__file__).parent / "data" / "bladder2.csv"
COV = ["rx", "size", "number"]


@pytest.fixture(scope="module")
def bladder2() -> pd.DataFrame:
    return pd.read_csv(DATA)


def test_bladder2_shape(bladder2):
    assert len(bladder2) == 178
    assert bladder2["id"].nunique() == 85
    assert bladder2["event"].sum() == 112


def test_andersen_gill_reproduces_r(bladder2):
    """coxph(Surv(start, stop, event) ~ rx + size + number, cluster = id, ties = "breslow")."""
    res = rc.fit_cox(bladder2, "stop", "event", COV, ties="breslow", entry="start", cluster="id")
    s = res.summary
    r_coef = {"rx": -0.45979, "size": -0.04256, "number": 0.17164}
    r_naive = {"rx": 0.19996, "size": 0.06903, "number": 0.04733}
    r_robust = {"rx": 0.25801, "size": 0.07555, "number": 0.06131}
    for term in COV:
        assert s.loc[term, "coef"] == pytest.approx(r_coef[term], abs=5e-5)
        assert s.loc[term, "naive_se"] == pytest.approx(r_naive[term], abs=5e-5)
        assert s.loc[term, "robust_se"] == pytest.approx(r_robust[term], abs=5e-5)
        assert s.loc[term, "se"] == s.loc[term, "robust_se"]
    assert res.n_clusters == 85
    assert res.n_events == 112
    assert s.loc["rx", "hazard_ratio"] == pytest.approx(np.exp(-0.45979), abs=1e-4)
    # CI and p-value use the robust se
    z = -0.45979 / 0.25801
    assert s.loc["rx", "p_value"] == pytest.approx(2 * (1 - __import__("scipy").stats.norm.cdf(abs(z))),
                                                   abs=1e-4)
    assert s.loc["rx", "ci_upper"] == pytest.approx(np.exp(-0.45979 + 1.959964 * 0.25801), abs=1e-3)


def test_risk_set_is_open_on_the_left(bladder2):
    """Counting a row as at risk when start == t (closed interval) changes the answer."""
    res = rc.fit_cox(bladder2, "stop", "event", COV, ties="breslow", entry="start")
    shifted = bladder2.assign(start=bladder2["start"] - 1e-6)   # now start < t for t == start
    res2 = rc.fit_cox(shifted, "stop", "event", COV, ties="breslow", entry="start")
    assert abs(res.params_["rx"] - res2.params_["rx"]) > 1e-3


def test_pwp_gap_time_second_interval(bladder2):
    """coxph(Surv(stop - start, event) ~ rx + size + number, subset = enum == 2, breslow)."""
    df = bladder2.assign(gap=bladder2["stop"] - bladder2["start"])
    res = rc.fit_cox(df[df["enum"] == 2], "gap", "event", COV, ties="breslow")
    s = res.summary
    assert s.loc["rx", "coef"] == pytest.approx(-0.259112, abs=5e-6)
    assert s.loc["rx", "se"] == pytest.approx(0.405110, abs=5e-6)
    assert s.loc["size", "coef"] == pytest.approx(-0.116363, abs=5e-6)
    assert s.loc["number", "coef"] == pytest.approx(-0.005709, abs=5e-6)


def test_pwp_stratified_equals_separate_fits_when_interacted(bladder2):
    """A PWP gap-time model stratified by event number shares coefficients across strata; its
    score is the sum of the per-stratum scores, so with one stratum it equals the subset fit."""
    df = bladder2.assign(gap=bladder2["stop"] - bladder2["start"])
    sub = df[df["enum"] == 2]
    strat = rc.fit_cox(sub, "gap", "event", COV, ties="breslow", strata="enum")
    plain = rc.fit_cox(sub, "gap", "event", COV, ties="breslow")
    np.testing.assert_allclose(strat.params_, plain.params_, atol=1e-10)
    full = rc.fit_cox(df, "gap", "event", COV, ties="breslow", strata="enum", cluster="id")
    assert full.method.startswith("Stratified") or "stratified" in full.method
    assert "robust_se" in full.summary


def test_wlw_marginal_rx_by_event_number(bladder2):
    wlw = rc.marginal_frame(bladder2, id="id", start="start", stop="stop", event="event",
                            max_events=4, keep=COV)
    expected = [-0.5176, -0.6194, -0.6999, -0.6508]
    for k, want in zip(range(1, 5), expected):
        sub = wlw[wlw["event_number"] == k]
        res = rc.fit_cox(sub, "time", "event", COV, ties="breslow")
        assert res.params_["rx"] == pytest.approx(want, abs=5e-5)


def test_efron_equals_breslow_without_ties():
    rng = np.random.default_rng(1)
    n = 200
    x = rng.normal(size=n)
    t = rng.exponential(1 / np.exp(0.5 * x))
    df = pd.DataFrame({"t": t, "e": (rng.uniform(size=n) < 0.8).astype(int), "x": x})
    a = rc.fit_cox(df, "t", "e", ["x"], ties="efron")
    b = rc.fit_cox(df, "t", "e", ["x"], ties="breslow")
    assert a.params_["x"] == pytest.approx(b.params_["x"], abs=1e-10)


def test_efron_hand_computed_loglik():
    """Two tied deaths among three at risk, one covariate: Efron log-likelihood by hand."""
    df = pd.DataFrame({"t": [1.0, 1.0, 2.0], "e": [1, 1, 0], "x": [1.0, 0.0, 0.0]})
    res = rc.fit_cox(df, "t", "e", ["x"], ties="efron")
    b = res.params_["x"]
    r = np.exp(b)
    ll = b - np.log(r + 2) - np.log(0.5 * (r + 1) + 1)
    assert res.loglik == pytest.approx(ll, abs=1e-10)
    # the MLE solves the score equation: d/db [b - log(r+2) - log((r+3)/2)] = 0
    score = 1 - r / (r + 2) - r / (r + 3)
    assert score == pytest.approx(0, abs=1e-8)


def test_robust_se_efron_approximates_jackknife():
    """dfbeta (score residual x inverse information) ~ leave-one-cluster-out change."""
    rng = np.random.default_rng(7)
    n = 120
    x = rng.binomial(1, 0.5, n)
    t = np.ceil(rng.exponential(10 / np.exp(0.6 * x)))     # heavy ties
    df = pd.DataFrame({"t": t, "e": 1, "x": x, "id": np.arange(n)})
    full = rc.fit_cox(df, "t", "e", ["x"], ties="efron", cluster="id")
    dfb = full.score_residuals_ @ full.naive_var_
    for i in (0, 3, 17):
        loo = rc.fit_cox(df.drop(index=i), "t", "e", ["x"], ties="efron")
        assert dfb[i, 0] == pytest.approx(full.params_["x"] - loo.params_["x"], rel=0.1, abs=2e-3)
    assert np.abs(full.score_residuals_.sum(axis=0)).max() < 1e-8


def test_ph_test_flags_non_proportional_hazards():
    rng = np.random.default_rng(3)
    n = 600
    x = rng.binomial(1, 0.5, n)
    # x doubles the hazard early (t < 1) and halves it late: crossing hazards
    t_early = rng.exponential(1 / np.where(x == 1, 2.0, 1.0))
    t_late = 1 + rng.exponential(1 / np.where(x == 1, 0.3, 1.0))
    t = np.where(t_early < 1, t_early, t_late)
    df = pd.DataFrame({"t": t, "e": 1, "x": x, "z": rng.normal(size=n)})
    res = rc.fit_cox(df, "t", "e", ["x", "z"])
    assert res.ph_test.loc["x", "p_value"] < 0.001
    assert res.ph_test.loc["z", "p_value"] > 0.01
    assert set(res.ph_test.index) == {"x", "z", "GLOBAL"}


def test_recovers_hazard_ratio_counting_process():
    """Andersen-Gill on simulated recurrent events with a time-varying covariate."""
    rng = np.random.default_rng(11)
    df = rc.simulate_recurrent(4000, {"x": 0.7, "tv": -0.5}, seed=rng)
    res = rc.fit_cox(df, "stop", "event", ["x", "tv"], entry="start", cluster="id")
    s = res.summary
    assert s.loc["x", "ci_lower"] < np.exp(0.7) < s.loc["x", "ci_upper"]
    assert s.loc["tv", "ci_lower"] < np.exp(-0.5) < s.loc["tv", "ci_upper"]
    assert s.loc["x", "se"] > s.loc["x", "naive_se"] * 0.9


@pytest.mark.parametrize("bad, msg", [
    (dict(covariates=["nope"]), r"df\.nope: column not found"),
    (dict(ties="exact"), "ties="),
    (dict(entry="stop"), "<="),
])
def test_bad_input_clear_errors(bladder2, bad, msg):
    kw = dict(df=bladder2, duration="stop", event="event", covariates=COV, ties="breslow")
    kw.update(bad)
    with pytest.raises(InputError, match=msg):
        rc.fit_cox(**kw)


def test_missing_values_raise_or_drop(bladder2):
    df = bladder2.astype({"size": float})
    df.loc[[3, 10], "size"] = np.nan
    with pytest.raises(InputError, match="2 row"):
        rc.fit_cox(df, "stop", "event", COV, entry="start")
    res = rc.fit_cox(df, "stop", "event", COV, entry="start", missing="drop")
    assert res.n_rows == 176


def test_wlw_stratified_robust_reproduces_r(bladder2):
    """coxph(Surv(stop, event) ~ (rx + size + number) * strata(enum) + cluster(id), bladder,
    method = "breslow") -- robust se and the rx variance matrix of Wei et al. (eqn 3.2), from
    survival's tests/bladder.Rout.save."""
    w = rc.marginal_frame(bladder2, id="id", max_events=4, keep=COV)
    cols = list(COV)
    for v in COV:
        for k in (2, 3, 4):
            w[f"{v}:{k}"] = w[v] * (w["event_number"] == k)
            cols.append(f"{v}:{k}")
    res = rc.fit_cox(w, "time", "event", cols, ties="breslow", strata="event_number",
                     cluster="id")
    s = res.summary
    r_robust = {"rx": 0.3075, "size": 0.0853, "number": 0.0721, "rx:2": 0.3265,
                "rx:3": 0.3916, "rx:4": 0.4968, "size:4": 0.1856, "number:4": 0.1175}
    for term, want in r_robust.items():
        assert s.loc[term, "robust_se"] == pytest.approx(want, abs=5e-5)
    assert s.loc["rx:2", "naive_se"] == pytest.approx(0.504, abs=5e-4)
    C = np.eye(4)
    C[0, :] = 1
    idx = [cols.index(c) for c in ["rx", "rx:2", "rx:3", "rx:4"]]
    V = C.T @ res.var_[np.ix_(idx, idx)] @ C
    np.testing.assert_allclose(np.diag(V), [0.09455501, 0.13242834, 0.1723588, 0.2398112],
                               atol=5e-8)
    assert V[0, 3] == pytest.approx(0.0437777, abs=5e-8)


def test_prentice_total_time_second_interval(bladder2):
    """fit2pa: coxph(Surv(stop, event) ~ rx + size + number, subset = enum == 2, breslow)."""
    res = rc.fit_cox(bladder2[bladder2["enum"] == 2], "stop", "event", COV, ties="breslow")
    assert res.summary.loc["rx", "coef"] == pytest.approx(-0.42421, abs=5e-6)
    assert res.summary.loc["rx", "se"] == pytest.approx(0.4022, abs=5e-5)
    assert res.summary.loc["number", "coef"] == pytest.approx(0.00199, abs=5e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-50, 50), ties=st.sampled_from(["efron",
                                                                                     "breslow"]))
def test_invariant_to_row_order_and_time_shift(bladder2, seed, shift, ties):
    """Permuting rows or shifting all times by a constant leaves the fit unchanged."""
    base = rc.fit_cox(bladder2, "stop", "event", COV, ties=ties, entry="start", cluster="id")
    perm = bladder2.sample(frac=1.0, random_state=seed)
    perm = perm.assign(start=perm["start"] + shift, stop=perm["stop"] + shift)
    other = rc.fit_cox(perm, "stop", "event", COV, ties=ties, entry="start", cluster="id")
    np.testing.assert_allclose(other.params_, base.params_, atol=1e-9)
    np.testing.assert_allclose(other.summary["robust_se"], base.summary["robust_se"], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Proportional-hazards test: the score test of R survival >= 3.0 cox.zph
# ---------------------------------------------------------------------------------------------
def _test1():
    # Therneau & Grambsch appendix data set 1 (survival's tests), without the row of NA status
    return pd.DataFrame({"time": [9, 1, 1, 6, 6, 8], "status": [1, 1, 0, 1, 1, 0],
                         "x": [0, 1, 1, 1, 0, 0]})


def test_ph_score_test_matches_hand_computation_breslow():
    # exp(beta_hat) = r = (3 + sqrt(33)) / 2; per death (times 1, 6, 6, 9) the Schoenfeld
    # residuals U and information contributions; g(t) = t (identity transform)
    r = (3 + np.sqrt(33)) / 2
    U = np.array([1 / (r + 1), 3 / (r + 3), -r / (r + 3), 0.0])
    im = np.array([r / (r + 1) ** 2, 3 * r / (r + 3) ** 2, 3 * r / (r + 3) ** 2, 0.0])
    g = np.array([1.0, 6.0, 6.0, 9.0])
    u2 = np.array([U.sum(), (g * U).sum()])
    i2 = np.array([[im.sum(), (g * im).sum()], [(g * im).sum(), (g * g * im).sum()]])
    want = float(u2 @ np.linalg.solve(i2, u2))
    res = rc.fit_cox(_test1(), "time", "status", ["x"], ties="breslow", ph_transform="identity")
    assert np.log(r) == pytest.approx(res.params_["x"], abs=1e-8)
    assert res.ph_test.loc["x", "chi2"] == pytest.approx(want, rel=1e-8)
    assert res.ph_test.loc["GLOBAL", "chi2"] == pytest.approx(want, rel=1e-8)
    # the survival 2.x approximation is a different number, available on request
    old = rc.fit_cox(_test1(), "time", "status", ["x"], ties="breslow",
                     ph_transform="identity", ph_method="approx")
    assert abs(old.ph_test.loc["x", "chi2"] - want) > 1e-3


def _efron_loglik(beta, x, gx_fun, time, status):
    """Brute-force Efron log partial likelihood of h(t) = exp(b0 x + b1 g(t) x), loops."""
    ll = 0.0
    for t in np.unique(time[status == 1]):
        risk = time >= t
        dead = (time == t) & (status == 1)
        eta = beta[0] * x + beta[1] * gx_fun(t) * x
        rr = np.exp(eta)
        d = dead.sum()
        s_all, s_dead = rr[risk].sum(), rr[dead].sum()
        ll += eta[dead].sum() - sum(np.log(s_all - k / d * s_dead) for k in range(d))
    return ll


def test_ph_score_test_efron_equals_brute_force_extended_model():
    rng = np.random.default_rng(4)
    n = 80
    x = rng.normal(size=n)
    time = rng.integers(1, 12, n).astype(float)          # heavy ties
    status = rng.binomial(1, 0.8, n)
    df = pd.DataFrame({"time": time, "status": status, "x": x})
    res = rc.fit_cox(df, "time", "status", ["x"], ties="efron", ph_transform="log")
    b = res.params_["x"]
    lg = np.log(time[status == 1])
    gfun = lambda t: np.log(t) - lg.mean()              # noqa: E731  (centred as R does)
    f = lambda v: _efron_loglik(v, x, gfun, time, status)  # noqa: E731
    h = 1e-4
    u = np.array([(f([b + h, 0]) - f([b - h, 0])) / (2 * h),
                  (f([b, h]) - f([b, -h])) / (2 * h)])
    H = np.empty((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            v = np.array([b, 0.0])
            H[i, j] = (f(v + ei + ej) - f(v + ei - ej) - f(v - ei + ej) + f(v - ei - ej)) / (4 * h * h)
    want = float(u @ np.linalg.solve(-H, u))
    assert abs(u[0]) < 1e-6                               # beta_hat is the MLE
    assert res.ph_test.loc["x", "chi2"] == pytest.approx(want, rel=1e-5)


def test_ph_tests_on_rossi():
    from lifelines import CoxPHFitter
    from lifelines.datasets import load_rossi
    from lifelines.statistics import proportional_hazard_test

    d = load_rossi()
    cov = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
    # the old approximation is what lifelines computes (same transforms: identity, log)
    cph = CoxPHFitter().fit(d, "week", "arrest")
    for tt in ("identity", "log"):
        ref = proportional_hazard_test(cph, d, time_transform=tt).summary["test_statistic"]
        old = rc.fit_cox(d, "week", "arrest", cov, ph_method="approx", ph_transform=tt)
        np.testing.assert_allclose(old.ph_test.loc[cov, "chi2"], ref[cov], rtol=1e-4)
    # the default score test (R survival >= 3.0): age about 6.0 rather than 11.3
    new = rc.fit_cox(d, "week", "arrest", cov)
    old = rc.fit_cox(d, "week", "arrest", cov, ph_method="approx")
    assert new.ph_test.loc["age", "chi2"] == pytest.approx(5.97, abs=0.05)
    assert old.ph_test.loc["age", "chi2"] == pytest.approx(11.28, abs=0.05)


def test_lazy_ph_test_and_residuals_survive_pickling(bladder2):
    import pickle

    res = rc.fit_cox(bladder2, "stop", "event", COV, entry="start")
    again = pickle.loads(pickle.dumps(res))          # values, not functions, cross processes
    pd.testing.assert_frame_equal(again.ph_test, res.ph_test)
    np.testing.assert_array_equal(again.score_residuals_, res.score_residuals_)
    assert np.abs(res.score_residuals_.sum(axis=0)).max() < 1e-8   # score = 0 at the MLE
    with pytest.raises(InputError, match="ph_method"):
        rc.fit_cox(bladder2, "stop", "event", COV, ph_method="zph")


def test_robust_without_cluster_is_per_row_sandwich(bladder2):
    a = rc.fit_cox(bladder2, "stop", "event", COV, entry="start", robust=True)
    b = rc.fit_cox(bladder2.assign(row=np.arange(len(bladder2))), "stop", "event", COV,
                   entry="start", cluster="row")
    np.testing.assert_allclose(a.summary["robust_se"], b.summary["robust_se"], rtol=1e-12)
    assert a.n_clusters == len(bladder2)
    c = rc.fit_cox(bladder2, "stop", "event", COV, entry="start", cluster="id", robust=False)
    assert "robust_se" not in c.summary
    np.testing.assert_allclose(c.summary["se"], c.summary["naive_se"])


def test_baseline_hazard_increments_breslow_by_hand():
    # no ties, one binary covariate: increment at each event time = 1 / sum_{at risk} exp(b x_c)
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6], "e": [1, 1, 0, 1, 1, 0],
                       "x": [1, 0, 1, 0, 1, 0]})
    res = rc.fit_cox(df, "t", "e", ["x"], ties="breslow")
    b = res.params_["x"]
    xc = df["x"] - df["x"].mean()
    want = [1 / np.exp(b * xc[df["t"] >= t]).sum() for t in (1, 2, 4, 5)]
    np.testing.assert_allclose(res.baseline_hazard_["hazard"], want, rtol=1e-10)
