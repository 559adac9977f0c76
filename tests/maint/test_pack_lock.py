"""The release lock: a change under rules/ without a version bump, changelog entry and new lock fails CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from maint_helpers import RULES, VERSIONED, copy_pack, run
from reirrad.knowledge.rulepack import load_pack
from reirrad.maint.lock import LOCK_FILE, changelog_has, lock_problems, read_lock, write_lock


def test_the_rule_pack_matches_its_lock() -> None:
    pack = load_pack(RULES)
    lock = read_lock(RULES)
    assert (lock.get("content_sha256"), lock.get("version")) == (pack.content_sha256, pack.version), (
        f"the rule pack changed (version {pack.version}, sha256 {pack.content_sha256}) but rules/{LOCK_FILE} "
        f"records version {lock.get('version')}, sha256 {lock.get('content_sha256')}: bump the version in "
        "rules/pack.yaml, add a CHANGELOG entry, run `reirrad rules lock`"
    )


def test_the_changelog_has_the_pack_version() -> None:
    version = load_pack(RULES).version
    assert changelog_has(RULES, version), (
        f"rules/CHANGELOG.md has no '## {version}' entry: "
        "say which rules and limits changed, from when and why"
    )


@pytest.fixture
def released(tmp_path: Path) -> Path:
    root = copy_pack(VERSIONED, tmp_path)
    write_lock(root)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_fresh_lock_records_version_and_hash(released: Path) -> None:
    assert json.loads((released / LOCK_FILE).read_text(encoding="utf-8")) == {
        "version": "1.1.0",
        "content_sha256": load_pack(released).content_sha256,
    }
    assert lock_problems(released) == []


def test_a_rule_change_without_a_bump_is_caught_and_the_lock_refused(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 21}")
    problems = lock_problems(released)
    assert len(problems) == 1
    assert "differs from pack.lock.json" in problems[0]
    assert "bump the version in rules/pack.yaml, add a '## <version>' entry" in problems[0]
    assert run(["lock", str(released)]) == 1
    assert "pack.yaml has version 1.1.0, not greater than the locked 1.1.0" in capsys.readouterr().err


def test_a_bump_without_a_changelog_entry_is_refused(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 21}")
    _edit(released / "pack.yaml", "version: 1.1.0", "version: 1.2.0")
    assert run(["lock", str(released)]) == 1
    assert "rules/CHANGELOG.md has no '## 1.2.0' entry" in capsys.readouterr().err
    assert read_lock(released)["version"] == "1.1.0"


def test_a_bump_with_a_changelog_entry_is_locked(released: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 21}")
    _edit(released / "pack.yaml", "version: 1.1.0", "version: 1.2.0")
    _edit(released / "CHANGELOG.md", "## 1.1.0", "## 1.2.0 — 2026-11-23\n\n- `toy.limit`: 21 Gy.\n\n## 1.1.0")
    assert run(["lock", str(released)]) == 0
    assert "version 1.2.0" in capsys.readouterr().out
    assert read_lock(released) == {"version": "1.2.0", "content_sha256": load_pack(released).content_sha256}
    assert lock_problems(released) == []


def test_a_pack_with_lint_errors_is_not_locked(released: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(released / "policies/toy/limit.yaml", "unit: Gy EQD2", "unit: Gy")
    _edit(released / "pack.yaml", "version: 1.1.0", "version: 1.2.0")
    _edit(released / "CHANGELOG.md", "## 1.1.0", "## 1.2.0\n\n## 1.1.0")
    assert run(["lock", str(released)]) == 1
    assert "R305" in capsys.readouterr().err
