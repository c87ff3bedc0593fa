"""The batch disclosure plan of the briefs: every brief hides what the whole standard batch needs.

A reader who holds every brief of the standard batch — statewide and the six DCF regions, for
the internal (threshold 5) and the public (threshold 10) audience — must not be able to work out
any hidden count. So a brief is never suppressed on its own: :func:`batch_plan` registers, for
all 7 scopes, every count the sections publish (each section module with a ``cells(brief,
ledger)`` function registers its counts and their relations, cheaply: counts only, no models,
no figures), links each region's count to the statewide one, and runs
:func:`dmst_eval.disclosure.plan` once. Sections then show their tables with
``brief.table(df, cells=keys)``, which follows the plan.

* :func:`~dmst_eval.briefs.render_batch` computes the plan once, refuses to render a batch whose
  plan fails the interval audit, writes it as a private file (JSON, 0600) into the batch's
  private data copy, where each brief's kernel reads it; and writes the disclosure report beside
  the briefs.
* A single brief (``dmst-eval brief``) computes the same plan itself — the plan depends only on
  the data and the batch parameters, so briefs rendered on different days agree — and keeps it
  in the per-user plan cache (:mod:`dmst_eval.briefs.plan_cache`: JSON, 0600, keyed by the
  data's hash and the code), so the next brief on the same data reuses it.

Adding a count to the ledger (for section authors)
--------------------------------------------------
In the section module::

    def cells(brief, ledger):
        tab, keys = _counts(brief)           # the counts the section shows, and their keys
        disclosure.register_table(ledger, tab, keys)
        ledger.add_sum_if_holds(keys.loc["episodes", "total"], keys.loc["episodes", years])

    @section(TITLE)
    def build(brief):
        tab, keys = _counts(brief)
        html, shown = brief.table(tab, caption=..., cells=keys)

Keys come from :meth:`Brief.key <dmst_eval.briefs.Brief.key>` or
:func:`dmst_eval.disclosure.keys_frame` (measure, region = ``brief.region``, period = a year or
``brief.window_label("period")``). Relations across regions are added here, not in sections.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dmst_eval import disclosure, schema
from dmst_eval.briefs import plan_cache
from dmst_eval.disclosure import Ledger, SuppressionPlan
from dmst_eval.errors import BriefError, DisclosureError

__all__ = ["batch_ledger", "batch_plan", "plan_for", "fingerprint", "PLAN_FILE", "SCOPES"]

#: File name of the plan in a batch's private data copy.
PLAN_FILE = "dmst-disclosure-plan.json"
#: The scopes of the standard batch.
SCOPES = ("statewide", *schema.REGIONS)
#: Parameters that change the published numbers (the rest — region, audience, paths — do not).
_PLAN_PARAMS = ("period_start", "period_end", "comparison_start", "comparison_end",
                "rba_baseline_start", "rba_baseline_end")


def thresholds(params: dict) -> dict:
    """Threshold per audience for these parameters (a threshold given for one audience that
    another may not use falls back to that audience's default)."""
    from dmst_eval.briefs.params import BriefParams

    out = {}
    for aud in disclosure.AUDIENCES:
        try:
            out[aud] = BriefParams(**dict(params, audience=aud)).threshold
        except BriefError:
            out[aud] = disclosure.default_threshold(aud)
    return out


def _plan_params(params: dict) -> dict:
    keep = {k: params.get(k) for k in _PLAN_PARAMS}
    keep["suppression_threshold"] = params.get("suppression_threshold")
    keep["allow_low_threshold"] = params.get("allow_low_threshold", False)
    return keep


def fingerprint(cd, params: dict) -> str:
    """What the plan depends on: the data's hash, the study window, the brief windows, the
    thresholds, the package version."""
    import dmst_eval

    meta = getattr(cd, "meta", None) or {}
    doc = {"data": str(meta.get("data_hash") or cd.data_hash),
           # the default windows follow the study window, which lives in meta, not the tables
           "study": [str(meta.get("study_start")), str(meta.get("study_end"))],
           "params": {k: None if v is None else str(v) for k, v in _plan_params(params).items()},
           "thresholds": thresholds(params), "package": dmst_eval.__version__}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def batch_ledger(cd, params: dict | None = None) -> Ledger:
    """Every count the standard batch publishes, with its relations."""
    from dmst_eval.briefs import sections
    from dmst_eval.briefs.context import Brief

    base = _plan_params(dict(params or {}))
    ledger = Ledger()
    hooks = [sections.module(n) for n in sections.ORDER]
    hooks = [m for m in hooks if hasattr(m, "cells")]
    shared: dict = {}  # statewide computations the seven scopes subset (in process only)
    for region in SCOPES:
        b = Brief(cd, dict(base, region=region, audience="internal", figures_dir=None,
                           data_path=None), strict=True)
        b.cache["batch_shared"] = shared
        for m in hooks:
            m.cells(b, ledger)
    link_regions(ledger)
    return ledger


def link_regions(ledger: Ledger) -> int:
    """Add "regions add up to statewide" for every (measure, period) registered for the state
    and all six regions: exactly when the values add up, as "statewide at least the regions"
    when the statewide count also holds children or reports with no region, else not at all.
    Returns the number of relations added."""
    from dmst_eval.disclosure import CellKey

    n = 0
    for k in sorted(k for k in ledger if k.region == "statewide"):
        parts = [CellKey(k.measure, r, k.period) for r in schema.REGIONS]
        if not all(p in ledger for p in parts):
            continue
        tot, s = ledger.value(k), sum(ledger.value(p) for p in parts)
        if tot == s:
            ledger.add_sum(k, parts, name="regions add up to statewide")
        elif tot > s:
            coefs = {k: 1.0, **{p: -1.0 for p in parts}}
            ledger._relate(coefs, 0.0, float("inf"), "statewide at least the regions' sum")
        else:
            continue
        n += 1
    return n


def batch_plan(cd, params: dict | None = None, ledger: Ledger | None = None) -> SuppressionPlan:
    """The plan of the standard batch; raises :class:`~dmst_eval.errors.DisclosureError` if
    no pattern exists or the interval audit fails. ``ledger``: the batch's
    :func:`batch_ledger` for these data and parameters, when already at hand."""
    params = dict(params or {})
    if ledger is None:
        ledger = batch_ledger(cd, params)
    p = disclosure.plan(ledger, thresholds(params))
    p.audit.raise_if_failed()
    p.fingerprint = fingerprint(cd, params)
    p.ledger_size = len(ledger)
    return p


def plan_for(brief) -> SuppressionPlan:
    """The batch plan for this brief: read from the batch's private copy when the batch left
    one for these data and parameters, else from this process or the per-user plan cache
    (:mod:`dmst_eval.briefs.plan_cache`), else computed (and kept in both)."""
    if "disclosure_plan" in brief.cache:
        return brief.cache["disclosure_plan"]
    params = brief.params.as_dict()
    fp = fingerprint(brief.cd, params)
    p = None
    dp = params.get("data_path")
    if dp:
        f = Path(str(dp)) / PLAN_FILE
        if f.exists():
            from dmst_eval.briefs.bundle import _check_private

            if _check_private(Path(str(dp))):
                try:
                    p = SuppressionPlan.from_json(f, fingerprint=fp)
                except DisclosureError:
                    p = None
    if p is None:
        ref = _PLANS.get(fp)
        if ref is not None and ref[0]() is brief.cd:
            p = ref[1]
    if p is None:
        import weakref

        p = plan_cache.load(fp)
        if p is None:
            p = batch_plan(brief.cd, params)
            plan_cache.save(p, fp)
        _PLANS.clear()  # one entry: the data and parameters in use
        _PLANS[fp] = (weakref.ref(brief.cd), p)
    brief.cache["disclosure_plan"] = p
    return p


#: The last plan computed in this process, by fingerprint (data hash, windows, thresholds,
#: package version) and for the same data object: briefs of the same bundle built in one
#: process (a notebook session, the tests) share it. In memory only — never written.
_PLANS: dict = {}
