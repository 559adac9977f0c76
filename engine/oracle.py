"""The test oracle: the compiled patterns evaluated in plain Python, with the same forward chaining."""

from __future__ import annotations

from itertools import permutations
from typing import Any

from .compiler import CompiledPack
from .conditions import evaluate_pattern

__all__ = ["OracleEngine"]


class OracleEngine:
    """Fires each compiled rule at most once per case, when its patterns match distinct facts, to a fixed point.

    Slow, obvious and independent of durable-rules; the engine's adapter follows the same at-most-once semantics.
    """

    name = "python-oracle"
    version = "1"

    def __init__(self, compiled: CompiledPack) -> None:
        self.compiled = compiled

    def fire(self, fact: dict[str, Any]) -> list[str]:
        facts: list[dict[str, Any]] = [dict(fact)]
        fired: list[str] = []
        changed = True
        while changed:
            changed = False
            for rule in self.compiled.rules:
                if rule.name in fired:
                    continue
                n = len(rule.patterns)
                for combo in permutations(range(len(facts)), n):
                    if all(evaluate_pattern(p, facts[i]) for p, i in zip(rule.patterns, combo, strict=True)):
                        fired.append(rule.name)
                        changed = True
                        if rule.asserts is not None:
                            facts.append(dict(rule.asserts))
                        break
        return fired
