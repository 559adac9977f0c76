"""Cases per second for in-process evaluation of a generated cohort (issue 2). A script, not a timed test.

    python benchmarks/bench_evaluate.py --n 10000 [--seed 1] [--repeat 5] [--json out.json]

Every figure is the median of --repeat runs over the whole cohort (time.perf_counter). Cases are generated with
reirrad.testing.synth and validated outside the timed region; every measured path starts from validated ``Case`` objects.

  end_to_end       Evaluator().evaluate(case): fact building, durable firing, status mapping, result dict.
  noop_rule_step   The same pipeline with the rule step replaced by a stand-in that replays the rule names durable
                   fired for that case (recorded beforehand, outside the timed region): everything but durable.
                   The replay costs one list-iterator step per case, so end_to_end - noop_rule_step is the cost of
                   the rule step as the pipeline pays it (fact serialisation, matching, firing, session clean-up).
  engine_alone     DurableEngine.fire on facts built beforehand.
  obvious_durable  The same compiled patterns on a stock durable ``Host`` (its default timer threads, its stock
                   action path: Closure, Promise, state re-serialisation) on prebuilt facts: ``assert_fact`` of
                   the case, then of each derived fact and stage fact (by the caller, after the call returns),
                   each rule's action a plain one-argument function, then ``delete_state``. This is the rule
                   step alone done the obvious way: compare it with engine_alone.
  oracle           The pure-Python oracle (reirrad.backends.patterns) on the same prebuilt facts, for reference.

Stage timings (µs per case, separate loops over the same cohort) say where the end-to-end time goes.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import date
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

# Inside the package only reirrad/backends/durable.py imports durable. This script is not part of the package: it
# imports durable directly to measure the stock Host as a reference point ("the obvious durable usage").
from durable import engine as durable_engine
from reirrad.backends.durable import DurableEngine
from reirrad.backends.reference import ReferenceEngine
from reirrad.case import Case, case_problems
from reirrad.evaluate import Evaluator, build_fact
from reirrad.explain.results import build_result
from reirrad.logic.compiler import CompiledPack, stage_fact
from reirrad.testing.synth import synth_cases

AS_OF = date(2025, 10, 1)


def median_seconds(run: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class ReplayEngine:
    """The no-op rule step: hands back, case after case, the rule names recorded from durable beforehand."""

    def __init__(self, like: Any, recorded: list[list[str]]) -> None:
        self.name, self.version = like.name, like.version
        self._recorded = recorded
        self._next = iter(recorded).__next__

    def rewind(self) -> None:
        self._next = iter(self._recorded).__next__

    def fire(self, fact: dict[str, Any]) -> list[str]:
        return self._next()


class StockHost(durable_engine.Host):
    """durable's Host as shipped (timer threads, stock action path); each rule's action records its own name."""

    def __init__(self, ruleset: dict[str, Any], fired: list[str]) -> None:
        self._fired = fired
        super().__init__()
        self.set_rulesets(ruleset)

    def get_action(self, action_name: str) -> Callable[[Any], None]:
        fired = self._fired

        def action(c: Any) -> None:
            fired.append(action_name)

        return action


STOCK_SENTINEL = "sentinel"
"""A rule every fact matches: deleting a durable session after a fact that matched nothing corrupts the heap."""


def obvious_durable(ev: Evaluator) -> tuple[StockHost, str, list[str]]:
    name = ev.compiled.ruleset_name + "_stock"
    definition = copy.deepcopy(ev.compiled.durable_ruleset())
    for (
        rule_name,
        rule,
    ) in definition.items():  # name each action after its rule so the action knows what fired
        rule["run"] = rule_name
    definition[STOCK_SENTINEL] = {"all": [{"m": {"reirrad_fact": 1}}], "run": STOCK_SENTINEL}
    fired: list[str] = []
    return StockHost({name: definition}, fired), name, fired


def stock_fire(
    host: StockHost, name: str, fired: list[str], fact: dict[str, Any], compiled: CompiledPack
) -> list[str]:
    """The case fact, then each stage. Derived facts are asserted by the caller once assert_fact has returned:
    asserting them from inside a stock action failed here (durable error 307)."""
    fired.clear()
    asserted: set[str] = set()

    def add(facts: dict[str, Any]) -> None:
        host.assert_fact(name, {**facts, "sid": "case", "reirrad_fact": 1})

    def derived() -> None:
        while True:
            new = {
                json.dumps(r.asserts, sort_keys=True): r.asserts
                for n in dict.fromkeys(fired)
                if (r := compiled.by_name.get(n)) is not None and r.asserts is not None
            }
            new = {
                key: facts for key, facts in new.items() if key not in asserted
            }  # one fact per (rule, status)
            if not new:
                return
            asserted.update(new)
            for facts in new.values():
                add(facts)

    try:
        add(fact)
        derived()
        for stage in range(2, compiled.stages + 1):
            add(stage_fact(stage))
            derived()
    finally:
        host.delete_state(name, "case")
    return [n for n in dict.fromkeys(fired) if n != STOCK_SENTINEL]


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "durable_rules": dist_version("durable-rules"),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="cases in the generated cohort (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="cohort seed (default 1)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure; the median is reported")
    parser.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    cases: list[Case] = []
    for doc in synth_cases(args.n, args.seed):
        case, problems = case_problems(doc, {}, "synthetic")
        if case is None or problems:
            raise SystemExit(f"{doc['case_id']}: invalid synthetic case: {problems}")
        cases.append(case)

    ev = Evaluator(as_of=AS_OF)
    durable = ev.engine
    assert isinstance(durable, DurableEngine)
    oracle = ReferenceEngine()
    built = [ev.prepare(c) for c in cases]
    facts = [b.fact for b in built]
    pending = [[(i.rule, i.key, i.computed.value) for i in b.items] for b in built]
    fired = [durable.fire(f) for f in facts]
    replay = ReplayEngine(durable, fired)
    evaluations = [ev.evaluation(c) for c in cases]
    host, stock_name, stock_fired = obvious_durable(ev)
    # The reference paths must fire what the pipeline fires, or the comparison means nothing.
    disagreed = []
    for i, fact in enumerate(facts[:500]):
        if sorted(stock_fire(host, stock_name, stock_fired, fact, ev.compiled)) != sorted(fired[i]):
            disagreed.append(i)
        reference = oracle.statuses(built[i].facts, pending[i])
        assert reference == evaluations[i].statuses(), f"the reference and durable disagree on case {i}"
    if disagreed:
        print(
            f"note: the stock host disagreed on {len(disagreed)} of the first 500 cases (first: {disagreed[0]}); "
            "an action may have run on its timer thread"
        )

    def end_to_end() -> None:
        for c in cases:
            ev.evaluate(c)

    def noop_rule_step() -> None:
        replay.rewind()
        ev.engine = replay
        try:
            for c in cases:
                ev.evaluate(c)
        finally:
            ev.engine = durable

    def engine_alone() -> None:
        for f in facts:
            durable.fire(f)

    def stock() -> None:
        for f in facts:
            stock_fire(host, stock_name, stock_fired, f, ev.compiled)

    def run_oracle() -> None:
        for b, p in zip(built, pending, strict=True):
            oracle.statuses(b.facts, p)

    def stage_fact() -> None:
        for c in cases:
            build_fact(c, ev.pack, ev.plans, ev.knowledge.radioresistant)

    def stage_result() -> None:
        for evaluation in evaluations:
            build_result(evaluation, ev.explainer)

    figures: dict[str, float] = {}
    failed: dict[str, str] = {}
    for label, run in (
        ("end_to_end", end_to_end),
        ("noop_rule_step", noop_rule_step),
        ("engine_alone", engine_alone),
        ("obvious_durable", stock),
        ("oracle", run_oracle),
    ):
        try:
            figures[label] = args.n / median_seconds(run, args.repeat)
        except Exception as exc:  # the stock Host is a reference point only: say why it has no figure
            failed[label] = f"{type(exc).__name__}: {exc}"
    stages = {
        "fact_building": median_seconds(stage_fact, args.repeat) / args.n * 1e6,
        "rule_step (DurableEngine.fire)": median_seconds(engine_alone, args.repeat) / args.n * 1e6,
        "result_building": median_seconds(stage_result, args.repeat) / args.n * 1e6,
    }
    stages["rest: status mapping, cache effects"] = 1e6 / figures["end_to_end"] - sum(stages.values())

    info = machine()
    print(f"reirrad benchmark: {args.n} synthetic cases (seed {args.seed}), median of {args.repeat} runs")
    print(
        f"machine: {info['nproc']} CPUs, Python {info['python']}, durable-rules {info['durable_rules']}, "
        f"{info['platform']}" + (f", {info['malloc_env']}" if info["malloc_env"] else "")
    )
    print(
        f"compiled rules: {len(ev.compiled.rules)}; fired per case: "
        f"{sum(map(len, fired)) / len(fired):.1f} on average\n"
    )
    print(f"{'path':<18}{'cases/s':>10}{'µs/case':>10}")
    for label, rate in figures.items():
        print(f"{label:<18}{rate:>10,.0f}{1e6 / rate:>10.0f}")
    for label, why in failed.items():
        print(f"{label:<18}{'failed':>10}  {why}")
    ratio = figures["end_to_end"] / figures["noop_rule_step"]
    print(f"\nend_to_end / noop_rule_step = {ratio:.2f} (share of the time outside the rule step)")
    print("\nwhere the time goes (µs per case, end to end):")
    for label, us in stages.items():
        print(f"  {label:<32}{us:>8.0f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "n": args.n,
                    "seed": args.seed,
                    "repeat": args.repeat,
                    "machine": info,
                    "compiled_rules": len(ev.compiled.rules),
                    "cases_per_second": figures,
                    "end_to_end_over_noop": ratio,
                    "stage_us_per_case": stages,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
