"""Cohort inputs: a directory of case YAML files, a JSON Lines file, or a CSV (one row per course).

Every input is cut into *chunks* of consecutive records, planned the same way on every run of the same input (so a
resumed audit skips exactly the chunks already committed). A record is one case document, or the reason it could not
be read as one; each keeps where it came from (file and line) so that problems name the input file and line.

* JSON Lines: chunks are byte ranges cut at line ends; the parent only counts newlines, each worker reads and
  parses its own byte range. Blank lines are not records (they are counted apart).
* YAML directory: every ``*.yaml``/``*.yml`` file below the directory, in sorted path order (the names, not the
  files, are held in memory); each worker reads its own files with the strict YAML loader of ``reirrad evaluate``.
* CSV: the parent parses rows (the csv module, in C) and groups consecutive rows with the same case_id; the rows of
  a chunk travel to the worker. The layout is ``CSV_COLUMNS`` (docs/audit.md); ``write_csv`` writes it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reirrad.errors import InputError, Problem
from reirrad.load.yamlio import load_yaml_file

try:  # optional: about 10x faster than the json module on these documents
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _orjson = None

__all__ = [
    "CSV_COLUMNS",
    "Chunk",
    "Record",
    "detect_kind",
    "dumps_line",
    "input_identity",
    "iter_chunk_records",
    "plan_chunks",
    "read_csv_cases",
    "write_csv",
]

Kind = Literal["jsonl", "csv", "yaml-dir"]
SCHEMA_ID = "reirrad/case/v1"


def _loads_std(text: bytes) -> Any:
    return json.loads(text, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


if _orjson is not None:
    _loads = _orjson.loads
    _LOADS_ERRORS: tuple[type[Exception], ...] = (_orjson.JSONDecodeError, ValueError, UnicodeDecodeError)

    def dumps_line(obj: Any) -> bytes:
        """Compact JSON, UTF-8, one line with its newline (same text as json.dumps(separators=(',',':')))."""
        return _orjson.dumps(obj, option=_orjson.OPT_APPEND_NEWLINE)
else:  # pragma: no cover
    _loads = _loads_std
    _LOADS_ERRORS = (ValueError, UnicodeDecodeError)
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

    def dumps_line(obj: Any) -> bytes:
        return (_encode(obj) + "\n").encode()


# --- line maps: every path of a document read from one line (JSONL) or one row per course (CSV) --------------


class ConstLines(dict):  # type: ignore[type-arg]
    """A LineMap that puts every path of a document on one line of the input (a JSON Lines line)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: Any) -> int:
        return self.line

    def get(self, key: Any, default: Any = None) -> int:  # type: ignore[override]
        return self.line


class CourseLines(ConstLines):
    """A LineMap for a CSV case: a path under prior_courses[i] is on that course's row, the rest on the planned row."""

    def __init__(self, planned: int, priors: list[int]) -> None:
        super().__init__(planned)
        self.priors = priors

    def __getitem__(self, key: Any) -> int:
        if (
            len(key) >= 2
            and key[0] == "prior_courses"
            and isinstance(key[1], int)
            and key[1] < len(self.priors)
        ):
            return self.priors[key[1]]
        return self.line

    def get(self, key: Any, default: Any = None) -> int:  # type: ignore[override]
        return self[key]


# --- records and chunks --------------------------------------------------------------------------------------


@dataclass
class Record:
    """One input case: its key (unique in the input, stable across runs), where it is, and the document or the
    problems met reading it."""

    key: str
    file: str
    line: int | None
    data: Any = None
    lines: Any = None
    problems: list[Problem] | None = None


@dataclass(frozen=True)
class Chunk:
    index: int
    kind: str
    file: str
    start: int = 0  # JSONL: byte offset; YAML: unused; CSV: unused
    end: int = 0
    first_line: int = 1
    paths: tuple[str, ...] = ()  # YAML directory: the files of the chunk
    rows: tuple[tuple[int, tuple[str, ...]], ...] = ()  # CSV: (line, fields) of the chunk's rows
    header: tuple[str, ...] = ()
    count: int = 0  # records in the chunk (known to the parent for every kind)
    bytes_done: int = 0  # input bytes up to the end of this chunk (progress)


def detect_kind(path: Path) -> Kind:
    if path.is_dir():
        return "yaml-dir"
    if not path.exists():
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    "no such file or directory",
                    "a directory of case YAML files, a .jsonl file or a .csv file",
                    code="io",
                )
            ]
        )
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv",):
        return "csv"
    raise InputError.of(
        [
            Problem(
                str(path),
                (),
                f"unknown cohort format '{suffix or path.name}'",
                "a directory of case YAML files, a .jsonl/.ndjson file or a .csv file",
                code="io",
            )
        ]
    )


def input_identity(path: Path, kind: str) -> dict[str, Any]:
    """What a resumed audit checks it is reading the same input: path, size and modification time."""
    if kind == "yaml-dir":
        return {"path": str(path.resolve()), "kind": kind}
    st = path.stat()
    return {"path": str(path.resolve()), "kind": kind, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _yaml_files(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [
            os.path.join(dirpath, f)
            for f in filenames
            if f.endswith((".yaml", ".yml")) and not f.startswith(".")
        ]
    out.sort()
    return out


def plan_chunks(path: Path, kind: str, chunk_cases: int) -> Iterator[Chunk]:
    """The chunks of an input, in order; the same input and chunk size give the same plan on every run."""
    if kind == "jsonl":
        yield from _plan_jsonl(path, chunk_cases)
    elif kind == "yaml-dir":
        files = _yaml_files(path)
        for i in range(0, len(files), chunk_cases):
            part = tuple(files[i : i + chunk_cases])
            yield Chunk(
                i // chunk_cases, kind, str(path), paths=part, count=len(part), bytes_done=i + len(part)
            )
    elif kind == "csv":
        yield from _plan_csv(path, chunk_cases)
    else:  # pragma: no cover
        raise ValueError(kind)


_BLOCK = 1 << 20


def _plan_jsonl(path: Path, chunk_cases: int) -> Iterator[Chunk]:
    """Byte ranges of about ``chunk_cases`` lines each, cut after a newline; counts lines, parses nothing."""
    index = 0
    start = 0
    first_line = 1
    lines = 0
    pos = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(_BLOCK)
            if not block:
                break
            at = 0
            while True:
                need = chunk_cases - lines
                nl = -1
                found = 0
                # find the need-th newline in block[at:]
                cut = at
                while found < need:
                    nl = block.find(b"\n", cut)
                    if nl < 0:
                        break
                    found += 1
                    cut = nl + 1
                if found < need:
                    lines += found
                    break
                end = pos + cut
                yield Chunk(
                    index, "jsonl", str(path), start, end, first_line, count=chunk_cases, bytes_done=end
                )
                index += 1
                first_line += chunk_cases
                lines = 0
                start = end
                at = cut
            pos += len(block)
    if pos > start:  # the last chunk (possibly without a final newline)
        if not _endswith_newline(path, pos):
            lines += 1
        yield Chunk(index, "jsonl", str(path), start, pos, first_line, count=lines, bytes_done=pos)


def _endswith_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"


def _jsonl_records(chunk: Chunk) -> Iterator[Record]:
    with open(chunk.file, "rb") as f:
        f.seek(chunk.start)
        data = f.read(chunk.end - chunk.start)
    line_no = chunk.first_line
    body = data[:-1] if data.endswith(b"\n") else data
    for raw in body.split(b"\n"):
        key = f"line {line_no}"
        if not raw.strip():
            yield Record(key, chunk.file, line_no)  # blank: no data, no problems; the worker skips it
        else:
            try:
                doc = _loads(raw)
            except _LOADS_ERRORS as exc:
                msg = str(exc).split("\n")[0]
                yield Record(
                    key,
                    chunk.file,
                    line_no,
                    problems=[
                        Problem(
                            chunk.file,
                            (),
                            f"not valid JSON: {msg}",
                            "one JSON object (a case document) per line",
                            line_no,
                            code="json",
                        )
                    ],
                )
            else:
                yield Record(key, chunk.file, line_no, doc, ConstLines(line_no))
        line_no += 1


def _yaml_records(chunk: Chunk) -> Iterator[Record]:
    for p in chunk.paths:
        try:
            data, lines = load_yaml_file(Path(p))
        except InputError as exc:
            yield Record(p, p, None, problems=list(exc.problems))
        else:
            yield Record(p, p, None, data, lines)


# --- CSV layout ------------------------------------------------------------------------------------------------

STRUCTURES = (
    "SpinalCord",
    "SpinalCord_PRV03",
    "SpinalCord_PRV05",
    "ThecalSac",
    "SpinalCanal",
    "CaudaEquina",
    "BrachialPlex_L",
    "BrachialPlex_R",
    "SacralPlex",
    "Esophagus",
)
METRICS = ("Dmax", "D0.03cc", "D0.1cc", "D1cc")

# (column, kind, type): kind "case" columns are given on the planned row only; "course" columns on every row;
# "prior"/"planned" columns only on rows of that course. Types: str, int, num, bool, list (';'-separated).
_CASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("patient.age", "int"),
    ("patient.sex", "str"),
    ("patient.histology", "str"),
    ("patient.ecog", "int"),
    ("patient.expected_survival_months", "num"),
    ("patient.kps", "int"),
    ("patient.systemic_disease.status", "str"),
    ("patient.systemic_disease.brain_metastases", "bool"),
    ("patient.systemic_disease.further_systemic_options", "bool"),
    ("lesion.levels", "list"),
    ("lesion.bilsky_grade", "str"),
    ("lesion.sins", "int"),
    ("lesion.recurrence", "str"),
    *(
        (f"lesion.sins_components.{c}", "int")
        for c in ("location", "pain", "bone_lesion", "alignment", "collapse", "posterolateral")
    ),
    ("lesion.pathologic_fracture", "bool"),
    ("lesion.neurologic_deficit", "bool"),
    ("lesion.cord_compression_symptoms", "bool"),
    ("lesion.prior_surgery", "bool"),
    ("lesion.hardware.present", "bool"),
    ("lesion.hardware.failure", "bool"),
    ("lesion.extent", "str"),
)
_COURSE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("start", "str", "course"),
    ("end", "str", "prior"),
    ("technique", "str", "course"),
    ("prescription.dose", "num", "course"),
    ("prescription.fractions", "int", "course"),
    ("unit", "str", "course"),
    ("dosimetry", "str", "prior"),
    ("tolerance", "str", "prior"),
    ("ptv_high_dmin", "num", "planned"),
)
_DOSE_COLUMNS = tuple(f"{s}.{m}" for s in STRUCTURES for m in METRICS)
CSV_COLUMNS: tuple[str, ...] = (
    "case_id",
    "course",
    *(c for c, _ in _CASE_COLUMNS),
    *(c for c, _, _ in _COURSE_COLUMNS),
    *_DOSE_COLUMNS,
)
_TYPE = {
    **dict(_CASE_COLUMNS),
    **{c: t for c, t, _ in _COURSE_COLUMNS},
    **dict.fromkeys(_DOSE_COLUMNS, "num"),
}
_CASE_SET = frozenset(c for c, _ in _CASE_COLUMNS)
_ONLY = {c: w for c, _, w in _COURSE_COLUMNS if w != "course"}
_INT_RE = re.compile(r"^[-+]?[0-9]+$")


def _cell(text: str, kind: str) -> Any:
    """A cell's value by its column type; text that does not parse stays text, for the schema to report."""
    if kind == "str":
        return text
    if kind == "list":
        return [p.strip() for p in text.split(";")]
    if kind == "bool":
        return {"true": True, "false": False}.get(text, text)
    if _INT_RE.match(text):
        return int(text)
    if kind == "num":
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    return text


def _fmt(value: Any, kind: str) -> str:
    if kind == "list":
        return ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        doc = doc.setdefault(p, {})
    doc[parts[-1]] = value


def _course(row: dict[str, str], which: str) -> dict[str, Any]:
    course: dict[str, Any] = {}
    for col, kind, where in _COURSE_COLUMNS:
        text = row.get(col, "")
        if text != "" and where in ("course", which):
            _put(course, col, _cell(text, kind))
    structures: dict[str, Any] = {}
    for col in _DOSE_COLUMNS:
        text = row.get(col, "")
        if text != "":
            s, m = col.split(".", 1)
            structures.setdefault(s, {})[m] = _cell(text, "num")
    if structures:
        course["structures"] = structures
    return course


def _csv_record(file: str, header: tuple[str, ...], rows: list[tuple[int, tuple[str, ...]]]) -> Record:
    """One case from its rows (consecutive rows with one case_id)."""
    first = rows[0][0]
    case_id = rows[0][1][0] if rows[0][1] else ""
    key = f"line {first}"
    problems: list[Problem] = []
    planned: tuple[int, dict[str, str]] | None = None
    priors: list[tuple[int, dict[str, str]]] = []
    for line, fields in rows:
        if len(fields) != len(header):
            problems.append(
                Problem(
                    file,
                    (),
                    f"the row has {len(fields)} fields, the header {len(header)}",
                    "one field per header column (quote fields that contain commas)",
                    line,
                    code="csv",
                )
            )
            continue
        row = dict(zip(header, fields, strict=True))
        course = row.get("course", "")
        if course == "planned":
            if planned is not None:
                problems.append(
                    Problem(
                        file,
                        ("planned_course",),
                        f"a second planned row for case '{case_id}' (the first is on line {planned[0]})",
                        "one planned row per case",
                        line,
                        code="csv",
                    )
                )
            else:
                planned = (line, row)
        elif course == "prior":
            filled = [c for c in header if c in _CASE_SET and row[c] != ""]
            if filled:
                problems.append(
                    Problem(
                        file,
                        (),
                        f"case-level column(s) {', '.join(filled)} filled on a prior row",
                        "case-level columns on the planned row only",
                        line,
                        code="csv",
                    )
                )
            priors.append((line, row))
        else:
            problems.append(
                Problem(
                    file,
                    (),
                    f"course '{course}' is neither 'prior' nor 'planned'",
                    "prior, planned",
                    line,
                    code="csv",
                )
            )
    if planned is None and not problems:
        problems.append(
            Problem(
                file,
                ("planned_course",),
                f"case '{case_id}' has no planned row",
                "exactly one row with course = planned per case",
                first,
                code="csv",
            )
        )
    if problems or planned is None:
        return Record(key, file, first, {"case_id": case_id}, problems=problems)
    prow = planned[1]
    doc: dict[str, Any] = {"schema": SCHEMA_ID, "case_id": case_id}
    for col, kind in _CASE_COLUMNS:
        text = prow.get(col, "")
        if text != "":
            _put(doc, col, _cell(text, kind))
    doc.setdefault("lesion", {})
    doc["prior_courses"] = [_course(r, "prior") for _, r in priors]
    doc["planned_course"] = _course(prow, "planned")
    ordered = {
        k: doc[k]
        for k in ("schema", "case_id", "patient", "lesion", "prior_courses", "planned_course")
        if k in doc
    }
    return Record(key, file, first, ordered, CourseLines(planned[0], [ln for ln, _ in priors]))


def _csv_header(path: Path, reader: Any) -> tuple[str, ...]:
    try:
        header = tuple(next(reader))
    except StopIteration:
        raise InputError.of(
            [
                Problem(
                    str(path), (), "the CSV file is empty", "a header row naming the columns", 1, code="csv"
                )
            ]
        ) from None
    unknown = [c for c in header if c not in _TYPE and c not in ("case_id", "course")]
    missing = [c for c in ("case_id", "course") if c not in header]
    dup = sorted({c for c in header if header.count(c) > 1})
    if unknown or missing or dup:
        what = "; ".join(
            x
            for x in (
                f"unknown column(s) {', '.join(unknown)}" if unknown else "",
                f"missing column(s) {', '.join(missing)}" if missing else "",
                f"repeated column(s) {', '.join(dup)}" if dup else "",
            )
            if x
        )
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    f"the CSV header is not the audit layout: {what}",
                    "case_id, course and any of the columns in docs/audit.md (CSV layout)",
                    1,
                    code="csv",
                )
            ]
        )
    if header[0] != "case_id":
        raise InputError.of(
            [Problem(str(path), (), "the first column must be case_id", "case_id first", 1, code="csv")]
        )
    return header


def _csv_groups(path: Path) -> Iterator[tuple[tuple[str, ...], list[tuple[int, tuple[str, ...]]], int]]:
    """(header, rows of one case, bytes read so far), streaming; rows of a case are consecutive."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = _csv_header(path, reader)
        group: list[tuple[int, tuple[str, ...]]] = []
        current: str | None = None
        start_line = reader.line_num + 1
        try:
            for fields in reader:
                line = start_line
                start_line = reader.line_num + 1
                if not fields or all(not x.strip() for x in fields):
                    continue
                cid = fields[0]
                if group and cid != current:
                    yield header, group, 0
                    group = []
                current = cid
                group.append((line, tuple(fields)))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError.of(
                [
                    Problem(
                        str(path),
                        (),
                        f"the CSV file cannot be read past line {start_line}: {exc}",
                        "UTF-8 CSV (RFC 4180)",
                        start_line,
                        code="csv",
                    )
                ]
            ) from None
        if group:
            yield header, group, 0


def _plan_csv(path: Path, chunk_cases: int) -> Iterator[Chunk]:
    rows: list[tuple[int, tuple[str, ...]]] = []
    n = 0
    index = 0
    header: tuple[str, ...] = ()
    for header, group, _ in _csv_groups(path):
        # a separator row (line 0) marks the end of a case inside the chunk
        rows += group
        rows.append((0, ()))
        n += 1
        if n == chunk_cases:
            yield Chunk(
                index, "csv", str(path), header=header, rows=tuple(rows), count=n, bytes_done=rows[-2][0]
            )
            index += 1
            rows, n = [], 0
    if n:
        yield Chunk(index, "csv", str(path), header=header, rows=tuple(rows), count=n, bytes_done=rows[-2][0])


def _csv_records(chunk: Chunk) -> Iterator[Record]:
    group: list[tuple[int, tuple[str, ...]]] = []
    for line, fields in chunk.rows:
        if line == 0:
            yield _csv_record(chunk.file, chunk.header, group)
            group = []
        else:
            group.append((line, fields))


def iter_chunk_records(chunk: Chunk) -> Iterator[Record]:
    if chunk.kind == "jsonl":
        return _jsonl_records(chunk)
    if chunk.kind == "yaml-dir":
        return _yaml_records(chunk)
    return _csv_records(chunk)


def read_csv_cases(path: Path | str) -> Iterator[dict[str, Any]]:
    """The case documents of an audit CSV, in order (rows that cannot form a case raise InputError)."""
    path = Path(path)
    for header, group, _ in _csv_groups(path):
        rec = _csv_record(str(path), header, group)
        if rec.problems:
            raise InputError.of(rec.problems)
        yield rec.data


def _flat(doc: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in doc.items():
        if isinstance(v, dict):
            if not v:
                raise ValueError(f"{prefix}{k}: an empty mapping has no CSV form")
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _course_row(case_id: str, which: str, course: dict[str, Any]) -> dict[str, str]:
    row = {"case_id": case_id, "course": which}
    for key, value in _flat({k: v for k, v in course.items() if k != "structures"}):
        if key not in _TYPE or key in _CASE_SET or _ONLY.get(key, which) != which:
            raise ValueError(f"{case_id}: {which} course field '{key}' has no CSV column")
        row[key] = _fmt(value, _TYPE[key])
    for s, metrics in (course.get("structures") or {}).items():
        if not metrics:
            raise ValueError(f"{case_id}: structure {s} without metrics has no CSV form")
        for m, value in metrics.items():
            col = f"{s}.{m}"
            if col not in _TYPE:
                raise ValueError(f"{case_id}: no CSV column for {col}")
            row[col] = _fmt(value, "num")
    return row


def case_rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The CSV rows of one case document (prior courses in order, then the planned course)."""
    if doc.get("schema") != SCHEMA_ID:
        raise ValueError(f"schema must be {SCHEMA_ID}")
    case_id = doc["case_id"]
    rows = [_course_row(case_id, "prior", c) for c in doc.get("prior_courses", [])]
    planned = _course_row(case_id, "planned", doc["planned_course"])
    for key, value in _flat({k: doc[k] for k in ("patient", "lesion") if k in doc}):
        if key not in _CASE_SET:
            raise ValueError(f"{case_id}: field '{key}' has no CSV column")
        planned[key] = _fmt(value, _TYPE[key])
    if "lesion" not in doc or set(doc) - {
        "schema",
        "case_id",
        "patient",
        "lesion",
        "prior_courses",
        "planned_course",
    }:
        raise ValueError(f"{case_id}: the document has fields with no CSV column")
    rows.append(planned)
    return rows


def write_csv(cases: Iterable[dict[str, Any]], out: io.TextIOBase | Any) -> int:
    """Write case documents in the audit CSV layout (all columns); returns the number of cases written."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for doc in cases:
        writer.writerows(case_rows(doc))
        n += 1
    return n
