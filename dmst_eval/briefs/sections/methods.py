"""Methods and caveats, in plain words."""
from __future__ import annotations

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section

TITLE = "Methods and caveats"


@section(TITLE)
def build(brief) -> Section:
    t = brief.threshold
    items = [
        f"Small numbers: every count from 1 to {t - 1} is shown as \"<{t}\" and a second "
        "number is hidden (\"suppressed\") wherever a total would otherwise reveal it; rates "
        "and percentages built on hidden counts are hidden too. A count of 0 is shown as 0.",
        "Confirmed victims are children with at least one episode the agency confirmed as "
        "trafficking, counted by the date the agency identified the episode; a repeat "
        "victim has two or more confirmed episodes.",
        "Regional briefs use the DCF region of the child's home town for child counts, the "
        "region responsible for the report for hotline counts, and the town where the "
        "exploitation began for the map.",
        "Risk factors are associations, not causes; they are estimated over the whole "
        "study window to have enough victims.",
        "Dates are shown to the month; no child identifier or date of an individual event "
        "appears in this brief.",
    ]
    if brief.params.low_threshold:
        items.append(f"This brief uses a suppression threshold of {t}, below the usual minimum "
                     f"for an {brief.audience} brief; it was allowed explicitly.")
    if brief.cd.is_synthetic:
        items.append("The data are synthetic: they were simulated with a known ground truth "
                     "to test the methods; the numbers say nothing about real children.")
    return Section(None, markup.bullets(items))
