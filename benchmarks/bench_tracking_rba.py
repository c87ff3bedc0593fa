"""Benchmark: the agency's tracking questions and the RBA scorecard on the default data.

Times ``tracking.summary(cd)`` (whole study window, statewide) plus ``rba.scorecard(cd)``
(defaults) on ``data/synthetic`` — loading the bundle is not timed. Target: both together
<= 5 s. Also times one region and ``scale`` x the default population if given.
Run: ``python benchmarks/bench_tracking_rba.py [data_path] [--scale N]``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import dmst_eval
from dmst_eval import rba, tracking

TARGET_S = 5.0


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(cd, label: str) -> float:
    rows = {k: len(v) for k, v in cd.tables.items()}
    print(f"[{label}] children {rows['children']:,}  reports {rows['reports']:,}  episodes "
          f"{rows['episodes']:,}  attendees {rows['training_attendance']:,}")
    # first call includes one-off imports and the town table (cached afterwards)
    t0 = time.perf_counter()
    tracking.summary(cd)
    rba.scorecard(cd)
    cold = time.perf_counter() - t0
    t_track = _time(lambda: tracking.summary(cd))
    t_rba = _time(lambda: rba.scorecard(cd))
    t_reg = _time(lambda: (tracking.summary(cd, region="Region 4"),
                           rba.scorecard(cd, region="Region 4")), repeat=1)
    total = t_track + t_rba
    print(f"  first call (cold, incl. imports) {cold:.2f} s")
    print(f"  tracking.summary {t_track:.2f} s   rba.scorecard {t_rba:.2f} s   "
          f"total {total:.2f} s (best of 3)   one region both {t_reg:.2f} s")
    return max(total, cold)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv and not argv[0].startswith("--") else \
        Path(__file__).resolve().parent.parent / "data" / "synthetic"
    cd = dmst_eval.load(path)
    worst = run(cd, f"default data {path}")
    if "--scale" in argv:
        from dmst_eval.synthetic import generate

        scale = float(argv[argv.index("--scale") + 1])
        run(generate(scale=scale, seed=1), f"generated scale={scale:g}")
    ok = worst <= TARGET_S
    print(f"{'PASS' if ok else 'FAIL'}: default data {worst:.2f} s (target <= {TARGET_S:.0f} s, "
          "cold first call counted)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
