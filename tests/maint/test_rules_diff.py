"""`reirrad rules diff`: semantic diff by rule id, of directories or git refs, with the impact on a cohort."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from maint_helpers import VERSIONED, copy_pack, run
from reirrad.knowledge.rulepack import load_pack
from reirrad.maint.diff import diff_packs
from reirrad.testing.casetests import load_bases

LIMIT = "policies/toy/limit.yaml"


def _edit(path: Path, *pairs: tuple[str, str]) -> None:
    text = path.read_text(encoding="utf-8")
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def _clone(root: Path, name: str, *pairs: tuple[str, str]) -> Path:
    """Another rule made from toy.limit 2.0.0 (only its current version)."""
    path = root / f"policies/toy/{name}.yaml"
    shutil.copy(root / LIMIT, path)
    _edit(path, ("id: toy.limit", f"id: toy.{name}"), ("criterion: limit", f"criterion: {name}"), *pairs)
    (root / f"policies/toy/{name}.cases.yaml").write_text(
        (root / "policies/toy/limit.cases.yaml")
        .read_text(encoding="utf-8")
        .replace("toy.limit", f"toy.{name}"),
        encoding="utf-8",
    )
    return path


TABLE = (
    'limit: {operator: "<=", value: 20}',
    'limit:\n  operator: "<="\n  by: conus_position\n  table:\n    - {key: above, value: 75}\n'
    "    - {key: below, value: 106}",
)


@pytest.fixture
def packs(tmp_path: Path) -> tuple[Path, Path]:
    old = copy_pack(VERSIONED, tmp_path, "old")
    _clone(old, "table", TABLE)
    _clone(old, "wording")
    _clone(old, "logic")
    _clone(old, "gone")
    _clone(old, "retire")
    new = copy_pack(old, tmp_path, "new")
    _edit(new / LIMIT, ("value: 20}", "value: 18}"))
    _edit(
        new / "policies/toy/table.yaml",
        ("key: below, value: 106", "key: below, value: 100"),
        ("version: 2.0.0", "version: 2.1.0"),
    )
    _edit(
        new / "policies/toy/wording.yaml",
        ("from 2024 on.", "from 2024 onwards."),
        ("version: 2.0.0", "version: 2.0.1"),
    )
    _edit(
        new / "policies/toy/logic.yaml",
        (
            "applies_when: {fact: prior_course_count, gt: 0}",
            "applies_when:\n  all:\n    - {fact: prior_course_count, gt: 0}\n"
            "    - {fact: planned_stereotactic, eq: true}",
        ),
        ("quality_of_evidence: II", "quality_of_evidence: III"),
        ("version: 2.0.0", "version: 3.0.0"),
    )
    (new / "policies/toy/gone.yaml").unlink()
    _edit(
        new / "policies/toy/retire.yaml",
        ("status: active", "status: retired"),
        ("version: 2.0.0", "version: 2.0.1"),
    )
    _clone(new, "added")
    return old, new


def test_each_kind_of_change_is_reported_by_rule_id(packs: tuple[Path, Path]) -> None:
    diff = diff_packs(load_pack(packs[0]), load_pack(packs[1]))
    by_id = {r.rule: r for r in diff.rules}
    assert {k: r.status for k, r in by_id.items()} == {
        "toy.added": "added",
        "toy.gone": "removed",
        "toy.limit": "changed",
        "toy.logic": "changed",
        "toy.retire": "retired",
        "toy.table": "changed",
        "toy.wording": "changed",
    }
    limit = by_id["toy.limit"]
    assert [c.render() for c in limit.changes] == ["threshold: limit.value: 20 → 18"]
    assert (limit.old_version, limit.new_version, limit.version_bumped) == ("2.0.0", "2.0.0", False)
    table = by_id["toy.table"]
    assert [c.render() for c in table.changes] == ["threshold: limit.table[below]: 106 → 100"]
    assert table.version_bumped is True
    logic = by_id["toy.logic"]
    assert logic.categories == ["evidence", "logic"]
    assert [c.field for c in logic.changes] == ["applies_when", "evidence.quality_of_evidence"]
    wording = by_id["toy.wording"]
    assert (wording.categories, wording.wording_only) == (["wording"], True)
    assert [c.field for c in by_id["toy.retire"].changes] == ["status"]


def test_text_and_json_output(packs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["diff", str(packs[0]), str(packs[1])]) == 0
    text = capsys.readouterr().out
    assert (
        "CHANGED   toy.limit  2.0.0 → 2.0.0 — VERSION NOT BUMPED\n    threshold: limit.value: 20 → 18\n"
        in text
    )
    assert "CHANGED   toy.wording  2.0.0 → 2.0.1 (citation or wording only)\n" in text
    assert "REMOVED   toy.gone  2.0.0 → -\n" in text
    assert run(["diff", str(packs[0]), str(packs[1]), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["rule"] for r in doc["rules"]] == [
        "toy.added",
        "toy.gone",
        "toy.limit",
        "toy.logic",
        "toy.retire",
        "toy.table",
        "toy.wording",
    ]
    assert doc["rules"][2]["changes"] == [
        {"category": "threshold", "field": "limit.value", "old": 20, "new": 18}
    ]


def _case(dmax: float, case_id: str) -> dict[str, object]:
    case = load_bases(VERSIONED)["reirradiation"]
    case["case_id"] = case_id
    case["planned_course"]["structures"]["SpinalCord"]["Dmax"] = dmax
    return case


@pytest.mark.parametrize("form", ["jsonl", "directory"])
def test_impact_lists_exactly_the_cases_whose_verdict_changes(
    tmp_path: Path, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    old = copy_pack(VERSIONED, tmp_path, "old")
    new = copy_pack(VERSIONED, tmp_path, "new")
    _edit(new / LIMIT, ("value: 20}", "value: 18}"), ("version: 2.0.0", "version: 2.1.0"))
    cases = [_case(7.8, "changes"), _case(9.0, "fails-either-way"), _case(6.0, "passes-either-way")]
    if form == "jsonl":
        cohort = tmp_path / "cohort.jsonl"
        cohort.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    else:
        cohort = tmp_path / "cohort"
        cohort.mkdir()
        for c in cases:
            (cohort / f"{c['case_id']}.yaml").write_text(yaml.safe_dump(c), encoding="utf-8")
    assert (
        run(
            ["diff", str(old), str(new), "--impact", str(cohort), "--as-of", "2026-11-23", "--format", "json"]
        )
        == 0
    )
    impact = json.loads(capsys.readouterr().out)["impact"]
    assert (impact["cases"], [c["case_id"] for c in impact["changed"]]) == (3, ["changes"])
    [line] = impact["changed"][0]["lines"]
    assert line["line"] == "toy.limit SpinalCord Dmax"
    assert (
        line["before"]["status"],
        line["before"]["limit"],
        line["after"]["status"],
        line["after"]["limit"],
    ) == ("pass", 20.0, "fail", 18.0)
    assert line["after"]["value"] == pytest.approx(19.11)


def test_an_invalid_cohort_case_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text(json.dumps(_case(-1.0, "negative")) + "\n", encoding="utf-8")
    assert run(["diff", str(VERSIONED), str(VERSIONED), "--impact", str(cohort)]) == 2
    assert f"{cohort}:1" in capsys.readouterr().err


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_old_from_a_git_ref(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    rules = copy_pack(VERSIONED, repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "rules")
    _git(repo, "commit", "-q", "-m", "pack 1.1.0")
    _edit(rules / LIMIT, ("value: 20}", "value: 18}"))
    monkeypatch.chdir(repo)
    assert run(["diff", "HEAD", "rules"]) == 0
    assert "threshold: limit.value: 20 → 18" in capsys.readouterr().out
    assert run(["diff", "no-such-ref", "rules"]) == 2
    assert "not a pack directory, and git cannot read 'rules' at this ref" in capsys.readouterr().err


def test_a_changed_table_cell_is_named_with_old_and_new_value(tmp_path: Path) -> None:
    from maint_helpers import RULES

    old = copy_pack(RULES, tmp_path, "old")
    new = copy_pack(RULES, tmp_path, "new")
    table = new / "tables" / "kotecha-2020-table3.yaml"
    lines = table.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(
        i
        for i, line in enumerate(lines)
        if "row '30 Gy/10 fx (37.5 Gy [2/2])', column '18-24 Gy/1 fx'" in line
    )
    lines[at] = lines[at].replace("value: 9,", "value: 9.5,")
    table.write_text("".join(lines), encoding="utf-8")
    diff = diff_packs(load_pack(old), load_pack(new))
    assert [(c.field, c.old, c.new) for c in diff.data] == [
        ("tables/kotecha-2020-table3.yaml.rows[30gy-10fx].cells[0].value", 9, 9.5)
    ]
    assert all(r.status == "unchanged" for r in diff.rules)


def test_impact_lists_a_case_whose_recommendation_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from maint_helpers import RULES

    old = copy_pack(RULES, tmp_path, "old")
    new = copy_pack(RULES, tmp_path, "new")
    _edit(
        new / "recommendations/kotecha-2020/short-survival-conventional.yaml",
        ("{fact: expected_survival_months, lt: 6}", "{fact: expected_survival_months, lt: 12}"),
        ("version: 1.0.1", "version: 1.1.0"),
    )
    base = load_bases(RULES)["reirradiation"]
    cohort = tmp_path / "cohort.jsonl"
    cases = []
    for months in (3, 10, 14):
        case = json.loads(json.dumps(base))
        case["case_id"] = f"survival-{months}"
        case["patient"] = {"expected_survival_months": months}
        cases.append(case)
    cohort.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    assert (
        run(
            ["diff", str(old), str(new), "--impact", str(cohort), "--as-of", "2026-11-23", "--format", "json"]
        )
        == 0
    )
    impact = json.loads(capsys.readouterr().out)["impact"]
    assert [c["case_id"] for c in impact["changed"]] == ["survival-10"]
    [line] = impact["changed"][0]["lines"]
    assert line["line"] == "recommendation kotecha-2020.short-survival-conventional"
    assert (line["before"]["status"], line["after"]["status"]) == ("not_made", "made")
