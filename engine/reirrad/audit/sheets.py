"""Spreadsheets as rows: a CSV or an XLSX sheet read row by row, where one bad row is that row's problem, never the
whole file's (undecodable bytes, a control character, an over-long cell, merged cells)."""

from __future__ import annotations

import contextlib
import csv
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reirrad.errors import InputError, Problem

__all__ = ["MAX_CELL", "Sheet", "SheetRow", "column_letter", "open_sheet"]

MAX_CELL = 10_000
"""Characters in one cell; no field of a case is longer (a histology, a date, a number)."""
_CSV_FIELD_LIMIT = 1 << 20
"""Longer cells are not even held: the csv module stops at this size and the row becomes an error."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class SheetRow:
    """One data row: its number in the file (CSV physical line, XLSX row), its cells, or what made it unreadable."""

    line: int
    values: tuple[Any, ...] = ()
    problem: str = ""
    column: str = ""
    merged: tuple[tuple[int, str], ...] = ()
    """XLSX: (column index, merged range) of the cells of this row hidden by a merge (read as empty)."""

    @property
    def blank(self) -> bool:
        return not self.problem and all(
            v is None or (isinstance(v, str) and not v.strip()) for v in self.values
        )


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA (the spreadsheet's own column names)."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _show_char(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


def cell_problem(value: Any) -> str:
    """What makes a cell unusable ('' when nothing): undecodable bytes, control characters, excessive length."""
    if not isinstance(value, str) or (
        value.isascii() and not _CONTROL.search(value) and len(value) <= MAX_CELL
    ):
        return ""
    if len(value) > MAX_CELL:
        return f"a cell of {len(value):,} characters (at most {MAX_CELL:,})"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        byte = ord(bad) - 0xDC00 if 0xDC80 <= ord(bad) <= 0xDCFF else None
        if byte is not None:
            hint = ""
            with contextlib.suppress(UnicodeDecodeError):
                hint = f" ('{bytes([byte]).decode('cp1252')}' in Windows-1252)"
            return (
                f"byte 0x{byte:02X} is not UTF-8{hint}; the file looks saved in another encoding — save it as "
                f"UTF-8 (CSV UTF-8)"
            )
        return f"a lone surrogate {_show_char(bad)} (not a character)"
    found = _CONTROL.search(value)
    if found:
        return f"control character {_show_char(found.group())} in the cell"
    return ""


class Sheet:
    """A header and the rows below it. ``header`` holds the column names (stripped; '' where a cell is empty)."""

    def __init__(self, path: Path, kind: str, header: tuple[str, ...], header_line: int) -> None:
        self.path = path
        self.kind = kind
        self.header = header
        self.header_line = header_line
        self.merged: dict[tuple[int, int], str] = {}
        """XLSX: (row, column index) of every cell hidden by a merge → the merged range (e.g. 'F5:F7')."""
        self._sheet_name: str | None = None

    def rows(self) -> Iterator[SheetRow]:
        if self.kind == "csv":
            return _csv_rows(self.path, self.header_line)
        return _xlsx_rows(self)


def _refuse(path: Path, message: str, accepted: str, line: int | None = None) -> InputError:
    return InputError.of([Problem(str(path), (), message, accepted, line, code="sheet")])


def open_sheet(path: Path, sheet: str | None = None, header_row: int = 1) -> Sheet:
    """The header of a CSV or XLSX file (refused whole only when the header itself cannot be read)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _open_xlsx(path, sheet, header_row)
    for row in _csv_rows(path, 0):
        if row.line < header_row:
            continue
        if row.problem:
            raise _refuse(
                path, f"the header row cannot be read: {row.problem}", "a UTF-8 header row", row.line
            )
        return Sheet(path, "csv", tuple(str(v).strip() for v in row.values), row.line)
    raise _refuse(path, "the file has no header row", "a header row naming the columns", header_row)


def _csv_rows(path: Path, header_line: int) -> Iterator[SheetRow]:
    """Rows after ``header_line``; undecodable bytes are kept as surrogates so that the row, not the file, is refused."""
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        f = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
    except OSError as exc:
        raise _refuse(path, f"cannot be read: {exc.strerror}", "a readable CSV file") from None
    with f:
        reader = csv.reader(f)
        start = 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = start
                start = reader.line_num + 1
                if line > header_line:
                    yield SheetRow(line, problem=f"the row cannot be read as CSV: {exc}")
                continue
            line = start
            start = reader.line_num + 1
            if line <= header_line:
                continue
            problem, column = "", ""
            for i, value in enumerate(fields):
                problem = cell_problem(value)
                if problem:
                    column = column_letter(i)
                    break
            if problem:
                yield SheetRow(line, tuple(fields), problem=problem, column=column)
            else:
                yield SheetRow(line, tuple(fields))


def _open_xlsx(path: Path, sheet: str | None, header_row: int) -> Sheet:
    import zipfile

    try:
        import openpyxl  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - openpyxl is a dependency of the audit extra
        raise _refuse(path, "reading XLSX needs openpyxl", "pip install 'reirrad[audit]'") from None
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _refuse(
            path, f"not a readable XLSX workbook: {exc}", "an .xlsx file saved by a spreadsheet"
        ) from None
    if sheet is not None and sheet not in wb.sheetnames:
        raise _refuse(path, f"no sheet named '{sheet}'", f"one of: {', '.join(wb.sheetnames)}")
    ws = wb[sheet] if sheet is not None else wb.worksheets[0]
    header: tuple[str, ...] = ()
    for values in ws.iter_rows(min_row=header_row, max_row=header_row, values_only=True):
        header = tuple("" if v is None else str(v).strip() for v in values)
    result = Sheet(path, "xlsx", header, header_row)
    result._sheet_name = ws.title
    result.merged = _merged_cells(ws)
    hidden = sorted({c for (r, c), _ in result.merged.items() if r == header_row})
    if hidden:
        ranges = sorted({result.merged[(header_row, c)] for c in hidden})
        raise _refuse(
            path,
            f"merged header cells ({', '.join(ranges)}): the columns under a merged cell have no name of their own",
            "one header row with one name per column (unmerge the cells, or choose the row of names with header_row)",
            header_row,
        )
    wb.close()
    return result


def _merged_cells(ws: Any) -> dict[tuple[int, int], str]:
    """Every cell hidden by a merged range (all but its top-left cell), read from the sheet's XML."""
    from xml.etree.ElementTree import iterparse

    from openpyxl.utils.cell import range_boundaries  # type: ignore[import-untyped]

    out: dict[tuple[int, int], str] = {}
    with ws._get_source() as src:
        for _, elem in iterparse(src):
            if elem.tag.endswith("}mergeCell"):
                ref = elem.get("ref", "")
                min_col, min_row, max_col, max_row = range_boundaries(ref)
                for r in range(min_row, max_row + 1):
                    for c in range(min_col, max_col + 1):
                        if (r, c) != (min_row, min_col):
                            out[(r, c - 1)] = ref
            elif elem.tag.endswith("}row"):
                elem.clear()
    return out


def _xlsx_rows(sheet: Sheet) -> Iterator[SheetRow]:
    import openpyxl

    wb = openpyxl.load_workbook(sheet.path, read_only=True, data_only=True)
    try:
        ws = wb[sheet._sheet_name] if sheet._sheet_name else wb.worksheets[0]
        line = sheet.header_line
        for values in ws.iter_rows(min_row=sheet.header_line + 1, values_only=True):
            line += 1
            problem, column = "", ""
            for i, value in enumerate(values):
                problem = cell_problem(value)
                if problem:
                    column = column_letter(i)
                    break
            if problem:
                yield SheetRow(line, tuple(values), problem=problem, column=column)
                continue
            merged = (
                tuple((c, ref) for (r, c), ref in sheet.merged.items() if r == line) if sheet.merged else ()
            )
            yield SheetRow(line, tuple(values), merged=merged)
    finally:
        wb.close()
