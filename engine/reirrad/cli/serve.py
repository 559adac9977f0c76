"""``reirrad serve``: the web page, the JSON API and the CDS Hooks service on one local address (uvicorn)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reirrad.cli.args import whole_number
from reirrad.cli.exits import Exit
from reirrad.errors import InputError, Problem

__all__ = ["add_serve_parser"]


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    f"cannot be read: {exc.strerror}",
                    "a file holding the access token",
                    code="io",
                )
            ]
        ) from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    "the token is shorter than 16 characters or holds spaces",
                    "one line of at least 16 characters, e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                    code="serve.token",
                )
            ]
        )
    return token


def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError.of(
            [Problem(str(path), (), f"cannot be read: {exc.strerror}", "a JWK Set (JSON)", code="io")]
        ) from None
    except json.JSONDecodeError as exc:
        raise InputError.of(
            [Problem(str(path), (), f"not JSON ({exc})", "a JWK Set (JSON)", code="serve.jwks")]
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise InputError.of(
            [Problem(str(path), ("keys",), "no keys", 'a JWK Set: {"keys": [...]}', code="serve.jwks")]
        )
    return data


_PATH_OPTIONS = ("data", "rules", "token_file", "cds_jwks")
_WORKER_ENV = "REIRRAD_SERVE_OPTIONS"


def _config(args: argparse.Namespace) -> Any:
    from reirrad.service.security import ServiceConfig

    config = ServiceConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data,
        rules=args.rules,
        token=_read_token(args.token_file) if args.token_file else None,
        jwks=_read_jwks(args.cds_jwks) if args.cds_jwks else None,
        cds_issuers=tuple(args.cds_issuer or ()),
        public_url=args.public_url,
        cors_origins=tuple(args.cors_origin or ()),
        max_json_bytes=args.max_json_kb * 1024,
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
        timeout_s=float(args.timeout),
    )
    problems = config.startup_problems()
    if problems:
        raise InputError.of(problems)
    return config


def _log_to_stderr() -> None:
    """The service's log (one line per request, no patient data) on standard error, in every process."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def worker_app() -> Any:
    """The application of one uvicorn worker process (``--workers`` > 1): the options come in the environment."""
    import logging
    import os

    _log_to_stderr()  # a worker starts as a fresh interpreter: without this its request lines were lost

    from reirrad.service.app import create_app

    options = json.loads(os.environ[_WORKER_ENV])
    for key in _PATH_OPTIONS:
        if options.get(key) is not None:
            options[key] = Path(options[key])
    app = create_app(_config(argparse.Namespace(**options)))
    _warm(app)
    logging.getLogger("reirrad.service").info(
        "worker process %d ready: rule pack %s", os.getpid(), app.fastapi.state.engine.info.header
    )
    return app


def _warm(app: Any) -> None:
    """Compile today's evaluator, then freeze what the process holds for its whole life (the pack, the compiled
    rules, the application): the garbage collector's full passes, which stop the worker, no longer walk it (a
    full pass during evaluations measured 11-14 ms before, 5 ms after)."""
    import gc

    app.fastapi.state.engine.warm()
    gc.collect()
    gc.freeze()


def _serve(args: argparse.Namespace) -> int:
    for module in ("fastapi", "uvicorn", "jinja2", "python_multipart", "jwt"):
        _require_serve(module)
    import os

    import uvicorn

    from reirrad.service.app import create_app

    config = _config(args)
    _log_to_stderr()
    print(
        f"reirrad serve: page {config.base_url}/   API {config.base_url}/api/v1/   CDS Hooks "
        f"{config.base_url}/cds-services\n  feedback store: {config.data_dir.resolve()}; "
        f"{args.workers} worker process(es)",
        file=sys.stderr,
    )
    common: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "access_log": False,
        "log_level": "warning",
        "timeout_keep_alive": 5,
        "limit_concurrency": args.max_connections,
        "server_header": False,
    }
    if args.workers > 1:
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
        os.environ[_WORKER_ENV] = json.dumps(options)
        if _can_hand_over():
            return _serve_workers(config.host, config.port, args.workers, common)
        uvicorn.run("reirrad.cli.serve:worker_app", factory=True, workers=args.workers, **common)
        return Exit.OK
    app = create_app(config)
    _warm(app)
    print(f"  rule pack {app.fastapi.state.engine.info.header}", file=sys.stderr)
    uvicorn.run(app, **common)
    return Exit.OK


def _can_hand_over() -> bool:
    """Whether the parent can pass accepted connections to its workers (SCM_RIGHTS over a Unix socket pair).
    Elsewhere ``--workers`` falls back to uvicorn's own workers, which share one listening socket."""
    import socket

    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


def _listening_socket(host: str, port: int) -> Any:
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


BACKLOG = 2048
"""Connections the kernel queues before the parent accepts them (uvicorn's default)."""
QUICK_EXIT_S = 30.0
"""A worker that ends sooner than this after its start has failed to start (it is not an accident of service)."""
QUICK_EXITS = 3
"""Failed starts in a row of one worker after which the server stops rather than start it again for ever."""


def _serve_workers(host: str, port: int, workers: int, common: dict[str, Any], target: Any = None) -> int:
    """``--workers N`` on Linux: N worker processes behind one listening socket that the parent holds. The parent
    accepts each connection and hands it to the workers in turn (the socket itself, over a Unix socket pair per
    worker); a worker serves it to its end. So N workers get the connections evenly: 16 and 16 of 32 keep-alive
    clients. With one socket shared by the workers (uvicorn's way) the worker that woke first took every connection
    waiting (measured: 20/12 to 32/0 of 32); with a socket each (SO_REUSEPORT) the kernel split them by a hash of
    their addresses (18/14 to 22/10), and the worker with more clients set the latency.

    The parent also supervises: it stops the workers on SIGINT or SIGTERM and starts a worker again if one dies,
    unless it failed to start QUICK_EXITS times in a row (then everything stops: exit 3). Workers die with it
    (PR_SET_PDEATHSIG). ``target`` replaces the worker's function (tests)."""
    import logging
    import multiprocessing as mp
    import os
    import selectors
    import signal
    import socket
    import time

    log = logging.getLogger("reirrad.service")
    try:  # a plain bind: refused while anything else holds the address, another reirrad included
        listener = _listening_socket(host, port)
    except OSError as exc:
        raise InputError.of(
            [
                Problem(
                    "reirrad serve",
                    ("--port",),
                    f"{host}:{port} cannot be bound: {exc.strerror}",
                    "a free port on that address",
                    code="serve.address",
                )
            ]
        ) from None
    listener.setblocking(False)
    context = mp.get_context("spawn")
    stopping: list[int] = []
    started: dict[int, float] = {}
    quick: dict[int, int] = {}
    channels: list[socket.socket] = []

    def start(index: int) -> Any:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)  # a worker that does not read (stuck, or dead) never blocks the parent
        if index < len(channels):  # before the start: what is handed over now waits for the new worker
            channels[index].close()
            channels[index] = ours
        else:
            channels.append(ours)
        started[index] = time.monotonic()
        process = context.Process(
            target=target or _worker_main,
            args=(os.getpid(), theirs, common),
            name=f"reirrad-serve-{index}",
        )
        process.start()
        theirs.close()
        return process

    turn = 0

    def hand_over(connection: socket.socket) -> None:
        """To the next worker in turn; past a worker that cannot take it (being started again, or not reading)."""
        nonlocal turn
        try:
            for _ in range(workers):
                channel = channels[turn % workers]
                turn += 1
                try:
                    socket.send_fds(channel, [b"c"], [connection.fileno()])
                    return
                except OSError:
                    continue
            log.error("no worker could take a connection; it is closed")
        finally:
            connection.close()  # the worker holds its own copy now

    def stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(i) for i in range(workers)]
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    code = Exit.OK
    try:
        while not stopping:
            for i, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                process.join()
                quick[i] = quick.get(i, 0) + 1 if time.monotonic() - started[i] < QUICK_EXIT_S else 0
                if quick[i] >= QUICK_EXITS:
                    log.error(
                        "worker %d failed to start %d times in a row (last exit code %s); stopping the server",
                        i,
                        quick[i],
                        process.exitcode,
                    )
                    stopping.append(0)
                    code = Exit.INTERNAL
                    break
                log.error(
                    "worker %d (process %s) ended with %s; starting it again",
                    i,
                    process.pid,
                    process.exitcode,
                )
                processes[i] = start(i)
            if stopping or not selector.select(timeout=0.2):
                continue
            while True:  # every connection waiting
                try:
                    connection, _ = listener.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    # out of file descriptors, or the client gave up: the next pass retries
                    log.error("accepting a connection failed: %s", exc.strerror)
                    time.sleep(0.05)
                    break
                hand_over(connection)
    finally:
        selector.close()
        listener.close()  # new connections are refused from here on
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
        for channel in channels:
            channel.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _worker_main(parent: int, channel: Any, common: dict[str, Any]) -> None:
    """One worker of ``_serve_workers``: a uvicorn server without a listening socket of its own, serving the
    connections the parent hands over on ``channel``."""
    import signal

    from reirrad.processes import die_with_parent

    if not die_with_parent(parent, signal.SIGTERM):  # SIGTERM: uvicorn shuts down gracefully
        return
    from reirrad.service.handover import HandedServer

    app = worker_app()
    HandedServer(channel, app, **common).run()


def _require_serve(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise InputError.of(
            [
                Problem(
                    "reirrad serve",
                    (),
                    f"needs the Python package '{module}', which is not installed",
                    accepted="pip install 'reirrad[serve]'",
                    code="dependency",
                )
            ]
        )


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to the ``reirrad`` parser; its func returns the exit code."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="the web page, JSON API and CDS Hooks service on a local address",
        description="Serve the case page, the JSON API (/api/v1, OpenAPI at /openapi.json) and the CDS Hooks "
        "service (/cds-services) from one process, with the rule pack loaded once. Binds 127.0.0.1 unless told "
        "otherwise; another address needs --token-file, or --cds-jwks and --cds-issuer for CDS Hooks alone. "
        "See docs/service.md.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=whole_number(1), default=8000, help="port (default 8000)")
    p.add_argument(
        "--data",
        type=Path,
        default=Path("reirrad-data"),
        help="folder of the feedback store (default ./reirrad-data)",
    )
    p.add_argument(
        "--rules", type=Path, default=None, help="a rule pack directory (default: the bundled pack)"
    )
    p.add_argument(
        "--token-file", type=Path, metavar="FILE", help="bearer token for the page, API and CDS Hooks"
    )
    p.add_argument(
        "--cds-jwks", type=Path, metavar="FILE", help="the EHR's JWK Set: CDS Hooks calls need its signed JWT"
    )
    p.add_argument("--cds-issuer", action="append", metavar="URL", help="an accepted JWT issuer (repeatable)")
    p.add_argument("--public-url", metavar="URL", help="the address clients use (JWT audience, card links)")
    p.add_argument(
        "--cors-origin", action="append", metavar="ORIGIN", help="allow this browser origin (CORS is closed)"
    )
    p.add_argument(
        "--max-json-kb", type=whole_number(1), default=2048, help="largest JSON body in KiB (default 2048)"
    )
    p.add_argument(
        "--max-upload-mb", type=whole_number(1), default=64, help="largest upload in MiB (default 64)"
    )
    p.add_argument(
        "--timeout", type=whole_number(1), default=30, help="seconds one request may take (default 30)"
    )
    p.add_argument(
        "--workers",
        type=whole_number(1),
        default=1,
        help="worker processes, each with the rule pack loaded once (default 1; 2 uses both cores of a 2-core machine)",
    )
    p.add_argument(
        "--max-connections",
        type=whole_number(1),
        default=256,
        help="concurrent connections before 503 (default 256)",
    )
    p.set_defaults(func=_serve)
    return p
