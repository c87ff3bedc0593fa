"""Awareness & Education: training sessions on the agency's timeline, attendee pre/post scores.

post = pre + gain[curriculum] + session effect ~ N(0, session_sd) + attendee noise ~ N(0,
attendee_sd); scores clipped to [0, 100] (rare with the defaults), some missing at random.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import schema

#: curriculum, first date, sessions per month at scale 1, main audience(s), hours, mean attendees
SCHEDULE = (
    ("dmst_full_day", "2009-01-01", 1.0, ("dcf_staff", "community_provider", "congregate_staff"),
     6.5, 22),
    ("dmst_day2_demand", "2011-03-01", 1.0, ("dcf_staff", "community_provider"), 6.5, 18),
    ("police_roll_call", "2011-01-01", 3.0, ("police",), 0.75, 15),
    ("dmst_1hr", "2011-02-01", 2.0, ("ems", "school", "community_provider", "judicial"), 1.0, 20),
    ("foster_parent", "2011-09-01", 0.7, ("foster_parents",), 2.0, 14),
    ("mlmc_provider", "2010-06-01", 0.34, ("community_provider", "congregate_staff"), 12.0, 16),
    ("man_up", "2012-03-02", 1.0, ("youth",), 10.0, 10),
    ("dmst_2hr_law_enforcement", "2012-04-01", 1.0, ("police",), 2.0, 20),
    ("dmst_3day_certification", "2012-09-01", 0.34, ("dcf_staff", "community_provider"), 19.5,
     20),
    ("supervisory_series", "2012-06-01", 1.5, ("dcf_staff",), 1.5, 9),
)


def make_trainings(cfg, D: int, rng) -> tuple[dict, dict]:
    start = pd.Timestamp(cfg.study_start)
    cur_idx = {c: i for i, c in enumerate(schema.CURRICULA)}
    aud_idx = {a: i for i, a in enumerate(schema.AUDIENCES)}
    sess = {k: [] for k in ("day", "cur", "aud", "region", "n", "hours")}
    for name, first, per_month, auds, hours, mean_att in SCHEDULE:  # 10 curricula
        d0 = max(0, (pd.Timestamp(first) - start).days)
        if d0 >= D:
            continue
        months = (D - d0) / 30.4375
        n = rng.poisson(per_month * months * cfg.scale)
        day = np.sort(d0 + rng.integers(0, D - d0, n))
        aud = np.array([aud_idx[a] for a in auds])[rng.integers(0, len(auds), n)]
        sess["day"].append(day)
        sess["cur"].append(np.full(n, cur_idx[name]))
        sess["aud"].append(aud)
        sess["region"].append(rng.integers(0, len(schema.REGIONS), n))
        sess["n"].append(np.maximum(3, rng.poisson(mean_att, n)))
        sess["hours"].append(np.full(n, hours))
    S = {k: np.concatenate(v) for k, v in sess.items()}
    o = np.lexsort((S["cur"], S["day"]))
    S = {k: v[o] for k, v in S.items()}
    ns = len(S["day"])
    gains = np.array([cfg.training_gain[c] for c in schema.CURRICULA])
    if cfg.null_world:
        gains = np.zeros_like(gains)
    u_sess = cfg.training_session_sd * rng.standard_normal(ns)
    sid = np.repeat(np.arange(ns), S["n"])
    na = len(sid)
    role = np.where(rng.random(na) < 0.85, S["aud"][sid], rng.integers(0, len(schema.ROLES), na))
    pre = cfg.training_pre_mean + cfg.training_pre_sd * rng.standard_normal(na)
    post = pre + gains[S["cur"][sid]] + u_sess[sid] + cfg.training_attendee_sd * rng.standard_normal(na)
    pre = np.clip(pre, 0, 100)
    post = np.clip(post, 0, 100)
    miss_pre = rng.random(na) < cfg.training_score_missing
    miss_post = rng.random(na) < cfg.training_score_missing
    pre = np.where(miss_pre, np.nan, np.round(pre, 1))
    post = np.where(miss_post, np.nan, np.round(post, 1))
    A = dict(sid=sid, role=role, pre=pre, post=post)
    return S, A
