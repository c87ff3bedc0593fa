"""Tracking numbers by year: victims, repeat victims, confirmed episodes and AWOL episodes for
each year of the comparison period and the reporting period (the five questions are answered
for the whole period in their own sections)."""
from __future__ import annotations

import pandas as pd

from dmst_eval import disclosure
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Tracking numbers by year"

ROWS = ("Confirmed victims", "Repeat victims", "Confirmed episodes",
        "Episodes that began during AWOL")


def _counts(brief) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The table's counts (rows = measures, columns = years and window totals), their ledger
    keys, and {window: (total column, year columns)}."""
    blocks, keys, windows = [], [], {}
    for which in ("comparison", "period"):
        ts = sh.tracking_counts(brief, which)
        rv = ts.repeat_victims.set_index("period")
        aw = ts.awol.set_index("period")
        cols = [p for p in rv.index if p != "all"]
        block = pd.DataFrame(index=list(ROWS))
        periods = {}
        for col in [*cols, "all"]:
            name = f"{which} total" if col == "all" else col
            block[name] = [int(rv.loc[col, "victims"]), int(rv.loc[col, "repeat_victims"]),
                           int(aw.loc[col, "episodes"]), int(aw.loc[col, "awol_episodes"])]
            periods[name] = (brief.window_label(which) if col == "all"
                             else brief.year_label(col, which))
        blocks.append(block)
        keys.append(disclosure.keys_frame(block, measure="index", region=brief.region,
                                          period={c: p for c, p in periods.items()}))
        windows[which] = (f"{which} total", [str(c) for c in cols])
    return pd.concat(blocks, axis=1), pd.concat(keys, axis=1), windows


def cells(brief, ledger) -> None:
    """Register the table's counts and how years relate to each window's total (episodes add
    up; children are counted once a window, so their totals are at most the sum)."""
    tab, keys, windows = _counts(brief)
    disclosure.register_table(ledger, tab, keys)
    for total, years in windows.values():
        for m in tab.index:
            ledger.add_sum_if_holds(keys.at[m, total], keys.loc[m, years],
                                    name="years add up to the period")


@section(TITLE)
def build(brief) -> Section:
    tab, keys, _ = _counts(brief)
    tab.index.name = "measure"
    keys.index.name = "measure"
    shown = disclosure.apply_plan(tab, keys, brief.plan, brief.audience)
    shown = shown.reset_index()
    shown.attrs = dict(shown.attrs)
    html, t = brief.table(shown, caption="Tracking questions by year (confirmed episodes, by "
                                         "date identified)")
    html += markup.note("Each cell counts children (victims) or episodes once per year; the "
                        "period totals count a child once even if identified in several years, "
                        "so they can be smaller than the sum of the years. Rows are different "
                        "measures and are not added up. Counts are hidden consistently across "
                        "the statewide and regional briefs, so that none can be worked out from "
                        "another brief.")
    return Section(None, html, tables={"tracking": t})
