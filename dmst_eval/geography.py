"""Connecticut towns, counties and DCF regions; boundaries; spatial weights.

Reference data ship with the package, in ``dmst_eval/data/reference/`` (package data, found with
:mod:`importlib.resources`, so an installed wheel works from any folder; see its README for
sources and licences):
169 town polygons (US Census cartographic boundaries, public domain), 2010 Census population and
2010 under-18 population (derived from MGGG precinct data, ODbL 1.0).

DCF regions are assigned by an approximation documented in :func:`town_area_offices`: each town
goes to its nearest DCF area office (centroid to centroid). A user can override the assignment with
a CSV of ``town,area_office``.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

#: DCF regions and their area offices (the office's host town in brackets where it differs).
AREA_OFFICES: dict[str, tuple[str, ...]] = {
    "Region 1": ("Bridgeport", "Norwalk"),
    "Region 2": ("Milford", "New Haven"),
    "Region 3": ("Middletown", "Norwich", "Willimantic"),
    "Region 4": ("Hartford", "Manchester"),
    "Region 5": ("Danbury", "Torrington", "Waterbury"),
    "Region 6": ("Meriden", "New Britain"),
}
#: Area offices named after a place that is not itself one of the 169 towns.
OFFICE_HOST_TOWN = {"Willimantic": "Windham"}
#: Number of towns the agency itself lists for Region 4 (used to report how close the
#: nearest-office approximation comes).
AGENCY_REGION4_TOWN_COUNT = 23

#: Projected CRS used for distances and areas (NAD83 / Connecticut, ftUS).
CT_CRS = "EPSG:2234"


def reference_dir() -> Path:
    """Folder of the shipped reference data (override with ``DMST_EVAL_REFERENCE``).

    The files are package data (``dmst_eval/data/reference``), located with
    :mod:`importlib.resources`: the same in a source checkout, an editable install or a wheel.
    """
    env = os.environ.get("DMST_EVAL_REFERENCE")
    if env:
        return Path(env)
    from importlib.resources import files

    return Path(str(files("dmst_eval") / "data" / "reference"))


def _file_key(path) -> tuple[str, int, int]:
    """A file's absolute path, size and modification time: the key of the caches below, so that
    they follow ``DMST_EVAL_REFERENCE`` and see a file edited in place."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:  # reading it will raise the clear error
        return (str(p), -1, -1)
    return (str(p), st.st_size, st.st_mtime_ns)


def _town_table() -> pd.DataFrame:
    return _read_town_table(_file_key(reference_dir() / "ct_towns.csv"))


@functools.lru_cache(maxsize=4)
def _read_town_table(key: tuple) -> pd.DataFrame:
    return pd.read_csv(key[0], dtype={"town_fips": str, "cousub_fips": str})


def town_table() -> pd.DataFrame:
    """The shipped towns reference table (``ct_towns.csv``, no geometry), cached per file key.

    Shared with other modules (e.g. :mod:`dmst_eval.tracking`); treat it as read-only.
    """
    return _town_table()


def reference_key(override=None) -> tuple:
    """Key of the reference data in use: the towns file and the area-office override (path,
    size and modification time). A cache built from :func:`town_table` and
    :func:`town_area_offices` stays valid while this key is unchanged."""
    return (_file_key(reference_dir() / "ct_towns.csv"), _override_key(override))


def office_to_region() -> dict[str, str]:
    return {office: region for region, offices in AREA_OFFICES.items() for office in offices}


def _override_key(override) -> tuple | None:
    override = override or os.environ.get("DMST_EVAL_AREA_OFFICES")
    return _file_key(override) if override else None


@functools.lru_cache(maxsize=4)
def _assignment(override_key: tuple | None, table_key: tuple) -> pd.DataFrame:
    towns = _read_town_table(table_key)
    override = override_key[0] if override_key else None
    # centroids in a projected CRS (feet) for distances
    import pyproj

    tr = pyproj.Transformer.from_crs("EPSG:4326", CT_CRS, always_xy=True)
    x, y = tr.transform(towns["centroid_lon"].to_numpy(), towns["centroid_lat"].to_numpy())
    idx = {t: i for i, t in enumerate(towns["town"])}
    offices = list(office_to_region())
    ox = np.array([x[idx[OFFICE_HOST_TOWN.get(o, o)]] for o in offices])
    oy = np.array([y[idx[OFFICE_HOST_TOWN.get(o, o)]] for o in offices])
    d = np.hypot(x[:, None] - ox[None, :], y[:, None] - oy[None, :])
    nearest = np.array(offices)[d.argmin(axis=1)]
    out = pd.DataFrame({"town": towns["town"], "area_office": nearest})
    if override:
        ov = pd.read_csv(override, dtype=str)
        missing_cols = {"town", "area_office"} - set(ov.columns)
        if missing_cols:
            raise ValueError(
                f"area-office override {override!r}: missing column(s) {sorted(missing_cols)}; "
                "expected a CSV with columns town,area_office"
            )
        ov["town_norm"] = [normalise_town(t) for t in ov["town"]]
        bad_town = ov.loc[ov["town_norm"].isna(), "town"].tolist()
        bad_office = sorted(set(ov["area_office"]) - set(offices))
        if bad_town or bad_office:
            raise ValueError(
                f"area-office override {override!r}: unknown town(s) {bad_town[:10]} "
                f"and/or unknown area office(s) {bad_office[:10]}; offices are {offices}"
            )
        m = dict(zip(ov["town_norm"], ov["area_office"]))
        out["area_office"] = [m.get(t, o) for t, o in zip(out["town"], out["area_office"])]
    out["dcf_region"] = out["area_office"].map(office_to_region())
    return out


def town_area_offices(override: str | os.PathLike | None = None) -> pd.DataFrame:
    """Town → DCF area office and region.

    No public town-to-office list was at hand, so each town is assigned to the nearest area office
    (distance between town centroids in EPSG:2234). This is an approximation: the agency's own
    Region 4 lists 23 towns (see :func:`region4_check`). Pass ``override`` (CSV with columns
    ``town,area_office``) or set ``DMST_EVAL_AREA_OFFICES`` to use the agency's list.
    """
    return _assignment(_override_key(override),
                       _file_key(reference_dir() / "ct_towns.csv")).copy()


def region4_check() -> dict[str, int]:
    """How close the nearest-office approximation comes to the agency's Region 4 (23 towns)."""
    n = int((town_area_offices()["dcf_region"] == "Region 4").sum())
    return {"approximation": n, "agency": AGENCY_REGION4_TOWN_COUNT,
            "difference": n - AGENCY_REGION4_TOWN_COUNT}


@functools.lru_cache(maxsize=4)
def _towns_gdf(override_key: tuple | None, table_key: tuple, geometry_key: tuple):
    import geopandas as gpd

    gdf = gpd.read_file(geometry_key[0])
    tab = _read_town_table(table_key)
    gdf = gdf[["town_fips", "geometry"]].merge(tab, on="town_fips", how="left")
    assign = _assignment(override_key, table_key)
    gdf = gdf.merge(assign, on="town", how="left")
    gdf = gdf.rename(columns={"population_2010": "population",
                              "population_under18_2010": "population_under18"})
    cols = ["town", "town_fips", "county", "dcf_region", "area_office", "population",
            "population_under18", "centroid_lat", "centroid_lon", "land_area_sq_km", "geometry"]
    gdf = gdf[cols].sort_values("town").reset_index(drop=True)
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs="EPSG:4326")


def towns(override: str | os.PathLike | None = None):
    """The 169 Connecticut towns as a GeoDataFrame (EPSG:4326), sorted by town name.

    Columns: town, town_fips, county, dcf_region, area_office, population (2010 Census),
    population_under18 (2010, MGGG-derived, ODbL), centroid_lat, centroid_lon, land_area_sq_km,
    geometry.

    Examples
    --------
    >>> from dmst_eval import geography
    >>> t = geography.towns()
    >>> len(t), int(t.population.sum())
    (169, 3574097)
    """
    ref = reference_dir()
    return _towns_gdf(_override_key(override), _file_key(ref / "ct_towns.csv"),
                      _file_key(ref / "ct_towns.geojson")).copy()


def town_names() -> list[str]:
    """The 169 official town names, sorted."""
    return sorted(_town_table()["town"].tolist())


def regions():
    """The six DCF regions: region, area_offices, n_towns, population, population_under18, geometry."""
    t = towns()
    g = t.dissolve(by="dcf_region", aggfunc={"town": "count", "population": "sum",
                                             "population_under18": "sum"})
    g = g.rename(columns={"town": "n_towns"}).reset_index().rename(columns={"dcf_region": "region"})
    g["area_offices"] = g["region"].map(lambda r: ", ".join(AREA_OFFICES[r]))
    return g[["region", "area_offices", "n_towns", "population", "population_under18", "geometry"]]


_SUFFIX = re.compile(r"\s+(town|city|borough|village)$")
_VARIANTS = {
    "marlboro": "Marlborough",
    "n canaan": "North Canaan",
    "no canaan": "North Canaan",
    "willimantic": "Windham",
    "winsted": "Winchester",
    "danielson": "Killingly",
    "jewett city": "Griswold",
    "mystic": "Stonington",
    "putnam city": "Putnam",
    "groton city": "Groton",
    "new haven city": "New Haven",
    "stafford springs": "Stafford",
    "storrs": "Mansfield",
    "rockville": "Vernon",
    "moosup": "Plainfield",
    "unionville": "Farmington",
    "collinsville": "Canton",
    "north grosvenordale": "Thompson",
}
_ABBREV = [(re.compile(r"^n\.?\s+"), "north "), (re.compile(r"^s\.?\s+"), "south "),
           (re.compile(r"^e\.?\s+"), "east "), (re.compile(r"^w\.?\s+"), "west "),
           (re.compile(r"^no\.?\s+"), "north "), (re.compile(r"^so\.?\s+"), "south "),
           (re.compile(r"^st\.?\s+"), "saint ")]


def _name_index() -> dict[str, str]:
    return _build_name_index(_file_key(reference_dir() / "ct_towns.csv"))


@functools.lru_cache(maxsize=4)
def _build_name_index(table_key: tuple) -> dict[str, str]:
    idx = {}
    for t in _read_town_table(table_key)["town"]:
        idx[_key(t)] = t
    for k, v in _VARIANTS.items():
        idx[_key(k)] = v
    return idx


def _key(name: str) -> str:
    s = str(name).strip().lower().replace("-", " ").replace("_", " ")
    s = re.sub(r"\s+", " ", s)
    s = re.sub(r"(?:,\s*|\s+)(?:ct|conn|connecticut)\.?$", "", s).strip()
    s = _SUFFIX.sub("", s)
    s = re.sub(r"^(?:town|city|borough) of\s+", "", s)
    for pat, rep in _ABBREV:
        s = pat.sub(rep, s)
    return s.replace(".", "").replace("'", "")


def normalise_town(name) -> str | None:
    """Official Connecticut town name for ``name``, or ``None`` if it is not a CT town.

    Case, whitespace, punctuation, "town"/"city" suffixes, ", CT", abbreviations (N./S./E./W.)
    and common village or variant names (Willimantic → Windham, Winsted → Winchester,
    Marlboro → Marlborough, …) are accepted.

    Examples
    --------
    >>> normalise_town("  NEW   haven ")
    'New Haven'
    >>> normalise_town("Willimantic")
    'Windham'
    >>> normalise_town("Springfield") is None
    True
    """
    return _lookup_town(name, _name_index())


def _lookup_town(name, index: dict[str, str]) -> str | None:
    """:func:`normalise_town` with the name index given (fetched once per call of
    :func:`normalise_towns`)."""
    if name is None or (isinstance(name, float) and np.isnan(name)) or name is pd.NA:
        return None
    return index.get(_key(name))


def normalise_towns(values: pd.Series) -> pd.Series:
    """Vectorised :func:`normalise_town` over a Series (maps unique values once).

    Examples
    --------
    >>> normalise_towns(pd.Series(["hartford", None, "Willimantic"])).tolist()
    ['Hartford', <NA>, 'Windham']
    """
    index = _name_index()  # (locates and stats the reference file: once, not per name)
    codes, uniq = pd.factorize(values.to_numpy(dtype=object))  # missing values: code -1
    names = np.array([_lookup_town(u, index) for u in uniq] + [None], dtype=object)
    return pd.Series(pd.array(names[codes], dtype="string"), index=values.index,
                     name=values.name)


_WEIGHTS_CACHE: dict = {}
_WEIGHTS_CACHE_SIZE = 16  # in process only; the oldest set of weights goes first


def weights(kind: str = "queen", gdf=None, ids: str = "town", **kw):
    """Spatial weights (libpysal) for the CT towns or a given GeoDataFrame, built once and cached.

    Parameters
    ----------
    kind : {"queen", "rook", "knn", "distance"}
        Contiguity (queen/rook), k nearest neighbours (``k=``, default 5) or distance band
        (``threshold=`` in the projected CRS's units, default: smallest distance that gives every
        area a neighbour).
    gdf : GeoDataFrame, optional
        Areas to use; default: the 169 CT towns.
    ids : str
        Id column of ``gdf`` (used as the weights' ids, in ``gdf`` order).
    **kw
        Passed to the libpysal constructor.

    Returns
    -------
    libpysal.weights.W, row-standardised is *not* applied (set ``w.transform`` yourself).
    """
    from libpysal import weights as lw

    if gdf is None:
        gdf = towns()
        cache_key = (kind, ids, tuple(sorted(kw.items())))
    else:
        # the same areas again (a brief's town statistics, region after region): keyed by the
        # ids and the geometries themselves, so any other map gets its own weights
        cache_key = _areas_key(gdf, kind, ids, kw)
    if cache_key is not None and cache_key in _WEIGHTS_CACHE:
        w = _WEIGHTS_CACHE[cache_key]
        w.transform = "o"
        return w
    g = gdf.reset_index(drop=True)
    id_list = g[ids].tolist()
    if kind in ("queen", "rook"):
        cls = lw.Queen if kind == "queen" else lw.Rook
        w = cls.from_dataframe(g, ids=id_list, use_index=False, silence_warnings=True, **kw) \
            if _accepts_ids(cls) else cls.from_dataframe(g, idVariable=ids, **kw)
    elif kind in ("knn", "distance"):
        proj = g.to_crs(CT_CRS) if g.crs is not None and g.crs.is_geographic else g
        pts = proj.geometry.centroid
        coords = np.column_stack([pts.x, pts.y])
        if kind == "knn":
            k = kw.pop("k", 5)
            w = lw.KNN.from_array(coords, k=k, ids=id_list, **kw)
        else:
            thr = kw.pop("threshold", None)
            if thr is None:
                thr = lw.min_threshold_distance(coords) * 1.0000001
            w = lw.DistanceBand.from_array(coords, threshold=thr, ids=id_list, binary=True,
                                           silence_warnings=True, **kw)
    else:
        raise ValueError(f"weights kind must be one of queen, rook, knn, distance; got {kind!r}")
    if cache_key is not None:
        _WEIGHTS_CACHE[cache_key] = w
        while len(_WEIGHTS_CACHE) > _WEIGHTS_CACHE_SIZE:
            _WEIGHTS_CACHE.pop(next(iter(_WEIGHTS_CACHE)))
    return w


def _areas_key(gdf, kind: str, ids: str, kw: dict):
    """Cache key of weights built from ``gdf``: kind, options, the id column's values in order
    and a hash of the geometries and CRS; None when ``gdf`` cannot be keyed."""
    import hashlib

    try:
        kw_key = tuple(sorted((k, repr(v)) for k, v in kw.items()))
        h = hashlib.sha256(b"".join(gdf.geometry.to_wkb()))
        h.update(repr((tuple(map(str, gdf[ids])), str(gdf.crs))).encode())
    except Exception:  # an unusual frame: no caching
        return None
    return (kind, ids, kw_key, h.hexdigest())


def _accepts_ids(cls) -> bool:
    import inspect

    return "ids" in inspect.signature(cls.from_dataframe).parameters


def _match_town_values(values: pd.Series) -> pd.Series:
    """Official town name for each value: a town name (any accepted variant) or a FIPS code.

    Codes accepted: the 10-digit county-subdivision GEOID (``0900337070``), the 5-digit
    county-subdivision FIPS (``37070``) and the 2022+ planning-region GEOIDs (``0911037070``:
    the last five digits are the same county-subdivision code).
    """
    tab = _town_table()
    by_geoid = dict(zip(tab["town_fips"], tab["town"]))
    by_cousub = dict(zip(tab["cousub_fips"].str.zfill(5), tab["town"]))
    txt = values.astype("string").str.strip()
    digits = txt.str.fullmatch(r"\d+").fillna(False).to_numpy(dtype=bool)
    out = normalise_towns(values.astype("object").where(~digits, None))
    code = txt[digits]
    from_geoid = code.map(by_geoid)
    from_cousub = code.str.zfill(5).str[-5:].map(by_cousub).where(code.str.len().isin([5, 10]))
    out[digits] = from_geoid.fillna(from_cousub).astype("string")
    return out


def load_boundaries(path, town_col: str = "town"):
    """Read a user's own town boundary file and match it to the 169 Connecticut towns.

    Parameters
    ----------
    path : str or path-like
        Any file geopandas can read (GeoPackage, shapefile, GeoJSON, FlatGeobuf, zipped
        shapefile, ...).
    town_col : str
        Column holding the town: a name (case, spacing, "town"/"city" suffixes, abbreviations and
        common village names are accepted, see :func:`normalise_town`) or a FIPS code (10-digit
        county-subdivision GEOID, 5-digit county-subdivision code, or a 2022+ planning-region
        GEOID).

    Returns
    -------
    GeoDataFrame
        In EPSG:4326, sorted by town, with ``town`` (official name) and ``town_fips`` first, then
        the file's other columns (the original ``town_col`` is kept as ``<town_col>_source`` when
        its name is ``town`` or ``town_fips``), then ``geometry``. Several features for one town are dissolved
        into one (first value of each other column kept). The file may cover only some towns.

    Raises
    ------
    ValueError
        If ``town_col`` is missing, the file has no coordinate reference system, or some features
        do not match a Connecticut town (all unmatched values are listed).

    Examples
    --------
    >>> import os, tempfile
    >>> from dmst_eval import geography
    >>> path = os.path.join(tempfile.mkdtemp(), "my_towns.gpkg")
    >>> geography.towns()[["town", "geometry"]].rename(columns={"town": "NAME"}).to_file(path)
    >>> gdf = geography.load_boundaries(path, town_col="NAME")
    >>> len(gdf)
    169
    """
    import geopandas as gpd

    gdf = gpd.read_file(path)
    if town_col not in gdf.columns:
        raise ValueError(f"{path}: no column {town_col!r}; columns are "
                         f"{[c for c in gdf.columns if c != gdf.geometry.name]}")
    if gdf.crs is None:
        raise ValueError(f"{path}: the file has no coordinate reference system (CRS); set it "
                         "(for example with GeoDataFrame.set_crs) and save it again")
    matched = _match_town_values(gdf[town_col])
    unmatched = gdf.loc[matched.isna().to_numpy(), town_col]
    if len(unmatched):
        names = sorted({str(v) for v in unmatched})
        raise ValueError(
            f"{path}: {len(unmatched)} feature(s) in column {town_col!r} do not match a "
            f"Connecticut town by name or FIPS code: {names}")
    gdf = gdf.to_crs("EPSG:4326")
    src = f"{town_col}_source" if town_col in ("town", "town_fips") else town_col
    gdf = gdf.rename(columns={town_col: src})
    gdf["town"] = matched.to_numpy(dtype=object)
    if gdf["town"].duplicated().any():
        other = [c for c in gdf.columns if c not in ("town", gdf.geometry.name)]
        gdf = gdf.dissolve(by="town", aggfunc={c: "first" for c in other} or "first",
                           as_index=False)
    fips = dict(zip(_town_table()["town"], _town_table()["town_fips"]))
    gdf["town_fips"] = gdf["town"].map(fips)
    geom = gdf.geometry.name
    cols = ["town", "town_fips"] + [c for c in gdf.columns
                                    if c not in ("town", "town_fips", geom)] + [geom]
    gdf = gdf[cols].sort_values("town").reset_index(drop=True)
    return gpd.GeoDataFrame(gdf, geometry=geom, crs="EPSG:4326")
