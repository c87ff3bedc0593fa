"""Evaluation briefs: parameters, sections (suppressed, computed), render, audit, failures."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dmst_eval import briefs, disclosure
from dmst_eval.briefs import Brief, BriefError, BriefParams

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "synthetic"
pytestmark = pytest.mark.xdist_group("briefs")  # renders share the machine: keep them together


# ------------------------------------------------------------------ parameters
def test_normalise_region_spellings_and_errors():
    assert briefs.normalise_region("region 6") == "Region 6"
    assert briefs.normalise_region(2) == "Region 2"
    assert briefs.normalise_region("Statewide") == "statewide"
    with pytest.raises(BriefError, match="region must be"):
        briefs.normalise_region("Region 7")


def test_params_thresholds_and_validation():
    assert BriefParams(audience="internal").threshold == 5
    assert BriefParams(audience="public").threshold == 10
    assert BriefParams(audience="internal", suppression_threshold=11).threshold == 11
    with pytest.raises(BriefError, match="public brief needs"):
        BriefParams(audience="public", suppression_threshold=5)
    with pytest.raises(BriefError, match="audience"):
        BriefParams(audience="press")
    with pytest.raises(BriefError, match="period_start"):
        BriefParams(period_start="not a date")
    assert BriefParams(region=3, audience="public").slug == "brief_region3_public"


def test_poisson_ratio_ci_matches_conditional_binomial():
    rr, lo, hi = briefs._poisson_ratio_ci(22, 15, 1096, 1096)
    ci = stats.binomtest(22, 37).proportion_ci(method="exact")
    assert rr == pytest.approx(22 / 15)
    assert lo == pytest.approx(ci.low / (1 - ci.low))
    assert hi == pytest.approx(ci.high / (1 - ci.high))


# ------------------------------------------------------------------ sections (in process)
@pytest.fixture(scope="module")
def cd():
    from dmst_eval.casedata import load

    return load(DATA)


@pytest.fixture(scope="module")
def brief_public(cd):
    b = Brief(cd, {"audience": "public", "figures_dir": None}, strict=True)
    return b, {m: getattr(b, m)() for m in
               ("header", "key_findings", "scorecard", "tracking", "hotspot_map",
                "risk_factors", "repeat_victimization", "program_effects", "methods",
                "provenance")}


def test_default_periods_are_last_three_years_and_three_before(cd):
    b = Brief(cd, {"figures_dir": None})
    end = pd.Timestamp(cd.meta["study_end"])
    assert b.period == (f"{end.year - 2}-01-01", end.strftime("%Y-%m-%d"))
    assert b.comparison == (f"{end.year - 5}-01-01", f"{end.year - 3}-12-31")


def test_every_section_computed_and_every_table_suppressed(brief_public):
    b, secs = brief_public
    assert b.errors == []
    for name, sec in secs.items():
        assert sec.error is None, name
        for tname, t in sec.tables.items():
            info = t.attrs.get("disclosure")
            assert info is not None, (name, tname)
            for c in info["count_cols"]:
                v = pd.to_numeric(t[c], errors="coerce")
                assert not ((v >= 1) & (v < 10)).any(), (name, tname, c)
            assert not any(str(c).endswith("_id") for c in t.columns), (name, tname)


def test_key_findings_numbers_are_computed(brief_public, cd):
    from dmst_eval import tracking

    b, secs = brief_public
    ts = tracking.summary(cd, b.period[0], b.period[1])
    n = int(ts.value("confirmed_victims"))
    first = re.sub("<[^>]+>", "|", secs["key_findings"].html).split("|")
    first = [s for s in first if s.strip()][0]
    assert first.startswith(disclosure.count_phrase(n, 10).capitalize() + " children")


def test_risk_finding_names_the_factor_in_plain_words(brief_public):
    b, secs = brief_public
    orr = b._risk_model().odds_ratios
    orr = orr[~orr.term.isin(["intercept", "age_at_start"])]
    sig = orr[(orr.ci_lower > 1) | (orr.ci_upper < 1)]
    top = sig.loc[np.log(sig.odds_ratio.astype(float)).abs().idxmax(), "term"]
    assert f"Among child-welfare-involved children, {briefs._prose(top)} was" in \
        secs["key_findings"].html
    assert briefs._prose("male") == "being male" and briefs._prose("lgbtq").startswith("identif")


def test_program_finding_rounds_without_negative_zero(cd):
    b = Brief(cd, {"figures_dir": None})
    b._cache[("section", "program_effects")] = briefs.Section("Program effects", "")
    b._cache["service_effect"] = (-0.004, -0.291, -0.004)
    s = b._compute_finding("finding_program")
    assert "about the same as that of similar children" in s
    assert "(95% CI -29 to 0 points;" in s and "-0" not in s
    b._cache["service_effect"] = (-0.052, -0.101, -0.003)
    assert "5 percentage points lower than that of" in b._compute_finding("finding_program")


def test_banner_only_for_synthetic_data(cd):
    from dmst_eval.casedata import CaseData

    assert "SYNTHETIC DATA" in Brief(cd, {"figures_dir": None}).header().html
    real = CaseData(dict(cd.tables), meta=dict(cd.meta, source="extract"))
    assert Brief(real, {"figures_dir": None}).banner().html == ""


def test_failing_section_shows_note_without_data(cd, monkeypatch):
    b = Brief(cd, {"figures_dir": None}, strict=False)
    monkeypatch.setattr(b, "_risk_model", lambda: (_ for _ in ()).throw(KeyError("C0001")))
    with pytest.warns(UserWarning, match="Risk factors"):
        sec = b.risk_factors()
    assert sec.error == "KeyError" and "C0001" not in sec.html
    assert ("Risk factors", "KeyError") in b.errors


def test_figures_saved_to_figures_dir(cd, tmp_path):
    b = Brief(cd, {"figures_dir": str(tmp_path), "region": "statewide"}, strict=True)
    b.risk_factors()
    assert (tmp_path / "brief_statewide_internal_risk_factors.png").exists()


# ------------------------------------------------------------------ rendering
@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    res = {}
    for region, audience in (("statewide", "internal"), ("Region 4", "public")):
        res[(region, audience)] = briefs.render(
            {"data_path": str(DATA), "region": region, "audience": audience,
             "figures_dir": None}, out_dir=out, pdf=False, strict=True)
    return out, res


def test_render_writes_audited_self_contained_html(rendered):
    out, res = rendered
    for (region, audience), r in res.items():
        assert r.audit.passed and r.audit.n_tables >= 6 and r.audit.n_figures >= 2
        html = r.html.read_text()
        assert r.notebook.exists()
        assert 'id="dmst-synthetic-banner"' in html
        # code hidden: no input cells, no parameters cell source
        assert "class=\"jp-InputArea" not in html and "briefs.Brief.from_params" not in html
        # readable offline: no external scripts, stylesheets or images
        assert not re.search(r'(src|href)="https?://', html)
        assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) >= 2
        # re-audit of the published files passes (the HTML and the executed notebook)
        thr = 10 if audience == "public" else 5
        assert disclosure.audit(r.html).passed and disclosure.audit(r.html).threshold == thr
        assert disclosure.audit(r.notebook).passed
    # nothing half-written left behind
    assert not list(out.glob(".*")) and not list(out.glob("*.partial"))
    assert not list(out.glob("*.FAILED.txt"))


def test_public_brief_has_no_small_counts_or_ids(rendered, cd):
    out, res = rendered
    html = res[("Region 4", "public")].html.read_text()
    rep = disclosure.audit(res[("Region 4", "public")].html, threshold=10,
                           child_ids=cd.children["child_id"].astype(str))
    assert rep.passed, rep.problems
    assert "&lt;10" in html or "fewer than 10" in html


def _bad_template(tmp_path, code: str, full: bool = False) -> Path:
    """The brief template with ``code`` as an extra cell: after the setup cell (fails fast),
    followed only by the provenance table unless ``full``."""
    nb = nbformat.read(briefs.BRIEF_NOTEBOOK, as_version=4)
    cells = nb.cells
    setup = next(k for k, c in enumerate(cells) if "Brief.from_params" in c.source)
    if full:
        cells = cells + [nbformat.v4.new_code_cell(code)]
    else:
        cells = cells[:setup + 1] + [nbformat.v4.new_code_cell(code),
                                     nbformat.v4.new_code_cell("brief.provenance()")]
    nb.cells = cells
    p = tmp_path / "bad.ipynb"
    nbformat.write(nb, p)
    return p


def test_failed_execution_leaves_no_complete_html(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    stale = out / "brief_statewide_internal.html"
    stale.write_text("<html>an older brief</html>")
    tpl = _bad_template(tmp_path, "raise RuntimeError('boom')")
    with pytest.raises(BriefError, match="RuntimeError"):
        briefs.render({"data_path": str(DATA), "figures_dir": None}, out_dir=out,
                      template=tpl, pdf=False)
    assert not stale.exists() and not list(out.glob("*.html")) and not list(out.glob("*.ipynb"))
    assert "NOT published" in (out / "brief_statewide_internal.FAILED.txt").read_text()
    assert [p.name for p in out.iterdir()] == ["brief_statewide_internal.FAILED.txt"]


def test_audit_failure_refuses_to_publish(tmp_path):
    out = tmp_path / "reports"
    tpl = _bad_template(tmp_path, "print('In Region 2, 3 victims were identified.')")
    with pytest.raises(BriefError, match="disclosure audit failed.*small_count_prose"):
        briefs.render({"data_path": str(DATA), "figures_dir": None}, out_dir=out,
                      template=tpl, pdf=False)
    assert not list(out.glob("*.html"))


def test_render_rejects_missing_data(tmp_path):
    with pytest.raises(BriefError, match="does not exist"):
        briefs.render({"data_path": str(tmp_path / "nope")}, out_dir=tmp_path)


def test_render_batch_one_failure_does_not_stop_others(tmp_path, monkeypatch):
    # a missing bundle makes every brief fail fast; the summary has one row per region
    s = briefs.render_batch(regions="statewide,Region 1", data_path=str(tmp_path / "nope"),
                            out_dir=tmp_path)
    assert s["region"].tolist() == ["statewide", "Region 1"]
    assert (s["status"] == "failed").all() and s["error"].str.contains("does not exist").all()
    assert list(s.columns) == ["region", "status", "path", "seconds", "error"]


def test_cli_errors_are_one_line_and_nonzero(tmp_path):
    from typer.testing import CliRunner

    from dmst_eval.cli import app

    r = CliRunner().invoke(app, ["brief", "--region", "Region 9", "--out-dir", str(tmp_path)])
    assert r.exit_code != 0
    assert "region must be" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["briefs", "--data", str(tmp_path / "nope"), "--regions",
                                 "Region 2", "--out-dir", str(tmp_path)])
    assert r.exit_code == 1 and "1 of 1 briefs failed" in r.output


@pytest.mark.slow
def test_audit_passes_every_region_both_audiences(tmp_path, cd):
    """Full run (make test-slow): render all 7 briefs x 2 audiences in parallel and audit them.
    Fast run (make test): the same sections in process for one more region/audience pair,
    audited as a page (the fast suite also renders two briefs end to end above)."""
    from tests.conftest import FULL_SEEDS

    if FULL_SEEDS:
        for audience in ("internal", "public"):
            s = briefs.render_batch(regions="all", data_path=str(DATA), audience=audience,
                                    out_dir=tmp_path / audience, pdf=False, strict=True)
            assert (s["status"] == "ok").all(), s.to_string()
            for p in s["path"]:
                rep = disclosure.audit(p)
                assert rep.passed and rep.threshold == (10 if audience == "public" else 5)
        return
    ids = cd.children["child_id"].astype(str)
    for region, audience in (("Region 6", "public"),):
        if True:
            b = Brief(cd, {"region": region, "audience": audience, "figures_dir": None},
                      strict=True)
            page = "".join(getattr(b, m)()._repr_html_() for m in
                           ("header", "key_findings", "scorecard", "tracking", "hotspot_map",
                            "risk_factors", "repeat_victimization", "program_effects",
                            "methods", "provenance"))
            p = tmp_path / f"{b.params.slug}.html"
            p.write_text(f"<html><body>{page}</body></html>")
            rep = disclosure.audit(p, child_ids=ids)
            assert rep.passed, (region, audience, rep.problems.head().to_dict("records"))
            assert rep.threshold == b.threshold


# ------------------------------------------------------------------ headless Chromium
_CHECK_JS = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = document.createElement('pre'); out.id = 'dmst-img-check';
  out.textContent = JSON.stringify({
    n: imgs.length,
    loaded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
    banner: !!document.getElementById('dmst-synthetic-banner'),
    bannerVisible: (function () { var b = document.getElementById('dmst-synthetic-banner');
      return !!b && b.getBoundingClientRect().height > 10; })()
  });
  document.body.appendChild(out);
});
</script>"""


def test_rendered_html_in_headless_chromium(rendered, tmp_path):
    from PIL import Image

    from tests.conftest import chromium_or_skip

    chromium_or_skip()  # skipped with a reason without Chromium; fails under .ci/run
    out, res = rendered
    html = res[("statewide", "internal")].html
    # a copy with a small checking script (the published brief itself has no JavaScript)
    probe = tmp_path / "probe.html"
    probe.write_text(html.read_text().replace("</body>", _CHECK_JS + "</body>"))
    import subprocess

    cmd = briefs.chromium_cmd("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(),
                              user_data_dir=str(tmp_path / "profile"))
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<pre id="dmst-img-check">(.*?)</pre>', dom, re.S)
    assert m, "the page did not finish loading in Chromium"
    check = json.loads(m[1].replace("&quot;", '"'))
    assert check["banner"] and check["bannerVisible"]
    assert check["n"] >= 3 and check["loaded"] == check["n"]
    # and a screenshot of the top of the brief: the banner's amber colour is on it
    shot = tmp_path / "shot.png"
    cmd = briefs.chromium_cmd("--window-size=1000,1400", f"--screenshot={shot}", html.as_uri(),
                              user_data_dir=str(tmp_path / "profile2"))
    subprocess.run(cmd, capture_output=True, timeout=120)
    img = Image.open(shot).convert("RGB")
    assert img.size == (1000, 1400)
    px = np.asarray(img).reshape(-1, 3)
    amber_border = np.all(np.abs(px.astype(int) - [0xE6, 0x9F, 0x00]) < 12, axis=1).sum()
    assert amber_border > 500  # the banner's border is drawn
    assert len(np.unique(px, axis=0)) > 50  # not a blank page


def test_load_validated_cache_hits_and_invalidates(tmp_path, monkeypatch):
    import os

    from dmst_eval import casedata

    bundle = _tiny_bundle(tmp_path / "bundle")
    monkeypatch.setenv("DMST_EVAL_CACHE", str(tmp_path / "cache"))
    calls = []
    real = casedata.load
    monkeypatch.setattr(casedata, "load", lambda p: calls.append(p) or real(p))
    a = briefs.load_validated(bundle)
    b = briefs.load_validated(bundle)
    assert len(calls) == 1 and a.data_hash == b.data_hash and b.is_synthetic
    f = bundle / "meta.json"
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a changed file: validate again
    briefs.load_validated(bundle)
    assert len(calls) == 2
    monkeypatch.setenv("DMST_EVAL_CACHE", "off")
    briefs.load_validated(bundle)
    assert len(calls) == 3


def _tiny_bundle(path):
    from dmst_eval.casedata import CaseData

    CaseData.from_frames(
        children=pd.DataFrame({"child_id": ["c1"], "sex": ["female"],
                               "birth_date": pd.to_datetime(["2000-01-01"]),
                               "race_ethnicity": ["Unknown"], "home_town": ["Hartford"],
                               "region": ["Region 4"], "child_welfare_involved": [True]}),
        meta={"source": "synthetic", "study_start": "2008-01-01",
              "study_end": "2012-12-31"}).save(path)
    return path


def test_prevalidate_validates_once_and_the_kernel_side_waits(tmp_path, monkeypatch):
    """render() validates in its own process while the kernel starts; a load_validated call
    arriving meanwhile waits for that result instead of validating the bundle again."""
    import threading

    from dmst_eval import casedata

    bundle = _tiny_bundle(tmp_path / "bundle").resolve()
    monkeypatch.setenv("DMST_EVAL_CACHE", str(tmp_path / "cache"))
    gate, calls = threading.Event(), []
    real = casedata.load

    def slow_load(p):
        calls.append(p)
        gate.wait(10)  # hold the validation until the second caller is waiting
        return real(p)

    monkeypatch.setattr(casedata, "load", slow_load)
    t = briefs._prevalidate(bundle)
    assert list((tmp_path / "cache").glob("*.pending"))  # taken before the thread runs
    got = {}
    waiter = threading.Thread(target=lambda: got.setdefault("cd", briefs.load_validated(bundle)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # waiting on the marker, not validating
    gate.set()
    t.join(10)
    waiter.join(10)
    assert len(calls) == 1 and got["cd"].is_synthetic
    assert not list((tmp_path / "cache").glob("*.pending"))  # marker removed
    briefs._prevalidate(bundle).join(30)
    assert len(calls) == 1  # already cached: not validated again


def test_stale_pending_marker_is_ignored(tmp_path, monkeypatch):
    import subprocess
    import sys

    bundle = _tiny_bundle(tmp_path / "bundle").resolve()
    cache = tmp_path / "cache"
    monkeypatch.setenv("DMST_EVAL_CACHE", str(cache))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cache.mkdir()
    marker = cache / f"{briefs._cache_key(bundle)}.pending"
    marker.write_text(str(dead.pid))  # left behind by a process that died mid-validation
    cd = briefs.load_validated(bundle, wait=30)
    assert cd.is_synthetic and not marker.exists()
    assert (cache / f"{briefs._cache_key(bundle)}.pkl").exists()


def _comparable(html: str) -> str:
    """A rendered brief without what legitimately differs between two runs: papermill's random
    cell ids and the run time."""
    html = re.sub(r'id="cell-id=[0-9a-f-]+"', 'id="cell-id"', html)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<time>", html)


def test_reused_kernel_forgets_the_last_brief_and_gives_the_same_brief(rendered, tmp_path):
    """render_batch runs a worker's briefs in one kernel: the namespace is reset in between,
    and the brief is the same as one from a new kernel."""
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name=briefs.KERNEL)
    km.start_kernel(cwd=str(tmp_path))
    def run(code: str) -> str:
        out = []
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            kc.execute_interactive(code, timeout=60,
                                   output_hook=lambda m: out.append(m["content"].get("text", "")))
        finally:
            kc.stop_channels()
        return "".join(out)

    try:
        run("leftover = 42; brief = 'stale'")
        res = briefs.render({"data_path": str(DATA), "region": "Region 4", "audience": "public",
                             "figures_dir": None}, out_dir=tmp_path / "reused", pdf=False,
                            strict=True, kernel_manager=km)
        seen = run("print('leftover' in dir())")
        assert km.is_alive()  # left running for the next brief
        assert "False" in seen
    finally:
        km.shutdown_kernel(now=True)
    _, fresh = rendered
    assert _comparable(res.html.read_text()) == _comparable(
        fresh[("Region 4", "public")].html.read_text())
