"""Issue 11 through the whole pipeline: a conventional re-treatment gets a cord verdict from the conventional
policy, with its numbers and citation; scopes follow the conus (no cauda equina limit at T6, no Nelson at L4)."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reirrad import Evaluator, load_case
from reirrad.case import Case, case_problems
from reirrad.load.yamlio import load_yaml_file

ROOT = Path(__file__).resolve().parent.parent
T8 = ROOT / "docs" / "examples" / "t8-rcc-unstable.yaml"
AS_OF = date(2026, 11, 30)


@pytest.fixture(scope="module")
def ev() -> Evaluator:
    return Evaluator(as_of=AS_OF)


def _lines(result: dict[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    return {c["rule_id"]: c for c in result["constraints"] if c["policy"] == policy}


def test_the_conventional_example_gets_a_cord_verdict_with_numbers_and_citation(ev: Evaluator) -> None:
    result = ev.evaluate(load_case(T8))
    nieder = _lines(result, "nieder")
    assert {k: (v["status"], v["limit"]) for k, v in nieder.items()} == {
        "nieder.cumulative": ("pass", 135.5),
        "nieder.course-max": ("pass", 98),
        "nieder.interval": ("pass", 6),
    }
    # 20.6 · (1 + 4.12 / 2) = 63.036 and 20.4 · (1 + 4.08 / 2) = 62.016 (α/β 2 Gy)
    assert nieder["nieder.cumulative"]["value"] == pytest.approx(125.052, abs=1e-6)
    assert nieder["nieder.course-max"]["value"] == pytest.approx(63.036, abs=1e-6)
    assert nieder["nieder.interval"]["value"] == pytest.approx(311 / 30.4375, abs=1e-6)
    cite = nieder["nieder.cumulative"]["citations"][0]
    assert (cite["ref"], cite.get("pmid"), cite["source_file"]) == ("nieder-2006", "17084560", None)
    assert nieder["nieder.cumulative"]["limit_note"] == "thoracic cord, α/β 2 Gy (Gy₂)"
    assert "the policy for a re-treatment that is not SBRT" in ev.pack.rule("nieder.cumulative").title
    assert {p["policy"]: p["verdict"] for p in result["policy_summary"]}["nieder"] == "pass"


def _case(levels: list[str], planned: dict[str, Any], prior: list[dict[str, Any]] | None = None) -> Case:
    doc = {
        "schema": "reirrad/case/v1",
        "case_id": "scope-test",
        "lesion": {"levels": levels},
        "prior_courses": prior or [],
        "planned_course": planned,
    }
    return _valid(doc)


def _valid(doc: dict[str, Any]) -> Case:
    case, problems = case_problems(copy.deepcopy(doc), {}, "test")
    assert case is not None, [p.render() for p in problems]
    return case


def test_a_de_novo_t6_plan_in_2_fractions_passes_cleanly(ev: Evaluator) -> None:
    case = _case(
        ["T6"],
        {
            "start": "2026-01-05",
            "technique": "SBRT",
            "prescription": {"dose": 24, "fractions": 2},
            "ptv_high_dmin": 20.0,
            "structures": {"ThecalSac": {"Dmax": 16.9}, "SpinalCord": {"Dmax": 14.0}},
        },
    )
    result = ev.evaluate(case)
    statuses = {(c["rule_id"], c["structure"]): c["status"] for c in result["constraints"]}
    assert statuses[("de-novo.max", "ThecalSac")] == "pass"
    assert statuses[("de-novo.max", "SpinalCord")] == "pass"
    assert all(st in ("pass", "not_applicable") for st in statuses.values()), statuses
    assert not [c for c in result["constraints"] if c["status"] == "indeterminate"]


def test_nelson_does_not_apply_at_l4_and_no_near_tolerance_follows(ev: Evaluator) -> None:
    prior = [
        {
            "start": "2025-01-06",
            "end": "2025-01-17",
            "technique": "3DCRT",
            "prescription": {"dose": 30, "fractions": 10},
            "structures": {"ThecalSac": {"Dmax": 31.0}},
        }
    ]
    planned = {
        "start": "2025-08-04",
        "technique": "SBRT",
        "prescription": {"dose": 24, "fractions": 2},
        "structures": {"ThecalSac": {"Dmax": 13.0}},
    }
    # T12: 31 · (3.1 + 3) / 5 = 37.82, 6.57 months on a quarter forgiven → 28.365; 13 · (6.5 + 3) / 5 = 24.7 → 53.07
    at_l4 = ev.evaluate(_case(["L4"], planned, prior))
    assert {c["status"] for c in _lines(at_l4, "nelson").values()} == {"not_applicable"}
    near = {r["rule_id"]: r["status"] for r in at_l4["recommendations"]}
    assert near["kotecha-2020.protracted-near-tolerance"] != "made"
    at_t12 = ev.evaluate(_case(["T12"], planned, prior))
    line = _lines(at_t12, "nelson")["nelson.cumulative"]
    assert (line["status"], line["value"]) == ("fail", pytest.approx(53.065, abs=1e-3))


def test_the_bases_of_the_rule_cases_are_valid_cases() -> None:
    bases, _ = load_yaml_file(ROOT / "rules" / "bases.cases.yaml")
    for doc in bases.values():
        assert _valid(doc).lesion.levels
