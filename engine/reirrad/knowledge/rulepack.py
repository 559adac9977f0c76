"""Loading a rule pack: every file validated, ids checked against paths, references resolved, versions dated."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from reirrad.errors import InputError, Problem
from reirrad.knowledge.conditions import Condition, parse_condition
from reirrad.load.cache import cached
from reirrad.load.paths import default_pack_dir, pack_origin
from reirrad.load.validation import schema_problems
from reirrad.load.yamlio import LineMap, load_yaml_file
from reirrad.vocabulary import Kind

__all__ = [
    "Citation",
    "Evidence",
    "Limit",
    "Reference",
    "RepairDef",
    "RepairSchedule",
    "RepairStep",
    "Rule",
    "RulePack",
    "canonical_json",
    "describe_default_pack",
    "load_pack",
    "rule_id_for_path",
]

SPECIAL_FILES = {"pack.yaml", "references.yaml"}
RULE_SECTIONS = ("policies", "recommendations", "assumptions", "advisories")
"""Top-level folders of rules/ whose files are rules; 'repair' holds repair schedules. Other folders (tables,
evidence, assessment, lists) hold knowledge data with schemas of their own, loaded by reirrad.knowledge."""
DATA_SECTIONS = ("tables", "evidence", "assessment", "lists", "readings")
EVIDENCE_FILE = "evidence/studies.yaml"
"""The evidence registry, under rules/; recommendations' ``supported_by`` ids are its studies."""
ID_NAMESPACE_SECTIONS = ("policies", "recommendations")
"""Folders whose name is not part of the rule id: rules/policies/hytec/resbrt.yaml is hytec.resbrt."""
CASES_SUFFIX = ".cases.yaml"
"""Test cases live beside the rule they exercise (resbrt.cases.yaml beside resbrt.yaml); they are not rules."""


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


class _Frozen(BaseModel):
    # validators are built when a pack is first validated: a pack from the load cache is unpickled, not validated,
    # so a run that finds it there never builds them (about 10 ms of start-up)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Reference(_Frozen):
    id: str
    kind: str
    title: str
    source_file: str | None = None
    """The stored copy the pack was encoded from; None for a source encoded from its published abstract."""
    authors: str | None = None
    journal: str | None = None
    year: int | None = None
    volume: str | None = None
    doi: str | None = None
    pmid: str | None = None
    note: str | None = None

    def short(self) -> str:
        who = (self.authors or "").split(",")[0].strip() or self.title
        year = f" {self.year}" if self.year else ""
        doi = f", doi:{self.doi}" if self.doi else (f", PMID {self.pmid}" if self.pmid else "")
        return f"{who}{year}{doi}"


class Citation(_Frozen):
    ref: str
    locator: str


class Evidence(_Frozen):
    quality_of_evidence: str
    source_kind: str
    scale: str | None = None

    def label(self) -> str:
        if self.quality_of_evidence == "not graded":
            return f"not graded ({self.source_kind})"
        return f"level {self.quality_of_evidence} ({self.scale})"


class Scope(_Frozen):
    per: Literal["case", "near_max_dose"]
    structures: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()


class Quantity(_Frozen):
    calculation: str
    unit: str
    parameters: dict[str, Any] = Field(default_factory=dict)

    @property
    def alpha_beta(self) -> float | None:
        value = self.parameters.get("alpha_beta")
        return None if value is None else float(value)

    @property
    def repair(self) -> str | None:
        return self.parameters.get("repair")

    @property
    def months(self) -> str | None:
        """How intervals are counted (``days/30.4375``, the default, or ``calendar``)."""
        return self.parameters.get("months")

    @property
    def repair_courses(self) -> str | None:
        """Which earlier courses a repair schedule credits (``every``, the default, or ``first``)."""
        return self.parameters.get("repair_courses")


class LimitEntry(_Frozen):
    key: str | int
    value: float
    note: str | None = None


class Limit(_Frozen):
    operator: Literal["<", "<=", ">", ">="]
    value: float | None = None
    by: str | None = None
    table: tuple[LimitEntry, ...] = ()

    def resolve(self, context: Mapping[str, Any]) -> LimitEntry | None:
        """The limit that applies to this case, or None where the source gives none."""
        if self.value is not None:
            return LimitEntry(key="", value=self.value)
        key = context.get(self.by or "")
        return next((e for e in self.table if e.key == key), None)

    def holds(self, value: float, limit: float) -> bool:
        return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[
            self.operator
        ]


class AssumptionSpec(_Frozen):
    course_techniques: tuple[str, ...]
    structures: tuple[str, ...]
    assumed_dose: Literal["prescription"]


class ActionOption(_Frozen):
    label: str
    dose: float | None = None
    fractions: int | None = None
    note: str | None = None


class Action(_Frozen):
    kind: Literal["consult", "treatment-option", "consider", "refer", "defer"]
    what: str
    options: tuple[ActionOption, ...] = ()


class Rule(_Frozen):
    id: str
    kind: Kind
    version: str
    status: Literal["draft", "active", "retired"]
    valid_from: date
    valid_until: date | None = None
    superseded_by: str | None = None
    reviewed_on: date
    review_due: date
    title: str
    statement: str
    rationale: str | None = None
    policy: str | None = None
    criterion: str | None = None
    scope: Scope = Scope(per="case")
    applies_when: Any
    quantity: Quantity | None = None
    limit: Limit | None = None
    assumption: AssumptionSpec | None = None
    guideline: str | None = None
    direction: Literal["for", "against"] | None = None
    strength: str | None = None
    action: Action | None = None
    multidisciplinary: bool | None = None
    supported_by: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    evidence: Evidence
    citations: tuple[Citation, ...]
    source: str = ""
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
    _condition: Condition = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._condition = parse_condition(self.applies_when)

    @property
    def condition(self) -> Condition:
        """``applies_when`` as a typed tree, parsed once when the rule is loaded."""
        # read from pydantic's private store directly: ``self._condition`` goes through BaseModel.__getattr__, and
        # this is read for every item of every case
        private = self.__pydantic_private__
        assert private is not None
        condition: Condition = private["_condition"]
        return condition

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_until is None or on < self.valid_until)

    def review_overdue(self, on: date) -> bool:
        """The rule's ``review_due`` date has passed on ``on``: a report that uses it must say so (lint R206)."""
        return self.review_due < on

    def items(self) -> list[tuple[str, str]]:
        """(structure, metric) pairs this rule can evaluate; one empty pair for a case-level rule."""
        if self.scope.per == "case":
            return [("", "")]
        return [(s, m) for s in self.scope.structures for m in self.scope.metrics]


@dataclass(frozen=True)
class RepairStep:
    """From ``after_months`` on (inclusive), ``fraction`` of the earlier course's dose is taken as repaired."""

    after_months: float
    fraction: float


@dataclass(frozen=True)
class RepairSchedule:
    """A step function of the interval: the largest step whose ``after_months`` is ≤ the interval applies.

    Steps are not interpolated. Below the first step nothing is repaired.
    """

    name: str
    steps: Sequence[RepairStep]

    def fraction_at(self, months: float) -> float:
        repaired = 0.0
        for step in sorted(self.steps, key=lambda s: s.after_months):
            if months >= step.after_months:
                repaired = step.fraction
        return repaired


class RepairDef(_Frozen):
    id: str
    title: str
    statement: str
    steps: tuple[RepairStep, ...]
    decisions: tuple[str, ...] = ()
    citations: tuple[Citation, ...]
    source: str = ""

    @property
    def schedule(self) -> RepairSchedule:
        return RepairSchedule(self.id, self.steps)


@dataclass(frozen=True)
class RulePack:
    """A loaded pack. ``rules`` holds every version of every rule; ``select`` picks what is in force."""

    name: str
    version: str
    title: str
    released: date
    root: Path
    rules: tuple[Rule, ...]
    references: dict[str, Reference]
    repairs: dict[str, RepairDef]
    content_sha256: str
    as_of: date | None = None
    include_drafts: bool = False
    all_rule_ids: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    """For a selection (``as_of`` set): the ids of every rule of the whole pack, in force on that date or not."""
    _by_id: dict[str, Rule] = field(default_factory=dict, repr=False, compare=False)

    def select(self, as_of: date, include_drafts: bool = False) -> RulePack:
        """The rules in force on ``as_of``: active (or draft, when asked), valid on that date, one version per id.

        With ``include_drafts``, a draft in force takes the place of the active version it overlaps (a preview of
        the change); two active or two draft versions in force on one date are refused."""
        chosen: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.status == "retired" or (rule.status == "draft" and not include_drafts):
                continue
            if not rule.in_force(as_of):
                continue
            other = chosen.get(rule.id)
            if other is not None and other.status != rule.status:
                # a draft previews in place of the active version it overlaps (include_drafts)
                if rule.status == "draft":
                    chosen[rule.id] = rule
                continue
            if other is not None:
                raise InputError.of(
                    [
                        Problem(
                            rule.source,
                            ("valid_from",),
                            f"two versions of {rule.id} are in force on {as_of}",
                            "validity periods that do not overlap",
                            code="pack.overlap",
                        )
                    ]
                )
            chosen[rule.id] = rule
        rules = tuple(sorted(chosen.values(), key=lambda r: r.id))
        return RulePack(
            self.name,
            self.version,
            self.title,
            self.released,
            self.root,
            rules,
            self.references,
            self.repairs,
            self.content_sha256,
            as_of,
            include_drafts,
            self.all_rule_ids or frozenset(r.id for r in self.rules),
        )

    def rule(self, rule_id: str) -> Rule:
        if not self._by_id:
            self._by_id.update({r.id: r for r in self.rules})
        return self._by_id[rule_id]


def describe_default_pack() -> str:
    """One line: which pack a command loads without ``--rules`` (name, version, source or bundled, where)."""
    root = default_pack_dir()
    manifest, _ = load_yaml_file(root / "pack.yaml")
    origin = (
        "the checkout's rules/, read as edited" if pack_origin() == "source" else "bundled with the package"
    )
    return f"rule pack {manifest['name']} {manifest['version']} ({origin}: {root})"


def rule_id_for_path(relative: Path) -> str:
    """rules/policies/hytec/resbrt.yaml → hytec.resbrt; rules/recommendations/isrs-2017/x.yaml → isrs-2017.x;
    rules/assumptions/x.yaml → assumptions.x.

    An older, complete version of a rule may sit beside it as ``resbrt@1.0.0.yaml``.
    """
    parts = list(relative.with_suffix("").parts)
    parts[-1] = parts[-1].split("@")[0]
    if parts and parts[0] in ID_NAMESPACE_SECTIONS:
        parts = parts[1:]
    return ".".join(parts)


def _yaml_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.yaml")
        if p.relative_to(root).parts[0] in (*RULE_SECTIONS, "repair") and not p.name.endswith(CASES_SUFFIX)
    )


def load_pack(root: Path | str | None = None) -> RulePack:
    """Load every file of a pack, collecting all problems before refusing it (a pack loaded before with the same
    files, schemas and code comes from the cache)."""
    root = Path(root) if root is not None else default_pack_dir()
    if not (root / "pack.yaml").is_file():
        raise InputError.of(
            [
                Problem(
                    str(root),
                    (),
                    "not a rule pack: pack.yaml is missing",
                    "a directory with pack.yaml, references.yaml and rule files",
                    code="pack.missing",
                )
            ]
        )
    return cached("pack", root.rglob("*.yaml"), lambda: _load_pack(root), str(root))


def _load_pack(root: Path) -> RulePack:
    problems: list[Problem] = []
    manifest, lines = load_yaml_file(root / "pack.yaml")
    problems += schema_problems(manifest, "pack.schema.json", lines, str(root / "pack.yaml"))
    refs_raw, ref_lines = load_yaml_file(root / "references.yaml")
    problems += schema_problems(refs_raw, "references.schema.json", ref_lines, str(root / "references.yaml"))
    if problems:
        raise InputError.of(problems)
    references = {key: Reference(id=key, **value) for key, value in refs_raw.items()}

    rules: list[Rule] = []
    repairs: dict[str, RepairDef] = {}
    raw_for_hash: list[Any] = []
    rule_lines: dict[str, LineMap] = {}
    for path in _yaml_files(root):
        rel = path.relative_to(root)
        data, lines = load_yaml_file(path)
        rule_lines[str(path)] = lines
        is_repair = rel.parts[0] == "repair"
        found = schema_problems(
            data, "repair.schema.json" if is_repair else "rule.schema.json", lines, str(path)
        )
        if found:
            problems += found
            continue
        expected = rule_id_for_path(rel)
        if data["id"] != expected:
            problems.append(
                Problem(
                    str(path),
                    ("id",),
                    f"id '{data['id']}' does not match the file's path",
                    f"'{expected}' (the path under rules/ is the rule's identity)",
                    lines.get(("id",)),
                    code="pack.id-path",
                )
            )
            continue
        for i, citation in enumerate(data.get("citations", [])):
            if citation["ref"] not in references:
                problems.append(
                    Problem(
                        str(path),
                        ("citations", i, "ref"),
                        f"unknown reference '{citation['ref']}'",
                        ", ".join(sorted(references)),
                        lines.get(("citations", i, "ref")),
                        code="pack.citation",
                    )
                )
        raw_for_hash.append({"path": rel.as_posix(), "data": data})
        if is_repair:
            repairs[data["id"].removeprefix("repair.")] = RepairDef(
                source=str(path), **{**data, "steps": tuple(RepairStep(**s) for s in data["steps"])}
            )
        else:
            rules.append(Rule(source=str(path), raw=data, **data))
    for rule in rules:
        repair = rule.quantity.repair if rule.quantity else None
        if repair is not None and repair not in repairs:
            problems.append(
                Problem(
                    rule.source,
                    ("quantity", "parameters", "repair"),
                    f"unknown repair schedule '{repair}'",
                    ", ".join(sorted(repairs)),
                    code="pack.repair",
                )
            )
    # knowledge data: validated by reirrad.knowledge, hashed here so that the lock covers it
    data_files = {
        p.relative_to(root).as_posix(): load_yaml_file(p)[0]
        for p in sorted(root.rglob("*.yaml"))
        if p.relative_to(root).parts[0] in DATA_SECTIONS and not p.name.endswith(CASES_SUFFIX)
    }
    problems += _supported_by_problems(rules, rule_lines, data_files)
    if problems:
        raise InputError.of(problems)
    raw_for_hash += [{"path": rel, "data": data} for rel, data in data_files.items()]
    digest = hashlib.sha256(
        canonical_json({"pack": manifest, "references": refs_raw, "files": raw_for_hash}).encode()
    ).hexdigest()
    return RulePack(
        manifest["name"],
        manifest["version"],
        manifest["title"],
        date.fromisoformat(manifest["released"]),
        root,
        tuple(rules),
        references,
        repairs,
        digest,
    )


def _supported_by_problems(
    rules: list[Rule], rule_lines: dict[str, LineMap], data_files: dict[str, Any]
) -> list[Problem]:
    """Every id a recommendation's ``supported_by`` names must be a study of the evidence registry."""
    studies = data_files.get(EVIDENCE_FILE)
    studies = studies.get("studies", []) if isinstance(studies, dict) else []
    known = {s["id"] for s in studies if isinstance(s, dict) and isinstance(s.get("id"), str)}
    accepted = f"an id of {EVIDENCE_FILE}: " + (
        ", ".join(sorted(known)) or "(the file is missing or has no studies)"
    )
    return [
        Problem(
            rule.source,
            ("supported_by", i),
            f"unknown study '{study}'",
            accepted,
            rule_lines[rule.source].get(("supported_by", i)),
            code="pack.supported-by",
        )
        for rule in rules
        for i, study in enumerate(rule.supported_by)
        if study not in known
    ]
