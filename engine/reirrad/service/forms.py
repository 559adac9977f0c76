"""The page's case form: its fields, the case it builds, and each refusal placed next to the field it names."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reirrad.errors import Problem, format_path
from reirrad.vocabulary import METRICS, STRUCTURE_NAMES

__all__ = [
    "COURSE_FIELDS",
    "LESION_FIELDS",
    "PATIENT_FIELDS",
    "PLANNED_FIELDS",
    "Field",
    "FormState",
    "case_to_form",
    "form_to_case",
]

YES_NO = ("yes", "no")


@dataclass(frozen=True)
class Field:
    """One input: its key under its section, the label a clinician reads, its kind and choices, a hint."""

    key: str
    label: str
    kind: str = "text"
    choices: tuple[str, ...] = ()
    hint: str = ""


PATIENT_FIELDS = (
    Field("age", "Age (years)", "int"),
    Field("sex", "Sex", "choice", ("female", "male", "other", "unknown")),
    Field("histology", "Tumour histology", "text", hint="as written in the pathology report"),
    Field("ecog", "ECOG performance status", "int", hint="0-4"),
    Field("kps", "Karnofsky performance status", "int", hint="0-100"),
    Field("expected_survival_months", "Expected survival (months)", "number"),
    Field("systemic_disease.status", "Disease elsewhere", "choice", ("none", "stable", "progressing")),
    Field("systemic_disease.brain_metastases", "Brain metastases", "bool"),
    Field("systemic_disease.further_systemic_options", "Further systemic therapy available", "bool"),
)
LESION_FIELDS = (
    Field("levels", "Spinal levels treated", "levels", hint="for example T1, or T11 T12"),
    Field("bilsky_grade", "Epidural compression (Bilsky grade)", "choice", ("0", "1a", "1b", "1c", "2", "3")),
    Field("sins", "Spinal instability score (SINS, 0-18)", "int"),
    Field("recurrence", "Where the tumour came back", "choice", ("in_field", "marginal", "out_of_field")),
    Field("extent", "Recurrence only here, or also elsewhere", "choice", ("local", "local_and_systemic")),
    Field("pathologic_fracture", "Fracture of the vertebra", "bool"),
    Field("neurologic_deficit", "Neurological deficit", "bool"),
    Field("cord_compression_symptoms", "Symptoms of cord or nerve root compression", "bool"),
    Field("prior_surgery", "Earlier spine surgery", "bool"),
    Field("hardware.present", "Spinal hardware in place", "bool"),
    Field("hardware.failure", "Hardware has failed", "bool"),
)
_TECHNIQUES = ("2D", "3DCRT", "IMRT", "VMAT", "SBRT", "SRS", "other")
COURSE_FIELDS = (
    Field("start", "First day", "date", hint="YYYY-MM-DD"),
    Field("end", "Last day", "date", hint="YYYY-MM-DD"),
    Field("technique", "Technique", "choice", _TECHNIQUES),
    Field("prescription.dose", "Prescribed dose", "number"),
    Field("prescription.fractions", "Fractions", "int"),
    Field("unit", "Dose unit", "choice", ("Gy", "cGy")),
    Field("dosimetry", "Old plan's dose data", "choice", ("available", "unavailable")),
    Field("tolerance", "How it was tolerated", "choice", ("well_tolerated", "poorly_tolerated")),
)
PLANNED_FIELDS = (
    Field("start", "Planned first day", "date", hint="YYYY-MM-DD"),
    Field("technique", "Technique", "choice", _TECHNIQUES),
    Field("prescription.dose", "Prescribed dose", "number"),
    Field("prescription.fractions", "Fractions", "int"),
    Field("unit", "Dose unit", "choice", ("Gy", "cGy")),
    Field("ptv_high_dmin", "Lowest dose to the high-dose target (PTV_High Dmin)", "number"),
)
DOSE_ROWS_PRIOR = 2
DOSE_ROWS_PLANNED = 3
PRIOR_ROWS = 1
STRUCTURES = STRUCTURE_NAMES
DOSE_METRICS = METRICS

_LEVEL_SPLIT = re.compile(r"[\s,;]+")


def _number(text: str) -> Any:
    """A number as typed; text that is not one is kept, so that the case schema refuses it in its own words."""
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    return int(value) if re.fullmatch(r"[+-]?[0-9]+", text) else value


def _convert(f: Field, text: str) -> Any:
    if f.kind in ("int", "number"):
        return _number(text)
    if f.kind == "bool":
        return {"yes": True, "no": False}.get(text, text)
    if f.kind == "levels":
        return [t.upper() for t in _LEVEL_SPLIT.split(text) if t]
    return text


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        target = target.setdefault(p, {})
    target[parts[-1]] = value


def _section(
    form: Mapping[str, str],
    prefix: str,
    fields: tuple[Field, ...],
    case_path: tuple[str | int, ...],
    where: dict[tuple[str | int, ...], str],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        name = f"{prefix}.{f.key}"
        text = (form.get(name) or "").strip()
        path = (*case_path, *f.key.split("."))
        where[path] = name
        if text:
            _put(out, f.key, _convert(f, text))
    return out


def _dose_rows(
    form: Mapping[str, str],
    prefix: str,
    case_path: tuple[str | int, ...],
    where: dict[tuple[str | int, ...], str],
) -> dict[str, Any]:
    structures: dict[str, Any] = {}
    i = 0
    while f"{prefix}.doses[{i}].structure" in form:
        row = f"{prefix}.doses[{i}]"
        name = (form.get(f"{row}.structure") or "").strip()
        metrics = {}
        for m in METRICS:
            text = (form.get(f"{row}.{m}") or "").strip()
            if text:
                metrics[m] = _number(text)
        i += 1
        if not name and not metrics:
            continue
        key = name or f"(row {i}: no structure chosen)"
        structures[key] = metrics
        where[(*case_path, "structures", key)] = f"{row}.structure"
        for m in METRICS:
            where[(*case_path, "structures", key, m)] = f"{row}.{m}"
    where[(*case_path, "structures")] = f"{prefix}.doses[0].structure"
    return structures


def form_to_case(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str | int, ...], str]]:
    """The case the form describes (empty inputs left out) and, for each case path, the input that holds it."""
    where: dict[tuple[str | int, ...], str] = {("case_id",): "case_id"}
    case: dict[str, Any] = {"schema": "reirrad/case/v1", "case_id": (form.get("case_id") or "").strip()}
    patient = _section(form, "patient", PATIENT_FIELDS, ("patient",), where)
    if patient:
        case["patient"] = patient
    case["lesion"] = _section(form, "lesion", LESION_FIELDS, ("lesion",), where)
    priors: list[dict[str, Any]] = []
    i = 0
    while f"prior_courses[{i}].start" in form:
        prefix = f"prior_courses[{i}]"
        n = len(priors)
        row_where: dict[tuple[str | int, ...], str] = {}
        course = _section(form, prefix, COURSE_FIELDS, ("prior_courses", n), row_where)
        structures = _dose_rows(form, prefix, ("prior_courses", n), row_where)
        i += 1
        if not course and not structures:
            continue
        if structures:
            course["structures"] = structures
        priors.append(course)
        where.update(row_where)
    case["prior_courses"] = priors
    planned = _section(form, "planned_course", PLANNED_FIELDS, ("planned_course",), where)
    planned["structures"] = _dose_rows(form, "planned_course", ("planned_course",), where)
    case["planned_course"] = planned
    where[("lesion",)] = "lesion.levels"
    where[("planned_course",)] = "planned_course.start"
    return case, where


def _flat(prefix: str, fields: tuple[Field, ...], data: Mapping[str, Any], out: dict[str, str]) -> None:
    for f in fields:
        value: Any = data
        for part in f.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, list):
            text = ", ".join(map(str, value))
        elif isinstance(value, float) and value.is_integer():
            text = f"{value:g}"
        else:
            text = str(value)
        out[f"{prefix}.{f.key}"] = text


def _flat_doses(prefix: str, structures: Mapping[str, Any], rows: int, out: dict[str, str]) -> int:
    i = 0
    for i, (name, metrics) in enumerate(structures.items()):
        out[f"{prefix}.doses[{i}].structure"] = name
        for m, v in metrics.items():
            out[f"{prefix}.doses[{i}].{m}"] = f"{v:g}" if isinstance(v, float | int) else str(v)
    return max(rows, len(structures) + 1)


def case_to_form(case: Mapping[str, Any]) -> FormState:
    """Form values for a case (an example, a pasted or imported case) so that the form shows it."""
    values: dict[str, str] = {"case_id": str(case.get("case_id", ""))}
    _flat("patient", PATIENT_FIELDS, case.get("patient") or {}, values)
    _flat("lesion", LESION_FIELDS, case.get("lesion") or {}, values)
    priors = list(case.get("prior_courses") or [])
    dose_rows: dict[str, int] = {}
    for i, course in enumerate(priors):
        _flat(f"prior_courses[{i}]", COURSE_FIELDS, course, values)
        dose_rows[f"prior_courses[{i}]"] = _flat_doses(
            f"prior_courses[{i}]", course.get("structures") or {}, DOSE_ROWS_PRIOR, values
        )
    planned = case.get("planned_course") or {}
    _flat("planned_course", PLANNED_FIELDS, planned, values)
    dose_rows["planned_course"] = _flat_doses(
        "planned_course", planned.get("structures") or {}, DOSE_ROWS_PLANNED, values
    )
    return FormState(values, max(PRIOR_ROWS, len(priors)), dose_rows)


@dataclass
class FormState:
    """What the form shows: values by input name, how many rows, and the problems placed at inputs."""

    values: dict[str, str] = field(default_factory=dict)
    prior_rows: int = PRIOR_ROWS
    dose_rows: dict[str, int] = field(default_factory=dict)
    errors: dict[str, list[Problem]] = field(default_factory=dict)
    unplaced: list[Problem] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> FormState:
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        prior_rows = 0
        while f"prior_courses[{prior_rows}].start" in values:
            prior_rows += 1
        dose_rows = {}
        for prefix in ["planned_course", *[f"prior_courses[{i}]" for i in range(prior_rows)]]:
            n = 0
            while f"{prefix}.doses[{n}].structure" in values:
                n += 1
            dose_rows[prefix] = max(n, 1)
        return cls(values, max(prior_rows, 1), dose_rows)

    def rows_for(self, prefix: str) -> int:
        default = DOSE_ROWS_PLANNED if prefix == "planned_course" else DOSE_ROWS_PRIOR
        return self.dose_rows.get(prefix, default)

    def place(self, problems: list[Problem], where: dict[tuple[str | int, ...], str]) -> None:
        """Put each problem at the input of its path, or of the nearest enclosing path that has one."""
        for problem in problems:
            path = problem.path
            while path and path not in where:
                path = path[:-1]
            name = where.get(path)
            if name is None:
                self.unplaced.append(problem)
            else:
                self.errors.setdefault(name, []).append(problem)

    @property
    def all_problems(self) -> list[Problem]:
        return [p for ps in self.errors.values() for p in ps] + self.unplaced

    def field_path(self, name: str) -> str:
        return name


def describe(problem: Problem) -> str:
    """The problem as the field's note: what is wrong and what is accepted (the path is the field itself)."""
    text = problem.message
    if problem.accepted:
        text += f" (accepted: {problem.accepted})"
    return text


def problem_path(problem: Problem) -> str:
    return format_path(problem.path)
