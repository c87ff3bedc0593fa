"""Facilities with more exploitation than expected: funnel limits and adjusted p-values."""
from __future__ import annotations

from dataclasses import dataclass
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from dmst_eval.casedata import confirmed_mask
from dmst_eval.errors import InputError

from ._util import _new_ax, _OKABE
from .rates import garwood_ci, _window

__all__ = ['facility_excess', 'FacilityExcessResult']


# ---------------------------------------------------------------------------------------------
# 4. facilities
# ---------------------------------------------------------------------------------------------
@dataclass
class FacilityExcessResult:
    """Observed vs expected victims per congregate facility: see :func:`facility_excess`.

    ``summary`` (one row per facility with child-days in the window, highest excess first):
    facility_id, name, setting, town, child_days, observed, expected, ratio (O/E),
    ci_lower, ci_upper (exact Garwood for O/E), p_value (exact one-sided Poisson, P(X ≥ O)),
    p_adjusted, flagged (p_adjusted < alpha and O > E).
    """

    summary: pd.DataFrame
    rate_per_1000_child_years: float
    adjust: str
    alpha: float
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def flagged(self) -> list:
        return self.summary.loc[self.summary["flagged"], "facility_id"].tolist()

    def plot(self, ax=None, label: bool = True, title: str | None = None):
        """Funnel plot of O/E against expected victims, with 95% and 99.8% Poisson limits."""
        from dmst_eval import plots as _plots
        ax = _new_ax(ax, "default")
        s = self.summary[self.summary["expected"] > 0]
        emax = max(float(s["expected"].max()) * 1.1, 1.0) if len(s) else 1.0
        grid = np.linspace(max(emax / 400, 0.02), emax, 300)
        for lvl, ls in ((0.95, "--"), (0.998, ":")):
            lo, hi = _funnel_limits(grid, lvl)
            ax.plot(grid, hi, ls=ls, color=_plots.REFERENCE_COLOR, lw=1.2,
                    label=f"{lvl * 100:g}% limits")
            ax.plot(grid, lo, ls=ls, color=_plots.REFERENCE_COLOR, lw=1.2)
        ax.axhline(1.0, color="black", lw=0.8)
        col = np.where(s["flagged"], _OKABE["vermillion"], _OKABE["blue"])
        ax.scatter(s["expected"], s["ratio"], c=col, s=28, zorder=3, edgecolor="white", lw=0.5)
        if label:
            for _, r in s[s["flagged"]].iterrows():
                ax.annotate(str(r["facility_id"]), (r["expected"], r["ratio"]),
                            textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("expected victims (child-days × congregate-care rate)")
        ax.set_ylabel("observed / expected")
        top = np.nanmax(np.r_[s["ratio"].to_numpy(), 3.0]) * 1.05 if len(s) else 3
        ax.set_ylim(0, top)
        ax.set_title(title or "Victims per congregate facility: funnel plot")
        from matplotlib.lines import Line2D

        h, lab = ax.get_legend_handles_labels()
        h += [Line2D([], [], marker="o", ls="", color=_OKABE["vermillion"]),
              Line2D([], [], marker="o", ls="", color=_OKABE["blue"])]
        lab += [f"flagged ({self.adjust}-adjusted p < {self.alpha})", "not flagged"]
        ax.legend(h, lab, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        return ax


def _funnel_limits(expected, level):
    """Exact Poisson control limits for O/E at the given two-sided level (Spiegelhalter 2005)."""
    E = np.asarray(expected, dtype=float)
    out = []
    for p in ((1 - level) / 2, 1 - (1 - level) / 2):
        r = stats.poisson.ppf(p, E)
        Fr = stats.poisson.cdf(r, E)
        Fr1 = stats.poisson.cdf(r - 1, E)
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(Fr - Fr1 > 0, (Fr - p) / (Fr - Fr1), 0.0)
        out.append(np.maximum(r - a, 0) / E)
    return out[0], out[1]


def _datetimes(s: pd.Series) -> pd.Series:
    """``pd.to_datetime(s)``, skipped when ``s`` already holds nanosecond datetimes (it would
    return the same values after sampling thousands of them for its parse cache)."""
    return s if s.dtype == "datetime64[ns]" else pd.to_datetime(s)


def facility_excess(cd, start=None, end=None, adjust: str = "holm", *, alpha: float = 0.05,
                    confirmed_only: bool = True, settings=None, expected=None,
                    date_col: str = "began_at", count: str = "first") -> FacilityExcessResult:
    """Observed victims per congregate facility vs the number expected from its child-days.

    Observed O_f: victims (distinct children) whose first confirmed episode in [start, end]
    is linked to facility f (``episodes.facility_id``; ``count="all"``: children with any such
    episode at f, so one child can count at several facilities). Expected E_f: child-days in placement
    at f within the window × the congregate-care rate (all such victims / all child-days in
    congregate placements: indirect standardisation, so ΣE = ΣO), or a covariate-adjusted
    expected count passed as ``expected``. p-values are exact one-sided Poisson, P(X ≥ O_f | E_f),
    adjusted across facilities by Holm (family-wise) or Benjamini–Hochberg (false-discovery rate).
    Facilities without child-days in the window are listed with no test.

    Parameters
    ----------
    cd : CaseData
        Uses ``placements``, ``episodes`` and ``facilities``.
    start, end : date-like, optional
        Window (inclusive); default the study window.
    adjust : {"holm", "bh"}
    alpha : float
        Flagging level for adjusted p-values.
    confirmed_only : bool
        Count confirmed episodes only.
    settings : sequence, optional
        Placement settings counted (default :data:`dmst_eval.schema.CONGREGATE_SETTINGS`).
    expected : mapping or Series, optional
        facility_id → expected victims (e.g. from a risk model) instead of child-days × rate.
    date_col : str
        Episode date that places it in the window (default ``began_at``).
    count : {"first", "all"}
        Count each victim once, at the facility of their first episode (default: victims are
        then independent across facilities), or at every facility where they had an episode.

    Returns
    -------
    FacilityExcessResult

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(scale=0.3, seed=1)
    >>> fx = facility_excess(cd, "2008-01-01", "2025-12-31", adjust="bh")
    >>> set(fx.flagged) <= set(cd.facilities["facility_id"])
    True
    """
    from dmst_eval import schema

    if adjust not in ("holm", "bh"):
        raise InputError(f"adjust must be 'holm' or 'bh', got {adjust!r}")
    settings = tuple(settings or schema.CONGREGATE_SETTINGS)
    start, end = _window(cd, start, end)
    end_x = end + pd.Timedelta(days=1)
    pl = cd.placements
    for col in ("facility_id", "setting", "start", "end"):
        if col not in pl.columns:
            raise InputError(f"placements: column {col!r} missing", table="placements",
                                    column=col)
    # only the columns used below: the other columns of 90,000 placements are not copied
    pl = pl.loc[(pl["facility_id"].notna() & pl["setting"].astype("object").isin(settings))
                .to_numpy(), ["facility_id", "start", "end"]]
    s = _datetimes(pl["start"]).clip(lower=start)
    e = _datetimes(pl["end"]).fillna(end_x).clip(upper=end_x)
    days = ((e - s).dt.total_seconds() / 86400).clip(lower=0)
    child_days = days.groupby(pl["facility_id"].astype("object")).sum()

    ep = cd.episodes
    d = _datetimes(ep[date_col])
    keep = ep["facility_id"].notna() & (d >= start) & (d < end_x)
    if confirmed_only:
        keep &= confirmed_mask(ep)
    if count not in ("first", "all"):
        raise InputError(f"count must be 'first' or 'all', got {count!r}")
    if count == "first":
        # each victim counted once: at the facility of their first episode in the window
        first = ep.loc[(d >= start) & (d < end_x) & (
            confirmed_mask(ep) if confirmed_only else True),
            ["episode_id", "child_id", "facility_id", date_col]]
        first = first.assign(_d=_datetimes(first[date_col])).sort_values(
            ["_d", "episode_id"], kind="stable").drop_duplicates("child_id")
        ev = first.loc[first["facility_id"].notna(), ["facility_id", "child_id"]].astype("object")
    else:
        ev = ep.loc[keep.to_numpy(), ["facility_id", "child_id"]].astype("object")
        ev = ev.drop_duplicates()
    obs = ev.groupby("facility_id").size()

    fac = cd.facilities.copy()
    fac["facility_id"] = fac["facility_id"].astype("object")
    fac = fac[fac["setting"].astype("object").isin(settings) |
              fac["facility_id"].isin(child_days.index)]
    unknown = sorted(set(obs.index) - set(fac["facility_id"]))
    if unknown:
        raise InputError(f"episodes: facility_id values not in facilities: {unknown[:10]}",
                                table="episodes", column="facility_id", rows=unknown[:10],
                                expected="facility_id present in facilities")
    out = fac[["facility_id"] + [c for c in ("name", "setting", "town") if c in fac]].copy()
    out["child_days"] = out["facility_id"].map(child_days).fillna(0.0).astype(float)
    out["observed"] = out["facility_id"].map(obs).fillna(0).astype(int)
    tested = out["child_days"] > 0
    if expected is not None:
        exp_map = pd.Series(expected)
        out["expected"] = out["facility_id"].map(exp_map).astype(float)
        rate = out["observed"].sum() / out["child_days"].sum() if out["child_days"].sum() else 0
    else:
        tot_days = out["child_days"].sum()
        rate = out.loc[tested, "observed"].sum() / tot_days if tot_days > 0 else 0.0
        out["expected"] = out["child_days"] * rate
    bad = (~tested) & (out["observed"] > 0)
    if bad.any():
        warnings.warn(f"facilities {out.loc[bad, 'facility_id'].tolist()[:10]} have victims but no "
                      "child-days in congregate placements in the window; they are not tested",
                      stacklevel=2)
    O = out["observed"].to_numpy()
    Ex = out["expected"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.where(Ex > 0, O / Ex, np.nan)
        lo, hi = garwood_ci(O)
        out["ci_lower"] = np.where(Ex > 0, lo / Ex, np.nan)
        out["ci_upper"] = np.where(Ex > 0, hi / Ex, np.nan)
    p = np.where(tested & (Ex > 0), stats.poisson.sf(O - 1, np.where(Ex > 0, Ex, 1)), np.nan)
    out["p_value"] = p
    from dmst_eval.hotspots._util import _fdr, _holm

    padj = np.full(len(out), np.nan)
    okp = np.isfinite(p)
    if okp.any():
        padj[okp] = _holm(p[okp]) if adjust == "holm" else _fdr(p[okp])
    out["p_adjusted"] = padj
    out["flagged"] = (padj < alpha) & (O > Ex)
    out = out[tested].sort_values(["p_value", "facility_id"]).reset_index(drop=True)
    return FacilityExcessResult(out, rate_per_1000_child_years=rate * 365.25 * 1000, adjust=adjust,
                          alpha=alpha, start=start, end=end)
