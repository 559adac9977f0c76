"""``reirrad rules test``: run the YAML test cases and report coverage per rule version and per status."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reirrad.knowledge.rulepack import RulePack, load_pack
from reirrad.maint.lint import spec_for
from reirrad.maint.versions import versions_by_id
from reirrad.testing.casetests import (
    CaseTest,
    EvaluatorCache,
    check,
    discover,
    load_bases,
    load_case_tests,
    version_in_force,
)

__all__ = ["Coverage", "TestReport", "render_json", "render_text", "run_tests"]


@dataclass
class Coverage:
    """The statuses the test cases show for one version of one rule."""

    rule: str
    kind: str
    required: list[str]
    seen: list[str]
    version: str = ""
    required_in_force: bool = True
    """An active version is in force on some dates and must be tested; a draft is reported but not required."""

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.required) - set(self.seen))


@dataclass
class TestReport:
    cases: int = 0
    runs: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and all(
            not c.missing and c.seen for c in self.coverage if c.required_in_force
        )


def _coverage(pack: RulePack, tests: list[CaseTest]) -> list[Coverage]:
    """Statuses per (rule, version): each expectation counts for the version of its rule that the case met."""
    by_id = versions_by_id(pack.rules)
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for test in tests:
        for e in test.expect:
            if e.rule == test.rule and test.version is not None:
                version: str | None = test.version
            else:
                met = version_in_force(by_id.get(e.rule, []), test.as_of)
                version = met.version if met is not None else None
            if version is not None:
                seen[(e.rule, version)].add(e.status)
    out = []
    for rule_id, versions in by_id.items():
        for rule in versions:
            if rule.status == "retired":
                continue
            out.append(
                Coverage(
                    rule_id,
                    rule.kind,
                    sorted(spec_for(rule.kind).coverage),
                    sorted(seen[(rule_id, rule.version)]),
                    rule.version,
                    rule.status == "active",
                )
            )
    return out


def run_tests(root: Path | str, engines: tuple[str, ...] = ("durable", "oracle")) -> TestReport:
    """Every test case on every engine; coverage counts the statuses the cases expect (and that then hold)."""
    root = Path(root)
    pack = load_pack(root)
    bases = load_bases(root)
    tests = [t for path in discover(root) for t in load_case_tests(path, bases, pack)]
    cache = EvaluatorCache(pack)
    report = TestReport(cases=len(tests))
    for test in tests:
        for engine in engines:
            report.runs += 1
            failures = check(test, cache.get(test.as_of, engine, test.include_drafts, test.reading))
            if failures:
                report.failures.append(
                    {
                        "file": str(test.file),
                        "line": test.line,
                        "name": test.name,
                        "engine": engine,
                        "source": test.source,
                        "failures": failures,
                    }
                )
    report.coverage = _coverage(pack, tests)
    return report


def render_text(report: TestReport) -> str:
    out = []
    for f in report.failures:
        out.append(f"FAIL {f['file']}:{f['line']}: {f['name']} [{f['engine']}]")
        out += [f"  - {x}" for x in f["failures"]]
        out.append(f"  source: {f['source']}")
    out.append("coverage per rule version (statuses the test cases exercise):")
    width = max((len(f"{c.rule} {c.version}") for c in report.coverage), default=10)
    for c in report.coverage:
        gap = (
            f"  MISSING {', '.join(c.missing)}"
            if c.missing
            else ("  MISSING any test case" if not c.seen else "")
        )
        if gap and not c.required_in_force:
            gap += " (draft: not required)"
        label = f"{c.rule} {c.version}"
        out.append(f"  {label:<{width}}  {c.kind:<14} {', '.join(c.seen) or '-'}{gap}")
    required = [c for c in report.coverage if c.required_in_force]
    uncovered = sum(1 for c in required if c.missing or not c.seen)
    out.append(
        f"{report.cases} case(s), {report.runs} run(s), {len(report.failures)} failed; "
        f"{len(required) - uncovered}/{len(required)} rule version(s) in force fully covered"
    )
    return "\n".join(out) + "\n"


def render_json(report: TestReport) -> str:
    doc = {
        "ok": report.ok,
        "cases": report.cases,
        "runs": report.runs,
        "failures": report.failures,
        "coverage": [
            {
                "rule": c.rule,
                "version": c.version,
                "kind": c.kind,
                "required": c.required,
                "seen": c.seen,
                "missing": c.missing,
                "in_force": c.required_in_force,
            }
            for c in report.coverage
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
