"""A department's spreadsheet as it is: CSV or XLSX read through a mapping file (dates, vocabularies, level ranges,
units, blank doses, pseudonyms), audited with the verdicts of the same cases written as case documents."""

from __future__ import annotations

import copy
import csv
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from audit_helpers import AS_OF, audit, query
from reirrad.audit.readers import dumps_line
from reirrad.cli.main import main
from reirrad.testing.synth import synth_cases

KEY = "a-department-key-of-32-bytes-000"
LEVELS = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
LEVELS += [f"S{i}" for i in range(1, 6)]
TECHNIQUE = {"3DCRT": "3D", "2D": "2D", "IMRT": "IMRT", "VMAT": "VMAT", "SBRT": "SBRT", "SRS": "SRS"}

MAPPING = """\
schema: reirrad/cohort-map/v1
layout: case-per-row
date_formats: ["%d/%m/%Y"]
blank_dose: dosimetry_unavailable
case_id: {column: MRN, pseudonymise: true, prefix: dept-}
vocabularies:
  technique: {"3D": 3DCRT, "2D": 2D, IMRT: IMRT, VMAT: VMAT, SBRT: SBRT, SRS: SRS}
  yes_no: {"Y": true, "N": false}
fields:
  patient.age: Age
  patient.sex: {column: Sex, vocabulary: {F: female, M: male}}
  patient.histology: Histology
  patient.ecog: ECOG
  lesion.levels: Level
  lesion.bilsky_grade: Bilsky
  lesion.sins: SINS
  prior_courses.0.start: Prior start
  prior_courses.0.end: Prior end
  prior_courses.0.technique: {column: Prior technique, vocabulary: technique}
  prior_courses.0.prescription.dose: {column: Prior dose (cGy), unit: cGy}
  prior_courses.0.prescription.fractions: Prior fx
  prior_courses.0.structures.SpinalCord.Dmax: Prior cord max
  planned_course.start: Re-RT date
  planned_course.technique: {column: Re-RT technique, vocabulary: technique}
  planned_course.prescription.dose: Re-RT dose (Gy)
  planned_course.prescription.fractions: Re-RT fx
  planned_course.structures.SpinalCord.Dmax: Cord max
  planned_course.structures.SpinalCord.D0.03cc: Cord D0.03cc
  outcomes.myelopathy.occurred: {column: Myelopathy, vocabulary: yes_no}
  outcomes.myelopathy.date: Myelopathy date
"""
HEADER = [
    "MRN",
    "Age",
    "Sex",
    "Histology",
    "ECOG",
    "Level",
    "Bilsky",
    "SINS",
    "Prior start",
    "Prior end",
    "Prior technique",
    "Prior dose (cGy)",
    "Prior fx",
    "Prior cord max",
    "Re-RT date",
    "Re-RT technique",
    "Re-RT dose (Gy)",
    "Re-RT fx",
    "Cord max",
    "Cord D0.03cc",
    "Myelopathy",
    "Myelopathy date",
]


def dmy(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day:02d}/{d.month:02d}/{d.year}"


def levels_text(levels: list[str]) -> str:
    idx = [LEVELS.index(x) for x in levels]
    if len(idx) > 1 and idx == list(range(idx[0], idx[-1] + 1)):
        return f"{levels[0]}-{levels[-1]}"
    return ";".join(levels)


def department(n: int = 300) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Synthetic cases with at most one prior course and the cord doses a department records, and the same cases as
    rows of a department's sheet (its own column names, dd/mm/yyyy, '3D', 'T11-T12', cGy, Y/N)."""
    docs, rows = [], []
    for i, d in enumerate(c for c in synth_cases(n + 60, 17) if len(c["prior_courses"]) <= 1):
        if len(docs) == n:
            break
        d = copy.deepcopy(d)  # noqa: PLW2901 - the copy replaces the shared synthetic case
        for course in [*d["prior_courses"], d["planned_course"]]:
            kept = ("Dmax", "D0.03cc") if course is d["planned_course"] else ("Dmax",)
            if "structures" in course:
                cord = {k: v for k, v in course["structures"].get("SpinalCord", {}).items() if k in kept}
                if not cord:
                    course.pop("structures")
                    course["dosimetry"] = "unavailable"
                else:
                    course["structures"] = {"SpinalCord": cord}
        d["planned_course"].pop("ptv_high_dmin", None)
        d["patient"].pop("expected_survival_months", None)
        d["lesion"].pop("recurrence", None)
        if "structures" not in d["planned_course"]:
            continue
        if not d["prior_courses"]:
            d["prior_courses"] = []
        start = date.fromisoformat(d["planned_course"]["start"])
        if i % 9 == 0:
            d["outcomes"] = {
                "myelopathy": {"occurred": True, "date": (start + timedelta(days=200)).isoformat()}
            }
        elif i % 4 == 0:
            d["outcomes"] = {"myelopathy": {"occurred": False}}
        d["case_id"] = f"MRN{100000 + i}"
        p = d["prior_courses"][0] if d["prior_courses"] else None
        pc = d["planned_course"]
        cord = pc["structures"]["SpinalCord"]
        my = d.get("outcomes", {}).get("myelopathy")
        rows.append(
            [
                d["case_id"],
                d["patient"]["age"],
                {"female": "F", "male": "M"}[d["patient"]["sex"]],
                d["patient"]["histology"],
                d["patient"]["ecog"],
                levels_text(d["lesion"]["levels"]),
                d["lesion"]["bilsky_grade"],
                d["lesion"]["sins"],
                dmy(p["start"]) if p else "",
                dmy(p["end"]) if p else "",
                TECHNIQUE[p["technique"]] if p else "",
                round(p["prescription"]["dose"] * 100) if p else "",
                p["prescription"]["fractions"] if p else "",
                p["structures"]["SpinalCord"]["Dmax"] if p and "structures" in p else "",
                dmy(pc["start"]),
                TECHNIQUE[pc["technique"]],
                pc["prescription"]["dose"],
                pc["prescription"]["fractions"],
                cord.get("Dmax", ""),
                cord.get("D0.03cc", ""),
                "" if my is None else "Y" if my["occurred"] else "N",
                dmy(my["date"]) if my and "date" in my else "",
            ]
        )
        docs.append(d)
    return docs, rows


def write_csv_sheet(path: Path, rows: list[list[Any]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def verdicts(out: Path) -> list[tuple[Any, ...]]:
    """Every policy verdict and constraint line, by input order (case ids differ: pseudonyms)."""
    return query(
        out,
        "SELECT c.seq, v.policy, v.verdict FROM policy_verdicts v JOIN cases c USING (seq) ORDER BY ALL",
    ) + query(
        out,
        "SELECT seq, rule_id, structure, metric, status, round(value, 6) FROM constraint_lines ORDER BY ALL",
    )


@pytest.fixture(scope="module")
def sheet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]], Path]:
    base = tmp_path_factory.mktemp("dept")
    docs, rows = department()
    csv_path = write_csv_sheet(base / "reirradiations-2025.csv", rows)
    mapping = base / "cohort-map.yaml"
    mapping.write_text(MAPPING)
    reference = base / "reference.jsonl"
    # the same cases under pseudonymous ids: the sheet's record numbers would be refused by the case id screen
    reference.write_bytes(b"".join(dumps_line({**d, "case_id": f"ref-{i:03d}"}) for i, d in enumerate(docs)))
    return csv_path, mapping, docs, reference


def test_the_mapping_is_thirty_lines(sheet: tuple[Path, Path, list[dict[str, Any]], Path]) -> None:
    assert len(sheet[1].read_text().splitlines()) <= 30


def test_a_department_csv_audits_as_its_case_documents(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    csv_path, mapping, docs, reference = sheet
    out, ref = tmp_path / "out", tmp_path / "ref"
    outcome = audit(csv_path, out, map=mapping, key=KEY.encode(), chunk_cases=50, workers=2)
    assert (outcome.records, outcome.evaluated, outcome.rejected) == (300, 300, 0)
    audit(reference, ref, chunk_cases=50)
    assert verdicts(out) == verdicts(ref)
    stored = [json.loads(d) for (d,) in query(out, "SELECT document FROM cases ORDER BY seq")]
    for mapped, doc in zip(stored, docs, strict=True):
        assert mapped["case_id"].startswith("dept-")
        assert json.loads(json.dumps({**mapped, "case_id": 0}), parse_float=float) == json.loads(
            json.dumps({**doc, "case_id": 0}), parse_int=float
        ) or _same_numbers(mapped, doc)
    unavailable = sum(1 for d in docs for p in d["prior_courses"] if p.get("dosimetry") == "unavailable")
    assert unavailable > 0
    assert query(out, "SELECT count(*) FROM constraint_lines WHERE assumed")[0][0] > 0
    # the outcomes are in the cases table and counted by conformance in the summary
    events = sum(1 for d in docs if d.get("outcomes", {}).get("myelopathy", {}).get("occurred"))
    assert query(out, "SELECT count(*) FILTER (WHERE myelopathy), count(myelopathy) FROM cases")[0] == (
        events,
        sum(1 for d in docs if "outcomes" in d),
    )


def _same_numbers(a: Any, b: Any) -> bool:
    """Equal documents, reading 45 and 45.0 as the same number (a cGy column gives floats)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(k == "case_id" or _same_numbers(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_numbers(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return bool(a == b)


def test_pseudonyms_are_keyed_and_neither_record_number_nor_key_is_written(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    csv_path, mapping, _, _ = sheet
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    out = tmp_path / "out"
    args = ["audit", str(csv_path), "--map", str(mapping), "--key-file", str(key_file), "--out", str(out)]
    assert main([*args, "--workers", "0", "--parquet", "--full-results"]) == 0
    ids = [r[0] for r in query(out, "SELECT case_id FROM cases ORDER BY seq")]
    assert len(set(ids)) == 300
    assert all(len(i) == len("dept-") + 20 for i in ids)
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"MRN1" not in data, path
            assert KEY.encode() not in data, path
    # another key gives other pseudonyms; the same key the same ones; a resume with another key is refused
    other = tmp_path / "other"
    key_file.write_text("another-key-that-is-long-enough")
    assert main([*args[:-1], str(other), "--workers", "0"]) == 0
    assert not set(ids) & {r[0] for r in query(other, "SELECT case_id FROM cases")}
    assert main([*args, "--workers", "0"]) == 2


def test_xlsx_with_date_cells_audits_like_the_csv(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    csv_path, mapping, _, _ = sheet
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(rows[0])
    dates = {i for i, h in enumerate(rows[0]) if h in ("Re-RT date", "Prior start")}
    numbers = {i for i, h in enumerate(rows[0]) if h in ("Age", "Re-RT fx", "Cord max")}
    for r in rows[1:60]:
        cells: list[Any] = []
        for i, v in enumerate(r):
            if i in dates and v:
                d, m, y = map(int, v.split("/"))
                cells.append(date(y, m, d))  # a real date cell: no format needed
            elif i in numbers and v:
                cells.append(float(v) if "." in v else int(v))
            else:
                cells.append(v or None)
        ws.append(cells)
    xlsx = tmp_path / "sheet.xlsx"
    wb.save(xlsx)
    head = tmp_path / "head.csv"
    head.write_text("".join(csv_path.read_text().splitlines(keepends=True)[:60]))
    a = audit(xlsx, tmp_path / "x", map=mapping, key=KEY.encode())
    b = audit(head, tmp_path / "c", map=mapping, key=KEY.encode())
    assert (a.evaluated, a.rejected) == (59, 0)
    assert verdicts(tmp_path / "x") == verdicts(tmp_path / "c")
    assert query(tmp_path / "x", "SELECT case_id FROM cases ORDER BY seq") == query(
        tmp_path / "c", "SELECT case_id FROM cases ORDER BY seq"
    )
    assert b.evaluated == 59


def test_bad_rows_go_to_the_errors_table_with_row_column_value_and_fix(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    csv_path, mapping, _, _ = sheet
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    col = {h: i for i, h in enumerate(rows[0])}
    rows[3][col["Re-RT date"]] = "2025-03-04"  # not dd/mm/yyyy
    rows[5][col["Re-RT technique"]] = "Cyberknife"  # not in the vocabulary
    rows[7][col["Level"]] = "T12-T11"  # a range written upwards
    rows[9][col["MRN"]] = rows[2][col["MRN"]]  # a duplicate record number
    rows[11][col["Cord max"]] = "1" * 5000  # a 5,000-digit cell
    path = write_csv_sheet(tmp_path / "bad.csv", rows[1:], rows[0])
    out = tmp_path / "out"
    outcome = audit(path, out, map=mapping, key=KEY.encode())
    assert (outcome.records, outcome.evaluated, outcome.rejected) == (300, 295, 5)
    found = {
        r[0]: r[1:]
        for r in query(
            out, "SELECT line, column_name, value, message, accepted, code FROM errors ORDER BY line"
        )
    }
    assert found[4] == (
        "Re-RT date",
        "2025-03-04",
        "column 'Re-RT date': '2025-03-04' does not fit the date format %d/%m/%Y",
        "a date written %d/%m/%Y",
        "map.value",
    )
    assert found[6][0] == "Re-RT technique"
    assert found[6][2] == "column 'Re-RT technique': 'Cyberknife' is not a term of vocabulary technique"
    assert found[6][3].startswith("a term of vocabulary technique: '3D', '2D'")
    assert "runs upwards" in found[8][2]
    assert found[10][4] == "duplicate"
    assert "first at row 3" in found[10][2]
    assert "MRN" not in json.dumps(found)  # the duplicate's record number is not echoed
    assert found[12][2] == "column 'Cord max': a number of 5,000 characters (at most 40)"


def test_a_mapping_naming_missing_columns_is_refused_with_every_problem(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, _, _, _ = sheet
    bad = tmp_path / "map.yaml"
    bad.write_text(
        MAPPING.replace("Re-RT fx", "Re-RT fractions")
        .replace("patient.ecog", "patient.ecgo")
        .replace("blank_dose: dosimetry_unavailable\n", "")
    )
    assert (
        main(
            [
                "audit",
                str(csv_path),
                "--map",
                str(bad),
                "--out",
                str(tmp_path / "o"),
                "--key-file",
                "/dev/null",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "at least 16 random bytes" in err
    (tmp_path / "k").write_text(KEY)
    assert (
        main(
            [
                "audit",
                str(csv_path),
                "--map",
                str(bad),
                "--out",
                str(tmp_path / "o"),
                "--key-file",
                str(tmp_path / "k"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "fields.planned_course.prescription.fractions.column: column 'Re-RT fractions' is not in the header of "
        "reirradiations-2025.csv (row 1); did you mean 'Re-RT date', 'Re-RT fx'?"
    ) in err
    assert (
        "'patient.ecgo' is not a field of the case format; did you mean patient.ecog or patient.sex?" in err
    )
    assert "does not say what an empty cell means" in err
    assert "Traceback" not in err


def test_blank_prior_doses_mean_what_the_mapping_says(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path
) -> None:
    csv_path, mapping, docs, _ = sheet
    absent = tmp_path / "absent.yaml"
    absent.write_text(mapping.read_text().replace("blank_dose: dosimetry_unavailable", "blank_dose: absent"))
    a = tmp_path / "a"
    u = tmp_path / "u"
    audit(csv_path, a, map=absent, key=KEY.encode(), chunk_cases=100)
    audit(csv_path, u, map=mapping, key=KEY.encode(), chunk_cases=100)
    lost = [
        i for i, d in enumerate(docs) if any(p.get("dosimetry") == "unavailable" for p in d["prior_courses"])
    ]
    sql = "SELECT seq FROM constraint_lines WHERE rule_id = 'hytec.cumulative' AND structure = 'SpinalCord' AND metric = 'Dmax' AND status = ? ORDER BY seq"
    # absent: nothing assumed, the cumulative cord dose is undecided; unavailable: the prescription is assumed
    assert set(lost) <= {s for (s,) in query(a, sql, ["indeterminate"])}
    conventional = [
        i
        for i in lost
        if any(
            p.get("dosimetry") == "unavailable" and p["technique"] not in ("SBRT", "SRS")
            for p in docs[i]["prior_courses"]
        )
    ]
    assert conventional
    assumed = {s for (s,) in query(u, "SELECT DISTINCT seq FROM constraint_lines WHERE assumed")}
    assert assumed == set(conventional)  # the assumption covers conventional courses only (rules/assumptions)
    assert not query(a, "SELECT 1 FROM constraint_lines WHERE assumed")


def test_preview_shows_mapped_rows_and_every_refusal(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, mapping, _, _ = sheet
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    rows[2][rows[0].index("Sex")] = "X"
    path = write_csv_sheet(tmp_path / "p.csv", rows[1:], rows[0])
    (tmp_path / "k").write_text(KEY)
    code = main(
        [
            "audit",
            "preview",
            str(path),
            "--map",
            str(mapping),
            "--key-file",
            str(tmp_path / "k"),
            "--rows",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("--- row ") == 2
    assert "technique: 3DCRT" in out or "technique: SBRT" in out
    assert "300 records, 299 would be audited, 1 refused, 0 blank" in out
    assert (
        "row 3, column 'Sex': patient.sex: column 'Sex': 'X' is not a term of vocabulary inline [value 'X']"
        in out
    )
    assert "MRN1" not in out


def test_merged_cells_in_an_xlsx(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, mapping, _, _ = sheet
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[:6]
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for r in rows:
        ws.append([v or None for v in r])
    ws.merge_cells("T3:T4")  # a data cell merged over two rows: row 4 reads empty
    path = tmp_path / "m.xlsx"
    wb.save(path)
    out = tmp_path / "out"
    outcome = audit(path, out, map=mapping, key=KEY.encode())
    assert (outcome.evaluated, outcome.rejected) == (4, 1)
    ((line, column, message),) = query(out, "SELECT line, column_name, message FROM errors")
    assert (line, column) == (4, "Cord D0.03cc")
    assert "hidden by the merged cells T3:T4" in message
    ws.merge_cells("O1:P1")  # and a merged header
    wb.save(path)
    (tmp_path / "k").write_text(KEY)
    assert (
        main(
            [
                "audit",
                str(path),
                "--map",
                str(mapping),
                "--key-file",
                str(tmp_path / "k"),
                "--out",
                str(tmp_path / "o2"),
            ]
        )
        == 2
    )
    assert "merged header cells (O1:P1)" in capsys.readouterr().err


def test_rules_diff_impact_reads_the_cohorts_audit_reads(
    sheet: tuple[Path, Path, list[dict[str, Any]], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path, mapping, _, reference = sheet
    (tmp_path / "k").write_text(KEY)
    pack = str(Path(__file__).resolve().parents[2] / "rules")
    args = ["rules", "diff", pack, pack, "--as-of", AS_OF, "--impact"]
    assert main([*args, str(csv_path), "--map", str(mapping), "--key-file", str(tmp_path / "k")]) == 0
    assert "impact on 300 case(s)" in capsys.readouterr().out
    from reirrad.audit.readers import write_csv

    native = tmp_path / "native.csv"
    with open(native, "w", newline="", encoding="utf-8") as f:
        write_csv([json.loads(x) for x in reference.read_text().splitlines()[:20]], f)
    assert main([*args, str(native)]) == 0
    assert "impact on 20 case(s)" in capsys.readouterr().out
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{}\n" * 3)
    assert main([*args, str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.index("broken.jsonl:1") < err.index("broken.jsonl:2") < err.index("broken.jsonl:3")


COURSE_MAP = """\
schema: reirrad/cohort-map/v1
layout: course-per-row
date_formats: ["%d.%m.%Y"]
blank_dose: absent
case_id: {column: Patient}
course: {column: Kind, vocabulary: {Vorbestrahlung: prior, Re-RT: planned}}
fields:
  lesion.levels: Level
  course.start: Start
  course.end: End
  course.technique: Technique
  course.prescription.dose: Dose
  course.prescription.fractions: Fx
  course.structures.SpinalCord.Dmax: Cord Dmax
"""


def test_one_row_per_course(tmp_path: Path) -> None:
    """course-per-row: the rows of a case consecutive, a column saying which course; two prior courses here."""
    docs = [d for d in synth_cases(200, 31) if len(d["prior_courses"]) == 2][:4]
    assert len(docs) == 4
    header = ["Patient", "Kind", "Level", "Start", "End", "Technique", "Dose", "Fx", "Cord Dmax"]
    rows = []
    for d in docs:
        d["lesion"] = {"levels": d["lesion"]["levels"]}
        d.pop("patient", None)
        for c in [*d["prior_courses"], d["planned_course"]]:
            c.pop("ptv_high_dmin", None)
            c.pop("dosimetry", None)
            cord = c.get("structures", {}).get("SpinalCord", {}).get("Dmax")
            c["structures"] = {"SpinalCord": {"Dmax": cord}} if cord is not None else None
            if c["structures"] is None:
                c.pop("structures")
            planned = c is d["planned_course"]
            s = date.fromisoformat(c["start"])
            rows.append(
                [
                    d["case_id"],
                    "Re-RT" if planned else "Vorbestrahlung",
                    levels_text(d["lesion"]["levels"]) if planned else "",
                    f"{s.day:02d}.{s.month:02d}.{s.year}",
                    "" if planned else ".".join(reversed(c["end"].split("-"))),
                    c["technique"],
                    c["prescription"]["dose"],
                    c["prescription"]["fractions"],
                    "" if cord is None else cord,
                ]
            )
    if "structures" not in docs[0]["planned_course"]:
        pytest.skip("the synthetic planned course has no cord dose")
    path = write_csv_sheet(tmp_path / "courses.csv", rows, header)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(COURSE_MAP)
    ref = tmp_path / "ref.jsonl"
    ref.write_bytes(b"".join(dumps_line(d) for d in docs))
    a = audit(path, tmp_path / "a", map=mapping)
    audit(ref, tmp_path / "r")
    assert (a.records, a.evaluated, a.rejected) == (4, 4, 0)
    assert verdicts(tmp_path / "a") == verdicts(tmp_path / "r")
    stored = [json.loads(x) for (x,) in query(tmp_path / "a", "SELECT document FROM cases ORDER BY seq")]
    assert all(_same_numbers(s, d) for s, d in zip(stored, docs, strict=True))


def test_no_pseudonym_looks_like_identifying_data_to_the_case_id_screen() -> None:
    """Hex digits spelled record numbers and dates (41 of 300 rows of the department sheet were refused); the
    consonants a pseudonym is written in cannot, and the screen is the one case files are checked with."""
    import hashlib
    import hmac

    from reirrad.audit.mapping import _PSEUDONYM_LETTERS
    from reirrad.case import identifying_pattern

    digests = [
        hmac.new(b"k" * 32, str(n).encode(), hashlib.sha256).hexdigest()[:20] for n in range(20_000)
    ]
    assert sum(bool(identifying_pattern("dept-" + d, case_id=True)) for d in digests) > 100  # the old form
    assert not [d for d in digests if identifying_pattern("dept-" + d.translate(_PSEUDONYM_LETTERS), case_id=True)]
