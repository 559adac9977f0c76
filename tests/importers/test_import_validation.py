"""Every importer output passes the case format's own validation before it is printed (no .nan, no absurd dose)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from importer_helpers import DATA, run_import
from reirrad.errors import InputError
from reirrad.importers.common import validate_course

PRIOR = {
    "start": "2015-01-05",
    "end": "2015-01-16",
    "technique": "3DCRT",
    "prescription": {"dose": 30.0, "fractions": 10},
    "unit": "Gy",
    "structures": {"SpinalCord": {"Dmax": 30.0, "D0.03cc": 29.5}},
}


def refusal(course: dict, planned: bool = False) -> str:
    with pytest.raises(InputError) as caught:
        validate_course(course, "export.txt", planned=planned)
    return caught.value.render()


def test_a_valid_prior_and_a_planned_course_without_organ_doses_pass() -> None:
    validate_course(PRIOR, "export.txt", planned=False)
    planned = {k: v for k, v in PRIOR.items() if k not in ("end", "structures")}
    validate_course(planned, "bundle.json", planned=True)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"Dmax": math.nan}, "course.structures.SpinalCord.Dmax: the imported course is not valid:"),
        ({"Dmax": math.inf}, "course.structures.SpinalCord.Dmax: the imported course is not valid:"),
        ({"D1cc": -0.5}, "course.structures.SpinalCord.D1cc: the imported course is not valid:"),
        ({"Dmax": 3000.0}, "300 Gy per fraction, implausible in Gy (the dose looks like cGy)"),
        ({"Dmax": 10.0, "D0.03cc": 12.0}, "a hotter sub-volume cannot get less dose"),
    ],
    ids=["nan", "inf", "negative", "absurd", "order"],
)
def test_values_the_case_format_refuses_are_refused_at_import(metrics: dict, expected: str) -> None:
    message = refusal({**PRIOR, "structures": {"SpinalCord": metrics}})
    assert message.startswith("export.txt: ")
    assert expected in message


def test_an_absurd_prescription_is_refused_at_import_not_at_evaluation() -> None:
    """3500 (cGy meant) given as --prescription for a plan sum: 3500 Gy in 1 fraction, refused with the reading."""
    code, out, err = run_import(
        "dvh",
        str(DATA / "eclipse_differential_gy_plansum_cp1252.txt"),
        "--technique",
        "SBRT",
        "--fractions",
        "1",
        "--prescription",
        "3500",
        "--start",
        "2016-09-15",
        "--planned",
    )
    assert code == 2
    assert out == ""
    assert (
        "course.prescription.dose: the imported course is not valid: 3500 Gy in 1 fraction(s) is 3500 Gy per "
        "fraction, implausible in Gy (the dose looks like cGy" in err
    )


def test_a_cgy_table_labelled_gy_is_refused(tmp_path: Path) -> None:
    """Table, Max Dose line and prescription all in cGy but labelled Gy: consistent with each other, absurd."""
    text = (DATA / "eclipse_cumulative_cgy.txt").read_text(encoding="utf-8").replace("[cGy]", "[Gy]")
    (tmp_path / "gy.txt").write_text(text, encoding="utf-8")
    code, out, err = run_import(
        "dvh",
        str(tmp_path / "gy.txt"),
        "--technique",
        "3DCRT",
        "--fractions",
        "10",
        "--start",
        "2015-01-05",
        "--end",
        "2015-01-16",
    )
    assert code == 2
    assert out == ""
    assert (
        "course.prescription.dose: the imported course is not valid: 3000 Gy in 10 fraction(s) is 300 Gy per fraction"
        in err
    )
    assert (
        "course.structures.SpinalCord.Dmax: the imported course is not valid: 3000 Gy over 10 fraction(s)"
        in err
    )
