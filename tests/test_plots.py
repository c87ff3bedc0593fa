"""House style: palette, sizes, saving."""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from dmst_eval import plots


def test_apply_style_sets_okabe_ito_cycle_and_cividis():
    plots.apply_style()
    cyc = [c["color"] for c in mpl.rcParams["axes.prop_cycle"]]
    assert cyc[:3] == ["#0072B2", "#E69F00", "#009E73"]
    assert mpl.rcParams["image.cmap"] == "cividis"
    assert set(plots.OKABE_ITO.values()) == set(plots.PALETTE)


def test_colors_cycles():
    assert plots.colors(9)[8] == plots.PALETTE[0]
    with pytest.raises(ValueError):
        plots.colors(-1)


def test_new_figure_sizes():
    fig, ax = plots.new_figure("map")
    assert tuple(fig.get_size_inches()) == plots.FIGSIZE["map"]
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown figure size"):
        plots.new_figure("huge")


def test_save_figure_safe_name_and_formats(tmp_path):
    fig, ax = plots.new_figure("small")
    ax.plot([0, 1], [1, 0])
    p = plots.save_figure(fig, "Risk factors / forest.png", tmp_path, formats=("svg", "png"))
    assert p == tmp_path / "Risk_factors_forest.png"
    assert p.exists() and (tmp_path / "Risk_factors_forest.svg").exists()
    # PNG magic number
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.save_figure(fig, "x", None) is None
    with pytest.raises(ValueError, match="unsupported"):
        plots.save_figure(fig, "x", tmp_path, formats=("gif",))
    plt.close(fig)


def test_forest_plot_positions_and_log_scale():
    df = pd.DataFrame({"term": ["a", "b", "c"], "odds_ratio": [2.0, 0.5, 1.0],
                       "ci_lower": [1.5, 0.25, 0.8], "ci_upper": [3.0, 0.9, 1.3]})
    ax = plots.forest_plot(df)
    assert ax.get_xscale() == "log"
    # first term on top
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "b", "a"]
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_xdata(), [1.0, 0.5, 2.0])
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="lacks column"):
        plots.forest_plot(df.drop(columns="ci_lower"))


def test_house_theme_is_seaborn_whitegrid_with_the_house_palette_and_fonts():
    import seaborn as sns

    mpl.rcdefaults()
    plots.apply_style()
    # seaborn's whitegrid theme underneath, the house settings on top of it
    assert mpl.rcParams["axes.grid"] is True
    assert mpl.rcParams["grid.color"] == "#E5E5E5"
    assert mpl.rcParams["font.sans-serif"][:2] == plots.FONT_FAMILY[:2]
    assert sns.color_palette().as_hex()[:3] == [c.lower() for c in plots.PALETTE[:3]]
    # applying twice changes nothing
    before = dict(mpl.rcParams)
    plots.apply_style()
    assert dict(mpl.rcParams) == before


def test_brief_css_comes_from_the_same_colours_and_fonts():
    css = plots.css_variables()
    for k, v in plots.BRIEF_COLORS.items():
        assert f"--dmst-{k.replace('_', '-')}:{v}" in css
    for k, v in plots.ROLE_COLORS.items():
        assert f"--dmst-{k}:{v}" in css
    assert plots.css_fonts().startswith('"DejaVu Sans"')
    t = plots.table_css("table.x")
    assert plots.BRIEF_COLORS["table_header"] in t and "td.dmst-count" in t
