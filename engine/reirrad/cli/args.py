"""Argument types shared by the ``reirrad`` subcommands: each refuses a bad value with a message argparse prints
(exit code 2, no traceback); and the ``--rules DIR`` option, which refuses a pack that fails ``rules check``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reirrad.errors import InputError, Problem

if TYPE_CHECKING:
    from reirrad.knowledge.rulepack import RulePack

__all__ = ["ALLOW_UNCHECKED", "PackChoice", "add_rules_options", "iso_date", "pack_from_args", "whole_number"]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
ALLOW_UNCHECKED = "--allow-unchecked-pack"


def iso_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD, and only so (``date.fromisoformat`` also reads 20240101 and the ISO
    week date 2024-W01-1 on Python 3.11 and later)."""
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
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


def add_rules_options(parser: argparse.ArgumentParser) -> None:
    """``--rules DIR`` and ``--allow-unchecked-pack``."""
    parser.add_argument(
        "--rules",
        type=Path,
        default=None,
        help="a rule pack directory (default: the bundled pack); refused when `reirrad rules check` finds an "
        "error in it",
    )
    parser.add_argument(
        ALLOW_UNCHECKED,
        action="store_true",
        help="use a --rules pack although `reirrad rules check` finds errors in it; the output then says so",
    )


@dataclass(frozen=True)
class PackChoice:
    """The pack a command evaluates with (None: the bundled one) and the check errors overridden to use it."""

    pack: RulePack | None
    overridden: tuple[dict[str, Any], ...] = ()

    def unchecked(self) -> dict[str, Any] | None:
        """The additive ``rule_pack.unchecked`` field of the output, or None when the pack passed its check."""
        if not self.overridden:
            return None
        return {"allowed_by": ALLOW_UNCHECKED, "errors": list(self.overridden)}


def pack_from_args(args: argparse.Namespace) -> PackChoice:
    """Load ``--rules DIR`` after ``rules check``: its errors refuse the pack (exit 2), unless
    ``--allow-unchecked-pack`` is given, when they are returned to be printed with the output."""
    if args.rules is None:
        return PackChoice(None)
    from reirrad.knowledge.rulepack import load_pack
    from reirrad.maint.lint import check_pack, errors  # the linter only for a --rules pack

    found = errors(check_pack(args.rules))
    if found and not args.allow_unchecked_pack:
        raise InputError.of(
            Problem(
                d.file,
                (),
                f"the rule pack fails `reirrad rules check`: {d.code} {d.message}",
                f"a pack that passes `reirrad rules check`; or {ALLOW_UNCHECKED} to use it anyway, marked "
                "as unchecked in the output",
                d.line,
                code="pack.unchecked",
            )
            for d in found
        )
    pack = load_pack(args.rules)
    return PackChoice(
        pack,
        tuple(
            {"code": d.code, "file": d.file, "line": d.line, "message": d.message}
            for d in (found if args.allow_unchecked_pack else [])
        ),
    )
