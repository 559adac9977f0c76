"""``reirrad import dicom|dvh|fhir``: print one course of the case format as YAML on stdout."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reirrad.cli.args import whole_number
from reirrad.cli.exits import Exit
from reirrad.vocabulary import TECHNIQUES

if TYPE_CHECKING:  # the importers load when an import command runs, not on every command's start-up
    from reirrad.importers.common import CourseOptions, ImportResult

__all__ = ["add_import_parser"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not > 0")
    return value


def _course_options(p: argparse.ArgumentParser, *, dose_options: bool = True) -> None:
    g = p.add_argument_group("course fields the files may lack (an option contradicting a file is an error)")
    g.add_argument("--technique", choices=TECHNIQUES, help="technique of the course")
    g.add_argument("--start", metavar="YYYY-MM-DD", help="first treatment (or planned start) date")
    g.add_argument("--end", metavar="YYYY-MM-DD", help="last treatment date (prior courses)")
    g.add_argument(
        "--planned", action="store_true", help="emit a planned course (no end date) instead of a prior one"
    )
    g.add_argument(
        "--course",
        metavar="FILE",
        help="take the fields the files lack from this course file (e.g. `reirrad import fhir` of the same "
        "course); an option or file value contradicting it is an error",
    )
    if dose_options:
        g.add_argument(
            "--prescription", type=_positive_float, metavar="GY", help="total prescribed dose in Gy"
        )
        g.add_argument("--fractions", type=whole_number(1), metavar="N", help="number of fractions")


def _structure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--map",
        metavar="FILE",
        help="structure map (YAML) replacing the bundled engine/importers/structure_map.yaml",
    )
    p.add_argument(
        "--roi",
        action="append",
        metavar="TG263=ROI",
        help='take a structure from this ROI, overriding the map (repeatable): --roi SpinalCord="Cord 2"',
    )


def _course_options_of(args: argparse.Namespace) -> CourseOptions:
    """The course fields given as options, completed from ``--course FILE`` when given."""
    from reirrad.importers.common import CourseOptions

    options = CourseOptions(
        technique=getattr(args, "technique", None),
        start=getattr(args, "start", None),
        end=getattr(args, "end", None),
        planned=bool(getattr(args, "planned", False)),
        prescription=getattr(args, "prescription", None),
        fractions=getattr(args, "fractions", None),
    )
    course = getattr(args, "course", None)
    return options.with_course_file(course) if course else options


def _keeping_warnings(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A refusal still prints the warnings gathered before it (then the errors, printed by main)."""

    @functools.wraps(run)
    def go(args: argparse.Namespace) -> int:
        from reirrad.importers.common import ImportRefused

        try:
            return run(args)
        except ImportRefused as exc:
            for warning in exc.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            raise

    return go


def _emit(result: ImportResult, options: CourseOptions | None = None) -> int:
    if options is not None and options.course_file:
        result.notes.append(f"Course fields the files do not give: from {options.course_file}.")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    from reirrad.importers.common import render

    sys.stdout.write(render(result))
    return Exit.OK


def _run_dicom(args: argparse.Namespace) -> int:
    from reirrad.importers.dicom import import_dicom
    from reirrad.importers.structure_map import load_structure_map, parse_roi_options

    options = _course_options_of(args)
    return _emit(
        import_dicom(
            args.rtdose,
            args.rtstruct,
            args.rtplan,
            args.record or (),
            options,
            load_structure_map(args.map),
            parse_roi_options(args.roi),
            args.resolution,
        ),
        options,
    )


def _run_dvh(args: argparse.Namespace) -> int:
    from reirrad.importers.eclipse import import_eclipse_dvh
    from reirrad.importers.structure_map import load_structure_map, parse_roi_options

    options = _course_options_of(args)
    return _emit(
        import_eclipse_dvh(
            args.file,
            options,
            load_structure_map(args.map),
            parse_roi_options(args.roi),
            plan=args.plan,
        ),
        options,
    )


def _run_fhir(args: argparse.Namespace) -> int:
    from reirrad.importers.fhir import import_fhir

    return _emit(
        import_fhir(args.bundle, _course_options_of(args), course_id=args.course_id, volume=args.volume)
    )


def add_import_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``import`` with ``dicom``, ``dvh`` and ``fhir`` to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "import",
        help="turn clinical files into a course of the case format (YAML on stdout)",
        description="Turn clinical files into one course of the case format, printed as YAML on stdout. "
        "Warnings go to stderr; problems with the input exit with status 2. See docs/importing.md.",
    )
    sub = parser.add_subparsers(dest="import_format", required=True, metavar="{dicom,dvh,fhir}")

    d = sub.add_parser(
        "dicom",
        help="RT Dose + RT Structure Set (+ RT Plan, treatment records)",
        description="Compute Dmax, D0.03cc, D0.1cc and D1cc of the mapped structures from an RT Dose "
        "and RT Structure Set; prescription and fractions from the RT Plan; dates from treatment records.",
    )
    d.add_argument("--rtdose", required=True, metavar="FILE", help="RT Dose (DoseUnits GY)")
    d.add_argument(
        "--rtstruct", required=True, metavar="FILE", help="RT Structure Set on the same frame of reference"
    )
    d.add_argument("--rtplan", metavar="FILE", help="RT Plan: prescription and number of fractions")
    d.add_argument(
        "--record",
        action="append",
        metavar="FILE",
        help="RT Beams Treatment Record or RT Treatment Summary Record (repeatable): treatment dates",
    )
    d.add_argument(
        "--resolution",
        type=_positive_float,
        metavar="MM",
        help="sampling cell size inside the contours, used as given or refused when a structure would need "
        "too much work at it (default 0.5 mm; a structure too large for the default is sampled at the finest "
        "size within the limits, with a warning)",
    )
    _structure_options(d)
    _course_options(d)
    d.set_defaults(func=_keeping_warnings(_run_dicom))

    v = sub.add_parser(
        "dvh",
        help="Eclipse DVH text export",
        description="Read an Eclipse DVH text export (cumulative or differential, cGy or Gy, plan or "
        "plan sum) and compute the near-max doses of the mapped structures.",
    )
    v.add_argument("file", metavar="FILE", help="the exported .txt file (UTF-8 or Windows-1252)")
    v.add_argument("--plan", metavar="NAME", help="which plan or plan sum, when the export holds several")
    _structure_options(v)
    _course_options(v)
    v.set_defaults(func=_keeping_warnings(_run_dvh))

    f = sub.add_parser(
        "fhir",
        help="FHIR bundle with an mCODE / CodeX radiotherapy course summary",
        description="Read dates, fractions, technique and prescription from an mCODE/CodeX "
        "RadiotherapyCourseSummary (or, with --planned, a RadiotherapyPlannedCourse). FHIR carries "
        "target doses, not organ doses: the course has no structures and a warning says so.",
    )
    f.add_argument("bundle", metavar="BUNDLE", help="FHIR R4 Bundle, JSON")
    f.add_argument(
        "--course-id", metavar="ID", help="which course (resource id or identifier value) when several"
    )
    f.add_argument(
        "--volume", metavar="NAME", help="which treated volume gives the prescription, when several differ"
    )
    _course_options(f, dose_options=False)
    f.set_defaults(func=_keeping_warnings(_run_fhir))
    return parser
