"""The context every brief section receives: :class:`Brief` (data, parameters, windows and the
publishing primitives) and :class:`Section` (what a section returns).

**The publishing primitives are the only way a section shows a number**:

* :meth:`Brief.table` — a DataFrame, suppressed (unless it already was) and rendered;
* :meth:`Brief.count` — a count for prose ("fewer than 5" when small);
* :meth:`Brief.figure` — a figure, embedded as PNG together with the suppressed data it shows;
* :meth:`Brief.suppress` — a table suppressed at the brief's threshold, for a figure's data or
  for a table the section formats before :meth:`Brief.table`.

All go through :mod:`dmst_eval.disclosure`. Counts a section registers in the batch ledger (its
``cells(brief, ledger)``; see :mod:`dmst_eval.briefs.disclosure_plan`) are shown by
``brief.table(df, cells=keys)`` and ``brief.count(n, key=...)`` as the **batch plan** says, so
that no count hidden in one brief can be worked out from the others.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from dmst_eval import disclosure, plots
from dmst_eval.briefs import markup
from dmst_eval.briefs.params import (DEFAULT_PERIOD_YEARS, POLICY_DATES, BriefParams,
                                     parse_date)
from dmst_eval.errors import BriefError

__all__ = ["Brief", "Section", "section", "STACK", "VALIDATION_STACK"]

#: Modules the sections compute with (imported by :meth:`Brief.from_params`; the benchmark's
#: floor imports the same list). ``esda`` (with libpysal, for the towns' spatial statistics)
#: and ``jinja2`` (the HTML templates) are imported lazily by the library, but every brief needs
#: them.
STACK = ("pyarrow.parquet", "geopandas", "statsmodels.api", "matplotlib.pyplot", "esda.moran",
         "jinja2", "dmst_eval.tracking", "dmst_eval.rba", "dmst_eval.risk", "dmst_eval.recidivism",
         "dmst_eval.evaluation", "dmst_eval.hotspots", "dmst_eval.geography")
#: What loading *and validating* a bundle imports besides :data:`STACK` (pandera, with the
#: checks it registers on first use). A brief that validates its data imports it in its setup
#: cell; one reading a batch's validated copy does not. The benchmark's floor imports it too,
#: as its brief validates.
VALIDATION_STACK = ("pandera.pandas", "pandera.backends.pandas.register",
                    "pandera.backends.pandas.builtin_checks")


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
        return markup.section(self.title, self.html)

    def __repr__(self) -> str:
        return f"<brief section: {self.title or 'untitled'}>"


def section(title: str | None, required: bool = False):
    """Decorator for a section module's ``build(brief)``: computed once per brief (later calls
    return the same :class:`Section`), titled, and on failure replaced by a short note that
    names only the exception type (never a data value). ``brief.strict`` re-raises instead, and
    so does a ``required`` section (the header: a brief without it must not be published)."""
    def deco(fn: Callable[["Brief"], Section]):
        name = fn.__module__.rsplit(".", 1)[-1]

        @functools.wraps(fn)
        def wrapper(brief: "Brief") -> Section:
            key = ("section", name)
            if key in brief.cache:
                return brief.cache[key]
            try:
                out = fn(brief)
            except Exception as exc:
                if brief.strict or required:
                    raise
                what = title or name
                brief.errors.append((what, type(exc).__name__))
                warnings.warn(f"brief section {what!r} failed: {type(exc).__name__}",
                              stacklevel=2)
                out = Section(title, markup.note(
                    f"This section could not be computed from these data "
                    f"({type(exc).__name__}). See the methods section."),
                    error=type(exc).__name__)
            out.title = title
            brief.cache[key] = out
            return out
        wrapper.title = title
        wrapper.section_name = name
        return wrapper
    return deco


def _month(ts) -> str:
    return pd.Timestamp(ts).strftime("%B %Y")


def _json_safe(v):
    import numpy as np

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


class Brief:
    """One brief: the bundle, the parameters, the resolved windows and the publishing primitives.

    Sections (``dmst_eval.briefs.sections``) receive it as their only argument.

    Parameters
    ----------
    cd : CaseData
        The (validated) bundle.
    params : BriefParams or dict
        Brief parameters.
    strict : bool, optional
        Raise if a section fails instead of showing a note. Default: environment variable
        ``DMST_EVAL_BRIEF_STRICT`` (tests set it).

    Attributes
    ----------
    period, comparison : tuple of str
        The resolved reporting and comparison periods (ISO dates, both inclusive).
    study : tuple of Timestamp
        The data's study window.
    cache : dict
        Results shared between sections (tracking summaries, the risk model, finished
        sections), so each is computed once per brief.

    Examples
    --------
    >>> from dmst_eval.casedata import CaseData
    >>> cd = CaseData.from_frames(meta={"source": "synthetic", "study_start": "2008-01-01",
    ...                                 "study_end": "2025-12-31"})
    >>> b = Brief(cd, {"region": "statewide", "figures_dir": None})
    >>> b.period, b.comparison
    (('2023-01-01', '2025-12-31'), ('2020-01-01', '2022-12-31'))
    >>> "synthetic" in b.section("header").html.lower()
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
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.cache: dict[Any, Any] = {}
        self.figures_dir = params.figures_dir
        s0, s1 = pd.Timestamp(cd.meta["study_start"]), pd.Timestamp(cd.meta["study_end"])
        self.study = (s0, s1)
        pe = parse_date(params.period_end, "period_end") or s1
        ps = parse_date(params.period_start, "period_start") or max(
            s0, pd.Timestamp(year=pe.year - DEFAULT_PERIOD_YEARS + 1, month=1, day=1))
        if ps > pe:
            raise BriefError(f"period_start {ps.date()} is after period_end {pe.date()}")
        length = pe - ps
        ce = parse_date(params.comparison_end, "comparison_end") or (ps - pd.Timedelta(days=1))
        cs = parse_date(params.comparison_start, "comparison_start") or max(
            s0, pd.Timestamp(year=ce.year - (pe.year - ps.year), month=ps.month, day=ps.day)
            if ps.month == 1 and ps.day == 1 else ce - length)
        if cs > ce:
            raise BriefError(f"comparison_start {cs.date()} is after comparison_end {ce.date()}")
        #: resolved windows as Timestamps (period start/end, comparison start/end)
        self.ps, self.pe, self.cs, self.ce = ps, pe, cs, ce
        self.period = (ps.strftime("%Y-%m-%d"), pe.strftime("%Y-%m-%d"))
        self.comparison = (cs.strftime("%Y-%m-%d"), ce.strftime("%Y-%m-%d"))
        self.scope = "Connecticut (statewide)" if self.region == "statewide" else \
            f"DCF {self.region}"
        #: ``None`` statewide, else ``"Region N"`` (the ``region=`` argument of the analyses)
        self.region_arg = None if self.region == "statewide" else self.region

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_params(cls, **params) -> "Brief":
        """Load (and validate) the data named by ``data_path`` and build the brief: the
        notebook's entry point. A private validated copy written by
        :func:`~dmst_eval.briefs.render_batch` is read without validating it again.

        The analysis modules the sections use are imported here, so that the section cells'
        timings are their own compute (and a missing dependency fails before any section)."""
        import importlib

        from dmst_eval.briefs.bundle import load_bundle

        p = BriefParams(**params)
        for mod in STACK:
            importlib.import_module(mod)
        return cls(load_bundle(p.data_path), p)

    # -- sections ----------------------------------------------------------------------------
    def section(self, name: str) -> Section:
        """Section ``name`` (a module of :mod:`dmst_eval.briefs.sections`), computed once."""
        from dmst_eval.briefs import sections

        return sections.module(name).build(self)

    # -- publishing primitives ---------------------------------------------------------------
    @property
    def plan(self):
        """The batch disclosure plan (:func:`dmst_eval.briefs.disclosure_plan.plan_for`): what
        the whole standard batch hides, computed once per brief (or read from the batch)."""
        from dmst_eval.briefs.disclosure_plan import plan_for

        return plan_for(self)

    def window_label(self, which: str = "period") -> str:
        """The ledger's period label of the reporting (``"period"``) or comparison window:
        ``"2023-2025"`` for whole calendar years, else the two dates."""
        s, e = {"period": (self.ps, self.pe), "comparison": (self.cs, self.ce)}[which]
        if (s.month, s.day, e.month, e.day) == (1, 1, 12, 31):
            return f"{s.year}-{e.year}"
        return f"{s.strftime('%Y-%m-%d')}..{e.strftime('%Y-%m-%d')}"

    def year_label(self, year, which: str = "period") -> str:
        """The ledger's period label of one year of a window (the window's label is added
        when the window cuts the year)."""
        w = self.window_label(which)
        return str(year) if ".." not in w else f"{year} in {w}"

    def key(self, measure: str, period: str) -> "disclosure.CellKey":
        """The ledger key of a count this brief shows: ``(measure, brief.region, period)``.

        Examples
        --------
        >>> from dmst_eval.casedata import CaseData
        >>> cd = CaseData.from_frames(meta={"source": "synthetic", "study_start": "2008-01-01",
        ...                                 "study_end": "2025-12-31"})
        >>> b = Brief(cd, {"region": "Region 3", "figures_dir": None})
        >>> b.key("confirmed victims", b.window_label("period"))
        CellKey(measure='confirmed victims', region='Region 3', period='2023-2025')
        """
        return disclosure.CellKey(str(measure), self.region, str(period))

    def suppress(self, table: pd.DataFrame, **kw) -> pd.DataFrame:
        """:func:`dmst_eval.disclosure.suppress` at this brief's threshold."""
        return disclosure.suppress(table, threshold=self.threshold, **kw)

    def count(self, n, key=None) -> str:
        """A count for prose: the number, or "fewer than 5" when small.

        With ``key`` (a ledger key registered by the section's ``cells()``) the count is shown
        as the batch plan says: the number, "fewer than t" (primary) or "a number not shown"
        (hidden so that another count cannot be worked out).
        """
        if key is None:
            return disclosure.count_phrase(n, self.threshold)
        st = self.plan.status(key, self.audience)
        if st == "unplanned":
            raise disclosure.DisclosureError(
                f"count {disclosure.CellKey(*key).label()!r} is not in the batch plan: "
                "register it in the section's cells()")
        if st in ("primary", "zero"):
            return f"fewer than {self.threshold}"
        if st in ("secondary", "withheld"):
            return "a number not shown"
        return f"{int(n):,}"

    def shown(self, key) -> bool:
        """True if the batch plan shows the count ``key`` to this brief's audience."""
        return self.plan.status(key, self.audience) == "shown"

    def table(self, table: pd.DataFrame, caption: str | None = None, note: str | None = None,
              digits: int = 1, cells: pd.DataFrame | None = None, rate_cols=None,
              **suppress_kw) -> tuple[str, pd.DataFrame]:
        """Suppress and render a table; return (html, table).

        Parameters
        ----------
        cells : DataFrame of CellKey, optional
            Ledger keys of the count cells (:func:`dmst_eval.disclosure.keys_frame`), registered
            by the section's ``cells(brief, ledger)``. The counts are then shown as the **batch
            plan** says (:func:`dmst_eval.disclosure.apply_plan`), consistently across all
            briefs of the batch. Without it the table is suppressed on its own
            (:func:`dmst_eval.disclosure.suppress`), which protects it within the table only.
        rate_cols : dict, optional
            With ``cells``: ``{rate column: count column(s)}`` hidden with their counts.

        Examples
        --------
        In a section::

            tab, keys = _counts(brief)           # the same function cells() registers from
            html, shown = brief.table(tab, caption="AWOL episodes by year", cells=keys)
        """
        if cells is not None:
            table = disclosure.apply_plan(table, cells, self.plan, self.audience, rate_cols)
        elif "disclosure" not in table.attrs:
            if rate_cols is not None:
                suppress_kw["rate_cols"] = rate_cols
            table = self.suppress(table, **suppress_kw)
        return disclosure.table_html(table, caption=caption, note=note, digits=digits), table

    def figure(self, fig, name: str, caption: str, data: pd.DataFrame | None = None,
               alt: str | None = None) -> str:
        """Embed ``fig`` with its (suppressed) data; save it to figures_dir.

        ``fig`` is a matplotlib Figure (embedded as a base64 PNG, drawn once: the same PNG goes
        into the brief and into ``figures_dir``) or a :class:`~dmst_eval.sparkline.Sparkline`
        (inline SVG, saved as ``.svg``).
        """
        from dmst_eval.sparkline import Sparkline

        svg = png = None
        if isinstance(fig, Sparkline):
            svg = fig.svg
        else:
            import matplotlib.pyplot as plt

            plots.fit_margins(fig)  # fixed margins where the figure is simple enough
            png = plots.png_bytes(fig)
            plt.close(fig)
        if self.figures_dir:
            out = Path(self.figures_dir)
            out.mkdir(parents=True, exist_ok=True)
            stem = plots._safe_name(f"{self.params.slug}_{name}")
            if svg is not None:
                fig.save(out / f"{stem}.svg")
            else:
                (out / f"{stem}.png").write_bytes(png)
        data_json = None
        if data is not None:
            info = data.attrs.get("disclosure")
            if info is None:
                raise disclosure.DisclosureError(f"figure {name!r}: its data did not pass "
                                                 "through suppress()")
            data_json = markup.script_json({
                "name": name, "columns": [str(c) for c in data.columns],
                "count_cols": info.get("count_cols", []), "threshold": info["threshold"],
                "rows": [[_json_safe(v) for v in row]
                         for row in data.itertuples(index=False, name=None)]})
        return markup.render_template(
            "figure.html.j2", name=name, svg=svg, alt=alt or caption, caption=caption,
            png_b64=None if png is None else base64.b64encode(png).decode(),
            data_json=data_json)

    def allowed_dates(self) -> list[str]:
        """The day-precision dates a brief may show (parameters, study window, run date,
        policy dates); the header declares them for the audit."""
        d = {*self.period, *self.comparison, self.study[0].strftime("%Y-%m-%d"),
             self.study[1].strftime("%Y-%m-%d"), self.started.strftime("%Y-%m-%d"),
             *POLICY_DATES}
        return sorted(d)

    # -- small formatting helpers sections share -------------------------------------------
    month = staticmethod(_month)
