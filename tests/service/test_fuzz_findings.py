"""What the Schemathesis run found, kept as plain regression tests."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from reirrad.cli.main import main
from service_helpers import example_case

TINY = """schema: reirrad/case/v1
case_id: tiny
lesion: {{levels: [C1]}}
prior_courses: []
planned_course: {{start: 2000-01-01, technique: 2D, prescription: {{dose: 8, fractions: 1}}, structures: {{Esophagus: {{D0.1cc: {dose}}}}}}}
"""


@pytest.mark.parametrize("dose", ["5e-324", "0.00001", "1e-7"])
def test_a_dose_python_writes_with_an_exponent_is_evaluated_not_a_traceback(
    tmp_path: Path, dose: str
) -> None:
    """durable's parser refused '1e-05' (error 204, then a traceback from delete_state): facts are now written
    without exponents. (A prescription that small is now refused as implausible; an organ dose may be that small.)"""
    case = tmp_path / "tiny.yaml"
    case.write_text(TINY.format(dose=dose), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["evaluate", str(case), "--format", "json"]) == 0
    result = json.loads(out.getvalue())
    de_novo = [x for x in result["constraints"] if x["policy"] == "de-novo"]
    assert de_novo
    assert all(
        x["status"] == "not_applicable" for x in de_novo
    )  # no cord dose in the case, only the oesophagus


def test_the_api_answers_the_same_case(client: Any) -> None:
    case = example_case()
    case["planned_course"]["structures"]["SpinalCord"] = {"Dmax": 1e-05, "D0.03cc": 5e-324}
    r = client.post("/api/v1/evaluate", json=case)
    assert r.status_code == 200
    case["planned_course"]["prescription"]["dose"] = 5e-324  # implausible: refused with a problem, not a 500
    r = client.post("/api/v1/evaluate", json=case)
    assert r.status_code == 422
    assert "prescription" in r.text


def test_limits_with_an_as_of_date(client: Any) -> None:
    """The limits route handed the as-of text, not the date, to the pack selection (a 500)."""
    r = client.post("/api/v1/limits?as_of=2016-09-15", json=example_case())
    assert r.status_code == 200
    assert r.json()["as_of"] == "2016-09-15"
