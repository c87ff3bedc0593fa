"""Benchmark: load + validate the default bundle (cold and warm), a tiny bundle, and a
1M-children agency extract.

- default bundle, cold: the first ``load`` of a fresh interpreter, after ``import
  dmst_eval.casedata`` (so with pandera's import and first use, and whatever pandera imports:
  geopandas, which its dtype lookup probes for), and as in the fresh kernel of a brief, after the
  brief's own imports (``dmst_eval.briefs.context.STACK``, geopandas among them);
- default bundle, warm: the same load again in one process;
- tiny bundle: the three-row CSV bundle of the tests (``tests/test_casedata.valid_frames``),
  loaded many times: the fixed cost per load that the tests pay hundreds of times.

The extract is the synthetic generator's data at ``scale=26`` (about one million children, 5.5
million rows) saved as an *extract* (``source: extract``, no ground truth), so that it is valid
for any version of the validator. It is built once into a private cache folder (0700, under
``~/.cache/dmst-eval/``, or ``$DMST_EVAL_BENCH_DIR``) and reused.

Run: .venv/bin/python benchmarks/bench_validate.py [--repeat N] [--skip-default] [--skip-1m]

Comparing two versions of the package: run the script alternately with ``PYTHONPATH`` pointing at
a copy of the other version's ``dmst_eval`` (the machine is shared and noisy: interleave runs and
compare medians).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


_COLD = """
import importlib, time
from dmst_eval import casedata
if {brief}:
    from dmst_eval.briefs.context import STACK
    for m in STACK:
        importlib.import_module(m)
t0 = time.perf_counter()
casedata.load({path!r})
print(time.perf_counter() - t0)
"""


def cold_load(path: Path, brief: bool = False) -> float:
    """Seconds of the first ``load`` in a fresh interpreter (``brief``: after the brief's
    imports)."""
    out = subprocess.run([sys.executable, "-c", _COLD.format(path=str(path), brief=brief)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def tiny_bundle(folder: Path) -> Path:
    """The tests' three-row bundle, written as CSV files into ``folder``."""
    sys.path.insert(0, str(REPO))
    from tests.test_casedata import valid_frames, write_csv_bundle

    return write_csv_bundle(valid_frames(), folder / "tiny")


def _fmt(ts: list[float], unit: float = 1.0, digits: int = 2) -> str:
    return (", ".join(f"{t * unit:.{digits}f}" for t in ts)
            + f" (median {statistics.median(ts) * unit:.{digits}f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-default", action="store_true")
    ap.add_argument("--skip-1m", action="store_true")
    args = ap.parse_args()
    print(f"dmst_eval from {Path(dmst_eval.__file__).parent}")
    if not args.skip_default:
        default = REPO / "data" / "synthetic"
        cold = [cold_load(default) for _ in range(args.repeat)]
        print(f"default bundle: load+validate cold (fresh interpreter) {_fmt(cold)} s")
        cold = [cold_load(default, brief=True) for _ in range(args.repeat)]
        print(f"default bundle: load+validate cold, after a brief's imports {_fmt(cold)} s")
        cd, _ = timed(dmst_eval.load, default)
        warm = [timed(dmst_eval.load, default)[1] for _ in range(max(args.repeat, 3))]
        n = sum(len(v) for v in cd.tables.values())
        print(f"default bundle ({n:,} rows): load+validate warm {_fmt(warm)} s")
        work = Path(tempfile.mkdtemp(dir=bench_dir()))  # private (0700), removed below
        try:
            tiny = tiny_bundle(work)
            dmst_eval.load(tiny)
            ts = [timed(dmst_eval.load, tiny)[1] for _ in range(20 * max(args.repeat, 3))]
            print(f"tiny bundle (3-row CSV tables): load+validate median "
                  f"{statistics.median(ts) * 1000:.1f} ms, min {min(ts) * 1000:.1f} ms "
                  f"over {len(ts)} loads")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.skip_1m:
        return
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
