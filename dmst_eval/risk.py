"""Risk-factor models and screening-tool evaluation.

Researchers and agencies ask three questions of case data:

1. *Which experiences go with a higher chance of a child being identified as a victim of sex
   trafficking, and by how much?* -- :func:`analysis_frame` builds one row per child with the
   outcome and the covariates measured **before** it; :func:`fit_risk_model` fits a logistic
   regression (maximum likelihood, or Firth's penalised likelihood for rare events and
   separation) and reports odds ratios with 95% confidence intervals.
2. *How well would a screening rule pick out the children who are later identified?* --
   :func:`points_score` applies a points rule, :func:`screening_performance` gives sensitivity,
   specificity, predictive values and likelihood ratios per cut-off, :func:`roc_auc` the area
   under the ROC curve (DeLong CI) and :func:`calibration` compares predicted with observed risk.
3. *What would a WISER-like rule look like here?* -- :func:`screening_features` derives the
   placement-history items of the Welfare-Involved Female Sexual Exploitation Risk Assessment
   (Prakash et al. 2024) that a child-welfare extract can support, :data:`WISER_LIKE_WEIGHTS`
   and :data:`WISER_LIKE_CUTOFF` are the points and cut-off.

Odds ratios describe association in observational data, not cause: a child who has been in
congregate care differs in many ways from one who has not.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from dmst_eval import risk
>>> rng = np.random.default_rng(1)
>>> df = pd.DataFrame({"prior_runaway": rng.integers(0, 2, 4000)})
>>> df["victim"] = rng.random(4000) < 1 / (1 + np.exp(-(-3 + 1.4 * df["prior_runaway"])))
>>> m = risk.fit_risk_model(df, "victim", ["prior_runaway"])
>>> round(float(m.odds_ratios.set_index("term").loc["prior_runaway", "odds_ratio"]), 1)
4.4
"""
from __future__ import annotations

import functools
import keyword
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from dmst_eval.intervals import wilson_ci  # noqa: F401  (re-exported)
import pandas as pd
from scipy import optimize, special, stats

from . import schema

__all__ = [
    "RiskDataError",
    "SeparationWarning",
    "analysis_frame",
    "screening_features",
    "fit_risk_model",
    "RiskModel",
    "screening_performance",
    "roc_auc",
    "ROCResult",
    "calibration",
    "CalibrationResult",
    "points_score",
    "wiser_like_score",
    "wilson_ci",
    "COVARIATES",
    "WISER_LIKE_WEIGHTS",
    "WISER_LIKE_CUTOFF",
    "WISER_PUBLISHED",
]

#: Covariate names of the analysis frame (shared with the generator's ``truth["risk"]``).
COVARIATES: tuple[str, ...] = (
    "male", "age_at_start", "prior_sexual_abuse", "prior_runaway", "substance_use",
    "juvenile_justice", "lgbtq", "congregate_before", "awol_before",
)

#: Points of the WISER-like rule (the five WISER items a placement extract supports).
WISER_LIKE_WEIGHTS: dict[str, float] = {
    "runaway_past_year_under15": 40,
    "runaway_past_year_15plus": 16,
    "first_placement_congregate": 14,
    "first_placement_age15plus": 11,
    "residential_facility": 7,
}
#: Cut-off of the WISER-like rule: a score at or above it flags the child.
WISER_LIKE_CUTOFF: float = 20
#: Published validation of the full WISER tool (Prakash et al., J Womens Health 2024,
#: doi:10.1089/jwh.2024.0415): Florida child-welfare girls removed from home, 60 cases and
#: 3,857 controls, Cox model, ten items, cut-off 20.
WISER_PUBLISHED: dict[str, Any] = {
    "share_of_cases_above_cutoff": 0.92,
    "auc_validation": 0.923,
    "cases": 60,
    "controls": 3857,
    "population": "female child-welfare-involved youth removed from home (Florida)",
}

_Z95 = float(stats.norm.ppf(0.975))


class RiskDataError(ValueError):
    """Input data that the risk analyses cannot use (names the table/column/rows and the need)."""


class SeparationWarning(UserWarning):
    """Maximum-likelihood logistic regression met (quasi-)complete separation."""


# ============================================================================================
# 1. Analysis frame
# ============================================================================================
def _cd_table(cd: Any, name: str) -> pd.DataFrame:
    tables = getattr(cd, "tables", None)
    if isinstance(tables, Mapping) and name in tables:
        return tables[name]
    t = getattr(cd, name, None)
    if t is None:
        return schema.empty_frame(name)
    return t


def _require(df: pd.DataFrame, table: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise RiskDataError(f"table {table!r} lacks column(s) {missing}; expected the schema v1 "
                            f"columns {schema.TABLES[table].column_names}")


def _flag(s: pd.Series) -> pd.Series:
    """Nullable 0/1 float (NaN = unknown) from a boolean-like column."""
    if isinstance(s.dtype, pd.BooleanDtype):  # the same numbers without two conversions
        return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index, name=s.name)
    return s.astype("boolean").astype("Float64").astype(float)


def _dates(s: pd.Series) -> np.ndarray:
    """``pd.to_datetime(s).to_numpy()``; a column that already holds nanosecond datetimes is used
    as it is (``to_datetime`` would still look at every value)."""
    if s.dtype == "datetime64[ns]":
        return s.to_numpy()
    return pd.to_datetime(s).to_numpy()


def _str_codes(s: pd.Series, values: Sequence) -> np.ndarray:
    """Position in ``values`` of each element of ``s.astype(str)`` (-1 if absent); for a
    categorical column only its categories are converted."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = pd.Index(np.append(np.asarray(s.cat.categories.astype(str), dtype=object),
                                  "nan"))  # code -1 (missing) is str(nan) = "nan"
        return pd.Index(list(values)).get_indexer(cats)[s.cat.codes.to_numpy()]
    return pd.Index(list(values)).get_indexer(s.astype(str))


class _ChildEvents:
    """Dated events (placements, AWOL episodes) matched once to the children of the frame.

    ``first(rows)`` is the earliest date per child (NaT if none) over the events selected by
    ``rows`` -- what ``Series(dates, index=child ids).groupby(level=0).min().reindex(cid)``
    gives, without grouping on the ids for every selection.
    """

    def __init__(self, events: pd.DataFrame, cid: np.ndarray):
        self.dates = _dates(events["start"])
        # one factorisation of the children's ids and the events' ids: equal ids, equal codes
        codes, ids = pd.factorize(np.concatenate(
            [cid, events["child_id"].astype(str).to_numpy()]))
        self.child_code, self.codes = codes[:len(cid)], codes[len(cid):]
        self.n_ids = len(ids)

    def first(self, rows: np.ndarray | None = None) -> np.ndarray:
        from dmst_eval._grouped import first_datetime

        codes, dates = self.codes, self.dates
        if rows is not None:
            codes, dates = codes[rows], dates[rows]
        return first_datetime(codes, dates, self.n_ids)[self.child_code]


def _window(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        s, e = pd.Timestamp(start), pd.Timestamp(end)
    except (ValueError, TypeError) as exc:
        raise RiskDataError(f"start/end must be dates, got {start!r}, {end!r}") from exc
    if e < s:
        raise RiskDataError(f"window end {e.date()} is before start {s.date()}")
    return s, e


def analysis_frame(cd: Any, start: Any = None, end: Any = None,
                   population: str = "child_welfare", exclude_prior_victims: bool = True,
                   min_age: float | None = None, max_age: float = 18.0) -> pd.DataFrame:
    """One row per child: was the child identified as a victim in the window, and what came before.

    Parameters
    ----------
    cd : CaseData
        The bundle (``children``, ``episodes``, ``placements``, ``awol_episodes`` are used).
    start, end : date-like, optional
        The window (inclusive). Default: ``cd.meta["study_start"]`` / ``cd.meta["study_end"]``.
    population : {"child_welfare", "all"}
        ``"child_welfare"`` keeps children with ``child_welfare_involved`` true (the population
        a child-welfare screening tool would see); ``"all"`` keeps every child in ``children``.
    exclude_prior_victims : bool
        Drop children whose first confirmed episode was identified before ``start`` (they are
        known, not new, victims). Default True.
    min_age : float, optional
        Keep only children who reach this age (years) before ``end`` -- children too young to be
        at risk in the window add only noise. ``None`` (default) keeps all; a warning names how
        many victims a ``min_age`` drops.
    max_age : float
        Drop children already this old at ``start`` (not minors in the window) or born after
        ``end``.

    Returns
    -------
    DataFrame
        Columns ``child_id``, ``victim`` (1 = first confirmed episode identified in the window),
        ``outcome_date`` (its ``identified_at``; NaT otherwise), ``covariates_until`` (the date
        before which covariates are measured: the outcome date for victims, the window end for
        the others), ``male``, ``age_at_start`` (age in years at the *later* of the window start
        and the child's first out-of-home placement -- the age at which the agency's window on
        the child opens; children never placed: at the window start, 0 if born later), the five
        child flags ``prior_sexual_abuse``, ``prior_runaway``, ``substance_use``,
        ``juvenile_justice``, ``lgbtq`` (0/1, NaN = unknown), ``congregate_before`` (a congregate
        placement began strictly before ``covariates_until``), ``awol_before`` (an AWOL episode
        began strictly before it), ``home_town``, ``region``.

    Notes
    -----
    The child flags are recorded "before agency contact" in schema v1 and are therefore treated
    as baseline characteristics. Placement and AWOL history is time-dependent: only events that
    started strictly before the outcome date count, so a placement in congregate care *after*
    identification (a common response to it) does not inflate the congregate-care odds ratio.
    Placements and AWOL episodes before the window start count (they are history).
    Non-victims are followed to the window end, so their exposure window is longer; this is the
    usual cumulative-incidence design and matches how the generator plants the effects.

    Examples
    --------
    >>> from dmst_eval import risk
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(seed=1)
    >>> df = risk.analysis_frame(cd, "2008-01-01", "2011-12-31")
    >>> bool(df["victim"].sum() > 0) and df["child_id"].is_unique
    True
    """
    meta = getattr(cd, "meta", None) or {}
    start = meta.get("study_start", schema.DEFAULT_STUDY_START) if start is None else start
    if end is None:
        if "study_end" not in meta:
            raise RiskDataError("no window end given and cd.meta has no 'study_end'")
        end = meta["study_end"]
    s, e = _window(start, end)
    if population not in ("child_welfare", "all"):
        raise RiskDataError(f"population must be 'child_welfare' or 'all', got {population!r}")

    ch = _cd_table(cd, "children")
    _require(ch, "children", ["child_id", "sex", "birth_date", "home_town", "region",
                              "child_welfare_involved", *schema.RISK_FLAGS])
    ep = _cd_table(cd, "episodes")
    _require(ep, "episodes", ["child_id", "identified_at", "confirmed"])
    pl = _cd_table(cd, "placements")
    _require(pl, "placements", ["child_id", "setting", "start"])
    aw = _cd_table(cd, "awol_episodes")
    _require(aw, "awol_episodes", ["child_id", "start"])
    if ch["child_id"].isna().any() or ch["child_id"].duplicated().any():
        rows = list(ch.index[ch["child_id"].isna() | ch["child_id"].duplicated()][:10])
        raise RiskDataError(f"children.child_id must be unique and present; rows {rows} are not")
    if ch["birth_date"].isna().any():
        rows = list(ch.index[ch["birth_date"].isna()][:10])
        raise RiskDataError(f"children.birth_date is missing in rows {rows}")

    kids = ch
    if population == "child_welfare":
        cw = ch["child_welfare_involved"].astype("boolean")
        if cw.isna().any():
            rows = list(ch.index[cw.isna()][:10])
            raise RiskDataError(f"children.child_welfare_involved is missing in rows {rows}; "
                                "expected true/false for population='child_welfare'")
        kids = ch[cw.to_numpy(dtype=bool)]
    cid = kids["child_id"].astype(str).to_numpy()
    birth = _dates(kids["birth_date"])
    keep = ((s - pd.DatetimeIndex(birth)).days / 365.25 < max_age) & (birth <= e)

    # first confirmed identification per child (any time)
    conf = ep[ep["confirmed"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    first_id = pd.Series(pd.to_datetime(conf["identified_at"]).to_numpy(),
                         index=conf["child_id"].astype(str).to_numpy()).groupby(level=0).min()
    fid = first_id.reindex(cid)
    if exclude_prior_victims:
        keep &= ~(fid < s).to_numpy()
    in_window = ((fid >= s) & (fid <= e)).to_numpy()
    if min_age is not None:
        reach = birth + np.timedelta64(int(round(min_age * 365.25)), "D") <= e.to_datetime64()
        lost = int((keep & in_window & ~reach).sum())
        if lost:
            warnings.warn(f"min_age={min_age} drops {lost} victim(s) identified in the window "
                          "who had not reached that age by its end", UserWarning, stacklevel=2)
        keep &= reach
    kids, cid, birth, fid, in_window = (kids[keep], cid[keep], birth[keep], fid[keep],
                                        in_window[keep])
    outcome_date = fid.where(in_window)
    until = outcome_date.fillna(e)

    # age when the window on the child opens: later of window start and first placement
    placements = _ChildEvents(pl, cid)
    first_pl = placements.first()
    opens = np.where(pd.notna(first_pl) & (first_pl > s.to_datetime64()),
                     np.minimum(first_pl, e.to_datetime64()), s.to_datetime64())
    age_at_start = np.maximum((opens - birth) / np.timedelta64(1, "D") / 365.25, 0.0)

    out = pd.DataFrame({
        "child_id": cid,
        "victim": in_window.astype(int),
        "outcome_date": outcome_date.to_numpy(),
        "covariates_until": until.to_numpy(),
        "male": (_str_codes(kids["sex"], ["male"]) == 0).astype(int),
        "age_at_start": age_at_start.astype(float),
    })
    for f in schema.RISK_FLAGS:
        out[f] = _flag(kids[f]).to_numpy()
    cutoff = out["covariates_until"].to_numpy()

    def _any_before(events: _ChildEvents, rows: np.ndarray | None = None) -> np.ndarray:
        if (len(events.codes) if rows is None else rows.sum()) == 0:
            return np.zeros(len(out), dtype=int)
        first = events.first(rows)
        return (pd.notna(first) & (first < cutoff)).astype(int)

    out["congregate_before"] = _any_before(
        placements, _str_codes(pl["setting"], schema.CONGREGATE_SETTINGS) >= 0)
    out["awol_before"] = _any_before(_ChildEvents(aw, cid))
    out["home_town"] = kids["home_town"].astype("string").to_numpy()
    out["region"] = pd.Categorical.from_codes(_str_codes(kids["region"], schema.REGIONS),
                                              categories=schema.REGIONS)
    return out


def screening_features(cd: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the WISER-like items to an :func:`analysis_frame`, measured before ``covariates_until``.

    Items (each 0/1), all from ``placements`` and ``awol_episodes``:

    * ``runaway_past_year_under15`` / ``runaway_past_year_15plus`` -- an AWOL episode began in
      the 365 days before ``covariates_until`` and the child was under 15 / 15 or older at the
      *latest* such episode (WISER asks about running away from home in the past year; a
      placement extract records running from placement, which we use instead);
    * ``first_placement_congregate`` -- the child's first out-of-home placement (before
      ``covariates_until``) was a congregate setting;
    * ``first_placement_age15plus`` -- that first placement began at age 15 or older;
    * ``residential_facility`` -- any residential-treatment placement began before
      ``covariates_until``.

    Children never placed score 0 on the placement items.

    Examples
    --------
    >>> from dmst_eval import risk
    >>> from dmst_eval.synthetic import generate
    >>> cd = generate(seed=1)
    >>> df = risk.screening_features(cd, risk.analysis_frame(cd))
    >>> df["wiser_like"] = risk.wiser_like_score(df)
    >>> bool((df["wiser_like"] >= 0).all())
    True
    """
    for c in ("child_id", "covariates_until"):
        if c not in frame.columns:
            raise RiskDataError(f"frame lacks column {c!r}; pass the output of analysis_frame()")
    ch = _cd_table(cd, "children")
    pl = _cd_table(cd, "placements")
    aw = _cd_table(cd, "awol_episodes")
    _require(pl, "placements", ["child_id", "setting", "start"])
    _require(aw, "awol_episodes", ["child_id", "start"])
    out = frame.copy()
    cid = out["child_id"].astype(str)
    until = pd.to_datetime(out["covariates_until"])
    key = pd.DataFrame({"child_id": cid.to_numpy(), "_until": until.to_numpy(),
                        "_row": np.arange(len(out))})
    birth = pd.Series(pd.to_datetime(ch["birth_date"]).to_numpy(),
                      index=ch["child_id"].astype(str).to_numpy())
    key["_birth"] = birth.reindex(key["child_id"]).to_numpy()

    # AWOL in the past year before the cut-off; age at the latest one
    a = pd.DataFrame({"child_id": aw["child_id"].astype(str).to_numpy(),
                      "t": pd.to_datetime(aw["start"]).to_numpy()}).merge(key, on="child_id")
    a = a[(a["t"] < a["_until"]) & (a["t"] >= a["_until"] - pd.Timedelta(days=365))]
    last = a.groupby("_row").agg(t=("t", "max"), b=("_birth", "first"))
    age_last = (last["t"] - last["b"]).dt.days / 365.25
    u15 = np.zeros(len(out), dtype=int)
    o15 = np.zeros(len(out), dtype=int)
    u15[last.index[age_last < 15].to_numpy()] = 1
    o15[last.index[age_last >= 15].to_numpy()] = 1

    p = pd.DataFrame({"child_id": pl["child_id"].astype(str).to_numpy(),
                      "t": pd.to_datetime(pl["start"]).to_numpy(),
                      "setting": pl["setting"].astype(str).to_numpy()}).merge(key, on="child_id")
    p = p[p["t"] < p["_until"]]
    first = p.sort_values(["_row", "t"], kind="mergesort").groupby("_row").head(1)
    fcong = np.zeros(len(out), dtype=int)
    f15 = np.zeros(len(out), dtype=int)
    fcong[first.loc[first["setting"].isin(schema.CONGREGATE_SETTINGS), "_row"].to_numpy()] = 1
    age_first = (first["t"] - first["_birth"]).dt.days / 365.25
    f15[first.loc[(age_first >= 15).to_numpy(), "_row"].to_numpy()] = 1
    res = np.zeros(len(out), dtype=int)
    res[p.loc[p["setting"] == "residential_treatment", "_row"].unique()] = 1

    out["runaway_past_year_under15"] = u15
    out["runaway_past_year_15plus"] = o15
    out["first_placement_congregate"] = fcong
    out["first_placement_age15plus"] = f15
    out["residential_facility"] = res
    return out


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
        raise RiskDataError("df must be a pandas DataFrame")
    if isinstance(predictors, str):
        predictors = [predictors]
    predictors = list(predictors)
    if not predictors:
        raise RiskDataError("give at least one predictor")
    if outcome not in df.columns:
        raise RiskDataError(f"outcome column {outcome!r} not in the frame "
                            f"(columns: {list(df.columns)[:20]})")
    used = _columns_used(df, predictors)
    if not used:
        raise RiskDataError(f"none of the predictors {predictors} names a column of the frame")
    if cluster is not None and cluster not in df.columns:
        raise RiskDataError(f"cluster column {cluster!r} not in the frame")
    cols = [outcome, *used] + ([cluster] if cluster and cluster not in used else [])
    sub = pd.DataFrame({c: _numeric_copy(df[c], c) for c in cols}, index=df.index)
    na = sub.isna()
    dropped_by = {c: int(na[c].sum()) for c in cols if na[c].any()}
    complete = ~na.any(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    if n_dropped and missing == "raise":
        raise RiskDataError(f"{n_dropped} rows have missing values (by column: {dropped_by}); "
                            "pass missing='drop' for a complete-case analysis")
    if missing not in ("drop", "raise"):
        raise RiskDataError(f"missing must be 'drop' or 'raise', got {missing!r}")
    sub = sub[complete]
    yv = sub[outcome]
    if not pd.api.types.is_numeric_dtype(yv):
        raise RiskDataError(f"outcome {outcome!r} must be 0/1 or boolean, got dtype {yv.dtype}")
    y = yv.to_numpy(dtype=float)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise RiskDataError(f"outcome {outcome!r} must be 0/1; rows "
                            f"{list(sub.index[bad][:10])} have other values")
    if len(y) == 0:
        raise RiskDataError("no complete rows left to fit")
    if y.min() == y.max():
        raise RiskDataError(f"outcome {outcome!r} has only one value ({int(y[0])}) among the "
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
        raise RiskDataError(f"could not build the model terms {predictors!r}: {exc}") from exc
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
    :meth:`RiskModel.predict` builds new design matrices with it."""
    import patsy

    demo = pd.DataFrame({p: [0.0, 1.0] for p in predictors})
    return patsy.dmatrix(" + ".join(predictors), demo, NA_action="raise").design_info


# ---------------------------------------------------------------------------------- Firth
def _log_expit(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p and log(1 - p) for p = expit(eta), stable (log(1 - p) = log p - eta)."""
    lp = -np.logaddexp(0.0, -eta)
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
        # leverages h_i = w_i x_i' I^{-1} x_i
        h = w * np.sum((X @ inv) * X, axis=1)
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
    for j, name in enumerate(names):
        if name == "intercept":
            continue
        col = X[:, j]
        head = col[: min(len(col), 200000)]
        if ((head == 0.0) | (head == 1.0)).all():  # a 0/1 column
            on = col == 1.0
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
class RiskModel:
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
        return (f"RiskModel(method={self.method!r}, outcome={self.outcome!r}, n_obs={self.n_obs}, "
                f"n_events={self.n_events}, n_dropped={self.n_dropped}, "
                f"terms={list(self.params_.index)})")

    def predict(self, df: pd.DataFrame) -> pd.Series:
        """Predicted probability of the outcome for each row of ``df`` (NaN where inputs miss)."""
        import patsy

        need = [c for c in self.columns_ if c != self.outcome and c != self.cluster]
        miss = [c for c in need if c not in df.columns]
        if miss:
            raise RiskDataError(f"predict: the frame lacks column(s) {miss} used by the model")
        sub = pd.DataFrame({c: _numeric_copy(df[c], c) for c in need}, index=df.index)
        ok = ~sub.isna().any(axis=1).to_numpy()
        out = pd.Series(np.nan, index=df.index, name="predicted")
        if not ok.any():
            return out
        try:
            (X,) = patsy.build_design_matrices([self.design_info_], sub[ok],
                                               return_type="dataframe")
        except Exception as exc:
            raise RiskDataError(f"cannot build the model terms from this frame (needs {need}): "
                                f"{exc}") from exc
        out[ok] = special.expit(X.to_numpy(float) @ self.params_.to_numpy())
        return out

    def plot(self, ax: Any = None, include_intercept: bool = False,
             labels: Mapping[str, str] | None = None):
        """Forest plot of odds ratios with 95% CIs on a log scale; returns the Axes.

        Infinite or extreme limits (separation under ``method="logit"``) are drawn cut at
        1/1000 and 1000.
        """
        from . import plots as _plots

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


def fit_risk_model(df: pd.DataFrame, outcome: str, predictors: Sequence[str],
                   cluster: str | None = None, method: str = "logit", missing: str = "drop",
                   alpha: float = 0.05, pl: bool = True) -> RiskModel:
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
    missing : {"drop", "raise"}
        Complete-case analysis (default; the number of dropped rows is in ``n_dropped`` and
        reported by :meth:`RiskModel.sentences`) or an error.
    alpha : float
        1 - confidence level.
    pl : bool
        Firth only: profile penalised-likelihood CIs and penalised LR p-values (default, as
        recommended by Heinze & Schemper 2002); ``False`` gives Wald CIs and p-values from the
        penalised information matrix -- much faster on large data, less accurate when events
        are few.

    Returns
    -------
    RiskModel

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
        return _fit_risk_model(df, outcome, predictors, cluster, method, missing, alpha, pl)


def _fit_risk_model(df, outcome, predictors, cluster, method, missing, alpha,
                    pl=True) -> RiskModel:
    if method not in ("logit", "firth"):
        raise RiskDataError(f"method must be 'logit' or 'firth', got {method!r}")
    if cluster is not None and method == "firth":
        raise RiskDataError("cluster-robust errors are available with method='logit' only")
    d = _build_design(df, outcome, predictors, cluster, missing)
    X, y, names = d.X, d.y, d.names
    if np.linalg.matrix_rank(X[: min(len(X), 200000)]) < X.shape[1]:
        raise RiskDataError(f"the model terms {names} are collinear (a column is constant or a "
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
    return RiskModel(
        method=method, outcome=outcome, predictors=list(predictors),
        params_=pd.Series(params, index=names, name="coef"),
        bse_=pd.Series(bse, index=names, name="se"), odds_ratios=ors,
        n_obs=len(y), n_events=int(y.sum()), n_dropped=d.n_dropped, dropped_by=d.dropped_by,
        cluster=cluster, ci_method=ci_method, converged=converged, separation=sep,
        cov_=pd.DataFrame(cov, index=names, columns=names), design_info_=d.design_info,
        result_=result, columns_=list(d.columns))


# ============================================================================================
# 3. Screening-tool evaluation
# ============================================================================================


def _binary(y: Any, name: str = "y_true") -> np.ndarray:
    a = pd.Series(y)
    if str(a.dtype) == "boolean" or a.dtype == bool:
        a = a.astype("boolean")
        if a.isna().any():
            raise RiskDataError(f"{name} has {int(a.isna().sum())} missing values")
        return a.to_numpy(dtype=int)
    v = pd.to_numeric(a, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        raise RiskDataError(f"{name} must be 0/1 or boolean; positions "
                            f"{list(np.flatnonzero(bad)[:10])} are not")
    return v.astype(int)


def _scores(s: Any, n: int, name: str = "score") -> np.ndarray:
    v = pd.to_numeric(pd.Series(s), errors="coerce").to_numpy(dtype=float)
    if len(v) != n:
        raise RiskDataError(f"{name} has {len(v)} values but y_true has {n}")
    if np.isnan(v).any():
        raise RiskDataError(f"{name} has missing/non-numeric values at positions "
                            f"{list(np.flatnonzero(np.isnan(v))[:10])}")
    return v


def screening_performance(y_true: Any, score: Any, thresholds: Any,
                          alpha: float = 0.05) -> pd.DataFrame:
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
    z = float(stats.norm.ppf(1 - alpha / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, k, n in (("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp),
                           ("ppv", tp, tp + fp), ("npv", tn, tn + fn)):
            lo, hi = wilson_ci(k, n, 1 - alpha)
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
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 5))
        lab = label or f"AUC {self.auc:.3f} ({self.ci_lower:.3f}–{self.ci_upper:.3f})"
        ax.plot(1 - self.curve["specificity"], self.curve["sensitivity"], lw=2, label=lab,
                drawstyle="steps-post")
        ax.plot([0, 1], [0, 1], ls="--", color="#555555", lw=1)
        ax.set_xlabel("1 − specificity (share of non-victims flagged)")
        ax.set_ylabel("Sensitivity (share of victims flagged)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="lower right")
        return ax


def roc_auc(y_true: Any, score: Any, alpha: float = 0.05) -> ROCResult:
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
        raise RiskDataError(f"ROC AUC needs at least 2 positives and 2 negatives; got {m} and {n}")
    auc, v10, v01 = _delong_components(y, s)
    var = v10.var(ddof=1) / m + v01.var(ddof=1) / n
    se = float(np.sqrt(var))
    z = float(stats.norm.ppf(1 - alpha / 2))
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
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 5))
        t = self.table
        ax.errorbar(t["mean_predicted"], t["observed"],
                    yerr=[t["observed"] - t["ci_lower"], t["ci_upper"] - t["observed"]],
                    fmt="o", capsize=3, label="observed (95% CI)")
        top = float(max(t["ci_upper"].max(), t["mean_predicted"].max())) * 1.05
        ax.plot([0, top], [0, top], ls="--", color="#555555", lw=1, label="perfect calibration")
        ax.set_xlabel("Mean predicted risk")
        ax.set_ylabel("Observed share identified")
        ax.set_title(f"Calibration slope {self.slope:.2f}, intercept {self.intercept:.2f}")
        ax.legend(loc="upper left")
        return ax


def calibration(y_true: Any, p: Any, bins: int = 10, alpha: float = 0.05) -> CalibrationResult:
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
        raise RiskDataError("predicted probabilities must lie strictly between 0 and 1")
    lp = special.logit(pr)
    grp = pd.qcut(pd.Series(pr).rank(method="first"), bins, labels=False)
    d = pd.DataFrame({"bin": grp.to_numpy() + 1, "y": y, "p": pr})
    t = d.groupby("bin").agg(n=("y", "size"), events=("y", "sum"), mean_predicted=("p", "mean"))
    t["observed"] = t["events"] / t["n"]
    t["ci_lower"], t["ci_upper"] = wilson_ci(t["events"], t["n"], 1 - alpha)
    t = t.reset_index()
    z = float(stats.norm.ppf(1 - alpha / 2))
    if y.sum() in (0, len(y)):
        raise RiskDataError(f"calibration needs both outcomes; y_true has {int(y.sum())} events "
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
        raise RiskDataError("weights is empty")
    miss = [c for c in weights if c not in df.columns]
    if miss:
        raise RiskDataError(f"points rule items {miss} are not columns of the frame")
    if missing not in ("raise", "zero", "nan"):
        raise RiskDataError(f"missing must be 'raise', 'zero' or 'nan', got {missing!r}")
    total = np.zeros(len(df))
    anyna = np.zeros(len(df), dtype=bool)
    for col, pts in weights.items():
        v = _numeric_copy(df[col], col)
        v = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
        na = np.isnan(v)
        bad = ~na & ~np.isin(v, (0.0, 1.0))
        if bad.any():
            raise RiskDataError(f"item {col!r} must be 0/1 or boolean; rows "
                                f"{list(df.index[bad][:10])} are not")
        if na.any() and missing == "raise":
            raise RiskDataError(f"item {col!r} is missing in {int(na.sum())} rows (e.g. "
                                f"{list(df.index[na][:5])}); pass missing='zero' or 'nan'")
        anyna |= na
        total += float(pts) * np.nan_to_num(v, nan=0.0)
    if missing == "nan":
        total[anyna] = np.nan
    return pd.Series(total, index=df.index, name="score")


def wiser_like_score(df: pd.DataFrame) -> pd.Series:
    """The WISER-like score (:data:`WISER_LIKE_WEIGHTS`) of a :func:`screening_features` frame."""
    return points_score(df, WISER_LIKE_WEIGHTS).rename("wiser_like")
