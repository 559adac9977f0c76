"""The chair's report and `reirrad explain`: plain sentences, every non-conforming case linked to its explanation,
plots from the limits of the rules in force, outcomes by conformance with counts, only real changes 'now'."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_helpers import AS_OF, audit, query
from reirrad.audit.readers import dumps_line
from reirrad.cli.main import main
from reirrad.explain.report import render_text
from reirrad.testing.synth import synth_cases

ROOT = Path(__file__).resolve().parents[2]


def cohort_docs() -> list[dict[str, Any]]:
    docs = synth_cases(80, 23)
    for i, d in enumerate(docs):
        start = date.fromisoformat(d["planned_course"]["start"])
        if i % 10 == 3 and d["prior_courses"]:  # a conventional re-irradiation
            d["planned_course"]["technique"] = "IMRT"
            d["planned_course"]["prescription"] = {"dose": 20, "fractions": 5}
        if i % 3 == 0:
            d["outcomes"] = {
                "local_failure": {
                    "occurred": i % 2 == 0,
                    **({"date": str(start + timedelta(days=90))} if i % 2 == 0 else {}),
                }
            }
    return docs


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    base = tmp_path_factory.mktemp("report")
    docs = cohort_docs()
    path = base / "c.jsonl"
    path.write_bytes(
        b"".join(dumps_line(d) for d in docs) + b'{"schema": "reirrad/case/v1", "case_id": "bad"}\n'
    )
    out = base / "out"
    audit(
        path,
        out,
        as_of="treatment",
        compare_now=True,
        now=date(2025, 10, 1),
        full_results=True,
        chunk_cases=20,
    )
    return path, out, docs


def test_the_report_opens_with_plain_sentences(audited: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, out, docs = audited
    html = (out / "report.html").read_text(encoding="utf-8")
    s = json.loads((out / "summary.json").read_text())
    first = min(d["planned_course"]["start"] for d in docs)
    d0 = date.fromisoformat(first)
    lead = re.findall(r'<p class="lead">(.*?)</p>', html)
    assert lead[0].startswith(f"Of 80 plans treated from {d0.day} {d0:%b %Y} to ")
    assert "judged with the rules in force on each treatment date" in lead[0]
    hytec = s["policies"]["hytec"]["verdicts"]
    applies = s["policies"]["hytec"]["met"]["applies"]
    assert any(f"Under the hytec policy, {hytec['pass']} of {applies}" in t for t in lead)
    assert any(t.startswith("1 record could not be audited") for t in lead)
    for jargon in ("near-max metric", "lines pass", "indet.", "RESBRT"):
        assert jargon not in html
    assert "<h2>Glossary</h2>" in html


def test_every_non_conforming_case_is_listed_and_linked_to_its_explanation(
    audited: tuple[Path, Path, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = audited
    html = (out / "report.html").read_text(encoding="utf-8")
    failing = sorted(
        {
            r[0]
            for r in query(
                out, "SELECT case_id FROM policy_verdicts JOIN cases USING (seq) WHERE verdict = 'fail'"
            )
        }
    )
    assert failing
    results = {
        json.loads(x)["case_id"]: json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()
    }
    for case_id in failing:
        assert f'<a href="explanations/{case_id}.txt">{case_id}</a>' in html
        text = (out / "explanations" / f"{case_id}.txt").read_text(encoding="utf-8")
        assert text == render_text(results[case_id])
    # each listed line gives the criterion, value vs limit and by how much
    assert re.search(r"\d+\.\d\d Gy EQD2 above the limit", html)


def test_explain_reproduces_the_explanation_byte_for_byte(
    audited: tuple[Path, Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, out, _docs = audited
    case_id, as_of, document = query(
        out, "SELECT case_id, as_of, document FROM cases ORDER BY seq LIMIT 1 OFFSET 5"
    )[0]
    explained = subprocess.run(
        [sys.executable, "-m", "reirrad", "explain", str(out), case_id], capture_output=True, check=True
    ).stdout
    case_file = tmp_path / "case.yaml"
    case_file.write_text(yaml.safe_dump(json.loads(document), sort_keys=False))
    evaluated = subprocess.run(
        [sys.executable, "-m", "reirrad", "evaluate", str(case_file), "--as-of", str(as_of)],
        capture_output=True,
        check=True,
    ).stdout
    assert explained == evaluated
    full = next(
        json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if f'"{case_id}"' in x
    )
    assert explained.decode("utf-8") == render_text(full)


def test_explain_refuses_another_pack_an_unknown_and_a_rejected_case(
    audited: tuple[Path, Path, list[dict[str, Any]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = audited
    pack = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", pack)
    f = pack / "policies" / "hytec" / "resbrt.yaml"
    f.write_text(
        f.read_text().replace('limit: {operator: "<=", value: 25}', 'limit: {operator: "<=", value: 20}')
    )
    case_id = query(out, "SELECT case_id FROM cases LIMIT 1")[0][0]
    assert main(["explain", str(out), case_id, "--rules", str(pack)]) == 2
    err = capsys.readouterr().err
    assert "the rule pack differs from the one the audit used" in err
    assert "Traceback" not in err
    assert main(["explain", str(out), "no-such-case"]) == 2
    assert "no case with this id in the audit" in capsys.readouterr().err
    assert main(["explain", str(out), "bad"]) == 2
    assert "the audit rejected this case" in capsys.readouterr().err


def test_plots_and_counts_follow_the_limits_of_the_rules(
    audited: tuple[Path, Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    path, _out, _ = audited
    pack = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", pack)
    f = pack / "policies" / "hytec" / "resbrt.yaml"
    f.write_text(
        f.read_text().replace('limit: {operator: "<=", value: 25}', 'limit: {operator: "<=", value: 20}')
    )
    changed = tmp_path / "out"
    audit(path, changed, rules=pack, as_of=AS_OF)
    before = tmp_path / "before"
    audit(path, before, as_of=AS_OF)
    html_before = (before / "report.html").read_text()
    html_after = (changed / "report.html").read_text()
    assert "25 Gy EQD2</text>" in html_before
    assert "20 Gy EQD2</text>" in html_after
    assert "25 Gy EQD2</text>" not in html_after

    def hytec_counts(d: Path) -> dict[str, int]:
        sc = next(
            x for x in json.loads((d / "summary.json").read_text())["scatter"] if x["policy"] == "hytec"
        )
        assert [a["criterion"] for a in sc["axes"]] == ["resbrt", "cumulative"]
        return {"/".join(c["statuses"]): c["cases"] for c in sc["counts"]}

    a, b = hytec_counts(before), hytec_counts(changed)
    assert sum(a.values()) == sum(b.values())
    fail_before = sum(n for k, n in a.items() if k.startswith("fail"))
    fail_after = sum(n for k, n in b.items() if k.startswith("fail"))
    values = [
        v
        for (v,) in query(
            before,
            "SELECT x.value FROM constraint_lines x JOIN constraint_lines y USING (seq) "
            "WHERE x.rule_id = 'hytec.resbrt' AND y.rule_id = 'hytec.cumulative' AND x.structure = 'SpinalCord' "
            "AND y.structure = 'SpinalCord' AND x.metric = 'Dmax' AND y.metric = 'Dmax' "
            "AND x.value IS NOT NULL AND y.value IS NOT NULL AND x.status <> 'not_applicable'",
        )
    ]
    assert fail_after - fail_before == sum(1 for v in values if 20 < v <= 25)
    assert fail_after > fail_before


def test_conventional_cases_apart_not_applicable_explained(
    audited: tuple[Path, Path, list[dict[str, Any]]],
) -> None:
    _, out, docs = audited
    s = json.loads((out / "summary.json").read_text())
    conventional = sum(1 for d in docs if d["planned_course"]["technique"] == "IMRT")
    assert s["courses"]["conventional"] == conventional
    hytec = next(x for x in s["scatter"] if x["policy"] == "hytec")
    assert hytec["not_drawn"]["conventional"] == conventional
    reasons = {r["reason"]: r["cases"] for r in s["policies"]["hytec"]["not_applicable"]}
    assert reasons["not met: the planned course is SBRT or SRS"] == conventional
    first = sum(1 for d in docs if not d["prior_courses"])
    assert reasons.get("not met: the level was irradiated before", 0) == first
    html = (out / "report.html").read_text()
    assert "Why a policy did not apply" in html


def test_outcomes_by_conformance_are_counts(audited: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, out, docs = audited
    s = json.loads((out / "summary.json").read_text())
    by = s["outcomes"]["local_failure"]["by_policy"]["hytec"]
    verdict = dict(
        query(
            out, "SELECT case_id, verdict FROM policy_verdicts JOIN cases USING (seq) WHERE policy = 'hytec'"
        )
    )
    for status in ("pass", "fail"):
        recorded = [d for d in docs if "outcomes" in d and verdict.get(d["case_id"]) == status]
        events = sum(1 for d in recorded if d["outcomes"]["local_failure"]["occurred"])
        assert by.get(status, {"recorded": 0, "events": 0}) == {"recorded": len(recorded), "events": events}
    html = (out / "report.html").read_text()
    assert re.search(r"<td class=\"\">\d+ of \d+</td>", html)


def test_the_now_comparison_lists_only_changes(audited: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, out, _ = audited
    s = json.loads((out / "summary.json").read_text())
    pairs = [k for v in s["compare"].values() for k in v]
    assert pairs
    assert all(a != b for a, b in (k.split("→") for k in pairs))
    changed = query(
        out, "SELECT count(*) FROM policy_verdicts WHERE verdict_now IS NOT NULL AND verdict <> verdict_now"
    )[0][0]
    assert sum(n for v in s["compare"].values() for n in v.values()) == changed


def test_the_documented_queries_run(audited: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, out, _ = audited
    text = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    block = text.split("### Queries a physicist would run", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    statements = [s.strip() for s in block.split(";") if s.strip().replace("\n", "").strip()]
    statements = [
        s for s in statements if any(not ln.startswith("--") for ln in s.splitlines() if ln.strip())
    ]
    assert len(statements) == 7
    results = [query(out, s) for s in statements]
    assert results[0]  # plans that failed HyTEC
    assert sum(r[-1] for r in results[1]) == sum(
        n for (n,) in query(out, "SELECT count(*) FROM policy_verdicts")
    )
