"""The case format: structural models (twins of schemas/case.schema.json), loading and semantic checks."""

from __future__ import annotations

import difflib
import itertools
from datetime import date
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
from reirrad.load.validation import schema_problems
from reirrad.load.yamlio import LineMap, load_yaml_file, load_yaml_text

__all__ = [
    "CASE_SCHEMA",
    "MAX_GY_PER_FRACTION",
    "METRICS",
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

MAX_GY_PER_FRACTION = 30.0
"""A dose per fraction above this, in a course marked Gy, is taken for cGy typed as Gy and refused (DOMAIN.md)."""

STRUCTURE_NAMES = (
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
)
METRICS = ("Dmax", "D0.03cc", "D0.1cc", "D1cc")
LEVELS = tuple(
    [f"C{i}" for i in range(1, 8)]
    + [f"T{i}" for i in range(1, 13)]
    + [f"L{i}" for i in range(1, 6)]
    + [f"S{i}" for i in range(1, 6)]
)

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
    close = difflib.get_close_matches(key.replace(" ", ""), list(by_lower), n=1, cutoff=0.6)
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
Dose = Annotated[Number, Field(ge=0)]
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
    dose: Annotated[Number, Field(gt=0)]
    fractions: Annotated[Integer, Field(ge=1)]


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
        value = {"Dmax": self.Dmax, "D0.03cc": self.D0_03cc, "D0.1cc": self.D0_1cc, "D1cc": self.D1cc}[metric]
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
    histology: Annotated[str, StringConstraints(min_length=1)] | None = None
    ecog: Annotated[Integer, Field(ge=0, le=4)] | None = None
    expected_survival_months: Annotated[Number, Field(ge=0)] | None = None
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
        value = self.structures[structure].get(metric)  # type: ignore[index]
        return None if value is None else value * self.scale

    @property
    def is_stereotactic(self) -> bool:
        return self.technique in ("SBRT", "SRS")


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
    structures: Annotated[dict[StructureName, DoseMetrics], Field(min_length=1)]
    ptv_high_dmin: Dose | None = None


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
    planned_course: PlannedCourse
    outcomes: Outcomes | None = None

    @property
    def most_recent_prior(self) -> PriorCourse | None:
        return max(self.prior_courses, key=lambda c: c.end, default=None)  # type: ignore[arg-type,return-value]


def _semantic_problems(case: Case, lines: LineMap, file: str) -> list[Problem]:
    """Checks across fields that a JSON Schema cannot express. Each names the field and what is accepted."""
    problems: list[Problem] = []

    def add(path: tuple[str | int, ...], message: str, accepted: str, code: str) -> None:
        line = None
        p = path
        while line is None:
            line = lines.get(p)
            if not p:
                break
            p = p[:-1]
        problems.append(Problem(file, path, message, accepted, line, code=code))

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
    courses: list[tuple[tuple[str | int, ...], Course]] = [
        (("prior_courses", i), c) for i, c in enumerate(case.prior_courses)
    ]
    courses.append((("planned_course",), case.planned_course))
    for base, course in courses:
        n = course.fractions
        per_fraction = course.prescription_gy / n
        if course.unit == "Gy" and per_fraction > MAX_GY_PER_FRACTION:
            add(
                (*base, "prescription", "dose"),
                f"{course.prescription.dose} Gy in {n} fraction(s) is {per_fraction:g} Gy per fraction, "
                f"implausible in Gy (the dose looks like cGy)",
                f"at most {MAX_GY_PER_FRACTION:g} Gy per fraction; for doses in cGy write unit: cGy",
                "unit.cgy-as-gy",
            )
        for name, metrics in (course.structures or {}).items():
            for metric, value in metrics.items():
                if course.unit == "Gy" and value / n > MAX_GY_PER_FRACTION:
                    add(
                        (*base, "structures", name, metric),
                        f"{value:g} Gy over {n} fraction(s) is {value / n:g} Gy per fraction, implausible in Gy "
                        f"(the dose looks like cGy)",
                        f"at most {MAX_GY_PER_FRACTION:g} Gy per fraction; for doses in cGy write unit: cGy",
                        "unit.cgy-as-gy",
                    )
            given = metrics.items()
            for (m_hi, v_hi), (m_lo, v_lo) in itertools.pairwise(given):
                if v_hi < v_lo:
                    add(
                        (*base, "structures", name, m_hi),
                        f"{m_hi} ({v_hi:g}) is below {m_lo} ({v_lo:g}); a hotter sub-volume cannot get less dose",
                        "Dmax ≥ D0.03cc ≥ D0.1cc ≥ D1cc",
                        "dvh.order",
                    )
    for i, prior in enumerate(case.prior_courses):
        if prior.end < prior.start:  # type: ignore[operator]
            add(
                ("prior_courses", i, "end"),
                f"the course ends ({prior.end}) before it starts ({prior.start})",
                "end on or after start",
                "dates.order",
            )
        if case.planned_course.start < prior.end:  # type: ignore[operator]
            add(
                ("planned_course", "start"),
                f"the planned course starts ({case.planned_course.start}) before prior course {i + 1} ends "
                f"({prior.end})",
                "a planned start on or after the end of every prior course",
                "dates.order",
            )
    for name in ("myelopathy", "vertebral_compression_fracture", "local_failure"):
        outcome = getattr(case.outcomes, name, None)
        if outcome is None or outcome.date is None:
            continue
        if not outcome.occurred:
            add(
                ("outcomes", name, "date"),
                "a date is given for an event that did not occur",
                "a date only with occurred: true",
                "outcomes.date",
            )
        elif outcome.date < case.planned_course.start:  # type: ignore[operator]
            add(
                ("outcomes", name, "date"),
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


def case_problems(data: Any, lines: LineMap, file: str) -> tuple[Case | None, list[Problem]]:
    """Validate a parsed document: schema first (all problems at once), then the model, then semantics."""
    problems = schema_problems(data, CASE_SCHEMA, lines, file, suggest=_suggest)
    if problems:
        return None, problems
    try:
        case = Case.model_validate(data)
    except ValidationError as exc:
        return None, _pydantic_problems(exc, lines, file)
    problems = _semantic_problems(case, lines, file)
    return (None, problems) if problems else (case, [])


def case_problems_fast(data: Any, lines: LineMap, file: str) -> tuple[Case | None, list[Problem]]:
    """``case_problems`` with a fast path for bulk work (audits): the model first, and the JSON Schema, which gives
    the messages, only when the model or the semantic checks refuse. The verdicts and messages are those of
    ``case_problems``: the model is the schema's tested twin (tests/test_case_schema_parity.py)."""
    if isinstance(data, dict):
        try:
            case = Case.model_validate(data)
        except ValidationError:
            pass
        else:
            if not _semantic_problems(case, lines, file):
                return case, []
    return case_problems(data, lines, file)


def parse_case(text: str, file: str = "<case>") -> Case:
    data, lines = load_yaml_text(text, file)
    case, problems = case_problems(data, lines, file)
    if problems or case is None:
        raise InputError.of(problems)
    return case


def load_case(path: Path | str) -> Case:
    """Load, validate and check one case file; raise InputError listing every problem."""
    path = Path(path)
    data, lines = load_yaml_file(path)
    case, problems = case_problems(data, lines, str(path))
    if problems or case is None:
        raise InputError.of(problems)
    return case
