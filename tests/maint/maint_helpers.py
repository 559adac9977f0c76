"""Shared helpers of the rule pack maintenance tests."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from reirrad.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
GALLERY = ROOT / "tests" / "gallery" / "rules"
VERSIONED = Path(__file__).resolve().parent / "packs" / "versioned"
TODAY = date(2026, 11, 23)


def gallery_pack(code: str, tmp_path: Path) -> Path:
    """The shared gallery pack with the broken files of one lint code laid over it."""
    root = tmp_path / "rules"
    shutil.copytree(GALLERY / "_shared", root)
    shutil.copytree(GALLERY / code, root, dirs_exist_ok=True)
    return root


def copy_pack(source: Path, tmp_path: Path, name: str = "rules") -> Path:
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def run(argv: Sequence[str]) -> int:
    return main(["rules", *argv])
