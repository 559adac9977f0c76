"""The pipeline: case → computed quantities → one fact → statuses from a backend → an Evaluation → a result."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from reirrad.backends.reference import status_of
from reirrad.case import Case
from reirrad.dose.calculations import (
    READS_EARLIER_COURSES,
    Computed,
    assumptions_can_apply,
    compute_item,
    context_facts,
)
from reirrad.dose.limits import derive_limits
from reirrad.errors import EngineError, InputError, Problem
from reirrad.explain.results import audit_record, build_result
from reirrad.explain.why import Explainer
from reirrad.knowledge.conditions import outcomes_of
from reirrad.knowledge.data import Assessment, HistologyLists, Table
from reirrad.knowledge.readings import READINGS_SECTION, Reading, apply_reading, load_readings
from reirrad.knowledge.rulepack import Rule, RulePack, load_pack
from reirrad.load.cache import cached
from reirrad.load.paths import tool_version
from reirrad.logic.compiler import (
    CompiledPack,
    compile_pack,
    group_fields,
    marker_field,
    rule_marker_field,
    value_field,
)
from reirrad.plan import RULE_LEVEL, Evaluation, Flip, Item, Knowledge, RulePlan, Run, item_key, plan_rules
from reirrad.vocabulary import Kind, Status

__all__ = ["ENGINES", "Evaluator", "Prepared", "build_fact", "reading_of"]

ENGINES = ("durable", "oracle", "patterns")
"""durable-rules (the engine); the reference interpreter of the parsed rules (``oracle`` on the command line);
the compiled patterns interpreted in Python (a check of the durable adapter)."""

VALUE_DECIMALS = 6
"""Computed values are rounded to 10⁻⁶ (1 µGy, 10⁻⁶ of a month or of a ratio) before they are compared and
reported, so that floating-point noise (24.000000000000004) cannot flip a verdict at an exact boundary."""


class FiringEngine(Protocol):
    """An engine that runs the compiled pack on one fact and names the compiled rules that fired."""

    name: str
    version: str

    def fire(self, fact: dict[str, Any]) -> list[str]: ...


class _Pending(NamedTuple):
    rule: Rule
    structure: str
    metric: str
    computed: Computed

    @property
    def key(self) -> str:
        return item_key(self.structure, self.metric)


class Prepared(NamedTuple):
    """A case made ready for the rules: the fact a compiled pack matches, the facts conditions read, the items."""

    fact: dict[str, Any]
    facts: dict[str, Any]
    items: list[_Pending]


def _given_doses(case: Case) -> set[tuple[str, str]]:
    """The (structure, metric) pairs the planned course gives a dose for (none before planning)."""
    planned = case.planned_course.structures if case.planned_course is not None else None
    return {(s, m) for s, metrics in (planned or {}).items() for m, _ in metrics.items()}


def _items_for(rule: Rule, given: set[tuple[str, str]]) -> list[tuple[str, str]]:
    if rule.scope.per == "case":
        return [("", "")]
    found = [(s, m) for s in rule.scope.structures for m in rule.scope.metrics if (s, m) in given]
    return found or [("", "")]


def build_fact(
    case: Case,
    pack: RulePack,
    plans: Mapping[str, RulePlan] | None = None,
    radioresistant: Callable[[str], list[Any]] | None = None,
    start: date | None = None,
    groups: Mapping[str, str] | None = None,
) -> Prepared:
    """The single fact the engine sees: context facts, an item marker per evaluation and each computed value.
    ``start`` is the planned start of a case with no planned course (the evaluation's date); ``groups`` the
    compiled pack's group field of each rule (by default computed from the pack)."""
    start = case.planned_start(start or pack.as_of or date.today())
    facts = context_facts(case, radioresistant, start)
    fact: dict[str, Any] = {"kind": "case"}
    for key, value in facts.items():
        fact[key] = int(value) if isinstance(value, bool) else value
    items: list[_Pending] = []
    given = _given_doses(case)
    group_of = groups if groups is not None else group_fields(pack.rules)
    for plan in (plans if plans is not None else plan_rules(pack)).values():
        rule = plan.rule
        fact[group_of[rule.id]] = 1
        if rule.scope.per == "near_max_dose":
            fact[rule_marker_field(rule.id)] = 1
        for structure, metric in _items_for(rule, given):
            computed = compute_item(case, pack, rule, structure, metric, start)
            fact[marker_field(rule.id, structure, metric)] = 1
            if computed.value is not None:
                computed.value = fact[value_field(rule.id, structure, metric)] = round(
                    computed.value, VALUE_DECIMALS
                )
            items.append(_Pending(rule, structure, metric, computed))
    return Prepared(fact, facts, items)


def statuses_from_fired(
    compiled: CompiledPack, items: Sequence[_Pending], fired: Sequence[str]
) -> dict[tuple[str, str], Status]:
    """Each item's status from the compiled rules that fired; exactly one must have fired for each item."""
    fired_status: dict[tuple[str, str], Status] = {}
    for name in fired:
        rule = compiled.by_name[name]
        key = (rule.rule_id, rule.item)
        if fired_status.get(key) == rule.status and (rule.stage > 1 or rule.part):
            continue  # two conjuncts (or parts) of one status may both hold
        if key in fired_status:
            raise EngineError(
                f"{rule.rule_id} {rule.item or '(case)'}: two statuses fired "
                f"({fired_status[key]} and {rule.status}); the compiled patterns overlap"
            )
        fired_status[key] = rule.status
    status: dict[tuple[str, str], Status] = {}
    for item in items:
        key = (item.rule.id, item.key)
        own, rule_level = fired_status.get(key), fired_status.get((item.rule.id, RULE_LEVEL))
        if own is not None and rule_level is None:
            status[key] = own
        elif rule_level is not None and own is None:
            status[key] = rule_level
        else:
            found = [st for st in (own, rule_level) if st]
            what = "no status" if not found else f"two statuses ({' and '.join(found)})"
            raise EngineError(
                f"{item.rule.id} {key[1] or '(case)'}: {what} fired; the compiled patterns are "
                f"not exclusive and exhaustive"
            )
    return status


def _knowledge_of(pack: RulePack) -> Knowledge:
    """The histology lists, the structured assessment and the published limit table of a pack (None where the
    pack has no such file)."""
    from reirrad.knowledge.data import (
        ASSESSMENT_FILE,
        LISTS_FILE,
        TABLE_FILE,
        load_assessment,
        load_histology_lists,
        load_table,
    )

    files = [pack.root / name for name in (LISTS_FILE, ASSESSMENT_FILE, TABLE_FILE, Path("references.yaml"))]

    def build() -> tuple[HistologyLists | None, Assessment | None, Table | None]:
        return (
            load_histology_lists(pack.root) if files[0].is_file() else None,
            load_assessment(pack.root) if files[1].is_file() else None,
            load_table(pack.root) if files[2].is_file() else None,
        )

    lists, assessment, table = cached("knowledge", [f for f in files if f.is_file()], build, str(pack.root))
    return Knowledge(lists, assessment, cache(lists.match) if lists is not None else None, table)


def _reading_files(pack: RulePack) -> list[Path]:
    """The files the pack's readings come from (rules/readings/): part of the key of what is cached from them."""
    folder = pack.root / READINGS_SECTION
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def _readings_of(pack: RulePack) -> dict[str, Reading]:
    """The pack's readings (rules/readings/), each checked against the rules it touches."""
    files = _reading_files(pack)
    selection = "*" if pack.as_of is None else ",".join(f"{r.id}@{r.version}" for r in pack.rules)
    return cached(  # a touch of a rule not in the selection is left out: the selection is part of the key
        "readings",
        files,
        lambda: load_readings(pack.root, pack),
        pack.content_sha256,
        str(pack.root),
        selection,
    )


def reading_of(pack: RulePack, name: str) -> Reading:
    """The pack's reading of that name, or a refusal listing the readings there are."""
    return _reading_named(_readings_of(pack), name, pack.root)


def _reading_named(readings: dict[str, Reading], name: str, root: Path) -> Reading:
    found = readings.get(name.removeprefix("readings."))
    if found is None:
        raise InputError.of(
            [
                Problem(
                    "--reading",
                    (),
                    f"no reading '{name}' in the pack",
                    ", ".join(sorted(readings)) or f"(the pack {root} has no rules/readings/)",
                    code="cli.reading",
                )
            ]
        )
    return found


def _changed_directly(pack: RulePack, reading: Reading) -> frozenset[str]:
    """The rules whose status an alternative reading can change by itself: those it touches, those whose repair
    schedule it touches and, when it touches an assumption, every rule whose quantity reads the earlier courses'
    doses (an assumption gives a lost plan's dose)."""
    touched = set(reading.rules)
    repairs = {t.target.removeprefix("repair.") for t in reading.touches if t.kind == "repair"}
    ids = {x.id for x in pack.rules}
    assumption = any(pack.rule(r).kind == Kind.ASSUMPTION for r in touched if r in ids)
    for rule in pack.rules:
        q = rule.quantity
        if q is not None and (q.repair in repairs or (assumption and q.calculation in READS_EARLIER_COURSES)):
            touched.add(rule.id)
    return frozenset(touched & ids)


def _affected(pack: RulePack, reading: Reading) -> RulePack:
    """The rules an alternative reading can change: those it changes directly (_changed_directly), the
    recommendations that read their verdicts, and what those recommendations read."""
    touched = _changed_directly(pack, reading)
    chained = {
        r.id for r in pack.rules if r.kind == Kind.RECOMMENDATION and outcomes_of(r.condition) & touched
    }
    reads = {o for r in pack.rules if r.id in chained for o in outcomes_of(r.condition)}
    # the assumptions stay: the cumulative sums of the rules kept read them (without them, a lost plan's sum would
    # be undecided under every reading, a flip that no reading causes)
    assumptions = {r.id for r in pack.rules if r.kind == Kind.ASSUMPTION}
    keep = touched | chained | reads | assumptions
    return replace(pack, rules=tuple(r for r in pack.rules if r.id in keep), _by_id={})


def _compiled(pack: RulePack) -> CompiledPack:
    """The selected rules compiled (from the cache when this selection of this pack was compiled before)."""
    selection = ",".join(f"{r.id}@{r.version}:{r.status}" for r in pack.rules)
    return cached("compiled", (), lambda: compile_pack(pack), pack.content_sha256, selection, str(pack.root))


_NOT_CONDITIONS = {("quantity",), ("limit",), ("assumption",), ("steps",)}
"""The fields a reading can change without changing when a rule applies (a rule's quantity, limit or assumption;
a repair schedule's steps)."""


@dataclass
class _Alternative:
    """One reading of the sources as the sensitivity pass uses it, derived once from the pack in force."""

    reading: Reading
    pack: RulePack
    """The rules the reading can change (_affected), under the reading."""
    direct: frozenset[str]
    """The rules whose status it can change by itself (_changed_directly)."""
    reads_verdicts: frozenset[str]
    """Those of ``direct`` whose condition reads other rules' verdicts."""
    strict_only: frozenset[str] | None
    """The rules it touches when it only makes their limit operators strict, else None."""
    keeps_conditions: bool
    """Whether it leaves every condition as it is (a rule that does not apply still does not)."""
    lost_plans_only: bool
    """Whether it changes nothing but assumptions, which apply to lost plans alone."""
    evaluator: Evaluator | None = None
    """The reference evaluator of ``pack``, built when a case first needs it."""

    @classmethod
    def of(cls, base: RulePack, reading: Reading) -> _Alternative:
        pack = _affected(apply_reading(base, reading), reading)
        direct = _changed_directly(base, reading)
        ids = {r.id for r in base.rules}
        return cls(
            reading,
            pack,
            direct,
            frozenset(r for r in direct if outcomes_of(pack.rule(r).condition)),
            frozenset(t.target for t in reading.touches)
            if all(t.kind == "rule" and t.path == ("limit", "operator") for t in reading.touches)
            else None,
            all(t.path[:1] in _NOT_CONDITIONS for t in reading.touches),
            all(
                t.kind == "rule"
                and t.path[:1] == ("assumption",)
                and t.target in ids
                and base.rule(t.target).kind == Kind.ASSUMPTION
                for t in reading.touches
            ),
        )


class Evaluator:
    """Evaluates cases against the rules in force on one date, on one engine instance."""

    def __init__(
        self,
        pack: RulePack | None = None,
        *,
        as_of: date | None = None,
        engine: str = "durable",
        include_drafts: bool = False,
        reading: str | None = None,
        sensitivity: bool = True,
    ) -> None:
        """``reading`` evaluates under another reading of the sources (a file of rules/readings/); with
        ``sensitivity`` every verdict also says under which readings it would change."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}: {', '.join(ENGINES)}")
        self.as_of = as_of or date.today()
        full = pack if pack is not None else load_pack()
        selected = full.select(self.as_of, include_drafts) if full.as_of != self.as_of else full
        self.readings = _readings_of(full) if sensitivity or reading else {}
        self.reading: Reading | None = None
        if reading is not None:
            self.reading = _reading_named(self.readings, reading, full.root)
            selected = apply_reading(selected, self.reading)
        self.pack = selected
        self._sensitivity = sensitivity
        self._alternatives: dict[str, _Alternative] | None = None
        self.compiled: CompiledPack = _compiled(self.pack)
        self.plans = plan_rules(self.pack)
        self.knowledge = _knowledge_of(self.pack)
        self.explainer = Explainer(self.plans)
        self.engine: FiringEngine | None = None
        """The engine that runs the compiled pack (None for the reference interpreter)."""
        self._reference = None
        if engine == "durable":
            from reirrad.backends.durable import DurableEngine

            self.engine = DurableEngine(self.compiled)
        elif engine == "patterns":
            from reirrad.backends.patterns import PatternEngine

            self.engine = PatternEngine(self.compiled)
        else:
            from reirrad.backends.reference import ReferenceEngine

            self._reference = ReferenceEngine()
        backend = self.engine or self._reference
        assert backend is not None
        self.run = Run(
            self.pack,
            self.as_of,
            self.compiled.sha256,
            backend.name,
            backend.version,
            tool_version(),
            self.plans,
            self.knowledge,
        )

    def prepare(self, case: Case, as_of: date | None = None) -> Prepared:
        return build_fact(
            case,
            self.pack,
            self.plans,
            self.knowledge.radioresistant,
            as_of or self.as_of,
            self.compiled.group_of,
        )

    def evaluation(self, case: Case, *, as_of: date | None = None) -> Evaluation:
        """The case evaluated: every item with its status, as a typed, frozen record.

        ``as_of`` is the date the record names (default: the evaluator's); the rules are the evaluator's, which a
        caller such as the audit has chosen as the ones in force on that date."""
        prepared, items = self._items(case, as_of)
        on = as_of or self.as_of
        before = None
        if not case.has_planned_dose:
            before = derive_limits(case, self.pack, table=self.knowledge.table, candidates=True, on=on)
        flips = self._flips(case, on, items, prepared.facts) if self._sensitivity else {}
        return Evaluation(self.run, case, prepared.facts, items, on, before, flips, self.reading)

    def _items(self, case: Case, as_of: date | None) -> tuple[Prepared, tuple[Item, ...]]:
        """The case's fact and every item with its status (no limits before planning, no sensitivity)."""
        prepared = self.prepare(case, as_of)
        if self.engine is not None:
            status = statuses_from_fired(self.compiled, prepared.items, self.engine.fire(prepared.fact))
        else:
            assert self._reference is not None
            status = self._reference.statuses(
                prepared.facts, [(i.rule, i.key, i.computed.value) for i in prepared.items]
            )
        items = tuple(
            Item(i.rule, i.structure, i.metric, i.computed, status[(i.rule.id, i.key)])
            for i in prepared.items
        )
        return prepared, items

    def _alternatives_in_force(self) -> dict[str, _Alternative]:
        """The readings that touch a rule in force, each derived once (by reading name)."""
        if self._alternatives is None:
            pack, readings = self.pack, self.readings
            # the readings come from these files and the pack: both are in the key
            self._alternatives = cached(
                "alternatives",
                _reading_files(pack),
                lambda: {r.name: _Alternative.of(pack, r) for r in readings.values() if r.touches_pack(pack)},
                pack.content_sha256,
                str(pack.root),
                ",".join(f"{r.id}@{r.version}:{r.status}" for r in pack.rules),
                ",".join(sorted(readings)),
            )
        return self._alternatives

    def _alternative(self, alt: _Alternative) -> Evaluator:
        """The reference evaluator of the rules a reading can change, under that reading; built when first
        needed (most cases never need one)."""
        if alt.evaluator is None:
            alt.evaluator = Evaluator(alt.pack, as_of=self.as_of, engine="oracle", sensitivity=False)
        return alt.evaluator

    def _can_flip(self, alt: _Alternative, items: Sequence[Item], facts: Mapping[str, Any]) -> bool:
        """Whether evaluating under the reading can change a status. A reading that only changes limit operators
        (≤ read as <, ≥ as >) changes an item's status only where its value equals its limit, and nothing else
        (the recommendations read those statuses): if no item of its rules is at its limit, nothing flips, and the
        alternative evaluation is skipped. Any other reading is evaluated."""
        touched = alt.strict_only
        if touched is None:
            return True
        for item in items:
            if item.rule.id in touched and item.computed.value is not None and item.rule.limit is not None:
                limit, _ = self.plans[item.rule.id].limit_for(facts)
                if limit is not None and item.computed.value == limit:
                    return True
        return False

    def _changes_a_status(
        self, alt: _Alternative, case: Case, on: date, items: Sequence[Item], facts: Mapping[str, Any]
    ) -> bool:
        """Whether the reading changes the status of an item of a rule it changes directly, computed for those
        items alone. If none changes, nothing else can: the other rules of the alternative evaluation are the
        recommendations that read those statuses and the rules they read, all unchanged, and the facts conditions
        read do not depend on the rules. A rule that itself reads verdicts is not decided here (True: evaluate).
        An assumption changes nothing where no earlier course has lost its plan."""
        if alt.lost_plans_only and not assumptions_can_apply(case):
            return False
        start = case.planned_start(on)
        for item in items:
            rule_id = item.rule.id
            if rule_id not in alt.direct:
                continue
            if alt.keeps_conditions and item.status == Status.NOT_APPLICABLE:
                continue  # its condition is false, and the reading does not change conditions
            if rule_id in alt.reads_verdicts:
                return True
            rule = alt.pack.rule(rule_id)
            value = compute_item(case, alt.pack, rule, item.structure, item.metric, start).value
            if value is not None:
                value = round(value, VALUE_DECIMALS)
            if status_of(rule, value, facts) != item.status:
                return True
        return False

    def _flips(
        self,
        case: Case,
        on: date,
        items: Sequence[Item],
        facts: Mapping[str, Any],
        *,
        prefilter: bool = True,
    ) -> dict[tuple[str, str], tuple[Flip, ...]]:
        """For each item, the readings under which its status would differ (evaluated on the reference).
        ``prefilter`` skips the readings that cannot change a status (_can_flip, then _changes_a_status); a test
        compares both ways."""
        base = {(i.rule.id, i.key): i.status for i in items}
        out: dict[tuple[str, str], list[Flip]] = {}
        for alt in self._alternatives_in_force().values():
            if prefilter and not (
                self._can_flip(alt, items, facts) and self._changes_a_status(alt, case, on, items, facts)
            ):
                continue
            alternative = self._alternative(alt)
            prepared, changed = alternative._items(case, on)
            for item in changed:
                key = (item.rule.id, item.key)
                if key in base and base[key] != item.status:
                    plan = alternative.plans[item.rule.id]
                    limit, _ = plan.limit_for(prepared.facts) if item.rule.limit else (None, None)
                    out.setdefault(key, []).append(
                        Flip(
                            alt.reading,
                            item.status,
                            item.computed.value,
                            limit,
                            item.rule.limit.operator if item.rule.limit else None,
                        )
                    )
        return {k: tuple(v) for k, v in out.items()}

    def evaluate(self, case: Case, *, as_of: date | None = None) -> dict[str, Any]:
        """The result document (schemas/result.schema.json)."""
        return build_result(self.evaluation(case, as_of=as_of), self.explainer)

    def record(self, case: Case, *, as_of: date | None = None) -> dict[str, Any]:
        """What the department audit stores of the case's evaluation (explain.results.audit_record): the verdicts,
        values and limits of the result document, without its explanations."""
        return audit_record(self.evaluation(case, as_of=as_of))
