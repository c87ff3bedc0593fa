"""Evaluation briefs: ``notebooks/evaluation_brief.ipynb`` run by papermill, one section per cell.

The package:

* :mod:`~dmst_eval.briefs.params` — :class:`BriefParams` (the notebook's parameters, with the
  threshold rules) and :func:`normalise_region`;
* :mod:`~dmst_eval.briefs.context` — :class:`Brief`, the context every section receives (data,
  parameters, windows, and the publishing primitives ``brief.table``, ``brief.count``,
  ``brief.figure``, ``brief.suppress``, which go through :mod:`dmst_eval.disclosure`);
* :mod:`~dmst_eval.briefs.sections` — one module per section, shown in the order of
  ``sections.ORDER`` (its docstring says how to add one);
* ``templates/`` and :mod:`~dmst_eval.briefs.markup` — the HTML pieces (Jinja2);
* :mod:`~dmst_eval.briefs.runner` — :func:`render`: papermill in a fresh kernel, HTML export
  (code hidden), disclosure audit, private atomic publishing, optional PDF;
* :mod:`~dmst_eval.briefs.batch` — :func:`render_batch`: statewide + six regions (× audiences)
  in parallel processes, the data validated once;
* :mod:`~dmst_eval.briefs.bundle` — loading the data, and the batch's private validated copy.

No child id and no exact date of an individual event is ever shown: dates are shown to the
month, and the only day-precision dates in a brief are its parameters, the study window, policy
dates and the run date, which the brief declares in an embedded ``dmst-brief-meta`` block.

Examples
--------
>>> from dmst_eval import briefs
>>> briefs.normalise_region(4), briefs.normalise_region("statewide")
('Region 4', 'statewide')
>>> p = briefs.BriefParams(region="Region 2", audience="public")
>>> p.threshold
10
"""
from __future__ import annotations

from dmst_eval.errors import BriefError
from dmst_eval.briefs.params import (DEFAULT_PERIOD_YEARS, MIN_THRESHOLDS, POLICY_DATES,
                                     BriefParams, normalise_region)
from dmst_eval.briefs.context import Brief, Section
from dmst_eval.briefs import sections
from dmst_eval.briefs.runner import (BRIEF_NOTEBOOK, KERNEL, BriefResult, chromium_cmd,
                                     chromium_path, html_export, quiet, render)
from dmst_eval.briefs.batch import REPORT_FILE, render_batch

__all__ = ["Brief", "BriefParams", "BriefError", "BriefResult", "Section", "render",
           "render_batch", "REPORT_FILE", "normalise_region", "chromium_path", "chromium_cmd",
           "quiet",
           "html_export", "sections", "SECTIONS", "BRIEF_NOTEBOOK", "KERNEL", "POLICY_DATES",
           "DEFAULT_PERIOD_YEARS", "MIN_THRESHOLDS"]

#: The brief's sections with a heading, in notebook order (``sections.ORDER`` has them all).
SECTIONS = tuple(n for n in sections.ORDER if n != "header")
