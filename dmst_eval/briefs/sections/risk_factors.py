"""Risk factors: forest plot and table of odds ratios of identification as a victim."""
from __future__ import annotations

import numpy as np

from dmst_eval import plots
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Risk factors"


@section(TITLE)
def build(brief) -> Section:
    m = sh.risk_model(brief)
    orr = m.odds_ratios[m.odds_ratios.term != "intercept"].copy()
    orr["term"] = orr["term"].map(sh.label)
    fig, ax = plots.new_figure("tall")
    plots.forest_plot(orr, ax=ax, xlabel="odds ratio (95% CI, log scale)")
    ax.set_title("Risk factors: odds of identification")
    data = brief.suppress(orr[["term", "odds_ratio", "ci_lower", "ci_upper", "p_value"]],
                          count_cols=[])
    how = "Firth penalised" if m.method == "firth" else "maximum likelihood"
    statewide_only = brief.region_arg and brief.cache.get("risk_scope") == "statewide"
    cap = (f"Logistic regression ({how}) among child-welfare-involved children over the whole "
           f"study window; {brief.count(m.n_events)} victims among {brief.count(m.n_obs)} "
           "children with complete data"
           + (" (statewide model: too few victims in one region)." if statewide_only else "."))
    html = brief.figure(fig, "risk_factors", cap, data=data)
    shown = data.assign(p_value=[("<0.001" if p < 0.001 else f"{p:.3f}")
                                 if np.isfinite(p) else "" for p in data["p_value"]])
    shown.attrs = dict(data.attrs)
    tab_html, t = brief.table(shown, caption="Odds ratios (95% CI)", count_cols=[], digits=2)
    return Section(None, html + tab_html, tables={"odds_ratios": t}, figures=["risk_factors"])
