"""Benchmark: load + validate a bundle from a Parquet folder, a DuckDB file and PostgreSQL.

Targets (issue 21): DuckDB ≤ 1.5× the Parquet folder; local PostgreSQL ≤ 3× the Parquet folder.

Run: .venv/bin/python benchmarks/bench_sources.py [--children 1000000] [--repeat 3]

The bundle is generated at the scale that gives about ``--children`` children; PostgreSQL runs
only where its server binaries are installed (a throw-away server on a free local port, loaded
with COPY, stopped at the end). Each source is timed ``--repeat`` times, interleaved, and the
median is reported.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import dmst_eval  # noqa: E402
from dmst_eval import sources  # noqa: E402
from dmst_eval.schema import TABLE_NAMES  # noqa: E402
from dmst_eval.synthetic import generate  # noqa: E402


def _timed(f, *a, **k) -> float:
    t0 = time.perf_counter()
    f(*a, **k)
    return time.perf_counter() - t0


def _copy_into_postgres(cd, url: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.begin() as conn:
        for t in TABLE_NAMES:
            df = cd.tables[t]
            df.head(0).astype(str).to_sql(t, conn, index=False)  # columns, all text
            buf = io.StringIO()
            df.to_csv(buf, index=False, header=False, date_format="%Y-%m-%dT%H:%M:%S")
            buf.seek(0)
            raw = conn.connection.driver_connection
            with raw.cursor().copy(f'COPY "{t}" FROM STDIN WITH (FORMAT csv)') as cp:
                cp.write(buf.getvalue())
        files = sources.FILES_TABLE
        import json

        from dmst_eval.casedata import _json_default
        conn.execute(sa.text(f"CREATE TABLE {files} (name TEXT, content TEXT)"))
        conn.execute(sa.text(f"INSERT INTO {files} VALUES ('meta.json', :m)"),
                     {"m": json.dumps(cd.meta, default=_json_default)})
        if cd.truth is not None:  # a synthetic bundle's generator record needs its truth
            conn.execute(sa.text(f"INSERT INTO {files} VALUES ('truth.json', :t)"),
                         {"t": json.dumps(cd.truth, default=_json_default)})
    eng.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pilot = len(generate(scale=0.25).children) / 0.25  # children at scale 1 (generator-dependent)
    scale = max(0.05, args.children / pilot)
    cd = generate(scale=scale)
    print(f"bundle: scale {scale:.1f}, {len(cd.children):,} children, "
          f"{sum(len(v) for v in cd.tables.values()):,} rows")
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "bundle"
        cd.save(folder)
        db = sources.import_bundle(folder, Path(d) / "cases.duckdb")
        runs = {"parquet": lambda: dmst_eval.load(folder),
                "duckdb": lambda: dmst_eval.load(f"duckdb:///{db}")}
        stack = contextlib.ExitStack()
        from tests.pgserver import pg_bin, temporary_postgres
        if pg_bin():
            url = stack.enter_context(temporary_postgres(pg_bin()))
            _copy_into_postgres(cd, url)
            runs["postgresql"] = lambda: dmst_eval.load(url)
        times: dict[str, list[float]] = {k: [] for k in runs}
        try:
            for _ in range(args.repeat):
                for k, f in runs.items():
                    times[k].append(_timed(f))
        finally:
            stack.close()
    base = statistics.median(times["parquet"])
    print(f"{'source':<12}{'median s':>10}{'× parquet':>11}")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:<12}{m:>10.2f}{m / base:>11.2f}")


if __name__ == "__main__":
    main()
