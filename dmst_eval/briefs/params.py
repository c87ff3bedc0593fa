"""The brief's parameters (the notebook's ``parameters`` cell), validated in one place.

Examples
--------
>>> normalise_region(4), normalise_region("statewide")
('Region 4', 'statewide')
>>> BriefParams(region="Region 2", audience="public").threshold
10
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from dmst_eval import disclosure, schema
from dmst_eval.errors import BriefError

__all__ = ["BriefParams", "normalise_region", "parse_date", "DEFAULT_PERIOD_YEARS",
           "POLICY_DATES", "MIN_THRESHOLDS"]

#: Years in the default reporting period (the comparison period is as long, just before it).
DEFAULT_PERIOD_YEARS = 3
#: Dates of policy changes the brief may name exactly (not individual events).
POLICY_DATES = {
    "2011-10-01": "Public Act 11-180 in force: police must report suspected child trafficking "
                  "to the Careline",
}
#: The lowest suppression threshold a brief accepts without ``allow_low_threshold``.
MIN_THRESHOLDS = dict(disclosure.DEFAULT_THRESHOLDS)

_REGION_RE = re.compile(r"^\s*(?:region\s*)?([1-6])\s*$", re.IGNORECASE)


def normalise_region(region) -> str:
    """``"statewide"`` or ``"Region N"`` from the spellings users type (4, "4", "region 4").

    Examples
    --------
    >>> normalise_region(" region 3 "), normalise_region(None)
    ('Region 3', 'statewide')
    """
    if region is None or str(region).strip().lower() in ("statewide", "state", "all", "ct", ""):
        return "statewide"
    m = _REGION_RE.match(str(region))
    if not m:
        raise BriefError(f'region must be "statewide" or one of {list(schema.REGIONS)}, '
                         f"got {region!r}")
    return f"Region {m[1]}"


def parse_date(x, what: str) -> pd.Timestamp | None:
    """A parameter date (whole day) or None; a clear :class:`BriefError` otherwise.

    >>> parse_date("2020-03-04", "period_start").date(), parse_date(None, "x")
    (datetime.date(2020, 3, 4), None)
    """
    if x is None or (isinstance(x, str) and not x.strip()):
        return None
    try:
        return pd.Timestamp(x).normalize()
    except (ValueError, TypeError):
        raise BriefError(f"{what} must be a date (YYYY-MM-DD), got {x!r}") from None


@dataclass
class BriefParams:
    """The parameters of the brief notebook (its ``parameters`` cell), validated.

    ``data_path`` is a bundle folder; :func:`~dmst_eval.briefs.render` and
    :func:`~dmst_eval.briefs.render_batch` also take a database URL there (with their
    ``mapping=`` argument for the agency's own tables), read in the calling process: the
    notebook itself then receives the path of a private validated copy, never the URL.
    ``suppression_threshold=None`` means 5 for ``audience="internal"`` and 10 for ``"public"``.
    A lower threshold is refused unless ``allow_low_threshold=True``; the brief then says so in
    its header and provenance. Periods default to the last :data:`DEFAULT_PERIOD_YEARS` full
    years of the study window and the same number of years just before (resolved against the
    data in :class:`~dmst_eval.briefs.Brief`).

    Examples
    --------
    >>> BriefParams(audience="internal", suppression_threshold=11).threshold
    11
    >>> BriefParams(suppression_threshold=2)
    Traceback (most recent call last):
    ...
    dmst_eval.errors.BriefError: suppression_threshold 2 is below the minimum of 5 for an internal brief; pass allow_low_threshold=True (--allow-low-threshold) to use it anyway
    """

    data_path: str = "../data/synthetic"
    region: str = "statewide"
    period_start: str | None = None
    period_end: str | None = None
    comparison_start: str | None = None
    comparison_end: str | None = None
    audience: str = "internal"
    suppression_threshold: int | None = None
    figures_dir: str | None = "../figures"
    allow_low_threshold: bool = False
    #: the RBA scorecard's baseline (whole calendar years of these dates); default: the
    #: comparison period
    rba_baseline_start: str | None = None
    rba_baseline_end: str | None = None

    def __post_init__(self):
        self.region = normalise_region(self.region)
        if self.audience not in disclosure.DEFAULT_THRESHOLDS:
            raise BriefError(f'audience must be "internal" or "public", got {self.audience!r}')
        self.allow_low_threshold = bool(self.allow_low_threshold)
        if self.suppression_threshold is not None:
            t = self.suppression_threshold
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
                raise BriefError(f"suppression_threshold must be a whole number >= 1, got {t!r}")
            self.suppression_threshold = int(t)
            floor = MIN_THRESHOLDS[self.audience]
            if t < floor and not self.allow_low_threshold:
                if self.audience == "public":
                    raise BriefError(f"a public brief needs suppression_threshold >= {floor}, "
                                     f"got {t}; pass allow_low_threshold=True "
                                     "(--allow-low-threshold) to use it anyway")
                raise BriefError(f"suppression_threshold {t} is below the minimum of {floor} for "
                                 f"an {self.audience} brief; pass allow_low_threshold=True "
                                 "(--allow-low-threshold) to use it anyway")
        for k in ("period_start", "period_end", "comparison_start", "comparison_end",
                  "rba_baseline_start", "rba_baseline_end"):
            v = parse_date(getattr(self, k), k)
            setattr(self, k, None if v is None else v.strftime("%Y-%m-%d"))

    @property
    def threshold(self) -> int:
        return int(self.suppression_threshold
                   or disclosure.default_threshold(self.audience))

    @property
    def low_threshold(self) -> bool:
        """True when the threshold is below the audience's minimum (allowed explicitly)."""
        return self.threshold < MIN_THRESHOLDS[self.audience]

    @property
    def slug(self) -> str:
        r = "statewide" if self.region == "statewide" else self.region.lower().replace(" ", "")
        return f"brief_{r}_{self.audience}"

    def as_dict(self) -> dict:
        return asdict(self)
