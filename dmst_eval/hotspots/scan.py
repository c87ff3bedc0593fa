"""Kulldorff's circular Poisson scan statistic."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
import warnings

import numpy as np
import pandas as pd
from scipy.special import xlogy

from dmst_eval._compat import renamed_kwargs
from dmst_eval.errors import InputError

from ._util import _as_array, _gdf_check, _ids, _new_ax, _OKABE, _suppressed
from .maps import choropleth

__all__ = ['scan_statistic', 'poisson_llr', 'ScanResult']


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


def _scan_null_max(sims, order, valid, E, bw, aw, T, C, chunk=1024, k0=12):
    """Maximum high-rate LLR over all windows for each simulated data set (exact).

    Two passes keep it fast without approximation: (A) the exact maximum over the ``k0``
    smallest windows of every centre gives a lower bound L_r for each replicate; (B) a window can
    only beat min_r L_r (over the replicates of a block) if its count reaches the precomputed
    integer threshold c*_w, so for all windows only cumulative counts and an integer comparison
    are needed; the exact LLR is computed for the few windows that reach their threshold.
    Both passes grow all circles together, one neighbour rank at a time, over all replicates
    of a block (``chunk`` of them) at once.
    """
    n_sim, n = sims.shape
    K = order.shape[1]
    dt = np.int16 if C < 32_000 else np.int32
    simsT = np.ascontiguousarray(sims.T.astype(dt))  # (n, n_sim)
    k0 = min(k0, K)
    Kv = np.flatnonzero(valid.any(axis=0))
    kmax = max(int(Kv[-1]) + 1 if len(Kv) else 0, k0)
    orderT = np.ascontiguousarray(order[:, :kmax].T)   # (k, n): rank k neighbour of each centre
    cc = np.arange(C + 1)
    best = np.zeros(n_sim)
    for j0 in range(0, n_sim, chunk):
        blk = np.ascontiguousarray(simsT[:, j0:j0 + chunk])
        R = blk.shape[1]
        bb = best[j0:j0 + R]
        acc = np.zeros((n, R), dtype=dt)
        buf = np.empty((n, R), dtype=dt)
        # pass A: the k0 smallest windows of every centre, exactly
        for k in range(k0):
            np.take(blk, orderT[k], axis=0, out=buf)
            acc += buf
            rows = np.flatnonzero(valid[:, k])
            if not len(rows):
                continue
            if C + 1 <= R:
                # a table of the window's LLR for every count 0..C (0 where not high-rate):
                # the numbers _llr_lookup gives, looked up; cheaper while C is small next to R
                tab = _llr_lookup(cc[None, :], bw[rows, k, None], aw[rows, k, None], T)
                tab[cc[None, :] <= E[rows, k, None]] = 0.0
                val = tab.ravel()[acc[rows] + (np.arange(len(rows)) * (C + 1))[:, None]]
            else:
                a = acc[rows]
                val = _llr_lookup(a, bw[rows, k, None], aw[rows, k, None], T)
                val[a <= E[rows, k, None]] = 0.0
            np.maximum(bb, val.max(axis=0), out=bb)
        if kmax <= k0:
            continue
        L = float(bb.min()) * (1 - 1e-9) - 1e-9
        if L <= 0:
            cstar = np.where(valid, np.minimum(np.floor(E) + 1, C + 1), C + 1).astype(dt)
        else:
            cstar = _min_cases(E, bw, aw, T, C, L, valid).astype(dt)
        cstarT = np.ascontiguousarray(cstar[:, :kmax].T)
        # pass B: the larger windows, exact LLR only where the count reaches c*_w
        hit = np.empty((n, R), dtype=bool)
        accf, hitf = acc.reshape(-1), hit.reshape(-1)
        for k in range(k0, kmax):
            np.take(blk, orderT[k], axis=0, out=buf)
            acc += buf
            np.greater_equal(acc, cstarT[k][:, None], out=hit)
            f = np.flatnonzero(hitf)  # (flat: much faster than a 2-d nonzero)
            if len(f) == 0:
                continue
            ii, rr = np.divmod(f, R)
            val = _llr_lookup(accf[f].astype(np.int64), bw[ii, k], aw[ii, k], T)
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
    permutations: int
    max_pop_share: float
    id_col: str
    gdf: Any = field(repr=False, default=None)
    cases: np.ndarray | None = field(repr=False, default=None)
    population: np.ndarray | None = field(repr=False, default=None)

    @property
    def n_sim(self) -> int:
        """Deprecated name of :attr:`permutations`."""
        import warnings

        warnings.warn("ScanResult.n_sim is deprecated; use .permutations", DeprecationWarning,
                      stacklevel=2)
        return self.permutations

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
        from dmst_eval import plots as _plots
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
            g.plot(ax=ax, color=_plots.BACKGROUND_AREA_COLOR, edgecolor="white", linewidth=0.3)
            ax.set_axis_off()
            ax.set_title(title or "Spatial scan clusters (Kulldorff, Poisson)")
        ids = g[self.id_col].to_numpy() if self.id_col in g.columns else np.arange(len(g))
        for _, row in self.clusters.head(max_clusters).iterrows():
            sub = g[np.isin(ids, row["areas"])]
            shape = sub.dissolve()
            sig = row["p_value"] < alpha
            shape.boundary.plot(ax=ax, color="black" if sig else _plots.GREY_DARK,
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
                   Line2D([], [], color=_plots.GREY_DARK, lw=1.2, ls="--")],
                  [f"scan cluster, p < {alpha}", "scan cluster, not significant"],
                  loc="upper left", fontsize=8)
        return ax

    def explore(self, **kw):
        from dmst_eval import plots as _plots
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
        cols = [pal[i % len(pal)] for i in range(len(cats) - 1)] + [_plots.OTHER_COLOR]
        return g.explore(column="scan_cluster", categories=cats, cmap=cols, **kw)


@renamed_kwargs(n_sim=("permutations", None))
def scan_statistic(gdf, cases, population, max_pop_share: float = 0.5, permutations: int = 999,
                   seed=None, *, id_col: str | None = None, max_clusters: int = 10,
                   chunk: int = 1024) -> ScanResult:
    """Kulldorff's circular spatial scan statistic (Poisson model), as SaTScan computes it.

    Windows are circles centred on each area's centroid that grow through its nearest neighbours
    (areas at the same distance enter together) until they hold more than ``max_pop_share`` of
    the total population. For each window with more cases than expected (E = C × pop_w / P), the
    log-likelihood ratio is LLR = c ln(c/E) + (C−c) ln((C−c)/(C−E)); the most likely cluster
    maximises it. Its significance is assessed by Monte Carlo: the C cases are redistributed
    ``permutations`` times over the areas (multinomial, proportional to population: the null
    conditional on the total), the maximum LLR of each replicate recorded, and
    p = rank / (permutations + 1).
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
    permutations : int
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
    >>> res = scan_statistic(t, cases, "population_under18", permutations=99, seed=2)
    >>> list(res.clusters.columns[:7])
    ['cluster', 'areas', 'cases', 'expected', 'relative_risk', 'llr', 'p_value']
    """
    _gdf_check(gdf)
    if not 0 < max_pop_share <= 0.5:
        raise InputError(f"max_pop_share must be in (0, 0.5], got {max_pop_share}",
                                expected="0 < max_pop_share <= 0.5")
    if permutations < 0:
        raise InputError("permutations must be >= 0")
    g = gdf.reset_index(drop=True)
    ids, idc = _ids(g, id_col)
    c = _as_array(g, cases, "cases")
    pop = _as_array(g, population, "population")
    if (c < 0).any() or (np.abs(c - np.round(c)) > 1e-9).any():
        rows = list(ids[(c < 0) | (np.abs(c - np.round(c)) > 1e-9)][:20])
        raise InputError(f"cases must be non-negative integers; bad areas {rows}",
                                table="gdf", column=str(cases), rows=rows,
                                expected="integers >= 0")
    if (pop < 0).any() or ((pop == 0) & (c > 0)).any():
        rows = list(ids[(pop < 0) | ((pop == 0) & (c > 0))][:20])
        raise InputError(f"population must be >= 0 and > 0 where there are cases; bad "
                                f"areas {rows}", table="gdf", column=str(population), rows=rows,
                                expected="population > 0")
    c = np.round(c).astype(np.int64)
    C = int(c.sum())
    P = float(pop.sum())
    n = len(c)
    if C == 0:
        raise InputError("scan_statistic: there are no cases", table="gdf",
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
        raise InputError("no window satisfies max_pop_share: every single area exceeds it",
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
    sim_max = np.zeros(permutations)
    if permutations:
        sims = rng.multinomial(C, pop / P, size=permutations)  # (permutations, n): null, conditional on C
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
        pval = (1 + int((sim_max >= best_llr - 1e-9 * max(1.0, best_llr)).sum())) / (permutations + 1) \
            if permutations else np.nan
        rows.append({"cluster": j + 1, "areas": [ids[m] for m in members], "cases": cw,
                     "expected": ew, "relative_risk": rr, "llr": best_llr, "p_value": pval,
                     "n_areas": len(members), "population": float(cpop[i, k]),
                     "centre": ids[i], "obs_exp": cw / ew})
        used[members] = True
    cols = ["cluster", "areas", "cases", "expected", "relative_risk", "llr", "p_value", "n_areas",
            "population", "centre", "obs_exp"]
    clusters = pd.DataFrame(rows, columns=cols)
    return ScanResult(clusters, sim_max, C, P, permutations, max_pop_share, idc or "id", gdf=g,
                      cases=c, population=pop)
