"""Readings: where the sources allow another reading than the pack's, the alternative is data (rules/readings/).

Each reading says which rule (or repair schedule) field it changes, what the pack reads now and the alternative.
``load_readings`` checks every reading against the pack (a reading whose 'default' is not what the rule says
contradicts it and is refused); ``apply_reading`` gives the pack as it would be under the reading.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reirrad.errors import InputError, Problem
from reirrad.knowledge.rulepack import CASES_SUFFIX, Citation, RepairDef, RepairStep, Rule, RulePack
from reirrad.load.validation import schema_problems
from reirrad.load.yamlio import load_yaml_file

__all__ = ["READINGS_SECTION", "Reading", "Touch", "apply_reading", "load_readings"]

READINGS_SECTION = "readings"
_ABSENT = object()


@dataclass(frozen=True)
class Touch:
    """One field of one rule or repair schedule that a reading changes."""

    kind: str
    """'rule' or 'repair'."""
    target: str
    path: tuple[str | int, ...]
    default: Any
    alternative: Any

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.path)


@dataclass(frozen=True)
class Reading:
    id: str
    title: str
    statement: str
    source_words: str
    touches: tuple[Touch, ...]
    citations: tuple[Citation, ...]
    decision: str | None = None
    source: str = ""

    @property
    def name(self) -> str:
        """The name ``--reading`` takes: the file name (``hytec-cumulative-strict``)."""
        return self.id.removeprefix("readings.")

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(t.target for t in self.touches if t.kind == "rule")

    def touches_pack(self, pack: RulePack) -> bool:
        """Whether a rule or schedule this reading changes is in the pack (in force, for a selection)."""
        ids = {r.id for r in pack.rules}
        used = {r.quantity.repair for r in pack.rules if r.quantity is not None and r.quantity.repair}
        return any(
            (t.kind == "rule" and t.target in ids)
            or (t.kind == "repair" and t.target.removeprefix("repair.") in used)
            for t in self.touches
        )


def _path(field: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in field.split("."))


def _get(data: Any, path: tuple[str | int, ...]) -> Any:
    node = data
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return _ABSENT
            node = node[part]
        else:
            if not isinstance(node, dict) or part not in node:
                return _ABSENT
            node = node[part]
    return node


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[path[-1]] = value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-12
    return bool(a == b)


def _repair_data(repair: RepairDef) -> dict[str, Any]:
    return {"steps": [{"after_months": s.after_months, "fraction": s.fraction} for s in repair.steps]}


def load_readings(root: Path, pack: RulePack) -> dict[str, Reading]:
    """Every reading under ``root``/readings, checked against its schema and against the pack, by name."""
    folder = root / READINGS_SECTION
    if not folder.is_dir():
        return {}
    problems: list[Problem] = []
    out: dict[str, Reading] = {}
    for path in sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(CASES_SUFFIX)):
        data, lines = load_yaml_file(path)
        found = schema_problems(data, "reading.schema.json", lines, str(path))
        if found:
            problems += found
            continue
        expected = f"readings.{path.stem}"
        if data["id"] != expected:
            problems.append(
                Problem(
                    str(path),
                    ("id",),
                    f"id '{data['id']}' does not match the file's name",
                    f"'{expected}'",
                    lines.get(("id",)),
                    code="reading.id-path",
                )
            )
            continue
        touches = []
        for i, raw in enumerate(data["touches"]):
            kind = "rule" if "rule" in raw else "repair"
            touch = Touch(kind, raw[kind], _path(raw["field"]), raw.get("default"), raw["alternative"])
            contradictions = _contradictions(
                pack, touch, str(path), ("touches", i), lines.get(("touches", i))
            )
            if contradictions is None:
                continue  # a rule not in force on the selection's date: nothing to read otherwise there
            touches.append(touch)
            problems += contradictions
        out[path.stem] = Reading(
            data["id"],
            data["title"],
            " ".join(data["statement"].split()),
            data["source_words"],
            tuple(touches),
            tuple(Citation(**c) for c in data["citations"]),
            data.get("decision"),
            str(path),
        )
    if problems:
        raise InputError.of(problems)
    return out


def _contradictions(
    pack: RulePack, touch: Touch, file: str, where: tuple[str | int, ...], line: int | None
) -> list[Problem] | None:
    """A touch must name a rule (every version of it) or schedule of the pack whose field now reads 'default'.
    None for a rule that is in the pack but not in this selection of it (rules in force on one date): an audit
    evaluates a treatment dated before the rule came into force without it, and without the reading's touch."""
    if touch.kind == "rule":
        targets = [(f"{r.id} {r.version}", r.raw) for r in pack.rules if r.id == touch.target]
    else:
        repair = pack.repairs.get(touch.target.removeprefix("repair."))
        targets = [] if repair is None else [(repair.id, _repair_data(repair))]
    if not targets and touch.kind == "rule" and pack.as_of is not None and touch.target in pack.all_rule_ids:
        return None
    if not targets:
        known = (
            sorted({r.id for r in pack.rules})
            if touch.kind == "rule"
            else sorted(f"repair.{k}" for k in pack.repairs)
        )
        return [
            Problem(
                file,
                (*where, touch.kind),
                f"no {touch.kind} '{touch.target}' in the pack",
                ", ".join(known),
                line,
                code="reading.target",
            )
        ]
    out = []
    for label, raw in targets:
        now = _get(raw, touch.path)
        want = _ABSENT if touch.default is None else touch.default
        if not (now is want or (now is not _ABSENT and want is not _ABSENT and _same(now, want))):
            shown = "absent" if now is _ABSENT else repr(now)
            out.append(
                Problem(
                    file,
                    (*where, "default"),
                    f"contradicts {label}: its {touch.field} is {shown}, not {touch.default!r}",
                    f"the value the rule has now ({shown})",
                    line,
                    code="reading.contradicts",
                )
            )
    return out


def apply_reading(pack: RulePack, reading: Reading) -> RulePack:
    """The pack with the reading's alternatives in place of the fields it touches."""
    rules = list(pack.rules)
    for i, rule in enumerate(rules):
        touches = [t for t in reading.touches if t.kind == "rule" and t.target == rule.id]
        if touches:
            raw = copy.deepcopy(rule.raw)
            for t in touches:
                _set(raw, t.path, t.alternative)
            rules[i] = Rule(source=rule.source, raw=raw, **raw)
    repairs = dict(pack.repairs)
    for t in reading.touches:
        key = t.target.removeprefix("repair.")
        if t.kind == "repair" and key in repairs:
            data = _repair_data(repairs[key])
            _set(data, t.path, t.alternative)
            steps = tuple(RepairStep(**s) for s in data["steps"])
            repairs[key] = repairs[key].model_copy(update={"steps": steps})
    return replace(
        pack,
        rules=tuple(rules),
        repairs=repairs,
        content_sha256=f"{pack.content_sha256}+{reading.id}",
        _by_id={},
    )
