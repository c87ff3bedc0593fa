"""Key findings: one sentence per tracking question (the sections' one-sentence answers), the
risk finding and the program finding, following the wording rules written down in
:mod:`dmst_eval.briefs.sections._answers` (largest odds ratio above 1 whose interval excludes
1, and that these are odds of identification; "no clear difference" when an interval spans 0;
no signed zero; every percentage with n, denominator and interval; every number with its
period)."""
from __future__ import annotations

import numpy as np

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Key findings"

#: The question sections whose one-sentence answers lead the key findings, in order.
QUESTIONS = ("victims", "repeat_victims", "towns", "awol", "congregate_care")


def _keys(brief) -> dict:
    """Ledger keys of the headline counts (the same cells as the tracking table's totals)."""
    w, wc = brief.window_label("period"), brief.window_label("comparison")
    return {"victims": brief.key("Confirmed victims", w),
            "victims_c": brief.key("Confirmed victims", wc),
            "repeat_victims": brief.key("Repeat victims", w),
            "episodes": brief.key("Confirmed episodes", w),
            "awol_episodes": brief.key("Episodes that began during AWOL", w),
            "reports": brief.key("Careline reports alleging trafficking", w),
            "police_reports": brief.key("Careline reports from police", w)}


def cells(brief, ledger) -> None:
    """Register the headline counts and, for each share the question sections show, its
    numerator, denominator and the complement a reader could work out. The shares themselves
    add nothing: the sections show a percentage only where the plan shows both its counts
    (:func:`dmst_eval.briefs.sections._answers.planned_share`)."""
    p, c = sh.headline(brief)["period"], sh.headline(brief)["comparison"]
    k = _keys(brief)
    # the headline counts: hidden to protect another count only when nothing else will do
    for name in ("victims", "repeat_victims", "episodes", "awol_episodes"):
        ledger.add(k[name], p[name], priority=1)
    ledger.add(k["victims_c"], c["victims"], priority=1)
    for n, of in (("repeat_victims", "victims"), ("awol_episodes", "episodes"),
                  ("police_reports", "reports")):
        ledger.add_share(k[n].measure, p[n], p[of], region=brief.region,
                         period=k[n].period, of_measure=k[of].measure,
                         publish_n=n != "police_reports")


@section(TITLE)
def build(brief) -> Section:
    from dmst_eval.briefs import sections

    items = []
    for name in QUESTIONS:
        try:
            items.append(sections.module(name).answer(brief))
        except Exception:  # an answer that cannot be computed is left out, not guessed
            if brief.strict:
                raise
    items.extend(analysis_findings(brief))
    return Section(None, markup.bullets(items, cls="dmst-findings"))


def analysis_findings(brief) -> list[str]:
    """Findings from the analysis sections (computed here if not yet; sections run once)."""
    out = []
    for fn in (finding_risk, finding_program):
        try:
            s = fn(brief)
        except Exception:
            if brief.strict:
                raise
            s = None
        if s:
            out.append(s)
    return out


def finding_risk(brief) -> str | None:
    """Rule 1 of :mod:`._answers`: the largest odds ratio above 1 whose interval excludes 1."""
    m = sh.risk_model(brief)
    if m is None:
        return None
    where = "" if brief.cache.get("risk_scope") == brief.scope or not brief.region_arg else \
        " statewide"
    s0, s1 = brief.study
    return (A.risk_finding(m.odds_ratios, sh.prose, where)[:-1]
            + f" (whole study window, {A.period_of(s0, s1)}).")


def finding_program(brief) -> str | None:
    """Rule 2: a risk difference whose interval spans 0 reads "no clear difference"."""
    brief.section("program_effects")
    eff = brief.cache.get("service_effect")
    if eff is None:
        return None
    rd, lo, hi = eff
    s0, s1 = brief.study
    return ("Re-victimization within 12 months among children referred to Restore & Recovery "
            f"services, compared with similar children not referred ({A.period_of(s0, s1)}; "
            f"weighted comparison): {A.difference_phrase(rd * 100, lo * 100, hi * 100)}.")
