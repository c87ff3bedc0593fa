"""Key findings: short sentences whose numbers are computed (small counts as "fewer than k")."""
from __future__ import annotations

import numpy as np

from dmst_eval import disclosure
from dmst_eval.disclosure import share_text
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Key findings"


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
    """Register the headline counts and the shares shown with them (numerator, denominator
    and the complement a reader could work out)."""
    p, c = sh.headline(brief)["period"], sh.headline(brief)["comparison"]
    k = _keys(brief)
    ledger.add(k["victims"], p["victims"])
    ledger.add(k["victims_c"], c["victims"])
    from dmst_eval.briefs.disclosure_plan import thresholds

    for n, of in (("repeat_victims", "victims"), ("awol_episodes", "episodes"),
                  ("police_reports", "reports")):
        ledger.add_share(k[n].measure, p[n], p[of], region=brief.region,
                         period=k[n].period, of_measure=k[of].measure,
                         publish_n=n != "police_reports")
        # the share is shown (percentage or band, by each audience's threshold) only where
        # its denominator is shown, and with its numerator unless that is small
        for aud, t in thresholds(brief.params.as_dict()).items():
            small = (lambda v: 1 <= v < t)
            if not p[of] or small(p[of]) or (n != "police_reports" and small(p[n])):
                continue
            band = share_text(p[n], p[of], t).band
            if band is not None:
                ledger.add_ratio(k[n], k[of], (band[0] + band[1]) / 2,
                                 half_width=(band[1] - band[0]) / 2, audience=aud,
                                 name=f"share shown for {k[n].measure}")


def _share(brief, p, k, n, of) -> str | None:
    """"18 of 38 (47%)" when the plan shows both counts and the share rule allows it."""
    if not (brief.shown(k[n]) and brief.shown(k[of])) or not p[of]:
        return None
    txt = share_text(p[n], p[of], brief.threshold).text
    return None if txt == disclosure.SUPPRESSED else txt


@section(TITLE)
def build(brief) -> Section:
    h = sh.headline(brief)
    p, c = h["period"], h["comparison"]
    k = _keys(brief)
    m = brief.month
    items = []
    if brief.shown(k["victims"]) and brief.shown(k["victims_c"]):
        rr, lo, hi = sh.poisson_ratio_ci(p["victims"], c["victims"],
                                         (brief.pe - brief.ps).days + 1,
                                         (brief.ce - brief.cs).days + 1)
        chg = (f" (compared with {c['victims']:,} in {m(brief.cs)}–{m(brief.ce)}; "
               f"rate ratio {rr:.2f}, exact 95% CI {lo:.2f}–{hi:.2f})")
    else:
        chg = (f" (compared with {brief.count(c['victims'], key=k['victims_c'])} in "
               f"{m(brief.cs)}–{m(brief.ce)})")
    items.append(f"{brief.count(p['victims'], key=k['victims']).capitalize()} children were "
                 f"identified as confirmed victims of trafficking in {brief.scope} from "
                 f"{m(brief.ps)} to {m(brief.pe)}{chg}.")
    if brief.shown(k["victims"]):
        share = _share(brief, p, k, "repeat_victims", "victims")
        if share is not None:
            items.append(f"{p['repeat_victims']:,} of them ({share}) were repeat victims "
                         "(a second or later confirmed episode).")
        else:
            items.append(f"{brief.count(p['repeat_victims'], key=k['repeat_victims'])} "
                         .capitalize() + "of them were repeat victims.")
    if brief.shown(k["episodes"]):
        share = _share(brief, p, k, "awol_episodes", "episodes")
        if share is not None:
            items.append(f"{share[0].upper()}{share[1:]} of confirmed episodes "
                         f"({p['awol_episodes']:,} of {p['episodes']:,}) began while the "
                         "child was absent without leave (AWOL) from a placement.")
        else:
            items.append(f"{brief.count(p['awol_episodes'], key=k['awol_episodes'])} "
                         .capitalize() + "confirmed episodes began while the child was AWOL "
                         "from a placement.")
    if brief.shown(k["reports"]):
        s = f"The Careline received {p['reports']:,} reports alleging trafficking"
        if p["reports"]:
            share = share_text(p["police_reports"], p["reports"], brief.threshold).text
            if share != disclosure.SUPPRESSED:
                s += f"; {share} came from police"
        items.append(s + ".")
    items.extend(analysis_findings(brief))
    return Section(None, markup.bullets(items, cls="dmst-findings"))


def analysis_findings(brief) -> list[str]:
    """Findings from the analysis sections (computed here if not yet; sections run once)."""
    out = []
    for fn in (finding_hotspot, finding_risk, finding_repeat, finding_program):
        try:
            s = fn(brief)
        except Exception:  # a finding that cannot be computed is left out, not guessed
            if brief.strict:
                raise
            s = None
        if s:
            out.append(s)
    return out


def finding_hotspot(brief) -> str | None:
    t = brief.threshold
    towns = sh.tracking(brief, "period").towns
    towns = towns[towns["episodes"].astype(int) >= t]
    if towns.empty:
        return None
    top = towns.iloc[0]
    pt = float(top.get("prob_top", np.nan))
    sure = (f"; the probability that it truly has the highest rate is {pt:.0%}"
            if np.isfinite(pt) else "")
    return (f"Among towns with at least {t} confirmed episodes in the period, "
            f"{top['town']} had the highest smoothed rate "
            f"({float(top['smoothed_rate']):.1f} per 10,000 children per year{sure}).")


def finding_risk(brief) -> str | None:
    m = sh.risk_model(brief)
    if m is None:
        return None
    orr = m.odds_ratios[~m.odds_ratios.term.isin(["intercept", "age_at_start"])]
    sig = orr[(orr.ci_lower > 1) | (orr.ci_upper < 1)]
    if sig.empty:
        return ("No single risk factor was clearly associated with identification as a "
                "victim in these data (all 95% intervals include 1).")
    top = sig.loc[np.log(sig.odds_ratio.astype(float)).abs().idxmax()]
    where = "" if brief.cache.get("risk_scope") == brief.scope or not brief.region_arg else \
        " statewide"
    if top.odds_ratio >= 1:
        return (f"Among child-welfare-involved children{where}, {sh.prose(top.term)} was "
                f"the strongest risk factor: odds of identification as a victim "
                f"{top.odds_ratio:.1f} times as high (95% CI {top.ci_lower:.1f}–"
                f"{top.ci_upper:.1f}), other factors held equal.")
    return (f"Among child-welfare-involved children{where}, {sh.prose(top.term)} was "
            f"associated with lower odds of identification (odds ratio "
            f"{top.odds_ratio:.2f}, 95% CI {top.ci_lower:.2f}–{top.ci_upper:.2f}).")


def finding_repeat(brief) -> str | None:
    km = brief.section("repeat_victimization").tables.get("km")
    if km is None or km.empty:
        return None
    r = km[km["measure"].str.contains("12 months")]
    if r.empty or disclosure.is_hidden(r["estimate"].iloc[0]):
        return None
    r = r.iloc[0]
    return (f"An estimated {r['estimate']:.0%} of victims had another confirmed episode "
            f"within 12 months of first being identified (95% CI {r['ci_lower']:.0%}–"
            f"{r['ci_upper']:.0%}; Kaplan–Meier, all years).")


def finding_program(brief) -> str | None:
    brief.section("program_effects")
    eff = brief.cache.get("service_effect")
    if eff is None:
        return None
    rd, lo, hi = eff
    size = sh.num(abs(rd) * 100)
    diff = ("about the same as that of" if size == "0" else
            f"{size} percentage points {'lower' if rd < 0 else 'higher'} than that of")
    return (f"Children referred to Restore & Recovery services had a 12-month "
            f"re-victimization risk {diff} similar children not referred "
            f"(95% CI {sh.num(lo * 100)} to {sh.num(hi * 100)} points; weighted "
            "comparison).")
