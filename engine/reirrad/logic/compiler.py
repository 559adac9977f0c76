"""Compile a selected rule pack into status patterns: one compiled rule per (rule, item, status)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from reirrad.knowledge.conditions import FALSE, And, Cmp, Condition, Not, Or, Outcome, outcomes_of
from reirrad.knowledge.rulepack import Rule, RulePack, canonical_json
from reirrad.logic.conditions import (
    Both,
    Either,
    Missing,
    Pattern,
    dnf,
    f_of,
    simplify,
    t_of,
    to_pattern,
    u_of,
)
from reirrad.logic.facts import ALWAYS_PRESENT
from reirrad.vocabulary import Kind, Op, Status

__all__ = [
    "GROUP_MARKERS",
    "MAX_EXPRESSIONS",
    "RULE_LEVEL",
    "CompiledPack",
    "CompiledRule",
    "compile_pack",
    "group_fields",
    "item_key",
    "marker_field",
    "rule_marker_field",
    "value_field",
]


@cache
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


@cache
def value_field(rule_id: str, structure: str, metric: str) -> str:
    return "__".join(p for p in ("v", _slug(rule_id), _slug(structure), _slug(metric)) if p)


@cache
def marker_field(rule_id: str, structure: str, metric: str) -> str:
    return "__".join(p for p in ("i", _slug(rule_id), _slug(structure), _slug(metric)) if p)


@cache
def rule_marker_field(rule_id: str) -> str:
    return f"r__{_slug(rule_id)}"


def item_key(structure: str, metric: str) -> str:
    """How an item is named in compiled rule names and outcomes: ``SpinalCord|Dmax``, or "" for a case-level rule."""
    return f"{structure}|{metric}" if structure or metric else ""


GROUP_MARKERS = 24
"""Item markers per group. durable-rules walks its alpha network with a stack of 64 nodes (MAX_STACK_SIZE in its
rete.c) and pushes every matching child of a node at once: a fact with more than 64 item markers, each the first
test of its rules' patterns, was refused with error 303 (ERR_MAX_STACK_SIZE; measured here with 70 markers, a
fuzz case with about 110). Every pattern on the case fact therefore opens with its rule's group field, then its
item marker: the root has one child per group and a group at most this many markers, so the stack holds at most
(groups + GROUP_MARKERS + the depth of one pattern) nodes. See docs/engine.md."""


def group_fields(rules: Sequence[Rule]) -> dict[str, str]:
    """Each rule's group field (``g__0``, ``g__1``, …): rules in pack order, a new group once the next rule's
    markers (its items and its rule-level marker) would take the group beyond GROUP_MARKERS."""
    groups: dict[str, str] = {}
    number = size = 0
    for rule in rules:
        markers = len(rule.items()) + 1
        if size and size + markers > GROUP_MARKERS:
            number, size = number + 1, 0
        groups[rule.id] = f"g__{number}"
        size += markers
    return groups


RULE_LEVEL = "*"
"""The item of a rule-level status (not applicable, or applicability unknown), which every item of the rule takes."""


@dataclass(frozen=True)
class CompiledRule:
    """One status of one item of one rule. ``patterns`` match distinct facts (all of them); a pattern whose
    ``negated`` flag is set must match no fact. A rule of a later stage joins that stage's fact, so it sees every
    outcome of the stages before."""

    name: str
    rule_id: str
    rule_version: str
    item: str
    status: Status
    patterns: tuple[dict[str, Any], ...]
    asserts: dict[str, Any] | None = None
    negated: tuple[bool, ...] = ()
    stage: int = 1
    part: int = 0
    """1, 2, … when a status's pattern was too long for durable-rules and was split into parts (any may fire);
    0 for a whole pattern."""

    def is_negated(self, index: int) -> bool:
        return bool(self.negated) and self.negated[index]


@dataclass(frozen=True)
class CompiledPack:
    """What the engines execute: plain JSON patterns, named ``<rule id>|<structure>|<metric>|<status>``."""

    ruleset_name: str
    rules: tuple[CompiledRule, ...]
    unreachable: tuple[str, ...]
    sha256: str
    stages: int = 1
    groups: tuple[tuple[str, str], ...] = ()
    """(rule id, group field) for every rule; the fact carries the group field of each rule it marks."""

    @cached_property
    def group_of(self) -> dict[str, str]:
        return dict(self.groups)

    @cached_property
    def by_name(self) -> dict[str, CompiledRule]:
        return {r.name: r for r in self.rules}

    def durable_ruleset(self) -> dict[str, Any]:
        """The ruleset in durable-rules' data-defined form; actions are resolved by name (``fire``)."""
        out: dict[str, Any] = {}
        for rule in self.rules:
            if len(rule.patterns) == 1:
                all_ = [{"m": rule.patterns[0]}]
            else:
                all_ = [
                    {f"m_{i}$not" if rule.is_negated(i) else f"m_{i}": p} for i, p in enumerate(rule.patterns)
                ]
            out[rule.name] = {"all": all_, "run": "fire"}
        return out


MAX_EXPRESSIONS = 31
"""durable-rules keeps a pattern's comparisons and its $and / $or brackets (two each) in a sequence of at most 31
(MAX_SEQUENCE_EXPRESSIONS - 1 in its rete.c; more is error 113 when the ruleset is created)."""


def _expressions(expr: Pattern) -> int:
    if isinstance(expr, Both | Either):
        return 2 + sum(_expressions(i) for i in expr.items)
    return 1


def fitting_parts(expr: Pattern) -> list[Pattern]:
    """``expr`` as one pattern if durable can hold it, else as parts whose disjunction is ``expr``, each short
    enough: an $or is split into its alternatives, and an $and over an $or is distributed over its longest $or."""
    if _expressions(expr) <= MAX_EXPRESSIONS:
        return [expr]
    if isinstance(expr, Either):
        return [part for item in expr.items for part in fitting_parts(item)]
    if isinstance(expr, Both):
        choices = [i for i in expr.items if isinstance(i, Either)]
        if choices:
            widest = max(choices, key=lambda i: len(i.items))
            others = tuple(i for i in expr.items if i is not widest)
            return [
                part
                for alternative in widest.items
                if (distributed := simplify(Both((*others, alternative)))) != FALSE
                for part in fitting_parts(distributed)
            ]
    raise ValueError(
        f"a pattern of {_expressions(expr)} expressions cannot be split for durable-rules: {expr!r}"
    )


def _part_name(name: str, j: int, parts: list[Pattern]) -> str:
    return name if len(parts) == 1 else f"{name}~{j}"


def stage_fact(stage: int) -> dict[str, Any]:
    """The control fact that opens a stage: that stage's rules join it, once every earlier outcome exists."""
    return {"kind": "stage", "stage": stage}


def _stage_pattern(stage: int) -> dict[str, Any]:
    return {"$and": [{"kind": "stage"}, {"stage": stage}]}


def _check(rule: Rule, value: str) -> tuple[Pattern, Pattern, Pattern]:
    """TRUE, FALSE and UNKNOWN patterns of 'value <op> limit'. With a limit table, no matching row is UNKNOWN."""
    limit = rule.limit
    assert limit is not None
    op = Op.from_symbol(limit.operator)
    neg = op.negated
    if limit.value is not None:
        return Cmp(value, op, limit.value), Cmp(value, neg, limit.value), Missing(value)
    by = limit.by
    assert by is not None
    rows = [(e.key, e.value) for e in limit.table]
    true = Either(tuple(Both((Cmp(by, Op.EQ, k), Cmp(value, op, v))) for k, v in rows))
    false = Either(tuple(Both((Cmp(by, Op.EQ, k), Cmp(value, neg, v))) for k, v in rows))
    # no row for this case's key, or (a key fact absent before planning) no key at all: unknown
    no_key = () if by in ALWAYS_PRESENT else (Missing(by),)
    unknown = Either((Missing(value), *no_key, Both(tuple(Cmp(by, Op.NE, k) for k, _ in rows))))
    return simplify(true), simplify(false), simplify(unknown)


def _applicability(rule: Rule) -> tuple[Pattern, Pattern, Pattern]:
    applies = rule.condition
    return t_of(applies, ALWAYS_PRESENT), f_of(applies, ALWAYS_PRESENT), u_of(applies, ALWAYS_PRESENT)


def _item_exprs(rule: Rule, structure: str, metric: str, with_applicability: bool) -> dict[Status, Pattern]:
    a_t, a_f, a_u = _applicability(rule)
    if rule.kind == Kind.ASSUMPTION:
        return {Status.APPLIED: a_t, Status.INDETERMINATE: a_u, Status.NOT_APPLICABLE: a_f}
    c_t, c_f, c_u = _check(rule, value_field(rule.id, structure, metric))
    exprs: dict[Status, Pattern] = {
        Status.PASS: Both((a_t, c_t)),
        Status.FAIL: Both((a_t, c_f)),
        Status.INDETERMINATE: Both((a_t, c_u)),
    }
    if with_applicability:
        exprs[Status.INDETERMINATE] = Either((a_u, exprs[Status.INDETERMINATE]))
        exprs[Status.NOT_APPLICABLE] = a_f
    return exprs


def _compile_recommendation(
    rule: Rule, in_pack: set[str], group: str
) -> tuple[list[CompiledRule], list[str], set[tuple[str, Status]]]:
    """A recommendation on the case alone compiles like a constraint (stage 1, one pattern per status). One that
    reads earlier verdicts compiles to stage-2 rules, one per conjunct of its DNF: the stage fact, the case fact,
    and (negated) outcome facts of the constraints it reads. Also returned: the (rule, status) outcome facts its
    patterns read."""
    applies = _outcomes_known(rule.condition, in_pack)
    exprs = {
        Status.MADE: t_of(applies, ALWAYS_PRESENT),
        Status.NOT_MADE: f_of(applies, ALWAYS_PRESENT),
        Status.INDETERMINATE: u_of(applies, ALWAYS_PRESENT),
    }
    marker = Both((Cmp(group, Op.EQ, 1), Cmp(marker_field(rule.id, "", ""), Op.EQ, 1)))
    is_case = Cmp("kind", Op.EQ, "case")
    compiled: list[CompiledRule] = []
    unreachable: list[str] = []
    if not outcomes_of(applies):  # reads the case alone: one stage-1 rule per status, no join
        for status, expr in exprs.items():
            full = simplify(Both((marker, is_case, expr)))
            if full == FALSE:
                unreachable.append(f"{rule.id}|||{status}")
            else:
                parts = fitting_parts(full)
                compiled.extend(
                    CompiledRule(
                        _part_name(f"{rule.id}|||{status}", j, parts),
                        rule.id,
                        rule.version,
                        "",
                        status,
                        (to_pattern(p),),
                        part=j if len(parts) > 1 else 0,
                    )
                    for j, p in enumerate(parts, 1)
                )
        return compiled, unreachable, set()
    # Kleene statuses are exclusive and exhaustive, so one of the three is "neither of the other two". The one with
    # the longest DNF (81 conjuncts for "undecided" of a six-leaf AND) is derived that way in stage 3, from the
    # absence of the other two statuses' facts; the other two are compiled conjunct by conjunct in stage 2.
    forms = {
        status: (dnf(simplify(expr)) if simplify(expr) != FALSE else []) for status, expr in exprs.items()
    }
    derived = max(forms, key=lambda st: len(forms[st]))
    case_alone = to_pattern(simplify(Both((marker, is_case))))
    reads: set[tuple[str, Status]] = set()
    for status, conjuncts in forms.items():
        if not conjuncts:
            unreachable.append(f"{rule.id}|||{status}")
        if status == derived:
            continue
        for k, (case_expr, atoms) in enumerate(conjuncts):
            reads |= {(a.rule, a.status) for a in atoms}
            case_pattern = to_pattern(simplify(Both((marker, is_case, case_expr))))
            compiled.append(
                CompiledRule(
                    f"{rule.id}|||{status}#{k}",
                    rule.id,
                    rule.version,
                    "",
                    status,
                    (_stage_pattern(2), case_pattern, *(a.pattern() for a in atoms)),
                    asserts={"kind": "recommendation", "rule": rule.id, "status": status},
                    negated=(False, False, *(a.negated for a in atoms)),
                    stage=2,
                )
            )
    if forms[derived]:
        others = [st for st in forms if st != derived]
        compiled.append(
            CompiledRule(
                f"{rule.id}|||{derived}#n",
                rule.id,
                rule.version,
                "",
                derived,
                (_stage_pattern(3), case_alone, *(_recommendation_pattern(rule.id, st) for st in others)),
                negated=(False, False, True, True),
                stage=3,
            )
        )
    return compiled, unreachable, reads


def _recommendation_pattern(rule_id: str, status: Status) -> dict[str, Any]:
    return {"$and": [{"kind": "recommendation"}, {"rule": rule_id}, {"status": status}]}


def _outcomes_known(expr: Condition, in_pack: set[str]) -> Condition:
    """An outcome of a rule not in force is unknown: it becomes a test on a fact no case carries."""
    if isinstance(expr, Outcome):
        return expr if expr.rule in in_pack else Cmp(f"absent__{_slug(expr.rule)}", Op.EQ, 1)
    if isinstance(expr, And):
        return And(tuple(_outcomes_known(i, in_pack) for i in expr.items))
    if isinstance(expr, Or):
        return Or(tuple(_outcomes_known(i, in_pack) for i in expr.items))
    if isinstance(expr, Not):
        return Not(_outcomes_known(expr.item, in_pack))
    return expr


def compile_rule(
    rule: Rule, chained: frozenset[tuple[str, Status]] = frozenset(), group: str = "g__0"
) -> tuple[list[CompiledRule], list[str]]:
    """Status rules for each item; a per-dose rule also gets rule-level 'not applicable' and 'unknown' rules.
    A status in ``chained`` (rule, status) also asserts the outcome fact a recommendation reads."""
    compiled: list[CompiledRule] = []
    unreachable: list[str] = []

    def add(marker: str, structure: str, metric: str, status: Status, expr: Pattern, key: str) -> None:
        name = "|".join((rule.id, structure, metric, status))
        full = simplify(Both((Cmp(group, Op.EQ, 1), Cmp(marker, Op.EQ, 1), expr)))
        if full == FALSE:
            unreachable.append(name)
        else:
            # one derived fact per (rule, status): the recommendations ask whether some item has a status
            asserts = (
                {"kind": "outcome", "rule": rule.id, "status": status}
                if (rule.id, status) in chained
                else None
            )
            parts = fitting_parts(full)
            compiled.extend(
                CompiledRule(
                    _part_name(name, j, parts),
                    rule.id,
                    rule.version,
                    key,
                    status,
                    (to_pattern(p),),
                    asserts,
                    part=j if len(parts) > 1 else 0,
                )
                for j, p in enumerate(parts, 1)
            )

    per_dose = rule.scope.per == "near_max_dose"
    items = rule.items() + ([("", "")] if per_dose else [])
    if per_dose:
        _, a_f, a_u = _applicability(rule)
        marker = rule_marker_field(rule.id)
        add(marker, RULE_LEVEL, RULE_LEVEL, Status.NOT_APPLICABLE, a_f, RULE_LEVEL)
        add(marker, RULE_LEVEL, RULE_LEVEL, Status.INDETERMINATE, a_u, RULE_LEVEL)
    for structure, metric in items:
        for status, expr in _item_exprs(rule, structure, metric, with_applicability=not per_dose).items():
            add(
                marker_field(rule.id, structure, metric),
                structure,
                metric,
                status,
                expr,
                item_key(structure, metric),
            )
    return compiled, unreachable


def compile_pack(pack: RulePack) -> CompiledPack:
    """Compile every selected rule; the hash covers the pack's content and the compiled patterns."""
    rules: list[CompiledRule] = []
    unreachable: list[str] = []
    in_pack = {r.id for r in pack.rules}
    groups = group_fields(pack.rules)
    compiled_recs = {
        r.id: _compile_recommendation(r, in_pack, groups[r.id])
        for r in pack.rules
        if r.kind == Kind.RECOMMENDATION
    }
    # only the (rule, status) outcome facts some recommendation reads are asserted
    chained = frozenset(read for _, _, reads in compiled_recs.values() for read in reads)
    for rule in pack.rules:
        done, dead = (
            compiled_recs[rule.id][:2]
            if rule.kind == Kind.RECOMMENDATION
            else compile_rule(rule, chained, groups[rule.id])
        )
        rules += done
        unreachable += dead
    payload = canonical_json(
        {
            "pack": pack.content_sha256,
            "selected": [(r.id, r.version) for r in pack.rules],
            "compiled": [(r.name, r.patterns, r.asserts, r.negated, r.stage) for r in rules],
        }
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()
    stages = max((r.stage for r in rules), default=1)
    return CompiledPack(
        f"reirrad_{digest[:16]}", tuple(rules), tuple(unreachable), digest, stages, tuple(groups.items())
    )
