"""Repeat victimization: time to a repeat episode (Kaplan–Meier), repeat episodes per child
(MCF), and how soon after going AWOL exploitation began."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import disclosure, plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Repeat victimization"
#: Days per month for the curves (durations are in days).
DAYS_PER_MONTH = 30.4375
#: Bins of hours from going AWOL to the start of exploitation.
AWOL_BINS = [0, 24, 72, 168, 672, np.inf]
AWOL_LABELS = ["under 24 hours", "1–3 days", "3–7 days", "1–4 weeks", "over 4 weeks"]


@section(TITLE)
def build(brief) -> Section:
    from dmst_eval import recidivism as rc

    parts, tables, figs = [], {}, []
    t = brief.threshold
    cd = sh.scope_cd(brief)
    rf = rc.recurrent_frame(cd, confirmed_only=True)
    fe = rc.first_event_frame(rf)
    n_children, n_events = len(fe), int(fe["event"].sum()) if len(fe) else 0
    counts = pd.DataFrame({"measure": ["children followed after a first confirmed episode",
                                       "children with a repeat episode",
                                       "repeat episodes"],
                           "n": [n_children, n_events, int(rf["event"].sum())
                                 if len(rf) else 0]})
    if n_children >= 2 * t and n_events >= t:
        dpm = DAYS_PER_MONTH
        km = rc.kaplan_meier(fe.assign(duration=fe["duration"] / dpm), "duration", "event",
                             months=(6, 12), days_per_unit=dpm, time_unit="months")
        mcf = rc.mean_cumulative_function(rf.assign(start=rf["start"] / dpm,
                                                    stop=rf["stop"] / dpm),
                                          months=(6, 12, 24), days_per_unit=dpm,
                                          time_unit="months")
        fig, (a1, a2) = plots.new_figure("panel2", ncols=2)
        # step curves stop before fewer than `t` children remain at risk: the size of a late
        # jump (1/8, 1/4) would tell how many children were left
        km.plot(ax=a1, at_risk=False, cumulative=True, min_at_risk=t)
        a1.set_title("Share re-victimized")
        mcf.table = disclosure.truncate_at_risk(mcf.table, t)
        mcf.plot(ax=a2)
        a2.set_title("Repeat episodes per child")
        ks = km.summary.iloc[0]
        rows = []
        for mth in (6, 12):
            c = f"survival_{mth}m"
            if c in ks.index:
                rows.append((f"share re-victimized within {mth} months", 1 - float(ks[c]),
                             1 - float(ks[c + "_ci_upper"]), 1 - float(ks[c + "_ci_lower"])))
        est_tab = pd.DataFrame(rows, columns=["measure", "estimate", "ci_lower", "ci_upper"])
        data = brief.suppress(counts, count_cols=["n"], complementary=False)
        parts.append(brief.figure(fig, "repeat_victimization",
                                  "Left: Kaplan–Meier estimate of the share of children with a "
                                  "repeat confirmed episode, by months since their first "
                                  "identification (95% CI, log–log). Right: mean number of "
                                  "repeat episodes per child still in care (Nelson–Aalen MCF, "
                                  "Lawless–Nadeau 95% CI). Follow-up ends at 18.",
                                  data=data))
        figs.append("repeat_victimization")
        if len(est_tab):
            h, et = brief.table(est_tab, caption="Repeat victimization (Kaplan–Meier)",
                                count_cols=[])
            parts.append(h)
            tables["km"] = et
    else:
        parts.append(markup.note(f"Too few children with a repeat episode in {brief.scope} to "
                                 "draw survival curves without revealing small numbers."))
    h, ct = brief.table(counts, caption="Children followed and repeat episodes (all years)",
                        count_cols=["n"], complementary=False)
    parts.append(h)
    tables["repeat_counts"] = ct
    html, sup = _awol_timing(brief)
    parts.append(html)
    figs.append("awol_timing")
    tables["awol_timing"] = sup
    return Section(None, "".join(parts), tables=tables, figures=figs)


def _awol_timing(brief) -> tuple[str, pd.DataFrame]:
    """Binned hours from going AWOL to the start of exploitation (bar chart)."""
    t = brief.threshold
    ep = sh.episodes(brief)
    aw = brief.cd.awol_episodes
    ep_aw = ep[ep["awol_id"].notna()].merge(
        aw[["awol_id", "start"]].rename(columns={"start": "awol_start"}), on="awol_id",
        how="inner")
    hours = (ep_aw["began_at"] - ep_aw["awol_start"]).dt.total_seconds() / 3600
    labels = AWOL_LABELS
    cnt = pd.cut(hours.clip(lower=0), bins=AWOL_BINS, labels=labels, right=False) \
        .value_counts().reindex(labels).fillna(0).astype(int)
    df = pd.DataFrame({"time_from_going_awol": labels, "episodes": cnt.to_numpy()})
    sup = brief.suppress(df, count_cols=["episodes"])
    fig, ax = plots.new_figure("default")
    vals = pd.to_numeric(sup["episodes"], errors="coerce")
    hid = sup["episodes"].map(disclosure.is_hidden).to_numpy()
    x = np.arange(len(labels))
    ax.bar(x[~hid], vals[~hid], color=plots.OKABE_ITO["blue"])
    if hid.any():  # hidden categories: a hatched band over the whole axis, at no value
        disclosure.mark_hidden_bars(ax, x, hid, label="hidden (small count)")
        ax.legend()
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_ylabel("confirmed episodes")
    ax.set_title("How soon after going AWOL did exploitation begin?")
    html = brief.figure(fig, "awol_timing", "Confirmed episodes that began during an AWOL "
                        "spell, by time since the child went missing (all years).", data=sup)
    return html, sup
