"""Calibration of the generator to published aggregates: a *synthetic twin*.

``calibrate(config, targets, params)`` fits chosen :class:`SyntheticConfig` parameters so that the
generated data reproduce an agency's published figures, by the simulated method of moments:

* a **target** is one published aggregate -- ``measure``, ``period``, ``value``, ``tolerance``,
  ``source`` (and optionally ``direction: at_least`` for a floor, ``se`` for the target's own
  sampling error); :func:`load_targets` reads a YAML list of them;
* every evaluation of a parameter vector generates ``n_sims`` bundles with the **same seeds**
  (common random numbers), computes each measure with :func:`measure_values` and averages;
* the loss is ``sum_k ((achieved_k - value_k) / tolerance_k)^2`` (a floor counts only when it is
  not met); it is minimised by **damped Gauss--Newton** (Levenberg--Marquardt) with a
  forward-difference Jacobian whose steps are large enough to see through the discreteness of
  simulated counts (``steps``, default 5 % of the starting value, at least 0.05);
* the **fit report** (:class:`CalibrationResult`) lists target vs achieved with its simulation
  standard error, and the fitted parameters with a sandwich standard error that combines the
  target's sampling error (a published count is one realisation of the process) and the
  simulation error of the mean over ``n_sims`` runs.

The measures are computed from the tables alone (never from the truth), so the same function
describes a real extract: :func:`measure_values` is what an agency would publish.

:func:`privacy_report` compares a twin with a real extract (distance to closest record and a
membership-inference check); it returns aggregates only and writes nothing.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from dmst_eval.errors import InputError

from .config import SyntheticConfig

YEAR_DAYS = 365.25

#: Measures a target may name (see :func:`measure_values` and docs/ground_truth.md).
MEASURES = {
    "confirmed_victims": "children whose first confirmed episode was identified in the period",
    "child_welfare_share": "share of those children with child_welfare_involved true",
    "male_victims": "those children who are male",
    "identified_per_year": "confirmed victims (first identification) per calendar year, mean "
                           "over the period's years",
    "identified_per_year_ratio": "identified_per_year of the first period divided by that of "
                                 "the second ('2020-2025 vs 2008-2011')",
    "reports": "reports received in the period",
    "home_share": "share of the episodes identified in the period (confirmed, not confirmed and "
                  "pending: one per report) whose status_at_time is home",
    "congregate_relative_rate": "Gibbs et al. (2018): among child-welfare children old enough to "
                                "be at risk in the period, the share with a congregate placement "
                                "(before identification) among victims identified in the period, "
                                "divided by the share among the others ('victims were N times as "
                                "likely to have experienced congregate care')",
    "runaway_relative_rate": "as congregate_relative_rate, for running from placement (an AWOL "
                             "episode)",
    "placement_relative_rate": "as congregate_relative_rate, for any out-of-home placement",
}


# ------------------------------------------------------------------------------------ targets
@dataclass(frozen=True)
class Target:
    """One published aggregate to reproduce."""

    measure: str
    period: str
    value: float
    tolerance: float
    source: str = ""
    direction: str = "equal"  # or "at_least"
    se: float | None = None

    def __post_init__(self):
        if self.measure not in MEASURES:
            raise InputError(f"target measure {self.measure!r} is unknown; expected one of "
                             f"{sorted(MEASURES)}")
        if not (isinstance(self.tolerance, (int, float)) and self.tolerance > 0):
            raise InputError(f"target {self.measure} {self.period}: tolerance must be > 0, got "
                             f"{self.tolerance!r}")
        if self.direction not in ("equal", "at_least"):
            raise InputError(f"target {self.measure} {self.period}: direction must be 'equal' or "
                             f"'at_least', got {self.direction!r}")
        _periods(self.measure, self.period)

    @property
    def name(self) -> str:
        return f"{self.measure}[{self.period}]"


def _years(p: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{4})\s*(?:[-–]\s*(\d{4}))?\s*", str(p))
    if not m:
        raise InputError(f"target period {p!r}: expected a year (2021) or a range of years "
                         "(2008-2011)")
    a = int(m.group(1))
    b = int(m.group(2) or a)
    if b < a:
        raise InputError(f"target period {p!r}: the range ends before it starts")
    return a, b


def _periods(measure: str, period: str) -> list[tuple[int, int]]:
    if measure == "identified_per_year_ratio":
        parts = re.split(r"\s+vs\.?\s+", str(period))
        if len(parts) != 2:
            raise InputError(f"target period {period!r}: a ratio needs 'YYYY-YYYY vs YYYY-YYYY'")
        return [_years(x) for x in parts]
    return [_years(period)]


def load_targets(path) -> list[Target]:
    """Read a targets YAML file: a list (or ``targets:`` list) of mappings with keys
    ``measure, period, value, tolerance, source`` (optional ``direction``, ``se``).

    Examples
    --------
    >>> from dmst_eval.synthetic.calibrate import load_targets
    >>> t = load_targets("data/synthetic/targets.yaml")
    >>> t[0].measure, t[0].period
    ('confirmed_victims', '2008-2011')
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"targets file {p} does not exist")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InputError(f"targets file {p} is not valid YAML: {e}") from None
    if isinstance(d, dict):
        d = d.get("targets")
    if not isinstance(d, list) or not d:
        raise InputError(f"targets file {p}: expected a non-empty list of targets (or a "
                         "'targets:' list)")
    out = []
    allowed = {f.name for f in dataclasses.fields(Target)}
    for i, row in enumerate(d):
        if not isinstance(row, dict):
            raise InputError(f"targets file {p}: entry {i} is not a mapping")
        unknown = sorted(set(row) - allowed)
        missing = sorted({"measure", "period", "value", "tolerance"} - set(row))
        if unknown or missing:
            raise InputError(f"targets file {p}: entry {i} has unknown keys {unknown} / lacks "
                             f"{missing}; expected {sorted(allowed)}")
        out.append(Target(**{**row, "period": str(row["period"]), "value": float(row["value"]),
                             "tolerance": float(row["tolerance"])}))
    return out


# ----------------------------------------------------------------------------------- measures
def _child_index(tables: dict) -> pd.Index:
    """The children's ids: the one lookup table from rows of other tables to their child."""
    return pd.Index(tables["children"]["child_id"].astype(object).to_numpy())


def _victim_frame(tables: dict, kids: pd.Index) -> pd.DataFrame:
    ch = tables["children"]
    ep = tables["episodes"]
    conf = ep[ep["confirmed"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
    first = conf.groupby("child_id", observed=True)["identified_at"].min()
    pos = kids.get_indexer(first.index.astype(object))
    if (pos < 0).any():
        raise InputError(f"{int((pos < 0).sum())} children with confirmed episodes are not in "
                         "the children table", table="episodes", column="child_id",
                         expected="ids of children.child_id")
    return pd.DataFrame({"year": first.dt.year,
                         "cw": ch["child_welfare_involved"].take(pos).fillna(False)
                         .to_numpy(dtype=bool),
                         "male": (ch["sex"].take(pos) == "male").to_numpy()},
                        index=first.index)


def _first_by(n: int, pos: np.ndarray, t: pd.Series) -> np.ndarray:
    """Earliest ``t`` per child (NaT where none), as datetime64[ns]: ``pos`` is the position of
    each row's child among the ``n`` children (-1: not one of them)."""
    ok = pos >= 0
    out = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(out, pos[ok], t.to_numpy(dtype="datetime64[ns]")[ok].view(np.int64))
    res = out.view("datetime64[ns]").copy()
    res[out == np.iinfo(np.int64).max] = np.datetime64("NaT")
    return res


def _relative_rates(tables: dict, kids: pd.Index, start: pd.Timestamp, end: pd.Timestamp
                    ) -> dict[str, float]:
    """Gibbs et al. (2018) style ratios among child-welfare children old enough to be at risk:
    share with the experience among victims identified in the period / share among the others.
    The experience counts if it began before identification (victims) or before the period's
    end (others)."""
    ch = tables["children"]
    pl, aw, ep = tables["placements"], tables["awol_episodes"], tables["episodes"]
    birth = ch["birth_date"].to_numpy(dtype="datetime64[ns]")
    last = (end + pd.Timedelta(days=1 - 120)).to_datetime64()
    at_risk = ch["child_welfare_involved"].fillna(False).to_numpy(dtype=bool) \
        & (birth + np.timedelta64(round(11 * YEAR_DAYS * 86400), "s") <= last) \
        & (birth + np.timedelta64(round(18 * YEAR_DAYS * 86400), "s") > start.to_datetime64())
    n = int(at_risk.sum())
    # index of each child among the at-risk children (-1: not at risk; last: not a child)
    rank = np.r_[np.where(at_risk, np.cumsum(at_risk) - 1, -1), -1]

    def pos(child: pd.Series) -> np.ndarray:  # each row's child among them (-1: none)
        return rank[kids.get_indexer(child.astype(object).to_numpy())]

    conf = ep["confirmed"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    f = _first_by(n, pos(ep["child_id"][conf]), ep["identified_at"][conf])
    s64, e64 = start.to_datetime64(), (end + pd.Timedelta(days=1)).to_datetime64()
    keep = ~(f < s64)  # known victims before the period are not at risk
    f = f[keep]
    victim = (f >= s64) & (f < e64)
    until = np.where(victim, f, e64)
    cong = pl["setting"].isin(["group_home", "residential_treatment", "shelter"]).to_numpy(bool)
    pl_pos = pos(pl["child_id"])
    out = {}
    for name, p, t in (("placement_relative_rate", pl_pos, pl["start"]),
                       ("congregate_relative_rate", pl_pos[cong], pl["start"][cong]),
                       ("runaway_relative_rate", pos(aw["child_id"]), aw["start"])):
        firstx = _first_by(n, p, t)[keep]
        x = ~np.isnat(firstx) & (firstx < until)
        a = x[victim].mean() if victim.any() else np.nan
        b = x[~victim].mean() if (~victim).any() else np.nan
        out[name] = float(a / b) if b > 0 else np.nan
    return out


def measure_values(cd, targets: Sequence[Target]) -> dict[str, float]:
    """Each target's measure computed from a bundle's tables (target name -> value).

    The definitions are those of :data:`MEASURES` (and docs/ground_truth.md); they use only the
    tables, so they apply to a real extract as to a twin.
    """
    tables = cd.tables if hasattr(cd, "tables") else cd
    kids = _child_index(tables)
    vf = _victim_frame(tables, kids)
    per_year = vf.groupby("year").size()
    out: dict[str, float] = {}
    cache: dict = {}
    for t in targets:
        ps = _periods(t.measure, t.period)
        a, b = ps[0]
        inp = vf["year"].between(a, b)
        if t.measure == "confirmed_victims":
            v = float(inp.sum())
        elif t.measure == "child_welfare_share":
            v = float(vf.loc[inp, "cw"].mean()) if inp.any() else np.nan
        elif t.measure == "male_victims":
            v = float(vf.loc[inp, "male"].sum())
        elif t.measure == "identified_per_year":
            v = float(per_year.reindex(range(a, b + 1), fill_value=0).mean())
        elif t.measure == "identified_per_year_ratio":
            c, d = ps[1]
            den = per_year.reindex(range(c, d + 1), fill_value=0).mean()
            v = float(per_year.reindex(range(a, b + 1), fill_value=0).mean() / den) \
                if den > 0 else np.nan
        elif t.measure == "reports":
            y = tables["reports"]["received_at"].dt.year
            v = float(y.between(a, b).sum())
        elif t.measure == "home_share":
            ep = tables["episodes"]
            m = ep["identified_at"].dt.year.between(a, b)
            v = float((ep.loc[m, "status_at_time"] == "home").mean()) if m.any() else np.nan
        else:  # Gibbs et al. ratios
            key = (a, b)
            if key not in cache:
                cache[key] = _relative_rates(tables, kids, pd.Timestamp(f"{a}-01-01"),
                                             pd.Timestamp(f"{b}-12-31"))
            v = cache[key][t.measure]
        out[t.name] = v
    return out


# ----------------------------------------------------------------------------- parameters
def _get(cfg: SyntheticConfig, path: str) -> float:
    head, _, key = path.partition(".")
    if not hasattr(cfg, head):
        raise InputError(f"calibration parameter {path!r}: SyntheticConfig has no field {head!r}")
    v = getattr(cfg, head)
    if key:
        if not isinstance(v, dict) or key not in v:
            raise InputError(f"calibration parameter {path!r}: {head} has no key {key!r}")
        v = v[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"calibration parameter {path!r} is not a number")
    return float(v)


def _set(cfg: SyntheticConfig, values: dict[str, float]) -> SyntheticConfig:
    upd: dict[str, Any] = {}
    for path, x in values.items():
        head, _, key = path.partition(".")
        if key:
            d = dict(upd.get(head, getattr(cfg, head)))
            d[key] = float(x)
            upd[head] = d
        else:
            upd[head] = float(x)
    return cfg.replace(**upd)


# ------------------------------------------------------------------------------------ result
@dataclass
class CalibrationResult:
    """Fit report of :func:`calibrate`.

    Attributes
    ----------
    config : SyntheticConfig
        The calibrated configuration (the twin).
    params : DataFrame
        ``parameter, start, estimate, se`` (sandwich standard error).
    fit : DataFrame
        ``target, measure, period, value, tolerance, achieved, sim_se, z, met, source``:
        ``achieved`` is the mean over the ``n_sims`` runs, ``sim_se`` its simulation standard
        error, ``z = (achieved - value) / tolerance`` (0 for a floor that is met).
    history : DataFrame
        One row per evaluation: ``iteration``, the parameters, ``loss``.
    """

    config: SyntheticConfig
    params: pd.DataFrame
    fit: pd.DataFrame
    history: pd.DataFrame
    n_sims: int
    seeds: list[int]
    evaluations: int
    converged: bool

    @property
    def summary(self) -> pd.DataFrame:
        return self.fit

    def plot(self, ax=None):
        """Target vs achieved (with 2 simulation SEs), on the tolerance scale."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.45 * len(self.fit) + 1))
        y = np.arange(len(self.fit))
        f = self.fit
        ax.axvspan(-1, 1, color="0.9")
        ax.errorbar((f["achieved"] - f["value"]) / f["tolerance"], y,
                    xerr=2 * f["sim_se"] / f["tolerance"], fmt="o")
        ax.set_yticks(y, f["target"])
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlabel("(achieved - target) / tolerance")
        return ax

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"CalibrationResult({len(self.params)} parameters, {len(self.fit)} targets, "
                f"{self.evaluations} evaluations, converged={self.converged})")

    def report(self) -> str:
        """Plain-text fit report."""
        with pd.option_context("display.width", 140, "display.max_columns", 20):
            return ("Parameters\n" + self.params.to_string(index=False, float_format="%.4g")
                    + "\n\nTargets (achieved = mean of %d runs; sim_se = its simulation SE)\n"
                    % self.n_sims
                    + self.fit.drop(columns=["source"]).to_string(index=False,
                                                                   float_format="%.4g"))


# --------------------------------------------------------------------------------- calibrate
def _simulate(cfg: SyntheticConfig, targets, seeds) -> np.ndarray:
    from .generator import _generate, _Progress

    rows = []
    for s in seeds:
        tables, _ = _generate(cfg.replace(seed=int(s)), _Progress(False, 9))
        m = measure_values(tables, targets)
        rows.append([m[t.name] for t in targets])
    return np.asarray(rows, dtype=float)


def _resid(mean: np.ndarray, targets) -> np.ndarray:
    val = np.array([t.value for t in targets])
    tol = np.array([t.tolerance for t in targets])
    r = (mean - val) / tol
    floor = np.array([t.direction == "at_least" for t in targets])
    r = np.where(floor, np.minimum(r, 0.0), r)
    return np.where(np.isfinite(r), r, 10.0)


def calibrate(config: SyntheticConfig | None, targets, params: Sequence[str],
              n_sims: int = 4, max_iter: int = 8, steps: dict[str, float] | None = None,
              bounds: dict[str, tuple[float, float]] | None = None, tol: float = 1e-3,
              seeds: Sequence[int] | None = None, progress=None) -> CalibrationResult:
    """Fit ``params`` of ``config`` to published ``targets`` (simulated method of moments).

    Parameters
    ----------
    config : SyntheticConfig, optional
        Starting configuration (default: the package default). Its ``scale`` is kept; targets
        are counts at that scale.
    targets : list of Target, or path to a targets YAML file
    params : list of str
        Config fields to fit, e.g. ``"unconfirmed_reports"`` or ``"log_odds.intercept"``.
    n_sims : int
        Runs per evaluation. Every evaluation uses the same seeds ``config.seed + 0..n_sims-1``
        (common random numbers), so differences between parameter values are not swamped by
        simulation noise.
    max_iter : int
        Gauss--Newton iterations (each costs ``len(params) + 1`` evaluations, plus trial steps).
    steps : dict, optional
        Finite-difference step per parameter (default 5 % of the start value, at least 0.05).
    bounds : dict, optional
        ``(low, high)`` per parameter; steps are clipped into it (defaults: the config's ranges).
    tol : float
        Stop when the loss improves by less than this fraction.

    Returns
    -------
    CalibrationResult

    Examples
    --------
    >>> from dmst_eval.synthetic import SyntheticConfig
    >>> from dmst_eval.synthetic.calibrate import Target, calibrate
    >>> r = calibrate(SyntheticConfig(scale=0.2), [Target("reports", "2021", 48, 5)],
    ...               ["unconfirmed_reports"], n_sims=2, max_iter=2)
    >>> list(r.fit.columns[:4])
    ['target', 'measure', 'period', 'value']
    """
    cfg0 = config if config is not None else SyntheticConfig()
    if not isinstance(cfg0, SyntheticConfig):
        raise InputError(f"config must be a SyntheticConfig, got {type(cfg0).__name__}")
    if isinstance(targets, (str, Path)):
        targets = load_targets(targets)
    targets = list(targets)
    if not targets:
        raise InputError("calibrate needs at least one target")
    params = list(params)
    if not params:
        raise InputError("calibrate needs at least one parameter to fit")
    x0 = np.array([_get(cfg0, p) for p in params])
    lo = np.full(len(params), -np.inf)
    hi = np.full(len(params), np.inf)
    meta = {f.name: f.metadata for f in dataclasses.fields(SyntheticConfig)}
    for i, p in enumerate(params):
        head, _, key = p.partition(".")
        if not key:
            lo[i] = meta[head].get("min") if meta[head].get("min") is not None else -np.inf
            hi[i] = meta[head].get("max") if meta[head].get("max") is not None else np.inf
        if bounds and p in bounds:
            lo[i], hi[i] = bounds[p]
    h = np.array([(steps or {}).get(p, max(0.05, 0.05 * abs(x))) for p, x in zip(params, x0)])
    seeds = list(seeds) if seeds is not None else [int(cfg0.seed) + k for k in range(n_sims)]
    n_sims = len(seeds)
    hist: list[dict] = []
    cache: dict[tuple, np.ndarray] = {}

    def sims(x: np.ndarray) -> np.ndarray:
        key = tuple(np.round(x, 12))
        if key not in cache:
            cache[key] = _simulate(_set(cfg0, dict(zip(params, x))), targets, seeds)
        return cache[key]

    def evaluate(x, it):
        S = sims(x)
        r = _resid(np.nanmean(S, axis=0), targets)
        loss = float(r @ r)
        hist.append({"iteration": it, **dict(zip(params, x)), "loss": loss})
        if progress:
            progress(it, loss)
        return S, r, loss

    x = np.clip(x0, lo, hi)
    S, r, loss = evaluate(x, 0)
    lam = 1e-3
    converged = False
    J = None
    for it in range(1, max_iter + 1):
        # forward differences (step away from a bound if needed)
        hh = np.where(x + h > hi, -h, h)
        J = np.empty((len(targets), len(params)))
        for j in range(len(params)):
            xj = x.copy()
            xj[j] += hh[j]
            Sj = sims(xj)
            hist.append({"iteration": it, **dict(zip(params, xj)),
                         "loss": float(np.sum(_resid(np.nanmean(Sj, axis=0), targets) ** 2))})
            J[:, j] = (_resid(np.nanmean(Sj, axis=0), targets) - r) / hh[j]
        A = J.T @ J
        g = J.T @ r
        improved = False
        for _ in range(6):
            try:
                dx = -np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-9), g)
            except np.linalg.LinAlgError:
                dx = -g * 1e-3
            xn = np.clip(x + dx, lo, hi)
            Sn, rn, ln = evaluate(xn, it)
            if ln < loss:
                rel = (loss - ln) / max(loss, 1e-12)
                x, S, r, loss = xn, Sn, rn, ln
                lam = max(lam / 10, 1e-6)
                improved = True
                break
            lam *= 10
        if not improved or rel < tol or loss < 1e-6:
            converged = True
            break
    cfg = _set(cfg0, dict(zip(params, x)))

    # fit report and sandwich standard errors
    mean = np.nanmean(S, axis=0)
    sd = np.nanstd(S, axis=0, ddof=1) if n_sims > 1 else np.full(len(targets), np.nan)
    sim_se = sd / math.sqrt(n_sims)
    tgt_se = np.array([t.se if t.se is not None else s for t, s in zip(targets, sd)])
    tolv = np.array([t.tolerance for t in targets])
    active = np.array([not (t.direction == "at_least" and m >= t.value)
                       for t, m in zip(targets, mean)])
    # Jacobian of the achieved measures (not residuals) at the optimum, on the tolerance scale
    Jm = np.empty((len(targets), len(params)))
    hh = np.where(x + h > hi, -h, h)
    for j in range(len(params)):
        xj = x.copy()
        xj[j] += hh[j]
        Jm[:, j] = (np.nanmean(sims(xj), axis=0) - mean) / tolv / hh[j]
    Ja = Jm[active]
    Sig = np.diag(((tgt_se ** 2 + sim_se ** 2) / tolv ** 2)[active])
    try:
        Ai = np.linalg.pinv(Ja.T @ Ja)
        cov = Ai @ Ja.T @ Sig @ Ja @ Ai
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except np.linalg.LinAlgError:  # pragma: no cover
        se = np.full(len(params), np.nan)
    z = _resid(mean, targets)
    fit = pd.DataFrame({
        "target": [t.name for t in targets], "measure": [t.measure for t in targets],
        "period": [t.period for t in targets], "value": [t.value for t in targets],
        "tolerance": tolv, "achieved": mean, "sim_se": sim_se, "z": z,
        "met": np.abs(z) <= 1, "source": [t.source for t in targets]})
    ptab = pd.DataFrame({"parameter": params, "start": x0, "estimate": x, "se": se})
    return CalibrationResult(config=cfg, params=ptab, fit=fit, history=pd.DataFrame(hist),
                             n_sims=n_sims, seeds=seeds, evaluations=len(cache),
                             converged=converged)


# ----------------------------------------------------------------------------------- privacy
def _record_features(cd) -> pd.DataFrame:
    """One numeric row per child (the quasi-identifiers a twin could leak), scaled to [0, 1]."""
    ch = cd.children
    start = pd.Timestamp(cd.meta.get("study_start", "2008-01-01"))
    f = pd.DataFrame(index=ch["child_id"].astype(str).to_numpy())
    f["birth_year"] = ((pd.to_datetime(ch["birth_date"]) - start).dt.days / YEAR_DAYS).to_numpy()
    f["male"] = (ch["sex"] == "male").to_numpy(dtype=float)
    f["cw"] = ch["child_welfare_involved"].fillna(False).to_numpy(dtype=float)
    for k in ("prior_sexual_abuse", "prior_runaway", "substance_use", "juvenile_justice",
              "lgbtq"):
        f[k] = ch[k].astype("Float64").fillna(0.5).to_numpy(dtype=float)
    region = ch["region"].astype(str).to_numpy()
    for r in sorted(set(region)):
        f["region_" + r] = (region == r).astype(float)
    ids = f.index
    pl, aw = cd.placements, cd.awol_episodes
    f["n_placements"] = pl.groupby(pl["child_id"].astype(str)).size().reindex(ids).fillna(0) \
        .to_numpy()
    f["congregate"] = pl[pl["setting"].isin(["group_home", "residential_treatment", "shelter"])] \
        .groupby("child_id").size().reindex(ids).fillna(0).gt(0).to_numpy(dtype=float)
    f["n_awol"] = aw.groupby(aw["child_id"].astype(str)).size().reindex(ids).fillna(0).to_numpy()
    ce = cd.confirmed_episodes()
    f["n_confirmed"] = ce.groupby(ce["child_id"].astype(str)).size().reindex(ids).fillna(0) \
        .to_numpy()
    return f


def _scale(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    cols = sorted(set(a.columns) | set(b.columns))
    a, b = a.reindex(columns=cols, fill_value=0.0), b.reindex(columns=cols, fill_value=0.0)
    both = pd.concat([a, b])
    rng = (both.max() - both.min()).replace(0, 1.0)
    lo = both.min()
    return ((a - lo) / rng).to_numpy(float), ((b - lo) / rng).to_numpy(float)


def _nearest(query: np.ndarray, ref: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    from scipy.spatial import cKDTree

    tree = cKDTree(ref)
    k = 2 if exclude_self else 1
    d, _ = tree.query(query, k=k, p=1)
    d = d[:, 1] if exclude_self else d
    return d / ref.shape[1]  # mean absolute difference per attribute (Gower-like, in [0, 1])


def privacy_report(twin, extract, seed: int = 0, max_records: int = 20000) -> pd.DataFrame:
    """Distance to closest record and a membership-inference check of a twin against a real
    extract. Returns aggregates only (no record, id or date); nothing is written.

    * **DCR** (distance to closest record, SDMetrics' ``DCRBaselineProtection`` idea): for every
      synthetic child, the Gower-like distance (mean absolute difference of attributes scaled to
      [0, 1]) to the closest real child; compared with the same distance between real children
      (each to its nearest other real child). ``share_exact_copies`` counts synthetic records at
      distance 0.
    * **Membership inference** (SDMetrics' ``DCROverfittingProtection`` idea): the real extract
      is split at random into halves A and B; ``share_closer_to_half_a`` is the share of
      synthetic records whose closest real record is in A (0.5 when nothing about A in
      particular is reproduced), and ``membership_auc`` is the AUC of an attacker who scores
      each real record by its distance to the closest synthetic record and calls the closer ones
      members of A (0.5 = no signal; a twin fitted to aggregates of the whole extract should
      show none).
    """
    rng = np.random.default_rng(seed)
    fs, fr = _record_features(twin), _record_features(extract)
    if len(fr) < 4 or len(fs) < 1:
        raise InputError("privacy_report needs at least 4 real and 1 synthetic children")
    if len(fs) > max_records:
        fs = fs.iloc[np.sort(rng.choice(len(fs), max_records, replace=False))]
    if len(fr) > max_records:
        fr = fr.iloc[np.sort(rng.choice(len(fr), max_records, replace=False))]
    S, R = _scale(fs, fr)
    dcr = _nearest(S, R)
    rr = _nearest(R, R, exclude_self=True)
    half = rng.random(len(R)) < 0.5
    da = _nearest(S, R[half]) if half.any() else np.full(len(S), np.inf)
    db = _nearest(S, R[~half]) if (~half).any() else np.full(len(S), np.inf)
    closer_a = float(np.mean(da < db) + 0.5 * np.mean(da == db))
    score = -_nearest(R, S)
    from scipy.stats import mannwhitneyu

    auc = float(mannwhitneyu(score[half], score[~half]).statistic / (half.sum() * (~half).sum())) \
        if half.any() and (~half).any() else np.nan
    rows = [("synthetic_records", float(len(S))), ("real_records", float(len(R))),
            ("dcr_median", float(np.median(dcr))), ("dcr_p05", float(np.quantile(dcr, 0.05))),
            ("real_to_real_median", float(np.median(rr))),
            ("real_to_real_p05", float(np.quantile(rr, 0.05))),
            ("share_exact_copies", float(np.mean(dcr == 0))),
            ("share_closer_than_real_p05", float(np.mean(dcr < np.quantile(rr, 0.05)))),
            ("share_closer_to_half_a", closer_a), ("membership_auc", auc)]
    return pd.DataFrame(rows, columns=["metric", "value"])
