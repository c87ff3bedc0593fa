"""Ledger relations, batch secondary suppression and the LP interval audit on hand-made tables
with known answers (the attacks of issue 14)."""
from __future__ import annotations

import json
import os
import stat

import matplotlib
import numpy as np
import pandas as pd
import pytest

from dmst_eval.disclosure import (CellKey, DisclosureError, DisclosureReport, Ledger,
                                  SuppressionPlan, at_risk_numbers, bar_heights,
                                  interval_audit, mark_hidden_bars, plan, share_text,
                                  truncate_at_risk)

INTERNAL = {"internal": 5}
PUBLIC = {"public": 10}


def hidden(p, aud):
    return {(k.measure, k.region, k.period): v for k, v in p.hidden[aud].items()}


def interval(res, **where):
    s = res.summary
    for k, v in where.items():
        s = s[s[k] == v]
    assert len(s) == 1, s
    return float(s["lower"].iloc[0]), float(s["upper"].iloc[0])


# ------------------------------------------------------------------ the ledger's relations
def test_relation_that_does_not_hold_raises():
    led = Ledger()
    a, b = led.add("x", 3, period="2024"), led.add("x", 4, period="2025")
    t = led.add("x", 8, period="all")
    with pytest.raises(DisclosureError, match="does not hold"):
        led.add_sum(t, [a, b])
    # children counted once a period: 3, 4 -> total between 4 and 7
    led2 = Ledger()
    a, b = led2.add("v", 3, period="2024"), led2.add("v", 4, period="2025")
    led2.add_sum(led2.add("v", 6, period="all"), [a, b], exact=False)
    assert len(led2.relations) == 3
    led3 = Ledger()
    a, b = led3.add("v", 3, period="2024"), led3.add("v", 4, period="2025")
    with pytest.raises(DisclosureError, match="does not hold"):
        led3.add_sum(led3.add("v", 3, period="all"), [a, b], exact=False)  # below max part


def test_same_label_two_values_raises_and_audiences_merge():
    led = Ledger()
    k = led.add("police reports", 50, period="2018", audience="internal")
    led.add(k, 50, audience="public")
    assert led.audiences(k) == {"internal", "public"}
    with pytest.raises(DisclosureError, match="different values"):
        led.add(k, 51)
    with pytest.raises(DisclosureError, match="whole number"):
        led.add("y", 2.5)
    with pytest.raises(DisclosureError, match="audience"):
        led.add("y", 2, audience="press")
    with pytest.raises(DisclosureError, match="not in the ledger"):
        led.add_sum(k, [CellKey("nope")])


def test_share_registers_complement_and_relation():
    led = Ledger()
    kc = led.add_share("not re-victimized", 20, 28, shown=20 / 28)
    assert kc == CellKey("not re-victimized (complement)", "statewide", "all")
    assert led.value(kc) == 8 and led.audiences(kc) == set()
    names = [r.name for r in led.relations]
    assert "n + complement = of" in names and "share shown for not re-victimized" in names


# ------------------------------------------------------------------ the attacks of the issue
def test_attack_within_table_year_totals():
    # AWOL row: 2023 "<5", 2024 "<5", 2025 "6", period total "14" -> both hidden years are 4
    led = Ledger()
    ys = [led.add("AWOL episodes", n, period=y, audience="internal")
          for n, y in [(4, "2023"), (4, "2024"), (6, "2025")]]
    led.add_sum(led.add("AWOL episodes", 14, period="2023-2025", audience="internal"), ys,
                name="years add up to the period")
    off = interval_audit(led, plan(led, INTERNAL, secondary=False))
    assert not off.passed
    assert interval(off, period="2023") == (4, 4)
    assert set(off.failures["pinned_by"]) == {"years add up to the period"}
    on = plan(led, INTERNAL)
    assert on.audit.passed and interval_audit(led, on).passed
    # cheapest protecting cell: the 6 (not the total 14)
    assert hidden(on, "internal")[("AWOL episodes", "statewide", "2025")] == "secondary"
    assert ("AWOL episodes", "statewide", "2023-2025") not in hidden(on, "internal")
    assert interval(on.audit, period="2023") == (1, 4)  # "<5" = 1..4: no zero hidden


def test_attack_statewide_minus_regions():
    # police reports 2018: 50 - (15+5+8+12+7) = 3
    led = Ledger()
    vals = dict(zip([f"Region {i}" for i in range(1, 7)], [15, 5, 8, 12, 7, 3]))
    for r, n in vals.items():
        led.add("police reports", n, region=r, period="2018", audience="internal")
    led.add_regions("police reports", period="2018", statewide=50, audience="internal")
    off = interval_audit(led, plan(led, INTERNAL, secondary=False))
    assert interval(off, region="Region 6") == (3, 3)
    assert off.failures["pinned_by"].iloc[0] == "regions add up to statewide"
    on = plan(led, INTERNAL)
    assert on.audit.passed
    # 3 + 5: x6 + x2 = 8 with x2 >= 5 would leave x6 <= 3, so the 5 alone does not protect it;
    # the cheapest count that does is the 7
    h = hidden(on, "internal")
    assert h == {("police reports", "Region 6", "2018"): "primary",
                 ("police reports", "Region 5", "2018"): "secondary"}


def test_attack_complements():
    # public: "20 of 28 not re-victimized" tells that 8 were; "349 of 350" that 1 was not
    led = Ledger()
    led.add_share("not re-victimized", 20, 28, region="Region 1", audience="public")
    led.add_share("not re-victimized", 349, 350, region="Region 2", audience="public")
    off = interval_audit(led, plan(led, PUBLIC, secondary=False))
    assert interval(off, region="Region 1") == (8, 8)
    assert interval(off, region="Region 2") == (1, 1)
    assert set(off.failures["pinned_by"]) == {"n + complement = of"}
    on = plan(led, PUBLIC)
    assert on.audit.passed
    # the smaller of n and of is hidden (20, 349)
    h = hidden(on, "public")
    assert h == {("not re-victimized", "Region 1", "all"): "secondary",
                 ("not re-victimized", "Region 2", "all"): "secondary"}


def test_attack_percentage_with_denominator():
    # 9% of 378 reports came from police, with two of three years of police reports shown
    led = Ledger()
    ys = [led.add("police reports", n, period=y, audience="internal")
          for n, y in [(3, "2021"), (15, "2022"), (16, "2023")]]
    tot = led.add_share("police reports", 34, 378, of_measure="reports", period="2021-2023",
                        shown=34 / 378, digits=0, publish_n=False, audience="internal")
    led.add_sum(CellKey("police reports", "statewide", "2021-2023"), ys,
                name="years add up to the period")
    assert tot.measure == "police reports (complement)"
    off = interval_audit(led, plan(led, INTERNAL, secondary=False))
    lo, hi = interval(off, period="2021")
    assert (lo, hi) == (2, 4)   # 9% of 378 -> 33..35 police reports -> 2021 is 2 to 4
    on = plan(led, INTERNAL)
    assert on.audit.passed
    assert interval(on.audit, period="2021") == (1, 4)


def test_sub_additive_totals_also_narrow():
    # victims counted once a period: years 4, 2 (hidden) and 9; total 9 -> fine: total may
    # repeat children; but total 15 = sum forces the hidden ones to their values
    led = Ledger()
    ys = [led.add("victims", n, period=y, audience="internal")
          for n, y in [(4, "2023"), (2, "2024"), (9, "2025")]]
    led.add_sum(led.add("victims", 15, period="2023-2025", audience="internal"), ys,
                exact=False, name="children counted once")
    off = interval_audit(led, plan(led, INTERNAL, secondary=False))
    assert not off.passed
    assert interval(off, period="2023")[0] > 1
    assert plan(led, INTERNAL).audit.passed


# ------------------------------------------------------------------ secondary suppression
def test_no_feasible_pattern_raises():
    # the statewide 12 and Region 2's 9 are official figures that must be shown (not
    # suppressible): Region 1's 3 = 12 - 9 can never be protected
    led = Ledger()
    a = led.add("victims", 3, region="Region 1", audience="internal")
    b = led.add("victims", 9, region="Region 2", audience="internal", suppressible=False)
    t = led.add("victims", 12, audience="internal", suppressible=False)
    led.add_sum(t, [a, b], name="regions add up to statewide")
    with pytest.raises(DisclosureError, match="no secondary suppression pattern.*"
                                              "regions add up to statewide"):
        plan(led, INTERNAL)
    # ... and the message names the cell, never its value
    with pytest.raises(DisclosureError) as e:
        plan(led, INTERNAL)
    assert "Region 1" in str(e.value) and "3" not in str(e.value)


def test_withheld_fallback_when_markers_pin_the_parts():
    # seed 11's tracking row: years 2, 4, 4 ("<5" internally) and a period total of 10, which
    # the public plan hides as "suppressed" (so at least 10): each year is then at least 2, and
    # no shown count is left to hide. The fallback shows the row's hidden counts as "suppressed"
    # with no "at least t" meaning (withheld), which protects them; without it, no pattern.
    both = ("internal", "public")
    led = Ledger()
    ys = [led.add("episodes", n, period=y, audience=both)
          for n, y in [(2, "2020"), (4, "2021"), (4, "2022")]]
    tot = led.add("episodes", 10, period="2020-2022", audience=both)
    led.add_sum(tot, ys, name="years add up to the period")
    thresholds = {"internal": 5, "public": 10}
    p = plan(led, thresholds)
    assert p.audit.passed
    fresh = interval_audit(led, p)
    assert fresh.passed
    assert {p.status(k, "internal") for k in (*ys, tot)} == {"withheld"}
    assert {p.display(k, "internal", 0) for k in (*ys, tot)} == {"suppressed"}
    # the report names them as withheld, not as small or as secondary
    from dmst_eval.disclosure import DisclosureReport

    rep = DisclosureReport.from_plan(p).summary.set_index("audience")
    assert rep.loc["internal", ["primary", "secondary", "withheld"]].tolist() == [0, 0, 4]
    assert p.summary.set_index("audience").loc["internal", "withheld"] == 4
    assert "4 withheld" in DisclosureReport.from_plan(p).to_text()
    lo, hi = interval(fresh, period="2020", reader="internal")
    assert lo <= 1 and hi >= 4
    # the same row with the fallback's marker meaning "at least t" is pinned (the test can fail)
    p.hidden["internal"][tot] = "secondary"
    p.hidden["public"][tot] = "secondary"
    for k in ys:
        p.hidden["internal"][k] = "primary"
    assert not interval_audit(led, p).passed


def test_markers_and_zeros_pin_a_total_then_a_zero_is_hidden():
    # four regions "<5" beside two zeros and a statewide "<5": each region is 1 and the
    # statewide 4 -- unless one of the zeros is shown as "<5" too
    led = Ledger()
    regions = [f"Region {i}" for i in range(1, 7)]
    ks = [led.add("victims", n, region=r, audience="internal")
          for r, n in zip(regions, [1, 1, 1, 1, 0, 0])]
    led.add_regions("victims", period="all", statewide=4, audience="internal")
    off = interval_audit(led, plan(led, INTERNAL, secondary=False))
    assert interval(off, region="statewide") == (4, 4)
    assert interval(off, region="Region 1") == (1, 1)
    p = plan(led, INTERNAL)
    assert p.audit.passed
    kinds = hidden(p, "internal")
    assert sum(v == "zero" for v in kinds.values()) >= 1
    assert p.display(ks[4], "internal", 0) in ("<5", "0")
    assert "<5" in {p.display(k, "internal", 0) for k in ks[4:]}
    # a hidden zero is a small count: the report counts it with the primary ones
    from dmst_eval.disclosure import DisclosureReport

    row = DisclosureReport.from_plan(p).summary.set_index("audience").loc["internal"]
    assert row["primary"] == sum(v in ("primary", "zero") for v in kinds.values())
    assert row["secondary"] == sum(v == "secondary" for v in kinds.values())


def test_audiences_are_consistent_and_internal_reader_holds_public_briefs():
    led = Ledger()
    ks = [led.add("victims", n, region=r) for n, r in
          [(3, "Region 1"), (20, "Region 2"), (9, "Region 3"), (40, "Region 4")]]
    led.add_sum(led.add("victims", 72), ks, name="regions add up to statewide")
    p = plan(led)
    pub, inn = set(p.hidden["public"]), set(p.hidden["internal"])
    assert inn <= pub
    assert p.audit.passed
    assert set(p.audit.summary["reader"]) == {"internal", "public"}
    # public: 3 and 9 primary, one secondary; internal: 3 primary, one secondary
    assert sorted(p.hidden["public"].values()).count("primary") == 2
    assert sorted(p.hidden["internal"].values()).count("primary") == 1
    assert p.display(ks[0], "internal") == "<5" and p.display(ks[0], "public") == "<10"
    assert p.display(ks[3], "public", 40) == "40"
    with pytest.raises(DisclosureError, match="not in the batch plan"):
        p.display(CellKey("other"), "public", 3)


def test_plan_is_deterministic_and_round_trips_privately(tmp_path):
    def build():
        led = Ledger()
        rng = np.random.default_rng(3)
        for m in ["a", "b"]:
            cells = [led.add(m, int(v), region=f"Region {i}", period="2024")
                     for i, v in enumerate(rng.integers(0, 30, 6), 1)]
            led.add_regions(m, period="2024", statewide=sum(led.value(c) for c in cells))
        return led

    p1, p2 = plan(build()), plan(build())
    assert p1.hidden == p2.hidden
    f = p1.to_json(tmp_path / "plan.json", fingerprint="abc")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert "value" not in f.read_text()
    back = SuppressionPlan.from_json(f, fingerprint="abc")
    assert back.hidden == p1.hidden and back.published == p1.published
    with pytest.raises(DisclosureError, match="other data"):
        SuppressionPlan.from_json(f, fingerprint="xyz")
    json.loads(f.read_text())  # plain JSON, nothing to unpickle


def test_report_shows_no_hidden_value(tmp_path):
    led = Ledger()
    ks = [led.add("victims", n, region=r, audience="internal") for n, r in
          [(37, "Region 1"), (412, "Region 2"), (129, "Region 3")]]
    led.add_sum(led.add("victims", 578, audience="internal"), ks)
    p = plan(led, {"internal": 100})
    # hiding the 129 would leave 37 + x = 166 with x >= 100 ("suppressed" means at least the
    # threshold), so at most 66: the 412 is the cheapest count that protects the 37
    assert hidden(p, "internal") == {("victims", "Region 1", "all"): "primary",
                                     ("victims", "Region 2", "all"): "secondary"}
    rep = DisclosureReport.from_plan(p)
    text = rep.to_text()
    assert "37" not in text and "412" not in text
    assert "1 small (primary), 1 to protect them" in text
    assert "Narrowest range" in text and "passed" in text
    f = rep.write(tmp_path / "disclosure.txt")
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600


# ------------------------------------------------------------------ shares and figures
@pytest.mark.parametrize("n,of,t,text", [
    (18, 38, 5, "47%"), (0, 40, 5, "0%"), (40, 40, 10, "100%"),
    (349, 350, 10, "more than 95%"), (2, 40, 5, "less than 15%"), (3, 8, 5, "suppressed"),
    (4, 4, 5, "suppressed"), (1, 200, 10, "less than 5%")])
def test_share_text(n, of, t, text):
    d = share_text(n, of, t)
    assert d.text == text
    if d.band is not None and text.startswith(("less", "more")):
        lo, hi = d.band
        # the band covers every small value of the small part (1 .. t-1)
        small = n if text.startswith("less") else of - n
        assert (hi - lo) * of >= t - 1 and 1 <= small < t


def test_share_band_protects_in_the_ledger():
    led = Ledger()
    d = share_text(2, 40, 5)
    led.add_share("awol share", 2, 40, shown=d.band, publish_n=False, audience="internal")
    assert plan(led, INTERNAL, secondary=False).audit.passed


def test_truncate_at_risk_by_group_and_at_risk_row():
    km = pd.DataFrame({"group": ["a"] * 4 + ["b"] * 3, "time": [1, 2, 3, 4, 1, 2, 3],
                       "n_risk": [20, 12, 8, 11, 9, 30, 30]})
    out = truncate_at_risk(km, 10)
    assert out[out.group == "a"]["time"].tolist() == [1, 2]   # stops at 8, never resumes
    assert out[out.group == "b"].empty
    assert out.attrs["truncated_at"] == {"a": 3.0, "b": 1.0}
    assert at_risk_numbers(km[km.group == "a"], [0, 1.5, 3, 4], 10) == ["20", "12", "", ""]


def test_hidden_bars_not_drawn_at_a_value():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, hid = bar_heights([12, "<5", 0, "suppressed"])
    fig, ax = plt.subplots()
    x = np.arange(4)
    ax.bar(x[~hid], h[~hid])
    mark_hidden_bars(ax, x, hid)
    bars = [p for p in ax.containers[0]]
    assert sorted(b.get_height() for b in bars) == [0.0, 12.0]  # only the shown categories
    assert len(ax.patches) == 2 + 2  # two bars, two hatched bands
    assert ax.get_ylim()[1] < 13  # the hatched bands span the axes, not the data
    plt.close(fig)
