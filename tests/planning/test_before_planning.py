"""Before the plan: the tumour-board question for a case with no planned dose (issue 10, items 1 and 2)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reirrad.case import load_case, parse_case
from reirrad.cli.main import main
from reirrad.dose.calculations import NO_PLANNED_DOSE
from reirrad.evaluate import Evaluator
from reirrad.explain.report import render_markdown, render_text
from reirrad.knowledge.rulepack import load_pack

ROOT = Path(__file__).resolve().parents[2]
T9 = ROOT / "docs" / "examples" / "t9-before-planning.yaml"
AS_OF = date(2026, 11, 23)


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(load_pack(ROOT / "rules"), as_of=AS_OF)


@pytest.fixture(scope="module")
def t9(evaluator: Evaluator) -> dict[str, Any]:
    return evaluator.evaluate(load_case(T9))


def limit(result: dict[str, Any], policy: str, fractions: int, metric: str = "Dmax") -> dict[str, Any]:
    (found,) = [
        lim
        for lim in result["before_planning"]["limits"]["limits"]
        if lim["policy"] == policy and lim["fractions"] == fractions and lim["metric"] == metric
    ]
    return found


def test_no_dose_criterion_passes_or_fails_without_a_plan(t9: dict[str, Any]) -> None:
    dose_lines = [e for e in t9["constraints"] + t9["advisories"] if e["criterion"] != "interval"]
    assert dose_lines
    assert {e["status"] for e in dose_lines} <= {"indeterminate", "not_applicable"}
    undecided = [e for e in dose_lines if e["status"] == "indeterminate"]
    assert undecided
    assert all(NO_PLANNED_DOSE in e["explanation"] for e in undecided), [e["explanation"] for e in undecided]
    assert NO_PLANNED_DOSE in t9["missing_data"]


def test_the_planned_start_is_the_date_asked_for_and_the_report_says_so(t9: dict[str, Any]) -> None:
    before = t9["before_planning"]
    assert before["planned_start"] == "2026-11-23"
    assert before["planned_start_assumed"] is True
    # 2025-09-19 → 2026-11-23 is 430 days = 14.13 months
    assert t9["interval_months"] == pytest.approx(430 / 30.4375, abs=1e-4)
    assert "planned start is taken as 2026-11-23" in render_text(t9)


@pytest.mark.parametrize(
    ("policy", "fractions", "expected", "binding"),
    [
        # HyTEC: the new course alone at most 25 Gy EQD2 (α/β 2): n·d·(1 + d/2) = 50 → d = √101 − 1 per fx
        ("hytec", 1, 9.04, "hytec.resbrt"),
        ("hytec", 5, 17.91, "hytec.resbrt"),
        # Nelson: 30 Gy/10 (cord at the prescription, lost plan) = 36 Gy EQD2(3), one third forgiven at 14 months
        # → 24 Gy; 26 Gy EQD2 left = 43.33 Gy BED(3): d² / 3 + d = 43.33 → d = 10.00 in 1 fx
        ("nelson", 1, 10.00, "nelson.cumulative"),
        # conus-bed3 above the conus: BED(3) 60 Gy, half repaired after a year → 30; 45 Gy BED left:
        # d² / 3 + d = 45 → d = 10.21 Gy in 1 fx
        ("conus-bed3", 1, 10.21, "conus-bed3.cumulative"),
    ],
)
def test_limits_per_policy_and_fractions_by_hand(
    t9: dict[str, Any], policy: str, fractions: int, expected: float, binding: str
) -> None:
    found = limit(t9, policy, fractions)
    assert found["max_dose"] == pytest.approx(expected, abs=0.005)
    assert found["binding_criterion"] == binding
    assert found["assumptions"] == ["assumptions.missing-dosimetry"]


def test_the_interval_gate_and_what_is_left(t9: dict[str, Any]) -> None:
    gate = limit(t9, "hytec", 1)["gates"][0]
    assert (gate["rule_id"], gate["status"]) == ("hytec.interval", "pass")
    (nelson,) = [c for c in limit(t9, "nelson", 1)["criteria"] if c["rule_id"] == "nelson.cumulative"]
    assert nelson["earlier"] == pytest.approx(24.0, abs=1e-4)
    assert nelson["limit"] == 50
    text = render_text(t9)
    assert "26.00 Gy EQD2 left" in text
    assert "Cord dose constraints" not in text, "before planning there is no wall of indeterminate lines"


def test_which_table3_schedules_fit_and_the_published_cell(t9: dict[str, Any]) -> None:
    candidates = t9["before_planning"]["limits"]["candidates"]
    two = next(c for c in candidates if c["label"] == "24 Gy/2 fx")
    assert two["published"]["published"] == "12.2 Gy"
    assert "HyTEC-based" in two["published"]["basis"]
    verdicts = {p["policy"]: p["verdict"] for p in two["policies"]}
    assert verdicts == {
        "conus-bed3": "fits",
        "de-novo": "not applicable",
        "hytec": "fits",
        "nelson": "fits",
        "nieder": "not applicable",  # the conventional policy does not cover an SBRT schedule
    }
    conventional = {(c["dose"], c["fractions"]): c for c in candidates if c["technique"] == "conventional"}
    assert set(conventional) >= {(8, 1), (20, 5)}
    # 20 Gy in 5 fx: the conventional policy covers it; HyTEC and the others do not
    covering = {p["policy"]: p["verdict"] for p in conventional[(20, 5)]["policies"]}
    assert covering["hytec"] == "not applicable"
    assert covering["nieder"] != "not applicable"


def test_recommendations_that_read_dose_verdicts_await_the_plan(t9: dict[str, Any]) -> None:
    by_id = {r["rule_id"]: r for r in t9["recommendations"]}
    for rule_id in ("kotecha-2020.beyond-external-beam", "kotecha-2020.protracted-near-tolerance"):
        rec = by_id[rule_id]
        assert rec["status"] == "indeterminate"
        assert all(b["text"].endswith("awaiting a plan") for b in rec["because"] if b["holds"] is None)
    assert by_id["kotecha-2020.longer-survival-sbrt"]["status"] == "made"
    assert "Awaiting a plan" in render_text(t9)


def test_a_planned_course_without_doses_is_also_before_planning(evaluator: Evaluator) -> None:
    text = T9.read_text(encoding="utf-8") + (
        "planned_course: {start: 2026-12-01, technique: SBRT, prescription: {dose: 24, fractions: 2}}\n"
    )
    result = evaluator.evaluate(parse_case(text, "planned-without-doses"))
    before = result["before_planning"]
    assert (before["planned_start"], before["planned_start_assumed"]) == ("2026-12-01", False)
    assert {e["status"] for e in result["constraints"] if e["criterion"] != "interval"} <= {
        "indeterminate",
        "not_applicable",
    }
    interval = next(e for e in result["constraints"] if e["criterion"] == "interval")
    assert interval["status"] == "pass"  # the technique is known: the HyTEC interval applies and is met


def test_limits_command_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["limits", str(T9), "--as-of", "2026-11-23", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["planned_start_assumed"] is True
    assert data["technique"] == "SBRT or SRS"
    assert main(["limits", str(T9), "--as-of", "2026-11-23", "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.count("<svg") == 2
    assert "Table 3 (HyTEC-based)" in markdown
    assert main(["limits", str(T9), "--as-of", "2026-11-23", "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert "<svg" in page
    assert not re.search(
        r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", page.replace("http://www.w3.org/2000/svg", "")
    )


def test_the_markdown_note_before_planning_carries_the_chart(t9: dict[str, Any]) -> None:
    markdown = render_markdown(t9)
    assert "## What may be given" in markdown
    assert "<svg" in markdown
    assert "## Cord dose policies" not in markdown
