"""``reirrad rules diff``: what changed between two rule packs, by rule id, and which cases change verdict."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.case import Case, case_problems
from reirrad.errors import InputError, Problem
from reirrad.evaluate import Evaluator
from reirrad.knowledge.rulepack import DATA_SECTIONS, Rule, RulePack, load_pack
from reirrad.load.yamlio import load_yaml_file
from reirrad.maint.versions import latest, parse_version

__all__ = [
    "Change",
    "PackDiff",
    "RuleDiff",
    "diff_packs",
    "impact",
    "load_cohort",
    "open_pack",
    "render_json",
    "render_text",
]

WORDING = ("title", "statement", "rationale", "decisions")
LOGIC = (
    "applies_when",
    "scope",
    "quantity",
    "assumption",
    "action",
    "direction",
    "strength",
    "multidisciplinary",
    "guideline",
    "policy",
    "criterion",
    "kind",
)
VALIDITY = ("status", "valid_from", "valid_until", "superseded_by")
REVIEW = ("reviewed_on", "review_due")
NOT_COMPARED = frozenset({"id", "version"})


@dataclass(frozen=True)
class Change:
    """One difference and its category: threshold, logic, evidence, validity, citation, wording, review."""

    category: str
    field: str
    old: Any
    new: Any

    def render(self) -> str:
        return f"{self.category}: {self.field}: {_show(self.old)} → {_show(self.new)}"


@dataclass
class RuleDiff:
    rule: str
    status: str
    """added, removed, retired, changed or unchanged."""
    old_version: str | None = None
    new_version: str | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return sorted({c.category for c in self.changes})

    @property
    def version_bumped(self) -> bool | None:
        if self.old_version is None or self.new_version is None:
            return None
        return parse_version(self.new_version) > parse_version(self.old_version)

    @property
    def wording_only(self) -> bool:
        return bool(self.changes) and set(self.categories) <= {"citation", "wording", "review"}

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "status": self.status,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "version_bumped": self.version_bumped,
            "categories": self.categories,
            "citation_or_wording_only": self.wording_only,
            "changes": [
                {"category": c.category, "field": c.field, "old": c.old, "new": c.new} for c in self.changes
            ],
        }


@dataclass
class PackDiff:
    old: dict[str, str]
    new: dict[str, str]
    rules: list[RuleDiff]
    repairs: list[RuleDiff]
    references: list[Change]
    data: list[Change] = field(default_factory=list)
    """Changes to the knowledge data beside the rules (tables, evidence, assessment, lists), leaf by leaf."""
    impact: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "rules": [r.as_dict() for r in self.rules if r.status != "unchanged"],
            "repairs": [r.as_dict() for r in self.repairs if r.status != "unchanged"],
            "references": [{"field": c.field, "old": c.old, "new": c.new} for c in self.references],
            "data": [{"field": c.field, "old": c.old, "new": c.new} for c in self.data],
            "impact": self.impact,
        }


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value if len(value) <= 100 else value[:97] + "..."
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)


_GIT_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/~^@{}:+-]{0,199}")
"""What ``rules diff`` accepts as a git ref: a branch, a tag, a commit id, ``HEAD~1``, ``main^``, ``HEAD@{1}``.
Never an option: a ref is checked against this, resolved with ``--end-of-options``, and reaches ``git archive``
only as the commit id it names."""


def _ref_problem(spec: str, message: str) -> InputError:
    return InputError.of(
        [
            Problem(
                spec,
                (),
                message,
                "a directory with pack.yaml, or a git ref such as HEAD~1",
                code="diff.source",
            )
        ]
    )


def _source_problem(spec: str, pack_path: str, result: subprocess.CompletedProcess[bytes]) -> InputError:
    reason = result.stderr.decode(errors="replace").strip().splitlines()
    return _ref_problem(
        spec,
        f"not a pack directory, and git cannot read '{pack_path}' at this ref"
        f" ({reason[-1] if reason else 'unknown revision'})",
    )


@contextmanager
def open_pack(spec: str, pack_path: str = "rules", repo: Path | None = None) -> Iterator[RulePack]:
    """A pack directory, a directory holding ``rules/``, or a git ref (``HEAD~1``, a tag) here."""
    path = Path(spec)
    for candidate in (path, path / pack_path):
        if (candidate / "pack.yaml").is_file():
            yield load_pack(candidate)
            return
    if not _GIT_REF.fullmatch(spec) or ".." in spec:
        raise _ref_problem(
            spec,
            "neither a rule pack directory nor a git ref (a ref is a branch, tag or commit: letters, digits and "
            "._/~^@{}:+-, not starting with '-', no '..')",
        )
    repo = repo or Path.cwd()
    top = _git(["rev-parse", "--show-toplevel"], repo)
    if top.returncode != 0:
        raise _ref_problem(spec, "neither a rule pack directory nor a git ref (not in a git repository)")
    root = Path(top.stdout.decode().strip())
    commit = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{spec}^{{commit}}"], root)
    sha = commit.stdout.decode().strip()
    if commit.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        raise _source_problem(spec, pack_path, commit)
    archive = _git(["archive", "--format=tar", sha, "--", pack_path], root)
    if archive.returncode != 0:
        raise _source_problem(spec, pack_path, archive)
    with tempfile.TemporaryDirectory(prefix="reirrad-diff-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        yield load_pack(Path(tmp) / pack_path)


def _limit_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[Change]:
    old, new = old or {}, new or {}
    out = []
    for key in ("operator", "value", "by"):
        if old.get(key) != new.get(key):
            out.append(Change("threshold", f"limit.{key}", old.get(key), new.get(key)))
    old_rows = {row["key"]: row for row in old.get("table", [])}
    new_rows = {row["key"]: row for row in new.get("table", [])}
    for key in list(dict.fromkeys([*old_rows, *new_rows])):
        a, b = old_rows.get(key), new_rows.get(key)
        if a is None or b is None or a.get("value") != b.get("value"):
            out.append(Change("threshold", f"limit.table[{key}]", a and a.get("value"), b and b.get("value")))
        elif a.get("note") != b.get("note"):
            out.append(Change("wording", f"limit.table[{key}].note", a.get("note"), b.get("note")))
    return out


def _category(name: str) -> str:
    groups = {
        "wording": WORDING,
        "logic": LOGIC,
        "validity": VALIDITY,
        "review": REVIEW,
        "citation": ("citations",),
        "evidence": ("evidence", "supported_by"),
    }
    return next((category for category, names in groups.items() if name in names), "other")


def _raw_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out = []
    for name in list(dict.fromkeys([*old, *new])):
        if name in NOT_COMPARED or old.get(name) == new.get(name):
            continue
        if name == "limit":
            out += _limit_changes(old.get(name), new.get(name))
        elif name == "evidence":
            a, b = old.get(name) or {}, new.get(name) or {}
            out += [
                Change("evidence", f"evidence.{k}", a.get(k), b.get(k))
                for k in dict.fromkeys([*a, *b])
                if a.get(k) != b.get(k)
            ]
        elif name == "quantity":
            a, b = old.get(name) or {}, new.get(name) or {}
            for k in dict.fromkeys([*a, *b]):
                if k == "parameters":
                    pa, pb = a.get(k) or {}, b.get(k) or {}
                    out += [
                        Change("logic", f"quantity.parameters.{p}", pa.get(p), pb.get(p))
                        for p in dict.fromkeys([*pa, *pb])
                        if pa.get(p) != pb.get(p)
                    ]
                elif a.get(k) != b.get(k):
                    out.append(Change("logic", f"quantity.{k}", a.get(k), b.get(k)))
        else:
            out.append(Change(_category(name), name, old.get(name), new.get(name)))
    return out


def _rule_diff(rule_id: str, old: Rule | None, new: Rule | None) -> RuleDiff:
    if old is None:
        assert new is not None
        return RuleDiff(rule_id, "added", None, new.version, _raw_changes({}, new.raw))
    if new is None:
        return RuleDiff(rule_id, "removed", old.version, None)
    changes = _raw_changes(old.raw, new.raw)
    if new.status == "retired" and old.status != "retired":
        status = "retired"
    else:
        status = "changed" if changes or old.version != new.version else "unchanged"
    return RuleDiff(rule_id, status, old.version, new.version, changes)


def _repair_diffs(old: RulePack, new: RulePack) -> list[RuleDiff]:
    out = []
    for key in sorted(set(old.repairs) | set(new.repairs)):
        a, b = old.repairs.get(key), new.repairs.get(key)
        if a is None or b is None:
            out.append(RuleDiff(f"repair.{key}", "added" if a is None else "removed"))
            continue
        changes = []
        if a.steps != b.steps:
            changes.append(
                Change("threshold", "steps", [s.__dict__ for s in a.steps], [s.__dict__ for s in b.steps])
            )
        for name in ("title", "statement", "decisions"):
            if getattr(a, name) != getattr(b, name):
                changes.append(Change("wording", name, getattr(a, name), getattr(b, name)))
        if a.citations != b.citations:
            changes.append(
                Change(
                    "citation",
                    "citations",
                    [c.model_dump() for c in a.citations],
                    [c.model_dump() for c in b.citations],
                )
            )
        out.append(RuleDiff(f"repair.{key}", "changed" if changes else "unchanged", changes=changes))
    return out


def _leaf_changes(where: str, old: Any, new: Any) -> list[Change]:
    """Leaf-level differences of two parsed YAML documents; list items are compared by position, or by their
    ``id`` when every item of both lists has one."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in dict.fromkeys([*old, *new]):
            out += _leaf_changes(f"{where}.{key}", old.get(key), new.get(key))
        return out
    if isinstance(old, list) and isinstance(new, list):
        if all(isinstance(x, dict) and "id" in x for x in [*old, *new]):
            a, b = {x["id"]: x for x in old}, {x["id"]: x for x in new}
            out = []
            for key in dict.fromkeys([*a, *b]):
                out += _leaf_changes(f"{where}[{key}]", a.get(key), b.get(key))
            return out
        if len(old) == len(new):
            return [
                c
                for i, (x, y) in enumerate(zip(old, new, strict=True))
                for c in _leaf_changes(f"{where}[{i}]", x, y)
            ]
    return [] if old == new else [Change("data", where, old, new)]


def _data_changes(old_root: Path, new_root: Path) -> list[Change]:
    """Every knowledge data file added, removed or changed, with the changed leaves (a table cell, a study field)."""

    def files(root: Path) -> dict[str, Path]:
        return {
            p.relative_to(root).as_posix(): p
            for p in sorted(root.rglob("*.yaml"))
            if p.relative_to(root).parts[0] in DATA_SECTIONS
        }

    a, b = files(old_root), files(new_root)
    out: list[Change] = []
    for rel in sorted(set(a) | set(b)):
        before = load_yaml_file(a[rel])[0] if rel in a else None
        after = load_yaml_file(b[rel])[0] if rel in b else None
        if before is None or after is None:
            out.append(
                Change(
                    "data",
                    rel,
                    "present" if before is not None else None,
                    "present" if after is not None else None,
                )
            )
        else:
            out += _leaf_changes(rel, before, after)
    return out


def diff_packs(old: RulePack, new: RulePack) -> PackDiff:
    """Compare the newest version of each rule id in OLD with the newest in NEW."""
    a, b = latest(old.rules), latest(new.rules)
    rules = [_rule_diff(rule_id, a.get(rule_id), b.get(rule_id)) for rule_id in sorted(set(a) | set(b))]
    refs = [
        Change(
            "citation",
            f"references.{k}",
            old.references[k].model_dump() if k in old.references else None,
            new.references[k].model_dump() if k in new.references else None,
        )
        for k in sorted(set(old.references) | set(new.references))
        if old.references.get(k) != new.references.get(k)
    ]
    return PackDiff(
        {"name": old.name, "version": old.version, "content_sha256": old.content_sha256},
        {"name": new.name, "version": new.version, "content_sha256": new.content_sha256},
        rules,
        _repair_diffs(old, new),
        refs,
        _data_changes(old.root, new.root),
    )


def load_cohort(path: Path, map_path: Path | None = None, key: bytes | None = None) -> list[tuple[str, Case]]:
    """Cases of a cohort in any format ``reirrad audit`` reads (reirrad.audit.readers: a directory of case YAML
    files, JSON Lines, an audit-layout CSV, a department's CSV/XLSX through a mapping); every problem at once, in
    input order."""
    from reirrad.audit.readers import open_source

    source = open_source(path, map_path, key)
    problems: list[Problem] = []
    out: list[tuple[str, Case]] = []
    for rec in source.records():
        if rec.blank:
            continue
        label = rec.file if rec.line is None else f"{rec.file}:{rec.line}"
        found = rec.problems or []
        case = None
        if not found:
            case, found = case_problems(rec.data, rec.lines, rec.file)
        problems += found
        if case is not None:
            out.append((label, case))
    if problems:
        raise InputError(problems)
    if not out:
        raise InputError.of(
            [
                Problem(
                    str(path),
                    (),
                    "the cohort holds no case",
                    "a cohort as reirrad audit reads it (docs/audit.md, Inputs)",
                    code="cohort",
                )
            ]
        )
    return out


def _verdicts(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each constraint line's status, value and limit, and each recommendation's status, by a stable key."""
    out = {}
    for rec in result.get("recommendations", []):
        out[f"recommendation {rec['rule_id']}"] = {
            "status": rec["status"],
            "value": None,
            "limit": None,
            "version": rec["rule_version"],
        }
    for line in result["constraints"]:
        key = " ".join(
            p for p in (line["rule_id"], line.get("structure") or "", line.get("metric") or "") if p
        )
        out[key] = {
            "status": line["status"],
            "value": line.get("value"),
            "limit": line.get("limit"),
            "version": line.get("rule_version"),
        }
    return out


def impact(
    old: RulePack, new: RulePack, cohort: list[tuple[str, Case]], as_of: date, engine: str = "durable"
) -> dict[str, Any]:
    """Every case whose status on any constraint line or recommendation differs between the packs, with before and
    after."""
    before_eval = Evaluator(old, as_of=as_of, engine=engine)
    after_eval = Evaluator(new, as_of=as_of, engine=engine)
    changed = []
    for label, case in cohort:
        before, after = _verdicts(before_eval.evaluate(case)), _verdicts(after_eval.evaluate(case))
        lines = []
        for key in sorted(set(before) | set(after)):
            a, b = before.get(key), after.get(key)
            if (a or {}).get("status") != (b or {}).get("status"):
                lines.append({"line": key, "before": a, "after": b})
        if lines:
            changed.append({"case": label, "case_id": case.case_id, "lines": lines})
    return {"as_of": as_of.isoformat(), "engine": engine, "cases": len(cohort), "changed": changed}


def _status_text(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "(no line)"
    value = "" if entry["value"] is None else f" ({entry['value']:.4g}"
    limit = "" if entry["limit"] is None else f" vs {entry['limit']:g}"
    return f"{entry['status']}{value}{limit}{')' if value else ''}"


def render_text(diff: PackDiff) -> str:
    out = [f"{diff.old['name']} {diff.old['version']} → {diff.new['name']} {diff.new['version']}"]
    if diff.old["content_sha256"] == diff.new["content_sha256"]:
        out.append("the two packs have the same content")
    for r in [*diff.rules, *diff.repairs]:
        if r.status == "unchanged":
            continue
        versions = f"{r.old_version or '-'} → {r.new_version or '-'}"
        note = ""
        if r.status == "changed":
            note = " (citation or wording only)" if r.wording_only else ""
            if r.version_bumped is False:
                note += " — VERSION NOT BUMPED"
        out.append(
            f"{r.status.upper():<9} {r.rule}  {versions if r.old_version or r.new_version else ''}{note}"
        )
        out += [f"    {c.render()}" for c in r.changes if r.status != "added"]
    out += [f"REFERENCE {c.field}: {_show(c.old)} → {_show(c.new)}" for c in diff.references]
    out += [f"DATA      {c.field}: {_show(c.old)} → {_show(c.new)}" for c in diff.data]
    if diff.impact is not None:
        imp = diff.impact
        out.append(
            f"impact on {imp['cases']} case(s) as of {imp['as_of']} ({imp['engine']}): "
            f"{len(imp['changed'])} change verdict"
        )
        for case in imp["changed"]:
            out.append(f"  {case['case']} ({case['case_id']})")
            out += [
                f"    {line['line']}: {_status_text(line['before'])} → {_status_text(line['after'])}"
                for line in case["lines"]
            ]
    return "\n".join(out) + "\n"


def render_json(diff: PackDiff) -> str:
    return json.dumps(diff.as_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
