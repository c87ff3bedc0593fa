"""Results-Based Accountability (RBA) scorecard.

The agency's plan groups its work in three strategies — **Identification & Response**,
**Awareness & Education**, **Restore & Recovery** — and RBA asks three questions of each:
*How much did we do? How well did we do it? Is anyone better off?* :func:`scorecard` computes
every performance measure of the registry (``rba_measures.yaml``, shipped with the package: one
entry per measure) for a reporting period and a baseline period, and gives two verdicts: against
the target (``rba_targets.yaml``) — met or not met, and by how much — and against the
**turn-the-curve** forecast: the baseline's trend (five or more years) or level, projected over
the reporting years with a 95% prediction interval. A value outside that interval turned the
curve, for the better or for the worse according to the measure's polarity. Formatting rules
shared by the scorecard, the brief and the notebooks: :func:`format_value`, :func:`format_count`,
:func:`describe_target`.

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

import numpy as np
import pandas as pd
from scipy import stats

from dmst_eval import schema
from dmst_eval.errors import InputError, require_columns
from dmst_eval.tracking import confirmed_episodes

__all__ = ["STRATEGIES", "QUESTIONS", "FRAMES", "TARGET_VERDICTS", "CURVE_VERDICTS", "Measure",
           "ScorecardResult", "RBAInputError", "load_measures", "load_targets", "measures",
           "prepare_frames", "scorecard", "format_value", "format_count", "describe_target"]

STRATEGIES = ("Identification & Response", "Awareness & Education", "Restore & Recovery")
QUESTIONS = ("How much did we do?", "How well did we do it?", "Is anyone better off?")
KINDS = ("count", "sum", "nunique", "share", "mean")
#: Prepared frames measures can use, with their date column.
FRAMES = {"reports": "date", "victims": "date", "services": "date", "trainings": "date",
          "attendance": "date"}
#: Frames whose rows are people counted once per year: over a multi-year window each person
#: counts once (their first row in the window), so a period's denominator is a number of
#: children, not of child-years.
_PERSON = {"victims": "child_id"}
DEFAULT_PASS_MARK = 70.0
#: Verdict of the reporting-period value against the measure's target.
TARGET_VERDICTS = ("met", "not met", "no target", "no data")
#: Verdict of the reporting-period value against the baseline forecast ("the curve").
CURVE_VERDICTS = ("turned the curve for the better", "turned the curve for the worse",
                  "no change from the baseline forecast", "no forecast (baseline too short)",
                  "no data")


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
    #: the story behind the curve, the partners with a role to play and what works (written by
    #: the program; optional — the brief marks them "to be written by the program" when absent)
    story: str | None = None
    partners: str | None = None
    what_works: str | None = None

    @property
    def is_count(self) -> bool:
        """Counts, sums and distinct counts (whole numbers, reported per year)."""
        return self.kind in ("count", "sum", "nunique")

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
        for fld in ("story", "partners", "what_works"):
            v = e.get(fld)
            if isinstance(v, list):
                e = {**e, fld: "; ".join(str(x) for x in v)}
            elif v is not None and not isinstance(v, str):
                raise RBAInputError(f"{where}: {fld} must be text or a list of text")
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

    def __init__(self, f: pd.DataFrame, windows, years: list[int], person: str | None = None):
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
        if person is not None and person in f.columns:
            # a person counts once per window: their earliest row in it
            order = np.argsort(d.to_numpy(), kind="stable")
            pid = f[person].to_numpy()[order]
            for i, w in enumerate(self.in_window):
                ws = w[order]
                first = ~pd.Series(pid[ws]).duplicated().to_numpy()
                keep = np.zeros(len(f), dtype=bool)
                keep[order[np.flatnonzero(ws)[first]]] = True
                self.in_window[i] = keep


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


def _period_years(lo: pd.Timestamp, hi: pd.Timestamp) -> float:
    """Length of a window in years; whole calendar years count as exactly one year each."""
    if lo.month == 1 and lo.day == 1 and hi.month == 12 and hi.day == 31:
        return float(hi.year - lo.year + 1)
    return ((hi - lo) + pd.Timedelta(1, "ns")) / pd.Timedelta(days=365.25)


def _window_value(m: Measure, x, ok, rows: np.ndarray, lo: pd.Timestamp, hi: pd.Timestamp):
    num, den = _num_den(m, x, ok, rows)
    if m.is_rate:
        return (num / den if den else np.nan), float(num), float(den)
    years = _period_years(lo, hi)
    return float(num) / years, float(num), float(years)


def _value_interval(m: Measure, x, ok, rows, num: float, den: float, level: float):
    """Confidence interval of a window value: exact Poisson (Garwood) for counts per year,
    Wilson for shares, Student t for means."""
    a = 1 - level
    if m.is_count:
        lo = stats.chi2.ppf(a / 2, 2 * num) / 2 if num > 0 else 0.0
        hi = stats.chi2.ppf(1 - a / 2, 2 * num + 2) / 2
        return lo / den, hi / den
    if not den:
        return np.nan, np.nan
    if m.kind == "share":
        from statsmodels.stats.proportion import proportion_confint

        lo, hi = proportion_confint(num, den, alpha=a, method="wilson")
        return float(lo), float(hi)
    v = x[rows & ok]
    if len(v) < 2:
        return np.nan, np.nan
    half = _t_quantile(1 - a / 2, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v))
    return num / den - half, num / den + half


def _n_of(m: Measure, num: float, den: float) -> tuple[int, int | None]:
    """What the brief shows as n / of: counts — the period's total (no "of"); shares — the
    yes-count of the denominator; means — the number of values averaged (no "of")."""
    if m.is_count:
        return int(round(num)), None
    if m.kind == "share":
        return int(round(num)), int(round(den))
    return int(round(den)), None


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


def _fit_trend(kind: str, t: np.ndarray, num: np.ndarray, den: np.ndarray, s2: float,
               slope: bool = True):
    """Fit the baseline trend; ``(beta, cov, phi)`` or None when it cannot be fitted.
    Without ``slope`` the model is the baseline's level alone (beta has one element).

    Counts: Poisson log-linear; shares: binomial logit (0.5 added to every cell when the baseline
    is all yes or all no); means: normal with weights = values per year and the pooled
    within-year variance ``s2``. ``phi`` = Pearson dispersion over its degrees of freedom, at
    least 1 (year-to-year scatter larger than sampling alone widens the interval).
    """
    import warnings

    import statsmodels.api as sm

    X = np.column_stack([np.ones_like(t), t]) if slope else np.ones((len(t), 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "count":
            if num.sum() <= 0:
                return None
            res = sm.GLM(num, X, family=sm.families.Poisson()).fit()
            scale = 1.0
        elif kind == "share":
            yes, no = num, den - num
            if yes.sum() == 0 or no.sum() == 0:
                yes, no = yes + 0.5, no + 0.5
            res = sm.GLM(np.column_stack([yes, no]), X, family=sm.families.Binomial()).fit()
            scale = 1.0
        else:
            if not np.isfinite(s2) or s2 <= 0:
                return None
            res = sm.GLM(num / den, X, family=sm.families.Gaussian(),
                         var_weights=den).fit(scale=s2)
            scale = s2
    beta = np.asarray(res.params, float)
    cov = np.asarray(res.cov_params(), float)
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(cov))):
        return None
    dfree = len(t) - X.shape[1]
    phi = max(1.0, float(res.pearson_chi2) / scale / dfree) if dfree > 0 else 1.0
    return beta, cov, phi


def _mu(kind: str, eta: np.ndarray):
    """Mean and its derivative with respect to the linear predictor."""
    if kind == "count":
        mu = np.exp(eta)
        return mu, mu
    if kind == "share":
        mu = 1 / (1 + np.exp(-eta))
        return mu, mu * (1 - mu)
    return eta, np.ones_like(eta)


def _forecast(kind: str, annual: dict, base_years, report_years, period_den: float,
              s2: float = np.nan, level: float = 0.95, min_trend_years: int = 5,
              base_window: tuple[float, float] | None = None):
    """Turn-the-curve forecast for the reporting period from the baseline years' trend.

    ``kind`` is "count" (counts per year), "share" or "mean". Returns ``(forecast, lower,
    upper, by_year)`` where ``by_year`` is a DataFrame (year, forecast, lower, upper: the
    one-year prediction band) for the sparkline, or NaNs and None without a forecast (fewer
    than three baseline years with data, or nothing to fit). With fewer than
    ``min_trend_years`` baseline years with data the forecast is the baseline's level (a slope
    fitted to three or four points and projected several years ahead swings wildly).

    The prediction interval of the period's value combines the uncertainty of the fitted trend
    (delta method) with the sampling variation of the period's own value — Poisson for counts,
    binomial for shares with the period's denominator, the within-year variance for means —
    both multiplied by the baseline's overdispersion ``phi``.
    """
    yrs = np.asarray(annual["year"])
    num = np.asarray(annual["numerator"], float)
    den = np.asarray(annual["denominator"], float)
    has = den > 0
    b = np.isin(yrs, base_years) & has
    r = np.isin(yrs, report_years)
    none = (np.nan, np.nan, np.nan, None)
    if b.sum() < 3 or not r.any():
        return none
    tm = yrs[b].mean()
    slope = b.sum() >= min_trend_years
    fit = _fit_trend(kind, yrs[b] - tm, num[b], den[b], s2, slope)
    if fit is None:
        return none
    beta, cov, phi = fit
    if not slope and base_window is not None:
        # the level is the baseline period's own value (victims counted once per period, as in
        # baseline_value), with its sampling variance on the link scale
        bnum, bden = base_window
        lvl = bnum / bden if bden else np.nan
        if kind == "count":
            ok = bnum > 0
            if ok:
                beta, cov = np.array([np.log(lvl)]), np.array([[1 / bnum]])
        elif kind == "share":
            ok = 0 < bnum < bden
            if ok:
                beta = np.array([np.log(lvl / (1 - lvl))])
                cov = np.array([[1 / (bden * lvl * (1 - lvl))]])
        elif bden > 0:
            beta, cov = np.array([lvl]), np.array([[s2 / bden]])
    z = stats.norm.ppf(0.5 + level / 2)
    X = np.column_stack([np.ones(len(yrs)), yrs - tm]) if slope else np.ones((len(yrs), 1))
    mu, dmu = _mu(kind, X @ beta)
    # weights of the reporting years in the period's value
    w = np.where(r, 1.0 if kind == "count" else den, 0.0)
    if w.sum() == 0:
        w = r.astype(float)
    w = w / w.sum()
    fc = float(w @ mu)
    grad = (w * dmu) @ X
    var_par = phi * float(grad @ cov @ grad)
    if kind == "count":
        var_obs = phi * float(w @ mu) / r.sum()
    elif kind == "share":
        var_obs = phi * float(w @ (mu * (1 - mu))) / period_den if period_den else np.nan
    else:
        var_obs = phi * s2 / period_den if period_den else np.nan
    half = z * np.sqrt(var_par + var_obs) if np.isfinite(var_obs) else np.nan
    # the one-year band
    gy = dmu[:, None] * X
    vp = phi * np.einsum("ij,jk,ik->i", gy, cov, gy)
    typical = den[b].mean()
    dy = np.where(has, den, typical)
    vo = phi * (mu if kind == "count" else mu * (1 - mu) / dy if kind == "share"
                else s2 / dy)
    hy = z * np.sqrt(vp + vo)
    lo_clip, hi_clip = 0.0, (1.0 if kind == "share" else np.inf)
    if kind == "mean":
        lo_clip = -np.inf
    by_year = pd.DataFrame({"year": yrs, "forecast": mu,
                            "lower": np.clip(mu - hy, lo_clip, hi_clip),
                            "upper": np.clip(mu + hy, lo_clip, hi_clip)})
    by_year = by_year[yrs >= min(base_years)].reset_index(drop=True)
    return (fc, float(np.clip(fc - half, lo_clip, hi_clip)),
            float(np.clip(fc + half, lo_clip, hi_clip)), by_year)


def _curve_verdict(value, lo, hi, polarity) -> str:
    if np.isnan(value):
        return "no data"
    if np.isnan(lo):
        return "no forecast (baseline too short)"
    better, worse = CURVE_VERDICTS[:2]
    if value > hi:
        return better if polarity == "higher" else worse
    if value < lo:
        return worse if polarity == "higher" else better
    return "no change from the baseline forecast"


def _target_verdict(value, target, polarity) -> tuple[str, float]:
    """``(verdict, gap)``; ``gap`` is how far the value is beyond the target in the better
    direction (negative: short of it)."""
    if np.isnan(target):
        return "no target", np.nan
    if np.isnan(value):
        return "no data", np.nan
    gap = value - target if polarity == "higher" else target - value
    return ("met" if gap >= 0 else "not met"), float(gap)


# --------------------------------------------------------------------------------------------
# formatting (one set of rules for the scorecard, the brief and the notebooks)
# --------------------------------------------------------------------------------------------
def _kind_of(m) -> str:
    kind = m.kind if isinstance(m, Measure) else str(m)
    return "count" if kind in ("count", "sum", "nunique") else kind


def format_value(value, measure, unit: str | None = None, signed: bool = False) -> str:
    """A measure's value as the scorecard shows it.

    Shares are whole percentages; counts per year whole numbers (one decimal below 10 when not
    whole, so a region's 0.3 per year does not read as 0); means one decimal with their unit.
    ``measure`` is a :class:`Measure` or a kind ("count", "sum", "nunique", "share", "mean").

    Examples
    --------
    >>> format_value(2483.0, "count"), format_value(7.0, "sum"), format_value(0.0, "count")
    ('2,483', '7', '0')
    >>> format_value(0.2648, "share"), format_value(11.309, "mean", "test points")
    ('26%', '11.3 test points')
    >>> format_value(-0.49, "share", signed=True)
    '−49 points'
    """
    kind = _kind_of(measure)
    if unit is None and isinstance(measure, Measure):
        unit = measure.unit
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if not np.isfinite(v):
        return "—"
    sign = ("+" if v > 0 else "−" if v < 0 else "") if signed else ("−" if v < 0 else "")
    a = abs(v)
    if kind == "share":
        if signed:
            return f"{sign}{a * 100:.0f} points"
        pct = round(a * 100)
        if pct == 0 and a > 0:
            return "<1%"
        if pct == 100 and a < 1:
            return ">99%"
        return f"{sign}{pct:.0f}%"
    if kind == "count":
        text = f"{a:,.0f}" if (a >= 10 or a == round(a)) else f"{a:.1f}"
        return sign + text
    text = f"{sign}{a:,.1f}"
    return f"{text} {unit}".strip() if unit else text


def format_count(n) -> str:
    """A count as an integer with thousands separators ('' when missing).

    Examples
    --------
    >>> format_count(2483.0), format_count(None)
    ('2,483', '')
    """
    try:
        v = float(n)
    except (TypeError, ValueError):
        return ""
    return "" if not np.isfinite(v) else f"{int(round(v)):,}"


def describe_target(row) -> str:
    """Plain words for the target verdict of a summary row ("not met: 49 points short")."""
    v = row["target_verdict"]
    if v not in ("met", "not met"):
        return v
    kind, unit = _kind_of(row["kind"]), row["unit"]
    gap = abs(float(row["target_gap"]))
    dist = format_value(gap, kind, "" if kind != "mean" else unit, signed=False)
    if kind == "share":
        dist = f"{gap * 100:.0f} points"
    if kind == "count":
        dist += " per year"
    if v == "met":
        return "met" if gap == 0 else f"met (by {dist})"
    return f"not met ({dist} short)"


# --------------------------------------------------------------------------------------------
@dataclass
class ScorecardResult:
    """An RBA scorecard (see :func:`scorecard`).

    Attributes
    ----------
    summary : DataFrame
        One row per measure, ordered by strategy and RBA question: strategy, question, measure,
        label, kind, unit, polarity, value, value_lower, value_upper, n, of, baseline_value,
        baseline_n, baseline_of, change, pct_change, target, target_verdict, target_gap, target_met, forecast,
        forecast_lower, forecast_upper, curve_verdict (also as ``verdict``), numerator,
        denominator, story, partners, what_works.
    annual : DataFrame
        The yearly series of every measure: measure, year, numerator, denominator, value.
    forecast_annual : DataFrame
        The baseline forecast by year with its one-year 95% prediction band: measure, year,
        forecast, lower, upper (measures with a forecast only).
    """

    summary: pd.DataFrame
    annual: pd.DataFrame
    measures: list[Measure]
    start: pd.Timestamp
    end: pd.Timestamp
    baseline: tuple[int, int]
    region: str | None
    forecast_annual: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    def row(self, key: str) -> pd.Series:
        s = self.summary.set_index("measure")
        if key not in s.index:
            raise KeyError(f"no measure {key!r}; measures: {list(s.index)}")
        return s.loc[key]

    @property
    def title(self) -> str:
        return (f"RBA scorecard {self.start.date()} to {self.end.date()}, baseline "
                f"{self.baseline[0]}–{self.baseline[1]}"
                + (f" — {self.region}" if self.region else " — statewide"))

    def table(self) -> pd.DataFrame:
        """The scorecard as text, one row per measure, formatted by :func:`format_value`."""
        s = self.summary
        rows = []
        for _, r in s.iterrows():
            k = r["kind"]
            ci = ("" if not np.isfinite(r["value_lower"]) else
                  f"{format_value(r['value_lower'], k, '')} to "
                  f"{format_value(r['value_upper'], k, '')}")
            fc = ("" if not np.isfinite(r["forecast"]) else
                  f"{format_value(r['forecast'], k, '')} ({format_value(r['forecast_lower'], k, '')}"
                  f" to {format_value(r['forecast_upper'], k, '')})")
            rows.append({"strategy": r["strategy"], "question": r["question"],
                         "measure": r["label"], "polarity": f"{r['polarity']} is better",
                         "value": format_value(r["value"], k, r["unit"]), "95% CI": ci,
                         "n": format_count(r["n"]), "of": format_count(r["of"]),
                         "baseline": format_value(r["baseline_value"], k, r["unit"]),
                         "target": format_value(r["target"], k, r["unit"]),
                         "against target": describe_target(r),
                         "forecast (95% PI)": fc, "against the curve": r["curve_verdict"]})
        return pd.DataFrame(rows)

    def style(self):
        """A pandas Styler of :meth:`table` (verdicts coloured in the house style)."""
        from dmst_eval import plots

        d = self.table()
        sty = d.style.hide(axis="index").set_caption(self.title)
        sty = sty.map(lambda v: f"background-color: {plots.VERDICT_COLORS.get(v, 'transparent')}",
                      subset=["against the curve"])
        sty = sty.map(lambda v: ("background-color: " + plots.VERDICT_COLORS[
            "met" if str(v).startswith("met") else "not met"]
            if str(v).startswith(("met", "not met")) else ""), subset=["against target"])
        return sty

    def plot(self, measure: str | None = None, ax=None):
        """Trend chart of one measure: yearly values, the baseline forecast with its one-year 95%
        prediction band, the reporting period shaded, its value, and the target; the Axes."""
        from dmst_eval import plots

        key = measure or self.summary["measure"].iloc[0]
        r = self.row(key)
        if ax is None:
            _, ax = plots.new_figure((6, 3.2))
        _trend_axes(ax, self, key, r)
        ax.set_title(textwrap.fill(str(r["label"]), 48), fontsize=9)
        ax.set_xlabel("year")
        ax.set_ylabel(textwrap.fill(str(r["unit"]), 26), fontsize=8)
        return ax

    def sparkline(self, measure: str, size: tuple[float, float] = (2.4, 0.95),
                  title: str | None = None, year_labels: bool = True):
        """A word-sized trend chart of one measure, as inline SVG
        (:class:`dmst_eval.sparkline.Sparkline`): actual by year (missing years left out),
        the baseline forecast with its band, the target line and the reporting period shaded.
        :meth:`plot` draws the full chart with matplotlib. ``title`` is its accessible name
        (default: the measure's label); ``year_labels=False`` leaves out the first and last
        year under the line (a table states them once for a column of sparklines).
        """
        from dmst_eval.sparkline import sparkline

        r = self.row(measure)
        a = self.annual[self.annual["measure"] == measure]
        f = self.forecast_annual
        f = f[f["measure"] == measure] if len(f) else f
        kw = {}
        if len(f):
            kw = dict(forecast=f["forecast"], lower=f["lower"], upper=f["upper"],
                      forecast_years=f["year"])
        target = float(r["target"]) if np.isfinite(r["target"]) else None
        return sparkline(a["year"], pd.to_numeric(a["value"], errors="coerce"), target=target,
                         shade=(self.start.year, self.end.year), size=size,
                         title=str(r["label"]) if title is None else title,
                         year_labels=year_labels, **kw)

    def plot_all(self, ncols: int = 3):
        """A grid of trend charts, one per measure (returns the Figure)."""
        from dmst_eval import plots

        keys = list(self.summary["measure"])
        nrows = int(np.ceil(len(keys) / ncols))
        fig, axes = plots.new_figure((5 * ncols, 3.4 * nrows), nrows, ncols, squeeze=False,
                                     layout=None)
        for ax, k in zip(axes.ravel(), keys):
            self.plot(k, ax=ax)
        for ax in axes.ravel()[len(keys):]:
            ax.set_visible(False)
        h, lab = axes[0, 0].get_legend_handles_labels()
        fig.legend(h, lab, loc="lower center", ncol=len(lab), frameon=False)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        return fig


def _trend_axes(ax, sc: ScorecardResult, key: str, r: pd.Series) -> None:
    """Draw one measure's full trend chart on ``ax`` (:meth:`ScorecardResult.plot`)."""
    import matplotlib.pyplot as plt

    from dmst_eval import plots

    c = plots.ROLE_COLORS
    a = sc.annual[sc.annual["measure"] == key]
    ry = (sc.start.year, sc.end.year)
    ax.axvspan(ry[0] - 0.5, ry[1] + 0.5, color=c["reporting"], alpha=0.15, lw=0,
               label="reporting period")
    f = sc.forecast_annual
    if len(f):
        f = f[f["measure"] == key]
        if len(f):
            ax.fill_between(f["year"], f["lower"], f["upper"], color=c["forecast"], alpha=0.15,
                            lw=0, label="95% prediction band (one year)")
            ax.plot(f["year"], f["forecast"], "--", color=c["forecast"], lw=1.6,
                    label="baseline forecast")
    ax.plot(a["year"], a["value"], "o-", color=c["actual"], ms=4, lw=1.8, label="actual")
    if np.isfinite(r["target"]):
        ax.axhline(r["target"], color=c["target"], ls=":", lw=1.3, label="target")
    if r["kind"] == "share":
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.hlines(r["value"], ry[0] - 0.4, ry[1] + 0.4, color=c["value"], lw=2,
              label="reporting-period value")


def _year_bounds(y0: int, y1: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    return pd.Timestamp(f"{y0}-01-01"), pd.Timestamp(f"{y1}-12-31 23:59:59.999999999")


def _years(x, what: str) -> tuple[int, int]:
    try:
        b0, b1 = (int(pd.Timestamp(str(v)).year) if not isinstance(v, (int, np.integer))
                  else int(v) for v in x)
    except Exception:
        raise RBAInputError(f"{what} must be (first_year, last_year) or (first date, last date),"
                            f" got {x!r}") from None
    if b1 < b0:
        raise RBAInputError(f"{what}: last year {b1} is before first year {b0}")
    return b0, b1


def scorecard(cd, start=None, end=None, region: str | None = None, baseline=None,
              targets: str | Path | dict | None = None, measures: str | Path | list | None = None,
              pass_mark: float = DEFAULT_PASS_MARK, level: float = 0.95,
              forecast: bool = True) -> ScorecardResult:
    """Compute the RBA scorecard.

    Parameters
    ----------
    cd : CaseData
    start, end : date-like, optional
        Reporting period (inclusive). Default: the last three calendar years of the data
        (``end`` = ``cd.meta["study_end"]``).
    region : str, optional
        One DCF region (see the module notes for which region each measure uses).
    baseline : (first, last), optional
        The baseline period, as years or dates (whole calendar years are used, both inclusive).
        A brief passes its comparison period. Default: the three years before ``start`` (not
        before the study start; if the reporting period starts with the data, its first year,
        and there is no forecast).
    targets : path, dict or None
        Targets by measure key (default: the shipped ``rba_targets.yaml``).
    measures : path or list of Measure, optional
        Measure registry (default: the shipped ``rba_measures.yaml``).
    pass_mark : float
        Post-test pass mark (points).
    level : float
        Confidence level of the value's interval and of the forecast's prediction interval.
    forecast : bool
        ``False`` skips the baseline forecasts and the curve verdicts (``forecast*`` NaN,
        ``curve_verdict`` "not computed"): the counts alone, for the disclosure ledger.

    Returns
    -------
    ScorecardResult
        ``.summary`` (tidy, one row per measure), ``.annual``, ``.forecast_annual``,
        ``.table()``, ``.style()``, ``.plot(measure)``, ``.sparkline(measure)``.

    Notes
    -----
    *value* is computed over the reporting period: counts as an annual average, shares and means
    pooled; a victim counts once in a period however many years she was identified in.
    *baseline_value* is the same over the baseline years.

    Two verdicts. **Against the target**: met / not met, and by how much (``target_gap``, in
    the measure's unit, positive = beyond the target in the better direction). **Against the
    curve**: the trend of the baseline years — Poisson log-linear for counts, binomial logit for
    shares, weighted linear for means, fitted to the yearly values (at least three years with
    data) — is projected to the reporting years. Its 95% prediction interval for the period's
    value combines the trend's uncertainty with the value's own sampling variation (both
    scaled by the baseline's overdispersion). A value above or below the interval "turned the
    curve" for the better or for the worse according to the measure's polarity; inside it,
    "no change from the baseline forecast".

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
    if not 0 < level < 1:
        raise RBAInputError(f"level must be between 0 and 1, got {level!r}")
    study_start = pd.Timestamp(cd.meta["study_start"])
    e = pd.Timestamp(end) if end is not None else pd.Timestamp(cd.meta["study_end"])
    s = pd.Timestamp(start) if start is not None else pd.Timestamp(f"{e.year - 2}-01-01")
    if e < s:
        raise RBAInputError(f"end ({e.date()}) is before start ({s.date()})")
    if e == e.normalize():
        e = e + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    if baseline is None:
        b1 = s.year - 1
        b0 = max(study_start.year, b1 - 2)
        if b1 < b0:  # the reporting period starts with the data: no earlier years
            b0 = b1 = s.year
        baseline = (b0, b1)
    b0, b1 = _years(baseline, "baseline")
    frames = prepare_frames(cd, region, pass_mark=pass_mark)
    years = list(range(min(b0, s.year), e.year + 1))
    base_years = list(range(b0, b1 + 1))
    report_years = list(range(s.year, e.year + 1))
    blo, bhi = _year_bounds(b0, b1)
    rows, annual, fyear = [], [], []
    selected: dict[tuple, _Rows] = {}  # one filter (and its date masks) per (frame, where)
    for m in registry:
        _check_column(m, frames[m.frame])
        key = (m.frame, m.where)
        if key not in selected:
            selected[key] = _Rows(_select(m, frames[m.frame]), [(s, e), (blo, bhi)], years,
                                  person=_PERSON.get(m.frame))
        r = selected[key]
        x, ok = _contributions(m, r.frame)
        val, num, den = _window_value(m, x, ok, r.in_window[0], s, e)
        vlo, vhi = _value_interval(m, x, ok, r.in_window[0], num, den, level)
        bval, bnum, bden = _window_value(m, x, ok, r.in_window[1], blo, bhi)
        a = _annual(m, x, ok, r.year_code, years)
        annual.append(a)
        s2 = np.nan
        if m.kind == "mean":
            bx = x[r.in_window[1] & ok]
            s2 = float(np.var(bx, ddof=1)) if len(bx) > 1 else np.nan
        if forecast:
            fc, flo, fhi, by_year = _forecast(_kind_of(m), a, base_years, report_years,
                                              den if m.is_rate else 1.0, s2, level,
                                              base_window=(bnum, bden))
        else:
            fc = flo = fhi = np.nan
            by_year = None
        if by_year is not None:
            fyear.append(by_year.assign(measure=m.key))
        tgt = tg.get(m.key, np.nan)
        tverdict, gap = _target_verdict(val, tgt, m.polarity)
        n, of = _n_of(m, num, den)
        bn, bof = _n_of(m, bnum, bden)
        curve = _curve_verdict(val, flo, fhi, m.polarity) if forecast else "not computed"
        rows.append(dict(strategy=m.strategy, question=m.question, measure=m.key,
                         label=m.label, kind=m.kind, unit=m.unit, polarity=m.polarity,
                         value=val, value_lower=vlo, value_upper=vhi, n=n, of=of,
                         baseline_value=bval, baseline_n=bn, baseline_of=bof,
                         change=val - bval,
                         pct_change=(val - bval) / bval if bval else np.nan,
                         target=tgt, target_verdict=tverdict, target_gap=gap,
                         target_met=(np.nan if tverdict not in ("met", "not met")
                                     else tverdict == "met"),
                         forecast=fc, forecast_lower=flo, forecast_upper=fhi,
                         curve_verdict=curve, verdict=curve, numerator=num, denominator=den,
                         story=m.story, partners=m.partners, what_works=m.what_works))
    summ = pd.DataFrame(rows)
    for c in ("n", "of", "baseline_n", "baseline_of"):
        summ[c] = pd.array([pd.NA if v is None else v for v in summ[c]], dtype="Int64")
    summ["_s"] = summ["strategy"].map({k: i for i, k in enumerate(STRATEGIES)})
    summ["_q"] = summ["question"].map({k: i for i, k in enumerate(QUESTIONS)})
    summ = summ.sort_values(["_s", "_q"], kind="stable").drop(columns=["_s", "_q"])
    fa = (pd.concat(fyear, ignore_index=True)[["measure", "year", "forecast", "lower", "upper"]]
          if fyear else pd.DataFrame(columns=["measure", "year", "forecast", "lower", "upper"]))
    return ScorecardResult(summary=summ.reset_index(drop=True),
                           annual=_annual_table(annual), measures=registry,
                           start=s, end=e, baseline=(b0, b1), region=region,
                           forecast_annual=fa)
