"""Risk-factor models and screening-tool evaluation.

Researchers and agencies ask three questions of case data:

1. *Which experiences go with a higher chance of a child being identified as a victim of sex
   trafficking, and by how much?* -- :func:`analysis_frame` builds one row per child with the
   outcome and the covariates measured **before** it; :func:`fit_risk_model` fits a logistic
   regression (maximum likelihood, or Firth's penalised likelihood for rare events and
   separation) and reports odds ratios with 95% confidence intervals.
2. *How well would a screening rule pick out the children who are later identified?* --
   :func:`points_score` applies a points rule, :func:`screening_performance` gives sensitivity,
   specificity, predictive values and likelihood ratios per cut-off, :func:`roc_auc` the area
   under the ROC curve (DeLong CI) and :func:`calibration` compares predicted with observed risk.
3. *What would a WISER-like rule look like here?* -- :func:`screening_features` derives the
   placement-history items of the Welfare-Involved Female Sexual Exploitation Risk Assessment
   (Prakash et al. 2024) that a child-welfare extract can support, :data:`WISER_LIKE_WEIGHTS`
   and :data:`WISER_LIKE_CUTOFF` are the points and cut-off.

Odds ratios describe association in observational data, not cause: a child who has been in
congregate care differs in many ways from one who has not.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from dmst_eval import risk
>>> rng = np.random.default_rng(1)
>>> df = pd.DataFrame({"prior_runaway": rng.integers(0, 2, 4000)})
>>> df["victim"] = rng.random(4000) < 1 / (1 + np.exp(-(-3 + 1.4 * df["prior_runaway"])))
>>> m = risk.fit_risk_model(df, "victim", ["prior_runaway"])
>>> round(float(m.odds_ratios.set_index("term").loc["prior_runaway", "odds_ratio"]), 1)
4.4
"""
from __future__ import annotations

from dmst_eval.errors import InputError, deprecated_names  # noqa: F401  (the one input error)
from dmst_eval.intervals import wilson_ci  # noqa: F401  (re-exported)

from ._util import (
    COVARIATES, SeparationWarning, WISER_LIKE_CUTOFF, WISER_LIKE_WEIGHTS, WISER_PUBLISHED,
)
from .frames import analysis_frame, screening_features
from .logistic import RiskModelResult, fit_risk_model
from .screening import (
    CalibrationResult, ROCResult, calibration, points_score, roc_auc, screening_performance,
    wiser_like_score,
)

__all__ = [
    'InputError',
    'SeparationWarning',
    'analysis_frame',
    'screening_features',
    'fit_risk_model',
    'RiskModelResult',
    'screening_performance',
    'roc_auc',
    'ROCResult',
    'calibration',
    'CalibrationResult',
    'points_score',
    'wiser_like_score',
    'wilson_ci',
    'COVARIATES',
    'WISER_LIKE_WEIGHTS',
    'WISER_LIKE_CUTOFF',
    'WISER_PUBLISHED',
]


_DEPRECATED = {"RiskModel": "RiskModelResult", "RiskDataError": "InputError"}


__getattr__ = deprecated_names(__name__, _DEPRECATED, globals())
