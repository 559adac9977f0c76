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

__all__ = ["CompiledPack", "CompiledRule", "compile_pack", "item_key", "marker_field", "value_field"]

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


def _status_exprs(rule: Rule, structure: str, metric: str) -> dict[str, Expr]:
    applies = parse_condition(rule.applies_when)
    a_t, a_f, a_u = t_of(applies, ALWAYS_PRESENT), f_of(applies, ALWAYS_PRESENT), u_of(applies, ALWAYS_PRESENT)
    if rule.kind == "assumption":
        return {"applied": a_t, "indeterminate": a_u, "not_applicable": a_f}
    c_t, c_f, c_u = _check(rule, value_field(rule.id, structure, metric))
    return {
        "pass": And((a_t, c_t)),
        "fail": And((a_t, c_f)),
        "indeterminate": Or((a_u, And((a_t, c_u)))),
        "not_applicable": a_f,
    }


def compile_rule(rule: Rule) -> tuple[list[CompiledRule], list[str]]:
    compiled: list[CompiledRule] = []
    unreachable: list[str] = []
    items = rule.items()
    if rule.scope.per == "near_max_dose":
        items.append(("", ""))
    for structure, metric in items:
        marker = Cmp(marker_field(rule.id, structure, metric), "eq", 1)
        for status, expr in _status_exprs(rule, structure, metric).items():
            key = item_key(structure, metric)
            name = "|".join((rule.id, structure, metric, status))
            full = simplify(And((Cmp("kind", "eq", "case"), marker, expr)))
            if full == FALSE:
                unreachable.append(name)
                continue
            compiled.append(CompiledRule(name, rule.id, rule.version, key, status, (to_pattern(full),)))
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
