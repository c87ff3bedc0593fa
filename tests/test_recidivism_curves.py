"""Kaplan-Meier, log-rank, Nelson-Aalen/MCF and Aalen-Johansen against hand-computed values."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from dmst_eval.errors import InputError
from dmst_eval import recidivism as rc

Z = 1.959963984540054

# six children: time to first repeat (days) and whether it happened
SIX = pd.DataFrame({"t": [2, 3, 3, 5, 7, 8], "e": [1, 1, 0, 1, 0, 1],
                    "g": ["a", "a", "b", "a", "b", "b"]})


def test_km_six_children_by_hand():
    km = rc.kaplan_meier(SIX, "t", "e")
    tb = km.table.set_index("time")
    # S(2) = 5/6, S(3) = 5/6 * 4/5, S(5) = 2/3 * 2/3, S(7) unchanged (censored), S(8) = 0
    assert tb.loc[2, "survival"] == pytest.approx(5 / 6)
    assert tb.loc[3, "survival"] == pytest.approx(2 / 3)
    assert tb.loc[5, "survival"] == pytest.approx(4 / 9)
    assert tb.loc[7, "survival"] == pytest.approx(4 / 9)
    assert tb.loc[8, "survival"] == 0
    assert tb["n_risk"].tolist() == [6, 5, 3, 2, 1]
    # Greenwood: sum d / (n (n - d)) = 1/30 + 1/20 + 1/6 at t = 5
    assert tb.loc[5, "se"] == pytest.approx(4 / 9 * math.sqrt(1 / 30 + 1 / 20 + 1 / 6))
    # log-log interval at t = 3
    s = 2 / 3
    se_ll = math.sqrt(1 / 30 + 1 / 20) / abs(math.log(s))
    lo = math.exp(-math.exp(math.log(-math.log(s)) + Z * se_ll))
    hi = math.exp(-math.exp(math.log(-math.log(s)) - Z * se_ll))
    assert tb.loc[3, "ci_lower"] == pytest.approx(lo, abs=1e-9)
    assert tb.loc[3, "ci_upper"] == pytest.approx(hi, abs=1e-9)
    assert km.summary.loc["all", "median"] == 5
    assert km.summary.loc["all", "events"] == 4


def test_km_month_estimates_and_median_convention():
    # days: 100 children, 50 repeat at day 100, 50 censored at day 400
    df = pd.DataFrame({"t": [100] * 50 + [400] * 50, "e": [1] * 50 + [0] * 50})
    km = rc.kaplan_meier(df, "t", "e")
    s = km.summary.loc["all"]
    assert s["survival_6m"] == pytest.approx(0.5)          # 6 months = 182.6 days
    assert s["survival_12m"] == pytest.approx(0.5)
    # curve equals 0.5 exactly from day 100 to the end: R reports the midpoint of the stretch
    # only when it later drops below 0.5; here it never does, so the median is day 100
    assert s["median"] == 100
    df2 = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 1, 1]})
    assert rc.kaplan_meier(df2, "t", "e").summary.loc["all", "median"] == 2.5  # R: (2+3)/2


def test_logrank_two_groups_by_hand():
    res = rc.kaplan_meier(SIX, "t", "e", group="g")
    lr = res.logrank
    # event times 2, 3, 5, 8; group a at risk 3, 2, 1, 0 of n = 6, 5, 3, 1; deaths all in a
    # except t = 8 (b)
    n = np.array([6, 5, 3, 1])
    na = np.array([3, 2, 1, 0])
    d = np.array([1, 1, 1, 1])
    da = np.array([1, 1, 1, 0])
    E = (na * d / n).sum()
    V = np.sum([na[i] * (n[i] - na[i]) * d[i] * (n[i] - d[i]) / (n[i] ** 2 * (n[i] - 1))
                for i in range(3)])          # last time: n = 1 contributes 0
    chi2 = (da.sum() - E) ** 2 / V
    assert lr["chi2"] == pytest.approx(chi2)
    assert lr["df"] == 1
    assert set(res.summary.index) == {"a", "b"}


def test_nelson_aalen_six_children_by_hand():
    rows = SIX.assign(child_id=[f"c{i}" for i in range(6)], start=0.0)
    m = rc.mean_cumulative_function(rows, start="start", stop="t", event="e")
    tb = m.table.set_index("time")
    assert tb.loc[2, "mcf"] == pytest.approx(1 / 6)
    assert tb.loc[3, "mcf"] == pytest.approx(1 / 6 + 1 / 5)
    assert tb.loc[5, "mcf"] == pytest.approx(1 / 6 + 1 / 5 + 1 / 3)
    assert tb.loc[8, "mcf"] == pytest.approx(1 / 6 + 1 / 5 + 1 / 3 + 1)
    # Lawless-Nadeau at t = 2: child with the event (1 - 1/6)/6, five others (-1/6)/6
    assert tb.loc[2, "se"] ** 2 == pytest.approx((25 + 5) / 1296)
    assert tb.loc[2, "se_poisson"] == pytest.approx(1 / 6)


def test_mcf_recurrent_by_hand():
    rows = pd.DataFrame({
        "child_id": ["1", "1", "1", "2", "2", "3", "4", "4", "5", "5", "6"],
        "start": [0, 1, 4, 0, 2, 0, 0, 1, 0, 4, 0],
        "stop": [1, 4, 6, 2, 3, 5, 1, 2, 4, 8, 1],
        "event": [1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0],
    })
    m = rc.mean_cumulative_function(rows, ci="plain")
    tb = m.table.set_index("time")
    assert tb["n_risk"].tolist() == [6, 5, 3]
    np.testing.assert_allclose(tb["mcf"], [2 / 6, 2 / 6 + 2 / 5, 2 / 6 + 2 / 5 + 2 / 3])
    # t = 1: children 1 and 4 (1 - 1/3)/6 = 1/9, the other four (-1/3)/6 = -1/18
    assert tb.loc[1, "se"] ** 2 == pytest.approx(2 / 81 + 4 / 324)
    assert tb.loc[1, "ci_upper"] == pytest.approx(1 / 3 + Z * math.sqrt(12 / 324))
    assert tb.loc[1, "ci_lower"] == 0          # plain interval truncated at 0
    logm = rc.mean_cumulative_function(rows)
    assert logm.table["ci_lower"].iloc[0] == pytest.approx(
        (1 / 3) / math.exp(Z * math.sqrt(12 / 324) / (1 / 3)))
    # chunked computation (many children) equals the direct one
    big = pd.concat([rows.assign(child_id=rows["child_id"] + f"_{k}") for k in range(1500)])
    mb = rc.mean_cumulative_function(big, ci="plain").table
    np.testing.assert_allclose(mb["mcf"], tb["mcf"].to_numpy())
    np.testing.assert_allclose(mb["se"], tb["se"].to_numpy() / math.sqrt(1500), rtol=1e-10)


def test_aalen_johansen_by_hand():
    df = pd.DataFrame({"duration": [1, 2, 3, 4, 5], "cause": [1, 2, 1, 0, 1]})
    r = rc.cumulative_incidence(df)
    tb = r.table.set_index("time")
    # S(t-) * d1 / n: 1/5; then S = 4/5 * 3/4 = 3/5 after the competing event at 2;
    # t = 3: 3/5 * 1/3; t = 5: (3/5 * 2/3) * 1/1
    np.testing.assert_allclose(tb["cif"], [0.2, 0.2, 0.4, 0.8])
    # naive 1 - KM treats aging out as censoring: 1 - (4/5)(2/3)(0) = 1
    np.testing.assert_allclose(tb["naive"], [0.2, 0.2, 1 - 0.8 * 2 / 3, 1.0])
    assert (tb["cif"] <= tb["naive"] + 1e-12).all()
    # delta-method variance at t = 1: S(0-)^2 d1 (n - d1) / n^3 + (F(1) - F(1))^2 ... = 4/125
    assert tb.loc[1, "se"] ** 2 == pytest.approx(4 / 125)
    assert "aging out" in r.explanation


def test_plots_return_axes():
    km = rc.kaplan_meier(SIX, "t", "e", group="g")
    assert km.plot() is not None
    rows = SIX.assign(child_id=[f"c{i}" for i in range(6)], start=0.0)
    assert rc.mean_cumulative_function(rows, stop="t", event="e").plot() is not None
    df = pd.DataFrame({"duration": [1, 2, 3, 4, 5], "cause": [1, 2, 1, 0, 1]})
    assert rc.cumulative_incidence(df).plot() is not None
    plt.close("all")


def test_bad_input():
    with pytest.raises(InputError, match="not 0/1"):
        rc.kaplan_meier(SIX.assign(e=[1, 2, 0, 0, 0, 0]), "t", "e")
    with pytest.raises(InputError, match="<="):
        rc.mean_cumulative_function(pd.DataFrame({"child_id": ["a"], "start": [3.0],
                                                  "stop": [1.0], "event": [1]}))


def test_cumulative_incidence_raises_on_unknown_cause_code():
    df = pd.DataFrame({"duration": [1, 2, 3, 4, 5, 6], "cause": [1, 2, 1, 0, 3, 1]})
    with pytest.raises(InputError, match=r"df\.cause: 1 row\(s\) have a cause code .*: 3") as e:
        rc.cumulative_incidence(df)
    assert e.value.rows == [4]
    # declared as competing (or censoring) it is used
    r = rc.cumulative_incidence(df, competing=[2, 3])
    assert r.table["n_competing"].sum() == 2
    r0 = rc.cumulative_incidence(df, censored=[0, 3])
    assert r0.table["n_competing"].sum() == 1
