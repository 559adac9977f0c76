"""The CDS Hooks service: discovery, cards for the Lucido 2025 patient from translated CodeX/mCODE bodies, a card for
every kind of missing or refused data (never a pass), feedback stored by rule and version, and JWT checks."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jsonschema
import pytest
from cds_examples import (
    MCODE,
    UCUM,
    course_summary,
    hook_request,
    level,
    organ_dose,
    planned_course,
    searchset,
)
from cds_hooks_shapes import DISCOVERY, RESPONSE
from reirrad.service.cds import OVERRIDE_REASONS, SERVICE_ID
from reirrad.service.security import ServiceConfig

URL = f"/cds-services/{SERVICE_ID}"


def call(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(URL, json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    jsonschema.validate(data, RESPONSE)
    return data


def by_rule(cards: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in cards:
        code = (c["source"].get("topic") or {}).get("code", "")
        out.setdefault(code, []).append(c)
    return out


def test_discovery_lists_the_service_on_both_order_hooks(client: Any) -> None:
    r = client.get("/cds-services")
    assert r.status_code == 200
    data = r.json()
    jsonschema.validate(data, DISCOVERY)
    assert sorted(s["hook"] for s in data["services"]) == ["order-select", "order-sign"]
    assert {s["id"] for s in data["services"]} == {SERVICE_ID}
    template = data["services"][0]["prefetch"]["radiotherapyCourses"]
    assert template == "Procedure?patient={{context.patientId}}&code=http://snomed.info/sct|1217123003"


@pytest.mark.parametrize("hook", ["order-sign", "order-select"])
def test_lucido_patient_gets_a_critical_card_per_failed_cord_criterion(client: Any, hook: str) -> None:
    """Lucido 2025, Table 5: on the cord point maximum HyTEC fails (30.0 Gy EQD2 > 25, cumulative 73.3 > 70),
    Nelson fails (53.5 > 50), the institutional BED3 policy fails (77.7 > 75); on D0.03cc all pass."""
    cards = call(client, hook_request(hook))["cards"]
    rules = by_rule(cards)
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert sorted(c["source"]["topic"]["code"] for c in critical) == [
        "conus-bed3.cumulative",
        "hytec.cumulative",
        "hytec.resbrt",
        "nelson.cumulative",
    ]
    resbrt = rules["hytec.resbrt"][0]
    assert resbrt["summary"].startswith("hytec resbrt: SpinalCord Dmax 30.00 Gy EQD2 is over the limit ≤ 25")
    assert "value: 30.00 Gy EQD2; limit ≤ 25 Gy EQD2" in resbrt["detail"]
    assert "Lucido JJ 2025" in resbrt["detail"] or "Sahgal" in resbrt["detail"]
    assert resbrt["source"]["url"].endswith("/rules/hytec.resbrt")
    assert resbrt["source"]["label"] == f"reirrad rule hytec.resbrt {_version('hytec.resbrt')}"
    assert resbrt["overrideReasons"] == OVERRIDE_REASONS
    assert "53.46 Gy EQD2" in rules["nelson.cumulative"][0]["detail"]
    # no card for the D0.03cc lines, which pass
    assert not any("D0.03cc" in c["summary"] for c in critical)


def test_recommendations_made_get_an_info_card_with_their_evidence(client: Any) -> None:
    cards = call(client, hook_request())["cards"]
    rec = by_rule(cards)["isrs-2017.sbrt-after-conventional"][0]
    assert rec["indicator"] == "info"
    assert "level III" in rec["detail"]
    assert "doi:10.3171/2017.2.SPINE16976" in rec["detail"]


def test_order_select_ignores_orders_not_selected_and_orders_that_are_not_radiotherapy(client: Any) -> None:
    body = hook_request("order-select")
    body["context"]["selections"] = ["MedicationRequest/other"]
    assert call(client, body)["cards"] == []
    other = {
        "resourceType": "ServiceRequest",
        "id": "lab",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "code": {"text": "blood count"},
    }
    assert call(client, hook_request(order=other))["cards"] == []


def _only_missing(cards: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(cards) >= 1
    assert all(c["indicator"] != "info" for c in cards), "a card about missing data is never a pass"
    assert all("topic" not in c["source"] for c in cards)
    return cards[-1]


def test_a_missing_prefetch_gives_a_card_saying_what_is_missing(client: Any) -> None:
    card = _only_missing(call(client, hook_request(omit_prefetch=True))["cards"])
    assert card["indicator"] == "warning"
    assert card["summary"] == "Re-irradiation not checked: the earlier radiotherapy courses were not sent"
    assert "radiotherapyCourses" in card["detail"]
    assert "nothing here is a pass" in card["detail"]
    assert card["links"][0]["type"] == "absolute"


def test_an_operation_outcome_in_place_of_the_courses_gives_a_card(client: Any) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    card = _only_missing(call(client, hook_request(prefetch={"radiotherapyCourses": outcome}))["cards"])
    assert "could not fetch" in card["detail"]


def test_a_course_the_importer_refuses_gives_a_card_with_its_problem(client: Any) -> None:
    unfinished = course_summary(status="in-progress", performedPeriod={"start": "2015-01-05"})
    cards = call(client, hook_request(prefetch={"radiotherapyCourses": searchset(unfinished)}))["cards"]
    card = _only_missing(cards)
    assert "status 'in-progress': the course is not finished" in card["detail"]
    assert "prefetch radiotherapyCourses Procedure/course-2015-t1" in card["detail"]


def test_an_order_without_cord_doses_is_not_checked_and_says_so(client: Any) -> None:
    order = planned_course()
    order["extension"] = [
        e for e in order["extension"] if e["url"] != organ_dose("SpinalCord", "Dmax", 1)["url"]
    ]
    card = _only_missing(call(client, hook_request(order=order))["cards"])
    assert "the order carries no cord (or thecal sac) dose" in card["detail"]


def test_an_order_without_a_level_is_not_checked_and_says_so(client: Any) -> None:
    order = planned_course()
    order["extension"] = [e for e in order["extension"] if e != level("T1")]
    card = _only_missing(call(client, hook_request(order=order))["cards"])
    assert "the order does not say which spinal levels it treats" in card["detail"]


def test_no_course_on_record_is_checked_as_a_first_course_with_a_warning(client: Any) -> None:
    cards = call(client, hook_request(prefetch={"radiotherapyCourses": None}))["cards"]
    warning = cards[0]
    assert warning["indicator"] == "warning"
    assert "no earlier radiotherapy course on record" in warning["summary"]
    assert not any(c["indicator"] == "critical" for c in cards)  # 10 Gy Dmax is within the de novo 12.4 Gy


def test_a_course_over_other_levels_is_left_out_and_one_without_levels_counted(client: Any) -> None:
    elsewhere = course_summary(id="course-l4")
    elsewhere["extension"] = [e for e in elsewhere["extension"] if e != level("T1")] + [level("L4")]
    cards = call(client, hook_request(prefetch={"radiotherapyCourses": searchset(elsewhere)}))["cards"]
    assert not any(c["indicator"] == "critical" for c in cards)
    unknown = course_summary()
    unknown["extension"] = [e for e in unknown["extension"] if e != level("T1")]
    cards = call(client, hook_request(prefetch={"radiotherapyCourses": searchset(unknown)}))["cards"]
    assert any(c["summary"].startswith("Counted as a course over this lesion") for c in cards)
    assert len([c for c in cards if c["indicator"] == "critical"]) == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hook": "order-sign"}, "hookInstance"),
        (
            {
                "hook": "patient-view",
                "hookInstance": "x",
                "context": {"userId": "u", "patientId": "p", "draftOrders": {}},
            },
            "hook",
        ),
        (
            {"hook": "order-sign", "hookInstance": "x", "context": {"userId": "u", "patientId": "p"}},
            "context.draftOrders",
        ),
    ],
)
def test_a_malformed_hook_request_is_a_problem_naming_the_field(
    client: Any, body: dict[str, Any], field: str
) -> None:
    r = client.post(URL, json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [p["path"] for p in r.json()["problems"]]


def test_unknown_service_is_404(client: Any) -> None:
    r = client.post("/cds-services/nope", json=hook_request())
    assert r.status_code == 404
    assert r.json()["problems"][0]["accepted"] == SERVICE_ID


def test_feedback_is_stored_by_rule_and_version_and_reported(client: Any) -> None:
    cards = call(client, hook_request())["cards"]
    resbrt = by_rule(cards)["hytec.resbrt"][0]
    rec = by_rule(cards)["isrs-2017.sbrt-after-conventional"][0]
    feedback = {
        "feedback": [
            {
                "card": resbrt["uuid"],
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"code": "clinical-judgement", "system": OVERRIDE_REASONS[0]["system"]},
                    "userComment": "D0.03cc is what we constrain",
                },
                "outcomeTimestamp": "2026-11-30T10:05:31Z",
            },
            {
                "card": rec["uuid"],
                "outcome": "accepted",
                "acceptedSuggestions": [],
                "outcomeTimestamp": "2026-11-30T10:06:00Z",
            },
        ]
    }
    r = client.post(f"{URL}/feedback", json=feedback)
    assert r.status_code == 200, r.text
    report = {(t["rule_id"], t["rule_version"]): t for t in client.get("/api/v1/feedback").json()["rules"]}
    t = report[("hytec.resbrt", _version("hytec.resbrt"))]
    assert (t["fired"], t["accepted"], t["overridden"]) == (1, 0, 1)
    assert t["reasons"] == [
        {
            "reason": "clinical-judgement: Benefit judged to outweigh the risk here — D0.03cc is what we constrain",
            "count": 1,
        }
    ]
    assert (
        report[("isrs-2017.sbrt-after-conventional", _version("isrs-2017.sbrt-after-conventional"))][
            "accepted"
        ]
        == 1
    )


def test_feedback_on_a_card_never_issued_is_refused_by_index(client: Any) -> None:
    body = {
        "feedback": [
            {"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2026-11-30T10:00:00Z"}
        ]
    }
    r = client.post(f"{URL}/feedback", json=body)
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"] == "feedback[0].card"
    bad = {"feedback": [{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-11-30T10:00:00Z"}]}
    r = client.post(f"{URL}/feedback", json=bad)
    assert r.status_code == 422
    assert r.json()["problems"][0]["path"] == "feedback[0].outcome"


# --- EHR-signed JWTs (CDS Hooks 2.0, "Trusting CDS Clients") -----------------------------------------------------


@pytest.fixture(scope="module")
def ehr_key() -> tuple[Any, dict[str, Any]]:
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": "ehr-1", "alg": "ES384", "use": "sig"})
    return key, {"keys": [public]}


ISS = "https://ehr.example.org/"


def _token(key: Any, aud: str, **changes: Any) -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    alg = "ES384"
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "ehr-1", "typ": "JWT"})


@pytest.fixture
def jwt_client(tmp_path: Any, engine: Any, ehr_key: tuple[Any, dict[str, Any]]) -> Any:
    from reirrad.service.app import create_app
    from starlette.testclient import TestClient

    config = ServiceConfig(
        host="0.0.0.0",
        data_dir=tmp_path,
        jwks=ehr_key[1],
        cds_issuers=(ISS,),
        public_url="https://cds.example.org",
    )
    with TestClient(create_app(config, engine), raise_server_exceptions=False) as c:
        yield c


def test_a_valid_ehr_jwt_is_accepted_and_a_replay_refused(jwt_client: Any, ehr_key: Any) -> None:
    token = _token(ehr_key[0], f"https://cds.example.org{URL}")
    headers = {"Authorization": f"Bearer {token}"}
    assert jwt_client.post(URL, json=hook_request(), headers=headers).status_code == 200
    again = jwt_client.post(URL, json=hook_request(), headers=headers)
    assert again.status_code == 401
    assert "already used" in again.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"aud": "https://cds.example.org/cds-services/other"}, "audience"),
        ({"iss": "https://intruder.example/"}, "issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"jti": None}, "jti"),
    ],
)
def test_a_jwt_with_a_wrong_claim_is_refused(
    jwt_client: Any, ehr_key: Any, changes: dict[str, Any], words: str
) -> None:
    aud = changes.pop("aud", f"https://cds.example.org{URL}")
    token = _token(ehr_key[0], aud, **changes)
    r = jwt_client.post(URL, json=hook_request(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert words in r.json()["detail"].lower()


def test_shared_secret_and_unsigned_jwts_are_refused(jwt_client: Any) -> None:
    import jwt

    now = int(time.time())
    claims = {"iss": ISS, "aud": f"https://cds.example.org{URL}", "exp": now + 60, "iat": now, "jti": "a"}
    for token in (
        jwt.encode(
            claims, "secret-secret-secret-secret-secret!", algorithm="HS256", headers={"kid": "ehr-1"}
        ),
        jwt.encode(claims, None, algorithm="none"),
    ):
        r = jwt_client.post(URL, json=hook_request(), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        assert "is not accepted" in r.json()["detail"]
    assert jwt_client.post(URL, json=hook_request()).status_code == 401


def test_beyond_loopback_with_only_a_jwks_the_page_and_api_are_closed(jwt_client: Any) -> None:
    r = jwt_client.get("/api/v1/pack")
    assert r.status_code == 401
    assert "only CDS Hooks is served" in r.json()["detail"]
    assert jwt_client.get("/api/v1/health").status_code == 200


def _version(rule_id: str) -> str:
    """The version of a rule in force today in the bundled pack (tests follow the pack's releases)."""
    from datetime import date

    from reirrad.knowledge.rulepack import load_pack

    return load_pack().select(date.today()).rule(rule_id).version


def test_a_fragile_pass_gets_a_warning_card_naming_the_reading_that_turns_it(client: Any) -> None:
    """50 Gy in 25 fractions on the cord, then 8 Gy in 1 fraction five months later: the cumulative EQD2 is exactly
    70.0 Gy, a pass under HyTEC's '≤ 70' and a fail under Lucido 2025's '< 70'."""
    prior = course_summary(performedPeriod={"start": "2014-12-15", "end": "2015-01-01"})
    prior["extension"] = [
        e
        for e in prior["extension"]
        if not e["url"].endswith(("radiotherapy-sessions", "dose-delivered-to-volume"))
        and "organ" not in json.dumps(e)
    ] + [
        {"url": MCODE + "mcode-radiotherapy-sessions", "valueUnsignedInt": 25},
        {
            "url": MCODE + "mcode-radiotherapy-dose-delivered-to-volume",
            "extension": [
                {"url": "volume", "valueReference": {"reference": "BodyStructure/vol-t1", "display": "T1"}},
                {
                    "url": "totalDoseDelivered",
                    "valueQuantity": {"value": 5000, "unit": "cGy", "system": UCUM, "code": "cGy"},
                },
                {"url": "fractionsDelivered", "valueUnsignedInt": 25},
            ],
        },
        organ_dose("SpinalCord", "Dmax", 50.0),
    ]
    order = planned_course(occurrencePeriod={"start": "2015-06-03"}, authoredOn="2015-06-01")
    order["extension"] = [e for e in order["extension"] if "SpinalCord" not in json.dumps(e)] + [
        organ_dose("SpinalCord", "Dmax", 8.0)
    ]
    cards = call(client, hook_request(order=order, prefetch={"radiotherapyCourses": searchset(prior)}))[
        "cards"
    ]
    (card,) = by_rule(cards)["hytec.cumulative"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith(
        "hytec cumulative: SpinalCord Dmax pass, but another reading of the sources"
    )
    assert 'fragile: fails under the strict reading of Lucido 2025 ("< 70 Gy")' in card["detail"]
    assert "value: 70.00 Gy EQD2; limit ≤ 70 Gy EQD2" in card["detail"]
