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
    rows = [
        ("package", f"dmst-eval {dmst_eval.__version__}"),
        ("data source", str(meta.get("source", "extract"))),
        ("data hash (SHA-256)", str(meta.get("data_hash") or brief.cd.data_hash)[:16]),
        ("schema version", str(meta.get("schema_version"))),
        ("generator seed", "" if meta.get("seed") is None else str(meta.get("seed"))),
        ("study window", f"{brief.study[0].date()} to {brief.study[1].date()}"),
        *[(k, "" if v is None else str(v)) for k, v in p.as_dict().items()
          if k not in ("data_path", "figures_dir")],
        ("data folder", Path(str(p.data_path)).name),
        ("resolved period", f"{brief.period[0]} to {brief.period[1]}"),
        ("resolved comparison", f"{brief.comparison[0]} to {brief.comparison[1]}"),
        ("suppression threshold", str(brief.threshold)
         + (" (below the usual minimum; allowed explicitly)" if p.low_threshold else "")),
        ("run at (UTC)", brief.started.strftime("%Y-%m-%d %H:%M")),
        ("software", f"Python {platform.python_version()}, pandas {pd.__version__}"),
    ]
    if brief.errors:
        order = {sections.title(n): k for k, n in enumerate(sections.ORDER)}
        errs = sorted(brief.errors, key=lambda e: order.get(e[0], len(order)))
        rows.append(("sections not computed", ", ".join(f"{a} ({b})" for a, b in errs)))
    df = pd.DataFrame(rows, columns=["item", "value"])
    html, t = brief.table(df, caption="Provenance", count_cols=[])
    return Section(None, html, tables={"provenance": t})
