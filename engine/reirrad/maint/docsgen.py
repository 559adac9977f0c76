"""Pages generated from the rule pack: one per rule, one per policy, repair schedules and an index."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reirrad.knowledge.data import (
    ASSESSMENT_FILE,
    EVIDENCE_FILE,
    LISTS_FILE,
    STUDY_FIELDS,
    TABLE_FILE,
    load_assessment,
    load_evidence,
    load_histology_lists,
    load_table,
)
from reirrad.knowledge.readings import READINGS_SECTION, load_readings
from reirrad.knowledge.rulepack import RULE_SECTIONS, Reference, Rule, RulePack, load_pack
from reirrad.load.yamlio import load_yaml_file
from reirrad.logic.facts import CONTEXT_FACTS
from reirrad.maint.versions import versions_by_id
from reirrad.testing.casetests import CaseTest, discover, load_bases, load_case_tests

__all__ = ["BANNER", "generate_pages", "nav_entries", "page_of_policy", "page_of_rule"]

OUT_DIR = "rules"
BANNER = (
    "<!-- generated from the rule pack — do not edit -->\n\n"
    '!!! note "Generated from the rule pack — do not edit"\n'
    "    This page is written by `docs/hooks/generate.py` from the files under `rules/` each time the "
    "site is built. Change the rule files, not this page.\n\n"
)
COMMON_FIELDS = frozenset(
    {
        "id",
        "kind",
        "version",
        "status",
        "valid_from",
        "valid_until",
        "superseded_by",
        "reviewed_on",
        "review_due",
        "title",
        "statement",
        "rationale",
        "policy",
        "criterion",
        "scope",
        "applies_when",
        "quantity",
        "limit",
        "assumption",
        "decisions",
        "evidence",
        "citations",
        "guideline",
        "direction",
        "strength",
        "action",
        "multidisciplinary",
        "supported_by",
    }
)
"""Fields the pages render in their own sections; anything else (a kind added later) is shown as YAML."""
_OPS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}
_LIMIT_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}


def page_of_rule(rule_id: str) -> str:
    return f"{OUT_DIR}/{rule_id}.md"


def page_of_policy(policy: str) -> str:
    return f"{OUT_DIR}/policy-{policy}.md"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def _link(rule_id: str, here: str = OUT_DIR) -> str:
    return f"[`{rule_id}`]({rule_id}.md)"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def condition_lines(node: Any, depth: int = 0) -> list[str]:
    """A condition as nested Markdown bullets, in words."""
    pad = "    " * depth
    if node == "always":
        return [f"{pad}- always"]
    if not isinstance(node, dict):
        return [f"{pad}- `{node!r}`"]
    for key, words in (("all", "all of"), ("any", "any of")):
        if key in node:
            return [f"{pad}- {words}:", *(line for n in node[key] for line in condition_lines(n, depth + 1))]
    if "not" in node:
        return [f"{pad}- not:", *condition_lines(node["not"], depth + 1)]
    if "outcome" in node:
        return [f"{pad}- the result of {_link(node['outcome'])} is {node.get('status')}"]
    fact = node.get("fact", "?")
    spec = CONTEXT_FACTS.get(fact)
    name = f"{spec.description} (`{fact}`)" if spec else f"`{fact}`"
    ((op, value),) = ((k, v) for k, v in node.items() if k != "fact")
    if op == "in":
        return [f"{pad}- {name} is one of {', '.join(_scalar(v) for v in value)}"]
    return [f"{pad}- {name} {_OPS.get(op, op)} {_scalar(value)}"]


@dataclass
class _Site:
    pack: RulePack
    cases: dict[str, list[CaseTest]]
    changelog: list[tuple[str, list[str]]]


def _changelog(root: Path) -> list[tuple[str, list[str]]]:
    """(heading, items) per '## ' section of CHANGELOG.md; an item is a bullet with its continuation lines."""
    path = root / "CHANGELOG.md"
    if not path.is_file():
        return []
    sections: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections and line.startswith("- "):
            sections[-1][1].append(line[2:].strip())
        elif sections and sections[-1][1] and line.startswith("  ") and line.strip():
            sections[-1][1][-1] += " " + line.strip()
    return sections


def _mentions(site: _Site, rule_id: str) -> list[str]:
    pattern = re.compile(rf"(?<![\w.-]){re.escape(rule_id)}(?![\w-])")
    return [
        f"**{heading}**: {item}"
        for heading, items in site.changelog
        for item in items
        if pattern.search(item)
    ]


def _reference(ref: Reference | None, key: str, locator: str) -> str:
    if ref is None:
        return f"`{key}` (not in references.yaml), {locator}"
    parts = [
        ref.authors,
        ref.title.rstrip("."),
        " ".join(p for p in (f"*{ref.journal}*" if ref.journal else "", str(ref.year or "")) if p)
        + (f";{ref.volume}" if ref.volume else ""),
    ]
    doi = f" [doi:{ref.doi}](https://doi.org/{ref.doi})." if ref.doi else ""
    if ref.pmid:
        doi += f" PubMed [{ref.pmid}](https://pubmed.ncbi.nlm.nih.gov/{ref.pmid}/)."
    return f"{'. '.join(p.rstrip('.') for p in parts if p)}.{doi} — {locator} (`{key}`)"


def _limit(rule: Rule, unit: str) -> list[str]:
    limit = rule.limit
    if limit is None:
        return []
    op = _LIMIT_OPS[limit.operator]
    if limit.value is not None:
        return ["## Limit", "", f"value {op} **{limit.value:g} {unit}**", ""]
    by = CONTEXT_FACTS[limit.by].description if limit.by in CONTEXT_FACTS else limit.by
    out = [
        "## Limit",
        "",
        f"value {op} the row's limit, by {by} (`{limit.by}`); a value with no row has no published "
        "limit and is indeterminate.",
        "",
        f"| {limit.by} | limit | note |",
        "|---|---|---|",
    ]
    out += [f"| {_cell(e.key)} | {op} {e.value:g} {unit} | {_cell(e.note)} |" for e in limit.table]
    return [*out, ""]


def _cases(site: _Site, rule_id: str) -> list[str]:
    tests = site.cases.get(rule_id, [])
    if not tests:
        return ["## Test cases", "", "No test case exercises this rule.", ""]
    out = [
        "## Test cases",
        "",
        f"{len(tests)} case(s) in `{tests[0].file.name}`, run on durable-rules and on the "
        "oracle by `reirrad rules test` and pytest.",
        "",
        "| case | as of | expected | source |",
        "|---|---|---|---|",
    ]
    for t in tests:
        expected = "; ".join(
            " ".join(
                p
                for p in (
                    e.rule if e.rule != rule_id else "",
                    e.structure or "",
                    e.metric or "",
                    f"**{e.status}**",
                )
                if p
            )
            for e in t.expect
        )
        out.append(f"| {_cell(t.name)} | {t.as_of} | {_cell(expected)} | {_cell(t.source)} |")
    return [*out, ""]


def _rule_page(site: _Site, versions: list[Rule]) -> str:
    rule = versions[-1]
    raw = rule.raw
    unit = rule.quantity.unit if rule.quantity else ""
    out = [f"# `{rule.id}` — {rule.title}", "", BANNER.rstrip("\n"), ""]
    facts = [
        ("kind", rule.kind),
        ("version", f"{rule.version} ({rule.status})"),
        ("in force", f"from {rule.valid_from}" + (f" until {rule.valid_until}" if rule.valid_until else "")),
        ("policy", f"[{rule.policy}](policy-{rule.policy}.md)" if rule.policy else None),
        ("criterion", rule.criterion),
        ("guideline", rule.guideline),
        ("direction", rule.direction),
        ("strength", rule.strength),
        ("evidence", rule.evidence.label()),
        ("source kind", rule.evidence.source_kind if rule.evidence.scale else None),
        ("multidisciplinary", None if rule.multidisciplinary is None else _scalar(rule.multidisciplinary)),
        ("supported by", ", ".join(f"[{sid}](evidence.md#{sid})" for sid in rule.supported_by) or None),
        ("superseded by", rule.superseded_by),
        ("reviewed", f"{rule.reviewed_on}, next review due {rule.review_due}"),
    ]
    out += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in facts if v), ""]
    out += ["## Statement", "", rule.statement, ""]
    if rule.rationale:
        out += ["## Rationale", "", rule.rationale, ""]
    out += [
        "## Citations",
        "",
        *(f"- {_reference(site.pack.references.get(c.ref), c.ref, c.locator)}" for c in rule.citations),
        "",
    ]
    out += ["## When it applies", "", *condition_lines(rule.applies_when), ""]
    if rule.scope.per == "near_max_dose":
        out += [
            f"Evaluated for each of {', '.join(rule.scope.structures)} × {', '.join(rule.scope.metrics)} "
            "that the "
            "planned course gives.",
            "",
        ]
    if rule.quantity is not None:
        params = ", ".join(f"{k} = {v}" for k, v in rule.quantity.parameters.items())
        repair = rule.quantity.repair
        out += [
            "## Quantity",
            "",
            f"`{rule.quantity.calculation}` in {unit}"
            + (f" ({params})" if params else "")
            + (f"; repair schedule [`{repair}`](repair.md#{repair})" if repair else ""),
            "",
        ]
    out += _limit(rule, unit)
    if rule.assumption is not None:
        a = rule.assumption
        out += [
            "## Assumption",
            "",
            f"For earlier {', '.join(a.course_techniques)} courses whose plan data is lost, "
            f"{', '.join(a.structures)} is taken to have received the {a.assumed_dose} dose.",
            "",
        ]
    if rule.action is not None:
        out += ["## Action", "", f"{rule.action.kind}: {rule.action.what}", ""]
        out += [
            f"- {o.label}"
            + (f": {o.dose:g} Gy" if o.dose else "")
            + (f" in {o.fractions}" if o.fractions else "")
            + (f" — {o.note}" if o.note else "")
            for o in rule.action.options
        ]
        out += [""] if rule.action.options else []
    if rule.supported_by:
        out += ["## Supported by", "", *(f"- `{s}`" for s in rule.supported_by), ""]
    if rule.decisions:
        out += ["## Decisions on ambiguous wording", "", *(f"- {d}" for d in rule.decisions), ""]
    extra = {k: v for k, v in raw.items() if k not in COMMON_FIELDS}
    if extra:
        out += [
            "## Other fields",
            "",
            "```yaml",
            yaml.safe_dump(extra, sort_keys=False, allow_unicode=True).rstrip(),
            "```",
            "",
        ]
    out += [
        "## Versions",
        "",
        "| version | status | valid from | valid until | reviewed | file |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {v.version} | {v.status} | {v.valid_from} | {v.valid_until or ''} | {v.reviewed_on} | "
        f"`{_cell(Path(v.source).relative_to(site.pack.root).as_posix())}` |"
        for v in reversed(versions)
    ]
    mentions = _mentions(site, rule.id)
    out += (
        ["", "## Changelog", "", *(f"- {m}" for m in mentions)]
        if mentions
        else ["", "## Changelog", "", "The pack's changelog does not mention this rule."]
    )
    out += ["", *_cases(site, rule.id)]
    return "\n".join(out).rstrip() + "\n"


def _policy_pages(site: _Site, current: dict[str, Rule]) -> dict[str, str]:
    by_policy: dict[str, list[Rule]] = defaultdict(list)
    for rule in current.values():
        if rule.policy:
            by_policy[rule.policy].append(rule)
    pages = {}
    for policy, rules in sorted(by_policy.items()):
        out = [
            f"# Policy `{policy}`",
            "",
            BANNER.rstrip("\n"),
            "",
            f"{len(rules)} criteria.",
            "",
            "| criterion | rule | quantity | limit | in force | evidence |",
            "|---|---|---|---|---|---|",
        ]
        for r in sorted(rules, key=lambda r: r.criterion or r.id):
            limit = "—"
            if r.limit is not None:
                op = _LIMIT_OPS[r.limit.operator]
                unit = r.quantity.unit if r.quantity else ""
                limit = (
                    f"{op} {r.limit.value:g} {unit}"
                    if r.limit.value is not None
                    else "; ".join(f"{e.key}: {op} {e.value:g} {unit}" for e in r.limit.table)
                )
            quantity = f"{r.quantity.calculation}" if r.quantity else "—"
            valid = f"{r.valid_from}–{r.valid_until or ''}"
            out.append(
                f"| {_cell(r.criterion)} | {_link(r.id)} | {_cell(quantity)} | {_cell(limit)} | {valid} "
                f"({r.status}) | {_cell(r.evidence.label())} |"
            )
        out.append("")
        for r in sorted(rules, key=lambda r: r.criterion or r.id):
            out += [f"## {r.criterion or r.id}: {r.title}", "", r.statement, "", f"See {_link(r.id)}.", ""]
        pages[page_of_policy(policy)] = "\n".join(out).rstrip() + "\n"
    return pages


def _repair_page(site: _Site) -> str:
    out = ["# Repair schedules", "", BANNER.rstrip("\n"), ""]
    users: dict[str, list[str]] = defaultdict(list)
    for rule in site.pack.rules:
        if rule.quantity is not None and rule.quantity.repair:
            users[rule.quantity.repair].append(rule.id)
    for key, repair in sorted(site.pack.repairs.items()):
        out += [
            f"## {key}",
            "",
            f"**{repair.title}**",
            "",
            repair.statement,
            "",
            "| from (months after the course) | fraction repaired |",
            "|---|---|",
        ]
        out += [f"| {s.after_months:g} | {s.fraction:.4g} |" for s in repair.steps]
        out += ["", *(f"- {d}" for d in repair.decisions), ""] if repair.decisions else [""]
        out += [
            *(
                f"- Cited: {_reference(site.pack.references.get(c.ref), c.ref, c.locator)}"
                for c in repair.citations
            ),
            "",
        ]
        used = sorted(set(users.get(key, [])))
        out += [f"Used by: {', '.join(_link(u) for u in used) if used else 'no rule'}.", ""]
    return "\n".join(out).rstrip() + "\n"


def _prov(p: Any) -> str:
    return f"{p.ref}, {p.locator}"


def _evidence_page(root: Path) -> str:
    registry = load_evidence(root)
    out = [
        "# Evidence registry",
        "",
        BANNER.rstrip("\n"),
        "",
        f"The studies behind the recommendations ({len(registry.studies)}), from `rules/evidence/studies.yaml`. "
        "Each field gives what each source reports, keyed by the source's reference id; where two sources "
        "report a study differently both are kept.",
        "",
    ]
    for study in registry.studies:
        out += [
            f"## {study.id}",
            "",
            f"**{study.citation_text}**"
            + (f", {study.journal}" if study.journal else "")
            + (f" — reference `{study.reference}`" if study.reference else ""),
            "",
            "Described in: " + "; ".join(_prov(p) for p in study.sources) + ".",
            "",
            f"Quality: {study.quality.label()}.",
            "",
            "| field | source | reported |",
            "|---|---|---|",
        ]
        for name in STUDY_FIELDS:
            for ref, value in study.reported(name).items():
                out.append(f"| {name.replace('_', ' ')} | {ref} | {_cell(value)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _table_page(root: Path) -> str:
    table = load_table(root)
    out = [
        f"# {table.title}",
        "",
        BANNER.rstrip("\n"),
        "",
        f"Source: {table.ref}, {table.locator}. Quantity: {table.quantity} ({table.unit}); structures: "
        f"{', '.join(table.structures)}. Each cell keeps its provenance; a cell the source leaves empty is "
        '"not available", never filled in. `reirrad limits` shows the matching row beside the limits it derives.',
        "",
        "| earlier course | " + " | ".join(s.label for s in table.schedules) + " |",
        "|---|" + "---|" * len(table.schedules),
    ]
    for row in table.rows:
        out.append(
            f"| {_cell(row.label)} | "
            + " | ".join(_cell(row.cell(s.id).text()) for s in table.schedules)
            + " |"
        )
    out += ["", "## Provenance of each cell", ""]
    for row in table.rows:
        out.append(
            f"- **{row.label}**: "
            + "; ".join(f"{s.label}: {_prov(row.cell(s.id).provenance)}" for s in table.schedules)
        )
    if table.footnotes:
        out += ["", "## Footnotes", "", *(f"- {text} ({_prov(p)})" for text, p in table.footnotes)]
    if table.decisions:
        out += ["", "## Decisions", "", *(f"- {_cell(d)}" for d in table.decisions)]
    return "\n".join(out).rstrip() + "\n"


def _assessment_page(root: Path) -> str:
    a = load_assessment(root)
    out = [
        f"# {a.title}",
        "",
        BANNER.rstrip("\n"),
        "",
        f"Source: {_prov(a.source)}. For each item, the case "
        "fields that answer it (or that the case format does not capture it) and how fully.",
        "",
    ]
    for domain in a.domains:
        out += [f"## {domain.title}", "", "| item | case fields | coverage | note |", "|---|---|---|---|"]
        for item in domain.items:
            fields = ", ".join(f"`{f}`" for f in item.case_fields) or "not captured by the case format"
            out.append(f"| {_cell(item.text)} | {fields} | {item.coverage or ''} | {_cell(item.note)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _lists_page(root: Path) -> str:
    lists = load_histology_lists(root)
    out = [
        "# Radioresistant histology lists",
        "",
        BANNER.rstrip("\n"),
        "",
        "## Matching",
        "",
        _cell(lists.rule),
        "",
    ]
    if lists.decisions:
        out += ["Decisions:", "", *(f"- {_cell(d)}" for d in lists.decisions), ""]
    for lst in lists.lists:
        out += [
            f"## {lst.title}",
            "",
            f"Source: {_prov(lst.source)}.",
            "",
            "| category | words | parts | excluded |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {e.name} | {', '.join(e.words)} | {', '.join(e.parts)} | {', '.join(e.exclude)} |"
            for e in lst.entries
        ]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


KNOWLEDGE_PAGES = (
    (EVIDENCE_FILE.as_posix(), "evidence", "Evidence registry", _evidence_page),
    (TABLE_FILE.as_posix(), "table-kotecha-2020-table3", "Kotecha 2020 Table 3 (data)", _table_page),
    (ASSESSMENT_FILE.as_posix(), "assessment", "NOMS/ACR assessment items", _assessment_page),
    (LISTS_FILE.as_posix(), "lists", "Radioresistant histology lists", _lists_page),
)
"""Knowledge files with a page of their own: path under rules/, page name under docs/rules/, title, renderer."""


def _readings_page(root: Path, pack: RulePack) -> str:
    """Every reading of rules/readings/: what it changes, the words that allow it, and how to evaluate under it."""
    readings = load_readings(root, pack)
    out = [
        "# Readings the sources allow",
        "",
        BANNER.rstrip("\n"),
        "",
        "Where the sources can be read another way than the pack reads them, the alternative is data. Every result "
        "says under which of these readings a verdict would change (*fragile*); `reirrad evaluate --reading NAME` "
        "and `reirrad limits --reading NAME` evaluate under one.",
        "",
    ]
    for name, reading in sorted(readings.items()):
        out += [
            f"## {name}",
            "",
            f"**{reading.title}.** {reading.statement}",
            "",
            f"- source words: {reading.source_words}",
        ]
        for touch in reading.touches:
            default = "absent" if touch.default is None else f"`{touch.default}`"
            out.append(f"- changes `{touch.target}` `{touch.field}`: {default} → `{touch.alternative}`")
        if reading.decision:
            out.append(f"- the pack's own reading: {reading.decision}")
        out.append("- cited: " + "; ".join(f"{c.ref} ({c.locator})" for c in reading.citations))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _knowledge_page(root: Path) -> str | None:
    """Other sections under rules/ without a page of their own, shown as data."""
    files = sorted(
        p
        for p in root.rglob("*.yaml")
        if len(p.relative_to(root).parts) > 1
        and p.relative_to(root).parts[0] not in (*RULE_SECTIONS, "repair", READINGS_SECTION)
        and not p.name.endswith(".cases.yaml")
        and p.relative_to(root).as_posix() not in {rel for rel, *_ in KNOWLEDGE_PAGES}
    )
    if not files:
        return None
    out = ["# Other knowledge files", "", BANNER.rstrip("\n"), ""]
    for path in files:
        data, _ = load_yaml_file(path)
        rel = path.relative_to(root).as_posix()
        title = data.get("title") if isinstance(data, dict) else None
        out += [
            f"## `{rel}`",
            "",
            *([str(title), ""] if title else []),
            "```yaml",
            yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip(),
            "```",
            "",
        ]
    return "\n".join(out).rstrip() + "\n"


def _index(
    site: _Site,
    history: dict[str, list[Rule]],
    policies: list[str],
    knowledge: bool,
    rendered: list[tuple[str, str]],
) -> str:
    pack = site.pack
    out = [
        f"# Rule pack: {pack.title}",
        "",
        BANNER.rstrip("\n"),
        "",
        f"`{pack.name}` version **{pack.version}**, released {pack.released}; content sha256 "
        f"`{pack.content_sha256}`.",
        "",
    ]
    if policies:
        out += ["## Policies", "", *(f"- [{p}](policy-{p}.md)" for p in policies), ""]
    by_kind: dict[str, list[Rule]] = defaultdict(list)
    for versions in history.values():
        by_kind[versions[-1].kind].append(versions[-1])
    for kind, rules in sorted(by_kind.items()):
        out += [
            f"## {kind.capitalize()} rules",
            "",
            "| rule | title | version | status | in force from |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| {_link(r.id)} | {_cell(r.title)} | {r.version} | {r.status} | {r.valid_from} |" for r in rules
        ]
        out.append("")
    out += ["## Also", "", "- [Repair schedules](repair.md)", "- [Rule pack changelog](changelog.md)"]
    out += [f"- [{title}]({name}.md)" for name, title in rendered]
    if knowledge:
        out.append("- [Other knowledge files](knowledge.md)")
    return "\n".join(out).rstrip() + "\n"


def _changelog_page(root: Path) -> str:
    path = root / "CHANGELOG.md"
    body = (
        path.read_text(encoding="utf-8") if path.is_file() else "# Rule pack changelog\n\nNo changelog yet.\n"
    )
    lines = body.splitlines()
    title = lines[0] if lines and lines[0].startswith("# ") else "# Rule pack changelog"
    rest = lines[1:] if lines and lines[0].startswith("# ") else lines
    return "\n".join([title, "", BANNER.rstrip("\n"), *rest]).rstrip() + "\n"


def _load_cases(root: Path) -> dict[str, list[CaseTest]]:
    files = discover(root)
    if not files:
        return {}
    bases = load_bases(root)
    out: dict[str, list[CaseTest]] = defaultdict(list)
    for path in files:
        for test in load_case_tests(path, bases):
            out[test.rule].append(test)
    return out


def generate_pages(root: Path | str, pack: RulePack | None = None) -> dict[str, str]:
    """Every generated page: its path under docs/ (``rules/...``) and its Markdown."""
    root = Path(root)
    pack = pack if pack is not None else load_pack(root)
    site = _Site(pack, _load_cases(root), _changelog(root))
    history = versions_by_id(pack.rules)
    current = {rule_id: versions[-1] for rule_id, versions in history.items()}
    pages = {page_of_rule(rule_id): _rule_page(site, versions) for rule_id, versions in history.items()}
    policy_pages = _policy_pages(site, current)
    pages.update(policy_pages)
    pages[f"{OUT_DIR}/repair.md"] = _repair_page(site)
    pages[f"{OUT_DIR}/changelog.md"] = _changelog_page(root)
    rendered = [(name, title) for rel, name, title, _ in KNOWLEDGE_PAGES if (root / rel).is_file()]
    for rel, name, _, render in KNOWLEDGE_PAGES:
        if (root / rel).is_file():
            pages[f"{OUT_DIR}/{name}.md"] = render(root)
    if (root / READINGS_SECTION).is_dir():
        pages[f"{OUT_DIR}/readings.md"] = _readings_page(root, pack)
        rendered.append(("readings", "Readings the sources allow"))
    knowledge = _knowledge_page(root)
    if knowledge is not None:
        pages[f"{OUT_DIR}/knowledge.md"] = knowledge
    policies = sorted({r.policy for r in current.values() if r.policy})
    pages[f"{OUT_DIR}/index.md"] = _index(site, history, policies, knowledge is not None, rendered)
    return pages


def nav_entries(pages: dict[str, str]) -> list[Any]:
    """The 'Rule pack' navigation: index, policies, rules, repair schedules, changelog."""

    def title(path: str) -> str:
        first = pages[path].splitlines()[0]
        return first.removeprefix("# ").replace("`", "")

    policies = [
        {title(p).removeprefix("Policy "): p} for p in sorted(pages) if p.startswith(f"{OUT_DIR}/policy-")
    ]
    special = {
        f"{OUT_DIR}/{n}.md"
        for n in ("index", "repair", "changelog", "knowledge", *(name for _, name, *_ in KNOWLEDGE_PAGES))
    }
    rules = [
        {p.removeprefix(f"{OUT_DIR}/").removesuffix(".md"): p}
        for p in sorted(pages)
        if p not in special and not p.startswith(f"{OUT_DIR}/policy-")
    ]
    out: list[Any] = [{"Index": f"{OUT_DIR}/index.md"}]
    if policies:
        out.append({"Policies": policies})
    out += [
        {"Rules": rules},
        {"Repair schedules": f"{OUT_DIR}/repair.md"},
        {"Rule pack changelog": f"{OUT_DIR}/changelog.md"},
    ]
    out += [
        {title: f"{OUT_DIR}/{name}.md"}
        for _, name, title, _ in KNOWLEDGE_PAGES
        if f"{OUT_DIR}/{name}.md" in pages
    ]
    if f"{OUT_DIR}/knowledge.md" in pages:
        out.append({"Other knowledge files": f"{OUT_DIR}/knowledge.md"})
    return out
