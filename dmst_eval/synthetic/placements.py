"""Facilities, placement spells (settings, facilities, towns) and AWOL episodes.

All vectorised: per-child variable-length structures are flat arrays sorted by child with
``offsets`` (numpy ``repeat``/``cumsum`` idioms), never Python loops over children.
"""
from __future__ import annotations

import numpy as np

from dmst_eval import schema

from .population import YEAR

FAMILY = ("foster_family", "kinship", "specialized_foster")
CONG = schema.CONGREGATE_SETTINGS  # group_home, residential_treatment, shelter
SETTING_INDEX = {s: i for i, s in enumerate(schema.SETTINGS)}


def group_starts(child: np.ndarray, n: int) -> np.ndarray:
    """Offsets of each child's block in an array sorted by child (length n+1)."""
    counts = np.bincount(child, minlength=n)
    off = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=off[1:])
    return off


def weighted_pick_within(child_of_item: np.ndarray, weight: np.ndarray, n_children: int,
                         picks_child: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """For each pick (a child id), choose one of that child's items with probability ∝ weight.

    Items must be sorted by child. Returns (item index, position u within the item's weight in
    [0, 1)). Children whose total weight is 0 get index -1.
    """
    cw = np.cumsum(weight)
    off = group_starts(child_of_item, n_children)
    lo = off[picks_child]
    hi = off[picks_child + 1]
    base = np.where(lo > 0, cw[np.maximum(lo - 1, 0)], 0.0)
    base = np.where(lo > 0, base, 0.0)
    tot = np.where(hi > lo, cw[np.maximum(hi - 1, 0)] - base, 0.0)
    target = base + rng.random(len(picks_child)) * tot
    idx = np.searchsorted(cw, target, side="right")
    idx = np.clip(idx, lo, np.maximum(hi - 1, lo))
    ok = tot > 0
    before = np.where(idx > 0, cw[np.maximum(idx - 1, 0)], 0.0)
    frac = np.where(ok & (weight[np.minimum(idx, len(weight) - 1)] > 0),
                    (target - before) / np.where(weight[np.minimum(idx, len(weight) - 1)] > 0,
                                                 weight[np.minimum(idx, len(weight) - 1)], 1.0),
                    0.0)
    return np.where(ok, idx, -1), np.clip(frac, 0.0, 1.0 - 1e-12)


def make_facilities(cfg, towns, rng) -> dict:
    n = max(3, int(round(cfg.n_facilities * cfg.scale)))
    setting = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    setting[:3] = [0, 1, 2]  # at least one of each congregate setting
    cap = np.select([setting == 0, setting == 1, setting == 2],
                    [rng.integers(6, 13, n), rng.integers(20, 61, n), rng.integers(8, 17, n)])
    p = towns["population"].to_numpy(float)
    town = rng.choice(len(towns), size=n, p=p / p.sum())
    high = rng.random(n) < cfg.facility_high_risk_share
    rr = np.exp(cfg.facility_sd * rng.standard_normal(n))
    rr = np.where(high, cfg.facility_high_risk_rr, rr)
    if cfg.null_world:
        rr = np.ones(n)
        high = np.zeros(n, bool)
    return dict(n=n, setting=setting, capacity=cap.astype(np.int64), town=town, rr=rr, high=high)


def careers(cfg, ch: dict, D: int, rng) -> dict:
    """Placement spells: integer-day boundaries partitioning each child's [E, X)."""
    n = ch["n"]
    E, X = ch["E"], ch["X"]
    span = np.minimum(X, D) - E  # >= 1
    K = 1 + rng.poisson(cfg.spells_per_year * span / YEAR)
    K = np.minimum(np.minimum(K, 30), span)
    child = np.repeat(np.arange(n), K)
    off = group_starts(child, n)
    k = np.arange(len(child)) - off[child]
    # k-th start: k=0 -> E; k>=1 -> E + strictly increasing cut in [1, span-1]
    u = rng.random(len(child))
    # sort uniforms within child (k >= 1 only): sort by (child, u)
    u = np.where(k == 0, -1.0, u)
    order = np.lexsort((u, child))
    u = u[order]
    kk = np.arange(len(child)) - off[child]
    room = (span - K + 1)[child]
    cut = np.floor(np.maximum(u, 0) * room).astype(np.int64) + kk
    start = np.where(kk == 0, E[child], E[child] + cut)
    nxt = np.empty_like(start)
    nxt[:-1] = start[1:]
    last = kk == (K[child] - 1)
    end = np.where(last, X[child], nxt)
    # the stock's first spell began before the window
    start = np.where((kk == 0) & ch["stock"][child], start - ch["hist"][child], start)
    # search key of the spells, sorted (see spell_containing)
    key = child.astype(np.float64) * 1e6 + start
    return dict(child=child, k=kk, start=start, end=end, K=K, off=off, m=len(child), key=key)


def assign_settings(cfg, ch, sp, C, Rref, D, rng) -> np.ndarray:
    """Setting codes (index into schema.SETTINGS).

    C=0: family settings only. C=1: each spell congregate with probability
    ``congregate_spell_share``, and one spell starting before ``Rref`` (the child's reference
    time: first-episode start for victims, end of care for others) forced congregate.
    """
    child = sp["child"]
    m = sp["m"]
    yr = 2008 + np.maximum(sp["start"], 0) / YEAR
    spec_share = np.where(yr >= 2013, 0.08, 0.03)
    kin_share = np.clip(0.30 + 0.012 * (yr - 2008), 0, 0.6)
    u = rng.random(m)
    fam = np.where(u < spec_share, 2, np.where(u < spec_share + kin_share, 1, 0))
    fam_code = np.array([SETTING_INDEX[s] for s in FAMILY])[fam]
    cong_type = rng.choice(3, size=m, p=[0.45, 0.35, 0.20])
    cong_code = np.array([SETTING_INDEX[s] for s in CONG])[cong_type]
    Cc = C[child]
    is_cong = Cc & (rng.random(m) < cfg.congregate_spell_share)
    # forced: uniform among spells that start before Rref
    elig = (sp["start"] < Rref[child])
    n_el = np.bincount(child, weights=elig, minlength=ch["n"]).astype(np.int64)
    pick = np.floor(rng.random(ch["n"]) * np.maximum(n_el, 1)).astype(np.int64)
    forced = Cc & (sp["k"] == pick[child]) & elig
    is_cong = is_cong | forced
    return np.where(is_cong, cong_code, fam_code), is_cong


def assign_facilities(fac, sp, setting, is_cong, r_spell_mask, rng) -> np.ndarray:
    """Facility index per spell (-1 for family). Spells flagged in ``r_spell_mask`` (the spell
    in which a victim's first episode began) choose ∝ capacity × rr, others ∝ capacity."""
    out = np.full(sp["m"], -1, np.int64)
    cong_codes = [SETTING_INDEX[s] for s in CONG]
    for j, code in enumerate(cong_codes):  # loop over 3 settings only
        fidx = np.flatnonzero(fac["setting"] == j)
        for weighted in (False, True):
            sel = np.flatnonzero((setting == code) & is_cong & (r_spell_mask == weighted))
            if len(sel) == 0:
                continue
            w = fac["capacity"][fidx].astype(float) * (fac["rr"][fidx] if weighted else 1.0)
            c = np.cumsum(w)
            out[sel] = fidx[np.searchsorted(c, rng.random(len(sel)) * c[-1], side="right")]
    return out


def fac_prob_weighted(fac) -> np.ndarray:
    """P(facility f | weighted pick within its setting) for every facility."""
    p = np.zeros(fac["n"])
    for j in range(3):
        fidx = np.flatnonzero(fac["setting"] == j)
        w = fac["capacity"][fidx] * fac["rr"][fidx]
        p[fidx] = w / w.sum()
    return p


def spell_containing(sp, child_ids: np.ndarray, t: np.ndarray, n_children: int) -> np.ndarray:
    """Index of the spell of ``child_ids[j]`` containing time ``t[j]`` (start <= t < end), -1 if
    none. Spells are sorted by (child, start) and do not overlap; ``sp["key"]`` is
    ``child * 1e6 + start`` (built once by :func:`careers`)."""
    key = child_ids.astype(np.float64) * 1e6 + t
    idx = np.searchsorted(sp["key"], key, side="right") - 1
    ok = (idx >= 0)
    idx = np.where(ok, idx, 0)
    ok &= (sp["child"][idx] == child_ids) & (t < sp["end"][idx]) & (t >= sp["start"][idx])
    return np.where(ok, idx, -1)
