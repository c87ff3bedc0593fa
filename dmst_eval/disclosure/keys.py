"""Tables and the ledger: name every count cell of a table, register it, show it by the plan.

A brief section that publishes a table of counts does three things with it:

1. :func:`keys_frame` — name each count cell (measure, region, period), once;
2. ``ledger.add(...)`` via :func:`register_table` — when the batch plan is built (cheaply, for
   every region and audience of the standard batch) the cells and their relations go into the
   :class:`~dmst_eval.disclosure.Ledger`;
3. :func:`apply_plan` — when the brief is rendered, each cell is shown as the batch plan says
   (number, ``"<t"`` or ``"suppressed"``), so every brief of the batch hides the same cells.

Examples
--------
>>> import pandas as pd
>>> from dmst_eval.disclosure import Ledger, plan, keys_frame, register_table, apply_plan
>>> tab = pd.DataFrame({"2024": [4, 30], "2025": [9, 33], "total": [13, 63]},
...                    index=["AWOL episodes", "episodes"])
>>> keys = keys_frame(tab, measure="index", period="columns", region="Region 2")
>>> led = Ledger()
>>> register_table(led, tab, keys, audience="internal")
>>> for m in tab.index:
...     _ = led.add_sum(keys.loc[m, "total"], keys.loc[m, ["2024", "2025"]])
>>> shown = apply_plan(tab, keys, plan(led, {"internal": 5}), "internal")
>>> shown.loc["AWOL episodes"].tolist()
['<5', 'suppressed', 13]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from dmst_eval.disclosure.ledger import AUDIENCES, CellKey, Ledger
from dmst_eval.disclosure.tables import SUPPRESSED, _as_list
from dmst_eval.errors import DisclosureError


def _axis(spec, table: pd.DataFrame, col, n: int):
    """One part of the key for every row of column ``col``."""
    if isinstance(spec, str) and spec == "index":
        return [str(i) for i in table.index]
    if isinstance(spec, str) and spec == "columns":
        return [str(col)] * n
    if isinstance(spec, str) and spec.startswith("column:"):
        return [str(v) for v in table[spec[7:]]]
    if isinstance(spec, dict):  # per count column
        return _axis(spec[col], table, col, n)
    if isinstance(spec, (list, tuple, np.ndarray, pd.Series, pd.Index)):
        vals = list(spec)
        if len(vals) != n:
            raise DisclosureError(f"keys_frame(): {len(vals)} labels for {n} rows")
        return [str(v) for v in vals]
    return [str(spec)] * n


def keys_frame(table: pd.DataFrame, count_cols=None, *, measure, region="statewide",
               period="all") -> pd.DataFrame:
    """Cell keys of a table's count cells: a DataFrame shaped like ``table[count_cols]``.

    Each of ``measure``, ``region``, ``period`` is a constant string, ``"index"`` (the row
    label), ``"columns"`` (the column name), ``"column:<name>"`` (the value of another column in
    the same row), a list with one label per row, or a dict ``{count column: any of these}``.
    ``count_cols`` default: every column.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"year": ["2018", "2019"], "police_reports": [50, 61]})
    >>> k = keys_frame(t, ["police_reports"], measure="police reports", period="column:year")
    >>> k.iloc[0, 0]
    CellKey(measure='police reports', region='statewide', period='2018')
    """
    cols = list(table.columns) if count_cols is None else _as_list(count_cols)
    n = len(table)
    out = pd.DataFrame(index=table.index, columns=cols, dtype=object)
    for c in cols:
        if c not in table.columns:
            raise DisclosureError(f"keys_frame(): column {c!r} not in the table")
        m, r, p = (_axis(measure, table, c, n), _axis(region, table, c, n),
                   _axis(period, table, c, n))
        out[c] = [CellKey(*x) for x in zip(m, r, p)]
    return out


def register_table(ledger: Ledger, table: pd.DataFrame, keys: pd.DataFrame,
                   audience=AUDIENCES) -> None:
    """Register every keyed count of ``table`` (missing values and ``None`` keys skipped)."""
    for c in keys.columns:
        for idx, k in keys[c].items():
            v = table.at[idx, c]
            if k is None or v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                continue
            ledger.add(k, v, audience=audience)


def apply_plan(table: pd.DataFrame, keys: pd.DataFrame, plan, audience: str,
               rate_cols: dict | None = None) -> pd.DataFrame:
    """The table as the batch plan shows it to ``audience``.

    Hidden counts become ``"<t"`` (primary) or ``"suppressed"`` (secondary); a rate column in
    ``rate_cols`` (``{rate: count column or [count columns]}``) is ``"suppressed"`` in every row
    where one of its counts is hidden. A keyed count the plan does not know raises
    :class:`~dmst_eval.errors.DisclosureError` (every published count must be in the batch
    ledger). ``.attrs["disclosure"]`` is set as :func:`~dmst_eval.disclosure.suppress` sets it,
    so :func:`~dmst_eval.disclosure.table_html` accepts the table.
    """
    t = int(plan.thresholds[audience])
    out = table.copy()
    n_pri = n_sec = 0
    hidden_rows = {}
    for c in keys.columns:
        vals = []
        hid = []
        for idx, k in keys[c].items():
            v = table.at[idx, c]
            if k is None or v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                vals.append(v)
                hid.append(False)
                continue
            st = plan.status(k, audience)
            if st == "unplanned":
                raise DisclosureError(f"count {k.label()!r} is not in the batch plan for the "
                                      f"{audience} audience: register it in the section's "
                                      "cells()")
            if st in ("primary", "zero"):
                vals.append(f"<{t}")
                n_pri += 1
            elif st in ("secondary", "withheld"):
                vals.append(SUPPRESSED)
                n_sec += 1
            else:
                vals.append(v.item() if isinstance(v, np.generic) else v)
            hid.append(st != "shown")
        out[c] = pd.Series(vals, index=table.index, dtype=object)
        hidden_rows[c] = np.array(hid, dtype=bool)
    n_rate = 0
    for r, bases in (rate_cols or {}).items():
        mask = np.zeros(len(table), dtype=bool)
        for b in _as_list(bases):
            mask |= hidden_rows.get(b, np.zeros(len(table), dtype=bool))
        if mask.any():
            col = out[r].astype(object)
            col[mask] = SUPPRESSED
            out[r] = col
            n_rate += int(mask.sum())
    out.attrs["disclosure"] = {"threshold": t, "primary": n_pri, "complementary": n_sec,
                               "rates": n_rate, "count_cols": [str(c) for c in keys.columns],
                               "rate_cols": {str(k): [str(x) for x in _as_list(v)]
                                             for k, v in (rate_cols or {}).items()},
                               "plan": True}
    return out
