"""``reirrad evaluate CASE``: one case against every rule in force, as text, markdown, JSON or a FHIR Bundle."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.cli.args import add_rules_options, iso_date, pack_from_args
from reirrad.cli.exits import Exit
from reirrad.vocabulary import METRICS

__all__ = ["add_evaluate_parser"]


def _evaluate(args: argparse.Namespace) -> int:
    from reirrad.case import load_case
    from reirrad.evaluate import Evaluator
    from reirrad.explain.report import render_markdown, render_text

    as_of = args.as_of or date.today()
    case = load_case(args.case, as_of=as_of)  # a refused case is reported before the pack is loaded
    choice = pack_from_args(args)
    evaluator = Evaluator(choice.pack, as_of=as_of, engine=args.engine, reading=args.reading)
    result = evaluator.evaluate(case)
    unchecked = choice.unchecked()
    if unchecked is not None:
        result["rule_pack"]["unchecked"] = unchecked
    if args.metric:
        from reirrad.explain.results import for_metrics

        result = for_metrics(result, args.metric)
    if args.format == "fhir":
        from reirrad.service.engine import case_to_data
        from reirrad.service.fhir import result_to_fhir

        bundle = result_to_fhir(result, case_to_data(case))
        sys.stdout.write(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")
    elif args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(result))
    else:
        sys.stdout.write(render_text(result))
    return Exit.OK


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to the ``reirrad`` parser; its func returns the exit code."""
    ev: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate", help="evaluate one case file against every policy in the rule pack"
    )
    ev.add_argument("case", type=Path, help="a case file (YAML, format reirrad/case/v1)")
    ev.add_argument(
        "--format",
        choices=["text", "json", "markdown", "fhir"],
        default="text",
        help="fhir: a FHIR R4 Bundle (GuidanceResponse, a DetectedIssue per failed criterion); needs reirrad[import]",
    )
    ev.add_argument(
        "--as-of", type=iso_date, default=None, help="use the rules in force on this date (default: today)"
    )
    add_rules_options(ev)
    ev.add_argument(
        "--engine",
        choices=["durable", "oracle"],
        default="durable",
        help="durable-rules (default) or the plain-Python oracle used to check it",
    )
    ev.add_argument(
        "--reading",
        metavar="NAME",
        default=None,
        help="evaluate under another reading the sources allow (a file of rules/readings/, e.g. "
        "hytec-cumulative-strict); the output says so",
    )
    ev.add_argument(
        "--metric",
        choices=METRICS,
        action="append",
        metavar="METRIC",
        help="show only the lines on this metric (repeatable), as limits --metric does",
    )
    ev.set_defaults(func=_evaluate, quick_exit=True)
    return ev
