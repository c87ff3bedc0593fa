"""Library-wide conventions (issue 17): one window rule, one error family, one set of names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dmst_eval import hotspots, recidivism, risk
from dmst_eval.errors import InputError

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def cd():
    from dmst_eval.synthetic import generate

    return generate(seed=1)


def _first_confirmed(cd) -> pd.Series:
    ep = cd.episodes[cd.episodes["confirmed"].fillna(False).astype(bool)]
    return ep.groupby("child_id", observed=True)["identified_at"].min()


# ---------------------------------------------------------------------------------------------
# 3. One window rule: start and end are whole days, both inclusive
# ---------------------------------------------------------------------------------------------
def test_risk_window_end_is_a_whole_inclusive_day(cd):
    first = _first_confirmed(cd)
    in_2015 = first[(first >= "2015-01-01") & (first < "2016-01-01")].sort_values()
    t = in_2015.iloc[len(in_2015) // 2]                  # an identification with a time of day
    assert t != t.normalize()
    day = t.normalize()
    a = risk.analysis_frame(cd, "2015-01-01", str(day.date()), population="all")
    b = risk.analysis_frame(cd, "2015-01-01", f"{day.date()} 23:59", population="all")
    assert a["victim"].sum() == b["victim"].sum()
    # hand count: first confirmed identification in [1 Jan 2015, end of `day`], under 18 at start
    birth = cd.children.set_index("child_id")["birth_date"].reindex(first.index)
    young = (pd.Timestamp("2015-01-01") - birth).dt.days / 365.25 < 18
    want = int(((first >= "2015-01-01") & (first < day + DAY) & young).sum())
    assert a["victim"].sum() == want
    assert a.set_index("child_id").loc[in_2015.index[len(in_2015) // 2], "victim"] == 1


def test_recurrent_frame_and_awol_timing_include_the_end_day(cd):
    first = _first_confirmed(cd)
    t = first[(first >= "2014-01-01") & (first < "2015-01-01")].sort_values().iloc[5]
    day = str(t.normalize().date())
    rf = recidivism.recurrent_frame(cd, "2012-01-01", day)
    rf2 = recidivism.recurrent_frame(cd, "2012-01-01", f"{day} 23:59")
    pd.testing.assert_frame_equal(rf, rf2)
    assert first.index[first == t][0] in set(rf["child_id"])      # identified on the end day
    # follow-up runs to the end of the last day (midnight after it) unless the child aged out
    last = rf.groupby("child_id").tail(1).set_index("child_id")
    open_ = last[last["aged_out"] == 0]
    t0 = first.reindex(open_.index)
    np.testing.assert_allclose(open_["stop"], (pd.Timestamp(day) + DAY - t0) / DAY)

    ep = cd.episodes[cd.episodes["confirmed"].fillna(False).astype(bool)]
    began = ep["began_at"].sort_values()
    b = began[(began >= "2014-01-01")].iloc[3]
    end = str(b.normalize().date())
    r1 = recidivism.awol_timing(cd, "2012-01-01", end, min_events=10**6)
    r2 = recidivism.awol_timing(cd, "2012-01-01", f"{end} 23:59", min_events=10**6)
    n = r1.summary.loc["share_episodes_during_awol", "denominator"]
    assert n == r2.summary.loc["share_episodes_during_awol", "denominator"]
    assert n == ((began >= "2012-01-01") & (began < b.normalize() + DAY)).sum()


def test_hotspots_window_matches_the_rule(cd):
    ev = hotspots.case_events(cd, "2015-01-01", "2015-11-22")
    ev2 = hotspots.case_events(cd, "2015-01-01 08:00", "2015-11-22 23:59")
    assert len(ev) == len(ev2)
    ep = cd.episodes[cd.episodes["confirmed"].fillna(False).astype(bool)]
    d = ep["identified_at"]
    assert len(ev) == ((d >= "2015-01-01") & (d < "2015-11-23")).sum()
    with pytest.raises(InputError, match="before start"):
        hotspots.case_events(cd, "2015-02-01", "2015-01-31")


# ---------------------------------------------------------------------------------------------
# 5. One error family: every public function rejects a missing column with an InputError
#    that names it
# ---------------------------------------------------------------------------------------------
def _without(cd, table, column):
    import copy

    cd2 = copy.copy(cd)
    cd2.tables = dict(cd.tables)
    cd2.tables[table] = cd.tables[table].drop(columns=[column])
    return cd2


@pytest.fixture(scope="module")
def grid():
    import geopandas as gpd
    from shapely.geometry import box

    cells = [box(i, j, i + 1, j + 1) for j in range(4) for i in range(4)]
    rng = np.random.default_rng(3)
    return gpd.GeoDataFrame({"cell": [f"c{i}" for i in range(16)],
                             "pop": rng.integers(500, 5000, 16).astype(float),
                             "y": rng.poisson(5, 16).astype(float)}, geometry=cells)


@pytest.fixture(scope="module")
def surv():
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame({"child_id": np.repeat(np.arange(20), 3).astype(str),
                         "start": np.tile([0.0, 1.0, 2.0], 20), "stop": np.tile([1.0, 2.0, 3.0], 20),
                         "event": rng.binomial(1, 0.3, n), "x": rng.normal(size=n),
                         "duration": rng.uniform(1, 10, n), "cause": rng.integers(0, 3, n),
                         "event_number": 1, "aged_out": 0, "t": rng.binomial(1, 0.5, n),
                         "y": rng.binomial(1, 0.3, n)})


def _cases():
    from dmst_eval import evaluation as ev

    return {
        # name: (function of the fixtures -> call, missing column name)
        "risk.analysis_frame": (lambda f: risk.analysis_frame(
            _without(f["cd"], "children", "lgbtq")), "lgbtq"),
        "risk.screening_features": (lambda f: risk.screening_features(
            _without(f["cd"], "placements", "setting"), f["frame"]), "setting"),
        "risk.fit_risk_model": (lambda f: risk.fit_risk_model(f["surv"], "y", ["x", "nope"]),
                                "nope"),
        "risk.points_score": (lambda f: risk.points_score(f["surv"], {"nope": 1.0}), "nope"),
        "risk.wiser_like_score": (lambda f: risk.wiser_like_score(f["surv"]),
                                  "runaway_past_year_under15"),
        "hotspots.case_events": (lambda f: hotspots.case_events(
            _without(f["cd"], "episodes", "identified_at")), "identified_at"),
        "hotspots.victims": (lambda f: hotspots.victims(
            _without(f["cd"], "children", "home_town")), "home_town"),
        "hotspots.area_rates": (lambda f: hotspots.area_rates(f["surv"], by="nope"), "nope"),
        "hotspots.global_moran": (lambda f: hotspots.global_moran(
            f["grid"], "nope", id_col="cell", permutations=9), "nope"),
        "hotspots.local_moran": (lambda f: hotspots.local_moran(
            f["grid"], "nope", id_col="cell", permutations=9), "nope"),
        "hotspots.local_gi_star": (lambda f: hotspots.local_gi_star(
            f["grid"], "nope", id_col="cell", permutations=9), "nope"),
        "hotspots.scan_statistic": (lambda f: hotspots.scan_statistic(
            f["grid"], "nope", "pop", permutations=9, id_col="cell"), "nope"),
        "hotspots.facility_excess": (lambda f: hotspots.facility_excess(
            _without(f["cd"], "placements", "facility_id")), "facility_id"),
        "recidivism.recurrent_frame": (lambda f: recidivism.recurrent_frame(
            _without(f["cd"], "awol_episodes", "end")), "end"),
        "recidivism.first_event_frame": (lambda f: recidivism.first_event_frame(
            f["surv"].drop(columns="aged_out")), "aged_out"),
        "recidivism.kaplan_meier": (lambda f: recidivism.kaplan_meier(
            f["surv"], "nope", "event"), "nope"),
        "recidivism.fit_cox": (lambda f: recidivism.fit_cox(f["surv"], "stop", "event",
                                                            ["nope"]), "nope"),
        "recidivism.marginal_frame": (lambda f: recidivism.marginal_frame(
            f["surv"], keep=["nope"]), "nope"),
        "recidivism.mean_cumulative_function": (lambda f: recidivism.mean_cumulative_function(
            f["surv"], group="nope"), "nope"),
        "recidivism.cumulative_incidence": (lambda f: recidivism.cumulative_incidence(
            f["surv"], cause="nope"), "nope"),
        "recidivism.awol_timing": (lambda f: recidivism.awol_timing(
            _without(f["cd"], "episodes", "status_at_time")), "status_at_time"),
        "evaluation.iptw_effect": (lambda f: ev.iptw_effect(f["surv"], "t", "y", ["nope"]),
                                   "nope"),
        "evaluation.pre_post": (lambda f: ev.pre_post(f["surv"], pre="nope"), None),
        "evaluation.service_frame": (lambda f: ev.service_frame(
            _without(f["cd"], "services", "referred_at")), "referred_at"),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_every_public_function_names_a_missing_column(name, cd, surv, grid):
    fn, col = _cases()[name]
    frame = risk.analysis_frame(cd, "2015-01-01", "2015-12-31")
    with pytest.raises(InputError) as e:
        fn({"cd": cd, "surv": surv, "grid": grid, "frame": frame})
    if col is not None:
        assert e.value.column == col, str(e.value)
        assert col in str(e.value)
    else:
        assert e.value.column is not None and e.value.column in str(e.value)


# ---------------------------------------------------------------------------------------------
# 6. One set of names, checked by walking the public API
# ---------------------------------------------------------------------------------------------
API_MODULES = ("risk", "hotspots", "recidivism", "evaluation", "tracking", "rba")
FORBIDDEN = {"conf_level": "level", "conf": "level", "ci_level": "level", "nsim": "permutations",
             "n_permutations": "permutations", "n_obs_min": "min_n_obs"}
# alpha is a significance threshold for flagging areas/facilities, never a confidence level
ALPHA_OK = {"hotspots.local_moran", "hotspots.local_gi_star", "hotspots.facility_excess"}
# smooth_rates draws from the posterior (not replications under a null): n_sim is its word
N_SIM_OK = {"hotspots.smooth_rates"}
NOT_RESULTS = {"InputError", "SeparationWarning", "Measure", "TrackingInputError",
               "RBAInputError"}


def _public():
    import importlib
    import inspect

    for m in API_MODULES:
        mod = importlib.import_module(f"dmst_eval.{m}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{m}.{name}", obj


def test_public_parameter_names_follow_the_conventions():
    import inspect

    problems = []
    for qual, obj in _public():
        if inspect.isclass(obj):
            if not issubclass(obj, BaseException) and qual.split(".")[1] not in NOT_RESULTS \
                    and not qual.endswith("Result"):
                problems.append(f"{qual}: result classes end in 'Result'")
            continue
        params = inspect.signature(obj).parameters
        for p in params.values():
            if p.name in FORBIDDEN:
                problems.append(f"{qual}({p.name}=): use {FORBIDDEN[p.name]}=")
            if p.name == "alpha" and qual not in ALPHA_OK:
                problems.append(f"{qual}(alpha=): a confidence level is level=")
            if p.name == "n_sim" and qual not in N_SIM_OK:
                problems.append(f"{qual}(n_sim=): Monte Carlo replications are permutations=")
            if p.name == "level" and p.default != 0.95:
                problems.append(f"{qual}(level={p.default}): default 0.95")
            if p.name == "missing" and p.default != "raise":
                problems.append(f"{qual}(missing={p.default!r}): the default is 'raise'")
        names = list(params)
        if names and names[0] == "cd":
            order = [n for n in ("cd", "start", "end", "region") if n in names]
            if [n for n in names if n in order] != order or names[:len(order)] != order:
                problems.append(f"{qual}{tuple(names[:5])}: argument order (cd, start, end, "
                                "region)")
    assert problems == []


def test_renamed_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="level="):
        lo, hi = hotspots.garwood_ci([5], conf_level=0.9)
    np.testing.assert_allclose((lo, hi), hotspots.garwood_ci([5], level=0.9))
    with pytest.warns(DeprecationWarning, match="level="):
        r = risk.roc_auc([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9], alpha=0.1)
    r2 = risk.roc_auc([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9], level=0.9)
    assert (r.ci_lower, r.ci_upper) == (r2.ci_lower, r2.ci_upper)
    with pytest.warns(DeprecationWarning, match="InputError"):
        assert risk.RiskDataError is InputError
    with pytest.warns(DeprecationWarning, match="RiskModelResult"):
        assert risk.RiskModel is risk.RiskModelResult
    with pytest.raises(InputError, match="give level= only"):
        risk.roc_auc([0, 1], [0.1, 0.9], alpha=0.1, level=0.9)


def test_results_report_sample_size_as_n_obs(surv):
    from dmst_eval import evaluation as ev

    cox = recidivism.fit_cox(surv, "stop", "event", ["x"], entry="start")
    assert cox.n_obs == len(surv)
    d = surv.assign(x2=np.where(np.arange(len(surv)) < 3, np.nan, surv["x"]))
    r = ev.iptw_effect(d, "t", "y", ["x2"], missing="drop")
    assert (r.n_obs, r.n_dropped) == (len(surv) - 3, 3)
    m = risk.fit_risk_model(d, "y", ["x2"], missing="drop")
    assert (m.n_obs, m.n_dropped) == (len(surv) - 3, 3)
