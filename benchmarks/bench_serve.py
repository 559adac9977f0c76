"""Load on ``reirrad serve`` over loopback: concurrent clients posting generated cases to /api/v1/evaluate.

    python benchmarks/bench_serve.py [--clients 32] [--duration 60] [--requests N] [--workers 1] [--json out.json]

Starts ``reirrad serve`` as a child process on a free 127.0.0.1 port (a fresh --data folder), waits for its health
endpoint, then runs --clients keep-alive HTTP/1.1 connections from one asyncio loop in this process, each posting
the next case of a generated cohort (reirrad.testing.synth, validated beforehand) and reading the whole answer.
Stops after --duration seconds or --requests requests, whichever comes first; both are bounded, and nothing but
127.0.0.1 is ever contacted. The client is a minimal raw-socket HTTP/1.1 writer/reader, so that the load generator
takes as little of the machine's two cores as it can.

Reported: evaluations per second, latency percentiles (p50, p90, p99, max, from the first byte written to the last
byte read), errors (any status other than 200, or a broken connection), the server's resident memory sampled every
second from /proc (first and last tenth of the run, peak), the CPU time the server and the client used, and how
many of the clients' connections each server process held two seconds in (an uneven split puts more clients behind
one core; on Linux the server's parent hands them to its workers in turn).
The goal of issue 12: >= 400 evaluations/s on 2 cores, p99 <= 100 ms, zero errors, memory flat over 100,000 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cohort(n: int, seed: int) -> list[bytes]:
    from reirrad.case import case_problems
    from reirrad.testing.synth import synth_cases

    bodies = []
    for data in synth_cases(n, seed):
        case, problems = case_problems(data, {}, "synth")
        if case is not None and not problems:
            bodies.append(json.dumps(data).encode())
    return bodies


def _request(body: bytes) -> bytes:
    head = (
        "POST /api/v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _tree(pid: int) -> list[int]:
    """The server and its worker processes (uvicorn --workers forks children)."""
    found = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += _tree(int(child))
    return found


def _rss_kib(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _cpu_seconds(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _connections(pid: int, port: int) -> dict[int, int]:
    """Established connections on ``port`` held by each process of the server: whether the kernel spread the
    clients' keep-alive connections across the workers."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    held: dict[int, int] = {}
    for p in _tree(pid):
        count = 0
        for fd in Path(f"/proc/{p}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                count += 1
        if count:
            held[p] = count
    return held


async def _client(
    port: int, requests: list[bytes], next_index: list[int], stop: dict[str, Any], latencies: list[float]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop["done"]:
            i = next_index[0]
            if i >= stop["limit"]:
                stop["done"] = True
                break
            next_index[0] = i + 1
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                stop["errors"] += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                stop["errors"] += 1
    finally:
        writer.close()


async def _sample_memory(pid: int, stop: dict[str, Any], samples: list[tuple[float, int, int]]) -> None:
    start = time.perf_counter()
    while not stop["done"]:
        samples.append((time.perf_counter() - start, stop["count"](), _rss_kib(pid)))
        if len(samples) == 3:
            stop["connections"] = sorted(_connections(pid, stop["port"]).values(), reverse=True)
        await asyncio.sleep(1.0)


async def _run(
    port: int, pid: int, requests: list[bytes], clients: int, duration: float, limit: int
) -> dict[str, Any]:
    latencies: list[float] = []
    next_index = [0]
    stop: dict[str, Any] = {
        "done": False,
        "errors": 0,
        "limit": limit,
        "count": lambda: len(latencies),
        "port": port,
        "connections": [],
    }
    samples: list[tuple[float, int, int]] = []
    cpu_before = _cpu_seconds(pid)
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(_client(port, requests, next_index, stop, latencies)) for _ in range(clients)
    ]
    sampler = asyncio.create_task(_sample_memory(pid, stop, samples))
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=duration)
    except TimeoutError:
        stop["done"] = True
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - started
    stop["done"] = True
    await sampler
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    samples.append((elapsed, len(latencies), _rss_kib(pid)))
    lat_ms = sorted(x * 1000 for x in latencies)

    def pct(p: float) -> float:
        return lat_ms[min(len(lat_ms) - 1, int(p / 100 * len(lat_ms)))] if lat_ms else float("nan")

    tenth = max(1, len(samples) // 10)
    return {
        "requests": len(latencies),
        "errors": stop["errors"],
        "seconds": round(elapsed, 2),
        "evaluations_per_s": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            "p50": round(pct(50), 1),
            "p90": round(pct(90), 1),
            "p99": round(pct(99), 1),
            "max": round(lat_ms[-1], 1) if lat_ms else None,
            "mean": round(statistics.fmean(lat_ms), 1) if lat_ms else None,
        },
        "server_rss_mib": {
            "first_tenth": round(statistics.fmean(s[2] for s in samples[:tenth]) / 1024, 1),
            "last_tenth": round(statistics.fmean(s[2] for s in samples[-tenth:]) / 1024, 1),
            "peak": round(max(s[2] for s in samples) / 1024, 1),
        },
        "connections_per_process": stop["connections"],
        "server_cpu_s": round(_cpu_seconds(pid) - cpu_before, 1),
        "client_cpu_s": round(
            own_after.ru_utime + own_after.ru_stime - own_before.ru_utime - own_before.ru_stime, 1
        ),
        "memory_samples": [{"t": round(t, 1), "requests": n, "rss_kib": r} for t, n, r in samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load at most (default 60)")
    parser.add_argument("--requests", type=int, default=10**9, help="requests at most (default: no limit)")
    parser.add_argument("--cases", type=int, default=2000, help="distinct generated cases to cycle through")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="reirrad serve --workers (default 1)")
    parser.add_argument("--warmup", type=int, default=200, help="requests sent before measuring")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    if not 0 < args.duration <= 900:
        parser.error("--duration must be in (0, 900] seconds")

    requests = [_request(b) for b in _cohort(args.cases, args.seed)]
    port = _free_port()
    data = Path(tempfile.mkdtemp(prefix="reirrad-bench-"))
    log = (data / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reirrad",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data",
            str(data),
            "--workers",
            str(args.workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        asyncio.run(_run(port, server.pid, requests, args.clients, 60.0, args.warmup))
        figures = asyncio.run(_run(port, server.pid, requests, args.clients, args.duration, args.requests))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)
    figures["setup"] = {
        "clients": args.clients,
        "workers": args.workers,
        "distinct_cases": len(requests),
        "duration_limit_s": args.duration,
        "request_limit": args.requests,
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}",
        "load_average_before": os.getloadavg(),
    }
    summary = {k: v for k, v in figures.items() if k != "memory_samples"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
