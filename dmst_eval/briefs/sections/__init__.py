"""The brief's sections: one module per section, shown in the order of :data:`ORDER`.

Each section module defines

* ``TITLE`` — the section's heading (``None`` for the header, which has none), and
* ``build(brief) -> Section`` — decorated with :func:`dmst_eval.briefs.context.section`,
  which computes it once per brief and, if it fails, shows a short note naming only the
  exception type (``brief.strict`` re-raises).

A section receives the :class:`~dmst_eval.briefs.Brief` context and nothing else. It computes
only through the analysis modules (``tracking``, ``rba``, ``risk``, ``hotspots``,
``recidivism``, ``evaluation``; shared computations are memoised in :mod:`._shared`) and shows
numbers **only** through the context's publishing primitives — ``brief.table(df, ...)``,
``brief.count(n)``, ``brief.figure(fig, ...)`` and ``brief.suppress(df, ...)`` — which go through
:mod:`dmst_eval.disclosure`. HTML comes from :mod:`dmst_eval.briefs.markup` (Jinja2 templates in
``briefs/templates``), never from strings built in the section.

Adding a section
----------------
1. Write ``dmst_eval/briefs/sections/<name>.py`` with ``TITLE`` and ``build(brief)``
   (copy ``methods.py`` for the smallest example).
2. Add ``"<name>"`` to :data:`ORDER` where it belongs in the brief.
3. Regenerate the notebook: ``python tools/make_brief_notebook.py`` (it writes
   ``notebooks/evaluation_brief.ipynb``; ``tests/test_briefs_notebook.py`` fails until the
   committed notebook equals the generated one).

The notebook then has one cell ``sections.<name>.build(brief)`` for it, so a researcher sees
which function each cell runs.

Examples
--------
>>> ORDER[0], ORDER[-1]
('header', 'provenance')
>>> title("risk_factors")
'Risk factors'
"""
from __future__ import annotations

import importlib

__all__ = ["ORDER", "module", "title"]

#: The brief's sections, in the order the notebook shows them.
ORDER = [
    "header",
    "key_findings",
    "victims",
    "repeat_victims",
    "towns",
    "awol",
    "congregate_care",
    "scorecard",
    "tracking",
    "risk_factors",
    "program_effects",
    "methods",
    "limitations",
    "definitions",
    "provenance",
]


def module(name: str):
    """The section module ``name`` (one of :data:`ORDER`)."""
    if name not in ORDER:
        from dmst_eval.errors import BriefError

        raise BriefError(f"unknown brief section {name!r}; sections are {ORDER}")
    return importlib.import_module(f"{__name__}.{name}")


def title(name: str) -> str | None:
    """The heading of section ``name``."""
    return module(name).TITLE


def __getattr__(name: str):
    """``sections.<name>`` imports the section module on first use (the notebook's cells call
    ``sections.<name>.build(brief)``)."""
    if name in ORDER:
        return module(name)
    raise AttributeError(name)
