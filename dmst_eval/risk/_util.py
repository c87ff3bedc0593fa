"""Shared helpers of the risk subpackage."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import schema

__all__ = [
    'SeparationWarning', 'COVARIATES', 'WISER_LIKE_WEIGHTS',
    'WISER_LIKE_CUTOFF', 'WISER_PUBLISHED',
]


#: Covariate names of the analysis frame (shared with the generator's ``truth["risk"]``).
COVARIATES: tuple[str, ...] = (
    "male", "age_at_start", "prior_sexual_abuse", "prior_runaway", "substance_use",
    "juvenile_justice", "lgbtq", "congregate_before", "awol_before",
)

#: Points of the WISER-like rule (the five WISER items a placement extract supports).
WISER_LIKE_WEIGHTS: dict[str, float] = {
    "runaway_past_year_under15": 40,
    "runaway_past_year_15plus": 16,
    "first_placement_congregate": 14,
    "first_placement_age15plus": 11,
    "residential_facility": 7,
}
#: Cut-off of the WISER-like rule: a score at or above it flags the child.
WISER_LIKE_CUTOFF: float = 20
#: Published validation of the full WISER tool (Prakash et al., J Womens Health 2024,
#: doi:10.1089/jwh.2024.0415): Florida child-welfare girls removed from home, 60 cases and
#: 3,857 controls, Cox model, ten items, cut-off 20.
WISER_PUBLISHED: dict[str, Any] = {
    "share_of_cases_above_cutoff": 0.92,
    "auc_validation": 0.923,
    "cases": 60,
    "controls": 3857,
    "population": "female child-welfare-involved youth removed from home (Florida)",
}

_Z95 = float(stats.norm.ppf(0.975))


class SeparationWarning(UserWarning):
    """Maximum-likelihood logistic regression met (quasi-)complete separation."""


# ============================================================================================
# 1. Analysis frame
# ============================================================================================
def _cd_table(cd: Any, name: str) -> pd.DataFrame:
    tables = getattr(cd, "tables", None)
    if isinstance(tables, Mapping) and name in tables:
        return tables[name]
    t = getattr(cd, name, None)
    if t is None:
        return schema.empty_frame(name)
    return t


def _flag(s: pd.Series) -> pd.Series:
    """Nullable 0/1 float (NaN = unknown) from a boolean-like column."""
    if isinstance(s.dtype, pd.BooleanDtype):  # the same numbers without two conversions
        return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index, name=s.name)
    return s.astype("boolean").astype("Float64").astype(float)


def _dates(s: pd.Series) -> np.ndarray:
    """``pd.to_datetime(s).to_numpy()``; a column that already holds nanosecond datetimes is used
    as it is (``to_datetime`` would still look at every value)."""
    if s.dtype == "datetime64[ns]":
        return s.to_numpy()
    return pd.to_datetime(s).to_numpy()


def _str_codes(s: pd.Series, values: Sequence) -> np.ndarray:
    """Position in ``values`` of each element of ``s.astype(str)`` (-1 if absent); for a
    categorical column only its categories are converted."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = pd.Index(np.append(np.asarray(s.cat.categories.astype(str), dtype=object),
                                  "nan"))  # code -1 (missing) is str(nan) = "nan"
        return pd.Index(list(values)).get_indexer(cats)[s.cat.codes.to_numpy()]
    return pd.Index(list(values)).get_indexer(s.astype(str))
