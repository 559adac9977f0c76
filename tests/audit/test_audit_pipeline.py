"""reirrad audit: every input case lands once in results.jsonl or errors.jsonl, whatever the format or failure."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from reirrad.audit.readers import CSV_COLUMNS, dumps_line, read_csv_cases, write_csv
from reirrad.audit.runner import AuditOptions, run_audit
from reirrad.audit.summary import Acc, finalize
from reirrad.cli.main import main
from reirrad.load.yamlio import load_yaml_file
from reirrad.testing.synth import SYNTHETIC_PREFIX, iter_synth_cases, synth_cases

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"
AS_OF = "2025-10-01"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def audit(cohort: Path, out: Path, **kw: Any) -> Any:
    kw.setdefault("workers", 0)
    kw.setdefault("as_of", AS_OF)
    kw.setdefault("chunk_cases", 7)
    return run_audit(AuditOptions(cohort=cohort, out=out, **kw))


def invalid_case() -> dict[str, Any]:
    doc = synth_cases(1, 99)[0]
    doc["case_id"] = "schema-invalid"
    doc["planned_course"]["prescription"]["fractions"] = "three"
    return doc


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return synth_cases(40, 11)


@pytest.fixture
def jsonl_cohort(tmp_path: Path, docs: list[dict[str, Any]]) -> Path:
    lines = [dumps_line(d) for d in docs[:20]]
    lines.append(b'{"schema": "reirrad/case/v1", "case_id": \n')  # line 21: not JSON
    lines.append(dumps_line(invalid_case()))  # line 22: schema-invalid
    lines.append(b"\n")  # line 23: blank, not a case
    lines += [dumps_line(d) for d in docs[20:]]
    path = tmp_path / "cohort.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_jsonl_every_line_lands_once_with_line_numbers(
    jsonl_cohort: Path, tmp_path: Path, docs: list[dict[str, Any]]
) -> None:
    out = tmp_path / "out"
    outcome = audit(jsonl_cohort, out)
    results, errors = read_jsonl(out / "results.jsonl"), read_jsonl(out / "errors.jsonl")
    assert (outcome.input_cases, outcome.evaluated, outcome.rejected, outcome.blank_lines) == (42, 40, 2, 1)
    assert len(results) + len(errors) == 42
    assert [r["case_id"] for r in results] == [d["case_id"] for d in docs]  # ordered output
    by_line = {e["line"]: e for e in errors}
    assert set(by_line) == {21, 22}
    bad_json = by_line[21]["problems"][0]
    assert bad_json["file"] == str(jsonl_cohort) and bad_json["line"] == 21
    assert bad_json["message"].startswith("not valid JSON")
    schema = by_line[22]
    assert schema["case_id"] == "schema-invalid"
    assert schema["problems"][0]["path"] == "planned_course.prescription.fractions"
    assert schema["problems"][0]["line"] == 22 and schema["problems"][0]["file"] == str(jsonl_cohort)
    assert schema["problems"][0]["accepted"]


def test_summary_counts_equal_the_per_case_results(jsonl_cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    audit(jsonl_cohort, out, workers=2, chunk_cases=5)
    summary = json.loads((out / "summary.json").read_text())
    results = read_jsonl(out / "results.jsonl")
    verdicts: Counter[tuple[str, str]] = Counter()
    items: Counter[tuple[str, str, str]] = Counter()
    for r in results:
        verdicts.update((p["policy"], p["verdict"]) for p in r["policy_summary"])
        items.update((c["policy"], c["criterion"], c["status"]) for c in r["constraints"])
    for (policy, verdict), n in verdicts.items():
        assert summary["policies"][policy]["verdicts"][verdict] == n
    for (policy, criterion, status), n in items.items():
        assert summary["criteria"][policy][criterion]["items"][status] == n
    assert summary["counts"] == {"evaluated": 40, "rejected": 2, "blank_lines": 1}
    # an independent recount (one accumulator, one pass) gives the same document as the chunked, parallel run
    acc = Acc()
    for i, r in enumerate(results):
        acc.add_result(f"line {_line_of(jsonl_cohort, r['case_id'])}", r)
    again = finalize(acc.export(), {})
    for key in ("policies", "criteria", "disagreements", "cord_eqd2"):
        assert again[key] == summary[key], key
    hytec = summary["policies"]["hytec"]["met"]
    assert hytec["all_metrics"] <= hytec["any_metric"] <= hytec["evaluated"]
    pass_fail = sum(
        1
        for r in results
        if {"hytec": "pass", "nelson": "fail"}.items()
        <= {p["policy"]: p["verdict"] for p in r["policy_summary"]}.items()
    )
    assert summary["disagreements"].get("hytec", {}).get("nelson", 0) == pass_fail


def _line_of(path: Path, case_id: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if f'"case_id":"{case_id}"' in line:
            return i
    raise AssertionError(case_id)


def test_yaml_directory_with_a_bad_file(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    cohort = tmp_path / "cases"
    cohort.mkdir()
    for d in docs[:9]:
        (cohort / f"{d['case_id']}.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    (cohort / "broken.yaml").write_text("schema: reirrad/case/v1\ncase_id: [unclosed\n")
    (cohort / "notes.txt").write_text("not a case")
    out = tmp_path / "out"
    outcome = audit(cohort, out, chunk_cases=4)
    assert (outcome.input_cases, outcome.evaluated, outcome.rejected) == (10, 9, 1)
    err = read_jsonl(out / "errors.jsonl")[0]
    assert err["file"].endswith("broken.yaml")
    assert err["problems"][0]["message"].startswith("not valid YAML") and err["problems"][0]["line"] == 3


def test_csv_round_trip_is_identical(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    example, _ = load_yaml_file(EXAMPLE)
    full = synth_cases(1, 3)[0]
    full["patient"]["systemic_disease"] = {"status": "stable", "brain_metastases": False}
    full["lesion"].update(
        {
            "sins_components": {
                "location": 1,
                "pain": 3,
                "bone_lesion": 0,
                "alignment": 2,
                "collapse": 1,
                "posterolateral": 0,
            },
            "hardware": {"present": True, "failure": False},
            "pathologic_fracture": True,
        }
    )
    full["planned_course"]["unit"] = "cGy"
    cohort = [*docs, full]
    if example.get("schema") == "reirrad/case/v1":
        cohort.append(example)
    path = tmp_path / "c.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        assert write_csv(cohort, f) == len(cohort)
    assert path.read_text().splitlines()[0].split(",") == list(CSV_COLUMNS)
    assert list(read_csv_cases(path)) == cohort


def test_csv_audit_with_bad_rows_names_file_and_line(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    path = tmp_path / "c.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        write_csv([*docs[:6], invalid_case()], f)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    # a row with one field too many, in a case of its own
    lines.insert(3, "extra-fields,planned" + "," * (len(header) - 2) + ",oops")
    # a course that is neither prior nor planned
    lines.append("odd-course,next" + "," * (len(header) - 2))
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    outcome = audit(path, out, chunk_cases=3)
    assert outcome.input_cases == 9 and outcome.evaluated == 6 and outcome.rejected == 3
    errors = {e.get("case_id"): e for e in read_jsonl(out / "errors.jsonl")}
    assert errors["extra-fields"]["problems"][0]["line"] == 4
    assert "fields, the header" in errors["extra-fields"]["problems"][0]["message"]
    assert errors["odd-course"]["problems"][0]["message"].startswith("course 'next'")
    bad = errors["schema-invalid"]["problems"][0]
    planned_line = next(i for i, ln in enumerate(lines, 1) if ln.startswith("schema-invalid,planned"))
    assert bad["path"] == "planned_course.prescription.fractions" and bad["line"] == planned_line
    assert bad["file"] == str(path)


def test_as_of_selects_rules_on_both_sides_of_valid_from(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    early = json.loads(json.dumps(docs[0]))
    early["case_id"] = "treated-2011"
    for c in early["prior_courses"]:
        c["start"], c["end"] = "2010-01-04", "2010-01-08"
    early["planned_course"]["start"] = "2011-12-31"
    late = json.loads(json.dumps(early))
    late["case_id"] = "treated-2012"
    late["planned_course"]["start"] = "2012-01-01"
    path = tmp_path / "c.jsonl"
    path.write_bytes(dumps_line(early) + dumps_line(late))

    def policies(out: Path) -> dict[str, set[str]]:
        return {
            r["case_id"]: {p["policy"] for p in r["policy_summary"]}
            for r in read_jsonl(out / "results.jsonl")
        }

    audit(
        path,
        tmp_path / "t",
        as_of="treatment",
        compare_now=True,
        now=__import__("datetime").date(2025, 10, 1),
    )
    by_case = policies(tmp_path / "t")
    assert "hytec" not in by_case["treated-2011"] and "nelson" in by_case["treated-2011"]
    assert "hytec" in by_case["treated-2012"]
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert len(summary["rule_sets"]) == 2
    assert sum(n for k, n in summary["compare"]["hytec"].items() if k.startswith("not_in_force→")) == 1
    audit(path, tmp_path / "d1", as_of="2011-12-31")
    audit(path, tmp_path / "d2", as_of="2012-01-01")
    assert all("hytec" not in p for p in policies(tmp_path / "d1").values())
    assert all("hytec" in p for p in policies(tmp_path / "d2").values())
    as_of = {r["rule_pack"]["as_of"] for r in read_jsonl(tmp_path / "t" / "results.jsonl")}
    assert as_of == {"2011-12-31", "2012-01-01"}


def test_report_is_self_contained(jsonl_cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    audit(jsonl_cohort, out, compare_now=True)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 3 and "<circle" in html
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), "no external URL"
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    assert "25 Gy" in html and "70 Gy" in html


def test_cli_prints_counts_and_refuses_a_different_input_in_the_same_dir(
    jsonl_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["audit", str(jsonl_cohort), "--out", str(out), "--workers", "0", "--as-of", AS_OF]) == 0
    printed = capsys.readouterr().out
    assert "input cases: 42; evaluated: 40 (results.jsonl); rejected: 2 (errors.jsonl)" in printed
    other = tmp_path / "other.jsonl"
    other.write_bytes(jsonl_cohort.read_bytes()[:2000])
    assert main(["audit", str(other), "--out", str(out), "--workers", "0"]) == 2
    assert "another input" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2


def test_synth_is_stable_and_labelled(tmp_path: Path) -> None:
    assert list(iter_synth_cases(30, 4)) == synth_cases(30, 4)
    assert list(iter_synth_cases(30, 4, start=25)) == synth_cases(30, 4)[25:]
    assert (
        main(["synth", "--n", "3", "--seed", "2", "--format", "yaml-dir", "--out", str(tmp_path / "y")]) == 0
    )
    files = sorted((tmp_path / "y").glob("*.yaml"))
    assert len(files) == 3 and files[0].name.startswith(SYNTHETIC_PREFIX)
    assert files[0].read_text().startswith("# SYNTHETIC")
    assert main(["synth", "--n", "3", "--seed", "2", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert read_jsonl(tmp_path / "s.jsonl") == synth_cases(3, 2)
    assert json.loads((tmp_path / "s.jsonl.synthetic.json").read_text())["synthetic"] is True


def test_recommendations_are_counted_when_results_carry_them() -> None:
    result = {
        "constraints": [],
        "policy_summary": [],
        "recommendations": [
            {"rule_id": "isrs-2017.x", "status": "made"},
            {"rule_id": "isrs-2017.x", "status": "made"},
            {"rule_id": "kotecha-2020.y", "status": "indeterminate"},
        ],
    }
    acc = Acc()
    acc.add_result("k1", result)
    acc.add_result("k2", {"constraints": [], "policy_summary": []})
    summary = finalize(acc.export(), {})
    assert summary["recommendations"] == {"isrs-2017.x": {"made": 2}, "kotecha-2020.y": {"indeterminate": 1}}
    assert summary["counts"]["evaluated"] == 2


def test_fast_validation_gives_the_verdicts_and_messages_of_case_problems() -> None:
    from reirrad.audit.readers import ConstLines
    from reirrad.audit.runner import validate_document
    from reirrad.case import case_problems

    docs = synth_cases(30, 8)
    docs[0]["planned_course"]["prescription"]["dose"] = 3000  # cGy typed as Gy: a semantic problem
    docs[1]["lesion"]["sins"] = True  # a boolean for a number: schema and model refuse
    docs[2]["patient"]["age"] = 10.0  # an integral float: both accept
    del docs[3]["planned_course"]["structures"]
    for doc in [*docs, [], "text", {"schema": "reirrad/case/v1"}]:
        fast, fast_problems = validate_document(doc, ConstLines(5), "f.jsonl")
        slow, slow_problems = case_problems(doc, ConstLines(5), "f.jsonl")
        assert fast_problems == slow_problems
        assert (fast is None) == (slow is None)
