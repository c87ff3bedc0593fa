"""The interval audit: how far can a reader narrow each hidden count? (linear programming)

For every count that must stay hidden, the audit minimises and maximises it over all integer,
non-negative values that agree with everything the reader sees — every number shown, every
marker (``"<5"`` means 1 to 4; ``"suppressed"`` means at least the threshold, since secondary
cells are chosen among counts at or above it) and every relation in the
:class:`~dmst_eval.disclosure.Ledger` (regions add to statewide, years to the period, n plus
complement to of, shares and rates shown to some digits). This is the audit τ-ARGUS and R's
``sdcTable`` run after cell suppression; the problems are solved with HiGHS
(:func:`scipy.optimize.milp`).

A hidden count **passes** when its feasible range still covers 1 to ``threshold − 1`` — the
whole range the marker ``"<threshold"`` already tells (zeros are shown as 0, so a hidden count
is known to be at least 1). A count that is never shown but follows from shown ones (the
complement of a share) must pass the same test.

Readers: an internal reader also holds the public briefs, so the internal audit uses what both
audiences show; a public reader only the public briefs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, sparse

from dmst_eval.disclosure.ledger import CellKey, Ledger
from dmst_eval.errors import DisclosureError

PRIMARY, SECONDARY = "primary", "secondary"


class Reader:
    """What one reader knows: a box per cell and the relations shown to them.

    ``hidden`` maps audience → {cell: "primary" | "secondary"}; a published cell not in it is
    shown as its number.
    """

    def __init__(self, ledger: Ledger, thresholds: dict, hidden: dict, reader: str):
        self.ledger = ledger
        self.reader = reader
        self.t = int(thresholds[reader])
        self.visible = [a for a, t in thresholds.items() if t >= self.t and a in hidden]
        self.lo: dict = {}
        self.hi: dict = {}
        for key in ledger:
            self._box(key, thresholds, hidden)
        vis = set(self.visible)
        self.relations = [r for r in ledger.relations if r.audiences & vis]
        self.by_cell: dict = {}
        for i, r in enumerate(self.relations):
            for k in r.coefs:
                self.by_cell.setdefault(k, []).append(i)
        total = sum(ledger.value(k) for k in ledger)
        self.cap = float(10 * (total + 1))  # a finite "no upper bound" for the solver

    def _box(self, key, thresholds, hidden) -> None:
        lo, hi = 0.0, math.inf
        auds = self.ledger.audiences(key)
        v = self.ledger.value(key)
        for a in self.visible:
            if a not in auds:
                continue
            kind = hidden[a].get(key)
            if kind is None:
                lo = hi = float(v)
            elif kind == PRIMARY:
                lo, hi = max(lo, 1.0), min(hi, thresholds[a] - 1.0)
            else:
                lo = max(lo, float(thresholds[a]))
        self.lo[key], self.hi[key] = lo, hi

    def update(self, key, thresholds, hidden) -> None:
        self._box(key, thresholds, hidden)

    def known(self, key) -> bool:
        return self.lo[key] == self.hi[key]

    def component(self, key) -> tuple[list, list]:
        """Unknown cells linked to ``key`` through relations, and those relations."""
        seen, rels, todo = {key}, set(), [key]
        while todo:
            k = todo.pop()
            for i in self.by_cell.get(k, ()):
                if i in rels:
                    continue
                rels.add(i)
                for k2 in self.relations[i].coefs:
                    if k2 not in seen and not self.known(k2):
                        seen.add(k2)
                        todo.append(k2)
        return sorted(seen), sorted(rels)

    def interval(self, key) -> "CellInterval":
        """Smallest and largest integer value of ``key`` consistent with what the reader sees."""
        lo0, hi0 = self.lo[key], self.hi[key]
        if lo0 == hi0:
            return CellInterval(key, lo0, hi0, "shown")
        cells, rels = self.component(key)
        if not rels:
            return CellInterval(key, lo0, hi0, "")
        idx = {k: j for j, k in enumerate(cells)}
        rows, cols, vals, lb, ub = [], [], [], [], []
        for r_i, i in enumerate(rels):
            rel = self.relations[i]
            const = 0.0
            for k, c in rel.coefs.items():
                if k in idx:
                    rows.append(r_i)
                    cols.append(idx[k])
                    vals.append(c)
                else:
                    const += c * self.lo[k]
            lb.append(rel.lower - const)
            ub.append(rel.upper - const)
        a = sparse.csr_array((vals, (rows, cols)), shape=(len(rels), len(cells)))
        tol = 1e-7
        cons = optimize.LinearConstraint(a, np.array(lb) - tol, np.array(ub) + tol)
        blo = np.array([self.lo[k] for k in cells])
        bhi = np.array([min(self.hi[k], self.cap) for k in cells])
        bounds = optimize.Bounds(blo, bhi)
        integ = np.ones(len(cells))
        j = idx[key]
        out = []
        for sign in (1.0, -1.0):
            c = np.zeros(len(cells))
            c[j] = sign
            res = optimize.milp(c, constraints=cons, bounds=bounds, integrality=integ,
                                options={"presolve": True})
            if res.status != 0 or res.x is None:
                raise DisclosureError(f"interval audit: the solver could not bound "
                                      f"{key.label()!r} ({res.message}); the published numbers "
                                      "may be inconsistent")
            out.append(round(float(res.x[j])))
        lo, hi = out
        hi = math.inf if hi >= self.cap - 0.5 else float(hi)
        pin = ""
        if lo > 1 or hi < self.t - 1:
            pin = self._pin(key, cells, rels, a, lb, ub, blo, bhi, lo > 1)
        return CellInterval(key, float(lo), hi, pin)

    def _pin(self, key, cells, rels, a, lb, ub, blo, bhi, low_side: bool) -> str:
        """The relation that pins ``key`` (largest dual of the LP relaxation)."""
        j = cells.index(key)
        c = np.zeros(len(cells))
        c[j] = 1.0 if low_side else -1.0
        a = a.toarray()
        a_ub = np.vstack([a, -a])
        b_ub = np.concatenate([np.array(ub), -np.array(lb)])
        fin = np.isfinite(b_ub)
        res = optimize.linprog(c, A_ub=a_ub[fin], b_ub=b_ub[fin],
                               bounds=list(zip(blo, bhi)), method="highs")
        names = [self.relations[i].name for i in rels] * 2
        names = [n for n, f in zip(names, fin) if f]
        if res.status == 0 and res.ineqlin is not None:
            m = np.abs(res.ineqlin.marginals)
            if m.size and m.max() > 1e-9:
                return names[int(np.argmax(m))]
        mine = [self.relations[i].name for i in self.by_cell.get(key, [])]
        return mine[0] if mine else (names[0] if names else "")


@dataclass
class CellInterval:
    key: CellKey
    lower: float
    upper: float
    pinned_by: str


def sensitive_cells(ledger: Ledger, threshold: int) -> list:
    """Cells whose true value is 1 .. threshold − 1 (published or implied)."""
    return [k for k in ledger if 1 <= ledger.value(k) < threshold]


@dataclass
class IntervalAuditResult:
    """Result of :func:`interval_audit`.

    Attributes
    ----------
    summary : DataFrame
        One row per (reader, protected cell): reader, measure, region, period, published
        (bool), lower, upper (the reader's best bounds; ``inf`` = unbounded), target_upper
        (threshold − 1), passed, pinned_by (the relation that narrows a failing cell).
        Only bounds a reader could compute are listed — never a true value.
    """

    summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def passed(self) -> bool:
        return bool(self.summary.empty or self.summary["passed"].all())

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> pd.DataFrame:
        return self.summary[~self.summary["passed"]] if len(self.summary) else self.summary

    def narrowest(self) -> pd.Series | None:
        """The published hidden cell with the narrowest interval (None if nothing is hidden)."""
        s = self.summary
        if s.empty:
            return None
        s = s[s["published"]]
        if s.empty:
            return None
        w = s["upper"] - s["lower"]
        return s.loc[w.idxmin()]

    def raise_if_failed(self) -> None:
        """Raise :class:`DisclosureError` naming the first failing cell and its relation."""
        if self.passed:
            return
        f = self.failures.iloc[0]
        raise DisclosureError(
            f"interval audit failed: {len(self.failures)} hidden count(s) can be narrowed below "
            f"the rule; first: {f['measure']!r} ({f['region']}, {f['period']}) for the "
            f"{f['reader']} reader, pinned by {f['pinned_by'] or 'the shown numbers'!r}")

    def plot(self, ax=None):
        """Interval width per protected cell, by reader (a quick visual check)."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        s = self.summary
        if s.empty:
            return ax
        w = (s["upper"].clip(upper=s["target_upper"] * 3) - s["lower"]).to_numpy()
        ax.hist(w, bins=20)
        ax.set_xlabel("width of feasible range (capped at 3 × threshold)")
        ax.set_ylabel("hidden counts")
        return ax


def audit_reader(reader: Reader, cells=None) -> list[dict]:
    """Intervals of the protected cells of one reader (rows for the summary)."""
    t = reader.t
    cells = sensitive_cells(reader.ledger, t) if cells is None else cells
    rows = []
    for k in cells:
        iv = reader.interval(k)
        ok = iv.lower <= 1 and iv.upper >= t - 1
        rows.append({"reader": reader.reader, "measure": k.measure, "region": k.region,
                     "period": k.period, "published": bool(reader.ledger.audiences(k)),
                     "lower": iv.lower, "upper": iv.upper, "target_upper": t - 1,
                     "passed": ok, "pinned_by": "" if ok else iv.pinned_by})
    return rows


def interval_audit(ledger: Ledger, plan, readers=None) -> IntervalAuditResult:
    """Audit a suppression plan: can any reader narrow a protected count below the rule?

    Parameters
    ----------
    ledger : Ledger
    plan : SuppressionPlan
        Which cells each audience hides (from :func:`~dmst_eval.disclosure.plan`).
    readers : list of str, optional
        Audiences to audit (default: every audience in the plan).

    Returns
    -------
    IntervalAuditResult

    Examples
    --------
    The AWOL row of the issue: 2023 "<5", 2024 "<5", 2025 "6", period total "14" pins both
    hidden years to 4 — unless the plan also hides a second shown cell:

    >>> from dmst_eval.disclosure import Ledger, plan, interval_audit
    >>> led = Ledger()
    >>> ys = [led.add("AWOL episodes", n, period=y, audience="internal")
    ...       for n, y in [(4, "2023"), (4, "2024"), (6, "2025")]]
    >>> tot = led.add("AWOL episodes", 14, period="2023-2025", audience="internal")
    >>> _ = led.add_sum(tot, ys, name="years add up to the period")
    >>> weak = plan(led, {"internal": 5}, secondary=False)
    >>> res = interval_audit(led, weak)
    >>> res.passed, res.failures["pinned_by"].iloc[0]
    (False, 'years add up to the period')
    >>> interval_audit(led, plan(led, {"internal": 5})).passed
    True
    """
    readers = list(readers or plan.thresholds)
    rows = []
    for r in readers:
        rows += audit_reader(Reader(ledger, plan.thresholds, plan.hidden, r))
    cols = ["reader", "measure", "region", "period", "published", "lower", "upper",
            "target_upper", "passed", "pinned_by"]
    return IntervalAuditResult(pd.DataFrame(rows, columns=cols))
