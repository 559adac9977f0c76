"""The largest planned cord / thecal sac near-maximum dose each policy allows a patient, by number of fractions.

Every figure is derived from the rules in force (their calculation, α/β, limit, operator and repair schedule), never
from numbers written here. For a dose criterion the rule's check is solved for the planned dose:

- ``planned_dose``      planned D ≤ L                                → D = L
- ``planned_eqd2``      EQD2(D, n) ≤ L                               → D = inverse(L)
- ``cumulative_eqd2``   Σ effective earlier EQD2 + EQD2(D, n) ≤ L    → D = inverse(L − Σ)
- ``cumulative_bed``    Σ effective earlier BED + BED(D, n) ≤ L      → D = inverse_bed(L − Σ)
- ``eqd2_ratio``        new / (earlier + new) ≤ r                    → new EQD2 ≤ r / (1 − r) · Σ → D = inverse(…)

where inverse(E) is the largest total dose in n fractions with EQD2 ≤ E (radiobiology.max_dose_for_eqd2) and the
earlier doses follow the conventions of calculations.py (same metric else Dmax; the missing-dosimetry assumption only
where the case says the plan data is unavailable; nothing assumed for a structure a course omits). A policy's limit is
the smallest over its dose criteria; the criterion that gives it binds. A case-level criterion (the interval) is a
gate: reported pass or fail, never turned into a dose. See docs/limits.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from reirrad.case import Case
from reirrad.dose import radiobiology as rb
from reirrad.dose.calculations import Computed, compute_item, context_facts, earlier_sum, prior_point_dose
from reirrad.knowledge.conditions import And, Condition, Const, Not, Or, Outcome, outcomes_of
from reirrad.knowledge.data import Row, Table
from reirrad.knowledge.rulepack import Rule, RulePack
from reirrad.logic.conditions import truth
from reirrad.logic.facts import CONTEXT_FACTS
from reirrad.vocabulary import METRICS, NEURAL_STRUCTURES

__all__ = [
    "INVERTIBLE",
    "NEURAL_STRUCTURES",
    "CandidateFit",
    "CandidateSchedule",
    "CriterionLimit",
    "DerivedLimit",
    "Gate",
    "LimitsReport",
    "default_fractions",
    "derive_limits",
    "floor_cgy",
]

INVERTIBLE = (
    "planned_dose",
    "planned_eqd2",
    "cumulative_eqd2",
    "cumulative_bed",
    "eqd2_ratio",
    "max_course_bed",
)
TIE = 1e-9


def floor_cgy(dose: float) -> float:
    """A limit shown to 0.01 Gy is rounded down, so that a plan at the shown figure still meets it."""
    return math.floor(dose * 100.0 + 1e-7) / 100.0


def default_fractions(table: Table | None) -> list[int]:
    """1 to 5 fractions and every fraction number of the table's recommended schedules."""
    return sorted({1, 2, 3, 4, 5} | set(table.fractions if table is not None else ()))


@dataclass
class CriterionLimit:
    rule_id: str
    version: str
    criterion: str
    max_dose: float | None
    operator: str
    steps: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    earlier: float | None = None
    """For a cumulative criterion: the earlier courses' effective dose, in the rule's unit."""
    limit: float | None = None
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.version,
            "criterion": self.criterion,
            "max_dose": None if self.max_dose is None else floor_cgy(self.max_dose),
            "max_dose_exact": self.max_dose,
            "operator": self.operator,
            "missing": self.missing,
            "earlier": None if self.earlier is None else round(self.earlier, 4),
            "limit": self.limit,
            "unit": self.unit,
        }


@dataclass
class Gate:
    rule_id: str
    version: str
    criterion: str
    status: str
    value: float | None
    limit: float | None
    operator: str
    unit: str
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.version,
            "criterion": self.criterion,
            "status": self.status,
            "value": None if self.value is None else round(self.value, 3),
            "limit": self.limit,
            "operator": self.operator,
            "unit": self.unit,
            "steps": self.steps,
        }


@dataclass
class DerivedLimit:
    policy: str
    structure: str
    metric: str
    fractions: int
    max_dose: float | None
    binding_criterion: str | None
    rules: list[Rule]
    criteria: list[CriterionLimit]
    gates: list[Gate]
    steps: list[str]
    missing: list[str]
    assumptions: list[str]
    strict: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "structure": self.structure,
            "metric": self.metric,
            "fractions": self.fractions,
            "max_dose": None if self.max_dose is None else floor_cgy(self.max_dose),
            "max_dose_exact": self.max_dose,
            "unit": "Gy",
            "strict": self.strict,
            "binding_criterion": self.binding_criterion,
            "rule_ids": [r.id for r in self.rules],
            "rule_versions": {r.id: r.version for r in self.rules},
            "criteria": [c.as_dict() for c in self.criteria],
            "gates": [g.as_dict() for g in self.gates],
            "assumptions": self.assumptions,
            "missing": self.missing,
            "steps": self.steps,
        }


@dataclass
class LimitsReport:
    case_id: str
    as_of: date
    pack: RulePack
    limits: list[DerivedLimit]
    published: list[dict[str, Any]]
    not_applicable: list[dict[str, Any]]
    table: Table | None
    row: Row | None
    notes: list[str]
    technique: str = "SBRT or SRS"
    planned_start: date | None = None
    start_assumed: bool = False
    """True when the case has no planned course and the planned start is the evaluation's date."""
    candidates: list[tuple[CandidateSchedule, list[CandidateFit]]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "command": "reirrad limits",
            "case_id": self.case_id,
            "as_of": self.as_of.isoformat(),
            "pack": {
                "name": self.pack.name,
                "version": self.pack.version,
                "content_sha256": self.pack.content_sha256,
            },
            "limits": [lim.as_dict() for lim in self.limits],
            "published_cells": self.published,
            "not_applicable": self.not_applicable,
            "notes": self.notes,
            "technique": self.technique,
            "planned_start": None if self.planned_start is None else self.planned_start.isoformat(),
            "planned_start_assumed": self.start_assumed,
            "candidates": [
                {
                    "label": c.label,
                    "fractions": c.fractions,
                    "technique": "SBRT or SRS" if c.stereotactic else "conventional",
                    "dose": c.dose,
                    "dose_high": c.dose_high,
                    "source": c.source,
                    "published": c.published,
                    "policies": [
                        {"policy": f.policy, "verdict": f.verdict, "reason": f.reason} for f in fits
                    ],
                }
                for c, fits in self.candidates
            ],
        }
        if self.table is not None:
            out["table"] = {
                "id": self.table.id,
                "ref": self.table.ref,
                "locator": self.table.locator,
                "structures": list(self.table.structures),
                "row": None if self.row is None else {"id": self.row.id, "label": self.row.label},
            }
        return out


_BOOLEAN_FACTS = frozenset(name for name, spec in CONTEXT_FACTS.items() if spec.type == "boolean")


# --- applicability -------------------------------------------------------------------------------------------------


def applies(rule: Rule, ctx: dict[str, Any]) -> bool | None:
    """True, False, or None (unknown: a fact it reads is absent) for the rule's applies_when on these facts."""
    return truth(rule.condition, ctx)


def _condition_text(expr: Condition, boolean: frozenset[str]) -> str:
    """A condition in one line, facts by name: ``prior_course_count > 0 and planned_stereotactic = true``."""
    if isinstance(expr, Const):
        return "always" if expr.value else "never"
    if isinstance(expr, And):
        return " and ".join(_condition_text(n, boolean) for n in expr.items)
    if isinstance(expr, Or):
        return "(" + " or ".join(_condition_text(n, boolean) for n in expr.items) + ")"
    if isinstance(expr, Not):
        return f"not ({_condition_text(expr.item, boolean)})"
    if isinstance(expr, Outcome):
        return f"{expr.rule} has {expr.status}"
    value = expr.value
    shown = str(bool(value)).lower() if expr.field in boolean and value in (0, 1) else value
    return f"{expr.field} {expr.op.sign} {shown}"


# --- one criterion -------------------------------------------------------------------------------------------------


def _inverse_text(name: str, budget: float, n: int, ab: float, dose: float) -> str:
    if budget <= 0:
        return f"no {name} is left for the new course: 0 Gy"
    bed_budget = budget if name == "BED" else rb.eqd2_to_bed(budget, ab)
    d = dose / n
    return (
        f"largest dose in {n} fx with {name}(α/β {ab:g}) ≤ {budget:.2f} Gy: BED budget {bed_budget:.2f} Gy, "
        f"d = (α/β / 2)·(√(1 + 4·BED/(n·α/β)) − 1) = {d:.4f} Gy per fraction → {dose:.2f} Gy"
    )


def _criterion(
    case: Case,
    pack: RulePack,
    rule: Rule,
    structure: str,
    metric: str,
    n: int,
    ctx: dict[str, Any],
    start: date,
) -> tuple[CriterionLimit, Computed]:
    q, limit = rule.quantity, rule.limit
    assert q is not None
    assert limit is not None
    out = Computed()
    crit = CriterionLimit(rule.id, rule.version, rule.criterion or rule.id, None, limit.operator)
    entry = limit.resolve(ctx)
    if limit.operator not in ("<=", "<"):
        crit.missing.append(
            f"{rule.id}: the limit is a minimum ({limit.operator}), not a ceiling on the dose"
        )
        return crit, out
    if entry is None:
        crit.missing.append(f"{rule.id}: the rule gives no limit for {limit.by} = {ctx.get(limit.by or '')}")
        return crit, out
    lim = entry.value
    ab = q.alpha_beta
    calc = q.calculation
    if calc == "planned_dose":
        crit.max_dose = lim
        crit.steps.append(
            f"{rule.id}: planned {structure} {metric} {limit.operator} {lim:g} Gy in {n} fx"
            + (f" ({entry.note})" if entry.note else "")
            + f" → {lim:.2f} Gy"
        )
        return crit, out
    assert ab is not None, f"{rule.id}: {calc} needs alpha_beta"
    if calc == "planned_eqd2":
        crit.max_dose = rb.max_dose_for_eqd2(lim, n, ab)
        crit.steps.append(
            f"{rule.id}: new-course EQD2(α/β {ab:g}) {limit.operator} {lim:g} Gy; "
            + _inverse_text("EQD2", lim, n, ab, crit.max_dose)
        )
        return crit, out
    if calc == "max_course_bed":
        # every course on its own at most L: the earlier ones as they are, the new one solved for its dose
        earlier_beds = []
        for i, course in enumerate(case.prior_courses):
            dose = prior_point_dose(pack, i, course, structure, metric, out)
            if dose is not None:
                earlier_beds.append((i, rb.bed(dose, course.fractions, ab)))
        crit.missing += out.missing
        if out.missing:
            crit.missing.insert(0, f"{rule.id}: cannot be derived")
            return crit, out
        over = [(i, bed) for i, bed in earlier_beds if not limit.holds(bed, lim)]
        if over:
            i, bed = over[0]
            crit.max_dose = 0.0
            crit.steps.append(
                f"{rule.id}: prior course {i + 1} alone gives BED(α/β {ab:g}) {bed:.2f} Gy, over "
                f"{limit.operator} {lim:g} Gy: no new course meets the criterion"
            )
            return crit, out
        crit.max_dose = rb.max_dose_for_bed(lim, n, ab)
        crit.steps.append(
            f"{rule.id}: each course alone BED(α/β {ab:g}) {limit.operator} {lim:g} Gy; "
            + _inverse_text("BED", lim, n, ab, crit.max_dose)
        )
        return crit, out
    kind = "bed" if calc == "cumulative_bed" else "eqd2"
    name = kind.upper() if kind == "bed" else "EQD2"
    earlier = earlier_sum(case, pack, rule, structure, metric, start, out)
    crit.steps += out.steps
    crit.missing += out.missing
    if earlier is None:
        crit.missing.insert(0, f"{rule.id}: cannot be derived")
        return crit, out
    if calc in ("cumulative_eqd2", "cumulative_bed"):
        crit.earlier, crit.limit, crit.unit = earlier, lim, q.unit
        budget = lim - earlier
        crit.max_dose = (
            rb.max_dose_for_bed(budget, n, ab) if kind == "bed" else rb.max_dose_for_eqd2(budget, n, ab)
        )
        crit.steps.append(
            f"{rule.id}: cumulative {name}(α/β {ab:g}) {limit.operator} {lim:g} Gy"
            + (f" ({entry.note})" if entry.note else "")
            + f"; earlier courses {earlier:.2f} Gy, {budget:.2f} Gy left; "
            + _inverse_text(name, budget, n, ab, crit.max_dose)
        )
        return crit, out
    if calc == "eqd2_ratio":
        if lim >= 1:
            crit.steps.append(f"{rule.id}: a share limit of {lim:g} or more never binds")
            crit.max_dose = math.inf
            return crit, out
        factor = lim / (1.0 - lim)
        budget = factor * earlier
        crit.max_dose = rb.max_dose_for_eqd2(budget, n, ab)
        crit.steps.append(
            f"{rule.id}: new / (earlier + new) {limit.operator} {lim:g} ⇔ new EQD2(α/β {ab:g}) "
            f"{limit.operator} {factor:g} × earlier {earlier:.2f} Gy = {budget:.2f} Gy; "
            + _inverse_text("EQD2", budget, n, ab, crit.max_dose)
        )
        return crit, out
    crit.missing.append(f"{rule.id}: no inverse for the calculation '{calc}'")
    return crit, out


def _gate(case: Case, pack: RulePack, rule: Rule, ctx: dict[str, Any], start: date) -> Gate:
    assert rule.limit is not None
    assert rule.quantity is not None
    computed = compute_item(case, pack, rule, "", "", start)
    entry = rule.limit.resolve(ctx)
    limit = None if entry is None else entry.value
    status = "indeterminate"
    if computed.value is not None and limit is not None:
        status = "pass" if rule.limit.holds(computed.value, limit) else "fail"
    steps = list(computed.steps) + list(computed.missing)
    if limit is not None and computed.value is not None:
        steps.append(
            f"{rule.id}: {computed.value:.2f} {rule.quantity.unit} {rule.limit.operator} {limit:g} → {status}"
        )
    return Gate(
        rule.id,
        rule.version,
        rule.criterion or rule.id,
        status,
        computed.value,
        limit,
        rule.limit.operator,
        rule.quantity.unit,
        steps,
    )


# --- the report ----------------------------------------------------------------------------------------------------


def _dose_rules(pack: RulePack) -> dict[str, list[Rule]]:
    out: dict[str, list[Rule]] = {}
    for rule in pack.rules:
        if rule.kind != "constraint" or rule.policy is None or rule.quantity is None or rule.limit is None:
            continue
        if outcomes_of(rule.condition):
            continue
        if (
            rule.scope.per == "near_max_dose"
            and rule.quantity.calculation in INVERTIBLE
            and any(s in NEURAL_STRUCTURES for s in rule.scope.structures)
        ):
            out.setdefault(rule.policy, []).append(rule)
    return out


def _gate_rules(pack: RulePack, policy: str) -> list[Rule]:
    return [
        r
        for r in pack.rules
        if r.kind == "constraint"
        and r.policy == policy
        and r.scope.per == "case"
        and r.quantity is not None
        and r.limit is not None
        and not outcomes_of(r.condition)
    ]


def _structure_sources(case: Case, pack: RulePack) -> set[str]:
    """Structures the case gives a dose for: named by the planned or an earlier course, or supplied for a lost plan
    by the missing-dosimetry assumption in force."""
    named: set[str] = set(case.planned_course.structures or {}) if case.planned_course is not None else set()
    for course in case.prior_courses:
        named |= set(course.structures or {})
        if course.dosimetry_lost:
            for rule in pack.rules:
                if (
                    rule.kind == "assumption"
                    and rule.assumption is not None
                    and course.technique in rule.assumption.course_techniques
                ):
                    named |= set(rule.assumption.structures)
    return named


def _items(
    case: Case,
    pack: RulePack,
    rules: list[Rule],
    structures: Sequence[str] | None,
    metrics: Sequence[str] | None,
) -> list[tuple[str, str]]:
    scope_s = list(dict.fromkeys(s for r in rules for s in r.scope.structures if s in NEURAL_STRUCTURES))
    scope_m = list(dict.fromkeys(m for r in rules for m in r.scope.metrics))
    if structures:
        chosen = [s for s in structures if s in scope_s]
    else:
        given = _structure_sources(case, pack)
        chosen = [s for s in scope_s if s in given]
    out = []
    for s in chosen:
        if metrics:
            ms = [m for m in metrics if m in scope_m]
        else:
            doses: dict[Any, Any] = dict(case.planned_course.structures or {}) if case.planned_course else {}
            planned = doses.get(s)
            ms = [m for m in scope_m if planned is not None and planned.get(m) is not None] or scope_m
        out += [(s, m) for m in ms]
    return out


def _published(table: Table, row: Row, lim: DerivedLimit) -> dict[str, Any] | None:
    schedule = table.schedule_for(lim.fractions)
    if schedule is None or lim.structure not in table.structures:
        return None
    cell = row.cell(schedule.id)
    derived = None if lim.max_dose is None else floor_cgy(lim.max_dose)
    diff = None
    if cell.limit is not None and lim.max_dose is not None and math.isfinite(lim.max_dose):
        diff = round(cell.limit - lim.max_dose, 3)
    return {
        "policy": lim.policy,
        "structure": lim.structure,
        "metric": lim.metric,
        "fractions": lim.fractions,
        "derived_max_dose": derived,
        "binding_criterion": lim.binding_criterion,
        "table": table.id,
        "row": row.label,
        "column": schedule.label,
        "published": cell.text(),
        "cell": cell.as_dict(),
        "published_minus_derived_gy": diff,
    }


def _order(names: Sequence[str], name: str) -> int:
    return names.index(name) if name in names else len(names)


def _derive_one(
    case: Case,
    pack: RulePack,
    policy: str,
    rules: list[Rule],
    items: list[tuple[str, str]],
    ctx: dict[str, Any],
    n: int,
    start: date,
    asked: bool,
) -> list[DerivedLimit] | None:
    """The policy's limits for ``n`` fractions on these facts; None when no rule of the policy applies."""
    in_play = [r for r in rules if applies(r, ctx)]
    if not in_play:
        return None
    gates = [_gate(case, pack, g, ctx, start) for g in _gate_rules(pack, policy) if applies(g, ctx)]
    if not items:
        scope = sorted({s for r in in_play for s in r.scope.structures if s in NEURAL_STRUCTURES})
        why = f"cannot be derived: the case gives a dose for none of {', '.join(scope)}"
        if asked:
            why += " (or none of the structures / metrics asked for)"
        return [DerivedLimit(policy, "", "", n, None, None, in_play, [], gates, [], [why], [])]
    out: list[DerivedLimit] = []
    for structure, metric in items:
        item_rules = [r for r in in_play if structure in r.scope.structures and metric in r.scope.metrics]
        if not item_rules:
            continue
        criteria: list[CriterionLimit] = []
        steps: list[str] = []
        missing: list[str] = []
        assumptions: list[str] = []
        for rule in item_rules:
            crit, computed = _criterion(case, pack, rule, structure, metric, n, ctx, start)
            criteria.append(crit)
            steps += [s for s in crit.steps if s not in steps]
            missing += [m for m in crit.missing if m not in missing]
            assumptions += [a for a in computed.assumptions if a not in assumptions]
        best: float | None = None
        binding: str | None = None
        doses = [c.max_dose for c in criteria if c.max_dose is not None]
        if len(doses) == len(criteria):
            best = lowest = min(doses)
            tied = [c.rule_id for c in criteria if c.max_dose is not None and c.max_dose - lowest <= TIE]
            binding = tied[0]
            if not math.isfinite(lowest):
                best, binding = None, None
                missing.append("no criterion of the policy bounds the dose")
            else:
                steps.append(
                    f"binding: {' and '.join(tied)} → at most {lowest:.2f} Gy "
                    f"(shown rounded down: {floor_cgy(lowest):.2f} Gy)"
                )
        else:
            missing.insert(
                0,
                "cannot be derived: "
                + "; ".join(c.rule_id for c in criteria if c.max_dose is None)
                + " lack(s) an input",
            )
        for g in gates:
            steps += [s for s in g.steps if s not in steps]
        strict = any(c.operator == "<" and c.rule_id == binding for c in criteria)
        out.append(
            DerivedLimit(
                policy,
                structure,
                metric,
                n,
                best,
                binding,
                item_rules,
                criteria,
                gates,
                steps,
                missing,
                assumptions,
                strict,
            )
        )
    return out


@dataclass(frozen=True)
class CandidateSchedule:
    """A schedule on the table at a tumour board: from the published table, or an option a recommendation names."""

    label: str
    fractions: int
    stereotactic: bool
    source: str
    dose: float | None = None
    dose_high: float | None = None
    published: dict[str, Any] | None = None
    """The published cell for this schedule after the case's earlier course (Table 3), where there is one."""


@dataclass
class CandidateFit:
    """Whether one policy allows a candidate schedule, and with what cord / thecal sac limit."""

    policy: str
    verdict: str
    """'fits', 'fits only if the cord gets less than the prescription', 'does not fit', 'not applicable',
    'cannot be derived'."""
    reason: str
    limits: list[DerivedLimit]


def _candidates(pack: RulePack, table: Table | None, row: Row | None) -> list[CandidateSchedule]:
    out: list[CandidateSchedule] = []
    if table is not None:
        for schedule in table.schedules:
            cell = row.cell(schedule.id) if row is not None else None
            published = None
            if cell is not None:
                published = {
                    "table": table.id,
                    "row": row.label if row else None,
                    "column": schedule.label,
                    "published": cell.text(),
                    "cell": cell.as_dict(),
                    "basis": "HyTEC-based (the table cites the HyTEC report and Sahgal 2012)",
                }
            dose = schedule.dose if schedule.dose is not None else schedule.dose_low
            out.append(
                CandidateSchedule(
                    schedule.label,
                    schedule.fractions,
                    True,
                    f"{table.ref} {table.locator}",
                    dose,
                    schedule.dose_high,
                    published,
                )
            )
    named: dict[tuple[float, int], list[str]] = {}
    labels: dict[tuple[float, int], str] = {}
    for rule in pack.rules:
        if rule.kind != "recommendation" or rule.action is None:
            continue
        for option in rule.action.options:
            if option.fractions is None or option.dose is None:
                continue
            key = (option.dose, option.fractions)
            labels.setdefault(key, option.label)
            named.setdefault(key, []).append(rule.id)
    for (dose, n), rule_ids in named.items():
        out.append(
            CandidateSchedule(labels[(dose, n)], n, False, f"an option of {', '.join(rule_ids)}", dose)
        )
    return out


def _fit(policy: str, limits: list[DerivedLimit] | None, candidate: CandidateSchedule) -> CandidateFit:
    if limits is None:
        return CandidateFit(
            policy,
            "not applicable",
            f"no rule of {policy} applies to a {'SBRT' if candidate.stereotactic else 'conventional'} "
            f"course in {candidate.fractions} fraction(s)",
            [],
        )
    failed = [g for lim in limits for g in lim.gates if g.status == "fail"]
    if failed:
        g = failed[0]
        return CandidateFit(policy, "does not fit", f"{g.rule_id} is not met ({g.criterion})", limits)
    known = [lim for lim in limits if lim.max_dose is not None]
    if not known:
        why = next((m for lim in limits for m in lim.missing), "a criterion lacks an input")
        return CandidateFit(policy, "cannot be derived", why, limits)
    lowest = min(known, key=lambda lim: lim.max_dose or 0.0)
    cap = floor_cgy(lowest.max_dose or 0.0)
    where = f"{lowest.structure} {lowest.metric}"
    if cap <= 0:
        return CandidateFit(
            policy, "does not fit", f"no dose is left for {where} ({lowest.binding_criterion})", limits
        )
    if candidate.stereotactic or candidate.dose is None:
        return CandidateFit(
            policy, "fits", f"{where} at most {cap:.2f} Gy ({lowest.binding_criterion})", limits
        )
    top = candidate.dose_high or candidate.dose
    if cap >= top:
        return CandidateFit(
            policy,
            "fits",
            f"{where} at most {cap:.2f} Gy ({lowest.binding_criterion}), above the "
            f"prescription: fits even with the cord at the full {top:g} Gy",
            limits,
        )
    return CandidateFit(
        policy,
        "fits only if the cord gets less than the prescription",
        f"{where} at most {cap:.2f} Gy ({lowest.binding_criterion}), below the {top:g} Gy prescribed",
        limits,
    )


def derive_limits(
    case: Case,
    pack: RulePack,
    *,
    table: Table | None = None,
    fractions: Sequence[int] | None = None,
    structures: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    candidates: bool = False,
    stereotactic: bool | None = None,
    on: date | None = None,
) -> LimitsReport:
    """Every dose policy's largest planned near-maximum dose for this case, per structure, metric and fractions.

    ``pack`` must be a selection (RulePack.select): the rules in force on one date. The technique is the planned
    course's (SBRT or SRS, or conventional) or, before planning, SBRT; the rules of a policy that do not apply to it
    are not derived. With ``candidates``, each schedule of the published table and each schedule a recommendation
    names is checked against every policy. ``on`` is the date of a case with no planned course (default: the
    selection's date)."""
    if pack.as_of is None:
        raise ValueError("derive_limits needs the rules in force on one date: pass pack.select(as_of)")
    numbers = sorted(set(fractions)) if fractions else default_fractions(table)
    start = case.planned_start(on or pack.as_of)
    base_ctx = context_facts(case, None, start)
    planned = case.planned_course
    if stereotactic is None:
        stereotactic = planned.is_stereotactic if planned is not None else True
    limits: list[DerivedLimit] = []
    not_applicable: list[dict[str, Any]] = []
    notes: list[str] = []
    dose_rules = sorted(_dose_rules(pack).items())
    asked = bool(structures or metrics)
    for policy, rules in dose_rules:
        items = _items(case, pack, rules, structures, metrics)
        applicable_any = False
        for n in numbers:
            ctx = {**base_ctx, "planned_fractions": n, "planned_stereotactic": stereotactic}
            found = _derive_one(case, pack, policy, rules, items, ctx, n, start, asked)
            if found is not None:
                applicable_any = True
                limits += found
        if not applicable_any:
            not_applicable.append(
                {
                    "policy": policy,
                    "rule_ids": [r.id for r in rules],
                    "applies_when": {r.id: _condition_text(r.condition, _BOOLEAN_FACTS) for r in rules},
                }
            )
    limits.sort(
        key=lambda lim: (
            lim.policy,
            _order(NEURAL_STRUCTURES, lim.structure),
            _order(METRICS, lim.metric),
            lim.fractions,
        )
    )
    row = None
    published: list[dict[str, Any]] = []
    if table is not None:
        priors = [(c.prescription_gy, c.fractions) for c in case.prior_courses]
        row = table.row_for(priors)
        if row is not None:
            published = [p for lim in limits if (p := _published(table, row, lim)) is not None]
            notes.append(
                f"the earlier course matches {table.id} row '{row.label}' by prescription and fractions; "
                f"its cells are shown beside limits for {', '.join(table.structures)} only (the table's "
                "limits are for the cord planning risk volume or the thecal sac)"
            )
        elif len(case.prior_courses) > 1:
            notes.append(f"{table.id} has rows for a single earlier course only: no published cell is shown")
        else:
            notes.append(f"no row of {table.id} has the earlier course's prescription and fractions")
    fits: list[tuple[CandidateSchedule, list[CandidateFit]]] = []
    if candidates:
        for candidate in _candidates(pack, table, row):
            ctx = {
                **base_ctx,
                "planned_fractions": candidate.fractions,
                "planned_stereotactic": candidate.stereotactic,
            }
            if candidate.dose is not None:
                ctx["planned_dose_per_fraction"] = candidate.dose / candidate.fractions
            fits.append(
                (
                    candidate,
                    [
                        _fit(
                            policy,
                            _derive_one(
                                case,
                                pack,
                                policy,
                                rules,
                                _items(case, pack, rules, structures, metrics),
                                ctx,
                                candidate.fractions,
                                start,
                                asked,
                            ),
                            candidate,
                        )
                        for policy, rules in dose_rules
                    ],
                )
            )
    return LimitsReport(
        case.case_id,
        pack.as_of,
        pack,
        limits,
        published,
        not_applicable,
        table,
        row,
        notes,
        "SBRT or SRS" if stereotactic else "conventional",
        start,
        planned is None,
        fits,
    )
