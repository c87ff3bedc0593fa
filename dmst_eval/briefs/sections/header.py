"""The title block: agency, title, region, periods, publication date, audience, the
synthetic-data banner, the table of contents, the style sheet (screen and print: page numbers
and the banner on every printed page) and the embedded audit metadata (no heading)."""
from __future__ import annotations

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section

TITLE = None
#: Who publishes the brief, unless the data's ``meta["agency"]`` says otherwise.
DEFAULT_AGENCY = "Connecticut Department of Children and Families (DCF)"
#: The running header of every printed page of a brief from synthetic data.
BANNER_SHORT = "SYNTHETIC DATA — simulated children and numbers; not real agency performance"
AUDIENCES = {"internal": "Internal — DCF staff and partners working with these children",
             "public": "Public"}


def banner(brief) -> str:
    """The "synthetic data" banner (empty for a real extract)."""
    return markup.render_template("banner.html.j2") if brief.cd.is_synthetic else ""


def document_title(brief) -> str:
    """The brief's ``<title>``: unique per region, period and audience."""
    m = brief.month
    return (f"DMST evaluation brief — {brief.scope} — {m(brief.ps)} to {m(brief.pe)} — "
            f"{brief.audience}")


def _published(brief) -> str:
    d = brief.started
    return f"{d.day} {d.strftime('%B %Y')}"


def print_css(brief) -> str:
    """The print style sheet: page size and margins, the running footer (title, page X of Y)
    and, for synthetic data, the banner as a running header on every page."""
    from dmst_eval import plots

    running = f"DMST evaluation brief — {brief.scope} — {brief.audience}"
    return markup.render_template(
        "print.css.j2", banner=markup.css_string(BANNER_SHORT) if brief.cd.is_synthetic else "",
        running=markup.css_string(running), fonts=plots.css_fonts(), colors=plots.BRIEF_COLORS)


def toc(brief) -> list[tuple[str, str]]:
    """(anchor, heading) of every titled section, in brief order."""
    from dmst_eval.briefs import sections

    return [(markup.anchor(t), t) for t in (sections.title(n) for n in sections.ORDER) if t]


@section(TITLE, required=True)
def build(brief) -> Section:
    """The brief's first output: title page block, table of contents, style, banner and the
    ``dmst-brief-meta`` block the disclosure audit reads."""
    from dmst_eval import plots

    p = brief.params
    meta = {"threshold": brief.threshold, "audience": brief.audience, "region": brief.region,
            "allowed_dates": brief.allowed_dates(), "slug": p.slug,
            "low_threshold": p.low_threshold, "title": document_title(brief)}
    m = brief.month
    facts = [
        ("Region", brief.scope),
        ("Reporting period", f"{m(brief.ps)} to {m(brief.pe)}"),
        ("Compared with", f"{m(brief.cs)} to {m(brief.ce)}"),
        ("Published", _published(brief)),
        ("Audience", AUDIENCES.get(brief.audience, brief.audience)),
        ("Small numbers", f"counts from 1 to {brief.threshold - 1} are shown as "
                          f"\"<{brief.threshold}\""),
    ]
    low = None
    if p.low_threshold:
        low = (f"Low suppression threshold: counts below {brief.threshold} are hidden, under the "
               f"usual minimum of {_minimum(brief)} for an "
               f"{brief.audience} brief. It was allowed explicitly (--allow-low-threshold); "
               "handle this brief with extra care.")
    html = markup.render_template(
        "header.html.j2", meta_json=markup.script_json(meta),
        agency=str(brief.cd.meta.get("agency") or DEFAULT_AGENCY),
        title="Domestic minor sex trafficking: evaluation brief",
        subtitle=f"{brief.scope}, {m(brief.ps)} to {m(brief.pe)}",
        facts=facts, low_threshold=low, banner=banner(brief), toc=toc(brief),
        house_css=plots.css_variables() + plots.table_css("table.dmst-table"),
        print_css=print_css(brief))
    return Section(None, html)


def _minimum(brief) -> int:
    from dmst_eval.briefs.params import MIN_THRESHOLDS

    return MIN_THRESHOLDS[brief.audience]
