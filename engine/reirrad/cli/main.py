"""The ``reirrad`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from reirrad.cli.audit import add_audit_parser, add_synth_parser
from reirrad.cli.args import iso_date
from reirrad.errors import EngineError, InputError
from reirrad.cli.importers import add_import_parser
from reirrad.cli.limits import add_limits_parser
from reirrad.cli.rules import add_rules_parser

__all__ = ["main"]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3


def _evaluate(args: argparse.Namespace) -> int:
    from reirrad.case import load_case
    from reirrad.evaluate import Evaluator
    from reirrad.explain.report import render_markdown, render_text
    from reirrad.knowledge.rulepack import load_pack

    case = load_case(args.case)
    pack = load_pack(args.rules) if args.rules else None
    evaluator = Evaluator(pack, as_of=args.as_of, engine=args.engine)
    result = evaluator.evaluate(case)
    if args.format == "json":
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(result))
    else:
        sys.stdout.write(render_text(result))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reirrad", description="Explainable guideline engine for re-irradiation "
                                     "of spinal metastases.")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="evaluate one case file against every policy in the rule pack")
    ev.add_argument("case", type=Path, help="a case file (YAML, format reirrad/case/v1)")
    ev.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    ev.add_argument("--as-of", type=iso_date, default=None, help="use the rules in force on this date (default: today)")
    ev.add_argument("--rules", type=Path, default=None, help="a rule pack directory (default: the bundled pack)")
    ev.add_argument("--engine", choices=["durable", "oracle"], default="durable",
                    help="durable-rules (default) or the plain-Python oracle used to check it")
    ev.set_defaults(func=_evaluate)

    add_limits_parser(sub)
    add_audit_parser(sub)
    add_synth_parser(sub)
    add_import_parser(sub)
    add_rules_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem.render()}", file=sys.stderr)
        return EXIT_INPUT
    except EngineError as exc:
        print(f"internal error: {exc} — no verdict was produced; please report it.", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
