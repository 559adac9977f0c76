"""Hostile input and faults (issue 15): one writer per DIR, every record accounted for, a poisoned row is that row's
error, workers die with their parent, a changed input is never resumed, a cohort directory is read safely."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_helpers import AS_OF, accounted, audit, query
from reirrad.audit import runner
from reirrad.audit.readers import dumps_line, write_csv
from reirrad.audit.store import StoreLock
from reirrad.cli.main import main
from reirrad.errors import InputError
from reirrad.testing.synth import synth_cases

DOCS = synth_cases(12, 5)


def cohort(tmp_path: Path, *middle: bytes) -> Path:
    """Six good cases, the given lines, six good cases."""
    path = tmp_path / "c.jsonl"
    path.write_bytes(
        b"".join([*(dumps_line(d) for d in DOCS[:6]), *middle, *(dumps_line(d) for d in DOCS[6:])])
    )
    return path


def errors(out: Path) -> list[dict[str, Any]]:
    cols = ["seq", "line", "column_name", "path", "code", "value", "message"]
    return [
        dict(zip(cols, r, strict=True))
        for r in query(out, f"SELECT {', '.join(cols)} FROM errors ORDER BY seq")
    ]


# --- the output directory ------------------------------------------------------------------------------------


def test_out_naming_a_file_is_refused_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    assert main(["audit", str(cohort(tmp_path)), "--out", str(target), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--out names an existing file, not a directory" in err
    assert "Traceback" not in err
    assert target.read_text() == "keep me"


def test_a_corrupt_database_is_refused_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "audit.duckdb").write_bytes(b"\x00not a database" * 500)
    assert main(["audit", str(cohort(tmp_path)), "--out", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "the audit database cannot be opened" in err
    assert "--restart" in err
    assert "Traceback" not in err
    assert main(["audit", str(cohort(tmp_path)), "--out", str(out), "--workers", "0", "--restart"]) == 0


def test_a_second_audit_into_a_locked_dir_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    lock = StoreLock(out)  # as a running audit holds it
    try:
        assert main(["audit", str(cohort(tmp_path)), "--out", str(out), "--workers", "0"]) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert f"another audit is writing into this directory (process {os.getpid()})" in err
    assert not (out / "audit.duckdb").exists()


def _audit_cmd(path: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reirrad", "audit", str(path), "--out", str(out), "--as-of", AS_OF, *extra]


def test_two_audits_started_together_one_refused_the_other_complete(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(dumps_line(d) for d in synth_cases(120, 9)))
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            _audit_cmd(path, out, "--workers", "1", "--chunk-size", "10"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    refused = next(err for (_, err), p in zip(results, procs, strict=True) if p.returncode == 2)
    assert b"another audit is writing into this directory" in refused
    assert b"Traceback" not in refused
    assert [s for s, _ in accounted(out)] == list(range(120))


# --- accounting ------------------------------------------------------------------------------------------------


def test_a_jsonl_null_is_a_rejected_record_not_a_blank(tmp_path: Path) -> None:
    out = tmp_path / "out"
    outcome = audit(cohort(tmp_path, b"null\n", b"   \n"), out)
    assert (outcome.records, outcome.evaluated, outcome.rejected, outcome.blank) == (14, 12, 1, 1)
    (e,) = errors(out)
    assert (e["line"], e["code"]) == (7, "json")
    assert e["message"] == "a JSON null, not a case document"


def test_a_lost_row_fails_the_audit_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = runner.Store.commit

    def lose_one(self: Any, *args: Any, **kw: Any) -> Any:
        out = real(self, *args, **kw)
        self.con.execute("DELETE FROM cases WHERE seq = 3")  # a row lost behind the commit's back
        return out

    monkeypatch.setattr(runner.Store, "commit", lose_one)
    out = tmp_path / "out"
    assert main(["audit", str(cohort(tmp_path)), "--out", str(out), "--workers", "0", "--as-of", AS_OF]) == 3
    err = capsys.readouterr().err
    assert "audit accounting failed" in err
    assert "the tables hold 11 cases" in err
    assert not (out / "summary.json").exists()


# --- poisoned rows: each is that row's error, the rest is audited -------------------------------------------


def _nested(depth: int) -> bytes:
    return (
        b'{"schema":"reirrad/case/v1","case_id":"deep","lesion":'
        + b'{"a":' * depth
        + b"1"
        + b"}" * depth
        + b"}\n"
    )


POISON = {
    "nested 100,000 deep": (_nested(100_000), "not valid JSON"),
    "nested 900 deep": (_nested(900), "lesion"),
    "lone surrogate": (b'{"schema":"reirrad/case/v1","case_id":"x\\ud800y"}\n', "not valid JSON"),
    "5,000-digit number": (
        b'{"schema":"reirrad/case/v1","case_id":"big","patient":{"age":' + b"7" * 5000 + b"}}\n",
        "not valid JSON",
    ),
    "NUL in a string": (
        b'{"schema":"reirrad/case/v1","case_id":"nul","patient":{"histology":"a\\u0000b"}}\n',
        "",
    ),
}


@pytest.mark.parametrize("name", list(POISON))
def test_a_poisoned_jsonl_row_is_its_own_error(name: str, tmp_path: Path) -> None:
    line, expect = POISON[name]
    out = tmp_path / "out"
    outcome = audit(cohort(tmp_path, line), out, workers=1)
    assert (outcome.evaluated, outcome.rejected) == (12, 1)
    found = errors(out)
    assert {e["line"] for e in found} == {7}
    assert expect in " ".join(f"{e['path']} {e['message']}" for e in found)
    assert all(len(e["message"]) < 400 for e in found)


def test_a_nul_byte_in_a_yaml_file_is_its_own_error(tmp_path: Path) -> None:
    d = tmp_path / "cases"
    d.mkdir()
    for doc in DOCS[:4]:
        (d / f"{doc['case_id']}.yaml").write_text(yaml.safe_dump(doc))
    (d / "poison.yaml").write_bytes(b"schema: reirrad/case/v1\ncase_id: a\x00b\n")
    out = tmp_path / "out"
    outcome = audit(d, out)
    assert (outcome.evaluated, outcome.rejected) == (4, 1)
    (e,) = query(out, "SELECT file, line, message FROM errors")
    assert e[0].endswith("poison.yaml")
    assert (e[1], e[2]) == (2, "a NUL byte in the file")


def _csv(tmp_path: Path, docs: list[dict[str, Any]]) -> tuple[Path, list[bytes]]:
    path = tmp_path / "c.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        write_csv(docs, f)
    return path, path.read_bytes().split(b"\n")


def test_a_windows_1252_byte_in_a_csv_loses_only_its_row(tmp_path: Path) -> None:
    path, lines = _csv(tmp_path, DOCS[:5])
    n = next(
        i for i, ln in enumerate(lines) if ln.startswith(DOCS[2]["case_id"].encode()) and b",planned," in ln
    )
    lines[n] = lines[n].replace(b",female,", b",f\xe9male,").replace(b",male,", b",m\xe9le,")
    path.write_bytes(b"\n".join(lines))
    out = tmp_path / "out"
    outcome = audit(path, out)
    assert (outcome.evaluated, outcome.rejected) == (4, 1)
    (e,) = errors(out)
    assert e["line"] == n + 1
    assert "byte 0xE9 is not UTF-8 ('é' in Windows-1252)" in e["message"]
    assert "save it as UTF-8" in e["message"]


def test_a_very_long_cell_loses_only_its_row(tmp_path: Path) -> None:
    path, lines = _csv(tmp_path, DOCS[:5])
    n = next(
        i for i, ln in enumerate(lines) if ln.startswith(DOCS[1]["case_id"].encode()) and b",planned," in ln
    )
    for size, text in ((50_000, "a cell of 50,0"), (3_000_000, "the row cannot be read as CSV")):
        body = list(lines)
        body[n] = body[n].replace(b",planned,", b",planned," + b"x" * size, 1)
        path.write_bytes(b"\n".join(body))
        out = tmp_path / f"out-{size}"
        outcome = audit(path, out)
        assert outcome.evaluated == 4  # every other case; the case of the long row is rejected
        found = [e for e in errors(out) if e["line"] == n + 1]
        assert len(found) == 1
        assert text in found[0]["message"]
        assert len(found[0]["message"]) < 400


def test_a_utf8_bom_before_the_header_is_read_as_the_header(tmp_path: Path) -> None:
    path, lines = _csv(tmp_path, DOCS[:5])
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))
    outcome = audit(path, tmp_path / "out")
    assert (outcome.evaluated, outcome.rejected) == (5, 0)


# --- processes -----------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Any thread of ``pid`` still running: the group leader shows "Z" while its other threads are still exiting
    and holding the process's files (so the audit's lock)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            if (task / "status").read_text().split("State:")[1].split()[0] != "Z":
                return True
        except (OSError, IndexError):
            continue
    return False


def _lock_released(out: Path, seconds: float) -> bool:
    """The directory's lock can be taken within ``seconds``: the kernel drops it when the last process holding its
    file has gone, which follows the kill by a few milliseconds, not at once."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            StoreLock(out).release()
            return True
        except InputError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="finds worker processes through /proc (Linux)"
)
def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"".join(dumps_line(d) for d in synth_cases(400, 3)))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        _audit_cmd(path, out, "--workers", "2", "--chunk-size", "5"), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            workers = _children(proc.pid)
            time.sleep(0.05)
        assert len(workers) == 2, "the audit started two workers"
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "workers outlived their parent"
    finally:
        with_group = proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(with_group, signal.SIGKILL)
    assert _lock_released(out, 10), "the lock outlived the audit's processes"
    outcome = audit(path, out, chunk_cases=5)  # and the audit resumes
    assert outcome.records == 400
    assert [s for s, _ in accounted(out)] == list(range(400))


# --- resuming only the same input ----------------------------------------------------------------------------


def test_a_changed_jsonl_is_not_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = cohort(tmp_path)
    out = tmp_path / "out"
    audit(path, out)
    st = path.stat()
    data = bytearray(path.read_bytes())
    i = data.index(b'"age":') + 6
    data[i : i + 1] = b"9" if data[i : i + 1] != b"9" else b"8"  # same size; mtime put back below
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    args = ["audit", str(path), "--out", str(out), "--workers", "0", "--as-of", AS_OF, "--chunk-size", "7"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "input (sha256)" in err
    assert "resuming would mix two cohorts" in err


def test_a_changed_yaml_directory_is_not_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "cases"
    d.mkdir()
    for doc in DOCS[:5]:
        (d / f"{doc['case_id']}.yaml").write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    audit(d, out, chunk_cases=2)
    (d / "added.yaml").write_text(yaml.safe_dump({**DOCS[6], "case_id": "added"}))
    args = ["audit", str(d), "--out", str(out), "--workers", "0", "--as-of", AS_OF, "--chunk-size", "2"]
    assert main(args) == 2
    assert "input (sha256, size)" in capsys.readouterr().err


def test_a_yaml_directory_reads_regular_files_inside_it_only(tmp_path: Path) -> None:
    secret = tmp_path / "outside.yaml"
    secret.write_text("schema: reirrad/case/v1\ncase_id: SECRET-CONTENT\n")
    d = tmp_path / "cases"
    d.mkdir()
    for doc in DOCS[:3]:
        (d / f"{doc['case_id']}.yaml").write_text(yaml.safe_dump(doc))
    (d / "link-out.yaml").symlink_to(secret)
    (d / "link-in.yaml").symlink_to(d / f"{DOCS[0]['case_id']}.yaml")
    os.mkfifo(d / "fifo.yaml")
    (d / "sub").symlink_to(tmp_path, target_is_directory=True)  # a directory link is not followed
    out = tmp_path / "out"
    outcome = audit(d, out)
    assert (outcome.records, outcome.evaluated, outcome.rejected) == (6, 3, 3)
    found = {Path(f).name: m for f, m in query(out, "SELECT file, message FROM errors")}
    assert found["link-out.yaml"] == "a symbolic link to a file outside the cohort directory (not read)"
    assert found["fifo.yaml"] == "not a regular file (not read)"
    # a link inside the directory is read; it repeats a case, so the later file (sorted) is the duplicate
    assert query(out, "SELECT file, code FROM errors WHERE code = 'duplicate'") == [
        (str(d / f"{DOCS[0]['case_id']}.yaml"), "duplicate")
    ]
    dump = json.dumps(query(out, "SELECT * FROM errors"), default=str)
    assert "SECRET-CONTENT" not in dump


def test_a_case_id_or_histology_refused_as_identifying_is_not_written_anywhere(tmp_path: Path) -> None:
    """The screen's refusal says "its value is not repeated here"; the errors table keeps that promise too."""
    bad_id = {**DOCS[0], "case_id": "MRN4711923"}
    bad_histology = {
        **DOCS[1],
        "case_id": "ok-1",
        "patient": {**DOCS[1]["patient"], "histology": "Jane Doe 48123456"},
    }
    out = tmp_path / "out"
    outcome = audit(cohort(tmp_path, dumps_line(bad_id), dumps_line(bad_histology)), out, workers=1)
    assert (outcome.evaluated, outcome.rejected) == (12, 2)
    rows = query(out, "SELECT path, code, value, case_id FROM errors ORDER BY seq")
    assert [(r[0], r[1]) for r in rows] == [
        ("case_id", "privacy.identifier"),
        ("patient.histology", "privacy.identifier"),
    ]
    assert rows[0][2:] == (None, None)  # neither the cell nor the case id
    assert rows[1][2:] == (None, "ok-1")  # the histology withheld, the good case id kept
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"4711923" not in data and b"48123456" not in data, path
