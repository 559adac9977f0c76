"""``reirrad rules check``: schema validation and lint of a rule pack, with stable codes and file:line."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from reirrad.errors import InputError, Problem
from reirrad.knowledge.conditions import fields_of
from reirrad.knowledge.rulepack import (
    CASES_SUFFIX,
    RULE_SECTIONS,
    Reference,
    Rule,
    RulePack,
    load_pack,
    rule_id_for_path,
)
from reirrad.load.validation import schema_problems
from reirrad.load.yamlio import LineMap, load_yaml_file
from reirrad.logic.compiler import compile_pack
from reirrad.logic.conditions import truth
from reirrad.logic.facts import ALWAYS_PRESENT
from reirrad.maint.lock import LOCK_FILE, read_lock, release_problems
from reirrad.maint.versions import versions_by_id
from reirrad.testing.casetests import BASES_FILE, discover, load_bases, load_case_tests

__all__ = ["CODES", "KINDS", "Diagnostic", "KindSpec", "check_pack", "render_json", "render_text"]

Severity = Literal["error", "warning"]

CODES: dict[str, tuple[Severity, str]] = {
    "R001": ("error", "a file of the pack is not readable YAML"),
    "R002": ("error", "a file does not match its JSON Schema"),
    "R101": ("error", "duplicate rule id"),
    "R102": ("error", "id does not match the file's path"),
    "R103": ("error", "an older-version file name (name@X.Y.Z.yaml) disagrees with its version"),
    "R104": ("error", "two versions of a rule are valid on the same date"),
    "R105": ("error", "valid_until is not after valid_from"),
    "R106": ("error", "superseded_by names no rule of the pack"),
    "R107": ("error", "unknown repair schedule"),
    "R201": ("error", "citation missing"),
    "R202": ("error", "citation not in references.yaml"),
    "R203": ("error", "evidence level outside its scale"),
    "R204": (
        "error",
        "evidence level and scale disagree ('not graded' with a scale, or a level without one)",
    ),
    "R205": ("warning", "evidence scale unknown to the lint"),
    "R206": ("warning", "review overdue"),
    "R207": ("error", "review_due is not after reviewed_on"),
    "R301": ("error", "the rule mixes α/β values"),
    "R302": ("error", "duplicate key in a limit table"),
    "R303": ("error", "gap in a limit table keyed by the number of fractions"),
    "R304": ("error", "limit table key no case can have"),
    "R305": ("error", "unit does not match the calculation"),
    "R306": ("error", "a status of the rule no input can reach"),
    "R401": ("error", "rule without test cases"),
    "R402": ("error", "test cases for a rule the pack does not have"),
    "R403": ("warning", "test cases miss a status (both sides of the trigger)"),
    "R501": ("error", "the pack differs from rules/pack.lock.json"),
    "R502": ("error", "CHANGELOG.md has no entry for the pack's version"),
    "R503": ("error", "a released rule version's content changed without a new version"),
    "R504": (
        "error",
        "a version bump smaller than the change (a changed limit, scope or condition needs minor)",
    ),
    "R505": ("error", "the CHANGELOG.md entry for the pack's version is empty"),
    "R506": ("error", "the CHANGELOG.md entry does not name every changed rule or file"),
}
"""Every lint code with its severity and title. Codes are stable: a retired check keeps its number unused."""

EVIDENCE_SCALES: dict[str, tuple[str, ...]] = {
    "ISRS 2017 Table 2": ("I", "II", "III"),
}
"""Known grading scales and their levels; ``evidence.scale`` starts with one of these names."""

CALCULATION_UNITS: dict[str, str] = {
    "interval_months": "months",
    "planned_dose": "Gy",
    "planned_eqd2": "Gy EQD2",
    "cumulative_eqd2": "Gy EQD2",
    "cumulative_bed": "Gy BED",
    "eqd2_ratio": "ratio",
    "ptv_high_dmin": "Gy",
    "max_course_bed": "Gy BED",
}

TABLE_KEY_DOMAINS: dict[str, str] = {
    "planned_fractions": "a whole number of fractions, 1 or more",
    "conus_position": "'above' or 'below'",
    "highest_region": "'cervical', 'thoracic', 'lumbar' or 'sacral'",
}

_ALPHA_BETA = re.compile(r"(?:α/β|alpha/beta)\s*(?:=|of|:)?\s*([0-9]+(?:\.[0-9]+)?)")
_VERSION_HEADING = r"^##\s+{}(?:\s|$)"


@dataclass(frozen=True)
class Diagnostic:
    """One finding: a stable code, where (file and line), what is wrong, and for which rule."""

    code: str
    file: str
    line: int | None
    message: str
    rule: str | None = None
    severity: Severity = field(default="error")

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.code} {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "rule": self.rule,
            "message": self.message,
        }


def _diag(code: str, file: Path | str, line: int | None, message: str, rule: str | None = None) -> Diagnostic:
    return Diagnostic(code, str(file), line, message, rule, CODES[code][0])


@dataclass
class _Loaded:
    """A rule or repair file as read: raw data and lines always, the model only when it is valid."""

    path: Path
    rel: Path
    data: dict[str, Any]
    lines: LineMap
    rule: Rule | None = None

    def line(self, *path: str | int) -> int | None:
        key: tuple[str | int, ...] = tuple(path)
        while key not in self.lines and key:
            key = key[:-1]
        return self.lines.get(key)


@dataclass
class _Context:
    root: Path
    today: date
    references: dict[str, Any] | None
    repairs: set[str]
    loaded: list[_Loaded]
    out: list[Diagnostic] = field(default_factory=list)

    @property
    def rules(self) -> list[Rule]:
        return [f.rule for f in self.loaded if f.rule is not None]

    def file_of(self, rule: Rule) -> _Loaded:
        return next(f for f in self.loaded if f.rule is rule)

    def add(
        self, code: str, file: Path | str, line: int | None, message: str, rule: str | None = None
    ) -> None:
        self.out.append(_diag(code, file, line, message, rule))


def _read(path: Path, out: list[Diagnostic]) -> tuple[Any, LineMap] | None:
    try:
        return load_yaml_file(path)
    except InputError as exc:
        out.extend(_diag("R001", p.file, p.line, p.message) for p in exc.problems)
        return None


_SCHEMA_CODES: list[tuple[tuple[str | int, ...], tuple[str, ...], str]] = [
    (("citations",), ("schema.required", "schema.minItems"), "R201"),
    (("evidence", "scale"), ("schema.required",), "R204"),
    (("evidence",), ("schema.not",), "R204"),
]
"""Schema problems a dedicated lint check explains better: reported under that check's code."""


def _schema(data: Any, schema: str, lines: LineMap, path: Path, out: list[Diagnostic]) -> bool:
    problems = schema_problems(data, schema, lines, str(path))
    for p in problems:
        code = next((c for where, kinds, c in _SCHEMA_CODES if p.path == where and p.code in kinds), "R002")
        message = p.render().split(": ", 1)[1] if code == "R002" else _schema_message(code, p)
        out.append(_diag(code, p.file, p.line, message, data.get("id") if isinstance(data, dict) else None))
    return not problems


def _schema_message(code: str, problem: Problem) -> str:
    if code == "R201":
        return "the rule cites no source (accepted: at least one citation with ref and locator)"
    if problem.code == "schema.not":
        return "evidence 'not graded' must not name a scale (remove evidence.scale)"
    return "an evidence level needs the scale that defines it (add evidence.scale, e.g. 'ISRS 2017 Table 2')"


def _rule_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.yaml")
        if p.relative_to(root).parts[0] in (*RULE_SECTIONS, "repair") and not p.name.endswith(CASES_SUFFIX)
    )


def _load_file(root: Path, path: Path, out: list[Diagnostic]) -> _Loaded | None:
    read = _read(path, out)
    if read is None:
        return None
    data, lines = read
    rel = path.relative_to(root)
    is_repair = rel.parts[0] == "repair"
    valid = _schema(data, "repair.schema.json" if is_repair else "rule.schema.json", lines, path, out)
    if not isinstance(data, dict):
        return None
    loaded = _Loaded(path, rel, data, lines)
    if valid and not is_repair:
        try:
            loaded.rule = Rule(source=str(path), raw=data, **data)
        except ValidationError as exc:
            out.extend(
                _diag(
                    "R002",
                    path,
                    loaded.line(*e["loc"]),
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}",
                    data.get("id"),
                )
                for e in exc.errors()
            )
    return loaded


def _check_identity(ctx: _Context, f: _Loaded) -> None:
    rule_id = f.data.get("id")
    if not isinstance(rule_id, str):
        return
    expected = rule_id_for_path(f.rel)
    if rule_id != expected:
        ctx.add(
            "R102",
            f.path,
            f.line("id"),
            f"id '{rule_id}' does not match the file's path; expected "
            f"'{expected}' (the path under rules/ is the rule's identity)",
            rule_id,
        )
    stem = f.rel.name.removesuffix(".yaml")
    if "@" in stem:
        suffix = stem.split("@", 1)[1]
        if f.data.get("version") != suffix:
            ctx.add(
                "R103",
                f.path,
                f.line("version"),
                f"the file name says version {suffix} but the file has "
                f"version {f.data.get('version')}; rename the file or correct the version",
                rule_id,
            )


def _check_citations(ctx: _Context, f: _Loaded) -> None:
    if ctx.references is None:
        return
    citations = f.data.get("citations")
    if not isinstance(citations, list):
        return
    for i, citation in enumerate(citations):
        ref = citation.get("ref") if isinstance(citation, dict) else None
        if isinstance(ref, str) and ref not in ctx.references:
            ctx.add(
                "R202",
                f.path,
                f.line("citations", i, "ref"),
                f"citation '{ref}' is not in references.yaml "
                f"(known: {', '.join(sorted(ctx.references)) or 'none'})",
                f.data.get("id"),
            )


def _scale_levels(scale: str) -> tuple[str, tuple[str, ...]] | None:
    for name, levels in EVIDENCE_SCALES.items():
        if scale.casefold().startswith(name.casefold()):
            return name, levels
    return None


def _check_evidence(ctx: _Context, f: _Loaded) -> None:
    evidence = f.data.get("evidence")
    if not isinstance(evidence, dict):
        return
    level, scale = evidence.get("quality_of_evidence"), evidence.get("scale")
    if not isinstance(level, str) or level == "not graded" or not isinstance(scale, str):
        return
    known = _scale_levels(scale)
    where = f.line("evidence", "quality_of_evidence")
    if known is None:
        ctx.add(
            "R205",
            f.path,
            f.line("evidence", "scale"),
            f"evidence scale '{scale}' is not one the lint knows "
            f"(known: {', '.join(EVIDENCE_SCALES)}); its levels are not checked",
            f.data.get("id"),
        )
    elif level not in known[1]:
        ctx.add(
            "R203",
            f.path,
            where,
            f"evidence level '{level}' is not a level of {known[0]} "
            f"(accepted: {', '.join(known[1])}, or 'not graded' without a scale)",
            f.data.get("id"),
        )


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _check_review(ctx: _Context, f: _Loaded) -> None:
    reviewed, due = _date(f.data.get("reviewed_on")), _date(f.data.get("review_due"))
    rule_id = f.data.get("id")
    if reviewed is not None and due is not None and due <= reviewed:
        ctx.add(
            "R207",
            f.path,
            f.line("review_due"),
            f"review_due {due} is not after reviewed_on {reviewed}",
            rule_id,
        )
    ended = _date(f.data.get("valid_until"))
    if (
        due is not None
        and due < ctx.today
        and f.data.get("status") != "retired"
        and (ended is None or ended > ctx.today)
    ):
        ctx.add(
            "R206",
            f.path,
            f.line("review_due"),
            f"review overdue: due {due}, today is {ctx.today}; "
            "re-check the rule against its sources and update reviewed_on and review_due",
            rule_id,
        )


FILE_CHECKS: tuple[Callable[[_Context, _Loaded], None], ...] = (
    _check_identity,
    _check_citations,
    _check_evidence,
    _check_review,
)


def _check_duplicates(ctx: _Context) -> None:
    by_key: dict[tuple[str, str], list[_Loaded]] = defaultdict(list)
    current: dict[str, list[_Loaded]] = defaultdict(list)
    for f in ctx.loaded:
        rule_id = f.data.get("id")
        if not isinstance(rule_id, str) or f.rel.parts[0] == "repair":
            continue
        by_key[(rule_id, str(f.data.get("version")))].append(f)
        if "@" not in f.rel.name:
            current[rule_id].append(f)
    reported: set[Path] = set()
    for groups in (by_key, current):
        for key, files in groups.items():
            rule_id = key if isinstance(key, str) else key[0]
            for f in files[1:]:
                if f.path not in reported:
                    reported.add(f.path)
                    ctx.add(
                        "R101",
                        f.path,
                        f.line("id"),
                        f"duplicate id '{rule_id}': also declared in "
                        f"{files[0].path} (each rule id once; older versions as name@X.Y.Z.yaml)",
                        rule_id,
                    )


def _overlap(a: Rule, b: Rule) -> bool:
    a_end, b_end = a.valid_until or date.max, b.valid_until or date.max
    return a.valid_from < b_end and b.valid_from < a_end


def _check_versions(ctx: _Context) -> None:
    ids = {r.id for r in ctx.rules}
    for rule_id, versions in versions_by_id(ctx.rules).items():
        for rule in versions:
            f = ctx.file_of(rule)
            if rule.valid_until is not None and rule.valid_until <= rule.valid_from:
                ctx.add(
                    "R105",
                    f.path,
                    f.line("valid_until"),
                    f"valid_until {rule.valid_until} is not after "
                    f"valid_from {rule.valid_from}: the version is never in force",
                    rule_id,
                )
            if rule.superseded_by is not None and rule.superseded_by.split("@")[0] not in ids:
                ctx.add(
                    "R106",
                    f.path,
                    f.line("superseded_by"),
                    f"superseded_by '{rule.superseded_by}' names no rule of the pack",
                    rule_id,
                )
        live = [r for r in versions if r.status != "retired"]
        for i, older in enumerate(live):
            for newer in live[i + 1 :]:
                if _overlap(older, newer) and "draft" not in (older.status, newer.status):
                    f = ctx.file_of(newer)
                    ctx.add(
                        "R104",
                        f.path,
                        f.line("valid_from"),
                        f"versions {older.version} and {newer.version} of "
                        f"{rule_id} are both in force from {max(older.valid_from, newer.valid_from)}; set "
                        f"valid_until {newer.valid_from} on {older.version} or retire it",
                        rule_id,
                    )


def _check_repairs(ctx: _Context) -> None:
    for rule in ctx.rules:
        repair = rule.quantity.repair if rule.quantity else None
        if repair is not None and repair not in ctx.repairs:
            f = ctx.file_of(rule)
            ctx.add(
                "R107",
                f.path,
                f.line("quantity", "parameters", "repair"),
                f"unknown repair schedule '{repair}' (known: {', '.join(sorted(ctx.repairs)) or 'none'})",
                rule.id,
            )


def _check_alpha_beta(ctx: _Context, rule: Rule) -> None:
    f = ctx.file_of(rule)
    named = {
        float(v) for field_ in ("title", "statement") for v in _ALPHA_BETA.findall(getattr(rule, field_))
    }
    parameter = rule.quantity.alpha_beta if rule.quantity else None
    shown = ", ".join(f"{v:g}" for v in sorted(named))
    if len(named) > 1:
        ctx.add(
            "R301",
            f.path,
            f.line("statement"),
            f"the title and statement name several α/β values ({shown} Gy); a rule uses one α/β",
            rule.id,
        )
    elif parameter is not None and named and named != {parameter}:
        ctx.add(
            "R301",
            f.path,
            f.line("quantity", "parameters", "alpha_beta"),
            f"the statement names α/β {shown} Gy but the calculation uses α/β {parameter:g} Gy",
            rule.id,
        )


def _check_table(ctx: _Context, rule: Rule) -> None:
    limit = rule.limit
    if limit is None or not limit.table or limit.by is None:
        return
    f = ctx.file_of(rule)
    seen: dict[Any, int] = {}
    for i, entry in enumerate(limit.table):
        line = f.line("limit", "table", i, "key")
        if entry.key in seen:
            ctx.add(
                "R302",
                f.path,
                line,
                f"limit table key {entry.key!r} is given twice (rows {seen[entry.key] + 1} "
                f"and {i + 1}); give each key one row",
                rule.id,
            )
            continue
        seen[entry.key] = i
        valid = {
            "planned_fractions": isinstance(entry.key, int) and entry.key >= 1,
            "conus_position": entry.key in ("above", "below"),
            "highest_region": entry.key in ("cervical", "thoracic", "lumbar", "sacral"),
        }.get(limit.by, True)
        if not valid:
            ctx.add(
                "R304",
                f.path,
                line,
                f"limit table key {entry.key!r} can never match {limit.by} "
                f"(accepted: {TABLE_KEY_DOMAINS.get(limit.by, 'a value of that fact')})",
                rule.id,
            )
    if limit.by == "planned_fractions":
        keys = sorted(k for k in seen if isinstance(k, int))
        gaps = (
            [
                k
                for k in range(keys[0], keys[-1] + 1)
                if k not in seen and truth(rule.condition, {"planned_fractions": k}) is not False
            ]
            if keys
            else []
        )
        if gaps:
            ctx.add(
                "R303",
                f.path,
                f.line("limit", "table"),
                f"the table gives {', '.join(map(str, keys))} fractions "
                f"but not {', '.join(map(str, gaps))}, which applies_when lets through; add the rows or "
                "exclude "
                "those fractions in applies_when",
                rule.id,
            )


def _check_unit(ctx: _Context, rule: Rule) -> None:
    if rule.quantity is None:
        return
    want = CALCULATION_UNITS.get(rule.quantity.calculation)
    if want is not None and rule.quantity.unit != want:
        f = ctx.file_of(rule)
        ctx.add(
            "R305",
            f.path,
            f.line("quantity", "unit"),
            f"unit '{rule.quantity.unit}' does not match the "
            f"calculation {rule.quantity.calculation}, which gives '{want}'",
            rule.id,
        )


def _check_reachable(ctx: _Context, rule: Rule) -> None:
    spec = spec_for(rule.kind)
    f = ctx.file_of(rule)
    others = {r.id: r for r in ctx.rules if r.id != rule.id and r.status != "retired"}
    pack = RulePack("lint", "0.0.0", "lint", date.min, ctx.root, (rule, *others.values()), {}, {}, "")
    try:
        unreachable = compile_pack(pack).unreachable
    except (ValueError, TypeError, KeyError) as exc:
        ctx.add("R306", f.path, f.line("applies_when"), f"the rule cannot be compiled: {exc}", rule.id)
        return
    reads_optional = any(not _always(name) for name in fields_of(rule.condition))
    dead: dict[str, list[str]] = defaultdict(list)
    for name in unreachable:
        rule_id, structure, metric, status = name.split("|")
        if rule_id == rule.id and (
            status in spec.must_reach or (status == "indeterminate" and reads_optional)
        ):
            dead[status].append(f"{structure} {metric}".strip() if structure not in ("", "*") else "the rule")
    for status, items in sorted(dead.items()):
        ctx.add(
            "R306",
            f.path,
            f.line("applies_when"),
            f"status '{status}' can never be reached ({', '.join(items)}): "
            "applies_when or the limit rules it out for every case",
            rule.id,
        )


def _always(name: str) -> bool:
    return name in ALWAYS_PRESENT


RuleCheck = Callable[[_Context, Rule], None]


@dataclass(frozen=True)
class KindSpec:
    """What the lint and the test runner know about one kind of rule; other kinds get the common checks."""

    coverage: frozenset[str] = frozenset()
    """Statuses the test cases must show: both sides of the trigger."""
    must_reach: frozenset[str] = frozenset()
    """Statuses whose unreachability is an error."""
    checks: tuple[RuleCheck, ...] = ()


_LIMIT_CHECKS: tuple[RuleCheck, ...] = (_check_alpha_beta, _check_table, _check_unit, _check_reachable)
KINDS: dict[str, KindSpec] = {
    "constraint": KindSpec(
        frozenset({"pass", "fail", "not_applicable"}), frozenset({"pass", "fail"}), _LIMIT_CHECKS
    ),
    "advisory": KindSpec(
        frozenset({"pass", "fail", "not_applicable"}), frozenset({"pass", "fail"}), _LIMIT_CHECKS
    ),
    "assumption": KindSpec(
        frozenset({"applied", "not_applicable"}), frozenset({"applied"}), (_check_reachable,)
    ),
    "recommendation": KindSpec(frozenset({"made", "not_made"}), frozenset({"made"}), (_check_reachable,)),
}
"""The one place for kind-specific lint checks and coverage: add a kind here."""


def spec_for(kind: str) -> KindSpec:
    return KINDS.get(kind, KindSpec())


def _pack_for_cases(ctx: _Context) -> RulePack:
    """The pack the test cases are dated against: the loaded pack, or, when it does not load, its valid rules."""
    try:
        return load_pack(ctx.root)
    except InputError:
        return RulePack("", "0.0.0", "", ctx.today, ctx.root, tuple(ctx.rules), {}, {}, "")


def _check_cases(ctx: _Context) -> None:
    files = discover(ctx.root)
    exercised: dict[str, set[str]] = defaultdict(set)
    bases: dict[str, Any] | None = None
    if files:
        bases_path = ctx.root / BASES_FILE
        try:
            bases = load_bases(ctx.root) if bases_path.is_file() else {}
        except InputError as exc:
            ctx.out.extend(
                _diag("R001" if p.code in ("yaml", "io") else "R002", p.file, p.line, p.message)
                for p in exc.problems
            )
    ids = {r.id for r in ctx.rules} | {f.data.get("id") for f in ctx.loaded}
    pack = _pack_for_cases(ctx)
    for path in files:
        try:
            tests = load_case_tests(path, bases or {}, pack)
        except InputError as exc:
            ctx.out.extend(
                _diag(
                    "R001" if p.code in ("yaml", "io") else "R002",
                    p.file,
                    p.line,
                    p.render().split(": ", 2)[-1],
                )
                for p in exc.problems
            )
            continue
        for test in tests:
            for e in test.expect:
                exercised[e.rule].add(e.status)
                if e.rule not in ids:
                    ctx.add(
                        "R402",
                        path,
                        test.line,
                        f"test case '{test.name}' expects a result of '{e.rule}', "
                        "which is not a rule of the pack",
                        e.rule,
                    )
    for rule_id, versions in versions_by_id(ctx.rules).items():
        current = versions[-1]
        if all(r.status == "retired" for r in versions):
            continue
        f = ctx.file_of(current)
        if rule_id not in exercised:
            ctx.add(
                "R401",
                f.path,
                f.line("id"),
                f"no test case exercises {rule_id}; add "
                f"{f.rel.name.split('@')[0].removesuffix('.yaml')}{CASES_SUFFIX} beside it",
                rule_id,
            )
            continue
        missing = sorted(spec_for(current.kind).coverage - exercised[rule_id])
        if missing:
            ctx.add(
                "R403",
                f.path,
                f.line("id"),
                f"the test cases of {rule_id} show no {', '.join(missing)} "
                "result; test both sides of the trigger",
                rule_id,
            )


KNOWLEDGE_LOADERS = (
    ("EVIDENCE_FILE", "load_evidence"),
    ("TABLE_FILE", "load_table"),
    ("ASSESSMENT_FILE", "load_assessment"),
    ("LISTS_FILE", "load_histology_lists"),
)
"""Knowledge data beside the rules (reirrad.knowledge): each file present is loaded, its problems reported."""


def _check_readings(ctx: _Context) -> None:
    """Readings (rules/readings/): each valid, and each touching a field of the pack that now reads its default."""
    from reirrad.knowledge.readings import READINGS_SECTION, load_readings

    if not (ctx.root / READINGS_SECTION).is_dir():
        return
    try:
        load_readings(ctx.root, load_pack(ctx.root))
    except InputError as exc:
        ctx.out.extend(
            _diag(
                "R001" if p.code in ("yaml", "io") else "R002", p.file, p.line, p.render().split(": ", 2)[-1]
            )
            for p in exc.problems
        )


def _check_knowledge(ctx: _Context) -> None:
    from reirrad.knowledge import data as knowledge

    for file_name, loader_name in KNOWLEDGE_LOADERS:
        relative, loader = getattr(knowledge, file_name, None), getattr(knowledge, loader_name, None)
        if relative is None or loader is None or not (ctx.root / relative).is_file():
            continue
        try:
            loader(ctx.root)
        except InputError as exc:
            ctx.out.extend(
                _diag(
                    "R001" if p.code in ("yaml", "io") else "R002",
                    p.file,
                    p.line,
                    p.render().split(": ", 2)[-1],
                )
                for p in exc.problems
            )


def _check_release(ctx: _Context, version: str | None) -> None:
    if version is None:
        return
    lock_path = ctx.root / LOCK_FILE
    if lock_path.is_file():
        lock = read_lock(ctx.root)
        digest = _content_sha256(ctx.root)
        if digest is not None and (lock.get("content_sha256"), lock.get("version")) != (digest, version):
            ctx.add(
                "R501",
                lock_path,
                None,
                f"the pack (version {version}) differs from {LOCK_FILE} (version "
                f"{lock.get('version')}): bump the version in pack.yaml, add a CHANGELOG.md entry and run "
                "`reirrad rules lock`",
            )
    if lock_path.is_file():
        try:
            found = release_problems(ctx.root)
        except InputError:
            found = []  # the other checks report why the pack does not load
        for p in found:
            ctx.add(p.code, p.file, p.line, p.message, p.rule)
    changelog = ctx.root / "CHANGELOG.md"
    if changelog.is_file():
        text = changelog.read_text(encoding="utf-8")
        if not re.search(_VERSION_HEADING.format(re.escape(version)), text, re.MULTILINE):
            ctx.add(
                "R502",
                changelog,
                None,
                f"CHANGELOG.md has no '## {version}' entry for the pack's version; say "
                "which rules and limits changed, from when and why",
            )


def _content_sha256(root: Path) -> str | None:
    try:
        return load_pack(root).content_sha256
    except InputError:
        return None  # the other checks report why


def check_pack(root: Path | str, today: date | None = None) -> list[Diagnostic]:
    """Every finding of the pack at ``root``, by file and line; InputError if it is not a pack."""
    root = Path(root)
    if not (root / "pack.yaml").is_file():
        raise InputError.of(
            [
                Problem(
                    str(root),
                    (),
                    "not a rule pack: pack.yaml is missing",
                    "a directory with pack.yaml, references.yaml and rule files",
                    code="pack.missing",
                )
            ]
        )
    out: list[Diagnostic] = []
    version: str | None = None
    manifest = _read(root / "pack.yaml", out)
    if manifest is not None and _schema(
        manifest[0], "pack.schema.json", manifest[1], root / "pack.yaml", out
    ):
        version = manifest[0]["version"]
    references: dict[str, Any] | None = None
    refs = _read(root / "references.yaml", out)
    if refs is not None and _schema(
        refs[0], "references.schema.json", refs[1], root / "references.yaml", out
    ):
        references = {key: Reference(id=key, **value) for key, value in refs[0].items()}
    loaded = [f for f in (_load_file(root, p, out) for p in _rule_files(root)) if f is not None]
    repairs = {
        str(f.data.get("id", "")).removeprefix("repair.") for f in loaded if f.rel.parts[0] == "repair"
    }
    ctx = _Context(root, today or date.today(), references, repairs, loaded, out)
    for f in loaded:
        for check in FILE_CHECKS:
            check(ctx, f)
    _check_duplicates(ctx)
    _check_versions(ctx)
    _check_repairs(ctx)
    for rule in ctx.rules:
        for rule_check in spec_for(rule.kind).checks:
            rule_check(ctx, rule)
    _check_cases(ctx)
    _check_knowledge(ctx)
    if not errors(out):  # readings are checked against the loaded pack, which needs a pack that loads
        _check_readings(ctx)
    _check_release(ctx, version)
    return sorted(set(out), key=lambda d: (d.file, d.line or 0, d.code, d.message))


def errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]


def render_text(diagnostics: list[Diagnostic]) -> str:
    lines = [d.render() for d in diagnostics]
    n_err = len(errors(diagnostics))
    lines.append(f"{n_err} error(s), {len(diagnostics) - n_err} warning(s)")
    return "\n".join(lines) + "\n"


def render_json(diagnostics: list[Diagnostic]) -> str:
    n_err = len(errors(diagnostics))
    doc = {
        "errors": n_err,
        "warnings": len(diagnostics) - n_err,
        "diagnostics": [d.as_dict() for d in diagnostics],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
