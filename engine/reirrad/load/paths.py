"""The installation: the tool's version, and where the rule pack and schemas live (the checkout's own or the copy
bundled in the wheel)."""

from __future__ import annotations

import os
import re
import sys
from functools import cache
from pathlib import Path
from typing import Literal

__all__ = ["PackOrigin", "default_pack_dir", "dist_version", "pack_origin", "schemas_dir", "tool_version"]

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


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@cache
def dist_version(distribution: str) -> str | None:
    """An installed distribution's version, or None. Read from the name of its ``<name>-<version>.dist-info`` folder
    on ``sys.path`` (how wheels install), first match first as ``importlib.metadata`` reads them; otherwise from
    ``importlib.metadata``, whose imports (the email parser among them) cost about 35 ms of every command's start-up.
    A test checks both ways give the same versions."""
    wanted = _normal(distribution)
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                found, _, version = name[: -len(".dist-info")].partition("-")
                if version and _normal(found) == wanted:
                    return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as metadata_version

    try:
        return metadata_version(distribution)
    except PackageNotFoundError:
        return None


@cache
def tool_version() -> str:
    """The installed distribution's version; ``0+source`` when the package runs from a tree it was not installed from."""
    return dist_version("reirrad") or "0+source"
