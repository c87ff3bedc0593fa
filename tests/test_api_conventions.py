"""Library-wide conventions (issue 17): one window rule, one error family, one set of names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dmst_eval import hotspots, recidivism, risk
from dmst_eval.errors import InputError

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def cd():
    from dmst_eval.synthetic import generate

    return generate(seed=1)


def _first_confirmed(cd) -> pd.Series:
    ep = cd.episodes[cd.episodes["confirmed"].fillna(False).astype(bool)]
    return ep.groupby("child_id", observed=True)["identified_at"].min()


# ---------------------------------------------------------------------------------------------
# 3. One window rule: start and end are whole days, both inclusive
# ---------------------------------------------------------------------------------------------
def test_risk_window_end_is_a_whole_inclusive_day(cd):
    first = _first_confirmed(cd)
    in_2015 = first[(first >= "2015-01-01") & (first < "2016-01-01")].sort_values()
    t = in_2015.iloc[len(in_2015) // 2]                  # an identification with a time of day
    assert t != t.normalize()
    day = t.normalize()
    a = risk.analysis_frame(cd, "2015-01-01", str(day.date()), population="all")
    b = risk.analysis_frame(cd, "2015-01-01", f"{day.date()} 23:59", population="all")
    assert a["victim"].sum() == b["victim"].sum()
    # hand count: first confirmed identification in [1 Jan 2015, end of `day`], under 18 at start
    birth = cd.children.set_index("child_id")["birth_date"].reindex(first.index)
    young = (pd.Timestamp("2015-01-01") - birth).dt.days / 365.25 < 18
    want = int(((first >= "2015-01-01") & (first < day + DAY) & young).sum())
    assert a["victim"].sum() == want
    assert a.set_index("child_id").loc[in_2015.index[len(in_2015) // 2], "victim"] == 1


def test_recurrent_frame_and_awol_timing_include_the_end_day(cd):
    first = _first_confirmed(cd)
    t = first[(first >= "2014-01-01") & (first < "2015-01-01")].sort_values().iloc[5]
    day = str(t.normalize().date())
    rf = recidivism.recurrent_frame(cd, "2012-01-01", day)
    rf2 = recidivism.recurrent_frame(cd, "2012-01-01", f"{day} 23:59")
    pd.testing.assert_frame_equal(rf, rf2)
    assert first.index[first == t][0] in set(rf["child_id"])      # identified on the end day
    # follow-up runs to the end of the last day (midnight after it) unless the child aged out
    last = rf.groupby("child_id").tail(1).set_index("child_id")
    open_ = last[last["aged_out"] == 0]
    t0 = first.reindex(open_.index)
    np.testing.assert_allclose(open_["stop"], (pd.Timestamp(day) + DAY - t0) / DAY)

    ep = cd.episodes[cd.episodes["confirmed"].fillna(False).astype(bool)]
    began = ep["began_at"].sort_values()
    b = began[(began >= "2014-01-01")].iloc[3]
    end = str(b.normalize().date())
    r1 = recidivism.awol_timing(cd, "2012-01-01", end, min_events=10**6)
    r2 = recidivism.awol_timing(cd, "2012-01-01", f"{end} 23:59", min_events=10**6)
    n = r1.summary.loc["share_episodes_during_awol", "denominator"]
    assert n == r2.summary.loc["share_episodes_during_awol", "denominator"]
    assert n == ((began >= "2012-01-01") & (began < b.normalize() + DAY)).sum()


def test_hotspots_window_matches_the_rule(cd):
    ev = hotspots.case_events(cd, "2015-01-01", "2015-11-22")
    ev2 = hotspots.case_events(cd, "2015-01-01 08:00", "2015-11-22 23:59")
    assert len(ev) == len(ev2)
    ep = cd.episodes[cd.episodes["confirmed"].fillna(False).astype(bool)]
    d = ep["identified_at"]
    assert len(ev) == ((d >= "2015-01-01") & (d < "2015-11-23")).sum()
    with pytest.raises(InputError, match="before start"):
        hotspots.case_events(cd, "2015-02-01", "2015-01-31")
