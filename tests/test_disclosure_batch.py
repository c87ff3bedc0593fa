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

# one worker: the 14 briefs' tables (the `shown` fixture) are built once
pytestmark = pytest.mark.xdist_group("disclosure_batch")

DATA = REPO / "data" / "synthetic"
SCOPES = ["statewide", *schema.REGIONS]


@pytest.fixture(scope="module")
def cd(default_cd):
    return default_cd


@pytest.fixture(scope="module")
def ledger(standard_ledger):
    return standard_ledger


@pytest.fixture(scope="module")
def plan(standard_plan):
    return standard_plan


def _render(cd, plan, findings: bool = True) -> dict:
    """The tracking table (and key findings) of all 14 briefs, as the sections render them
    (the key findings' model-based sentences left out: they show no counts)."""
    from dmst_eval.briefs.sections import key_findings

    mp = pytest.MonkeyPatch()
    mp.setattr(key_findings, "analysis_findings", lambda brief: [])
    out, raw = {}, {}
    try:
        for aud in ("internal", "public"):
            for region in SCOPES:
                b = Brief(cd, {"region": region, "audience": aud, "figures_dir": None,
                               "data_path": None}, strict=True)
                b.cache["disclosure_plan"] = plan  # what render_batch hands every brief
                # the five answers do not depend on the audience (what is shown of them does):
                # the public brief reuses the internal brief's, as computed
                b.cache.update(raw.get(region, {}))
                out[(region, aud)] = (
                    sections.module("tracking").build(b).tables["tracking"],
                    sections.module("key_findings").build(b).html if findings else "")
                raw[region] = {k: b.cache[k] for k in ("answers_period",
                                                      "facilities_study_to_date")
                               if k in b.cache}
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
    # police reports: statewide minus the regions (the brief shows no police-report share any
    # more; the percentage-with-denominator attack is tested on a hand-made ledger in
    # test_disclosure_ledger)
    pol = f[f["measure"] == "Careline reports from police"]
    assert "regions add up to statewide" in set(pol["pinned_by"])
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


# ---------------------------------------------------------------------------------------------
# the question sections and the scorecard under the batch plan (issues 14 and 15)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("region", ["statewide", "Region 2", "Region 5"])
def test_section_counts_equal_the_answers(cd, region):
    """The cheap counts each section registers in the batch ledger are the ones its analysis
    (tracking.*_answer) shows, so the plan decides about the numbers the brief prints."""
    from dmst_eval import tracking
    from dmst_eval.briefs.sections import awol, congregate_care, repeat_victims, towns

    b = Brief(cd, {"region": region, "figures_dir": None, "data_path": None}, strict=True)
    r = b.region_arg
    a = tracking.awol_answer(cd, *b.period, region=r)
    c = awol.counts(b)
    for name, k, n in (("awol_share", "awol", "episodes"), ("awol_share_in_care", "awol", "care"),
                       ("within_48h", "within_48h", "timed"), ("within_7d", "within_7d", "timed")):
        row = a.row(name)
        assert (row["numerator"], row["denominator"]) == (c[k], c[n]), name
    assert int(c["bins"].sum()) == c["timed"] == len(a.hours)
    assert c["bins"].iloc[0] == c["within_48h"]
    rep = tracking.repeat_answer(cd, *b.period, region=r)
    c = repeat_victims.counts(b)
    assert c["followed"] == rep.value("children_followed")
    assert c["aged_out"] == rep.value("aged_out_before_repeat")
    assert (c["victims"], c["repeat"]) == (rep.value("victims"), rep.value("repeat_victims"))
    assert [c["at_risk"][float(m)] for m in rep.at_risk["months"]] == \
        rep.at_risk["at_risk"].tolist()
    cc = congregate_care.counts(b)
    for which, (lo, last) in congregate_care._windows(b).items():
        f = tracking.facilities_answer(cd, lo, last, region=r)
        assert cc[which]["several"] == f.value("facilities_with_several_victims")
        sev = f.facilities[f.facilities["several"]].head(congregate_care.LIST_MAX)
        assert cc[which]["listed"]["facility_id"].tolist() == sev["facility_id"].tolist()
        assert cc[which]["listed"]["victims"].tolist() == sev["victims"].tolist()
        obs = cc[which]["settings"].set_index("facility_id")["observed"]
        ex = f.excess.summary.set_index("facility_id")["observed"]
        assert obs.reindex(ex.index).tolist() == ex.tolist()
    tw = tracking.towns_answer(cd, *b.period, region=r)
    tc = towns.town_counts(b).set_index("town")["victims"]
    assert tc.reindex(tw.towns["town"]).tolist() == tw.towns["victims"].tolist()


def test_ledger_holds_the_new_sections_and_their_relations(cd, ledger):
    names = {r.name for r in ledger.relations}
    assert {"towns add up to the region", "numbers at risk only fall",
            "episodes at least victims", "parts add up to the whole"} <= names
    measures = {k.measure for k in ledger}
    assert any(m.startswith("Victims living in ") for m in measures)
    assert any(m.startswith("Victims at congregate setting ") for m in measures)
    assert "AWOL-onset episodes beginning within 48 hours" in measures
    assert "Children followed after a first confirmed episode" in measures
    # the scorecard's complements: "20 of 28 not re-victimized" must not tell the 8
    from dmst_eval.briefs.sections import scorecard

    b = Brief(cd, {"region": "statewide", "figures_dir": None, "data_path": None}, strict=True)
    row = scorecard.scorecard(b).summary.set_index("measure").loc["no_revictimization_12m"]
    comp = disclosure.CellKey(f"Scorecard: {row['label']} (of − n)", "statewide",
                              b.window_label("period"))
    assert ledger.value(comp) == int(row["of"]) - int(row["n"])
    assert not ledger.audiences(comp)  # never shown, still checked
    # a scorecard count that is a tracking cell is that cell (hidden in both or neither)
    ks = scorecard.keys(b)
    assert ks[("identified_within_30d", "of", "period")] == \
        b.key("Confirmed victims", b.window_label("period"))


def test_attacks_on_the_new_sections_found_without_secondary_suppression(ledger):
    weak = disclosure.plan(ledger, dp.thresholds({}), secondary=False)
    f = weak.audit.failures
    by = f.groupby("pinned_by")["measure"].apply(set)
    assert any(m.endswith("(of − n)") for m in by.get("n + complement = of", set()))
    assert any(m.startswith("Victims living in ") for m in by.get("towns add up to the region",
                                                                  set()))
    assert any(m.startswith("Scorecard: ") for m in by.get("regions add up to statewide", set()))


def _count_cells_ok(tab, t) -> list:
    """Problems in a published table: a count shown between 1 and t - 1."""
    info = tab.attrs.get("disclosure", {})
    bad = []
    for c in info.get("count_cols", []):
        for v in tab[c]:
            if isinstance(v, (int, np.integer)) and 0 < int(v) < t:
                bad.append((c, int(v)))
    return bad


def _pairs_ok(pairs, t) -> list:
    """n and of both shown as numbers: their difference must be 0 or at least t."""
    out = []
    for n, of in pairs:
        if isinstance(n, (int, np.integer)) and isinstance(of, (int, np.integer)) and \
                0 < int(of) - int(n) < t:
            out.append((int(n), int(of)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("audience", ["internal", "public"])
def test_question_sections_and_scorecard_follow_the_plan(cd, plan, audience):
    """Statewide and two regional briefs: every count in the question sections' tables and the
    scorecard (tables and sparkline data) is 0, at least the threshold or a marker, and no
    n / of pair shown in full leaves a small complement."""
    import json

    t = plan.thresholds[audience]
    for region in ("statewide", "Region 2", "Region 5"):
        b = Brief(cd, {"region": region, "audience": audience, "figures_dir": None,
                       "data_path": None}, strict=True)
        b.cache["disclosure_plan"] = plan
        for name in ("repeat_victims", "towns", "awol", "congregate_care", "scorecard"):
            sec = b.section(name)
            for tname, tab in sec.tables.items():
                assert not _count_cells_ok(tab, t), (region, name, tname)
            for m in re.finditer(r'<script type="application/json"[^>]*>(.*?)</script>',
                                 sec.html, re.S):
                doc = json.loads(m[1])
                cols = doc.get("columns", [])
                for row in doc.get("rows", []):
                    for c in doc.get("count_cols", []):
                        v = row[cols.index(c)]
                        assert not (isinstance(v, int) and 0 < v < t), (region, name, c, v)
                    if "n" in cols and "of" in cols:
                        assert not _pairs_ok([(row[cols.index("n")], row[cols.index("of")])],
                                             t), (region, name, doc["name"])
        sc = b.section("scorecard").tables["scorecard"]
        assert not _pairs_ok(zip(sc["n"], sc["of"]), t), region
        assert not _pairs_ok(zip(sc["baseline_n"], sc["baseline_of"]), t), region
        aw = b.section("awol").tables["awol"]
        assert not _pairs_ok(zip(aw["episodes"], aw["of_episodes"]), t), region
