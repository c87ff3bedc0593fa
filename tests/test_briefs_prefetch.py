"""A brief's sections shared with a forked worker (Brief.prefetch): the same brief either way,
and whatever goes wrong in the worker, the notebook's process computes the section itself."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from dmst_eval import briefs
from dmst_eval.briefs import Brief

DATA = Path(__file__).resolve().parent.parent / "data" / "synthetic"
PARAMS = {"region": "Region 2", "audience": "public", "figures_dir": None}
pytestmark = pytest.mark.xdist_group("briefs")


@pytest.fixture(scope="module")
def cd():
    from dmst_eval.casedata import load

    return load(DATA)


@pytest.fixture(scope="module")
def sequential(cd):
    b = Brief(cd, PARAMS, strict=True)
    return {name: getattr(b, name)() for name in briefs.SECTIONS}


@pytest.fixture
def forking(monkeypatch):
    """Fork whatever the machine (the worker is the same on one CPU, only not faster)."""
    monkeypatch.setattr(briefs, "_can_fork", lambda: True)


def _same(a: dict, b: dict) -> None:
    for name in briefs.SECTIONS:
        if name == "provenance":  # the run time differs
            continue
        assert a[name].html == b[name].html, name
        assert a[name].tables.keys() == b[name].tables.keys(), name
        for t in a[name].tables:
            pd.testing.assert_frame_equal(a[name].tables[t], b[name].tables[t])
            assert a[name].tables[t].attrs == b[name].tables[t].attrs


def _wait_for_worker(b: Brief) -> None:
    b._worker.join(timeout=120)
    assert b._worker.exitcode == 0


def test_worker_sections_are_the_sections(cd, sequential, forking):
    b = Brief(cd, PARAMS, strict=True)
    assert b.prefetch()
    _wait_for_worker(b)  # the worker has claimed and computed all of its sections
    got = {name: getattr(b, name)() for name in briefs.SECTIONS}
    assert b._done == set(briefs.PREFETCH_SECTIONS)
    assert b.errors == [] and b._worker is None
    _same(got, sequential)


def test_racing_the_worker_gives_the_same_brief(cd, sequential, forking):
    """Cells asking for sections while the worker runs: each section is computed once, by
    whichever process claimed it, and the brief is the same."""
    b = Brief(cd, PARAMS, strict=True)
    assert b.prefetch()
    got = {name: getattr(b, name)() for name in briefs.SECTIONS}
    assert b._done <= set(briefs.PREFETCH_SECTIONS)
    _same(got, sequential)


def test_worker_that_dies_leaves_its_sections_to_the_notebook(cd, sequential, forking,
                                                                monkeypatch):
    monkeypatch.setattr(briefs, "_prefetch_main", lambda conn: os._exit(3))
    b = Brief(cd, PARAMS, strict=True)
    assert b.prefetch()
    b._worker.join(timeout=60)
    got = {name: getattr(b, name)() for name in briefs.SECTIONS}
    assert b._done == set() and b._worker is None
    _same(got, sequential)


def test_strict_failure_in_the_worker_is_computed_again_here(cd, sequential, forking,
                                                               monkeypatch):
    """A section that raises in the worker (strict brief) is computed by the notebook's process,
    so an error would surface there with its own traceback; here it succeeds."""
    parent = os.getpid()
    real = briefs.Brief.program_effects.__wrapped__

    def program_effects(self):
        if os.getpid() != parent:
            raise KeyError("worker only")
        return real(self)

    monkeypatch.setattr(briefs.Brief, "program_effects",
                        briefs._section("Program effects")(program_effects))
    b = Brief(cd, PARAMS, strict=True)
    assert b.prefetch()
    _wait_for_worker(b)
    got = {name: getattr(b, name)() for name in briefs.SECTIONS}
    assert "program_effects" in b._done and "program_effects" not in b._received
    assert b.errors == []
    _same(got, sequential)


def test_section_note_from_the_worker_is_reported_here(cd, forking, monkeypatch):
    """Not strict: the worker's note for a failed section is shown, and the failure is
    recorded and warned about in the notebook's process as it would be without a worker."""
    def hotspot_map(self):
        raise KeyError("C0001")

    monkeypatch.setattr(briefs.Brief, "hotspot_map",
                        briefs._section("Where: confirmed episodes by town")(hotspot_map))
    b = Brief(cd, PARAMS, strict=False)
    assert b.prefetch()
    _wait_for_worker(b)
    with pytest.warns(UserWarning, match="Where: confirmed episodes by town"):
        sec = b.hotspot_map()
    assert "hotspot_map" in b._done
    assert sec.error == "KeyError" and "C0001" not in sec.html
    assert b.errors == [("Where: confirmed episodes by town", "KeyError")]


def test_no_worker_when_switched_off(cd, monkeypatch):
    monkeypatch.setenv("DMST_EVAL_PREFETCH", "0")
    b = Brief(cd, PARAMS)
    assert not b.prefetch() and b._worker is None


def test_provenance_lists_failed_sections_in_brief_order(cd, monkeypatch):
    b = Brief(cd, {"figures_dir": None}, strict=False)
    b.errors = [("Program effects", "KeyError"), ("Risk factors", "ValueError")]
    prov = b.provenance().tables["provenance"].set_index("item")["value"]
    assert prov["sections not computed"] == "Risk factors (ValueError), Program effects (KeyError)"


def test_section_failing_while_working_ahead_fails_in_its_own_cell(cd, forking, monkeypatch):
    """Strict brief: a section that raises while the notebook's process works ahead (waiting
    for the worker) does not break the cell that was waiting; it raises in its own cell."""
    import time

    parent = os.getpid()
    real = briefs.Brief.repeat_victimization.__wrapped__

    def repeat_victimization(self):  # a slow worker, so that the notebook works ahead
        if os.getpid() != parent:
            time.sleep(1.0)
        return real(self)

    def tracking(self):
        raise KeyError("tracking broke")

    monkeypatch.setattr(briefs.Brief, "repeat_victimization",
                        briefs._section("Repeat victimization")(repeat_victimization))
    monkeypatch.setattr(briefs.Brief, "tracking",
                        briefs._section("The agency's tracking questions")(tracking))
    b = Brief(cd, PARAMS, strict=True)
    assert b.prefetch()
    assert b.key_findings().error is None  # worked ahead through tracking while it waited
    assert ("section", "risk_factors") in b._cache
    with pytest.raises(KeyError, match="tracking broke"):
        b.tracking()


@pytest.mark.parametrize("files, cap", [
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_usable_cpus_respects_a_container_quota(tmp_path, files, cap):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    n = float(len(os.sched_getaffinity(0)))
    assert briefs._usable_cpus(tmp_path) == (n if cap is None else min(n, cap))
