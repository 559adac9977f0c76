"""``reirrad limits CASE``: the largest planned cord / thecal sac dose each policy allows, by number of fractions."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.case import METRICS, STRUCTURE_NAMES
from reirrad.cli.args import add_rules_options, iso_date, pack_from_args, whole_number
from reirrad.cli.exits import Exit

__all__ = ["add_limits_parser", "run_limits"]


def run_limits(args: argparse.Namespace) -> int:
    from reirrad.case import load_case
    from reirrad.dose.limits import derive_limits
    from reirrad.explain.limits import render_html, render_markdown, render_text
    from reirrad.explain.report import unchecked_line
    from reirrad.knowledge.data import load_table
    from reirrad.knowledge.readings import apply_reading
    from reirrad.knowledge.rulepack import load_pack

    as_of = args.as_of or date.today()
    case = load_case(args.case, as_of=as_of)
    choice = pack_from_args(args)
    full = choice.pack or load_pack()
    pack = full.select(as_of)
    if args.reading:
        from reirrad.evaluate import reading_of

        reading = reading_of(full, args.reading)
        pack = apply_reading(pack, reading)
    table = load_table(full.root)
    report = derive_limits(
        case,
        pack,
        table=table,
        fractions=args.fractions,
        structures=args.structure,
        metrics=args.metric,
        candidates=True,
        stereotactic=None if args.technique is None else args.technique == "sbrt",
    )
    unchecked = choice.unchecked()
    if args.format == "json":
        data: dict[str, Any] = report.as_dict()
        if unchecked is not None:
            data["pack"]["unchecked"] = unchecked
        sys.stdout.write(
            json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default) + "\n"
        )
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(report))
    elif args.format == "html":
        sys.stdout.write(render_html(report))
    else:
        if unchecked is not None:
            sys.stdout.write(unchecked_line(unchecked) + "\n")
        sys.stdout.write(render_text(report))
    return Exit.OK


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON serialisable: {value!r}")


def add_limits_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``limits`` sub-command to the ``reirrad`` parser; its func returns the exit code."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "limits",
        help="the largest planned cord / thecal sac dose each policy allows, for 1-5 fractions",
        description="For every cord dose policy in force, the largest planned near-maximum dose to the cord or "
        "thecal sac (physical Gy, whole new course) it allows given the case's earlier courses and "
        "interval, by number of fractions, with the criterion that binds and the published table cell.",
    )
    p.add_argument("case", type=Path, help="a case file (YAML, format reirrad/case/v1)")
    p.add_argument(
        "--format",
        choices=["text", "json", "markdown", "html"],
        default="text",
        help="markdown and html carry a chart (SVG) of the largest dose against the number of fractions",
    )
    p.add_argument(
        "--reading",
        metavar="NAME",
        default=None,
        help="derive under another reading (a file of rules/readings/)",
    )
    p.add_argument(
        "--technique",
        choices=["sbrt", "conventional"],
        default=None,
        help="derive for this technique (default: the planned course's; before planning, SBRT)",
    )
    p.add_argument(
        "--as-of", type=iso_date, default=None, help="use the rules in force on this date (default: today)"
    )
    add_rules_options(p)
    p.add_argument(
        "--fractions",
        type=whole_number(1),
        action="append",
        metavar="N",
        help="derive for this number of fractions (repeatable; default: 1-5 and the table's schedules)",
    )
    p.add_argument(
        "--structure",
        choices=STRUCTURE_NAMES,
        action="append",
        metavar="NAME",
        help="derive for this structure only (repeatable; default: the policy's structures the case "
        "gives a dose for)",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        action="append",
        metavar="METRIC",
        help="derive for this metric only (repeatable; default: those the plan gives)",
    )
    p.set_defaults(func=run_limits, quick_exit=True)
    return p
