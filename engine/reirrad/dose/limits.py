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

from reirrad.case import METRICS, Case
from reirrad.dose import radiobiology as rb
from reirrad.dose.calculations import Computed, _prior_point_dose, compute_item, context_facts
from reirrad.errors import one_line
from reirrad.knowledge.data import Row, Table
from reirrad.knowledge.rulepack import Rule, RulePack
from reirrad.logic.conditions import (
    TRUE,
    Const,
    evaluate_pattern,
    f_of,
    has_derived,
    parse_condition,
    simplify,
    t_of,
    to_pattern,
)

__all__ = [
    "INVERTIBLE",
    "NEURAL_STRUCTURES",
    "CriterionLimit",
    "DerivedLimit",
    "Gate",
    "LimitsReport",
    "default_fractions",
    "derive_limits",
    "floor_cgy",
]

INVERTIBLE = ("planned_dose", "planned_eqd2", "cumulative_eqd2", "cumulative_bed", "eqd2_ratio")
NEURAL_STRUCTURES = (
    "SpinalCord",
    "SpinalCord_PRV03",
    "SpinalCord_PRV05",
    "ThecalSac",
    "SpinalCanal",
    "CaudaEquina",
)
"""Structures whose limits `reirrad limits` derives: the cord, its planning risk volumes, the thecal sac, the canal
and the cauda equina (structure names, not limits)."""
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_version": self.version,
            "criterion": self.criterion,
            "max_dose": None if self.max_dose is None else floor_cgy(self.max_dose),
            "max_dose_exact": self.max_dose,
            "operator": self.operator,
            "missing": self.missing,
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


# --- applicability -------------------------------------------------------------------------------------------------


def _holds(expr: Any, ctx: dict[str, Any]) -> bool:
    expr = simplify(expr)
    if isinstance(expr, Const):
        return expr == TRUE
    return evaluate_pattern(to_pattern(expr), ctx)


def applies(rule: Rule, ctx: dict[str, Any]) -> bool | None:
    """True, False, or None (unknown: a fact it reads is absent) for the rule's applies_when on these facts."""
    expr = parse_condition(rule.applies_when)
    if _holds(t_of(expr), ctx):
        return True
    if _holds(f_of(expr), ctx):
        return False
    return None


def _condition_text(node: Any) -> str:
    if node == "always":
        return "always"
    if "all" in node:
        return " and ".join(_condition_text(n) for n in node["all"])
    if "any" in node:
        return "(" + " or ".join(_condition_text(n) for n in node["any"]) + ")"
    if "not" in node:
        return f"not ({_condition_text(node['not'])})"
    ((op, value),) = ((k, v) for k, v in node.items() if k != "fact")
    sign = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥", "in": "in"}.get(op, op)
    return f"{node['fact']} {sign} {str(value).lower() if isinstance(value, bool) else value}"


# --- earlier doses -------------------------------------------------------------------------------------------------


def _earlier_sum(
    case: Case,
    pack: RulePack,
    alpha_beta: float,
    repair: str | None,
    structure: str,
    metric: str,
    kind: str,
    out: Computed,
) -> float | None:
    """Σ of the earlier courses' effective dose (EQD2 or BED at α/β, each repaired by its own interval), or None
    when a course's dose cannot be established (out.missing says why)."""
    convert = rb.eqd2 if kind == "eqd2" else rb.bed
    name = "EQD2" if kind == "eqd2" else "BED"
    schedule = pack.repairs[repair].schedule if repair else None
    total, complete = 0.0, True
    for i, course in enumerate(case.prior_courses):
        dose = _prior_point_dose(pack, i, course, structure, metric, out)
        if dose is None:
            complete = False
            continue
        converted = convert(dose, course.fractions, alpha_beta)
        months = rb.interval_months(course.end, case.planned_course.start)  # type: ignore[arg-type]
        repaired = schedule.fraction_at(months) if schedule else 0.0
        effective = (1.0 - repaired) * converted
        text = (
            f"prior course {i + 1}: {structure} {dose:g} Gy in {course.fractions} fx → {name}(α/β {alpha_beta:g}) "
            f"{converted:.2f} Gy"
        )
        if schedule is not None:
            text += (
                f"; {months:.1f} months before the planned start, {repaired:.0%} repaired ({schedule.name}) → "
                f"{effective:.2f} Gy"
            )
        out.steps.append(text)
        total += effective
    return total if complete else None


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
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, n: int, ctx: dict[str, Any]
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
    kind = "bed" if calc == "cumulative_bed" else "eqd2"
    name = kind.upper() if kind == "bed" else "EQD2"
    earlier = _earlier_sum(case, pack, ab, q.repair, structure, metric, kind, out)
    crit.steps += out.steps
    crit.missing += out.missing
    if earlier is None:
        crit.missing.insert(0, f"{rule.id}: cannot be derived")
        return crit, out
    if calc in ("cumulative_eqd2", "cumulative_bed"):
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


def _gate(case: Case, pack: RulePack, rule: Rule, ctx: dict[str, Any]) -> Gate:
    assert rule.limit is not None
    assert rule.quantity is not None
    computed = compute_item(case, pack, rule, "", "")
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
        if has_derived(parse_condition(rule.applies_when)):
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
        and not has_derived(parse_condition(r.applies_when))
    ]


def _structure_sources(case: Case, pack: RulePack) -> set[str]:
    """Structures the case gives a dose for: named by the planned or an earlier course, or supplied for a lost plan
    by the missing-dosimetry assumption in force."""
    named = set(case.planned_course.structures)
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
            planned = case.planned_course.structures.get(s)  # type: ignore[call-overload]
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


def derive_limits(
    case: Case,
    pack: RulePack,
    *,
    table: Table | None = None,
    fractions: Sequence[int] | None = None,
    structures: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> LimitsReport:
    """Every dose policy's largest planned near-maximum dose for this case, per structure, metric and fractions.

    ``pack`` must be a selection (RulePack.select): the rules in force on one date.
    """
    if pack.as_of is None:
        raise ValueError("derive_limits needs the rules in force on one date: pass pack.select(as_of)")
    numbers = sorted(set(fractions)) if fractions else default_fractions(table)
    base_ctx = context_facts(case)
    limits: list[DerivedLimit] = []
    not_applicable: list[dict[str, Any]] = []
    notes: list[str] = []
    for policy, rules in sorted(_dose_rules(pack).items()):
        gate_rules = _gate_rules(pack, policy)
        items = _items(case, pack, rules, structures, metrics)
        applicable_any = False
        for n in numbers:
            ctx = {**base_ctx, "planned_fractions": n, "planned_stereotactic": True}
            in_play = [r for r in rules if applies(r, ctx)]
            if not in_play:
                continue
            applicable_any = True
            gates = [_gate(case, pack, g, ctx) for g in gate_rules if applies(g, ctx)]
            if not items:
                scope = sorted({s for r in in_play for s in r.scope.structures if s in NEURAL_STRUCTURES})
                limits.append(
                    DerivedLimit(
                        policy,
                        "",
                        "",
                        n,
                        None,
                        None,
                        in_play,
                        [],
                        gates,
                        [],
                        [
                            f"cannot be derived: the case gives a dose for none of {', '.join(scope)}"
                            + (
                                " (or none of the structures / metrics asked for)"
                                if structures or metrics
                                else ""
                            )
                        ],
                        [],
                    )
                )
                continue
            for structure, metric in items:
                item_rules = [
                    r for r in in_play if structure in r.scope.structures and metric in r.scope.metrics
                ]
                if not item_rules:
                    continue
                criteria: list[CriterionLimit] = []
                steps: list[str] = []
                missing: list[str] = []
                assumptions: list[str] = []
                seen_steps: set[str] = set()
                for rule in item_rules:
                    crit, computed = _criterion(case, pack, rule, structure, metric, n, ctx)
                    criteria.append(crit)
                    for s in crit.steps:
                        if s not in seen_steps:
                            steps.append(s)
                            seen_steps.add(s)
                    missing += [m for m in crit.missing if m not in missing]
                    assumptions += [a for a in computed.assumptions if a not in assumptions]
                best: float | None = None
                binding: str | None = None
                if all(c.max_dose is not None for c in criteria):
                    best = min(c.max_dose for c in criteria)  # type: ignore[type-var]
                    tied = [
                        c.rule_id for c in criteria if c.max_dose is not None and c.max_dose - best <= TIE
                    ]
                    binding = tied[0]
                    if not math.isfinite(best):
                        best, binding = None, None
                        missing.append("no criterion of the policy bounds the dose")
                    else:
                        steps.append(
                            f"binding: {' and '.join(tied)} → at most {best:.2f} Gy "
                            f"(shown rounded down: {floor_cgy(best):.2f} Gy)"
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
                limits.append(
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
        if not applicable_any:
            not_applicable.append(
                {
                    "policy": policy,
                    "rule_ids": [r.id for r in rules],
                    "applies_when": {r.id: _condition_text(r.applies_when) for r in rules},
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
    return LimitsReport(case.case_id, pack.as_of, pack, limits, published, not_applicable, table, row, notes)


_SIGN = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}


def render_text(report: LimitsReport) -> str:
    """A readable table per policy: the limit, what binds, each criterion's own figure, the published cell."""
    lines = [
        f"reirrad limits — case {one_line(report.case_id)}, rules in force on {report.as_of} "
        f"({report.pack.name} {report.pack.version})",
        "Largest planned near-maximum dose (physical Gy, whole new course), rounded down to 0.01 Gy.",
        "",
    ]
    pub = {(p["policy"], p["structure"], p["metric"], p["fractions"]): p for p in report.published}
    by_policy: dict[str, list[DerivedLimit]] = {}
    for lim in report.limits:
        by_policy.setdefault(lim.policy, []).append(lim)
    for policy, lims in by_policy.items():
        rules = list(dict.fromkeys(f"{r.id} {r.version}" for lim in lims for r in lim.rules))
        lines.append(f"{policy}  (rules: {', '.join(rules)})")
        gates = {g.rule_id: g for lim in lims for g in lim.gates}
        for g in gates.values():
            value = "not known" if g.value is None else f"{g.value:.2f} {g.unit}"
            lines.append(
                f"  gate {g.rule_id}: {value} {_SIGN.get(g.operator, g.operator)} {g.limit:g} → "
                f"{g.status.upper()}"
                + ("  (the policy is not met at any dose until this passes)" if g.status == "fail" else "")
            )
        criteria = list(dict.fromkeys(c.rule_id for lim in lims for c in lim.criteria))
        header = ["structure", "metric", "fx", "max dose", "binding", *criteria, "published"]
        body = []
        for lim in lims:
            by_rule = {c.rule_id: c for c in lim.criteria}
            shown = (
                "—" if lim.max_dose is None else f"{'<' if lim.strict else ''}{floor_cgy(lim.max_dose):.2f}"
            )
            cells = [
                lim.structure or "—",
                lim.metric or "—",
                str(lim.fractions),
                shown,
                lim.binding_criterion or "—",
            ]
            for rid in criteria:
                c = by_rule.get(rid)
                cells.append(
                    ""
                    if c is None
                    else "—"
                    if c.max_dose is None
                    else "∞"
                    if not math.isfinite(c.max_dose)
                    else f"{floor_cgy(c.max_dose):.2f}"
                )
            p = pub.get((lim.policy, lim.structure, lim.metric, lim.fractions))
            cells.append("" if p is None else p["published"])
            body.append(cells)
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        for r in [header, *body]:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        missing = list(dict.fromkeys(m for lim in lims for m in lim.missing))
        for m in missing:
            lines.append(f"  missing: {m}")
        assumed = list(dict.fromkeys(a for lim in lims for a in lim.assumptions))
        if assumed:
            lines.append(f"  assumption used: {', '.join(assumed)}")
        lines.append("")
    for na in report.not_applicable:
        lines.append(
            f"{na['policy']}: not applicable to this case ("
            + "; ".join(f"{k} applies when {v}" for k, v in na["applies_when"].items())
            + ")"
        )
    if report.row is not None and report.table is not None:
        lines.append(f"published: {report.table.ref} {report.table.locator}, row '{report.row.label}'")
    for note in report.notes:
        lines.append(f"note: {note}")
    lines.append("Steps behind every figure: --format json (limits[].steps).")
    return "\n".join(lines).rstrip() + "\n"
