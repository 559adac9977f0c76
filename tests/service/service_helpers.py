"""Shared data for the service tests: the Lucido 2025 patient as JSON."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"
ECLIPSE = ROOT / "tests" / "importers" / "data" / "eclipse_cumulative_cgy.txt"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def example_case() -> dict[str, Any]:
    """The Lucido 2025 patient (docs/examples/t1-chondrosarcoma.yaml) as JSON data."""
    data: dict[str, Any] = _plain(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    return data


def exit_at_once(parent: int, channel: Any, common: dict[str, Any]) -> None:
    """A server worker that fails as it starts (the supervisor's tests)."""
    import os

    os._exit(7)
