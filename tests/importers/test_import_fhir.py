"""`reirrad import fhir`: mCODE / CodeX course summaries, planned courses, phases, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from importer_helpers import DATA, case_with, run_import

BUNDLE = DATA / "fhir_course_summary_bundle.json"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
CODEX = "http://hl7.org/fhir/us/codex-radiation-therapy/StructureDefinition/"


def bundle() -> dict[str, Any]:
    return json.loads(BUNDLE.read_text(encoding="utf-8"))


def summary(b: dict[str, Any]) -> dict[str, Any]:
    return next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Procedure")


def write(tmp_path: Path, b: Any, name: str = "bundle.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(b), encoding="utf-8")
    return str(path)


def test_course_summary_gives_a_prior_course_without_structures_and_warns() -> None:
    code, out, err = run_import("fhir", str(BUNDLE))
    assert code == 0, err
    course = yaml.safe_load(out)
    assert course == {
        "start": "2015-01-05",
        "end": "2015-01-16",
        "technique": "3DCRT",
        "prescription": {"dose": 30.0, "fractions": 10},
        "unit": "Gy",
    }
    assert "dosimetry" not in course
    assert "no cord (or thecal sac) doses" in err
    assert case_with(prior=out).prior_courses[0].structures is None


def test_planned_course_reads_dates_dose_and_reirradiation_flag() -> None:
    code, out, err = run_import("fhir", str(BUNDLE), "--planned", "--technique", "SBRT")
    assert code == 0, err
    course = yaml.safe_load(out)
    assert course == {
        "start": "2016-09-15",
        "technique": "SBRT",
        "prescription": {"dose": 24.0, "fractions": 1},
        "unit": "Gy",
    }
    assert "flags this course as a re-irradiation" in out
    assert "the bundle codes the delivery as VMAT" in out


def test_vmat_at_ablative_dose_per_fraction_warns_about_sbrt() -> None:
    code, out, err = run_import("fhir", str(BUNDLE), "--planned")
    assert code == 0, err
    assert yaml.safe_load(out)["technique"] == "VMAT"
    assert (
        "technique VMAT at 24 Gy per fraction: if the course was stereotactic, give --technique SBRT" in err
    )


def test_phases_of_equal_dose_per_fraction_are_summed(tmp_path: Path) -> None:
    b = bundle()
    course = summary(b)
    course["extension"] = [e for e in course["extension"] if "dose-delivered-to-volume" not in e["url"]]
    for i, (cgy, fx) in enumerate(((2000, 10), (1000, 5))):
        phase = {
            "resourceType": "Procedure",
            "id": f"phase-{i}",
            "status": "completed",
            "subject": {"reference": "Patient/pt-1"},
            "partOf": [{"reference": "Procedure/course-2015"}],
            "extension": [
                {"url": CODEX + "codexrt-radiotherapy-fractions-delivered", "valueUnsignedInt": fx},
                {
                    "url": MCODE + "mcode-radiotherapy-dose-delivered-to-volume",
                    "extension": [
                        {"url": "volume", "valueReference": {"display": "T8 vertebra"}},
                        {
                            "url": "totalDoseDelivered",
                            "valueQuantity": {
                                "value": cgy,
                                "code": "cGy",
                                "system": "http://unitsofmeasure.org",
                            },
                        },
                    ],
                },
            ],
        }
        b["entry"].append({"resource": phase})
    code, out, err = run_import("fhir", write(tmp_path, b))
    assert code == 0, err
    assert yaml.safe_load(out)["prescription"] == {"dose": 30.0, "fractions": 15}
    b["entry"][-1]["resource"]["extension"][0]["valueUnsignedInt"] = 3
    code, _, err = run_import("fhir", write(tmp_path, b))
    assert code == 2
    assert "phases of different dose per fraction" in err


def test_patient_identity_is_never_echoed() -> None:
    _, out, err = run_import("fhir", str(BUNDLE))
    assert "Phantom" not in out + err
    assert "PHANTOM-MRN-4711" not in out + err


def _gallery(tmp_path: Path, case: str) -> list[str]:
    b = bundle()
    course = summary(b)
    if case == "not-json":
        (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
        return ["fhir", str(tmp_path / "x.json")]
    if case == "not-a-bundle":
        return ["fhir", write(tmp_path, course)]
    if case == "invalid-resource":
        course["performedPeriod"]["start"] = "last spring"
    elif case == "no-course":
        b["entry"] = b["entry"][:1]
    elif case == "two-courses":
        twin = copy.deepcopy(b["entry"][1])
        twin["resource"]["id"] = "course-2017"
        b["entry"].append(twin)
    elif case == "unknown-course-id":
        return ["fhir", write(tmp_path, b), "--course-id", "C9"]
    elif case == "relative-unit":
        course["extension"][3]["extension"][1]["valueQuantity"].update(unit="%", code="%")
    elif case == "in-progress":
        course["status"] = "in-progress"
        del course["performedPeriod"]["end"]
    elif case == "volumes-differ":
        extra = copy.deepcopy(course["extension"][3])
        extra["extension"][0]["valueReference"]["display"] = "T9 vertebra"
        extra["extension"][1]["valueQuantity"]["value"] = 2000
        course["extension"].append(extra)
    elif case == "unknown-technique":
        course["extension"][1]["extension"][1]["valueCodeableConcept"]["coding"][0].update(code="1156529004")
    elif case == "technique-conflict":
        return ["fhir", write(tmp_path, b), "--technique", "IMRT"]
    elif case == "missing-file":
        return ["fhir", str(tmp_path / "absent.json")]
    return ["fhir", write(tmp_path, b)]


GALLERY = {
    "not-json": "not JSON",
    "not-a-bundle": "is 'Procedure', not a Bundle",
    "invalid-resource": "DateTime value string does not match spec regex",
    "no-course": "no RadiotherapyCourseSummary (Procedure)",
    "two-courses": "2 courses: 'course-2015', 'course-2017' (accepted: --course-id ID)",
    "unknown-course-id": "no RadiotherapyCourseSummary (Procedure) with id 'C9'",
    "relative-unit": "dose unit '%' is not an absolute dose unit",
    "in-progress": "the course has no end date (status 'in-progress')",
    "volumes-differ": "different doses: 'T8 vertebra' 30 Gy / 10 fx; 'T9 vertebra' 20 Gy / 10 fx",
    "unknown-technique": "the input does not give the course's technique",
    "technique-conflict": "--technique IMRT contradicts SNOMED 1162782007, which gives 3DCRT",
    "missing-file": "absent.json: (document): file not found",
}


@pytest.mark.parametrize("case", list(GALLERY))
def test_bad_input_is_refused_with_a_message(tmp_path: Path, case: str) -> None:
    code, out, err = run_import(*_gallery(tmp_path, case))
    assert code == 2
    assert out == ""
    assert GALLERY[case] in err


def test_a_refusal_keeps_the_warnings_gathered_before_it(tmp_path: Path) -> None:
    """An un-encoded technique warns; the refusal for the missing technique must not swallow the warning."""
    b = bundle()
    summary(b)["extension"][1]["extension"][1]["valueCodeableConcept"]["coding"][0].update(
        code="1156529004", display="un-encoded technique"
    )
    code, out, err = run_import("fhir", write(tmp_path, b))
    assert code == 2
    assert out == ""
    assert "warning: " in err
    assert "technique code http://snomed.info/sct#1156529004 (un-encoded technique) has no counterpart" in err
    assert "error: " in err
    assert err.index("warning: ") < err.index("error: ")
