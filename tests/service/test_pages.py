"""The page without a browser: the form builds the case the YAML would, and each refusal stands next to its input
in the CLI's own words."""

from __future__ import annotations

import contextlib
import io
import re
from html import unescape
from pathlib import Path
from typing import Any

from reirrad.cli.main import main
from reirrad.service import forms
from service_helpers import EXAMPLE

LUCIDO_FORM = {
    "case_id": "t1-chondrosarcoma",
    "patient.age": "70",
    "patient.sex": "female",
    "patient.histology": "chondrosarcoma",
    "patient.ecog": "1",
    "patient.expected_survival_months": "12",
    "lesion.levels": "T1",
    "lesion.bilsky_grade": "1b",
    "lesion.sins": "7",
    "lesion.recurrence": "in_field",
    "prior_courses[0].start": "2015-01-05",
    "prior_courses[0].end": "2015-01-16",
    "prior_courses[0].technique": "3DCRT",
    "prior_courses[0].prescription.dose": "30",
    "prior_courses[0].prescription.fractions": "10",
    "prior_courses[0].unit": "Gy",
    "prior_courses[0].doses[0].structure": "SpinalCord",
    "prior_courses[0].doses[0].Dmax": "32.8",
    "prior_courses[0].doses[1].structure": "",
    "planned_course.start": "2016-09-15",
    "planned_course.technique": "SBRT",
    "planned_course.prescription.dose": "24",
    "planned_course.prescription.fractions": "1",
    "planned_course.ptv_high_dmin": "19.0",
    "planned_course.doses[0].structure": "SpinalCord",
    "planned_course.doses[0].Dmax": "10.0",
    "planned_course.doses[0].D0.03cc": "9.0",
    "planned_course.doses[0].D0.1cc": "8.8",
    "planned_course.doses[0].D1cc": "7.5",
    "planned_course.doses[1].structure": "BrachialPlex_R",
    "planned_course.doses[1].Dmax": "28.3",
    "planned_course.doses[2].structure": "",
}


def test_the_form_builds_the_published_case() -> None:
    import yaml
    from reirrad.case import load_case
    from reirrad.service.engine import case_to_data, parse_case_dict

    data, _ = forms.form_to_case(LUCIDO_FORM)
    case, problems = parse_case_dict(data, "form")
    assert problems == []
    assert case_to_data(case) == case_to_data(load_case(EXAMPLE))
    assert yaml.safe_dump(forms.case_to_form(case_to_data(case)).values) == yaml.safe_dump(
        forms.case_to_form(case_to_data(load_case(EXAMPLE))).values
    )


def test_a_case_shown_in_the_form_comes_back_unchanged() -> None:
    from reirrad.case import load_case
    from reirrad.service.engine import case_to_data, parse_case_dict

    original = case_to_data(load_case(EXAMPLE))
    state = forms.case_to_form(original)
    data, _ = forms.form_to_case(state.values | {"prior_courses[0].doses[1].structure": ""})
    case, problems = parse_case_dict(data, "form")
    assert problems == []
    assert case_to_data(case) == original


def _errors(html: str) -> dict[str, list[str]]:
    """Input name → the error notes shown beside it."""
    out: dict[str, list[str]] = {}
    for name, text in re.findall(r'<p class="error" id="([^"]+)-error" role="alert">([^<]*)</p>', html):
        out.setdefault(unescape(name), []).append(unescape(text))
    return out


def _cli_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "case.yaml"
    path.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["evaluate", str(path)]) == 2
    return [line.removeprefix("error: ").replace(str(path), "FILE") for line in err.getvalue().splitlines()]


def test_a_form_error_stands_at_its_input_in_the_cli_words(client: Any, tmp_path: Path) -> None:
    form = dict(LUCIDO_FORM, **{"lesion.levels": "T99", "patient.ecog": "7"})
    r = client.post("/case", data=form)
    assert r.status_code == 422
    errors = _errors(r.text)
    yaml_text = EXAMPLE.read_text().replace("levels: [T1]", "levels: [T99]").replace("ecog: 1", "ecog: 7")
    cli = _cli_errors(tmp_path, yaml_text)
    cli_levels = next(line for line in cli if "lesion.levels[0]" in line)
    cli_ecog = next(line for line in cli if "patient.ecog" in line)
    assert cli_levels.endswith(": lesion.levels[0]: " + errors["lesion.levels"][0])
    assert cli_ecog.endswith(": patient.ecog: " + errors["patient.ecog"][0])
    assert 'aria-invalid="true"' in r.text
    # the summary at the top lists every problem as the CLI renders it, with "form" as the file
    assert "form: lesion.levels[0]: " + errors["lesion.levels"][0] in unescape(r.text)


def test_a_dose_error_stands_at_its_cell(client: Any) -> None:
    form = dict(LUCIDO_FORM, **{"planned_course.doses[0].D0.03cc": "11"})
    r = client.post("/case", data=form)
    assert r.status_code == 422
    cell = re.search(
        r'name="planned_course.doses\[0\].Dmax"[^>]*>\s*<p class="error" role="alert">([^<]*)</p>', r.text
    )
    assert cell is not None
    assert unescape(cell.group(1)) == (
        "Dmax (10) is below D0.03cc (11); a hotter sub-volume cannot get less dose (accepted: Dmax ≥ D0.03cc ≥ D0.1cc ≥ D1cc)"
    )


def test_pasted_yaml_errors_are_the_cli_lines(client: Any, tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("sins: 7", "sins: 19")
    r = client.post("/case/yaml", data={"case_yaml": text})
    assert r.status_code == 422
    shown = re.findall(r'<ul class="error" role="alert" data-testid="yaml-problems"><li>([^<]*)</li>', r.text)
    assert [unescape(s).replace("pasted case", "FILE") for s in shown] == _cli_errors(tmp_path, text)


def test_the_report_of_the_form_shows_the_published_verdicts(client: Any) -> None:
    r = client.post("/case", data=LUCIDO_FORM)
    assert r.status_code == 200
    rows = re.findall(
        r'<tr class="status-(\w+)" data-rule="([^"]+)" data-status="\w+">\s*<td>[^<]*(?:<span[^>]*>[^<]*</span>)?</td>\s*<td>[^<]*</td>\s*<td>([^<]*)</td>\s*<td class="num">([^<]*)</td>',
        r.text,
    )
    found = {
        (rule, where.split()[-1] if where.strip() else ""): (status, value)
        for status, rule, where, value in rows
    }
    assert found[("hytec.resbrt", "Dmax")] == ("fail", "30.00 Gy EQD2")
    assert found[("hytec.resbrt", "D0.03cc")] == ("pass", "24.75 Gy EQD2")
    assert found[("nelson.cumulative", "Dmax")] == ("fail", "53.46 Gy EQD2")
    assert "+0.25 Gy EQD2" in r.text  # the room left under HyTEC on D0.03cc
    assert 'data-slot="before-planning"' in r.text
    assert 'data-slot="fragile-readings"' in r.text


def test_add_rows_and_disagree(client: Any) -> None:
    r = client.post("/case", data=dict(LUCIDO_FORM, action="add_prior"))
    assert 'name="prior_courses[1].start"' in r.text
    r = client.post("/case", data=dict(LUCIDO_FORM, action="add_dose:planned_course"))
    assert 'name="planned_course.doses[3].structure"' in r.text
    yaml_text = EXAMPLE.read_text()
    r = client.post(
        "/disagree",
        data={
            "rule_id": "hytec.resbrt",
            "rule_version": _version("hytec.resbrt"),
            "reason": "D0.03cc is our metric",
            "case_yaml": yaml_text,
        },
    )
    assert f"Recorded: you disagree with hytec.resbrt {_version('hytec.resbrt')}" in r.text
    r = client.post(
        "/disagree",
        data={"rule_id": "hytec.resbrt", "rule_version": _version("hytec.resbrt"), "reason": "", "case_yaml": yaml_text},
    )
    assert "Not recorded: a reason is needed" in r.text
    tally = {t["rule_id"]: t for t in client.get("/api/v1/feedback").json()["rules"]}
    assert tally["hytec.resbrt"]["disagreed"] == 1


def test_rule_and_feedback_pages(client: Any) -> None:
    r = client.get("/rules/hytec.resbrt")
    assert r.status_code == 200
    assert f"Version {_version('hytec.resbrt')}" in r.text
    assert client.get("/rules/nope").status_code == 404
    assert "hytec.resbrt" in client.get("/rules").text
    assert client.get("/feedback").status_code == 200


def _version(rule_id: str) -> str:
    """The version of a rule in force today in the bundled pack (tests follow the pack's releases)."""
    from datetime import date

    from reirrad.knowledge.rulepack import load_pack

    return load_pack().select(date.today()).rule(rule_id).version


def test_a_case_before_planning_shows_what_each_policy_allows_with_its_chart(client: Any) -> None:
    """The T9 question on the page: the limits per policy and fraction number (as `reirrad limits` gives them),
    the charts, the dose already given, the candidate schedules; the indeterminate dose criteria folded away."""
    t9 = EXAMPLE.parent / "t9-before-planning.yaml"
    r = client.post("/case/yaml", data={"case_yaml": t9.read_text(), "as_of": "2026-11-23"})
    assert r.status_code == 200, r.text[:2000]
    section = r.text[r.text.index('data-testid="before-planning"') :]
    section = section[: section.index("</section>")]
    rows = re.findall(r"<tr><td>(\w[\w-]*)</td><td>SpinalCord Dmax</td>((?:<td>[^<]*</td>){6})</tr>", section)
    cells = {policy: re.findall(r"<td>([^<]*)</td>", tail) for policy, tail in rows}
    assert cells["hytec"] == ["9.04", "12.28", "14.57", "16.39", "17.91", "hytec.resbrt"]
    assert cells["nelson"] == ["10.00", "13.40", "15.75", "17.57", "19.07", "nelson.cumulative"]
    assert section.count("<svg") == 2  # SpinalCord Dmax and D0.03cc
    assert "hytec.cumulative SpinalCord Dmax and D0.03cc: 37.50 Gy EQD2 already given" in unescape(section)
    assert "18-24 Gy/1 fx" in section and "9 Gy" in section
    assert "planned start is taken as 2026-11-23" in section
    assert '<details class="before-planning-criteria">' in r.text
    # a case with a plan has no such section, and its criteria are not folded
    planned = client.post("/case", data=LUCIDO_FORM)
    assert "the largest cord dose each policy allows" not in planned.text
    assert "before-planning-criteria" not in planned.text


def test_a_fragile_verdict_is_named_on_the_page_with_the_reading_that_turns_it(client: Any) -> None:
    """A cumulative EQD2 of exactly 70.0 Gy passes HyTEC, and fails under Lucido 2025's strict '< 70 Gy'."""
    text = """schema: reirrad/case/v1
case_id: fragile-70
lesion: {levels: [T8]}
prior_courses:
  - {start: "2014-12-15", end: "2015-01-01", technique: 3DCRT, prescription: {dose: 50, fractions: 25},
     structures: {SpinalCord: {Dmax: 50.0}}}
planned_course:
  start: "2015-06-03"
  technique: SBRT
  prescription: {dose: 24, fractions: 1}
  structures: {SpinalCord: {Dmax: 8.0}}
"""
    r = client.post("/case/yaml", data={"case_yaml": text, "as_of": "2026-11-23"})
    assert r.status_code == 200
    section = r.text[r.text.index('data-testid="fragile-readings"') :]
    section = unescape(section[: section.index("</section>")])
    assert (
        'hytec.cumulative SpinalCord Dmax: pass, fragile: fails under the strict reading of Lucido 2025 ("< 70 Gy")'
        in section
    )
    # the published case has no fragile verdict: the section stays empty
    planned = client.post("/case", data=LUCIDO_FORM).text
    assert "How sure:" not in planned
