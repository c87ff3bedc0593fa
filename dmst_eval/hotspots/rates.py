"""Event and victim counts by area, crude and smoothed rates with exact intervals."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dmst_eval.casedata import confirmed_mask
from dmst_eval._compat import renamed_kwargs
from dmst_eval.errors import InputError, require_columns, resolve_window

from ._util import _as_array, _ids, _new_ax, _OKABE, _suppressed, _weights
from .maps import choropleth, _explore

__all__ = [
    'area_rates', 'case_events', 'victims', 'smooth_rates', 'garwood_ci', 'AreaRatesResult',
    'SmoothedRatesResult',
]


@renamed_kwargs(conf_level=("level", None))
def garwood_ci(k, level: float = 0.95):
    """Exact (Garwood 1936) confidence interval for a Poisson count ``k``.

    Lower = χ²(α/2; 2k)/2 (0 when k = 0), upper = χ²(1-α/2; 2k+2)/2.

    Examples
    --------
    >>> lo, hi = garwood_ci([0, 5])
    >>> [round(float(x), 3) for x in lo], [round(float(x), 3) for x in hi]
    ([0.0, 1.623], [3.689, 11.668])
    """
    k = np.asarray(k, dtype=float)
    a = 1 - level
    lo = np.where(k > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(k, 1e-300)) / 2, 0.0)
    hi = stats.chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return lo, hi


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
    >>> cd = generate(scale=0.3, seed=1)
    >>> ev = case_events(cd, "2008-01-01", "2011-12-31")
    >>> rates = area_rates(ev, unit="child_id")  # victims (distinct children) by town
    >>> len(rates.summary)
    169
    """
    ep = cd.episodes
    require_columns(ep, [date_col, "confirmed"] if confirmed_only else [date_col],
                    table="episodes")
    start, end = _window(cd, start, end)
    d = pd.to_datetime(ep[date_col])
    keep = (d >= start) & (d < end + pd.Timedelta(days=1))
    if confirmed_only:
        keep &= confirmed_mask(ep)
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
    >>> v = victims(generate(scale=0.3, seed=1), "2008-01-01", "2011-12-31")
    >>> rates = area_rates(v)  # victims per 10,000 children by home town
    >>> int(rates.summary["events"].sum()) == v["child_id"].nunique()
    True
    """
    if place not in ("home_town", "episode_town"):
        raise InputError(f"place must be 'home_town' or 'episode_town', got {place!r}")
    if place == "home_town":
        require_columns(cd.children, ["child_id", "home_town"], table="children")
    ep = case_events(cd, start, end, confirmed_only=confirmed_only, date_col=date_col)
    require_columns(ep, ["child_id", "episode_id"] + (["town"] if place == "episode_town"
                                                      else []), table="episodes")
    ep = ep.sort_values([date_col, "episode_id"], kind="stable").drop_duplicates("child_id")
    if place == "home_town":
        home = cd.children.set_index("child_id")["home_town"]
        town = ep["child_id"].map(home)
    else:
        town = ep["town"]
    return pd.DataFrame({"child_id": ep["child_id"].to_numpy(),
                         "town": town.astype("object").to_numpy()})


def _window(cd, start, end):
    """(first day, last day) of the window by the one rule
    (:func:`dmst_eval.errors.resolve_window`): whole days, both inclusive; an event at ``t`` is in when ``first <= t < last + 1 day``."""
    meta = getattr(cd, "meta", None) or {}
    default_end = meta.get("study_end")
    if end is None and default_end is None:
        ends = [pd.to_datetime(cd.episodes[c]).max() for c in ("identified_at",)
                if c in cd.episodes]
        default_end = max([e for e in ends if pd.notna(e)] or [pd.Timestamp.today()])
    lo, hi = resolve_window(start, end, default_start=meta.get("study_start", "2008-01-01"),
                            default_end=default_end)
    return lo, hi - pd.Timedelta(days=1)


@dataclass
class AreaRatesResult:
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
    level: float
    suppress_below: int | None
    gdf: Any = None
    total_events: int = 0
    total_population: float = 0.0

    @property
    def conf_level(self) -> float:
        """Deprecated name of :attr:`level`."""
        import warnings

        warnings.warn("AreaRatesResult.conf_level is deprecated; use .level", DeprecationWarning,
                      stacklevel=2)
        return self.level

    @property
    def overall_rate(self) -> float:
        """Events per ``per`` population over all areas."""
        return self.total_events / self.total_population * self.per

    def plot(self, ax=None, column: str = "rate", scheme: str | None = "fisher_jenks", k: int = 5,
             cmap: str | None = None, title: str | None = None, suppress_below: int | None = -1):
        """Choropleth of crude rates; suppressed areas hatched and labelled in the legend."""
        if self.gdf is None:
            raise InputError("plot needs geometries: pass a GeoDataFrame as population",
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
            raise InputError("explore needs geometries: pass a GeoDataFrame as population",
                                    table="population", expected="GeoDataFrame")
        return _explore(self.gdf, column, self.by, self.suppress_below, **kw)


@renamed_kwargs(conf_level=("level", None))
def area_rates(events, population=None, by: str = "town", per: float = 10_000, *,
               pop_col: str | None = None, unit: str | None = None, level: float = 0.95,
               suppress_below: int | None = 5) -> AreaRatesResult:
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
    level : float
        Confidence level of the Garwood interval.
    suppress_below : int or None
        Counts 1 … suppress_below-1 are flagged ``suppressed`` (shown hatched on maps; zero counts
        are not suppressed). ``None`` disables.

    Returns
    -------
    AreaRatesResult

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
        raise InputError("events: expected a DataFrame", table="events")
    for tab, df in (("events", events), ("population", population)):
        if by not in df.columns:
            raise InputError(f"{tab}: area column {by!r} not found; columns are "
                                    f"{list(df.columns)}", table=tab, column=by,
                                    expected=f"a column {by!r}")
    if pop_col is None:
        pop_col = "population_under18" if "population_under18" in population.columns \
            else "population"
    pop = _as_array(population, pop_col, pop_col, table="population")
    if (pop < 0).any():
        rows = list(population.loc[pop < 0, by][:20])
        raise InputError(f"population: negative {pop_col!r} for areas {rows}",
                                table="population", column=pop_col, rows=rows,
                                expected="population >= 0")
    ids, _ = _ids(population, by)
    ev_area = events[by].astype("object")
    missing = ev_area.isna()
    if missing.any():
        rows = list(events.index[missing.to_numpy()][:20])
        raise InputError(f"events: {int(missing.sum())} row(s) have no {by!r} "
                                f"(rows {rows}); expected an area for every event",
                                table="events", column=by, rows=rows, expected="non-missing area")
    known = set(ids.tolist())
    unknown = ~ev_area.isin(known)
    if unknown.any():
        vals = sorted(map(str, pd.unique(ev_area[unknown])))[:20]
        rows = list(events.index[unknown.to_numpy()][:20])
        raise InputError(
            f"events: {int(unknown.sum())} row(s) have {by!r} values not in population "
            f"({vals}); rows {rows}", table="events", column=by, rows=rows,
            expected=f"{by} values present in population")
    if unit is not None:
        if unit not in events.columns:
            raise InputError(f"events: unit column {unit!r} not found", table="events",
                                    column=unit)
        counts = events.drop_duplicates([by, unit]).groupby(by, observed=True).size()
    else:
        counts = events.groupby(by, observed=True).size()
    counts.index = counts.index.astype("object")
    y = pd.Series(ids).map(counts).fillna(0).astype(int).to_numpy()
    zero_pop = (pop == 0) & (y > 0)
    if zero_pop.any():
        rows = list(ids[zero_pop][:20])
        raise InputError(f"population: areas {rows} have events but zero {pop_col!r}",
                                table="population", column=pop_col, rows=rows,
                                expected="population > 0 where there are events")
    lo, hi = garwood_ci(y, level)
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
    return AreaRatesResult(summ, by=by, per=per, level=level, suppress_below=suppress_below,
                     gdf=gdf, total_events=int(y.sum()), total_population=float(pop.sum()))


# ---------------------------------------------------------------------------------------------
# smoothing and rank uncertainty
# ---------------------------------------------------------------------------------------------
@dataclass
class SmoothedRatesResult:
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
                raise InputError("map needs geometries", table="population")
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
            raise InputError("explore needs geometries", table="population")
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
                 top_k: int = 5, rank_level: float = 0.95, **area_kw) -> SmoothedRatesResult:
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
    rates : AreaRatesResult, DataFrame of events, or DataFrame with columns ``by``, events, population
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
    SmoothedRatesResult

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
        raise InputError(f"method must be 'empirical_bayes' or 'spatial_empirical_bayes', "
                                f"got {method!r}", expected="a known method")
    gdf = None
    sb = area_kw.get("suppress_below", 5)
    if isinstance(rates, AreaRatesResult):
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
            raise InputError(f"rates: missing column(s) {sorted(miss)}", table="rates",
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
        raise InputError(f"rates: areas {rows} have population <= 0; drop them before "
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
                raise InputError("spatial_empirical_bayes needs geometries (a GeoDataFrame "
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
    return SmoothedRatesResult(summ, by=by, per=per, method=method, prior_mean=prior_mean,
                         prior_var=prior_var, top_k=top_k, rank_level=rank_level, n_sim=n_sim,
                         gdf=gdf, draws=draws * per, suppress_below=sb)
