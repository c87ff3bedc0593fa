"""Victims, first episodes (with their AWOL/placement context) and recurrent episodes.

The estimands are generated in the form the analyses assume (see docs/ground_truth.md):

* victim status among eligible child-welfare children ~ Bernoulli(expit(x'beta)) on child-level
  flags, ``age_at_start``, ``congregate_before`` and ``awol_before``;
* the first episode is laid out so that congregate spells / AWOL episodes of children with those
  flags start before the first identification, and none start before it otherwise;
* further episodes follow an Andersen-Gill intensity after first identification:
  ``baseline * exp(covariates + log HR_awol * awol(t) + log HR_service * service(t))``,
  censored at the 18th birthday (birth + 18 * 365.25 days) or the window end.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .population import YEAR, expit

LAG_MAX = 90  # lags are 0..89 days


def day_of(cfg, date: str) -> int:
    return int((pd.Timestamp(date) - pd.Timestamp(cfg.study_start)).days)


def identification_intensity(cfg, D: int) -> np.ndarray:
    """g(d): relative intensity of identification on day d (training and reporting roll-out)."""
    d = np.arange(D)
    g = np.exp(cfg.identification_growth * d / YEAR)
    g = g * np.where(d >= day_of(cfg, "2009-01-01"), cfg.identification_step_2009, 1.0)
    g = g * np.where(d >= day_of(cfg, cfg.pa_11_180_effective), cfg.identification_step_2011, 1.0)
    return g


def non_cw_intensity(cfg, D: int) -> np.ndarray:
    """Relative intensity of identifying a victim without child-welfare involvement on day d."""
    d = np.arange(D)
    h = np.exp(cfg.non_cw_identification_growth * d / YEAR)
    return h * np.where(d >= day_of(cfg, cfg.pa_11_180_effective), cfg.identification_step_2011,
                        1.0)


def lag_pmf(cfg) -> np.ndarray:
    """Truncated geometric pmf of identification lag in days (0..89)."""
    q = cfg.identification_lag_mean_days / (1 + cfg.identification_lag_mean_days)
    p = q ** np.arange(LAG_MAX)
    return p / p.sum()


def design(ch: dict, C: np.ndarray, A: np.ndarray) -> dict[str, np.ndarray]:
    """Covariates of the risk model (true, complete values)."""
    male = ch["male"].astype(float)
    psa = ch["prior_sexual_abuse"].astype(float)
    return {"intercept": np.ones(ch["n"]), "male": male, "age_at_start": ch["age_at_start"],
            "prior_sexual_abuse": psa, "male:prior_sexual_abuse": male * psa,
            "prior_runaway": ch["prior_runaway"].astype(float),
            "substance_use": ch["substance_use"].astype(float),
            "juvenile_justice": ch["juvenile_justice"].astype(float),
            "lgbtq": ch["lgbtq"].astype(float), "congregate_before": C.astype(float),
            "awol_before": A.astype(float)}


def windows(cfg, ch: dict, C, A, D: int):
    """Eligibility and the integer-day window [lo, hi) for the first episode's start R."""
    L0 = np.maximum(0.0, ch["birth"] + cfg.min_victim_age * YEAR)
    U0 = np.minimum(D - LAG_MAX, ch["b18"])
    elig = L0 <= D - 120
    L = np.where(C | A, np.maximum(L0, ch["E"] + 7.0), L0)
    lo = np.ceil(L).astype(np.int64)
    hi = np.floor(U0).astype(np.int64)
    elig &= hi > lo
    lo = np.where(elig, lo, 0)
    hi = np.where(elig, hi, 1)
    return elig, lo, hi


def draw_days(gc: np.ndarray, lo: np.ndarray, hi: np.ndarray, rng) -> np.ndarray:
    """Integer days in [lo, hi) with probability ∝ g (gc = concatenate([0], cumsum(g)))."""
    a, b = gc[lo], gc[hi]
    t = a + rng.random(len(lo)) * (b - a)
    d = np.searchsorted(gc, t, side="right") - 1
    return np.clip(d, lo, hi - 1)


def expected_id_intensity(g, gc, lo, hi, w, pmf, D) -> np.ndarray:
    """Expected number of first identifications per day given per-child weights w = P(victim)."""
    dens = w / (gc[hi] - gc[lo])
    diff = np.zeros(D + 1)
    np.add.at(diff, lo, dens)
    np.add.at(diff, hi, -dens)
    lam_r = np.cumsum(diff)[:D] * g
    return np.convolve(lam_r, pmf)[:D]


def first_episode_times(cfg, n: int, lo, hi, gc, rng):
    """(R, T_id, lag_days) for n victims."""
    rday = draw_days(gc, lo, hi, rng)
    pmf = lag_pmf(cfg)
    lag = rng.choice(len(pmf), size=n, p=pmf)
    R = rday + 0.25 + 0.15 * rng.random(n)
    T = rday + lag + 0.6 + 0.35 * rng.random(n)
    return R, T, lag


# ------------------------------------------------------------------------------------------
# Recurrent episodes after first identification (Andersen-Gill intensity)
# ------------------------------------------------------------------------------------------
def recurrence(cfg, vic: dict, awol_post: dict, D: int, rng) -> dict:
    """Simulate further episodes and the potential outcomes of referral.

    ``vic``: arrays over victims j: T (first identification), cend (censoring), lp (linear
    predictor of fixed covariates, log scale), s (service start if referred and started; inf
    otherwise, counterfactual for the unreferred), started (bool), Z (referred).
    ``awol_post``: post-identification AWOL intervals: j, start, end.
    """
    hr = cfg.hazard_ratios
    nv = len(vic["T"])
    if nv == 0:
        e = np.zeros(0)
        return dict(ev_j=np.zeros(0, np.int64), ev_t=e, ev_awol=np.zeros(0, bool), H0_tau=e,
                    H1_tau=e, tau=e, E1=e, Hobs_tot=e, Htot0=e, exp_awol=0.0, exp_all=0.0)
    T, cend = vic["T"], vic["cend"]
    tau = np.minimum(T + 365.0, cend)
    # points: (j, time, d_awol, d_svc, kind) kind: 0 start, 1 tau, 2 end, 3 other
    js = [np.arange(nv)] * 3
    ts = [T, tau, cend]
    da = [np.zeros(nv)] * 3
    ds = [np.zeros(nv)] * 3
    kinds = [np.zeros(nv), np.ones(nv), np.full(nv, 2.0)]
    s_in = vic["s"] < cend
    js.append(np.flatnonzero(s_in)); ts.append(vic["s"][s_in])
    da.append(np.zeros(s_in.sum())); ds.append(np.ones(s_in.sum())); kinds.append(np.full(s_in.sum(), 3.0))
    a_ok = (awol_post["start"] > T[awol_post["j"]]) & (awol_post["start"] < cend[awol_post["j"]])
    aj = awol_post["j"][a_ok]
    a0 = awol_post["start"][a_ok]
    a1 = np.minimum(awol_post["end"][a_ok], cend[aj])
    na = len(aj)
    js += [aj, aj]; ts += [a0, a1]; da += [np.ones(na), -np.ones(na)]
    ds += [np.zeros(na), np.zeros(na)]; kinds += [np.full(na, 3.0), np.full(na, 3.0)]
    j = np.concatenate(js)
    t = np.concatenate(ts)
    dA = np.concatenate(da)
    dS = np.concatenate(ds)
    kind = np.concatenate(kinds)
    # end points sort last among ties, start first
    tie = np.where(kind == 0, 0, np.where(kind == 2, 2, 1))
    o = np.lexsort((tie, t, j))
    j, t, dA, dS, kind = j[o], t[o], dA[o], dS[o], kind[o]
    awol_state = np.cumsum(dA) > 0.5
    svc_state = np.cumsum(dS)
    # cumsum across victims: subtract the running total at each victim's first row
    first = np.r_[True, j[1:] != j[:-1]]
    grp = np.cumsum(first) - 1
    base_S = (np.cumsum(dS) - dS)[first][grp]
    svc_state = (svc_state - base_S) > 0.5
    base_A = (np.cumsum(dA) - dA)[first][grp]
    awol_state = (np.cumsum(dA) - base_A) > 0.5
    nxt_t = np.r_[t[1:], np.inf]
    same = np.r_[j[1:] == j[:-1], False]
    length = np.where(same & (kind != 2), np.maximum(nxt_t - t, 0.0), 0.0) / YEAR
    lam0 = cfg.baseline_rate_per_year * np.exp(vic["lp"][j]) * np.where(awol_state, hr["awol"], 1.0)
    svc_on = svc_state & vic["started"][j]
    rate0 = lam0
    rate1 = lam0 * np.where(svc_on, hr["service"], 1.0)
    rate_obs = np.where(vic["Z"][j], rate1, rate0)

    def cum_start(rate):
        inc = rate * length
        c = np.cumsum(inc)
        cs = c - inc
        return cs - cs[first][grp]

    H0, H1, Hobs = cum_start(rate0), cum_start(rate1), cum_start(rate_obs)
    row_tau = np.flatnonzero(kind == 1)
    row_end = np.flatnonzero(kind == 2)
    # victims are in order 0..nv-1 in both
    H0_tau, H1_tau = H0[row_tau], H1[row_tau]
    Hobs_tot = Hobs[row_end]
    Htot0 = H0[row_end]
    # awol share of expected events (observed arm)
    inc_obs = rate_obs * length
    exp_awol = float(inc_obs[awol_state].sum())
    exp_all = float(inc_obs.sum())
    # events
    N = rng.poisson(Hobs_tot)
    ej = np.repeat(np.arange(nv), N)
    h = rng.random(len(ej)) * Hobs_tot[ej]
    BIG = float(Hobs_tot.max() + 10.0) if nv else 1.0
    key = j * BIG + Hobs
    # rows with positive increments only, to avoid landing on zero-length rows
    pos = (rate_obs * length) > 0
    keyp = key[pos]
    rows_p = np.flatnonzero(pos)
    r = rows_p[np.clip(np.searchsorted(keyp, ej * BIG + h, side="right") - 1, 0, None)]
    et = t[r] + (h - Hobs[r]) / rate_obs[r] * YEAR
    e_awol = awol_state[r]
    # first event on the unit-rate scale (common random numbers for the potential outcomes)
    E1 = np.full(nv, np.inf)
    if len(ej):
        np.minimum.at(E1, ej, h)
    none = ~np.isfinite(E1)
    E1[none] = Hobs_tot[none] + rng.exponential(1.0, none.sum())
    return dict(ev_j=ej, ev_t=et, ev_awol=e_awol, H0_tau=H0_tau, H1_tau=H1_tau, tau=tau,
                E1=E1, Hobs_tot=Hobs_tot, Htot0=Htot0, exp_awol=exp_awol, exp_all=exp_all)
