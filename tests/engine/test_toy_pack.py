"""Engine tests on the toy pack (tests/toy_pack): as-of selection, drafts, assumptions, explanations, Kleene logic,
limits derivation, and a scan that keeps the toy pack exercising every engine feature.

The toy pack's own ``*.cases.yaml`` run through the pytest plugin like the clinical ones; this module checks what
those cases cannot express (a rule absent on a date, drafts, whole explanation lists, truth tables, derived limits).
Every expected number is worked out by hand in the comment or the table beside it.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from reirrad.case import Case, case_problems
from reirrad.cli.main import main as reirrad_main
from reirrad.dose.limits import derive_limits, floor_cgy
from reirrad.evaluate import Evaluator
from reirrad.knowledge.rulepack import RulePack, load_pack
from reirrad.testing.casetests import CaseTest, discover, load_bases, load_case_tests

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "tests" / "toy_pack"
ENGINES = ("durable", "oracle")
TODAY = date(2026, 11, 23)
DAYS_PER_MONTH = 30.4375
"""365.25 / 12, the project's month (docs/radiobiology.md); written out here so the scan does not import it."""
RULE_FOLDERS = ("policies", "recommendations", "assumptions", "advisories")


# --- helpers ----------------------------------------------------------------------------------------------------


@cache
def toy_pack() -> RulePack:
    return load_pack(TOY)


@cache
def evaluator(as_of: date, engine: str, include_drafts: bool = False) -> Evaluator:
    """One evaluator per (date, engine, drafts): durable rulesets are registered once per process."""
    return Evaluator(toy_pack(), as_of=as_of, engine=engine, include_drafts=include_drafts)


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    elif value is None:
        node.pop(last, None)
    else:
        node[last] = value


def toy_document(base: str = "reirradiation", changes: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(load_bases(TOY)[base])
    for path, value in (changes or {}).items():
        _set(doc, path, copy.deepcopy(value))
    return doc


def toy_case(base: str = "reirradiation", changes: dict[str, Any] | None = None) -> Case:
    """A base case of tests/toy_pack/bases.cases.yaml with fields replaced ('/'-separated paths, None removes)."""
    case, problems = case_problems(toy_document(base, changes), {}, f"toy {base}")
    assert case is not None, [p.render() for p in problems]
    return case


def evaluate(
    changes: dict[str, Any] | None = None,
    *,
    engine: str,
    as_of: date = TODAY,
    base: str = "reirradiation",
    include_drafts: bool = False,
) -> dict[str, Any]:
    return evaluator(as_of, engine, include_drafts).evaluate(toy_case(base, changes))


def lines(result: dict[str, Any], rule_id: str) -> list[dict[str, Any]]:
    return [c for c in result["constraints"] + result["advisories"] if c["rule_id"] == rule_id]


def line(
    result: dict[str, Any], rule_id: str, structure: str | None = None, metric: str | None = None
) -> dict[str, Any]:
    (found,) = [c for c in lines(result, rule_id) if (c["structure"], c["metric"]) == (structure, metric)]
    return found


def recommendation(result: dict[str, Any], rule_id: str) -> dict[str, Any]:
    (found,) = [r for r in result["recommendations"] if r["rule_id"] == rule_id]
    return found


def because(result: dict[str, Any], rule_id: str) -> list[tuple[str, bool | None]]:
    return [(b["text"], b["holds"]) for b in recommendation(result, rule_id)["because"]]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- the pack is clean and collected ----------------------------------------------------------------------------


def test_rules_check_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code = reirrad_main(["rules", "check", str(TOY), "--today", TODAY.isoformat(), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert (code, report["errors"], report["warnings"]) == (0, 0, 0), report["diagnostics"]


def test_rules_test_covers_every_rule_on_both_engines(capsys: pytest.CaptureFixture[str]) -> None:
    code = reirrad_main(["rules", "test", str(TOY), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["failures"]
    assert report["runs"] == 2 * report["cases"]
    assert [c["rule"] for c in report["coverage"] if c["missing"] and c["in_force"]] == []
    # every version but the retired rule's, per version; the draft is reported, not required
    assert len(report["coverage"]) == 14
    assert [(c["rule"], c["version"]) for c in report["coverage"] if not c["in_force"]] == [("toy-dated.limit", "3.0.0")]


def test_pytest_collects_the_toy_cases() -> None:
    """The default test run reaches tests/toy_pack, and the plugin turns each case into one item per engine."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"][
        "ini_options"
    ]
    assert any(TOY.is_relative_to(ROOT / path) for path in options["testpaths"]), options["testpaths"]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(TOY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{2 * len(toy_case_tests())} tests collected" in collected


# --- as-of selection: versions, validity boundaries, drafts, retired --------------------------------------------

NINE_GY = {"planned_course/structures/SpinalCord": {"Dmax": 9.0}}
"""9 Gy in 1 fraction: EQD2(α/β 2) = 9 · (9 + 2) / (2 + 2) = 24.75 Gy."""

AS_OF = [
    # (as_of, include_drafts, version of toy-dated.limit in force, its limit, status of 24.75 Gy EQD2, citation)
    ("2015-12-31", False, None, None, None, None),
    ("2016-01-01", False, "1.0.0", 30.0, "pass", "toy-2016"),
    ("2016-01-02", False, "1.0.0", 30.0, "pass", "toy-2016"),
    ("2021-12-31", False, "1.0.0", 30.0, "pass", "toy-2016"),
    ("2022-01-01", False, "2.0.0", 20.0, "fail", "toy-2022"),
    ("2022-01-02", False, "2.0.0", 20.0, "fail", "toy-2022"),
    ("2029-12-31", False, "2.0.0", 20.0, "fail", "toy-2022"),
    ("2030-01-01", False, None, None, None, None),
    ("2030-01-02", False, None, None, None, None),
    ("2015-12-31", True, None, None, None, None),
    ("2029-12-31", True, "2.0.0", 20.0, "fail", "toy-2022"),
    ("2030-01-01", True, "3.0.0", 12.0, "fail", "toy-2030"),
    ("2030-01-02", True, "3.0.0", 12.0, "fail", "toy-2030"),
]
DATED_REC = {"pass": "not_made", "fail": "made", None: "indeterminate"}
"""toy.dated-rec is 'after an earlier course and not (toy-dated.limit passes)': a pass blocks it, a fail makes it,
a rule not in force leaves it unknown."""


@pytest.mark.parametrize(("as_of", "drafts", "version", "limit", "status", "ref"), AS_OF)
def test_as_of_selects_the_version_in_force(
    engine: str,
    as_of: str,
    drafts: bool,
    version: str | None,
    limit: float | None,
    status: str | None,
    ref: str | None,
) -> None:
    result = evaluate(NINE_GY, engine=engine, as_of=date.fromisoformat(as_of), include_drafts=drafts)
    assert result["rule_pack"]["as_of"] == as_of
    found = lines(result, "toy-dated.limit")
    rec = recommendation(result, "toy.dated-rec")
    assert rec["status"] == DATED_REC[status]
    if version is None:
        assert found == []
        assert ("toy-dated.limit: not in force on this date (none may have pass)", None) in because(
            result, "toy.dated-rec"
        )
        return
    (entry,) = found
    assert (entry["rule_version"], entry["limit"], entry["status"]) == (version, limit, status)
    assert entry["value"] == pytest.approx(24.75, abs=1e-9)
    assert [c["ref"] for c in entry["citations"]] == [ref]


def test_as_of_table_covers_every_validity_boundary() -> None:
    """Each valid_from / valid_until of toy-dated.limit is tested on the day before, of and after."""
    rows = {(date.fromisoformat(d), drafts) for d, drafts, *_ in AS_OF}
    versions = [data for _, data in toy_files() if data.get("id") == "toy-dated.limit"]
    assert sorted(v["version"] for v in versions) == ["1.0.0", "2.0.0", "3.0.0"]
    for data in versions:
        drafts = data["status"] == "draft"
        for key in ("valid_from", "valid_until"):
            if key in data:
                day = date.fromisoformat(data[key])
                for near in (day - timedelta(days=1), day, day + timedelta(days=1)):
                    assert (near, drafts) in rows, (data["version"], key, near)


def test_draft_is_evaluated_only_when_drafts_are_asked_for(engine: str) -> None:
    # 3.0.0 (draft): EQD2 ≤ 12 Gy. 6 Gy in 1 fx: 6 · (6 + 2) / 4 = 12.0 → pass on the boundary;
    # 6.1 Gy: 6.1 · 8.1 / 4 = 12.3525 → fail.
    day = date(2030, 1, 1)
    assert lines(evaluate(engine=engine, as_of=day), "toy-dated.limit") == []
    at_limit = line(
        evaluate(
            {"planned_course/structures/SpinalCord": {"Dmax": 6.0}},
            engine=engine,
            as_of=day,
            include_drafts=True,
        ),
        "toy-dated.limit",
        "SpinalCord",
        "Dmax",
    )
    over = line(
        evaluate(
            {"planned_course/structures/SpinalCord": {"Dmax": 6.1}},
            engine=engine,
            as_of=day,
            include_drafts=True,
        ),
        "toy-dated.limit",
        "SpinalCord",
        "Dmax",
    )
    assert (at_limit["rule_version"], at_limit["status"], at_limit["value"]) == ("3.0.0", "pass", 12.0)
    assert (over["status"], over["value"]) == ("fail", pytest.approx(12.3525, abs=1e-9))


def test_retired_rule_is_never_in_force(engine: str) -> None:
    retired = [r for r in toy_pack().rules if r.id == "toy-dated.retired"]
    assert [r.status for r in retired] == ["retired"]  # loaded, so its absence below is selection's doing
    for day in (date(2016, 1, 1), TODAY, date(2031, 1, 1)):
        for drafts in (False, True):
            assert lines(evaluate(engine=engine, as_of=day, include_drafts=drafts), "toy-dated.retired") == []


def test_an_overlapping_draft_previews_in_place_of_the_active_version(tmp_path: Path) -> None:
    """Decision: with include_drafts a draft previews in place of the active version it overlaps (the other
    reading, refusing the overlap, would contradict the lint, which exempts drafts from R104)."""
    root = shutil.copytree(TOY, tmp_path / "toy_pack")
    active = root / "policies" / "toy-dated" / "limit@2.0.0.yaml"
    active.write_text(
        active.read_text(encoding="utf-8").replace('valid_until: "2030-01-01"\n', ""), encoding="utf-8"
    )
    result = Evaluator(
        load_pack(root), as_of=date(2030, 1, 1), engine="oracle", include_drafts=True
    ).evaluate(toy_case())
    assert line(result, "toy-dated.limit", "SpinalCord", "Dmax")["rule_version"] == "3.0.0"


# --- assumptions --------------------------------------------------------------------------------------------------

LOST_PLAN = {"prior_courses/0/structures": None, "prior_courses/0/dosimetry": "unavailable"}


def test_assumption_is_used_by_every_cumulative_sum_and_says_so(engine: str) -> None:
    # assumed: 40 Gy in 20 fx on the cord, a quarter repaired at 16 months.
    # EQD2: 0.75 · 40 + 20 = 50; BED(α/β 4): 0.75 · 60 + 24 = 69; share: 20 / 50 = 0.4.
    result = evaluate(LOST_PLAN, engine=engine)
    (assumption,) = result["assumptions"]
    assert (assumption["rule_id"], assumption["status"]) == ("assumptions.toy-lost-plan", "applied")
    assert assumption["used_by"] == [
        "toy-course.max SpinalCord/Dmax",
        "toy.cumulative-bed SpinalCord/Dmax",
        "toy.cumulative-eqd2 SpinalCord/Dmax",
        "toy.ratio SpinalCord/Dmax",
    ]
    # the largest single course takes no repair: the assumed 40 Gy in 20 fx is 60 Gy BED(α/β 4)
    for rule_id, value in (
        ("toy.cumulative-eqd2", 50.0),
        ("toy.cumulative-bed", 69.0),
        ("toy.ratio", 0.4),
        ("toy-course.max", 60.0),
    ):
        entry = line(result, rule_id, "SpinalCord", "Dmax")
        assert entry["value"] == pytest.approx(value, abs=1e-9)
        assert entry["assumptions"] == ["assumptions.toy-lost-plan"]
    # a rule that reads no earlier dose does not use it
    assert line(result, "toy.planned-max", "SpinalCord", "Dmax")["assumptions"] == []


def test_assumption_not_applying_and_not_in_force(engine: str) -> None:
    with_data = evaluate(engine=engine)
    assert [(a["status"], a["used_by"]) for a in with_data["assumptions"]] == [("not_applicable", [])]
    before = evaluate(LOST_PLAN, engine=engine, as_of=date(2017, 12, 31))
    assert before["assumptions"] == []
    entry = line(before, "toy.cumulative-eqd2", "SpinalCord", "Dmax")
    assert entry["status"] == "indeterminate"
    assert any("no missing-dosimetry assumption is in force" in m for m in entry["missing"])


def test_a_second_assumption_rule_covers_what_the_first_does_not(tmp_path: Path) -> None:
    root = shutil.copytree(TOY, tmp_path / "toy_pack")
    first = yaml.safe_load((root / "assumptions" / "toy-lost-plan.yaml").read_text(encoding="utf-8"))
    second = {
        **first,
        "id": "assumptions.toy-lost-vmat",
        "title": "Toy lost VMAT plan — a lost VMAT plan gave the cord its prescription dose",
        "assumption": {
            "course_techniques": ["VMAT"],
            "structures": ["SpinalCord"],
            "assumed_dose": "prescription",
        },
    }
    (root / "assumptions" / "toy-lost-vmat.yaml").write_text(yaml.safe_dump(second), encoding="utf-8")
    # VMAT, which the first rule does not cover (a 20-fraction SBRT course is refused as implausible)
    case = toy_case(changes={**LOST_PLAN, "prior_courses/0/technique": "VMAT"})
    result = Evaluator(load_pack(root), as_of=TODAY, engine="oracle").evaluate(case)
    entry = line(result, "toy.cumulative-eqd2", "SpinalCord", "Dmax")
    # the VMAT plan's 40 Gy in 20 fx assumed on the cord: 0.75 · 40 + 20 = 50
    assert (entry["status"], entry["value"], entry["assumptions"]) == (
        "pass",
        50.0,
        ["assumptions.toy-lost-vmat"],
    )


# --- explanations: which leaves held ------------------------------------------------------------------------------


def test_stage_one_recommendation_lists_every_leaf_with_its_truth(engine: str) -> None:
    result = evaluate({"patient/expected_survival_months": 4}, engine=engine)
    assert recommendation(result, "toy.case-rec")["status"] == "made"
    assert because(result, "toy.case-rec") == [
        ("number of earlier courses over the lesion = 1 (= 1 required)", True),
        ("number of earlier courses over the lesion = 1 (= 2 required)", False),
        ("expected survival (months) = 4 (< 6 required)", True),
        ("ECOG performance status: not provided", None),
        ("not (vertebral compression fracture at baseline = no (yes required))", True),
    ]
    assert recommendation(result, "toy.case-rec")["explanation"] == (
        "MADE — number of earlier courses over the lesion = 1 (= 1 required); expected survival (months) = 4 "
        "(< 6 required); not (vertebral compression fracture at baseline = no (yes required)). "
        "Source: toy-source (toy recommendation 1)."
    )


def test_undecided_recommendation_names_the_unknown_leaves(engine: str) -> None:
    result = evaluate({"patient/expected_survival_months": 12}, engine=engine)
    rec = recommendation(result, "toy.case-rec")
    assert rec["status"] == "indeterminate"
    assert rec["explanation"].startswith("UNDECIDED — ECOG performance status: not provided. ")
    assert "ECOG performance status: not provided" in result["missing_data"]


@pytest.mark.parametrize(
    ("changes", "status", "expected"),
    [
        (
            # 30 + 8.1 · 10.1 / 4 = 50.4525 > 50 fails; 16.0 ≥ 16 passes
            {"planned_course/structures/SpinalCord": {"Dmax": 8.1}},
            "made",
            [
                ("toy.cumulative-eqd2: fail on SpinalCord Dmax", True),
                ("toy.interval: no item fails (none may have fail)", True),
            ],
        ),
        (
            # 486 days: 40 + 20 = 60 > 50 fails, 15.97 < 16 fails
            {"planned_course/start": "2021-05-01"},
            "not_made",
            [
                ("toy.cumulative-eqd2: fail on SpinalCord Dmax", True),
                ("toy.interval: fail on (case) (none may have fail)", False),
            ],
        ),
        (
            # the earlier course gives no cord dose: the cumulative sum is undecided
            {"prior_courses/0/structures": {"ThecalSac": {"Dmax": 40.0}}},
            "indeterminate",
            [
                ("toy.cumulative-eqd2: no item has fail, but SpinalCord Dmax could not be decided", None),
                ("toy.interval: no item fails (none may have fail)", True),
            ],
        ),
    ],
)
def test_chained_recommendation_lists_the_outcomes_it_read(
    engine: str, changes: dict[str, Any], status: str, expected: list[tuple[str, bool | None]]
) -> None:
    result = evaluate(changes, engine=engine)
    assert recommendation(result, "toy.chained-rec")["status"] == status
    assert because(result, "toy.chained-rec") == expected


def test_constraint_explanations_name_only_the_leaves_behind_the_status(engine: str) -> None:
    unknown = line(
        evaluate({"lesion/cord_compression_symptoms": None}, engine=engine),
        "toy.planned-max",
        "SpinalCord",
        "Dmax",
    )
    assert unknown["status"] == "indeterminate"
    assert unknown["explanation"].startswith(
        "INDETERMINATE — cannot be decided: not (symptoms of cord, root or cauda equina compression: not provided)."
    )
    assert "SBRT or SRS" not in unknown["explanation"]  # the leaf that held is not a reason
    outside = line(
        evaluate(
            {"planned_course/technique": "IMRT", "planned_course/prescription": {"dose": 20, "fractions": 5}},
            engine=engine,
        ),
        "toy.planned-max",
        "SpinalCord",
        "Dmax",
    )
    assert outside["explanation"] == (
        "NOT APPLICABLE — does not apply: the planned course is SBRT or SRS = no (yes required). "
        "Source: toy-source (toy rule 2)."
    )


def test_limit_note_and_repair_steps_reach_the_result(engine: str) -> None:
    two = line(
        evaluate(
            {
                "planned_course/prescription": {"dose": 30, "fractions": 2},
                "planned_course/structures/SpinalCord": {"Dmax": 13.0},
            },
            engine=engine,
        ),
        "toy.planned-max",
        "SpinalCord",
        "Dmax",
    )
    assert (two["status"], two["limit"], two["limit_note"]) == ("pass", 14.0, "toy row for two fractions")
    cumulative = line(evaluate(engine=engine), "toy.cumulative-eqd2", "SpinalCord", "Dmax")
    assert cumulative["inputs"]["prior_1"] == {
        "dose_gy": 40.0,
        "fractions": 20,
        "eqd2_gy": 40.0,
        "interval_months": 16.0,
        "repaired_fraction": 0.25,
        "effective_gy": 30.0,
    }
    assert cumulative["steps"][-1] == "cumulative EQD2 = 50.00 Gy"


# --- Kleene logic: unknown is never read as false, and never passes -----------------------------------------------


def _and(*values: bool | None) -> bool | None:
    if False in values:
        return False
    return None if None in values else True


def _or(*values: bool | None) -> bool | None:
    if True in values:
        return True
    return None if None in values else False


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _case_rec(priors: int, survival: float | None, ecog: int | None, fracture: bool | None) -> bool | None:
    """toy.case-rec's applies_when, transcribed by hand."""
    return _and(
        priors in (1, 2),
        _or(None if survival is None else survival < 6, None if ecog is None else ecog >= 3),
        _not(None if fracture is None else fracture is True),
    )


PRIOR = {
    "start": "2019-12-05",
    "end": "2020-01-01",
    "technique": "3DCRT",
    "prescription": {"dose": 40, "fractions": 20},
    "structures": {"SpinalCord": {"Dmax": 40.0}},
}
KLEENE_GRID = [
    (priors, survival, ecog, fracture)
    for priors in (0, 1, 3)
    for survival in (None, 4, 6)
    for ecog in (None, 2, 3)
    for fracture in (None, False, True)
]


@pytest.mark.parametrize(("priors", "survival", "ecog", "fracture"), KLEENE_GRID)
def test_stage_one_recommendation_follows_kleene_logic(
    engine: str, priors: int, survival: float | None, ecog: int | None, fracture: bool | None
) -> None:
    changes: dict[str, Any] = {
        "prior_courses": [PRIOR] * priors,
        "patient/expected_survival_months": survival,
        "patient/ecog": ecog,
        "lesion/pathologic_fracture": fracture,
    }
    status = recommendation(evaluate(changes, engine=engine), "toy.case-rec")["status"]
    assert (
        status
        == {True: "made", False: "not_made", None: "indeterminate"}[
            _case_rec(priors, survival, ecog, fracture)
        ]
    )


@pytest.mark.parametrize("ptv_dmin", [14.0, 15.0, 16.0])
def test_unknown_applicability_is_never_a_pass(engine: str, ptv_dmin: float) -> None:
    """The advisory's value is computed (16 > 15 would pass) but Bilsky is not recorded: undecided either way."""
    result = evaluate({"lesion/bilsky_grade": None, "planned_course/ptv_high_dmin": ptv_dmin}, engine=engine)
    entry = line(result, "advisories.toy-coverage")
    assert (entry["status"], entry["value"]) == ("indeterminate", ptv_dmin)


# --- both engines give the same result on every toy case ----------------------------------------------------------


def toy_case_tests() -> list[CaseTest]:
    bases = load_bases(TOY)
    return [test for path in discover(TOY) for test in load_case_tests(path, bases)]


@pytest.mark.parametrize("test", toy_case_tests(), ids=lambda t: f"{t.file.stem.split('.')[0]}: {t.name}")
def test_durable_and_oracle_agree_on_the_whole_result(test: CaseTest) -> None:
    case, problems = case_problems(test.document, {}, test.name)
    assert case is not None, problems
    durable = evaluator(test.as_of, "durable").evaluate(case)
    oracle = evaluator(test.as_of, "oracle").evaluate(case)
    assert durable.pop("engine")["name"] != oracle.pop("engine")["name"]
    assert durable == oracle


# --- limits derivation: the largest planned dose by fractions -----------------------------------------------------

# Case: the base below the conus (L2, BED limit 70), 16.0 months after 40 Gy in 20 fx, a quarter repaired.
#  toy.cumulative-eqd2: 50 − 0.75 · 40 = 20 Gy EQD2 left = 40 Gy BED(α/β 2); n·d·(1 + d/2) = 40 → d = −1 + √(1 + 80/n)
#  toy.cumulative-bed:  70 − 0.75 · 60 = 25 Gy BED(α/β 4) left;  n·d·(1 + d/4) = 25 → d = 2·(−1 + √(1 + 25/n))
#  toy.ratio: new ≤ 0.5 / (1 − 0.5) · 30 = 30 Gy EQD2 = 60 Gy BED(α/β 2) → d = −1 + √(1 + 120/n)
#  toy.planned-max: the table's row (10, 14, 18 Gy for 1, 2, 3 fractions; none for 5), strict
# n = 1: 8 · 1 = 8 | 2 · (√26 − 1) = 8.198039 | √121 − 1 = 10 | 10
# n = 2: 2 · (√41 − 1) = 10.806248 | 2 · 2 · (√13.5 − 1) = 10.696938 | 2 · (√61 − 1) = 13.620499 | 14
# n = 3: 3 · (√(83/3) − 1) = 12.779734 | 3 · 2 · (√(28/3) − 1) = 12.330303 | 3 · (√41 − 1) = 16.209373 | 18
# n = 5: 5 · (√17 − 1) = 15.615528 | 5 · 2 · (√6 − 1) = 14.494897 | 5 · (√25 − 1) = 20 | no row
Derived = tuple[float | None, str | None, bool, dict[str, float | None]]
DERIVED: dict[int, Derived] = {
    # n: (policy maximum, binding criterion, strict, {criterion: its maximum})
    1: (
        8.0,
        "toy.cumulative-eqd2",
        False,
        {
            "toy.cumulative-eqd2": 8.0,
            "toy.cumulative-bed": 8.198039,
            "toy.ratio": 10.0,
            "toy.planned-max": 10.0,
        },
    ),
    2: (
        10.696938,
        "toy.cumulative-bed",
        True,
        {
            "toy.cumulative-eqd2": 10.806248,
            "toy.cumulative-bed": 10.696938,
            "toy.ratio": 13.620499,
            "toy.planned-max": 14.0,
        },
    ),
    3: (
        12.330303,
        "toy.cumulative-bed",
        True,
        {
            "toy.cumulative-eqd2": 12.779734,
            "toy.cumulative-bed": 12.330303,
            "toy.ratio": 16.209373,
            "toy.planned-max": 18.0,
        },
    ),
    5: (
        None,
        None,
        False,
        {
            "toy.cumulative-eqd2": 15.615528,
            "toy.cumulative-bed": 14.494897,
            "toy.ratio": 20.0,
            "toy.planned-max": None,
        },
    ),
}
# toy-dated.limit 2.0.0 (in force on 2026-11-23): new EQD2 ≤ 20 with no earlier dose, the same d as the EQD2 row.
DERIVED_DATED = {1: 8.0, 2: 10.806248, 3: 12.779734, 5: 15.615528}
BELOW_CONUS = {"lesion/levels": ["L2"]}


def test_derived_limits_match_the_hand_computed_figures() -> None:
    report = derive_limits(toy_case(changes=BELOW_CONUS), toy_pack().select(TODAY), fractions=[1, 2, 3, 5])
    toy = {lim.fractions: lim for lim in report.limits if lim.policy == "toy"}
    assert sorted(toy) == [1, 2, 3, 5]
    for n, (maximum, binding, strict, criteria) in DERIVED.items():
        lim = toy[n]
        assert (lim.structure, lim.metric, lim.binding_criterion, lim.strict) == (
            "SpinalCord",
            "Dmax",
            binding,
            strict,
        )
        assert lim.max_dose == (None if maximum is None else pytest.approx(maximum, abs=1e-6))
        got = {c.rule_id: c.max_dose for c in lim.criteria}
        assert got == {k: (None if v is None else pytest.approx(v, abs=1e-6)) for k, v in criteria.items()}
        assert [(g.rule_id, g.status, g.value, g.limit) for g in lim.gates] == [
            ("toy.interval", "pass", 16.0, 16.0)
        ]
    assert toy[2].as_dict()["max_dose"] == 10.69  # shown rounded down to 0.01 Gy, and marked strict
    assert toy[5].missing[:2] == [
        "cannot be derived: toy.planned-max lack(s) an input",
        "toy.planned-max: the rule gives no limit for planned_fractions = 5",
    ]
    dated = {lim.fractions: lim.max_dose for lim in report.limits if lim.policy == "toy-dated"}
    assert dated == {n: pytest.approx(v, abs=1e-6) for n, v in DERIVED_DATED.items()}


@pytest.mark.parametrize(("fractions", "prescription"), [(1, 24), (2, 30), (3, 27)])
def test_a_plan_at_the_derived_limit_passes_the_policy(
    engine: str, fractions: int, prescription: float
) -> None:
    maximum, *_ = DERIVED[fractions]
    assert maximum is not None
    shown = floor_cgy(maximum)
    result = evaluate(
        {
            **BELOW_CONUS,
            "planned_course/prescription": {"dose": prescription, "fractions": fractions},
            "planned_course/structures/SpinalCord": {"Dmax": shown},
        },
        engine=engine,
    )
    statuses = {c["rule_id"]: c["status"] for c in result["constraints"] if c["policy"] == "toy"}
    assert statuses == dict.fromkeys(
        ("toy.interval", "toy.planned-max", "toy.cumulative-eqd2", "toy.cumulative-bed", "toy.ratio"), "pass"
    )


# --- the toy pack keeps exercising every engine feature -----------------------------------------------------------


@cache
def toy_files() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Every rule and repair file of the toy pack as written (read here, not through the engine's models)."""
    return tuple(
        (path.relative_to(TOY), yaml.safe_load(path.read_text(encoding="utf-8")))
        for path in sorted(TOY.rglob("*.yaml"))
        if path.relative_to(TOY).parts[0] in (*RULE_FOLDERS, "repair")
        and not path.name.endswith(".cases.yaml")
    )


def _nodes(condition: Any) -> Iterator[dict[str, Any]]:
    if isinstance(condition, dict):
        yield condition
        for key in ("all", "any"):
            for child in condition.get(key, ()):
                yield from _nodes(child)
        if "not" in condition:
            yield from _nodes(condition["not"])


def _months(doc: dict[str, Any]) -> float | None:
    ends = [date.fromisoformat(c["end"]) for c in doc.get("prior_courses", [])]
    if not ends:
        return None
    return (date.fromisoformat(doc["planned_course"]["start"]) - max(ends)).days / DAYS_PER_MONTH


def _conus(levels: list[str]) -> str:
    """'above' when a level is L1 or higher (cervical, thoracic, L1), else 'below'."""
    return "above" if any(lv[0] in "CT" or lv == "L1" for lv in levels) else "below"


def _table_key(by: str, doc: dict[str, Any]) -> Any:
    if by == "planned_fractions":
        return doc["planned_course"]["prescription"]["fractions"]
    if by == "highest_region":
        return {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}[doc["lesion"]["levels"][0][0]]
    return _conus(doc["lesion"]["levels"])


class Feature:
    """What the toy pack's rules and test cases show, gathered once for the feature checks."""

    def __init__(self) -> None:
        self.rules = [data for rel, data in toy_files() if rel.parts[0] != "repair"]
        self.repairs = {
            data["id"].removeprefix("repair."): data for rel, data in toy_files() if rel.parts[0] == "repair"
        }
        self.current = {data["id"]: data for data in self.rules if data["status"] == "active"}
        self.tests = toy_case_tests()
        self.expectations = [(t, e) for t in self.tests for e in t.expect]

    def expected(self, rule_id: str) -> list[tuple[CaseTest, Any]]:
        return [(t, e) for t, e in self.expectations if e.rule == rule_id]

    def statuses(self, rule_id: str) -> set[str]:
        return {e.status for _, e in self.expected(rule_id)}


@pytest.fixture(scope="module")
def feature() -> Feature:
    return Feature()


OPTIONAL_FACTS = {
    "interval_months",
    "most_recent_prior_stereotactic",
    "expected_survival_months",
    "ecog",
    "epidural_high_grade",
    "cord_compression_symptoms",
    "sins_total",
    "pathologic_fracture",
    "lytic_lesion",
    "radioresistant_histology",
}
"""Facts a case may lack (absent → unknown); the others every case has."""


def test_feature_every_operator_on_both_sides_and_on_the_boundary(feature: Feature) -> None:
    for op in ("<", "<=", ">", ">="):
        ids = {d["id"] for d in feature.current.values() if d.get("limit", {}).get("operator") == op}
        assert ids, f"no rule with the operator {op}"
        found = [e for rule_id in ids for _, e in feature.expected(rule_id)]
        assert {"pass", "fail"} <= {e.status for e in found}, op
        boundary = [e for e in found if e.value is not None and e.limit is not None and e.value == e.limit]
        assert boundary, f"no test case lands exactly on a {op} limit"
        assert {e.status for e in boundary} == ({"pass"} if "=" in op else {"fail"}), op


def test_feature_case_level_and_per_dose_rules_with_several_items(feature: Feature) -> None:
    scopes = {d["scope"]["per"] for d in feature.current.values() if d["kind"] == "constraint"}
    assert scopes == {"case", "near_max_dose"}
    items_per_rule = Counter((t.name, e.rule) for t, e in feature.expectations if e.structure is not None)
    several = [key for key, count in items_per_rule.items() if count >= 3]
    assert several, "no test case checks three items of one per-dose rule"
    calculations = {d["quantity"]["calculation"] for d in feature.current.values() if "quantity" in d}
    schema = json.loads((ROOT / "schemas" / "rule.schema.json").read_text(encoding="utf-8"))
    assert calculations == set(schema["properties"]["quantity"]["properties"]["calculation"]["enum"])


def test_feature_conditions_all_any_not_in_on_absent_facts(feature: Feature) -> None:
    nodes = [n for d in feature.current.values() for n in _nodes(d["applies_when"])]
    for key in ("all", "any", "not", "in", "outcome"):
        assert any(key in n for n in nodes), key
    optional = {
        d["id"]
        for d in feature.current.values()
        if any(n.get("fact") in OPTIONAL_FACTS for n in _nodes(d["applies_when"]))
    }
    kinds = {feature.current[r]["kind"] for r in optional}
    assert {"constraint", "advisory", "recommendation"} <= kinds
    for rule_id in optional:  # each is shown undecided because a fact is not provided
        assert any(
            e.status == "indeterminate"
            and any("not provided" in text for text in (*e.explanation_contains, *e.because_contains))
            for _, e in feature.expected(rule_id)
        ), rule_id


def test_feature_limit_tables_with_a_key_that_has_no_row(feature: Feature) -> None:
    tables = {d["id"]: d["limit"] for d in feature.current.values() if "table" in d.get("limit", {})}
    assert {lim["by"] for lim in tables.values()} == {"planned_fractions", "conus_position", "highest_region"}
    no_row = [
        (rule_id, t.name)
        for rule_id, lim in tables.items()
        for t, e in feature.expected(rule_id)
        if e.status == "indeterminate"
        and _table_key(lim["by"], t.document) not in {row["key"] for row in lim["table"]}
    ]
    assert no_row, "no test case has a table key with no row"
    for rule_id, lim in tables.items():  # every row is used by some test case
        used = {
            _table_key(lim["by"], t.document)
            for t, e in feature.expected(rule_id)
            if e.status in ("pass", "fail")
        }
        assert {row["key"] for row in lim["table"]} <= used, rule_id


def test_feature_an_assumption_used_and_not_applying(feature: Feature) -> None:
    (assumption,) = [d["id"] for d in feature.current.values() if d["kind"] == "assumption"]
    assert {"applied", "not_applicable"} <= feature.statuses(assumption)
    users = {e.rule for _, e in feature.expectations if e.assumptions and assumption in e.assumptions}
    calculations = {feature.current[r]["quantity"]["calculation"] for r in users}
    assert {"cumulative_eqd2", "cumulative_bed"} <= calculations


def test_feature_repair_steps_on_both_sides_of_each_boundary(feature: Feature) -> None:
    day = 1 / DAYS_PER_MONTH
    for calculation in ("cumulative_eqd2", "cumulative_bed"):
        rules = [
            d
            for d in feature.current.values()
            if d.get("quantity", {}).get("calculation") == calculation
            and d["quantity"].get("parameters", {}).get("repair")
        ]
        assert rules, calculation
        for data in rules:
            steps = feature.repairs[data["quantity"]["parameters"]["repair"]]["steps"]
            assert len(steps) >= 2
            months = {
                round(m, 6)
                for t, e in feature.expected(data["id"])
                if e.value is not None and (m := _months(t.document)) is not None
            }
            for step in steps:
                m = step["after_months"]
                for near in (m - day, m, m + day):
                    assert round(near, 6) in months, (data["id"], m, near)


def test_feature_recommendations_on_the_case_and_on_outcomes(feature: Feature) -> None:
    recs = {rule_id: d for rule_id, d in feature.current.items() if d["kind"] == "recommendation"}
    on_outcomes = {r for r, d in recs.items() if any("outcome" in n for n in _nodes(d["applies_when"]))}
    on_case = set(recs) - on_outcomes
    for group in (on_case, on_outcomes):
        assert group
        assert any(feature.statuses(r) >= {"made", "not_made", "indeterminate"} for r in group), group
    negated = [
        r for r in on_outcomes if any("outcome" in n.get("not", {}) for n in _nodes(recs[r]["applies_when"]))
    ]
    assert negated, "no recommendation negates an outcome"
    not_in_force = [
        (r, t.name)
        for r in on_outcomes
        for t, _ in feature.expected(r)
        for n in _nodes(recs[r]["applies_when"])
        if "outcome" in n and n["outcome"] not in {rule.id for rule in toy_pack().select(t.as_of).rules}
    ]
    assert not_in_force, "no test case reads the outcome of a rule not in force on its date"


def test_feature_versions_retired_and_draft(feature: Feature) -> None:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for rel, data in toy_files():
        if rel.parts[0] != "repair":
            by_id.setdefault(data["id"], []).append({**data, "file": rel.name})
    versioned = {i: v for i, v in by_id.items() if len([d for d in v if d["status"] == "active"]) >= 2}
    assert versioned, "no rule with two active versions"
    assert any("@" in d["file"] for v in versioned.values() for d in v)
    assert {d["status"] for v in by_id.values() for d in v} == {"active", "draft", "retired"}
    (draft,) = [d for v in by_id.values() for d in v if d["status"] == "draft"]
    assert (date.fromisoformat(draft["valid_from"]), True) in {
        (date.fromisoformat(d), x) for d, x, *_ in AS_OF
    }
