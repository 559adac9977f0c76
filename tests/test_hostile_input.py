"""Hostile and careless input beyond the case gallery (issue 15): special files, sizes, file names, the bounds of
the plausibility checks on both sides, identifier screening, report escaping, --rules, --as-of and git refs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reirrad.case import (
    MAX_COURSE_GY,
    case_problems,
    identifying_pattern,
    load_case,
)
from reirrad.cli.main import main
from reirrad.errors import InputError, Problem, one_line
from reirrad.evaluate import Evaluator
from reirrad.explain.report import markdown_text, render_markdown, render_text
from reirrad.load.files import MAX_INPUT_BYTES, decode_text, load_json_text, read_input_bytes
from reirrad.load.validation import validator_for
from reirrad.load.yamlio import load_yaml_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"
AS_OF = date(2026, 11, 23)


def _example() -> dict[str, Any]:
    data, _ = load_yaml_file(EXAMPLE)
    assert isinstance(data, dict)
    return data


def _codes(doc: dict[str, Any], as_of: date = AS_OF) -> list[str]:
    case, problems = case_problems(doc, {}, "t.yaml", as_of)
    assert (case is None) == bool(problems)
    return [p.code for p in problems]


# --- files: special files, size, names, encodings ------------------------------------------------------------


def test_a_fifo_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "case.yaml"
    os.mkfifo(fifo)
    assert main(["evaluate", str(fifo)]) == 2  # before: evaluate waited for a writer for ever
    assert "is a named pipe (FIFO), not a regular file" in capsys.readouterr().err


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a device"), ("/dev/null", "a device")])
def test_a_device_is_refused(path: str, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", path]) == 2  # before: /dev/zero was read until MemoryError
    assert f"{path}: (document): is {kind}, not a regular file" in capsys.readouterr().err


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is a directory, not a regular file" in capsys.readouterr().err


def test_a_file_above_the_size_limit_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(EXAMPLE.read_bytes() + b"#" * MAX_INPUT_BYTES)
    assert main(["evaluate", str(big)]) == 2
    assert f"more than an input may be (accepted: a file of at most {MAX_INPUT_BYTES:,} bytes)" in (
        capsys.readouterr().err
    )
    ok = tmp_path / "ok.yaml"
    ok.write_bytes(EXAMPLE.read_bytes() + b"#" * (MAX_INPUT_BYTES - EXAMPLE.stat().st_size - 1) + b"\n")
    assert len(read_input_bytes(ok)) == MAX_INPUT_BYTES
    load_case(ok)


def test_a_file_name_with_a_line_break_cannot_forge_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = tmp_path / "case.yaml\nerror: forged.yaml:1: all policies pass"
    name.write_text(EXAMPLE.read_text(encoding="utf-8").replace("sins: 7", "sins: 19"), encoding="utf-8")
    assert main(["evaluate", str(name)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1  # before: two lines, the second a forged error
    assert (
        "case.yaml\\nerror: forged.yaml:1: all policies pass:6: lesion.sins: 19 is out of range" in lines[0]
    )


def test_problem_render_escapes_every_part() -> None:
    problem = Problem("a\rb.yaml", ("x\ny",), "bad \x1b[31mred\u202e", "one\u2028line")
    assert problem.render() == "a\\rb.yaml: x\\ny: bad \\x1b[31mred\\u202e (accepted: one\\u2028line)"
    assert one_line("renal cell carcinoma ≥ é") == "renal cell carcinoma ≥ é"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.read_bytes())
    assert load_case(bom).case_id == "t1-chondrosarcoma"


def test_decoding_errors_name_the_file_line_and_byte() -> None:
    with pytest.raises(InputError) as caught:
        decode_text(b"a: 1\nb: \xff\n", "x.yaml")
    assert caught.value.render() == (
        "x.yaml:2: (document): not UTF-8 text (invalid start byte at byte 8) (accepted: a UTF-8 text file)"
    )
    with pytest.raises(InputError) as caught:
        decode_text(b"\xef\xbb\xbfa\nb\n\xff", "y.yaml")
    assert "y.yaml:3:" in caught.value.render()
    assert "at byte 7" in caught.value.render()


# --- JSON with the YAML loader's limits (for the cohort and importer readers) ---------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[" * 65 + "]" * 65, "nested more than 64 levels deep"),
        ('{"a": ' + "9" * 5000 + "}", "a whole number of 5000 digits"),
        ('{"a": 1' + "0" * 400 + ".5}", "too large to be a quantity"),
        ('{"a": NaN}', "NaN is not a finite number"),
        ('{"a": -Infinity}', "-Infinity is not a finite number"),
        ('{"a": 1,}', "not valid JSON"),
    ],
)
def test_json_is_refused_cleanly(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_json_text(text, "rows.jsonl")
    assert message in caught.value.render()
    assert caught.value.render().startswith("rows.jsonl")


def test_json_within_the_limits_is_read() -> None:
    assert load_json_text('{"a": [[1, 2.5, "x"]], "b": 999999999999999}', "f.json") == {
        "a": [[1, 2.5, "x"]],
        "b": 999999999999999,
    }
    assert load_json_text("[" * 64 + "]" * 64, "f.json") is not None


# --- plausibility: both sides of every bound --------------------------------------------------------------------


def _prescribe(doc: dict[str, Any], course: str, dose: float, fractions: int, unit: str = "Gy") -> None:
    target = doc["planned_course"] if course == "planned" else doc["prior_courses"][0]
    target["prescription"] = {"dose": dose, "fractions": fractions}
    target["unit"] = unit
    target["structures"] = {"SpinalCord": {"Dmax": (0.4 if course == "planned" else 0.9) * dose}}
    target.pop("ptv_high_dmin", None)


@pytest.mark.parametrize(
    ("dose", "fractions", "unit", "codes"),
    [
        (30.0, 1, "Gy", []),
        (30.01, 1, "Gy", ["unit.cgy-as-gy"]),
        (3000, 1, "cGy", []),
        (3001, 1, "cGy", ["dose.per-fraction-high"]),
        (5.0, 10, "Gy", []),  # 0.5 Gy per fraction
        (4.9, 10, "Gy", ["dose.per-fraction-low"]),
        (500, 10, "cGy", []),
        (490, 10, "cGy", ["unit.gy-as-cgy"]),
        (30, 10, "cGy", ["unit.gy-as-cgy"]),  # the example's 30 Gy / 10 fx marked cGy
        (MAX_COURSE_GY, 50, "Gy", []),
        (MAX_COURSE_GY + 0.5, 50, "Gy", ["dose.course-high"]),
    ],
)
def test_prescription_bounds_in_both_units(dose: float, fractions: int, unit: str, codes: list[str]) -> None:
    doc = _example()
    _prescribe(doc, "prior", dose, fractions, unit)
    assert _codes(doc) == codes


@pytest.mark.parametrize(
    ("dose", "fractions", "technique", "codes"),
    [
        (30, 10, "SBRT", []),  # 10 fractions of 3 Gy: both stereotactic bounds met
        (33, 11, "SBRT", ["fractions.stereotactic"]),
        (33, 11, "VMAT", []),
        (15, 5, "SRS", []),
        (14.5, 5, "SRS", ["dose.stereotactic-low"]),
        (14.5, 5, "IMRT", []),
    ],
)
def test_stereotactic_bounds(dose: float, fractions: int, technique: str, codes: list[str]) -> None:
    doc = _example()
    _prescribe(doc, "planned", dose, fractions)
    doc["planned_course"]["technique"] = technique
    assert _codes(doc) == codes


def test_organ_doses_are_checked_against_the_prescription_in_the_courses_unit() -> None:
    doc = _example()
    doc["prior_courses"][0]["structures"]["SpinalCord"]["Dmax"] = 60.0  # twice 30 Gy: accepted
    assert _codes(doc) == []
    doc["prior_courses"][0]["structures"]["SpinalCord"]["Dmax"] = 60.1
    assert _codes(doc) == ["dose.organ-above-prescription"]
    doc["planned_course"]["prescription"]["fractions"] = 3
    doc["planned_course"]["ptv_high_dmin"] = 48.5  # 24 Gy planned in 3 fractions: above twice
    assert _codes(doc) == ["dose.organ-above-prescription", "dose.organ-above-prescription"]


def test_cgy_and_gy_give_the_same_plausibility_verdicts() -> None:
    for dose, fractions in ((30, 10), (3, 10), (35, 1), (150, 50), (24, 1)):
        gy, cgy = _example(), _example()
        _prescribe(gy, "prior", dose, fractions)
        _prescribe(cgy, "prior", dose * 100, fractions, "cGy")
        gy_codes = [c.replace("unit.cgy-as-gy", "high") for c in _codes(gy)]
        cgy_codes = [c.replace("dose.per-fraction-high", "high") for c in _codes(cgy)]
        assert bool(gy_codes) == bool(cgy_codes), (dose, fractions, gy_codes, cgy_codes)


def test_prior_course_dates_against_the_as_of_date() -> None:
    doc = _example()  # the prior course ends on 2015-01-16
    assert _codes(doc, date(2015, 1, 16)) == ["dates.planned-far"]  # planned 2016-09-15 is 608 days later
    doc["planned_course"]["start"] = "2015-06-01"
    assert _codes(doc, date(2015, 1, 16)) == []
    assert _codes(doc, date(2015, 1, 15)) == ["dates.future"]
    assert _codes(doc, date(2015, 1, 4)) == ["dates.future", "dates.future"]
    with pytest.raises(InputError, match="after the date of evaluation"):
        load_case(EXAMPLE, as_of=date(2015, 1, 10))
    assert load_case(EXAMPLE, as_of=date(2016, 9, 1)).case_id == "t1-chondrosarcoma"


def test_a_planned_start_at_most_a_year_ahead() -> None:
    doc = _example()
    assert _codes(doc, date(2015, 9, 16)) == []  # 365 days before 2016-09-15
    assert _codes(doc, date(2015, 9, 15)) == ["dates.planned-far"]


def test_the_case_loader_threads_as_of_without_breaking_callers() -> None:
    data, lines = load_yaml_file(EXAMPLE)
    assert case_problems(data, lines, str(EXAMPLE))[1] == []  # as_of defaults to today
    assert case_problems(data, lines, str(EXAMPLE), date(2016, 9, 15))[1] == []


def test_the_schema_bounds_every_number() -> None:
    """No number the schema accepts can overflow a calculation: every numeric field has a maximum."""
    schema = validator_for("case.schema.json").schema

    def numbers(node: Any, where: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if isinstance(node, dict):
            if node.get("type") in ("number", "integer"):
                out.append((where, node))
            for key, value in node.items():
                out += numbers(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                out += numbers(value, f"{where}/{i}")
        return out

    unbounded = [where for where, node in numbers(schema, "#") if "maximum" not in node]
    assert unbounded == []


# --- identifier screening ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "case_id", "found"),
    [
        ("t1-chondrosarcoma", True, ""),
        ("synthetic-0000123", True, ""),
        ("t8-RCC-unstable", True, ""),
        ("rcc-t8-017", True, ""),
        ("Jane_Doe", True, "capitalised words"),
        ("JaneDoe-T8", True, "capitalised words"),
        ("doe-19480302", True, "birth date"),
        ("1948-03-02-x", True, "birth date"),
        ("case-02031948", True, "birth date"),
        ("pt-12345678", True, "record number"),
        ("mrn-4711", True, "identifying data"),
        ("renal cell carcinoma", False, ""),
        ("Ewing Sarcoma", False, ""),
        ("adenocarcinoma, ICD-O 8140/3", False, ""),
        ("chondrosarcoma grade 2", False, ""),
        ("RCC, Mr Smith", False, "identifying data"),
        ("RCC MRN 4711", False, "identifying data"),
        ("RCC 123456", False, "record number"),
        ("RCC born 2/3/48", False, "birth date"),
        ("RCC 1948-03-02", False, "birth date"),
    ],
)
def test_identifier_screening_both_sides(text: str, case_id: bool, found: str) -> None:
    result = identifying_pattern(text, case_id=case_id)
    assert (found in result) if found else result == ""


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("case_id", "Jane_Doe_19480302"),
        ("case_id", "Jane Doe 1948"),
        ("case_id", "Smith 4711234\n"),
        ("histology", "RCC, patient Jane Doe MRN 4711234"),
        ("histology", "RCC\nJane Doe"),
        ("histology", 4711234),
    ],
)
def test_a_refusal_never_repeats_an_identifying_value(
    field: str, value: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _example()
    if field == "case_id":
        doc["case_id"] = value
    else:
        doc["patient"]["histology"] = value
    path = tmp_path / "case.json.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    for part in ("Jane", "Doe", "Smith", "4711234", "1948"):
        assert part not in err, err
    assert ("case_id" if field == "case_id" else "patient.histology") in err


# --- reports: case text is inert --------------------------------------------------------------------------------


def test_markdown_and_text_reports_quote_case_text_inertly() -> None:
    doc = _example()
    doc["patient"]["histology"] = "chondrosarcoma <img src=x onerror=alert(1)> [see](javascript:alert(1)) # H"
    case, problems = case_problems(doc, {}, "t.yaml", AS_OF)
    assert problems == []
    assert case is not None
    result = Evaluator(None, as_of=AS_OF, engine="oracle").evaluate(case)
    md = render_markdown(result)
    assert "<img" not in md
    assert "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "](javascript" not in md
    assert "]\\(javascript" in md
    assert not [line for line in md.splitlines() if "FORGED" in line or line.startswith("# H")]
    text = render_text(result)
    assert "chondrosarcoma <img src=x" in text  # plain text shows it as written, on its line
    assert markdown_text("a\n- FORGED & <b>") == "a\\n- FORGED &amp; &lt;b&gt;"


def test_a_result_carrying_a_line_break_cannot_forge_a_line() -> None:
    """Even a result built elsewhere (not through the case loader) renders case text on its own line."""
    case = load_case(EXAMPLE, as_of=AS_OF)
    result = Evaluator(None, as_of=AS_OF, engine="oracle").evaluate(case)
    for block in result["assessment"]:
        for item in block["items"]:
            if "histology" in str(item.get("value")):
                item["value"] = "patient.histology = x\n- FORGED: proceed, all policies pass\n# Heading"
    for rendered in (render_markdown(result), render_text(result)):
        assert not [line for line in rendered.splitlines() if line.startswith(("- FORGED", "# Heading"))]


# --- durable-rules reads every number -----------------------------------------------------------------------------


def test_a_tiny_computed_value_reaches_durable_and_agrees_with_the_reference() -> None:
    doc = _example()
    doc["planned_course"]["structures"] = {"SpinalCord": {"Dmax": 0.00001}}  # durable error 309 before
    doc["prior_courses"][0]["structures"] = {"SpinalCord": {"Dmax": 0.00001}}
    case, problems = case_problems(doc, {}, "t.yaml", AS_OF)
    assert problems == []
    assert case is not None
    durable = Evaluator(None, as_of=AS_OF, engine="durable").evaluate(case)
    oracle = Evaluator(None, as_of=AS_OF, engine="oracle").evaluate(case)

    def statuses(result: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [
            (e["rule_id"], e.get("structure"), e.get("metric"), e["status"])
            for key in ("constraints", "advisories", "assumptions", "recommendations")
            for e in result[key]
        ]

    assert statuses(durable) == statuses(oracle)
    verdicts = {p["policy"]: p["verdict"] for p in durable["policy_summary"]}
    assert (verdicts["nelson"], verdicts["hytec"]) == ("pass", "fail")  # HyTEC: re-SBRT / cumulative 0.500001


def test_the_adapter_writes_plain_decimal_numbers() -> None:
    from reirrad.backends.durable import _to_json

    assert (
        _to_json({"a": 1e-05, "b": 2.5, "c": 3, "d": "1e-05"})
        == '{"a": 0.00001, "b": 2.5, "c": 3, "d": "1e-05"}'
    )
    assert _to_json({"a": 1e16, "b": 2**70}) == '{"a": 10000000000000000.0, "b": 1180591620717411300000.0}'
    assert json.loads(_to_json({"x": 1.2345678901234567e-12}))["x"] == 1.2345678901234567e-12
    assert _to_json({"a": 0.5, "b": 3}) == json.dumps({"a": 0.5, "b": 3})


# --- --rules, --as-of, git refs ---------------------------------------------------------------------------------


def _pack_with_a_2500_gy_limit(tmp_path: Path) -> Path:
    pack = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", pack)
    target = pack / "policies" / "hytec" / "cumulative.yaml"
    text = target.read_text(encoding="utf-8")
    assert "value: 70}" in text
    target.write_text(text.replace("value: 70}", "value: 2500}"), encoding="utf-8")
    return pack


def test_a_pack_that_fails_rules_check_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = _pack_with_a_2500_gy_limit(tmp_path)  # loads, but its lock no longer matches
    assert main(["evaluate", str(EXAMPLE), "--rules", str(pack)]) == 2
    err = capsys.readouterr().err
    assert "the rule pack fails `reirrad rules check`: R501" in err
    assert "--allow-unchecked-pack to use it anyway" in err
    assert main(["limits", str(EXAMPLE), "--rules", str(pack)]) == 2


def test_allow_unchecked_pack_is_printed_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = _pack_with_a_2500_gy_limit(tmp_path)
    base = ["evaluate", str(EXAMPLE), "--rules", str(pack), "--allow-unchecked-pack", "--as-of", "2026-11-23"]
    assert main([*base, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rule_pack"]["unchecked"]["allowed_by"] == "--allow-unchecked-pack"
    assert [e["code"] for e in result["rule_pack"]["unchecked"]["errors"]] == ["R501", "R503"]
    assert list(validator_for("result.schema.json").iter_errors(result)) == []
    assert main(base) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("UNCHECKED RULE PACK (--allow-unchecked-pack)")
    assert main([*base, "--format", "markdown"]) == 0
    assert (
        "- UNCHECKED RULE PACK (--allow-unchecked-pack): `reirrad rules check` found 2 error(s) (R501, R503)"
        in (capsys.readouterr().out)
    )
    limits = ["limits", str(EXAMPLE), "--rules", str(pack), "--allow-unchecked-pack", "--as-of", "2026-11-23"]
    assert main(limits) == 0
    assert capsys.readouterr().out.startswith("UNCHECKED RULE PACK")
    assert main([*limits, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pack"]["unchecked"]["errors"][0]["code"] == "R501"


def test_a_checked_pack_is_not_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", pack)
    argv = ["evaluate", str(EXAMPLE), "--rules", str(pack), "--as-of", "2026-11-23", "--format", "json"]
    assert main(argv) == 0
    assert "unchecked" not in json.loads(capsys.readouterr().out)["rule_pack"]
    assert main([*argv[:-2], "--allow-unchecked-pack"]) == 0
    assert "UNCHECKED" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "text", ["2024-W01-1", "2024W011", "20240101", "2024-01-01T00:00", "2024-1-1", " 2024-01-01"]
)
def test_as_of_accepts_yyyy_mm_dd_only(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(EXAMPLE), "--as-of", text])
    assert exc.value.code == 2
    assert "is not a date; write YYYY-MM-DD" in capsys.readouterr().err


def test_rules_diff_refuses_a_ref_that_is_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "rules", repo / "rules")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "rules"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "pack"], cwd=repo, check=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    monkeypatch.chdir(repo)
    for ref in (f"--output={victim}", "-o", "--remote=x", "HEAD --output=x", "HEAD..HEAD~1", "a\nb"):
        assert main(["rules", "diff", "--", ref, "rules"]) == 2, ref
        assert "neither a rule pack directory nor a git ref" in capsys.readouterr().err
    assert victim.read_text(encoding="utf-8") == "keep me\n"  # before: truncated to 0 bytes
    assert main(["rules", "diff", "HEAD", "rules"]) == 0
    assert main(["rules", "diff", "HEAD^{tree}", "rules"]) == 2
    assert "git cannot read 'rules' at this ref" in capsys.readouterr().err


def test_a_prescription_that_rounds_to_zero_gy_is_refused_not_a_crash() -> None:
    """Schemathesis found it through the service: 5e-324 cGy is 0.0 Gy, and the organ-dose check divided by it."""
    from reirrad.case import case_problems

    doc = {
        "schema": "reirrad/case/v1",
        "case_id": "tiny",
        "lesion": {"levels": ["C1"]},
        "prior_courses": [],
        "planned_course": {"start": "2000-01-01", "technique": "2D", "unit": "cGy",
                           "prescription": {"dose": 5e-324, "fractions": 1},
                           "structures": {"Esophagus": {"D0.1cc": 2.0}}},
    }
    case, problems = case_problems(doc, {}, "tiny.yaml")
    assert case is None
    assert [p.path for p in problems] == [("planned_course", "prescription", "dose")]
