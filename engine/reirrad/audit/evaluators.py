"""The audit's evaluators: one per rule set in force (not per date), and the bulk validation of a case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from reirrad.case import Case, case_problems_fast
from reirrad.errors import Problem
from reirrad.knowledge.rulepack import RulePack

__all__ = ["EvaluatorCache", "Hook", "validate_document"]

Hook = Callable[[Any], None]
"""Called with each new evaluator (tests use it to count or instrument evaluators)."""


def validate_document(data: Any, lines: Any, file: str) -> tuple[Case | None, list[Problem]]:
    """The case's validation for bulk work (reirrad.case.case_problems_fast)."""
    return case_problems_fast(data, lines, file)


class EvaluatorCache:
    """Evaluators of one process, one per rule set in force (the set of (rule id, version)), not per date."""

    def __init__(self, pack: RulePack, engine: str = "durable", hook: Hook | None = None) -> None:
        self.pack = pack
        self.engine = engine
        self.hook = hook
        self._key_of_date: dict[date, tuple[tuple[str, str], ...]] = {}
        self._by_key: dict[tuple[tuple[str, str], ...], tuple[Any, str]] = {}

    def for_date(self, on: date) -> tuple[Any, str]:
        """The evaluator for the rules in force on ``on`` and the set's label (evaluate with ``as_of=on``)."""
        from reirrad.evaluate import Evaluator

        key = self._key_of_date.get(on)
        if key is None:
            selected = self.pack.select(on)
            key = tuple((r.id, r.version) for r in selected.rules)
            if len(self._key_of_date) > 50_000:
                self._key_of_date.clear()
            self._key_of_date[on] = key
            if key not in self._by_key:
                ev = Evaluator(selected, as_of=on, engine=self.engine)
                if self.hook is not None:
                    self.hook(ev)
                label = ", ".join(f"{i}@{v}" for i, v in key)
                self._by_key[key] = (ev, label)
        return self._by_key[key]
