"""Kaplan-Meier and log-rank, mean cumulative function, Aalen-Johansen cumulative incidence."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from dmst_eval.errors import InputError, require_columns

from ._util import DAYS_PER_MONTH, _bad_rows, _numeric

__all__ = [
    'kaplan_meier', 'KaplanMeierResult', 'mean_cumulative_function', 'MCFResult',
    'cumulative_incidence', 'CumulativeIncidenceResult', 'logrank_test',
]


# ============================================================================================
# Kaplan-Meier, log-rank
# ============================================================================================
def _km_table(t: np.ndarray, e: np.ndarray, level: float) -> pd.DataFrame:
    """Kaplan-Meier table at each distinct observed time (events and censorings)."""
    ut, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, e, minlength=len(ut))
    c = np.bincount(inv, 1 - e, minlength=len(ut))
    tot = d + c
    n = len(t) - np.concatenate([[0], np.cumsum(tot)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1 - d / n)
        gw = np.cumsum(np.where(n > d, d / (n * (n - d)), np.inf * (d > 0)))
        se = surv * np.sqrt(gw)
        z = stats.norm.ppf(0.5 + level / 2)
        logS = np.log(surv)
        se_ll = np.sqrt(gw) / np.abs(logS)
        lo = np.exp(-np.exp(np.log(-logS) + z * se_ll))
        hi = np.exp(-np.exp(np.log(-logS) - z * se_ll))
    lo = np.where(surv >= 1, 1.0, np.where(surv <= 0, np.nan, lo))
    hi = np.where(surv >= 1, 1.0, np.where(surv <= 0, np.nan, hi))
    return pd.DataFrame({"time": ut, "n_risk": n.astype(int), "n_event": d.astype(int),
                         "n_censor": c.astype(int), "survival": surv, "se": se,
                         "ci_lower": lo, "ci_upper": hi})


def _first_crossing(time: np.ndarray, curve: np.ndarray, at: float = 0.5) -> float:
    """Smallest time with curve <= at (R survfit convention: if the curve equals ``at`` exactly
    on a stretch, the midpoint of that stretch)."""
    ok = np.flatnonzero(curve <= at + 1e-12)
    if len(ok) == 0:
        return np.nan
    j = ok[0]
    if abs(curve[j] - at) < 1e-12 and j + 1 < len(time):
        nxt = np.flatnonzero(curve[j + 1:] < at - 1e-12)
        if len(nxt):
            return float((time[j] + time[j + 1 + nxt[0]]) / 2)
    return float(time[j])


def _step_at(table: pd.DataFrame, t: float, cols: Sequence[str]) -> list[float]:
    idx = np.searchsorted(table["time"].to_numpy(), t, side="right") - 1
    if idx < 0:
        return [1.0 if c != "se" else 0.0 for c in cols]
    if t > table["time"].iloc[-1] and table["n_risk"].iloc[-1] - table["n_event"].iloc[-1] \
            - table["n_censor"].iloc[-1] <= 0 and table["survival"].iloc[-1] > 0:
        return [np.nan] * len(cols)          # beyond the last follow-up: not estimable
    return [float(table[c].iloc[idx]) for c in cols]


def logrank_test(duration: np.ndarray, event: np.ndarray, group: np.ndarray) -> dict:
    """k-sample log-rank test. Returns dict(chi2, df, p_value, observed, expected)."""
    duration = np.asarray(duration, float)
    event = np.asarray(event, float)
    codes, levels = pd.factorize(pd.Series(group), sort=True)
    k = len(levels)
    ut = np.unique(duration[event == 1])
    # n at risk per group at each event time: count of duration >= t
    n_g = np.empty((len(ut), k))
    d_g = np.empty((len(ut), k))
    for g in range(k):          # loop over groups (few), not rows
        tg = np.sort(duration[codes == g])
        n_g[:, g] = len(tg) - np.searchsorted(tg, ut, side="left")
        te = duration[(codes == g) & (event == 1)]
        d_g[:, g] = np.bincount(np.searchsorted(ut, te), minlength=len(ut))[:len(ut)]
    n = n_g.sum(1)
    d = d_g.sum(1)
    E = (n_g * (d / n)[:, None]).sum(0)
    O = d_g.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(n > 1, d * (n - d) / (n - 1), 0) / n**2
    V = -np.einsum("t,tg,th->gh", f, n_g, n_g)
    V[np.diag_indices(k)] += (f[:, None] * n_g * n[:, None]).sum(0)
    if k < 2:
        return {"chi2": np.nan, "df": 0, "p_value": np.nan,
                "observed": dict(zip(levels, O)), "expected": dict(zip(levels, E))}
    diff = (O - E)[:-1]
    chi2 = float(diff @ np.linalg.solve(V[:-1, :-1], diff))
    return {"chi2": chi2, "df": k - 1, "p_value": float(stats.chi2.sf(chi2, k - 1)),
            "observed": dict(zip(levels, O)), "expected": dict(zip(levels, E))}


@dataclass
class KaplanMeierResult:
    """Kaplan-Meier estimate(s) of time to the first repeat (see :func:`kaplan_meier`).

    Attributes
    ----------
    summary : DataFrame
        One row per group: n, events, median (with CI) and the survival (= share *not* yet
        re-victimized) at each requested month with its CI.
    table : DataFrame
        The full step function per group: time, n_risk, n_event, n_censor, survival, se
        (Greenwood), ci_lower, ci_upper (log-log).
    logrank : dict or None
        chi2, df, p_value, observed, expected (None without groups).
    """

    summary: pd.DataFrame
    table: pd.DataFrame
    logrank: dict | None
    level: float
    time_unit: str
    days_per_unit: float

    def plot(self, ax=None, at_risk: bool = True, cumulative: bool = False, ticks=None,
             min_at_risk: int | None = None):
        """Step plot with CI bands and a number-at-risk table under the axis.

        ``cumulative=True`` plots 1 - S (share re-victimized) instead of S. ``min_at_risk``
        stops each curve where fewer children than that remain under follow-up (the tail of a
        Kaplan-Meier curve rests on very few children).
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        from dmst_eval.plots import PALETTE as colours  # house Okabe-Ito palette
        groups = list(self.table["group"].unique())
        for i, g in enumerate(groups):
            tb = self.table[self.table["group"] == g]
            if min_at_risk is not None:
                tb = tb[tb["n_risk"] >= min_at_risk]
            x = np.concatenate([[0], tb["time"].to_numpy()])
            y = np.concatenate([[1], tb["survival"].to_numpy()])
            lo = np.concatenate([[1], tb["ci_lower"].to_numpy()])
            hi = np.concatenate([[1], tb["ci_upper"].to_numpy()])
            if cumulative:
                y, lo, hi = 1 - y, 1 - hi, 1 - lo
            col = colours[i % len(colours)]
            ax.step(x, y, where="post", color=col, label=str(g) if g != "all" else None)
            ax.fill_between(x, lo, hi, step="post", color=col, alpha=0.15, lw=0)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"Time since first identification ({self.time_unit})")
        ax.set_ylabel("Share re-victimized" if cumulative else "Share not re-victimized")
        if len(groups) > 1:
            title = None
            if self.logrank is not None:
                title = f"log-rank p = {self.logrank['p_value']:.3g}"
            ax.legend(title=title, frameon=False)
        if ticks is not None:
            ax.set_xticks(ticks)
        ax.set_xlim(left=0)
        if at_risk:
            xt = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            ax.set_xticks(xt)
            trans = ax.get_xaxis_transform()
            ax.text(-0.06, -0.22, "At risk", transform=ax.transAxes, ha="right", va="top",
                    fontsize=8, fontweight="bold")
            for i, g in enumerate(groups):
                tb = self.table[self.table["group"] == g]
                times = tb["time"].to_numpy()
                nr = tb["n_risk"].to_numpy()
                for t in xt:
                    j = np.searchsorted(times, t, side="left")
                    n_at = int(nr[j]) if j < len(nr) else 0
                    ax.text(t, -0.22 - 0.07 * (i + 1), f"{n_at}", transform=trans,
                            ha="center", va="top", fontsize=8,
                            color=colours[i % len(colours)])
                ax.text(-0.06, -0.22 - 0.07 * (i + 1), str(g), transform=ax.transAxes,
                        ha="right", va="top", fontsize=8, color=colours[i % len(colours)])
            ax.figure.subplots_adjust(bottom=0.25 + 0.05 * len(groups))
        return ax


def kaplan_meier(df: pd.DataFrame, duration: str, event: str, group: str | None = None,
                 level: float = 0.95, months: Sequence[float] = (6, 12),
                 days_per_unit: float = 1.0, time_unit: str = "days") -> KaplanMeierResult:
    """Kaplan-Meier estimate of time to the first repeat episode, by group.

    Confidence intervals are pointwise, from Greenwood's variance on the log(-log) scale (R's
    ``survfit(conf.type = "log-log")``). The median and its CI follow R's convention (first time
    the curve -- or its CI limit -- reaches 0.5). Groups are compared with the log-rank test.

    Parameters
    ----------
    df : DataFrame
        One row per child, e.g. from :func:`first_event_frame`.
    duration, event : str
        Follow-up time and event indicator (1 = repeat episode, 0 = censored).
    group : str, optional
        Column defining groups to compare.
    level : float
        Confidence level.
    months : sequence of float
        Months at which to report the estimated share not yet re-victimized.
    days_per_unit : float
        Days per unit of ``duration`` (1 for days) -- used to convert ``months``.
    time_unit : str
        Label of the time axis.

    Returns
    -------
    KaplanMeierResult

    Examples
    --------
    >>> df = pd.DataFrame({"t": [2, 3, 3, 5, 7, 8], "e": [1, 1, 0, 1, 0, 1]})
    >>> km = kaplan_meier(df, "t", "e")
    >>> km.table["survival"].round(4).tolist()
    [0.8333, 0.6667, 0.4444, 0.4444, 0.0]
    >>> float(km.summary["median"].iloc[0])
    5.0
    """
    cols = [duration, event] + ([group] if group else [])
    require_columns(df, cols)
    t = _numeric(df, duration)
    e = _numeric(df, event)
    bad = np.isnan(t) | np.isnan(e) | (t < 0) | ~np.isin(e, (0, 1))
    if bad.any():
        raise InputError(
            f"df: {int(bad.sum())} row(s) with missing/negative {duration!r} or {event!r} not 0/1 "
            f"(rows {_bad_rows(bad, df.index)})")
    g = df[group].astype(str).to_numpy() if group else np.array(["all"] * len(df))
    tables, rows = [], []
    for lev in pd.unique(g):
        m = g == lev
        tb = _km_table(t[m], e[m], level)
        tb.insert(0, "group", lev)
        tables.append(tb)
        row = {"group": lev, "n": int(m.sum()), "events": int(e[m].sum()),
               "median": _first_crossing(tb["time"].to_numpy(), tb["survival"].to_numpy()),
               "median_ci_lower": _first_crossing(tb["time"].to_numpy(),
                                                  tb["ci_lower"].fillna(0).to_numpy()),
               "median_ci_upper": _first_crossing(tb["time"].to_numpy(),
                                                  tb["ci_upper"].fillna(0).to_numpy())}
        for mo in months:
            s, lo, hi = _step_at(tb, mo * DAYS_PER_MONTH / days_per_unit,
                                 ["survival", "ci_lower", "ci_upper"])
            row[f"survival_{mo:g}m"] = s
            row[f"survival_{mo:g}m_ci_lower"] = lo
            row[f"survival_{mo:g}m_ci_upper"] = hi
        rows.append(row)
    summary = pd.DataFrame(rows).set_index("group")
    lr = logrank_test(t, e, g) if group else None
    return KaplanMeierResult(summary=summary, table=pd.concat(tables, ignore_index=True),
                             logrank=lr, level=level, time_unit=time_unit,
                             days_per_unit=days_per_unit)


# ============================================================================================
# Mean cumulative function (Nelson-Aalen) with Lawless-Nadeau variance
# ============================================================================================
def _mcf_one(start, stop, ev, cid, level, ci, chunk=2000) -> pd.DataFrame:
    ut = np.unique(stop[ev > 0])
    m = len(ut)
    if m == 0:
        return pd.DataFrame(columns=["time", "n_risk", "n_event", "mcf", "se", "se_poisson",
                                     "ci_lower", "ci_upper"])
    lo = np.searchsorted(ut, start, side="right")
    hi = np.searchsorted(ut, stop, side="right")
    Y = np.cumsum(np.bincount(lo, minlength=m + 1) - np.bincount(hi, minlength=m + 1))[:m]
    k_ev = hi[ev > 0] - 1
    dN = np.bincount(k_ev, ev[ev > 0], minlength=m)
    dmu = dN / Y
    mcf = np.cumsum(dmu)
    # Lawless-Nadeau: Var mu(t) = sum_i (sum_{t_j<=t} Y_ij/Y_j (dN_ij - dmu_j))^2
    codes, uniq = pd.factorize(cid)
    var = np.zeros(m)
    order = np.argsort(codes, kind="stable")
    codes_s = codes[order]
    bounds = np.searchsorted(codes_s, np.arange(0, len(uniq) + chunk, chunk))
    for a, b in zip(bounds[:-1], bounds[1:]):        # chunks of children (memory), vectorised
        if a >= b:
            continue
        rows = order[a:b]
        cc = codes[rows] - codes[rows].min()
        nc = cc.max() + 1
        Yi = np.zeros((nc, m + 1))
        np.add.at(Yi, (cc, lo[rows]), 1.0)
        np.add.at(Yi, (cc, hi[rows]), -1.0)
        Yi = np.cumsum(Yi, axis=1)[:, :m]
        Ni = np.zeros((nc, m))
        er = rows[ev[rows] > 0]
        np.add.at(Ni, (codes[er] - codes[rows].min(), hi[er] - 1), ev[er])
        A = np.cumsum((Ni - Yi * dmu) / Y, axis=1)
        var += (A**2).sum(axis=0)
    se = np.sqrt(var)
    z = stats.norm.ppf(0.5 + level / 2)
    if ci == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.exp(z * se / mcf)
        lo_ci, hi_ci = mcf / f, mcf * f
    else:
        lo_ci, hi_ci = np.maximum(mcf - z * se, 0), mcf + z * se
    return pd.DataFrame({"time": ut, "n_risk": Y.astype(int), "n_event": dN.astype(int),
                         "mcf": mcf, "se": se, "se_poisson": np.sqrt(np.cumsum(dN / Y**2)),
                         "ci_lower": lo_ci, "ci_upper": hi_ci})


@dataclass
class MCFResult:
    """Mean cumulative function (see :func:`mean_cumulative_function`).

    Attributes
    ----------
    table : DataFrame
        group, time, n_risk, n_event, mcf, se (Lawless-Nadeau), se_poisson, ci_lower, ci_upper.
    summary : DataFrame
        Per group: children, episodes, and the MCF (with CI) at each requested month.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    level: float
    time_unit: str

    def plot(self, ax=None):
        """Step plot of the MCF with its confidence band, by group."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        from dmst_eval.plots import PALETTE as colours  # house Okabe-Ito palette
        for i, (g, tb) in enumerate(self.table.groupby("group", sort=False)):
            col = colours[i % len(colours)]
            x = np.concatenate([[0], tb["time"].to_numpy()])
            ax.step(x, np.concatenate([[0], tb["mcf"]]), where="post", color=col,
                    label=None if g == "all" else str(g))
            ax.fill_between(x, np.concatenate([[0], tb["ci_lower"]]),
                            np.concatenate([[0], tb["ci_upper"]]), step="post", color=col,
                            alpha=0.15, lw=0)
        ax.set_xlabel(f"Time since first identification ({self.time_unit})")
        ax.set_ylabel("Mean repeat episodes per child")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        if self.table["group"].nunique() > 1:
            ax.legend(frameon=False)
        return ax


def mean_cumulative_function(df: pd.DataFrame, start: str = "start", stop: str = "stop",
                             event: str = "event", id: str = "child_id",
                             group: str | None = None, level: float = 0.95, ci: str = "log",
                             months: Sequence[float] = (6, 12, 24), days_per_unit: float = 1.0,
                             time_unit: str = "days") -> MCFResult:
    """Nelson-Aalen mean cumulative function (MCF): expected repeat episodes per child by time t.

    ``MCF(t) = sum_{t_j <= t} dN(t_j) / Y(t_j)`` where ``dN`` counts the episodes at ``t_j`` and
    ``Y`` the children under follow-up (``start < t_j <= stop``). Children who leave follow-up (aging
    out, window end) simply drop out of ``Y``: the MCF is the mean for children *still in care*.
    Standard errors are the robust Lawless & Nadeau (1995) estimator, which allows episodes within
    a child to be dependent; the Poisson (independent-increments) se is given for comparison.
    Confidence intervals are on the log scale by default (``ci="plain"`` for MCF +/- z se).

    Parameters
    ----------
    df : DataFrame
        Counting-process rows (e.g. :func:`recurrent_frame`).
    start, stop, event, id : str
        Column names.
    group : str, optional
        Column (constant within child) defining groups.
    level : float
        Confidence level.
    ci : {"log", "plain"}
        Interval type.
    months : sequence of float
        Months at which :attr:`MCFResult.summary` reports the MCF.
    days_per_unit, time_unit : float, str
        Time unit of the data (days by default).

    Returns
    -------
    MCFResult

    Examples
    --------
    >>> rows = pd.DataFrame({"child_id": ["a", "a", "b", "c"], "start": [0, 2, 0, 0],
    ...                      "stop": [2, 6, 4, 5], "event": [1, 1, 1, 0]})
    >>> mean_cumulative_function(rows).table["mcf"].round(4).tolist()
    [0.3333, 0.6667, 1.6667]
    """
    if ci not in ("log", "plain"):
        raise InputError(f"ci={ci!r}; expected 'log' or 'plain'")
    require_columns(df, [start, stop, event, id] + ([group] if group else []))
    s = _numeric(df, start)
    t = _numeric(df, stop)
    e = _numeric(df, event)
    bad = np.isnan(s) | np.isnan(t) | np.isnan(e) | (t <= s) | (e < 0)
    if bad.any():
        raise InputError(
            f"df: {int(bad.sum())} row(s) with missing values, {stop!r} <= {start!r} or negative "
            f"{event!r} (rows {_bad_rows(bad, df.index)})")
    g = df[group].astype(str).to_numpy() if group else np.array(["all"] * len(df))
    cid = df[id].to_numpy()
    tabs, rows = [], []
    for lev in pd.unique(g):
        msk = g == lev
        tb = _mcf_one(s[msk], t[msk], e[msk], cid[msk], level, ci)
        tb.insert(0, "group", lev)
        tabs.append(tb)
        row = {"group": lev, "children": int(pd.Series(cid[msk]).nunique()),
               "episodes": int(e[msk].sum())}
        for mo in months:
            at = mo * DAYS_PER_MONTH / days_per_unit
            j = np.searchsorted(tb["time"].to_numpy(), at, side="right") - 1
            beyond = at > t[msk].max()
            for col, name in (("mcf", f"mcf_{mo:g}m"), ("ci_lower", f"mcf_{mo:g}m_ci_lower"),
                              ("ci_upper", f"mcf_{mo:g}m_ci_upper")):
                row[name] = np.nan if beyond else (0.0 if j < 0 else float(tb[col].iloc[j]))
        rows.append(row)
    return MCFResult(table=pd.concat(tabs, ignore_index=True),
                     summary=pd.DataFrame(rows).set_index("group"), level=level,
                     time_unit=time_unit)


# ============================================================================================
# Competing risks: Aalen-Johansen cumulative incidence
# ============================================================================================
@dataclass
class CumulativeIncidenceResult:
    """Cumulative incidence of re-victimization with aging out as a competing event.

    Attributes
    ----------
    table : DataFrame
        time, n_risk, n_event (cause of interest), n_competing, cif (Aalen-Johansen), se, ci_lower,
        ci_upper, naive (1 - Kaplan-Meier treating the competing event as censoring).
    summary : DataFrame
        Both estimates at the requested months.
    explanation : str
        Why the two differ (plain language).
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    explanation: str
    time_unit: str

    def plot(self, ax=None):
        """Aalen-Johansen CIF with its CI beside the naive 1 - KM."""
        from dmst_eval import plots as _plots
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        tb = self.table
        x = np.concatenate([[0], tb["time"]])
        ax.step(x, np.concatenate([[0], tb["cif"]]), where="post", color=_plots.OKABE_ITO["blue"],
                label="Cumulative incidence (Aalen-Johansen)")
        ax.fill_between(x, np.concatenate([[0], tb["ci_lower"].fillna(0)]),
                        np.concatenate([[0], tb["ci_upper"].fillna(0)]), step="post",
                        color=_plots.OKABE_ITO["blue"], alpha=0.15, lw=0)
        ax.step(x, np.concatenate([[0], tb["naive"]]), where="post",
                color=_plots.OKABE_ITO["vermillion"], ls="--",
                label="Naive 1 - Kaplan-Meier (aging out as censoring)")
        ax.set_xlabel(f"Time since first identification ({self.time_unit})")
        ax.set_ylabel("Share re-victimized before 18")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1)
        ax.legend(frameon=False, loc="upper left")
        return ax


CIF_EXPLANATION = (
    "The naive 1 - Kaplan-Meier curve treats a child who aged out of care as if follow-up had "
    "merely stopped and the child could still be re-victimized later as a minor; it answers a "
    "question about a world where nobody turns 18. The Aalen-Johansen cumulative incidence "
    "counts aging out as an event that ends the risk of re-victimization *as a child in care*, "
    "so it is never higher than 1 - KM and is the share the agency can actually expect to see "
    "re-victimized before they leave its care. The gap grows with the share who age out.")


def cumulative_incidence(df: pd.DataFrame, duration: str = "duration", cause: str = "cause",
                         event_of_interest: int = 1, competing: int | Sequence[int] = 2,
                         censored: int | Sequence[int] = 0, level: float = 0.95,
                         months: Sequence[float] = (6, 12, 24),
                         days_per_unit: float = 1.0,
                         time_unit: str = "days") -> CumulativeIncidenceResult:
    """Aalen-Johansen cumulative incidence of the event of interest with competing events.

    ``CIF(t) = sum_{t_j <= t} S(t_j-) d1_j / n_j`` with ``S`` the all-cause Kaplan-Meier. Variance
    by the delta method (Collett, *Modelling Survival Data in Medical Research*, 3rd ed.,
    section 12.2; the formula SAS PROC LIFETEST uses), CIs on the log(-log) scale. Also reports
    the naive ``1 - KM`` that treats competing events as censoring.

    Parameters
    ----------
    df : DataFrame
        One row per child, e.g. :func:`first_event_frame` (cause 1 = repeat, 2 = aged out,
        0 = censored).
    duration, cause : str
        Column names.
    event_of_interest : int
        Code of the event of interest.
    competing : int or sequence of int
        Code(s) of competing events.
    censored : int or sequence of int
        Code(s) of censored rows (default 0). Any other code raises an error rather than being
        counted silently as censoring.
    level, months, days_per_unit, time_unit
        As in :func:`kaplan_meier`.

    Returns
    -------
    CumulativeIncidenceResult

    Examples
    --------
    >>> df = pd.DataFrame({"duration": [1, 2, 3, 4, 5], "cause": [1, 2, 1, 0, 1]})
    >>> cumulative_incidence(df).table["cif"].round(4).tolist()
    [0.2, 0.2, 0.4, 0.8]
    """
    require_columns(df, [duration, cause])
    t = _numeric(df, duration)
    c = _numeric(df, cause)
    comp = [competing] if np.isscalar(competing) else list(competing)
    bad = np.isnan(t) | np.isnan(c) | (t < 0)
    if bad.any():
        raise InputError(
            f"df: {int(bad.sum())} row(s) with missing or negative {duration!r}/{cause!r} "
            f"(rows {_bad_rows(bad, df.index)})")
    cens = [censored] if np.isscalar(censored) else list(censored)
    unknown = ~np.isin(c, [event_of_interest, *comp, *cens])
    if unknown.any():
        codes = ", ".join(str(int(v)) if float(v).is_integer() else str(v)
                          for v in np.unique(c[unknown])[:10])
        raise InputError(f"{int(unknown.sum())} row(s) have a cause code that is neither the "
                         f"event of interest, a competing event nor censoring: {codes}",
                         table="df", column=cause, rows=np.flatnonzero(unknown)[:10].tolist(),
                         expected=f"codes {event_of_interest} (event), {comp} (competing), "
                                  f"{cens} (censored); pass competing= or censored= for others")
    e1 = (c == event_of_interest).astype(float)
    e2 = np.isin(c, comp).astype(float)
    ut, inv = np.unique(t, return_inverse=True)
    d1 = np.bincount(inv, e1, minlength=len(ut))
    d2 = np.bincount(inv, e2, minlength=len(ut))
    tot = np.bincount(inv, minlength=len(ut))
    n = len(t) - np.concatenate([[0], np.cumsum(tot)[:-1]])
    d = d1 + d2
    S = np.cumprod(1 - d / n)
    S_left = np.concatenate([[1.0], S[:-1]])
    F = np.cumsum(S_left * d1 / n)
    naive = 1 - np.cumprod(1 - d1 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n > d, d / (n * (n - d)), 0.0)
        b = S_left**2 * d1 * (n - d1) / n**3
        cc = S_left * d1 / n**2
        var = (F**2 * np.cumsum(a) - 2 * F * np.cumsum(a * F) + np.cumsum(a * F**2)
               + np.cumsum(b) - 2 * (F * np.cumsum(cc) - np.cumsum(cc * F)))
        var = np.maximum(var, 0)
        se = np.sqrt(var)
        z = stats.norm.ppf(0.5 + level / 2)
        se_t = se / (F * np.abs(np.log(F)))
        lo = np.exp(-np.exp(np.log(-np.log(F)) + z * se_t))
        hi = np.exp(-np.exp(np.log(-np.log(F)) - z * se_t))
    keep = (d > 0)
    tb = pd.DataFrame({"time": ut, "n_risk": n.astype(int), "n_event": d1.astype(int),
                       "n_competing": d2.astype(int), "cif": F, "se": se,
                       "ci_lower": np.where(F > 0, lo, np.nan),
                       "ci_upper": np.where(F > 0, hi, np.nan), "naive": naive})[keep]
    tb = tb.reset_index(drop=True)
    rows = {}
    for mo in months:
        at = mo * DAYS_PER_MONTH / days_per_unit
        j = np.searchsorted(tb["time"].to_numpy(), at, side="right") - 1
        beyond = at > t.max()
        for col in ("cif", "ci_lower", "ci_upper", "naive"):
            rows.setdefault(col, []).append(
                np.nan if beyond else (0.0 if j < 0 else float(tb[col].iloc[j])))
    summary = pd.DataFrame(rows, index=pd.Index([f"{mo:g} months" for mo in months],
                                                name="time"))
    return CumulativeIncidenceResult(table=tb, summary=summary, explanation=CIF_EXPLANATION,
                                     time_unit=time_unit)
