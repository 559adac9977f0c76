"""Auditing practice at scale: a cohort through the engine, resumable, in parallel, summarised (docs/audit.md)."""

from reirrad.audit.runner import AuditOptions, AuditOutcome, run_audit

__all__ = ["AuditOptions", "AuditOutcome", "run_audit"]
