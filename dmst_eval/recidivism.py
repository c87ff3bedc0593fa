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

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from dmst_eval.intervals import wilson_ci  # noqa: F401  (re-exported)
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
    "logrank_test",
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
        ut = cd.event_time
        n_risk = cd.risk_sum(np.ones(cd.n))
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
    warnings: list = field(default_factory=list)

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
        from dmst_eval.plots import log_ratio_axis

        log_ratio_axis(ax, np.r_[s["ci_lower"], s["ci_upper"], 1.0])
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
    warn = []
    diag = np.diag(naive_var)
    sd = X.std(axis=0)
    suspect = (diag <= 0) | ~np.isfinite(diag) | (np.abs(beta) * sd > 8)
    if suspect.any() or n_iter >= max_iter:
        names = [c for c, k in zip(covariates, suspect) if k] or covariates
        warn.append(f"monotone likelihood or non-convergence: coefficient(s) {names} may be "
                    "infinite (e.g. no events in one group); their estimates and CIs are not "
                    "meaningful")
        warnings.warn(warn[-1], RuntimeWarning, stacklevel=2)
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
    vd = np.diag(var)
    se = np.sqrt(np.where(vd > 0, vd, np.nan))
    se = np.where(suspect, np.nan, se)
    z = beta / se
    zc = stats.norm.ppf(0.5 + level / 2)
    summ = pd.DataFrame({
        "coef": beta,
        "se": se,
        "naive_se": np.sqrt(np.where(diag > 0, diag, np.nan)),
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
                     score_residuals_=resid, baseline_hazard_=bh, warnings=warn)


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
# Datetime64[D] range that converts to datetime64[ns] (pd.Timestamp.min/max at midnight)
_NS_DAYS = (np.datetime64("1677-09-22", "D"), np.datetime64("2262-04-11", "D"))


def _birthday(birth: pd.Series, years: float) -> pd.Series:
    """Date of the ``years``-th birthday (29 Feb -> 1 Mar in common years), vectorised.

    Calendar arithmetic in numpy datetime64 rather than ``pd.to_datetime`` from year/month/day
    columns: the birth month plus ``12 * whole years``, plus the day's offset within the month.
    A 29 February birth whose birthday falls in a common year runs one day past the end of
    February, i.e. to 1 March -- the same rule as before. The time of day is dropped; a fractional
    part of ``years`` adds ``frac * 365.25`` days. Birthdays outside the datetime64[ns] range
    are NaT.
    """
    whole = int(np.floor(years))
    day = birth.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    bday = (month + 12 * whole).astype("datetime64[D]") + (day - month.astype("datetime64[D]"))
    bday[(bday < _NS_DAYS[0]) | (bday > _NS_DAYS[1])] = np.datetime64("NaT")
    out = pd.Series(bday.astype("datetime64[ns]"), index=birth.index)
    frac = years - whole
    if frac:
        out = out + pd.to_timedelta(frac * DAYS_PER_YEAR, unit="D")
    return out


def _flag(s: pd.Series) -> pd.Series:
    return s.astype("Float64").astype(float)


def _segment_cumsum(x: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` (along axis 0) restarting wherever ``new`` is True (row 0 is)."""
    cs = np.cumsum(x, axis=0)
    starts = np.flatnonzero(new)
    before = cs[starts] - x[starts]
    return cs - before[np.cumsum(new) - 1]


def recurrent_frame(cd, start: Any = None, end: Any = None, censor_age: float = 18,
                    confirmed_only: bool = True, event_time: str = "began_at") -> pd.DataFrame:
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
        Use only episodes confirmed as trafficking (default; the agency's count of victims).
        With ``False`` every episode that came to light counts.
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
    ...         "identified_at": pd.to_datetime(["2014-01-01", "2014-03-10"]),
    ...         "confirmed": [True, True]}),
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
    cols_out = ["child_id", "start", "stop", "event", "event_number", "gap_start", "gap_stop",
                "awol", "in_placement", "service", "aged_out", *BASELINE_COVARIATES]
    eps = cd.episodes
    if confirmed_only:
        eps = eps[eps["confirmed"].fillna(False).astype(bool)]
    eps = eps[["child_id", "began_at", "identified_at"]].dropna(subset=["identified_at"])
    # Children are handled by integer position throughout: ``kid`` = position in ``uniq`` (the
    # sorted child ids of the episodes, as a groupby would order them), so per-child values are
    # plain arrays and lookups are takes instead of map/merge on string ids.
    code, uniq = pd.factorize(eps["child_id"], sort=True)
    ok = code >= 0
    idv = eps["identified_at"].to_numpy()
    t0 = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(t0, code[ok], idv.view("i8")[ok])        # first identification per child
    t0 = t0.view(idv.dtype)
    children = cd.children
    kid_of_row = uniq.get_indexer(children["child_id"])
    k_rows = np.flatnonzero(kid_of_row >= 0)
    n_rows = np.bincount(kid_of_row[k_rows], minlength=len(uniq))
    if (n_rows == 0).any():
        unknown = uniq.difference(pd.Index(children["child_id"]))
        raise RecidivismInputError(
            f"table 'episodes': child_id(s) {list(unknown[:10])} are not in 'children'; "
            "expected every episode's child to be listed")
    if (n_rows > 1).any():
        raise RecidivismInputError(
            f"table 'children': child_id(s) {list(uniq[n_rows > 1][:10])} are listed more than "
            "once; expected one row per child")
    kid_row = np.empty(len(uniq), dtype=np.int64)
    kid_row[kid_of_row[k_rows]] = k_rows                     # children row of each child
    aging = _birthday(children["birth_date"].iloc[kid_row], censor_age).to_numpy()
    ws, we = w_start.to_datetime64(), w_end.to_datetime64()
    keep = (t0 >= ws) & (t0 < we) & (t0 < aging)
    aged_out_child = aging <= we
    t_end = np.where(aged_out_child, aging, we).astype(aging.dtype)
    fu = (t_end - t0) / np.timedelta64(1, "D")
    keep &= fu > 0
    if not keep.any():
        return pd.DataFrame({c: pd.Series(dtype="string" if c == "child_id" else float)
                             for c in cols_out})
    sel = np.flatnonzero(keep)
    ids, t0, fu, aged_out_child = uniq[sel], t0[sel], fu[sel], aged_out_child[sel]
    kids = children.iloc[kid_row[sel]]

    def rel(df: pd.DataFrame, *cols: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """Child position of the rows of ``df`` whose child is followed, and the days from the
        child's first identification to each of ``cols`` (NaN where missing)."""
        r = np.flatnonzero(df["child_id"].isin(ids).to_numpy())
        kid = ids.get_indexer(df["child_id"].iloc[r])
        return kid, [(df[c].to_numpy()[r] - t0[kid]) / np.timedelta64(1, "D") for c in cols]

    # change points: (child, time, change in placement / AWOL / service / repeat-episode counts)
    kid_parts, t_parts, d_parts = [], [], []

    def add(kid, t, col=None, step=0):
        d = np.zeros((len(kid), 4), dtype=np.int64)
        if col is not None:
            d[:, col] = step
        kid_parts.append(kid)
        t_parts.append(t)
        d_parts.append(d)

    every = np.arange(len(ids))
    add(every, np.zeros(len(ids)))                           # boundaries
    add(every, fu)
    # placements and AWOL spells: +1 at start, -1 at end (open spells never end)
    for tab, col in (("placements", 0), ("awol_episodes", 1)):
        kid, (ts, te) = rel(getattr(cd, tab), "start", "end")
        add(kid, ts, col, 1)
        add(kid, te, col, -1)                                # NaN (open) ends are dropped below
    # first service start of each child
    sv = cd.services
    kid, (ts,) = rel(sv, "started_at")
    first_sv = np.full(len(ids), np.inf)
    has = ~np.isnan(ts)
    np.minimum.at(first_sv, kid[has], ts[has])
    has = np.isfinite(first_sv)
    add(every[has], first_sv[has], 2, 1)
    # repeat episodes: began after first identification, inside follow-up
    kid, (te,) = rel(eps, event_time)
    ok = (te > 0) & (te <= fu[kid])
    add(kid[ok], te[ok], 3, 1)

    kid = np.concatenate(kid_parts)
    t = np.minimum(np.maximum(np.concatenate(t_parts), 0.0), fu[kid])
    d = np.concatenate(d_parts)
    ok = ~np.isnan(t)
    kid, t, d = kid[ok], t[ok], d[ok]
    # one row per (child, time), summed changes, in (child, time) order
    order = np.lexsort((t, kid))
    kid, t, d = kid[order], t[order], d[order]
    new_kid = np.r_[True, kid[1:] != kid[:-1]]
    first = np.flatnonzero(new_kid | np.r_[True, t[1:] != t[:-1]])
    kid, t, d, new_kid = kid[first], t[first], np.add.reduceat(d, first, axis=0), new_kid[first]
    level = _segment_cumsum(d[:, :3], new_kid)               # placement, AWOL, service counts
    # intervals (t_i, t_{i+1}] of the same child; event = a repeat episode at t_{i+1}
    row = np.flatnonzero(~np.r_[new_kid[1:], True])
    kid, start_, stop = kid[row], t[row], t[row + 1]
    event = (d[row + 1, 3] > 0).astype(np.int64)
    level = level[row]
    new_kid = np.r_[True, kid[1:] != kid[:-1]]
    event_number = _segment_cumsum(event, new_kid) - event + 1
    # gap time: since the previous repeat episode of the child (or first identification): the
    # stop of the latest earlier row with an event, found by a running max of row numbers
    n = len(kid)
    prev_ev = np.maximum.accumulate(np.r_[-1, np.where(event == 1, np.arange(n), -1)[:-1]])
    kid_start = np.flatnonzero(new_kid)[np.cumsum(new_kid) - 1]
    last_ev = np.where(prev_ev >= kid_start, stop[np.maximum(prev_ev, 0)], 0.0)
    awol = (level[:, 1] > 0).astype(np.int64)
    is_last = stop >= fu[kid]
    out = {"child_id": ids[kid].astype("string").array, "start": start_, "stop": stop,
           "event": event, "event_number": event_number,
           "gap_start": start_ - last_ev, "gap_stop": stop - last_ev,
           "awol": awol,
           "in_placement": ((level[:, 0] > 0) & (awol == 0)).astype(np.int64),
           "service": (level[:, 2] > 0).astype(np.int64),
           "aged_out": (is_last & aged_out_child[kid]).astype(np.int64),
           "male": (kids["sex"] == "male").astype(float).to_numpy()[kid]}
    for f in BASELINE_COVARIATES[1:-1]:                       # the risk flags
        out[f] = _flag(kids[f]).to_numpy()[kid] if f in kids else np.full(n, np.nan)
    year = pd.Timedelta(days=DAYS_PER_YEAR).to_timedelta64()
    out["age_at_entry"] = ((t0 - kids["birth_date"].to_numpy()) / year)[kid]
    return pd.DataFrame(out)                                 # keys in cols_out order


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
    _require_columns(df, cols)
    t = _numeric(df, duration)
    e = _numeric(df, event)
    bad = np.isnan(t) | np.isnan(e) | (t < 0) | ~np.isin(e, (0, 1))
    if bad.any():
        raise RecidivismInputError(
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
        raise RecidivismInputError(f"ci={ci!r}; expected 'log' or 'plain'")
    _require_columns(df, [start, stop, event, id] + ([group] if group else []))
    s = _numeric(df, start)
    t = _numeric(df, stop)
    e = _numeric(df, event)
    bad = np.isnan(s) | np.isnan(t) | np.isnan(e) | (t <= s) | (e < 0)
    if bad.any():
        raise RecidivismInputError(
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
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        tb = self.table
        x = np.concatenate([[0], tb["time"]])
        ax.step(x, np.concatenate([[0], tb["cif"]]), where="post", color="#0072B2",
                label="Cumulative incidence (Aalen-Johansen)")
        ax.fill_between(x, np.concatenate([[0], tb["ci_lower"].fillna(0)]),
                        np.concatenate([[0], tb["ci_upper"].fillna(0)]), step="post",
                        color="#0072B2", alpha=0.15, lw=0)
        ax.step(x, np.concatenate([[0], tb["naive"]]), where="post", color="#D55E00", ls="--",
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
                         level: float = 0.95, months: Sequence[float] = (6, 12, 24),
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
        Code(s) of competing events; any other code is censoring.
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
    _require_columns(df, [duration, cause])
    t = _numeric(df, duration)
    c = _numeric(df, cause)
    comp = [competing] if np.isscalar(competing) else list(competing)
    bad = np.isnan(t) | np.isnan(c) | (t < 0)
    if bad.any():
        raise RecidivismInputError(
            f"df: {int(bad.sum())} row(s) with missing or negative {duration!r}/{cause!r} "
            f"(rows {_bad_rows(bad, df.index)})")
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


# ============================================================================================
# AWOL timing
# ============================================================================================
def _median_ci(x: np.ndarray, level: float) -> tuple[float, float]:
    """Distribution-free CI for a median from order statistics (binomial, coverage >= level)."""
    x = np.sort(x[~np.isnan(x)])
    n = len(x)
    if n == 0:
        return np.nan, np.nan
    lo_k = int(stats.binom.ppf((1 - level) / 2, n, 0.5))     # number below the lower limit
    if lo_k < 1:
        return np.nan, np.nan                                # too few for a CI
    # P(X < lo_k) <= alpha/2 -> use order statistics lo_k and n - lo_k + 1 (1-based)
    while lo_k > 0 and stats.binom.cdf(lo_k - 1, n, 0.5) > (1 - level) / 2:
        lo_k -= 1
    if lo_k < 1:
        return np.nan, np.nan
    return float(x[lo_k - 1]), float(x[n - lo_k])


@dataclass
class AwolTimingResult:
    """How much exploitation begins while a child is AWOL, and how soon (see :func:`awol_timing`).

    Attributes
    ----------
    summary : DataFrame
        Indexed by measure: estimate, ci_lower, ci_upper, numerator, denominator, method.
    hours : ndarray
        Hours from the start of the AWOL spell to the start of each episode that began during
        one (no identifiers).
    cox : CoxResult or None
        Time-varying Andersen-Gill model on the placement/AWOL time after first identification;
        the ``awol`` hazard ratio compares AWOL with being in placement.
    note : str
        Caveats (e.g. too few events).
    """

    summary: pd.DataFrame
    hours: np.ndarray
    cox: CoxResult | None
    note: str = ""

    @property
    def hazard_ratio(self) -> pd.Series:
        """HR (with CI) of exploitation while AWOL vs in placement."""
        return self.summary.loc["hazard_ratio_awol_vs_placement"]

    def plot(self, ax=None, max_hours: float = 24 * 14):
        """Cumulative share of AWOL-onset episodes by hours since running, 48 h and 7 d marked."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        h = np.sort(self.hours)
        if len(h):
            y = np.arange(1, len(h) + 1) / len(h)
            ax.step(np.concatenate([[0], h]), np.concatenate([[0], y]), where="post",
                    color="#0072B2")
        for x, lab in ((48, "48 hours"), (168, "7 days")):
            ax.axvline(x, color="#D55E00", ls="--", lw=1)
            ax.text(x, 0.03, f" {lab}", color="#D55E00", fontsize=8)
        ax.set_xlim(0, max_hours)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Hours from going missing to the start of exploitation")
        ax.set_ylabel("Cumulative share of episodes")
        return ax


def awol_timing(cd, start: Any = None, end: Any = None, censor_age: float = 18,
                adjust: Sequence[str] = ("substance_use", "prior_runaway", "male", "service"),
                level: float = 0.95, min_events: int = 5,
                confirmed_only: bool = True) -> AwolTimingResult:
    """AWOL and exploitation: share of episodes that began while AWOL, onset timing, hazard ratio.

    * **Share during AWOL** -- episodes beginning in ``[start, end)`` whose ``status_at_time`` is
      "awol" (or that carry an ``awol_id``), overall and for first vs repeat episodes; Wilson CIs.
    * **Onset timing** -- hours from the start of the AWOL spell (``awol_episodes.start``) to the
      episode's ``began_at``: share within 48 hours and within 7 days (Wilson CIs) and the median
      (distribution-free order-statistic CI).
    * **Hazard ratio** -- from an Andersen-Gill model on the counting-process rows of
      :func:`recurrent_frame`, restricted to time in placement or AWOL: ``awol`` (time-varying) vs
      in placement, adjusted for ``adjust`` (complete cases), robust SEs clustered by child.

    Parameters
    ----------
    cd : CaseData
    start, end : date-like, optional
        Window (default: the bundle's study window).
    censor_age : float
        Follow-up ends at this age (see :func:`recurrent_frame`).
    adjust : sequence of str
        Covariates of the hazard model besides ``awol`` (dropped if constant).
    level : float
        Confidence level.
    min_events : int
        Minimum repeat episodes while AWOL and while placed to fit the hazard model.
    confirmed_only : bool
        Use only confirmed episodes (as :func:`recurrent_frame`).

    Returns
    -------
    AwolTimingResult

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> res = awol_timing(generate(seed=1))
    >>> list(res.summary.index[:2])
    ['share_episodes_during_awol', 'share_first_episodes_during_awol']
    >>> bool(0 <= res.summary.loc["share_within_48h", "estimate"] <= 1)
    True
    """
    for t, cols in {"episodes": ["episode_id", "child_id", "began_at", "identified_at",
                                 "status_at_time", "awol_id", "confirmed"],
                    "awol_episodes": ["awol_id", "start"]}.items():
        if not hasattr(cd, t):
            raise RecidivismInputError(f"cd has no table {t!r}; expected a CaseData bundle")
        _require_columns(getattr(cd, t), cols, what=f"table {t!r}")
    meta = getattr(cd, "meta", {}) or {}
    w_start = pd.Timestamp(start if start is not None else meta.get("study_start", "1900-01-01"))
    w_end = pd.Timestamp(end if end is not None else meta.get("study_end", "2262-01-01"))
    eps = cd.episodes
    if confirmed_only:
        eps = eps[eps["confirmed"].fillna(False).astype(bool)]
    first_id = eps.groupby("child_id", observed=True)["identified_at"].transform("min")
    is_first = (eps["identified_at"] == first_id).to_numpy()
    during = ((eps["status_at_time"] == "awol").fillna(False) | eps["awol_id"].notna()).to_numpy()
    inwin = ((eps["began_at"] >= w_start) & (eps["began_at"] < w_end)).to_numpy()
    rows = []

    def prop(name, k, n, method="Wilson score"):
        lo, hi = wilson_ci(k, n, level)
        rows.append({"measure": name, "estimate": k / n if n else np.nan,
                     "ci_lower": float(lo), "ci_upper": float(hi), "numerator": float(k),
                     "denominator": float(n), "method": method})

    prop("share_episodes_during_awol", int((during & inwin).sum()), int(inwin.sum()))
    prop("share_first_episodes_during_awol", int((during & inwin & is_first).sum()),
         int((inwin & is_first).sum()))
    prop("share_repeat_episodes_during_awol", int((during & inwin & ~is_first).sum()),
         int((inwin & ~is_first).sum()))
    aw = cd.awol_episodes[["awol_id", "start"]].rename(columns={"start": "awol_start"})
    e = eps.loc[during & inwin, ["awol_id", "began_at"]].merge(aw, on="awol_id", how="inner")
    hours = ((e["began_at"] - e["awol_start"]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
    n_neg = int((hours < 0).sum())
    hours = hours[hours >= 0]
    nh = len(hours)
    prop("share_within_48h", int((hours <= 48).sum()), nh)
    prop("share_within_7d", int((hours <= 168).sum()), nh)
    mlo, mhi = _median_ci(hours, level)
    rows.append({"measure": "median_hours_to_onset",
                 "estimate": float(np.median(hours)) if nh else np.nan, "ci_lower": mlo,
                 "ci_upper": mhi, "numerator": np.nan, "denominator": float(nh),
                 "method": "order-statistic (binomial) CI"})
    notes = []
    if n_neg:
        notes.append(f"{n_neg} episode(s) begin before their AWOL spell started and were left out "
                     "of the timing measures (check the data).")
    cox = None
    rf = recurrent_frame(cd, start=w_start, end=w_end, censor_age=censor_age,
                         confirmed_only=confirmed_only)
    sub = rf[(rf["awol"] == 1) | (rf["in_placement"] == 1)]
    covs = ["awol"] + [c for c in adjust if c in sub.columns]
    sub = sub.dropna(subset=covs)
    covs = ["awol"] + [c for c in covs[1:] if sub[c].nunique() > 1]
    n_aw = int(sub.loc[sub["awol"] == 1, "event"].sum())
    n_pl = int(sub.loc[sub["in_placement"] == 1, "event"].sum())
    hr_row = {"measure": "hazard_ratio_awol_vs_placement", "estimate": np.nan,
              "ci_lower": np.nan, "ci_upper": np.nan, "numerator": float(n_aw),
              "denominator": float(n_pl),
              "method": "Andersen-Gill Cox, time-varying AWOL, robust SE (events AWOL / placed)"}
    if n_aw >= min_events and n_pl >= min_events:
        cox = fit_cox(sub, "stop", "event", covs, entry="start", cluster="child_id",
                      level=level)
        s = cox.summary.loc["awol"]
        hr_row.update(estimate=s["hazard_ratio"], ci_lower=s["ci_lower"], ci_upper=s["ci_upper"])
    else:
        notes.append(f"Too few repeat episodes to estimate the AWOL hazard ratio ({n_aw} while "
                     f"AWOL, {n_pl} while placed; need {min_events} of each).")
    rows.append(hr_row)
    summary = pd.DataFrame(rows).set_index("measure")
    return AwolTimingResult(summary=summary, hours=np.sort(hours), cox=cox, note=" ".join(notes))
