"""The README example — the Lucido 2025 Table 5 patient — through durable-rules and the CLI."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from reirrad import Evaluator, load_case
from reirrad.cli.main import main
from reirrad.load.validation import validator_for

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return Evaluator().evaluate(load_case(EXAMPLE))


def _line(result: dict[str, Any], rule: str, metric: str | None = None) -> dict[str, Any]:
    found = [
        c
        for c in result["constraints"] + result["advisories"]
        if c["rule_id"] == rule and c["metric"] == metric
    ]
    assert len(found) == 1, (rule, metric, found)
    return found[0]


def test_it_runs_on_durable_rules_with_a_traceable_pack(result: dict[str, Any]) -> None:
    assert result["engine"]["name"] == "durable-rules"
    assert result["rule_pack"]["name"] == "reirrad-spine-reirradiation"
    assert len(result["rule_pack"]["sha256"]) == 64
    assert result["case_id"] == "t1-chondrosarcoma"


def test_interval_is_about_twenty_months(result: dict[str, Any]) -> None:
    assert result["interval_months"] == pytest.approx(
        19.975, abs=0.001
    )  # "Twenty months later" (Lucido 2025)


def test_hytec_on_dmax_fails_resbrt_and_cumulative_only(result: dict[str, Any]) -> None:
    assert _line(result, "hytec.resbrt", "Dmax")["status"] == "fail"
    assert _line(result, "hytec.resbrt", "Dmax")["value"] == pytest.approx(30.0)  # Table 5: 30.0 Gy EQD2,2
    assert _line(result, "hytec.cumulative", "Dmax")["status"] == "fail"
    assert _line(result, "hytec.cumulative", "Dmax")["value"] == pytest.approx(73.296, abs=1e-3)
    assert _line(result, "hytec.ratio", "Dmax")["status"] == "pass"
    assert _line(result, "hytec.interval")["status"] == "pass"


def test_hytec_on_d003_passes_all_four(result: dict[str, Any]) -> None:
    """Lucido 2025 Discussion: 'though D0.03cc did meet those constraints'."""
    for rule in ("hytec.resbrt", "hytec.cumulative", "hytec.ratio"):
        assert _line(result, rule, "D0.03cc")["status"] == "pass", rule
    assert _line(result, "hytec.resbrt", "D0.03cc")["value"] == pytest.approx(24.75)


def test_nelson_reproduces_the_published_forgiven_dose(result: dict[str, Any]) -> None:
    line = _line(result, "nelson.cumulative", "Dmax")
    assert line["status"] == "fail"
    assert round(line["value"], 1) == 53.5  # Lucido 2025 Results: 53.5 Gy EQD2,3 with one third forgiven
    assert "33% repaired" in line["explanation"]


def test_conus_policy_is_computed_and_explained(result: dict[str, Any]) -> None:
    line = _line(result, "conus-bed3.cumulative", "Dmax")
    assert line["limit"] == 75  # T1 is above the conus
    assert line["value"] == pytest.approx(0.5 * 32.8 * (1 + 3.28 / 3) + 10 * (1 + 10 / 3))
    assert "50% repaired" in line["explanation"]
    assert line["citations"][0]["source_file"] == "000_ab39cc05b3fd5ae0.txt"


def test_every_line_is_explained_with_evidence_and_citation(result: dict[str, Any]) -> None:
    for line in result["constraints"]:
        assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", line["rule_version"])
        assert line["evidence"]["quality_of_evidence"]
        assert line["citations"]
        assert line["explanation"].split(" — ")[0] in {"PASS", "FAIL", "INDETERMINATE", "NOT APPLICABLE"}
        assert "Source:" in line["explanation"]


def test_de_novo_limits_do_not_apply_and_say_why(result: dict[str, Any]) -> None:
    line = _line(result, "de-novo.max", "Dmax")
    assert line["status"] == "not_applicable"
    assert "number of earlier courses over the lesion = 1" in line["explanation"]


def test_json_output_validates_against_the_published_schema(
    result: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(EXAMPLE), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    errors = sorted(validator_for("result.schema.json").iter_errors(printed), key=str)
    assert not errors, errors[0].message
    assert printed["constraints"] == result["constraints"]


def test_text_and_markdown_reports_lead_with_the_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(EXAMPLE)]) == 0
    text = capsys.readouterr().out
    assert (
        "Policies: hytec: FAILS on Dmax, passes on D0.03cc; nelson: FAILS on Dmax, passes on D0.03cc; "
        "conus-bed3: FAILS on Dmax, passes on D0.03cc" in text
    )
    assert re.search(r"resbrt +SpinalCord Dmax +30\.00 Gy EQD2 +≤ 25 Gy EQD2 +-5\.00 Gy EQD2 \(-20\.0 %\) +FAIL", text)
    assert "Missing data" in text
    assert main(["evaluate", str(EXAMPLE), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Re-irradiation evaluation — case `t1-chondrosarcoma`")
    assert "| hytec | resbrt | SpinalCord Dmax | 30.00 Gy EQD2 | ≤ 25 Gy EQD2 | -5.00 Gy EQD2 (-20.0 %) | FAIL |" in markdown


def test_the_oracle_gives_the_same_verdicts(result: dict[str, Any]) -> None:
    oracle = Evaluator(engine="oracle").evaluate(load_case(EXAMPLE))
    assert [(c["rule_id"], c["metric"], c["status"]) for c in oracle["constraints"]] == [
        (c["rule_id"], c["metric"], c["status"]) for c in result["constraints"]
    ]
