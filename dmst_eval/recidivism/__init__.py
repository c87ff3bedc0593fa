"""Repeat victimization: survival curves, Cox models, recurrent events and AWOL timing.

A child who has been exploited once can be exploited again. Repeat victimization is a *recurrent
event*, and a child's follow-up ends when the child ages out of care (18 by default) or the study
window closes. The functions here respect both:

* :func:`recurrent_frame` turns a :class:`~dmst_eval.casedata.CaseData` bundle into
  counting-process rows ``(start, stop]`` (days since the child's first identification), split
  wherever the child's status changes (at home / in placement / AWOL) or a service starts.
* :func:`kaplan_meier` -- time to the first repeat episode, Greenwood (log-log) confidence
  intervals, log-rank test, median and 6/12-month estimates, number-at-risk table.
* :func:`fit_cox` -- Cox proportional-hazards models written from scratch (Newton-Raphson,
  Breslow or Efron ties, strata, delayed entry). With ``entry=`` and ``cluster=`` on counting-process
  rows it is the Andersen-Gill recurrent-event model with Lin-Wei robust (grouped dfbeta) standard
  errors; stratified by ``event_number`` with gap times it is the Prentice-Williams-Peterson model.
  The risk set follows R's ``survival`` package (a row is at risk at ``t`` when
  ``start < t <= stop``) and the results reproduce ``survival::coxph`` (see the tests on
  ``bladder2``). A proportional-hazards check (the score test of R survival >= 3.0 ``cox.zph``;
  the survival 2.x approximation with ``ph_method="approx"``) comes with every fit.
* :func:`mean_cumulative_function` -- Nelson-Aalen mean cumulative number of episodes per child with
  Lawless-Nadeau robust confidence intervals.
* :func:`cumulative_incidence` -- Aalen-Johansen cumulative incidence of re-victimization with
  aging out of care as a competing event, beside the naive ``1 - KM``.
* :func:`awol_timing` -- how much exploitation begins while a child is absent from care, how soon
  after the child goes missing, and the hazard ratio of exploitation while AWOL vs in placement.
"""
from __future__ import annotations

from dmst_eval.errors import InputError, deprecated_names  # noqa: F401  (the one input error)
from dmst_eval.intervals import wilson_ci  # noqa: F401  (re-exported)

from ._util import BASELINE_COVARIATES, DAYS_PER_MONTH, DAYS_PER_YEAR
from .cox import CoxResult, fit_cox
from .frames import first_event_frame, marginal_frame, recurrent_frame, simulate_recurrent
from .curves import (
    CIF_EXPLANATION, CumulativeIncidenceResult, KaplanMeierResult, MCFResult,
    cumulative_incidence, kaplan_meier, logrank_test, mean_cumulative_function,
)
from .awol import AwolTimingResult, awol_timing

__all__ = [
    'InputError',
    'recurrent_frame',
    'first_event_frame',
    'kaplan_meier',
    'KaplanMeierResult',
    'fit_cox',
    'marginal_frame',
    'simulate_recurrent',
    'CoxResult',
    'mean_cumulative_function',
    'MCFResult',
    'cumulative_incidence',
    'CumulativeIncidenceResult',
    'awol_timing',
    'logrank_test',
    'AwolTimingResult',
    'wilson_ci',
    'BASELINE_COVARIATES',
    'DAYS_PER_MONTH',
]


_DEPRECATED = {"RecidivismInputError": "InputError"}


__getattr__ = deprecated_names(__name__, _DEPRECATED, globals())
