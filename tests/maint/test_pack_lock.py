"""The release lock: a change under rules/ without a version bump, changelog entry and new lock fails CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from maint_helpers import RULES, TODAY, VERSIONED, copy_pack, run
from reirrad.knowledge.rulepack import load_pack
from reirrad.maint.lint import check_pack
from reirrad.maint.lock import LOCK_FILE, changelog_has, lock_problems, read_lock, snapshot, write_lock


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
    lock = json.loads((released / LOCK_FILE).read_text(encoding="utf-8"))
    assert (lock["version"], lock["content_sha256"]) == ("1.1.0", load_pack(released).content_sha256)
    assert lock == snapshot(load_pack(released))
    assert sorted(lock["rules"]) == ["toy.limit@1.0.0", "toy.limit@2.0.0"]
    assert lock["rules"]["toy.limit@2.0.0"]["file"] == "policies/toy/limit.yaml"
    assert "reviewed_on" not in lock["rules"]["toy.limit@2.0.0"]["fields"]  # a review is not a content change
    assert lock_problems(released) == []


def test_a_rule_change_without_a_bump_is_caught_and_the_lock_refused(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 21}")
    _edit(released / "policies/toy/limit.yaml", "version: 2.0.0", "version: 2.1.0")
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
    _edit(released / "policies/toy/limit.yaml", "version: 2.0.0", "version: 2.1.0")
    _edit(released / "pack.yaml", "version: 1.1.0", "version: 1.2.0")
    assert run(["lock", str(released)]) == 1
    assert "rules/CHANGELOG.md has no '## 1.2.0' entry" in capsys.readouterr().err
    assert read_lock(released)["version"] == "1.1.0"


def test_a_bump_with_a_changelog_entry_is_locked(released: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 21}")
    _edit(released / "policies/toy/limit.yaml", "version: 2.0.0", "version: 2.1.0")
    _edit(released / "pack.yaml", "version: 1.1.0", "version: 1.2.0")
    _edit(released / "CHANGELOG.md", "## 1.1.0", "## 1.2.0 — 2026-11-23\n\n- `toy.limit`: 21 Gy.\n\n## 1.1.0")
    assert run(["lock", str(released)]) == 0
    assert "version 1.2.0" in capsys.readouterr().out
    assert read_lock(released) == snapshot(load_pack(released))
    assert read_lock(released)["version"] == "1.2.0"
    assert lock_problems(released) == []


def test_a_pack_with_lint_errors_is_not_locked(released: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(released / "policies/toy/limit.yaml", "unit: Gy EQD2", "unit: Gy")
    _edit(released / "pack.yaml", "version: 1.1.0", "version: 1.2.0")
    _edit(released / "CHANGELOG.md", "## 1.1.0", "## 1.2.0\n\n## 1.1.0")
    assert run(["lock", str(released)]) == 1
    assert "R305" in capsys.readouterr().err


# --- the gate leaks of issue 11: each passed `rules check` and `rules lock` before -------------------------------


def _codes(root: Path) -> set[str]:
    return {d.code for d in check_pack(root, today=TODAY)} - {"R501"}


def _release(root: Path, version: str, entry: str) -> None:
    _edit(root / "pack.yaml", "version: 1.1.0", f"version: {version}")
    _edit(root / "CHANGELOG.md", "## 1.1.0", f"## {version} — 2026-11-23\n{entry}\n## 1.1.0")


def test_a_limit_changed_without_a_rule_version_fails_check_and_lock(
    released: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """25 → 20 style: the limit changes, the pack is bumped and the changelog names the rule, the rule is not."""
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 18}")
    _release(released, "1.2.0", "\n- `toy.limit`: 18 Gy EQD2.\n")
    found = [d for d in check_pack(released, today=TODAY) if d.code == "R503"]
    assert [(d.file, d.line, d.severity) for d in found] == [
        (str(released / "policies/toy/limit.yaml"), 3, "error")
    ]
    assert "toy.limit 2.0.0 differs from the released 2.0.0 (limit changed)" in found[0].message
    assert run(["lock", str(released)]) == 1
    assert "R503" in capsys.readouterr().err
    assert read_lock(released)["version"] == "1.1.0"


def test_a_patch_bump_for_a_stricter_limit_fails(released: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 18}")
    _edit(released / "policies/toy/limit.yaml", "version: 2.0.0", "version: 2.0.1")
    _release(released, "1.1.1", "\n- `toy.limit` 2.0.1: 18 Gy EQD2.\n")
    found = {d.file: d.message for d in check_pack(released, today=TODAY) if d.code == "R504"}
    assert (
        "toy.limit 2.0.0 → 2.0.1 is a patch, but limit changed"
        in found[str(released / "policies/toy/limit.yaml")]
    )
    assert "the pack goes from 1.1.0 to 1.1.1, a patch" in found[str(released / "pack.yaml")]
    assert run(["lock", str(released)]) == 1
    assert "R504" in capsys.readouterr().err


def test_a_wording_change_needs_only_a_patch(released: Path) -> None:
    _edit(released / "policies/toy/limit.yaml", "A toy constraint", "A toy constraint (reworded)")
    _edit(released / "policies/toy/limit.yaml", "version: 2.0.0", "version: 2.0.1")
    _release(released, "1.1.1", "\n- `toy.limit` 2.0.1: wording.\n")
    assert _codes(released) == set()
    assert write_lock(released)["version"] == "1.1.1"


def test_an_empty_changelog_entry_fails(released: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 18}")
    _edit(released / "policies/toy/limit.yaml", "version: 2.0.0", "version: 2.1.0")
    _release(released, "1.2.0", "\n")
    assert _codes(released) == {"R505"}
    assert run(["lock", str(released)]) == 1
    assert "the CHANGELOG.md entry for 1.2.0 is empty" in capsys.readouterr().err


def test_a_changelog_entry_that_does_not_name_the_changed_rule_fails(released: Path) -> None:
    _edit(released / "policies/toy/limit.yaml", "value: 20}", "value: 18}")
    _edit(released / "policies/toy/limit.yaml", "version: 2.0.0", "version: 2.1.0")
    _release(released, "1.2.0", "\n- A stricter limit.\n")
    found = [d for d in check_pack(released, today=TODAY) if d.code == "R506"]
    assert len(found) == 1
    assert "does not name toy.limit" in found[0].message


def test_a_review_alone_needs_no_new_rule_version(released: Path) -> None:
    _edit(released / "policies/toy/limit.yaml", 'reviewed_on: "2026-01-01"', 'reviewed_on: "2026-06-01"')
    _release(released, "1.1.1", "\n- `toy.limit` reviewed, unchanged.\n")
    assert _codes(released) == set()
