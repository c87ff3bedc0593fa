"""Which towns have the highest rates? Victims by the shared place definition, smoothed rates
with rank intervals, significant scan clusters named in words, Moran's I, and the map (top
towns labelled, region outlines, statewide colour breaks)."""
from __future__ import annotations

import pandas as pd

from dmst_eval import plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A

TITLE = "Which towns have the highest rates?"


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def answer(brief) -> str:
    tw = A.answers(brief).towns
    t = brief.threshold
    sig = tw.significant
    sig = sig[sig["victims"] >= t]
    if len(sig):
        c = sig.iloc[0]
        scope_towns = [x for x in c["towns"] if x in set(tw.in_scope()["town"])]
        return (f"In {tw.period}, the highest rates were in and around {c['centre']}: "
                f"{_and(scope_towns)} {'is' if len(scope_towns) == 1 else 'are'} in a cluster "
                f"where victims were {A.num(c['relative_risk'], 2)} times as frequent as in the "
                f"rest of the state (p {_p(c['p_value'])}; spatial scan).")
    if not tw.flat:
        top = tw.top_towns(t, 1)
        if top:
            r = tw.towns.set_index("town").loc[top[0]]
            sure = ("clearly the highest" if r["prob_top"] >= 0.95 else
                    "but not clearly the highest: its rank could be anywhere from "
                    f"{int(r['rank_lower'])} to {int(r['rank_upper'])}")
            return (f"In {tw.period}, {top[0]} had the highest smoothed rate in {brief.scope} "
                    f"({A.num(r['smoothed_rate'], 2)} victims {tw.rate_unit}), {sure}.")
    return (f"In {tw.period}, no town or group of towns in {brief.scope} had clearly more "
            "victims than its number of children explains.")


@section(TITLE)
def build(brief) -> Section:
    tw = A.answers(brief).towns
    t = brief.threshold
    parts = [markup.paragraph(answer(brief), cls="dmst-answer"),
             markup.paragraph(f"{tw.place_definition} Period: {tw.period}. Smoothing, the "
                              "cluster tests and the colour classes are statewide, so they mean "
                              "the same in every brief.")]
    tables, figs = {}, []
    # the map: statewide breaks, top towns labelled, region outlines, clusters outlined
    g = tw.gdf
    data = brief.suppress(pd.DataFrame({"town": g["town"].to_numpy(),
                                        "victims": g["victims"].astype(int).to_numpy(),
                                        "crude_rate": g["crude_rate"].to_numpy()})
                          [g["in_scope"].to_numpy()].reset_index(drop=True),
                          count_cols=["victims"], rate_cols={"crude_rate": "victims"},
                          complementary=False)
    fig, ax = plots.new_figure("map", layout="none")
    ax.set_position([0.01, 0.02, 0.98, 0.9])
    tw.plot(ax=ax, threshold=t, title=f"Victims {tw.rate_unit}, {tw.period}")
    parts.append(brief.figure(
        fig, "town_rates",
        f"Crude rate of victims {tw.rate_unit} by home town, {tw.period}. Colour classes are "
        f"the same in every brief (statewide breaks; darker = higher). Hatched: fewer than {t} "
        "victims (hidden). Thin lines: DCF regions; thick black line: significant cluster "
        "(spatial scan, p < 0.05). Named: the highest smoothed rates among towns with at least "
        f"{t} victims.", data=data))
    figs.append("town_rates")
    top = tw.in_scope()
    top = top[top["victims"] >= t].head(10)
    ttab = pd.DataFrame({"town": top["town"], "victims": top["victims"].astype(int),
                         "crude rate": [A.num(x, 2) for x in top["crude_rate"]],
                         "smoothed rate": [A.num(x, 2) for x in top["smoothed_rate"]],
                         "rank interval": [f"{int(a)} to {int(b)}" for a, b in
                                           zip(top["rank_lower"], top["rank_upper"])]})
    h, tt = brief.table(ttab, caption=f"Highest smoothed rates, towns with at least {t} "
                                      f"victims, {tw.period} ({tw.rate_unit})",
                        count_cols=["victims"], complementary=False,
                        note="Empirical-Bayes smoothing pulls towns with few children towards "
                             "the state rate. The rank interval is the 95% posterior interval "
                             "of the town's rank among all 169 towns (1 = highest): a wide "
                             "interval means the ranking is uncertain. When every smoothed rate "
                             "is equal, towns differ no more than chance would produce and no "
                             "single town can be ranked.")
    if len(ttab):
        parts.append(h)
        tables["top_towns"] = tt
    else:
        parts.append(markup.note(f"No town in {brief.scope} had {t} or more victims in "
                                 f"{tw.period}, so no town's rate is listed (the map hides "
                                 "small counts)."))
    sig = tw.significant
    if len(sig):
        ctab = pd.DataFrame({
            "towns in the cluster": [_and(x) for x in sig["towns"]],
            "victims": sig["victims"].astype(int),
            "expected": [A.num(x, 1) for x in sig["expected"]],
            "relative risk": [A.num(x, 2) for x in sig["relative_risk"]],
            "p-value": [("< 0.001" if p < 0.001 else f"{p:.3f}") for p in sig["p_value"]]})
        h, ct = brief.table(ctab, caption=f"Significant clusters (spatial scan), {tw.period}",
                            count_cols=["victims"], complementary=False,
                            rate_cols={"relative risk": "victims", "expected": "victims"},
                            note="Kulldorff's Poisson scan statistic; p-values from "
                                 "999 Monte Carlo replications, which account for the "
                                 "thousands of circles examined. Relative risk: rate inside the "
                                 "cluster over the rate outside.")
        parts.append(h)
        tables["clusters"] = ct
    if pd.notna(tw.moran_p):
        word = ("have more similar rates than chance would give" if tw.moran_p < tw.alpha
                else "have rates no more similar than chance would give")
        parts.append(markup.paragraph(
            f"Neighbouring towns {word} in {tw.period} (Moran's I {A.num(tw.moran_I, 2)}, "
            f"p {_p(tw.moran_p)}, statewide)."))
    return Section(None, "".join(parts), tables=tables, figures=figs)
