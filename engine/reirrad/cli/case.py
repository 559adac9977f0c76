"""``reirrad case new|check``: assemble a case from importer outputs and hand-written parts; validate cases."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from reirrad.cli.args import whole_number
from reirrad.cli.exits import Exit

__all__ = ["add_case_parser"]


def _new(args: argparse.Namespace) -> int:
    from reirrad.importers.assemble import CaseRequest, assemble_case, read_parts

    priors, planned, lesion_parts, patient_parts = read_parts(
        [*(args.prior or []), args.planned, args.lesion or [], args.patient or []], len(args.prior or [])
    )
    lesion = {
        key: value
        for key, value in (
            ("bilsky_grade", args.bilsky),
            ("sins", args.sins),
            ("recurrence", args.recurrence),
        )
        if value is not None
    }
    request = CaseRequest(
        args.id,
        args.level or [],
        priors=priors,
        planned=planned,
        lesion=lesion,
        lesion_parts=lesion_parts,
        patient_parts=patient_parts,
    )
    _, text = assemble_case(request)
    sys.stdout.write(text)
    return Exit.OK


def _check(args: argparse.Namespace) -> int:
    from reirrad.errors import InputError
    from reirrad.importers.assemble import check_cases, summary_of

    valid, problems = check_cases(args.case)
    for path, case in valid:
        print(f"{path}: {summary_of(case)}")
    if problems:
        raise InputError.of(problems)
    return Exit.OK


def add_case_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``case`` with ``new`` and ``check`` to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "case",
        help="assemble a case from imported courses (case new), or validate case files (case check)",
        description="Assemble a case from the courses `reirrad import` printed (or courses written by hand), "
        "or validate case files. Problems exit with status 2, each with its file, line and field.",
    )
    sub = parser.add_subparsers(dest="case_command", required=True, metavar="{new,check}")
    new = sub.add_parser(
        "new",
        help="assemble a case (YAML on stdout) from course files",
        description="Assemble a case from course files and print it as YAML. Give one --prior per prior "
        "course and one --planned; several files after one --prior (or --planned) are parts of one course, "
        "merged key by key (e.g. a FHIR course summary and the DVH export of its plan); a key two parts give "
        "must agree. The whole case is validated as `reirrad evaluate` would; every problem names the part file "
        "and line it came from.",
    )
    new.add_argument(
        "--id", required=True, metavar="ID", help="pseudonymous case id (letters, digits, . _ -)"
    )
    new.add_argument(
        "--level",
        action="append",
        metavar="LEVEL",
        help="vertebral level (repeatable), e.g. T9",
    )
    new.add_argument("--bilsky", choices=["0", "1a", "1b", "1c", "2", "3"], help="Bilsky grade")
    new.add_argument("--sins", type=whole_number(0), metavar="N", help="SINS total (0-18)")
    new.add_argument("--recurrence", choices=["in_field", "marginal", "out_of_field"])
    new.add_argument(
        "--prior",
        action="append",
        nargs="+",
        metavar="FILE",
        help="a prior course: one or more YAML files merged (repeat --prior for each course)",
    )
    new.add_argument(
        "--planned",
        required=True,
        nargs="+",
        metavar="FILE",
        help="the planned course: one or more YAML files",
    )
    new.add_argument("--lesion", nargs="+", metavar="FILE", help="YAML file(s) of further lesion fields")
    new.add_argument(
        "--patient", nargs="+", metavar="FILE", help="YAML file(s) of patient fields (no identity)"
    )
    new.set_defaults(func=_new)
    check = sub.add_parser(
        "check",
        help="validate case files, listing every problem",
        description="Validate case files as `reirrad evaluate` would, without evaluating: a line per valid "
        "file on stdout, every problem of the others on stderr (status 2).",
    )
    check.add_argument("case", nargs="+", metavar="CASE", help="case file(s) (YAML, reirrad/case/v1)")
    check.set_defaults(func=_check)
    return parser
