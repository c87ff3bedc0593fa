"""The agency's tracking questions.

The agency built a tracking system that "provides the number of victims in Connecticut and is able
to analyze how many children are repeat victims, which cities have the highest rates of
trafficking, victimization while on AWOL status, congregate care setting with multiple victims".
:func:`summary` answers those five questions from a case-data bundle, for each calendar year and
for the whole period, and adds the hotline view: reports by reporter type, including reports
accepted as child-protection cases without a parent, guardian or entrusted person named as
perpetrator.

Definitions (all counts use **confirmed** episodes — ``episodes.confirmed`` — and the date the
agency identified the episode, ``episodes.identified_at``, unless stated):

* **confirmed victim** in a window: a child with at least one confirmed episode identified in the
  window. A child is counted once per year and once in the period total. Age group is the age at
  the child's first confirmed identification in the window; child-welfare status is
  ``children.child_welfare_involved``.
* **repeat victim** in a window: a confirmed victim of the window who has at least two confirmed
  episodes identified on or before the end of the window (earlier episodes count too).
* **town rates**: the shared place definition (:mod:`dmst_eval.choices`, the same as the briefs
  and the hotspot notebook): victims — children with a confirmed episode identified in the
  window, each counted once — by the child's home town, per 10,000 children under 18 (2010
  Census) per year of the window, with empirical-Bayes smoothing so small towns with one or two
  victims do not top the list by chance. Period only — a single year is too thin for 169 towns.
* **AWOL**: share of confirmed episodes that began while the child was absent without leave
  (``status_at_time == "awol"``), with a Wilson 95% interval; also the share among episodes of
  children in out-of-home care (placement or AWOL).
* **congregate settings with several victims**: congregate facilities (group homes, residential
  treatment, shelters) whose residents — in placement or AWOL from it — account for at least
  ``min_victims`` distinct confirmed victims in the window.

``region=`` restricts the analysis to one DCF region: child-based questions (victims, repeats,
AWOL, facilities) use the region of the child's home town, ``children.region``; the hotline view uses
the region responsible for the report, ``reports.region``; the town ranking keeps the towns of that
region (the DCF region of ``episodes.town``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dmst_eval.casedata import confirmed_mask
from dmst_eval import schema
from dmst_eval.errors import InputError, resolve_window
from dmst_eval.intervals import wilson_ci  # noqa: F401  (re-exported)

__all__ = ["TrackingSummaryResult", "TrackingInputError", "summary", "wilson_ci", "AGE_GROUPS"]



def _hue(name: str) -> str:
    """A house colour by name (from :mod:`dmst_eval.plots`, imported only when drawing)."""
    from dmst_eval.plots import OKABE_ITO

    return OKABE_ITO[name]

#: Age groups (years at identification) used in the victim counts.
AGE_GROUPS = ("under 12", "12-13", "14-15", "16-17", "18+")
_AGE_BREAKS = [-np.inf, 12, 14, 16, 18, np.inf]


#: Deprecated alias of :class:`dmst_eval.errors.InputError` (the one input error).
TrackingInputError = InputError


# --------------------------------------------------------------------------------------------
# shared helpers (also used by dmst_eval.rba)
# --------------------------------------------------------------------------------------------
def _window(cd, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    # the one window rule (errors.resolve_window): whole days, both inclusive; e is the last
    # instant of the last day
    s, hi = resolve_window(start, end, default_start=cd.meta.get("study_start"),
                           default_end=cd.meta.get("study_end"))
    return s, hi - pd.Timedelta(1, "ns")


def _check_region(region):
    if region is not None and region not in schema.REGIONS:
        raise TrackingInputError(f"region {region!r} is not one of {list(schema.REGIONS)}")


def _require(df: pd.DataFrame, table: str, cols) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise TrackingInputError(f"table {table!r} lacks column(s) {missing}")


def _children_in_region(cd, region) -> pd.Index | None:
    if region is None:
        return None
    ch = cd.children
    _require(ch, "children", ["child_id", "region"])
    return pd.Index(ch.loc[ch["region"] == region, "child_id"].astype(str))


def confirmed_episodes(cd, region=None) -> pd.DataFrame:
    """Confirmed episodes (optionally of children from ``region``), sorted by identification."""
    ep = cd.episodes
    _require(ep, "episodes", ["episode_id", "child_id", "began_at", "identified_at", "confirmed",
                              "status_at_time", "facility_id", "town"])
    ep = ep[confirmed_mask(ep)]
    ids = _children_in_region(cd, region)
    if ids is not None:
        ep = ep[ep["child_id"].astype(str).isin(ids)]
    return ep.sort_values(["identified_at", "episode_id"], kind="mergesort")


def _years(s: pd.Timestamp, e: pd.Timestamp) -> list[int]:
    return list(range(s.year, e.year + 1))


def _period_label(s: pd.Timestamp, e: pd.Timestamp) -> str:
    return f"{s.date()} to {e.date()}"


# --------------------------------------------------------------------------------------------
@dataclass
class TrackingSummaryResult:
    """Answers to the agency's tracking questions (see :func:`summary`).

    Every table has a ``period`` column: the calendar year (as text, e.g. ``"2011"``) or
    ``"all"`` for the whole window.

    Attributes
    ----------
    summary : DataFrame
        Headline numbers, one row per (question, measure, period): columns question, measure,
        period, value, ci_lower, ci_upper.
    victims : DataFrame
        Confirmed victims by period, dimension (``total``, ``sex``, ``age_group``,
        ``child_welfare``) and level: n, share.
    repeat_victims : DataFrame
        period, victims, repeat_victims, share, ci_lower, ci_upper (Wilson).
    towns : DataFrame
        Town ranking for the period (the shared place definition): rank (by smoothed rate),
        town, region, victims (by home town), population_under18, crude_rate, smoothed_rate
        (per 10,000 children per year), and from
        :func:`dmst_eval.hotspots.smooth_rates` the 95% posterior rank interval over all 169 towns
        (rank_lower, rank_upper) and prob_top (probability of truly being the highest town).
    awol : DataFrame
        period, episodes, awol_episodes, share, ci_lower, ci_upper, episodes_in_care, share_in_care.
    facilities : DataFrame
        Congregate facilities with at least ``min_victims`` confirmed victims in the period:
        facility_id, name, setting, town, capacity, victims, episodes, victims_per_10_beds.
    facilities_by_year : DataFrame
        period, facilities_with_several_victims.
    reports : DataFrame
        Hotline reports by period and reporter_type (plus ``all``): reports, accepted,
        accepted_without_guardian, confirmed.
    """

    summary: pd.DataFrame
    victims: pd.DataFrame
    repeat_victims: pd.DataFrame
    towns: pd.DataFrame
    awol: pd.DataFrame
    facilities: pd.DataFrame
    facilities_by_year: pd.DataFrame
    reports: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    region: str | None
    smoothing: str = "empirical_bayes"
    notes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {"summary": self.summary, "victims": self.victims,
                "repeat_victims": self.repeat_victims, "towns": self.towns, "awol": self.awol,
                "facilities": self.facilities, "facilities_by_year": self.facilities_by_year,
                "reports": self.reports}

    def value(self, measure: str, period: str = "all") -> float:
        """One headline number, e.g. ``value("confirmed_victims")``."""
        s = self.summary
        row = s[(s.measure == measure) & (s.period == str(period))]
        if row.empty:
            raise KeyError(f"no measure {measure!r} for period {period!r}")
        return float(row["value"].iloc[0])

    def plot(self, ax=None):
        """Confirmed victims and repeat victims per year."""
        import matplotlib.pyplot as plt

        _style()
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        v = self.repeat_victims[self.repeat_victims.period != "all"]
        x = v["period"].astype(int)
        ax.bar(x, v["victims"], color=_hue("blue"), label="confirmed victims")
        ax.bar(x, v["repeat_victims"], color=_hue("orange"), label="of whom repeat victims")
        ax.set_xlabel("year identified")
        ax.set_ylabel("children")
        ax.legend(frameon=False)
        ax.set_title("Confirmed victims of DMST" + (f" — {self.region}" if self.region else ""))
        return ax

    def plot_reports(self, ax=None):
        """Hotline reports per year by reporter type (stacked)."""
        import matplotlib.pyplot as plt

        _style()
        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3.5))
        r = self.reports[(self.reports.period != "all") & (self.reports.reporter_type != "all")]
        wide = r.pivot(index="period", columns="reporter_type", values="reports").fillna(0)
        wide.index = wide.index.astype(int)
        wide = wide.loc[:, wide.sum() > 0]
        wide.plot.bar(stacked=True, ax=ax, width=0.85, colormap="cividis")
        ax.set_xlabel("year received")
        ax.set_ylabel("reports")
        ax.legend(frameon=False, fontsize=8, ncol=2)
        return ax

    def plot_towns(self, ax=None, top: int = 10):
        """Highest smoothed town rates (with crude rates for comparison)."""
        import matplotlib.pyplot as plt

        _style()
        t = self.towns.head(top).iloc[::-1]
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(t) + 1.5))
        y = np.arange(len(t))
        ax.barh(y, t["smoothed_rate"], color=_hue("blue"), label="smoothed rate")
        ax.plot(t["crude_rate"], y, "o", color=_hue("orange"), label="crude rate")
        ax.set_yticks(y)
        ax.set_yticklabels(t["town"])
        ax.set_xlabel("victims per 10,000 children per year")
        ax.legend(frameon=False)
        return ax



#: Deprecated name of :class:`TrackingSummaryResult`.
TrackingSummary = TrackingSummaryResult

def _style():
    try:
        from dmst_eval import plots

        plots.apply_style()
    except Exception:  # pragma: no cover
        pass


# --------------------------------------------------------------------------------------------
def _age_group(age: pd.Series) -> pd.Series:
    return pd.cut(age, _AGE_BREAKS, right=False, labels=list(AGE_GROUPS))


def _ratio(k, n) -> np.ndarray:
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    return np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)


def _windows(s, e) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    out = []
    for y in _years(s, e):
        lo = max(s, pd.Timestamp(f"{y}-01-01"))
        hi = min(e, pd.Timestamp(f"{y + 1}-01-01") - pd.Timedelta(1, "ns"))
        out.append((str(y), lo, hi))
    out.append(("all", s, e))
    return out


def summary(cd, start=None, end=None, region: str | None = None, min_victims: int = 2,
            top_towns: int = 10) -> TrackingSummaryResult:
    """Answer the agency's five tracking questions, by year and for the period.

    Parameters
    ----------
    cd : CaseData
        The case-data bundle.
    start, end : date-like, optional
        Window (inclusive; an ``end`` given as a date includes that day). Default: the study
        window in ``cd.meta``.
    region : str, optional
        One DCF region ("Region 1" … "Region 6"); see the module notes for which region each
        question uses.
    min_victims : int
        Threshold for "congregate settings with several victims" (default 2).
    top_towns : int
        Rows kept in the town ranking; 0 skips the ranking (``towns`` is then an empty table
        with the usual columns), which saves the rank simulation when only counts are needed.

    Returns
    -------
    TrackingSummaryResult

    Examples
    --------
    >>> import pandas as pd
    >>> from dmst_eval.casedata import CaseData
    >>> cd = CaseData.from_frames(
    ...     children=pd.DataFrame({"child_id": ["c1"], "sex": ["female"],
    ...         "birth_date": pd.to_datetime(["1995-05-01"]), "region": ["Region 4"],
    ...         "child_welfare_involved": [True], "home_town": ["Hartford"]}),
    ...     episodes=pd.DataFrame({"episode_id": ["e1"], "child_id": ["c1"],
    ...         "began_at": pd.to_datetime(["2010-03-01"]),
    ...         "identified_at": pd.to_datetime(["2010-03-05"]), "confirmed": [True],
    ...         "status_at_time": ["awol"], "town": ["Hartford"]}),
    ...     meta={"study_start": "2008-01-01", "study_end": "2011-12-31"})
    >>> s = summary(cd)
    >>> s.value("confirmed_victims"), s.value("awol_share")
    (1.0, 1.0)
    """
    s, e = _window(cd, start, end)
    _check_region(region)
    if min_victims < 1:
        raise TrackingInputError("min_victims must be at least 1")
    # all confirmed episodes (the town ranking uses every child's), then those of the region's
    # children: filtering the sorted table keeps the order sorting the filtered table would give
    ep_conf = confirmed_episodes(cd, None)
    ids = _children_in_region(cd, region)
    ep_all = ep_conf if ids is None else ep_conf[ep_conf["child_id"].astype(str).isin(ids)]
    ch = cd.children
    _require(ch, "children", ["child_id", "sex", "birth_date", "child_welfare_involved"])
    ep_all = ep_all.assign(child_id=ep_all["child_id"].astype(str))
    windows = _windows(s, e)
    labels = [w[0] for w in windows]
    # Periods are coded 0..n_years-1 (calendar years s.year..e.year) and n_years ("all"); every
    # count below is an np.bincount over these codes (one pass, no per-period frames)
    n_per = len(labels)
    ALL = n_per - 1
    win_end = pd.DatetimeIndex([hi for _, _, hi in windows]).to_numpy()
    notes: list[str] = []
    headline: list[tuple] = []

    # confirmed episodes identified in the window, with their year code
    inw = ep_all[(ep_all["identified_at"] >= s) & (ep_all["identified_at"] <= e)]
    ycode = inw["identified_at"].dt.year.to_numpy(dtype=np.int64) - s.year
    cid = inw["child_id"].to_numpy()

    # ---- 1. confirmed victims: first identification per child and period ---------------------
    # rows of `v`: first episode of each child in each year, then in the whole window ("all")
    first_y = ~pd.DataFrame({"y": ycode, "c": cid}).duplicated().to_numpy()
    first_a = ~pd.Series(cid).duplicated().to_numpy()
    rows = np.concatenate([np.flatnonzero(first_y), np.flatnonzero(first_a)])
    v_per = np.concatenate([ycode[first_y], np.full(int(first_a.sum()), ALL)])
    v_id = cid[rows]
    n_by = np.bincount(v_per, minlength=n_per)
    # the victims' children rows (looked up among the children concerned only)
    chid = ch["child_id"].astype(str)
    need = chid.isin(v_id).to_numpy()
    info = (ch.loc[need, ["sex", "birth_date", "child_welfare_involved"]]
            .set_index(chid[need]).reindex(v_id))
    age = ((inw["identified_at"].to_numpy()[rows] - info["birth_date"].to_numpy())
           / np.timedelta64(1, "D") / 365.25)
    cw_map = {True: "child-welfare involved", False: "not child-welfare involved"}
    dims = {  # values outside the levels (incl. missing) are counted as "unknown"
        "sex": (info["sex"].astype("object").to_numpy(), list(schema.SEX)),
        "age_group": (_age_group(pd.Series(age)).astype("object").to_numpy(), list(AGE_GROUPS)),
        "child_welfare": (info["child_welfare_involved"].astype("object").map(cw_map).to_numpy(),
                          list(cw_map.values())),
    }
    # one (period x level) block of counts per dimension, side by side: victims is their long form
    dim_names, level_names, blocks = ["total"], ["all"], [n_by[:, None]]
    by_level = {}
    for dim, (vals, levels) in dims.items():
        codes = pd.Categorical(vals, categories=levels).codes.astype(np.int64)
        unknown = codes < 0
        k = len(levels) + 1  # last column: unknown
        tab = np.bincount(v_per * k + np.where(unknown, k - 1, codes),
                          minlength=n_per * k).reshape(n_per, k)
        levs = levels + ["unknown"] if unknown.any() else levels
        tab = tab[:, :len(levs)]
        by_level[dim] = dict(zip(levs, tab.T))
        dim_names += [dim] * len(levs)
        level_names += levs
        blocks.append(tab)
    n_lev = len(level_names)
    counts = np.hstack(blocks)
    tot = np.repeat(n_by, n_lev)
    victims = pd.DataFrame({
        "period": np.repeat(np.array(labels, dtype=object), n_lev),
        "dimension": np.tile(np.array(dim_names, dtype=object), n_per),
        "level": np.tile(np.array(level_names, dtype=object), n_per),
        "n": counts.ravel().astype(int)})
    victims["share"] = np.where(tot > 0, victims["n"] / np.where(tot > 0, tot, 1), np.nan)
    zeros = np.zeros(n_per, dtype=np.int64)
    male = by_level["sex"].get("male", zeros)
    cwv = by_level["child_welfare"].get(cw_map[True], zeros)

    # ---- 2. repeat victims: >= 2 confirmed episodes identified by the end of the period -------
    # i.e. the child's second confirmed identification (any time; ep_all is sorted by it) is on
    # or before the end of the period
    known = ep_all[ep_all["identified_at"].notna()]
    later = known["child_id"].duplicated().to_numpy()
    second = pd.Series(known["identified_at"].to_numpy()[later],
                       index=known["child_id"].to_numpy()[later])
    second = second[~second.index.duplicated()]
    is_rep = second.reindex(v_id).to_numpy() <= win_end[v_per]  # NaT (no second): False
    rep_by = np.bincount(v_per[is_rep], minlength=n_per)
    lo_r, hi_r = wilson_ci(rep_by, n_by)
    repeat = pd.DataFrame({"period": labels, "victims": n_by, "repeat_victims": rep_by,
                           "share": _ratio(rep_by, n_by), "ci_lower": lo_r, "ci_upper": hi_r})

    # ---- 4. AWOL ------------------------------------------------------------------------------
    st = inw["status_at_time"].astype("object")
    m_by = _per_period(ycode, n_per)
    k_by = _per_period(ycode[(st == "awol").to_numpy()], n_per)
    c_by = _per_period(ycode[st.isin(["awol", "placement"]).to_numpy()], n_per)
    lo_a, hi_a = wilson_ci(k_by, m_by)
    lo_c, hi_c = wilson_ci(k_by, c_by)
    awol = pd.DataFrame({"period": labels, "episodes": m_by.astype(int),
                         "awol_episodes": k_by.astype(int), "share": _ratio(k_by, m_by),
                         "ci_lower": lo_a, "ci_upper": hi_a, "episodes_in_care": c_by.astype(int),
                         "share_in_care": _ratio(k_by, c_by), "ci_lower_in_care": lo_c,
                         "ci_upper_in_care": hi_c})

    # ---- 5. congregate facilities with several victims ----------------------------------------
    fac = cd.facilities
    cong = fac.loc[fac["setting"].isin(schema.CONGREGATE_SETTINGS), "facility_id"].astype(str)
    has_fac = inw["facility_id"].notna().to_numpy()
    fid = inw["facility_id"][has_fac].astype(str)
    in_cong = fid.isin(set(cong)).to_numpy()
    fcode, fac_ids = pd.factorize(fid.to_numpy()[in_cong])
    ccode = pd.factorize(cid[has_fac][in_cong])[0]
    f_y = ycode[has_fac][in_cong]
    n_fac, n_ch, n_years = len(fac_ids), max(int(ccode.max(initial=-1)) + 1, 1), n_per - 1
    # distinct victims per (year, facility) and per facility: distinct (…, facility, child) keys
    yf = np.unique((f_y * n_fac + fcode) * n_ch + ccode) // n_ch
    vic_y = np.bincount(yf, minlength=n_years * n_fac).reshape(n_years, n_fac)
    vic_all = np.bincount(np.unique(fcode * n_ch + ccode) // n_ch, minlength=n_fac)
    sev = vic_all >= min_victims
    fby = np.append((vic_y >= min_victims).sum(axis=1), sev.sum())
    facilities_by_year = pd.DataFrame({"period": labels, "facilities_with_several_victims": fby})
    sev_all = pd.DataFrame({"victims": vic_all[sev],
                            "episodes": np.bincount(fcode, minlength=n_fac)[sev]},
                           index=pd.Index(fac_ids[sev], dtype=object, name="facility_id"))
    sev_all = sev_all.sort_index()
    f = fac.assign(facility_id=fac["facility_id"].astype(str)).set_index("facility_id")
    fac_table = sev_all.join(f[["name", "setting", "town", "capacity"]], how="left")
    fac_table = fac_table.reset_index()
    cap = pd.to_numeric(fac_table["capacity"], errors="coerce").astype(float)
    fac_table["victims_per_10_beds"] = 10 * fac_table["victims"] / cap
    fac_table = fac_table.sort_values(["victims", "episodes", "facility_id"],
                                      ascending=[False, False, True])
    fac_table = fac_table[["facility_id", "name", "setting", "town", "capacity", "victims",
                           "episodes", "victims_per_10_beds"]].reset_index(drop=True)

    for i, lab in enumerate(labels):
        n = int(n_by[i])
        headline += [
            ("victims", "confirmed_victims", lab, n, np.nan, np.nan),
            ("victims", "male_victims", lab, int(male[i]), np.nan, np.nan),
            ("victims", "child_welfare_involved_victims", lab, int(cwv[i]), np.nan,
             np.nan),
            ("repeat victims", "repeat_victims", lab, int(rep_by[i]), np.nan, np.nan),
            ("repeat victims", "repeat_share", lab, repeat["share"].iloc[i], lo_r[i], hi_r[i]),
            ("AWOL", "confirmed_episodes", lab, int(m_by[i]), np.nan, np.nan),
            ("AWOL", "awol_share", lab, awol["share"].iloc[i], lo_a[i], hi_a[i]),
            ("congregate settings", "facilities_with_several_victims", lab, int(fby[i]),
             np.nan, np.nan),
        ]

    # ---- 3. towns ------------------------------------------------------------------------------
    # all confirmed episodes (wherever the child lives), then the towns of the region
    if top_towns < 0:
        raise TrackingInputError(f"top_towns must be 0 or more, got {top_towns}")
    if top_towns == 0:
        towns, smoothing = pd.DataFrame({c: [] for c in _TOWN_COLUMNS}), "not computed"
    else:
        towns, smoothing = _town_rates(cd, ep_conf, s, e, region, top_towns)
    if top_towns and towns["victims"].sum() == 0:
        notes.append("no confirmed episodes in the window: town ranking is empty")

    # ---- hotline reports ------------------------------------------------------------------------
    reports = _report_counts(cd, windows, region)
    ra = reports[reports.reporter_type == "all"].set_index("period")
    for lab in labels:
        headline.append(("hotline reports", "reports", lab, ra.loc[lab, "reports"], np.nan,
                         np.nan))
        headline.append(("hotline reports", "accepted_without_guardian", lab,
                         ra.loc[lab, "accepted_without_guardian"], np.nan, np.nan))

    summ = pd.DataFrame(headline, columns=["question", "measure", "period", "value", "ci_lower",
                                           "ci_upper"])
    summ["value"] = summ["value"].astype(float)
    return TrackingSummaryResult(summary=summ, victims=victims, repeat_victims=repeat, towns=towns,
                           awol=awol, facilities=fac_table, facilities_by_year=facilities_by_year,
                           reports=reports, start=s, end=e, region=region, smoothing=smoothing,
                           notes=notes)


def _per_period(ycode: np.ndarray, n_per: int) -> np.ndarray:
    """Counts of rows per year code, and their total as the last ("all") period."""
    by_year = np.bincount(ycode, minlength=n_per - 1)
    return np.append(by_year, by_year.sum())


def _report_counts(cd, windows, region) -> pd.DataFrame:
    rep = cd.reports
    _require(rep, "reports", ["report_id", "received_at", "reporter_type", "guardian_perpetrator",
                              "accepted", "region", "disposition"])
    if region is not None:
        rep = rep[rep["region"] == region]
    acc = rep["accepted"].fillna(False).astype(bool).to_numpy()
    gp = rep["guardian_perpetrator"].fillna(False).astype(bool).to_numpy()
    types = list(schema.REPORTER_TYPES)
    n_types, n_per = len(types), len(windows)
    # reports of another (or no) reporter type are in no row, nor in the "all" totals
    rt = pd.Categorical(rep["reporter_type"].astype("object"), categories=types).codes
    s, e = windows[-1][1], windows[-1][2]
    rec = rep["received_at"]
    ok = ((rec >= s) & (rec <= e)).to_numpy() & (rt >= 0)
    cell = ((pd.DatetimeIndex(rec.to_numpy()[ok]).year.to_numpy(dtype=np.int64) - s.year)
            * n_types + rt[ok])  # (year, reporter type) of each counted report
    flags = {"reports": np.ones(len(rep), dtype=bool), "accepted": acc,
             "accepted_without_guardian": acc & ~gp,
             "confirmed": (rep["disposition"].astype("object") == "confirmed").to_numpy()}
    out = {"period": np.repeat(np.array([w[0] for w in windows], dtype=object), n_types + 1),
           "reporter_type": np.tile(np.array(types + ["all"], dtype=object), n_per)}
    for name, flag in flags.items():
        # (year x type) counts, the "all" period as their total, the "all" type as row totals
        by = np.bincount(cell[flag[ok]], minlength=(n_per - 1) * n_types).reshape(-1, n_types)
        by = np.vstack([by, by.sum(axis=0)])
        out[name] = np.hstack([by, by.sum(axis=1, keepdims=True)]).ravel().astype(int)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# town rates and smoothing
# --------------------------------------------------------------------------------------------
#: Parsed town population table, keyed by what it was read from (see _town_population).
_TOWN_POPULATION: dict[tuple, pd.DataFrame] = {}


_TOWN_COLUMNS = ("rank", "town", "region", "victims", "population_under18", "crude_rate",
                 "smoothed_rate", "rank_lower", "rank_upper", "prob_top")


def _town_population() -> pd.DataFrame:
    """Towns with their population under 18 (2010) and DCF region (a fresh copy each call).

    Built once per process from :mod:`dmst_eval.geography`'s cached tables and reused while
    the reference file and the area-office override are unchanged (the same file keys as
    geography's own caches).
    """
    from dmst_eval import geography

    key = geography.reference_key()
    tab = _TOWN_POPULATION.get(key)
    if tab is None:
        tab = geography.town_table()[["town", "population_under18_2010"]]
        reg = geography.town_area_offices()[["town", "dcf_region"]]
        tab = tab.merge(reg, on="town", how="left").rename(
            columns={"population_under18_2010": "population_under18", "dcf_region": "region"})
        _TOWN_POPULATION.clear()  # one entry: the reference data in use
        _TOWN_POPULATION[key] = tab
    return tab.copy()


def _place_events(cd, ep_window: pd.DataFrame, choices) -> pd.Series:
    """The town of each event under the shared place definition (one row per victim, or per
    episode when ``choices.place.unit == "episodes"``)."""
    pl = choices.place
    ep = ep_window.assign(child_id=ep_window["child_id"].astype(str))
    if pl["unit"] == "victims":
        ep = ep.sort_values(["identified_at", "episode_id"], kind="mergesort") \
            .drop_duplicates("child_id")
    if pl["town"] == "home_town":
        ch = cd.children
        _require(ch, "children", ["child_id", "home_town"])
        # (a Series of the one column: not a copy of the whole children table re-indexed)
        home = pd.Series(ch["home_town"].array, index=ch["child_id"].astype(str).to_numpy(),
                         name="home_town")
        town = ep["child_id"].map(home)
    else:
        town = ep["town"]
    return town.astype("object").dropna()


def _town_rates(cd, ep_all, s, e, region, top) -> tuple[pd.DataFrame, str]:
    ch = _choices(None)
    pop = _town_population()
    epw = ep_all[(ep_all["identified_at"] >= s) & (ep_all["identified_at"] <= e)]
    counts = _place_events(cd, epw, ch).astype(str).value_counts()
    pop["victims"] = pop["town"].map(counts).fillna(0).astype(int)
    days = (e.normalize() - s.normalize()).days + 1
    years = days / DAYS_PER_YEAR if ch.place["per_year"] else 1.0
    person_years = pop["population_under18"].astype(float) * years
    from dmst_eval.hotspots import smooth_rates

    tab = pd.DataFrame({"town": pop["town"], "events": pop["victims"],
                        "population": person_years})
    sm = smooth_rates(tab, method=ch.smoothing["method"], by="town", per=float(ch.place["per"]),
                      seed=int(ch.seed), rank_level=float(ch.smoothing["rank_level"]),
                      **_kw(smooth_rates, n_sim=int(ch.smoothing["n_draws"]))) \
        .summary.set_index("town")
    how = "empirical_bayes (Marshall global; hotspots.smooth_rates)"
    pop = pop.join(sm[["crude_rate", "smoothed_rate", "rank_lower", "rank_upper", "prob_top"]],
                   on="town")
    if region is not None:
        pop = pop[pop["region"] == region]
    pop = pop.sort_values(["smoothed_rate", "victims", "town"], ascending=[False, False, True])
    pop["rank"] = np.arange(1, len(pop) + 1)
    return pop[list(_TOWN_COLUMNS)].head(top).reset_index(drop=True), how


def town_ranking(cd, start=None, end=None, region: str | None = None,
                 top: int = 10) -> pd.DataFrame:
    """The town ranking of :func:`summary` (its ``towns`` table) on its own.

    Victims by the shared place definition (home town; :mod:`dmst_eval.choices`) per 10,000
    children per year, smoothed by empirical Bayes with 95% posterior rank intervals; towns of
    ``region`` only (``rank`` within the listed towns, the rank interval among all 169). Cheaper
    than the full summary when only the towns are needed; :func:`towns_answer` adds Moran's I
    and the scan.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(scale=0.3, seed=1)
    >>> tw = town_ranking(cd, "2012-01-01", "2014-12-31", top=3)
    >>> list(tw.columns[:4]), len(tw)
    (['rank', 'town', 'region', 'victims'], 3)
    """
    s, e = _window(cd, start, end)
    _check_region(region)
    if top < 1:
        raise TrackingInputError(f"top must be at least 1, got {top}")
    return _town_rates(cd, confirmed_episodes(cd, None), s, e, region, top)[0]


# ============================================================================================
# The five questions, answered for one window (the brief's sections and the notebooks)
# ============================================================================================
# Definitions (shared analysis choices: dmst_eval/choices.yaml, docs/analysis_choices.md):
#
# * window: whole days, both inclusive (dmst_eval.errors.resolve_window); an episode belongs to
#   the window of the day it was identified (episodes.identified_at), confirmed episodes only;
# * scope: region=None is statewide; with a region, children of that region (children.region)
#   for victims, repeat victims and AWOL; towns of that region for town rates (the smoothing,
#   Moran's I and the scan are statewide, so ranks and clusters mean the same in every brief);
#   congregate facilities located in that region (their expected counts use the statewide rate).

__all__ += ["answers", "victims_answer", "repeat_answer", "towns_answer", "awol_answer",
            "facilities_answer", "rate_ratio_ci", "region_bundle", "TrackingAnswersResult",
            "VictimsResult", "RepeatResult", "TownsResult", "AwolResult", "FacilitiesResult"]

_SUMMARY_COLUMNS = ["measure", "period", "value", "ci_lower", "ci_upper", "numerator",
                    "denominator"]
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


def _choices(choices):
    from dmst_eval import choices as _c

    return _c.load() if choices is None else choices


def _kw(fn, **kw) -> dict:
    """Keyword arguments for ``fn`` under either spelling of the Monte Carlo count (the library
    is moving from ``n_sim`` to ``permutations``) and of the confidence level."""
    import inspect

    params = inspect.signature(fn).parameters
    out = {}
    for k, v in kw.items():
        alias = {"permutations": "n_sim", "n_sim": "permutations", "level": "conf_level",
                 "conf_level": "level"}.get(k)
        if k in params:
            out[k] = v
        elif alias in params:
            out[alias] = v
    return out


def _resolve(cd, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(first day, day after the last day) of the window; default the study window."""
    meta = getattr(cd, "meta", None) or {}
    return resolve_window(start, end, default_start=meta.get("study_start"),
                          default_end=meta.get("study_end"))


def period_label(lo: pd.Timestamp, hi: pd.Timestamp) -> str:
    """``"January 2023 to December 2025"`` for the window [lo, hi)."""
    last = hi - pd.Timedelta(days=1)
    return f"{lo.strftime('%B %Y')} to {last.strftime('%B %Y')}"


def _row(measure, period, value, lo=np.nan, hi=np.nan, num=np.nan, den=np.nan) -> dict:
    return dict(zip(_SUMMARY_COLUMNS, (measure, period, float(value) if value is not None
                                       else np.nan, float(lo), float(hi), float(num),
                                       float(den))))


class _Answer:
    """Shared behaviour of the answer results: ``value()`` and ``row()`` on ``summary``."""

    summary: pd.DataFrame

    def row(self, measure: str) -> pd.Series:
        s = self.summary[self.summary["measure"] == measure]
        if s.empty:
            raise KeyError(f"no measure {measure!r}; measures: {list(self.summary['measure'])}")
        return s.iloc[0]

    def value(self, measure: str) -> float:
        return float(self.row(measure)["value"])


def region_bundle(cd, region: str | None):
    """The bundle restricted to the children of ``region`` (every table keyed by child; other
    tables whole). ``None`` returns ``cd`` itself.

    The sub-bundle's ``meta["content_hashes"]`` name it by its parent's hashes and the region
    rather than hashing its rows again (``.data_hash`` still hashes the rows when asked)."""
    if region is None:
        return cd
    _check_region(region)
    import hashlib

    from dmst_eval.casedata import CaseData

    # the ids as one array (isin would turn a set into a new array for every table)
    ids = pd.unique(cd.children.loc[cd.children["region"].astype(str) == region, "child_id"]
                    .astype(str).to_numpy())
    tabs = {name: (df[df["child_id"].astype(str).isin(ids)] if "child_id" in df.columns else df)
            for name, df in cd.tables.items()}
    parent = cd.meta.get("content_hashes") or {}
    hashes = {t: hashlib.sha256(f"{parent.get(t, '')}|{region}|{t}".encode()).hexdigest()
              for t in cd.tables}
    return CaseData(tabs, meta=dict(cd.meta), truth=None, _hashes=hashes)


def _episodes_in(cd, lo, hi, region=None) -> pd.DataFrame:
    ep = confirmed_episodes(cd, region)
    ep = ep[(ep["identified_at"] >= lo) & (ep["identified_at"] < hi)]
    return ep.assign(child_id=ep["child_id"].astype(str))


class _Shared:
    """What the answers for one bundle share, each computed once: the confirmed episodes
    (sorted by identification, ``child_id`` as text) of all children or of a region's, their
    windows, and the region's bundle. :func:`answers` hands one to its five questions; a
    question asked on its own makes its own. Lives for that call only (nothing is kept between
    calls), and callers must not modify the frames it returns."""

    def __init__(self, cd):
        self.cd = cd
        self._memo: dict = {}

    def _get(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def episodes(self, region=None) -> pd.DataFrame:
        """``confirmed_episodes(cd, region)`` with ``child_id`` as text. A region's rows are
        taken from the sorted table of all children (a stable sort: the same rows in the same
        order as sorting the region's rows)."""
        def compute():
            if region is None:
                ep = confirmed_episodes(self.cd, None)
                return ep.assign(child_id=ep["child_id"].astype(str))
            ep = self.episodes(None)
            return ep[ep["child_id"].isin(_children_in_region(self.cd, region))]
        return self._get(("episodes", region), compute)

    def episodes_in(self, lo, hi, region=None) -> pd.DataFrame:
        """:func:`_episodes_in`: the confirmed episodes identified in [lo, hi)."""
        def compute():
            ep = self.episodes(region)
            return ep[(ep["identified_at"] >= lo) & (ep["identified_at"] < hi)]
        return self._get(("episodes_in", lo, hi, region), compute)

    def bundle(self, region) -> Any:
        """:func:`region_bundle`."""
        return self._get(("bundle", region), lambda: region_bundle(self.cd, region))


def rate_ratio_ci(a: int, b: int, ta: float, tb: float, level: float = 0.95):
    """Rate ratio ``(a/ta)/(b/tb)`` with the exact conditional (Clopper–Pearson) interval.

    Given ``a + b`` events, ``a`` is binomial with p = ta·RR / (ta·RR + tb); the exact
    interval for p transforms to one for RR.

    Examples
    --------
    >>> [round(float(x), 3) for x in rate_ratio_ci(20, 10, 1, 1)]
    [2.0, 0.894, 4.785]
    """
    from scipy import stats

    alpha = 1 - level
    lo_p = stats.beta.ppf(alpha / 2, a, b + 1) if a > 0 else 0.0
    hi_p = stats.beta.ppf(1 - alpha / 2, a + 1, b) if b > 0 else 1.0
    k = tb / ta
    rr = (a / ta) / (b / tb) if b > 0 else np.inf
    lo = lo_p / (1 - lo_p) * k
    hi = hi_p / (1 - hi_p) * k if hi_p < 1 else np.inf
    return float(rr), float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# 1. victims
# --------------------------------------------------------------------------------------------
@dataclass
class VictimsResult(_Answer):
    """How many children are victims (see :func:`victims_answer`).

    ``summary`` rows: victims, child_years (children under 18 × years of the window), rate (per
    10,000 children per year, exact Garwood CI), and with a comparison window comparison_victims,
    comparison_rate and rate_ratio (exact conditional CI).
    """

    summary: pd.DataFrame
    period: str
    comparison_period: str | None
    region: str | None
    per: float


def _child_years(region, lo, hi) -> float:
    pop = _town_population()
    if region is not None:
        pop = pop[pop["region"] == region]
    return float(pop["population_under18"].sum()) * (hi - lo).days / DAYS_PER_YEAR


def _question(cd, start, end, region, choices):
    """What every ``*_answer`` starts with: the analysis choices, the region checked, the
    window resolved (``lo`` inclusive, ``hi`` exclusive) and its label."""
    ch = _choices(choices)
    _check_region(region)
    lo, hi = _resolve(cd, start, end)
    return ch, lo, hi, period_label(lo, hi)


def victims_answer(cd, start=None, end=None, region: str | None = None, comparison=None,
                   choices=None, *, _shared: _Shared | None = None) -> VictimsResult:
    """Confirmed victims in the window, their rate per 10,000 children per year, and the rate
    ratio against a comparison window.

    Parameters
    ----------
    cd : CaseData
    start, end : date-like, optional
        Window (whole days, inclusive); default the study window.
    region : str, optional
        Children of this DCF region; the denominator is the region's children.
    comparison : (start, end), optional
        Comparison window for the rate ratio.
    choices : AnalysisChoices, optional
        Default :func:`dmst_eval.choices.load`.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> r = victims_answer(generate(scale=0.3, seed=1), "2011-01-01", "2011-12-31",
    ...                    comparison=("2008-01-01", "2008-12-31"))
    >>> list(r.summary["measure"])
    ['victims', 'child_years', 'rate', 'comparison_victims', 'comparison_rate', 'rate_ratio']
    """
    from dmst_eval.hotspots import garwood_ci

    ch, lo, hi, lab = _question(cd, start, end, region, choices)
    per, level = float(ch.place["per"]), float(ch.level)
    sh = _shared or _Shared(cd)
    n = int(sh.episodes_in(lo, hi, region)["child_id"].nunique())
    cy = _child_years(region, lo, hi)
    glo, ghi = garwood_ci([n], level)
    rows = [_row("victims", lab, n, num=n),
            _row("child_years", lab, cy),
            _row("rate", lab, n / cy * per, glo[0] / cy * per, ghi[0] / cy * per, n, cy)]
    clab = None
    if comparison is not None:
        clo, chi = _resolve(cd, *comparison)
        clab = period_label(clo, chi)
        m = int(sh.episodes_in(clo, chi, region)["child_id"].nunique())
        cyc = _child_years(region, clo, chi)
        glo, ghi = garwood_ci([m], level)
        rows += [_row("comparison_victims", clab, m, num=m),
                 _row("comparison_rate", clab, m / cyc * per, glo[0] / cyc * per,
                      ghi[0] / cyc * per, m, cyc)]
        if m > 0:
            rr, rlo, rhi = rate_ratio_ci(n, m, cy, cyc, level)
            rows.append(_row("rate_ratio", f"{lab} vs {clab}", rr, rlo, rhi, n, m))
    return VictimsResult(pd.DataFrame(rows, columns=_SUMMARY_COLUMNS), lab, clab, region, per)


# --------------------------------------------------------------------------------------------
# 2. repeat victims
# --------------------------------------------------------------------------------------------
@dataclass
class RepeatResult(_Answer):
    """How many victims are repeat victims (see :func:`repeat_answer`).

    ``summary`` rows: victims, repeat_victims, repeat_share (Wilson CI), and ``cif_<m>m``:
    cumulative incidence of a second confirmed episode within m months of the first
    identification, aging out (18th birthday) a competing event (Aalen–Johansen, log-log CI),
    with ``denominator`` the children followed. ``at_risk``: months, children still followed.
    """

    summary: pd.DataFrame
    cif: Any
    at_risk: pd.DataFrame
    period: str
    cohort: str
    region: str | None
    min_at_risk: int = 10
    level: float = 0.95

    def plot(self, ax=None, max_months: float | None = None, threshold: int = 1):
        """Cumulative incidence (Aalen–Johansen, with CI) and the numbers at risk under it;
        the curve stops at the last at-risk month (``choices.repeat.at_risk_months``) or where
        fewer than ``min_at_risk`` children are still followed; numbers at risk from 1 to
        ``threshold - 1`` are printed as "<threshold"."""
        import matplotlib.pyplot as plt

        _style()
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4.0))
        tb = self.cif.table
        months = tb["time"].to_numpy() / DAYS_PER_MONTH
        keep = tb["n_risk"].to_numpy() >= self.min_at_risk
        stop = months[keep].max() if keep.any() else 0.0
        stop = min(stop, float(self.at_risk["months"].max()) if max_months is None
                   else max_months)
        show = months <= stop
        x = np.r_[0, months[show], stop]
        y = np.r_[0, tb["cif"].to_numpy()[show]]
        y = np.r_[y, y[-1]]
        lo = np.r_[0, tb["ci_lower"].fillna(0).to_numpy()[show]]
        hi = np.r_[0, tb["ci_upper"].fillna(0).to_numpy()[show]]
        lo, hi = np.r_[lo, lo[-1]], np.r_[hi, hi[-1]]
        ax.step(x, y, where="post", color=_hue("blue"), label="second confirmed episode")
        ax.fill_between(x, lo, hi, step="post", color=_hue("blue"), alpha=0.18, lw=0,
                        label=f"{self.level:.0%} confidence interval")
        ar = self.at_risk[self.at_risk["months"] <= stop]
        ax.set_xticks(ar["months"].to_numpy())
        ax.set_xticklabels([f"{int(m)}\n" + (f"<{threshold}" if 0 < n < threshold else
                                               f"{int(n)}")
                            for m, n in zip(ar["months"], ar["at_risk"])])
        ax.set_xlabel("months since first identified (top); children still followed (bottom)")
        ax.set_ylabel("share with a second episode")
        ax.set_xlim(0, max(stop, 1))
        ax.set_ylim(0, max(0.05, float(np.nanmax(hi)) * 1.1 if len(hi) else 0.05))
        ax.legend(frameon=False, loc="upper left")
        return ax


def repeat_answer(cd, start=None, end=None, region: str | None = None,
                  choices=None, *, _shared: _Shared | None = None) -> RepeatResult:
    """Repeat victims in the window, and how soon a second confirmed episode follows.

    * **Count and share**: confirmed victims of the window (a confirmed episode identified in
      it) with at least two confirmed episodes identified by the window's last day (earlier
      episodes count); Wilson interval.
    * **Cumulative incidence** by 12 and 24 months (``choices.repeat.months``): children first
      identified from the start of the data to the window's last day, followed from their
      first identification to their 18th birthday (a competing event: they leave the agency's
      care, so it is not censoring) or the window's last day; Aalen–Johansen
      (:func:`dmst_eval.recidivism.cumulative_incidence`). A repeat episode is one that *began*
      after the first identification.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> r = repeat_answer(generate(scale=0.3, seed=1), "2010-01-01", "2012-12-31")
    >>> r.value("repeat_victims") <= r.value("victims")
    True
    >>> 0 < r.value("cif_12m") <= r.value("cif_24m") < 1
    True
    """
    from dmst_eval import recidivism as rc

    ch, lo, hi, lab = _question(cd, start, end, region, choices)
    level = float(ch.level)
    sh = _shared or _Shared(cd)
    ep = sh.episodes(region)
    vic = ep.loc[(ep["identified_at"] >= lo) & (ep["identified_at"] < hi), "child_id"].unique()
    upto = ep[ep["identified_at"] < hi].groupby("child_id").size()
    k = int((upto.reindex(vic).fillna(0) >= 2).sum())
    n = len(vic)
    wl, wh = wilson_ci(k, n, level)
    rows = [_row("victims", lab, n, num=n), _row("repeat_victims", lab, k, num=k),
            _row("repeat_share", lab, k / n if n else np.nan, wl, wh, k, n)]
    meta = getattr(cd, "meta", None) or {}
    s0 = pd.Timestamp(meta.get("study_start", lo))
    cohort = period_label(s0, hi)
    months = tuple(ch.repeat["months"])
    rf = rc.recurrent_frame(sh.bundle(region), start=s0, end=hi,
                            censor_age=float(ch.repeat["censor_age"]), confirmed_only=True)
    fe = rc.first_event_frame(rf)
    cif = None
    at = pd.DataFrame({"months": list(ch.repeat["at_risk_months"]), "at_risk": 0})
    if len(fe):
        cif = rc.cumulative_incidence(fe, "duration", "cause", months=months, level=level)
        dur = fe["duration"].to_numpy(dtype=float)
        at["at_risk"] = [int((dur >= m * DAYS_PER_MONTH).sum()) for m in at["months"]]
    for m in months:
        if cif is not None:
            r = cif.summary.loc[f"{m:g} months"]
            rows.append(_row(f"cif_{m:g}m", cohort, r["cif"], r["ci_lower"], r["ci_upper"],
                             den=len(fe)))
        else:
            rows.append(_row(f"cif_{m:g}m", cohort, np.nan, den=0))
    rows.append(_row("children_followed", cohort, len(fe), num=len(fe)))
    rows.append(_row("aged_out_before_repeat", cohort,
                     int((fe["cause"] == 2).sum()) if len(fe) else 0))
    return RepeatResult(pd.DataFrame(rows, columns=_SUMMARY_COLUMNS), cif, at, lab, cohort,
                        region, int(ch.repeat["min_at_risk"]), level)


# --------------------------------------------------------------------------------------------
# 3. towns
# --------------------------------------------------------------------------------------------
def _and_list(items) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


@dataclass
class TownsResult:
    """Which towns have the highest rates (see :func:`towns_answer`).

    Attributes
    ----------
    towns : DataFrame
        One row per town (all 169, statewide analysis), highest smoothed rate first: town,
        region, victims, child_years, crude_rate, ci_lower, ci_upper (exact), smoothed_rate,
        rank, rank_lower, rank_upper (posterior rank interval among all towns), prob_top,
        cluster (number of the significant scan cluster the town is in, else 0), in_scope.
    clusters : DataFrame
        Scan clusters (most likely first): cluster, towns (list), n_towns, centre, victims,
        expected, relative_risk, llr, p_value, significant, in_scope (has a town of the region).
    rates, smoothed, moran, scan
        The underlying :mod:`dmst_eval.hotspots` results (``AreaRates``, ``SmoothedRates``,
        ``GlobalMoranResult``, ``ScanResult``), for their plots and interactive maps.
    moran_I, moran_p : float
        Global Moran's I of the EB rates and its permutation p-value.
    flat : bool
        True when empirical Bayes finds no variation between towns beyond chance (every
        smoothed rate equals the state rate): no single town can be ranked.
    """

    towns: pd.DataFrame
    clusters: pd.DataFrame
    moran_I: float
    moran_p: float
    flat: bool
    period: str
    region: str | None
    place_definition: str
    rate_unit: str
    alpha: float
    gdf: Any = field(default=None, repr=False)
    rates: Any = field(default=None, repr=False)
    smoothed: Any = field(default=None, repr=False)
    moran: Any = field(default=None, repr=False)
    scan: Any = field(default=None, repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        return self.towns

    def in_scope(self) -> pd.DataFrame:
        """The towns of the region (all towns statewide), highest smoothed rate first."""
        return self.towns[self.towns["in_scope"]].reset_index(drop=True)

    @property
    def significant(self) -> pd.DataFrame:
        """Significant scan clusters with a town in scope."""
        c = self.clusters
        return c[c["significant"] & c["in_scope"]].reset_index(drop=True)

    @property
    def flagged_towns(self) -> list[str]:
        """Towns in a significant scan cluster (in scope), in cluster order."""
        out: list[str] = []
        for towns in self.significant["towns"]:
            out += [t for t in towns if t in set(self.in_scope()["town"])]
        return out

    def statement(self, threshold: int = 5) -> str:
        """Plain-language conclusion that weighs the rank intervals, Moran's I and the scan
        together (never "no area stands out" beside a significant cluster). Counts below
        ``threshold`` are phrased as "fewer than …"."""
        from dmst_eval.disclosure import count_phrase

        parts = []
        sig = self.significant
        for _, c in sig.iterrows():
            parts.append(
                f"Victims cluster in and around {c['centre']}: {_and_list(c['towns'])} together "
                f"had {count_phrase(int(c['victims']), threshold)} victims in {self.period} "
                f"where {c['expected']:.1f} were expected from their children "
                f"(relative risk {c['relative_risk']:.2f}, p = {_p(c['p_value'])}; spatial "
                f"scan).")
        if np.isfinite(self.moran_p) and self.moran_p < self.alpha:
            parts.append(f"Neighbouring towns have more similar rates than chance would give "
                         f"(Moran's I {self.moran_I:.2f}, p = {_p(self.moran_p)}).")
        if self.flat:
            parts.append("Town by town, rates differ no more than chance would produce, so no "
                         "single town can be ranked above the others"
                         + ("; the cluster, not any one town, is what stands out." if len(sig)
                            else "."))
        else:
            top = self.in_scope().iloc[0]
            verdict = ("it is clearly the highest" if top["prob_top"] >= 0.95 else
                       "it is not clearly the highest: several towns could plausibly be top")
            parts.append(f"{top['town']} has the highest smoothed rate "
                         f"({top['smoothed_rate']:.1f} {self.rate_unit}; rank interval "
                         f"{int(top['rank_lower'])}–{int(top['rank_upper'])}), and {verdict}.")
        if not len(sig) and not (np.isfinite(self.moran_p) and self.moran_p < self.alpha) \
                and self.flat:
            parts = ["No area stands out: neither single towns nor groups of neighbouring towns "
                     "have more victims than their child population and chance explain."]
        return " ".join(parts)

    def plot(self, ax=None, threshold: int = 5, breaks=None, label_top: int = 5, title=None):
        """Map of crude rates (counts below ``threshold`` hatched), the top towns labelled,
        region outlines, significant clusters outlined; ``breaks`` default to the statewide
        breaks so that regional maps share colours (:func:`dmst_eval.plots.town_rate_map`)."""
        from dmst_eval import plots

        return plots.town_rate_map(
            self.gdf, "crude_rate", counts="victims", threshold=threshold,
            breaks=breaks if breaks is not None else self.statewide_breaks(threshold),
            region=self.region, label=self.top_towns(threshold, label_top),
            clusters=[list(t) for t in self.significant["towns"]], ax=ax,
            legend_title=self.rate_unit, title=title)

    def top_towns(self, threshold: int = 5, n: int = 5) -> list[str]:
        """The ``n`` towns in scope with the highest smoothed (then crude) rates among those
        with at least ``threshold`` victims (so that a named town's count may be shown)."""
        t = self.in_scope()
        t = t[t["victims"] >= threshold]
        t = t.sort_values(["smoothed_rate", "crude_rate", "town"],
                          ascending=[False, False, True], kind="mergesort")
        return t.head(n)["town"].tolist()

    def statewide_breaks(self, threshold: int = 5) -> np.ndarray:
        """Colour breaks from the statewide rates shown (towns with ``threshold``+ victims)."""
        from dmst_eval import plots

        t = self.towns
        return plots.statewide_breaks(t.loc[t["victims"] >= threshold, "crude_rate"])


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def towns_answer(cd, start=None, end=None, region: str | None = None,
                 choices=None, *, _shared: _Shared | None = None) -> TownsResult:
    """Town rates for the window under the shared place definition, smoothed, with rank
    intervals, Moran's I and the spatial scan.

    Victims (children with a confirmed episode identified in the window, each counted once) are
    counted in the place ``choices.place.town`` names (default: the child's home town) per
    10,000 children per year (children under 18, 2010 Census, × years of the window). The
    analysis is statewide — empirical-Bayes smoothing with posterior rank intervals
    (:func:`dmst_eval.hotspots.smooth_rates`), the rate version of global Moran's I and
    Kulldorff's Poisson scan, all seeded with ``choices.seed`` — and ``region`` marks the towns
    shown (``in_scope``), so that ranks, clusters and colours mean the same in every brief.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> tw = towns_answer(generate(scale=0.3, seed=1), "2008-01-01", "2013-12-31")
    >>> len(tw.towns), int(tw.towns["victims"].sum()) > 0
    (169, True)
    """
    from dmst_eval import geography, hotspots

    ch, lo, hi, lab = _question(cd, start, end, region, choices)
    pl = ch.place
    town = _place_events(cd, (_shared or _Shared(cd)).episodes_in(lo, hi), ch)
    events = pd.DataFrame({"town": town.to_numpy()})
    gtowns = geography.towns()
    years = (hi - lo).days / DAYS_PER_YEAR if pl["per_year"] else 1.0
    gpop = gtowns[["town", "dcf_region", "geometry"]].assign(
        child_years=gtowns[pl["population"]].astype(float) * years)
    per = float(pl["per"])
    rates = hotspots.area_rates(events, gpop, by="town", per=per, pop_col="child_years",
                                suppress_below=None, **_kw(hotspots.area_rates,
                                                           level=float(ch.level)))
    smoothed = hotspots.smooth_rates(rates, seed=int(ch.seed),
                                     method=ch.smoothing["method"],
                                     rank_level=float(ch.smoothing["rank_level"]),
                                     **_kw(hotspots.smooth_rates,
                                           n_sim=int(ch.smoothing["n_draws"])))
    sm = smoothed.summary
    gdf = rates.gdf
    moran = hotspots.global_moran(gdf, events="events", population="population",
                                  weights=ch.weights, seed=int(ch.seed),
                                  **_kw(hotspots.global_moran,
                                        permutations=int(ch.permutations)))
    scan = hotspots.scan_statistic(gdf, "events", "population", seed=int(ch.seed),
                                   **_kw(hotspots.scan_statistic,
                                         max_pop_share=float(ch.scan["max_pop_share"]),
                                         permutations=int(ch.permutations)))
    alpha = float(ch.scan["alpha"])
    region_of = dict(zip(gtowns["town"], gtowns["dcf_region"]))
    scope = set(gtowns["town"] if region is None else
                gtowns.loc[gtowns["dcf_region"] == region, "town"])
    cl = scan.clusters
    clusters = pd.DataFrame({
        "cluster": cl["cluster"].astype(int), "towns": cl["areas"].map(list),
        "n_towns": cl["n_areas"].astype(int), "centre": cl["centre"],
        "victims": cl["cases"].astype(int), "expected": cl["expected"].astype(float),
        "relative_risk": cl["relative_risk"].astype(float), "llr": cl["llr"].astype(float),
        "p_value": cl["p_value"].astype(float)})
    clusters["significant"] = clusters["p_value"] < alpha
    clusters["in_scope"] = clusters["towns"].map(lambda ts: bool(set(ts) & scope))
    in_cluster = {}
    for _, c in clusters[clusters["significant"]].iterrows():
        for t in c["towns"]:
            in_cluster.setdefault(t, int(c["cluster"]))
    s = sm.rename(columns={"events": "victims", "population": "child_years"})
    cr = rates.summary.set_index("town")
    towns = pd.DataFrame({
        "town": s["town"].to_numpy(), "region": s["town"].map(region_of).to_numpy(),
        "victims": s["victims"].astype(int).to_numpy(),
        "child_years": s["child_years"].astype(float).to_numpy(),
        "crude_rate": s["crude_rate"].astype(float).to_numpy(),
        "ci_lower": s["town"].map(cr["ci_lower"]).to_numpy(),
        "ci_upper": s["town"].map(cr["ci_upper"]).to_numpy(),
        "smoothed_rate": s["smoothed_rate"].astype(float).to_numpy(),
        "rank": s["rank"].astype(int).to_numpy(),
        "rank_lower": s["rank_lower"].astype(int).to_numpy(),
        "rank_upper": s["rank_upper"].astype(int).to_numpy(),
        "prob_top": s["prob_top"].astype(float).to_numpy()})
    towns["cluster"] = towns["town"].map(in_cluster).fillna(0).astype(int)
    towns["in_scope"] = towns["town"].isin(scope)
    towns = towns.sort_values(["smoothed_rate", "victims", "town"],
                              ascending=[False, False, True], kind="mergesort") \
        .reset_index(drop=True)
    sr = towns["smoothed_rate"].to_numpy()
    flat = bool(len(sr) and np.allclose(sr, sr[0], rtol=1e-9, atol=0))
    g = gdf.merge(towns[["town", "region", "victims", "crude_rate", "smoothed_rate", "cluster",
                         "in_scope"]], on="town", suffixes=("_x", ""))
    g = g[[c for c in g.columns if not c.endswith("_x")]]
    return TownsResult(towns=towns, clusters=clusters, moran_I=float(moran.I),
                       moran_p=float(moran.p_sim), flat=flat, period=lab, region=region,
                       place_definition=ch.place_definition, rate_unit=ch.rate_unit,
                       alpha=alpha, gdf=g, rates=rates, smoothed=smoothed, moran=moran,
                       scan=scan)


# --------------------------------------------------------------------------------------------
# 4. AWOL
# --------------------------------------------------------------------------------------------
@dataclass
class AwolResult(_Answer):
    """How much victimization happens while a child is AWOL (see :func:`awol_answer`).

    ``summary`` rows (numerator / denominator, Wilson CIs): awol_share (confirmed episodes that
    began during AWOL, of all confirmed episodes), awol_share_in_care (of the episodes of
    children in out-of-home care at the time: in placement or AWOL), within_48h and within_7d
    (of the AWOL-onset episodes with a known AWOL start, those that began within 48 hours / 7
    days of the child going missing), hazard_ratio (repeat episodes while AWOL vs while in
    placement; Andersen–Gill, robust CI; its ``period`` says which window it used).
    """

    summary: pd.DataFrame
    hours: np.ndarray
    period: str
    region: str | None
    note: str = ""

    def plot(self, ax=None, max_hours: float = 24 * 14):
        """Cumulative share of AWOL-onset episodes by hours since the child went missing."""
        import matplotlib.pyplot as plt

        _style()
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 4.0))
        h = np.sort(self.hours)
        if len(h):
            y = np.arange(1, len(h) + 1) / len(h)
            ax.step(np.r_[0, h], np.r_[0, y], where="post", color=_hue("blue"))
        for x, lab in ((48, "48 hours"), (168, "7 days")):
            ax.axvline(x, color=_hue("vermillion"), ls="--", lw=1)
            ax.text(x, 0.03, f" {lab}", color=_hue("vermillion"), fontsize=8)
        ax.set_xlim(0, max_hours)
        ax.set_ylim(0, 1)
        ax.set_xlabel("hours from going missing to the start of exploitation")
        ax.set_ylabel("cumulative share of AWOL-onset episodes")
        return ax


def awol_answer(cd, start=None, end=None, region: str | None = None,
                choices=None, *, _shared: _Shared | None = None) -> AwolResult:
    """AWOL share, share among children in care, timing from AWOL start, AWOL hazard ratio.

    Episodes are the confirmed episodes identified in the window (children of ``region``); an
    episode began during AWOL when ``status_at_time == "awol"``. The hazard ratio comes from
    :func:`dmst_eval.recidivism.awol_timing` for children first identified in the window; when
    the window has too few repeat episodes it is estimated from the start of the data to the
    window's end instead, and its ``period`` says so.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> a = awol_answer(generate(scale=0.3, seed=1), "2008-01-01", "2013-12-31")
    >>> r = a.row("awol_share")
    >>> bool(r["numerator"] <= r["denominator"] and r["ci_lower"] <= r["value"] <= r["ci_upper"])
    True
    """
    from dmst_eval import recidivism as rc

    ch, lo, hi, lab = _question(cd, start, end, region, choices)
    level = float(ch.level)
    sh = _shared or _Shared(cd)
    ep = sh.episodes_in(lo, hi, region)
    st = ep["status_at_time"].astype("object")
    aw = (st == "awol").to_numpy()
    care = st.isin(["awol", "placement"]).to_numpy()
    rows = []

    def prop(name, k, n, period=lab):
        wl, wh = wilson_ci(k, n, level)
        rows.append(_row(name, period, k / n if n else np.nan, wl, wh, k, n))

    prop("awol_share", int(aw.sum()), len(ep))
    prop("awol_share_in_care", int(aw.sum()), int(care.sum()))
    hours = np.array([], dtype=float)
    if "awol_id" in ep.columns and hasattr(cd, "awol_episodes") and len(cd.awol_episodes):
        a = cd.awol_episodes[["awol_id", "start"]].rename(columns={"start": "awol_start"})
        e = ep.loc[aw & ep["awol_id"].notna().to_numpy(), ["awol_id", "began_at"]].merge(
            a, on="awol_id", how="inner")
        hours = ((e["began_at"] - e["awol_start"]) / pd.Timedelta(hours=1)).to_numpy(float)
    notes = []
    if (hours < 0).any():
        notes.append(f"{int((hours < 0).sum())} episode(s) begin before their AWOL spell and "
                     "are left out of the timing.")
    hours = np.sort(hours[hours >= 0])
    for hrs in ch.awol["within_hours"]:
        name = "within_48h" if hrs == 48 else ("within_7d" if hrs == 168 else f"within_{hrs}h")
        prop(name, int((hours <= hrs).sum()), len(hours))
    # hazard ratio: the window, else the data so far
    meta = getattr(cd, "meta", None) or {}
    sub = sh.bundle(region)
    hr_row = None
    for s0 in (lo, pd.Timestamp(meta.get("study_start", lo))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = rc.awol_timing(sub, start=s0, end=hi,
                                 censor_age=float(ch.repeat["censor_age"]),
                                 adjust=tuple(ch.awol["adjust"]), level=level)
        h = res.summary.loc["hazard_ratio_awol_vs_placement"]
        hr_row = _row("hazard_ratio", period_label(s0, hi), h["estimate"], h["ci_lower"],
                      h["ci_upper"], h["numerator"], h["denominator"])
        if np.isfinite(h["estimate"]):
            break
    if not np.isfinite(hr_row["value"]):
        notes.append("Too few repeat episodes while AWOL and while placed to estimate the AWOL "
                     "hazard ratio.")
    rows.append(hr_row)
    return AwolResult(pd.DataFrame(rows, columns=_SUMMARY_COLUMNS), hours, lab, region,
                      " ".join(notes))


# --------------------------------------------------------------------------------------------
# 5. congregate care
# --------------------------------------------------------------------------------------------
@dataclass
class FacilitiesResult(_Answer):
    """Which congregate-care settings have several victims (see :func:`facilities_answer`).

    Attributes
    ----------
    summary : DataFrame
        Rows facilities_with_several_victims (numerator: facilities with at least
        ``min_victims`` victims; denominator: congregate facilities in scope), facilities_with_
        victims, victims_in_congregate_care, flagged (Holm-flagged excess).
    facilities : DataFrame
        Facilities in scope with at least one victim in the window, most victims first:
        facility_id, name, setting, town, region, capacity, victims, episodes, several.
    excess : FacilityExcess
        Observed vs expected victims (:func:`dmst_eval.hotspots.facility_excess`, statewide
        expected rate), restricted to facilities in scope.
    """

    summary: pd.DataFrame
    facilities: pd.DataFrame
    excess: Any
    period: str
    region: str | None
    min_victims: int

    @property
    def flagged(self) -> pd.DataFrame:
        s = self.excess.summary
        return s[s["flagged"]].reset_index(drop=True)

    def plot(self, ax=None, title: str | None = None):
        """Funnel plot of observed / expected victims against expected (flagged labelled)."""
        return self.excess.plot(ax=ax, title=title)


def facilities_answer(cd, start=None, end=None, region: str | None = None,
                      choices=None, *, _shared: _Shared | None = None) -> FacilitiesResult:
    """Congregate facilities with several victims in the window, and their excess.

    A facility's **victims**: distinct children with a confirmed episode identified in the
    window that is linked to the facility (``episodes.facility_id``: in placement there or AWOL
    from it). A facility has **several victims** when it has at least
    ``choices.facilities.min_victims`` (default 2). With ``region``, facilities located in the
    region. The excess compares each facility's victims (first episode in the window) with the
    number expected from its child-days at the statewide congregate-care rate, exact Poisson
    p-values adjusted by ``choices.facilities.adjust`` (Holm) across all facilities.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> f = facilities_answer(generate(scale=0.3, seed=1), "2008-01-01", "2011-12-31")
    >>> int(f.value("facilities_with_several_victims")) == int(f.facilities["several"].sum())
    True
    """
    from dmst_eval import hotspots

    ch, lo, hi, lab = _question(cd, start, end, region, choices)
    k_min = int(ch.facilities["min_victims"])
    fac = cd.facilities.assign(facility_id=cd.facilities["facility_id"].astype(str))
    fac = fac[fac["setting"].astype("object").isin(schema.CONGREGATE_SETTINGS)]
    reg = _town_population().set_index("town")["region"]
    fac = fac.assign(region=fac["town"].astype("object").map(reg))
    if region is not None:
        fac = fac[fac["region"] == region]
    ep = (_shared or _Shared(cd)).episodes_in(lo, hi)
    ep = ep[ep["facility_id"].notna()]
    ep = ep.assign(facility_id=ep["facility_id"].astype(str))
    ep = ep[ep["facility_id"].isin(set(fac["facility_id"]))]
    g = ep.groupby("facility_id").agg(victims=("child_id", "nunique"),
                                      episodes=("episode_id", "size"))
    cols = ["facility_id", "name", "setting", "town", "region", "capacity"]
    tab = fac[[c for c in cols if c in fac.columns]].merge(g, left_on="facility_id",
                                                           right_index=True, how="inner")
    tab["setting"] = tab["setting"].astype("object")
    tab["several"] = tab["victims"] >= k_min
    tab = tab.sort_values(["victims", "episodes", "facility_id"],
                          ascending=[False, False, True], kind="mergesort") \
        .reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fx = hotspots.facility_excess(cd, lo, hi - pd.Timedelta(days=1),
                                      adjust=ch.facilities["adjust"],
                                      alpha=float(ch.facilities["alpha"]),
                                      date_col="identified_at")
    fx.summary = fx.summary[fx.summary["facility_id"].astype(str)
                            .isin(set(fac["facility_id"]))].reset_index(drop=True)
    n_sev = int(tab["several"].sum())
    rows = [_row("facilities_with_several_victims", lab, n_sev, num=n_sev, den=len(fac)),
            _row("facilities_with_victims", lab, len(tab), num=len(tab), den=len(fac)),
            _row("victims_in_congregate_care", lab, int(ep["child_id"].nunique())),
            _row("flagged", lab, int(fx.summary["flagged"].sum()))]
    return FacilitiesResult(pd.DataFrame(rows, columns=_SUMMARY_COLUMNS), tab, fx, lab, region,
                            k_min)


# --------------------------------------------------------------------------------------------
@dataclass
class TrackingAnswersResult:
    """The five answers for one window (see :func:`answers`)."""

    victims: VictimsResult
    repeat: RepeatResult
    towns: TownsResult
    awol: AwolResult
    facilities: FacilitiesResult

    @property
    def summary(self) -> pd.DataFrame:
        """Every headline number: question, measure, period, value, CI, numerator,
        denominator."""
        parts = []
        for q, r in (("victims", self.victims), ("repeat victims", self.repeat),
                     ("AWOL", self.awol), ("congregate care", self.facilities)):
            parts.append(r.summary.assign(question=q))
        t = self.towns.in_scope().head(10)
        parts.append(pd.DataFrame({"question": "towns", "measure": "smoothed_rate:" + t["town"],
                                   "period": self.towns.period, "value": t["smoothed_rate"],
                                   "ci_lower": np.nan, "ci_upper": np.nan,
                                   "numerator": t["victims"].astype(float),
                                   "denominator": t["child_years"]}))
        out = pd.concat(parts, ignore_index=True)
        return out[["question"] + _SUMMARY_COLUMNS]


def answers(cd, start=None, end=None, region: str | None = None, comparison=None,
            choices=None, *, _shared: _Shared | None = None) -> TrackingAnswersResult:
    """The agency's five tracking questions answered for one window.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> a = answers(generate(scale=0.3, seed=1), "2008-01-01", "2011-12-31")
    >>> sorted(a.summary["question"].unique())
    ['AWOL', 'congregate care', 'repeat victims', 'towns', 'victims']
    """
    ch = _choices(choices)
    # the episode selections and the region's bundle, made once for all five
    sh = _shared or _Shared(cd)
    return TrackingAnswersResult(
        victims=victims_answer(cd, start, end, region, comparison=comparison, choices=ch,
                               _shared=sh),
        repeat=repeat_answer(cd, start, end, region, choices=ch, _shared=sh),
        towns=towns_answer(cd, start, end, region, choices=ch, _shared=sh),
        awol=awol_answer(cd, start, end, region, choices=ch, _shared=sh),
        facilities=facilities_answer(cd, start, end, region, choices=ch, _shared=sh))
