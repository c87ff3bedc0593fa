"""Analysis choices shared by the evaluation brief and the topic notebooks.

One file, ``dmst_eval/choices.yaml`` (package data), holds the choices that must be the same in
every brief and notebook so that they speak with one voice: which episodes count, the **place
definition** of town rates (victims by home town per 10,000 children per year), smoothing,
the scan statistic, seeds, Monte Carlo replications, confidence level, the repeat-victimization
and AWOL settings, the congregate-care threshold and the risk-model covariates.

:func:`load` returns them as a read-only :class:`AnalysisChoices`; the brief's sections, the
notebooks ``hotspots``, ``repeat_victimization`` and ``tracking_and_rba`` and
:mod:`dmst_eval.tracking` all call it. ``docs/analysis_choices.md`` explains each choice.

Examples
--------
>>> from dmst_eval import choices
>>> ch = choices.load()
>>> ch.place["town"], ch.place["per"], ch.seed
('home_town', 10000, 2026)
>>> ch.rate_unit
'per 10,000 children per year'
>>> choices.load(seed=7).seed
7
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from dmst_eval.errors import InputError

__all__ = ["AnalysisChoices", "load", "CHOICES_FILE"]

#: The packaged choices file.
CHOICES_FILE = Path(__file__).with_name("choices.yaml")

_PLACE_TOWNS = {"home_town": "the child's home town", "episode_town":
                "the town where the exploitation began or was located"}


@dataclass(frozen=True)
class AnalysisChoices:
    """The shared analysis choices (see ``choices.yaml`` for each field's meaning).

    Nested groups (``place``, ``smoothing``, ``scan``, ``repeat``, ``awol``, ``facilities``,
    ``risk``) are read-only mappings.
    """

    confirmed_only: bool
    date: str
    place: Mapping[str, Any]
    smoothing: Mapping[str, Any]
    scan: Mapping[str, Any]
    weights: str
    permutations: int
    seed: int
    level: float
    repeat: Mapping[str, Any]
    awol: Mapping[str, Any]
    facilities: Mapping[str, Any]
    risk: Mapping[str, Any]

    @property
    def rate_unit(self) -> str:
        """How town and population rates are expressed, in words."""
        per = f"per {int(self.place['per']):,} children"
        return per + (" per year" if self.place["per_year"] else "")

    @property
    def place_definition(self) -> str:
        """The place definition in one sentence (for briefs, notebooks and docs)."""
        unit = ("victims (each child counted once)" if self.place["unit"] == "victims"
                else "confirmed episodes")
        return (f"Town rates count {unit} in {_PLACE_TOWNS[self.place['town']]}, "
                f"{self.rate_unit} (children under 18, 2010 Census).")

    def as_dict(self) -> dict:
        return {f.name: (dict(v) if isinstance(v := getattr(self, f.name), Mapping) else v)
                for f in fields(self)}


def _check(d: dict, source: str) -> None:
    names = {f.name for f in fields(AnalysisChoices)}
    unknown, missing = set(d) - names, names - set(d)
    if unknown or missing:
        raise InputError(f"analysis choices in {source}: unknown {sorted(unknown)}, missing "
                         f"{sorted(missing)}", table="choices",
                         expected=f"exactly the keys {sorted(names)}")
    if d["place"].get("town") not in _PLACE_TOWNS:
        raise InputError(f"place.town must be one of {list(_PLACE_TOWNS)}", table="choices",
                         column="place.town", rows=[d["place"].get("town")])
    if d["place"].get("unit") not in ("victims", "episodes"):
        raise InputError("place.unit must be 'victims' or 'episodes'", table="choices",
                         column="place.unit", rows=[d["place"].get("unit")])
    if not 0 < float(d["level"]) < 1:
        raise InputError("level must be between 0 and 1", table="choices", column="level",
                         rows=[d["level"]])


@functools.lru_cache(maxsize=4)
def _read(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        d = yaml.safe_load(fh)
    if not isinstance(d, dict):
        raise InputError(f"analysis choices file {path} is not a mapping", table="choices")
    _check(d, path)
    return d


def _freeze(v):
    return MappingProxyType({k: _freeze(x) for k, x in v.items()}) if isinstance(v, dict) \
        else (tuple(v) if isinstance(v, list) else v)


def load(path: str | Path | None = None, **overrides) -> AnalysisChoices:
    """The analysis choices (the packaged ``choices.yaml`` unless ``path`` is given).

    Parameters
    ----------
    path : path-like, optional
        A YAML file with the same keys (copy the packaged one and edit it).
    **overrides
        Top-level choices to replace, e.g. ``seed=1`` or ``permutations=99`` (a nested group is
        replaced as a whole mapping).

    Returns
    -------
    AnalysisChoices
    """
    d = copy.deepcopy(_read(str(Path(path) if path is not None else CHOICES_FILE)))
    base = AnalysisChoices(**{k: _freeze(v) for k, v in d.items()})
    if overrides:
        merged = base.as_dict() | overrides
        _check(merged, "overrides")
        base = replace(base, **{k: _freeze(v) for k, v in overrides.items()})
    return base
