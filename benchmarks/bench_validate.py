"""Benchmark: save, load and validate the default bundle and a scale-5 bundle.

Run: .venv/bin/python benchmarks/bench_validate.py
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import dmst_eval
from dmst_eval.synthetic import generate

REPO = Path(__file__).resolve().parent.parent


def timed(f, *a, **k):
    t0 = time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t0


def main() -> None:
    cd, t_load = timed(dmst_eval.load, REPO / "data" / "synthetic")
    n = sum(len(v) for v in cd.tables.values())
    print(f"default bundle ({n:,} rows): load+validate {t_load:.2f} s")
    big = generate(scale=5)
    n = sum(len(v) for v in big.tables.values())
    with tempfile.TemporaryDirectory() as d:
        _, t_save = timed(big.save, Path(d) / "b")
        _, t_load = timed(dmst_eval.load, Path(d) / "b")
    print(f"scale 5 ({n:,} rows): save {t_save:.2f} s, load+validate {t_load:.2f} s")


if __name__ == "__main__":
    main()
