"""Screening-tool evaluation: sensitivity and specificity, ROC with DeLong intervals,
calibration, point scores."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from dmst_eval.errors import InputError, require_columns
from dmst_eval.intervals import wilson_ci

from ._util import WISER_LIKE_WEIGHTS
from .._compat import from_alpha, renamed_kwargs
from .logistic import _numeric_copy

__all__ = [
    'screening_performance', 'roc_auc', 'ROCResult', 'calibration', 'CalibrationResult',
    'points_score', 'wiser_like_score',
]


# ============================================================================================
# 3. Screening-tool evaluation
# ============================================================================================


def _binary(y: Any, name: str = "y_true") -> np.ndarray:
    a = pd.Series(y)
    if str(a.dtype) == "boolean" or a.dtype == bool:
        a = a.astype("boolean")
        if a.isna().any():
            raise InputError(f"{name} has {int(a.isna().sum())} missing values")
        return a.to_numpy(dtype=int)
    v = pd.to_numeric(a, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        raise InputError(f"{name} must be 0/1 or boolean; positions "
                            f"{list(np.flatnonzero(bad)[:10])} are not")
    return v.astype(int)


def _scores(s: Any, n: int, name: str = "score") -> np.ndarray:
    v = pd.to_numeric(pd.Series(s), errors="coerce").to_numpy(dtype=float)
    if len(v) != n:
        raise InputError(f"{name} has {len(v)} values but y_true has {n}")
    if np.isnan(v).any():
        raise InputError(f"{name} has missing/non-numeric values at positions "
                            f"{list(np.flatnonzero(np.isnan(v))[:10])}")
    return v


@renamed_kwargs(alpha=("level", from_alpha))
def screening_performance(y_true: Any, score: Any, thresholds: Any,
                          level: float = 0.95) -> pd.DataFrame:
    """Accuracy of "flag if score ≥ threshold" at each threshold.

    Parameters
    ----------
    y_true : array-like of 0/1
        1 = the child was (later) identified as a victim.
    score : array-like
        Screening score (points, predicted probability...).
    thresholds : scalar or array-like
        Cut-offs; a child is flagged when ``score >= threshold``.

    Returns
    -------
    DataFrame
        One row per threshold: threshold, tp, fp, fn, tn, flagged (share flagged),
        sensitivity, specificity, ppv, npv (each with ``_lower``/``_upper`` Wilson score CIs),
        lr_pos, lr_neg (with CIs by the log method of Simel, Samsa & Matchar 1991; when a cell
        is zero, 0.5 is added to every cell for the CI only).

    Notes
    -----
    PPV and NPV depend on how common the outcome is in the data at hand; sensitivity,
    specificity and likelihood ratios travel better between settings.

    Examples
    --------
    >>> from dmst_eval import risk
    >>> t = risk.screening_performance([1, 1, 1, 0, 0, 0, 0], [30, 25, 10, 22, 5, 0, 0], [20])
    >>> t[["tp", "fp", "fn", "tn"]].iloc[0].tolist()
    [2, 1, 1, 3]
    """
    y = _binary(y_true)
    s = _scores(score, len(y))
    th = np.atleast_1d(np.asarray(thresholds, dtype=float))
    pos = np.sort(s[y == 1])
    neg = np.sort(s[y == 0])
    n1, n0 = len(pos), len(neg)
    tp = n1 - np.searchsorted(pos, th, side="left")
    fp = n0 - np.searchsorted(neg, th, side="left")
    fn = n1 - tp
    tn = n0 - fp
    out = pd.DataFrame({"threshold": th, "tp": tp, "fp": fp, "fn": fn, "tn": tn})
    out["flagged"] = (tp + fp) / (n1 + n0)
    z = float(stats.norm.ppf(0.5 + level / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, k, n in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                           ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
            lo, hi = wilson_ci(k, n, level)
            out[name] = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
            out[f"{name}_lower"], out[f"{name}_upper"] = lo, hi
        sens, spec = out["sensitivity"].to_numpy(), out["specificity"].to_numpy()
        out["lr_pos"] = sens / (1 - spec)
        out["lr_neg"] = (1 - sens) / spec
        zero = (tp == 0) | (fp == 0) | (fn == 0) | (tn == 0)
        c = np.where(zero, 0.5, 0.0)
        a_, b_, c_, d_ = tp + c, fp + c, fn + c, tn + c
        lrp = (a_ / (a_ + c_)) / (b_ / (b_ + d_))
        lrn = (c_ / (a_ + c_)) / (d_ / (b_ + d_))
        se_p = np.sqrt(1 / a_ - 1 / (a_ + c_) + 1 / b_ - 1 / (b_ + d_))
        se_n = np.sqrt(1 / c_ - 1 / (a_ + c_) + 1 / d_ - 1 / (b_ + d_))
        out["lr_pos_lower"] = np.exp(np.log(lrp) - z * se_p)
        out["lr_pos_upper"] = np.exp(np.log(lrp) + z * se_p)
        out["lr_neg_lower"] = np.exp(np.log(lrn) - z * se_n)
        out["lr_neg_upper"] = np.exp(np.log(lrn) + z * se_n)
    if n1 == 0 or n0 == 0:
        warnings.warn(f"y_true has {n1} positives and {n0} negatives: sensitivity or "
                      "specificity is undefined", UserWarning, stacklevel=2)
    return out


# ------------------------------------------------------------------------------- DeLong
def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def _delong_components(y: np.ndarray, s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    tz = _midrank(np.concatenate([pos, neg]))
    tx, ty = _midrank(pos), _midrank(neg)
    v10 = (tz[:m] - tx) / n          # per positive: share of negatives scored lower (ties 1/2)
    v01 = 1.0 - (tz[m:] - ty) / m    # per negative: share of positives scored higher
    return float(v10.mean()), v10, v01


@dataclass
class ROCResult:
    """Area under the ROC curve with a DeLong confidence interval."""

    auc: float
    se: float
    ci_lower: float
    ci_upper: float
    n_pos: int
    n_neg: int
    curve: pd.DataFrame = field(repr=False)

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"auc": self.auc, "se": self.se, "ci_lower": self.ci_lower,
                              "ci_upper": self.ci_upper, "n_pos": self.n_pos,
                              "n_neg": self.n_neg, "ci_method": "DeLong"}])

    def plot(self, ax: Any = None, label: str | None = None):
        """ROC curve (sensitivity against 1 - specificity); returns the Axes."""
        from dmst_eval import plots as _plots
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 5))
        lab = label or f"AUC {self.auc:.3f} ({self.ci_lower:.3f}–{self.ci_upper:.3f})"
        ax.plot(1 - self.curve["specificity"], self.curve["sensitivity"], lw=2, label=lab,
                drawstyle="steps-post")
        ax.plot([0, 1], [0, 1], ls="--", color=_plots.REFERENCE_COLOR, lw=1)
        ax.set_xlabel("1 − specificity (share of non-victims flagged)")
        ax.set_ylabel("Sensitivity (share of victims flagged)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right")
        return ax


@renamed_kwargs(alpha=("level", from_alpha))
def roc_auc(y_true: Any, score: Any, level: float = 0.95) -> ROCResult:
    """ROC AUC with the DeLong et al. (1988) variance (fast midrank algorithm, Sun & Xu 2014).

    AUC is the probability that a randomly chosen victim scores higher than a randomly chosen
    non-victim (ties count one half), i.e. the Mann--Whitney U statistic divided by
    ``n_pos * n_neg``. The CI is AUC ± z·SE, clipped to [0, 1].

    Examples
    --------
    >>> from dmst_eval import risk
    >>> r = risk.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> r.auc
    0.75
    """
    y = _binary(y_true)
    s = _scores(score, len(y))
    m, n = int(y.sum()), int((1 - y).sum())
    if m < 2 or n < 2:
        raise InputError(f"ROC AUC needs at least 2 positives and 2 negatives; got {m} and {n}")
    auc, v10, v01 = _delong_components(y, s)
    var = v10.var(ddof=1) / m + v01.var(ddof=1) / n
    se = float(np.sqrt(var))
    z = float(stats.norm.ppf(0.5 + level / 2))
    th = np.unique(s)[::-1]
    curve = screening_performance(y, s, np.concatenate([[np.inf], th]))[
        ["threshold", "sensitivity", "specificity"]]
    return ROCResult(auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se), m, n, curve)


# --------------------------------------------------------------------------- calibration
@dataclass
class CalibrationResult:
    """Observed against predicted risk (see :func:`calibration`)."""

    table: pd.DataFrame
    slope: float
    slope_ci: tuple[float, float]
    intercept: float
    intercept_ci: tuple[float, float]
    n: int
    events: int

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([
            {"measure": "calibration_slope", "estimate": self.slope,
             "ci_lower": self.slope_ci[0], "ci_upper": self.slope_ci[1], "ideal": 1.0},
            {"measure": "calibration_intercept", "estimate": self.intercept,
             "ci_lower": self.intercept_ci[0], "ci_upper": self.intercept_ci[1], "ideal": 0.0},
        ])

    def plot(self, ax: Any = None):
        """Observed share (Wilson CI) against mean predicted risk per group; returns the Axes."""
        from dmst_eval import plots as _plots
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 5))
        t = self.table
        ax.errorbar(t["mean_predicted"], t["observed"],
                    yerr=[t["observed"] - t["ci_lower"], t["ci_upper"] - t["observed"]],
                    fmt="o", capsize=3, label="observed (95% CI)")
        top = float(max(t["ci_upper"].max(), t["mean_predicted"].max())) * 1.05
        ax.plot([0, top], [0, top], ls="--", color=_plots.REFERENCE_COLOR, lw=1,
                label="perfect calibration")
        ax.set_xlabel("Mean predicted risk")
        ax.set_ylabel("Observed share identified")
        ax.set_title(f"Calibration slope {self.slope:.2f}, intercept {self.intercept:.2f}")
        ax.legend(loc="upper left")
        return ax


@renamed_kwargs(alpha=("level", from_alpha))
def calibration(y_true: Any, p: Any, bins: int = 10,
                level: float = 0.95) -> CalibrationResult:
    """Calibration of predicted probabilities: by groups of predicted risk, slope and intercept.

    Parameters
    ----------
    y_true : array-like of 0/1
    p : array-like of probabilities in (0, 1)
    bins : int
        Number of quantile groups (deciles by default; fewer when predictions tie).

    Returns
    -------
    CalibrationResult
        ``table`` (bin, n, events, mean_predicted, observed, Wilson ci_lower/ci_upper),
        ``slope`` -- coefficient of logit(p) in a logistic regression of y on logit(p) (1 is
        ideal; below 1 means predictions too extreme, as after over-fitting), ``intercept`` --
        calibration-in-the-large, the intercept of a logistic regression of y with logit(p) as
        offset (0 is ideal; above 0 means risk under-predicted overall); both with Wald CIs.

    Examples
    --------
    >>> import numpy as np
    >>> from dmst_eval import risk
    >>> rng = np.random.default_rng(3)
    >>> p = rng.uniform(0.01, 0.5, 20000)
    >>> c = risk.calibration(rng.random(20000) < p, p)
    >>> abs(c.slope - 1) < 0.1 and abs(c.intercept) < 0.1
    True
    """
    import statsmodels.api as sm

    y = _binary(y_true)
    pr = _scores(p, len(y), "p")
    if (pr <= 0).any() or (pr >= 1).any():
        raise InputError("predicted probabilities must lie strictly between 0 and 1")
    lp = special.logit(pr)
    grp = pd.qcut(pd.Series(pr).rank(method="first"), bins, labels=False)
    d = pd.DataFrame({"bin": grp.to_numpy() + 1, "y": y, "p": pr})
    t = d.groupby("bin").agg(n=("y", "size"), events=("y", "sum"), mean_predicted=("p", "mean"))
    t["observed"] = t["events"] / t["n"]
    t["ci_lower"], t["ci_upper"] = wilson_ci(t["events"], t["n"], level)
    t = t.reset_index()
    z = float(stats.norm.ppf(0.5 + level / 2))
    if y.sum() in (0, len(y)):
        raise InputError(f"calibration needs both outcomes; y_true has {int(y.sum())} events "
                            f"among {len(y)}")
    slope_fit = sm.Logit(y, sm.add_constant(lp)).fit(disp=0, method="newton", maxiter=100)
    b, se = float(slope_fit.params[1]), float(slope_fit.bse[1])
    # calibration-in-the-large: the intercept a solving sum(expit(lp + a)) = sum(y) (the
    # maximum-likelihood estimate with logit(p) as offset), Wald SE from its information
    a = float(optimize.brentq(lambda v: special.expit(lp + v).sum() - y.sum(), -50, 50,
                              xtol=1e-10))
    pa = special.expit(lp + a)
    sea = float(1 / np.sqrt(np.sum(pa * (1 - pa))))
    return CalibrationResult(t, b, (b - z * se, b + z * se), a, (a - z * sea, a + z * sea),
                             len(y), int(y.sum()))


# ----------------------------------------------------------------------------- points
def points_score(df: pd.DataFrame, weights: Mapping[str, float],
                 missing: str = "raise") -> pd.Series:
    """Apply a points rule: the sum of ``weights[col]`` over the items ``col`` a child has.

    Parameters
    ----------
    df : DataFrame
        One row per child with 0/1 or boolean item columns.
    weights : mapping
        Item column -> points (e.g. :data:`WISER_LIKE_WEIGHTS`).
    missing : {"raise", "zero", "nan"}
        What to do with an unknown item: raise (default), score it as absent, or make the
        child's score NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> from dmst_eval import risk
    >>> df = pd.DataFrame({"a": [1, 0, 1], "b": [True, True, False]})
    >>> risk.points_score(df, {"a": 40, "b": 7}).tolist()
    [47.0, 7.0, 40.0]
    """
    if not weights:
        raise InputError("weights is empty")
    require_columns(df, list(weights), table="df",
                    expected="a column for every item of the points rule")
    if missing not in ("raise", "zero", "nan"):
        raise InputError(f"missing must be 'raise', 'zero' or 'nan', got {missing!r}")
    total = np.zeros(len(df))
    anyna = np.zeros(len(df), dtype=bool)
    for col, pts in weights.items():
        v = _numeric_copy(df[col], col)
        v = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
        na = np.isnan(v)
        bad = ~na & ~np.isin(v, (0.0, 1.0))
        if bad.any():
            raise InputError(f"item {col!r} must be 0/1 or boolean; rows "
                                f"{list(df.index[bad][:10])} are not")
        if na.any() and missing == "raise":
            raise InputError(f"item {col!r} is missing in {int(na.sum())} rows (e.g. "
                                f"{list(df.index[na][:5])}); pass missing='zero' or 'nan'")
        anyna |= na
        total += float(pts) * np.nan_to_num(v, nan=0.0)
    if missing == "nan":
        total[anyna] = np.nan
    return pd.Series(total, index=df.index, name="score")


def wiser_like_score(df: pd.DataFrame) -> pd.Series:
    """The WISER-like score (:data:`WISER_LIKE_WEIGHTS`) of a :func:`screening_features` frame."""
    return points_score(df, WISER_LIKE_WEIGHTS).rename("wiser_like")
