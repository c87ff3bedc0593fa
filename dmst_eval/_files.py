"""Where the files that dmst-eval ships beside its modules are.

Reference geography is package data (``dmst_eval/data/reference``; see
:func:`dmst_eval.geography.reference_dir`). The embedded synthetic data set (``data/synthetic``)
and the brief notebook (``notebooks/evaluation_brief.ipynb``) stay in the repository's own folders,
where ``make data`` regenerates the one and JupyterLab opens the other; a wheel carries copies of
both under ``dmst_eval/_embedded/`` (``pyproject.toml``, ``force-include``). :func:`shipped`
returns the wheel's copy when there is one, else the source checkout's.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_PACKAGE = Path(str(files("dmst_eval")))


def shipped(relpath: str) -> Path:
    """Path of a shipped file or folder given relative to the repository root.

    Examples
    --------
    >>> from dmst_eval._files import shipped
    >>> (shipped("data/synthetic") / "meta.json").exists()
    True
    """
    wheel = _PACKAGE / "_embedded" / relpath
    return wheel if wheel.exists() else _PACKAGE.parent / relpath


def example_data() -> Path:
    """The embedded synthetic data set (the default data of ``dmst-eval brief``)."""
    return shipped("data/synthetic")
