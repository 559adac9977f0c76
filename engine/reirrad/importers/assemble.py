"""A whole case from its parts: importer outputs or hand-written courses, merged, validated, printed as YAML.

Each course is given as one or more YAML files (``reirrad import`` outputs, or courses written by hand). Several
files for one course are merged key by key (a FHIR course summary gives the dates and the prescription, a DVH
export the organ doses); a key that two files give must agree. The assembled case is validated by the case
format's own checks, and every problem is reported against the part file (and line) that gave the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reirrad.case import Case, case_problems, load_case
from reirrad.errors import InputError, Problem
from reirrad.importers.common import check_regular_file
from reirrad.load.yamlio import LineMap, load_yaml_file

__all__ = ["CasePart", "CaseRequest", "assemble_case", "check_cases", "read_part", "read_parts", "summary_of"]

OPTIONS = "reirrad case new"
"""How problems with the command's own options name their 'file'."""
_COURSE_ORDER = (
    "start",
    "end",
    "technique",
    "prescription",
    "unit",
    "dosimetry",
    "tolerance",
    "ptv_high_dmin",
    "structures",
)


@dataclass(frozen=True)
class CasePart:
    """One YAML file of a course (or of the patient or lesion): its data, lines and leading comments."""

    file: str
    data: dict[str, Any]
    lines: LineMap
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CaseRequest:
    """What ``reirrad case new`` was asked: identifiers, lesion and patient fields, and the course parts."""

    case_id: str
    levels: Sequence[str]
    priors: Sequence[Sequence[CasePart]]
    planned: Sequence[CasePart]
    lesion: Mapping[str, Any] = field(default_factory=dict)
    lesion_parts: Sequence[CasePart] = ()
    patient_parts: Sequence[CasePart] = ()


def read_part(path: str | Path) -> CasePart:
    """A YAML mapping from a file, with its lines and the ``#`` lines that head it (an importer's notes)."""
    check_regular_file(path, 10_000_000)
    data, lines = load_yaml_file(Path(path))
    if not isinstance(data, dict):
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    f"is a {type(data).__name__ if data is not None else 'empty document'}, not a mapping",
                    accepted="a course (the output of reirrad import, or written by hand) or a mapping of fields",
                    code="case.part",
                )
            ]
        )
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    notes = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        notes.append(line[1:].strip())
    return CasePart(str(path), data, lines, notes)


def read_parts(
    groups: Sequence[Sequence[str]], n_priors: int
) -> tuple[list[list[CasePart]], list[CasePart], list[CasePart], list[CasePart]]:
    """Read the files of ``n_priors`` prior courses, then the planned course, the lesion and the patient parts;
    every unreadable file is reported at once."""
    problems: list[Problem] = []
    read: list[list[CasePart]] = []
    for group in groups:
        parts = []
        for path in group:
            try:
                parts.append(read_part(path))
            except InputError as exc:
                problems += exc.problems
        read.append(parts)
    if problems:
        raise InputError.of(problems)
    return read[:n_priors], read[n_priors], read[n_priors + 1], read[n_priors + 2]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _merge(
    parts: Sequence[CasePart], problems: list[Problem]
) -> tuple[dict[str, Any], dict[tuple[str | int, ...], CasePart]]:
    """Merge mappings key by key (nested mappings recursively); a key two parts give differently is a problem.

    Returns the merged mapping and, for every path in it, the part that gave it.
    """
    merged: dict[str, Any] = {}
    origin: dict[tuple[str | int, ...], CasePart] = {}

    def put(
        target: dict[str, Any], key: str, value: Any, path: tuple[str | int, ...], part: CasePart
    ) -> None:
        if key not in target:
            target[key] = _copy(value)
            for sub in _paths(value, path):
                origin[sub] = part
            return
        here = target[key]
        if isinstance(here, dict) and isinstance(value, dict):
            for k, v in value.items():
                put(here, k, v, (*path, k), part)
            return
        if not _same(here, value):
            first = origin[path]
            problems.append(
                Problem(
                    part.file,
                    path,
                    f"{_show(value)} here, but {first.file}"
                    + (f" (line {first.lines[path]})" if path in first.lines else "")
                    + f" gives {_show(here)}",
                    accepted="the same value in every file of one course (or the key in one file only)",
                    line=part.lines.get(path),
                    code="case.conflict",
                )
            )

    for part in parts:
        for key, value in part.data.items():
            put(merged, key, value, (key,), part)
    return merged, origin


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _paths(value: Any, path: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _show(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _ordered(course: dict[str, Any]) -> dict[str, Any]:
    """A course's keys in the case format's usual order (unknown keys last, for the validation to name)."""
    keys = [k for k in _COURSE_ORDER if k in course] + [k for k in course if k not in _COURSE_ORDER]
    return {k: course[k] for k in keys}


@dataclass
class _Origins:
    """Where each part of the assembled case came from, to place a validation problem in its file."""

    by_base: dict[tuple[str | int, ...], dict[tuple[str | int, ...], CasePart]] = field(default_factory=dict)

    def locate(self, problem: Problem) -> Problem:
        for base, origin in self.by_base.items():
            if problem.path[: len(base)] != base:
                continue
            rel = problem.path[len(base) :]
            probe = rel
            while probe and probe not in origin:
                probe = probe[:-1]
            part = origin.get(probe)
            if part is None and base in (("lesion",), ("patient",)):
                return Problem(OPTIONS, problem.path, problem.message, problem.accepted, code=problem.code)
            if part is None:
                parts = list(dict.fromkeys(p.file for p in origin.values()))
                return Problem(
                    " + ".join(parts) or OPTIONS,
                    rel,
                    f"{problem.message} (in {_where(base)})",
                    problem.accepted,
                    code=problem.code,
                )
            line = part.lines.get(rel) or part.lines.get(probe)
            return Problem(part.file, rel, problem.message, problem.accepted, line, code=problem.code)
        return Problem(OPTIONS, problem.path, problem.message, problem.accepted, code=problem.code)


def _where(base: tuple[str | int, ...]) -> str:
    return "the planned course" if base == ("planned_course",) else f"prior course {int(base[1]) + 1}"


def assemble_case(request: CaseRequest) -> tuple[Case, str]:
    """The case, validated, and its YAML with each course's provenance as comments; or every problem at once."""
    problems: list[Problem] = []
    origins = _Origins()
    lesion, lesion_origin = _merge(request.lesion_parts, problems)
    for key, value in request.lesion.items():
        if key in lesion and not _same(lesion[key], value):
            problems.append(
                Problem(
                    OPTIONS,
                    ("lesion", key),
                    f"the option gives {_show(value)}, but {lesion_origin[(key,)].file} gives {_show(lesion[key])}",
                    accepted="the field in one place",
                    code="case.conflict",
                )
            )
        lesion[key] = value
    if request.levels:
        lesion = {"levels": list(request.levels), **{k: v for k, v in lesion.items() if k != "levels"}}
    origins.by_base[("lesion",)] = lesion_origin
    patient, patient_origin = _merge(request.patient_parts, problems)
    origins.by_base[("patient",)] = patient_origin
    priors = []
    for i, parts in enumerate(request.priors):
        course, origin = _merge(parts, problems)
        priors.append(_ordered(course))
        origins.by_base[("prior_courses", i)] = origin
    planned, origin = _merge(request.planned, problems)
    origins.by_base[("planned_course",)] = origin
    doc: dict[str, Any] = {"schema": "reirrad/case/v1", "case_id": request.case_id}
    if patient:
        doc["patient"] = patient
    doc["lesion"] = lesion
    doc["prior_courses"] = priors
    doc["planned_course"] = _ordered(planned)
    if problems:
        raise InputError.of(problems)
    case, found = case_problems(doc, {}, OPTIONS)
    if found or case is None:
        raise InputError.of([origins.locate(p) for p in found])
    return case, _render(doc, request)


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=None, width=110)


def _comments(parts: Sequence[CasePart], indent: str) -> str:
    out = f"{indent}# from {' + '.join(p.file for p in parts)}\n"
    for part in parts:
        for note in part.notes:
            out += f"{indent}#   {note}\n"
    return out


def _render(doc: dict[str, Any], request: CaseRequest) -> str:
    head = {k: v for k, v in doc.items() if k not in ("prior_courses", "planned_course")}
    text = (
        "# Assembled by reirrad case new and validated with the case format's own checks; each course says\n"
        "# which files it came from and how they were read.\n"
    )
    text += _dump(head)
    text += "prior_courses:" + (" []\n" if not doc["prior_courses"] else "\n")
    for course, parts in zip(doc["prior_courses"], request.priors, strict=True):
        text += _comments(parts, "  ")
        lines = _dump(course).splitlines()
        text += "  - " + lines[0] + "\n" + "".join(f"    {line}\n" for line in lines[1:])
    text += "planned_course:\n" + _comments(request.planned, "  ")
    text += "".join(f"  {line}\n" for line in _dump(doc["planned_course"]).splitlines())
    return text


def summary_of(case: Case) -> str:
    """One line about a valid case: its courses, as a check reports it."""
    planned = case.planned_course
    what = (
        "no planned course yet (before planning)"
        if planned is None
        else f"planned {planned.technique} {planned.prescription_gy:g} Gy in {planned.fractions} fraction(s)"
    )
    return f"valid: case '{case.case_id}', {len(case.prior_courses)} prior course(s), {what}"


def check_cases(paths: Sequence[str]) -> tuple[list[tuple[str, Case]], list[Problem]]:
    """Load and validate every case file: the valid ones, and every problem of the others."""
    problems: list[Problem] = []
    valid = []
    for path in paths:
        try:
            check_regular_file(path, 10_000_000)
            valid.append((path, load_case(path)))
        except InputError as exc:
            problems += exc.problems
    return valid, problems
