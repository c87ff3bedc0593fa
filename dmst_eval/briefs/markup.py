"""The brief's HTML pieces, from the Jinja2 templates in ``briefs/templates`` (autoescaped).

Sections never build HTML strings themselves: they call these helpers (and the publishing
primitives of :class:`~dmst_eval.briefs.Brief`, which use them too).

Examples
--------
>>> paragraph("3 < 5", cls="dmst-note")
'<p class="dmst-note">3 &lt; 5</p>'
>>> bullets(["a", "b & c"])
'<ul><li>a</li><li>b &amp; c</li></ul>'
"""
from __future__ import annotations

import functools
import json

__all__ = ["render_template", "paragraph", "note", "bullets", "section", "script_json",
           "anchor", "css_string"]


@functools.lru_cache(maxsize=1)
def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("dmst_eval.briefs", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def render_template(template: str, /, **context) -> str:
    """Render ``templates/<template>`` with ``context`` (values are HTML-escaped unless marked
    ``|safe`` in the template)."""
    return _env().get_template(template).render(**context)


def paragraph(text: str, cls: str | None = None) -> str:
    return render_template("paragraph.html.j2", text=text, cls=cls)


def note(text: str) -> str:
    """A small grey note under a table or in place of an analysis that cannot be shown."""
    return paragraph(text, cls="dmst-note")


def bullets(items, cls: str | None = None) -> str:
    return render_template("list.html.j2", items=list(items), cls=cls)


def anchor(title: str | None) -> str | None:
    """The id of a section's heading, which the table of contents links to.

    >>> anchor("Results-Based Accountability scorecard")
    'sec-results-based-accountability-scorecard'
    """
    if not title:
        return None
    import re

    return "sec-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def section(title: str | None, body: str) -> str:
    return render_template("section.html.j2", title=title, body=body, anchor=anchor(title))


def css_string(text: str) -> str:
    """``text`` as the inside of a double-quoted CSS string (for ``content:`` in ``@page``
    rules), safe inside a ``<style>`` element.

    >>> print(css_string('Region "4" </style>'))
    Region \\"4\\" \\3C /style>
    """
    out = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return out.replace("<", "\\3C ")


def script_json(obj) -> str:
    """``obj`` as JSON that is safe inside a ``<script>`` element.

    >>> script_json({"a": "</script>"})
    '{"a": "<\\\\/script>"}'
    """
    return json.dumps(obj).replace("</", "<\\/")
