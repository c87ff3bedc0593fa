"""Benchmark the evaluation briefs.

Run: ``python benchmarks/bench_briefs.py [--no-batch] [--repeat=N]``.

Measures, in one run and on the same machine state:

1. **floor** — papermill on a notebook that only imports the stack the brief uses (pandas,
   geopandas, statsmodels, scipy, matplotlib, the readers pyogrio and yaml, threadpoolctl, and
   every dmst_eval analysis module — the same third-party modules a brief's kernel ends up
   importing), plus the same HTML export the brief uses. Nothing a brief does can be faster
   than this.
2. **brief** — the default statewide brief end to end with :func:`dmst_eval.briefs.render`
   (execute, export, disclosure audit, publish; no PDF).
3. **batch** — statewide + the six regions with :func:`dmst_eval.briefs.render_batch`
   (2 worker processes).

Both the brief and the batch start with an empty validated-bundle cache
(:func:`dmst_eval.briefs.load_validated`), so they include validating the data; within the
batch, briefs after the first two reuse the validated bundle.

Every run is a fresh Python process (as when a user runs ``dmst-eval brief``), timed after
importing papermill and dmst_eval.briefs, so nothing carries over between runs. The floor and
the brief are each run ``--repeat`` times (default 3), interleaved, and the medians are
compared (single runs on a shared 2-core machine vary by ±20%).

What the brief does beyond the floor: validating the bundle (in render()'s own process, while
the kernel starts and imports), the analyses and five figures in the kernel (shared with a forked
worker, :meth:`dmst_eval.briefs.Brief.prefetch`; set ``DMST_EVAL_PREFETCH=0`` to measure without
it), a larger HTML export (its templates compiled while the kernel runs), the disclosure audit
and publishing.

Targets (issue 8): brief ≤ 1.5 × floor; batch of 7 ≤ 4 × one brief (median). Prints a small
table and the figures as one JSON line.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FLOOR_SOURCE = """import pandas, numpy, scipy.stats, geopandas, statsmodels.api, matplotlib.pyplot
import pyogrio, yaml, threadpoolctl
from dmst_eval import briefs, casedata, tracking, rba, risk, recidivism, evaluation, hotspots
from dmst_eval import disclosure, plots, geography
briefs.quiet()
print("stack imported")"""


def floor(tmp: Path, run: int = 0) -> float:
    import papermill as pm

    from dmst_eval import briefs

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('data_path = "../data/synthetic"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(FLOOR_SOURCE)]
    nb.metadata["kernelspec"] = {"name": "dmst-eval", "display_name": "Python (dmst-eval)",
                                 "language": "python"}
    src = tmp / "floor.ipynb"
    nbformat.write(nb, src)
    t0 = time.perf_counter()
    pm.execute_notebook(str(src), str(tmp / f"floor_out_{run}.ipynb"), kernel_name="dmst-eval",
                        cwd=str(tmp), progress_bar=False, log_output=False,
                        request_save_on_cell_execute=False,
                        shutdown_kernel="immediate")  # as render() does
    (tmp / f"floor_{run}.html").write_text(briefs._html_export(tmp / f"floor_out_{run}.ipynb"))
    return time.perf_counter() - t0


def brief(tmp: Path, run: int = 0) -> float:
    from dmst_eval import briefs

    # cold: a fresh cache, so the bundle is validated; a fresh output folder
    os.environ["DMST_EVAL_CACHE"] = str(tmp / f"cache_one_{run}")
    t0 = time.perf_counter()
    briefs.render({"data_path": str(REPO / "data" / "synthetic"), "figures_dir": None},
                  out_dir=tmp / f"one_{run}", pdf=False)
    return time.perf_counter() - t0


def batch(tmp: Path) -> tuple[float, object]:
    from dmst_eval import briefs

    os.environ["DMST_EVAL_CACHE"] = str(tmp / "cache_batch")  # cold start for the batch too
    t0 = time.perf_counter()
    s = briefs.render_batch(regions="all", data_path=str(REPO / "data" / "synthetic"),
                            out_dir=tmp / "batch", workers=2, pdf=False)
    return time.perf_counter() - t0, s


def _fresh(kind: str, tmp: Path, run: int = 0) -> dict:
    """Run one measurement in a fresh Python process, as a user running the CLI would: nothing
    (imported modules, compiled export templates, validated data) carries over between runs.
    Imports of papermill and dmst_eval.briefs happen before the clock starts."""
    out = subprocess.run([sys.executable, __file__, f"--child={kind}", f"--tmp={tmp}",
                          f"--run={run}"], capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def _child(argv: list[str]) -> int:
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    import papermill  # noqa: F401  (imported before the clock starts, like the CLI's imports)

    from dmst_eval import briefs  # noqa: F401

    tmp, run = Path(opts["tmp"]), int(opts.get("run", 0))
    kind = opts["child"]
    if kind == "floor":
        print(json.dumps({"seconds": floor(tmp, run)}))
    elif kind == "brief":
        print(json.dumps({"seconds": brief(tmp, run)}))
    else:
        t, summary = batch(tmp)
        print(json.dumps({"seconds": t, "ok": int((summary["status"] == "ok").sum())}))
    return 0


def main(argv: list[str]) -> int:
    if any(a.startswith("--child=") for a in argv):
        return _child(argv)
    repeat = 3
    for a in argv:
        if a.startswith("--repeat="):
            repeat = max(1, int(a.split("=", 1)[1]))
    os.chdir(REPO)
    with tempfile.TemporaryDirectory(prefix="bench-briefs-") as d:
        tmp = Path(d)
        fs, bs = [], []
        for r in range(repeat):  # interleaved, so both see the same machine state
            fs.append(_fresh("floor", tmp, r)["seconds"])
            bs.append(_fresh("brief", tmp, r)["seconds"])
        f, b = statistics.median(fs), statistics.median(bs)
        res = {"runs": repeat, "floor_s": round(f, 2), "brief_s": round(b, 2),
               "brief_over_floor": round(b / f, 2),
               "floor_runs_s": [round(x, 2) for x in fs],
               "brief_runs_s": [round(x, 2) for x in bs]}
        if "--no-batch" not in argv:
            bt = _fresh("batch", tmp)
            res.update(batch7_s=round(bt["seconds"], 1),
                       batch_over_brief=round(bt["seconds"] / b, 2), batch_ok=bt["ok"])
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        load = float("nan")
    res.update(cpus=os.cpu_count(), load_avg_1min_at_end=round(load, 1),
               python=platform.python_version(),
               date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(f"{'measure':<28}{'value':>10}")
    for k, v in res.items():
        print(f"{k:<28}{v!s:>10}")
    print(f"targets: brief <= 1.5 x floor ({'met' if res['brief_over_floor'] <= 1.5 else 'NOT met'})"
          + (f"; batch <= 4 x brief ({'met' if res['batch_over_brief'] <= 4 else 'NOT met'})"
             if "batch_over_brief" in res else ""))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
