"""The measured sharp edges of durable-rules, each held off by the adapter and checked here."""

import re
from pathlib import Path

import pytest
from reirrad.backends.durable import DurableEngine
from reirrad.errors import EngineError
from reirrad.logic.compiler import CompiledPack, CompiledRule

ENGINE_DIR = Path(__file__).resolve().parent.parent / "engine"


def _pack(name: str, rules: list[CompiledRule]) -> CompiledPack:
    return CompiledPack(name, tuple(rules), (), name.ljust(64, "0"))


def _rule(name: str, pattern: dict, asserts: dict | None = None) -> CompiledRule:  # type: ignore[type-arg]
    return CompiledRule(
        name,
        name.split("|", maxsplit=1)[0],
        "1.0.0",
        "",
        name.rsplit("|", maxsplit=1)[-1],
        (pattern,),
        asserts,
    )


def test_exactly_one_module_imports_durable() -> None:
    importers = [
        p.name
        for p in ENGINE_DIR.rglob("*.py")
        if re.search(r"^\s*(from|import) (durable|durable_rules_engine)\b", p.read_text(), re.M)
    ]
    assert importers == ["durable.py"]
    assert not re.search(r"\.post\(", (ENGINE_DIR / "reirrad" / "backends" / "durable.py").read_text())


def test_every_matching_rule_fires_not_only_the_first() -> None:
    """durable's post() lets one event fire one rule; facts asserted with assert_fact fire all of them."""
    engine = DurableEngine(_pack("t_all", [_rule(f"r{i}|pass", {"$gte": {"x": i}}) for i in range(20)]))
    assert sorted(engine.fire({"x": 19})) == sorted(f"r{i}|pass" for i in range(20))
    assert sorted(engine.fire({"x": 4})) == sorted(f"r{i}|pass" for i in range(5))


def test_states_are_deleted_so_the_1024_state_limit_is_never_reached() -> None:
    engine = DurableEngine(_pack("t_states", [_rule("r|pass", {"x": 1})]))
    for i in range(1500):
        assert engine.fire({"x": i % 2}) == (["r|pass"] if i % 2 else [])


def test_an_or_pattern_fires_once_even_when_both_branches_match() -> None:
    engine = DurableEngine(_pack("t_or", [_rule("r|pass", {"$or": [{"a": 1}, {"b": 1}]})]))
    assert engine.fire({"a": 1, "b": 1}) == ["r|pass"]


def test_a_missing_field_matches_no_comparison_only_nex() -> None:
    engine = DurableEngine(
        _pack(
            "t_missing",
            [
                _rule("lt|pass", {"$lt": {"v": 5}}),
                _rule("neq|pass", {"$neq": {"v": 1}}),
                _rule("nex|pass", {"$nex": {"v": 1}}),
            ],
        )
    )
    assert engine.fire({"w": 0}) == ["nex|pass"]


def test_derived_facts_chain_within_the_same_case() -> None:
    engine = DurableEngine(
        _pack(
            "t_chain",
            [
                _rule(
                    "a|fail", {"$gt": {"x": 3}}, asserts={"kind": "outcome", "rule": "a", "status": "fail"}
                ),
                _rule("b|made", {"$and": [{"kind": "outcome"}, {"rule": "a"}, {"status": "fail"}]}),
            ],
        )
    )
    assert engine.fire({"kind": "case", "x": 5}) == ["a|fail", "b|made"]
    assert engine.fire({"kind": "case", "x": 1}) == []


def test_an_error_inside_an_action_reaches_the_caller_and_the_state_is_cleaned() -> None:
    pack = _pack("t_raise", [_rule("r|pass", {"x": 1})])
    engine = DurableEngine(pack)

    def boom(name: str, message: str) -> None:
        raise ValueError("action failed")

    engine._on_fire = boom  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="action failed"):
        engine.fire({"x": 1})
    engine._on_fire = DurableEngine._on_fire.__get__(engine)  # type: ignore[method-assign]
    assert engine.fire({"x": 1}) == ["r|pass"]  # the session was deleted: the same fact is accepted again


def test_a_fact_over_durables_property_limit_is_refused() -> None:
    engine = DurableEngine(_pack("t_big", [_rule("r|pass", {"x": 1})]))
    with pytest.raises(EngineError, match="at most 252 properties"):
        engine.fire({f"p{i}": i for i in range(260)})


def test_a_ruleset_is_registered_once_per_process() -> None:
    pack = _pack("t_once", [_rule("r|pass", {"x": 1})])
    first, second = DurableEngine(pack), DurableEngine(pack)
    assert first._host is second._host
    assert second.fire({"x": 1}) == ["r|pass"]


def test_no_fact_is_asserted_while_an_action_is_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asserting a derived fact between durable's start_action and complete calls corrupted its heap here
    ('realloc(): invalid next size', intermittently after some hundred chained cases). The adapter must assert
    derived facts only after the action loop has drained; this checks that on every native call."""
    from datetime import date

    import reirrad.backends.durable as adapter
    from reirrad.case import case_problems
    from reirrad.evaluate import Evaluator
    from reirrad.testing.synth import synth_cases

    native = adapter._native
    state = {"in_flight": False, "asserts": 0}
    start, complete, assert_fact = (
        native.start_action_for_state,
        native.complete_and_start_action,
        native.assert_fact,
    )

    def tracked_start(handle: int, state_handle: int):  # type: ignore[no-untyped-def]
        result = start(handle, state_handle)
        state["in_flight"] = bool(result)
        return result

    def tracked_complete(handle: int, state_handle: int):  # type: ignore[no-untyped-def]
        result = complete(handle, state_handle)
        state["in_flight"] = bool(result)
        return result

    def checked_assert(handle: int, message: str):  # type: ignore[no-untyped-def]
        assert not state["in_flight"], f"fact asserted while an action is in flight: {message[:80]}"
        state["asserts"] += 1
        return assert_fact(handle, message)

    monkeypatch.setattr(native, "start_action_for_state", tracked_start)
    monkeypatch.setattr(native, "complete_and_start_action", tracked_complete)
    monkeypatch.setattr(native, "assert_fact", checked_assert)
    ev = Evaluator(as_of=date(2025, 10, 1))
    for doc in synth_cases(100, seed=4):
        case, _ = case_problems(doc, {}, doc["case_id"])
        assert case is not None
        ev.evaluate(case)
    assert (
        state["asserts"] > 300
    )  # the case, its derived outcome facts and the stage facts: chaining happened


def test_durable_fires_exactly_what_the_compiled_patterns_say() -> None:
    """The adapter check: on every rule test case and 300 generated cases, durable-rules fires exactly the
    compiled rules that the patterns, interpreted in plain Python with durable's semantics, say should fire."""
    from datetime import date

    from reirrad.backends.patterns import PatternEngine
    from reirrad.evaluate import Evaluator
    from reirrad.knowledge.rulepack import load_pack
    from reirrad.testing.differential import generated_cases, rule_test_cases

    rules = ENGINE_DIR.parent / "rules"
    pack = load_pack(rules)
    evaluators: dict[date, Evaluator] = {}
    checked = 0
    cases = [*rule_test_cases(rules), *generated_cases(300, seed=20261124, as_of=date(2026, 11, 23))]
    for name, as_of, case in cases:
        ev = evaluators.setdefault(as_of, Evaluator(pack, as_of=as_of))
        assert isinstance(ev.engine, DurableEngine)
        fact = ev.prepare(case).fact
        assert sorted(ev.engine.fire(fact)) == sorted(PatternEngine(ev.compiled).fire(fact)), name
        checked += 1
    assert checked >= 360


def _wide(name: str, n: int, grouped: bool) -> CompiledPack:
    """``n`` rules, each opening with its own marker (as the compiled pack's item markers do), under a group field
    of at most 24 markers when ``grouped``."""
    return _pack(
        name,
        [
            _rule(
                f"r{k}|pass",
                {"$and": [*([{f"g{k // 24}": 1}] if grouped else []), {f"i_{k}": 1}, {"$gt": {f"v_{k}": 0}}]},
            )
            for k in range(n)
        ],
    )


def test_a_fact_opening_more_nodes_than_durables_stack_holds_is_refused_before_durable_sees_it() -> None:
    """durable's alpha walk pushes every matching child of a node onto a stack of 64 (64 flat patterns matching
    one fact corrupted its heap here; 70 crashed the process): the adapter counts the nodes a fact opens and
    refuses it, in words, before asserting it; the engine stays usable."""
    fact = {**{f"i_{k}": 1 for k in range(70)}, **{f"v_{k}": 1 for k in range(70)}}
    assert len(DurableEngine(_wide("t_stack_40", 40, grouped=False)).fire(fact)) == 40
    flat = DurableEngine(_wide("t_stack_flat", 70, grouped=False))
    with pytest.raises(EngineError, match=r"open 72 nodes .* more than the 48 .*GROUP_MARKERS"):
        flat.fire(fact)
    assert flat.fire({"i_1": 1, "v_1": 2}) == ["r1|pass"]
    # the count is of the nodes this fact opens, not of the rules: 70 rules, 30 markers present, is fine
    few = {**{f"i_{k}": 1 for k in range(30)}, **{f"v_{k}": 1 for k in range(30)}}
    assert len(flat.fire(few)) == 30


def test_grouped_markers_keep_durables_stack_small_however_many_rules_match() -> None:
    engine = DurableEngine(_wide("t_stack_grouped", 120, grouped=True))
    fact = {**{f"i_{k}": 1 for k in range(120)}, **{f"v_{k}": 1 for k in range(120)}}
    fired = engine.fire({**fact, **{f"g{j}": 1 for j in range(5)}})
    assert sorted(fired) == sorted(f"r{k}|pass" for k in range(120))


def test_the_fan_out_count_reads_each_equality_as_durable_would() -> None:
    """_FanOut decodes each equality once; its count equals the one from comparing JSON texts (_may_match) on the
    real pack's facts, and on values whose type makes the difference (1 and 1.0, 1 and True, "1" and 1)."""
    from datetime import date

    import json

    from reirrad.backends.durable import _FanOut
    from reirrad.evaluate import Evaluator
    from reirrad.testing.differential import generated_cases

    def _may_match(test: tuple | None, fact: dict) -> bool:  # type: ignore[type-arg]
        """The count's first form: the fact's value written as JSON and compared with the test's text."""
        if test is None:
            return True
        if test[0] == "=":
            return test[1] in fact and json.dumps(fact[test[1]]) == test[2]
        if test[0] == "$nex":
            return test[1] not in fact
        return True

    def by_text(fan: _FanOut, fact: dict) -> int:  # type: ignore[type-arg]
        opened = [first for first in fan.tree if _may_match(first, fact)]
        return len(opened) + max((sum(_may_match(t, fact) for t in fan.tree[f]) for f in opened), default=0)

    evaluator = Evaluator(as_of=date(2026, 11, 23), sensitivity=False)
    fan = _FanOut(evaluator.compiled)
    facts = [evaluator.prepare(c).fact for _, _, c in generated_cases(60, seed=3, as_of=date(2026, 11, 23))]
    assert {fan.widest(f) == by_text(fan, f) for f in facts} == {True}
    toy = _FanOut(
        _pack("typed", [_rule("t|a|pass", {"$and": [{"k": 1}, {"j": "1"}]}), _rule("t|b|pass", {"m": 1.0})])
    )
    for fact in ({"k": 1, "j": "1"}, {"k": 1.0, "j": 1}, {"k": True, "m": 1}, {"m": 1.0, "k": 1, "j": 1}):
        assert toy.widest(fact) == by_text(toy, fact), fact
    assert toy.widest({"k": 1, "j": "1", "m": 1.0}) == 3
    assert toy.widest({"k": True, "j": 1, "m": 1}) == 0
