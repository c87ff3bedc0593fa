"""Shared constants and small input helpers of the recidivism subpackage."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval.errors import InputError, require_columns, resolve_window

__all__ = ['BASELINE_COVARIATES', 'DAYS_PER_MONTH']


#: Baseline (fixed) covariates that :func:`recurrent_frame` attaches to every row.
BASELINE_COVARIATES = ("male", "substance_use", "prior_runaway", "prior_sexual_abuse",
                       "juvenile_justice", "lgbtq", "age_at_entry")
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


# ============================================================================================
# Small helpers
# ============================================================================================


def _numeric(df: pd.DataFrame, col: str, what: str = "df") -> np.ndarray:
    s = df[col]
    if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
        try:
            s = pd.to_numeric(s)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{what}: column {col!r} must be numeric (0/1 for flags); got dtype {s.dtype}"
            ) from exc
    try:
        arr = s.astype("float64").to_numpy()
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{what}: column {col!r} must be numeric; got dtype {s.dtype}") from exc
    return arr


def _bad_rows(mask: np.ndarray, index: pd.Index, limit: int = 10) -> list:
    """Row positions (0-based) of the first offending rows: never index labels, which may be
    child ids."""
    return np.flatnonzero(mask)[:limit].tolist()


def _bundle_window(cd, tables: dict[str, list[str]], start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Check that ``cd`` has ``tables`` with their columns, and return the study window
    ``[first day, midnight after the last day)`` by the one window rule (whole days, both
    inclusive; :func:`dmst_eval.errors.resolve_window`), defaulting to the bundle's study period."""
    for t, cols in tables.items():
        if not hasattr(cd, t):
            raise InputError(f"cd has no table {t!r}; expected a CaseData bundle")
        require_columns(getattr(cd, t), cols, table=t)
    meta = getattr(cd, "meta", {}) or {}
    return resolve_window(start, end, default_start=meta.get("study_start", "1900-01-01"),
                          default_end=meta.get("study_end", "2262-01-01"))
