"""Results-Based Accountability (RBA) scorecard.

The agency's plan groups its work in three strategies — **Identification & Response**,
**Awareness & Education**, **Restore & Recovery** — and RBA asks three questions of each:
*How much did we do? How well did we do it? Is anyone better off?* :func:`scorecard` computes
every performance measure of the registry (``rba_measures.yaml``, shipped with the package: one
entry per measure) for a reporting period and a baseline period, compares it with a target
(``rba_targets.yaml``) and with a **turn-the-curve** forecast: the straight-line trend of the
baseline years, projected over the reporting years with a 95% prediction interval. A value
outside that interval in the better direction means the curve turned.

Regions: report measures use the region responsible for the report (``reports.region``); victim
and service measures the region of the child's home town (``children.region``); training measures
the region where the session was delivered (``trainings.region``).

Re-victimization within 12 months is computed directly from the episodes (a new confirmed episode
beginning within 365 days after identification; victims with less than 12 months of follow-up
before the end of the data are left out), so the scorecard does not depend on the survival
models of :mod:`dmst_eval.recidivism`.
"""
from __future__ import annotations

import functools
import textwrap
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dmst_eval import schema
from dmst_eval.errors import InputError, require_columns
from dmst_eval.tracking import confirmed_episodes

__all__ = ["STRATEGIES", "QUESTIONS", "FRAMES", "Measure", "ScorecardResult", "RBAInputError",
           "load_measures", "load_targets", "measures", "prepare_frames", "scorecard"]

STRATEGIES = ("Identification & Response", "Awareness & Education", "Restore & Recovery")
QUESTIONS = ("How much did we do?", "How well did we do it?", "Is anyone better off?")
KINDS = ("count", "sum", "nunique", "share", "mean")
#: Prepared frames measures can use, with their date column.
FRAMES = {"reports": "date", "victims": "date", "services": "date", "trainings": "date",
          "attendance": "date"}
DEFAULT_PASS_MARK = 70.0


#: Deprecated alias of :class:`dmst_eval.errors.InputError` (the one input error).
RBAInputError = InputError


def _check_region(region):
    if region is not None and region not in schema.REGIONS:
        raise InputError(f"region {region!r} is not one of {list(schema.REGIONS)}")


def _require(df: pd.DataFrame, table: str, cols) -> None:
    require_columns(df, cols, table=table)


@dataclass(frozen=True)
class Measure:
    """One RBA performance measure (an entry of ``rba_measures.yaml``)."""

    key: str
    label: str
    strategy: str
    question: str
    frame: str
    kind: str
    polarity: str
    unit: str = ""
    column: str | None = None
    where: str | None = None
    description: str = ""

    @property
    def is_rate(self) -> bool:
        """Counts are per year; shares and means are pooled."""
        return self.kind in ("share", "mean")


def _parse_measures(entries: list[dict], source: str) -> list[Measure]:
    if not isinstance(entries, list):
        raise RBAInputError(f"{source}: expected a list of measure entries")
    out, seen = [], set()
    allowed = set(Measure.__dataclass_fields__)
    for i, e in enumerate(entries):
        where = f"{source}, entry {i + 1} ({e.get('key', '?') if isinstance(e, dict) else e!r})"
        if not isinstance(e, dict):
            raise RBAInputError(f"{where}: expected a mapping")
        unknown = set(e) - allowed
        if unknown:
            raise RBAInputError(f"{where}: unknown field(s) {sorted(unknown)}")
        for req in ("key", "label", "strategy", "question", "frame", "kind", "polarity"):
            if req not in e:
                raise RBAInputError(f"{where}: missing field {req!r}")
        checks = (("strategy", STRATEGIES), ("question", QUESTIONS), ("frame", tuple(FRAMES)),
                  ("kind", KINDS), ("polarity", ("higher", "lower")))
        for fld, ok in checks:
            if e[fld] not in ok:
                raise RBAInputError(f"{where}: {fld} {e[fld]!r} is not one of {list(ok)}")
        if e["kind"] != "count" and not e.get("column"):
            raise RBAInputError(f"{where}: kind {e['kind']!r} needs a 'column'")
        if e["key"] in seen:
            raise RBAInputError(f"{where}: duplicate key {e['key']!r}")
        seen.add(e["key"])
        out.append(Measure(**e))
    return out


def _yaml_load(text: str):
    """``yaml.safe_load`` with libyaml's C parser when PyYAML has it (same documents, ~10x
    faster), else the pure-Python one."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _read_text(path: str | Path | None, default: str) -> tuple[str, str]:
    """Text of ``path`` (or of the shipped file ``default``) and the name used in messages."""
    if path is None:
        return resources.files("dmst_eval").joinpath(default).read_text("utf-8"), default
    return Path(path).read_text("utf-8"), str(path)


# Parsing is cached by the file's text itself (reading a file is cheap, parsing it is not): an
# edited registry is parsed again whatever its path, size or modification time, and two calls
# never share a mutable result (measures are frozen; callers get a new list / dict).
@functools.lru_cache(maxsize=16)
def _measures_from_text(text: str, src: str) -> tuple[Measure, ...]:
    return tuple(_parse_measures(_yaml_load(text), src))


@functools.lru_cache(maxsize=16)
def _targets_from_text(text: str) -> tuple[tuple[str, float], ...]:
    return tuple(_parse_targets(_yaml_load(text) or {}).items())


def load_measures(path: str | Path | None = None) -> list[Measure]:
    """The measure registry (default: the shipped ``rba_measures.yaml``)."""
    return list(_measures_from_text(*_read_text(path, "rba_measures.yaml")))


def _parse_targets(raw) -> dict[str, float]:
    out = {}
    for k, v in raw.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise RBAInputError(f"target for {k!r} must be a number, got {v!r}") from None
    return out


def load_targets(targets: str | Path | dict | None = None) -> dict[str, float]:
    """Targets by measure key (default: the shipped ``rba_targets.yaml``; a dict is used as is)."""
    if isinstance(targets, dict):
        return _parse_targets(targets)
    return dict(_targets_from_text(_read_text(targets, "rba_targets.yaml")[0]))


def measures(path: str | Path | None = None) -> pd.DataFrame:
    """The registry as a table (for documentation and notebooks)."""
    return pd.DataFrame([m.__dict__ for m in load_measures(path)])


# --------------------------------------------------------------------------------------------
# prepared frames
# --------------------------------------------------------------------------------------------
def prepare_frames(cd, region: str | None = None, pass_mark: float = DEFAULT_PASS_MARK,
                   referral_days: int = 30) -> dict[str, pd.DataFrame]:
    """The tables the measures are computed on (each has a ``date`` column).

    ``reports``: received_at as date; accepted, guardian_perpetrator, accepted_without_guardian,
    mdt_referred, responded_24h (first in-person response ≤ 24 h after receipt), confirmed,
    reporter_type. ``victims``: per child and calendar year, the first confirmed episode identified
    that year; identified_30d (identified ≤ 30 days after the episode began), referred_30d (a
    service referral 0–``referral_days`` days after identification; missing if identified less
    than ``referral_days`` days before the end of the data),
    revictimized_12m /
    no_revictimization_12m (a new confirmed episode beginning within 365 days after
    identification; missing without 365 days of follow-up before the end of the data).
    ``services``: referred_at as date; started, completed_bool (missing while ongoing).
    ``trainings``: the sessions. ``attendance``: attendees with the session's date, audience,
    curriculum; tested, passed (post ≥ ``pass_mark``), gain, gained_10.
    """
    _check_region(region)
    study_end = pd.Timestamp(cd.meta["study_end"]) + pd.Timedelta(days=1)
    frames: dict[str, pd.DataFrame] = {}

    # reports
    rep = cd.reports
    _require(rep, "reports", ["report_id", "child_id", "received_at", "accepted",
                              "guardian_perpetrator", "region", "first_response_at",
                              "mdt_referral_at", "disposition", "reporter_type"])
    if region is not None:
        rep = rep[rep["region"] == region]
    acc = rep["accepted"].fillna(False).astype(bool).to_numpy()
    gp = rep["guardian_perpetrator"].fillna(False).astype(bool).to_numpy()
    resp = (rep["first_response_at"] - rep["received_at"]) <= pd.Timedelta(hours=24)
    frames["reports"] = pd.DataFrame({
        "date": rep["received_at"].to_numpy(),
        "report_id": rep["report_id"].astype(str).to_numpy(),
        "reporter_type": rep["reporter_type"].astype("object").to_numpy(),
        "accepted": acc,
        "guardian_perpetrator": gp,
        "accepted_without_guardian": acc & ~gp,
        "mdt_referred": rep["mdt_referral_at"].notna().to_numpy(),
        "responded_24h": resp.fillna(False).astype(bool).to_numpy(),
        "confirmed": (rep["disposition"].astype("object") == "confirmed").to_numpy(),
    })

    # victims (child x year) with outcomes
    ep = confirmed_episodes(cd, region)
    ep = ep.assign(child_id=ep["child_id"].astype(str))
    v = ep.assign(year=ep["identified_at"].dt.year).drop_duplicates(["child_id", "year"])
    v = v[["child_id", "episode_id", "began_at", "identified_at", "status_at_time"]].copy()
    # next confirmed episode beginning after this identification: merge_asof on began_at
    later = ep[["child_id", "began_at"]].rename(columns={"began_at": "next_began"})
    later = later.assign(key=later["next_began"]).sort_values("key")
    vv = v.assign(key=v["identified_at"]).sort_values("key")
    nxt = pd.merge_asof(vv, later, on="key", by="child_id", direction="forward",
                        allow_exact_matches=False)
    nxt = nxt.set_index("episode_id")["next_began"]
    v["next_began"] = v["episode_id"].map(nxt)
    horizon = v["identified_at"] + pd.Timedelta(days=365)
    revict = v["next_began"].notna() & (v["next_began"] <= horizon)
    followed = horizon <= study_end
    # only victims with a full year of follow-up count (keeping early recurrences of the others
    # would bias the recent years towards re-victimization)
    v["revictimized_12m"] = revict.astype("boolean").where(followed, pd.NA)
    v["no_revictimization_12m"] = (~v["revictimized_12m"].astype("boolean"))
    v["identified_30d"] = (v["identified_at"] - v["began_at"]) <= pd.Timedelta(days=30)
    sv = cd.services
    _require(sv, "services", ["service_id", "child_id", "referred_at", "started_at", "completed"])
    sref = sv[["child_id", "referred_at"]].assign(child_id=sv["child_id"].astype(str))
    sref = sref.rename(columns={"referred_at": "ref"}).assign(key=lambda d: d["ref"])
    sref = sref.sort_values("key")
    first_ref = pd.merge_asof(vv[["key", "child_id", "episode_id"]], sref, on="key",
                              by="child_id", direction="forward")
    first_ref = first_ref.set_index("episode_id")["ref"]
    ref = v["episode_id"].map(first_ref)
    referred = ref.notna() & (ref <= v["identified_at"] + pd.Timedelta(days=referral_days))
    # victims identified in the last referral_days of the data cannot be judged yet
    judged = v["identified_at"] + pd.Timedelta(days=referral_days) <= study_end
    v["referred_30d"] = referred.astype("boolean").where(judged, pd.NA)
    v["date"] = v["identified_at"]
    frames["victims"] = v.reset_index(drop=True)

    # services
    if region is not None:
        ids = cd.children.loc[cd.children["region"] == region, "child_id"].astype(str)
        sv = sv[sv["child_id"].astype(str).isin(ids)]
    frames["services"] = pd.DataFrame({
        "date": sv["referred_at"].to_numpy(),
        "child_id": sv["child_id"].astype(str).to_numpy(),
        "service": sv["service"].astype("object").to_numpy() if "service" in sv else None,
        "started": sv["started_at"].notna().to_numpy(),
        "completed_bool": sv["completed"].astype("boolean").to_numpy(),
    })

    # trainings and attendance
    tr = cd.trainings
    _require(tr, "trainings", ["session_id", "date", "curriculum", "audience", "region",
                               "attendees"])
    if region is not None:
        tr = tr[tr["region"] == region]
    trf = pd.DataFrame({
        "date": tr["date"].to_numpy(),
        "session_id": tr["session_id"].astype(str).to_numpy(),
        "curriculum": tr["curriculum"].astype("object").to_numpy(),
        "audience": tr["audience"].astype("object").to_numpy(),
        "attendees": pd.to_numeric(tr["attendees"], errors="coerce").astype(float).to_numpy(),
        "hours": pd.to_numeric(tr.get("hours"), errors="coerce").astype(float).to_numpy()
        if "hours" in tr else np.nan,
    })
    frames["trainings"] = trf
    at = cd.training_attendance
    _require(at, "training_attendance", ["session_id", "attendee_id", "pre_score", "post_score"])
    sid = at["session_id"].astype(str)
    sessions = pd.Index(trf["session_id"])
    session_cols = ["date", "curriculum", "audience"]
    if sessions.is_unique:
        # each attendee row matches at most one session: the inner merge is a look-up that keeps
        # the matched rows in their order
        pos = sessions.get_indexer(sid)
        keep = pos >= 0
        at, sid, pos = at[keep], sid[keep], pos[keep]
        sess = {c: trf[c].to_numpy()[pos] for c in session_cols}
    else:
        at = at.assign(session_id=sid).merge(trf[["session_id", *session_cols]],
                                             on="session_id", how="inner")
        sid = at["session_id"]
        sess = {c: at[c].to_numpy() for c in session_cols}
    pre = pd.to_numeric(at["pre_score"], errors="coerce").astype(float).to_numpy()
    post = pd.to_numeric(at["post_score"], errors="coerce").astype(float).to_numpy()
    gain = post - pre
    frames["attendance"] = pd.DataFrame({
        "date": sess["date"],
        "session_id": sid.to_numpy(),
        "curriculum": sess["curriculum"],
        "audience": sess["audience"],
        "role": at["role"].astype("object").to_numpy() if "role" in at else None,
        "tested": ~np.isnan(pre) & ~np.isnan(post),
        "passed": _yes_no(post >= pass_mark, ~np.isnan(post)),
        "gain": gain,
        "gained_10": _yes_no(gain >= 10, ~np.isnan(gain)),
    })
    return frames


def _yes_no(flag: np.ndarray, known: np.ndarray) -> np.ndarray:
    """What a nullable boolean column's ``to_numpy()`` gives, built without one: booleans when
    every value is known, else True/False objects with ``pd.NA`` where not ``known``."""
    if known.all():
        return flag
    out = flag.astype(object)
    out[~known] = pd.NA
    return out


# --------------------------------------------------------------------------------------------
# computing one measure
# --------------------------------------------------------------------------------------------
def _check_column(m: Measure, frame: pd.DataFrame) -> None:
    if m.column and m.column not in frame.columns:
        raise RBAInputError(f"measure {m.key!r}: column {m.column!r} not in frame {m.frame!r} "
                            f"(columns: {list(frame.columns)})")


def _select(m: Measure, frame: pd.DataFrame) -> pd.DataFrame:
    _check_column(m, frame)
    if m.where:
        try:
            frame = frame.query(m.where, engine="python")
        except Exception as exc:
            raise RBAInputError(f"measure {m.key!r}: filter {m.where!r} failed on frame "
                                f"{m.frame!r}: {exc}") from exc
    return frame


class _Rows:
    """The rows some measures are computed on (a prepared frame after a ``where`` filter) and
    what every measure on them needs: which rows fall in the reporting period and in the baseline
    years, and the position of each row's year in the yearly series (-1 outside it)."""

    def __init__(self, f: pd.DataFrame, windows, years: list[int]):
        self.frame = f
        d = f["date"]
        if isinstance(d.dtype, np.dtype) and d.dtype.kind == "M":  # plain numpy datetimes
            dn = d.to_numpy()
            self.in_window = [(dn >= lo.to_datetime64()) & (dn <= hi.to_datetime64())
                              for lo, hi in windows]  # NaT compares False
            yr = np.where(np.isnat(dn), np.nan,
                          dn.astype("datetime64[Y]").astype(np.int64) + 1970.0)
        else:
            self.in_window = [((d >= lo) & (d <= hi)).to_numpy(dtype=bool) for lo, hi in windows]
            yr = d.dt.year.to_numpy(dtype=float, na_value=np.nan)
        yr = yr - years[0]
        inside = (yr >= 0) & (yr < len(years))  # NaN (no date) is outside
        self.year_code = np.where(inside, yr, -1).astype(np.int64)


def _contributions(m: Measure, f: pd.DataFrame):
    """What each row adds to measure ``m`` (computed once per measure, then summed by window and
    by year): ``(x, ok)``. count: nothing; sum: the column as floats, missing = 0; nunique: the
    column; share / mean: the column as floats (NaN = missing) and ``ok`` = not missing."""
    if m.kind == "count":
        return None, None
    col = f[m.column]
    if m.kind == "sum":
        return pd.to_numeric(col, errors="coerce").astype(float).fillna(0.0).to_numpy(), None
    if m.kind == "nunique":
        return col, None
    if _plain_numbers(col):  # yes/no or numbers: converted directly, missing -> NaN
        x = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        x = pd.to_numeric(col.astype("object").where(col.notna(), np.nan), errors="coerce")
        x = x.astype(float).to_numpy()
    return x, ~np.isnan(x)


def _plain_numbers(col: pd.Series) -> bool:
    """True when ``col`` holds booleans or real numbers (numpy or nullable dtypes), or is an
    object column of booleans and missing values (as the prepared frames' yes/no outcomes are):
    converting it to floats directly gives what ``pd.to_numeric(errors="coerce")`` gives."""
    t = col.dtype
    if pd.api.types.is_bool_dtype(t) or (pd.api.types.is_numeric_dtype(t)
                                         and not pd.api.types.is_complex_dtype(t)):
        return True
    return t == object and pd.api.types.infer_dtype(col, skipna=True) == "boolean"


def _num_den(m: Measure, x, ok, rows: np.ndarray):
    """Numerator and denominator over the rows marked in ``rows``."""
    if m.kind == "count":
        return int(rows.sum()), None
    if m.kind == "sum":
        return np.sum(x[rows]), None
    if m.kind == "nunique":
        return x[rows].nunique(), None
    sel = rows & ok
    return float(np.sum(x[sel])), int(sel.sum())


def _window_value(m: Measure, x, ok, rows: np.ndarray, lo: pd.Timestamp, hi: pd.Timestamp):
    num, den = _num_den(m, x, ok, rows)
    if m.is_rate:
        return (num / den if den else np.nan), float(num), float(den)
    years = ((hi - lo) + pd.Timedelta(1, "ns")) / pd.Timedelta(days=365.25)
    # whole calendar years count as exactly one year each
    if lo.month == 1 and lo.day == 1 and hi.month == 12 and hi.day == 31:
        years = hi.year - lo.year + 1
    return float(num) / years, float(num), float(years)


def _sum_by_year(code: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """Sum of ``v`` per year code 0..n-1.

    Whole numbers (every count and yes/no column) add up exactly in any order, so np.bincount
    gives exactly what pandas' compensated groupby sum gives; other values go through that
    groupby sum, as the yearly series always has.
    """
    if np.isfinite(v).all() and (v == np.floor(v)).all() and np.abs(v).sum() < 2.0 ** 53:
        return np.bincount(code, weights=v, minlength=n)
    return pd.Series(v).groupby(code).sum().reindex(range(n), fill_value=0.0).to_numpy(float)


def _annual(m: Measure, x, ok, year_code: np.ndarray, years: list[int]) -> dict:
    """The yearly series of ``m`` (columns of :attr:`ScorecardResult.annual`, as arrays)."""
    n = len(years)
    inside = year_code >= 0
    code = year_code[inside]
    den = np.ones(n)
    if m.kind == "count":
        num = np.bincount(code, minlength=n).astype(float)
    elif m.kind == "nunique":
        num = (x[inside].groupby(code).nunique().reindex(range(n), fill_value=0)
               .to_numpy(float))
    elif m.kind == "sum":
        num = _sum_by_year(code, x[inside], n)
    else:  # share / mean: missing values add 0 to the numerator and nothing to the denominator
        num = _sum_by_year(code, np.where(ok, x, 0.0)[inside], n)
        den = np.bincount(code[ok[inside]], minlength=n).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.where(den > 0, num / den, np.nan) if m.is_rate else num
    return {"measure": m.key, "year": np.asarray(years, dtype=np.int64), "numerator": num,
            "denominator": den, "value": val}


def _annual_table(series: list[dict]) -> pd.DataFrame:
    """The yearly series of all measures, stacked in one table."""
    cols = {c: np.concatenate([a[c] for a in series])
            for c in ("year", "numerator", "denominator", "value")}
    keys = np.array([a["measure"] for a in series], dtype=object)
    return pd.DataFrame({"measure": np.repeat(keys, [len(a["year"]) for a in series]), **cols})


@functools.lru_cache(maxsize=64)
def _t_quantile(p: float, dfree: int) -> float:
    return stats.t.ppf(p, dfree)


def _forecast(annual: pd.DataFrame, base_years, report_years, level: float = 0.95):
    """Linear trend on baseline years → mean forecast over reporting years with a PI."""
    yrs = np.asarray(annual["year"])
    vals = np.asarray(annual["value"], dtype=float)
    b = np.isin(yrs, base_years) & ~np.isnan(vals)
    k = len(report_years)
    if b.sum() < 3 or k == 0:
        return np.nan, np.nan, np.nan, None
    x = yrs[b].astype(float)
    y = vals[b]
    X = np.column_stack([np.ones_like(x), x - x.mean()])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    dfree = len(y) - 2
    s2 = resid @ resid / dfree if dfree > 0 else 0.0
    XtXi = np.linalg.inv(X.T @ X)
    a = np.array([1.0, np.mean(np.asarray(report_years, float)) - x.mean()])
    mean = float(a @ beta)
    se = float(np.sqrt(a @ XtXi @ a * s2 + s2 / k))
    q = _t_quantile(0.5 + level / 2, dfree) if dfree > 0 else np.inf
    line = (float(beta[0] - beta[1] * x.mean()), float(beta[1]), float(x.mean()), s2, XtXi,
            dfree)
    return mean, mean - q * se, mean + q * se, line


def _verdict(value, lo, hi, polarity) -> str:
    if np.isnan(value):
        return "no data"
    if np.isnan(lo):
        return "baseline too short to forecast"
    better_hi = polarity == "higher"
    if value > hi:
        return "curve turned: better than forecast" if better_hi else "worse than forecast"
    if value < lo:
        return "worse than forecast" if better_hi else "curve turned: better than forecast"
    return "on the baseline trend"


# --------------------------------------------------------------------------------------------
@dataclass
class ScorecardResult:
    """An RBA scorecard (see :func:`scorecard`).

    Attributes
    ----------
    summary : DataFrame
        One row per measure, ordered by strategy and RBA question: strategy, question, measure,
        label, unit, polarity, value, baseline_value, change, pct_change, target, target_met,
        forecast, forecast_lower, forecast_upper, verdict, numerator, denominator.
    annual : DataFrame
        The yearly series of every measure: measure, year, numerator, denominator, value.
    """

    summary: pd.DataFrame
    annual: pd.DataFrame
    measures: list[Measure]
    start: pd.Timestamp
    end: pd.Timestamp
    baseline: tuple[int, int]
    region: str | None
    trend_lines: dict[str, Any] = field(default_factory=dict, repr=False)

    def row(self, key: str) -> pd.Series:
        s = self.summary.set_index("measure")
        if key not in s.index:
            raise KeyError(f"no measure {key!r}; measures: {list(s.index)}")
        return s.loc[key]

    def style(self):
        """A pandas Styler of the scorecard (shares as %, verdicts coloured)."""
        cols = ["strategy", "question", "label", "value", "baseline_value", "change", "target",
                "forecast", "forecast_lower", "forecast_upper", "verdict"]
        d = self.summary[cols + ["unit"]].copy()
        share = d["unit"].str.startswith("share")
        disp = d[cols].astype(object)
        for c in ("value", "baseline_value", "target", "forecast", "forecast_lower",
                  "forecast_upper", "change"):
            vals = d[c].astype(float)
            disp[c] = [("—" if np.isnan(v) else
                        (f"{v:+.0%}" if c == "change" else f"{v:.0%}") if sh else
                        (f"{v:+.1f}" if c == "change" else f"{v:,.1f}"))
                       for v, sh in zip(vals, share)]
        disp = disp.rename(columns={"label": "measure", "baseline_value": "baseline",
                                    "forecast_lower": "forecast low",
                                    "forecast_upper": "forecast high"})
        colours = {"curve turned: better than forecast": "background-color: #cfe8d5",
                   "worse than forecast": "background-color: #f6d5c3",
                   "on the baseline trend": "background-color: #eeeeee"}
        title = (f"RBA scorecard {self.start.date()} to {self.end.date()} vs baseline "
                 f"{self.baseline[0]}–{self.baseline[1]}" + (f" — {self.region}" if self.region
                                                            else " — statewide"))
        sty = disp.style.hide(axis="index").set_caption(title)
        sty = sty.map(lambda v: colours.get(v, ""), subset=["verdict"])
        return sty

    def plot(self, measure: str | None = None, ax=None):
        """Trend chart of one measure: yearly values, baseline trend with its 95% prediction band
        projected over the reporting years, the reporting-period value and the target."""
        import matplotlib.pyplot as plt

        _style()
        key = measure or self.summary["measure"].iloc[0]
        r = self.row(key)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.2))
        a = self.annual[self.annual.measure == key]
        share = str(r["unit"]).startswith("share")
        ax.plot(a["year"], a["value"], "o-", color="#0072B2", label="yearly value")
        ry = list(range(self.start.year, self.end.year + 1))
        ax.axvspan(ry[0] - 0.5, ry[-1] + 0.5, color="#56B4E9", alpha=0.12,
                   label="reporting period")
        line = self.trend_lines.get(key)
        if line is not None:
            b0, b1, xm, s2, XtXi, dfree = line
            xs = np.arange(self.baseline[0], ry[-1] + 1, dtype=float)
            X = np.column_stack([np.ones_like(xs), xs - xm])
            fit = b0 + b1 * xs
            se = np.sqrt(np.einsum("ij,jk,ik->i", X, XtXi, X) * s2 + s2)
            q = stats.t.ppf(0.975, dfree)
            lo_b, hi_b = fit - q * se, fit + q * se
            # a share cannot leave [0, 1] and a count cannot be negative
            lo_b = np.clip(lo_b, 0, 1 if share else None)
            hi_b = np.clip(hi_b, 0, 1 if share else None)
            ax.plot(xs, fit, "--", color="#D55E00", label="baseline trend")
            ax.fill_between(xs, lo_b, hi_b, color="#D55E00", alpha=0.12,
                            label="95% prediction band (one year)")
        ax.hlines(r["value"], ry[0] - 0.4, ry[-1] + 0.4, color="black", lw=2,
                  label="reporting-period value")
        if not np.isnan(r["target"]):
            ax.axhline(r["target"], color="#009E73", ls=":", lw=1.5, label="target")
        if share:
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.set_title(textwrap.fill(str(r["label"]), 48), fontsize=9)
        ax.set_xlabel("year")
        ax.set_ylabel(textwrap.fill(str(r["unit"]), 26), fontsize=8)
        return ax

    def plot_all(self, ncols: int = 3):
        """A grid of trend charts, one per measure (returns the Figure)."""
        import matplotlib.pyplot as plt

        _style()
        keys = list(self.summary["measure"])
        nrows = int(np.ceil(len(keys) / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.4 * nrows), squeeze=False)
        for ax, k in zip(axes.ravel(), keys):
            self.plot(k, ax=ax)
        for ax in axes.ravel()[len(keys):]:
            ax.set_visible(False)
        h, lab = axes[0, 0].get_legend_handles_labels()
        fig.legend(h, lab, loc="lower center", ncol=len(lab), frameon=False)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        return fig


def _style():
    try:
        from dmst_eval import plots

        plots.apply_style()
    except Exception:  # pragma: no cover
        pass


def _year_bounds(y0: int, y1: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(f"{y0}-01-01"), pd.Timestamp(f"{y1}-12-31 23:59:59.999999999")


def scorecard(cd, start=None, end=None, region: str | None = None, baseline=None,
              targets: str | Path | dict | None = None, measures: str | Path | list | None = None,
              pass_mark: float = DEFAULT_PASS_MARK) -> ScorecardResult:
    """Compute the RBA scorecard.

    Parameters
    ----------
    cd : CaseData
    start, end : date-like, optional
        Reporting period (inclusive). Default: the last three calendar years of the data
        (``end`` = ``cd.meta["study_end"]``).
    region : str, optional
        One DCF region (see the module notes for which region each measure uses).
    baseline : (int, int), optional
        First and last baseline year (inclusive). Default: the five years before ``start``
        (not before the study start; if the reporting period starts with the data, its first
        year, and there is no forecast).
    targets : path, dict or None
        Targets by measure key (default: the shipped ``rba_targets.yaml``).
    measures : path or list of Measure, optional
        Measure registry (default: the shipped ``rba_measures.yaml``).
    pass_mark : float
        Post-test pass mark (points).

    Returns
    -------
    ScorecardResult
        ``.summary`` (tidy, one row per measure), ``.annual``, ``.style()``, ``.plot(measure)``.

    Notes
    -----
    *value* is computed over the reporting period: counts as an annual average, shares and means
    pooled. *baseline_value* is the same over the baseline years. The turn-the-curve forecast is
    an ordinary-least-squares line through the yearly baseline values (at least three), projected
    to the reporting years; its 95% prediction interval is for the mean of the reporting years
    (parameter uncertainty plus year-to-year scatter). A reporting value outside the interval in
    the better direction is reported as "curve turned". Shares whose yearly denominators are small
    scatter a lot and so have wide intervals — that is honest, not a defect.

    Examples
    --------
    >>> from dmst_eval import rba
    >>> sorted(set(rba.measures()["strategy"])) == sorted(rba.STRATEGIES)
    True
    """
    registry = (load_measures(measures) if not isinstance(measures, list) else
                _parse_measures([m.__dict__ if isinstance(m, Measure) else m for m in measures],
                                "measures"))
    tg = load_targets(targets)
    _check_region(region)
    study_start = pd.Timestamp(cd.meta["study_start"])
    e = pd.Timestamp(end) if end is not None else pd.Timestamp(cd.meta["study_end"])
    s = pd.Timestamp(start) if start is not None else pd.Timestamp(f"{e.year - 2}-01-01")
    if e < s:
        raise RBAInputError(f"end ({e.date()}) is before start ({s.date()})")
    if e == e.normalize():
        e = e + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    if baseline is None:
        b1 = s.year - 1
        b0 = max(study_start.year, b1 - 4)
        if b1 < b0:  # the reporting period starts with the data: no earlier years
            b0 = b1 = s.year
        baseline = (b0, b1)
    try:
        b0, b1 = (int(pd.Timestamp(str(x)).year) if not isinstance(x, (int, np.integer))
                  else int(x) for x in baseline)
    except Exception:
        raise RBAInputError(f"baseline must be (first_year, last_year), got {baseline!r}") \
            from None
    if b1 < b0:
        raise RBAInputError(f"baseline last year {b1} is before first year {b0}")
    frames = prepare_frames(cd, region, pass_mark=pass_mark)
    years = list(range(min(b0, s.year), e.year + 1))
    base_years = list(range(b0, b1 + 1))
    report_years = list(range(s.year, e.year + 1))
    blo, bhi = _year_bounds(b0, b1)
    rows, annual, lines = [], [], {}
    selected: dict[tuple, _Rows] = {}  # one filter (and its date masks) per (frame, where)
    for m in registry:
        _check_column(m, frames[m.frame])
        key = (m.frame, m.where)
        if key not in selected:
            selected[key] = _Rows(_select(m, frames[m.frame]), [(s, e), (blo, bhi)], years)
        r = selected[key]
        x, ok = _contributions(m, r.frame)
        val, num, den = _window_value(m, x, ok, r.in_window[0], s, e)
        bval, _, _ = _window_value(m, x, ok, r.in_window[1], blo, bhi)
        a = _annual(m, x, ok, r.year_code, years)
        annual.append(a)
        fc, flo, fhi, line = _forecast(a, base_years, report_years)
        if line is not None:
            lines[m.key] = line
        tgt = tg.get(m.key, np.nan)
        met = (np.nan if np.isnan(tgt) or np.isnan(val) else
               bool(val >= tgt) if m.polarity == "higher" else bool(val <= tgt))
        rows.append(dict(strategy=m.strategy, question=m.question, measure=m.key,
                         label=m.label, unit=m.unit, polarity=m.polarity, value=val,
                         baseline_value=bval, change=val - bval,
                         pct_change=(val - bval) / bval if bval else np.nan,
                         target=tgt, target_met=met, forecast=fc, forecast_lower=flo,
                         forecast_upper=fhi, verdict=_verdict(val, flo, fhi, m.polarity),
                         numerator=num, denominator=den))
    summ = pd.DataFrame(rows)
    summ["_s"] = summ["strategy"].map({k: i for i, k in enumerate(STRATEGIES)})
    summ["_q"] = summ["question"].map({k: i for i, k in enumerate(QUESTIONS)})
    summ = summ.sort_values(["_s", "_q"], kind="stable").drop(columns=["_s", "_q"])
    return ScorecardResult(summary=summ.reset_index(drop=True),
                           annual=_annual_table(annual), measures=registry,
                           start=s, end=e, baseline=(b0, b1), region=region, trend_lines=lines)
