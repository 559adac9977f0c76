"""The structured NOMS/ACR assessment of a case (rules/assessment/noms-acr.yaml, after Kotecha 2020, Table 1).

Each item of the assessment file names the case fields that answer it. For one case an item is

- ``present`` / ``absent`` — a yes/no finding the case records as yes / no;
- ``recorded`` — a value the case gives (a grade, a score, a date), shown beside it;
- ``not_provided`` — every field that would answer it is left out of the case: listed under ``missing_data`` and
  never read as absent;
- ``not_captured`` — the case format has no field for it (a matter for the tumour board, not for the file).

Flags are the findings the rules and the sources act on (high-grade epidural disease, a SINS category, a
radioresistant histology, expected survival under six months, ...). Each flag carries the source that defines it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from reirrad.case import Case, SinsComponents
from reirrad.knowledge.data import Assessment, AssessmentItem

__all__ = ["build_assessment", "flags_for"]


@dataclass(frozen=True)
class _Flag:
    domain: str
    text: str
    source: str


@cache
def _steps(path: str) -> tuple[tuple[str, bool], ...]:
    return tuple((part[:-2], True) if part.endswith("[]") else (part, False) for part in path.split("."))


def _values(case: Case, path: str) -> list[Any]:
    """The values a dotted case path names; '[]' steps into every element of a list. Missing steps give nothing."""
    nodes: list[Any] = [case]
    for name, into in _steps(path):
        found: list[Any] = []
        for node in nodes:
            value = getattr(node, name, None)
            if value is None:
                continue
            if into:
                found.extend(v for v in value if v is not None)
            else:
                found.append(value)
        nodes = found
    return nodes


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, str)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    if isinstance(value, SinsComponents):
        return f"components total {value.total}"
    return "given"


def _item_entry(case: Case, item: AssessmentItem) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": item.id, "item": item.text, "case_fields": list(item.case_fields)}
    if not item.captured:
        entry["status"] = "not_captured"
        return entry
    found = [(name, _values(case, name)) for name in item.case_fields]
    given = [(name, values) for name, values in found if values]
    if not given:
        entry["status"] = "not_provided"
        return entry
    flat = [v for _, values in given for v in values]
    if all(isinstance(v, bool) for v in flat):
        entry["status"] = "present" if any(flat) else "absent"
    else:
        entry["status"] = "recorded"
    entry["value"] = "; ".join(
        f"{name} = {_show(values if len(values) > 1 else values[0])}" for name, values in given
    )
    if item.coverage == "partial" and item.note:
        entry["note"] = item.note
    return entry


Matcher = Callable[[str], list[Any]]
"""A histology text → the (list id, entry) pairs of the radioresistant lists it matches."""


def flags_for(case: Case, ctx: Mapping[str, Any], histology: Matcher | None) -> list[_Flag]:
    """The findings the sources act on, each with the source that defines it."""
    flags: list[_Flag] = []
    lesion, patient = case.lesion, case.patient
    if lesion.bilsky_grade in ("2", "3"):
        flags.append(
            _Flag(
                "neurologic",
                f"high-grade epidural disease (Bilsky {lesion.bilsky_grade})",
                "Bilsky ESCC scale: grades 2-3 are high grade",
            )
        )
    if lesion.neurologic_deficit:
        flags.append(_Flag("neurologic", "neurologic deficit", "Kotecha 2020, Table 1 (neurologic)"))
    if lesion.cord_compression_symptoms:
        flags.append(
            _Flag("neurologic", "symptoms of cord compression", "Kotecha 2020, Table 1 (neurologic)")
        )
    sins = lesion.sins_total
    if sins is not None:
        category = "stable" if sins <= 6 else "potentially unstable" if sins <= 12 else "unstable"
        if sins >= 7:
            flags.append(
                _Flag(
                    "mechanical",
                    f"SINS {sins}: {category}",
                    "SINS (Fisher 2010): 0-6 stable, 7-12 potentially unstable, 13-18 unstable",
                )
            )
    if lesion.pathologic_fracture:
        flags.append(
            _Flag(
                "mechanical",
                "pathologic (baseline) fracture",
                "Myrehaug 2017, Discussion: a baseline fracture is a VCF risk factor",
            )
        )
    if ctx.get("lytic_lesion"):
        flags.append(
            _Flag(
                "mechanical",
                "lytic lesion (SINS bone-lesion component 2)",
                "Myrehaug 2017, Discussion: lytic disease is a VCF risk factor",
            )
        )
    per_fraction = ctx.get("planned_dose_per_fraction")
    if per_fraction is not None and per_fraction > 19:
        flags.append(
            _Flag(
                "mechanical",
                f"planned dose per fraction {per_fraction:g} Gy (above 19 Gy)",
                "Myrehaug 2017, Discussion: more than 19 Gy per fraction is a VCF risk factor",
            )
        )
    if lesion.hardware is not None and lesion.hardware.failure:
        flags.append(_Flag("prior-therapy", "hardware failure", "Kotecha 2020, Table 1 (prior therapy)"))
    if ctx.get("most_recent_prior_stereotactic"):
        flags.append(
            _Flag(
                "prior-therapy",
                "the most recent earlier course was stereotactic",
                "Myrehaug 2017 (ISRS): SBRT after SBRT is a separate recommendation",
            )
        )
    if patient is not None and patient.histology is not None and histology is not None:
        matches = histology(patient.histology)
        if matches:
            names = "; ".join(f"{entry.name} ({list_id} list)" for list_id, entry in matches)
            flags.append(
                _Flag(
                    "oncologic",
                    f"radioresistant histology: {names}",
                    "rules/lists/radioresistant-histologies.yaml (a lexical match to confirm)",
                )
            )
    if patient is not None:
        survival = patient.expected_survival_months
        if survival is not None and survival < 6:
            flags.append(
                _Flag(
                    "systemic",
                    f"expected survival {survival:g} months (under about 6)",
                    "Kotecha 2020: short palliative schedules for short expected survival",
                )
            )
        disease = patient.systemic_disease
        if disease is not None and disease.status == "progressing":
            flags.append(
                _Flag("systemic", "progressing systemic disease", "Kotecha 2020, Table 1 (systemic)")
            )
        if disease is not None and disease.brain_metastases:
            flags.append(_Flag("systemic", "brain metastases", "Kotecha 2020, Table 1 (systemic)"))
        if disease is not None and disease.further_systemic_options is False:
            flags.append(
                _Flag(
                    "oncologic", "no further systemic therapy available", "Kotecha 2020, Table 1 (oncologic)"
                )
            )
    return flags


def build_assessment(
    assessment: Assessment, case: Case, ctx: Mapping[str, Any], histology: Matcher | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The assessment blocks of a result, and the 'not provided' lines that belong in its missing_data."""
    flags = flags_for(case, ctx, histology)
    blocks: list[dict[str, Any]] = []
    missing: list[str] = []
    for domain in assessment.domains:
        items = [_item_entry(case, item) for item in domain.items]
        for entry in items:
            if entry["status"] == "not_provided":
                missing.append(
                    f"assessment: {domain.title.lower()} — {entry['item'].lower()} "
                    f"({', '.join(entry['case_fields'])})"
                )
        blocks.append(
            {
                "domain": domain.title,
                "id": domain.id,
                "items": items,
                "flags": [{"text": f.text, "source": f.source} for f in flags if f.domain == domain.id],
            }
        )
    return blocks, missing
