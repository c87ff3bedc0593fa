"""Which congregate-care settings have several victims? Facilities with two or more victims in
the period (suppressed as needed), observed vs expected victims with the Holm-flagged
facilities named, the funnel plot, and the same from the start of the data for context.

Every count goes through the batch disclosure plan (:func:`cells`): the number of settings
with several victims, each listed setting's victims and episodes (episodes at least victims),
and each setting's observed victims in the funnel plot (at most its victims). A setting is one
cell in every brief that shows it (keyed by the setting's region). The list is shown only when
the number of settings it would list is shown (its length would tell it), and the funnel plot
draws only settings whose observed count is shown (a dot's height times its expected count
is the count)."""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from dmst_eval import disclosure, plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.context import Section, section
from dmst_eval.briefs.sections import _answers as A
from dmst_eval.briefs.sections import _shared as sh

TITLE = "Which congregate-care settings have several victims?"
#: Settings listed in a table.
LIST_MAX = 15

_SETTING = {"group_home": "group home", "residential_treatment": "residential treatment centre",
            "shelter": "shelter"}


def _name(r) -> str:
    return f"{_SETTING.get(str(r['setting']), str(r['setting']))} {r['facility_id']} in {r['town']}"


# -- the counts and their ledger keys --------------------------------------------------------
def _windows(brief) -> dict:
    """{"period": (first day, last day), "study_to_date": (...)} (one when they coincide)."""
    out = {"period": (brief.ps, brief.pe)}
    if brief.study[0] < brief.ps:
        out["study_to_date"] = (brief.study[0], brief.pe)
    return out


def _statewide(brief, lo, last) -> pd.DataFrame:
    """Every congregate setting with its region and, for the window, victims, episodes and
    observed victims (first episode in the window there), as
    :func:`dmst_eval.tracking.facilities_answer` and :func:`dmst_eval.hotspots.facility_excess`
    count them; computed once per batch."""
    from dmst_eval import schema, tracking as tr

    def compute():
        cd = brief.cd
        _, hi = tr._resolve(cd, lo, last)
        fac = cd.facilities.assign(facility_id=cd.facilities["facility_id"].astype(str))
        fac = fac[fac["setting"].astype("object").isin(schema.CONGREGATE_SETTINGS)]
        reg = tr._town_population().set_index("town")["region"]
        fac = fac.assign(region=fac["town"].astype("object").map(reg).astype(str))
        ep = tr._episodes_in(cd, lo, hi)
        first = ep.drop_duplicates("child_id")  # sorted by identification: the first
        ep = ep[ep["facility_id"].notna()]
        ep = ep.assign(facility_id=ep["facility_id"].astype(str))
        g = ep.groupby("facility_id").agg(victims=("child_id", "nunique"),
                                          episodes=("episode_id", "size"))
        obs = first.loc[first["facility_id"].notna(), "facility_id"].astype(str).value_counts()
        out = fac[["facility_id", "setting", "town", "region"]].copy()
        out["victims"] = out["facility_id"].map(g["victims"]).fillna(0).astype(int)
        out["episodes"] = out["facility_id"].map(g["episodes"]).fillna(0).astype(int)
        out["observed"] = out["facility_id"].map(obs).fillna(0).astype(int)
        return out.reset_index(drop=True)
    return sh.batch_memo(brief, ("congregate_counts", str(lo), str(last)), compute)


def counts(brief) -> dict:
    """Per window: the settings in scope with their counts, the settings listed (several
    victims, most first, at most :data:`LIST_MAX`) and the number with several victims."""
    from dmst_eval import choices

    def compute():
        k_min = int(choices.load().facilities["min_victims"])
        out = {}
        for which, (lo, last) in _windows(brief).items():
            t = _statewide(brief, lo, last)
            if brief.region_arg:
                t = t[t["region"] == brief.region_arg]
            sev = t[t["victims"] >= k_min].sort_values(
                ["victims", "episodes", "facility_id"], ascending=[False, False, True],
                kind="mergesort")
            out[which] = {"settings": t, "listed": sev.head(LIST_MAX), "several": len(sev),
                          "label": A.cells_label(lo, last), "min_victims": k_min}
        return out
    return sh._memo(brief, "congregate_counts", compute)


def _key(measure, region, period):
    return disclosure.CellKey(measure, str(region), str(period))


def key_several(brief, which: str):
    c = counts(brief)[which]
    return brief.key(f"Congregate-care settings with {c['min_victims']} or more victims",
                     c["label"])


def key_fac(what: str, fid: str, region: str, period: str):
    """Ledger key of a setting's count: ``what`` is "victims", "episodes" or "observed"."""
    m = {"victims": "Victims at congregate setting", "episodes":
         "Episodes at congregate setting", "observed":
         "Victims whose first episode in the window was at congregate setting"}[what]
    return _key(f"{m} {fid}", region, period)


def cells(brief, ledger) -> None:
    """Register the number of settings with several victims, each listed setting's victims
    and episodes, and each setting's observed count (the funnel plot), with how they
    relate."""
    for which, c in counts(brief).items():
        ledger.add(key_several(brief, which), c["several"])
        p = c["label"]
        for r in c["settings"].itertuples():
            ko = ledger.add(key_fac("observed", r.facility_id, r.region, p), r.observed)
        for r in c["listed"].itertuples():
            kv = ledger.add(key_fac("victims", r.facility_id, r.region, p), r.victims)
            ke = ledger.add(key_fac("episodes", r.facility_id, r.region, p), r.episodes)
            ko = key_fac("observed", r.facility_id, r.region, p)
            ledger._relate({ke: 1.0, kv: -1.0}, 0.0, np.inf, "episodes at least victims")
            ledger._relate({kv: 1.0, ko: -1.0}, 0.0, np.inf,
                           "victims at least those first seen there")


# -- the section -------------------------------------------------------------------------------
def _sentence(brief, f, which: str, first: bool) -> str:
    c = counts(brief)[which]
    n = int(f.row("facilities_with_several_victims")["denominator"])
    k = brief.count(c["several"], key=key_several(brief, which))
    s = (f"{'In' if first else 'From'} {f.period}, {k} of the {n} congregate-care settings "
         f"{'in ' + brief.scope if first else ''} had {f.min_victims} or more confirmed "
         "victims".replace("  ", " "))
    if c["several"] and brief.shown(key_several(brief, which)):
        top = c["listed"].iloc[0]
        kv = key_fac("victims", top["facility_id"], top["region"], c["label"])
        if brief.shown(kv):
            s += f"; the most was at {_name(top)} ({int(top['victims']):,} victims)"
    return s


def answer(brief) -> str:
    f = A.answers(brief).facilities
    s = _sentence(brief, f, "period", True)
    if counts(brief)["period"]["several"] == 0 and "study_to_date" in counts(brief):
        st = A.study_to_date(brief)
        s2 = _sentence(brief, st, "study_to_date", False)
        s += "; " + s2[0].lower() + s2[1:]
    return s + "."


def _observed_shown(brief, which: str, ids) -> np.ndarray:
    c = counts(brief)[which]
    reg = c["settings"].set_index("facility_id")["region"]
    return np.array([brief.shown(key_fac("observed", f, reg[f], c["label"])) for f in ids],
                    dtype=bool)


def _excess_text(brief, f, which: str) -> str:
    fl = f.flagged
    ok = _observed_shown(brief, which, fl["facility_id"].astype(str))
    if len(fl):
        names = "; ".join(
            f"{_name(r)} ({int(r['observed']):,} victims where {A.num(r['expected'], 1)} were "
            "expected)" for (_, r), shown in zip(fl.iterrows(), ok) if shown) \
            or "settings with counts too small to show"
        n = len(fl)
        return (f"In {f.period}, {n} {'setting' if n == 1 else 'settings'} had more victims "
                f"than {'its' if n == 1 else 'their'} child-days "
                f"explain after a Holm adjustment for testing every setting: {names}.")
    s = f.excess.summary
    text = (f"In {f.period}, no setting had more victims than its child-days explain after a "
            "Holm adjustment for testing every setting")
    if len(s) and _observed_shown(brief, which, [str(s.iloc[0]["facility_id"])])[0] \
            and int(s.iloc[0]["observed"]) > 0:
        r = s.iloc[0]
        text += (f"; the largest excess was at {_name(r)}: {int(r['observed']):,} victims "
                 f"where {A.num(r['expected'], 1)} were expected (adjusted p = "
                 f"{A.num(r['p_adjusted'], 2)})")
    return text + "."


@section(TITLE)
def build(brief) -> Section:
    f = A.answers(brief).facilities
    st = A.study_to_date(brief)
    parts = [markup.paragraph(answer(brief), cls="dmst-answer")]
    tables, figs = {}, []
    cs = counts(brief)
    for which, res in (("period", f), ("study_to_date", st)):
        if which not in cs:
            break
        c = cs[which]
        lst = c["listed"]
        if len(lst) and brief.shown(key_several(brief, which)):
            tab = pd.DataFrame({
                "setting": [f"{r.facility_id} ({_SETTING.get(str(r.setting), r.setting)})"
                            for r in lst.itertuples()],
                "town": lst["town"].astype(str).to_numpy(),
                "victims": lst["victims"].astype(int).to_numpy(),
                "episodes": lst["episodes"].astype(int).to_numpy()})
            keys = pd.DataFrame({
                "victims": [key_fac("victims", r.facility_id, r.region, c["label"])
                            for r in lst.itertuples()],
                "episodes": [key_fac("episodes", r.facility_id, r.region, c["label"])
                             for r in lst.itertuples()]}, index=tab.index, dtype=object)
            h, shown = brief.table(
                tab, caption=f"Settings with {res.min_victims} or more victims, {res.period}",
                cells=keys,
                note=f"{c['several']:,} settings in all"
                     + (f"; the {LIST_MAX} with most victims are listed"
                        if c["several"] > LIST_MAX else "")
                     + ". Victims: children with a confirmed episode while placed at the "
                       "setting or AWOL from it. Counts are hidden consistently across the "
                       "statewide and regional briefs.")
            parts.append(h)
            tables[f"facilities_{which}"] = shown
        parts.append(markup.paragraph(_excess_text(brief, res, which)))
    # funnel plot of the longer window (the period alone is usually too thin)
    which, res = ("study_to_date", st) if "study_to_date" in cs and len(st.excess.summary) \
        else ("period", f)
    ex = res.excess.summary
    if len(ex):
        c = cs[which]
        reg = c["settings"].set_index("facility_id")["region"]
        ids = ex["facility_id"].astype(str)
        data = pd.DataFrame({"setting": ids.to_numpy(),
                             "observed": ex["observed"].astype(int).to_numpy(),
                             "expected": ex["expected"].round(2).to_numpy(),
                             "ratio": ex["ratio"].round(2).to_numpy()})
        keys = pd.DataFrame({"observed": [key_fac("observed", i, reg[i], c["label"])
                                          for i in ids]}, index=data.index, dtype=object)
        data = disclosure.apply_plan(data, keys, brief.plan, brief.audience,
                                     rate_cols={"ratio": "observed"})
        drawn = copy.copy(res.excess)
        drawn.summary = ex[_observed_shown(brief, which, ids)].reset_index(drop=True)
        n_hidden = int(len(ex) - len(drawn.summary))
        fig, ax = plots.new_figure("default")
        drawn.plot(ax=ax, title="Victims per setting: observed / expected")
        parts.append(brief.figure(
            fig, "facility_funnel",
            f"Funnel plot, {res.period}: each dot is a congregate-care setting; observed "
            "victims (first episode linked to the setting) over the number expected from its "
            "child-days at the congregate-care rate. Dots above the dashed (95%) and dotted "
            "(99.8%) limits have more victims than chance easily explains; red dots remain "
            "significant after a Holm adjustment."
            + (f" {n_hidden} {'setting' if n_hidden == 1 else 'settings'} whose count is "
               f"hidden {'is' if n_hidden == 1 else 'are'} not drawn (a dot's height would "
               "tell the count)." if n_hidden else ""), data=data))
        figs.append("facility_funnel")
    return Section(None, "".join(parts), tables=tables, figures=figs)
