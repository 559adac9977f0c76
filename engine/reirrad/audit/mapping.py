"""A department's spreadsheet as case documents: the mapping file (schemas/cohort-map.schema.json) and its use on rows.

Every choice is stated in the mapping, none is guessed: which column is which field, the date formats, the
vocabulary of each coded column, each dose column's unit, and what an empty prior-course dose means. A cell that
does not fit is that row's problem (row, column, value, what is accepted), never the file's.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from reirrad.audit.sheets import Sheet, SheetRow, column_letter
from reirrad.errors import InputError, Problem, format_path
from reirrad.load.validation import load_schema, schema_problems
from reirrad.load.yamlio import LineMap, load_yaml_text

__all__ = ["KEY_ENV", "MappedCase", "Mapping", "bind", "case_leaves", "load_key", "mapping_fingerprint"]

MAP_SCHEMA = "cohort-map.schema.json"
KEY_ENV = "REIRRAD_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
MAX_NUMBER_TEXT = 40
"""Characters in a number cell; a longer one (a 5,000-digit cell) is refused, never parsed."""
_LEVELS = tuple(
    [f"C{i}" for i in range(1, 8)]
    + [f"T{i}" for i in range(1, 13)]
    + [f"L{i}" for i in range(1, 6)]
    + [f"S{i}" for i in range(1, 6)]
)
_MISSING = object()

Path_ = tuple[str | int, ...]


# --- what each case field is, read from the case schema -------------------------------------------------------


@cache
def case_leaves() -> dict[Path_, str]:
    """Every leaf field of the case format (array items as index 0) → its kind: text, integer, number, boolean,
    date or levels."""
    schema = load_schema("case.schema.json")
    defs = schema["$defs"]
    out: dict[Path_, str] = {}

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = {**defs[node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def walk(node: dict[str, Any], path: Path_) -> None:
        node = resolve(node)
        kind = node.get("type")
        if kind == "object" or "properties" in node or "propertyNames" in node:
            for name, sub in node.get("properties", {}).items():
                walk(sub, (*path, name))
            names = resolve(node.get("propertyNames", {})).get("enum", [])
            extra = node.get("additionalProperties")
            if names and isinstance(extra, dict):
                for name in names:
                    walk(extra, (*path, name))
            return
        if kind == "array":
            if path == ("lesion", "levels"):
                out[path] = "levels"
            else:
                walk(node["items"], (*path, 0))
            return
        if node.get("format") == "date":
            out[path] = "date"
        elif isinstance(kind, str) and kind in ("integer", "number", "boolean"):
            out[path] = kind
        elif isinstance(kind, list) and "number" in kind:
            out[path] = "number"
        else:
            out[path] = "text"

    walk(schema, ())
    out.pop(("schema",), None)
    return out


def _parse_path(text: str) -> Path_:
    parts: list[str | int] = []
    for part in _split_dotted(text):
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)


def _split_dotted(text: str) -> list[str]:
    """'planned_course.structures.SpinalCord.D0.03cc' → [..., 'D0.03cc'] (a metric name keeps its dot)."""
    out: list[str] = []
    for part in text.split("."):
        if out and out[-1] in ("D0",) and part.endswith("cc"):
            out[-1] += "." + part
        else:
            out.append(part)
    return out


def _schema_kind(path: Path_) -> str | None:
    generic = tuple(0 if isinstance(p, int) else p for p in path)
    return case_leaves().get(generic)


def _is_prior_dose(path: Path_) -> bool:
    return len(path) >= 3 and path[0] == "prior_courses" and "structures" in path


# --- the mapping -----------------------------------------------------------------------------------------------

_PSEUDONYM_LETTERS = str.maketrans("0123456789abcdef", "bcdfghjklpqtvwxz")
"""A pseudonym's 20 hex digits written in 16 lower-case consonants without m, n, r and s: hex digits could spell
what the case id screen refuses (a run of 8 digits, a date like 19480302; found on 41 of 300 pseudonyms), and these
letters spell neither a number nor any word the screen looks for (mrn, ssn, mr, ms, …)."""


@dataclass(frozen=True)
class FieldSpec:
    path: Path_
    """Where the value goes in the case document; course-per-row course fields start with 'course'."""
    kind: str
    column: int = -1
    column_name: str = ""
    vocabulary: dict[str, Any] | None = None
    vocabulary_name: str = ""
    unit: str = ""
    date_formats: tuple[str, ...] = ()
    blank: str = ""
    constant: Any = _MISSING


@dataclass
class MappedCase:
    """A case document built from one row (or the rows of one case), or the problems found on the way."""

    doc: dict[str, Any] | None
    problems: list[Problem]
    lines: LineMap | Any
    cells: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Field path (as in problems) → (column, the cell's text as read), to name them in the errors table."""


class Mapping:
    """A loaded, checked mapping bound to a sheet's header."""

    def __init__(
        self,
        file: str,
        doc: dict[str, Any],
        sheet: Sheet,
        key: bytes | None,
    ) -> None:
        self.file = file
        self.layout: str = doc["layout"]
        self.sheet_file = str(sheet.path)
        self.decimal_comma = bool(doc.get("decimal_comma", False))
        self.blank_dose: str = doc.get("blank_dose", "")
        cid = doc["case_id"]
        self.pseudonymise = bool(cid.get("pseudonymise", False))
        self.prefix: str = cid.get("prefix", "")
        self.key = key
        problems: list[Problem] = []
        header = {name: i for i, name in reversed(list(enumerate(sheet.header))) if name}
        repeated = sorted({n for n in sheet.header if n and sheet.header.count(n) > 1})
        self._header = sheet.header

        def column(name: str, where: Path_) -> int:
            if name in repeated:
                problems.append(
                    self._problem(
                        where,
                        f"column '{name}' appears more than once in the header",
                        "one column of that name",
                    )
                )
            if name in header:
                return header[name]
            import difflib

            close = difflib.get_close_matches(name, list(header), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            problems.append(
                self._problem(
                    where,
                    f"column '{name}' is not in the header of {sheet.path.name} (row {sheet.header_line}){hint}",
                    f"a column of the header: {', '.join(repr(h) for h in sheet.header if h)}",
                    code="map.column",
                )
            )
            return -1

        self.case_id_column = column(cid["column"], ("case_id", "column"))
        self.case_id_name = cid["column"]
        if self.pseudonymise and key is None:
            problems.append(
                self._problem(
                    ("case_id", "pseudonymise"),
                    "pseudonymising needs a key, and none was given",
                    f"--key-file FILE, or the environment variable {KEY_ENV} (at least {MIN_KEY_BYTES} bytes)",
                    code="map.key",
                )
            )
        self.course_column = -1
        self.course_terms: dict[str, str] = {}
        if self.layout == "course-per-row":
            course = doc.get("course")
            if course is None:
                problems.append(
                    self._problem(
                        ("course",),
                        "a course-per-row mapping needs the column that says which course a row is",
                        "course: {column: NAME, vocabulary: {TERM: prior | planned}}",
                    )
                )
            else:
                self.course_column = column(course["column"], ("course", "column"))
                self.course_terms = dict(course["vocabulary"])
        elif "course" in doc:
            problems.append(
                self._problem(
                    ("course",), "only a course-per-row mapping has a course column", "layout: course-per-row"
                )
            )
        vocabularies: dict[str, dict[str, Any]] = doc.get("vocabularies", {})
        formats = tuple(doc.get("date_formats", ()))
        for fmt in formats:
            problems += self._format_problems(fmt, ("date_formats",))
        self.fields: list[FieldSpec] = []
        leaves = case_leaves()
        for target, spec in doc["fields"].items():
            where: Path_ = ("fields", target)
            path = _parse_path(target)
            case_path: Path_ = path
            if self.layout == "course-per-row":
                if path[:1] == ("course",):
                    case_path = ("planned_course", *path[1:])
                    if path[1:] and path[1] in ("end", "dosimetry", "tolerance"):
                        case_path = ("prior_courses", 0, *path[1:])
                elif path[:1] in (("prior_courses",), ("planned_course",)):
                    problems.append(
                        self._problem(
                            where,
                            f"'{target}': in a course-per-row mapping a course field is written course.FIELD",
                            f"course.{'.'.join(str(p) for p in path[1 + (path[0] == 'prior_courses') :])}",
                        )
                    )
                    continue
            elif path[:1] == ("course",):
                problems.append(
                    self._problem(
                        where,
                        f"'{target}': course.FIELD belongs to a course-per-row mapping",
                        "planned_course.FIELD or prior_courses.N.FIELD",
                    )
                )
                continue
            kind = _schema_kind(case_path)
            if kind is None or path == ("case_id",):
                from difflib import get_close_matches

                known = [format_path(p).replace("[0]", ".0") for p in leaves]
                close = get_close_matches(target, known, n=2, cutoff=0.7)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                problems.append(
                    self._problem(
                        where,
                        f"'{target}' is not a field of the case format{hint}"
                        + (" (the case id is mapped under case_id)" if path == ("case_id",) else ""),
                        "a field of docs/case-format.md as a dotted path (prior courses numbered from 0)",
                        code="map.field",
                    )
                )
                continue
            if isinstance(spec, str):
                spec = {"column": spec}  # noqa: PLW2901 - the short form of the same entry
            if "value" in spec:
                self.fields.append(FieldSpec(path, kind, constant=spec["value"]))
                continue
            voc = spec.get("vocabulary")
            voc_name = ""
            if isinstance(voc, str):
                voc_name = voc
                if voc not in vocabularies:
                    problems.append(
                        self._problem(
                            (*where, "vocabulary"),
                            f"vocabulary '{voc}' is not defined",
                            f"one of vocabularies: {', '.join(sorted(vocabularies)) or '(none defined)'}",
                            code="map.vocabulary",
                        )
                    )
                    voc = None
                else:
                    voc = vocabularies[voc]
            elif isinstance(voc, dict):
                voc_name = "inline"
            unit = spec.get("unit", "")
            if unit and kind != "number":
                problems.append(
                    self._problem((*where, "unit"), f"'{target}' is not a dose", "unit on dose columns only")
                )
            own_formats = (spec["date_format"],) if "date_format" in spec else formats
            if "date_format" in spec:
                problems += self._format_problems(spec["date_format"], (*where, "date_format"))
            blank = spec.get("blank", "")
            is_prior_dose = _is_prior_dose(case_path) or (
                self.layout == "course-per-row" and path[:1] == ("course",) and "structures" in path
            )
            if blank and not is_prior_dose:
                problems.append(
                    self._problem(
                        (*where, "blank"),
                        f"'{target}' is not a prior-course dose",
                        "blank on prior-course dose columns",
                    )
                )
            if is_prior_dose and not (blank or self.blank_dose):
                problems.append(
                    self._problem(
                        where,
                        f"'{target}' is a prior-course dose, and the mapping does not say what an empty cell means",
                        "blank_dose: absent (not known: nothing assumed) or blank_dose: dosimetry_unavailable "
                        "(every dose of that course empty: its plan data is lost and the prescription is assumed "
                        "to have reached the cord); docs/audit.md",
                        code="map.blank",
                    )
                )
            self.fields.append(
                FieldSpec(
                    path,
                    kind,
                    column(spec["column"], (*where, "column")),
                    spec["column"],
                    voc,
                    voc_name,
                    unit,
                    own_formats,
                    blank or (self.blank_dose if is_prior_dose else ""),
                )
            )
        self.problems = problems
        self._by_course_group = self._groups()

    def _problem(self, path: Path_, message: str, accepted: str, code: str = "map") -> Problem:
        return Problem(self.file, path, message, accepted, code=code)

    def _format_problems(self, fmt: str, where: Path_) -> list[Problem]:
        try:
            datetime.strptime(date(2024, 11, 23).strftime(fmt), fmt)
        except ValueError as exc:
            return [
                self._problem(
                    where, f"'{fmt}' is not a usable date format: {exc}", "a strptime format such as %d/%m/%Y"
                )
            ]
        return []

    def _groups(self) -> dict[int, list[FieldSpec]]:
        """case-per-row: the fields of each prior course (by its number), to drop a course whose cells are all empty."""
        out: dict[int, list[FieldSpec]] = {}
        for f in self.fields:
            if f.path[:1] == ("prior_courses",) and isinstance(f.path[1], int):
                out.setdefault(f.path[1], []).append(f)
        return out

    # --- the case id -------------------------------------------------------------------------------------------

    def case_id_of(self, raw: Any) -> tuple[str, str]:
        """(case id, problem) for the case id cell."""
        text = _text(raw)
        if not text:
            return "", f"the case id column '{self.case_id_name}' is empty"
        if not self.pseudonymise:
            return self.prefix + text, ""
        assert self.key is not None
        digest = hmac.new(self.key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:20]
        return f"{self.prefix}{digest.translate(_PSEUDONYM_LETTERS)}", ""

    def group_key(self, row: SheetRow) -> str:
        """course-per-row: rows of one case share this (the raw case id cell, compared as text)."""
        if self.case_id_column < 0 or self.case_id_column >= len(row.values):
            return ""
        return _text(row.values[self.case_id_column])

    # --- building ----------------------------------------------------------------------------------------------

    def build(self, rows: Sequence[SheetRow]) -> MappedCase:
        """One case from its rows (one row, or the rows of a course-per-row case)."""
        from reirrad.audit.csvlayout import SCHEMA_ID
        from reirrad.audit.inputs import ConstLines, CourseLines

        first = rows[0]
        problems: list[Problem] = []
        cells: dict[str, tuple[str, str]] = {}
        raw_id = first.values[self.case_id_column] if 0 <= self.case_id_column < len(first.values) else None
        case_id, bad = self.case_id_of(raw_id)
        shown = "(pseudonymised)" if self.pseudonymise else _text(raw_id)
        cells["case_id"] = (self.case_id_name, shown)
        if bad:
            problems.append(
                Problem(
                    self.sheet_file,
                    ("case_id",),
                    bad,
                    "a record number or case id in every row",
                    first.line,
                    code="map.case_id",
                )
            )
        doc: dict[str, Any] = {"schema": SCHEMA_ID, "case_id": case_id}
        if self.layout == "case-per-row":
            self._fill(doc, first, self.fields, problems, cells, ())
            self._drop_empty_priors(doc, first)
            doc.setdefault("prior_courses", [])
            lines: Any = ConstLines(first.line)
        else:
            planned: SheetRow | None = None
            priors: list[SheetRow] = []
            for row in rows:
                term = (
                    _text(row.values[self.course_column]) if 0 <= self.course_column < len(row.values) else ""
                )
                which = self.course_terms.get(term)
                if which is None:
                    problems.append(
                        Problem(
                            self.sheet_file,
                            (),
                            f"'{term}' in the course column is not a term of the mapping's course vocabulary",
                            ", ".join(f"{k} ({v})" for k, v in self.course_terms.items()),
                            row.line,
                            code="map.vocabulary",
                        )
                    )
                elif which == "planned":
                    if planned is not None:
                        problems.append(
                            Problem(
                                self.sheet_file,
                                ("planned_course",),
                                f"a second planned row for this case (the first is row {planned.line})",
                                "one planned row per case",
                                row.line,
                                code="map.course",
                            )
                        )
                    planned = row
                else:
                    priors.append(row)
            case_fields = [f for f in self.fields if f.path[:1] != ("course",)]
            course_fields = [f for f in self.fields if f.path[:1] == ("course",)]
            if planned is None:
                if not problems:
                    problems.append(
                        Problem(
                            self.sheet_file,
                            ("planned_course",),
                            "the case has no planned row",
                            "one row per case whose course column says planned",
                            first.line,
                            code="map.course",
                        )
                    )
            else:
                self._fill(doc, planned, case_fields, problems, cells, ())
                doc["prior_courses"] = []
                for i, row in enumerate(priors):
                    course: dict[str, Any] = {}
                    self._fill(course, row, course_fields, problems, cells, ("prior_courses", i), prior=True)
                    doc["prior_courses"].append(course.get("course", {}))
                pc: dict[str, Any] = {}
                self._fill(pc, planned, course_fields, problems, cells, ("planned_course",), prior=False)
                doc["planned_course"] = pc.get("course", {})
            lines = CourseLines(planned.line if planned else first.line, [r.line for r in priors])
        doc = _ordered(doc)
        return MappedCase(doc, problems, lines, cells)

    def _fill(
        self,
        doc: dict[str, Any],
        row: SheetRow,
        fields: list[FieldSpec],
        problems: list[Problem],
        cells: dict[str, tuple[str, str]],
        base: Path_,
        prior: bool | None = None,
    ) -> None:
        hidden = dict(row.merged)
        empty_doses: dict[Path_, int] = {}
        for spec in fields:
            path = spec.path
            shown_path = (*base, *path[1:]) if base else path
            if prior is not None:
                if not prior and path[1:2] and path[1] in ("end", "dosimetry", "tolerance"):
                    continue
                if prior and path[1:2] == ("ptv_high_dmin",):
                    continue
            if spec.constant is not _MISSING:
                _put(doc, path, spec.constant)
                continue
            if spec.column < 0:
                continue
            raw = row.values[spec.column] if spec.column < len(row.values) else None
            key = format_path(shown_path)
            cells[key] = (spec.column_name, _text(raw)[:200])
            if spec.column in hidden:
                problems.append(
                    Problem(
                        self.sheet_file,
                        shown_path,
                        f"cell {column_letter(spec.column)}{row.line} is hidden by the merged cells "
                        f"{hidden[spec.column]}: its value stands only in the first row of the range",
                        "unmerged cells, the value written in every row",
                        row.line,
                        code="map.merged",
                    )
                )
                continue
            if _is_blank(raw):
                if spec.blank and prior is not False:
                    course_key = shown_path[:2] if shown_path[:1] == ("prior_courses",) else shown_path[:1]
                    empty_doses[course_key] = empty_doses.get(course_key, 0) + 1
                continue
            value, problem = self._convert(spec, raw)
            if problem:
                problems.append(
                    Problem(
                        self.sheet_file,
                        shown_path,
                        f"column '{spec.column_name}': {problem}",
                        _accepted(spec),
                        row.line,
                        code="map.value",
                    )
                )
                continue
            _put(doc, path, value)
        if empty_doses:
            self._apply_blank_dose(doc, fields, empty_doses, base)

    def _apply_blank_dose(
        self, doc: dict[str, Any], fields: list[FieldSpec], empty: dict[Path_, int], base: Path_
    ) -> None:
        """dosimetry_unavailable: a prior course whose every mapped dose cell is empty lost its plan data."""
        for course_key, n in empty.items():
            specs = [
                f
                for f in fields
                if f.blank == "dosimetry_unavailable"
                and ((f.path[:2] == course_key) if not base else True)
                and "structures" in f.path
            ]
            if not specs or n < len(specs):
                continue
            if base:
                _put(doc, ("course", "dosimetry"), "unavailable")
            else:
                _put(doc, (*course_key, "dosimetry"), "unavailable")

    def _drop_empty_priors(self, doc: dict[str, Any], row: SheetRow) -> None:
        """case-per-row: a prior-course group whose cells are all empty is no course (the case had fewer)."""
        priors = doc.get("prior_courses")
        if not isinstance(priors, dict):
            return
        kept: list[dict[str, Any]] = []
        for i in sorted(priors):
            specs = self._by_course_group.get(i, [])
            cells_empty = all(
                s.constant is not _MISSING
                or s.column < 0
                or _is_blank(row.values[s.column] if s.column < len(row.values) else None)
                for s in specs
            )
            if not cells_empty:
                kept.append(priors[i])
        doc["prior_courses"] = kept

    def _convert(self, spec: FieldSpec, raw: Any) -> tuple[Any, str]:
        if spec.vocabulary is not None:
            term = _text(raw)
            if term not in spec.vocabulary:
                return None, f"'{term}' is not a term of vocabulary {spec.vocabulary_name}"
            return spec.vocabulary[term], ""
        kind = spec.kind
        if kind == "text":
            return _text(raw), ""
        if kind == "levels":
            return _levels(_text(raw))
        if kind == "boolean":
            if isinstance(raw, bool):
                return raw, ""
            text = _text(raw).lower()
            if text in ("true", "false"):
                return text == "true", ""
            return None, f"'{_text(raw)}' is not true or false (give the column a vocabulary for other words)"
        if kind == "date":
            return self._date(spec, raw)
        return self._number(spec, raw)

    def _date(self, spec: FieldSpec, raw: Any) -> tuple[Any, str]:
        if isinstance(raw, datetime):
            return raw.date().isoformat(), ""
        if isinstance(raw, date):
            return raw.isoformat(), ""
        text = _text(raw)
        formats = spec.date_formats or ("%Y-%m-%d",)
        for fmt in formats:
            try:
                return datetime.strptime(text, fmt).date().isoformat(), ""
            except ValueError:
                continue
        return (
            None,
            f"'{text}' does not fit the date format{'s' if len(formats) > 1 else ''} {', '.join(formats)}",
        )

    def _number(self, spec: FieldSpec, raw: Any) -> tuple[Any, str]:
        if isinstance(raw, bool):
            return None, f"{raw} is not a number"
        if isinstance(raw, int | float):
            if isinstance(raw, float) and not math.isfinite(raw):
                return None, f"{raw} is not a finite number"
            number = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
        else:
            text = _text(raw)
            if len(text) > MAX_NUMBER_TEXT:
                return None, f"a number of {len(text):,} characters (at most {MAX_NUMBER_TEXT})"
            if self.decimal_comma:
                text = text.replace(".", "").replace(",", ".") if "," in text else text
            try:
                number = Decimal(text)
            except InvalidOperation:
                return None, f"'{text}' is not a number" + (
                    " (a decimal comma? say decimal_comma: true)" if "," in text else ""
                )
            if not number.is_finite():
                return None, f"'{text}' is not a finite number"
        if spec.unit == "cGy":
            number = number / 100
        if spec.kind == "integer":
            if number != number.to_integral_value():
                return None, f"{number} is not a whole number"
            return int(number), ""
        if number == number.to_integral_value() and spec.unit != "cGy" and "." not in str(raw):
            return int(number), ""
        return float(number), ""


def _accepted(spec: FieldSpec) -> str:
    if spec.vocabulary is not None:
        terms = ", ".join(repr(k) for k in list(spec.vocabulary)[:12])
        return f"a term of vocabulary {spec.vocabulary_name}: {terms}"
    return {
        "text": "text",
        "levels": "vertebral levels such as T11, T11-T12 (every level between) or T11;T12",
        "boolean": "true or false",
        "date": f"a date written {' or '.join(spec.date_formats or ('%Y-%m-%d',))}",
        "integer": "a whole number",
        "number": "a number" + (f" in {spec.unit}" if spec.unit else ""),
    }.get(spec.kind, "")


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def _is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _levels(text: str) -> tuple[Any, str]:
    out: list[str] = []
    for item in text.replace(",", ";").split(";"):
        part = item.strip().upper()
        if not part:
            continue
        ends = [p.strip() for p in part.replace("–", "-").replace("—", "-").split("-")]
        if len(ends) > 2 or any(e not in _LEVELS for e in ends):
            return None, f"'{text}' is not a vertebral level, list or range"
        lo, hi = _LEVELS.index(ends[0]), _LEVELS.index(ends[-1])
        if hi < lo:
            return None, f"'{part}' runs upwards (write the higher level first, e.g. T11-T12)"
        out += [lv for lv in _LEVELS[lo : hi + 1] if lv not in out]
    if not out:
        return None, "no level given"
    return out, ""


def _put(doc: dict[str, Any], path: Path_, value: Any) -> None:
    node: Any = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})  # prior_courses: numbered groups, made a list in order by _ordered
    node[path[-1]] = value


def _ordered(doc: dict[str, Any]) -> dict[str, Any]:
    priors = doc.get("prior_courses")
    if isinstance(priors, dict):
        doc["prior_courses"] = [priors[k] for k in sorted(priors)]
    order = ("schema", "case_id", "patient", "lesion", "prior_courses", "planned_course", "outcomes")
    return {k: doc[k] for k in order if k in doc} | {k: v for k, v in doc.items() if k not in order}


# --- loading ---------------------------------------------------------------------------------------------------


def load_key(key_file: Path | None) -> bytes | None:
    """The pseudonymisation key: the file's bytes (one trailing newline dropped), else the environment variable."""
    if key_file is not None:
        try:
            key = key_file.read_bytes()
        except OSError as exc:
            raise InputError.of(
                [
                    Problem(
                        str(key_file),
                        (),
                        f"cannot be read: {exc.strerror}",
                        "a file holding the key",
                        code="map.key",
                    )
                ]
            ) from None
        key = key.removesuffix(b"\n").removesuffix(b"\r")
        where = str(key_file)
    else:
        text = os.environ.get(KEY_ENV)
        if text is None:
            return None
        key = text.encode()
        where = KEY_ENV
    if len(key) < MIN_KEY_BYTES:
        raise InputError.of(
            [
                Problem(
                    where,
                    (),
                    f"the pseudonymisation key is {len(key)} bytes long",
                    f"at least {MIN_KEY_BYTES} random bytes (e.g. head -c 32 /dev/urandom | base64 > key)",
                    code="map.key",
                )
            ]
        )
    return key


def read_mapping_doc(path: Path) -> dict[str, Any]:
    from reirrad.audit.inputs import read_regular_file

    raw = read_regular_file(path, 1 << 20, "a mapping file (YAML)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.of(
            [Problem(str(path), (), f"not UTF-8 (byte {exc.start})", "a UTF-8 YAML file", code="map")]
        ) from None
    data, lines = load_yaml_text(text, str(path))
    problems = schema_problems(data, MAP_SCHEMA, lines, str(path))
    if problems:
        raise InputError.of(problems)
    assert isinstance(data, dict)
    return data


def bind(map_path: Path, sheet_path: Path, key: bytes | None) -> tuple[Mapping, Sheet]:
    """Load the mapping, open the sheet it reads and check every column it names: all problems at once."""
    from reirrad.audit.sheets import open_sheet

    doc = read_mapping_doc(map_path)
    sheet = open_sheet(sheet_path, doc.get("sheet"), doc.get("header_row", 1))
    mapping = Mapping(str(map_path), doc, sheet, key)
    if mapping.problems:
        raise InputError.of(mapping.problems)
    return mapping, sheet


def mapping_fingerprint(map_path: Path, key: bytes | None) -> dict[str, str]:
    """What a resumed audit checks it maps the same way: the mapping file's hash and a key check value (an HMAC of a
    fixed text: it shows whether the key is the same, and nothing of the key)."""
    out = {"map_sha256": hashlib.sha256(map_path.read_bytes()).hexdigest()}
    if key is not None:
        out["key_check"] = hmac.new(key, b"reirrad key check", hashlib.sha256).hexdigest()[:16]
    return out
