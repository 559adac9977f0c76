"""`reirrad import dicom`: analytic phantoms built in code, pydicom's RT files, a bad-input gallery."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from importer_factories import (
    OTHER_FOR_UID,
    PATIENT_ID,
    PATIENT_NAME,
    axis,
    cylinder,
    write_beams_record,
    write_rtdose,
    write_rtplan,
    write_rtstruct,
    write_summary_record,
)
from importer_helpers import case_with, run_import
from pydicom.data import get_testdata_file
from reirrad.importers.dvhcalc import metrics_from_samples


def tolerance(gradient_gy_per_mm: float) -> float:
    """Stated tolerance of the near-max method at 0.5 mm (docs/importing.md): 0.025 mm × gradient + 5 mGy."""
    return 0.025 * gradient_gy_per_mm + 0.005


X = axis(-20, 20, 2.5)
Z = axis(90, 150, 2.5)
PLANES = [100 + 2.5 * i for i in range(16)]  # slabs 98.75 … 141.25 mm: a 40 mm long cylinder
LENGTH = 40.0
COURSE = ["--technique", "3DCRT", "--start", "2015-01-05", "--end", "2015-01-16"]


def segment_area(radius: float, x0: float) -> float:
    """Area of the part of a disc of this radius with x ≥ x0."""
    x0 = max(-radius, min(radius, x0))
    return radius**2 * math.acos(x0 / radius) - x0 * math.sqrt(radius**2 - x0**2)


def x_threshold(radius: float, volume_mm3: float, length: float = LENGTH) -> float:
    """The x0 for which the cylinder's part with x ≥ x0 has the given volume (bisection on segment_area)."""
    lo, hi = -radius, radius
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if segment_area(radius, mid) * length > volume_mm3 else (lo, mid)
    return (lo + hi) / 2


def lateral_gradient_expected(a: float, b: float, radius: float) -> dict[str, float]:
    """Dose a + b·x over a cylinder of this radius on z: Dmax at x = R, D_v where the segment holds v"""
    return {
        "Dmax": a + b * radius,
        **{
            m: a + b * x_threshold(radius, v * 1000)
            for m, v in (("D0.03cc", 0.03), ("D0.1cc", 0.1), ("D1cc", 1.0))
        },
    }


def phantom(
    tmp_path: Path, dose, radius: float = 5.0, name: str = "Cord", planes=PLANES, **dose_kw
) -> list[str]:
    write_rtdose(tmp_path / "dose.dcm", dose, x=X, y=X, z=Z, **dose_kw)
    write_rtstruct(tmp_path / "rs.dcm", {name: cylinder(radius, planes), "PTV_T8": cylinder(15, planes)})
    return ["dicom", "--rtdose", str(tmp_path / "dose.dcm"), "--rtstruct", str(tmp_path / "rs.dcm")]


def imported(argv: list[str]) -> dict:
    code, out, err = run_import(*argv)
    assert code == 0, err
    return yaml.safe_load(out)


def test_uniform_dose_gives_the_dose_everywhere(tmp_path: Path) -> None:
    course = imported(
        [
            *phantom(tmp_path, lambda x, y, z: np.full(x.shape, 20.0)),
            *COURSE,
            "--prescription",
            "30",
            "--fractions",
            "10",
        ]
    )
    assert course["structures"]["SpinalCord"] == {"Dmax": 20.0, "D0.03cc": 20.0, "D0.1cc": 20.0, "D1cc": 20.0}


@pytest.mark.parametrize(
    ("radius", "a", "b"), [(5.0, 10.0, 1.0), (2.0, 12.0, 2.0)], ids=["cord-R5", "thin-R2-steep"]
)
def test_lateral_gradient_matches_the_analytic_dvh(tmp_path: Path, radius: float, a: float, b: float) -> None:
    course = imported(
        [
            *phantom(tmp_path, lambda x, y, z: a + b * x, radius=radius),
            *COURSE,
            "--prescription",
            "30",
            "--fractions",
            "10",
        ]
    )
    got = course["structures"]["SpinalCord"]
    expected = lateral_gradient_expected(a, b, radius)
    for metric, value in expected.items():
        if radius**2 * math.pi * LENGTH / 1000 < 1.0 and metric == "D1cc":
            assert metric not in got
            continue
        assert got[metric] == pytest.approx(value, abs=tolerance(b)), metric


def test_longitudinal_gradient_matches_the_analytic_dvh(tmp_path: Path) -> None:
    radius, a, b = 5.0, 10.0, 0.25
    top = PLANES[-1] + 1.25
    course = imported(
        [
            *phantom(tmp_path, lambda x, y, z: a + b * (z - 90), radius=radius),
            *COURSE,
            "--prescription",
            "30",
            "--fractions",
            "10",
        ]
    )
    got = course["structures"]["SpinalCord"]
    area = math.pi * radius**2
    assert got["Dmax"] == pytest.approx(a + b * (top - 90), abs=tolerance(b))
    for metric, v in (("D0.03cc", 0.03), ("D0.1cc", 0.1), ("D1cc", 1.0)):
        assert got[metric] == pytest.approx(a + b * (top - v * 1000 / area - 90), abs=tolerance(b)), metric


def test_output_is_a_valid_prior_course_and_says_how_it_was_made(tmp_path: Path) -> None:
    code, out, err = run_import(
        *phantom(tmp_path, lambda x, y, z: 10 + x), *COURSE, "--prescription", "30", "--fractions", "10"
    )
    assert code == 0
    case = case_with(prior=out)
    assert case.prior_courses[0].dose_gy("SpinalCord", "Dmax") == pytest.approx(15.0)
    assert (
        "# SpinalCord is ROI 'Cord' (entry 'Cord' under SpinalCord of the bundled structure map "
        "(reirrad/importers/structure_map.yaml))." in out
    )
    assert "no histogram bins" in out
    assert "'PTV_T8'" in err


def test_plan_and_records_give_prescription_fractions_and_dates(tmp_path: Path) -> None:
    argv = phantom(tmp_path, lambda x, y, z: np.full(x.shape, 3.0), summation="FRACTION")
    write_rtplan(tmp_path / "plan.dcm", fractions=10, target_doses=[30.0])
    records = [
        write_beams_record(tmp_path / f"rec{i}.dcm", treatment_date=d, fraction=i)
        for i, d in ((1, "20150105"), (10, "20150116"), (5, "20150109"))
    ]
    code, out, err = run_import(
        *argv,
        "--rtplan",
        str(tmp_path / "plan.dcm"),
        "--technique",
        "3DCRT",
        *[x for r in records for x in ("--record", str(r))],
    )
    assert code == 0, err
    course = yaml.safe_load(out)
    assert course["start"] == "2015-01-05"
    assert course["end"] == "2015-01-16"
    assert course["prescription"] == {"dose": 30.0, "fractions": 10}
    assert course["structures"]["SpinalCord"]["Dmax"] == pytest.approx(30.0)
    assert "multiplied by 10 fractions" in out
    case_with(prior=out)


def test_summary_record_with_fewer_fractions_warns(tmp_path: Path) -> None:
    argv = phantom(tmp_path, lambda x, y, z: np.full(x.shape, 30.0))
    write_rtplan(tmp_path / "plan.dcm", fractions=10, target_doses=[30.0])
    write_summary_record(tmp_path / "sum.dcm", first="20150105", last="20150112", delivered=6)
    code, out, err = run_import(
        *argv,
        "--rtplan",
        str(tmp_path / "plan.dcm"),
        "--record",
        str(tmp_path / "sum.dcm"),
        "--technique",
        "3DCRT",
    )
    assert code == 0, err
    assert yaml.safe_load(out)["end"] == "2015-01-12"
    assert "6 of 10 planned fractions delivered" in err


def test_planned_course_has_no_end_and_validates(tmp_path: Path) -> None:
    argv = phantom(tmp_path, lambda x, y, z: 5 + 0.2 * x)
    write_rtplan(tmp_path / "plan.dcm", fractions=1, target_doses=[24.0])
    code, out, err = run_import(
        *argv,
        "--rtplan",
        str(tmp_path / "plan.dcm"),
        "--technique",
        "SBRT",
        "--start",
        "2016-09-15",
        "--planned",
    )
    assert code == 0, err
    assert "end" not in yaml.safe_load(out)
    assert case_with(planned=out).planned_course.fractions == 1


def test_no_patient_identity_in_output_or_messages(tmp_path: Path) -> None:
    argv = phantom(tmp_path, lambda x, y, z: 10 + x)
    ok = run_import(*argv, *COURSE, "--prescription", "30", "--fractions", "10")
    bad = run_import(*argv, "--technique", "3DCRT")
    for text in (*ok[1:], *bad[1:]):
        assert PATIENT_NAME.split("^")[0] not in text
        assert PATIENT_ID not in text


def test_pydicom_rt_plan_gives_prescription_and_fractions(tmp_path: Path) -> None:
    """pydicom's rtplan.dcm: 30 fractions, target prescription 30.826 Gy; with a phantom dose of that plan."""
    plan = get_testdata_file("rtplan.dcm")
    argv = phantom(tmp_path, lambda x, y, z: np.full(x.shape, 20.0), plan_uid=None)
    course = imported([*argv, "--rtplan", plan, *COURSE])
    assert course["prescription"] == {"dose": 30.83, "fractions": 30}


def test_metrics_of_samples_smaller_than_the_volume_are_left_out() -> None:
    values = metrics_from_samples(np.array([3.0, 2.0, 1.0]), np.full(3, 0.02))
    assert values["Dmax"] == 3.0
    assert values["D0.03cc"] == pytest.approx(2.0)
    assert values["D0.1cc"] is None
    assert values["D1cc"] is None


# ---- bad-input gallery ---------------------------------------------------------------------------------


def _mutate(path: str, change) -> None:
    """Read a DICOM file written by the factories, change it, write it back (pydicom's warnings about the
    non-conforming values being written are the point here, not a problem)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        change(ds)
        ds.save_as(path)


def _set_contour(ds, values: list[str], roi: int = 0, contour: int = 0) -> None:
    ds.ROIContourSequence[roi].ContourSequence[contour].ContourData = values


def _patch_bytes(path: str, old: bytes, new: bytes) -> None:
    """Replace bytes in a file, keeping its length: a text value where DICOM wants a number, as on disk."""
    assert len(old) == len(new)
    data = Path(path).read_bytes()
    assert data.count(old) == 1, old
    Path(path).write_bytes(data.replace(old, new))


def _gallery(tmp_path: Path, case: str) -> list[str]:
    uniform = lambda x, y, z: np.full(x.shape, 20.0)  # noqa: E731
    course = [*COURSE, "--prescription", "30", "--fractions", "10"]
    if case == "relative-units":
        return [*phantom(tmp_path, uniform, units="RELATIVE"), *course]
    if case == "frame-of-reference":
        argv = phantom(tmp_path, uniform)
        write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, PLANES)}, for_uid=OTHER_FOR_UID)
        return [*argv, *course]
    if case == "not-covered":
        argv = phantom(tmp_path, uniform)
        write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, [140 + 2.5 * i for i in range(8)])})
        return [*argv, *course]
    if case == "missing-file":
        return [
            "dicom",
            "--rtdose",
            str(tmp_path / "nope.dcm"),
            "--rtstruct",
            str(tmp_path / "rs.dcm"),
            *course,
        ]
    if case == "record-is-a-pipe":
        os.mkfifo(tmp_path / "rec.dcm")
        return [*phantom(tmp_path, uniform), "--record", str(tmp_path / "rec.dcm"), *course]
    if case == "truncated-pixel-data":
        argv = phantom(tmp_path, uniform)
        _mutate(argv[2], lambda ds: setattr(ds, "PixelData", ds.PixelData[: len(ds.PixelData) // 2]))
        return [*argv, *course]
    if case == "missing-roi-number":
        argv = phantom(tmp_path, uniform)
        _mutate(argv[4], lambda ds: delattr(ds.StructureSetROISequence[0], "ROINumber"))
        return [*argv, *course]
    if case == "nan-in-contour":
        argv = phantom(tmp_path, uniform)
        _mutate(argv[4], lambda ds: _set_contour(ds, ["nan", "0", "110", "1", "0", "110", "0", "1", "110"]))
        return [*argv, *course]
    if case == "text-in-contour":
        argv = phantom(tmp_path, uniform)
        _mutate(
            argv[4], lambda ds: _set_contour(ds, ["7654.321", "0", "110", "1", "0", "110", "0", "1", "110"])
        )
        _patch_bytes(argv[4], b"7654.321", b"abcdefgh")
        return [*argv, *course]
    if case == "two-value-contour":
        argv = phantom(tmp_path, uniform)
        _mutate(argv[4], lambda ds: _set_contour(ds, ["1.0", "2.0"]))
        return [*argv, *course]
    if case == "text-in-dose-scaling":
        argv = phantom(tmp_path, uniform, scaling=1.234567e-5)
        _patch_bytes(argv[2], b"1.234567e-05", b"not-a-number")
        return [*argv, *course]
    if case == "nan-in-dose-offsets":
        argv = phantom(tmp_path, uniform)
        _mutate(
            argv[2],
            lambda ds: setattr(ds, "GridFrameOffsetVector", ["0", "nan", *ds.GridFrameOffsetVector[2:]]),
        )
        return [*argv, *course]
    if case == "swapped-files":
        argv = phantom(tmp_path, uniform)
        return ["dicom", "--rtdose", argv[4], "--rtstruct", argv[2], *course]
    if case == "not-dicom":
        (tmp_path / "notes.txt").write_text("hello\n")
        argv = phantom(tmp_path, uniform)
        return ["dicom", "--rtdose", str(tmp_path / "notes.txt"), "--rtstruct", argv[4], *course]
    if case == "named-roi-absent":
        return [*phantom(tmp_path, uniform), *course, "--roi", "SpinalCord=Cord 2"]
    if case == "unmapped-neural-roi":
        return [*phantom(tmp_path, uniform, name="Cord_new"), *course]
    if case == "no-usable-roi":
        return [*phantom(tmp_path, uniform, name="Liver"), *course]
    if case == "two-rois-one-name":
        argv = phantom(tmp_path, uniform)
        write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, PLANES), "Spinal Cord": cylinder(5, PLANES)})
        return [*argv, *course]
    if case == "beam-dose":
        return [*phantom(tmp_path, uniform, summation="BEAM"), *course]
    if case == "fraction-dose-without-fractions":
        return [*phantom(tmp_path, uniform, summation="FRACTION"), *COURSE, "--prescription", "30"]
    if case == "dose-of-another-plan":
        argv = phantom(tmp_path, uniform, plan_uid="1.2.826.0.1.3680043.8.498.99")
        write_rtplan(tmp_path / "plan.dcm", fractions=10, target_doses=[30.0])
        return [*argv, "--rtplan", str(tmp_path / "plan.dcm"), *COURSE]
    if case == "fractions-contradict-plan":
        argv = phantom(tmp_path, uniform)
        write_rtplan(tmp_path / "plan.dcm", fractions=10, target_doses=[30.0])
        return [*argv, "--rtplan", str(tmp_path / "plan.dcm"), *COURSE, "--fractions", "5"]
    if case == "prescription-not-a-target":
        argv = phantom(tmp_path, uniform)
        write_rtplan(tmp_path / "plan.dcm", fractions=1, target_doses=[14.0, 11.31])
        return [*argv, "--rtplan", str(tmp_path / "plan.dcm"), *COURSE, "--prescription", "20"]
    if case == "two-target-doses":
        argv = phantom(tmp_path, uniform)
        write_rtplan(tmp_path / "plan.dcm", fractions=5, target_doses=[30.0, 35.0])
        return [*argv, "--rtplan", str(tmp_path / "plan.dcm"), *COURSE]
    if case == "no-dates":
        return [
            *phantom(tmp_path, uniform),
            "--technique",
            "3DCRT",
            "--prescription",
            "30",
            "--fractions",
            "10",
        ]
    if case == "record-without-date":
        argv = phantom(tmp_path, uniform)
        write_beams_record(tmp_path / "rec.dcm", treatment_date=None, fraction=1)
        return [
            *argv,
            "--record",
            str(tmp_path / "rec.dcm"),
            "--technique",
            "3DCRT",
            "--prescription",
            "30",
            "--fractions",
            "10",
        ]
    if case == "single-plane-roi":
        argv = phantom(tmp_path, uniform)
        write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, [110.0])})
        return [*argv, *course]
    raise AssertionError(case)


GALLERY = {
    "relative-units": "relative dose (DoseUnits RELATIVE) cannot give doses in Gy",
    "frame-of-reference": "FrameOfReferenceUID mismatch",
    "not-covered": "the dose grid does not cover ROI 'Cord' (SpinalCord): its contours, each standing for a slab as thick as the plane spacing, reach z 158.8 mm, 7.5 mm above the grid's edge at 151.2 mm",
    "missing-file": "nope.dcm: (document): file not found",
    "record-is-a-pipe": "rec.dcm: (document): is not a regular file (a device, pipe or socket)",
    "truncated-pixel-data": "dose.dcm: PixelData: the dose values cannot be read: The number of bytes of pixel data is less than expected (14450 vs 28900 bytes)",
    "missing-roi-number": "rs.dcm: StructureSetROISequence[0].ROINumber: missing",
    "nan-in-contour": "rs.dcm: ROIContourSequence[0].ContourSequence[0].ContourData: holds a value that is not a finite number",
    "text-in-contour": "rs.dcm: ROIContourSequence[0].ContourSequence[0].ContourData: holds text where DICOM wants numbers",
    "two-value-contour": "rs.dcm: ROIContourSequence[0].ContourSequence[0].ContourData: 2 numbers: not (x, y, z) triples",
    "text-in-dose-scaling": "dose.dcm: DoseGridScaling: holds text where DICOM wants numbers",
    "nan-in-dose-offsets": "dose.dcm: GridFrameOffsetVector: holds a value that is not a finite number",
    "swapped-files": "given as --rtdose but is RT Structure Set",
    "not-dicom": "notes.txt: (document): given as --rtdose but is not a DICOM object",
    "named-roi-absent": "there is no ROI named 'Cord 2'",
    "unmapped-neural-roi": "ROI 'Cord_new' is not in the bundled structure map",
    "no-usable-roi": "no ROI maps to a structure reirrad uses",
    "two-rois-one-name": "ROIs 'Cord' and 'Spinal Cord' both map to SpinalCord",
    "beam-dose": "DoseSummationType 'BEAM' is not the dose of a whole course",
    "fraction-dose-without-fractions": "the dose is of one fraction and the number of fractions is unknown",
    "dose-of-another-plan": "the dose was computed for another plan than --rtplan",
    "fractions-contradict-plan": "plan.dcm: fractions: --fractions 5 contradicts the RT Plan, which gives 10",
    "prescription-not-a-target": "plan.dcm: DoseReferenceSequence: --prescription 20 is none of the plan's target doses (11.31, 14 Gy)",
    "two-target-doses": "the plan prescribes 2 different target doses (30, 35 Gy)",
    "no-dates": "the input does not give the course's start (accepted: --start YYYY-MM-DD)",
    "record-without-date": "the record gives no treatment date",
    "single-plane-roi": "ROI 'Cord' (SpinalCord) has closed contours on 1 plane",
}


@pytest.mark.parametrize("case", list(GALLERY))
def test_bad_input_is_refused_with_a_message(tmp_path: Path, case: str) -> None:
    code, out, err = run_import(*_gallery(tmp_path, case))
    assert code == 2
    assert out == ""
    assert GALLERY[case] in err
    assert "Traceback" not in err


def test_pydicom_relative_dose_and_other_frame_are_both_reported() -> None:
    """pydicom's rtdose.dcm (RELATIVE) with rtstruct.dcm (another frame of reference), ROI chosen by --roi."""
    code, _, err = run_import(
        "dicom",
        "--rtdose",
        get_testdata_file("rtdose.dcm"),
        "--rtstruct",
        get_testdata_file("rtstruct.dcm"),
        "--roi",
        "SpinalCord=patient",
        *COURSE,
    )
    assert code == 2
    assert "DoseUnits RELATIVE" in err
    assert "FrameOfReferenceUID mismatch" in err


def test_pydicom_structure_set_has_no_cord() -> None:
    code, _, err = run_import(
        "dicom",
        "--rtdose",
        get_testdata_file("rtdose.dcm"),
        "--rtstruct",
        get_testdata_file("rtstruct.dcm"),
        *COURSE,
    )
    assert code == 2
    assert "no ROI maps to a structure reirrad uses (ROIs: 'patient', 'Isocenter 1', 'Isocenter 2')" in err


def test_pydicom_warnings_are_counted_not_quoted(tmp_path: Path) -> None:
    argv = phantom(tmp_path, lambda x, y, z: np.full(x.shape, 20.0))
    long_name = "PTV_" + "x" * 70  # LO allows 64 characters: pydicom warns when the value is read
    with pytest.warns(UserWarning, match="exceeds the maximum length"):
        write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, PLANES), long_name: cylinder(15, PLANES)})
    code, out, err = run_import(*argv, *COURSE, "--prescription", "30", "--fractions", "10")
    assert code == 0, err
    assert "pydicom reported" in err
    assert "exceeds the maximum" not in out + err


def test_a_prescription_matching_one_target_dose_is_taken(tmp_path: Path) -> None:
    argv = phantom(tmp_path, lambda x, y, z: np.full(x.shape, 10.0))
    write_rtplan(tmp_path / "plan.dcm", fractions=1, target_doses=[14.0, 11.31])
    course = imported([*argv, "--rtplan", str(tmp_path / "plan.dcm"), *COURSE, "--prescription", "11.31"])
    assert course["prescription"] == {"dose": 11.31, "fractions": 1}


def test_every_missing_option_and_every_file_problem_in_one_run(tmp_path: Path) -> None:
    """No course option at all, and an ROI outside the grid: one run names all five problems."""
    argv = phantom(tmp_path, lambda x, y, z: np.full(x.shape, 20.0))
    write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, [140 + 2.5 * i for i in range(8)])})
    code, out, err = run_import(*argv)
    assert code == 2
    assert out == ""
    for expected in (
        "the dose grid does not cover ROI 'Cord'",
        "start: the input does not give the course's start",
        "end: the input does not give the course's end",
        "technique: the input does not give the course's technique",
        "prescription: the input does not give the course's prescription",
        "fractions: the input does not give the course's fractions",
    ):
        assert expected in err


def test_a_roi_ending_on_the_last_dose_plane_is_covered(tmp_path: Path) -> None:
    """The issue's case: dose planes and contours at z = … 149.9993 mm; rounding contour z to 0.01 mm put the
    last slab 0.0007 mm past the grid's edge, and the ROI was refused."""
    z = axis(90, 150, 2.5) - 0.0007
    write_rtdose(tmp_path / "dose.dcm", lambda x, y, zz: np.full(x.shape, 20.0), x=X, y=X, z=z)
    planes = [float(v) for v in z[-10:]]
    write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, planes)}, digits=10)
    argv = ["dicom", "--rtdose", str(tmp_path / "dose.dcm"), "--rtstruct", str(tmp_path / "rs.dcm")]
    course = imported([*argv, *COURSE, "--prescription", "30", "--fractions", "10"])
    assert course["structures"]["SpinalCord"]["Dmax"] == 20.0


def test_a_coverage_refusal_shows_the_shortfall_with_enough_digits(tmp_path: Path) -> None:
    """Contours every 2.7 mm up to the last dose plane (150 mm, spacing 2.5 mm): the end slab reaches 151.35 mm,
    0.10 mm past the grid's edge at 151.25 mm; the message must show numbers that differ."""
    write_rtdose(tmp_path / "dose.dcm", lambda x, y, zz: np.full(x.shape, 20.0), x=X, y=X, z=Z)
    planes = [150.0 - 2.7 * i for i in range(10)][::-1]
    write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, planes)})
    argv = ["dicom", "--rtdose", str(tmp_path / "dose.dcm"), "--rtstruct", str(tmp_path / "rs.dcm")]
    code, _, err = run_import(*argv, *COURSE, "--prescription", "30", "--fractions", "10")
    assert code == 2
    assert "reach z 151.35 mm, 0.10 mm above the grid's edge at 151.25 mm" in err


PRESCRIBED = [*COURSE, "--prescription", "30", "--fractions", "10"]


def test_a_resolution_too_fine_for_a_large_structure_is_refused_not_ignored(tmp_path: Path) -> None:
    """125 cm³ (R = 20 mm, 100 mm long) at --resolution 0.25: 10.2 million cells, over the limit of 4 million.
    It used to be coarsened to 0.315 mm in silence."""
    z = axis(90, 215, 2.5)
    write_rtdose(
        tmp_path / "dose.dcm",
        lambda x, y, zz: np.full(x.shape, 20.0),
        x=axis(-30, 30, 2.5),
        y=axis(-30, 30, 2.5),
        z=z,
    )
    write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(20, [100 + 2.5 * i for i in range(40)])})
    argv = ["dicom", "--rtdose", str(tmp_path / "dose.dcm"), "--rtstruct", str(tmp_path / "rs.dcm")]
    code, out, err = run_import(*argv, *PRESCRIBED, "--resolution", "0.25")
    assert code == 2
    assert out == ""
    assert (
        "ROI 'Cord' (SpinalCord), spanning x 40 mm, y 40 mm, z 100 mm, would need 10.2 million sample cells (limit 4 million) at 0.25 mm"
        in err
    )
    assert "(accepted: --resolution 0.36 or coarser)" in err


def test_a_resolution_within_the_limits_is_used_as_given(tmp_path: Path) -> None:
    course_out = run_import(*phantom(tmp_path, lambda x, y, z: 10 + x), *PRESCRIBED, "--resolution", "0.25")
    assert course_out[0] == 0, course_out[2]
    assert "(0.25 mm cells)" in course_out[1]


def test_without_resolution_a_structure_over_the_limits_is_sampled_coarser_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reirrad.importers import dvhcalc

    monkeypatch.setattr(dvhcalc, "MAX_CELLS", 10_000)
    code, out, err = run_import(*phantom(tmp_path, lambda x, y, z: np.full(x.shape, 20.0)), *PRESCRIBED)
    assert code == 0, err
    assert "would need 0.032 million sample cells (limit 0.01 million) at 0.5 mm: sampled at 0.84 mm" in err
    assert "(0.84 mm cells)" in out
    assert yaml.safe_load(out)["structures"]["SpinalCord"]["Dmax"] == 20.0


def test_a_crafted_contour_cannot_take_the_memory(tmp_path: Path) -> None:
    """A sliver of a triangle 800 m long (no area) inside a dose grid of 2 voxels 1 km apart: counting the work
    first refuses it; it used to allocate a lattice over its bounding box until memory ran out."""
    wide = np.array([-5e5, 5e5])
    write_rtdose(
        tmp_path / "dose.dcm", lambda x, y, zz: np.full(x.shape, 20.0), x=wide, y=wide, z=np.array([0.0, 1e5])
    )
    sliver = np.array([[-4e5, 0.0], [4e5, 0.5], [4e5, 0.0]])
    write_rtstruct(tmp_path / "rs.dcm", {"Cord": [(100.0, sliver), (102.5, sliver)]})
    argv = ["dicom", "--rtdose", str(tmp_path / "dose.dcm"), "--rtstruct", str(tmp_path / "rs.dcm")]
    code, out, err = run_import(*argv, *PRESCRIBED)
    assert code == 2
    assert out == ""
    assert "ROI 'Cord' (SpinalCord), spanning x 800000 mm, y 0 mm, z 5 mm, would need" in err
    assert "(accepted: a structure that can be sampled at 2 mm (check its contours))" in err


def test_ptv_high_minimum_dose_of_a_planned_course(tmp_path: Path) -> None:
    """Dose 30 + x Gy; PTV_High a cylinder of R = 15 mm: its minimum, 15 Gy, lies on its surface at x = −15 mm."""
    write_rtdose(tmp_path / "dose.dcm", lambda x, y, z: 30 + x, x=X, y=X, z=Z)
    write_rtstruct(tmp_path / "rs.dcm", {"Cord": cylinder(5, PLANES), "PTV_High": cylinder(15, PLANES)})
    argv = ["dicom", "--rtdose", str(tmp_path / "dose.dcm"), "--rtstruct", str(tmp_path / "rs.dcm")]
    planned = ["--technique", "SBRT", "--start", "2016-09-15", "--prescription", "40", "--fractions", "5"]
    course = imported([*argv, *planned, "--planned"])
    assert course["ptv_high_dmin"] == pytest.approx(15.0, abs=tolerance(1.0))
    assert course["structures"]["SpinalCord"]["Dmax"] == pytest.approx(35.0, abs=tolerance(1.0))
    code, out, err = run_import(*argv, *COURSE, "--prescription", "40", "--fractions", "5")
    assert code == 0, err
    assert "ptv_high_dmin" not in yaml.safe_load(out)
