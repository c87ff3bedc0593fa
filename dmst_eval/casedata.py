"""CaseData: the bundle of the nine case-data tables; load, save and validate.

A bundle on disk is a folder: one ``<table>.parquet`` per table, ``meta.json`` and, for synthetic
data, ``truth.json``. A folder of ``<table>.csv`` files (``meta.json`` optional) is read too; that
is how an agency extract usually arrives. :func:`load` validates everything and raises
:class:`DataValidationError` listing every problem at once; nothing downstream ever sees an
invalid bundle.

Examples
--------
>>> import pandas as pd
>>> from dmst_eval.casedata import CaseData
>>> cd = CaseData.from_frames(children=pd.DataFrame({
...     "child_id": ["C1"], "sex": ["female"], "birth_date": [pd.Timestamp("2000-05-01")],
...     "race_ethnicity": ["White"], "home_town": ["Hartford"], "region": ["Region 4"],
...     "child_welfare_involved": [True]}))
>>> len(cd.children), len(cd.placements)
(1, 0)
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import shutil
import stat
import uuid
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from dmst_eval import schema
from dmst_eval.errors import DataValidationError, InputError  # noqa: F401  (re-exported)
from dmst_eval.schema import TABLE_NAMES, TABLES, _has_dtype

#: Most offending keys/rows listed per problem.
MAX_ROWS_LISTED = 10
#: Strings read as missing in CSV files.
CSV_NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "<NA>", "NaT"]

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


# --------------------------------------------------------------------------------------------
# Hashing and meta
# --------------------------------------------------------------------------------------------
def _canonical(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Schema columns in schema order with schema dtypes (best effort, no validation)."""
    spec = TABLES[table]
    out = {}
    for c in spec.columns:
        if c.name in df.columns:
            s = df[c.name]
            if _has_dtype(s, c.dtype):  # already cast (a validated table): no copy
                out[c.name] = s.array
                continue
            try:
                out[c.name] = s.astype(c.dtype).array
            except Exception:  # invalid content: hash its text form (validation reports it)
                out[c.name] = s.astype(object).map(repr).astype("string").array
        else:
            out[c.name] = pd.Series(index=df.index, dtype=c.dtype).array
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)), copy=False)


def content_hash(df: pd.DataFrame, table: str) -> str:
    """SHA-256 of a table's contents (column names, dtypes and values; not the index)."""
    d = _canonical(df, table)
    h = hashlib.sha256()
    h.update(json.dumps([[c, str(t)] for c, t in d.dtypes.items()]).encode())
    if len(d):
        h.update(pd.util.hash_pandas_object(d, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _event_days(tables: dict[str, pd.DataFrame], skip: dict | None = None) -> np.ndarray:
    """Days (int, since 1970) of every non-missing date except birth dates, in all tables.

    ``skip``: ``{(table, column): row mask}`` of values to leave out (already reported).
    """
    out = []
    for name, df in tables.items():
        for c in TABLES[name].columns:
            if c.kind != "datetime" or c.name == "birth_date" or c.name not in df.columns:
                continue
            s = df[c.name]
            if not pd.api.types.is_datetime64_dtype(s.dtype):
                continue
            v = s.to_numpy()
            keep = ~np.isnat(v)
            if skip and (name, c.name) in skip:
                keep &= ~skip[(name, c.name)]
            out.append(v[keep].astype("datetime64[D]").astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def infer_study_end(days: np.ndarray) -> tuple[pd.Timestamp | None, int]:
    """The study end implied by event dates (days since 1970), robust to a few typo dates.

    The end is the latest date of the bulk of the dates: where the dates above a gap of more
    than :data:`~dmst_eval.schema.WINDOW_GAP_DAYS` days are a single date or at most
    :data:`~dmst_eval.schema.WINDOW_OUTLIER_SHARE` of all dates (and there are at least
    :data:`~dmst_eval.schema.WINDOW_MIN_DATES` dates), the end is the date below the gap and those
    above it are outliers. Returns ``(end, number of outlying dates)``; ``(None, 0)`` without
    dates.

    Examples
    --------
    >>> days = (pd.to_datetime(["2015-01-01"] * 60 + ["2203-01-01"]).to_numpy()
    ...         .astype("datetime64[D]").astype("int64"))
    >>> infer_study_end(days)
    (Timestamp('2015-01-01 00:00:00'), 1)
    """
    if len(days) == 0:
        return None, 0
    u, cnt = np.unique(days, return_counts=True)
    n = int(cnt.sum())
    end_i = len(u) - 1
    if n >= schema.WINDOW_MIN_DATES and len(u) > 1:
        above = n - np.cumsum(cnt)  # dates strictly after u[i]
        cand = np.flatnonzero((np.diff(u) > schema.WINDOW_GAP_DAYS)
                              & (above[:-1] <= max(1.0, schema.WINDOW_OUTLIER_SHARE * n)))
        if len(cand):
            end_i = int(cand[0])
    end = pd.Timestamp(np.datetime64(int(u[end_i]), "D"))
    return end, int(cnt[end_i + 1:].sum())


def _today() -> pd.Timestamp:
    return pd.Timestamp.today().normalize()


def _complete_meta(tables: dict[str, pd.DataFrame], meta: dict | None,
                   hashes: dict[str, str] | None = None) -> dict:
    m = dict(meta or {})
    m.setdefault("schema_version", schema.SCHEMA_VERSION)
    m.setdefault("source", "extract")
    m.setdefault("study_start", str(schema.DEFAULT_STUDY_START.date()))
    if "study_end" not in m or m["study_end"] is None:
        end, _ = infer_study_end(_event_days(tables))
        if end is None:
            end = min(schema.DEFAULT_STUDY_END, _today())
        m["study_end"] = str(end.date())
        m["study_end_inferred"] = True
    m.setdefault("seed", None)
    m.setdefault("config", None)
    m["row_counts"] = {t: int(len(tables[t])) for t in TABLE_NAMES}
    m["content_hashes"] = (dict(hashes) if hashes is not None
                           else {t: content_hash(tables[t], t) for t in TABLE_NAMES})
    m["data_hash"] = hashlib.sha256(
        "".join(m["content_hashes"][t] for t in TABLE_NAMES).encode()).hexdigest()
    return m


# --------------------------------------------------------------------------------------------
# CaseData
# --------------------------------------------------------------------------------------------

def confirmed_mask(episodes: pd.DataFrame, column: str = "confirmed") -> np.ndarray:
    """Which episodes are confirmed: the one rule every analysis uses (missing = not confirmed).

    Examples
    --------
    >>> confirmed_mask(pd.DataFrame({"confirmed": pd.array([True, None, False], "boolean")}))
    array([ True, False, False])
    """
    from dmst_eval.errors import require_columns  # (errors is light; no cycle)

    require_columns(episodes, [column], table="episodes")
    return episodes[column].astype("boolean").fillna(False).to_numpy(dtype=bool)


class CaseData:
    """The nine case-data tables plus metadata and (for synthetic data) the ground truth.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Tables by name (see :data:`dmst_eval.schema.TABLE_NAMES`); missing tables become empty
        frames with schema columns. Frames are kept as given (use :meth:`from_frames` to cast
        hand-made frames, :meth:`validate` or :func:`load` to check them).
    meta : dict, optional
        schema_version, source ("synthetic" or "extract"), study_start, study_end (ISO dates),
        seed, config. Row counts and content hashes are (re)computed.
    truth : dict, optional
        Ground truth of a synthetic bundle.

    Examples
    --------
    >>> cd = CaseData({})
    >>> cd.meta["source"], cd.is_synthetic, cd.meta["row_counts"]["children"]
    ('extract', False, 0)
    """

    def __init__(self, tables: dict[str, pd.DataFrame], meta: dict | None = None,
                 truth: dict | None = None, *, _hashes: dict[str, str] | None = None):
        unknown = sorted(set(tables) - set(TABLE_NAMES))
        if unknown:
            raise InputError(f"unknown table(s) {unknown}", table="CaseData",
                             expected=f"some of {list(TABLE_NAMES)}")
        self.tables: dict[str, pd.DataFrame] = {
            t: (tables[t] if t in tables and tables[t] is not None else schema.empty_frame(t))
            for t in TABLE_NAMES
        }
        self.meta: dict = _complete_meta(self.tables, meta, _hashes)
        self.truth: dict | None = truth
        #: Where the data were read from: ``kind`` ("folder", "duckdb", "postgresql", …) and a
        #: ``source`` label that is safe to print (database URLs have their password masked).
        self.origin: dict[str, str] = {"kind": "memory", "source": ""}

    # per-table attributes --------------------------------------------------------------------
    @property
    def children(self) -> pd.DataFrame:
        return self.tables["children"]

    @property
    def placements(self) -> pd.DataFrame:
        return self.tables["placements"]

    @property
    def facilities(self) -> pd.DataFrame:
        return self.tables["facilities"]

    @property
    def awol_episodes(self) -> pd.DataFrame:
        return self.tables["awol_episodes"]

    @property
    def reports(self) -> pd.DataFrame:
        return self.tables["reports"]

    @property
    def episodes(self) -> pd.DataFrame:
        return self.tables["episodes"]

    @property
    def services(self) -> pd.DataFrame:
        return self.tables["services"]

    @property
    def trainings(self) -> pd.DataFrame:
        return self.tables["trainings"]

    @property
    def training_attendance(self) -> pd.DataFrame:
        return self.tables["training_attendance"]

    # ------------------------------------------------------------------------------------------
    @property
    def is_synthetic(self) -> bool:
        """True when ``meta["source"] == "synthetic"``.

        :func:`load` and :meth:`validate` accept that claim only with a consistent generator
        record (:func:`generator_record`), so a loaded bundle is synthetic exactly when the
        generator wrote it.
        """
        return self.meta.get("source") == "synthetic"


    def confirmed_episodes(self) -> pd.DataFrame:
        """The confirmed episodes (see :func:`confirmed_mask`), the ones the analyses count."""
        ep = self.tables["episodes"]
        return ep[confirmed_mask(ep)]

    @property
    def data_hash(self) -> str:
        """SHA-256 over the content hashes of the nine tables (recomputed from the data)."""
        hashes = "".join(content_hash(self.tables[t], t) for t in TABLE_NAMES)
        return hashlib.sha256(hashes.encode()).hexdigest()

    @property
    def study_start(self) -> pd.Timestamp:
        return pd.Timestamp(self.meta["study_start"])

    @property
    def study_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.meta["study_end"])

    @classmethod
    def from_frames(cls, meta: dict | None = None, truth: dict | None = None,
                    **tables: pd.DataFrame) -> "CaseData":
        """Build a bundle from partial hand-made frames.

        Missing tables are empty; missing columns are filled with missing values; every column is
        cast to its schema dtype with :func:`dmst_eval.schema.coerce_dtypes` (unknown categories
        become missing). Nothing is validated: call :meth:`validate` for that.

        Examples
        --------
        >>> import pandas as pd
        >>> cd = CaseData.from_frames(facilities=pd.DataFrame(
        ...     {"facility_id": ["F1"], "setting": ["shelter"], "town": ["Hartford"],
        ...      "capacity": [8]}))
        >>> str(cd.facilities.capacity.dtype), bool(cd.facilities.name.isna().all())
        ('Int64', True)
        """
        out = {}
        for name, df in tables.items():
            if name not in TABLES:
                raise InputError(f"unknown table {name!r}", table="CaseData",
                                 expected=f"one of {list(TABLE_NAMES)}")
            spec = TABLES[name]
            extra = [c for c in df.columns if c not in spec.column_names]
            if extra:
                raise InputError(f"unknown column(s) {extra}", table=name,
                                 expected=f"schema columns {spec.column_names}")
            d = df.reset_index(drop=True).copy()
            for c in spec.columns:
                if c.name not in d.columns:
                    d[c.name] = pd.Series(index=d.index, dtype=c.dtype)
            out[name] = schema.coerce_dtypes(d, name)
        return cls(out, meta=meta, truth=truth)

    def validate(self) -> "CaseData":
        """Check every schema rule; return a validated copy (towns normalised, dtypes cast).

        Raises
        ------
        DataValidationError
            Listing every problem found.
        """
        tables, meta, hashes = _validate(self.tables, self.meta, source=None, truth=self.truth)
        return CaseData(tables, meta=meta, truth=self.truth, _hashes=hashes)

    def describe(self) -> str:
        """A short text summary: source, study window, row counts, data hash."""
        kind = "synthetic" if self.is_synthetic else str(self.meta.get("source", "extract"))
        lines = [f"dmst-eval case data (schema v{self.meta.get('schema_version')}, {kind})",
                 f"  study window: {self.meta.get('study_start')} to {self.meta.get('study_end')}"]
        if self.meta.get("seed") is not None:
            lines.append(f"  seed: {self.meta['seed']}")
        for t in TABLE_NAMES:
            lines.append(f"  {t:<20} {len(self.tables[t]):>9,} rows")
        lines.append(f"  data hash: {self.data_hash[:16]}")
        if self.truth is not None:
            lines.append("  ground truth: included")
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(f"{t}={len(self.tables[t])}" for t in TABLE_NAMES)
        return f"CaseData({counts}, source={self.meta.get('source')!r})"

    # ------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the bundle to folder ``path`` atomically.

        One Parquet file per table (schema column order and dtypes, fixed writer options, no
        pandas metadata, so the same data always give byte-identical files), ``meta.json`` and,
        if present, ``truth.json``. Files are written to a temporary folder beside ``path`` that
        is then renamed into place: an interrupted save never leaves a half-written bundle.
        An existing bundle at ``path`` is replaced. The folder is created 0700 and its files
        0600 (readable by the analyst only).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir(mode=0o700)  # case data: readable by the analyst only
        try:
            canon = {t: _canonical(self.tables[t], t) for t in TABLE_NAMES}
            meta = _complete_meta(canon, self.meta)
            for t in TABLE_NAMES:
                tab = pa.Table.from_pandas(canon[t], preserve_index=False)
                tab = tab.replace_schema_metadata(None)
                pq.write_table(tab, tmp / f"{t}.parquet", compression="zstd",
                               compression_level=3, version="2.6", use_dictionary=True,
                               write_statistics=True, store_schema=False)
            # the files' own hashes: loading a bundle whose files are these bytes takes the
            # content hashes above instead of hashing every table again (_saved_hashes)
            meta["file_sha256"] = {t: _file_sha256(tmp / f"{t}.parquet") for t in TABLE_NAMES}
            _write_json(tmp / "meta.json", meta)
            if self.truth is not None:
                _write_json(tmp / "truth.json", self.truth)
            for f in tmp.iterdir():
                f.chmod(0o600)
            old = None
            if path.exists():
                old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
                os.replace(path, old)
            os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.meta = meta
        return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (pd.Timestamp,)):
        return o.isoformat()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _file_sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _saved_hashes(path: Path, meta: dict | None) -> dict[str, str] | None:
    """The tables' content hashes recorded in ``meta.json`` when every table's Parquet file is,
    byte for byte, the one :meth:`CaseData.save` wrote with that ``meta.json`` (its
    ``file_sha256``); else ``None``, and the loaded tables are hashed.

    Those files hold exactly the tables ``content_hashes`` describe, so hashing their
    contents again (about 0.1 s on the default bundle) would give the same hashes."""
    files, hashes = (meta or {}).get("file_sha256"), (meta or {}).get("content_hashes")
    if not (isinstance(files, dict) and isinstance(hashes, dict)):
        return None
    for t in TABLE_NAMES:
        f = path / f"{t}.parquet"
        if not (isinstance(hashes.get(t), str) and isinstance(files.get(t), str)
                and f.is_file() and _file_sha256(f) == files[t]):
            return None
    return {t: hashes[t] for t in TABLE_NAMES}


def _write_json(p: Path, obj) -> None:
    p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n",
                 encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def load(path: str | os.PathLike = "data/synthetic", mapping=None, *, study_start: Any = None,
         study_end: Any = None) -> CaseData:
    """Load and validate a bundle: a folder (Parquet or CSV) or a database URL.

    ``path`` may also be a database URL (``duckdb:///cases.duckdb``, ``sqlite:///cases.db``,
    ``postgresql://analyst@host/db``, ``mssql+pyodbc://…``), and ``mapping`` a mapping file (or
    dict) from the agency's own table names, column names and codes to schema v1; see
    :mod:`dmst_eval.sources`. Whatever the source, validation is the same.

    Each table is one file, ``<table>.parquet`` or ``<table>.csv`` (a ``<table>.parquet``
    folder of part files, as Spark writes them, counts as one file); a table with both is
    refused. Every table must be present (a header-only CSV stands for a table you do not
    have). CSV cells are read as UTF-8 text and parsed by the schema (complete ISO dates,
    booleans as true/false, yes/no, 1/0), never guessed. Symbolic links are followed to regular
    files only; loops, dangling links, folders and devices are reported as such.

    The study window is ``study_start``/``study_end`` given here, else ``meta.json``'s; without
    either the start is 2008-01-01 and the end the later of 2025-12-31 and the latest date of the
    bulk of the data (a date more than a year after all others is reported as an outlier, not
    taken as the end). Dates must not be later than the extract date (``meta.json``
    ``extracted_at``, else today) nor earlier than 1990. A bundle is synthetic only when its
    generator record is present and consistent (see :func:`generator_record`).

    Parameters
    ----------
    path : path-like
        The bundle folder.
    study_start, study_end : date-like, optional
        The study window (whole days, both inclusive); they take precedence over ``meta.json``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataValidationError
        If anything in the bundle breaks a schema rule, or a file cannot be read; every problem
        is listed (table or file, column, rows, expectation).

    Examples
    --------
    >>> from pathlib import Path
    >>> import dmst_eval
    >>> cd = dmst_eval.load(Path(dmst_eval.__file__).parent.parent / "data" / "synthetic")
    >>> cd.is_synthetic
    True
    """
    from dmst_eval import sources

    if mapping is not None or sources.is_url(path):
        return _load_source(path, mapping, (study_start, study_end))
    path = Path(path)
    kind, why = _file_kind(path)
    if kind == "absent":
        raise FileNotFoundError(f"no case-data bundle at {path}")
    if kind != "dir":
        raise DataValidationError([_problem("bundle", None, [], 0,
                                            f"{path} to be a folder of table files ({why})")],
                                  str(path))
    problems: list[dict] = []
    raw: dict[str, pd.DataFrame] = {}
    flags: dict[str, dict[str, tuple[np.ndarray, str]]] = {}
    for t in TABLE_NAMES:
        pq_file, csv_file = path / f"{t}.parquet", path / f"{t}.csv"
        pq_kind, pq_why = _file_kind(pq_file)
        csv_kind, csv_why = _file_kind(csv_file)
        if pq_kind != "absent" and csv_kind != "absent":
            problems.append(_problem(t, None, [], 0,
                                     f"one file for the table, {t}.parquet or {t}.csv (found "
                                     "both: remove or rename the one that is not current)"))
            continue
        if pq_kind == "absent" and csv_kind == "absent":
            problems.append(_problem(t, None, [], 0, f"a file {t}.parquet or {t}.csv in {path}"))
            continue
        name, fkind, fwhy = ((f"{t}.parquet", pq_kind, pq_why) if pq_kind != "absent"
                             else (f"{t}.csv", csv_kind, csv_why))
        if fkind == "dir" and name.endswith(".parquet"):
            if not any(p.name.endswith(".parquet") for p in pq_file.iterdir()):
                problems.append(_problem(name, None, [], 0,
                                         "a Parquet file, or a folder of Parquet part files "
                                         "(found an empty folder)"))
                continue
        elif fkind != "file":
            problems.append(_problem(name, None, [], 0, f"a readable file (found {fwhy})"))
            continue
        try:
            if name.endswith(".parquet"):
                raw[t], flags[t] = _read_parquet(pq_file)
            else:
                raw[t] = _read_csv(csv_file)
        except _FileProblem as e:
            problems.append(_problem(name, None, [], 0, str(e)))
        except Exception as e:  # unreadable file: report, do not crash
            problems.append(_problem(t, None, [], 0,
                                     f"a readable Parquet/CSV file ({type(e).__name__}: "
                                     f"{str(e).splitlines()[0][:200] if str(e) else ''})"))
    meta = _read_json(path / "meta.json", "meta.json", problems)
    truth = _read_json(path / "truth.json", "truth.json", problems)
    if meta is not None and not isinstance(meta, dict):
        problems.append(_problem("meta.json", None, [], 0, "a JSON object"))
        meta = None
    saved = None if problems else _saved_hashes(path, meta)
    tables, meta, hashes = _validate(raw, meta, source=str(path), prior=problems, truth=truth,
                                     flags=flags, window=(study_start, study_end), saved=saved)
    cd = CaseData(tables, meta=meta, truth=truth, _hashes=hashes or saved)
    cd.origin = {"kind": "folder", "source": str(path)}
    return cd


def _load_source(location, mapping, window=(None, None)) -> CaseData:
    """:func:`load` for a database URL or a folder of agency exports read through a mapping."""
    from dmst_eval import sources

    mapping = sources.Mapping.coerce(mapping)
    src = sources.read_source(location, mapping)
    try:
        tables, meta, hashes = _validate(src.raw, src.meta, source=src.label,
                                         prior=src.problems, truth=src.truth, window=window)
    except DataValidationError as e:
        raise sources.annotate(e, mapping, src.label) from None
    cd = CaseData(tables, meta=meta, truth=src.truth, _hashes=hashes)
    cd.origin = {"kind": src.kind, "source": src.label}  # no secrets: the URL is masked
    return cd


class _FileProblem(Exception):
    """A file-level problem found while reading (the message is the expectation)."""


def _file_kind(p: Path) -> tuple[str, str]:
    """("absent" | "file" | "dir" | "other", what was found) for ``p``, links followed safely."""
    if not os.path.lexists(p):
        return "absent", "nothing"
    try:
        st = os.stat(p)  # follows links
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "other", "a symbolic link loop (the link points, directly or not, to itself)"
        if e.errno == errno.ENOENT:
            return "other", "a symbolic link to a file that does not exist"
        return "other", f"a file that cannot be opened ({e.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "dir", "a folder"
    if stat.S_ISREG(st.st_mode):
        return "file", "a file"
    return "other", "a device, pipe or socket, not a regular file"


def _read_csv(p: Path) -> pd.DataFrame:
    """A CSV table as text columns. NUL bytes (which the parser would cut values at) are kept
    visible as a control character, so validation reports the cells; a file that is not UTF-8
    is a file-level problem naming the first bad line."""
    import io

    data = p.read_bytes()
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x1a")  # (SUB: reported as a control character)
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False,
                         na_values=CSV_NA_VALUES, skipinitialspace=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        try:
            data.decode("utf-8")
            line = None
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
        raise _FileProblem("UTF-8 text" + (f" (line {line} is not valid UTF-8; save the file "
                                           "as UTF-8)" if line else "")) from None
    except pd.errors.EmptyDataError:
        raise _FileProblem("a header row with the column names (the file is empty)") from None
    except pd.errors.ParserError as e:
        raise _FileProblem(f"a well-formed CSV file ({str(e).strip().splitlines()[-1][:200]})"
                           ) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_parquet(p: Path) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, str]]]:
    """A Parquet table as a DataFrame (text and boolean columns Arrow-backed), and the cells
    found unusable while reading by column: ``{column: (row mask, expectation)}``.

    Text columns become ``pd.ArrowDtype(pa.string())`` (no Python string per cell; validation
    trims and encodes them in Arrow) and boolean columns nullable ``boolean`` (instead of an
    object column of True/False/None). The values are those of a plain ``to_pandas()``, and
    validation casts every column to its schema dtype, so the loaded bundle is the same. Text
    that is not valid UTF-8, and binary columns, are decoded with replacement characters (so
    that keys still match each other) and flagged.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {pa.string(): pd.ArrowDtype(pa.string()), pa.bool_(): pd.BooleanDtype()}
    try:  # one file: ParquetFile skips read_table's dataset discovery (twice as fast)
        with pq.ParquetFile(p) as f:
            tab = f.read()
    except Exception:  # a folder dataset, or unreadable: read_table reads it or raises as ever
        tab = pq.read_table(p)
    flags: dict[str, tuple[np.ndarray, str]] = {}
    for i, field in enumerate(tab.schema):
        ty = field.type
        is_text = pa.types.is_string(ty) or pa.types.is_large_string(ty)
        is_bin = (pa.types.is_binary(ty) or pa.types.is_large_binary(ty)
                  or pa.types.is_fixed_size_binary(ty))
        if not (is_text or is_bin):
            continue
        col = tab.column(i)
        if is_text:
            bad_chunks = []
            for ch in col.chunks:
                try:
                    ch.validate(full=True)
                except pa.ArrowInvalid:
                    bad_chunks.append(ch)
            if not bad_chunks:
                continue
        vals = [None if v is None else bytes(v) for v in col.cast(pa.large_binary())
                .to_pylist()] if is_text else [None if v is None else bytes(v)
                                               for v in col.to_pylist()]
        bad = np.zeros(len(vals), dtype=bool)
        text = []
        for k, v in enumerate(vals):
            if v is None:
                text.append(None)
                continue
            try:
                text.append(v.decode("utf-8"))
                bad[k] = is_bin
            except UnicodeDecodeError:
                text.append(v.decode("utf-8", "replace"))
                bad[k] = True
        tab = tab.set_column(i, field.name, pa.array(text, type=pa.string()))
        flags[str(field.name)] = (bad, "valid UTF-8 text" if is_text else
                                  "text (this column holds binary data; store it as a string "
                                  "column)")
    return tab.to_pandas(types_mapper=types.get), flags


def _read_json(p: Path, name: str, problems: list) -> Any:
    kind, why = _file_kind(p)
    if kind == "absent":
        return None
    if kind != "file":
        problems.append(_problem(name, None, [], 0, f"a JSON file (found {why})"))
        return None
    try:
        obj = json.loads(p.read_bytes().decode("utf-8"))
    except RecursionError:
        problems.append(_problem(name, None, [], 0,
                                 f"JSON nested at most {schema.MAX_JSON_DEPTH} levels deep"))
        return None
    except (ValueError, UnicodeDecodeError) as e:
        problems.append(_problem(name, None, [], 0, f"valid UTF-8 JSON ({str(e)[:200]})"))
        return None
    except OSError as e:
        problems.append(_problem(name, None, [], 0, f"a readable file ({e.strerror})"))
        return None
    if _json_depth(obj) > schema.MAX_JSON_DEPTH:
        problems.append(_problem(name, None, [], 0,
                                 f"JSON nested at most {schema.MAX_JSON_DEPTH} levels deep"))
        return None
    return obj


def _json_depth(obj, limit: int = schema.MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON value (iterative; stops counting past ``limit``)."""
    depth, level = 0, [obj]
    while level and depth <= limit:
        nxt = []
        for o in level:
            if isinstance(o, dict):
                nxt.extend(o.values())
            elif isinstance(o, list):
                nxt.extend(o)
        if not nxt:
            break
        depth += 1
        level = nxt
    return depth


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
def validate(data) -> CaseData:
    """Validate a :class:`CaseData` (or a dict of tables); return a validated CaseData.

    Raises :class:`DataValidationError` listing every problem.
    """
    if isinstance(data, CaseData):
        return data.validate()
    tables, meta, hashes = _validate(dict(data), None, source=None)
    return CaseData(tables, meta=meta, _hashes=hashes)


def _problem(table, column, rows, n, expected) -> dict:
    return {"table": table, "column": column, "rows": [str(r) for r in rows][:MAX_ROWS_LISTED],
            "n_rows": int(n), "expected": expected}


class _Ctx:
    """Per-table state while validating: row labels and already-reported cells."""

    def __init__(self, name: str, df: pd.DataFrame):
        self.name = name
        self.spec = TABLES[name]
        self.n = len(df)
        self.flagged: dict[str, np.ndarray] = {}
        key = [k for k in self.spec.key if k in df.columns]
        # rows are labelled by their key, except where the key is a child id (never printed)
        self.key = ([df[k].reset_index(drop=True) for k in key]
                    if len(key) == len(self.spec.key) and "child_id" not in self.spec.key
                    else None)

    def labels(self, idx: np.ndarray) -> list[str]:
        """Key value (``a/b`` for a composite key) or ``row N`` (1-based) for rows ``idx``."""
        out = []
        for i in idx:
            lab = None
            if self.key is not None:
                parts = [k.iloc[i] for k in self.key]
                if not any(_isna(v) for v in parts):
                    lab = "/".join(str(v) for v in parts)
                    if len(lab) > 40 or not lab.isprintable():  # a broken key: its row number
                        lab = None
            out.append(lab if lab is not None else f"row {i + 1}")
        return out

    def report(self, problems: list, column: str | None, mask, expected: str,
               values: pd.Series | None = None) -> None:
        m = np.asarray(mask, dtype=bool)
        n = int(m.sum())
        if n == 0:
            return
        if column is not None:
            prev = self.flagged.get(column)
            self.flagged[column] = m if prev is None else (prev | m)
        idx = np.flatnonzero(m)[:MAX_ROWS_LISTED]
        p = _problem(self.name, column, self.labels(idx), n, expected)
        if values is not None and _shows_values(self.spec, column):
            found = pd.unique(values.reset_index(drop=True)[m].astype(str))[:5]
            p["found"] = [str(v)[:40] for v in found]
        problems.append(p)


def _shows_values(spec: schema.Table, column: str | None) -> bool:
    """Whether offending values of ``column`` may be quoted in a message: never ids, free text
    or dates (they may identify a child), only coded values (categories, towns, flags,
    numbers)."""
    if column is None or column not in spec.column_names:
        return False
    return spec.column(column).kind in ("category", "town", "bool", "int", "float")


def _isna(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _trimmed_arrow(s: pd.Series):
    """Values of ``s`` as a stripped Arrow string array (null = missing), or None.

    None when ``s`` holds anything but text and missing values (:func:`_text` then takes the
    pandas path). Arrow-backed text (Parquet) is used as is, without Python strings.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(s.dtype, pd.ArrowDtype) and s.dtype.pyarrow_dtype == pa.string():
        arr = pa.array(s.array)  # zero-copy
        if isinstance(arr, pa.ChunkedArray):  # (several Parquet row groups)
            arr = arr.combine_chunks()
    elif pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        try:
            vals = s.to_numpy(dtype=object, na_value=None)
            arr = pa.array(vals, type=pa.string(), from_pandas=True)
        except Exception:  # non-text values
            return None
    else:
        return None
    return pc.utf8_trim_whitespace(arr)


def _string_series(arr, index=None) -> pd.Series:
    """An Arrow string array as a pandas ``string`` Series."""
    return pd.Series(pd.array(arr.to_numpy(zero_copy_only=False), dtype="string"), index=index)


def _text(s: pd.Series, arr=None) -> pd.Series:
    """Values as stripped nullable strings (vectorised); ``arr``: ``_trimmed_arrow(s)`` if known."""
    if arr is None:
        arr = _trimmed_arrow(s)
    if arr is not None:  # fast path: all values are text or missing
        return _string_series(arr, index=s.index)
    try:
        t = s.astype("string")
    except (TypeError, ValueError):
        t = s.astype(object).map(lambda v: None if _isna(v) else str(v)).astype("string")
    return t.str.strip()


#: Dates outside these bounds are set to missing once reported (so that date arithmetic in
#: the cross-table checks cannot overflow pandas' nanosecond range).
_SAFE_DATES = (pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01"))


def _date_expectation(extract: pd.Timestamp) -> str:
    return ("a complete date or date-time in ISO 8601 form (YYYY-MM-DD or YYYY-MM-DD "
            f"HH:MM:SS), no time zone, from {schema.DATE_MIN.date()} to the extract date "
            f"({extract.date()})")


def _coerce_column(s: pd.Series, col: schema.Column, keep_arrow: dict | None = None,
                   dates: tuple[pd.Timestamp, pd.Timestamp] | None = None,
                   issues: list | None = None) -> tuple[pd.Series, np.ndarray, str | None]:
    """Cast ``s`` to the column's dtype. Returns (values, bad mask, expectation for bad).

    For an id column read through Arrow, ``keep_arrow[col.name]`` receives the Arrow array of
    the returned values (reused by the cross-table lookups). ``dates`` is the plausible range
    of dates, ``[first day, day after the extract date)``. ``issues`` receives further
    ``(mask, expectation)`` problems of text columns (binary data, control characters, length).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (isinstance(s.index, pd.RangeIndex) and s.index.start == 0 and s.index.step == 1):
        s = s.reset_index(drop=True)  # (a copy; _validate already passes a 0..n-1 index)
    issues = [] if issues is None else issues
    present = ~np.asarray(s.array.isna(), dtype=bool)  # (s.notna(), without a Series)
    none = np.zeros(len(s), dtype=bool)
    kind = col.kind
    exp = schema.expectation(col)
    if kind in ("id", "str", "town", "category") and s.dtype == object:
        s, binary = _decode_binary(s)
        if binary is not None:
            issues.append((binary, "text (found binary data; store this column as text)"))
    arr = _trimmed_arrow(s) if kind in ("id", "town", "category", "datetime") else None
    if kind == "str":
        out = _text_raw(s)
        issues.extend(_text_issues(None, out, kind))
        return out, none, None
    if kind == "id":
        out = _text(s, arr)
        if arr is not None and keep_arrow is not None:
            keep_arrow[col.name] = arr
        issues.extend(_text_issues(arr, out, kind))
        return out, none, None
    if kind == "town":
        from dmst_eval import geography

        if arr is None:
            norm = geography.normalise_towns(_text(s))
            unknown = norm.isna().to_numpy(dtype=bool)
        else:  # normalise each distinct name once, then spread by position (no Python strings)
            uniq = pc.drop_null(pc.unique(arr))
            names = geography.normalise_towns(_string_series(uniq)).array
            pos = pc.index_in(arr, value_set=uniq).fill_null(-1).to_numpy(zero_copy_only=False)
            norm = pd.Series(names.take(pos, allow_fill=True), index=s.index)
            unknown = np.where(pos >= 0, names.isna()[np.maximum(pos, 0)], True)
        return norm, present & unknown, exp
    if kind == "category":
        levels = list(col.levels or ())
        if arr is not None:  # level codes straight from the Arrow text
            codes = pc.index_in(arr, value_set=pa.array(levels, type=pa.string()))
            codes = codes.fill_null(-1).to_numpy(zero_copy_only=False)
            ok = codes >= 0
            out = pd.Series(pd.Categorical.from_codes(codes, dtype=col.dtype), index=s.index)
        else:
            txt = _text(s)
            ok = txt.isin(levels).fillna(False).to_numpy(dtype=bool)
            out = pd.Series(pd.Categorical(txt.astype(object).where(ok, None), categories=levels))
        bad = present & ~ok
        return out, bad, exp
    if kind == "datetime":
        lo, hi = dates if dates is not None else (schema.DATE_MIN, _today() + pd.Timedelta(days=1))
        exp = _date_expectation(hi - pd.Timedelta(days=1))
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return (pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]"), present,
                    exp + " (this column carries a time zone)")
        if pd.api.types.is_datetime64_dtype(s.dtype):
            out, bad = s, none
        else:
            if arr is not None:  # complete ISO dates only (no "2019-05", no time zone)
                form = pc.match_substring_regex(arr, schema.ISO_DATE_PATTERN)
                form = form.fill_null(False).to_numpy(zero_copy_only=False)
                text = arr.to_numpy(zero_copy_only=False)
            else:
                t = _text(s)
                form = t.str.match(schema.ISO_DATE_PATTERN).fillna(False).to_numpy(dtype=bool)
                text = t.to_numpy(dtype=object, na_value=None)
            txt = np.where(present & form, text, None)  # (object array: text or None)
            try:
                out = pd.Series(pd.to_datetime(txt, format="ISO8601", errors="coerce"),
                                index=s.index)
            except (ValueError, TypeError, OverflowError):
                out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
            if isinstance(out.dtype, pd.DatetimeTZDtype):  # pragma: no cover - no offsets left
                out = out.dt.tz_localize(None)
            bad = present & np.asarray(out.array.isna(), dtype=bool)
        # plausible range; values beyond the safe range are dropped once reported
        # (compared on the arrays: the same comparisons as on the Series, without building one)
        early = np.asarray(out.array < lo, dtype=bool)
        late = np.asarray(out.array >= hi, dtype=bool)
        if early.any() or late.any():
            bad = bad | early | late
            far = ((out < _SAFE_DATES[0]) | (out >= _SAFE_DATES[1])).to_numpy(dtype=bool)
            if far.any():
                out = out.where(~far)
        if out is s or out.dtype != np.dtype("datetime64[ns]"):
            out = out.astype("datetime64[ns]")  # (a copy, as the other kinds: never the input)
        return out, bad, exp
    if kind == "bool":
        if pd.api.types.is_bool_dtype(s.dtype):
            return s.astype("boolean"), none, None
        txt = _text(s).str.lower()
        true = txt.isin(_TRUE).fillna(False).to_numpy(dtype=bool)
        unknown = ~(true | txt.isin(_FALSE).fillna(False).to_numpy(dtype=bool))
        val = pd.Series(pd.arrays.BooleanArray(true, unknown), index=s.index)
        return val, present & unknown, exp
    if kind in ("int", "float"):
        if pd.api.types.is_bool_dtype(s.dtype):
            v = np.full(len(s), np.nan)
            bad = present.copy()
        elif pd.api.types.is_numeric_dtype(s.dtype):
            v = s.to_numpy(dtype="float64", na_value=np.nan)
            bad = none.copy()
        else:
            txt = _text(s).astype(object).where(present, None)
            num = pd.to_numeric(txt, errors="coerce")
            v = pd.Series(num).to_numpy(dtype="float64", na_value=np.nan)
            bad = present & np.isnan(v)
        fin = np.isfinite(v)
        bad = bad | (present & ~fin)
        if kind == "int":
            with np.errstate(invalid="ignore"):
                bad = bad | (fin & ((np.abs(v) >= 2**53) | (np.floor(v) != v)))
            ok = fin & ~bad
            out = pd.Series(pd.arrays.IntegerArray(np.where(ok, v, 0).astype("int64"), ~ok))
            return out, bad, exp
        return pd.Series(np.where(bad, np.nan, v), dtype="float64"), bad, exp
    raise AssertionError(kind)  # pragma: no cover


def _decode_binary(s: pd.Series) -> tuple[pd.Series, np.ndarray | None]:
    """An object column with bytes values: the bytes decoded as UTF-8 (invalid bytes replaced,
    so equal ids still match each other) and the mask of those rows; else ``(s, None)``."""
    if pd.api.types.infer_dtype(s, skipna=True) not in ("bytes", "mixed", "mixed-integer"):
        return s, None
    mask = s.map(lambda v: isinstance(v, (bytes, bytearray, memoryview))).to_numpy(dtype=bool)
    if not mask.any():
        return s, None
    s = s.copy()
    s[mask] = [bytes(v).decode("utf-8", "replace") for v in s[mask]]
    return s, mask


def _not_unicode(v) -> bool:
    """A Python string that cannot be encoded as UTF-8 (lone surrogates)."""
    if not isinstance(v, str):
        return False
    try:
        v.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _text_issues(arr, txt: pd.Series, kind: str) -> list[tuple[np.ndarray, str]]:
    """Rows of a text column with control characters, more than the allowed length, or text
    that is not Unicode. ``arr``: the same values as an Arrow string array, when there is one
    (checked from its buffers; the per-row kernels run only when the buffers show a hit)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    limit = schema.MAX_TEXT_LENGTH[kind]
    ctrl_exp = ("text without control characters (such as NUL bytes, tabs or line breaks inside "
                "the value)")
    long_exp = f"text of at most {limit:,} characters"
    out: list[tuple[np.ndarray, str]] = []
    if arr is not None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        bufs = arr.buffers()
        if len(arr) and bufs[2] is not None and bufs[1] is not None:
            off_t = np.int64 if pa.types.is_large_string(arr.type) else np.int32
            off = np.frombuffer(bufs[1], dtype=off_t)[arr.offset:arr.offset + len(arr) + 1]
            data = np.frombuffer(bufs[2], dtype=np.uint8)[off[0]:off[-1]]
            if len(data) and (data.min() < 32 or (data == 127).any()):
                m = pc.match_substring_regex(arr, schema.CONTROL_CHARACTERS).fill_null(False)
                out.append((m.to_numpy(zero_copy_only=False), ctrl_exp))
            if int(np.diff(off).max()) > limit:
                m = pc.greater(pc.utf8_length(arr), limit).fill_null(False)
                out.append((m.to_numpy(zero_copy_only=False), long_exp))
        return [(m, e) for m, e in out if m.any()]
    obj = txt.astype(object)
    present = txt.notna().to_numpy(dtype=bool)
    if not present.any():
        return []
    bad_u = obj.map(_not_unicode).to_numpy(dtype=bool)
    if bad_u.any():
        out.append((bad_u, "valid Unicode text (found characters that cannot be written as "
                           "UTF-8)"))
    ctrl = txt.str.contains(schema.CONTROL_CHARACTERS, regex=True).fillna(False)
    out.append((ctrl.to_numpy(dtype=bool) & present, ctrl_exp))
    long_ = (txt.str.len() > limit).fillna(False)
    out.append((long_.to_numpy(dtype=bool) & present, long_exp))
    return [(m, e) for m, e in out if m.any()]


def _text_raw(s: pd.Series) -> pd.Series:
    try:
        return s.astype("string")
    except (TypeError, ValueError):
        return s.astype(object).map(lambda v: None if _isna(v) else str(v)).astype("string")


_PANDERA_CHECK_TEXT = {
    "not_nullable": "a value (this column may not be empty)",
    "field_uniqueness": "unique values (this is the table's key)",
    "multiple_fields_uniqueness": "unique combinations of the key columns",
}


@functools.lru_cache(maxsize=64)
def _cached_pandera_schema(table: str, present: tuple[str, ...], dtypes: bool = True):
    sch = schema.pandera_schema(table, columns=present, dtypes=dtypes)
    if not dtypes:  # a column with nothing left to check costs pandera's overhead only: skip it
        idle = [n for n, c in sch.columns.items() if c.nullable and not c.unique and not c.checks]
        sch = sch.remove_columns(idle)
    return sch


@functools.lru_cache(maxsize=None)
def _schema_dtypes(table: str) -> dict[str, Any]:
    """The schema's pandas dtypes of ``table``'s columns, by column name."""
    return {c.name: pd.api.types.pandas_dtype(c.dtype) for c in TABLES[table].columns}


def _pandera_problems(ctx: _Ctx, df: pd.DataFrame, present: list[str], problems: list) -> None:
    import pandera.errors as pae

    # _coerce_column casts every column to its schema dtype, so pandera's dtype check (a
    # costly per-column step) cannot fail: it runs only where a dtype is not exactly the
    # schema's (the same comparison pandera makes; never, short of a bug)
    want, have = _schema_dtypes(ctx.name), dict(zip(df.columns, df.dtypes))
    exact = all(have[c] is want[c] or (type(have[c]) is type(want[c]) and have[c] == want[c])
                for c in present)
    sch = _cached_pandera_schema(ctx.name, tuple(present), not exact)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # pandera only reads the frame here (coerce=False): a shallow copy spares its deep
            # copy, and keeps its accessor off the returned table
            sch.validate(df[present] if len(present) < df.shape[1] else df.copy(deep=False),
                         lazy=True, inplace=True)
        return
    except pae.SchemaErrors as e:
        fc = e.failure_cases
    except pae.SchemaError as e:  # pragma: no cover - lazy=True normally aggregates
        fc = pd.DataFrame([{"column": getattr(e, "column_name", None), "check": str(e.check),
                            "index": None}])
    fc = fc[fc["index"].notna()] if "index" in fc else fc
    for (column, check), grp in fc.groupby(["column", "check"], sort=False, dropna=False):
        check = str(check)
        if check == "multiple_fields_uniqueness":
            column = None
        idx = pd.to_numeric(grp["index"], errors="coerce").dropna().astype(int).unique()
        mask = np.zeros(ctx.n, dtype=bool)
        mask[idx[(idx >= 0) & (idx < ctx.n)]] = True
        if column is not None and column in ctx.flagged and check == "not_nullable":
            mask &= ~ctx.flagged[column]  # already reported as unparseable
        if column is not None and column in ctx.spec.column_names:
            col = ctx.spec.column(column)
            if check.startswith(("greater_than", "less_than", "in_range")):
                expected = schema.expectation(col)
            elif check.startswith("isin"):
                expected = schema.expectation(col)
            else:
                expected = _PANDERA_CHECK_TEXT.get(check, check)
        else:
            expected = _PANDERA_CHECK_TEXT.get(check, check)
            if check == "multiple_fields_uniqueness":
                expected = ("unique combinations of (" + ", ".join(ctx.spec.key) + ")")
        if check == "multiple_fields_uniqueness" and any(
                p["table"] == ctx.name and p["expected"] == expected for p in problems):
            continue
        vals = df[column] if (column in df.columns and check != "not_nullable") else None
        ctx.report(problems, column, mask, expected, values=vals)


class _Lookup:
    """Row lookups between validated tables by text key (first matching row, like
    ``drop_duplicates(key).set_index(key)``), hashed in Arrow rather than as Python strings."""

    def __init__(self, tables: dict[str, pd.DataFrame], arrow: dict | None = None):
        self.tables = tables
        #: Arrow arrays of id columns by (table, column), as produced while casting
        self._arrow: dict[tuple[str, str], Any] = dict(arrow or {})
        self._positions: dict[tuple[str, str, str, str], np.ndarray] = {}

    def present(self, t: str, c: str) -> np.ndarray:
        """``tables[t][c].notna()`` (from the Arrow validity bitmap when there is one)."""
        if (t, c) in self._arrow:
            return self._arrow[(t, c)].is_valid().to_numpy(zero_copy_only=False)
        return self.tables[t][c].notna().to_numpy(dtype=bool)

    def _arr(self, t: str, c: str):
        import pyarrow as pa

        if (t, c) not in self._arrow:
            self._arrow[(t, c)] = pa.array(self.tables[t][c].array, type=pa.string())
        return self._arrow[(t, c)]

    def positions(self, t: str, c: str, pt: str, pc: str, rows: np.ndarray | None = None
                  ) -> np.ndarray:
        """For each row of ``t``, the first row of ``pt`` (among ``rows``, a mask) whose ``pc``
        equals ``t.c``; -1 where there is none or ``t.c`` is missing."""
        import pyarrow as pa
        import pyarrow.compute as pc_

        if rows is not None and rows.all():
            rows = None
        if rows is None and (t, c, pt, pc) in self._positions:
            return self._positions[(t, c, pt, pc)]
        cand = np.arange(len(self.tables[pt])) if rows is None else np.flatnonzero(rows)
        try:
            keys = self._arr(pt, pc)
            if rows is not None:
                keys = keys.filter(pa.array(rows))
            pos = pc_.index_in(self._arr(t, c), value_set=keys, skip_nulls=True)
            pos = pos.fill_null(-1).to_numpy(zero_copy_only=False)
        except (pa.ArrowException, UnicodeError):  # text Arrow cannot hold (lone surrogates)
            keys = self.tables[pt][pc].iloc[cand]
            first = keys.notna().to_numpy(dtype=bool) & ~keys.duplicated().to_numpy(dtype=bool)
            cand, keys = cand[first], keys[first]
            pos = pd.Index(keys.astype(object)).get_indexer(
                self.tables[t][c].astype(object))
        pos = (np.where(pos >= 0, cand[np.maximum(pos, 0)], -1) if len(cand)
               else np.full(len(self.tables[t]), -1))
        if rows is None:
            self._positions[(t, c, pt, pc)] = pos
        return pos

    def take(self, pt: str, col: str, pos: np.ndarray) -> pd.Series:
        """Column ``col`` of ``pt`` at rows ``pos`` (missing where ``pos`` is -1)."""
        return pd.Series(self.tables[pt][col].array.take(pos, allow_fill=True))


def _meta_date(v: Any) -> pd.Timestamp | None:
    """A complete ISO date (text) or a date object as a tz-naive Timestamp; None if not one."""
    import re

    if isinstance(v, str):
        if not re.match(schema.ISO_DATE_PATTERN, v.strip()):
            return None
    elif not hasattr(v, "year") or isinstance(v, bool):  # datetime, date, Timestamp
        return None
    try:
        ts = pd.Timestamp(v.strip() if isinstance(v, str) else v)
    except (ValueError, TypeError, OverflowError):
        return None
    if ts is pd.NaT or ts.tzinfo is not None:
        return None
    return ts


def _short(v: Any) -> str:
    """A short, safe repr of a meta value (deep or huge values cannot blow up a message)."""
    import reprlib

    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlevel = 40, 40, 3
    return r.repr(v)


def _validate(raw: dict[str, pd.DataFrame], meta: dict | None, source: str | None,
              prior: list | None = None, truth: Any = None, flags: dict | None = None,
              window: tuple[Any, Any] | None = None, saved: dict[str, str] | None = None
              ) -> tuple[dict[str, pd.DataFrame], dict, dict[str, str] | None]:
    """Check and cast every table; raise DataValidationError with all problems.

    Returns the cast tables, the meta (study window filled in) and, when they were computed
    (to check a synthetic bundle's record), the tables' content hashes. ``saved``: the content
    hashes when the files are known to be the ones saved with this meta (:func:`_saved_hashes`).
    """
    problems: list[dict] = list(prior or [])
    tables: dict[str, pd.DataFrame] = {}
    ctxs: dict[str, _Ctx] = {}
    id_arrow: dict[tuple[str, str], Any] = {}  # Arrow arrays of cast id columns
    missing_cols: dict[str, set[str]] = {}
    flags = flags or {}
    bad_keys: set[tuple[str, str]] = set()  # id columns with unusable text (binary, ...)

    # ---- meta: schema version, source, extract date, study window ---------------------------
    meta = dict(meta or {})
    sv = meta.get("schema_version")
    if sv is not None and str(sv)[:20] != schema.SCHEMA_VERSION:
        problems.append(_problem("meta.json", "schema_version", [], 0,
                                 f"schema version {schema.SCHEMA_VERSION} (found {_short(sv)})"))
    src = meta.get("source")
    if src is not None and not (isinstance(src, str) and src in ("synthetic", "extract")):
        problems.append(_problem("meta.json", "source", [], 0,
                                 f"synthetic or extract (found {_short(src)})"))
    today = _today()
    extract = today
    if meta.get("extracted_at") is not None:
        d = _meta_date(meta["extracted_at"])
        if d is None or d < schema.DATE_MIN or d.normalize() > today:
            problems.append(_problem("meta.json", "extracted_at", [], 0,
                                     f"a complete ISO date from {schema.DATE_MIN.date()} to today "
                                     f"(found {_short(meta['extracted_at'])})"))
        else:
            extract = d.normalize()
    hi = extract + pd.Timedelta(days=1)
    if meta.get("study_end_inferred"):  # inferred before: infer again from these tables
        meta.pop("study_end", None)
        meta.pop("study_end_inferred", None)
    win: dict[str, pd.Timestamp] = {}
    explicit = dict(zip(("study_start", "study_end"), window or (None, None)))
    for k in ("study_start", "study_end"):
        where, v = (("arguments", explicit[k]) if explicit.get(k) is not None
                    else ("meta.json", meta.get(k)))
        if v is None:
            continue
        d = _meta_date(v)
        if d is None or d < schema.DATE_MIN or d.normalize() > extract:
            problems.append(_problem(where, k, [], 0,
                                     f"a complete ISO date from {schema.DATE_MIN.date()} to the "
                                     f"extract date ({extract.date()}) (found {_short(v)})"))
            meta.pop(k, None)
            continue
        if where == "arguments":
            d = d.normalize()
            meta[k] = str(d.date())
        win[k] = d

    # ---- per table: columns, types, plausibility, pandera checks -----------------------------
    for t in TABLE_NAMES:
        spec = TABLES[t]
        df = raw.get(t)
        if df is None:
            tables[t] = schema.empty_frame(t)
            missing_cols[t] = set(spec.column_names)
            ctxs[t] = _Ctx(t, tables[t])
            continue
        if not isinstance(df, pd.DataFrame):
            problems.append(_problem(t, None, [], 0, "a pandas DataFrame"))
            tables[t] = schema.empty_frame(t)
            missing_cols[t] = set(spec.column_names)
            ctxs[t] = _Ctx(t, tables[t])
            continue
        df = df.reset_index(drop=True)
        cols = [str(c) for c in df.columns]
        dup_cols = sorted({c for c in cols if cols.count(c) > 1})
        if dup_cols:
            problems.append(_problem(t, ", ".join(dup_cols), [], 0, "each column name once"))
            df = df.loc[:, ~pd.Index(cols).duplicated()]
        ctx = _Ctx(t, df)
        ctxs[t] = ctx
        miss = [c for c in spec.column_names if c not in df.columns]
        extra = [c for c in df.columns if c not in spec.column_names]
        for c in miss:
            problems.append(_problem(t, c, [], 0, "this column to be present"))
        for c in extra:
            problems.append(_problem(t, str(c)[:100], [], 0,
                                     "no such column (schema columns: "
                                     + ", ".join(spec.column_names) + ")"))
        missing_cols[t] = set(miss)
        out = {}
        for c in spec.columns:
            if c.name in miss:
                out[c.name] = pd.Series(index=df.index, dtype=c.dtype)
                continue
            kept: dict = {}
            issues: list = []
            if c.name in flags.get(t, {}):  # found while reading the file (e.g. not UTF-8)
                issues.append(flags[t][c.name])
            try:
                vals, bad, exp = _coerce_column(df[c.name], c, keep_arrow=kept,
                                                dates=(schema.DATE_MIN, hi), issues=issues)
                if c.name in kept:
                    id_arrow[(t, c.name)] = kept[c.name]
            except Exception as e:  # defensive: never leak a pandas error
                vals = pd.Series(index=df.index, dtype=c.dtype)
                bad, exp = df[c.name].notna().to_numpy(), (
                    f"{schema.expectation(c)} (could not read: {type(e).__name__})")
            ctx.report(problems, c.name, bad, exp, values=df[c.name])
            for mask, iexp in issues:  # one problem per cell: the first found
                prev = ctx.flagged.get(c.name)
                ctx.report(problems, c.name, mask if prev is None else mask & ~prev, iexp)
                if c.kind == "id" and mask.any():
                    bad_keys.add((t, c.name))
            out[c.name] = vals
        cdf = pd.DataFrame(out, index=df.index, copy=False)  # (the columns are new)
        tables[t] = cdf
        present = [c for c in spec.column_names if c not in miss]
        if present and len(cdf):
            _pandera_problems(ctx, cdf, present, problems)

    # cells reported so far (unreadable or implausible): not reported again by the window rules
    coerced = {(t, c): m.copy() for t in TABLE_NAMES for c, m in ctxs[t].flagged.items()}

    # ---- study window ------------------------------------------------------------------------
    start = win.get("study_start", schema.DEFAULT_STUDY_START)
    inferred = "study_end" not in win
    if inferred:
        end, _ = infer_study_end(_event_days(tables, coerced))
        if end is None:
            end = min(schema.DEFAULT_STUDY_END, extract)
        meta["study_end"] = str(end.date())
        meta["study_end_inferred"] = True
    else:
        end = win["study_end"]
    if start > end:
        problems.append(_problem("meta.json", "study_start", [], 0,
                                 f"study_start ({start.date()}) on or before study_end "
                                 f"({end.date()})"))
    end_excl = end.normalize() + pd.Timedelta(days=1) if end == end.normalize() else end
    end_text = (f"{end.date()}, inferred from the dates in the data: later dates are more than "
                f"{schema.WINDOW_GAP_DAYS} days after all others and look like typing errors; "
                "correct them, or give study_end in meta.json or load(..., study_end=...)"
                if inferred else f"{end.date()}")

    # ---- cross-table checks ------------------------------------------------------------------
    def usable(t: str, *cols: str) -> bool:
        return not (set(cols) & missing_cols[t])

    look = _Lookup(tables, id_arrow)

    # foreign keys
    for t in TABLE_NAMES:
        spec = TABLES[t]
        for c in spec.columns:
            if not c.references or not usable(t, c.name):
                continue
            pt, pc = c.references
            if not usable(pt, pc) or (pt in raw and raw[pt] is None):
                continue
            if (pt, pc) in bad_keys:  # reported there: a cascade here would only repeat it
                continue
            bad = look.present(t, c.name) & (look.positions(t, c.name, pt, pc) < 0)
            if c.name in ctxs[t].flagged:
                bad &= ~ctxs[t].flagged[c.name]
            ctxs[t].report(problems, c.name, bad, f"a {pc} that exists in {pt}")

    # date order
    for t in TABLE_NAMES:
        for a, b in TABLES[t].date_order:
            if not usable(t, a, b):
                continue
            df = tables[t]
            bad = np.asarray(df[b].array < df[a].array, dtype=bool)  # (NaT compares False)
            ctxs[t].report(problems, b, bad, f"{b} on or after {a}")

    # placements: facility_id present exactly for congregate settings
    if usable("placements", "setting", "facility_id"):
        p = tables["placements"]
        cong = p["setting"].isin(schema.CONGREGATE_SETTINGS).to_numpy()
        known = p["setting"].notna().to_numpy()
        has_fac = p["facility_id"].notna().to_numpy()
        ctxs["placements"].report(
            problems, "facility_id", known & cong & ~has_fac,
            "a facility_id for congregate settings (" + ", ".join(schema.CONGREGATE_SETTINGS) + ")")
        ctxs["placements"].report(
            problems, "facility_id", known & ~cong & has_fac,
            "no facility_id for family settings (foster_family, kinship, specialized_foster)")

    # linked rows belong to the same child (e.g. an AWOL episode and the placement it left)
    for t in TABLE_NAMES:
        if not usable(t, "child_id"):
            continue
        for c in TABLES[t].columns:
            if not c.references or c.name == "child_id" or not usable(t, c.name):
                continue
            pt, pc = c.references
            if "child_id" not in TABLES[pt].column_names or not usable(pt, pc, "child_id"):
                continue
            other = look.take(pt, "child_id", look.positions(t, c.name, pt, pc))
            bad = (other.notna() & tables[t]["child_id"].notna()
                   & (other != tables[t]["child_id"])).fillna(False).to_numpy(dtype=bool)
            ctxs[t].report(problems, c.name, bad,
                           f"a {pc} in {pt} that belongs to the same child_id")

    # placements: the setting of a facility placement is the facility's setting
    if usable("placements", "setting", "facility_id") and usable("facilities", "facility_id",
                                                                  "setting"):
        pos = look.positions("placements", "facility_id", "facilities", "facility_id")
        pf = look.take("facilities", "setting", pos)
        ps = tables["placements"]["setting"]
        # both categoricals have the schema's SETTINGS levels: compare them as they are
        bad = (pf.notna() & ps.notna() & (pf != ps)).fillna(False).to_numpy(dtype=bool)
        ctxs["placements"].report(problems, "setting", bad,
                                  "the setting of the placement's facility (facilities.setting)")

    # AWOL episodes start during the placement they left
    if usable("awol_episodes", "placement_id", "start") and usable("placements", "placement_id",
                                                                    "start", "end"):
        pos = look.positions("awol_episodes", "placement_id", "placements", "placement_id")
        aw = tables["awol_episodes"]
        ps, pe = look.take("placements", "start", pos), look.take("placements", "end", pos)
        bad = np.asarray((aw["start"].array < ps.array) | (aw["start"].array > pe.array),
                         dtype=bool)
        ctxs["awol_episodes"].report(problems, "start", bad,
                                     "start between the placement's start and end")

    # episodes: where the child was agrees with the linked placement / AWOL episode
    if usable("episodes", "status_at_time", "placement_id", "awol_id"):
        e = tables["episodes"]
        st_ = e["status_at_time"].astype(object)
        has_p, has_a = e["placement_id"].notna(), e["awol_id"].notna()
        ctx = ctxs["episodes"]
        ctx.report(problems, "awol_id", ((st_ == "awol") & ~has_a).fillna(False).to_numpy(bool),
                   "an awol_id when status_at_time is awol")
        ctx.report(problems, "awol_id", ((st_ != "awol") & st_.notna() & has_a)
                   .fillna(False).to_numpy(bool), "no awol_id unless status_at_time is awol")
        ctx.report(problems, "placement_id", (st_.isin(["placement", "awol"]) & ~has_p)
                   .fillna(False).to_numpy(bool),
                   "a placement_id when status_at_time is placement or awol")
        ctx.report(problems, "placement_id", ((st_ == "home") & has_p).fillna(False).to_numpy(bool),
                   "no placement_id when status_at_time is home")

    # life events: not before birth, not after age MAX_EVENT_AGE
    if usable("children", "child_id", "birth_date"):
        has_birth = tables["children"]["birth_date"].notna().to_numpy(dtype=bool)
        for t in TABLE_NAMES:
            spec = TABLES[t]
            if not spec.life_events or not usable(t, "child_id"):
                continue
            pos = look.positions(t, "child_id", "children", "child_id", rows=has_birth)
            b = look.take("children", "birth_date", pos)
            # (compared as datetime arrays, not Series: NaT compares False, as before)
            b = b.array
            limit = b + pd.DateOffset(years=schema.MAX_EVENT_AGE)
            for c in spec.life_events:
                if not usable(t, c):
                    continue
                v = tables[t][c].array
                before = np.asarray(v < b, dtype=bool)
                after = np.asarray(v >= limit, dtype=bool)
                ctxs[t].report(problems, c, before, f"{c} on or after the child's birth_date")
                ctxs[t].report(problems, c, after,
                               f"{c} before the child's {schema.MAX_EVENT_AGE}st birthday")
            # every other date of a child's record: age 0 to MAX_PLAUSIBLE_AGE
            others = [c.name for c in spec.columns if c.kind == "datetime" and c.name not in
                      spec.life_events and usable(t, c.name)]
            if others:
                limit = b + pd.DateOffset(years=schema.MAX_PLAUSIBLE_AGE)
            for c in others:
                v = tables[t][c].array
                bad = np.asarray((v < b) | (v >= limit), dtype=bool)
                ctxs[t].report(problems, c, bad, f"{c} at a child's age of 0 to "
                               f"{schema.MAX_PLAUSIBLE_AGE} years (from the birth_date)")

    # study window
    for t in TABLE_NAMES:
        spec = TABLES[t]
        for c in spec.columns:
            if c.kind != "datetime" or not usable(t, c.name):
                continue
            v = tables[t][c.name].array  # (a datetime array: NaT compares False)
            done = coerced.get((t, c.name))
            late = np.asarray(v >= end_excl, dtype=bool)
            if done is not None:
                late &= ~done
            if c.name == "birth_date":
                ctxs[t].report(problems, c.name, late,
                               f"a birth_date not after the study end ({end.date()})")
                continue
            ctxs[t].report(problems, c.name, late, f"{c.name} not after the study end ({end_text})")
            if c.name in schema.WINDOW_COLUMNS.get(t, ()):
                early = np.asarray(v < start, dtype=bool)
                if done is not None:
                    early &= ~done
                ctxs[t].report(problems, c.name, early,
                               f"{c.name} not before the study start ({start.date()})")

    # ---- a synthetic bundle carries its generator record -----------------------------------
    hashes = None
    if meta.get("source") == "synthetic":
        wrong = _record_problems(meta, truth)
        if not wrong and not problems:
            hashes = saved or {t: content_hash(tables[t], t) for t in TABLE_NAMES}
            data_hash = hashlib.sha256("".join(hashes[t] for t in TABLE_NAMES).encode()
                                       ).hexdigest()
            if meta.get("data_hash") != data_hash:
                wrong.append("its data_hash matches the tables (the tables are not the ones the "
                             "generator wrote)")
        if wrong:
            problems.append(_problem(
                "meta.json", "source", [], 0,
                '"source": "synthetic" only on a bundle written by the synthetic generator, with '
                "its generator record (see the data dictionary); this bundle's record is "
                "missing or inconsistent: expected " + "; ".join(wrong) + '. A real extract '
                'must say "source": "extract" (or leave source out)'))

    if problems:
        raise DataValidationError(problems, source)
    meta.setdefault("study_start", str(start.date()))
    return tables, meta, hashes


def _record_hash(obj: Any) -> str:
    """SHA-256 of a JSON value in canonical form (as written to disk and read back: sorted keys,
    no spaces, ASCII)."""
    canon = json.loads(json.dumps(obj, default=_json_default))
    return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=True).encode()).hexdigest()


def generator_record(config: dict, truth: dict) -> dict:
    """The generator record a synthetic bundle carries in its meta (``meta.json``).

    A bundle is synthetic (``cd.is_synthetic``, the banner on its briefs) only when its meta
    says ``"source": "synthetic"`` *and* carries this record, consistent with its contents:

    - ``generator``: ``"dmst_eval.synthetic.generate"``;
    - ``config``: the generator configuration (a JSON object) and ``generator_config_sha256``
      the SHA-256 of ``config`` in canonical JSON (sorted keys, separators ``,`` and ``:``, ASCII);
    - ``truth.json`` present (a JSON object) and ``truth_sha256`` the SHA-256 of its contents in
      the same canonical JSON;
    - ``data_hash``: the data hash of the tables (written by :meth:`CaseData.save`).

    Examples
    --------
    >>> rec = generator_record({"seed": 1}, {"risk": {}})
    >>> sorted(rec)
    ['generator', 'generator_config_sha256', 'truth_sha256']
    """
    return {"generator": schema.SYNTHETIC_GENERATOR,
            "generator_config_sha256": _record_hash(config),
            "truth_sha256": _record_hash(truth)}


def _record_problems(meta: dict, truth: Any) -> list[str]:
    """What is missing or inconsistent in the generator record of a bundle claiming to be
    synthetic (see :func:`generator_record`)."""
    wrong = []
    if meta.get("generator") != schema.SYNTHETIC_GENERATOR:
        wrong.append(f"generator {schema.SYNTHETIC_GENERATOR!r}")
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        wrong.append("the generator config (a JSON object) under config")
    elif meta.get("generator_config_sha256") != _record_hash(cfg):
        wrong.append("generator_config_sha256 matching config")
    if not isinstance(truth, dict):
        wrong.append("truth.json with the ground truth (a JSON object)")
    elif meta.get("truth_sha256") != _record_hash(truth):
        wrong.append("truth_sha256 matching truth.json")
    return wrong


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` safe to open in a spreadsheet: text cells that start with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return (which Excel and others run as formulas) get a
    leading apostrophe. Numbers, dates and categories are untouched.

    Every writer of CSV or spreadsheet output in the toolkit passes its table through this.

    Examples
    --------
    >>> df = pd.DataFrame({"name": ["=1+2", "Facility 1", None], "n": [-1, 2, 3]})
    >>> neutralise_formulas(df)["name"].tolist()
    ["'=1+2", 'Facility 1', None]
    >>> neutralise_formulas(df)["n"].tolist()
    [-1, 2, 3]
    """
    out = df.copy()
    prefixes = tuple(schema.FORMULA_PREFIXES)
    for c in out.columns:
        s = out[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            if cats.dtype == object and any(isinstance(v, str) and v.startswith(prefixes)
                                            for v in cats):
                s = s.astype(object)
            else:
                continue
        if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
            continue
        hit = np.fromiter((isinstance(v, str) and v.startswith(prefixes)
                           for v in s.to_numpy(dtype=object)), dtype=bool, count=len(s))
        if hit.any():
            s = s.astype(object).copy()
            s[hit] = "'" + s[hit].astype(str)
            out[c] = s
    return out


__all__ = ["CaseData", "DataValidationError", "load", "validate", "content_hash",
           "generator_record", "infer_study_end", "neutralise_formulas", "MAX_ROWS_LISTED"]
