"""Condition trees in three-valued logic, compiled to durable-rules patterns, and the oracle that evaluates them.

A rule's YAML condition (``all``/``any``/``not`` over ``{fact: name, op: value}`` leaves) is read with Kleene logic:
a leaf whose fact is absent is *unknown*. For every condition the compiler derives three patterns, TRUE, FALSE and
UNKNOWN, which are mutually exclusive and together exhaustive, so that "data not provided" is matched by a rule of
its own instead of being read as a non-match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

__all__ = [
    "FALSE",
    "NEGATE",
    "TRUE",
    "And",
    "Cmp",
    "Derived",
    "Expr",
    "Missing",
    "Or",
    "Outcome",
    "dnf",
    "evaluate_pattern",
    "f_of",
    "has_derived",
    "outcomes_of",
    "parse_condition",
    "simplify",
    "t_of",
    "to_pattern",
    "u_of",
]

Scalar = str | int | float
NEGATE = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le"}
_DURABLE_OP = {"lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte", "ne": "$neq"}


@dataclass(frozen=True)
class Const:
    value: bool


TRUE = Const(True)
FALSE = Const(False)


@dataclass(frozen=True)
class Cmp:
    field: str
    op: str
    value: Scalar


@dataclass(frozen=True)
class Missing:
    field: str


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


@dataclass(frozen=True)
class Outcome:
    """A leaf on an earlier constraint's result: some item of ``rule`` has ``status``."""

    rule: str
    status: str


@dataclass(frozen=True)
class Derived:
    """An atom on the derived facts of the same case: an outcome fact (rule, status) exists, or (negated) none does."""

    rule: str
    status: str
    negated: bool = False

    def pattern(self) -> dict[str, Any]:
        return {"$and": [{"kind": "outcome"}, {"rule": self.rule}, {"status": self.status}]}


Expr = Union[Const, Cmp, Missing, And, Or, Not, Outcome, Derived]


def _scalar(value: Any) -> Scalar:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str | int | float):
        return value
    raise TypeError(f"condition values must be text, numbers or booleans, got {value!r}")


def parse_condition(node: Any) -> Expr:
    """YAML condition → expression (``Not`` kept; the three-valued transforms remove it)."""
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
        return Outcome(node["outcome"], node["status"])
    field = node["fact"]
    ((op, value),) = ((k, v) for k, v in node.items() if k != "fact")
    if op == "in":
        return Or(tuple(Cmp(field, "eq", _scalar(v)) for v in value))
    return Cmp(field, op, _scalar(value))


def outcomes_of(expr: Expr) -> set[str]:
    """Ids of the constraint rules whose outcomes a condition reads."""
    if isinstance(expr, Outcome | Derived):
        return {expr.rule}
    if isinstance(expr, And | Or):
        return set().union(*(outcomes_of(i) for i in expr.items)) if expr.items else set()
    if isinstance(expr, Not):
        return outcomes_of(expr.item)
    return set()


def has_derived(expr: Expr) -> bool:
    """Whether a condition reads an earlier rule's outcome."""
    return bool(outcomes_of(expr))


def dnf(expr: Expr) -> list[tuple[Expr, tuple[Derived, ...]]]:
    """Split a T/F/U expression into conjuncts of (a pattern on the case fact, atoms on derived facts).

    Parts without derived atoms stay whole (their own $and/$or); only the derived atoms are distributed.
    """
    if not has_derived(expr):
        return [(expr, ())]
    if isinstance(expr, Derived):
        return [(TRUE, (expr,))]
    if isinstance(expr, Or):
        return [c for item in expr.items for c in dnf(item)]
    if isinstance(expr, And):
        out: list[tuple[Expr, tuple[Derived, ...]]] = [(TRUE, ())]
        for item in expr.items:
            out = [(simplify(And((c1, c2))), a1 + a2) for c1, a1 in out for c2, a2 in dnf(item)]
        return [
            (c, tuple(dict.fromkeys(atoms))) for c, atoms in out if c != FALSE and not _contradicts(atoms)
        ]
    raise ValueError(f"unexpected {expr!r} in a derived condition")


def _contradicts(atoms: tuple[Derived, ...]) -> bool:
    positive = {(a.rule, a.status) for a in atoms if not a.negated}
    return any((a.rule, a.status) in positive for a in atoms if a.negated)


def fields_of(expr: Expr) -> set[str]:
    if isinstance(expr, Cmp | Missing):
        return {expr.field}
    if isinstance(expr, And | Or):
        return set().union(*(fields_of(i) for i in expr.items)) if expr.items else set()
    if isinstance(expr, Not):
        return fields_of(expr.item)
    return set()


def t_of(expr: Expr, always: frozenset[str] = frozenset()) -> Expr:
    """The pattern that matches exactly when ``expr`` is TRUE."""
    if isinstance(expr, Const | Cmp | Missing):
        return expr
    if isinstance(expr, Outcome):
        return Derived(expr.rule, expr.status)
    if isinstance(expr, Not):
        return f_of(expr.item, always)
    if isinstance(expr, And):
        return simplify(And(tuple(t_of(i, always) for i in expr.items)))
    return simplify(Or(tuple(t_of(i, always) for i in expr.items)))  # type: ignore[union-attr]


def f_of(expr: Expr, always: frozenset[str] = frozenset()) -> Expr:
    """The pattern that matches exactly when ``expr`` is FALSE (absent facts make it UNKNOWN, not FALSE)."""
    if isinstance(expr, Const):
        return FALSE if expr.value else TRUE
    if isinstance(expr, Cmp):
        return Cmp(expr.field, NEGATE[expr.op], expr.value)
    if isinstance(expr, Missing):
        raise ValueError("Missing() is only produced by u_of")
    if isinstance(expr, Outcome):
        return And((Derived(expr.rule, expr.status, True), Derived(expr.rule, "indeterminate", True)))
    if isinstance(expr, Not):
        return t_of(expr.item, always)
    if isinstance(expr, And):
        return simplify(Or(tuple(f_of(i, always) for i in expr.items)))
    return simplify(And(tuple(f_of(i, always) for i in expr.items)))  # type: ignore[union-attr]


def u_of(expr: Expr, always: frozenset[str] = frozenset()) -> Expr:
    """The pattern that matches exactly when ``expr`` is UNKNOWN; facts in ``always`` are never absent."""
    if isinstance(expr, Const):
        return FALSE
    if isinstance(expr, Cmp):
        return FALSE if expr.field in always else Missing(expr.field)
    if isinstance(expr, Missing):
        raise ValueError("Missing() is only produced by u_of")
    if isinstance(expr, Outcome):
        return And((Derived(expr.rule, expr.status, True), Derived(expr.rule, "indeterminate")))
    if isinstance(expr, Not):
        return u_of(expr.item, always)
    items = expr.items  # type: ignore[union-attr]
    decided = f_of if isinstance(expr, Or) else t_of
    return simplify(
        And(
            (
                *(simplify(Or((decided(i, always), u_of(i, always)))) for i in items),
                simplify(Or(tuple(u_of(i, always) for i in items))),
            )
        )
    )


def simplify(expr: Expr) -> Expr:
    """Flatten, drop neutral constants, absorb dominant ones, remove duplicates (order kept)."""
    if not isinstance(expr, And | Or):
        return expr
    kind = type(expr)
    neutral, dominant = (TRUE, FALSE) if kind is And else (FALSE, TRUE)
    out: list[Expr] = []
    for item in expr.items:
        item = simplify(item)
        parts: Iterable[Expr] = item.items if isinstance(item, kind) else (item,)
        for part in parts:
            if part == dominant:
                return dominant
            if part != neutral and part not in out:
                out.append(part)
    if not out:
        return neutral
    if len(out) == 1:
        return out[0]
    return kind(tuple(out))


def to_pattern(expr: Expr) -> dict[str, Any]:
    """Expression → durable-rules pattern JSON. Constants must have been simplified away by the caller."""
    if isinstance(expr, Cmp):
        if expr.op == "eq":
            return {expr.field: expr.value}
        return {_DURABLE_OP[expr.op]: {expr.field: expr.value}}
    if isinstance(expr, Missing):
        return {"$nex": {expr.field: 1}}
    if isinstance(expr, And):
        return {"$and": [to_pattern(i) for i in expr.items]}
    if isinstance(expr, Or):
        return {"$or": [to_pattern(i) for i in expr.items]}
    raise ValueError(f"cannot compile {expr!r} to a durable pattern")


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "$lt":
        return bool(left < right)
    if op == "$lte":
        return bool(left <= right)
    if op == "$gt":
        return bool(left > right)
    if op == "$gte":
        return bool(left >= right)
    if op == "$neq":
        return bool(left != right)
    raise ValueError(f"unknown operator {op}")


def evaluate_pattern(pattern: Mapping[str, Any], fact: Mapping[str, Any]) -> bool:
    """The oracle: durable-rules pattern semantics in plain Python (an absent field never matches a comparison)."""
    ((key, body),) = pattern.items()
    if key == "$and":
        return all(evaluate_pattern(p, fact) for p in body)
    if key == "$or":
        return any(evaluate_pattern(p, fact) for p in body)
    if key == "$nex":
        ((field, _),) = body.items()
        return field not in fact
    if key == "$ex":
        ((field, _),) = body.items()
        return field in fact
    if key.startswith("$"):
        ((field, value),) = body.items()
        return field in fact and _compare(key, fact[field], value)
    return key in fact and fact[key] == body
