"""Versions of a rule side by side: on each side of a valid_from date, the one in force is evaluated."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from maint_helpers import VERSIONED
from reirrad.cli.main import main as reirrad_main
from reirrad.knowledge.rulepack import load_pack
from reirrad.maint.versions import latest, parse_version, versions_by_id
from reirrad.testing.casetests import load_bases


@pytest.mark.parametrize(
    ("as_of", "version"),
    [
        (date(2019, 12, 31), None),
        (date(2020, 1, 1), "1.0.0"),
        (date(2023, 12, 31), "1.0.0"),
        (date(2024, 1, 1), "2.0.0"),
    ],
)
def test_select_picks_the_version_in_force(as_of: date, version: str | None) -> None:
    selected = load_pack(VERSIONED).select(as_of)
    assert [r.version for r in selected.rules] == ([version] if version else [])


def test_history_is_ordered_by_semantic_version() -> None:
    pack = load_pack(VERSIONED)
    assert [r.version for r in versions_by_id(pack.rules)["toy.limit"]] == ["1.0.0", "2.0.0"]
    assert latest(pack.rules)["toy.limit"].version == "2.0.0"
    assert parse_version("1.10.0") > parse_version("1.9.3")
    with pytest.raises(ValueError, match="not a version"):
        parse_version("1.0")


@pytest.mark.parametrize(
    ("as_of", "version", "limit", "status"),
    [
        ("2023-12-31", "1.0.0", 25.0, "pass"),
        ("2024-01-01", "2.0.0", 20.0, "fail"),
    ],
)
def test_evaluate_as_of_either_side_of_valid_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], as_of: str, version: str, limit: float, status: str
) -> None:
    case = load_bases(VERSIONED)["reirradiation"]
    case["planned_course"]["structures"]["SpinalCord"]["Dmax"] = 9.0
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(case), encoding="utf-8")
    code = reirrad_main(
        [
            "evaluate",
            str(path),
            "--rules",
            str(VERSIONED),
            "--as-of",
            as_of,
            "--format",
            "json",
            "--engine",
            "oracle",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    [line] = [
        c for c in result["constraints"] if c["rule_id"] == "toy.limit" and c["structure"] == "SpinalCord"
    ]
    assert (line["rule_version"], line["limit"], line["status"]) == (version, limit, status)
    assert line["value"] == pytest.approx(24.75)


def test_a_rule_past_its_review_date_is_detectable() -> None:
    """The reports flag a rule in force past its review_due (issue 11); the day itself is not overdue."""
    pack = load_pack(VERSIONED)
    old, new = sorted(pack.rules, key=lambda r: r.version)
    assert old.review_due == date(2024, 6, 1)
    assert not old.review_overdue(date(2024, 6, 1))
    assert old.review_overdue(date(2024, 6, 2))
    assert not new.review_overdue(date(2026, 11, 23))
