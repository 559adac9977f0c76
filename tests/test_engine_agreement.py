"""durable-rules against the reference interpreter of the parsed rules: every status of every item, case after case.

The reference reads the rule pack as loaded, never the compiled patterns, so the last tests break the compiler on
purpose and show that the check then fails: a check with teeth.
"""

import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reirrad.backends.patterns import evaluate_pattern
from reirrad.knowledge.conditions import And, Cmp, Condition, Const, Not, Or, Outcome
from reirrad.knowledge.rulepack import RulePack, load_pack
from reirrad.logic import compiler
from reirrad.logic.conditions import Pattern, f_of, simplify, t_of, to_pattern, truth, u_of
from reirrad.logic.facts import ALWAYS_PRESENT
from reirrad.testing.differential import compare, generated_cases, rule_test_cases
from reirrad.vocabulary import Op, Status

RULES = Path(__file__).resolve().parent.parent / "rules"
AS_OF = date(2026, 11, 23)


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_pack(RULES)


def test_durable_equals_the_reference_on_every_rule_test_case(pack: RulePack) -> None:
    result = compare(pack, rule_test_cases(RULES))
    assert result.differences == []
    assert result.cases >= 60


def test_durable_equals_the_reference_on_5000_generated_cases(pack: RulePack) -> None:
    result = compare(pack, generated_cases(5000, seed=20261123, as_of=AS_OF))
    assert result.differences == []
    assert result.cases == 5000
    # every status of every kind of rule was reached, the chained recommendations' included
    assert result.statuses == set(Status)


# --- the check has teeth: break the compiler, and the differential test fails --------------------------------------


class _LeAsLt:
    """``Op`` as the compiler sees it, with ``<=`` compiled as ``<``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(Op, name)

    @staticmethod
    def from_symbol(symbol: str) -> Op:
        return Op.LT if symbol == "<=" else Op.from_symbol(symbol)


def _drop_last_conjunct(expr: Condition) -> Condition:
    return And(expr.items[:-1]) if isinstance(expr, And) and len(expr.items) > 1 else expr


def _lose_negations(expr: Condition) -> Condition:
    if isinstance(expr, Not):
        return _lose_negations(expr.item)
    if isinstance(expr, And):
        return And(tuple(_lose_negations(i) for i in expr.items))
    if isinstance(expr, Or):
        return Or(tuple(_lose_negations(i) for i in expr.items))
    return expr


def _compile_condition_as(change: Any) -> Any:
    """The compiler's three patterns of a condition, computed on a changed condition."""

    def patterns(expr: Condition, always: frozenset[str] = frozenset()) -> tuple[Pattern, ...]:
        changed = change(expr)
        return t_of(changed, always), f_of(changed, always), u_of(changed, always)

    return patterns


def _break_le(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "Op", _LeAsLt())


def _break_conjunct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, index in (("t_of", 0), ("f_of", 1), ("u_of", 2)):
        monkeypatch.setattr(
            compiler,
            name,
            lambda e, a=frozenset(), i=index: _compile_condition_as(_drop_last_conjunct)(e, a)[i],
        )


def _break_negation(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, index in (("t_of", 0), ("f_of", 1), ("u_of", 2)):
        monkeypatch.setattr(
            compiler, name, lambda e, a=frozenset(), i=index: _compile_condition_as(_lose_negations)(e, a)[i]
        )


@pytest.mark.parametrize(
    "breakage",
    [_break_le, _break_conjunct, _break_negation],
    ids=["<= compiled as <", "a conjunct dropped", "a negation lost"],
)
def test_a_broken_compiler_makes_the_differential_test_fail(
    pack: RulePack, monkeypatch: pytest.MonkeyPatch, breakage: Any
) -> None:
    # the compiled pack must be built by the broken compiler, not read from the on-disk cache (load/cache.py)
    monkeypatch.setenv("REIRRAD_CACHE", "off")
    healthy = compare(pack, rule_test_cases(RULES))
    assert healthy.agree
    monkeypatch.setenv(
        "REIRRAD_CACHE", "off"
    )  # a compiled pack cached from the healthy compiler would hide it
    breakage(monkeypatch)
    broken = compare(pack, rule_test_cases(RULES))
    assert not broken.agree, "the differential test did not notice a broken compiler"
    assert "durable-rules" in broken.differences[0]


# --- the compiler's three patterns are Kleene logic ------------------------------------------------------------------

FIELDS = ["a", "b", "c"]


def _random_condition(rng: random.Random, depth: int = 0) -> Condition:
    if depth > 2 or rng.random() < 0.35:
        return Cmp(rng.choice(FIELDS), rng.choice(list(Op)), rng.randint(0, 3))
    kind = rng.choice(["and", "or", "not"])
    if kind == "not":
        return Not(_random_condition(rng, depth + 1))
    items = tuple(_random_condition(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    return And(items) if kind == "and" else Or(items)


def _matches(pattern: Pattern, fact: dict[str, int]) -> bool:
    pattern = simplify(pattern)
    if isinstance(pattern, Const):
        return pattern.value
    return evaluate_pattern(to_pattern(pattern), fact)


def test_true_false_unknown_patterns_are_exclusive_exhaustive_and_kleene() -> None:
    """For random conditions and facts with absent fields, exactly one of T/F/U matches, as the interpreter says."""
    rng = random.Random(1)
    for _ in range(3000):
        expr = _random_condition(rng)
        fact = {f: rng.randint(0, 3) for f in FIELDS if rng.random() < 0.75}
        t, f, u = (_matches(x(expr), fact) for x in (t_of, f_of, u_of))
        assert [t, f, u].count(True) == 1, (expr, fact, t, f, u)
        expected = truth(expr, fact)
        assert (t, f, u) == (expected is True, expected is False, expected is None), (expr, fact)


def test_an_outcome_leaf_is_unknown_when_its_rule_could_not_be_decided() -> None:
    leaf = Outcome("r", Status.FAIL)
    assert truth(leaf, {}, {"r": [Status.FAIL, Status.PASS]}) is True
    assert truth(leaf, {}, {"r": [Status.PASS, Status.INDETERMINATE]}) is None
    assert truth(leaf, {}, {"r": [Status.PASS, Status.NOT_APPLICABLE]}) is False
    assert truth(leaf, {}, {}) is None  # the rule is not in force
    assert truth(Not(leaf), {}, {"r": [Status.PASS]}) is True
    assert "conus_position" in ALWAYS_PRESENT
    assert "planned_fractions" not in ALWAYS_PRESENT  # absent before planning


# --- the widest case: every structure and metric the pack names, in every course ------------------------------------


def _widest_case(pack: RulePack) -> Any:
    from reirrad.case import case_problems

    doses = {
        structure: {
            metric: 12.5 + 0.5 * i + j
            for j, metric in enumerate(sorted({m for r in pack.rules for m in r.scope.metrics}))
        }
        for i, structure in enumerate(sorted({s for r in pack.rules for s in r.scope.structures}))
    }
    prior = [
        {
            "start": f"{year}-03-02",
            "end": f"{year}-03-06",
            "technique": "SBRT",
            "prescription": {"dose": 24, "fractions": 3},
            "structures": doses,
        }
        for year in (2019, 2022)
    ]
    document = {
        "schema": "reirrad/case/v1",
        "case_id": "widest",
        "patient": {
            "age": 64,
            "sex": "female",
            "histology": "renal cell carcinoma",
            "ecog": 1,
            "expected_survival_months": 14,
        },
        "lesion": {"levels": ["L1"], "bilsky_grade": "1b", "sins": 8, "recurrence": "in_field"},
        "prior_courses": prior,
        "planned_course": {
            "start": "2026-11-02",
            "technique": "SBRT",
            "prescription": {"dose": 24, "fractions": 3},
            "ptv_high_dmin": 20.0,
            "structures": doses,
        },
    }
    case, problems = case_problems(document, {}, "widest.yaml")
    assert case is not None, [p.render() for p in problems]
    return case


def test_the_widest_case_fits_durables_stack_and_agrees_with_the_reference(pack: RulePack) -> None:
    """Every item marker of the pack in one fact (more than durable's 64-node stack): durable answers, and as the
    reference does."""
    from reirrad.evaluate import build_fact

    case = _widest_case(pack)
    selected = pack.select(AS_OF)
    markers = [k for k in build_fact(case, selected).fact if k.startswith("i__")]
    assert len(markers) > 64
    result = compare(pack, [("widest", AS_OF, case)])
    assert (result.cases, result.differences) == (1, [])


def test_without_groups_the_widest_case_overflows_durables_stack(
    pack: RulePack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grouping has teeth: one group for the whole pack puts every marker under one node, and durable refuses."""
    from reirrad.backends.durable import DurableEngine
    from reirrad.errors import EngineError
    from reirrad.evaluate import build_fact

    selected = pack.select(AS_OF)
    monkeypatch.setattr(compiler, "GROUP_MARKERS", 10**6)
    compiled = compiler.compile_pack(selected)
    assert set(compiled.group_of.values()) == {"g__0"}
    fact = build_fact(_widest_case(pack), selected, groups=compiled.group_of).fact
    with pytest.raises(EngineError, match=r"would open \d+ nodes .*GROUP_MARKERS"):
        DurableEngine(compiled).fire(fact)
