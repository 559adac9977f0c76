"""YAML test cases beside the rules (``*.cases.yaml``): build each case, evaluate it, check the expectations."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from reirrad.case import case_problems
from reirrad.errors import InputError, Problem
from reirrad.evaluate import Evaluator
from reirrad.knowledge.rulepack import CASES_SUFFIX, Rule, RulePack, load_pack
from reirrad.load.validation import schema_problems
from reirrad.load.yamlio import load_yaml_file

__all__ = [
    "CaseTest",
    "Expectation",
    "check",
    "default_as_of",
    "discover",
    "load_bases",
    "load_case_tests",
    "version_in_force",
]

BASES_FILE = "bases.cases.yaml"
DEFAULT_TOLERANCE = 0.005


def default_as_of(rule: Rule, released: date) -> date:
    """The date a test case of this rule version is evaluated on when it names none: the last day of the version's
    validity, or, for a version still in force, the pack's release date (its validity's start if that is later)."""
    if rule.valid_until is not None:
        return rule.valid_until - timedelta(days=1)
    return max(rule.valid_from, released)


def version_in_force(versions: list[Rule], on: date) -> Rule | None:
    """The version of a rule a case evaluated on ``on`` meets: the active one in force, else a draft in force."""
    live = [r for r in versions if r.status != "retired" and r.in_force(on)]
    return next((r for r in live if r.status == "active"), live[0] if live else None)


@dataclass(frozen=True)
class Expectation:
    rule: str
    status: str
    structure: str | None = None
    metric: str | None = None
    value: float | None = None
    limit: float | None = None
    tolerance: float = DEFAULT_TOLERANCE
    explanation_contains: tuple[str, ...] = ()
    missing_contains: tuple[str, ...] = ()
    assumptions: tuple[str, ...] | None = None
    because_contains: tuple[str, ...] = ()
    evidence: str | None = None
    fragile: bool | None = None
    sensitivity_contains: tuple[str, ...] = ()


@dataclass
class CaseTest:
    file: Path
    line: int | None
    rule: str
    name: str
    as_of: date
    document: dict[str, Any]
    expect: list[Expectation]
    source: str
    engines: tuple[str, ...] = ("durable", "oracle")
    statuses: set[tuple[str, str]] = field(default_factory=set)
    version: str | None = None
    """The version of ``rule`` the case exercises (None when the pack has no such rule)."""
    include_drafts: bool = False
    """The version under test is a draft: the case previews it in place of the active version."""
    reading: str | None = None
    """Evaluate under this reading of rules/readings/ (None: the pack's own)."""


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split("/")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = value


def load_bases(root: Path) -> dict[str, Any]:
    data, _ = load_yaml_file(root / BASES_FILE)
    return dict(data)


def discover(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{CASES_SUFFIX}") if p.name != BASES_FILE)


def _pack_of(path: Path) -> RulePack:
    for parent in path.parents:
        if (parent / "pack.yaml").is_file():
            return load_pack(parent)
    raise InputError.of(
        [Problem(str(path), (), "no pack.yaml above this test file", "a *.cases.yaml inside a rule pack")]
    )


def load_case_tests(path: Path, bases: dict[str, Any], pack: RulePack | None = None) -> list[CaseTest]:
    """The test cases of one file. A case evaluates the version of the rule it names (``version``), else the one in
    force on its ``as_of`` (the case's, else the file's), else the latest version, on that version's default date
    (``default_as_of``): the dates follow each version's validity."""
    data, lines = load_yaml_file(path)
    problems = schema_problems(data, "cases.schema.json", lines, str(path))
    if problems:
        raise InputError.of(problems)
    pack = pack if pack is not None else _pack_of(path)
    versions = sorted(
        (r for r in pack.rules if r.id == data["rule"] and r.status != "retired"),
        key=lambda r: tuple(int(x) for x in r.version.split(".")),
    )
    out = []
    for i, raw in enumerate(data["cases"]):
        if raw["base"] not in bases:
            raise InputError.of(
                [
                    Problem(
                        str(path),
                        ("cases", i, "base"),
                        f"unknown base '{raw['base']}'",
                        ", ".join(sorted(bases)),
                        lines.get(("cases", i, "base")),
                    )
                ]
            )
        version, as_of = _version_and_date(raw, data, versions, pack, path, lines, i)
        doc = copy.deepcopy(bases[raw["base"]])
        doc["case_id"] = f"test-{path.stem.split('.')[0]}-{i + 1}"
        for key, value in raw.get("set", {}).items():
            _set_path(doc, key, copy.deepcopy(value))
        expect = [
            Expectation(
                **{"rule": data["rule"], **{k: tuple(v) if isinstance(v, list) else v for k, v in e.items()}}
            )
            for e in raw["expect"]
        ]
        out.append(
            CaseTest(
                path,
                lines.get(("cases", i)),
                data["rule"],
                raw["name"],
                as_of,
                doc,
                expect,
                raw["source"],
                version=version.version if version is not None else None,
                include_drafts=version is not None and version.status == "draft",
                reading=raw.get("reading"),
            )
        )
    return out


def _version_and_date(
    raw: dict[str, Any],
    data: dict[str, Any],
    versions: list[Rule],
    pack: RulePack,
    path: Path,
    lines: Any,
    i: int,
) -> tuple[Rule | None, date]:
    named = raw.get("version")
    given = raw.get("as_of", data.get("as_of"))
    if named is not None:
        found = next((r for r in versions if r.version == named), None)
        if found is None:
            raise InputError.of(
                [
                    Problem(
                        str(path),
                        ("cases", i, "version"),
                        f"{data['rule']} has no version {named} in force on any date",
                        ", ".join(r.version for r in versions) or "(the pack has no such rule)",
                        lines.get(("cases", i, "version")),
                    )
                ]
            )
        return found, date.fromisoformat(given) if given else default_as_of(found, pack.released)
    if given:
        on = date.fromisoformat(given)
        return version_in_force(versions, on), on
    if not versions:
        return None, pack.released
    return versions[-1], default_as_of(versions[-1], pack.released)


def _lines(result: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from result["constraints"]
    yield from result["advisories"]
    for r in result.get("recommendations", []):
        yield {
            **r,
            "structure": None,
            "metric": None,
            "value": None,
            "limit": None,
            "explanation": " ".join([r["statement"], *(b["text"] for b in r["because"])]),
            "missing": [b["text"] for b in r["because"] if b["holds"] is None],
            "assumptions": None,
        }
    for a in result["assumptions"]:
        yield {
            **a,
            "structure": None,
            "metric": None,
            "value": None,
            "limit": None,
            "explanation": a["statement"],
            "missing": [],
            "assumptions": None,
        }


def check(test: CaseTest, evaluator: Evaluator) -> list[str]:
    """Evaluate the test's case and return every unmet expectation (empty when all hold)."""
    case, problems = case_problems(test.document, {}, f"{test.file}:{test.name}")
    if case is None:
        return [f"the test case is not a valid case: {p.render()}" for p in problems]
    result = evaluator.evaluate(case)
    failures = []
    for e in test.expect:
        found = [
            line
            for line in _lines(result)
            if line["rule_id"] == e.rule and line["structure"] == e.structure and line["metric"] == e.metric
        ]
        where = f"{e.rule} {e.structure or ''} {e.metric or ''}".strip()
        if len(found) != 1:
            failures.append(f"{where}: expected one result line, found {len(found)}")
            continue
        line = found[0]
        test.statuses.add((e.rule, line["status"]))
        if line["status"] != e.status:
            failures.append(f"{where}: status {line['status']}, expected {e.status} — {line['explanation']}")
        if e.value is not None and (line["value"] is None or abs(line["value"] - e.value) > e.tolerance):
            failures.append(f"{where}: value {line['value']}, expected {e.value} ± {e.tolerance}")
        if e.limit is not None and line["limit"] != e.limit:
            failures.append(f"{where}: limit {line['limit']}, expected {e.limit}")
        for text in e.explanation_contains:
            if text not in line["explanation"]:
                failures.append(f"{where}: explanation lacks {text!r}: {line['explanation']}")
        for text in e.missing_contains:
            if not any(text in m for m in line["missing"]):
                failures.append(f"{where}: missing-data reasons lack {text!r}: {line['missing']}")
        for text in e.because_contains:
            if not any(text in b["text"] for b in line.get("because", [])):
                failures.append(
                    f"{where}: 'because' lacks {text!r}: {[b['text'] for b in line.get('because', [])]}"
                )
        if e.evidence is not None and line["evidence"]["quality_of_evidence"] != e.evidence:
            failures.append(
                f"{where}: evidence {line['evidence']['quality_of_evidence']}, expected {e.evidence}"
            )
        if e.fragile is not None and bool(line.get("fragile")) != e.fragile:
            failures.append(
                f"{where}: fragile {bool(line.get('fragile'))}, expected {e.fragile}: {line.get('sensitivity')}"
            )
        for text in e.sensitivity_contains:
            if not any(text in s["text"] for s in line.get("sensitivity", [])):
                failures.append(
                    f"{where}: sensitivity lacks {text!r}: {[s['text'] for s in line.get('sensitivity', [])]}"
                )
        if e.assumptions is not None and tuple(line["assumptions"]) != e.assumptions:
            failures.append(f"{where}: assumptions {line['assumptions']}, expected {list(e.assumptions)}")
    return failures


class EvaluatorCache:
    """One evaluator per (pack, as_of, engine, drafts, reading): durable rulesets are registered once per process."""

    def __init__(self, pack: RulePack) -> None:
        self.pack = pack
        self._cache: dict[tuple[date, str, bool, str | None], Evaluator] = {}

    def get(
        self, as_of: date, engine: str, include_drafts: bool = False, reading: str | None = None
    ) -> Evaluator:
        key = (as_of, engine, include_drafts, reading)
        if key not in self._cache:
            self._cache[key] = Evaluator(
                self.pack, as_of=as_of, engine=engine, include_drafts=include_drafts, reading=reading
            )
        return self._cache[key]
