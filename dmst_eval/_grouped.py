"""Per-group reductions on integer group codes (shared by the frame builders)."""
from __future__ import annotations

import numpy as np


def first_datetime(codes: np.ndarray, dates: np.ndarray, n: int) -> np.ndarray:
    """Earliest date per group ``0..n-1``, NaT where a group has no (non-missing) date.

    What ``Series(dates).groupby(codes).min().reindex(range(n))`` gives, with one
    ``np.minimum.at`` instead of a groupby.

    Examples
    --------
    >>> d = np.array(["2020-03-01", "NaT", "2020-01-05", "NaT"], dtype="datetime64[ns]")
    >>> first_datetime(np.array([0, 0, 0, 2]), d, 3).astype(str).tolist()
    ['2020-01-05T00:00:00.000000000', 'NaT', 'NaT']
    """
    dates = np.asarray(dates)
    known = ~np.isnat(dates)
    codes, ticks = np.asarray(codes)[known], dates[known].view(np.int64)
    earliest = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(earliest, codes, ticks)
    seen = np.zeros(n, dtype=bool)
    seen[codes] = True
    nat = np.array("NaT", dtype=dates.dtype).view(np.int64)
    return np.where(seen, earliest, nat).view(dates.dtype)
