"""Benchmark of the risk models: logit on 1M rows x 12 predictors (target <= 30 s).

Run: ``.venv/bin/python benchmarks/bench_risk.py [--rows 1000000] [--firth-rows 20000]``.
Prints wall times of: building the frame, the maximum-likelihood logit (model-based SEs), the
same with cluster-robust SEs (1,000 clusters), predict(), screening_performance on 50
thresholds, roc_auc (DeLong), and a Firth fit with profile CIs on a smaller frame.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import special

import patsy  # noqa: F401  (imported up front: the timings below exclude import cost)
import statsmodels.api  # noqa: F401

from dmst_eval import risk

PREDICTORS = ["male", "age_at_start", "prior_sexual_abuse", "prior_runaway", "substance_use",
              "juvenile_justice", "lgbtq", "congregate_before", "awol_before", "x1", "x2",
              "male:prior_sexual_abuse"]


def make_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "male": rng.random(n) < 0.5,
        "age_at_start": rng.uniform(8, 17.5, n),
        "prior_sexual_abuse": pd.array(rng.random(n) < 0.22, dtype="boolean"),
        "prior_runaway": rng.random(n) < 0.14,
        "substance_use": rng.random(n) < 0.12,
        "juvenile_justice": rng.random(n) < 0.09,
        "lgbtq": rng.random(n) < 0.10,
        "congregate_before": rng.random(n) < 0.2,
        "awol_before": rng.random(n) < 0.15,
        "x1": rng.normal(size=n),
        "x2": rng.normal(size=n),
        "facility": rng.integers(0, 1000, n),
    })
    beta = np.array([-7.0, -1.2, 0.2, 0.9, 0.7, 0.7, 0.4, 0.6, 0.9, 1.6, 0.1, -0.1, 1.2])
    X = np.column_stack([np.ones(n)] + [df[c].astype(float) for c in PREDICTORS[:-1]]
                        + [df.male.astype(float) * df.prior_sexual_abuse.astype(float)])
    df["victim"] = (rng.random(n) < special.expit(X @ beta)).astype(int)
    return df, beta


def timed(label: str, fn):
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    print(f"{label:<58} {dt:8.2f} s")
    return out, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--firth-rows", type=int, default=20_000)
    a = ap.parse_args()
    (df, beta), _ = timed(f"make frame ({a.rows:,} rows)", lambda: make_frame(a.rows))
    print(f"  events: {df.victim.sum():,}")
    m, t_fit = timed(f"logit, {len(PREDICTORS)} predictors", lambda: risk.fit_risk_model(
        df, "victim", PREDICTORS))
    cover = ((np.log(m.odds_ratios.ci_lower) <= beta) & (beta <= np.log(m.odds_ratios.ci_upper)))
    print(f"  converged={m.converged}; CIs covering the generating values: "
          f"{int(cover.sum())}/{len(beta)}")
    timed("logit, cluster-robust (1,000 clusters)", lambda: risk.fit_risk_model(
        df, "victim", PREDICTORS, cluster="facility"))
    p, _ = timed("predict", lambda: m.predict(df))
    timed("screening_performance, 50 thresholds", lambda: risk.screening_performance(
        df.victim, p, np.quantile(p, np.linspace(0.5, 0.999, 50))))
    timed("roc_auc (DeLong)", lambda: risk.roc_auc(df.victim, p))
    small = df.iloc[: a.firth_rows]
    timed(f"firth + profile CIs ({a.firth_rows:,} rows, {small.victim.sum()} events)",
          lambda: risk.fit_risk_model(small, "victim", PREDICTORS, method="firth"))
    print(f"\nlogit on {a.rows:,} x {len(PREDICTORS)}: {t_fit:.1f} s "
          f"({'within' if t_fit <= 30 else 'OVER'} the 30 s target)")


if __name__ == "__main__":
    main()
