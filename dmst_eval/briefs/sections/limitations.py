"""Limitations: what the numbers cannot say (under-identification, data completeness, the
meaning of "confirmed", small numbers)."""
from __future__ import annotations

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section

TITLE = "Limitations"


@section(TITLE)
def build(brief) -> Section:
    items = [
        "Under-identification. The brief counts the victims and survivors the agency "
        "identified, not how many children are trafficked. Most exploitation is never "
        "reported, so a rise can mean better identification (training, police reporting, "
        "MDTs) as much as more exploitation, and a fall can mean the opposite. Compare "
        "regions and years with this in mind.",
        "Data completeness. Case records are entered by many workers over many years: risk "
        "factors can be unknown (shown as missing, not as \"no\"), the start of an "
        "exploitation is often an estimate, service records can be late or incomplete, and "
        "outcomes that need follow-up time (referral within 30 days, re-victimization within "
        "12 months) are left out for children identified too recently to be judged.",
        "The meaning of \"confirmed\". A confirmed episode is the agency's own finding after "
        "its investigation, not a court finding or conviction; practice in confirming "
        "reports can differ between offices and change over time. Children whose reports "
        "were not confirmed may still have been trafficked and are not counted as victims.",
        "Small numbers. Regional and yearly counts are small: they move a lot by chance, and "
        "counts below the suppression threshold are hidden. The scorecard's intervals show "
        "how much a value could move by chance alone.",
        "Associations, not causes. Risk factors, hotspots and program comparisons describe "
        "who was identified and where; they do not prove what caused the exploitation or "
        "what a program achieved.",
    ]
    if brief.cd.is_synthetic:
        items.append("Synthetic data. Every child and number in this brief was simulated to "
                     "test the methods; nothing here describes real children or real agency "
                     "performance.")
    return Section(None, markup.bullets(items, cls="dmst-limitations"))
