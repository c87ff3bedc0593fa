"""Geographic hotspots: area rates, smoothing, spatial autocorrelation, scan clusters, facility excess.

The agency wants to know which towns have the highest rates of identified trafficking and which
congregate-care settings have several victims. With the small counts typical of DMST, raw rates
mislead: a town with 300 children and one victim has a higher rate than a city with 20,000
children and 40 victims, purely by chance. Every function here is honest about that:

* :func:`area_rates` gives crude rates with exact (Garwood) Poisson confidence intervals and marks
  counts below a suppression threshold;
* :func:`smooth_rates` shrinks unstable rates towards the state (empirical Bayes, Marshall 1991) or
  neighbourhood (spatial empirical Bayes) mean and says how uncertain each area's *rank* is;
* :func:`global_moran`, :func:`local_moran` and :func:`local_gi_star` wrap ``esda`` (permutation
  inference made reproducible with a seed, without touching the caller's NumPy global state);
* :func:`scan_statistic` is Kulldorff's circular Poisson spatial scan statistic as SaTScan computes
  it, vectorised with NumPy;
* :func:`facility_excess` compares observed victims per congregate facility with the number
  expected from child-days in placement there (exact Poisson p-values, Holm/BH adjustment, funnel
  plot).

All functions accept any GeoDataFrame with an id column (a user's own boundaries), not only the
169 Connecticut towns.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import xlogy

__all__ = [
    "HotspotInputError",
    "area_rates",
    "case_events",
    "victims",
    "smooth_rates",
    "global_moran",
    "local_moran",
    "local_gi_star",
    "scan_statistic",
    "poisson_llr",
    "facility_excess",
    "garwood_ci",
    "AreaRates",
    "SmoothedRates",
    "GlobalMoranResult",
    "LocalMoranResult",
    "GiStarResult",
    "ScanResult",
    "FacilityExcess",
]


class HotspotInputError(ValueError):
    """Bad input to a hotspot analysis: names the table, column, offending rows and expectation."""

    def __init__(self, message: str, table: str | None = None, column: str | None = None,
                 rows: list | None = None, expected: str | None = None):
        super().__init__(message)
        self.table, self.column, self.rows, self.expected = table, column, rows, expected


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


_OKABE = {"orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
          "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}


def _new_ax(ax, size="map"):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _style()
    figsize = _const("FIGSIZE", {}).get(size, (7.5, 5.5))
    _, ax = plt.subplots(figsize=figsize)
    return ax


def garwood_ci(k, conf_level: float = 0.95):
    """Exact (Garwood 1936) confidence interval for a Poisson count ``k``.

    Lower = χ²(α/2; 2k)/2 (0 when k = 0), upper = χ²(1-α/2; 2k+2)/2.

    Examples
    --------
    >>> lo, hi = garwood_ci([0, 5])
    >>> [round(float(x), 3) for x in lo], [round(float(x), 3) for x in hi]
    ([0.0, 1.623], [3.689, 11.668])
    """
    k = np.asarray(k, dtype=float)
    a = 1 - conf_level
    lo = np.where(k > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(k, 1e-300)) / 2, 0.0)
    hi = stats.chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return lo, hi


def _as_array(gdf, x, name: str, table: str = "gdf") -> np.ndarray:
    """Column name of ``gdf`` or array-like → float array aligned with ``gdf``."""
    if isinstance(x, str):
        if x not in gdf.columns:
            raise HotspotInputError(
                f"{table}: column {x!r} not found; columns are {list(gdf.columns)}",
                table=table, column=x, expected=f"a column named {x!r}")
        v = pd.to_numeric(gdf[x], errors="coerce").to_numpy(dtype=float)
        label = x
    else:
        v = np.asarray(pd.Series(x).astype(float), dtype=float) if not isinstance(x, np.ndarray) \
            else x.astype(float)
        label = name
        if len(v) != len(gdf):
            raise HotspotInputError(
                f"{name}: length {len(v)} does not match the {len(gdf)} areas of {table}",
                table=table, column=name, expected=f"{len(gdf)} values")
    bad = ~np.isfinite(v)
    if bad.any():
        rows = list(np.asarray(gdf.index)[bad][:20])
        raise HotspotInputError(
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
        raise HotspotInputError(f"gdf: id column {id_col!r} not found; columns are "
                                f"{list(gdf.columns)}", table="gdf", column=id_col)
    ids = gdf[id_col].to_numpy()
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        rows = list(pd.unique(ids[dup])[:20])
        raise HotspotInputError(f"gdf: id column {id_col!r} has duplicated ids {rows}; "
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
            raise HotspotInputError(
                f"weights: ids do not match the areas of gdf (e.g. {missing})", table="weights",
                rows=missing, expected="one weights id per area")
        if list(w.id_order) != idl:
            w = lw.W({i: w.neighbors[i] for i in idl}, {i: w.weights[i] for i in idl},
                     id_order=idl, silence_warnings=True)
    else:
        raise HotspotInputError("weights must be 'queen', 'rook', 'knn', 'distance' or a libpysal W",
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
        raise HotspotInputError(f"{what}: expected a GeoDataFrame (areas with geometry), got "
                                f"{type(gdf).__name__}", table=what, expected="GeoDataFrame")


def _fdr(p) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


# ---------------------------------------------------------------------------------------------
# 1. rates
# ---------------------------------------------------------------------------------------------
def case_events(cd, start=None, end=None, confirmed_only: bool = True,
                date_col: str = "identified_at"):
    """Exploitation episodes of a CaseData in a window (one row per episode).

    Parameters
    ----------
    cd : CaseData
    start, end : date-like, optional
        Window (inclusive of both days); default the study window in ``cd.meta``.
    confirmed_only : bool
        Keep episodes the agency confirmed as trafficking.
    date_col : str
        Episode date that must fall in the window (``identified_at`` or ``began_at``).

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(seed=1)
    >>> ev = case_events(cd, "2008-01-01", "2011-12-31")
    >>> rates = area_rates(ev, unit="child_id")  # victims (distinct children) by town
    >>> len(rates.summary)
    169
    """
    ep = cd.episodes
    start, end = _window(cd, start, end)
    d = pd.to_datetime(ep[date_col])
    keep = (d >= start) & (d < end + pd.Timedelta(days=1))
    if confirmed_only:
        keep &= ep["confirmed"].fillna(False).astype(bool)
    return ep.loc[keep.to_numpy()].reset_index(drop=True)


def victims(cd, start=None, end=None, place: str = "home_town", confirmed_only: bool = True,
            date_col: str = "identified_at") -> pd.DataFrame:
    """One row per victim (child with ≥ 1 confirmed episode in the window) and the area to count
    them in.

    Parameters
    ----------
    cd : CaseData
    start, end : date-like, optional
        Window (inclusive); default the study window.
    place : {"home_town", "episode_town"}
        ``home_town``: the child's home town (``children.home_town``: where the child lives —
        the usual denominator is the town's child population); ``episode_town``: the town of the
        child's first episode in the window (where exploitation began or was located).
    confirmed_only : bool
    date_col : str
        Episode date that must fall in the window.

    Returns
    -------
    DataFrame with columns child_id, town (never printed in briefs: it identifies children).

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> v = victims(generate(seed=1), "2008-01-01", "2011-12-31")
    >>> rates = area_rates(v)  # victims per 10,000 children by home town
    >>> int(rates.summary["events"].sum()) == v["child_id"].nunique()
    True
    """
    if place not in ("home_town", "episode_town"):
        raise HotspotInputError(f"place must be 'home_town' or 'episode_town', got {place!r}")
    ep = case_events(cd, start, end, confirmed_only=confirmed_only, date_col=date_col)
    ep = ep.sort_values([date_col, "episode_id"], kind="stable").drop_duplicates("child_id")
    if place == "home_town":
        home = cd.children.set_index("child_id")["home_town"]
        town = ep["child_id"].map(home)
    else:
        town = ep["town"]
    return pd.DataFrame({"child_id": ep["child_id"].to_numpy(),
                         "town": town.astype("object").to_numpy()})


def _window(cd, start, end):
    meta = getattr(cd, "meta", None) or {}
    start = pd.Timestamp(start if start is not None else meta.get("study_start", "2008-01-01"))
    if end is None:
        end = meta.get("study_end")
        if end is None:
            ends = [pd.to_datetime(cd.episodes[c]).max() for c in ("identified_at",)
                    if c in cd.episodes]
            end = max([e for e in ends if pd.notna(e)] or [pd.Timestamp.today()])
    return start, pd.Timestamp(end).normalize()


@dataclass
class AreaRates:
    """Crude rates per area: see :func:`area_rates`.

    Attributes
    ----------
    summary : DataFrame
        One row per area: ``<by>``, events, population, rate (per ``per``), ci_lower, ci_upper
        (exact Garwood), suppressed (0 < events < suppress_below).
    gdf : GeoDataFrame or None
        ``summary`` joined to the area geometries (when ``population`` was a GeoDataFrame).
    """

    summary: pd.DataFrame
    by: str
    per: float
    conf_level: float
    suppress_below: int | None
    gdf: Any = None
    total_events: int = 0
    total_population: float = 0.0

    @property
    def overall_rate(self) -> float:
        """Events per ``per`` population over all areas."""
        return self.total_events / self.total_population * self.per

    def plot(self, ax=None, column: str = "rate", scheme: str | None = "fisher_jenks", k: int = 5,
             cmap: str | None = None, title: str | None = None, suppress_below: int | None = -1):
        """Choropleth of crude rates; suppressed areas hatched and labelled in the legend."""
        if self.gdf is None:
            raise HotspotInputError("plot needs geometries: pass a GeoDataFrame as population",
                                    table="population", expected="GeoDataFrame")
        sb = self.suppress_below if suppress_below == -1 else suppress_below
        supp = _suppressed(self.gdf["events"], sb)
        return choropleth(self.gdf, column, ax=ax, scheme=scheme, k=k, cmap=cmap,
                          suppressed=supp, suppress_below=sb,
                          legend_title=f"per {self.per:,.0f}" if column == "rate" else column,
                          title=title or f"Crude rate per {self.per:,.0f}")

    def explore(self, column: str = "rate", **kw):
        """Interactive (folium) map; suppressed areas greyed out, their counts hidden."""
        if self.gdf is None:
            raise HotspotInputError("explore needs geometries: pass a GeoDataFrame as population",
                                    table="population", expected="GeoDataFrame")
        return _explore(self.gdf, column, self.by, self.suppress_below, **kw)


def _suppressed(events, suppress_below) -> np.ndarray:
    e = np.asarray(events, dtype=float)
    if suppress_below is None or suppress_below <= 1:
        return np.zeros(len(e), dtype=bool)
    return (e > 0) & (e < suppress_below)


def area_rates(events, population=None, by: str = "town", per: float = 10_000, *,
               pop_col: str | None = None, unit: str | None = None, conf_level: float = 0.95,
               suppress_below: int | None = 5) -> AreaRates:
    """Counts, denominators and crude rates per area, with exact Poisson (Garwood) CIs.

    Every area of ``population`` appears, including those with no events (count 0).

    Parameters
    ----------
    events : DataFrame
        One row per event (e.g. confirmed episodes) with an area column ``by``.
    population : DataFrame or GeoDataFrame, optional
        One row per area with columns ``by`` and ``pop_col``. Default: the 169 Connecticut towns
        (:func:`dmst_eval.geography.towns`) with their under-18 population.
    by : str
        Area id column (in both frames).
    per : float
        Rates are per this many population (default 10,000).
    pop_col : str, optional
        Denominator column; default ``population_under18`` if present, else ``population``.
    unit : str, optional
        Count distinct values of this column per area (e.g. ``"child_id"`` → victims, each child
        once per area) instead of rows.
    conf_level : float
        Confidence level of the Garwood interval.
    suppress_below : int or None
        Counts 1 … suppress_below-1 are flagged ``suppressed`` (shown hatched on maps; zero counts
        are not suppressed). ``None`` disables.

    Returns
    -------
    AreaRates

    Examples
    --------
    >>> import pandas as pd, geopandas as gpd
    >>> from shapely.geometry import box
    >>> areas = gpd.GeoDataFrame({"area": ["a", "b"], "population": [1000, 50000]},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)])
    >>> ev = pd.DataFrame({"area": ["a", "b", "b"]})
    >>> r = area_rates(ev, areas, by="area")
    >>> r.summary[["area", "events", "rate"]].round(2).values.tolist()
    [['a', 1, 10.0], ['b', 2, 0.4]]
    """
    if population is None:
        from dmst_eval import geography

        population = geography.towns()
    if not isinstance(events, pd.DataFrame):
        raise HotspotInputError("events: expected a DataFrame", table="events")
    for tab, df in (("events", events), ("population", population)):
        if by not in df.columns:
            raise HotspotInputError(f"{tab}: area column {by!r} not found; columns are "
                                    f"{list(df.columns)}", table=tab, column=by,
                                    expected=f"a column {by!r}")
    if pop_col is None:
        pop_col = "population_under18" if "population_under18" in population.columns \
            else "population"
    pop = _as_array(population, pop_col, pop_col, table="population")
    if (pop < 0).any():
        rows = list(population.loc[pop < 0, by][:20])
        raise HotspotInputError(f"population: negative {pop_col!r} for areas {rows}",
                                table="population", column=pop_col, rows=rows,
                                expected="population >= 0")
    ids, _ = _ids(population, by)
    ev_area = events[by].astype("object")
    missing = ev_area.isna()
    if missing.any():
        rows = list(events.index[missing.to_numpy()][:20])
        raise HotspotInputError(f"events: {int(missing.sum())} row(s) have no {by!r} "
                                f"(rows {rows}); expected an area for every event",
                                table="events", column=by, rows=rows, expected="non-missing area")
    known = set(ids.tolist())
    unknown = ~ev_area.isin(known)
    if unknown.any():
        vals = sorted(map(str, pd.unique(ev_area[unknown])))[:20]
        rows = list(events.index[unknown.to_numpy()][:20])
        raise HotspotInputError(
            f"events: {int(unknown.sum())} row(s) have {by!r} values not in population "
            f"({vals}); rows {rows}", table="events", column=by, rows=rows,
            expected=f"{by} values present in population")
    if unit is not None:
        if unit not in events.columns:
            raise HotspotInputError(f"events: unit column {unit!r} not found", table="events",
                                    column=unit)
        counts = events.drop_duplicates([by, unit]).groupby(by, observed=True).size()
    else:
        counts = events.groupby(by, observed=True).size()
    counts.index = counts.index.astype("object")
    y = pd.Series(ids).map(counts).fillna(0).astype(int).to_numpy()
    zero_pop = (pop == 0) & (y > 0)
    if zero_pop.any():
        rows = list(ids[zero_pop][:20])
        raise HotspotInputError(f"population: areas {rows} have events but zero {pop_col!r}",
                                table="population", column=pop_col, rows=rows,
                                expected="population > 0 where there are events")
    lo, hi = garwood_ci(y, conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(pop > 0, per / pop, np.nan)
    summ = pd.DataFrame({by: ids, "events": y, "population": pop, "rate": y * scale,
                         "ci_lower": lo * scale, "ci_upper": hi * scale,
                         "suppressed": _suppressed(y, suppress_below)})
    gdf = None
    if hasattr(population, "geometry") and "geometry" in population.columns:
        import geopandas as gpd

        gdf = gpd.GeoDataFrame(summ.copy(), geometry=population.geometry.to_numpy(),
                               crs=population.crs)
    return AreaRates(summ, by=by, per=per, conf_level=conf_level, suppress_below=suppress_below,
                     gdf=gdf, total_events=int(y.sum()), total_population=float(pop.sum()))


# ---------------------------------------------------------------------------------------------
# smoothing and rank uncertainty
# ---------------------------------------------------------------------------------------------
@dataclass
class SmoothedRates:
    """Empirical-Bayes smoothed rates and rank uncertainty: see :func:`smooth_rates`.

    Attributes
    ----------
    summary : DataFrame
        One row per area, sorted by smoothed rate (highest first): ``<by>``, events, population,
        crude_rate, smoothed_rate, shrinkage (weight on the area's own rate, 0-1), rank_crude,
        rank (by smoothed rate, 1 = highest), rank_lower, rank_upper (central interval of the
        posterior ranks), prob_top (probability of being the highest), prob_top_k.
    prior_mean, prior_var : float or ndarray
        Method-of-moments prior mean and variance of the true rates (per person).
    draws : ndarray (n_sim, n_areas)
        Posterior draws of the rates per ``per`` (columns in the order of the input areas, not
        of ``summary``).
    """

    summary: pd.DataFrame
    by: str
    per: float
    method: str
    prior_mean: Any
    prior_var: Any
    top_k: int
    rank_level: float
    n_sim: int
    gdf: Any = None
    draws: np.ndarray | None = field(default=None, repr=False)
    suppress_below: int | None = 5

    @property
    def top_is_clear(self) -> bool:
        """True when the highest-ranked area is highest in ≥ 95% of posterior draws."""
        return bool(self.summary["prob_top"].iloc[0] >= 0.95)

    def statement(self) -> str:
        """One plain-language sentence on whether the 'top' area is clearly top."""
        r = self.summary.iloc[0]
        lvl = int(round(self.rank_level * 100))
        if np.all(np.asarray(self.prior_var) == 0):
            return (f"No area stands out: the differences between areas' rates are no larger "
                    f"than chance alone would produce, so every smoothed rate equals the overall "
                    f"rate ({r['smoothed_rate']:.1f} per {self.per:,.0f}) and no ranking can be "
                    f"supported.")
        verdict = ("it is clearly the highest" if self.top_is_clear else
                   "so it is NOT clearly the highest: several areas could plausibly be top")
        return (f"{r[self.by]} has the highest smoothed rate ({r['smoothed_rate']:.1f} per "
                f"{self.per:,.0f}); its {lvl}% rank interval is {int(r['rank_lower'])}–"
                f"{int(r['rank_upper'])} and the probability that it truly has the highest rate "
                f"is {r['prob_top']:.2f}, {verdict}.")

    def plot(self, ax=None, kind: str = "ranks", n: int = 20, **kw):
        """``kind="ranks"``: rank intervals of the top ``n`` areas; ``kind="map"``: choropleth."""
        if kind == "map":
            if self.gdf is None:
                raise HotspotInputError("map needs geometries", table="population")
            g = self.gdf.merge(self.summary[[self.by, "smoothed_rate"]], on=self.by)
            return choropleth(g, "smoothed_rate", ax=ax, legend_title=f"per {self.per:,.0f}",
                              title=kw.pop("title", f"Smoothed rate ({self.method})"), **kw)
        ax = _new_ax(ax, "tall")
        s = self.summary.head(n).iloc[::-1]
        yy = np.arange(len(s))
        col = _OKABE["blue"]
        ax.hlines(yy, s["rank_lower"], s["rank_upper"], color=col, lw=2)
        ax.plot(s["rank"], yy, "o", color=col, label="rank of smoothed rate")
        ax.plot(s["rank_crude"], yy, "x", color=_OKABE["vermillion"], label="rank of crude rate")
        ax.set_yticks(yy, s[self.by].astype(str))
        ax.invert_xaxis()
        ax.set_xlabel(f"rank (1 = highest); bars: {int(self.rank_level * 100)}% posterior interval")
        ax.set_title(kw.get("title", "How sure are we of the ranking?"))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2)
        return ax

    def explore(self, **kw):
        if self.gdf is None:
            raise HotspotInputError("explore needs geometries", table="population")
        g = self.gdf.merge(self.summary[[self.by, "smoothed_rate", "rank", "rank_lower",
                                         "rank_upper"]], on=self.by)
        return _explore(g, "smoothed_rate", self.by, None, **kw)


def _binary_neighbours(w, n):
    """Sparse binary neighbour matrix incl. self (CSR)."""
    from scipy import sparse

    m = w.sparse.tocsr().copy()
    m.data[:] = 1.0
    m = m + sparse.identity(n, format="csr")
    m.data[:] = 1.0
    return m


def _rank_order(draws: np.ndarray, rng) -> np.ndarray:
    """Per row of ``draws``, the columns from highest to lowest value, ties broken at random.

    Equal to ``np.lexsort((rng.random(draws.shape), -draws))``: a plain argsort gives the same
    order wherever a row has no ties, so the (5x slower) lexsort with its random tie-breaking
    key is only run on rows that have ties. The tie-breaking numbers are the last draws from
    ``rng`` and are generated only when needed, so they are the same numbers either way.
    """
    neg = -draws
    order = np.argsort(neg, axis=1)
    srt = np.take_along_axis(neg, order, axis=1)
    tied = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    if tied.any():
        tie = rng.random(draws.shape)  # random tie-breaking (areas with degenerate posteriors)
        order[tied] = np.lexsort((tie[tied], neg[tied]))
    return order


def smooth_rates(rates, population=None, *, method: str = "empirical_bayes", by: str = "town",
                 weights="queen", per: float | None = None, n_sim: int = 2000, seed=None,
                 top_k: int = 5, rank_level: float = 0.95, **area_kw) -> SmoothedRates:
    """Empirical-Bayes smoothed rates with rank uncertainty.

    ``method="empirical_bayes"``: Marshall's (1991) global method-of-moments estimator. With
    crude rates r_i = y_i / n_i, m = Σy / Σn, s² = Σ n_i (r_i − m)² / Σn, the prior variance is
    A = max(s² − m / n̄, 0) (n̄ = mean population) and the smoothed rate is
    m + C_i (r_i − m) with C_i = A / (A + m / n_i): small areas are pulled strongly to m.
    ``method="spatial_empirical_bayes"``: the same with m_i, s_i², A_i computed over each area
    and its neighbours (binary ``weights``), as ``esda.smoothing.Spatial_Empirical_Bayes``.

    Rank uncertainty: the moment estimates define a Gamma prior (mean m, variance A); each area's
    posterior is Gamma(m²/A + y_i, m/A + n_i) — its mean is exactly the smoothed rate. ``n_sim``
    joint posterior draws are ranked (1 = highest) to give a central ``rank_level`` interval for
    each area's rank and the probability that it is the highest (``prob_top``) or among the top
    ``top_k``. Where A = 0 (no variation beyond chance) every area's posterior is the prior mean
    and ranks are uniformly uncertain.

    Parameters
    ----------
    rates : AreaRates, DataFrame of events, or DataFrame with columns ``by``, events, population
        An :func:`area_rates` result; or events (then ``population`` is required and
        ``area_kw`` go to :func:`area_rates`); or a per-area table.
    population : DataFrame or GeoDataFrame, optional
        Passed to :func:`area_rates` when ``rates`` are events.
    method : {"empirical_bayes", "spatial_empirical_bayes"}
    by : str
        Area id column.
    weights : str or libpysal W
        Neighbours for the spatial method (needs geometries unless a W is given).
    per : float, optional
        Rates are reported per this many (default: that of ``rates`` or 10,000).
    n_sim : int
        Posterior draws for the rank intervals.
    seed : int, optional
        Seed of the posterior simulation (same seed → same intervals).
    top_k : int
        ``prob_top_k`` = probability of being among the ``top_k`` highest.
    rank_level : float
        Coverage of the rank intervals.

    Returns
    -------
    SmoothedRates

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"town": list("abcd"), "events": [0, 10, 20, 30],
    ...                   "population": [1000] * 4})
    >>> s = smooth_rates(t, per=1000, seed=1)   # m = 0.015, A = 0.00011, C = 0.88
    >>> s.summary.set_index("town")["smoothed_rate"].round(3).sort_index().to_dict()
    {'a': 1.8, 'b': 10.6, 'c': 19.4, 'd': 28.2}
    """
    if method not in ("empirical_bayes", "spatial_empirical_bayes"):
        raise HotspotInputError(f"method must be 'empirical_bayes' or 'spatial_empirical_bayes', "
                                f"got {method!r}", expected="a known method")
    gdf = None
    sb = area_kw.get("suppress_below", 5)
    if isinstance(rates, AreaRates):
        tab, by, gdf = rates.summary, rates.by, rates.gdf
        per = per or rates.per
        sb = rates.suppress_below
    elif population is not None:
        ar = area_rates(rates, population, by=by, per=per or 10_000, **area_kw)
        tab, gdf, per = ar.summary, ar.gdf, ar.per
        sb = ar.suppress_below
    else:
        tab = rates
        miss = {by, "events", "population"} - set(tab.columns)
        if miss:
            raise HotspotInputError(f"rates: missing column(s) {sorted(miss)}", table="rates",
                                    column=sorted(miss)[0],
                                    expected=f"columns {by}, events, population")
        if hasattr(tab, "geometry") and "geometry" in tab.columns:
            gdf = tab
    per = per or 10_000
    ids = tab[by].to_numpy()
    y = _as_array(tab, "events", "events", table="rates")
    n = _as_array(tab, "population", "population", table="rates")
    if (n <= 0).any():
        rows = list(ids[n <= 0][:20])
        raise HotspotInputError(f"rates: areas {rows} have population <= 0; drop them before "
                                "smoothing", table="rates", column="population", rows=rows,
                                expected="population > 0")
    r = y / n
    N = len(y)
    if method == "empirical_bayes":
        m = y.sum() / n.sum()
        s2 = (n * (r - m) ** 2).sum() / n.sum()
        A = max(s2 - m / n.mean(), 0.0)
        m_i, A_i = np.full(N, m), np.full(N, A)
        prior_mean, prior_var = m, A
    else:
        if isinstance(weights, str):
            if gdf is None:
                raise HotspotInputError("spatial_empirical_bayes needs geometries (a GeoDataFrame "
                                        "population) or a libpysal W as weights",
                                        table="rates", expected="GeoDataFrame or W")
            w = _weights(gdf.reset_index(drop=True), weights, by)
        else:
            w = _weights(tab.reset_index(drop=True), weights, by)
        B = _binary_neighbours(w, N)
        ysum, nsum = B @ y, B @ n
        cnt = np.asarray(B.sum(axis=1)).ravel()
        m_i = ysum / nsum
        # Σ_j n_j (r_j − m_i)² = Σ n_j r_j² − 2 m_i Σ n_j r_j + m_i² Σ n_j
        s2_i = (B @ (n * r * r) - 2 * m_i * (B @ (n * r)) + m_i ** 2 * nsum) / nsum
        A_i = np.maximum(s2_i - m_i / (nsum / cnt), 0.0)
        prior_mean, prior_var = m_i, A_i
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.where(A_i > 0, A_i / (A_i + m_i / n), 0.0)
    eb = m_i + C * (r - m_i)
    # posterior draws (Gamma-Poisson); degenerate at m_i where A_i == 0
    rng = np.random.default_rng(seed)
    pos = A_i > 0
    if pos.all():  # the usual case: every column drawn (same stream as filling a tiled m_i)
        # = rng.gamma(shape, scale, size) (which is scale * standard_gamma(shape), drawn in the
        # same order), without its per-element broadcasting of a second parameter
        draws = rng.standard_gamma(m_i ** 2 / A_i + y, size=(n_sim, N)) * (1.0 / (m_i / A_i + n))
    else:
        draws = np.tile(m_i, (n_sim, 1))
        if pos.any():
            shape = m_i[pos] ** 2 / A_i[pos] + y[pos]
            rate_ = m_i[pos] / A_i[pos] + n[pos]
            draws[:, pos] = rng.gamma(shape, 1.0 / rate_, size=(n_sim, int(pos.sum())))
    order = _rank_order(draws, rng)
    # how often each area takes each rank: counts[i, k] = draws in which area i has rank k + 1
    # (one bincount instead of a rank matrix, its quantiles and comparisons)
    counts = np.bincount((order * N + np.arange(N)).ravel(), minlength=N * N).reshape(N, N)
    a = (1 - rank_level) / 2
    # "inverted_cdf" quantiles are order statistics at positions that depend on n_sim only;
    # the rank at position k is the first rank whose cumulative count exceeds k
    k_lo, k_hi = np.quantile(np.arange(n_sim), [a, 1 - a], method="inverted_cdf").astype(int)
    cum = counts.cumsum(axis=1)
    lo = np.argmax(cum > k_lo, axis=1) + 1
    hi = np.argmax(cum > k_hi, axis=1) + 1
    rank_values = np.arange(1, N + 1)
    rank_s = stats.rankdata(-eb, method="min").astype(int)
    rank_c = stats.rankdata(-r, method="min").astype(int)
    summ = pd.DataFrame({by: ids, "events": y.astype(int), "population": n,
                         "crude_rate": r * per, "smoothed_rate": eb * per, "shrinkage": C,
                         "rank_crude": rank_c, "rank": rank_s, "rank_lower": lo.astype(int),
                         "rank_upper": hi.astype(int), "prob_top": counts[:, 0] / n_sim,
                         "prob_top_k": counts[:, rank_values <= top_k].sum(axis=1) / n_sim})
    summ = summ.sort_values(["rank", "rank_crude", by], kind="stable").reset_index(drop=True)
    if gdf is not None:
        gdf = gdf[[by, "geometry"]]
    return SmoothedRates(summ, by=by, per=per, method=method, prior_mean=prior_mean,
                         prior_var=prior_var, top_k=top_k, rank_level=rank_level, n_sim=n_sim,
                         gdf=gdf, draws=draws * per, suppress_below=sb)


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
        ax = _new_ax(ax, "small")
        sim = getattr(self.esda, "sim", None)
        if sim is not None:
            ax.hist(sim, bins=40, color=_OKABE["sky_blue"], edgecolor="white")
        ax.axvline(self.I, color=_OKABE["vermillion"], lw=2, label=f"observed I = {self.I:.3f}")
        ax.axvline(self.EI, color="#555555", ls="--", lw=1, label="expected under no clustering")
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
                    raise HotspotInputError("global_moran: give column, or events and population",
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
_LISA_COLORS = {"HH": _OKABE["vermillion"], "HL": _OKABE["orange"], "LH": _OKABE["sky_blue"],
                "LL": _OKABE["blue"], "not significant": "#E8E8E8"}


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
        return _categorical_map(g, "cluster", _LISA_COLORS, ax=ax,
                                title=title or "Local Moran clusters (FDR-adjusted)",
                                legend_title=f"q < {self.alpha}")

    def explore(self, **kw):
        g = self.gdf.assign(cluster=self.summary["cluster"].to_numpy(),
                            p_fdr=self.summary["p_fdr"].round(3).to_numpy())
        return _categorical_explore(g, "cluster", _LISA_COLORS, **kw)


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
                    raise HotspotInputError(f"local_moran: {column!r} is constant",
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


_GI_COLORS = {"hot spot": _OKABE["vermillion"], "cold spot": _OKABE["blue"],
              "not significant": "#E8E8E8"}


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
        return _categorical_map(g, "spot", _GI_COLORS, ax=ax,
                                title=title or "Getis–Ord Gi* hot and cold spots (FDR-adjusted)",
                                legend_title=f"q < {self.alpha}")

    def explore(self, **kw):
        g = self.gdf.assign(spot=self.summary["spot"].to_numpy(),
                            z=self.summary["z"].round(2).to_numpy())
        return _categorical_explore(g, "spot", _GI_COLORS, **kw)


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
        raise HotspotInputError("inference must be 'sim' or 'norm'")
    g, ids, idc, w = _local_prep(gdf, column, weights, id_col, None, None)
    if events is not None and population is not None:
        e = _as_array(g, events, "events")
        b = _as_array(g, population, "population")
        tab = pd.DataFrame({"_id": np.arange(len(g)), "events": e, "population": b})
        val = smooth_rates(tab, by="_id", n_sim=1, per=10_000).summary.sort_values(
            "_id")["smoothed_rate"].to_numpy()
    elif column is None:
        raise HotspotInputError("local_gi_star: give column, or events and population")
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


# ---------------------------------------------------------------------------------------------
# 3. Kulldorff's circular Poisson scan statistic
# ---------------------------------------------------------------------------------------------
def poisson_llr(cases, expected, total_cases):
    """Kulldorff's Poisson log-likelihood ratio for high-rate windows (0 when cases ≤ expected).

    LLR = c ln(c/E) + (C − c) ln((C − c)/(C − E)) for c > E, conditional on the total C.

    Examples
    --------
    SaTScan's New York leukaemia example (552 cases, population 1,057,673):

    >>> E = 552 * 95249 / 1057673
    >>> round(E, 2), round(float(poisson_llr(85, E, 552)), 6)
    (49.71, 11.577255)
    """
    c = np.asarray(cases, dtype=float)
    E = np.asarray(expected, dtype=float)
    C = float(total_cases)
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = xlogy(c, c / E) + xlogy(C - c, (C - c) / (C - E))
    return np.where(c > E, llr, 0.0)


def _centroid_distances(gdf):
    """Pairwise distances between area centroids: great-circle (km) for geographic CRSs, else
    planar in CRS units."""
    geo = gdf.geometry
    crs = gdf.crs
    if crs is not None and crs.is_geographic:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cen = geo.to_crs("EPSG:6933").centroid.to_crs(crs)
        lon, lat = np.radians(cen.x.to_numpy()), np.radians(cen.y.to_numpy())
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * \
            np.sin(dlon / 2) ** 2
        return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cen = geo.centroid
    x, y = cen.x.to_numpy(), cen.y.to_numpy()
    return np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])


def _llr_lookup(cnt, bw, aw, T):
    """LLR from the table T[c] = c ln c + (C-c) ln(C-c): T[c] - c*b_w + a_w (any c)."""
    return T[cnt] - cnt * bw + aw


def _min_cases(E, bw, aw, T, C, L, valid):
    """Smallest integer c > E_w with LLR_w(c) >= L (C + 1 if none or window invalid).

    The high-rate LLR increases with c, so a vectorised integer bisection finds it.
    """
    lo = np.floor(E).astype(np.int64) + 1          # first high-rate count
    hi = np.full(E.shape, C + 1, dtype=np.int64)   # sentinel: never reached
    lo = np.minimum(lo, C + 1)
    # invariant: answer in [lo, hi]; LLR(hi) >= L or hi == C + 1
    for _ in range(int(np.ceil(np.log2(C + 2))) + 1):
        act = lo < hi
        if not act.any():
            break
        mid = (lo + hi) // 2
        midc = np.minimum(mid, C)
        ok = _llr_lookup(midc, bw, aw, T) >= L
        hi = np.where(act & ok, mid, hi)
        lo = np.where(act & ~ok, mid + 1, lo)
    out = np.where(valid, lo, C + 1)
    return out


def _scan_null_max(sims, order, valid, E, bw, aw, T, C, chunk=256, k0=12):
    """Maximum high-rate LLR over all windows for each simulated data set (exact).

    Two passes keep it fast without approximation: (A) the exact maximum over the ``k0``
    smallest windows of every centre gives a lower bound L_r for each replicate; (B) a window can
    only beat min_r L_r if its count reaches the precomputed integer threshold c*_w, so for all
    windows only cumulative counts and an integer comparison are needed; the exact LLR is computed
    for the few windows that reach their threshold.
    """
    n_sim, n = sims.shape
    K = order.shape[1]
    dt = np.int16 if C < 32_000 else np.int32
    simsT = np.ascontiguousarray(sims.T.astype(dt))  # (n, n_sim)
    k0 = min(k0, K)
    # pass A: small windows of all centres, all replicates
    low = np.zeros(n_sim)
    Ek, bk, ak, vk = E[:, :k0, None], bw[:, :k0, None], aw[:, :k0, None], valid[:, :k0, None]
    for j0 in range(0, n_sim, chunk):
        blk = simsT[:, j0:j0 + chunk]
        cum = np.cumsum(blk[order[:, :k0]], axis=1, dtype=np.int64)  # (n, k0, R)
        val = _llr_lookup(cum, bk, ak, T)
        val[(cum <= Ek) | ~vk] = 0.0
        low[j0:j0 + chunk] = val.max(axis=(0, 1))
    L = float(low.min()) * (1 - 1e-9) - 1e-9
    if L <= 0:
        cstar = np.where(valid, np.minimum(np.floor(E) + 1, C + 1), C + 1).astype(dt)
    else:
        cstar = _min_cases(E, bw, aw, T, C, L, valid).astype(dt)
    best = low.copy()
    # pass B: grow all circles together, one neighbour rank at a time (SIMD-friendly adds)
    Kv = np.flatnonzero(valid.any(axis=0))
    kmax = int(Kv[-1]) + 1 if len(Kv) else 0
    orderT = np.ascontiguousarray(order[:, :kmax].T)   # (k, n): rank k neighbour of each centre
    cstarT = np.ascontiguousarray(cstar[:, :kmax].T)
    for j0 in range(0, n_sim, chunk):
        blk = np.ascontiguousarray(simsT[:, j0:j0 + chunk])
        R = blk.shape[1]
        bb = best[j0:j0 + R]
        acc = np.zeros((n, R), dtype=dt)
        hit = np.empty((n, R), dtype=bool)
        for k in range(kmax):
            acc += blk[orderT[k]]
            if k < k0:
                continue
            np.greater_equal(acc, cstarT[k][:, None], out=hit)
            rows = np.flatnonzero(hit.any(axis=1))
            if len(rows) == 0:
                continue
            ii, rr = np.nonzero(hit[rows])
            ii = rows[ii]
            cv = acc[ii, rr].astype(np.int64)
            val = _llr_lookup(cv, bw[ii, k], aw[ii, k], T)
            np.maximum.at(bb, rr, val)
    return best



@dataclass
class ScanResult:
    """Kulldorff circular Poisson scan: see :func:`scan_statistic`.

    Attributes
    ----------
    clusters : DataFrame
        Most likely cluster first, then secondary clusters that share no area with earlier ones:
        cluster, areas (list of ids), cases, expected, relative_risk (SaTScan's: risk inside /
        risk outside), llr, p_value, n_areas, population, centre, obs_exp.
    sim_llr : ndarray
        Maximum LLR of each Monte Carlo replicate.
    """

    clusters: pd.DataFrame
    sim_llr: np.ndarray
    total_cases: int
    total_population: float
    n_sim: int
    max_pop_share: float
    id_col: str
    gdf: Any = field(repr=False, default=None)
    cases: np.ndarray | None = field(repr=False, default=None)
    population: np.ndarray | None = field(repr=False, default=None)

    @property
    def summary(self) -> pd.DataFrame:
        s = self.clusters.copy()
        s["areas"] = s["areas"].map(lambda a: ", ".join(map(str, a)))
        return s

    def table(self, suppress_below: int | None = 5, max_p: float = 1.0) -> pd.DataFrame:
        """Presentation table: clusters with p ≤ ``max_p``; counts 1..suppress_below-1 shown as
        "<k" and the ratios that would reveal them hidden (disclosure control)."""
        c = self.clusters[self.clusters["p_value"] <= max_p]
        out = pd.DataFrame({"cluster": c["cluster"], "centre": c["centre"],
                            "n_areas": c["n_areas"], "cases": c["cases"].astype(object),
                            "expected": c["expected"].round(1),
                            "relative_risk": c["relative_risk"].round(2).astype(object),
                            "llr": c["llr"].round(2), "p_value": c["p_value"].round(3)})
        if suppress_below and suppress_below > 1:
            small = (c["cases"] > 0) & (c["cases"] < suppress_below)
            out.loc[small, "cases"] = f"<{suppress_below}"
            out.loc[small, "relative_risk"] = "suppressed"
        return out.reset_index(drop=True)

    def significant(self, alpha: float = 0.05) -> pd.DataFrame:
        return self.clusters[self.clusters["p_value"] < alpha]

    def plot(self, ax=None, alpha: float = 0.05, title: str | None = None, max_clusters: int = 5,
             show_rates: bool = True, per: float = 10_000, suppress_below: int | None = 5):
        """Map: crude rates (suppressed areas hatched) with clusters outlined and numbered.

        Clusters with p < ``alpha`` get a solid black outline, others a dashed grey one.
        """
        g = self.gdf.copy()
        if show_rates:
            g["rate"] = np.where(self.population > 0, self.cases / np.where(
                self.population > 0, self.population, 1) * per, np.nan)
            g["events"] = self.cases
            ax = choropleth(g, "rate", ax=ax, suppressed=_suppressed(self.cases, suppress_below),
                            suppress_below=suppress_below, legend_title=f"per {per:,.0f}",
                            title=title or "Spatial scan clusters (Kulldorff, Poisson)")
        else:
            ax = _new_ax(ax)
            g.plot(ax=ax, color="#F2F2F2", edgecolor="white", linewidth=0.3)
            ax.set_axis_off()
            ax.set_title(title or "Spatial scan clusters (Kulldorff, Poisson)")
        ids = g[self.id_col].to_numpy() if self.id_col in g.columns else np.arange(len(g))
        for _, row in self.clusters.head(max_clusters).iterrows():
            sub = g[np.isin(ids, row["areas"])]
            shape = sub.dissolve()
            sig = row["p_value"] < alpha
            shape.boundary.plot(ax=ax, color="black" if sig else "#777777",
                                linewidth=2.2 if sig else 1.2, linestyle="-" if sig else "--")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pt = shape.representative_point().iloc[0]
            ax.annotate(str(int(row["cluster"])), (pt.x, pt.y), ha="center", va="center",
                        fontsize=10, fontweight="bold",
                        bbox=dict(boxstyle="circle,pad=0.2", fc="white", ec="black", lw=0.8))
        from matplotlib.lines import Line2D

        old_leg = ax.get_legend()
        if old_leg is not None:
            ax.add_artist(old_leg)
        ax.legend([Line2D([], [], color="black", lw=2.2),
                   Line2D([], [], color="#777777", lw=1.2, ls="--")],
                  [f"scan cluster, p < {alpha}", "scan cluster, not significant"],
                  loc="upper left", fontsize=8)
        return ax

    def explore(self, **kw):
        g = self.gdf.copy()
        ids = g[self.id_col].to_numpy() if self.id_col in g.columns else np.arange(len(g))
        lab = np.full(len(g), "none", dtype=object)
        for _, row in self.clusters.iloc[::-1].iterrows():
            lab[np.isin(ids, row["areas"])] = (f"cluster {int(row['cluster'])} "
                                               f"(p={row['p_value']:.3f})")
        g["scan_cluster"] = lab
        cats = [c for c in pd.unique(lab[lab != "none"])] + ["none"]
        pal = [_OKABE[k] for k in ("vermillion", "blue", "orange", "green", "purple",
                                   "sky_blue", "yellow", "black")]
        cols = [pal[i % len(pal)] for i in range(len(cats) - 1)] + ["#EEEEEE"]
        return g.explore(column="scan_cluster", categories=cats, cmap=cols, **kw)


def scan_statistic(gdf, cases, population, max_pop_share: float = 0.5, n_sim: int = 999,
                   seed=None, *, id_col: str | None = None, max_clusters: int = 10,
                   chunk: int = 256) -> ScanResult:
    """Kulldorff's circular spatial scan statistic (Poisson model), as SaTScan computes it.

    Windows are circles centred on each area's centroid that grow through its nearest neighbours
    (areas at the same distance enter together) until they hold more than ``max_pop_share`` of
    the total population. For each window with more cases than expected (E = C × pop_w / P), the
    log-likelihood ratio is LLR = c ln(c/E) + (C−c) ln((C−c)/(C−E)); the most likely cluster
    maximises it. Its significance is assessed by Monte Carlo: the C cases are redistributed
    ``n_sim`` times over the areas (multinomial, proportional to population: the null conditional
    on the total), the maximum LLR of each replicate recorded, and p = rank / (n_sim + 1).
    Secondary clusters are the next-highest-LLR windows that overlap no earlier cluster,
    compared against the same null distribution of maxima (as SaTScan's default
    "no geographical overlap").

    Neighbour orders and cumulative populations are precomputed once; replicates are simulated
    as a matrix and processed centre by centre (cumulative sums over all replicates at once).

    Parameters
    ----------
    gdf : GeoDataFrame
        Areas (polygons or points); centroid distances are great-circle (geographic CRS) or
        planar (projected CRS).
    cases, population : str or array-like
        Case counts (non-negative integers) and populations at risk.
    max_pop_share : float
        Largest window as a share of the total population (0 < share ≤ 0.5; SaTScan default 0.5).
    n_sim : int
        Monte Carlo replicates (≥ 99 so that p < 0.05 is attainable; 999 recommended).
    seed : int, optional
    id_col : str, optional
        Area ids for ``clusters.areas`` (default ``town`` if present, else the index).
    max_clusters : int
        Most clusters to report.
    chunk : int
        Replicates per block (memory/speed trade-off only; results do not depend on it).

    Returns
    -------
    ScanResult

    Examples
    --------
    >>> from dmst_eval import geography
    >>> import numpy as np
    >>> t = geography.towns()
    >>> cases = np.random.default_rng(1).poisson(t.population_under18 / 20000)
    >>> res = scan_statistic(t, cases, "population_under18", n_sim=99, seed=2)
    >>> list(res.clusters.columns[:7])
    ['cluster', 'areas', 'cases', 'expected', 'relative_risk', 'llr', 'p_value']
    """
    _gdf_check(gdf)
    if not 0 < max_pop_share <= 0.5:
        raise HotspotInputError(f"max_pop_share must be in (0, 0.5], got {max_pop_share}",
                                expected="0 < max_pop_share <= 0.5")
    if n_sim < 0:
        raise HotspotInputError("n_sim must be >= 0")
    g = gdf.reset_index(drop=True)
    ids, idc = _ids(g, id_col)
    c = _as_array(g, cases, "cases")
    pop = _as_array(g, population, "population")
    if (c < 0).any() or (np.abs(c - np.round(c)) > 1e-9).any():
        rows = list(ids[(c < 0) | (np.abs(c - np.round(c)) > 1e-9)][:20])
        raise HotspotInputError(f"cases must be non-negative integers; bad areas {rows}",
                                table="gdf", column=str(cases), rows=rows,
                                expected="integers >= 0")
    if (pop < 0).any() or ((pop == 0) & (c > 0)).any():
        rows = list(ids[(pop < 0) | ((pop == 0) & (c > 0))][:20])
        raise HotspotInputError(f"population must be >= 0 and > 0 where there are cases; bad "
                                f"areas {rows}", table="gdf", column=str(population), rows=rows,
                                expected="population > 0")
    c = np.round(c).astype(np.int64)
    C = int(c.sum())
    P = float(pop.sum())
    n = len(c)
    if C == 0:
        raise HotspotInputError("scan_statistic: there are no cases", table="gdf",
                                column=str(cases), expected="at least one case")

    D = _centroid_distances(g)
    order = np.argsort(D, axis=1, kind="stable")
    dsort = np.take_along_axis(D, order, axis=1)
    del D
    cpop = np.cumsum(pop[order], axis=1)
    limit = max_pop_share * P * (1 + 1e-12)
    ok = cpop <= limit
    K = int(ok.sum(axis=1).max()) if ok.any() else 0
    if K == 0:
        raise HotspotInputError("no window satisfies max_pop_share: every single area exceeds it",
                                expected="smaller areas or larger max_pop_share")
    # a window of size k+1 is a true circle only if the next area is strictly farther
    nxt = np.concatenate([dsort[:, 1:], np.full((n, 1), np.inf)], axis=1)
    valid = (ok & (dsort < nxt))[:, :K]
    order = order[:, :K]
    cpop = cpop[:, :K]
    del dsort, nxt, ok
    E = C * cpop / P

    # observed LLR of every window
    cum_obs = np.cumsum(c[order], axis=1)
    llr_obs = np.where(valid, poisson_llr(cum_obs, E, C), 0.0)

    # LLR via lookup: LLR = T[c] - c*b_w + a_w, with T[c] = c ln c + (C-c) ln(C-c)
    cc = np.arange(C + 1, dtype=float)
    T = xlogy(cc, cc) + xlogy(C - cc, C - cc)
    with np.errstate(divide="ignore"):
        bw = np.log(E) - np.log(C - E)
        aw = -C * np.log(C - E)

    rng = np.random.default_rng(seed)
    sim_max = np.zeros(n_sim)
    if n_sim:
        sims = rng.multinomial(C, pop / P, size=n_sim)  # (n_sim, n): null, conditional on C
        sim_max = _scan_null_max(sims, order, valid, E, bw, aw, T, C, chunk)
        del sims

    # most likely + secondary non-overlapping clusters
    rows = []
    used = np.zeros(n, dtype=bool)
    cand = llr_obs.copy()
    for j in range(max_clusters):
        if j:
            blocked = np.cumsum(used[order], axis=1) > 0
            cand = np.where(blocked, 0.0, llr_obs)
        flat = int(np.argmax(cand))
        best_llr = float(cand.flat[flat])
        if best_llr <= 0:
            break
        i, k = divmod(flat, K)
        members = order[i, :k + 1]
        cw, ew = int(cum_obs[i, k]), float(E[i, k])
        rr = (cw / ew) / ((C - cw) / (C - ew)) if C > cw else np.inf
        pval = (1 + int((sim_max >= best_llr - 1e-9 * max(1.0, best_llr)).sum())) / (n_sim + 1) \
            if n_sim else np.nan
        rows.append({"cluster": j + 1, "areas": [ids[m] for m in members], "cases": cw,
                     "expected": ew, "relative_risk": rr, "llr": best_llr, "p_value": pval,
                     "n_areas": len(members), "population": float(cpop[i, k]),
                     "centre": ids[i], "obs_exp": cw / ew})
        used[members] = True
    cols = ["cluster", "areas", "cases", "expected", "relative_risk", "llr", "p_value", "n_areas",
            "population", "centre", "obs_exp"]
    clusters = pd.DataFrame(rows, columns=cols)
    return ScanResult(clusters, sim_max, C, P, n_sim, max_pop_share, idc or "id", gdf=g,
                      cases=c, population=pop)


# ---------------------------------------------------------------------------------------------
# 4. facilities
# ---------------------------------------------------------------------------------------------
@dataclass
class FacilityExcess:
    """Observed vs expected victims per congregate facility: see :func:`facility_excess`.

    ``summary`` (one row per facility with child-days in the window, highest excess first):
    facility_id, name, setting, town, child_days, observed, expected, ratio (O/E),
    ci_lower, ci_upper (exact Garwood for O/E), p_value (exact one-sided Poisson, P(X ≥ O)),
    p_adjusted, flagged (p_adjusted < alpha and O > E).
    """

    summary: pd.DataFrame
    rate_per_1000_child_years: float
    adjust: str
    alpha: float
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def flagged(self) -> list:
        return self.summary.loc[self.summary["flagged"], "facility_id"].tolist()

    def plot(self, ax=None, label: bool = True, title: str | None = None):
        """Funnel plot of O/E against expected victims, with 95% and 99.8% Poisson limits."""
        ax = _new_ax(ax, "default")
        s = self.summary[self.summary["expected"] > 0]
        emax = max(float(s["expected"].max()) * 1.1, 1.0) if len(s) else 1.0
        grid = np.linspace(max(emax / 400, 0.02), emax, 300)
        for lvl, ls in ((0.95, "--"), (0.998, ":")):
            lo, hi = _funnel_limits(grid, lvl)
            ax.plot(grid, hi, ls=ls, color="#555555", lw=1.2,
                    label=f"{lvl * 100:g}% limits")
            ax.plot(grid, lo, ls=ls, color="#555555", lw=1.2)
        ax.axhline(1.0, color="black", lw=0.8)
        col = np.where(s["flagged"], _OKABE["vermillion"], _OKABE["blue"])
        ax.scatter(s["expected"], s["ratio"], c=col, s=28, zorder=3, edgecolor="white", lw=0.5)
        if label:
            for _, r in s[s["flagged"]].iterrows():
                ax.annotate(str(r["facility_id"]), (r["expected"], r["ratio"]),
                            textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("expected victims (child-days × congregate-care rate)")
        ax.set_ylabel("observed / expected")
        top = np.nanmax(np.r_[s["ratio"].to_numpy(), 3.0]) * 1.05 if len(s) else 3
        ax.set_ylim(0, top)
        ax.set_title(title or "Victims per congregate facility: funnel plot")
        from matplotlib.lines import Line2D

        h, lab = ax.get_legend_handles_labels()
        h += [Line2D([], [], marker="o", ls="", color=_OKABE["vermillion"]),
              Line2D([], [], marker="o", ls="", color=_OKABE["blue"])]
        lab += [f"flagged ({self.adjust}-adjusted p < {self.alpha})", "not flagged"]
        ax.legend(h, lab, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        return ax


def _funnel_limits(expected, level):
    """Exact Poisson control limits for O/E at the given two-sided level (Spiegelhalter 2005)."""
    E = np.asarray(expected, dtype=float)
    out = []
    for p in ((1 - level) / 2, 1 - (1 - level) / 2):
        r = stats.poisson.ppf(p, E)
        Fr = stats.poisson.cdf(r, E)
        Fr1 = stats.poisson.cdf(r - 1, E)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(Fr - Fr1 > 0, (Fr - p) / (Fr - Fr1), 0.0)
        out.append(np.maximum(r - a, 0) / E)
    return out[0], out[1]


def facility_excess(cd, start=None, end=None, adjust: str = "holm", *, alpha: float = 0.05,
                    confirmed_only: bool = True, settings=None, expected=None,
                    date_col: str = "began_at", count: str = "first") -> FacilityExcess:
    """Observed victims per congregate facility vs the number expected from its child-days.

    Observed O_f: victims (distinct children) whose first confirmed episode in [start, end]
    is linked to facility f (``episodes.facility_id``; ``count="all"``: children with any such
    episode at f, so one child can count at several facilities). Expected E_f: child-days in placement
    at f within the window × the congregate-care rate (all such victims / all child-days in
    congregate placements: indirect standardisation, so ΣE = ΣO), or a covariate-adjusted
    expected count passed as ``expected``. p-values are exact one-sided Poisson, P(X ≥ O_f | E_f),
    adjusted across facilities by Holm (family-wise) or Benjamini–Hochberg (false-discovery rate).
    Facilities without child-days in the window are listed with no test.

    Parameters
    ----------
    cd : CaseData
        Uses ``placements``, ``episodes`` and ``facilities``.
    start, end : date-like, optional
        Window (inclusive); default the study window.
    adjust : {"holm", "bh"}
    alpha : float
        Flagging level for adjusted p-values.
    confirmed_only : bool
        Count confirmed episodes only.
    settings : sequence, optional
        Placement settings counted (default :data:`dmst_eval.schema.CONGREGATE_SETTINGS`).
    expected : mapping or Series, optional
        facility_id → expected victims (e.g. from a risk model) instead of child-days × rate.
    date_col : str
        Episode date that places it in the window (default ``began_at``).
    count : {"first", "all"}
        Count each victim once, at the facility of their first episode (default: victims are
        then independent across facilities), or at every facility where they had an episode.

    Returns
    -------
    FacilityExcess

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(seed=1)
    >>> fx = facility_excess(cd, "2008-01-01", "2025-12-31", adjust="bh")
    >>> set(fx.flagged) <= set(cd.facilities["facility_id"])
    True
    """
    from dmst_eval import schema

    if adjust not in ("holm", "bh"):
        raise HotspotInputError(f"adjust must be 'holm' or 'bh', got {adjust!r}")
    settings = tuple(settings or schema.CONGREGATE_SETTINGS)
    start, end = _window(cd, start, end)
    end_x = end + pd.Timedelta(days=1)
    pl = cd.placements
    for col in ("facility_id", "setting", "start", "end"):
        if col not in pl.columns:
            raise HotspotInputError(f"placements: column {col!r} missing", table="placements",
                                    column=col)
    pl = pl[pl["facility_id"].notna() & pl["setting"].astype("object").isin(settings)]
    s = pd.to_datetime(pl["start"]).clip(lower=start)
    e = pd.to_datetime(pl["end"]).fillna(end_x).clip(upper=end_x)
    days = ((e - s).dt.total_seconds() / 86400).clip(lower=0)
    child_days = days.groupby(pl["facility_id"].astype("object")).sum()

    ep = cd.episodes
    d = pd.to_datetime(ep[date_col])
    keep = ep["facility_id"].notna() & (d >= start) & (d < end_x)
    if confirmed_only:
        keep &= ep["confirmed"].fillna(False).astype(bool)
    if count not in ("first", "all"):
        raise HotspotInputError(f"count must be 'first' or 'all', got {count!r}")
    if count == "first":
        # each victim counted once: at the facility of their first episode in the window
        first = ep.loc[(d >= start) & (d < end_x) & (
            ep["confirmed"].fillna(False).astype(bool) if confirmed_only else True)]
        first = first.assign(_d=pd.to_datetime(first[date_col])).sort_values(
            ["_d", "episode_id"], kind="stable").drop_duplicates("child_id")
        ev = first.loc[first["facility_id"].notna(), ["facility_id", "child_id"]].astype("object")
    else:
        ev = ep.loc[keep.to_numpy(), ["facility_id", "child_id"]].astype("object")
        ev = ev.drop_duplicates()
    obs = ev.groupby("facility_id").size()

    fac = cd.facilities.copy()
    fac["facility_id"] = fac["facility_id"].astype("object")
    fac = fac[fac["setting"].astype("object").isin(settings) |
              fac["facility_id"].isin(child_days.index)]
    unknown = sorted(set(obs.index) - set(fac["facility_id"]))
    if unknown:
        raise HotspotInputError(f"episodes: facility_id values not in facilities: {unknown[:10]}",
                                table="episodes", column="facility_id", rows=unknown[:10],
                                expected="facility_id present in facilities")
    out = fac[["facility_id"] + [c for c in ("name", "setting", "town") if c in fac]].copy()
    out["child_days"] = out["facility_id"].map(child_days).fillna(0.0).astype(float)
    out["observed"] = out["facility_id"].map(obs).fillna(0).astype(int)
    tested = out["child_days"] > 0
    if expected is not None:
        exp_map = pd.Series(expected)
        out["expected"] = out["facility_id"].map(exp_map).astype(float)
        rate = out["observed"].sum() / out["child_days"].sum() if out["child_days"].sum() else 0
    else:
        tot_days = out["child_days"].sum()
        rate = out.loc[tested, "observed"].sum() / tot_days if tot_days > 0 else 0.0
        out["expected"] = out["child_days"] * rate
    bad = (~tested) & (out["observed"] > 0)
    if bad.any():
        warnings.warn(f"facilities {out.loc[bad, 'facility_id'].tolist()[:10]} have victims but no "
                      "child-days in congregate placements in the window; they are not tested",
                      stacklevel=2)
    O = out["observed"].to_numpy()
    Ex = out["expected"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.where(Ex > 0, O / Ex, np.nan)
        lo, hi = garwood_ci(O)
        out["ci_lower"] = np.where(Ex > 0, lo / Ex, np.nan)
        out["ci_upper"] = np.where(Ex > 0, hi / Ex, np.nan)
    p = np.where(tested & (Ex > 0), stats.poisson.sf(O - 1, np.where(Ex > 0, Ex, 1)), np.nan)
    out["p_value"] = p
    from statsmodels.stats.multitest import multipletests

    padj = np.full(len(out), np.nan)
    okp = np.isfinite(p)
    if okp.any():
        padj[okp] = multipletests(p[okp], method="holm" if adjust == "holm" else "fdr_bh")[1]
    out["p_adjusted"] = padj
    out["flagged"] = (padj < alpha) & (O > Ex)
    out = out[tested].sort_values(["p_value", "facility_id"]).reset_index(drop=True)
    return FacilityExcess(out, rate_per_1000_child_years=rate * 365.25 * 1000, adjust=adjust,
                          alpha=alpha, start=start, end=end)


# ---------------------------------------------------------------------------------------------
# maps
# ---------------------------------------------------------------------------------------------
def choropleth(gdf, column: str, ax=None, scheme: str | None = "fisher_jenks", k: int = 5,
               cmap: str | None = None, suppressed=None, suppress_below: int | None = 5,
               legend_title: str | None = None, title: str | None = None, fmt: str = "{:.1f}",
               zero_class: bool = True):
    """Static choropleth (mapclassify classes, colour-blind-safe sequential map; darker = higher).

    Zeros get their own white class (``zero_class``), positive values ``k`` classes of
    ``scheme`` (any mapclassify scheme). Areas where ``suppressed`` is True are drawn hatched
    grey, their values hidden, and labelled "suppressed (<k)" in the legend; missing values are
    "no data".

    Examples
    --------
    >>> from dmst_eval import geography
    >>> ax = choropleth(geography.towns(), "land_area_sq_km")
    """
    import matplotlib as mpl
    from matplotlib.patches import Patch

    ax = _new_ax(ax, "map")
    cmap = cmap or _const("SEQUENTIAL", "cividis") + "_r"
    cm = mpl.colormaps[cmap]
    supp = np.zeros(len(gdf), dtype=bool) if suppressed is None else np.asarray(suppressed, bool)
    vals_all = pd.to_numeric(gdf[column], errors="coerce").to_numpy(dtype=float)
    nodata = ~np.isfinite(vals_all) & ~supp
    zero = (vals_all == 0) & ~supp & zero_class
    rest = ~supp & ~nodata & ~zero
    handles, labels = [], []
    edge = dict(edgecolor="white", linewidth=0.3)
    from dmst_eval import plots

    with plots.deferred_draw(ax.figure):  # one render when saved/shown, not one per layer
        if zero.any():
            gdf[zero].plot(ax=ax, facecolor="#FFFFFF", edgecolor="#BBBBBB", linewidth=0.3)
            handles.append(Patch(facecolor="#FFFFFF", edgecolor="#999999"))
            labels.append("0")
        if rest.any():
            v = vals_all[rest]
            uniq = np.unique(v)
            if scheme and len(uniq) > k:
                import mapclassify

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cls = mapclassify.classify(v, scheme=scheme, k=k)
                bins, yb = np.asarray(cls.bins, dtype=float), np.asarray(cls.yb)
                lows = np.r_[v.min(), bins[:-1]]
                labs = [f"{fmt.format(lo)} – {fmt.format(hi)}" for lo, hi in zip(lows, bins)]
            else:
                bins, yb = uniq, np.searchsorted(uniq, v)
                labs = [fmt.format(b) for b in uniq]
            nb = len(bins)
            cols = [cm(0.12 + 0.88 * i / max(nb - 1, 1)) for i in range(nb)]
            sub = gdf[rest]
            sub.plot(ax=ax, color=[cols[i] for i in yb], **edge)
            for i in range(nb):
                if (yb == i).any():
                    handles.append(Patch(facecolor=cols[i], edgecolor="white"))
                    labels.append(labs[i])
        if supp.any():
            gdf[supp].plot(ax=ax, facecolor=_const("SUPPRESSED_COLOR", "#DDDDDD"),
                           hatch=_const("SUPPRESSED_HATCH", "///"), edgecolor="#8A8A8A",
                           linewidth=0.3)
            handles.append(Patch(facecolor=_const("SUPPRESSED_COLOR", "#DDDDDD"),
                                 hatch=_const("SUPPRESSED_HATCH", "///"), edgecolor="#8A8A8A"))
            labels.append(f"suppressed (<{suppress_below})")
        if nodata.any():
            gdf[nodata].plot(ax=ax, facecolor="#F0F0F0", edgecolor="#BBBBBB", linewidth=0.3)
            handles.append(Patch(facecolor="#F0F0F0", edgecolor="#BBBBBB"))
            labels.append("no data")
    ax.legend(handles, labels, title=legend_title, loc="lower right", fontsize=8,
              title_fontsize=8.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _categorical_explore(g, column: str, colors: dict, **kw):
    """Interactive (folium) map of a categorical column in the given category colours."""
    cats = [c for c in colors if c in set(g[column])]
    return g.explore(column=column, categories=cats, cmap=[colors[c] for c in cats], **kw)


def _categorical_map(g, column, colors, ax=None, title=None, legend_title=None):
    from matplotlib.patches import Patch

    ax = _new_ax(ax, "map")
    handles, labels = [], []
    from dmst_eval import plots

    with plots.deferred_draw(ax.figure):
        for cat, col in colors.items():
            sub = g[g[column] == cat]
            if len(sub):
                sub.plot(ax=ax, color=col, edgecolor="white", linewidth=0.3)
            n = len(sub)
            handles.append(Patch(facecolor=col, edgecolor="#999999"))
            labels.append(f"{cat} ({n})")
    ax.legend(handles, labels, title=legend_title, loc="upper center", fontsize=8,
              title_fontsize=8.5, bbox_to_anchor=(0.5, 0.02), ncol=3)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _explore(gdf, column, by, suppress_below, **kw):
    g = gdf.copy()
    if suppress_below and "events" in g:
        supp = _suppressed(g["events"], suppress_below)
        g[column] = g[column].astype(float).where(~supp)
        g["events"] = g["events"].astype(object).where(~supp, f"<{suppress_below}")
        for c in ("ci_lower", "ci_upper"):
            if c in g:
                g[c] = g[c].where(~supp)
        kw.setdefault("missing_kwds", {"color": "#DDDDDD", "label": f"suppressed (<{suppress_below})"})
    for c in g.columns:
        if g[c].dtype.kind == "f":
            g[c] = g[c].round(2)
    if "suppressed" in g:
        g = g.drop(columns="suppressed")
    kw.setdefault("cmap", _const("SEQUENTIAL", "cividis"))
    kw.setdefault("tooltip", [c for c in g.columns if c != "geometry"])
    return g.explore(column=column, **kw)
