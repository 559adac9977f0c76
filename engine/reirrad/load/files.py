"""Reading input files safely: regular files only, a size limit, clean refusals for every decoding problem.

Every loader of the package reads its input through these functions, so that a FIFO, a device, a directory, a
file too large to be an input, bytes that are not UTF-8 text, control characters, numbers too large to be a
quantity and JSON nested too deeply are refused with an :class:`~reirrad.errors.InputError` that names the file
(and the line where one can be given), never with a hang, a ``MemoryError`` or a ``RecursionError``.

    raw = read_input_bytes(path)                 # bytes of a regular file, at most MAX_INPUT_BYTES
    text = decode_text(raw, str(path))           # UTF-8 (a leading BOM dropped), control characters refused
    data = load_json_text(text, str(path))       # JSON with the same limits as the YAML loader
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reirrad.errors import InputError, Problem

__all__ = [
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "MAX_INTEGER_DIGITS",
    "check_depth",
    "decode_text",
    "forbidden_character",
    "load_json_text",
    "read_input_bytes",
    "read_input_text",
]

MAX_INPUT_BYTES = 1 << 20
"""1 MiB: the largest input file a loader reads unless its caller allows more. An engineering bound: a case file
is about 1 KB and the largest file of the rule pack about 25 KB; a cohort reader passes its own limit."""

MAX_DEPTH = 64
"""Containers nested deeper than this are refused (a case is 5 levels deep, a rule condition about 10)."""

MAX_INTEGER_DIGITS = 15
"""A whole number with more digits than this is refused: no count or dose has 16 digits, and every integer up to
15 digits is exact as a float (below 2**53), so it reaches the calculations and the rules engine unchanged."""

_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029"
    "\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)
"""Control characters other than tab, line feed and carriage return (NUL included), lone surrogates, line and
paragraph separators, and zero-width or bidirectional formatting characters (they make text display other than
it reads)."""


def _refuse(file: str, message: str, accepted: str, line: int | None = None) -> InputError:
    return InputError.of([Problem(file, (), message, accepted, line, code="io")])


def read_input_bytes(path: Path | str, *, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``max_bytes``).

    A missing or unreadable path, a directory, a FIFO, a socket or a device (``/dev/zero``) and a file larger
    than ``max_bytes`` are refused with an InputError naming the file. The file is opened without blocking and
    checked after opening, so a FIFO never hangs the reader and a file swapped after a check is still checked.
    """
    file = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _refuse(file, "file not found", "the path of a readable file") from None
    except IsADirectoryError:
        raise _refuse(file, "is a directory, not a file", "the path of a regular file") from None
    except OSError as exc:
        raise _refuse(file, f"cannot be read: {exc.strerror}", "a readable regular file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(file, f"is {_kind(info.st_mode)}, not a regular file", "the path of a regular file")
        if info.st_size > max_bytes:
            raise _refuse(file, f"is {info.st_size:,} bytes, more than an input may be", _size(max_bytes))
        chunks: list[bytes] = []
        total = 0
        while True:  # read to the end: the size may have changed since fstat
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _refuse(file, "is larger than an input may be", _size(max_bytes))
        return b"".join(chunks)
    except OSError as exc:
        raise _refuse(file, f"cannot be read: {exc.strerror}", "a readable regular file") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _size(max_bytes: int) -> str:
    return f"a file of at most {max_bytes:,} bytes"


def forbidden_character(text: str) -> tuple[int, str] | None:
    """The index and the code point (``U+0000``) of the first character no input text may hold, or None.

    Refused: control characters other than tab, line feed and carriage return (NUL included), lone surrogates,
    line and paragraph separators, and zero-width or bidirectional formatting characters.
    """
    found = _FORBIDDEN.search(text)
    return None if found is None else (found.start(), f"U+{ord(found.group()):04X}")


def decode_text(raw: bytes, file: str, *, what: str = "text") -> str:
    """UTF-8 text of ``raw`` (one leading byte-order mark dropped), with no forbidden character.

    A byte that is not UTF-8 or a forbidden character is refused with the file, the line and the byte or
    character, and what is accepted.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        at = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)  # utf-8-sig counts after the BOM
        line = raw[:at].count(b"\n") + 1
        raise _refuse(
            file,
            f"not UTF-8 text ({exc.reason} at byte {at})",
            f"a UTF-8 {what} file",
            line,
        ) from None
    found = forbidden_character(text)
    if found is not None:
        index, name = found
        raise _refuse(
            file,
            f"holds the control or invisible character {name} (column {index - text.rfind(chr(10), 0, index)})",
            f"printable {what}: no NUL, control, zero-width or bidirectional characters",
            text.count("\n", 0, index) + 1,
        )
    return text


def read_input_text(path: Path | str, *, max_bytes: int = MAX_INPUT_BYTES, what: str = "text") -> str:
    """``decode_text(read_input_bytes(path))``: the checked text of a regular file."""
    return decode_text(read_input_bytes(path, max_bytes=max_bytes), str(path), what=what)


def _walk(value: Any) -> Iterator[tuple[Any, int]]:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def check_depth(value: Any, file: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse parsed data whose containers nest deeper than ``max_depth`` (checked without recursion); the
    problem names the top-level field that holds the deep part."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if depth > max_depth:
            problem = Problem(
                file,
                path,
                f"nested more than {max_depth} levels deep",
                f"at most {max_depth} levels",
                code="io",
            )
            raise InputError.of([problem])
        if isinstance(item, dict):
            stack.extend((v, depth + 1, path or (str(k),)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, path or (i,)) for i, v in enumerate(item))


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _TooManyDigits(len(text.lstrip("-")))
    return int(text)


def _no_constant(name: str) -> Any:
    raise _NotFinite(name)


class _TooManyDigits(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


class _NotFinite(ValueError):
    pass


def load_json_text(text: str, file: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON document with the limits of the YAML loader.

    Refused with an InputError naming the file (and the line where JSON gives one): invalid JSON, NaN and
    Infinity, whole numbers of more than MAX_INTEGER_DIGITS digits, numbers too large for a float, and
    containers nested deeper than ``max_depth``.
    """
    try:
        data = json.loads(text, parse_int=_integer, parse_constant=_no_constant)
    except _TooManyDigits as exc:
        raise _refuse(
            file, f"a whole number of {exc.digits} digits", f"numbers of at most {MAX_INTEGER_DIGITS} digits"
        ) from None
    except _NotFinite as exc:
        raise _refuse(file, f"{exc} is not a finite number", "finite numbers only") from None
    except RecursionError:
        raise _refuse(file, "nested too deeply", f"at most {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise _refuse(file, f"not valid JSON: {exc.msg}", "a JSON document", exc.lineno) from None
    check_depth(data, file, max_depth=max_depth)
    for value, _ in _walk(data):
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            raise _refuse(file, "a number too large to be a quantity", "finite numbers only")
    return data
