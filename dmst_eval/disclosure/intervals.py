"""The interval audit: how far can a reader narrow each hidden count? (linear programming)

For every count that must stay hidden, the audit minimises and maximises it over all integer,
non-negative values that agree with everything the reader sees — every number shown, every
marker (``"<5"`` means 1 to 4; ``"suppressed"`` means at least the threshold, since secondary
cells are chosen among counts at or above it) and every relation in the
:class:`~dmst_eval.disclosure.Ledger` (regions add to statewide, years to the period, n plus
complement to of, shares and rates shown to some digits). This is the audit τ-ARGUS and R's
``sdcTable`` run after cell suppression. The problems are solved with HiGHS — the solver behind
:func:`scipy.optimize.linprog` and :func:`scipy.optimize.milp` — through its own Python
interface ``highspy``, which keeps one model per connected group of cells and re-solves it with
a new objective (about 0.4 ms a solve instead of about 10 ms through scipy's wrapper). The
linear relaxation is solved first; where its optimum is fractional the integer program is
solved.

A hidden count **passes** when its feasible range still covers 1 to ``threshold − 1`` — the
whole range the marker ``"<threshold"`` tells. Zeros are shown as 0, except where the plan must
hide one to protect another count (four regions "<5" beside two zeros and a statewide "<5"
would make every region 1): it is then shown as ``"<threshold"`` too, and from then on the
reader's model of every ``"<t"`` of that audience is 0 .. t − 1 (1 .. t − 1 while no zero is
hidden). A count that is never shown but follows from shown ones (the
complement of a share) must pass the same test.

Readers: an internal reader also holds the public briefs, so the internal audit uses what both
audiences show; a public reader only the public briefs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dmst_eval.disclosure.ledger import CellKey, Ledger
from dmst_eval.errors import DisclosureError

PRIMARY, SECONDARY, ZERO = "primary", "secondary", "zero"
#: A count hidden by the planner's fallback (:func:`dmst_eval.disclosure.plan`): shown as
#: "suppressed" like a secondary one, but it may be any number, small ones included, so a reader
#: learns nothing about it from the marker.
WITHHELD = "withheld"


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
        self.rlo: dict = {}
        self.rhi: dict = {}
        # witnesses: the smallest and largest value each cell took in an integer solution
        # found so far. Hiding a count only widens boxes, so every solution stays feasible and
        # a cell seen at <= 1 and at >= t - 1 is protected without another solve; when a box
        # narrows (a trial hide undone) they are forgotten
        self.wlo: dict = {}
        self.whi: dict = {}
        self.refresh(thresholds, hidden)
        vis = set(self.visible)
        self.relations = [r for r in ledger.relations if r.audiences & vis]
        self.by_cell: dict = {}
        for i, r in enumerate(self.relations):
            for k in r.coefs:
                self.by_cell.setdefault(k, []).append(i)
        total = sum(ledger.value(k) for k in ledger)
        self.cap = float(10 * (total + 1))  # a finite "no upper bound" for the solver

    def refresh(self, thresholds, hidden) -> None:
        """Recompute every cell's box. "<t" means 1 .. t-1 while no audience the reader sees
        hides a zero, 0 .. t-1 once one does (the reader cannot tell which "<t" is a zero)."""
        self.zero_masked = {a: ZERO in hidden[a].values()
                            for a in self.visible}
        for key in self.ledger:
            self._box(key, thresholds, hidden)

    def _box(self, key, thresholds, hidden) -> None:
        lo, hi = 0.0, math.inf
        rlo, rhi = 0.0, math.inf  # what the markers and zeros alone tell (numbers withheld)
        auds = self.ledger.audiences(key)
        v = self.ledger.value(key)
        for a in self.visible:
            if a not in auds:
                continue
            kind = hidden[a].get(key)
            t = float(thresholds[a])
            if kind is None:
                lo = hi = float(v)
                if v == 0:
                    rlo, rhi = 0.0, 0.0
                else:  # a shown count is 0 or at least the threshold
                    rlo = max(rlo, t)
            elif kind in (PRIMARY, ZERO):  # "<t": 1 .. t-1, or a zero hidden to protect
                floor = 0.0 if self.zero_masked[a] else 1.0
                lo, rlo = max(lo, floor), max(rlo, floor)
                hi, rhi = min(hi, t - 1.0), min(rhi, t - 1.0)
            elif kind == SECONDARY:
                lo, rlo = max(lo, t), max(rlo, t)
            # WITHHELD: the marker tells nothing (0 .. unbounded)
        self.lo[key], self.hi[key] = lo, hi
        self.rlo[key], self.rhi[key] = rlo, rhi

    def update(self, key, thresholds, hidden) -> None:
        masked = {a: ZERO in hidden[a].values() for a in self.visible}
        if masked != self.zero_masked:
            self.forget()
            self.refresh(thresholds, hidden)
        else:
            lo, hi = self.lo[key], self.hi[key]
            self._box(key, thresholds, hidden)
            if self.lo[key] > lo or self.hi[key] < hi:  # narrowed: old solutions may not hold
                self.forget()

    def forget(self) -> None:
        """Drop the witnesses (after a box narrowed)."""
        self.wlo.clear()
        self.whi.clear()

    def _witness(self, cells, x) -> None:
        for k, v in zip(cells, x):
            if v < self.wlo.get(k, math.inf):
                self.wlo[k] = v
            if v > self.whi.get(k, -math.inf):
                self.whi[k] = v

    def known(self, key) -> bool:
        return self.lo[key] == self.hi[key]

    def component(self, key, relaxed: bool = False) -> tuple[list, list]:
        """Unknown cells linked to ``key`` through relations, and those relations."""
        lo, hi = (self.rlo, self.rhi) if relaxed else (self.lo, self.hi)
        seen, rels, todo = {key}, set(), [key]
        while todo:
            k = todo.pop()
            for i in self.by_cell.get(k, ()):
                if i in rels:
                    continue
                rels.add(i)
                for k2 in self.relations[i].coefs:
                    if k2 not in seen and lo[k2] != hi[k2]:
                        seen.add(k2)
                        todo.append(k2)
        return sorted(seen), sorted(rels)

    def interval(self, key, relaxed: bool = False) -> "CellInterval":
        """Smallest and largest integer value of ``key`` consistent with what the reader sees
        (``relaxed``: with every shown number replaced by what its marker rule alone says —
        0, or at least the threshold)."""
        return self.intervals([key], relaxed)[key]

    def intervals(self, keys, relaxed: bool = False) -> dict:
        """:meth:`interval` for many cells: one model per connected component."""
        lo_d, hi_d = (self.rlo, self.rhi) if relaxed else (self.lo, self.hi)
        out, groups = {}, {}
        for key in keys:
            if lo_d[key] == hi_d[key]:
                out[key] = CellInterval(key, lo_d[key], hi_d[key], "shown")
                continue
            cells, rels = self.component(key, relaxed)
            if not rels:
                out[key] = CellInterval(key, lo_d[key], hi_d[key], "")
                continue
            groups.setdefault((tuple(cells), tuple(rels)), []).append(key)
        for (cells, rels), ks in groups.items():
            out.update(self._solve(list(cells), list(rels), ks, lo_d, hi_d))
        return out

    def _solve(self, cells, rels, keys, lo_d, hi_d) -> dict:
        import highspy

        idx = {k: j for j, k in enumerate(cells)}
        n, m = len(cells), len(rels)
        inf = highspy.kHighsInf
        starts, index, value, lb, ub = [], [], [], np.empty(m), np.empty(m)
        for r_i, i in enumerate(rels):
            rel = self.relations[i]
            const = 0.0
            starts.append(len(index))
            for k, c in rel.coefs.items():
                j = idx.get(k)
                if j is None:
                    const += c * lo_d[k]
                else:
                    index.append(j)
                    value.append(c)
            lb[r_i] = rel.lower - const - 1e-9 if np.isfinite(rel.lower) else -inf
            ub[r_i] = rel.upper - const + 1e-9 if np.isfinite(rel.upper) else inf
        h = _highs()
        h.clearModel()
        cols = np.arange(n, dtype=np.int32)
        h.addCols(n, np.zeros(n), np.array([lo_d[k] for k in cells]),
                  np.array([min(hi_d[k], self.cap) for k in cells]), 0,
                  np.array([], dtype=np.int32), np.array([], dtype=np.int32), np.array([]))
        h.addRows(m, lb, ub, len(index), np.array(starts, dtype=np.int32),
                  np.array(index, dtype=np.int32), np.array(value, dtype=float))
        names = [self.relations[i].name for i in rels]
        res = {}
        t = self.t
        # every integer solution found is a value assignment the reader cannot rule out: it
        # shows, for every cell at once, values that cell can take. A cell already seen at <= 1
        # (or >= t-1) needs no solve in that direction: the range reported is then the range
        # seen, which the true range contains
        own = lo_d is self.lo  # the reader's own boxes (not the relaxed ones): witnesses apply
        seen_lo = np.array([self.wlo.get(k, np.inf) if own else np.inf for k in cells],
                           dtype=float)
        seen_hi = np.array([self.whi.get(k, -np.inf) if own else -np.inf for k in cells],
                           dtype=float)
        for key in keys:
            j = idx[key]
            cost = np.zeros(n)
            cost[j] = 1.0
            bounds, pins = [], []
            cost_set = False
            for sense, done in ((highspy.ObjSense.kMinimize, seen_lo[j] <= 1),
                                (highspy.ObjSense.kMaximize, seen_hi[j] >= t - 1)):
                if done:
                    bounds.append(float(seen_lo[j] if sense == highspy.ObjSense.kMinimize
                                        else seen_hi[j]))
                    pins.append("")
                    continue
                if not cost_set:
                    h.changeColsCost(n, cols, cost)
                    cost_set = True
                h.changeObjectiveSense(sense)
                x, duals = _run(h, key)
                v = x[j] if sense == highspy.ObjSense.kMinimize else -x[j]
                lp_fails = (np.ceil(v - 1e-6) > 1 if sense == highspy.ObjSense.kMinimize
                            else np.ceil(v - 1e-6) > -(t - 1))
                if lp_fails and np.abs(x - np.round(x)).max() > 1e-6:
                    # the relaxation already narrows it: the integer bound is at least as
                    # narrow; report the relaxation's bound, rounded inward
                    bounds.append(float(np.ceil(x[j] - 1e-6) if v == x[j]
                                        else np.floor(x[j] + 1e-6)))
                    d = np.abs(duals)
                    pins.append(names[int(np.argmax(d))] if d.size and d.max() > 1e-9 else "")
                    continue
                if np.abs(x - np.round(x)).max() > 1e-6:  # fractional vertex: integer optimum
                    h.changeColsIntegrality(n, cols, np.full(n, highspy.HighsVarType.kInteger))
                    x, _ = _run(h, key)
                    h.changeColsIntegrality(n, cols,
                                            np.full(n, highspy.HighsVarType.kContinuous))
                xr = np.round(x)
                seen_lo, seen_hi = np.minimum(seen_lo, xr), np.maximum(seen_hi, xr)
                if own:
                    self._witness(cells, xr)
                bounds.append(float(xr[j]))
                d = np.abs(duals)
                pins.append(names[int(np.argmax(d))] if d.size and d.max() > 1e-9 else "")
            lo, hi = bounds
            hi = math.inf if hi >= self.cap - 0.5 else hi
            ok = lo <= 1 and hi >= t - 1
            pin = "" if ok else (pins[0] if lo > 1 else pins[1])
            if not ok and not pin:
                mine = [self.relations[i].name for i in self.by_cell.get(key, [])]
                pin = mine[0] if mine else ""
            res[key] = CellInterval(key, lo, hi, pin)
        return res

    def protected(self, key, iv=None) -> tuple[bool, "CellInterval"]:
        """Does ``key``'s range still cover 1 .. t − 1 (all a "<t" marker tells)?"""
        if iv is None and self.wlo.get(key, math.inf) <= 1 and \
                self.whi.get(key, -math.inf) >= self.t - 1:
            return True, CellInterval(key, self.wlo[key], self.whi[key], "")
        iv = iv or self.interval(key)
        return bool(iv.lower <= 1 and iv.upper >= self.t - 1), iv


_HIGHS: list = []


def _highs():
    """One HiGHS instance per process (its banner, printed when it is made, is silenced)."""
    if not _HIGHS:
        import os
        import sys

        import highspy

        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        h.setOptionValue("output_flag", False)
        # small problems, re-solved with a new objective: presolve costs more than it saves,
        # and the simplex method re-starts from the last basis
        h.setOptionValue("presolve", "off")
        h.setOptionValue("solver", "simplex")
        _HIGHS.append(h)
    return _HIGHS[0]


def _run(h, key):
    import highspy

    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise DisclosureError(f"interval audit: the solver could not bound {key.label()!r} "
                              f"({h.modelStatusToString(h.getModelStatus())}); the published "
                              "numbers may be inconsistent")
    sol = h.getSolution()
    return np.asarray(sol.col_value), np.asarray(sol.row_dual)


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
        (bool), lower, upper (``inf`` = unbounded), target_upper (threshold − 1), passed,
        pinned_by (the relation that narrows a failing cell). A failing cell's bounds are the
        reader's best bounds; a passing cell's are values it was seen to take, so its true
        range is at least that wide. Only bounds a reader could compute are listed — never a
        true value.
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
    cells = sensitive_cells(reader.ledger, reader.t) if cells is None else cells
    rows = []
    ivs = reader.intervals(cells)
    for k in cells:
        ok, iv = reader.protected(k, ivs[k])
        rows.append(audit_row(reader, iv, ok))
    return rows


def audit_row(reader: Reader, iv: "CellInterval", ok: bool) -> dict:
    k = iv.key
    return {"reader": reader.reader, "measure": k.measure, "region": k.region,
            "period": k.period, "published": bool(reader.ledger.audiences(k)),
            "lower": iv.lower, "upper": iv.upper, "target_upper": reader.t - 1,
            "passed": ok, "pinned_by": "" if ok else iv.pinned_by}


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
