"""Geographic hotspots: area rates, smoothing, spatial autocorrelation, scan clusters, facility excess.

The agency wants to know which towns have the highest rates of identified trafficking and which
congregate-care settings have several victims. With the small counts typical of DMST, raw rates
mislead: a town with 300 children and one victim has a higher rate than a city with 20,000
children and 40 victims, purely by chance. Every function here is honest about that:

* :func:`area_rates` gives crude rates with exact (Garwood) Poisson confidence intervals and marks
  counts below a suppression threshold;
* :func:`smooth_rates` shrinks unstable rates towards the state (empirical Bayes, Marshall 1991) or
  neighbourhood (spatial empirical Bayes) mean and says how uncertain each area's *rank* is;
* :func:`global_moran`, :func:`local_moran` and :func:`local_gi_star` wrap ``esda`` (permutation
  inference made reproducible with a seed, without touching the caller's NumPy global state);
* :func:`scan_statistic` is Kulldorff's circular Poisson spatial scan statistic as SaTScan computes
  it, vectorised with NumPy;
* :func:`facility_excess` compares observed victims per congregate facility with the number
  expected from child-days in placement there (exact Poisson p-values, Holm/BH adjustment, funnel
  plot).

All functions accept any GeoDataFrame with an id column (a user's own boundaries), not only the
169 Connecticut towns.
"""
from __future__ import annotations

from dmst_eval.errors import InputError, deprecated_names  # noqa: F401  (the one input error)

from .rates import (
    AreaRatesResult, SmoothedRatesResult, area_rates, case_events, garwood_ci, smooth_rates,
    victims,
)
from .spatial import (
    GiStarResult, GlobalMoranResult, LocalMoranResult, global_moran, local_gi_star,
    local_moran,
)
from .scan import ScanResult, poisson_llr, scan_statistic
from .facilities import FacilityExcessResult, facility_excess
from .maps import choropleth  # noqa: F401

__all__ = [
    'InputError',
    'area_rates',
    'case_events',
    'victims',
    'smooth_rates',
    'global_moran',
    'local_moran',
    'local_gi_star',
    'scan_statistic',
    'poisson_llr',
    'facility_excess',
    'garwood_ci',
    'AreaRatesResult',
    'SmoothedRatesResult',
    'GlobalMoranResult',
    'LocalMoranResult',
    'GiStarResult',
    'ScanResult',
    'FacilityExcessResult',
]


_DEPRECATED = {"FacilityExcess": "FacilityExcessResult", "SmoothedRates": "SmoothedRatesResult",
               "AreaRates": "AreaRatesResult", "HotspotInputError": "InputError"}


__getattr__ = deprecated_names(__name__, _DEPRECATED, globals())
