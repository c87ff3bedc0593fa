"""The SVG sparklines (dmst_eval.sparkline): geometry against hand-computed positions, gaps
for missing years, escaping and determinism."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from dmst_eval.sparkline import AREA, PX_PER_INCH, sparkline

SVG = "{http://www.w3.org/2000/svg}"


def points(s, role: str) -> list[tuple[float, float]]:
    """The (x, y) pixel positions of a sparkline's dots (``"actual"``) or of the vertices of
    its lines (``"forecast"``, ``"target"``), read back from the SVG."""
    out = []
    for el in ET.fromstring(s.svg).iter():
        if el.get("class") != role:
            continue
        if el.tag == SVG + "circle":
            out.append((float(el.get("cx")), float(el.get("cy"))))
        elif el.tag == SVG + "path":
            for part in el.get("d").rstrip("Z").replace("M", " ").replace("L", " ").split():
                x, y = part.split(",")
                out.append((float(x), float(y)))
    return out


def test_positions_are_the_hand_computed_ones():
    # 3 years, values 0, 10, 5; no forecast or target: y range 0..10 padded by 5% each side
    s = sparkline([2020, 2021, 2022], [0.0, 10.0, 5.0], size=(3.0, 1.0))
    w, h = 3.0 * PX_PER_INCH, 1.0 * PX_PER_INCH
    left, top = AREA[0] * w, (1 - AREA[1] - AREA[3]) * h
    aw, ah = AREA[2] * w, AREA[3] * h
    x = [left + (yr - 2019.5) / 3 * aw for yr in (2020, 2021, 2022)]
    y = [top + ah - (v + 0.5) / 11 * ah for v in (0.0, 10.0, 5.0)]
    got = np.array(points(s, "actual"))
    np.testing.assert_allclose(got[:, 0], x, atol=0.051)
    np.testing.assert_allclose(got[:, 1], y, atol=0.051)
    years = [t.text for t in ET.fromstring(s.svg).iter(SVG + "text")]
    assert years == ["2020", "2022"]


def test_missing_years_leave_a_gap_and_draw_nothing():
    s = sparkline([2018, 2019, 2020, 2021, 2022], [1.0, 2.0, np.nan, 4.0, 5.0],
                  forecast=[1.5, 2.5, 3.5, np.nan, np.nan], lower=[1, 2, 3, np.nan, np.nan],
                  upper=[2, 3, 4, np.nan, np.nan])
    assert len(points(s, "actual")) == 4
    root = ET.fromstring(s.svg)
    lines = [e for e in root.iter() if e.get("class") == "actual-line"]
    assert len(lines) == 2  # broken at the missing year
    assert len(points(s, "forecast")) == 3
    assert sum(e.get("class") == "band" for e in root.iter()) == 1
    nothing = sparkline([2018, 2019], [np.nan, np.nan])
    assert points(nothing, "actual") == [] and "actual-line" not in nothing.svg


def test_title_is_escaped_and_output_is_deterministic(tmp_path):
    a = sparkline([2020, 2021], [1.0, 2.0], target=3.0, shade=(2021, 2021),
                  title='Share <referred> & "seen"')
    b = sparkline([2020, 2021], [1.0, 2.0], target=3.0, shade=(2021, 2021),
                  title='Share <referred> & "seen"')
    assert a.svg == b.svg
    root = ET.fromstring(a.svg)  # well-formed XML
    assert root.find(SVG + "title").text == 'Share <referred> & "seen"'
    assert "&lt;referred&gt; &amp;" in a.svg
    assert a._repr_svg_() == a.svg
    a.save(tmp_path / "s.svg")
    assert ET.parse(tmp_path / "s.svg").getroot().get("class") == "dmst-sparkline"
    # the target line is drawn at its value: above both points
    (_, ty), _ = points(a, "target")
    assert ty < min(y for _, y in points(a, "actual"))


@pytest.mark.parametrize("values", [[5.0], [5.0, 5.0, 5.0]])
def test_flat_or_single_values_are_drawn_in_the_middle(values):
    s = sparkline(list(range(2020, 2020 + len(values))), values)
    h = 0.95 * PX_PER_INCH
    top, ah = (1 - AREA[1] - AREA[3]) * h, AREA[3] * h
    for _, y in points(s, "actual"):
        assert y == pytest.approx(top + ah / 2, abs=0.051)
