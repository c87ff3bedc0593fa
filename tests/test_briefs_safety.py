"""The brief runner's safety (issue 13): no pickle or shared cache, a fresh kernel per brief,
clean-up on every exit, private outputs, an audit that works on numeric ids and never prints
data, and the threshold floor."""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from dmst_eval import briefs, disclosure
from dmst_eval.briefs import Brief, BriefError, BriefParams, batch, bundle, runner

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "synthetic"
PKG = REPO / "dmst_eval"
# only the test that reads the session's rendered briefs joins the "briefs" group (the worker
# that renders them); the others spread over both workers


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture(scope="module")
def cd(default_cd):
    return default_cd


# ------------------------------------------------------------------ 1, 2: no pickle, no fork
def test_no_pickle_fork_or_gc_tricks_in_the_library():
    for f in PKG.rglob("*.py"):
        src = f.read_text()
        assert not re.search(r"^\s*(import pickle|from pickle|import cPickle)|pickle\.loads?\(",
                             src, re.M), f
    for f in (PKG / "briefs").rglob("*.py"):
        src = f.read_text()
        for bad in ("os.fork", "gc.freeze", "gc.disable", "DMST_EVAL_CACHE", "load_validated"):
            assert bad not in src, (f, bad)
        if f.name != "batch.py":  # parallelism lives only across briefs, in the batch
            assert "multiprocessing" not in src, f
    assert not hasattr(briefs, "load_validated") and not hasattr(Brief, "prefetch")


def test_private_copy_is_private_faithful_and_not_validated_again(cd, tmp_path, monkeypatch):
    out = runner.prepare_out_dir(tmp_path / "reports")
    holder, copy, err = batch._private_copy(DATA, out)
    try:
        assert err == "" and holder.name.startswith(".brief_data_") and copy.name == DATA.name
        assert _mode(holder) == 0o700 and _mode(copy) == 0o700
        assert {_mode(f) for f in copy.iterdir()} == {0o600}
        assert not [f for f in copy.iterdir() if f.suffix not in (".parquet", ".json")]
        from dmst_eval import casedata

        calls, hashed = [], []
        monkeypatch.setattr(casedata, "load", lambda p: calls.append(p) or "validated")
        real_hash = casedata.content_hash
        monkeypatch.setattr(casedata, "content_hash", lambda df, t: hashed.append(t) or 0)
        back = bundle.load_bundle(copy)
        assert calls == []  # read as it is: validated once, in the batch's parent
        assert hashed == []  # and hashed there: its content hashes stand
        monkeypatch.setattr(casedata, "content_hash", real_hash)
        for name, df in cd.tables.items():
            pd.testing.assert_frame_equal(back.tables[name], df, check_exact=True)
        assert back.meta["content_hashes"] == cd.meta["content_hashes"]
        assert back.data_hash == cd.data_hash and back.meta["seed"] == cd.meta["seed"]
        # a copy another user could read is not trusted: it is loaded (validated) as a bundle
        os.chmod(copy, 0o755)
        assert bundle.load_bundle(copy) == "validated" and len(calls) == 1
    finally:
        import shutil

        shutil.rmtree(holder, ignore_errors=True)


def test_batch_removes_its_private_copy_on_interrupt(tmp_path, monkeypatch, standard_plan):
    import concurrent.futures as cf

    from dmst_eval.briefs import disclosure_plan

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cf, "as_completed", interrupted)
    # the copy, not the plan, is under test: the session's plan of these data stands in
    monkeypatch.setattr(disclosure_plan, "batch_plan", lambda *a, **k: standard_plan)
    out = tmp_path / "reports"
    with pytest.raises(KeyboardInterrupt):
        briefs.render_batch(regions="statewide", data_path=str(DATA), out_dir=out, workers=1)
    assert not list(out.glob(".brief_*"))


# ------------------------------------------------------------------ 3: clean-up on every exit
def test_stale_work_folders_removed_fresh_ones_kept(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old, new, other = out / f".brief_x_p{dead.pid}_abc", out / ".brief_y_new", out / "keep_me"
    running = out / runner.work_prefix(".brief_z")  # an old folder of a live process: kept
    for d in (old, new, other, running):
        d.mkdir()
    two_hours_ago = time.time() - 7200
    for d in (old, other, running):
        os.utime(d, (two_hours_ago, two_hours_ago))
    runner.prepare_out_dir(out)
    assert not old.exists() and new.exists() and other.exists() and running.exists()


def test_stale_test_run_caches_removed_live_ones_kept(tmp_path):
    """A test run killed by a signal leaves its plan cache behind; the next run removes it."""
    from tests.conftest import _remove_stale_test_caches

    old, live = tmp_path / "dmst-eval-test-cache-old", tmp_path / "dmst-eval-test-cache-live"
    other = tmp_path / "something-else"
    for d in (old, live, other):
        d.mkdir(mode=0o700)
        (d / "plan.json").write_text("{}")
    a_day_ago = time.time() - 86400
    for d in (old, other):
        os.utime(d, (a_day_ago, a_day_ago))
    (tmp_path / "dmst-eval-test-cache-link").symlink_to(other)  # never followed
    _remove_stale_test_caches(tmp_path)
    assert not old.exists() and live.exists() and (other / "plan.json").exists()


def _small_template(tmp_path: Path, name: str, code: str) -> Path:
    """The brief template's parameters cell, a cell that loads the data (the kernel then
    holds it in memory, as a brief's does), and ``code``; no section runs."""
    nb = nbformat.read(briefs.BRIEF_NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from dmst_eval.casedata import load\ncd = load(data_path)"),
        nbformat.v4.new_code_cell(code)]
    p = tmp_path / name
    nbformat.write(nb, p)
    return p


def _sleeping_template(tmp_path: Path) -> Path:
    """A template that loads the data, signals it started, then sleeps."""
    return _small_template(tmp_path, "sleepy.ipynb", "import time\n"
                           "open('started.flag', 'w').close()\ntime.sleep(300)")


@pytest.mark.parametrize("sig", [signal.SIGTERM,
                                 # the same clean-up path: make test (CI) runs it too
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_killed_render_leaves_no_kernel_and_no_work_folder(tmp_path, sig):
    import psutil

    out = tmp_path / "reports"
    code = ("from dmst_eval import briefs\n"
            f"briefs.render({{'data_path': {str(DATA)!r}, 'figures_dir': None}}, "
            f"out_dir={str(out)!r}, template={str(_sleeping_template(tmp_path))!r}, pdf=False)")
    # stderr to a file, not a pipe: a pipe nobody reads fills up (64 KB of log and traceback
    # on the way out) and blocks the exiting render, which then looks like a hang
    err = tmp_path / "stderr.txt"
    with open(err, "w") as fh:
        # SIGINT as in a terminal (Ctrl-C): a test run started in the background (CI under
        # nohup, `cmd &`) inherits SIGINT ignored, and a process that ignores it rightly does
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                stderr=fh, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (out / "started.flag").exists():
            assert proc.poll() is None, err.read_text()[-2000:]
            assert time.monotonic() < deadline, "the render never reached the sleeping cell"
            time.sleep(0.2)
        kernels = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "ipykernel" in " ".join(c.cmdline())]
        assert len(kernels) == 1 and list(out.glob(".brief_*"))  # mid-render
        cmd = kernels[0].cmdline()
        conn = Path(cmd[cmd.index("-f") + 1])
        sockets = Path(json.loads(conn.read_text())["ip"]).parent
        assert json.loads(conn.read_text())["transport"] == "ipc" and sockets.is_dir()
        assert _mode(sockets) == 0o700
        proc.send_signal(sig)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            raise AssertionError("the render did not stop within 90 s of the signal; its last "
                                 f"messages: {err.read_text()[-2000:]}") from None
        gone, alive = psutil.wait_procs(kernels, timeout=15)
        assert not alive, "the kernel outlived the render"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list(out.glob(".brief_*")), "work folder left behind"
    assert not conn.exists() and not sockets.exists(), "kernel connection files left behind"
    assert not list(out.glob("*.html")) and not list(out.glob("*.ipynb"))
    assert "NOT published" in (out / "brief_statewide_internal.FAILED.txt").read_text()


# ------------------------------------------------------------------ 5: ids and messages
def test_audit_numeric_ids_only_long_tokens_and_id_columns(tmp_path):
    ids = {str(i) for i in range(1, 2000)} | {"1234567"}
    page = tmp_path / "b.html"
    page.write_text(
        '<p>In 2019, 115 reports and 1,024 calls; 12 of 40 children.</p>'
        '<table data-dmst-suppressed="1" data-threshold="5"><tr><th>town</th><th>n</th></tr>'
        '<tr><td>Hartford</td><td class="dmst-count">115</td></tr></table>')
    assert disclosure.audit(page, child_ids=ids).passed
    page.write_text('<p>Case 1234567 was identified.</p>')
    rep = disclosure.audit(page, child_ids=ids)
    assert rep.problems["kind"].tolist() == ["child_id"]
    assert "1234567" not in rep.problems["detail"].iloc[0]
    page.write_text('<table data-dmst-suppressed="1"><tr><th>child</th><th>n</th></tr>'
                    '<tr><td>17</td><td class="dmst-count">20</td></tr></table>')
    rep = disclosure.audit(page, child_ids=ids)
    assert rep.problems["kind"].tolist() == ["child_id"]
    assert not rep.problems["detail"].str.contains("17").any()


def test_audit_messages_never_print_ids_or_dates(tmp_path):
    page = tmp_path / "b.html"
    page.write_text("<p>Child C0012345 (XK9Q) was exploited on 2019-03-04 and March 5, 2019."
                    "</p>")
    rep = disclosure.audit(page, child_ids={"XK9Q"})
    assert sorted(rep.problems["kind"]) == ["child_id", "child_id", "event_date", "event_date"]
    text = " ".join(rep.problems["detail"]) + " " + " ".join(rep.problems["where"])
    for secret in ("C0012345", "XK9Q", "2019", "March"):
        assert secret not in text


def test_scrub_blanks_dates_and_id_like_tokens():
    s = runner.scrub("KeyError: 'C0012345' at 2019-03-04 12:00 (child 4421873, 3/4/2019)")
    for secret in ("C0012345", "2019", "4421873", "3/4"):
        assert secret not in s
    assert s.startswith("KeyError: ")


def test_failing_cell_message_and_failed_txt_show_no_data(tmp_path):
    tpl = _small_template(tmp_path, "leaky.ipynb", "c = cd.children.iloc[0]\n"
                          "raise KeyError(f\"{c['child_id']} born {c['birth_date']:%Y-%m-%d}\")")
    from dmst_eval.casedata import load

    first = load(DATA).children.iloc[0]
    secrets = [str(first["child_id"]), f"{first['birth_date']:%Y-%m-%d}"]
    out = tmp_path / "reports"
    with pytest.raises(BriefError) as ei:
        runner.render({"data_path": str(DATA), "figures_dir": None}, out_dir=out,
                      template=tpl, pdf=False)
    note = (out / "brief_statewide_internal.FAILED.txt").read_text()
    for text in (str(ei.value), note):
        assert "KeyError" in text
        for s in secrets:
            assert s not in text


def _numeric_bundle(cd, path: Path) -> Path:
    """The default bundle with child ids rewritten to integers-as-strings ("1", "2", ...)."""
    from dmst_eval.casedata import CaseData

    new = {cid: str(k + 1) for k, cid in enumerate(cd.children["child_id"].astype(str))}
    tabs = {}
    for name, df in cd.tables.items():
        df = df.copy()
        if "child_id" in df.columns:
            df["child_id"] = df["child_id"].astype(str).map(new).astype(df["child_id"].dtype)
        tabs[name] = df
    CaseData(tabs, meta=dict(cd.meta), truth=cd.truth).save(path)
    return path


@pytest.mark.slow
def test_numeric_child_ids_render_every_brief(cd, tmp_path):
    """All 14 briefs (statewide + 6 regions, internal and public) from a bundle whose child
    ids are numbers pass the audit, which still checks them against the data's ids."""
    data = _numeric_bundle(cd, tmp_path / "numeric")
    ids = runner.read_child_ids(data)
    assert "115" in ids and len(ids) == len(cd.children)
    out = tmp_path / "reports"
    s = briefs.render_batch(regions="all", data_path=str(data), audience="both", out_dir=out,
                            workers=2, pdf=False, strict=True)
    assert (s["status"] == "ok").all(), s[["region", "audience", "error"]].to_string()
    assert len(s) == 14
    for p in s["path"]:
        rep = disclosure.audit(p, child_ids=ids)
        assert rep.passed, rep.problems.head()
        # the old check would have failed: numbers in the brief are child ids
        text = re.sub(r"<[^>]+>", " ", Path(p).read_text())
        assert set(re.findall(r"\b\d{3,}\b", text)) & ids
    assert not list(out.glob(".brief_*"))


# ------------------------------------------------------------------ 4: private outputs
@pytest.mark.xdist_group("briefs")
def test_render_outputs_are_private_and_paths_relative(rendered_briefs, tmp_path):
    out, rendered = rendered_briefs  # rendered once per session into <tmp>/new/reports
    assert _mode(out) == 0o700
    assert {_mode(f) for f in out.iterdir()} == {0o600}
    for res in rendered.values():
        text = res.notebook.read_text()
        for absolute in (str(DATA), str(REPO), str(out.parent.parent)):  # only in "../../…"
            assert not re.search(r"(?<!\.\.)" + re.escape(absolute), text), absolute
        nb = nbformat.reads(text, as_version=4)
        assert nb.metadata["papermill"]["parameters"]["data_path"] == os.path.relpath(DATA, out)
    # --shared-output relaxes it for a public brief (and only for one); a short brief (set-up,
    # header, provenance) is enough to check the modes
    nb = nbformat.read(briefs.BRIEF_NOTEBOOK, as_version=4)
    k = next(i for i, c in enumerate(nb.cells) if "sections.header.build" in c.source)
    nb.cells = nb.cells[:k + 1] + [nbformat.v4.new_code_cell("sections.provenance.build(brief)")]
    tpl = tmp_path / "short.ipynb"
    nbformat.write(nb, tpl)
    out = tmp_path / "shared"
    res = runner.render({"data_path": str(DATA), "region": "Region 3", "audience": "public",
                         "figures_dir": None}, out_dir=out, pdf=False, shared_output=True,
                        template=tpl)
    assert _mode(res.html) == 0o644 and _mode(res.notebook) == 0o644
    with pytest.raises(BriefError, match="only for public"):
        runner.render({"data_path": str(DATA)}, out_dir=out, shared_output=True)


# ------------------------------------------------------------------ 6: threshold floor
def test_low_threshold_refused_unless_allowed(cd):
    with pytest.raises(BriefError, match="allow-low-threshold"):
        BriefParams(suppression_threshold=1)
    with pytest.raises(BriefError, match="public brief needs"):
        BriefParams(audience="public", suppression_threshold=9)
    p = BriefParams(suppression_threshold=3, allow_low_threshold=True)
    assert p.threshold == 3 and p.low_threshold
    assert not BriefParams(suppression_threshold=5).low_threshold
    b = Brief(cd, dict(p.as_dict(), figures_dir=None), strict=True)
    head = b.section("header").html
    assert 'id="dmst-low-threshold"' in head and "--allow-low-threshold" in head
    prov = b.section("provenance").tables["provenance"].set_index("item")["value"]
    assert prov["Suppression threshold"].startswith("3 (below the usual minimum")
    assert prov["allow_low_threshold"] == "True"
    normal = Brief(cd, {"figures_dir": None}).section("header").html
    assert "dmst-low-threshold" not in normal


def test_cli_refuses_low_threshold(tmp_path):
    from typer.testing import CliRunner

    from dmst_eval.cli import app

    r = CliRunner().invoke(app, ["brief", "--threshold", "1", "--out-dir", str(tmp_path)])
    assert r.exit_code == 1 and "--allow-low-threshold" in r.output
    r = CliRunner().invoke(app, ["briefs", "--threshold", "2", "--regions", "Region 1",
                                 "--out-dir", str(tmp_path)])
    assert r.exit_code == 1 and "--allow-low-threshold" in r.output
    assert not list(tmp_path.iterdir())  # refused before anything was written
