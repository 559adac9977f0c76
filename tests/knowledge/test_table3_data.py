"""Kotecha 2020 Table 3 as data (rules/tables/kotecha-2020-table3.yaml): cells, NA cells, provenance."""

from __future__ import annotations

import pytest
from knowledge_helpers import SOURCES, the_table

TABLE = the_table()


def test_schedules_and_rows() -> None:
    assert [(s.label, s.fractions) for s in TABLE.schedules] == [
        ("18-24 Gy/1 fx", 1),
        ("24 Gy/2 fx", 2),
        ("27-30 Gy/3 fx", 3),
        ("30 Gy/4 fx", 4),
        ("40 Gy/5 fx", 5),
    ]
    assert [(r.prior_dose, r.prior_fractions, r.stated_eqd2) for r in TABLE.rows] == [
        (None, None, None),
        (20, 5, 30),
        (30, 10, 37.5),
        (37.5, 15, 42),
        (40, 20, 40),
        (45, 25, 43),
        (50, 25, 50),
    ]


def test_cells_are_the_published_values() -> None:
    grid = {r.id: [c.text() for c in r.cells] for r in TABLE.rows}
    assert grid["none"] == ["12.4-14 Gy (cauda equina 16 Gy)", "17 Gy", "20.3 Gy", "23 Gy", "25.3 Gy"]
    for row in ("20gy-5fx", "30gy-10fx", "37-5gy-15fx"):
        assert grid[row] == ["9 Gy", "12.2 Gy", "14.5 Gy", "16.2 Gy", "18 Gy"]
    for row in ("40gy-20fx", "45gy-25fx"):
        assert grid[row] == ["not available", "12.2 Gy", "14.5 Gy", "16.2 Gy", "18 Gy"]
    assert grid["50gy-25fx"] == ["not available", "11 Gy", "12.5 Gy", "14 Gy", "15.5 Gy"]


def test_not_available_cells_are_kept() -> None:
    na = [(r.id, c.schedule) for r in TABLE.rows for c in r.cells if not c.available]
    assert na == [("40gy-20fx", "1fx"), ("45gy-25fx", "1fx"), ("50gy-25fx", "1fx")]
    assert all(c.limit is None for r in TABLE.rows for c in r.cells if not c.available)


def test_every_cell_names_its_row_and_column() -> None:
    for row in TABLE.rows:
        for schedule in TABLE.schedules:
            cell = row.cell(schedule.id)
            assert cell.provenance.ref == "kotecha-2020"
            assert cell.provenance.locator.startswith(
                f"Table 3, row '{row.label}', column '{schedule.label}'"
            )


def test_the_footnote_says_the_limits_are_0_03_cc_maxima_to_the_cord_prv_or_thecal_sac() -> None:
    text, provenance = TABLE.footnotes[0]
    assert "0.03 cc" in text and "planning risk volume" in text and "thecal sac" in text
    assert provenance.locator == "Table 3, footnote"
    assert TABLE.structures == ("ThecalSac", "SpinalCord_PRV03", "SpinalCord_PRV05")


def test_row_lookup() -> None:
    assert TABLE.row_for([]) is TABLE.rows[0]
    found = TABLE.row_for([(37.5, 15)])
    assert found is not None and found.id == "37-5gy-15fx"
    assert TABLE.row_for([(30, 12)]) is None
    assert TABLE.row_for([(30, 10), (8, 1)]) is None


@pytest.mark.skipif(
    not SOURCES.is_dir(), reason="the source documents (../shared/sources) are not beside this checkout"
)
def test_every_row_label_and_value_is_in_the_source_table() -> None:
    text = (SOURCES / "004_cf1e36129460bf4f.txt").read_text(encoding="utf-8")
    start = text.index("Table 3. Stereotactic")
    block = text[start : text.index("Abbreviations: BED", start)]
    for row in TABLE.rows[1:]:
        line = next(s for s in block.splitlines() if row.label in s)
        published = [c.strip() for c in line.split("|")[4:9]]
        assert published == [("NA" if not c.available else f"{c.value:g} Gy") for c in row.cells], row.label
