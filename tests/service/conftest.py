"""Fixtures for the service: an app on a fresh feedback store, a live server on loopback, Chromium via Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reirrad.service.app import create_app
from reirrad.service.engine import ServiceEngine
from reirrad.service.security import ServiceConfig

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def engine() -> ServiceEngine:
    return ServiceEngine()


@pytest.fixture
def config(tmp_path: Path) -> ServiceConfig:
    return ServiceConfig(data_dir=tmp_path / "data")


@pytest.fixture
def client(config: ServiceConfig, engine: ServiceEngine) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(create_app(config, engine), raise_server_exceptions=False) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, engine: ServiceEngine) -> Iterator[str]:
    """The service under uvicorn on a loopback port, in a thread, for the browser tests."""
    import uvicorn

    port = _free_port()
    config = ServiceConfig(port=port, data_dir=tmp_path_factory.mktemp("live-data"))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, engine), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does: apt-get install -y chromium)"
        )
    if shutil.which("chromium") is None and not Path(CHROMIUM).is_file():
        pytest.fail("chromium is not runnable")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()
