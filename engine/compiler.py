"""Compile a selected rule pack into status patterns: one compiled rule per (rule, item, status)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .calculations import CONTEXT_FACTS
from .conditions import FALSE, NEGATE, And, Cmp, Expr, Missing, Or, f_of, parse_condition, simplify, t_of, to_pattern, u_of
from .rulepack import Rule, RulePack, canonical_json

__all__ = ["RULE_LEVEL", "CompiledPack", "CompiledRule", "compile_pack", "item_key", "marker_field",
           "rule_marker_field", "value_field"]

CASE_KIND = {"kind": "case"}
ALWAYS_PRESENT = frozenset(name for name, spec in CONTEXT_FACTS.items() if spec.always)
_OP = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
STATUSES = {
    "constraint": ("pass", "fail", "indeterminate", "not_applicable"),
    "advisory": ("pass", "fail", "indeterminate", "not_applicable"),
    "assumption": ("applied", "indeterminate", "not_applicable"),
}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def item_key(structure: str, metric: str) -> str:
    return f"{structure}|{metric}" if structure or metric else ""


def value_field(rule_id: str, structure: str, metric: str) -> str:
    return "__".join(p for p in ("v", _slug(rule_id), _slug(structure), _slug(metric)) if p)


def marker_field(rule_id: str, structure: str, metric: str) -> str:
    return "__".join(p for p in ("i", _slug(rule_id), _slug(structure), _slug(metric)) if p)


def rule_marker_field(rule_id: str) -> str:
    return f"r__{_slug(rule_id)}"


RULE_LEVEL = "*"
"""The item of a rule-level status (not applicable, or applicability unknown), which every item of the rule takes."""


@dataclass(frozen=True)
class CompiledRule:
    name: str
    rule_id: str
    rule_version: str
    item: str
    status: str
    patterns: tuple[dict[str, Any], ...]
    asserts: dict[str, Any] | None = None


@dataclass(frozen=True)
class CompiledPack:
    """What the engines execute: plain JSON patterns, named ``<rule id>|<structure>|<metric>|<status>``."""

    ruleset_name: str
    rules: tuple[CompiledRule, ...]
    unreachable: tuple[str, ...]
    sha256: str

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
                all_ = [{f"m_{i}": p} for i, p in enumerate(rule.patterns)]
            out[rule.name] = {"all": all_, "run": "fire"}
        return out


def _check(rule: Rule, value: str) -> tuple[Expr, Expr, Expr]:
    """TRUE, FALSE and UNKNOWN patterns of 'value <op> limit'. With a limit table, no matching row is UNKNOWN."""
    limit = rule.limit
    assert limit is not None
    op = _OP[limit.operator]
    neg = NEGATE[op]
    if limit.value is not None:
        return Cmp(value, op, limit.value), Cmp(value, neg, limit.value), Missing(value)
    by = limit.by
    assert by is not None
    if by not in ALWAYS_PRESENT:
        raise ValueError(f"{rule.id}: a limit table must be keyed by a fact every case has, not '{by}'")
    rows = [(e.key, e.value) for e in limit.table]
    true = Or(tuple(And((Cmp(by, "eq", k), Cmp(value, op, v))) for k, v in rows))
    false = Or(tuple(And((Cmp(by, "eq", k), Cmp(value, neg, v))) for k, v in rows))
    unknown = Or((Missing(value), And(tuple(Cmp(by, "ne", k) for k, _ in rows))))
    return simplify(true), simplify(false), simplify(unknown)


def _applicability(rule: Rule) -> tuple[Expr, Expr, Expr]:
    applies = parse_condition(rule.applies_when)
    return t_of(applies, ALWAYS_PRESENT), f_of(applies, ALWAYS_PRESENT), u_of(applies, ALWAYS_PRESENT)


def _item_exprs(rule: Rule, structure: str, metric: str, with_applicability: bool) -> dict[str, Expr]:
    a_t, a_f, a_u = _applicability(rule)
    if rule.kind == "assumption":
        return {"applied": a_t, "indeterminate": a_u, "not_applicable": a_f}
    c_t, c_f, c_u = _check(rule, value_field(rule.id, structure, metric))
    exprs: dict[str, Expr] = {"pass": And((a_t, c_t)), "fail": And((a_t, c_f)), "indeterminate": And((a_t, c_u))}
    if with_applicability:
        exprs["indeterminate"] = Or((a_u, exprs["indeterminate"]))
        exprs["not_applicable"] = a_f
    return exprs


def compile_rule(rule: Rule) -> tuple[list[CompiledRule], list[str]]:
    """Status rules for each item; a per-dose rule also gets rule-level 'not applicable' and 'unknown' rules."""
    compiled: list[CompiledRule] = []
    unreachable: list[str] = []

    def add(marker: str, structure: str, metric: str, status: str, expr: Expr, key: str) -> None:
        name = "|".join((rule.id, structure, metric, status))
        full = simplify(And((Cmp(marker, "eq", 1), expr)))
        if full == FALSE:
            unreachable.append(name)
        else:
            compiled.append(CompiledRule(name, rule.id, rule.version, key, status, (to_pattern(full),)))

    per_dose = rule.scope.per == "near_max_dose"
    items = rule.items() + ([("", "")] if per_dose else [])
    if per_dose:
        _, a_f, a_u = _applicability(rule)
        marker = rule_marker_field(rule.id)
        add(marker, RULE_LEVEL, RULE_LEVEL, "not_applicable", a_f, RULE_LEVEL)
        add(marker, RULE_LEVEL, RULE_LEVEL, "indeterminate", a_u, RULE_LEVEL)
    for structure, metric in items:
        for status, expr in _item_exprs(rule, structure, metric, with_applicability=not per_dose).items():
            add(marker_field(rule.id, structure, metric), structure, metric, status, expr, item_key(structure, metric))
    return compiled, unreachable


def compile_pack(pack: RulePack) -> CompiledPack:
    """Compile every selected rule; the hash covers the pack's content and the compiled patterns."""
    rules: list[CompiledRule] = []
    unreachable: list[str] = []
    for rule in pack.rules:
        done, dead = compile_rule(rule)
        rules += done
        unreachable += dead
    payload = canonical_json({"pack": pack.content_sha256, "selected": [(r.id, r.version) for r in pack.rules],
                              "compiled": [(r.name, r.patterns, r.asserts) for r in rules]})
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return CompiledPack(f"reirrad_{digest[:16]}", tuple(rules), tuple(unreachable), digest)
