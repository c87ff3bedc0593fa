"""Where case data come from: a folder, a database (SQLAlchemy URL or DuckDB file), and a mapping.

An agency keeps its case data in a relational database with its own table names, column names and
codes. This module reads such a source into the nine schema-v1 tables *as raw data*, so that
:func:`dmst_eval.load` then runs exactly the same validation as for a folder.

Sources
-------
* a folder of ``<table>.parquet`` / ``<table>.csv`` files (read by :mod:`dmst_eval.casedata`);
* a folder of the agency's *own* CSV exports, with a mapping (``load(folder, mapping=...)``);
* a database URL in SQLAlchemy form: ``postgresql://user@host/db``, ``mssql+pyodbc://…``
  (needs the ODBC driver), ``sqlite:///path.db``, or ``duckdb:///path.duckdb`` (read natively
  through DuckDB, no server needed).

Credentials come from the URL or the environment (``PGPASSWORD``, ``~/.pgpass``, ODBC DSNs),
never from a file in the repository; URLs are only ever shown with the password masked
(:func:`mask_url`).

The mapping file
----------------
YAML, one entry per schema table (see ``docs/mapping.md`` for a full example)::

    meta: {study_start: 2008-01-01, study_end: 2025-12-31}
    tables:
      children:
        source: cm_child            # table/view (database) or file stem (folder of CSVs)
        # query: SELECT ...         # or a SQL query instead of `source`
        columns: {child_id: CHILD_NO, sex: GENDER_CD, birth_date: DOB}   # schema: source
        codes: {sex: {F: female, M: male}}                              # source code: level
        date_formats: {birth_date: "%m/%d/%Y"}
        defaults: {lgbtq: null}                                          # columns not kept

Tables not listed are read under their schema name with schema column names.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dmst_eval.errors import DataValidationError, InputError
from dmst_eval.schema import TABLE_NAMES, TABLES

__all__ = ["Mapping", "TableMapping", "is_url", "mask_url", "source_kind", "describe_source",
           "read_source", "import_bundle", "export_bundle", "unmapped_codes"]

#: Rows fetched per round trip from a database server.
CHUNK_ROWS = 200_000
#: Table holding ``meta.json`` / ``truth.json`` inside a DuckDB file written by :func:`import_bundle`.
FILES_TABLE = "dmst_eval_files"

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


def is_url(location: Any) -> bool:
    """True when ``location`` is a database URL such as ``sqlite:///x.db`` (not a folder).

    Examples
    --------
    >>> is_url("postgresql://analyst@db.example.org/cases"), is_url("data/synthetic")
    (True, False)
    """
    return isinstance(location, str) and bool(_URL.match(location))


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print or log).

    Examples
    --------
    >>> mask_url("postgresql://analyst:s3cret@db.example.org:5432/cases")
    'postgresql://analyst:***@db.example.org:5432/cases'
    >>> mask_url("duckdb:///home/me/cases.duckdb")
    'duckdb:///home/me/cases.duckdb'
    >>> mask_url("mssql+pyodbc://me@dsn?Pwd=x&driver=ODBC")
    'mssql+pyodbc://me@dsn?Pwd=***&driver=ODBC'
    """
    text = re.sub(r"^([^:/]+://[^:/@]*):[^@]*@", r"\1:***@", str(url))
    # secrets passed as query parameters (password=, pwd=, ...)
    return _SECRET_QUERY.sub(r"\1***", text)


_SECRET_QUERY = re.compile(r"([?&;](?:password|passwd|pwd|secret|token|sslpassword|"
                           r"access_?key|api_?key)=)[^&;#\s]*", re.IGNORECASE)

#: How provenance names each kind of source.
KIND_LABELS = {"folder": "folder", "duckdb": "DuckDB file", "sqlite": "SQLite file",
               "postgresql": "PostgreSQL database", "mssql": "SQL Server database",
               "mysql": "MySQL database", "oracle": "Oracle database"}


def source_kind(location: Any) -> str:
    """``"folder"``, or the database kind of a URL (its dialect: ``postgresql``, ``duckdb`` …).

    >>> source_kind("postgresql+psycopg://me@db/cases"), source_kind("data/synthetic")
    ('postgresql', 'folder')
    """
    if not is_url(location):
        return "folder"
    return str(location).split("://", 1)[0].split("+", 1)[0].lower()


def describe_source(location: Any) -> dict[str, str]:
    """What a brief's provenance may say about a source: its kind and a short name — the
    folder's or file's name, or the database's name — never a user, password, host or query.

    Examples
    --------
    >>> describe_source("postgresql://analyst:s3cret@db.agency.local:5432/cases?sslmode=require")
    {'kind': 'postgresql', 'name': 'cases', 'label': 'PostgreSQL database cases'}
    >>> describe_source("duckdb:////home/me/cases.duckdb")["label"]
    'DuckDB file cases.duckdb'
    """
    kind = source_kind(location)
    if kind == "folder":
        name = Path(str(location)).resolve().name
    elif kind in ("duckdb", "sqlite"):
        rest = str(location).split("://", 1)[1].split("?", 1)[0]
        name = Path(rest).name
    else:
        rest = str(location).split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
        rest = rest.rsplit("@", 1)[-1]  # no user or password
        name = rest.split("/", 1)[1] if "/" in rest else ""
        name = name.strip("/").rsplit("/", 1)[-1]
    label = KIND_LABELS.get(kind, f"{kind} database")
    return {"kind": kind, "name": name, "label": f"{label} {name}".strip()}


# --------------------------------------------------------------------------------------------
# Mapping
# --------------------------------------------------------------------------------------------
@dataclass
class TableMapping:
    """How one schema table is read from the agency's source (see module docstring)."""

    table: str
    source: str | None = None
    query: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def source_name(self) -> str:
        """The source table (or ``query``) this table is read from, for messages."""
        return self.source or ("query" if self.query else self.table)

    def source_column(self, column: str) -> str:
        return self.columns.get(column, column)


@dataclass
class Mapping:
    """Per-table mappings from an agency's source to schema v1, plus optional study metadata."""

    tables: dict[str, TableMapping] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, table: str) -> TableMapping:
        return self.tables.get(table) or TableMapping(table)

    @classmethod
    def from_dict(cls, d: dict, where: str = "mapping") -> "Mapping":
        if not isinstance(d, dict):
            raise InputError("the mapping must be a YAML mapping with a 'tables' key",
                             table=where, expected="tables: {children: {...}, ...}")
        unknown_top = set(d) - {"tables", "meta"}
        if unknown_top:
            raise InputError(f"unknown key(s) {sorted(unknown_top)}", table=where,
                             expected="only 'tables' and 'meta'")
        tables = {}
        for t, spec in (d.get("tables") or {}).items():
            if t not in TABLES:
                raise InputError(f"unknown schema table {t!r}", table=where,
                                 expected=f"one of {', '.join(TABLE_NAMES)}")
            spec = spec or {}
            if not isinstance(spec, dict):
                raise InputError("each table's entry must be a mapping", table=f"{where}.{t}")
            bad = set(spec) - {"source", "query", "columns", "codes", "date_formats", "defaults"}
            if bad:
                raise InputError(f"unknown key(s) {sorted(bad)}", table=f"{where}.{t}",
                                 expected="source, query, columns, codes, date_formats, defaults")
            if spec.get("source") and spec.get("query"):
                raise InputError("give either 'source' or 'query', not both", table=f"{where}.{t}")
            names = set(TABLES[t].column_names)
            for key in ("columns", "codes", "date_formats", "defaults"):
                wrong = set(spec.get(key) or {}) - names
                if wrong:
                    raise InputError(f"{key} names column(s) {sorted(wrong)} that {t} does not have",
                                     table=f"{where}.{t}", expected=f"columns of {t}")
            tables[t] = TableMapping(
                t, source=spec.get("source"), query=spec.get("query"),
                columns={k: str(v) for k, v in (spec.get("columns") or {}).items()},
                codes={k: {str(a): b for a, b in (v or {}).items()}
                       for k, v in (spec.get("codes") or {}).items()},
                date_formats=dict(spec.get("date_formats") or {}),
                defaults=dict(spec.get("defaults") or {}))
        meta = {k: str(v) for k, v in (d.get("meta") or {}).items()}
        return cls(tables, meta)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "Mapping":
        """Read a mapping file; a bad file raises :class:`InputError` naming it."""
        import yaml

        p = Path(path)
        try:
            d = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise InputError(f"cannot read the mapping file ({type(e).__name__})",
                             table=str(p), expected="a readable YAML file") from None
        return cls.from_dict(d, where=p.name)

    @classmethod
    def coerce(cls, mapping: "Mapping | dict | str | os.PathLike | None") -> "Mapping | None":
        if mapping is None or isinstance(mapping, Mapping):
            return mapping
        if isinstance(mapping, dict):
            return cls.from_dict(mapping)
        return cls.from_yaml(mapping)


def _apply(df: pd.DataFrame, tm: TableMapping) -> pd.DataFrame:
    """Rename, recode, reformat dates and add defaults: the agency's table as schema columns."""
    rename = {src: col for col, src in tm.columns.items() if src in df.columns}
    df = df.rename(columns=rename)
    for col, codes in tm.codes.items():
        if col in df.columns:
            s = df[col]
            text = s.astype("string").str.strip()
            mapped = text.map(codes)
            # unmapped codes stay as they were, so validation reports them by value
            df[col] = mapped.where(text.isin(list(codes)), s.astype(object))
    for col, fmt in tm.date_formats.items():
        if col in df.columns:
            raw = df[col]
            parsed = pd.to_datetime(raw.astype("string"), format=fmt, errors="coerce")
            iso = parsed.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
            # unparseable values stay as text, so validation names them
            df[col] = iso.where(parsed.notna(), raw.astype(object))
    for col, value in tm.defaults.items():
        if col not in df.columns:
            df[col] = value
    return df


def unmapped_codes(raw: dict[str, pd.DataFrame], mapping: "Mapping | None") -> pd.DataFrame:
    """Source codes with no entry in the mapping, with counts (before validation).

    Returns a DataFrame with columns table, column, code, n_rows (largest first). Only columns
    with a ``codes`` entry are checked; values already equal to a schema level count as mapped.
    """
    rows = []
    if mapping is not None:
        for t, tm in mapping.tables.items():
            df = raw.get(t)
            if df is None:
                continue
            for col, codes in tm.codes.items():
                src = tm.source_column(col)
                if src not in df.columns:
                    continue
                levels = set(TABLES[t].column(col).levels or ())
                vals = df[src].dropna().astype(str).str.strip()
                bad = vals[~vals.isin(list(codes)) & ~vals.isin(levels)]
                for code, n in bad.value_counts().items():
                    rows.append({"table": t, "column": col, "code": code, "n_rows": int(n)})
    out = pd.DataFrame(rows, columns=["table", "column", "code", "n_rows"])
    return out.sort_values("n_rows", ascending=False, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
@dataclass
class SourceRead:
    """What :func:`read_source` returns: raw tables (source names already mapped), files, labels."""

    raw: dict[str, pd.DataFrame]
    meta: dict | None
    truth: Any
    label: str                      # safe to print: masked URL or folder
    kind: str                       # "duckdb", "postgresql", "sqlite", "mssql", ..., "folder"
    problems: list[dict]
    unmapped: pd.DataFrame


def _absent(t: str, tm, existing: set, label: str, problems: list,
            qualified_ok: bool = True) -> bool:
    """True (and a problem listed) when table ``t``'s source is not among ``existing``; a query,
    or a schema-qualified name where the database lists only its own schema's tables
    (``qualified_ok``), is left for the read itself to check."""
    name = tm.source or t
    if tm.query or name in existing or (qualified_ok and "." in name):
        return False
    problems.append(_problem(t, f"a table or view {tm.source_name!r} in {label}"))
    return True


def _problem(table: str, expected: str) -> dict:
    return {"table": table, "column": None, "rows": [], "n_rows": 0, "expected": expected}


def _quote(name: str) -> str:
    """A source table name as a quoted SQL identifier (``schema.table`` allowed)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?", name):
        raise InputError(f"{name!r} is not a plain table or view name", table="mapping",
                         expected="letters, digits and '_' (use 'query:' for anything else)")
    return ".".join(f'"{p}"' for p in name.split("."))


def _sql(tm: TableMapping) -> str:
    return tm.query if tm.query else f"SELECT * FROM {_quote(tm.source or tm.table)}"


def _arrow_frame(tab) -> pd.DataFrame:
    """An Arrow table as pandas with text kept Arrow-backed, as the Parquet reader does."""
    import pyarrow as pa

    types = {pa.string(): pd.ArrowDtype(pa.string()), pa.large_string(): pd.ArrowDtype(pa.string()),
             pa.bool_(): pd.BooleanDtype()}
    return tab.to_pandas(types_mapper=types.get)


def _read_duckdb(path: str, mapping: Mapping, label: str, problems: list):
    import duckdb

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no DuckDB database at {label}")
    raw, files = {}, {}
    try:
        con = duckdb.connect(str(p), read_only=True)
    except duckdb.Error as e:
        raise InputError(f"cannot open the DuckDB database ({type(e).__name__})", table=label,
                         expected="a DuckDB file written by DuckDB ≥ 1.0") from None
    try:
        existing = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()}
        if FILES_TABLE in existing:
            files = dict(con.execute(f"SELECT name, content FROM {FILES_TABLE}").fetchall())
        for t in TABLE_NAMES:
            tm = mapping[t]
            if _absent(t, tm, existing, label, problems, qualified_ok=False):
                continue
            try:
                rel = con.sql(_sql(tm))
                tab = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
                raw[t] = _arrow_frame(tab)
            except duckdb.Error as e:
                problems.append(_problem(t, f"a readable table {tm.source_name!r} "
                                            f"({type(e).__name__}: {str(e).splitlines()[0][:160]})"))
    finally:
        con.close()
    return raw, files


def _read_sqlalchemy(url: str, mapping: Mapping, label: str, problems: list, chunksize: int):
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as e:
        raise InputError(f"cannot use this database URL ({type(e).__name__}: "
                         f"{mask_url(str(e)).splitlines()[0][:160]})", table=label,
                         expected="an SQLAlchemy URL such as postgresql://user@host/db, with its "
                                  "driver installed") from None
    raw, files = {}, {}
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            existing = set(insp.get_table_names()) | set(insp.get_view_names())
            if FILES_TABLE in existing:
                files = dict(conn.execute(sa.text(f"SELECT name, content FROM {FILES_TABLE}")).all())
            for t in TABLE_NAMES:
                tm = mapping[t]
                if _absent(t, tm, existing, label, problems):
                    continue
                try:
                    chunks = list(pd.read_sql_query(sa.text(_sql(tm)), conn, chunksize=chunksize,
                                                    dtype_backend="pyarrow"))
                    raw[t] = (pd.concat(chunks, ignore_index=True) if len(chunks) > 1
                              else chunks[0] if chunks else pd.DataFrame())
                    if not chunks:  # zero rows: keep the columns
                        res = conn.execute(sa.text(_sql(tm)))
                        raw[t] = pd.DataFrame(columns=list(res.keys()))
                except sa.exc.SQLAlchemyError as e:
                    conn.rollback()
                    problems.append(_problem(t, f"a readable table {tm.source_name!r} "
                                                f"({type(e.orig or e).__name__})"))
    except sa.exc.OperationalError as e:
        raise InputError(f"cannot connect to the database ({type(e.orig or e).__name__})",
                         table=label, expected="a reachable server and valid credentials "
                                               "(from the URL or the environment)") from None
    finally:
        engine.dispose()
    return {t: _plain(df) for t, df in raw.items()}, files


# PostgreSQL: each table streamed with COPY … TO STDOUT (CSV) into Arrow's CSV reader ---------
#: PostgreSQL type OIDs read as typed Arrow columns (anything else is read as text).
_PG_TYPES = {16: "bool", 20: "int", 21: "int", 23: "int", 700: "float", 701: "float",
             1700: "float", 1082: "date", 1114: "timestamp", 1184: "timestamptz",
             25: "text", 1042: "text", 1043: "text", 18: "text", 19: "text"}
#: Bytes Arrow's CSV reader parses at a time (the COPY stream is read in chunks of this size).
COPY_BLOCK = 16 << 20


class _CopyStream:
    """A file-like view of a psycopg COPY … TO STDOUT stream (what Arrow's reader pulls from)."""

    closed = False

    def __init__(self, copy):
        self._it = iter(copy)
        self._pending = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._pending) < n):
            try:
                self._pending += next(self._it)
            except StopIteration:
                self._done = True
        if n < 0 or n >= len(self._pending):
            out, self._pending = bytes(self._pending), bytearray()
        else:
            out = bytes(self._pending[:n])
            del self._pending[:n]
        return out

    def close(self) -> None:
        self.closed = True


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _pg_table(conn, sql: str, chunk_bytes: int):
    """One query's result as an Arrow table: typed by the columns' PostgreSQL types, streamed
    with ``COPY (query) TO STDOUT`` through Arrow's CSV parser in blocks of ``chunk_bytes``."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    sql = sql.strip().rstrip(";")
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0")
        desc = cur.description or []
        names = [d.name for d in desc]
        kinds = [_PG_TYPES.get(d.type_code, "other") for d in desc]
        select = ", ".join(
            f"q.{_ident(n)}::timestamp AS {_ident(n)}" if k == "timestamptz" else
            f"q.{_ident(n)}::text AS {_ident(n)}" if k == "other" else f"q.{_ident(n)}"
            for n, k in zip(names, kinds))
        arrow = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
                 "date": pa.date32(), "timestamp": pa.timestamp("us"),
                 "timestamptz": pa.timestamp("us")}
        types = {n: arrow.get(k, pa.string()) for n, k in zip(names, kinds)}
        schema = pa.schema([(n, types[n]) for n in names])
        if not names:
            return pa.table({})
        with cur.copy(f"COPY (SELECT {select} FROM ({sql}) AS q) TO STDOUT "
                      "(FORMAT csv, HEADER false)") as copy:
            stream = _CopyStream(copy)
            first = stream.read(1)
            if not first:
                return schema.empty_table()
            stream._pending[:0] = first
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=names, block_size=chunk_bytes,
                                               use_threads=True),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                # COPY's CSV: NULL is an unquoted empty field, "" an empty string
                convert_options=pacsv.ConvertOptions(
                    column_types=types, null_values=[""], strings_can_be_null=True,
                    quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]))
            batches = list(reader)
        return pa.Table.from_batches(batches, schema=schema)


def _pg_frame(tab) -> pd.DataFrame:
    """An Arrow table from PostgreSQL as the pandas dtypes validation expects (as
    :func:`_plain` gives): text Arrow-backed, times ``datetime64[ns]``, integers ``Int64``."""
    import pyarrow as pa

    cols = {}
    for name, col in zip(tab.column_names, tab.columns):
        t = col.type
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            cols[name] = pd.Series(col.cast(pa.timestamp("ns")).to_pandas(),
                                   dtype="datetime64[ns]")
        elif pa.types.is_integer(t):
            cols[name] = col.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        elif pa.types.is_boolean(t):
            cols[name] = col.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            cols[name] = pd.Series(pd.arrays.ArrowExtensionArray(col.cast(pa.string())))
        else:
            cols[name] = col.to_pandas()
    n = tab.num_rows
    return pd.DataFrame({k: v.reset_index(drop=True) for k, v in cols.items()},
                        index=pd.RangeIndex(n))


def _read_postgres(url: str, mapping: Mapping, label: str, problems: list, chunk_bytes: int):
    """The tables from PostgreSQL through psycopg's COPY (much faster than row fetches)."""
    import psycopg
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    kw = {k: v for k, v in {"host": u.host, "port": u.port, "user": u.username,
                            "password": u.password, "dbname": u.database}.items()
          if v is not None}
    kw.update({k: (v[-1] if isinstance(v, tuple) else v) for k, v in u.query.items()})
    try:
        conn = psycopg.connect(**kw)
    except psycopg.Error as e:
        raise InputError(f"cannot connect to the database ({type(e).__name__})",
                         table=label, expected="a reachable server and valid credentials "
                                               "(from the URL or the environment)") from None
    raw, files = {}, {}
    try:
        conn.execute("SET DateStyle TO ISO, YMD")
        existing = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = ANY (current_schemas(false))").fetchall()}
        conn.commit()
        if FILES_TABLE in existing:
            files = dict(conn.execute(f"SELECT name, content FROM {FILES_TABLE}").fetchall())
        for t in TABLE_NAMES:
            tm = mapping[t]
            if _absent(t, tm, existing, label, problems):
                continue
            try:
                raw[t] = _pg_frame(_pg_table(conn, _sql(tm), chunk_bytes))
            except (psycopg.Error, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
                conn.rollback()
                problems.append(_problem(t, f"a readable table {tm.source_name!r} "
                                            f"({type(e).__name__})"))
    finally:
        conn.close()
    return raw, files


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Arrow-backed columns from a server as the pandas dtypes validation expects (text stays)."""
    import pyarrow as pa

    out = {}
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.ArrowDtype):
            t = s.dtype.pyarrow_dtype
            if pa.types.is_string(t) or pa.types.is_large_string(t):
                s = s.astype(pd.ArrowDtype(pa.string()))
            elif pa.types.is_timestamp(t) or pa.types.is_date(t):
                s = pd.to_datetime(s.astype(object) if pa.types.is_date(t) else s.dt.tz_localize(None)
                                   if t.tz else s).astype("datetime64[ns]")
            elif pa.types.is_boolean(t):
                s = s.astype("boolean")
            elif pa.types.is_integer(t):
                s = s.astype("Int64")
            elif pa.types.is_floating(t) or pa.types.is_decimal(t):
                s = s.astype("float64")
            else:
                s = s.astype(object)
        out[c] = s
    return pd.DataFrame(out, index=df.index)


def _has_psycopg() -> bool:
    import importlib.util

    return importlib.util.find_spec("psycopg") is not None


def _read_folder(folder: Path, mapping: Mapping, problems: list):
    """The agency's own CSV (or Parquet) exports named by the mapping's ``source``."""
    from dmst_eval import casedata

    raw = {}
    for t in TABLE_NAMES:
        stem = mapping[t].source or t
        if mapping[t].query:
            raise InputError("'query' needs a database; a folder table takes 'source' (file stem)",
                             table=f"mapping.{t}")
        cands = [folder / f"{stem}.csv", folder / f"{stem}.parquet"]
        found = [c for c in cands if c.exists()]
        if not found:
            problems.append(_problem(t, f"a file {stem}.csv or {stem}.parquet in {folder}"))
            continue
        if len(found) > 1:
            problems.append(_problem(t, f"one file for {stem}, not both .csv and .parquet"))
            continue
        f = found[0]
        try:
            raw[t] = (casedata._read_parquet(f) if f.suffix == ".parquet" else
                      pd.read_csv(f, dtype=str, keep_default_na=False,
                                  na_values=casedata.CSV_NA_VALUES, encoding="utf-8-sig"))
        except Exception as e:  # noqa: BLE001 — an unreadable file is a listed problem
            problems.append(_problem(t, f"a readable file {f.name} ({type(e).__name__})"))
    files = {}
    for name in ("meta.json", "truth.json"):
        if (folder / name).is_file():
            files[name] = (folder / name).read_text(encoding="utf-8")
    return raw, files


def read_source(location, mapping=None, chunksize: int = CHUNK_ROWS) -> SourceRead:
    """Read the nine tables from a database URL, or a folder of agency exports with a mapping.

    PostgreSQL (with psycopg installed) is read with ``COPY (SELECT …) TO STDOUT`` streamed into
    Arrow's CSV reader in blocks of :data:`COPY_BLOCK` bytes, each column typed by its
    PostgreSQL type; DuckDB natively into Arrow; other databases through SQLAlchemy in chunks of
    ``chunksize`` rows.

    Returns raw (unvalidated) tables under schema names and columns; :func:`dmst_eval.load`
    validates them exactly as it validates a folder.
    """
    import json

    mapping = Mapping.coerce(mapping) or Mapping()
    problems: list[dict] = []
    if is_url(location):
        url = str(location)
        label = mask_url(url)
        kind = source_kind(url)
        if kind == "duckdb":
            raw, files = _read_duckdb(url[len("duckdb:///"):] if url.startswith("duckdb:///")
                                      else url[len("duckdb://"):], mapping, label, problems)
        elif kind == "postgresql" and _has_psycopg():
            raw, files = _read_postgres(url, mapping, label, problems, COPY_BLOCK)
        else:
            raw, files = _read_sqlalchemy(url, mapping, label, problems, chunksize)
    else:
        folder = Path(location)
        if not folder.is_dir():
            raise FileNotFoundError(f"no case-data folder at {folder}")
        label, kind = str(folder), "folder"
        raw, files = _read_folder(folder, mapping, problems)
    unmapped = unmapped_codes(raw, mapping)
    raw = {t: _apply(df, mapping[t]) for t, df in raw.items()}
    if kind not in ("folder", "duckdb", "sqlite"):
        # A server returns rows in no fixed order (parallel scans): rows are put in key order
        # (code-point order of the ids, whatever the server's collation), so the same data
        # always give the same bundle. Files (folder, DuckDB, SQLite) keep their stored order.
        for t, df in raw.items():
            key = list(TABLES[t].key)
            if all(k in df.columns for k in key) and len(df) > 1:
                try:
                    order = df[key].sort_values(key, kind="stable").index
                except (TypeError, ValueError):  # mixed types: validation reports them
                    continue
                if not order.is_monotonic_increasing:
                    raw[t] = df.loc[order].reset_index(drop=True)

    def parse(name):
        text = files.get(name)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            problems.append(_problem(name, "valid JSON"))
            return None

    meta, truth = parse("meta.json"), parse("truth.json")
    if mapping.meta:
        meta = {**(meta or {}), **mapping.meta}
    return SourceRead(raw, meta, truth, label, kind, problems, unmapped)


def annotate(err: DataValidationError, mapping: "Mapping | None", label: str) -> DataValidationError:
    """The same error with each problem's table and column named as in the agency's source."""
    if mapping is None or not mapping.tables:
        return err
    out = []
    for p in err.problems:
        p = dict(p)
        tm = mapping.tables.get(p.get("table"))
        if tm is not None:
            p["table"] = f"{p['table']} [{tm.source_name}]"
            col = p.get("column")
            if col and tm.columns.get(col):
                p["column"] = f"{col} [{tm.columns[col]}]"
        out.append(p)
    return DataValidationError(out, label)


# --------------------------------------------------------------------------------------------
# DuckDB import / export
# --------------------------------------------------------------------------------------------
def import_bundle(folder, to, mapping=None) -> Path:
    """Validate a bundle folder and write it into a DuckDB file (``dmst-eval import``).

    The file holds the nine validated tables under their schema names plus ``meta.json`` and
    ``truth.json`` (table ``dmst_eval_files``), so ``load("duckdb:///<to>")`` equals
    ``load(folder)``. The file is written beside ``to`` and renamed into place (mode 0600).
    """
    import duckdb

    from dmst_eval.casedata import _json_default, load

    cd = load(folder, mapping=mapping) if mapping is not None else load(folder)
    to = Path(to)
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        tmp.unlink()  # DuckDB wants to create the file itself; the name is ours
        old = os.umask(0o077)
        try:
            con = duckdb.connect(str(tmp))
        finally:
            os.umask(old)
        try:
            for t in TABLE_NAMES:
                df = cd.tables[t]  # noqa: F841 — DuckDB reads it by name
                con.execute(f'CREATE TABLE "{t}" AS SELECT * FROM df')
            import json

            con.execute(f"CREATE TABLE {FILES_TABLE} (name VARCHAR, content VARCHAR)")
            rows = [("meta.json", json.dumps(cd.meta, sort_keys=True, default=_json_default))]
            if cd.truth is not None:
                rows.append(("truth.json", json.dumps(cd.truth, sort_keys=True,
                                                      default=_json_default)))
            con.executemany(f"INSERT INTO {FILES_TABLE} VALUES (?, ?)", rows)
        finally:
            con.close()
        os.chmod(tmp, 0o600)
        os.replace(tmp, to)
    finally:
        if tmp.exists():
            tmp.unlink()
    return to


def export_bundle(source, to, mapping=None) -> Path:
    """Load (and validate) any source and save it as a Parquet bundle folder (``dmst-eval export``)."""
    from dmst_eval.casedata import load

    cd = load(source, mapping=mapping)
    return cd.save(to)
