"""An evaluation as a FHIR R4 Bundle: a GuidanceResponse (the rule pack as its module) and a DetectedIssue per failed
criterion, with its evidence and the implicated planned course; built and validated with ``fhir.resources``.

``fhir.resources`` 8 is FHIR R5 by default; the R4B models are used, because R4B changed none of the resources
written here (Bundle, GuidanceResponse, DetectedIssue, Parameters, ServiceRequest) from R4, while R5 renamed
fields of both GuidanceResponse and DetectedIssue (see docs/service.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from reirrad.errors import InputError, Problem

__all__ = ["FHIR_VERSION", "RULE_SYSTEM", "result_to_fhir"]

FHIR_VERSION = "4.0.1"
RULE_SYSTEM = "https://reirrad.example/fhir/CodeSystem/rule"
"""Code system of reirrad's rule ids (a local system: the rule id is the code, the rule version the version)."""
CASE_SYSTEM = "https://reirrad.example/fhir/NamingSystem/case-id"
PACK_CANONICAL = "https://reirrad.example/fhir/Library/"
SNOMED = "http://snomed.info/sct"
COURSE_CODE = "1217123003"  # SNOMED CT: Radiotherapy course of treatment (regime/therapy)
_NS = uuid.UUID("9b4f8d5e-2f0c-4f8a-9a52-6f7d1c3b2a10")


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, '|'.join(parts))}"


def _require_models() -> Any:
    try:
        from fhir.resources.R4B import bundle
    except ImportError:
        raise InputError.of(
            [
                Problem(
                    "--format fhir",
                    (),
                    "needs the Python package 'fhir.resources', which is not installed",
                    accepted="pip install 'reirrad[import]'",
                    code="dependency",
                )
            ]
        ) from None
    return bundle


def _planned_course(result: dict[str, Any], case: dict[str, Any] | None, ref: str) -> dict[str, Any]:
    planned = (case or {}).get("planned_course") or {}
    rx = planned.get("prescription") or {}
    text = (
        f"{rx['dose']:g} {planned.get('unit', 'Gy')} in {rx['fractions']} fraction(s), {planned.get('technique')}"
        if rx
        else "planned course of the evaluated case"
    )
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "plan",
        "code": {
            "coding": [
                {
                    "system": SNOMED,
                    "code": COURSE_CODE,
                    "display": "Radiotherapy course of treatment (regime/therapy)",
                }
            ]
        },
        "subject": {
            "identifier": {"system": CASE_SYSTEM, "value": result["case_id"]},
            "display": f"pseudonymous case {result['case_id']}",
        },
        "note": [{"text": text}],
    }
    if planned.get("start"):
        resource["occurrencePeriod"] = {"start": planned["start"]}
    return resource


def _citation_text(line: dict[str, Any]) -> str:
    return "; ".join(f"{c['citation']}, {c['locator']}" for c in line["citations"])


def _doi_url(line: dict[str, Any]) -> str | None:
    return next((f"https://doi.org/{c['doi']}" for c in line["citations"] if c.get("doi")), None)


def _issue(
    line: dict[str, Any], severity: str, subject: dict[str, Any], implicated: dict[str, Any], when: str
) -> dict[str, Any]:
    unit = line["unit"]
    what = f"{line['structure'] or ''} {line['metric'] or ''}".strip()
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "status": "preliminary",
        "code": {
            "coding": [
                {
                    "system": RULE_SYSTEM,
                    "version": line["rule_version"],
                    "code": line["rule_id"],
                    "display": f"{line['policy']} — {line['criterion']}",
                }
            ],
            "text": f"{line['policy']} {line['criterion']} criterion not met"
            + (f" ({what})" if what else ""),
        },
        "severity": severity,
        "identifiedDateTime": when,
        "implicated": [implicated],
        "detail": f"{line['value']:g} {unit} against a limit {line['operator']} {line['limit']:g} {unit}. "
        + line["explanation"],
        "evidence": [
            {
                "code": [
                    {
                        "text": f"Evidence: {line['evidence']['label']}. Source: {_citation_text(line)}",
                    }
                ]
            }
        ],
    }
    if subject:
        issue["patient"] = subject
    doi = _doi_url(line)
    if doi:
        issue["reference"] = doi
    return issue


def result_to_fhir(
    result: dict[str, Any],
    case: dict[str, Any] | None = None,
    *,
    planned_course_reference: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The FHIR R4 Bundle (JSON) of one evaluation result (``schemas/result.schema.json``), validated.

    ``planned_course_reference`` (``ServiceRequest/123``, from a CDS Hooks order) is implicated instead of a
    ServiceRequest built from the case's planned course.
    """
    bundle_model = _require_models()
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    pack = result["rule_pack"]
    key = f"{result['case_id']}|{pack['sha256']}|{when}"
    entries: list[dict[str, Any]] = []
    subject = {
        "identifier": {"system": CASE_SYSTEM, "value": result["case_id"]},
        "display": f"pseudonymous case {result['case_id']}",
    }
    if planned_course_reference:
        implicated = {"reference": planned_course_reference}
    else:
        course_url = _urn(key, "planned-course")
        entries.append({"fullUrl": course_url, "resource": _planned_course(result, case, course_url)})
        implicated = {"reference": course_url}

    parameters_url = _urn(key, "parameters")
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "policy",
                "part": [
                    {"name": "name", "valueString": p["policy"]},
                    {"name": "verdict", "valueCode": p["verdict"]},
                    *[
                        {"name": n, "valueInteger": p[n]}
                        for n in ("pass", "fail", "indeterminate", "not_applicable")
                    ],
                ],
            }
            for p in result["policy_summary"]
        ]
        + [
            {
                "name": "recommendation",
                "part": [
                    {"name": "rule", "valueString": r["rule_id"]},
                    {"name": "version", "valueString": r["rule_version"]},
                    {"name": "status", "valueCode": r["status"]},
                    {"name": "statement", "valueString": r["statement"]},
                ],
            }
            for r in result["recommendations"]
        ],
    }
    issues = []
    for kind, lines in (("constraint", result["constraints"]), ("advisory", result["advisories"])):
        for line in lines:
            if line["status"] == "fail":
                severity = "high" if kind == "constraint" else "moderate"
                url = _urn(key, "issue", line["rule_id"], line["structure"] or "", line["metric"] or "")
                issues.append({"fullUrl": url, "resource": _issue(line, severity, subject, implicated, when)})
    undecided = any(
        entry["status"] == "indeterminate"
        for entry in [*result["constraints"], *result["advisories"], *result["recommendations"]]
    )
    guidance: dict[str, Any] = {
        "resourceType": "GuidanceResponse",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": _urn(key, "guidance")}],
        "moduleCanonical": f"{PACK_CANONICAL}{pack['name']}|{pack['version']}",
        "status": "data-required" if undecided else "success",
        "subject": subject,
        "occurrenceDateTime": when,
        "outputParameters": {"reference": parameters_url},
        "note": [
            {
                "text": f"Rule pack {pack['name']} {pack['version']} (sha256 {pack['sha256']}, content sha256 "
                f"{pack['content_sha256']}), rules in force on {pack['as_of']}; engine {result['engine']['name']} "
                f"{result['engine']['version']}; {result['tool']['name']} {result['tool']['version']}."
            },
            *[{"text": f"Missing: {m}"} for m in result["missing_data"]],
        ],
    }
    if issues:
        guidance["reasonReference"] = [{"reference": i["fullUrl"]} for i in issues]
    entries = [
        {"fullUrl": _urn(key, "guidance"), "resource": guidance},
        {"fullUrl": parameters_url, "resource": parameters},
        *entries,
        *issues,
    ]
    data = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": when,
        "entry": entries,
    }
    validated = bundle_model.Bundle.model_validate(data)
    out: dict[str, Any] = validated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out
