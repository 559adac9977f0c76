"""``reirrad rules lock``: the released pack's version and content hash, checked by CI without git history."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from reirrad.errors import InputError, Problem
from reirrad.knowledge.rulepack import load_pack
from reirrad.maint.versions import parse_version

__all__ = ["LOCK_FILE", "LockRefused", "changelog_has", "lock_problems", "read_lock", "write_lock"]

LOCK_FILE = "pack.lock.json"
RELEASE_STEPS = (
    "bump the version in rules/pack.yaml, add a '## <version>' entry to rules/CHANGELOG.md, "
    "run `reirrad rules lock`"
)


class LockRefused(Exception):
    """The lock was not written; the message says why and what to do."""


def read_lock(root: Path) -> dict[str, Any]:
    path = root / LOCK_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    f"cannot be read as JSON: {exc}",
                    '{"version": "X.Y.Z", "content_sha256": "<64 hex digits>"}',
                    code="lock",
                )
            ]
        ) from None
    if not isinstance(data, dict):
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    "not a JSON object",
                    '{"version": "X.Y.Z", "content_sha256": "<64 hex digits>"}',
                    code="lock",
                )
            ]
        )
    return data


def changelog_has(root: Path, version: str) -> bool:
    path = root / "CHANGELOG.md"
    if not path.is_file():
        return False
    pattern = rf"^##\s+{re.escape(version)}(?:\s|$)"
    return re.search(pattern, path.read_text(encoding="utf-8"), re.MULTILINE) is not None


def lock_problems(root: Path) -> list[str]:
    """Why the pack at ``root`` does not match its lock and changelog (empty when it does)."""
    pack = load_pack(root)
    lock = read_lock(root)
    out = []
    if lock.get("content_sha256") != pack.content_sha256 or lock.get("version") != pack.version:
        out.append(
            f"the rule pack's content (version {pack.version}, sha256 {pack.content_sha256[:12]}…) differs "
            f"from {LOCK_FILE} (version {lock.get('version')}, "
            f"sha256 {str(lock.get('content_sha256'))[:12]}…): "
            f"{RELEASE_STEPS}"
        )
    if not changelog_has(root, pack.version):
        out.append(
            f"rules/CHANGELOG.md has no '## {pack.version}' entry for the pack's version: say which rules "
            "and "
            "limits changed, from when and why"
        )
    return out


def write_lock(root: Path) -> dict[str, str]:
    """Write the lock for a new release; refuse unless the version was bumped and the changelog names it."""
    pack = load_pack(root)
    lock = read_lock(root)
    new = {"version": pack.version, "content_sha256": pack.content_sha256}
    if lock == new:
        return new
    old_version = lock.get("version")
    if isinstance(old_version, str) and parse_version(pack.version) <= parse_version(old_version):
        raise LockRefused(
            f"pack.yaml has version {pack.version}, not greater than the locked {old_version}; the "
            f"content changed, so {RELEASE_STEPS}"
        )
    if not changelog_has(root, pack.version):
        raise LockRefused(
            f"rules/CHANGELOG.md has no '## {pack.version}' entry; add one saying which rules and "
            "limits changed, from when and why, then run `reirrad rules lock` again"
        )
    (root / LOCK_FILE).write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
    return new
