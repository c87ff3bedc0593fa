"""Deprecation shims for renamed public names (listed in CHANGELOG.md)."""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

from dmst_eval.errors import InputError


def renamed_kwargs(**renames: tuple[str, Callable[[Any], Any] | None]):
    """Accept an old keyword argument for a while: ``old=(new, convert)``.

    The old name still works, with a :class:`DeprecationWarning`; ``convert`` maps its value to
    the new parameter's (e.g. ``alpha=0.05`` -> ``level=0.95``). Giving both is an error.
    """
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, (new, convert) in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise InputError(f"{fn.__name__}: give {new}= only ({old}= is its old "
                                         "name)")
                    warnings.warn(f"{fn.__name__}({old}=...) is deprecated; use {new}=",
                                  DeprecationWarning, stacklevel=2)
                    v = kwargs.pop(old)
                    kwargs[new] = convert(v) if convert else v
            return fn(*args, **kwargs)
        wrapper.__renamed_kwargs__ = dict(renames)
        return wrapper
    return deco


def from_alpha(alpha: float) -> float:
    """Confidence level from a significance level (``alpha=0.05`` -> ``level=0.95``)."""
    return 1.0 - float(alpha)
