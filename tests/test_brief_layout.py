"""The brief as a publication: title page block, table of contents matching the section
headings, a unique <title>, definitions, limitations, provenance, and the printed PDF (headless
Chromium) with page numbers and the synthetic-data banner on every page."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from dmst_eval import briefs
from dmst_eval.briefs import Brief, sections
from dmst_eval.briefs.sections import definitions, header

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "synthetic"
pytestmark = pytest.mark.xdist_group("briefs")


@pytest.fixture(scope="module")
def cd(default_cd):
    return default_cd


@pytest.fixture(scope="module")
def printed(rendered_briefs):
    """One brief rendered end to end (statewide, internal) and printed to PDF (rendered once
    per session, conftest)."""
    from tests.conftest import chromium_or_skip

    chromium_or_skip()
    r = rendered_briefs[1][("statewide", "internal")]
    assert r.pdf is not None and r.pdf.exists(), r
    return r


def _soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def test_title_block_and_contents_match_the_section_headings(rendered_briefs):
    """On the published page of a public regional brief (rendered end to end, conftest)."""
    import datetime as dt

    soup = _soup(rendered_briefs[1][("Region 4", "public")].html.read_text())
    facts = {t.get_text(strip=True): t.find_next_sibling("dd").get_text(strip=True)
             for t in soup.select("dl.dmst-titlemeta dt")}
    assert facts["Region"] == "DCF Region 4"
    assert facts["Reporting period"] == "January 2023 to December 2025"
    assert facts["Audience"] == "Public"
    prov = soup.select_one("table.dmst-provenance")
    run = {r.select("th, td")[0].get_text(strip=True): r.select("th, td")[1].get_text(strip=True)
           for r in prov.select("tr") if len(r.select("th, td")) == 2}["Run at (UTC)"]
    d = dt.datetime.strptime(run, "%Y-%m-%d %H:%M")
    assert facts["Published"] == f"{d.day} {d.strftime('%B %Y')}"
    assert "Department of Children and Families" in soup.select_one(".dmst-agency").get_text()
    toc = [(a["href"], a.get_text(strip=True)) for a in soup.select("nav.dmst-toc a")]
    heads = [(f"#{h.parent['id']}", h.get_text(strip=True)) for h in soup.select("h2.dmst-h2")]
    assert toc == heads
    assert [t for _, t in toc] == [sections.title(n) for n in sections.ORDER
                                   if sections.title(n)]
    assert {"Definitions", "Limitations", "Provenance"} <= {t for _, t in toc}


def test_definitions_cover_the_terms_a_reader_meets():
    terms = " ".join(t for t, _ in definitions.TERMS)
    for term in ("AWOL", "Congregate care", "MDT", "Confirmed", "Polarity", "Turn the curve",
                 "Target", "Baseline", "Suppressed", "Restore & Recovery", "Repeat victim"):
        assert term in terms, term
    for term in ("Odds ratio", "Rate ratio", "Kaplan–Meier", "Empirical-Bayes", "Hotspot",
                 "Weighted comparison", "Rank interval"):  # met in the analysis sections
        assert term in terms, term


def test_limitations_name_under_identification_completeness_and_confirmed(cd):
    b = Brief(cd, {"figures_dir": None})
    text = _soup(b.section("limitations").html).get_text(" ")
    assert "Under-identification" in text and "Data completeness" in text
    assert "The meaning of \"confirmed\"" in text and "not a court finding" in text


def test_provenance_is_a_clean_two_column_table_with_the_full_hash(cd):
    b = Brief(cd, {"figures_dir": None})
    sec = b.section("provenance")
    t = sec.tables["provenance"]
    assert list(t.columns) == ["item", "value"]
    assert (t["value"].astype(str).str.strip() != "").all()      # no blank rows
    assert t["item"].is_unique
    assert sum("threshold" in i.lower() for i in t["item"]) == 1  # one threshold line
    h = t.set_index("item").loc["Data hash (SHA-256)", "value"]
    assert re.fullmatch(r"[0-9a-f]{64}", h) and h == str(cd.meta.get("data_hash") or
                                                          cd.data_hash)


def test_unique_titles(cd):
    titles = {header.document_title(Brief(cd, {"region": r, "audience": a,
                                               "figures_dir": None}))
              for r in ("statewide", "Region 1", "Region 4") for a in ("internal", "public")}
    assert len(titles) == 6


def test_rendered_brief_has_its_own_title_and_passes_the_audit(printed):
    html = printed.html.read_text()
    title = _soup(html).title.get_text()
    assert title == ("DMST evaluation brief — Connecticut (statewide) — January 2023 to "
                     "December 2025 — internal")
    assert printed.audit.passed


def test_pdf_has_page_numbers_and_the_banner_on_every_page(printed, tmp_path):
    from tests.conftest import require_tool

    pdftotext = require_tool(shutil.which("pdftotext"), "pdftotext (Debian poppler-utils)",
                             "DMST_EVAL_REQUIRE_BROWSER")
    pdf = printed.pdf
    info = subprocess.run([shutil.which("pdfinfo") or "pdfinfo", str(pdf)],
                          capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info)[1])
    assert pages >= 4
    first_words = None
    for p in range(1, pages + 1):
        text = subprocess.run([pdftotext, "-f", str(p), "-l", str(p), "-layout", str(pdf), "-"],
                              capture_output=True, text=True, check=True).stdout
        assert f"Page {p} of {pages}" in text, p
        assert header.BANNER_SHORT in " ".join(text.split()), p
        if p == 1:
            first_words = " ".join(text.split())
    # page 1 carries the title block, the contents and the start of the findings
    assert "Published" in first_words and "Contents" in first_words
    assert "Key findings" in first_words.split("Contents", 1)[1].split("Provenance", 1)[1]


def test_printed_scorecard_text_is_readable(printed):
    """The scorecard tables print at 8 pt or more (the old brief printed them at about 6 pt):
    every word on the scorecard's pages is at least 9 pt tall (ascent + descent of 7.7 pt
    type)."""
    from tests.conftest import require_tool

    pdftotext = require_tool(shutil.which("pdftotext"), "pdftotext (Debian poppler-utils)",
                             "DMST_EVAL_REQUIRE_BROWSER")
    out = subprocess.run([pdftotext, "-bbox", str(printed.pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    word = re.compile(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">'
                      r"([^<]*)</word>")
    pages = re.split(r"<page ", out)[1:]
    card = [p for p in pages if "did we do it?" in " ".join(w[3] for w in word.finditer(p))]
    assert card, "no scorecard page found"
    heights = [float(m[2]) - float(m[1]) for p in card for m in word.finditer(p)]
    assert len(heights) > 200 and min(heights) >= 9.0, min(heights)
