"""The documentation pages generated from the rule pack by the mkdocs hook."""

from __future__ import annotations

import dataclasses
import importlib.util
from types import ModuleType

from maint_helpers import ROOT, RULES, VERSIONED
from reirrad.knowledge.rulepack import load_pack
from reirrad.maint.docsgen import BANNER, generate_pages, page_of_policy, page_of_rule


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_hook", ROOT / "docs" / "hooks" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_rule_and_policy_gets_a_generated_page() -> None:
    pack = load_pack(RULES)
    pages = _hook().generate_pages(RULES)
    for rule in pack.rules:
        page = pages[page_of_rule(rule.id)]
        assert page.startswith(f"# `{rule.id}` — {rule.title}\n")
        assert BANNER.rstrip("\n") in page
        assert rule.statement in page
        assert f"[`{rule.id}`]({rule.id}.md)" in pages["rules/index.md"]
    for policy in {r.policy for r in pack.rules if r.policy}:
        assert all(
            f"[`{r.id}`]({r.id}.md)" in pages[page_of_policy(policy)]
            for r in pack.rules
            if r.policy == policy
        )
    assert all(page.count("do not edit") >= 2 for page in pages.values())


def test_a_rule_page_shows_the_condition_limit_citations_versions_and_cases() -> None:
    page = generate_pages(VERSIONED)["rules/toy.limit.md"]
    assert "    - " not in page.split("## When it applies")[1].split("##")[0], "a single leaf is one bullet"
    assert "- number of earlier courses over the lesion (`prior_course_count`) > 0" in page
    assert "value ≤ **20 Gy EQD2**" in page
    assert "| evidence | level II (ISRS 2017 Table 2) |" in page
    assert "A revised toy source for the versioning tests. 2020" not in page
    assert "A revised toy source for the versioning tests. 2024. — Table 1, first row (`toy-2024`)" in page
    versions = page.split("## Versions")[1].split("##")[0]
    assert versions.index("| 2.0.0 | active | 2024-01-01 |") < versions.index(
        "| 1.0.0 | active | 2020-01-01 | 2024-01-01 |"
    )
    assert "- **1.1.0 — 2024-01-01**: `toy.limit` 2.0.0: the limit falls from 25 to 20 Gy EQD2" in page
    assert (
        "| on 2023-12-31 version 1.0.0 is in force and 24.75 Gy EQD2 meets its 25 Gy limit | 2023-12-31 | "
        "SpinalCord Dmax **pass** |" in page
    )


def test_a_kind_the_generator_does_not_know_gets_the_common_fields_and_its_data() -> None:
    pack = load_pack(VERSIONED)
    rule = pack.rules[-1]
    odd = rule.model_copy(
        update={
            "kind": "fractionation-table",
            "limit": None,
            "quantity": None,
            "raw": {**rule.raw, "kind": "fractionation-table", "rows": [{"fractions": 5}]},
        }
    )
    pages = generate_pages(VERSIONED, dataclasses.replace(pack, rules=(odd,)))
    page = pages["rules/toy.limit.md"]
    assert "| kind | fractionation-table |" in page
    assert "## Statement" in page
    assert "## Citations" in page
    assert "## Other fields\n\n```yaml\nrows:\n- fractions: 5\n```" in page
    assert "## Fractionation-table rules" in pages["rules/index.md"]


def test_the_hook_adds_the_rule_pack_section_to_the_nav() -> None:
    hook = _hook()
    config = {
        "config_file_path": str(ROOT / "mkdocs.yml"),
        "nav": [{"Home": "index.md"}, {"Rule pack": "rules/index.md"}],
    }
    hook.on_config(config)
    section = config["nav"][1]["Rule pack"]
    assert section[0] == {"Index": "rules/index.md"}
    rules = next(entry["Rules"] for entry in section if "Rules" in entry)
    assert {"hytec.resbrt": "rules/hytec.resbrt.md"} in rules


def test_the_knowledge_files_get_rendered_pages_with_their_provenance() -> None:
    from reirrad.knowledge.data import load_evidence, load_table

    pages = generate_pages(RULES)
    evidence = pages["rules/evidence.md"]
    for study in load_evidence(RULES).studies:
        assert f"## {study.id}\n" in evidence
    assert "| local control | myrehaug-2017 | median 76% at 1 year (range 66%-90%) |" in evidence
    table = load_table(RULES)
    page = pages["rules/table-kotecha-2020-table3.md"]
    for row in table.rows:
        assert f"| {row.label} | " in page
    assert "| None | 12.4-14 Gy (cauda equina 16 Gy) | 17 Gy | 20.3 Gy | 23 Gy | 25.3 Gy |" in page
    assert "## Provenance of each cell" in page
    assert "`lesion.bilsky_grade`" in pages["rules/assessment.md"]
    assert "renal cell carcinoma" in pages["rules/lists.md"]
    rule_page = pages[page_of_rule("isrs-2017.sbrt-after-sbrt")]
    assert "| supported by | [thibault-2015](evidence.md#thibault-2015) |" in rule_page
    assert "rules/knowledge.md" not in pages  # every knowledge file has a page of its own
