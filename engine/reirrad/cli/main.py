"""The ``reirrad`` command: one parser, one table of exit codes, every refusal printed without a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from reirrad.cli.audit import add_audit_parser, add_synth_parser
from reirrad.cli.case import add_case_parser
from reirrad.cli.evaluate import add_evaluate_parser
from reirrad.cli.exits import Exit
from reirrad.cli.explain import add_explain_parser
from reirrad.cli.feedback import add_feedback_parser
from reirrad.cli.importers import add_import_parser
from reirrad.cli.limits import add_limits_parser
from reirrad.cli.rules import add_rules_parser
from reirrad.cli.serve import add_serve_parser
from reirrad.errors import EngineError, InputError

__all__ = ["build_parser", "main"]


class _Version(argparse.Action):
    """``--version``: the tool's version and which rule pack a bare command loads (the checkout's or the bundled)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from reirrad.knowledge.rulepack import describe_default_pack
        from reirrad.load.paths import tool_version

        parser.exit(message=f"reirrad {tool_version()}\n{describe_default_pack()}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reirrad", description="Explainable guideline engine for re-irradiation of spinal metastases."
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version and the rule pack a command uses, then exit"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_evaluate_parser(sub)
    add_limits_parser(sub)
    add_audit_parser(sub)
    add_synth_parser(sub)
    add_import_parser(sub)
    add_case_parser(sub)
    add_rules_parser(sub)
    add_serve_parser(sub)
    add_feedback_parser(sub)
    add_explain_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code = _run(args)
    if argv is None and getattr(args, "quick_exit", False):
        _quick_exit(code)
    return code


def _quick_exit(code: int) -> None:
    """End a one-shot command that writes only to standard output and error (``evaluate``, ``limits``) without the
    interpreter's teardown of every module and object, about 0.1 s of its start-up: the output is flushed first,
    and the command holds no other file, thread or temporary state. Only when run as a program (``argv`` None):
    a caller of ``main`` keeps its process."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem.render()}", file=sys.stderr)
        return Exit.INPUT
    except EngineError as exc:
        print(f"internal error: {exc} — no verdict was produced; please report it.", file=sys.stderr)
        return Exit.INTERNAL
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    except BrokenPipeError:
        return Exit.OK
