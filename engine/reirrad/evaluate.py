"""The pipeline: case → computed quantities → one fact → rules fired on the engine → explained results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, Protocol

from reirrad.case import Case
from reirrad.dose.calculations import CONTEXT_FACTS, Computed, compute_item, context_facts
from reirrad.errors import EngineError
from reirrad.knowledge.rulepack import Rule, RulePack, load_pack
from reirrad.load.paths import tool_version
from reirrad.logic.compiler import (
    RULE_LEVEL,
    CompiledPack,
    compile_pack,
    item_key,
    marker_field,
    rule_marker_field,
    value_field,
)
from reirrad.logic.conditions import Cmp, Expr, Not, Outcome, parse_condition

__all__ = ["Engine", "Evaluator", "build_fact", "explain_condition"]


class Engine(Protocol):
    name: str
    version: str

    def fire(self, fact: dict[str, Any]) -> list[str]: ...


_OPS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


def _leaf_text(leaf: Cmp, ctx: dict[str, Any]) -> tuple[str, bool | None]:
    spec = CONTEXT_FACTS.get(leaf.field)
    name = spec.description if spec else leaf.field
    if leaf.field not in ctx:
        return f"{name}: not provided", None
    actual = ctx[leaf.field]
    want = leaf.value
    boolean = isinstance(actual, bool) or (spec is not None and spec.type == "boolean")
    if isinstance(actual, bool):
        actual = int(actual)
    truth = {
        "eq": actual == want,
        "ne": actual != want,
        "lt": actual < want,
        "le": actual <= want,
        "gt": actual > want,
        "ge": actual >= want,
    }[leaf.op]
    if boolean:
        shown = "yes" if actual else "no"
        required = ("yes" if want else "no") if leaf.op == "eq" else ("no" if want else "yes")
        return f"{name} = {shown} ({required} required)", truth
    value = ctx[leaf.field]
    shown = f"{value:g}" if isinstance(value, float) else value
    return f"{name} = {shown} ({_OPS[leaf.op]} {want:g} required)" if isinstance(
        want, int | float
    ) else f"{name} = {shown} ({_OPS[leaf.op]} {want} required)", truth


def _outcome_text(leaf: Outcome, outcomes: dict[str, list[tuple[str, str]]]) -> tuple[str, bool | None]:
    items = outcomes.get(leaf.rule)
    if items is None:
        return f"{leaf.rule}: not in force on this date", None
    hits = [item.replace("|", " ") or "(case)" for item, st in items if st == leaf.status]
    if hits:
        return f"{leaf.rule}: {leaf.status} on {', '.join(hits)}", True
    open_ = [item.replace("|", " ") or "(case)" for item, st in items if st == "indeterminate"]
    if open_:
        return f"{leaf.rule}: no item has {leaf.status}, but {', '.join(open_)} could not be decided", None
    if all(st == "not_applicable" for _, st in items):
        return f"{leaf.rule}: not applicable to this case", False
    return f"{leaf.rule}: no item {'fails' if leaf.status == 'fail' else 'passes'}", False


def explain_condition(
    expr: Expr, ctx: dict[str, Any], outcomes: dict[str, list[tuple[str, str]]] | None = None
) -> list[tuple[str, bool | None]]:
    """Every leaf of a condition with its truth on this case: the pertinent positives, negatives and unknowns."""
    if isinstance(expr, Cmp):
        return [_leaf_text(expr, ctx)]
    if isinstance(expr, Outcome):
        return [_outcome_text(expr, outcomes or {})]
    if isinstance(expr, Not):
        if isinstance(expr.item, Outcome):
            text, truth = _outcome_text(expr.item, outcomes or {})
            return [(f"{text} (none may have {expr.item.status})", None if truth is None else not truth)]
        return [
            (f"not ({text})", None if truth is None else not truth)
            for text, truth in explain_condition(expr.item, ctx, outcomes)
        ]
    out: list[tuple[str, bool | None]] = []
    for child in getattr(expr, "items", ()):
        out += explain_condition(child, ctx, outcomes)
    return out


def _given_doses(case: Case) -> set[tuple[str, str]]:
    """The (structure, metric) pairs the planned course gives a dose for."""
    return {(s, m) for s, metrics in case.planned_course.structures.items() for m, _ in metrics.items()}


def _items_for(rule: Rule, case: Case, given: set[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    if rule.scope.per == "case":
        return [("", "")]
    if given is None:
        given = _given_doses(case)
    found = [(s, m) for s in rule.scope.structures for m in rule.scope.metrics if (s, m) in given]
    return found or [("", "")]


@dataclass
class _Item:
    rule: Rule
    structure: str
    metric: str
    computed: Computed


@dataclass(frozen=True)
class RulePlan:
    """What is fixed per rule for a whole run: its parsed condition, fact fields and static output blocks."""

    rule: Rule
    applies: Expr
    applies_fields: tuple[str, ...]
    fields: dict[tuple[str, str], tuple[str, str]]
    evidence: dict[str, Any]
    citations: list[dict[str, Any]]
    cite_text: str
    limits: dict[Any, tuple[float, str | None]]
    rule_marker: str | None
    """The rule-level marker field of a per-dose rule (None for a case-level rule)."""
    outcome_rules: tuple[str, ...] = ()
    """The rules whose verdicts the condition reads (outcome leaves)."""

    def limit_for(self, ctx: dict[str, Any]) -> tuple[float | None, str | None]:
        """The limit (and its note) that applies to this case; (None, None) where the source gives none."""
        limit = self.rule.limit
        if limit is None:
            return None, None
        key = "" if limit.value is not None else ctx.get(limit.by or "")
        return self.limits.get(key, (None, None))


def plan_rules(pack: RulePack) -> list[RulePlan]:
    from reirrad.explain.results import citations_of, evidence_of
    from reirrad.logic.conditions import fields_of, outcomes_of

    plans = []
    for rule in pack.rules:
        items = rule.items() + ([("", "")] if rule.scope.per == "near_max_dose" else [])
        applies = parse_condition(rule.applies_when)
        limits: dict[Any, tuple[float, str | None]] = {}
        if rule.limit is not None:
            if rule.limit.value is not None:
                limits[""] = (rule.limit.value, None)
            limits.update({e.key: (e.value, e.note) for e in rule.limit.table})
        plans.append(
            RulePlan(
                rule,
                applies,
                tuple(sorted(fields_of(applies))),
                {(s, m): (marker_field(rule.id, s, m), value_field(rule.id, s, m)) for s, m in items},
                evidence_of(rule),
                citations_of(rule, pack),
                "; ".join(f"{c.ref} ({c.locator})" for c in rule.citations),
                limits,
                rule_marker_field(rule.id) if rule.scope.per == "near_max_dose" else None,
                tuple(sorted(outcomes_of(applies))),
            )
        )
    return plans


VALUE_DECIMALS = 6
"""Computed values are rounded to 10⁻⁶ (1 µGy, 10⁻⁶ of a month or of a ratio) before they are compared and
reported, so that floating-point noise (24.000000000000004) cannot flip a verdict at an exact boundary."""


def build_fact(
    case: Case,
    pack: RulePack,
    plans: list[RulePlan] | None = None,
    radioresistant: Callable[[str], list[Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], list[_Item]]:
    """The single fact the engine sees: context facts, an item marker per evaluation and each computed value."""
    ctx = context_facts(case, radioresistant)
    fact: dict[str, Any] = {"kind": "case"}
    for key, value in ctx.items():
        fact[key] = int(value) if isinstance(value, bool) else value
    items: list[_Item] = []
    given = _given_doses(case)
    for plan in plans if plans is not None else plan_rules(pack):
        rule = plan.rule
        if plan.rule_marker is not None:
            fact[plan.rule_marker] = 1
        fields = plan.fields
        for structure, metric in _items_for(rule, case, given):
            computed = compute_item(case, pack, rule, structure, metric)
            marker, value = fields[(structure, metric)]
            fact[marker] = 1
            if computed.value is not None:
                computed.value = fact[value] = round(computed.value, VALUE_DECIMALS)
            items.append(_Item(rule, structure, metric, computed))
    return fact, ctx, items


def _knowledge_of(pack: RulePack) -> tuple[Any, Any]:
    """The histology lists and the structured assessment of a pack, each None when the pack has no such file."""
    from reirrad.knowledge.data import ASSESSMENT_FILE, LISTS_FILE, load_assessment, load_histology_lists

    lists = load_histology_lists(pack.root) if (pack.root / LISTS_FILE).is_file() else None
    assessment = load_assessment(pack.root) if (pack.root / ASSESSMENT_FILE).is_file() else None
    return lists, assessment


class Evaluator:
    """Evaluates cases against the rules in force on one date, on one engine instance."""

    def __init__(
        self,
        pack: RulePack | None = None,
        *,
        as_of: date | None = None,
        engine: str = "durable",
        include_drafts: bool = False,
    ) -> None:
        self.as_of = as_of or date.today()
        full = pack if pack is not None else load_pack()
        self.pack = full.select(self.as_of, include_drafts) if full.as_of != self.as_of else full
        self.compiled: CompiledPack = compile_pack(self.pack)
        self.plans = plan_rules(self.pack)
        self.plan_of = {p.rule.id: p for p in self.plans}
        self._explained: dict[tuple[Any, ...], list[tuple[str, bool | None]]] = {}
        self.histology, self.assessment = _knowledge_of(self.pack)
        self.radioresistant: Callable[[str], list[Any]] | None = (
            cache(self.histology.match) if self.histology is not None else None
        )
        """A histology text → the radioresistant-list entries it matches (cached per text); None without lists."""
        self.engine: Engine
        if engine == "durable":
            from reirrad.backends.durable import DurableEngine

            self.engine = DurableEngine(self.compiled)
        elif engine == "oracle":
            from reirrad.backends.patterns import OracleEngine

            self.engine = OracleEngine(self.compiled)
        else:
            raise ValueError(f"unknown engine {engine!r}: durable or oracle")

    def statuses(
        self, case: Case
    ) -> tuple[dict[str, Any], dict[str, Any], list[_Item], dict[tuple[str, str], str]]:
        fact, ctx, items = build_fact(case, self.pack, self.plans, self.radioresistant)
        fired = self.engine.fire(fact)
        fired_status: dict[tuple[str, str], str] = {}
        for name in fired:
            rule = self.compiled.by_name[name]
            key = (rule.rule_id, rule.item)
            if fired_status.get(key) == rule.status and rule.stage > 1:
                continue  # two conjuncts of one recommendation status may both hold
            if key in fired_status:
                raise EngineError(
                    f"{rule.rule_id} {rule.item or '(case)'}: two statuses fired "
                    f"({fired_status[key]} and {rule.status}); the compiled patterns overlap"
                )
            fired_status[key] = rule.status
        status: dict[tuple[str, str], str] = {}
        for item in items:
            key = (item.rule.id, item_key(item.structure, item.metric))
            own, rule_level = fired_status.get(key), fired_status.get((item.rule.id, RULE_LEVEL))
            if (own is None) == (rule_level is None):
                found = [st for st in (own, rule_level) if st]
                what = "no status" if not found else f"two statuses ({' and '.join(found)})"
                raise EngineError(
                    f"{item.rule.id} {key[1] or '(case)'}: {what} fired; the compiled patterns are "
                    f"not exclusive and exhaustive"
                )
            status[key] = own or rule_level  # type: ignore[assignment]
        return fact, ctx, items, status

    def evaluate(self, case: Case) -> dict[str, Any]:
        from reirrad.explain.results import build_result

        _fact, ctx, items, status = self.statuses(case)
        return build_result(self, case, ctx, items, status)

    @property
    def tool_version(self) -> str:
        return tool_version()

    def condition_explanation(
        self, rule: Rule, ctx: dict[str, Any], outcomes: dict[str, list[tuple[str, str]]]
    ) -> list[tuple[str, bool | None]]:
        """Every leaf of the rule's condition with its truth on this case, cached on the facts and the outcomes
        it reads."""
        plan = self.plan_of[rule.id]
        key = (
            "condition",
            rule.id,
            tuple(ctx.get(f) for f in plan.applies_fields),
            tuple(None if outcomes.get(r) is None else tuple(outcomes[r]) for r in plan.outcome_rules),
        )
        return self._explanation(key, lambda: explain_condition(plan.applies, ctx, outcomes))

    def applies_explanation(self, rule: Rule, ctx: dict[str, Any]) -> list[tuple[str, bool | None]]:
        """The rule's applicability leaves with their truth on this case (cached on the facts they read)."""
        plan = self.plan_of[rule.id]
        key = ("applies", rule.id, tuple(ctx.get(f) for f in plan.applies_fields))
        return self._explanation(key, lambda: explain_condition(plan.applies, ctx))

    def _explanation(
        self, key: tuple[Any, ...], build: Callable[[], list[tuple[str, bool | None]]]
    ) -> list[tuple[str, bool | None]]:
        """An explanation computed once per key (the cache is emptied when it grows past 100,000 entries)."""
        found = self._explained.get(key)
        if found is None:
            if len(self._explained) > 100_000:
                self._explained.clear()
            found = self._explained[key] = build()
        return found
