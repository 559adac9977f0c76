"""durable-rules and the plain-Python oracle must fire exactly the same compiled rules, case after case."""

import random
from pathlib import Path

import pytest
from reirrad.case import case_problems
from reirrad.evaluate import Evaluator, build_fact
from reirrad.knowledge.rulepack import load_pack
from reirrad.logic.conditions import (
    FALSE,
    And,
    Cmp,
    Not,
    Or,
    evaluate_pattern,
    f_of,
    simplify,
    t_of,
    to_pattern,
    u_of,
)
from reirrad.testing.casetests import discover, load_bases, load_case_tests
from reirrad.testing.synth import synth_cases

RULES = Path(__file__).resolve().parent.parent / "rules"


@pytest.fixture(scope="module")
def engines() -> tuple[Evaluator, Evaluator]:
    pack = load_pack(RULES)
    return Evaluator(pack, engine="durable"), Evaluator(pack, engine="oracle")


def test_same_rules_fire_on_every_rule_test_case(engines: tuple[Evaluator, Evaluator]) -> None:
    durable, oracle = engines
    bases = load_bases(RULES)
    checked = 0
    for path in discover(RULES):
        for test in load_case_tests(path, bases):
            case, problems = case_problems(test.document, {}, test.name)
            assert case is not None, problems
            fact, _, _ = build_fact(case, durable.pack, durable.plans)
            assert sorted(durable.engine.fire(fact)) == sorted(oracle.engine.fire(fact)), test.name
            checked += 1
    assert checked >= 60


def test_same_rules_fire_on_a_thousand_generated_cases(engines: tuple[Evaluator, Evaluator]) -> None:
    durable, oracle = engines
    statuses: set[str] = set()
    for doc in synth_cases(1000, seed=20261123, de_novo_rate=0.15, lost_dosimetry_rate=0.15):
        case, problems = case_problems(doc, {}, doc["case_id"])
        assert case is not None, problems
        fact, _, _ = build_fact(case, durable.pack, durable.plans)
        fired = durable.engine.fire(fact)
        assert sorted(fired) == sorted(oracle.engine.fire(fact)), doc["case_id"]
        statuses.update(name.rsplit("|", 1)[1].split("#")[0] for name in fired)
    # every outcome exercised, the chained recommendations included
    assert statuses == {"pass", "fail", "indeterminate", "not_applicable", "applied", "made", "not_made"}


def test_every_item_gets_exactly_one_status(engines: tuple[Evaluator, Evaluator]) -> None:
    durable, _ = engines
    for doc in synth_cases(500, seed=7):
        case, _ = case_problems(doc, {}, doc["case_id"])
        assert case is not None
        _, _, items, status = durable.statuses(case)  # raises EngineError on none or two
        assert len(status) == len(items)


FIELDS = ["a", "b", "c"]


def _random_expr(rng: random.Random, depth: int = 0) -> object:
    if depth > 2 or rng.random() < 0.35:
        return Cmp(rng.choice(FIELDS), rng.choice(["eq", "ne", "lt", "le", "gt", "ge"]), rng.randint(0, 3))
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        return Not(_random_expr(rng, depth + 1))  # type: ignore[arg-type]
    items = tuple(_random_expr(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    return And(items) if kind == "and" else Or(items)  # type: ignore[arg-type]


def _kleene(expr: object, fact: dict[str, int]) -> bool | None:
    if isinstance(expr, Cmp):
        if expr.field not in fact:
            return None
        v = fact[expr.field]
        return {
            "eq": v == expr.value,
            "ne": v != expr.value,
            "lt": v < expr.value,
            "le": v <= expr.value,
            "gt": v > expr.value,
            "ge": v >= expr.value,
        }[expr.op]
    if isinstance(expr, Not):
        inner = _kleene(expr.item, fact)
        return None if inner is None else not inner
    values = [_kleene(i, fact) for i in expr.items]  # type: ignore[attr-defined]
    if isinstance(expr, And):
        return False if False in values else (None if None in values else True)
    return True if True in values else (None if None in values else False)


def _matches(expr: object, fact: dict[str, int]) -> bool:
    expr = simplify(expr)  # type: ignore[arg-type]
    if expr == FALSE:
        return False
    return evaluate_pattern(to_pattern(expr), fact)


def test_true_false_unknown_patterns_are_exclusive_exhaustive_and_kleene() -> None:
    """For random conditions and facts with absent fields, exactly one of T/F/U matches, as Kleene logic says."""
    rng = random.Random(1)
    for _ in range(3000):
        expr = _random_expr(rng)
        fact = {f: rng.randint(0, 3) for f in FIELDS if rng.random() < 0.75}
        t, f, u = (_matches(x(expr), fact) for x in (t_of, f_of, u_of))  # type: ignore[arg-type]
        assert [t, f, u].count(True) == 1, (expr, fact, t, f, u)
        expected = _kleene(expr, fact)
        assert (t, f, u) == (expected is True, expected is False, expected is None), (expr, fact)
