"""Fast checks of dmst_eval.hotspots against hand computations, esda and published SaTScan output."""
from __future__ import annotations

import warnings

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from shapely.geometry import box

from dmst_eval.errors import InputError
from dmst_eval import geography
from dmst_eval import hotspots as h

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def towns():
    return geography.towns()


@pytest.fixture(scope="module")
def grid():
    """A 6 x 6 grid of unit squares with ids 'c00'..'c55' (a user's own boundaries)."""
    cells = [box(i, j, i + 1, j + 1) for j in range(6) for i in range(6)]
    ids = [f"c{i}{j}" for j in range(6) for i in range(6)]
    rng = np.random.default_rng(3)
    pop = rng.integers(500, 5000, 36).astype(float)
    return gpd.GeoDataFrame({"cell": ids, "pop": pop}, geometry=cells, crs="EPSG:3857")


# ------------------------------------------------------------------------------------- rates
def test_garwood_matches_published_values():
    lo, hi = h.garwood_ci([0, 1, 5, 10])
    # Garwood (1936) / standard tables of exact Poisson limits
    np.testing.assert_allclose(lo, [0.0, 0.0253, 1.6235, 4.7954], atol=5e-4)
    np.testing.assert_allclose(hi, [3.6889, 5.5716, 11.6683, 18.3904], atol=5e-4)


def test_area_rates_counts_zero_areas_and_distinct_units():
    areas = gpd.GeoDataFrame({"area": ["a", "b", "c"], "population": [1000, 20000, 500]},
                             geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)])
    ev = pd.DataFrame({"area": ["a", "a", "b", "b", "b"], "child_id": ["x", "x", "y", "z", "y"]})
    r = h.area_rates(ev, areas, by="area", per=10_000)
    s = r.summary.set_index("area")
    assert s["events"].tolist() == [2, 3, 0]                       # c: zero-count area kept
    assert s.loc["a", "rate"] == pytest.approx(20.0)
    lo, hi = stats.chi2.ppf(0.025, 6) / 2, stats.chi2.ppf(0.975, 8) / 2
    assert s.loc["b", "ci_lower"] == pytest.approx(lo / 2)         # 3 events / 20,000 * 10,000
    assert s.loc["b", "ci_upper"] == pytest.approx(hi / 2)
    assert s.loc["c", "ci_lower"] == 0 and s.loc["c", "ci_upper"] == pytest.approx(3.6889 * 20,
                                                                                    rel=1e-4)
    assert s["suppressed"].tolist() == [True, True, False]         # 1-4 suppressed, 0 not
    u = h.area_rates(ev, areas, by="area", unit="child_id").summary["events"].tolist()
    assert u == [1, 2, 0]
    assert r.overall_rate == pytest.approx(5 / 21500 * 1e4)


def test_area_rates_default_ct_towns():
    ev = pd.DataFrame({"town": ["Hartford"] * 3 + ["Union"]})
    r = h.area_rates(ev)
    assert len(r.summary) == 169 and r.summary["events"].sum() == 4
    hart = r.summary.set_index("town").loc["Hartford"]
    t = geography.towns().set_index("town")
    assert hart["population"] == t.loc["Hartford", "population_under18"]


def test_area_rates_bad_input_names_rows():
    areas = pd.DataFrame({"town": ["A", "B"], "population": [10, 20]})
    with pytest.raises(InputError) as e:
        h.area_rates(pd.DataFrame({"town": ["A", "Nowhere", "B"]}), areas)
    assert e.value.table == "events" and e.value.rows == [1] and "Nowhere" in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(InputError, match="area column 'town' not found"):
        h.area_rates(pd.DataFrame({"place": ["A"]}), areas)
    with pytest.raises(InputError, match="zero"):
        h.area_rates(pd.DataFrame({"town": ["A"]}),
                     pd.DataFrame({"town": ["A", "B"], "population": [0, 20]}))


# ---------------------------------------------------------------------------------- smoothing
def test_empirical_bayes_hand_computed_four_areas():
    # m = 60/4000 = 0.015; s2 = (.015^2 + .005^2 + .005^2 + .015^2)/4 = 0.000125;
    # A = s2 - m / 1000 = 0.00011; C = A / (A + m/1000) = 0.88; EB = m + 0.88 (r - m)
    t = pd.DataFrame({"town": list("abcd"), "events": [0, 10, 20, 30], "population": [1000] * 4})
    s = h.smooth_rates(t, per=1000, seed=1)
    got = s.summary.set_index("town").sort_index()
    np.testing.assert_allclose(got["smoothed_rate"], [1.8, 10.6, 19.4, 28.2], atol=1e-10)
    np.testing.assert_allclose(got["shrinkage"], 0.88, atol=1e-12)
    assert s.prior_mean == pytest.approx(0.015) and s.prior_var == pytest.approx(0.00011)
    assert got["rank"].tolist() == [4, 3, 2, 1]


def test_empirical_bayes_matches_esda_and_posterior_mean():
    from esda.smoothing import Empirical_Bayes

    y = np.array([2, 40, 3, 0, 12, 7])
    n = np.array([100, 2000, 1000, 500, 800, 3000])
    t = pd.DataFrame({"town": list("abcdef"), "events": y, "population": n})
    s = h.smooth_rates(t, per=1, n_sim=20_000, seed=4)
    ref = Empirical_Bayes(y, n).r.ravel()
    got = s.summary.set_index("town").loc[list("abcdef")]
    np.testing.assert_allclose(got["smoothed_rate"], ref, rtol=1e-12)
    # Gamma posterior mean equals the Marshall estimate (Monte Carlo error < 1.5%)
    draws_mean = s.draws.mean(axis=0)[np.argsort(np.argsort(t["town"]))]
    order = s.summary.reset_index().set_index("town").loc[list("abcdef"), "index"]
    assert draws_mean.shape == (6,)
    means = pd.Series(s.draws.mean(axis=0), index=t["town"])  # draws are in input order
    np.testing.assert_allclose(means.loc[list("abcdef")], ref, rtol=0.015)
    assert len(order) == 6
    # the most populous high-rate area is clearly top; ranks lie inside their intervals
    assert (got["rank_lower"] <= got["rank"]).all() and (got["rank"] <= got["rank_upper"]).all()


def test_spatial_empirical_bayes_matches_esda(towns):
    from esda.smoothing import Spatial_Empirical_Bayes

    rng = np.random.default_rng(7)
    pop = towns["population_under18"].to_numpy()
    ev = rng.poisson(pop * 4e-4 * np.exp(rng.normal(0, 0.5, len(pop))))
    tab = towns[["town", "geometry"]].assign(events=ev, population=pop)
    s = h.smooth_rates(tab, method="spatial_empirical_bayes", per=1, seed=1, n_sim=200)
    w = geography.weights("queen")
    w.transform = "o"
    ref = Spatial_Empirical_Bayes(ev, pop, w).r.ravel()
    got = s.summary.set_index("town").loc[towns["town"], "smoothed_rate"].to_numpy()
    ok = np.isfinite(ref)  # esda returns 0/0 = nan where a neighbourhood has no events
    assert ok.sum() >= 150
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-10)
    assert (got[~ok] == 0).all()


def test_rank_uncertainty_reproducible_and_honest():
    t = pd.DataFrame({"town": list("abcdefgh"),
                      "events": [30, 2, 25, 1, 0, 5, 10, 40],
                      "population": [10_000, 300, 12_000, 200, 500, 9_000, 8_000, 9_000]})
    a = h.smooth_rates(t, seed=11)
    b = h.smooth_rates(t, seed=11)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    top = a.summary.iloc[0]
    assert top["town"] == "h" and top["rank_lower"] == 1
    # tiny towns have huge crude rates (b: 66.7 per 10,000) but rank intervals that say so
    small = a.summary.set_index("town").loc["b"]
    assert small["rank_crude"] == 1 and small["rank_upper"] - small["rank_lower"] >= 4
    assert a.summary["prob_top"].sum() == pytest.approx(1.0)
    assert "rank interval" in a.statement()


def test_no_extra_variation_gives_no_ranking():
    t = pd.DataFrame({"town": list("abcd"), "events": [1, 1, 1, 1], "population": [1000] * 4})
    s = h.smooth_rates(t, seed=1)
    assert s.prior_var == 0 and not s.top_is_clear
    np.testing.assert_allclose(s.summary["smoothed_rate"], 10.0)
    assert "No area stands out" in s.statement()
    assert (s.summary["prob_top"] < 0.5).all()



def _reference_rank_columns(t, seed, n_sim, top_k, rank_level):
    """The rank-interval columns of smooth_rates (global EB) by the direct formulation: a full
    rank matrix from lexsort with random tie-breaking, its quantiles and comparisons."""
    y, n = t["events"].to_numpy(float), t["population"].to_numpy(float)
    r, m = y / n, y.sum() / n.sum()
    A = max((n * (r - m) ** 2).sum() / n.sum() - m / n.mean(), 0.0)
    rng = np.random.default_rng(seed)
    draws = np.full((n_sim, len(y)), m)
    if A > 0:
        draws[:] = rng.gamma(m ** 2 / A + y, 1.0 / (m / A + n), size=draws.shape)
    tie = rng.random(draws.shape)
    order = np.lexsort((tie, -draws))
    ranks = np.empty(draws.shape, dtype=np.int32)
    np.put_along_axis(ranks, order, np.arange(1, len(y) + 1, dtype=np.int32)[None, :], axis=1)
    a = (1 - rank_level) / 2
    lo, hi = np.quantile(ranks, [a, 1 - a], axis=0, method="inverted_cdf")
    return pd.DataFrame({"town": t["town"].to_numpy(), "rank_lower": lo.astype(int),
                         "rank_upper": hi.astype(int), "prob_top": (ranks == 1).mean(axis=0),
                         "prob_top_k": (ranks <= top_k).mean(axis=0)}).set_index("town")


@pytest.mark.parametrize("events", [[30, 2, 25, 1, 0, 5, 10, 40, 3, 7], [2] * 10])
@pytest.mark.parametrize("n_sim,top_k,level", [(2000, 5, 0.95), (137, 3, 0.8), (50, 2.5, 0.5)])
def test_rank_columns_match_direct_formulation(events, n_sim, top_k, level):
    # second case: no variation beyond chance, so every draw is tied and ranks are random
    t = pd.DataFrame({"town": list("abcdefghij"), "events": events,
                      "population": [10_000, 300, 12_000, 200, 500, 9_000, 8_000, 9_000,
                                     700, 4_000] if events[0] != 2 else [1000] * 10})
    got = h.smooth_rates(t, seed=5, n_sim=n_sim, top_k=top_k, rank_level=level).summary
    ref = _reference_rank_columns(t, 5, n_sim, top_k, level)
    pd.testing.assert_frame_equal(got.set_index("town")[ref.columns], ref.loc[got["town"]],
                                  check_exact=True)


def test_rank_order_equals_lexsort_with_random_ties():
    rng = np.random.default_rng(0)
    draws = rng.gamma(2.0, 1.0, size=(300, 12))
    draws[::3, 4:9] = 1.5          # ties in every third row
    draws[7] = 0.0                 # a row of ties only
    got = h.rates._rank_order(draws, np.random.default_rng(9))
    want = np.lexsort((np.random.default_rng(9).random(draws.shape), -draws))
    np.testing.assert_array_equal(got, want)

# ---------------------------------------------------------------------------- esda wrappers
def _state_token():
    return np.random.get_state()[1].copy(), np.random.get_state()[2]


def test_global_moran_matches_esda_and_is_seeded(towns):
    from esda.moran import Moran

    np.random.seed(123)
    before = _state_token()
    m1 = h.global_moran(towns, "land_area_sq_km", permutations=199, seed=5)
    after = _state_token()
    assert (before[0] == after[0]).all() and before[1] == after[1]  # caller's RNG untouched
    m2 = h.global_moran(towns, "land_area_sq_km", permutations=199, seed=5)
    assert m1.p_sim == m2.p_sim and m1.z == m2.z
    m3 = h.global_moran(towns, "land_area_sq_km", permutations=199, seed=6)
    assert m3.I == m1.I
    w = geography.weights("queen")
    np.random.seed(h._util._seed32(5))
    ref = Moran(towns["land_area_sq_km"].to_numpy(), w, permutations=199)
    assert m1.I == pytest.approx(ref.I, rel=1e-12) and m1.EI == pytest.approx(-1 / 168)
    assert m1.p_sim == ref.p_sim and m1.z == pytest.approx(ref.z_sim)
    assert m1.p_norm == pytest.approx(ref.p_norm)


def test_global_moran_rate_variant_matches_esda(towns):
    from esda.moran import Moran_Rate

    rng = np.random.default_rng(2)
    pop = towns["population_under18"].to_numpy()
    ev = rng.poisson(pop * 5e-4)
    g = towns.assign(ev=ev)
    m = h.global_moran(g, events="ev", population="population_under18", permutations=99, seed=3)
    np.random.seed(h._util._seed32(3))
    ref = Moran_Rate(ev, pop, geography.weights("queen"), permutations=99)
    assert m.rate and m.I == pytest.approx(ref.I) and m.p_sim == ref.p_sim


def test_local_moran_labels_fdr_and_seed(grid):
    from esda.moran import Moran_Local
    from statsmodels.stats.multitest import multipletests

    x = np.zeros(36)
    hot = [0, 1, 6, 7]                                  # a block of high values in a corner
    x[hot] = 10
    x += np.random.default_rng(0).normal(0, 0.5, 36)
    g = grid.assign(x=x)
    before = _state_token()
    lm = h.local_moran(g, "x", id_col="cell", permutations=999, seed=9)
    assert (_state_token()[0] == before[0]).all()
    lm2 = h.local_moran(g, "x", id_col="cell", permutations=999, seed=9)
    pd.testing.assert_frame_equal(lm.summary, lm2.summary)
    s = lm.summary
    w = geography.weights("queen", gdf=grid, ids="cell")
    ref = Moran_Local(x, w, permutations=0)
    np.testing.assert_allclose(s["Is"], ref.Is)
    assert s["quadrant"].tolist() == [{1: "HH", 2: "LH", 3: "LL", 4: "HL"}[q] for q in ref.q]
    np.testing.assert_allclose(s["p_fdr"], multipletests(s["p_sim"], method="fdr_bh")[1])
    assert set(s.loc[s["cluster"] == "HH", "cell"]) <= {"c00", "c10", "c01", "c11"}
    assert (s.loc[[0, 1, 6, 7], "quadrant"] == "HH").all()


def test_gi_star_matches_esda_and_finds_planted_cluster(grid):
    from esda.getisord import G_Local

    rng = np.random.default_rng(1)
    x = rng.normal(10, 1, 36)
    block = [14, 15, 20, 21]
    x[block] += 6
    g = grid.assign(x=x)
    gi = h.local_gi_star(g, "x", id_col="cell", seed=2)
    w = geography.weights("queen", gdf=grid, ids="cell")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = G_Local(x, w, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(gi.summary["z"], ref.Zs)
    assert set(gi.hot_spots) & {g.cell[i] for i in block}
    assert not (set(gi.hot_spots) - {g.cell[i] for i in range(36)
                                     if w.neighbors[g.cell[i]] and
                                     any(g.cell[j] in w.neighbors[g.cell[i]] or j == i
                                         for j in block)})
    gi2 = h.local_gi_star(g, "x", id_col="cell", seed=2)
    assert (gi.summary["p_sim"] == gi2.summary["p_sim"]).all()


def test_gi_star_constant_column_has_no_spots(grid):
    with pytest.warns(UserWarning, match="constant"):
        gi = h.local_gi_star(grid.assign(x=1.0), "x", id_col="cell", permutations=9)
    assert (gi.summary["spot"] == "not significant").all()


# ------------------------------------------------------------------------------------- scan
def test_llr_matches_satscan_new_york_leukaemia():
    C, P = 552, 1_057_673
    e1 = C * 95_249 / P
    assert round(e1, 2) == 49.71
    for pop, cases, llr in ((95_249, 85, 11.577255), (34_083, 38, 9.019716),
                            (8_839, 11, 3.209485)):
        got = float(h.poisson_llr(cases, C * pop / P, C))
        assert round(got, 6) == llr
    assert h.poisson_llr(10, 12.0, C) == 0.0  # low-rate windows do not count


def _brute_max_llr(xy, pop, counts, max_share):
    n = len(pop)
    C, P = counts.sum(), pop.sum()
    D = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    best = 0.0
    for i in range(n):
        for r in np.unique(D[i]):
            m = D[i] <= r
            if pop[m].sum() > max_share * P:
                break
            best = max(best, float(h.poisson_llr(counts[m].sum(), C * pop[m].sum() / P, C)))
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_scan_matches_brute_force_including_ties(seed):
    rng = np.random.default_rng(seed)
    n = 30
    xy = rng.integers(0, 6, (n, 2)).astype(float)           # integer grid: many tied distances
    xy += 0.0 if seed == 0 else rng.random((n, 2))
    xy[:, 0] += np.arange(n) * 1e-3 if seed == 0 else 0      # no duplicate points
    pop = rng.integers(100, 5000, n).astype(float)
    counts = rng.poisson(pop / pop.sum() * 50)
    g = gpd.GeoDataFrame({"pop": pop, "y": counts}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]))
    res = h.scan_statistic(g, "y", "pop", permutations=20, seed=5, max_pop_share=0.5)
    assert res.clusters["llr"].iloc[0] == pytest.approx(_brute_max_llr(xy, pop, counts, 0.5),
                                                        abs=1e-9)
    sims = np.random.default_rng(5).multinomial(counts.sum(), pop / pop.sum(), size=20)
    ref = [_brute_max_llr(xy, pop, s, 0.5) for s in sims]
    np.testing.assert_allclose(res.sim_llr, ref, atol=1e-9)
    # p = rank / (n_sim + 1)
    for _, row in res.clusters.iterrows():
        assert row["p_value"] == (1 + (np.array(ref) >= row["llr"] - 1e-9).sum()) / 21


def test_scan_null_maxima_do_not_depend_on_blocking():
    """The Monte Carlo maxima are exact however the replicates are blocked: with the
    per-window LLR tables (total cases + 1 <= block size) or without them (small blocks),
    bit for bit the same, and equal to a brute-force search over every circle."""
    rng = np.random.default_rng(3)
    n = 30
    xy = rng.random((n, 2)) * 10
    pop = rng.integers(100, 5000, n).astype(float)
    counts = rng.poisson(pop / pop.sum() * 25)
    assert counts.sum() + 1 <= 60  # the tables are used with blocks of 60 or more
    g = gpd.GeoDataFrame({"pop": pop, "y": counts}, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]))
    runs = [h.scan_statistic(g, "y", "pop", permutations=60, seed=7, chunk=c).sim_llr
            for c in (1024, 60, 7)]
    for r in runs[1:]:
        np.testing.assert_array_equal(runs[0], r)
    sims = np.random.default_rng(7).multinomial(counts.sum(), pop / pop.sum(), size=60)
    np.testing.assert_allclose(runs[0], [_brute_max_llr(xy, pop, s, 0.5) for s in sims],
                               atol=1e-9)


def test_scan_finds_planted_cluster_with_user_boundaries(grid):
    pop = grid["pop"].to_numpy()
    rr = np.ones(36)
    planted = ["c33", "c34", "c43", "c44"]
    rr[grid["cell"].isin(planted)] = 4.0
    y = np.random.default_rng(2).poisson(pop * 2e-3 * rr)
    g = grid.assign(y=y)
    res = h.scan_statistic(g, "y", "pop", permutations=999, seed=1, id_col="cell")
    top = res.clusters.iloc[0]
    assert top["p_value"] == 0.001 and set(planted) & set(top["areas"])
    assert top["relative_risk"] == pytest.approx(
        (top["cases"] / top["expected"]) / ((y.sum() - top["cases"]) / (y.sum() - top["expected"])))
    # secondary clusters share no area with earlier ones; LLR decreasing
    seen: set = set()
    for a in res.clusters["areas"]:
        assert not seen & set(a)
        seen |= set(a)
    assert res.clusters["llr"].is_monotonic_decreasing
    assert res.clusters["population"].max() <= 0.5 * pop.sum()
    res2 = h.scan_statistic(g, "y", "pop", permutations=999, seed=1, id_col="cell")
    np.testing.assert_array_equal(res.sim_llr, res2.sim_llr)


def test_scan_geographic_crs_and_errors(towns):
    y = np.random.default_rng(0).poisson(towns["population_under18"] / 10_000)
    res = h.scan_statistic(towns, y, "population_under18", permutations=99, seed=1)
    assert list(res.clusters.columns[:7]) == ["cluster", "areas", "cases", "expected",
                                              "relative_risk", "llr", "p_value"]
    assert all(isinstance(a, str) for a in res.clusters["areas"].iloc[0])
    with pytest.raises(InputError, match="max_pop_share"):
        h.scan_statistic(towns, y, "population_under18", max_pop_share=0.8)
    with pytest.raises(InputError, match="non-negative integers"):
        h.scan_statistic(towns, y - 5.0, "population_under18")


def test_scan_null_false_positive_rate_small(towns):
    """Under the null (cases ∝ population) the most likely cluster is rarely significant."""
    pop = towns["population_under18"].to_numpy()
    hits = 0
    n = 20
    for s in range(n):
        y = np.random.default_rng(100 + s).multinomial(150, pop / pop.sum())
        res = h.scan_statistic(towns, y, pop, permutations=99, seed=s)
        hits += res.clusters["p_value"].iloc[0] < 0.05
    # valid test: P(X >= 4 | n = 20, p = .05) = 0.016
    assert hits <= 3


# --------------------------------------------------------------------------------- facilities
@pytest.fixture()
def facility_bundle():
    from dmst_eval.casedata import CaseData

    fac = pd.DataFrame({"facility_id": ["F1", "F2", "F3", "F4"],
                        "setting": ["group_home", "shelter", "residential_treatment",
                                    "group_home"],
                        "town": ["Hartford", "Hartford", "Hamden", "Union"],
                        "capacity": [8, 10, 40, 6]})
    # child-days: F1 1000, F2 3000, F3 6000 (one spell clipped by the window), F4 none
    pl = pd.DataFrame({
        "placement_id": ["p1", "p2", "p3", "p4", "p5"],
        "child_id": ["a", "b", "c", "d", "e"],
        "setting": ["group_home", "shelter", "residential_treatment", "residential_treatment",
                    "foster_family"],
        "facility_id": ["F1", "F2", "F3", "F3", None],
        "town": ["Hartford"] * 5,
        "start": pd.to_datetime(["2010-01-01", "2010-01-01", "2009-01-01", "2010-01-01",
                                 "2010-01-01"]),
        "end": pd.to_datetime(["2012-09-27", None, "2011-01-01", "2023-09-01", None]),
    })
    ep = pd.DataFrame({
        "episode_id": ["e1", "e2", "e3", "e4", "e5", "e6"],
        "child_id": ["a", "a", "b", "c", "d", "f"],
        "began_at": pd.to_datetime(["2010-03-01", "2010-06-01", "2011-01-01", "2010-05-01",
                                    "2011-05-01", "2011-06-01"]),
        "identified_at": pd.to_datetime(["2010-03-02", "2010-06-02", "2011-01-02", "2010-05-02",
                                         "2011-05-02", "2011-06-02"]),
        "confirmed": [True, True, True, True, True, False],
        "status_at_time": ["placement"] * 6,
        "facility_id": ["F1", "F2", "F2", "F3", "F3", "F1"],
        "town": ["Hartford"] * 6,
    })
    return CaseData.from_frames(facilities=fac, placements=pl, episodes=ep,
                                meta={"study_start": "2010-01-01", "study_end": "2018-03-17"})


def test_facility_excess_hand_computed(facility_bundle):
    start, end = pd.Timestamp("2010-01-01"), pd.Timestamp("2012-09-26")
    fx = h.facility_excess(facility_bundle, start, end, adjust="holm")
    s = fx.summary.set_index("facility_id")
    days = (end - start).days + 1  # 1000
    assert days == 1000
    assert s.loc["F1", "child_days"] == 1000 and s.loc["F2", "child_days"] == 1000
    # F3: p3 2010-01-01..2011-01-01 (365 days) + p4 2010-01-01..window end (1000 days)
    assert s.loc["F3", "child_days"] == 365 + 1000
    assert "F4" not in s.index                                     # no child-days: not tested
    # first confirmed episode per child: a -> F1 (e1), b -> F2, c -> F3, d -> F3; f unconfirmed
    assert s["observed"].to_dict() == {"F1": 1, "F2": 1, "F3": 2} or \
        s.loc[["F1", "F2", "F3"], "observed"].tolist() == [1, 1, 2]
    rate = 4 / 3365
    np.testing.assert_allclose(s.loc[["F1", "F2", "F3"], "expected"],
                               np.array([1000, 1000, 1365]) * rate)
    p = stats.poisson.sf(np.array([1, 1, 2]) - 1, np.array([1000, 1000, 1365]) * rate)
    np.testing.assert_allclose(s.loc[["F1", "F2", "F3"], "p_value"], p)
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(s.loc[["F1", "F2", "F3"], "p_adjusted"],
                               multipletests(p, method="holm")[1])
    all_ = h.facility_excess(facility_bundle, start, end, count="all").summary
    assert all_.set_index("facility_id").loc["F2", "observed"] == 2  # a and b at F2


def test_facility_excess_flags_clear_excess_only(facility_bundle):
    from dmst_eval.casedata import CaseData

    rng = np.random.default_rng(0)
    nf = 40
    fac = pd.DataFrame({"facility_id": [f"F{i:02d}" for i in range(nf)],
                        "setting": ["group_home"] * nf, "town": ["Hartford"] * nf,
                        "capacity": [10] * nf})
    pl = pd.DataFrame({"placement_id": [f"p{i}" for i in range(nf)],
                       "child_id": [f"k{i}" for i in range(nf)], "setting": ["group_home"] * nf,
                       "facility_id": fac["facility_id"], "town": ["Hartford"] * nf,
                       "start": pd.Timestamp("2010-01-01"), "end": pd.Timestamp("2014-12-31")})
    lam = np.full(nf, 2.0)
    lam[0] = 20.0                                                  # one planted facility
    y = rng.poisson(lam)
    rows = [(f"F{i:02d}", f"v{i}_{j}") for i in range(nf) for j in range(y[i])]
    ep = pd.DataFrame({"episode_id": [f"e{k}" for k in range(len(rows))],
                       "child_id": [r[1] for r in rows],
                       "began_at": pd.Timestamp("2012-01-01"),
                       "identified_at": pd.Timestamp("2012-02-01"), "confirmed": True,
                       "status_at_time": "placement", "facility_id": [r[0] for r in rows],
                       "town": "Hartford"})
    cd = CaseData.from_frames(facilities=fac, placements=pl, episodes=ep,
                              meta={"study_start": "2010-01-01", "study_end": "2014-12-31"})
    for adj in ("holm", "bh"):
        fx = h.facility_excess(cd, adjust=adj)
        assert fx.flagged == ["F00"]
    ax = fx.plot()
    assert ax.get_xlabel().startswith("expected")


def test_funnel_limits_exact():
    lo, hi = h.facilities._funnel_limits(np.array([10.0, 100.0]), 0.95)
    # large expected: close to the normal approximation 1 ± 1.96/sqrt(E)
    assert hi[1] == pytest.approx(1 + 1.96 / 10, abs=0.02)
    assert lo[1] == pytest.approx(1 - 1.96 / 10, abs=0.02)
    # exact: the upper limit lies between the Poisson quantile and the one below
    r = stats.poisson.ppf(0.975, 10)
    assert (r - 1) / 10 <= hi[0] <= r / 10


# ---------------------------------------------------------------------------------------- maps
def test_maps_label_suppressed_and_outline_clusters(towns):
    rng = np.random.default_rng(4)
    ev = pd.DataFrame({"town": rng.choice(towns["town"], 300,
                                          p=towns["population_under18"] /
                                          towns["population_under18"].sum())})
    r = h.area_rates(ev)
    ax = r.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "suppressed (<5)" in labels
    assert r.summary["suppressed"].any()
    g = r.gdf
    sc = h.scan_statistic(g, "events", "population", permutations=99, seed=1)
    ax2 = sc.plot()
    assert len(ax2.texts) >= 1                                     # numbered clusters
    lm = h.local_moran(g, "rate", permutations=99, seed=1)
    ax3 = lm.plot()
    assert any("not significant" in t.get_text() for t in ax3.get_legend().get_texts())
    sm = h.smooth_rates(r, seed=1)
    assert sm.plot().get_xlabel().startswith("rank")
    m = r.explore()
    html = m.get_root().render()
    assert "suppressed (&lt;5)" in html or "suppressed (<5)" in html
    import matplotlib.pyplot as plt

    plt.close("all")


def test_victims_counts_each_child_once_by_home_or_episode_town():
    from dmst_eval.casedata import CaseData

    ch = pd.DataFrame({"child_id": ["a", "b", "c"], "home_town": ["Hartford", "Hamden", "Union"]})
    ep = pd.DataFrame({
        "episode_id": ["e1", "e2", "e3", "e4"], "child_id": ["a", "a", "b", "c"],
        "began_at": pd.to_datetime(["2012-01-01", "2013-01-01", "2012-05-01", "2012-05-01"]),
        "identified_at": pd.to_datetime(["2012-01-05", "2013-01-05", "2012-05-05",
                                         "2016-05-05"]),
        "confirmed": [True, True, True, True], "status_at_time": ["home"] * 4,
        "town": ["New Haven", "Bristol", "Hamden", "Union"]})
    cd = CaseData.from_frames(children=ch, episodes=ep,
                              meta={"study_start": "2008-01-01", "study_end": "2025-12-31"})
    v = h.victims(cd, "2012-01-01", "2014-12-31")
    assert sorted(v["town"]) == ["Hamden", "Hartford"]              # c identified in 2016
    v2 = h.victims(cd, "2012-01-01", "2014-12-31", place="episode_town")
    assert sorted(v2["town"]) == ["Hamden", "New Haven"]            # a's first episode
    r = h.area_rates(v).summary.set_index("town")
    assert r.loc["Hartford", "events"] == 1 and r["events"].sum() == 2


def test_scan_table_hides_small_cluster_counts(grid):
    y = np.zeros(36, dtype=int)
    y[0] = 3                                   # one small area with 3 cases: a tiny "cluster"
    y[20:30] = 5
    res = h.scan_statistic(grid.assign(y=y), "y", "pop", permutations=99, seed=1, id_col="cell")
    tab = res.table(suppress_below=5)
    small = res.clusters["cases"] < 5
    assert small.any()
    assert (tab.loc[small.to_numpy(), "cases"] == "<5").all()
    assert (tab.loc[small.to_numpy(), "relative_risk"] == "suppressed").all()
    assert (tab.loc[~small.to_numpy(), "cases"] == res.clusters.loc[~small, "cases"]).all()


def test_holm_equals_statsmodels_with_ties_and_ones():
    from statsmodels.stats.multitest import multipletests

    from dmst_eval.hotspots._util import _holm

    rng = np.random.default_rng(3)
    for p in (rng.uniform(size=40), np.array([0.01, 0.01, 0.2, 0.2, 1.0, 0.003]),
              np.array([0.5]), rng.uniform(0, 0.05, size=25).round(3)):
        np.testing.assert_array_equal(_holm(p), multipletests(p, method="holm")[1])
