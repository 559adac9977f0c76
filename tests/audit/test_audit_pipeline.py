"""reirrad audit: every input record lands once in the database (cases or errors), whatever the format or failure."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_helpers import AS_OF, accounted, audit, query
from reirrad.audit.readers import CSV_COLUMNS, dumps_line, read_csv_cases, write_csv
from reirrad.cli.main import main
from reirrad.load.yamlio import load_yaml_file
from reirrad.testing.synth import SYNTHETIC_PREFIX, iter_synth_cases, synth_cases

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def errors_by_line(out: Path) -> dict[int, list[dict[str, Any]]]:
    cols = [
        "seq",
        "source",
        "file",
        "line",
        "column_name",
        "path",
        "code",
        "value",
        "message",
        "accepted",
        "case_id",
    ]
    found: dict[int, list[dict[str, Any]]] = {}
    for row in query(out, f"SELECT {', '.join(cols)} FROM errors ORDER BY seq, path"):
        e = dict(zip(cols, row, strict=True))
        found.setdefault(e["line"], []).append(e)
    return found


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
    assert (outcome.records, outcome.evaluated, outcome.rejected, outcome.blank) == (43, 40, 2, 1)
    assert [r[0] for r in query(out, "SELECT case_id FROM cases ORDER BY seq")] == [
        d["case_id"] for d in docs
    ]
    assert [seq for seq, _ in accounted(out)] == [i for i in range(43) if i != 22]  # line 23 is blank
    by_line = errors_by_line(out)
    assert set(by_line) == {21, 22}
    bad_json = by_line[21][0]
    assert bad_json["file"] == str(jsonl_cohort)
    assert bad_json["code"] == "json"
    assert bad_json["message"].startswith("not valid JSON")
    schema = by_line[22][0]
    assert schema["case_id"] == "schema-invalid"
    assert schema["path"] == "planned_course.prescription.fractions"
    assert schema["file"] == str(jsonl_cohort)
    assert schema["accepted"]


def test_summary_counts_equal_the_per_case_results(jsonl_cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    audit(jsonl_cohort, out, workers=2, chunk_cases=5, full_results=True)
    summary = json.loads((out / "summary.json").read_text())
    results = read_jsonl(out / "results.jsonl")
    assert len(results) == 40
    verdicts: Counter[tuple[str, str]] = Counter()
    items: Counter[tuple[str, str, str]] = Counter()
    recs: Counter[tuple[str, str]] = Counter()
    for r in results:
        verdicts.update((p["policy"], p["verdict"]) for p in r["policy_summary"])
        items.update((c["policy"], c["criterion"], c["status"]) for c in r["constraints"])
        recs.update((x["rule_id"], x["status"]) for x in r["recommendations"])
    assert sum(verdicts.values()) == sum(sum(p["verdicts"].values()) for p in summary["policies"].values())
    for (policy, verdict), n in verdicts.items():
        assert summary["policies"][policy]["verdicts"][verdict] == n
    for (policy, criterion, status), n in items.items():
        assert summary["criteria"][policy][criterion]["items"][status] == n
    for (rule, status), n in recs.items():
        assert summary["recommendations"][rule][status] == n
    assert summary["counts"] == {"records": 43, "evaluated": 40, "rejected": 2, "blank": 1}
    hytec = summary["policies"]["hytec"]["met"]
    assert hytec["all_metrics"] <= hytec["any_metric"] <= hytec["applies"]
    pass_fail = sum(
        1
        for r in results
        if {"hytec": "pass", "nelson": "fail"}.items()
        <= {p["policy"]: p["verdict"] for p in r["policy_summary"]}.items()
    )
    assert summary["disagreements"].get("hytec", {}).get("nelson", 0) == pass_fail
    # every stored constraint line is the result's line, value and margin included
    stored = query(
        out,
        "SELECT c.case_id, l.rule_id, coalesce(l.structure, ''), coalesce(l.metric, ''), l.status, l.value, l.margin "
        "FROM constraint_lines l JOIN cases c USING (seq) ORDER BY ALL",
    )
    expect = sorted(
        (
            r["case_id"],
            e["rule_id"],
            e["structure"] or "",
            e["metric"] or "",
            e["status"],
            e["value"],
            None
            if e["value"] is None or e["limit"] is None
            else round(
                e["limit"] - e["value"] if e["operator"] in ("<", "<=") else e["value"] - e["limit"], 6
            ),
        )
        for r in results
        for e in r["constraints"]
    )
    assert stored == expect


def test_yaml_directory_with_a_bad_file(tmp_path: Path, docs: list[dict[str, Any]]) -> None:
    cohort = tmp_path / "cases"
    cohort.mkdir()
    for d in docs[:9]:
        (cohort / f"{d['case_id']}.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    (cohort / "broken.yaml").write_text("schema: reirrad/case/v1\ncase_id: [unclosed\n")
    (cohort / "notes.txt").write_text("not a case")
    out = tmp_path / "out"
    outcome = audit(cohort, out, chunk_cases=4)
    assert (outcome.records, outcome.evaluated, outcome.rejected) == (10, 9, 1)
    ((file, line, message),) = query(out, "SELECT file, line, message FROM errors")
    assert file.endswith("broken.yaml")
    assert message.startswith("not valid YAML")
    assert line == 3


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
    assert outcome.records == 9
    assert outcome.evaluated == 6
    assert outcome.rejected == 3
    errors = {
        e[0]: e
        for e in query(out, "SELECT case_id, line, message, path, file, column_name, value FROM errors")
    }
    assert errors["extra-fields"][1] == 4
    assert "fields, the header" in errors["extra-fields"][2]
    assert errors["odd-course"][2].startswith("course 'next'")
    _, line, _, bad_path, file, column, value = errors["schema-invalid"]
    planned_line = next(i for i, ln in enumerate(lines, 1) if ln.startswith("schema-invalid,planned"))
    assert bad_path == "planned_course.prescription.fractions"
    assert line == planned_line
    assert file == str(path)
    assert (column, value) == ("prescription.fractions", "three")


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
        found: dict[str, set[str]] = {}
        for case_id, policy in query(
            out,
            "SELECT case_id, policy FROM policy_verdicts JOIN cases USING (seq) WHERE verdict <> 'not_in_force'",
        ):
            found.setdefault(case_id, set()).add(policy)
        return found

    audit(
        path,
        tmp_path / "t",
        as_of="treatment",
        compare_now=True,
        now=__import__("datetime").date(2025, 10, 1),
    )
    by_case = policies(tmp_path / "t")
    assert "hytec" not in by_case["treated-2011"]
    assert "nelson" in by_case["treated-2011"]
    assert "hytec" in by_case["treated-2012"]
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert len(summary["rules_in_force"]) == 2
    assert sum(n for k, n in summary["compare"]["hytec"].items() if k.startswith("not_in_force→")) == 1
    assert all(k.split("→")[0] != k.split("→")[1] for v in summary["compare"].values() for k in v)
    audit(path, tmp_path / "d1", as_of="2011-12-31")
    audit(path, tmp_path / "d2", as_of="2012-01-01")
    assert all("hytec" not in p for p in policies(tmp_path / "d1").values())
    assert all("hytec" in p for p in policies(tmp_path / "d2").values())
    as_of = {str(r[0]) for r in query(tmp_path / "t", "SELECT as_of FROM cases")}
    assert as_of == {"2011-12-31", "2012-01-01"}


def test_report_is_self_contained(jsonl_cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    audit(jsonl_cohort, out, compare_now=True)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 3
    assert "<circle" in html
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), "no external URL"
    assert not re.search(r"<(script|link|img|iframe)\b", html, re.I)
    assert "25 Gy EQD2" in html
    assert "70 Gy EQD2" in html


def test_cli_prints_counts_and_refuses_a_different_input_in_the_same_dir(
    jsonl_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["audit", str(jsonl_cohort), "--out", str(out), "--workers", "0", "--as-of", AS_OF]) == 0
    printed = capsys.readouterr().out
    assert "records read: 43; evaluated: 40; rejected: 2 (errors table); blank: 1" in printed
    other = tmp_path / "other.jsonl"
    other.write_bytes(jsonl_cohort.read_bytes()[:2000])
    assert main(["audit", str(other), "--out", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "another input" in err
    assert "input (path, sha256, size)" in err
    assert main(["audit", str(tmp_path / "nope.csv"), "--out", str(out)]) == 2


def test_synth_is_stable_and_labelled(tmp_path: Path) -> None:
    assert list(iter_synth_cases(30, 4)) == synth_cases(30, 4)
    assert list(iter_synth_cases(30, 4, start=25)) == synth_cases(30, 4)[25:]
    assert (
        main(["synth", "--n", "3", "--seed", "2", "--format", "yaml-dir", "--out", str(tmp_path / "y")]) == 0
    )
    files = sorted((tmp_path / "y").glob("*.yaml"))
    assert len(files) == 3
    assert files[0].name.startswith(SYNTHETIC_PREFIX)
    assert files[0].read_text().startswith("# SYNTHETIC")
    assert main(["synth", "--n", "3", "--seed", "2", "--out", str(tmp_path / "s.jsonl")]) == 0
    assert read_jsonl(tmp_path / "s.jsonl") == synth_cases(3, 2)
    assert json.loads((tmp_path / "s.jsonl.synthetic.json").read_text())["synthetic"] is True


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


def test_progress_on_a_terminal_quiet_otherwise(
    jsonl_cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from reirrad.audit.runner import _Progress

    audit(jsonl_cohort, tmp_path / "quiet", progress=None)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    bar = _Progress(True, 1000, "bytes")
    bar.update(40, 500, final=True)
    err = capsys.readouterr().err
    assert re.fullmatch(r"\raudit \[#{15} {15}\]  50% 40 records, [\d,]+/s, ETA [\d,]+ s \n", err)


def test_the_summary_is_the_same_computed_in_batches(
    jsonl_cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-case queries run over batches of records (bounded memory); a batch of 5 gives the summary of one."""
    from reirrad.audit import summary as summary_module

    audit(jsonl_cohort, tmp_path / "one", compare_now=True)
    monkeypatch.setattr(summary_module, "BATCH", 5)
    audit(jsonl_cohort, tmp_path / "many", compare_now=True)
    one, many = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "many"))
    for doc in (one, many):
        doc.pop("input")
    assert many == one
    assert many["scatter"][0]["sample"]


def test_rows_cut_into_slices_give_the_same_database(
    jsonl_cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk's rows reach the database in part files of at most SLICE_ROWS rows: slices of 3 rows (every table of
    every chunk in several files) give the database that slices larger than any chunk give."""
    from reirrad.audit import rows as rows_module

    tables = ("cases", "policy_verdicts", "constraint_lines", "recommendations", "errors")

    def contents(out: Path) -> dict[str, list[tuple[Any, ...]]]:
        return {t: query(out, f"SELECT * FROM {t} ORDER BY ALL") for t in tables}

    monkeypatch.setattr(rows_module, "SLICE_ROWS", 10**6)
    audit(jsonl_cohort, tmp_path / "whole")
    monkeypatch.setattr(rows_module, "SLICE_ROWS", 3)
    written: list[int] = []
    write = rows_module.Rows.write

    def counting(self: Any, directory: Path, prefix: str) -> dict[str, int]:
        counts = write(self, directory, prefix)
        written.append(len(list(directory.glob(f"{prefix}.constraint_lines.*.json"))))
        return counts

    monkeypatch.setattr(rows_module.Rows, "write", counting)
    audit(jsonl_cohort, tmp_path / "sliced")
    assert max(written) > 1  # a chunk's constraint lines were cut into several files
    whole, sliced = contents(tmp_path / "whole"), contents(tmp_path / "sliced")
    assert len(whole["constraint_lines"]) > 3 * len(written)
    assert sliced == whole


def _constraint_lines(cases: int) -> Any:
    """The rows of a chunk of ``cases`` cases of 23 constraint lines each, valued as the audit writes them (the
    generated cohort's mean is 23 lines a case)."""
    import random

    from reirrad.audit.rows import Rows

    rng = random.Random(5)
    rows = Rows()
    for seq in range(cases):
        rows.tables["cases"].append((seq, f"case-{seq:06d}", "cohort.jsonl", seq + 1, *([None] * 16)))
        for k in range(23):
            value = round(rng.uniform(5, 100), 6) if k % 5 else None
            limit = rng.choice([20.3, 70.0, 75.0, 98.0])
            rows.tables["constraint_lines"].append(
                (
                    seq,
                    "conus-bed3",
                    "cumulative",
                    "conus-bed3.cumulative",
                    "1.0.0",
                    "SpinalCord",
                    "D0.03cc",
                    rng.choice(["pass", "fail", "indeterminate", "not_applicable"]),
                    value,
                    limit,
                    "<=",
                    "Gy BED",
                    None if value is None else round(limit - value, 6),
                    False,
                    k == 3,
                )
            )
    return rows


def test_a_chunk_of_a_thousand_cases_commits_within_the_buffer_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """23,000 constraint lines in one chunk fit DuckDB's capped pool (store.MEMORY_LIMIT) when written in slices;
    the same rows in one file do not (the reason for the slices)."""
    import duckdb
    from reirrad.audit import rows as rows_module
    from reirrad.audit.store import Store

    counts = {"evaluated": 1000, "rejected": 0, "blank": 0}
    for name, slice_rows in (("sliced", rows_module.SLICE_ROWS), ("whole", 10**6)):
        monkeypatch.setattr(rows_module, "SLICE_ROWS", slice_rows)
        parts = tmp_path / name / "parts"
        parts.mkdir(parents=True)
        written = _constraint_lines(1000).write(parts, "00000000")
        store = Store(tmp_path / name)
        try:
            if name == "sliced":
                store.commit(0, 0, 1000, {**counts, **written}, parts, 0)
                assert store.con.execute("SELECT count(*) FROM constraint_lines").fetchone() == (23_000,)
            else:
                with pytest.raises(duckdb.OutOfMemoryException):
                    store.commit(0, 0, 1000, {**counts, **written}, parts, 0)
        finally:
            store.close()
