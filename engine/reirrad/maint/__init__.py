"""Maintaining the rule pack: lint, test coverage, semantic diff, release lock and generated documentation."""

from __future__ import annotations

__all__ = ["cli", "diff", "docsgen", "lint", "lock", "testrun", "versions"]
