"""The exit codes of every ``reirrad`` subcommand: one table."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Exit"]


class Exit(IntEnum):
    OK = 0
    """Done: evaluated, imported, written, or a check found nothing wrong."""
    FINDINGS = 1
    """A maintenance check ran and found problems (``rules check``, ``rules test``, ``rules diff`` with errors)."""
    INPUT = 2
    """The input was refused: every problem printed with its file, line, field and what is accepted."""
    INTERNAL = 3
    """The engine did something an evaluation cannot trust; no verdict was produced."""
    INTERRUPTED = 130
    """Stopped by the user (Ctrl-C), as a shell reports SIGINT."""
