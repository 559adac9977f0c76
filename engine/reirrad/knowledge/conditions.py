"""A rule's ``applies_when``, parsed once when the pack loads into a typed tree that every reader shares.

``all`` / ``any`` / ``not`` over leaves ``{fact: name, <op>: value}`` (``in`` becomes an ``any`` of equalities) and
``{outcome: rule, status: pass|fail}`` on an earlier rule's verdict; ``always`` is the constant true. The tree is
data: the Kleene interpreter and the compiler to durable patterns live in ``reirrad.logic``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reirrad.vocabulary import Op, Status

__all__ = [
    "FALSE",
    "TRUE",
    "And",
    "Cmp",
    "Condition",
    "Const",
    "Not",
    "Or",
    "Outcome",
    "Scalar",
    "fields_of",
    "outcomes_of",
    "parse_condition",
]

Scalar = str | int | float


@dataclass(frozen=True)
class Const:
    value: bool


TRUE = Const(True)
FALSE = Const(False)


@dataclass(frozen=True)
class Cmp:
    """A fact compared with a value: ``planned_fractions le 5``. Booleans are compared as 1 and 0."""

    field: str
    op: Op
    value: Scalar


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class Outcome:
    """An earlier rule's verdict: some item of ``rule`` has ``status``."""

    rule: str
    status: Status


Condition = Const | Cmp | And | Or | Not | Outcome


def _scalar(value: Any) -> Scalar:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str | int | float):
        return value
    raise TypeError(f"condition values must be text, numbers or booleans, got {value!r}")


def parse_condition(node: Any) -> Condition:
    """The YAML form (already checked against schemas/rule.schema.json) → the typed tree."""
    if node == "always":
        return TRUE
    if not isinstance(node, Mapping):
        raise TypeError(f"a condition is a mapping or 'always', got {node!r}")
    if "all" in node:
        return And(tuple(parse_condition(n) for n in node["all"]))
    if "any" in node:
        return Or(tuple(parse_condition(n) for n in node["any"]))
    if "not" in node:
        return Not(parse_condition(node["not"]))
    if "outcome" in node:
        return Outcome(node["outcome"], Status(node["status"]))
    field = node["fact"]
    ((name, value),) = ((k, v) for k, v in node.items() if k != "fact")
    if name == "in":
        return Or(tuple(Cmp(field, Op.EQ, _scalar(v)) for v in value))
    return Cmp(field, Op(name), _scalar(value))


def fields_of(expr: Condition) -> set[str]:
    """The facts a condition reads."""
    if isinstance(expr, Cmp):
        return {expr.field}
    if isinstance(expr, And | Or):
        return set().union(*(fields_of(i) for i in expr.items))
    if isinstance(expr, Not):
        return fields_of(expr.item)
    return set()


def outcomes_of(expr: Condition) -> set[str]:
    """Ids of the rules whose verdicts a condition reads."""
    if isinstance(expr, Outcome):
        return {expr.rule}
    if isinstance(expr, And | Or):
        return set().union(*(outcomes_of(i) for i in expr.items))
    if isinstance(expr, Not):
        return outcomes_of(expr.item)
    return set()
