"""Program effects: service referral and re-victimization (IPTW); police reporting before and
after Public Act 11-180 (interrupted time series)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import disclosure, plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.params import POLICY_DATES
from dmst_eval.briefs.sections import _shared as sh
from dmst_eval.errors import InputError

TITLE = "Program effects"
#: Covariates the service-referral weights balance (those present in the frame are used).
SERVICE_COVARIATES = ("male", "age_at_start", "prior_sexual_abuse", "prior_runaway",
                      "substance_use", "congregate_before", "awol_before")


@section(TITLE)
def build(brief) -> Section:
    parts, tables, figs = [], {}, []
    html, tabs = _service_effect(brief)
    parts.append(html)
    tables.update(tabs)
    html, tabs, fig = _police_reports(brief)
    parts.append(html)
    tables.update(tabs)
    figs.extend(fig)
    return Section(None, "".join(parts), tables=tables, figures=figs)


def _service_effect(brief) -> tuple[str, dict]:
    """Services -> re-victimization within 12 months (weighted comparison). Leaves the
    adjusted effect in ``brief.cache["service_effect"]`` for the key findings."""
    from dmst_eval import evaluation as ev

    parts, tables = [], {}
    t = brief.threshold
    sf, counts, keys = _service_counts(brief)
    n_ref, n_not = (int(v) for v in counts["victims"])
    n_out = int(counts["revictimized_12m"].sum())
    # shown as the batch plan says (the regions add up to statewide; each group's victims are
    # its re-victimized plus the rest)
    csup = disclosure.apply_plan(counts, keys, brief.plan, brief.audience)
    res = None
    if min(n_ref, n_not) >= 2 * t and n_out >= t:
        covs = [c for c in SERVICE_COVARIATES if c in sf.columns]
        try:
            res = ev.iptw_effect(sf, "referred", "revictimized_12m", covs,
                                  missing="drop")
        except InputError:  # no overlap (separation, positivity): no weighted comparison
            parts.append(markup.note(
                f"A weighted comparison is not possible in {brief.scope}: some groups of "
                "victims were all referred or all not referred, so like cannot be compared "
                "with like."))
    if res is not None:
        summ = res.summary[res.summary["measure"] == "risk_difference"]
        if brief.audience == "public":  # the unadjusted difference adds nothing for readers
            summ = summ[summ["method"] != "naive"]
        adj = summ[summ["method"] == res.method].iloc[0]
        brief.cache["service_effect"] = (float(adj["estimate"]), float(adj["ci_lower"]),
                                         float(adj["ci_upper"]))
        et = summ[["method", "estimate", "ci_lower", "ci_upper"]].copy()
        et["method"] = et["method"].map({"naive": "unadjusted", "iptw": "weighted (IPTW)",
                                         "aipw": "doubly robust (AIPW)"}).fillna(et["method"])
        for c in ("estimate", "ci_lower", "ci_upper"):
            et[c] = (et[c].astype(float) * 100).round(1)
        et = et.rename(columns={"estimate": "risk difference (points)"})
        h, et2 = brief.table(et, caption="Referral to Restore & Recovery services and "
                             "re-victimization within 12 months", count_cols=[],
                             note="Risk difference in percentage points (referred minus "
                                  "not referred), 95% CI from the stacked sandwich variance. "
                                  "Weights balance sex, age, risk flags and prior congregate "
                                  "care and AWOL; unmeasured differences may remain.")
        parts.append(h)
        tables["service_effect"] = et2
    elif not parts:
        parts.append(markup.note(f"Too few victims in {brief.scope} with a year of follow-up "
                                 "to estimate the effect of service referral reliably."))
    h, c2 = brief.table(csup, caption="Victims with 12 months of follow-up, by referral")
    parts.append(h)
    tables["service_counts"] = c2
    return "".join(parts), tables


def _service_counts(brief):
    """The service frame, the counts table (victims with 12 months of follow-up and those
    re-victimized, by referral) and its ledger keys."""
    from dmst_eval import evaluation as ev

    def compute():
        # one row per victim, computed child by child: the region's frame is the statewide
        # frame's rows of that region (computed once for the seven scopes of a batch ledger)
        sf = sh.batch_memo(brief, "service_frame", lambda: ev.service_frame(brief.cd))
        if brief.region_arg is not None:
            sf = sf[sf["region"] == brief.region_arg].reset_index(drop=True)
        groups = ["referred within 30 days", "not referred"]
        counts = pd.DataFrame({"group": groups,
                               "victims": [int((sf["referred"] == 1).sum()),
                                           int((sf["referred"] == 0).sum())],
                               "revictimized_12m": [
                                   int(sf.loc[sf["referred"] == 1, "revictimized_12m"].sum()),
                                   int(sf.loc[sf["referred"] == 0, "revictimized_12m"].sum())]})
        keys = disclosure.keys_frame(
            counts, ["victims", "revictimized_12m"],
            measure={"victims": [f"victims followed 12 months, {g}" for g in groups],
                     "revictimized_12m": [f"re-victimized within 12 months, {g}"
                                          for g in groups]},
            region=brief.region, period="all years")
        return sf, counts, keys
    return sh._memo(brief, "service_counts", compute)


def _register_services(brief, ledger) -> None:
    _, counts, keys = _service_counts(brief)
    disclosure.register_table(ledger, counts, keys)
    for i in counts.index:  # victims = re-victimized + not re-victimized (never shown)
        kv, kr = keys.at[i, "victims"], keys.at[i, "revictimized_12m"]
        comp = ledger.add(f"not re-victimized within 12 months, {counts.at[i, 'group']}",
                          int(counts.at[i, "victims"] - counts.at[i, "revictimized_12m"]),
                          region=brief.region, period="all years", audience=None)
        ledger.add_sum(kv, [kr, comp], name="n + complement = of")


def _police_series(brief):
    """Monthly police reports (statewide or the region's), the yearly table and its ledger
    keys (a year cut by the end of the series is labelled as such)."""
    from dmst_eval import evaluation as ev

    def compute():
        rp = brief.cd.reports
        if brief.region_arg:
            rp = rp[rp["region"].astype(str) == brief.region_arg]
        pol = rp[rp["reporter_type"].astype(str) == "police"]
        end = min(brief.pe, brief.study[1])
        series = ev.monthly_counts(pol["received_at"], brief.study[0], end)
        yearly = series.groupby(series.index.year).sum()
        ytab = pd.DataFrame({"year": yearly.index.astype(str),
                             "police_reports": yearly.to_numpy()})
        last = (end.month, end.day) == (12, 31)
        labels = [y if (last or y != str(end.year)) else f"{y} to {end.strftime('%Y-%m-%d')}"
                  for y in ytab["year"]]
        keys = disclosure.keys_frame(ytab, ["police_reports"],
                                     measure="Careline reports from police",
                                     region=brief.region, period=labels)
        return series, ytab, keys
    return sh._memo(brief, "police_series", compute)


def cells(brief, ledger) -> None:
    """Register the service counts (with the complement of each group's re-victimized) and
    the yearly police reports; the years of the reporting period add up to the period's police
    reports (shown in the key findings)."""
    _register_services(brief, ledger)
    _, ytab, keys = _police_series(brief)
    disclosure.register_table(ledger, ytab, keys)
    w = brief.window_label("period")
    total = brief.key("Careline reports from police", w)
    if total in ledger and ".." not in w:
        y0, y1 = (int(x) for x in w.split("-"))
        inside = [k for k in keys["police_reports"] if k.period.isdigit()
                  and y0 <= int(k.period) <= y1]
        if len(inside) == y1 - y0 + 1:
            ledger.add_sum_if_holds(total, inside, name="years add up to the period")


def _police_reports(brief) -> tuple[str, dict, list]:
    """Police reports before/after PA 11-180 (statewide series or the region's)."""
    from dmst_eval import evaluation as ev

    parts, figs = [], []
    t = brief.threshold
    series, ytab, keys = _police_series(brief)
    intervention = pd.Timestamp(next(iter(POLICY_DATES)))
    # shown as the batch plan says: the regions' years add up to the statewide years
    ysup = disclosure.apply_plan(ytab, keys, brief.plan, brief.audience)
    pre = series[series.index < intervention]
    if series.sum() >= 4 * t and len(pre) >= 24 and pre.sum() >= t:
        its = ev.interrupted_time_series(series, intervention, family="negbin")
        lc = its.summary.set_index("term").loc["level_change"]
        sc = its.summary.set_index("term").loc["slope_change"]
        fig, ax = plots.new_figure("wide")
        plots.its_figure(its, ax=ax, yearly=ysup.rename(columns={"police_reports": "count"}),
                         threshold=t, title="Police reports to the Careline before and after "
                                            "Public Act 11-180")
        parts.append(brief.figure(
            fig, "police_reports_its",
            f"Segmented negative-binomial regression of monthly police reports "
            f"({brief.month(brief.study[0])} to {brief.month(min(brief.pe, brief.study[1]))}) with month-of-year effects "
            f"and Newey–West errors: fitted line, and the counterfactual line (the pre-law trend "
            f"continued). Grey bars: observed reports per month, averaged over each year "
            f"(years with a hidden total are not drawn). Level change at October 2011: rate "
            f"ratio {lc['estimate']:.2f} (95% CI {lc['ci_lower']:.2f} to "
            f"{lc['ci_upper']:.2f}); slope change: ×{np.exp(sc['estimate']):.3f} per month "
            f"(95% CI {np.exp(sc['ci_lower']):.3f} to {np.exp(sc['ci_upper']):.3f}).",
            data=ysup))
        figs.append("police_reports_its")
        brief.cache["its_level"] = (float(lc["estimate"]), float(lc["ci_lower"]),
                                    float(lc["ci_upper"]))
    else:
        # no time series to draw: the yearly counts get a chart of their own (with the time
        # series, its grey bars show them, and the table below has the numbers)
        parts.append(markup.note("Too few police reports to fit an interrupted time series."))
        fig, ax = plots.new_figure((6.5, 2.4))
        sh.planned_bars(ysup, "year", "police_reports", ax=ax, ylabel="police reports")
        parts.append(brief.figure(fig, "police_reports_by_year",
                                  "Police reports to the Careline by year (the table below has "
                                  "the numbers; hatched: a hidden count, the column's height is "
                                  "not data).", data=ysup))
        figs.append("police_reports_by_year")
    h, y2 = brief.table(ysup, caption="Police reports to the Careline by year")
    parts.append(h)
    return "".join(parts), {"police_reports": y2}, figs
