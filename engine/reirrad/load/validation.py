"""JSON Schema validation that reports every problem with file, line, path and what is accepted."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reirrad.errors import Problem
from reirrad.load.paths import schemas_dir
from reirrad.load.yamlio import LineMap

if TYPE_CHECKING:  # jsonschema is imported when a document is first checked (not at start-up: about 0.1 s)
    import jsonschema
    from jsonschema import Draft202012Validator

__all__ = ["Suggest", "line_of", "load_schema", "schema_problems", "validator_for"]

Suggest = Callable[[str, tuple[str | int, ...]], str]
"""Given an unknown value and where it stood, a hint such as "did you mean 'SpinalCord'?" (or "")."""


@cache
def load_schema(name: str) -> dict[str, Any]:
    path = schemas_dir() / name
    schema: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return schema


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    """``pattern`` with ECMA-262 semantics for ``$``: the end of the text (Python's ``$`` also matches before
    a final newline, which would let "abc" plus a newline through a pattern anchored with ``^…$``)."""
    if validator.is_type(instance, "string") and not re.search(_python_regex(pattern), instance):
        from jsonschema import ValidationError

        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def _python_regex(pattern: str) -> str:
    out: list[str] = []
    in_class = escaped = False
    for ch in pattern:
        end_anchor = False
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        else:
            end_anchor = ch == "$" and not in_class
        out.append(r"\Z" if end_anchor else ch)
    return "".join(out)


@cache
def _validator_class() -> Any:
    """Draft 2020-12 with ECMA-262 ``pattern`` semantics."""
    import jsonschema.validators

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})


@cache
def validator_for(name: str) -> Draft202012Validator:
    """The validator of one of the project's schemas. The schemas themselves are checked against the 2020-12
    meta-schema by the test suite (tests/test_case_schema_parity.py), not on every run: that check took 0.17 s of
    each command's start-up."""
    schema = load_schema(name)
    kind = _validator_class()
    validator: Draft202012Validator = kind(schema, format_checker=kind.FORMAT_CHECKER)
    return validator


def line_of(lines: LineMap, path: tuple[str | int, ...]) -> int | None:
    """The line of a field, or of the nearest enclosing field that has one."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def _accepted_enum(values: Iterable[Any]) -> str:
    return ", ".join(json.dumps(v, ensure_ascii=False) for v in values)


def _type_name(value: Any, redacted: bool = False) -> str:
    if redacted and value is not None and not isinstance(value, bool):
        kind = "text" if isinstance(value, str) else "a number" if _is_number(value) else None
        if kind is not None:
            return f"{kind} (not repeated here: this field must never identify a patient)"
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


_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "null",
}


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        node: Any = root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _range(schema: dict[str, Any]) -> str:
    lo = ("≥", schema["minimum"]) if "minimum" in schema else (">", schema.get("exclusiveMinimum"))
    hi = ("≤", schema["maximum"]) if "maximum" in schema else ("<", schema.get("exclusiveMaximum"))
    if lo[0] == "≥" and hi[0] == "≤" and lo[1] is not None and hi[1] is not None:
        return f" from {lo[1]} to {hi[1]}"
    return " and".join(f" {sign} {value}" for sign, value in (lo, hi) if value is not None)


def _summary(schema: dict[str, Any], root: dict[str, Any]) -> str:
    """What a schema accepts, in words: "a whole number from 0 to 4", "a mapping with fields a, b"."""
    schema = _resolve(schema, root)
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    if "enum" in schema:
        return _accepted_enum(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        if "propertyNames" in schema:
            names = _resolve(schema["propertyNames"], root).get("enum", [])
            values = _summary(schema.get("additionalProperties", {}), root) or "a value"
            return f"a mapping from a name ({', '.join(map(str, names))}) to {values}"
        fields = list(schema.get("properties", {}))
        return "a mapping with fields " + ", ".join(fields) if fields else "a mapping"
    if kind == "array":
        many = "one or more" if schema.get("minItems", 0) >= 1 else "any number"
        return f"a list of {many} of: {_summary(schema.get('items', {}), root)}"
    if kind in ("integer", "number"):
        return _TYPE_WORDS[kind] + _range(schema)
    if kind == "string":
        if schema.get("format") == "date" or "pattern" in schema:
            return str(schema.get("description", "text of the form " + str(schema.get("pattern"))))
        return "non-empty text" if schema.get("minLength", 0) >= 1 else "text"
    if isinstance(kind, list):
        return " or ".join(_TYPE_WORDS.get(k, str(k)) for k in kind)
    if kind == "boolean":
        return _TYPE_WORDS["boolean"]
    return str(schema.get("description", ""))


def _schema_at(root: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any] | None:
    """The (resolved) schema that governs the value at ``path``, or None when the path leaves the schema."""
    node = _resolve(root, root)
    for part in path:
        if isinstance(part, int):
            nxt = node.get("items")
        elif part in node.get("properties", {}):
            nxt = node["properties"][part]
        else:
            nxt = node.get("additionalProperties")
        if not isinstance(nxt, dict):
            return None
        node = _resolve(nxt, root)
    return node


def _optional(root: dict[str, Any], path: tuple[str | int, ...]) -> bool:
    if not path or isinstance(path[-1], int):
        return False
    parent = _schema_at(root, path[:-1])
    return (
        parent is not None
        and path[-1] in parent.get("properties", {})
        and path[-1] not in parent.get("required", [])
    )


_NUMBER_IN_TEXT = re.compile(r"^\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*([A-Za-z%]*)\s*$")

_IDENTIFYING = {
    "name",
    "patient_name",
    "first_name",
    "last_name",
    "surname",
    "given_name",
    "family_name",
    "mrn",
    "record_number",
    "medical_record_number",
    "dob",
    "birth_date",
    "date_of_birth",
    "birthdate",
    "address",
    "phone",
    "email",
    "insurance",
    "ssn",
    "nhs_number",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_hint(inst: Any, wants: list[str]) -> str:
    if isinstance(inst, str) and ("number" in wants or "integer" in wants):
        m = _NUMBER_IN_TEXT.match(inst)
        if m and m.group(1):
            return f"; write the number alone, without '{m.group(1)}'"
        if m and re.match(r"^\s*[-+]?0[0-9]", inst):
            return "; write whole numbers without leading zeros"
        if m:
            return "; write the number without quotes"
    if isinstance(inst, bool) and ("number" in wants or "integer" in wants):
        return "; true and false are not numbers"
    return ""


def _close(name: str, allowed: list[str], *, near: bool = True) -> str:
    """A case- and punctuation-insensitive match, else (when ``near``) a near spelling."""
    folded = _fold(name)
    for candidate in allowed:
        if _fold(candidate) == folded:
            return candidate
    if not near:
        return ""
    from difflib import get_close_matches  # on a refusal only

    close = get_close_matches(name, allowed, n=1)
    return close[0] if close else ""


def _fold(text: str) -> str:
    return re.sub(r"[^0-9a-z.]", "", text.lower())


def _describe(
    error: jsonschema.ValidationError,
    root: dict[str, Any],
    suggest: Suggest | None,
    redact: Collection[tuple[str | int, ...]] = (),
) -> list[tuple[tuple[str | int, ...], str, str]]:
    path = tuple(error.absolute_path)
    v = error.validator
    inst = error.instance
    if path in redact and v in ("type", "pattern", "enum", "const"):
        hidden = _type_name(inst, redacted=True)
        if v == "type":
            want = (
                [error.validator_value] if isinstance(error.validator_value, str) else error.validator_value
            )
            said = " or ".join(_TYPE_WORDS.get(w, w) for w in want)
            return [(path, f"expected {said}, got {hidden}", _summary(error.schema, root))]
        if v == "pattern":
            return [(path, f"{hidden} does not have the required form", _summary(error.schema, root))]
        return [(path, f"{hidden} is not an accepted value", _summary(error.schema, root))]
    if "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path:
        allowed = _resolve(error.schema, root).get("enum", [])
        kind = "structure name" if path and path[-1] == "structures" else "name"
        hint = suggest(str(inst), path) if suggest else ""
        return [((*path, str(inst)), f"unknown {kind} '{inst}'{hint}", ", ".join(map(str, allowed)))]
    if v == "required":
        missing = error.message.split("'")[1]
        field = error.schema.get("properties", {}).get(missing, {})
        return [((*path, missing), "required field is missing", _summary(field, root))]
    if v == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extras = [k for k in inst if k not in allowed] if isinstance(inst, dict) else []
        is_metrics = len(path) >= 2 and path[-2] == "structures"
        out = []
        for name in extras:
            # a metric is the same name spelt differently or another metric: no near spellings
            # ("D2cc" is not a typo for "D1cc")
            close = _close(name, allowed, near=not is_metrics)
            hint = f"; did you mean '{close}'?" if close else ""
            if name.lower() in _IDENTIFYING:
                hint += "; the format holds no identifying data: leave it out"
            if is_metrics:
                out.append(
                    ((*path, name), f"unknown metric '{name}'{hint}", "the DVH metrics " + ", ".join(allowed))
                )
            else:
                out.append(((*path, name), f"unknown field '{name}'{hint}", ", ".join(allowed)))
        return out
    if v == "enum":
        hint = ""
        if suggest and (isinstance(inst, str) or _is_number(inst)):
            hint = suggest(str(inst), path)
        if not hint and isinstance(inst, str):
            same = [c for c in error.validator_value if isinstance(c, str) and _fold(c) == _fold(inst)]
            hint = f"; did you mean '{same[0]}'?" if same else ""
        accepted = _accepted_enum(error.validator_value)
        if _is_number(inst) and str(inst) in map(str, error.validator_value):
            hint += f'; write it as text: "{inst}"'
        return [(path, f"{_type_name(inst)} is not an accepted value{hint}", accepted)]
    if v == "const":
        return [(path, f"{_type_name(inst)} is not accepted", json.dumps(error.validator_value))]
    if v == "type":
        want = error.validator_value
        wants = [want] if isinstance(want, str) else list(want)
        accepted = _summary(error.schema, root)
        if inst is None and _optional(root, path):
            accepted += "; or leave the field out when it is not known"
        return [
            (
                path,
                f"expected {' or '.join(_TYPE_WORDS.get(w, w) for w in wants)}, got {_type_name(inst)}"
                f"{_type_hint(inst, wants)}",
                accepted,
            )
        ]
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[v]
        return [
            (
                path,
                f"{inst} is out of range (must be {sign} {error.validator_value})",
                _summary(error.schema, root),
            )
        ]
    if v == "minProperties" and error.schema.get("properties"):
        fields = ", ".join(error.schema["properties"])
        return [(path, "must not be empty", f"at least one of the fields {fields}")]
    if v == "minProperties":
        return [(path, "must not be empty", f"at least one entry: {_summary(error.schema, root)}")]
    if v == "minItems":
        return [(path, "must not be empty", _summary(error.schema, root))]
    if v == "pattern":
        return [
            (
                path,
                f"{_type_name(inst)} does not have the required form",
                error.schema.get("description", f"text matching {error.validator_value}"),
            )
        ]
    if v == "format":
        return [
            (
                path,
                f"{_type_name(inst)} is not a valid {error.validator_value}",
                "a real calendar date, YYYY-MM-DD"
                if error.validator_value == "date"
                else f"a valid {error.validator_value}",
            )
        ]
    if v == "not" and isinstance(inst, dict) and "dosimetry" in inst:
        return [
            (
                (*path, "structures"),
                "structures are given although dosimetry is 'unavailable'",
                "either dosimetry: unavailable (no structures) or structures with their doses",
            )
        ]
    if v == "minLength":
        return [(path, "must not be empty", "non-empty text")]
    if v == "maxLength" and isinstance(inst, str):
        return [
            (
                path,
                f"text of {len(inst)} characters is too long",
                f"at most {error.validator_value} characters",
            )
        ]
    return [(path, error.message, _summary(error.schema, root))]


# When one value breaks several keywords, report the most telling one only ("05/01/2015" breaks both the
# pattern and the date format; saying so twice adds nothing).
_PRIORITY = ("type", "const", "enum", "pattern", "format")


def schema_problems(
    data: Any,
    schema_name: str,
    lines: LineMap,
    file: str,
    suggest: Suggest | None = None,
    redact: Collection[tuple[str | int, ...]] = (),
) -> list[Problem]:
    """Every schema violation of ``data`` as a Problem (deepest errors of each branch first). The value at a path
    in ``redact`` is never repeated in a message (it may identify a patient)."""
    validator = validator_for(schema_name)
    root = load_schema(schema_name)
    found: dict[tuple[str | int, ...], list[tuple[int, Problem]]] = {}
    for error in validator.iter_errors(data):
        for leaf in _leaves(error):
            rank = _PRIORITY.index(leaf.validator) if leaf.validator in _PRIORITY else len(_PRIORITY)
            for path, message, accepted in _describe(leaf, root, suggest, redact):
                problem = Problem(
                    file, path, message, accepted, line_of(lines, path), code=f"schema.{leaf.validator}"
                )
                found.setdefault(path, []).append((rank, problem))
    problems: list[Problem] = []
    for ranked in found.values():
        best = min(rank for rank, _ in ranked)
        if best < len(_PRIORITY):
            problems.append(next(p for rank, p in ranked if rank == best))
        else:
            problems.extend(dict.fromkeys(p for _, p in ranked))
    return problems


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    if error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        return [best] if best is not None else [error]
    return [error]
