"""How many children are victims? Count, rate per 10,000 children per year (exact CI) and the
rate ratio against the comparison period."""
from __future__ import annotations

import pandas as pd

from dmst_eval import disclosure
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A

TITLE = "How many children are victims?"


def answer(brief) -> str:
    """The one-sentence answer for the reporting period."""
    v = A.answers(brief).victims
    n = int(v.value("victims"))
    r = v.row("rate")
    # the same ledger cells as the tracking table's window totals, so the batch plan decides
    k = brief.key("Confirmed victims", brief.window_label("period"))
    kc = brief.key("Confirmed victims", brief.window_label("comparison"))
    s = (f"In {v.period}, {brief.count(n, key=k)} children in {brief.scope} were identified as "
         "confirmed victims of trafficking")
    shown = brief.shown(k)
    if n >= brief.threshold and shown:
        s += (f": {A.num(r['value'], 2)} per 10,000 children per year "
              f"({A.interval(r['ci_lower'], r['ci_upper'], 2)})")
    if v.comparison_period is not None and (v.summary["measure"] == "rate_ratio").any():
        m = int(v.value("comparison_victims"))
        rr = v.row("rate_ratio")
        if n >= brief.threshold and m >= brief.threshold and shown and brief.shown(kc):
            s += (f", {A.ratio_phrase(rr['value'], rr['ci_lower'], rr['ci_upper'])} "
                  f"compared with {v.comparison_period}")
        else:
            s += f" (compared with {brief.count(m, key=kc)} in {v.comparison_period})"
    return s + "."


@section(TITLE)
def build(brief) -> Section:
    v = A.answers(brief).victims
    t = brief.threshold
    s = v.summary.set_index("measure")
    k = brief.key("Confirmed victims", brief.window_label("period"))
    kc = brief.key("Confirmed victims", brief.window_label("comparison"))
    n_ok = s.loc["victims", "value"] >= t and brief.shown(k)


    def rate(name, ok):
        r = s.loc[name]
        return (A.num(r["value"], 2), A.interval(r["ci_lower"], r["ci_upper"], 2)) if ok \
            else ("", "")

    rows = [("confirmed victims", v.period, int(s.loc["victims", "value"]), "", ""),
            ("victims per 10,000 children per year", v.period, None, *rate("rate", n_ok))]
    if "comparison_victims" in s.index:
        m_ok = s.loc["comparison_victims", "value"] >= t and brief.shown(kc)
        rows += [("confirmed victims", v.comparison_period,
                  int(s.loc["comparison_victims", "value"]), "", ""),
                 ("victims per 10,000 children per year", v.comparison_period, None,
                  *rate("comparison_rate", m_ok))]
        if "rate_ratio" in s.index and n_ok and m_ok:
            rows.append(("rate ratio (period / comparison)", s.loc["rate_ratio", "period"],
                         None, *rate("rate_ratio", True)))
    tab = pd.DataFrame(rows, columns=["measure", "period", "victims", "estimate", "interval"])
    tab["victims"] = tab["victims"].astype("Int64")
    # the counts are the tracking table's window totals: shown as the batch plan says
    keys = pd.DataFrame({"victims": [k, None, kc, None, None][:len(tab)]}, index=tab.index,
                        dtype=object)
    planned = disclosure.apply_plan(tab, keys, brief.plan, brief.audience)
    html, shown = brief.table(planned, caption=f"Confirmed victims, {brief.scope}",
                              note="Victims: children with at least one confirmed episode "
                                   "identified in the period, each counted once. Rates use the "
                                   "children under 18 (2010 Census) of the area times the "
                                   "years of the period; exact (Garwood) 95% intervals; the "
                                   "rate ratio's interval is the exact conditional one.")
    return Section(None, markup.paragraph(answer(brief), cls="dmst-answer") + html,
                   tables={"victims": shown})
