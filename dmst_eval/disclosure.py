"""Small-cell suppression and the disclosure audit of rendered briefs.

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

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
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


# ---------------------------------------------------------------------------------------------
# The audit
# ---------------------------------------------------------------------------------------------
@dataclass
class AuditReport:
    """Result of :func:`audit`.

    Attributes
    ----------
    path : Path
    threshold : int
    problems : DataFrame
        One row per finding: kind (``small_count``, ``small_count_prose``, ``child_id``,
        ``id_column``, ``event_date``, ``unsuppressed_table``, ``error_output``), where, detail.
    n_tables, n_figures : int
        Tables and figures (with embedded data) checked.
    """

    path: Path
    threshold: int
    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["kind", "where", "detail"]))
    n_tables: int = 0
    n_figures: int = 0

    @property
    def passed(self) -> bool:
        return self.problems.empty

    def __bool__(self) -> bool:
        return self.passed

    @property
    def summary(self) -> pd.DataFrame:
        """Problems counted by kind (empty when the brief passed)."""
        if self.problems.empty:
            return pd.DataFrame({"kind": [], "n": []})
        return self.problems.groupby("kind").size().rename("n").reset_index()

    def raise_if_failed(self) -> None:
        if not self.passed:
            first = self.problems.iloc[0]
            raise DisclosureError(
                f"disclosure audit failed for {self.path.name}: {len(self.problems)} problem(s), "
                f"first: {first['kind']} in {first['where']}: {first['detail']}")

    def __repr__(self) -> str:
        status = "passed" if self.passed else f"FAILED ({len(self.problems)} problems)"
        return (f"AuditReport({self.path.name}: {status}; threshold {self.threshold}; "
                f"{self.n_tables} tables, {self.n_figures} figures checked)")


def _number(text: str) -> float | None:
    t = text.strip().replace(",", "")
    if re.fullmatch(r"-?\d+", t):
        return float(t)
    return None


def _date_strings(text: str) -> list[str]:
    """Day-precision dates in ``text`` as ISO strings (unparseable matches are kept raw)."""
    found = []
    months = {m: i + 1 for i, m in enumerate(
        ["january", "february", "march", "april", "may", "june", "july", "august", "september",
         "october", "november", "december"])}
    for k, pat in enumerate(_DATE_PATTERNS):
        for m in pat.finditer(text):
            try:
                if k == 0:
                    y, mo, d = int(m[1]), int(m[2]), int(m[3])
                elif k == 1:
                    mo, d, y = int(m[1]), int(m[2]), int(m[3])
                elif k == 2:
                    name = m[1].lower().rstrip(".")
                    mo = next(v for kk, v in months.items() if kk.startswith(name[:3]))
                    d, y = int(m[2]), int(m[3])
                else:
                    d, mo, y = int(m[1]), months[m[2].lower()], int(m[3])
                found.append(pd.Timestamp(year=y, month=mo, day=d).strftime("%Y-%m-%d"))
            except (ValueError, StopIteration, KeyError):
                found.append(m[0])
    return found


class _Auditor:
    def __init__(self, threshold: int | None, allowed_dates: set[str], child_ids: set[str],
                 id_patterns: Sequence[str]):
        self.threshold = threshold
        self.allowed_dates = set(allowed_dates)
        self.child_ids = child_ids
        self.id_re = re.compile("|".join(f"(?:{p})" for p in id_patterns)) if id_patterns else None
        self.problems: list[dict] = []
        self.n_tables = 0
        self.n_figures = 0

    def add(self, kind: str, where: str, detail: str) -> None:
        self.problems.append({"kind": kind, "where": where, "detail": detail})

    def small(self, v: float | None) -> bool:
        return v is not None and 1 <= v < (self.threshold or 5)

    # -- text ---------------------------------------------------------------------------------
    def text(self, text: str, where: str) -> None:
        for m in _PROSE_COUNT.finditer(text):
            v = _number(m[1])
            if self.small(v):
                self.add("small_count_prose", where, f"'{m[0]}' (below {self.threshold})")
        # details never repeat the date or id found (messages and FAILED.txt are not private)
        for d in _date_strings(text):
            if d not in self.allowed_dates:
                self.add("event_date", where, "an exact (day-precision) date that is not one of "
                                              "the brief's declared dates")
        if self.id_re is not None:
            for m in self.id_re.finditer(text):
                self.add("child_id", where, "text matching a child-id pattern")
        if self.child_ids:
            toks = {t for t in re.findall(r"[A-Za-z0-9_-]{3,}", text)
                    if not t.isdigit() or len(t) >= NUMERIC_ID_MIN_DIGITS}
            for _ in toks & self.child_ids:
                self.add("child_id", where, "a child id from the data")

    def id_cell(self, text: str, where: str) -> None:
        """A cell under an id-like header: any exact child id is a problem, however short."""
        if self.child_ids and text.strip() in self.child_ids:
            self.add("child_id", where, "a child id from the data in an id-like column")

    # -- html ---------------------------------------------------------------------------------
    def html(self, html: str, where: str) -> None:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(html, "html.parser")
        for s in soup(["style"]):
            s.decompose()
        for meta in soup.select("script.dmst-figure-data"):
            self.n_figures += 1
            try:
                data = json.loads(meta.string or "{}")
            except json.JSONDecodeError:
                self.add("figure_data", where, "figure data is not valid JSON")
                continue
            self.figure_data(data, f"{where}: figure {data.get('name', '?')!r}")
            meta.decompose()
        for s in soup(["script"]):
            s.decompose()
        for tbl in soup.find_all("table"):
            self.table(tbl, where)
            tbl.decompose()
        for img in soup.find_all("img"):
            alt = img.get("alt") or ""
            if alt:
                self.text(alt, f"{where}: image alt text")
        self.text(soup.get_text(" "), where)

    def table(self, tbl, where: str) -> None:
        self.n_tables += 1
        cap = tbl.find("caption")
        label = f"{where}: table {cap.get_text(strip=True)!r}" if cap else f"{where}: table"
        if tbl.get("data-dmst-suppressed") != "1":
            self.add("unsuppressed_table", label,
                     "table was not rendered through disclosure.suppress()/table_html()")
        th = tbl.get("data-threshold")
        if th and self.threshold and int(th) < self.threshold:
            self.add("small_count", label,
                     f"table suppressed at threshold {th}, below the required {self.threshold}")
        headers = [h.get_text(" ", strip=True) for h in tbl.find_all("th")]
        norm = [re.sub(r"\W+", "_", h.lower()).strip("_") for h in headers]
        for h, n in zip(headers, norm):
            if n.endswith("_id") or n == "id":
                self.add("id_column", label, f"column {h!r} looks like an identifier")
        count_idx = {k for k, n in enumerate(norm) if COUNT_HEADER.match(n)}
        id_idx = {k for k, n in enumerate(norm) if ID_HEADER.match(n)}
        for tr in tbl.find_all("tr"):
            for k, td in enumerate(tr.find_all("td")):
                txt = td.get_text(" ", strip=True)
                if k in id_idx:
                    self.id_cell(txt, label)
                v = _number(txt)
                if ("dmst-count" in (td.get("class") or []) or k in count_idx) and self.small(v):
                    self.add("small_count", label,
                             f"count {txt} under {headers[k] if k < len(headers) else '?'!r}")
                self.text(txt, label) if not re.fullmatch(r"[\d.,%<>-]*", txt) else None

    def figure_data(self, data: dict, where: str) -> None:
        for col in data.get("columns", []):
            n = re.sub(r"\W+", "_", str(col).lower()).strip("_")
            if n.endswith("_id"):
                self.add("id_column", where, f"figure data column {col!r} looks like an identifier")
        counts = set(data.get("count_cols", []))
        id_cols = {c for c in data.get("columns", [])
                   if ID_HEADER.match(re.sub(r"\W+", "_", str(c).lower()).strip("_"))}
        for row in data.get("rows", []):
            for col, v in zip(data.get("columns", []), row):
                if col in id_cols and v is not None:
                    self.id_cell(str(v), where)
                if col in counts and isinstance(v, (int, float)) and self.small(float(v)):
                    self.add("small_count", where, f"count {v} in column {col!r}")
                elif isinstance(v, str):
                    self.text(v, where)


def _load_brief_meta(text: str) -> dict:
    m = re.search(r'<script[^>]*\bid="dmst-brief-meta"[^>]*>(.*?)</script>', text, re.S)
    if not m:
        return {}
    try:
        return json.loads(m[1])
    except json.JSONDecodeError:
        return {}


def audit(path: str | Path, threshold: int | None = None, allowed_dates: Iterable[str] = (),
          child_ids: Iterable[str] = (), id_patterns: Sequence[str] = CHILD_ID_PATTERNS
          ) -> AuditReport:
    """Scan a rendered brief for disclosure problems.

    Checks every HTML table (must carry the mark of :func:`suppress`; count cells and count-like
    columns must not hold 1..threshold−1; no ``*_id`` columns), the data embedded with each
    figure (``<script class="dmst-figure-data">``), prose (numbers followed by a count noun such
    as "3 victims"), child identifiers (``id_patterns`` and any ``child_ids`` given, e.g. the ids
    of the data the brief was built from), exact day-precision dates that are not declared
    (parameter, study-window, policy and run dates that the brief lists in its embedded
    ``dmst-brief-meta`` block, plus ``allowed_dates``), and error outputs in a notebook.

    Parameters
    ----------
    path : path
        A ``.html`` brief or an executed ``.ipynb``.
    threshold : int, optional
        Default: the threshold declared in the brief's metadata (else 5).

    Returns
    -------
    AuditReport
        ``.passed`` and ``.problems`` (kind, where, detail).

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.html"
    >>> _ = p.write_text("<p>We identified 3 victims in Region 2.</p>")
    >>> rep = audit(p, threshold=5)
    >>> rep.passed, rep.problems["kind"].tolist()
    (False, ['small_count_prose'])
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no brief at {path}")
    raw = path.read_text(encoding="utf-8")
    nb = None
    if path.suffix == ".ipynb":
        nb = json.loads(raw)
        meta_src = "".join("".join(o.get("data", {}).get("text/html", ""))
                           for c in nb.get("cells", []) for o in c.get("outputs", []))
    else:
        meta_src = raw
    meta = _load_brief_meta(meta_src)
    if threshold is None:
        threshold = int(meta.get("threshold", 5))
    allowed = {str(d)[:10] for d in [*meta.get("allowed_dates", []), *allowed_dates]}
    aud = _Auditor(threshold, allowed, set(map(str, child_ids)), id_patterns)
    if nb is not None:
        for k, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") != "code":
                if cell.get("cell_type") == "markdown":
                    aud.text("".join(cell.get("source", "")), f"cell {k} (markdown)")
                continue
            for out in cell.get("outputs", []):
                where = f"cell {k}"
                if out.get("output_type") == "error":  # its message may quote the data
                    aud.add("error_output", where, f"{out.get('ename')} (message not shown)")
                    continue
                if out.get("output_type") == "stream":
                    aud.text("".join(out.get("text", "")), where)
                    continue
                data = out.get("data", {})
                if "text/html" in data:
                    aud.html("".join(data["text/html"]), where)
                elif "text/plain" in data:
                    aud.text("".join(data["text/plain"]), where)
                fig = out.get("metadata", {}).get("dmst", {}).get("figure_data")
                if fig:
                    aud.n_figures += 1
                    aud.figure_data(fig, f"{where}: figure")
    else:
        aud.html(raw, path.name)
    problems = pd.DataFrame(aud.problems, columns=["kind", "where", "detail"])
    return AuditReport(path=path, threshold=threshold, problems=problems,
                       n_tables=aud.n_tables, n_figures=aud.n_figures)
