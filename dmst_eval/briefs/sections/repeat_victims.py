"""How many victims are repeat victims? Count and share for the period, and the cumulative
incidence of a second confirmed episode by 12 and 24 months (Aalen–Johansen, aging out a
competing event) with the numbers at risk under the curve.

Every count goes through the batch disclosure plan: :func:`cells` registers victims and repeat
victims (the tracking table's cells, with the complement), the children followed, those who
aged out (with the complement) and the numbers at risk under the curve (each at most the one
before). The curve stops where fewer than the threshold (and ``choices.repeat.min_at_risk``)
children are still followed (issue 14, point 5)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import disclosure, plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A
from dmst_eval.briefs.sections import _shared as sh

TITLE = "How many victims are repeat victims?"

M_VICTIMS = "Confirmed victims"
M_REPEAT = "Repeat victims"
M_FOLLOWED = "Children followed after a first confirmed episode"
M_AGED = "Children followed who aged out before a repeat episode"
M_NOT_AGED = "Children followed who did not age out before a repeat episode"


def _at_risk_measure(months) -> str:
    return M_FOLLOWED if float(months) == 0 else \
        f"Children still followed {int(months)} months after a first confirmed episode"


def _first_events(brief) -> pd.DataFrame:
    """First-event frame of the cohort (children first identified from the start of the data
    to the end of the period), statewide, with each child's region; scopes subset it."""
    from dmst_eval import choices, recidivism as rc, tracking as tr

    s0 = brief.study[0]
    _, hi = tr._resolve(brief.cd, *brief.period)

    def compute():
        ch = choices.load()
        rf = rc.recurrent_frame(brief.cd, start=s0, end=hi,
                                censor_age=float(ch.repeat["censor_age"]), confirmed_only=True)
        fe = rc.first_event_frame(rf)
        reg = brief.cd.children.assign(child_id=brief.cd.children["child_id"].astype(str)) \
            .set_index("child_id")["region"].astype(str)
        return fe.assign(region=fe["child_id"].astype(str).map(reg).to_numpy())
    return sh.batch_memo(brief, ("first_event_frame", str(s0), str(hi)), compute)


def counts(brief) -> dict:
    """The section's counts as :func:`dmst_eval.tracking.repeat_answer` defines them (cheap:
    no curve), memoised."""
    def compute():
        from dmst_eval import choices, tracking as tr

        h = sh.headline(brief)["period"]
        fe = _first_events(brief)
        if brief.region_arg:
            fe = fe[fe["region"] == brief.region_arg]
        dur = fe["duration"].to_numpy(dtype=float)
        months = [float(m) for m in choices.load().repeat["at_risk_months"]]
        return {"victims": h["victims"], "repeat": h["repeat_victims"], "followed": len(fe),
                "aged_out": int((fe["cause"] == 2).sum()),
                "at_risk": {m: int((dur >= m * tr.DAYS_PER_MONTH).sum()) for m in months}}
    return sh._memo(brief, "repeat_counts", compute)


def keys(brief) -> dict:
    w = brief.window_label("period")
    cohort = A.cells_label(brief.study[0], brief.pe)
    c = counts(brief)
    return {"victims": brief.key(M_VICTIMS, w), "repeat": brief.key(M_REPEAT, w),
            "followed": brief.key(M_FOLLOWED, cohort), "aged_out": brief.key(M_AGED, cohort),
            "not_aged": brief.key(M_NOT_AGED, cohort),
            "at_risk": {m: brief.key(_at_risk_measure(m), cohort) for m in c["at_risk"]}}


def cells(brief, ledger) -> None:
    """Register the counts with their complements and the numbers at risk (each at most the
    one before: a reader knows the cohort only shrinks)."""
    c, k = counts(brief), keys(brief)
    ledger.add_share(M_REPEAT, c["repeat"], c["victims"], region=brief.region,
                     period=k["repeat"].period, of_measure=M_VICTIMS)
    ledger.add(k["followed"], c["followed"])
    ledger.add(k["aged_out"], c["aged_out"])
    ledger.add(k["not_aged"], c["followed"] - c["aged_out"], audience=None)
    ledger.add_sum(k["followed"], [k["aged_out"], k["not_aged"]],
                   name="n + complement = of")
    prev = None
    for m, n in sorted(c["at_risk"].items()):
        km = ledger.add(k["at_risk"][m], n)
        if prev is not None and km != prev:
            ledger._relate({km: 1.0, prev: -1.0}, -np.inf, 0.0,
                           "numbers at risk only fall")
        prev = km


def answer(brief) -> str:
    r = A.answers(brief).repeat
    k = keys(brief)
    n, kk = int(r.value("victims")), int(r.value("repeat_victims"))
    row = r.row("repeat_share")
    s = (f"In {r.period}, "
         f"{A.planned_share(brief, kk, n, row['ci_lower'], row['ci_upper'], k['repeat'], k['victims'])}"
         f" confirmed victims in {brief.scope} were repeat victims (two or more confirmed "
         "episodes)")
    c12 = r.row("cif_12m")
    followed = int(r.value("children_followed"))
    if followed >= 2 * brief.threshold and brief.shown(k["followed"]) and pd.notna(c12["value"]):
        s += (f"; among children first identified from {r.cohort}, an estimated "
              f"{A.pct(c12['value'])} had a second confirmed episode within 12 months "
              f"({A.interval(c12['ci_lower'], c12['ci_upper'], as_pct=True)}; aging out at 18 "
              "counted as a competing event)")
    return s + "."


def _stop_month(brief, r) -> float:
    """Where the curve stops: the last month with at least max(threshold,
    ``min_at_risk``) children still followed, and no later than the last at-risk month."""
    tb = r.cif.table
    months = tb["time"].to_numpy(dtype=float) / _dpm()
    keep = disclosure.truncate_at_risk(tb.assign(months=months),
                                       max(brief.threshold, int(r.min_at_risk)),
                                       time="months", group=None)
    stop = float(keep["months"].max()) if len(keep) else 0.0
    return min(stop, float(r.at_risk["months"].max()))


def _dpm() -> float:
    from dmst_eval.tracking import DAYS_PER_MONTH

    return DAYS_PER_MONTH


@section(TITLE)
def build(brief) -> Section:
    r = A.answers(brief).repeat
    t = brief.threshold
    k = keys(brief)
    parts = [markup.paragraph(answer(brief), cls="dmst-answer")]
    tables, figs = {}, []
    followed = int(r.value("children_followed"))
    enough = followed >= 2 * t and brief.shown(k["followed"])
    rows = []
    for m in (12, 24):
        c = r.row(f"cif_{m}m")
        ok = enough and pd.notna(c["value"])
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
    counts_t = pd.DataFrame({
        "measure": ["confirmed victims in the period", "of whom repeat victims",
                    "children followed after a first confirmed episode",
                    "aged out before a repeat episode"],
        "period": [r.period, r.period, r.cohort, r.cohort],
        "children": [int(r.value("victims")), int(r.value("repeat_victims")), followed,
                     int(r.value("aged_out_before_repeat"))]})
    ck = pd.DataFrame({"children": [k["victims"], k["repeat"], k["followed"], k["aged_out"]]},
                      index=counts_t.index, dtype=object)
    h, ct = brief.table(counts_t, caption="Victims and repeat victims", cells=ck)
    parts.append(h)
    tables["repeat_counts"] = ct
    if enough and r.cif is not None:
        ar = r.at_risk.rename(columns={"at_risk": "children"})
        ak = pd.DataFrame({"children": [k["at_risk"][float(m)] for m in ar["months"]]},
                          index=ar.index, dtype=object)
        at = disclosure.apply_plan(ar, ak, brief.plan, brief.audience)
        stop = _stop_month(brief, r)
        fig, ax = plots.new_figure("default")
        r.plot(ax=ax, threshold=t, max_months=stop)
        # the numbers at risk under the axis as the batch plan shows them
        shown = at[at["months"] <= stop]
        ax.set_xticks(shown["months"].to_numpy(dtype=float))
        ax.set_xticklabels([f"{int(m)}\n{v:,}" if isinstance(v, (int, np.integer)) else
                            f"{int(m)}\n{v}" for m, v in zip(shown["months"], shown["children"])])
        ax.set_title("Share of victims with a second confirmed episode")
        parts.append(brief.figure(
            fig, "repeat_cumulative_incidence",
            f"Cumulative incidence of a second confirmed episode after a child's first "
            f"identification (Aalen–Johansen, 95% CI), children first identified from "
            f"{r.cohort}. The numbers under the axis are the children still followed at each "
            f"month; the curve stops at 24 months or where fewer than "
            f"{max(t, int(r.min_at_risk))} children are still followed.", data=at))
        figs.append("repeat_cumulative_incidence")
    else:
        parts.append(markup.note(f"Too few children followed in {brief.scope} to draw the "
                                 "curve without revealing small numbers."))
    return Section(None, "".join(parts), tables=tables, figures=figs)
