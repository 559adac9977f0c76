"""The evaluation result as plain data (schemas/result.schema.json): every line traceable to its rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reirrad.case import Case
from reirrad.explain.assessment import build_assessment
from reirrad.knowledge.rulepack import Rule, RulePack
from reirrad.logic.compiler import item_key

if TYPE_CHECKING:
    from reirrad.evaluate import Evaluator, _Item

__all__ = ["RESULT_SCHEMA_ID", "build_result", "citations_of", "evidence_of"]

RESULT_SCHEMA_ID = "reirrad/result/v1"
_OP_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_STATUS_WORD = {
    "pass": "PASS",
    "fail": "FAIL",
    "indeterminate": "INDETERMINATE",
    "not_applicable": "NOT APPLICABLE",
    "applied": "APPLIED",
}


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
        out.append(entry)
    return out


def _fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.3f}"
    if unit == "months":
        return f"{value:.2f} months"
    return f"{value:.2f} {unit}"


def _explanation(item: _Item, status: str, limit_value: float | None, why_not: list[str], cite: str) -> str:
    rule = item.rule
    q = rule.quantity
    c = item.computed
    head = _STATUS_WORD[status]
    if status in ("pass", "fail") and q is not None and rule.limit is not None and c.value is not None:
        body = (
            f"{_fmt(c.value, q.unit)} {'meets' if status == 'pass' else 'does not meet'} "
            f"{_OP_TEXT[rule.limit.operator]} {_fmt(limit_value, q.unit) if limit_value is not None else '?'}"
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
    ev: Evaluator, rule: Rule, status: str, ctx: dict[str, Any], memo: dict[tuple[str, bool], list[str]]
) -> list[str]:
    """The applicability leaves behind a status: the false ones when not applicable, else the unknown ones.

    ``memo`` holds them for one case, where every item of a rule shares them."""
    key = (rule.id, status == "not_applicable")
    found = memo.get(key)
    if found is None:
        applies = ev.applies_explanation(rule, ctx)
        found = memo[key] = (
            [text for text, truth in applies if truth is False]
            if key[1]
            else [text for text, truth in applies if truth is None]
        )
    return found


def _constraint_entry(
    ev: Evaluator,
    item: _Item,
    status: str,
    ctx: dict[str, Any],
    memo: dict[tuple[str, bool], list[str]] | None = None,
) -> dict[str, Any]:
    rule = item.rule
    q = rule.quantity
    limit = rule.limit
    assert q is not None
    assert limit is not None
    computed = item.computed
    plan = ev.plan_of[rule.id]
    limit_value, limit_note = plan.limit_for(ctx)
    why_not = _why_not(ev, rule, status, ctx, {} if memo is None else memo)
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
        "status": status,
        "evidence": plan.evidence,
        "citations": plan.citations,
        "explanation": _explanation(item, status, limit_value, why_not, plan.cite_text),
        "calculation": {"name": q.calculation, **q.parameters},
        "inputs": computed.inputs,
        "steps": computed.steps,
        "missing": computed.missing if status == "indeterminate" else [],
        "assumptions": computed.assumptions,
    }
    if limit_note:
        entry["limit_note"] = limit_note
    return entry


_REC_ORDER = {"made": 0, "indeterminate": 1, "not_made": 2}


def _recommendation_entry(
    ev: Evaluator, rule: Rule, status: str, ctx: dict[str, Any], outcomes: dict[str, list[tuple[str, str]]]
) -> dict[str, Any]:
    """A recommendation with the facts that made or blocked it: positives, negatives and unknowns."""
    plan = ev.plan_of[rule.id]
    because = [
        {"text": text, "holds": holds} for text, holds in ev.condition_explanation(rule, ctx, outcomes)
    ]
    assert rule.action is not None
    word = {"made": "MADE", "not_made": "NOT MADE", "indeterminate": "UNDECIDED"}[status]
    relevant = [
        b["text"]
        for b in because
        if b["holds"] is {"made": True, "not_made": False, "indeterminate": None}[status]
    ]
    return {
        "rule_id": rule.id,
        "rule_version": rule.version,
        "guideline": rule.guideline,
        "title": rule.title,
        "status": status,
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


def build_result(
    ev: Evaluator, case: Case, ctx: dict[str, Any], items: list[_Item], status: dict[tuple[str, str], str]
) -> dict[str, Any]:
    constraints: list[dict[str, Any]] = []
    advisories: list[dict[str, Any]] = []
    assumptions: list[dict[str, Any]] = []
    recommendations: list[dict[str, Any]] = []
    memo: dict[tuple[str, bool], list[str]] = {}
    outcomes: dict[str, list[tuple[str, str]]] = {}
    for item in items:
        if item.rule.kind in ("constraint", "advisory"):
            key = item_key(item.structure, item.metric)
            outcomes.setdefault(item.rule.id, []).append((key, status[(item.rule.id, key)]))
    for item in items:
        st = status[(item.rule.id, item_key(item.structure, item.metric))]
        if item.rule.kind == "recommendation":
            recommendations.append(_recommendation_entry(ev, item.rule, st, ctx, outcomes))
            continue
        if item.rule.kind == "assumption":
            used_by = sorted(
                {
                    f"{i.rule.id} {i.structure}/{i.metric}"
                    for i in items
                    if item.rule.id in i.computed.assumptions
                }
            )
            assumptions.append(
                {
                    "rule_id": item.rule.id,
                    "rule_version": item.rule.version,
                    "status": st,
                    "statement": " ".join(item.rule.statement.split()),
                    "used_by": used_by,
                    "evidence": evidence_of(item.rule),
                    "citations": citations_of(item.rule, ev.pack),
                }
            )
            continue
        entry = _constraint_entry(ev, item, st, ctx, memo)
        (advisories if item.rule.kind == "advisory" else constraints).append(entry)
    missing = sorted(
        {reason for entry in constraints + advisories for reason in entry["missing"]}
        | {
            b["text"]
            for r in recommendations
            if r["status"] == "indeterminate"
            for b in r["because"]
            if b["holds"] is None
        }
    )
    assessment: list[dict[str, Any]] = []
    if ev.assessment is not None:
        assessment, not_provided = build_assessment(ev.assessment, case, ctx, ev.radioresistant)
        missing = missing + sorted(not_provided)
    policies: dict[str, dict[str, int]] = {}
    for entry in constraints:
        counts = policies.setdefault(
            entry["policy"], {"pass": 0, "fail": 0, "indeterminate": 0, "not_applicable": 0}
        )
        counts[entry["status"]] += 1
    interval = ctx.get("interval_months")
    return {
        "schema": RESULT_SCHEMA_ID,
        "case_id": case.case_id,
        "tool": {"name": "reirrad", "version": ev.tool_version},
        "rule_pack": {
            "name": ev.pack.name,
            "version": ev.pack.version,
            "sha256": ev.compiled.sha256,
            "content_sha256": ev.pack.content_sha256,
            "as_of": ev.as_of.isoformat(),
        },
        "engine": {"name": ev.engine.name, "version": ev.engine.version},
        "interval_months": None if interval is None else round(interval, 4),
        "context": ctx,
        "constraints": constraints,
        "advisories": advisories,
        "assumptions": assumptions,
        "recommendations": sorted(recommendations, key=lambda r: (_REC_ORDER[r["status"]], r["rule_id"])),
        "policy_summary": [{"policy": p, **c, "verdict": _policy_verdict(c)} for p, c in policies.items()],
        "assessment": assessment,
        "missing_data": missing,
    }


def _policy_verdict(counts: dict[str, int]) -> str:
    if counts["fail"]:
        return "fail"
    if counts["indeterminate"]:
        return "indeterminate"
    if counts["pass"]:
        return "pass"
    return "not_applicable"
