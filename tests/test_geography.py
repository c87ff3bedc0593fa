"""Connecticut geography: towns, regions, town-name normalisation, weights, area-office override
and user boundary files."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from dmst_eval import geography as geo


def test_towns_reference_facts():
    t = geo.towns()
    assert len(t) == 169 and t["town"].is_unique and t["town_fips"].str.len().eq(10).all()
    assert int(t["population"].sum()) == 3_574_097
    assert int(t["population_under18"].sum()) == 817_015
    assert t.crs.to_epsg() == 4326
    assert set(t["dcf_region"]) == {f"Region {i}" for i in range(1, 7)}
    assert t["dcf_region"].notna().all() and t["area_office"].notna().all()
    assert t.loc[t.town == "Hartford", "dcf_region"].item() == "Region 4"
    assert t.loc[t.town == "Bridgeport", "dcf_region"].item() == "Region 1"
    assert t.loc[t.town == "Windham", "area_office"].item() == "Willimantic"
    assert t.county.value_counts().to_dict() == {
        "Hartford": 29, "Litchfield": 26, "New Haven": 27, "Fairfield": 23, "New London": 21,
        "Middlesex": 15, "Windham": 15, "Tolland": 13}
    # every office town is assigned to its own office
    for region, offices in geo.AREA_OFFICES.items():
        for o in offices:
            host = geo.OFFICE_HOST_TOWN.get(o, o)
            assert t.loc[t.town == host, "area_office"].item() == o
            assert t.loc[t.town == host, "dcf_region"].item() == region
    assert geo.town_names() == sorted(t["town"])


def test_regions_partition_the_state():
    r = geo.regions()
    assert list(r["region"]) == [f"Region {i}" for i in range(1, 7)]
    assert int(r["n_towns"].sum()) == 169
    assert int(r["population"].sum()) == 3_574_097
    assert int(r["population_under18"].sum()) == 817_015
    assert r.loc[r.region == "Region 3", "area_offices"].item() == "Middletown, Norwich, Willimantic"


def test_region4_approximation_reported():
    # nearest-office approximation vs the agency's own Region 4 (23 towns): documented gap
    assert geo.region4_check() == {"approximation": 26, "agency": 23, "difference": 3}


@pytest.mark.parametrize("raw, official", [
    ("  NEW   haven ", "New Haven"), ("new haven city", "New Haven"), ("Hartford, CT", "Hartford"),
    ("HARTFORD TOWN", "Hartford"), ("Town of West Hartford", "West Hartford"),
    ("W. Hartford", "West Hartford"), ("N Canaan", "North Canaan"), ("No. Stonington", "North Stonington"),
    ("So. Windsor", "South Windsor"), ("E Haddam", "East Haddam"), ("windsor-locks", "Windsor Locks"),
    ("Willimantic", "Windham"), ("Winsted", "Winchester"), ("Marlboro", "Marlborough"),
    ("Rockville", "Vernon"), ("Mystic", "Stonington"), ("Storrs", "Mansfield"),
    ("Prospect", "Prospect"), ("PROSPECT town", "Prospect"), ("Prospect, Conn.", "Prospect"),
])
def test_normalise_town_variants(raw, official):
    assert geo.normalise_town(raw) == official


@pytest.mark.parametrize("raw", ["Springfield", "", "CT", "Connecticut", None, np.nan, pd.NA,
                                 "Hartfort", "New York"])
def test_normalise_town_rejects(raw):
    assert geo.normalise_town(raw) is None


def test_every_official_name_round_trips_in_many_spellings():
    for t in geo.town_names():
        for v in (t, t.upper(), t.lower(), f" {t} town ", f"{t}, CT", f"Town of {t}"):
            assert geo.normalise_town(v) == t, v
    s = pd.Series(["hartford", None, "nowhere", "Willimantic"])
    assert geo.normalise_towns(s).tolist() == ["Hartford", pd.NA, pd.NA, "Windham"]


def test_weights_kinds():
    q = geo.weights("queen")
    assert q.n == 169 and q.s0 == 2 * 458 and min(q.cardinalities.values()) == 1
    assert q.cardinalities["Greenwich"] == 1 and q.cardinalities["Glastonbury"] == 10
    assert geo.weights("queen") is q  # cached
    r = geo.weights("rook")
    assert r.s0 == 2 * 448 and "Torrington" not in r.neighbors["Barkhamsted"]
    assert "Torrington" in q.neighbors["Barkhamsted"]
    k = geo.weights("knn", k=4)
    assert set(k.cardinalities.values()) == {4}
    d = geo.weights("distance")
    assert min(d.cardinalities.values()) >= 1 and d.n == 169
    assert d.islands == []
    with pytest.raises(ValueError, match="weights kind"):
        geo.weights("hexagon")


def test_weights_on_a_given_gdf():
    t = geo.towns()
    sub = t[t.dcf_region == "Region 6"]
    w = geo.weights("queen", gdf=sub)
    assert w.n == len(sub) and set(w.id_order) == set(sub.town)


def test_area_office_override_csv(tmp_path, monkeypatch):
    p = tmp_path / "offices.csv"
    p.write_text("town,area_office\nwest hartford,New Britain\nWillimantic,Norwich\n")
    a = geo.town_area_offices(p)
    row = a.set_index("town")
    assert row.loc["West Hartford", "area_office"] == "New Britain"
    assert row.loc["West Hartford", "dcf_region"] == "Region 6"
    assert row.loc["Windham", "area_office"] == "Norwich"
    # towns not listed keep the nearest-office assignment
    base = geo.town_area_offices().set_index("town")
    others = base.index.difference(["West Hartford", "Windham"])
    assert (row.loc[others, "area_office"] == base.loc[others, "area_office"]).all()
    t = geo.towns(p)
    assert t.loc[t.town == "West Hartford", "dcf_region"].item() == "Region 6"
    # the environment variable does the same
    monkeypatch.setenv("DMST_EVAL_AREA_OFFICES", str(p))
    assert geo.towns().set_index("town").loc["West Hartford", "dcf_region"] == "Region 6"
    monkeypatch.delenv("DMST_EVAL_AREA_OFFICES")
    assert geo.towns().set_index("town").loc["West Hartford", "dcf_region"] == "Region 4"


def test_caches_follow_edited_override_and_reference_folder(tmp_path, monkeypatch):
    import os
    import shutil

    p = tmp_path / "offices.csv"
    p.write_text("town,area_office\nWest Hartford,New Britain\n")
    assert geo.towns(p).set_index("town").loc["West Hartford", "dcf_region"] == "Region 6"
    p.write_text("town,area_office\nWest Hartford,Waterbury\n")  # edited in place
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert geo.town_area_offices(p).set_index("town").loc["West Hartford",
                                                         "dcf_region"] == "Region 5"
    assert geo.towns(p).set_index("town").loc["West Hartford", "dcf_region"] == "Region 5"
    # another reference folder (DMST_EVAL_REFERENCE) is read, not the cached default
    ref = tmp_path / "reference"
    shutil.copytree(geo.reference_dir(), ref)
    tab = pd.read_csv(ref / "ct_towns.csv", dtype=str)
    tab.loc[tab.town == "Andover", "population_2010"] = "4000"
    tab.to_csv(ref / "ct_towns.csv", index=False)
    assert geo.towns().set_index("town").loc["Andover", "population"] == 3303
    monkeypatch.setenv("DMST_EVAL_REFERENCE", str(ref))
    assert geo.towns().set_index("town").loc["Andover", "population"] == 4000
    monkeypatch.delenv("DMST_EVAL_REFERENCE")
    assert geo.towns().set_index("town").loc["Andover", "population"] == 3303


@pytest.mark.parametrize("content, match", [
    ("name,office\nHartford,Hartford\n", "missing column"),
    ("town,area_office\nSpringfield,Hartford\n", "Springfield"),
    ("town,area_office\nHartford,Boston\n", "Boston"),
])
def test_area_office_override_errors(tmp_path, content, match):
    p = tmp_path / f"bad{abs(hash(content))}.csv"
    p.write_text(content)
    with pytest.raises(ValueError, match=match):
        geo.town_area_offices(p)


def test_load_boundaries_by_name_any_crs_and_format(tmp_path):
    t = geo.towns()
    x = t[["town", "geometry"]].copy()
    x["town"] = x["town"].str.upper() + " town"
    x["score"] = np.arange(169)
    x.to_crs("EPSG:2234").to_file(tmp_path / "towns.gpkg")
    b = geo.load_boundaries(tmp_path / "towns.gpkg", town_col="town")
    assert len(b) == 169 and b.crs.to_epsg() == 4326
    assert list(b.columns[:2]) == ["town", "town_fips"] and b.columns[-1] == "geometry"
    assert b["town"].tolist() == t["town"].tolist()
    assert b["town_fips"].tolist() == t["town_fips"].tolist()
    # reprojected back: same area centroids (to ~1 m)
    c1 = b.to_crs(geo.CT_CRS).centroid
    c0 = t.to_crs(geo.CT_CRS).centroid
    assert float(c1.distance(c0).max()) < 5  # feet
    assert b.set_index("town").loc["Andover", "score"] == 0


def test_load_boundaries_by_fips_subset_and_dissolve(tmp_path):
    t = geo.towns()
    sub = t[t.county == "Hartford"][["town_fips", "geometry"]].copy()
    # 2022+ planning-region GEOIDs (county part changed, last five digits kept)
    sub["town_fips"] = "09110" + sub["town_fips"].str[-5:]
    extra = t[t.town == "Avon"][["town_fips", "geometry"]].copy()
    extra["town_fips"] = extra["town_fips"].str[-5:]  # 5-digit code, duplicate town
    extra["geometry"] = extra.geometry.translate(0.0001, 0)
    pd.concat([sub, extra]).to_file(tmp_path / "hartford.geojson")
    b = geo.load_boundaries(tmp_path / "hartford.geojson", town_col="town_fips")
    assert len(b) == 29 and b["town"].is_unique
    assert set(b["town"]) == set(t.loc[t.county == "Hartford", "town"])
    assert b["town_fips_source"].str.startswith("09110").all()


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_load_boundaries_errors(tmp_path):
    t = geo.towns()
    x = t[["town", "geometry"]].head(5).copy()
    x.loc[x.index[0], "town"] = "Springfield"
    x.loc[x.index[1], "town"] = "Hartfort"
    x.to_file(tmp_path / "bad.geojson")
    with pytest.raises(ValueError, match=r"2 feature\(s\).*\['Hartfort', 'Springfield'\]"):
        geo.load_boundaries(tmp_path / "bad.geojson", town_col="town")
    with pytest.raises(ValueError, match="no column 'NAME'"):
        geo.load_boundaries(tmp_path / "bad.geojson", town_col="NAME")
    y = t[["town", "geometry"]].head(3).copy().set_crs(None, allow_override=True)
    y.to_file(tmp_path / "nocrs.shp")
    with pytest.raises(ValueError, match="coordinate reference system"):
        geo.load_boundaries(tmp_path / "nocrs.shp", town_col="town")
