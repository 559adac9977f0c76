"""`reirrad rules test`: runs the YAML test cases and fails on a failing case or missing coverage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from maint_helpers import VERSIONED, copy_pack, run
from reirrad.maint.testrun import run_tests


def test_the_fixture_pack_passes_with_full_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["test", str(VERSIONED), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["cases"], doc["runs"], doc["failures"]) == (True, 6, 12, [])
    assert doc["coverage"] == [
        {
            "rule": "toy.limit",
            "version": version,
            "kind": "constraint",
            "required": ["fail", "not_applicable", "pass"],
            "seen": ["fail", "not_applicable", "pass"],
            "missing": [],
            "in_force": True,
        }
        for version in ("1.0.0", "2.0.0")
    ]


def _drop_case(root: Path, name_start: str) -> None:
    path = root / "policies/toy/limit.cases.yaml"
    blocks = path.read_text(encoding="utf-8").split("\n  - name: ")
    kept = [b for b in blocks[1:] if not b.startswith(name_start)]
    assert len(kept) == len(blocks) - 2
    path.write_text("\n  - name: ".join([blocks[0], *kept]), encoding="utf-8")


def test_missing_coverage_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_pack(VERSIONED, tmp_path)
    _drop_case(root, "a first course")
    assert run(["test", str(root), "--engine", "oracle"]) == 1
    out = capsys.readouterr().out
    assert "toy.limit 2.0.0  constraint     fail, pass  MISSING not_applicable" in out
    assert out.endswith("5 case(s), 5 run(s), 0 failed; 1/2 rule version(s) in force fully covered\n")


def test_a_failing_case_fails_with_its_file_line_and_reason(tmp_path: Path) -> None:
    root = copy_pack(VERSIONED, tmp_path)
    path = root / "policies/toy/limit.cases.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("status: fail, value: 24.75", "status: pass, value: 24.75"),
        encoding="utf-8",
    )
    report = run_tests(root, ("oracle",))
    assert not report.ok
    [failure] = report.failures
    assert (Path(failure["file"]).name, failure["line"], failure["engine"]) == (
        "limit.cases.yaml",
        10,
        "oracle",
    )
    assert failure["failures"][0].startswith("toy.limit SpinalCord Dmax: status fail, expected pass")


def _new_version(root: Path, valid_from: str, limit: int) -> None:
    """toy.limit 3.0.0 from ``valid_from``; 2.0.0 kept beside it, closed on that date."""
    rule = root / "policies/toy/limit.yaml"
    text = rule.read_text(encoding="utf-8")
    (root / "policies/toy/limit@2.0.0.yaml").write_text(
        text.replace('valid_from: "2024-01-01"', f'valid_from: "2024-01-01"\nvalid_until: "{valid_from}"'),
        encoding="utf-8",
    )
    rule.write_text(
        text.replace("version: 2.0.0", "version: 3.0.0")
        .replace('valid_from: "2024-01-01"', f'valid_from: "{valid_from}"')
        .replace("value: 20}", f"value: {limit}}}"),
        encoding="utf-8",
    )


def test_a_new_rule_version_without_test_cases_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11: a new version left `rules test` reporting full coverage, the cases being dated 2026-11-23."""
    root = copy_pack(VERSIONED, tmp_path)
    _new_version(root, "2027-01-01", 20)
    cases = root / "policies/toy/limit.cases.yaml"
    cases.write_text(
        cases.read_text(encoding="utf-8").replace('as_of: "2024-01-01"', "version: 2.0.0"), encoding="utf-8"
    )
    assert run(["test", str(root), "--engine", "oracle"]) == 1
    out = capsys.readouterr().out
    assert "toy.limit 3.0.0  constraint     -  MISSING fail, not_applicable, pass" in out
    assert out.endswith("0 failed; 2/3 rule version(s) in force fully covered\n")


def test_cases_without_a_date_follow_the_latest_version(tmp_path: Path) -> None:
    """A case naming no date or version runs on the latest version's first day in force (here 2027-01-01), where
    the old expectations of 2.0.0 meet the new limit, and 2.0.0 is left untested."""
    root = copy_pack(VERSIONED, tmp_path)
    _new_version(root, "2027-01-01", 19)
    cases = root / "policies/toy/limit.cases.yaml"
    cases.write_text(
        cases.read_text(encoding="utf-8").replace('    as_of: "2024-01-01"\n', ""), encoding="utf-8"
    )
    report = run_tests(root, ("oracle",))
    assert not report.ok
    assert {f["name"] for f in report.failures} == {
        "on 2024-01-01 version 2.0.0 is in force and the same 24.75 Gy EQD2 exceeds its 20 Gy limit",
        "on 2024-01-01 exactly 20 Gy EQD2 meets the 2.0.0 limit",
    }
    assert all("limit 19.0, expected 20" in " ".join(f["failures"]) for f in report.failures)
    by_version = {c.version: c for c in report.coverage}
    assert by_version["2.0.0"].seen == []
    assert by_version["3.0.0"].seen == ["fail", "not_applicable", "pass"]


def test_a_case_naming_an_unknown_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_pack(VERSIONED, tmp_path)
    cases = root / "policies/toy/limit.cases.yaml"
    cases.write_text(
        cases.read_text(encoding="utf-8").replace("version: 1.0.0", "version: 1.5.0", 1), encoding="utf-8"
    )
    assert run(["test", str(root)]) == 2
    assert "toy.limit has no version 1.5.0 in force on any date" in capsys.readouterr().err
