"""Evaluation briefs: the sections of ``notebooks/evaluation_brief.ipynb`` and the papermill runner.

The brief notebook is thin: each cell calls one method of :class:`Brief`, which computes a
section from a :class:`~dmst_eval.casedata.CaseData` and returns HTML in which **every table has
passed through** :func:`dmst_eval.disclosure.suppress` and every figure is a PNG embedded as
base64 together with the (suppressed) numbers it shows, so that
:func:`dmst_eval.disclosure.audit` can check it. No child id and no exact date of an individual
event is ever shown: dates are shown to the month, and the only day-precision dates in a brief are
its parameters, the study window, policy dates and the run date, which the brief declares in an
embedded ``dmst-brief-meta`` block.

:func:`render` runs the notebook with papermill (kernel ``dmst-eval``), exports a self-contained
HTML with the code hidden (nbconvert ``exclude_input``), audits both, and only then moves them
into place (optionally also printing a PDF with headless Chromium). :func:`render_batch` does
statewide + the six regions in parallel processes.

Examples
--------
>>> from dmst_eval import briefs
>>> briefs.normalise_region(4), briefs.normalise_region("statewide")
('Region 4', 'statewide')
>>> p = briefs.BriefParams(region="Region 2", audience="public")
>>> p.threshold
10
"""
from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import functools
import gc
import html as _h
import json
import logging
import multiprocessing
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from dmst_eval.errors import BriefError  # noqa: F401  (re-exported)

from dmst_eval import disclosure, plots, schema
from dmst_eval._files import shipped

__all__ = ["Brief", "BriefParams", "BriefError", "BriefResult", "render", "render_batch",
           "normalise_region", "chromium_path", "BRIEF_NOTEBOOK", "POLICY_DATES"]

#: The brief template (a parameterised notebook).
BRIEF_NOTEBOOK = shipped("notebooks/evaluation_brief.ipynb")  # in the repo or the wheel
#: Kernel the briefs run on.
KERNEL = "dmst-eval"
#: Dates of policy changes the brief may name exactly (not individual events).
POLICY_DATES = {
    "2011-10-01": "Public Act 11-180 in force: police must report suspected child trafficking "
                  "to the Careline",
}
#: Victims needed to fit the risk model within one region (else the statewide model is shown).
MIN_REGIONAL_RISK_EVENTS = 40
#: Years in the default reporting period (the comparison period is as long, just before it).
DEFAULT_PERIOD_YEARS = 3
#: The brief's sections in notebook order (errors are listed in this order).
SECTIONS = ("key_findings", "scorecard", "tracking", "hotspot_map", "risk_factors",
            "repeat_victimization", "program_effects", "methods", "provenance")
#: Sections the prefetch worker (:meth:`Brief.prefetch`) takes, in this order, unless the
#: notebook's process has claimed them first: they depend only on the data and the parameters
#: and share little with the other sections (which need the tracking summaries and the risk
#: model the key findings compute).
PREFETCH_SECTIONS = ("repeat_victimization", "hotspot_map", "program_effects", "scorecard")
#: What the notebook's process computes, in this order, while it waits for the worker. None of
#: these sections (nor those above) may ask for another section: it could be the one waiting.
_WORK_AHEAD = ("risk_factors", "tracking", "scorecard", "program_effects", "hotspot_map",
               "repeat_victimization")
#: Cache entries a prefetched section leaves for other sections (key findings read them).
_SHARED_CACHE = ("service_effect", "its_level")

_REGION_RE = re.compile(r"^\s*(?:region\s*)?([1-6])\s*$", re.IGNORECASE)


def normalise_region(region) -> str:
    """``"statewide"`` or ``"Region N"`` from the spellings users type (4, "4", "region 4").

    Examples
    --------
    >>> normalise_region(" region 3 "), normalise_region(None)
    ('Region 3', 'statewide')
    """
    if region is None or str(region).strip().lower() in ("statewide", "state", "all", "ct", ""):
        return "statewide"
    m = _REGION_RE.match(str(region))
    if not m:
        raise BriefError(f'region must be "statewide" or one of {list(schema.REGIONS)}, '
                         f"got {region!r}")
    return f"Region {m[1]}"


def _date(x, what: str) -> pd.Timestamp | None:
    if x is None or (isinstance(x, str) and not x.strip()):
        return None
    try:
        return pd.Timestamp(x).normalize()
    except (ValueError, TypeError):
        raise BriefError(f"{what} must be a date (YYYY-MM-DD), got {x!r}") from None


@dataclass
class BriefParams:
    """The parameters of the brief notebook (its ``parameters`` cell), validated.

    ``suppression_threshold=None`` means 5 for ``audience="internal"`` and 10 for ``"public"``.
    Periods default to the last :data:`DEFAULT_PERIOD_YEARS` full years of the study window and
    the same number of years just before (resolved against the data in :class:`Brief`).
    """

    data_path: str = "../data/synthetic"
    region: str = "statewide"
    period_start: str | None = None
    period_end: str | None = None
    comparison_start: str | None = None
    comparison_end: str | None = None
    audience: str = "internal"
    suppression_threshold: int | None = None
    figures_dir: str | None = "../figures"

    def __post_init__(self):
        self.region = normalise_region(self.region)
        if self.audience not in disclosure.DEFAULT_THRESHOLDS:
            raise BriefError(f'audience must be "internal" or "public", got {self.audience!r}')
        if self.suppression_threshold is not None:
            t = self.suppression_threshold
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
                raise BriefError(f"suppression_threshold must be a whole number >= 1, got {t!r}")
            if self.audience == "public" and t < disclosure.DEFAULT_THRESHOLDS["public"]:
                raise BriefError("a public brief needs suppression_threshold >= "
                                 f"{disclosure.DEFAULT_THRESHOLDS['public']}, got {t}")
        for k in ("period_start", "period_end", "comparison_start", "comparison_end"):
            v = _date(getattr(self, k), k)
            setattr(self, k, None if v is None else v.strftime("%Y-%m-%d"))

    @property
    def threshold(self) -> int:
        return int(self.suppression_threshold
                   or disclosure.default_threshold(self.audience))

    @property
    def slug(self) -> str:
        r = "statewide" if self.region == "statewide" else self.region.lower().replace(" ", "")
        return f"brief_{r}_{self.audience}"

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------
class Section:
    """HTML of one brief section (displayed by Jupyter via ``_repr_html_``).

    Attributes ``tables`` (suppressed DataFrames shown) and ``figures`` (names) let tests check
    what a section shows; ``error`` is set when the section could not be computed.
    """

    def __init__(self, title: str | None, html: str, tables: dict | None = None,
                 figures: list[str] | None = None, error: str | None = None):
        self.title, self.html = title, html
        self.tables = tables or {}
        self.figures = figures or []
        self.error = error

    def _repr_html_(self) -> str:
        head = f'<h2 class="dmst-h2">{_h.escape(self.title)}</h2>' if self.title else ""
        return f'<section class="dmst-section">{head}{self.html}</section>'

    def __repr__(self) -> str:
        return f"<brief section: {self.title or 'untitled'}>"


def _section(title: str | None):
    """Decorator: run a section method; on failure show a short note instead (no data in it)."""
    def deco(fn: Callable[..., Section]):
        @functools.wraps(fn)
        def wrapper(self: "Brief", *a, **kw) -> Section:
            key = ("section", fn.__name__)
            if not a and not kw:
                if key in self._cache:  # sections are computed once
                    return self._cache[key]
                got = self._from_worker(fn.__name__)
                if got is not None:
                    self._cache[key] = got
                    return got
            try:
                out = fn(self, *a, **kw)
            except Exception as exc:  # the note shows the exception type only (no data values)
                if self.strict:
                    raise
                self.errors.append((title or fn.__name__, type(exc).__name__))
                warnings.warn(f"brief section {title or fn.__name__!r} failed: "
                              f"{type(exc).__name__}", stacklevel=2)
                return Section(title, _p(f"This section could not be computed from these data "
                                         f"({type(exc).__name__}). See the methods section.",
                                         cls="dmst-note"),
                               error=type(exc).__name__)
            out.title = title
            if not a and not kw:
                self._cache[key] = out
            return out
        wrapper.title = title
        return wrapper
    return deco


#: Longest wait for one prefetched section before computing it here instead (seconds).
PREFETCH_TIMEOUT = 600.0
_FORK_BRIEF: "Brief | None" = None  # the brief a prefetch worker inherits through fork


def _can_fork() -> bool:
    if os.environ.get("DMST_EVAL_PREFETCH", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux") or \
            "fork" not in multiprocessing.get_all_start_methods():
        return False
    return _usable_cpus() >= 2


def _usable_cpus(cgroup: str | Path = "/sys/fs/cgroup") -> float:
    """CPUs this process may use: its affinity mask, capped by a container's CPU quota
    (cgroup v2 ``cpu.max`` or v1 ``cpu/cpu.cfs_quota_us``) if one is set.

    >>> _usable_cpus() > 0
    True
    """
    try:
        n = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        n = float(os.cpu_count() or 1)
    root = Path(cgroup)
    for files in (["cpu.max"], ["cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"]):
        try:
            quota, period = " ".join((root / f).read_text() for f in files).split()[:2]
            if quota not in ("max", "-1") and float(period) > 0:
                return min(n, float(quota) / float(period))
        except (OSError, ValueError):
            continue
    return n


_MINE, _WORKER = 1, 2  # who claimed a section (values of Brief._claims)


class _WorkerLost(RuntimeError):
    pass


def _prefetch_main(conn) -> None:
    """The prefetch worker (a fork of the notebook's process): claim, compute and send sections
    until none is left."""
    brief = _FORK_BRIEF
    sys.stdout = sys.stderr = open(os.devnull, "w")  # never write into the notebook's streams
    brief._worker = None  # its own sections are computed here, not asked of a worker
    for name in PREFETCH_SECTIONS:
        if ("section", name) in brief._cache or not brief._claim(name, _WORKER):
            continue
        before = len(brief.errors)
        try:
            sec = getattr(brief, name)()
            msg = (name, True, (sec, {k: brief._cache[k] for k in _SHARED_CACHE
                                      if k in brief._cache}, brief.errors[before:]))
        except BaseException:  # strict mode: the notebook's process computes it and raises
            msg = (name, False, None)
        try:
            conn.send(msg)
        except (OSError, EOFError):  # the notebook's process has gone
            return
        except Exception:  # the result would not pickle: let the notebook's process compute it
            conn.send((name, False, None))
    conn.close()


def _drain(conn, inbox) -> None:
    """Move the worker's messages into ``inbox`` until it stops (then put None). This thread
    alone reads and closes the pipe: it ends when the worker does (the worker holds the only
    writing end)."""
    try:
        while True:
            inbox.put(conn.recv())
    except Exception:  # EOF (the worker has finished or was stopped), or a message that will
        pass           # not load: the notebook's process computes what is missing
    finally:
        conn.close()
        inbox.put(None)


def _stop_worker(proc) -> None:
    """Terminate a worker that has not finished (one that has sent all its sections is exiting
    by itself, and multiprocessing reaps it)."""
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout=5)


def _p(text: str, cls: str | None = None) -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<p{c}>{_h.escape(text)}</p>"


def _month(ts) -> str:
    return pd.Timestamp(ts).strftime("%B %Y")


def _num(x: float, digits: int = 0) -> str:
    """``x`` rounded for prose, without a minus sign on a value that rounds to zero.

    >>> _num(-0.4), _num(-1.6), _num(2.25, 1)
    ('0', '-2', '2.2')
    """
    s = f"{x:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def _pct(x: float, digits: int = 0) -> str:
    return "not available" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _json_safe(v):
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not np.isfinite(v) else round(float(v), 6)
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m")
    return v if isinstance(v, (int, str)) else str(v)


_STYLE_CSS = """
<style>
.dmst-banner{background:#FFF3CD;border:2px solid #E69F00;color:#3d2c00;padding:10px 14px;
 font-weight:bold;font-size:1.05em;margin:8px 0 14px 0;border-radius:4px}
.dmst-title{font-size:1.7em;font-weight:bold;margin:0 0 4px 0}
.dmst-subtitle{color:#444;margin:0 0 10px 0}
table.dmst-table{border-collapse:collapse;margin:6px 0 4px 0;font-size:0.92em}
table.dmst-table caption{caption-side:top;text-align:left;font-weight:bold;padding:4px 0}
table.dmst-table th{background:#EEF3F8;border-bottom:1px solid #888;padding:3px 8px;text-align:left}
table.dmst-table td{border-bottom:1px solid #ddd;padding:3px 8px}
table.dmst-table td.dmst-count{text-align:right}
.dmst-note{color:#555;font-size:0.9em}
figure.dmst-figure{margin:8px 0 12px 0}
figure.dmst-figure img{max-width:100%;height:auto}
figure.dmst-figure figcaption{color:#444;font-size:0.9em}
ul.dmst-findings li{margin-bottom:4px}
@media print{.dmst-section{page-break-inside:avoid}
 table.dmst-table{font-size:0.74em} table.dmst-table th,table.dmst-table td{padding:2px 4px}
 .jp-OutputArea-output,.jp-RenderedHTMLCommon{overflow:visible !important}}
</style>
"""


class Brief:
    """Sections of the evaluation brief for one region, period and audience.

    Parameters
    ----------
    cd : CaseData
        The (validated) bundle.
    params : BriefParams or dict
        Brief parameters.
    strict : bool, optional
        Raise if a section fails instead of showing a note. Default: environment variable
        ``DMST_EVAL_BRIEF_STRICT`` (tests set it).

    Examples
    --------
    >>> import pandas as pd
    >>> from dmst_eval.casedata import CaseData
    >>> cd = CaseData.from_frames(meta={"source": "synthetic", "study_start": "2008-01-01",
    ...                                 "study_end": "2025-12-31"})
    >>> b = Brief(cd, {"region": "statewide", "figures_dir": None})
    >>> b.period, b.comparison
    (('2023-01-01', '2025-12-31'), ('2020-01-01', '2022-12-31'))
    >>> "synthetic" in b.banner().html.lower()
    True
    """

    def __init__(self, cd, params: BriefParams | dict | None = None, strict: bool | None = None):
        if params is None:
            params = BriefParams()
        elif isinstance(params, dict):
            params = BriefParams(**params)
        self.cd = cd
        self.params = params
        self.region = params.region
        self.threshold = params.threshold
        self.audience = params.audience
        self.strict = (os.environ.get("DMST_EVAL_BRIEF_STRICT", "") not in ("", "0")
                       if strict is None else strict)
        self.errors: list[tuple[str, str]] = []
        self._worker = None  # the prefetch worker process, while this brief waits for it
        self._received: dict[str, Any] = {}  # its sections, until a cell asks for them
        self._done: set[str] = set()  # sections the worker has finished (or failed)
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self._cache: dict[str, Any] = {}
        self.figures_dir = params.figures_dir
        s0, s1 = pd.Timestamp(cd.meta["study_start"]), pd.Timestamp(cd.meta["study_end"])
        self.study = (s0, s1)
        pe = _date(params.period_end, "period_end") or s1
        ps = _date(params.period_start, "period_start") or max(
            s0, pd.Timestamp(year=pe.year - DEFAULT_PERIOD_YEARS + 1, month=1, day=1))
        if ps > pe:
            raise BriefError(f"period_start {ps.date()} is after period_end {pe.date()}")
        length = pe - ps
        ce = _date(params.comparison_end, "comparison_end") or (ps - pd.Timedelta(days=1))
        cs = _date(params.comparison_start, "comparison_start") or max(
            s0, pd.Timestamp(year=ce.year - (pe.year - ps.year), month=ps.month, day=ps.day)
            if ps.month == 1 and ps.day == 1 else ce - length)
        if cs > ce:
            raise BriefError(f"comparison_start {cs.date()} is after comparison_end {ce.date()}")
        self._ps, self._pe, self._cs, self._ce = ps, pe, cs, ce
        self.period = (ps.strftime("%Y-%m-%d"), pe.strftime("%Y-%m-%d"))
        self.comparison = (cs.strftime("%Y-%m-%d"), ce.strftime("%Y-%m-%d"))
        self.scope = "Connecticut (statewide)" if self.region == "statewide" else \
            f"DCF {self.region}"
        self._region_arg = None if self.region == "statewide" else self.region

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_params(cls, **params) -> "Brief":
        """Load the data named by ``data_path`` and build the brief (the notebook's entry).

        After loading, the objects alive in the process (the imported stack and the bundle) are
        moved out of the cyclic garbage collector's reach (:func:`gc.freeze`): they live as long
        as the kernel, and each full collection during the sections would otherwise walk them
        all again (about 0.13 s per brief). Only cyclic garbage already present at that moment
        is never collected.
        """
        p = BriefParams(**params)
        # the sections need these modules; importing them first gives render()'s parallel
        # validation time to finish
        import geopandas  # noqa: F401
        import statsmodels.api  # noqa: F401

        import dmst_eval.evaluation  # noqa: F401
        import dmst_eval.geography  # noqa: F401
        import dmst_eval.hotspots  # noqa: F401
        import dmst_eval.rba  # noqa: F401
        import dmst_eval.recidivism  # noqa: F401
        import dmst_eval.risk  # noqa: F401
        import dmst_eval.tracking  # noqa: F401

        t0 = time.perf_counter()
        cd = load_validated(p.data_path)
        b = cls(cd, p)
        b.load_seconds = time.perf_counter() - t0
        gc.freeze()
        b.prefetch()
        return b

    # -- two processes -----------------------------------------------------------------------
    def prefetch(self) -> bool:
        """Share the brief's sections with a second process; return whether one was started.

        The worker is a fork of this process (data and imports already in memory: nothing is
        loaded again). Both processes take sections from :data:`PREFETCH_SECTIONS` (each
        claims a section before computing it, so none is computed twice): the worker in that
        order, sending each back (HTML and tables) as soon as it is done; this process when a
        cell asks for one, and, while it waits for one the worker is computing, the next one
        the worker has not claimed. The brief is the same either way, only sooner: on two
        cores, the default brief's sections take about 0.9 s instead of 1.2 s (not half: each
        process pays some first-use costs again, and copy-on-write page faults).

        If the worker fails in any way (a section raising in strict mode, a crash, a result that
        cannot be sent), this process computes its sections itself, so errors surface as they
        would without a worker. Nothing is started where forking is not safe or useful:
        outside Linux, with fewer than two CPUs to use (affinity mask or container quota), or
        when ``DMST_EVAL_PREFETCH=0``.

        Examples
        --------
        >>> from dmst_eval.casedata import CaseData
        >>> cd = CaseData.from_frames(meta={"source": "synthetic", "study_start": "2008-01-01",
        ...                                 "study_end": "2025-12-31"})
        >>> b = Brief(cd, {"region": "statewide", "figures_dir": None})
        >>> started = b.prefetch()
        >>> b.methods().title
        'Methods and caveats'
        """
        if self._worker is not None or not _can_fork():
            return False
        ctx = multiprocessing.get_context("fork")
        self._claims = ctx.RawArray("b", len(PREFETCH_SECTIONS))
        for k, n in enumerate(PREFETCH_SECTIONS):
            self._claims[k] = _MINE if ("section", n) in self._cache else 0
        self._lock = ctx.Lock()
        recv, send = ctx.Pipe(duplex=False)
        global _FORK_BRIEF
        _FORK_BRIEF = self
        try:
            with warnings.catch_warnings():  # Python >= 3.12 warns about forking with threads
                warnings.simplefilter("ignore", DeprecationWarning)
                proc = ctx.Process(target=_prefetch_main, args=(send,), daemon=True,
                                   name="dmst-eval-prefetch")
                proc.start()
        except OSError:
            recv.close()
            return False
        finally:
            _FORK_BRIEF = None
            send.close()
        # a thread takes the worker's messages as they come: a section (its figures as PNG)
        # does not fit in the pipe, and the worker would wait until this process reads it
        self._inbox = queue.SimpleQueue()
        threading.Thread(target=_drain, args=(recv, self._inbox), daemon=True,
                         name="dmst-eval-prefetch-inbox").start()
        self._worker = proc
        weakref.finalize(self, _stop_worker, proc)
        return True

    def _claim(self, name: str, who: int = None) -> bool:
        """Claim section ``name`` for ``who`` (default: this process); True if it is theirs."""
        who = _MINE if who is None else who
        if name not in PREFETCH_SECTIONS:
            return who == _MINE  # the worker never takes it
        k = PREFETCH_SECTIONS.index(name)
        if not self._lock.acquire(timeout=5):  # a worker killed while holding the lock
            raise _WorkerLost()
        try:
            if self._claims[k] == 0:
                self._claims[k] = who
            return self._claims[k] == who
        finally:
            self._lock.release()

    def _stop_prefetch(self, kill: bool = True) -> None:
        """Stop waiting for the worker (and terminate it, unless it is finishing anyway)."""
        if self._worker is not None and kill:
            _stop_worker(self._worker)
        self._worker = None

    def _receive(self, timeout: float) -> bool:
        """Take the worker's next message if one comes within ``timeout`` seconds; return
        whether one did. When the worker has stopped (all done, or failed), its unsent
        sections are left to this process."""
        try:
            msg = self._inbox.get(timeout=timeout) if timeout > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return False
        if msg is None:  # the worker has finished, or is gone
            self._stop_prefetch(kill=False)
            return False
        name, ok, payload = msg
        self._done.add(name)
        if ok:
            self._received[name] = payload
        if self._worker_finished():
            self._stop_prefetch(kill=False)
        return True

    def _worker_finished(self) -> bool:
        """Every section the worker could take is done by it or claimed by this process."""
        return all(self._claims[k] == _MINE or n in self._done
                   for k, n in enumerate(PREFETCH_SECTIONS))

    def _from_worker(self, name: str) -> "Section | None":
        """Section ``name`` as the worker computed it (waiting for it if the worker has claimed
        it), or None if this process computes it."""
        if name not in PREFETCH_SECTIONS:
            return None
        try:
            while name not in self._received and self._worker is not None \
                    and name not in self._done:
                if self._claim(name):  # this process's to compute
                    if self._worker_finished():
                        self._stop_prefetch(kill=False)
                    return None
                if self._receive(0):
                    continue
                nxt = next((n for n in _WORK_AHEAD if ("section", n) not in self._cache
                            and n not in self._received and self._claim(n)), None)
                if nxt is not None:  # something useful while the worker finishes
                    try:
                        getattr(self, nxt)()
                    except Exception:  # strict mode: left uncomputed, so that it fails in
                        pass           # its own cell, as it would without a worker
                elif not self._receive(PREFETCH_TIMEOUT) and self._worker is not None:
                    self._stop_prefetch()  # nothing for too long: compute it here
        except _WorkerLost:
            self._stop_prefetch()
        payload = self._received.pop(name, None)
        if payload is None:
            return None
        sec, shared, errors = payload
        for k, v in shared.items():
            self._cache.setdefault(k, v)
        for title, err in errors:
            self.errors.append((title, err))
            warnings.warn(f"brief section {title!r} failed: {err}", stacklevel=3)
        return sec

    # -- helpers -----------------------------------------------------------------------------
    def suppress(self, table: pd.DataFrame, **kw) -> pd.DataFrame:
        """:func:`dmst_eval.disclosure.suppress` at this brief's threshold."""
        return disclosure.suppress(table, threshold=self.threshold, **kw)

    def count(self, n) -> str:
        """A count for prose ("fewer than 5" when small)."""
        return disclosure.count_phrase(n, self.threshold)

    def table(self, table: pd.DataFrame, caption: str | None = None, note: str | None = None,
              digits: int = 1, **suppress_kw) -> tuple[str, pd.DataFrame]:
        """Suppress (unless already suppressed) and render a table; return (html, table)."""
        if "disclosure" not in table.attrs:
            table = self.suppress(table, **suppress_kw)
        return disclosure.table_html(table, caption=caption, note=note, digits=digits), table

    def figure(self, fig, name: str, caption: str, data: pd.DataFrame | None = None,
               alt: str | None = None) -> str:
        """Embed ``fig`` as a base64 PNG with its (suppressed) data; save it to figures_dir."""
        import matplotlib.pyplot as plt

        plots.fit_margins(fig)  # fixed margins where the figure is simple enough
        png = plots.png_bytes(fig)  # drawn once
        if self.figures_dir:
            # write the PNG already rendered for the brief: drawing a figure twice costs ~0.4 s
            out = Path(self.figures_dir)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{plots._safe_name(f'{self.params.slug}_{name}')}.png").write_bytes(png)
        plt.close(fig)
        b64 = base64.b64encode(png).decode()
        meta = ""
        if data is not None:
            info = data.attrs.get("disclosure")
            if info is None:
                raise disclosure.DisclosureError(f"figure {name!r}: its data did not pass "
                                                 "through suppress()")
            payload = {"name": name, "columns": [str(c) for c in data.columns],
                       "count_cols": info.get("count_cols", []), "threshold": info["threshold"],
                       "rows": [[_json_safe(v) for v in row]
                                for row in data.itertuples(index=False, name=None)]}
            meta = ('<script type="application/json" class="dmst-figure-data">'
                    + json.dumps(payload).replace("</", "<\\/") + "</script>")
        return (f'<figure class="dmst-figure" data-name="{_h.escape(name)}">'
                f'<img src="data:image/png;base64,{b64}" alt="{_h.escape(alt or caption)}"/>'
                f"<figcaption>{_h.escape(caption)}</figcaption>{meta}</figure>")

    def allowed_dates(self) -> list[str]:
        d = {*self.period, *self.comparison, self.study[0].strftime("%Y-%m-%d"),
             self.study[1].strftime("%Y-%m-%d"), self.started.strftime("%Y-%m-%d"),
             *POLICY_DATES}
        return sorted(d)

    # -- data views --------------------------------------------------------------------------
    def _children(self) -> pd.DataFrame:
        ch = self.cd.children
        if self._region_arg:
            ch = ch[ch["region"].astype(str) == self._region_arg]
        return ch

    def _episodes(self) -> pd.DataFrame:
        """Confirmed episodes of the children in scope."""
        if "episodes" not in self._cache:
            ep = self.cd.episodes
            ep = ep[ep["confirmed"].fillna(False).astype(bool)]
            if self._region_arg:
                ep = ep[ep["child_id"].isin(self._children()["child_id"])]
            self._cache["episodes"] = ep
        return self._cache["episodes"]

    def _tracking(self, which: str):
        """Tracking summary for the period (with its top-10 town ranking) or the comparison
        period (counts only: the brief shows no town ranking for it)."""
        key = f"tracking_{which}"
        if key not in self._cache:
            from dmst_eval import tracking

            s, e = {"period": (self._ps, self._pe), "comparison": (self._cs, self._ce)}[which]
            self._cache[key] = tracking.summary(self.cd, s, e, region=self._region_arg,
                                                top_towns=10 if which == "period" else 0)
        return self._cache[key]

    def _study_towns(self) -> pd.DataFrame:
        """Town ranking over the whole study window (towns of the brief's region)."""
        if "study_towns" not in self._cache:
            from dmst_eval import tracking

            self._cache["study_towns"] = tracking.town_ranking(
                self.cd, *self.study, region=self._region_arg, top=169)
        return self._cache["study_towns"]

    def _headline(self) -> dict:
        """Headline numbers for the period and comparison period (raw; suppressed when shown)."""
        if "headline" in self._cache:
            return self._cache["headline"]
        out = {}
        for which in ("period", "comparison"):
            ts = self._tracking(which)
            rv = ts.repeat_victims.set_index("period").loc["all"]
            aw = ts.awol.set_index("period").loc["all"]
            rep = ts.reports
            rep = rep[(rep.period == "all") & (rep.reporter_type.astype(str) == "all")]
            rep_pol = ts.reports[(ts.reports.period == "all")
                                 & (ts.reports.reporter_type.astype(str) == "police")]
            out[which] = {
                "victims": int(rv["victims"]), "repeat_victims": int(rv["repeat_victims"]),
                "episodes": int(aw["episodes"]), "awol_episodes": int(aw["awol_episodes"]),
                "reports": int(rep["reports"].sum()) if len(rep) else 0,
                "police_reports": int(rep_pol["reports"].sum()) if len(rep_pol) else 0,
                "accepted": int(rep["accepted"].sum()) if len(rep) else 0,
                "facilities": int(len(ts.facilities)),
            }
        self._cache["headline"] = out
        return out

    # -- sections ----------------------------------------------------------------------------
    def header(self) -> Section:
        """Title, scope line, synthetic-data banner and the embedded audit metadata."""
        meta = {"threshold": self.threshold, "audience": self.audience, "region": self.region,
                "allowed_dates": self.allowed_dates(), "slug": self.params.slug}
        title = f"DMST evaluation brief — {self.scope}"
        sub = (f"Reporting period {_month(self._ps)} to {_month(self._pe)}; compared with "
               f"{_month(self._cs)} to {_month(self._ce)}. Audience: {self.audience} "
               f"(counts from 1 to {self.threshold - 1} are shown as \"<{self.threshold}\").")
        html = (_STYLE_CSS
                + '<script type="application/json" id="dmst-brief-meta">'
                + json.dumps(meta) + "</script>"
                + f'<div class="dmst-title">{_h.escape(title)}</div>'
                + _p(sub, "dmst-subtitle") + self.banner().html)
        return Section(None, html)

    def banner(self) -> Section:
        """The "synthetic data" banner (empty for a real extract)."""
        if not self.cd.is_synthetic:
            return Section(None, "")
        return Section(None, '<div class="dmst-banner" id="dmst-synthetic-banner">'
                             "SYNTHETIC DATA — every child, event and number in this brief was "
                             "simulated by dmst-eval's generator. Nothing here describes real "
                             "children or real agency performance.</div>")

    @_section("Key findings")
    def key_findings(self) -> Section:
        """Short sentences whose numbers are computed (small counts phrased as "fewer than k")."""
        h = self._headline()
        p, c = h["period"], h["comparison"]
        t = self.threshold
        items = []
        chg = ""
        if p["victims"] >= t and c["victims"] >= t:
            rr, lo, hi = _poisson_ratio_ci(p["victims"], c["victims"],
                                           (self._pe - self._ps).days + 1,
                                           (self._ce - self._cs).days + 1)
            chg = (f" (compared with {c['victims']:,} in {_month(self._cs)}–{_month(self._ce)}; "
                   f"rate ratio {rr:.2f}, exact 95% CI {lo:.2f}–{hi:.2f})")
        else:
            chg = (f" (compared with {self.count(c['victims'])} in {_month(self._cs)}–"
                   f"{_month(self._ce)})")
        items.append(f"{self.count(p['victims']).capitalize()} children were identified as "
                     f"confirmed victims of trafficking in {self.scope} from "
                     f"{_month(self._ps)} to {_month(self._pe)}{chg}.")
        if p["victims"] >= t:
            if p["repeat_victims"] >= t:
                items.append(f"{p['repeat_victims']:,} of them "
                             f"({_pct(p['repeat_victims'] / p['victims'])}) were repeat victims "
                             "(a second or later confirmed episode).")
            else:
                items.append(f"{self.count(p['repeat_victims']).capitalize()} of them were "
                             "repeat victims.")
        if p["episodes"] >= t:
            if p["awol_episodes"] >= t:
                items.append(f"{_pct(p['awol_episodes'] / p['episodes'])} of confirmed episodes "
                             f"({p['awol_episodes']:,} of {p['episodes']:,}) began while the "
                             "child was absent without leave (AWOL) from a placement.")
            else:
                items.append(f"{self.count(p['awol_episodes']).capitalize()} confirmed episodes "
                             "began while the child was AWOL from a placement.")
        if p["reports"] >= t:
            s = (f"The Careline received {p['reports']:,} reports alleging trafficking")
            if p["police_reports"] >= t:
                s += f"; {_pct(p['police_reports'] / p['reports'])} came from police"
            items.append(s + ".")
        for extra in self._analysis_findings():
            items.append(extra)
        html = '<ul class="dmst-findings">' + "".join(
            f"<li>{_h.escape(s)}</li>" for s in items) + "</ul>"
        return Section(None, html)

    def _analysis_findings(self) -> list[str]:
        """Findings from the analysis sections (computed here if not yet; sections are cached)."""
        out = []
        for key in ("finding_hotspot", "finding_risk", "finding_repeat", "finding_program"):
            try:
                s = self._compute_finding(key)
            except Exception:  # a finding that cannot be computed is left out, not guessed
                if self.strict:
                    raise
                s = None
            if s:
                out.append(s)
        return out

    def _compute_finding(self, key: str) -> str | None:
        t = self.threshold
        if key == "finding_hotspot":
            towns = self._tracking("period").towns
            towns = towns[towns["episodes"].astype(int) >= t]
            if towns.empty:
                return None
            top = towns.iloc[0]
            pt = float(top.get("prob_top", np.nan))
            sure = (f"; the probability that it truly has the highest rate is {pt:.0%}"
                    if np.isfinite(pt) else "")
            return (f"Among towns with at least {t} confirmed episodes in the period, "
                    f"{top['town']} had the highest smoothed rate "
                    f"({float(top['smoothed_rate']):.1f} per 10,000 children per year{sure}).")
        if key == "finding_risk":
            m = self._risk_model()
            if m is None:
                return None
            orr = m.odds_ratios[~m.odds_ratios.term.isin(["intercept", "age_at_start"])]
            sig = orr[(orr.ci_lower > 1) | (orr.ci_upper < 1)]
            if sig.empty:
                return ("No single risk factor was clearly associated with identification as a "
                        "victim in these data (all 95% intervals include 1).")
            top = sig.loc[np.log(sig.odds_ratio.astype(float)).abs().idxmax()]
            where = "" if self._risk_scope == self.scope or not self._region_arg else \
                " statewide"
            if top.odds_ratio >= 1:
                return (f"Among child-welfare-involved children{where}, {_prose(top.term)} was "
                        f"the strongest risk factor: odds of identification as a victim "
                        f"{top.odds_ratio:.1f} times as high (95% CI {top.ci_lower:.1f}–"
                        f"{top.ci_upper:.1f}), other factors held equal.")
            return (f"Among child-welfare-involved children{where}, {_prose(top.term)} was "
                    f"associated with lower odds of identification (odds ratio "
                    f"{top.odds_ratio:.2f}, 95% CI {top.ci_lower:.2f}–{top.ci_upper:.2f}).")
        if key == "finding_repeat":
            sec = self.repeat_victimization()
            km = sec.tables.get("km")
            if km is None or km.empty:
                return None
            r = km[km["measure"].str.contains("12 months")]
            if r.empty or disclosure.is_hidden(r["estimate"].iloc[0]):
                return None
            r = r.iloc[0]
            return (f"An estimated {r['estimate']:.0%} of victims had another confirmed episode "
                    f"within 12 months of first being identified (95% CI {r['ci_lower']:.0%}–"
                    f"{r['ci_upper']:.0%}; Kaplan–Meier, all years).")
        if key == "finding_program":
            self.program_effects()
            eff = self._cache.get("service_effect")
            if eff is None:
                return None
            rd, lo, hi = eff
            size = _num(abs(rd) * 100)
            diff = ("about the same as that of" if size == "0" else
                    f"{size} percentage points {'lower' if rd < 0 else 'higher'} than that of")
            return (f"Children referred to Restore & Recovery services had a 12-month "
                    f"re-victimization risk {diff} similar children not referred "
                    f"(95% CI {_num(lo * 100)} to {_num(hi * 100)} points; weighted "
                    "comparison).")
        return None

    # ---- RBA scorecard ---------------------------------------------------------------------
    @_section("Results-Based Accountability scorecard")
    def scorecard(self) -> Section:
        """RBA scorecard: How much did we do? How well did we do it? Is anyone better off?"""
        try:
            from dmst_eval import rba
        except ImportError:
            rba = None
        if rba is not None and hasattr(rba, "scorecard"):
            return self._rba_scorecard(rba)
        h = self._headline()
        rows = []
        for which, lab in (("comparison", "comparison"), ("period", "period")):
            d = h[which]
            rows.append(d)
        p, c = h["period"], h["comparison"]
        measures = [
            ("How much did we do?", "Hotline reports alleging trafficking", "reports"),
            ("How much did we do?", "Reports accepted for a child-protection response",
             "accepted"),
            ("How well did we do it?", "Reports made by police", "police_reports"),
            ("Is anyone better off?", "Confirmed victims identified", "victims"),
            ("Is anyone better off?", "Repeat victims", "repeat_victims"),
            ("Is anyone better off?", "Episodes that began during AWOL", "awol_episodes"),
        ]
        df = pd.DataFrame({"question": [m[0] for m in measures],
                           "measure": [m[1] for m in measures],
                           "comparison": [c[m[2]] for m in measures],
                           "period": [p[m[2]] for m in measures]})
        html, t = self.table(df, caption="Scorecard (counts)", complementary="rows")
        return Section(None, html, tables={"scorecard": t})

    def _rba_scorecard(self, rba) -> Section:
        sc = rba.scorecard(self.cd, region=self._region_arg, start=self._ps, end=self._pe)
        self._cache["scorecard"] = sc
        sm = sc.summary.reset_index(drop=True)
        b0, b1 = sc.baseline
        an = sc.annual[(sc.annual["year"] >= b0) & (sc.annual["year"] <= b1)]
        base = an.groupby("measure")[["numerator", "denominator"]].sum(min_count=1)
        share = sm["unit"].astype(str).str.startswith("share").to_numpy()
        # for counts per year the denominator is a number of years, not a count of people
        per_year = sm["unit"].astype(str).str.endswith("per year").to_numpy()
        df = pd.DataFrame({
            "strategy": sm["strategy"], "question": sm["question"], "measure": sm["label"],
            "unit": sm["unit"],
            "period": sm["value"].astype(float), "baseline": sm["baseline_value"].astype(float),
            "target": sm["target"].astype(float), "verdict": sm["verdict"].fillna(""),
            "n": _as_count(sm["numerator"]), "of": _as_count(sm["denominator"]),
            "baseline_n": _as_count(sm["measure"].map(base["numerator"])),
            "baseline_of": _as_count(sm["measure"].map(base["denominator"])),
        })
        df.loc[per_year, ["of", "baseline_of"]] = pd.NA
        # rows are different measures and numerator/denominator are not additive: only the
        # primary rule applies; every value built on a hidden count is hidden with it
        sup = self.suppress(df, count_cols=["n", "of", "baseline_n", "baseline_of"],
                            rate_cols={"period": ["n", "of"], "baseline": ["baseline_n",
                                                                          "baseline_of"],
                                       "verdict": ["n", "of", "baseline_n", "baseline_of"]},
                            complementary=False)
        shown = sup.copy()
        for c in ("period", "baseline", "target"):
            shown[c] = [v if isinstance(v, str) else
                        ("" if not np.isfinite(v) else (f"{v:.0%}" if sh else f"{v:,.1f}"))
                        for v, sh in zip(sup[c], share)]
        shown = shown.drop(columns=["baseline_n", "baseline_of"])
        shown.attrs = dict(sup.attrs)
        shown.attrs["disclosure"] = dict(sup.attrs["disclosure"], count_cols=["n", "of"])
        cap = (f"RBA scorecard: {_month(self._ps)}–{_month(self._pe)} against the baseline "
               f"{b0}–{b1}")
        note = ("Counts are shown as yearly averages, shares pooled over the period; n / of are "
                "the period's numerator and denominator. Verdict compares the period with the "
                "baseline trend's 95% prediction interval (\"turn the curve\"). Values built on "
                "a hidden count are hidden.")
        html, t = self.table(shown, caption=cap, note=note)
        return Section(None, html, tables={"scorecard": sup})

    def _generic_table_section(self, df: pd.DataFrame, caption: str) -> Section:
        df = df.copy()
        drop = [c for c in df.columns if str(c).endswith("_id")]
        df = df.drop(columns=drop)
        html, t = self.table(df, caption=caption, complementary="rows")
        return Section(None, html, tables={caption: t})

    # ---- tracking questions ----------------------------------------------------------------
    @_section("The agency's tracking questions")
    def tracking(self) -> Section:
        """Victims, repeat victims, AWOL share, towns and facilities, by year."""
        from dmst_eval import tracking as _tr  # noqa: F401  (fails clearly if missing)

        parts, tables = [], {}
        ts_p, ts_c = self._tracking("period"), self._tracking("comparison")
        years = []
        rows = {"Confirmed victims": [], "Repeat victims": [], "Confirmed episodes": [],
                "Episodes that began during AWOL": [],
                "Congregate settings with 2+ victims": []}
        blocks = []
        for ts, lab in ((ts_c, "comparison"), (ts_p, "period")):
            rv = ts.repeat_victims.set_index("period")
            aw = ts.awol.set_index("period")
            fy = ts.facilities_by_year.set_index("period")
            cols = [p for p in rv.index if p != "all"]
            block = pd.DataFrame(index=list(rows))
            for col in [*cols, "all"]:
                name = f"{lab} total" if col == "all" else col
                block[name] = [int(rv.loc[col, "victims"]), int(rv.loc[col, "repeat_victims"]),
                               int(aw.loc[col, "episodes"]), int(aw.loc[col, "awol_episodes"]),
                               int(fy.loc[col, "facilities_with_several_victims"])
                               if col in fy.index else len(ts.facilities)]
            blocks.append(self.suppress(block, total_cols=[f"{lab} total"],
                                        complementary="rows"))
        tab = pd.concat(blocks, axis=1)
        tab.attrs["disclosure"] = {"threshold": self.threshold,
                                   "count_cols": [str(c) for c in tab.columns]}
        tab = tab.reset_index().rename(columns={"index": "measure"})
        html, t = self.table(tab, caption="Tracking questions by year (confirmed episodes, by "
                                          "date identified)")
        parts.append(html)
        tables["tracking"] = t
        parts.append(_p("Each cell counts children (victims) or episodes once per year; the "
                        "period totals count a child once even if identified in several years, "
                        "so they can be smaller than the sum of the years. Rows are different "
                        "measures and are not added up.", "dmst-note"))
        return Section(None, "".join(parts), tables=tables)

    # ---- hotspot map -----------------------------------------------------------------------
    @_section("Where: confirmed episodes by town")
    def hotspot_map(self) -> Section:
        """Map of confirmed episodes per 10,000 children by town; suppressed towns hatched."""
        from dmst_eval import geography

        towns = geography.towns()
        if self._region_arg:
            towns = towns[towns["dcf_region"] == self._region_arg]
        # place-based: confirmed episodes located in the towns shown, over the whole study
        # window (a three-year period leaves almost every town with a hidden small count)
        lo, hi = self.study
        ep = self.cd.episodes
        ep = ep[ep["confirmed"].fillna(False).astype(bool)
                & (ep["identified_at"] >= lo) & (ep["identified_at"] < hi + pd.Timedelta(days=1))
                & ep["town"].isin(towns["town"])]
        counts = ep.groupby(ep["town"].astype(str)).size()
        years = ((hi - lo).days + 1) / 365.25
        df = pd.DataFrame({"town": towns["town"].to_numpy(),
                           "episodes": counts.reindex(towns["town"]).fillna(0).astype(int)
                           .to_numpy(),
                           "children_under_18": towns["population_under18"].astype(int)
                           .to_numpy()})
        df["rate_per_10k_per_year"] = df["episodes"] / (df["children_under_18"] * years) * 1e4
        sup = self.suppress(df, count_cols=["episodes"],
                            rate_cols={"rate_per_10k_per_year": "episodes"})
        hidden = sup["episodes"].map(disclosure.is_hidden).to_numpy()
        # fixed layout (map + colorbar), which saves a layout pass over the 169 towns
        fig, ax = plots.new_figure("map", layout="none")
        ax.set_position([0.01, 0.02, 0.83, 0.9])
        cax = fig.add_axes([0.87, 0.2, 0.022, 0.6])
        g = towns.to_crs(geography.CT_CRS).reset_index(drop=True)
        shown = ~hidden
        zero = (df["episodes"] == 0).to_numpy()
        pos = shown & ~zero
        g = g.assign(rate=np.where(pos, df["rate_per_10k_per_year"].to_numpy(), np.nan))
        with plots.deferred_draw(fig):  # one render when saved, not one per layer
            if zero.any():
                g[zero].plot(ax=ax, color="white", edgecolor="#BBBBBB", linewidth=0.4)
            if pos.any():
                g[pos].plot(column="rate", ax=ax, cmap=plots.SEQUENTIAL, legend=True,
                            edgecolor="white", linewidth=0.4,
                            cax=cax, legend_kwds={"label": "confirmed episodes per 10,000 "
                                                              "children per year"})
            if hidden.any():
                g[hidden].plot(ax=ax, color=plots.SUPPRESSED_COLOR,
                               hatch=plots.SUPPRESSED_HATCH, edgecolor="#999999", linewidth=0.4)
        if not pos.any():
            cax.remove()  # no colour scale without a shown rate
        ax.set_axis_off()
        ax.set_title(f"Confirmed episodes by town, {lo.year}–{hi.year}")
        fig_html = self.figure(fig, "hotspot_map",
                               "Crude rate of confirmed episodes by the town where the "
                               "exploitation began or was located, all years of data. White: "
                               "none. Hatched grey: count hidden "
                               f"(1 to {self.threshold - 1}, or hidden so that it cannot be "
                               "worked out from the total).",
                               data=sup[["town", "episodes", "rate_per_10k_per_year"]]
                               .pipe(_keep_attrs, sup))
        tw = self._study_towns()
        tw = tw[tw["episodes"].astype(int) >= self.threshold].head(10)
        top = pd.DataFrame({"town": tw["town"], "episodes": tw["episodes"].astype(int),
                            "smoothed_rate": tw["smoothed_rate"].astype(float),
                            "rank_interval": [f"{int(a)}–{int(b)}" for a, b in
                                              zip(tw["rank_lower"], tw["rank_upper"])]})
        tsup = self.suppress(top, count_cols=["episodes"],
                             rate_cols={"smoothed_rate": "episodes",
                                        "rank_interval": "episodes"})
        top_html, t = self.table(
            tsup, caption=f"Highest smoothed rates among towns with at least {self.threshold} "
                          f"episodes, {lo.year}–{hi.year} (per 10,000 children per year)",
            note="Empirical-Bayes smoothing pulls towns with few children towards the overall "
                 "rate; the rank interval is the 95% posterior interval of the town's rank "
                 "among all towns (1 = highest). Wide intervals mean the ranking is uncertain.",
            digits=2)
        return Section(None, fig_html + top_html, tables={"towns": sup, "top": t},
                       figures=["hotspot_map"])

    # ---- risk factors ----------------------------------------------------------------------
    def _risk_model(self):
        if "risk_model" in self._cache:
            return self._cache["risk_model"]
        from dmst_eval import risk

        fr = risk.analysis_frame(self.cd)
        self._risk_scope = "statewide"
        if self._region_arg:
            sub = fr[fr["region"].astype(str) == self._region_arg]
            if int(sub["victim"].sum()) >= MIN_REGIONAL_RISK_EVENTS:
                fr, self._risk_scope = sub, self.scope
        preds = ["male", "age_at_start", "prior_sexual_abuse", "prior_runaway", "substance_use",
                 "juvenile_justice", "lgbtq", "congregate_before", "awol_before"]
        n_events = int(fr["victim"].sum())
        method = "firth" if n_events < 100 else "logit"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = risk.fit_risk_model(fr, "victim", preds, method=method)
        self._cache["risk_model"] = m
        return m

    @_section("Risk factors")
    def risk_factors(self) -> Section:
        """Forest plot of odds ratios of identification as a victim (whole study window)."""
        m = self._risk_model()
        orr = m.odds_ratios[m.odds_ratios.term != "intercept"].copy()
        orr["term"] = orr["term"].map(_label)
        fig, ax = plots.new_figure("tall")
        plots.forest_plot(orr, ax=ax, xlabel="odds ratio (95% CI, log scale)")
        ax.set_title("Risk factors: odds of identification")
        data = self.suppress(orr[["term", "odds_ratio", "ci_lower", "ci_upper", "p_value"]],
                             count_cols=[])
        how = "Firth penalised" if m.method == "firth" else "maximum likelihood"
        cap = (f"Logistic regression ({how}) among child-welfare-involved children over the whole study window; "
               f"{self.count(m.n_events)} victims among {self.count(m.n_obs)} children with "
               "complete data" + (" (statewide model: too few victims in one region)."
                                  if self._region_arg and self._risk_scope == "statewide"
                                  else "."))
        html = self.figure(fig, "risk_factors", cap, data=data)
        shown = data.assign(p_value=[("<0.001" if p < 0.001 else f"{p:.3f}")
                                     if np.isfinite(p) else "" for p in data["p_value"]])
        shown.attrs = dict(data.attrs)
        tab_html, t = self.table(shown, caption="Odds ratios (95% CI)", count_cols=[], digits=2)
        return Section(None, html + tab_html, tables={"odds_ratios": t},
                       figures=["risk_factors"])

    # ---- repeat victimization --------------------------------------------------------------
    def _scope_cd(self):
        """The bundle restricted to the children in scope (all tables keyed by child)."""
        if self._region_arg is None:
            return self.cd
        if "scope_cd" not in self._cache:
            from dmst_eval.casedata import CaseData

            ids = set(self._children()["child_id"].astype(str))
            tabs = {}
            for name, df in self.cd.tables.items():
                if "child_id" in df.columns:
                    df = df[df["child_id"].astype(str).isin(ids)]
                tabs[name] = df
            self._cache["scope_cd"] = CaseData(tabs, meta=dict(self.cd.meta), truth=None)
        return self._cache["scope_cd"]

    @_section("Repeat victimization")
    def repeat_victimization(self) -> Section:
        """Time to a repeat episode (Kaplan–Meier), repeat episodes per child (MCF), AWOL timing."""
        from dmst_eval import recidivism as rc

        parts, tables, figs = [], {}, []
        t = self.threshold
        cd = self._scope_cd()
        rf = rc.recurrent_frame(cd, confirmed_only=True)
        fe = rc.first_event_frame(rf)
        n_children, n_events = len(fe), int(fe["event"].sum()) if len(fe) else 0
        counts = pd.DataFrame({"measure": ["children followed after a first confirmed episode",
                                           "children with a repeat episode",
                                           "repeat episodes"],
                               "n": [n_children, n_events, int(rf["event"].sum())
                                     if len(rf) else 0]})
        if n_children >= 2 * t and n_events >= t:
            dpm = 30.4375  # plot in months; durations are days
            km = rc.kaplan_meier(fe.assign(duration=fe["duration"] / dpm), "duration", "event",
                                 months=(6, 12), days_per_unit=dpm, time_unit="months")
            mcf = rc.mean_cumulative_function(rf.assign(start=rf["start"] / dpm,
                                                        stop=rf["stop"] / dpm),
                                              months=(6, 12, 24), days_per_unit=dpm,
                                              time_unit="months")
            fig, (a1, a2) = plots.new_figure("panel2", ncols=2)
            km.plot(ax=a1, at_risk=False, cumulative=True)
            a1.set_title("Share re-victimized")
            mcf.plot(ax=a2)
            a2.set_title("Repeat episodes per child")
            ks = km.summary.iloc[0]
            rows = []
            for mth in (6, 12):
                c = f"survival_{mth}m"
                if c in ks.index:
                    rows.append((f"share re-victimized within {mth} months", 1 - float(ks[c]),
                                 1 - float(ks[c + "_ci_upper"]), 1 - float(ks[c + "_ci_lower"])))
            est_tab = pd.DataFrame(rows, columns=["measure", "estimate", "ci_lower", "ci_upper"])
            data = self.suppress(counts, count_cols=["n"], complementary=False)
            parts.append(self.figure(fig, "repeat_victimization",
                                     "Left: Kaplan–Meier estimate of the share of children with a "
                                     "repeat confirmed episode, by months since their first "
                                     "identification (95% CI, log–log). Right: mean number of "
                                     "repeat episodes per child still in care (Nelson–Aalen MCF, "
                                     "Lawless–Nadeau 95% CI). Follow-up ends at 18.",
                                     data=data))
            figs.append("repeat_victimization")
            if len(est_tab):
                h, et = self.table(est_tab, caption="Repeat victimization (Kaplan–Meier)",
                                   count_cols=[])
                parts.append(h)
                tables["km"] = et
        else:
            parts.append(_p(f"Too few children with a repeat episode in {self.scope} to draw "
                            "survival curves without revealing small numbers.", "dmst-note"))
        h, ct = self.table(counts, caption="Children followed and repeat episodes (all years)",
                           count_cols=["n"], complementary=False)
        parts.append(h)
        tables["repeat_counts"] = ct
        # AWOL timing: binned hours from going AWOL to the start of exploitation
        ep = self._episodes()
        aw = self.cd.awol_episodes
        ep_aw = ep[ep["awol_id"].notna()].merge(
            aw[["awol_id", "start"]].rename(columns={"start": "awol_start"}), on="awol_id",
            how="inner")
        hours = (ep_aw["began_at"] - ep_aw["awol_start"]).dt.total_seconds() / 3600
        bins = [0, 24, 72, 168, 672, np.inf]
        labels = ["under 24 hours", "1–3 days", "3–7 days", "1–4 weeks", "over 4 weeks"]
        cnt = pd.cut(hours.clip(lower=0), bins=bins, labels=labels, right=False) \
            .value_counts().reindex(labels).fillna(0).astype(int)
        df = pd.DataFrame({"time_from_going_awol": labels, "episodes": cnt.to_numpy()})
        sup = self.suppress(df, count_cols=["episodes"])
        fig, ax = plots.new_figure("default")
        vals = pd.to_numeric(sup["episodes"], errors="coerce")
        hid = sup["episodes"].map(disclosure.is_hidden).to_numpy()
        x = np.arange(len(labels))
        ax.bar(x[~hid], vals[~hid], color=plots.OKABE_ITO["blue"])
        if hid.any():
            ax.bar(x[hid], [max(1, t - 1)] * int(hid.sum()), color=plots.SUPPRESSED_COLOR,
                   hatch=plots.SUPPRESSED_HATCH, edgecolor="#999999",
                   label="hidden (small count; bar height not data)")
            ax.legend()
        ax.set_xticks(x)
        ax.set_xticklabels(labels)
        ax.set_ylabel("confirmed episodes")
        ax.set_title("How soon after going AWOL did exploitation begin?")
        parts.append(self.figure(fig, "awol_timing", "Confirmed episodes that began during an "
                                 "AWOL spell, by time since the child went missing (all years).",
                                 data=sup))
        figs.append("awol_timing")
        tables["awol_timing"] = sup
        return Section(None, "".join(parts), tables=tables, figures=figs)

    # ---- program effects -------------------------------------------------------------------
    @_section("Program effects")
    def program_effects(self) -> Section:
        """Service referral and re-victimization (IPTW); police reporting after PA 11-180 (ITS)."""
        from dmst_eval import evaluation as ev

        parts, tables, figs = [], {}, []
        t = self.threshold
        # 1. services -> re-victimization within 12 months (weighted comparison)
        sf = ev.service_frame(self.cd, region=self._region_arg)
        n_ref = int(sf["referred"].sum()) if len(sf) else 0
        n_not = int(len(sf) - n_ref)
        n_out = int(sf["revictimized_12m"].sum()) if len(sf) else 0
        counts = pd.DataFrame({"group": ["referred within 30 days", "not referred"],
                               "victims": [n_ref, n_not],
                               "revictimized_12m": [
                                   int(sf.loc[sf["referred"] == 1, "revictimized_12m"].sum()),
                                   int(sf.loc[sf["referred"] == 0, "revictimized_12m"].sum())]})
        # the two groups add up (column totals); victims and re-victimized are nested, not added
        csup = self.suppress(counts, count_cols=["victims", "revictimized_12m"],
                             complementary="columns")
        enough = min(n_ref, n_not) >= 2 * t and n_out >= t
        if enough:
            covs = [c for c in ("male", "age_at_start", "prior_sexual_abuse", "prior_runaway",
                                "substance_use", "congregate_before", "awol_before")
                    if c in sf.columns]
            res = ev.iptw_effect(sf, "referred", "revictimized_12m", covs)
            summ = res.summary[res.summary["measure"] == "risk_difference"]
            if self.audience == "public":  # the unadjusted difference adds nothing for readers
                summ = summ[summ["method"] != "naive"]
            adj = summ[summ["method"] == res.method].iloc[0]
            self._cache["service_effect"] = (float(adj["estimate"]), float(adj["ci_lower"]),
                                             float(adj["ci_upper"]))
            et = summ[["method", "estimate", "ci_lower", "ci_upper"]].copy()
            et["method"] = et["method"].map({"naive": "unadjusted", "iptw": "weighted (IPTW)",
                                             "aipw": "doubly robust (AIPW)"}).fillna(et["method"])
            for c in ("estimate", "ci_lower", "ci_upper"):
                et[c] = (et[c].astype(float) * 100).round(1)
            et = et.rename(columns={"estimate": "risk difference (points)"})
            h, et2 = self.table(et, caption="Referral to Restore & Recovery services and "
                                "re-victimization within 12 months", count_cols=[],
                                note="Risk difference in percentage points (referred minus "
                                     "not referred), 95% CI from the stacked sandwich variance. "
                                     "Weights balance sex, age, risk flags and prior congregate "
                                     "care and AWOL; unmeasured differences may remain.")
            parts.append(h)
            tables["service_effect"] = et2
        else:
            parts.append(_p(f"Too few victims in {self.scope} with a year of follow-up to "
                            "estimate the effect of service referral reliably.", "dmst-note"))
        h, c2 = self.table(csup, caption="Victims with 12 months of follow-up, by referral")
        parts.append(h)
        tables["service_counts"] = c2
        # 2. police reports before/after PA 11-180 (statewide series or the region's)
        rp = self.cd.reports
        if self._region_arg:
            rp = rp[rp["region"].astype(str) == self._region_arg]
        pol = rp[rp["reporter_type"].astype(str) == "police"]
        end = min(self._pe, self.study[1])
        series = ev.monthly_counts(pol["received_at"], self.study[0], end)
        intervention = pd.Timestamp(next(iter(POLICY_DATES)))
        yearly = series.groupby(series.index.year).sum()
        ytab = pd.DataFrame({"year": yearly.index.astype(str), "police_reports": yearly.to_numpy()})
        ysup = self.suppress(ytab, count_cols=["police_reports"])
        pre = series[series.index < intervention]
        if series.sum() >= 4 * t and len(pre) >= 24 and pre.sum() >= t:
            its = ev.interrupted_time_series(series, intervention, family="negbin")
            lc = its.summary.set_index("term").loc["level_change"]
            fig, ax = plots.new_figure("wide")
            d = its.data
            ax.plot(d["date"], d["fitted"], color=plots.OKABE_ITO["blue"], label="model fit")
            ax.plot(d["date"], d["counterfactual"], color=plots.OKABE_ITO["vermillion"],
                    linestyle="--", label="without the law (pre-law trend continued)")
            ax.axvline(intervention, color=plots.REFERENCE_COLOR, linewidth=1)
            ax.set_ylabel("police reports per month (model)")
            ax.set_title("Police reports to the Careline before and after Public Act 11-180")
            ax.legend()
            parts.append(self.figure(
                fig, "police_reports_its",
                f"Segmented negative-binomial regression of monthly police reports with "
                f"month-of-year effects and Newey–West errors. Level change at October 2011: "
                f"rate ratio {lc['estimate']:.2f} (95% CI {lc['ci_lower']:.2f}–"
                f"{lc['ci_upper']:.2f}). Monthly counts are not shown (many are small); yearly "
                f"totals are in the table.", data=ysup))
            figs.append("police_reports_its")
            self._cache["its_level"] = (float(lc["estimate"]), float(lc["ci_lower"]),
                                        float(lc["ci_upper"]))
        else:
            parts.append(_p("Too few police reports to fit an interrupted time series.",
                            "dmst-note"))
        h, y2 = self.table(ysup, caption="Police reports to the Careline by year")
        parts.append(h)
        tables["police_reports"] = y2
        return Section(None, "".join(parts), tables=tables, figures=figs)

    # ---- methods and provenance ------------------------------------------------------------
    @_section("Methods and caveats")
    def methods(self) -> Section:
        t = self.threshold
        items = [
            f"Small numbers: every count from 1 to {t - 1} is shown as \"<{t}\" and a second "
            "number is hidden (\"suppressed\") wherever a total would otherwise reveal it; rates "
            "and percentages built on hidden counts are hidden too. A count of 0 is shown as 0.",
            "Confirmed victims are children with at least one episode the agency confirmed as "
            "trafficking, counted by the date the agency identified the episode; a repeat "
            "victim has two or more confirmed episodes.",
            "Regional briefs use the DCF region of the child's home town for child counts, the "
            "region responsible for the report for hotline counts, and the town where the "
            "exploitation began for the map.",
            "Risk factors are associations, not causes; they are estimated over the whole "
            "study window to have enough victims.",
            "Dates are shown to the month; no child identifier or date of an individual event "
            "appears in this brief.",
        ]
        if self.cd.is_synthetic:
            items.append("The data are synthetic: they were simulated with a known ground truth "
                         "to test the methods; the numbers say nothing about real children.")
        return Section(None, "<ul>" + "".join(f"<li>{_h.escape(s)}</li>" for s in items)
                       + "</ul>")

    @_section("Provenance")
    def provenance(self) -> Section:
        import platform

        import dmst_eval

        meta = self.cd.meta
        rows = [
            ("package", f"dmst-eval {dmst_eval.__version__}"),
            ("data source", str(meta.get("source", "extract"))),
            ("data hash (SHA-256)", str(meta.get("data_hash") or self.cd.data_hash)[:16]),
            ("schema version", str(meta.get("schema_version"))),
            ("generator seed", "" if meta.get("seed") is None else str(meta.get("seed"))),
            ("study window", f"{self.study[0].date()} to {self.study[1].date()}"),
            *[(k, "" if v is None else str(v)) for k, v in self.params.as_dict().items()
              if k not in ("data_path", "figures_dir")],
            ("data folder", Path(str(self.params.data_path)).name),
            ("resolved period", f"{self.period[0]} to {self.period[1]}"),
            ("resolved comparison", f"{self.comparison[0]} to {self.comparison[1]}"),
            ("suppression threshold", str(self.threshold)),
            ("run at (UTC)", self.started.strftime("%Y-%m-%d %H:%M")),
            ("software", f"Python {platform.python_version()}, pandas {pd.__version__}"),
        ]
        if self.errors:
            order = {getattr(Brief, n).title: k for k, n in enumerate(SECTIONS)}
            errs = sorted(self.errors, key=lambda e: order.get(e[0], len(order)))
            rows.append(("sections not computed", ", ".join(f"{a} ({b})" for a, b in errs)))
        df = pd.DataFrame(rows, columns=["item", "value"])
        html, t = self.table(df, caption="Provenance", count_cols=[])
        return Section(None, html, tables={"provenance": t})


def _as_count(s: pd.Series) -> pd.Series:
    """Numerators/denominators as nullable integers (NaN stays missing)."""
    v = pd.to_numeric(s, errors="coerce")
    return v.round().astype("Int64")


def _poisson_ratio_ci(a: int, b: int, ta: float, tb: float, level: float = 0.95):
    """Rate ratio (a/ta)/(b/tb) with the exact conditional (Clopper–Pearson) CI.

    Examples
    --------
    >>> [round(float(x), 3) for x in _poisson_ratio_ci(20, 10, 1, 1)]
    [2.0, 0.894, 4.785]
    """
    from scipy import stats

    alpha = 1 - level
    lo_p = stats.beta.ppf(alpha / 2, a, b + 1) if a > 0 else 0.0
    hi_p = stats.beta.ppf(1 - alpha / 2, a + 1, b) if b > 0 else 1.0
    k = tb / ta
    rr = (a / ta) / (b / tb) if b > 0 else np.inf
    lo = lo_p / (1 - lo_p) * k
    hi = hi_p / (1 - hi_p) * k if hi_p < 1 else np.inf
    return rr, lo, hi


def _cache_dir() -> Path | None:
    v = os.environ.get("DMST_EVAL_CACHE")
    if v is not None and v.strip().lower() in ("", "0", "off", "none"):
        return None
    return Path(v) if v else Path(tempfile.gettempdir()) / "dmst-eval-cache"


def _cache_key(path: Path) -> str:
    import hashlib

    stamp = [(f.name, f.stat().st_size, f.stat().st_mtime_ns)
             for f in sorted(path.iterdir()) if f.is_file()]
    return hashlib.sha256(json.dumps([str(path), stamp]).encode()).hexdigest()[:32]


def _cache_files(path: Path) -> tuple[Path, Path] | None:
    """(validated-bundle pickle, its ``.pending`` marker) for the bundle at ``path``; ``None``
    when the cache is off or ``path`` is not a bundle folder."""
    cdir = _cache_dir()
    if cdir is None or not path.is_dir():
        return None
    key = _cache_key(path)
    return cdir / f"{key}.pkl", cdir / f"{key}.pending"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. not ours to signal: it exists
        return True
    return True


def _wait_for_other(pending: Path, cfile: Path, wait: float) -> None:
    """Wait while another live process is validating the same bundle (its ``.pending``
    marker exists) and has not yet written ``cfile``; a stale marker is removed."""
    deadline = time.monotonic() + wait
    while pending.exists() and not cfile.exists():
        try:
            pid = int(pending.read_text() or "0")
        except (OSError, ValueError):
            pid = 0
        if pid and not _pid_alive(pid):
            pending.unlink(missing_ok=True)  # its owner died: validate here
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)


def load_validated(path, wait: float = 120.0) -> "Any":
    """:func:`dmst_eval.load` with a cache of the *validated* bundle.

    Validation is the slow part of loading and a batch of briefs loads the same bundle seven
    times. The first load validates as usual and pickles the result under a key made of the
    bundle's absolute path and every file's name, size and modification time; later loads of
    the unchanged files reuse it. Any change to a file changes the key (so the bundle is
    validated again). The cache lives in ``$DMST_EVAL_CACHE`` (default
    ``<tmp>/dmst-eval-cache``); ``DMST_EVAL_CACHE=off`` disables it.

    While one process validates a bundle it holds a ``<key>.pending`` marker; another process
    asking for the same bundle waits for that result (up to ``wait`` seconds, or until the
    owner exits) instead of validating it a second time. :func:`render` uses this to validate
    the data in its own process while the brief's kernel starts.
    """
    import pickle

    from dmst_eval.casedata import load

    path = Path(path).resolve()
    files = _cache_files(path)
    if files is None:
        return load(path)
    cfile, pending = files
    _wait_for_other(pending, cfile, wait)
    if cfile.exists():
        try:
            with open(cfile, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # a damaged cache entry is ignored and rewritten
            pass
    return _validate_into_cache(path, cfile, pending, owner=_claim(pending))


def _claim(pending: Path) -> bool:
    """Create the ``.pending`` marker for this process; False if another process holds it."""
    try:
        pending.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(pending, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except OSError:  # another process took the marker just now, or the cache is read-only
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _validate_into_cache(path: Path, cfile: Path, pending: Path, owner: bool):
    import pickle

    from dmst_eval.casedata import load

    try:
        cd = load(path)
        try:
            tmp = cfile.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(cd, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cfile)
        except OSError:
            pass
        return cd
    finally:
        if owner:
            pending.unlink(missing_ok=True)


def _prevalidate(data_path: Path, child_ids: bool = True) -> threading.Thread:
    """Prepare, in a background thread, what :func:`render` needs while the brief's kernel
    starts and runs (the two use separate cores): the validated bundle in the cache, so the
    kernel finds it ready instead of validating it itself, then the compiled HTML export
    templates and the data's child ids for the audit (the thread's ``child_ids``; None if they
    could not be read). Returns the thread; join it before exporting.

    The cache's ``.pending`` marker is taken *before* the thread starts, so the kernel always
    waits for this result rather than racing it. Nothing is validated when the cache is off,
    the bundle is already cached, or another process is validating it. Errors are left for the
    brief to report: without a cache entry the kernel validates again and fails with the full
    :class:`~dmst_eval.casedata.DataValidationError`.
    """
    cfile, pending = _cache_files(data_path) or (None, None)
    if cfile is not None and (cfile.exists() or not _claim(pending)):
        cfile = None

    def work():
        if cfile is not None:
            try:
                _validate_into_cache(data_path, cfile, pending, owner=True)
            except Exception:
                pass
        try:
            _warm_exporter()
        except Exception:  # the export itself will raise a clear error
            pass
        if child_ids:
            try:
                t.child_ids = _child_ids(data_path)
            except Exception:  # render() reads them again and reports the error
                pass

    t = threading.Thread(target=work, name="dmst-eval-prepare", daemon=True)
    t.child_ids = None
    t.start()
    return t


def _keep_attrs(df: pd.DataFrame, src: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.attrs = dict(src.attrs)
    return df


_LABELS = {
    "male": "male", "age_at_start": "age (per year)", "prior_sexual_abuse": "prior sexual abuse",
    "prior_runaway": "prior running away", "substance_use": "substance use",
    "juvenile_justice": "juvenile-justice involvement", "lgbtq": "LGBTQ+",
    "congregate_before": "congregate care before", "awol_before": "AWOL before",
    "male:prior_sexual_abuse": "male × prior sexual abuse",
}


#: Risk factors as the subject of a sentence (key findings); tables and plots use _LABELS.
_PROSE = {
    "male": "being male", "age_at_start": "being older (per year of age)",
    "prior_sexual_abuse": "a history of sexual abuse", "prior_runaway": "a history of running away",
    "juvenile_justice": "juvenile-justice involvement", "lgbtq": "identifying as LGBTQ+",
    "congregate_before": "an earlier congregate-care placement",
    "awol_before": "an earlier AWOL episode",
    "male:prior_sexual_abuse": "being male with a history of sexual abuse",
}


def _label(term: str) -> str:
    return _LABELS.get(str(term), str(term).replace("_", " "))


def _prose(term: str) -> str:
    """A risk factor as the subject of a sentence.

    >>> _prose("male"), _prose("substance_use")
    ('being male', 'substance use')
    """
    return _PROSE.get(str(term), _label(term))


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
@dataclass
class BriefResult:
    """What :func:`render` wrote."""

    html: Path
    notebook: Path
    pdf: Path | None
    audit: disclosure.AuditReport
    seconds: float
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        extra = f" and {self.pdf}" if self.pdf else ""
        return f"{self.html}{extra}"


def chromium_path() -> str | None:
    """Path of a headless-capable Chromium/Chrome, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def chromium_cmd(*args: str, user_data_dir: str) -> list[str]:
    """A headless Chromium command line with networking/background features off."""
    exe = chromium_path()
    if exe is None:
        raise BriefError("Chromium is not installed (apt-get install chromium)")
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}", *args]


def quiet() -> None:
    """Silence warnings in a brief (they would print into the published page) and set the
    house plotting style. Sections that fail are reported in the brief, not as warnings."""
    warnings.filterwarnings("ignore")
    plots.apply_style()


@functools.lru_cache(maxsize=1)
def _exporter():
    """The brief's HTML exporter, made once per process (compiling nbconvert's Jinja templates
    takes about half a second; a batch worker renders several briefs)."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exp = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                       exclude_output_prompt=True)
    exp.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"remove"}), enabled=True)
    exp.mathjax_url = ""  # no CDN script; the brief has no maths
    return exp


def _warm_exporter() -> None:
    """Compile the export templates now (render() does this while the kernel runs)."""
    import nbformat

    _exporter().from_notebook_node(nbformat.v4.new_notebook())


def _html_export(nb) -> str:
    """The brief's HTML from an executed notebook (a path or a notebook node, which is changed:
    its stderr outputs are dropped)."""
    import nbformat

    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(nb, as_version=4)
    for cell in nb.cells:  # stderr (warnings, logging) never goes into a published brief
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
    body, _ = _exporter().from_notebook_node(
        nb, resources={"metadata": {"name": "DMST evaluation brief"}})
    # a brief needs no JavaScript: drop every script but our JSON data blocks (MathJax and
    # mermaid loaders would reach for a CDN), and any external stylesheet
    body = re.sub(r"<script\b(?![^>]*dmst-)[^>]*>.*?</script>", "", body, flags=re.S)
    body = re.sub(r'<link[^>]+href="https?://[^"]*"[^>]*>', "", body)
    return body


def _print_pdf(html: Path, pdf: Path, timeout: float = 120) -> None:
    with tempfile.TemporaryDirectory(prefix="dmst-chromium-") as prof:
        cmd = chromium_cmd("--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                           html.resolve().as_uri(), user_data_dir=prof)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0 or not pdf.exists() or pdf.stat().st_size < 1000:
            raise BriefError(f"Chromium could not print the PDF (exit {r.returncode})")


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection inside the block. Exporting and auditing a brief allocate
    many short-lived objects; with the analysis stack loaded, each full collection walks every
    object of the process, which made the export three times slower (about 0.2 s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _kernel_ok() -> str:
    """The kernel briefs run in: ``dmst-eval`` when it is installed, otherwise this interpreter
    (Jupyter's native ``python3`` kernel, started with ``sys.executable``); logged either way."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    log = logging.getLogger("dmst_eval.briefs")
    ksm = KernelSpecManager()
    try:  # one spec looked up (listing them all would import ipykernel here, ~0.1 s)
        ksm.get_kernel_spec(KERNEL)
        log.info("running the brief in the Jupyter kernel %r", KERNEL)
        return KERNEL
    except NoSuchKernel:
        pass
    try:
        argv0 = ksm.get_kernel_spec("python3").argv[0]
    except NoSuchKernel:
        argv0 = ""
    # jupyter_client starts a spec whose argv[0] is a bare "python..." with sys.executable
    if argv0 not in ("python", "python3", f"python3.{sys.version_info[1]}", sys.executable):
        raise BriefError(f"Jupyter kernel {KERNEL!r} is not installed; run `make setup` (or "
                         f"python -m ipykernel install --sys-prefix --name {KERNEL})")
    log.info("Jupyter kernel %r not installed: running the brief in this interpreter (%s)",
             KERNEL, sys.executable)
    return "python3"


def render(params: dict | BriefParams | None = None, out_dir: str | Path = "reports",
           progress: bool = False, pdf: bool | None = None, timeout: int = 600,
           template: str | Path | None = None, child_ids: bool = True,
           strict: bool | None = None, kernel_manager=None) -> BriefResult:
    """Render one brief: execute, export HTML (code hidden), audit, then publish.

    Parameters
    ----------
    params : dict or BriefParams
        Notebook parameters (see :class:`BriefParams`); relative ``data_path`` is taken
        relative to the current directory.
    out_dir : path
        Where ``<slug>.html``, ``<slug>.ipynb`` (and ``<slug>.pdf``) go.
    progress : bool
        Show papermill's cell progress bar.
    pdf : bool, optional
        Print a PDF with headless Chromium. Default: when Chromium is installed. If asked for and
        Chromium is missing, the result's ``notes`` say so.
    timeout : int
        Per-cell execution timeout (seconds).
    template : path, optional
        Notebook to run (default :data:`BRIEF_NOTEBOOK`).
    child_ids : bool
        Also check the brief against the child ids of the data (exact matches).
    strict : bool, optional
        Fail the brief if any section cannot be computed (instead of showing a note in it).
        Default: the ``DMST_EVAL_BRIEF_STRICT`` environment variable.
    kernel_manager : jupyter_client.KernelManager, optional
        A running ``dmst-eval`` kernel to run the brief in instead of starting a new one
        (:func:`render_batch` gives each worker one kernel for all its briefs, which saves the
        kernel start and the imports of every brief after the first). Its namespace is reset
        (``%reset -f``) before the brief runs; it is left running afterwards.

    Returns
    -------
    BriefResult

    Raises
    ------
    BriefError
        Execution or export failed, or the disclosure audit failed. Nothing that looks like a
        complete brief is left in ``out_dir`` (earlier outputs of the same brief are removed and
        a ``<slug>.FAILED.txt`` explains why).
    """
    import papermill as pm

    t0 = time.perf_counter()
    if params is None:
        params = BriefParams(data_path="data/synthetic")
    elif isinstance(params, dict):
        params = BriefParams(**params)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = Path(params.data_path).resolve()
    if not data_path.exists():
        raise BriefError(f"data_path {params.data_path} does not exist")
    template = Path(template or BRIEF_NOTEBOOK)
    if not template.exists():
        raise BriefError(f"brief template {template} not found")
    kernel = _kernel_ok()
    slug = params.slug
    finals = {ext: out_dir / f"{slug}.{ext}" for ext in ("html", "ipynb", "pdf")}
    failed_note = out_dir / f"{slug}.FAILED.txt"
    work = Path(tempfile.mkdtemp(prefix=f".{slug}.", dir=out_dir))
    notes: list[str] = []
    try:
        run_params = params.as_dict()
        run_params["data_path"] = str(data_path)
        if params.figures_dir:
            run_params["figures_dir"] = str(Path(params.figures_dir).resolve())
        nb_tmp = work / f"{slug}.ipynb"
        old_strict = os.environ.get("DMST_EVAL_BRIEF_STRICT")
        if strict is not None:  # the kernel inherits this process's environment
            os.environ["DMST_EVAL_BRIEF_STRICT"] = "1" if strict else "0"
        # validate, compile the templates and read the child ids while the kernel runs
        pre = _prevalidate(data_path, child_ids)
        engine_kw = {}
        if kernel_manager is not None:
            _reset_kernel(kernel_manager, strict)
            engine_kw["km"] = kernel_manager
        try:
            nb = pm.execute_notebook(
                str(template), str(nb_tmp), parameters=run_params, kernel_name=kernel,
                cwd=str(work), execution_timeout=timeout, progress_bar=progress,
                log_output=False, report_mode=False,
                # the notebook is written once, when the last cell ends (a failed run is
                # removed anyway): saving it after every cell re-validates and rewrites the
                # growing notebook ~30 times; a graceful kernel shutdown would add ~0.7 s
                request_save_on_cell_execute=False, shutdown_kernel="immediate", **engine_kw)
        except pm.PapermillExecutionError as e:
            raise BriefError(f"brief {slug} failed in cell {e.exec_count}: {e.ename}: "
                             f"{str(e.evalue)[:300]}") from None
        finally:
            pre.join()
            if strict is not None:
                if old_strict is None:
                    os.environ.pop("DMST_EVAL_BRIEF_STRICT", None)
                else:
                    os.environ["DMST_EVAL_BRIEF_STRICT"] = old_strict
        html_tmp = work / f"{slug}.html.partial"
        with _gc_paused():
            html_tmp.write_text(_html_export(nb), encoding="utf-8")
            ids = () if not child_ids else \
                pre.child_ids if pre.child_ids is not None else _child_ids(data_path)
            rep = disclosure.audit(html_tmp, threshold=params.threshold, child_ids=ids)
            rep_nb = disclosure.audit(nb_tmp, threshold=params.threshold, child_ids=ids)
        if not rep_nb.passed:
            rep.problems = pd.concat([rep.problems, rep_nb.problems], ignore_index=True)
        if not rep.passed:
            first = rep.problems.iloc[0]
            raise BriefError(f"disclosure audit failed for {slug}: {len(rep.problems)} "
                             f"problem(s); first: {first['kind']} in {first['where']}: "
                             f"{first['detail']}")
        if rep.n_tables == 0:
            raise BriefError(f"brief {slug} has no tables: the notebook did not produce the brief")
        # publish: the notebook first, the HTML last (a complete-looking HTML = audited brief)
        for f in finals.values():
            f.unlink(missing_ok=True)
        failed_note.unlink(missing_ok=True)
        os.replace(nb_tmp, finals["ipynb"])
        html_final = work / f"{slug}.html"
        os.replace(html_tmp, html_final)
        os.replace(html_final, finals["html"])
        rep.path = finals["html"]
        pdf_path = None
        want_pdf = (chromium_path() is not None) if pdf is None else pdf
        if want_pdf:
            if chromium_path() is None:
                notes.append("PDF not written: Chromium is not installed")
            else:
                tmp_pdf = work / f"{slug}.pdf"
                try:
                    _print_pdf(finals["html"], tmp_pdf)
                    os.replace(tmp_pdf, finals["pdf"])
                    pdf_path = finals["pdf"]
                except (BriefError, subprocess.TimeoutExpired) as e:
                    notes.append(f"PDF not written: {e}")
        return BriefResult(html=finals["html"], notebook=finals["ipynb"], pdf=pdf_path,
                           audit=rep, seconds=time.perf_counter() - t0, notes=notes)
    except BaseException as e:
        for f in finals.values():
            f.unlink(missing_ok=True)
        msg = str(e) if isinstance(e, BriefError) else f"{type(e).__name__}: {e}"
        try:
            failed_note.write_text(f"brief {slug} was NOT published: {msg}\n", encoding="utf-8")
        except OSError:
            pass
        if isinstance(e, BriefError):
            raise
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise BriefError(msg) from e
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _child_ids(data_path: Path) -> set[str]:
    p = data_path / "children.parquet"
    try:
        if p.exists():
            return set(pd.read_parquet(p, columns=["child_id"])["child_id"].astype(str))
        p = data_path / "children.csv"
        if p.exists():
            return set(pd.read_csv(p, usecols=["child_id"], dtype=str)["child_id"])
    except Exception:  # the pattern checks still run
        return set()
    return set()


def _reset_kernel(km, strict: bool | None) -> None:
    """Make a reused kernel like a new one for the next brief: clear its namespace and set the
    strictness the brief asks for (a running kernel does not see this process's environment)."""
    if not km.is_alive():
        km.restart_kernel(now=True)
    if strict is None:
        env = "_os.environ.pop('DMST_EVAL_BRIEF_STRICT', None)"
        if os.environ.get("DMST_EVAL_BRIEF_STRICT") is not None:
            env = f"_os.environ['DMST_EVAL_BRIEF_STRICT'] = {os.environ['DMST_EVAL_BRIEF_STRICT']!r}"
    else:
        env = f"_os.environ['DMST_EVAL_BRIEF_STRICT'] = {'1' if strict else '0'!r}"
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        # the last brief froze its heap (Brief.from_params): unfreeze and collect it, so its
        # cyclic garbage (closed figures, for one) is freed rather than kept for good
        reply = kc.execute_interactive(f"%reset -f\nimport gc as _gc, os as _os\n{env}\n"
                                       "_gc.unfreeze()\n_gc.collect()\ndel _gc, _os",
                                       store_history=False, timeout=60,
                                       output_hook=lambda msg: None)
        if reply["content"].get("status") != "ok":
            raise BriefError("could not reset the reused kernel: "
                             f"{reply['content'].get('evalue', '')}")
    finally:
        kc.stop_channels()


_WORKER_KERNEL: list = []  # (kernel manager, its folder): one per batch worker process


def _worker_kernel():
    """This worker's kernel, started on first use (and again if it has died)."""
    if _WORKER_KERNEL and _WORKER_KERNEL[0][0].is_alive():
        return _WORKER_KERNEL[0][0]
    from multiprocessing import util as mp_util

    from jupyter_client import KernelManager

    _discard_worker_kernel()
    km = KernelManager(kernel_name=_kernel_ok())
    cwd = tempfile.mkdtemp(prefix="dmst-kernel-")
    km.start_kernel(cwd=cwd)
    # pool workers leave through os._exit, past atexit: multiprocessing's own finalizers run
    mp_util.Finalize(km, _discard_worker_kernel, exitpriority=10)
    _WORKER_KERNEL.append((km, cwd))
    return km


def _discard_worker_kernel() -> None:
    while _WORKER_KERNEL:
        km, cwd = _WORKER_KERNEL.pop()
        try:
            km.shutdown_kernel(now=True)
        except Exception:  # already gone
            pass
        shutil.rmtree(cwd, ignore_errors=True)


def _render_one(params: dict, out_dir: str, pdf: bool | None, timeout: int,
                strict: bool | None = None, reuse_kernel: bool = False) -> dict:
    t0 = time.perf_counter()
    region = params.get("region", "statewide")
    try:
        km = _worker_kernel() if reuse_kernel else None
        res = render(params, out_dir=out_dir, pdf=pdf, timeout=timeout, strict=strict,
                     kernel_manager=km)
        return {"region": region, "status": "ok", "path": str(res.html),
                "seconds": round(time.perf_counter() - t0, 1), "error": ""}
    except Exception as e:  # one failure never stops the batch
        if reuse_kernel:
            _discard_worker_kernel()  # the next brief gets a fresh kernel, whatever went wrong
        return {"region": region, "status": "failed", "path": "",
                "seconds": round(time.perf_counter() - t0, 1),
                "error": str(e).splitlines()[0][:300] if str(e) else type(e).__name__}


def render_batch(regions="all", data_path: str = "data/synthetic", audience: str = "internal",
                 out_dir: str | Path = "reports", progress: bool = False, workers: int = 2,
                 pdf: bool | None = False, timeout: int = 600, strict: bool | None = None,
                 reuse_kernels: bool = True, **params) -> pd.DataFrame:
    """Render statewide + regional briefs in parallel processes.

    Parameters
    ----------
    regions : "all", str or list
        ``"all"`` = statewide + Region 1..6; or a comma-separated string / list of regions.
    workers : int
        Parallel processes (default 2).
    reuse_kernels : bool
        Each worker runs its briefs one after another in one kernel, reset between briefs
        (see :func:`render`'s ``kernel_manager``); a brief that fails gets its worker a new
        kernel. ``False`` starts a new kernel for every brief (about 3 s more each).
    **params
        Other brief parameters (period, threshold…), shared by all briefs.

    Returns
    -------
    DataFrame
        region, status ("ok" / "failed"), path, seconds, error — one row per brief, in the
        order asked. A failed brief leaves no complete-looking HTML.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing as mp

    if regions in (None, "all"):
        todo = ["statewide", *schema.REGIONS]
    else:
        todo = [r.strip() for r in regions.split(",")] if isinstance(regions, str) \
            else list(regions)
    todo = [normalise_region(r) for r in todo]
    jobs = [dict(params, region=r, data_path=str(data_path), audience=audience,
                 figures_dir=params.get("figures_dir")) for r in todo]
    for j in jobs:  # fail fast on bad parameters, before starting processes
        BriefParams(**j)
    rows: dict[int, dict] = {}
    bar = None
    # fork (Linux) starts workers without re-importing the stack; all workers are started by
    # the first submit, before the progress bar starts its thread
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ex = ProcessPoolExecutor(max_workers=max(1, int(workers)), mp_context=mp.get_context(method))
    try:
        futs = {ex.submit(_render_one, j, str(out_dir), pdf, timeout, strict, reuse_kernels): k
                for k, j in enumerate(jobs)}
        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(TextColumn("briefs"), BarColumn(), TextColumn("{task.completed}/"
                           "{task.total}"), TimeElapsedColumn(), TextColumn("{task.description}"))
            task = bar.add_task("", total=len(jobs))
            bar.start()
        for f in as_completed(futs):
            k = futs[f]
            try:
                rows[k] = f.result()
            except Exception as e:  # worker crashed
                rows[k] = {"region": jobs[k]["region"], "status": "failed", "path": "",
                           "seconds": float("nan"), "error": f"{type(e).__name__}: {e}"}
            if bar is not None:
                bar.update(task, advance=1, description=f"{rows[k]['region']}: "
                                                        f"{rows[k]['status']}")
    finally:
        if bar is not None:
            bar.stop()
        ex.shutdown(wait=True, cancel_futures=True)
    return pd.DataFrame([rows[k] for k in range(len(jobs))],
                        columns=["region", "status", "path", "seconds", "error"])
