"""Loading the case data for a brief, and the batch's private validated copy.

A single brief validates its bundle in its own kernel (:func:`dmst_eval.load`). A batch
(:func:`~dmst_eval.briefs.render_batch`) validates once in its parent process and writes the
validated tables to a **private copy**: a ``mkdtemp`` folder (mode 0700, files 0600) inside the
output folder, Parquet files and JSON only, removed when the batch ends (also on error or
Ctrl-C; a later run removes one left by a killed batch). Each brief's kernel reads that copy
without validating again. Nothing here is ever pickled or unpickled.

A folder is read as a private copy only if it carries the marker file, belongs to the current
user and is not readable by anyone else; the marker records the package and schema versions,
which must match the running ones. Anything else is loaded (and validated) as a bundle.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd

__all__ = ["load_bundle", "write_private_copy", "MARKER"]

#: Name of the marker file of a private validated copy.
MARKER = "dmst-validated-copy.json"


def _stamp() -> dict:
    import dmst_eval
    from dmst_eval import schema

    return {"package": dmst_eval.__version__,
            "schema": str(getattr(schema, "SCHEMA_VERSION", ""))}


def write_private_copy(cd, folder: str | os.PathLike) -> Path:
    """Write the validated bundle ``cd`` into the private folder ``folder`` (which must exist,
    belong to this user and be mode 0700); files are created 0600.

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
    >>> import shutil; shutil.rmtree(d)
    """
    from dmst_eval.casedata import CaseData, load

    path = Path(path)
    if not _is_private_copy(path):
        return load(path)
    tables = {f.stem: pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))}
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    truth_file = path / "truth.json"
    truth = json.loads(truth_file.read_text(encoding="utf-8")) if truth_file.exists() else None
    return CaseData(tables, meta=meta, truth=truth)
