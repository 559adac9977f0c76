"""Conditions in three-valued (Kleene) logic: the one interpreter of a parsed condition, and the pattern algebra the
compiler turns a condition into.

``truth`` is the reference meaning of a condition: a leaf on an absent fact is *unknown* (None), never false, and
``and`` / ``or`` / ``not`` follow Kleene's strong logic. Explanations, limits, lint and the reference backend read
conditions through it. The compiler derives from each condition three patterns, TRUE, FALSE and UNKNOWN
(``t_of`` / ``f_of`` / ``u_of``), mutually exclusive and together exhaustive, so that "data not provided" is matched
by a rule of its own instead of being read as a non-match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reirrad.knowledge.conditions import FALSE, TRUE, And, Cmp, Condition, Const, Not, Or, Outcome
from reirrad.vocabulary import Status

__all__ = [
    "Both",
    "Derived",
    "Either",
    "Missing",
    "Pattern",
    "dnf",
    "f_of",
    "leaf_truth",
    "outcome_truth",
    "simplify",
    "t_of",
    "to_pattern",
    "truth",
    "u_of",
]

Truth = bool | None
"""True, False, or None for unknown."""


def leaf_truth(leaf: Cmp, facts: Mapping[str, Any]) -> Truth:
    """A comparison on this case's facts; unknown when the fact is absent. Booleans compare as 1 and 0."""
    if leaf.field not in facts:
        return None
    actual = facts[leaf.field]
    return leaf.op.holds(int(actual) if isinstance(actual, bool) else actual, leaf.value)


def outcome_truth(leaf: Outcome, outcomes: Mapping[str, Sequence[Status]] | None) -> Truth:
    """``some item of leaf.rule has leaf.status``: true if one has it; unknown if none has it but some item could
    not be decided (or the rule is not in force); false otherwise."""
    statuses = (outcomes or {}).get(leaf.rule)
    if statuses is None:
        return None
    if leaf.status in statuses:
        return True
    return None if Status.INDETERMINATE in statuses else False


def truth(
    expr: Condition, facts: Mapping[str, Any], outcomes: Mapping[str, Sequence[Status]] | None = None
) -> Truth:
    """The Kleene value of a parsed condition on a case's facts and, for outcome leaves, earlier verdicts."""
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Cmp):
        return leaf_truth(expr, facts)
    if isinstance(expr, Outcome):
        return outcome_truth(expr, outcomes)
    if isinstance(expr, Not):
        inner = truth(expr.item, facts, outcomes)
        return None if inner is None else not inner
    values = [truth(item, facts, outcomes) for item in expr.items]
    if isinstance(expr, And):
        return False if False in values else (None if None in values else True)
    return True if True in values else (None if None in values else False)


@dataclass(frozen=True)
class Missing:
    """The fact is absent (durable ``$nex``)."""

    field: str


@dataclass(frozen=True)
class Derived:
    """An atom on the derived facts of the same case: an outcome fact (rule, status) exists, or (negated) none does."""

    rule: str
    status: Status
    negated: bool = False

    def pattern(self) -> dict[str, Any]:
        return {"$and": [{"kind": "outcome"}, {"rule": self.rule}, {"status": str(self.status)}]}


@dataclass(frozen=True)
class Both:
    """Every part matches (durable ``$and``)."""

    items: tuple[Pattern, ...]


@dataclass(frozen=True)
class Either:
    """Some part matches (durable ``$or``)."""

    items: tuple[Pattern, ...]


Pattern = Const | Cmp | Missing | Derived | Both | Either


def _derived_in(expr: Pattern) -> bool:
    if isinstance(expr, Derived):
        return True
    if isinstance(expr, Both | Either):
        return any(_derived_in(i) for i in expr.items)
    return False


def dnf(expr: Pattern) -> list[tuple[Pattern, tuple[Derived, ...]]]:
    """Split a pattern into conjuncts of (a pattern on the case fact, atoms on derived facts).

    Parts without derived atoms stay whole (their own $and/$or); only the derived atoms are distributed.
    """
    if not _derived_in(expr):
        return [(expr, ())]
    if isinstance(expr, Derived):
        return [(TRUE, (expr,))]
    if isinstance(expr, Either):
        return [c for item in expr.items for c in dnf(item)]
    if isinstance(expr, Both):
        out: list[tuple[Pattern, tuple[Derived, ...]]] = [(TRUE, ())]
        for item in expr.items:
            out = [(simplify(Both((c1, c2))), a1 + a2) for c1, a1 in out for c2, a2 in dnf(item)]
        return [
            (c, tuple(dict.fromkeys(atoms))) for c, atoms in out if c != FALSE and not _contradicts(atoms)
        ]
    raise ValueError(f"unexpected {expr!r} in a derived condition")


def _contradicts(atoms: tuple[Derived, ...]) -> bool:
    positive = {(a.rule, a.status) for a in atoms if not a.negated}
    return any((a.rule, a.status) in positive for a in atoms if a.negated)


def t_of(expr: Condition, always: frozenset[str] = frozenset()) -> Pattern:
    """The pattern that matches exactly when ``expr`` is TRUE."""
    if isinstance(expr, Const | Cmp):
        return expr
    if isinstance(expr, Outcome):
        return Derived(expr.rule, expr.status)
    if isinstance(expr, Not):
        return f_of(expr.item, always)
    if isinstance(expr, And):
        return simplify(Both(tuple(t_of(i, always) for i in expr.items)))
    return simplify(Either(tuple(t_of(i, always) for i in expr.items)))


def f_of(expr: Condition, always: frozenset[str] = frozenset()) -> Pattern:
    """The pattern that matches exactly when ``expr`` is FALSE (absent facts make it UNKNOWN, not FALSE)."""
    if isinstance(expr, Const):
        return FALSE if expr.value else TRUE
    if isinstance(expr, Cmp):
        return Cmp(expr.field, expr.op.negated, expr.value)
    if isinstance(expr, Outcome):
        return Both((Derived(expr.rule, expr.status, True), Derived(expr.rule, Status.INDETERMINATE, True)))
    if isinstance(expr, Not):
        return t_of(expr.item, always)
    if isinstance(expr, And):
        return simplify(Either(tuple(f_of(i, always) for i in expr.items)))
    return simplify(Both(tuple(f_of(i, always) for i in expr.items)))


def u_of(expr: Condition, always: frozenset[str] = frozenset()) -> Pattern:
    """The pattern that matches exactly when ``expr`` is UNKNOWN; facts in ``always`` are never absent."""
    if isinstance(expr, Const):
        return FALSE
    if isinstance(expr, Cmp):
        return FALSE if expr.field in always else Missing(expr.field)
    if isinstance(expr, Outcome):
        return Both((Derived(expr.rule, expr.status, True), Derived(expr.rule, Status.INDETERMINATE)))
    if isinstance(expr, Not):
        return u_of(expr.item, always)
    decided = f_of if isinstance(expr, Or) else t_of
    return simplify(
        Both(
            (
                *(simplify(Either((decided(i, always), u_of(i, always)))) for i in expr.items),
                simplify(Either(tuple(u_of(i, always) for i in expr.items))),
            )
        )
    )


def simplify(expr: Pattern) -> Pattern:
    """Flatten, drop neutral constants, absorb dominant ones, remove duplicates (order kept)."""
    if not isinstance(expr, Both | Either):
        return expr
    kind = type(expr)
    neutral, dominant = (TRUE, FALSE) if kind is Both else (FALSE, TRUE)
    out: list[Pattern] = []
    for item in expr.items:
        simpler = simplify(item)
        parts: Iterable[Pattern] = simpler.items if isinstance(simpler, kind) else (simpler,)
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


def to_pattern(expr: Pattern) -> dict[str, Any]:
    """Pattern → durable-rules pattern JSON. Constants must have been simplified away by the caller."""
    if isinstance(expr, Cmp):
        if not expr.op.durable:
            return {expr.field: expr.value}
        return {expr.op.durable: {expr.field: expr.value}}
    if isinstance(expr, Missing):
        return {"$nex": {expr.field: 1}}
    if isinstance(expr, Both):
        return {"$and": [to_pattern(i) for i in expr.items]}
    if isinstance(expr, Either):
        return {"$or": [to_pattern(i) for i in expr.items]}
    raise ValueError(f"cannot compile {expr!r} to a durable pattern")
