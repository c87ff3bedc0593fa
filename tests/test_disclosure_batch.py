"""The batch disclosure plan on the default data: the attacks of issue 14 are found when
secondary suppression is off, and no hidden count of the tracking tables and key findings can
be worked out from all 14 briefs when it is on (attacked with an independent integer program
built only from what the briefs show)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import optimize

from dmst_eval import disclosure, schema
from dmst_eval.briefs import Brief, disclosure_plan as dp, sections
from tests.conftest import REPO

DATA = REPO / "data" / "synthetic"
SCOPES = ["statewide", *schema.REGIONS]


@pytest.fixture(scope="module")
def cd(default_cd):
    return default_cd


@pytest.fixture(scope="module")
def ledger(cd):
    return dp.batch_ledger(cd, {})


@pytest.fixture(scope="module")
def plan(ledger):
    return disclosure.plan(ledger, dp.thresholds({}))


def _render(cd, plan, findings: bool = True) -> dict:
    """The tracking table (and key findings) of all 14 briefs, as the sections render them
    (the key findings' model-based sentences left out: they show no counts)."""
    from dmst_eval.briefs.sections import key_findings

    mp = pytest.MonkeyPatch()
    mp.setattr(key_findings, "analysis_findings", lambda brief: [])
    out = {}
    try:
        for aud in ("internal", "public"):
            for region in SCOPES:
                b = Brief(cd, {"region": region, "audience": aud, "figures_dir": None,
                               "data_path": None}, strict=True)
                b.cache["disclosure_plan"] = plan  # what render_batch hands every brief
                out[(region, aud)] = (
                    sections.module("tracking").build(b).tables["tracking"],
                    sections.module("key_findings").build(b).html if findings else "")
    finally:
        mp.undo()
    return out


@pytest.fixture(scope="module")
def shown(cd, plan):
    return _render(cd, plan)


def test_ledger_knows_the_relations(ledger):
    names = {r.name for r in ledger.relations}
    assert {"regions add up to statewide", "years add up to the period",
            "n + complement = of"} <= names
    k = disclosure.CellKey("Confirmed episodes", "statewide", "2023")
    parts = [disclosure.CellKey("Confirmed episodes", r, "2023") for r in schema.REGIONS]
    assert ledger.value(k) == sum(ledger.value(p) for p in parts)


def test_attacks_found_without_secondary_suppression(ledger):
    weak = disclosure.plan(ledger, dp.thresholds({}), secondary=False)
    f = weak.audit.failures
    assert len(f) > 20
    pins = set(f["pinned_by"])
    assert "regions add up to statewide" in pins      # statewide minus the regions
    assert "years add up to the period" in pins       # hidden years from the period total
    # some hidden counts are recovered exactly (lower == upper)
    assert (f["lower"] == f["upper"]).any()
    # police reports: statewide minus the regions, and the percentage with its denominator
    pol = f[f["measure"] == "Careline reports from police"]
    assert {"regions add up to statewide",
            "share shown for Careline reports from police"} <= set(pol["pinned_by"])
    with pytest.raises(disclosure.DisclosureError, match="pinned by"):
        weak.audit.raise_if_failed()


def test_plan_passes_and_is_consistent(ledger, plan):
    assert plan.audit.passed
    assert disclosure.interval_audit(ledger, plan).passed   # recomputed from scratch
    # what the internal plan hides the public plan hides too
    assert set(plan.hidden["internal"]) <= set(plan.hidden["public"])
    rep = disclosure.DisclosureReport.from_plan(plan).to_text()
    assert "passed" in rep and "FAILED" not in rep


def _cells(table):
    """{(measure, column): text} of a shown tracking table."""
    out = {}
    for _, row in table.iterrows():
        for c in table.columns[1:]:
            out[(row["measure"], str(c))] = row[c]
    return out


def test_tracking_tables_follow_the_plan(shown, plan):
    for (region, aud), (tab, _) in shown.items():
        t = plan.thresholds[aud]
        for (m, col), v in _cells(tab).items():
            if isinstance(v, str):
                assert v in (f"<{t}", disclosure.SUPPRESSED)
            else:
                assert v == 0 or v >= t


def _attack(shown, aud_visible, t):
    """An integer program built only from what the briefs show (tables of all scopes of the
    visible audiences): episodes add up over regions and over years. Returns, per hidden
    count, its (min, max)."""
    var, lo, hi = {}, [], []

    def v(key):
        if key not in var:
            var[key] = len(var)
            lo.append(0.0)
            hi.append(1e6)
        return var[key]

    for (region, aud), (tab, _) in shown.items():
        if aud not in aud_visible:
            continue
        tt = int(disclosure.default_threshold(aud))
        for (m, col), val in _cells(tab).items():
            j = v((m, region, col))
            if isinstance(val, str) and val.startswith("<"):
                hi[j] = min(hi[j], tt - 1)
            elif isinstance(val, str):
                lo[j] = max(lo[j], tt)
            else:
                lo[j] = hi[j] = float(val)
    rows = []
    measures = ["Confirmed episodes", "Episodes that began during AWOL"]
    keys = list(var)
    cols = {k[2] for k in keys}
    for m in measures:
        for col in cols:
            parts = [(m, r, col) for r in schema.REGIONS]
            if (m, "statewide", col) in var and all(p in var for p in parts):
                rows.append({var[(m, "statewide", col)]: 1, **{var[p]: -1 for p in parts}})
        for region in SCOPES:
            for which in ("comparison", "period"):
                tot = (m, region, f"{which} total")
                years = [k for k in keys if k[0] == m and k[1] == region
                         and re.fullmatch(r"\d{4}", k[2])]
                if tot not in var:
                    continue
                win = [y for y in years if any(
                    c == y[2] for c in shown[(region, aud_visible[0])][0].columns
                    [_span(shown[(region, aud_visible[0])][0], which)])]
                rows.append({var[tot]: 1, **{var[y]: -1 for y in win}})
    a = np.zeros((len(rows), len(var)))
    for i, r in enumerate(rows):
        for j, c in r.items():
            a[i, j] += c
    cons = optimize.LinearConstraint(a, 0, 0)
    bounds = optimize.Bounds(lo, hi)
    out = {}
    for k, j in var.items():
        if lo[j] == hi[j]:
            continue
        c = np.zeros(len(var))
        c[j] = 1
        r1 = optimize.milp(c, constraints=cons, bounds=bounds, integrality=np.ones(len(var)))
        r2 = optimize.milp(-c, constraints=cons, bounds=bounds, integrality=np.ones(len(var)))
        assert r1.status == 0 and r2.status == 0
        out[k] = (round(r1.x[j]), round(r2.x[j]))
    return out


def _span(tab, which):
    """Column positions of one window's years in a shown tracking table."""
    cols = list(tab.columns)
    end = cols.index(f"{which} total")
    start = 1 if which == "comparison" else cols.index("comparison total") + 1
    return slice(start, end)


@pytest.mark.parametrize("reader,visible", [("public", ["public"]),
                                            ("internal", ["internal", "public"])])
def test_attack_from_shown_tables_recovers_nothing(shown, plan, cd, reader, visible):
    t = plan.thresholds[reader]
    res = _attack(shown, visible, t)
    small = [k for k, (lo, hi) in res.items()
             if k[0] in ("Confirmed episodes", "Episodes that began during AWOL")]
    assert small, "the attack found no hidden episode count to try"
    checked = 0
    for k in small:
        lo, hi = res[k]
        if shown_marker(shown, k, reader) != f"<{t}" or hi == 0:
            continue  # a count at or above the threshold hidden to protect others, or a zero
        checked += 1
        assert lo < hi, f"{k} recovered exactly"
        assert lo <= 1 and hi >= t - 1, f"{k} narrowed to {lo}..{hi}"
    assert checked >= 10


def shown_marker(shown, k, aud):
    tab = shown[(k[1], aud)][0]
    return _cells(tab).get((k[0], k[2]))


def test_key_findings_never_show_a_count_the_tables_hide(shown, plan):
    for (region, aud), (tab, html) in shown.items():
        t = plan.thresholds[aud]
        cells = _cells(tab)
        victims = cells[("Confirmed victims", "period total")]
        m = re.search(r"<li>In [^<]*?, ([\d,]+) children in [^<]*? were identified", html)
        if isinstance(victims, str):
            assert m is None, (region, aud)
        else:
            assert m is not None and int(m[1].replace(",", "")) == victims
        for n in re.findall(r"\b(\d+) of them", html):
            assert int(n) >= t


def test_the_attack_can_fail_without_secondary_suppression(cd, ledger):
    weak = disclosure.plan(ledger, dp.thresholds({}), secondary=False, audit=False)
    res = _attack(_render(cd, weak, findings=False), ["public"], 10)
    exact = [k for k, (lo, hi) in res.items() if lo == hi and hi > 0]
    assert exact, "with primary suppression only, the attack should recover some counts"


def test_render_batch_refuses_a_failing_plan(tmp_path, monkeypatch):
    from dmst_eval.briefs import render_batch

    def no_pattern(cd, params):
        raise disclosure.DisclosureError("no secondary suppression pattern protects "
                                         "'Confirmed victims — Region 1, 2024'")

    monkeypatch.setattr(dp, "batch_plan", no_pattern)
    out = tmp_path / "reports"
    res = render_batch(regions="Region 1", data_path=str(DATA), out_dir=out, workers=1)
    assert (res["status"] == "failed").all()
    assert res["error"].str.contains("disclosure plan failed, no brief was rendered").all()
    assert not list(out.glob("*.html")) and not list(out.glob(".brief_*"))
