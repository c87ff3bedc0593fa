"""Shared test fixtures.

Slow (many-seed) checks carry ``@pytest.mark.slow``. ``make test`` runs them with a reduced seed
count; ``make test-slow`` sets ``DMST_EVAL_FULL_SEEDS=1`` and runs the full count that README
reports. Use :func:`n_seeds` to pick the count.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
FULL_SEEDS = os.environ.get("DMST_EVAL_FULL_SEEDS", "") not in ("", "0")


def n_seeds(full: int, fast: int) -> int:
    """Seeds to use: ``full`` under ``make test-slow``, ``fast`` otherwise."""
    return full if FULL_SEEDS else fast


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def require_tool(path: str | None, what: str, env: str) -> str:
    """Return ``path`` or skip the calling test with a visible reason when ``what`` is absent.

    CI (``.ci/run``) sets ``env`` (e.g. ``DMST_EVAL_REQUIRE_BROWSER=1``) so that an absent tool
    fails the test instead: the README's commands pass on a machine without it, and CI still
    proves the checks that need it.
    """
    if path:
        return path
    if os.environ.get(env, "") not in ("", "0"):
        pytest.fail(f"{what} is required here ({env} is set) but was not found")
    pytest.skip(f"{what} not found; install it to run this check (CI sets {env}=1)")


def chromium_or_skip() -> str:
    """Path of a headless Chromium, or skip (fail under ``DMST_EVAL_REQUIRE_BROWSER=1``)."""
    import shutil

    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                  if shutil.which(n)), None)
    return require_tool(found, "Chromium (Debian package 'chromium')", "DMST_EVAL_REQUIRE_BROWSER")
