"""One vocabulary: the JSON Schemas' enums are the terms of reirrad.vocabulary, spelled the same, in the same order."""

import json
from pathlib import Path
from typing import Any

import pytest
from reirrad.vocabulary import (
    LEVELS,
    METRICS,
    STRUCTURE_NAMES,
    TECHNIQUES,
    AssessmentStatus,
    Kind,
    Op,
    Status,
    conus_position,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def at(node: Any, *path: str | int) -> Any:
    for part in path:
        node = node[part]
    return node


CASE, RULE, RESULT = schema("case"), schema("rule"), schema("result")
LIMIT_OPS = [op.symbol for op in (Op.LT, Op.LE, Op.GT, Op.GE)]


@pytest.mark.parametrize(
    ("where", "terms"),
    [
        (at(CASE, "$defs", "structure_name", "enum"), list(STRUCTURE_NAMES)),
        (at(CASE, "$defs", "technique", "enum"), list(TECHNIQUES)),
        (at(CASE, "$defs", "lesion", "properties", "levels", "items", "enum"), list(LEVELS)),
        (list(at(CASE, "$defs", "dose_metrics", "properties")), list(METRICS)),
        (
            at(RULE, "properties", "kind", "enum"),
            [k.value for k in (Kind.CONSTRAINT, Kind.ASSUMPTION, Kind.ADVISORY, Kind.RECOMMENDATION)],
        ),
        (at(RULE, "properties", "limit", "properties", "operator", "enum"), LIMIT_OPS),
        (
            at(RULE, "properties", "assumption", "properties", "course_techniques", "items", "enum"),
            list(TECHNIQUES),
        ),
        (at(RESULT, "$defs", "line", "properties", "operator", "enum"), LIMIT_OPS),
        (at(RESULT, "$defs", "line", "properties", "status", "enum"), list(Kind.CONSTRAINT.statuses)),
        (
            at(RESULT, "properties", "assumptions", "items", "properties", "status", "enum"),
            list(Kind.ASSUMPTION.statuses),
        ),
        (
            sorted(at(RESULT, "properties", "recommendations", "items", "properties", "status", "enum")),
            sorted(Kind.RECOMMENDATION.statuses),
        ),
        (
            at(RESULT, "properties", "policy_summary", "items", "properties", "verdict", "enum"),
            list(Kind.CONSTRAINT.statuses),
        ),
        (
            at(
                RESULT,
                "properties",
                "assessment",
                "items",
                "properties",
                "items",
                "items",
                "properties",
                "status",
                "enum",
            ),
            list(AssessmentStatus),
        ),
    ],
    ids=[
        "case structures",
        "case techniques",
        "case levels",
        "case metrics",
        "rule kinds",
        "rule operators",
        "assumption techniques",
        "result operators",
        "result line statuses",
        "assumption statuses",
        "recommendation statuses",
        "policy verdicts",
        "assessment statuses",
    ],
)
def test_schema_enum_is_the_vocabulary(where: list[Any], terms: list[Any]) -> None:
    assert where == terms


def test_condition_operators_are_the_vocabulary() -> None:
    leaf = next(b for b in at(RULE, "$defs", "condition", "oneOf") if "fact" in b.get("properties", {}))
    assert set(leaf["properties"]) - {"fact", "in"} == {op.value for op in Op}


def test_rule_scope_metrics_and_outcome_statuses_are_terms() -> None:
    assert set(at(RULE, "properties", "scope", "properties", "metrics", "items", "enum")) <= set(METRICS)
    outcome = next(b for b in at(RULE, "$defs", "condition", "oneOf") if "outcome" in b.get("properties", {}))
    assert set(outcome["properties"]["status"]["enum"]) <= set(Status)


def test_every_status_belongs_to_a_kind() -> None:
    assert {s for k in Kind for s in k.statuses} == set(Status)


@pytest.mark.parametrize(
    ("op", "left", "right", "holds"),
    [
        (Op.LE, 70.0, 70.0, True),
        (Op.LT, 70.0, 70.0, False),
        (Op.GE, 5.0, 5.0, True),
        (Op.GT, 5.0, 5.0, False),
        (Op.EQ, "above", "above", True),
        (Op.NE, 1, 1, False),
    ],
)
def test_operators_on_both_sides_of_the_boundary(op: Op, left: Any, right: Any, holds: bool) -> None:
    assert op.holds(left, right) is holds
    assert op.negated.holds(left, right) is (not holds)
    assert Op.from_symbol(op.symbol) is op


@pytest.mark.parametrize(
    ("levels", "position"),
    [(["L1"], "above"), (["L2"], "below"), (["T12", "L2"], "above"), (["S1"], "below"), (["C1"], "above")],
)
def test_conus_position_by_the_highest_treated_level(levels: list[str], position: str) -> None:
    assert conus_position(levels) == position
