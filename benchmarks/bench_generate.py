"""Benchmark of the synthetic generator: wall time and peak memory at 10k, 100k and 1M children.

Each size runs in a fresh subprocess; peak memory is that process's maximum resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which includes the Python interpreter and
imported libraries. "Children" are rows of the children table; ``scale`` is chosen from a
scale-0.25 pilot so that the table has about the requested number of rows.

Run: ``.venv/bin/python benchmarks/bench_generate.py [--sizes 10000 100000 1000000]``
(or ``--calibrate``, or ``--scales 1 10 [--repeat 3]``, below)
Targets (issue 3): 1M children in <= 60 s and <= 6 GB peak on the 2-core reference machine,
cost linear in children.

``--calibrate`` instead times ``synthetic.calibrate`` at scale 1: 4 parameters
(``log_odds.intercept``, ``non_cw_identification_growth``, ``unconfirmed_reports``,
``unconfirmed_in_care_weight``) fitted to the first 8 targets of data/synthetic/targets.yaml, 4
runs per evaluation, at most 8 Gauss-Newton iterations, started 10-20% away from the defaults.
Target (issue 20): <= 10 minutes on 2 cores.

``--scales 1 10`` instead times ``generate()`` in this process (after a warm-up run, so without
imports): the median of ``--repeat`` runs (default 3, seeds 101, 102, ...) at each scale, wall
and CPU seconds, and ``content_hash`` of the nine tables of the last bundle (also a median of
``--repeat``). It prints a markdown table and, last, one JSON line. To compare two versions of
the package, run it alternately with ``PYTHONPATH`` pointing at a copy of the other version's
``dmst_eval`` (the machine is shared and noisy: interleave runs and compare medians; the CPU
seconds are less sensitive to other load than the wall seconds).
"""
from __future__ import annotations

import argparse
import json
import statistics
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


CALIBRATE = r"""
import json, resource, time
from dmst_eval.synthetic import SyntheticConfig
from dmst_eval.synthetic.calibrate import calibrate, load_targets
d = SyntheticConfig()
start = d.replace(log_odds={**d.log_odds, "intercept": d.log_odds["intercept"] - 0.2},
                  non_cw_identification_growth=d.non_cw_identification_growth * 0.85,
                  unconfirmed_reports=d.unconfirmed_reports * 1.2,
                  unconfirmed_in_care_weight=d.unconfirmed_in_care_weight * 0.8)
t = load_targets("data/synthetic/targets.yaml")[:8]
t0 = time.perf_counter()
r = calibrate(start, t, ["log_odds.intercept", "non_cw_identification_growth",
                         "unconfirmed_reports", "unconfirmed_in_care_weight"], n_sims=4, max_iter=8)
print(r.report())
print(json.dumps({"seconds": time.perf_counter() - t0, "evaluations": r.evaluations,
                  "converged": r.converged, "targets_met": int(r.fit["met"].sum()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _timed(f):
    """(result, wall seconds, CPU seconds of this process)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0, time.process_time() - c0


def speed(scales: list[float], repeat: int) -> list[dict]:
    """Median wall/CPU seconds of ``generate()`` and of ``content_hash`` over its tables."""
    from dmst_eval.casedata import content_hash
    from dmst_eval.schema import TABLE_NAMES
    from dmst_eval.synthetic import generate

    generate(scale=0.1, seed=1)  # warm-up: imports, reference data
    rows = []
    for scale in scales:
        gen = [_timed(lambda: generate(scale=scale, seed=101 + i)) for i in range(repeat)]
        cd = gen[-1][0]
        hashes = [_timed(lambda: [content_hash(cd.tables[t], t) for t in TABLE_NAMES])
                  for _ in range(repeat)]
        rows.append({"scale": scale, "children": len(cd.children),
                     "rows": sum(len(v) for v in cd.tables.values()), "repeat": repeat,
                     "generate_s": statistics.median(g[1] for g in gen),
                     "generate_cpu_s": statistics.median(g[2] for g in gen),
                     "content_hash_s": statistics.median(h[1] for h in hashes),
                     "content_hash_cpu_s": statistics.median(h[2] for h in hashes)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--calibrate", action="store_true", help="time synthetic.calibrate instead")
    ap.add_argument("--scales", type=float, nargs="+",
                    help="time generate() in this process at these scales instead (e.g. 1 10)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per scale for --scales")
    a = ap.parse_args()
    if a.scales:
        import dmst_eval

        rows = speed(a.scales, a.repeat)
        print(f"dmst_eval from {dmst_eval.__file__}; median of {a.repeat} runs\n")
        print("| scale | children | all rows | generate() s | CPU s | content_hash (9 tables) s |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['scale']:g} | {r['children']:,} | {r['rows']:,} | {r['generate_s']:.2f} "
                  f"| {r['generate_cpu_s']:.2f} | {r['content_hash_s']:.3f} |")
        print(json.dumps(rows))
        return
    if a.calibrate:
        out = subprocess.run([sys.executable, "-c", CALIBRATE], capture_output=True, text=True,
                             check=True)
        print(out.stdout)
        return
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
