"""awol_timing on a hand-built bundle (shares, onset hours, thin-data handling)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dmst_eval import recidivism as rc
from dmst_eval.casedata import CaseData

T = pd.Timestamp


def _bundle() -> CaseData:
    kids = [f"k{i}" for i in range(6)]
    children = pd.DataFrame({"child_id": kids, "sex": ["female"] * 6,
                             "birth_date": [T("2000-01-01")] * 6})
    placements = pd.DataFrame({"placement_id": [f"p{i}" for i in range(6)], "child_id": kids,
                               "setting": ["group_home"] * 6,
                               "start": [T("2013-01-01")] * 6, "end": [pd.NaT] * 6})
    aw_start = [T("2014-01-01 08:00"), T("2014-02-01 20:00"), T("2014-03-01"),
                T("2014-04-01 12:00")]
    awol = pd.DataFrame({"awol_id": ["a0", "a1", "a2", "a3"], "child_id": kids[:4],
                         "placement_id": ["p0", "p1", "p2", "p3"], "start": aw_start,
                         "end": [s + pd.Timedelta(days=12) for s in aw_start]})
    # onset 10 h, 30 h, 60 h and 200 h after running; k4 from placement, k5 from home
    began = [aw_start[0] + pd.Timedelta(hours=10), aw_start[1] + pd.Timedelta(hours=30),
             aw_start[2] + pd.Timedelta(hours=60), aw_start[3] + pd.Timedelta(hours=200),
             T("2014-05-01"), T("2014-06-01")]
    episodes = pd.DataFrame({
        "episode_id": [f"e{i}" for i in range(6)], "child_id": kids, "began_at": began,
        "identified_at": [b + pd.Timedelta(days=2) for b in began], "confirmed": [True] * 6,
        "status_at_time": ["awol"] * 4 + ["placement", "home"],
        "awol_id": ["a0", "a1", "a2", "a3", None, None],
    })
    return CaseData.from_frames(children=children, placements=placements, awol_episodes=awol,
                                episodes=episodes,
                                meta={"study_start": "2008-01-01", "study_end": "2016-12-31"})


def test_awol_shares_and_hours():
    res = rc.awol_timing(_bundle())
    s = res.summary
    assert s.loc["share_episodes_during_awol", "estimate"] == pytest.approx(4 / 6)
    lo, hi = rc.wilson_ci(4, 6)
    assert s.loc["share_episodes_during_awol", "ci_lower"] == pytest.approx(float(lo))
    # all six are first episodes
    assert s.loc["share_first_episodes_during_awol", "denominator"] == 6
    assert s.loc["share_repeat_episodes_during_awol", "denominator"] == 0
    np.testing.assert_allclose(res.hours, [10, 30, 60, 200])
    assert s.loc["share_within_48h", "estimate"] == pytest.approx(0.5)
    assert s.loc["share_within_7d", "estimate"] == pytest.approx(0.75)
    assert s.loc["median_hours_to_onset", "estimate"] == pytest.approx(45)
    # four observations are too few for a 95% order-statistic CI of the median
    assert np.isnan(s.loc["median_hours_to_onset", "ci_lower"])
    # no repeat episodes: the hazard ratio is not estimated, and the note says why
    assert np.isnan(res.hazard_ratio["estimate"])
    assert "Too few" in res.note
    assert res.plot() is not None


def test_wilson_by_formula():
    k, n, z = 7, 19, stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    lo, hi = rc.wilson_ci(k, n)
    assert float(lo) == pytest.approx(centre - half)
    assert float(hi) == pytest.approx(centre + half)


def test_median_ci_order_statistics():
    x = np.arange(1, 101, dtype=float)
    lo, hi = rc.awol._median_ci(x, 0.95)
    # n = 100: the 40th and 61st order statistics give >= 95% coverage (binomial)
    assert (lo, hi) == (40.0, 61.0)
    cover = stats.binom.cdf(60, 100, 0.5) - stats.binom.cdf(39, 100, 0.5)
    assert cover >= 0.95


def test_awol_hazard_ratio_time_varying():
    """Simulated children in placement with AWOL spells; exploitation 3x as likely while AWOL."""
    rng = np.random.default_rng(5)
    sim = rc.simulate_recurrent(3000, {"awol": np.log(3.0)}, baseline_rate=0.5,
                                time_varying=("awol",), switch_rate=4.0, prevalence=0.2,
                                seed=rng)
    res = rc.fit_cox(sim, "stop", "event", ["awol"], entry="start", cluster="id")
    s = res.summary.loc["awol"]
    assert s["ci_lower"] < 3.0 < s["ci_upper"]
    assert 2.0 < s["hazard_ratio"] < 4.5
