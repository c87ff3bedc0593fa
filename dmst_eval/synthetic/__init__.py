"""Synthetic DMST case data with a known ground truth.

``generate(config=None, progress=False, **overrides) -> CaseData`` fills all nine tables of
schema v1; ``cd.truth`` records each estimand (see ``docs/ground_truth.md``).
"""
from .config import SyntheticConfig
from .generator import generate

__all__ = ["SyntheticConfig", "generate"]
