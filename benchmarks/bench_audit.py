"""End-to-end audit throughput into the database, against the JSON-writing path, in one run; memory by cohort size;
where the time goes. A script, not a timed test.

    python benchmarks/bench_audit.py --n 10000 [--workers 2] [--memory 10000 1000000] [--dir /tmp/bench]

Figures (wall clock around run_audit: worker start-up, the pack load, the chunk commits, the summary, the report and
its explanation files included; the cohort JSON Lines file is generated beforehand, outside the timing):

  db_wN        reirrad audit into audit.duckdb only (the default), N worker processes.
  json_wN      the same audit also writing every case's full result JSON (results.jsonl, --full-results): the
               path the audit had before the database, plus the database.
  identical    the policy verdicts and every constraint line's status and value in the db audit's database (rows from
               the audit records) equal those of the json audit's full results, case by case, on all N cases.
  bytes/case   audit.duckdb after the final checkpoint, divided by N.
  stages       µs per case in one process (time.process_time): read + validate, evaluate into the audit record
               (what the database path does) and into the full result dict (what --full-results adds), database
               rows from the record, the full result's JSON, the parent's commit (from the db run's CPU).
  replay_wN    the db audit with evaluation replaced by a replay of one recorded result (its case id swapped):
               everything the audit does but evaluating: reading, validation, rows, commits, summary (no report).
  memory       peak RSS of the audit's parent + workers (sum, sampled every 50 ms from /proc) at each --memory
               size, run as a subprocess with 2 workers: `python -m reirrad audit`, or with --memory-replay the
               replayed evaluation (so that a 1,000,000-case run takes minutes, not hours, on a shared machine).
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

import duckdb
from reirrad.audit.readers import dumps_line, open_source
from reirrad.audit.rows import Rows
from reirrad.audit.runner import AuditOptions, EvaluatorCache, run_audit, validate_document
from reirrad.knowledge.rulepack import load_pack
from reirrad.testing.synth import iter_synth_cases

AS_OF = "2025-10-01"


def make_cohort(path: Path, n: int, seed: int = 1) -> Path:
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for doc in iter_synth_cases(n, seed):
                f.write(dumps_line(doc))
        tmp.rename(path)
    return path


def replay_hook(ev: Any) -> None:
    """Evaluation replaced by one recorded result (the first case's), its case id swapped: the audit's own cost. The
    full result holds every field of the audit record, so it stands for both."""
    real = ev.evaluate
    recorded: list[dict[str, Any]] = []

    def evaluate(case: Any, **kwargs: Any) -> dict[str, Any]:
        if not recorded:
            recorded.append(real(case))
        return {**recorded[0], "case_id": case.case_id}

    ev.evaluate = evaluate
    ev.record = evaluate


def timed_audit(
    cohort: Path, out: Path, workers: int, full: bool, hook: Any = None
) -> tuple[float, dict[str, float]]:
    """Wall seconds and CPU seconds (parent, workers)."""
    t0 = os.times()
    start = time.perf_counter()
    outcome = run_audit(
        AuditOptions(
            cohort=cohort,
            out=out,
            workers=workers,
            as_of=AS_OF,
            restart=True,
            progress=False,
            full_results=full,
            evaluator_hook=hook,
            report=hook is None,  # a replayed result would not survive the explanations' re-evaluation check
        )
    )
    seconds = time.perf_counter() - start
    t1 = os.times()
    assert outcome.evaluated + outcome.rejected + outcome.blank == outcome.records
    # the generated cohort is valid: a rejected record means the measured path is not the one named (a replay hook
    # that raised put every record in the errors table and was timed as the audit's own cost; found 2026-11-30)
    if outcome.rejected:
        raise SystemExit(f"{outcome.rejected} of {outcome.records} records rejected in {out}: see its errors table")
    cpu = {
        "parent": t1.user + t1.system - t0.user - t0.system,
        "workers": t1.children_user + t1.children_system - t0.children_user - t0.children_system,
    }
    return seconds, cpu


def identical(db_out: Path, json_out: Path) -> tuple[int, int]:
    """(cases compared, cases that differ) between the database of the db audit (rows from the audit records) and
    results.jsonl of the json audit (the full result documents) of the same cohort."""
    con = duckdb.connect(str(db_out / "audit.duckdb"), read_only=True)
    stored: dict[str, list[Any]] = {}
    for case_id, kind, key, status, value in con.execute(
        "SELECT c.case_id, 'v', v.policy, v.verdict, NULL FROM policy_verdicts v JOIN cases c USING (seq) "
        "UNION ALL SELECT c.case_id, 'l', l.rule_id || ' ' || coalesce(l.structure, '') || ' ' || coalesce(l.metric, ''), "
        "l.status, l.value FROM constraint_lines l JOIN cases c USING (seq)"
    ).fetchall():
        stored.setdefault(case_id, []).append((kind, key, status, value))
    con.close()
    differ = n = 0
    with open(json_out / "results.jsonl", "rb") as f:
        for line in f:
            r = json.loads(line)
            n += 1
            mine = [("v", p["policy"], p["verdict"], None) for p in r["policy_summary"]]
            mine += [
                ("l", f"{e['rule_id']} {e['structure'] or ''} {e['metric'] or ''}", e["status"], e["value"])
                for e in r["constraints"]
            ]
            if sorted(mine, key=repr) != sorted(stored.get(r["case_id"], []), key=repr):
                differ += 1
    return n, differ


def stages(cohort: Path, n: int) -> dict[str, float]:
    """µs per case of each step, in this process, over the first n cases."""
    source = open_source(cohort)
    cache = EvaluatorCache(load_pack())
    on = date.fromisoformat(AS_OF)
    ev, label = cache.for_date(on)
    records = []
    t = time.process_time()
    for rec in source.records(1000):
        case, _ = validate_document(rec.data, rec.lines, rec.file)
        records.append((rec, case))
        if len(records) == n:
            break
    read_validate = time.process_time() - t
    t = time.process_time()
    results = [ev.record(case) for _, case in records]
    evaluate = time.process_time() - t
    t = time.process_time()
    full = [ev.evaluate(case) for _, case in records]
    evaluate_full = time.process_time() - t
    rows = Rows()
    t = time.process_time()
    for (rec, case), result in zip(records, results, strict=True):
        rows.add_case(rec.seq, rec.key, rec.line, case, rec.data, result, label)
    build_rows = time.process_time() - t
    with tempfile.TemporaryDirectory() as d:
        t = time.process_time()
        rows.write(Path(d), "x")
        write_rows = time.process_time() - t
    t = time.process_time()
    for r in full:
        dumps_line(r)
    dump_json = time.process_time() - t
    k = len(records)
    return {
        "read_validate": read_validate / k * 1e6,
        "evaluate_record": evaluate / k * 1e6,
        "evaluate_result_dict": evaluate_full / k * 1e6,
        "rows_from_result": build_rows / k * 1e6,
        "rows_to_part_files": write_rows / k * 1e6,
        "full_result_json": dump_json / k * 1e6,
    }


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


def peak_rss(cohort: Path, out: Path, workers: int, replay: bool = False) -> tuple[int, float]:
    if replay:
        cmd = [sys.executable, __file__, "--run-replay", str(cohort), str(out)]
    else:
        cmd = [sys.executable, "-m", "reirrad", "audit", str(cohort), "--out", str(out)]
        cmd += ["--workers", str(workers), "--as-of", AS_OF, "--restart", "--quiet"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _rss_tree(proc.pid))
        time.sleep(0.05)
    assert proc.returncode == 0, proc.returncode
    return peak, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--workers", type=int, nargs="*", default=[2])
    ap.add_argument("--memory", type=int, nargs="*", default=[])
    ap.add_argument("--memory-replay", action="store_true", help="memory runs with the replayed evaluation")
    ap.add_argument("--skip-real", action="store_true", help="only the replay and memory figures")
    ap.add_argument("--run-replay", nargs=2, metavar=("COHORT", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--stages", type=int, default=2000, help="cases timed step by step (0: skip)")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args(argv)
    if args.run_replay:
        timed_audit(Path(args.run_replay[0]), Path(args.run_replay[1]), 2, False, replay_hook)
        return 0
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-audit-"))
    base.mkdir(parents=True, exist_ok=True)
    cohort = make_cohort(base / f"cohort-{args.n}.jsonl", args.n)
    fig: dict[str, Any] = {"n": args.n, "nproc": os.cpu_count(), "python": sys.version.split()[0]}
    fig["loadavg_start"] = os.getloadavg()[0]
    for w in args.workers:
        s, cpu = timed_audit(cohort, base / f"out-replay-w{w}", w, False, replay_hook)
        fig[f"replay_w{w}"] = args.n / s
        fig[f"replay_w{w}_cpu_us_per_case"] = {k: v / args.n * 1e6 for k, v in cpu.items()}
        print(
            f"replay, {w} worker(s): {args.n / s:,.0f} cases/s ({s:.1f} s); CPU µs/case: parent "
            f"{cpu['parent'] / args.n * 1e6:.0f}, workers {cpu['workers'] / args.n * 1e6:.0f}",
            flush=True,
        )
        if args.skip_real:
            continue
        for name, full in (("db", False), ("json", True)):
            out = base / f"out-{name}-w{w}"
            s, cpu = timed_audit(cohort, out, w, full)
            fig[f"{name}_w{w}"] = args.n / s
            fig[f"{name}_w{w}_cpu_us_per_case"] = {k: v / args.n * 1e6 for k, v in cpu.items()}
            print(
                f"{name:>4}, {w} worker(s): {args.n / s:,.0f} cases/s ({s:.1f} s); CPU µs/case: parent "
                f"{cpu['parent'] / args.n * 1e6:.0f}, workers {cpu['workers'] / args.n * 1e6:.0f}",
                flush=True,
            )
        size = (base / f"out-db-w{w}" / "audit.duckdb").stat().st_size
        fig["db_bytes_per_case"] = size / args.n
        print(f"audit.duckdb: {size / 2**20:,.1f} MiB, {size / args.n:,.0f} bytes per case", flush=True)
        n, differ = identical(base / f"out-db-w{w}", base / f"out-json-w{w}")
        fig["identical"] = {"cases": n, "differ": differ}
        print(f"verdicts, database vs full results JSON: {n:,} cases compared, {differ} differ", flush=True)
        print(f"ratio db / json = {fig[f'db_w{w}'] / fig[f'json_w{w}']:.2f}", flush=True)
    if args.stages and not args.skip_real:
        fig["stages_us_per_case"] = stages(cohort, min(args.stages, args.n))
        for k, v in fig["stages_us_per_case"].items():
            print(f"  {k:<22} {v:8.0f} µs/case", flush=True)
    for n in args.memory:
        c = make_cohort(base / f"cohort-{n}.jsonl", n)
        peak, s = peak_rss(c, base / f"out-mem-{n}", 2, args.memory_replay)
        fig[f"peak_rss_{n}"] = peak
        fig[f"mem_run_{n}_cases_per_s"] = n / s
        size = (base / f"out-mem-{n}" / "audit.duckdb").stat().st_size
        print(
            f"peak RSS (parent + 2 workers) at {n:,} cases: {peak / 2**20:,.0f} MiB ({n / s:,.0f} cases/s, "
            f"{s:,.0f} s; audit.duckdb {size / n:,.0f} bytes per case)",
            flush=True,
        )
    fig["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
