"""Instructions per case for each stage of an evaluation, and per request for the service, counted by valgrind.

    python benchmarks/bench_instructions.py [--cases 100] [--stages evaluate,prepare,...] [--json out.json]
    python benchmarks/bench_instructions.py --vs PATH_TO_OTHER_ENGINE_DIR   # the same stages on another checkout

Why: this machine's speed swings about twofold within an hour (docs/performance.md), so two timings taken minutes
apart cannot tell a 10 % change from the weather. The number of machine instructions the interpreter executes for
the same work is the same from run to run (to a fraction of a percent), so it can. It is a proxy for CPU time, not
a measure of it (it counts neither cache misses nor kernel work), and every figure the goals are judged by still
comes from the timed benchmarks (bench_evaluate.py, bench_serve.py).

How: each stage runs twice under ``valgrind --tool=cachegrind --cache-sim=no``, once with its loop over the cohort
and once without; the difference, divided by the number of cases, is what the stage costs per case. Start-up (the
imports, the rule pack, the generated cohort, one warm-up pass) is the same in both runs and cancels out. valgrind
is a system package (``apt-get install valgrind``); the script says so and exits 2 when it is missing.

Stages (each over --cases generated cases, reirrad.testing.synth, seed 1):

  evaluate    Evaluator().evaluate(case): everything below, the result document included
  evaluation  the typed evaluation without the result document (prepare, fire, statuses, sensitivity)
  prepare     the fact and every computed quantity (build_fact)
  fire        the rule step alone on prebuilt facts (DurableEngine.fire)
  flips       the sensitivity pass alone, on prebuilt items
  result      build_result alone, on prebuilt evaluations
  request     one POST /api/v1/evaluate through the service's ASGI application, in process (no socket, no HTTP
              parsing): the framework, the body's parsing, the evaluation and the JSON answer
  health      one GET /api/v1/health the same way: the framework alone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("evaluate", "evaluation", "prepare", "fire", "flips", "result", "request", "health")


def _child(stage: str, cases: int, loops: int) -> None:
    """Runs inside valgrind: set up, warm up, then ``loops`` passes of the stage over the cohort."""
    import asyncio
    import tempfile

    from reirrad.case import case_problems
    from reirrad.evaluate import Evaluator
    from reirrad.explain.results import build_result
    from reirrad.testing.synth import synth_cases

    datas, found = [], []
    for data in synth_cases(cases * 2, 1):
        case, problems = case_problems(data, {}, "synth")
        if case is not None and not problems:
            datas.append(data)
            found.append(case)
    datas, found = datas[:cases], found[:cases]
    evaluator = Evaluator()
    evaluations = [evaluator.evaluation(c) for c in found]
    for e in evaluations:
        build_result(e, evaluator.explainer)
    items = [evaluator._items(c, None) for c in found]
    facts = [evaluator.prepare(c).fact for c in found]
    engine = evaluator.engine
    assert engine is not None

    if stage in ("request", "health"):
        from reirrad.service.app import create_app
        from reirrad.service.security import ServiceConfig

        app = create_app(ServiceConfig(data_dir=Path(tempfile.mkdtemp(prefix="reirrad-bench-"))))
        bodies = [json.dumps(d).encode() for d in datas]

        async def call(path: str, method: str, body: bytes) -> int:
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": [
                    (b"host", b"127.0.0.1"),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
                "client": ("127.0.0.1", 40000),
                "server": ("127.0.0.1", 8000),
                "state": {},
            }
            given = False
            status = 0

            async def receive() -> dict[str, Any]:
                nonlocal given
                if not given:
                    given = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.sleep(3600)
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]

            await app(scope, receive, send)
            return status

        async def serve(passes: int) -> None:
            for body in bodies[:5]:
                assert await call("/api/v1/evaluate", "POST", body) == 200
            assert await call("/api/v1/health", "GET", b"") == 200
            for _ in range(passes):
                for body in bodies:
                    if stage == "request":
                        await call("/api/v1/evaluate", "POST", body)
                    else:
                        await call("/api/v1/health", "GET", b"")

        asyncio.run(serve(loops))
        return

    per_item: dict[str, tuple[list[Any], Any]] = {  # stage: (what it loops over, what it does with one)
        "evaluate": (found, evaluator.evaluate),
        "evaluation": (found, evaluator.evaluation),
        "prepare": (found, evaluator.prepare),
        "fire": (facts, engine.fire),
        "flips": (
            list(zip(found, items, strict=True)),
            lambda pair: evaluator._flips(pair[0], evaluator.as_of, pair[1][1], pair[1][0].facts),
        ),
        "result": (evaluations, lambda e: build_result(e, evaluator.explainer)),
    }
    inputs, step = per_item[stage]
    for _ in range(loops):
        for one in inputs:
            step(one)


def _instructions(stage: str, cases: int, loops: int, engine_dir: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(engine_dir), "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            stage,
            str(cases),
            str(loops),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run of {stage} failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def _per_case(stage: str, cases: int, engine_dir: Path) -> int:
    base = _instructions(stage, cases, 0, engine_dir)
    loops = 2 if stage in ("health", "result", "flips", "prepare") else 1
    return (_instructions(stage, cases, loops, engine_dir) - base) // (loops * cases)


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated, of: " + ", ".join(STAGES)
    )
    parser.add_argument("--vs", type=Path, help="another checkout's engine/ folder: its figures beside these")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        print(f"--stages: unknown {', '.join(unknown)}; accepted: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    here = ROOT / "engine"
    figures: dict[str, Any] = {
        "unit": "instructions per case (request, health: per request)",
        "cases": args.cases,
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        "this": {},
    }
    if args.vs:
        figures["other"] = {"engine": str(args.vs)}
    # a first run of each engine, not counted: a changed engine builds the rule pack's load cache, which later runs find
    for engine_dir in [here] + ([args.vs] if args.vs else []):
        _instructions("fire", args.cases, 0, engine_dir)
    print(f"{'stage':<12}{'this':>14}" + (f"{'other':>14}{'this/other':>12}" if args.vs else ""))
    for stage in stages:
        mine = _per_case(stage, args.cases, here)
        figures["this"][stage] = mine
        line = f"{stage:<12}{mine:>14,}"
        if args.vs:
            theirs = _per_case(stage, args.cases, args.vs)
            figures["other"][stage] = theirs
            line += f"{theirs:>14,}{mine / theirs:>12.3f}"
        print(line, flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
