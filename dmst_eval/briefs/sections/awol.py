"""How much victimization happens while a child is AWOL? Share of confirmed episodes that began
during AWOL, share among children in care at the time, timing from AWOL start (within 48 hours,
within 7 days) and the AWOL hazard ratio.

Every count goes through the batch disclosure plan (:func:`cells` registers them with their
relations: episodes = in care + at home, in care = AWOL + in placement, AWOL-onset = timed +
untimed, timed = the timing bins, within 48 hours / 7 days = the first bins)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import disclosure
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A
from dmst_eval.briefs.sections import _shared as sh

TITLE = "How much victimization happens while a child is AWOL?"

#: The timing chart's bars: the same cuts as the shares (within 48 hours, within 7 days), so
#: its first bar is the within-48-hours count and no finer split of small counts is published.
#: Drawn in the statewide brief only (regional counts are too small to split further).
_LABELS = ["within 48 hours", "2 to 7 days", "over 7 days"]
#: Ledger measures (the first two are the tracking table's cells).
M_AWOL = "Episodes that began during AWOL"
M_EPISODES = "Confirmed episodes"
M_CARE = "Confirmed episodes of children in out-of-home care"
M_PLACED = "Confirmed episodes that began in placement"
M_HOME = "Confirmed episodes of children not in care"
M_TIMED = "AWOL-onset episodes with a known AWOL start"
M_UNTIMED = "AWOL-onset episodes without a known AWOL start"
M_48 = "AWOL-onset episodes beginning within 48 hours"  # also the timing chart's first bar
M_7D = "AWOL-onset episodes beginning within 7 days"


def _bin_measure(label: str) -> str:
    return f"AWOL-onset episodes beginning {label} after going AWOL"


def counts(brief) -> dict:
    """The section's counts for the reporting period, computed from the data as
    :func:`dmst_eval.tracking.awol_answer` defines them (cheap: no model), memoised."""
    def compute():
        from dmst_eval import tracking as tr

        lo, hi = tr._resolve(brief.cd, *brief.period)
        ep = tr._episodes_in(brief.cd, lo, hi, brief.region_arg)
        st = ep["status_at_time"].astype("object")
        aw = (st == "awol").to_numpy()
        care = st.isin(["awol", "placement"]).to_numpy()
        hours = np.array([], dtype=float)
        cd = brief.cd
        if "awol_id" in ep.columns and hasattr(cd, "awol_episodes") and len(cd.awol_episodes):
            a = cd.awol_episodes[["awol_id", "start"]].rename(columns={"start": "awol_start"})
            e = ep.loc[aw & ep["awol_id"].notna().to_numpy(), ["awol_id", "began_at"]].merge(
                a, on="awol_id", how="inner")
            hours = ((e["began_at"] - e["awol_start"]) / pd.Timedelta(hours=1)).to_numpy(float)
        hours = np.sort(hours[hours >= 0])
        w48, w7 = int((hours <= 48).sum()), int((hours <= 168).sum())
        bins = pd.Series([w48, w7 - w48, len(hours) - w7], index=_LABELS)
        return {"episodes": len(ep), "awol": int(aw.sum()), "care": int(care.sum()),
                "timed": len(hours), "within_48h": int((hours <= 48).sum()),
                "within_7d": int((hours <= 168).sum()), "bins": bins}
    return sh._memo(brief, "awol_counts", compute)


def keys(brief) -> dict:
    w = brief.window_label("period")
    out = {name: brief.key(m, w) for name, m in
           (("awol", M_AWOL), ("episodes", M_EPISODES), ("care", M_CARE),
            ("placed", M_PLACED), ("home", M_HOME), ("timed", M_TIMED),
            ("untimed", M_UNTIMED), ("within_48h", M_48), ("within_7d", M_7D))}
    out["bins"] = [out["within_48h"]] + [brief.key(_bin_measure(lab), w) for lab in _LABELS[1:]]
    return out


def cells(brief, ledger) -> None:
    """Register the counts the section shows, the ones a reader can work out from them, and
    how they relate (parts add up to wholes)."""
    c, k = counts(brief), keys(brief)
    for name in ("awol", "episodes", "care", "timed", "within_48h", "within_7d"):
        ledger.add(k[name], c[name])
    # never shown, but a reader can subtract: registered unpublished, so they are checked too
    ledger.add(k["placed"], c["care"] - c["awol"], audience=None)
    ledger.add(k["home"], c["episodes"] - c["care"], audience=None)
    ledger.add(k["untimed"], c["awol"] - c["timed"], audience=None)
    ledger.add_sum(k["care"], [k["awol"], k["placed"]], name="parts add up to the whole")
    ledger.add_sum(k["episodes"], [k["care"], k["home"]], name="parts add up to the whole")
    ledger.add_sum(k["awol"], [k["timed"], k["untimed"]], name="parts add up to the whole")
    # the timing bars (statewide brief only): 2 to 7 days and over 7 days are published there;
    # elsewhere they are the differences a reader can take
    shown = None if brief.region_arg else disclosure.AUDIENCES
    ledger.add(k["bins"][1], int(c["bins"].iloc[1]), audience=shown)
    ledger.add(k["bins"][2], int(c["bins"].iloc[2]), audience=shown)
    ledger.add_sum(k["within_7d"], [k["within_48h"], k["bins"][1]],
                   name="parts add up to the whole")
    ledger.add_sum(k["timed"], [k["within_7d"], k["bins"][2]], name="parts add up to the whole")


def _share(brief, row, kk, kn) -> str:
    return A.planned_share(brief, row["numerator"], row["denominator"], row["ci_lower"],
                           row["ci_upper"], kk, kn)


def answer(brief) -> str:
    a = A.answers(brief).awol
    k = keys(brief)
    s = (f"In {a.period}, {_share(brief, a.row('awol_share'), k['awol'], k['episodes'])} "
         f"confirmed episodes in {brief.scope} began while the child was absent without leave "
         f"(AWOL) from a placement; among episodes of children in out-of-home care at the "
         f"time, {_share(brief, a.row('awol_share_in_care'), k['awol'], k['care'])} did.")
    return s


@section(TITLE)
def build(brief) -> Section:
    from dmst_eval import plots

    a = A.answers(brief).awol
    t = brief.threshold
    k = keys(brief)
    parts = [markup.paragraph(answer(brief), cls="dmst-answer")]
    tables, figs = {}, []
    w48, w7 = a.row("within_48h"), a.row("within_7d")
    if w48["denominator"] > 0 and any(brief.shown(k[x])
                                      for x in ("timed", "within_48h", "within_7d")):
        parts.append(markup.paragraph(
            f"How soon: of the episodes that began during AWOL in {a.period} (with a known "
            f"AWOL start), {_share(brief, w48, k['within_48h'], k['timed'])} began within 48 "
            f"hours of the child going missing and "
            f"{_share(brief, w7, k['within_7d'], k['timed'])} within 7 days."))
    elif w48["denominator"] > 0:  # no number to give: "<5 of a number not shown" says nothing
        parts.append(markup.paragraph(
            f"How soon: in {a.period}, how many AWOL-onset episodes began within 48 hours or "
            "within 7 days of the child going missing is hidden (the numbers are small, or "
            "would reveal a small number)."))
    hr = a.row("hazard_ratio")
    if np.isfinite(hr["value"]):
        parts.append(markup.paragraph(
            f"While AWOL, the rate of repeat episodes was {A.num(hr['value'], 1)} times the rate "
            f"while in placement ({A.interval(hr['ci_lower'], hr['ci_upper'], 1)}; "
            f"Andersen–Gill model, children first identified from {hr['period']})."))
    else:
        parts.append(markup.note("Too few repeat episodes while AWOL and while placed to "
                                 "estimate how much higher the risk is while AWOL."))
    rows, krows = [], []
    for name, what, kk, kn in (
            ("awol_share", "confirmed episodes that began during AWOL", "awol", "episodes"),
            ("awol_share_in_care", "… of episodes of children in out-of-home care", "awol",
             "care"),
            ("within_48h", "AWOL-onset episodes beginning within 48 hours", "within_48h",
             "timed"),
            ("within_7d", "AWOL-onset episodes beginning within 7 days", "within_7d",
             "timed")):
        r = a.row(name)
        kn_, n_ = int(r["numerator"]), int(r["denominator"])
        rows.append((what, a.period, kn_, n_, A.pct(r["value"]) if n_ else "",
                     A.interval(r["ci_lower"], r["ci_upper"], as_pct=True) if n_ else ""))
        krows.append((k[kk], k[kn]))
    tab = pd.DataFrame(rows, columns=["measure", "period", "episodes", "of_episodes", "share",
                                      "interval"])
    kf = pd.DataFrame(krows, columns=["episodes", "of_episodes"], index=tab.index, dtype=object)
    planned = disclosure.apply_plan(tab, kf, brief.plan, brief.audience,
                                    rate_cols={"share": ["episodes", "of_episodes"],
                                               "interval": ["episodes", "of_episodes"]})
    h, shown = brief.table(planned, caption=f"Episodes and AWOL, {brief.scope}",
                           note="Confirmed episodes identified in the period; shares with "
                                "Wilson 95% intervals (left out where a count is hidden). "
                                "Counts are hidden consistently across the statewide and "
                                "regional briefs.")
    parts.append(h)
    tables["awol"] = shown
    # timing, binned at the shares' cuts (no individual times are shown), as the batch plan
    # says; statewide only
    c = counts(brief)
    if int(c["bins"].sum()) > 0 and not brief.region_arg:
        bins = pd.DataFrame({"time_from_going_awol": _LABELS,
                             "episodes": c["bins"].to_numpy()})
        bk = pd.DataFrame({"episodes": k["bins"]}, index=bins.index, dtype=object)
        bins = disclosure.apply_plan(bins, bk, brief.plan, brief.audience)
        fig, ax = plots.new_figure((6.5, 3.0))
        sh.planned_bars(bins, "time_from_going_awol", "episodes", ax=ax,
                        ylabel="confirmed episodes",
                        title="How soon after going AWOL did exploitation begin?")
        parts.append(brief.figure(fig, "awol_timing",
                                  f"Confirmed episodes that began during an AWOL spell, by time "
                                  f"from the start of the spell, {a.period}. Hatched columns: a "
                                  "count hidden so that no small number can be worked out (the "
                                  "column's height is not data).", data=bins))
        figs.append("awol_timing")
        tables["awol_timing"] = bins
    return Section(None, "".join(parts), tables=tables, figures=figs)
