"""Title, scope line, synthetic-data banner and the embedded audit metadata (no heading)."""
from __future__ import annotations

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section

TITLE = None


def banner(brief) -> str:
    """The "synthetic data" banner (empty for a real extract)."""
    return markup.render_template("banner.html.j2") if brief.cd.is_synthetic else ""


@section(TITLE, required=True)
def build(brief) -> Section:
    """The brief's first output: title, periods, audience and threshold, the banner, and the
    ``dmst-brief-meta`` block the disclosure audit reads."""
    p = brief.params
    meta = {"threshold": brief.threshold, "audience": brief.audience, "region": brief.region,
            "allowed_dates": brief.allowed_dates(), "slug": p.slug,
            "low_threshold": p.low_threshold}
    m = brief.month
    sub = (f"Reporting period {m(brief.ps)} to {m(brief.pe)}; compared with "
           f"{m(brief.cs)} to {m(brief.ce)}. Audience: {brief.audience} "
           f"(counts from 1 to {brief.threshold - 1} are shown as \"<{brief.threshold}\").")
    low = None
    if p.low_threshold:
        low = (f"Low suppression threshold: counts below {brief.threshold} are hidden, under the "
               f"usual minimum of {_minimum(brief)} for an "
               f"{brief.audience} brief. It was allowed explicitly (--allow-low-threshold); "
               "handle this brief with extra care.")
    html = markup.render_template(
        "header.html.j2", meta_json=markup.script_json(meta),
        title=f"DMST evaluation brief — {brief.scope}", subtitle=sub, low_threshold=low,
        banner=banner(brief))
    return Section(None, html)


def _minimum(brief) -> int:
    from dmst_eval.briefs.params import MIN_THRESHOLDS

    return MIN_THRESHOLDS[brief.audience]
