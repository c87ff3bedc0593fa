"""Screening-tool evaluation: hand-computed accuracy, Wilson and LR CIs, DeLong AUC, calibration."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from dmst_eval.errors import InputError
from dmst_eval import risk

Z = stats.norm.ppf(0.975)

# 10 victims, 30 non-victims; scores chosen so that at threshold 20: tp=8, fn=2, fp=6, tn=24
Y = np.r_[np.ones(10), np.zeros(30)].astype(int)
S = np.r_[[40, 40, 30, 25, 20, 20, 27, 54, 10, 0],
          [20, 21, 47, 22, 30, 61] + [0] * 12 + [7] * 6 + [14] * 6]


def _wilson(k, n):
    p = k / n
    c = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    h = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return c - h, c + h


def test_counts_and_rates_by_hand():
    t = risk.screening_performance(Y, S, [20, 25, 100]).set_index("threshold")
    r = t.loc[20]
    assert (r.tp, r.fn, r.fp, r.tn) == (8, 2, 6, 24)
    assert r.sensitivity == pytest.approx(0.8) and r.specificity == pytest.approx(0.8)
    assert r.ppv == pytest.approx(8 / 14) and r.npv == pytest.approx(24 / 26)
    assert r.lr_pos == pytest.approx(0.8 / 0.2) and r.lr_neg == pytest.approx(0.2 / 0.8)
    assert r.flagged == pytest.approx(14 / 40)
    # score >= threshold flags: at 25, the two 20s and the 25 are on either side of the line
    assert (t.loc[25].tp, t.loc[25].fp) == (6, 3)
    assert (t.loc[100].tp, t.loc[100].fp, t.loc[100].sensitivity) == (0, 0, 0.0)
    assert np.isnan(t.loc[100].ppv)


def test_wilson_intervals():
    t = risk.screening_performance(Y, S, 20).iloc[0]
    for name, k, n in (("sensitivity", 8, 10), ("specificity", 24, 30), ("ppv", 8, 14),
                       ("npv", 24, 26)):
        lo, hi = _wilson(k, n)
        assert t[f"{name}_lower"] == pytest.approx(lo, rel=1e-10)
        assert t[f"{name}_upper"] == pytest.approx(hi, rel=1e-10)
    # textbook value: 8/10 -> (0.490, 0.943) (Newcombe 1998, Table I method 3 style)
    lo, hi = risk.wilson_ci(8, 10)
    assert (round(float(lo), 3), round(float(hi), 3)) == (0.490, 0.943)
    from statsmodels.stats.proportion import proportion_confint
    np.testing.assert_allclose(risk.wilson_ci(np.array([3, 0, 17]), np.array([7, 12, 17])),
                               proportion_confint([3, 0, 17], [7, 12, 17], method="wilson"),
                               rtol=1e-10, atol=1e-12)


def test_likelihood_ratio_log_method():
    t = risk.screening_performance(Y, S, 20).iloc[0]
    a, b, c, d = 8, 6, 2, 24
    se_p = np.sqrt(1 / a - 1 / (a + c) + 1 / b - 1 / (b + d))
    se_n = np.sqrt(1 / c - 1 / (a + c) + 1 / d - 1 / (b + d))
    assert t.lr_pos_lower == pytest.approx(4 * np.exp(-Z * se_p))
    assert t.lr_pos_upper == pytest.approx(4 * np.exp(Z * se_p))
    assert t.lr_neg_lower == pytest.approx(0.25 * np.exp(-Z * se_n))
    assert t.lr_neg_upper == pytest.approx(0.25 * np.exp(Z * se_n))


def test_zero_cell_gives_finite_lr_ci():
    t = risk.screening_performance([1, 1, 1, 0, 0, 0, 0], [9, 9, 9, 9, 0, 0, 0], 5).iloc[0]
    assert (t.tp, t.fn, t.fp, t.tn) == (3, 0, 1, 3)
    assert t.lr_neg == 0 and np.isfinite(t.lr_neg_upper) and t.lr_neg_upper > 0


def test_bad_screening_input():
    with pytest.raises(InputError, match="0/1"):
        risk.screening_performance([0, 2], [1, 2], 1)
    with pytest.raises(InputError, match="3 values but y_true has 2"):
        risk.screening_performance([0, 1], [1, 2, 3], 1)
    with pytest.raises(InputError, match="missing"):
        risk.screening_performance([0, 1], [1, np.nan], 1)


# --------------------------------------------------------------------------------- AUC
def _delong_bruteforce(y, s):
    """DeLong (1988) structural components from the pairwise kernel (O(mn))."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = psi.mean()
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    return auc, np.sqrt(var)


def test_auc_equals_mann_whitney_and_delong_by_hand():
    r = risk.roc_auc(Y, S)
    u = stats.mannwhitneyu(S[Y == 1], S[Y == 0]).statistic
    assert r.auc == pytest.approx(u / (10 * 30), rel=1e-12)
    auc, se = _delong_bruteforce(Y, S.astype(float))
    assert r.auc == pytest.approx(auc) and r.se == pytest.approx(se, rel=1e-10)
    assert r.ci_lower == pytest.approx(auc - Z * se) and r.ci_upper == pytest.approx(
        min(1.0, auc + Z * se))
    rng = np.random.default_rng(4)
    y = rng.random(3000) < 0.1
    s = np.round(rng.normal(size=3000) + 1.2 * y, 1)  # many ties
    r2 = risk.roc_auc(y, s)
    auc2, se2 = _delong_bruteforce(y.astype(int), s)
    assert r2.auc == pytest.approx(auc2, rel=1e-12) and r2.se == pytest.approx(se2, rel=1e-10)


def test_auc_tiny_exact_and_plot():
    r = risk.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert r.auc == 0.75
    ax = r.plot()
    assert isinstance(ax, matplotlib.axes.Axes)
    assert {"auc", "se", "ci_lower", "ci_upper"} <= set(r.summary.columns)
    matplotlib.pyplot.close("all")
    with pytest.raises(InputError, match="at least 2 positives"):
        risk.roc_auc([0, 0, 1], [1, 2, 3])


def test_delong_ci_coverage_simulation():
    """Binormal model with known AUC = Phi(d / sqrt 2): the 95% CI covers in ~95% of 200 runs."""
    d = 1.0
    true = stats.norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(77)
    cover = 0
    for _ in range(200):
        y = np.r_[np.ones(60), np.zeros(400)]
        s = rng.normal(size=460) + d * y
        r = risk.roc_auc(y, s)
        cover += r.ci_lower <= true <= r.ci_upper
    assert 0.91 <= cover / 200 <= 0.985


# ------------------------------------------------------------------------- calibration
def test_calibration_slope_and_intercept():
    rng = np.random.default_rng(9)
    lp = rng.normal(-2.5, 1.0, 20000)
    p = special.expit(lp)
    y = rng.random(20000) < p
    good = risk.calibration(y, p)
    assert good.slope_ci[0] < 1 < good.slope_ci[1]
    assert good.intercept_ci[0] < 0 < good.intercept_ci[1]
    t = good.table
    assert len(t) == 10 and t.n.sum() == 20000 and t.events.sum() == y.sum()
    assert (t.n.max() - t.n.min()) <= 1
    np.testing.assert_allclose(t.observed, t.events / t.n)
    # over-confident predictions (logit doubled): slope 1/2; risk under-predicted: intercept > 0
    over = risk.calibration(y, special.expit(2 * lp + 2.5))
    assert over.slope == pytest.approx(0.5, abs=0.03)
    under = risk.calibration(y, special.expit(lp - 1.0))
    assert under.intercept == pytest.approx(1.0, abs=0.05)
    # the intercept is the ML estimate with logit(p) as offset (statsmodels GLM as a check)
    import statsmodels.api as sm
    glm = sm.GLM(y.astype(float), np.ones((len(y), 1)), family=sm.families.Binomial(),
                 offset=lp - 1.0).fit()
    assert under.intercept == pytest.approx(float(glm.params[0]), abs=1e-8)
    assert under.intercept_ci[1] - under.intercept_ci[0] == pytest.approx(
        2 * Z * float(glm.bse[0]), rel=1e-4)
    # very small predicted risks (most children) must not break the intercept
    lp2 = rng.normal(-9, 3, 20000)
    y2 = rng.random(20000) < special.expit(lp2 + 0.5)
    tiny = risk.calibration(y2, special.expit(lp2))
    assert tiny.intercept_ci[0] < 0.5 < tiny.intercept_ci[1]
    assert isinstance(good.plot(), matplotlib.axes.Axes)
    assert list(good.summary.measure) == ["calibration_slope", "calibration_intercept"]
    matplotlib.pyplot.close("all")
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        risk.calibration([0, 1], [0.0, 0.5])


# ------------------------------------------------------------------------------ points
def test_points_score_by_hand():
    df = pd.DataFrame({"runaway_past_year_under15": [1, 0, 0, 0],
                       "runaway_past_year_15plus": [0, 1, 0, 0],
                       "first_placement_congregate": [True, True, False, False],
                       "first_placement_age15plus": [0, 1, 1, 0],
                       "residential_facility": [1, 0, 1, 0]})
    s = risk.wiser_like_score(df)
    assert s.tolist() == [40 + 14 + 7, 16 + 14 + 11, 11 + 7, 0]
    assert (s >= risk.WISER_LIKE_CUTOFF).tolist() == [True, True, False, False]
    assert risk.points_score(df, {"residential_facility": 2.5}).tolist() == [2.5, 0, 2.5, 0]


def test_points_score_missing_items():
    df = pd.DataFrame({"a": pd.array([True, None, False], dtype="boolean"), "b": [1, 1, 0]})
    with pytest.raises(InputError, match="'a' is missing in 1 rows"):
        risk.points_score(df, {"a": 10, "b": 5})
    assert risk.points_score(df, {"a": 10, "b": 5}, missing="zero").tolist() == [15, 5, 0]
    out = risk.points_score(df, {"a": 10, "b": 5}, missing="nan")
    assert out.iloc[0] == 15 and np.isnan(out.iloc[1])
    with pytest.raises(InputError, match=r"df\.zzz: column not found"):
        risk.points_score(df, {"zzz": 1})
    with pytest.raises(InputError, match="0/1 or boolean"):
        risk.points_score(pd.DataFrame({"a": [0, 3]}), {"a": 1})
