"""The disclosure ledger: every number a batch of briefs publishes, and how the numbers relate.

A reader who holds several briefs can combine their numbers: regions add up to the statewide
figure, years add up to the period total, "20 of 28" gives away the 8 who were not counted, a
percentage with its denominator narrows its numerator. The :class:`Ledger` writes all of this
down so that :func:`~dmst_eval.disclosure.plan` can hide enough cells and
:func:`~dmst_eval.disclosure.interval_audit` can prove that no hidden count can be worked out.

Vocabulary
----------
cell
    One count, identified by a :class:`CellKey` — ``(measure, region, period)``, e.g.
    ``("confirmed victims", "Region 3", "2024")``. The same count published in two briefs (the
    statewide brief and a regional one, or an internal and a public brief) is *one* cell.
published
    A cell is published to an audience (``"internal"``, ``"public"``) when a brief for that
    audience shows it (as a number or as a suppression marker). A cell that is never shown but
    follows from shown ones (the complement ``of − n`` of a share) is registered unpublished: it
    is still checked, since a reader can compute it.
relation
    A linear constraint between cells that a reader knows: a sum (``total = parts``), a
    sub-additive total (children counted once a period: ``max(years) ≤ total ≤ sum(years)``),
    a share or rate shown to some digits (``p − h ≤ n / of ≤ p + h``).

Examples
--------
A year × region table with a period total and a statewide row:

>>> from dmst_eval.disclosure import Ledger
>>> led = Ledger()
>>> for region, by_year in {"Region 1": [3, 8], "Region 2": [12, 9]}.items():
...     for year, n in zip(["2024", "2025"], by_year):
...         _ = led.add("AWOL episodes", n, region=region, period=year)
...     _ = led.add("AWOL episodes", sum(by_year), region=region, period="2024-2025")
...     _ = led.add_sum(("AWOL episodes", region, "2024-2025"),
...                     [("AWOL episodes", region, y) for y in ["2024", "2025"]],
...                     name="years add up to the period")
>>> _ = led.add_regions("AWOL episodes", period="2024-2025", statewide=32,
...                     regions=["Region 1", "Region 2"])
>>> len(led), len(led.relations)
(7, 3)

A share shown with its numerator and denominator registers the complement, so that
"20 of 28" is checked for the 8 it implies:

>>> comp = led.add_share("not re-victimized", 20, 28, region="statewide", period="2025",
...                      shown=20 / 28, digits=0)
>>> comp.measure, led.value(comp)
('not re-victimized (complement)', 8)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from dmst_eval.errors import DisclosureError

#: The audiences of the standard batch, with their thresholds.
AUDIENCES = ("internal", "public")


class CellKey(NamedTuple):
    """What a published count is: ``measure``, ``region`` ("statewide" or "Region k") and
    ``period`` (a year such as ``"2024"`` or a period label such as ``"2023-2025"``)."""

    measure: str
    region: str = "statewide"
    period: str = "all"

    def label(self) -> str:
        return f"{self.measure} — {self.region}, {self.period}"


def as_key(key) -> CellKey:
    """A :class:`CellKey` from a key or a (measure, region, period) tuple."""
    if isinstance(key, CellKey):
        return key
    if isinstance(key, str):
        return CellKey(key)
    try:
        return CellKey(*[str(k) for k in key])
    except TypeError:
        raise DisclosureError(f"a cell key is (measure, region, period), got {key!r}") from None


@dataclass
class Relation:
    """A linear constraint a reader knows: ``lower <= sum(coef * cell) <= upper``.

    ``name`` says in words what it is ("regions add up to statewide"), for failure messages.
    """

    coefs: dict
    lower: float
    upper: float
    name: str
    audiences: frozenset = frozenset(AUDIENCES)

    @property
    def cells(self) -> list:
        return list(self.coefs)


@dataclass
class _Cell:
    value: int
    audiences: set = field(default_factory=set)
    suppressible: bool = True
    priority: int = 0


class Ledger:
    """Every count a batch publishes, by audience, and the linear relations between them.

    Methods return the :class:`CellKey` they registered, so sections can keep it with the cell
    they display. Registering a cell twice is fine (the same count in two briefs) as long as the
    value is the same; a different value raises :class:`~dmst_eval.errors.DisclosureError`
    (two different numbers cannot carry the same label). Every relation is checked against the
    values when it is added, so a relation that does not hold (a wrong key) fails at once.

    Examples
    --------
    >>> led = Ledger()
    >>> k = led.add("police reports", 50, period="2018")
    >>> led.add("police reports", 50, period="2018", audience="public") == k
    True
    >>> sorted(led.published("public"))
    [CellKey(measure='police reports', region='statewide', period='2018')]
    """

    def __init__(self):
        self._cells: dict[CellKey, _Cell] = {}
        self.relations: list[Relation] = []
        self._signatures: dict = {}  # relation -> its index (the same relation is kept once)

    # -- cells ------------------------------------------------------------------------------
    def add(self, measure, value, *, region: str = "statewide", period="all",
            audience: str | Sequence[str] | None = AUDIENCES, suppressible: bool = True,
            priority: int = 0) -> CellKey:
        """Register one count.

        Parameters
        ----------
        measure : str or CellKey
            What is counted ("confirmed victims"); or a whole key.
        value : int
            The true count (never shown by the ledger itself).
        region, period : str
            "statewide" or "Region k"; a year or a period label.
        audience : str, sequence or None
            Audiences it is published to. ``None`` registers it unpublished (implied by others).
        suppressible : bool
            ``False`` for numbers that must be shown as they are (an official total published
            elsewhere, a population): secondary suppression will not hide them.
        priority : int
            Headline counts (a brief's answer to a question) get a higher priority: secondary
            suppression hides them only when no count of lower priority will do. The highest
            priority registered for a cell is kept.
        """
        key = measure if isinstance(measure, CellKey) else CellKey(str(measure), str(region),
                                                                   str(period))
        v = _count(value, key)
        auds = set() if audience is None else {audience} if isinstance(audience, str) \
            else set(audience)
        bad = auds - set(AUDIENCES)
        if bad:
            raise DisclosureError(f"audience must be one of {AUDIENCES}, got {sorted(bad)}")
        cell = self._cells.get(key)
        if cell is None:
            self._cells[key] = _Cell(v, auds, bool(suppressible), int(priority))
        else:
            if cell.value != v:
                raise DisclosureError(f"cell {key.label()!r} registered twice with different "
                                      "values: two numbers cannot carry the same label")
            cell.audiences |= auds
            cell.suppressible = cell.suppressible and bool(suppressible)
            cell.priority = max(cell.priority, int(priority))
        return key

    def __len__(self) -> int:
        return len(self._cells)

    def __contains__(self, key) -> bool:
        return as_key(key) in self._cells

    def __iter__(self):
        return iter(self._cells)

    def value(self, key) -> int:
        """The true value of a cell (for planning; never printed by this package)."""
        try:
            return self._cells[as_key(key)].value
        except KeyError:
            raise DisclosureError(f"cell {as_key(key).label()!r} is not in the ledger") from None

    def audiences(self, key) -> set:
        return set(self._cells[as_key(key)].audiences)

    def suppressible(self, key) -> bool:
        return self._cells[as_key(key)].suppressible

    def priority(self, key) -> int:
        """How reluctantly secondary suppression hides the cell (0: as its value says)."""
        return self._cells[as_key(key)].priority

    def published(self, audience: str) -> set:
        """Cells shown (as a number or a marker) in the briefs of ``audience``."""
        return {k for k, c in self._cells.items() if audience in c.audiences}

    # -- relations --------------------------------------------------------------------------
    def _relate(self, coefs: dict, lower: float, upper: float, name: str,
                audiences=AUDIENCES) -> Relation:
        coefs = {as_key(k): float(c) for k, c in coefs.items() if c != 0}
        missing = [k for k in coefs if k not in self._cells]
        if missing:
            raise DisclosureError(f"relation {name!r} uses cells not in the ledger: "
                                  f"{missing[0].label()!r}" + (f" and {len(missing) - 1} more"
                                                                if len(missing) > 1 else ""))
        lhs = sum(c * self._cells[k].value for k, c in coefs.items())
        tol = 1e-9 * max(1.0, abs(lhs))
        if not (lower - tol <= lhs <= upper + tol):
            raise DisclosureError(f"relation {name!r} does not hold for the registered values; "
                                  "check the cell keys")
        auds = {audiences} if isinstance(audiences, str) else set(audiences or AUDIENCES)
        if auds - set(AUDIENCES):
            raise DisclosureError(f"audience must be one of {AUDIENCES}, got {sorted(auds)}")
        # the same relation registered twice (two sections show the same share, two briefs
        # the same table) is kept once: it tells a reader nothing new
        sig = (tuple(sorted(coefs.items())), float(lower), float(upper))
        i = self._signatures.get(sig)
        if i is not None:
            old = self.relations[i]
            old.audiences = old.audiences | frozenset(auds)
            return old
        rel = Relation(coefs, float(lower), float(upper), name, frozenset(auds))
        self._signatures[sig] = len(self.relations)
        self.relations.append(rel)
        return rel

    def add_sum(self, total, parts: Iterable, *, name: str = "parts add up to the whole",
                exact: bool = True) -> Relation:
        """``total = sum(parts)`` (``exact=False``: the total counts each child once, so
        ``max(parts) <= total <= sum(parts)``).

        Examples
        --------
        >>> led = Ledger()
        >>> ks = [led.add("victims", n, period=y) for n, y in [(4, "2024"), (6, "2025")]]
        >>> tot = led.add("victims", 9, period="2024-2025")
        >>> r = led.add_sum(tot, ks, exact=False, name="children counted once")
        >>> len(led.relations)
        3
        """
        total = as_key(total)
        parts = [as_key(p) for p in parts]
        if total in parts:
            raise DisclosureError(f"relation {name!r}: the total is among its parts")
        coefs = {total: 1.0}
        for p in parts:
            coefs[p] = coefs.get(p, 0.0) - 1.0
        if exact:
            return self._relate(coefs, 0.0, 0.0, name)
        rel = self._relate(coefs, -math.inf, 0.0, f"{name} (at most the sum)")
        for p in parts:
            self._relate({p: 1.0, total: -1.0}, -math.inf, 0.0, f"{name} (at least each part)")
        return rel

    def add_sum_if_holds(self, total, parts: Iterable, *, name: str = "parts add up to the "
                         "whole") -> str:
        """Add ``total = sum(parts)`` if it holds for the values, else the sub-additive form
        if that holds, else nothing; returns "exact", "sub-additive" or "none".

        For totals whose design relation depends on the data (children counted once a period:
        when no child appears in two years the total *is* the sum, and a reader may assume so).
        """
        total = as_key(total)
        parts = [as_key(p) for p in parts]
        vals = [self.value(p) for p in parts]
        v = self.value(total)
        if v == sum(vals):
            self.add_sum(total, parts, name=name)
            return "exact"
        if vals and max(vals) <= v <= sum(vals):
            self.add_sum(total, parts, name=name, exact=False)
            return "sub-additive"
        return "none"

    def add_regions(self, measure: str, *, period, statewide: int | None = None,
                    regions: Sequence[str] | None = None, exact: bool = True,
                    audience=AUDIENCES) -> Relation:
        """The regions add up to statewide for ``(measure, period)``; registers the statewide
        cell if ``statewide`` is given. ``regions`` default: the six DCF regions."""
        from dmst_eval.schema import REGIONS

        regions = list(regions or REGIONS)
        tot = CellKey(str(measure), "statewide", str(period))
        if statewide is not None:
            self.add(tot, statewide, audience=audience)
        return self.add_sum(tot, [CellKey(str(measure), r, str(period)) for r in regions],
                            name="regions add up to statewide", exact=exact)

    def add_share(self, measure: str, n: int, of: int, *, region: str = "statewide",
                  period="all", audience=AUDIENCES, of_measure: str | None = None,
                  shown: float | None = None, digits: int = 0, publish_n: bool = True,
                  publish_of: bool = True) -> CellKey:
        """A share ``n / of``: registers n, of and the complement ``of − n`` (unpublished) with
        ``of = n + complement``; if the share is shown (``shown``, as a fraction, rounded to
        ``digits`` decimals of a percentage; or a band ``(lower, upper)`` as returned by
        :func:`~dmst_eval.disclosure.share_text`), also the interval it implies for n / of.
        ``publish_n`` / ``publish_of`` = False when the brief shows only the share and one of
        the two counts ("9% of 378 reports").

        Returns the complement's key (``"<measure> (complement)"``).
        """
        kn = self.add(measure, n, region=region, period=period,
                      audience=audience if publish_n else None)
        ko = self.add(of_measure or f"{measure} (of)", of, region=region, period=period,
                      audience=audience if publish_of else None)
        if n > of:
            raise DisclosureError(f"share {kn.label()!r}: numerator above its denominator")
        kc = self.add(f"{measure} (complement)", of - n, region=region, period=period,
                      audience=None)
        self.add_sum(ko, [kn, kc], name="n + complement = of")
        if isinstance(shown, tuple):  # a band, e.g. from share_text: lower <= n/of <= upper
            lo, hi = shown
            self.add_ratio(kn, ko, (lo + hi) / 2, half_width=(hi - lo) / 2, audience=audience,
                           name=f"share band shown for {measure}")
        elif shown is not None:
            self.add_ratio(kn, ko, round(float(shown), digits + 2),
                           half_width=0.5 * 10 ** -(digits + 2),
                           audience=audience, name=f"share shown for {measure}")
        return kc

    def add_ratio(self, numerator, denominator, shown: float, *, half_width: float,
                  scale: float = 1.0, audience=AUDIENCES, name: str | None = None) -> Relation:
        """A ratio shown rounded: ``shown ± half_width = scale * numerator / denominator``.

        ``denominator`` is a cell key or a known number (a population: then the ratio is a rate
        and pins the numerator to an interval). Linear either way: with ``r = shown / scale`` and
        ``h = half_width / scale``, ``(r − h)·den <= num <= (r + h)·den``.
        """
        num = as_key(numerator)
        r, h = float(shown) / scale, float(half_width) / scale + 1e-12
        name = name or f"ratio shown for {num.measure}"
        if isinstance(denominator, (int, float, np.integer, np.floating)):
            den = float(denominator)
            return self._relate({num: 1.0}, (r - h) * den, (r + h) * den, name, audience)
        den = as_key(denominator)
        self._relate({num: 1.0, den: -(r - h)}, 0.0, math.inf, name, audience)
        return self._relate({num: 1.0, den: -(r + h)}, -math.inf, 0.0, name, audience)

    # -- structure --------------------------------------------------------------------------
    def neighbours(self) -> dict:
        """Cell → indices of the relations it appears in."""
        out: dict = {}
        for i, rel in enumerate(self.relations):
            for k in rel.coefs:
                out.setdefault(k, []).append(i)
        return out


def _count(value, key: CellKey) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise DisclosureError(f"cell {key.label()!r}: a count must be a whole number, "
                              f"got {type(value).__name__}") from None
    if not np.isfinite(f) or f < 0 or f != round(f):
        raise DisclosureError(f"cell {key.label()!r}: a count must be a whole number >= 0")
    return int(round(f))
