"""What evaluation hands to explanation: the per-rule plan of a run, the items of a case, the Evaluation record.

Everything here is typed and frozen. Results, reports and the audit are built from an ``Evaluation`` without
calling back into the evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

from reirrad.case import Case
from reirrad.dose.calculations import Computed
from reirrad.dose.limits import LimitsReport
from reirrad.knowledge.conditions import Condition, fields_of, outcomes_of
from reirrad.knowledge.data import Assessment, HistologyLists, Table
from reirrad.knowledge.readings import Reading
from reirrad.knowledge.rulepack import Rule, RulePack
from reirrad.logic.compiler import RULE_LEVEL, item_key
from reirrad.vocabulary import Kind, Status

__all__ = [
    "RULE_LEVEL",
    "Evaluation",
    "Flip",
    "Item",
    "Knowledge",
    "Outcomes",
    "RulePlan",
    "Run",
    "citations_of",
    "evidence_of",
    "item_key",
    "plan_rules",
]

Outcomes = dict[str, list[tuple[str, Status]]]
"""Per constraint or advisory rule id: each of its items (``structure|metric``) with its status."""


def evidence_of(rule: Rule) -> dict[str, Any]:
    ev = rule.evidence
    out: dict[str, Any] = {"quality_of_evidence": ev.quality_of_evidence, "source_kind": ev.source_kind}
    if ev.scale:
        out["scale"] = ev.scale
    out["label"] = ev.label()
    return out


def citations_of(rule: Rule, pack: RulePack) -> list[dict[str, Any]]:
    out = []
    for c in rule.citations:
        ref = pack.references[c.ref]
        entry: dict[str, Any] = {
            "ref": c.ref,
            "locator": c.locator,
            "citation": ref.short(),
            "title": ref.title,
            "source_file": ref.source_file,
        }
        if ref.doi:
            entry["doi"] = ref.doi
        if ref.pmid:
            entry["pmid"] = ref.pmid
        out.append(entry)
    return out


@dataclass(frozen=True)
class RulePlan:
    """What is fixed per rule for a whole run: its condition, the facts it reads and its static output blocks."""

    rule: Rule
    applies_fields: tuple[str, ...]
    evidence: dict[str, Any]
    citations: list[dict[str, Any]]
    cite_text: str
    limits: dict[Any, tuple[float, str | None]]
    outcome_rules: tuple[str, ...] = ()
    """The rules whose verdicts the condition reads (outcome leaves)."""
    recommendation: dict[str, Any] | None = None
    """A recommendation's result fields that no case changes (statement, direction, strength, action,
    multidisciplinary), built once; shared by every result, so read-only."""

    @property
    def applies(self) -> Condition:
        return self.rule.condition

    def limit_for(self, ctx: Mapping[str, Any]) -> tuple[float | None, str | None]:
        """The limit (and its note) that applies to this case; (None, None) where the source gives none."""
        limit = self.rule.limit
        if limit is None:
            return None, None
        key = "" if limit.value is not None else ctx.get(limit.by or "")
        return self.limits.get(key, (None, None))


def plan_rules(pack: RulePack) -> dict[str, RulePlan]:
    """One plan per rule in force, by rule id, in the pack's order."""
    plans: dict[str, RulePlan] = {}
    for rule in pack.rules:
        limits: dict[Any, tuple[float, str | None]] = {}
        if rule.limit is not None:
            if rule.limit.value is not None:
                limits[""] = (rule.limit.value, None)
            limits.update({e.key: (e.value, e.note) for e in rule.limit.table})
        plans[rule.id] = RulePlan(
            rule,
            tuple(sorted(fields_of(rule.condition))),
            evidence_of(rule),
            citations_of(rule, pack),
            "; ".join(f"{c.ref} ({c.locator})" for c in rule.citations),
            limits,
            tuple(sorted(outcomes_of(rule.condition))),
            _recommendation_fields(rule),
        )
    return plans


def _recommendation_fields(rule: Rule) -> dict[str, Any] | None:
    """The fields of a recommendation's result entry that are the same for every case, in the entry's order."""
    if rule.action is None:
        return None
    return {
        "statement": " ".join(rule.statement.split()),
        "direction": rule.direction,
        "strength": rule.strength,
        "action": rule.action.model_dump(exclude_none=True),
        "multidisciplinary": bool(rule.multidisciplinary),
    }


@dataclass(frozen=True)
class Knowledge:
    """The pack's knowledge data that explanation reads: histology lists (and their matcher), the assessment."""

    histology: HistologyLists | None = None
    assessment: Assessment | None = None
    radioresistant: Callable[[str], list[Any]] | None = None
    """A histology text → the radioresistant-list entries it matches; None without lists."""
    table: Table | None = None
    """The published limit table (Kotecha 2020 Table 3) shown beside derived limits; None without it."""


@dataclass(frozen=True)
class Run:
    """What every evaluation of one evaluator shares: the rules in force, their plans, the engine, the tool."""

    pack: RulePack
    as_of: date
    compiled_sha256: str
    engine_name: str
    engine_version: str
    tool_version: str
    plans: dict[str, RulePlan]
    knowledge: Knowledge = field(default_factory=Knowledge)


@dataclass(frozen=True)
class Item:
    """One rule on one (structure, metric) of a case — or on the case itself — with its quantity and status."""

    rule: Rule
    structure: str
    metric: str
    computed: Computed
    status: Status

    @property
    def key(self) -> str:
        return item_key(self.structure, self.metric)


@dataclass(frozen=True)
class Flip:
    """Under another reading of the sources, this item's status would be ``status`` (with this value and limit)."""

    reading: Reading
    status: Status
    value: float | None
    limit: float | None
    operator: str | None


@dataclass(frozen=True)
class Evaluation:
    """One case evaluated: the facts its conditions read, and every item with its status."""

    run: Run
    case: Case
    facts: Mapping[str, Any]
    items: tuple[Item, ...]
    as_of: date
    """The date the rules were selected for (the run's, or the treatment date in an audit)."""
    before_planning: LimitsReport | None = None
    """Without a planned dose: what each policy leaves for a new course (derived limits, candidate schedules)."""
    sensitivity: dict[tuple[str, str], tuple[Flip, ...]] = field(default_factory=dict)
    """Per (rule id, item key): the readings the sources allow under which this item's status would differ."""
    reading: Reading | None = None
    """The reading the case was evaluated under, when not the pack's own."""

    @cached_property
    def outcomes(self) -> Outcomes:
        """The verdicts that recommendations read: each constraint or advisory item's status, by rule."""
        out: Outcomes = {}
        for item in self.items:
            if item.rule.kind in (Kind.CONSTRAINT, Kind.ADVISORY):
                out.setdefault(item.rule.id, []).append((item.key, item.status))
        return out

    def statuses(self) -> dict[tuple[str, str], Status]:
        """Every item's status by (rule id, item key)."""
        return {(item.rule.id, item.key): item.status for item in self.items}
