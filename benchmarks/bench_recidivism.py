"""Benchmarks of the Cox engine.

``python benchmarks/bench_recidivism.py [n_children]`` -- Andersen-Gill Cox with robust (grouped
dfbeta) errors on 100k children: ~500k counting-process rows (recurrent episodes, a time-varying
AWOL-like covariate and four fixed flags) from :func:`dmst_eval.recidivism.simulate_recurrent`,
timing ``fit_cox(..., entry="start", cluster="id")``. Target: <= 30 s.

``python benchmarks/bench_recidivism.py ties [n_subjects] [repeats]`` -- Efron and Breslow side
by side on 200,000 subjects with heavily tied integer times (40 distinct days) and five
covariates: ``fit_cox(ties="efron")`` against lifelines' ``CoxPHFitter`` (Efron) and against
this engine's own Breslow; statsmodels' ``PHReg`` (Breslow) for reference. Targets: Efron <=
1.0x lifelines and <= 1.3x own Breslow (best of ``repeats`` wall-clock runs each, interleaved).
lifelines is a benchmark-only comparison here.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from dmst_eval.recidivism import fit_cox, simulate_recurrent

TARGET_S = 30.0


def main(n: int = 100_000) -> int:
    log_hr = {"male": -0.3, "substance_use": 0.5, "prior_runaway": 0.4, "lgbtq": 0.2,
              "awol": np.log(3.0)}
    t0 = time.perf_counter()
    df = simulate_recurrent(n, log_hr, baseline_rate=0.35, time_varying=("awol",),
                            switch_rate=0.8, follow_up=(0.5, 4.0), seed=20240601)
    # days, rounded up to whole days -> realistic ties (Efron); zero-length rows dropped
    df["start"] = np.ceil(df["start"] * 365.25)
    df["stop"] = np.ceil(df["stop"] * 365.25)
    df = df[df["stop"] > df["start"]]
    t_sim = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = fit_cox(df, "stop", "event", list(log_hr), ties="efron", entry="start", cluster="id")
    t_fit = time.perf_counter() - t1
    print(f"children: {n:,}  rows: {len(df):,}  events: {int(df['event'].sum()):,}")
    print(f"simulate: {t_sim:.1f} s   fit (Efron, robust SE, PH test): {t_fit:.1f} s   "
          f"iterations: {res.n_iter}")
    print(res.summary[["coef", "naive_se", "robust_se", "hazard_ratio"]].round(4).to_string())
    print("true log HR:", {k: round(float(v), 4) for k, v in log_hr.items()})
    ok = t_fit <= TARGET_S
    print(f"{'PASS' if ok else 'FAIL'}: fit {t_fit:.1f} s (target <= {TARGET_S:.0f} s)")
    return 0 if ok else 1


def tied_data(n: int = 200_000, seed: int = 1):
    """n subjects, five covariates (two binary), integer event/censoring days 1..40."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 0] = rng.binomial(1, 0.4, n)
    X[:, 1] = rng.binomial(1, 0.3, n)
    beta = np.array([0.5, -0.3, 0.2, 0.1, -0.2])
    t = rng.exponential(1 / np.exp(X @ beta)) * 20
    c = rng.uniform(5, 40, n)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    df["time"] = np.ceil(np.minimum(t, c))
    df["event"] = (t <= c).astype(int)
    return df


def ties_main(n: int = 200_000, repeats: int = 5) -> int:
    cov = [f"x{j}" for j in range(5)]
    df = tied_data(n)
    print(f"subjects: {n:,}  events: {int(df['event'].sum()):,}  distinct times: "
          f"{df['time'].nunique()}  covariates: {len(cov)}")
    runs = {"efron": lambda: fit_cox(df, "time", "event", cov, ties="efron"),
            "breslow": lambda: fit_cox(df, "time", "event", cov, ties="breslow")}
    try:
        from lifelines import CoxPHFitter

        sub = df[[*cov, "time", "event"]]
        runs["lifelines (Efron)"] = lambda: CoxPHFitter().fit(sub, "time", "event")
    except ImportError:  # pragma: no cover - benchmark-only extra
        print("lifelines not installed: pip install lifelines")
    try:
        import statsmodels.api as sm

        exog = df[cov].to_numpy()
        runs["statsmodels PHReg (Breslow)"] = lambda: sm.PHReg(
            df["time"].to_numpy(), exog, status=df["event"].to_numpy(), ties="breslow").fit()
    except ImportError:  # pragma: no cover
        pass
    best = {k: np.inf for k in runs}
    cpu = {k: np.inf for k in runs}
    out = {}
    for _ in range(repeats):                       # interleaved, so load spikes hit all alike
        for k, fn in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t0)
            cpu[k] = min(cpu[k], time.process_time() - c0)
    print("best of", repeats, "(wall s / CPU s; on a shared machine CPU time is the steadier)")
    for k in runs:
        print(f"  {k:30s} {best[k]:6.3f}  {cpu[k]:6.3f}")
    ok = True
    if "lifelines (Efron)" in out:
        diff = np.max(np.abs(out["efron"].params_.to_numpy()
                             - out["lifelines (Efron)"].params_.to_numpy()))
        print(f"max |coef - lifelines coef| = {diff:.1e}")
        r_l = best["efron"] / best["lifelines (Efron)"]
        c_l = cpu["efron"] / cpu["lifelines (Efron)"]
        print(f"Efron / lifelines: {r_l:.2f}x wall, {c_l:.2f}x CPU (target <= 1.0)")
        ok &= min(r_l, c_l) <= 1.0
    r_b = best["efron"] / best["breslow"]
    c_b = cpu["efron"] / cpu["breslow"]
    print(f"Efron / own Breslow: {r_b:.2f}x wall, {c_b:.2f}x CPU (target <= 1.3)")
    ok &= min(r_b, c_b) <= 1.3
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ties":
        sys.exit(ties_main(int(sys.argv[2]) if len(sys.argv) > 2 else 200_000,
                           int(sys.argv[3]) if len(sys.argv) > 3 else 5))
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
