"""Case-data schema v1: the nine tables, their columns, enumerations and the data dictionary.

Everything about the shape of the data is defined once, here. The pandera schemas used by
:func:`dmst_eval.load`, the data dictionary (``dmst-eval dictionary``), the CSV parser and the
synthetic generator all read these definitions.

Conventions
-----------
* ids are strings; times are timezone-naive ``datetime64[ns]``;
* categorical columns are pandas ``Categorical`` with the fixed levels below (unordered unless
  stated);
* flags that can be unknown are pandas nullable ``boolean``;
* towns are Connecticut town names exactly as the Census Bureau spells them (see
  :func:`dmst_eval.geography.normalise_town` for the accepted variants).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

SCHEMA_VERSION = "1"

# --------------------------------------------------------------------------------------------
# Enumerations (defined once)
# --------------------------------------------------------------------------------------------
SEX = ("female", "male")
RACE_ETHNICITY = ("Black", "Hispanic", "White", "Asian", "Multiracial/other", "Unknown")
#: DCF regions. Area offices per region are in :mod:`dmst_eval.geography`.
REGIONS = ("Region 1", "Region 2", "Region 3", "Region 4", "Region 5", "Region 6")
#: Out-of-home placement settings.
SETTINGS = (
    "foster_family",          # licensed non-relative foster home
    "kinship",                # relative / kin foster home
    "specialized_foster",     # therapeutic or DMST-specialised foster home
    "group_home",             # congregate
    "residential_treatment",  # congregate (residential facility)
    "shelter",                # congregate (short-term shelter / emergency bed)
)
#: Settings that are congregate care and carry a ``facility_id``.
CONGREGATE_SETTINGS = ("group_home", "residential_treatment", "shelter")
#: Who made a hotline (Careline) report.
REPORTER_TYPES = (
    "police",
    "dcf_staff",
    "congregate_provider",
    "school",
    "medical",
    "community_provider",
    "family",
    "other",
)
DISPOSITIONS = ("confirmed", "not_confirmed", "pending")
#: Where the child was when an exploitation episode began.
STATUS_AT_TIME = ("home", "placement", "awol")
#: Restore & Recovery services.
SERVICES = (
    "mlmc_group",             # My Life, My Choice ten-week group
    "mentor",                 # Human Trafficking Mentor Services
    "specialized_foster_home",
    "emergency_bed",          # NAFI emergency beds
    "medical_assessment",     # CT Children's / Yale New Haven assessment
    "clinical_consultation",  # Human Trafficking Clinical Team consultation
)
#: Training curricula (the agency's catalogue).
CURRICULA = (
    "dmst_1hr",               # DMST one-hour training (incl. EMS sessions)
    "dmst_2hr_law_enforcement",
    "dmst_full_day",          # DCF Academy Day One
    "dmst_day2_demand",       # Day Two: demand
    "dmst_3day_certification",
    "police_roll_call",
    "foster_parent",
    "mlmc_provider",          # My Life My Choice provider training
    "man_up",                 # Man Up youth series
    "supervisory_series",
)
#: Audiences of training sessions and roles of attendees.
AUDIENCES = (
    "dcf_staff",
    "community_provider",
    "congregate_staff",
    "police",
    "ems",
    "foster_parents",
    "youth",
    "school",
    "judicial",
)
ROLES = AUDIENCES

ENUMS: dict[str, tuple[str, ...]] = {
    "sex": SEX,
    "race_ethnicity": RACE_ETHNICITY,
    "region": REGIONS,
    "setting": SETTINGS,
    "reporter_type": REPORTER_TYPES,
    "disposition": DISPOSITIONS,
    "status_at_time": STATUS_AT_TIME,
    "service": SERVICES,
    "curriculum": CURRICULA,
    "audience": AUDIENCES,
    "role": ROLES,
}

#: Risk-factor flags on ``children`` (nullable: unknown is allowed).
RISK_FLAGS = ("prior_sexual_abuse", "prior_runaway", "substance_use", "juvenile_justice", "lgbtq")

#: Default study window for extracts that carry no ``meta.json``.
DEFAULT_STUDY_START = pd.Timestamp("2008-01-01")
#: Events may not be later than this age (years) of the child.
MAX_EVENT_AGE = 21

# --------------------------------------------------------------------------------------------
# Plausibility rules (checked by :func:`dmst_eval.load` on every bundle; see the data dictionary)
# --------------------------------------------------------------------------------------------
#: No date in a bundle (birth dates included) may be earlier than this.
DATE_MIN = pd.Timestamp("1990-01-01")
#: Ages at any event in a child's life must lie in 0..MAX_PLAUSIBLE_AGE years; the stricter
#: life-event rule (birth .. :data:`MAX_EVENT_AGE`) applies to the events each table lists.
MAX_PLAUSIBLE_AGE = 25
#: Complete ISO 8601 dates (with an optional time of day, no time zone): "2019-05" or
#: "20190501" are not accepted.
ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$"
#: Most characters a text value may hold, by column kind (ids and free text).
MAX_TEXT_LENGTH: dict[str, int] = {"id": 100, "str": 1000}
#: Characters that may not appear inside a text value (C0 control characters and DEL; leading
#: and trailing whitespace of ids is trimmed first).
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"
#: A free-text value starting with one of these is read as a formula by spreadsheet programs.
#: Such values are accepted, but :func:`dmst_eval.casedata.neutralise_formulas` (used by every
#: CSV/spreadsheet writer in the toolkit) prefixes them with an apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: ``meta.json`` and ``truth.json`` may nest objects/arrays at most this deep.
MAX_JSON_DEPTH = 64
#: Without ``study_end`` (``meta.json`` or ``load(..., study_end=)``) the study end is inferred
#: from the dates in the data: the latest date of the bulk, where dates more than
#: ``WINDOW_GAP_DAYS`` after all earlier ones, when they are one date or at most
#: ``WINDOW_OUTLIER_SHARE`` of the dates (and only with at least ``WINDOW_MIN_DATES`` dates),
#: are outliers (reported as errors) rather than the end of the window.
WINDOW_GAP_DAYS = 366
WINDOW_OUTLIER_SHARE = 0.01
WINDOW_MIN_DATES = 50
#: The generator named in the record of a synthetic bundle (see ``casedata.generator_record``).
SYNTHETIC_GENERATOR = "dmst_eval.synthetic.generate"


# --------------------------------------------------------------------------------------------
# Column and table specifications
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``kind`` is one of ``id`` (string key), ``str``, ``town`` (Connecticut town name),
    ``category`` (levels from :data:`ENUMS` under ``levels``), ``datetime``, ``bool``
    (nullable boolean), ``int`` (nullable integer), ``float``.
    """

    name: str
    kind: str
    description: str
    nullable: bool = False
    levels: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    references: tuple[str, str] | None = None  # (table, column) foreign key

    @functools.cached_property  # (built once: the loader asks for it for every column)
    def dtype(self) -> Any:
        """The pandas dtype this column has in a loaded bundle."""
        if self.kind == "category":
            return pd.CategoricalDtype(list(self.levels or ()), ordered=False)
        return {
            "id": "string",
            "str": "string",
            "town": "string",
            "datetime": "datetime64[ns]",
            "bool": "boolean",
            "int": "Int64",
            "float": "float64",
        }[self.kind]


@dataclass(frozen=True)
class Table:
    """One table of the bundle: its key, columns and ordering constraints."""

    name: str
    description: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    #: (earlier, later) column pairs that must satisfy later >= earlier where both are present.
    date_order: tuple[tuple[str, str], ...] = ()
    #: datetime columns that are events in the child's life (checked against birth and age 21).
    life_events: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def dtypes(self) -> dict[str, Any]:
        return {c.name: c.dtype for c in self.columns}


def _cat(name: str, description: str, enum: str | None = None, nullable: bool = False) -> Column:
    return Column(name, "category", description, nullable=nullable, levels=ENUMS[enum or name])


TABLES: dict[str, Table] = {}


def _add(t: Table) -> None:
    TABLES[t.name] = t


_add(Table(
    "children",
    "One row per child known to the agency (child-welfare involved or reported for trafficking).",
    key=("child_id",),
    columns=(
        Column("child_id", "id", "Unique child identifier (pseudonymous)."),
        _cat("sex", "Sex recorded by the agency."),
        Column("birth_date", "datetime", "Date of birth."),
        _cat("race_ethnicity", "Race/ethnicity as recorded (single category)."),
        Column("home_town", "town", "Connecticut town of the child's home (family) address."),
        _cat("region", "DCF region of the home town.", enum="region"),
        Column("child_welfare_involved", "bool",
               "Child had child-welfare involvement (open case or placement) before or apart from "
               "the trafficking report."),
        Column("prior_sexual_abuse", "bool", "History of sexual abuse before agency contact; "
               "missing = unknown.", nullable=True),
        Column("prior_runaway", "bool", "History of running away from home before agency contact; "
               "missing = unknown.", nullable=True),
        Column("substance_use", "bool", "Known substance use; missing = unknown.", nullable=True),
        Column("juvenile_justice", "bool", "Juvenile-justice involvement; missing = unknown.",
               nullable=True),
        Column("lgbtq", "bool", "Identifies as LGBTQ+; missing = unknown or not asked.",
               nullable=True),
    ),
    life_events=(),
))

_add(Table(
    "facilities",
    "One row per congregate-care or residential setting (named 'Facility 017' style).",
    key=("facility_id",),
    columns=(
        Column("facility_id", "id", "Unique facility identifier."),
        Column("name", "str", "Display name (never a real facility's name in synthetic data)."),
        _cat("setting", "Type of congregate setting.", enum="setting"),
        Column("town", "town", "Connecticut town where the facility is."),
        Column("capacity", "int", "Licensed beds.", min=1),
    ),
))

_add(Table(
    "placements",
    "One row per out-of-home placement spell.",
    key=("placement_id",),
    columns=(
        Column("placement_id", "id", "Unique placement identifier."),
        Column("child_id", "id", "Child placed.", references=("children", "child_id")),
        _cat("setting", "Placement setting.", enum="setting"),
        Column("facility_id", "id", "Facility for congregate settings; missing for family settings.",
               nullable=True, references=("facilities", "facility_id")),
        Column("town", "town", "Connecticut town of the placement."),
        Column("start", "datetime", "Placement start."),
        Column("end", "datetime", "Placement end; missing while ongoing at data extraction.",
               nullable=True),
    ),
    date_order=(("start", "end"),),
    life_events=("start", "end"),
))

_add(Table(
    "awol_episodes",
    "One row per absence without leave (AWOL / missing from care) from a placement.",
    key=("awol_id",),
    columns=(
        Column("awol_id", "id", "Unique AWOL episode identifier."),
        Column("child_id", "id", "Child who was missing.", references=("children", "child_id")),
        Column("placement_id", "id", "Placement the child left.",
               references=("placements", "placement_id")),
        Column("start", "datetime", "When the child was first known to be missing."),
        Column("end", "datetime", "When the child returned or was located; missing if not yet.",
               nullable=True),
    ),
    date_order=(("start", "end"),),
    life_events=("start", "end"),
))

_add(Table(
    "reports",
    "One row per hotline (Careline) report alleging trafficking of a child.",
    key=("report_id",),
    columns=(
        Column("report_id", "id", "Unique report identifier."),
        Column("child_id", "id", "Child the report concerns.", references=("children", "child_id")),
        Column("received_at", "datetime", "When the Careline received the report."),
        _cat("reporter_type", "Who made the report (PA 11-180 makes police report arrests)."),
        Column("guardian_perpetrator", "bool",
               "A parent, guardian or entrusted person is named as perpetrator. Reports without one "
               "can be accepted as child-protection cases."),
        Column("accepted", "bool", "Accepted for a child-protection response."),
        _cat("region", "DCF region responsible.", enum="region"),
        Column("first_response_at", "datetime", "First in-person response; missing if none.",
               nullable=True),
        Column("mdt_referral_at", "datetime", "Referral to a Multidisciplinary Team; missing if none.",
               nullable=True),
        _cat("disposition", "Outcome of the investigation."),
    ),
    date_order=(("received_at", "first_response_at"), ("received_at", "mdt_referral_at")),
    life_events=("received_at",),
))

_add(Table(
    "episodes",
    "One row per exploitation episode that came to light.",
    key=("episode_id",),
    columns=(
        Column("episode_id", "id", "Unique episode identifier."),
        Column("child_id", "id", "Child victimized.", references=("children", "child_id")),
        Column("report_id", "id", "Report through which the episode came to light.", nullable=True,
               references=("reports", "report_id")),
        Column("began_at", "datetime", "When the exploitation began (best estimate)."),
        Column("identified_at", "datetime", "When the agency identified the episode."),
        Column("confirmed", "bool", "Confirmed as trafficking by the agency."),
        _cat("status_at_time", "Where the child was when the episode began."),
        Column("placement_id", "id", "Placement at the time (placement or AWOL status).",
               nullable=True, references=("placements", "placement_id")),
        Column("facility_id", "id", "Congregate facility at the time, if any.", nullable=True,
               references=("facilities", "facility_id")),
        Column("awol_id", "id", "AWOL episode during which it began, if any.", nullable=True,
               references=("awol_episodes", "awol_id")),
        Column("town", "town", "Connecticut town where the exploitation began or was located."),
    ),
    date_order=(("began_at", "identified_at"),),
    life_events=("began_at", "identified_at"),
))

_add(Table(
    "services",
    "One row per Restore & Recovery service referral.",
    key=("service_id",),
    columns=(
        Column("service_id", "id", "Unique referral identifier."),
        Column("child_id", "id", "Child referred.", references=("children", "child_id")),
        Column("episode_id", "id", "Episode that prompted the referral, if any.", nullable=True,
               references=("episodes", "episode_id")),
        _cat("service", "Service referred to."),
        Column("referred_at", "datetime", "Referral date."),
        Column("started_at", "datetime", "Service start; missing if never started.", nullable=True),
        Column("ended_at", "datetime", "Service end; missing if ongoing or never started.",
               nullable=True),
        Column("completed", "bool", "Service completed as planned; missing if ongoing.",
               nullable=True),
    ),
    date_order=(("referred_at", "started_at"), ("started_at", "ended_at")),
    life_events=("referred_at", "started_at", "ended_at"),
))

_add(Table(
    "trainings",
    "One row per Awareness & Education training session.",
    key=("session_id",),
    columns=(
        Column("session_id", "id", "Unique session identifier."),
        Column("date", "datetime", "Session date."),
        _cat("curriculum", "Curriculum delivered."),
        _cat("audience", "Main audience."),
        _cat("region", "DCF region where delivered.", enum="region"),
        Column("attendees", "int", "Number of attendees.", min=0),
        Column("hours", "float", "Contact hours.", min=0.25, max=40),
    ),
))

_add(Table(
    "training_attendance",
    "One row per attendee of a training session, with knowledge-test scores (0-100).",
    key=("session_id", "attendee_id"),
    columns=(
        Column("session_id", "id", "Session attended.", references=("trainings", "session_id")),
        Column("attendee_id", "id", "Pseudonymous attendee identifier."),
        _cat("role", "Attendee's role."),
        Column("pre_score", "float", "Pre-test knowledge score (0-100); missing if not taken.",
               nullable=True, min=0, max=100),
        Column("post_score", "float", "Post-test knowledge score (0-100); missing if not taken.",
               nullable=True, min=0, max=100),
    ),
))

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)


def empty_frame(table: str) -> pd.DataFrame:
    """An empty DataFrame with the columns and dtypes of ``table``."""
    spec = TABLES[table]
    return pd.DataFrame({c.name: pd.Series([], dtype=c.dtype) for c in spec.columns})


def _has_dtype(s: pd.Series, dtype) -> bool:
    """``s`` has exactly ``dtype`` (categoricals: the same levels in the same order; storage of
    strings counts)."""
    dtype = pd.api.types.pandas_dtype(dtype)
    if isinstance(dtype, pd.CategoricalDtype):  # (their == ignores the order of the levels)
        have = s.dtype
        return (isinstance(have, pd.CategoricalDtype) and have.ordered == dtype.ordered
                and have.categories.dtype == dtype.categories.dtype
                and have.categories.equals(dtype.categories))
    return s.dtype == dtype and repr(s.dtype) == repr(dtype)


def coerce_dtypes(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return ``df`` with every schema column cast to its schema dtype (no validation).

    Used by generators and tests that build frames by hand. Raises ``KeyError`` for a missing
    column; unknown categories become missing (validation catches them when loading). A frame
    that already has exactly the schema's columns, in order, with their dtypes is returned as
    it is, not copied.
    """
    spec = TABLES[table]
    if list(df.columns) == spec.column_names and all(_has_dtype(df[c.name], c.dtype)
                                                      for c in spec.columns):
        return df
    out = {}
    for c in spec.columns:
        out[c.name] = df[c.name].astype(c.dtype)
    return pd.DataFrame(out, index=df.index)


# --------------------------------------------------------------------------------------------
# Study window, pandera schemas and the data dictionary
# --------------------------------------------------------------------------------------------
#: Study end for bundles without any date when no ``study_end`` is given (the synthetic
#: default window's end). With dates, the end is inferred from them (see
#: :func:`dmst_eval.casedata.infer_study_end`).
DEFAULT_STUDY_END = pd.Timestamp("2025-12-31")

#: Datetime columns that record the agency's own activity and so must fall inside the study
#: window (``study_start`` <= value <= ``study_end``). Every other datetime column except
#: ``children.birth_date`` must not be later than ``study_end`` (data are extracted at the end of
#: the window), but may be earlier than ``study_start`` (history: a placement that began before
#: the window, an exploitation that began before it was identified).
WINDOW_COLUMNS: dict[str, tuple[str, ...]] = {
    "reports": ("received_at",),
    "episodes": ("identified_at",),
    "services": ("referred_at",),
    "trainings": ("date",),
}

_KIND_LABEL = {
    "id": "string (identifier)",
    "str": "string",
    "town": "Connecticut town",
    "category": "category",
    "datetime": "date/time",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
}


def expectation(col: Column) -> str:
    """Plain-language statement of what a value of ``col`` must look like."""
    if col.kind == "category":
        return "one of " + ", ".join(col.levels or ())
    if col.kind == "datetime":
        return ("a complete date or date-time in ISO 8601 form (YYYY-MM-DD or YYYY-MM-DD "
                f"HH:MM:SS), no time zone, not before {DATE_MIN.date()} and not after the extract "
                "date")
    if col.kind == "bool":
        return "true/false (also accepted: yes/no, y/n, 1/0)"
    if col.kind == "int":
        return "a whole number" + _range_text(col)
    if col.kind == "float":
        return "a finite number" + _range_text(col)
    if col.kind == "town":
        return "one of Connecticut's 169 towns (official Census spelling or an accepted variant)"
    if col.kind in MAX_TEXT_LENGTH:
        return f"text of at most {MAX_TEXT_LENGTH[col.kind]} characters, no control characters"
    return "text"


def _range_text(col: Column) -> str:
    if col.min is not None and col.max is not None:
        return f" between {col.min:g} and {col.max:g}"
    if col.min is not None:
        return f" >= {col.min:g}"
    if col.max is not None:
        return f" <= {col.max:g}"
    return ""


def pandera_schema(table: str, columns=None, *, dtypes: bool = True):
    """The pandera ``DataFrameSchema`` of ``table`` (for frames already cast to schema dtypes).

    Checks dtypes, nullability, key uniqueness, value ranges and category levels. Cross-table
    rules (foreign keys, date order, life events, study window, towns) are checked by
    :func:`dmst_eval.casedata.validate`.

    Parameters
    ----------
    table : str
        One of :data:`TABLE_NAMES`.
    columns : iterable of str, optional
        Restrict the schema to these columns (used when some columns are missing, so that each
        problem is reported once).
    dtypes : bool, default True
        Check each column's dtype. ``False`` leaves the dtypes unchecked, for frames whose
        dtypes are already known to be the schema's (:func:`dmst_eval.load` casts every column
        and checks their dtypes itself, which is much cheaper than pandera's per-column check).

    Examples
    --------
    >>> s = pandera_schema("trainings")
    >>> sorted(s.columns)[:3]
    ['attendees', 'audience', 'curriculum']
    >>> s.columns["date"].dtype, pandera_schema("trainings", dtypes=False).columns["date"].dtype
    (DataType(datetime64[ns]), None)
    """
    import pandera.pandas as pa

    spec = TABLES[table]
    keep = set(spec.column_names if columns is None else columns)
    cols = {}
    for c in spec.columns:
        if c.name not in keep:
            continue
        checks = []
        if c.min is not None:
            checks.append(pa.Check.ge(c.min))
        if c.max is not None:
            checks.append(pa.Check.le(c.max))
        if c.kind == "category":
            checks.append(pa.Check.isin(list(c.levels or ())))
        cols[c.name] = pa.Column(
            c.dtype if dtypes else None, checks=checks, nullable=c.nullable,
            unique=(len(spec.key) == 1 and spec.key[0] == c.name),
            description=c.description,
        )
    multi_key = list(spec.key) if len(spec.key) > 1 and set(spec.key) <= keep else None
    return pa.DataFrameSchema(cols, unique=multi_key, report_duplicates="all", strict=False,
                              coerce=False, name=table)


def data_dictionary() -> str:
    """The data dictionary as Markdown (what ``dmst-eval dictionary`` writes)."""
    lines = [
        "# Data dictionary (case-data schema v" + SCHEMA_VERSION + ")",
        "",
        "<!-- Generated by `dmst-eval dictionary` from dmst_eval/schema.py. Do not edit by hand; "
        "tests/test_packaging.py fails when this file is stale. -->",
        "",
        "A bundle is a folder with one file per table: `<table>.parquet` (as written by "
        "`CaseData.save`) or `<table>.csv` (how an agency extract usually arrives), plus an "
        "optional `meta.json` (study window, source) and, for synthetic data, `truth.json`. "
        "`dmst_eval.load(path)` checks every rule below and lists every problem at once. Every "
        "table must be present; for a table you do not have, supply a CSV with just the header "
        "row. Each table is exactly one file: where both `<table>.parquet` and `<table>.csv` "
        "exist the bundle is refused (remove the one that is not current). A `<table>.parquet` "
        "folder of part files (as Spark writes them) counts as one file; an empty one is refused. "
        "Symbolic links are followed to regular files only: a link loop, a dangling link, a "
        "folder where a file is expected or a device is reported as such, naming the file. "
        "CSV files must be UTF-8.",
        "",
        "General rules:",
        "",
        "- Identifiers are text. Dates are ISO 8601 (`YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`), "
        "without a time zone.",
        "- In CSV files an empty cell means missing. Booleans may be written true/false, yes/no, "
        "y/n or 1/0.",
        "- A column that is not *nullable* must have a value in every row.",
        "- Towns must be Connecticut towns; case, spacing, \"town\"/\"city\" suffixes, \", CT\", "
        "abbreviations (N./S./E./W.) and common village names (Willimantic, Winsted, Rockville, "
        "...) are accepted and replaced by the official name when loading.",
        "- Columns that reference another table (foreign keys) must hold a value that exists there, "
        "and a linked row must belong to the same child (an AWOL episode's placement, an "
        "episode's report, placement and AWOL episode, a service's episode).",
        "- Consistency: a placement with a `facility_id` has that facility's setting; congregate "
        "placements (" + ", ".join(CONGREGATE_SETTINGS) + ") have a `facility_id`, family "
        "placements none; an AWOL episode starts during its placement; an episode with "
        "`status_at_time` awol has an `awol_id` and a `placement_id`, placement has a "
        "`placement_id`, home has neither.",
        "- Events in a child's life (listed per table) may not precede the child's birth or come "
        f"after age {MAX_EVENT_AGE}.",
        "- No date may be later than the study end (`study_end`: from `load(..., study_end=)`, "
        "else `meta.json`, else inferred, see below); the agency-activity "
        "dates " + ", ".join(f"`{t}.{c}`" for t, cs in WINDOW_COLUMNS.items() for c in cs)
        + " must also be on or after the study start (`study_start`, default "
        f"{DEFAULT_STUDY_START.date()}).",
        "",
        "Plausibility rules (every bundle, real or synthetic):",
        "",
        "- Dates are complete ISO dates: `2019-05`, `2019` or `20190501` are refused, not read "
        "as the first of the month or year. No time zones.",
        f"- No date (birth dates included) is before {DATE_MIN.date()} or after the extract "
        "date: `meta.json` `extracted_at` (a complete ISO date, not in the future), or today "
        "when it is absent. `study_start` and `study_end` obey the same bounds.",
        f"- Ages: a child's age at any event is between 0 and {MAX_PLAUSIBLE_AGE} years; the "
        "events each table lists below must fall between the child's birth and "
        f"{MAX_EVENT_AGE}st birthday.",
        "- Text: identifiers hold at most "
        f"{MAX_TEXT_LENGTH['id']} characters and free text (such as facility names) at most "
        f"{MAX_TEXT_LENGTH['str']:,}; no control characters (NUL bytes, tabs, line breaks, "
        "escape...) inside a value (surrounding spaces of identifiers are trimmed); text must be "
        "valid UTF-8, and a Parquet column of binary data is refused.",
        "- Free text that starts with `=`, `+`, `-`, `@` (or a tab or carriage return) is "
        "accepted, but every CSV or spreadsheet file the toolkit writes prefixes such a value "
        "with an apostrophe (`dmst_eval.casedata.neutralise_formulas`), so that a spreadsheet "
        "shows it as text instead of running it as a formula.",
        "- `meta.json` and `truth.json` must be JSON files (objects) nested at most "
        f"{MAX_JSON_DEPTH} levels deep.",
        "",
        "The study window:",
        "",
        "- `study_start` and `study_end` (whole days, both inclusive) come from "
        "`dmst_eval.load(path, study_start=..., study_end=...)`, else from `meta.json`. Without "
        f"either, the start is {DEFAULT_STUDY_START.date()} and the end is inferred from the "
        "dates in the data (birth dates aside): the latest date of their bulk. A date more than "
        f"{WINDOW_GAP_DAYS} days after all earlier ones, when such dates are a single date or "
        f"at most {WINDOW_OUTLIER_SHARE:.0%} of all dates (and there are at least "
        f"{WINDOW_MIN_DATES} dates), is reported as an error (most likely a typing error) instead of stretching "
        "the window.",
        "",
        "Synthetic data:",
        "",
        "- A bundle is synthetic (and its briefs carry the synthetic-data banner) only when "
        "`meta.json` says `\"source\": \"synthetic\"` and carries the generator record that "
        f"`dmst_eval.synthetic.generate` writes: `generator` (`{SYNTHETIC_GENERATOR}`), `config` "
        "(the generator configuration) with `generator_config_sha256`, `truth_sha256` of "
        "`truth.json` (which must be present) and `data_hash` of the tables. Each hash is the "
        "SHA-256 of the JSON value in canonical form (sorted keys, separators `,` and `:`, "
        "ASCII); `data_hash` is the one `CaseData.save` writes (with `file_sha256`, the "
        "SHA-256 of each Parquet file it wrote, so that loading those very files does not hash "
        "the tables again; a file with other bytes is hashed). A bundle claiming to be "
        "synthetic without a consistent record is refused: a real extract says "
        "`\"source\": \"extract\"` or leaves `source` out.",
        "",
    ]
    for t in TABLES.values():
        lines += [f"## `{t.name}`", "", t.description, "",
                  "Key: " + ", ".join(f"`{k}`" for k in t.key) + " (unique)."]
        if t.date_order:
            lines.append("Order: " + "; ".join(f"`{b}` >= `{a}`" for a, b in t.date_order)
                         + " (where both are present).")
        if t.life_events:
            lines.append("Events in the child's life: " + ", ".join(f"`{c}`" for c in t.life_events)
                         + ".")
        lines += ["", "| column | type | allowed values | nullable | meaning |",
                  "|---|---|---|---|---|"]
        for c in t.columns:
            if c.kind == "category":
                allowed = ", ".join(f"`{v}`" for v in c.levels or ())
            elif c.references:
                allowed = f"a `{c.references[1]}` in `{c.references[0]}`"
            elif c.kind == "town":
                allowed = "Connecticut town"
            elif c.kind in ("int", "float") and (c.min is not None or c.max is not None):
                allowed = _range_text(c).strip()
            else:
                allowed = ""
            lines.append(f"| `{c.name}` | {_KIND_LABEL[c.kind]} | {allowed} | "
                         f"{'yes' if c.nullable else 'no'} | {c.description} |")
        lines.append("")
    return "\n".join(lines)


def write_data_dictionary(path) -> None:
    """Write :func:`data_dictionary` to ``path`` (Markdown), creating parent folders."""
    from pathlib import Path

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(data_dictionary(), encoding="utf-8")
