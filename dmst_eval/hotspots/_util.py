"""Shared helpers of the hotspots subpackage (input checks, weights, seeds, plot style)."""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd

from dmst_eval.errors import InputError


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def _style():
    try:
        from dmst_eval import plots

        plots.apply_style()
        return plots
    except Exception:  # pragma: no cover - plots module missing
        return None


def _const(name: str, default):
    try:
        from dmst_eval import plots

        return getattr(plots, name, default)
    except Exception:  # pragma: no cover
        return default


class _PlotsColours(dict):
    """The house palette, read from :mod:`dmst_eval.plots` on first use (so that importing the
    analysis modules does not import matplotlib)."""

    def __init__(self, source: str):
        super().__init__()
        self._source = source

    def _load(self):
        if not dict.__len__(self):
            from dmst_eval import plots

            self.update(getattr(plots, self._source)() if callable(getattr(plots, self._source))
                        else getattr(plots, self._source))

    def __getitem__(self, key):
        self._load()
        return dict.__getitem__(self, key)


#: Okabe-Ito colours by name: ``plots.OKABE_ITO``.
_OKABE = _PlotsColours("OKABE_ITO")


def _new_ax(ax, size="map"):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _style()
    figsize = _const("FIGSIZE", {}).get(size, (7.5, 5.5))
    _, ax = plt.subplots(figsize=figsize)
    return ax


def _as_array(gdf, x, name: str, table: str = "gdf") -> np.ndarray:
    """Column name of ``gdf`` or array-like → float array aligned with ``gdf``."""
    if isinstance(x, str):
        if x not in gdf.columns:
            raise InputError(
                f"{table}: column {x!r} not found; columns are {list(gdf.columns)}",
                table=table, column=x, expected=f"a column named {x!r}")
        v = pd.to_numeric(gdf[x], errors="coerce").to_numpy(dtype=float)
        label = x
    else:
        v = np.asarray(pd.Series(x).astype(float), dtype=float) if not isinstance(x, np.ndarray) \
            else x.astype(float)
        label = name
        if len(v) != len(gdf):
            raise InputError(
                f"{name}: length {len(v)} does not match the {len(gdf)} areas of {table}",
                table=table, column=name, expected=f"{len(gdf)} values")
    bad = ~np.isfinite(v)
    if bad.any():
        rows = list(np.asarray(gdf.index)[bad][:20])
        raise InputError(
            f"{table}: column {label!r} has {int(bad.sum())} missing or non-numeric value(s) "
            f"at rows {rows}; expected a finite number for every area",
            table=table, column=label, rows=rows, expected="finite numbers")
    return v


def _ids(gdf, id_col):
    if id_col is None:
        id_col = "town" if "town" in gdf.columns else None
    if id_col is None:
        return gdf.index.to_numpy(), None
    if id_col not in gdf.columns:
        raise InputError(f"gdf: id column {id_col!r} not found; columns are "
                                f"{list(gdf.columns)}", table="gdf", column=id_col)
    ids = gdf[id_col].to_numpy()
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        rows = list(pd.unique(ids[dup])[:20])
        raise InputError(f"gdf: id column {id_col!r} has duplicated ids {rows}; "
                                "expected one row per area", table="gdf", column=id_col,
                                rows=rows, expected="unique ids")
    return ids, id_col


def _weights(gdf, weights, id_col):
    """A libpysal W aligned with the rows of ``gdf`` (ids = ``gdf[id_col]`` or positions)."""
    from libpysal import weights as lw

    ids, id_col = _ids(gdf, id_col)
    g = gdf.reset_index(drop=True)
    if isinstance(weights, str):
        from dmst_eval import geography

        if id_col is None:
            g = g.assign(_area_id=np.arange(len(g)))
            id_col = "_area_id"
            ids = np.arange(len(g))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = geography.weights(weights, gdf=g, ids=id_col)
    elif isinstance(weights, lw.W):
        w = weights
        idl = list(ids)
        if set(w.id_order) != set(idl):
            missing = sorted(set(map(str, idl)) - set(map(str, w.id_order)))[:10]
            raise InputError(
                f"weights: ids do not match the areas of gdf (e.g. {missing})", table="weights",
                rows=missing, expected="one weights id per area")
        if list(w.id_order) != idl:
            w = lw.W({i: w.neighbors[i] for i in idl}, {i: w.weights[i] for i in idl},
                     id_order=idl, silence_warnings=True)
    else:
        raise InputError("weights must be 'queen', 'rook', 'knn', 'distance' or a libpysal W",
                                table="weights", expected="str or libpysal.weights.W")
    if w.islands:
        warnings.warn(f"spatial weights: {len(w.islands)} area(s) have no neighbours "
                      f"({list(w.islands)[:5]}); their local statistics are not meaningful",
                      stacklevel=3)
    return w


@contextlib.contextmanager
def _numpy_global_seed(seed):
    """Seed NumPy's legacy global RNG for the duration (esda draws from it), then restore it."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _seed32(seed) -> int:
    """A 31-bit int from any seed (None → fresh entropy), for esda's ``seed=``/global RNG."""
    return int(np.random.default_rng(seed).integers(0, 2**31 - 1))


def _gdf_check(gdf, what="gdf"):
    try:
        import geopandas as gpd
    except ImportError:  # pragma: no cover
        return
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputError(f"{what}: expected a GeoDataFrame (areas with geometry), got "
                                f"{type(gdf).__name__}", table=what, expected="GeoDataFrame")


def _fdr(p) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def _holm(p) -> np.ndarray:
    """Holm's step-down adjusted p-values of finite ``p`` (what statsmodels'
    ``multipletests(p, method="holm")[1]`` returns, without the ``gc.collect()`` it runs, which
    costs a brief a third of a second with a full heap)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    adj = np.minimum(np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1)), 1.0)
    out = np.empty_like(adj)
    out[order] = adj
    return out


def _suppressed(events, suppress_below) -> np.ndarray:
    e = np.asarray(events, dtype=float)
    if suppress_below is None or suppress_below <= 1:
        return np.zeros(len(e), dtype=bool)
    return (e > 0) & (e < suppress_below)
