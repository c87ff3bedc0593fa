"""Which congregate-care settings have several victims? Facilities with two or more victims in
the period (suppressed as needed), observed vs expected victims with the Holm-flagged
facilities named, the funnel plot, and the same from the start of the data for context."""
from __future__ import annotations

import pandas as pd

from dmst_eval import plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A

TITLE = "Which congregate-care settings have several victims?"

_SETTING = {"group_home": "group home", "residential_treatment": "residential treatment centre",
            "shelter": "shelter"}


def _name(r) -> str:
    return f"{_SETTING.get(str(r['setting']), str(r['setting']))} {r['facility_id']} in {r['town']}"


def _sentence(brief, f, first: bool) -> str:
    k = int(f.value("facilities_with_several_victims"))
    n = int(f.row("facilities_with_several_victims")["denominator"])
    s = (f"{'In' if first else 'From'} {f.period}, {k} of the {n} congregate-care settings "
         f"{'in ' + brief.scope if first else ''} had {f.min_victims} or more confirmed "
         "victims".replace("  ", " "))
    if k:
        top = f.facilities.iloc[0]
        v = int(top["victims"])
        s += (f"; the most was at {_name(top)} ({brief.count(v)} victims)" if v >= brief.threshold
              else "")
    return s


def answer(brief) -> str:
    f = A.answers(brief).facilities
    s = _sentence(brief, f, True)
    if int(f.value("facilities_with_several_victims")) == 0:
        st = A.study_to_date(brief)
        s += "; " + _sentence(brief, st, False)[0].lower() + _sentence(brief, st, False)[1:]
    return s + "."


def _excess_text(brief, f) -> str:
    fl = f.flagged
    if len(fl):
        names = "; ".join(
            f"{_name(r)} ({brief.count(int(r['observed']))} victims where "
            f"{A.num(r['expected'], 1)} were expected)" for _, r in fl.iterrows()
            if int(r["observed"]) >= brief.threshold) or "facilities with small counts"
        return (f"In {f.period}, {len(fl)} setting(s) had more victims than their child-days "
                f"explain after a Holm adjustment for testing every setting: {names}.")
    s = f.excess.summary
    text = (f"In {f.period}, no setting had more victims than its child-days explain after a "
            "Holm adjustment for testing every setting")
    if len(s) and int(s.iloc[0]["observed"]) >= brief.threshold:
        r = s.iloc[0]
        text += (f"; the largest excess was at {_name(r)}: {int(r['observed'])} victims where "
                 f"{A.num(r['expected'], 1)} were expected (adjusted p = "
                 f"{A.num(r['p_adjusted'], 2)})")
    return text + "."


@section(TITLE)
def build(brief) -> Section:
    t = brief.threshold
    f = A.answers(brief).facilities
    st = A.study_to_date(brief)
    parts = [markup.paragraph(answer(brief), cls="dmst-answer")]
    tables, figs = {}, []
    for key, res in (("period", f), ("study_to_date", st)):
        sev = res.facilities[res.facilities["several"]]
        tab = pd.DataFrame({"setting": [f"{r['facility_id']} ({_SETTING.get(str(r['setting']), r['setting'])})"
                                        for _, r in sev.iterrows()],
                            "town": sev["town"].astype(str), "victims": sev["victims"].astype(int),
                            "episodes": sev["episodes"].astype(int)})
        if len(tab):
            h, shown = brief.table(tab.head(15), caption=f"Settings with {res.min_victims} or "
                                                         f"more victims, {res.period}",
                                   count_cols=["victims", "episodes"], complementary=False,
                                   note=f"{len(tab)} settings in all; the 15 with most victims "
                                        "are listed. Victims: children with a confirmed episode "
                                        "while placed at the setting or AWOL from it.")
            parts.append(h)
            tables[f"facilities_{key}"] = shown
        parts.append(markup.paragraph(_excess_text(brief, res)))
        if key == "period" and st.period == f.period:
            break
    # funnel plot of the longer window (the period alone is usually too thin)
    res = st if len(st.excess.summary) else f
    ex = res.excess.summary
    if len(ex):
        data = brief.suppress(pd.DataFrame({"setting": ex["facility_id"].astype(str),
                                            "observed": ex["observed"].astype(int),
                                            "expected": ex["expected"].round(2),
                                            "ratio": ex["ratio"].round(2)}),
                              count_cols=["observed"], rate_cols={"ratio": "observed"},
                              complementary=False)
        fig, ax = plots.new_figure("default")
        res.plot(ax=ax, title="Victims per setting: observed / expected")
        parts.append(brief.figure(
            fig, "facility_funnel",
            f"Funnel plot, {res.period}: each dot is a congregate-care setting; observed "
            "victims (first episode linked to the setting) over the number expected from its "
            "child-days at the congregate-care rate. Dots above the dashed (95%) and dotted "
            "(99.8%) limits have more victims than chance easily explains; red dots remain "
            "significant after a Holm adjustment.", data=data))
        figs.append("facility_funnel")
    return Section(None, "".join(parts), tables=tables, figures=figs)
