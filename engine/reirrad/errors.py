"""Problems found in input files, reported all at once and never as a traceback."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["EngineError", "InputError", "Problem", "format_path", "one_line"]

_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` safe to print on one line: line breaks, control and invisible characters shown as escapes
    (``\\n``, ``\\x1b``, ``\\u202e``), so that no value can start a line of its own or hide what follows."""
    if _UNPRINTABLE.search(text) is None:
        return text
    return _UNPRINTABLE.sub(
        lambda m: _NAMED.get(m.group(), m.group().encode("unicode_escape").decode()), text
    )


def format_path(path: Sequence[str | int]) -> str:
    """Render a JSON path the way a reader of the YAML file would look for it: ``prior_courses[0].unit``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input: where it is, what is wrong, what would be accepted."""

    file: str
    path: tuple[str | int, ...]
    message: str
    accepted: str = ""
    line: int | None = None
    code: str = "invalid"

    def render(self) -> str:
        """One line: ``file:line: path: message (accepted: …)``; a line break or control character in any part
        (a file name, a key, a value) is shown as an escape, so that it can never forge a line of its own."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {format_path(self.path)}: {self.message}"
        if self.accepted:
            text += f" (accepted: {self.accepted})"
        return one_line(text)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "path": format_path(self.path),
            "code": self.code,
            "message": self.message,
            "accepted": self.accepted,
        }


@dataclass
class InputError(Exception):
    """Raised with every problem of an input; the CLI prints them and exits with code 2."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.render())

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> InputError:
        return cls(sorted(problems, key=lambda p: (p.file, p.line or 0, format_path(p.path), p.message)))

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class EngineError(RuntimeError):
    """The rules engine or the compiled pack did something an evaluation cannot trust; never shown as a verdict."""
