"""The database rows of one audited case, and of one rejected record: the tables of docs/audit.md ("The database").

``add_case`` builds every row of an evaluated case, in this one function, from the audit record of its evaluation
(``Evaluator.record``) or, with ``--full-results``, from the full result document, which holds the same fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reirrad.errors import Problem

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]

__all__ = ["TABLES", "Rows", "margin"]

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "cases": (
        ("seq", "BIGINT"),
        ("case_id", "VARCHAR"),
        ("source", "VARCHAR"),
        ("line", "INTEGER"),
        ("as_of", "DATE"),
        ("rule_set", "VARCHAR"),
        ("planned_start", "DATE"),
        ("technique", "VARCHAR"),
        ("stereotactic", "BOOLEAN"),
        ("fractions", "INTEGER"),
        ("prior_courses", "INTEGER"),
        ("interval_months", "DOUBLE"),
        ("levels", "VARCHAR"),
        ("myelopathy", "BOOLEAN"),
        ("myelopathy_date", "DATE"),
        ("vertebral_compression_fracture", "BOOLEAN"),
        ("vertebral_compression_fracture_date", "DATE"),
        ("local_failure", "BOOLEAN"),
        ("local_failure_date", "DATE"),
        ("document", "VARCHAR"),
    ),
    "policy_verdicts": (
        ("seq", "BIGINT"),
        ("policy", "VARCHAR"),
        ("verdict", "VARCHAR"),
        ("verdict_now", "VARCHAR"),
    ),
    "constraint_lines": (
        ("seq", "BIGINT"),
        ("policy", "VARCHAR"),
        ("criterion", "VARCHAR"),
        ("rule_id", "VARCHAR"),
        ("rule_version", "VARCHAR"),
        ("structure", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("status", "VARCHAR"),
        ("value", "DOUBLE"),
        ("limit_value", "DOUBLE"),
        ("operator", "VARCHAR"),
        ("unit", "VARCHAR"),
        ("margin", "DOUBLE"),
        ("assumed", "BOOLEAN"),
        ("fragile", "BOOLEAN"),
    ),
    "recommendations": (
        ("seq", "BIGINT"),
        ("rule_id", "VARCHAR"),
        ("rule_version", "VARCHAR"),
        ("status", "VARCHAR"),
    ),
    "errors": (
        ("seq", "BIGINT"),
        ("source", "VARCHAR"),
        ("file", "VARCHAR"),
        ("line", "INTEGER"),
        ("column_name", "VARCHAR"),
        ("path", "VARCHAR"),
        ("code", "VARCHAR"),
        ("value", "VARCHAR"),
        ("message", "VARCHAR"),
        ("accepted", "VARCHAR"),
        ("case_id", "VARCHAR"),
    ),
}
_OUTCOMES = ("myelopathy", "vertebral_compression_fracture", "local_failure")
MAX_TEXT = 300
"""Characters of an input value or message kept in the errors table (a poisoned cell is not copied whole)."""

PRIVACY_CODE = "privacy.identifier"
"""The code of a problem found by the identifier screen (reirrad.case.identifying_pattern)."""


def margin(value: float | None, limit: float | None, operator: str | None) -> float | None:
    """How far a value is inside its limit (negative: outside): limit − value for ≤ and <, value − limit for ≥ and >."""
    if value is None or limit is None or operator is None:
        return None
    return round(limit - value if operator in ("<", "<=") else value - limit, 6)


def clean(text: Any) -> str:
    """Text safe to store and print: valid UTF-8 (lone surrogates escaped), at most MAX_TEXT characters."""
    s = text if isinstance(text, str) else repr(text)
    if len(s) > MAX_TEXT:
        s = s[:MAX_TEXT] + f"… ({len(s):,} characters)"
    if not s.isascii():
        s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s


SLICE_ROWS = 1000
"""Rows per part file. DuckDB reads a part file as one JSON object whose columns are lists: what it holds while
reading grows with the object (one 23,000-line file of a chunk's constraint lines needed more than a 64 MB buffer
pool), so a chunk's rows are cut into slices whose reading needs little and the same whatever the cohort."""


class Rows:
    """The rows of one chunk, table by table (tuples in column order), written column-wise as JSON slices."""

    def __init__(self) -> None:
        self.tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in TABLES}

    def add_case(
        self,
        seq: int,
        source: str,
        line: int | None,
        case: Any,
        document: Any,
        result: dict[str, Any],
        rule_set: str,
        now_verdicts: dict[str, str] | None = None,
    ) -> None:
        """Every row of one evaluated case, from its audit record or result dict (the one place rows are built)."""
        planned = case.planned_course
        outcomes = case.outcomes
        out_cols: list[Any] = []
        for name in _OUTCOMES:
            o = getattr(outcomes, name, None) if outcomes is not None else None
            out_cols += (
                [None, None] if o is None else [o.occurred, None if o.date is None else o.date.isoformat()]
            )
        self.tables["cases"].append(
            (
                seq,
                case.case_id,
                source,
                line,
                result["rule_pack"]["as_of"],
                rule_set,
                planned.start.isoformat(),
                planned.technique,
                planned.is_stereotactic,
                planned.fractions,
                len(case.prior_courses),
                result.get("interval_months"),
                ";".join(case.lesion.levels),
                *out_cols,
                _dumps_text(document),
            )
        )
        verdicts = self.tables["policy_verdicts"]
        for p in result["policy_summary"]:
            now = None if now_verdicts is None else now_verdicts.get(p["policy"], "not_in_force")
            verdicts.append((seq, p["policy"], p["verdict"], now))
        if now_verdicts is not None:
            seen = {p["policy"] for p in result["policy_summary"]}
            verdicts += [(seq, p, "not_in_force", v) for p, v in now_verdicts.items() if p not in seen]
        lines = self.tables["constraint_lines"]
        for e in result["constraints"]:
            value, limit, op = e["value"], e["limit"], e["operator"]
            lines.append(
                (
                    seq,
                    e["policy"],
                    e["criterion"],
                    e["rule_id"],
                    e["rule_version"],
                    e["structure"],
                    e["metric"],
                    e["status"],
                    value,
                    limit,
                    op,
                    e["unit"],
                    margin(value, limit, op),
                    bool(e["assumptions"]),
                    bool(e.get("fragile")),
                )
            )
        recs = self.tables["recommendations"]
        for r in result.get("recommendations") or ():
            recs.append((seq, r["rule_id"], r["rule_version"], r["status"]))

    def add_error(
        self,
        seq: int,
        source: str,
        problems: list[Problem],
        case_id: Any,
        cells: dict[str, tuple[str, str]],
    ) -> None:
        """One row per problem of a rejected record, with the column and cell it came from where known. A value the
        identifier screen refused (a case id or histology that looks like a record number, a date or a name) is
        not written: neither as the case id nor as the cell."""
        screened = {str(p.as_dict()["path"]) for p in problems if p.code == PRIVACY_CODE}
        cid = clean(case_id) if isinstance(case_id, str) and "case_id" not in screened else None
        for p in problems:
            d = p.as_dict()
            column, value = cells.get(str(d["path"]), cells.get("", ("", "")))
            if str(d["path"]) in screened:
                value = ""
            self.tables["errors"].append(
                (
                    seq,
                    clean(source),
                    clean(p.file),
                    p.line,
                    clean(column) or None,
                    clean(d["path"]),
                    p.code,
                    clean(value) if value else None,
                    clean(p.message),
                    clean(p.accepted),
                    cid,
                )
            )

    def write(self, directory: Path, prefix: str) -> dict[str, int]:
        """JSON files of at most SLICE_ROWS rows per non-empty table (``{column: [values]}``, named
        ``PREFIX.TABLE.NNNN.json``, see ``part_files``); returns the row count of each table."""
        counts = {}
        for name, rows in self.tables.items():
            counts[name] = len(rows)
            columns = [c for c, _ in TABLES[name]]
            for k, start in enumerate(range(0, len(rows), SLICE_ROWS)):
                piece = rows[start : start + SLICE_ROWS]
                data = dict(zip(columns, map(list, zip(*piece, strict=True)), strict=True))
                (directory / f"{prefix}.{name}.{k:04d}.json").write_bytes(_dumps(data))
        return counts


def part_files(directory: Path, prefix: str, table: str) -> list[Path]:
    """A chunk's files of one table, in row order."""
    return sorted(directory.glob(f"{prefix}.{table}.[0-9][0-9][0-9][0-9].json"))


def _dumps(obj: Any) -> bytes:
    if _orjson is not None:
        return bytes(_orjson.dumps(obj))
    import json

    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()  # pragma: no cover


def _dumps_text(doc: Any) -> str:
    if _orjson is not None:
        return str(_orjson.dumps(doc).decode())
    import json

    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))  # pragma: no cover
