"""One error family for the whole toolkit, the shared column check and the one window rule.

Every error the toolkit raises on purpose derives from :class:`DmstEvalError`:

``DmstEvalError``
    ``InputError`` (also a ``ValueError``) — bad arguments or data given to any analysis. It carries
    ``table``, ``column``, ``rows`` and ``expected`` so a message always says where and what.

        ``DataValidationError`` — a case-data bundle broke one or more schema rules; carries a
        list of such problems (``problems``).

    ``DisclosureError`` — publishing would show, or let a reader work out, a count below the
    suppression threshold.

    ``BriefError`` — a brief could not be rendered or failed its audit.

Messages never print a child id, a birth date or an exact event date from the data: ``rows`` holds
row positions or record keys chosen by the caller, and callers pass positions when the key is a
child id.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "DmstEvalError",
    "InputError",
    "DataValidationError",
    "DisclosureError",
    "BriefError",
    "require_columns",
    "resolve_window",
    "deprecated_names",
]


class DmstEvalError(Exception):
    """Base class of every error dmst-eval raises on purpose."""


class InputError(DmstEvalError, ValueError):
    """Bad arguments or data given to an analysis.

    Parameters
    ----------
    message : str
        What went wrong, in words a user can act on.
    table, column : str, optional
        Where the problem is (the DataFrame's role, e.g. ``"episodes"`` or ``"df"``; the column).
    rows : sequence, optional
        Up to ten offending row positions or keys (never child ids or dates).
    expected : str, optional
        What the data or argument should look like.

    Examples
    --------
    >>> err = InputError("missing column", table="df", column="age", expected="a numeric column")
    >>> print(err)
    df.age: missing column (expected a numeric column)
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, message: str, *, table: str | None = None, column: str | None = None,
                 rows: Sequence[Any] | None = None, expected: str | None = None):
        self.message = message
        self.table = table
        self.column = column
        self.rows = list(rows)[:10] if rows is not None else None
        self.expected = expected
        super().__init__(self._text())

    def _text(self) -> str:
        loc = ".".join(str(x) for x in (self.table, self.column) if x)
        out = f"{loc}: {self.message}" if loc else self.message
        if self.rows:
            out += f" (rows {', '.join(map(str, self.rows))})"
        if self.expected:
            out += f" (expected {self.expected})"
        return out

    def __str__(self) -> str:
        return self._text()


class DataValidationError(InputError):
    """A case-data bundle broke one or more schema rules.

    ``problems`` is a list of dicts with keys ``table``, ``column`` (None for a table-level
    problem), ``rows`` (up to 10 offending keys, or ``"row N"`` — 1-based data row — where a row
    has no usable key), ``n_rows`` (how many rows are affected in total) and ``expected``
    (what the data should look like). ``table``, ``column``, ``rows`` and ``expected`` of the
    error itself are those of the first problem.
    """

    def __init__(self, problems: list[dict[str, Any]], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        first = self.problems[0] if self.problems else {}
        self.message = f"{len(self.problems)} problem(s) found"
        self.table = first.get("table")
        self.column = first.get("column")
        self.rows = list(first.get("rows") or [])[:10]
        self.expected = first.get("expected")
        ValueError.__init__(self, self._text())

    def _text(self) -> str:
        where = f" in {self.source}" if self.source else ""
        lines = [f"{len(self.problems)} problem(s) found{where}:"]
        for p in self.problems:
            loc = str(p["table"]) + (f".{p['column']}" if p.get("column") else "")
            n = p.get("n_rows", len(p.get("rows") or []))
            rows = p.get("rows") or []
            if rows:
                more = f" (+{n - len(rows)} more)" if n > len(rows) else ""
                rtxt = f" {n} row(s) [{', '.join(map(str, rows))}{more}]"
            else:
                rtxt = ""
            found = p.get("found")
            ftxt = f"; found {', '.join(repr(v) for v in found)}" if found else ""
            lines.append(f"  - {loc}:{rtxt} expected {p['expected']}{ftxt}")
        return "\n".join(lines)


class DisclosureError(DmstEvalError, ValueError):
    """Publishing would show, or let a reader work out, a count below the threshold."""


class BriefError(DmstEvalError, RuntimeError):
    """A brief could not be rendered, or it failed its audit."""


def require_columns(df: pd.DataFrame, columns: Iterable[str | None], table: str = "df",
                    expected: str | None = None) -> None:
    """Raise :class:`InputError` naming the first missing column of ``df``.

    ``None`` entries (optional arguments left unset) are ignored.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a", None])
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a", "b"], table="episodes")
    Traceback (most recent call last):
    ...
    dmst_eval.errors.InputError: episodes.b: column not found (expected a column named 'b'; \
columns present: a)
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame, got {type(df).__name__}", table=table)
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        present = ", ".join(map(str, list(df.columns)[:20]))
        raise InputError("column not found", table=table, column=str(missing[0]),
                         expected=expected or f"a column named {missing[0]!r}; columns present: "
                                              f"{present}")


def _day(x: Any, what: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(x)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"cannot read {what}={x!r} as a date",
                         expected="a date such as '2021-12-31'") from exc
    if ts is pd.NaT:
        raise InputError(f"{what} is missing", expected="a date such as '2021-12-31'")
    return ts.normalize()


def resolve_window(start: Any = None, end: Any = None, *, default_start: Any = None,
                   default_end: Any = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The one window rule: ``start`` and ``end`` are whole days, both inclusive.

    Returns ``(lo, hi)`` where ``lo`` is midnight of the first day and ``hi`` is midnight of the
    day *after* the last day, so that an event at time ``t`` is in the window exactly when
    ``lo <= t < hi``. A time of day given with ``end`` is ignored (``"2015-11-22 23:59"`` and
    ``"2015-11-22"`` mean the same window). ``None`` takes the default (e.g. the study window).

    Examples
    --------
    >>> resolve_window("2015-01-01", "2015-11-22 23:59")
    (Timestamp('2015-01-01 00:00:00'), Timestamp('2015-11-23 00:00:00'))
    >>> resolve_window(None, "2015-11-22", default_start="2008-01-01")
    (Timestamp('2008-01-01 00:00:00'), Timestamp('2015-11-23 00:00:00'))
    """
    s = start if start is not None else default_start
    e = end if end is not None else default_end
    if s is None or e is None:
        raise InputError("a window needs a start and an end",
                         expected="start and end dates, or a study window in the data's meta")
    lo, last = _day(s, "start"), _day(e, "end")
    if last < lo:
        raise InputError(f"end ({last.date()}) is before start ({lo.date()})",
                         expected="start <= end")
    return lo, last + pd.Timedelta(days=1)


def deprecated_names(module: str, renamed: dict[str, str], namespace: dict[str, Any]):
    """A module ``__getattr__`` that keeps renamed names working with a ``DeprecationWarning``.

    ``renamed`` maps an old name to its new one: a name in ``namespace`` (the module's
    ``globals()``) or an error class of this module (the old per-module error classes are now
    :class:`InputError` itself, so ``except OldError`` still catches every input error). See
    CHANGELOG.md for the renames.

    Examples
    --------
    >>> __getattr__ = deprecated_names(__name__, {"RiskModel": "RiskModelResult"}, globals())
    """

    def __getattr__(name: str):
        if name not in renamed:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        import warnings

        new = renamed[name]
        own = new not in __all__  # an error class lives here; anything else in the module
        where = module if own else __name__
        warnings.warn(f"{module}.{name} is deprecated; use {where}.{new}",
                      DeprecationWarning, stacklevel=2)
        return namespace[new] if own else globals()[new]

    return __getattr__
