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
from dmst_eval.briefs import Brief, BriefError, BriefParams, sections
from dmst_eval.briefs.sections import _shared as sh
from dmst_eval.briefs.sections import header, key_findings

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "synthetic"
pytestmark = pytest.mark.xdist_group("briefs")  # renders share the machine: keep them together


# ------------------------------------------------------------------ parameters
def test_stack_lists_what_loading_a_brief_imports(tmp_path):
    """The benchmark's floor imports STACK + VALIDATION_STACK: after them, building a brief
    (loading and validating the default data) imports no other third-party package."""
    import subprocess
    import sys

    code = (
        "import importlib, sys\n"
        "from dmst_eval.briefs import Brief\n"
        "from dmst_eval.briefs.context import STACK, VALIDATION_STACK\n"
        "for m in STACK + VALIDATION_STACK: importlib.import_module(m)\n"
        "before = set(sys.modules)\n"
        f"Brief.from_params(data_path={str(DATA)!r}, figures_dir=None)\n"
        "top = lambda mods: {m.split('.')[0] for m in mods}\n"
        "print(sorted(top(set(sys.modules)) - top(before) - set(sys.stdlib_module_names)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


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
    rr, lo, hi = sh.poisson_ratio_ci(22, 15, 1096, 1096)
    ci = stats.binomtest(22, 37).proportion_ci(method="exact")
    assert rr == pytest.approx(22 / 15)
    assert lo == pytest.approx(ci.low / (1 - ci.low))
    assert hi == pytest.approx(ci.high / (1 - ci.high))


# ------------------------------------------------------------------ sections (in process)
@pytest.fixture(scope="module")
def cd(default_cd):
    return default_cd


@pytest.fixture(scope="module")
def brief_public(cd, with_plan):
    b = with_plan(Brief(cd, {"audience": "public", "figures_dir": None}, strict=True))
    return b, {m: b.section(m) for m in sections.ORDER}


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
    assert first.startswith("In January 2023 to December 2025, "
                            + disclosure.count_phrase(n, 10) + " children")


def test_risk_finding_names_the_factor_in_plain_words(brief_public):
    # rule (issue 15): the largest odds ratio above 1 whose interval excludes 1, never the
    # largest |log OR|; and it says these are odds of being identified
    b, secs = brief_public
    orr = sh.risk_model(b).odds_ratios
    orr = orr[~orr.term.isin(["intercept"])]
    up = orr[(orr.odds_ratio > 1) & (orr.ci_lower > 1)]
    top = up.loc[up.odds_ratio.astype(float).idxmax(), "term"]
    html = secs["key_findings"].html
    assert f"Among child-welfare-involved children, {sh.prose(top)} had the largest" in html
    assert "odds of being identified as a victim" in html
    assert sh.prose("male") == "being male" and sh.prose("lgbtq").startswith("identif")


def test_program_finding_rounds_without_negative_zero(cd):
    b = Brief(cd, {"figures_dir": None})
    b.cache[("section", "program_effects")] = briefs.Section("Program effects", "")
    b.cache["service_effect"] = (-0.004, -0.291, -0.004)
    s = key_findings.finding_program(b)
    assert re.search(r"(?<![\w.])[-−]0(?![.\d])", s) is None  # no signed zero
    assert "0.4 percentage points lower (95% CI -29 to -0.4)" in s
    b.cache["service_effect"] = (-0.006, -0.272, 0.251)  # interval spans 0
    assert "no clear difference (-1 percentage point, 95% CI -27 to 25)" in \
        key_findings.finding_program(b)
    b.cache["service_effect"] = (-0.052, -0.101, -0.003)
    assert "5 percentage points lower (95% CI -10 to -0.3)" in key_findings.finding_program(b)


def test_banner_only_for_synthetic_data(cd):
    from dmst_eval.casedata import CaseData

    assert "SYNTHETIC DATA" in Brief(cd, {"figures_dir": None}).section("header").html
    real = CaseData(dict(cd.tables), meta=dict(cd.meta, source="extract"))
    assert header.banner(Brief(real, {"figures_dir": None})) == ""
    assert "SYNTHETIC" not in Brief(real, {"figures_dir": None}).section("header").html


def test_failing_section_shows_note_without_data(cd, monkeypatch):
    b = Brief(cd, {"figures_dir": None}, strict=False)
    monkeypatch.setattr(sh, "risk_model", lambda b: (_ for _ in ()).throw(KeyError("C0001")))
    with pytest.warns(UserWarning, match="Risk factors"):
        sec = b.section("risk_factors")
    assert sec.error == "KeyError" and "C0001" not in sec.html
    assert ("Risk factors", "KeyError") in b.errors


def test_figures_saved_to_figures_dir(cd, tmp_path):
    b = Brief(cd, {"figures_dir": str(tmp_path), "region": "statewide"}, strict=True)
    b.section("risk_factors")
    assert (tmp_path / "brief_statewide_internal_risk_factors.png").exists()


# ------------------------------------------------------------------ rendering
@pytest.fixture(scope="module")
def rendered(rendered_briefs):
    """Statewide internal and Region 4 public, rendered once per session (conftest)."""
    return rendered_briefs


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


def _bad_template(tmp_path, code: str) -> Path:
    """The brief template's parameters cell and ``code``: what the runner does with a failing
    or leaking notebook does not depend on the brief's own cells (and no stack is imported)."""
    nb = nbformat.read(briefs.BRIEF_NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
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
    assert list(s.columns) == ["region", "audience", "status", "path", "seconds", "error"]


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
            page = "".join(b.section(m)._repr_html_() for m in sections.ORDER)
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

    chromium_or_skip()
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
    packed = (px[:, 0].astype(np.int32) << 16) | (px[:, 1].astype(np.int32) << 8) | px[:, 2]
    assert len(np.unique(packed)) > 50  # not a blank page (colours as one integer each)
