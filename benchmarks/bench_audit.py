"""End-to-end audit throughput and memory (issue 4). A script, not a timed test.

    python benchmarks/bench_audit.py --n 10000 [--workers 1 2] [--memory 10000 100000] [--dir /tmp/bench]

Figures (one run each; wall clock around run_audit, so worker start-up, the pack load, chunk commits with fsync
and the summary/report are included; the cohort JSON Lines file is generated beforehand, outside the timing):

  audit_wN          reirrad.audit.run_audit with N worker processes, durable-rules as the rule step.
  noop_w2           The same pipeline, 2 workers, with the rule step replaced by a replay of the rule names
                    durable fired for each case (recorded beforehand): everything but durable.
  obvious_1p        The obvious one-process pipeline: for each line json.loads, case_problems (schema, model,
                    semantics), Evaluator.evaluate with durable's stock Host (timer threads, stock action path;
                    the case fact, then the derived and stage facts
                    asserted by the caller, then delete_state), json.dumps, write.
  memory            Peak RSS of the audit's parent + workers (sum, sampled every 50 ms from /proc) at each
                    --memory size, run as a subprocess (python -m reirrad audit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench_evaluate import obvious_durable, stock_fire  # the same stock-Host baseline (this folder)
from reirrad.audit.readers import dumps_line
from reirrad.audit.runner import AuditOptions, run_audit
from reirrad.case import case_problems
from reirrad.evaluate import Evaluator
from reirrad.testing.synth import iter_synth_cases

AS_OF = "2025-10-01"
RULES: Path | None = None


def evaluator() -> Evaluator:
    from reirrad.knowledge.rulepack import load_pack

    return Evaluator(load_pack(RULES) if RULES else None, as_of=date.fromisoformat(AS_OF))


def make_cohort(path: Path, n: int, seed: int = 1) -> Path:
    if not path.exists():
        with open(path, "wb") as f:
            for doc in iter_synth_cases(n, seed):
                f.write(dumps_line(doc))
    return path


CPU: dict[str, float] = {}


def timed_audit(cohort: Path, out: Path, workers: int, hook: Any = None) -> float:
    """Wall seconds; CPU seconds of the parent and of the (joined) workers are left in CPU."""
    t0 = os.times()
    start = time.perf_counter()
    outcome = run_audit(
        AuditOptions(
            cohort=cohort,
            out=out,
            workers=workers,
            as_of=AS_OF,
            restart=True,
            evaluator_hook=hook,
            progress=False,
            rules=RULES,
        )
    )
    seconds = time.perf_counter() - start
    t1 = os.times()
    CPU["parent"] = t1.user + t1.system - t0.user - t0.system
    CPU["workers"] = t1.children_user + t1.children_system - t0.children_user - t0.children_system
    assert outcome.evaluated + outcome.rejected == outcome.input_cases
    return seconds


class Replay:
    """The no-op rule step: the rule names durable fired for the current case, recorded beforehand."""

    name, version = "replay", "0"

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.current = ""

    def fire(self, fact: dict[str, Any]) -> list[str]:
        return self.table[self.current]


def record(cohort: Path) -> dict[str, list[str]]:
    ev = evaluator()
    table: dict[str, list[str]] = {}
    with open(cohort, "rb") as f:
        for line in f:
            case, _ = case_problems(json.loads(line), {}, "x")
            assert case is not None
            table[case.case_id] = ev.engine.fire(ev.prepare(case).fact)
    return table


def replay_hook(table: dict[str, list[str]]) -> Any:
    def hook(ev: Any) -> None:
        replay = Replay(table)
        real = ev.evaluate

        def evaluate(case: Any, **kwargs: Any) -> Any:
            replay.current = case.case_id
            return real(case, **kwargs)

        ev.engine = replay
        ev.evaluate = evaluate

    return hook


class StockEngine:
    """The stock durable Host of bench_evaluate (every stage, derived facts asserted by the caller)."""

    name, version = "durable-stock", "2.0.28"

    def __init__(self, ev: Evaluator) -> None:
        self.host, self.rs, self.fired = obvious_durable(ev)
        self.compiled = ev.compiled

    def fire(self, fact: dict[str, Any]) -> list[str]:
        return stock_fire(self.host, self.rs, self.fired, fact, self.compiled)


def obvious_one_process(cohort: Path, out: Path) -> float:
    ev = evaluator()
    ev.engine = StockEngine(ev)  # type: ignore[assignment]
    start = time.perf_counter()
    with open(cohort, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as res:
        for line in f:
            case, problems = case_problems(json.loads(line), {}, str(cohort))
            assert case is not None and not problems
            res.write(json.dumps(ev.evaluate(case), ensure_ascii=False, separators=(",", ":")) + "\n")
    return time.perf_counter() - start


def _rss_tree(pid: int) -> int:
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            pass
    return total


def peak_rss(cohort: Path, out: Path, workers: int) -> tuple[int, float]:
    cmd = [
        sys.executable,
        "-m",
        "reirrad",
        "audit",
        str(cohort),
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--as-of",
        AS_OF,
        "--restart",
        "--quiet",
        *(["--rules", str(RULES)] if RULES else []),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p, "reirrad").is_dir()),
        },
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _rss_tree(proc.pid))
        time.sleep(0.05)
    assert proc.returncode == 0, proc.returncode
    return peak, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--memory", type=int, nargs="*", default=[])
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument(
        "--rules", type=Path, default=None, help="a rule pack directory (default: the bundled pack)"
    )
    args = ap.parse_args(argv)
    global RULES  # noqa: PLW0603
    RULES = args.rules
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-audit-"))
    base.mkdir(parents=True, exist_ok=True)
    cohort = make_cohort(base / f"cohort-{args.n}.jsonl", args.n)
    fig: dict[str, Any] = {"n": args.n, "nproc": os.cpu_count(), "python": sys.version.split()[0]}
    for w in args.workers:
        s = timed_audit(cohort, base / f"out-w{w}", w)
        fig[f"audit_w{w}"] = args.n / s
        fig[f"cpu_us_per_case_w{w}"] = {k: v / args.n * 1e6 for k, v in CPU.items()}
        print(
            f"audit, {w} worker(s): {args.n / s:,.0f} cases/s ({s:.1f} s); CPU µs/case: parent "
            f"{CPU['parent'] / args.n * 1e6:.0f}, workers {CPU['workers'] / args.n * 1e6:.0f}",
            flush=True,
        )
    if not args.skip_baselines:
        table = record(cohort)
        s = timed_audit(cohort, base / "out-noop", 2, replay_hook(table))
        fig["noop_w2"] = args.n / s
        fig["cpu_us_per_case_noop"] = {k: v / args.n * 1e6 for k, v in CPU.items()}
        print(
            f"audit, 2 workers, rule step replayed (no-op): {args.n / s:,.0f} cases/s; CPU µs/case: parent "
            f"{CPU['parent'] / args.n * 1e6:.0f}, workers {CPU['workers'] / args.n * 1e6:.0f}",
            flush=True,
        )
        del table
        s = obvious_one_process(cohort, base / "obvious.jsonl")
        fig["obvious_1p"] = args.n / s
        print(f"obvious one-process pipeline (stock Host): {args.n / s:,.0f} cases/s", flush=True)
        if "audit_w2" in fig:
            print(
                f"ratio audit_w2 / obvious_1p = {fig['audit_w2'] / fig['obvious_1p']:.2f}; "
                f"audit_w2 / noop_w2 = {fig['audit_w2'] / fig['noop_w2']:.2f}"
            )
    for n in args.memory:
        c = make_cohort(base / f"cohort-{n}.jsonl", n)
        peak, s = peak_rss(c, base / f"out-mem-{n}", 2)
        fig[f"peak_rss_{n}"] = peak
        print(
            f"peak RSS (parent + 2 workers) at {n:,} cases: {peak / 2**20:,.0f} MiB ({n / s:,.0f} cases/s)",
            flush=True,
        )
        (base / f"out-mem-{n}" / "results.jsonl").unlink()
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
