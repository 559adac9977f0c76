"""``reirrad feedback report``: per rule and version, how often it fired, was accepted, overridden, and why."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reirrad.cli.exits import Exit
from reirrad.errors import InputError, Problem

__all__ = ["add_feedback_parser", "render_report"]


def render_report(tallies: list[Any], markdown: bool = False) -> str:
    """The tallies as a text or markdown table, the reasons under each rule."""
    if not tallies:
        return "No feedback recorded.\n"
    head = ["rule", "version", "fired", "accepted", "overridden", "disagreed"]
    rows = [
        [t.rule_id, t.rule_version, str(t.fired), str(t.accepted), str(t.overridden), str(t.disagreed)]
        for t in tallies
    ]
    out: list[str] = []
    if markdown:
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        out += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=False)]
        out.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    reasons = [(t, r, n) for t in tallies for r, n in sorted(t.reasons.items(), key=lambda x: -x[1])]
    if reasons:
        out += ["", "## Reasons" if markdown else "Reasons:"]
        out += [f"- {t.rule_id} {t.rule_version}: {r} ({n}×)" for t, r, n in reasons]
    return "\n".join(out) + "\n"


def _report(args: argparse.Namespace) -> int:
    from reirrad.service.feedback import DB_NAME, FeedbackStore

    if not (args.data / DB_NAME).is_file():
        raise InputError.of(
            [
                Problem(
                    str(args.data / DB_NAME),
                    (),
                    "no feedback store here",
                    "the --data folder a `reirrad serve` wrote to",
                    code="io",
                )
            ]
        )
    tallies = FeedbackStore(args.data).report()
    if args.format == "json":
        sys.stdout.write(
            json.dumps({"rules": [t.as_dict() for t in tallies]}, indent=2, ensure_ascii=False) + "\n"
        )
    else:
        sys.stdout.write(render_report(tallies, markdown=args.format == "markdown"))
    return Exit.OK


def add_feedback_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``feedback report`` to the ``reirrad`` parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "feedback", help="what clinicians did with the rules' findings (from reirrad serve's store)"
    )
    sub = p.add_subparsers(dest="feedback_command", required=True)
    r = sub.add_parser(
        "report",
        help="per rule and version: fired, accepted, overridden, disagreed, and the reasons",
        description="Per rule and version, how often it flagged something (a limit exceeded or undecided, a "
        "recommendation made), how often clinicians accepted or overrode the CDS card or disagreed on the page, "
        "and the reasons they gave. Cases are stored as hashes only.",
    )
    r.add_argument(
        "--data",
        type=Path,
        default=Path("reirrad-data"),
        help="the serve --data folder (default ./reirrad-data)",
    )
    r.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    r.set_defaults(func=_report)
    return p
