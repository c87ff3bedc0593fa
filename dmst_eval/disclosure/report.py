"""The disclosure report of a batch: what was hidden, how well, at what cost — no hidden value.

It lists, per audience: counts published, hidden as small (primary: below the threshold, zeros
included) and hidden to protect them (secondary, and withheld where the planner's fallback
had to hide counts of any size); the cost of secondary suppression (cells hidden beyond the small ones, as a count
and as a share of what was published, and the measures they come from); and the narrowest
interval the interval audit found for a hidden published count — the bounds a reader could
compute anyway, never the value. Counts never published (complements) are audited too but not
named here: naming them would tell that they are small.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dmst_eval.disclosure.intervals import PRIMARY, WITHHELD, ZERO
from dmst_eval.disclosure.suppression import SuppressionPlan


def _fmt(x: float) -> str:
    return "no upper bound" if x == float("inf") else f"{int(x):,}"


@dataclass
class DisclosureReport:
    """Report of a :class:`~dmst_eval.disclosure.SuppressionPlan` and its interval audit.

    Examples
    --------
    >>> from dmst_eval.disclosure import Ledger, plan, DisclosureReport
    >>> led = Ledger()
    >>> ks = [led.add("victims", n, region=r) for n, r in [(3, "Region 1"), (20, "Region 2"),
    ...                                                     (9, "Region 3")]]
    >>> _ = led.add_sum(led.add("victims", 32), ks)
    >>> rep = DisclosureReport.from_plan(plan(led))
    >>> rep.summary[["audience", "primary", "secondary", "audit"]].to_dict("records")[0]
    {'audience': 'public', 'primary': 2, 'secondary': 1, 'audit': 'passed'}
    >>> print(rep.to_text().splitlines()[2])  # doctest: +ELLIPSIS
    - internal (threshold 5): 4 counts published; hidden: 1 small (primary), 1 to protect ...
    """

    summary: pd.DataFrame
    secondary_by_measure: pd.DataFrame
    seconds: float = 0.0

    @classmethod
    def from_plan(cls, plan: SuppressionPlan) -> "DisclosureReport":
        rows, by_measure = [], []
        audit = plan.audit.summary if plan.audit is not None else pd.DataFrame()
        order = sorted(plan.thresholds, key=lambda a: (-plan.thresholds[a], a))
        for a in order:
            h = plan.hidden.get(a, {})
            pub = len(plan.published.get(a, ()))
            sec = [k for k, v in h.items() if v not in (PRIMARY, ZERO)]  # hidden to protect
            n_withheld = sum(v == WITHHELD for v in h.values())
            row = {"audience": a, "threshold": plan.thresholds[a], "published": pub,
                   "primary": len(h) - len(sec), "secondary": len(sec) - n_withheld,
                   "withheld": n_withheld,
                   "secondary_share": round(len(sec) / pub, 3) if pub else 0.0,
                   "audit": "not run", "protected_checked": 0, "narrowest": ""}
            if len(audit):
                au = audit[audit["reader"] == a]
                row["protected_checked"] = int(len(au))
                row["audit"] = "passed" if au["passed"].all() else \
                    f"FAILED ({int((~au['passed']).sum())})"
                pubd = au[au["published"]]
                if len(pubd):
                    w = pubd["upper"] - pubd["lower"]
                    n = pubd.loc[w.idxmin()]
                    row["narrowest"] = (f"{n['measure']} ({n['region']}, {n['period']}): "
                                        f"{_fmt(n['lower'])} to {_fmt(n['upper'])}")
            rows.append(row)
            for m, cnt in pd.Series([k.measure for k in sec], dtype=object).value_counts() \
                    .sort_index().items():
                by_measure.append({"audience": a, "measure": m, "secondary": int(cnt)})
        return cls(pd.DataFrame(rows),
                   pd.DataFrame(by_measure, columns=["audience", "measure", "secondary"]),
                   plan.seconds)

    def to_text(self) -> str:
        """Plain-text report (printed by ``dmst-eval briefs``)."""
        lines = ["Disclosure report (no hidden value is shown)"]
        for r in self.summary.itertuples(index=False):
            lines.append(
                f"- {r.audience} (threshold {r.threshold}): {r.published:,} counts published; "
                f"hidden: {r.primary:,} small (primary), {r.secondary:,} to protect them "
                f"(secondary)"
                + (f", {r.withheld:,} withheld where no other pattern existed (shown as "
                   "suppressed, which then says nothing about their size)" if r.withheld else "")
                + f"; cost {r.secondary_share:.1%} of published counts. Interval audit "
                f"of {r.protected_checked:,} protected counts: {r.audit}."
                + (f" Narrowest range a reader can work out for a hidden count: {r.narrowest}."
                   if r.narrowest else ""))
        if len(self.secondary_by_measure):
            lines.append("Hidden to protect small counts, by measure:")
            for r in self.secondary_by_measure.itertuples(index=False):
                lines.append(f"  {r.audience}: {r.measure}: {r.secondary}")
        lines.append(f"Planned and audited in {self.seconds:.2f} s.")
        return "\n".join(lines)

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_text` to ``path`` (mode 0600)."""
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.to_text() + "\n")
        return path

    def __str__(self) -> str:
        return self.to_text()
