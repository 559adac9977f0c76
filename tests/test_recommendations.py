"""Recommendations and the NOMS/ACR assessment, end to end on the bundled pack: statuses, evidence levels, the facts
behind each, what is missing, and the JSON the result schema accepts."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from reirrad.case import case_problems
from reirrad.evaluate import Evaluator
from reirrad.explain.report import render_text
from reirrad.knowledge.rulepack import load_pack
from reirrad.load.validation import validator_for
from reirrad.load.yamlio import load_yaml_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = load_yaml_file(ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml")[0]


@pytest.fixture(scope="module")
def ev() -> Evaluator:
    from datetime import date

    return Evaluator(load_pack(ROOT / "rules"), as_of=date(2026, 11, 23))


def _run(ev: Evaluator, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    for dotted, value in changes.items():
        node = doc
        *head, last = dotted.split("__")
        for part in head:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    case, problems = case_problems(doc, {}, "test")
    assert case is not None, problems
    result = ev.evaluate(case)
    errors = sorted(validator_for("result.schema.json").iter_errors(result), key=str)
    assert not errors, errors[0].message
    return result


def _rec(result: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(r for r in result["recommendations"] if r["rule_id"] == rule_id)


def test_the_example_gets_the_isrs_recommendation_for_sbrt_after_conventional_rt_at_level_iii(
    ev: Evaluator,
) -> None:
    rec = _rec(_run(ev), "isrs-2017.sbrt-after-conventional")
    assert rec["status"] == "made"
    assert rec["evidence"]["quality_of_evidence"] == "III"
    assert rec["citations"][0]["doi"] == "10.3171/2017.2.SPINE16976"
    assert rec["multidisciplinary"] is True
    assert {"text": "most recent prior course is SBRT or SRS = no (no required)", "holds": True} in rec[
        "because"
    ]
    assert _rec(_run(ev), "isrs-2017.sbrt-after-sbrt")["status"] == "not_made"


def test_an_unstable_spine_calls_for_a_surgical_consultation_at_level_ii(ev: Evaluator) -> None:
    rec = _rec(_run(ev, lesion__sins=13), "isrs-2017.surgical-consultation")
    assert (rec["status"], rec["evidence"]["quality_of_evidence"]) == ("made", "II")
    assert "SINS total = 13 (≥ 7 required)" in [b["text"] for b in rec["because"]]


def test_sins_6_with_nothing_else_known_leaves_the_consultation_undecided_and_says_what_is_missing(
    ev: Evaluator,
) -> None:
    result = _run(ev, lesion__sins=6, lesion__bilsky_grade=None)
    rec = _rec(result, "isrs-2017.surgical-consultation")
    assert rec["status"] == "indeterminate"
    unknown = [b["text"] for b in rec["because"] if b["holds"] is None]
    assert "high-grade epidural disease (Bilsky 2 or 3): not provided" in unknown
    assert "high-grade epidural disease (Bilsky 2 or 3): not provided" in result["missing_data"]


def test_sins_6_with_every_feature_known_absent_makes_no_consultation(ev: Evaluator) -> None:
    result = _run(
        ev, lesion__sins=6, lesion__cord_compression_symptoms=False, lesion__pathologic_fracture=False
    )
    assert _rec(result, "isrs-2017.surgical-consultation")["status"] == "not_made"


def test_three_months_expected_survival_offers_8_gy_in_1_or_20_gy_in_5(ev: Evaluator) -> None:
    result = _run(ev, patient__expected_survival_months=3)
    rec = _rec(result, "kotecha-2020.short-survival-conventional")
    assert rec["status"] == "made"
    assert [(o["dose"], o["fractions"]) for o in rec["action"]["options"]] == [(8, 1), (20, 5)]
    assert rec["evidence"]["quality_of_evidence"] == "not graded"
    assert _rec(result, "kotecha-2020.longer-survival-sbrt")["status"] == "not_made"


def test_exactly_six_months_goes_with_the_longer_survival_recommendation(ev: Evaluator) -> None:
    result = _run(ev, patient__expected_survival_months=6)
    assert _rec(result, "kotecha-2020.short-survival-conventional")["status"] == "not_made"
    assert _rec(result, "kotecha-2020.longer-survival-sbrt")["status"] == "made"


def test_unknown_survival_decides_neither_approach(ev: Evaluator) -> None:
    result = _run(ev, patient__expected_survival_months=None)
    for rule_id in ("kotecha-2020.short-survival-conventional", "kotecha-2020.longer-survival-sbrt"):
        assert _rec(result, rule_id)["status"] == "indeterminate"
    assert "expected survival (months): not provided" in result["missing_data"]


def test_a_radioresistant_tumour_with_high_grade_compression_calls_for_surgical_evaluation(
    ev: Evaluator,
) -> None:
    result = _run(
        ev, patient__histology="metastatic clear cell renal cell carcinoma", lesion__bilsky_grade="3"
    )
    rec = _rec(result, "kotecha-2020.surgery-radioresistant-high-grade")
    assert rec["status"] == "made"
    assert "radioresistant histology = yes (yes required)" in [b["text"] for b in rec["because"]]
    oncologic = next(b for b in result["assessment"] if b["id"] == "oncologic")
    assert oncologic["flags"][0]["text"].startswith(
        "radioresistant histology: renal cell carcinoma (lucido-2025"
    )


def test_breast_carcinoma_is_on_neither_radioresistant_list(ev: Evaluator) -> None:
    result = _run(ev, patient__histology="breast carcinoma", lesion__bilsky_grade="3")
    assert _rec(result, "kotecha-2020.surgery-radioresistant-high-grade")["status"] == "not_made"
    oncologic = next(b for b in result["assessment"] if b["id"] == "oncologic")
    assert oncologic["flags"] == []


def test_a_not_made_chained_recommendation_names_the_outcome_that_blocked_it(ev: Evaluator) -> None:
    rec = _rec(_run(ev), "kotecha-2020.beyond-external-beam")
    assert rec["status"] == "not_made"
    blocked = [b["text"] for b in rec["because"] if b["holds"] is False]
    assert "hytec.cumulative: pass on SpinalCord D0.03cc (none may have pass)" in blocked


def test_the_assessment_lists_not_provided_items_as_missing_never_as_absent(ev: Evaluator) -> None:
    result = _run(ev)
    mechanical = next(b for b in result["assessment"] if b["id"] == "mechanical")
    fracture = next(i for i in mechanical["items"] if i["id"] == "mech-pathologic-fracture")
    assert fracture["status"] == "not_provided"
    assert (
        "assessment: mechanical — a pathologic fracture is present (lesion.pathologic_fracture)"
        in result["missing_data"]
    )
    result = _run(ev, lesion__pathologic_fracture=False)
    mechanical = next(b for b in result["assessment"] if b["id"] == "mechanical")
    assert next(i for i in mechanical["items"] if i["id"] == "mech-pathologic-fracture")["status"] == "absent"
    assert not any("pathologic fracture is present" in m for m in result["missing_data"])


def test_sins_components_give_the_total_and_its_category(ev: Evaluator) -> None:
    components = {
        "location": 3,
        "pain": 3,
        "bone_lesion": 2,
        "alignment": 2,
        "collapse": 2,
        "posterolateral": 1,
    }
    result = _run(ev, lesion__sins=None, lesion__sins_components=components)
    mechanical = next(b for b in result["assessment"] if b["id"] == "mechanical")
    texts = [f["text"] for f in mechanical["flags"]]
    assert "SINS 13: unstable" in texts
    assert "lytic lesion (SINS bone-lesion component 2)" in texts
    assert result["context"]["sins_total"] == 13


def test_sins_12_is_potentially_unstable_and_6_raises_no_flag(ev: Evaluator) -> None:
    flags = [f["text"] for b in _run(ev, lesion__sins=12)["assessment"] for f in b["flags"]]
    assert "SINS 12: potentially unstable" in flags
    flags = [f["text"] for b in _run(ev, lesion__sins=6)["assessment"] for f in b["flags"]]
    assert not any(f.startswith("SINS") for f in flags)


def test_the_text_report_shows_made_not_made_and_the_assessment(ev: Evaluator) -> None:
    text = render_text(_run(ev, patient__expected_survival_months=3))
    assert "[kotecha-2020.short-survival-conventional v1.0.1]" in text
    assert "Considered and not recommended" in text
    assert "Assessment (NOMS / ACR criteria)" in text
    assert "Flags: SINS 7: potentially unstable" in text


def test_the_text_report_reads_like_a_tumour_board_note(ev: Evaluator) -> None:
    text = render_text(_run(ev))
    order = [
        "\nRecommendations\n",
        "\nPolicies: ",
        "\nConsidered and not recommended\n",
        "\nMissing data\n",
        "\nAssessment (NOMS / ACR criteria)\n",
        "\nExplanations\n",
    ]
    positions = [text.index(heading) for heading in order]
    assert positions == sorted(positions)
    made = text[positions[0] : positions[1]]
    assert "Evidence: level II" in made and "Source: Myrehaug S 2017, doi:10.3171/2017.2.SPINE16976" in made


def test_the_rcc_example_gets_surgery_a_consultation_and_the_short_course_options(ev: Evaluator) -> None:
    from reirrad.case import load_case

    result = ev.evaluate(load_case(ROOT / "docs" / "examples" / "t8-rcc-unstable.yaml"))
    made = {r["rule_id"]: r for r in result["recommendations"] if r["status"] == "made"}
    assert {
        "isrs-2017.surgical-consultation",
        "kotecha-2020.surgery-radioresistant-high-grade",
        "kotecha-2020.short-survival-conventional",
        "myrehaug-2017.vcf-risk-spine-surgeon",
    } <= set(made)
    assert made["isrs-2017.surgical-consultation"]["evidence"]["quality_of_evidence"] == "II"
    flags = [f["text"] for b in result["assessment"] for f in b["flags"]]
    assert "SINS 14: unstable" in flags  # 1 + 3 + 2 + 2 + 3 + 3
    assert not [m for m in result["missing_data"] if m.startswith("assessment:")]  # every field given
    # the SBRT cord policies do not cover a conventional plan; the conventional policy (Nieder 2006) does
    verdicts = {p["policy"]: p["verdict"] for p in result["policy_summary"]}
    assert verdicts["hytec"] == "not_applicable"
    assert verdicts["nieder"] == "pass"


def test_a_policy_that_does_not_apply_is_named_as_such_in_a_chained_explanation(ev: Evaluator) -> None:
    from reirrad.case import load_case
    from reirrad.explain.report import render_markdown

    result = ev.evaluate(load_case(ROOT / "docs" / "examples" / "t8-rcc-unstable.yaml"))
    rec = _rec(result, "kotecha-2020.protracted-near-tolerance")
    assert rec["status"] == "not_made"
    assert {"text": "hytec.cumulative: not applicable to this case", "holds": False} in rec["because"]
    assert "no dose rule applies" not in render_text(result)  # the conventional policy applies
    assert "## Not applicable" in render_markdown(result)
