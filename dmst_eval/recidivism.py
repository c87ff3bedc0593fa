"""Repeat victimization: survival curves, Cox models, recurrent events and AWOL timing.

A child who has been exploited once can be exploited again. Repeat victimization is a *recurrent
event*, and a child's follow-up ends when the child ages out of care (18 by default) or the study
window closes. The functions here respect both:

* :func:`recurrent_frame` turns a :class:`~dmst_eval.casedata.CaseData` bundle into
  counting-process rows ``(start, stop]`` (days since the child's first identification), split
  wherever the child's status changes (at home / in placement / AWOL) or a service starts.
* :func:`kaplan_meier` -- time to the first repeat episode, Greenwood (log-log) confidence
  intervals, log-rank test, median and 6/12-month estimates, number-at-risk table.
* :func:`fit_cox` -- Cox proportional-hazards models written from scratch (Newton-Raphson,
  Breslow or Efron ties, strata, delayed entry). With ``entry=`` and ``cluster=`` on counting-process
  rows it is the Andersen-Gill recurrent-event model with Lin-Wei robust (grouped dfbeta) standard
  errors; stratified by ``event_number`` with gap times it is the Prentice-Williams-Peterson model.
  The risk set follows R's ``survival`` package (a row is at risk at ``t`` when
  ``start < t <= stop``) and the results reproduce ``survival::coxph`` (see the tests on
  ``bladder2``). A proportional-hazards check (Grambsch-Therneau scaled Schoenfeld residual test)
  comes with every fit.
* :func:`mean_cumulative_function` -- Nelson-Aalen mean cumulative number of episodes per child with
  Lawless-Nadeau robust confidence intervals.
* :func:`cumulative_incidence` -- Aalen-Johansen cumulative incidence of re-victimization with
  aging out of care as a competing event, beside the naive ``1 - KM``.
* :func:`awol_timing` -- how much exploitation begins while a child is absent from care, how soon
  after the child goes missing, and the hazard ratio of exploitation while AWOL vs in placement.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "RecidivismInputError",
    "recurrent_frame",
    "first_event_frame",
    "kaplan_meier",
    "KaplanMeierResult",
    "fit_cox",
    "marginal_frame",
    "simulate_recurrent",
    "CoxResult",
    "mean_cumulative_function",
    "MCFResult",
    "cumulative_incidence",
    "CumulativeIncidenceResult",
    "awol_timing",
    "AwolTimingResult",
    "wilson_ci",
    "BASELINE_COVARIATES",
    "DAYS_PER_MONTH",
]

#: Baseline (fixed) covariates that :func:`recurrent_frame` attaches to every row.
BASELINE_COVARIATES = ("male", "substance_use", "prior_runaway", "prior_sexual_abuse",
                       "juvenile_justice", "lgbtq", "age_at_entry")
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


class RecidivismInputError(ValueError):
    """Bad input to a recidivism function (names the table/column, rows and expectation)."""


# ============================================================================================
# Small helpers
# ============================================================================================
def wilson_ci(k: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion ``k / n``.

    Parameters
    ----------
    k, n : int or array-like
        Successes and trials. Where ``n == 0`` the interval is ``(nan, nan)``.
    level : float
        Confidence level.

    Returns
    -------
    (lower, upper) : tuple of float arrays

    Examples
    --------
    >>> lo, hi = wilson_ci(5, 20)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.1119, 0.4687)
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        den = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return lo, hi


def _require_columns(df: pd.DataFrame, cols: Sequence[str], what: str = "df") -> None:
    if not isinstance(df, pd.DataFrame):
        raise RecidivismInputError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise RecidivismInputError(
            f"{what}: missing column(s) {missing}; available columns: {list(df.columns)}")


def _numeric(df: pd.DataFrame, col: str, what: str = "df") -> np.ndarray:
    s = df[col]
    if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
        try:
            s = pd.to_numeric(s)
        except (TypeError, ValueError) as exc:
            raise RecidivismInputError(
                f"{what}: column {col!r} must be numeric (0/1 for flags); got dtype {s.dtype}"
            ) from exc
    try:
        arr = s.astype("float64").to_numpy()
    except (TypeError, ValueError) as exc:
        raise RecidivismInputError(
            f"{what}: column {col!r} must be numeric; got dtype {s.dtype}") from exc
    return arr


def _bad_rows(mask: np.ndarray, index: pd.Index, limit: int = 10) -> list:
    return list(index[np.flatnonzero(mask)][:limit])


# ============================================================================================
# Cox proportional hazards: the engine
# ============================================================================================
class _CoxData:
    """Sorted-index bookkeeping for a (stratified, counting-process) Cox fit.

    Every row is at risk at the event times ``u_k`` of its stratum with ``start < u_k <= stop``;
    those times are the contiguous block ``k in [lo, hi)`` of the global event-time index, so
    risk-set sums are differences of cumulative sums (no loops over rows or times).
    """

    def __init__(self, start: np.ndarray, stop: np.ndarray, event: np.ndarray,
                 strata: np.ndarray):
        n = len(stop)
        times, inv = np.unique(np.concatenate([start, stop]), return_inverse=True)
        start_r = inv[:n].astype(np.int64)
        stop_r = inv[n:].astype(np.int64)
        m_t = len(times) + 1
        skey = strata.astype(np.int64) * m_t
        ev = event.astype(bool)
        ukeys = np.unique((skey + stop_r)[ev])
        self.n_times = len(ukeys)
        self.lo = np.searchsorted(ukeys, skey + start_r, side="right")
        self.hi = np.searchsorted(ukeys, skey + stop_r, side="right")
        self.ev_rows = np.flatnonzero(ev)
        self.k = self.hi[self.ev_rows] - 1                 # event-time index of each event row
        order = np.argsort(self.k, kind="stable")
        self.ev_rows = self.ev_rows[order]
        self.k = self.k[order]
        self.d = np.bincount(self.k, minlength=self.n_times).astype(float)
        first = np.concatenate([[0], np.cumsum(self.d)[:-1]]).astype(np.int64)
        self.rank = np.arange(len(self.k)) - first[self.k]  # 0..d-1 within each tie group
        self.event_time = times[(ukeys % m_t)]
        self.event_stratum = ukeys // m_t
        self.n = n

    def risk_sum(self, w: np.ndarray) -> np.ndarray:
        """Sum of ``w`` (n,) or (n, p) over each event time's risk set."""
        m = self.n_times
        if w.ndim == 1:
            diff = (np.bincount(self.lo, w, minlength=m + 1)
                    - np.bincount(self.hi, w, minlength=m + 1))
            return np.cumsum(diff)[:m]
        out = np.empty((m, w.shape[1]))
        for j in range(w.shape[1]):
            out[:, j] = self.risk_sum(w[:, j])
        return out

    def range_sum(self, v: np.ndarray) -> np.ndarray:
        """For every row, the sum of per-event-time values ``v`` (m,) or (m, p) over its range."""
        c = np.concatenate([np.zeros((1,) + v.shape[1:]), np.cumsum(v, axis=0)], axis=0)
        return c[self.hi] - c[self.lo]

    def by_time(self, w: np.ndarray) -> np.ndarray:
        """Sum per event time of per-event-row values ``w`` (n_events,) or (n_events, p)."""
        m = self.n_times
        if w.ndim == 1:
            return np.bincount(self.k, w, minlength=m)
        return np.column_stack([np.bincount(self.k, w[:, j], minlength=m)
                                for j in range(w.shape[1])])


def _cox_pieces(cd: _CoxData, X: np.ndarray, beta: np.ndarray, efron: bool,
                need_info: bool = True) -> dict:
    """Log partial likelihood, score and information at ``beta`` (X already centred)."""
    eta = X @ beta
    c = eta.max() if len(eta) else 0.0
    r = np.exp(eta - c)
    rX = r[:, None] * X
    S0 = cd.risk_sum(r)
    S1 = cd.risk_sum(rX)
    er = cd.ev_rows
    if efron:
        f = cd.rank / cd.d[cd.k]
        A0 = cd.by_time(r[er])
        A1 = cd.by_time(rX[er])
        den = S0[cd.k] - f * A0[cd.k]
        num1 = S1[cd.k] - f[:, None] * A1[cd.k]
    else:
        f = np.zeros(len(er))
        den = S0[cd.k]
        num1 = S1[cd.k]
    xbar = num1 / den[:, None]
    loglik = float(np.sum(eta[er] - c - np.log(den)))
    score = X[er].sum(axis=0) - xbar.sum(axis=0)
    out = dict(r=r, den=den, xbar=xbar, f=f, loglik=loglik, score=score, S0=S0)
    if need_info:
        C = cd.by_time(1.0 / den)
        w = r * cd.range_sum(C)
        if efron:
            E = cd.by_time(f / den)
            w[er] -= r[er] * E[cd.k]
        info = (X * w[:, None]).T @ X - xbar.T @ xbar
        out["info"] = info
    return out


def _cox_newton(cd: _CoxData, X: np.ndarray, efron: bool, init: np.ndarray | None = None,
                max_iter: int = 50, tol: float = 1e-10) -> tuple[np.ndarray, dict, int, float]:
    p = X.shape[1]
    beta = np.zeros(p) if init is None else np.asarray(init, float).copy()
    cur = _cox_pieces(cd, X, beta, efron)
    ll0 = cur["loglik"] if init is None else _cox_pieces(cd, X, np.zeros(p), efron, False)["loglik"]
    it = 0
    for it in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(cur["info"], cur["score"])
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(cur["info"], cur["score"], rcond=None)[0]
        new_beta = beta + step
        new = _cox_pieces(cd, X, new_beta, efron)
        halvings = 0
        while (not np.isfinite(new["loglik"]) or new["loglik"] < cur["loglik"] - 1e-12) \
                and halvings < 30:
            step = step / 2
            new_beta = beta + step
            new = _cox_pieces(cd, X, new_beta, efron)
            halvings += 1
        done = (abs(new["loglik"] - cur["loglik"]) <= tol * max(1.0, abs(new["loglik"]))
                and np.max(np.abs(step)) < 1e-8)
        beta, cur = new_beta, new
        if done:
            break
    return beta, cur, it, ll0


def _score_residuals(cd: _CoxData, X: np.ndarray, pieces: dict, efron: bool) -> np.ndarray:
    """Lin-Wei score residuals per row (event term minus compensator), n x p."""
    r, den, xbar, f = pieces["r"], pieces["den"], pieces["xbar"], pieces["f"]
    er = cd.ev_rows
    h = 1.0 / den
    H = cd.by_time(h)
    G = cd.by_time(xbar * h[:, None])
    comp = r[:, None] * (X * cd.range_sum(H)[:, None] - cd.range_sum(G))
    if efron:
        eH = cd.by_time(f * h)
        eG = cd.by_time(xbar * (f * h)[:, None])
        comp[er] -= r[er, None] * (X[er] * eH[cd.k][:, None] - eG[cd.k])
    mean_xbar = cd.by_time(xbar) / cd.d[:, None]
    resid = -comp
    resid[er] += X[er] - mean_xbar[cd.k]
    return resid


def _schoenfeld_test(cd: _CoxData, X: np.ndarray, pieces: dict, var: np.ndarray,
                     terms: list[str], transform: str = "km") -> pd.DataFrame:
    """Grambsch-Therneau (1994) test of proportional hazards from scaled Schoenfeld residuals."""
    er = cd.ev_rows
    d = len(er)
    if d < 3:
        return pd.DataFrame(columns=["chi2", "df", "p_value"])
    mean_xbar = cd.by_time(pieces["xbar"]) / cd.d[:, None]
    sch = X[er] - mean_xbar[cd.k]                        # unscaled Schoenfeld residuals
    t = cd.event_time[cd.k]
    if transform == "identity":
        g = t.astype(float)
    elif transform == "rank":
        g = stats.rankdata(t)
    elif transform == "log":
        g = np.log(t)
    elif transform == "km":
        # left-continuous Kaplan-Meier of the pooled data (as survival::cox.zph's default)
        ut, n_risk = cd.event_time, None
        S0_ones = cd.risk_sum(np.ones(cd.n))
        n_risk = S0_ones
        # pool over strata: order event times globally
        order = np.argsort(ut, kind="stable")
        tt = ut[order]
        dd = cd.d[order]
        nn = n_risk[order]
        uniq, inv = np.unique(tt, return_inverse=True)
        dsum = np.bincount(inv, dd)
        nsum = np.bincount(inv, nn)
        km = np.cumprod(1 - dsum / nsum)
        km_left = np.concatenate([[1.0], km[:-1]])
        g = 1 - km_left[np.searchsorted(uniq, t)]
    else:
        raise RecidivismInputError(
            f"transform={transform!r}; expected 'km', 'rank', 'log' or 'identity'")
    gc = g - g.mean()
    sgg = float(gc @ gc)
    if sgg <= 0:
        return pd.DataFrame(columns=["chi2", "df", "p_value"])
    test = d * (gc @ sch @ var)                          # 1 x p
    chi_each = test**2 / (np.diag(var) * d * sgg)
    chi_glob = float(test @ np.linalg.solve(var, test) / (d * sgg))
    out = pd.DataFrame({"chi2": chi_each, "df": 1.0,
                        "p_value": stats.chi2.sf(chi_each, 1)}, index=terms)
    out.loc["GLOBAL"] = [chi_glob, float(len(terms)), stats.chi2.sf(chi_glob, len(terms))]
    out.index.name = "term"
    return out


@dataclass
class CoxResult:
    """A fitted Cox model (see :func:`fit_cox`).

    Attributes
    ----------
    summary : DataFrame
        Indexed by term: coef, se (robust when clustered), naive_se, robust_se (clustered fits),
        hazard_ratio, ci_lower, ci_upper (for the hazard ratio), z, p_value.
    params_ : Series
        Coefficients (log hazard ratios).
    var_ : ndarray
        Variance matrix used for inference (robust sandwich when clustered).
    naive_var_ : ndarray
        Inverse observed information.
    ph_test : DataFrame
        Grambsch-Therneau scaled-Schoenfeld test of proportional hazards per term and GLOBAL.
    loglik, loglik_null : float
        Log partial likelihood at the estimate and at beta = 0.
    n_rows, n_events, n_clusters : int
    """

    summary: pd.DataFrame
    params_: pd.Series
    var_: np.ndarray
    naive_var_: np.ndarray
    ph_test: pd.DataFrame
    loglik: float
    loglik_null: float
    n_rows: int
    n_events: int
    n_clusters: int | None
    ties: str
    method: str
    n_iter: int
    level: float = 0.95
    score_residuals_: np.ndarray | None = field(default=None, repr=False)
    baseline_hazard_: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def hazard_ratios(self) -> pd.Series:
        """Hazard ratios exp(coef)."""
        return self.summary["hazard_ratio"]

    @property
    def lr_test(self) -> tuple[float, int, float]:
        """Likelihood-ratio test against the null model: (chi2, df, p)."""
        chi = 2 * (self.loglik - self.loglik_null)
        df = len(self.params_)
        return chi, df, float(stats.chi2.sf(chi, df))

    def plot(self, ax=None):
        """Forest plot of hazard ratios with their confidence intervals (log scale)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(self.summary)))
        s = self.summary.iloc[::-1]
        y = np.arange(len(s))
        ax.errorbar(s["hazard_ratio"], y,
                    xerr=[s["hazard_ratio"] - s["ci_lower"], s["ci_upper"] - s["hazard_ratio"]],
                    fmt="o", color="#0072B2", ecolor="#0072B2", capsize=3)
        ax.axvline(1, color="0.5", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_yticks(y)
        ax.set_yticklabels(s.index)
        ax.set_xlabel(f"Hazard ratio ({int(self.level * 100)}% CI, log scale)")
        ax.set_title(self.method)
        return ax

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"CoxResult({self.method}, ties={self.ties}, n_rows={self.n_rows}, "
                f"n_events={self.n_events}, clusters={self.n_clusters})\n"
                f"{self.summary.round(4).to_string()}")


def fit_cox(df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str],
            ties: str = "efron", cluster: str | None = None, entry: str | None = None,
            strata: str | Sequence[str] | None = None, level: float = 0.95,
            missing: str = "raise", ph_transform: str = "km", max_iter: int = 50) -> CoxResult:
    """Fit a Cox proportional-hazards model by Newton-Raphson on the partial likelihood.

    Works for ordinary right-censored data, delayed entry / counting-process rows
    ``(entry, duration]`` (Andersen-Gill), stratified baselines (PWP: ``strata="event_number"``)
    and clustered data (Lin-Wei robust sandwich variance). A row is in the risk set at an event
    time ``t`` when ``entry < t <= duration`` -- the rule used by R's ``survival`` package -- and
    the results reproduce ``survival::coxph`` (coefficients, naive and robust standard errors).

    Parameters
    ----------
    df : DataFrame
        One row per subject (right-censored data) or per at-risk interval (counting process).
    duration : str
        Column with the end of the interval (``stop``) or the follow-up time.
    event : str
        Column with 1 if the event happened at ``duration``, else 0.
    covariates : sequence of str
        Numeric covariate columns (flags as 0/1; pandas nullable booleans are accepted).
    ties : {"efron", "breslow"}
        Approximation for tied event times. R's ``coxph`` default is Efron.
    cluster : str, optional
        Column identifying independent units (e.g. ``child_id``). Standard errors are then the
        robust (grouped dfbeta, Lin & Wei 1989) sandwich; the naive (model-based) ones are kept
        in ``naive_se``.
    entry : str, optional
        Column with the start of the interval (delayed entry / counting-process ``start``).
    strata : str or list of str, optional
        Column(s) defining strata with separate baseline hazards (e.g. ``event_number`` for the
        Prentice-Williams-Peterson model).
    level : float
        Confidence level for the hazard-ratio intervals (Wald, on the log scale).
    missing : {"raise", "drop"}
        What to do with rows that have a missing value in the model columns.
    ph_transform : {"km", "rank", "log", "identity"}
        Time transform g(t) of the proportional-hazards test (R's ``cox.zph`` default is "km").
    max_iter : int
        Newton-Raphson iterations.

    Returns
    -------
    CoxResult
        ``.summary`` indexed by term with coef, se, naive_se, robust_se (if clustered),
        hazard_ratio, ci_lower, ci_upper, z, p_value; ``.ph_test``; ``.plot()``.

    Raises
    ------
    RecidivismInputError
        Missing columns, non-numeric covariates, missing values (with ``missing="raise"``),
        ``duration <= entry``, events not coded 0/1, or no events.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"time": [5, 8, 12, 3, 9, 15, 6, 11],
    ...                    "event": [1, 1, 0, 1, 1, 0, 1, 1],
    ...                    "x": [1, 0, 0, 1, 1, 0, 1, 0]})
    >>> res = fit_cox(df, "time", "event", ["x"], ties="breslow")
    >>> list(res.summary.columns[:3])
    ['coef', 'se', 'naive_se']

    Andersen-Gill with robust errors on counting-process rows:
    ``fit_cox(rf, "stop", "event", ["awol", "service"], entry="start", cluster="child_id")``.
    """
    if ties not in ("efron", "breslow"):
        raise RecidivismInputError(f"ties={ties!r}; expected 'efron' or 'breslow'")
    if missing not in ("raise", "drop"):
        raise RecidivismInputError(f"missing={missing!r}; expected 'raise' or 'drop'")
    covariates = list(covariates)
    if len(covariates) == 0:
        raise RecidivismInputError("covariates: give at least one covariate column")
    strata_cols = [] if strata is None else ([strata] if isinstance(strata, str) else list(strata))
    need = [duration, event, *covariates, *strata_cols]
    if entry is not None:
        need.append(entry)
    if cluster is not None:
        need.append(cluster)
    _require_columns(df, need)
    if len(set(covariates)) != len(covariates):
        raise RecidivismInputError(f"covariates: duplicated names in {covariates}")

    data = {c: _numeric(df, c) for c in [duration, event, *covariates]
            + ([entry] if entry else [])}
    miss = np.zeros(len(df), bool)
    for c, v in data.items():
        miss |= np.isnan(v)
    for c in strata_cols + ([cluster] if cluster else []):
        miss |= df[c].isna().to_numpy()
    if miss.any():
        if missing == "raise":
            cols = [c for c in need if df[c].isna().any()]
            raise RecidivismInputError(
                f"df: {int(miss.sum())} row(s) have missing values in {cols} "
                f"(first rows {_bad_rows(miss, df.index)}); expected complete data, or pass "
                "missing='drop' to analyse complete cases")
    keep = ~miss
    stop = data[duration][keep]
    ev = data[event][keep]
    start = data[entry][keep] if entry else np.full(len(stop), -np.inf)
    if not np.isin(ev, (0, 1)).all():
        bad = ~np.isin(data[event], (0, 1)) & keep
        raise RecidivismInputError(
            f"df: column {event!r} must be 0/1; rows {_bad_rows(bad, df.index)} are not")
    if entry is not None and np.any(stop <= start):
        bad = np.zeros(len(df), bool)
        bad[np.flatnonzero(keep)[stop <= start]] = True
        raise RecidivismInputError(
            f"df: {int(bad.sum())} row(s) have {duration!r} <= {entry!r} (rows "
            f"{_bad_rows(bad, df.index)}); expected intervals (entry, duration] of positive length")
    if ev.sum() == 0:
        raise RecidivismInputError(f"df: no events in column {event!r}; a Cox model needs events")
    if entry is None:
        # left end below every time: use a finite sentinel so np.unique works
        start = np.full(len(stop), np.min(stop) - 1.0)
    X = np.column_stack([data[c][keep] for c in covariates])
    const = np.ptp(X, axis=0) == 0
    if const.any():
        raise RecidivismInputError(
            f"covariates {[c for c, k in zip(covariates, const) if k]} are constant in the data "
            "analysed; drop them")
    X = X - X.mean(axis=0)
    if strata_cols:
        sdf = df.loc[keep, strata_cols]
        scode = sdf.groupby(strata_cols, sort=True, observed=True).ngroup().to_numpy()
    else:
        scode = np.zeros(len(stop), np.int64)

    cdat = _CoxData(start, stop, ev, scode)
    efron = ties == "efron"
    beta, pieces, n_iter, ll0 = _cox_newton(cdat, X, efron, max_iter=max_iter)
    try:
        naive_var = np.linalg.inv(pieces["info"])
    except np.linalg.LinAlgError as exc:
        raise RecidivismInputError(
            "the information matrix is singular: covariates are collinear or an effect is "
            "infinite (e.g. no events in one group)") from exc
    resid = _score_residuals(cdat, X, pieces, efron)
    n_clusters = None
    robust_var = None
    if cluster is not None:
        dfbeta = resid @ naive_var
        codes, uniq = pd.factorize(df.loc[keep, cluster], sort=False)
        n_clusters = len(uniq)
        grouped = np.column_stack([np.bincount(codes, dfbeta[:, j], minlength=n_clusters)
                                   for j in range(dfbeta.shape[1])])
        robust_var = grouped.T @ grouped
    var = robust_var if robust_var is not None else naive_var
    se = np.sqrt(np.diag(var))
    z = beta / se
    zc = stats.norm.ppf(0.5 + level / 2)
    summ = pd.DataFrame({
        "coef": beta,
        "se": se,
        "naive_se": np.sqrt(np.diag(naive_var)),
    }, index=pd.Index(covariates, name="term"))
    if robust_var is not None:
        summ["robust_se"] = se
    summ["hazard_ratio"] = np.exp(beta)
    summ["ci_lower"] = np.exp(beta - zc * se)
    summ["ci_upper"] = np.exp(beta + zc * se)
    summ["z"] = z
    summ["p_value"] = 2 * stats.norm.sf(np.abs(z))
    ph = _schoenfeld_test(cdat, X, pieces, naive_var, covariates, ph_transform)
    if strata_cols and entry and cluster:
        method = "Cox (counting process, stratified, robust SE)"
    elif entry and cluster:
        method = "Andersen-Gill (robust SE)"
    elif strata_cols:
        method = "Stratified Cox"
    else:
        method = "Cox"
    # Breslow-type baseline cumulative hazard at covariates = mean (per stratum)
    bh = pd.DataFrame({"stratum": cdat.event_stratum, "time": cdat.event_time,
                       "hazard": cdat.by_time(1.0 / pieces["den"])
                       * np.exp(-(X @ beta).max())})
    return CoxResult(summary=summ, params_=summ["coef"], var_=var, naive_var_=naive_var,
                     ph_test=ph, loglik=pieces["loglik"] + 0.0, loglik_null=ll0,
                     n_rows=int(keep.sum()), n_events=int(ev.sum()), n_clusters=n_clusters,
                     ties=ties, method=method, n_iter=n_iter, level=level,
                     score_residuals_=resid, baseline_hazard_=bh)


# ============================================================================================
# Recurrent-event data helpers
# ============================================================================================
def marginal_frame(df: pd.DataFrame, id: str = "child_id", start: str = "start",
                   stop: str = "stop", event: str = "event", max_events: int = 4,
                   keep: Sequence[str] = ()) -> pd.DataFrame:
    """Wei-Lin-Weissfeld (marginal) data from counting-process rows.

    For each subject and each ``k = 1..max_events`` one row: ``time`` = time of the k-th event if
    it happened, otherwise the end of the subject's follow-up, ``event`` = whether it happened,
    ``event_number = k``. Fit one Cox model per ``event_number`` (or stratify by it with
    ``cluster=id``) for the WLW marginal model.

    Parameters
    ----------
    df : DataFrame
        Counting-process rows.
    id, start, stop, event : str
        Column names.
    max_events : int
        Number of marginal event strata.
    keep : sequence of str
        Per-subject (baseline) columns to carry over (first value per subject).

    Returns
    -------
    DataFrame with columns id, event_number, time, event and ``keep``.

    Examples
    --------
    >>> rows = pd.DataFrame({"id": [1, 1, 2], "start": [0, 5, 0], "stop": [5, 9, 4],
    ...                      "event": [1, 0, 0]})
    >>> marginal_frame(rows, id="id", max_events=2)[["id", "event_number", "time", "event"]]
       id  event_number  time  event
    0   1             1   5.0      1
    1   1             2   9.0      0
    2   2             1   4.0      0
    3   2             2   4.0      0
    """
    _require_columns(df, [id, start, stop, event, *keep])
    base = df.groupby(id, sort=True).agg(fu=(stop, "max"), **{k: (k, "first") for k in keep})
    evs = df.loc[df[event] == 1, [id, stop]].sort_values([id, stop])
    evs["event_number"] = evs.groupby(id).cumcount() + 1
    evs = evs[evs["event_number"] <= max_events]
    grid = pd.MultiIndex.from_product([base.index, range(1, max_events + 1)],
                                      names=[id, "event_number"]).to_frame(index=False)
    out = grid.merge(evs, on=[id, "event_number"], how="left")
    out = out.merge(base, left_on=id, right_index=True)
    out["event"] = out[stop].notna().astype(int)
    out["time"] = out[stop].fillna(out["fu"]).astype(float)
    return out[[id, "event_number", "time", "event", *keep]].reset_index(drop=True)


def simulate_recurrent(n: int, log_hr: dict[str, float], baseline_rate: float = 1.0,
                       time_varying: Sequence[str] = ("tv",), switch_rate: float = 2.0,
                       follow_up: tuple[float, float] = (0.5, 3.0), prevalence: float = 0.4,
                       seed: Any = None) -> pd.DataFrame:
    """Simulate recurrent events with a known Cox (Andersen-Gill) intensity.

    Intensity ``baseline_rate * exp(sum beta_j x_j(t))``. Covariates in ``time_varying`` switch
    on and off at the events of a Poisson process of rate ``switch_rate``; the others are fixed
    binary flags with the given prevalence. Follow-up is uniform on ``follow_up``. Fully
    vectorised (used by the tests and the benchmark).

    Parameters
    ----------
    n : int
        Subjects.
    log_hr : dict
        Covariate name -> log hazard ratio.
    baseline_rate : float
        Events per unit time at covariates 0.
    time_varying : sequence of str
        Which covariates are time-varying (others are fixed).
    switch_rate, follow_up, prevalence : float, tuple, float
        Process parameters.
    seed : int or numpy Generator

    Returns
    -------
    DataFrame: id, start, stop, event, event_number and the covariates.

    Examples
    --------
    >>> df = simulate_recurrent(50, {"x": 0.5, "tv": 0.3}, seed=1)
    >>> list(df.columns)
    ['id', 'start', 'stop', 'event', 'event_number', 'x', 'tv']
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    names = list(log_hr)
    tv = [c for c in names if c in time_varying]
    fixed = [c for c in names if c not in time_varying]
    fu = rng.uniform(*follow_up, n)
    Xf = (rng.uniform(size=(n, len(fixed))) < prevalence).astype(float)
    # segments between switches (up to K switches per subject)
    K = int(np.ceil(switch_rate * follow_up[1] * 3 + 10))
    gaps = rng.exponential(1 / switch_rate, (n, K)) if tv else np.full((n, 1), np.inf)
    cuts = np.cumsum(gaps, axis=1)
    seg_end = np.minimum(np.concatenate([cuts, np.full((n, 1), np.inf)], axis=1), fu[:, None])
    seg_start = np.concatenate([np.zeros((n, 1)), seg_end[:, :-1]], axis=1)
    valid = seg_end > seg_start
    sid, sk = np.nonzero(valid)
    s0, s1 = seg_start[sid, sk], seg_end[sid, sk]
    init = (rng.uniform(size=(n, max(len(tv), 1))) < prevalence).astype(int)
    Xtv = np.column_stack([(init[sid, j] + sk) % 2 for j in range(len(tv))]) if tv \
        else np.zeros((len(sid), 0))
    lin = np.zeros(len(sid))
    for j, c in enumerate(fixed):
        lin += log_hr[c] * Xf[sid, j]
    for j, c in enumerate(tv):
        lin += log_hr[c] * Xtv[:, j]
    lam = baseline_rate * np.exp(lin)
    n_ev = rng.poisson(lam * (s1 - s0))
    ev_seg = np.repeat(np.arange(len(sid)), n_ev)
    ev_t = s0[ev_seg] + rng.uniform(size=len(ev_seg)) * (s1 - s0)[ev_seg]
    # cut points: segment ends (no event) and event times (event) -> rows
    cut_seg = np.concatenate([np.arange(len(sid)), ev_seg])
    cut_t = np.concatenate([s1, ev_t])
    cut_e = np.concatenate([np.zeros(len(sid), int), np.ones(len(ev_seg), int)])
    order = np.lexsort((cut_t, cut_seg))
    cut_seg, cut_t, cut_e = cut_seg[order], cut_t[order], cut_e[order]
    first = np.r_[True, cut_seg[1:] != cut_seg[:-1]]
    row_start = np.where(first, s0[cut_seg], np.r_[0.0, cut_t[:-1]])
    out = pd.DataFrame({"id": sid[cut_seg], "start": row_start, "stop": cut_t, "event": cut_e})
    for j, c in enumerate(fixed):
        out[c] = Xf[out["id"].to_numpy(), j]
    for j, c in enumerate(tv):
        out[c] = Xtv[cut_seg, j].astype(float)
    out = out[out["stop"] > out["start"]].reset_index(drop=True)
    prior = out.groupby("id")["event"].cumsum() - out["event"]
    out.insert(4, "event_number", (prior + 1).astype(int))
    return out[["id", "start", "stop", "event", "event_number", *names]]


# ============================================================================================
# Counting-process rows from a CaseData bundle
# ============================================================================================
def _birthday(birth: pd.Series, years: float) -> pd.Series:
    """Date of the ``years``-th birthday (29 Feb -> 1 Mar in common years), vectorised."""
    whole = int(np.floor(years))
    out = pd.to_datetime(pd.DataFrame({"year": birth.dt.year + whole, "month": birth.dt.month,
                                       "day": birth.dt.day}), errors="coerce")
    leap = out.isna() & birth.notna()
    if leap.any():
        out[leap] = pd.to_datetime(pd.DataFrame({"year": birth[leap].dt.year + whole,
                                                 "month": 3, "day": 1}))
    frac = years - whole
    if frac:
        out = out + pd.to_timedelta(frac * DAYS_PER_YEAR, unit="D")
    return out


def _flag(s: pd.Series) -> pd.Series:
    return s.astype("Float64").astype(float)


def recurrent_frame(cd, start: Any = None, end: Any = None, censor_age: float = 18,
                    confirmed_only: bool = False, event_time: str = "began_at") -> pd.DataFrame:
    """Counting-process rows for repeat victimization, one row per at-risk interval.

    Follow-up of a child starts at the child's first identification (earliest
    ``episodes.identified_at``); time is measured in days from then. Each later episode that
    *began* (``began_at``) after that moment is a repeat event. Follow-up ends at the child's
    ``censor_age`` birthday (aging out of care) or at the end of the window, whichever is first.
    Rows are split at every repeat episode and wherever a time-varying covariate changes:

    * ``awol`` -- absent without leave (an ``awol_episodes`` spell, ``[start, end)``);
    * ``in_placement`` -- in an out-of-home placement and not AWOL (``placements``);
      at home when both are 0;
    * ``service`` -- any Restore & Recovery service has started (``services.started_at``).

    Parameters
    ----------
    cd : CaseData
        The bundle.
    start, end : date-like, optional
        Window: children first identified in ``[start, end)`` are followed until ``end``.
        Default: the bundle's study window (``cd.meta``).
    censor_age : float
        Age (years) at which follow-up ends (leaving care).
    confirmed_only : bool
        Use only episodes confirmed as trafficking.
    event_time : {"began_at", "identified_at"}
        Which timestamp of later episodes is the event time.

    Returns
    -------
    DataFrame
        Columns child_id, start, stop (days since first identification, interval
        ``(start, stop]``), event (1 = a repeat episode began at ``stop``), event_number (which
        repeat the row is at risk for: 1 = first repeat), gap_start, gap_stop (days since the
        previous episode: gap time for PWP models), awol, in_placement, service, aged_out (1 on
        the last row of a child whose follow-up ended at ``censor_age``), and the baseline
        covariates male, substance_use, prior_runaway, prior_sexual_abuse, juvenile_justice,
        lgbtq (NaN where unknown) and age_at_entry (years at first identification).

    Raises
    ------
    RecidivismInputError
        If a needed table or column is missing or ``event_time`` is unknown.

    Examples
    --------
    >>> from dmst_eval.casedata import CaseData
    >>> cd = CaseData.from_frames(
    ...     children=pd.DataFrame({"child_id": ["c1"], "sex": ["female"],
    ...                            "birth_date": [pd.Timestamp("2000-01-01")]}),
    ...     episodes=pd.DataFrame({"episode_id": ["e1", "e2"], "child_id": ["c1", "c1"],
    ...         "began_at": pd.to_datetime(["2014-01-01", "2014-03-02"]),
    ...         "identified_at": pd.to_datetime(["2014-01-01", "2014-03-10"])}),
    ...     meta={"study_start": "2008-01-01", "study_end": "2020-12-31"})
    >>> recurrent_frame(cd)[["start", "stop", "event", "event_number"]]
       start    stop  event  event_number
    0    0.0    60.0      1             1
    1   60.0  1461.0      0             2
    """
    if event_time not in ("began_at", "identified_at"):
        raise RecidivismInputError(
            f"event_time={event_time!r}; expected 'began_at' or 'identified_at'")
    tabs = {"children": ["child_id", "sex", "birth_date"],
            "episodes": ["child_id", "began_at", "identified_at", "confirmed"],
            "placements": ["child_id", "start", "end"],
            "awol_episodes": ["child_id", "start", "end"],
            "services": ["child_id", "started_at"]}
    for t, cols in tabs.items():
        if not hasattr(cd, t):
            raise RecidivismInputError(f"cd has no table {t!r}; expected a CaseData bundle")
        _require_columns(getattr(cd, t), cols, what=f"table {t!r}")
    meta = getattr(cd, "meta", {}) or {}
    w_start = pd.Timestamp(start if start is not None else meta.get("study_start", "1900-01-01"))
    w_end = pd.Timestamp(end if end is not None else meta.get("study_end", "2262-01-01"))
    if w_end <= w_start:
        raise RecidivismInputError(f"window: end {w_end.date()} must be after start "
                                   f"{w_start.date()}")
    eps = cd.episodes
    if confirmed_only:
        eps = eps[eps["confirmed"].fillna(False).astype(bool)]
    eps = eps[["child_id", "began_at", "identified_at"]].dropna(subset=["identified_at"])
    first = eps.groupby("child_id", observed=True)["identified_at"].min().rename("t0")
    kids = cd.children.set_index("child_id")
    unknown = first.index.difference(kids.index)
    if len(unknown):
        raise RecidivismInputError(
            f"table 'episodes': child_id(s) {list(unknown[:10])} are not in 'children'; "
            "expected every episode's child to be listed")
    base = kids.loc[first.index].copy()
    base["t0"] = first
    base["aging_date"] = _birthday(base["birth_date"], censor_age)
    base = base[(base["t0"] >= w_start) & (base["t0"] < w_end) & (base["t0"] < base["aging_date"])]
    base["t_end"] = base["aging_date"].where(base["aging_date"] <= w_end, w_end)
    base["aged_out_child"] = base["aging_date"] <= w_end
    base["fu"] = (base["t_end"] - base["t0"]) / pd.Timedelta(days=1)
    base = base[base["fu"] > 0]
    cols_out = ["child_id", "start", "stop", "event", "event_number", "gap_start", "gap_stop",
                "awol", "in_placement", "service", "aged_out", *BASELINE_COVARIATES]
    if base.empty:
        return pd.DataFrame({c: pd.Series(dtype="string" if c == "child_id" else float)
                             for c in cols_out})
    ids = base.index
    t0 = base["t0"]
    fu = base["fu"]

    def rel(df: pd.DataFrame, col: str) -> tuple[pd.Series, pd.Series]:
        d = df[df["child_id"].isin(ids)]
        t = (d[col] - d["child_id"].map(t0)) / pd.Timedelta(days=1)
        return d["child_id"], t

    parts = []

    def add(child, t, **delta):
        part = pd.DataFrame({"child_id": child.to_numpy(), "t": t.to_numpy(dtype=float)})
        for k in ("dp", "da", "ds", "de"):
            part[k] = delta.get(k, 0)
        parts.append(part)

    # boundaries
    add(pd.Series(ids), pd.Series(np.zeros(len(ids))))
    add(pd.Series(ids), fu.reset_index(drop=True))
    # placements and AWOL spells: +1 at start, -1 at end (open spells never end)
    for tab, key in (("placements", "dp"), ("awol_episodes", "da")):
        sp = getattr(cd, tab)
        c, ts = rel(sp, "start")
        add(c, ts, **{key: 1})
        spe = sp[sp["end"].notna()]
        c, te = rel(spe, "end")
        add(c, te, **{key: -1})
    sv = cd.services.dropna(subset=["started_at"])
    sv = sv.groupby("child_id", observed=True, as_index=False)["started_at"].min()
    c, ts = rel(sv, "started_at")
    add(c, ts, ds=1)
    # repeat episodes: began after first identification, inside follow-up
    c, te = rel(eps, event_time)
    ok = (te > 0).to_numpy() & (te <= c.map(fu)).to_numpy()
    add(c[ok], te[ok], de=1)

    ch = pd.concat(parts, ignore_index=True)
    ch["fu"] = ch["child_id"].map(fu).to_numpy()
    ch["t"] = ch["t"].clip(lower=0.0)
    ch["t"] = np.minimum(ch["t"].to_numpy(), ch["fu"].to_numpy())
    ch = (ch.groupby(["child_id", "t"], sort=True, observed=True)[["dp", "da", "ds", "de"]]
          .sum().reset_index())
    g = ch.groupby("child_id", sort=False, observed=True)
    ch["cp"] = g["dp"].cumsum()
    ch["ca"] = g["da"].cumsum()
    ch["cs"] = g["ds"].cumsum()
    ch["stop"] = g["t"].shift(-1)
    ch["event"] = g["de"].shift(-1)
    rows = ch[ch["stop"].notna()].copy()
    rows = rows.rename(columns={"t": "start"})
    rows["event"] = (rows["event"] > 0).astype(int)
    prior = rows.groupby("child_id", sort=False, observed=True)["event"].cumsum() - rows["event"]
    rows["event_number"] = (prior + 1).astype(int)
    # gap time: since the previous repeat episode (or first identification)
    last_ev = rows["stop"].where(rows["event"] == 1)
    last_ev = last_ev.groupby(rows["child_id"], sort=False, observed=True).shift(1)
    last_ev = last_ev.groupby(rows["child_id"], sort=False, observed=True).ffill().fillna(0.0)
    rows["gap_start"] = rows["start"] - last_ev
    rows["gap_stop"] = rows["stop"] - last_ev
    rows["awol"] = (rows["ca"] > 0).astype(int)
    rows["in_placement"] = ((rows["cp"] > 0) & (rows["awol"] == 0)).astype(int)
    rows["service"] = (rows["cs"] > 0).astype(int)
    is_last = rows["stop"].to_numpy() >= rows["child_id"].map(fu).to_numpy()
    rows["aged_out"] = (is_last & rows["child_id"].map(base["aged_out_child"]).to_numpy()
                        ).astype(int)
    b = pd.DataFrame(index=ids)
    b["male"] = (base["sex"] == "male").astype(float)
    for f in ("substance_use", "prior_runaway", "prior_sexual_abuse", "juvenile_justice", "lgbtq"):
        b[f] = _flag(base[f]) if f in base else np.nan
    b["age_at_entry"] = (base["t0"] - base["birth_date"]) / pd.Timedelta(days=DAYS_PER_YEAR)
    rows = rows.merge(b, left_on="child_id", right_index=True, how="left")
    rows["child_id"] = rows["child_id"].astype("string")
    return rows[cols_out].reset_index(drop=True)


def first_event_frame(rf: pd.DataFrame, id: str = "child_id") -> pd.DataFrame:
    """One row per child: time to the first repeat episode, from :func:`recurrent_frame` rows.

    Returns columns child_id, duration (days), event (1 = repeat), cause (1 = repeat,
    2 = aged out of care before a repeat, 0 = censored at window end), and the baseline covariates.

    Examples
    --------
    >>> rf = pd.DataFrame({"child_id": ["a", "a", "b"], "start": [0.0, 30, 0],
    ...                    "stop": [30.0, 90, 50], "event": [0, 1, 0], "event_number": 1,
    ...                    "aged_out": [0, 0, 1]})
    >>> first_event_frame(rf)[["child_id", "duration", "event", "cause"]]
      child_id  duration  event  cause
    0        a      90.0      1      1
    1        b      50.0      0      2
    """
    _require_columns(rf, [id, "stop", "event", "event_number", "aged_out"], what="rf")
    r1 = rf[rf["event_number"] == 1]
    g = r1.groupby(id, sort=True, observed=True)
    out = pd.DataFrame({"duration": g["stop"].max(), "event": g["event"].max(),
                        "aged_out": g["aged_out"].max()})
    out["cause"] = np.where(out["event"] == 1, 1, np.where(out["aged_out"] == 1, 2, 0))
    extra = [c for c in BASELINE_COVARIATES if c in rf.columns]
    if extra:
        out = out.join(g[extra].first())
    out = out.drop(columns="aged_out").reset_index()
    out["event"] = out["event"].astype(int)
    return out
