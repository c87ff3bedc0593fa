"""Methods and caveats, in plain words."""
from __future__ import annotations

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section

TITLE = "Methods and caveats"


def _place_definition() -> str:
    from dmst_eval import choices

    return choices.load().place_definition


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
        "region responsible for the report for hotline counts, the towns of the region for "
        "town rates (smoothing, clusters and colour classes are statewide, so they mean the "
        "same in every brief) and the congregate-care settings located in the region.",
        _place_definition(),
        "Each question's section opens with a one-sentence answer for the reporting period; "
        "numbers from a longer window (repeat-victimization curves, study-to-date facility "
        "figures, the AWOL hazard ratio when the period is too short) say which window they "
        "use. An interval that includes no difference is reported as \"no clear difference\".",
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
