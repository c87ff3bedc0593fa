"""Disclosure control: no count below the threshold is shown, or can be worked out.

One table (:mod:`~dmst_eval.disclosure.tables`)
    :func:`suppress` hides small counts and their complements in a single table;
    :func:`format_count` and :func:`count_phrase` show one count; :func:`table_html` renders a
    suppressed table as HTML the audit can check.
A whole batch of briefs (:mod:`~dmst_eval.disclosure.ledger`, ``.suppression``, ``.intervals``)
    A :class:`Ledger` records every count the batch publishes (measure, region, period,
    audience) and how counts relate (regions add up to statewide, years to the period,
    n + complement = of, shares and rates); :func:`plan` hides enough further counts that none
    can be worked out from all the briefs together; :func:`interval_audit` proves it by linear
    programming.
Shares and figures (:mod:`~dmst_eval.disclosure.figures`)
    :func:`share_text` shows a share only when numerator and complement clear the threshold
    (else a band that does); :func:`truncate_at_risk` stops step curves where fewer than
    threshold children remain at risk.
Reading a rendered brief (:mod:`~dmst_eval.disclosure.html_audit`)
    :func:`audit` checks what a reader would see: counts, ids, exact dates.
The report (:mod:`~dmst_eval.disclosure.report`)
    :class:`DisclosureReport`: cells hidden, the narrowest interval, the cost — no hidden value.

See ``docs/disclosure.md`` for the rules in plain words.
"""
from dmst_eval.errors import DisclosureError
from dmst_eval.disclosure.tables import (CHILD_ID_PATTERNS, COUNT_HEADER, COUNT_NOUNS,
                                         DEFAULT_THRESHOLDS, ID_HEADER, NUMERIC_ID_MIN_DIGITS,
                                         SUPPRESSED, count_phrase, default_threshold,
                                         format_count, is_hidden, suppress, table_html)
from dmst_eval.disclosure.tables import _PROSE_COUNT, _DATE_PATTERNS, _fmt_cell  # noqa: F401
from dmst_eval.disclosure.html_audit import AuditReport, audit
from dmst_eval.disclosure.html_audit import _Auditor, _date_strings, _number  # noqa: F401
from dmst_eval.disclosure.ledger import AUDIENCES, CellKey, Ledger, Relation
from dmst_eval.disclosure.intervals import IntervalAuditResult, interval_audit
from dmst_eval.disclosure.suppression import SuppressionPlan, plan
from dmst_eval.disclosure.report import DisclosureReport
from dmst_eval.disclosure.keys import apply_plan, keys_frame, register_table
from dmst_eval.disclosure.figures import (ShareDisplay, at_risk_numbers, bar_heights,
                                          mark_hidden_bars, share_text, truncate_at_risk)

__all__ = [
    "DisclosureError", "SUPPRESSED", "DEFAULT_THRESHOLDS", "CHILD_ID_PATTERNS", "COUNT_HEADER",
    "COUNT_NOUNS", "ID_HEADER", "NUMERIC_ID_MIN_DIGITS", "count_phrase", "default_threshold",
    "format_count", "is_hidden", "suppress", "table_html", "AuditReport", "audit", "AUDIENCES",
    "CellKey", "Ledger", "Relation",
    "IntervalAuditResult", "interval_audit", "SuppressionPlan", "plan", "DisclosureReport",
    "apply_plan", "keys_frame", "register_table",
    "ShareDisplay",
    "at_risk_numbers", "bar_heights", "mark_hidden_bars", "share_text", "truncate_at_risk",
]
