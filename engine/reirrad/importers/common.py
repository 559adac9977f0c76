"""What every importer shares: course options, merging file values with options, metrics, YAML output."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from reirrad.case import METRICS, case_problems
from reirrad.errors import InputError, Problem

__all__ = [
    "MAX_INPUT_BYTES",
    "METRIC_VOLUMES_CC",
    "TECHNIQUES",
    "CourseOptions",
    "ImportRefused",
    "ImportResult",
    "assemble_course",
    "check_regular_file",
    "ordered_metrics",
    "read_bytes",
    "render",
    "require",
    "target_notes",
    "validate_course",
]

TECHNIQUES = ("2D", "3DCRT", "IMRT", "VMAT", "SBRT", "SRS", "other")
METRIC_VOLUMES_CC = {"D0.03cc": 0.03, "D0.1cc": 0.1, "D1cc": 1.0}
"""The near-max volumes the case format accepts, in cm³ (Dmax is the point maximum)."""

DOSE_DECIMALS = 2
"""Doses are written to 0.01 Gy: finer than any limit in the rule pack, coarser than the methods."""


MAX_INPUT_BYTES = 1 << 30
"""A larger input file is refused before it is read (the largest RT Dose of a whole-body grid is ~200 MB)."""


@dataclass
class ImportRefused(InputError):
    """An importer's refusal, with the warnings gathered before it (the CLI prints them before the errors)."""

    warnings: list[str] = field(default_factory=list)

    @classmethod
    def gathered(cls, problems: Sequence[Problem], warnings: Sequence[str]) -> ImportRefused:
        ordered = InputError.of(problems).problems
        return cls(ordered, list(warnings))


@dataclass
class ImportResult:
    """A course in the case format, what was done to get it (YAML comments), and what the user must check."""

    course: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CourseOptions:
    """Course fields a user may give on the command line when the files do not carry them."""

    technique: str | None = None
    start: str | None = None
    end: str | None = None
    planned: bool = False
    prescription: float | None = None
    fractions: int | None = None

    course_file: str | None = None
    """A course file (an earlier import, e.g. of the FHIR course summary) that gave some fields above."""
    from_course: frozenset[str] = frozenset()
    """The fields the course file gave (not an option)."""

    def with_course_file(self, path: str) -> CourseOptions:
        """These options completed from a course file (technique, dates, prescription); a field both give
        differently is refused."""
        from reirrad.load.yamlio import load_yaml_file

        check_regular_file(path, 10_000_000)
        data, lines = load_yaml_file(Path(path))
        if not isinstance(data, dict):
            raise InputError.of(
                [
                    Problem(
                        path, (), "is not a course (a mapping)", "the output of reirrad import", code="course"
                    )
                ]
            )
        found = data.get("prescription")
        prescription: dict[str, Any] = found if isinstance(found, dict) else {}
        scale = 0.01 if data.get("unit") == "cGy" else 1.0
        dose = prescription.get("dose")
        given = {
            "technique": data.get("technique"),
            "start": data.get("start"),
            "end": data.get("end"),
            "prescription": dose * scale
            if isinstance(dose, int | float) and not isinstance(dose, bool)
            else None,
            "fractions": prescription.get("fractions"),
        }
        problems = []
        merged: dict[str, Any] = {}
        for name, from_file in given.items():
            option = getattr(self, name)
            if option is not None and from_file is not None and not _same(option, from_file):
                problems.append(
                    Problem(
                        path,
                        (name,)
                        if name in ("technique", "start", "end")
                        else ("prescription", name.replace("prescription", "dose")),
                        f"--{name} {option} contradicts the course file, which gives {from_file}",
                        accepted=f"leave --{name} out, or correct the file",
                        line=lines.get((name,)),
                        code="conflict",
                    )
                )
            merged[name] = option if option is not None else from_file
        if problems:
            raise InputError.of(problems)
        taken = frozenset(n for n, v in given.items() if v is not None and getattr(self, n) is None)
        return CourseOptions(planned=self.planned, course_file=path, from_course=taken, **merged)


def require(module: str, command: str) -> Any:
    """Import an optional dependency, or refuse with how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError.of(
            [
                Problem(
                    f"reirrad import {command}",
                    (),
                    f"needs the Python package '{module}', which is not installed",
                    accepted="pip install 'reirrad[import]'",
                    code="dependency",
                )
            ]
        ) from None


def check_regular_file(path: str | Path, limit: int = MAX_INPUT_BYTES) -> None:
    """Refuse what is not a regular file of a sane size (a FIFO, /dev/zero, a directory) before reading it."""
    import stat

    try:
        info = Path(path).stat()
    except FileNotFoundError:
        raise InputError.of(
            [Problem(str(path), (), "file not found", accepted="an existing file", code="io")]
        ) from None
    except OSError as exc:
        raise InputError.of([Problem(str(path), (), f"cannot be read: {exc.strerror}", code="io")]) from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError.of([Problem(str(path), (), "is a directory", accepted="a file", code="io")])
    if not stat.S_ISREG(info.st_mode):
        raise InputError.of(
            [Problem(str(path), (), "is not a regular file (a device, pipe or socket)", "a file", code="io")]
        )
    if info.st_size > limit:
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    f"is {info.st_size / 1e6:.0f} MB, larger than an input of this kind can be",
                    accepted=f"at most {limit / 1e6:.0f} MB",
                    code="io.size",
                )
            ]
        )


def read_bytes(path: str | Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The content of an input file (a regular file, at most ``limit`` bytes), or an InputError naming it."""
    check_regular_file(path, limit)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError.of(
            [Problem(str(path), (), "file not found", accepted="an existing file", code="io")]
        ) from None
    except IsADirectoryError:
        raise InputError.of(
            [Problem(str(path), (), "is a directory", accepted="a file", code="io")]
        ) from None
    except OSError as exc:
        raise InputError.of([Problem(str(path), (), f"cannot be read: {exc.strerror}", code="io")]) from None


def _valid_date(text: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return _close(float(a), float(b))
    return bool(a == b)


def _merge(
    name: str, flag: str, from_file: Any, source: str, option: Any, file: str, problems: list[Problem]
) -> Any:
    """A field from the files, or from its option when the files lack it; a disagreement is refused."""
    if from_file is None:
        return option
    if option is None:
        return from_file
    if not _same(from_file, option):
        problems.append(
            Problem(
                file,
                (name,),
                f"{flag} {option} contradicts {source}, which gives {from_file}",
                accepted=f"leave {flag} out, or correct the file"
                if flag.startswith("-")
                else "correct one of the two files",
                code="conflict",
            )
        )
    return from_file


def assemble_course(
    file: str,
    options: CourseOptions,
    *,
    start: str | None = None,
    end: str | None = None,
    technique: str | None = None,
    dose_gy: float | None = None,
    fractions: int | None = None,
    sources: dict[str, str] | None = None,
    structures: dict[str, dict[str, float]] | None = None,
    structures_required: bool = True,
    files: Mapping[str, str] | None = None,
    earlier: Sequence[Problem] = (),
    skip_missing: Sequence[str] = (),
    ptv_high_dmin: float | None = None,
) -> dict[str, Any]:
    """Build a prior or planned course from what the files gave and what the options add; refuse gaps.

    ``sources`` names, per field, where the file value came from, and ``files`` which file gave it (for
    conflict messages; ``file`` otherwise). ``earlier`` are the problems the importer found before: they are
    raised together with every missing or contradicting option, so that one run lists them all. A field in
    ``skip_missing`` is not reported missing (an earlier problem already says why it is absent).
    A planned course needs structures unless ``structures_required`` is False (FHIR, which warns instead).
    """
    sources = sources or {}
    files = files or {}
    problems: list[Problem] = list(earlier)

    def merge(name: str, from_file: Any, option: Any) -> Any:
        return _merge(
            name,
            f"{options.course_file}'s {name}" if name in options.from_course else f"--{name}",
            from_file,
            sources.get(name, "the file"),
            option,
            files.get(name, file),
            problems,
        )

    start = merge("start", start, options.start)
    end = merge("end", end, options.end)
    technique = merge("technique", technique, options.technique)
    dose_gy = merge("prescription", dose_gy, options.prescription)
    fractions = merge("fractions", fractions, options.fractions)
    missing = {
        "start": (start, "--start YYYY-MM-DD"),
        "technique": (technique, "--technique " + "|".join(TECHNIQUES)),
        "prescription": (dose_gy, "--prescription GY (total dose of the course, in Gy)"),
        "fractions": (fractions, "--fractions N"),
    }
    if not options.planned:
        missing["end"] = (end, "--end YYYY-MM-DD (or a treatment record)")
    for name, (value, how) in missing.items():
        if value is None and name not in skip_missing:
            problems.append(
                Problem(
                    file,
                    (name,),
                    f"the input does not give the course's {name}",
                    accepted=how,
                    code="missing",
                )
            )
    for name, value in (("start", start), ("end", end)):
        if value is not None and not _valid_date(str(value)):
            problems.append(
                Problem(
                    file, (name,), f"'{value}' is not a calendar date", accepted="YYYY-MM-DD", code="date"
                )
            )
    if options.planned and end is not None:
        problems.append(
            Problem(
                file,
                ("end",),
                "a planned course has no end date",
                accepted="leave --end out and give no treatment record for a planned course",
                code="planned",
            )
        )
    if technique is not None and technique not in TECHNIQUES:
        problems.append(
            Problem(
                file,
                ("technique",),
                f"unknown technique '{technique}'",
                accepted=", ".join(TECHNIQUES),
                code="technique",
            )
        )
    if dose_gy is not None and not dose_gy > 0:
        problems.append(
            Problem(
                file,
                ("prescription",),
                f"prescription {dose_gy:g} Gy is not a positive dose",
                accepted="a total dose > 0 Gy",
                code="prescription",
            )
        )
    if fractions is not None and (
        isinstance(fractions, bool) or int(fractions) != fractions or fractions < 1
    ):
        problems.append(
            Problem(
                file,
                ("fractions",),
                f"{fractions} is not a number of fractions",
                accepted="a whole number ≥ 1",
                code="fractions",
            )
        )
    if options.planned and not structures and structures_required and not earlier:
        problems.append(
            Problem(
                file,
                ("structures",),
                "a planned course needs organ doses, and none were imported",
                accepted="an input with the cord (or thecal sac) DVH",
                code="planned",
            )
        )
    if problems:
        raise InputError.of(problems)
    course: dict[str, Any] = {"start": start}
    if not options.planned:
        course["end"] = end
    course["technique"] = technique
    course["prescription"] = {"dose": _round(float(dose_gy)), "fractions": int(fractions)}
    course["unit"] = "Gy"
    if ptv_high_dmin is not None and options.planned:
        course["ptv_high_dmin"] = _round(ptv_high_dmin)
    if structures:
        course["structures"] = structures
    validate_course(course, file, planned=options.planned)
    return course


_PLACEHOLDER_PLANNED: dict[str, Any] = {
    "technique": "SBRT",
    "prescription": {"dose": 24, "fractions": 1},
    "structures": {"SpinalCord": {"Dmax": 0}},
}


def validate_course(course: dict[str, Any], file: str, *, planned: bool) -> None:
    """Refuse an imported course that the case format would refuse: it is validated by the case format's own
    checks (schema, models, plausibility) inside a minimal case, before anything is printed.

    A planned course imported without organ doses (FHIR) is checked with a placeholder for them; the other
    parts of the minimal case are placeholders too, and only problems of the course itself are reported.
    """
    if planned:
        body = dict(course)
        body.setdefault("structures", _PLACEHOLDER_PLANNED["structures"])
        doc: dict[str, Any] = {"prior_courses": [], "planned_course": body}
        base: tuple[str | int, ...] = ("planned_course",)
    else:
        anchor = course.get("end") if _valid_date(str(course.get("end"))) else course.get("start")
        placeholder = {"start": anchor if _valid_date(str(anchor)) else "2000-01-01", **_PLACEHOLDER_PLANNED}
        doc = {"prior_courses": [course], "planned_course": placeholder}
        base = ("prior_courses", 0)
    case = {"schema": "reirrad/case/v1", "case_id": "import-check", "lesion": {"levels": ["T1"]}, **doc}
    _, found = case_problems(case, {}, file)
    problems = [
        Problem(
            file,
            ("course", *p.path[len(base) :]),
            f"the imported course is not valid: {p.message}",
            accepted=p.accepted,
            code="import.invalid",
        )
        for p in found
        if p.path[: len(base)] == base
    ]
    if problems:
        raise InputError.of(problems)


def _round(value: float) -> float:
    out = round(value, DOSE_DECIMALS)
    return out + 0.0


def ordered_metrics(values: dict[str, float | None]) -> dict[str, float]:
    """The metrics in the case format's order, rounded to 0.01 Gy, leaving out those not available.

    Rounding is monotone, so Dmax ≥ D0.03cc ≥ D0.1cc ≥ D1cc survives it.
    """
    return {m: _round(v) for m in METRICS if (v := values.get(m)) is not None}


def render(result: ImportResult) -> str:
    """The YAML a user pastes into a case: the notes as comments, then the course."""
    head = "".join(f"# {line}\n" for note in result.notes for line in note.splitlines())
    body: str = yaml.safe_dump(result.course, sort_keys=False, allow_unicode=True, default_flow_style=None)
    return head + body


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def listing(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def target_notes(
    options: CourseOptions, found: Sequence[str], file: str, notes: list[str], warnings: list[str]
) -> None:
    """Say what became of a PTV_High ROI: its minimum dose is a planned course's ``ptv_high_dmin`` only."""
    if found and not options.planned:
        notes.append(
            f"ROI '{found[0]}' (PTV_High) not used: a prior course has no ptv_high_dmin (the coverage advisory "
            "reads the planned course's)."
        )
    elif options.planned and not found:
        warnings.append(
            f"{file}: no PTV_High ROI (map one under 'targets', or --roi PTV_High=ROI): ptv_high_dmin not "
            "imported, and the coverage advisory will be indeterminate"
        )
