"""Where a record's problems are placed (line maps) and how an input file is read (regular files only, bounded)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from reirrad.errors import InputError, Problem

__all__ = ["ConstLines", "CourseLines", "file_problem", "read_regular_file"]


class ConstLines(dict):  # type: ignore[type-arg]
    """A LineMap that puts every path of a document on one line of the input (a JSON Lines line, a sheet row)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: Any) -> int:
        return self.line

    def get(self, key: Any, default: Any = None) -> int:
        return self.line


class CourseLines(ConstLines):
    """A LineMap for a case of one row per course: a path under prior_courses[i] is on that course's row, the rest
    on the planned row."""

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

    def get(self, key: Any, default: Any = None) -> int:
        return self[key]


def file_problem(path: Path, message: str, accepted: str, code: str = "io") -> InputError:
    return InputError.of([Problem(str(path), (), message, accepted, code=code)])


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """A regular file's bytes (never a FIFO, a device or a directory), refused above ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise file_problem(path, f"cannot be read: {exc.strerror}", what) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise file_problem(path, "not a regular file", what)
        if st.st_size > limit:
            raise file_problem(path, f"{st.st_size:,} bytes, more than {limit:,}", what)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise file_problem(path, f"more than {limit:,} bytes", what)
        return data
    finally:
        os.close(fd)
