"""A per-user cache of batch disclosure plans, so a brief rendered on its own need not redo them.

A brief rendered alone must be suppressed as the whole standard batch would be, so it needs the
batch's disclosure plan (:func:`dmst_eval.briefs.disclosure_plan.batch_plan`, about 1.5 s on the
default data). The plan depends only on the data, the brief windows and thresholds and the code
that counts, so it is kept here and reused by the next brief on the same data.

What is kept, and where
-----------------------
* One JSON file per plan (:meth:`SuppressionPlan.to_json`): which cells are hidden and why —
  never a count, a child id or a date. Never a pickle.
* In ``platformdirs.user_cache_dir("dmst-eval")/plans`` (``~/.cache/dmst-eval/plans`` on
  Linux; ``XDG_CACHE_HOME`` moves it). The folder is created 0700, files are written 0600 and
  atomically (write then rename); a folder or file another user could read or write is
  ignored, never trusted.
* Keyed by the plan's fingerprint — the data's content hash, the windows, the thresholds, the
  package version — plus the schema version, the plan-file version and :func:`code_hash`
  (the package's source and data files, the reference files named in the environment, the
  library versions), so an edited counting rule or other towns never meet an old plan.
* At most :data:`MAX_PLANS` files; the least recently used go first. Deleting the folder is
  always safe. ``DMST_EVAL_NO_CACHE=1`` turns the cache off.
"""
from __future__ import annotations

import functools
import hashlib
import os
import stat
from pathlib import Path

#: Plans kept; older ones (by last use) are removed when a new one is written.
MAX_PLANS = 16
_ENV_OFF = "DMST_EVAL_NO_CACHE"


def folder() -> Path:
    """The cache folder (not created)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("dmst-eval")) / "plans"


def enabled() -> bool:
    return os.environ.get(_ENV_OFF, "").strip().lower() in ("", "0", "false", "no")


#: Settings that change what the counts are (the towns' reference data, the area offices).
_ENV_INPUTS = ("DMST_EVAL_REFERENCE", "DMST_EVAL_AREA_OFFICES")
#: Libraries whose versions could change a plan (the interval audit's LP, the counting).
_LIBRARIES = ("numpy", "pandas", "scipy", "highspy", "statsmodels")


def _hash_files(h, root: Path, files) -> None:
    for f in sorted(files):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())


@functools.lru_cache(maxsize=1)
def _package_hash() -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    _hash_files(h, root, (f for f in root.rglob("*") if f.is_file()
                          and "__pycache__" not in f.parts))
    return h.hexdigest()


def code_hash() -> str:
    """SHA-256 of everything a plan depends on besides the data and the brief parameters: the
    package's source and data files (counting rules, reference towns, measures), the files
    named by ``DMST_EVAL_REFERENCE`` / ``DMST_EVAL_AREA_OFFICES`` when set, and the versions
    of Python and of the libraries that count and plan."""
    from importlib import metadata
    import sys

    h = hashlib.sha256(_package_hash().encode())
    for var in _ENV_INPUTS:
        v = os.environ.get(var)
        h.update(f"|{var}=".encode())
        if v:
            p = Path(v)
            try:
                if p.is_dir():
                    _hash_files(h, p, (f for f in p.rglob("*") if f.is_file()))
                else:
                    h.update(p.read_bytes())
            except OSError:
                h.update(b"unreadable")
    h.update(sys.version.encode())
    for lib in _LIBRARIES:
        try:
            h.update(f"|{lib}={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"|{lib}=-".encode())
    return h.hexdigest()


def key(fingerprint: str) -> str:
    """The file stem of a plan: its fingerprint with the schema, plan-file and code versions."""
    from dmst_eval import schema
    from dmst_eval.disclosure.suppression import PLAN_VERSION

    doc = f"{fingerprint}|{schema.SCHEMA_VERSION}|{PLAN_VERSION}|{code_hash()}"
    return hashlib.sha256(doc.encode()).hexdigest()[:40]


def _private(path: Path, kind: int) -> bool:
    """``path`` exists, is of ``kind`` (S_IFDIR/S_IFREG), is this user's and no one else's."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return (stat.S_IFMT(st.st_mode) == kind and st.st_uid == os.getuid()
            and stat.S_IMODE(st.st_mode) & 0o077 == 0)


def _ready_folder(create: bool) -> Path | None:
    d = folder()
    if create and not d.exists():
        try:
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            d.chmod(0o700)  # mkdir's mode is reduced by the umask, never widened
        except OSError:
            return None
    return d if _private(d, stat.S_IFDIR) else None


def _plan_file(fingerprint: str, create: bool) -> Path | None:
    """Where this fingerprint's plan lives, or ``None`` when the cache is off or its folder is
    not private (``create``: make the folder first)."""
    if not enabled():
        return None
    d = _ready_folder(create=create)
    return None if d is None else d / f"{key(fingerprint)}.json"


def load(fingerprint: str):
    """The cached plan for this fingerprint, or ``None`` (missing, unreadable, not private)."""
    from dmst_eval.disclosure import SuppressionPlan
    from dmst_eval.errors import DisclosureError

    f = _plan_file(fingerprint, create=False)
    if f is None or not _private(f, stat.S_IFREG):
        return None
    try:
        p = SuppressionPlan.from_json(f, fingerprint=fingerprint)
    except (DisclosureError, OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    try:
        os.utime(f)  # last use, for the size bound
    except OSError:
        pass
    p.fingerprint = fingerprint
    return p


def save(plan, fingerprint: str) -> Path | None:
    """Keep ``plan`` (atomically, 0600) and drop the least recently used beyond
    :data:`MAX_PLANS`. Returns the file, or ``None`` when the cache is off or unusable."""
    f = _plan_file(fingerprint, create=True)
    if f is None:
        return None
    tmp = f.parent / f".{f.name}.{os.getpid()}.tmp"
    try:
        plan.to_json(tmp, fingerprint=fingerprint)
        os.replace(tmp, f)
    except OSError:
        tmp.unlink(missing_ok=True)
        return None
    _prune(f.parent)
    return f


def _prune(d: Path) -> None:
    files = []
    for f in d.glob("*.json"):
        try:
            files.append((f.stat().st_mtime, f))
        except OSError:
            pass
    for _, f in sorted(files, reverse=True)[MAX_PLANS:]:
        f.unlink(missing_ok=True)


def clear() -> int:
    """Remove every cached plan; returns how many were removed."""
    d = folder()
    n = 0
    for f in d.glob("*.json") if d.is_dir() else ():
        f.unlink(missing_ok=True)
        n += 1
    return n
