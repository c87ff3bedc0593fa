"""Shares and figures that do not give small counts away.

* :func:`share_text` — a share is shown as a percentage only when its numerator and its
  complement (``of − n``) both clear the threshold; otherwise as a band wide enough to cover
  every small value ("less than 25%"), or not at all.
* :func:`truncate_at_risk` — step curves (Kaplan–Meier, cumulative incidence, mean cumulative
  function) stop before the first time fewer than ``threshold`` children remain at risk: a jump
  of 1/8 then 1/4 on a drawn curve tells a reader that 8, then 4, children were left.
  :func:`at_risk_numbers` gives the numbers-at-risk row under the axis by the same rule.
* :func:`bar_heights` / :func:`mark_hidden_bars` — bars of hidden categories are not drawn at
  any value on the data axis; they are marked by a hatched band over the whole axis height.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from dmst_eval.disclosure.tables import SUPPRESSED
from dmst_eval.errors import DisclosureError


class ShareDisplay(NamedTuple):
    """How a share is shown: ``text``, and the band ``(lower, upper)`` (fractions) it tells a
    reader — register it with :meth:`Ledger.add_share(shown=(lower, upper))
    <dmst_eval.disclosure.Ledger.add_share>` (``None`` when nothing is shown)."""

    text: str
    band: tuple | None


def _grey() -> str:
    from dmst_eval.plots import GREY  # the house grey (matplotlib only when drawing)

    return GREY


def share_text(n: int, of: int, threshold: int, digits: int = 0, step: int = 5) -> ShareDisplay:
    """A share ``n / of`` as a brief shows it.

    * ``n`` and ``of − n`` both 0 or at least ``threshold`` (zeros are not disclosive): the
      percentage, rounded to ``digits``.
    * ``n`` from 1 to ``threshold − 1``: "less than X%", X the smallest multiple of ``step``
      with X% of ``of`` at least ``threshold`` (so every small n fits); likewise "more than
      Y%" when the complement is small. If the band would reach 50% the share is not shown
      (``"suppressed"``).

    Examples
    --------
    >>> share_text(18, 38, 5).text
    '47%'
    >>> share_text(349, 350, 10).text     # "349 of 350" would tell that 1 was not
    'more than 95%'
    >>> share_text(2, 40, 5)
    ShareDisplay(text='less than 15%', band=(0.0, 0.15))
    >>> share_text(3, 8, 5).text
    'suppressed'
    """
    n, of, t = int(n), int(of), int(threshold)
    if of <= 0 or n < 0 or n > of:
        raise DisclosureError(f"share_text(): need 0 <= n <= of and of > 0, got {n} of {of}")
    comp = of - n
    small_n, small_c = 1 <= n < t, 1 <= comp < t
    if 1 <= of < t or (small_n and small_c):
        return ShareDisplay(SUPPRESSED, None)
    if not small_n and not small_c:
        p = n / of
        h = 0.5 * 10 ** -(digits + 2)
        return ShareDisplay(f"{100 * p:.{digits}f}%", (max(0.0, round(p, digits + 2) - h),
                                                       min(1.0, round(p, digits + 2) + h)))
    x = step * math.ceil(100 * t / of / step)  # X% of `of` >= t: the band holds 1 .. t-1
    if x >= 50:
        return ShareDisplay(SUPPRESSED, None)
    if small_n:
        return ShareDisplay(f"less than {x}%", (0.0, x / 100))
    return ShareDisplay(f"more than {100 - x}%", (1 - x / 100, 1.0))


def truncate_at_risk(table: pd.DataFrame, threshold: int, at_risk: str = "n_risk",
                     time: str = "time", group: str | None = "group") -> pd.DataFrame:
    """Rows of a step-curve table up to (not including) the first time fewer than
    ``threshold`` remain at risk, per group.

    Works on the ``.table`` of :class:`~dmst_eval.recidivism.KaplanMeierResult`,
    ``MCFResult`` and ``CumulativeIncidenceResult``. The curve is then drawn only where every
    step rests on at least ``threshold`` children; ``.attrs["truncated_at"]`` holds, per group,
    the time where it stops (``None`` when it did not need to).

    Examples
    --------
    >>> import pandas as pd
    >>> km = pd.DataFrame({"time": [1, 2, 3, 4], "n_risk": [20, 12, 8, 4],
    ...                    "survival": [0.95, 0.87, 0.76, 0.57]})
    >>> truncate_at_risk(km, 10, group=None)["time"].tolist()
    [1, 2]
    """
    if at_risk not in table.columns or time not in table.columns:
        raise DisclosureError(f"truncate_at_risk(): the table needs columns {time!r} and "
                              f"{at_risk!r}")
    t = int(threshold)
    if group is None or group not in table.columns:
        keys = pd.Series(0, index=table.index)
    else:
        keys = table[group]
    nr = pd.to_numeric(table[at_risk], errors="coerce").fillna(0).to_numpy()
    below = pd.Series(nr < t, index=table.index)
    # a row is kept while no earlier-or-same row of its group fell below the threshold
    keep = ~below.groupby(keys.to_numpy(), sort=False).cummax()
    out = table[keep.to_numpy()].copy()
    stops = {}
    for g, idx in table.groupby(keys.to_numpy(), sort=False).groups.items():
        b = below.loc[idx]
        stops[g] = float(table.loc[b[b].index[0], time]) if b.any() else None
    out.attrs = dict(table.attrs, truncated_at=stops)
    return out


def at_risk_numbers(table: pd.DataFrame, times, threshold: int, at_risk: str = "n_risk",
                    time: str = "time") -> list[str]:
    """The numbers-at-risk row under a step curve, by the rule of :func:`truncate_at_risk`:
    the number at risk just before each tick time, or ``""`` from the first tick where fewer
    than ``threshold`` remain (the curve has stopped there too).

    Examples
    --------
    >>> import pandas as pd
    >>> km = pd.DataFrame({"time": [1, 2, 3, 4], "n_risk": [20, 12, 8, 4]})
    >>> at_risk_numbers(km, [0, 2, 4], 10)
    ['20', '12', '']
    """
    tm = table[time].to_numpy(dtype=float)
    nr = pd.to_numeric(table[at_risk], errors="coerce").fillna(0).to_numpy()
    out, stopped = [], False
    for x in times:
        j = int(np.searchsorted(tm, float(x), side="left"))
        n = int(nr[j]) if j < len(nr) else 0
        stopped = stopped or n < threshold
        out.append("" if stopped else f"{n:,}")
    return out


def bar_heights(values) -> tuple[np.ndarray, np.ndarray]:
    """Heights to draw and a hidden mask from displayed values (numbers or markers).

    Hidden categories get height ``nan`` — never a value on the data axis.

    Examples
    --------
    >>> h, hid = bar_heights([12, "<5", 0, "suppressed"])
    >>> h.tolist()[0], hid.tolist()
    (12.0, [False, True, False, True])
    """
    from dmst_eval.disclosure.tables import is_hidden

    vals = list(values)
    hid = np.array([is_hidden(v) for v in vals], dtype=bool)
    h = np.array([np.nan if m else float(v) for v, m in zip(vals, hid)])
    return h, hid


def mark_hidden_bars(ax, x, hidden, width: float = 0.8, label: str = "hidden (small count)"):
    """Mark hidden categories with a hatched band over the whole axis height (axes
    coordinates, so it says nothing about the value) and a label at the foot."""
    from dmst_eval import plots

    first = True
    for xi, h in zip(np.asarray(x, dtype=float), np.asarray(hidden, dtype=bool)):
        if not h:
            continue
        ax.axvspan(xi - width / 2, xi + width / 2, ymin=0.0, ymax=1.0,
                   facecolor=plots.SUPPRESSED_COLOR, hatch=plots.SUPPRESSED_HATCH,
                   edgecolor=_grey(), alpha=0.6, label=label if first else None)
        first = False
    return ax
