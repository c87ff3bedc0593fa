"""Maps: choropleths and categorical maps of areas."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ._util import _const, _new_ax, _suppressed

# ---------------------------------------------------------------------------------------------
# maps
# ---------------------------------------------------------------------------------------------
def choropleth(gdf, column: str, ax=None, scheme: str | None = "fisher_jenks", k: int = 5,
               cmap: str | None = None, suppressed=None, suppress_below: int | None = 5,
               legend_title: str | None = None, title: str | None = None, fmt: str = "{:.1f}",
               zero_class: bool = True):
    """Static choropleth (mapclassify classes, colour-blind-safe sequential map; darker = higher).

    Zeros get their own white class (``zero_class``), positive values ``k`` classes of
    ``scheme`` (any mapclassify scheme). Areas where ``suppressed`` is True are drawn hatched
    grey, their values hidden, and labelled "suppressed (<k)" in the legend; missing values are
    "no data".

    Examples
    --------
    >>> from dmst_eval import geography
    >>> ax = choropleth(geography.towns(), "land_area_sq_km")
    """
    from dmst_eval import plots as _plots
    import matplotlib as mpl
    from matplotlib.patches import Patch

    ax = _new_ax(ax, "map")
    cmap = cmap or _const("SEQUENTIAL", "cividis") + "_r"
    cm = mpl.colormaps[cmap]
    supp = np.zeros(len(gdf), dtype=bool) if suppressed is None else np.asarray(suppressed, bool)
    vals_all = pd.to_numeric(gdf[column], errors="coerce").to_numpy(dtype=float)
    nodata = ~np.isfinite(vals_all) & ~supp
    zero = (vals_all == 0) & ~supp & zero_class
    rest = ~supp & ~nodata & ~zero
    handles, labels = [], []
    edge = dict(edgecolor="white", linewidth=0.3)
    from dmst_eval import plots

    with plots.deferred_draw(ax.figure):  # one render when saved/shown, not one per layer
        if zero.any():
            gdf[zero].plot(ax=ax, facecolor="white", edgecolor=_plots.GREY_LIGHT, linewidth=0.3)
            handles.append(Patch(facecolor="white", edgecolor=_plots.GREY))
            labels.append("0")
        if rest.any():
            v = vals_all[rest]
            uniq = np.unique(v)
            if scheme and len(uniq) > k:
                import mapclassify

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cls = mapclassify.classify(v, scheme=scheme, k=k)
                bins, yb = np.asarray(cls.bins, dtype=float), np.asarray(cls.yb)
                lows = np.r_[v.min(), bins[:-1]]
                labs = [f"{fmt.format(lo)} – {fmt.format(hi)}" for lo, hi in zip(lows, bins)]
            else:
                bins, yb = uniq, np.searchsorted(uniq, v)
                labs = [fmt.format(b) for b in uniq]
            nb = len(bins)
            cols = [cm(0.12 + 0.88 * i / max(nb - 1, 1)) for i in range(nb)]
            sub = gdf[rest]
            sub.plot(ax=ax, color=[cols[i] for i in yb], **edge)
            for i in range(nb):
                if (yb == i).any():
                    handles.append(Patch(facecolor=cols[i], edgecolor="white"))
                    labels.append(labs[i])
        if supp.any():
            gdf[supp].plot(ax=ax, facecolor=_const("SUPPRESSED_COLOR", _plots.SUPPRESSED_COLOR),
                           hatch=_const("SUPPRESSED_HATCH", "///"), edgecolor=_plots.GREY_EDGE,
                           linewidth=0.3)
            handles.append(Patch(facecolor=_const("SUPPRESSED_COLOR", _plots.SUPPRESSED_COLOR),
                                 hatch=_const("SUPPRESSED_HATCH", "///"),
                                 edgecolor=_plots.GREY_EDGE))
            labels.append(f"suppressed (<{suppress_below})")
        if nodata.any():
            gdf[nodata].plot(ax=ax, facecolor=_plots.NO_DATA_COLOR, edgecolor=_plots.GREY_LIGHT,
                             linewidth=0.3)
            handles.append(Patch(facecolor=_plots.NO_DATA_COLOR, edgecolor=_plots.GREY_LIGHT))
            labels.append("no data")
    ax.legend(handles, labels, title=legend_title, loc="lower right", fontsize=8,
              title_fontsize=8.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _categorical_explore(g, column: str, colors: dict, **kw):
    """Interactive (folium) map of a categorical column in the given category colours."""
    cats = [c for c in colors if c in set(g[column])]
    return g.explore(column=column, categories=cats, cmap=[colors[c] for c in cats], **kw)


def _categorical_map(g, column, colors, ax=None, title=None, legend_title=None):
    from dmst_eval import plots as _plots
    from matplotlib.patches import Patch

    ax = _new_ax(ax, "map")
    handles, labels = [], []
    from dmst_eval import plots

    with plots.deferred_draw(ax.figure):
        for cat, col in colors.items():
            sub = g[g[column] == cat]
            if len(sub):
                sub.plot(ax=ax, color=col, edgecolor="white", linewidth=0.3)
            n = len(sub)
            handles.append(Patch(facecolor=col, edgecolor=_plots.GREY))
            labels.append(f"{cat} ({n})")
    ax.legend(handles, labels, title=legend_title, loc="upper center", fontsize=8,
              title_fontsize=8.5, bbox_to_anchor=(0.5, 0.02), ncol=3)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _explore(gdf, column, by, suppress_below, **kw):
    from dmst_eval import plots as _plots
    g = gdf.copy()
    if suppress_below and "events" in g:
        supp = _suppressed(g["events"], suppress_below)
        g[column] = g[column].astype(float).where(~supp)
        g["events"] = g["events"].astype(object).where(~supp, f"<{suppress_below}")
        for c in ("ci_lower", "ci_upper"):
            if c in g:
                g[c] = g[c].where(~supp)
        kw.setdefault("missing_kwds", {"color": _plots.SUPPRESSED_COLOR,
                                       "label": f"suppressed (<{suppress_below})"})
    for c in g.columns:
        if g[c].dtype.kind == "f":
            g[c] = g[c].round(2)
    if "suppressed" in g:
        g = g.drop(columns="suppressed")
    kw.setdefault("cmap", _const("SEQUENTIAL", "cividis"))
    kw.setdefault("tooltip", [c for c in g.columns if c != "geometry"])
    return g.explore(column=column, **kw)
