"""The pipeline: case → computed quantities → one fact → rules fired on the engine → explained results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any, Protocol

from .calculations import CONTEXT_FACTS, Computed, compute_item, context_facts
from .case import Case
from .compiler import CompiledPack, compile_pack, item_key, marker_field, value_field
from .conditions import Cmp, Expr, parse_condition
from .errors import EngineError
from .rulepack import Rule, RulePack, load_pack

__all__ = ["Engine", "Evaluator", "build_fact", "explain_condition"]


class Engine(Protocol):
    name: str
    version: str

    def fire(self, fact: dict[str, Any]) -> list[str]: ...


def _tool_version() -> str:
    try:
        return dist_version("reirrad")
    except PackageNotFoundError:  # running from a source tree
        return "0+source"


_OPS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


def _leaf_text(leaf: Cmp, ctx: dict[str, Any]) -> tuple[str, bool | None]:
    spec = CONTEXT_FACTS.get(leaf.field)
    name = spec.description if spec else leaf.field
    if leaf.field not in ctx:
        return f"{name}: not provided", None
    actual = ctx[leaf.field]
    want = leaf.value
    if isinstance(actual, bool):
        actual = int(actual)
    truth = {"eq": actual == want, "ne": actual != want, "lt": actual < want, "le": actual <= want,
             "gt": actual > want, "ge": actual >= want}[leaf.op]
    shown = {True: "yes", False: "no"}.get(ctx[leaf.field], ctx[leaf.field]) if isinstance(ctx[leaf.field], bool) \
        else (f"{ctx[leaf.field]:.2f}" if isinstance(ctx[leaf.field], float) else ctx[leaf.field])
    return f"{name} = {shown} ({_OPS[leaf.op]} {want} required)", truth


def explain_condition(expr: Expr, ctx: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """Every leaf of a condition with its truth on this case: the pertinent positives, negatives and unknowns."""
    if isinstance(expr, Cmp):
        return [_leaf_text(expr, ctx)]
    out: list[tuple[str, bool | None]] = []
    for child in getattr(expr, "items", ()) or ((expr.item,) if hasattr(expr, "item") else ()):
        out += explain_condition(child, ctx)
    return out


def _items_for(rule: Rule, case: Case) -> list[tuple[str, str]]:
    if rule.scope.per == "case":
        return [("", "")]
    planned = case.planned_course.structures
    found = [(s, m) for s in rule.scope.structures if s in planned for m in rule.scope.metrics
             if planned[s].get(m) is not None]  # type: ignore[index]
    return found or [("", "")]


@dataclass
class _Item:
    rule: Rule
    structure: str
    metric: str
    computed: Computed


def build_fact(case: Case, pack: RulePack) -> tuple[dict[str, Any], dict[str, Any], list[_Item]]:
    """The single fact the engine sees: context facts, an item marker per evaluation and each computed value."""
    ctx = context_facts(case)
    fact: dict[str, Any] = {"kind": "case"}
    for key, value in ctx.items():
        fact[key] = int(value) if isinstance(value, bool) else value
    items: list[_Item] = []
    for rule in pack.rules:
        for structure, metric in _items_for(rule, case):
            computed = compute_item(case, pack, rule, structure, metric)
            fact[marker_field(rule.id, structure, metric)] = 1
            if computed.value is not None:
                fact[value_field(rule.id, structure, metric)] = computed.value
            items.append(_Item(rule, structure, metric, computed))
    return fact, ctx, items


class Evaluator:
    """Evaluates cases against the rules in force on one date, on one engine instance."""

    def __init__(self, pack: RulePack | None = None, *, as_of: date | None = None, engine: str = "durable",
                 include_drafts: bool = False) -> None:
        self.as_of = as_of or date.today()
        full = pack if pack is not None else load_pack()
        self.pack = full.select(self.as_of, include_drafts) if full.as_of != self.as_of else full
        self.compiled: CompiledPack = compile_pack(self.pack)
        self.engine: Engine
        if engine == "durable":
            from .durable_adapter import DurableEngine

            self.engine = DurableEngine(self.compiled)
        elif engine == "oracle":
            from .oracle import OracleEngine

            self.engine = OracleEngine(self.compiled)
        else:
            raise ValueError(f"unknown engine {engine!r}: durable or oracle")

    def statuses(self, case: Case) -> tuple[dict[str, Any], dict[str, Any], list[_Item], dict[tuple[str, str], str]]:
        fact, ctx, items = build_fact(case, self.pack)
        fired = self.engine.fire(fact)
        status: dict[tuple[str, str], str] = {}
        for name in fired:
            rule = self.compiled.by_name[name]
            key = (rule.rule_id, rule.item)
            if key in status:
                raise EngineError(f"{rule.rule_id} {rule.item or '(case)'}: two statuses fired "
                                   f"({status[key]} and {rule.status}); the compiled patterns overlap")
            status[key] = rule.status
        for item in items:
            key = (item.rule.id, item_key(item.structure, item.metric))
            if key not in status:
                raise EngineError(f"{item.rule.id} {key[1] or '(case)'}: no status fired; the compiled patterns "
                                   f"are not exhaustive")
        return fact, ctx, items, status

    def evaluate(self, case: Case) -> dict[str, Any]:
        from .results import build_result

        fact, ctx, items, status = self.statuses(case)
        return build_result(self, case, ctx, items, status)

    @property
    def tool_version(self) -> str:
        return _tool_version()

    def applies_explanation(self, rule: Rule, ctx: dict[str, Any]) -> list[tuple[str, bool | None]]:
        return explain_condition(parse_condition(rule.applies_when), ctx)
