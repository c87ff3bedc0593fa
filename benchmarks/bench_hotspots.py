"""Benchmark of the Kulldorff scan statistic (dmst_eval.hotspots.scan_statistic).

Targets (issue 5): the 169 Connecticut towns with 999 Monte Carlo replications in <= 5 s, and
3,000 synthetic areas (a national county-level run) with 999 replications in <= 60 s.

Run: ``.venv/bin/python benchmarks/bench_hotspots.py``
"""
from __future__ import annotations

import sys
import time

import geopandas as gpd
import numpy as np

from dmst_eval import geography
from dmst_eval import hotspots as h


def ct_towns() -> float:
    t = geography.towns()
    pop = t["population_under18"].to_numpy()
    y = np.random.default_rng(1).poisson(pop / pop.sum() * 400)
    t0 = time.perf_counter()
    res = h.scan_statistic(t, y, pop, permutations=999, seed=1)
    dt = time.perf_counter() - t0
    top = res.clusters.iloc[0]
    print(f"CT towns: 169 areas, {y.sum()} cases, 999 replications: {dt:.2f} s "
          f"(most likely cluster: {top['n_areas']} areas, LLR {top['llr']:.2f}, "
          f"p {top['p_value']:.3f})")
    return dt


def synthetic_counties(n: int = 3000, cases: int = 3000) -> float:
    """3,000 areas: random centroids on a 4,500 x 2,500 km rectangle, log-normal populations
    (median 22,000, like US counties), cases proportional to population with a planted cluster."""
    rng = np.random.default_rng(2)
    xy = rng.uniform([0, 0], [4_500_000, 2_500_000], (n, 2))
    pop = np.round(np.exp(rng.normal(10.0, 1.3, n)))
    rr = np.where(np.hypot(xy[:, 0] - 2e6, xy[:, 1] - 1e6) < 150_000, 2.0, 1.0)
    p = pop * rr
    y = rng.multinomial(cases, p / p.sum())
    g = gpd.GeoDataFrame({"fips": [f"{i:05d}" for i in range(n)], "pop": pop, "y": y},
                         geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:5070")
    t0 = time.perf_counter()
    res = h.scan_statistic(g, "y", "pop", permutations=999, seed=1, id_col="fips")
    dt = time.perf_counter() - t0
    top = res.clusters.iloc[0]
    print(f"synthetic: {n} areas, {y.sum()} cases, 999 replications: {dt:.1f} s "
          f"(most likely cluster: {top['n_areas']} areas, LLR {top['llr']:.2f}, "
          f"p {top['p_value']:.3f})")
    return dt


if __name__ == "__main__":
    a = ct_towns()
    b = synthetic_counties()
    ok = a <= 5 and b <= 60
    print("targets (<= 5 s, <= 60 s):", "met" if ok else "NOT met")
    sys.exit(0 if ok else 1)
