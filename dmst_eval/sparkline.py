"""Sparklines: word-sized trend charts as inline SVG (the RBA scorecard draws one per measure).

A sparkline is a line of numbers, not a figure to study: the years on the x axis, no y axis,
the values as a line with dots, and optionally a shaded reporting period, a forecast with its
band and a target line (colours: :data:`dmst_eval.plots.ROLE_COLORS`). Drawn as SVG it is
sharp on screen and in print, small, and built from the numbers in a fraction of a
millisecond, where a matplotlib PNG of the same size takes about 25 ms. Years whose value is
missing (``NaN``, e.g. a hidden count) leave a gap; nothing is drawn for them.

:meth:`dmst_eval.rba.ScorecardResult.sparkline` builds one for a scorecard measure;
:meth:`dmst_eval.rba.ScorecardResult.plot` draws the full chart with matplotlib.

Examples
--------
>>> s = sparkline([2018, 2019, 2020, 2021], [3.0, 5.0, float("nan"), 4.0], target=4.5,
...               title="Victims identified")
>>> s.svg.startswith("<svg") and "<title>Victims identified</title>" in s.svg
True
>>> s.svg.count("<circle")  # a dot a year; the missing year is not drawn
3
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence

import numpy as np

__all__ = ["Sparkline", "sparkline"]

#: Pixels per inch of the SVG's size (the CSS pixel).
PX_PER_INCH = 96
#: Pixels per point (line widths and font sizes are given in points, as in matplotlib).
PX_PER_PT = PX_PER_INCH / 72
#: The plot area inside the image, as fractions (left, bottom, width, height): room below for
#: the two year labels ...
AREA = (0.02, 0.2, 0.96, 0.76)
#: ... or, without them, room for the dots at the edges only.
AREA_NO_LABELS = (0.03, 0.08, 0.94, 0.84)


class Sparkline:
    """An SVG sparkline: ``.svg`` (the markup), shown inline by Jupyter (``_repr_svg_``),
    written by :meth:`save`. ``.title`` is its accessible name (the SVG ``<title>``)."""

    def __init__(self, svg: str, title: str = ""):
        self.svg, self.title = svg, title

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"<Sparkline {self.title!r}>"

    def save(self, path) -> None:
        """Write the SVG to ``path`` (a standalone ``.svg`` file)."""
        from pathlib import Path

        Path(path).write_text('<?xml version="1.0" encoding="utf-8"?>\n' + self.svg + "\n",
                              encoding="utf-8")


def _runs(ok: np.ndarray) -> list[np.ndarray]:
    """Runs of consecutive indices where ``ok`` holds (a line is broken at missing values)."""
    idx = np.flatnonzero(ok)
    if not len(idx):
        return []
    return np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)


def _path(xs, ys) -> str:
    return "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def sparkline(years: Sequence[int], values: Sequence[float], *,
              forecast: Sequence[float] | None = None, lower: Sequence[float] | None = None,
              upper: Sequence[float] | None = None, forecast_years: Sequence[int] | None = None,
              target: float | None = None, shade: tuple[int, int] | None = None,
              size: tuple[float, float] = (2.4, 0.95), title: str = "",
              year_labels: bool = True) -> Sparkline:
    """A sparkline of yearly ``values`` (``NaN``: not drawn).

    Parameters
    ----------
    years, values : sequences
        The yearly series (the line with dots).
    forecast, lower, upper : sequences, optional
        A forecast (dashed line) and its band, by ``forecast_years`` (default ``years``).
    target : float, optional
        A horizontal dotted target line.
    shade : (first_year, last_year), optional
        Years to shade (the reporting period).
    size : (width, height)
        In inches, as matplotlib figure sizes (96 CSS pixels an inch).
    title : str
        The accessible name (SVG ``<title>``; screen readers read it).
    year_labels : bool
        Label the first and last year under the line (default). Without them (a column of
        sparklines whose years the table states once) the line has the whole height.

    Returns
    -------
    Sparkline
    """
    from dmst_eval.plots import _STYLE, ROLE_COLORS as C

    axis = _STYLE["axes.edgecolor"]  # the house style's axes colour

    x = np.asarray(years, dtype=float)
    v = np.asarray(values, dtype=float)
    fx = x if forecast_years is None else np.asarray(forecast_years, dtype=float)
    f, lo, hi = (np.full(len(fx), np.nan) if a is None else np.asarray(a, dtype=float)
                 for a in (forecast, lower, upper))
    w, h = size[0] * PX_PER_INCH, size[1] * PX_PER_INCH
    area = AREA if year_labels else AREA_NO_LABELS
    ax0, ay0, aw, ah = area[0] * w, (1 - area[1] - area[3]) * h, area[2] * w, area[3] * h
    x0, x1 = (x.min() - 0.5, x.max() + 0.5) if len(x) else (0.0, 1.0)
    ys = np.concatenate([v, f, lo, hi, [np.nan if target is None else float(target)]])
    ys = ys[np.isfinite(ys)]
    y0, y1 = (ys.min(), ys.max()) if len(ys) else (0.0, 1.0)
    pad = 0.05 * (y1 - y0) if y1 > y0 else max(abs(y0), 1.0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(xv):
        return ax0 + (np.asarray(xv, dtype=float) - x0) / (x1 - x0) * aw

    def py(yv):
        return ay0 + ah - (np.asarray(yv, dtype=float) - y0) / (y1 - y0) * ah

    svg = ET.Element("svg", xmlns="http://www.w3.org/2000/svg", width=f"{w:.0f}",
                     height=f"{h:.0f}", viewBox=f"0 0 {w:.0f} {h:.0f}", role="img")
    svg.set("class", "dmst-sparkline")
    ET.SubElement(svg, "title").text = title

    def add(tag, cls, **attrs):
        el = ET.SubElement(svg, tag, {k.replace("_", "-"): str(a) for k, a in attrs.items()})
        el.set("class", cls)
        return el

    if shade is not None:
        s0, s1 = px(shade[0] - 0.5), px(shade[1] + 0.5)
        add("rect", "reporting", x=f"{s0:.1f}", y=f"{ay0:.1f}", width=f"{s1 - s0:.1f}",
            height=f"{ah:.1f}", fill=C["reporting"], fill_opacity="0.15")
    for run in _runs(np.isfinite(lo) & np.isfinite(hi)):
        xs = px(fx[run])
        d = _path(np.r_[xs, xs[::-1]], np.r_[py(hi[run]), py(lo[run])[::-1]]) + "Z"
        add("path", "band", d=d, fill=C["forecast"], fill_opacity="0.15", stroke="none")
    for run in _runs(np.isfinite(f)):
        add("path", "forecast", d=_path(px(fx[run]), py(f[run])), fill="none",
            stroke=C["forecast"], stroke_width=f"{1.2 * PX_PER_PT:.1f}",
            stroke_dasharray="5,2")
    if target is not None and np.isfinite(target):
        ty = float(py(target))
        add("path", "target", d=_path([ax0, ax0 + aw], [ty, ty]), fill="none",
            stroke=C["target"], stroke_width=f"{1.3 * PX_PER_PT:.1f}", stroke_dasharray="1.5,2")
    shown = np.isfinite(v)
    for run in _runs(shown):
        add("path", "actual-line", d=_path(px(x[run]), py(v[run])), fill="none",
            stroke=C["actual"], stroke_width=f"{1.4 * PX_PER_PT:.1f}")
    r = 1.25 * PX_PER_PT  # a 2.5 pt dot
    for xi, yi in zip(px(x[shown]), py(v[shown])):
        add("circle", "actual", cx=f"{xi:.1f}", cy=f"{yi:.1f}", r=f"{r:.1f}", fill=C["actual"])
    base = ay0 + ah
    if year_labels and len(x):
        add("path", "axis", d=_path([ax0, ax0 + aw], [base, base]), stroke=axis,
            stroke_width="0.8", fill="none")
        for yr in sorted({int(x.min()), int(x.max())}):
            tx = float(px(yr))
            add("path", "tick", d=_path([tx, tx], [base, base + 2 * PX_PER_PT]),
                stroke=axis, stroke_width="0.8")
            t = add("text", "year", x=f"{tx:.1f}", y=f"{base + 10.5 * PX_PER_PT:.1f}",
                    font_size=f"{6.5 * PX_PER_PT:.1f}", text_anchor="middle", fill=axis)
            t.text = str(yr)
    return Sparkline(ET.tostring(svg, encoding="unicode"), title=title)
