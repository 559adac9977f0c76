"""CDS Hooks 2.0: discovery, the re-irradiation service on order-select / order-sign, its cards, and feedback.

The order is a CodeX RadiotherapyPlannedCourse (a ServiceRequest in ``context.draftOrders``); the patient's earlier
courses come from the ``radiotherapyCourses`` prefetch (mCODE / CodeX course summaries, Procedures), read by the
FHIR importer. FHIR carries target doses, not organ doses: the cord doses, the spinal levels and a stereotactic
intent are read from reirrad's own extensions when the EHR sends them (docs/service.md). Whatever is missing or
refused gives a card saying so, never a pass.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reirrad.errors import InputError, Problem, format_path
from reirrad.service.engine import ServiceEngine, case_hash, parse_case_dict
from reirrad.service.feedback import Card, FeedbackStore, utc_now
from reirrad.vocabulary import LEVELS, METRICS, STRUCTURE_NAMES

__all__ = [
    "EXT_LEVEL",
    "EXT_ORGAN_DOSE",
    "EXT_TECHNIQUE",
    "OVERRIDE_REASONS",
    "SERVICE_ID",
    "CdsRequest",
    "FeedbackRequest",
    "discovery",
    "run_service",
]

SERVICE_ID = "reirrad-spine-reirradiation"
HOOKS = ("order-select", "order-sign")
PREFETCH_KEY = "radiotherapyCourses"
COURSE_CODE = "1217123003"  # SNOMED CT: Radiotherapy course of treatment (regime/therapy)
PREFETCH = {
    PREFETCH_KEY: f"Procedure?patient={{{{context.patientId}}}}&code=http://snomed.info/sct|{COURSE_CODE}"
}
PLANNED_PROFILES = ("codexrt-radiotherapy-planned-course", "mcode-radiotherapy-planned-course")
SUMMARY_PROFILES = ("mcode-radiotherapy-course-summary", "codexrt-radiotherapy-course-summary")
LOCAL = "https://reirrad.example/fhir/StructureDefinition/"
EXT_ORGAN_DOSE = LOCAL + "organ-dose"
"""reirrad's extension (not part of mCODE or CodeX): one organ dose of a course: ``structure`` (valueCode, a
case-format structure name), ``metric`` (valueCode: Dmax, D0.03cc, D0.1cc, D1cc), ``dose`` (valueQuantity, UCUM
Gy or cGy, the whole course)."""
EXT_LEVEL = LOCAL + "spinal-level"
"""reirrad's extension: one spinal level the course treats (valueCode C1 … S5), repeatable."""
EXT_TECHNIQUE = LOCAL + "technique"
"""reirrad's extension: the technique as the rules read it (valueCode SBRT, SRS, …): mCODE codes the delivery
(VMAT, IMRT), not a stereotactic intent."""
OVERRIDE_SYSTEM = "https://reirrad.example/fhir/CodeSystem/override-reason"
OVERRIDE_REASONS = [
    {
        "system": OVERRIDE_SYSTEM,
        "code": "data-incorrect",
        "display": "The doses or dates shown are not this patient's",
    },
    {
        "system": OVERRIDE_SYSTEM,
        "code": "clinical-judgement",
        "display": "Benefit judged to outweigh the risk here",
    },
    {
        "system": OVERRIDE_SYSTEM,
        "code": "policy-not-used",
        "display": "Our department does not use this policy",
    },
    {
        "system": OVERRIDE_SYSTEM,
        "code": "rule-disagree",
        "display": "The rule does not match the source or evidence",
    },
]
RULE_SYSTEM = "https://reirrad.example/fhir/CodeSystem/rule"
CASE_ID = "cds-order"
"""The case id of every case built from an order: the case hash then depends on the clinical content only."""
MAX_SUMMARY = 139
_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class CdsContext(_Open):
    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1)
    encounterId: str | None = None
    selections: list[str] | None = None
    draftOrders: dict[str, Any]


class CdsRequest(_Open):
    """A CDS Hooks 2.0 service call (the fields this service reads; others are allowed and ignored)."""

    hook: str = Field(min_length=1)
    hookInstance: str = Field(min_length=1)
    fhirServer: str | None = None
    fhirAuthorization: dict[str, Any] | None = None
    context: CdsContext
    prefetch: dict[str, Any | None] | None = None


class OverrideReason(_Open):
    reason: dict[str, Any] | None = None
    userComment: str | None = Field(default=None, max_length=4000)


class FeedbackItem(_Open):
    card: str = Field(min_length=1, max_length=200)
    outcome: str = Field(pattern="^(accepted|overridden)$")
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str = Field(min_length=1, max_length=64)


class FeedbackRequest(_Open):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


def discovery() -> dict[str, Any]:
    """The discovery document: one service id, registered on both order hooks."""
    description = (
        "Checks a planned radiotherapy course (CodeX RadiotherapyPlannedCourse) to the spine against published "
        "re-irradiation cord dose policies and guideline recommendations, given the patient's earlier courses."
    )
    return {
        "services": [
            {
                "hook": hook,
                "title": "Spine re-irradiation check",
                "description": description,
                "id": SERVICE_ID,
                "prefetch": dict(PREFETCH),
                "usageRequirements": "The cord doses of each course come from reirrad's organ-dose extension "
                "(docs/service.md); without them the service answers with cards saying what is missing.",
            }
            for hook in HOOKS
        ]
    }


def _summary(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 1].rstrip() + "…"


@dataclass
class _Built:
    cards: list[dict[str, Any]] = field(default_factory=list)
    stored: list[Card] = field(default_factory=list)


def _profiles(resource: dict[str, Any]) -> list[str]:
    return [str(p).rsplit("/", 1)[-1] for p in (resource.get("meta") or {}).get("profile") or []]


def _codes(resource: dict[str, Any]) -> list[str]:
    return [
        str(c.get("code")) for c in ((resource.get("code") or {}).get("coding") or []) if isinstance(c, dict)
    ]


def _is_planned_course(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "ServiceRequest" and (
        any(p in PLANNED_PROFILES for p in _profiles(resource)) or COURSE_CODE in _codes(resource)
    )


def _is_course_summary(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "Procedure" and (
        any(p in SUMMARY_PROFILES for p in _profiles(resource)) or COURSE_CODE in _codes(resource)
    )


def _extensions(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension") or [] if isinstance(e, dict) and e.get("url") == url]


def _levels(resource: dict[str, Any], where: str, problems: list[Problem]) -> list[str]:
    levels = []
    for i, ext in enumerate(_extensions(resource, EXT_LEVEL)):
        code = ext.get("valueCode")
        if code in LEVELS:
            levels.append(code)
        else:
            problems.append(
                Problem(
                    where,
                    ("extension", EXT_LEVEL, i),
                    f"spinal level {code!r} is not known",
                    ", ".join(LEVELS),
                )
            )
    return levels


def _technique(resource: dict[str, Any], where: str, problems: list[Problem]) -> str | None:
    found = [e.get("valueCode") for e in _extensions(resource, EXT_TECHNIQUE)]
    if not found:
        return None
    allowed = ("2D", "3DCRT", "IMRT", "VMAT", "SBRT", "SRS", "other")
    if len(found) > 1 or found[0] not in allowed:
        problems.append(
            Problem(
                where,
                ("extension", EXT_TECHNIQUE),
                f"technique {found} is not one known value",
                ", ".join(allowed),
            )
        )
        return None
    return str(found[0])


def _organ_doses(
    resource: dict[str, Any], where: str, problems: list[Problem]
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for i, ext in enumerate(_extensions(resource, EXT_ORGAN_DOSE)):
        parts = {s.get("url"): s for s in ext.get("extension") or [] if isinstance(s, dict)}
        path: tuple[str | int, ...] = ("extension", EXT_ORGAN_DOSE, i)
        structure = (parts.get("structure") or {}).get("valueCode")
        metric = (parts.get("metric") or {}).get("valueCode")
        quantity = (parts.get("dose") or {}).get("valueQuantity") or {}
        value, unit = quantity.get("value"), quantity.get("code") or quantity.get("unit")
        if structure not in STRUCTURE_NAMES:
            problems.append(
                Problem(
                    where,
                    (*path, "structure"),
                    f"structure {structure!r} is not known",
                    ", ".join(STRUCTURE_NAMES),
                )
            )
            continue
        if metric not in METRICS:
            problems.append(
                Problem(where, (*path, "metric"), f"metric {metric!r} is not known", ", ".join(METRICS))
            )
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < 0
            or unit not in ("Gy", "cGy")
        ):
            problems.append(
                Problem(
                    where,
                    (*path, "dose"),
                    f"dose {value!r} {unit!r} is not a dose",
                    "valueQuantity with a value ≥ 0 and UCUM code Gy or cGy",
                )
            )
            continue
        out.setdefault(structure, {})[metric] = round(float(value) / (100.0 if unit == "cGy" else 1.0), 4)
    return {s: {m: v[m] for m in METRICS if m in v} for s, v in out.items()}


def _card(
    summary: str,
    indicator: str,
    detail: str,
    *,
    base_url: str,
    rule_id: str | None = None,
    rule_version: str | None = None,
    title: str = "",
    pack_label: str,
    with_reasons: bool = True,
) -> dict[str, Any]:
    source: dict[str, Any] = {"label": pack_label}
    if rule_id:
        source = {
            "label": f"reirrad rule {rule_id} {rule_version}",
            "url": f"{base_url}/rules/{rule_id}",
            "topic": {"system": RULE_SYSTEM, "code": rule_id, "display": title or rule_id},
        }
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(summary),
        "detail": detail,
        "indicator": indicator,
        "source": source,
    }
    if with_reasons:
        card["overrideReasons"] = list(OVERRIDE_REASONS)
    if rule_id:
        card["_rule"] = (rule_id, rule_version)
    if not rule_id:
        card["links"] = [
            {"label": "Check the case on the reirrad page", "url": f"{base_url}/", "type": "absolute"}
        ]
    return card


def _problem_lines(problems: list[Problem]) -> str:
    return "\n".join(f"- {p.render()}" for p in problems)


def _line_card(line: dict[str, Any], kind: str, base_url: str, pack_label: str) -> dict[str, Any]:
    status = line["status"]
    what = " ".join(x for x in (line["structure"], line["metric"]) if x)
    cites = "; ".join(
        f"{c['citation']} ({c['locator']})" + (f", doi:{c['doi']}" if c.get("doi") else "")
        for c in line["citations"]
    )
    if status == "fail":
        summary = (
            f"{line['policy']} {line['criterion']}: {what} {line['value']:.2f} {line['unit']} is over the "
            f"limit {_OPS[line['operator']]} {line['limit']:g}"
        )
        indicator = "critical" if kind == "constraint" else "warning"
    elif status == "indeterminate":
        summary = f"{line['policy']} {line['criterion']}: cannot be decided — " + "; ".join(
            line["missing"] or ["data missing"]
        )
        indicator = "warning"
    else:  # fragile: another defensible reading of the sources (rules/readings/) would change the verdict
        summary = (
            f"{line['policy']} {line['criterion']}: {what} {status}, but another reading of the sources "
            "changes it"
        )
        indicator = "warning"
    detail_lines = [
        f"**{line['policy']} — {line['criterion']}** ({kind}, rule `{line['rule_id']}` version {line['rule_version']})",
        "",
        line["explanation"],
        "",
    ]
    if line["value"] is not None and line["limit"] is not None:
        detail_lines.append(
            f"- value: {line['value']:.2f} {line['unit']}; limit {_OPS[line['operator']]} {line['limit']:g} {line['unit']}"
        )
    if line["missing"]:
        detail_lines.append(f"- missing: {'; '.join(line['missing'])}")
    detail_lines += [f"- fragile: {flip['text']}" for flip in line.get("sensitivity", [])]
    detail_lines += [f"- evidence: {line['evidence']['label']}", f"- source: {cites}", f"- {pack_label}"]
    return _card(
        summary,
        indicator,
        "\n".join(detail_lines),
        base_url=base_url,
        rule_id=line["rule_id"],
        rule_version=line["rule_version"],
        title=f"{line['policy']} {line['criterion']}",
        pack_label=pack_label,
    )


def _recommendation_card(rec: dict[str, Any], base_url: str, pack_label: str) -> dict[str, Any]:
    cites = "; ".join(
        f"{c['citation']} ({c['locator']})" + (f", doi:{c['doi']}" if c.get("doi") else "")
        for c in rec["citations"]
    )
    because = "\n".join(f"- {b['text']}" for b in rec["because"])
    detail = (
        f"**{rec['title']}** (rule `{rec['rule_id']}` version {rec['rule_version']}, {rec['strength']})\n\n"
        f"{rec['statement']}\n\nBecause:\n{because}\n\n- evidence: {rec['evidence']['label']}\n- source: {cites}\n"
        f"- {pack_label}"
    )
    indicator = "warning" if rec["direction"] == "against" else "info"
    return _card(
        rec["title"],
        indicator,
        detail,
        base_url=base_url,
        rule_id=rec["rule_id"],
        rule_version=rec["rule_version"],
        title=rec["title"],
        pack_label=pack_label,
    )


def fragile_lines(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Lines the result marks fragile (a reading a small error would flip). Plug-in point for the lead's
    sensitivity analysis: a line with ``"fragile": true`` gets a card of its own; nothing is marked today."""
    return [
        line
        for line in [*result.get("constraints", []), *result.get("advisories", [])]
        if line.get("fragile") and line["status"] == "pass"
    ]


def result_cards(result: dict[str, Any], base_url: str, pack_label: str) -> list[dict[str, Any]]:
    """One card per failed, undecided or fragile criterion and per recommendation made."""
    cards = []
    for kind, lines in (("constraint", result["constraints"]), ("advisory", result["advisories"])):
        for line in lines:
            if line["status"] in ("fail", "indeterminate"):
                cards.append(_line_card(line, kind, base_url, pack_label))
    cards += [_line_card(line, "fragile reading", base_url, pack_label) for line in fragile_lines(result)]
    cards += [
        _recommendation_card(r, base_url, pack_label)
        for r in result["recommendations"]
        if r["status"] == "made"
    ]
    return cards


def _course_from(
    resource: dict[str, Any], planned: bool, label: str, problems: list[Problem], warnings: list[str]
) -> dict[str, Any] | None:
    """One course read by the FHIR importer (``reirrad import fhir``) from a bundle holding only ``resource``,
    plus the organ doses of reirrad's extension; the importer's problems name ``label``."""
    from reirrad.importers.common import CourseOptions
    from reirrad.importers.fhir import import_fhir

    technique = _technique(resource, label, problems)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
    with tempfile.TemporaryDirectory(prefix="reirrad-cds-") as folder:
        path = Path(folder) / "bundle.json"
        path.write_text(json.dumps(bundle), encoding="utf-8")
        try:
            imported = import_fhir(str(path), CourseOptions(planned=planned, technique=technique))
        except InputError as exc:
            problems.extend(
                Problem(label, p.path, p.message.replace(str(path), label), p.accepted, p.line, p.code)
                for p in exc.problems
            )
            return None
    warnings.extend(
        w.replace(str(path), label) for w in imported.warnings if "FHIR gives target doses" not in w
    )
    course = dict(imported.course)
    doses = _organ_doses(resource, label, problems)
    if doses:
        course["structures"] = doses
    return course


def _missing_card(summary: str, detail: str, base_url: str, pack_label: str) -> dict[str, Any]:
    return _card(summary, "warning", detail + f"\n\n- {pack_label}", base_url=base_url, pack_label=pack_label)


def _order_digest(order: dict[str, Any]) -> str:
    """A hash standing for the case when no case could be built (cards about missing data)."""
    text = json.dumps(order, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_order(
    order: dict[str, Any],
    prefetch: dict[str, Any],
    engine: ServiceEngine,
    base_url: str,
    pack_label: str,
    as_of: date | None,
) -> tuple[list[dict[str, Any]], str]:
    """The cards for one planned course order, and the hash of the case they are about."""
    cards: list[dict[str, Any]] = []
    order_label = f"draftOrders ServiceRequest/{order.get('id') or '(no id)'}"
    problems: list[Problem] = []
    warnings: list[str] = []
    if PREFETCH_KEY not in prefetch:
        detail = (
            f"The EHR did not send the prefetch `{PREFETCH_KEY}` ({PREFETCH[PREFETCH_KEY]}). Without the patient's "
            "earlier courses no re-irradiation limit can be checked; nothing here is a pass."
        )
        summary = "Re-irradiation not checked: the earlier radiotherapy courses were not sent"
        return [_missing_card(summary, detail, base_url, pack_label)], _order_digest(order)
    courses_bundle = prefetch[PREFETCH_KEY]
    summaries: list[dict[str, Any]] = []
    if courses_bundle is None:
        warnings.append(
            "The EHR has no earlier radiotherapy course on record for this patient: the check assumes none. "
            "Radiotherapy given elsewhere must be added on the reirrad page."
        )
    elif not isinstance(courses_bundle, dict) or courses_bundle.get("resourceType") != "Bundle":
        got = (
            courses_bundle.get("resourceType")
            if isinstance(courses_bundle, dict)
            else type(courses_bundle).__name__
        )
        why = (
            "The EHR could not fetch the earlier courses"
            if got == "OperationOutcome"
            else f"The prefetch is {got!r}, not a Bundle"
        )
        summary = "Re-irradiation not checked: the earlier radiotherapy courses could not be read"
        detail = f"{why} (prefetch `{PREFETCH_KEY}`). No limit was checked; nothing here is a pass."
        return [_missing_card(summary, detail, base_url, pack_label)], _order_digest(order)
    else:
        for i, entry in enumerate(courses_bundle.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome":
                problems.append(
                    Problem(
                        f"prefetch {PREFETCH_KEY}",
                        ("entry", i),
                        "the EHR reports an error fetching the courses",
                        "a Bundle of course summaries",
                    )
                )
            elif isinstance(resource, dict) and _is_course_summary(resource):
                summaries.append(resource)
    order_levels = _levels(order, order_label, problems)
    priors = []
    for resource in summaries:
        label = f"prefetch {PREFETCH_KEY} Procedure/{resource.get('id') or '(no id)'}"
        levels = _levels(resource, label, problems)
        if levels and order_levels and not set(levels) & set(order_levels):
            continue  # a course over other levels is not a prior course over this lesion
        if not levels:
            warnings.append(
                f"Counted as a course over this lesion: {label} does not say which spinal levels it treated "
                "(the cautious reading)."
            )
        course = _course_from(resource, False, label, problems, warnings)
        if course is not None:
            priors.append(course)
    planned = _course_from(order, True, order_label, problems, warnings)
    cards += [_missing_card(_summary(w), w, base_url, pack_label) for w in warnings]
    if not order_levels:
        problems.append(
            Problem(
                order_label,
                ("extension", EXT_LEVEL),
                "the order does not say which spinal levels it treats",
                f"the extension {EXT_LEVEL} (valueCode C1 … S5)",
            )
        )
    if planned is not None and not planned.get("structures"):
        problems.append(
            Problem(
                order_label,
                ("extension", EXT_ORGAN_DOSE),
                "the order carries no cord (or thecal sac) dose",
                f"the extension {EXT_ORGAN_DOSE}, one per structure and metric",
            )
        )
    case = None
    if not problems and planned is not None:
        data = {
            "schema": "reirrad/case/v1",
            "case_id": CASE_ID,
            "lesion": {"levels": order_levels},
            "prior_courses": priors,
            "planned_course": planned,
        }
        case, found = parse_case_dict(data, order_label)
        problems += found
    if problems or case is None:
        detail = (
            "What is missing or was refused:\n\n"
            + _problem_lines(problems)
            + "\n\nNo limit was checked; nothing here is a pass."
        )
        summary = "Re-irradiation not checked: data the rules need is missing or was refused"
        cards.append(_missing_card(summary, detail, base_url, pack_label))
        return cards, _order_digest(order)
    result = engine.evaluate(case, as_of)
    return cards + result_cards(result, base_url, pack_label), case_hash(case)


def run_service(
    request: CdsRequest,
    engine: ServiceEngine,
    store: FeedbackStore | None,
    base_url: str,
    as_of: date | None = None,
) -> dict[str, Any]:
    """The cards for one hook call. Missing or refused data gives a card that says what is missing."""
    info = engine.info
    pack_label = f"reirrad rule pack {info.name} {info.version} (sha256 {info.content_sha256[:12]}…)"
    entries = request.context.draftOrders.get("entry") or []
    resources: list[dict[str, Any]] = [
        e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    orders = [r for r in resources if _is_planned_course(r)]
    if request.hook == "order-select" and request.context.selections is not None:
        chosen = set(request.context.selections)
        orders = [r for r in orders if f"ServiceRequest/{r.get('id')}" in chosen]
    cards: list[dict[str, Any]] = []
    stored: list[Card] = []
    for order in orders:
        made, digest = _check_order(order, request.prefetch or {}, engine, base_url, pack_label, as_of)
        for card in made:
            rule_id, version = card.pop("_rule", (None, None))
            stored.append(Card(card["uuid"], digest, rule_id, version, card["indicator"]))
        cards += made
    if store is not None and stored:
        store.record_cards(SERVICE_ID, stored)
    return {"cards": cards}


def record_feedback(request: FeedbackRequest, store: FeedbackStore) -> list[Problem]:
    """Store each outcome against the rule and version of its card; unknown cards are refused by index."""
    problems: list[Problem] = []
    known = []
    for i, item in enumerate(request.feedback):
        card = store.card(item.card)
        if card is None:
            problems.append(
                Problem(
                    "request body",
                    ("feedback", i, "card"),
                    f"no card {item.card!r} was issued by this service",
                    "the uuid of a card this service returned",
                )
            )
        else:
            known.append((item, card))
    if problems:
        return problems
    for item, card in known:
        reason = item.overrideReason
        code = None
        if reason is not None and reason.reason:
            code = str(reason.reason.get("code") or "") or None
            display = next((r["display"] for r in OVERRIDE_REASONS if r["code"] == code), None)
            code = f"{code}: {display}" if display else code
        store.record_outcome(
            "cds",
            item.outcome,
            card.case_hash,
            card.rule_id,
            card.rule_version,
            card_uuid=card.uuid,
            reason_code=code,
            reason=reason.userComment if reason else None,
            time=item.outcomeTimestamp,
        )
    return []


def request_problems(exc: ValidationError, what: str) -> list[Problem]:
    """Pydantic's refusal of a CDS Hooks body, as Problems naming each field."""
    return [
        Problem(
            "request body",
            tuple(p for p in e["loc"] if isinstance(p, str | int)),
            e["msg"],
            what,
            code="cds." + e["type"],
        )
        for e in exc.errors()
    ]


def now_text() -> str:
    return utc_now()


def path_text(path: tuple[str | int, ...]) -> str:
    return format_path(path)
