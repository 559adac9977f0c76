"""The compiled patterns evaluated in plain Python, with durable's forward chaining: a check of the durable adapter.

It reads what the compiler produced, so it cannot catch a compiler mistake (``reirrad.backends.reference`` does);
it shows that durable-rules and the adapter fire exactly what the compiled patterns say."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reirrad.logic.compiler import CompiledPack, CompiledRule, stage_fact

__all__ = ["PatternEngine", "evaluate_pattern"]


class PatternEngine:
    """Fires each compiled rule at most once per case, when its patterns match distinct facts, to a fixed point.

    Slow, obvious and independent of durable-rules; the engine's adapter follows the same at-most-once semantics.
    """

    name = "python-patterns"
    version = "1"

    def __init__(self, compiled: CompiledPack) -> None:
        self.compiled = compiled

    def fire(self, fact: dict[str, Any]) -> list[str]:
        facts: list[dict[str, Any]] = [dict(fact)]
        fired: list[str] = []
        for stage in range(1, self.compiled.stages + 1):
            if stage > 1:
                facts.append(stage_fact(stage))
            self._fixpoint(facts, fired)
        return fired

    def _fixpoint(self, facts: list[dict[str, Any]], fired: list[str]) -> None:
        changed = True
        while changed:
            changed = False
            for rule in self.compiled.rules:
                if rule.name in fired or not self._matches(rule, facts):
                    continue
                fired.append(rule.name)
                changed = True
                if (
                    rule.asserts is not None and rule.asserts not in facts
                ):  # a fact exists once, as in durable
                    facts.append(dict(rule.asserts))

    @staticmethod
    def _matches(rule: CompiledRule, facts: list[dict[str, Any]]) -> bool:
        """Positive patterns match distinct facts; a negated pattern matches no fact at all."""
        positive = [p for i, p in enumerate(rule.patterns) if not rule.is_negated(i)]
        negative = [p for i, p in enumerate(rule.patterns) if rule.is_negated(i)]
        if any(evaluate_pattern(p, f) for p in negative for f in facts):
            return False
        candidates = [[i for i, f in enumerate(facts) if evaluate_pattern(p, f)] for p in positive]
        return _distinct_choice(candidates, 0, set())


def _distinct_choice(candidates: list[list[int]], at: int, used: set[int]) -> bool:
    """Whether each pattern from ``at`` on can take one of its candidate facts, no fact taken twice."""
    if at == len(candidates):
        return True
    for i in candidates[at]:
        if i not in used:
            used.add(i)
            found = _distinct_choice(candidates, at + 1, used)
            used.discard(i)
            if found:
                return True
    return False


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "$lt":
        return bool(left < right)
    if op == "$lte":
        return bool(left <= right)
    if op == "$gt":
        return bool(left > right)
    if op == "$gte":
        return bool(left >= right)
    if op == "$neq":
        return bool(left != right)
    raise ValueError(f"unknown operator {op}")


def evaluate_pattern(pattern: Mapping[str, Any], fact: Mapping[str, Any]) -> bool:
    """durable-rules pattern semantics in plain Python (an absent field never matches a comparison)."""
    ((key, body),) = pattern.items()
    if key == "$and":
        return all(evaluate_pattern(p, fact) for p in body)
    if key == "$or":
        return any(evaluate_pattern(p, fact) for p in body)
    if key == "$nex":
        ((field, _),) = body.items()
        return field not in fact
    if key == "$ex":
        ((field, _),) = body.items()
        return field in fact
    if key.startswith("$"):
        ((field, value),) = body.items()
        return field in fact and _compare(key, fact[field], value)
    return key in fact and bool(fact[key] == body)
