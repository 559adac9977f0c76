"""The audit stores each evaluation's record (explain.results.audit_record), not the full result document: the two
must give the database the same rows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from reirrad.audit.rows import Rows
from reirrad.evaluate import Evaluator
from reirrad.testing.differential import generated_cases

AS_OF = date(2026, 11, 23)


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(as_of=AS_OF)


def _projection(result: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The full result cut to the record's fields, entry by entry."""

    def cut(full: list[dict[str, Any]], keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fields = set().union(*(k.keys() for k in keys)) if keys else set()
        return [{k: v for k, v in entry.items() if k in fields} for entry in full]

    return {
        "case_id": result["case_id"],
        "rule_pack": {"as_of": result["rule_pack"]["as_of"]},
        "interval_months": result["interval_months"],
        "constraints": cut(result["constraints"], record["constraints"]),
        "recommendations": cut(result["recommendations"], record["recommendations"]),
        "policy_summary": cut(result["policy_summary"], record["policy_summary"]),
    }


def test_the_audit_record_holds_the_results_values_and_gives_the_same_rows(evaluator: Evaluator) -> None:
    checked = fragile = lost = 0
    for seq, (_, _, case) in enumerate(generated_cases(200, seed=11, as_of=AS_OF)):
        result, record = evaluator.evaluate(case), evaluator.record(case)
        assert record == _projection(result, record), case.case_id
        from_record, from_result = Rows(), Rows()
        if case.planned_course is not None:
            from_record.add_case(seq, "k", 1, case, {}, record, "set", {"hytec": "pass"})
            from_result.add_case(seq, "k", 1, case, {}, result, "set", {"hytec": "pass"})
            assert from_record.tables == from_result.tables, case.case_id
        checked += 1
        fragile += any(e["fragile"] for e in record["constraints"])
        lost += any(c.dosimetry == "unavailable" for c in case.prior_courses)
    assert checked == 200
    assert fragile >= 1 and lost >= 5  # the comparison covers fragile lines and lost plans
    assert record["constraints"] and record["recommendations"] and record["policy_summary"]


def test_the_comparison_has_teeth(evaluator: Evaluator) -> None:
    """A record that drops a constraint line, or reports another value, no longer matches its projection."""
    case = next(c for _, _, c in generated_cases(20, seed=11, as_of=AS_OF) if c.has_planned_dose)
    result, record = evaluator.evaluate(case), evaluator.record(case)
    changed = {**record, "constraints": record["constraints"][1:]}
    assert changed != _projection(result, changed) or not record["constraints"]
    first = {**record["constraints"][0], "value": 1e9}
    changed = {**record, "constraints": [first, *record["constraints"][1:]]}
    assert changed != _projection(result, changed)
