"""``generate()``: the synthetic case-data bundle with its ground truth."""
from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from dmst_eval import schema

from . import events as ev
from . import placements as pl
from .config import SyntheticConfig
from .population import YEAR, children_in_care, expit, latent_care_flags, risk_flags, town_frame
from .services import SERVICE_NAMES, referral, service_rows
from .trainings import make_trainings
from .truth import build_truth

NONPOLICE = ("dcf_staff", "congregate_provider", "school", "medical", "community_provider",
             "family", "other")
NONPOLICE_W = np.array([0.30, 0.12, 0.15, 0.12, 0.15, 0.10, 0.06])


class _Progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self._cm = contextlib.nullcontext()
        self.p = None
        if enabled:
            from rich.progress import Progress

            self.p = Progress(transient=False)
            self._cm = self.p
            self.total = total

    def __enter__(self):
        self._cm.__enter__()
        if self.p is not None:
            self.task = self.p.add_task("generating", total=self.total)
        return self

    def step(self, what: str):
        if self.p is not None:
            self.p.update(self.task, advance=1, description=what)

    def __exit__(self, *a):
        return self._cm.__exit__(*a)


def _ids(prefix: str, k: np.ndarray, width: int | None = None) -> pd.arrays.StringArray:
    """Identifier strings ``prefix`` + zero-padded ``k``."""
    k = np.asarray(k, dtype=np.int64)
    if width is None:
        width = max(6, len(str(int(k.max()) if len(k) else 0)))
    # vectorised: code points of prefix + digits, viewed as a fixed-width unicode array
    cp = np.empty((len(k), len(prefix) + width), dtype=np.uint32)
    cp[:, :len(prefix)] = [ord(c) for c in prefix]
    rest = k % 10 ** width  # the last `width` digits, last digit first
    rest = rest.astype(np.uint32) if width <= 9 else rest  # (uint32 divides faster)
    for j in range(len(prefix) + width - 1, len(prefix) - 1, -1):
        cp[:, j] = rest % 10 + ord("0")
        rest //= 10
    u = cp.view(f"<U{len(prefix) + width}").ravel()
    return pd.array(u, dtype=pd.StringDtype("python"))


def _ranked_ids(prefix: str, rank: np.ndarray, width: int) -> pd.arrays.StringArray:
    """``_ids(prefix, rank + 1, width)`` for a permutation ``rank``, the strings created in id
    order: a table sorted by id then holds them in memory order (faster to hash and look up
    than strings scattered in memory)."""
    return _ids(prefix, np.arange(1, len(rank) + 1), width)[np.asarray(rank)]


def _str_from_codes(codes: np.ndarray, labels) -> pd.arrays.StringArray:
    """String array of ``labels[codes]`` (codes < 0 -> missing) without per-row formatting."""
    if not isinstance(labels, pd.arrays.StringArray):
        labels = pd.arrays.StringArray(np.asarray(labels, dtype=object))
    return labels.take(np.asarray(codes, dtype=np.int64), allow_fill=True)


def _dt(start_ns: int, days, D: float | None = None, unit_days: float = 1 / 1440) -> np.ndarray:
    """float days -> datetime64[ns] rounded to ``unit_days`` (default one minute); NaN / >= D
    -> NaT."""
    d = np.asarray(days, dtype=float)
    bad = ~np.isfinite(d)
    if D is not None:
        bad |= d >= D
    q = np.floor(np.where(bad, 0.0, d) / unit_days + 1e-9)
    ns = start_ns + (q * round(unit_days * 86400e9)).astype(np.int64)
    out = ns.view("datetime64[ns]").copy()
    out[bad] = np.datetime64("NaT")
    return out


def _masked_bool(x: np.ndarray, miss_p: float, rng) -> pd.arrays.BooleanArray:
    miss = rng.random(len(x)) < miss_p
    return pd.arrays.BooleanArray(np.asarray(x, bool), miss)


def _cat(codes, levels) -> pd.Categorical:
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(levels))


def _reordered(df: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """Rows of ``df`` in ``order``, indexed 0..n-1 (``df.iloc[order].reset_index(drop=True)``
    with one copy instead of two)."""
    out = df.take(order)
    out.index = pd.RangeIndex(len(out))
    return out


def generate(config: SyntheticConfig | None = None, progress: bool = False, **overrides):
    """Generate a synthetic case-data bundle (all nine schema tables) with a known ground truth.

    Parameters
    ----------
    config : SyntheticConfig, optional
        Settings; defaults reproduce Connecticut 2008-2011 figures at ``scale=1``.
    progress : bool
        Show a progress bar (rich).
    **overrides
        Any :class:`SyntheticConfig` field, e.g. ``scale=5, seed=3, null_world=True``.

    Returns
    -------
    CaseData
        ``cd.meta["source"] == "synthetic"``; ``cd.truth`` holds the estimands (see
        ``docs/ground_truth.md``).

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(scale=0.2, seed=1)
    >>> cd.meta["source"], sorted(cd.truth)[:3]
    ('synthetic', ['awol', 'calibration', 'definitions'])
    """
    from dmst_eval.casedata import CaseData, generator_record

    cfg = config if config is not None else SyntheticConfig()
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError(f"config must be a SyntheticConfig, got {type(cfg).__name__}")
    if overrides:
        cfg = cfg.replace(**overrides)
    with _Progress(progress, 9) as prog:
        tables, truth = _generate(cfg, prog)
    meta = {"source": "synthetic", "study_start": str(pd.Timestamp(cfg.study_start).date()),
            "study_end": str(pd.Timestamp(cfg.study_end).date()), "seed": int(cfg.seed),
            "config": cfg.to_dict(), "generator": "dmst_eval.synthetic.generate",
            "null_world": bool(cfg.null_world)}
    meta.update(generator_record(meta["config"], truth))  # what makes the bundle synthetic
    return CaseData(tables, meta=meta, truth=truth)


def _generate(cfg: SyntheticConfig, prog, keep_state: bool = False):
    rng = np.random.default_rng(cfg.seed)
    start_ts = pd.Timestamp(cfg.study_start)
    start_ns = int(start_ts.value)
    D = int((pd.Timestamp(cfg.study_end) - start_ts).days) + 1

    # ---------------------------------------------------------------- population
    towns = town_frame(cfg, rng)
    nt = len(towns)
    ch = children_in_care(cfg, towns, D, rng)
    n = ch["n"]
    C, A = latent_care_flags(cfg, ch, D, rng)
    X = ev.design(ch, C, A)
    beta = dict(cfg.log_odds)
    eta = sum(beta[k] * X[k] for k in X)
    p = expit(eta)
    elig, lo, hi = ev.windows(cfg, ch, C, A, D)
    if cfg.null_world:
        pbar = float(p[elig].mean()) if elig.any() else float(expit(beta["intercept"]))
        beta = {k: 0.0 for k in beta}
        beta["intercept"] = float(np.log(pbar / (1 - pbar)))
        p = np.full(n, pbar)
    p = np.where(elig, p, 0.0)
    V = rng.random(n) < p
    prog.step("population")

    # ---------------------------------------------------------------- first episodes timing
    g = ev.identification_intensity(cfg, D)
    gc = np.r_[0.0, np.cumsum(g)]
    v = np.flatnonzero(V)
    nvc = len(v)
    R, T, _ = ev.first_episode_times(cfg, nvc, lo[v], hi[v], gc, rng)
    ca = C[v] | A[v]
    ch["X"][v] = np.where(ca, np.maximum(ch["X"][v], np.floor(R).astype(np.int64) + 1), ch["X"][v])
    Rref = np.minimum(ch["X"], D).astype(float)
    Rref[v] = R

    # ---------------------------------------------------------------- placements
    fac = pl.make_facilities(cfg, towns, rng)
    sp = pl.careers(cfg, ch, D, rng)
    setting, is_cong = pl.assign_settings(cfg, ch, sp, C, Rref, D, rng)
    rs = pl.spell_containing(sp, v, R, n)
    if np.any((rs < 0) & ca):
        raise AssertionError("internal: victim with congregate/AWOL flag not in care at R")
    awol_first = A[v] & (rs >= 0) & (rng.random(nvc) < cfg.p_first_episode_awol)
    r_mask = np.zeros(sp["m"], bool)
    r_mask[rs[rs >= 0]] = True
    sp_fac = pl.assign_facilities(fac, sp, setting, is_cong, r_mask, rng)
    home = towns_idx = ch["town"]
    popw = towns["population"].to_numpy(float)
    other_town = rng.choice(nt, size=sp["m"], p=popw / popw.sum())
    sp_town = np.where(sp_fac >= 0, fac["town"][np.maximum(sp_fac, 0)],
                       np.where(rng.random(sp["m"]) < 0.75, home[sp["child"]], other_town))
    prog.step("placements")

    # ---------------------------------------------------------------- AWOL episodes
    vid = np.full(n, -1, np.int64)
    vid[v] = np.arange(nvc)
    b9 = ch["birth"] + 9 * YEAR
    whi = np.minimum(ch["X"], D).astype(float)
    whi[v] = np.where(awol_first, R - 7.0, R)
    wlo = np.maximum(ch["E"].astype(float), b9)
    forced = A.copy()
    forced[v] = A[v] & ~awol_first
    n_awol = np.where(A, forced + rng.poisson(cfg.extra_awol_mean, n), 0)
    pick_child = np.repeat(np.arange(n), n_awol)
    s_lo = np.maximum(sp["start"].astype(float), wlo[sp["child"]])
    s_hi = np.minimum(sp["end"].astype(float), whi[sp["child"]])
    ov = np.maximum(s_hi - s_lo, 0.0)
    wts = ov * np.where(is_cong, 3.0, 1.0)
    a_sp, frac = pl.weighted_pick_within(sp["child"], wts, n, pick_child, rng)
    ok = a_sp >= 0
    a_child = pick_child[ok]
    a_sp = a_sp[ok]
    a_start = s_lo[a_sp] + frac[ok] * ov[a_sp]
    a_kind = np.zeros(len(a_child), np.int64)
    # episode AWOLs (first episode began during the AWOL)
    fv = np.flatnonzero(awol_first)
    onset = np.exp(np.log(cfg.onset_hours_median) + cfg.onset_hours_sigma
                   * rng.standard_normal(len(fv))) / 24.0
    onset = np.minimum(onset, R[fv] - sp["start"][rs[fv]] - 1 / 24)
    e_start = R[fv] - onset
    # post-identification AWOLs (time-varying awol in the recurrence model)
    spv = vid[sp["child"]]
    isv = spv >= 0
    Tp, Rp = np.r_[T, np.inf], np.r_[R, np.inf]  # padded: index -1 = no victim
    Tsp = Tp[spv]
    p_lo = np.maximum(sp["start"].astype(float), Tsp)
    p_hi = np.minimum(np.minimum(sp["end"].astype(float), D), ch["b18"][sp["child"]])
    plen = np.where(isv, np.maximum(p_hi - p_lo, 0.0), 0.0)
    prate = cfg.post_id_awol_rate * np.exp(0.8 * ch["prior_runaway"][sp["child"]]
                                           + 0.8 * A[sp["child"]] + 0.7 * is_cong) / YEAR
    npost = rng.poisson(prate * plen)
    post_sp = np.repeat(np.arange(sp["m"]), npost)
    post_start = p_lo[post_sp] + rng.random(len(post_sp)) * plen[post_sp]
    aw_child = np.concatenate([a_child, v[fv], sp["child"][post_sp]])
    aw_sp = np.concatenate([a_sp, rs[fv], post_sp])
    aw_start = np.concatenate([a_start, e_start, post_start])
    aw_kind = np.concatenate([a_kind, np.ones(len(fv), np.int64), np.full(len(post_sp), 2)])
    o = np.lexsort((aw_start, aw_child))
    aw_child, aw_sp, aw_start, aw_kind = aw_child[o], aw_sp[o], aw_start[o], aw_kind[o]
    dur = np.exp(np.log(cfg.awol_duration_median_days) + cfg.awol_duration_sigma
                 * rng.standard_normal(len(aw_child)))
    aw_end = aw_start + dur
    nxt_same = np.r_[aw_child[1:] == aw_child[:-1], False]
    nxt_start = np.r_[aw_start[1:], np.inf]
    aw_end = np.where(nxt_same, np.minimum(aw_end, nxt_start - 1 / 1440), aw_end)
    aw_end = np.minimum(aw_end, sp["end"][aw_sp].astype(float))
    av = vid[aw_child]
    pre = (aw_kind < 2) & (av >= 0)
    aw_end = np.where(pre, np.minimum(aw_end, Tp[av]), aw_end)
    epi = aw_kind == 1
    aw_end = np.where(epi, np.maximum(aw_end, Rp[av] + 1 / 24), aw_end)
    aw_end = np.maximum(aw_end, aw_start)
    n_aw = len(aw_child)
    # ids in order of start
    aw_rank = np.empty(n_aw, np.int64)
    aw_rank[np.lexsort((aw_child, aw_start))] = np.arange(n_aw)
    # episode AWOL row per first-episode victim
    ep_aw = np.full(nvc, -1, np.int64)
    ep_aw[av[epi]] = np.flatnonzero(epi)
    prog.step("awol")

    # ---------------------------------------------------------------- non-child-welfare victims
    # identified through police, schools, medical and community reporters: their identification
    # follows the period's reporting and training (non_cw_identification_growth, PA 11-180
    # step); the level makes them non_cw_victim_share of the victims identified in 2008-2011
    pmf = ev.lag_pmf(cfg)
    lam_cw = ev.expected_id_intensity(g, gc, lo[elig], hi[elig], p[elig], pmf, D)
    sh = cfg.non_cw_victim_share
    h_nc = ev.non_cw_intensity(cfg, D)
    d0 = ev.day_of(cfg, "2012-01-01")
    d0 = d0 if 0 < d0 <= D else min(D, int(4 * YEAR))  # window starting later: its first 4 years
    mu_nc = sh / (1 - sh) * float(lam_cw[:d0].sum()) / max(float(h_nc[:d0].sum()), 1e-300) \
        * float(h_nc.sum())
    lam_nc = h_nc / max(h_nc.sum(), 1e-300)  # per-day density of a non-CW identification
    n_nc = rng.poisson(mu_nc)
    cl = np.r_[0.0, np.cumsum(lam_nc)]
    t_day = np.clip(np.searchsorted(cl, rng.random(n_nc) * cl[-1], side="right") - 1, 0, D - 1)
    lagd = np.minimum(rng.choice(len(pmf), size=n_nc, p=pmf), t_day)
    nc_R = (t_day - lagd) + 0.25 + 0.15 * rng.random(n_nc)
    nc_T = t_day + 0.6 + 0.35 * rng.random(n_nc)
    nc_age = 13 + 4.5 * rng.random(n_nc)
    nc_birth = np.floor(nc_R - nc_age * YEAR).astype(np.int64)
    nc_town = rng.choice(nt, size=n_nc, p=towns["cw_weight"].to_numpy())
    nc_male = rng.random(n_nc) < 0.05
    nc_flags = risk_flags(cfg, np.full(n_nc, 15.0), nc_male, n_nc, rng)

    # ---------------------------------------------------------------- services and recurrence
    nv = nvc + n_nc
    vt_child = np.r_[v, n + np.arange(n_nc)]
    vT = np.r_[T, nc_T]
    vR = np.r_[R, nc_R]
    vb18 = np.r_[ch["b18"][v], nc_birth + 18 * YEAR]
    vcend = np.maximum(vT, np.minimum(vb18, D))
    fl = {k: np.r_[ch[k][v], nc_flags[k]].astype(float) for k in
          ("substance_use", "prior_runaway")}
    vmale = np.r_[ch["male"][v], nc_male].astype(float)
    vA = np.r_[A[v], np.zeros(n_nc, bool)].astype(float)
    hr = dict(cfg.hazard_ratios)
    if cfg.null_world:
        hr = {k: 1.0 for k in hr}
    cfg_rec = cfg.replace(hazard_ratios=hr) if cfg.null_world else cfg
    lp = (np.log(hr["substance_use"]) * fl["substance_use"]
          + np.log(hr["prior_runaway"]) * fl["prior_runaway"] + np.log(hr["male"]) * vmale)
    ref = referral(cfg, {"substance_use": fl["substance_use"], "prior_runaway": fl["prior_runaway"],
                         "awol_before": vA, "male": vmale}, vT, D, rng)
    post = aw_kind == 2
    awol_post = {"j": av[post], "start": aw_start[post],
                 "end": np.where(aw_end[post] >= D, D, aw_end[post])}
    rec = ev.recurrence(cfg_rec, {"T": vT, "cend": vcend, "lp": lp, "s": ref["s"],
                                  "started": ref["started"], "Z": ref["Z"]}, awol_post, D, rng)
    prog.step("recurrence")

    # ---------------------------------------------------------------- episodes
    n_rep = len(rec["ev_j"])
    rep_child = vt_child[rec["ev_j"]]
    rep_began = rec["ev_t"]
    rep_lag = rng.choice(len(pmf), size=n_rep, p=pmf) + 0.05 + 0.5 * rng.random(n_rep)
    rep_ident = np.minimum(rep_began + rep_lag, D - 1 / 1440)
    rep_ident = np.maximum(rep_ident, rep_began)
    # status of repeat episodes: AWOL (from the recurrence timeline), placement, or home
    rep_cw = rep_child < n
    rep_sp = np.full(n_rep, -1, np.int64)
    rep_sp[rep_cw] = pl.spell_containing(sp, rep_child[rep_cw], rep_began[rep_cw], n)
    rep_aw = np.full(n_rep, -1, np.int64)
    if n_rep and n_aw:
        key_aw = aw_child.astype(float) * 1e6 + aw_start
        ia = np.searchsorted(key_aw, rep_child.astype(float) * 1e6 + rep_began, side="right") - 1
        ia = np.clip(ia, 0, None)
        hit = (rec["ev_awol"] & rep_cw & (aw_child[ia] == rep_child) & (aw_start[ia] <= rep_began)
               & (rep_began < np.where(aw_end[ia] >= D, D, aw_end[ia]) + 1e-9))
        rep_aw = np.where(hit, ia, -1)
        rep_sp = np.where(hit, aw_sp[ia], rep_sp)
    # first episodes
    f_status = np.where(awol_first, 2, np.where(rs >= 0, 1, 0))
    f_sp = np.where(rs >= 0, rs, -1)
    f_aw = ep_aw
    ep_child = np.r_[v, n + np.arange(n_nc), rep_child]
    ep_began = np.r_[R, nc_R, rep_began]
    ep_ident = np.r_[T, nc_T, rep_ident]
    ep_status = np.r_[f_status, np.zeros(n_nc, np.int64),
                      np.where(rep_aw >= 0, 2, np.where(rep_sp >= 0, 1, 0))]
    ep_sp = np.r_[f_sp, np.full(n_nc, -1), rep_sp]
    ep_aw_all = np.r_[f_aw, np.full(n_nc, -1), rep_aw]
    ep_first = np.r_[np.ones(nv, bool), np.zeros(n_rep, bool)]
    ep_fac = np.where(ep_sp >= 0, sp_fac[np.maximum(ep_sp, 0)], -1)
    all_home = np.r_[ch["town"], nc_town]
    hot_pick = rng.choice(nt, size=len(ep_child), p=towns["cw_weight"].to_numpy())
    ep_town = np.where(ep_status == 0, all_home[np.minimum(ep_child, n + n_nc - 1)],
                       np.where((ep_status == 2) & (rng.random(len(ep_child)) < 0.5), hot_pick,
                                sp_town[np.maximum(ep_sp, 0)]))
    prog.step("episodes")

    # ---------------------------------------------------------------- reports
    months = pd.date_range(start_ts.to_period("M").to_timestamp(), pd.Timestamp(cfg.study_end),
                           freq="MS")
    mstart = np.array([(m - start_ts).days for m in months])
    mstart[0] = 0
    mend = np.r_[mstart[1:], D]
    nm = len(months)
    m_idx = np.arange(nm)
    m0 = int(np.searchsorted(months, pd.Timestamp(cfg.pa_11_180_effective).to_period("M")
                             .to_timestamp()))
    post_m = (m_idx >= m0).astype(float)
    step = 1.0 if cfg.null_world else cfg.pa_11_180_rate_ratio
    slope_ch = 0.0 if cfg.null_world else cfg.pa_11_180_slope_change
    mu_m = (cfg.police_reports_per_month_2008 * cfg.scale
            * np.exp(cfg.police_trend_per_month * m_idx + np.log(step) * post_m
                     + slope_ch * (m_idx - m0) * post_m))
    mlen = mend - mstart
    day_month = np.repeat(m_idx, mlen)
    mu_day = (mu_m / mlen)[day_month]
    lam_T = lam_cw + lam_nc * mu_nc
    pi = np.where(lam_T > 0, np.minimum(1.0, cfg.police_share_identifying * mu_day
                                        / np.maximum(lam_T, 1e-300)), 0.0)
    exp_pol_id_m = np.bincount(day_month, weights=pi * lam_T, minlength=nm)
    extra_mu = np.maximum(mu_m - exp_pol_id_m, 0.0)
    # (1) identifying reports of first episodes; (2) reports of repeat episodes
    id_day = np.minimum(np.floor(np.r_[T, nc_T]).astype(np.int64), D - 1)
    id_police = rng.random(nv) < pi[id_day]
    # (3) further police reports (PA 11-180 arrests) about youths not otherwise known
    n_px = rng.poisson(extra_mu)
    px_m = np.repeat(m_idx, n_px)
    px_t = mstart[px_m] + rng.random(len(px_m)) * mlen[px_m]
    npx = len(px_t)
    px_age = 12 + 5.9 * rng.random(npx)
    px_birth = np.floor(px_t - px_age * YEAR).astype(np.int64)
    px_town = rng.choice(nt, size=npx, p=(towns["pop_u18"] / towns["pop_u18"].sum()).to_numpy())
    px_male = rng.random(npx) < 0.3
    px_flags = risk_flags(cfg, np.full(npx, 15.0), px_male, npx, rng)
    # (4) other reports that are not confirmed, about eligible child-welfare children
    n_u = rng.poisson(cfg.unconfirmed_reports * cfg.scale)
    ei = np.flatnonzero(elig)
    u_child = np.zeros(0, np.int64)
    u_t = np.zeros(0)
    if len(ei) and n_u:
        # time ∝ g over the window, then a child (∝ risk) whose window contains it
        t_all = np.searchsorted(gc, rng.random(n_u) * gc[-1], side="right") - 1 + rng.random(n_u)
        w = p[ei] if not cfg.null_world else np.ones(len(ei))
        cw_ = np.cumsum(w)
        who = np.full(n_u, -1, np.int64)
        todo = np.arange(n_u)
        for _ in range(40):  # rejection rounds (vectorised over reports)
            if len(todo) == 0:
                break
            cand = ei[np.searchsorted(cw_, rng.random(len(todo)) * cw_[-1],
                                      side="right").clip(0, len(ei) - 1)]
            okc = (lo[cand] <= t_all[todo]) & (t_all[todo] < hi[cand])
            if cfg.unconfirmed_in_care_weight > 1:  # reports about children in care: weight w
                inc = pl.spell_containing(sp, cand, t_all[todo], n) >= 0
                okc &= inc | (rng.random(len(todo)) * cfg.unconfirmed_in_care_weight < 1)
            who[todo[okc]] = cand[okc]
            todo = todo[~okc]
        keep_u = who >= 0
        u_child, u_t = who[keep_u], t_all[keep_u]
        n_u = len(u_child)
    else:
        n_u = 0
    prog.step("reports")

    # ---------------------------------------------------------------- assemble children
    n_all = n + n_nc + npx
    c_birth = np.r_[ch["birth"], nc_birth, px_birth]
    c_male = np.r_[ch["male"], nc_male, px_male]
    races = ch["races"]
    rw = np.array([cfg.race_shares[r] for r in races], float)
    c_race = np.r_[ch["race_code"], rng.choice(len(races), size=n_nc + npx, p=rw / rw.sum())]
    c_town = np.r_[ch["town"], nc_town, px_town]
    c_cw = np.r_[np.ones(n, bool), np.zeros(n_nc + npx, bool)]
    perm = rng.permutation(n_all)  # id number of each child
    ids = _ids("C", np.arange(1, n_all + 1), 7)  # the children table's ids, in its order (by id)
    child_id = ids[perm]  # the id of each child, in the order generated
    o_c = np.empty(n_all, np.int64)  # children table row j: child o_c[j] (inverse of perm)
    o_c[perm] = np.arange(n_all)
    region_levels = list(schema.REGIONS)
    town_region = pd.Categorical(towns["region"], categories=region_levels).codes
    town_names = towns["town"].to_numpy(dtype=object)
    race_levels = list(schema.RACE_ETHNICITY)
    race_code_schema = np.array([race_levels.index(r) for r in races])[c_race]
    flag_cols = {}
    for k in schema.RISK_FLAGS:
        full = np.r_[ch[k], nc_flags[k], px_flags[k]]
        flag_cols[k] = _masked_bool(full, cfg.flag_missing[k], rng)[o_c]
    children = pd.DataFrame({
        "child_id": ids,
        "sex": _cat(c_male[o_c].astype(np.int64), schema.SEX),
        "birth_date": _dt(start_ns, c_birth[o_c].astype(float), unit_days=1.0),
        "race_ethnicity": _cat(race_code_schema[o_c], race_levels),
        "home_town": _str_from_codes(c_town[o_c], town_names),
        "region": _cat(town_region[c_town[o_c]], region_levels),
        "child_welfare_involved": pd.array(c_cw[o_c], dtype="boolean"),
        **flag_cols,
    })

    # facilities
    fw = max(3, len(str(fac["n"])))
    fac_id = _ids("F", np.arange(1, fac["n"] + 1), fw)
    cong_codes = np.array([pl.SETTING_INDEX[s] for s in pl.CONG])
    facilities = pd.DataFrame({
        "facility_id": fac_id,
        "name": pd.array(("Facility " + pd.Series(np.arange(1, fac["n"] + 1)).astype(str)
                          .str.zfill(fw)).to_numpy(dtype=object), dtype="string"),
        "setting": _cat(cong_codes[fac["setting"]], schema.SETTINGS),
        "town": _str_from_codes(fac["town"], town_names),
        "capacity": pd.array(fac["capacity"], dtype="Int64"),
    })

    # placements (sorted by child then start already)
    sp_id = _ids("P", np.arange(1, sp["m"] + 1), 8)
    placements = pd.DataFrame({
        "placement_id": sp_id,
        "child_id": child_id[sp["child"]],
        "setting": _cat(setting, schema.SETTINGS),
        "facility_id": _str_from_codes(sp_fac, fac_id),
        "town": _str_from_codes(sp_town, town_names),
        "start": _dt(start_ns, sp["start"].astype(float), unit_days=1.0),
        "end": _dt(start_ns, sp["end"].astype(float), D, unit_days=1.0),
    })

    aw_id = _ranked_ids("W", aw_rank, 7)
    awol = pd.DataFrame({
        "awol_id": aw_id,
        "child_id": child_id[aw_child],
        "placement_id": sp_id[aw_sp],
        "start": _dt(start_ns, aw_start),
        "end": _dt(start_ns, np.ceil(aw_end * 1440 - 1e-6) / 1440, D),
    })
    awol = _reordered(awol, np.argsort(aw_rank))

    # reports: identifying (first episodes), repeat episodes, police extra, unconfirmed
    rp_child = np.r_[vt_child, rep_child, n + n_nc + np.arange(npx), u_child]
    rp_t = np.r_[vT, rep_ident, px_t, u_t]
    rp_kind = np.r_[np.zeros(nv), np.ones(n_rep), np.full(npx, 2), np.full(n_u, 3)].astype(np.int64)
    nr = len(rp_t)
    rp_police = np.r_[id_police, np.zeros(n_rep, bool), np.ones(npx, bool), np.zeros(n_u, bool)]
    yr = 2008 + rp_t / YEAR
    shift = np.clip((yr - 2011) / 10, 0, 1)
    W = NONPOLICE_W[None, :] * np.c_[1 + 0.3 * shift, np.ones((nr, 2)), 1 + 0.5 * shift,
                                     np.ones((nr, 3))]
    cwr = np.cumsum(W, axis=1)
    typ = (cwr < (rng.random(nr) * cwr[:, -1])[:, None]).sum(axis=1)
    rep_levels = list(schema.REPORTER_TYPES)
    np_codes = np.array([rep_levels.index(x) for x in NONPOLICE])
    rtype = np.where(rp_police, rep_levels.index("police"), np_codes[typ])
    confirmed = rp_kind <= 1
    guardian = rng.random(nr) < 0.12
    policy_day = ev.day_of(cfg, "2010-07-01")
    acc_p = np.where(rp_t < policy_day, np.where(guardian, 0.9, 0.35), 0.92)
    accepted = confirmed | (rng.random(nr) < acc_p)
    med_h = np.where(rp_t < policy_day, 8.0, 3.0)
    fr = rp_t + np.exp(np.log(med_h) + 0.8 * rng.standard_normal(nr)) / 24
    fr = np.where(accepted, fr, np.nan)
    mdt_day = ev.day_of(cfg, "2012-01-01")
    mdt_p = np.where(rp_t >= mdt_day, np.where(confirmed, 0.75, 0.25), 0.0)
    mdt = rp_t + np.exp(np.log(4.0) + 0.7 * rng.standard_normal(nr))
    mdt = np.where(accepted & (rng.random(nr) < mdt_p), mdt, np.nan)
    disp_levels = list(schema.DISPOSITIONS)
    pending = (~confirmed) & (rp_t >= D - 60) & (rng.random(nr) < 0.6)
    disp = np.where(confirmed, 0, np.where(pending, 2, 1))
    o_r = np.lexsort((rp_kind, rp_t))
    r_rank = np.empty(nr, np.int64)
    r_rank[o_r] = np.arange(nr)
    rp_id = _ranked_ids("R", r_rank, 7)
    rp_region = town_region[c_town[rp_child]]
    reports = pd.DataFrame({
        "report_id": rp_id,
        "child_id": child_id[rp_child],
        "received_at": _dt(start_ns, rp_t),
        "reporter_type": _cat(rtype, rep_levels),
        "guardian_perpetrator": pd.array(guardian, dtype="boolean"),
        "accepted": pd.array(accepted, dtype="boolean"),
        "region": _cat(rp_region, region_levels),
        "first_response_at": _dt(start_ns, fr, D),
        "mdt_referral_at": _dt(start_ns, mdt, D),
        "disposition": _cat(disp, disp_levels),
    })
    reports = _reordered(reports, o_r)

    # episodes of reports that were not confirmed (or are pending): one per report, located
    # where the child was when the alleged exploitation began (home, or the placement)
    nx = npx + n_u
    x_child = np.r_[n + n_nc + np.arange(npx), u_child]
    x_t = np.r_[px_t, u_t]
    x_began = np.maximum(x_t - (rng.choice(len(pmf), size=nx, p=pmf) + 0.05
                                + 0.5 * rng.random(nx)), 0.0)
    x_cw = np.r_[np.zeros(npx, bool), np.ones(n_u, bool)]
    x_sp = np.full(nx, -1, np.int64)
    x_sp[x_cw] = pl.spell_containing(sp, x_child[x_cw], x_began[x_cw], n)
    x_town = np.where(x_sp >= 0, sp_town[np.maximum(x_sp, 0)], c_town[x_child])
    ep_child = np.r_[ep_child, x_child]
    ep_began = np.r_[ep_began, x_began]
    ep_ident = np.r_[ep_ident, x_t]
    ep_status = np.r_[ep_status, np.where(x_sp >= 0, 1, 0)]
    ep_sp = np.r_[ep_sp, x_sp]
    ep_aw_all = np.r_[ep_aw_all, np.full(nx, -1)]
    ep_fac = np.r_[ep_fac, np.where(x_sp >= 0, sp_fac[np.maximum(x_sp, 0)], -1)]
    ep_town = np.r_[ep_town, x_town]
    # confirmed: true; not confirmed or pending: false (the status is the report's disposition)
    ep_conf = pd.array(disp == 0, dtype="boolean")

    # episodes: report of episode k is report k (same order)
    ne = len(ep_child)
    o_e = np.lexsort((ep_began, ep_ident))
    e_rank = np.empty(ne, np.int64)
    e_rank[o_e] = np.arange(ne)
    ep_id = _ranked_ids("E", e_rank, 7)
    status_levels = list(schema.STATUS_AT_TIME)
    episodes = pd.DataFrame({
        "episode_id": ep_id,
        "child_id": child_id[ep_child],
        "report_id": rp_id[:ne],
        "began_at": _dt(start_ns, ep_began),
        "identified_at": _dt(start_ns, ep_ident),
        "confirmed": ep_conf,
        "status_at_time": _cat(ep_status, status_levels),
        "placement_id": _str_from_codes(ep_sp, sp_id),
        "facility_id": _str_from_codes(ep_fac, fac_id),
        "awol_id": _str_from_codes(ep_aw_all, aw_id),
        "town": _str_from_codes(ep_town, town_names),
    })
    episodes = _reordered(episodes, o_e)
    prog.step("tables")

    # services
    sr = service_rows(cfg, vt_child, np.asarray(ep_id, dtype=object)[:nv], ref, D, start_ts, rng)
    ns_ = len(sr["child"])
    o_s = np.lexsort((sr["service"], sr["referred"]))
    svc_levels = list(schema.SERVICES)
    svc_code = np.array([svc_levels.index(s) for s in SERVICE_NAMES])[sr["service"]]
    services = pd.DataFrame({
        "service_id": _ids("S", np.arange(1, ns_ + 1), 7),
        "child_id": child_id[sr["child"]][o_s],
        "episode_id": pd.array(sr["episode"][o_s], dtype="string"),
        "service": _cat(svc_code[o_s], svc_levels),
        "referred_at": _dt(start_ns, sr["referred"][o_s]),
        "started_at": _dt(start_ns, sr["started"][o_s], D),
        "ended_at": _dt(start_ns, sr["ended"][o_s], D),
        "completed": pd.arrays.BooleanArray(sr["completed"][o_s], ~sr["completed_known"][o_s]),
    })

    # trainings
    S, Att = make_trainings(cfg, D, rng)
    nsess = len(S["day"])
    sess_id = _ids("T", np.arange(1, nsess + 1), 6)
    trainings = pd.DataFrame({
        "session_id": sess_id,
        "date": _dt(start_ns, S["day"].astype(float), unit_days=1.0),
        "curriculum": _cat(S["cur"], schema.CURRICULA),
        "audience": _cat(S["aud"], schema.AUDIENCES),
        "region": _cat(S["region"], region_levels),
        "attendees": pd.array(S["n"], dtype="Int64"),
        "hours": S["hours"].astype(float),
    })
    na = len(Att["sid"])
    attendance = pd.DataFrame({
        "session_id": sess_id[Att["sid"]],
        "attendee_id": _ids("A", np.arange(1, na + 1), 7),
        "role": _cat(Att["role"], schema.ROLES),
        "pre_score": Att["pre"],
        "post_score": Att["post"],
    })
    prog.step("services and trainings")

    tables = {"children": children, "facilities": facilities, "placements": placements,
              "awol_episodes": awol, "reports": reports, "episodes": episodes,
              "services": services, "trainings": trainings, "training_attendance": attendance}
    # every column was built with its schema dtype: coerce_dtypes returns the frames uncopied
    tables = {k: schema.coerce_dtypes(df, k) for k, df in tables.items()}
    state = dict(cfg=cfg, D=D, towns=towns, ch=ch, C=C, A=A, V=V, p=p, beta=beta, elig=elig, lo=lo,
                 hi=hi, g=g, gc=gc, pmf=pmf, v=v, T=T, R=R, mu_nc=mu_nc, lam_nc=lam_nc,
                 fac=fac, sp=sp, setting=setting, is_cong=is_cong, sp_fac=sp_fac, rs=rs,
                 awol_first=awol_first, ref=ref, rec=rec, vT=vT, vcend=vcend, hr=hr,
                 mu_m=mu_m, m0=m0, months=months, exp_pol_id_m=exp_pol_id_m, pi=pi,
                 step=step, slope_ch=slope_ch, start_ts=start_ts, lam_T=lam_T, tables=tables,
                 v_cw=np.r_[np.ones(nvc, bool), np.zeros(n_nc, bool)], v_male=vmale.astype(bool),
                 rp_t=rp_t, child_id=child_id)
    truth = build_truth(state)
    prog.step("truth")
    if keep_state:
        return tables, truth, state
    return tables, truth
