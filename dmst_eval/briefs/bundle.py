"""Loading the case data for a brief, and the batch's private validated copy.

A single brief validates its bundle in its own kernel (:func:`dmst_eval.load`). A batch
(:func:`~dmst_eval.briefs.render_batch`) validates once in its parent process and writes the
validated tables to a **private copy**: a ``mkdtemp`` folder (mode 0700, files 0600) inside the
output folder, Parquet files and JSON only, removed when the batch ends (also on error or
Ctrl-C; a later run removes one left by a killed batch). Each brief's kernel reads that copy
without validating again. Nothing here is ever pickled or unpickled.

A brief from a **database URL** or through a **mapping** (``dmst-eval brief --data URL --mapping
FILE``) works the same way for a single brief: the data are read and validated in the calling
process (:func:`validated_copy`) and the brief's kernel reads the private copy. The kernel never
sees the URL (nor its password): the copy's folder is named after the kind of source, and its
``origin.json`` records only what provenance shows — the kind of source, the database's or
file's name, the mapping file's name and hash (:func:`dmst_eval.sources.describe_source`).

A folder is read as a private copy only if it carries the marker file, belongs to the current
user and is not readable by anyone else; the marker records the package and schema versions,
which must match the running ones. Anything else is loaded (and validated) as a bundle.
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

import pandas as pd

__all__ = ["load_bundle", "write_private_copy", "validated_copy", "load_for_briefs",
           "needs_copy", "MARKER", "ORIGIN"]

#: Name of the marker file of a private validated copy.
MARKER = "dmst-validated-copy.json"
#: Name of the file (in a private copy) recording where the data were read from (no secrets).
ORIGIN = "origin.json"


def _stamp() -> dict:
    import dmst_eval
    from dmst_eval import schema

    return {"package": dmst_eval.__version__,
            "schema": str(getattr(schema, "SCHEMA_VERSION", ""))}


def write_private_copy(cd, folder: str | os.PathLike, origin: dict | None = None) -> Path:
    """Write the validated bundle ``cd`` into the private folder ``folder`` (which must exist,
    belong to this user and be mode 0700); files are created 0600. ``origin`` (what
    provenance may show about the source: no URL, no secret) is written to ``origin.json``.

    The tables are written with pandas' own Parquet metadata, so they come back with exactly
    the dtypes validation gave them; :func:`load_bundle` reads them without validating again.
    """
    folder = Path(folder)
    _check_private(folder, must=True)
    old = os.umask(0o077)
    try:
        for name, df in cd.tables.items():
            df.to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "meta.json").write_text(json.dumps(cd.meta, default=str), encoding="utf-8")
        if cd.truth is not None:
            (folder / "truth.json").write_text(json.dumps(cd.truth, default=str),
                                               encoding="utf-8")
        if origin is not None:
            (folder / ORIGIN).write_text(json.dumps({k: str(v) for k, v in origin.items()}),
                                         encoding="utf-8")
        (folder / MARKER).write_text(json.dumps(_stamp()), encoding="utf-8")
    finally:
        os.umask(old)
    return folder


def _check_private(folder: Path, must: bool = False) -> bool:
    """True if ``folder`` is a directory of this user that no one else can read or enter."""
    try:
        st = folder.stat()
    except OSError:
        ok = False
    else:
        ok = (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
              and stat.S_IMODE(st.st_mode) & 0o077 == 0)
    if must and not ok:
        from dmst_eval.errors import BriefError

        raise BriefError("the private copy of the data must be a folder of this user with mode "
                         "0700")
    return ok


def _is_private_copy(folder: Path) -> bool:
    marker = folder / MARKER
    if not marker.is_file() or not _check_private(folder):
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")) == _stamp()
    except (OSError, ValueError):
        return False


def load_bundle(path: str | os.PathLike):
    """The validated bundle at ``path``: :func:`dmst_eval.load` (which validates), or the
    tables of a private validated copy written by :func:`write_private_copy`.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from dmst_eval.casedata import CaseData
    >>> d = Path(tempfile.mkdtemp())
    >>> cd = CaseData.from_frames(meta={"source": "synthetic", "study_start": "2008-01-01",
    ...                                 "study_end": "2012-12-31"})
    >>> back = load_bundle(write_private_copy(cd, d))
    >>> back.data_hash == cd.data_hash and back.is_synthetic
    True
    >>> back.meta["content_hashes"] == cd.meta["content_hashes"]
    True
    >>> import shutil; shutil.rmtree(d)
    """
    from dmst_eval.casedata import TABLE_NAMES, CaseData, load

    path = Path(path)
    if not _is_private_copy(path):
        return load(path)
    tables = {f.stem: pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))}
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    truth_file = path / "truth.json"
    truth = json.loads(truth_file.read_text(encoding="utf-8")) if truth_file.exists() else None
    # the parent hashed these very tables when it validated them (the copy is private and
    # stamped): its content hashes stand, rather than hashing every table again in each kernel
    hashes = meta.get("content_hashes")
    known = ({t: str(hashes[t]) for t in TABLE_NAMES}
             if isinstance(hashes, dict) and all(t in hashes for t in TABLE_NAMES) else None)
    cd = CaseData(tables, meta=meta, truth=truth, _hashes=known)
    origin_file = path / ORIGIN
    if origin_file.exists():
        cd.origin = {str(k): str(v) for k, v in
                     json.loads(origin_file.read_text(encoding="utf-8")).items()}
    else:
        cd.origin = {"kind": "folder", "source": path.name}
    return cd


# -- briefs from a database URL or through a mapping ------------------------------------------
def needs_copy(location, mapping=None) -> bool:
    """True when a brief's data must be read in the calling process (a database URL, or any
    source read through a mapping) rather than by the brief's kernel (a bundle folder)."""
    from dmst_eval.sources import is_url

    return mapping is not None or is_url(str(location))


def _origin(location, mapping) -> dict:
    import hashlib

    from dmst_eval.sources import describe_source

    d = describe_source(location)
    origin = {"kind": d["kind"], "source": d["label"], "name": d["name"]}
    if isinstance(mapping, (str, os.PathLike)):
        m = Path(mapping)
        origin["mapping"] = m.name
        try:
            origin["mapping_sha256"] = hashlib.sha256(m.read_bytes()).hexdigest()
        except OSError:
            pass
    elif mapping is not None:
        origin["mapping"] = "given in code"
    return origin


def load_for_briefs(location, mapping=None):
    """Load and validate the data for briefs: ``(CaseData, "")``, or ``(None, message)`` with a
    message that shows no value from the data and no secret of the URL."""
    from dmst_eval.briefs.runner import scrub
    from dmst_eval.casedata import load
    from dmst_eval.errors import DataValidationError
    from dmst_eval.sources import is_url, mask_url

    shown = mask_url(str(location)) if is_url(str(location)) else Path(str(location)).name
    if not is_url(str(location)) and not Path(str(location)).exists():
        return None, f"data_path {shown} does not exist"
    try:
        cd = load(location, mapping=mapping) if mapping is not None else load(location)
    except DataValidationError as e:
        how = "dmst-eval validate" + (" --mapping FILE" if mapping is not None else "")
        return None, (f"the data failed validation ({len(e.problems)} problem(s)); run "
                      f"`{how} {shown}` to see them")
    except Exception as e:  # noqa: BLE001 — one line, no data, no password
        return None, f"could not load the data: {type(e).__name__}: {scrub(mask_url(str(e)))}"
    cd.origin = _origin(location, mapping)
    return cd, ""


def make_private_copy(cd, out_dir: Path, name: str) -> tuple[Path, Path]:
    """Write ``cd`` to a new private copy ``<out_dir>/.brief_data_p<pid>_*/<name>``; return
    (the folder to remove afterwards, the copy)."""
    import shutil
    import tempfile

    from dmst_eval.briefs.runner import WORK_PREFIX, work_prefix

    holder = Path(tempfile.mkdtemp(prefix=work_prefix(f"{WORK_PREFIX}data"), dir=out_dir))
    copy = holder / name
    try:
        copy.mkdir(mode=0o700)
        os.chmod(copy, 0o700)
        write_private_copy(cd, copy, origin=getattr(cd, "origin", None))
    except BaseException:
        shutil.rmtree(holder, ignore_errors=True)
        raise
    return holder, copy


@contextlib.contextmanager
def validated_copy(location, out_dir: str | os.PathLike, mapping=None):
    """Read and validate ``location`` (a folder or database URL, optionally through
    ``mapping``) here, write a private copy inside ``out_dir`` and yield its path; the copy is
    removed when the block ends, however it ends. Raises :class:`BriefError` (no value from
    the data, no password) if the data cannot be loaded or are invalid."""
    import shutil

    from dmst_eval.briefs.runner import cleanup_on_signals, prepare_out_dir
    from dmst_eval.errors import BriefError
    from dmst_eval.sources import describe_source

    out_dir = prepare_out_dir(out_dir)
    holder = None
    try:
        with cleanup_on_signals():
            cd, err = load_for_briefs(location, mapping)
            if err:
                raise BriefError(err)
            kind = describe_source(location)["kind"]
            # the folder's own name for a folder (as the batch does), else the kind of source
            name = Path(str(location)).resolve().name if kind == "folder" else kind
            holder, copy = make_private_copy(cd, out_dir, name)
            del cd
            yield copy
    finally:
        if holder is not None:
            shutil.rmtree(holder, ignore_errors=True)
