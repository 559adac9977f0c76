"""A strict YAML loader: safe, no duplicate keys, no silent dates or booleans, a line for every path."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reirrad.errors import InputError, Problem

__all__ = ["LineMap", "load_yaml_file", "load_yaml_text"]

LineMap = dict[tuple[str | int, ...], int]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 surprises.

    Numbers follow the YAML 1.2 core schema (decimal only; ``.inf`` and ``.nan`` are parsed so that they
    can be refused). Dates stay strings (the models parse them strictly); ``yes``/``no``/``on``/``off`` stay
    strings (so a schema expecting a boolean refuses them); only ``true``/``false`` are booleans.
    """


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
        value = self.loader.construct_object(node, deep=True)
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
    """Parse one YAML document; return the data and the line of every JSON path in it."""
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
    except yaml.YAMLError as exc:
        raise InputError.of(
            [Problem(file, (), f"not valid YAML: {exc}", accepted="a YAML mapping", code="yaml")]
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


def load_yaml_file(path: Path) -> tuple[Any, LineMap]:
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise InputError.of(
            [Problem(str(path), (), "file not found", accepted="the path of a readable file", code="io")]
        ) from None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                    accepted="a UTF-8 YAML file",
                    line=line,
                    code="io",
                )
            ]
        ) from None
    except OSError as exc:
        raise InputError.of(
            [Problem(str(path), (), f"cannot be read: {exc.strerror}", accepted="a readable file", code="io")]
        ) from None
    return load_yaml_text(text, str(path))
