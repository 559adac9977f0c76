"""`reirrad rules check`: one broken pack per lint code (code, line, message); the bundled pack is clean."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from maint_helpers import GALLERY, ROOT, RULES, TODAY, VERSIONED, gallery_pack, run
from reirrad.maint.lint import CODES, check_pack

EXPECTED: dict[str, tuple[str, int | None, str]] = {
    "R001": ("policies/toy/limit.yaml", 5, "duplicate key 'status' (first given on line 4)"),
    "R002": ("policies/toy/limit.yaml", 2, 'kind: text ("constriant") is not an accepted value'),
    "R101": ("policies/toy/limit@1.0.0.yaml", 1, "duplicate id 'toy.limit': also declared in"),
    "R102": (
        "policies/toy/limit.yaml",
        1,
        "id 'toy.limits' does not match the file's path; expected 'toy.limit'",
    ),
    "R103": (
        "policies/toy/limit@1.0.0.yaml",
        3,
        "the file name says version 1.0.0 but the file has version 1.1.0",
    ),
    "R104": (
        "policies/toy/limit.yaml",
        5,
        "versions 1.0.0 and 2.0.0 of toy.limit are both in force from 2021-01-01",
    ),
    "R105": ("policies/toy/limit.yaml", 6, "valid_until 2019-01-01 is not after valid_from 2020-01-01"),
    "R106": ("policies/toy/limit.yaml", 6, "superseded_by 'toy.nothing' names no rule of the pack"),
    "R107": ("policies/toy/limit.yaml", 17, "unknown repair schedule 'nowhere'"),
    "R201": ("policies/toy/limit.yaml", 23, "the rule cites no source"),
    "R202": (
        "policies/toy/limit.yaml",
        24,
        "citation 'toy-2099' is not in references.yaml (known: toy-2020)",
    ),
    "R203": (
        "policies/toy/limit.yaml",
        21,
        "evidence level 'IV' is not a level of ISRS 2017 Table 2 (accepted: I, II, III",
    ),
    "R204": ("policies/toy/limit.yaml", 20, "evidence 'not graded' must not name a scale"),
    "R205": ("policies/toy/limit.yaml", 22, "evidence scale 'GRADE' is not one the lint knows"),
    "R206": ("policies/toy/limit.yaml", 7, "review overdue: due 2026-06-01, today is 2026-11-23"),
    "R207": ("policies/toy/limit.yaml", 7, "review_due 2027-03-01 is not after reviewed_on 2027-06-01"),
    "R301": ("policies/toy/limit.yaml", 11, "name several α/β values (2, 3 Gy)"),
    "R302": ("policies/toy/limit.yaml", 24, "limit table key 1 is given twice (rows 1 and 2)"),
    "R303": ("policies/toy/limit.yaml", 22, "the table gives 1, 2, 4 fractions but not 3"),
    "R304": ("policies/toy/limit.yaml", 24, "limit table key 'middle' can never match conus_position"),
    "R305": (
        "policies/toy/limit.yaml",
        18,
        "unit 'Gy' does not match the calculation planned_eqd2, which gives 'Gy EQD2'",
    ),
    "R306": ("policies/toy/limit.yaml", 14, "status 'pass' can never be reached (SpinalCord Dmax, the rule)"),
    "R401": (
        "policies/toy/limit.yaml",
        1,
        "no test case exercises toy.limit; add limit.cases.yaml beside it",
    ),
    "R402": (
        "policies/toy/other.cases.yaml",
        3,
        "expects a result of 'toy.other', which is not a rule of the pack",
    ),
    "R403": ("policies/toy/limit.yaml", 1, "the test cases of toy.limit show no fail, not_applicable result"),
    "R501": ("pack.lock.json", None, "differs from pack.lock.json"),
    "R502": ("CHANGELOG.md", None, "CHANGELOG.md has no '## 0.1.0' entry"),
    "R503": (
        "policies/toy/limit.yaml",
        3,
        "toy.limit 1.0.0 differs from the released 1.0.0 (limit, statement, title changed) but its version did not",
    ),
    "R504": (
        "policies/toy/limit.yaml",
        3,
        "toy.limit 1.0.0 → 1.0.1 is a patch, but limit changed: a changed limit, scope, condition or option needs",
    ),
    "R505": ("CHANGELOG.md", 3, "the CHANGELOG.md entry for 0.1.0 is empty"),
    "R506": ("CHANGELOG.md", 3, "the CHANGELOG.md entry for 0.1.0 does not name toy.limit"),
}
RELEASE_CHANGES = {"R503", "R504", "R505", "R506"}
"""Gallery packs changed since their lock: the lock mismatch (R501) comes with each of these codes."""


def test_every_code_has_a_gallery_entry_and_an_expectation() -> None:
    dirs = {p.name for p in GALLERY.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert dirs == set(CODES) == set(EXPECTED)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_gallery(code: str, tmp_path: Path) -> None:
    root = gallery_pack(code, tmp_path)
    file, line, message = EXPECTED[code]
    found = check_pack(root, today=TODAY)
    also = {"R501"} if code in RELEASE_CHANGES else set()
    assert {d.code for d in found} == {code} | also, [d.render() for d in found]
    hits = [d for d in found if d.file == str(root / file) and d.line == line and message in d.message]
    assert hits, [d.render() for d in found]
    assert all(d.severity == CODES[code][0] for d in hits)
    assert all(d.severity == "error" for d in found if d.code in RELEASE_CHANGES)


def test_the_docs_list_every_code_with_its_severity() -> None:
    text = (ROOT / "docs" / "rule-lint.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (R\d{3}) \| (error|warning) \|", text, re.MULTILINE))
    assert rows == {code: severity for code, (severity, _) in CODES.items()}


def test_the_bundled_pack_is_clean() -> None:
    """The release checks (R501, R502) are left to test_pack_lock.py, which says what to do."""
    assert [d.render() for d in check_pack(RULES, today=TODAY) if d.code not in ("R501", "R502")] == []


def test_the_versioned_fixture_pack_is_clean() -> None:
    assert [d.render() for d in check_pack(VERSIONED, today=TODAY)] == []


def test_a_superseded_version_is_not_overdue_for_review() -> None:
    """toy.limit 1.0.0 was due for review in 2024 but has not been in force since 2024-01-01."""
    assert all(d.code != "R206" for d in check_pack(VERSIONED, today=TODAY))


def test_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", str(VERSIONED), "--today", "2026-11-23"]) == 0
    assert capsys.readouterr().out == "0 error(s), 0 warning(s)\n"
    root = gallery_pack("R305", tmp_path)
    assert run(["check", str(root), "--format", "json", "--today", "2026-11-23"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["errors"], doc["warnings"]) == (1, 0)
    assert doc["diagnostics"][0] | {"file": ""} == {
        "code": "R305",
        "severity": "error",
        "file": "",
        "line": 18,
        "rule": "toy.limit",
        "message": "unit 'Gy' does not match the calculation planned_eqd2, which gives 'Gy EQD2'",
    }
    assert run(["check", str(gallery_pack("R206", tmp_path / "w")), "--today", "2026-11-23"]) == 0, (
        "a warning alone does not fail the check"
    )
    capsys.readouterr()
    assert run(["check", str(tmp_path / "nowhere")]) == 2
    assert "not a rule pack: pack.yaml is missing" in capsys.readouterr().err


@pytest.mark.skipif(not (RULES / "tables").is_dir(), reason="the pack has no knowledge-data tables to break")
def test_a_broken_knowledge_file_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    shutil.copytree(RULES, root)
    table = next((root / "tables").glob("*.yaml"))
    text = table.read_text(encoding="utf-8")
    table.write_text(text.replace("value:", "valu:", 1), encoding="utf-8")
    found = [d for d in check_pack(root, today=TODAY) if d.file == str(table)]
    assert [(d.code, "unknown field 'valu'" in d.message) for d in found] == [("R002", True)]
