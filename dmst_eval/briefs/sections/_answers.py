"""The five questions' computations for a brief (memoised) and the wording rules of the key
findings and the question sections.

Wording rules (each is tested in ``tests/test_brief_answers.py``)
----------------------------------------------------------------
1. **Risk finding.** Name the factor with the *largest odds ratio above 1 whose interval
   excludes 1*; if there is none, say that no single factor stands out. Always say that these
   are odds of being **identified** as a victim (who comes to the agency's attention), not of
   being victimized. Protective-looking factors (OR < 1) are never the headline.
2. **No clear difference.** A difference whose interval spans 0 (a ratio whose interval spans 1)
   reads "no clear difference" (or "no clear change"), with the estimate and interval given
   after; it is never presented as a direction.
3. **No signed zero.** Numbers are rounded for display by :func:`num`, which never shows "-0"
   or "−0" (a value that rounds to zero is "0"); an interval bound that is not zero but would
   round to zero gets more digits (:func:`interval`: "-29 to -0.4", not "-29 to 0", which would
   suggest the interval reaches zero).
4. **Percentages carry n, denominator and interval**: :func:`share` writes
   "14 of 37 (38%; 95% CI 24% to 54%)"; when a count is below the brief's threshold the
   percentage is left out (it would reveal the count) and the count is phrased "fewer than k".
5. **Every number states its period**: each answer sentence begins with its period
   ("In January 2023 to December 2025, …") or names it; numbers from another window (the
   cumulative incidence cohort, study-to-date facility figures, a hazard ratio estimated over
   a longer window) name theirs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["answers", "study_to_date", "num", "interval", "pct", "share", "planned_share",
           "cells_label", "ratio_phrase",
           "difference_phrase", "risk_finding", "period_of"]

#: What an odds ratio of the risk model means, in the words every risk finding uses.
IDENTIFICATION_CAVEAT = ("these are odds of being identified as a victim — of coming to the "
                         "agency's attention — not of being victimized")


def _memo(brief, key, compute):
    if key not in brief.cache:
        brief.cache[key] = compute()
    return brief.cache[key]


def _shared_selections(brief):
    """The confirmed-episode selections the brief's tracking answers share (made once per
    brief: :class:`dmst_eval.tracking._Shared`)."""
    def compute():
        from dmst_eval import tracking

        return tracking._Shared(brief.cd)
    return _memo(brief, "tracking_shared", compute)


def answers(brief):
    """:func:`dmst_eval.tracking.answers` for the brief's period, scope and comparison."""
    def compute():
        from dmst_eval import tracking

        return tracking.answers(brief.cd, brief.period[0], brief.period[1],
                                region=brief.region_arg, comparison=brief.comparison,
                                _shared=_shared_selections(brief))
    return _memo(brief, "answers_period", compute)


def study_to_date(brief):
    """Congregate-care answer from the start of the data to the end of the period (context
    when the period alone is too short to show a pattern)."""
    def compute():
        from dmst_eval import tracking

        return tracking.facilities_answer(brief.cd, brief.study[0], brief.period[1],
                                          region=brief.region_arg,
                                          _shared=_shared_selections(brief))
    return _memo(brief, "facilities_study_to_date", compute)


def period_of(lo, hi_inclusive) -> str:
    """"January 2023 to December 2025" for a window given by its first and last day."""
    return f"{pd.Timestamp(lo).strftime('%B %Y')} to {pd.Timestamp(hi_inclusive).strftime('%B %Y')}"


# -- numbers ----------------------------------------------------------------------------------
def num(x: float, digits: int = 0) -> str:
    """``x`` rounded for prose and tables, never with a signed zero.

    >>> num(-0.4), num(-0.04, 1), num(-1.6), num(2.25, 1), num(float("nan"))
    ('0', '0.0', '-2', '2.2', 'not available')
    """
    if x is None or not np.isfinite(x):
        return "not available"
    s = f"{x:.{digits}f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s


def pct(x: float, digits: int = 0) -> str:
    """A share as a percentage (no signed zero).

    >>> pct(0.3865), pct(-0.001)
    ('39%', '0%')
    """
    if x is None or not np.isfinite(x):
        return "not available"
    return num(100 * x, digits) + "%"


def interval(lo: float, hi: float, digits: int = 0, as_pct: bool = False,
             level: float = 0.95) -> str:
    """"95% CI 24% to 54%" (no signed zero; "to", never a dash that reads as minus).

    >>> interval(-0.29, -0.004, as_pct=True)
    '95% CI -29% to -0.4%'
    >>> interval(-29.1, 0.0)
    '95% CI -29 to 0'
    """
    def f(v):
        return pct(v, _digits(100 * v, digits)) if as_pct else num(v, _digits(v, digits))

    return f"{level:.0%} CI {f(lo)} to {f(hi)}"


def _digits(v, digits: int) -> int:
    """``digits``, or up to two more when a non-zero ``v`` would otherwise round to 0."""
    d = digits
    while d < digits + 2 and v is not None and np.isfinite(v) and v != 0 \
            and float(num(v, d)) == 0:
        d += 1
    return d


def share(brief, k: int, n: int, lo: float, hi: float, what: str = "") -> str:
    """A percentage with its numerator, denominator and Wilson interval, or — when a count is
    below the brief's threshold — the counts phrased safely and no percentage.

    >>> class B: threshold = 5
    >>> B.count = staticmethod(lambda n: "fewer than 5" if 0 < n < 5 else f"{n:,}")
    >>> share(B, 14, 37, 0.24, 0.54)
    '14 of 37 (38%; 95% CI 24% to 54%)'
    >>> share(B, 3, 37, 0.02, 0.2)
    'fewer than 5 of 37'
    """
    k, n = int(k), int(n)
    t = brief.threshold
    if n == 0:
        return "none (no cases in the period)"
    if 0 < k < t or 0 < n - k < t or n < t:
        return f"{brief.count(k)} of {brief.count(n)}"
    return f"{k:,} of {n:,}{' ' + what if what else ''} ({pct(k / n)}; {interval(lo, hi, as_pct=True)})"


def ratio_phrase(rr: float, lo: float, hi: float, what: str = "rate ratio") -> str:
    """Rule 2 for ratios: an interval spanning 1 reads "no clear change".

    >>> ratio_phrase(1.31, 0.79, 2.2)
    'no clear change (rate ratio 1.31, 95% CI 0.79 to 2.20)'
    >>> ratio_phrase(2.5, 1.2, 5.0)
    'higher (rate ratio 2.50, 95% CI 1.20 to 5.00)'
    """
    if not (np.isfinite(rr) and np.isfinite(lo) and np.isfinite(hi)):
        return "not estimable"
    word = "no clear change" if lo <= 1 <= hi else ("higher" if rr > 1 else "lower")
    return f"{word} ({what} {num(rr, 2)}, {interval(lo, hi, 2)})"


def difference_phrase(est: float, lo: float, hi: float, unit: str = "percentage points",
                      digits: int = 0) -> str:
    """Rule 2 for differences: an interval spanning 0 reads "no clear difference".

    A unit ending in "s" reads in the singular for a difference shown as 1 ("1 percentage
    point").

    >>> difference_phrase(-0.6, -27.2, 25.1)
    'no clear difference (-1 percentage point, 95% CI -27 to 25)'
    >>> difference_phrase(2.4, -7.4, 11.7)
    'no clear difference (2 percentage points, 95% CI -7 to 12)'
    >>> difference_phrase(-5.2, -10.1, -0.3)
    '5 percentage points lower (95% CI -10 to -0.3)'
    """
    def per(shown: str) -> str:
        one = shown.lstrip("-") == "1" and unit.endswith("s")
        return f"{shown} {unit[:-1] if one else unit}"

    if lo <= 0 <= hi:
        return f"no clear difference ({per(num(est, digits))}, {interval(lo, hi, digits)})"
    size = num(abs(est), _digits(est, digits))
    return f"{per(size)} {'lower' if est < 0 else 'higher'} ({interval(lo, hi, digits)})"


def risk_finding(odds_ratios: pd.DataFrame, prose, where: str = "") -> str:
    """Rule 1: the factor with the largest odds ratio above 1 whose interval excludes 1.

    ``odds_ratios`` has columns term, odds_ratio, ci_lower, ci_upper; ``prose(term)`` names a
    factor as the subject of a sentence.

    >>> orr = pd.DataFrame({"term": ["male", "awol_before", "lgbtq"],
    ...                     "odds_ratio": [0.04, 7.2, 9.0], "ci_lower": [0.01, 4.0, 0.8],
    ...                     "ci_upper": [0.2, 13.0, 90.0]})
    >>> risk_finding(orr, str)[:60]
    'Among child-welfare-involved children, awol_before had the l'
    """
    o = odds_ratios[~odds_ratios["term"].isin(["intercept", "Intercept"])]
    o = o[(o["odds_ratio"].astype(float) > 1) & (o["ci_lower"].astype(float) > 1)]
    if o.empty:
        return (f"Among child-welfare-involved children{where}, no single factor stands out: no "
                f"odds ratio above 1 has an interval that excludes 1 ({IDENTIFICATION_CAVEAT}).")
    top = o.loc[o["odds_ratio"].astype(float).idxmax()]
    return (f"Among child-welfare-involved children{where}, {prose(top['term'])} had the "
            f"largest association with being identified as a victim: odds "
            f"{num(top['odds_ratio'], 1)} times as high ({interval(top['ci_lower'], top['ci_upper'], 1)}), "
            f"other factors held equal; {IDENTIFICATION_CAVEAT}.")


def planned_share(brief, k: int, n: int, lo: float, hi: float, key_k, key_n,
                  what: str = "") -> str:
    """:func:`share` under the batch disclosure plan: each count is shown as the plan says
    (``brief.count(…, key=…)``), and the percentage with its interval only when the plan shows
    both counts — the plan's audit then guarantees that the complement ``n − k`` cannot be
    narrowed below the threshold either, so the share reveals nothing the counts do not
    (issue 14, point 4). The keys must be registered with their complement
    (:meth:`~dmst_eval.disclosure.Ledger.add_share`) in the section's ``cells()``."""
    k, n = int(k), int(n)
    if n == 0:
        return "none (no cases in the period)"
    if not (brief.shown(key_k) and brief.shown(key_n)):
        return f"{brief.count(k, key=key_k)} of {brief.count(n, key=key_n)}"
    return f"{k:,} of {n:,}{' ' + what if what else ''} ({pct(k / n)}; {interval(lo, hi, as_pct=True)})"


def cells_label(lo, hi_inclusive) -> str:
    """The ledger's period label of a window given by its first and last day (as
    :meth:`Brief.window_label <dmst_eval.briefs.Brief.window_label>`): ``"2008-2025"`` for
    whole calendar years, else the two dates."""
    s, e = pd.Timestamp(lo), pd.Timestamp(hi_inclusive)
    if (s.month, s.day, e.month, e.day) == (1, 1, 12, 31):
        return f"{s.year}-{e.year}"
    return f"{s.strftime('%Y-%m-%d')}..{e.strftime('%Y-%m-%d')}"
