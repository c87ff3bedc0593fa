"""AWOL timing: exploitation that begins while a child is absent from care."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from dmst_eval.casedata import confirmed_mask
from dmst_eval.errors import InputError
from dmst_eval.intervals import wilson_ci

from ._util import _bundle_window
from .cox import CoxResult, fit_cox
from .frames import recurrent_frame

__all__ = ['awol_timing', 'AwolTimingResult']


# ============================================================================================
# AWOL timing
# ============================================================================================
def _median_ci(x: np.ndarray, level: float) -> tuple[float, float]:
    """Distribution-free CI for a median from order statistics (binomial, coverage >= level)."""
    x = np.sort(x[~np.isnan(x)])
    n = len(x)
    if n == 0:
        return np.nan, np.nan
    lo_k = int(stats.binom.ppf((1 - level) / 2, n, 0.5))     # number below the lower limit
    if lo_k < 1:
        return np.nan, np.nan                                # too few for a CI
    # P(X < lo_k) <= alpha/2 -> use order statistics lo_k and n - lo_k + 1 (1-based)
    while lo_k > 0 and stats.binom.cdf(lo_k - 1, n, 0.5) > (1 - level) / 2:
        lo_k -= 1
    if lo_k < 1:
        return np.nan, np.nan
    return float(x[lo_k - 1]), float(x[n - lo_k])


@dataclass
class AwolTimingResult:
    """How much exploitation begins while a child is AWOL, and how soon (see :func:`awol_timing`).

    Attributes
    ----------
    summary : DataFrame
        Indexed by measure: estimate, ci_lower, ci_upper, numerator, denominator, method.
    hours : ndarray
        Hours from the start of the AWOL spell to the start of each episode that began during
        one (no identifiers).
    cox : CoxResult or None
        Time-varying Andersen-Gill model on the placement/AWOL time after first identification;
        the ``awol`` hazard ratio compares AWOL with being in placement.
    note : str
        Caveats (e.g. too few events).
    """

    summary: pd.DataFrame
    hours: np.ndarray
    cox: CoxResult | None
    note: str = ""

    @property
    def hazard_ratio(self) -> pd.Series:
        """HR (with CI) of exploitation while AWOL vs in placement."""
        return self.summary.loc["hazard_ratio_awol_vs_placement"]

    def plot(self, ax=None, max_hours: float = 24 * 14):
        """Cumulative share of AWOL-onset episodes by hours since running, 48 h and 7 d marked."""
        from dmst_eval import plots as _plots
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        h = np.sort(self.hours)
        if len(h):
            y = np.arange(1, len(h) + 1) / len(h)
            ax.step(np.concatenate([[0], h]), np.concatenate([[0], y]), where="post",
                    color=_plots.OKABE_ITO["blue"])
        for x, lab in ((48, "48 hours"), (168, "7 days")):
            ax.axvline(x, color=_plots.OKABE_ITO["vermillion"], ls="--", lw=1)
            ax.text(x, 0.03, f" {lab}", color=_plots.OKABE_ITO["vermillion"], fontsize=8)
        ax.set_xlim(0, max_hours)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Hours from going missing to the start of exploitation")
        ax.set_ylabel("Cumulative share of episodes")
        return ax


def awol_timing(cd, start: Any = None, end: Any = None, censor_age: float = 18,
                adjust: Sequence[str] = ("substance_use", "prior_runaway", "male", "service"),
                level: float = 0.95, min_events: int = 5,
                confirmed_only: bool = True) -> AwolTimingResult:
    """AWOL and exploitation: share of episodes that began while AWOL, onset timing, hazard ratio.

    * **Share during AWOL** -- episodes beginning in ``[start, end)`` whose ``status_at_time`` is
      "awol" (or that carry an ``awol_id``), overall and for first vs repeat episodes; Wilson CIs.
    * **Onset timing** -- hours from the start of the AWOL spell (``awol_episodes.start``) to the
      episode's ``began_at``: share within 48 hours and within 7 days (Wilson CIs) and the median
      (distribution-free order-statistic CI).
    * **Hazard ratio** -- from an Andersen-Gill model on the counting-process rows of
      :func:`recurrent_frame`, restricted to time in placement or AWOL: ``awol`` (time-varying) vs
      in placement, adjusted for ``adjust`` (complete cases), robust SEs clustered by child.

    Parameters
    ----------
    cd : CaseData
    start, end : date-like, optional
        Window, whole days, both inclusive (default: the bundle's study window).
    censor_age : float
        Follow-up ends at this age (see :func:`recurrent_frame`).
    adjust : sequence of str
        Covariates of the hazard model besides ``awol`` (dropped if constant).
    level : float
        Confidence level.
    min_events : int
        Minimum repeat episodes while AWOL and while placed to fit the hazard model.
    confirmed_only : bool
        Use only confirmed episodes (as :func:`recurrent_frame`).

    Returns
    -------
    AwolTimingResult

    Examples
    --------
    >>> from dmst_eval.synthetic import generate
    >>> res = awol_timing(generate(scale=0.3, seed=1))
    >>> list(res.summary.index[:2])
    ['share_episodes_during_awol', 'share_first_episodes_during_awol']
    >>> bool(0 <= res.summary.loc["share_within_48h", "estimate"] <= 1)
    True
    """
    w_start, w_end = _bundle_window(
        cd, {"episodes": ["episode_id", "child_id", "began_at", "identified_at", "status_at_time",
                          "awol_id", "confirmed"],
             "awol_episodes": ["awol_id", "start"]}, start, end)
    last_day = w_end - pd.Timedelta(days=1)
    eps = cd.episodes
    if confirmed_only:
        eps = eps[confirmed_mask(eps)]
    first_id = eps.groupby("child_id", observed=True)["identified_at"].transform("min")
    is_first = (eps["identified_at"] == first_id).to_numpy()
    during = ((eps["status_at_time"] == "awol").fillna(False) | eps["awol_id"].notna()).to_numpy()
    inwin = ((eps["began_at"] >= w_start) & (eps["began_at"] < w_end)).to_numpy()
    rows = []

    def prop(name, k, n, method="Wilson score"):
        lo, hi = wilson_ci(k, n, level)
        rows.append({"measure": name, "estimate": k / n if n else np.nan,
                     "ci_lower": float(lo), "ci_upper": float(hi), "numerator": float(k),
                     "denominator": float(n), "method": method})

    prop("share_episodes_during_awol", int((during & inwin).sum()), int(inwin.sum()))
    prop("share_first_episodes_during_awol", int((during & inwin & is_first).sum()),
         int((inwin & is_first).sum()))
    prop("share_repeat_episodes_during_awol", int((during & inwin & ~is_first).sum()),
         int((inwin & ~is_first).sum()))
    aw = cd.awol_episodes[["awol_id", "start"]].rename(columns={"start": "awol_start"})
    e = eps.loc[during & inwin, ["awol_id", "began_at"]].merge(aw, on="awol_id", how="inner")
    hours = ((e["began_at"] - e["awol_start"]) / pd.Timedelta(hours=1)).to_numpy(dtype=float)
    n_neg = int((hours < 0).sum())
    hours = hours[hours >= 0]
    nh = len(hours)
    prop("share_within_48h", int((hours <= 48).sum()), nh)
    prop("share_within_7d", int((hours <= 168).sum()), nh)
    mlo, mhi = _median_ci(hours, level)
    rows.append({"measure": "median_hours_to_onset",
                 "estimate": float(np.median(hours)) if nh else np.nan, "ci_lower": mlo,
                 "ci_upper": mhi, "numerator": np.nan, "denominator": float(nh),
                 "method": "order-statistic (binomial) CI"})
    notes = []
    if n_neg:
        notes.append(f"{n_neg} episode(s) begin before their AWOL spell started and were left out "
                     "of the timing measures (check the data).")
    cox = None
    rf = recurrent_frame(cd, start=w_start, end=last_day, censor_age=censor_age,
                         confirmed_only=confirmed_only)
    sub = rf[(rf["awol"] == 1) | (rf["in_placement"] == 1)]
    covs = ["awol"] + [c for c in adjust if c in sub.columns]
    sub = sub.dropna(subset=covs)
    covs = ["awol"] + [c for c in covs[1:] if sub[c].nunique() > 1]
    n_aw = int(sub.loc[sub["awol"] == 1, "event"].sum())
    n_pl = int(sub.loc[sub["in_placement"] == 1, "event"].sum())
    hr_row = {"measure": "hazard_ratio_awol_vs_placement", "estimate": np.nan,
              "ci_lower": np.nan, "ci_upper": np.nan, "numerator": float(n_aw),
              "denominator": float(n_pl),
              "method": "Andersen-Gill Cox, time-varying AWOL, robust SE (events AWOL / placed)"}
    if n_aw >= min_events and n_pl >= min_events:
        cox = fit_cox(sub, "stop", "event", covs, entry="start", cluster="child_id",
                      level=level)
        s = cox.summary.loc["awol"]
        hr_row.update(estimate=s["hazard_ratio"], ci_lower=s["ci_lower"], ci_upper=s["ci_upper"])
    else:
        notes.append(f"Too few repeat episodes to estimate the AWOL hazard ratio ({n_aw} while "
                     f"AWOL, {n_pl} while placed; need {min_events} of each).")
    rows.append(hr_row)
    summary = pd.DataFrame(rows).set_index("measure")
    return AwolTimingResult(summary=summary, hours=np.sort(hours), cox=cox, note=" ".join(notes))
