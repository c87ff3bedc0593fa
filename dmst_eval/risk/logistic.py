"""Risk-factor models: logistic regression (maximum likelihood or Firth) with odds ratios."""
from __future__ import annotations

from dataclasses import dataclass, field
import functools
import keyword
import math
import re
from typing import Any, Mapping, Sequence
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from dmst_eval.errors import InputError, require_columns

from ._util import SeparationWarning
from .._compat import from_alpha, renamed_kwargs

__all__ = ['fit_risk_model', 'RiskModelResult']


# ============================================================================================
# 2. Models
# ============================================================================================
def _columns_used(df: pd.DataFrame, predictors: Sequence[str]) -> list[str]:
    names: list[str] = []
    for term in predictors:
        if term in df.columns:
            names.append(term)
            continue
        for tok in re.findall(r"[A-Za-z_][A-Za-z0-9_\.]*", term):
            if tok in df.columns and tok not in names:
                names.append(tok)
    return list(dict.fromkeys(names))


def _numeric_copy(s: pd.Series, name: str) -> pd.Series:
    """Booleans (incl. nullable) -> float 0/1 with NaN; numbers -> float; others untouched."""
    if pd.api.types.is_bool_dtype(s) or str(s.dtype) == "boolean":
        return s.astype("boolean").astype("Float64").astype(float)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("Float64").astype(float) if str(s.dtype)[0].isupper() else s.astype(float)
    return s


@dataclass
class _Design:
    y: np.ndarray
    X: np.ndarray
    names: list[str]
    design_info: Any
    groups: np.ndarray | None
    columns: list
    n_dropped: int
    dropped_by: dict[str, int]
    used_index: pd.Index


def _build_design(df: pd.DataFrame, outcome: str, predictors: Sequence[str],
                  cluster: str | None, missing: str) -> _Design:
    import patsy

    if not isinstance(df, pd.DataFrame):
        raise InputError("df must be a pandas DataFrame")
    if isinstance(predictors, str):
        predictors = [predictors]
    predictors = list(predictors)
    if not predictors:
        raise InputError("give at least one predictor")
    # plain column names are checked here (terms with functions are left to patsy)
    require_columns(df, [outcome, *[p for p in predictors if p.isidentifier()], cluster])
    used = _columns_used(df, predictors)
    if not used:
        raise InputError(f"none of the predictors {predictors} names a column of the frame")
    if cluster is not None and cluster not in df.columns:
        raise InputError(f"cluster column {cluster!r} not in the frame")
    cols = [outcome, *used] + ([cluster] if cluster and cluster not in used else [])
    sub = pd.DataFrame({c: _numeric_copy(df[c], c) for c in cols}, index=df.index)
    na = sub.isna()
    dropped_by = {c: int(na[c].sum()) for c in cols if na[c].any()}
    complete = ~na.any(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    if n_dropped and missing == "raise":
        raise InputError(f"{n_dropped} rows have missing values (by column: {dropped_by}); "
                            "pass missing='drop' for a complete-case analysis")
    if missing not in ("drop", "raise"):
        raise InputError(f"missing must be 'drop' or 'raise', got {missing!r}")
    sub = sub[complete]
    yv = sub[outcome]
    if not pd.api.types.is_numeric_dtype(yv):
        raise InputError(f"outcome {outcome!r} must be 0/1 or boolean, got dtype {yv.dtype}")
    y = yv.to_numpy(dtype=float)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise InputError(f"outcome {outcome!r} must be 0/1; rows "
                            f"{list(sub.index[bad][:10])} have other values")
    if len(y) == 0:
        raise InputError("no complete rows left to fit")
    if y.min() == y.max():
        raise InputError(f"outcome {outcome!r} has only one value ({int(y[0])}) among the "
                            f"{len(y)} complete rows: nothing to model")
    groups = None
    if cluster is not None:
        groups = pd.factorize(df.loc[sub.index, cluster])[0]
    if _plain_terms(sub, predictors):
        # every term is a numeric column: the design matrix is [1, columns] (what patsy builds,
        # without its ~15 ms of formula machinery per call)
        X = np.empty((len(sub), len(predictors) + 1))
        X[:, 0] = 1.0
        for j, c in enumerate(predictors, start=1):
            X[:, j] = sub[c].to_numpy()
        return _Design(y, X, ["intercept", *predictors], _plain_design_info(tuple(predictors)),
                       groups, used, n_dropped, dropped_by, sub.index)
    rhs = " + ".join(predictors)
    try:
        X = patsy.dmatrix(rhs, sub, return_type="dataframe", NA_action="raise")
    except Exception as exc:  # patsy errors are hard to read: restate
        raise InputError(f"could not build the model terms {predictors!r}: {exc}") from exc
    names = ["intercept" if n == "Intercept" else n for n in X.columns]
    return _Design(y, X.to_numpy(dtype=float), names, X.design_info, groups, used, n_dropped,
                   dropped_by, sub.index)


def _plain_terms(sub: pd.DataFrame, predictors: list[str]) -> bool:
    """True when each predictor is a distinct float column named by a plain identifier, so that
    patsy would give it one column of its values (and the intercept a column of ones)."""
    return (len(set(predictors)) == len(predictors)
            and all(p.isidentifier() and not keyword.iskeyword(p) and p != "Intercept"
                    and p in sub.columns and sub[p].dtype == np.float64 for p in predictors))


@functools.lru_cache(maxsize=32)
def _plain_design_info(predictors: tuple[str, ...]):
    """patsy's DesignInfo for an intercept and numeric columns (it depends on the names only);
    :meth:`RiskModelResult.predict` builds new design matrices with it."""
    import patsy

    demo = pd.DataFrame({p: [0.0, 1.0] for p in predictors})
    return patsy.dmatrix(" + ".join(predictors), demo, NA_action="raise").design_info


# ---------------------------------------------------------------------------------- Firth
def _log_expit(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p and log(1 - p) for p = expit(eta), stable (log(1 - p) = log p - eta).

    ``log p = min(eta, 0) - log1p(exp(-|eta|))``: what ``-np.logaddexp(0, -eta)`` computes,
    with the same rounding, in a third of its time."""
    lp = np.minimum(eta, 0.0) - np.log1p(np.exp(-np.abs(eta)))
    return lp, lp - eta


def _firth_state(X: np.ndarray, y: np.ndarray, beta: np.ndarray):
    eta = X @ beta
    lp, lq = _log_expit(eta)
    p = np.exp(lp)
    w = p * (1.0 - p)
    info = (X * w[:, None]).T @ X
    sign, logdet = np.linalg.slogdet(info)
    if sign <= 0:
        return -np.inf, None, None, None
    loglik = float(y @ lp + (1.0 - y) @ lq)
    pen = loglik + 0.5 * logdet
    return pen, p, w, info


def _firth_newton(X: np.ndarray, y: np.ndarray, beta0: np.ndarray, free: np.ndarray,
                  maxiter: int = 200, tol: float = 1e-8, max_step: float = 5.0,
                  max_halving: int = 30) -> tuple[np.ndarray, float, bool, int]:
    """Maximise the Firth-penalised log likelihood over ``beta[free]``; other entries fixed."""
    beta = beta0.astype(float).copy()
    pen, p, w, info = _firth_state(X, y, beta)
    if p is None:
        raise np.linalg.LinAlgError("singular information matrix at the start values")
    converged = False
    it = 0
    for it in range(1, maxiter + 1):
        inv = np.linalg.inv(info)
        # leverages h_i = w_i x_i' I^{-1} x_i (einsum: row sums of few columns, fast)
        h = w * np.einsum("ij,ij->i", X @ inv, X)
        score = X.T @ (y - p + h * (0.5 - p))
        sf = score[free]
        delta_f = np.linalg.solve(info[np.ix_(free, free)], sf)
        mx = np.max(np.abs(delta_f)) if delta_f.size else 0.0
        if mx > max_step:
            delta_f *= max_step / mx
        if delta_f.size == 0 or mx < tol:
            converged = True
            break
        step = 1.0
        for _ in range(max_halving):
            cand = beta.copy()
            cand[free] += step * delta_f
            c_pen, c_p, c_w, c_info = _firth_state(X, y, cand)
            if c_p is not None and c_pen >= pen - 1e-12:
                break
            step *= 0.5
        else:
            break
        beta, pen, p, w, info = cand, c_pen, c_p, c_w, c_info
        if step * mx < tol:
            converged = True
            break
    return beta, pen, converged, it


def _single_blas_thread():
    """Context limiting BLAS to one thread: the many small (n x p) products of the Firth fits
    are several times slower multi-threaded on a busy machine."""
    try:
        return _threadpool_controller().limit(limits=1, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl missing
        import contextlib
        return contextlib.nullcontext()


@functools.lru_cache(maxsize=1)
def _threadpool_controller():
    """One ThreadpoolController per process: building it scans the loaded libraries (~20 ms),
    and the BLAS numpy uses is loaded with numpy, before any fit."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _firth_fit(X: np.ndarray, y: np.ndarray, ci: bool = True, alpha: float = 0.05,
               beta0: np.ndarray | None = None) -> dict[str, Any]:
    with _single_blas_thread():
        return _firth_fit_impl(X, y, ci, alpha, beta0)


def _firth_fit_impl(X: np.ndarray, y: np.ndarray, ci: bool, alpha: float,
                    beta0: np.ndarray | None) -> dict[str, Any]:
    k = X.shape[1]
    free = np.ones(k, dtype=bool)
    b0 = np.zeros(k) if beta0 is None else beta0
    beta, pen, conv, nit = _firth_newton(X, y, b0, free)
    _, p, w, info = _firth_state(X, y, beta)
    cov = np.linalg.inv(info)
    se = np.sqrt(np.diag(cov))
    q = float(stats.chi2.ppf(1 - alpha, 1))
    lower = np.full(k, np.nan)
    upper = np.full(k, np.nan)
    pvals = np.full(k, np.nan)

    def profile(j: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        fr = free.copy()
        fr[j] = False
        b = start.copy()
        b[j] = value
        bb, pp, _, _ = _firth_newton(X, y, b, fr)
        return pp, bb

    for j in range(k if ci else 0):
        # penalised likelihood ratio test of beta_j = 0
        p0, _ = profile(j, 0.0, beta)
        pvals[j] = float(stats.chi2.sf(max(2.0 * (pen - p0), 0.0), 1))
        warm = {"b": beta.copy()}
        zc = math.sqrt(q)

        def h(v: float, j: int = j) -> float:
            # signed root of the penalised likelihood-ratio statistic, minus its critical value:
            # nearly linear in v, so the bracketing and Brent steps below need few evaluations
            pp, bb = profile(j, v, warm["b"])
            warm["b"] = bb
            return math.sqrt(max(2.0 * (pen - pp), 0.0)) - zc

        for side, arr in ((-1, lower), (1, upper)):
            warm["b"] = beta.copy()
            a, ha = beta[j], -zc
            b_ = beta[j] + side * zc * max(se[j], 1e-3)  # the Wald limit as first guess
            bnd = np.nan
            for _ in range(60):
                hb = h(b_)
                if hb > 0:
                    bnd = optimize.brentq(h, min(a, b_), max(a, b_), xtol=1e-7)
                    break
                slope = (hb - ha) / (b_ - a)
                a, ha = b_, hb
                if slope * side > 1e-12:
                    step = -1.25 * hb / slope + side * 1e-4
                else:  # flat profile: widen geometrically
                    step = side * 2.0 * max(abs(b_ - beta[j]), 1e-3)
                b_ = a + step
            arr[j] = bnd
    return {"params": beta, "bse": se, "cov": cov, "ci_lower": lower, "ci_upper": upper,
            "pvalues": pvals, "penalized_loglik": pen, "converged": conv, "n_iter": nit}


# --------------------------------------------------------------------------- separation
def _separation_terms(X: np.ndarray, y: np.ndarray, names: list[str],
                      params: np.ndarray | None, bse: np.ndarray | None) -> list[str]:
    """Terms implicated in (quasi-)complete separation.

    A 0/1 column whose level 1 (or 0) holds only events or only non-events separates the outcome;
    a maximum-likelihood coefficient beyond 10 log-odds per standard deviation of the term, or a
    standard error beyond 50 per standard deviation, is the numerical symptom of the same thing.
    """
    hits: list[str] = []
    XT = np.ascontiguousarray(X.T)  # the columns as contiguous rows: the 0/1 checks run faster
    for j, name in enumerate(names):
        if name == "intercept":
            continue
        col = X[:, j]
        head = XT[j, : min(len(col), 200000)]
        if ((head == 0.0) | (head == 1.0)).all():  # a 0/1 column
            on = XT[j] == 1.0
            n1, e1 = int(on.sum()), float(y[on].sum())
            n0, e0 = int((~on).sum()), float(y[~on].sum())
            if n1 and n0 and (e1 in (0, n1) or e0 in (0, n0)):
                hits.append(name)
                continue
        sd = float(np.std(col[: min(len(col), 200000)])) or 1.0  # per-SD scale of the term
        if params is not None and np.isfinite(params[j]) and abs(params[j]) * sd > 10:
            hits.append(name)
        elif bse is not None and (not np.isfinite(bse[j]) or bse[j] * sd > 50):
            hits.append(name)
    return hits


# ------------------------------------------------------------------------------ results
_LABELS: dict[str, tuple[str, str]] = {
    # term: (exposed group, comparison group)
    "male": ("Boys", "girls"),
    "prior_sexual_abuse": ("Children with a history of sexual abuse",
                           "children without one"),
    "prior_runaway": ("Children who had run away before", "children who had not"),
    "substance_use": ("Children with known substance use", "children without"),
    "juvenile_justice": ("Children involved with juvenile justice", "children who were not"),
    "lgbtq": ("LGBTQ+ children", "children not identified as LGBTQ+"),
    "congregate_before": ("Children who had been placed in congregate care",
                          "children who had not"),
    "awol_before": ("Children who had run from placement (AWOL)", "children who had not"),
    "runaway_past_year_under15": ("Children under 15 who had run in the past year",
                                  "children who had not"),
    "runaway_past_year_15plus": ("Children aged 15+ who had run in the past year",
                                 "children who had not"),
    "first_placement_congregate": ("Children whose first placement was congregate care",
                                   "children whose first placement was a family setting"),
    "first_placement_age15plus": ("Children first placed at age 15 or older",
                                  "children first placed younger"),
    "residential_facility": ("Children who had been in a residential facility",
                             "children who had not"),
}
_NOUNS: dict[str, str] = {
    "male": "being a boy",
    "prior_sexual_abuse": "a history of sexual abuse",
    "prior_runaway": "having run away before",
    "substance_use": "known substance use",
    "juvenile_justice": "juvenile-justice involvement",
    "lgbtq": "identifying as LGBTQ+",
    "congregate_before": "congregate care",
    "awol_before": "running from placement",
    "age_at_start": "age",
}


_REFERENCE: dict[str, str] = {
    "male": "girls",
    "prior_sexual_abuse": "children without a history of sexual abuse",
    "prior_runaway": "children who had not run away",
    "substance_use": "children without known substance use",
    "juvenile_justice": "children not involved with juvenile justice",
    "lgbtq": "children not identified as LGBTQ+",
    "congregate_before": "children never placed in congregate care",
    "awol_before": "children who had not run from placement",
}


def _noun(term: str) -> str:
    return _NOUNS.get(term, term)


def _ref(term: str) -> str:
    return _REFERENCE.get(term, f"children without {term}")


_CONTINUOUS: dict[str, str] = {"age_at_start": "each additional year of age when the child "
                                               "came into view (window start or entry to care)"}


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "∞" if x > 0 else "n/a"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}" if x < 20 else f"{x:.0f}"
    if x >= 0.1:
        return f"{x:.2f}" if x < 1 else f"{x:.1f}"
    return f"{x:.2g}"


@dataclass
class RiskModelResult:
    """A fitted risk model (see :func:`fit_risk_model`).

    Attributes
    ----------
    odds_ratios : DataFrame
        term, odds_ratio, ci_lower, ci_upper, p_value (intercept first: its "odds ratio" is the
        baseline odds).
    summary : DataFrame
        Same rows plus coef and se (log-odds scale) and the CI method.
    params_, bse_ : Series
        Coefficients and standard errors on the log-odds scale, indexed by term.
    n_obs, n_events, n_dropped : int
        Rows used, events among them, rows dropped for missing values (``dropped_by`` per column).
    method : str
        ``"logit"`` or ``"firth"``; ``ci_method`` names how the CIs were computed.
    separation : list of str
        Terms implicated in separation (empty if none was detected).
    """

    method: str
    outcome: str
    predictors: list[str]
    params_: pd.Series
    bse_: pd.Series
    odds_ratios: pd.DataFrame
    n_obs: int
    n_events: int
    n_dropped: int
    dropped_by: dict[str, int]
    cluster: str | None
    ci_method: str
    converged: bool
    separation: list[str]
    cov_: pd.DataFrame
    design_info_: Any = field(repr=False, default=None)
    result_: Any = field(repr=False, default=None)
    columns_: list = field(repr=False, default_factory=list)

    @property
    def summary(self) -> pd.DataFrame:
        s = self.odds_ratios.copy()
        s.insert(1, "coef", self.params_.to_numpy())
        s.insert(2, "se", self.bse_.to_numpy())
        s["ci_method"] = self.ci_method
        s.attrs.update(n_obs=self.n_obs, n_events=self.n_events, n_dropped=self.n_dropped,
                       method=self.method)
        return s

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"RiskModelResult(method={self.method!r}, outcome={self.outcome!r}, "
                f"n_obs={self.n_obs}, "
                f"n_events={self.n_events}, n_dropped={self.n_dropped}, "
                f"terms={list(self.params_.index)})")

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """Predicted probability of the outcome for each row of ``df`` (NaN where inputs miss)."""
        import patsy

        need = [c for c in self.columns_ if c != self.outcome and c != self.cluster]
        miss = [c for c in need if c not in df.columns]
        if miss:
            raise InputError(f"predict: the frame lacks column(s) {miss} used by the model")
        sub = pd.DataFrame({c: _numeric_copy(df[c], c) for c in need}, index=df.index)
        ok = ~sub.isna().any(axis=1).to_numpy()
        out = pd.Series(np.nan, index=df.index, name="predicted")
        if not ok.any():
            return out
        try:
            (X,) = patsy.build_design_matrices([self.design_info_], sub[ok],
                                               return_type="dataframe")
        except Exception as exc:
            raise InputError(f"cannot build the model terms from this frame (needs {need}): "
                                f"{exc}") from exc
        out[ok] = special.expit(X.to_numpy(float) @ self.params_.to_numpy())
        return out

    def plot(self, ax: Any = None, include_intercept: bool = False,
             labels: Mapping[str, str] | None = None):
        """Forest plot of odds ratios with 95% CIs on a log scale; returns the Axes.

        Infinite or extreme limits (separation under ``method="logit"``) are drawn cut at
        1/1000 and 1000.
        """
        from dmst_eval import plots as _plots

        d = self.odds_ratios
        if not include_intercept:
            d = d[d["term"] != "intercept"]
        d = d.assign(
            term=[dict(labels or {}).get(t, t) for t in d["term"]],
            odds_ratio=np.clip(d["odds_ratio"].to_numpy(float), 1e-3, 1e3),
            ci_lower=np.clip(d["ci_lower"].to_numpy(float), 1e-3, 1e3),
            ci_upper=np.clip(d["ci_upper"].to_numpy(float), 1e-3, 1e3))
        rob = ", cluster-robust" if self.cluster else ""
        return _plots.forest_plot(
            d, ax=ax, log=True, null=1.0,
            xlabel=f"Odds ratio, 95% CI (log scale; {self.method}{rob})",
            title=f"{self.outcome}: {self.n_events:,} events among {self.n_obs:,} children")

    def sentences(self, outcome_phrase: str = "being identified as victims of sex trafficking",
                  labels: Mapping[str, tuple[str, str]] | None = None) -> list[str]:
        """One plain-language sentence per term (intercept excluded), for briefs.

        ``labels`` maps a term to (exposed group, comparison group) to override the defaults.
        """
        lab = {**_LABELS, **(labels or {})}
        out: list[str] = []
        for r in self.odds_ratios.itertuples(index=False):
            if r.term == "intercept":
                continue
            ci = f"(95% CI {_fmt(r.ci_lower)}–{_fmt(r.ci_upper)})"
            orr = _fmt(r.odds_ratio)
            includes_one = r.ci_lower <= 1 <= r.ci_upper
            tail = (" The interval includes 1, so the data are also consistent with no "
                    "difference." if includes_one else "")
            if ":" in r.term:
                parts = r.term.split(":")
                if len(parts) == 2 and parts[0] in lab:
                    grp, comp = lab[parts[0]]
                    first = f"For {grp[0].lower() + grp[1:]}"
                    what, other = _noun(parts[1]), comp
                else:
                    first, what, other = (f"When {parts[0]} is present", _noun(parts[-1]),
                                          f"when {parts[0]} is absent")
                out.append(f"{first}, the odds ratio for {what} was {orr} times {ci} as large "
                           f"as for {other} (an interaction: the link between {what} and "
                           f"{outcome_phrase} differs between the groups).{tail}")
                continue
            if r.term in _CONTINUOUS:
                out.append(f"For {_CONTINUOUS[r.term]}, the odds of {outcome_phrase} were "
                           f"multiplied by {orr} {ci}.{tail}")
                continue
            exposed, comp = lab.get(r.term, (f"Children with {r.term}", "children without"))
            if r.odds_ratio >= 1:
                phr = f"had {orr} times the odds {ci} of {outcome_phrase}"
            else:
                pct = 100 * (1 - r.odds_ratio)
                phr = (f"had {orr} times the odds {ci} -- about {pct:.0f}% lower odds -- of "
                       f"{outcome_phrase}")
            partners = [t.split(":")[1 - t.split(":").index(r.term)]
                        for t in self.odds_ratios["term"]
                        if ":" in t and len(t.split(":")) == 2 and r.term in t.split(":")]
            qual = (f" (This is for {' and '.join(_ref(x) for x in partners)}; the interaction "
                    "below gives the difference for the others.)" if partners else "")
            out.append(f"{exposed} {phr} compared with {comp}, taking the other factors in the "
                       f"model into account.{qual}{tail}")
        if self.n_dropped:
            out.append(f"{self.n_dropped} children with missing information were left out "
                       f"(complete-case analysis; {self.n_obs} analysed).")
        return out


@renamed_kwargs(alpha=("level", from_alpha))
def fit_risk_model(df: pd.DataFrame, outcome: str, predictors: Sequence[str],
                   cluster: str | None = None, method: str = "logit", missing: str = "raise",
                   level: float = 0.95, pl: bool = True) -> RiskModelResult:
    """Logistic regression of a binary outcome on risk factors, reported as odds ratios.

    Parameters
    ----------
    df : DataFrame
        One row per child (e.g. :func:`analysis_frame`).
    outcome : str
        0/1 (or boolean) outcome column.
    predictors : list of str
        Column names or formula terms (``"male:prior_sexual_abuse"``, ``"C(region)"``).
        Boolean columns (including nullable ``boolean``) enter as 0/1.
    cluster : str, optional
        Column defining clusters (facility, town) for cluster-robust (sandwich) standard errors.
        Only with ``method="logit"``.
    method : {"logit", "firth"}
        ``"logit"``: maximum likelihood (statsmodels), Wald CIs and p-values.
        ``"firth"``: Firth's penalised likelihood (Heinze & Schemper 2002), profile penalised
        likelihood CIs and penalised likelihood-ratio p-values -- use it when events are few or
        a factor (almost) perfectly predicts the outcome.
    missing : {"raise", "drop"}
        A row with a missing value raises an error naming the column and rows (default, as
        everywhere in dmst-eval), or ``"drop"``: complete-case analysis, the number of dropped
        rows in ``n_dropped`` and reported by :meth:`RiskModelResult.sentences`.
    level : float
        Confidence level of the intervals (default 0.95; ``alpha=`` is its deprecated old name).
    pl : bool
        Firth only: profile penalised-likelihood CIs and penalised LR p-values (default, as
        recommended by Heinze & Schemper 2002); ``False`` gives Wald CIs and p-values from the
        penalised information matrix -- much faster on large data, less accurate when events
        are few.

    Returns
    -------
    RiskModelResult

    Warns
    -----
    SeparationWarning
        With ``method="logit"`` when (quasi-)complete separation is detected: the ML estimates
        of the named terms are not finite; refit with ``method="firth"``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from dmst_eval import risk
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"male": rng.integers(0, 2, 3000),
    ...                    "prior_runaway": rng.integers(0, 2, 3000)})
    >>> eta = -3 + 1.0 * df.prior_runaway - 0.5 * df.male
    >>> df["victim"] = (rng.random(3000) < 1 / (1 + np.exp(-eta))).astype(int)
    >>> m = risk.fit_risk_model(df, "victim", ["male", "prior_runaway"], method="firth")
    >>> list(m.odds_ratios.columns)
    ['term', 'odds_ratio', 'ci_lower', 'ci_upper', 'p_value']
    """
    with _single_blas_thread():
        return _fit_risk_model(df, outcome, predictors, cluster, method, missing, 1 - level, pl)


def _fit_risk_model(df, outcome, predictors, cluster, method, missing, alpha,
                    pl=True) -> RiskModelResult:
    if method not in ("logit", "firth"):
        raise InputError(f"method must be 'logit' or 'firth', got {method!r}")
    if cluster is not None and method == "firth":
        raise InputError("cluster-robust errors are available with method='logit' only")
    d = _build_design(df, outcome, predictors, cluster, missing)
    X, y, names = d.X, d.y, d.names
    if np.linalg.matrix_rank(X[: min(len(X), 200000)]) < X.shape[1]:
        raise InputError(f"the model terms {names} are collinear (a column is constant or a "
                            "combination of others) among the complete rows")
    z = float(stats.norm.ppf(1 - alpha / 2))
    result = None
    if method == "logit":
        import statsmodels.api as sm
        from statsmodels.tools.sm_exceptions import (ConvergenceWarning,
                                                     PerfectSeparationWarning)

        model = sm.Logit(y, X)
        fit_kw: dict[str, Any] = {"disp": 0, "method": "newton", "maxiter": 100}
        if cluster is not None:
            fit_kw.update(cov_type="cluster", cov_kwds={"groups": d.groups})
        sm_sep = sm_nonconv = False
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            try:
                result = model.fit(**fit_kw)
            except Exception as exc:  # PerfectSeparationError in older statsmodels, LinAlg
                if "separation" in str(exc).lower() or isinstance(exc, np.linalg.LinAlgError):
                    sm_sep = True
                    result = None
                else:
                    raise
        for w in rec:
            if issubclass(w.category, PerfectSeparationWarning):
                sm_sep = True
            elif issubclass(w.category, ConvergenceWarning):
                sm_nonconv = True
        if result is None:
            params = np.full(X.shape[1], np.nan)
            bse = np.full(X.shape[1], np.nan)
            cov = np.full((X.shape[1],) * 2, np.nan)
            pvals = np.full(X.shape[1], np.nan)
            converged = False
        else:
            params = np.asarray(result.params, float)
            with np.errstate(all="ignore"):
                bse = np.asarray(result.bse, float)
                cov = np.asarray(result.cov_params(), float)
                pvals = np.asarray(result.pvalues, float)
            converged = bool(result.mle_retvals.get("converged", True))
        lo, hi = params - z * bse, params + z * bse
        sep = _separation_terms(X, y, names, params, bse)
        if (sm_sep or (sm_nonconv and not converged)) and not sep:
            sep = ["(model)"]
        if sep:
            warnings.warn(
                f"Separation: {', '.join(sep)} (almost) perfectly predict(s) {outcome!r} among the "
                f"{len(y)} complete rows, so maximum-likelihood odds ratios are infinite or "
                "unreliable and their CIs meaningless. Refit with method='firth' "
                "(penalised likelihood), or combine/drop the sparse category.",
                SeparationWarning, stacklevel=4)
        ci_method = ("Wald, cluster-robust (sandwich) by " + cluster) if cluster else "Wald"
    else:
        f = _firth_fit_impl(X, y, pl, alpha, None)
        params, bse, cov = f["params"], f["bse"], f["cov"]
        if pl:
            lo, hi, pvals = f["ci_lower"], f["ci_upper"], f["pvalues"]
            ci_method = "profile penalised likelihood (Firth); p: penalised LR test"
        else:
            lo, hi = params - z * bse, params + z * bse
            pvals = 2 * stats.norm.sf(np.abs(params / bse))
            ci_method = "Wald from the penalised information (Firth)"
        converged = f["converged"]
        sep = _separation_terms(X, y, names, None, None)
        result = f
    with np.errstate(over="ignore"):
        ors = pd.DataFrame({
            "term": names,
            "odds_ratio": np.exp(params),
            "ci_lower": np.exp(lo),
            "ci_upper": np.exp(hi),
            "p_value": pvals,
        })
    return RiskModelResult(
        method=method, outcome=outcome, predictors=list(predictors),
        params_=pd.Series(params, index=names, name="coef"),
        bse_=pd.Series(bse, index=names, name="se"), odds_ratios=ors,
        n_obs=len(y), n_events=int(y.sum()), n_dropped=d.n_dropped, dropped_by=d.dropped_by,
        cluster=cluster, ci_method=ci_method, converged=converged, separation=sep,
        cov_=pd.DataFrame(cov, index=names, columns=names), design_info_=d.design_info,
        result_=result, columns_=list(d.columns))
