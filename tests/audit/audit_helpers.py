"""Helpers for the audit tests: run an audit in this process, read its database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from reirrad.audit.runner import AuditOptions, AuditOutcome, run_audit

AS_OF = "2025-10-01"


def audit(cohort: Path, out: Path, **kw: Any) -> AuditOutcome:
    kw.setdefault("workers", 0)
    kw.setdefault("as_of", AS_OF)
    kw.setdefault("chunk_cases", 7)
    return run_audit(AuditOptions(cohort=cohort, out=out, **kw))


def query(out: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(out / "audit.duckdb"), read_only=True)
    try:
        return list(con.execute(sql, params or []).fetchall())
    finally:
        con.close()


def accounted(out: Path) -> list[tuple[int, str]]:
    """(seq, 'case' | 'error') of every record in the tables, in order."""
    return query(
        out,
        "SELECT seq, 'case' FROM cases UNION ALL SELECT DISTINCT seq, 'error' FROM errors ORDER BY 1",
    )
