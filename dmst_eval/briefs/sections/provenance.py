"""Provenance: package version, data hash, parameters and run time (every brief ends with it)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dmst_eval.briefs.context import Section, section

TITLE = "Provenance"


@section(TITLE)
def build(brief) -> Section:
    import platform

    import dmst_eval
    from dmst_eval.briefs import sections

    meta = brief.cd.meta
    p = brief.params
    data_hash = str(meta.get("data_hash") or brief.cd.data_hash)
    rows = [
        ("Package", f"dmst-eval {dmst_eval.__version__}"),
        ("Data source", str(meta.get("source") or "extract")),
        *_source_rows(brief),
        ("Data hash (SHA-256)", data_hash),
        ("Schema version", meta.get("schema_version")),
        ("Generator seed", meta.get("seed")),
        ("Study window", f"{brief.study[0].date()} to {brief.study[1].date()}"),
        ("Region", brief.scope),
        ("Reporting period", f"{brief.period[0]} to {brief.period[1]}"),
        ("Comparison period", f"{brief.comparison[0]} to {brief.comparison[1]}"),
        ("RBA baseline years", _baseline(brief)),
        ("Audience", brief.audience),
        ("Suppression threshold", f"{brief.threshold}"
         + (" (below the usual minimum; allowed explicitly)" if p.low_threshold
            else " (set explicitly)" if p.suppression_threshold is not None
            else f" (default for an {brief.audience} brief)")),
        # parameters set explicitly, by their names (the ones above are shown resolved)
        *[(k, v) for k, v in p.as_dict().items()
          if k not in ("data_path", "figures_dir", "region", "audience", "suppression_threshold")
          and v not in (None, False)],
        ("Run at (UTC)", brief.started.strftime("%Y-%m-%d %H:%M")),
        ("Software", f"Python {platform.python_version()}, pandas {pd.__version__}"),
    ]
    if brief.errors:
        order = {sections.title(n): k for k, n in enumerate(sections.ORDER)}
        errs = sorted(brief.errors, key=lambda e: order.get(e[0], len(order)))
        rows.append(("Sections not computed", ", ".join(f"{a} ({b})" for a, b in errs)))
    # no blank rows: an item the data do not record is left out
    rows = [(k, str(v)) for k, v in rows if v is not None and str(v).strip()]
    df = pd.DataFrame(rows, columns=["item", "value"])
    html, t = brief.table(df, caption=None, count_cols=[])
    html = html.replace('<table class="dmst-table"', '<table class="dmst-table dmst-provenance"',
                        1)
    return Section(None, html, tables={"provenance": t})


def _source_rows(brief) -> list[tuple[str, str | None]]:
    """Where the data were read from: a folder's name, or the kind of database and its name
    (never a URL, user, host or password), and the mapping file, if one was used."""
    origin = getattr(brief.cd, "origin", None) or {}
    kind = origin.get("kind", "folder")
    if kind in ("folder", "memory") and not origin.get("mapping"):
        return [("Data folder", Path(str(brief.params.data_path)).name)]
    label = origin.get("source") or kind
    if "name" not in origin:  # loaded in the kernel itself: a (masked) URL, shown by kind + name
        from dmst_eval.sources import describe_source, is_url

        label = describe_source(label)["label"] if is_url(label) else kind
    rows = [("Data read from", label)]
    if origin.get("mapping"):
        sha = origin.get("mapping_sha256")
        rows.append(("Mapping file", origin["mapping"]
                     + (f" (SHA-256 {sha[:16]}…)" if sha else "")))
    return rows


def _baseline(brief) -> str | None:
    """The scorecard's baseline years, when the scorecard was computed."""
    sc = brief.cache.get("scorecard")
    return None if sc is None else f"{sc.baseline[0]}–{sc.baseline[1]}"
