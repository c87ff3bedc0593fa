"""Figures in one house style.

Every figure in the library, the notebooks and the briefs goes through this module so that the
briefs look the same whoever wrote the analysis:

* :func:`apply_style` sets matplotlib defaults (white background, light grid, readable fonts,
  colour-blind-safe Okabe–Ito colour cycle);
* :data:`OKABE_ITO` is the qualitative palette (Okabe & Ito 2008), :data:`SEQUENTIAL` /
  :data:`DIVERGING` name the colour maps for maps and heat maps (cividis is perceptually uniform
  and readable with all common colour-vision deficiencies);
* :data:`FIGSIZE` holds the standard figure sizes (inches) used in briefs;
* :func:`save_figure` writes a figure as PNG (and optionally SVG/PDF) into a figures folder with
  a safe file name.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from dmst_eval import plots
>>> plots.apply_style()
>>> fig, ax = plots.new_figure("wide")
>>> _ = ax.plot([0, 1], [0, 1], color=plots.OKABE_ITO["blue"])
>>> fig.get_size_inches().tolist() == list(plots.FIGSIZE["wide"])
True
"""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Iterable

import matplotlib as mpl
import matplotlib.pyplot as plt
from cycler import cycler

#: Okabe–Ito qualitative palette (colour-blind safe), by name.
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
#: Default order of the colour cycle (black last: it is reserved for reference lines).
PALETTE: list[str] = [OKABE_ITO[k] for k in
                      ("blue", "orange", "green", "vermillion", "sky_blue", "purple", "yellow",
                       "black")]
#: Sequential colour map for rates and counts (maps, heat maps).
SEQUENTIAL = "cividis"
#: Alternative sequential colour map.
SEQUENTIAL_ALT = "viridis"
#: Diverging colour map for relative risks / differences around a reference value.
DIVERGING = "PuOr_r"
#: Colour for reference lines (null effect, baseline, target).
REFERENCE_COLOR = "#555555"
#: Fill colour and hatch for suppressed or missing areas on maps.
SUPPRESSED_COLOR = "#DDDDDD"
SUPPRESSED_HATCH = "///"

#: Colours by role, used by every trend chart (scorecard charts and sparklines included).
ROLE_COLORS: dict[str, str] = {
    "actual": OKABE_ITO["blue"],          # what happened
    "forecast": OKABE_ITO["vermillion"],  # the baseline forecast ("the curve") and its band
    "target": OKABE_ITO["green"],         # the target line
    "reporting": "#9AA5B1",               # shading of the reporting period (neutral grey-blue)
    "value": OKABE_ITO["black"],          # the reporting-period value
}
#: Background colours of verdicts in tables (pale, so black text stays readable in print).
VERDICT_COLORS: dict[str, str] = {
    "met": "#D4EDDA",
    "not met": "#F8D7C8",
    "turned the curve for the better": "#D4EDDA",
    "turned the curve for the worse": "#F8D7C8",
    "no change from the baseline forecast": "#EEEEEE",
}
#: The house fonts (figures and briefs).
FONT_FAMILY: list[str] = ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"]
#: Colours of the printed brief (text, headings, rules, table header and stripes, banner).
BRIEF_COLORS: dict[str, str] = {
    "text": "#1A1A1A",
    "heading": "#0B3C5D",
    "muted": "#555555",
    "rule": "#C8CED6",
    "table_header": "#E8EEF4",
    "table_stripe": "#F7F9FB",
    "banner_background": "#FFF3CD",
    "banner_border": OKABE_ITO["orange"],
    "banner_text": "#3D2C00",
}
# --- Named greys used by the analysis modules (issue 17: no hex colours outside plots) --------
#: Outline of a scan cluster that is not significant.
GREY_DARK = "#777777"
#: Edge of suppressed (hatched) areas.
GREY_EDGE = "#8A8A8A"
#: Observed points behind a fitted line; legend patch edges.
GREY = "#999999"
#: Area boundaries on maps.
GREY_LIGHT = "#BBBBBB"
#: Areas that are not significant (LISA, Gi*).
NOT_SIGNIFICANT_COLOR = "#E8E8E8"
#: The "other" category on categorical maps.
OTHER_COLOR = "#EEEEEE"
#: Background areas under a scan-cluster map.
BACKGROUND_AREA_COLOR = "#F2F2F2"
#: Areas without data (no population).
NO_DATA_COLOR = "#F0F0F0"
# ---------------------------------------------------------------------------------------------

#: Standard figure sizes (width, height) in inches for briefs and notebooks.
FIGSIZE: dict[str, tuple[float, float]] = {
    "small": (4.5, 3.2),      # a single small panel
    "default": (6.5, 4.0),    # one panel, the full text width of a brief
    "wide": (9.0, 4.0),       # time series
    "tall": (6.5, 6.5),       # forest plots with many terms
    "map": (7.5, 5.5),        # Connecticut town map
    "panel2": (9.0, 3.8),     # two panels side by side
}
#: Resolution for saved PNGs (and embedded brief figures).
DPI = 110

_STYLE = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#E5E5E5",
    "grid.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10.5,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.5,
    "legend.frameon": False,
    "font.size": 10.5,
    "font.family": "sans-serif",
    "font.sans-serif": FONT_FAMILY,
    "lines.linewidth": 1.8,
    "image.cmap": SEQUENTIAL,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "figure.dpi": DPI,
    "figure.figsize": FIGSIZE["default"],
    "figure.max_open_warning": 50,
}


def apply_style() -> None:
    """Set the house style as matplotlib defaults (idempotent): seaborn's ``whitegrid`` theme
    with the house palette (:data:`PALETTE`), fonts (:data:`FONT_FAMILY`) and the settings
    below on top.

    Examples
    --------
    >>> from dmst_eval import plots
    >>> plots.apply_style()
    >>> import matplotlib as mpl
    >>> mpl.rcParams["image.cmap"]
    'cividis'
    """
    global _THEMED
    if not _THEMED:
        import seaborn as sns

        sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font="sans-serif",
                      rc=_STYLE)
        _THEMED = True
    mpl.rcParams.update(_STYLE)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=PALETTE)


_THEMED = False


def table_css(selector: str = "table") -> str:
    """CSS for tables in the house style (briefs, HTML exports), from the same colours and
    fonts as the figures.

    Examples
    --------
    >>> "border-collapse" in table_css()
    True
    """
    c = BRIEF_COLORS
    fonts = css_fonts()
    return (
        f"{selector}{{border-collapse:collapse;font-family:{fonts};font-size:10pt;"
        f"color:{c['text']};margin:6px 0 12px}}\n"
        f"{selector} caption{{caption-side:top;text-align:left;font-weight:bold;"
        f"color:{c['heading']};padding:4px 0}}\n"
        f"{selector} th{{background:{c['table_header']};text-align:left;font-weight:bold;"
        f"border-bottom:1.5px solid {c['heading']};padding:4px 7px;vertical-align:bottom}}\n"
        f"{selector} td{{border-bottom:1px solid {c['rule']};padding:3px 7px;"
        f"vertical-align:top}}\n"
        f"{selector} tbody tr:nth-child(even){{background:{c['table_stripe']}}}\n"
        f"{selector} td.num,{selector} th.num,{selector} td.dmst-count{{text-align:right;"
        f"font-variant-numeric:tabular-nums}}\n")


def css_fonts() -> str:
    """The house font stack as a CSS ``font-family`` value."""
    return ", ".join(f'"{f}"' if " " in f else f for f in FONT_FAMILY) + ", sans-serif"


def css_variables() -> str:
    """The house colours and fonts as CSS custom properties (``--dmst-text``, ``--dmst-heading``,
    ``--dmst-actual`` …) for the brief's style sheet.

    Examples
    --------
    >>> "--dmst-heading:#0B3C5D" in css_variables()
    True
    """
    props = {**{k.replace("_", "-"): v for k, v in BRIEF_COLORS.items()},
             **{k: v for k, v in ROLE_COLORS.items()}, "fonts": css_fonts()}
    return ":root{" + ";".join(f"--dmst-{k}:{v}" for k, v in props.items()) + "}\n"


def colors(n: int) -> list[str]:
    """The first ``n`` colours of the qualitative palette (cycled if ``n`` > 8).

    Examples
    --------
    >>> colors(2)
    ['#0072B2', '#E69F00']
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def new_figure(size: str | tuple[float, float] = "default", nrows: int = 1, ncols: int = 1,
               **kwargs):
    """A figure and axes in house style; ``size`` is a key of :data:`FIGSIZE` or (w, h).

    Examples
    --------
    >>> fig, axes = new_figure("panel2", ncols=2)
    >>> len(axes)
    2
    """
    apply_style()
    if isinstance(size, str):
        if size not in FIGSIZE:
            raise ValueError(f"unknown figure size {size!r}; expected one of {sorted(FIGSIZE)}")
        size = FIGSIZE[size]
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=size, **kwargs)


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name).strip()).strip("._")
    if not stem:
        raise ValueError(f"figure name {name!r} has no usable characters")
    return stem


def _bbox(fig) -> str:
    """``savefig.bbox`` for ``fig``: a figure with a layout engine (house style: constrained)
    already fits its labels, and a second "tight" pass would draw the whole figure twice."""
    return "standard" if fig.get_layout_engine() is not None else "tight"


def png_bytes(fig, dpi: int = DPI) -> bytes:
    """``fig`` as PNG bytes, rendered once.

    A figure on an Agg canvas (the default and Jupyter's inline backend) is drawn directly:
    its layout engine, if any, runs inside that one draw, where ``savefig`` would first walk
    the whole figure once more just to lay it out. Other canvases go through ``savefig`` (see
    :func:`save_figure` for the bounding box).

    Examples
    --------
    >>> fig, ax = new_figure("small")
    >>> png_bytes(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    buf = io.BytesIO()
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        with mpl.rc_context({"savefig.bbox": _bbox(fig)}):
            # zlib level 3: as small as the default level 6 for flat-colour charts, faster
            fig.savefig(buf, format="png", dpi=dpi, facecolor="white",
                        pil_kwargs={"compress_level": 3})
        return buf.getvalue()
    from PIL import Image

    old_dpi, old_face = fig.dpi, fig.get_facecolor()
    try:
        fig.dpi = dpi
        fig.set_facecolor("white")
        canvas.draw()
        img = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                               "RGBA", 0, 1)
        img.save(buf, format="png", compress_level=3)
    finally:
        fig.dpi = old_dpi
        fig.set_facecolor(old_face)
    return buf.getvalue()


#: Average glyph width of the house sans-serif font, in ems (measured: about 0.53 for tick
#: labels); generous, so the margins estimated from it do not clip a label.
_EM_WIDTH = 0.66


def fit_margins(fig, pad: float = 0.1) -> bool:
    """Give a one-row figure fixed margins, estimated from its labels, instead of its
    constrained layout; return whether it did.

    Constrained layout measures every tick label twice before the figure is drawn (about a
    third of the time it takes to render a brief's figure). For the simple figures of a brief
    (one row of axes, text only in tick labels, axis labels and titles, legends inside the
    axes) margins in inches can be worked out from the text itself: tick-label length in
    characters × font size × an average glyph width, plus the tick and label pads. The estimate
    errs on the side of space. Figures with anything else (colorbars, figure legends or titles,
    several rows, axes outside a grid) are left unchanged and keep their layout engine.

    Examples
    --------
    >>> fig, ax = new_figure("small")
    >>> _ = ax.plot([0, 100], [0, 0.5]); _ = ax.set_ylabel("share"); _ = ax.set_title("A")
    >>> fit_margins(fig)
    True
    >>> x0, y0, x1, y1 = ax.get_position().extents
    >>> bool(0.1 < x0 < 0.3 and 0.1 < y0 < 0.3 and 0.85 < x1 < 1 and 0.75 < y1 < 0.95)
    True
    """
    rc = mpl.rcParams
    axes = fig.axes
    if not axes or fig.legends or getattr(fig, "_suptitle", None) is not None or fig.texts:
        return False
    specs = [a.get_subplotspec() for a in axes]
    if any(sp is None for sp in specs):
        return False
    gs = specs[0].get_gridspec()
    if gs.nrows != 1 or any(sp.get_gridspec() is not gs for sp in specs) or len(axes) != gs.ncols:
        return False
    axes = sorted(axes, key=lambda a: a.get_subplotspec().colspan.start)

    def size(key):
        v = rc[key]
        return float(v) if not isinstance(v, str) else mpl.font_manager.FontProperties(
            size=v).get_size_in_points()

    def chars(texts):
        return max((len(t.get_text()) for t in texts), default=0)

    pt = 1 / 72
    tick = (rc["xtick.major.size"] + rc["xtick.major.pad"]) * pt
    lefts, bottoms, tops = [], [], []
    for a in axes:
        if not a.axison:
            return False
        ys, xs = size("ytick.labelsize"), size("xtick.labelsize")
        left = chars(a.get_yticklabels()) * ys * _EM_WIDTH * pt + tick
        if a.get_ylabel():
            left += size("axes.labelsize") * 1.3 * pt + rc["axes.labelpad"] * pt
        bottom = xs * 1.3 * pt + tick
        if a.get_xlabel():
            bottom += size("axes.labelsize") * 1.3 * pt + rc["axes.labelpad"] * pt
        top = size("axes.titlesize") * 1.4 * pt + rc["axes.titlepad"] * pt \
            if (a.get_title() or a.get_title("left") or a.get_title("right")) else 0.0
        lefts.append(left)
        bottoms.append(bottom)
        tops.append(top)
    # the last x tick label may stick out to the right by half its width
    xl = axes[-1].get_xticklabels()
    right = max(pad, chars(xl[-1:]) * size("xtick.labelsize") * _EM_WIDTH * pt / 2 + pad)
    w, h = fig.get_size_inches()
    left, bottom, top = lefts[0] + pad, max(bottoms) + pad, max(tops) + pad
    n = len(axes)
    gap = (max(lefts[1:]) + right) if n > 1 else 0.0
    ax_w = (w - left - right - gap * (n - 1)) / n
    if ax_w <= 0.3 * w / n or h - bottom - top <= 0.3 * h:
        return False  # text would take most of the figure: leave it to the layout engine
    # titles are not wrapped: one wider than its axes (plus the right margin) would be cut off
    ts = size("axes.titlesize") * 0.62 * pt  # bold glyphs average ~0.58 em
    if any(max(len(a.get_title(loc)) for loc in ("left", "center", "right")) * ts
           > ax_w + right for a in axes):
        return False
    fig.set_layout_engine("none")
    # the grid's own parameters (subplots_adjust refuses once a layout engine has been used)
    gs.update(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
              wspace=gap / ax_w if n > 1 else None)
    return True


@contextlib.contextmanager
def deferred_draw(fig):
    """Within this block, ``fig.canvas.draw_idle()`` does nothing.

    Plotting helpers such as ``GeoDataFrame.plot`` ask for an immediate redraw after every
    layer; on the non-interactive backends used for briefs and saved figures that is a full
    render of the figure per layer, thrown away when the figure is saved. Use this around
    layered map drawing; the figure is drawn once, when it is saved or shown.

    Examples
    --------
    >>> fig, ax = new_figure("small")
    >>> with deferred_draw(fig):
    ...     _ = ax.plot([0, 1], [0, 1])
    >>> "draw_idle" in vars(fig.canvas)
    False
    """
    from matplotlib.backend_bases import FigureCanvasBase

    canvas = fig.canvas
    canvas.draw_idle = lambda *a, **k: None
    try:
        yield fig
    finally:
        del canvas.draw_idle
        if type(canvas).draw_idle is not FigureCanvasBase.draw_idle:
            canvas.draw_idle()  # an interactive canvas schedules one redraw (cheap)


def save_figure(fig, name: str, figures_dir: str | Path | None = "figures",
                formats: Iterable[str] = ("png",), dpi: int = DPI) -> Path | None:
    """Save ``fig`` as ``<figures_dir>/<name>.<fmt>`` for each format; return the PNG path.

    ``name`` is made file-system safe (anything but letters, digits, ``.``, ``_`` and ``-``
    becomes ``_``; an extension in ``name`` is dropped). ``figures_dir=None`` saves nothing and
    returns ``None`` (handy in briefs that only display figures). The folder is created if needed.

    Examples
    --------
    >>> import tempfile
    >>> fig, ax = new_figure("small")
    >>> p = save_figure(fig, "rates by region", tempfile.mkdtemp())
    >>> p.name
    'rates_by_region.png'
    """
    if figures_dir is None:
        return None
    out = Path(figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = _safe_name(re.sub(r"\.(png|svg|pdf)$", "", str(name), flags=re.I))
    fmts = [f.lower().lstrip(".") for f in formats]
    bad = [f for f in fmts if f not in {"png", "svg", "pdf"}]
    if bad or not fmts:
        raise ValueError(f"unsupported figure format(s) {bad or fmts}; use png, svg or pdf")
    paths = {}
    for fmt in fmts:
        paths[fmt] = out / f"{stem}.{fmt}"
        with mpl.rc_context({"savefig.bbox": _bbox(fig)}):
            fig.savefig(paths[fmt], dpi=dpi, facecolor="white")
    return paths.get("png", paths[fmts[0]])


def reference_line(ax, value: float = 1.0, orientation: str = "vertical", **kwargs):
    """Draw a dashed grey reference line (null effect / baseline) on ``ax``; return ``ax``."""
    kw = {"color": REFERENCE_COLOR, "linestyle": "--", "linewidth": 1.0, "zorder": 1}
    kw.update(kwargs)
    if orientation == "vertical":
        ax.axvline(value, **kw)
    elif orientation == "horizontal":
        ax.axhline(value, **kw)
    else:
        raise ValueError(f"orientation must be 'vertical' or 'horizontal', got {orientation!r}")
    return ax


def forest_plot(summary, term: str = "term", estimate: str = "odds_ratio",
                lower: str = "ci_lower", upper: str = "ci_upper", ax=None, log: bool = True,
                null: float = 1.0, xlabel: str | None = None, title: str | None = None):
    """Forest plot of estimates with confidence intervals (one row per term); return the Axes.

    Parameters
    ----------
    summary : DataFrame
        One row per term with the estimate and its interval.
    term, estimate, lower, upper : str
        Column names.
    log : bool
        Log scale on the x axis (ratios).
    null : float
        Value of no effect, drawn as a reference line.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"term": ["a", "b"], "odds_ratio": [2.0, 0.5],
    ...                    "ci_lower": [1.2, 0.3], "ci_upper": [3.1, 0.9]})
    >>> ax = forest_plot(df)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['b', 'a']
    """
    import numpy as np

    missing = [c for c in (term, estimate, lower, upper) if c not in summary.columns]
    if missing:
        raise ValueError(f"forest_plot: summary lacks column(s) {missing}; "
                         f"has {list(summary.columns)}")
    if ax is None:
        n = len(summary)
        _, ax = new_figure((6.5, max(2.0, 0.45 * n + 1.2)))
    df = summary.reset_index(drop=True).iloc[::-1]
    y = np.arange(len(df))
    est = df[estimate].astype(float).to_numpy()
    lo = df[lower].astype(float).to_numpy()
    hi = df[upper].astype(float).to_numpy()
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color=OKABE_ITO["blue"],
                ecolor=OKABE_ITO["blue"], capsize=3, markersize=5)
    reference_line(ax, null)
    ax.set_yticks(y)
    ax.set_yticklabels(df[term].astype(str).tolist())
    if log:
        log_ratio_axis(ax, np.r_[lo, hi, est, null])
    ax.set_xlabel(xlabel or estimate.replace("_", " "))
    if title:
        ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return ax


#: Tick values offered on a log-scaled ratio axis (odds, hazard or rate ratios).
RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 4, 5, 10, 20, 50, 100)


def log_ratio_axis(ax, values, axis: str = "x"):
    """Log scale for ratios, ticked at plain numbers (0.5, 1, 2, 4 …) instead of powers of ten.

    Plain labels read better for non-statisticians than ``10^0``, and skip the mathtext
    typesetting matplotlib would do for every tick. About seven ticks are kept, spread over the
    range of ``values`` (finite, positive ones), always with 1 when it is in range; there are
    no minor ticks.

    Examples
    --------
    >>> fig, ax = new_figure("small")
    >>> _ = ax.plot([0.4, 3.0], [0, 1])
    >>> _ = log_ratio_axis(ax, [0.4, 3.0])
    >>> [f"{t:g}" for t in ax.get_xticks()]
    ['0.5', '1', '2']
    """
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    lo, hi = (v.min(), v.max()) if v.size else (0.5, 2.0)
    ticks = [t for t in RATIO_TICKS if lo <= t <= hi] or [1.0]
    if len(ticks) > 7:  # keep the ends and 1, thin the rest evenly
        idx = np.unique(np.round(np.linspace(0, len(ticks) - 1, 7)).astype(int))
        ticks = sorted({ticks[i] for i in idx} | ({1} if lo <= 1 <= hi else set()))
    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    a.set_major_locator(FixedLocator(ticks))
    a.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    a.set_minor_locator(NullLocator())
    return ax



# ---------------------------------------------------------------------------------------------
# Maps and small charts the briefs share (added for the agency's five questions)
# ---------------------------------------------------------------------------------------------
def high_colormap() -> str:
    """The one colour map for "high" on every rate map: darker = higher (reversed
    :data:`SEQUENTIAL`, as :func:`dmst_eval.hotspots.choropleth` draws).

    Examples
    --------
    >>> high_colormap()
    'cividis_r'
    """
    return SEQUENTIAL + "_r"


def statewide_breaks(values, k: int = 5):
    """Upper bounds of ``k`` colour classes (Fisher–Jenks) from statewide values, so that every
    brief — statewide and regional — colours the same rate the same way.

    Zeros and missing values are left out (zero has its own white class on the maps).

    Examples
    --------
    >>> statewide_breaks([0, 1, 2, 3]).tolist()
    [1.0, 2.0, 3.0]
    """
    import warnings

    import numpy as np
    import pandas as pd

    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    uniq = np.unique(v)
    if len(uniq) <= k:
        return uniq.astype(float)
    import mapclassify

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(mapclassify.FisherJenks(v, k=k).bins, dtype=float)


def town_rate_map(gdf, column: str, *, counts: str | None = None, threshold: int = 5,
                  breaks=None, region: str | None = None, label=(), clusters=(), ax=None,
                  legend_title: str | None = None, title: str | None = None,
                  fmt: str = "{:.2f}"):
    """Town map of a rate with shared colour breaks, hidden small counts, region outlines,
    labelled towns and outlined clusters.

    Parameters
    ----------
    gdf : GeoDataFrame
        One row per town: ``town``, ``column``, a region column (``region`` or
        ``dcf_region``) and geometry.
    column : str
        The rate to colour.
    counts : str, optional
        Count column: towns with 1 to ``threshold - 1`` are drawn hatched grey (value hidden),
        towns with 0 white.
    breaks : array-like, optional
        Upper class bounds (:func:`statewide_breaks`); default from the values drawn.
    region : str, optional
        Draw only this region's towns (outlined), with the statewide breaks.
    label : sequence of str
        Towns to name on the map (e.g. the highest rates).
    clusters : sequence of sequences of str
        Groups of towns to outline (e.g. significant scan clusters).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from dmst_eval import geography
    >>> g = geography.towns().assign(rate=1.0, n=10)
    >>> ax = town_rate_map(g, "rate", counts="n", label=["Hartford"])
    >>> [t.get_text() for t in ax.texts]
    ['Hartford']
    """
    import matplotlib.patheffects as pe
    import numpy as np
    import pandas as pd
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from dmst_eval import geography

    apply_style()
    if ax is None:
        _, ax = new_figure("map")
    reg_col = "region" if "region" in gdf.columns else "dcf_region"
    g = gdf.to_crs(geography.CT_CRS) if gdf.crs is not None and gdf.crs.is_geographic else gdf
    if region is not None:
        g = g[g[reg_col] == region]
    g = g.reset_index(drop=True)
    vals = pd.to_numeric(g[column], errors="coerce").to_numpy(dtype=float)
    n = (pd.to_numeric(g[counts], errors="coerce").to_numpy(dtype=float) if counts
         else np.where(np.isfinite(vals), threshold, np.nan))
    hidden = (n > 0) & (n < threshold)
    zero = (n == 0) | (np.isfinite(vals) & (vals == 0))
    shown = ~hidden & ~zero & np.isfinite(vals)
    if breaks is None:
        breaks = statewide_breaks(vals[shown])
    breaks = np.asarray(breaks, dtype=float)
    cm = mpl.colormaps[high_colormap()]
    nb = max(len(breaks), 1)
    cols = [cm(0.12 + 0.88 * i / max(nb - 1, 1)) for i in range(nb)]
    handles, labels = [], []
    with deferred_draw(ax.figure):
        if zero.any():
            g[zero].plot(ax=ax, facecolor="#FFFFFF", edgecolor="#BBBBBB", linewidth=0.3)
        if shown.any() and len(breaks):
            cls = np.clip(np.searchsorted(breaks, vals[shown], side="left"), 0, nb - 1)
            g[shown].plot(ax=ax, color=[cols[i] for i in cls], edgecolor="white",
                          linewidth=0.3)
        if hidden.any():
            g[hidden].plot(ax=ax, facecolor=SUPPRESSED_COLOR, hatch=SUPPRESSED_HATCH,
                           edgecolor="#8A8A8A", linewidth=0.3)
        regions = geography.regions().to_crs(g.crs)
        if region is not None:
            regions = regions[regions["region"] == region]
        regions.boundary.plot(ax=ax, color="#333333", linewidth=1.1)
        for towns in clusters:
            sub = g[g["town"].isin(list(towns))]
            if len(sub):
                sub.dissolve().boundary.plot(ax=ax, color="black", linewidth=2.4)
    for name in label:
        sub = g[g["town"] == name]
        if sub.empty:
            continue
        pt = sub.geometry.representative_point().iloc[0]
        ax.annotate(name, (pt.x, pt.y), ha="center", va="center", fontsize=7.5,
                    fontweight="bold", path_effects=[pe.withStroke(linewidth=2.5,
                                                                    foreground="white")])
    handles.append(Patch(facecolor="#FFFFFF", edgecolor="#999999"))
    labels.append("0")
    lows = np.r_[0.0, breaks[:-1]]
    for i in range(len(breaks)):
        handles.append(Patch(facecolor=cols[i], edgecolor="white"))
        labels.append(f"{fmt.format(lows[i])} – {fmt.format(breaks[i])}")
    if hidden.any():
        handles.append(Patch(facecolor=SUPPRESSED_COLOR, hatch=SUPPRESSED_HATCH,
                             edgecolor="#8A8A8A"))
        labels.append(f"hidden (1 to {threshold - 1})")
    handles.append(Line2D([], [], color="#333333", lw=1.1))
    labels.append("DCF region")
    if len(clusters):
        handles.append(Line2D([], [], color="black", lw=2.4))
        labels.append("significant cluster")
    ax.legend(handles, labels, title=legend_title, loc="lower right", fontsize=7,
              title_fontsize=7.5, frameon=True)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def count_bars(table, x: str, y: str, ax=None, threshold: int = 5,
               ylabel: str | None = None, title: str | None = None,
               hidden_label: str | None = None):
    """A small bar chart of a count by ``x`` (e.g. police reports by year) whose hidden
    (suppressed) cells are marked by a hatched band over the whole axis height
    (:func:`dmst_eval.disclosure.figures.mark_hidden_bars`): never a bar at a value on the
    data axis.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"year": ["2010", "2011"], "n": [12, "<5"]})
    >>> ax = count_bars(t, "year", "n")
    >>> [float(b.get_height()) for b in ax.containers[0]]  # only the shown year is a bar
    [12.0]
    """
    import numpy as np

    from dmst_eval.disclosure.figures import bar_heights, mark_hidden_bars

    apply_style()
    if ax is None:
        _, ax = new_figure((6.5, 2.4))
    v, hid = bar_heights(table[y])
    xs = np.arange(len(table))
    ax.bar(xs[~hid], v[~hid], color=OKABE_ITO["blue"], width=0.8)
    if hid.any():
        mark_hidden_bars(ax, xs, hid, width=0.8, label=hidden_label or
                         f"hidden (fewer than {threshold}; not drawn to scale)")
        ax.legend(frameon=False, fontsize=7)
    shown = v[~hid]
    ax.set_ylim(0, max(1.0, float(np.nanmax(shown)) * 1.15 if shown.size else 1.0))
    step = max(1, len(xs) // 10)
    ax.set_xticks(xs[::step])
    ax.set_xticklabels([str(s) for s in table[x].iloc[::step]])
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    return ax


def its_figure(its, ax=None, yearly=None, threshold: int = 5,
               title: str | None = None):
    """Interrupted-time-series figure: observed counts, fitted line, counterfactual line, the
    intervention, and the level and slope change written on the plot.

    Observed monthly counts are drawn as the average per month of each year
    (``yearly``: columns ``year`` and ``count``, already suppressed; hidden years are not
    drawn), so that no small monthly count is shown; without ``yearly`` the monthly counts of
    ``its.data`` are drawn.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from dmst_eval import evaluation as ev
    >>> idx = pd.date_range("2008-01-01", periods=96, freq="MS")
    >>> y = pd.Series(np.r_[np.full(45, 3), np.full(51, 6)], index=idx)
    >>> ax = its_figure(ev.interrupted_time_series(y, "2011-10-01"))
    >>> len(ax.get_lines()) >= 3
    True
    """
    import numpy as np
    import pandas as pd

    apply_style()
    if ax is None:
        _, ax = new_figure("wide")
    d = its.data
    if yearly is not None:
        yv = pd.to_numeric(yearly["count"], errors="coerce")
        for yr, c in zip(yearly["year"].astype(int), yv):
            if np.isfinite(c):
                ax.hlines(c / 12, pd.Timestamp(year=yr, month=1, day=1),
                          pd.Timestamp(year=yr, month=12, day=31), color="#666666", lw=2.5)
        ax.plot([], [], color="#666666", lw=2.5, label="observed (monthly average of the year)")
    else:
        ax.plot(d["date"], d["observed"], "o", ms=3, color="#888888", label="observed")
    ax.plot(d["date"], d["fitted"], color=OKABE_ITO["blue"], lw=2, label="fitted")
    post = d["post"].astype(bool).to_numpy()
    # the pre-period trend is not extrapolated further than the data that estimated it
    horizon = np.flatnonzero(post)[: int((~post).sum())]
    ax.plot(d["date"].to_numpy()[horizon], d["counterfactual"].to_numpy()[horizon],
            color=OKABE_ITO["vermillion"], ls="--", lw=1.8,
            label="counterfactual (pre-law trend continued)")
    ax.axvline(its.intervention, color=REFERENCE_COLOR, lw=1)
    s = its.summary.set_index("term")
    lc, sc = s.loc["level_change"], s.loc["slope_change"]
    sc_rr = np.exp([sc["estimate"], sc["ci_lower"], sc["ci_upper"]])
    ax.text(0.01, 0.97, f"level change: rate ratio {lc['estimate']:.2f} "
            f"(95% CI {lc['ci_lower']:.2f}–{lc['ci_upper']:.2f})\n"
            f"slope change: ×{sc_rr[0]:.3f} per month "
            f"(95% CI {sc_rr[1]:.3f}–{sc_rr[2]:.3f})",
            transform=ax.transAxes, va="top", fontsize=8,
            bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#CCCCCC"))
    ax.set_ylabel("per month")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, 0.86), fontsize=7.5, frameon=False)
    if title:
        ax.set_title(title)
    return ax
