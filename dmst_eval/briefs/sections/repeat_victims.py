"""How many victims are repeat victims? Count and share for the period, and the cumulative
incidence of a second confirmed episode by 12 and 24 months (Aalen–Johansen, aging out a
competing event) with the numbers at risk under the curve."""
from __future__ import annotations

import pandas as pd

from dmst_eval import plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A

TITLE = "How many victims are repeat victims?"


def answer(brief) -> str:
    r = A.answers(brief).repeat
    n, k = int(r.value("victims")), int(r.value("repeat_victims"))
    row = r.row("repeat_share")
    s = (f"In {r.period}, {A.share(brief, k, n, row['ci_lower'], row['ci_upper'])} confirmed "
         f"victims in {brief.scope} were repeat victims (two or more confirmed episodes)")
    c12 = r.row("cif_12m")
    followed = int(r.value("children_followed"))
    if followed >= 2 * brief.threshold and pd.notna(c12["value"]):
        s += (f"; among children first identified from {r.cohort}, an estimated "
              f"{A.pct(c12['value'])} had a second confirmed episode within 12 months "
              f"({A.interval(c12['ci_lower'], c12['ci_upper'], as_pct=True)}; aging out at 18 "
              "counted as a competing event)")
    return s + "."


@section(TITLE)
def build(brief) -> Section:
    r = A.answers(brief).repeat
    t = brief.threshold
    parts = [markup.paragraph(answer(brief), cls="dmst-answer")]
    tables, figs = {}, []
    followed = int(r.value("children_followed"))
    rows = []
    for m in (12, 24):
        c = r.row(f"cif_{m}m")
        ok = followed >= 2 * t and pd.notna(c["value"])
        rows.append((f"second confirmed episode within {m} months", r.cohort,
                     A.pct(c["value"]) if ok else "not estimable",
                     A.interval(c["ci_lower"], c["ci_upper"], as_pct=True) if ok else ""))
    est = pd.DataFrame(rows, columns=["measure", "children first identified", "estimate",
                                      "interval"])
    h, est_t = brief.table(est, caption="Cumulative incidence of a repeat episode "
                                        "(Aalen–Johansen)", count_cols=[],
                           note="Follow-up runs from a child's first identification to the "
                                "18th birthday (aging out: a competing event, not censoring) "
                                "or the end of the period. 1 − Kaplan–Meier, which treats "
                                "aging out as censoring, overstates this share.")
    parts.append(h)
    tables["cumulative_incidence"] = est_t
    counts = pd.DataFrame({
        "measure": ["confirmed victims in the period", "of whom repeat victims",
                    "children followed after a first confirmed episode",
                    "aged out before a repeat episode"],
        "period": [r.period, r.period, r.cohort, r.cohort],
        "children": [int(r.value("victims")), int(r.value("repeat_victims")), followed,
                     int(r.value("aged_out_before_repeat"))]})
    h, ct = brief.table(counts, caption="Victims and repeat victims", count_cols=["children"],
                        complementary=False)
    parts.append(h)
    tables["repeat_counts"] = ct
    if followed >= 2 * t and r.cif is not None:
        at = brief.suppress(r.at_risk.rename(columns={"at_risk": "children"}),
                            count_cols=["children"], complementary=False)
        fig, ax = plots.new_figure("default")
        r.plot(ax=ax, threshold=t)
        ax.set_title("Share of victims with a second confirmed episode")
        parts.append(brief.figure(
            fig, "repeat_cumulative_incidence",
            f"Cumulative incidence of a second confirmed episode after a child's first "
            f"identification (Aalen–Johansen, 95% CI), children first identified from "
            f"{r.cohort}. The numbers under the axis are the children still followed at each "
            f"month; the curve stops at 24 months or where fewer than {r.min_at_risk} children "
            "are still followed.", data=at))
        figs.append("repeat_cumulative_incidence")
    else:
        parts.append(markup.note(f"Too few children followed in {brief.scope} to draw the "
                                 "curve without revealing small numbers."))
    return Section(None, "".join(parts), tables=tables, figures=figs)
