"""The case format: structural models (twins of schemas/case.schema.json), loading and semantic checks."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from reirrad.errors import InputError, Problem
from reirrad.load.files import check_depth
from reirrad.load.validation import schema_problems
from reirrad.load.yamlio import LineMap, load_yaml_file, load_yaml_text
from reirrad.vocabulary import METRICS, STEREOTACTIC_TECHNIQUES, STRUCTURE_NAMES

__all__ = [
    "CASE_SCHEMA",
    "EARLIEST_DATE",
    "MAX_COURSE_GY",
    "MAX_DOSE_VALUE",
    "MAX_FRACTIONS",
    "MAX_GY_PER_FRACTION",
    "MAX_ORGAN_TO_PRESCRIPTION",
    "MAX_PLANNED_AHEAD_DAYS",
    "MAX_STEREOTACTIC_FRACTIONS",
    "MAX_SURVIVAL_MONTHS",
    "METRICS",
    "MIN_GY_PER_FRACTION",
    "MIN_STEREOTACTIC_GY_PER_FRACTION",
    "STRUCTURE_NAMES",
    "Case",
    "Course",
    "PlannedCourse",
    "PriorCourse",
    "case_problems",
    "case_problems_fast",
    "load_case",
    "parse_case",
]

CASE_SCHEMA = "case.schema.json"
REDACTED_PATHS = frozenset({("case_id",), ("patient", "histology")})
"""Fields whose value a refusal never repeats: they may hold identifying data."""

# Plausibility bounds. Each is documented with its basis in docs/case-format.md ("Plausibility bounds"); those
# marked "engineering bound" are chosen by the project to catch unit and typing errors, not clinical limits.
MAX_GY_PER_FRACTION = 30.0
"""A dose per fraction above this (after converting cGy) is refused: in a course marked Gy it is taken for cGy
typed as Gy (DOMAIN.md); the largest schedule in the sources is 24 Gy in 1 fraction (Kotecha 2020, Table 3)."""
MIN_GY_PER_FRACTION = 0.5
"""Engineering bound: half the smallest dose per fraction in the sources (1 Gy twice daily, hyperfractionated
re-irradiation, Kotecha 2020). Below it, a course marked cGy is taken for Gy written as cGy."""
MAX_COURSE_GY = 100.0
"""Engineering bound: the total physical prescription of one course; the largest course in the sources is
50 Gy in 25 fractions (Kotecha 2020, Table 3), the largest re-treatment median 54 Gy (PRDR, Kotecha 2020)."""
MAX_FRACTIONS = 60
"""Engineering bound on the number of fractions of any course (schema and model): the longest schedule in the
sources is 25 fractions; twice-daily hyperfractionation roughly doubles the count."""
MAX_STEREOTACTIC_FRACTIONS = 10
"""Engineering bound for SBRT and SRS: the sources' stereotactic spine schedules use 1 to 5 fractions (Myrehaug
2017; Kotecha 2020, Table 3); twice that leaves room for series with 6 to 10."""
MIN_STEREOTACTIC_GY_PER_FRACTION = 3.0
"""Engineering bound for SBRT and SRS: the smallest stereotactic dose per fraction in the sources is 4.8 Gy
(24 Gy in 5 fractions, Thibault 2015 in Kotecha 2020, Table 2)."""
MAX_ORGAN_TO_PRESCRIPTION = 2.0
"""Engineering bound: an organ-at-risk dose (or the PTV minimum) above twice the course's prescription is taken
for a unit error; the largest ratio in the rule pack's test cases is 1.09 (the Lucido 2025 patient, 109 %)."""
MAX_DOSE_VALUE = 100_000
"""Engineering bound of the schema on any dose figure (1,000 Gy written in cGy): no number beyond it reaches a
calculation, so none can overflow one."""
MAX_SURVIVAL_MONTHS = 1200
"""Engineering bound of the schema: an expected survival longer than 100 years is not an estimate."""
EARLIEST_DATE = date(1900, 1, 1)
"""Engineering bound: no radiotherapy record is older; an earlier date is a typing error."""
MAX_PLANNED_AHEAD_DAYS = 365
"""Engineering bound: a planned course starts at most a year after the date of evaluation (a later start would
lengthen the interval, and so the repair credited, by a date nobody can know)."""

_SYNONYMS = {
    "cord": "SpinalCord",
    "sc": "SpinalCord",
    "spinal cord": "SpinalCord",
    "spinal_cord": "SpinalCord",
    "spinalcord": "SpinalCord",
    "myelon": "SpinalCord",
    "thecal sac": "ThecalSac",
    "thecal_sac": "ThecalSac",
    "thecalsac": "ThecalSac",
    "spinal canal": "SpinalCanal",
    "canal": "SpinalCanal",
    "cauda": "CaudaEquina",
    "cauda equina": "CaudaEquina",
    "cauda_equina": "CaudaEquina",
    "brachial plexus r": "BrachialPlex_R",
    "rt bp": "BrachialPlex_R",
    "bp_r": "BrachialPlex_R",
    "brachialplexus_r": "BrachialPlex_R",
    "brachial plexus l": "BrachialPlex_L",
    "lt bp": "BrachialPlex_L",
    "bp_l": "BrachialPlex_L",
    "brachialplexus_l": "BrachialPlex_L",
    "oesophagus": "Esophagus",
    "esophagus": "Esophagus",
    "spinalcord_prv5": "SpinalCord_PRV05",
    "spinalcord_prv3": "SpinalCord_PRV03",
    "cord prv": "SpinalCord_PRV05",
}


def suggest_structure(name: str) -> str:
    """The TG-263 name a user most likely meant, or ""."""
    key = " ".join(name.replace("-", " ").split()).lower()
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    by_lower = {s.lower(): s for s in STRUCTURE_NAMES}
    from difflib import get_close_matches  # on a refusal only

    close = get_close_matches(key.replace(" ", ""), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else ""


def _suggest(value: str, path: tuple[str | int, ...]) -> str:
    if path and path[-1] == "structures":
        found = suggest_structure(value)
        if found:
            return f"; did you mean the TG-263 name '{found}'?"
        if value.upper().startswith(("PTV", "CTV", "GTV", "ITV")):
            return "; targets are not listed among the structures (the planned course has ptv_high_dmin)"
        return ""
    if path and path[-1] == "bilsky_grade" and value.strip() == "1":
        return '; grade 1 is written with its subgrade: "1a", "1b" or "1c"'
    return ""


def _parse_date(text: str) -> date:
    return date.fromisoformat(text)


def _integral(value: Any) -> Any:
    """JSON Schema counts 10.0 as an integer; so does the model (it becomes 10). 10.5 is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


IsoDate = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_parse_date)
]
Integer = Annotated[StrictInt, BeforeValidator(_integral)]
Number = StrictInt | StrictFloat
Dose = Annotated[Number, Field(ge=0, le=MAX_DOSE_VALUE)]

FREE_TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u200b-\\u200f\\u202a-\\u202e\\u2060\\u2066-\\u2069\\ufeff]*$"
"""One line of printable text: the schema's pattern for free text (histology), also used by the model."""
_FREE_TEXT = re.compile(FREE_TEXT_PATTERN.replace("$", "\\Z"))


def _one_line_text(value: str) -> str:
    if not _FREE_TEXT.match(value):
        raise ValueError("must be one line of printable text")
    return value


FreeText = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_one_line_text)]
Technique = Literal["2D", "3DCRT", "IMRT", "VMAT", "SBRT", "SRS", "other"]
StructureName = Literal[
    "SpinalCord",
    "SpinalCord_PRV03",
    "SpinalCord_PRV05",
    "ThecalSac",
    "SpinalCanal",
    "CaudaEquina",
    "BrachialPlex_L",
    "BrachialPlex_R",
    "SacralPlex",
    "Esophagus",
]
Level = Literal[
    "C1",
    "C2",
    "C3",
    "C4",
    "C5",
    "C6",
    "C7",
    "T1",
    "T2",
    "T3",
    "T4",
    "T5",
    "T6",
    "T7",
    "T8",
    "T9",
    "T10",
    "T11",
    "T12",
    "L1",
    "L2",
    "L3",
    "L4",
    "L5",
    "S1",
    "S2",
    "S3",
    "S4",
    "S5",
]


class _Model(BaseModel):
    # Fields are read by their aliases only ("D0.03cc", "schema"), as the schema names them; finite numbers.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """An optional field is left out when not known; an explicit null is refused, as by the schema."""
        if value is None:
            raise ValueError("must not be null")
        return value


class Prescription(_Model):
    dose: Annotated[Number, Field(gt=0, le=MAX_DOSE_VALUE)]
    fractions: Annotated[Integer, Field(ge=1, le=MAX_FRACTIONS)]


_METRIC_FIELDS = {"Dmax": "Dmax", "D0.03cc": "D0_03cc", "D0.1cc": "D0_1cc", "D1cc": "D1cc"}
"""Each metric's field of DoseMetrics (a metric name is not always an identifier)."""


class DoseMetrics(_Model):
    Dmax: Dose | None = None
    D0_03cc: Dose | None = Field(default=None, alias="D0.03cc")
    D0_1cc: Dose | None = Field(default=None, alias="D0.1cc")
    D1cc: Dose | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> DoseMetrics:
        if all(v is None for v in (self.Dmax, self.D0_03cc, self.D0_1cc, self.D1cc)):
            raise ValueError("must not be empty")
        return self

    def get(self, metric: str) -> float | None:
        value = getattr(self, _METRIC_FIELDS[metric])
        return None if value is None else float(value)

    def items(self) -> list[tuple[str, float]]:
        return [(m, v) for m in METRICS if (v := self.get(m)) is not None]


def _one_of(*allowed: int) -> AfterValidator:
    def check(value: int) -> int:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(map(str, allowed))}")
        return value

    return AfterValidator(check)


class SystemicDisease(_Model):
    status: Literal["none", "stable", "progressing"] | None = None
    brain_metastases: StrictBool | None = None
    further_systemic_options: StrictBool | None = None


class SinsComponents(_Model):
    """The six components of the Spinal Instability Neoplastic Score (Fisher 2010)."""

    location: Annotated[Integer, _one_of(0, 1, 2, 3)]
    pain: Annotated[Integer, _one_of(0, 1, 3)]
    bone_lesion: Annotated[Integer, _one_of(0, 1, 2)]
    alignment: Annotated[Integer, _one_of(0, 2, 4)]
    collapse: Annotated[Integer, _one_of(0, 1, 2, 3)]
    posterolateral: Annotated[Integer, _one_of(0, 1, 3)]

    @property
    def total(self) -> int:
        return (
            self.location
            + self.pain
            + self.bone_lesion
            + self.alignment
            + self.collapse
            + self.posterolateral
        )


class Hardware(_Model):
    present: StrictBool
    failure: StrictBool | None = None


class Patient(_Model):
    age: Annotated[Integer, Field(ge=0, le=120)] | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    histology: FreeText | None = None
    ecog: Annotated[Integer, Field(ge=0, le=4)] | None = None
    expected_survival_months: Annotated[Number, Field(ge=0, le=MAX_SURVIVAL_MONTHS)] | None = None
    kps: Annotated[Integer, Field(ge=0, le=100)] | None = None
    systemic_disease: SystemicDisease | None = None


class Lesion(_Model):
    levels: Annotated[list[Level], Field(min_length=1)]
    bilsky_grade: Literal["0", "1a", "1b", "1c", "2", "3"] | None = None
    sins: Annotated[Integer, Field(ge=0, le=18)] | None = None
    recurrence: Literal["in_field", "marginal", "out_of_field"] | None = None
    sins_components: SinsComponents | None = None
    pathologic_fracture: StrictBool | None = None
    neurologic_deficit: StrictBool | None = None
    cord_compression_symptoms: StrictBool | None = None
    prior_surgery: StrictBool | None = None
    hardware: Hardware | None = None
    extent: Literal["local", "local_and_systemic"] | None = None

    @property
    def sins_total(self) -> int | None:
        """The SINS total: given directly, or the sum of its components."""
        if self.sins is not None:
            return int(self.sins)
        return self.sins_components.total if self.sins_components is not None else None


class Course(_Model):
    start: IsoDate
    technique: Technique
    prescription: Prescription
    unit: Literal["Gy", "cGy"] = "Gy"
    structures: Annotated[dict[StructureName, DoseMetrics], Field(min_length=1)] | None = None

    @property
    def scale(self) -> float:
        """Factor from the course's unit to Gy."""
        return 0.01 if self.unit == "cGy" else 1.0

    @property
    def fractions(self) -> int:
        return self.prescription.fractions

    @property
    def prescription_gy(self) -> float:
        return float(self.prescription.dose) * self.scale

    def dose_gy(self, structure: str, metric: str) -> float | None:
        """The structure's metric in Gy, or None when the course does not give it."""
        if not self.structures or structure not in self.structures:
            return None
        value = self.structures[structure].get(metric)
        return None if value is None else value * self.scale

    @property
    def is_stereotactic(self) -> bool:
        return self.technique in STEREOTACTIC_TECHNIQUES


class PriorCourse(Course):
    end: IsoDate
    dosimetry: Literal["available", "unavailable"] | None = None
    tolerance: Literal["well_tolerated", "poorly_tolerated"] | None = None

    @model_validator(mode="after")
    def _dosimetry_or_structures(self) -> PriorCourse:
        if self.dosimetry == "unavailable" and self.structures is not None:
            raise ValueError("structures are given although dosimetry is 'unavailable'")
        return self

    @property
    def dosimetry_lost(self) -> bool:
        return self.dosimetry == "unavailable"


class PlannedCourse(Course):
    """The course being considered; without ``structures`` there is no planned dose yet."""

    ptv_high_dmin: Dose | None = None

    @property
    def has_dose(self) -> bool:
        return bool(self.structures)


class Outcome(_Model):
    """An event after the planned course (audits only; no rule reads it)."""

    occurred: StrictBool
    date: IsoDate | None = None


class Outcomes(_Model):
    myelopathy: Outcome | None = None
    vertebral_compression_fracture: Outcome | None = None
    local_failure: Outcome | None = None


class Case(_Model):
    schema_: Literal["reirrad/case/v1"] = Field(alias="schema")
    case_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    patient: Patient | None = None
    lesion: Lesion
    prior_courses: list[PriorCourse]
    planned_course: PlannedCourse | None = None
    """None before any plan exists: the planned start is then the evaluation's date."""

    @property
    def has_planned_dose(self) -> bool:
        """Whether a plan exists with a dose to some structure (else the case is evaluated before planning)."""
        return self.planned_course is not None and self.planned_course.has_dose

    def planned_start(self, as_of: date) -> date:
        """The planned course's start, or ``as_of`` when there is no planned course yet."""
        return self.planned_course.start if self.planned_course is not None else as_of  # type: ignore[return-value]

    outcomes: Outcomes | None = None

    @property
    def most_recent_prior(self) -> PriorCourse | None:
        return max(self.prior_courses, key=lambda c: c.end, default=None)


_Path = tuple[str | int, ...]
_Add = Any  # the ``add(path, message, accepted, code)`` of _semantic_problems


def _g(value: float) -> str:
    """A figure as a reader wrote it: 24, 0.3, 2400 (never 1e-05 or 2.4e+03)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _prescription_problem(base: _Path, course: Course, add: _Add) -> None:
    """The first implausible reading of the prescription, with the error it suggests (one per course)."""
    where = (*base, "prescription", "dose")
    unit, n = course.unit, course.fractions
    dose = float(course.prescription.dose)
    total = course.prescription_gy
    per = total / n
    written = f"{_g(dose)} {unit} in {n} fraction(s)"
    if per > MAX_GY_PER_FRACTION:
        if unit == "Gy":
            add(
                where,
                f"{written} is {_g(per)} Gy per fraction, implausible in Gy (the dose looks like cGy; read as "
                f"cGy it is {_g(per / 100)} Gy per fraction)",
                f"at most {MAX_GY_PER_FRACTION:g} Gy per fraction; for doses in cGy write unit: cGy",
                "unit.cgy-as-gy",
            )
        else:
            add(
                where,
                f"{written} is {_g(per)} Gy per fraction, above any schedule (is the number of fractions wrong?)",
                f"at most {MAX_GY_PER_FRACTION * 100:g} cGy ({MAX_GY_PER_FRACTION:g} Gy) per fraction",
                "dose.per-fraction-high",
            )
    elif per < MIN_GY_PER_FRACTION:
        if unit == "cGy":
            add(
                where,
                f"looks like Gy written as cGy: {_g(per * 100)} cGy per fraction ({written}, {_g(per)} Gy per "
                f"fraction) is below any schedule; in Gy it would be {_g(per * 100)} Gy per fraction",
                f"at least {MIN_GY_PER_FRACTION * 100:g} cGy ({MIN_GY_PER_FRACTION:g} Gy) per fraction; for "
                "doses in Gy write unit: Gy (or leave unit out)",
                "unit.gy-as-cgy",
            )
        else:
            add(
                where,
                f"{written} is {_g(per)} Gy per fraction, below any schedule (are the total dose and the number "
                "of fractions right?)",
                f"at least {MIN_GY_PER_FRACTION:g} Gy per fraction (the total dose over the course, then the "
                "number of fractions)",
                "dose.per-fraction-low",
            )
    elif total > MAX_COURSE_GY:
        reading = (
            f"the dose looks like cGy written as Gy: {_g(total / 100)} Gy"
            if unit == "Gy" and total / 100 / n >= MIN_GY_PER_FRACTION
            else "is it a cumulative dose of several courses, or in another unit?"
        )
        add(
            where,
            f"{written} is {_g(total)} Gy in one course, above any single course ({reading})",
            f"at most {MAX_COURSE_GY:g} Gy per course (one entry per course; for doses in cGy write unit: cGy)",
            "dose.course-high",
        )
    elif course.is_stereotactic and n > MAX_STEREOTACTIC_FRACTIONS:
        add(
            (*base, "prescription", "fractions"),
            f"{course.technique} in {n} fractions: stereotactic spine schedules use 1 to 5 fractions, and more "
            f"than {MAX_STEREOTACTIC_FRACTIONS} is no stereotactic course (is the technique, or the number of "
            "fractions, wrong?)",
            f"at most {MAX_STEREOTACTIC_FRACTIONS} fractions for SBRT or SRS; a conventional technique "
            "(3DCRT, IMRT, VMAT, 2D) for longer courses",
            "fractions.stereotactic",
        )
    elif course.is_stereotactic and per < MIN_STEREOTACTIC_GY_PER_FRACTION:
        add(
            where,
            f"{course.technique} at {_g(per)} Gy per fraction ({written}) is below any stereotactic schedule "
            "(is the technique, or the dose, wrong?)",
            f"at least {MIN_STEREOTACTIC_GY_PER_FRACTION:g} Gy per fraction for SBRT or SRS",
            "dose.stereotactic-low",
        )


def _organ_problems(base: _Path, course: Course, add: _Add) -> None:
    if not course.prescription_gy > 0:
        return  # a prescription that rounds to 0 Gy is refused by _prescription_problem; no ratio to it here
    n = course.fractions
    ceiling = MAX_ORGAN_TO_PRESCRIPTION * course.prescription_gy
    given: list[tuple[_Path, str, float]] = [
        ((*base, "structures", name, metric), f"{name} {metric}", value * course.scale)
        for name, metrics in (course.structures or {}).items()
        for metric, value in metrics.items()
    ]
    if isinstance(course, PlannedCourse) and course.ptv_high_dmin is not None:
        given.append(((*base, "ptv_high_dmin"), "ptv_high_dmin", float(course.ptv_high_dmin) * course.scale))
    for path, label, gy in given:
        shown = f"{_g(gy / course.scale)} {course.unit}"
        if gy / n > MAX_GY_PER_FRACTION:
            add(
                path,
                f"{shown} over {n} fraction(s) is {_g(gy / n)} Gy per fraction, implausible in Gy (the dose looks "
                "like cGy)"
                if course.unit == "Gy"
                else f"{shown} over {n} fraction(s) is {_g(gy / n)} Gy per fraction, above any schedule",
                f"at most {MAX_GY_PER_FRACTION:g} Gy per fraction; for doses in cGy write unit: cGy",
                "unit.cgy-as-gy" if course.unit == "Gy" else "dose.per-fraction-high",
            )
        elif gy > ceiling:
            add(
                path,
                f"{label} {shown} is {gy / course.prescription_gy:.1f} times the prescription "
                f"({_g(float(course.prescription.dose))} {course.unit}): is it in another unit, or a cumulative "
                "dose?",
                f"at most {MAX_ORGAN_TO_PRESCRIPTION:g} times the course's prescribed dose, in the course's unit",
                "dose.organ-above-prescription",
            )


def _date_problems(case: Case, as_of: date, add: _Add) -> None:
    for i, prior in enumerate(case.prior_courses):
        if prior.end < prior.start:
            add(
                ("prior_courses", i, "end"),
                f"the course ends ({prior.end}) before it starts ({prior.start})",
                "end on or after start",
                "dates.order",
            )
        planned_course: PlannedCourse | None = case.planned_course  # optional once plans may come later
        if planned_course is not None and planned_course.start < prior.end:
            add(
                ("planned_course", "start"),
                f"the planned course starts ({planned_course.start}) before prior course {i + 1} ends "
                f"({prior.end})",
                "a planned start on or after the end of every prior course",
                "dates.order",
            )
        for key in ("start", "end"):
            when: date = getattr(prior, key)
            if when > as_of:
                add(
                    ("prior_courses", i, key),
                    f"prior course {i + 1} {'starts' if key == 'start' else 'ends'} on {when}, after the date "
                    f"of evaluation ({as_of}): a course that has not happened is not a prior course",
                    "a date on or before the as-of date (--as-of, default today)",
                    "dates.future",
                )
    courses: list[tuple[_Path, Course]] = [
        (("prior_courses", i), c) for i, c in enumerate(case.prior_courses)
    ]
    if case.planned_course is not None:
        courses.append((("planned_course",), case.planned_course))
    for base, course in courses:
        for key in ("start", "end"):
            given: date | None = getattr(course, key, None)
            if given is not None and given < EARLIEST_DATE:
                add(
                    (*base, key),
                    f"{given} is before any radiotherapy record (a typing error in the year?)",
                    f"a date from {EARLIEST_DATE} on",
                    "dates.early",
                )
    planned: date | None = case.planned_course.start if case.planned_course is not None else None  # type: ignore[assignment]
    if planned is not None and planned > as_of + timedelta(days=MAX_PLANNED_AHEAD_DAYS):
        add(
            ("planned_course", "start"),
            f"the planned course starts on {planned}, more than {MAX_PLANNED_AHEAD_DAYS} days after the date "
            f"of evaluation ({as_of}); a later start would lengthen the interval the policies credit",
            f"a start at most {MAX_PLANNED_AHEAD_DAYS} days after the as-of date (--as-of, default today)",
            "dates.planned-far",
        )


_BIRTH_DATE = re.compile(
    r"(?<![0-9])(?:(?:19|20)[0-9]{2}[-._/ ]?(?:0[1-9]|1[0-2])[-._/ ]?(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])[-._/ ](?:0?[1-9]|1[0-2])[-._/ ](?:19|20)?[0-9]{2}"
    r"|(?:0[1-9]|[12][0-9]|3[01])(?:0[1-9]|1[0-2])(?:19|20)[0-9]{2}"
    r"|(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])(?:19|20)[0-9]{2})(?![0-9])"
)
"""A date written as a birth date would be: 1948-03-02, 19480302, 02.03.1948, 2/3/48, 02031948, 03021948."""
_RECORD_NUMBER_IN_ID = re.compile(r"(?<![0-9])[0-9]{8,}(?![0-9])")
_RECORD_NUMBER_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{6,}(?![0-9])")
_IDENTIFYING_WORDS = re.compile(
    r"(?<![a-z])(?:mrn|pid|patid|patient[ _-]?id|record|nhs|ssn|dob|born|birth|geb|name|mr|mrs|ms|miss|herr|frau)"
    r"(?![a-z])",
    re.IGNORECASE,
)
_TITLE_WORD = re.compile(r"[A-Z][a-z]+")


def identifying_pattern(text: str, *, case_id: bool) -> str:
    """What in ``text`` looks like identifying data ("a date like a birth date", …), or "" when nothing does.

    A heuristic safety net, not a guarantee: record numbers of 8 digits or more in a case id (6 in free text),
    dates written as birth dates are, words that introduce identity (MRN, DOB, name, Mr, Frau, …) and, in a case
    id, two or more capitalised words (a name such as Jane_Doe or JaneDoe)."""
    if _BIRTH_DATE.search(text):
        return "a date written like a birth date"
    if (_RECORD_NUMBER_IN_ID if case_id else _RECORD_NUMBER_IN_TEXT).search(text):
        return "a long number like a record number"
    if _IDENTIFYING_WORDS.search(text):
        return "a word that introduces identifying data (such as MRN, DOB, name or a title)"
    if case_id and len(_TITLE_WORD.findall(re.sub(r"[A-Z]{2,}", " ", text))) >= 2:
        return "capitalised words like a person's name"
    return ""


def _identifier_problems(case: Case, add: _Add) -> None:
    """A case id or histology that looks like identifying data; the value itself is never repeated."""
    found = identifying_pattern(case.case_id, case_id=True)
    if found:
        add(
            ("case_id",),
            f"the case id looks like it holds identifying data ({found}); its value is not repeated here",
            "a pseudonymous id such as 'rcc-t8-017': no names, record numbers or birth dates",
            "privacy.identifier",
        )
    histology = case.patient.histology if case.patient is not None else None
    found = identifying_pattern(histology, case_id=False) if histology else ""
    if found:
        add(
            ("patient", "histology"),
            f"the histology looks like it holds identifying data ({found}); its value is not repeated here",
            "the tumour type only, such as 'renal cell carcinoma': no names, record numbers or dates",
            "privacy.identifier",
        )


def _semantic_problems(case: Case, lines: LineMap, file: str, as_of: date | None = None) -> list[Problem]:
    """Checks across fields that a JSON Schema cannot express. Each names the field and what is accepted."""
    problems: list[Problem] = []

    def add(path: _Path, message: str, accepted: str, code: str) -> None:
        line = None
        p = path
        while line is None:
            line = lines.get(p)
            if not p:
                break
            p = p[:-1]
        problems.append(Problem(file, path, message, accepted, line, code=code))

    _identifier_problems(case, add)
    lesion = case.lesion
    if (
        lesion.sins is not None
        and lesion.sins_components is not None
        and lesion.sins != lesion.sins_components.total
    ):
        add(
            ("lesion", "sins"),
            f"SINS {lesion.sins} differs from the sum of its components ({lesion.sins_components.total})",
            "the total of the six components, or only one of the two",
            "sins.total",
        )
    if case.planned_course is None and not case.prior_courses:
        add(
            ("planned_course",),
            "no planned course and no prior course: there is nothing to evaluate",
            "a planned course, or at least one prior course (before planning, the question is what the earlier "
            "courses leave for a new one)",
            "case.empty",
        )
    courses: list[tuple[_Path, Course]] = [
        (("prior_courses", i), c) for i, c in enumerate(case.prior_courses)
    ]
    if case.planned_course is not None:
        courses.append((("planned_course",), case.planned_course))
    for base, course in courses:
        _prescription_problem(base, course, add)
        _organ_problems(base, course, add)
        for name, metrics in (course.structures or {}).items():
            for (m_hi, v_hi), (m_lo, v_lo) in itertools.pairwise(metrics.items()):
                if v_hi < v_lo:
                    add(
                        (*base, "structures", name, m_hi),
                        f"{m_hi} ({v_hi:g}) is below {m_lo} ({v_lo:g}); a hotter sub-volume cannot get less dose",
                        "Dmax ≥ D0.03cc ≥ D0.1cc ≥ D1cc",
                        "dvh.order",
                    )
    _date_problems(case, as_of or date.today(), add)
    for event in ("myelopathy", "vertebral_compression_fracture", "local_failure"):
        outcome = getattr(case.outcomes, event, None)
        if outcome is None or outcome.date is None:
            continue
        if not outcome.occurred:
            add(
                ("outcomes", event, "date"),
                "a date is given for an event that did not occur",
                "a date only with occurred: true",
                "outcomes.date",
            )
        elif case.planned_course is not None and outcome.date < case.planned_course.start:
            add(
                ("outcomes", event, "date"),
                f"the event ({outcome.date}) is dated before the planned course starts ({case.planned_course.start})",
                "an outcome of the planned course: on or after its start",
                "dates.order",
            )
    return problems


def _pydantic_problems(exc: ValidationError, lines: LineMap, file: str) -> list[Problem]:
    out = []
    for err in exc.errors():
        # drop pydantic's own steps (union members "int"/"float", "function-after[...]"): never field names
        path = tuple(
            p
            for p in err["loc"]
            if not (isinstance(p, str) and ("[" in p or p in ("function-after", "int", "float")))
        )
        out.append(
            Problem(
                file, path, err["msg"], "see schemas/case.schema.json", line=lines.get(path), code="model"
            )
        )
    return out


def case_problems(
    data: Any, lines: LineMap, file: str, as_of: date | None = None
) -> tuple[Case | None, list[Problem]]:
    """Validate a parsed document: schema first (all problems at once), then the model, then semantics.

    ``as_of`` is the date of evaluation (default today): no prior course may be dated after it."""
    try:
        check_depth(data, file)  # data from JSON or Python callers: YAML files are limited by their loader
    except InputError as exc:
        line = lines.get(())  # the document's line (an audit's row), where the caller knows it
        return None, [replace(p, line=p.line if p.line is not None else line) for p in exc.problems]
    problems = schema_problems(data, CASE_SCHEMA, lines, file, suggest=_suggest, redact=REDACTED_PATHS)
    if problems:
        return None, problems
    try:
        case = Case.model_validate(data)
    except ValidationError as exc:
        return None, _pydantic_problems(exc, lines, file)
    problems = _semantic_problems(case, lines, file, as_of)
    return (None, problems) if problems else (case, [])


def case_problems_fast(
    data: Any, lines: LineMap, file: str, as_of: date | None = None
) -> tuple[Case | None, list[Problem]]:
    """``case_problems`` with a fast path for bulk work (audits): the model first, and the JSON Schema, which gives
    the messages, only when the model or the semantic checks refuse. The verdicts and messages are those of
    ``case_problems``: the model is the schema's tested twin (tests/test_case_schema_parity.py)."""
    if isinstance(data, dict):
        try:
            case = Case.model_validate(data)
        except ValidationError:
            pass
        else:
            if not _semantic_problems(case, lines, file, as_of):
                return case, []
    return case_problems(data, lines, file, as_of)


def parse_case(text: str, file: str = "<case>", as_of: date | None = None) -> Case:
    data, lines = load_yaml_text(text, file)
    case, problems = case_problems_fast(data, lines, file, as_of)
    if problems or case is None:
        raise InputError.of(problems)
    return case


def load_case(path: Path | str, as_of: date | None = None) -> Case:
    """Load, validate and check one case file; raise InputError listing every problem.

    ``as_of`` is the date of evaluation (default today): no prior course may be dated after it."""
    path = Path(path)
    data, lines = load_yaml_file(path)
    case, problems = case_problems_fast(data, lines, str(path), as_of)  # the schema's messages on refusal
    if problems or case is None:
        raise InputError.of(problems)
    return case
