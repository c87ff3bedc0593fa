"""How much victimization happens while a child is AWOL? Share of confirmed episodes that began
during AWOL, share among children in care at the time, timing from AWOL start (within 48 hours,
within 7 days) and the AWOL hazard ratio."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A

TITLE = "How much victimization happens while a child is AWOL?"

_BINS = [0, 24, 48, 168, 672, np.inf]
_LABELS = ["under 24 h", "24 to 48 h", "2 to 7 days", "1 to 4 weeks", "over 4 weeks"]


def _share(brief, row) -> str:
    return A.share(brief, row["numerator"], row["denominator"], row["ci_lower"],
                   row["ci_upper"])


def answer(brief) -> str:
    a = A.answers(brief).awol
    s = (f"In {a.period}, {_share(brief, a.row('awol_share'))} confirmed episodes in "
         f"{brief.scope} began while the child was absent without leave (AWOL) from a "
         f"placement; among episodes of children in out-of-home care at the time, "
         f"{_share(brief, a.row('awol_share_in_care'))} did.")
    return s


@section(TITLE)
def build(brief) -> Section:
    a = A.answers(brief).awol
    t = brief.threshold
    parts = [markup.paragraph(answer(brief), cls="dmst-answer")]
    tables, figs = {}, []
    w48, w7 = a.row("within_48h"), a.row("within_7d")
    if w48["denominator"] > 0:
        parts.append(markup.paragraph(
            f"How soon: of the episodes that began during AWOL in {a.period}, "
            f"{A.share(brief, w48['numerator'], w48['denominator'], w48['ci_lower'], w48['ci_upper'])} "
            f"began within 48 hours of the child going missing and "
            f"{A.share(brief, w7['numerator'], w7['denominator'], w7['ci_lower'], w7['ci_upper'])} "
            "within 7 days."))
    hr = a.row("hazard_ratio")
    if np.isfinite(hr["value"]):
        parts.append(markup.paragraph(
            f"While AWOL, the rate of repeat episodes was {A.num(hr['value'], 1)} times the rate "
            f"while in placement ({A.interval(hr['ci_lower'], hr['ci_upper'], 1)}; "
            f"Andersen–Gill model, children first identified from {hr['period']})."))
    else:
        parts.append(markup.note("Too few repeat episodes while AWOL and while placed to "
                                 "estimate how much higher the risk is while AWOL."))
    rows = []
    for name, what in (("awol_share", "confirmed episodes that began during AWOL"),
                       ("awol_share_in_care", "… of episodes of children in out-of-home care"),
                       ("within_48h", "AWOL-onset episodes beginning within 48 hours"),
                       ("within_7d", "AWOL-onset episodes beginning within 7 days")):
        r = a.row(name)
        k, n = int(r["numerator"]), int(r["denominator"])
        ok = n > 0 and k >= t and n - k >= t or (n > 0 and k >= t and k == n)
        rows.append((what, a.period, k, n, A.pct(r["value"]) if ok else "",
                     A.interval(r["ci_lower"], r["ci_upper"], as_pct=True) if ok else ""))
    tab = pd.DataFrame(rows, columns=["measure", "period", "episodes", "of_episodes", "share",
                                      "interval"])
    h, shown = brief.table(tab, caption=f"Episodes and AWOL, {brief.scope}",
                           count_cols=["episodes", "of_episodes"], complementary=False,
                           note="Confirmed episodes identified in the period; shares with "
                                "Wilson 95% intervals (left out where a count is hidden).")
    parts.append(h)
    tables["awol"] = shown
    # timing, binned (no individual times are shown)
    cnt = pd.cut(pd.Series(a.hours), bins=_BINS, labels=_LABELS, right=True,
                 include_lowest=True).value_counts().reindex(_LABELS).fillna(0).astype(int)
    bins = brief.suppress(pd.DataFrame({"time_from_going_awol": _LABELS,
                                        "episodes": cnt.to_numpy()}), count_cols=["episodes"])
    if int(cnt.sum()) > 0:
        fig, ax = plots.new_figure((6.5, 3.0))
        plots.count_bars(bins, "time_from_going_awol", "episodes", ax=ax, threshold=t,
                         ylabel="confirmed episodes",
                         title="How soon after going AWOL did exploitation begin?")
        parts.append(brief.figure(fig, "awol_timing",
                                  f"Confirmed episodes that began during an AWOL spell, by time "
                                  f"from the start of the spell, {a.period}.", data=bins))
        figs.append("awol_timing")
        tables["awol_timing"] = bins
    return Section(None, "".join(parts), tables=tables, figures=figs)
