"""Cox proportional hazards: the engine (Newton-Raphson, Breslow or Efron ties, strata,
delayed entry).

Why the engine is written here rather than taken from a library: the analyses need counting-process
rows with delayed entry *and* per-child robust (sandwich) standard errors. statsmodels' ``PHReg``
counts a row whose entry time equals the event time as at risk (R's ``survival`` and this engine
use ``start < t <= stop``) and returns NaN robust standard errors when ``entry`` is given;
lifelines' robust standard errors ignore delayed entry. The results here reproduce
``survival::coxph`` (see the tests on ``bladder2``) and agree with lifelines and statsmodels where
those are correct.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from dmst_eval.errors import InputError, require_columns

from ._util import _bad_rows, _numeric

__all__ = ['fit_cox', 'CoxResult']


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
        w = np.asfortranarray(w)                         # contiguous columns for bincount
        out = np.empty((m, w.shape[1]))
        for j in range(w.shape[1]):
            out[:, j] = self.risk_sum(w[:, j])
        return out

    def risk_sum_rows(self, wT: np.ndarray) -> np.ndarray:
        """Risk-set sums of each row of ``wT`` (p, n) -> (m, p)."""
        out = np.empty((self.n_times, wT.shape[0]))
        for j in range(wT.shape[0]):
            out[:, j] = self.risk_sum(wT[j])
        return out

    def by_time_rows(self, wT: np.ndarray) -> np.ndarray:
        """Per-event-time sums of each row of ``wT`` (p, n_events) -> (m, p)."""
        out = np.empty((self.n_times, wT.shape[0]))
        for j in range(wT.shape[0]):
            out[:, j] = np.bincount(self.k, wT[j], minlength=self.n_times)
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
        w = np.asfortranarray(w)                         # contiguous columns for bincount
        out = np.empty((m, w.shape[1]))
        for j in range(w.shape[1]):
            out[:, j] = np.bincount(self.k, w[:, j], minlength=m)
        return out


def _design(cd: _CoxData, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-fit constants of ``X``: its transpose (contiguous rows for bincount), the event
    rows' transpose and the sum of the event rows (cached on ``cd`` for the Newton loop)."""
    c = getattr(cd, "_design_cache", None)
    if c is None or c[0] is not X:
        XT = np.ascontiguousarray(X.T)
        XerT = np.ascontiguousarray(XT[:, cd.ev_rows])
        c = (X, XT, XerT, XerT.sum(axis=1))
        cd._design_cache = c
    return c[1], c[2], c[3]


def _cox_pieces(cd: _CoxData, X: np.ndarray, beta: np.ndarray, efron: bool,
                need_info: bool = True) -> dict:
    """Log partial likelihood, score and information at ``beta`` (X already centred).

    Efron's tie correction works per tie group: the ``d`` events at one time share the risk-set
    sums ``S0, S1`` and the sums over the tied events ``A0, A1``; event ``r = 0..d-1`` of the
    group uses ``den = S0 - (r/d) A0`` and ``xbar = (S1 - (r/d) A1) / den``. Every sum over the
    events of a vector or matrix is therefore a per-time combination of ``S1`` and ``A1`` with
    per-time sums of ``1/den``, ``f/den``, ``1/den^2``, ``f/den^2``, ``f^2/den^2`` (``f = r/d``):
    only scalars are computed per event, never an events-by-covariates array. Breslow is the
    case ``f = 0``. The per-event means (Schoenfeld residuals, score residuals) come from
    :func:`_event_xbar` once the fit has converged.
    """
    XT, XerT, xer_sum = _design(cd, X)
    eta = X @ beta
    c = eta.max() if len(eta) else 0.0
    r = np.exp(eta - c)
    rXT = XT * r                                          # p x n
    S0 = cd.risk_sum(r)
    S1 = cd.risk_sum_rows(rXT)                            # m x p
    er, k = cd.ev_rows, cd.k
    if efron:
        f = cd.rank / cd.d[k]
        rer = r[er]
        A0 = cd.by_time(rer)
        A1 = cd.by_time_rows(XerT * rer)                  # m x p
        den = S0[k] - f * A0[k]
    else:
        f = np.zeros(len(er))
        A1 = None
        den = S0[k]
    inv = 1.0 / den
    a = cd.by_time(inv)                                   # per time: sum of 1/den
    sum_xbar = S1.T @ a
    if efron:
        b = cd.by_time(f * inv)                           # per time: sum of f/den
        sum_xbar -= A1.T @ b
    loglik = float(eta[er].sum() - len(er) * c - np.log(den).sum())
    out = dict(r=r, den=den, f=f, loglik=loglik, score=xer_sum - sum_xbar, S0=S0, S1=S1, A1=A1)
    if need_info:
        w = r * cd.range_sum(a)
        inv2 = inv * inv
        c0 = cd.by_time(inv2)
        xx = S1.T @ (S1 * c0[:, None])                     # sum over events of xbar xbar'
        if efron:
            w[er] -= rer * b[k]
            c1 = cd.by_time(f * inv2)
            c2 = cd.by_time(f * f * inv2)
            cross = S1.T @ (A1 * c1[:, None])
            xx += A1.T @ (A1 * c2[:, None]) - cross - cross.T
        out["info"] = (XT * w) @ X - xx
    return out


def _event_xbar(cd: _CoxData, pieces: dict) -> np.ndarray:
    """Weighted covariate mean of each event's risk set (n_events x p, Efron-adjusted)."""
    k = cd.k
    num = pieces["S1"][k]
    if pieces["A1"] is not None:
        num = num - pieces["f"][:, None] * pieces["A1"][k]
    return num / pieces["den"][:, None]


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
        # halve the step only when the log-likelihood really falls: a change below the
        # rounding of a sum of n terms (1e-12 relative) is noise, not a worse fit
        slack = 1e-12 * max(1.0, abs(cur["loglik"]))
        while (not np.isfinite(new["loglik"]) or new["loglik"] < cur["loglik"] - slack) \
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
    r, den, f = pieces["r"], pieces["den"], pieces["f"]
    xbar = pieces["xbar"] if "xbar" in pieces else _event_xbar(cd, pieces)
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


def _weighted_info(cd: _CoxData, X: np.ndarray, pieces: dict, efron: bool,
                   gw: np.ndarray) -> np.ndarray:
    """Sum over events of ``gw_e`` times event e's information contribution (p x p).

    With ``gw = 1`` this is the observed information of :func:`_cox_pieces`; with ``gw = g(t)``
    and ``g(t)**2`` it gives the cross and time-by-time blocks of the information of the model
    extended by ``g(t) X`` (the proportional-hazards score test).
    """
    r, den, f = pieces["r"], pieces["den"], pieces["f"]
    xbar = pieces["xbar"] if "xbar" in pieces else _event_xbar(cd, pieces)
    er = cd.ev_rows
    w = r * cd.range_sum(cd.by_time(gw / den))
    if efron:
        w[er] -= r[er] * cd.by_time(gw * f / den)[cd.k]
    return (X * w[:, None]).T @ X - (xbar * gw[:, None]).T @ xbar


def _ph_table(chi: np.ndarray, chi_glob: float, terms: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({"chi2": chi, "df": 1.0, "p_value": stats.chi2.sf(chi, 1)}, index=terms)
    out.loc["GLOBAL"] = [chi_glob, float(len(terms)), stats.chi2.sf(chi_glob, len(terms))]
    out.index.name = "term"
    return out


def _schoenfeld_test(cd: _CoxData, X: np.ndarray, pieces: dict, var: np.ndarray,
                     terms: list[str], transform: str = "km", method: str = "score",
                     efron: bool = True) -> pd.DataFrame:
    """Test of proportional hazards (Grambsch & Therneau 1994) for each term and globally.

    ``method="score"`` (default) is the test of R ``survival`` >= 3.0 ``cox.zph``: a score test,
    at (beta_hat, 0), of adding ``g(t) * x_j`` to the model, using the full information matrix
    of the extended model (so it accounts for the covariance between the terms).
    ``method="approx"`` is the survival 2.x approximation that ``cox.zph`` used before 3.0 (and
    lifelines' ``proportional_hazard_test`` uses): scaled Schoenfeld residuals with the
    information replaced by its average, ``d * var``. The two can differ noticeably when the
    covariates' variance changes over time (e.g. Rossi, age: about 6 against 11).
    """
    er = cd.ev_rows
    d = len(er)
    if d < 3:
        return pd.DataFrame(columns=["chi2", "df", "p_value"])
    if method not in ("score", "approx"):
        raise InputError(f"ph_method={method!r}", expected="'score' (R survival >= 3.0 "
                         "cox.zph) or 'approx' (survival 2.x)")
    xbar = pieces["xbar"] if "xbar" in pieces else _event_xbar(cd, pieces)
    mean_xbar = cd.by_time(xbar) / cd.d[:, None]
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
        raise InputError(
            f"transform={transform!r}; expected 'km', 'rank', 'log' or 'identity'")
    gc = g - g.mean()                                    # centred over the events, as R does
    sgg = float(gc @ gc)
    if sgg <= 0:
        return pd.DataFrame(columns=["chi2", "df", "p_value"])
    if method == "approx":
        test = d * (gc @ sch @ var)                      # 1 x p
        chi_each = test**2 / (np.diag(var) * d * sgg)
        chi_glob = float(test @ np.linalg.solve(var, test) / (d * sgg))
        return _ph_table(chi_each, chi_glob, terms)
    p = X.shape[1]
    u = np.concatenate([np.zeros(p), gc @ sch])         # score at (beta_hat, 0)
    imat = np.empty((2 * p, 2 * p))
    imat[:p, :p] = _weighted_info(cd, X, pieces, efron, np.ones(d))
    imat[:p, p:] = _weighted_info(cd, X, pieces, efron, gc)
    imat[p:, :p] = imat[:p, p:].T
    imat[p:, p:] = _weighted_info(cd, X, pieces, efron, gc * gc)
    chi_each = np.empty(p)
    for j in range(p):
        kk = np.r_[np.arange(p), p + j]
        chi_each[j] = float(u[kk] @ np.linalg.solve(imat[np.ix_(kk, kk)], u[kk]))
    chi_glob = float(u @ np.linalg.solve(imat, u))
    return _ph_table(chi_each, chi_glob, terms)


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
        Test of proportional hazards per term and GLOBAL (chi2, df, p_value): by default the
        score test of R ``survival`` >= 3.0 ``cox.zph`` (``ph_method="approx"``: the survival
        2.x scaled-Schoenfeld approximation).
    loglik, loglik_null : float
        Log partial likelihood at the estimate and at beta = 0.
    baseline_hazard_ : DataFrame
        Columns ``stratum``, ``time``, ``hazard``: the *increments* of the baseline cumulative
        hazard at each event time (one row per stratum and event time), for covariates at their
        means in the rows used. Breslow's estimator ``d / sum exp(eta)``; for Efron fits the
        Efron-adjusted increment ``sum_{r<d} 1 / (S0 - (r/d) A0)`` over the ``d`` tied events
        (as R's ``survfit.coxph``). The cumulative hazard is
        ``baseline_hazard_.groupby("stratum")["hazard"].cumsum()``.
    score_residuals_ : ndarray
        Lin-Wei score residuals, one row per row used (computed on first use).
    n_rows, n_events, n_clusters : int
    """

    summary: pd.DataFrame
    params_: pd.Series
    var_: np.ndarray
    naive_var_: np.ndarray
    loglik: float
    loglik_null: float
    n_rows: int
    n_events: int
    n_clusters: int | None
    ties: str
    method: str
    n_iter: int
    level: float = 0.95
    baseline_hazard_: pd.DataFrame | None = field(default=None, repr=False)
    warnings: list = field(default_factory=list)
    # ph_test and score_residuals_ are computed on first use (most fits never need them):
    # name -> value, or a function that computes it
    _lazy: dict = field(default_factory=dict, repr=False)

    def _get(self, name: str):
        v = self._lazy.get(name)
        if callable(v):
            v = self._lazy[name] = v()
        return v

    @property
    def ph_test(self) -> pd.DataFrame:
        """Test of proportional hazards per term and GLOBAL (computed on first use)."""
        return self._get("ph_test")

    @property
    def score_residuals_(self) -> np.ndarray:
        """Lin-Wei score residuals per row used (n_rows x p; computed on first use)."""
        return self._get("score_residuals_")

    def __getstate__(self):
        # a result that crosses processes carries values, never the functions behind them
        state = dict(self.__dict__)
        state["_lazy"] = {k: self._get(k) for k in self._lazy}
        return state

    @property
    def n_obs(self) -> int:
        """Sample size: rows used (the library-wide name; ``n_rows`` is kept)."""
        return self.n_rows

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
        from dmst_eval import plots as _plots
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(self.summary)))
        s = self.summary.iloc[::-1]
        y = np.arange(len(s))
        ax.errorbar(s["hazard_ratio"], y,
                    xerr=[s["hazard_ratio"] - s["ci_lower"], s["ci_upper"] - s["hazard_ratio"]],
                    fmt="o", color=_plots.OKABE_ITO["blue"], ecolor=_plots.OKABE_ITO["blue"],
                    capsize=3)
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
            missing: str = "raise", ph_transform: str = "km", ph_method: str = "score",
            max_iter: int = 50, robust: bool | None = None) -> CoxResult:
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
    ph_method : {"score", "approx"}
        The proportional-hazards test. ``"score"`` (default) is R ``survival`` >= 3.0
        ``cox.zph``: a score test of adding ``g(t) * x`` to the model with the full information
        matrix. ``"approx"`` is the survival 2.x (and lifelines) approximation from scaled
        Schoenfeld residuals with the information replaced by its average; kept for comparison
        with older results.
    max_iter : int
        Newton-Raphson iterations.
    robust : bool, optional
        Robust (sandwich) standard errors. Default: with ``cluster``. ``robust=True`` without
        ``cluster`` treats every row as its own unit (R's ``coxph(robust=TRUE)``); no dummy id
        column is needed. ``robust=False`` keeps the model-based errors even with ``cluster``.

    Returns
    -------
    CoxResult
        ``.summary`` indexed by term with coef, se, naive_se, robust_se (if clustered),
        hazard_ratio, ci_lower, ci_upper, z, p_value; ``.ph_test``; ``.plot()``.

    Raises
    ------
    InputError
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
    if ph_transform not in ("km", "rank", "log", "identity"):
        raise InputError(f"ph_transform={ph_transform!r}",
                         expected="'km', 'rank', 'log' or 'identity'")
    if ph_method not in ("score", "approx"):
        raise InputError(f"ph_method={ph_method!r}",
                         expected="'score' (R survival >= 3.0 cox.zph) or 'approx' (survival 2.x)")
    if ties not in ("efron", "breslow"):
        raise InputError(f"ties={ties!r}; expected 'efron' or 'breslow'")
    if missing not in ("raise", "drop"):
        raise InputError(f"missing={missing!r}; expected 'raise' or 'drop'")
    covariates = list(covariates)
    if len(covariates) == 0:
        raise InputError("covariates: give at least one covariate column")
    strata_cols = [] if strata is None else ([strata] if isinstance(strata, str) else list(strata))
    need = [duration, event, *covariates, *strata_cols]
    if entry is not None:
        need.append(entry)
    if cluster is not None:
        need.append(cluster)
    require_columns(df, need)
    if len(set(covariates)) != len(covariates):
        raise InputError(f"covariates: duplicated names in {covariates}")

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
            raise InputError(
                f"df: {int(miss.sum())} row(s) have missing values in {cols} "
                f"(first rows {_bad_rows(miss, df.index)}); expected complete data, or pass "
                "missing='drop' to analyse complete cases")
    keep = ~miss
    stop = data[duration][keep]
    ev = data[event][keep]
    start = data[entry][keep] if entry else np.full(len(stop), -np.inf)
    if not np.isin(ev, (0, 1)).all():
        bad = ~np.isin(data[event], (0, 1)) & keep
        raise InputError(
            f"df: column {event!r} must be 0/1; rows {_bad_rows(bad, df.index)} are not")
    if entry is not None and np.any(stop <= start):
        bad = np.zeros(len(df), bool)
        bad[np.flatnonzero(keep)[stop <= start]] = True
        raise InputError(
            f"df: {int(bad.sum())} row(s) have {duration!r} <= {entry!r} (rows "
            f"{_bad_rows(bad, df.index)}); expected intervals (entry, duration] of positive length")
    if ev.sum() == 0:
        raise InputError(f"df: no events in column {event!r}; a Cox model needs events")
    if entry is None:
        # left end below every time: use a finite sentinel so np.unique works
        start = np.full(len(stop), np.min(stop) - 1.0)
    X = np.column_stack([data[c][keep] for c in covariates])
    const = np.ptp(X, axis=0) == 0
    if const.any():
        raise InputError(
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
        raise InputError(
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
    n_clusters = None
    robust_var = None
    resid = None
    if robust is None:
        robust = cluster is not None
    if robust:
        pieces["xbar"] = _event_xbar(cdat, pieces)
        resid = _score_residuals(cdat, X, pieces, efron)
        dfbeta = resid @ naive_var
        if cluster is not None:
            codes, uniq = pd.factorize(df.loc[keep, cluster], sort=False)
            n_clusters = len(uniq)
            grouped = np.column_stack([np.bincount(codes, dfbeta[:, j], minlength=n_clusters)
                                       for j in range(dfbeta.shape[1])])
        else:                                            # every row its own unit
            n_clusters = len(dfbeta)
            grouped = dfbeta
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

    def ph():
        return _schoenfeld_test(cdat, X, pieces, naive_var, covariates, ph_transform,
                                ph_method, efron)

    def score_resid():
        return _score_residuals(cdat, X, pieces, efron)
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
                     loglik=pieces["loglik"] + 0.0, loglik_null=ll0,
                     n_rows=int(keep.sum()), n_events=int(ev.sum()), n_clusters=n_clusters,
                     ties=ties, method=method, n_iter=n_iter, level=level,
                     baseline_hazard_=bh, warnings=warn,
                     _lazy={"ph_test": ph, "score_residuals_": score_resid if resid is None
                            else resid})
