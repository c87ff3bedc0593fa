"""A batch of briefs: statewide + the six regions (× audiences), in parallel processes.

The data are validated once, in the batch's own process, and written to a private copy
(:mod:`dmst_eval.briefs.bundle`) that every brief's kernel reads without validating again; the
copy lives in a ``.brief_data_*`` folder (0700) inside the output folder and is removed when the
batch ends, however it ends. Each brief runs in its own fresh kernel (:func:`render`); the only
parallelism is across briefs, in ``workers`` processes (started with ``spawn``: nothing is
forked). One failing brief does not stop the others.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd

from dmst_eval import schema
from dmst_eval.briefs.params import BriefParams, normalise_region
from dmst_eval.briefs.runner import cleanup_on_signals, prepare_out_dir, render, scrub
from dmst_eval.errors import BriefError

__all__ = ["render_batch", "AUDIENCES", "REPORT_FILE"]

#: The batch's disclosure report, written beside the briefs (0600).
REPORT_FILE = "disclosure-report.txt"

AUDIENCES = ("internal", "public")
_COLUMNS = ["region", "audience", "status", "path", "seconds", "error"]


def _warm() -> None:
    """Import the renderer in a new worker while the parent validates the data."""
    import papermill  # noqa: F401

    import dmst_eval.briefs.runner  # noqa: F401


def _render_one(params: dict, out_dir: str, pdf: bool | None, timeout: int,
                strict: bool | None, shared_output: bool) -> dict:
    t0 = time.perf_counter()
    row = {"region": params.get("region", "statewide"), "audience": params.get("audience")}
    try:
        res = render(params, out_dir=out_dir, pdf=pdf, timeout=timeout, strict=strict,
                     shared_output=shared_output)
        return dict(row, status="ok", path=str(res.html),
                    seconds=round(time.perf_counter() - t0, 1), error="")
    except Exception as e:  # one failure never stops the batch
        msg = str(e) if isinstance(e, BriefError) else f"{type(e).__name__}: {scrub(e)}"
        return dict(row, status="failed", path="", seconds=round(time.perf_counter() - t0, 1),
                    error=msg.splitlines()[0][:300] if msg else type(e).__name__)


def _regions(regions) -> list[str]:
    if regions in (None, "all"):
        todo = ["statewide", *schema.REGIONS]
    else:
        todo = [r.strip() for r in regions.split(",")] if isinstance(regions, str) \
            else list(regions)
    return [normalise_region(r) for r in todo]


def _audiences(audience) -> list[str]:
    if audience in ("both", "all"):
        return list(AUDIENCES)
    out = [a.strip() for a in audience.split(",")] if isinstance(audience, str) \
        else list(audience)
    for a in out:
        if a not in AUDIENCES:
            raise BriefError(f'audience must be "internal", "public" or "both", got {a!r}')
    return out


def _plan_batch(cd, copy: Path, out_dir: Path, params: dict) -> tuple[str, str]:
    """The batch disclosure plan (:mod:`dmst_eval.briefs.disclosure_plan`), computed once:
    written (JSON, 0600) into the private copy for the briefs' kernels, and the disclosure
    report beside the briefs. Returns (report text, error message or "")."""
    from dmst_eval.briefs import disclosure_plan as dp, plan_cache
    from dmst_eval.disclosure import DisclosureReport
    from dmst_eval.errors import DisclosureError

    try:
        plan = dp.batch_plan(cd, params)
    except DisclosureError as e:
        return "", f"disclosure plan failed, no brief was rendered: {e}"
    plan.to_json(copy / dp.PLAN_FILE, fingerprint=plan.fingerprint)
    plan_cache.save(plan, plan.fingerprint)  # for briefs later rendered on their own
    rep = DisclosureReport.from_plan(plan)
    rep.write(out_dir / REPORT_FILE)
    return rep.to_text(), ""


def _private_copy(data_path, out_dir: Path, params: dict | None = None, mapping=None
                  ) -> tuple[Path | None, Path | None, str]:
    """Validate the data once (a bundle folder, or a database URL / a source read through
    ``mapping``) and write the private copy (and, given ``params``, the batch's disclosure plan
    and report); (folder to remove, data path for the briefs, error message or "")."""
    from dmst_eval.briefs.bundle import load_for_briefs, make_private_copy
    from dmst_eval.sources import describe_source

    cd, err = load_for_briefs(data_path, mapping)
    if err:
        return None, None, err
    src = describe_source(data_path)
    # the briefs' provenance shows the original folder name (or the kind of source)
    name = Path(str(data_path)).name if src["kind"] == "folder" else src["kind"]
    holder, copy = make_private_copy(cd, out_dir, name)
    try:
        err = ""
        if params is not None:
            _, err = _plan_batch(cd, copy, out_dir, params)
    except BaseException:
        shutil.rmtree(holder, ignore_errors=True)
        raise
    return holder, copy, err


def render_batch(regions="all", data_path: str = "data/synthetic", audience: str = "internal",
                 out_dir: str | Path = "reports", progress: bool = False, workers: int = 2,
                 pdf: bool | None = False, timeout: int = 600, strict: bool | None = None,
                 shared_output: bool = False, mapping=None, **params) -> pd.DataFrame:
    """Render statewide + regional briefs in parallel processes, one fresh kernel per brief.

    Parameters
    ----------
    regions : "all", str or list
        ``"all"`` = statewide + Region 1..6; or a comma-separated string / list of regions.
    audience : str or list
        ``"internal"``, ``"public"``, ``"both"`` (every region for each), or a list.
    workers : int
        Parallel processes (default 2).
    shared_output : bool
        Public briefs' files readable by other users (see :func:`render`).
    data_path, mapping : optional
        A bundle folder, or a database URL (``duckdb:///cases.duckdb``,
        ``postgresql://analyst@host/db``…), read through the mapping file ``mapping`` if given
        (see :mod:`dmst_eval.sources`); validated once, here.
    **params
        Other brief parameters (period, threshold, ``allow_low_threshold``…), shared by all.

    Returns
    -------
    DataFrame
        region, audience, status ("ok" / "failed"), path, seconds, error — one row per brief,
        regions in the order asked, for each audience. A failed brief leaves no
        complete-looking HTML. ``.attrs["disclosure_report"]`` holds the disclosure report
        (also written to ``disclosure-report.txt`` in ``out_dir``).

    Notes
    -----
    Before any brief is rendered, the batch disclosure plan of the *standard* batch (statewide
    and six regions, internal and public — whichever briefs are asked for) is computed once
    (:func:`dmst_eval.briefs.disclosure_plan.batch_plan`) and handed to every brief in the
    private data copy. If no suppression pattern exists or the plan fails its interval audit,
    no brief is rendered: every row is "failed" with the cell and relation that failed.
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing as mp

    todo = [(r, a) for a in _audiences(audience) for r in _regions(regions)]
    from dmst_eval.sources import describe_source, is_url

    shown = describe_source(data_path)["name"] if is_url(str(data_path)) else str(data_path)
    # the parameters never carry a URL (nor its password): the briefs read the private copy
    jobs = [dict(params, region=r, data_path=shown, audience=a,
                 figures_dir=params.get("figures_dir")) for r, a in todo]
    for j in jobs:  # fail fast on bad parameters, before starting processes
        BriefParams(**j)
        if shared_output and j["audience"] != "public":
            raise BriefError("shared_output (--shared-output) is only for public briefs")
    out = prepare_out_dir(out_dir)
    rows: dict[int, dict] = {}
    holder = ex = bar = None
    report = ""
    try:
        with cleanup_on_signals():
            ex = ProcessPoolExecutor(max_workers=max(1, min(int(workers), len(jobs))),
                                     mp_context=mp.get_context("spawn"))
            warm = [ex.submit(_warm) for _ in range(ex._max_workers)]
            plan_params = BriefParams(**jobs[0]).as_dict() if jobs else {}
            (out / REPORT_FILE).unlink(missing_ok=True)
            holder, copy, err = _private_copy(
                data_path if is_url(str(data_path)) else Path(data_path).resolve(), out,
                plan_params, mapping)
            if (out / REPORT_FILE).exists():
                report = (out / REPORT_FILE).read_text(encoding="utf-8").rstrip()
            if err:  # nothing to render: stop the workers still importing
                _stop_workers(ex)
                for k, j in enumerate(jobs):
                    rows[k] = {"region": j["region"], "audience": j["audience"],
                               "status": "failed", "path": "", "seconds": 0.0, "error": err}
            else:
                for w in warm:
                    w.result()
                futs = {ex.submit(_render_one, dict(j, data_path=str(copy)), str(out), pdf,
                                  timeout, strict, shared_output): k
                        for k, j in enumerate(jobs)}
                if progress:
                    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

                    bar = Progress(TextColumn("briefs"), BarColumn(),
                                   TextColumn("{task.completed}/{task.total}"),
                                   TimeElapsedColumn(), TextColumn("{task.description}"))
                    task = bar.add_task("", total=len(jobs))
                    bar.start()
                for f in as_completed(futs):
                    k = futs[f]
                    try:
                        rows[k] = f.result()
                    except Exception as e:  # the worker process died
                        rows[k] = {"region": jobs[k]["region"], "audience": jobs[k]["audience"],
                                   "status": "failed", "path": "", "seconds": float("nan"),
                                   "error": f"worker process failed: {type(e).__name__}"}
                    if bar is not None:
                        bar.update(task, advance=1, description=f"{rows[k]['region']} "
                                   f"{rows[k]['audience']}: {rows[k]['status']}")
    except BaseException:
        _stop_workers(ex)
        raise
    finally:
        if bar is not None:
            bar.stop()
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)
        if holder is not None:
            shutil.rmtree(holder, ignore_errors=True)
    out_df = pd.DataFrame([rows[k] for k in range(len(jobs))], columns=_COLUMNS)
    out_df.attrs["disclosure_report"] = report
    return out_df


def _stop_workers(ex) -> None:
    """On Ctrl-C or SIGTERM: ask each worker to stop (SIGTERM), so that its render shuts its
    kernel down and removes its work folder, then wait for them."""
    if ex is None:
        return
    procs = list(getattr(ex, "_processes", {}).values())  # no public API for this
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=30)
