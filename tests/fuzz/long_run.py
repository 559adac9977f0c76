"""The long fuzz run: 100,000 cases or more through the loader, both engines, the reports and the CLI, counting
refusals, crashes and unsafe verdicts (the figures in docs/robustness.md).

    python tests/fuzz/long_run.py [--cases 100000] [--seed 15] [--workers 2] [--out summary.json]

Of every ten cases (the same generator as tests/fuzz/test_properties.py, one seed per case):
- seven are plausible documents: loaded; when accepted, evaluated on durable-rules and the reference engine
  (same rules must fire), checked for a pass with missing data, rendered as text and markdown; every fourth of
  them also with its planned organ doses doubled (a fail must not turn into a pass) and in cGy (same verdicts);
- two are the same documents with hostile edits (numbers, texts, types, keys, nesting): refused with problems, or
  accepted and evaluated, never an exception;
- one is YAML bytes (plausible or edited, damaged at times) given to ``reirrad evaluate`` in process: exit 0 or 2,
  never a traceback.
A crash is any exception escaping the tool, or an exit code other than 0 and 2. Not a test: a benchmark-like tool.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import platform
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_strategies import (
    AS_OF,
    Seeded,
    all_in_cgy,
    build_case,
    damage,
    doubled_planned_dose,
    mutate,
    pass_without_data,
    statuses,
    verdicts,
)
from reirrad.evaluate import Evaluator


@cache
def _evaluator(engine: str = "durable", as_of: date = AS_OF) -> Evaluator:
    return Evaluator(None, as_of=as_of, engine=engine)


def _install_cached_evaluators() -> None:
    """The CLI builds an Evaluator per call (about a second); reuse one per (date, engine), as the tests do."""
    import reirrad.evaluate

    def reuse(pack: Any, as_of: date | None = None, engine: str = "durable", **_: Any) -> Any:
        return _evaluator(engine, as_of or AS_OF)

    reirrad.evaluate.Evaluator = reuse  # type: ignore[assignment,misc]


def _accept(doc: Any, counts: Counter[str]) -> Any:
    from reirrad.case import case_problems

    case, problems = case_problems(doc, {}, "fuzz.yaml", AS_OF)
    if case is None:
        counts["refused"] += 1
        for problem in problems:
            counts[f"code:{problem.code}"] += 1
            if "\n" in problem.render():
                counts["unsafe:multi-line refusal"] += 1
    else:
        counts["accepted"] += 1
    return case


def _plausible(seed: int, counts: Counter[str], failures: list[str]) -> None:
    from reirrad.explain.report import render_markdown, render_text

    doc = build_case(Seeded(seed))
    case = _accept(doc, counts)
    if case is None:
        return
    result = _evaluator().evaluate(case)
    for policy, verdict in verdicts(result).items():
        counts[f"verdict:{policy}:{verdict}"] += 1
    if statuses(result) != statuses(_evaluator("oracle").evaluate(case)):
        failures.append(f"seed {seed}: durable and the reference engine disagree")
    failures.extend(f"seed {seed}: {found}" for found in pass_without_data(doc, result))
    render_text(result)
    render_markdown(result)
    if seed % 4:
        return
    counts["checked:monotone"] += 1
    doubled = _accept(doubled_planned_dose(doc), Counter())
    if doubled is not None:
        after = verdicts(_evaluator().evaluate(doubled))
        failures.extend(
            f"seed {seed}: doubling the planned dose turned {p} from fail into pass"
            for p, v in verdicts(result).items()
            if v == "fail" and after[p] == "pass"
        )
    counts["checked:cgy"] += 1
    in_cgy = _accept(all_in_cgy(doc, [True, seed % 8 == 0, True, True]), Counter())
    if in_cgy is None:
        failures.append(f"seed {seed}: refused in cGy, accepted in Gy")
    elif statuses(_evaluator().evaluate(in_cgy)) != statuses(result):
        failures.append(f"seed {seed}: cGy and Gy give different verdicts")


def _mutated(seed: int, counts: Counter[str]) -> None:
    chooser = Seeded(seed)
    doc = mutate(chooser, build_case(chooser))
    case = _accept(doc, counts)
    if case is not None:
        _evaluator().evaluate(case)


def _cli(seed: int, counts: Counter[str], failures: list[str]) -> None:
    from reirrad.cli.main import main

    chooser = Seeded(seed)
    doc = build_case(chooser)
    raw = damage(chooser, mutate(chooser, doc) if chooser.integer(0, 1) else doc)
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory(prefix="reirrad-fuzz-") as tmp:
        path = Path(tmp) / "case.yaml"
        path.write_bytes(raw)
        fmt = ("text", "markdown", "json")[seed % 3]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["evaluate", str(path), "--as-of", AS_OF.isoformat(), "--format", fmt])
    counts[f"exit:{code}"] += 1
    if code not in (0, 2) or "Traceback" in err.getvalue():
        failures.append(f"seed {seed}: the CLI exited {code}: {err.getvalue()[-300:]}")


def _run_range(args: tuple[int, int, int]) -> tuple[Counter[str], list[str], list[str]]:
    start, stop, seed = args
    _install_cached_evaluators()
    counts: Counter[str] = Counter()
    failures: list[str] = []
    crashes: list[str] = []
    for i in range(start, stop):
        case_seed = seed * 1_000_003 + i
        kind = i % 10
        counts["cases"] += 1
        try:
            if kind < 7:
                counts["kind:plausible"] += 1
                _plausible(case_seed, counts, failures)
            elif kind < 9:
                counts["kind:mutated"] += 1
                _mutated(case_seed, counts)
            else:
                counts["kind:cli"] += 1
                _cli(case_seed, counts, failures)
        except Exception:
            crashes.append(f"seed {case_seed} ({kind}): {traceback.format_exc(limit=3)[-600:]}")
    return counts, failures, crashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the summary as JSON here")
    args = parser.parse_args()
    chunk = 1000
    ranges = [(a, min(a + chunk, args.cases), args.seed) for a in range(0, args.cases, chunk)]
    started = time.perf_counter()
    cpu = time.process_time()
    counts: Counter[str] = Counter()
    failures: list[str] = []
    crashes: list[str] = []
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            parts = pool.imap_unordered(_run_range, ranges)
            for part in parts:
                counts.update(part[0])
                failures += part[1]
                crashes += part[2]
                print(
                    f"{counts['cases']:>8,} cases, {len(crashes)} crashes, {len(failures)} unsafe", flush=True
                )
    else:
        for r in ranges:
            part = _run_range(r)
            counts.update(part[0])
            failures += part[1]
            crashes += part[2]
            print(f"{counts['cases']:>8,} cases, {len(crashes)} crashes, {len(failures)} unsafe", flush=True)
    summary = {
        "cases": counts["cases"],
        "seed": args.seed,
        "workers": args.workers,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "parent_cpu_seconds": round(time.process_time() - cpu, 1),
        "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} cores, Python {platform.python_version()}",
        "crashes": len(crashes),
        "unsafe_verdicts": len(failures),
        "counts": dict(sorted(counts.items())),
        "first_crashes": crashes[:20],
        "first_unsafe": failures[:20],
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if not crashes and not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
