"""`reirrad serve` and `reirrad feedback report` as commands: refusals before binding, a real start on loopback,
and the report of a store the service wrote."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from reirrad.cli.main import main
from reirrad.service.feedback import FeedbackStore
from service_helpers import example_case


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_serve_beyond_loopback_without_credentials_is_refused(tmp_path: Path) -> None:
    code, _, err = run("serve", "--host", "0.0.0.0", "--data", str(tmp_path))
    assert code == 2
    assert "--host: 0.0.0.0 is not a loopback address, and no credentials were given" in err
    assert "--token-file FILE" in err


def test_serve_with_a_short_token_or_a_jwks_without_issuer_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("short\n")
    code, _, err = run("serve", "--host", "0.0.0.0", "--token-file", str(token))
    assert code == 2
    assert "shorter than 16 characters" in err
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "EC"}]}))
    code, _, err = run("serve", "--cds-jwks", str(jwks))
    assert code == 2
    assert "--cds-issuer: a JWKS was given without the issuers it may verify" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_on_loopback_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reirrad", "serve", "--port", str(port), "--data", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert health["status"] == "ok"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/evaluate",
            data=json.dumps(example_case()).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            assert json.loads(r.read())["case_id"] == "t1-chondrosarcoma"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    text = err.decode()
    assert f"page http://127.0.0.1:{port}/" in text
    assert "rule pack reirrad-spine-reirradiation" in text
    assert "t1-chondrosarcoma" not in text  # nothing of the case in the log


def _workers(pid: int) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    try:
        children = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    found = []
    for child in children:
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def _inodes(port: int, state: str = "0A") -> set[str]:
    """Sockets on the server's side of ``port`` in that state (0A listening, 01 established)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
            found.add(fields[9])
    return found


def _sockets_of(pid: int, inodes: set[str]) -> set[str]:
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held.add(target[8:-1])
    return held


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent hands connections over on Linux only (send_fds)"
)
def test_workers_take_the_connections_in_turn_from_the_parent(tmp_path: Path) -> None:
    """--workers 2: the parent alone listens; it accepts each connection and hands it to the workers in turn, so 40
    connections give each worker exactly 20 (with a socket each the kernel split them by a hash; with one shared
    socket the first worker awake took them all). Both answer; a second server on the same port is refused before
    it starts; a worker that dies is started again and takes its turns; SIGTERM stops them all."""
    port = _free_port()
    argv = [sys.executable, "-m", "reirrad", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        [*argv, "--data", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 90
        while len(_workers(proc.pid)) < 2 or not _inodes(port):
            assert time.monotonic() < deadline, "two workers started, the parent listening"
            assert proc.poll() is None
            time.sleep(0.2)
        workers = _workers(proc.pid)
        listening = _inodes(port)
        assert len(listening) == 1
        assert _sockets_of(proc.pid, listening) == listening  # the parent holds the one listening socket
        assert all(_sockets_of(w, listening) == set() for w in workers)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(40)]
        try:
            for c in clients:  # served once each worker is ready (a handed connection waits for it)
                c.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.recv(64).startswith(b"HTTP/1.1 200")
            established = _inodes(port, "01")
            assert sorted(len(_sockets_of(w, established)) for w in workers) == [20, 20]
            assert _sockets_of(proc.pid, established) == set()  # the parent kept no copy
        finally:
            for c in clients:
                c.close()
        code, _, err = run("serve", "--port", str(port), "--workers", "2", "--data", str(tmp_path / "other"))
        assert code == 2
        assert f"--port: 127.0.0.1:{port} cannot be bound" in err
        assert "a free port on that address" in err
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 90
        while not (len(_workers(proc.pid)) == 2 and workers[0] not in _workers(proc.pid)):
            assert time.monotonic() < deadline, "the dead worker was started again"
            time.sleep(0.2)
        now = _workers(proc.pid)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(4)]
        try:  # the new worker takes its turns
            for c in clients:
                c.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                assert c.recv(64).startswith(b"HTTP/1.1 200")
            established = _inodes(port, "01")
            assert sorted(len(_sockets_of(w, established)) for w in now) == [2, 2]
        finally:
            for c in clients:
                c.close()
    finally:
        proc.terminate()
        _, err_bytes = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert all(
        not Path(f"/proc/{w}").exists() or "Z" in Path(f"/proc/{w}/stat").read_text().split()[2] for w in now
    )
    log = err_bytes.decode()
    assert "ended with -9; starting it again" in log
    assert log.count("ready: rule pack reirrad-spine-reirradiation") == 3  # two workers, then the new one
    assert "GET /api/v1/health 200" in log  # the workers' request lines reach the log


def test_a_worker_that_cannot_start_stops_the_server(monkeypatch: Any, caplog: Any) -> None:
    """A worker that dies as it starts is not started again for ever: after QUICK_EXITS failed starts in a row the
    server stops with exit 3 and says why."""
    from reirrad.cli import serve
    from service_helpers import exit_at_once

    monkeypatch.setattr(serve, "QUICK_EXITS", 2)
    started = time.monotonic()
    code = serve._serve_workers("127.0.0.1", _free_port(), 2, {}, target=exit_at_once)
    assert code == 3
    assert "failed to start 2 times in a row (last exit code 7); stopping the server" in caplog.text
    assert caplog.text.count("ended with 7; starting it again") >= 1
    assert time.monotonic() - started < 60


def test_feedback_report_lists_rules_with_their_counts_and_reasons(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path)
    store.record_fired(
        "page", "a" * 64, [("hytec.resbrt", "1.0.0", "fail"), ("nelson.cumulative", "1.0.0", "fail")]
    )
    store.record_outcome(
        "page", "disagreed", "a" * 64, "hytec.resbrt", "1.0.0", reason="we constrain D0.03cc"
    )
    store.record_outcome(
        "cds", "overridden", "b" * 64, "hytec.resbrt", "1.0.0", reason_code="clinical-judgement"
    )
    store.record_outcome("cds", "accepted", "b" * 64, "nelson.cumulative", "1.0.0")
    code, out, _ = run("feedback", "report", "--data", str(tmp_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["rule", "version", "fired", "accepted", "overridden", "disagreed"]
    assert lines[1].split() == ["hytec.resbrt", "1.0.0", "1", "0", "1", "1"]
    assert lines[2].split() == ["nelson.cumulative", "1.0.0", "1", "1", "0", "0"]
    assert "- hytec.resbrt 1.0.0: we constrain D0.03cc (1×)" in out
    code, out, _ = run("feedback", "report", "--data", str(tmp_path), "--format", "json")
    data: dict[str, Any] = json.loads(out)
    assert data["rules"][0]["reasons"] == [
        {"reason": "we constrain D0.03cc", "count": 1},
        {"reason": "clinical-judgement", "count": 1},
    ]
    code, out, _ = run("feedback", "report", "--data", str(tmp_path), "--format", "markdown")
    assert "| hytec.resbrt | 1.0.0 | 1 | 0 | 1 | 1 |" in out


def test_feedback_report_without_a_store_is_refused(tmp_path: Path) -> None:
    code, _, err = run("feedback", "report", "--data", str(tmp_path / "none"))
    assert code == 2
    assert "no feedback store here" in err


def test_the_store_keeps_no_patient_identity(tmp_path: Path) -> None:
    import sqlite3

    store = FeedbackStore(tmp_path)
    columns = {
        row[1]
        for table in ("cards", "events")
        for row in sqlite3.connect(tmp_path / "feedback.sqlite3").execute(f"PRAGMA table_info({table})")
    }
    assert columns == {
        "uuid",
        "service",
        "case_hash",
        "rule_id",
        "rule_version",
        "status",
        "time",
        "id",
        "source",
        "kind",
        "card_uuid",
        "reason_code",
        "reason",
    }
    assert store.report() == []


@pytest.mark.parametrize("argv", [["evaluate", "--format", "fhir"]])
def test_evaluate_fhir_format_is_listed(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        run(*argv, "--help")
