"""Spatial autocorrelation (esda): global Moran's I, local Moran (LISA), Getis-Ord Gi*."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
import warnings

import numpy as np
import pandas as pd

from dmst_eval.errors import InputError

from ._util import (
    _as_array, _fdr, _gdf_check, _ids, _new_ax, _numpy_global_seed, _OKABE, _seed32, _weights,
)
from .maps import _categorical_explore, _categorical_map
from .rates import smooth_rates

__all__ = [
    'global_moran', 'local_moran', 'local_gi_star', 'GlobalMoranResult', 'LocalMoranResult',
    'GiStarResult',
]


# ---------------------------------------------------------------------------------------------
# 2. spatial autocorrelation (esda)
# ---------------------------------------------------------------------------------------------
@dataclass
class GlobalMoranResult:
    """Global Moran's I (esda): see :func:`global_moran`.

    Attributes
    ----------
    I, EI : float
        Moran's I and its expectation under no spatial autocorrelation, −1/(n−1).
    z : float
        z-score from the permutation distribution (``z_sim``; ``z_norm`` under normality when
        ``permutations=0``).
    p_sim : float
        Pseudo p-value (permutation); ``p_norm`` analytic.
    rate : bool
        True for the Assunção–Reis EB-standardised rate variant (``esda.Moran_Rate``).
    esda : the wrapped esda object.
    """

    I: float
    EI: float
    z: float
    p_sim: float
    p_norm: float
    permutations: int
    rate: bool
    seed: int | None
    esda: Any = field(repr=False, default=None)

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"statistic": "Moran's I" + (" (EB rate)" if self.rate else ""),
                              "I": self.I, "EI": self.EI, "z": self.z, "p_sim": self.p_sim,
                              "p_norm": self.p_norm, "permutations": self.permutations}])

    def plot(self, ax=None):
        """Permutation distribution of I with the observed value marked."""
        from dmst_eval import plots as _plots

        ax = _new_ax(ax, "small")
        sim = getattr(self.esda, "sim", None)
        if sim is not None:
            ax.hist(sim, bins=40, color=_OKABE["sky_blue"], edgecolor="white")
        ax.axvline(self.I, color=_OKABE["vermillion"], lw=2, label=f"observed I = {self.I:.3f}")
        ax.axvline(self.EI, color=_plots.REFERENCE_COLOR, ls="--", lw=1,
                   label="expected under no clustering")
        ax.set_xlabel("Moran's I")
        ax.set_title(f"Global Moran's I (pseudo p = {self.p_sim:.3f})")
        ax.legend()
        return ax


def global_moran(gdf, column=None, weights="queen", permutations: int = 999, seed=None, *,
                 id_col: str | None = None, events=None, population=None,
                 transformation: str = "r") -> GlobalMoranResult:
    """Global Moran's I via ``esda.Moran`` (or ``esda.Moran_Rate`` for rates), reproducibly seeded.

    ``esda.Moran`` permutes with NumPy's legacy global RNG; here the global state is seeded from
    ``seed`` for the call and restored afterwards, so two calls with the same seed give identical
    ``p_sim`` and the caller's own global random stream is untouched.

    Parameters
    ----------
    gdf : GeoDataFrame
        Areas (any boundaries).
    column : str or array-like
        Variable (e.g. a rate). Ignored when ``events`` and ``population`` are given.
    weights : str or libpysal W
        ``"queen"``, ``"rook"``, ``"knn"``, ``"distance"`` (built from ``gdf``) or a W whose ids are
        those of ``id_col``.
    permutations : int
    seed : int, optional
    id_col : str, optional
        Id column (default ``town`` if present, else the index).
    events, population : str or array-like, optional
        Counts and populations: use the Assunção–Reis empirical-Bayes standardised rate
        (``esda.Moran_Rate``), which accounts for the unequal variance of rates of small areas.
    transformation : str
        Weights transformation (``"r"`` row-standardised).

    Returns
    -------
    GlobalMoranResult

    Examples
    --------
    >>> from dmst_eval import geography
    >>> t = geography.towns()
    >>> m = global_moran(t, "land_area_sq_km", permutations=99, seed=1)
    >>> round(m.EI, 4), m.p_sim <= 1
    (-0.006, True)
    """
    from esda.moran import Moran, Moran_Rate

    _gdf_check(gdf)
    g = gdf.reset_index(drop=True)
    w = _weights(g, weights, id_col)
    old = w.transform
    s = _seed32(seed)
    try:
        with _numpy_global_seed(s), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            if events is not None and population is not None:
                e = _as_array(g, events, "events")
                b = _as_array(g, population, "population")
                mo = Moran_Rate(e, b, w, transformation=transformation, permutations=permutations)
                rate = True
            else:
                if column is None:
                    raise InputError("global_moran: give column, or events and population",
                                            table="gdf")
                yv = _as_array(g, column, "column")
                mo = Moran(yv, w, transformation=transformation, permutations=permutations)
                rate = False
    finally:
        w.transform = old
    z = float(mo.z_sim) if permutations else float(mo.z_norm)
    p_sim = float(mo.p_sim) if permutations else float("nan")
    return GlobalMoranResult(I=float(mo.I), EI=float(mo.EI), z=z, p_sim=p_sim,
                             p_norm=float(mo.p_norm), permutations=permutations, rate=rate,
                             seed=seed, esda=mo)


_QUAD = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
def _lisa_colors() -> dict:
    from dmst_eval import plots as _plots

    return {"HH": _OKABE["vermillion"], "HL": _OKABE["orange"], "LH": _OKABE["sky_blue"],
            "LL": _OKABE["blue"], "not significant": _plots.NOT_SIGNIFICANT_COLOR}


@dataclass
class LocalMoranResult:
    """Local Moran's I (LISA): see :func:`local_moran`.

    ``summary``: id, value, Is, quadrant (HH/LH/LL/HL: the area's value and its neighbours'
    average above (H) or below (L) the mean), p_sim, p_fdr (Benjamini–Hochberg), cluster
    (quadrant if p_fdr < alpha, else "not significant").
    """

    summary: pd.DataFrame
    id_col: str
    alpha: float
    gdf: Any = field(repr=False, default=None)
    esda: Any = field(repr=False, default=None)

    def plot(self, ax=None, title: str | None = None):
        """LISA cluster map (Okabe–Ito colours)."""
        g = self.gdf.assign(cluster=self.summary["cluster"].to_numpy())
        return _categorical_map(g, "cluster", _lisa_colors(), ax=ax,
                                title=title or "Local Moran clusters (FDR-adjusted)",
                                legend_title=f"q < {self.alpha}")

    def explore(self, **kw):
        g = self.gdf.assign(cluster=self.summary["cluster"].to_numpy(),
                            p_fdr=self.summary["p_fdr"].round(3).to_numpy())
        return _categorical_explore(g, "cluster", _lisa_colors(), **kw)


def _local_prep(gdf, column, weights, id_col, events, population):
    _gdf_check(gdf)
    g = gdf.reset_index(drop=True)
    ids, id_col2 = _ids(g, id_col)
    w = _weights(g, weights, id_col)
    return g, ids, id_col2 or "id", w


def local_moran(gdf, column=None, weights="queen", permutations: int = 9999, seed=None, *,
                id_col: str | None = None, alpha: float = 0.05, events=None, population=None,
                transformation: str = "r") -> LocalMoranResult:
    """Local Moran's I (LISA) via ``esda.Moran_Local`` with quadrant labels and FDR-adjusted p.

    Conditional-permutation pseudo p-values (seeded; NumPy's global state is restored; 9,999 by
    default so that BH-adjusted p can fall below 0.05 with ~170 areas) are adjusted with
    Benjamini–Hochberg across areas; an area is in a cluster (HH: high surrounded by
    high = hot spot; LL: cold spot; HL / LH: spatial outliers) when its adjusted p < ``alpha``.
    With ``events`` and ``population`` the EB-standardised rate (``esda.Moran_Local_Rate``) is used.

    Examples
    --------
    >>> from dmst_eval import geography
    >>> lm = local_moran(geography.towns(), "land_area_sq_km", permutations=99, seed=1)
    >>> sorted(set(lm.summary.quadrant)) <= ["HH", "HL", "LH", "LL"]
    True
    """
    from esda.moran import Moran_Local, Moran_Local_Rate

    g, ids, idc, w = _local_prep(gdf, column, weights, id_col, events, population)
    s = _seed32(seed)
    old = w.transform
    try:
        with _numpy_global_seed(s), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            if events is not None and population is not None:
                e = _as_array(g, events, "events")
                b = _as_array(g, population, "population")
                lm = Moran_Local_Rate(e, b, w, transformation=transformation,
                                      permutations=permutations, n_jobs=1, seed=s)
                val = e / b
            else:
                val = _as_array(g, column, "column")
                if np.ptp(val) == 0:
                    raise InputError(f"local_moran: {column!r} is constant",
                                            table="gdf", column=str(column),
                                            expected="a variable that varies between areas")
                lm = Moran_Local(val, w, transformation=transformation, permutations=permutations,
                                 n_jobs=1, seed=s)
    finally:
        w.transform = old
    quad = pd.Series(lm.q).map(_QUAD).to_numpy()
    p = np.asarray(lm.p_sim, dtype=float) if permutations else np.full(len(ids), np.nan)
    q = _fdr(p)
    cl = np.where(q < alpha, quad, "not significant")
    summ = pd.DataFrame({idc: ids, "value": val, "Is": lm.Is, "quadrant": quad, "p_sim": p,
                         "p_fdr": q, "cluster": cl})
    return LocalMoranResult(summ, idc, alpha, gdf=g, esda=lm)


def _gi_colors() -> dict:
    from dmst_eval import plots as _plots

    return {"hot spot": _OKABE["vermillion"], "cold spot": _OKABE["blue"],
            "not significant": _plots.NOT_SIGNIFICANT_COLOR}


@dataclass
class GiStarResult:
    """Getis–Ord Gi* hot/cold spots: see :func:`local_gi_star`.

    ``summary``: id, value, z (Gi* z-score), p_sim (one-sided conditional-permutation pseudo p),
    p_norm (one-sided, normal approximation), p_fdr (BH-adjusted ``p_sim`` or ``p_norm``), spot
    ("hot spot" / "cold spot" / "not significant").
    """

    summary: pd.DataFrame
    id_col: str
    alpha: float
    gdf: Any = field(repr=False, default=None)
    esda: Any = field(repr=False, default=None)

    @property
    def hot_spots(self) -> list:
        return self.summary.loc[self.summary["spot"] == "hot spot", self.id_col].tolist()

    def plot(self, ax=None, title: str | None = None):
        g = self.gdf.assign(spot=self.summary["spot"].to_numpy())
        return _categorical_map(g, "spot", _gi_colors(), ax=ax,
                                title=title or "Getis–Ord Gi* hot and cold spots (FDR-adjusted)",
                                legend_title=f"q < {self.alpha}")

    def explore(self, **kw):
        g = self.gdf.assign(spot=self.summary["spot"].to_numpy(),
                            z=self.summary["z"].round(2).to_numpy())
        return _categorical_explore(g, "spot", _gi_colors(), **kw)


def local_gi_star(gdf, column=None, weights="queen", permutations: int = 9999, seed=None, *,
                  id_col: str | None = None, alpha: float = 0.05, inference: str = "sim",
                  transform: str = "B", events=None, population=None) -> GiStarResult:
    """Getis–Ord Gi* (``esda.G_Local`` with ``star=True``): local hot and cold spots.

    Gi* compares the sum of the variable over an area *and* its neighbours with the statewide
    total. Pseudo p-values come from conditional permutations (seeded; NumPy's global state is
    restored), or the normal approximation (``inference="norm"``); both are one-sided and
    Benjamini–Hochberg adjusted. Spots: adjusted p < ``alpha``, hot when z > 0.

    For rates of rare events give ``events`` and ``population`` (columns or arrays): Gi* is then
    computed on the global empirical-Bayes smoothed rates (:func:`smooth_rates`), as GeoDa
    recommends — crude rates of small towns are so noisy that they swamp any real cluster.
    With 169 areas the BH step needs permutation p-values below 0.05/169 ≈ 0.0003, hence the
    default of 9,999 permutations. ``transform="B"`` (binary weights, self included) is the
    classic Getis–Ord formulation; permutation p-values do not depend on it, esda's analytic
    z-scores do.

    Examples
    --------
    >>> from dmst_eval import geography
    >>> gi = local_gi_star(geography.towns(), "land_area_sq_km", permutations=99, seed=1)
    >>> set(gi.summary.spot) <= {"hot spot", "cold spot", "not significant"}
    True
    """
    from esda.getisord import G_Local

    if inference not in ("sim", "norm"):
        raise InputError("inference must be 'sim' or 'norm'")
    g, ids, idc, w = _local_prep(gdf, column, weights, id_col, None, None)
    if events is not None and population is not None:
        e = _as_array(g, events, "events")
        b = _as_array(g, population, "population")
        tab = pd.DataFrame({"_id": np.arange(len(g)), "events": e, "population": b})
        val = smooth_rates(tab, by="_id", n_sim=1, per=10_000).summary.sort_values(
            "_id")["smoothed_rate"].to_numpy()
    elif column is None:
        raise InputError("local_gi_star: give column, or events and population")
    else:
        val = _as_array(g, column, "column")
    if np.ptp(val) == 0:
        what = "the EB-smoothed rate" if column is None else repr(column)
        warnings.warn(f"local_gi_star: {what} is constant (no variation between areas beyond "
                      "chance); there are no hot or cold spots", stacklevel=2)
        nan = np.full(len(ids), np.nan)
        summ = pd.DataFrame({idc: ids, "value": val, "z": nan, "p_sim": nan, "p_norm": nan,
                             "p_fdr": nan, "spot": "not significant"})
        return GiStarResult(summ, idc, alpha, gdf=g, esda=None)
    s = _seed32(seed)
    old = w.transform
    try:
        with _numpy_global_seed(s), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="Gi\\* requested", category=UserWarning)
            gl = G_Local(val, w, transform=transform, permutations=permutations, star=True,
                         n_jobs=1, seed=s)
    finally:
        w.transform = old
    z = np.asarray(gl.Zs, dtype=float)
    p_sim = np.asarray(gl.p_sim, dtype=float) if permutations else np.full(len(ids), np.nan)
    p_norm = np.asarray(gl.p_norm, dtype=float)
    q = _fdr(p_sim if inference == "sim" else p_norm)
    spot = np.where(q < alpha, np.where(z > 0, "hot spot", "cold spot"), "not significant")
    summ = pd.DataFrame({idc: ids, "value": val, "z": z, "p_sim": p_sim, "p_norm": p_norm,
                         "p_fdr": q, "spot": spot})
    return GiStarResult(summ, idc, alpha, gdf=g, esda=gl)
