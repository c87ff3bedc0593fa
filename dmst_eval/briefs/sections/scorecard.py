"""RBA scorecard: How much did we do? How well did we do it? Is anyone better off?

One table per strategy, its rows grouped by the three RBA questions. Each row: the measure, a
sparkline (actual by year, the baseline forecast with its band, the target), its polarity, the
reporting-period value with its interval, n / of, the baseline value, the target and two
verdicts — against the target and against the baseline forecast ("the curve"). Below each table
the story behind the curve, partners and what works, where the program has written them (an
internal brief marks the ones still to be written).

Every number goes through the brief's publishing primitives: the table through
:meth:`~dmst_eval.briefs.Brief.suppress` and :meth:`~dmst_eval.briefs.Brief.table`, each
sparkline through :meth:`~dmst_eval.briefs.Brief.figure` with its suppressed yearly data (a
year whose count is hidden is not drawn; a band built on a hidden baseline count neither).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Results-Based Accountability scorecard"
#: What an internal brief shows where the program has not written the story yet.
TO_BE_WRITTEN = "To be written by the program."
_COUNT_KINDS = ("count", "sum", "nunique")
_SPARK = "@@sparkline-{}@@"
#: A sparkline's size in inches: as it is shown in the table (style.css, td.dmst-spark), so
#: that nothing is scaled. The years are stated once, in the legend under the tables.
SPARK_SIZE = (1.4, 0.42)
_GROUP = "@@question@@"


def scorecard(brief, baseline=None, forecast=True):
    """The brief's :class:`~dmst_eval.rba.ScorecardResult` (computed once per brief).

    ``baseline`` (first, last) defaults to the brief's parameters ``rba_baseline_start`` /
    ``rba_baseline_end`` and, without them, to the brief's comparison period, so the scorecard's
    baseline and the comparison the rest of the brief makes are the same years.
    ``forecast=False`` is enough for the counts (the ledger's :func:`cells`, :func:`keys`): the
    full scorecard when the brief has it, else one without forecasts (cheaper).
    """
    from dmst_eval import rba

    if baseline is None:
        p = brief.params
        start, end = (getattr(p, "rba_baseline_start", None), getattr(p, "rba_baseline_end", None))
        if start or end:
            baseline = (start or brief.cs, end or brief.ce)
    key = ("scorecard", None if baseline is None else tuple(str(x) for x in baseline))
    if not forecast and key not in brief.cache:
        ckey = (*key, "counts")
        if ckey not in brief.cache:
            b = baseline or (brief.cs, brief.ce)
            brief.cache[ckey] = rba.scorecard(brief.cd, region=brief.region_arg, start=brief.ps,
                                              end=brief.pe, baseline=b, forecast=False)
        return brief.cache[ckey]
    if key not in brief.cache:
        b = baseline or (brief.cs, brief.ce)
        brief.cache[key] = rba.scorecard(brief.cd, region=brief.region_arg, start=brief.ps,
                                         end=brief.pe, baseline=b)
    brief.cache["scorecard"] = brief.cache[key]
    return brief.cache[key]


#: Scorecard counts that are the same count as a cell another section shows
#: ({(measure key, "n" | "of"): ledger measure}): registered under that cell's key (when the
#: values agree) so that the plan hides it in both places or neither.
ALIASES = {("identified_within_30d", "of"): "Confirmed victims",
           ("referred_within_30d", "of"): "Confirmed victims"}


def _label(r) -> str:
    return str(r["label"])


def _parts(kind: str) -> tuple:
    """The counts a row shows: n and of for shares, n alone otherwise."""
    return ("n", "of") if kind == "share" else ("n",)


def _cell_keys(brief, sc, ledger=None) -> dict:
    """Ledger keys of every count the scorecard shows: {(measure, part, period): CellKey},
    part "n" or "of", period "period", "baseline" or a year. With ``ledger``, a count that is
    also another section's cell (:data:`ALIASES`) takes that cell's key when the values
    agree."""
    sm = sc.summary
    b0, b1 = sc.baseline
    labels = {"period": brief.window_label("period"), "baseline": f"{b0}-{b1}"}
    out = {}
    for _, r in sm.iterrows():
        for part in _parts(r["kind"]):
            for per, lab in labels.items():
                out[(r["measure"], part, per)] = brief.key(f"Scorecard: {_label(r)} ({part})",
                                                           lab)
            if brief.region_arg:  # yearly numbers (the sparklines) statewide only
                continue
            for y in sc.annual.loc[sc.annual["measure"] == r["measure"], "year"]:
                out[(r["measure"], part, int(y))] = brief.key(
                    f"Scorecard: {_label(r)} ({part})", str(int(y)))
    return out


def _values(sc) -> dict:
    """{(measure, part, period): true count} for every key of :func:`_cell_keys`."""
    out = {}
    annual = dict(tuple(sc.annual.groupby("measure", sort=False)))
    empty = sc.annual.iloc[:0]
    for r in sc.summary.itertuples(index=False):
        kind = r.kind
        for part, col, bcol in (("n", "n", "baseline_n"), ("of", "of", "baseline_of")):
            if part not in _parts(kind):
                continue
            for per, c in (("period", col), ("baseline", bcol)):
                v = getattr(r, c)
                out[(r.measure, part, per)] = None if pd.isna(v) else int(v)
        a = annual.get(r.measure, empty)
        yn = a["denominator"] if kind == "mean" else a["numerator"]
        for y, v in zip(a["year"], yn):
            out[(r.measure, "n", int(y))] = int(round(float(v)))
        if kind == "share":
            for y, v in zip(a["year"], a["denominator"]):
                out[(r.measure, "of", int(y))] = int(round(float(v)))
    return out


def _tracking_cells(brief) -> dict:
    """{CellKey: count} of the tracking table (victims, repeat victims, episodes by year and
    window), which the scorecard's aliases refer to."""
    from dmst_eval.briefs.sections import tracking

    def compute():
        tab, ks, _ = tracking._counts(brief)
        return {ks.at[i, c]: int(tab.at[i, c]) for i in tab.index for c in tab.columns}
    return sh._memo(brief, "tracking_cells", compute)


def keys(brief) -> dict:
    """The scorecard's ledger keys, a count that is also a tracking-table cell
    (:data:`ALIASES`) under that cell's key when the two are equal."""
    def compute():
        sc = scorecard(brief, forecast=False)
        ks = _cell_keys(brief, sc)
        vals = _values(sc)
        known = _tracking_cells(brief)
        for (m, part, per), k in list(ks.items()):
            alias = ALIASES.get((m, part))
            if alias is None:
                continue
            ak = brief.key(alias, k.period)
            if ak in known and known[ak] == vals.get((m, part, per)):
                ks[(m, part, per)] = ak
        return ks
    return sh._memo(brief, "scorecard_keys", compute)


def cells(brief, ledger) -> None:
    """Register every count the scorecard shows: n (and of, with the complement of − n, for
    shares) for the period, the baseline and each year; the years add up to each window
    (exactly, or at most the sum where a person counts once a window)."""
    sc = scorecard(brief, forecast=False)
    ks = keys(brief)
    vals = _values(sc)
    for (m, part, per), k in ks.items():
        v = vals.get((m, part, per))
        if v is None:
            continue
        ledger.add(k, v)
    if brief.region_arg:  # no yearly numbers in a regional brief: windows only
        years_of = {}
    else:
        years_of = None
    b0, b1 = sc.baseline
    windows = {"period": list(range(sc.start.year, sc.end.year + 1)),
               "baseline": list(range(b0, b1 + 1))}
    for _, r in sc.summary.iterrows():
        m = r["measure"]
        years = set() if years_of is not None else \
            {int(y) for y in sc.annual.loc[sc.annual["measure"] == m, "year"]}
        for part in _parts(r["kind"]):
            for per, ys in windows.items():
                tot = ks.get((m, part, per))
                parts = [ks[(m, part, y)] for y in ys if y in years]
                if tot is not None and tot in ledger and len(parts) == len(ys):
                    ledger.add_sum_if_holds(tot, parts, name="years add up to the period")
        if r["kind"] == "share":  # "20 of 28 not re-victimized" must not tell the 8
            for per in ["period", "baseline", *sorted(years)]:
                kn, ko = ks.get((m, "n", per)), ks.get((m, "of", per))
                if kn is None or ko is None or kn not in ledger or ko not in ledger:
                    continue
                comp = ledger.add(f"Scorecard: {_label(r)} (of − n)", ledger.value(ko)
                                  - ledger.value(kn), region=brief.region, period=kn.period,
                                  audience=None)
                ledger.add_sum(ko, [kn, comp], name="n + complement = of")


def _numbers(brief, sm: pd.DataFrame) -> pd.DataFrame:
    """The published numbers of every row, as the batch plan shows them: a value, its interval
    and its verdicts are hidden with the counts they are built on."""
    from dmst_eval import disclosure

    ks = keys(brief)
    df = pd.DataFrame({
        "strategy": sm["strategy"], "question": sm["question"], "measure": sm["label"],
        "key": sm["measure"],
        "n": sm["n"], "of": sm["of"], "baseline_n": sm["baseline_n"],
        "baseline_of": sm["baseline_of"],
        "value": sm["value"].astype(float), "value_lower": sm["value_lower"].astype(float),
        "value_upper": sm["value_upper"].astype(float),
        "baseline": sm["baseline_value"].astype(float),
        "forecast": sm["forecast"].astype(float),
        "target_verdict": sm["target_verdict"], "curve_verdict": sm["curve_verdict"],
    })
    kf = pd.DataFrame({c: [ks.get((m, part, per)) if pd.notna(v) else None
                           for m, v in zip(sm["measure"], sm[c])]
                       for c, part, per in (("n", "n", "period"), ("of", "of", "period"),
                                            ("baseline_n", "n", "baseline"),
                                            ("baseline_of", "of", "baseline"))},
                      index=df.index, dtype=object)
    period = ["n", "of"]
    both = ["n", "of", "baseline_n", "baseline_of"]
    return disclosure.apply_plan(df, kf, brief.plan, brief.audience,
                                 rate_cols={"value": period, "value_lower": period,
                                            "value_upper": period, "target_verdict": period,
                                            "baseline": ["baseline_n", "baseline_of"],
                                            "forecast": ["baseline_n", "baseline_of"],
                                            "curve_verdict": both})


def _annual(brief, sc, key: str, kind: str) -> pd.DataFrame:
    """One measure's yearly series as published: each year's n (and of) as the batch plan
    shows it (the plan knows that the years add up to the windows the table shows, so no
    hidden year can be worked out), the value hidden with its counts."""
    from dmst_eval import disclosure

    ks = keys(brief)
    a = sc.annual[sc.annual["measure"] == key]
    if kind in _COUNT_KINDS:
        n, of = a["numerator"], pd.Series(pd.NA, index=a.index)
    elif kind == "share":
        n, of = a["numerator"], a["denominator"]
    else:  # mean: n is the number of values averaged
        n, of = a["denominator"], pd.Series(pd.NA, index=a.index)
    years = a["year"].astype(int).to_numpy()
    df = pd.DataFrame({"year": years,
                       "n": pd.array(np.round(n.astype(float)), dtype="Int64"),
                       "of": pd.array(pd.to_numeric(of, errors="coerce").round(),
                                      dtype="Int64"),
                       "value": a["value"].astype(float).to_numpy()})
    kf = pd.DataFrame({"n": [ks.get((key, "n", int(y))) for y in years],
                       "of": [ks.get((key, "of", int(y))) for y in years]},
                      index=df.index, dtype=object)
    return disclosure.apply_plan(df, kf, brief.plan, brief.audience,
                                 rate_cols={"value": ["n", "of"]})


def _shown(v) -> bool:
    from dmst_eval import disclosure

    return not disclosure.is_hidden(v) and v is not None and not (
        isinstance(v, float) and np.isnan(v))


def _sparkline(brief, sc, r: pd.Series, pub: pd.Series) -> str:
    """The sparkline of one row (inline SVG), drawn from published numbers only."""
    from dmst_eval import rba

    kind = r["kind"]
    data = _annual(brief, sc, r["measure"], kind)
    vals = np.array([float(v) if _shown(v) else np.nan for v in data["value"]])
    published = sc.annual.copy()
    m = published["measure"] == r["measure"]
    published.loc[m, "value"] = vals
    band = sc.forecast_annual
    if not _shown(pub["forecast"]):
        band = band[band["measure"] != r["measure"]]
    shown = rba.ScorecardResult(summary=sc.summary, annual=published, measures=sc.measures,
                                start=sc.start, end=sc.end, baseline=sc.baseline,
                                region=sc.region, forecast_annual=band)
    y0, y1 = int(data["year"].min()), int(data["year"].max())
    alt = (f"{r['label']}: yearly values {y0}–{y1}, the baseline forecast with its 95% band"
           + (" and the target" if np.isfinite(r["target"]) else ""))
    spark = shown.sparkline(r["measure"], size=SPARK_SIZE, title=alt, year_labels=False)
    return brief.figure(spark,
                        f"scorecard_{r['measure']}", caption=alt, data=data, alt=alt)


def _row_text(r: pd.Series, pub: pd.Series) -> dict:
    from dmst_eval import rba

    kind, unit = r["kind"], r["unit"]
    value = "hidden" if not _shown(pub["value"]) else rba.format_value(r["value"], kind, unit)
    ci = ""
    if _shown(pub["value_lower"]) and np.isfinite(r["value_lower"]):
        ci = (f"{rba.format_value(r['value_lower'], kind, '')} to "
              f"{rba.format_value(r['value_upper'], kind, '')}")
    target = "" if not np.isfinite(r["target"]) else rba.format_value(r["target"], kind, unit)
    tv = pub["target_verdict"]
    tv = rba.describe_target(r) if _shown(tv) and tv in ("met", "not met") else (
        tv if _shown(tv) else "hidden")
    cv = pub["curve_verdict"] if _shown(pub["curve_verdict"]) else "hidden"
    if ci and value != "hidden":
        value = f"{value} ({ci})"
    return {"value (95% CI)": value,
            "baseline": (rba.format_value(r["baseline_value"], kind, unit)
                         if _shown(pub["baseline"]) else "hidden"),
            "target": target, "against the target": tv, "against the curve": cv}


def _cell(v):
    """A published count as a table cell: a whole number, a suppression marker, or empty."""
    if isinstance(v, str):
        return v
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    return int(v)


def _story(brief, rows: pd.DataFrame) -> str:
    internal = brief.audience == "internal"
    items = []
    for _, r in rows.iterrows():
        parts = [(lab, r[f]) for f, lab in (("story", "Story behind the curve"),
                                            ("partners", "Partners"),
                                            ("what_works", "What works"))]
        written = [(lab, str(v)) for lab, v in parts if isinstance(v, str) and v.strip()]
        if written or internal:
            items.append({"label": r["label"], "parts": written,
                          "missing": [lab for lab, v in parts
                                      if not (isinstance(v, str) and v.strip())]
                          if internal else []})
    if not items:
        return ""
    return markup.render_template("scorecard_story.html.j2", items=items,
                                  to_be_written=TO_BE_WRITTEN)


@section(TITLE)
def build(brief) -> Section:
    from dmst_eval import rba

    sc = scorecard(brief)
    sm = sc.summary.reset_index(drop=True)
    pub = _numbers(brief, sm)
    b0, b1 = sc.baseline
    m = brief.month
    comparison = (b0, b1) == (brief.cs.year, brief.ce.year)
    intro = markup.paragraph(
        f"Reporting period {m(brief.ps)} to {m(brief.pe)}. Baseline {b0}–{b1}"
        + (" (the brief's comparison period)" if comparison else "")
        + ". Each measure has two verdicts: against its target (met or not met, and by how "
          "much) and against the baseline forecast — \"the curve\": "
        + ("the baseline's trend" if b1 - b0 + 1 >= 5 else "the baseline's level")
        + " projected over the reporting period with a 95% prediction interval. A value "
          "outside that interval turned the curve for the better or for the worse; inside it, "
          "there is no change from the forecast. Whether better means up or down is the "
          "measure's polarity.")
    parts, tables = [intro], {"scorecard": pub}
    for strategy in rba.STRATEGIES:
        idx = np.flatnonzero(sm["strategy"].to_numpy() == strategy)
        if not len(idx):
            continue
        rows, sparks = [], {}
        last_q = None
        for i in idx:
            r, p = sm.iloc[i], pub.iloc[i]
            if not brief.region_arg:
                sparks[r["measure"]] = _sparkline(brief, sc, r, p)
            if r["question"] != last_q:  # a group row: the RBA question
                rows.append({"measure": _GROUP + r["question"], "n": "", "of": ""})
            rows.append({"measure": r["label"],
                         "trend": _SPARK.format(r["measure"]) if not brief.region_arg
                         else "statewide brief",
                         "better if": ("↑ higher" if r["polarity"] == "higher" else "↓ lower"),
                         **_row_text(r, p), "n": _cell(p["n"]), "of": _cell(p["of"])})
            last_q = r["question"]
        cols = ["measure", "trend", "better if", "value (95% CI)", "n", "of", "baseline",
                "target", "against the target", "against the curve"]
        shown = pd.DataFrame(rows, columns=cols, dtype=object).fillna("")
        shown.attrs = dict(pub.attrs)
        shown.attrs["disclosure"] = dict(pub.attrs["disclosure"], count_cols=["n", "of"])
        parts.append(markup.render_template("scorecard_strategy.html.j2", strategy=strategy))
        html, _ = brief.table(shown)
        for key, fig in sparks.items():
            html = html.replace(f"<td>{_SPARK.format(key)}</td>",
                                f'<td class="dmst-spark">{fig}</td>')
        html = re.sub(r"<tr><td>" + re.escape(_GROUP) + r"([^<]*)</td>(?:<td[^>]*></td>)*</tr>",
                      lambda g: (f'<tr class="dmst-group-row"><td class="dmst-group" '
                                 f'colspan="{len(cols)}">{g[1]}</td></tr>'),
                      html)
        html = html.replace('<table class="dmst-table"',
                            '<table class="dmst-table dmst-scorecard"', 1)
        parts.append(html)
        parts.append(_story(brief, sm.iloc[idx]))
    if brief.region_arg:
        parts.append(markup.note(
            "Regional briefs show no yearly trend lines: a region's yearly counts are too "
            "small to publish without giving small numbers away (they would be hidden almost "
            "everywhere). The statewide brief shows the trends."))
    years = (f"{int(sc.annual['year'].min())} to {int(sc.annual['year'].max())}"
             if not brief.region_arg and len(sc.annual) else None)
    parts.append(markup.render_template("scorecard_legend.html.j2", years=years))
    parts.append(markup.note(
        "Counts per year are yearly averages over the period (n is the period's total, a whole "
        "number); shares are pooled over the period with n of \"of\"; means are shown with "
        "their unit and n is the number of values averaged. A victim counts once in a period. "
        "95% CI: confidence interval of the period's value. Targets are illustrative defaults "
        "set for the synthetic data unless the agency supplied its own. Values, intervals and "
        "verdicts built on a hidden count are hidden."))
    return Section(None, "".join(parts), tables=tables)
