"""mkdocs hook: the rule pack's pages (rules, policies, repair schedules, index), generated at build time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files
from reirrad.maint.docsgen import generate_pages, nav_entries

RULE_PACK_PAGE = "rules/index.md"
_pages: dict[str, str] = {}


def _pack_dir(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent / "rules"


def on_config(config: Any) -> Any:
    """Generate once per build and replace the nav entry that points at the index with the whole section."""
    _pages.clear()
    _pages.update(generate_pages(_pack_dir(config)))
    nav = config.get("nav") or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and list(entry.values()) == [RULE_PACK_PAGE]:
            nav[i] = {next(iter(entry)): nav_entries(_pages)}
    return config


def on_files(files: Files, config: Any) -> Files:
    for path, content in _pages.items():
        files.append(File.generated(config, path, content=content))
    return files
