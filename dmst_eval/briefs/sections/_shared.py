"""Computations and wording several sections share, each memoised in ``brief.cache`` so it
runs once per brief. Analysis choices shared by the brief's sections (risk-model predictors,
minimum events for a regional model) live here, in one place."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["children", "episodes", "tracking", "tracking_counts", "study_towns", "headline", "risk_model",
           "scope_cd", "poisson_ratio_ci", "as_count", "keep_attrs", "num", "pct", "label",
           "prose", "RISK_PREDICTORS", "MIN_REGIONAL_RISK_EVENTS"]

#: Victims needed to fit the risk model within one region (else the statewide model is shown).
MIN_REGIONAL_RISK_EVENTS = 40
#: Predictors of the brief's risk model.
RISK_PREDICTORS = ["male", "age_at_start", "prior_sexual_abuse", "prior_runaway",
                   "substance_use", "juvenile_justice", "lgbtq", "congregate_before",
                   "awol_before"]


def _memo(brief, key, compute):
    if key not in brief.cache:
        brief.cache[key] = compute()
    return brief.cache[key]


def batch_memo(brief, key, compute):
    """Like :func:`_memo`, but shared by every brief of one batch ledger
    (:func:`dmst_eval.briefs.disclosure_plan.batch_ledger` gives its seven briefs one dict,
    ``brief.cache["batch_shared"]``), for statewide computations each scope then subsets.
    In process only; a lone brief memoises in its own cache."""
    shared = brief.cache.get("batch_shared")
    store = brief.cache if shared is None else shared
    if key not in store:
        store[key] = compute()
    return store[key]


# -- data views -----------------------------------------------------------------------------
def children(brief) -> pd.DataFrame:
    """Children in the brief's scope (home town's region)."""
    ch = brief.cd.children
    if brief.region_arg:
        ch = ch[ch["region"].astype(str) == brief.region_arg]
    return ch


def episodes(brief) -> pd.DataFrame:
    """Confirmed episodes of the children in scope."""
    def compute():
        ep = brief.cd.confirmed_episodes()
        if brief.region_arg:
            ep = ep[ep["child_id"].isin(children(brief)["child_id"])]
        return ep
    return _memo(brief, "episodes", compute)


def tracking(brief, which: str):
    """Tracking summary for the period (with its top-10 town ranking) or the comparison
    period (counts only: the brief shows no town ranking for it)."""
    def compute():
        from dmst_eval import tracking as tr

        s, e = {"period": (brief.ps, brief.pe), "comparison": (brief.cs, brief.ce)}[which]
        return tr.summary(brief.cd, s, e, region=brief.region_arg,
                          top_towns=10 if which == "period" else 0)
    return _memo(brief, f"tracking_{which}", compute)


def tracking_counts(brief, which: str):
    """The tracking summary for counts only: the brief's own (with the town ranking) when it
    was computed, else one without the town ranking — much cheaper, the same counts; the batch
    disclosure ledger (``cells()`` of the sections) uses it."""
    if f"tracking_{which}" in brief.cache:
        return tracking(brief, which)

    def compute():
        from dmst_eval import tracking as tr

        s, e = {"period": (brief.ps, brief.pe), "comparison": (brief.cs, brief.ce)}[which]
        return tr.summary(brief.cd, s, e, region=brief.region_arg, top_towns=0)
    return _memo(brief, f"tracking_counts_{which}", compute)


def study_towns(brief) -> pd.DataFrame:
    """Town ranking over the whole study window (towns of the brief's region)."""
    def compute():
        from dmst_eval import tracking as tr

        return tr.town_ranking(brief.cd, *brief.study, region=brief.region_arg, top=169)
    return _memo(brief, "study_towns", compute)


def headline(brief) -> dict:
    """Headline numbers for the period and comparison period (raw; suppressed when shown)."""
    def compute():
        out = {}
        for which in ("period", "comparison"):
            ts = tracking_counts(brief, which)
            rv = ts.repeat_victims.set_index("period").loc["all"]
            aw = ts.awol.set_index("period").loc["all"]
            rep = ts.reports
            rep = rep[(rep.period == "all") & (rep.reporter_type.astype(str) == "all")]
            rep_pol = ts.reports[(ts.reports.period == "all")
                                 & (ts.reports.reporter_type.astype(str) == "police")]
            out[which] = {
                "victims": int(rv["victims"]), "repeat_victims": int(rv["repeat_victims"]),
                "episodes": int(aw["episodes"]), "awol_episodes": int(aw["awol_episodes"]),
                "reports": int(rep["reports"].sum()) if len(rep) else 0,
                "police_reports": int(rep_pol["reports"].sum()) if len(rep_pol) else 0,
                "accepted": int(rep["accepted"].sum()) if len(rep) else 0,
                "facilities": int(len(ts.facilities)),
            }
        return out
    return _memo(brief, "headline", compute)


def risk_model(brief):
    """The risk model (logistic; Firth below 100 victims) and the scope it was fitted in:
    the region if it has at least :data:`MIN_REGIONAL_RISK_EVENTS` victims, else statewide.
    Sets ``brief.cache["risk_scope"]``."""
    def compute():
        from dmst_eval import risk

        fr = risk.analysis_frame(brief.cd)
        brief.cache["risk_scope"] = "statewide"
        if brief.region_arg:
            sub = fr[fr["region"].astype(str) == brief.region_arg]
            if int(sub["victim"].sum()) >= MIN_REGIONAL_RISK_EVENTS:
                fr = sub
                brief.cache["risk_scope"] = brief.scope
        n_events = int(fr["victim"].sum())
        method = "firth" if n_events < 100 else "logit"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return risk.fit_risk_model(fr, "victim", RISK_PREDICTORS, method=method,
                                        missing="drop")
    return _memo(brief, "risk_model", compute)


def scope_cd(brief):
    """The bundle restricted to the children in scope (all tables keyed by child)."""
    if brief.region_arg is None:
        return brief.cd

    def compute():
        from dmst_eval.casedata import CaseData

        ids = set(children(brief)["child_id"].astype(str))
        tabs = {}
        for name, df in brief.cd.tables.items():
            if "child_id" in df.columns:
                df = df[df["child_id"].astype(str).isin(ids)]
            tabs[name] = df
        return CaseData(tabs, meta=dict(brief.cd.meta), truth=None)
    return _memo(brief, "scope_cd", compute)


# -- statistics and wording -------------------------------------------------------------------
def poisson_ratio_ci(a: int, b: int, ta: float, tb: float, level: float = 0.95):
    """Rate ratio (a/ta)/(b/tb) with the exact conditional (Clopper–Pearson) CI: the brief's
    name for :func:`dmst_eval.tracking.rate_ratio_ci`.

    Examples
    --------
    >>> [round(float(x), 3) for x in poisson_ratio_ci(20, 10, 1, 1)]
    [2.0, 0.894, 4.785]
    """
    from dmst_eval.tracking import rate_ratio_ci

    return rate_ratio_ci(a, b, ta, tb, level=level)


def as_count(s: pd.Series) -> pd.Series:
    """Numerators/denominators as nullable integers (NaN stays missing)."""
    return pd.to_numeric(s, errors="coerce").round().astype("Int64")


def keep_attrs(df: pd.DataFrame, src: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.attrs = dict(src.attrs)
    return df


def num(x: float, digits: int = 0) -> str:
    """``x`` rounded for prose, without a minus sign on a value that rounds to zero.

    >>> num(-0.4), num(-1.6), num(2.25, 1)
    ('0', '-2', '2.2')
    """
    s = f"{x:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def pct(x: float, digits: int = 0) -> str:
    return "not available" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


_LABELS = {
    "male": "male", "age_at_start": "age (per year)", "prior_sexual_abuse": "prior sexual abuse",
    "prior_runaway": "prior running away", "substance_use": "substance use",
    "juvenile_justice": "juvenile-justice involvement", "lgbtq": "LGBTQ+",
    "congregate_before": "congregate care before", "awol_before": "AWOL before",
    "male:prior_sexual_abuse": "male × prior sexual abuse",
}
#: Risk factors as the subject of a sentence (key findings); tables and plots use _LABELS.
_PROSE = {
    "male": "being male", "age_at_start": "being older (per year of age)",
    "prior_sexual_abuse": "a history of sexual abuse", "prior_runaway": "a history of running away",
    "juvenile_justice": "juvenile-justice involvement", "lgbtq": "identifying as LGBTQ+",
    "congregate_before": "an earlier congregate-care placement",
    "awol_before": "an earlier AWOL episode",
    "male:prior_sexual_abuse": "being male with a history of sexual abuse",
}


def label(term: str) -> str:
    """A model term as a short label for tables and plots."""
    return _LABELS.get(str(term), str(term).replace("_", " "))


def prose(term: str) -> str:
    """A risk factor as the subject of a sentence.

    >>> prose("male"), prose("substance_use")
    ('being male', 'substance use')
    """
    return _PROSE.get(str(term), label(term))


def planned_bars(table: pd.DataFrame, x: str, y: str, ax=None, ylabel: str | None = None,
                 title: str | None = None):
    """Bars of a count as published (numbers, ``"<t"`` or ``"suppressed"``): shown counts
    drawn at their value; hidden ones not drawn at any value on the data axis, but marked by
    a hatched band over the whole axis height (:func:`dmst_eval.disclosure.mark_hidden_bars`;
    issue 14, point 5)."""
    from dmst_eval import plots

    return plots.count_bars(table, x, y, ax=ax, ylabel=ylabel, title=title,
                            hidden_label="hidden (height not data)")
