"""Restore & Recovery service referrals after first identification (confounded referral)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import schema

from .population import expit

#: (service, available from, relative weight as the first referral, duration days lo, hi,
#: completion probability) — availability follows the agency's account (assumption where no date)
CATALOGUE = (
    ("medical_assessment", "2008-01-01", 1.0, 0.1, 1.0, 0.95),
    ("clinical_consultation", "2011-01-01", 1.0, 1.0, 30.0, 0.85),
    ("mlmc_group", "2010-06-01", 1.5, 70.0, 70.0, 0.65),
    ("emergency_bed", "2011-06-01", 0.6, 3.0, 30.0, 0.8),
    ("mentor", "2012-06-01", 1.2, 180.0, 365.0, 0.6),
    ("specialized_foster_home", "2013-06-01", 0.5, 120.0, 400.0, 0.55),
)


def referral(cfg, X: dict, T: np.ndarray, D: int, rng) -> dict:
    """Referral indicator Z, counterfactual start s and start indicator for every victim.

    ``X``: true victim covariates (substance_use, prior_runaway, awol_before, male).
    """
    b = cfg.referral_log_odds
    lp = (b["intercept"] + b["substance_use"] * X["substance_use"]
          + b["prior_runaway"] * X["prior_runaway"] + b["awol_before"] * X["awol_before"]
          + b["male"] * X["male"])
    pz = expit(lp)
    nv = len(T)
    Z = rng.random(nv) < pz
    ref = T + 30.0 * rng.random(nv)
    s = ref + 21.0 * rng.random(nv)
    started = rng.random(nv) < cfg.service_start_prob
    Z &= ref < D
    return dict(Z=Z, p_referral=pz, referred_at=ref, s=s, started=started)


def service_rows(cfg, vic_child: np.ndarray, ep_id_first: np.ndarray, ref: dict, D: int,
                 start_ts: pd.Timestamp, rng) -> dict:
    """Rows of the services table for referred victims (flat arrays)."""
    idx = np.flatnonzero(ref["Z"])
    n_extra = rng.binomial(2, 0.35, len(idx))
    nrow = 1 + n_extra
    owner = np.repeat(idx, nrow)
    first = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, bool)
    t_ref = ref["referred_at"][owner] + np.where(first, 0.0, 60.0 * rng.random(len(owner)))
    keep = t_ref < D
    # type among services available at referral
    avail_from = np.array([(pd.Timestamp(c[1]) - start_ts).days for c in CATALOGUE], float)
    w = np.array([c[2] for c in CATALOGUE])
    W = (t_ref[:, None] >= avail_from[None, :]) * w[None, :]
    cw = np.cumsum(W, axis=1)
    u = rng.random(len(owner)) * cw[:, -1]
    typ = (cw < u[:, None]).sum(axis=1)
    started_first = ref["started"][owner] & (ref["s"][owner] < D)
    st = np.where(first, ref["s"][owner],
                  np.maximum(t_ref, ref["s"][owner]) + 30.0 * rng.random(len(owner)))
    st_ok = started_first & np.where(first, True, rng.random(len(owner)) < 0.6) & (st < D)
    lo = np.array([c[3] for c in CATALOGUE])[typ]
    hi = np.array([c[4] for c in CATALOGUE])[typ]
    pc = np.array([c[5] for c in CATALOGUE])[typ]
    en = st + lo + (hi - lo) * rng.random(len(owner))
    en_ok = st_ok & (en < D)
    completed = np.where(en_ok, rng.random(len(owner)) < pc, False)
    return dict(child=vic_child[owner][keep], episode=ep_id_first[owner][keep],
                service=typ[keep], referred=t_ref[keep], started=np.where(st_ok, st, np.nan)[keep],
                ended=np.where(en_ok, en, np.nan)[keep], completed=completed[keep],
                completed_known=en_ok[keep])


SERVICE_NAMES = tuple(c[0] for c in CATALOGUE)
assert set(SERVICE_NAMES) == set(schema.SERVICES)
