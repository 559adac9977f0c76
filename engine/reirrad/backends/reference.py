"""The reference: each rule's parsed condition and limit interpreted in Kleene logic, in plain Python.

It reads the rule pack as loaded (``Rule.condition``, ``Rule.limit``), never the compiled patterns, so a compiler
mistake (an operator, a dropped conjunct, a lost negation) shows as a disagreement with durable-rules. The meaning
it gives each kind of rule is the documented one (docs/engine.md):

- applicability false → not applicable; unknown → indeterminate;
- applicable, a constraint or advisory compares its computed value with its limit: pass, fail, or indeterminate
  when the value or the limit (no row of a limit table for this case) is missing;
- an assumption that applies is applied;
- a recommendation is made, not made or undecided as its condition is true, false or unknown, where an outcome
  leaf reads the verdicts of the rules evaluated before it (a rule not in force is unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reirrad.knowledge.conditions import outcomes_of
from reirrad.knowledge.rulepack import Rule
from reirrad.logic.conditions import Truth, truth
from reirrad.vocabulary import Kind, Op, Status

__all__ = ["PendingItem", "ReferenceEngine", "check_truth", "status_of"]

PendingItem = tuple[Rule, str, float | None]
"""A rule, an item key and the item's computed value (None when it could not be computed)."""


def check_truth(rule: Rule, value: float | None, facts: Mapping[str, Any]) -> Truth:
    """``value <operator> limit`` for this case; unknown without a value or without a limit for this case."""
    limit = rule.limit
    assert limit is not None
    entry = limit.resolve(facts)
    if value is None or entry is None:
        return None
    return Op.from_symbol(limit.operator).holds(value, entry.value)


_BY_TRUTH = {
    Kind.ASSUMPTION: {True: Status.APPLIED, None: Status.INDETERMINATE, False: Status.NOT_APPLICABLE},
    Kind.RECOMMENDATION: {True: Status.MADE, None: Status.INDETERMINATE, False: Status.NOT_MADE},
}
_CHECKED = {True: Status.PASS, False: Status.FAIL, None: Status.INDETERMINATE}


def status_of(
    rule: Rule,
    value: float | None,
    facts: Mapping[str, Any],
    outcomes: Mapping[str, Sequence[Status]] | None = None,
) -> Status:
    """One item's status under the documented meaning of its rule's kind."""
    applies = truth(rule.condition, facts, outcomes)
    if rule.kind in _BY_TRUTH:
        return _BY_TRUTH[rule.kind][applies]
    if applies is False:
        return Status.NOT_APPLICABLE
    if applies is None:
        return Status.INDETERMINATE
    return _CHECKED[check_truth(rule, value, facts)]


class ReferenceEngine:
    """Statuses of every item of a case, rule by rule: the rules that read no verdict first, then the rest."""

    name = "python-oracle"
    version = "2"

    def statuses(
        self, facts: Mapping[str, Any], items: Sequence[PendingItem]
    ) -> dict[tuple[str, str], Status]:
        out: dict[tuple[str, str], Status] = {}
        verdicts: dict[str, list[Status]] = {}
        chained = [item for item in items if _reads_verdicts(item[0])]
        for rule, key, value in items:
            if not _reads_verdicts(rule):
                out[(rule.id, key)] = status = status_of(rule, value, facts)
                if rule.kind.is_dose_check:
                    verdicts.setdefault(rule.id, []).append(status)
        for rule, key, value in chained:
            out[(rule.id, key)] = status_of(rule, value, facts, verdicts)
        return out


def _reads_verdicts(rule: Rule) -> bool:
    return bool(outcomes_of(rule.condition))
