"""The evaluation result as plain data (schemas/result.schema.json): every line traceable to its rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reirrad.dose.calculations import NO_PLANNED_DOSE
from reirrad.dose.radiobiology import DAYS_PER_MONTH, interval_months
from reirrad.explain.assessment import build_assessment
from reirrad.explain.why import AWAITING_PLAN, Explainer
from reirrad.knowledge.readings import Reading
from reirrad.knowledge.rulepack import Rule
from reirrad.plan import Evaluation, Item, evidence_of
from reirrad.vocabulary import METRICS, Kind, Op, Status

__all__ = ["RESULT_SCHEMA_ID", "audit_record", "build_result", "for_metrics"]

RESULT_SCHEMA_ID = "reirrad/result/v1"
_STATUS_WORD = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.INDETERMINATE: "INDETERMINATE",
    Status.NOT_APPLICABLE: "NOT APPLICABLE",
    Status.APPLIED: "APPLIED",
}


def _fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.3f}"
    if unit == "months":
        return f"{value:.2f} months"
    return f"{value:.2f} {unit}"


def _explanation(item: Item, limit_value: float | None, why_not: list[str], cite: str) -> str:
    rule, status = item.rule, item.status
    q = rule.quantity
    c = item.computed
    head = _STATUS_WORD[status]
    if status in ("pass", "fail") and q is not None and rule.limit is not None and c.value is not None:
        body = (
            f"{_fmt(c.value, q.unit)} {'meets' if status == 'pass' else 'does not meet'} "
            f"{Op.from_symbol(rule.limit.operator).sign} {_fmt(limit_value, q.unit) if limit_value is not None else '?'}"
        )
    elif status == "indeterminate":
        reasons = c.missing or why_not or ["the limit is not defined for this case"]
        if c.value is not None and limit_value is None and rule.limit is not None:
            reasons = [
                f"no published limit for {rule.limit.by} = this case's value "
                f"(value {_fmt(c.value, q.unit if q else '')})"
            ]
        body = "cannot be decided: " + "; ".join(reasons)
    elif status == "not_applicable":
        body = "does not apply: " + "; ".join(why_not)
    else:
        body = rule.title
    steps = (" Steps: " + "; ".join(c.steps) + ".") if c.steps and status != "not_applicable" else ""
    return f"{head} — {body}.{steps} Source: {cite}."


def _why_not(
    why: Explainer,
    rule: Rule,
    status: Status,
    ctx: Mapping[str, Any],
    memo: dict[tuple[str, bool], list[str]],
    awaiting_plan: bool = False,
) -> list[str]:
    """The applicability leaves behind a status: the false ones when not applicable, else the unknown ones.

    ``memo`` holds them for one case, where every item of a rule shares them."""
    key = (rule.id, status == Status.NOT_APPLICABLE)
    found = memo.get(key)
    if found is None:
        applies = why.applies(rule.id, ctx, awaiting_plan)
        found = memo[key] = (
            [text for text, truth in applies if truth is False]
            if key[1]
            else [text for text, truth in applies if truth is None]
        )
    return found


def _constraint_entry(
    evaluation: Evaluation,
    why: Explainer,
    item: Item,
    memo: dict[tuple[str, bool], list[str]],
    awaiting_plan: bool,
) -> dict[str, Any]:
    rule, status, ctx = item.rule, item.status, evaluation.facts
    q = rule.quantity
    limit = rule.limit
    assert q is not None
    assert limit is not None
    computed = item.computed
    plan = evaluation.run.plans[rule.id]
    limit_value, limit_note = plan.limit_for(ctx)
    why_not = _why_not(why, rule, status, ctx, memo, awaiting_plan)
    entry: dict[str, Any] = {
        **_constraint_core(item, limit_value),
        "evidence": plan.evidence,
        "citations": plan.citations,
        "explanation": _explanation(item, limit_value, why_not, plan.cite_text),
        "calculation": {"name": q.calculation, **q.parameters},
        "inputs": computed.inputs,
        "steps": computed.steps,
        "missing": computed.missing if status == Status.INDETERMINATE else [],
        "assumptions": computed.assumptions,
    }
    if limit_note:
        entry["limit_note"] = limit_note
    margin = _margin(computed.value, limit_value, limit.operator)
    if margin is not None:
        entry["margin"] = {**margin, "unit": q.unit}
    entry["sensitivity"] = _sensitivity(evaluation, item)
    entry["fragile"] = bool(entry["sensitivity"])
    return entry


def _constraint_core(item: Item, limit_value: float | None) -> dict[str, Any]:
    """The fields of a constraint line that the audit stores: the same in the full result and in the record."""
    rule = item.rule
    assert rule.quantity is not None
    assert rule.limit is not None
    value = item.computed.value
    return {
        "policy": rule.policy,
        "criterion": rule.criterion,
        "rule_id": rule.id,
        "rule_version": rule.version,
        "structure": item.structure or None,
        "metric": item.metric or None,
        "value": None if value is None else round(value, 6),
        "limit": limit_value,
        "operator": rule.limit.operator,
        "unit": rule.quantity.unit,
        "status": item.status.value,
    }


def _policy_counts(constraints: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Each policy's count of constraint lines by status, in the order the policies first appear."""
    policies: dict[str, dict[str, int]] = {}
    for entry in constraints:
        counts = policies.setdefault(entry["policy"], {str(s): 0 for s in Kind.CONSTRAINT.statuses})
        counts[entry["status"]] += 1
    return policies


def _recommendation_order(entry: dict[str, Any]) -> tuple[int, str]:
    return (_REC_ORDER[Status(entry["status"])], entry["rule_id"])


def audit_record(evaluation: Evaluation) -> dict[str, Any]:
    """What the department audit stores of one evaluation (reirrad.audit.rows): the date, the interval, each policy's
    verdict, each constraint line's status, value and limit (with whether an assumption or a reading touches it), and
    each recommendation's status; the same values as ``build_result`` gives (built by the same functions, and a
    test compares the two on generated cases), without the explanations, evidence and citations, which the audit
    re-derives on demand (``reirrad explain``)."""
    constraints: list[dict[str, Any]] = []
    recommendations: list[dict[str, Any]] = []
    ctx = evaluation.facts
    for item in evaluation.items:
        rule = item.rule
        if rule.kind == Kind.RECOMMENDATION:
            flips = evaluation.sensitivity.get((rule.id, item.key), ())
            recommendations.append(
                {
                    "rule_id": rule.id,
                    "rule_version": rule.version,
                    "status": item.status.value,
                    "fragile": bool(flips),
                }
            )
        elif rule.kind == Kind.CONSTRAINT:
            limit_value, _ = evaluation.run.plans[rule.id].limit_for(ctx)
            entry = _constraint_core(item, limit_value)
            entry["assumptions"] = item.computed.assumptions
            entry["fragile"] = bool(evaluation.sensitivity.get((rule.id, item.key), ()))
            constraints.append(entry)
    interval = ctx.get("interval_months")
    return {
        "case_id": evaluation.case.case_id,
        "rule_pack": {"as_of": evaluation.as_of.isoformat()},
        "interval_months": None if interval is None else round(interval, 4),
        "constraints": constraints,
        "recommendations": sorted(recommendations, key=_recommendation_order),
        "policy_summary": [
            {"policy": p, **c, "verdict": _policy_verdict(c)} for p, c in _policy_counts(constraints).items()
        ],
    }


def _margin(value: float | None, limit: float | None, operator: str) -> dict[str, float] | None:
    """How far the value lies on the passing side of the limit (negative: on the failing side), and in % of it."""
    if value is None or limit is None:
        return None
    room = limit - value if operator in ("<", "<=") else value - limit
    out = {"value": round(room, 4)}
    if limit:
        out["percent"] = round(100.0 * room / abs(limit), 2)
    return out


_STATUS_VERB = {
    Status.PASS: "passes",
    Status.FAIL: "fails",
    Status.INDETERMINATE: "cannot be decided",
    Status.NOT_APPLICABLE: "does not apply",
    Status.APPLIED: "is applied",
    Status.MADE: "is made",
    Status.NOT_MADE: "is not made",
}


def _sensitivity(evaluation: Evaluation, item: Item) -> list[dict[str, Any]]:
    """The readings the sources allow under which this verdict would change, each in one sentence."""
    out: list[dict[str, Any]] = []
    if not evaluation.sensitivity:
        return out
    for flip in evaluation.sensitivity.get((item.rule.id, item.key), ()):
        numbers = ""
        if flip.value is not None and flip.limit is not None and flip.operator is not None:
            numbers = f" ({flip.value:g} against {Op.from_symbol(flip.operator).sign} {flip.limit:g})"
        out.append(
            {
                "reading": flip.reading.id,
                "title": flip.reading.title,
                "status": flip.status.value,
                "value": flip.value,
                "limit": flip.limit,
                "operator": flip.operator,
                "text": f"{_STATUS_VERB[flip.status]} under {flip.reading.title}{numbers}",
            }
        )
    return out


_REC_ORDER = {Status.MADE: 0, Status.INDETERMINATE: 1, Status.NOT_MADE: 2}
_REC_WORD = {Status.MADE: "MADE", Status.NOT_MADE: "NOT MADE", Status.INDETERMINATE: "UNDECIDED"}
_REC_HOLDS = {Status.MADE: True, Status.NOT_MADE: False, Status.INDETERMINATE: None}


def _recommendation_entry(
    evaluation: Evaluation, why: Explainer, item: Item, awaiting_plan: bool
) -> dict[str, Any]:
    """A recommendation with the facts that made or blocked it: positives, negatives and unknowns."""
    rule, status = item.rule, item.status
    plan = evaluation.run.plans[rule.id]
    leaves = why.condition(rule.id, evaluation.facts, evaluation.outcomes, awaiting_plan)
    because = [{"text": text, "holds": holds} for text, holds in dict.fromkeys(leaves)]
    assert plan.recommendation is not None
    word = _REC_WORD[status]
    relevant = [text for text, holds in leaves if holds is _REC_HOLDS[status]]
    return {
        "rule_id": rule.id,
        "rule_version": rule.version,
        "guideline": rule.guideline,
        "title": rule.title,
        "status": status.value,
        **plan.recommendation,
        "evidence": plan.evidence,
        "citations": plan.citations,
        "supported_by": list(rule.supported_by),
        "because": because,
        "explanation": f"{word} — {'; '.join(relevant) or rule.title}. Source: {plan.cite_text}.",
        "sensitivity": (flips := _sensitivity(evaluation, item)),
        "fragile": bool(flips),
    }


def build_result(evaluation: Evaluation, why: Explainer) -> dict[str, Any]:
    """The result document (schemas/result.schema.json) of one evaluation: the one place it is built."""
    run, case, ctx = evaluation.run, evaluation.case, evaluation.facts
    constraints: list[dict[str, Any]] = []
    advisories: list[dict[str, Any]] = []
    assumptions: list[dict[str, Any]] = []
    recommendations: list[dict[str, Any]] = []
    memo: dict[tuple[str, bool], list[str]] = {}
    awaiting_plan = not case.has_planned_dose
    for item in evaluation.items:
        rule = item.rule
        if rule.kind == Kind.RECOMMENDATION:
            recommendations.append(_recommendation_entry(evaluation, why, item, awaiting_plan))
        elif rule.kind == Kind.ASSUMPTION:
            assumptions.append(_assumption_entry(evaluation, item))
        else:
            entry = _constraint_entry(evaluation, why, item, memo, awaiting_plan)
            (advisories if rule.kind == Kind.ADVISORY else constraints).append(entry)
    missing = sorted(
        {reason for entry in constraints + advisories for reason in entry["missing"]}
        | {
            b["text"]
            for r in recommendations
            if r["status"] == Status.INDETERMINATE
            for b in r["because"]
            if b["holds"] is None and not b["text"].endswith(AWAITING_PLAN)
        }
    )
    assessment: list[dict[str, Any]] = []
    knowledge = run.knowledge
    if knowledge.assessment is not None:
        assessment, not_provided = build_assessment(knowledge.assessment, case, ctx, knowledge.radioresistant)
        missing = missing + sorted(not_provided)
    policies = _policy_counts(constraints)
    interval = ctx.get("interval_months")
    return {
        "schema": RESULT_SCHEMA_ID,
        "case_id": case.case_id,
        "tool": {"name": "reirrad", "version": run.tool_version},
        "rule_pack": {
            "name": run.pack.name,
            "version": run.pack.version,
            "sha256": run.compiled_sha256,
            "content_sha256": run.pack.content_sha256,
            "as_of": evaluation.as_of.isoformat(),
        },
        "engine": {"name": run.engine_name, "version": run.engine_version},
        "interval_months": None if interval is None else round(interval, 4),
        "context": dict(ctx),
        "constraints": constraints,
        "advisories": advisories,
        "assumptions": assumptions,
        "recommendations": sorted(recommendations, key=_recommendation_order),
        "policy_summary": [
            {"policy": p, **c, "verdict": _policy_verdict(c), "by_metric": _by_metric(constraints, p)}
            for p, c in policies.items()
        ],
        "disagreements": _disagreements(constraints),
        "assessment": assessment,
        "missing_data": missing,
        **_before_planning(evaluation),
        "warnings": _near_boundaries(evaluation),
        **({"reading": _reading_entry(evaluation.reading)} if evaluation.reading is not None else {}),
    }


NEAR_DAYS = 7
"""An interval within this many days of a repair step or of an interval gate is flagged: dates in a record are
often a few days off. An engineering choice, not a clinical threshold from a source."""


def _near_boundaries(evaluation: Evaluation) -> list[str]:
    """Intervals that lie within a few days of a repair step or of an interval gate: a small date error flips them."""
    case, run = evaluation.case, evaluation.run
    start = case.planned_start(evaluation.as_of)
    out: list[str] = []
    for item in evaluation.items:
        rule = item.rule
        if (
            rule.quantity is None
            or rule.quantity.calculation != "interval_months"
            or item.computed.value is None
        ):
            continue
        limit, _ = run.plans[rule.id].limit_for(evaluation.facts)
        if limit is not None and abs(item.computed.value - limit) * DAYS_PER_MONTH <= NEAR_DAYS:
            days = round((item.computed.value - limit) * DAYS_PER_MONTH)
            out.append(
                f"the interval ({item.computed.value:.2f} months) is {abs(days)} day(s) "
                f"{'past' if days >= 0 else 'short of'} the {limit:g}-month gate of {rule.id}"
            )
    used = {r.quantity.repair for r in run.pack.rules if r.quantity is not None and r.quantity.repair}
    for name in sorted(used):
        repair = run.pack.repairs[name]
        for i, course in enumerate(case.prior_courses):
            months = interval_months(course.end, start)  # type: ignore[arg-type]
            for step in repair.steps:
                days = round((months - step.after_months) * DAYS_PER_MONTH)
                if abs(months - step.after_months) * DAYS_PER_MONTH <= NEAR_DAYS:
                    out.append(
                        f"prior course {i + 1} ended {months:.2f} months before the planned start, {abs(days)} "
                        f"day(s) {'after' if days >= 0 else 'before'} the {step.after_months:g}-month step of "
                        f"{repair.id} ({step.fraction:.0%} repaired from then on)"
                    )
    return out


def _reading_entry(reading: Reading) -> dict[str, Any]:
    return {
        "id": reading.id,
        "title": reading.title,
        "statement": reading.statement,
        "source_words": reading.source_words,
        "touches": [
            {
                reading.touches[0].kind: t.target,
                "field": t.field,
                "default": t.default,
                "alternative": t.alternative,
            }
            for t in reading.touches
        ],
    }


def _before_planning(evaluation: Evaluation) -> dict[str, Any]:
    """Without a planned dose: the planned start used, and what each policy leaves for a new course."""
    report = evaluation.before_planning
    if report is None:
        return {}
    limits = report.as_dict()
    for key in ("command", "case_id", "as_of", "pack"):
        limits.pop(key, None)
    return {
        "before_planning": {
            "reason": NO_PLANNED_DOSE,
            "planned_start": limits.pop("planned_start"),
            "planned_start_assumed": limits.pop("planned_start_assumed"),
            "limits": limits,
        }
    }


def _assumption_entry(evaluation: Evaluation, item: Item) -> dict[str, Any]:
    rule = item.rule
    plan = evaluation.run.plans[rule.id]
    used_by = sorted(
        {
            f"{i.rule.id} {i.structure}/{i.metric}"
            for i in evaluation.items
            if rule.id in i.computed.assumptions
        }
    )
    return {
        "rule_id": rule.id,
        "rule_version": rule.version,
        "status": item.status.value,
        "statement": " ".join(rule.statement.split()),
        "used_by": used_by,
        "evidence": evidence_of(rule),
        "citations": plan.citations,
    }


def _policy_verdict(counts: dict[str, int]) -> str:
    if counts["fail"]:
        return "fail"
    if counts["indeterminate"]:
        return "indeterminate"
    if counts["pass"]:
        return "pass"
    return "not_applicable"


def _by_metric(constraints: list[dict[str, Any]], policy: str) -> dict[str, str]:
    """The policy's verdict on each metric: that metric's lines and the case-level ones (the interval)."""
    lines = [e for e in constraints if e["policy"] == policy]
    metrics = sorted({e["metric"] for e in lines if e["metric"]}, key=_METRIC_ORDER.index)
    out = {}
    for metric in metrics:
        counts = {str(s): 0 for s in Kind.CONSTRAINT.statuses}
        for e in lines:
            if e["metric"] in (metric, None):
                counts[e["status"]] += 1
        out[metric] = _policy_verdict(counts)
    return out


_METRIC_ORDER = list(METRICS)


def _disagreements(constraints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where policies reach opposite verdicts on one structure and metric, why, from the computation itself."""
    by_item: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for e in constraints:
        if e["structure"] and e["status"] in ("pass", "fail"):
            by_item.setdefault((e["structure"], e["metric"]), {}).setdefault(e["policy"], []).append(e)
    out = []
    for (structure, metric), policies in by_item.items():
        verdicts = {
            p: ("fail" if any(e["status"] == "fail" for e in lines) else "pass")
            for p, lines in policies.items()
        }
        if len(set(verdicts.values())) < 2:
            continue
        failing = sorted(p for p, v in verdicts.items() if v == "fail")
        passing = sorted(p for p, v in verdicts.items() if v == "pass")
        reasons = [_why_policy(p, policies[p], verdicts[p]) for p in failing + passing]
        text = (
            f"On {structure} {metric}, {' and '.join(failing)} {'fails' if len(failing) == 1 else 'fail'} "
            f"while {' and '.join(passing)} {'passes' if len(passing) == 1 else 'pass'}: "
            + "; ".join(reasons)
            + "."
        )
        out.append({"structure": structure, "metric": metric, "fail": failing, "pass": passing, "text": text})
    return out


def _why_policy(policy: str, lines: list[dict[str, Any]], verdict: str) -> str:
    """What sets this policy apart on this item: a cap on the new course alone, its repair credit, its α/β."""
    parts = []
    for e in lines:
        calc = e["calculation"]
        if calc["name"] == "planned_eqd2" and e["status"] == "fail":
            parts.append(
                f"{policy} caps the new course alone at {_OPS[e['operator']]} {e['limit']:g} {e['unit']} "
                f"({e['value']:.2f} here)"
            )
    cumulative = next(
        (e for e in lines if e["calculation"]["name"] in ("cumulative_eqd2", "cumulative_bed")), None
    )
    if cumulative is not None:
        calc = cumulative["calculation"]
        credits = [
            f"{v['repaired_fraction']:.0%} of prior course {k.removeprefix('prior_')} at {v['interval_months']:.1f} months"
            for k, v in cumulative["inputs"].items()
            if k.startswith("prior_") and v.get("repaired_fraction")
        ]
        repair = f"forgives {', '.join(credits)}" if credits else "forgives nothing of the earlier course"
        parts.append(
            f"{policy} {repair} and counts at α/β {calc.get('alpha_beta', 0):g} Gy against "
            f"{_OPS[cumulative['operator']]} {cumulative['limit']:g} {cumulative['unit']} "
            f"({cumulative['value']:.2f} here, {cumulative['status']})"
        )
    return "; ".join(parts) or f"{policy} {verdict}s"


_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


def for_metrics(result: dict[str, Any], metrics: list[str]) -> dict[str, Any]:
    """The result restricted to these metrics (``evaluate --metric``): lines on other metrics left out, case-level
    lines kept, each policy's verdict recomputed from what is left."""
    keep = set(metrics)
    out = dict(result)
    for key in ("constraints", "advisories"):
        out[key] = [e for e in result[key] if e["metric"] is None or e["metric"] in keep]
    summary = []
    for entry in result["policy_summary"]:
        counts = {str(s): 0 for s in Kind.CONSTRAINT.statuses}
        for e in out["constraints"]:
            if e["policy"] == entry["policy"]:
                counts[e["status"]] += 1
        by_metric = {m: v for m, v in entry.get("by_metric", {}).items() if m in keep}
        summary.append({**entry, **counts, "verdict": _policy_verdict(counts), "by_metric": by_metric})
    out["policy_summary"] = summary
    out["disagreements"] = [d for d in result.get("disagreements", []) if d["metric"] in keep]
    out["metrics"] = sorted(keep, key=_METRIC_ORDER.index)
    return out
