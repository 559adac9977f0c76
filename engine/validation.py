"""JSON Schema validation that reports every problem with file, line, path and what is accepted."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from .errors import Problem
from .paths import schemas_dir
from .yamlio import LineMap

__all__ = ["Suggest", "load_schema", "schema_problems", "validator_for"]

Suggest = Callable[[str, tuple[str | int, ...]], str]
"""Given an unknown value and where it stood, a hint such as "did you mean 'SpinalCord'?" (or "")."""


@cache
def load_schema(name: str) -> dict[str, Any]:
    path = schemas_dir() / name
    schema: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return schema


@cache
def validator_for(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _line(lines: LineMap, path: tuple[str | int, ...]) -> int | None:
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def _accepted_enum(values: Iterable[Any]) -> str:
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text ({json.dumps(value, ensure_ascii=False)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "text", "number": "a number",
               "integer": "a whole number", "boolean": "true or false", "null": "null"}


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _describe(error: jsonschema.ValidationError, root: dict[str, Any],
              suggest: Suggest | None) -> tuple[tuple[str | int, ...], str, str]:
    path = tuple(error.absolute_path)
    v = error.validator
    inst = error.instance
    if v == "required":
        missing = error.message.split("'")[1]
        return (*path, missing), "required field is missing", ""
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extras = sorted(set(inst) - set(allowed)) if isinstance(inst, dict) else []
        name = extras[0] if extras else "?"
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return (*path, name), f"unknown field '{name}'{hint}", ", ".join(allowed)
    if v == "propertyNames":
        sub = _resolve(error.schema["propertyNames"], root)
        allowed = sub.get("enum", [])
        hint = suggest(str(inst), path) if suggest else ""
        return (*path, str(inst)), f"unknown name '{inst}'{hint}", ", ".join(map(str, allowed))
    if v == "enum":
        hint = suggest(str(inst), path) if suggest and isinstance(inst, str) else ""
        extra = ""
        if isinstance(inst, int | float) and not isinstance(inst, bool) and str(inst) in map(str, error.validator_value):
            extra = f"; write it as text: \"{inst}\""
        return path, f"{_type_name(inst)} is not an accepted value{hint}{extra}", _accepted_enum(error.validator_value)
    if v == "const":
        return path, f"{_type_name(inst)} is not accepted", json.dumps(error.validator_value)
    if v == "type":
        want = error.validator_value
        wants = [want] if isinstance(want, str) else list(want)
        return path, f"expected {' or '.join(_TYPE_WORDS.get(w, w) for w in wants)}, got {_type_name(inst)}", ""
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[v]
        sch = error.schema
        lo = sch.get("minimum", sch.get("exclusiveMinimum"))
        hi = sch.get("maximum", sch.get("exclusiveMaximum"))
        lo_s = f"{'≥' if 'minimum' in sch else '>'} {lo}" if lo is not None else ""
        hi_s = f"{'≤' if 'maximum' in sch else '<'} {hi}" if hi is not None else ""
        accepted = " and ".join(s for s in (lo_s, hi_s) if s)
        return path, f"{inst} is out of range (must be {sign} {error.validator_value})", accepted
    if v in ("minItems", "minProperties"):
        return path, "must not be empty", f"at least {error.validator_value} item(s)"
    if v == "pattern":
        return path, f"{_type_name(inst)} does not have the required form", error.schema.get(
            "description", f"text matching {error.validator_value}")
    if v == "format":
        return path, f"{_type_name(inst)} is not a valid {error.validator_value}", "a real calendar date, YYYY-MM-DD"
    if v == "not" and isinstance(inst, dict) and "dosimetry" in inst:
        return (*path, "structures"), "structures are given although dosimetry is 'unavailable'", \
            "either dosimetry: unavailable (no structures) or structures with their doses"
    if v == "minLength":
        return path, "must not be empty", "non-empty text"
    return path, error.message, ""


def schema_problems(data: Any, schema_name: str, lines: LineMap, file: str,
                    suggest: Suggest | None = None) -> list[Problem]:
    """Every schema violation of ``data`` as a Problem (deepest errors of each branch first)."""
    validator = validator_for(schema_name)
    root = load_schema(schema_name)
    problems: list[Problem] = []
    for error in validator.iter_errors(data):
        for leaf in _leaves(error):
            path, message, accepted = _describe(leaf, root, suggest)
            problems.append(Problem(file, path, message, accepted, _line(lines, path), code=f"schema.{leaf.validator}"))
    unique = {(p.path, p.message): p for p in problems}
    return list(unique.values())


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    if error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return [best] if best is not None else [error]
    return [error]
