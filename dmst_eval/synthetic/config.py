"""Configuration of the synthetic generator: :class:`SyntheticConfig`.

Every field carries a one-line documentation string in its metadata (``doc``) giving its meaning
and the fact it is grounded on, or the word *assumption* when no published fact was at hand. The
same strings are written into ``docs/ground_truth.md``. Numeric fields carry ranges (``min`` /
``max``) that :meth:`SyntheticConfig.validate` enforces.

Sources used for the defaults
-----------------------------
* DCF 2012, "A child welfare response to domestic minor sex trafficking" (the agency's account):
  88 confirmed child victims identified by early 2012, 86 child-welfare involved, 3 male; Careline
  call April 2008; response team 2009; Policy 31-10-6.1 in 2010; monthly DMST trainings from
  2009; second training day, police roll calls, EMS one-hour sessions and foster-parent training in
  2011; Man Up roll-out 2012-03-02; Public Act 11-180 (2011).
* CT DCF: 241 trafficking reports in 2021; about 4,900 children in out-of-home care in January
  2011 (30% congregate) and 3,480 in April 2021 (under 6% congregate).
* Gibbs et al. 2018 (Florida): children with trafficking allegations > 5x as likely to have been
  in congregate care, > 10x as likely to have run from placement.
* Latzman et al. 2019 (Florida, placed at age >= 10): 19% ran at least once; 70% of those with an
  allegation had the first one during a runaway episode; about a third had a further allegation
  within a year.
* Reid et al. 2017: prior sexual abuse OR ~2.5 (girls), ~8.2 (boys).
* A Northeast specialised program: re-referral OR ~3.0 for missing from care, ~2.8 for substance
  misuse.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dmst_eval.errors import InputError

LOG_ODDS_TERMS = ("intercept", "male", "age_at_start", "prior_sexual_abuse",
                  "male:prior_sexual_abuse", "prior_runaway", "substance_use",
                  "juvenile_justice", "lgbtq", "congregate_before", "awol_before")
RECURRENCE_TERMS = ("substance_use", "prior_runaway", "male", "awol", "service")
REFERRAL_TERMS = ("intercept", "substance_use", "prior_runaway", "awol_before", "male")
FLAGS = ("prior_sexual_abuse", "prior_runaway", "substance_use", "juvenile_justice", "lgbtq")
CURRICULUM_GAIN_KEYS = ("dmst_1hr", "dmst_2hr_law_enforcement", "dmst_full_day",
                        "dmst_day2_demand", "dmst_3day_certification", "police_roll_call",
                        "foster_parent", "mlmc_provider", "man_up", "supervisory_series")


def _f(default: Any, doc: str, lo: float | None = None, hi: float | None = None,
       keys: tuple[str, ...] | None = None):
    """A dataclass field with documentation and range metadata."""
    md = {"doc": doc, "min": lo, "max": hi, "keys": keys}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: (dict(d) if isinstance(d, dict) else list(d)),
                     metadata=md)
    return field(default=default, metadata=md)


@dataclass
class SyntheticConfig:
    """All settings of the synthetic data-generating process (the documented ground truth).

    Create with defaults, override fields as keyword arguments, or load from YAML with
    :meth:`from_yaml`. ``null_world=True`` switches every planted effect off (for false-positive
    checks) while keeping the population, placements and reporting pathways.

    Examples
    --------
    >>> from dmst_eval.synthetic import SyntheticConfig
    >>> cfg = SyntheticConfig(scale=0.5, seed=7)
    >>> cfg.scale, cfg.study_start
    (0.5, '2008-01-01')
    >>> SyntheticConfig(scale=-1)
    Traceback (most recent call last):
    ...
    dmst_eval.errors.InputError: SyntheticConfig.scale = -1: must be > 0 (at least 0.001)
    """

    # ---------------------------------------------------------------- general
    seed: int = _f(20120325, "Random seed; one numpy Generator is seeded with it. The default is "
                   "a representative seed: among seeds 20120302-20120341 the one whose realised "
                   "figures (87 victims 2008-2011, 86 child-welfare involved, 3 male; 252 reports "
                   "in 2021, 68% at home) are closest to the agency's targets; every seed has "
                   "the same expectations.",
                   0, 2**63 - 1)
    scale: float = _f(1.0, "Multiplies the child population, facilities and training sessions "
                      "(1 = Connecticut size).", 0.001, 1000.0)
    study_start: str = _f("2008-01-01", "First day of the study window (agency response began in "
                          "2008 with the first Careline call).")
    study_end: str = _f("2025-12-31", "Last day of the study window (most recent full year).")
    null_world: bool = _f(False, "Switch every planted effect off: flag log-odds, town and facility "
                          "effects, recurrence hazard ratios, service effect, PA 11-180 step and "
                          "training gains (referral stays confounded).")

    # ---------------------------------------------------------------- population in care
    initial_in_care: float = _f(6600.0, "Children in out-of-home care on study_start (calibrated so "
                                "that about 4,900 are in care in January 2011).", 0, 1e6)
    entries_per_year_start: float = _f(2350.0, "Entries to out-of-home care per year in the first "
                                       "study year (calibrated to the 4,900 stock in 2011).", 0, 1e6)
    entries_per_year_end: float = _f(1300.0, "Entries per year in the last study year, log-linear in "
                                     "between (calibrated to 3,480 in care in April 2021).", 0, 1e6)
    home_cw_children: float = _f(
        50000.0, "Child-welfare-involved children never placed out of home (in-home services, "
        "investigations) who are 11-17 at some time in the window (assumption, set so that, as "
        "in Gibbs et al. 2018, victims are about twice as likely as other child-welfare "
        "children to have been placed).", 0, 1e7)
    care_years_median: float = _f(1.5, "Median length of a care career in years, lognormal "
                                  "(assumption).", 0.05, 20)
    care_years_sigma: float = _f(1.0, "Log-sd of the care-career length (assumption).", 0.05, 3)
    spells_per_year: float = _f(0.7, "Placement moves per year in care (Poisson; assumption).",
                                0, 10)
    male_share: float = _f(0.51, "Share of boys among children in care (assumption: national "
                           "AFCARS share).", 0, 1)
    race_shares: dict = _f({"Black": 0.24, "Hispanic": 0.34, "White": 0.34, "Asian": 0.01,
                            "Multiracial/other": 0.05, "Unknown": 0.02},
                           "Race/ethnicity mix of children in care (assumption, CT-like).",
                           keys=("Black", "Hispanic", "White", "Asian", "Multiracial/other",
                                 "Unknown"))
    flag_prevalence: dict = _f({"prior_sexual_abuse": 0.22, "prior_runaway": 0.14,
                                "substance_use": 0.12, "juvenile_justice": 0.09, "lgbtq": 0.10},
                               "Prevalence of each risk flag among children in care at age 12 "
                               "(assumption); flags share a latent adversity factor.", keys=FLAGS)
    flag_missing: dict = _f({"prior_sexual_abuse": 0.06, "prior_runaway": 0.04,
                             "substance_use": 0.06, "juvenile_justice": 0.02, "lgbtq": 0.20},
                            "Share of each flag recorded as unknown, completely at random "
                            "(assumption; LGBTQ status is often not asked).", keys=FLAGS)
    flag_correlation: float = _f(0.45, "Loading of every flag on the shared adversity factor "
                                 "(probit scale; assumption).", 0, 0.95)
    congregate_logit_2008: float = _f(1.0, "Log-odds that a child entering care in 2008 has any "
                                      "congregate spell, at age 12 (calibrated to 30% congregate "
                                      "in January 2011).", -10, 10)
    congregate_logit_2021: float = _f(-2.6, "Same log-odds for entries in 2021 and later (calibrated "
                                      "to < 6% congregate in April 2021).", -10, 10)
    congregate_spell_share: float = _f(0.7, "Share of the other spells of a congregate-care child "
                                       "that are congregate (assumption).", 0, 1)
    awol_logit: float = _f(-3.1, "Log-odds of running from placement at least once (awol_before), "
                           "age 12, no congregate care, no flags (calibrated: Latzman 19% of youth "
                           "placed at >= 10 ran).", -10, 10)
    awol_congregate_log_or: float = _f(1.3, "Log-OR of running for congregate-care children "
                                       "(assumption: running is more frequent from congregate "
                                       "care).", -5, 5)
    awol_age_log_or: float = _f(0.25, "Log-OR of running per year of age at entry (assumption: older "
                                "teens run more).", -2, 2)
    awol_duration_median_days: float = _f(1.5, "Median AWOL duration in days, lognormal "
                                          "(assumption).", 0.01, 60)
    awol_duration_sigma: float = _f(1.2, "Log-sd of AWOL duration (assumption).", 0.05, 3)
    extra_awol_mean: float = _f(0.8, "Mean number of further AWOL episodes, beyond the first, of a "
                                "child who runs (Poisson; assumption).", 0, 20)

    # ---------------------------------------------------------------- facilities
    n_facilities: int = _f(110, "Congregate facilities at scale 1 (assumption).", 1, 1_000_000)
    facility_high_risk_share: float = _f(0.08, "Share of facilities planted as high risk "
                                         "(assumption).", 0, 1)
    facility_high_risk_rr: float = _f(4.0, "Relative weight of a high-risk facility as the place "
                                      "where a victim's first episode began (assumption).", 1, 100)
    facility_sd: float = _f(0.3, "Log-sd of the other facilities' weights (assumption).", 0, 3)

    # ---------------------------------------------------------------- risk of identification
    log_odds: dict = _f({"intercept": -7.51, "male": -4.32, "age_at_start": 0.06,
                         "prior_sexual_abuse": math.log(2.5),
                         "male:prior_sexual_abuse": math.log(8.2 / 2.5),
                         "prior_runaway": math.log(2.0), "substance_use": math.log(2.0),
                         "juvenile_justice": math.log(1.5), "lgbtq": math.log(1.8),
                         "congregate_before": math.log(4.5), "awol_before": math.log(5.0)},
                        "Log-odds of becoming a confirmed victim in the window among eligible "
                        "child-welfare children (Reid 2017 for sexual abuse by sex; congregate care "
                        "and running: conditional ORs set so that the Gibbs 2018 ratios among "
                        "child-welfare children exceed 5 and 10; male calibrated to 3 of 88; "
                        "intercept calibrated to 88 in 2008-2011 by dmst-eval calibrate; others "
                        "assumption).",
                        keys=LOG_ODDS_TERMS)
    min_victim_age: float = _f(11.0, "Youngest age (years) at which an exploitation episode is "
                               "generated (assumption; average age of entry 12-14).", 5, 17)
    non_cw_victim_share: float = _f(2 / 88, "Expected share of victims identified in "
                                    "2008-2011 without child-welfare involvement (DCF: 2 of 88); "
                                    "later years follow non_cw_identification_growth.", 0, 0.99)
    non_cw_identification_growth: float = _f(
        0.27, "Yearly log growth of the identification of victims without child-welfare "
        "involvement (police, schools, medical and community reporters trained over the period; "
        "times identification_step_2011 from PA 11-180). Calibrated so that identified victims "
        "per year in 2020-2025 are about twice the 2008-2011 mean (agency: identification grew "
        "with training and protocols).", -1.0, 1.0)
    hotspot_towns: list = _f(["Bloomfield", "East Hartford", "East Haven", "Hamden", "Hartford",
                              "New Haven", "Newington", "North Haven", "Orange", "South Windsor",
                              "West Hartford", "West Haven", "Wethersfield", "Windsor",
                              "Woodbridge"],
                             "Towns planted as hotspots: child-welfare need multiplied by "
                             "hotspot_multiplier (assumption: two contiguous clusters, Hartford and "
                             "New Haven with their queen neighbours, so cluster methods have a "
                             "target).")
    hotspot_multiplier: float = _f(3.0, "Multiplier of child-welfare need in hotspot towns "
                                   "(assumption; urban child-welfare rates in CT are several "
                                   "times suburban ones).", 1, 50)
    spatial_sd: float = _f(0.3, "Sd of the spatially smooth log-need field (assumption).", 0, 3)
    spatial_range_km: float = _f(25.0, "Range (km) of the Gaussian kernel of the smooth field "
                                 "(assumption).", 1, 500)

    # ---------------------------------------------------------------- identification timing
    identification_growth: float = _f(0.25, "Yearly log growth of the identification intensity "
                                      "as training spreads (assumption).", -1, 2)
    identification_step_2009: float = _f(1.3, "Multiplier of identification intensity from 2009 "
                                         "(response team, monthly trainings; assumption).", 0.1, 10)
    identification_step_2011: float = _f(2.0, "Multiplier from 2011-10-01 (PA 11-180, roll-call "
                                         "trainings; assumption).", 0.1, 10)
    identification_lag_mean_days: float = _f(12.0, "Mean days from an episode's start to its "
                                             "identification (geometric, at most 89; "
                                             "assumption).", 0.1, 60)

    # ---------------------------------------------------------------- recurrence
    baseline_rate_per_year: float = _f(0.36, "Rate of further episodes per year after first "
                                       "identification, all covariates 0 (calibrated: about a "
                                       "third re-victimized within a year, Latzman 2019).", 0, 50)
    hazard_ratios: dict = _f({"substance_use": 2.8, "prior_runaway": 1.5, "male": 0.8,
                              "awol": 3.0, "service": 0.6},
                             "Hazard ratios of further episodes (Northeast program: missing from "
                             "care ~3.0, substance misuse ~2.8; others assumption).",
                             keys=RECURRENCE_TERMS)
    post_id_awol_rate: float = _f(0.8, "AWOL episodes per placement-year after identification, no "
                                  "risk factors (assumption).", 0, 100)
    p_first_episode_awol: float = _f(0.7, "Share of victims who ran whose first episode began "
                                     "during an AWOL episode (Latzman 2019: 70%).", 0, 1)
    onset_hours_median: float = _f(30.0, "Median hours from running to the start of exploitation, "
                                   "lognormal (DCF account: many lured within 48 hours).", 1, 500)
    onset_hours_sigma: float = _f(0.9, "Log-sd of onset hours (assumption).", 0.05, 3)

    # ---------------------------------------------------------------- services
    referral_log_odds: dict = _f({"intercept": -0.4, "substance_use": 0.9, "prior_runaway": 0.6,
                                  "awol_before": 0.8, "male": -0.5},
                                 "Log-odds of referral to a service within 30 days of first "
                                 "identification: higher-risk victims are referred more "
                                 "(assumption).", keys=REFERRAL_TERMS)
    service_start_prob: float = _f(0.85, "Probability that a referral starts (assumption).", 0, 1)

    # ---------------------------------------------------------------- reports and PA 11-180
    police_reports_per_month_2008: float = _f(0.8, "Expected police reports per month in January "
                                              "2008 (assumption).", 0.01, 1e5)
    police_trend_per_month: float = _f(0.004, "Log-linear monthly trend of police reports "
                                       "(assumption).", -0.5, 0.5)
    pa_11_180_rate_ratio: float = _f(2.5, "Level change (rate ratio) of monthly police reports "
                                     "when PA 11-180 takes effect (assumption; the law requires "
                                     "police to report).", 0.01, 100)
    pa_11_180_slope_change: float = _f(0.0, "Change in the log-linear monthly trend after PA "
                                       "11-180 (assumption).", -0.5, 0.5)
    pa_11_180_effective: str = _f("2011-10-01", "Date PA 11-180 takes effect (assumption: "
                                  "October 1, the usual effective date).")
    police_share_identifying: float = _f(0.3, "Share of police reports that are the identifying "
                                         "report of a victim (assumption).", 0, 1)
    unconfirmed_in_care_weight: float = _f(
        3.5, "Relative weight of a child in placement at the time, against one living at home, "
        "as the subject of a report that is not confirmed (calibrated: 161 of the 241 children "
        "reported in 2021 were living at home).", 1.0, 100.0)
    unconfirmed_reports: float = _f(2300.0, "Expected other (non-police) reports that are not "
                                    "confirmed, over the whole window, following identification "
                                    "intensity (calibrated to 241 reports in 2021).", 0, 1e7)

    # ---------------------------------------------------------------- trainings
    training_gain: dict = _f({"dmst_1hr": 10.0, "dmst_2hr_law_enforcement": 12.0,
                              "dmst_full_day": 18.0, "dmst_day2_demand": 14.0,
                              "dmst_3day_certification": 22.0, "police_roll_call": 7.0,
                              "foster_parent": 13.0, "mlmc_provider": 16.0, "man_up": 9.0,
                              "supervisory_series": 8.0},
                             "True mean pre/post knowledge gain (points of 100) per curriculum "
                             "(assumption).", keys=CURRICULUM_GAIN_KEYS)
    training_session_sd: float = _f(4.0, "Sd of the session random effect on gain (assumption).",
                                    0, 50)
    training_attendee_sd: float = _f(8.0, "Sd of attendee-level noise in the post score "
                                     "(assumption).", 0, 50)
    training_pre_mean: float = _f(52.0, "Mean pre-test score (assumption).", 0, 100)
    training_pre_sd: float = _f(10.0, "Sd of pre-test scores (assumption).", 0, 50)
    training_score_missing: float = _f(0.08, "Share of pre or post scores missing (MCAR; "
                                       "assumption).", 0, 1)

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def field_docs(cls) -> dict[str, str]:
        """Field name -> documentation line."""
        return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}

    def validate(self) -> "SyntheticConfig":
        """Check types and ranges; raise :class:`~dmst_eval.errors.InputError` (a ``ValueError``) naming the field and the expectation."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            lo, hi, keys = f.metadata.get("min"), f.metadata.get("max"), f.metadata.get("keys")
            name = f"SyntheticConfig.{f.name}"
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if isinstance(default, bool):
                if not isinstance(v, bool):
                    raise InputError(f"{name} = {v!r}: must be true or false")
                continue
            if isinstance(default, (int, float)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise InputError(f"{name} = {v!r}: must be a finite number")
                if isinstance(default, int) and not isinstance(default, bool) and int(v) != v:
                    raise InputError(f"{name} = {v!r}: must be a whole number")
                if lo is not None and v < lo:
                    if f.name == "scale":
                        raise InputError(f"{name} = {v!r}: must be > 0 (at least {lo})")
                    raise InputError(f"{name} = {v!r}: must be at least {lo}")
                if hi is not None and v > hi:
                    raise InputError(f"{name} = {v!r}: must be at most {hi}")
            elif isinstance(default, str):
                try:
                    ts = pd.Timestamp(v)
                    if ts is pd.NaT:
                        raise ValueError
                except (ValueError, TypeError):
                    raise InputError(f"{name} = {v!r}: must be an ISO date (YYYY-MM-DD)") from None
            elif isinstance(default, dict):
                if not isinstance(v, dict):
                    raise InputError(f"{name} = {v!r}: must be a mapping")
                if keys is not None:
                    unknown = sorted(set(v) - set(keys))
                    if unknown:
                        raise InputError(f"{name}: unknown key(s) {unknown}; expected {list(keys)}")
                for k, x in v.items():
                    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                        raise InputError(f"{name}[{k!r}] = {x!r}: must be a finite number")
                if f.name in ("race_shares", "flag_prevalence", "flag_missing"):
                    bad = {k: x for k, x in v.items() if not 0 <= x <= 1}
                    if bad:
                        raise InputError(f"{name}: values must be in [0, 1], got {bad}")
                if f.name == "hazard_ratios":
                    bad = {k: x for k, x in v.items() if x <= 0}
                    if bad:
                        raise InputError(f"{name}: hazard ratios must be > 0, got {bad}")
            elif isinstance(default, list):
                if not isinstance(v, (list, tuple)):
                    raise InputError(f"{name} = {v!r}: must be a list")
                if f.name == "hotspot_towns":
                    from dmst_eval.geography import town_names
                    unknown = sorted(set(v) - set(town_names()))
                    if unknown:
                        raise InputError(f"{name}: unknown town(s) {unknown}; use official "
                                         "Connecticut town names")
        if pd.Timestamp(self.study_start) >= pd.Timestamp(self.study_end):
            raise InputError(f"SyntheticConfig.study_start ({self.study_start}) must be before "
                             f"study_end ({self.study_end})")
        if (pd.Timestamp(self.study_end) - pd.Timestamp(self.study_start)).days < 730:
            raise InputError("SyntheticConfig: the study window must be at least two years long")
        return self

    # ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict of all fields (JSON/YAML friendly)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = dict(v) if isinstance(v, dict) else (list(v) if isinstance(v, (list, tuple))
                                                               else v)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "SyntheticConfig":
        """Build from a mapping; unknown keys raise ``InputError``; dict fields are merged over
        the defaults (so a YAML file may give only some log-odds)."""
        d = dict(d or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise InputError(f"SyntheticConfig: unknown key(s) {unknown}; valid keys are "
                             f"{sorted(names)}")
        kw = {}
        for k, v in d.items():
            f = names[k]
            if f.default_factory is not dataclasses.MISSING and isinstance(v, dict):
                base = f.default_factory()
                keys = f.metadata.get("keys")
                if keys is not None:
                    bad = sorted(set(v) - set(keys))
                    if bad:
                        raise InputError(f"SyntheticConfig.{k}: unknown key(s) {bad}; expected "
                                         f"{list(keys)}")
                base.update(v)
                v = base
            if isinstance(v, (pd.Timestamp,)) or type(v).__name__ == "date":
                v = str(v)[:10]
            kw[k] = v
        return cls(**kw)

    def replace(self, **overrides) -> "SyntheticConfig":
        """A copy with some fields replaced (validated; unknown names raise ``InputError``)."""
        d = self.to_dict()
        names = set(d)
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise InputError(f"SyntheticConfig: unknown key(s) {unknown}; valid keys are "
                             f"{sorted(names)}")
        d.update(overrides)
        return SyntheticConfig.from_dict(d)

    @classmethod
    def from_yaml(cls, path) -> "SyntheticConfig":
        """Load from a YAML file (a mapping of field names to values)."""
        import yaml

        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"config file not found: {p}")
        with open(p) as fh:
            try:
                d = yaml.safe_load(fh)
            except yaml.YAMLError as e:
                raise InputError(f"{p}: not valid YAML ({e})") from None
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise InputError(f"{p}: expected a mapping of SyntheticConfig fields")
        return cls.from_dict(d)

    def to_yaml(self, path) -> Path:
        """Write all fields to a YAML file, each preceded by its documentation comment."""
        import yaml

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# dmst-eval synthetic generator configuration (SyntheticConfig).",
                 "# Every field is documented in docs/ground_truth.md.", ""]
        docs = self.field_docs()
        for k, v in self.to_dict().items():
            lines.append(f"# {docs[k]}")
            lines.append(yaml.safe_dump({k: v}, sort_keys=False, default_flow_style=False,
                                        width=100).rstrip())
        p.write_text("\n".join(lines) + "\n")
        return p
