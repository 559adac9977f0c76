"""A strict YAML loader: safe, no duplicate keys, no silent dates or booleans, a line for every path; inputs read
through reirrad.load.files (regular files, a size limit), nesting, size, huge numbers and control characters
refused."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reirrad.errors import InputError, Problem
from reirrad.load.files import (
    MAX_DEPTH,
    MAX_INPUT_BYTES,
    MAX_INTEGER_DIGITS,
    decode_text,
    forbidden_character,
    read_input_bytes,
)

__all__ = ["MAX_DEPTH", "MAX_NODES", "LineMap", "load_yaml_file", "load_yaml_text"]

LineMap = dict[tuple[str | int, ...], int]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 surprises.

    Numbers follow the YAML 1.2 core schema (decimal only; ``.inf`` and ``.nan`` are parsed so that they
    can be refused). Dates stay strings (the models parse them strictly); ``yes``/``no``/``on``/``off`` stay
    strings (so a schema expecting a boolean refuses them); only ``true``/``false`` are booleans. Nodes nested
    deeper than MAX_DEPTH are refused while the document is composed (PyYAML composes recursively).
    """

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event: Any = self.peek_event()  # type: ignore[no-untyped-call]
                raise _TooDeep(event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_DROPPED = tuple(f"tag:yaml.org,2002:{name}" for name in ("timestamp", "bool", "int", "float"))
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 core numbers: no octal "010" (read as 8 by YAML 1.1), no sexagesimal "1:30", no "1_000".
# A decimal with a leading zero stays text, so the schema refuses it instead of reading it as octal.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
                    |[-+]?[0-9]+[eE][-+]?[0-9]+
                    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)

MAX_NODES = 100_000
"""More YAML nodes than this (after expanding aliases) is refused: no case file is that big."""


class _Builder:
    """Turn a node tree into plain data, recording the line of every path and every problem on the way."""

    def __init__(self, file: str, loader: _StrictLoader) -> None:
        self.file = file
        self.loader = loader
        self.lines: LineMap = {}
        self.problems: list[Problem] = []
        self._open: set[int] = set()
        self._count = 0

    def build(self, node: Node, path: tuple[str | int, ...]) -> Any:
        self._count += 1
        if self._count > MAX_NODES:
            raise _TooLarge
        if len(path) >= MAX_DEPTH:  # aliases can nest what the composer saw shallow
            raise _TooDeep(node.start_mark.line + 1)
        self.lines[path] = node.start_mark.line + 1
        if id(node) in self._open:
            self.problems.append(
                Problem(
                    self.file,
                    path,
                    "a YAML alias refers to the value that contains it",
                    accepted="values without recursive aliases",
                    line=node.start_mark.line + 1,
                    code="yaml",
                )
            )
            return None
        if isinstance(node, MappingNode):
            self._open.add(id(node))
            try:
                return self._mapping(node, path)
            finally:
                self._open.discard(id(node))
        if isinstance(node, SequenceNode):
            self._open.add(id(node))
            try:
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self._open.discard(id(node))
        if node.tag == "tag:yaml.org,2002:int" and len(node.value.lstrip("+-")) > MAX_INTEGER_DIGITS:
            self._problem(
                path,
                node,
                f"a whole number of {len(node.value.lstrip('+-'))} digits is too large to be a count or a dose",
                f"numbers of at most {MAX_INTEGER_DIGITS} digits",
            )
            return None
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, str):
            self._check_text(value, path, node)
        if isinstance(value, float) and not math.isfinite(value):
            self.problems.append(
                Problem(
                    self.file,
                    path,
                    f"{node.value} is not a finite number",
                    accepted="a finite number",
                    line=node.start_mark.line + 1,
                    code="yaml",
                )
            )
        return value

    def _problem(self, path: tuple[str | int, ...], node: Node, message: str, accepted: str) -> None:
        self.problems.append(
            Problem(self.file, path, message, accepted, node.start_mark.line + 1, code="yaml")
        )

    def _check_text(self, text: str, path: tuple[str | int, ...], node: Node) -> None:
        """Escapes in quoted YAML ("\\0", "\\u202e") can make characters the file itself may not hold."""
        found = forbidden_character(text)
        if found is not None:
            self._problem(
                path,
                node,
                f"the text holds the control or invisible character {found[1]}",
                "printable text: no NUL, control, zero-width or bidirectional characters",
            )

    def _mapping(self, node: MappingNode, path: tuple[str | int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    Problem(
                        self.file,
                        path,
                        "a mapping key must be a plain name",
                        accepted="a name such as 'start'",
                        line=key_node.start_mark.line + 1,
                        code="yaml",
                    )
                )
                continue
            key = key_node.value
            if forbidden_character(key) is not None or any(c in key for c in "\t\n\r"):
                self._problem(
                    path,
                    key_node,
                    "a mapping key holds a line break, a tab or an invisible character",
                    "a name such as 'start' on one line",
                )
                continue
            if key in seen:
                self.problems.append(
                    Problem(
                        self.file,
                        (*path, key),
                        f"duplicate key '{key}' (first given on line {seen[key]})",
                        accepted="each key once per mapping",
                        line=key_node.start_mark.line + 1,
                        code="duplicate-key",
                    )
                )
                continue
            seen[key] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, (*path, key))
            # a value is looked for at its key: "structures:" rather than the first structure below it
            self.lines[(*path, key)] = key_node.start_mark.line + 1
        return out


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or str(exc)
    if "found another document" in problem:
        return "not valid YAML: a second document (after '---') follows the first; a file holds one document"
    text = f"not valid YAML: {problem}"
    if "\\t" in problem:
        text += " (indent with spaces, not tabs)"
    if (
        exc.context
        and exc.context_mark is not None
        and exc.problem_mark is not None
        and exc.context_mark.line != exc.problem_mark.line
    ):
        text += f" ({exc.context}, line {exc.context_mark.line + 1})"
    return text


def load_yaml_text(text: str, file: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; return the data and the line of every JSON path in it.

    Every problem is an InputError naming the file and, where it can, the line: not YAML, a forbidden character,
    nesting deeper than MAX_DEPTH, more than MAX_NODES values, duplicate keys, huge or non-finite numbers.
    """
    found = forbidden_character(text)
    if found is not None:
        index, name = found
        raise InputError.of(
            [
                Problem(
                    file,
                    (),
                    f"the file holds the control or invisible character {name}",
                    "printable text: no NUL, control, zero-width or bidirectional characters",
                    text.count("\n", 0, index) + 1,
                    code="yaml",
                )
            ]
        )
    loader = _StrictLoader(text)
    builder = _Builder(file, loader)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError.of(
                [Problem(file, (), "the file is empty", accepted="a YAML mapping", code="yaml")]
            )
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError.of(
            [Problem(file, (), _yaml_message(exc), line=line, accepted="a YAML mapping", code="yaml")]
        ) from None
    except yaml.reader.ReaderError as exc:
        raise InputError.of(
            [
                Problem(
                    file,
                    (),
                    f"not valid YAML: the character U+{exc.character:04X} is not allowed"
                    if isinstance(exc.character, int)
                    else "not valid YAML: a character is not allowed",
                    accepted="a YAML mapping of printable text",
                    line=text.count("\n", 0, exc.position) + 1,
                    code="yaml",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise InputError.of(
            [
                Problem(
                    file,
                    (),
                    f"not valid YAML: {exc.__class__.__name__}",
                    accepted="a YAML mapping",
                    code="yaml",
                )
            ]
        ) from None
    except _TooDeep as exc:
        raise InputError.of(
            [
                Problem(
                    file,
                    (),
                    f"values nested more than {MAX_DEPTH} levels deep",
                    accepted=f"at most {MAX_DEPTH} levels of nesting",
                    line=exc.line,
                    code="yaml",
                )
            ]
        ) from None
    except _TooLarge:
        raise InputError.of(
            [
                Problem(
                    file,
                    (),
                    f"more than {MAX_NODES} values (after expanding aliases)",
                    accepted="a case-sized YAML mapping",
                    code="yaml",
                )
            ]
        ) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise InputError.of(builder.problems)
    return data, builder.lines


def load_yaml_file(path: Path, *, max_bytes: int = MAX_INPUT_BYTES) -> tuple[Any, LineMap]:
    """Read a regular file of at most ``max_bytes`` as UTF-8 and parse it with :func:`load_yaml_text`."""
    text = decode_text(read_input_bytes(path, max_bytes=max_bytes), str(path), what="YAML")
    return load_yaml_text(text, str(path))
