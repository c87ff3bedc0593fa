"""Risk models: exact small cases, published Firth results, separation, cluster-robust errors."""
from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from dmst_eval.errors import InputError
from dmst_eval import risk

Z = stats.norm.ppf(0.975)


def _expand(patterns: str, names: list[str]) -> pd.DataFrame:
    """'0101:3 1100:2' -> rows (pattern digits are the columns ``names``, count after ':')."""
    rows = []
    for tok in patterns.split():
        pat, n = tok.split(":")
        rows += [[int(c) for c in pat]] * int(n)
    return pd.DataFrame(rows, columns=names)


# sex2 (logistf): urinary tract infection in 239 women, Heinze & Schemper (2002); pattern counts.
SEX2 = _expand(
    "0000010:1 0001000:2 0001010:1 0001100:8 0001110:18 0010000:42 0010010:1 0011000:1 "
    "0011100:5 0011110:6 0101100:2 0101110:4 0110000:14 0110010:1 0111000:1 0111110:2 1000010:1 "
    "1001000:14 1001010:3 1001100:10 1001110:12 1001111:1 1010000:44 1010001:3 1011000:15 "
    "1011001:1 1011010:2 1011100:7 1011110:3 1101000:2 1101010:1 1101011:1 1101100:1 1101111:1 "
    "1110000:5 1111000:3",
    ["case", "age", "oc", "vic", "vicl", "vis", "dia"])

# endometrial cancer grade (Heinze & Schemper 2002): NV quasi-completely separates HG.
_ENDO = """0 13 1.64 0|0 16 2.26 0|0 8 3.14 0|0 34 2.68 0|0 20 1.28 0|0 5 2.31 0|0 17 1.8 0|
0 10 1.68 0|0 26 1.56 0|0 17 2.31 0|0 8 2.01 0|0 7 1.89 0|0 20 3.15 0|0 10 1.23 0|0 18 1.27 0|0 16 1.76 0|
0 18 2 0|0 8 2.64 1|0 29 0.88 1|0 12 1.27 1|0 20 1.37 1|1 38 0.97 1|1 22 1.14 1|1 7 0.88 1|
1 25 0.91 1|1 15 0.58 1|0 7 0.97 1|0 28 1.5 0|0 11 1.33 0|0 19 2.37 0|0 10 1.82 0|0 10 3.13 0|
0 18 1.31 0|0 14 1.92 0|0 21 1.64 0|0 11 2.01 0|0 17 1.88 0|0 25 1.93 0|0 16 2.11 0|0 19 1.29 0|
0 15 1.72 0|0 33 0.75 0|0 24 1.92 0|0 48 1.84 1|0 12 1.11 1|0 19 1.61 1|0 2 1.18 1|1 22 1.44 1|
1 40 1.18 1|1 5 0.93 1|1 0 1.17 1|0 21 1.19 1|0 15 1.06 1|0 29 2.02 0|0 15 2.29 0|0 12 2.33 0|
0 3 2.9 0|0 20 1.7 0|0 23 1.41 0|0 12 2.25 0|0 22 1.54 0|0 42 1.97 0|0 15 1.75 0|0 13 2.16 0|
0 14 2.57 0|0 19 1.37 0|0 12 3.61 0|0 13 2.04 0|0 10 2.17 0|0 12 1.69 1|1 49 0.27 1|0 6 1.84 1|
0 5 1.3 1|0 17 0.96 1|1 11 1.01 1|1 21 0.98 1|0 5 0.35 1|1 19 1.02 1|0 33 0.85 1"""
ENDO = pd.DataFrame([list(map(float, r.split())) for r in _ENDO.replace("\n", "").split("|")],
                    columns=["NV", "PI", "EH", "HG"])


def _or(m, term):
    return m.odds_ratios.set_index("term").loc[term]


# ----------------------------------------------------------------------------- published
def test_firth_reproduces_logistf_sex2():
    """Coefficients, profile CIs and PLR p-values of logistf::logistf on sex2."""
    assert len(SEX2) == 239 and SEX2.case.sum() == 130
    m = risk.fit_risk_model(SEX2, "case", ["age", "oc", "vic", "vicl", "vis", "dia"],
                            method="firth")
    coef = m.params_[["intercept", "age", "oc", "vic", "vicl", "vis", "dia"]].to_numpy()
    ref = [0.12025405, -1.10598131, -0.06881673, 2.26887464, -2.11140817, -0.78831694,
           3.09601166]
    np.testing.assert_allclose(coef, ref, rtol=1e-5, atol=1e-6)
    ci = np.log(m.odds_ratios.set_index("term").loc[
        ["age", "oc", "vic", "vicl", "vis", "dia", "intercept"], ["ci_lower", "ci_upper"]])
    ref_ci = [[-1.9737884, -0.30742514], [-0.9414363, 0.78920202], [1.2730216, 3.43543273],
              [-3.2608611, -1.11773495], [-1.6080879, 0.01518468], [0.7745682, 8.03029352],
              [-0.8185591, 1.07315122]]
    np.testing.assert_allclose(ci.to_numpy(), ref_ci, rtol=1e-4, atol=1e-5)
    # penalised LR p-values agree with the profile CIs: p < 0.05 exactly when 0 is outside
    or_ = m.odds_ratios.set_index("term")
    outside = (or_.ci_lower > 1) | (or_.ci_upper < 1)
    assert ((or_.p_value < 0.05) == outside).all()
    assert or_.loc["vic", "p_value"] < 1e-4 and or_.loc["oc", "p_value"] > 0.5
    np.testing.assert_allclose(m.bse_["age"], 0.42366, rtol=1e-4)


def test_firth_reproduces_endometrial_under_separation():
    """Heinze & Schemper (2002) endometrial data: NV finite under Firth (logistf values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Firth must not warn
        m = risk.fit_risk_model(ENDO, "HG", ["NV", "PI", "EH"], method="firth")
    np.testing.assert_allclose(m.params_[["intercept", "NV", "PI", "EH"]],
                               [3.77455951, 2.92927330, -0.03475175, -2.60416387], rtol=1e-5)
    ci = np.log(m.odds_ratios.set_index("term").loc[["NV", "PI", "EH", "intercept"],
                                                    ["ci_lower", "ci_upper"]].to_numpy())
    np.testing.assert_allclose(ci, [[0.6097244, 7.85463171], [-0.1244587, 0.04045547],
                                    [-4.3651832, -1.23272106], [1.0825371, 7.20928050]],
                               rtol=1e-4)
    assert m.separation == ["NV"]


def test_logit_warns_on_separation_and_names_term():
    with pytest.warns(risk.SeparationWarning, match=r"NV.*method='firth'"):
        m = risk.fit_risk_model(ENDO, "HG", ["NV", "PI", "EH"])
    assert m.separation == ["NV"]
    # no warning when nothing separates, whatever the scale of a covariate
    with warnings.catch_warnings():
        warnings.simplefilter("error", risk.SeparationWarning)
        risk.fit_risk_model(ENDO, "HG", ["PI", "EH"])
        tiny = ENDO.assign(EH=ENDO.EH / 1000)  # coefficient about -2900 per unit
        m2 = risk.fit_risk_model(tiny, "HG", ["PI", "EH"])
    assert m2.separation == [] and m2.params_["EH"] < -1000


# ------------------------------------------------------------------------- exact 2 x 2
def _table_frame(a, b, c, d):
    """a: exposed victims, b: exposed non-victims, c: unexposed victims, d: unexposed non."""
    x = np.r_[np.ones(a + b), np.zeros(c + d)]
    y = np.r_[np.ones(a), np.zeros(b), np.ones(c), np.zeros(d)]
    return pd.DataFrame({"x": x.astype(int), "y": y.astype(int)})


@pytest.mark.parametrize("a,b,c,d", [(12, 30, 8, 150), (3, 97, 5, 895), (40, 10, 25, 25)])
def test_logit_2x2_equals_ad_bc_and_woolf(a, b, c, d):
    m = risk.fit_risk_model(_table_frame(a, b, c, d), "y", ["x"])
    r = _or(m, "x")
    orr = a * d / (b * c)
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert r.odds_ratio == pytest.approx(orr, rel=1e-7)
    assert r.ci_lower == pytest.approx(orr * np.exp(-Z * se), rel=1e-6)
    assert r.ci_upper == pytest.approx(orr * np.exp(Z * se), rel=1e-6)
    assert r.p_value == pytest.approx(2 * stats.norm.sf(np.log(orr) / se), rel=1e-6)
    assert _or(m, "intercept").odds_ratio == pytest.approx(c / d, rel=1e-7)


@pytest.mark.parametrize("a,b,c,d", [(6, 0, 10, 184), (0, 20, 9, 171), (12, 30, 8, 150)])
def test_firth_2x2_is_haldane_corrected_or(a, b, c, d):
    """Saturated binary model: Firth's estimate is the OR with 0.5 added to each cell."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", risk.SeparationWarning)
        m = risk.fit_risk_model(_table_frame(a, b, c, d), "y", ["x"], method="firth")
    r = _or(m, "x")
    assert r.odds_ratio == pytest.approx((a + .5) * (d + .5) / ((b + .5) * (c + .5)), rel=1e-7)
    assert np.isfinite(r.ci_lower) and np.isfinite(r.ci_upper)
    assert r.ci_lower < r.odds_ratio < r.ci_upper


def test_firth_converges_to_mle_in_large_samples():
    rng = np.random.default_rng(11)
    n = 30000
    df = pd.DataFrame({"a": rng.integers(0, 2, n), "b": rng.normal(size=n)})
    df["y"] = (rng.random(n) < special.expit(-1 + 0.7 * df.a - 0.4 * df.b)).astype(int)
    ml = risk.fit_risk_model(df, "y", ["a", "b"])
    fi = risk.fit_risk_model(df, "y", ["a", "b"], method="firth")
    np.testing.assert_allclose(fi.params_, ml.params_, atol=2e-3)
    fw = risk.fit_risk_model(df, "y", ["a", "b"], method="firth", pl=False)
    np.testing.assert_allclose(fw.params_, fi.params_, rtol=1e-6)
    assert fw.ci_method.startswith("Wald") and fi.ci_method.startswith("profile")
    # profile CIs approach Wald CIs when the likelihood is near-quadratic
    np.testing.assert_allclose(np.log(fi.odds_ratios[["ci_lower", "ci_upper"]]),
                               np.log(ml.odds_ratios[["ci_lower", "ci_upper"]]), atol=5e-3)


def test_firth_less_biased_than_logit_at_small_counts():
    """Fixed-seed simulation: 1000 data sets of n=100 (about 20 events), one continuous and one
    binary risk factor. ML is biased away from zero by O(1/n); Firth removes that term."""
    import statsmodels.api as sm

    from dmst_eval.risk.logistic import _firth_newton

    beta = np.array([-2.0, 1.0, 0.8])
    rng = np.random.default_rng(1)
    est_ml, est_fi = [], []
    for _ in range(1000):
        x1 = rng.normal(size=100)
        x2 = rng.random(100) < 0.5
        X = np.column_stack([np.ones(100), x1, x2])
        y = (rng.random(100) < special.expit(X @ beta)).astype(float)
        est_fi.append(_firth_newton(X, y, np.zeros(3), np.ones(3, bool))[0])
        est_ml.append(sm.Logit(y, X).fit(disp=0, maxiter=100).params)
    bias_ml = np.mean(est_ml, axis=0) - beta
    bias_fi = np.mean(est_fi, axis=0) - beta
    mcse = np.std(est_ml, axis=0) / np.sqrt(1000)  # about 0.016, 0.012, 0.019
    # ML: intercept too low, slopes too large (well beyond Monte Carlo error)
    assert bias_ml[0] < -4 * mcse[0] and bias_ml[1] > 4 * mcse[1] and bias_ml[2] > 3 * mcse[2]
    # Firth: every coefficient less biased, the intercept and slope by a factor of > 4
    assert np.all(np.abs(bias_fi) < np.abs(bias_ml))
    assert np.all(np.abs(bias_fi[:2]) < 0.25 * np.abs(bias_ml[:2]))


# ----------------------------------------------------------------------- cluster-robust
def test_cluster_robust_se_matches_hand_sandwich():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(40), 25)
    u = rng.normal(0, 0.8, 40)[g]
    x = rng.integers(0, 2, len(g)) + 0.0
    y = (rng.random(len(g)) < special.expit(-1.5 + 0.8 * x + u)).astype(int)
    df = pd.DataFrame({"x": x, "y": y, "facility": [f"F{i}" for i in g]})
    m = risk.fit_risk_model(df, "y", ["x"], cluster="facility")
    X = np.column_stack([np.ones(len(x)), x])
    b = m.params_.to_numpy()
    p = special.expit(X @ b)
    bread = np.linalg.inv((X * (p * (1 - p))[:, None]).T @ X)
    s = X * (y - p)[:, None]
    sg = pd.DataFrame(s).groupby(g).sum().to_numpy()
    G, N, K = 40, len(y), 2
    V = bread @ (sg.T @ sg) @ bread * G / (G - 1) * (N - 1) / (N - K)
    np.testing.assert_allclose(m.bse_.to_numpy(), np.sqrt(np.diag(V)), rtol=1e-6)
    naive = risk.fit_risk_model(df, "y", ["x"])
    assert m.bse_["intercept"] > naive.bse_["intercept"]  # clustering inflates the SE
    assert "cluster" in m.ci_method
    with pytest.raises(InputError, match="logit"):
        risk.fit_risk_model(df, "y", ["x"], cluster="facility", method="firth")


# ------------------------------------------------------ interactions, missing, predict
def test_interaction_recovered_and_named():
    rng = np.random.default_rng(2)
    n = 60000
    df = pd.DataFrame({"male": rng.random(n) < 0.2, "prior_sexual_abuse": rng.random(n) < 0.4})
    both = df.male & df.prior_sexual_abuse
    eta = -3.5 - 1.0 * df.male + 0.9 * df.prior_sexual_abuse + 1.2 * both
    df["victim"] = rng.random(n) < special.expit(eta)
    m = risk.fit_risk_model(df, "victim", ["male", "prior_sexual_abuse",
                                           "male:prior_sexual_abuse"])
    r = _or(m, "male:prior_sexual_abuse")
    assert r.ci_lower < np.exp(1.2) < r.ci_upper
    assert list(m.odds_ratios.term) == ["intercept", "male", "prior_sexual_abuse",
                                        "male:prior_sexual_abuse"]


def test_complete_case_counts_dropped_rows():
    df = _table_frame(12, 30, 8, 150)
    df["z"] = pd.array([True, False] * 100, dtype="boolean")
    df.loc[[0, 5, 50], "z"] = pd.NA
    m = risk.fit_risk_model(df, "y", ["x", "z"], missing="drop")
    assert (m.n_obs, m.n_dropped, m.dropped_by) == (197, 3, {"z": 3})
    assert m.n_events == df.y[df.z.notna()].sum()
    assert any("3 children with missing information" in s for s in m.sentences())
    with pytest.raises(InputError, match="3 rows have missing"):
        risk.fit_risk_model(df, "y", ["x", "z"])             # missing="raise" is the default


def test_predict_matches_linear_predictor():
    df = _table_frame(12, 30, 8, 150)
    m = risk.fit_risk_model(df, "y", ["x"])
    new = pd.DataFrame({"x": [1.0, 0.0, np.nan]})
    pr = m.predict(new)
    assert pr.iloc[0] == pytest.approx(12 / 42) and pr.iloc[1] == pytest.approx(8 / 158)
    assert np.isnan(pr.iloc[2])
    with pytest.raises(InputError, match=r"lacks column\(s\) \['x'\]"):
        m.predict(pd.DataFrame({"z": [1.0]}))


@pytest.mark.parametrize("bad,match", [
    (dict(outcome="nope"), r"df\.nope: column not found"),
    (dict(predictors=["nope"]), r"df\.nope: column not found"),
    (dict(method="probit"), "method must be"),
    (dict(cluster="nope"), r"df\.nope: column not found"),
])
def test_bad_input_raises_clear_error(bad, match):
    kw = dict(outcome="y", predictors=["x"])
    kw.update(bad)
    with pytest.raises(InputError, match=match):
        risk.fit_risk_model(_table_frame(3, 4, 5, 6), **kw)


def test_non_binary_outcome_rejected():
    df = _table_frame(3, 4, 5, 6)
    df.loc[2, "y"] = 2
    with pytest.raises(InputError, match="must be 0/1"):
        risk.fit_risk_model(df, "y", ["x"])


def test_summary_plot_and_sentences():
    df = _table_frame(40, 60, 30, 270)
    df["awol_before"] = df.x
    df["male"] = np.tile([0, 1], 200)
    m = risk.fit_risk_model(df, "y", ["awol_before", "male"])
    assert {"coef", "se", "odds_ratio", "ci_method"} <= set(m.summary.columns)
    ax = m.plot()
    assert isinstance(ax, matplotlib.axes.Axes) and ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["male", "awol_before"]
    s = m.sentences()
    r = _or(m, "awol_before")
    assert s[0].startswith(f"Children who had run from placement (AWOL) had {r.odds_ratio:.1f} "
                           f"times the odds (95% CI {r.ci_lower:.1f}–{r.ci_upper:.1f})")
    assert "compared with children who had not" in s[0]
    matplotlib.pyplot.close("all")


@pytest.mark.slow
def test_firth_profile_ci_coverage_at_small_counts():
    """n=100 children, ~20 events: Firth's profile-likelihood 95% CIs cover the truth ~95%."""
    from tests.conftest import n_seeds

    reps = n_seeds(full=400, fast=40)
    beta = np.array([-2.0, 1.0, 0.8])
    rng = np.random.default_rng(31)
    hits = np.zeros(3)
    for _ in range(reps):
        x1 = rng.normal(size=100)
        x2 = (rng.random(100) < 0.5).astype(int)
        y = (rng.random(100) < special.expit(beta[0] + beta[1] * x1 + beta[2] * x2)).astype(int)
        m = risk.fit_risk_model(pd.DataFrame({"x1": x1, "x2": x2, "y": y}), "y", ["x1", "x2"],
                                method="firth")
        lo = np.log(m.odds_ratios.ci_lower.to_numpy())
        hi = np.log(m.odds_ratios.ci_upper.to_numpy())
        hits += (lo <= beta) & (beta <= hi)
    cov = hits / reps
    print(f"\nFirth profile CI coverage over {reps} data sets (intercept, x1, x2): {cov}")
    if reps >= 400:
        assert 0.93 <= cov.mean() <= 0.97 and cov.min() >= 0.91 and cov.max() <= 0.985
    else:  # 40 x 3 = 120 intervals
        assert 0.88 <= cov.mean() <= 1.0


def test_plain_column_design_is_patsys_design():
    import patsy

    rng = np.random.default_rng(2)
    df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.integers(0, 2, 200).astype(float),
                       "c": rng.normal(size=200), "y": (rng.random(200) < 0.3).astype(int)})
    d = risk.logistic._build_design(df, "y", ["b", "a", "c"], None, "drop")
    ref = patsy.dmatrix("b + a + c", df, return_type="dataframe", NA_action="raise")
    np.testing.assert_array_equal(d.X, ref.to_numpy(dtype=float))
    assert d.X.flags["C_CONTIGUOUS"] == ref.to_numpy(dtype=float).flags["C_CONTIGUOUS"]
    assert d.names == ["intercept", "b", "a", "c"]
    assert d.design_info.column_names == ref.design_info.column_names
    m = risk.fit_risk_model(df, "y", ["b", "a", "c"])
    np.testing.assert_allclose(m.predict(df.iloc[:5]),
                               special.expit(ref.to_numpy()[:5] @ m.params_.to_numpy()))
    # repeated terms and formula terms go through patsy
    for preds in (["a", "a"], ["a", "a:b"], ["C(b)"]):
        assert not risk.logistic._plain_terms(df, preds)
