"""Benchmark the evaluation briefs (issue 13). Not a test: run it on demand.

Run: ``python benchmarks/bench_briefs.py [--repeat=5] [--no-batch]``.

Measures, on the same machine state:

1. **floor** — what no brief can beat: papermill in a fresh ``dmst-eval`` kernel (started the
   way :func:`dmst_eval.briefs.render` starts it) on a notebook that only imports the brief's
   stack (pandas, geopandas, statsmodels, scipy, matplotlib, esda/libpysal, jinja2, every
   dmst_eval analysis module: ``briefs.context.STACK``, what ``Brief.from_params`` imports;
   and pandera, which validating the data imports: ``briefs.context.VALIDATION_STACK``),
   plus the same HTML export.
2. **brief** — the default statewide brief end to end with :func:`dmst_eval.briefs.render`
   (fresh kernel, data validated in it, sections, export, disclosure audit, private publish;
   no PDF).
3. **sections** — the sections' own compute: the sum of papermill's cell timings of the
   ``sections.<name>.build(brief)`` cells of the brief's executed notebook (the setup cell, which
   imports the stack and loads and validates the data, is reported separately).
4. **batch** — 14 briefs (statewide + 6 regions, internal and public) with
   :func:`dmst_eval.briefs.render_batch` on 2 worker processes, against the median brief.

dmst_eval's bytecode is compiled before the runs (as after a user's first run; on a machine
that sets ``PYTHONDONTWRITEBYTECODE`` every process would otherwise compile every module again).
Every floor and brief run is a fresh Python process (as when a user runs ``dmst-eval brief``),
timed after importing papermill and dmst_eval.briefs; floor and brief runs are interleaved
(``--repeat`` each, default 5) and their medians compared.

The per-user plan cache (:mod:`dmst_eval.briefs.plan_cache`) lives in a fresh folder for the
run: a first brief with it empty is reported as ``brief_cold_s`` (the batch disclosure plan is
computed in the kernel and kept), the interleaved runs then find it (what a user sees from the
second brief on the same data, or after ``dmst-eval briefs``).

Targets: brief ≤ 1.5 × floor (1.5–1.7 reported, simple design preferred); sections ≤ 1.0 s;
batch of 14 ≤ 8 × one brief. Prints a table and one JSON line.
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

FLOOR_SOURCE = """import importlib
import pandas, numpy, scipy.stats, geopandas, statsmodels.api, matplotlib.pyplot
import pyogrio, yaml, threadpoolctl
from dmst_eval import briefs, casedata, tracking, rba, risk, recidivism, evaluation, hotspots
from dmst_eval import disclosure, plots, geography
from dmst_eval.briefs.context import STACK, VALIDATION_STACK
for mod in STACK + VALIDATION_STACK:  # what Brief.from_params imports, and validation
    importlib.import_module(mod)
briefs.quiet()
print("stack imported")"""


def floor(tmp: Path, run: int = 0) -> float:
    import papermill as pm
    from jupyter_client import KernelManager

    from dmst_eval.briefs import runner

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('data_path = "../data/synthetic"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(FLOOR_SOURCE)]
    nb.metadata["kernelspec"] = {"name": "dmst-eval", "display_name": "Python (dmst-eval)",
                                 "language": "python"}
    src = tmp / "floor.ipynb"
    nbformat.write(nb, src)
    t0 = time.perf_counter()
    sockets = runner._socket_dir()
    km = KernelManager(kernel_name=runner.KERNEL, transport="ipc", ip=str(sockets / "k"))
    try:
        km.start_kernel(cwd=str(tmp))
        out = pm.execute_notebook(str(src), str(tmp / f"floor_out_{run}.ipynb"),
                                  kernel_name=runner.KERNEL, cwd=str(tmp), progress_bar=False,
                                  log_output=False, request_save_on_cell_execute=False, km=km)
    finally:
        runner._shutdown(km)
        import shutil

        shutil.rmtree(sockets, ignore_errors=True)
    (tmp / f"floor_{run}.html").write_text(runner.html_export(out))
    return time.perf_counter() - t0


def brief(tmp: Path, run: int = 0) -> dict:
    from dmst_eval import briefs

    t0 = time.perf_counter()
    res = briefs.render({"data_path": str(REPO / "data" / "synthetic"), "figures_dir": None},
                        out_dir=tmp / f"one_{run}", pdf=False)
    seconds = time.perf_counter() - t0
    nb = nbformat.read(res.notebook, as_version=4)
    cells = {}
    setup = 0.0
    for c in nb.cells:
        d = c.metadata.get("papermill", {}).get("duration") or 0.0
        if c.source.startswith("sections."):
            cells[c.source.split(".")[1]] = round(d, 3)
        elif "Brief.from_params" in c.source:
            setup = d
    return {"seconds": seconds, "sections": cells, "setup": setup}


def batch(tmp: Path) -> tuple[float, object]:
    from dmst_eval import briefs

    t0 = time.perf_counter()
    s = briefs.render_batch(regions="all", data_path=str(REPO / "data" / "synthetic"),
                            audience="both", out_dir=tmp / "batch", workers=2, pdf=False)
    return time.perf_counter() - t0, s


def _fresh(kind: str, tmp: Path, run: int = 0) -> dict:
    """One measurement in a fresh Python process (nothing carries over between runs)."""
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
        print(json.dumps(brief(tmp, run)))
    else:
        t, summary = batch(tmp)
        print(json.dumps({"seconds": t, "ok": int((summary["status"] == "ok").sum()),
                          "n": len(summary)}))
    return 0


def main(argv: list[str]) -> int:
    if any(a.startswith("--child=") for a in argv):
        return _child(argv)
    repeat = 5
    for a in argv:
        if a.startswith("--repeat="):
            repeat = max(1, int(a.split("=", 1)[1]))
    os.chdir(REPO)
    # dmst_eval's bytecode compiled first, as after a user's first run (a machine that sets
    # PYTHONDONTWRITEBYTECODE would otherwise compile every module in every process)
    import compileall

    compileall.compile_dir(str(REPO / "dmst_eval"), quiet=1)
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-briefs-") as d:
        tmp = Path(d)
        os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")  # an empty plan cache, this run's
        cold = _fresh("brief", tmp, 99)
        fs, bs, secs, setups = [], [], [], []
        for r in range(repeat):  # interleaved, so both see the same machine state
            fs.append(_fresh("floor", tmp, r)["seconds"])
            b = _fresh("brief", tmp, r)
            bs.append(b["seconds"])
            secs.append(b["sections"])
            setups.append(b["setup"])
        f, bm = statistics.median(fs), statistics.median(bs)
        sec_tot = [sum(s.values()) for s in secs]
        per_section = {k: round(statistics.median(s[k] for s in secs), 3) for k in secs[0]}
        res = {"runs": repeat, "floor_s": round(f, 2), "brief_s": round(bm, 2),
               "brief_over_floor": round(bm / f, 2),
               "brief_cold_s": round(cold["seconds"], 2),
               "brief_cold_over_floor": round(cold["seconds"] / f, 2),
               "sections_cold_s": round(sum(cold["sections"].values()), 2),
               "floor_runs_s": [round(x, 2) for x in fs],
               "brief_runs_s": [round(x, 2) for x in bs],
               "sections_s": round(statistics.median(sec_tot), 2),
               "sections_runs_s": [round(x, 2) for x in sec_tot],
               "setup_cell_s": round(statistics.median(setups), 2),
               "per_section_s": per_section}
        if "--no-batch" not in argv:
            bt = _fresh("batch", tmp)
            res.update(batch14_s=round(bt["seconds"], 1),
                       batch_over_brief=round(bt["seconds"] / bm, 2),
                       batch_ok=f"{bt['ok']}/{bt['n']}")
    res.update(cpus=os.cpu_count(), load_avg_1min_start=round(load0, 1),
               load_avg_1min_end=round(os.getloadavg()[0], 1),
               python=platform.python_version(),
               date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(f"{'measure':<24}value")
    for k, v in res.items():
        print(f"{k:<24}{v}")
    verdict = []
    r = res["brief_over_floor"]
    verdict.append(f"brief <= 1.5 x floor: {'met' if r <= 1.5 else ('1.5-1.7' if r <= 1.7 else 'NOT met')}")
    verdict.append(f"sections <= 1.0 s: {'met' if res['sections_s'] <= 1.0 else 'NOT met'}")
    if "batch_over_brief" in res:
        verdict.append(f"batch14 <= 8 x brief: "
                       f"{'met' if res['batch_over_brief'] <= 8 else 'NOT met'}")
    print("targets: " + "; ".join(verdict))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
