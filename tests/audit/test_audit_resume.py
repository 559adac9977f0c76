"""An interrupted audit, re-run with the same DIR, neither loses nor duplicates a case."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import AS_OF, accounted, query
from reirrad.audit import runner
from reirrad.audit.readers import dumps_line
from reirrad.audit.runner import AuditOptions, run_audit
from reirrad.errors import EngineError
from reirrad.testing.synth import iter_synth_cases


def make_cohort(path: Path, n: int) -> Path:
    with open(path, "wb") as f:
        for i, doc in enumerate(iter_synth_cases(n, 21)):
            f.write(b"{not json\n" if i % 97 == 13 else dumps_line(doc))
    return path


def keys(out: Path) -> list[int]:
    return [seq for seq, _ in accounted(out)]


def tables(out: Path) -> list[list[tuple[Any, ...]]]:
    """Every table's rows in a stable order: two audits of the same input hold the same rows."""
    return [
        query(out, f"SELECT * FROM {name} ORDER BY ALL")
        for name in ("cases", "policy_verdicts", "constraint_lines", "recommendations", "errors")
    ]


def opts(cohort: Path, out: Path, **kw: Any) -> AuditOptions:
    return AuditOptions(
        cohort=cohort, out=out, as_of=AS_OF, **{"workers": 0, "chunk_cases": 10, "full_results": True, **kw}
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("clean")
    cohort = make_cohort(base / "c.jsonl", 200)
    run_audit(opts(cohort, base / "out"))
    return cohort, base / "out"


def test_a_crash_between_commits_and_a_torn_append_are_repaired(
    clean: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort, reference = clean
    out = tmp_path / "out"
    real = runner.Store.commit
    calls = {"n": 0}

    def crash_after_three(self: Any, *args: Any, **kw: Any) -> Any:
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process stops after appending results, before the transaction
        calls["n"] += 1
        return real(self, *args, **kw)

    monkeypatch.setattr(runner.Store, "commit", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        run_audit(opts(cohort, out))
    monkeypatch.setattr(runner.Store, "commit", real)
    assert query(out, "SELECT max(chunk) FROM chunks") == [(2,)]
    with open(out / "results.jsonl", "ab") as f:  # and a torn line after chunk 3's unrecorded append
        f.write(b'{"schema":"reirrad/result/v1","case_id":"torn')
    outcome = run_audit(opts(cohort, out, workers=2))
    assert outcome.resumed_from_chunk == 3
    assert outcome.records == 200
    assert outcome.evaluated + outcome.rejected == 200
    assert keys(out) == list(range(200))
    assert tables(out) == tables(reference)
    assert (out / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()
    summary, ref = (json.loads((d / "summary.json").read_text()) for d in (out, reference))
    assert summary["policies"] == ref["policies"]
    assert summary["scatter"] == ref["scatter"]
    again = run_audit(opts(cohort, out))  # a completed audit re-run adds nothing
    assert again.records == 200
    assert keys(out) == list(range(200))


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _start(cohort: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reirrad",
            "audit",
            str(cohort),
            "--out",
            str(out),
            "--workers",
            "2",
            "--chunk-size",
            "10",
            "--as-of",
            AS_OF,
            "--full-results",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


def _wait_for_commits(out: Path, proc: subprocess.Popen[bytes], at_least: int) -> None:
    """Until results.jsonl (appended chunk by chunk, before each chunk's transaction) holds ``at_least`` chunks."""
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if results.read_bytes().count(b"\n") >= 9 * at_least:
                return
        except OSError:
            pass
        time.sleep(0.02)
    pytest.fail("the audit did not commit in time")


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="finds worker processes through /proc (Linux)"
)
def test_killed_worker_stops_the_audit_and_a_rerun_completes_it(
    clean: tuple[Path, Path], tmp_path: Path
) -> None:
    cohort, reference = clean
    out = tmp_path / "out"
    proc = _start(cohort, out)
    try:
        _wait_for_commits(out, proc, 2)
        workers = _children(proc.pid)
        assert workers, "the audit has worker processes"
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    if proc.returncode == 0:  # the worker had already finished its last chunk: nothing was lost either way
        assert keys(out) == list(range(200))
        return
    assert proc.returncode == 3
    assert b"re-run the same command to resume" in err
    outcome = run_audit(opts(cohort, out))
    assert outcome.records == 200
    assert keys(out) == list(range(200))
    assert tables(out) == tables(reference)


def test_killed_audit_process_group_resumes_without_duplicates(
    clean: tuple[Path, Path], tmp_path: Path
) -> None:
    cohort, reference = clean
    out = tmp_path / "out"
    proc = _start(cohort, out)
    try:
        _wait_for_commits(out, proc, 3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # parent and workers, mid-run
        proc.communicate()
    outcome = run_audit(opts(cohort, out, workers=2))
    assert outcome.records == 200
    assert keys(out) == list(range(200))
    assert tables(out) == tables(reference)
    assert (out / "results.jsonl").read_bytes() == (reference / "results.jsonl").read_bytes()


def test_a_case_that_breaks_the_engine_is_a_row_in_errors_not_a_stopped_audit(
    clean: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort, _ = clean

    def hook(ev: Any) -> None:
        real = ev.evaluation  # under both the record the database needs and the full result

        def evaluation(case: Any, **kwargs: Any) -> Any:
            if case.case_id.endswith("7"):
                raise EngineError("two statuses fired")
            return real(case, **kwargs)

        ev.evaluation = evaluation

    out = tmp_path / "out"
    outcome = run_audit(opts(cohort, out, evaluator_hook=hook))
    assert outcome.records == 200
    assert keys(out) == list(range(200))
    engine_errors = query(out, "SELECT message FROM errors WHERE code = 'engine'")
    assert len(engine_errors) == sum(1 for i in range(200) if str(i).endswith("7") and i % 97 != 13)
    assert engine_errors[0][0] == "engine error: two statuses fired"
