"""One row per child: the analysis frame and screening features built from a CaseData bundle."""
from __future__ import annotations

from typing import Any
import warnings

import numpy as np
import pandas as pd

from dmst_eval.casedata import confirmed_mask
from dmst_eval.errors import InputError, require_columns, resolve_window

from .. import schema
from ._util import _cd_table, _dates, _flag, _str_codes

__all__ = ['analysis_frame', 'screening_features']


class _ChildEvents:
    """Dated events (placements, AWOL episodes) matched once to the children of the frame.

    ``first(rows)`` is the earliest date per child (NaT if none) over the events selected by
    ``rows`` -- what ``Series(dates, index=child ids).groupby(level=0).min().reindex(cid)``
    gives, without grouping on the ids for every selection.

    ``children`` is ``pd.Index(cid)``, shared by the event tables of one frame so that the
    children's ids are hashed once; events of other children get no code and are left out.
    """

    def __init__(self, events: pd.DataFrame, cid: np.ndarray, children: pd.Index | None = None):
        self.dates = _dates(events["start"])
        ev = events["child_id"].astype(str).to_numpy()
        if children is None:
            children = pd.Index(cid)
        if children.is_unique:
            codes = children.get_indexer(ev)
            self.mine = codes >= 0
            self.codes, self.child_code, self.n_ids = codes, None, len(children)
            return
        # repeated ids: one factorisation of the children's ids and the events' ids
        codes, ids = pd.factorize(np.concatenate([cid, ev]))
        self.child_code, self.codes = codes[:len(cid)], codes[len(cid):]
        self.mine, self.n_ids = None, len(ids)

    def first(self, rows: np.ndarray | None = None) -> np.ndarray:
        from dmst_eval._grouped import first_datetime

        codes, dates = self.codes, self.dates
        sel = rows
        if self.mine is not None:  # only the events of the frame's children
            sel = self.mine if rows is None else (self.mine & rows)
        if sel is not None:
            codes, dates = codes[sel], dates[sel]
        first = first_datetime(codes, dates, self.n_ids)
        return first if self.child_code is None else first[self.child_code]


def analysis_frame(cd: Any, start: Any = None, end: Any = None,
                   population: str = "child_welfare", exclude_prior_victims: bool = True,
                   min_age: float | None = None, max_age: float = 18.0) -> pd.DataFrame:
    """One row per child: was the child identified as a victim in the window, and what came before.

    Parameters
    ----------
    cd : CaseData
        The bundle (``children``, ``episodes``, ``placements``, ``awol_episodes`` are used).
    start, end : date-like, optional
        The window: whole days, both inclusive (an identification at any time on ``end``
        counts). Default: ``cd.meta["study_start"]`` / ``cd.meta["study_end"]``.
    population : {"child_welfare", "all"}
        ``"child_welfare"`` keeps children with ``child_welfare_involved`` true (the population
        a child-welfare screening tool would see); ``"all"`` keeps every child in ``children``.
    exclude_prior_victims : bool
        Drop children whose first confirmed episode was identified before ``start`` (they are
        known, not new, victims). Default True.
    min_age : float, optional
        Keep only children who reach this age (years) before ``end`` -- children too young to be
        at risk in the window add only noise. ``None`` (default) keeps all; a warning names how
        many victims a ``min_age`` drops.
    max_age : float
        Drop children already this old at ``start`` (not minors in the window) or born after
        ``end``.

    Returns
    -------
    DataFrame
        Columns ``child_id``, ``victim`` (1 = first confirmed episode identified in the window),
        ``outcome_date`` (its ``identified_at``; NaT otherwise), ``covariates_until`` (the date
        before which covariates are measured: the outcome date for victims, the window end for
        the others), ``male``, ``age_at_start`` (age in years at the *later* of the window start
        and the child's first out-of-home placement -- the age at which the agency's window on
        the child opens; children never placed: at the window start, 0 if born later), the five
        child flags ``prior_sexual_abuse``, ``prior_runaway``, ``substance_use``,
        ``juvenile_justice``, ``lgbtq`` (0/1, NaN = unknown), ``congregate_before`` (a congregate
        placement began strictly before ``covariates_until``), ``awol_before`` (an AWOL episode
        began strictly before it), ``home_town``, ``region``.

    Notes
    -----
    The child flags are recorded "before agency contact" in schema v1 and are therefore treated
    as baseline characteristics. Placement and AWOL history is time-dependent: only events that
    started strictly before the outcome date count, so a placement in congregate care *after*
    identification (a common response to it) does not inflate the congregate-care odds ratio.
    Placements and AWOL episodes before the window start count (they are history).
    Non-victims are followed to the window end, so their exposure window is longer; this is the
    usual cumulative-incidence design and matches how the generator plants the effects.

    Examples
    --------
    >>> from dmst_eval import risk
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(scale=0.3, seed=1)
    >>> df = risk.analysis_frame(cd, "2008-01-01", "2011-12-31")
    >>> bool(df["victim"].sum() > 0) and df["child_id"].is_unique
    True
    """
    meta = getattr(cd, "meta", None) or {}
    if end is None and "study_end" not in meta:
        raise InputError("no window end given and cd.meta has no 'study_end'",
                            expected="end=..., or a study_end in the data's meta")
    # one window rule: whole days, both inclusive -> [s, hi)
    s, hi = resolve_window(start, end, default_start=meta.get("study_start",
                                                              schema.DEFAULT_STUDY_START),
                           default_end=meta.get("study_end"))
    e = hi - pd.Timedelta(days=1)                      # midnight of the last day
    if population not in ("child_welfare", "all"):
        raise InputError(f"population must be 'child_welfare' or 'all', got {population!r}")

    ch = _cd_table(cd, "children")
    require_columns(ch, ["child_id", "sex", "birth_date", "home_town", "region",
                              "child_welfare_involved", *schema.RISK_FLAGS], table="children")
    ep = _cd_table(cd, "episodes")
    require_columns(ep, ["child_id", "identified_at", "confirmed"], table="episodes")
    pl = _cd_table(cd, "placements")
    require_columns(pl, ["child_id", "setting", "start"], table="placements")
    aw = _cd_table(cd, "awol_episodes")
    require_columns(aw, ["child_id", "start"], table="awol_episodes")
    if ch["child_id"].isna().any() or ch["child_id"].duplicated().any():
        rows = list(ch.index[ch["child_id"].isna() | ch["child_id"].duplicated()][:10])
        raise InputError(f"children.child_id must be unique and present; rows {rows} are not")
    if ch["birth_date"].isna().any():
        rows = list(ch.index[ch["birth_date"].isna()][:10])
        raise InputError(f"children.birth_date is missing in rows {rows}")

    kids = ch
    if population == "child_welfare":
        cw = ch["child_welfare_involved"].astype("boolean")
        if cw.isna().any():
            rows = list(ch.index[cw.isna()][:10])
            raise InputError(f"children.child_welfare_involved is missing in rows {rows}; "
                                "expected true/false for population='child_welfare'")
        kids = ch[cw.to_numpy(dtype=bool)]
    cid = kids["child_id"].astype(str).to_numpy()
    birth = _dates(kids["birth_date"])
    keep = ((s - pd.DatetimeIndex(birth)).days / 365.25 < max_age) & (birth < hi)

    # first confirmed identification per child (any time)
    conf = ep[confirmed_mask(ep)]
    first_id = pd.Series(pd.to_datetime(conf["identified_at"]).to_numpy(),
                         index=conf["child_id"].astype(str).to_numpy()).groupby(level=0).min()
    fid = first_id.reindex(cid)
    if exclude_prior_victims:
        keep &= ~(fid < s).to_numpy()
    in_window = ((fid >= s) & (fid < hi)).to_numpy()
    if min_age is not None:
        reach = birth + np.timedelta64(int(round(min_age * 365.25)), "D") < hi.to_datetime64()
        lost = int((keep & in_window & ~reach).sum())
        if lost:
            warnings.warn(f"min_age={min_age} drops {lost} victim(s) identified in the window "
                          "who had not reached that age by its end", UserWarning, stacklevel=2)
        keep &= reach
    kids, cid, birth, fid, in_window = (kids[keep], cid[keep], birth[keep], fid[keep],
                                        in_window[keep])
    outcome_date = fid.where(in_window)
    until = outcome_date.fillna(e)

    # age when the window on the child opens: later of window start and first placement
    children = pd.Index(cid)  # hashed once for both event tables
    placements = _ChildEvents(pl, cid, children)
    first_pl = placements.first()
    opens = np.where(pd.notna(first_pl) & (first_pl > s.to_datetime64()),
                     np.minimum(first_pl, e.to_datetime64()), s.to_datetime64())
    age_at_start = np.maximum((opens - birth) / np.timedelta64(1, "D") / 365.25, 0.0)

    out = pd.DataFrame({
        "child_id": cid,
        "victim": in_window.astype(int),
        "outcome_date": outcome_date.to_numpy(),
        "covariates_until": until.to_numpy(),
        "male": (_str_codes(kids["sex"], ["male"]) == 0).astype(int),
        "age_at_start": age_at_start.astype(float),
    })
    for f in schema.RISK_FLAGS:
        out[f] = _flag(kids[f]).to_numpy()
    cutoff = out["covariates_until"].to_numpy()

    def _any_before(events: _ChildEvents, rows: np.ndarray | None = None) -> np.ndarray:
        if (len(events.codes) if rows is None else rows.sum()) == 0:
            return np.zeros(len(out), dtype=int)
        first = events.first(rows)
        return (pd.notna(first) & (first < cutoff)).astype(int)

    out["congregate_before"] = _any_before(
        placements, _str_codes(pl["setting"], schema.CONGREGATE_SETTINGS) >= 0)
    out["awol_before"] = _any_before(_ChildEvents(aw, cid, children))
    ht = kids["home_town"]  # (already text in a loaded bundle: no second conversion)
    out["home_town"] = (ht if ht.dtype == pd.StringDtype("python")
                        else ht.astype("string")).to_numpy()
    out["region"] = pd.Categorical.from_codes(_str_codes(kids["region"], schema.REGIONS),
                                              categories=schema.REGIONS)
    return out


def screening_features(cd: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the WISER-like items to an :func:`analysis_frame`, measured before ``covariates_until``.

    Items (each 0/1), all from ``placements`` and ``awol_episodes``:

    * ``runaway_past_year_under15`` / ``runaway_past_year_15plus`` -- an AWOL episode began in
      the 365 days before ``covariates_until`` and the child was under 15 / 15 or older at the
      *latest* such episode (WISER asks about running away from home in the past year; a
      placement extract records running from placement, which we use instead);
    * ``first_placement_congregate`` -- the child's first out-of-home placement (before
      ``covariates_until``) was a congregate setting;
    * ``first_placement_age15plus`` -- that first placement began at age 15 or older;
    * ``residential_facility`` -- any residential-treatment placement began before
      ``covariates_until``.

    Children never placed score 0 on the placement items.

    Examples
    --------
    >>> from dmst_eval import risk
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(scale=0.3, seed=1)
    >>> df = risk.screening_features(cd, risk.analysis_frame(cd))
    >>> df["wiser_like"] = risk.wiser_like_score(df)
    >>> bool((df["wiser_like"] >= 0).all())
    True
    """
    for c in ("child_id", "covariates_until"):
        if c not in frame.columns:
            raise InputError(f"frame lacks column {c!r}; pass the output of analysis_frame()")
    ch = _cd_table(cd, "children")
    pl = _cd_table(cd, "placements")
    aw = _cd_table(cd, "awol_episodes")
    require_columns(pl, ["child_id", "setting", "start"], table="placements")
    require_columns(aw, ["child_id", "start"], table="awol_episodes")
    out = frame.copy()
    cid = out["child_id"].astype(str)
    until = pd.to_datetime(out["covariates_until"])
    key = pd.DataFrame({"child_id": cid.to_numpy(), "_until": until.to_numpy(),
                        "_row": np.arange(len(out))})
    birth = pd.Series(pd.to_datetime(ch["birth_date"]).to_numpy(),
                      index=ch["child_id"].astype(str).to_numpy())
    key["_birth"] = birth.reindex(key["child_id"]).to_numpy()

    # AWOL in the past year before the cut-off; age at the latest one
    a = pd.DataFrame({"child_id": aw["child_id"].astype(str).to_numpy(),
                      "t": pd.to_datetime(aw["start"]).to_numpy()}).merge(key, on="child_id")
    a = a[(a["t"] < a["_until"]) & (a["t"] >= a["_until"] - pd.Timedelta(days=365))]
    last = a.groupby("_row").agg(t=("t", "max"), b=("_birth", "first"))
    age_last = (last["t"] - last["b"]).dt.days / 365.25
    u15 = np.zeros(len(out), dtype=int)
    o15 = np.zeros(len(out), dtype=int)
    u15[last.index[age_last < 15].to_numpy()] = 1
    o15[last.index[age_last >= 15].to_numpy()] = 1

    p = pd.DataFrame({"child_id": pl["child_id"].astype(str).to_numpy(),
                      "t": pd.to_datetime(pl["start"]).to_numpy(),
                      "setting": pl["setting"].astype(str).to_numpy()}).merge(key, on="child_id")
    p = p[p["t"] < p["_until"]]
    first = p.sort_values(["_row", "t"], kind="mergesort").groupby("_row").head(1)
    fcong = np.zeros(len(out), dtype=int)
    f15 = np.zeros(len(out), dtype=int)
    fcong[first.loc[first["setting"].isin(schema.CONGREGATE_SETTINGS), "_row"].to_numpy()] = 1
    age_first = (first["t"] - first["_birth"]).dt.days / 365.25
    f15[first.loc[(age_first >= 15).to_numpy(), "_row"].to_numpy()] = 1
    res = np.zeros(len(out), dtype=int)
    res[p.loc[p["setting"] == "residential_treatment", "_row"].unique()] = 1

    out["runaway_past_year_under15"] = u15
    out["runaway_past_year_15plus"] = o15
    out["first_placement_congregate"] = fcong
    out["first_placement_age15plus"] = f15
    out["residential_facility"] = res
    return out
