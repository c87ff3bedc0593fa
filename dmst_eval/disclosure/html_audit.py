"""The disclosure audit of a rendered brief (HTML or executed notebook).

:func:`audit` reads what a reader would read and reports any count below the threshold, any child
identifier, any column named ``*_id`` and any exact (day-precision) date that is not one of the
brief's declared parameter or policy dates. It checks each number on its own; whether hidden
numbers can be *worked out* from several published numbers is the job of the interval audit
(:func:`dmst_eval.disclosure.interval_audit`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from dmst_eval.errors import DisclosureError
from dmst_eval.disclosure.tables import (CHILD_ID_PATTERNS, COUNT_HEADER, ID_HEADER,
                                         NUMERIC_ID_MIN_DIGITS, _DATE_PATTERNS,
                                         _PROSE_COUNT)

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
