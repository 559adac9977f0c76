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


def phase(pid: str, cgy: float, fx: int, status: str = "completed", identifier: str | None = None) -> dict:
    """A CodeX RadiotherapyTreatedPhase of the 2015 course: dose and fractions delivered to the T8 vertebra."""
    out: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": pid,
        "status": status,
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
                        "valueQuantity": {"value": cgy, "code": "cGy", "system": "http://unitsofmeasure.org"},
                    },
                    {"url": "fractionsDelivered", "valueUnsignedInt": fx},
                ],
            },
        ],
    }
    if identifier:
        out["identifier"] = [{"system": "http://example.org/phase", "value": identifier}]
    return out


def without_summary_dose(b: dict[str, Any]) -> dict[str, Any]:
    course = summary(b)
    course["extension"] = [e for e in course["extension"] if "dose-delivered-to-volume" not in e["url"]]
    return b


def two_phase_bundle() -> dict[str, Any]:
    """25.2 Gy in 14 fractions of 1.8 Gy, then 20 Gy in 10 of 2.0 Gy; the summary says 45.2 Gy / 24, not uniform."""
    b = bundle()
    dose = summary(b)["extension"][3]["extension"]
    dose[1]["valueQuantity"]["value"] = 4520
    dose[2]["valueUnsignedInt"] = 24
    dose.append({"url": "uniformFractionation", "valueBoolean": False})
    b["entry"] += [{"resource": phase("phase-1", 2520, 14)}, {"resource": phase("phase-2", 2000, 10)}]
    return b


def test_non_uniform_fractionation_is_refused_the_same_way_through_the_summary_and_the_phases(
    tmp_path: Path,
) -> None:
    """The case format carries one dose per fraction per course: both readings of a two-phase course are refused
    with one message (the summary's total used to become one schedule, 45.2 Gy / 24 fractions)."""
    through_summary = run_import("fhir", write(tmp_path, two_phase_bundle(), "summary.json"))
    through_phases = run_import(
        "fhir", write(tmp_path, without_summary_dose(two_phase_bundle()), "phases.json")
    )
    messages = []
    for code, out, err in (through_summary, through_phases):
        assert code == 2
        assert out == ""
        lines = [line for line in err.splitlines() if "phases of different dose per fraction" in line]
        assert len(lines) == 1, err
        messages.append(lines[0].split(".json: ", 1)[1])
        assert "the input does not give the course's prescription" not in err
    assert messages[0] == messages[1]
    assert (
        "Procedure.course-2015.phases: the course treated 'T8 vertebra' in phases of different dose per fraction "
        "('phase-1' 25.2 Gy / 14 fx = 1.8 Gy per fraction, 'phase-2' 20 Gy / 10 fx = 2 Gy per fraction)"
    ) in messages[0]


def test_a_summary_flagged_non_uniform_without_its_phases_is_refused(tmp_path: Path) -> None:
    b = two_phase_bundle()
    b["entry"] = b["entry"][:-2]
    code, _, err = run_import("fhir", write(tmp_path, b))
    assert code == 2
    assert (
        "in phases of different dose per fraction (the course summary says its fractionation was not uniform)"
        in err
    )


def test_an_in_progress_snapshot_of_a_phase_is_not_added_to_its_final_version(tmp_path: Path) -> None:
    """Phase 1: 25 Gy / 5 (completed) and its snapshot after 1 fraction, 5 Gy / 1 (in progress, same identifier);
    it used to give 30 Gy / 6 fractions."""
    b = without_summary_dose(bundle())
    b["entry"] += [
        {"resource": phase("phase-1-after-1", 500, 1, "in-progress", identifier="P1")},
        {"resource": phase("phase-1", 2500, 5, "completed", identifier="P1")},
    ]
    code, out, err = run_import("fhir", write(tmp_path, b), "--technique", "SBRT")
    assert code == 0, err
    assert yaml.safe_load(out)["prescription"] == {"dose": 25.0, "fractions": 5}
    assert "2 versions of phase 'phase-1' ('phase-1-after-1', 'phase-1', same identifiers)" in out


def test_two_completed_versions_of_a_phase_that_differ_are_refused(tmp_path: Path) -> None:
    b = without_summary_dose(bundle())
    b["entry"] += [
        {"resource": phase("phase-1-a", 2500, 5, identifier="P1")},
        {"resource": phase("phase-1-b", 2000, 5, identifier="P1")},
    ]
    code, _, err = run_import("fhir", write(tmp_path, b))
    assert code == 2
    assert "2 completed versions of one phase (same identifiers) differ: 'phase-1-a', 'phase-1-b'" in err


def two_techniques() -> dict[str, Any]:
    """VMAT with photons, and 3D conformal with electrons, coded on one course summary."""
    b = bundle()
    course = summary(b)
    electrons = copy.deepcopy(course["extension"][1])
    electrons["extension"][0]["valueCodeableConcept"]["coding"][0].update(
        code="45643008", display="Teleradiotherapy using electrons (procedure)"
    )
    course["extension"][1]["extension"][1]["valueCodeableConcept"]["coding"][0].update(
        code="1156530009", display="Volumetric modulated arc therapy (procedure)"
    )
    course["extension"].insert(2, electrons)
    return b


@pytest.mark.parametrize("technique", ["VMAT", "3DCRT"])
def test_several_techniques_accept_the_one_given(tmp_path: Path, technique: str) -> None:
    code, out, err = run_import("fhir", write(tmp_path, two_techniques()), "--technique", technique)
    assert code == 0, err
    assert yaml.safe_load(out)["technique"] == technique
    assert (
        f"Technique {technique} as given, one of the bundle's: VMAT (SNOMED 1156530009 with photons); "
        "3DCRT (SNOMED 1162782007 with electrons)."
    ) in out


def test_several_techniques_without_a_choice_are_refused_not_the_first_taken(tmp_path: Path) -> None:
    code, out, err = run_import("fhir", write(tmp_path, two_techniques()))
    assert code == 2
    assert out == ""
    assert (
        "the bundle codes 2 modality/technique pairs: VMAT (SNOMED 1156530009 with photons); 3DCRT (SNOMED "
        "1162782007 with electrons) (accepted: --technique T" in err
    )
    code, _, err = run_import("fhir", write(tmp_path, two_techniques()), "--technique", "IMRT")
    assert code == 2
    assert "--technique IMRT is none of the techniques the bundle codes" in err


def test_an_in_progress_course_with_end_is_taken_with_a_warning(tmp_path: Path) -> None:
    b = bundle()
    summary(b)["status"] = "in-progress"
    code, out, err = run_import("fhir", write(tmp_path, b), "--end", "2015-01-14")
    assert code == 0, err
    assert yaml.safe_load(out)["end"] == "2015-01-14"
    assert "the course's status is 'in-progress'; taken as ended on 2015-01-14 as --end says" in err


def test_every_problem_of_a_bundle_in_one_run(tmp_path: Path) -> None:
    b = two_techniques()
    summary(b)["status"] = "in-progress"
    extra = copy.deepcopy(summary(b)["extension"][4])
    extra["extension"][0]["valueReference"]["display"] = "T9 vertebra"
    extra["extension"][1]["valueQuantity"]["value"] = 2000
    summary(b)["extension"].append(extra)
    code, _, err = run_import("fhir", write(tmp_path, b))
    assert code == 2
    for expected in (
        "status 'in-progress': the course is not finished",
        "the bundle codes 2 modality/technique pairs",
        "the volumes received different doses",
    ):
        assert expected in err


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
        twin["resource"]["identifier"][0]["value"] = "C2_T8"
        b["entry"].append(twin)
    elif case == "unknown-course-id":
        return ["fhir", write(tmp_path, b), "--course-id", "C9"]
    elif case == "relative-unit":
        course["extension"][3]["extension"][1]["valueQuantity"].update(unit="%", code="%")
    elif case == "in-progress":
        course["status"] = "in-progress"
        del course["performedPeriod"]["end"]
    elif case == "no-end":
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
    elif case == "deeply-nested":
        (tmp_path / "deep.json").write_text(
            '{"resourceType": "Bundle", "entry": ' + "[" * 100_000 + "]" * 100_000 + "}"
        )
        return ["fhir", str(tmp_path / "deep.json")]
    elif case == "nested-extensions":
        inner: dict[str, Any] = {"url": "x", "valueBoolean": True}
        for _ in range(200):
            inner = {"url": "x", "extension": [inner]}
        course["extension"].append(inner)
    elif case == "unknown-resource-type":
        b["entry"].append({"resource": {"resourceType": "Frobnicator", "id": "f1"}})
    elif case == "entered-in-error":
        course["status"] = "entered-in-error"
    return ["fhir", write(tmp_path, b)]


GALLERY = {
    "not-json": "not JSON",
    "not-a-bundle": "is 'Procedure', not a Bundle",
    "invalid-resource": "DateTime value string does not match spec regex",
    "no-course": "no RadiotherapyCourseSummary (Procedure)",
    "two-courses": "2 courses: 'course-2015', 'course-2017' (accepted: --course-id ID)",
    "unknown-course-id": "no RadiotherapyCourseSummary (Procedure) with id 'C9'",
    "relative-unit": "dose unit '%' is not an absolute dose unit",
    "in-progress": "Procedure.course-2015.status: status 'in-progress': the course is not finished, and its doses are those delivered so far (accepted: the completed course summary; if the course ended early and its status was not updated, --end YYYY-MM-DD says when",
    "no-end": "the course has no end date (status 'completed')",
    "volumes-differ": "different doses: 'T8 vertebra' 30 Gy / 10 fx; 'T9 vertebra' 20 Gy / 10 fx",
    "unknown-technique": "the input does not give the course's technique",
    "technique-conflict": "Procedure.course-2015.technique: --technique IMRT is none of the techniques the bundle codes: 3DCRT (SNOMED 1162782007 with photons)",
    "missing-file": "absent.json: (document): file not found",
    "deeply-nested": "deep.json: (document): JSON nested more than 64 levels deep",
    "nested-extensions": "bundle.json: (document): JSON nested more than 64 levels deep",
    "unknown-resource-type": "bundle.json: entry[3].resource.resourceType: 'Frobnicator' is not a FHIR R4 resource type",
    "entered-in-error": "Procedure.course-2015.status: status 'entered-in-error': the record was entered in error",
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
    assert (
        "technique code http://snomed.info/sct#1156529004 (un-encoded technique) with photons has no counterpart"
        in err
    )
    assert "error: " in err
    assert err.index("warning: ") < err.index("error: ")
