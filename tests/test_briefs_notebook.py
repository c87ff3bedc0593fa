"""The brief notebook is generated from ``sections.ORDER``: the committed one must match."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat

from dmst_eval.briefs import sections

REPO = Path(__file__).resolve().parent.parent


def _tool():
    spec = importlib.util.spec_from_file_location("make_brief_notebook",
                                                  REPO / "tools" / "make_brief_notebook.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_notebook_is_the_generated_one():
    committed = (REPO / "notebooks" / "evaluation_brief.ipynb").read_text(encoding="utf-8")
    assert committed == _tool().notebook_text(), \
        "run `python tools/make_brief_notebook.py` and commit notebooks/evaluation_brief.ipynb"


def test_one_visible_cell_per_section_in_order():
    nb = nbformat.read(REPO / "notebooks" / "evaluation_brief.ipynb", as_version=4)
    calls = [c.source for c in nb.cells if c.source.startswith("sections.")]
    assert calls == [f"sections.{n}.build(brief)" for n in sections.ORDER]
    assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    for name in sections.ORDER:  # every entry is a module with a TITLE and build()
        mod = sections.module(name)
        assert hasattr(mod, "TITLE") and callable(mod.build), name


def test_modules_stay_small():
    pkg = REPO / "dmst_eval" / "briefs"
    sizes = {p.relative_to(pkg).as_posix(): len(p.read_text().splitlines())
             for p in pkg.rglob("*.py")}
    assert max(sizes.values()) <= 600, sizes
