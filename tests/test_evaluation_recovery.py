"""Recovery of the generator's truth by the three evaluation methods, across seeds (slow).

One bundle per seed (``generate(scale=2, seed=s)``) feeds all three checks:

* IPTW / AIPW on :func:`service_frame` (confounders: substance_use, prior_runaway, awol_before,
  male — the generator's referral model) recover ``truth["services"]["ate_revictimization_12m"]``
  (risk difference); the naive comparison is biased towards no effect;
* the segmented Poisson ITS of monthly police reports (default ``cov="auto"`` errors) recovers
  ``truth["its"]``;
* the mixed-model pre/post gains recover ``truth["training"]["gain"]``.

Coverage must not be significantly below 95% (one-sided binomial test at the 0.1% level).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dmst_eval import evaluation as ev
from tests.conftest import n_seeds

# one worker generates the bundles once and runs all three checks (make test uses -n 2)
pytestmark = pytest.mark.xdist_group("evaluation_recovery")

SEEDS = list(range(1000, 1000 + n_seeds(full=100, fast=8)))
SCALE = 2
CONFOUNDERS = ["substance_use", "prior_runaway", "awol_before", "male"]


def _min_covered(n: int, level: float = 0.95, alpha: float = 0.001) -> int:
    """Smallest count of covering intervals not significantly below ``level``."""
    return int(stats.binom.ppf(alpha, n, level))


@pytest.fixture(scope="module")
def runs():
    from dmst_eval.synthetic import generate

    iptw, its, pp = [], [], []
    for seed in SEEDS:
        cd = generate(scale=SCALE, seed=seed)
        t = cd.truth
        # services
        f = ev.service_frame(cd)
        r = ev.iptw_effect(f, "referred", "revictimized_12m", CONFOUNDERS, method="aipw",
                           missing="drop")
        s = r.summary[r.summary.measure == "risk_difference"].set_index("method")
        row = {"seed": seed, "truth": t["services"]["ate_revictimization_12m"]["risk_difference"],
               "n": len(f), "truth_n": t["services"]["ate_revictimization_12m"]["n"]}
        for m in ("naive", "iptw", "aipw"):
            row[m], row[m + "_lo"], row[m + "_hi"] = s.loc[m, ["estimate", "ci_lower",
                                                               "ci_upper"]]
        iptw.append(row)
        # ITS
        pol = cd.reports[cd.reports["reporter_type"] == "police"]
        y = ev.monthly_counts(pol["received_at"], cd.meta["study_start"], cd.meta["study_end"])
        res = ev.interrupted_time_series(y, t["its"]["intervention"], family="poisson")
        q = res.summary.set_index("term")
        hac = ev.interrupted_time_series(y, t["its"]["intervention"], family="poisson",
                                         cov="hac").summary.set_index("term")
        its.append({"seed": seed, "level": q.loc["level_change", "estimate"],
                    "cov_type": res.cov_type,
                    "hac_cov": bool(hac.loc["level_change", "ci_lower"]
                                    <= t["its"]["level_change_rate_ratio"]
                                    <= hac.loc["level_change", "ci_upper"]),
                    "level_lo": q.loc["level_change", "ci_lower"],
                    "level_hi": q.loc["level_change", "ci_upper"],
                    "slope": q.loc["slope_change", "estimate"],
                    "slope_lo": q.loc["slope_change", "ci_lower"],
                    "slope_hi": q.loc["slope_change", "ci_upper"],
                    "true_level": t["its"]["level_change_rate_ratio"],
                    "true_slope": t["its"]["slope_change_per_month"]})
        # pre/post
        p = ev.pre_post(cd)
        g = pd.Series(t["training"]["gain"], name="truth")
        d = p.summary.join(g, on="group")
        d["seed"] = seed
        pp.append(d)
    return pd.DataFrame(iptw), pd.DataFrame(its), pd.concat(pp, ignore_index=True)


def _covered(df, est, truth):
    return ((df[est + "_lo"] <= df[truth]) & (df[truth] <= df[est + "_hi"])).to_numpy()


def _report(runs) -> str:
    """Coverage figures (printed with ``pytest -s``; quoted in the README)."""
    a, b, c = runs
    lines = [f"seeds {len(a)} (scale {SCALE})"]
    for m in ("naive", "iptw", "aipw"):
        lines.append(f"services {m}: coverage {_covered(a, m, 'truth').mean():.1%}, mean bias "
                     f"{(a[m] - a['truth']).mean():+.4f} (truth RD {a['truth'].mean():+.4f}, "
                     f"mean n {a['n'].mean():.0f})")
    lines.append(f"ITS level: coverage {((b.level_lo <= b.true_level) & (b.true_level <= b.level_hi)).mean():.1%}"
                 f", mean estimate {b.level.mean():.3f} (truth {b.true_level.iloc[0]})")
    lines.append(f"ITS slope: coverage {((b.slope_lo <= b.true_slope) & (b.true_slope <= b.slope_hi)).mean():.1%}"
                 f"; HAC chosen by cov='auto' in {(b.cov_type == 'hac').mean():.0%} of seeds")
    lines.append(f"ITS level, HAC errors forced: coverage {b.hac_cov.mean():.1%}")
    for m in ("mixed", "paired"):
        x = c[c.method == m]
        lines.append(f"pre/post {m}: coverage {((x.ci_lower <= x.truth) & (x.truth <= x.ci_upper)).mean():.1%}"
                     f" over {len(x)} curriculum-seed intervals")
    return "\n".join(lines)


@pytest.mark.slow
def test_iptw_and_aipw_recover_service_effect_naive_biased(runs):
    print("\n" + _report(runs))
    d = runs[0]
    n = len(d)
    # service_frame selects exactly the generator's estimand population
    assert (d["n"] == d["truth_n"]).all()
    for m in ("iptw", "aipw"):
        cov = _covered(d, m, "truth").sum()
        assert cov >= _min_covered(n), f"{m}: {cov}/{n} intervals cover the true effect"
        bias = d[m] - d["truth"]
        se = bias.std(ddof=1) / np.sqrt(n)
        assert abs(bias.mean()) < 2.5 * se + 0.005, f"{m}: mean bias {bias.mean():.4f}"
    # the naive comparison is visibly biased towards no effect (referred children are at
    # higher risk), significantly so across seeds
    nb = d["naive"] - d["truth"]
    assert nb.mean() > 0.03
    assert nb.mean() / (nb.std(ddof=1) / np.sqrt(n)) > 2.5
    assert (d["iptw"] - d["truth"]).abs().mean() < nb.abs().mean()


@pytest.mark.slow
def test_its_recovers_pa_11_180_step(runs):
    d = runs[1]
    n = len(d)
    d = d.assign(level_cov=(d.level_lo <= d.true_level) & (d.true_level <= d.level_hi),
                 slope_cov=(d.slope_lo <= d.true_slope) & (d.true_slope <= d.slope_hi))
    assert d.level_cov.sum() >= _min_covered(n)
    assert d.slope_cov.sum() >= _min_covered(n)
    logbias = np.log(d["level"]) - np.log(d["true_level"])
    assert abs(logbias.mean()) < 2.5 * logbias.std(ddof=1) / np.sqrt(n) + 0.02


@pytest.mark.slow
def test_pre_post_recovers_training_gains(runs):
    d = runs[2]
    mixed = d[d.method == "mixed"]
    cov = ((mixed.ci_lower <= mixed.truth) & (mixed.truth <= mixed.ci_upper)).sum()
    assert cov >= _min_covered(len(mixed)), f"{cov}/{len(mixed)}"
    err = (mixed["estimate"] - mixed["truth"]).groupby(mixed["group"]).mean()
    assert err.abs().max() < 0.6  # points, averaged over seeds
