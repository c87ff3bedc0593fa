"""Small-cell suppression of one table, and tables as HTML the audit can check.

Two tools keep a brief safe to share:

* :func:`suppress` hides small counts in a table (primary suppression), hides a second cell
  wherever a row or column total would otherwise let a reader work out a hidden count
  (complementary suppression), and hides rates and percentages computed from hidden counts.
* :func:`audit` reads a rendered brief (HTML or executed notebook) and reports any count below the
  threshold, any child identifier, any column named ``*_id`` and any exact (day-precision) date
  that is not one of the brief's declared parameter or policy dates. :func:`dmst_eval.briefs.render`
  refuses to publish a brief whose audit fails.

:func:`table_html` renders a suppressed table as HTML that the audit can check (it marks the
table as having passed through :func:`suppress` and marks count cells).

Rules (what a reader of a brief should know)
--------------------------------------------
* A count from 1 to ``threshold - 1`` is shown as ``"<threshold"`` (``"<5"`` by default; public
  briefs use 10). **A count of 0 is shown as 0**: "none" is not disclosive in these tables and
  hiding zeros would hide real absence of harm.
* Complementary suppression: within every row and every column of counts, the number of hidden
  cells is either 0 or at least 2, so a hidden count cannot be recovered by subtracting the shown
  cells from a row or column total (shown in the table or published elsewhere). The second cell
  hidden is the smallest non-zero shown cell of that row/column (ties: first in table order); if
  there is none, a declared total cell, else a zero cell. Complementary cells are shown as
  ``"suppressed"``. This is the usual heuristic used by statistical agencies; it does not defend
  against every combination of linear constraints across several published tables.
* A rate or percentage whose count(s) (numerator and, if declared, denominator) are hidden is shown
  as ``"suppressed"`` too.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"region": ["A", "B", "C"], "girls": [12, 3, 20], "boys": [7, 9, 0]})
>>> suppress(t, threshold=5)
  region       girls        boys
0      A  suppressed  suppressed
1      B          <5  suppressed
2      C          20           0
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from dmst_eval.errors import DisclosureError  # noqa: F401  (re-exported)

#: Marker for complementary (secondary) suppression and for rates built on hidden counts.
SUPPRESSED = "suppressed"
#: Default thresholds by audience.
DEFAULT_THRESHOLDS = {"internal": 5, "public": 10}
#: Column headers that look like counts (used by the audit as a second line of defence).
COUNT_HEADER = re.compile(
    r"^(n|n_.*|.*_n|count|counts|.*_count|count_.*|number(_of)?_.*|"
    r"(.*_)?(children|victims|youths?|survivors|episodes|reports|cases|referrals|boys|girls|"
    r"placements|awols?|awol_episodes|repeat_victims|events|identified|confirmed))$")
#: Words after which a number in prose is a count of people or events.
COUNT_NOUNS = (r"(children|child|victims?|survivors?|youths?|young people|girls?|boys?|"
               r"episodes?|reports?|cases?|referrals?|placements?|AWOL episodes?|"
               r"repeat victims?|events?|facilities|towns?)")
_PROSE_COUNT = re.compile(r"(?<![\w.,<])(\d{1,3}(?:,\d{3})*|\d+)(?![\d.,]\d)\s+(?:more\s+|new\s+|"
                          r"confirmed\s+|identified\s+|child\s+|distinct\s+)?" + COUNT_NOUNS
                          + r"\b", re.IGNORECASE)
#: Default patterns of child identifiers (the synthetic generator's ids plus common extract
#: forms); :func:`audit` also checks any ids passed explicitly.
CHILD_ID_PATTERNS = (r"\bC\d{5,}\b", r"\bCH-?\d{4,}\b", r"\bchild[_-]\d+\b")
#: A purely numeric token in prose is compared with the data's child ids only from this many
#: digits on: shorter numbers (counts, years, "115") are everywhere in a brief, and most agency
#: extracts number their children. Table cells under an id-like header are always compared.
NUMERIC_ID_MIN_DIGITS = 6
#: Table headers under which a cell may hold an identifier (checked against the ids exactly).
ID_HEADER = re.compile(r"^(.*_)?(id|ids|identifier|child|child_no|case|case_no|case_number|"
                       r"client|person)$")
_DATE_PATTERNS = (
    re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"),
    re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"),
    re.compile(r"\b(January|February|March|April|May|June|July|August|September|October|"
               r"November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?\s+"
               r"(\d{1,2}),?\s+(\d{4})\b"),
    re.compile(r"\b(\d{1,2})\s+(January|February|March|April|May|June|July|August|September|"
               r"October|November|December)\s+(\d{4})\b"),
)


def default_threshold(audience: str) -> int:
    """Suppression threshold for an audience: 5 for ``"internal"``, 10 for ``"public"``.

    Examples
    --------
    >>> default_threshold("public")
    10
    """
    try:
        return DEFAULT_THRESHOLDS[audience]
    except KeyError:
        raise DisclosureError(f"audience must be 'internal' or 'public', got {audience!r}") from None


def format_count(n, threshold: int = 5) -> str:
    """A single count as shown in a brief: ``"<5"`` for 1..threshold−1, else the number.

    Examples
    --------
    >>> format_count(3), format_count(0), format_count(1234)
    ('<5', '0', '1,234')
    """
    if n is None or (isinstance(n, float) and np.isnan(n)) or n is pd.NA:
        return "not available"
    n = int(n)
    if 1 <= n < threshold:
        return f"<{threshold}"
    return f"{n:,}"


def count_phrase(n, threshold: int = 5) -> str:
    """A count for prose: ``"fewer than 5"`` for 1..threshold−1, else the number.

    Examples
    --------
    >>> count_phrase(2, 10), count_phrase(12, 10)
    ('fewer than 10', '12')
    """
    s = format_count(n, threshold)
    return f"fewer than {threshold}" if s.startswith("<") else s


def is_hidden(value) -> bool:
    """True if a cell value is a suppression marker (``"<k"`` or ``"suppressed"``)."""
    return isinstance(value, str) and (value == SUPPRESSED or bool(re.fullmatch(r"<\d+", value)))


def _as_list(x) -> list:
    if x is None:
        return []
    if isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
        return [x]
    return list(x)


def suppress(table: pd.DataFrame, threshold: int = 5, complementary: bool | str = True,
             count_cols: Sequence[str] | None = None,
             rate_cols: Mapping[str, str | Sequence[str]] | None = None,
             total_cols: Sequence[str] | None = None, total_rows: Sequence | None = None,
             count_rows=None) -> pd.DataFrame:
    """Suppress small counts, their complements and the rates built on them.

    Parameters
    ----------
    table : DataFrame
        A presentation table (one row per region/year/category…).
    threshold : int
        Counts ``1 .. threshold-1`` are hidden and shown as ``"<threshold"``. **0 stays 0.**
        Default 5 (internal briefs); public briefs use 10.
    complementary : bool or {"both", "rows", "columns"}
        Complementary suppression so that no hidden count can be recovered from a row or column
        total. ``True`` = ``"both"``; ``"rows"`` only protects row totals (use it when the rows are
        not additive, e.g. different measures); ``False`` turns it off (only for tables whose
        totals are never published, say why in the brief).
    count_cols : list of str, optional
        Columns holding counts. Default: every integer column (bool excluded).
    rate_cols : mapping, optional
        ``{rate_column: count_column or [count columns]}``: the rate is hidden (``"suppressed"``)
        in every row where one of its count cells is hidden (primary or complementary).
    total_cols : list of str, optional
        Count columns that are row totals of the other count columns (a hidden cell in the row
        can then be protected by hiding the total, and the total takes part in the row check).
    total_rows : list of index labels, optional
        Rows that are column totals of the other rows.
    count_rows : boolean array-like, optional
        Restrict counts to these rows (e.g. a scorecard whose ``value`` column holds counts in some
        rows and percentages in others). Cells of ``count_cols`` outside these rows are left as
        they are and take no part in complementary suppression.

    Returns
    -------
    DataFrame
        A copy; count and rate columns holding markers become ``object`` dtype. ``.attrs
        ["disclosure"]`` records the threshold and the number of cells hidden by each rule.

    Raises
    ------
    DisclosureError
        Unknown column, negative or non-integer count, bad threshold.

    Examples
    --------
    Primary and complementary suppression in a 3×3 table. The 3 is hidden; its row total
    (3+40+50) would reveal it, so the smallest other cell of the row (40) is hidden; its column
    total would too, so 9 is hidden; that leaves row z with one hidden cell, so 12 is hidden.
    Every row and column now has 0 or 2 hidden cells:

    >>> import pandas as pd
    >>> t = pd.DataFrame({"a": [3, 20, 9], "b": [40, 60, 12], "c": [50, 8, 30]},
    ...                  index=["x", "y", "z"])
    >>> suppress(t)
                a           b   c
    x          <5  suppressed  50
    y          20          60   8
    z  suppressed  suppressed  30

    A rate on a hidden count is hidden too:

    >>> r = pd.DataFrame({"victims": [2, 30], "per_10k": [0.4, 6.1]}, index=["A", "B"])
    >>> suppress(r, rate_cols={"per_10k": "victims"}, complementary=False)
      victims     per_10k
    A      <5  suppressed
    B      30         6.1
    """
    if not isinstance(table, pd.DataFrame):
        raise DisclosureError(f"suppress() needs a DataFrame, got {type(table).__name__}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise DisclosureError(f"threshold must be an integer >= 1, got {threshold!r}")
    threshold = int(threshold)
    if complementary is True:
        complementary = "both"
    if complementary not in (False, None, "both", "rows", "columns"):
        raise DisclosureError("complementary must be True, False, 'both', 'rows' or 'columns', "
                              f"got {complementary!r}")
    if count_cols is None:
        count_cols = [c for c in table.columns
                      if pd.api.types.is_integer_dtype(table[c])
                      and not pd.api.types.is_bool_dtype(table[c])]
    count_cols = list(count_cols)
    rate_map = {k: _as_list(v) for k, v in (rate_cols or {}).items()}
    total_cols = _as_list(total_cols)
    for c in [*count_cols, *rate_map, *[x for v in rate_map.values() for x in v], *total_cols]:
        if c not in table.columns:
            raise DisclosureError(f"suppress(): column {c!r} not in table; columns are "
                                  f"{list(table.columns)}")
    for c in [*total_cols, *[x for v in rate_map.values() for x in v]]:
        if c not in count_cols:
            raise DisclosureError(f"suppress(): column {c!r} is used as a count (total or rate "
                                  f"base) but is not among count_cols {count_cols}")
    out = table.copy()
    n_rows, n_cols = len(table), len(count_cols)
    if count_rows is None:
        row_ok = np.ones(n_rows, dtype=bool)
    else:
        row_ok = np.asarray(count_rows, dtype=bool)
        if row_ok.shape != (n_rows,):
            raise DisclosureError(f"count_rows must have one entry per row ({n_rows}), "
                                  f"got shape {row_ok.shape}")
    if n_cols == 0 or n_rows == 0:
        out.attrs["disclosure"] = {"threshold": threshold, "primary": 0, "complementary": 0,
                                   "rates": 0, "count_cols": count_cols}
        return out

    values = np.full((n_rows, n_cols), np.nan)
    for j, c in enumerate(count_cols):
        col = table[c]
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object:
            num = pd.to_numeric(col.where(~col.map(is_hidden, na_action="ignore").fillna(False)
                                          .astype(bool)), errors="coerce")
            bad = col.notna() & num.isna() & ~col.map(is_hidden, na_action="ignore") \
                .fillna(False).astype(bool)
            if (bad.to_numpy() & row_ok).any():
                raise DisclosureError(
                    f"suppress(): count column {c!r} has non-numeric values in rows "
                    f"{list(table.index[bad.to_numpy() & row_ok][:5])}; expected whole numbers")
        else:
            num = pd.to_numeric(col, errors="coerce")
        values[:, j] = num.to_numpy(dtype=float, na_value=np.nan)
    values[~row_ok, :] = np.nan
    finite = ~np.isnan(values)
    bad = finite & ((values < 0) | (values != np.round(values)))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DisclosureError(
            f"suppress(): count column {count_cols[j]!r} has a negative or non-integer value "
            f"({values[i, j]!r}) in row {table.index[i]!r}; counts must be whole numbers >= 0")
    is_count = finite.copy()
    # cells already hidden upstream count as hidden (and stay as they are)
    pre_hidden = np.zeros_like(is_count)
    for j, c in enumerate(count_cols):
        pre_hidden[:, j] = table[c].map(is_hidden).to_numpy(dtype=bool) & row_ok
    is_count |= pre_hidden
    primary = finite & (values >= 1) & (values < threshold)
    hidden = primary | pre_hidden

    comp = np.zeros_like(hidden)
    if complementary:
        tcols = [count_cols.index(c) for c in total_cols]
        trows = [table.index.get_loc(r) for r in _as_list(total_rows)]
        mem_cols = [j for j in range(n_cols) if j not in tcols]
        mem_rows = [i for i in range(n_rows) if i not in trows]
        lines: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]] = []
        if complementary in ("both", "rows"):
            for i in range(n_rows):
                mem = [(i, j) for j in mem_cols if is_count[i, j]]
                tot = [(i, j) for j in tcols if is_count[i, j]]
                lines.append((mem, tot))
        if complementary in ("both", "columns"):
            for j in range(n_cols):
                mem = [(i, j) for i in mem_rows if is_count[i, j]]
                tot = [(i, j) for i in trows if is_count[i, j]]
                lines.append((mem, tot))
        lines = [(m, t) for m, t in lines if len(m) + len(t) >= 2 and (len(m) >= 2 or t)]
        changed = True
        while changed:
            changed = False
            for mem, tot in lines:
                cells = mem + tot
                k = sum(hidden[c] for c in cells)
                if k != 1:
                    continue
                pos = sorted((values[c], c) for c in mem if not hidden[c] and values[c] > 0)
                if pos:
                    pick = pos[0][1]
                else:
                    cand = [c for c in tot if not hidden[c]] or \
                           [c for c in mem if not hidden[c]]
                    if not cand:  # pragma: no cover - impossible with >= 2 cells and k == 1
                        continue
                    pick = cand[0]
                hidden[pick] = True
                comp[pick] = True
                changed = True

    marker = f"<{threshold}"
    for j, c in enumerate(count_cols):
        if not (primary[:, j].any() or comp[:, j].any()):
            continue
        col = out[c].astype(object)
        col[primary[:, j]] = marker
        col[comp[:, j]] = SUPPRESSED
        out[c] = col
    n_rate = 0
    for rc, bases in rate_map.items():
        hide = np.zeros(n_rows, dtype=bool)
        for b in bases:
            hide |= hidden[:, count_cols.index(b)]
        hide &= out[rc].notna().to_numpy()
        if hide.any():
            col = out[rc].astype(object)
            col[hide] = SUPPRESSED
            out[rc] = col
            n_rate += int(hide.sum())
    out.attrs["disclosure"] = {"threshold": threshold, "primary": int(primary.sum()),
                               "complementary": int(comp.sum()), "rates": n_rate,
                               "count_cols": [str(c) for c in count_cols],
                               "rate_cols": {str(k): [str(x) for x in v]
                                             for k, v in rate_map.items()}}
    return out


# ---------------------------------------------------------------------------------------------
# HTML for suppressed tables
# ---------------------------------------------------------------------------------------------
def _fmt_cell(v, digits: int) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if float(v).is_integer() and abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:,.{digits}f}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m")
    return str(v)


def table_html(table: pd.DataFrame, caption: str | None = None, digits: int = 1,
               index: bool = False, note: str | None = None) -> str:
    """Render a table returned by :func:`suppress` as HTML the audit can check.

    The ``<table>`` carries ``data-dmst-suppressed`` and ``data-threshold``; count cells carry
    class ``dmst-count``. A table that did not pass through :func:`suppress` is refused. Dates
    are shown to the month at most.

    Examples
    --------
    >>> import pandas as pd
    >>> html = table_html(suppress(pd.DataFrame({"n": [3, 12]}), complementary=False))
    >>> 'data-dmst-suppressed="1"' in html and '<td class="dmst-count">&lt;5</td>' in html
    True
    """
    import html as _h

    info = table.attrs.get("disclosure")
    if not info:
        raise DisclosureError("table_html(): this table did not pass through disclosure.suppress()")
    df = table.reset_index() if index else table
    counts = set(info.get("count_cols", []))
    parts = [f'<table class="dmst-table" data-dmst-suppressed="1" '
             f'data-threshold="{int(info["threshold"])}">']
    if caption:
        parts.append(f"<caption>{_h.escape(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(
        f"<th>{_h.escape(str(c).replace('_', ' '))}</th>" for c in df.columns) + "</tr></thead>")
    parts.append("<tbody>")
    cols = list(df.columns)
    for row in df.itertuples(index=False, name=None):  # presentation tables are small
        cells = []
        for c, v in zip(cols, row):
            cls = ' class="dmst-count"' if str(c) in counts else ""
            cells.append(f"<td{cls}>{_h.escape(_fmt_cell(v, digits))}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if note:
        parts.append(f'<p class="dmst-note">{_h.escape(note)}</p>')
    return "".join(parts)
