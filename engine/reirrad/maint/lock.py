"""``reirrad rules lock``: the released pack's version and content hash, checked by CI without git history."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reirrad.errors import InputError, Problem
from reirrad.knowledge.rulepack import DATA_SECTIONS, RulePack, canonical_json, load_pack
from reirrad.load.yamlio import load_yaml_file
from reirrad.maint.versions import parse_version

__all__ = [
    "LOCK_FILE",
    "LockRefused",
    "ReleaseProblem",
    "changelog_has",
    "changelog_section",
    "lock_problems",
    "read_lock",
    "release_problems",
    "snapshot",
    "write_lock",
]

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


ADMIN_FIELDS = frozenset({"reviewed_on", "review_due", "valid_until", "status", "superseded_by"})
"""Fields a release may change without a new rule version: a review, or closing an old version's validity when a
new one takes over (writing-a-rule.md). Every other field is the rule's content."""

LOGIC_FIELDS = frozenset(
    {
        "kind",
        "valid_from",
        "policy",
        "criterion",
        "scope",
        "applies_when",
        "quantity",
        "limit",
        "assumption",
        "direction",
        "action",
    }
)
"""What a rule decides (a stricter or looser limit, a changed scope or condition, other options): a change to one
needs at least a minor version of the rule and of the pack. A change elsewhere (wording, evidence, citations,
decisions) needs at least a patch version."""

LOGIC_DATA = ("lists/", "tables/", "repair/")
"""Knowledge data that changes verdicts (histology lists, Table 3, repair schedules): at least a minor pack version."""


def _sha(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def snapshot(pack: RulePack) -> dict[str, Any]:
    """What the lock records of a release: the pack's version and hash, each rule version's content field by field
    (short hashes), and each other file of the pack (repair schedules, knowledge data, references)."""
    rules: dict[str, Any] = {}
    for rule in pack.rules:
        fields = {k: _sha(v)[:16] for k, v in sorted(rule.raw.items()) if k not in ADMIN_FIELDS}
        rules[f"{rule.id}@{rule.version}"] = {"file": _rel(pack.root, rule.source), "fields": fields}
    files = {"references.yaml": _sha(load_yaml_file(pack.root / "references.yaml")[0])}
    for path in sorted(pack.root.rglob("*.yaml")):
        rel = path.relative_to(pack.root).as_posix()
        if rel.split("/")[0] in (*DATA_SECTIONS, "repair"):
            files[rel] = _sha(load_yaml_file(path)[0])
    return {"version": pack.version, "content_sha256": pack.content_sha256, "rules": rules, "files": files}


def _rel(root: Path, source: str) -> str:
    try:
        return Path(source).relative_to(root).as_posix()
    except ValueError:
        return source


@dataclass(frozen=True)
class ReleaseProblem:
    """A change since the locked release that the release does not account for (a lint code, file, line)."""

    code: str
    file: str
    line: int | None
    message: str
    rule: str | None = None


def changelog_section(root: Path, version: str) -> tuple[int, str] | None:
    """(line of the heading, text up to the next '## ' heading) of the changelog entry for ``version``."""
    path = root / "CHANGELOG.md"
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    heading = re.compile(rf"^##\s+{re.escape(version)}(?:\s|$)")
    for i, line in enumerate(lines):
        if heading.match(line):
            body = []
            for later in lines[i + 1 :]:
                if later.startswith("## "):
                    break
                body.append(later)
            return i + 1, "\n".join(body)
    return None


def _bump(old: str, new: str) -> str:
    """'major', 'minor', 'patch' or 'none' (not greater)."""
    o, n = parse_version(old), parse_version(new)
    if n <= o:
        return "none"
    return "major" if n[0] > o[0] else "minor" if n[1] > o[1] else "patch"


def release_problems(root: Path, pack: RulePack | None = None) -> list[ReleaseProblem]:
    """Every change since the locked release that the new release does not account for.

    A rule version whose content differs from the same version in the lock (R503); a rule, or the pack, bumped by
    less than its change needs: a changed limit, scope, condition or option is at least minor (R504); a changelog
    entry for the new pack version that is empty (R505) or does not name a changed rule or file (R506). A lock
    written before rule-level records (no 'rules') is only compared as a whole (R501)."""
    pack = pack if pack is not None else load_pack(root)
    lock = read_lock(root)
    if "rules" not in lock or lock.get("content_sha256") == pack.content_sha256:
        return []
    now = snapshot(pack)
    out: list[ReleaseProblem] = []
    old_rules: dict[str, Any] = lock.get("rules", {})
    old_files: dict[str, str] = lock.get("files", {})
    locked_versions: dict[str, list[str]] = {}
    for key in old_rules:
        rule_id, version = key.rsplit("@", 1)
        locked_versions.setdefault(rule_id, []).append(version)
    changed: set[str] = set()
    needs = "patch"
    for key, entry in now["rules"].items():
        rule_id, version = key.rsplit("@", 1)
        fields: dict[str, str] = entry["fields"]
        rule_file = str(root / entry["file"])
        if key in old_rules:
            before: dict[str, str] = old_rules[key]["fields"]
            diff = sorted(k for k in set(fields) | set(before) if fields.get(k) != before.get(k))
            if diff:
                changed.add(rule_id)
                needs = "minor" if LOGIC_FIELDS & set(diff) else needs
                out.append(
                    ReleaseProblem(
                        "R503",
                        rule_file,
                        _version_line(rule_file),
                        f"{rule_id} {version} differs from the released {version} ({', '.join(diff)} changed) "
                        "but its version did not change: give the changed rule a new version (keep the released "
                        f"one as {Path(entry['file']).stem.split('@')[0]}@{version}.yaml if it stays in force)",
                        rule_id,
                    )
                )
            continue
        changed.add(rule_id)
        earlier = sorted(
            (v for v in locked_versions.get(rule_id, []) if parse_version(v) < parse_version(version)),
            key=parse_version,
        )
        if not earlier:
            needs = "minor"  # a new rule
            continue
        base = earlier[-1]
        before = old_rules[f"{rule_id}@{base}"]["fields"]
        logic = sorted(k for k in LOGIC_FIELDS if fields.get(k) != before.get(k))
        if logic:
            needs = "minor"
            if _bump(base, version) == "patch":
                out.append(
                    ReleaseProblem(
                        "R504",
                        rule_file,
                        _version_line(rule_file),
                        f"{rule_id} {base} → {version} is a patch, but {', '.join(logic)} changed: a changed "
                        "limit, scope, condition or option needs at least a minor version",
                        rule_id,
                    )
                )
    removed = {k.rsplit("@", 1)[0] for k in old_rules} - {k.rsplit("@", 1)[0] for k in now["rules"]}
    if removed:
        changed |= removed
        needs = "minor"
    files_changed = sorted(
        f for f in set(now["files"]) | set(old_files) if now["files"].get(f) != old_files.get(f)
    )
    if any(f.startswith(LOGIC_DATA) for f in files_changed):
        needs = "minor"
    old_version = str(lock.get("version"))
    step = _bump(old_version, pack.version)
    if needs == "minor" and step == "patch":
        out.append(
            ReleaseProblem(
                "R504",
                str(root / "pack.yaml"),
                _version_line(str(root / "pack.yaml")),
                f"the pack goes from {old_version} to {pack.version}, a patch, but rules or data that decide "
                f"verdicts changed ({', '.join(sorted(changed) + [f for f in files_changed if f.startswith(LOGIC_DATA)])}"
                "): at least a minor version",
            )
        )
    if step == "none":
        return out  # R501 and `rules lock` already say to bump the version
    section = changelog_section(root, pack.version)
    if section is None:
        return out  # R502
    line, body = section
    changelog = str(root / "CHANGELOG.md")
    if not body.strip():
        out.append(
            ReleaseProblem(
                "R505",
                changelog,
                line,
                f"the CHANGELOG.md entry for {pack.version} is empty: say which rules and limits changed, from "
                "when and why, with the citation",
            )
        )
        return out
    unnamed = sorted(r for r in changed if r not in body) + [f for f in files_changed if f not in body]
    if unnamed:
        out.append(
            ReleaseProblem(
                "R506",
                changelog,
                line,
                f"the CHANGELOG.md entry for {pack.version} does not name {', '.join(unnamed)}, which changed "
                "since the released version",
            )
        )
    return out


def _version_line(file: str) -> int | None:
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return next((i + 1 for i, line in enumerate(lines) if line.startswith("version:")), None)


def write_lock(root: Path) -> dict[str, Any]:
    """Write the lock for a new release; refuse unless the version was bumped, the changelog names every change and
    every changed rule has a version that fits its change."""
    pack = load_pack(root)
    lock = read_lock(root)
    new = snapshot(pack)
    if lock == new:
        return new
    if (lock.get("version"), lock.get("content_sha256")) == (pack.version, pack.content_sha256):
        # the same release in the lock's older form (no rule-level records): record it in full
        (root / LOCK_FILE).write_text(json.dumps(new, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
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
    problems = release_problems(root, pack)
    if problems:
        raise LockRefused(
            "the release does not account for every change:\n"
            + "\n".join(f"  {p.code} {p.file}{f':{p.line}' if p.line else ''}: {p.message}" for p in problems)
        )
    (root / LOCK_FILE).write_text(json.dumps(new, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return new
