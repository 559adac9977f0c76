"""The audit's own CSV layout (one row per course, columns named by case field; docs/audit.md, CSV layout): the
columns, one case from its rows, and the writer (``reirrad synth --format csv``)."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from reirrad.audit.inputs import CourseLines
from reirrad.audit.sheets import SheetRow
from reirrad.errors import InputError, Problem

__all__ = ["CSV_COLUMNS", "SCHEMA_ID", "case_rows", "check_header", "csv_case", "write_csv"]

SCHEMA_ID = "reirrad/case/v1"

STRUCTURES = (
    "SpinalCord",
    "SpinalCord_PRV03",
    "SpinalCord_PRV05",
    "ThecalSac",
    "SpinalCanal",
    "CaudaEquina",
    "BrachialPlex_L",
    "BrachialPlex_R",
    "SacralPlex",
    "Esophagus",
)
METRICS = ("Dmax", "D0.03cc", "D0.1cc", "D1cc")

# (column, kind, type): kind "case" columns are given on the planned row only; "course" columns on every row;
# "prior"/"planned" columns only on rows of that course. Types: str, int, num, bool, list (';'-separated).
_CASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("patient.age", "int"),
    ("patient.sex", "str"),
    ("patient.histology", "str"),
    ("patient.ecog", "int"),
    ("patient.expected_survival_months", "num"),
    ("patient.kps", "int"),
    ("patient.systemic_disease.status", "str"),
    ("patient.systemic_disease.brain_metastases", "bool"),
    ("patient.systemic_disease.further_systemic_options", "bool"),
    ("lesion.levels", "list"),
    ("lesion.bilsky_grade", "str"),
    ("lesion.sins", "int"),
    ("lesion.recurrence", "str"),
    *(
        (f"lesion.sins_components.{c}", "int")
        for c in ("location", "pain", "bone_lesion", "alignment", "collapse", "posterolateral")
    ),
    ("lesion.pathologic_fracture", "bool"),
    ("lesion.neurologic_deficit", "bool"),
    ("lesion.cord_compression_symptoms", "bool"),
    ("lesion.prior_surgery", "bool"),
    ("lesion.hardware.present", "bool"),
    ("lesion.hardware.failure", "bool"),
    ("lesion.extent", "str"),
    *(
        (f"outcomes.{o}.{f}", t)
        for o in ("myelopathy", "vertebral_compression_fracture", "local_failure")
        for f, t in (("occurred", "bool"), ("date", "str"))
    ),
)
_COURSE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("start", "str", "course"),
    ("end", "str", "prior"),
    ("technique", "str", "course"),
    ("prescription.dose", "num", "course"),
    ("prescription.fractions", "int", "course"),
    ("unit", "str", "course"),
    ("dosimetry", "str", "prior"),
    ("tolerance", "str", "prior"),
    ("ptv_high_dmin", "num", "planned"),
)
_DOSE_COLUMNS = tuple(f"{s}.{m}" for s in STRUCTURES for m in METRICS)
CSV_COLUMNS: tuple[str, ...] = (
    "case_id",
    "course",
    *(c for c, _ in _CASE_COLUMNS),
    *(c for c, _, _ in _COURSE_COLUMNS),
    *_DOSE_COLUMNS,
)
_TYPE = {
    **dict(_CASE_COLUMNS),
    **{c: t for c, t, _ in _COURSE_COLUMNS},
    **dict.fromkeys(_DOSE_COLUMNS, "num"),
}
_CASE_SET = frozenset(c for c, _ in _CASE_COLUMNS)
_ONLY = {c: w for c, _, w in _COURSE_COLUMNS if w != "course"}
_INT_RE = re.compile(r"^[-+]?[0-9]+$")


def _cell(text: str, kind: str) -> Any:
    """A cell's value by its column type; text that does not parse stays text, for the schema to report."""
    if kind == "str":
        return text
    if kind == "list":
        return [p.strip() for p in text.split(";")]
    if kind == "bool":
        return {"true": True, "false": False}.get(text, text)
    if _INT_RE.match(text):
        return int(text)
    if kind == "num":
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    return text


def _fmt(value: Any, kind: str) -> str:
    if kind == "list":
        return ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        doc = doc.setdefault(p, {})
    doc[parts[-1]] = value


def _course(row: dict[str, str], which: str) -> dict[str, Any]:
    course: dict[str, Any] = {}
    for col, kind, where in _COURSE_COLUMNS:
        text = row.get(col, "")
        if text != "" and where in ("course", which):
            _put(course, col, _cell(text, kind))
    structures: dict[str, Any] = {}
    for col in _DOSE_COLUMNS:
        text = row.get(col, "")
        if text != "":
            s, m = col.split(".", 1)
            structures.setdefault(s, {})[m] = _cell(text, "num")
    if structures:
        course["structures"] = structures
    return course


def csv_case(
    file: str, header: tuple[str, ...], rows: Sequence[SheetRow]
) -> tuple[dict[str, Any], list[Problem], Any]:
    """One case from its rows (consecutive rows with one case_id): (document, problems, line map)."""
    first = rows[0].line
    case_id = str(rows[0].values[0]) if rows[0].values else ""
    problems: list[Problem] = []
    planned: tuple[int, dict[str, str]] | None = None
    priors: list[tuple[int, dict[str, str]]] = []
    for sheet_row in rows:
        line, fields = sheet_row.line, sheet_row.values
        if len(fields) != len(header):
            problems.append(
                Problem(
                    file,
                    (),
                    f"the row has {len(fields)} fields, the header {len(header)}",
                    "one field per header column (quote fields that contain commas)",
                    line,
                    code="csv",
                )
            )
            continue
        row = dict(zip(header, fields, strict=True))
        course = row.get("course", "")
        if course == "planned":
            if planned is not None:
                problems.append(
                    Problem(
                        file,
                        ("planned_course",),
                        f"a second planned row for case '{case_id}' (the first is on line {planned[0]})",
                        "one planned row per case",
                        line,
                        code="csv",
                    )
                )
            else:
                planned = (line, row)
        elif course == "prior":
            filled = [c for c in header if c in _CASE_SET and row[c] != ""]
            if filled:
                problems.append(
                    Problem(
                        file,
                        (),
                        f"case-level column(s) {', '.join(filled)} filled on a prior row",
                        "case-level columns on the planned row only",
                        line,
                        code="csv",
                    )
                )
            priors.append((line, row))
        else:
            problems.append(
                Problem(
                    file,
                    (),
                    f"course '{course}' is neither 'prior' nor 'planned'",
                    "prior, planned",
                    line,
                    code="csv",
                )
            )
    if planned is None and not problems:
        problems.append(
            Problem(
                file,
                ("planned_course",),
                f"case '{case_id}' has no planned row",
                "exactly one row with course = planned per case",
                first,
                code="csv",
            )
        )
    if problems or planned is None:
        return {"case_id": case_id}, problems, None
    prow = planned[1]
    doc: dict[str, Any] = {"schema": SCHEMA_ID, "case_id": case_id}
    for col, kind in _CASE_COLUMNS:
        text = prow.get(col, "")
        if text != "":
            _put(doc, col, _cell(text, kind))
    doc.setdefault("lesion", {})
    doc["prior_courses"] = [_course(r, "prior") for _, r in priors]
    doc["planned_course"] = _course(prow, "planned")
    ordered: dict[str, Any] = {
        k: doc[k]
        for k in ("schema", "case_id", "patient", "lesion", "prior_courses", "planned_course", "outcomes")
        if k in doc
    }
    return ordered, [], CourseLines(planned[0], [ln for ln, _ in priors])


def check_header(path: Path, header: tuple[str, ...]) -> tuple[str, ...]:
    """The header of an audit-layout CSV, or the refusal naming unknown, missing and repeated columns."""
    unknown = [c for c in header if c not in _TYPE and c not in ("case_id", "course")]
    missing = [c for c in ("case_id", "course") if c not in header]
    dup = sorted({c for c in header if header.count(c) > 1})
    if unknown or missing or dup:
        what = "; ".join(
            x
            for x in (
                f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                f"missing column(s) {', '.join(missing)}" if missing else "",
                f"repeated column(s) {', '.join(dup)}" if dup else "",
            )
            if x
        )
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    f"the CSV header is not the audit layout: {what}",
                    "case_id, course and any of the columns in docs/audit.md (CSV layout)",
                    1,
                    code="csv",
                )
            ]
        )
    if header[0] != "case_id":
        raise InputError.of(
            [Problem(str(path), (), "the first column must be case_id", "case_id first", 1, code="csv")]
        )
    return header


def _flat(doc: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in doc.items():
        if isinstance(v, dict):
            if not v:
                raise ValueError(f"{prefix}{k}: an empty mapping has no CSV form")
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _course_row(case_id: str, which: str, course: dict[str, Any]) -> dict[str, str]:
    row = {"case_id": case_id, "course": which}
    for key, value in _flat({k: v for k, v in course.items() if k != "structures"}):
        if key not in _TYPE or key in _CASE_SET or _ONLY.get(key, which) != which:
            raise ValueError(f"{case_id}: {which} course field '{key}' has no CSV column")
        row[key] = _fmt(value, _TYPE[key])
    for s, metrics in (course.get("structures") or {}).items():
        if not metrics:
            raise ValueError(f"{case_id}: structure {s} without metrics has no CSV form")
        for m, value in metrics.items():
            col = f"{s}.{m}"
            if col not in _TYPE:
                raise ValueError(f"{case_id}: no CSV column for {col}")
            row[col] = _fmt(value, "num")
    return row


def case_rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The CSV rows of one case document (prior courses in order, then the planned course)."""
    if doc.get("schema") != SCHEMA_ID:
        raise ValueError(f"schema must be {SCHEMA_ID}")
    case_id = doc["case_id"]
    rows = [_course_row(case_id, "prior", c) for c in doc.get("prior_courses", [])]
    planned = _course_row(case_id, "planned", doc["planned_course"])
    for key, value in _flat({k: doc[k] for k in ("patient", "lesion", "outcomes") if k in doc}):
        if key not in _CASE_SET:
            raise ValueError(f"{case_id}: field '{key}' has no CSV column")
        planned[key] = _fmt(value, _TYPE[key])
    if "lesion" not in doc or set(doc) - {
        "schema",
        "case_id",
        "patient",
        "lesion",
        "prior_courses",
        "planned_course",
        "outcomes",
    }:
        raise ValueError(f"{case_id}: the document has fields with no CSV column")
    rows.append(planned)
    return rows


def write_csv(cases: Iterable[dict[str, Any]], out: io.TextIOBase | Any) -> int:
    """Write case documents in the audit CSV layout (all columns); returns the number of cases written."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for doc in cases:
        writer.writerows(case_rows(doc))
        n += 1
    return n
