"""Why a verdict: every leaf of a rule's condition in words, with its truth on this case (the Kleene interpreter's).

The pertinent positives, negatives and unknowns of a recommendation, and the reasons a rule does not apply or
cannot be decided, are these leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reirrad.knowledge.conditions import Cmp, Condition, Not, Outcome
from reirrad.logic.conditions import Truth, leaf_truth, outcome_truth
from reirrad.logic.facts import CONTEXT_FACTS
from reirrad.plan import Outcomes, RulePlan
from reirrad.vocabulary import Op, Status

__all__ = ["AWAITING_PLAN", "Explainer", "Leaf", "explain_condition"]

Leaf = tuple[str, Truth]
"""A condition leaf in words, and whether it holds (None: unknown)."""

AWAITING_PLAN = "awaiting a plan"
"""What an unknown leaf says before planning when it waits for the plan itself (a planned fact or a dose verdict)."""
_PLANNED_FACTS = frozenset({"planned_stereotactic", "planned_fractions", "planned_dose_per_fraction"})


def _leaf_text(leaf: Cmp, facts: Mapping[str, Any], awaiting_plan: bool) -> Leaf:
    spec = CONTEXT_FACTS.get(leaf.field)
    name = spec.description if spec else leaf.field
    holds = leaf_truth(leaf, facts)
    if holds is None:
        waits = awaiting_plan and leaf.field in _PLANNED_FACTS
        return f"{name}: {AWAITING_PLAN if waits else 'not provided'}", None
    value = facts[leaf.field]
    want = leaf.value
    if isinstance(value, bool) or (spec is not None and spec.type == "boolean"):
        shown = "yes" if value else "no"
        required = ("yes" if want else "no") if leaf.op == Op.EQ else ("no" if want else "yes")
        return f"{name} = {shown} ({required} required)", holds
    shown = f"{value:g}" if isinstance(value, float) else value
    wanted = f"{want:g}" if isinstance(want, int | float) else want
    return f"{name} = {shown} ({leaf.op.sign} {wanted} required)", holds


def _outcome_text(leaf: Outcome, outcomes: Outcomes, awaiting_plan: bool) -> Leaf:
    items = outcomes.get(leaf.rule)
    holds = outcome_truth(leaf, None if items is None else {leaf.rule: [st for _, st in items]})
    if items is None:
        return f"{leaf.rule}: not in force on this date", holds
    if holds is None and awaiting_plan:
        return f"{leaf.rule}: {AWAITING_PLAN}", holds
    hits = [item.replace("|", " ") or "(case)" for item, st in items if st == leaf.status]
    if hits:
        return f"{leaf.rule}: {leaf.status} on {', '.join(hits)}", holds
    open_ = [item.replace("|", " ") or "(case)" for item, st in items if st == Status.INDETERMINATE]
    if open_:
        return f"{leaf.rule}: no item has {leaf.status}, but {', '.join(open_)} could not be decided", holds
    if all(st == Status.NOT_APPLICABLE for _, st in items):
        return f"{leaf.rule}: not applicable to this case", holds
    return f"{leaf.rule}: no item {'fails' if leaf.status == Status.FAIL else 'passes'}", holds


def explain_condition(
    expr: Condition, facts: Mapping[str, Any], outcomes: Outcomes | None = None, awaiting_plan: bool = False
) -> list[Leaf]:
    """Every leaf of a condition with its truth on this case: the pertinent positives, negatives and unknowns.
    Before planning (``awaiting_plan``), a leaf that waits for the plan says so."""
    if isinstance(expr, Cmp):
        return [_leaf_text(expr, facts, awaiting_plan)]
    if isinstance(expr, Outcome):
        return [_outcome_text(expr, outcomes or {}, awaiting_plan)]
    if isinstance(expr, Not):
        if isinstance(expr.item, Outcome):
            text, holds = _outcome_text(expr.item, outcomes or {}, awaiting_plan)
            if holds is None and awaiting_plan:
                return [(text, None)]
            return [(f"{text} (none may have {expr.item.status})", None if holds is None else not holds)]
        return [
            (f"not ({text})", None if holds is None else not holds)
            for text, holds in explain_condition(expr.item, facts, outcomes, awaiting_plan)
        ]
    out: list[Leaf] = []
    for child in getattr(expr, "items", ()):
        out += explain_condition(child, facts, outcomes, awaiting_plan)
    return out


class Explainer:
    """Explanations of a run's rules, each computed once per distinct set of facts (and verdicts) it reads."""

    MAX_ENTRIES = 100_000
    """The cache is emptied when it grows past this many explanations."""

    def __init__(self, plans: Mapping[str, RulePlan]) -> None:
        self.plans = plans
        self._explained: dict[tuple[Any, ...], list[Leaf]] = {}

    def condition(
        self, rule_id: str, facts: Mapping[str, Any], outcomes: Outcomes, awaiting_plan: bool = False
    ) -> list[Leaf]:
        """Every leaf of the rule's condition with its truth, verdict leaves included."""
        plan = self.plans[rule_id]
        key = (
            "condition",
            rule_id,
            awaiting_plan,
            tuple(facts.get(f) for f in plan.applies_fields),
            tuple(None if outcomes.get(r) is None else tuple(outcomes[r]) for r in plan.outcome_rules),
        )
        return self._cached(key, lambda: explain_condition(plan.applies, facts, outcomes, awaiting_plan))

    def applies(self, rule_id: str, facts: Mapping[str, Any], awaiting_plan: bool = False) -> list[Leaf]:
        """The rule's applicability leaves with their truth on this case."""
        plan = self.plans[rule_id]
        key = ("applies", rule_id, awaiting_plan, tuple(facts.get(f) for f in plan.applies_fields))
        return self._cached(key, lambda: explain_condition(plan.applies, facts, None, awaiting_plan))

    def _cached(self, key: tuple[Any, ...], build: Callable[[], list[Leaf]]) -> list[Leaf]:
        found = self._explained.get(key)
        if found is None:
            if len(self._explained) > self.MAX_ENTRIES:
                self._explained.clear()
            found = self._explained[key] = build()
        return found
