"""RBA scorecard: How much did we do? How well did we do it? Is anyone better off?"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval import disclosure
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Results-Based Accountability scorecard"


@section(TITLE)
def build(brief) -> Section:
    from dmst_eval import rba

    sc = rba.scorecard(brief.cd, region=brief.region_arg, start=brief.ps, end=brief.pe)
    brief.cache["scorecard"] = sc
    sm = sc.summary.reset_index(drop=True)
    b0, b1 = sc.baseline
    an = sc.annual[(sc.annual["year"] >= b0) & (sc.annual["year"] <= b1)]
    base = an.groupby("measure")[["numerator", "denominator"]].sum(min_count=1)
    share = sm["unit"].astype(str).str.startswith("share").to_numpy()
    # for counts per year the denominator is a number of years, not a count of people
    per_year = sm["unit"].astype(str).str.endswith("per year").to_numpy()
    df = pd.DataFrame({
        "strategy": sm["strategy"], "question": sm["question"], "measure": sm["label"],
        "unit": sm["unit"],
        "period": sm["value"].astype(float), "baseline": sm["baseline_value"].astype(float),
        "target": sm["target"].astype(float), "verdict": sm["verdict"].fillna(""),
        "n": sh.as_count(sm["numerator"]), "of": sh.as_count(sm["denominator"]),
        "baseline_n": sh.as_count(sm["measure"].map(base["numerator"])),
        "baseline_of": sh.as_count(sm["measure"].map(base["denominator"])),
    })
    df.loc[per_year, ["of", "baseline_of"]] = pd.NA
    # "20 of 28" tells the 8 who were not counted: where the complement of - n is small, n and
    # of are both hidden (and the share built on them); the batch plan does not cover the
    # scorecard yet, so this protects within the table only
    t = brief.threshold
    df = df.astype({c: object for c in ("n", "of", "baseline_n", "baseline_of")})
    for n, of in (("n", "of"), ("baseline_n", "baseline_of")):
        comp = (pd.to_numeric(df[of], errors="coerce")
                - pd.to_numeric(df[n], errors="coerce")).to_numpy(dtype=float)
        small = (comp >= 1) & (comp < t) & ~per_year
        big = lambda c: (pd.to_numeric(df[c], errors="coerce").fillna(0).to_numpy() >= t)
        for c in (n, of):
            df.loc[small & big(c), c] = disclosure.SUPPRESSED
    # rows are different measures and numerator/denominator are not additive: only the
    # primary rule applies; every value built on a hidden count is hidden with it
    sup = brief.suppress(df, count_cols=["n", "of", "baseline_n", "baseline_of"],
                         rate_cols={"period": ["n", "of"], "baseline": ["baseline_n",
                                                                       "baseline_of"],
                                    "verdict": ["n", "of", "baseline_n", "baseline_of"]},
                         complementary=False)
    shown = sup.copy()
    for c in ("period", "baseline", "target"):
        shown[c] = [v if isinstance(v, str) else
                    ("" if not np.isfinite(v) else (f"{v:.0%}" if sh_ else f"{v:,.1f}"))
                    for v, sh_ in zip(sup[c], share)]
    shown = shown.drop(columns=["baseline_n", "baseline_of"])
    shown.attrs = dict(sup.attrs)
    shown.attrs["disclosure"] = dict(sup.attrs["disclosure"], count_cols=["n", "of"])
    m = brief.month
    cap = f"RBA scorecard: {m(brief.ps)}–{m(brief.pe)} against the baseline {b0}–{b1}"
    note = ("Counts are shown as yearly averages, shares pooled over the period; n / of are "
            "the period's numerator and denominator. Verdict compares the period with the "
            "baseline trend's 95% prediction interval (\"turn the curve\"). Values built on "
            "a hidden count are hidden.")
    html, _ = brief.table(shown, caption=cap, note=note)
    return Section(None, html, tables={"scorecard": sup})
