"""Small confidence-interval helpers shared by the analysis modules."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

__all__ = ["wilson_ci"]


def wilson_ci(k: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion ``k / n`` (vectorised).

    Parameters
    ----------
    k, n : int or array-like
        Successes and trials. Where ``n == 0`` the interval is ``(nan, nan)``.
    level : float
        Confidence level (0.95 for a 95% interval).

    Returns
    -------
    (lower, upper) : tuple of float arrays, clipped to [0, 1]

    Examples
    --------
    >>> lo, hi = wilson_ci(5, 20)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.1119, 0.4687)
    >>> lo, hi = wilson_ci(0, 10)
    >>> round(float(lo), 3), round(float(hi), 3)
    (0.0, 0.278)
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = float(stats.norm.ppf(0.5 + level / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return lo, hi
