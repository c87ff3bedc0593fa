"""Disclosure control: hand-computed suppression cases and the audit."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from dmst_eval import disclosure as D
from dmst_eval.disclosure import SUPPRESSED, DisclosureError, audit, suppress, table_html


def hidden_mask(df, cols):
    return df[cols].map(D.is_hidden).to_numpy()


# ------------------------------------------------------------------ primary suppression
def test_primary_rule_zero_stays_zero_and_threshold_boundary():
    t = pd.DataFrame({"n": [0, 1, 4, 5, 12]})
    out = suppress(t, threshold=5, complementary=False)
    assert out["n"].tolist() == [0, "<5", "<5", 5, 12]
    out10 = suppress(t, threshold=10, complementary=False)
    assert out10["n"].tolist() == [0, "<10", "<10", "<10", 12]
    assert out.attrs["disclosure"]["primary"] == 2
    # threshold 1 hides nothing
    assert suppress(t, threshold=1)["n"].tolist() == [0, 1, 4, 5, 12]


def test_default_count_cols_are_integer_columns_only():
    t = pd.DataFrame({"year": pd.Series([2020, 2021]).astype(str), "n": [3, 40],
                      "rate": [0.5, 3.0], "flag": [True, False],
                      "m": pd.array([2, None], dtype="Int64")})
    out = suppress(t, complementary=False)
    assert out["n"].tolist() == ["<5", 40]
    assert out["rate"].tolist() == [0.5, 3.0]
    assert out["m"].iloc[0] == "<5" and pd.isna(out["m"].iloc[1])


def test_complementary_single_column_hides_smallest_other():
    # column total 3 + 8 + 20 + 50 would reveal the 3 -> hide 8 (smallest non-zero other)
    t = pd.DataFrame({"town": list("abcd"), "victims": [3, 8, 20, 50]})
    out = suppress(t)
    assert out["victims"].tolist() == ["<5", SUPPRESSED, 20, 50]
    assert out.attrs["disclosure"]["complementary"] == 1


def test_complementary_skips_zero_cells():
    t = pd.DataFrame({"victims": [2, 0, 9, 7]})
    assert suppress(t)["victims"].tolist() == ["<5", 0, 9, SUPPRESSED]


def test_complementary_not_needed_when_two_primaries():
    t = pd.DataFrame({"victims": [2, 4, 9, 7]})
    assert suppress(t)["victims"].tolist() == ["<5", "<5", 9, 7]


def test_complementary_two_way_cascade_hand_computed():
    # 3 hidden; row x -> 40 (smaller than 50); column a -> 9 (smaller than 20);
    # row z now has one hidden cell -> 12; column b has 40 and 12: done.
    t = pd.DataFrame({"a": [3, 20, 9], "b": [40, 60, 12], "c": [50, 8, 30]},
                     index=["x", "y", "z"])
    out = suppress(t)
    expected = np.array([[True, True, False], [False, False, False], [True, True, False]])
    np.testing.assert_array_equal(hidden_mask(out, ["a", "b", "c"]), expected)
    assert out.loc["x", "a"] == "<5"
    assert out.loc["z", "b"] == SUPPRESSED
    assert out.attrs["disclosure"] == {"threshold": 5, "primary": 1, "complementary": 3,
                                       "rates": 0, "count_cols": ["a", "b", "c"],
                                       "rate_cols": {}}


def test_every_line_has_zero_or_at_least_two_hidden():
    rng = np.random.default_rng(7)
    t = pd.DataFrame(rng.integers(0, 15, size=(8, 5)), columns=list("abcde"))
    out = suppress(t, threshold=5)
    h = hidden_mask(out, list("abcde"))
    for line in [*h, *h.T]:
        assert line.sum() != 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=3, max_size=3), min_size=2, max_size=6),
       st.sampled_from([5, 10]))
def test_property_no_single_hidden_cell_per_line_and_small_always_hidden(rows, threshold):
    t = pd.DataFrame(rows, columns=["a", "b", "c"])
    out = suppress(t, threshold=threshold)
    h = hidden_mask(out, ["a", "b", "c"])
    v = t.to_numpy()
    # every small count hidden, with the "<k" marker; zeros shown as 0
    assert (h[(v >= 1) & (v < threshold)]).all()
    assert (out.to_numpy()[(v >= 1) & (v < threshold)] == f"<{threshold}").all()
    assert (out.to_numpy()[v == 0] == 0).all() or h[v == 0].any()
    for line in [*h, *h.T]:
        assert line.sum() != 1
    # shown values are the originals
    shown = ~h
    np.testing.assert_array_equal(out.to_numpy()[shown].astype(int), v[shown])


def test_rows_only_complementary():
    # rows are different measures (not additive down the column)
    t = pd.DataFrame({"2023": [3, 40], "2024": [12, 45]}, index=["victims", "reports"])
    out = suppress(t, complementary="rows")
    assert out.loc["victims"].tolist() == ["<5", SUPPRESSED]
    assert out.loc["reports"].tolist() == [40, 45]


def test_total_column_takes_part_in_row_check():
    # r1: girls 3, boys 0, total 3 -> the total is itself small (primary), nothing else needed
    t = pd.DataFrame({"girls": [3, 30], "boys": [0, 20], "total": [3, 50]}, index=["r1", "r2"])
    out = suppress(t, total_cols=["total"], complementary="rows")
    assert out.loc["r1"].tolist() == ["<5", 0, "<5"]
    assert out.loc["r2"].tolist() == [30, 20, 50]
    # girls 3 of total 9 with no other non-zero member: total - others reveals girls -> hide total
    t2 = pd.DataFrame({"girls": [3], "boys": [0], "other": [6], "total": [9]})
    out2 = suppress(t2, total_cols=["total"], complementary="rows")
    assert out2.iloc[0].tolist() == ["<5", 0, SUPPRESSED, 9]  # smallest non-zero member first
    t3 = pd.DataFrame({"girls": [3], "boys": [0], "total": [3 + 0 + 7]}).assign(total=[10])
    out3 = suppress(t3, total_cols=["total"], complementary="rows")
    assert out3.iloc[0].tolist() == ["<5", 0, SUPPRESSED]  # no non-zero member: the total


def test_total_row_takes_part_in_column_check():
    t = pd.DataFrame({"victims": [3, 30, 33]}, index=["A", "B", "Total"])
    out = suppress(t, total_rows=["Total"])
    # column A+B = Total: hiding A alone would be undone by Total - B -> hide B (smallest other)
    assert out["victims"].tolist() == ["<5", SUPPRESSED, 33]


def test_rates_on_hidden_counts_are_hidden():
    t = pd.DataFrame({"town": list("abc"), "victims": [2, 6, 30], "pop": [900, 5000, 8000],
                      "per_10k": [22.2, 12.0, 37.5], "pct": [5.0, 15.0, 80.0]})
    out = suppress(t, count_cols=["victims"], rate_cols={"per_10k": "victims", "pct": ["victims"]})
    assert out["victims"].tolist() == ["<5", SUPPRESSED, 30]
    assert out["per_10k"].tolist() == [SUPPRESSED, SUPPRESSED, 37.5]
    assert out["pct"].tolist() == [SUPPRESSED, SUPPRESSED, 80.0]
    assert out.attrs["disclosure"]["rates"] == 4
    assert out["pop"].tolist() == [900, 5000, 8000]


def test_count_rows_restricts_counts():
    t = pd.DataFrame({"measure": ["victims", "% repeat"], "value": [3.0, 2.0]})
    out = suppress(t, count_cols=["value"], count_rows=[True, False])
    assert out["value"].tolist() == ["<5", 2.0]


def test_already_suppressed_cells_count_as_hidden():
    t = pd.DataFrame({"n": ["<5", 7, 30]})
    out = suppress(t, count_cols=["n"])
    assert out["n"].tolist() == ["<5", SUPPRESSED, 30]


@pytest.mark.parametrize("kw,match", [
    ({"threshold": 0}, "threshold"),
    ({"count_cols": ["nope"]}, "not in table"),
    ({"rate_cols": {"rate": "n"}, "count_cols": ["m"]}, "not among count_cols"),
    ({"complementary": "diag"}, "complementary"),
])
def test_bad_arguments(kw, match):
    t = pd.DataFrame({"n": [1, 2], "m": [3, 4], "rate": [0.1, 0.2]})
    with pytest.raises(DisclosureError, match=match):
        suppress(t, **kw)


def test_negative_or_fractional_counts_rejected_with_row():
    with pytest.raises(DisclosureError, match=r"row 'b'"):
        suppress(pd.DataFrame({"n": [3.0, 2.5]}, index=["a", "b"]), count_cols=["n"])
    with pytest.raises(DisclosureError, match="negative"):
        suppress(pd.DataFrame({"n": [-1, 2]}))
    assert issubclass(DisclosureError, ValueError)


def test_format_helpers():
    assert D.format_count(4, 5) == "<5" and D.format_count(0) == "0"
    assert D.count_phrase(9, 10) == "fewer than 10"
    assert D.default_threshold("internal") == 5 and D.default_threshold("public") == 10
    with pytest.raises(DisclosureError):
        D.default_threshold("press")


# ------------------------------------------------------------------ audit
def _page(tmp_path, body, meta=None, name="brief.html"):
    meta = meta or {"threshold": 5, "allowed_dates": ["2020-01-01"]}
    html = ("<html><body>"
            f'<script type="application/json" id="dmst-brief-meta">{json.dumps(meta)}</script>'
            f"{body}</body></html>")
    p = tmp_path / name
    p.write_text(html)
    return p


def test_audit_passes_clean_brief(tmp_path):
    t = suppress(pd.DataFrame({"region": ["A", "B", "C"], "victims": [3, 8, 40]}))
    body = ("<p>Since 2020-01-01, 51 victims were identified.</p>" + table_html(t, "Victims"))
    rep = audit(_page(tmp_path, body))
    assert rep.passed, rep.problems
    assert rep.n_tables == 1 and rep.threshold == 5


def test_audit_catches_each_problem_kind(tmp_path):
    raw = pd.DataFrame({"child_id": ["C000123"], "victims": [3]})
    body = (raw.to_html()  # not through suppress, has an id column and a small count
            + "<p>Region 2 had 3 victims. A child was found on 2019-03-14 (C000777).</p>"
            + '<script type="application/json" class="dmst-figure-data">'
            + json.dumps({"name": "bars", "columns": ["year", "n"], "count_cols": ["n"],
                          "rows": [["2019", 2]]}) + "</script>")
    rep = audit(_page(tmp_path, body))
    kinds = set(rep.problems["kind"])
    assert {"unsuppressed_table", "id_column", "small_count", "small_count_prose",
            "event_date", "child_id"} <= kinds
    assert rep.n_figures == 1
    assert not rep
    with pytest.raises(DisclosureError, match="audit failed"):
        rep.raise_if_failed()


def test_audit_threshold_from_meta_and_override(tmp_path):
    t = suppress(pd.DataFrame({"victims": [7, 30, 40]}), threshold=5)
    p = _page(tmp_path, table_html(t), meta={"threshold": 10})
    rep = audit(p)
    assert rep.threshold == 10 and "small_count" in set(rep.problems["kind"])
    assert audit(p, threshold=5).passed


def test_audit_explicit_child_ids_and_month_dates_ok(tmp_path):
    p = _page(tmp_path, "<p>Data through 2025-12 (month only). Youth XK9Q was seen.</p>")
    assert audit(p).passed
    rep = audit(p, child_ids=["XK9Q"])
    assert rep.problems["kind"].tolist() == ["child_id"]


def test_audit_written_dates(tmp_path):
    p = _page(tmp_path, "<p>on March 3, 2015 and 4 July 2016</p>")
    rep = audit(p)
    assert rep.problems["kind"].tolist() == ["event_date", "event_date"]
    # both written forms are read as day-precision dates; the report never repeats them
    from dmst_eval.disclosure import _date_strings

    assert sorted(_date_strings("on March 3, 2015 and 4 July 2016")) == \
        ["2015-03-03", "2016-07-04"]
    assert not rep.problems["detail"].str.contains("2015|2016|March|July").any()


def test_audit_notebook_outputs(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell("x")
    c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2 children in town\n"),
                 nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])]
    nb.cells = [c]
    p = tmp_path / "b.ipynb"
    nbformat.write(nb, p)
    rep = audit(p)
    assert set(rep.problems["kind"]) == {"small_count_prose", "error_output"}


def test_table_html_refuses_unsuppressed():
    with pytest.raises(DisclosureError, match="did not pass"):
        table_html(pd.DataFrame({"n": [1]}))
