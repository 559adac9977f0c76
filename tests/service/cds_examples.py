"""CDS Hooks 2.0 request bodies for the re-irradiation service, translated from the published examples.

The order follows the shape of the CodeX example RadiotherapyPlannedCourse-04-Prostate (a ServiceRequest with the
modality-and-technique and dose-planned-to-volume extensions), the earlier course that of
RadiotherapyCourseSummary-04-Prostate (an mCODE/CodeX Procedure), both rewritten for the Lucido 2025 patient
(docs/examples/t1-chondrosarcoma.yaml): 30 Gy in 10 fractions (3D conformal) to T1 in January 2015, cord Dmax
32.8 Gy; a single-fraction 24 Gy SBRT planned for 2016-09-15 with a cord Dmax of 10 Gy and D0.03cc 9 Gy. The cord
doses, the level and the stereotactic intent travel in reirrad's own extensions (docs/service.md), since mCODE and
CodeX carry target doses only.
"""

from __future__ import annotations

import copy
from typing import Any

from reirrad.service.cds import EXT_LEVEL, EXT_ORGAN_DOSE, EXT_TECHNIQUE

MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
CODEX = "http://hl7.org/fhir/us/codex-radiation-therapy/StructureDefinition/"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


def _technique(code: str, display: str) -> dict[str, Any]:
    return {
        "url": MCODE + "mcode-radiotherapy-modality-and-technique",
        "extension": [
            {
                "url": MCODE + "mcode-radiotherapy-modality",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": SCT,
                            "code": "1156506007",
                            "display": "External beam radiation therapy using photons (procedure)",
                        }
                    ]
                },
            },
            {
                "url": MCODE + "mcode-radiotherapy-technique",
                "valueCodeableConcept": {"coding": [{"system": SCT, "code": code, "display": display}]},
            },
        ],
    }


def organ_dose(structure: str, metric: str, gy: float, unit: str = "Gy") -> dict[str, Any]:
    return {
        "url": EXT_ORGAN_DOSE,
        "extension": [
            {"url": "structure", "valueCode": structure},
            {"url": "metric", "valueCode": metric},
            {"url": "dose", "valueQuantity": {"value": gy, "unit": unit, "system": UCUM, "code": unit}},
        ],
    }


def level(code: str) -> dict[str, Any]:
    return {"url": EXT_LEVEL, "valueCode": code}


def planned_course(**changes: Any) -> dict[str, Any]:
    """A draft CodeX RadiotherapyPlannedCourse: 24 Gy in 1 fraction to T1, VMAT delivery, SBRT intent."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "planned-course-t1",
        "meta": {"profile": [CODEX + "codexrt-radiotherapy-planned-course"]},
        "extension": [
            _technique("1156530009", "Volumetric modulated arc therapy (procedure)"),
            {
                "url": CODEX + "codexrt-radiotherapy-dose-planned-to-volume",
                "extension": [
                    {
                        "url": "volume",
                        "valueReference": {"reference": "BodyStructure/ptv-t1", "display": "PTV_T1"},
                    },
                    {
                        "url": "totalDose",
                        "valueQuantity": {"value": 2400, "unit": "cGy", "system": UCUM, "code": "cGy"},
                    },
                    {"url": "fractions", "valuePositiveInt": 1},
                ],
            },
            {"url": EXT_TECHNIQUE, "valueCode": "SBRT"},
            level("T1"),
            organ_dose("SpinalCord", "Dmax", 10.0),
            organ_dose("SpinalCord", "D0.03cc", 9.0),
            organ_dose("SpinalCord", "D0.1cc", 8.8),
            organ_dose("SpinalCord", "D1cc", 7.5),
        ],
        "identifier": [{"system": "http://example.org/radiotherapy-course-id", "value": "T1-reSBRT"}],
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": [
                {
                    "system": SCT,
                    "code": "1217123003",
                    "display": "Radiotherapy course of treatment (regime/therapy)",
                }
            ]
        },
        "subject": {"reference": "Patient/pseudo-1"},
        "occurrencePeriod": {"start": "2016-09-15"},
        "authoredOn": "2016-09-01",
    }
    resource.update(changes)
    return resource


def course_summary(**changes: Any) -> dict[str, Any]:
    """A completed mCODE/CodeX RadiotherapyCourseSummary: 30 Gy in 10 fractions, 3D conformal, to T1."""
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": "course-2015-t1",
        "meta": {
            "profile": [
                CODEX + "codexrt-radiotherapy-course-summary",
                MCODE + "mcode-radiotherapy-course-summary",
            ]
        },
        "extension": [
            _technique("1162782007", "Three dimensional external beam radiation therapy (procedure)"),
            {"url": MCODE + "mcode-radiotherapy-sessions", "valueUnsignedInt": 10},
            {
                "url": MCODE + "mcode-radiotherapy-dose-delivered-to-volume",
                "extension": [
                    {
                        "url": "volume",
                        "valueReference": {"reference": "BodyStructure/vol-t1", "display": "T1 vertebra"},
                    },
                    {
                        "url": "totalDoseDelivered",
                        "valueQuantity": {"value": 3000, "unit": "cGy", "system": UCUM, "code": "cGy"},
                    },
                    {"url": "fractionsDelivered", "valueUnsignedInt": 10},
                ],
            },
            level("T1"),
            organ_dose("SpinalCord", "Dmax", 32.8),
        ],
        "status": "completed",
        "category": {"coding": [{"system": SCT, "code": "108290001"}]},
        "code": {"coding": [{"system": SCT, "code": "1217123003"}]},
        "subject": {"reference": "Patient/pseudo-1"},
        "performedPeriod": {"start": "2015-01-05", "end": "2015-01-16"},
    }
    resource.update(changes)
    return resource


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"http://ehr.example/fhir/Procedure/{r['id']}", "resource": r} for r in resources
        ],
    }


def hook_request(
    hook: str = "order-sign",
    order: dict[str, Any] | None = None,
    prefetch: dict[str, Any] | None = None,
    *,
    omit_prefetch: bool = False,
) -> dict[str, Any]:
    order = order if order is not None else planned_course()
    context: dict[str, Any] = {
        "userId": "PractitionerRole/123",
        "patientId": "pseudo-1",
        "encounterId": "89284",
        "draftOrders": {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": copy.deepcopy(order)}],
        },
    }
    if hook == "order-select":
        context["selections"] = [f"ServiceRequest/{order['id']}"]
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": context,
    }
    if not omit_prefetch:
        body["prefetch"] = (
            prefetch if prefetch is not None else {"radiotherapyCourses": searchset(course_summary())}
        )
    return body
