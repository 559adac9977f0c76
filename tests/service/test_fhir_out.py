"""FHIR out: `reirrad evaluate --format fhir` gives an R4 Bundle — a GuidanceResponse with the rule pack as its module
and a DetectedIssue per failed criterion with its evidence and the implicated planned course — that the R4B models
of fhir.resources validate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reirrad.knowledge.rulepack import load_pack
from reirrad.cli.main import main
from service_helpers import EXAMPLE


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["evaluate", str(EXAMPLE), "--format", "fhir", "--as-of", "2016-09-15"]) == 0
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def _of(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_the_bundle_validates_as_fhir_r4(bundle: dict[str, Any]) -> None:
    from fhir.resources.R4B.bundle import Bundle

    assert Bundle.model_validate(bundle).type == "collection"
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])


def test_the_guidance_response_names_the_rule_pack(bundle: dict[str, Any]) -> None:
    (guidance,) = _of(bundle, "GuidanceResponse")
    assert (
        guidance["moduleCanonical"]
        == f"https://reirrad.example/fhir/Library/reirrad-spine-reirradiation|{load_pack().version}"
    )
    assert guidance["status"] == "success"
    assert guidance["subject"]["identifier"]["value"] == "t1-chondrosarcoma"
    assert "rules in force on 2016-09-15" in guidance["note"][0]["text"]
    issues = {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"}
    assert {r["reference"] for r in guidance["reasonReference"]} == issues
    (params,) = _of(bundle, "Parameters")
    verdicts = {
        p["part"][0]["valueString"]: p["part"][1]["valueCode"]
        for p in params["parameter"]
        if p["name"] == "policy"
    }
    assert verdicts == {
        "conus-bed3": "fail",
        "hytec": "fail",
        "nelson": "fail",
        "nieder": "not_applicable",  # the conventional policy: the planned course is SBRT
    }  # de-novo: not in force in 2016


def test_one_detected_issue_per_failed_criterion_with_evidence_and_the_planned_course(
    bundle: dict[str, Any],
) -> None:
    issues = {i["code"]["coding"][0]["code"]: i for i in _of(bundle, "DetectedIssue")}
    assert sorted(issues) == [
        "conus-bed3.cumulative",
        "hytec.cumulative",
        "hytec.resbrt",
        "nelson.cumulative",
    ]
    resbrt = issues["hytec.resbrt"]
    assert resbrt["severity"] == "high"
    assert resbrt["code"]["coding"][0]["version"] == _version("hytec.resbrt")
    assert resbrt["detail"].startswith("30 Gy EQD2 against a limit <= 25 Gy EQD2.")
    assert "not graded" in resbrt["evidence"][0]["code"][0]["text"]
    (course,) = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    assert resbrt["implicated"] == [{"reference": course["fullUrl"]}]
    assert course["resource"]["code"]["coding"][0]["code"] == "1217123003"
    assert course["resource"]["occurrencePeriod"]["start"] == "2016-09-15"
    assert issues["nelson.cumulative"]["reference"].startswith("https://doi.org/")


def test_no_r5_field_names_are_written(bundle: dict[str, Any]) -> None:
    text = json.dumps(bundle)
    for r5_only in ('"subject": {"reference": "urn', '"reason":', '"moduleCodeableConcept"'):
        assert r5_only not in text
    issue = _of(bundle, "DetectedIssue")[0]
    assert "patient" in issue
    assert "subject" not in issue


def _version(rule_id: str) -> str:
    """The version of a rule in force today in the bundled pack (tests follow the pack's releases)."""
    from datetime import date

    from reirrad.knowledge.rulepack import load_pack

    return load_pack().select(date.today()).rule(rule_id).version
