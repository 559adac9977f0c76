"""The JSON API: the published example through /api/v1/evaluate, refusals as problem details naming the field,
limits, the pack, imports of real files, size limits and the headers every response carries."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from reirrad.load.validation import load_schema
from reirrad.service.security import ServiceConfig
from service_helpers import ECLIPSE, ROOT, example_case


def test_the_lucido_patient_evaluates_as_the_cli_does(client: Any) -> None:
    r = client.post("/api/v1/evaluate", json=example_case())
    assert r.status_code == 200
    result = r.json()
    jsonschema.validate(result, load_schema("result.schema.json"))
    verdicts = {
        (x["rule_id"], x["metric"]): (x["status"], round(x["value"], 2))
        for x in result["constraints"]
        if x["value"] is not None
    }
    assert verdicts[("hytec.resbrt", "Dmax")] == ("fail", 30.0)
    assert verdicts[("hytec.resbrt", "D0.03cc")] == ("pass", 24.75)
    assert verdicts[("hytec.cumulative", "Dmax")] == ("fail", 73.3)
    assert verdicts[("nelson.cumulative", "Dmax")] == ("fail", 53.46)
    assert result["rule_pack"]["content_sha256"] in r.headers["x-reirrad-rule-pack"]


def test_as_of_selects_the_rules_in_force_on_that_date(client: Any) -> None:
    r = client.post("/api/v1/evaluate?as_of=2016-09-15", json=example_case())
    assert r.json()["rule_pack"]["as_of"] == "2016-09-15"


@pytest.mark.parametrize(
    ("fmt", "media", "start"),
    [("markdown", "text/markdown", "# Re-irradiation evaluation"), ("text", "text/plain", "")],
)
def test_the_report_as_markdown_or_text(client: Any, fmt: str, media: str, start: str) -> None:
    r = client.post(f"/api/v1/evaluate?format={fmt}", json=example_case())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(media)
    assert r.text.startswith(start)
    assert "30.00 Gy EQD2" in r.text


def test_the_result_as_a_fhir_bundle(client: Any) -> None:
    r = client.post("/api/v1/evaluate?format=fhir", json=example_case())
    assert r.headers["content-type"].startswith("application/fhir+json")
    kinds = [e["resource"]["resourceType"] for e in r.json()["entry"]]
    assert kinds.count("DetectedIssue") == 4


@pytest.mark.parametrize(
    ("change", "path", "message", "accepted"),
    [
        (("lesion", "levels", ["T99"]), "lesion.levels[0]", 'text ("T99") is not an accepted value', '"C1"'),
        (
            ("planned_course", "prescription", {"dose": 24, "fractions": 0}),
            "planned_course.prescription.fractions",
            "",
            "1",
        ),
        (("case_id", None, "Jane Doe"), "case_id", "", ""),
        (
            ("planned_course", "start", "2015-01-10"),
            "planned_course.start",
            "before prior course 1 ends",
            "on or after the end",
        ),
    ],
)
def test_bad_cases_are_problems_naming_the_field(
    client: Any, change: tuple[str, str | None, Any], path: str, message: str, accepted: str
) -> None:
    case = copy.deepcopy(example_case())
    section, key, value = change
    if key is None:
        case[section] = value
    else:
        case[section][key] = value
    r = client.post("/api/v1/evaluate", json=case)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/input-refused")
    found = [p for p in body["problems"] if p["path"] == path]
    assert found, body
    assert message in found[0]["message"]
    assert accepted in found[0]["accepted"]
    assert found[0]["file"] == "request body"


def test_every_problem_is_listed_at_once(client: Any) -> None:
    case = example_case()
    case["lesion"]["levels"] = ["T99"]
    case["patient"]["ecog"] = 9
    r = client.post("/api/v1/evaluate", json=case)
    assert {p["path"] for p in r.json()["problems"]} == {"lesion.levels[0]", "patient.ecog"}


@pytest.mark.parametrize(
    ("content", "ctype", "words"),
    [
        (b"{", "application/json", "not JSON"),
        (b"x: 1", "application/yaml", "is not JSON"),
        (b"[]", "application/json", ""),
    ],
)
def test_a_body_that_is_not_a_case_is_refused(client: Any, content: bytes, ctype: str, words: str) -> None:
    r = client.post("/api/v1/evaluate", content=content, headers={"content-type": ctype})
    assert r.status_code == 422
    assert words in r.json()["detail"]


def test_a_bad_query_parameter_is_named(client: Any) -> None:
    r = client.post("/api/v1/evaluate?as_of=2016-02-30", json=example_case())
    assert r.status_code == 422
    problem = r.json()["problems"][0]
    assert (problem["file"], problem["path"], problem["accepted"]) == ("query", "as_of", "a date YYYY-MM-DD")
    r = client.post("/api/v1/evaluate?format=pdf", json=example_case())
    assert r.json()["problems"][0]["path"] == "format"


def test_a_body_over_the_limit_is_413_before_it_is_read(engine: Any, tmp_path: Any) -> None:
    from reirrad.service.app import create_app
    from starlette.testclient import TestClient

    with TestClient(create_app(ServiceConfig(data_dir=tmp_path, max_json_bytes=1000), engine)) as c:
        r = c.post(
            "/api/v1/evaluate",
            content=json.dumps(example_case()).encode() + b" " * 1000,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        assert r.json()["limit_bytes"] == 1000

        def chunks() -> Any:
            yield b'{"schema": "reirrad/case/v1",'
            yield b" " * 2000

        r = c.post("/api/v1/evaluate", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_limits_before_planning(client: Any) -> None:
    r = client.post("/api/v1/limits?fractions=1", json=example_case())
    assert r.status_code == 200
    limits = {(x["policy"], x["metric"]): x["max_dose"] for x in r.json()["limits"] if x["fractions"] == 1}
    assert limits[("hytec", "Dmax")] is not None
    assert (
        limits[("hytec", "Dmax")] < 10.0
    )  # the planned 10 Gy Dmax fails HyTEC, so its largest allowed is lower


def test_the_pack_its_rules_and_evidence(client: Any) -> None:
    pack = client.get("/api/v1/pack").json()
    assert len(pack["content_sha256"]) == 64
    ids = {r["id"] for r in pack["rules"]}
    assert {"hytec.resbrt", "nelson.cumulative", "isrs-2017.sbrt-after-conventional"} <= ids
    rule = client.get("/api/v1/pack/rules/hytec.resbrt").json()
    assert rule["versions"][0]["citations"][0]["ref"]
    assert client.get("/api/v1/pack/rules/no.such").status_code == 404
    refs = {r["id"]: r for r in client.get("/api/v1/pack/evidence").json()["references"]}
    assert refs["myrehaug-2017"]["doi"] == "10.3171/2017.2.SPINE16976"


def test_health_names_the_pack(client: Any) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert len(body["rule_pack"]["content_sha256"]) == 64


def test_import_an_eclipse_export(client: Any) -> None:
    with ECLIPSE.open("rb") as f:
        r = client.post(
            "/api/v1/import/dvh",
            files={"file": ("eclipse_cumulative_cgy.txt", f, "text/plain")},
            data={"technique": "3DCRT", "fractions": "10", "start": "2015-01-05", "end": "2015-01-16"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["course"]["structures"] == {
        "SpinalCord": {"Dmax": 30.0, "D0.03cc": 29.55, "D0.1cc": 28.5, "D1cc": 15.0}
    }
    assert "PHANTOM" not in r.text
    assert "Phantom" not in r.text


def test_an_import_missing_course_fields_names_them_and_the_uploaded_file(client: Any) -> None:
    with ECLIPSE.open("rb") as f:
        r = client.post("/api/v1/import/dvh", files={"file": ("my export.txt", f, "text/plain")})
    assert r.status_code == 422
    problems = r.json()["problems"]
    assert {p["path"] for p in problems} >= {"start", "end", "technique", "fractions"}
    assert {p["file"] for p in problems} == {"my export.txt"}


def test_disagreements_are_recorded_by_case_hash_and_rule(client: Any) -> None:
    body = {
        "case_hash": "a" * 64,
        "rule_id": "hytec.resbrt",
        "rule_version": _version("hytec.resbrt"),
        "reason": "we use D0.03cc",
    }
    assert client.post("/api/v1/disagreements", json=body).status_code == 201
    bad = dict(body, rule_version="9.9.9")
    r = client.post("/api/v1/disagreements", json=bad)
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"] == "rule_id"
    tally = client.get("/api/v1/feedback").json()["rules"][0]
    assert (tally["rule_id"], tally["disagreed"], tally["reasons"][0]["reason"]) == (
        "hytec.resbrt",
        1,
        "we use D0.03cc",
    )


def test_every_response_carries_the_security_headers_and_the_pack(client: Any) -> None:
    for r in (client.get("/"), client.get("/api/v1/health"), client.get("/nowhere")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-reirrad-rule-pack"].startswith("reirrad-spine-reirradiation ")
        assert "access-control-allow-origin" not in r.headers
    assert client.get("/nowhere").status_code == 404


def test_cors_is_closed_unless_an_origin_is_configured(client: Any, engine: Any, tmp_path: Any) -> None:
    from reirrad.service.app import create_app
    from starlette.testclient import TestClient

    ask = {"Origin": "https://ehr.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/cds-services", headers=ask).headers
    config = ServiceConfig(data_dir=tmp_path, cors_origins=("https://ehr.example",))
    with TestClient(create_app(config, engine)) as c:
        r = c.options("/cds-services", headers=ask)
        assert r.headers["access-control-allow-origin"] == "https://ehr.example"


def test_a_token_protects_page_and_api_beyond_loopback(engine: Any, tmp_path: Any) -> None:
    from reirrad.service.app import create_app
    from starlette.testclient import TestClient

    config = ServiceConfig(host="0.0.0.0", data_dir=tmp_path, token="t" * 32)
    with TestClient(create_app(config, engine)) as c:
        assert c.get("/api/v1/pack").status_code == 401
        assert c.get("/api/v1/pack", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert c.get("/api/v1/pack", headers={"Authorization": "Bearer " + "t" * 32}).status_code == 200
        r = c.post("/login", data={"token": "t" * 32}, follow_redirects=False)
        assert r.status_code == 303
        assert "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/").status_code == 200


def test_an_unexpected_fault_is_a_500_problem_without_a_traceback(
    engine: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from reirrad.service.app import create_app
    from starlette.testclient import TestClient

    def broken(*args: Any) -> Any:
        raise KeyError("secret patient detail")

    monkeypatch.setattr(engine, "_evaluate_now", broken)
    with TestClient(create_app(ServiceConfig(data_dir=tmp_path), engine), raise_server_exceptions=False) as c:
        r = c.post("/api/v1/evaluate", json=example_case())
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in r.text
    assert "secret" not in r.text


def test_dicom_files_the_importer_refuses_are_named_as_uploaded(client: Any) -> None:
    from pydicom.data import get_testdata_file

    with (
        open(get_testdata_file("rtdose.dcm"), "rb") as dose,
        open(get_testdata_file("rtstruct.dcm"), "rb") as rs,
    ):
        r = client.post(
            "/api/v1/import/dicom",
            files={
                "rtdose": ("RD.dcm", dose, "application/dicom"),
                "rtstruct": ("RS.dcm", rs, "application/dicom"),
            },
            data={
                "technique": "3DCRT",
                "start": "2015-01-05",
                "end": "2015-01-16",
                "prescription": "30",
                "fractions": "10",
            },
        )
    assert r.status_code == 422
    found = {(p["file"], p["path"]) for p in r.json()["problems"]}
    assert ("RD.dcm", "DoseUnits") in found
    assert ("RS.dcm", "(document)") in found
    assert "/tmp" not in r.text


def test_a_dicom_phantom_is_imported_through_the_api(client: Any, tmp_path: Any) -> None:
    """A uniform 20 Gy dose over a cord cylinder (the importer tests' phantom): every near-max metric is 20 Gy."""
    import sys

    import numpy as np

    sys.path.insert(0, str(ROOT / "tests" / "importers"))
    from importer_factories import axis, cylinder, write_rtdose, write_rtstruct

    x, z = axis(-20, 20, 2.5), axis(90, 150, 2.5)
    write_rtdose(tmp_path / "dose.dcm", lambda a, b, c: np.full(a.shape, 20.0), x=x, y=x, z=z)
    planes = [100 + 2.5 * i for i in range(16)]
    write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5.0, planes), "PTV_T8": cylinder(15, planes)})
    with (tmp_path / "dose.dcm").open("rb") as dose, (tmp_path / "rs.dcm").open("rb") as rs:
        r = client.post(
            "/api/v1/import/dicom",
            files={"rtdose": ("dose.dcm", dose), "rtstruct": ("rs.dcm", rs)},
            data={
                "technique": "3DCRT",
                "start": "2015-01-05",
                "end": "2015-01-16",
                "prescription": "30",
                "fractions": "10",
            },
        )
    assert r.status_code == 200, r.text
    assert r.json()["course"]["structures"]["SpinalCord"] == {
        "Dmax": 20.0,
        "D0.03cc": 20.0,
        "D0.1cc": 20.0,
        "D1cc": 20.0,
    }


def test_the_log_holds_no_patient_data(client: Any, caplog: Any) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="reirrad.service")
    client.post("/api/v1/evaluate?as_of=2016-09-15", json=example_case())
    bad = example_case()
    bad["patient"]["histology"] = ""
    client.post("/api/v1/evaluate", json=bad)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("POST /api/v1/evaluate 200 ") for line in lines)
    assert any(line.startswith("POST /api/v1/evaluate 422 ") for line in lines)
    text = "\n".join(lines)
    for private in ("t1-chondrosarcoma", "chondrosarcoma", "2016-09-15", "32.8"):
        assert private not in text


def test_a_request_over_its_time_is_a_504_problem(engine: Any, tmp_path: Any) -> None:
    from reirrad.service.app import create_app
    from starlette.testclient import TestClient

    with TestClient(create_app(ServiceConfig(data_dir=tmp_path, timeout_s=1e-6), engine)) as c:
        r = c.post("/api/v1/evaluate", json=example_case())
    assert r.status_code == 504
    assert r.json()["title"] == "The request took too long"


def _version(rule_id: str) -> str:
    """The version of a rule in force today in the bundled pack (tests follow the pack's releases)."""
    from datetime import date

    from reirrad.knowledge.rulepack import load_pack

    return load_pack().select(date.today()).rule(rule_id).version
