"""Write every output a refactoring must not change, one file per case and format, to compare two commits.

    python tests/tools/snapshot_outputs.py OUT_DIR [--n 400] [--seed 9]

For the examples, every rule test case and ``--n`` synthetic cases: ``evaluate`` as text, markdown and JSON (on
durable-rules, and the statuses on the reference engine), and ``limits`` as text and JSON. Run it on the commit
before and after a change and compare the folders with ``diff -r``. Not a test: a tool for reviewers.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 23)


def _api() -> dict[str, Any]:
    """The library entry points the snapshot uses (one place, so that a layout change edits only this)."""
    from reirrad.case import case_problems
    from reirrad.dose.limits import derive_limits
    from reirrad.evaluate import Evaluator
    from reirrad.explain.limits import render_text as limits_text
    from reirrad.explain.report import render_markdown, render_text
    from reirrad.knowledge.data import load_table
    from reirrad.knowledge.rulepack import load_pack
    from reirrad.testing.casetests import discover, load_bases, load_case_tests
    from reirrad.testing.synth import synth_cases

    return {
        "case_problems": case_problems,
        "derive_limits": derive_limits,
        "limits_text": limits_text,
        "Evaluator": Evaluator,
        "render_markdown": render_markdown,
        "render_text": render_text,
        "load_table": load_table,
        "load_pack": load_pack,
        "discover": discover,
        "load_bases": load_bases,
        "load_case_tests": load_case_tests,
        "synth_cases": synth_cases,
    }


def _documents(api: dict[str, Any], n: int, seed: int) -> list[tuple[str, date, dict[str, Any]]]:
    from reirrad.load.yamlio import load_yaml_file

    docs: list[tuple[str, date, dict[str, Any]]] = []
    for path in sorted((ROOT / "docs" / "examples").glob("*.yaml")):
        docs.append((f"example-{path.stem}", AS_OF, load_yaml_file(path)[0]))
    rules = ROOT / "rules"
    bases = api["load_bases"](rules)
    for path in api["discover"](rules):
        for i, test in enumerate(api["load_case_tests"](path, bases)):
            docs.append((f"rule-{path.stem.split('.')[0]}-{path.parent.name}-{i}", test.as_of, test.document))
    for doc in api["synth_cases"](n, seed):
        docs.append((doc["case_id"], AS_OF, doc))
    return docs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    api = _api()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    full = api["load_pack"](ROOT / "rules")
    table = api["load_table"](ROOT / "rules")
    evaluators: dict[tuple[date, str], Any] = {}
    count = 0
    for name, as_of, doc in _documents(api, args.n, args.seed):
        case, problems = api["case_problems"](doc, {}, name)
        if case is None:
            (out / f"{name}.refused.txt").write_text("\n".join(p.render() for p in problems) + "\n")
            continue
        count += 1
        for engine in ("durable", "oracle"):
            if (as_of, engine) not in evaluators:
                evaluators[(as_of, engine)] = api["Evaluator"](full, as_of=as_of, engine=engine)
        result = evaluators[(as_of, "durable")].evaluate(case)
        reference = evaluators[(as_of, "oracle")].evaluate(case)
        (out / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        (out / f"{name}.txt").write_text(api["render_text"](result))
        (out / f"{name}.md").write_text(api["render_markdown"](result))
        statuses = [
            (e["rule_id"], e.get("structure"), e.get("metric"), e["status"])
            for key in ("constraints", "advisories", "assumptions", "recommendations")
            for e in reference[key]
        ]
        (out / f"{name}.oracle.json").write_text(json.dumps(statuses, ensure_ascii=False) + "\n")
        report = api["derive_limits"](case, full.select(as_of), table=table)
        (out / f"{name}.limits.txt").write_text(api["limits_text"](report))
        (out / f"{name}.limits.json").write_text(
            json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"
        )
    print(f"{count} cases written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
