"""The documented flow: prior course from an Eclipse DVH export, planned one from DICOM, one valid case."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from importer_factories import axis, cylinder, write_rtdose, write_rtplan, write_rtstruct
from importer_helpers import DATA, run_import
from reirrad.case import load_case

PLANES = [100 + 2.5 * i for i in range(16)]


def test_prior_dvh_and_planned_dicom_make_a_valid_case(tmp_path: Path) -> None:
    code, prior, err = run_import(
        "dvh",
        str(DATA / "eclipse_cumulative_cgy.txt"),
        "--technique",
        "3DCRT",
        "--fractions",
        "10",
        "--start",
        "2015-01-05",
        "--end",
        "2015-01-16",
    )
    assert code == 0, err
    grid = axis(-20, 20, 2.5)
    write_rtdose(tmp_path / "dose.dcm", lambda x, y, z: 8 + 0.5 * x, x=grid, y=grid, z=axis(90, 150, 2.5))
    write_rtstruct(tmp_path / "rs.dcm", {"SpinalCord": cylinder(5, PLANES)})
    write_rtplan(tmp_path / "plan.dcm", fractions=1, target_doses=[24.0])
    code, planned, err = run_import(
        "dicom",
        "--rtdose",
        str(tmp_path / "dose.dcm"),
        "--rtstruct",
        str(tmp_path / "rs.dcm"),
        "--rtplan",
        str(tmp_path / "plan.dcm"),
        "--technique",
        "SBRT",
        "--start",
        "2016-09-15",
        "--planned",
    )
    assert code == 0, err
    indent = lambda text: "".join(f"    {line}\n" for line in text.splitlines())  # noqa: E731
    case = (
        f"schema: reirrad/case/v1\ncase_id: flow-test\nlesion: {{levels: [T8]}}\nprior_courses:\n  -\n"
        f"{indent(prior)}planned_course:\n{indent(planned)}"
    )
    (tmp_path / "case.yaml").write_text(case, encoding="utf-8")
    loaded = load_case(tmp_path / "case.yaml")
    assert loaded.prior_courses[0].dose_gy("SpinalCord", "D0.03cc") == pytest.approx(29.55)
    assert loaded.planned_course.dose_gy("SpinalCord", "Dmax") == pytest.approx(10.5)
    assert yaml.safe_load(planned)["prescription"] == {"dose": 24.0, "fractions": 1}
