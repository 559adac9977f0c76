"""`reirrad import dvh`: Eclipse DVH exports with hand-computable DVHs, and a bad-input gallery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from importer_helpers import DATA, case_with, run_import

CUMULATIVE = DATA / "eclipse_cumulative_cgy.txt"
DIFFERENTIAL = DATA / "eclipse_differential_gy_plansum_cp1252.txt"
RELATIVE = DATA / "eclipse_relative_maxdose_cc.txt"
PRIOR_55 = ["--technique", "3DCRT", "--fractions", "25", "--start", "2020-03-02", "--end", "2020-04-03"]
PRIOR = ["--technique", "3DCRT", "--fractions", "10", "--start", "2015-01-05", "--end", "2015-01-16"]


def test_cumulative_cgy_percent_single_plan() -> None:
    """SpinalCord: 2.0 cm³, V = 100 % · (1 − D / 30 Gy): D_v = 30 Gy · (1 − v / 2 cm³); Max Dose 30 Gy."""
    code, out, err = run_import("dvh", str(CUMULATIVE), *PRIOR)
    assert code == 0, err
    course = yaml.safe_load(out)
    assert course["structures"] == {
        "SpinalCord": {"Dmax": 30.0, "D0.03cc": 29.55, "D0.1cc": 28.5, "D1cc": 15.0}
    }
    assert course["prescription"] == {"dose": 30.0, "fractions": 10}
    assert case_with(prior=out).prior_courses[0].dose_gy("SpinalCord", "D1cc") == pytest.approx(15.0)
    assert "'PTV_T8', 'Body'" in err


def test_differential_gy_plan_sum_in_cp1252() -> None:
    """Thecal Sac: 0.1 cm³/Gy from 0 to 20 Gy: V(D) = 0.1 · (20 − D) cm³, so D_v = 20 − 10 · v Gy."""
    assert b"\xb3" in DIFFERENTIAL.read_bytes()
    code, out, err = run_import(
        "dvh",
        str(DIFFERENTIAL),
        "--technique",
        "SBRT",
        "--fractions",
        "1",
        "--prescription",
        "16",
        "--start",
        "2016-09-15",
        "--planned",
    )
    assert code == 0, err
    course = yaml.safe_load(out)
    assert course["structures"] == {
        "ThecalSac": {"Dmax": 20.0, "D0.03cc": 19.7, "D0.1cc": 19.0, "D1cc": 10.0}
    }
    assert case_with(planned=out).planned_course.dose_gy("ThecalSac", "D0.03cc") == pytest.approx(19.7)


def test_cumulative_cm3_without_max_dose_uses_the_first_empty_row(tmp_path: Path) -> None:
    text = CUMULATIVE.read_text(encoding="utf-8").split("Structure: PTV_T8")[0]
    text = text.replace("Max Dose [cGy]: 3000.0\n", "").replace(
        "Ratio of Total Structure Volume [%]", "Structure Volume [cm³]"
    )
    rows = "".join(f"{d:10d}{d / 30:20.1f}{2 * (1 - d / 3000):30.4f}\n" for d in range(0, 3001, 100))
    head = text.split("Dose [cGy]   Relative dose")[0]
    (tmp_path / "cc.txt").write_text(
        head + "Dose [cGy]   Relative dose [%]   Structure Volume [cm³]\n" + rows, encoding="utf-8"
    )
    code, out, _ = run_import("dvh", str(tmp_path / "cc.txt"), *PRIOR)
    assert code == 0
    assert yaml.safe_load(out)["structures"]["SpinalCord"]["D0.1cc"] == 28.5
    assert "upper bound" in out


def test_cc_is_read_as_cm3_in_the_volume_line_and_the_volume_column(tmp_path: Path) -> None:
    """Eclipse writes `Volume [cc]` and `Structure Volume [cc]` in some versions and locales: cc is cm³."""
    text = CUMULATIVE.read_text(encoding="utf-8").replace("Volume [cm³]: 2.0", "Volume [cc]: 2.0")
    (tmp_path / "percent.txt").write_text(text, encoding="utf-8")
    code, out, err = run_import("dvh", str(tmp_path / "percent.txt"), *PRIOR)
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"]["D0.03cc"] == 29.55
    head = text.split("Structure: PTV_T8")[0].split("Dose [cGy]   Relative dose")[0]
    rows = "".join(f"{d:10d}{d / 30:20.1f}{2 * (1 - d / 3000):30.4f}\n" for d in range(0, 3001, 100))
    (tmp_path / "cc.txt").write_text(
        head + "Dose [cGy]   Relative dose [%]   Structure Volume [cc]\n" + rows, encoding="utf-8"
    )
    code, out, err = run_import("dvh", str(tmp_path / "cc.txt"), *PRIOR)
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"] == {
        "Dmax": 30.0,
        "D0.03cc": 29.55,
        "D0.1cc": 28.5,
        "D1cc": 15.0,
    }
    assert "cumulative cm3 table" in out


def _rows_until(tmp_path: Path, last_row: str, drop_max_dose: bool = False) -> str:
    """The SpinalCord block of the cumulative export, its table cut after the row starting with last_row."""
    text = CUMULATIVE.read_text(encoding="utf-8").split("Structure: PTV_T8")[0]
    lines = text.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.strip().startswith(last_row + " "))
    text = "\n".join(lines[: cut + 1]) + "\n"
    if drop_max_dose:
        text = text.replace("Max Dose [cGy]: 3000.0\n", "")
    (tmp_path / "cut.txt").write_text(text, encoding="utf-8")
    return str(tmp_path / "cut.txt")


def test_a_table_that_ends_early_gives_no_d_v_beyond_its_end(tmp_path: Path) -> None:
    """Cut at 2800 cGy, where 0.133 cm³ is left: D0.03cc and D0.1cc lie beyond the table, D1cc within it."""
    code, out, err = run_import("dvh", _rows_until(tmp_path, "2800"), *PRIOR)
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"] == {"Dmax": 30.0, "D1cc": 15.0}
    assert (
        "the table ends at 28 Gy with 0.133 cm³ still above it: D0.03cc lies between 28 Gy and 30 Gy" in err
    )
    assert "D0.1cc lies between" in err


def test_a_table_that_ends_early_without_max_dose_gives_no_dmax(tmp_path: Path) -> None:
    code, out, err = run_import("dvh", _rows_until(tmp_path, "2800", drop_max_dose=True), *PRIOR)
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"] == {"D1cc": 15.0}
    assert "Dmax is at least 28 Gy, not known; left out" in err
    assert "upper bound" not in out


def test_d_v_above_the_max_dose_line_within_a_row_step_is_written_as_dmax_and_said(tmp_path: Path) -> None:
    """Max Dose 29.40 Gy lies within the table's bounds (29 … 30 Gy); D0.03cc interpolates to 29.55 Gy."""
    path = _edit(tmp_path, "Max Dose [cGy]: 3000.0", "Max Dose [cGy]: 2940.0")
    code, out, err = run_import("dvh", path, *PRIOR)
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"] == {
        "Dmax": 29.4,
        "D0.03cc": 29.4,
        "D0.1cc": 28.5,
        "D1cc": 15.0,
    }
    assert "D0.03cc interpolated at 29.550 Gy, above Dmax within one row's step: written as Dmax" in out


def test_relative_max_dose_is_converted_with_the_prescribed_dose() -> None:
    """`Max Dose [%]: 82.0` with `Prescribed dose [cGy]: 5500.0`: Dmax 45.10 Gy, though the table ends at 45 Gy.

    SpinalCord: 3.0 cc, V(D) = 3 · (1 − D / 45.10 Gy) cc: D0.03cc = 44.649, D0.1cc = 43.597, D1cc = 30.067 Gy.
    """
    code, out, err = run_import("dvh", str(RELATIVE), *PRIOR_55)
    assert code == 0, err
    course = yaml.safe_load(out)
    assert course["structures"] == {
        "SpinalCord": {"Dmax": 45.1, "D0.03cc": 44.65, "D0.1cc": 43.6, "D1cc": 30.07}
    }
    assert course["prescription"] == {"dose": 55.0, "fractions": 25}
    assert (
        "100 % is the prescribed dose of plan 'T9_55', 55 Gy, as the table's relative dose column confirms"
        in out
    )


def test_relative_max_dose_of_a_table_ending_with_volume_left(tmp_path: Path) -> None:
    """The issue's case: PTV_High's table ends at 56.30 Gy with volume left, Max Dose 102.6 % × 55 Gy = 56.43 Gy."""
    code, out, err = run_import("dvh", str(RELATIVE), *PRIOR_55, "--roi", "SpinalCord=PTV_High")
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"]["Dmax"] == 56.43
    assert "upper bound" not in out


def test_relative_max_dose_in_a_plan_sum_uses_the_table_columns(tmp_path: Path) -> None:
    text = RELATIVE.read_text(encoding="utf-8")
    text = text.replace("Plan: T9_55", "Plan sum: T9_55").replace(
        "Prescribed dose [cGy]: 5500.0", "Prescribed dose [cGy]: not defined"
    )
    (tmp_path / "sum.txt").write_text(text, encoding="utf-8")
    code, out, err = run_import("dvh", str(tmp_path / "sum.txt"), *PRIOR_55, "--prescription", "55")
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"]["Dmax"] == 45.1
    assert "100 % is the table's dose columns (55.00 Gy is 100 %)" in out


def test_relative_max_dose_without_any_reference_is_not_used(tmp_path: Path) -> None:
    text = RELATIVE.read_text(encoding="utf-8").replace(
        "Prescribed dose [cGy]: 5500.0", "Prescribed dose [cGy]: not defined"
    )
    text = text.replace(
        "Dose [cGy]   Relative dose [%]   Structure Volume [cc]", "Dose [cGy]   Structure Volume [cc]"
    )
    text = "\n".join(
        " ".join(line.split()[::2]) if line[:10].strip().isdigit() else line for line in text.splitlines()
    )
    (tmp_path / "noref.txt").write_text(text, encoding="utf-8")
    code, out, err = run_import("dvh", str(tmp_path / "noref.txt"), *PRIOR_55, "--prescription", "55")
    assert code == 0, err
    assert "Dmax" not in yaml.safe_load(out)["structures"]["SpinalCord"]
    assert "its 'Max Dose [%]' line cannot be converted to Gy (the plan states no prescribed dose" in err


PLANNED_55 = ["--technique", "VMAT", "--fractions", "25", "--start", "2020-03-02", "--planned"]


def test_ptv_high_minimum_dose_becomes_the_planned_course_ptv_high_dmin() -> None:
    """PTV_High: `Min Dose [%]: 90.0` × 55 Gy = 49.50 Gy; its whole volume receives 49.50 Gy in the table."""
    code, out, err = run_import("dvh", str(RELATIVE), *PLANNED_55)
    assert code == 0, err
    assert yaml.safe_load(out)["ptv_high_dmin"] == 49.5
    assert (
        "# PTV_High is ROI 'PTV_High' (its TG-263 name PTV_High): ptv_high_dmin from the 'min dose [%]' line"
        in out
    )
    assert case_with(planned=out).planned_course.ptv_high_dmin == 49.5


def test_a_prior_course_has_no_ptv_high_dmin() -> None:
    code, out, err = run_import("dvh", str(RELATIVE), *PRIOR_55)
    assert code == 0, err
    assert "ptv_high_dmin" not in yaml.safe_load(out)
    assert "ROI 'PTV_High' (PTV_High) not used: a prior course has no ptv_high_dmin" in out


def test_another_target_roi_is_chosen_with_roi(tmp_path: Path) -> None:
    text = RELATIVE.read_text(encoding="utf-8").replace("Structure: PTV_High", "Structure: PTV_T9_24Gy")
    (tmp_path / "t9.txt").write_text(text, encoding="utf-8")
    code, out, err = run_import("dvh", str(tmp_path / "t9.txt"), *PLANNED_55)
    assert code == 0, err
    assert "ptv_high_dmin" not in yaml.safe_load(out)
    assert (
        "no PTV_High ROI (map one under 'targets', or --roi PTV_High=ROI): ptv_high_dmin not imported" in err
    )
    code, out, err = run_import("dvh", str(tmp_path / "t9.txt"), *PLANNED_55, "--roi", "PTV_High=PTV_T9_24Gy")
    assert code == 0, err
    assert yaml.safe_load(out)["ptv_high_dmin"] == 49.5


def test_a_ptv_high_without_min_dose_line_gives_no_ptv_high_dmin(tmp_path: Path) -> None:
    text = RELATIVE.read_text(encoding="utf-8").replace("Min Dose [%]: 90.0\n", "")
    (tmp_path / "nomin.txt").write_text(text, encoding="utf-8")
    code, out, err = run_import("dvh", str(tmp_path / "nomin.txt"), *PLANNED_55)
    assert code == 0, err
    assert "ptv_high_dmin" not in yaml.safe_load(out)
    assert (
        "structure 'PTV_High' (PTV_High) has no 'Min Dose' line; the whole volume receives 49.5 Gy and not all "
        "of it 49.6 Gy: ptv_high_dmin not known, left out" in err
    )


def test_two_plans_need_a_choice_and_plan_selects(tmp_path: Path) -> None:
    text = CUMULATIVE.read_text(encoding="utf-8")
    cord = text[text.index("Structure: SpinalCord") : text.index("Structure: PTV_T8")]
    (tmp_path / "two.txt").write_text(text + cord.replace("Plan: T8_3D", "Plan: T8_boost"), encoding="utf-8")
    code, _, err = run_import("dvh", str(tmp_path / "two.txt"), *PRIOR)
    assert code == 2
    assert "DVHs of 2 plans or plan sums: 'T8_3D', 'T8_boost' (accepted: --plan NAME)" in err
    code, out, err = run_import("dvh", str(tmp_path / "two.txt"), *PRIOR, "--plan", "T8_3D")
    assert code == 0, err
    assert yaml.safe_load(out)["structures"]["SpinalCord"]["Dmax"] == 30.0


def test_patient_identity_is_never_echoed(tmp_path: Path) -> None:
    for argv in (["dvh", str(CUMULATIVE), *PRIOR], ["dvh", str(CUMULATIVE)]):
        _, out, err = run_import(*argv)
        assert "Phantom" not in out + err
        assert "PHANTOM-MRN-4711" not in out + err


def _edit(tmp_path: Path, old: str, new: str, count: int = 1) -> str:
    text = CUMULATIVE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "edited.txt"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return str(path)


def _gallery(tmp_path: Path, case: str) -> list[str]:
    if case == "duplicate-structure":
        return ["dvh", _edit(tmp_path, "Structure: PTV_T8", "Structure: SpinalCord"), *PRIOR]
    if case == "unmapped-neural":
        return ["dvh", _edit(tmp_path, "Structure: PTV_T8", "Structure: PRV5 SpinalCanal"), *PRIOR]
    if case == "no-volume-column":
        return ["dvh", _edit(tmp_path, "Ratio of Total Structure Volume [%]", "Mystery [x]"), *PRIOR]
    if case == "relative-dose-only":
        return [
            "dvh",
            _edit(tmp_path, "Dose [cGy]   Relative dose [%]", "Relative dose [%]   Relative dose [%]"),
            *PRIOR,
        ]
    if case == "percent-without-volume":
        return ["dvh", _edit(tmp_path, "Volume [cm³]: 2.0\n", ""), *PRIOR]
    if case == "text-in-table":
        return ["dvh", _edit(tmp_path, "      1500", "      15oo"), *PRIOR]
    if case == "growing-cumulative":
        return [
            "dvh",
            _edit(
                tmp_path,
                "      1500                50.0                       50.0000",
                "      1500                50.0                       90.0000",
            ),
            *PRIOR,
        ]
    if case == "not-covered":
        return ["dvh", _edit(tmp_path, "Dose Cover.[%]: 100.0", "Dose Cover.[%]: 87.5"), *PRIOR]
    if case == "max-dose-gy-as-cgy":
        return ["dvh", _edit(tmp_path, "Max Dose [cGy]: 3000.0", "Max Dose [cGy]: 30.0"), *PRIOR]
    if case == "max-dose-below-table":
        return ["dvh", _edit(tmp_path, "Max Dose [cGy]: 3000.0", "Max Dose [cGy]: 2000.0"), *PRIOR]
    if case == "max-dose-above-table":
        return ["dvh", _edit(tmp_path, "Max Dose [cGy]: 3000.0", "Max Dose [Gy]: 3000.0"), *PRIOR]
    if case == "max-dose-repeated":
        return [
            "dvh",
            _edit(tmp_path, "Max Dose [cGy]: 3000.0", "Max Dose [cGy]: 3000.0\nMax Dose [cGy]: 30.0"),
            *PRIOR,
        ]
    if case == "max-dose-two-units-disagree":
        return [
            "dvh",
            _edit(tmp_path, "Max Dose [cGy]: 3000.0", "Max Dose [cGy]: 3000.0\nMax Dose [Gy]: 32.0"),
            *PRIOR,
        ]
    if case == "max-dose-not-a-number":
        return ["dvh", _edit(tmp_path, "Max Dose [cGy]: 3000.0", "Max Dose [cGy]: nan"), *PRIOR]
    if case == "nan-in-table":
        return [
            "dvh",
            _edit(tmp_path, "      1500                50.0", "      nan                50.0"),
            *PRIOR,
        ]
    if case == "inf-in-table":
        return [
            "dvh",
            _edit(
                tmp_path, "      1500                50.0                       50.0000", "  1500  50.0  inf"
            ),
            *PRIOR,
        ]
    if case == "negative-volume":
        return [
            "dvh",
            _edit(
                tmp_path,
                "      3000               100.0                        0.0000",
                "      3000               100.0                       -5.0000",
            ),
            *PRIOR,
        ]
    if case == "no-volume-at-all":
        text = CUMULATIVE.read_text(encoding="utf-8")
        head, rest = text.split("Dose [cGy]   Relative dose [%]   Ratio of Total Structure Volume [%]\n", 1)
        table, tail = rest.split("\n\n", 1)
        zeroed = "".join(line[:-8] + "  0.0000\n" for line in table.splitlines())
        (tmp_path / "zero.txt").write_text(
            head
            + "Dose [cGy]   Relative dose [%]   Ratio of Total Structure Volume [%]\n"
            + zeroed
            + "\n"
            + tail,
            encoding="utf-8",
        )
        return ["dvh", str(tmp_path / "zero.txt"), *PRIOR]
    if case == "relative-reference-unclear":
        text = RELATIVE.read_text(encoding="utf-8").replace(
            "Prescribed dose [cGy]: 5500.0", "Prescribed dose [cGy]: 5000.0"
        )
        (tmp_path / "ref.txt").write_text(text, encoding="utf-8")
        return ["dvh", str(tmp_path / "ref.txt"), *PRIOR_55]
    if case == "relative-max-dose-contradicts":
        text = RELATIVE.read_text(encoding="utf-8").replace("Max Dose [%]: 82.0", "Max Dose [%]: 8.2")
        (tmp_path / "rel.txt").write_text(text, encoding="utf-8")
        return ["dvh", str(tmp_path / "rel.txt"), *PRIOR_55]
    if case == "min-dose-contradicts":
        text = RELATIVE.read_text(encoding="utf-8").replace("Min Dose [%]: 90.0", "Min Dose [%]: 50.0")
        (tmp_path / "min.txt").write_text(text, encoding="utf-8")
        return ["dvh", str(tmp_path / "min.txt"), *PLANNED_55]
    if case == "no-structures":
        (tmp_path / "empty.txt").write_text("Type : Cumulative Dose Volume Histogram\n", encoding="utf-8")
        return ["dvh", str(tmp_path / "empty.txt"), *PRIOR]
    if case == "not-text":
        (tmp_path / "bin.txt").write_bytes(b"Structure: \x81\x8d\xff\n")
        return ["dvh", str(tmp_path / "bin.txt"), *PRIOR]
    if case == "missing-fractions":
        return [
            "dvh",
            str(CUMULATIVE),
            "--technique",
            "3DCRT",
            "--start",
            "2015-01-05",
            "--end",
            "2015-01-16",
        ]
    if case == "prescription-conflict":
        return ["dvh", str(CUMULATIVE), *PRIOR, "--prescription", "20"]
    if case == "plan-sum-without-prescription":
        return ["dvh", str(DIFFERENTIAL), *PRIOR]
    if case == "missing-file":
        return ["dvh", str(tmp_path / "absent.txt"), *PRIOR]
    if case == "directory":
        return ["dvh", str(tmp_path), *PRIOR]
    if case == "fifo":
        os.mkfifo(tmp_path / "pipe.txt")
        return ["dvh", str(tmp_path / "pipe.txt"), *PRIOR]
    if case == "unknown-plan":
        return ["dvh", str(CUMULATIVE), *PRIOR, "--plan", "Other"]
    if case == "end-before-nothing-planned":
        return ["dvh", str(CUMULATIVE), *PRIOR, "--planned"]
    raise AssertionError(case)


GALLERY = {
    "duplicate-structure": "ROI 'SpinalCord' appears more than once",
    "unmapped-neural": "ROI 'PRV5 SpinalCanal' is not in the bundled structure map",
    "no-volume-column": "no volume column among",
    "relative-dose-only": "no absolute dose column",
    "percent-without-volume": "volumes are in % and the structure's 'Volume [cm³]' (or 'Volume [cc]') line is missing",
    "text-in-table": "row '15oo",
    "growing-cumulative": "a cumulative DVH cannot grow with dose",
    "not-covered": "Dose Cover. is 87.5 %: the dose grid does not cover the structure",
    "max-dose-gy-as-cgy": "the 'max dose [cgy]' line gives 0.3 Gy, but the table has volume up to 29 Gy and none from 30 Gy; it looks like Gy written as cGy",
    "max-dose-below-table": "the 'max dose [cgy]' line gives 20 Gy, but the table has volume up to 29 Gy",
    "max-dose-above-table": "the 'max dose [gy]' line gives 3000 Gy, but the table has volume up to 29 Gy and none from 30 Gy; it looks like cGy written as Gy",
    "max-dose-repeated": "'Max Dose [cGy]' is given twice in one structure block ('3000.0' on line 25, '30.0' here)",
    "max-dose-two-units-disagree": "'max dose [cgy]' and 'max dose [gy]' disagree (30 Gy and 32 Gy)",
    "max-dose-not-a-number": "'nan' is not a dose",
    "nan-in-table": "row 'nan                50.0",
    "inf-in-table": "holds a value that is not a finite number",
    "negative-volume": "a negative volume in the table (-5)",
    "no-volume-at-all": "the DVH table gives no volume at any dose",
    "relative-reference-unclear": "the plan's prescribed dose is 50 Gy but the table's relative dose column puts 100 % at 55.00 Gy",
    "relative-max-dose-contradicts": "the 'max dose [%]' line gives 4.51 Gy, but the table has volume up to 45 Gy (its last row)",
    "min-dose-contradicts": "the 'min dose [%]' line gives 27.5 Gy, but in the table the whole volume receives 49.5 Gy and not all of it 49.6 Gy",
    "no-structures": "no 'Structure:' block found",
    "not-text": "neither UTF-8 nor Windows-1252 text",
    "missing-fractions": "the input does not give the course's fractions (accepted: --fractions N)",
    "prescription-conflict": "--prescription 20.0 contradicts the export's 'Prescribed dose' of plan 'T8_3D'",
    "plan-sum-without-prescription": "the input does not give the course's prescription",
    "missing-file": "absent.txt: (document): file not found",
    "directory": ": (document): is a directory",
    "fifo": "pipe.txt: (document): is not a regular file (a device, pipe or socket)",
    "unknown-plan": "no structure block for plan 'Other'",
    "end-before-nothing-planned": "a planned course has no end date",
}


@pytest.mark.parametrize("case", list(GALLERY))
def test_bad_input_is_refused_with_a_message(tmp_path: Path, case: str) -> None:
    code, out, err = run_import(*_gallery(tmp_path, case))
    assert code == 2
    assert out == ""
    assert GALLERY[case] in err


def test_every_missing_option_and_every_file_problem_in_one_run(tmp_path: Path) -> None:
    path = _edit(tmp_path, "Dose Cover.[%]: 100.0", "Dose Cover.[%]: 87.5")
    code, out, err = run_import("dvh", path, "--end", "2015-01-16")
    assert code == 2
    assert out == ""
    for expected in (
        "Dose Cover. is 87.5 %",
        "start: the input does not give the course's start (accepted: --start YYYY-MM-DD)",
        "technique: the input does not give the course's technique",
        "fractions: the input does not give the course's fractions (accepted: --fractions N)",
    ):
        assert expected in err


def test_course_fields_from_an_earlier_import(tmp_path: Path) -> None:
    """--course takes the fields the export lacks from a course file (a FHIR import of the same course)."""
    course = tmp_path / "course.yaml"
    course.write_text(
        "start: '2015-01-05'\nend: '2015-01-16'\ntechnique: 3DCRT\nprescription: {dose: 3000, fractions: 10}\n"
        "unit: cGy\n",
        encoding="utf-8",
    )
    code, out, err = run_import("dvh", str(CUMULATIVE), "--course", str(course))
    assert code == 0, err
    assert yaml.safe_load(out)["prescription"] == {"dose": 30.0, "fractions": 10}
    assert f"# Course fields the files do not give: from {course}." in out
    code, out, err = run_import("dvh", str(CUMULATIVE), "--course", str(course), "--fractions", "5")
    assert code == 2
    assert (
        f"{course}: prescription.fractions: --fractions 5 contradicts the course file, which gives 10" in err
    )
    course.write_text(course.read_text(encoding="utf-8").replace("3000", "2000"), encoding="utf-8")
    code, out, err = run_import("dvh", str(CUMULATIVE), "--course", str(course))
    assert code == 2
    assert (
        f"{course}'s prescription 20.0 contradicts the export's 'Prescribed dose' of plan 'T8_3D', which gives 30.0"
        in err
    )
