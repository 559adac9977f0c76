"""Where the bundled rule pack and schemas live: inside the wheel, or beside the source tree."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_pack_dir", "schemas_dir"]

_HERE = Path(__file__).resolve().parent


def _data_root() -> Path:
    bundled = _HERE / "_bundled"
    return bundled if bundled.is_dir() else _HERE.parent


def default_pack_dir() -> Path:
    return _data_root() / "rules"


def schemas_dir() -> Path:
    return _data_root() / "schemas"
