"""The differential check: every item's status on durable-rules against the reference interpreter of the parsed rules.

The reference reads ``Rule.condition`` and ``Rule.limit`` as loaded and never the compiled patterns, so this
check catches compiler mistakes as well as engine and adapter surprises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from reirrad.case import Case, case_problems
from reirrad.errors import EngineError
from reirrad.evaluate import Evaluator
from reirrad.knowledge.rulepack import RulePack
from reirrad.testing.casetests import discover, load_bases, load_case_tests
from reirrad.testing.synth import iter_synth_cases
from reirrad.vocabulary import Status

__all__ = ["Comparison", "compare", "generated_cases", "rule_test_cases"]


@dataclass
class Comparison:
    """How many cases were compared, every disagreement in words, and the statuses seen."""

    cases: int = 0
    differences: list[str] = field(default_factory=list)
    statuses: set[Status] = field(default_factory=set)

    @property
    def agree(self) -> bool:
        return self.cases > 0 and not self.differences


def rule_test_cases(root: Path) -> list[tuple[str, date, Case]]:
    """Every YAML rule test case of a pack, with its as-of date."""
    bases = load_bases(root)
    out = []
    for path in discover(root):
        for test in load_case_tests(path, bases):
            case, problems = case_problems(test.document, {}, test.name)
            if case is None:
                raise ValueError(f"{path}: {test.name}: {problems[0].render()}")
            out.append((test.name, test.as_of, case))
    return out


def generated_cases(n: int, seed: int, as_of: date) -> Iterable[tuple[str, date, Case]]:
    """``n`` synthetic cases (more de novo and lost-plan cases than the default mix, to reach every status)."""
    for doc in iter_synth_cases(n, seed, de_novo_rate=0.15, lost_dosimetry_rate=0.15):
        case, problems = case_problems(doc, {}, doc["case_id"])
        if case is None:
            raise ValueError(f"{doc['case_id']}: {problems[0].render()}")
        yield doc["case_id"], as_of, case


def compare(pack: RulePack, cases: Iterable[tuple[str, date, Case]], *, limit: int = 20) -> Comparison:
    """Evaluate each case on durable-rules and on the reference; list (at most ``limit``) disagreements.

    An engine error on either side (two statuses, or none, for one item) is a disagreement too."""
    evaluators: dict[tuple[date, str], Evaluator] = {}

    def evaluator(as_of: date, engine: str) -> Evaluator:
        if (as_of, engine) not in evaluators:
            evaluators[(as_of, engine)] = Evaluator(pack, as_of=as_of, engine=engine)
        return evaluators[(as_of, engine)]

    out = Comparison()
    for name, as_of, case in cases:
        out.cases += 1
        try:
            durable = evaluator(as_of, "durable").evaluation(case).statuses()
        except EngineError as exc:
            out.differences.append(f"{name}: durable-rules: {exc}")
            continue
        reference = evaluator(as_of, "oracle").evaluation(case).statuses()
        out.statuses.update(reference.values())
        for key in sorted(durable.keys() | reference.keys()):
            if durable.get(key) != reference.get(key):
                rule, item = key
                out.differences.append(
                    f"{name}: {rule} {item or '(case)'}: durable-rules {durable.get(key)}, "
                    f"reference {reference.get(key)}"
                )
        if len(out.differences) >= limit:
            break
    return out
