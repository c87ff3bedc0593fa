"""Which towns have the highest rates? Victims by the shared place definition, smoothed rates
with rank intervals, significant scan clusters named in words, Moran's I, and the map (top
towns labelled, region outlines, statewide colour breaks)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import disclosure, plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Which towns have the highest rates?"


# -- the counts and the batch plan -------------------------------------------------------------
def town_counts(brief) -> pd.DataFrame:
    """Victims per town in the period under the shared place definition (every town, with its
    region), as :func:`dmst_eval.tracking.towns_answer` counts them; once per batch."""
    from dmst_eval import choices, tracking as tr

    def compute():
        lo, hi = tr._resolve(brief.cd, *brief.period)
        town = tr._place_events(brief.cd, tr._episodes_in(brief.cd, lo, hi), choices.load())
        pop = tr._town_population()[["town", "region"]]
        pop["victims"] = pop["town"].map(town.astype(str).value_counts()).fillna(0) \
            .astype(int)
        return pop.reset_index(drop=True)
    return sh.batch_memo(brief, ("town_counts", brief.period), compute)


def town_key(brief, town: str, region: str):
    """Ledger key of a town's victims (the same cell in the statewide and the regional
    brief: keyed by the town's region)."""
    return disclosure.CellKey(f"Victims living in {town}", str(region),
                              brief.window_label("period"))


def cells(brief, ledger) -> None:
    """Register every town's victims in the period (the map and the tables show them, and a
    rate with the town's known population is the count), and, in a regional brief, that the
    region's towns add up to its confirmed victims."""
    tc = town_counts(brief)
    if brief.region_arg:
        tc = tc[tc["region"] == brief.region_arg]
    ks = [ledger.add(town_key(brief, r.town, r.region), int(r.victims))
          for r in tc.itertuples()]
    total = brief.key("Confirmed victims", brief.window_label("period"))
    if brief.region_arg and total in ledger:
        ledger.add_sum_if_holds(total, ks, name="towns add up to the region")


def _shown_towns(brief, towns) -> np.ndarray:
    """Which towns' counts the batch plan shows to this audience (zeros included)."""
    tc = town_counts(brief).set_index("town")["region"]
    return np.array([brief.shown(town_key(brief, t, tc[t])) for t in towns], dtype=bool)


def _cluster_shown(brief, towns) -> bool:
    """A cluster's victims (and so its relative risk, which with the state total tells them)
    are shown only when every one of its towns' counts is shown: then they add nothing."""
    return bool(len(towns)) and bool(_shown_towns(brief, list(towns)).all())


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def answer(brief) -> str:
    tw = A.answers(brief).towns
    sig = tw.significant
    sig = sig[[_cluster_shown(brief, c) for c in sig["towns"]]] if len(sig) else sig
    if len(sig):
        c = sig.iloc[0]
        scope_towns = [x for x in c["towns"] if x in set(tw.in_scope()["town"])]
        return (f"In {tw.period}, the highest rates were in and around {c['centre']}: "
                f"{_and(scope_towns)} {'is' if len(scope_towns) == 1 else 'are'} in a cluster "
                f"where victims were {A.num(c['relative_risk'], 2)} times as frequent as in the "
                f"rest of the state (p {_p(c['p_value'])}; spatial scan).")
    if not tw.flat:
        ins = tw.in_scope()
        top = ins.loc[_shown_towns(brief, ins["town"]) & (ins["victims"] > 0).to_numpy(),
                      "town"].head(1).tolist()
        if top:
            r = tw.towns.set_index("town").loc[top[0]]
            sure = ("clearly the highest" if r["prob_top"] >= 0.95 else
                    "but not clearly the highest: its rank could be anywhere from "
                    f"{int(r['rank_lower'])} to {int(r['rank_upper'])}")
            return (f"In {tw.period}, {top[0]} had the highest smoothed rate in {brief.scope} "
                    f"among the towns whose numbers can be shown "
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
    # the map: statewide breaks, top towns labelled, region outlines, clusters outlined; every
    # town's count and rate as the batch plan shows them (a rate times the town's known
    # population is the count)
    g = tw.gdf
    ins = g["in_scope"].to_numpy()
    towns = g["town"].to_numpy()[ins]
    tc = town_counts(brief).set_index("town")["region"]
    data = pd.DataFrame({"town": towns,
                         "victims": g["victims"].astype(int).to_numpy()[ins],
                         "crude_rate": g["crude_rate"].to_numpy()[ins]})
    keys = pd.DataFrame({"victims": [town_key(brief, x, tc[x]) for x in towns]},
                        index=data.index, dtype=object)
    data = disclosure.apply_plan(data, keys, brief.plan, brief.audience,
                                 rate_cols={"crude_rate": "victims"})
    # hidden towns are drawn hatched whatever their count; colour classes come from the rates
    # shown statewide (the same towns in every brief of an audience)
    hidden = ~_shown_towns(brief, g["town"])
    gp = g.copy()
    gp.loc[hidden, "victims"] = 1
    gp.loc[hidden, "crude_rate"] = np.nan
    allt = tw.towns
    shown_all = _shown_towns(brief, allt["town"])
    breaks = plots.statewide_breaks(allt.loc[shown_all & (allt["victims"] > 0).to_numpy(),
                                             "crude_rate"])
    fig, ax = plots.new_figure("map", layout="none")
    ax.set_position([0.01, 0.02, 0.98, 0.9])
    plots.town_rate_map(gp, "crude_rate", counts="victims", threshold=t,
                        breaks=breaks, region=tw.region,
                        label=[x for x in tw.top_towns(t, 5)
                               if _shown_towns(brief, [x])[0]],
                        clusters=[list(c) for c in tw.significant["towns"]], ax=ax,
                        legend_title=tw.rate_unit,
                        title=f"Victims {tw.rate_unit}, {tw.period}")
    parts.append(brief.figure(
        fig, "town_rates",
        f"Crude rate of victims {tw.rate_unit} by home town, {tw.period}. Colour classes are "
        f"the same in every brief (statewide breaks; darker = higher). Hatched: a count hidden "
        f"(fewer than {t} victims, or hidden so that no small count can be worked out). Thin "
        "lines: DCF regions; thick black line: significant cluster (spatial scan, p < 0.05). "
        "Named: the highest smoothed rates among towns whose count is shown.", data=data))
    figs.append("town_rates")
    top = tw.in_scope()
    top = top[_shown_towns(brief, top["town"]) & (top["victims"] >= t).to_numpy()].head(10)
    ttab = pd.DataFrame({"town": top["town"], "victims": top["victims"].astype(int),
                         "crude rate": [A.num(x, 2) for x in top["crude_rate"]],
                         "smoothed rate": [A.num(x, 2) for x in top["smoothed_rate"]],
                         "rank interval": [f"{int(a)} to {int(b)}" for a, b in
                                           zip(top["rank_lower"], top["rank_upper"])]})
    tkeys = pd.DataFrame({"victims": [town_key(brief, x, tc[x]) for x in ttab["town"]]},
                         index=ttab.index, dtype=object)
    h, tt = brief.table(ttab, caption=f"Highest smoothed rates, towns with at least {t} "
                                      f"victims, {tw.period} ({tw.rate_unit})",
                        cells=tkeys, rate_cols={"crude rate": "victims",
                                                "smoothed rate": "victims"},
                        note="Empirical-Bayes smoothing pulls towns with few children towards "
                             "the state rate. The rank interval is the 95% posterior interval "
                             "of the town's rank among all 169 towns (1 = highest): a wide "
                             "interval means the ranking is uncertain. When every smoothed rate "
                             "is equal, towns differ no more than chance would produce and no "
                             "single town can be ranked. Towns whose count is hidden are not "
                             "listed.")
    if len(ttab):
        parts.append(h)
        tables["top_towns"] = tt
    else:
        parts.append(markup.note(f"No town in {brief.scope} had {t} or more victims shown in "
                                 f"{tw.period}, so no town's rate is listed (the map hides "
                                 "small counts)."))
    sig = tw.significant
    if len(sig):
        ok = [_cluster_shown(brief, c) for c in sig["towns"]]
        ctab = pd.DataFrame({
            "towns in the cluster": [_and(x) for x in sig["towns"]],
            "victims": [f"{int(v):,}" if o else disclosure.SUPPRESSED
                        for v, o in zip(sig["victims"], ok)],
            "expected": [A.num(x, 1) if o else disclosure.SUPPRESSED
                         for x, o in zip(sig["expected"], ok)],
            "relative risk": [A.num(x, 2) if o else disclosure.SUPPRESSED
                              for x, o in zip(sig["relative_risk"], ok)],
            "p-value": [("< 0.001" if p < 0.001 else f"{p:.3f}") for p in sig["p_value"]]})
        h, ct = brief.table(ctab, caption=f"Significant clusters (spatial scan), {tw.period}",
                            count_cols=[], complementary=False,
                            note="Kulldorff's Poisson scan statistic; p-values from "
                                 "999 Monte Carlo replications, which account for the "
                                 "thousands of circles examined. Relative risk: rate inside the "
                                 "cluster over the rate outside. A cluster's victims, expected "
                                 "count and relative risk are shown only when every one of its "
                                 "towns' counts is (they would tell the hidden ones' sum).")
        parts.append(h)
        tables["clusters"] = ct
    if pd.notna(tw.moran_p):
        word = ("have more similar rates than chance would give" if tw.moran_p < tw.alpha
                else "have rates no more similar than chance would give")
        parts.append(markup.paragraph(
            f"Neighbouring towns {word} in {tw.period} (Moran's I {A.num(tw.moran_I, 2)}, "
            f"p {_p(tw.moran_p)}, statewide)."))
    return Section(None, "".join(parts), tables=tables, figures=figs)
