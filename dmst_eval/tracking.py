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
* **town rates**: confirmed episodes by the town where the exploitation began or was located
  (``episodes.town``) per 10,000 residents under 18 (2010 Census) per year of the window, with
  empirical-Bayes smoothing so small towns with one or two episodes do not top the list by chance.
  Period only — a single year is too thin for 169 towns.
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

from dataclasses import dataclass, field

import numpy as np

from dmst_eval.errors import InputError, resolve_window
from dmst_eval.intervals import wilson_ci  # noqa: F401  (re-exported)
import pandas as pd

from dmst_eval import schema

__all__ = ["TrackingSummaryResult", "TrackingInputError", "summary", "wilson_ci", "AGE_GROUPS"]

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
    ep = ep[ep["confirmed"].fillna(False).astype(bool)]
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
        Town ranking for the period: rank (by smoothed rate), town, region, episodes,
        population_under18, crude_rate, smoothed_rate (per 10,000 children per year), and from
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
        ax.bar(x, v["victims"], color="#0072B2", label="confirmed victims")
        ax.bar(x, v["repeat_victims"], color="#E69F00", label="of whom repeat victims")
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
        ax.barh(y, t["smoothed_rate"], color="#0072B2", label="smoothed rate")
        ax.plot(t["crude_rate"], y, "o", color="#E69F00", label="crude rate")
        ax.set_yticks(y)
        ax.set_yticklabels(t["town"])
        ax.set_xlabel("confirmed episodes per 10,000 children per year")
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
        towns, smoothing = _town_rates(ep_conf, s, e, region, top_towns)
    if top_towns and towns["episodes"].sum() == 0:
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


_TOWN_COLUMNS = ("rank", "town", "region", "episodes", "population_under18", "crude_rate",
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


def _town_rates(ep_all, s, e, region, top) -> tuple[pd.DataFrame, str]:
    pop = _town_population()
    epw = ep_all[(ep_all["identified_at"] >= s) & (ep_all["identified_at"] <= e)]
    counts = epw["town"].astype(str).value_counts()
    pop["episodes"] = pop["town"].map(counts).fillna(0).astype(int)
    years = (e - s) / pd.Timedelta(days=365.25)
    person_years = pop["population_under18"].astype(float) * years
    from dmst_eval.hotspots import smooth_rates

    tab = pd.DataFrame({"town": pop["town"], "events": pop["episodes"],
                        "population": person_years})
    sm = smooth_rates(tab, method="empirical_bayes", by="town", per=1e4, seed=0,
                      n_sim=2000).summary.set_index("town")
    how = "empirical_bayes (Marshall global; hotspots.smooth_rates)"
    pop = pop.join(sm[["crude_rate", "smoothed_rate", "rank_lower", "rank_upper", "prob_top"]],
                   on="town")
    if region is not None:
        pop = pop[pop["region"] == region]
    pop = pop.sort_values(["smoothed_rate", "episodes", "town"], ascending=[False, False, True])
    pop["rank"] = np.arange(1, len(pop) + 1)
    return pop[list(_TOWN_COLUMNS)].head(top).reset_index(drop=True), how


def town_ranking(cd, start=None, end=None, region: str | None = None,
                 top: int = 10) -> pd.DataFrame:
    """The town ranking of :func:`summary` (its ``towns`` table) on its own.

    Confirmed episodes by the town where the exploitation was located, per 10,000 children per
    year, smoothed by empirical Bayes with 95% posterior rank intervals; towns of ``region``
    only (ranks among all 169 towns). Cheaper than the full summary when only the towns are
    needed.

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(seed=1)
    >>> tw = town_ranking(cd, "2012-01-01", "2014-12-31", top=3)
    >>> list(tw.columns[:4]), len(tw)
    (['rank', 'town', 'region', 'episodes'], 3)
    """
    s, e = _window(cd, start, end)
    _check_region(region)
    if top < 1:
        raise TrackingInputError(f"top must be at least 1, got {top}")
    return _town_rates(confirmed_episodes(cd, None), s, e, region, top)[0]
