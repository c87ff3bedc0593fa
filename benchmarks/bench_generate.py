"""Benchmark of the synthetic generator: wall time and peak memory at 10k, 100k and 1M children.

Each size runs in a fresh subprocess; peak memory is that process's maximum resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which includes the Python interpreter and
imported libraries. "Children" are rows of the children table; ``scale`` is chosen from a
scale-0.25 pilot so that the table has about the requested number of rows.

Run: ``.venv/bin/python benchmarks/bench_generate.py [--sizes 10000 100000 1000000]``
Targets (issue 3): 1M children in <= 60 s and <= 6 GB peak on the 2-core reference machine,
cost linear in children.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from dmst_eval.synthetic import generate
t1 = time.perf_counter()
cd = generate(scale=float(sys.argv[1]), seed=1)
t2 = time.perf_counter()
print(json.dumps({"children": len(cd.children), "seconds": t2 - t1, "import_s": t1 - t0,
                  "rows": sum(len(v) for v in cd.tables.values()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(scale: float) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(scale)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    a = ap.parse_args()
    pilot = run(0.25)
    per_scale = pilot["children"] / 0.25
    print(f"{'children':>10} {'scale':>7} {'seconds':>8} {'peak MB':>8} {'us/child':>9} "
          f"{'all rows':>10}")
    for n in a.sizes:
        s = n / per_scale
        r = run(s)
        print(f"{r['children']:>10,} {s:>7.2f} {r['seconds']:>8.1f} {r['peak_mb']:>8.0f} "
              f"{1e6 * r['seconds'] / r['children']:>9.1f} {r['rows']:>10,}", flush=True)


if __name__ == "__main__":
    main()
