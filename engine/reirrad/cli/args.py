"""Argument types shared by the ``reirrad`` subcommands: each refuses a bad value with a message argparse prints
(exit code 2, no traceback)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date

__all__ = ["iso_date", "whole_number"]


def iso_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; write YYYY-MM-DD") from None


def whole_number(minimum: int) -> Callable[[str], int]:
    """A whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} is not ≥ {minimum}")
        return value

    return parse
