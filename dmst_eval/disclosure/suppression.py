"""Secondary suppression over the ledger, for a whole batch at once: the suppression plan.

:func:`plan` decides, for every audience, which published counts a batch hides:

1. **Primary**: every published count from 1 to ``threshold − 1`` (shown as ``"<threshold"``).
2. **Consistency across audiences**: audiences are planned from the highest threshold down
   (public, then internal). The internal reader also holds the public briefs, so a count shown
   publicly can be hidden internally only by hiding it publicly too; the internal plan does
   that (as "suppressed" in both) only when no count hidden for the public alone will do.
3. **Secondary**: while the interval audit (:mod:`dmst_eval.disclosure.intervals`) finds a
   protected count that a reader can narrow below the rule, one more shown count is hidden
   (shown as ``"suppressed"``), chosen among the counts linked to the failing one:

   * counts at or above the audience's threshold (shown as ``"suppressed"``, so a reader knows
     such a cell is at least the threshold, and the audit assumes so) and, as a last resort, a
     zero (shown as ``"<threshold"``, which therefore means 0 to threshold − 1); never a count
     registered with ``suppressible=False`` (a population, an official total);
   * first the counts in the relation that pins the failing count (the largest dual of the
     linear-programming relaxation), then the other counts sharing a relation with it, then
     any count in its connected component;
   * **cost**: within each group, the smallest count first (the cell's value is its cost, as
     the default weights of R ``sdcTable``; ties by label), headline counts registered with a
     higher ``priority`` last. The first of the three cheapest
     candidates that alone protects the failing count is taken; if none does, the cheapest is
     taken and the audit is run again. So the plan hides few cells, and small ones.

   If a failing count has no candidate left, the **fallback** shows the hidden counts of the
   relation that pins it (then of all its relations, then of its connected group) as
   "suppressed" *without* the meaning "at least the threshold" (kind ``"withheld"``: small
   counts among them lose their "<t" marker, so a reader learns nothing from the markers
   there). If even that changes nothing, **no secondary pattern exists** and
   :class:`~dmst_eval.errors.DisclosureError` is raised, naming the count and the relation.

The plan is deterministic: it depends only on the ledger (so on the data and the standard
batch), never on which brief asks for it or in which order briefs are rendered.

Examples
--------
>>> from dmst_eval.disclosure import Ledger, plan
>>> led = Ledger()
>>> rs = [led.add("victims", n, region=r, period="2024") for n, r in
...       [(3, "Region 1"), (20, "Region 2"), (9, "Region 3")]]
>>> tot = led.add("victims", 32, period="2024")
>>> _ = led.add_sum(tot, rs, name="regions add up to statewide")
>>> p = plan(led, {"internal": 5})
>>> sorted((k.region, kind) for k, kind in p.hidden["internal"].items())
[('Region 1', 'primary'), ('Region 3', 'secondary')]
>>> p.display(rs[2], "internal")
'suppressed'
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dmst_eval.disclosure.intervals import (PRIMARY, SECONDARY, WITHHELD, ZERO,
                                            IntervalAuditResult,
                                            Reader, audit_row,
                                            audit_reader, sensitive_cells)
from dmst_eval.disclosure.ledger import CellKey, Ledger, as_key
from dmst_eval.disclosure.tables import DEFAULT_THRESHOLDS, SUPPRESSED
from dmst_eval.errors import DisclosureError

#: Format version of a plan file.
PLAN_VERSION = 1
_MAX_ROUNDS = 10_000


@dataclass
class SuppressionPlan:
    """Which published counts each audience hides, and why (primary / secondary).

    Attributes
    ----------
    thresholds : dict
        audience → threshold.
    hidden : dict
        audience → {CellKey: "primary" | "secondary" | "zero" | "withheld"}.
    published : dict
        audience → set of CellKey the batch publishes to it.
    audit : IntervalAuditResult or None
        The interval audit of the final plan.
    seconds : float
        Time taken to plan and audit.
    """

    thresholds: dict
    hidden: dict
    published: dict = field(default_factory=dict)
    audit: IntervalAuditResult | None = None
    seconds: float = 0.0

    def status(self, key, audience: str) -> str:
        """"shown", "primary", "secondary" — or "unplanned" for a cell the plan does not know."""
        key = as_key(key)
        if key in self.hidden.get(audience, {}):
            return self.hidden[audience][key]
        if key in self.published.get(audience, set()):
            return "shown"
        return "unplanned"

    def display(self, key, audience: str, value=None) -> str:
        """The text a brief shows for a cell: the number, ``"<t"`` or ``"suppressed"``.

        ``value`` is needed for a shown cell. A cell the plan does not know raises
        :class:`DisclosureError`: every published count must be in the batch ledger.
        """
        st = self.status(key, audience)
        if st in ("primary", "zero"):
            return f"<{self.thresholds[audience]}"
        if st in (SECONDARY, WITHHELD):
            return SUPPRESSED
        if st == "unplanned":
            raise DisclosureError(f"count {as_key(key).label()!r} is not in the batch plan for "
                                  f"the {audience} audience: register it in the ledger")
        return f"{int(value):,}"

    def is_hidden(self, key, audience: str) -> bool:
        return self.status(key, audience) in (PRIMARY, SECONDARY, ZERO, WITHHELD)

    @property
    def summary(self) -> pd.DataFrame:
        """Cells published, hidden primary (small counts, zeros included), hidden secondary
        and withheld (the planner's fallback), per audience."""
        rows = []
        for a, t in self.thresholds.items():
            h = self.hidden.get(a, {})
            rows.append({"audience": a, "threshold": t,
                         "published": len(self.published.get(a, ())),
                         "primary": sum(v in (PRIMARY, ZERO) for v in h.values()),
                         "secondary": sum(v == SECONDARY for v in h.values()),
                         "withheld": sum(v == WITHHELD for v in h.values())})
        return pd.DataFrame(rows)

    # -- a private file, no pickle ------------------------------------------------------------
    def to_json(self, path: str | Path, fingerprint: str = "") -> Path:
        """Write the plan as JSON (mode 0600). It holds which cells are hidden, never a value."""
        import os

        path = Path(path)
        doc = {"version": PLAN_VERSION, "fingerprint": fingerprint,
               "thresholds": self.thresholds,
               "hidden": {a: [[*k, v] for k, v in sorted(h.items())]
                          for a, h in self.hidden.items()},
               "published": {a: [list(k) for k in sorted(p)]
                             for a, p in self.published.items()}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        return path

    @classmethod
    def from_json(cls, path: str | Path, fingerprint: str | None = None) -> "SuppressionPlan":
        """Read a plan written by :meth:`to_json` (checks the data fingerprint if given)."""
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if doc.get("version") != PLAN_VERSION:
            raise DisclosureError(f"plan file {Path(path).name}: unknown version")
        if fingerprint is not None and doc.get("fingerprint") != fingerprint:
            raise DisclosureError(f"plan file {Path(path).name} was made for other data or "
                                  "parameters")
        hidden = {a: {CellKey(*r[:3]): r[3] for r in rows} for a, rows in doc["hidden"].items()}
        pub = {a: {CellKey(*r) for r in rows} for a, rows in doc["published"].items()}
        return cls({a: int(t) for a, t in doc["thresholds"].items()}, hidden, pub)


def plan(ledger: Ledger, thresholds: dict | None = None, secondary: bool = True,
         audit: bool = True) -> SuppressionPlan:
    """Primary and secondary suppression for every audience of a batch (see module doc).

    Parameters
    ----------
    ledger : Ledger
        Everything the batch publishes.
    thresholds : dict, optional
        audience → threshold; default ``{"internal": 5, "public": 10}``.
    secondary : bool
        ``False`` hides only the small counts themselves (to show what a reader could work out;
        never for publishing).
    audit : bool
        Keep the interval audit on the plan (``plan.audit``): each protected count's range as
        found when it was last checked (later hiding only widens ranges, so these are sound;
        :func:`~dmst_eval.disclosure.interval_audit` recomputes them from scratch).

    Raises
    ------
    DisclosureError
        No secondary pattern protects some count (a relation made only of counts that may not
        be hidden).
    """
    t0 = time.perf_counter()
    thresholds = dict(thresholds or DEFAULT_THRESHOLDS)
    for a, t in thresholds.items():
        if isinstance(t, bool) or int(t) != t or t < 1:
            raise DisclosureError(f"threshold for {a!r} must be a whole number >= 1, got {t!r}")
    order = sorted(thresholds, key=lambda a: (-thresholds[a], a))
    hidden: dict = {}
    published = {a: ledger.published(a) for a in thresholds}
    rows = []
    for a in order:
        t = thresholds[a]
        h = {k: PRIMARY for k in published[a] if 1 <= ledger.value(k) < t}
        hidden[a] = h
        if secondary:
            rows += _protect(ledger, thresholds, hidden, a, published)
    p = SuppressionPlan(thresholds, hidden, published)
    if audit:
        if not secondary:
            rows = []
            for a in order:
                rows += audit_reader(Reader(ledger, thresholds, hidden, a))
        cols = ["reader", "measure", "region", "period", "published", "lower", "upper",
                "target_upper", "passed", "pinned_by"]
        p.audit = IntervalAuditResult(pd.DataFrame(rows, columns=cols))
    p.seconds = time.perf_counter() - t0
    return p


def _protect(ledger: Ledger, thresholds: dict, hidden: dict, aud: str, published: dict) -> None:
    t = thresholds[aud]
    reader = Reader(ledger, thresholds, hidden, aud)
    # a count a less-privileged reader sees as a number is hidden from this one only by
    # hiding it from that reader too (as "suppressed" there: so only counts at or above that
    # threshold); such counts are taken last
    shown_elsewhere: dict = {}
    for b, tb in thresholds.items():
        if b != aud and tb > t and b in hidden:
            for k in published[b] - set(hidden[b]):
                shown_elsewhere.setdefault(k, []).append(b)
    def fits(k, b):  # hidden from audience b as "suppressed" (>= t) or a zero as "<t"
        v = ledger.value(k)
        return v == 0 or v >= thresholds[b]

    eligible = {k for k in published[aud] if ledger.suppressible(k) and fits(k, aud)
                and all(fits(k, b) for b in shown_elsewhere.get(k, ()))}
    shared = {k for k in eligible if k in shown_elsewhere}

    def hide(k):
        kind = ZERO if ledger.value(k) == 0 else SECONDARY
        hidden[aud][k] = kind
        for b in shown_elsewhere.get(k, ()):
            hidden[b][k] = kind
        reader.update(k, thresholds, hidden)

    def unhide(k):
        del hidden[aud][k]
        for b in shown_elsewhere.get(k, ()):
            del hidden[b][k]
        reader.update(k, thresholds, hidden)

    todo = sensitive_cells(ledger, t)
    first = reader.intervals(todo)  # one model per connected group of cells
    rounds = 0
    rows = []
    while todo:
        key = todo.pop(0)
        ok, iv = reader.protected(key, first.pop(key, None))
        if not ok and rounds:  # counts hidden since may have widened it: look again
            ok, iv = reader.protected(key)
        while not ok:
            rounds += 1
            if rounds > _MAX_ROUNDS:
                raise DisclosureError("secondary suppression did not converge")
            cands = _candidates(reader, key, iv.pinned_by, eligible, hidden[aud], shared)
            if not cands and _withhold(reader, key, iv.pinned_by, hidden, thresholds):
                ok, iv = reader.protected(key)
                continue
            if not cands:
                raise DisclosureError(
                    f"no secondary suppression pattern protects {key.label()!r} for the {aud} "
                    f"audience: it is pinned by {iv.pinned_by or 'the shown numbers'!r} and "
                    "every other count there must be shown")
            pick = None
            for c in cands[:3]:
                # the witnesses of the state before the trial hold again once it is undone
                snap = (dict(reader.wlo), dict(reader.whi))
                hide(c)
                ok, iv2 = reader.protected(key)
                if ok:
                    pick = c
                    iv = iv2
                    break
                unhide(c)
                reader.wlo, reader.whi = snap
            if pick is None:
                hide(cands[0])
                ok, iv = reader.protected(key)
        rows.append(audit_row(reader, iv, True))
    # hiding a count (or a zero) only removes constraints, so every interval found here can
    # only widen later: the rows are the final interval audit of this reader (bounds a reader
    # can work out are at least this wide)
    return rows


def _withhold(reader: Reader, key, pinned_by: str, hidden: dict, thresholds: dict) -> bool:
    """The fallback when no count is left to hide: the hidden counts of the relation that pins
    ``key`` (then, if that changes nothing, of every relation of ``key``, then of its whole
    connected group), ``key`` included, in every audience, are shown as "suppressed" *without*
    the usual meaning "at least the threshold"
    (:data:`~dmst_eval.disclosure.intervals.WITHHELD`): small counts among them lose their
    "<t" marker, so markers cannot pin the others. Returns False when there is nothing left to
    change (no pattern exists)."""
    mine = [reader.relations[i] for i in reader.by_cell.get(key, [])]
    levels = ([r for r in mine if r.name == pinned_by], mine,
              [reader.relations[i] for i in reader.component(key)[1]])
    for rels in levels:
        changed = False
        for r in rels:
            for k in r.coefs:
                for h in hidden.values():
                    if k in h and h[k] != WITHHELD:
                        h[k] = WITHHELD
                        changed = True
        if changed:
            reader.forget()
            reader.refresh(thresholds, hidden)
            return True
    return False


def _candidates(reader: Reader, key, pinned_by: str, eligible: set, hidden: dict,
                shared: set = frozenset()) -> list:
    def ok(k):
        return k in eligible and k not in hidden and reader.known(k)

    def cost(k):
        v = reader.ledger.value(k)
        return (k in shared, reader.ledger.priority(k), v == 0, v, k)

    groups = []
    mine = [reader.relations[i] for i in reader.by_cell.get(key, [])]
    cells, rels = reader.component(key)  # once: a breadth-first search over the relations
    pinned = [r for r in mine if r.name == pinned_by] or \
        [reader.relations[i] for i in rels if reader.relations[i].name == pinned_by]
    groups.append({k for r in pinned for k in r.coefs if ok(k)})
    groups.append({k for r in mine for k in r.coefs if ok(k)})
    groups.append({k for i in rels for k in reader.relations[i].coefs if ok(k)})
    out, seen = [], set()
    for g in groups:
        for k in sorted(g - seen, key=cost):
            out.append(k)
            seen.add(k)
    return out
