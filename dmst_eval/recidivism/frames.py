"""Counting-process rows from a CaseData bundle, and recurrent-event data helpers."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from dmst_eval.casedata import confirmed_mask
from dmst_eval.errors import InputError, require_columns

from ._util import BASELINE_COVARIATES, DAYS_PER_YEAR, _bundle_window

__all__ = ['recurrent_frame', 'first_event_frame', 'marginal_frame', 'simulate_recurrent']


# ============================================================================================
# Recurrent-event data helpers
# ============================================================================================
def marginal_frame(df: pd.DataFrame, id: str = "child_id", start: str = "start",
                   stop: str = "stop", event: str = "event", max_events: int = 4,
                   keep: Sequence[str] = ()) -> pd.DataFrame:
    """Wei-Lin-Weissfeld (marginal) data from counting-process rows.

    For each subject and each ``k = 1..max_events`` one row: ``time`` = time of the k-th event if
    it happened, otherwise the end of the subject's follow-up, ``event`` = whether it happened,
    ``event_number = k``. Fit one Cox model per ``event_number`` (or stratify by it with
    ``cluster=id``) for the WLW marginal model.

    Parameters
    ----------
    df : DataFrame
        Counting-process rows.
    id, start, stop, event : str
        Column names.
    max_events : int
        Number of marginal event strata.
    keep : sequence of str
        Per-subject (baseline) columns to carry over (first value per subject).

    Returns
    -------
    DataFrame with columns id, event_number, time, event and ``keep``.

    Examples
    --------
    >>> rows = pd.DataFrame({"id": [1, 1, 2], "start": [0, 5, 0], "stop": [5, 9, 4],
    ...                      "event": [1, 0, 0]})
    >>> marginal_frame(rows, id="id", max_events=2)[["id", "event_number", "time", "event"]]
       id  event_number  time  event
    0   1             1   5.0      1
    1   1             2   9.0      0
    2   2             1   4.0      0
    3   2             2   4.0      0
    """
    require_columns(df, [id, start, stop, event, *keep])
    base = df.groupby(id, sort=True).agg(fu=(stop, "max"), **{k: (k, "first") for k in keep})
    evs = df.loc[df[event] == 1, [id, stop]].sort_values([id, stop])
    evs["event_number"] = evs.groupby(id).cumcount() + 1
    evs = evs[evs["event_number"] <= max_events]
    grid = pd.MultiIndex.from_product([base.index, range(1, max_events + 1)],
                                      names=[id, "event_number"]).to_frame(index=False)
    out = grid.merge(evs, on=[id, "event_number"], how="left")
    out = out.merge(base, left_on=id, right_index=True)
    out["event"] = out[stop].notna().astype(int)
    out["time"] = out[stop].fillna(out["fu"]).astype(float)
    return out[[id, "event_number", "time", "event", *keep]].reset_index(drop=True)


def simulate_recurrent(n: int, log_hr: dict[str, float], baseline_rate: float = 1.0,
                       time_varying: Sequence[str] = ("tv",), switch_rate: float = 2.0,
                       follow_up: tuple[float, float] = (0.5, 3.0), prevalence: float = 0.4,
                       seed: Any = None) -> pd.DataFrame:
    """Simulate recurrent events with a known Cox (Andersen-Gill) intensity.

    Intensity ``baseline_rate * exp(sum beta_j x_j(t))``. Covariates in ``time_varying`` switch
    on and off at the events of a Poisson process of rate ``switch_rate``; the others are fixed
    binary flags with the given prevalence. Follow-up is uniform on ``follow_up``. Fully
    vectorised (used by the tests and the benchmark).

    Parameters
    ----------
    n : int
        Subjects.
    log_hr : dict
        Covariate name -> log hazard ratio.
    baseline_rate : float
        Events per unit time at covariates 0.
    time_varying : sequence of str
        Which covariates are time-varying (others are fixed).
    switch_rate, follow_up, prevalence : float, tuple, float
        Process parameters.
    seed : int or numpy Generator

    Returns
    -------
    DataFrame: id, start, stop, event, event_number and the covariates.

    Examples
    --------
    >>> df = simulate_recurrent(50, {"x": 0.5, "tv": 0.3}, seed=1)
    >>> list(df.columns)
    ['id', 'start', 'stop', 'event', 'event_number', 'x', 'tv']
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    names = list(log_hr)
    tv = [c for c in names if c in time_varying]
    fixed = [c for c in names if c not in time_varying]
    fu = rng.uniform(*follow_up, n)
    Xf = (rng.uniform(size=(n, len(fixed))) < prevalence).astype(float)
    # segments between switches (up to K switches per subject)
    K = int(np.ceil(switch_rate * follow_up[1] * 3 + 10))
    gaps = rng.exponential(1 / switch_rate, (n, K)) if tv else np.full((n, 1), np.inf)
    cuts = np.cumsum(gaps, axis=1)
    seg_end = np.minimum(np.concatenate([cuts, np.full((n, 1), np.inf)], axis=1), fu[:, None])
    seg_start = np.concatenate([np.zeros((n, 1)), seg_end[:, :-1]], axis=1)
    valid = seg_end > seg_start
    sid, sk = np.nonzero(valid)
    s0, s1 = seg_start[sid, sk], seg_end[sid, sk]
    init = (rng.uniform(size=(n, max(len(tv), 1))) < prevalence).astype(int)
    Xtv = np.column_stack([(init[sid, j] + sk) % 2 for j in range(len(tv))]) if tv \
        else np.zeros((len(sid), 0))
    lin = np.zeros(len(sid))
    for j, c in enumerate(fixed):
        lin += log_hr[c] * Xf[sid, j]
    for j, c in enumerate(tv):
        lin += log_hr[c] * Xtv[:, j]
    lam = baseline_rate * np.exp(lin)
    n_ev = rng.poisson(lam * (s1 - s0))
    ev_seg = np.repeat(np.arange(len(sid)), n_ev)
    ev_t = s0[ev_seg] + rng.uniform(size=len(ev_seg)) * (s1 - s0)[ev_seg]
    # cut points: segment ends (no event) and event times (event) -> rows
    cut_seg = np.concatenate([np.arange(len(sid)), ev_seg])
    cut_t = np.concatenate([s1, ev_t])
    cut_e = np.concatenate([np.zeros(len(sid), int), np.ones(len(ev_seg), int)])
    order = np.lexsort((cut_t, cut_seg))
    cut_seg, cut_t, cut_e = cut_seg[order], cut_t[order], cut_e[order]
    first = np.r_[True, cut_seg[1:] != cut_seg[:-1]]
    row_start = np.where(first, s0[cut_seg], np.r_[0.0, cut_t[:-1]])
    out = pd.DataFrame({"id": sid[cut_seg], "start": row_start, "stop": cut_t, "event": cut_e})
    for j, c in enumerate(fixed):
        out[c] = Xf[out["id"].to_numpy(), j]
    for j, c in enumerate(tv):
        out[c] = Xtv[cut_seg, j].astype(float)
    out = out[out["stop"] > out["start"]].reset_index(drop=True)
    prior = out.groupby("id")["event"].cumsum() - out["event"]
    out.insert(4, "event_number", (prior + 1).astype(int))
    return out[["id", "start", "stop", "event", "event_number", *names]]


# ============================================================================================
# Counting-process rows from a CaseData bundle
# ============================================================================================
# Datetime64[D] range that converts to datetime64[ns] (pd.Timestamp.min/max at midnight)
_NS_DAYS = (np.datetime64("1677-09-22", "D"), np.datetime64("2262-04-11", "D"))


def _birthday(birth: pd.Series, years: float) -> pd.Series:
    """Date of the ``years``-th birthday (29 Feb -> 1 Mar in common years), vectorised.

    Calendar arithmetic in numpy datetime64 rather than ``pd.to_datetime`` from year/month/day
    columns: the birth month plus ``12 * whole years``, plus the day's offset within the month.
    A 29 February birth whose birthday falls in a common year runs one day past the end of
    February, i.e. to 1 March -- the same rule as before. The time of day is dropped; a fractional
    part of ``years`` adds ``frac * 365.25`` days. Birthdays outside the datetime64[ns] range
    are NaT.
    """
    whole = int(np.floor(years))
    day = birth.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    bday = (month + 12 * whole).astype("datetime64[D]") + (day - month.astype("datetime64[D]"))
    bday[(bday < _NS_DAYS[0]) | (bday > _NS_DAYS[1])] = np.datetime64("NaT")
    out = pd.Series(bday.astype("datetime64[ns]"), index=birth.index)
    frac = years - whole
    if frac:
        out = out + pd.to_timedelta(frac * DAYS_PER_YEAR, unit="D")
    return out


def _flag(s: pd.Series) -> pd.Series:
    return s.astype("Float64").astype(float)


def _segment_cumsum(x: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` (along axis 0) restarting wherever ``new`` is True (row 0 is)."""
    cs = np.cumsum(x, axis=0)
    starts = np.flatnonzero(new)
    before = cs[starts] - x[starts]
    return cs - before[np.cumsum(new) - 1]


def recurrent_frame(cd, start: Any = None, end: Any = None, censor_age: float = 18,
                    confirmed_only: bool = True, event_time: str = "began_at") -> pd.DataFrame:
    """Counting-process rows for repeat victimization, one row per at-risk interval.

    Follow-up of a child starts at the child's first identification (earliest
    ``episodes.identified_at``); time is measured in days from then. Each later episode that
    *began* (``began_at``) after that moment is a repeat event. Follow-up ends at the child's
    ``censor_age`` birthday (aging out of care) or at the end of the window, whichever is first.
    Rows are split at every repeat episode and wherever a time-varying covariate changes:

    * ``awol`` -- absent without leave (an ``awol_episodes`` spell, ``[start, end)``);
    * ``in_placement`` -- in an out-of-home placement and not AWOL (``placements``);
      at home when both are 0;
    * ``service`` -- any Restore & Recovery service has started (``services.started_at``).

    Parameters
    ----------
    cd : CaseData
        The bundle.
    start, end : date-like, optional
        Window, whole days, both inclusive: children first identified on or after ``start``
        and on or before ``end`` (any time that day) are followed until the end of ``end``.
        Default: the bundle's study window (``cd.meta``).
    censor_age : float
        Age (years) at which follow-up ends (leaving care).
    confirmed_only : bool
        Use only episodes confirmed as trafficking (default; the agency's count of victims).
        With ``False`` every episode that came to light counts.
    event_time : {"began_at", "identified_at"}
        Which timestamp of later episodes is the event time.

    Returns
    -------
    DataFrame
        Columns child_id, start, stop (days since first identification, interval
        ``(start, stop]``), event (1 = a repeat episode began at ``stop``), event_number (which
        repeat the row is at risk for: 1 = first repeat), gap_start, gap_stop (days since the
        previous episode: gap time for PWP models), awol, in_placement, service, aged_out (1 on
        the last row of a child whose follow-up ended at ``censor_age``), and the baseline
        covariates male, substance_use, prior_runaway, prior_sexual_abuse, juvenile_justice,
        lgbtq (NaN where unknown) and age_at_entry (years at first identification).

    Raises
    ------
    InputError
        If a needed table or column is missing or ``event_time`` is unknown.

    Examples
    --------
    >>> from dmst_eval.casedata import CaseData
    >>> cd = CaseData.from_frames(
    ...     children=pd.DataFrame({"child_id": ["c1"], "sex": ["female"],
    ...                            "birth_date": [pd.Timestamp("2000-01-01")]}),
    ...     episodes=pd.DataFrame({"episode_id": ["e1", "e2"], "child_id": ["c1", "c1"],
    ...         "began_at": pd.to_datetime(["2014-01-01", "2014-03-02"]),
    ...         "identified_at": pd.to_datetime(["2014-01-01", "2014-03-10"]),
    ...         "confirmed": [True, True]}),
    ...     meta={"study_start": "2008-01-01", "study_end": "2020-12-31"})
    >>> recurrent_frame(cd)[["start", "stop", "event", "event_number"]]
       start    stop  event  event_number
    0    0.0    60.0      1             1
    1   60.0  1461.0      0             2
    """
    if event_time not in ("began_at", "identified_at"):
        raise InputError(
            f"event_time={event_time!r}; expected 'began_at' or 'identified_at'")
    tabs = {"children": ["child_id", "sex", "birth_date"],
            "episodes": ["child_id", "began_at", "identified_at", "confirmed"],
            "placements": ["child_id", "start", "end"],
            "awol_episodes": ["child_id", "start", "end"],
            "services": ["child_id", "started_at"]}
    w_start, w_end = _bundle_window(cd, tabs, start, end)
    cols_out = ["child_id", "start", "stop", "event", "event_number", "gap_start", "gap_stop",
                "awol", "in_placement", "service", "aged_out", *BASELINE_COVARIATES]
    eps = cd.episodes
    if confirmed_only:
        eps = eps[confirmed_mask(eps)]
    eps = eps[["child_id", "began_at", "identified_at"]].dropna(subset=["identified_at"])
    # Children are handled by integer position throughout: ``kid`` = position in ``uniq`` (the
    # sorted child ids of the episodes, as a groupby would order them), so per-child values are
    # plain arrays and lookups are takes instead of map/merge on string ids.
    code, uniq = pd.factorize(eps["child_id"], sort=True)
    ok = code >= 0
    idv = eps["identified_at"].to_numpy()
    t0 = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(t0, code[ok], idv.view("i8")[ok])        # first identification per child
    t0 = t0.view(idv.dtype)
    children = cd.children
    kid_of_row = uniq.get_indexer(children["child_id"])
    k_rows = np.flatnonzero(kid_of_row >= 0)
    n_rows = np.bincount(kid_of_row[k_rows], minlength=len(uniq))
    # messages give row positions, never the child ids themselves
    if (n_rows == 0).any():
        unknown = uniq[n_rows == 0]
        rows = np.flatnonzero(cd.episodes["child_id"].isin(unknown).to_numpy())
        raise InputError(f"{len(unknown)} child(ren) with episodes are not in 'children'",
                         table="episodes", column="child_id", rows=rows[:10].tolist(),
                         expected="every episode's child listed in 'children'")
    if (n_rows > 1).any():
        dup = np.flatnonzero(np.isin(kid_of_row, np.flatnonzero(n_rows > 1)))
        raise InputError(f"{int((n_rows > 1).sum())} child(ren) are listed more than once",
                         table="children", column="child_id", rows=dup[:10].tolist(),
                         expected="one row per child")
    kid_row = np.empty(len(uniq), dtype=np.int64)
    kid_row[kid_of_row[k_rows]] = k_rows                     # children row of each child
    aging = _birthday(children["birth_date"].iloc[kid_row], censor_age).to_numpy()
    ws, we = w_start.to_datetime64(), w_end.to_datetime64()
    keep = (t0 >= ws) & (t0 < we) & (t0 < aging)
    aged_out_child = aging <= we
    t_end = np.where(aged_out_child, aging, we).astype(aging.dtype)
    fu = (t_end - t0) / np.timedelta64(1, "D")
    keep &= fu > 0
    if not keep.any():
        return pd.DataFrame({c: pd.Series(dtype="string" if c == "child_id" else float)
                             for c in cols_out})
    sel = np.flatnonzero(keep)
    ids, t0, fu, aged_out_child = uniq[sel], t0[sel], fu[sel], aged_out_child[sel]
    kids = children.iloc[kid_row[sel]]

    def rel(df: pd.DataFrame, *cols: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """Child position of the rows of ``df`` whose child is followed, and the days from the
        child's first identification to each of ``cols`` (NaN where missing)."""
        r = np.flatnonzero(df["child_id"].isin(ids).to_numpy())
        kid = ids.get_indexer(df["child_id"].iloc[r])
        return kid, [(df[c].to_numpy()[r] - t0[kid]) / np.timedelta64(1, "D") for c in cols]

    # change points: (child, time, change in placement / AWOL / service / repeat-episode counts)
    kid_parts, t_parts, d_parts = [], [], []

    def add(kid, t, col=None, step=0):
        d = np.zeros((len(kid), 4), dtype=np.int64)
        if col is not None:
            d[:, col] = step
        kid_parts.append(kid)
        t_parts.append(t)
        d_parts.append(d)

    every = np.arange(len(ids))
    add(every, np.zeros(len(ids)))                           # boundaries
    add(every, fu)
    # placements and AWOL spells: +1 at start, -1 at end (open spells never end)
    for tab, col in (("placements", 0), ("awol_episodes", 1)):
        kid, (ts, te) = rel(getattr(cd, tab), "start", "end")
        add(kid, ts, col, 1)
        add(kid, te, col, -1)                                # NaN (open) ends are dropped below
    # first service start of each child
    sv = cd.services
    kid, (ts,) = rel(sv, "started_at")
    first_sv = np.full(len(ids), np.inf)
    has = ~np.isnan(ts)
    np.minimum.at(first_sv, kid[has], ts[has])
    has = np.isfinite(first_sv)
    add(every[has], first_sv[has], 2, 1)
    # repeat episodes: began after first identification, inside follow-up
    kid, (te,) = rel(eps, event_time)
    ok = (te > 0) & (te <= fu[kid])
    add(kid[ok], te[ok], 3, 1)

    kid = np.concatenate(kid_parts)
    t = np.minimum(np.maximum(np.concatenate(t_parts), 0.0), fu[kid])
    d = np.concatenate(d_parts)
    ok = ~np.isnan(t)
    kid, t, d = kid[ok], t[ok], d[ok]
    # one row per (child, time), summed changes, in (child, time) order
    order = np.lexsort((t, kid))
    kid, t, d = kid[order], t[order], d[order]
    new_kid = np.r_[True, kid[1:] != kid[:-1]]
    first = np.flatnonzero(new_kid | np.r_[True, t[1:] != t[:-1]])
    kid, t, d, new_kid = kid[first], t[first], np.add.reduceat(d, first, axis=0), new_kid[first]
    level = _segment_cumsum(d[:, :3], new_kid)               # placement, AWOL, service counts
    # intervals (t_i, t_{i+1}] of the same child; event = a repeat episode at t_{i+1}
    row = np.flatnonzero(~np.r_[new_kid[1:], True])
    kid, start_, stop = kid[row], t[row], t[row + 1]
    event = (d[row + 1, 3] > 0).astype(np.int64)
    level = level[row]
    new_kid = np.r_[True, kid[1:] != kid[:-1]]
    event_number = _segment_cumsum(event, new_kid) - event + 1
    # gap time: since the previous repeat episode of the child (or first identification): the
    # stop of the latest earlier row with an event, found by a running max of row numbers
    n = len(kid)
    prev_ev = np.maximum.accumulate(np.r_[-1, np.where(event == 1, np.arange(n), -1)[:-1]])
    kid_start = np.flatnonzero(new_kid)[np.cumsum(new_kid) - 1]
    last_ev = np.where(prev_ev >= kid_start, stop[np.maximum(prev_ev, 0)], 0.0)
    awol = (level[:, 1] > 0).astype(np.int64)
    is_last = stop >= fu[kid]
    out = {"child_id": ids[kid].astype("string").array, "start": start_, "stop": stop,
           "event": event, "event_number": event_number,
           "gap_start": start_ - last_ev, "gap_stop": stop - last_ev,
           "awol": awol,
           "in_placement": ((level[:, 0] > 0) & (awol == 0)).astype(np.int64),
           "service": (level[:, 2] > 0).astype(np.int64),
           "aged_out": (is_last & aged_out_child[kid]).astype(np.int64),
           "male": (kids["sex"] == "male").astype(float).to_numpy()[kid]}
    for f in BASELINE_COVARIATES[1:-1]:                       # the risk flags
        out[f] = _flag(kids[f]).to_numpy()[kid] if f in kids else np.full(n, np.nan)
    year = pd.Timedelta(days=DAYS_PER_YEAR).to_timedelta64()
    out["age_at_entry"] = ((t0 - kids["birth_date"].to_numpy()) / year)[kid]
    return pd.DataFrame(out)                                 # keys in cols_out order


def first_event_frame(rf: pd.DataFrame, id: str = "child_id") -> pd.DataFrame:
    """One row per child: time to the first repeat episode, from :func:`recurrent_frame` rows.

    Returns columns child_id, duration (days), event (1 = repeat), cause (1 = repeat,
    2 = aged out of care before a repeat, 0 = censored at window end), and the baseline covariates.

    Examples
    --------
    >>> rf = pd.DataFrame({"child_id": ["a", "a", "b"], "start": [0.0, 30, 0],
    ...                    "stop": [30.0, 90, 50], "event": [0, 1, 0], "event_number": 1,
    ...                    "aged_out": [0, 0, 1]})
    >>> first_event_frame(rf)[["child_id", "duration", "event", "cause"]]
      child_id  duration  event  cause
    0        a      90.0      1      1
    1        b      50.0      0      2
    """
    require_columns(rf, [id, "stop", "event", "event_number", "aged_out"], table="rf")
    r1 = rf[rf["event_number"] == 1]
    g = r1.groupby(id, sort=True, observed=True)
    out = pd.DataFrame({"duration": g["stop"].max(), "event": g["event"].max(),
                        "aged_out": g["aged_out"].max()})
    out["cause"] = np.where(out["event"] == 1, 1, np.where(out["aged_out"] == 1, 2, 0))
    extra = [c for c in BASELINE_COVARIATES if c in rf.columns]
    if extra:
        out = out.join(g[extra].first())
    out = out.drop(columns="aged_out").reset_index()
    out["event"] = out["event"].astype(int)
    return out
