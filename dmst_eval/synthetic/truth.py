"""The ground truth (``cd.truth``): each estimand in the form its analysis recovers it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import schema

from . import events as ev
from .population import YEAR

DEFINITIONS = {
    "age_at_start": "Age in years (days / 365.25) on the later of study_start and the start of "
                    "the child's first placement spell: (max(min(placements.start), study_start) "
                    "- birth_date).days / 365.25; children never placed: age on study_start "
                    "(0 if born later).",
    "congregate_before": "Victims: any placement in a congregate setting (group_home, "
                         "residential_treatment, shelter) with start before the first confirmed "
                         "episode's identified_at. Others: any congregate placement at all.",
    "awol_before": "Victims: any awol_episodes.start before the first confirmed episode's "
                   "identified_at. Others: any AWOL episode at all.",
    "victim": "Child has at least one confirmed episode (identified in the study window).",
    "eligibility": "Risk population: child_welfare_involved children with birth_date + 11 * "
                   "365.25 days <= study_end + 1 day - 120 days (old enough to be identified "
                   "in the window).",
    "first_identification": "min(episodes.identified_at) over the child's confirmed episodes.",
    "eighteenth_birthday": "birth_date + 18 * 365.25 days (censoring of the recurrence model).",
    "awol(t)": "1 while an AWOL episode is open (start <= t < end, end missing = open to "
               "study_end).",
    "service(t)": "1 from the earliest services.started_at of the child onwards.",
    "revictimized_12m": "A further confirmed episode with began_at within 365 days after the "
                        "first identification (and before the 18th birthday); defined for "
                        "victims first identified at least 365 days before study_end + 1 day.",
    "referred": "The victim has a services row (all referrals are within 30 days of first "
                "identification).",
}


def _f(x) -> float:
    return float(np.round(float(x), 10))


def _fs(x) -> list[float]:
    """``[_f(v) for v in x]``, rounded in one call (the same numbers)."""
    return np.round(np.asarray(x, dtype=float), 10).tolist()


def _ratio(flag, V, el):
    a = flag[el & V].mean() if (el & V).any() else np.nan
    b = flag[el & ~V].mean() if (el & ~V).any() else np.nan
    return _f(a / b) if b > 0 and np.isfinite(a) else None


def _observed_measures(cfg, tables) -> dict:
    """The calibration measures (dmst_eval.synthetic.calibrate.MEASURES) on this bundle."""
    from .calibrate import Target, measure_values

    y0, y1 = pd.Timestamp(cfg.study_start).year, pd.Timestamp(cfg.study_end).year
    spec = {"identified_per_year_2008_2011": ("identified_per_year", "2008-2011"),
            "identified_per_year_2020_2025": ("identified_per_year", "2020-2025"),
            "identified_per_year_ratio": ("identified_per_year_ratio", "2020-2025 vs 2008-2011"),
            "home_share_2021": ("home_share", "2021"),
            "gibbs_congregate_ratio": ("congregate_relative_rate", f"{y0}-{y1}"),
            "gibbs_runaway_ratio": ("runaway_relative_rate", f"{y0}-{y1}"),
            "gibbs_placement_ratio": ("placement_relative_rate", f"{y0}-{y1}")}
    ts = {k: Target(m, p, 0.0, 1.0) for k, (m, p) in spec.items()}
    vals = measure_values(tables, list(ts.values()))
    out = {}
    for k, t in ts.items():
        v = vals[t.name]
        out[k] = _f(v) if v is not None and np.isfinite(v) else None
    return out


def build_truth(s: dict) -> dict:
    cfg = s["cfg"]
    D = s["D"]
    ch = s["ch"]
    towns = s["towns"]
    null = bool(cfg.null_world)
    start_ts = s["start_ts"]

    # ------------------------------------------------------------------ risk
    risk = {"population": "child_welfare", "outcome": "victim",
            "log_odds": {k: _f(v) for k, v in s["beta"].items()},
            "window": [str(start_ts.date()), str(pd.Timestamp(cfg.study_end).date())],
            "eligibility": DEFINITIONS["eligibility"],
            "min_age_years": cfg.min_victim_age, "end_margin_days": 120,
            "n_eligible": int(s["elig"].sum()),
            "expected_victims": _f(s["p"].sum()),
            "notes": ("victim ~ Bernoulli(expit(x'beta)) among eligible child-welfare children, "
                      "with the true (complete) flags; flags are then masked completely at "
                      "random, so a complete-case logit is unbiased. congregate_before and "
                      "awol_before are laid out before first identification (see "
                      "definitions).")}

    # ------------------------------------------------------------------ geography
    nt = len(towns)
    el = s["elig"]
    E_t = np.bincount(ch["town"][el], weights=s["p"][el], minlength=nt) \
        + s["mu_nc"] * towns["cw_weight"].to_numpy()
    pop = towns["pop_u18"].to_numpy(float)
    rate = E_t.sum() / pop.sum()
    rr_cond = E_t / (pop * rate)
    # unconditional: children land in towns independently of their flags, so victims per town
    # are Poisson with mean (total) x town weight (Poisson thinning): RR = weight / pop share
    w = towns["cw_weight"].to_numpy()
    rr_t = w / (pop / pop.sum())
    E_unc = E_t.sum() * w
    geography = {"base_rate_per_10000": _f(rate * 1e4),
                 "town_relative_risk": dict(zip(towns["town"], _fs(rr_t))),
                 "expected_victims": dict(zip(towns["town"], _fs(E_unc))),
                 "town_relative_risk_conditional": dict(zip(towns["town"], _fs(rr_cond))),
                 "expected_victims_conditional": dict(zip(towns["town"], _fs(E_t))),
                 "hotspots": [] if null else sorted(cfg.hotspot_towns),
                 "population": "2010 Census under-18 population (geography.towns()."
                               "population_under18)",
                 "outcome": "children with >= 1 confirmed episode in the window, counted by "
                            "children.home_town (all children, child-welfare or not); relative "
                            "risk = E[victims in town] / (under-18 population x statewide rate). "
                            "town_relative_risk is the planted (unconditional) value: counts are "
                            "Poisson with these means; *_conditional also conditions on the "
                            "realised child-welfare population of each town"}

    # ------------------------------------------------------------------ facilities
    fac, sp = s["fac"], s["sp"]
    rs = s["rs"]
    cong_rs = (rs >= 0)
    cong_rs[cong_rs] = s["is_cong"][rs[cong_rs]]
    from . import placements as pl

    cong_codes = np.array([pl.SETTING_INDEX[c] for c in pl.CONG])
    setting_j = np.searchsorted(cong_codes, s["setting"][rs[cong_rs]]) if cong_rs.any() \
        else np.zeros(0, np.int64)
    n_j = np.bincount(setting_j, minlength=3)
    pw = pl.fac_prob_weighted(fac)
    E_f = n_j[fac["setting"]] * pw
    lo_ = np.maximum(sp["start"], 0)
    hi_ = np.minimum(sp["end"], D)
    yrs = np.maximum(hi_ - lo_, 0) / YEAR
    has = s["sp_fac"] >= 0
    expo = np.bincount(s["sp_fac"][has], weights=yrs[has], minlength=fac["n"])
    frate = E_f.sum() / expo.sum() if expo.sum() > 0 else np.nan
    fw = max(3, len(str(fac["n"])))
    fids = ["F" + str(i).zfill(fw) for i in range(1, fac["n"] + 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        rr_f = _fs(E_f / (expo * frate))
    rr_f = {f: (None if expo[i] <= 0 or not frate > 0 else rr_f[i]) for i, f in enumerate(fids)}
    facilities = {"relative_risk": rr_f,
                  "planted_weight": dict(zip(fids, _fs(fac["rr"]))),
                  "high_risk": [f for f, h in zip(fids, fac["high"]) if h],
                  "expected_victims": dict(zip(fids, _fs(E_f))),
                  "child_years": dict(zip(fids, _fs(expo))),
                  "base_rate_per_child_year": _f(frate),
                  "outcome": "victims whose FIRST confirmed episode has episodes.facility_id == f "
                             "(status placement or awol), per child-year of placement at f inside "
                             "the window (placements clipped to [study_start, study_end]); "
                             "relative risk = E[victims at f] / (child-years at f x overall rate)"}

    # ------------------------------------------------------------------ recurrence
    hr = s["hr"]
    rec = s["rec"]
    recurrence = {"time_scale": "days since first identification", "censor_age": 18,
                  "baseline_rate_per_year": _f(cfg.baseline_rate_per_year),
                  "hazard_ratios": {k: _f(v) for k, v in hr.items()},
                  "event": "further confirmed episodes, at episodes.began_at",
                  "n_victims": int(len(s["vT"])),
                  "expected_events": _f(rec["exp_all"]),
                  "notes": "Andersen-Gill intensity, constant baseline; awol(t) and service(t) "
                           "time-varying; intensity does not depend on past episodes."}
    awol = {"multiplier": _f(hr["awol"]),
            "expected_share_episodes_during_awol": _f(rec["exp_awol"] / rec["exp_all"])
            if rec["exp_all"] > 0 else None,
            "p_first_episode_awol": _f(cfg.p_first_episode_awol),
            "onset_hours": {"distribution": "lognormal", "median": _f(cfg.onset_hours_median),
                            "sigma": _f(cfg.onset_hours_sigma),
                            "notes": "hours from AWOL start to began_at of a first episode that "
                                     "began during AWOL; truncated so it starts within the "
                                     "placement spell"}}

    # ------------------------------------------------------------------ services / ATE
    ref = s["ref"]
    full = s["vT"] + 365.0 <= D
    P0 = 1 - np.exp(-rec["H0_tau"])
    P1 = 1 - np.exp(-rec["H1_tau"])
    Y0 = rec["E1"] < rec["H0_tau"]
    Y1 = rec["E1"] < rec["H1_tau"]
    if full.any():
        rd = _f(P1[full].mean() - P0[full].mean())
        rr = _f(P1[full].mean() / P0[full].mean()) if P0[full].mean() > 0 else None
        srd = _f(Y1[full].mean() - Y0[full].mean())
        att = _f((P1 - P0)[full & ref["Z"]].mean()) if (full & ref["Z"]).any() else None
    else:
        rd = rr = srd = att = None
    services = {"hazard_ratio": _f(hr["service"]), "outcome": "revictimized_12m",
                "treatment": "referred (any services row)",
                "ate_revictimization_12m": {
                    "risk_difference": rd, "risk_ratio": rr,
                    "risk_treated": _f(P1[full].mean()) if full.any() else None,
                    "risk_untreated": _f(P0[full].mean()) if full.any() else None,
                    "sample_risk_difference": srd, "att_risk_difference": att,
                    "n": int(full.sum()),
                    "population": "victims first identified >= 365 days before the window end",
                    "notes": "mean over the population of each victim's probability under "
                             "referral and under no referral (same covariate and AWOL "
                             "timelines; service starts with probability service_start_prob); "
                             "sample_risk_difference uses common random numbers"},
                "referral_log_odds": {k: _f(v) for k, v in cfg.referral_log_odds.items()},
                "confounders": ["substance_use", "prior_runaway", "awol_before", "male"],
                "share_referred": _f(ref["Z"].mean()) if len(ref["Z"]) else None}

    # ------------------------------------------------------------------ ITS
    mu = s["mu_m"]
    its = {"intervention": str(pd.Timestamp(cfg.pa_11_180_effective).date()),
           "intervention_is_assumption": True,
           "series": "monthly reports with reporter_type == police",
           "model": "log E[count_m] = a + b*m + log(level)*post_m + slope*(m - m0)*post_m; "
                    "m = months since the study_start month, post_m = m >= m0",
           "level_change_rate_ratio": _f(s["step"]),
           "slope_change_per_month": _f(s["slope_ch"]),
           "baseline_per_month": _f(cfg.police_reports_per_month_2008 * cfg.scale),
           "trend_per_month": _f(cfg.police_trend_per_month), "m0": int(s["m0"]),
           "expected_monthly": _fs(mu),
           "max_police_share_identifying": _f(s["pi"].max())}

    # ------------------------------------------------------------------ training
    gains = {c: (0.0 if null else _f(cfg.training_gain[c])) for c in schema.CURRICULA}
    training = {"gain": gains, "session_sd": _f(cfg.training_session_sd),
                "attendee_sd": _f(cfg.training_attendee_sd),
                "pre_mean": _f(cfg.training_pre_mean), "pre_sd": _f(cfg.training_pre_sd),
                "notes": "post - pre = gain[curriculum] + session effect + attendee noise; scores "
                         "clipped to [0, 100] and rounded to 0.1 (negligible with the "
                         "defaults); scores missing completely at random"}

    # ------------------------------------------------------------------ calibration
    d_2012 = ev.day_of(cfg, "2012-01-01")
    in0811 = s["vT"] < d_2012
    d21a, d21b = ev.day_of(cfg, "2021-01-01"), ev.day_of(cfg, "2022-01-01")
    r2021 = int(((s["rp_t"] >= d21a) & (s["rp_t"] < d21b)).sum())

    def stock(date):
        d = (pd.Timestamp(date) - start_ts).days
        inn = (sp["start"] <= d) & (sp["end"] > d)
        return int(inn.sum()), _f(s["is_cong"][inn].mean()) if inn.any() else None

    s11, c11 = stock("2011-01-15")
    s21, c21 = stock("2021-04-15")
    calibration = {
        "expected_victims_identified_2008_2011": _f(s["lam_T"][:max(0, min(d_2012, D))].sum()),
        "victims_identified_2008_2011": int(in0811.sum()),
        "child_welfare_involved_2008_2011": int((in0811 & s["v_cw"]).sum()),
        "male_2008_2011": int((in0811 & s["v_male"]).sum()),
        "reports_2021": r2021,
        "in_care_2011_01_15": s11, "congregate_share_2011_01_15": c11,
        "in_care_2021_04_15": s21, "congregate_share_2021_04_15": c21,
        "awol_share_placed_age10plus": _f(s["A"][ch["placed"] & (ch["age_at_start"] >= 10)]
                                          .mean()),
        "congregate_ratio_victims": _ratio(s["C"], s["V"], el),
        "awol_ratio_victims": _ratio(s["A"], s["V"], el),
        "share_revictimized_12m": _f(np.mean((rec["E1"] < np.where(ref["Z"], rec["H1_tau"],
                                                                     rec["H0_tau"]))[full]))
        if full.any() else None,
        **_observed_measures(cfg, s["tables"]),
        "targets": {"victims_identified_2008_2011": 88, "child_welfare_involved_share": 86 / 88,
                    "male_2008_2011": 3, "reports_2021": 241, "in_care_2011_01": 4900,
                    "congregate_share_2011_01": 0.30, "in_care_2021_04": 3480,
                    "congregate_share_2021_04": "< 0.06", "home_share_2021": 161 / 241,
                    "identified_per_year_ratio": ">= 1.5", "gibbs_congregate_ratio": "> 5",
                    "gibbs_runaway_ratio": "> 10", "gibbs_placement_ratio": 2},
        "scale": cfg.scale,
    }
    return {"null_world": null, "study_start": str(start_ts.date()),
            "study_end": str(pd.Timestamp(cfg.study_end).date()), "seed": int(cfg.seed),
            "definitions": DEFINITIONS, "risk": risk, "geography": geography,
            "facilities": facilities, "recurrence": recurrence, "awol": awol,
            "services": services, "its": its, "training": training,
            "calibration": calibration}
