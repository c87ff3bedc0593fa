"""A throw-away PostgreSQL server for tests and benchmarks (Debian's server binaries)."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> str | None:
    """Folder of ``initdb``/``pg_ctl``, or None when PostgreSQL's server is not installed."""
    found = shutil.which("initdb")
    if found:
        return str(Path(found).resolve().parent)
    hits = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return str(Path(hits[-1]).parent) if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_postgres(bindir: str):
    """Start a server on a free loopback port in a private temporary folder; yield its URL.

    The server is stopped and its folder removed on exit, also when the body raises. As root
    (CI), the server runs as the ``postgres`` user (it refuses to run as root).
    """
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="dmst-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()

    def run(*args):
        return subprocess.run([*as_user, *args], check=True, capture_output=True, text=True,
                              timeout=120)

    try:
        run(f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(f"{bindir}/pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w", "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate",
                            "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
