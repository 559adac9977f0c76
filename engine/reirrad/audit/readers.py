"""Cohort inputs: a directory of case YAML files, a JSON Lines file, an audit-layout CSV, or a department's CSV/XLSX
read through a mapping file (``--map``). One reader for every command that takes a cohort (audit, rules diff).

Every input is cut into *chunks* of consecutive records, planned the same way on every run of the same input (so a
resumed audit skips exactly the chunks already committed). A record is one case document, a blank line, or the
reason it could not be read as one; each keeps where it came from (file and line) and its number in the input
(``seq``), so that every input record is accounted for: evaluated + rejected + blank = records read.

* JSON Lines: chunks are byte ranges cut at line ends; the parent only counts newlines, each worker reads and
  parses its own byte range. Blank lines are counted apart; ``null`` is a rejected record, not a blank.
* YAML directory: every ``*.yaml``/``*.yml`` file below the directory, in sorted path order; a symbolic link out of
  the directory or anything but a regular file is a rejected record (its content is never read).
* CSV and XLSX: the parent reads rows (one bad row is that row's problem) and groups the rows of each case; the
  rows of a chunk travel to the worker, which builds the case (audit layout or the mapping).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reirrad.audit.csvlayout import CSV_COLUMNS, SCHEMA_ID, check_header, csv_case, write_csv
from reirrad.audit.inputs import ConstLines, CourseLines, file_problem, read_regular_file
from reirrad.audit.sheets import SheetRow, open_sheet
from reirrad.errors import InputError, Problem, format_path
from reirrad.load.yamlio import load_yaml_text

try:  # optional: about 10x faster than the json module on these documents
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    _orjson = None  # type: ignore[assignment]

__all__ = [
    "CSV_COLUMNS",
    "SCHEMA_ID",
    "Chunk",
    "ConstLines",
    "CourseLines",
    "Record",
    "Source",
    "dumps_line",
    "open_source",
    "read_csv_cases",
    "read_regular_file",
    "write_csv",
]

MAX_CASE_FILE = 1 << 20
"""Bytes in one case file of a YAML directory (a case is a few kB)."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _loads_std(text: bytes) -> Any:
    return json.loads(text, parse_constant=_no_constant)


if _orjson is not None:
    _loads = _orjson.loads
    _LOADS_ERRORS: tuple[type[Exception], ...] = (
        _orjson.JSONDecodeError,
        ValueError,
        UnicodeDecodeError,
        RecursionError,
    )

    def dumps_line(obj: Any) -> bytes:
        """Compact JSON, UTF-8, one line with its newline (same text as json.dumps(separators=(',',':')))."""
        return _orjson.dumps(obj, option=_orjson.OPT_APPEND_NEWLINE)
else:  # pragma: no cover
    _loads = _loads_std
    _LOADS_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

    def dumps_line(obj: Any) -> bytes:
        return (_encode(obj) + "\n").encode()


# --- line maps: every path of a document read from one line (JSONL) or one row per course (CSV) --------------


# --- records and chunks --------------------------------------------------------------------------------------


@dataclass
class Record:
    """One input record: its number in the input, where it is, and the document or the problems met reading it."""

    seq: int
    key: str
    file: str
    line: int | None
    data: Any = None
    lines: Any = None
    problems: list[Problem] | None = None
    blank: bool = False
    cells: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Field path → (column, cell text), for the errors table (mapped sheets)."""
    rows: tuple[SheetRow, ...] = ()
    """CSV: the record's rows (to name the column and value of a problem found later)."""


@dataclass(frozen=True)
class Chunk:
    index: int
    kind: str
    file: str
    first_seq: int = 0
    start: int = 0  # JSONL: byte offset
    end: int = 0
    first_line: int = 1
    paths: tuple[str, ...] = ()  # YAML directory: the files of the chunk
    groups: tuple[tuple[SheetRow, ...], ...] = ()  # CSV, XLSX: the rows of each record
    count: int = 0  # records in the chunk (known to the parent for every kind)
    bytes_done: int = 0  # progress: input bytes (JSONL) or records up to the end of this chunk


_ACCEPTED = "a directory of case YAML files, a .jsonl file, an audit-layout .csv, or a .csv/.xlsx with --map"


def _kind(path: Path, mapped: bool) -> str:
    try:
        st = path.stat()
    except OSError:
        raise file_problem(path, "no such file or directory", _ACCEPTED) from None
    if stat.S_ISDIR(st.st_mode):
        if mapped:
            raise file_problem(
                path, "--map reads a CSV or XLSX file, not a directory", "a .csv or .xlsx file"
            )
        return "yaml-dir"
    if not stat.S_ISREG(st.st_mode):
        raise file_problem(path, "not a regular file (a FIFO, a device?)", _ACCEPTED)
    suffix = path.suffix.lower()
    if mapped:
        if suffix in (".csv", ".xlsx", ".xlsm"):
            return "sheet"
        raise file_problem(
            path, f"--map reads .csv or .xlsx files, not '{suffix or path.name}'", "a .csv or .xlsx file"
        )
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".xlsx", ".xlsm"):
        raise file_problem(path, "an XLSX sheet is read through a mapping", "--map MAP.yaml (docs/audit.md)")
    raise file_problem(path, f"unknown cohort format '{suffix or path.name}'", _ACCEPTED)


def _within(root: str, target: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def yaml_entries(root: Path) -> list[tuple[str, str]]:
    """(path, problem) of every *.yaml/*.yml below root in sorted order; problem is '' for a file to read, or why
    it is not read (a link out of the directory, not a regular file). Directory links are not followed."""
    real_root = os.path.realpath(root)
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.endswith((".yaml", ".yml")) or name.startswith("."):
                continue
            p = os.path.join(dirpath, name)
            problem = ""
            try:
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    target = os.path.realpath(p)
                    if not _within(real_root, target):
                        problem = "a symbolic link to a file outside the cohort directory (not read)"
                    else:
                        st = os.stat(p)
                if not problem and not stat.S_ISREG(st.st_mode):
                    problem = "not a regular file (not read)"
            except OSError as exc:
                problem = f"cannot be read: {exc.strerror}"
            out.append((p, problem))
    out.sort()
    return out


class Source:
    """A cohort: its path and kind, and for a department's sheet the mapping that reads it."""

    def __init__(self, path: Path, kind: str, map_path: Path | None = None, key: bytes | None = None) -> None:
        self.path = path
        self.kind = kind
        self.mapping: Any = None
        self.map_path = map_path
        self.header: tuple[str, ...] = ()
        self._sheet: Any = None
        if kind == "csv":
            sheet = open_sheet(path)
            self.header = check_header(path, sheet.header)
            self._sheet = sheet
        elif kind == "sheet":
            from reirrad.audit.mapping import bind

            assert map_path is not None
            self.mapping, self._sheet = bind(map_path, path, key)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_sheet"] = None  # workers get rows from the parent; the mapping travels (in memory only)
        return state

    # --- identity, for a resumed audit -----------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What a resumed audit checks it reads the same input: path, kind, and the SHA-256 of the content (a YAML
        directory: of every file name and file content), plus the mapping's hash and key check value."""
        h = hashlib.sha256()
        size = 0
        if self.kind == "yaml-dir":
            for p, problem in yaml_entries(self.path):
                h.update(os.path.relpath(p, self.path).encode("utf-8", "surrogateescape") + b"\0")
                if not problem:
                    try:
                        data = read_regular_file(Path(p), MAX_CASE_FILE, "a case file")
                    except InputError:
                        data = b"(unreadable)"
                    h.update(hashlib.sha256(data).digest())
                    size += len(data)
                h.update(problem.encode() + b"\0")
        else:
            with open(self.path, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
                    size += len(block)
        out: dict[str, Any] = {
            "path": str(self.path.resolve()),
            "kind": self.kind,
            "size": size,
            "sha256": h.hexdigest(),
        }
        if self.map_path is not None:
            from reirrad.audit.mapping import mapping_fingerprint

            out.update(mapping_fingerprint(self.map_path, self.mapping.key if self.mapping else None))
        return out

    def size(self) -> int | None:
        return self.path.stat().st_size if self.kind == "jsonl" else None

    # --- planning ----------------------------------------------------------------------------------------------

    def plan(self, chunk_cases: int) -> Iterator[Chunk]:
        """The chunks of the input, in order; the same input and chunk size give the same plan on every run."""
        if self.kind == "jsonl":
            yield from _plan_jsonl(self.path, chunk_cases)
        elif self.kind == "yaml-dir":
            entries = yaml_entries(self.path)
            for i in range(0, len(entries), chunk_cases):
                part = tuple(
                    p + ("\0" + problem if problem else "") for p, problem in entries[i : i + chunk_cases]
                )
                yield Chunk(
                    i // chunk_cases,
                    self.kind,
                    str(self.path),
                    first_seq=i,
                    paths=part,
                    count=len(part),
                    bytes_done=i + len(part),
                )
        else:
            yield from self._plan_rows(chunk_cases)

    def _groups(self) -> Iterator[tuple[SheetRow, ...]]:
        """The rows of each record: a blank row alone, a bad row alone, or the consecutive rows of one case."""
        assert self._sheet is not None
        group: list[SheetRow] = []
        current: str | None = None
        per_row = self.kind == "sheet" and self.mapping.layout == "case-per-row"
        for row in self._sheet.rows():
            if row.blank or (row.problem and (per_row or not row.values)):
                if group:
                    yield tuple(group)
                    group, current = [], None
                yield (row,)
                continue
            if per_row:
                yield (row,)
                continue
            key = (
                self.mapping.group_key(row)
                if self.kind == "sheet"
                else str(row.values[0])
                if row.values
                else ""
            )
            if group and key != current:
                yield tuple(group)
                group = []
            current = key
            group.append(row)
        if group:
            yield tuple(group)

    def _plan_rows(self, chunk_cases: int) -> Iterator[Chunk]:
        groups: list[tuple[SheetRow, ...]] = []
        index = seq = 0
        for g in self._groups():
            groups.append(g)
            if len(groups) == chunk_cases:
                yield Chunk(
                    index,
                    self.kind,
                    str(self.path),
                    seq,
                    groups=tuple(groups),
                    count=len(groups),
                    bytes_done=seq + len(groups),
                )
                index += 1
                seq += len(groups)
                groups = []
        if groups:
            yield Chunk(
                index,
                self.kind,
                str(self.path),
                seq,
                groups=tuple(groups),
                count=len(groups),
                bytes_done=seq + len(groups),
            )

    # --- records -----------------------------------------------------------------------------------------------

    def chunk_records(self, chunk: Chunk) -> Iterator[Record]:
        if chunk.kind == "jsonl":
            return _jsonl_records(chunk)
        if chunk.kind == "yaml-dir":
            return _yaml_records(chunk)
        return self._row_records(chunk)

    def records(self, chunk_cases: int = 1000) -> Iterator[Record]:
        """Every record of the input, in order (one process; ``rules diff --impact``, ``audit preview``)."""
        for chunk in self.plan(chunk_cases):
            yield from self.chunk_records(chunk)

    def _row_records(self, chunk: Chunk) -> Iterator[Record]:
        file = chunk.file
        for i, rows in enumerate(chunk.groups):
            seq = chunk.first_seq + i
            first = rows[0]
            key = f"row {first.line}" if chunk.kind == "sheet" else f"line {first.line}"
            bad = [r for r in rows if r.problem]
            if bad:
                case_id = str(first.values[0]) if chunk.kind == "csv" and first.values else None
                yield Record(
                    seq,
                    key,
                    file,
                    first.line,
                    {"case_id": case_id} if case_id and bad[0] is not first else None,
                    problems=[
                        Problem(
                            file,
                            (),
                            (f"column {r.column}: " if r.column else "") + r.problem,
                            "UTF-8 text without control characters, cells of at most 10,000 characters",
                            r.line,
                            code="row",
                        )
                        for r in bad
                    ],
                    cells={"": (bad[0].column, "")} if bad[0].column else {},
                )
                continue
            if len(rows) == 1 and first.blank:
                yield Record(seq, key, file, first.line, blank=True)
                continue
            try:
                if chunk.kind == "csv":
                    data, problems, lines = csv_case(file, self.header, rows)
                    yield Record(seq, key, file, first.line, data, lines, problems or None, rows=rows)
                else:
                    mapped = self.mapping.build(rows)
                    yield Record(
                        seq,
                        key,
                        file,
                        first.line,
                        mapped.doc,
                        mapped.lines,
                        mapped.problems or None,
                        cells=mapped.cells,
                    )
            except Exception as exc:  # one row that breaks the reader is that row's problem
                yield Record(
                    seq,
                    key,
                    file,
                    first.line,
                    problems=[
                        Problem(
                            file,
                            (),
                            f"internal error reading the row: {type(exc).__name__}: {exc}",
                            "",
                            first.line,
                            code="internal",
                        )
                    ],
                )

    def cells_for(self, rec: Record, problems: list[Problem]) -> dict[str, tuple[str, str]]:
        """The column and cell of each problem's field (the record's own cells, or the audit layout's columns)."""
        if rec.cells or not rec.rows:
            return rec.cells
        return _csv_cells(rec.rows, self.header, problems)


def _csv_cells(
    rows: tuple[SheetRow, ...], header: tuple[str, ...], problems: list[Problem]
) -> dict[str, tuple[str, str]]:
    """The audit layout names its columns by field: planned_course.prescription.dose is column prescription.dose."""
    out: dict[str, tuple[str, str]] = {}
    for p in problems:
        path = p.path
        if path[:1] == ("planned_course",):
            column = ".".join(str(x) for x in path[1:])
        elif path[:1] == ("prior_courses",):
            column = ".".join(str(x) for x in path[2:])
        else:
            column = ".".join(str(x) for x in path)
        if column in header:
            i = header.index(column)
            row = next((r for r in rows if r.line == p.line), rows[0])
            value = str(row.values[i]) if i < len(row.values) else ""
            out[format_path(path)] = (column, value[:200])
    return out


_BLOCK = 1 << 20


def _plan_jsonl(path: Path, chunk_cases: int) -> Iterator[Chunk]:
    """Byte ranges of ``chunk_cases`` lines each, cut after a newline; counts lines, parses nothing."""
    index = start = lines = pos = 0
    first_line = 1
    with open(path, "rb") as f:
        while True:
            block = f.read(_BLOCK)
            if not block:
                break
            at = 0
            while True:
                need = chunk_cases - lines
                found = 0
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
                    index,
                    "jsonl",
                    str(path),
                    first_line - 1,
                    start,
                    end,
                    first_line,
                    count=chunk_cases,
                    bytes_done=end,
                )
                index += 1
                first_line += chunk_cases
                lines = 0
                start = end
                at = cut
            pos += len(block)
        if pos > start:  # the last chunk (possibly without a final newline)
            f.seek(pos - 1)
            if f.read(1) != b"\n":
                lines += 1
            yield Chunk(
                index, "jsonl", str(path), first_line - 1, start, pos, first_line, count=lines, bytes_done=pos
            )


def _jsonl_records(chunk: Chunk) -> Iterator[Record]:
    with open(chunk.file, "rb") as f:
        f.seek(chunk.start)
        data = f.read(chunk.end - chunk.start)
    line_no = chunk.first_line
    body = data[:-1] if data.endswith(b"\n") else data
    for raw in body.split(b"\n"):
        key = f"line {line_no}"
        seq = chunk.first_seq + line_no - chunk.first_line
        if not raw.strip():
            yield Record(seq, key, chunk.file, line_no, blank=True)
        else:
            problem = ""
            try:
                doc = _loads(raw)
            except _LOADS_ERRORS as exc:
                problem = f"not valid JSON: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            else:
                if doc is None:
                    problem = "a JSON null, not a case document"
            if problem:
                yield Record(
                    seq,
                    key,
                    chunk.file,
                    line_no,
                    problems=[
                        Problem(
                            chunk.file,
                            (),
                            problem,
                            "one JSON object (a case document) per line",
                            line_no,
                            code="json",
                        )
                    ],
                )
            else:
                yield Record(seq, key, chunk.file, line_no, doc, ConstLines(line_no))
        line_no += 1


def _yaml_records(chunk: Chunk) -> Iterator[Record]:
    for i, entry in enumerate(chunk.paths):
        p, _, refused = entry.partition("\0")
        seq = chunk.first_seq + i
        if refused:
            yield Record(
                seq,
                p,
                p,
                None,
                problems=[
                    Problem(p, (), refused, "a regular case file inside the cohort directory", code="io")
                ],
            )
            continue
        try:
            raw = read_regular_file(Path(p), MAX_CASE_FILE, "a case file (YAML)")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = raw[: exc.start].count(b"\n") + 1
                raise InputError.of(
                    [
                        Problem(
                            p,
                            (),
                            f"byte 0x{raw[exc.start]:02X} is not UTF-8",
                            "a UTF-8 YAML file",
                            line,
                            code="yaml",
                        )
                    ]
                ) from None
            if "\0" in text:
                line = text[: text.index("\0")].count("\n") + 1
                raise InputError.of(
                    [Problem(p, (), "a NUL byte in the file", "a YAML text file", line, code="yaml")]
                )
            data, lines = load_yaml_text(text, p)
        except InputError as exc:
            yield Record(seq, p, p, None, problems=list(exc.problems))
        except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
            yield Record(
                seq,
                p,
                p,
                None,
                problems=[
                    Problem(
                        p,
                        (),
                        f"cannot be read: {type(exc).__name__}",
                        "a case-sized YAML mapping",
                        code="yaml",
                    )
                ],
            )
        else:
            yield Record(seq, p, p, None, data, lines)


def open_source(path: Path, map_path: Path | None = None, key: bytes | None = None) -> Source:
    """The cohort at ``path``; with ``map_path``, a department's CSV/XLSX read through that mapping (refused whole
    only when the mapping or the header cannot be used: every problem at once)."""
    return Source(path, _kind(path, map_path is not None), map_path, key)


def read_csv_cases(path: Path | str) -> Iterator[dict[str, Any]]:
    """The case documents of an audit CSV, in order (rows that cannot form a case raise InputError)."""
    source = open_source(Path(path))
    for record in source.records():
        if record.problems:
            raise InputError.of(record.problems)
        if record.data is not None:
            yield record.data
