"""Towns, children in care (entries, ages, risk flags) and the latent congregate/AWOL flags.

Times inside the generator are float days since ``study_start`` (day 0); ``D`` is the number of
days in the window (the window is ``[0, D)``). Ages are in years of 365.25 days.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import geography

YEAR = 365.25

#: Age-at-entry weights (years 0..17) for entries to care (assumption, AFCARS-like shape).
ENTRY_AGE_W = np.array([17, 7, 6, 6, 5, 5, 4.5, 4, 4, 3.5, 3.5, 3.5, 4, 5, 6, 6.5, 5.5, 3.0])
#: Age weights of the stock in care on study_start (assumption).
STOCK_AGE_W = np.array([6, 6, 5.5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5.5, 6, 7, 7.5, 7.5, 5.0])


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def town_frame(cfg, rng: np.random.Generator) -> pd.DataFrame:
    """169 towns with region, under-18 population, km coordinates and the log-need field."""
    tab = geography._town_table()
    reg = geography.town_area_offices().set_index("town")["dcf_region"]
    t = tab[["town", "population_2010", "population_under18_2010", "centroid_lat",
             "centroid_lon"]].sort_values("town").reset_index(drop=True)
    t = t.rename(columns={"population_2010": "population",
                          "population_under18_2010": "pop_u18"})
    t["region"] = t["town"].map(reg).to_numpy()
    lat0 = np.deg2rad(41.6)
    t["x_km"] = (t["centroid_lon"] - t["centroid_lon"].mean()) * 111.32 * np.cos(lat0)
    t["y_km"] = (t["centroid_lat"] - t["centroid_lat"].mean()) * 110.57
    # spatially smooth field (Gaussian kernel), always drawn so the stream does not depend on
    # null_world
    xy = t[["x_km", "y_km"]].to_numpy()
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    K = np.exp(-d2 / (2 * cfg.spatial_range_km ** 2))
    z = rng.standard_normal(len(t))
    field = K @ z  # kernel-smoothed white noise (a smooth Gaussian field)
    field = (field - field.mean()) / max(field.std(), 1e-12) * cfg.spatial_sd
    hot = t["town"].isin(cfg.hotspot_towns).to_numpy()
    log_need = field + np.where(hot, np.log(cfg.hotspot_multiplier), 0.0)
    if cfg.null_world:
        log_need = np.zeros(len(t))
    t["hotspot"] = hot & (not cfg.null_world)
    t["log_need"] = log_need
    w = t["pop_u18"].to_numpy() * np.exp(log_need)
    t["cw_weight"] = w / w.sum()
    return t


def _inverse_cdf_days(rate: np.ndarray, n: int, rng) -> np.ndarray:
    """n integer days drawn with probability proportional to ``rate`` (per day)."""
    c = np.cumsum(rate)
    u = rng.random(n) * c[-1]
    return np.searchsorted(c, u, side="right").astype(np.int64)


def _ages(weights: np.ndarray, n: int, rng, max_age: float = 17.5) -> np.ndarray:
    w = weights / weights.sum()
    a = rng.choice(len(w), size=n, p=w).astype(float)
    frac = rng.random(n)
    frac = np.where(a >= np.floor(max_age), frac * (max_age - np.floor(max_age)), frac)
    return a + frac


def children_in_care(cfg, towns: pd.DataFrame, D: int, rng) -> dict:
    """Child-welfare children: stock on day 0 plus entries; dates, sex, race, town, flags."""
    s = cfg.scale
    n_stock = rng.poisson(cfg.initial_in_care * s)
    last_entry = D - 120  # entries stop 120 days before the window end (see docs)
    day = np.arange(last_entry)
    lr0, lr1 = np.log(max(cfg.entries_per_year_start, 1e-9)), np.log(max(cfg.entries_per_year_end,
                                                                          1e-9))
    rate = np.exp(lr0 + (lr1 - lr0) * day / D) / YEAR * s
    n_entry = rng.poisson(rate.sum())
    e_entry = np.sort(_inverse_cdf_days(rate, n_entry, rng))
    n = n_stock + n_entry
    E = np.concatenate([np.zeros(n_stock, np.int64), e_entry])
    stock = np.zeros(n, bool)
    stock[:n_stock] = True
    age = np.concatenate([_ages(STOCK_AGE_W, n_stock, rng), _ages(ENTRY_AGE_W, n_entry, rng)])
    birth = E - np.round(age * YEAR).astype(np.int64)
    age_at_start = (E - birth) / YEAR
    male = rng.random(n) < cfg.male_share
    races = list(cfg.race_shares)
    rw = np.array([cfg.race_shares[r] for r in races], float)
    race_code = rng.choice(len(races), size=n, p=rw / rw.sum())
    town = rng.choice(len(towns), size=n, p=towns["cw_weight"].to_numpy())
    # care career length (years, lognormal), ends at most at the 18th birthday
    dur = np.exp(np.log(cfg.care_years_median) + cfg.care_years_sigma * rng.standard_normal(n))
    X = E + np.maximum(1, np.round(dur * YEAR)).astype(np.int64)
    b18 = birth + 18 * YEAR
    X = np.minimum(X, np.floor(b18).astype(np.int64))
    X = np.maximum(X, E + 1)
    # history of the stock's current spell before day 0
    hist = np.where(stock, np.minimum(np.ceil(rng.random(n) * 700), np.maximum(E - birth - 1, 0)),
                    0).astype(np.int64)
    flags = risk_flags(cfg, age_at_start, male, n, rng)
    ch = dict(n=n, E=E, X=X, birth=birth, b18=b18, age_at_start=age_at_start, male=male,
              race_code=race_code, races=races, town=town, stock=stock, hist=hist,
              placed=np.ones(n, bool), **flags)
    return _add_home_children(cfg, ch, towns, D, rng)


def _add_home_children(cfg, ch: dict, towns: pd.DataFrame, D: int, rng) -> dict:
    """Child-welfare-involved children never placed out of home (in-home services,
    investigations), old enough to be at risk in the window: birth dates uniform so that the
    11th birthday falls before the window's last 120 days and the 18th after its start."""
    nh = rng.poisson(cfg.home_cw_children * cfg.scale)
    lo_b, hi_b = int(np.ceil(-18 * YEAR + 1)), int(np.floor(D - 120 - 11 * YEAR))
    birth = lo_b + np.floor(rng.random(nh) * (hi_b - lo_b + 1)).astype(np.int64)
    age_at_start = np.maximum(0.0, -birth / YEAR)
    male = rng.random(nh) < cfg.male_share
    rw = np.array([cfg.race_shares[r] for r in ch["races"]], float)
    race_code = rng.choice(len(rw), size=nh, p=rw / rw.sum())
    town = rng.choice(len(towns), size=nh, p=towns["cw_weight"].to_numpy())
    E = np.maximum(birth, 0)
    flags = risk_flags(cfg, np.full(nh, 14.0), male, nh, rng)
    new = dict(E=E, X=E.copy(), birth=birth, b18=birth + 18 * YEAR, age_at_start=age_at_start,
               male=male, race_code=race_code, town=town, stock=np.zeros(nh, bool),
               hist=np.zeros(nh, np.int64), placed=np.zeros(nh, bool), **flags)
    out = {k: (np.concatenate([ch[k], new[k]]) if k in new else ch[k]) for k in ch}
    out["n"] = ch["n"] + nh
    return out


def risk_flags(cfg, age_at_start, male, n, rng) -> dict:
    """Correlated flags from a probit model with a shared adversity factor.

    Prevalence is the configured value at age 12; older entrants have more running, substance
    use and juvenile justice; boys have less prior sexual abuse and more juvenile justice.
    """
    lam = cfg.flag_correlation
    z = rng.standard_normal(n)
    from scipy.special import ndtri

    out = {}
    agec = (age_at_start - 12) / 5
    shifts = {"prior_sexual_abuse": (0.0, -0.6), "prior_runaway": (0.35, 0.0),
              "substance_use": (0.45, 0.15), "juvenile_justice": (0.45, 0.55),
              "lgbtq": (0.1, -0.1)}
    for k in ("prior_sexual_abuse", "prior_runaway", "substance_use", "juvenile_justice",
              "lgbtq"):
        a = ndtri(cfg.flag_prevalence[k])
        sa, sm = shifts[k]
        lat = a + sa * agec + sm * (male - cfg.male_share)
        out[k] = (lat + lam * z + np.sqrt(1 - lam ** 2) * rng.standard_normal(n)) > 0
    out["adversity"] = z
    return out


def latent_care_flags(cfg, ch: dict, D: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """congregate_before (C) and awol_before (A): child-level latent flags (mechanism, not a
    planted effect: the same in the null world)."""
    entry_year = 2008 + ch["E"] / YEAR
    frac = np.clip((entry_year - 2008) / 13.0, 0, 1)
    era = cfg.congregate_logit_2008 + (cfg.congregate_logit_2021 - cfg.congregate_logit_2008) * frac
    agec = ch["age_at_start"] - 12
    lc = (era + 0.22 * agec + 0.6 * ch["prior_runaway"] + 0.7 * ch["juvenile_justice"]
          + 0.3 * ch["substance_use"] - 0.25 * ch["male"])
    # little ones rarely go to congregate care
    lc = lc - 1.5 * (ch["age_at_start"] < 6)
    C = (rng.random(ch["n"]) < expit(lc)) & ch["placed"]
    la = (cfg.awol_logit + cfg.awol_congregate_log_or * C + cfg.awol_age_log_or * agec
          + 0.9 * ch["prior_runaway"] + 0.4 * ch["substance_use"])
    # running needs time in care at an age where children run (>= 9 at some point in care)
    can_run = ((ch["X"] - ch["birth"]) / YEAR >= 9) & (ch["birth"] + 9 * YEAR < D - 2)
    A = (rng.random(ch["n"]) < expit(la)) & can_run & ch["placed"]
    return C, A
