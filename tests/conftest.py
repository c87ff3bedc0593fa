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
