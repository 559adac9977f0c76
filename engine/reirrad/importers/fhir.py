"""FHIR R4 bundle with an mCODE / CodeX radiotherapy course → one course, without organ doses.

Parsed and validated with ``fhir.resources`` (R4B models, which match R4 for Bundle, Procedure and
ServiceRequest). A RadiotherapyCourseSummary (Procedure) gives dates (performedPeriod), technique
(modality-and-technique extension), re-irradiation flag, fractions and doses delivered to each treated
volume; when the summary has no dose-to-volume, its treated phases (Procedure.partOf the course) are
used. A RadiotherapyPlannedCourse (ServiceRequest) gives the planned doses to volumes. FHIR carries
target doses, not organ near-max doses: the course is emitted without structures and a warning says the
cord doses must be added.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from reirrad.errors import InputError, Problem
from reirrad.importers.common import (
    CourseOptions,
    ImportResult,
    assemble_course,
    listing,
    read_bytes,
    require,
)

__all__ = ["TECHNIQUE_CODES", "import_fhir"]

MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
CODEX = "http://hl7.org/fhir/us/codex-radiation-therapy/StructureDefinition/"
COURSE_CODE = "1217123003"  # SNOMED CT: Radiotherapy course of treatment (regime/therapy)
SUMMARY_PROFILES = ("mcode-radiotherapy-course-summary", "codexrt-radiotherapy-course-summary")
PLANNED_PROFILES = ("codexrt-radiotherapy-planned-course", "mcode-radiotherapy-planned-course")
TECHNIQUE_CODES = {
    "1156526006": "2D",  # Two dimensional external beam radiation therapy
    "1162782007": "3DCRT",  # Three dimensional external beam radiation therapy
    "441799006": "IMRT",  # Intensity modulated radiation therapy
    "1156530009": "VMAT",  # Volumetric modulated arc therapy
}
"""SNOMED CT technique codes of the mCODE technique value set that map one-to-one to the case format."""


def _ext(element: Any, *names: str) -> list[Any]:
    """Extensions of an element whose url is one of the given full urls or ends with one of the names."""
    return [
        e
        for e in (getattr(element, "extension", None) or [])
        if e.url in names or any(e.url.endswith("/" + n) or e.url == n for n in names)
    ]


def _gy(quantity: Any, file: str, where: tuple[str | int, ...]) -> float:
    unit = (quantity.code or quantity.unit or "").strip()
    value = float(quantity.value) if isinstance(quantity.value, Decimal | int | float) else None
    if value is None:
        raise InputError.of(
            [Problem(file, where, "a dose without a value", accepted="valueQuantity.value", code="fhir.dose")]
        )
    if unit == "cGy":
        return value / 100.0
    if unit == "Gy":
        return value
    raise InputError.of(
        [
            Problem(
                file,
                where,
                f"dose unit '{unit}' is not an absolute dose unit",
                accepted="UCUM cGy or Gy",
                code="fhir.unit",
            )
        ]
    )


def _day(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return None


def _profiles(resource: Any) -> list[str]:
    meta = getattr(resource, "meta", None)
    return [str(p) for p in (getattr(meta, "profile", None) or [])]


def _is_course(resource: Any, planned: bool) -> bool:
    kind = "ServiceRequest" if planned else "Procedure"
    if resource.__resource_type__ != kind:
        return False
    wanted = PLANNED_PROFILES if planned else SUMMARY_PROFILES
    if any(p.rsplit("/", 1)[-1] in wanted for p in _profiles(resource)):
        return True
    codes = [c.code for c in (getattr(getattr(resource, "code", None), "coding", None) or [])]
    return COURSE_CODE in codes


def _ids(resource: Any) -> list[str]:
    return [x for x in [resource.id, *[i.value for i in (resource.identifier or [])]] if x]


def _volume_doses(
    resource: Any, planned: bool, file: str, where: tuple[str | int, ...]
) -> list[tuple[str, float, int | None]]:
    """(volume label, total dose Gy, fractions) for each dose-to-volume extension."""
    names = (
        ("codexrt-radiotherapy-dose-planned-to-volume", "mcode-radiotherapy-dose-planned-to-volume")
        if planned
        else ("mcode-radiotherapy-dose-delivered-to-volume",)
    )
    out = []
    for i, ext in enumerate(_ext(resource, *names)):
        label, dose, fractions = "", None, None
        for sub in ext.extension or []:
            if sub.url == "volume" and sub.valueReference is not None:
                label = sub.valueReference.display or sub.valueReference.reference or ""
            elif sub.url in ("totalDoseDelivered", "totalDose") and sub.valueQuantity is not None:
                dose = _gy(sub.valueQuantity, file, (*where, "dose-to-volume", i))
            elif sub.url in ("fractionsDelivered", "fractions"):
                fractions = sub.valueUnsignedInt if sub.valueUnsignedInt is not None else sub.valuePositiveInt
        if dose is not None:
            out.append((label or f"volume {i + 1}", dose, fractions))
    return out


def _technique(resource: Any) -> tuple[str | None, str]:
    for ext in _ext(resource, "mcode-radiotherapy-modality-and-technique"):
        for sub in _ext(ext, "mcode-radiotherapy-technique", "technique"):
            concept = sub.valueCodeableConcept
            for coding in (concept.coding if concept else None) or []:
                if coding.code in TECHNIQUE_CODES:
                    return TECHNIQUE_CODES[coding.code], f"SNOMED {coding.code}"
                return (
                    None,
                    f"technique code {coding.system or ''}#{coding.code} ({coding.display or 'no display'})",
                )
    return None, ""


def import_fhir(
    path: str, options: CourseOptions | None = None, course_id: str | None = None, volume: str | None = None
) -> ImportResult:
    """Read one radiotherapy course from a FHIR bundle; problems are raised as an InputError."""
    options = options or CourseOptions()
    require("fhir.resources", "fhir")
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    raw = read_bytes(path)
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.of(
            [Problem(path, (), f"not JSON ({exc})", accepted="a FHIR Bundle in JSON", code="fhir.json")]
        ) from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        got = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        raise InputError.of(
            [
                Problem(
                    path,
                    ("resourceType",),
                    f"is {got!r}, not a Bundle",
                    accepted="resourceType: Bundle",
                    code="fhir.bundle",
                )
            ]
        )
    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        raise InputError.of(
            [
                Problem(
                    path, tuple(e["loc"]), e["msg"], accepted="a valid FHIR R4 resource", code="fhir.invalid"
                )
                for e in exc.errors()[:20]
            ]
        ) from None
    resources = [e.resource for e in (bundle.entry or []) if e.resource is not None]
    kind = (
        "RadiotherapyPlannedCourse (ServiceRequest)"
        if options.planned
        else "RadiotherapyCourseSummary (Procedure)"
    )
    courses = [r for r in resources if _is_course(r, options.planned)]
    if course_id is not None:
        courses = [c for c in courses if course_id in _ids(c)]
    if not courses:
        raise InputError.of(
            [
                Problem(
                    path,
                    ("entry",),
                    f"no {kind}" + (f" with id '{course_id}'" if course_id else ""),
                    accepted=f"a Bundle with an mCODE/CodeX {kind}",
                    code="fhir.course",
                )
            ]
        )
    if len(courses) > 1:
        raise InputError.of(
            [
                Problem(
                    path,
                    ("entry",),
                    f"{len(courses)} courses: {listing([(_ids(c) or ['(no id)'])[0] for c in courses])}",
                    accepted="--course-id ID",
                    code="fhir.course",
                )
            ]
        )
    course = courses[0]
    where: tuple[str | int, ...] = (course.__resource_type__, course.id or "")
    notes = [f"FHIR {kind} '{course.id or '(no id)'}'."]
    warnings: list[str] = []

    doses = _volume_doses(course, options.planned, path, where)
    if not doses and not options.planned:
        ref = f"{course.__resource_type__}/{course.id}" if course.id else None
        phases = [
            r
            for r in resources
            if r.__resource_type__ == "Procedure"
            and r is not course
            and ref
            and any(p.reference == ref for p in (r.partOf or []))
        ]
        by_volume: dict[str, list[tuple[float, int | None]]] = {}
        for phase in phases:
            fx = next(
                (e.valueUnsignedInt for e in _ext(phase, "codexrt-radiotherapy-fractions-delivered")), None
            )
            for label, dose, fractions in _volume_doses(phase, False, path, where):
                by_volume.setdefault(label, []).append((dose, fractions or fx))
        for label, parts in by_volume.items():
            if any(f is None for _, f in parts):
                continue
            per_fx = {round(d / f, 4) for d, f in parts}  # type: ignore[operator]
            if len(per_fx) > 1:
                raise InputError.of(
                    [
                        Problem(
                            path,
                            (*where, "phases"),
                            f"volume '{label}' was treated in phases of "
                            "different dose per fraction; one course of the case format has one",
                            accepted="enter the course by hand, or one course per fractionation",
                            code="fhir.phases",
                        )
                    ]
                )
            doses.append((label, sum(d for d, _ in parts), sum(f for _, f in parts)))  # type: ignore[misc]
        if doses:
            notes.append(f"Doses summed over {len(phases)} treated phase(s) of equal dose per fraction.")
    if volume is not None:
        doses = [d for d in doses if d[0] == volume]
        if not doses:
            raise InputError.of(
                [
                    Problem(
                        path,
                        (*where, "volume"),
                        f"no dose to a volume named '{volume}'",
                        accepted="--volume with a name from the bundle",
                        code="fhir.volume",
                    )
                ]
            )
    distinct = {(round(d, 4), f) for _, d, f in doses}
    dose_gy = fractions = None
    if len(distinct) > 1:
        raise InputError.of(
            [
                Problem(
                    path,
                    (*where, "volume"),
                    "the volumes received different doses: "
                    + "; ".join(f"'{label}' {d:g} Gy / {f} fx" for label, d, f in doses),
                    accepted="--volume NAME (the lesion's volume)",
                    code="fhir.volume",
                )
            ]
        )
    if doses:
        _, dose_gy, fractions = doses[0]
        notes.append(
            f"Prescription: dose {'planned' if options.planned else 'delivered'} to '{doses[0][0]}'."
        )
    if fractions is None and not options.planned:
        fractions = next((e.valueUnsignedInt for e in _ext(course, "mcode-radiotherapy-sessions")), None)
    technique, technique_source = _technique(course)
    if technique is not None and options.technique in ("SBRT", "SRS") and technique != options.technique:
        notes.append(f"Technique {options.technique} as given; the bundle codes the delivery as {technique}.")
        technique = None
    if technique is None and technique_source and options.technique is None:
        warnings.append(f"{path}: {technique_source} has no counterpart in the case format: give --technique")
    for ext in _ext(course, "codexrt-radiotherapy-course-involves-reirradiation"):
        if ext.valueBoolean:
            notes.append(
                "The bundle flags this course as a re-irradiation: its earlier course(s) belong in "
                "prior_courses too."
            )
    start = end = None
    if options.planned:
        period = getattr(course, "occurrencePeriod", None)
        start = _day(period.start) if period else _day(getattr(course, "occurrenceDateTime", None))
    else:
        period = course.performedPeriod
        start = _day(period.start) if period else None
        end = _day(period.end) if period else None
        if end is None and options.end is None:
            raise InputError.of(
                [
                    Problem(
                        path,
                        (*where, "performedPeriod", "end"),
                        f"the course has no end date (status '{course.status}')",
                        accepted="a completed course, or --end YYYY-MM-DD",
                        code="fhir.period",
                    )
                ]
            )
    if (
        technique is not None
        and dose_gy
        and fractions
        and options.technique is None
        and dose_gy / fractions >= 5
        and technique not in ("SBRT", "SRS")
    ):
        warnings.append(
            f"{path}: technique {technique} at {dose_gy / fractions:g} Gy per fraction: if the course was "
            "stereotactic, give --technique SBRT (mCODE codes the delivery, not the intent)"
        )
    result_course = assemble_course(
        path,
        options,
        structures_required=False,
        start=start,
        end=end,
        technique=technique,
        dose_gy=dose_gy,
        fractions=fractions,
        sources={
            "start": "performedPeriod.start",
            "end": "performedPeriod.end",
            "technique": technique_source,
            "prescription": "the dose to volume",
            "fractions": "the fractions delivered",
        },
    )
    warnings.append(
        f"{path}: FHIR gives target doses, not organ doses: the course has no cord (or thecal sac) "
        "doses. Add them from the plan (reirrad import dicom / dvh) before evaluating; none were guessed."
    )
    return ImportResult(result_course, notes, warnings)
