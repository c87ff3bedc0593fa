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

from dmst_eval.intervals import wilson_ci  # noqa: F401  (re-exported)
import pandas as pd

from dmst_eval import schema

__all__ = ["TrackingSummary", "TrackingInputError", "summary", "wilson_ci", "AGE_GROUPS"]

#: Age groups (years at identification) used in the victim counts.
AGE_GROUPS = ("under 12", "12-13", "14-15", "16-17", "18+")
_AGE_BREAKS = [-np.inf, 12, 14, 16, 18, np.inf]


class TrackingInputError(ValueError):
    """Bad arguments or data for the tracking summary."""


# --------------------------------------------------------------------------------------------
# shared helpers (also used by dmst_eval.rba)
# --------------------------------------------------------------------------------------------
def _window(cd, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    s = pd.Timestamp(start) if start is not None else pd.Timestamp(cd.meta["study_start"])
    e = pd.Timestamp(end) if end is not None else pd.Timestamp(cd.meta["study_end"])
    if e < s:
        raise TrackingInputError(f"end ({e.date()}) is before start ({s.date()})")
    # an end given as a date includes that whole day
    if e == e.normalize():
        e = e + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return s, e


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
class TrackingSummary:
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


def _style():
    try:
        from dmst_eval import plots

        plots.apply_style()
    except Exception:  # pragma: no cover
        pass


# --------------------------------------------------------------------------------------------
def _age_group(age: pd.Series) -> pd.Series:
    return pd.cut(age, _AGE_BREAKS, right=False, labels=list(AGE_GROUPS))


def _label(df: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """Rows labelled with their calendar year (``period``), stacked with a copy labelled "all"."""
    by_year = df.assign(period=df[date_col].dt.year.astype(str))
    return pd.concat([by_year, df.assign(period="all")], ignore_index=True)


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
            top_towns: int = 10) -> TrackingSummary:
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
        Rows kept in the town ranking.

    Returns
    -------
    TrackingSummary

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
    ep_all = confirmed_episodes(cd, region)
    ch = cd.children
    _require(ch, "children", ["child_id", "sex", "birth_date", "child_welfare_involved"])
    chi = ch.assign(child_id=ch["child_id"].astype(str)).set_index("child_id")
    ep_all = ep_all.assign(child_id=ep_all["child_id"].astype(str))
    windows = _windows(s, e)
    labels = [w[0] for w in windows]
    win_end = pd.Series({lab: hi for lab, _, hi in windows})
    notes: list[str] = []
    headline: list[tuple] = []

    # confirmed episodes in the window, labelled by year and once more as "all"
    inw = ep_all[(ep_all["identified_at"] >= s) & (ep_all["identified_at"] <= e)]
    epl = _label(inw, "identified_at")

    # ---- 1. confirmed victims: first identification per child and period ---------------------
    v = epl.drop_duplicates(["period", "child_id"], keep="first")
    info = chi.reindex(v["child_id"])
    age = ((v["identified_at"].to_numpy() - info["birth_date"].to_numpy())
           / np.timedelta64(1, "D") / 365.25)
    cw_map = {True: "child-welfare involved", False: "not child-welfare involved"}
    dims = {
        "sex": (info["sex"].astype("object").to_numpy(), list(schema.SEX)),
        "age_group": (_age_group(pd.Series(age)).astype("object").to_numpy(), list(AGE_GROUPS)),
        "child_welfare": (info["child_welfare_involved"].astype("object").map(cw_map).to_numpy(),
                          list(cw_map.values())),
    }
    n_by = v.groupby("period").size().reindex(labels, fill_value=0)
    parts = [pd.DataFrame({"period": labels, "dimension": "total", "level": "all",
                           "n": n_by.to_numpy()})]
    for dim, (vals, levels) in dims.items():
        lev = pd.Series(vals, index=v.index).where(pd.Series(vals, index=v.index).isin(levels),
                                                    "unknown")
        tab = pd.crosstab(v["period"], lev).reindex(index=labels, fill_value=0)
        cols = levels + (["unknown"] if "unknown" in tab.columns else [])
        tab = tab.reindex(columns=cols, fill_value=0)
        long = tab.stack().rename("n").reset_index()
        long.columns = ["period", "level", "n"]
        long.insert(1, "dimension", dim)
        parts.append(long)
    victims = pd.concat(parts, ignore_index=True)
    victims["_o"] = victims["period"].map({lab: i for i, lab in enumerate(labels)})
    victims = victims.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)
    victims["n"] = victims["n"].astype(int)
    tot = victims["period"].map(n_by)
    victims["share"] = np.where(tot > 0, victims["n"] / tot.where(tot > 0, 1), np.nan)
    victims = victims[["period", "dimension", "level", "n", "share"]]
    male = victims[(victims.dimension == "sex") & (victims.level == "male")].set_index("period")["n"]
    cwv = victims[(victims.dimension == "child_welfare") & (victims.level == cw_map[True])
                  ].set_index("period")["n"]

    # ---- 2. repeat victims: >= 2 confirmed episodes identified by the end of the period -------
    pairs = v[["period", "child_id"]].merge(ep_all[["child_id", "identified_at"]], on="child_id")
    pairs = pairs[pairs["identified_at"] <= pairs["period"].map(win_end)]
    upto = pairs.groupby(["period", "child_id"]).size()
    rep_by = (upto >= 2).groupby(level="period").sum().reindex(labels, fill_value=0).astype(int)
    lo_r, hi_r = wilson_ci(rep_by.to_numpy(), n_by.to_numpy())
    repeat = pd.DataFrame({"period": labels, "victims": n_by.to_numpy(),
                           "repeat_victims": rep_by.to_numpy(),
                           "share": _ratio(rep_by.to_numpy(), n_by.to_numpy()),
                           "ci_lower": lo_r, "ci_upper": hi_r})

    # ---- 4. AWOL ------------------------------------------------------------------------------
    st = epl["status_at_time"].astype("object")
    m_by = epl.groupby("period").size().reindex(labels, fill_value=0).to_numpy()
    k_by = (st == "awol").groupby(epl["period"]).sum().reindex(labels, fill_value=0).to_numpy()
    c_by = st.isin(["awol", "placement"]).groupby(epl["period"]).sum().reindex(
        labels, fill_value=0).to_numpy()
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
    fe = epl[epl["facility_id"].notna()]
    fe = fe.assign(facility_id=fe["facility_id"].astype(str))
    fe = fe[fe["facility_id"].isin(set(cong))]
    g = fe.groupby(["period", "facility_id"]).agg(victims=("child_id", "nunique"),
                                                  episodes=("episode_id", "size"))
    several = g[g["victims"] >= min_victims]
    fby = several.groupby(level="period").size().reindex(labels, fill_value=0).astype(int)
    facilities_by_year = pd.DataFrame({"period": labels,
                                       "facilities_with_several_victims": fby.to_numpy()})
    sev_all = several.xs("all", level="period") if "all" in several.index.get_level_values(0) \
        else several.iloc[0:0].droplevel("period")
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
        n = int(n_by.iloc[i])
        headline += [
            ("victims", "confirmed_victims", lab, n, np.nan, np.nan),
            ("victims", "male_victims", lab, int(male.get(lab, 0)), np.nan, np.nan),
            ("victims", "child_welfare_involved_victims", lab, int(cwv.get(lab, 0)), np.nan,
             np.nan),
            ("repeat victims", "repeat_victims", lab, int(rep_by.iloc[i]), np.nan, np.nan),
            ("repeat victims", "repeat_share", lab, repeat["share"].iloc[i], lo_r[i], hi_r[i]),
            ("AWOL", "confirmed_episodes", lab, int(m_by[i]), np.nan, np.nan),
            ("AWOL", "awol_share", lab, awol["share"].iloc[i], lo_a[i], hi_a[i]),
            ("congregate settings", "facilities_with_several_victims", lab, int(fby.iloc[i]),
             np.nan, np.nan),
        ]

    # ---- 3. towns ------------------------------------------------------------------------------
    # all confirmed episodes (wherever the child lives), then the towns of the region
    towns, smoothing = _town_rates(confirmed_episodes(cd, None), s, e, region, top_towns)
    if towns["episodes"].sum() == 0:
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
    return TrackingSummary(summary=summ, victims=victims, repeat_victims=repeat, towns=towns,
                           awol=awol, facilities=fac_table, facilities_by_year=facilities_by_year,
                           reports=reports, start=s, end=e, region=region, smoothing=smoothing,
                           notes=notes)


def _report_counts(cd, windows, region) -> pd.DataFrame:
    rep = cd.reports
    _require(rep, "reports", ["report_id", "received_at", "reporter_type", "guardian_perpetrator",
                              "accepted", "region", "disposition"])
    if region is not None:
        rep = rep[rep["region"] == region]
    acc = rep["accepted"].fillna(False).astype(bool)
    gp = rep["guardian_perpetrator"].fillna(False).astype(bool)
    base = pd.DataFrame({
        "reporter_type": pd.Categorical(rep["reporter_type"].astype("object"),
                                        categories=list(schema.REPORTER_TYPES)),
        "received_at": rep["received_at"],
        "reports": 1,
        "accepted": acc.astype(int),
        "accepted_without_guardian": (acc & ~gp).astype(int),
        "confirmed": (rep["disposition"].astype("object") == "confirmed").astype(int),
    })
    s, e = windows[-1][1], windows[-1][2]
    b = _label(base[(base["received_at"] >= s) & (base["received_at"] <= e)], "received_at")
    labels = [w[0] for w in windows]
    g = b.groupby(["period", "reporter_type"], observed=False)[
        ["reports", "accepted", "accepted_without_guardian", "confirmed"]].sum()
    full = pd.MultiIndex.from_product([labels, list(schema.REPORTER_TYPES)],
                                      names=["period", "reporter_type"])
    g = g.reindex(full, fill_value=0)
    tot = g.groupby(level="period").sum()
    tot.index = pd.MultiIndex.from_arrays([tot.index, ["all"] * len(tot)],
                                          names=["period", "reporter_type"])
    res = pd.concat([g, tot]).reset_index()
    res["_o"] = res["period"].map({lab: i for i, lab in enumerate(labels)})
    res = res.sort_values("_o", kind="stable").drop(columns="_o").reset_index(drop=True)
    res["reporter_type"] = res["reporter_type"].astype(str)
    for c in ("reports", "accepted", "accepted_without_guardian", "confirmed"):
        res[c] = res[c].astype(int)
    return res


# --------------------------------------------------------------------------------------------
# town rates and smoothing
# --------------------------------------------------------------------------------------------
def _town_population() -> pd.DataFrame:
    from dmst_eval import geography

    tab = pd.read_csv(geography.reference_dir() / "ct_towns.csv",
                      usecols=["town", "population_under18_2010"])
    reg = geography.town_area_offices()[["town", "dcf_region"]]
    return tab.merge(reg, on="town", how="left").rename(
        columns={"population_under18_2010": "population_under18", "dcf_region": "region"})


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
    cols = ["rank", "town", "region", "episodes", "population_under18", "crude_rate",
            "smoothed_rate", "rank_lower", "rank_upper", "prob_top"]
    return pop[cols].head(top).reset_index(drop=True), how
