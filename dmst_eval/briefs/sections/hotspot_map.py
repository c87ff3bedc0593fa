"""Where: map of confirmed episodes per 10,000 children by town (hidden counts hatched), and the
towns with the highest smoothed rates."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import disclosure, plots
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Where: confirmed episodes by town"


@section(TITLE)
def build(brief) -> Section:
    from dmst_eval import geography

    towns = geography.towns()
    if brief.region_arg:
        towns = towns[towns["dcf_region"] == brief.region_arg]
    # place-based: confirmed episodes located in the towns shown, over the whole study
    # window (a three-year period leaves almost every town with a hidden small count)
    lo, hi = brief.study
    ep = brief.cd.episodes
    ep = ep[ep["confirmed"].fillna(False).astype(bool)
            & (ep["identified_at"] >= lo) & (ep["identified_at"] < hi + pd.Timedelta(days=1))
            & ep["town"].isin(towns["town"])]
    counts = ep.groupby(ep["town"].astype(str)).size()
    years = ((hi - lo).days + 1) / 365.25
    df = pd.DataFrame({"town": towns["town"].to_numpy(),
                       "episodes": counts.reindex(towns["town"]).fillna(0).astype(int)
                       .to_numpy(),
                       "children_under_18": towns["population_under18"].astype(int)
                       .to_numpy()})
    df["rate_per_10k_per_year"] = df["episodes"] / (df["children_under_18"] * years) * 1e4
    sup = brief.suppress(df, count_cols=["episodes"],
                         rate_cols={"rate_per_10k_per_year": "episodes"})
    hidden = sup["episodes"].map(disclosure.is_hidden).to_numpy()
    # fixed layout (map + colorbar), which saves a layout pass over the 169 towns
    fig, ax = plots.new_figure("map", layout="none")
    ax.set_position([0.01, 0.02, 0.83, 0.9])
    cax = fig.add_axes([0.87, 0.2, 0.022, 0.6])
    g = towns.to_crs(geography.CT_CRS).reset_index(drop=True)
    zero = (df["episodes"] == 0).to_numpy()
    pos = ~hidden & ~zero
    g = g.assign(rate=np.where(pos, df["rate_per_10k_per_year"].to_numpy(), np.nan))
    with plots.deferred_draw(fig):  # one render when saved, not one per layer
        if zero.any():
            g[zero].plot(ax=ax, color="white", edgecolor="#BBBBBB", linewidth=0.4)
        if pos.any():
            g[pos].plot(column="rate", ax=ax, cmap=plots.SEQUENTIAL, legend=True,
                        edgecolor="white", linewidth=0.4,
                        cax=cax, legend_kwds={"label": "confirmed episodes per 10,000 "
                                                          "children per year"})
        if hidden.any():
            g[hidden].plot(ax=ax, color=plots.SUPPRESSED_COLOR,
                           hatch=plots.SUPPRESSED_HATCH, edgecolor="#999999", linewidth=0.4)
    if not pos.any():
        cax.remove()  # no colour scale without a shown rate
    ax.set_axis_off()
    ax.set_title(f"Confirmed episodes by town, {lo.year}–{hi.year}")
    fig_html = brief.figure(fig, "hotspot_map",
                            "Crude rate of confirmed episodes by the town where the "
                            "exploitation began or was located, all years of data. White: "
                            "none. Hatched grey: count hidden "
                            f"(1 to {brief.threshold - 1}, or hidden so that it cannot be "
                            "worked out from the total).",
                            data=sh.keep_attrs(sup[["town", "episodes",
                                                    "rate_per_10k_per_year"]], sup))
    tw = sh.study_towns(brief)
    tw = tw[tw["episodes"].astype(int) >= brief.threshold].head(10)
    top = pd.DataFrame({"town": tw["town"], "episodes": tw["episodes"].astype(int),
                        "smoothed_rate": tw["smoothed_rate"].astype(float),
                        "rank_interval": [f"{int(a)}–{int(b)}" for a, b in
                                          zip(tw["rank_lower"], tw["rank_upper"])]})
    tsup = brief.suppress(top, count_cols=["episodes"],
                          rate_cols={"smoothed_rate": "episodes", "rank_interval": "episodes"})
    top_html, t = brief.table(
        tsup, caption=f"Highest smoothed rates among towns with at least {brief.threshold} "
                      f"episodes, {lo.year}–{hi.year} (per 10,000 children per year)",
        note="Empirical-Bayes smoothing pulls towns with few children towards the overall "
             "rate; the rank interval is the 95% posterior interval of the town's rank "
             "among all towns (1 = highest). Wide intervals mean the ranking is uncertain.",
        digits=2)
    return Section(None, fig_html + top_html, tables={"towns": sup, "top": t},
                   figures=["hotspot_map"])
