"""The page in a real browser (Debian's Chromium driven by Playwright): the Lucido 2025 patient typed into the form
and its verdicts read off the page, an Eclipse export read into the form, a field error, the markdown download.

With REIRRAD_SCREENSHOTS=docs/images the main pages are saved there for the documentation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from service_helpers import ECLIPSE
from test_pages import LUCIDO_FORM

SHOTS = os.environ.get("REIRRAD_SCREENSHOTS")


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"service-{name}.png"), full_page=False)


def fill_case(page: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        if not value:
            continue
        locator = page.locator(f'[name="{name}"]')
        if locator.evaluate("el => el.tagName") == "SELECT":
            locator.select_option(value)
        else:
            locator.fill(value)


def verdict(page: Any, rule: str, where: str) -> tuple[str, str, str]:
    row = page.locator(f'table[data-testid="verdicts"] tr[data-rule="{rule}"]', has_text=where).first
    cells = row.locator("td")
    return (
        row.get_attribute("data-status"),
        cells.nth(3).inner_text().strip(),
        cells.nth(6).inner_text().strip(),
    )


def test_the_lucido_patient_typed_into_the_form(live_server: str, page: Any) -> None:
    page.goto(live_server + "/")
    assert page.locator("h1").inner_text() == "Check a planned re-irradiation of the spine"
    shot(page, "form")
    fill_case(page, LUCIDO_FORM)
    page.get_by_role("button", name="Check the plan").click()
    page.wait_for_selector('table[data-testid="verdicts"]')
    assert page.locator("h1").inner_text() == "Case t1-chondrosarcoma"
    assert verdict(page, "hytec.resbrt", "SpinalCord Dmax") == ("fail", "30.00 Gy EQD2", "over the limit")
    assert verdict(page, "hytec.resbrt", "SpinalCord D0.03cc") == (
        "pass",
        "24.75 Gy EQD2",
        "within the limit",
    )
    assert verdict(page, "hytec.cumulative", "SpinalCord Dmax") == ("fail", "73.30 Gy EQD2", "over the limit")
    assert verdict(page, "nelson.cumulative", "SpinalCord Dmax") == (
        "fail",
        "53.46 Gy EQD2",
        "over the limit",
    )
    summary = page.locator('table[data-testid="policy-summary"]').inner_text()
    assert "hytec\tover the limit\t5\t2" in summary
    made = page.locator('.rec[data-status="made"] h3').all_inner_texts()
    assert any("SBRT re-irradiation after conventional radiotherapy" in t for t in made)
    assert len(page.get_by_test_id("pack-hash").inner_text()) == 64
    shot(page, "report")

    with page.expect_download() as info:
        page.get_by_test_id("download-markdown").click()
    download = info.value
    assert download.suggested_filename == "t1-chondrosarcoma.md"
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("# Re-irradiation evaluation — case `t1-chondrosarcoma`")
    assert "30.00 Gy EQD2" in text


def test_an_eclipse_export_read_into_the_form(live_server: str, page: Any) -> None:
    page.goto(live_server + "/")
    page.set_input_files('input[name="upload.files"]', str(ECLIPSE))
    fill_case(
        page,
        {
            "upload.kind": "dvh",
            "upload.role": "earlier",
            "upload.technique": "3DCRT",
            "upload.start": "2015-01-05",
            "upload.end": "2015-01-16",
            "upload.fractions": "10",
        },
    )
    page.get_by_role("button", name="Read the file into the form").click()
    page.wait_for_selector('[data-testid="messages"]')
    assert (
        "Read eclipse_cumulative_cgy.txt into an earlier course."
        in page.get_by_test_id("messages").inner_text()
    )
    assert page.locator('[name="prior_courses[0].doses[0].structure"]').input_value() == "SpinalCord"
    assert page.locator('[name="prior_courses[0].doses[0].Dmax"]').input_value() == "30"
    assert page.locator('[name="prior_courses[0].doses[0].D0.03cc"]').input_value() == "29.55"
    assert page.locator('[name="prior_courses[0].technique"]').input_value() == "3DCRT"
    assert page.locator('[name="prior_courses[0].end"]').input_value() == "2015-01-16"
    assert "Phantom" not in page.content()
    page.get_by_test_id("prior-0").evaluate("el => el.scrollIntoView()")
    shot(page, "import")


def test_a_field_error_is_shown_next_to_the_field(live_server: str, page: Any) -> None:
    page.goto(live_server + "/")
    fill_case(page, {**LUCIDO_FORM, "lesion.levels": "T13"})
    page.get_by_role("button", name="Check the plan").click()
    page.wait_for_selector('[data-testid="problems"]')
    field = page.locator('[name="lesion.levels"]')
    assert field.get_attribute("aria-invalid") == "true"
    note = page.locator('[id="lesion.levels-error"]').inner_text()
    assert note.startswith('text ("T13") is not an accepted value (accepted: "C1"')
    assert page.get_by_test_id("problems").locator("li").all_inner_texts() == [
        "form: lesion.levels[0]: " + note
    ]
    assert field.input_value() == "T13"  # what was typed stays
    page.locator('[name="lesion.levels"]').scroll_into_view_if_needed()
    shot(page, "field-error")
