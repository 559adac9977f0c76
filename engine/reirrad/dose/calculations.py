"""Named calculations that rules ask for: the value, the inputs used, the steps, or why it cannot be computed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from reirrad.case import Case, PriorCourse
from reirrad.dose import radiobiology as rb
from reirrad.knowledge.rulepack import Rule, RulePack
from reirrad.vocabulary import Kind, conus_position, highest_region, reaches_below_conus

__all__ = [
    "NO_PLANNED_DOSE",
    "READS_EARLIER_COURSES",
    "Computed",
    "assumptions_can_apply",
    "compute_item",
    "context_facts",
    "earlier_sum",
    "prior_point_dose",
]

NO_PLANNED_DOSE = "no planned dose yet"
"""Why every dose criterion is undecided before planning."""


def context_facts(
    case: Case, radioresistant: Callable[[str], list[Any]] | None = None, start: date | None = None
) -> dict[str, Any]:
    """The facts about a case that rule conditions read; ``radioresistant`` matches a histology to the lists.
    ``start`` is the planned start (needed when the case has no planned course yet)."""
    planned = case.planned_course
    facts: dict[str, Any] = {"prior_course_count": len(case.prior_courses)}
    if planned is not None:
        facts["planned_stereotactic"] = planned.is_stereotactic
        facts["planned_fractions"] = planned.fractions
    facts["conus_position"] = conus_position(list(case.lesion.levels))
    facts["reaches_below_conus"] = reaches_below_conus(list(case.lesion.levels))
    facts["highest_region"] = highest_region(list(case.lesion.levels))
    facts["prior_dosimetry_unavailable_count"] = sum(1 for c in case.prior_courses if c.dosimetry_lost)
    if planned is not None:
        facts["planned_dose_per_fraction"] = planned.prescription_gy / planned.fractions
    recent = case.most_recent_prior
    begins = planned.start if planned is not None else start
    if recent is not None:
        if begins is not None:
            facts["interval_months"] = rb.interval_months(recent.end, begins)  # type: ignore[arg-type]
        facts["most_recent_prior_stereotactic"] = recent.is_stereotactic
    patient, lesion = case.patient, case.lesion
    if patient is not None:
        _put(facts, "expected_survival_months", patient.expected_survival_months)
        _put(facts, "ecog", patient.ecog)
        if patient.histology is not None and radioresistant is not None:
            facts["radioresistant_histology"] = bool(radioresistant(patient.histology))
    if lesion.bilsky_grade is not None:
        facts["epidural_high_grade"] = lesion.bilsky_grade in ("2", "3")
    _put(facts, "cord_compression_symptoms", lesion.cord_compression_symptoms)
    _put(facts, "sins_total", lesion.sins_total)
    _put(facts, "pathologic_fracture", lesion.pathologic_fracture)
    if lesion.sins_components is not None:
        facts["lytic_lesion"] = lesion.sins_components.bone_lesion == 2
    return facts


def _put(facts: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        facts[name] = value


@dataclass
class Computed:
    """One evaluated quantity. ``value`` is None when it cannot be computed; ``missing`` then says why."""

    value: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    def copy(self) -> Computed:
        return Computed(
            self.value, dict(self.inputs), list(self.steps), list(self.missing), list(self.assumptions)
        )


def _g(x: float) -> str:
    return f"{x:.2f}"


def _course_label(i: int, course: PriorCourse) -> str:
    return (
        f"prior course {i + 1} ({course.start}–{course.end}, {course.technique}, "
        f"{course.prescription_gy:g} Gy / {course.fractions} fx)"
    )


def assumptions_can_apply(case: Case) -> bool:
    """Whether an assumption rule can give this case a dose: prior_point_dose reads them for an earlier course whose
    plan is lost, and for nothing else."""
    return any(course.dosimetry_lost for course in case.prior_courses)


def prior_point_dose(
    pack: RulePack, i: int, course: PriorCourse, structure: str, metric: str, out: Computed
) -> float | None:
    """The prior course's dose for this structure and metric (Gy), following the pack's conventions."""
    if course.dosimetry_lost:
        label = _course_label(i, course)
        specs = [(r, a) for r in pack.rules if r.kind == Kind.ASSUMPTION and (a := r.assumption) is not None]
        if not specs:
            out.missing.append(
                f"{label}: plan data unavailable and no missing-dosimetry assumption is in force"
            )
            return None
        by_technique = [(r, a) for r, a in specs if course.technique in a.course_techniques]
        covering = [r for r, a in by_technique if structure in a.structures]
        if not by_technique:
            techniques = dict.fromkeys(t for _, a in specs for t in a.course_techniques)
            out.missing.append(
                f"{label}: plan data unavailable; the assumption ({', '.join(r.id for r, _ in specs)}) covers only "
                f"{', '.join(techniques)} courses"
            )
            return None
        if not covering:
            structures = dict.fromkeys(s for _, a in by_technique for s in a.structures)
            out.missing.append(
                f"{label}: plan data unavailable; the assumption ({', '.join(r.id for r, _ in by_technique)}) gives "
                f"a dose only to {', '.join(structures)}, not {structure}"
            )
            return None
        rule = covering[0]
        if rule.id not in out.assumptions:
            out.assumptions.append(rule.id)
        out.steps.append(
            f"{label}: plan data unavailable, {structure} assumed to have received the prescription "
            f"{course.prescription_gy:g} Gy ({rule.id} v{rule.version})"
        )
        return course.prescription_gy
    dose = course.dose_gy(structure, metric)
    if dose is not None:
        return dose
    fallback = course.dose_gy(structure, "Dmax") if metric != "Dmax" else None
    if fallback is not None:
        out.steps.append(f"{_course_label(i, course)} gives no {structure} {metric}; its Dmax is used")
        return fallback
    out.missing.append(
        f"{_course_label(i, course)} gives no {structure} dose "
        "(nothing is assumed for a structure a course omits)"
    )
    return None


def _planned(case: Case, structure: str, metric: str, out: Computed) -> float | None:
    planned = case.planned_course
    if planned is None or not planned.has_dose:
        out.missing.append(NO_PLANNED_DOSE)
        return None
    dose = planned.dose_gy(structure, metric)
    if dose is None:
        out.missing.append(f"the planned course gives no {structure} {metric}")
    return dose


def _months(rule: Rule) -> Callable[[date, date], float]:
    convention = rule.quantity.months if rule.quantity is not None else None
    return rb.MONTH_CONVENTIONS[convention or "days/30.4375"]


def _cumulative(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date, *, kind: str
) -> Computed:
    q = rule.quantity
    assert q is not None
    ab, repair = q.alpha_beta, q.repair
    assert ab is not None
    conventions = (q.months, q.repair_courses)
    key = (id(case), id(pack), kind, ab, repair, conventions, structure, metric, start)
    cached = _MEMO.get(key)
    if cached is not None and cached[0] is case:
        return cached[1].copy()
    out = _cumulative_uncached(case, pack, rule, structure, metric, start, kind=kind)
    if len(_MEMO) > 64:
        _MEMO.clear()
    _MEMO[key] = (case, out)
    return out.copy()


_MEMO: dict[tuple[Any, ...], tuple[Case, Computed]] = {}
"""Cumulative sums shared by several rules of one case (e.g. hytec.cumulative and hytec.ratio)."""


def earlier_sum(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date, out: Computed
) -> float | None:
    """Σ of the earlier courses' effective dose for a cumulative rule (EQD2 or BED at its α/β, each course repaired
    by its own interval where the rule's repair schedule credits it), with the inputs and steps in ``out``; None
    when a course's dose cannot be established (``out.missing`` says why)."""
    q = rule.quantity
    assert q is not None
    ab = q.alpha_beta
    assert ab is not None
    kind = "bed" if q.calculation == "cumulative_bed" else "eqd2"
    convert = rb.bed if kind == "bed" else rb.eqd2
    name = "BED" if kind == "bed" else "EQD2"
    schedule = pack.repairs[q.repair].schedule if q.repair else None
    months_of = _months(rule)
    first_only = q.repair_courses == "first"
    first = min(case.prior_courses, key=lambda c: c.end, default=None) if first_only else None
    key = f"{kind}_gy"
    total = 0.0
    complete = True
    for i, course in enumerate(case.prior_courses):
        dose = prior_point_dose(pack, i, course, structure, metric, out)
        if dose is None:
            complete = False
            continue
        n = course.fractions
        converted = convert(dose, n, ab)
        months = months_of(course.end, start)  # type: ignore[arg-type]
        credited = not first_only or course is first
        repaired = schedule.fraction_at(months) if schedule and credited else 0.0
        effective = (1.0 - repaired) * converted
        out.inputs[f"prior_{i + 1}"] = {
            "dose_gy": dose,
            "fractions": n,
            key: round(converted, 4),
            "interval_months": round(months, 3),
            "repaired_fraction": repaired,
            "effective_gy": round(effective, 4),
        }
        text = (
            f"prior course {i + 1}: {structure} {dose:g} Gy in {n} fx → {name}(α/β {ab:g}) {converted:.2f} Gy"
        )
        if schedule is not None and credited:
            text += (
                f"; {months:.1f} months before the planned start, {repaired:.0%} repaired "
                f"({schedule.name}) → {effective:.2f} Gy"
            )
        elif schedule is not None:
            text += f"; not repaired (the repair of {schedule.name} is credited to the first course only)"
        out.steps.append(text)
        total += effective
    return total if complete else None


def _cumulative_uncached(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date, *, kind: str
) -> Computed:
    out = Computed()
    q = rule.quantity
    assert q is not None
    ab = q.alpha_beta
    assert ab is not None
    convert = rb.eqd2 if kind == "eqd2" else rb.bed
    name = "EQD2" if kind == "eqd2" else "BED"
    planned = case.planned_course
    total = earlier_sum(case, pack, rule, structure, metric, start, out)
    dose_new = _planned(case, structure, metric, out)
    if dose_new is None or total is None or planned is None:
        return out
    n = planned.fractions
    new = convert(dose_new, n, ab)
    out.inputs["planned"] = {"dose_gy": dose_new, "fractions": n, f"{kind}_gy": round(new, 4)}
    out.steps.append(
        f"planned course: {structure} {metric} {dose_new:g} Gy in {n} fx → {name}(α/β {ab:g}) {new:.2f} Gy"
    )
    out.value = total + new
    out.steps.append(f"cumulative {name} = {out.value:.2f} Gy")
    return out


def _interval(case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date) -> Computed:
    out = Computed()
    recent = case.most_recent_prior
    if recent is None:
        out.missing.append("there is no prior course")
        return out
    days = (start - recent.end).days  # type: ignore[operator]
    convention = rule.quantity.months if rule.quantity is not None else None
    out.value = _months(rule)(recent.end, start)  # type: ignore[arg-type]
    out.inputs = {"prior_end": str(recent.end), "planned_start": str(start), "days": days}
    counted = "calendar months" if convention == "calendar" else f"days / {rb.DAYS_PER_MONTH}"
    assumed = (
        "" if case.planned_course is not None else ", the date of this evaluation: no planned course yet"
    )
    out.steps.append(
        f"{days} days from the end of the most recent prior course ({recent.end}) to the planned "
        f"start ({start}{assumed}) = {out.value:.2f} months ({counted})"
    )
    return out


def _planned_dose(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date
) -> Computed:
    out = Computed()
    dose = _planned(case, structure, metric, out)
    if dose is not None and case.planned_course is not None:
        n = case.planned_course.fractions
        out.value = dose
        out.inputs = {"dose_gy": dose, "fractions": n}
        out.steps.append(f"planned course: {structure} {metric} {dose:g} Gy in {n} fx")
    return out


def _planned_eqd2(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date
) -> Computed:
    out = Computed()
    assert rule.quantity is not None
    assert rule.quantity.alpha_beta is not None
    ab = rule.quantity.alpha_beta
    dose = _planned(case, structure, metric, out)
    if dose is not None and case.planned_course is not None:
        n = case.planned_course.fractions
        out.value = rb.eqd2(dose, n, ab)
        out.inputs = {"dose_gy": dose, "fractions": n, "alpha_beta": ab}
        out.steps.append(
            f"planned course: {structure} {metric} {dose:g} Gy in {n} fx ({dose / n:.3g} Gy per "
            f"fraction) → EQD2(α/β {ab:g}) {_g(out.value)} Gy"
        )
    return out


def _max_course_bed(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date
) -> Computed:
    """The largest BED that any one course (each earlier course and the planned one) gives the structure."""
    out = Computed()
    assert rule.quantity is not None
    assert rule.quantity.alpha_beta is not None
    ab = rule.quantity.alpha_beta
    beds: list[float] = []
    for i, course in enumerate(case.prior_courses):
        dose = prior_point_dose(pack, i, course, structure, metric, out)
        if dose is None:
            continue
        bed = rb.bed(dose, course.fractions, ab)
        beds.append(bed)
        out.inputs[f"prior_{i + 1}"] = {
            "dose_gy": dose,
            "fractions": course.fractions,
            "bed_gy": round(bed, 4),
        }
        out.steps.append(
            f"prior course {i + 1}: {structure} {dose:g} Gy in {course.fractions} fx → BED(α/β {ab:g}) "
            f"{_g(bed)} Gy"
        )
    dose_new = _planned(case, structure, metric, out)
    if dose_new is None or out.missing or case.planned_course is None:
        return out
    n = case.planned_course.fractions
    new = rb.bed(dose_new, n, ab)
    beds.append(new)
    out.inputs["planned"] = {"dose_gy": dose_new, "fractions": n, "bed_gy": round(new, 4)}
    out.steps.append(
        f"planned course: {structure} {metric} {dose_new:g} Gy in {n} fx → BED(α/β {ab:g}) {_g(new)} Gy"
    )
    out.value = max(beds)
    out.steps.append(f"largest single-course BED = {out.value:.2f} Gy (no repair: each course on its own)")
    return out


def _ratio(case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date) -> Computed:
    out = _cumulative(case, pack, rule, structure, metric, start, kind="eqd2")
    if out.value is None or case.planned_course is None:
        return out
    new = out.inputs["planned"]["eqd2_gy"]
    cumulative = out.value
    if cumulative <= 0:
        out.value = None
        out.missing.append("the cumulative dose is 0 Gy, the ratio is undefined")
        return out
    assert rule.quantity is not None
    assert rule.quantity.alpha_beta is not None
    out.value = (
        rb.eqd2(out.inputs["planned"]["dose_gy"], case.planned_course.fractions, rule.quantity.alpha_beta)
        / cumulative
    )
    out.steps.append(f"ratio = planned {_g(new)} Gy / cumulative {_g(cumulative)} Gy = {out.value:.3f}")
    return out


def _ptv_high_dmin(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date
) -> Computed:
    out = Computed()
    planned = case.planned_course
    if planned is None:
        out.missing.append(NO_PLANNED_DOSE)
        return out
    if planned.ptv_high_dmin is None:
        out.missing.append("the planned course gives no ptv_high_dmin")
        return out
    out.value = float(planned.ptv_high_dmin) * planned.scale
    out.inputs = {"ptv_high_dmin_gy": out.value, "fractions": planned.fractions}
    out.steps.append(f"planned PTV_High minimum dose {out.value:g} Gy in {planned.fractions} fx")
    return out


_CALCULATIONS: dict[str, Callable[[Case, RulePack, Rule, str, str, date], Computed]] = {
    "interval_months": _interval,
    "planned_dose": _planned_dose,
    "planned_eqd2": _planned_eqd2,
    "cumulative_eqd2": lambda c, p, r, s, m, d: _cumulative(c, p, r, s, m, d, kind="eqd2"),
    "cumulative_bed": lambda c, p, r, s, m, d: _cumulative(c, p, r, s, m, d, kind="bed"),
    "eqd2_ratio": _ratio,
    "max_course_bed": _max_course_bed,
    "ptv_high_dmin": _ptv_high_dmin,
}


READS_EARLIER_COURSES = frozenset({"cumulative_eqd2", "cumulative_bed", "eqd2_ratio", "max_course_bed"})
"""The calculations that read the earlier courses' doses (prior_point_dose), so an assumption about a lost plan
can change their value."""


def compute_item(
    case: Case, pack: RulePack, rule: Rule, structure: str, metric: str, start: date | None = None
) -> Computed:
    """Compute the rule's quantity for one (structure, metric) item; case-level rules pass empty strings.
    ``start`` is the planned start; it defaults to the planned course's and is needed when there is none."""
    if rule.quantity is None:
        return Computed()
    begins = case.planned_course.start if case.planned_course is not None else start
    if begins is None:
        raise ValueError("compute_item needs the planned start of a case with no planned course")
    if rule.scope.per == "near_max_dose" and not structure:
        out = Computed()
        if not case.has_planned_dose:
            out.missing.append(NO_PLANNED_DOSE)
        else:
            out.missing.append(
                f"the planned course gives none of {', '.join(rule.scope.structures)} with "
                f"{' or '.join(rule.scope.metrics)}"
            )
        return out
    return _CALCULATIONS[rule.quantity.calculation](case, pack, rule, structure, metric, begins)  # type: ignore[arg-type]
