"""The per-user plan cache: private, keyed by data and code, bounded, never trusted blindly."""
from __future__ import annotations

import json
import os
import stat

import pytest

from dmst_eval.briefs import disclosure_plan as dp
from dmst_eval.briefs import plan_cache
from dmst_eval.briefs.context import Brief
from dmst_eval.disclosure import CellKey, SuppressionPlan


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """An empty cache of this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DMST_EVAL_NO_CACHE", raising=False)
    dp._PLANS.clear()
    yield tmp_path / "cache" / "dmst-eval" / "plans"
    dp._PLANS.clear()


def _brief(cd):
    return Brief(cd, {"figures_dir": None, "data_path": None}, strict=True)


def _tiny_plan(i: int = 0) -> SuppressionPlan:
    k = CellKey("victims", "statewide", str(2000 + i))
    return SuppressionPlan({"internal": 5, "public": 10}, {"internal": {k: "primary"}},
                           {"internal": set(), "public": {k}})


def _no_planning(*a, **k):
    raise AssertionError("the plan was computed again instead of read from the cache")


def test_a_lone_brief_keeps_its_plan_privately_and_the_next_one_reads_it(
        default_cd, standard_plan, cache_home, monkeypatch):
    monkeypatch.setattr(dp, "batch_plan", lambda cd, params: standard_plan)
    first = dp.plan_for(_brief(default_cd))
    files = list(cache_home.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    # which cells are hidden, never a value: the only numbers are the thresholds
    doc = json.loads(files[0].read_text())
    assert set(doc) == {"version", "fingerprint", "thresholds", "hidden", "published"}
    assert all(isinstance(x, str) for rows in doc["hidden"].values() for r in rows for x in r)
    assert all(isinstance(x, str) for rows in doc["published"].values() for r in rows for x in r)

    # a new process (no in-memory plan) and a new data object: read, not computed
    dp._PLANS.clear()
    monkeypatch.setattr(dp, "batch_plan", _no_planning)
    again = dp.plan_for(_brief(default_cd))
    assert again is not first
    assert again.hidden == standard_plan.hidden
    assert again.published == standard_plan.published
    assert again.thresholds == standard_plan.thresholds


def test_other_data_code_or_parameters_never_meet_an_old_plan(cache_home, monkeypatch):
    plan_cache.save(_tiny_plan(), "fp-a")
    assert plan_cache.load("fp-a").hidden == _tiny_plan().hidden
    assert plan_cache.load("fp-b") is None  # other data or windows: another fingerprint
    monkeypatch.setattr(plan_cache, "code_hash", lambda: "edited")
    assert plan_cache.load("fp-a") is None  # an edited counting rule: another key


def test_a_file_or_folder_others_can_touch_is_ignored(cache_home):
    f = plan_cache.save(_tiny_plan(), "fp")
    assert plan_cache.load("fp") is not None
    f.chmod(0o644)
    assert plan_cache.load("fp") is None
    f.chmod(0o600)
    cache_home.chmod(0o755)
    assert plan_cache.load("fp") is None
    assert plan_cache.save(_tiny_plan(), "fp") is None  # nor written into
    cache_home.chmod(0o700)
    assert plan_cache.load("fp") is not None


def test_a_damaged_or_foreign_file_is_ignored_and_replaced(default_cd, standard_plan,
                                                           cache_home, monkeypatch):
    fp = dp.fingerprint(default_cd, _brief(default_cd).params.as_dict())
    plan_cache.save(_tiny_plan(), fp)
    f = cache_home / f"{plan_cache.key(fp)}.json"
    f.write_text("{not json")
    assert plan_cache.load(fp) is None
    # a file under this key made for other data (fingerprint inside differs)
    _tiny_plan().to_json(f, fingerprint="other")
    assert plan_cache.load(fp) is None
    calls = []
    monkeypatch.setattr(dp, "batch_plan", lambda cd, params: calls.append(1) or standard_plan)
    dp.plan_for(_brief(default_cd))
    assert calls == [1]
    assert plan_cache.load(fp).hidden == standard_plan.hidden


def test_the_cache_is_bounded_least_recently_used_first(cache_home, monkeypatch):
    monkeypatch.setattr(plan_cache, "MAX_PLANS", 3)
    for i in range(3):
        f = plan_cache.save(_tiny_plan(i), f"fp{i}")
        os.utime(f, (1000 + i, 1000 + i))
    assert plan_cache.load("fp0") is not None  # used now: the newest
    plan_cache.save(_tiny_plan(9), "fp9")
    assert len(list(cache_home.glob("*.json"))) == 3
    assert plan_cache.load("fp1") is None  # least recently used, dropped
    assert all(plan_cache.load(f"fp{i}") is not None for i in (0, 2, 9))
    assert plan_cache.clear() == 3 and not list(cache_home.glob("*"))


def test_the_cache_can_be_turned_off(cache_home, monkeypatch):
    monkeypatch.setenv("DMST_EVAL_NO_CACHE", "1")
    assert plan_cache.save(_tiny_plan(), "fp") is None
    assert not cache_home.exists()
    assert plan_cache.load("fp") is None


def test_the_key_follows_the_code_the_reference_files_and_the_area_offices(
        cache_home, tmp_path, monkeypatch):
    monkeypatch.delenv("DMST_EVAL_AREA_OFFICES", raising=False)
    k0 = plan_cache.key("fp")
    offices = tmp_path / "offices.csv"
    offices.write_text("town,area_office\nHartford,Hartford\n")
    monkeypatch.setenv("DMST_EVAL_AREA_OFFICES", str(offices))
    k1 = plan_cache.key("fp")
    offices.write_text("town,area_office\nHartford,Manchester\n")
    k2 = plan_cache.key("fp")
    assert len({k0, k1, k2}) == 3
    monkeypatch.setattr(plan_cache, "_package_hash", lambda: "edited source")
    assert plan_cache.key("fp") != k2


def test_the_study_window_is_part_of_the_key(default_cd):
    """The default brief windows follow the study window in ``meta`` (not in the tables'
    hash): another study end must not find the old plan."""
    import copy

    other = copy.copy(default_cd)
    other.meta = dict(default_cd.meta, study_end="2024-12-31")
    params = _brief(default_cd).params.as_dict()
    assert dp.fingerprint(other, params) != dp.fingerprint(default_cd, params)
