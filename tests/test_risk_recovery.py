"""Parameter recovery on generated data: the risk model's 95% CIs cover the generator's truth."""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
import pytest

from dmst_eval import risk
from dmst_eval.synthetic import generate
from tests.conftest import n_seeds

SCALE = 2  # about 440 victims over 2008-2025, ~300 with complete flags


@functools.lru_cache(maxsize=2)
def _frame(seed: int) -> tuple[pd.DataFrame, dict]:
    cd = generate(seed=seed, scale=SCALE)
    t = cd.truth["risk"]
    f = risk.analysis_frame(cd, *t["window"], population=t["population"])
    # the generator's eligibility rule (truth["risk"]["eligibility"]), applied exactly
    birth = pd.to_datetime(cd.children.set_index("child_id").loc[f.child_id, "birth_date"])
    last = pd.Timestamp(t["window"][1]) + pd.Timedelta(days=1 - t["end_margin_days"])
    elig = (birth + pd.Timedelta(days=t["min_age_years"] * 365.25) <= last).to_numpy()
    return f[elig].reset_index(drop=True), t


def _coverage(seed: int) -> pd.DataFrame:
    f, t = _frame(seed)
    terms = [k for k in t["log_odds"] if k != "intercept"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", risk.SeparationWarning)
        m = risk.fit_risk_model(f, t["outcome"], terms, missing="drop")
    firth = risk.fit_risk_model(f, t["outcome"], terms, method="firth", pl=False,
                                missing="drop")
    o = m.odds_ratios.set_index("term")
    true = pd.Series(t["log_odds"])
    return pd.DataFrame({"seed": seed, "term": true.index, "true": true.to_numpy(),
                         "est": m.params_[true.index].to_numpy(),
                         "est_firth": firth.params_[true.index].to_numpy(),
                         "separation": bool(m.separation),
                         "covered": ((np.log(o.loc[true.index, "ci_lower"]) <= true)
                                     & (true <= np.log(o.loc[true.index, "ci_upper"]))).to_numpy()})


def test_frame_matches_generator_population():
    f, t = _frame(0)
    assert len(f) == t["n_eligible"]
    assert set(t["log_odds"]) - {"intercept", "male:prior_sexual_abuse"} <= set(f.columns)
    # victims drawn with expected count sum(p): the realised count is within 4 Poisson sd
    assert abs(f.victim.sum() - t["expected_victims"]) < 4 * np.sqrt(t["expected_victims"])


@pytest.mark.slow
def test_odds_ratio_cis_cover_truth():
    seeds = n_seeds(full=100, fast=8)
    res = pd.concat([_coverage(1000 + s) for s in range(seeds)], ignore_index=True)
    cov = res.covered.mean()
    by_term = res.groupby("term").covered.mean()
    err = pd.DataFrame({"logit": res.est - res.true, "firth": res.est_firth - res.true,
                        "term": res.term}).groupby("term").mean()
    n_sep = res.groupby("seed").separation.first().sum()
    print(f"\ncoverage over {seeds} seeds x {res.term.nunique()} terms: {cov:.3f}\n"
          f"{by_term.round(3).to_string()}\nmean error (log-odds), {n_sep} seeds with "
          f"separation:\n{err.round(3).to_string()}")
    if seeds >= 100:
        assert 0.90 <= cov <= 0.99
        assert by_term.min() >= 0.85
        # the rare terms (few boys are identified): Firth's mean error is smaller than ML's
        rare = ["male", "male:prior_sexual_abuse"]
        assert (err.loc[rare, "firth"].abs() < err.loc[rare, "logit"].abs()).all()
    else:  # 8 seeds x 11 terms = 88 intervals: binomial sd about 2.3 points
        assert 0.85 <= cov <= 1.0
