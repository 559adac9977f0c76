"""How sure each verdict is, why policies disagree, the headline by metric (issue 10, items 3-5)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from reirrad.case import load_case, parse_case
from reirrad.cli.main import main
from reirrad.evaluate import Evaluator
from reirrad.explain.report import render_markdown, render_text
from reirrad.knowledge.rulepack import load_pack

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
T1 = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"
AS_OF = date(2026, 11, 23)


def case(
    planned_dmax: float,
    start: str = "2016-09-01",
    prior: str = "{dose: 30, fractions: 10}",
    prior_dmax: float = 30.0,
) -> Any:
    return parse_case(
        f"""
schema: reirrad/case/v1
case_id: sensitivity
lesion: {{levels: [T8]}}
prior_courses:
  - {{start: "2014-12-15", end: "2015-01-01", technique: 3DCRT, prescription: {prior},
     structures: {{SpinalCord: {{Dmax: {prior_dmax}}}}}}}
planned_course:
  start: "{start}"
  technique: SBRT
  prescription: {{dose: 24, fractions: 1}}
  structures: {{SpinalCord: {{Dmax: {planned_dmax}}}}}
""",
        "sensitivity.yaml",
    )


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(load_pack(RULES), as_of=AS_OF)


def line(result: dict[str, Any], rule_id: str, metric: str | None = "Dmax") -> dict[str, Any]:
    (found,) = [e for e in result["constraints"] if e["rule_id"] == rule_id and e["metric"] == metric]
    return found


def test_exactly_70_gy_is_a_fragile_pass_naming_the_strict_reading(evaluator: Evaluator) -> None:
    # 50 Gy in 25 fx → EQD2(2) 50.0; 8 Gy in 1 fx → 20.0; cumulative exactly 70.0
    result = evaluator.evaluate(
        case(8.0, start="2015-06-03", prior="{dose: 50, fractions: 25}", prior_dmax=50.0)
    )
    cumulative = line(result, "hytec.cumulative")
    assert (cumulative["status"], cumulative["value"], cumulative["fragile"]) == ("pass", 70.0, True)
    assert cumulative["margin"] == {"value": 0.0, "percent": 0.0, "unit": "Gy EQD2"}
    assert [s["reading"] for s in cumulative["sensitivity"]] == ["readings.hytec-cumulative-strict"]
    text = render_text(result)
    assert (
        'hytec.cumulative SpinalCord Dmax: pass, fragile: fails under the strict reading of Lucido 2025 ("< 70 Gy")'
        in text
    )
    assert "pass (fragile)" in text
    made = {r["rule_id"]: r for r in result["recommendations"]}
    # the same reading would also turn over a recommendation that reads that verdict: at 5 months nothing is
    # forgiven, Nelson (67.6 Gy EQD2) and the BED policy (112.7 Gy BED) fail, so only HyTEC's pass keeps it unmade
    assert made["kotecha-2020.beyond-external-beam"]["fragile"] is True


def test_a_verdict_with_room_to_spare_is_not_fragile(evaluator: Evaluator) -> None:
    result = evaluator.evaluate(load_case(T1))
    assert not any(e.get("fragile") for e in result["constraints"])
    hytec = line(result, "hytec.cumulative", "D0.03cc")
    assert hytec["margin"] == {"value": 1.954, "percent": 2.79, "unit": "Gy EQD2"}  # 70 - 68.046
    assert line(result, "hytec.cumulative")["margin"]["value"] == pytest.approx(-3.296)


def test_an_interval_days_from_a_repair_step_is_flagged(evaluator: Evaluator) -> None:
    # 2015-01-01 → 2015-12-28 is 361 days = 11.86 months, 4 days before the 12-month steps
    result = evaluator.evaluate(case(8.0, start="2015-12-28"))
    assert any("4 day(s) before the 12-month step of repair.nelson-2009" in w for w in result["warnings"])
    assert any("the 12-month step of repair.conus-bed3" in w for w in result["warnings"])
    assert "close to a boundary" in render_text(result)
    far = evaluator.evaluate(case(8.0, start="2016-09-01"))
    assert far["warnings"] == []


def test_an_interval_a_day_past_the_5_month_gate_is_flagged(evaluator: Evaluator) -> None:
    result = evaluator.evaluate(case(8.0, start="2015-06-03"))  # 153 days = 5.03 months
    assert any("1 day(s) past the 5-month gate of hytec.interval" in w for w in result["warnings"])


def test_why_policies_disagree_from_the_computation(evaluator: Evaluator) -> None:
    # 20 months after 30 Gy / 10 fx: HyTEC caps the new course at 25 Gy EQD2 (9.5 Gy in 1 fx → 27.31) while
    # Nelson forgives one third (36 → 24, + 23.75 = 47.75 ≤ 50) and the BED policy half (30 + 39.58 ≤ 75)
    result = evaluator.evaluate(case(9.5))
    (disagreement,) = result["disagreements"]
    assert (disagreement["fail"], disagreement["pass"]) == (["hytec"], ["conus-bed3", "nelson"])
    assert "hytec caps the new course alone at ≤ 25 Gy EQD2 (27.31 here)" in disagreement["text"]
    assert "nelson forgives 33% of prior course 1 at 20.0 months" in disagreement["text"]
    assert "hytec forgives nothing of the earlier course" in disagreement["text"]
    assert "Why the policies disagree" in render_text(result)
    agreeing = evaluator.evaluate(case(5.0))
    assert agreeing["disagreements"] == []


def test_the_headline_by_metric(evaluator: Evaluator) -> None:
    result = evaluator.evaluate(load_case(T1))
    hytec = next(p for p in result["policy_summary"] if p["policy"] == "hytec")
    assert hytec["verdict"] == "fail"
    assert hytec["by_metric"] == {"Dmax": "fail", "D0.03cc": "pass"}
    assert "hytec: FAILS on Dmax, passes on D0.03cc" in render_text(result)
    assert "hytec: FAILS on Dmax, passes on D0.03cc" in render_markdown(result)


def test_evaluate_metric_restricts_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["evaluate", str(T1), "--as-of", "2026-11-23", "--metric", "D0.03cc", "--format", "json"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {e["metric"] for e in result["constraints"]} == {"D0.03cc", None}
    assert {p["policy"]: p["verdict"] for p in result["policy_summary"]}["hytec"] == "pass"


def test_evaluate_under_another_reading_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(T1), "--as-of", "2026-11-23", "--reading", "hytec-resbrt-strict"]) == 0
    out = capsys.readouterr().out
    assert 'Reading: evaluated under the strict reading of Lucido 2025 ("< 25 Gy")' in out
    assert "< 25 Gy EQD2" in out
    assert main(["evaluate", str(T1), "--reading", "hytec-resbrt-strict", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["reading"]["id"] == "readings.hytec-resbrt-strict"


def test_a_reading_that_does_not_exist_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(T1), "--reading", "hytec-lenient"]) == 2
    err = capsys.readouterr().err
    assert "no reading 'hytec-lenient' in the pack" in err
    assert "hytec-cumulative-strict" in err
    assert "Traceback" not in err


def test_a_reading_that_contradicts_its_rule_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = shutil.copytree(RULES, tmp_path / "rules")
    reading = pack / "readings" / "hytec-cumulative-strict.yaml"
    reading.write_text(
        reading.read_text(encoding="utf-8").replace(
            'default: "<=", alternative: "<"', 'default: "<", alternative: "<="'
        ),
        encoding="utf-8",
    )
    # the release gate refuses the edited pack first; allowed through it, the reading itself is refused
    assert main(["evaluate", str(T1), "--rules", str(pack)]) == 2
    assert "passes `reirrad rules check`" in capsys.readouterr().err
    assert main(["evaluate", str(T1), "--rules", str(pack), "--allow-unchecked-pack"]) == 2
    err = capsys.readouterr().err
    assert "hytec-cumulative-strict.yaml:9: touches[0].default: contradicts hytec.cumulative 1.0.1" in err
    assert "its limit.operator is '<=', not '<'" in err
    assert main(["rules", "check", str(pack)]) == 1
    assert "contradicts hytec.cumulative" in capsys.readouterr().out


def test_readings_of_rules_not_yet_in_force_are_left_out_not_refused() -> None:
    """An audit evaluates a 2024 treatment with the rules in force then: the lost-plan assumption (in force from
    2025-01-01) is not among them, so its reading has nothing to touch; a reading naming no rule at all is still
    refused (below)."""
    from reirrad.evaluate import _readings_of
    from reirrad.knowledge.rulepack import load_pack

    on = date(2024, 12, 31)
    selected = load_pack(RULES).select(on)
    assert "assumptions.missing-dosimetry" not in {r.id for r in selected.rules}
    assert _readings_of(selected)["lost-plan-thecal-sac"].touches == ()
    result = Evaluator(selected, as_of=on).evaluate(load_case(T1, as_of=on))
    assert result["case_id"] == "t1-chondrosarcoma"


def test_a_reading_of_a_rule_the_pack_does_not_have_is_refused(tmp_path: Path) -> None:
    from reirrad.errors import InputError
    from reirrad.knowledge.readings import load_readings
    from reirrad.knowledge.rulepack import load_pack

    pack = shutil.copytree(RULES, tmp_path / "rules")
    reading = pack / "readings" / "lost-plan-thecal-sac.yaml"
    reading.write_text(
        reading.read_text(encoding="utf-8").replace("assumptions.missing-dosimetry", "assumptions.lost-plan"),
        encoding="utf-8",
    )
    for loaded in (load_pack(pack), load_pack(pack).select(date(2026, 11, 23))):
        with pytest.raises(InputError, match="no rule 'assumptions.lost-plan' in the pack"):
            load_readings(pack, loaded)


def test_skipping_readings_that_cannot_flip_changes_no_answer(evaluator: Evaluator) -> None:
    """A reading that only makes a limit strict is evaluated only where a value sits on its limit (_can_flip): on
    the exact-70 case and on generated cases, the flips are the same with and without that shortcut."""
    from reirrad.testing.differential import generated_cases

    cases = [case(8.0, start="2015-06-03", prior="{dose: 50, fractions: 25}", prior_dmax=50.0), case(20.0)]
    cases += [c for _, _, c in generated_cases(150, seed=7, as_of=AS_OF)]
    found = 0
    for c in cases:
        prepared = evaluator.prepare(c)
        items = evaluator.evaluation(c).items
        fast = evaluator._flips(c, AS_OF, items, prepared.facts)
        slow = evaluator._flips(c, AS_OF, items, prepared.facts, prefilter=False)
        assert fast == slow, c.case_id
        found += bool(slow)
    assert found >= 1  # the exact-70 case flips: the comparison has something to compare
    strict = evaluator._alternatives_in_force()["hytec-cumulative-strict"]
    at_70 = cases[0]
    assert evaluator._can_flip(strict, evaluator.evaluation(at_70).items, evaluator.prepare(at_70).facts)
    assert not evaluator._can_flip(
        strict, evaluator.evaluation(cases[1]).items, evaluator.prepare(cases[1]).facts
    )


def test_no_reading_makes_a_computed_value_disappear(evaluator: Evaluator) -> None:
    """The alternative evaluation keeps the assumptions: without them a lost plan's cumulative sum was undecided
    under every reading (synthetic-0000015: hytec.cumulative 'fragile' under nelson-cumulative-strict)."""
    from reirrad.testing.differential import generated_cases

    checked = 0
    for _, _, c in generated_cases(150, seed=7, as_of=AS_OF):
        evaluation = evaluator.evaluation(c)
        values = {(i.rule.id, i.key): i.computed.value for i in evaluation.items}
        for key, flips in evaluation.sensitivity.items():
            for flip in flips:
                if values.get(key) is not None and flip.value is None:
                    assert any(t.target.startswith("assumptions.") for t in flip.reading.touches), (c.case_id, key)
        checked += any(p.dosimetry == "unavailable" for p in c.prior_courses)
    assert checked >= 5  # lost plans were among the cases


def conventional_after_lost_plan(thecal_sac_dmax: float) -> Any:
    return parse_case(
        f"""
schema: reirrad/case/v1
case_id: lost-plan-conventional
lesion: {{levels: [T8]}}
prior_courses:
  - {{start: "2014-12-15", end: "2015-01-01", technique: 3DCRT, prescription: {{dose: 30, fractions: 10}},
     dosimetry: unavailable}}
planned_course:
  start: "2016-09-01"
  technique: 3DCRT
  prescription: {{dose: 20, fractions: 10}}
  structures: {{ThecalSac: {{Dmax: {thecal_sac_dmax}}}}}
""",
        "lost-plan-conventional.yaml",
    )


def test_a_lost_plan_reading_reaches_every_rule_that_reads_earlier_doses(evaluator: Evaluator) -> None:
    """The largest single-course BED (nieder.course-max) reads the earlier course's dose too, so the lost-plan
    reading can decide it: the thecal sac's earlier dose is unknown under the pack's assumption (the cord alone) and
    30 Gy in 10 fx under the reading, BED(2) 30 · (1 + 3/2) = 75 Gy ≤ 98. It was missed when only cumulative sums
    and ratios were re-evaluated."""
    evaluation = evaluator.evaluation(conventional_after_lost_plan(20.0))
    (item,) = [i for i in evaluation.items if i.rule.id == "nieder.course-max" and i.structure == "ThecalSac"]
    assert item.status == "indeterminate"
    flips = evaluation.sensitivity[("nieder.course-max", item.key)]
    assert [(f.reading.name, f.status, f.value) for f in flips] == [("lost-plan-thecal-sac", "pass", 75.0)]


def test_the_values_under_the_readings_that_change_quantities_decide_what_is_evaluated(
    evaluator: Evaluator,
) -> None:
    """A reading that changes a quantity (months by the calendar, Nelson's 33 %, the first course's repair, the lost
    plan's thecal sac) is evaluated in full only when it changes the status of an item of a rule it changes
    (_changes_a_status). Over planned starts around the 5-month gate and the repair steps, and planned doses around
    the limits, the flips are the same with and without that shortcut, and each of those readings flips something."""
    cases = [conventional_after_lost_plan(20.0)]
    for day in range(25, 32):  # the 5-month gate: 1 June by the calendar, 2 June as days / 30.4375
        cases.append(case(8.0, start=f"2015-05-{day}"))
    for day in range(1, 5):
        cases.append(case(8.0, start=f"2015-06-0{day}"))
    for start in ("2015-12-30", "2016-01-02", "2016-06-30", "2016-09-01"):  # 12 months, Nelson's 33 % vs 1/3
        # EQD2(3) of 50 Gy in 25 fx is 50; one third forgiven leaves 33.33, 33 % leaves 33.5: a new d Gy in 1 fx,
        # d (d + 3) / 5, between 16.5 and 16.67 (d ≈ 7.71-7.74) passes under one reading and fails under the other
        for hundredth in range(766, 780):
            cases.append(case(hundredth / 100, start=start, prior="{dose: 50, fractions: 25}", prior_dmax=50.0))
    seen: set[str] = set()
    for c in cases:
        prepared, items = evaluator._items(c, None)
        fast = evaluator._flips(c, AS_OF, items, prepared.facts)
        slow = evaluator._flips(c, AS_OF, items, prepared.facts, prefilter=False)
        assert fast == slow, c.case_id
        seen |= {flip.reading.name for flips in slow.values() for flip in flips}
    assert {"months-by-calendar", "nelson-33-percent", "lost-plan-thecal-sac"} <= seen, seen


def test_every_calculation_that_reads_a_lost_plan_is_listed() -> None:
    """READS_EARLIER_COURSES decides which rules an assumption reading re-evaluates: every calculation of the pack
    that, on a case with a lost plan, applies the assumption (or says the plan is lost) is in it, and the others
    are not."""
    from reirrad.dose.calculations import READS_EARLIER_COURSES, compute_item

    pack = load_pack(RULES)
    lost = conventional_after_lost_plan(20.0)
    reads, seen = set(), set()
    for rule in pack.rules:
        if rule.quantity is None:
            continue
        seen.add(rule.quantity.calculation)
        for structure in ("SpinalCord", "ThecalSac"):
            computed = compute_item(lost, pack, rule, structure, "Dmax", date(2016, 9, 1))
            if computed.assumptions or any("plan data unavailable" in m for m in computed.missing):
                reads.add(rule.quantity.calculation)
    assert reads == READS_EARLIER_COURSES & seen
    assert "max_course_bed" in reads


def test_the_readings_from_the_cache_give_the_same_sensitivity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each reading's alternative (its pack, the rules it changes) is kept in the load cache: a second evaluator
    reads it from there and finds the same fragile verdicts as one that derives it; an edited reading is a miss."""
    monkeypatch.setenv("REIRRAD_CACHE_DIR", str(tmp_path / "cache"))
    at_70 = case(8.0, start="2015-06-03", prior="{dose: 50, fractions: 25}", prior_dmax=50.0)

    def fragile(evaluator: Evaluator) -> dict[str, Any]:
        result = evaluator.evaluate(at_70)
        return {e["rule_id"]: e.get("fragile") for e in result["constraints"] if e.get("fragile")}

    monkeypatch.setenv("REIRRAD_CACHE", "off")
    derived = fragile(Evaluator(load_pack(RULES), as_of=AS_OF))
    assert "hytec.cumulative" in derived  # the exact-70 case: the strict reading flips it
    monkeypatch.delenv("REIRRAD_CACHE")
    first = fragile(Evaluator(load_pack(RULES), as_of=AS_OF))
    assert list((tmp_path / "cache").glob("alternatives-*.pickle"))
    second = Evaluator(load_pack(RULES), as_of=AS_OF)
    assert first == fragile(second) == derived

    pack = shutil.copytree(RULES, tmp_path / "rules")
    strict = pack / "readings" / "hytec-cumulative-strict.yaml"
    strict.write_text(strict.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    before = set((tmp_path / "cache").glob("alternatives-*.pickle"))
    Evaluator(load_pack(pack), as_of=AS_OF).evaluate(at_70)
    assert len(set((tmp_path / "cache").glob("alternatives-*.pickle")) - before) == 1
