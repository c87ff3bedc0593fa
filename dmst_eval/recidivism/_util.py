"""Shared constants and small input helpers of the recidivism subpackage."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval.errors import InputError

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
