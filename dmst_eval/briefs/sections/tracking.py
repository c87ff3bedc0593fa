"""The agency's tracking questions: victims, repeat victims, AWOL share, facilities, by year."""
from __future__ import annotations

import pandas as pd

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "The agency's tracking questions"

ROWS = ("Confirmed victims", "Repeat victims", "Confirmed episodes",
        "Episodes that began during AWOL", "Congregate settings with 2+ victims")


@section(TITLE)
def build(brief) -> Section:
    blocks = []
    for which in ("comparison", "period"):
        ts = sh.tracking(brief, which)
        rv = ts.repeat_victims.set_index("period")
        aw = ts.awol.set_index("period")
        fy = ts.facilities_by_year.set_index("period")
        cols = [p for p in rv.index if p != "all"]
        block = pd.DataFrame(index=list(ROWS))
        for col in [*cols, "all"]:
            name = f"{which} total" if col == "all" else col
            block[name] = [int(rv.loc[col, "victims"]), int(rv.loc[col, "repeat_victims"]),
                           int(aw.loc[col, "episodes"]), int(aw.loc[col, "awol_episodes"]),
                           int(fy.loc[col, "facilities_with_several_victims"])
                           if col in fy.index else len(ts.facilities)]
        blocks.append(brief.suppress(block, total_cols=[f"{which} total"],
                                     complementary="rows"))
    tab = pd.concat(blocks, axis=1)
    tab.attrs["disclosure"] = {"threshold": brief.threshold,
                               "count_cols": [str(c) for c in tab.columns]}
    tab = tab.reset_index().rename(columns={"index": "measure"})
    html, t = brief.table(tab, caption="Tracking questions by year (confirmed episodes, by "
                                       "date identified)")
    html += markup.note("Each cell counts children (victims) or episodes once per year; the "
                        "period totals count a child once even if identified in several years, "
                        "so they can be smaller than the sum of the years. Rows are different "
                        "measures and are not added up.")
    return Section(None, html, tables={"tracking": t})
