"""Benchmark: load + validate the default bundle and a 1M-children agency extract.

The extract is the synthetic generator's data at ``scale=26`` (about one million children, 5.5
million rows) saved as an *extract* (``source: extract``, no ground truth), so that it is valid
for any version of the validator. It is built once into a private cache folder (0700, under
``~/.cache/dmst-eval/``, or ``$DMST_EVAL_BENCH_DIR``) and reused.

Run: .venv/bin/python benchmarks/bench_validate.py [--repeat N] [--skip-default]

Comparing two versions of the package: run the script alternately with ``PYTHONPATH`` pointing at
a copy of the other version's ``dmst_eval`` (the machine is shared and noisy: interleave runs and
compare medians).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import dmst_eval

REPO = Path(__file__).resolve().parent.parent
SCALE_1M = 26  # 38,449 children at scale 1


def timed(f, *a, **k):
    t0 = time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t0


def timed_cpu(f, *a, **k):
    """(result, wall seconds, CPU seconds of this process, all threads)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_dir() -> Path:
    d = Path(os.environ.get("DMST_EVAL_BENCH_DIR", Path.home() / ".cache" / "dmst-eval"))
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def extract_1m() -> Path:
    """The 1M-children extract (built on first use)."""
    path = bench_dir() / f"extract_scale{SCALE_1M}"
    if not (path / "children.parquet").exists():
        from dmst_eval.casedata import CaseData
        from dmst_eval.synthetic import generate

        print(f"building the scale-{SCALE_1M} extract in {path} (once) ...", flush=True)
        cd = generate(scale=SCALE_1M)
        meta = {"source": "extract", "study_start": cd.meta["study_start"],
                "study_end": cd.meta["study_end"]}
        CaseData(cd.tables, meta=meta).save(path)
        os.chmod(path, 0o700)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-default", action="store_true")
    args = ap.parse_args()
    print(f"dmst_eval from {Path(dmst_eval.__file__).parent}")
    if not args.skip_default:
        cd, t = timed(dmst_eval.load, REPO / "data" / "synthetic")
        n = sum(len(v) for v in cd.tables.values())
        print(f"default bundle ({n:,} rows): load+validate {t:.2f} s")
    path = extract_1m()
    times, cpus, n_children = [], [], 0
    for _ in range(args.repeat):
        cd, t, c = timed_cpu(dmst_eval.load, path)
        times.append(t)
        cpus.append(c)
        n_children = len(cd.children)
        del cd
    print(f"1M-children extract ({n_children:,} children): load+validate wall "
          + ", ".join(f"{t:.2f}" for t in times) + f" s (median {statistics.median(times):.2f}); "
          + "CPU " + ", ".join(f"{c:.2f}" for c in cpus)
          + f" s (median {statistics.median(cpus):.2f})")


if __name__ == "__main__":
    main()
