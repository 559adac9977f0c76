"""The evaluation result as plain data (schemas/result.schema.json): every line traceable to its rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reirrad.dose.calculations import NO_PLANNED_DOSE
from reirrad.explain.assessment import build_assessment
from reirrad.explain.why import AWAITING_PLAN, Explainer
from reirrad.knowledge.rulepack import Rule
from reirrad.plan import Evaluation, Item, evidence_of
from reirrad.vocabulary import Kind, Op, Status

__all__ = ["RESULT_SCHEMA_ID", "build_result"]

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
    evaluation: Evaluation, why: Explainer, item: Item, memo: dict[tuple[str, bool], list[str]]
) -> dict[str, Any]:
    rule, status, ctx = item.rule, item.status, evaluation.facts
    q = rule.quantity
    limit = rule.limit
    assert q is not None
    assert limit is not None
    computed = item.computed
    plan = evaluation.run.plans[rule.id]
    limit_value, limit_note = plan.limit_for(ctx)
    why_not = _why_not(why, rule, status, ctx, memo, not evaluation.case.has_planned_dose)
    entry: dict[str, Any] = {
        "policy": rule.policy,
        "criterion": rule.criterion,
        "rule_id": rule.id,
        "rule_version": rule.version,
        "structure": item.structure or None,
        "metric": item.metric or None,
        "value": None if computed.value is None else round(computed.value, 6),
        "limit": limit_value,
        "operator": limit.operator,
        "unit": q.unit,
        "status": status.value,
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
    return entry


_REC_ORDER = {Status.MADE: 0, Status.INDETERMINATE: 1, Status.NOT_MADE: 2}
_REC_WORD = {Status.MADE: "MADE", Status.NOT_MADE: "NOT MADE", Status.INDETERMINATE: "UNDECIDED"}
_REC_HOLDS = {Status.MADE: True, Status.NOT_MADE: False, Status.INDETERMINATE: None}


def _recommendation_entry(evaluation: Evaluation, why: Explainer, item: Item) -> dict[str, Any]:
    """A recommendation with the facts that made or blocked it: positives, negatives and unknowns."""
    rule, status = item.rule, item.status
    plan = evaluation.run.plans[rule.id]
    leaves = why.condition(
        rule.id, evaluation.facts, evaluation.outcomes, not evaluation.case.has_planned_dose
    )
    because = [{"text": text, "holds": holds} for text, holds in dict.fromkeys(leaves)]
    assert rule.action is not None
    word = _REC_WORD[status]
    relevant = [text for text, holds in leaves if holds is _REC_HOLDS[status]]
    return {
        "rule_id": rule.id,
        "rule_version": rule.version,
        "guideline": rule.guideline,
        "title": rule.title,
        "status": status.value,
        "statement": " ".join(rule.statement.split()),
        "direction": rule.direction,
        "strength": rule.strength,
        "action": rule.action.model_dump(exclude_none=True),
        "multidisciplinary": bool(rule.multidisciplinary),
        "evidence": plan.evidence,
        "citations": plan.citations,
        "supported_by": list(rule.supported_by),
        "because": because,
        "explanation": f"{word} — {'; '.join(relevant) or rule.title}. Source: {plan.cite_text}.",
    }


def build_result(evaluation: Evaluation, why: Explainer) -> dict[str, Any]:
    """The result document (schemas/result.schema.json) of one evaluation: the one place it is built."""
    run, case, ctx = evaluation.run, evaluation.case, evaluation.facts
    constraints: list[dict[str, Any]] = []
    advisories: list[dict[str, Any]] = []
    assumptions: list[dict[str, Any]] = []
    recommendations: list[dict[str, Any]] = []
    memo: dict[tuple[str, bool], list[str]] = {}
    for item in evaluation.items:
        rule = item.rule
        if rule.kind == Kind.RECOMMENDATION:
            recommendations.append(_recommendation_entry(evaluation, why, item))
        elif rule.kind == Kind.ASSUMPTION:
            assumptions.append(_assumption_entry(evaluation, item))
        else:
            entry = _constraint_entry(evaluation, why, item, memo)
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
    policies: dict[str, dict[str, int]] = {}
    for entry in constraints:
        counts = policies.setdefault(entry["policy"], {str(s): 0 for s in Kind.CONSTRAINT.statuses})
        counts[entry["status"]] += 1
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
        "recommendations": sorted(recommendations, key=lambda r: (_REC_ORDER[r["status"]], r["rule_id"])),
        "policy_summary": [{"policy": p, **c, "verdict": _policy_verdict(c)} for p, c in policies.items()],
        "assessment": assessment,
        "missing_data": missing,
        **_before_planning(evaluation),
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
