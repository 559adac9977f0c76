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
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from reirrad.errors import InputError, Problem
from reirrad.importers.common import (
    CourseOptions,
    ImportRefused,
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


@dataclass(frozen=True)
class VolumeDose:
    """One dose-to-volume extension: the volume's label, its total dose (Gy), fractions, uniform flag."""

    label: str
    gy: float
    fractions: int | None
    uniform: bool | None


def _volume_doses(resource: Any, planned: bool, file: str, where: tuple[str | int, ...]) -> list[VolumeDose]:
    """Each dose-to-volume extension of a resource (delivered, or planned with ``planned``)."""
    names = (
        ("codexrt-radiotherapy-dose-planned-to-volume", "mcode-radiotherapy-dose-planned-to-volume")
        if planned
        else ("mcode-radiotherapy-dose-delivered-to-volume",)
    )
    out = []
    for i, ext in enumerate(_ext(resource, *names)):
        label, dose, fractions, uniform = "", None, None, None
        for sub in ext.extension or []:
            if sub.url == "volume" and sub.valueReference is not None:
                label = sub.valueReference.display or sub.valueReference.reference or ""
            elif sub.url in ("totalDoseDelivered", "totalDose") and sub.valueQuantity is not None:
                dose = _gy(sub.valueQuantity, file, (*where, "dose-to-volume", i))
            elif sub.url in ("fractionsDelivered", "fractions"):
                fractions = sub.valueUnsignedInt if sub.valueUnsignedInt is not None else sub.valuePositiveInt
            elif sub.url == "uniformFractionation" and sub.valueBoolean is not None:
                uniform = bool(sub.valueBoolean)
        if dose is not None:
            out.append(VolumeDose(label or f"volume {i + 1}", dose, fractions, uniform))
    return out


@dataclass(frozen=True)
class CodedTechnique:
    """One modality-and-technique pair of the bundle, and the case format's technique for it (if any)."""

    technique: str | None
    description: str


def _techniques(resource: Any) -> list[CodedTechnique]:
    """Every modality-and-technique pair coded on the resource, in order."""
    out = []
    for ext in _ext(resource, "mcode-radiotherapy-modality-and-technique"):
        modality = ""
        for sub in _ext(ext, "mcode-radiotherapy-modality", "modality"):
            concept = sub.valueCodeableConcept
            codings = (concept.coding if concept else None) or []
            modality = (concept.text if concept and concept.text else "") or next(
                (c.display for c in codings if c.display), ""
            )
        for sub in _ext(ext, "mcode-radiotherapy-technique", "technique"):
            concept = sub.valueCodeableConcept
            codings = (concept.coding if concept else None) or []
            known = next((c for c in codings if c.code in TECHNIQUE_CODES), None)
            via = f" with {_short(modality)}" if modality else ""
            if known is not None:
                out.append(CodedTechnique(TECHNIQUE_CODES[known.code], f"SNOMED {known.code}{via}"))
            else:
                coding = codings[0] if codings else None
                code = f"{coding.system or ''}#{coding.code}" if coding else "(no code)"
                display = (coding.display if coding else None) or (concept.text if concept else None)
                out.append(CodedTechnique(None, f"technique code {code} ({display or 'no display'}){via}"))
    return out


def _short(modality: str) -> str:
    """'External beam radiation therapy using photons (procedure)' → 'photons'."""
    text = modality.removesuffix(" (procedure)")
    for marker in ("using ", "Teleradiotherapy using "):
        if marker in text:
            return text.split(marker, 1)[1]
    return text


def _identity(resource: Any) -> tuple[str, ...]:
    """What makes two resources versions of one thing: their identifiers (system|value), else their id."""
    keys = sorted(f"{i.system or ''}|{i.value}" for i in (resource.identifier or []) if i.value)
    return tuple(keys) if keys else (f"id|{resource.id}",)


def _versions(
    resources: list[Any], what: str, file: str, problems: list[Problem], notes: list[str]
) -> list[Any]:
    """One resource per identity: a course summary or phase is updated as treatment goes on, and a bundle may
    hold in-progress snapshots beside the final version (same identifiers). The completed version is kept; with
    none completed, the latest (most fractions) is kept and said; two completed versions that differ are refused.
    """
    groups: dict[tuple[str, ...], list[Any]] = {}
    for r in resources:
        groups.setdefault(_identity(r), []).append(r)
    kept = []
    for versions in groups.values():
        if len(versions) == 1:
            kept.append(versions[0])
            continue
        done = [v for v in versions if v.status == "completed"]
        names = listing([v.id or "(no id)" for v in versions])
        if len(done) > 1 and len({json.dumps(_content(v), sort_keys=True, default=str) for v in done}) > 1:
            problems.append(
                Problem(
                    file,
                    ("entry",),
                    f"{len(done)} completed versions of one {what} (same identifiers) differ: {names}",
                    accepted=f"one version of each {what} (or their history with one completed version)",
                    code="fhir.versions",
                )
            )
            continue
        chosen = done[0] if done else max(versions, key=_fractions_so_far)
        kept.append(chosen)
        notes.append(
            f"The bundle holds {len(versions)} versions of {what} '{chosen.id}' ({names}, same identifiers): "
            f"'{chosen.id}' ({chosen.status}) is used, the others are earlier snapshots and are not added."
        )
    return kept


def _content(resource: Any) -> Any:
    data = resource.model_dump(mode="json", exclude_none=True)
    for key in ("id", "meta", "text"):
        data.pop(key, None)
    return data


def _fractions_so_far(resource: Any) -> int:
    counts = [v.fractions or 0 for v in _volume_doses(resource, False, "", ())]
    sessions = [e.valueUnsignedInt or 0 for e in _ext(resource, *_FRACTION_EXTENSIONS)]
    return max([0, *counts, *sessions])


_FRACTION_EXTENSIONS = ("codexrt-radiotherapy-fractions-delivered", "mcode-radiotherapy-sessions")


def _non_uniform(file: str, where: tuple[str | int, ...], label: str, detail: str) -> Problem:
    """The one refusal for a course in phases of different dose per fraction, whichever way it is read."""
    return Problem(
        file,
        (*where, "phases"),
        f"the course treated '{label}' in phases of different dose per fraction ({detail}): a course of the "
        "case format has one prescription, and one total over an average dose per fraction would be "
        "converted wrongly",
        accepted="a course with one dose per fraction (the case format has no per-phase fractionation; "
        "see docs/importing.md)",
        code="fhir.phases",
    )


def _phase_detail(parts: list[tuple[str, VolumeDose]]) -> str:
    return ", ".join(
        f"'{pid}' {v.gy:g} Gy / {v.fractions} fx = {v.gy / v.fractions:.3g} Gy per fraction"
        for pid, v in parts
        if v.fractions
    )


MAX_JSON_DEPTH = 64
"""A bundle nested deeper is refused (real mCODE bundles nest about 12 levels)."""
MAX_BUNDLE_BYTES = 100_000_000
_REFUSED_COURSE_STATUS = {
    "entered-in-error": "the record was entered in error",
    "not-done": "the course was not done",
    "preparation": "the course has not started",
}
_UNFINISHED_STATUS = ("in-progress", "on-hold")
_REFUSED_PLAN_STATUS = {
    "revoked": "the planned course was revoked",
    "entered-in-error": "the record was entered in error",
}


def _depth(data: Any) -> int:
    """The nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _unknown_types(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Resources of a type FHIR R4 does not have (fhir.resources would fail with a KeyError on them)."""
    from fhir.resources.R4B import get_fhir_model_class

    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, entry in enumerate(data.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        found: list[tuple[tuple[str | int, ...], dict[str, Any]]] = (
            [(("entry", i, "resource"), resource)] if isinstance(resource, dict) else []
        )
        if isinstance(resource, dict):
            found += [
                (("entry", i, "resource", "contained", j), c)
                for j, c in enumerate(resource.get("contained") or [])
                if isinstance(c, dict)
            ]
        for where, r in found:
            kind = r.get("resourceType")
            try:
                get_fhir_model_class(str(kind))
            except (ValueError, KeyError):
                out.append((where, str(kind)))
    return out


def _load_bundle(path: str) -> list[Any]:
    """The bundle's resources, validated by fhir.resources; every way JSON or FHIR can fail is a Problem."""
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    raw = read_bytes(path, MAX_BUNDLE_BYTES)
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError.of(
            [Problem(path, (), f"not JSON ({exc})", accepted="a FHIR Bundle in JSON", code="fhir.json")]
        ) from None
    except RecursionError:
        data = None
    if data is None or _depth(data) > MAX_JSON_DEPTH:
        raise InputError.of(
            [
                Problem(
                    path,
                    (),
                    f"JSON nested more than {MAX_JSON_DEPTH} levels deep",
                    accepted="a FHIR Bundle (mCODE bundles nest about 12 levels)",
                    code="fhir.depth",
                )
            ]
        )
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
    unknown = _unknown_types(data)
    if unknown:
        raise InputError.of(
            [
                Problem(
                    path,
                    (*where, "resourceType"),
                    f"'{kind}' is not a FHIR R4 resource type",
                    accepted="FHIR R4 resources (Procedure, ServiceRequest, Patient, BodyStructure, …)",
                    code="fhir.type",
                )
                for where, kind in unknown
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
    return [e.resource for e in (bundle.entry or []) if e.resource is not None]


def import_fhir(
    path: str, options: CourseOptions | None = None, course_id: str | None = None, volume: str | None = None
) -> ImportResult:
    """Read one radiotherapy course from a FHIR bundle; problems are raised as an ImportRefused, with the
    warnings gathered before it."""
    warnings: list[str] = []
    try:
        return _import_fhir(path, options or CourseOptions(), course_id, volume, warnings)
    except InputError as exc:
        raise ImportRefused.gathered(exc.problems, warnings) from None


def _import_fhir(
    path: str, options: CourseOptions, course_id: str | None, volume: str | None, warnings: list[str]
) -> ImportResult:
    require("fhir.resources", "fhir")
    resources = _load_bundle(path)
    kind = (
        "RadiotherapyPlannedCourse (ServiceRequest)"
        if options.planned
        else "RadiotherapyCourseSummary (Procedure)"
    )
    notes: list[str] = []
    problems: list[Problem] = []
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
    courses = _versions(courses, "course", path, problems, notes)
    if problems:
        raise InputError.of(problems)
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
    notes.insert(0, f"FHIR {kind} '{course.id or '(no id)'}'.")

    status = str(course.status or "")
    refused = (_REFUSED_PLAN_STATUS if options.planned else _REFUSED_COURSE_STATUS).get(status)
    unfinished = not options.planned and status in _UNFINISHED_STATUS
    if refused:
        problems.append(
            Problem(
                path,
                (*where, "status"),
                f"status '{status}': {refused}",
                accepted="a completed course" if not options.planned else "an active or draft planned course",
                code="fhir.status",
            )
        )
    elif unfinished and options.end is None:
        problems.append(
            Problem(
                path,
                (*where, "status"),
                f"status '{status}': the course is not finished, and its doses are those delivered so far",
                accepted="the completed course summary; if the course ended early and its status was not "
                "updated, --end YYYY-MM-DD says when (the doses delivered so far are then the course's)",
                code="fhir.status",
            )
        )
    elif unfinished:
        warnings.append(
            f"{path}: the course's status is '{status}'; taken as ended on {options.end} as --end says, with "
            "the doses delivered up to this summary"
        )
    elif status == "stopped":
        warnings.append(
            f"{path}: the course was stopped early: its doses are those delivered before it stopped"
        )
    elif status not in ("completed", "active", "draft", ""):
        warnings.append(
            f"{path}: the course's status is '{status}': check that it is what you mean to import"
        )

    phases = []
    ref = f"{course.__resource_type__}/{course.id}" if course.id else None
    if not options.planned and ref:
        phases = [
            r
            for r in resources
            if r.__resource_type__ == "Procedure"
            and r is not course
            and any(p.reference == ref for p in (r.partOf or []))
        ]
        phases = _versions(phases, "phase", path, problems, notes)
    by_volume: dict[str, list[tuple[str, VolumeDose]]] = {}
    for phase in phases:
        fx = next((e.valueUnsignedInt for e in _ext(phase, *_FRACTION_EXTENSIONS)), None)
        for dose in _volume_doses(phase, False, path, where):
            by_volume.setdefault(dose.label, []).append(
                (phase.id or "(no id)", VolumeDose(dose.label, dose.gy, dose.fractions or fx, None))
            )

    doses = _volume_doses(course, options.planned, path, where)
    non_uniform: set[str] = set()
    for dose in doses:
        if dose.uniform is False:
            parts = by_volume.get(dose.label, [])
            detail = _phase_detail(parts) or "the course summary says its fractionation was not uniform"
            problems.append(_non_uniform(path, where, dose.label, detail))
            non_uniform.add(dose.label)
    if not doses and not options.planned:
        for label, parts in by_volume.items():
            if any(v.fractions is None for _, v in parts):
                continue
            per_fx = {round(v.gy / v.fractions, 4) for _, v in parts}  # type: ignore[operator]
            if len(per_fx) > 1:
                problems.append(_non_uniform(path, where, label, _phase_detail(parts)))
                non_uniform.add(label)
                continue
            doses.append(
                VolumeDose(
                    label,
                    sum(v.gy for _, v in parts),
                    sum(v.fractions for _, v in parts),  # type: ignore[misc]
                    True,
                )
            )
        if doses:
            notes.append(
                f"Doses summed over {len(phases)} treated phase(s) of equal dose per fraction "
                f"({_phase_detail([pv for parts in by_volume.values() for pv in parts])})."
            )
    if volume is not None:
        doses = [d for d in doses if d.label == volume]
        if not doses and volume not in non_uniform:
            problems.append(
                Problem(
                    path,
                    (*where, "volume"),
                    f"no dose to a volume named '{volume}'",
                    accepted="--volume with a name from the bundle",
                    code="fhir.volume",
                )
            )
    doses = [d for d in doses if d.label not in non_uniform]
    dose_gy = fractions = None
    if len({(round(d.gy, 4), d.fractions) for d in doses}) > 1:
        problems.append(
            Problem(
                path,
                (*where, "volume"),
                "the volumes received different doses: "
                + "; ".join(f"'{d.label}' {d.gy:g} Gy / {d.fractions} fx" for d in doses),
                accepted="--volume NAME (the lesion's volume)",
                code="fhir.volume",
            )
        )
    elif doses:
        dose_gy, fractions = doses[0].gy, doses[0].fractions
        notes.append(
            f"Prescription: dose {'planned' if options.planned else 'delivered'} to '{doses[0].label}'."
        )
    if fractions is None and not options.planned and not non_uniform:
        fractions = next((e.valueUnsignedInt for e in _ext(course, "mcode-radiotherapy-sessions")), None)

    technique, technique_source = _choose_technique(
        _techniques(course), options, path, where, problems, notes, warnings
    )
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
        end = _day(period.end) if period and not unfinished else None
        if end is None and options.end is None and not unfinished:
            problems.append(
                Problem(
                    path,
                    (*where, "performedPeriod", "end"),
                    f"the course has no end date (status '{status}')",
                    accepted="a completed course, or --end YYYY-MM-DD",
                    code="fhir.period",
                )
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
    missing_dose = bool(non_uniform) and dose_gy is None
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
        earlier=problems,
        skip_missing=(
            *(("prescription", "fractions") if missing_dose else ()),
            *(("end",) if unfinished or refused else ()),
        ),
    )
    warnings.append(
        f"{path}: FHIR gives target doses, not organ doses: the course has no cord (or thecal sac) "
        "doses. Add them from the plan (reirrad import dicom / dvh) before evaluating; none were guessed."
    )
    return ImportResult(result_course, notes, warnings)


def _choose_technique(
    coded: list[CodedTechnique],
    options: CourseOptions,
    file: str,
    where: tuple[str | int, ...],
    problems: list[Problem],
    notes: list[str],
    warnings: list[str],
) -> tuple[str | None, str]:
    """The course's technique from the bundle's modality/technique pairs and --technique.

    One pair: its technique (or --technique when the code has no counterpart). Several: --technique must name
    one of them. SBRT or SRS may replace a coded delivery technique (mCODE codes the delivery, not the intent).
    """
    mapped = list(dict.fromkeys(c.technique for c in coded if c.technique))
    described = "; ".join(f"{c.technique} ({c.description})" if c.technique else c.description for c in coded)
    unmapped = [c for c in coded if c.technique is None]
    wanted = options.technique
    if wanted is not None:
        if wanted in ("SBRT", "SRS") and mapped and wanted not in mapped:
            notes.append(f"Technique {wanted} as given; the bundle codes the delivery as {described}.")
            return None, ""
        if len(coded) > 1 and wanted in mapped:
            notes.append(f"Technique {wanted} as given, one of the bundle's: {described}.")
            return None, ""
        if mapped and wanted not in mapped:
            problems.append(
                Problem(
                    file,
                    (*where, "technique"),
                    f"--technique {wanted} is none of the techniques the bundle codes: {described}",
                    accepted="leave --technique out, or give one of them (SBRT or SRS may replace a coded "
                    "delivery technique)",
                    code="conflict",
                )
            )
        return None, ""
    if len(coded) == 1 and mapped:
        return mapped[0], coded[0].description
    if len(coded) > 1:
        problems.append(
            Problem(
                file,
                (*where, "technique"),
                f"the bundle codes {len(coded)} modality/technique pairs: {described}",
                accepted="--technique T, naming the one of the course (the case format has one technique)",
                code="fhir.technique",
            )
        )
        return None, ""
    for c in unmapped:
        warnings.append(f"{file}: {c.description} has no counterpart in the case format: give --technique")
    return None, ""
