"""The documented flow (docs/importing.md), commands only: a FHIR bundle and two Eclipse exports → a case → a
verdict; and `reirrad case new` / `reirrad case check` on their own, with their refusals."""

from __future__ import annotations

import re

from pathlib import Path

import pytest
import yaml
from importer_factories import axis, cylinder, write_rtdose, write_rtplan, write_rtstruct
from importer_helpers import DATA, run_reirrad
from reirrad.case import load_case

PLANES = [100 + 2.5 * i for i in range(16)]
BUNDLE = DATA / "fhir_course_summary_bundle.json"
PRIOR_DVH = DATA / "eclipse_cumulative_cgy.txt"
SBRT_DVH = DATA / "eclipse_sbrt_plan_cgy.txt"


def ok(tmp_path: Path, out_name: str | None, *argv: str) -> str:
    """Run a command as the docs show it; its stdout written to out_name, as `> out_name` would."""
    code, out, err = run_reirrad(*argv)
    assert code == 0, err
    if out_name:
        (tmp_path / out_name).write_text(out, encoding="utf-8")
    return out


def documented_flow(tmp_path: Path) -> str:
    """docs/importing.md, 'End to end', step by step."""
    prior_course = str(tmp_path / "prior-course.yaml")
    prior_doses = str(tmp_path / "prior-doses.yaml")
    planned = str(tmp_path / "planned.yaml")
    ok(tmp_path, "prior-course.yaml", "import", "fhir", str(BUNDLE))
    ok(tmp_path, "prior-doses.yaml", "import", "dvh", str(PRIOR_DVH), "--course", prior_course)
    ok(
        tmp_path,
        "planned.yaml",
        "import", "dvh", str(SBRT_DVH), "--technique", "SBRT", "--fractions", "3", "--start", "2016-09-15",
        "--planned",
    )  # fmt: skip
    ok(
        tmp_path,
        "case.yaml",
        "case", "new", "--id", "t8-reirr-001", "--level", "T8", "--bilsky", "1b", "--sins", "7",
        "--recurrence", "in_field", "--prior", prior_course, prior_doses, "--planned", planned,
    )  # fmt: skip
    return str(tmp_path / "case.yaml")


def test_from_a_fhir_bundle_and_two_eclipse_exports_to_a_verdict(tmp_path: Path) -> None:
    case_file = documented_flow(tmp_path)
    case = load_case(case_file)
    prior = case.prior_courses[0]
    assert (str(prior.start), str(prior.end), prior.technique) == ("2015-01-05", "2015-01-16", "3DCRT")
    assert prior.dose_gy("SpinalCord", "D0.03cc") == pytest.approx(29.55)
    assert case.planned_course.dose_gy("SpinalCord", "Dmax") == pytest.approx(12.0)
    assert case.planned_course.ptv_high_dmin == pytest.approx(22.5)
    text = Path(case_file).read_text(encoding="utf-8")
    assert "  # from " in text
    assert "prior-course.yaml + " in text
    assert "#   FHIR RadiotherapyCourseSummary (Procedure) 'course-2015'." in text
    assert "ptv_high_dmin from the 'min dose [cgy]' line" in text
    checked = ok(tmp_path, None, "case", "check", case_file)
    assert (
        checked
        == f"{case_file}: valid: case 't8-reirr-001', 1 prior course(s), planned SBRT 27 Gy in 3 fraction(s)\n"
    )
    report = ok(tmp_path, None, "evaluate", case_file, "--as-of", "2025-06-01")
    assert "Policies: hytec: pass; nelson: pass; conus-bed3: pass" in report
    assert re.search(r"coverage  ptv-high-dmin  \(case\) +22\.50 Gy  ≥ 22\.2 Gy  \+0\.30 Gy \(\+1\.4 %\) +pass", report)


def test_a_planned_course_from_dicom_joins_the_same_way(tmp_path: Path) -> None:
    grid = axis(-20, 20, 2.5)
    write_rtdose(tmp_path / "dose.dcm", lambda x, y, z: 8 + 0.5 * x, x=grid, y=grid, z=axis(90, 150, 2.5))
    write_rtstruct(tmp_path / "rs.dcm", {"SpinalCord": cylinder(5, PLANES)})
    write_rtplan(tmp_path / "plan.dcm", fractions=1, target_doses=[24.0])
    ok(
        tmp_path,
        "planned.yaml",
        "import", "dicom", "--rtdose", str(tmp_path / "dose.dcm"), "--rtstruct", str(tmp_path / "rs.dcm"),
        "--rtplan", str(tmp_path / "plan.dcm"), "--technique", "SBRT", "--start", "2016-09-15", "--planned",
    )  # fmt: skip
    ok(
        tmp_path,
        "prior.yaml",
        "import", "dvh", str(PRIOR_DVH), "--technique", "3DCRT", "--fractions", "10", "--start", "2015-01-05",
        "--end", "2015-01-16",
    )  # fmt: skip
    out = ok(
        tmp_path,
        "case.yaml",
        "case", "new", "--id", "flow-test", "--level", "T8", "--prior", str(tmp_path / "prior.yaml"),
        "--planned", str(tmp_path / "planned.yaml"),
    )  # fmt: skip
    case = load_case(tmp_path / "case.yaml")
    assert case.planned_course.dose_gy("SpinalCord", "Dmax") == pytest.approx(10.5)
    assert yaml.safe_load(out)["planned_course"]["prescription"] == {"dose": 24.0, "fractions": 1}


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


PRIOR = (
    "start: '2015-01-05'\nend: '2015-01-16'\ntechnique: 3DCRT\nprescription: {dose: 30, fractions: 10}\n"
    "structures:\n  SpinalCord: {Dmax: 30.0}\n"
)
PLANNED = (
    "start: '2016-09-15'\ntechnique: SBRT\nprescription: {dose: 24, fractions: 2}\n"
    "structures:\n  SpinalCord: {Dmax: 11.0}\n"
)


def refused(*argv: str) -> str:
    code, out, err = run_reirrad(*argv)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    return err


def test_two_parts_of_a_course_that_disagree_are_refused_with_both_files(tmp_path: Path) -> None:
    prior = write(tmp_path, "prior.yaml", PRIOR)
    other = write(
        tmp_path,
        "doses.yaml",
        "prescription: {dose: 30, fractions: 5}\nstructures:\n  ThecalSac: {Dmax: 31.0}\n",
    )
    planned = write(tmp_path, "planned.yaml", PLANNED)
    err = refused("case", "new", "--id", "c1", "--level", "T8", "--prior", prior, other, "--planned", planned)
    assert f"error: {other}:1: prescription.fractions: 5 here, but {prior} (line 4) gives 10" in err


def test_parts_merge_key_by_key(tmp_path: Path) -> None:
    prior = write(tmp_path, "prior.yaml", PRIOR)
    extra = write(
        tmp_path, "extra.yaml", "tolerance: well_tolerated\nstructures:\n  ThecalSac: {Dmax: 31.0}\n"
    )
    planned = write(tmp_path, "planned.yaml", PLANNED)
    out = ok(
        tmp_path,
        None,
        "case",
        "new",
        "--id",
        "c1",
        "--level",
        "T8",
        "--prior",
        prior,
        extra,
        "--planned",
        planned,
    )
    course = yaml.safe_load(out)["prior_courses"][0]
    assert course["tolerance"] == "well_tolerated"
    assert course["structures"] == {"SpinalCord": {"Dmax": 30.0}, "ThecalSac": {"Dmax": 31.0}}


def test_validation_problems_are_placed_in_the_part_that_gave_the_value(tmp_path: Path) -> None:
    """A prior course imported without --planned given as the planned course, a planned start before the prior
    course ends, a level that does not exist: every problem in one run, each in its file."""
    prior = write(tmp_path, "prior.yaml", PRIOR.replace("2015-01-16", "2016-10-01"))
    planned = write(tmp_path, "planned.yaml", PLANNED + "end: '2016-09-20'\n")
    err = refused("case", "new", "--id", "c1", "--level", "T13", "--prior", prior, "--planned", planned)
    assert f"{planned}:6: end: " in err
    assert "reirrad case new: lesion.levels[0]: " in err
    assert "T13" in err


def test_the_planned_course_must_start_after_the_prior_one_ends(tmp_path: Path) -> None:
    prior = write(tmp_path, "prior.yaml", PRIOR.replace("2015-01-16", "2016-10-01"))
    planned = write(tmp_path, "planned.yaml", PLANNED)
    err = refused("case", "new", "--id", "c1", "--level", "T8", "--prior", prior, "--planned", planned)
    assert (
        f"{planned}:1: start: the planned course starts (2016-09-15) before prior course 1 ends (2016-10-01)"
        in err
    )


def test_a_part_that_is_not_a_course_is_refused(tmp_path: Path) -> None:
    listed = write(tmp_path, "list.yaml", "- 1\n- 2\n")
    planned = write(tmp_path, "planned.yaml", PLANNED)
    err = refused("case", "new", "--id", "c1", "--level", "T8", "--prior", listed, "--planned", planned)
    assert f"{listed}: (document): is a list, not a mapping" in err


def test_case_check_lists_valid_files_and_every_problem_of_the_others(tmp_path: Path) -> None:
    planned = write(tmp_path, "planned.yaml", PLANNED)
    good = ok(tmp_path, "good.yaml", "case", "new", "--id", "c1", "--level", "T8", "--planned", planned)
    assert good.startswith("# Assembled by reirrad case new")
    bad = write(
        tmp_path,
        "bad.yaml",
        (tmp_path / "good.yaml")
        .read_text(encoding="utf-8")
        .replace("case_id: c1", "case_id: 'c 1'")
        .replace("technique: SBRT", "technique: SBRT2"),
    )
    code, out, err = run_reirrad("case", "check", str(tmp_path / "good.yaml"), bad)
    assert code == 2
    assert (
        out
        == f"{tmp_path / 'good.yaml'}: valid: case 'c1', 0 prior course(s), planned SBRT 24 Gy in 2 fraction(s)\n"
    )
    assert f"{bad}:" in err
    assert "case_id" in err
    assert "planned_course.technique" in err
