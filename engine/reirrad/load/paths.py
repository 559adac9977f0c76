"""The installation: the tool's version, and where the rule pack and schemas live (the checkout's own or the copy
bundled in the wheel)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Literal

__all__ = ["PackOrigin", "default_pack_dir", "pack_origin", "schemas_dir", "tool_version"]

PackOrigin = Literal["source", "bundled"]

_PACKAGE = Path(__file__).resolve().parents[1]
_CHECKOUT = _PACKAGE.parents[1]
"""engine/reirrad/ sits two folders below the project root in a checkout."""


@cache
def pack_origin() -> PackOrigin:
    """'source' when running from a checkout (its rules/ and schemas/ are used as they are edited), else 'bundled'."""
    in_checkout = (
        (_CHECKOUT / "pyproject.toml").is_file()
        and (_CHECKOUT / "rules" / "pack.yaml").is_file()
        and (_CHECKOUT / "schemas").is_dir()
    )
    return "source" if in_checkout or not (_PACKAGE / "_bundled").is_dir() else "bundled"


def _data_root() -> Path:
    return _CHECKOUT if pack_origin() == "source" else _PACKAGE / "_bundled"


def default_pack_dir() -> Path:
    return _data_root() / "rules"


def schemas_dir() -> Path:
    return _data_root() / "schemas"


@cache
def tool_version() -> str:
    """The installed distribution's version; ``0+source`` when the package runs from a tree it was not installed from."""
    try:
        return dist_version("reirrad")
    except PackageNotFoundError:
        return "0+source"
