"""The test oracle: the compiled patterns evaluated in plain Python, with the same forward chaining."""

from __future__ import annotations

from itertools import permutations
from typing import Any

from .compiler import CompiledPack
from .conditions import evaluate_pattern

__all__ = ["OracleEngine"]


class OracleEngine:
    """Fires every compiled rule whose patterns match distinct facts, to a fixed point. Slow, obvious, independent."""

    name = "python-oracle"
    version = "1"

    def __init__(self, compiled: CompiledPack) -> None:
        self.compiled = compiled

    def fire(self, fact: dict[str, Any]) -> list[str]:
        facts: list[dict[str, Any]] = [dict(fact)]
        fired: list[str] = []
        seen: set[tuple[str, tuple[int, ...]]] = set()
        changed = True
        while changed:
            changed = False
            for rule in self.compiled.rules:
                n = len(rule.patterns)
                for combo in permutations(range(len(facts)), n):
                    if (rule.name, combo) in seen:
                        continue
                    if all(evaluate_pattern(p, facts[i]) for p, i in zip(rule.patterns, combo, strict=True)):
                        seen.add((rule.name, combo))
                        fired.append(rule.name)
                        changed = True
                        if rule.asserts is not None:
                            facts.append(dict(rule.asserts))
        return fired
