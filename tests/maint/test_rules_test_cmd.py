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
    assert (doc["ok"], doc["cases"], doc["runs"], doc["failures"]) == (True, 4, 8, [])
    assert doc["coverage"] == [
        {
            "rule": "toy.limit",
            "kind": "constraint",
            "required": ["fail", "not_applicable", "pass"],
            "seen": ["fail", "not_applicable", "pass"],
            "missing": [],
        }
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
    assert "toy.limit  constraint     fail, pass  MISSING not_applicable" in out
    assert out.endswith("3 case(s), 3 run(s), 0 failed; 0/1 rule(s) fully covered\n")


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
