"""A strict YAML loader: safe, no duplicate keys, no silent dates or booleans, a line for every path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import InputError, Problem

__all__ = ["LineMap", "load_yaml_file", "load_yaml_text"]

LineMap = dict[tuple[str | int, ...], int]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 surprises.

    Dates stay strings (the models parse them strictly); ``yes``/``no``/``on``/``off`` stay strings
    (so a schema expecting a boolean refuses them); only ``true``/``false`` are booleans.
    """


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:timestamp",
                                                                       "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _build(node: Node, path: tuple[str | int, ...], lines: LineMap, problems: list[Problem],
           file: str, loader: _StrictLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                problems.append(Problem(file, path, "a mapping key must be a plain name", line=key_node.start_mark.line + 1,
                                        code="yaml"))
                continue
            key = key_node.value
            if key in seen:
                problems.append(Problem(
                    file, (*path, key), f"duplicate key '{key}' (first given on line {seen[key]})",
                    accepted="each key once per mapping", line=key_node.start_mark.line + 1, code="duplicate-key"))
                continue
            seen[key] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), lines, problems, file, loader)
        return out
    if isinstance(node, SequenceNode):
        return [_build(item, (*path, i), lines, problems, file, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_yaml_text(text: str, file: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; return the data and the line of every JSON path in it."""
    loader = _StrictLoader(text)
    problems: list[Problem] = []
    lines: LineMap = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError.of([Problem(file, (), "the file is empty", accepted="a YAML mapping", code="yaml")])
        data = _build(node, (), lines, problems, file, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise InputError.of([Problem(file, (), f"not valid YAML: {exc.problem or exc}", line=line,
                                     accepted="a YAML mapping", code="yaml")]) from None
    except yaml.YAMLError as exc:
        raise InputError.of([Problem(file, (), f"not valid YAML: {exc}", code="yaml")]) from None
    finally:
        loader.dispose()
    if problems:
        raise InputError.of(problems)
    return data, lines


def load_yaml_file(path: Path) -> tuple[Any, LineMap]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError.of([Problem(str(path), (), "file not found", code="io")]) from None
    except UnicodeDecodeError as exc:
        raise InputError.of([Problem(str(path), (), f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                                     accepted="a UTF-8 YAML file", code="io")]) from None
    except OSError as exc:
        raise InputError.of([Problem(str(path), (), f"cannot be read: {exc.strerror}", code="io")]) from None
    return load_yaml_text(text, str(path))
