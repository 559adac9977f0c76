"""The audit: a cohort through the engine in chunks, on worker processes, resumable, nothing lost.

Design (docs/audit.md, "Guarantees"):

* The input is cut into chunks (readers.plan_chunks), the same plan on every run of the same input.
* A worker takes a chunk descriptor from a bounded queue, reads its own slice of the input, validates and evaluates
  each case and writes two *part* files (results, errors) under ``DIR/.audit/parts``; it sends back only counts and
  the chunk's summary counters. Each worker builds its evaluators once (one per rule set in force, see
  ``EvaluatorCache``): durable rulesets are per process.
* The parent commits chunks strictly in order: it appends the chunk's parts to ``results.jsonl`` and
  ``errors.jsonl``, fsyncs both, then atomically replaces ``DIR/.audit/state.json`` (the next chunk, the committed
  byte size of each output, the merged summary counters). The state file is the commit record.
* On a re-run with the same DIR the state is read, both outputs are truncated to their committed sizes (dropping
  whatever a crash appended after the last commit) and the plan resumes at the next chunk. So a case is in the
  outputs exactly once whatever the moment of interruption.
* Before committing, the parent checks that the chunk's results + rejections + blank lines equal its record count.
* Memory is bounded: at most ``window`` chunks are in flight, each worker holds one chunk, and the parent holds
  the merged counters (bounded by the number of policies, criteria and a fixed-size sample and grid).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import pickle
import queue
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.audit.readers import (
    Chunk,
    detect_kind,
    dumps_line,
    input_identity,
    iter_chunk_records,
    plan_chunks,
)
from reirrad.audit.summary import Acc, finalize, merge_into
from reirrad.case import Case, case_problems_fast
from reirrad.errors import EngineError, InputError, Problem
from reirrad.knowledge.rulepack import RulePack, load_pack

__all__ = ["AuditOptions", "AuditOutcome", "EvaluatorCache", "run_audit", "validate_document"]

STATE_DIR = ".audit"
Hook = Callable[[Any], None]


@dataclass
class AuditOptions:
    cohort: Path
    out: Path
    workers: int = 1
    as_of: str | None = None
    """None (today, or the date stored by the run being resumed), 'treatment', or an ISO date."""
    compare_now: bool = False
    now: date | None = None
    chunk_cases: int = 1000
    engine: str = "durable"
    rules: Path | None = None
    progress: bool | None = None
    restart: bool = False
    report: bool = True
    evaluator_hook: Hook | None = field(default=None, repr=False)
    """Called on every evaluator a worker builds (benchmarks: replace the rule step). Needs the fork start method."""


@dataclass
class AuditOutcome:
    input_cases: int
    evaluated: int
    rejected: int
    blank_lines: int
    chunks: int
    resumed_from_chunk: int
    seconds: float
    out: Path

    def render(self) -> str:
        text = (
            f"input cases: {self.input_cases:,}; evaluated: {self.evaluated:,} (results.jsonl); "
            f"rejected: {self.rejected:,} (errors.jsonl)"
        )
        if self.blank_lines:
            text += f"; blank lines skipped: {self.blank_lines:,}"
        if self.resumed_from_chunk:
            text += f"; resumed at chunk {self.resumed_from_chunk}"
        return text


def validate_document(data: Any, lines: Any, file: str) -> tuple[Case | None, list[Problem]]:
    """The case's validation for bulk work (reirrad.case.case_problems_fast)."""
    return case_problems_fast(data, lines, file)


class EvaluatorCache:
    """Evaluators of one process, one per rule set in force (the set of (rule id, version)), not per date."""

    def __init__(self, pack: RulePack, engine: str = "durable", hook: Hook | None = None) -> None:
        self.pack = pack
        self.engine = engine
        self.hook = hook
        self._key_of_date: dict[date, tuple[tuple[str, str], ...]] = {}
        self._by_key: dict[tuple[tuple[str, str], ...], tuple[Any, str]] = {}

    def for_date(self, on: date) -> tuple[Any, str]:
        """The evaluator for the rules in force on ``on`` and the set's label (evaluate with ``as_of=on``)."""
        from reirrad.evaluate import Evaluator

        key = self._key_of_date.get(on)
        if key is None:
            selected = self.pack.select(on)
            key = tuple((r.id, r.version) for r in selected.rules)
            if len(self._key_of_date) > 50_000:
                self._key_of_date.clear()
            self._key_of_date[on] = key
            if key not in self._by_key:
                ev = Evaluator(selected, as_of=on, engine=self.engine)
                if self.hook is not None:
                    self.hook(ev)
                label = ", ".join(f"{i}@{v}" for i, v in key)
                self._by_key[key] = (ev, label)
        return self._by_key[key]


def _verdicts_of(ev: Any, case: Case) -> dict[str, str]:
    """Policy verdicts without building the full result (for --compare-now)."""
    counts: dict[str, set[str]] = {}
    for item in ev.evaluation(case).items:
        if item.rule.kind == "constraint":
            counts.setdefault(item.rule.policy, set()).add(item.status)
    out = {}
    for policy, seen in counts.items():
        out[policy] = next((s for s in ("fail", "indeterminate", "pass") if s in seen), "not_applicable")
    return out


class _Context:
    """What a worker needs: the pack, its evaluators, the dates."""

    def __init__(self, settings: dict[str, Any], hook: Hook | None, pack: RulePack | None = None) -> None:
        self.settings = settings
        rules = settings["rules"]
        if pack is None:  # spawned workers load it; forked ones inherit the parent's
            pack = load_pack(rules) if rules else load_pack()
        self.cache = EvaluatorCache(pack, settings["engine"], hook)
        self.mode = settings["as_of"]
        self.fixed = None if self.mode == "treatment" else date.fromisoformat(self.mode)
        self.now = date.fromisoformat(settings["now"])
        self.compare = settings["compare_now"]
        self.parts = Path(settings["parts"])


def _problem_line(rec: Any, problems: list[Problem], case_id: Any) -> bytes:
    doc: dict[str, Any] = {"input": rec.key, "file": rec.file, "line": rec.line}
    if isinstance(case_id, str):
        doc["case_id"] = case_id
    doc["problems"] = [p.as_dict() for p in problems]
    return dumps_line(doc)


def process_chunk(chunk: Chunk, ctx: _Context) -> dict[str, Any]:
    """Validate and evaluate every record of a chunk into its part files; return its counts and counters."""
    acc = Acc()
    n_res = n_err = n_blank = 0
    res_path = ctx.parts / f"{chunk.index:08d}.results.jsonl"
    err_path = ctx.parts / f"{chunk.index:08d}.errors.jsonl"
    with open(res_path, "wb", buffering=1 << 20) as res_f, open(err_path, "wb", buffering=1 << 16) as err_f:
        for rec in iter_chunk_records(chunk):
            if rec.problems is None and rec.data is None:
                n_blank += 1
                acc.add_blank()
                continue
            problems = rec.problems or []
            case = None
            if not problems:
                try:
                    case, problems = validate_document(rec.data, rec.lines, rec.file)
                except Exception as exc:  # a validator crash is this row's problem, not the audit's
                    problems = [
                        Problem(
                            rec.file,
                            (),
                            f"internal error while validating: {type(exc).__name__}: {exc}",
                            "",
                            rec.line,
                            code="internal",
                        )
                    ]
            if not problems and case is not None:
                try:
                    on = ctx.fixed or case.planned_course.start
                    ev, label = ctx.cache.for_date(on)  # type: ignore[arg-type]
                    result = ev.evaluate(case, as_of=on)
                    line = dumps_line(result)
                    if ctx.compare:
                        now_ev, _ = ctx.cache.for_date(ctx.now)
                        then = {p["policy"]: p["verdict"] for p in result["policy_summary"]}
                        acc.add_compare(then, _verdicts_of(now_ev, case))
                except InputError as exc:
                    problems = list(exc.problems)
                except EngineError as exc:
                    problems = [Problem(rec.file, (), f"engine error: {exc}", "", rec.line, code="engine")]
                except Exception as exc:
                    problems = [
                        Problem(
                            rec.file,
                            (),
                            f"internal error: {type(exc).__name__}: {exc}",
                            "",
                            rec.line,
                            code="internal",
                        )
                    ]
                else:
                    res_f.write(line)
                    acc.add_result(rec.key, result, label)
                    n_res += 1
                    continue
            cid = rec.data.get("case_id") if isinstance(rec.data, dict) else None
            err_f.write(_problem_line(rec, problems, cid))
            acc.add_error([p.as_dict() for p in problems])
            n_err += 1
    return {
        "index": chunk.index,
        "results": n_res,
        "errors": n_err,
        "blank": n_blank,
        "summary": acc.export(),
    }


def _worker(
    settings: dict[str, Any], tasks: Any, done: Any, parent: int, hook: Hook | None, pack: RulePack | None
) -> None:
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
                return
            continue
        if chunk is None:
            return
        try:
            meta = process_chunk(chunk, ctx)
        except BaseException:
            done.put(("fatal", chunk.index, traceback.format_exc()))
            return
        done.put(("done", chunk.index, meta))


# --- the parent: checkpoint, commit, progress ------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Progress:
    def __init__(self, enabled: bool, total_bytes: int | None) -> None:
        self.enabled = enabled
        self.total = total_bytes
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, cases: int, done_bytes: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self.last < 0.2:
            return
        self.last = now
        rate = cases / max(now - self.start, 1e-9)
        text = f"\raudit: {cases:,} cases, {rate:,.0f}/s"
        if self.total:
            frac = min(done_bytes / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = f"\raudit [{bar:<30}] {frac:4.0%} {cases:,} cases, {rate:,.0f}/s"
        sys.stderr.write(text + ("\n" if final else ""))
        sys.stderr.flush()


def _manifest(opts: AuditOptions, kind: str, pack: RulePack, as_of: str, now: date) -> dict[str, Any]:
    return {
        "schema": "reirrad/audit-manifest/v1",
        "input": input_identity(opts.cohort, kind),
        "chunk_cases": opts.chunk_cases,
        "as_of": as_of,
        "now": now.isoformat(),
        "compare_now": opts.compare_now,
        "engine": opts.engine,
        "rule_pack": pack.content_sha256,
    }


def _prepare(opts: AuditOptions, kind: str, pack: RulePack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create or reopen DIR; return (manifest, state). Refuses a DIR holding an audit of something else."""
    out = opts.out
    state_dir = out / STATE_DIR
    if opts.restart:
        for name in ("results.jsonl", "errors.jsonl", "summary.json", "report.html"):
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
        shutil.rmtree(state_dir, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = state_dir / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    today = date.today()
    if opts.as_of is not None:
        as_of = opts.as_of
    elif old is not None:
        as_of = old["as_of"]
    else:
        as_of = today.isoformat()
    now = opts.now or (date.fromisoformat(old["now"]) if old is not None else today)
    manifest = _manifest(opts, kind, pack, as_of, now)
    if old is not None:
        if old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise InputError.of(
                [
                    Problem(
                        str(out),
                        (),
                        f"the directory holds an audit of another input or with "
                        f"other options (differs in: {', '.join(diff)})",
                        "the same COHORT and options to resume, a new --out directory, or --restart",
                        code="audit.resume",
                    )
                ]
            )
    else:
        if any((out / n).exists() for n in ("results.jsonl", "errors.jsonl")):
            raise InputError.of(
                [
                    Problem(
                        str(out),
                        (),
                        "results.jsonl or errors.jsonl exist without an audit checkpoint",
                        "an empty or new --out directory, or --restart",
                        code="audit.resume",
                    )
                ]
            )
        state_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(manifest_path, json.dumps(manifest, indent=2).encode())
    state_path = state_dir / "state.json"
    if state_path.exists():
        state = json.loads(state_path.read_bytes())
    else:
        state = {
            "next_chunk": 0,
            "results_size": 0,
            "errors_size": 0,
            "input_cases": 0,
            "summary": {},
            "complete": False,
        }
    parts = state_dir / "parts"
    shutil.rmtree(parts, ignore_errors=True)  # parts of uncommitted chunks are recomputed
    parts.mkdir(parents=True)
    for name, size in (("results.jsonl", state["results_size"]), ("errors.jsonl", state["errors_size"])):
        path = out / name
        with open(path, "ab") as f:  # create if missing
            pass
        with open(path, "r+b") as f:  # drop anything appended after the last commit
            if os.fstat(f.fileno()).st_size < size:
                raise InputError.of(
                    [
                        Problem(
                            str(path),
                            (),
                            f"shorter ({os.fstat(f.fileno()).st_size} bytes) than "
                            f"its last committed size ({size}); it was changed outside the audit",
                            "--restart",
                            code="audit.resume",
                        )
                    ]
                )
            f.truncate(size)
    return manifest, state


class _Committer:
    def __init__(self, opts: AuditOptions, state: dict[str, Any]) -> None:
        self.out = opts.out
        self.state = state
        self.state_path = opts.out / STATE_DIR / "state.json"
        self.parts = opts.out / STATE_DIR / "parts"
        # r+b, not ab: copy_file_range refuses an O_APPEND destination; _prepare truncated both to the commit
        self.res = open(opts.out / "results.jsonl", "r+b")  # noqa: SIM115 - closed in close()
        self.err = open(opts.out / "errors.jsonl", "r+b")  # noqa: SIM115
        self.res.seek(0, os.SEEK_END)
        self.err.seek(0, os.SEEK_END)

    def commit(self, chunk_index: int, count: int, meta: dict[str, Any]) -> None:
        if meta["results"] + meta["errors"] + meta["blank"] != count:
            raise EngineError(
                f"chunk {chunk_index}: {count} records in, {meta['results']} results + "
                f"{meta['errors']} rejected + {meta['blank']} blank out"
            )
        for kind, f in (("results", self.res), ("errors", self.err)):
            part = self.parts / f"{chunk_index:08d}.{kind}.jsonl"
            f.flush()
            with open(part, "rb") as src:
                _append(src, f)
            f.flush()
            os.fsync(f.fileno())
        st = self.state
        st["next_chunk"] = chunk_index + 1
        st["results_size"] = self.res.tell()
        st["errors_size"] = self.err.tell()
        st["input_cases"] += meta["results"] + meta["errors"]
        merge_into(st["summary"], meta["summary"])
        _atomic_write(self.state_path, _dumps(st))
        for kind in ("results", "errors"):
            (self.parts / f"{chunk_index:08d}.{kind}.jsonl").unlink()

    def close(self) -> None:
        self.res.close()
        self.err.close()


def _append(src: Any, dst: Any) -> None:
    """Append a whole file: in the kernel (copy_file_range) where available, else through a buffer."""
    size = os.fstat(src.fileno()).st_size
    if hasattr(os, "copy_file_range"):
        done = 0
        try:
            while done < size:
                n = os.copy_file_range(src.fileno(), dst.fileno(), size - done)
                if n == 0:
                    break
                done += n
        except OSError:
            if done:
                raise
        else:
            if done == size:
                dst.seek(0, os.SEEK_END)
                return
        src.seek(0)
    shutil.copyfileobj(src, dst, 1 << 20)


def _start_method() -> str:
    return "fork" if "fork" in mp.get_all_start_methods() else "spawn"


def run_audit(opts: AuditOptions) -> AuditOutcome:
    started = time.perf_counter()
    kind = detect_kind(opts.cohort)
    pack = load_pack(opts.rules) if opts.rules else load_pack()
    if opts.as_of not in (None, "treatment"):
        date.fromisoformat(opts.as_of)  # checked by the CLI; a bad value here is a programming error
    manifest, state = _prepare(opts, kind, pack)
    resumed = state["next_chunk"]
    settings = {
        "rules": str(opts.rules) if opts.rules else None,
        "engine": opts.engine,
        "as_of": manifest["as_of"],
        "now": manifest["now"],
        "compare_now": opts.compare_now,
        "parts": str(opts.out / STATE_DIR / "parts"),
    }
    committer = _Committer(opts, state)
    total_bytes = opts.cohort.stat().st_size if kind == "jsonl" else None
    show = opts.progress if opts.progress is not None else sys.stderr.isatty()
    progress = _Progress(show, total_bytes)
    try:
        if not state["complete"]:
            _run_chunks(opts, settings, state, committer, progress, pack)
    finally:
        committer.close()
    summary_data = state["summary"]
    counts = summary_data.get("counts", {})
    meta = {
        "input": manifest["input"]["path"],
        "as_of": manifest["as_of"],
        "now": manifest["now"],
        "compare_now": manifest["compare_now"],
        "engine": manifest["engine"],
        "rule_pack": {"name": pack.name, "version": pack.version, "content_sha256": pack.content_sha256},
        "chunks": state["next_chunk"],
        "input_cases": state["input_cases"],
    }
    summary = finalize(summary_data, meta)
    _atomic_write(opts.out / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False).encode())
    if opts.report:
        from reirrad.audit.report import render_report

        _atomic_write(opts.out / "report.html", render_report(summary).encode())
    if not state["complete"]:
        state["complete"] = True
        _atomic_write(committer.state_path, _dumps(state))
    progress.update(counts.get("evaluated", 0) + counts.get("rejected", 0), total_bytes or 0, final=True)
    return AuditOutcome(
        state["input_cases"],
        counts.get("evaluated", 0),
        counts.get("rejected", 0),
        counts.get("blank_lines", 0),
        state["next_chunk"],
        resumed,
        time.perf_counter() - started,
        opts.out,
    )


def _run_chunks(
    opts: AuditOptions,
    settings: dict[str, Any],
    state: dict[str, Any],
    committer: _Committer,
    progress: _Progress,
    pack: RulePack,
) -> None:
    plan = (
        c
        for c in plan_chunks(opts.cohort, detect_kind(opts.cohort), opts.chunk_cases)
        if c.index >= state["next_chunk"]
    )
    done_cases = state["input_cases"]
    if opts.workers <= 0:  # in this process (debugging, tests)
        ctx = _Context(settings, opts.evaluator_hook, pack)
        for chunk in plan:
            meta = process_chunk(chunk, ctx)
            committer.commit(chunk.index, chunk.count, meta)
            done_cases += meta["results"] + meta["errors"]
            progress.update(done_cases, chunk.bytes_done)
        return
    mpc = mp.get_context(_start_method())
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
    next_commit = state["next_chunk"]
    exhausted = False
    try:
        while True:
            while not exhausted and len(inflight) < window:
                chunk = next(plan, None)
                if chunk is None:
                    exhausted = True
                    break
                inflight[chunk.index] = _strip(chunk)
                tasks.put(chunk)
            while next_commit in finished:
                meta = finished.pop(next_commit)
                chunk = inflight.pop(next_commit)
                committer.commit(next_commit, chunk.count, meta)
                done_cases += meta["results"] + meta["errors"]
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
                        f"{next_commit} chunk(s) are committed — re-run the same command to "
                        f"resume"
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


def _strip(chunk: Chunk) -> Chunk:
    """What the parent keeps of an in-flight chunk: its index, count and progress (not its CSV rows)."""
    return Chunk(chunk.index, chunk.kind, chunk.file, count=chunk.count, bytes_done=chunk.bytes_done)
