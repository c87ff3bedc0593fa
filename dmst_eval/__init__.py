"""dmst-eval: research and evaluation toolkit for child-welfare responses to domestic minor sex
trafficking (DMST).

Public entry points: :func:`load`, :class:`CaseData`, :class:`DataValidationError`, and the
modules ``schema``, ``geography``, ``synthetic``, ``risk``, ``hotspots``, ``recidivism``,
``tracking``, ``rba``, ``evaluation``, ``disclosure``, ``plots``, ``briefs``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "load": ("dmst_eval.casedata", "load"),
    "CaseData": ("dmst_eval.casedata", "CaseData"),
    "DataValidationError": ("dmst_eval.errors", "DataValidationError"),
    "DmstEvalError": ("dmst_eval.errors", "DmstEvalError"),
    "InputError": ("dmst_eval.errors", "InputError"),
    "DisclosureError": ("dmst_eval.errors", "DisclosureError"),
    "BriefError": ("dmst_eval.errors", "BriefError"),
}
_SUBMODULES = {"schema", "casedata", "geography", "synthetic", "risk", "hotspots", "recidivism",
               "tracking", "rba", "evaluation", "disclosure", "plots", "briefs", "cli",
               "errors"}

__all__ = ["__version__", *_LAZY, *sorted(_SUBMODULES)]


def __getattr__(name: str):
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"dmst_eval.{name}")
    raise AttributeError(f"module 'dmst_eval' has no attribute {name!r}")
