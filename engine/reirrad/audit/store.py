"""The audit's database (DuckDB, ``DIR/audit.duckdb``): one writer at a time, one transaction per chunk, every
input record accounted for.

The ``chunks`` table is the commit record: a chunk's rows, its counts and (with ``--full-results``) the committed
size of ``results.jsonl`` are written in one transaction, so a resumed audit continues after the last chunk in it
and a chunk is never half in. ``run_metadata`` holds the manifest (input hash, mapping hash, options, rule-pack
hash) that a resumed audit must match.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from reirrad.audit.rows import TABLES, part_files
from reirrad.errors import EngineError, InputError, Problem

__all__ = ["DB_FILE", "OUTPUTS", "Store", "StoreLock"]

DB_FILE = "audit.duckdb"
LOCK_FILE = ".audit.lock"
OUTPUTS = ("audit.duckdb", "audit.duckdb.wal", "results.jsonl", "summary.json", "report.html")
SCHEMA_VERSION = "reirrad/audit-db/v1"
MEMORY_LIMIT = "48MB"
"""DuckDB's buffer pool while chunks are committed (the workers running beside it): bounded, so that the audit's
memory does not grow with the cohort (larger queries spill to DIR/audit.duckdb.tmp). A chunk's part files are read in
slices of rows (rows.SLICE_ROWS) so that a commit fits it. Measured with the replayed audit: peak memory (parent
and two workers) 1.14x from 10,000 to 1,000,000 cases at 48 MB, 1.24x at 64 MB (docs/performance.md)."""
SUMMARY_MEMORY_LIMIT = "128MB"
"""The pool for the summary's queries, which run after the workers have exited (summary.build_summary)."""
CHECKPOINT_EVERY = 8
"""Chunks between checkpoints: appended data is written to the database file and leaves memory."""


def _refuse(path: Path, message: str, accepted: str) -> InputError:
    return InputError.of([Problem(str(path), (), message, accepted, code="audit.out")])


class StoreLock:
    """An exclusive lock on DIR (``DIR/.audit.lock``, flock): a second audit into the same DIR is refused."""

    def __init__(self, out: Path) -> None:
        import fcntl

        if out.exists() and not out.is_dir():
            raise _refuse(out, "--out names an existing file, not a directory", "a new or audit directory")
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _refuse(out, f"cannot be used: {exc.strerror}", "a writable directory") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (process {int(os.pread(self.fd, 32, 0).decode().strip())})"
            os.close(self.fd)
            raise _refuse(
                out,
                f"another audit is writing into this directory{holder}",
                "wait for it to finish, or choose another --out",
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Store:
    """The open database of one audit DIR (the caller holds the StoreLock)."""

    def __init__(self, out: Path, read_only: bool = False) -> None:
        try:
            import duckdb
        except ImportError:  # pragma: no cover - duckdb is in the audit extra
            raise _refuse(
                out, "the audit database needs DuckDB, which is not installed", "pip install 'reirrad[audit]'"
            ) from None

        self.out = out
        self.path = out / DB_FILE
        self._duckdb = duckdb
        try:
            self.con = duckdb.connect(
                str(self.path),
                read_only=read_only,
                config={
                    "threads": 1,
                    "memory_limit": MEMORY_LIMIT,
                    "preserve_insertion_order": False,
                },
            )
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0][:300]
            raise _refuse(
                self.path,
                f"the audit database cannot be opened ({first})",
                "an audit DIR written by reirrad audit; re-run with --restart to start it again",
            ) from None
        self.con.execute("SET enable_progress_bar = false")  # the audit draws its own, on a terminal only
        if not read_only:
            self._schema()

    def _schema(self) -> None:
        con = self.con
        try:
            con.execute("CREATE TABLE IF NOT EXISTS run_metadata (key VARCHAR PRIMARY KEY, value VARCHAR)")
            con.execute(
                "CREATE TABLE IF NOT EXISTS chunks (chunk INTEGER PRIMARY KEY, records INTEGER, evaluated INTEGER, "
                "rejected INTEGER, blank INTEGER, results_size BIGINT)"
            )
            for name, columns in TABLES.items():
                cols = ", ".join(f'"{c}" {t}' for c, t in columns)
                con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
        except self._duckdb.Error as exc:
            raise _refuse(
                self.path, f"not an audit database ({str(exc).splitlines()[0][:200]})", "--restart"
            ) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()

    # --- metadata ------------------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        try:
            rows = self.con.execute("SELECT key, value FROM run_metadata").fetchall()
        except self._duckdb.Error as exc:
            raise _refuse(
                self.path, f"not an audit database ({str(exc).splitlines()[0][:200]})", "--restart"
            ) from None
        out = {}
        for k, v in rows:
            try:
                out[k] = json.loads(v)
            except ValueError:
                raise _refuse(self.path, f"run metadata '{k}' is corrupt", "--restart") from None
        return out

    def set_metadata(self, values: dict[str, Any]) -> None:
        self.con.execute("BEGIN")
        for k, v in values.items():
            self.con.execute(
                "INSERT OR REPLACE INTO run_metadata VALUES (?, ?)",
                [k, json.dumps(v, ensure_ascii=False, sort_keys=True)],
            )
        self.con.execute("COMMIT")

    def committed(self) -> tuple[int, int]:
        """(next chunk, committed size of results.jsonl)."""
        row = self.con.execute(
            "SELECT count(*), max(chunk), coalesce(max(results_size), 0) FROM chunks"
        ).fetchone()
        assert row is not None
        n, top, size = row
        if n and top != n - 1:
            raise _refuse(self.path, f"chunks 0..{top} should be committed, {n} are", "--restart")
        return int(n), int(size)

    # --- one chunk -----------------------------------------------------------------------------------------

    def commit(
        self,
        chunk: int,
        first_seq: int,
        records: int,
        counts: dict[str, int],
        parts: Path,
        results_size: int,
        file: str | None = None,
    ) -> tuple[int, int, list[int]]:
        """Load a chunk's part files in one transaction; a case id met before becomes an error row. Returns
        (evaluated, rejected) after that check and the seqs moved to errors."""
        con = self.con
        prefix = f"{chunk:08d}"
        con.execute("BEGIN")
        try:
            for name, columns in TABLES.items():
                if not counts.get(name):
                    continue
                files = part_files(parts, prefix, name)
                spec = "{" + ", ".join(f"'{c}': '{t}[]'" for c, t in columns) + "}"
                select = ", ".join(f'unnest("{c}")' for c, _ in columns)
                largest = max(f.stat().st_size for f in files)
                con.execute(
                    f"INSERT INTO {name} SELECT {select} FROM read_json([{', '.join(_sql_text(str(f)) for f in files)}], "
                    f"format='unstructured', columns={spec}, maximum_object_size={largest + 1024})"
                )
            hi = first_seq + records
            dups = con.execute(
                "WITH new AS (SELECT seq, case_id, source, line FROM cases WHERE seq >= ? AND seq < ?), "
                "firsts AS (SELECT case_id, min(seq) AS first FROM cases "
                "WHERE case_id IN (SELECT case_id FROM new) GROUP BY case_id) "
                "SELECT n.seq, n.case_id, n.source, n.line, f.source FROM new n "
                "JOIN firsts m ON n.case_id = m.case_id AND n.seq > m.first "
                "JOIN cases f ON f.seq = m.first ORDER BY n.seq",
                [first_seq, hi],
            ).fetchall()
            moved = [d[0] for d in dups]
            if moved:
                marks = ", ".join("?" * len(moved))
                for name in ("cases", "policy_verdicts", "constraint_lines", "recommendations"):
                    con.execute(f"DELETE FROM {name} WHERE seq IN ({marks})", moved)
                for seq, case_id, source, line, first_source in dups:
                    con.execute(
                        "INSERT INTO errors VALUES (?, ?, ?, ?, NULL, 'case_id', 'duplicate', ?, ?, ?, ?)",
                        [
                            seq,
                            source,
                            file or source,
                            line,
                            case_id,
                            f"the case id is given again (first at {first_source}); the first is kept",
                            "one record per case id",
                            case_id,
                        ],
                    )
            evaluated = counts["evaluated"] - len(moved)
            rejected = counts["rejected"] + len(moved)
            con.execute(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
                [chunk, records, evaluated, rejected, counts["blank"], results_size],
            )
            con.execute("COMMIT")
            if (chunk + 1) % CHECKPOINT_EVERY == 0:
                con.execute("CHECKPOINT")
        except BaseException:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
            raise
        return evaluated, rejected, moved

    # --- the end -------------------------------------------------------------------------------------------

    def totals(self) -> dict[str, int]:
        row = self.con.execute(
            "SELECT coalesce(sum(records),0), coalesce(sum(evaluated),0), coalesce(sum(rejected),0), "
            "coalesce(sum(blank),0), count(*) FROM chunks"
        ).fetchone()
        assert row is not None
        return dict(zip(("records", "evaluated", "rejected", "blank", "chunks"), map(int, row), strict=True))

    def account(self, planned_records: int) -> dict[str, int]:
        """Every input record once: the plan's record count = evaluated + rejected + blank, and the tables agree."""
        t = self.totals()
        row = self.con.execute(
            "SELECT (SELECT count(*) FROM cases), (SELECT count(DISTINCT seq) FROM errors), "
            "(SELECT count(*) FROM (SELECT seq FROM cases INTERSECT SELECT seq FROM errors)), "
            "(SELECT count(*) - count(DISTINCT seq) FROM cases)"
        ).fetchone()
        assert row is not None
        in_cases, in_errors, both, repeated = map(int, row)
        problems = []
        if t["records"] != planned_records:
            problems.append(
                f"the input has {planned_records:,} records, the committed chunks {t['records']:,}"
            )
        if t["evaluated"] + t["rejected"] + t["blank"] != t["records"]:
            problems.append(
                f"{t['records']:,} records read ≠ {t['evaluated']:,} evaluated + {t['rejected']:,} rejected + "
                f"{t['blank']:,} blank"
            )
        if in_cases != t["evaluated"] or in_errors != t["rejected"]:
            problems.append(
                f"the tables hold {in_cases:,} cases and {in_errors:,} rejected records; the chunks say "
                f"{t['evaluated']:,} and {t['rejected']:,}"
            )
        if both or repeated:
            problems.append(f"{both + repeated:,} records are in the tables more than once")
        if problems:
            raise EngineError("audit accounting failed: " + "; ".join(problems) + " — no summary was written")
        return t

    def export_parquet(self, directory: Path) -> list[Path]:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        out = []
        for name in ("run_metadata", "chunks", *TABLES):
            path = directory / f"{name}.parquet"
            self.con.execute(f"COPY {name} TO {_sql_text(str(path))} (FORMAT PARQUET, COMPRESSION ZSTD)")
            out.append(path)
        return out

    def checkpoint(self) -> None:
        self.con.execute("CHECKPOINT")
