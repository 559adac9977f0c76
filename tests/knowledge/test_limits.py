"""`reirrad limits`: each policy's largest planned dose, derived from the rules' own parameters."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from knowledge_helpers import RULES, case_text, make_case, one_limit, run_cli, selected_pack, the_table
from reirrad.dose import radiobiology as rb
from reirrad.dose.limits import default_fractions, derive_limits, floor_cgy
from reirrad.knowledge.rulepack import load_pack

REQUIRED_KEYS = {
    "policy",
    "structure",
    "metric",
    "fractions",
    "max_dose",
    "unit",
    "binding_criterion",
    "rule_ids",
    "rule_versions",
    "steps",
}


def test_hytec_is_the_smallest_of_its_three_dose_criteria() -> None:
    lim = one_limit(make_case([{"dose": 30, "fractions": 10}]), "hytec", 5)
    by_rule = {c.rule_id: c.max_dose for c in lim.criteria}
    assert set(by_rule) == {"hytec.resbrt", "hytec.cumulative", "hytec.ratio"}
    assert by_rule["hytec.resbrt"] == pytest.approx(rb.max_dose_for_eqd2(25, 5, 2))
    assert by_rule["hytec.cumulative"] == pytest.approx(rb.max_dose_for_eqd2(70 - 37.5, 5, 2))
    assert by_rule["hytec.ratio"] == pytest.approx(rb.max_dose_for_eqd2(37.5, 5, 2))
    assert lim.max_dose == min(by_rule.values())  # type: ignore[type-var]
    assert lim.binding_criterion == "hytec.resbrt"
    assert [g.status for g in lim.gates] == ["pass"]
    assert any("d = (α/β / 2)" in s for s in lim.steps)


def test_the_derived_limit_is_exactly_on_the_rules_boundary() -> None:
    """Feeding the derived dose back through the forward formulas reaches the limits and no more."""
    lim = one_limit(make_case([{"dose": 50, "fractions": 25}]), "hytec", 3)
    assert lim.binding_criterion == "hytec.cumulative"
    assert lim.max_dose is not None
    assert rb.eqd2(50, 25, 2) + rb.eqd2(lim.max_dose, 3, 2) == pytest.approx(70.0)
    assert rb.eqd2(50, 25, 2) + rb.eqd2(floor_cgy(lim.max_dose), 3, 2) <= 70.0


def test_nelson_and_the_bed3_policy_credit_repair_by_interval() -> None:
    case = make_case([{"dose": 30, "fractions": 10}])  # 12.06 months before
    nelson = one_limit(case, "nelson", 1)
    effective = (1 - 1 / 3) * rb.eqd2(30, 10, 3)
    assert nelson.max_dose == pytest.approx(rb.max_dose_for_eqd2(50 - effective, 1, 3))
    bed3 = one_limit(case, "conus-bed3", 1)
    assert bed3.max_dose == pytest.approx(rb.max_dose_for_bed(75 - 0.5 * rb.bed(30, 10, 3), 1, 3))
    below = one_limit(make_case([{"dose": 30, "fractions": 10}], levels="[L3]"), "conus-bed3", 1)
    assert below.max_dose == pytest.approx(rb.max_dose_for_bed(106 - 0.5 * rb.bed(30, 10, 3), 1, 3))


def test_a_spent_budget_gives_zero_with_the_binding_criterion_and_a_failed_interval_is_a_gate() -> None:
    case = make_case([{"dose": 60, "fractions": 20, "end": "2024-11-01"}], planned_start="2025-01-20")
    hytec = one_limit(case, "hytec", 3)
    assert hytec.max_dose == 0.0
    assert hytec.binding_criterion == "hytec.cumulative"
    assert any("0 Gy" in s for s in hytec.steps)
    assert [(g.rule_id, g.status) for g in hytec.gates] == [("hytec.interval", "fail")]
    nelson = one_limit(case, "nelson", 3)
    assert (nelson.max_dose, nelson.binding_criterion) == (0.0, "nelson.cumulative")


def test_a_prior_course_without_the_structure_cannot_be_derived() -> None:
    case = make_case([{"dose": 30, "fractions": 10, "structures": {"SpinalCord": {"Dmax": 31}}}])
    lim = one_limit(case, "hytec", 2)
    assert lim.max_dose is None and lim.binding_criterion is None
    assert lim.missing[0].startswith("cannot be derived")
    assert any("gives no ThecalSac dose" in m for m in lim.missing)
    cord = one_limit(case, "hytec", 2, structure="SpinalCord")
    assert cord.max_dose == pytest.approx(rb.max_dose_for_eqd2(25, 2, 2))


def test_a_missing_metric_falls_back_to_the_prior_dmax() -> None:
    lim = one_limit(make_case([{"dose": 30, "fractions": 10}]), "hytec", 2, metric="D0.03cc")
    assert lim.max_dose is not None
    assert any("its Dmax is used" in s for s in lim.steps)


def test_lost_dosimetry_uses_the_assumption_only_where_it_applies() -> None:
    case = make_case(
        [{"dose": 30, "fractions": 10, "dosimetry": "unavailable"}],
        planned_structures="SpinalCord: {Dmax: 9.0}",
    )
    cord = one_limit(case, "nelson", 1, structure="SpinalCord")
    assert cord.assumptions == ["assumptions.missing-dosimetry"]
    assert cord.max_dose == pytest.approx(rb.max_dose_for_eqd2(50 - (2 / 3) * rb.eqd2(30, 10, 3), 1, 3))
    sac = one_limit(case, "nelson", 1, structure="ThecalSac")
    assert sac.max_dose is None and any("not ThecalSac" in m for m in sac.missing)


def test_without_a_prior_course_only_the_de_novo_limits_apply() -> None:
    report = derive_limits(make_case([]), selected_pack(), table=the_table())
    assert {lim.policy for lim in report.limits} == {"de-novo"}
    assert [lim.max_dose for lim in report.limits] == [12.4, 17.0, 20.3, 23.0, 25.3]
    assert {na["policy"] for na in report.not_applicable} == {"hytec", "nelson", "conus-bed3", "nieder"}
    assert report.row is not None and report.row.is_none
    assert report.published[0]["published"] == "12.4-14 Gy (cauda equina 16 Gy)"


def test_the_figures_come_from_the_rule_files(tmp_path: Path) -> None:
    """Change a limit, an α/β and a repair step in a copy of the pack: the derived limits follow."""
    pack_dir = tmp_path / "rules"
    shutil.copytree(RULES, pack_dir)
    resbrt = pack_dir / "policies" / "hytec" / "resbrt.yaml"
    resbrt.write_text(
        resbrt.read_text().replace('limit: {operator: "<=", value: 25}', 'limit: {operator: "<", value: 20}'),
        encoding="utf-8",
    )
    nelson = pack_dir / "policies" / "nelson" / "cumulative.yaml"
    nelson.write_text(
        nelson.read_text().replace("alpha_beta: 3, repair", "alpha_beta: 2, repair"), encoding="utf-8"
    )
    pack = load_pack(pack_dir).select(date(2025, 6, 1))
    case = make_case([{"dose": 30, "fractions": 10}])
    hytec = one_limit(case, "hytec", 1, pack=pack)
    assert hytec.max_dose == pytest.approx(rb.max_dose_for_eqd2(20, 1, 2))
    assert hytec.strict
    changed = one_limit(case, "nelson", 1, pack=pack)
    assert changed.max_dose == pytest.approx(rb.max_dose_for_eqd2(50 - (2 / 3) * rb.eqd2(30, 10, 2), 1, 2))


def test_rules_not_yet_in_force_give_no_limit() -> None:
    case = make_case([{"dose": 30, "fractions": 10}])
    report = derive_limits(case, load_pack(RULES).select(date(2011, 6, 1)), table=the_table())
    assert {lim.policy for lim in report.limits} == {"nelson", "conus-bed3"}


def test_an_unselected_pack_is_refused() -> None:
    with pytest.raises(ValueError, match="select"):
        derive_limits(make_case([]), load_pack(RULES))


def test_default_fractions_cover_one_to_five_and_the_tables_schedules() -> None:
    assert default_fractions(the_table()) == [1, 2, 3, 4, 5]
    assert default_fractions(None) == [1, 2, 3, 4, 5]


def test_floor_to_a_centigray_never_rounds_up() -> None:
    assert floor_cgy(9.0459) == 9.04
    assert floor_cgy(12.4) == 12.4
    assert floor_cgy(0.0) == 0.0


def test_json_output_has_every_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(case_text([{"dose": 20, "fractions": 5}]), encoding="utf-8")
    assert (
        run_cli(["limits", str(path), "--format", "json", "--as-of", "2025-06-01", "--fractions", "2"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["as_of"] == "2025-06-01" and out["table"]["row"]["id"] == "20gy-5fx"
    assert {lim["policy"] for lim in out["limits"]} == {"hytec", "nelson", "conus-bed3"}
    for lim in out["limits"]:
        assert set(lim) >= REQUIRED_KEYS
        assert lim["unit"] == "Gy" and lim["fractions"] == 2
        assert set(lim["rule_versions"]) == set(lim["rule_ids"])
        assert lim["steps"]


def test_several_prior_courses_match_no_table_row(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(
        case_text(
            [
                {"dose": 20, "fractions": 5, "start": "2022-01-03", "end": "2022-01-07"},
                {"dose": 8, "fractions": 1, "start": "2023-01-10", "end": "2023-01-10"},
            ]
        ),
        encoding="utf-8",
    )
    assert run_cli(["limits", str(path), "--format", "json", "--as-of", "2025-06-01"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["published_cells"] == []
    assert any("single earlier course" in n for n in out["notes"])
    hytec = [lim for lim in out["limits"] if lim["policy"] == "hytec" and lim["fractions"] == 1][0]
    assert any("prior course 2" in s for s in hytec["steps"])


def test_a_bad_case_is_refused_with_exit_code_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_cli(["limits", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: (document): file not found" in capsys.readouterr().err


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in (["--fractions", "0"], ["--structure", "Cord"], ["--as-of", "2025-13-01"]):
        with pytest.raises(SystemExit) as exc:
            run_cli(["limits", str(tmp_path / "x.yaml"), *argv])
        assert exc.value.code == 2
    assert "write YYYY-MM-DD" in capsys.readouterr().err


def test_text_output_is_a_table_per_policy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(case_text([{"dose": 50, "fractions": 25}]), encoding="utf-8")
    assert run_cli(["limits", str(path), "--as-of", "2025-06-01", "--fractions", "4"]) == 0
    text = capsys.readouterr().out
    assert "hytec  (rules: hytec.cumulative 1.0.1, hytec.ratio 1.0.1, hytec.resbrt 1.0.1)" in text
    line = next(s for s in text.splitlines() if s.strip().startswith("ThecalSac") and "hytec.cumulative" in s)
    assert line.split()[:5] == ["ThecalSac", "Dmax", "4", "14.33", "hytec.cumulative"]
    assert line.rstrip().endswith("14 Gy")
    assert "de-novo: not applicable" in text
