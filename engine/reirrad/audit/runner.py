"""The audit: a cohort through the engine in chunks, on worker processes, into a database; resumable, nothing lost.

Design (docs/audit.md, "Guarantees"):

* The input is cut into chunks (``Source.plan``), the same plan on every run of the same input.
* A worker takes a chunk descriptor from a bounded queue, reads its own slice of the input, validates and evaluates
  each record and writes the chunk's rows, JSON files of at most 1,000 rows per table, under ``DIR/.audit/parts``; it sends back only
  counts. Each worker builds its evaluators once (one per rule set in force, see ``EvaluatorCache``).
* The parent commits chunks strictly in order, each in one database transaction (``Store.commit``); with
  ``--full-results`` it first appends the chunk's full results to ``results.jsonl`` and fsyncs it, and the
  transaction records the committed size. A resumed run truncates ``results.jsonl`` to that size and continues
  after the last committed chunk: a record is in the outputs exactly once whatever the moment of interruption.
* Before committing, the parent checks that the chunk's results + rejections + blank records equal its record
  count; at the end, that the whole input is accounted for (``Store.account``).
* One DIR, one writer (``StoreLock``); workers die with the parent (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import queue
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.audit.evaluators import EvaluatorCache, Hook, validate_document
from reirrad.audit.readers import Chunk, Source, dumps_line, open_source
from reirrad.audit.rows import Rows, part_files
from reirrad.audit.store import OUTPUTS, Store, StoreLock
from reirrad.case import Case
from reirrad.errors import EngineError, InputError, Problem
from reirrad.knowledge.rulepack import RulePack, load_pack
from reirrad.processes import die_with_parent

__all__ = ["AuditOptions", "AuditOutcome", "EvaluatorCache", "run_audit", "validate_document"]

STATE_DIR = ".audit"


@dataclass
class AuditOptions:
    cohort: Path
    out: Path
    workers: int = 1
    as_of: str | None = None
    """None or 'treatment' (the rules in force on each case's planned start; default), or an ISO date."""
    compare_now: bool = False
    now: date | None = None
    chunk_cases: int = 1000
    engine: str = "durable"
    rules: Path | None = None
    progress: bool | None = None
    restart: bool = False
    report: bool = True
    full_results: bool = False
    parquet: bool = False
    map: Path | None = None
    key: bytes | None = field(default=None, repr=False)
    """The pseudonymisation key (held in memory only; never written to an output)."""
    evaluator_hook: Hook | None = field(default=None, repr=False)
    """Called on every evaluator a worker builds (benchmarks: replace the rule step). Needs the fork start method."""


@dataclass
class AuditOutcome:
    records: int
    evaluated: int
    rejected: int
    blank: int
    chunks: int
    resumed_from_chunk: int
    seconds: float
    out: Path

    @property
    def input_cases(self) -> int:
        return self.evaluated + self.rejected

    def render(self) -> str:
        text = (
            f"records read: {self.records:,}; evaluated: {self.evaluated:,}; rejected: {self.rejected:,} "
            f"(errors table)"
        )
        if self.blank:
            text += f"; blank: {self.blank:,}"
        if self.resumed_from_chunk:
            text += f"; resumed at chunk {self.resumed_from_chunk}"
        return text


def _verdicts_of(ev: Any, case: Case) -> dict[str, str]:
    """Policy verdicts with another rule set (--compare-now)."""
    return {p["policy"]: p["verdict"] for p in ev.record(case)["policy_summary"]}


class _Context:
    """What a worker needs: the source, the pack, its evaluators, the dates."""

    def __init__(self, settings: dict[str, Any], hook: Hook | None, pack: RulePack | None = None) -> None:
        self.settings = settings
        rules = settings["rules"]
        if pack is None:  # spawned workers load it; forked ones inherit the parent's
            pack = load_pack(rules) if rules else load_pack()
        self.source: Source = settings["source"]
        self.cache = EvaluatorCache(pack, settings["engine"], hook)
        self.mode = settings["as_of"]
        self.fixed = None if self.mode == "treatment" else date.fromisoformat(self.mode)
        self.now = date.fromisoformat(settings["now"])
        self.compare = settings["compare_now"]
        self.full = settings["full_results"]
        self.parts = Path(settings["parts"])


def process_chunk(chunk: Chunk, ctx: _Context) -> dict[str, Any]:
    """Validate and evaluate every record of a chunk into its part files; return its counts."""
    rows = Rows()
    n_res = n_err = n_blank = 0
    result_seqs: list[int] = []
    prefix = f"{chunk.index:08d}"
    res_f = open(ctx.parts / f"{prefix}.results.jsonl", "wb", buffering=1 << 20) if ctx.full else None  # noqa: SIM115
    try:
        for rec in ctx.source.chunk_records(chunk):
            if rec.blank:
                n_blank += 1
                continue
            problems = rec.problems or []
            case = None
            if not problems:
                try:
                    case, problems = validate_document(rec.data, rec.lines, rec.file)
                except Exception as exc:  # a validator crash is this record's problem, not the audit's
                    problems = [_internal(rec, "validating", exc)]
            if not problems and case is not None:
                try:
                    start = case.planned_course.start if case.planned_course is not None else ctx.now
                    on: date = ctx.fixed or start  # type: ignore[assignment]
                    ev, label = ctx.cache.for_date(on)
                    # the full result only when it is written; the database needs the record alone
                    result = ev.evaluate(case, as_of=on) if res_f is not None else ev.record(case, as_of=on)
                    now_verdicts = None
                    if ctx.compare:
                        now_ev, now_label = ctx.cache.for_date(ctx.now)
                        if now_label == label:
                            now_verdicts = {p["policy"]: p["verdict"] for p in result["policy_summary"]}
                        else:
                            now_verdicts = _verdicts_of(now_ev, case)
                    line = dumps_line(result) if res_f is not None else b""
                    rows.add_case(rec.seq, rec.key, rec.line, case, rec.data, result, label, now_verdicts)
                except InputError as exc:
                    problems = list(exc.problems)
                except EngineError as exc:
                    problems = [Problem(rec.file, (), f"engine error: {exc}", "", rec.line, code="engine")]
                except Exception as exc:
                    problems = [_internal(rec, "evaluating", exc)]
                else:
                    if res_f is not None:
                        res_f.write(line)
                        result_seqs.append(rec.seq)
                    n_res += 1
                    continue
            cid = rec.data.get("case_id") if isinstance(rec.data, dict) else None
            rows.add_error(rec.seq, rec.key, problems, cid, ctx.source.cells_for(rec, problems))
            n_err += 1
    finally:
        if res_f is not None:
            res_f.close()
    counts = rows.write(ctx.parts, prefix)
    return {
        "index": chunk.index,
        "evaluated": n_res,
        "rejected": n_err,
        "blank": n_blank,
        "tables": counts,
        "result_seqs": result_seqs if ctx.full else None,
    }


def _internal(rec: Any, doing: str, exc: BaseException) -> Problem:
    return Problem(
        rec.file,
        (),
        f"internal error while {doing}: {type(exc).__name__}: {str(exc)[:200]}",
        "",
        rec.line,
        code="internal",
    )


def _worker(
    settings: dict[str, Any], tasks: Any, done: Any, parent: int, hook: Hook | None, pack: RulePack | None
) -> None:
    if not die_with_parent(parent, signal.SIGKILL):
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        ctx = _Context(settings, hook, pack)
    except BaseException:
        done.put(("fatal", -1, traceback.format_exc()))
        return
    while True:
        try:
            chunk = tasks.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the parent is gone: stop instead of waiting forever
                os._exit(1)
            continue
        if chunk is None:
            return
        try:
            meta = process_chunk(chunk, ctx)
        except BaseException:
            done.put(("fatal", chunk.index, traceback.format_exc()))
            return
        done.put(("done", chunk.index, meta))


# --- the parent: manifest, commits, progress --------------------------------------------------------------------


class _Progress:
    """A progress line on stderr (cases/s, ETA) when it is a terminal; nothing otherwise."""

    def __init__(self, enabled: bool, total: int | None, unit: str) -> None:
        self.enabled = enabled
        self.total = total
        self.unit = unit
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, cases: int, done: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = cases / elapsed
        text = f"\raudit: {cases:,} records, {rate:,.0f}/s"
        if self.total:
            frac = min(done / self.total, 1.0)
            eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
            bar = "#" * int(frac * 30)
            text = f"\raudit [{bar:<30}] {frac:4.0%} {cases:,} records, {rate:,.0f}/s, ETA {eta:,.0f} s "
        sys.stderr.write(text + ("\n" if final else ""))
        sys.stderr.flush()


def _manifest(opts: AuditOptions, source: Source, pack: RulePack, as_of: str, now: date) -> dict[str, Any]:
    return {
        "schema": "reirrad/audit-manifest/v2",
        "input": source.identity(),
        "chunk_cases": opts.chunk_cases,
        "as_of": as_of,
        "now": now.isoformat(),
        "compare_now": opts.compare_now,
        "engine": opts.engine,
        "full_results": opts.full_results,
        "rule_pack": {"name": pack.name, "version": pack.version, "content_sha256": pack.content_sha256},
        "rules": str(opts.rules.resolve()) if opts.rules else None,
    }


def _restart(out: Path) -> None:
    for name in OUTPUTS:
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)
    shutil.rmtree(out / "parquet", ignore_errors=True)


def _prepare(opts: AuditOptions, source: Source, pack: RulePack) -> tuple[Store, dict[str, Any], int, int]:
    """Open or create DIR's database; return (store, manifest, next chunk, committed results size). Refuses a DIR
    holding an audit of another input, mapping, key or options."""
    out = opts.out
    if opts.restart:
        _restart(out)
    has_db = (out / "audit.duckdb").exists()
    if not has_db and any((out / n).exists() for n in ("results.jsonl", "summary.json")):
        raise InputError.of(
            [
                Problem(
                    str(out),
                    (),
                    "audit outputs exist without an audit database",
                    "an empty or new --out directory, or --restart",
                    code="audit.resume",
                )
            ]
        )
    store = Store(out)
    try:
        old = store.metadata().get("manifest")
        as_of = opts.as_of or (old["as_of"] if old else "treatment")
        today = date.today()
        now = opts.now or (date.fromisoformat(old["now"]) if old else today)
        manifest = _manifest(opts, source, pack, as_of, now)
        if old is not None and old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            if "input" in diff:
                changed = sorted(
                    k
                    for k in {**old["input"], **manifest["input"]}
                    if old["input"].get(k) != manifest["input"].get(k)
                )
                diff = [d if d != "input" else f"input ({', '.join(changed)})" for d in diff]
            raise InputError.of(
                [
                    Problem(
                        str(out),
                        (),
                        "the directory holds an audit of another input or with other options "
                        f"(differs in: {', '.join(diff)}); resuming would mix two cohorts",
                        "the same COHORT, mapping, key and options to resume, a new --out directory, or --restart",
                        code="audit.resume",
                    )
                ]
            )
        if old is None:
            store.set_metadata({"schema": "reirrad/audit-db/v1", "manifest": manifest})
        next_chunk, results_size = store.committed()
    except BaseException:
        store.close()
        raise
    return store, manifest, next_chunk, results_size


class _Results:
    """results.jsonl (--full-results): truncated to its committed size on resume, appended chunk by chunk."""

    def __init__(self, path: Path, size: int) -> None:
        with open(path, "ab"):
            pass
        self.f = open(path, "r+b")  # noqa: SIM115 - closed in close()
        if os.fstat(self.f.fileno()).st_size < size:
            raise InputError.of(
                [
                    Problem(
                        str(path),
                        (),
                        f"shorter than its last committed size ({size} bytes); it was changed outside the audit",
                        "--restart",
                        code="audit.resume",
                    )
                ]
            )
        self.f.truncate(size)
        self.f.seek(size)

    def append(self, part: Path, drop: set[int], seqs: list[int]) -> int:
        with open(part, "rb") as src:
            if drop:
                for seq, line in zip(seqs, src, strict=True):
                    if seq not in drop:
                        self.f.write(line)
            else:
                shutil.copyfileobj(src, self.f, 1 << 20)
        self.f.flush()
        os.fsync(self.f.fileno())
        return self.f.tell()

    def close(self) -> None:
        self.f.close()


def _start_method() -> str:
    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


def run_audit(opts: AuditOptions) -> AuditOutcome:
    started = time.perf_counter()
    source = open_source(opts.cohort, opts.map, opts.key)
    pack = load_pack(opts.rules) if opts.rules else load_pack()
    if opts.as_of not in (None, "treatment"):
        date.fromisoformat(opts.as_of)  # checked by the CLI; a bad value here is a programming error
    lock = StoreLock(opts.out)
    try:
        return _run_locked(opts, source, pack, started)
    finally:
        lock.release()


def _run_locked(opts: AuditOptions, source: Source, pack: RulePack, started: float) -> AuditOutcome:
    store, manifest, resumed, results_size = _prepare(opts, source, pack)
    parts = opts.out / STATE_DIR / "parts"
    shutil.rmtree(parts, ignore_errors=True)  # parts of uncommitted chunks are recomputed
    parts.mkdir(parents=True)
    results = _Results(opts.out / "results.jsonl", results_size) if opts.full_results else None
    settings = {
        "rules": str(opts.rules) if opts.rules else None,
        "engine": opts.engine,
        "as_of": manifest["as_of"],
        "now": manifest["now"],
        "compare_now": opts.compare_now,
        "full_results": opts.full_results,
        "parts": str(parts),
        "source": source,
    }
    show = opts.progress if opts.progress is not None else sys.stderr.isatty()
    total = source.size()
    progress = _Progress(show, total, "bytes" if total else "records")
    planned = 0
    try:
        planned = _run_chunks(opts, settings, store, results, progress, pack, resumed)
        totals = store.account(planned)
        from reirrad.audit.summary import build_summary, write_outputs

        summary = build_summary(store, manifest, pack)
        write_outputs(store, summary, opts.out, pack, report=opts.report, parquet=opts.parquet)
        store.checkpoint()
    finally:
        if results is not None:
            results.close()
        store.close()
    shutil.rmtree(opts.out / STATE_DIR, ignore_errors=True)
    progress.update(totals["evaluated"] + totals["rejected"], total or planned, final=True)
    return AuditOutcome(
        totals["records"],
        totals["evaluated"],
        totals["rejected"],
        totals["blank"],
        totals["chunks"],
        resumed,
        time.perf_counter() - started,
        opts.out,
    )


def _commit(
    store: Store, results: _Results | None, chunk: Chunk, meta: dict[str, Any], parts: Path
) -> tuple[int, int]:
    if meta["evaluated"] + meta["rejected"] + meta["blank"] != chunk.count:
        raise EngineError(
            f"chunk {chunk.index}: {chunk.count} records in, {meta['evaluated']} evaluated + "
            f"{meta['rejected']} rejected + {meta['blank']} blank out"
        )
    counts = {
        **meta["tables"],
        "evaluated": meta["evaluated"],
        "rejected": meta["rejected"],
        "blank": meta["blank"],
    }
    size = 0
    if results is not None:
        # the duplicates are known only in the transaction; a result line of one is dropped from the file
        dup_seqs = _duplicates_hint(store, chunk, meta)
        size = results.append(parts / f"{chunk.index:08d}.results.jsonl", dup_seqs, meta["result_seqs"])
    file = None if chunk.kind == "yaml-dir" else chunk.file
    evaluated, rejected, _ = store.commit(
        chunk.index, chunk.first_seq, chunk.count, counts, parts, size, file
    )
    for p in parts.glob(f"{chunk.index:08d}.*"):
        p.unlink()
    return evaluated, rejected


def _duplicates_hint(store: Store, chunk: Chunk, meta: dict[str, Any]) -> set[int]:
    """The seqs of this chunk whose case id is already committed or repeated earlier in the chunk."""
    import json as _json

    files = part_files(Path(store.out) / STATE_DIR / "parts", f"{chunk.index:08d}", "cases")
    if not files:
        return set()
    data: dict[str, list[Any]] = {"seq": [], "case_id": []}
    for part in files:
        piece = _json.loads(part.read_bytes())
        data["seq"] += piece["seq"]
        data["case_id"] += piece["case_id"]
    seen: dict[str, int] = {}
    dups: set[int] = set()
    ids = list(dict.fromkeys(data["case_id"]))
    marks = ", ".join("?" * len(ids))
    known = (
        {
            r[0]
            for r in store.con.execute(
                f"SELECT DISTINCT case_id FROM cases WHERE case_id IN ({marks})", ids
            ).fetchall()
        }
        if ids
        else set()
    )
    for seq, cid in zip(data["seq"], data["case_id"], strict=True):
        if cid in known or cid in seen:
            dups.add(seq)
        seen.setdefault(cid, seq)
    return dups


def _run_chunks(
    opts: AuditOptions,
    settings: dict[str, Any],
    store: Store,
    results: _Results | None,
    progress: _Progress,
    pack: RulePack,
    next_chunk: int,
) -> int:
    """Run every uncommitted chunk; return the number of records in the whole input (the plan's count)."""
    source: Source = settings["source"]
    parts = Path(settings["parts"])
    planned = {"records": 0}

    def plan() -> Iterator[Chunk]:
        for c in source.plan(opts.chunk_cases):
            planned["records"] += c.count
            if c.index >= next_chunk:
                yield c

    todo = plan()
    done_cases = store.totals()["evaluated"] + store.totals()["rejected"]
    if opts.workers <= 0:  # in this process (debugging, tests)
        ctx = _Context(settings, opts.evaluator_hook, pack)
        for chunk in todo:
            meta = process_chunk(chunk, ctx)
            e, r = _commit(store, results, chunk, meta, parts)
            done_cases += e + r
            progress.update(done_cases, chunk.bytes_done)
        return planned["records"]
    mpc: Any = mp.get_context(_start_method())
    window = max(2, 3 * opts.workers)
    tasks = mpc.Queue(maxsize=window)
    done = mpc.Queue()
    forked = mpc.get_start_method() == "fork"
    hook = opts.evaluator_hook if forked else None
    procs = [
        mpc.Process(
            target=_worker,
            args=(settings, tasks, done, os.getpid(), hook, pack if forked else None),
            daemon=True,
            name=f"reirrad-audit-{i}",
        )
        for i in range(opts.workers)
    ]
    for p in procs:  # started before the queues are used: no feeder thread exists at fork time
        p.start()
    inflight: dict[int, Chunk] = {}
    finished: dict[int, dict[str, Any]] = {}
    next_commit = next_chunk
    exhausted = False
    try:
        while True:
            while not exhausted and len(inflight) < window:
                planned_chunk = next(todo, None)
                if planned_chunk is None:
                    exhausted = True
                    break
                inflight[planned_chunk.index] = _strip(planned_chunk)
                tasks.put(planned_chunk)
            while next_commit in finished:
                meta = finished.pop(next_commit)
                chunk = inflight.pop(next_commit)
                e, r = _commit(store, results, chunk, meta, parts)
                done_cases += e + r
                progress.update(done_cases, chunk.bytes_done)
                next_commit += 1
            if exhausted and not inflight:
                break
            try:
                kind_, index, payload = done.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in procs if not p.is_alive()]
                if dead:
                    raise EngineError(
                        f"audit worker {dead[0].name} stopped (exit code {dead[0].exitcode}); "
                        f"{next_commit} chunk(s) are committed — re-run the same command to resume"
                    ) from None
                continue
            except (EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
                raise EngineError(
                    f"lost a message from the audit workers ({exc}); {next_commit} chunk(s) are "
                    f"committed — re-run the same command to resume"
                ) from None
            if kind_ == "fatal":
                raise EngineError(f"audit worker failed on chunk {index}:\n{payload}")
            finished[index] = payload
    finally:
        for _ in procs:
            with contextlib.suppress(Exception):
                tasks.put_nowait(None)
        deadline = time.monotonic() + 5
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(1)
        tasks.cancel_join_thread()
        done.cancel_join_thread()
        tasks.close()
        done.close()
    return planned["records"]


def _strip(chunk: Chunk) -> Chunk:
    """What the parent keeps of an in-flight chunk: its index, seqs, count and progress (not its rows)."""
    return Chunk(
        chunk.index, chunk.kind, chunk.file, chunk.first_seq, count=chunk.count, bytes_done=chunk.bytes_done
    )
